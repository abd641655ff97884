/*
 * elfsym.c: loads the function symbols of an ELF64 little-endian file (.symtab, or the .symtab
 * of its separate debug file, merged with .dynsym) into sorted compact arrays for lookup.
 *
 * Must never crash, hang or read out of bounds on a truncated, corrupt or hostile file: every
 * offset, size and count taken from the file is checked against the file size (without
 * overflow) before use, and strings are only used once their terminating NUL has been found.
 * Must never print, keep global mutable state, or be called from a signal handler (it opens
 * files and allocates). Files are read with pread, not mmap: a library truncated or rewritten
 * in place while we index it would raise SIGBUS through a mapping, whereas pread comes back
 * short. Nothing stays open or mapped once cs_elfsym_open returns. An image in memory (the
 * vDSO, which has no file) is read within the size its caller vouches for, and no further.
 */
#ifndef _GNU_SOURCE
#endif
#include "elfsym.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "elfsym.c reads ELF structures in host byte order and only supports little-endian hosts"
#endif

#define DEBUG_ROOT   "/usr/lib/debug"
#define PAGE_MASK_4K 0xfffULL
/* Extents are stored in 31 bits; the top bit marks a zero-sized symbol whose extent was
 * stretched to its neighbour, which loses to any sized symbol containing the address. */
#define IMPLIED_BIT  0x80000000u
#define EXTENT_MAX   0x7fffffffu
#define BUILD_ID_MAX 64
/* Caps that only hostile files reach; they bound the temporary memory one open may take. */
#define MAX_SECTIONS    (1u << 18)
#define MAX_TABLE_BYTES (1ULL << 30)
#define MAX_NOTE_BYTES  (1u << 16)
#define SYM_CHUNK       2048
/* Nested sized symbols are rare; the walk back over them stops at the largest symbol size,
 * and this bounds it for files made of millions of overlapping symbols. */
#define MAX_BACKWALK 1024

struct cs_elfsym {
    size_t n;
    const uint64_t *addr; /* sorted, unique start addresses */
    const uint32_t *ext;  /* extent in bytes, IMPLIED_BIT for stretched zero-sized symbols */
    const uint32_t *name; /* offsets into names */
    const char *names;
    const char *build_id;
    uint64_t first_load;
    uint32_t max_ext;
    int type;
    int source;
    size_t bytes;
};

/* Large temporaries (string tables, candidates) come straight from mmap so that they return to
 * the kernel when released, rather than raising glibc's dynamic mmap threshold and leaving big
 * free blocks in the heap of the long-running process we are preloaded into. */
typedef struct {
    unsigned char *p;
    size_t len, cap;
} tbuf;

