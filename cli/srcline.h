/*
 * srcline.h: file:line for an address of a module, from its DWARF debug information.
 *
 * Uses elfutils' libdwfl in offline mode: the module is read from disk, and separate debug
 * files are found the standard way (/usr/lib/debug/.build-id). CLI only.
 */
#ifndef CS_SRCLINE_H
#define CS_SRCLINE_H

#include <stdint.h>

typedef struct cs_srcline cs_srcline;

cs_srcline *cs_srcline_new(void);
/* VADDR is an address in MODULE's own ELF address space. Returns 1 and sets *FILE (valid
 * until cs_srcline_free) and *LINE when debug info covers it, else 0. */
int cs_srcline_lookup(cs_srcline *s, const char *module, uint64_t vaddr, const char **file,
                      int *line);
void cs_srcline_free(cs_srcline *s);

#endif
