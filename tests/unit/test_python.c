/* test_python.c: unit test for recorder/python.c, the signal-safe CPython frame reader.
 *
 * Usage: test_python             checks, with no Python in the process: detection says "no
 *                                Python"; the line table decoders of every format (against
 *                                tables built here, also long, random and cut off by an
 *                                unreadable page); string reading and UTF-8; frame walks over
 *                                fake 3.8, 3.12 and 3.13 structures (C-stack shims, cycles,
 *                                unreadable and non-code frames, the depth cap); both caches,
 *                                also filled from several threads.
 *        test_python --table     prints the typed layout table as "3.X NAME VALUE" lines, the
 *                                format of tests/unit/gen_python_offsets.sh.
 *        test_python --embed LIBPYTHON
 *                                dlopens LIBPYTHON with RTLD_LOCAL after start (as an
 *                                embedding application may), checks that cs_python_try_init
 *                                finds it, runs Python code that signals itself, and checks the
 *                                frames seen from the handler. Needs PYTHONHOME.
 *
 * python.c is included so that its internals can be driven directly. Exits 1 with a message
 * on the first failure. Must never need a Python interpreter except in --embed mode.
 */
#include "guard.c"
#include "python.c"

#include "catch_faults.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_python: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__VA_ARGS__);                                                                     \
    } while (0)

/* --- fake interpreter memory ---------------------------------------------------------- */

/* Stand-ins for the type objects: only their addresses matter. */
static uint64_t fake_bytes_type[8], fake_code_type[8], fake_unicode_type[8], fake_frame_type[8];

static void use_layout(int minor)
{
    py.L = layout_for(minor);
    CHECK(py.L, "no layout for 3.%d", minor);
    py.bytes_type = (uint64_t)(uintptr_t)fake_bytes_type;
    py.code_type = (uint64_t)(uintptr_t)fake_code_type;
    py.unicode_type = (uint64_t)(uintptr_t)fake_unicode_type;
    py.frame_type = (uint64_t)(uintptr_t)fake_frame_type;
    py.kind_shift = (unsigned)__builtin_ctz((unsigned)py.L->unicode_kind_mask);
    int32_t fmax = 0, cmax = 0;
    const int32_t ff[] = {py.L->frame_back,   py.L->frame_code,  py.L->frame_instr,
                          py.L->frame_lineno, py.L->frame_trace, py.L->frame_is_entry,
                          py.L->frame_owner,  py.L->ob_type};
    const int32_t cf[] = {py.L->code_filename,    py.L->code_name,      py.L->code_qualname,
                          py.L->code_firstlineno, py.L->code_linetable, py.L->ob_size};
    for (size_t i = 0; i < sizeof ff / sizeof ff[0]; i++)
        fmax = ff[i] > fmax ? ff[i] : fmax;
    for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++)
        cmax = cf[i] > cmax ? cf[i] : cmax;
    py.frame_read = (uint32_t)fmax + 8;
    py.code_read = (uint32_t)cmax + 8;
}

static void put64(void *base, long off, uint64_t v)
{
    memcpy((char *)base + off, &v, sizeof v);
}

static void put32(void *base, long off, int32_t v)
{
    memcpy((char *)base + off, &v, sizeof v);
}

/* A page-aligned area of N pages followed by an unreadable page. */
static uint8_t *guarded(size_t pages)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *p =
        mmap(NULL, (pages + 1) * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    CHECK(mprotect(p + pages * pg, pg, PROT_NONE) == 0, "mprotect");
    return p;
}

/* A bytes object holding DATA (N bytes) at P (8-aligned, room for 32 + N bytes). */
static uint64_t make_bytes(uint8_t *p, const uint8_t *data, size_t n)
{
    memset(p, 0, 32);
    put64(p, py.L->ob_type, (uint64_t)(uintptr_t)fake_bytes_type);
    put64(p, py.L->ob_size, n);
    memcpy(p + py.L->bytes_sval, data, n);
    return (uint64_t)(uintptr_t)p;
}

static uint8_t refill[LT_CHUNK];

static int32_t decode(uint64_t bytes_obj, int32_t first, int64_t off)
{
    return line_at(bytes_obj, NULL, refill, first, off);
}

/* --- line tables ------------------------------------------------------------------------ */

#define MAXU 40000
static int32_t expect[MAXU * 2]; /* per byte offset */
static uint8_t table[300000];
static uint8_t objbuf[300064] __attribute__((aligned(16)));

static unsigned rnd_state = 12345;
static unsigned rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) & 0xffffff;
}

/* 3.8/3.9 lnotab: line at byte X is first + the line steps of every pair whose cumulative
 * address is <= X. Built here by filling the expected array pair by pair. */
static void test_lnotab(void)
{
    use_layout(8);
    for (int round = 0; round < 200; round++) {
        size_t n = 0;
        int64_t addr = 0;
        int32_t first = 1 + (int32_t)(rnd() % 1000), line = first;
        int npairs = 1 + (int)(rnd() % (round < 100 ? 40 : 2000));
        for (int i = 0; i < npairs; i++) {
            int a = (int)(rnd() % 5) * 2 * (int)(rnd() % 4 != 0);
            int d = (int)(rnd() % 256) - 128;
            table[n++] = (uint8_t)a;
            table[n++] = (uint8_t)(int8_t)d;
            for (int64_t x = addr; x < addr + a && x < MAXU * 2; x++)
                expect[x] = line;
            addr += a;
            line += (int8_t)d;
        }
        int64_t total = addr + 20;
        for (int64_t x = addr; x < total && x < MAXU * 2; x++)
            expect[x] = line;
        uint64_t obj = make_bytes(objbuf, table, n);
        int64_t step = total > 600 ? (total / 300 + 1) & ~1 : 2;
        for (int64_t x = 0; x < total && x < MAXU * 2; x += step)
            CHECK(decode(obj, first, x) == expect[x], "lnotab round %d offset %ld: %d, want %d",
                  round, (long)x, decode(obj, first, x), expect[x]);
        CHECK(decode(obj, first, -1) == first, "lnotab: negative offset is the first line");
    }
}

