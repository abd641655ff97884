/*
 * test_elfsym.c: unit test of recorder/elfsym.c against this program, libc, and broken files.
 *
 * Checks that a static function of this executable and libc's getpid resolve from their
 * runtime addresses, that the build id matches the one in memory, and that empty, text,
 * truncated, header-corrupted and randomly mutated ELF files never crash the loader, whether
 * read from the file or from memory (and answer alike both ways), and that the vDSO, which has
 * no file, is read from memory. Meant to
 * run under -fsanitize=address,undefined (or valgrind) so that any out-of-bounds read fails it.
 * Prints one line per failure and exits 1; exits 0 when everything passed. Must never depend on
 * debug packages being installed: checks that need them are skipped when they are absent.
 *
 * Build: gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -fsanitize=address,undefined -Irecorder
 *        recorder/elfsym.c tests/unit/test_elfsym.c -o /tmp/test_elfsym
 */
#ifndef _GNU_SOURCE
#endif
#include "elfsym.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* noinline and used through a volatile pointer so that it exists as a LOCAL FUNC symbol. */
__attribute__((noinline)) static int cs_test_local_marker(int x)
{
    volatile int acc = 0;
    for (int i = 0; i < x; i++)
        acc += i * x;
    return acc;
}

struct module {
    const void *want; /* the address whose module we look for */
    char path[4096];
    uint64_t bias;
    uint64_t low_vaddr; /* lowest PT_LOAD vaddr, page aligned */
    const void *build_id;
    size_t build_id_len;
    int found;
};

static int find_module_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct module *m = data;
    uintptr_t want = (uintptr_t)m->want;
    int hit = 0;
    uint64_t low = UINT64_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (want >= start && want < start + ph->p_memsz)
            hit = 1;
        if (ph->p_vaddr < low)
            low = ph->p_vaddr;
    }
    if (!hit)
        return 0;
    /* The main program has an empty name; the kernel's link resolves to its file. */
    snprintf(m->path, sizeof m->path, "%s",
             info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : "/proc/self/exe");
    m->bias = info->dlpi_addr;
    m->low_vaddr = low & ~0xfffULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        size_t off = 0, align = ph->p_align == 8 ? 8 : 4;
        while (off + sizeof(ElfW(Nhdr)) <= ph->p_memsz) {
            const ElfW(Nhdr) *nh = (const void *)(p + off);
            size_t name_off = off + sizeof *nh;
            size_t desc_off = name_off + ((nh->n_namesz + align - 1) & ~(align - 1));
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(p + name_off, "GNU", 4) == 0) {
                m->build_id = p + desc_off;
                m->build_id_len = nh->n_descsz;
            }
            off = desc_off + ((nh->n_descsz + align - 1) & ~(align - 1));
        }
    }
    m->found = 1;
    return 1;
}

static int find_module(const void *addr, struct module *m)
{
    memset(m, 0, sizeof *m);
    m->want = addr;
    dl_iterate_phdr(find_module_cb, m);
    return m->found;
}

