/*
 * symbolize.c: the writer's view of the process's modules and their symbols.
 *
 * Modules are matched by their PT_LOAD segments (not by path), so an address in a gap
 * between two libraries is never attributed to either. Symbol tables are loaded lazily and
 * survive refreshes for modules still loaded at the same base; the vDSO's, which has no
 * file, are read from the process's own image. Must never be used from a signal handler (it
 * allocates and reads files).
 */
#include "symbolize.h"

#include "elfsym.h"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#define MAX_SEGS 8
#define VDSO     "[vdso]"

typedef struct module {
    char *path;
    uint64_t base;
    uint64_t lo[MAX_SEGS], hi[MAX_SEGS];
    int nseg;
    cs_elfsym *sym;
    int sym_tried;
} module;

struct cs_symbolizer {
    module *mods;
    int n, cap;
    int is_static;
    unsigned long long adds, subs;
    char exe[PATH_MAX];
};

/* The vDSO is named as /proc/PID/maps names it, whoever reports it ("linux-vdso.so.1" to
 * dl_iterate_phdr): one module, one name, in the window and in crash records alike. */
static const char *module_name(const char *name)
{
    int vdso = !strchr(name, '/') &&
               (!strncmp(name, "linux-vdso", 10) || !strncmp(name, "linux-gate", 10));
    return vdso ? VDSO : name;
}

/* How many bytes of this process's vDSO image at AT are mapped, from /proc/self/maps (its
 * section headers lie past its loadable segment: only the mapping says how far is safe to
 * read). 0 when not found. */
static size_t vdso_mapped(uintptr_t at)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    char line[512];
    size_t size = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo == at &&
            hi > lo) {
            size = hi - lo;
            break;
        }
    }
    fclose(f);
    return size;
}

/* The vDSO has no file: its symbols come from this process's own image, which is the one
 * the kernel gives every process of its boot. A crash record ingested by another process
 * (perhaps after a reboot into another kernel) names M's segments: the image is used only
 * when its loadable segments are the same, at the same offsets. */
static cs_elfsym *vdso_symbols(const module *m)
{
    uintptr_t at = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    size_t size = at ? vdso_mapped(at) : 0;
    if (size < sizeof(ElfW(Ehdr)))
        return NULL;
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)at;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_phentsize != sizeof(ElfW(Phdr)) ||
        eh->e_phoff > size || eh->e_phnum > (size - eh->e_phoff) / sizeof(ElfW(Phdr)))
        return NULL;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(at + eh->e_phoff);
    int k = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        if (k >= m->nseg || m->lo[k] - m->base != ph[i].p_vaddr ||
            m->hi[k] - m->lo[k] != ph[i].p_memsz)
            return NULL;
        k++;
    }
    if (k == 0 || k != m->nseg)
        return NULL;
    return cs_elfsym_open_memory((const void *)at, size);
}

static cs_elfsym *module_symbols(const module *m)
{
    if (m->path[0] == '/')
        return cs_elfsym_open(m->path);
    return strcmp(m->path, VDSO) == 0 ? vdso_symbols(m) : NULL;
}

typedef struct collect {
    module *mods;
    int n, cap;
    const char *exe;
    unsigned long long adds, subs;
} collect;

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    collect *c = data;
    c->adds = info->dlpi_adds;
    c->subs = info->dlpi_subs;
    const char *name = info->dlpi_name;
    if (!name || !*name)
        name = c->exe; /* the main program is reported without a name */
    if (!*name)
        return 0;
    name = module_name(name);
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        module *m = realloc(c->mods, sizeof *m * (size_t)cap);
        if (!m)
            return 1;
        c->mods = m;
        c->cap = cap;
    }
    module *m = &c->mods[c->n];
    memset(m, 0, sizeof *m);
    m->base = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum && m->nseg < MAX_SEGS; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        m->lo[m->nseg] = info->dlpi_addr + ph->p_vaddr;
        m->hi[m->nseg] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        m->nseg++;
    }
    m->path = strdup(name);
    if (!m->path)
        return 1;
    c->n++;
    return 0;
}

static int counters_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    unsigned long long *c = data;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1;
}