/* 3.10 linetable: each pair is a range [start, start + step) with the line after its step, or
 * no line (-128); zero-length pairs only move the line. */
static void test_310(void)
{
    use_layout(10);
    for (int round = 0; round < 200; round++) {
        size_t n = 0;
        int64_t addr = 0;
        int32_t first = 1 + (int32_t)(rnd() % 1000), computed = first;
        int npairs = 1 + (int)(rnd() % (round < 100 ? 40 : 2000));
        for (int i = 0; i < npairs; i++) {
            int a = (int)(rnd() % 6) * 2;
            int d = rnd() % 7 == 0 ? -128 : (int)(rnd() % 255) - 127;
            table[n++] = (uint8_t)a;
            table[n++] = (uint8_t)(int8_t)d;
            if (d != -128)
                computed += d;
            for (int64_t x = addr; x < addr + a && x < MAXU * 2; x++)
                expect[x] = d == -128 ? -1 : computed;
            addr += a;
        }
        uint64_t obj = make_bytes(objbuf, table, n);
        int64_t step = addr > 600 ? (addr / 300 + 1) & ~1 : 2;
        for (int64_t x = 0; x < addr + 10 && x < MAXU * 2; x += (x >= addr - 4 ? 2 : step)) {
            int32_t want = x < addr ? expect[x] : -1;
            CHECK(decode(obj, first, x) == want, "3.10 round %d offset %ld: %d, want %d", round,
                  (long)x, decode(obj, first, x), want);
        }
        CHECK(decode(obj, first, -2) == first, "3.10: negative offset is the first line");
    }
}

/* 3.11+ location table entries, written as CPython's compiler writes them. */
static size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 64) {
        p[n++] = (uint8_t)(0x40 | (v & 63));
        v >>= 6;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t put_svarint(uint8_t *p, int32_t v)
{
    return put_varint(p, v < 0 ? ((uint32_t)-v << 1) | 1 : (uint32_t)v << 1);
}

static void test_locations(void)
{
    for (int minor = 11; minor <= 13; minor++) {
        use_layout(minor);
        for (int round = 0; round < 300; round++) {
            size_t n = 0;
            int64_t unit = 0;
            int32_t first = 1 + (int32_t)(rnd() % 100000), line = first;
            int nent = 1 + (int)(rnd() % (round < 150 ? 40 : 20000));
            for (int i = 0; i < nent && unit < MAXU - 8; i++) {
                int len = 1 + (int)(rnd() % 8), code = (int)(rnd() % 16), none = 0;
                table[n++] = (uint8_t)(0x80 | code << 3 | (len - 1));
                if (code == 15) {
                    none = 1;
                } else if (code == 14) {
                    int32_t d = (int32_t)(rnd() % 2001) - 1000;
                    if (rnd() % 10 == 0)
                        d *= 5000; /* multi-byte varints */
                    line += d;
                    n += put_svarint(table + n, d);
                    n += put_varint(table + n, rnd() % 3);
                    n += put_varint(table + n, rnd() % 200);
                    n += put_varint(table + n, rnd() % 200);
                } else if (code == 13) {
                    int32_t d = (int32_t)(rnd() % 201) - 100;
                    line += d;
                    n += put_svarint(table + n, d);
                } else if (code >= 10) {
                    line += code - 10;
                    table[n++] = (uint8_t)(rnd() % 128);
                    table[n++] = (uint8_t)(rnd() % 128);
                } else {
                    table[n++] = (uint8_t)(rnd() % 128);
                }
                for (int k = 0; k < len; k++)
                    expect[2 * (unit + k)] = none ? -1 : line;
                unit += len;
            }
            uint64_t obj = make_bytes(objbuf, table, n);
            /* Every offset of small tables; about 300 spread over big ones (each decode walks
             * the table from its start). */
            int64_t step = unit > 300 ? unit / 300 + 1 : 1;
            for (int64_t u = 0; u < unit + 4; u += (u >= unit - 2 ? 1 : step)) {
                int32_t want = u < unit ? expect[2 * u] : -1;
                /* Beyond LT_WALK_MAX bytes of table the handler gives up: unknown. */
                int32_t got = decode(obj, first, 2 * u);
                if (n > LT_WALK_MAX && got == -1)
                    continue;
                CHECK(got == want, "3.%d round %d unit %ld: %d, want %d (table %zu bytes)", minor,
                      round, (long)u, got, want, n);
            }
            CHECK(decode(obj, first, -2) == first, "3.%d: negative offset", minor);
        }
    }
    /* A table walked beyond LT_WALK_MAX: unknown, not a long stall. */
    use_layout(12);
    size_t n = 0;
    for (int i = 0; i < LT_WALK_MAX + 100; i++)
        table[n++] = 0x80 | 13 << 3, table[n++] = 0; /* one unit, same line */
    uint64_t obj = make_bytes(objbuf, table, n);
    CHECK(decode(obj, 5, 2 * 100) == 5, "long table, near offset");
    CHECK(decode(obj, 5, 2 * (LT_WALK_MAX / 2 + 50)) == -1, "long table, offset past the cap");
}

/* Tables cut off by an unreadable page, and objects that are not bytes. */
static void test_bad_tables(void)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *p = guarded(2);
    for (int minor = 8; minor <= 13; minor++) {
        use_layout(minor);
        /* The object claims 10000 bytes; only 200 are readable. */
        uint8_t *o = p + 2 * pg - 32 - 200;
        memset(o + 32, minor >= 11 ? 0x80 | 13 << 3 : 2, 200);
        if (minor >= 11)
            for (int i = 1; i < 200; i += 2)
                o[32 + i] = 2; /* +1 line per entry */
        make_bytes(o, o + 32, 0);
        put64(o, py.L->ob_size, 10000);
        uint64_t obj = (uint64_t)(uintptr_t)o;
        /* The rest is read 4 KiB at a time: such a torn object may give the right line or
         * unknown, never a fault. */
        int32_t near = decode(obj, 1, 20), want_near = minor <= 9 ? 21 : minor == 10 ? 23 : 12;
        CHECK(near == -1 || near == want_near, "3.%d: cut table: %d", minor, near);
        CHECK(decode(obj, 1, 4000) == -1, "3.%d: beyond the readable part", minor);
        /* Whole object unreadable, misaligned, NULL, not a bytes object. */
        CHECK(decode((uint64_t)(uintptr_t)(p + 2 * pg), 1, 4) == -1, "unreadable object");
        CHECK(decode(obj + 1, 1, 4) == -1, "misaligned object");
        CHECK(decode(0, 1, 4) == -1, "NULL object");
        static uint8_t small[64] __attribute__((aligned(16)));
        const uint8_t pair[4] = {0x80 | 10 << 3 | 7, 0, 0, 0};
        uint64_t sobj = make_bytes(small, pair, sizeof pair);
        CHECK(decode(sobj, 3, 2) == 3, "3.%d: small table", minor);
        put64(small, py.L->ob_type, 1234);
        CHECK(decode(sobj, 3, 2) == -1, "not a bytes object");
        /* The head read of a walk fails near the guard page: the table is read piece by
         * piece and gives the same answer. */
        uint8_t *o2 = p + 2 * pg - 32 - 16;
        memset(o2 + 32, 0, 16);
        if (minor >= 11)
            o2[32] = 0x80 | 10 << 3 | 7, o2[33] = 1, o2[34] = 2;
        make_bytes(o2, o2 + 32, 16);
        int32_t want = minor >= 11 ? 7 : minor == 10 ? -1 : 7;
        CHECK(line_at((uint64_t)(uintptr_t)o2, NULL, refill, 7, 2) == want,
              "3.%d: short table by a guard page: %d", minor,
              line_at((uint64_t)(uintptr_t)o2, NULL, refill, 7, 2));
    }
    munmap(p, 3 * pg);
}