static void test_self(void)
{
    int (*volatile fn)(int) = cs_test_local_marker;
    CHECK(fn(3) == 9, "marker function computes");
    struct module m;
    if (!find_module((const void *)(uintptr_t)fn, &m)) {
        CHECK(0, "no module contains cs_test_local_marker");
        return;
    }
    cs_elfsym *e = cs_elfsym_open("/proc/self/exe");
    CHECK(e != NULL, "open /proc/self/exe");
    if (!e)
        return;
    uint64_t vaddr = (uintptr_t)fn - m.bias, start = 0;
    const char *name = cs_elfsym_lookup(e, vaddr, &start);
    CHECK(name && strcmp(name, "cs_test_local_marker") == 0, "self lookup at entry gave %s",
          name ? name : "(null)");
    CHECK(start == vaddr, "self sym_start %#llx, want %#llx", (unsigned long long)start,
          (unsigned long long)vaddr);
    name = cs_elfsym_lookup(e, vaddr + 4, &start);
    CHECK(name && strcmp(name, "cs_test_local_marker") == 0 && start == vaddr,
          "self lookup inside the function gave %s", name ? name : "(null)");
    CHECK(cs_elfsym_lookup(e, vaddr, NULL) != NULL, "lookup accepts a NULL sym_start");
    CHECK(cs_elfsym_source(e) == CS_ELFSYM_SRC_SYMTAB, "self source %d", cs_elfsym_source(e));
    CHECK(cs_elfsym_first_load_vaddr(e) == m.low_vaddr, "first load vaddr %#llx, want %#llx",
          (unsigned long long)cs_elfsym_first_load_vaddr(e), (unsigned long long)m.low_vaddr);
    int t = cs_elfsym_type(e);
    CHECK(t == ET_DYN || t == ET_EXEC, "self e_type %d", t);
    CHECK(cs_elfsym_lookup(e, 0, NULL) == NULL || cs_elfsym_first_load_vaddr(e) == 0,
          "address 0 resolves in a non-PIE");
    CHECK(cs_elfsym_lookup(e, UINT64_MAX, NULL) == NULL, "UINT64_MAX resolves");

    const char *bid = cs_elfsym_build_id(e);
    if (m.build_id) {
        char want[129] = "";
        for (size_t i = 0; i < m.build_id_len && i < 64; i++)
            snprintf(want + 2 * i, 3, "%02x", ((const unsigned char *)m.build_id)[i]);
        CHECK(bid != NULL, "build id of /proc/self/exe is NULL");
        CHECK(bid && strcmp(bid, want) == 0, "build id %s, in memory %s", bid ? bid : "(null)",
              want);
        CHECK(bid && strspn(bid, "0123456789abcdef") == strlen(bid) && strlen(bid) % 2 == 0,
              "build id is not lower-case hex: %s", bid ? bid : "(null)");
    } else {
        fprintf(stderr, "note: test binary has no build id (link with -Wl,--build-id)\n");
        CHECK(bid == NULL, "build id reported for a binary without one");
    }
    cs_elfsym_close(e);
}

static void *libc_sym(const char *name)
{
    /* From libc's own handle: a sanitizer may interpose the global definition. */
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void *p = h ? dlsym(h, name) : NULL;
    if (h)
        dlclose(h);
    return p;
}

static void expect_libc(cs_elfsym *e, const struct module *m, const char *fn, int offset)
{
    void *p = libc_sym(fn);
    CHECK(p != NULL, "dlsym %s", fn);
    if (!p)
        return;
    uint64_t start = 0, vaddr = (uintptr_t)p - m->bias;
    const char *name = cs_elfsym_lookup(e, vaddr + (uint64_t)offset, &start);
    CHECK(name && strstr(name, fn), "libc %s+%d resolved to %s", fn, offset,
          name ? name : "(null)");
    CHECK(start == vaddr, "libc %s start %#llx, want %#llx", fn, (unsigned long long)start,
          (unsigned long long)vaddr);
}

static void test_libc(char *libc_path, size_t cap)
{
    struct module m;
    void *p = libc_sym("getpid");
    if (!p || !find_module(p, &m)) {
        CHECK(0, "cannot locate libc's getpid");
        return;
    }
    snprintf(libc_path, cap, "%s", m.path);
    cs_elfsym *e = cs_elfsym_open(m.path);
    CHECK(e != NULL, "open %s", m.path);
    if (!e)
        return;
    expect_libc(e, &m, "getpid", 0);
    expect_libc(e, &m, "getpid", 1);
    expect_libc(e, &m, "malloc", 0);
    expect_libc(e, &m, "malloc", 16);
    expect_libc(e, &m, "qsort", 0);
    CHECK(cs_elfsym_first_load_vaddr(e) == m.low_vaddr, "libc first load vaddr");
    CHECK(cs_elfsym_type(e) == ET_DYN, "libc e_type %d", cs_elfsym_type(e));
    CHECK(cs_elfsym_build_id(e) != NULL, "libc has no build id");

    /* With a separate debug file installed (libc6-dbg), the object must equal the debug
     * file's own symbols everywhere, which shows the .symtab was found and used. */
    const char *bid = cs_elfsym_build_id(e);
    char dbg[256];
    if (bid && strlen(bid) > 2 &&
        snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", bid, bid + 2) > 0 &&
        access(dbg, R_OK) == 0) {
        CHECK(cs_elfsym_source(e) == CS_ELFSYM_SRC_DEBUG, "libc source %d, want debug file",
              cs_elfsym_source(e));
        cs_elfsym *d = cs_elfsym_open(dbg);
        CHECK(d != NULL, "open %s", dbg);
        if (d) {
            CHECK(cs_elfsym_count(d) <= cs_elfsym_count(e), "debug file has more symbols");
            int diffs = 0;
            for (uint64_t a = 0; a < 0x200000; a += 61) {
                uint64_t s1 = 0, s2 = 0;
                const char *n1 = cs_elfsym_lookup(e, a, &s1), *n2 = cs_elfsym_lookup(d, a, &s2);
                if ((n1 == NULL) != (n2 == NULL) || (n1 && (strcmp(n1, n2) || s1 != s2)))
                    diffs++;
            }
            CHECK(diffs == 0, "libc and its debug file disagree at %d addresses", diffs);
            cs_elfsym_close(d);
        }
    } else {
        fprintf(stderr, "note: no debug file for libc; .dynsym only\n");
        CHECK(cs_elfsym_source(e) == CS_ELFSYM_SRC_DYNSYM, "libc source %d", cs_elfsym_source(e));
    }
    cs_elfsym_close(e);
}