static int tbuf_reserve(tbuf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < need)
        cap *= 2;
    void *p = b->p ? mremap(b->p, b->cap, cap, MREMAP_MAYMOVE)
                   : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void tbuf_free(tbuf *b)
{
    if (b->p)
        munmap(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

typedef struct {
    int fd;                   /* -1 for an image in memory */
    const unsigned char *mem; /* the image, when not a file */
    uint64_t fsize;
    Elf64_Ehdr eh;
    Elf64_Shdr *sh; /* NULL when the section header table is absent or unusable */
    size_t shnum;
} efile;

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    while (len > 0) {
        if (off > (uint64_t)INT64_MAX)
            return -1;
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1; /* error, or the file shrank under us */
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int in_file(const efile *f, uint64_t off, uint64_t len)
{
    return off <= f->fsize && len <= f->fsize - off;
}

static int efile_read(const efile *f, void *buf, size_t len, uint64_t off)
{
    if (f->mem) {
        if (!in_file(f, off, len))
            return -1;
        memcpy(buf, f->mem + off, len);
        return 0;
    }
    return read_at(f->fd, buf, len, off);
}

static const Elf64_Shdr *section(const efile *f, uint64_t i)
{
    return f->sh && i < f->shnum ? &f->sh[i] : NULL;
}

static int sec_has_data(const efile *f, const Elf64_Shdr *s)
{
    return s && s->sh_type != SHT_NOBITS && in_file(f, s->sh_offset, s->sh_size);
}

static void load_sections(efile *f)
{
    const Elf64_Ehdr *eh = &f->eh;
    Elf64_Shdr first;
    if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(f, eh->e_shoff, sizeof first) || efile_read(f, &first, sizeof first, eh->e_shoff))
        return;
    /* With 0xff00 or more sections, e_shnum is 0 and the count lives in section 0. */
    uint64_t n = eh->e_shnum ? eh->e_shnum : first.sh_size;
    if (n == 0 || n > MAX_SECTIONS || !in_file(f, eh->e_shoff, n * sizeof(Elf64_Shdr)))
        return;
    Elf64_Shdr *sh = malloc(n * sizeof *sh);
    if (!sh)
        return;
    if (efile_read(f, sh, n * sizeof *sh, eh->e_shoff)) {
        free(sh);
        return;
    }
    f->sh = sh;
    f->shnum = (size_t)n;
}

static void efile_close(efile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->sh);
    f->fd = -1;
    f->sh = NULL;
}

/* The ELF header, checked, and the section headers. */
static int efile_start(efile *f)
{
    if (efile_read(f, &f->eh, sizeof f->eh, 0))
        return -1;
    const unsigned char *id = f->eh.e_ident;
    if (memcmp(id, ELFMAG, SELFMAG) != 0 || id[EI_CLASS] != ELFCLASS64 ||
        id[EI_DATA] != ELFDATA2LSB)
        return -1;
    load_sections(f);
    return 0;
}

static int efile_open(efile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    /* O_NONBLOCK so that a FIFO given as PATH cannot block the open; only regular files pass. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    f->fd = fd;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr))
        goto fail;
    f->fsize = (uint64_t)st.st_size;
    if (efile_start(f))
        goto fail;
    return 0;
fail:
    efile_close(f);
    return -1;
}

/* An image already in memory, SIZE bytes readable (the vDSO: it has no file). */
static int efile_open_memory(efile *f, const void *image, size_t size)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->mem = image;
    f->fsize = size;
    if (!image || size < sizeof(Elf64_Ehdr) || efile_start(f)) {
        efile_close(f);
        return -1;
    }
    return 0;
}

static const Elf64_Shdr *find_type(const efile *f, uint32_t type)
{
    for (size_t i = 1; i < f->shnum; i++)
        if (f->sh[i].sh_type == type)
            return &f->sh[i];
    return NULL;
}

static const Elf64_Shdr *find_named(const efile *f, const char *want)
{
    if (!f->sh)
        return NULL;
    uint64_t idx = f->eh.e_shstrndx == SHN_XINDEX ? f->sh[0].sh_link : f->eh.e_shstrndx;
    const Elf64_Shdr *ss = section(f, idx);
    if (!sec_has_data(f, ss) || ss->sh_type != SHT_STRTAB || ss->sh_size == 0 ||
        ss->sh_size > (1u << 20))
        return NULL;
    char *names = malloc(ss->sh_size);
    if (!names)
        return NULL;
    const Elf64_Shdr *found = NULL;
    if (efile_read(f, names, ss->sh_size, ss->sh_offset) == 0) {
        size_t wlen = strlen(want);
        for (size_t i = 1; i < f->shnum && !found; i++) {
            uint32_t off = f->sh[i].sh_name;
            if (off < ss->sh_size && ss->sh_size - off > wlen &&
                memcmp(names + off, want, wlen + 1) == 0)
                found = &f->sh[i];
        }
    }
    free(names);
    return found;
}

static Elf64_Phdr *load_phdrs(const efile *f, size_t *count)
{
    const Elf64_Ehdr *eh = &f->eh;
    uint64_t n = eh->e_phnum;
    if (n == PN_XNUM && f->sh)
        n = f->sh[0].sh_info;
    *count = 0;
    if (n == 0 || eh->e_phentsize != sizeof(Elf64_Phdr) || n > MAX_SECTIONS ||
        !in_file(f, eh->e_phoff, n * sizeof(Elf64_Phdr)))
        return NULL;
    Elf64_Phdr *ph = malloc(n * sizeof *ph);
    if (!ph)
        return NULL;
    if (efile_read(f, ph, n * sizeof *ph, eh->e_phoff)) {
        free(ph);
        return NULL;
    }
    *count = (size_t)n;
    return ph;
}

/* Returns the build id's length in bytes (copied to OUT), 0 if this note block has none. */
static size_t notes_build_id(const unsigned char *buf, size_t len, size_t align, unsigned char *out)
{
    size_t off = 0;
    while (len - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, buf + off, sizeof nh);
        off += sizeof nh;
        size_t namesz = ((size_t)nh.n_namesz + align - 1) & ~(align - 1);
        size_t descsz = ((size_t)nh.n_descsz + align - 1) & ~(align - 1);
        if (namesz > len - off)
            return 0;
        const unsigned char *name = buf + off;
        off += namesz;
        if (nh.n_descsz > len - off)
            return 0;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
            nh.n_descsz > 0 && nh.n_descsz <= BUILD_ID_MAX) {
            memcpy(out, buf + off, nh.n_descsz);
            return nh.n_descsz;
        }
        if (descsz > len - off)
            return 0;
        off += descsz;
    }
    return 0;
}