/* --- reading memory ---------------------------------------------------------------------- */

static void test_reads(void)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *p = guarded(1);
    memset(p, 7, pg);
    uint8_t buf[64];
    CHECK(rd((uint64_t)(uintptr_t)p, buf, 64) == 0 && buf[63] == 7, "plain read");
    CHECK(rd(0, buf, 8) != 0, "NULL read");
    CHECK(rd(8, buf, 8) != 0, "low read");
    CHECK(rd(0xffffffff81000000ull, buf, 8) != 0, "kernel address read");
    CHECK(rd(USER_TOP - 4, buf, 8) != 0, "read across the top of user space");
    CHECK(rd((uint64_t)(uintptr_t)(p + pg), buf, 8) != 0, "guard page read");
    CHECK(rd((uint64_t)(uintptr_t)(p + pg - 4), buf, 8) != 0, "read into the guard page");
    /* Several regions, the second unreadable: the first and third are still read. */
    uint8_t a[8], b[8], c[8];
    struct iovec loc[3] = {{a, 8}, {b, 8}, {c, 8}};
    struct iovec rem[3] = {{p, 8}, {p + pg - 4, 8}, {p + 16, 8}};
    uint32_t ok = rdv(loc, rem, 3);
    CHECK(ok == 5, "rdv mask %u, want 5", ok);
    rem[0].iov_base = p + pg;
    ok = rdv(loc, rem, 3);
    CHECK(ok == 4, "rdv mask %u, want 4", ok);
    munmap(p, 2 * pg);
}

/* --- strings ----------------------------------------------------------------------------- */

/* A compact str object at P with the given kind and characters. */
static uint64_t make_str(uint8_t *p, int kind, int ascii, const uint32_t *chars, size_t n)
{
    const py_layout *L = py.L;
    memset(p, 0, (size_t)(ascii ? L->unicode_ascii_data : L->unicode_compact_data));
    put64(p, L->ob_type, (uint64_t)(uintptr_t)fake_unicode_type);
    put64(p, L->unicode_length, n);
    uint32_t state = (uint32_t)L->unicode_compact_bit |
                     (ascii ? (uint32_t)L->unicode_ascii_bit : 0) |
                     ((uint32_t)kind << py.kind_shift);
    memcpy(p + L->unicode_state, &state, 4);
    uint8_t *d = p + (ascii ? L->unicode_ascii_data : L->unicode_compact_data);
    for (size_t i = 0; i < n; i++) {
        if (kind == 1)
            d[i] = (uint8_t)chars[i];
        else if (kind == 2) {
            uint16_t v = (uint16_t)chars[i];
            memcpy(d + 2 * i, &v, 2);
        } else
            memcpy(d + 4 * i, &chars[i], 4);
    }
    d[n * (size_t)kind] = 0;
    return (uint64_t)(uintptr_t)p;
}

