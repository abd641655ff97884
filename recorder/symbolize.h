/*
 * symbolize.h: turns addresses of this process into module + offset + function name.
 *
 * Used by the writer thread only (never a signal handler). The module list comes from
 * dl_iterate_phdr and is re-read when the loader reports a change; symbol tables are
 * loaded from the files on first use and kept while the module stays loaded.
 */
#ifndef CS_SYMBOLIZE_H
#define CS_SYMBOLIZE_H

#include <stdint.h>

typedef struct cs_symbolizer cs_symbolizer;

typedef struct cs_symbol {
    const char *module;   /* path, NULL for an address outside every module */
    const char *build_id; /* lower-case hex or NULL */
    uint64_t rel;         /* address relative to the module's ELF vaddrs (absolute if none) */
    const char *function; /* NULL when no symbol covers it */
    uint64_t function_lo; /* the function's runtime addresses [lo, hi); 0, 0 if unknown */
    uint64_t function_hi;
    int module_index; /* index in the current module list, -1 if none */
} cs_symbol;

/* A symbolizer of this process's modules (read with dl_iterate_phdr). */
cs_symbolizer *cs_symbolizer_new(void);
/* A symbolizer of another process's modules, given one by one (a crash record). */
cs_symbolizer *cs_symbolizer_new_static(void);
int cs_symbolizer_add(cs_symbolizer *s, const char *path, uint64_t base, const uint64_t *lo,
                      const uint64_t *hi, int nseg);
/* Re-reads the module list if modules were loaded or unloaded. Returns 1 if it changed. */
int cs_symbolizer_refresh(cs_symbolizer *s);
/* RETURN_ADDRESS: the address is a return address (any frame but the interrupted one), so the
 * call instruction before it is what is looked up. Strings live until the next refresh. */
void cs_symbolizer_lookup(cs_symbolizer *s, uint64_t ip, int return_address, cs_symbol *out);
/* Module I of the list (0 <= I < count): its path, load bias and build id (read from the file
 * on first use; NULL if none). Returns 0, or -1 past the end. */
int cs_symbolizer_count(const cs_symbolizer *s);
int cs_symbolizer_module(cs_symbolizer *s, int i, const char **path, uint64_t *base,
                         const char **build_id);
void cs_symbolizer_free(cs_symbolizer *s);

#endif