static size_t note_range_build_id(const efile *f, uint64_t off, uint64_t size, uint64_t align,
                                  unsigned char *out)
{
    if (size == 0 || size > MAX_NOTE_BYTES || !in_file(f, off, size))
        return 0;
    /* On the heap: the caller's thread may have a small stack. */
    unsigned char *buf = malloc((size_t)size);
    size_t n = 0;
    /* GNU notes are 4-aligned; only 8-aligned blocks (.note.gnu.property) pad to 8. */
    if (buf && efile_read(f, buf, (size_t)size, off) == 0)
        n = notes_build_id(buf, (size_t)size, align == 8 ? 8 : 4, out);
    free(buf);
    return n;
}

/* Section headers first: a separate debug file keeps its notes as sections, while its program
 * headers may describe data that is not in it. */
static size_t read_build_id(const efile *f, unsigned char *out)
{
    for (size_t i = 1; i < f->shnum; i++) {
        const Elf64_Shdr *s = &f->sh[i];
        if (s->sh_type != SHT_NOTE)
            continue;
        size_t n = note_range_build_id(f, s->sh_offset, s->sh_size, s->sh_addralign, out);
        if (n)
            return n;
    }
    size_t nph;
    Elf64_Phdr *ph = load_phdrs(f, &nph);
    size_t n = 0;
    for (size_t i = 0; i < nph && !n; i++)
        if (ph[i].p_type == PT_NOTE)
            n = note_range_build_id(f, ph[i].p_offset, ph[i].p_filesz, ph[i].p_align, out);
    free(ph);
    return n;
}

static void to_hex(const unsigned char *id, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * len] = '\0';
}

/* The CRC .gnu_debuglink records: zlib's crc32. Only used when build ids cannot be compared. */
static int file_crc32(int fd, uint64_t size, uint32_t *crc_out)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    tbuf b = {0};
    if (tbuf_reserve(&b, 1 << 16))
        return -1;
    uint32_t crc = 0xffffffffu;
    uint64_t off = 0;
    int rc = 0;
    while (off < size) {
        size_t len = size - off < b.cap ? (size_t)(size - off) : b.cap;
        if (read_at(fd, b.p, len, off)) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < len; i++)
            crc = table[(crc ^ b.p[i]) & 0xff] ^ (crc >> 8);
        off += len;
    }
    tbuf_free(&b);
    *crc_out = ~crc;
    return rc;
}

/* Accepts PATH as the debug file of M only if it is ELF64 for the same machine, carries a
 * .symtab with data, and matches M by build id or, failing that, by the debuglink CRC. */
static int try_debug(const char *path, const efile *m, const unsigned char *bid, size_t bidlen,
                     const uint32_t *crc, efile *out)
{
    if (efile_open(out, path))
        return -1;
    const Elf64_Shdr *st = find_type(out, SHT_SYMTAB);
    if (out->eh.e_machine != m->eh.e_machine || !sec_has_data(out, st))
        goto reject;
    unsigned char dbid[BUILD_ID_MAX];
    size_t dlen = bidlen ? read_build_id(out, dbid) : 0;
    if (bidlen && dlen) {
        if (dlen != bidlen || memcmp(dbid, bid, bidlen) != 0)
            goto reject;
    } else if (crc) {
        uint32_t got;
        if (file_crc32(out->fd, out->fsize, &got) || got != *crc)
            goto reject;
    }
    return 0;
reject:
    efile_close(out);
    return -1;
}

