/* test_pprof.c: unit test for uploader/pprof.c, the hand-written pprof encoder.
 *
 * Usage: test_pprof OUT.pb.gz   builds a small profile, checks the encoding with an
 *                               independent protobuf decoder, injects every possible
 *                               allocation failure, and writes the gzipped profile to
 *                               OUT.pb.gz for tests/unit/test_pprof.sh to feed to pprof.
 *        test_pprof --bench     times 100k samples x 50 frames (build with -O2, no ASan).
 *
 * Exits 1 with a message on the first failure. Must never depend on the network, on Go, or
 * on anything outside its arguments.
 */
#include "pprof.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_pprof: FAIL: ");
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

/* ---- counting, failure-injecting allocator ------------------------------------------------ */

typedef struct {
    long fail_at; /* index of the allocation that fails; -1 = never */
    long calls;
    long live;
} alloc_state;

static int alloc_should_fail(alloc_state *st)
{
    return st->fail_at >= 0 && st->calls++ == st->fail_at;
}

static void *t_malloc(void *ctx, size_t n)
{
    alloc_state *st = ctx;
    if (alloc_should_fail(st))
        return NULL;
    void *p = malloc(n);
    if (p)
        st->live++;
    return p;
}

static void *t_realloc(void *ctx, void *ptr, size_t n)
{
    alloc_state *st = ctx;
    if (alloc_should_fail(st))
        return NULL;
    void *p = realloc(ptr, n);
    if (p && !ptr)
        st->live++;
    return p;
}

static void t_free(void *ctx, void *ptr)
{
    alloc_state *st = ctx;
    if (ptr)
        st->live--;
    free(ptr);
}

/* ---- minimal protobuf reader, independent of the encoder ---------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} rd;

static uint64_t rd_varint(rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        CHECK(r->p < r->end, "truncated varint");
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    fail("varint too long");
    return 0;
}

/* Reads one field; for length-delimited fields *sub is the payload. */
static int rd_field(rd *r, unsigned *field, uint64_t *v, rd *sub)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key = rd_varint(r);
    *field = (unsigned)(key >> 3);
    switch (key & 7) {
    case 0: *v = rd_varint(r); break;
    case 2: {
        uint64_t n = rd_varint(r);
        CHECK(n <= (uint64_t)(r->end - r->p), "length overruns buffer");
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
        break;
    }
    default: fail("unexpected wire type %u", (unsigned)(key & 7));
    }
    return 1;
}

