/*
 * elfsym.h: function symbols of one ELF64 file (executable or shared library), so that the
 * recorder's writer thread and the CLI can turn addresses into function names.
 *
 * An object holds sorted compact arrays and a private copy of the names it needs; the file is
 * neither kept open nor kept mapped after cs_elfsym_open returns. Objects are immutable once
 * opened, so one may be read from several threads; distinct objects share no state.
 * Never call any of this from a signal handler: it opens files and allocates memory.
 */
#ifndef CS_ELFSYM_H
#define CS_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_elfsym cs_elfsym;

/* Where the symbols of an object came from: tells the CLI whether a -dbg package would help. */
enum cs_elfsym_source {
    CS_ELFSYM_SRC_NONE = 0,   /* no usable symbol table at all */
    CS_ELFSYM_SRC_DYNSYM = 1, /* stripped, no debug file found: exported symbols only */
    CS_ELFSYM_SRC_SYMTAB = 2, /* the file's own .symtab (plus .dynsym) */
    CS_ELFSYM_SRC_DEBUG = 3,  /* .symtab of a separate debug file (plus the file's .dynsym) */
};

/* Opens and indexes PATH. Returns NULL if the file cannot be read, is not a regular file, is not
 * ELF64 little endian, or memory runs out. A corrupt or truncated file never crashes this: the
 * parts that fail their bounds checks are ignored, which may leave an object with no symbols. */
cs_elfsym *cs_elfsym_open(const char *path);

/* The same for an ELF image in memory (the vDSO), SIZE bytes of it readable; no debug file
 * is looked for. */
cs_elfsym *cs_elfsym_open_memory(const void *image, size_t size);

/* Looks up VADDR, an address in the file's own virtual address space (runtime address minus
 * load bias). Returns the name of the function symbol containing it and stores its start in
 * *sym_start if sym_start is non-NULL; NULL if no symbol covers VADDR. A zero-sized symbol
 * (assembly, labels) covers up to the next symbol or the end of its section, and only when no
 * sized symbol contains VADDR. The string lives as long as E. */
const char *cs_elfsym_lookup(const cs_elfsym *e, uint64_t vaddr, uint64_t *sym_start);
/* The same, also storing the symbol's extent in bytes in *sym_len if non-NULL. */
const char *cs_elfsym_lookup_extent(const cs_elfsym *e, uint64_t vaddr, uint64_t *sym_start,
                                    uint64_t *sym_len);

/* Lower-case hex of the NT_GNU_BUILD_ID note, or NULL if absent. Lives as long as E. */
const char *cs_elfsym_build_id(const cs_elfsym *e);

/* The lowest PT_LOAD p_vaddr rounded down to 4 KiB (0 if there is none): the load bias of a
 * module is the start of its file-offset-0 mapping minus this. */
uint64_t cs_elfsym_first_load_vaddr(const cs_elfsym *e);

/* e_type of the file: ET_EXEC, ET_DYN, ... */
int cs_elfsym_type(const cs_elfsym *e);

/* Number of distinct symbol addresses indexed. */
size_t cs_elfsym_count(const cs_elfsym *e);

/* Bytes of heap the object holds (one allocation), for the recorder's memory accounting. */
size_t cs_elfsym_memory(const cs_elfsym *e);

/* One of enum cs_elfsym_source. */
int cs_elfsym_source(const cs_elfsym *e);

/* Releases everything the object holds. NULL is accepted. */
void cs_elfsym_close(cs_elfsym *e);

#endif