/* Reads .gnu_debuglink: a bare file name (we refuse anything with a '/'), then a CRC32. */
static int read_debuglink(const efile *f, char *name, size_t name_cap, uint32_t *crc)
{
    const Elf64_Shdr *s = find_named(f, ".gnu_debuglink");
    unsigned char buf[512];
    if (!sec_has_data(f, s) || s->sh_size < 6 || s->sh_size > sizeof buf ||
        efile_read(f, buf, (size_t)s->sh_size, s->sh_offset))
        return -1;
    size_t size = (size_t)s->sh_size;
    const unsigned char *nul = memchr(buf, 0, size);
    if (!nul)
        return -1;
    size_t len = (size_t)(nul - buf);
    size_t crc_off = (len + 4) & ~(size_t)3;
    if (len == 0 || len >= name_cap || crc_off + 4 > size || memchr(buf, '/', len) ||
        strcmp((const char *)buf, ".") == 0 || strcmp((const char *)buf, "..") == 0)
        return -1;
    memcpy(name, buf, len + 1);
    memcpy(crc, buf + crc_off, 4);
    return 0;
}

static int try_debuglink_dir(const char *dir, const char *link, const efile *m,
                             const unsigned char *bid, size_t bidlen, const uint32_t *crc,
                             efile *out)
{
    static const char *const forms[] = {"%s/%s", "%s/.debug/%s", DEBUG_ROOT "%s/%s"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        /* The global debug directory mirrors absolute paths only. */
        if (i == 2 && dir[0] != '/')
            continue;
        int n = snprintf(path, sizeof path, forms[i], dir, link);
        if (n > 0 && (size_t)n < sizeof path && try_debug(path, m, bid, bidlen, crc, out) == 0)
            return 0;
    }
    return -1;
}

static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (!slash)
        snprintf(out, cap, ".");
    else if (len == 0)
        snprintf(out, cap, "%s", ""); /* "/x": the root; forms add the '/' back */
    else if (len < cap)
        snprintf(out, cap, "%.*s", (int)len, path);
    else
        out[0] = '\0';
}

/* Finds the separate debug file of M, the way gdb does: by build id under /usr/lib/debug,
 * then by .gnu_debuglink next to the file (as named and as resolved through symlinks). */
static int open_debug_file(const efile *m, const char *path, const unsigned char *bid,
                           size_t bidlen, efile *out)
{
    char buf[PATH_MAX];
    if (bidlen >= 2) {
        char hex[2 * BUILD_ID_MAX + 1];
        to_hex(bid, bidlen, hex);
        snprintf(buf, sizeof buf, DEBUG_ROOT "/.build-id/%.2s/%s.debug", hex, hex + 2);
        if (try_debug(buf, m, bid, bidlen, NULL, out) == 0)
            return 0;
    }
    char link[256];
    uint32_t crc;
    if (read_debuglink(m, link, sizeof link, &crc))
        return -1;
    dir_of(path, buf, sizeof buf);
    if (try_debuglink_dir(buf, link, m, bid, bidlen, &crc, out) == 0)
        return 0;
    char *real = realpath(path, NULL);
    int rc = -1;
    if (real) {
        char rdir[PATH_MAX];
        dir_of(real, rdir, sizeof rdir);
        if (strcmp(rdir, buf) != 0)
            rc = try_debuglink_dir(rdir, link, m, bid, bidlen, &crc, out);
        free(real);
    }
    return rc;
}

typedef struct {
    uint64_t addr;
    uint64_t size;
    uint64_t limit; /* end of the symbol's section: how far a zero-sized symbol may stretch */
    uint32_t name;  /* offset into builder.names */
    uint32_t rank;
    uint32_t seq;
} cand;

typedef struct {
    tbuf cands;
    tbuf names;
    int oom;
} builder;