static uint8_t strbuf[8192] __attribute__((aligned(16)));

static void expect_str(uint64_t obj, int cap, const char *want)
{
    char out[CS_PY_FILENAME_MAX + 1];
    int n = read_str(obj, out, cap);
    if (!want) {
        CHECK(n < 0, "string should be rejected, got '%s'", n >= 0 ? out : "");
        return;
    }
    CHECK(n >= 0 && strcmp(out, want) == 0 && (size_t)n == strlen(want),
          "string: got '%s' (%d), want '%s'", n >= 0 ? out : "(none)", n, want);
}

static void test_strings(void)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    for (int minor = 8; minor <= 13; minor += 4) {
        use_layout(minor);
        uint32_t s[300];
        const char *hello = "handle_request";
        for (size_t i = 0; i < strlen(hello); i++)
            s[i] = (uint8_t)hello[i];
        expect_str(make_str(strbuf, 1, 1, s, strlen(hello)), 127, hello);
        /* latin-1, UCS-2 (with a lone surrogate and a NUL), UCS-4 */
        uint32_t l1[] = {'c', 'a', 'f', 0xe9};
        expect_str(make_str(strbuf, 1, 0, l1, 4), 127, "caf\xc3\xa9");
        uint32_t u2[] = {0x6587, 0x4ef6, 0xd800, 0, 'x'};
        expect_str(make_str(strbuf, 2, 0, u2, 5), 127, "\xe6\x96\x87\xe4\xbb\xb6??x");
        uint32_t u4[] = {0x1f600, 'a', 0x110000};
        expect_str(make_str(strbuf, 4, 0, u4, 3), 127,
                   "\xf0\x9f\x98\x80"
                   "a?");
        /* Cut at CAP bytes, never inside a character. */
        for (int i = 0; i < 200; i++)
            s[i] = 'a' + i % 26;
        char want[256];
        for (int i = 0; i < 127; i++)
            want[i] = (char)('a' + i % 26);
        want[127] = 0;
        expect_str(make_str(strbuf, 1, 1, s, 200), 127, want);
        for (int i = 0; i < 200; i++)
            s[i] = 0x20ac; /* 3 bytes each: 42 fit in 127 */
        char *w = want;
        for (int i = 0; i < 42; i++)
            memcpy(w, "\xe2\x82\xac", 3), w += 3;
        *w = 0;
        expect_str(make_str(strbuf, 2, 0, s, 200), 127, want);
        expect_str(make_str(strbuf, 4, 0, s, 200), 127, want);
        /* Rejected: not compact, not a str, bad kind, negative length, misaligned. */
        uint64_t o = make_str(strbuf, 1, 1, s, 3);
        put32(strbuf, py.L->unicode_state, 4 << 2);
        expect_str(o, 127, NULL);
        make_str(strbuf, 1, 1, s, 3);
        put64(strbuf, py.L->ob_type, 99);
        expect_str(o, 127, NULL);
        make_str(strbuf, 3, 0, s, 3);
        expect_str(o, 127, NULL);
        make_str(strbuf, 1, 1, s, 3);
        put64(strbuf, py.L->unicode_length, (uint64_t)-5);
        expect_str(o, 127, NULL);
        expect_str(o + 4, 127, NULL);
        expect_str(0, 127, NULL);
        /* A short string just before an unreadable page: read with the smaller header. */
        uint8_t *g = guarded(1);
        size_t at = pg - (size_t)py.L->unicode_ascii_data - 8;
        uint32_t ab[] = {'a', 'b'};
        expect_str(make_str(g + at, 1, 1, ab, 2), 127, "ab");
        /* A string whose text runs into it: rejected. */
        put64(g + at, py.L->unicode_length, 100);
        expect_str((uint64_t)(uintptr_t)(g + at), 127, NULL);
        munmap(g, 2 * pg);
    }
}

/* --- frame walks over fake structures -------------------------------------------------- */

static uint8_t *fake_tstate;
static void *fake_get_tstate(void)
{
    return fake_tstate;
}

typedef struct fake_code {
    uint8_t obj[256];
} fake_code;

static fake_code codes[8] __attribute__((aligned(16)));
static uint8_t names_mem[8][128] __attribute__((aligned(16)));
static uint8_t file_mem[128] __attribute__((aligned(16)));
static uint8_t lt_mem[8][96] __attribute__((aligned(16)));

/* Code object I, named "fI", in "/src/app.py", first line 10*(I+1). Its location table (or
 * lnotab/linetable) gives line first+k for code unit k (3.10+: pairs of 2 bytes / one
 * 1-unit entry per line). */