static void free_modules(module *m, int n)
{
    for (int i = 0; i < n; i++) {
        free(m[i].path);
        if (m[i].sym)
            cs_elfsym_close(m[i].sym);
    }
    free(m);
}

cs_symbolizer *cs_symbolizer_new(void)
{
    cs_symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    ssize_t n = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
    s->exe[n > 0 ? n : 0] = 0;
    s->adds = s->subs = ~0ull;
    cs_symbolizer_refresh(s);
    return s;
}

cs_symbolizer *cs_symbolizer_new_static(void)
{
    cs_symbolizer *s = calloc(1, sizeof *s);
    if (s)
        s->is_static = 1;
    return s;
}

int cs_symbolizer_add(cs_symbolizer *s, const char *path, uint64_t base, const uint64_t *lo,
                      const uint64_t *hi, int nseg)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        module *m = realloc(s->mods, sizeof *m * (size_t)cap);
        if (!m)
            return -1;
        s->mods = m;
        s->cap = cap;
    }
    module *m = &s->mods[s->n];
    memset(m, 0, sizeof *m);
    m->path = strdup(module_name(path));
    if (!m->path)
        return -1;
    m->base = base;
    for (int i = 0; i < nseg && i < MAX_SEGS; i++) {
        m->lo[i] = lo[i];
        m->hi[i] = hi[i];
        m->nseg++;
    }
    s->n++;
    return 0;
}

int cs_symbolizer_refresh(cs_symbolizer *s)
{
    if (s->is_static)
        return 0;
    unsigned long long c[2] = {0, 0};
    dl_iterate_phdr(counters_cb, c);
    if (c[0] == s->adds && c[1] == s->subs)
        return 0;
    collect col = {.exe = s->exe};
    dl_iterate_phdr(collect_cb, &col);
    /* Keep loaded symbol tables of modules that are still there, at the same base. */
    for (int i = 0; i < col.n; i++) {
        for (int j = 0; j < s->n; j++) {
            module *old = &s->mods[j];
            if (old->sym_tried && old->base == col.mods[i].base &&
                !strcmp(old->path, col.mods[i].path)) {
                col.mods[i].sym = old->sym;
                col.mods[i].sym_tried = 1;
                old->sym = NULL;
                break;
            }
        }
    }
    free_modules(s->mods, s->n);
    s->mods = col.mods;
    s->n = col.n;
    s->cap = col.cap;
    s->adds = c[0];
    s->subs = c[1];
    return 1;
}

void cs_symbolizer_lookup(cs_symbolizer *s, uint64_t ip, int return_address, cs_symbol *out)
{
    memset(out, 0, sizeof *out);
    out->rel = ip;
    out->module_index = -1;
    uint64_t probe = return_address && ip > 0 ? ip - 1 : ip;
    for (int i = 0; i < s->n; i++) {
        module *m = &s->mods[i];
        for (int k = 0; k < m->nseg; k++) {
            if (probe < m->lo[k] || probe >= m->hi[k])
                continue;
            if (!m->sym_tried) {
                m->sym_tried = 1;
                m->sym = module_symbols(m);
            }
            out->module = m->path;
            out->module_index = i;
            out->rel = ip - m->base;
            if (m->sym) {
                out->build_id = cs_elfsym_build_id(m->sym);
                uint64_t start = 0, len = 0;
                out->function = cs_elfsym_lookup_extent(m->sym, probe - m->base, &start, &len);
                if (out->function) {
                    out->function_lo = start + m->base;
                    out->function_hi = start + m->base + len;
                }
            }
            return;
        }
    }
}

int cs_symbolizer_count(const cs_symbolizer *s)
{
    return s->n;
}

int cs_symbolizer_module(cs_symbolizer *s, int i, const char **path, uint64_t *base,
                         const char **build_id)
{
    if (i < 0 || i >= s->n)
        return -1;
    module *m = &s->mods[i];
    if (!m->sym_tried) {
        m->sym_tried = 1;
        m->sym = module_symbols(m);
    }
    *path = m->path;
    *base = m->base;
    *build_id = m->sym ? cs_elfsym_build_id(m->sym) : NULL;
    return 0;
}

void cs_symbolizer_free(cs_symbolizer *s)
{
    if (!s)
        return;
    free_modules(s->mods, s->n);
    free(s);
}