/* Orders aliases at one address, best first: sized, typed FUNC/IFUNC, non-LOCAL, fewest
 * leading underscores (malloc over __libc_malloc), shortest. */
static uint32_t rank_of(int sized, int typed, int global, const char *name, size_t len)
{
    size_t us = 0;
    while (us < len && name[us] == '_')
        us++;
    uint32_t r = (uint32_t)sized << 31 | (uint32_t)typed << 30 | (uint32_t)global << 29;
    r |= (uint32_t)(255 - (us < 255 ? us : 255)) << 16;
    r |= (uint32_t)(65535 - (len < 65535 ? len : 65535));
    return r;
}

static void add_symtab(builder *b, const efile *f, const Elf64_Shdr *symsh)
{
    if (!sec_has_data(f, symsh) || symsh->sh_entsize != sizeof(Elf64_Sym) ||
        symsh->sh_size > MAX_TABLE_BYTES)
        return;
    const Elf64_Shdr *strsh = section(f, symsh->sh_link);
    if (!sec_has_data(f, strsh) || strsh->sh_type != SHT_STRTAB || strsh->sh_size == 0 ||
        strsh->sh_size > MAX_TABLE_BYTES)
        return;
    tbuf strtab = {0}, chunk = {0};
    size_t strsz = (size_t)strsh->sh_size;
    if (tbuf_reserve(&strtab, strsz) || tbuf_reserve(&chunk, SYM_CHUNK * sizeof(Elf64_Sym))) {
        b->oom = 1;
        goto out;
    }
    if (efile_read(f, strtab.p, strsz, strsh->sh_offset))
        goto out;
    const char *str = (const char *)strtab.p;
    uint64_t nsym = symsh->sh_size / sizeof(Elf64_Sym);
    for (uint64_t base = 0; base < nsym && !b->oom; base += SYM_CHUNK) {
        size_t cnt = nsym - base < SYM_CHUNK ? (size_t)(nsym - base) : SYM_CHUNK;
        if (efile_read(f, chunk.p, cnt * sizeof(Elf64_Sym),
                       symsh->sh_offset + base * sizeof(Elf64_Sym)))
            break;
        const Elf64_Sym *syms = (const Elf64_Sym *)(void *)chunk.p;
        for (size_t i = 0; i < cnt; i++) {
            const Elf64_Sym *s = &syms[i];
            int type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);
            int typed = type == STT_FUNC || type == STT_GNU_IFUNC;
            if (!typed && type != STT_NOTYPE)
                continue;
            /* Only symbols defined in a real section: this drops undefined imports and
             * absolute markers, and gives zero-sized ones the section end as a bound. */
            const Elf64_Shdr *sec = s->st_shndx < SHN_LORESERVE ? section(f, s->st_shndx) : NULL;
            if (s->st_shndx == SHN_UNDEF || !sec || !(sec->sh_flags & SHF_ALLOC))
                continue;
            /* Untyped symbols are data labels as often as code labels. */
            if (!typed && !(sec->sh_flags & SHF_EXECINSTR))
                continue;
            if (s->st_name == 0 || s->st_name >= strsz)
                continue;
            const char *nm = str + s->st_name;
            const char *end = memchr(nm, 0, strsz - s->st_name);
            if (!end || end == nm || (nm[0] == '.' && nm[1] == 'L'))
                continue;
            size_t len = (size_t)(end - nm);
            /* .symtab spells versions into names ("memcpy@@GLIBC_2.14", "sigvec@GLIBC_2.2.5")
             * where .dynsym keeps them aside; drop them so that a library names its functions
             * the same whether or not its symbols came from a debug file. */
            const char *ver = memchr(nm, '@', len);
            if (ver)
                len = (size_t)(ver - nm);
            if (len == 0)
                continue;
            size_t ncand = b->cands.len / sizeof(cand);
            if (b->names.len + len + 1 > UINT32_MAX || ncand >= UINT32_MAX ||
                tbuf_reserve(&b->names, len + 1) || tbuf_reserve(&b->cands, sizeof(cand))) {
                b->oom = 1;
                break;
            }
            cand c;
            c.addr = s->st_value;
            c.size = s->st_size;
            c.limit = sec->sh_addr + sec->sh_size < sec->sh_addr ? UINT64_MAX
                                                                 : sec->sh_addr + sec->sh_size;
            c.name = (uint32_t)b->names.len;
            c.rank = rank_of(s->st_size > 0, typed, bind != STB_LOCAL, nm, len);
            c.seq = (uint32_t)ncand;
            memcpy(b->names.p + b->names.len, nm, len);
            b->names.p[b->names.len + len] = '\0';
            b->names.len += len + 1;
            memcpy(b->cands.p + b->cands.len, &c, sizeof c);
            b->cands.len += sizeof c;
        }
    }