static uint64_t make_code(int i)
{
    const py_layout *L = py.L;
    uint8_t *c = codes[i].obj;
    memset(c, 0, sizeof codes[i].obj);
    put64(c, L->ob_type, (uint64_t)(uintptr_t)fake_code_type);
    put64(c, L->ob_size, 16); /* code units, 3.11+ */
    uint32_t nm[2] = {'f', (uint32_t)('0' + i)};
    uint64_t name = make_str(names_mem[i], 1, 1, nm, 2);
    uint32_t fl[11];
    const char *file = "/src/app.py";
    for (int k = 0; k < 11; k++)
        fl[k] = (uint8_t)file[k];
    uint64_t fobj = make_str(file_mem, 1, 1, fl, 11);
    put64(c, L->code_name, name);
    if (L->code_qualname >= 0)
        put64(c, L->code_qualname, name);
    put64(c, L->code_filename, fobj);
    put32(c, L->code_firstlineno, 10 * (i + 1));
    /* Line first+u at code unit u: lnotab pairs (2 bytes, +1 line); 3.10 pairs (2 bytes, +0
     * then +1); 3.11+ one-unit entries with the line delta in the code (10: +0, 11: +1) and two
     * column bytes. */
    uint8_t t[48];
    size_t n = 0;
    for (int k = 0; k < 16; k++) {
        if (L->minor <= 9) {
            t[n++] = 2, t[n++] = 1;
        } else if (L->minor == 10) {
            t[n++] = 2, t[n++] = (uint8_t)(k == 0 ? 0 : 1);
        } else {
            t[n++] = (uint8_t)(0x80 | (k == 0 ? 10 : 11) << 3);
            t[n++] = 0, t[n++] = 1;
        }
    }
    uint64_t lt = make_bytes(lt_mem[i], t, n);
    put64(c, L->code_linetable, lt);
    return (uint64_t)(uintptr_t)c;
}

/* Line of code unit K of code object I in the tables above. */
static int32_t fake_line(int i, int k)
{
    return 10 * (i + 1) + k;
}

static cs_pyframe got[CS_PY_MAX_DEPTH + 8];

static void name_of(const cs_pyframe *f, char *q, int n)
{
    if (read_str(f->name_ptr, q, n - 1) < 0)
        q[0] = 0;
}

/* 3.11-3.13: frames in a fake data stack chunk, innermost at the highest address. Frame 1 is
 * the last of an evaluation-loop call: 3.11 marks it is_entry, 3.12+ put a C-stack shim after
 * it (frame 2). 3.13 also has a frame (4) whose f_executable is None. */