static char tmpdir[] = "/tmp/test_elfsym.XXXXXX";

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            unsigned char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s", path);
    if (!f)
        return;
    CHECK(fwrite(data, 1, len, f) == len, "write %s", path);
    fclose(f);
}

static const uint64_t probes[] = {0, 1, 0x1000, 0x2345, 0x10000, 0x9be70, 0xd54e0, UINT64_MAX};

/* Whatever it returns, an object from a broken file must answer every call safely. */
static void answer_all(cs_elfsym *e)
{
    volatile size_t sink = 0;
    const char *bid = cs_elfsym_build_id(e);
    if (bid)
        sink += strlen(bid);
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        uint64_t start;
        const char *n = cs_elfsym_lookup(e, probes[i], &start);
        if (n)
            sink += strlen(n) + (start <= probes[i]);
    }
    sink += cs_elfsym_first_load_vaddr(e) + (size_t)cs_elfsym_type(e) + cs_elfsym_count(e);
    (void)sink;
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* An object read from memory answers as the one read from the file of the same bytes. */
static void same_answers(const cs_elfsym *f, const cs_elfsym *m, const char *what)
{
    CHECK(same_str(cs_elfsym_build_id(f), cs_elfsym_build_id(m)) &&
              cs_elfsym_count(f) == cs_elfsym_count(m) && cs_elfsym_type(f) == cs_elfsym_type(m) &&
              cs_elfsym_first_load_vaddr(f) == cs_elfsym_first_load_vaddr(m) &&
              cs_elfsym_source(f) == cs_elfsym_source(m),
          "%s: from memory, another build id, count, type, first load or source", what);
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        uint64_t s1 = 0, s2 = 0;
        const char *n1 = cs_elfsym_lookup(f, probes[i], &s1),
                   *n2 = cs_elfsym_lookup(m, probes[i], &s2);
        CHECK(same_str(n1, n2) && (!n1 || s1 == s2),
              "%s: at %#llx %s from the file, %s from memory", what, (unsigned long long)probes[i],
              n1 ? n1 : "nothing", n2 ? n2 : "nothing");
    }
}

static void poke(const char *path, int want_null)
{
    cs_elfsym *e = cs_elfsym_open(path);
    if (want_null)
        CHECK(e == NULL, "%s opened, expected NULL", path);
    if (e)
        answer_all(e);
    /* The same bytes from memory, in a buffer of exactly their size (a read past it is the
     * sanitizer's to catch), unless the file's symbols came from a debug file, which an
     * image in memory never looks for. */
    struct stat st;
    size_t len = 0;
    unsigned char *img = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? slurp(path, &len) : NULL;
    unsigned char *exact = img ? malloc(len ? len : 1) : NULL;
    if (exact) {
        memcpy(exact, img, len);
        cs_elfsym *m = cs_elfsym_open_memory(exact, len);
        if (m)
            answer_all(m);
        if (!e || cs_elfsym_source(e) != CS_ELFSYM_SRC_DEBUG) {
            CHECK(!e == !m, "%s: %s from the file, %s from memory", path, e ? "opened" : "refused",
                  m ? "opened" : "refused");
            if (e && m)
                same_answers(e, m, path);
        }
        cs_elfsym_close(m);
        free(exact);
    }
    free(img);
    cs_elfsym_close(e);
}