out:
    tbuf_free(&strtab);
    tbuf_free(&chunk);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->addr != b->addr)
        return a->addr < b->addr ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank > b->rank ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static uint64_t first_load_vaddr(const efile *f)
{
    size_t n;
    Elf64_Phdr *ph = load_phdrs(f, &n);
    uint64_t lo = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < lo)
            lo = ph[i].p_vaddr;
    free(ph);
    return lo == UINT64_MAX ? 0 : lo & ~PAGE_MASK_4K;
}

/* Sorts and deduplicates the candidates, then packs the survivors into one allocation:
 * the object, addr[n], ext[n], name[n], the names, the build id. */
static cs_elfsym *finish(builder *b, const efile *m, const unsigned char *bid, size_t bidlen,
                         int source)
{
    cand *c = (cand *)(void *)b->cands.p;
    size_t nc = b->cands.len / sizeof(cand);
    if (nc)
        qsort(c, nc, sizeof *c, cand_cmp);
    size_t n = 0;
    for (size_t i = 0; i < nc; i++)
        if (n == 0 || c[i].addr != c[n - 1].addr)
            c[n++] = c[i];
    /* Turn sizes into extents; a zero-sized symbol stretches to its successor (it is the
     * "nearest preceding symbol" there) but never beyond its section. */
    size_t kept = 0;
    uint64_t name_bytes = 0;
    uint32_t max_ext = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t ext;
        uint32_t flag = 0;
        if (c[i].size) {
            ext = c[i].size;
        } else {
            uint64_t end = i + 1 < n ? c[i + 1].addr : UINT64_MAX;
            if (c[i].limit < end)
                end = c[i].limit;
            ext = end > c[i].addr ? end - c[i].addr : 0;
            flag = IMPLIED_BIT;
        }
        if (ext == 0)
            continue;
        if (ext > EXTENT_MAX)
            ext = EXTENT_MAX;
        if (!flag && ext > max_ext)
            max_ext = (uint32_t)ext;
        c[i].size = ext | flag;
        name_bytes += strlen((const char *)b->names.p + c[i].name) + 1;
        c[kept++] = c[i];
    }
    n = kept;
    if (name_bytes > UINT32_MAX)
        return NULL;
    size_t hexlen = bidlen ? 2 * bidlen + 1 : 0;
    size_t bytes = sizeof(cs_elfsym) + n * (sizeof(uint64_t) + 2 * sizeof(uint32_t)) +
                   (size_t)name_bytes + hexlen;
    unsigned char *blk = malloc(bytes);
    if (!blk)
        return NULL;
    cs_elfsym *e = (cs_elfsym *)(void *)blk;
    uint64_t *addr = (uint64_t *)(void *)(blk + sizeof *e);
    uint32_t *ext = (uint32_t *)(void *)(addr + n);
    uint32_t *name = ext + n;
    char *names = (char *)(name + n);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = (const char *)b->names.p + c[i].name;
        size_t len = strlen(s) + 1;
        addr[i] = c[i].addr;
        ext[i] = (uint32_t)c[i].size;
        name[i] = (uint32_t)off;
        memcpy(names + off, s, len);
        off += len;
    }
    char *hex = NULL;
    if (bidlen) {
        hex = names + off;
        to_hex(bid, bidlen, hex);
    }
    e->n = n;
    e->addr = addr;
    e->ext = ext;
    e->name = name;
    e->names = names;
    e->build_id = hex;
    e->first_load = first_load_vaddr(m);
    e->max_ext = max_ext;
    e->type = m->eh.e_type;
    e->source = n ? source : CS_ELFSYM_SRC_NONE;
    e->bytes = bytes;
    return e;
}