static void test_walk_311(int minor)
{
    use_layout(minor);
    const py_layout *L = py.L;
    static uint8_t tstate[512] __attribute__((aligned(16)));
    static uint8_t cframe[16] __attribute__((aligned(16)));
    static uint8_t chunk[16384] __attribute__((aligned(16)));
    static uint64_t none_obj[4];
    memset(tstate, 0, sizeof tstate);
    memset(chunk, 0, sizeof chunk);
    fake_tstate = tstate;
    py.get_tstate = fake_get_tstate;
    put64(tstate, L->tstate_datastack_chunk, (uint64_t)(uintptr_t)chunk);
    put64(tstate, L->tstate_datastack_limit, (uint64_t)(uintptr_t)(chunk + sizeof chunk));
    /* Frames 0 (innermost) .. 5, 200 bytes apart; frame 2 is a shim; in 3.13 frame 4 runs
     * None. */
    uint64_t fr[6];
    for (int i = 0; i < 6; i++)
        fr[i] = (uint64_t)(uintptr_t)(chunk + 16 + (5 - i) * 200);
    for (int i = 0; i < 6; i++) {
        uint8_t *f = (uint8_t *)(uintptr_t)fr[i];
        uint64_t code = make_code(i);
        put64(f, L->frame_code, code);
        put64(f, L->frame_back, i < 5 ? fr[i + 1] : 0);
        /* at code unit i+1 (3.12 prev_instr: the unit before the next instruction) */
        put64(f, L->frame_instr, code + (uint64_t)L->code_adaptive + 2 * (uint64_t)(i + 1));
        if (L->frame_owner >= 0)
            f[L->frame_owner] = 0;
    }
    if (minor == 11)
        ((uint8_t *)(uintptr_t)fr[1])[L->frame_is_entry] = 1;
    else
        ((uint8_t *)(uintptr_t)fr[2])[L->frame_owner] = 3;
    if (minor == 13)
        put64((uint8_t *)(uintptr_t)fr[4], L->frame_code, (uint64_t)(uintptr_t)none_obj);
    if (L->cframe_current_frame >= 0) {
        put64(cframe, L->cframe_current_frame, fr[0]);
        put64(tstate, L->tstate_frame, (uint64_t)(uintptr_t)cframe);
    } else {
        put64(tstate, L->tstate_frame, fr[0]);
    }
    atomic_store(&ready, 1);
    int n = cs_python_stack(got, 64);
    int want_n = minor == 13 ? 4 : minor == 12 ? 5 : 6;
    CHECK(n == want_n, "3.%d walk: %d frames, want %d", minor, n, want_n);
    const int idx13[] = {0, 1, 3, 5}, idx12[] = {0, 1, 3, 4, 5}, idx11[] = {0, 1, 2, 3, 4, 5};
    const int *idx = minor == 13 ? idx13 : minor == 12 ? idx12 : idx11;
    for (int k = 0; k < n; k++) {
        int i = idx[k];
        char q[64];
        name_of(&got[k], q, sizeof q);
        char want[8] = {'f', (char)('0' + i), 0};
        CHECK(strcmp(q, want) == 0, "3.%d frame %d: name %s, want %s", minor, k, q, want);
        CHECK(got[k].line == fake_line(i, i + 1), "3.%d frame %d: line %d, want %d", minor, k,
              got[k].line, fake_line(i, i + 1));
        CHECK(got[k].firstline == 10 * (i + 1), "firstline");
        /* frame 1 is an entry. The outermost frame is not (no shim, no is_entry). */
        unsigned want_flags = i == 1 ? CS_PYF_ENTRY : 0;
        CHECK(got[k].flags == want_flags, "3.%d frame %d: flags %u, want %u", minor, k,
              got[k].flags, want_flags);
    }
    /* Same again: the lines now come from the line cache. */
    CHECK(cs_python_stack(got, 64) == want_n && got[0].line == fake_line(0, 1), "3.%d second walk",
          minor);
    /* max caps the count. */
    CHECK(cs_python_stack(got, 2) == 2, "max");
    /* A frame that has not started (prev_instr one unit before the code): first line. */
    if (minor == 12) {
        uint8_t *f0 = (uint8_t *)(uintptr_t)fr[0];
        put64(f0, L->frame_instr,
              (uint64_t)(uintptr_t)codes[0].obj + (uint64_t)L->code_adaptive - 2);
        CHECK(cs_python_stack(got, 64) == want_n && got[0].line == 10, "unstarted frame: %d",
              got[0].line);
        put64(f0, L->frame_instr,
              (uint64_t)(uintptr_t)codes[0].obj + (uint64_t)L->code_adaptive + 2 * 1000);
        CHECK(cs_python_stack(got, 64) == want_n && got[0].line == -1,
              "instruction beyond the code: %d", got[0].line);
        put64(f0, L->frame_instr,
              (uint64_t)(uintptr_t)codes[0].obj + (uint64_t)L->code_adaptive + 2);
    }
    /* A cycle: frame 5 -> frame 3. */
    put64((uint8_t *)(uintptr_t)fr[5], L->frame_back, fr[3]);
    n = cs_python_stack(got, 64);
    CHECK(n == want_n, "3.%d cycle: %d frames", minor, n);
    /* A self-pointing frame. */
    put64((uint8_t *)(uintptr_t)fr[5], L->frame_back, fr[5]);
    CHECK(cs_python_stack(got, 64) == want_n, "self cycle");
    /* A back pointer into unreadable memory, or misaligned: the stack ends there. */
    uint8_t *g = guarded(1);
    put64((uint8_t *)(uintptr_t)fr[5], L->frame_back, (uint64_t)(uintptr_t)(g + 4096));
    CHECK(cs_python_stack(got, 64) == want_n, "unreadable back");
    put64((uint8_t *)(uintptr_t)fr[5], L->frame_back, fr[1] + 3);
    CHECK(cs_python_stack(got, 64) == want_n, "misaligned back");
    put64((uint8_t *)(uintptr_t)fr[5], L->frame_back, 0);
    /* A code object that is unreadable: 3.12 ends the stack there; 3.13 drops the frame. */
    put64((uint8_t *)(uintptr_t)fr[3], L->frame_code, (uint64_t)(uintptr_t)(g + 4096));
    n = cs_python_stack(got, 64);
    CHECK(n == (minor == 13   ? 3
                : minor == 12 ? 2
                              : 3),
          "3.%d unreadable code: %d frames", minor, n);
    put64((uint8_t *)(uintptr_t)fr[3], L->frame_code, (uint64_t)(uintptr_t)codes[3].obj);
    /* A current frame outside the chunk (a generator's), then frames inside it. */
    static uint8_t genframe[128] __attribute__((aligned(16)));
    memcpy(genframe, (uint8_t *)(uintptr_t)fr[0], sizeof genframe);
    if (L->cframe_current_frame >= 0)
        put64(cframe, L->cframe_current_frame, (uint64_t)(uintptr_t)genframe);
    else
        put64(tstate, L->tstate_frame, (uint64_t)(uintptr_t)genframe);
    CHECK(cs_python_stack(got, 64) == want_n, "generator frame first");
    /* A chain longer than CS_PY_MAX_DEPTH (one code object, many frames in the chunk). */
    uint64_t first = 0;
    for (int i = 0; i < 70; i++) {
        uint8_t *f = chunk + 16 + i * 200;
        memset(f, 0, 128);
        if (minor == 11)
            f[L->frame_is_entry] = 0;
        put64(f, L->frame_code, (uint64_t)(uintptr_t)codes[0].obj);
        put64(f, L->frame_back, i ? (uint64_t)(uintptr_t)(chunk + 16 + (i - 1) * 200) : 0);
        put64(f, L->frame_instr,
              (uint64_t)(uintptr_t)codes[0].obj + (uint64_t)L->code_adaptive + 2);
        first = (uint64_t)(uintptr_t)f;
    }
    /* ... and a generator chain of 100 more frames outside the chunk before it. */
    static uint8_t gens[100][128] __attribute__((aligned(16)));
    for (int i = 0; i < 100; i++) {
        memcpy(gens[i], (uint8_t *)(uintptr_t)first, 128);
        put64(gens[i], L->frame_back, i < 99 ? (uint64_t)(uintptr_t)gens[i + 1] : first);
    }
    if (L->cframe_current_frame >= 0)
        put64(cframe, L->cframe_current_frame, (uint64_t)(uintptr_t)gens[0]);
    else
        put64(tstate, L->tstate_frame, (uint64_t)(uintptr_t)gens[0]);
    n = cs_python_stack(got, CS_PY_MAX_DEPTH + 8);
    CHECK(n == CS_PY_MAX_DEPTH, "3.%d depth cap: %d", minor, n);
    /* No thread state: nothing. */
    fake_tstate = NULL;
    CHECK(cs_python_stack(got, 64) == 0, "no thread state");
    munmap(g, 2 * 4096);
    atomic_store(&ready, 0);
}