/* The vDSO, which has no file: its symbols from the image the kernel mapped, read only
 * within the mapping (/proc/self/maps), and the same as a copy of it written to a file. */
static void test_vdso(void)
{
    uintptr_t at = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    size_t size = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo == at)
            size = hi - lo;
    }
    if (f)
        fclose(f);
    CHECK(at && size, "this process has a vDSO (at %#lx, %zu bytes)", (unsigned long)at, size);
    if (!at || !size)
        return;
    cs_elfsym *m = cs_elfsym_open_memory((const void *)at, size);
    CHECK(m && cs_elfsym_count(m) > 0, "the vDSO's symbols, from memory");
    int found = 0;
    for (uint64_t a = 0; m && a < size && !found; a += 4) {
        const char *n = cs_elfsym_lookup(m, a, NULL);
        found = n && strstr(n, "clock_gettime");
    }
    CHECK(found, "one of them is clock_gettime");
    char p[512];
    tmp_path(p, sizeof p, "vdso");
    write_file(p, (const void *)at, size);
    cs_elfsym *e = cs_elfsym_open(p);
    CHECK(e != NULL, "the vDSO's copy in a file opens");
    if (e && m)
        same_answers(e, m, "vdso");
    cs_elfsym_close(e);
    cs_elfsym_close(m);
    CHECK(cs_elfsym_open_memory(NULL, 100) == NULL &&
              cs_elfsym_open_memory((const void *)at, 10) == NULL,
          "no image, or one shorter than an ELF header, is refused");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void corrupt_headers(const unsigned char *orig, size_t len, const char *path)
{
    unsigned char *buf = malloc(len);
    if (!buf || len < sizeof(Elf64_Ehdr)) {
        free(buf);
        return;
    }
    Elf64_Ehdr eh;
    memcpy(&eh, orig, sizeof eh);
    static const uint64_t shoffs[] = {1, 63, 0xffffffffffffffffULL, 0x7fffffffffffffffULL};

    /* e_shoff past the end, into the middle, and overflowing. */
    for (size_t i = 0; i < sizeof shoffs / sizeof shoffs[0]; i++) {
        memcpy(buf, orig, len);
        Elf64_Ehdr h = eh;
        h.e_shoff = shoffs[i];
        memcpy(buf, &h, sizeof h);
        write_file(path, buf, len);
        poke(path, 0);
    }
    memcpy(buf, orig, len);
    Elf64_Ehdr h = eh;
    h.e_shoff = len - 10;
    h.e_shnum = 0xffff;
    h.e_phoff = len - 3;
    h.e_phnum = 0xffff;
    memcpy(buf, &h, sizeof h);
    write_file(path, buf, len);
    poke(path, 0);

    /* Every section's offset, size, link and entsize made hostile, one field at a time. */
    if (eh.e_shoff && eh.e_shentsize == sizeof(Elf64_Shdr) && eh.e_shoff < len &&
        eh.e_shnum <= (len - eh.e_shoff) / sizeof(Elf64_Shdr)) {
        for (int field = 0; field < 6; field++) {
            memcpy(buf, orig, len);
            for (size_t i = 0; i < eh.e_shnum; i++) {
                Elf64_Shdr sh;
                memcpy(&sh, buf + eh.e_shoff + i * sizeof sh, sizeof sh);
                switch (field) {
                case 0: sh.sh_offset = len - 1; break;
                case 1: sh.sh_offset = UINT64_MAX - 8; break;
                case 2: sh.sh_size = UINT64_MAX / 2; break;
                case 3: sh.sh_link = 0xfffffff0u; break;
                case 4: sh.sh_size = sh.sh_size ? sh.sh_size - 1 : 0; break;
                case 5: sh.sh_offset = rng() % len; break;
                }
                memcpy(buf + eh.e_shoff + i * sizeof sh, &sh, sizeof sh);
            }
            write_file(path, buf, len);
            poke(path, 0);
        }
    }

    /* Random byte mutations of the headers and section header table. */
    for (int iter = 0; iter < 300; iter++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)(rng() % 16);
        for (int k = 0; k < flips; k++) {
            size_t where;
            uint64_t r = rng();
            if (r % 3 == 0 || !eh.e_shoff || eh.e_shoff >= len)
                where = rng() % (len < 4096 ? len : 4096);
            else
                where = eh.e_shoff + rng() % (len - eh.e_shoff);
            buf[where] = (unsigned char)rng();
        }
        write_file(path, buf, len);
        poke(path, 0);
    }
    free(buf);
}

