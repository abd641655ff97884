/*
 * srcline.c: DWARF line tables through libdwfl, one offline session per module.
 *
 * Never fails loudly: a module without debug info, or one that cannot be read, simply has
 * no file:line. Sessions are cached for the life of the object (a crash has a few dozen
 * modules at most).
 */
#include "srcline.h"

#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODULES 256

typedef struct entry {
    char *path;
    Dwfl *dwfl;
    Dwfl_Module *mod;
} entry;

struct cs_srcline {
    entry e[MAX_MODULES];
    int n;
};

static char *debuginfo_path = NULL;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

cs_srcline *cs_srcline_new(void)
{
    return calloc(1, sizeof(cs_srcline));
}

static entry *session(cs_srcline *s, const char *path)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].path, path))
            return &s->e[i];
    if (s->n == MAX_MODULES)
        return NULL;
    entry *e = &s->e[s->n];
    e->path = strdup(path);
    if (!e->path)
        return NULL;
    e->dwfl = dwfl_begin(&callbacks);
    if (e->dwfl) {
        dwfl_report_begin(e->dwfl);
        e->mod = dwfl_report_offline(e->dwfl, path, path, -1);
        dwfl_report_end(e->dwfl, NULL, NULL);
    }
    s->n++;
    return e;
}

int cs_srcline_lookup(cs_srcline *s, const char *module, uint64_t vaddr, const char **file,
                      int *line)
{
    if (!s || !module || module[0] != '/')
        return 0;
    entry *e = session(s, module);
    if (!e || !e->mod)
        return 0;
    Dwarf_Addr bias = 0;
    if (!dwfl_module_getdwarf(e->mod, &bias))
        return 0;
    Dwfl_Line *l = dwfl_module_getsrc(e->mod, vaddr + bias);
    if (!l)
        return 0;
    int lineno = 0;
    const char *f = dwfl_lineinfo(l, NULL, &lineno, NULL, NULL, NULL);
    if (!f || lineno <= 0)
        return 0;
    *file = f;
    *line = lineno;
    return 1;
}

void cs_srcline_free(cs_srcline *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].path);
        if (s->e[i].dwfl)
            dwfl_end(s->e[i].dwfl);
    }
    free(s);
}