/* Strict UTF-8 check written from the Unicode definition rather than byte tables. */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        if (len > 1)
            c &= 0x7f >> len;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (c < min_cp[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

#define MAXN 256

/* What the decoder learned about one encoded profile. */
typedef struct {
    size_t nstr, nsample, nloc, nfunc, nmap, ntype;
    char *str[MAXN];
    size_t str_len[MAXN];
    uint64_t loc_id[MAXN], func_id[MAXN], map_id[MAXN];
    uint64_t loc_func[MAXN], loc_map[MAXN], loc_addr[MAXN];
    uint64_t func_name[MAXN];
    uint64_t map_file[MAXN], map_build[MAXN];
    uint64_t type_name[MAXN];
    size_t sample_nvals[MAXN];
    int64_t sample_val0[MAXN];
    uint64_t sample_locs[MAXN][64];
    size_t sample_nlocs[MAXN];
    size_t sample_nlabels[MAXN];
} decoded;

static void decoded_free(decoded *d)
{
    for (size_t i = 0; i < d->nstr; i++)
        free(d->str[i]);
}

static size_t count_packed(rd sub, uint64_t *outv, size_t max)
{
    size_t n = 0;
    while (sub.p < sub.end) {
        uint64_t v = rd_varint(&sub);
        if (n < max && outv)
            outv[n] = v;
        n++;
    }
    return n;
}

static void decode(const uint8_t *buf, size_t len, decoded *d)
{
    memset(d, 0, sizeof *d);
    rd r = {buf, buf + len}, sub, s2;
    unsigned f, g, h;
    uint64_t v;
    while (rd_field(&r, &f, &v, &sub)) {
        switch (f) {
        case 1: /* sample_type */
            CHECK(d->ntype < MAXN, "too many sample types");
            while (rd_field(&sub, &g, &v, &s2))
                if (g == 1)
                    d->type_name[d->ntype] = v;
            d->ntype++;
            break;
        case 2: { /* sample */
            size_t i = d->nsample++;
            CHECK(i < MAXN, "too many samples");
            while (rd_field(&sub, &g, &v, &s2)) {
                if (g == 1)
                    d->sample_nlocs[i] = count_packed(s2, d->sample_locs[i], 64);
                else if (g == 2) {
                    uint64_t vals[8] = {0};
                    d->sample_nvals[i] = count_packed(s2, vals, 8);
                    d->sample_val0[i] = (int64_t)vals[0];
                } else if (g == 3)
                    d->sample_nlabels[i]++;
            }
            break;
        }
        case 3: { /* mapping */
            size_t i = d->nmap++;
            CHECK(i < MAXN, "too many mappings");
            while (rd_field(&sub, &g, &v, &s2)) {
                if (g == 1)
                    d->map_id[i] = v;
                else if (g == 5)
                    d->map_file[i] = v;
                else if (g == 6)
                    d->map_build[i] = v;
            }
            break;
        }
        case 4: { /* location */
            size_t i = d->nloc++;
            CHECK(i < MAXN, "too many locations");
            while (rd_field(&sub, &g, &v, &s2)) {
                if (g == 1)
                    d->loc_id[i] = v;
                else if (g == 2)
                    d->loc_map[i] = v;
                else if (g == 3)
                    d->loc_addr[i] = v;
                else if (g == 4) {
                    rd s3 = s2, s4;
                    while (rd_field(&s3, &h, &v, &s4))
                        if (h == 1)
                            d->loc_func[i] = v;
                }
            }
            break;
        }
        case 5: { /* function */
            size_t i = d->nfunc++;
            CHECK(i < MAXN, "too many functions");
            while (rd_field(&sub, &g, &v, &s2)) {
                if (g == 1)
                    d->func_id[i] = v;
                else if (g == 2)
                    d->func_name[i] = v;
            }
            break;
        }
        case 6: { /* string_table */
            size_t i = d->nstr++;
            CHECK(i < MAXN, "too many strings");
            size_t n = (size_t)(sub.end - sub.p);
            d->str[i] = malloc(n + 1);
            CHECK(d->str[i], "out of memory");
            memcpy(d->str[i], sub.p, n);
            d->str[i][n] = '\0';
            d->str_len[i] = n;
            break;
        }
        default: break;
        }
    }
}

static const char *dstr(const decoded *d, uint64_t idx)
{
    CHECK(idx < d->nstr, "string index %llu out of range (%zu strings)", (unsigned long long)idx,
          d->nstr);
    return d->str[idx];
}

static int find_id(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return (int)i;
    return -1;
}

/* The invariants Pyroscope and pprof rely on; see pprof.h. */
static void check_invariants(const decoded *d, size_t want_types)
{
    CHECK(d->nstr >= 1 && d->str_len[0] == 0, "string_table[0] is not \"\"");
    for (size_t i = 0; i < d->nstr; i++) {
        CHECK(valid_utf8((const uint8_t *)d->str[i], d->str_len[i]), "string %zu not UTF-8", i);
        CHECK(d->str_len[i] <= 65535, "string %zu is %zu bytes", i, d->str_len[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(d->str_len[i] != d->str_len[j] || memcmp(d->str[i], d->str[j], d->str_len[i]),
                  "string %zu duplicates %zu: not interned", i, j);
    }
    CHECK(d->ntype == want_types, "%zu sample types, want %zu", d->ntype, want_types);
    for (size_t i = 0; i < d->ntype; i++)
        CHECK(!strchr(dstr(d, d->type_name[i]), '-'), "sample type '%s' has '-'",
              dstr(d, d->type_name[i]));
    for (size_t i = 0; i < d->nmap; i++) {
        CHECK(d->map_id[i] != 0, "mapping id 0");
        CHECK(find_id(d->map_id, i, d->map_id[i]) < 0, "duplicate mapping id");
        dstr(d, d->map_file[i]);
        dstr(d, d->map_build[i]);
    }
    for (size_t i = 0; i < d->nfunc; i++) {
        CHECK(d->func_id[i] != 0, "function id 0");
        CHECK(find_id(d->func_id, i, d->func_id[i]) < 0, "duplicate function id");
        dstr(d, d->func_name[i]);
    }
    for (size_t i = 0; i < d->nloc; i++) {
        CHECK(d->loc_id[i] != 0, "location id 0");
        CHECK(find_id(d->loc_id, i, d->loc_id[i]) < 0, "duplicate location id");
        CHECK(find_id(d->func_id, d->nfunc, d->loc_func[i]) >= 0, "location without function");
        CHECK(d->loc_map[i] == 0 || find_id(d->map_id, d->nmap, d->loc_map[i]) >= 0,
              "location %llu refers to missing mapping", (unsigned long long)d->loc_id[i]);
    }
    for (size_t i = 0; i < d->nsample; i++) {
        CHECK(d->sample_nvals[i] == want_types, "sample %zu has %zu values, want %zu", i,
              d->sample_nvals[i], want_types);
        for (size_t k = 0; k < d->sample_nlocs[i] && k < 64; k++)
            CHECK(find_id(d->loc_id, d->nloc, d->sample_locs[i][k]) >= 0,
                  "sample %zu refers to missing location", i);
    }
}

/* Name of the leaf function of sample i. */
static const char *leaf_name(const decoded *d, size_t i)
{
    int l = find_id(d->loc_id, d->nloc, d->sample_locs[i][0]);
    CHECK(l >= 0, "leaf location missing");
    int fn = find_id(d->func_id, d->nfunc, d->loc_func[l]);
    CHECK(fn >= 0, "leaf function missing");
    return dstr(d, d->func_name[fn]);
}

/* ---- the fixture profile ----------------------------------------------------------------- */

#define APP  "/usr/bin/app"
#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"

static const cs_pprof_frame F_HASH = {"compute_hash", "hash.c", 42, APP, "abc123", 0x1234};
static const cs_pprof_frame F_REQ = {"process_request", "server.c", 100, APP, "abc123", 0x2000};
static const cs_pprof_frame F_MAIN = {"main", "main.c", 10, APP, "abc123", 0x3000};
static const cs_pprof_frame F_MEMCPY = {"memcpy", NULL, 0, LIBC, "libcbid", 0x9abc};
static const cs_pprof_frame F_BAD = {"bad_\xff\xfename", "bad.c", 7, APP, "abc123", 0x4000};
static const cs_pprof_frame F_ANON = {NULL, NULL, 0, LIBC, "libcbid", 0x55};

/* U+FFFD twice: each invalid byte is replaced on its own. */
#define BAD_SANITIZED "bad_\xef\xbf\xbd\xef\xbf\xbdname"

#define NSAMPLES 4

/* Builds the fixture. Returns NULL if creating the profile or declaring sample types fails;
 * failed add_sample calls are counted in *failed_adds and the rest still get added. */
static cs_pprof *build_fixture(const cs_alloc *a, int *failed_adds)
{
    cs_pprof *p = cs_pprof_new_with_alloc(a, "cpu", "nanoseconds", 10000000, 1700000000000000000LL,
                                          1000000000LL);
    if (!p)
        return NULL;
    if (cs_pprof_add_sample_type(p, "cpu", "nanoseconds") != 0 ||
        cs_pprof_add_sample_type(p, "samples", "count") != 1) {
        cs_pprof_free(p);
        return NULL;
    }
    const cs_pprof_frame s1[] = {F_HASH, F_REQ, F_MAIN};
    const cs_pprof_frame s2[] = {F_MEMCPY, F_HASH, F_REQ, F_MAIN};
    const cs_pprof_frame s3[] = {F_BAD, F_MAIN};
    const cs_pprof_frame s4[] = {F_ANON, F_MAIN};
    const cs_pprof_label w1[] = {{"thread_name", "worker-1", 0}, {"thread_id", NULL, 101}};
    const cs_pprof_label io[] = {
        {"thread_name", "io", 0}, {"thread_id", NULL, 102}, {NULL, "dropped: no key", 0}};
    const int64_t v1[] = {10000000, 1}, v2[] = {20000000, 2}, v3[] = {30000000, 3},
                  v4[] = {40000000, 4};
    /* Separate statements: initializer-list evaluation order is unspecified in C. */
    int rc[NSAMPLES];
    rc[0] = cs_pprof_add_sample(p, s1, 3, v1, w1, 2);
    rc[1] = cs_pprof_add_sample(p, s2, 4, v2, w1, 2);
    rc[2] = cs_pprof_add_sample(p, s3, 2, v3, io, 3);
    rc[3] = cs_pprof_add_sample(p, s4, 2, v4, io, 3);
    for (int i = 0; i < NSAMPLES; i++) {
        if (rc[i] != 0) {
            CHECK(errno == ENOMEM, "add_sample failed with errno %d, want ENOMEM", errno);
            (*failed_adds)++;
        }
    }
    return p;
}

static void check_fixture(const decoded *d)
{
    check_invariants(d, 2);
    CHECK(d->nsample == NSAMPLES, "%zu samples, want %d", d->nsample, NSAMPLES);
    /* 6 distinct frames; main is shared by all samples, hash/request by two. */
    CHECK(d->nloc == 6, "%zu locations, want 6 (frames not shared?)", d->nloc);
    CHECK(d->nfunc == 6, "%zu functions, want 6", d->nfunc);
    CHECK(d->nmap == 2, "%zu mappings, want 2 (app, libc)", d->nmap);
    CHECK(!strcmp(dstr(d, d->type_name[0]), "cpu"), "sample type 0 not cpu");
    CHECK(!strcmp(dstr(d, d->type_name[1]), "samples"), "sample type 1 not samples");
    CHECK(!strcmp(leaf_name(d, 0), "compute_hash"), "sample 0 leaf is %s", leaf_name(d, 0));
    CHECK(!strcmp(leaf_name(d, 1), "memcpy"), "sample 1 leaf is %s", leaf_name(d, 1));
    CHECK(!strcmp(leaf_name(d, 2), BAD_SANITIZED), "invalid UTF-8 name not sanitised: %s",
          leaf_name(d, 2));
    CHECK(!strcmp(leaf_name(d, 3), "libc.so.6+0x55"), "unnamed frame became %s", leaf_name(d, 3));
    CHECK(d->sample_val0[1] == 20000000, "sample 1 cpu value wrong");
    CHECK(d->sample_nlabels[2] == 2, "keyless label not dropped");
    /* Both mappings must carry file name and build id. */
    for (size_t i = 0; i < d->nmap; i++) {
        const char *file = dstr(d, d->map_file[i]), *bid = dstr(d, d->map_build[i]);
        CHECK((!strcmp(file, APP) && !strcmp(bid, "abc123")) ||
                  (!strcmp(file, LIBC) && !strcmp(bid, "libcbid")),
              "mapping %zu is %s/%s", i, file, bid);
    }
    CHECK(d->sample_locs[0][2] == d->sample_locs[3][1], "main not shared between samples");
}

/* ---- individual checks ------------------------------------------------------------------- */

static void gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    size_t cap = in_len * 8 + 1024;
    uint8_t *buf = malloc(cap);
    CHECK(buf, "out of memory");
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(inflateInit2(&z, 15 + 16) == Z_OK, "inflateInit2");
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)in_len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END, "gzip output does not inflate");
    *out_len = z.total_out;
    inflateEnd(&z);
    *out = buf;
}

static void test_fixture_and_write(const char *path)
{
    int failed = 0;
    cs_pprof *p = build_fixture(NULL, &failed);
    CHECK(p && failed == 0, "building fixture failed");
    CHECK(cs_pprof_sample_count(p) == NSAMPLES, "sample_count %zu", cs_pprof_sample_count(p));

    uint8_t *raw, *gz, *un;
    size_t raw_len, gz_len, un_len;
    CHECK(cs_pprof_encode(p, 0, &raw, &raw_len) == 0, "raw encode failed");
    CHECK(cs_pprof_encode(p, 1, &gz, &gz_len) == 0, "gzip encode failed");
    CHECK(gz_len > 18 && gz[0] == 0x1f && gz[1] == 0x8b, "gzip output lacks gzip magic");
    gunzip(gz, gz_len, &un, &un_len);
    CHECK(un_len == raw_len && !memcmp(un, raw, raw_len), "gunzip(gzip encode) != raw encode");

    decoded d;
    decode(raw, raw_len, &d);
    check_fixture(&d);
    decoded_free(&d);

    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot open %s: %s", path, strerror(errno));
    CHECK(fwrite(gz, 1, gz_len, f) == gz_len && fclose(f) == 0, "cannot write %s", path);

    free(raw);
    free(gz);
    free(un);
    cs_pprof_free(p);
}

/* Fails each allocation in turn: every failure must surface as -1/NULL, leave nothing
 * allocated after cs_pprof_free, and leave an encodable, valid profile behind. */
static void test_alloc_failures(void)
{
    alloc_state st = {-1, 0, 0};
    const cs_alloc a = {t_malloc, t_realloc, t_free, &st};
    long injected = 0;
    for (long n = 0;; n++) {
        st = (alloc_state){n, 0, 0};
        int failed_adds = 0, failed = 0;
        cs_pprof *p = build_fixture(&a, &failed_adds);
        uint8_t *out = NULL;
        size_t out_len = 0;
        if (!p) {
            failed = 1;
        } else if (cs_pprof_encode(p, 1, &out, &out_len) != 0) {
            failed = 1;
            CHECK(errno == ENOMEM, "encode failed with errno %d", errno);
            CHECK(out == NULL, "encode failure touched *out");
        }
        int reached = st.calls > n; /* allocation #n happened, so it was failed */
        CHECK(!reached || failed || failed_adds, "failure of allocation #%ld was swallowed", n);
        if (p && failed_adds) {
            /* The profile must still be consistent without the failed sample(s). */
            st.fail_at = -1;
            uint8_t *raw;
            size_t raw_len;
            CHECK(cs_pprof_encode(p, 0, &raw, &raw_len) == 0, "encode after failure");
            decoded d;
            decode(raw, raw_len, &d);
            check_invariants(&d, 2);
            CHECK(d.nsample == (size_t)(NSAMPLES - failed_adds), "half-added sample kept");
            decoded_free(&d);
            t_free(&st, raw);
        }
        t_free(&st, out);
        cs_pprof_free(p);
        CHECK(st.live == 0, "leak: %ld blocks live after failing allocation #%ld", st.live, n);
        if (!reached)
            break; /* a clean run never got to allocation #n: every point is covered */
        injected++;
    }
    CHECK(injected > 10, "allocation failure injection did not run (%ld)", injected);
    printf("test_pprof: %ld allocation failure points checked, no leaks\n", injected);
}

static void test_edge_cases(void)
{
    cs_pprof *p = cs_pprof_new(NULL, NULL, 0, 0, 0);
    CHECK(p, "cs_pprof_new(NULL...) failed");
    const int64_t v[] = {1, 2};
    CHECK(cs_pprof_add_sample(p, NULL, 0, v, NULL, 0) == -1 && errno == EINVAL,
          "add_sample before any sample type must fail with EINVAL");
    CHECK(cs_pprof_add_sample_type(p, "alloc-space", "bytes") == 0, "add_sample_type");
    CHECK(cs_pprof_add_sample_type(p, NULL, NULL) == 1, "add_sample_type(NULL, NULL)");

    /* Over-long symbol, ending in a multi-byte char that straddles the cap. */
    size_t big = 70000;
    char *longname = malloc(big + 1);
    CHECK(longname, "out of memory");
    memset(longname, 'x', big);
    memcpy(longname + 65533, "\xe2\x82\xac", 3); /* bytes 65533..65535: crosses the cap */
    longname[big] = '\0';
    const cs_pprof_frame frames[] = {
        {NULL, NULL, 0, NULL, NULL, 0},
        {longname, "\xc0\xaf", -1, NULL, "only-build-id", 0},
        {"\xed\xa0\x80surrogate\xf4\x90\x80\x80", NULL, 0, "/m/", NULL, 0},
        {"", NULL, 0, NULL, NULL, 0x10},
    };
    const cs_pprof_label labels[] = {{"k", "\xff", 0}, {"", "x", 0}, {"n", NULL, -5}};
    CHECK(cs_pprof_add_sample(p, frames, 4, NULL, labels, 3) == 0, "add_sample with NULLs");
    CHECK(cs_pprof_add_sample(p, NULL, 0, v, NULL, 0) == 0, "empty stack");
    CHECK(cs_pprof_add_sample(p, NULL, 1, v, NULL, 0) == -1 && errno == EINVAL,
          "NULL frames with count must fail with EINVAL");
    CHECK(cs_pprof_add_sample_type(p, "late", "count") == -1 && errno == EINVAL,
          "add_sample_type after samples must fail with EINVAL");
    CHECK(cs_pprof_sample_count(p) == 2, "sample_count after failures");

    uint8_t *raw;
    size_t raw_len;
    CHECK(cs_pprof_encode(p, 0, &raw, &raw_len) == 0, "encode edge profile");
    decoded d;
    decode(raw, raw_len, &d);
    check_invariants(&d, 2);
    CHECK(!strcmp(dstr(&d, d.type_name[0]), "alloc_space"), "'-' not replaced in sample type");
    CHECK(!strcmp(leaf_name(&d, 0), "[unknown]"), "NULL frame became %s", leaf_name(&d, 0));
    int found_long = 0;
    for (size_t i = 0; i < d.nstr; i++)
        if (d.str_len[i] == 65533 && d.str[i][0] == 'x')
            found_long = 1; /* cut before the straddling char, not inside it */
    CHECK(found_long, "over-long symbol not capped at a character boundary");
    CHECK(d.nmap == 2, "want mappings for build-id-only and module-only frames, got %zu", d.nmap);
    CHECK(d.sample_nlocs[1] == 0 && d.sample_nvals[1] == 2, "empty-stack sample mangled");
    decoded_free(&d);
    free(raw);
    free(longname);
    cs_pprof_free(p);

    CHECK(cs_pprof_sample_count(NULL) == 0, "sample_count(NULL)");
    CHECK(cs_pprof_add_sample_type(NULL, "a", "b") == -1, "add_sample_type(NULL)");
    CHECK(cs_pprof_encode(NULL, 0, &raw, &raw_len) == -1, "encode(NULL)");
    cs_pprof_free(NULL);
}

/* The encoder caches frames by the caller's string pointers; a caller reusing one buffer
 * for different symbols must still get distinct functions. */
static void test_reused_buffers(void)
{
    cs_pprof *p = cs_pprof_new("cpu", "nanoseconds", 1, 0, 0);
    CHECK(p && cs_pprof_add_sample_type(p, "cpu", "nanoseconds") == 0, "setup");
    char fn[32], mod[32];
    const cs_pprof_frame f = {fn, NULL, 1, mod, NULL, 0x10};
    const int64_t v[] = {1};
    const char *names[] = {"alpha", "beta", "alpha", "\xff\xfe", "\xff\xfe"};
    for (size_t i = 0; i < 5; i++) {
        strcpy(fn, names[i]);
        strcpy(mod, i == 2 ? "libother.so" : "libone.so");
        CHECK(cs_pprof_add_sample(p, &f, 1, v, NULL, 0) == 0, "add_sample %zu", i);
    }
    uint8_t *raw;
    size_t raw_len;
    CHECK(cs_pprof_encode(p, 0, &raw, &raw_len) == 0, "encode");
    decoded d;
    decode(raw, raw_len, &d);
    check_invariants(&d, 1);
    CHECK(!strcmp(leaf_name(&d, 0), "alpha") && !strcmp(leaf_name(&d, 1), "beta") &&
              !strcmp(leaf_name(&d, 2), "alpha") &&
              !strcmp(leaf_name(&d, 3), "\xef\xbf\xbd\xef\xbf\xbd"),
          "reused caller buffer confused the frame cache");
    /* alpha@libone, beta@libone, alpha@libother, U+FFFD x2@libone: 4 locations. */
    CHECK(d.nloc == 4 && d.nmap == 2, "%zu locations / %zu mappings, want 4 / 2", d.nloc, d.nmap);
    CHECK(d.sample_locs[3][0] == d.sample_locs[4][0], "sanitised frame not deduplicated");
    decoded_free(&d);
    free(raw);
    cs_pprof_free(p);
}

/* ---- benchmark --------------------------------------------------------------------------- */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(void)
{
    enum { SAMPLES = 100000, DEPTH = 50, PER_LEVEL = 200, MODULES = 20 };
    static char names[DEPTH * PER_LEVEL][48], files[DEPTH * PER_LEVEL][32], mods[MODULES][48];
    for (int m = 0; m < MODULES; m++)
        snprintf(mods[m], sizeof mods[m], "/usr/lib/x86_64-linux-gnu/libmod%d.so", m);
    for (int i = 0; i < DEPTH * PER_LEVEL; i++) {
        snprintf(names[i], sizeof names[i], "namespace::Class%d::method_%d", i % 97, i);
        snprintf(files[i], sizeof files[i], "src/file_%d.cc", i % 500);
    }
    cs_pprof *p = cs_pprof_new("cpu", "nanoseconds", 10000000, 0, 0);
    CHECK(p && cs_pprof_add_sample_type(p, "cpu", "nanoseconds") == 0 &&
              cs_pprof_add_sample_type(p, "samples", "count") == 1,
          "bench setup");
    cs_pprof_frame fr[DEPTH];
    cs_pprof_label lab[2] = {{"thread_name", "worker", 0}, {"thread_id", NULL, 0}};
    uint32_t seed = 12345;
    double t0 = now_sec();
    for (int s = 0; s < SAMPLES; s++) {
        for (int j = 0; j < DEPTH; j++) {
            seed = seed * 1103515245u + 12345u;
            int k = j * PER_LEVEL + (int)((seed >> 16) % PER_LEVEL);
            fr[j] = (cs_pprof_frame){names[k],          files[k], k % 1000,
                                     mods[k % MODULES], "bid",    (uint64_t)k * 16};
        }
        lab[1].num = s % 64;
        int64_t v[2] = {10000000, 1};
        CHECK(cs_pprof_add_sample(p, fr, DEPTH, v, lab, 2) == 0, "bench add_sample");
    }
    double t1 = now_sec();
    uint8_t *raw, *gz;
    size_t raw_len, gz_len;
    CHECK(cs_pprof_encode(p, 0, &raw, &raw_len) == 0, "bench raw encode");
    double t2 = now_sec();
    CHECK(cs_pprof_encode(p, 1, &gz, &gz_len) == 0, "bench gzip encode");
    double t3 = now_sec();
    printf("bench: %d samples x %d frames\n", SAMPLES, DEPTH);
    printf("  add_sample total: %.3f s (%.1f ns/frame)\n", t1 - t0,
           (t1 - t0) * 1e9 / ((double)SAMPLES * DEPTH));
    printf("  encode raw:       %.3f s, %zu bytes\n", t2 - t1, raw_len);
    printf("  encode gzip:      %.3f s, %zu bytes\n", t3 - t2, gz_len);
    free(raw);
    free(gz);
    cs_pprof_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--bench"))
        return bench();
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.pb.gz | --bench\n", argv[0]);
        return 1;
    }
    test_edge_cases();
    test_reused_buffers();
    test_alloc_failures();
    test_fixture_and_write(argv[1]);
    printf("test_pprof: OK, wrote %s\n", argv[1]);
    return 0;
}