/* 3.8: heap frame objects, every one an entry, f_lasti in bytes, f_lineno under a tracer. */
static void test_walk_38(void)
{
    use_layout(8);
    const py_layout *L = py.L;
    static uint8_t tstate[256] __attribute__((aligned(16)));
    static uint8_t frames[4][160] __attribute__((aligned(16)));
    memset(tstate, 0, sizeof tstate);
    fake_tstate = tstate;
    py.get_tstate = fake_get_tstate;
    put64(tstate, L->tstate_frame, (uint64_t)(uintptr_t)frames[0]);
    for (int i = 0; i < 4; i++) {
        memset(frames[i], 0, sizeof frames[i]);
        put64(frames[i], L->ob_type, (uint64_t)(uintptr_t)fake_frame_type);
        put64(frames[i], L->frame_code, make_code(i));
        put64(frames[i], L->frame_back, i < 3 ? (uint64_t)(uintptr_t)frames[i + 1] : 0);
        put32(frames[i], L->frame_instr, 2 * (i + 1));
    }
    put32(frames[3], L->frame_instr, -1); /* not started */
    put64(frames[2], L->frame_trace, 1);  /* traced: f_lineno wins */
    put32(frames[2], L->frame_lineno, 4242);
    atomic_store(&ready, 1);
    int n = cs_python_stack(got, 64);
    CHECK(n == 4, "3.8 walk: %d", n);
    int32_t want[4] = {10 + 1, 20 + 2, 4242, 40};
    for (int i = 0; i < 4; i++) {
        CHECK(got[i].line == want[i], "3.8 frame %d: line %d, want %d", i, got[i].line, want[i]);
        CHECK(got[i].flags == CS_PYF_ENTRY, "3.8 frame %d: entry", i);
    }
    /* A frame object whose type is no longer the frame type (freed, reused): stop there. */
    put64(frames[2], L->ob_type, 77);
    CHECK(cs_python_stack(got, 64) == 2, "3.8 freed frame");
    atomic_store(&ready, 0);
}

/* --- the caches ------------------------------------------------------------------------ */

static cs_pyframe named(int i, uint64_t name, uint64_t file)
{
    cs_pyframe f = {.code = 0x100000 + (uint64_t)i * 64,
                    .name_ptr = name,
                    .file_ptr = file,
                    .line = 1,
                    .firstline = i,
                    .flags = 0};
    return f;
}

static uint8_t many_names[4][256] __attribute__((aligned(16)));
static _Atomic int go;

static void *inserter(void *arg)
{
    uint64_t name = (uint64_t)(uintptr_t)arg, file = (uint64_t)(uintptr_t)many_names[1];
    while (!atomic_load(&go))
        ;
    for (int i = 0; i < 3000; i++) {
        cs_pyframe f = named(i, name, file);
        cs_python_remember(&f);
    }
    return NULL;
}

static void test_caches(void)
{
    use_layout(12);
    void *p = mmap(NULL, sizeof(name_slot) * NAME_SLOTS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *q = mmap(NULL, sizeof(line_slot) * LINE_SLOTS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED && q != MAP_FAILED, "mmap caches");
    atomic_store(&names, (name_slot *)p);
    atomic_store(&lines, (line_slot *)q);
    atomic_store(&ready, 1);
    uint32_t a[] = {'w', 'o', 'r', 'k'}, b[] = {'/', 'a', '.', 'p', 'y'};
    uint64_t name = make_str(many_names[0], 1, 1, a, 4), file = make_str(many_names[1], 1, 1, b, 5);
    const char *qn, *fn;

    /* Several threads remembering overlapping keys at once. */
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, inserter, (void *)(uintptr_t)name);
    atomic_store(&go, 1);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    uint64_t used = cs_python_names_used();
    CHECK(used == 3000, "concurrent inserts: %llu slots for 3000 keys", (unsigned long long)used);
    for (int i = 0; i < 3000; i++) {
        cs_pyframe f = named(i, name, file);
        CHECK(cs_python_lookup(&f, &qn, &fn) == 1 && strcmp(qn, "work") == 0 &&
                  strcmp(fn, "/a.py") == 0,
              "lookup %d", i);
    }
    /* Any part of the key differing: not found. */
    cs_pyframe f = named(5, name, file);
    f.firstline = 6;
    CHECK(!cs_python_lookup(&f, &qn, &fn), "other firstline");
    f = named(5, name, file + 8);
    CHECK(!cs_python_lookup(&f, &qn, &fn), "other file");
    /* Names that cannot be read are not remembered. */
    f = named(99999, 8, file);
    cs_python_remember(&f);
    CHECK(!cs_python_lookup(&f, &qn, &fn), "unreadable name remembered");
    /* Fill up: new keys are counted as dropped, old ones stay. */
    for (int i = 3000; i < (int)NAME_SLOTS + 100; i++) {
        cs_pyframe g = named(i, name, file);
        cs_python_remember(&g);
    }
    CHECK(cs_python_names_used() <= NAME_LIMIT + 4, "limit: %llu",
          (unsigned long long)cs_python_names_used());
    CHECK(cs_python_names_dropped() > 0, "drops counted");
    f = named(10, name, file);
    CHECK(cs_python_lookup(&f, &qn, &fn) == 1, "old key after full");
    /* Remembering a known key costs nothing and adds nothing. */
    uint64_t u = cs_python_names_used();
    cs_python_remember(&f);
    CHECK(cs_python_names_used() == u, "known key added again");

    /* The line cache: a hit needs every part of the key. */
    f = named(1, name, file);
    int32_t line = 0;
    CHECK(!line_cached(&f, 0x5000, 8, &line), "empty line cache");
    line_store(&f, 0x5000, 8, 77);
    CHECK(line_cached(&f, 0x5000, 8, &line) && line == 77, "line cache hit");
    CHECK(!line_cached(&f, 0x5008, 8, &line), "other table");
    CHECK(!line_cached(&f, 0x5000, 10, &line), "other offset");
    f.name_ptr += 8;
    CHECK(!line_cached(&f, 0x5000, 8, &line), "other name");
    atomic_store(&ready, 0);
}