static void test_broken(const char *libc_path)
{
    char p[512];
    poke("/dev/null", 1);
    poke("/nonexistent/file", 1);
    poke("/tmp", 1);
    CHECK(cs_elfsym_open(NULL) == NULL, "open(NULL)");
    cs_elfsym_close(NULL);
    CHECK(cs_elfsym_lookup(NULL, 0, NULL) == NULL, "lookup(NULL)");

    tmp_path(p, sizeof p, "text");
    const char text[] = "this is not an ELF file\n";
    write_file(p, text, sizeof text - 1);
    poke(p, 1);

    tmp_path(p, sizeof p, "elf32");
    unsigned char e32[64] = {0x7f, 'E', 'L', 'F', ELFCLASS32, ELFDATA2LSB, EV_CURRENT};
    write_file(p, e32, sizeof e32);
    poke(p, 1);

    tmp_path(p, sizeof p, "fifo");
    if (mkfifo(p, 0600) == 0)
        poke(p, 1);

    const char *srcs[] = {libc_path, "/proc/self/exe"};
    for (size_t s = 0; s < 2; s++) {
        size_t len = 0;
        unsigned char *orig = srcs[s][0] ? slurp(srcs[s], &len) : NULL;
        CHECK(orig && len > 4096, "read %s", srcs[s]);
        if (!orig || len <= 4096) {
            free(orig);
            continue;
        }
        tmp_path(p, sizeof p, "trunc64");
        write_file(p, orig, 64);
        poke(p, 0);
        tmp_path(p, sizeof p, "trunc1000");
        write_file(p, orig, 1000);
        poke(p, 0);
        tmp_path(p, sizeof p, "half");
        write_file(p, orig, len / 2);
        poke(p, 0);
        tmp_path(p, sizeof p, "corrupt");
        corrupt_headers(orig, len, p);
        free(orig);
    }
}

static const char *self_name_in_thread(void)
{
    struct module m;
    int (*volatile fn)(int) = cs_test_local_marker;
    if (!find_module((const void *)(uintptr_t)fn, &m))
        return "no module";
    cs_elfsym *e = cs_elfsym_open("/proc/self/exe");
    if (!e)
        return "open failed";
    const char *err = NULL;
    for (int i = 0; i < 2000 && !err; i++) {
        const char *n = cs_elfsym_lookup(e, (uintptr_t)fn - m.bias + (uint64_t)(i % 8), NULL);
        if (!n || strcmp(n, "cs_test_local_marker") != 0)
            err = "wrong name";
    }
    cs_elfsym_close(e);
    return err;
}

static void *thread_main(void *arg)
{
    (void)arg;
    const char *err = NULL;
    for (int i = 0; i < 5 && !err; i++)
        err = self_name_in_thread();
    return (void *)err;
}

static void test_threads(void)
{
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&th[i], NULL, thread_main, NULL) == 0, "pthread_create");
    for (int i = 0; i < 4; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        CHECK(ret == NULL, "thread %d: %s", i, ret ? (const char *)ret : "");
    }
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char libc_path[4096] = "";
    test_self();
    test_libc(libc_path, sizeof libc_path);
    test_broken(libc_path);
    test_threads();
    test_vdso();

    const char *names[] = {"text",      "elf32", "fifo",    "trunc64",
                           "trunc1000", "half",  "corrupt", "vdso"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tmp_path(p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    if (failures) {
        fprintf(stderr, "test_elfsym: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_elfsym: ok\n");
    return 0;
}