/* Indexes M; PATH (NULL for an image in memory) is where to look for a debug file. */
static cs_elfsym *index_efile(efile *m, const char *path)
{
    unsigned char bid[BUILD_ID_MAX];
    size_t bidlen = read_build_id(m, bid);
    builder b = {0};
    int source = CS_ELFSYM_SRC_DYNSYM;
    const Elf64_Shdr *symtab = find_type(m, SHT_SYMTAB);
    if (sec_has_data(m, symtab)) {
        add_symtab(&b, m, symtab);
        source = CS_ELFSYM_SRC_SYMTAB;
    } else if (path) {
        efile dbg;
        if (open_debug_file(m, path, bid, bidlen, &dbg) == 0) {
            add_symtab(&b, &dbg, find_type(&dbg, SHT_SYMTAB));
            efile_close(&dbg);
            source = CS_ELFSYM_SRC_DEBUG;
        }
    }
    /* Added even with a .symtab: it costs nothing after deduplication and covers a .symtab
     * that was partially stripped. Added second, so equal aliases keep the .symtab entry. */
    add_symtab(&b, m, find_type(m, SHT_DYNSYM));
    cs_elfsym *e = b.oom ? NULL : finish(&b, m, bid, bidlen, source);
    tbuf_free(&b.cands);
    tbuf_free(&b.names);
    efile_close(m);
    return e;
}

cs_elfsym *cs_elfsym_open(const char *path)
{
    efile m;
    if (!path || efile_open(&m, path))
        return NULL;
    return index_efile(&m, path);
}

cs_elfsym *cs_elfsym_open_memory(const void *image, size_t size)
{
    efile m;
    if (efile_open_memory(&m, image, size))
        return NULL;
    return index_efile(&m, NULL);
}

const char *cs_elfsym_lookup(const cs_elfsym *e, uint64_t vaddr, uint64_t *sym_start)
{
    return cs_elfsym_lookup_extent(e, vaddr, sym_start, NULL);
}

const char *cs_elfsym_lookup_extent(const cs_elfsym *e, uint64_t vaddr, uint64_t *sym_start,
                                    uint64_t *sym_len)
{
    if (!e || e->n == 0)
        return NULL;
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->addr[mid] <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    size_t i = lo - 1, hit = SIZE_MAX;
    /* A stretched extent ends at the next symbol, so only entry i can be one covering vaddr;
     * it is the fallback. A sized symbol containing vaddr wins, innermost first. */
    if ((e->ext[i] & IMPLIED_BIT) && vaddr - e->addr[i] < (e->ext[i] & EXTENT_MAX))
        hit = i;
    for (size_t j = i + 1, steps = 0; j-- > 0 && steps < MAX_BACKWALK; steps++) {
        uint64_t dist = vaddr - e->addr[j];
        if (dist >= e->max_ext)
            break;
        if (!(e->ext[j] & IMPLIED_BIT) && dist < e->ext[j]) {
            hit = j;
            break;
        }
    }
    if (hit == SIZE_MAX)
        return NULL;
    if (sym_start)
        *sym_start = e->addr[hit];
    if (sym_len)
        *sym_len = e->ext[hit] & EXTENT_MAX;
    return e->names + e->name[hit];
}

const char *cs_elfsym_build_id(const cs_elfsym *e)
{
    return e ? e->build_id : NULL;
}

uint64_t cs_elfsym_first_load_vaddr(const cs_elfsym *e)
{
    return e ? e->first_load : 0;
}

int cs_elfsym_type(const cs_elfsym *e)
{
    return e ? e->type : ET_NONE;
}

size_t cs_elfsym_count(const cs_elfsym *e)
{
    return e ? e->n : 0;
}

size_t cs_elfsym_memory(const cs_elfsym *e)
{
    return e ? e->bytes : 0;
}

int cs_elfsym_source(const cs_elfsym *e)
{
    return e ? e->source : CS_ELFSYM_SRC_NONE;
}

void cs_elfsym_close(cs_elfsym *e)
{
    free(e);
}