static void test_versions(void)
{
    CHECK(parse_version("3.9.18 (main, Jan  1 2024, 00:00:00) [GCC]") == 0x030912f0, "3.9.18");
    CHECK(parse_version("3.10.13") == 0x030a0df0, "3.10.13");
    CHECK(parse_version("3.13.0rc1+ (heads/3.13)") == 0x030d00c1, "rc");
    CHECK(parse_version("3.12.0a7") == 0x030c00a7, "alpha");
    CHECK(parse_version("2.7.18") == 0x020712f0, "2.7");
    CHECK(parse_version("garbage") == 0 && parse_version("3.") == 0 && parse_version(NULL) == 0,
          "garbage");
}

/* --- modes ------------------------------------------------------------------------------ */

static int print_table(void)
{
    for (int minor = 8; minor <= 13; minor++) {
        const char *name;
        long value;
        for (int i = 0; cs_python_layout_field(minor, i, &name, &value); i++)
            if (value >= 0)
                printf("3.%d %s %ld\n", minor, name, value);
    }
    return 0;
}

static cs_pyframe embed_frames[64];
static int embed_n = -1, embed_gil = -2;

static void on_embed_signal(int sig)
{
    (void)sig;
    embed_n = cs_python_stack(embed_frames, 64);
    embed_gil = cs_python_holds_gil();
    for (int i = 0; i < embed_n; i++)
        cs_python_remember(&embed_frames[i]);
}

static int embed(const char *lib)
{
    const char *why;
    CHECK(cs_python_init(&why) == 0, "before dlopen: %s", why);
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    CHECK(h, "dlopen %s: %s", lib, dlerror());
    CHECK(dlsym(RTLD_DEFAULT, "_PyRuntime") == NULL, "libpython is visible globally");
    CHECK(cs_python_try_init() == 1, "after dlopen: %s", cs_python_status());
    void (*init)(int) = (void (*)(int))(uintptr_t)dlsym(h, "Py_InitializeEx");
    int (*run)(const char *) = (int (*)(const char *))(uintptr_t)dlsym(h, "PyRun_SimpleString");
    CHECK(init && run, "Py_InitializeEx");
    signal(SIGUSR2, on_embed_signal);
    init(0);
    CHECK(run("import os\n"
              "def inner():\n"
              "    os.kill(os.getpid(), 12)\n"
              "def outer():\n"
              "    inner()\n"
              "outer()\n") == 0,
          "PyRun_SimpleString");
    CHECK(embed_n >= 3, "embedded: %d frames", embed_n);
    const char *want[] = {"inner", "outer", "<module>"};
    const int want_line[] = {3, 5, 6};
    for (int i = 0; i < 3; i++) {
        const char *q = "?", *f = "?";
        cs_python_lookup(&embed_frames[i], &q, &f);
        CHECK(strcmp(q, want[i]) == 0 && strcmp(f, "<string>") == 0 &&
                  embed_frames[i].line == want_line[i],
              "embedded frame %d: %s %s:%d", i, q, f, embed_frames[i].line);
    }
    CHECK(embed_gil == 1, "embedded: holds the GIL: %d", embed_gil);
    printf("test_python: embedded 0x%08x via RTLD_LOCAL: OK\n", cs_python_version());
    return 0;
}

int main(int argc, char **argv)
{
    catch_faults();
    if (argc > 1 && strcmp(argv[1], "--table") == 0)
        return print_table();
    if (argc > 2 && strcmp(argv[1], "--embed") == 0)
        return embed(argv[2]);

    const char *why = NULL;
    CHECK(cs_python_init(&why) == 0 && why && strstr(why, "no Python"), "init: %s", why);
    CHECK(cs_python_version() == 0, "version without Python");
    CHECK(cs_python_stack(got, 8) == 0, "stack without Python");
    CHECK(cs_python_holds_gil() == -1, "GIL without Python");
    CHECK(cs_python_try_init() == 0, "try_init without Python");
    cs_pyframe f = {0};
    const char *q, *fn;
    cs_python_remember(&f);
    CHECK(!cs_python_lookup(&f, &q, &fn), "lookup without Python");

    test_versions();
    test_reads();
    test_lnotab();
    test_310();
    test_locations();
    test_bad_tables();
    test_strings();
    test_walk_311(11);
    test_walk_311(12);
    test_walk_311(13);
    test_walk_38();
    test_caches();
    printf("test_python: OK\n");
    return 0;
}
