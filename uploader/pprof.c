/* pprof.c: builds perftools.profiles.Profile messages (google/pprof proto/profile.proto) in
 * memory and serialises them (protobuf.c writes the wire format, gzip.c wraps it). Strings,
 * functions, mappings and locations are interned through open-addressing hash tables so cost stays
 * linear in the number of frames added.
 *
 * Must never: touch global state, crash on NULL/invalid input, leak on allocation failure,
 * or emit anything Pyroscope rejects: string_table[0] must be "", no id may be 0, every
 * sample carries exactly one value per sample type, sample type names contain no '-', every
 * string is valid UTF-8 and at most 65535 bytes.
 */
#include "pprof.h"

#include "../recorder/hash.h"
#include "gzip.h"
#include "protobuf.h"
#include "utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pyroscope's default max_profile_symbol_value_length; longer strings get truncated there
 * anyway, and from the wrong end (it keeps the suffix). */
#define MAX_STR 65535u
/* Ids are stored as uint32 and slots hold id+1 style indices, so stop short of wrapping. */
#define MAX_ENTRIES (UINT32_MAX - 2u)

/* Protobuf field numbers, checked against google/pprof proto/profile.proto. */
enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    VALUETYPE_TYPE = 1,
    VALUETYPE_UNIT = 2,
    SAMPLE_LOCATION_ID = 1,
    SAMPLE_VALUE = 2,
    SAMPLE_LABEL = 3,
    LABEL_KEY = 1,
    LABEL_STR = 2,
    LABEL_NUM = 3,
    MAPPING_ID = 1,
    MAPPING_MEMORY_START = 2,
    MAPPING_MEMORY_LIMIT = 3,
    MAPPING_FILENAME = 5,
    MAPPING_BUILD_ID = 6,
    MAPPING_HAS_FUNCTIONS = 7,
    MAPPING_HAS_FILENAMES = 8,
    MAPPING_HAS_LINE_NUMBERS = 9,
    LOCATION_ID = 1,
    LOCATION_MAPPING_ID = 2,
    LOCATION_ADDRESS = 3,
    LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1,
    LINE_LINE = 2,
    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_SYSTEM_NAME = 3,
    FUNCTION_FILENAME = 4,
};

/* Slot of an open-addressing table. idx is entry index + 1 so that a zeroed table is empty;
 * the cached hash makes rehashing and most mismatches free of entry lookups. */
typedef struct {
    uint32_t idx;
    uint32_t hash;
} ht_slot;

typedef struct {
    ht_slot *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t count;
} ht;

typedef struct {
    char *s;
    uint32_t len;
} str_ent;

typedef struct {
    uint32_t name;
    uint32_t file;
} func_ent;

typedef struct {
    uint32_t file;
    uint32_t build_id;
    uint64_t limit;
    uint8_t has_files;
    uint8_t has_lines;
} map_ent;

typedef struct {
    uint32_t mapping; /* 0 = none */
    uint32_t func;
    uint64_t addr;
    int64_t line;
} loc_ent;

typedef struct {
    uint32_t type;
    uint32_t unit;
} vt_ent;

typedef struct {
    uint32_t key;
    uint32_t str;
    int64_t num;
    int is_str;
} lab_ent;

/* Direct-mapped cache from the caller's frame (string pointers + line + address) to its
 * Location. Callers usually hand the same symbol-cache pointers again and again, so a hit
 * costs a few strcmp() instead of four interns and two table probes. Pointers alone prove
 * nothing (the caller may reuse memory), hence every hit is confirmed by comparing the
 * strings with what they interned to; unclean strings never compare equal and just miss. */
#define FCACHE_SIZE 4096
typedef struct {
    const char *ptr[4]; /* function, file, module, build_id */
    uint32_t sidx[4];
    int64_t line;
    uint64_t addr;
    uint32_t loc; /* 0 = empty slot */
} fcache_ent;

typedef struct {
    size_t loc_off;
    size_t lab_off;
    uint32_t nloc;
    uint32_t nlab;
} sample_ent;

struct cs_pprof {
    cs_alloc a;

    str_ent *strs;
    size_t nstrs, cap_strs;
    ht str_ht;

    func_ent *funcs;
    size_t nfuncs, cap_funcs;
    ht func_ht;

    map_ent *maps;
    size_t nmaps, cap_maps;
    ht map_ht;

    loc_ent *locs;
    size_t nlocs, cap_locs;
    ht loc_ht;

    vt_ent *types;
    size_t ntypes, cap_types;

    sample_ent *samples;
    size_t nsamples, cap_samples;
    uint32_t *sloc; /* location ids of all samples, back to back */
    size_t nsloc, cap_sloc;
    int64_t *vals; /* ntypes values per sample */
    size_t nvals, cap_vals;
    lab_ent *labs;
    size_t nlabs, cap_labs;

    vt_ent period_type;
    int has_period_type;
    int64_t period, time_nanos, duration_nanos;

    char *scratch;      /* MAX_STR bytes, only allocated once a string needs sanitising */
    fcache_ent *fcache; /* FCACHE_SIZE entries, allocated with the first sample */
};

#define RESERVE(p, arr, cap, need) cs_alloc_grow(&(p)->a, &(arr), &(cap), (need), sizeof *(arr))

/* ---- hashing --------------------------------------------------------------------------- */

/* Hashes len bytes and, in the same pass, ORs them together so the caller learns whether
 * the string is pure ASCII (and so valid UTF-8) without a separate byte-by-byte scan. */
static uint32_t hash_bytes(const char *s, size_t len, int *ascii)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL), bits = 0;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        bits |= v;
        h ^= v * 0x87c37b91114253d5ULL;
        h = ((h << 27) | (h >> 37)) * 0x4cf5ad432745937fULL + 0x52dce729u;
        s += 8;
        len -= 8;
    }
    /* Tail via overlapping loads: a variable-length memcpy into a zeroed word compiles to
     * byte stores plus a wide reload, which stalls on store forwarding. Together the loads
     * cover every remaining byte, which the ASCII check needs. */
    uint64_t v = 0;
    if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&hi, s, 4);
        memcpy(&lo, s + len - 4, 4);
        v = ((uint64_t)hi << 32) | lo;
    } else if (len > 0) {
        const unsigned char *u = (const unsigned char *)s;
        v = ((uint64_t)u[0] << 16) | ((uint64_t)u[len / 2] << 8) | u[len - 1];
    }
    bits |= v;
    h ^= v * 0x87c37b91114253d5ULL;
    *ascii = (bits & 0x8080808080808080ULL) == 0;
    return (uint32_t)cs_mix64(h);
}

static uint32_t hash_words(uint64_t a, uint64_t b, uint64_t c)
{
    return (uint32_t)cs_mix64(cs_mix64(cs_mix64(a) ^ b) ^ c);
}

/* Makes room for one more entry. Called before probing so the slot pointer that the probe
 * returns stays valid until the insert. Load factor stays under 0.7 for short probes. */
static int ht_prepare(const cs_alloc *a, ht *t)
{
    size_t cap = t->slots ? t->mask + 1 : 0;
    if (cap && (t->count + 1) * 10 <= cap * 7)
        return 0;
    size_t ncap = cap ? cap * 2 : 64;
    if (ncap > SIZE_MAX / 2 / sizeof(ht_slot))
        return -1;
    ht_slot *ns = a->malloc_fn(a->ctx, ncap * sizeof *ns);
    if (!ns)
        return -1;
    memset(ns, 0, ncap * sizeof *ns);
    for (size_t i = 0; i < cap; i++) {
        if (!t->slots[i].idx)
            continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].idx)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    a->free_fn(a->ctx, t->slots);
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

/* ---- strings --------------------------------------------------------------------------- */

/* Returns how many leading bytes are valid UTF-8 within the cap; *clean says whether that
 * covers the whole string, i.e. whether it can be interned without copying. */
static size_t utf8_clean_prefix(const unsigned char *s, int *clean)
{
    size_t i = 0;
    for (;;) {
        if (s[i] == 0) {
            *clean = 1;
            return i;
        }
        size_t n = s[i] < 0x80 ? 1 : cs_utf8_seq(s + i, 4); /* NUL-terminated */
        if (n == 0 || i + n > MAX_STR) {
            *clean = 0;
            return i;
        }
        i += n;
    }
}

/* Copies s to dst (MAX_STR bytes) as valid UTF-8, cut at a character boundary at the cap.
 * The first `done` bytes are already known to be clean. */
static size_t utf8_sanitize(char *dst, const unsigned char *s, size_t done)
{
    memcpy(dst, s, done);
    const char *rest = (const char *)s + done;
    return done + cs_utf8_sanitize(dst + done, MAX_STR - done, rest, strlen(rest));
}

/* Interns len bytes, already known to be valid UTF-8 within the cap, whose hash is h. */
static int intern_hashed(cs_pprof *p, const char *s, size_t len, uint32_t h, uint32_t *out)
{
    if (len == 0) {
        *out = 0; /* string_table[0] is always "" */
        return 0;
    }
    if (ht_prepare(&p->a, &p->str_ht))
        return -1;
    ht *t = &p->str_ht;
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        ht_slot *sl = &t->slots[i];
        if (!sl->idx)
            break;
        const str_ent *e = &p->strs[sl->idx - 1];
        if (sl->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
            *out = sl->idx - 1;
            return 0;
        }
    }
    if (p->nstrs >= MAX_ENTRIES || RESERVE(p, p->strs, p->cap_strs, p->nstrs + 1))
        return -1;
    char *copy = p->a.malloc_fn(p->a.ctx, len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    p->strs[p->nstrs] = (str_ent){copy, (uint32_t)len};
    t->slots[i] = (ht_slot){(uint32_t)p->nstrs + 1, h};
    t->count++;
    *out = (uint32_t)p->nstrs++;
    return 0;
}

static int intern_clean(cs_pprof *p, const char *s, size_t len, uint32_t *out)
{
    int ascii;
    return intern_hashed(p, s, len, hash_bytes(s, len, &ascii), out);
}

/* Interns any C string: NULL becomes "", invalid UTF-8 is repaired, overlong is cut. */
static int intern(cs_pprof *p, const char *s, uint32_t *out)
{
    if (!s) {
        *out = 0;
        return 0;
    }
    /* Fast path for the common case: short pure-ASCII symbols need no UTF-8 walk. */
    size_t n = strnlen(s, MAX_STR + 1);
    if (n <= MAX_STR) {
        int ascii;
        uint32_t h = hash_bytes(s, n, &ascii);
        if (ascii)
            return intern_hashed(p, s, n, h, out);
    }
    int clean;
    n = utf8_clean_prefix((const unsigned char *)s, &clean);
    if (clean)
        return intern_clean(p, s, n, out);
    if (!p->scratch) {
        p->scratch = p->a.malloc_fn(p->a.ctx, MAX_STR);
        if (!p->scratch)
            return -1;
    }
    n = utf8_sanitize(p->scratch, (const unsigned char *)s, n);
    return intern_clean(p, p->scratch, n, out);
}

/* ---- functions, mappings, locations ------------------------------------------------------ */

static int function_id(cs_pprof *p, uint32_t name, uint32_t file, uint32_t *out)
{
    uint32_t h = hash_words(name, file, 0);
    if (ht_prepare(&p->a, &p->func_ht))
        return -1;
    ht *t = &p->func_ht;
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        ht_slot *sl = &t->slots[i];
        if (!sl->idx)
            break;
        const func_ent *e = &p->funcs[sl->idx - 1];
        if (sl->hash == h && e->name == name && e->file == file) {
            *out = sl->idx;
            return 0;
        }
    }
    if (p->nfuncs >= MAX_ENTRIES || RESERVE(p, p->funcs, p->cap_funcs, p->nfuncs + 1))
        return -1;
    p->funcs[p->nfuncs++] = (func_ent){name, file};
    t->slots[i] = (ht_slot){(uint32_t)p->nfuncs, h};
    t->count++;
    *out = (uint32_t)p->nfuncs; /* ids are 1-based: Pyroscope rejects id 0 */
    return 0;
}

static int mapping_id(cs_pprof *p, uint32_t file, uint32_t build_id, uint32_t *out)
{
    uint32_t h = hash_words(file, build_id, 1);
    if (ht_prepare(&p->a, &p->map_ht))
        return -1;
    ht *t = &p->map_ht;
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        ht_slot *sl = &t->slots[i];
        if (!sl->idx)
            break;
        const map_ent *e = &p->maps[sl->idx - 1];
        if (sl->hash == h && e->file == file && e->build_id == build_id) {
            *out = sl->idx;
            return 0;
        }
    }
    if (p->nmaps >= MAX_ENTRIES || RESERVE(p, p->maps, p->cap_maps, p->nmaps + 1))
        return -1;
    p->maps[p->nmaps++] = (map_ent){file, build_id, 0, 0, 0};
    t->slots[i] = (ht_slot){(uint32_t)p->nmaps, h};
    t->count++;
    *out = (uint32_t)p->nmaps;
    return 0;
}

static int location_id(cs_pprof *p, const loc_ent *k, uint32_t *out)
{
    uint32_t h = hash_words(((uint64_t)k->mapping << 32) | k->func, k->addr, (uint64_t)k->line);
    if (ht_prepare(&p->a, &p->loc_ht))
        return -1;
    ht *t = &p->loc_ht;
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        ht_slot *sl = &t->slots[i];
        if (!sl->idx)
            break;
        const loc_ent *e = &p->locs[sl->idx - 1];
        if (sl->hash == h && e->func == k->func && e->mapping == k->mapping && e->addr == k->addr &&
            e->line == k->line) {
            *out = sl->idx;
            return 0;
        }
    }
    if (p->nlocs >= MAX_ENTRIES || RESERVE(p, p->locs, p->cap_locs, p->nlocs + 1))
        return -1;
    p->locs[p->nlocs++] = *k;
    t->slots[i] = (ht_slot){(uint32_t)p->nlocs, h};
    t->count++;
    *out = (uint32_t)p->nlocs;
    return 0;
}

/* Unnamed frames still need a Function (a Location without Line shows up as a bare address
 * at best, and Pyroscope would try to symbolise it against a mapping it cannot fetch), so
 * give them a name that keeps distinct frames distinct. */
static int synthetic_name(cs_pprof *p, const cs_pprof_frame *f, uint32_t *out)
{
    char buf[256];
    const char *base = NULL;
    if (f->module && f->module[0]) {
        const char *slash = strrchr(f->module, '/');
        base = slash && slash[1] ? slash + 1 : f->module;
    }
    if (f->address && base)
        snprintf(buf, sizeof buf, "%.200s+0x%" PRIx64, base, f->address);
    else if (f->address)
        snprintf(buf, sizeof buf, "0x%" PRIx64, f->address);
    else if (base)
        snprintf(buf, sizeof buf, "[%.200s]", base);
    else
        snprintf(buf, sizeof buf, "[unknown]");
    /* %.200s may have split a multi-byte character; intern() repairs that. */
    return intern(p, buf, out);
}

static fcache_ent *fcache_slot(const cs_pprof *p, const cs_pprof_frame *f)
{
    uint64_t h = (uintptr_t)f->function ^ ((uint64_t)(uintptr_t)f->file << 17) ^
                 ((uint64_t)(uintptr_t)f->module << 31) ^ ((uint64_t)(uintptr_t)f->build_id << 47);
    h = cs_mix64(h ^ cs_mix64(f->address ^ ((uint64_t)f->line * 0x9e3779b97f4a7c15ULL)));
    return &p->fcache[h & (FCACHE_SIZE - 1)];
}

static int fcache_hit(const cs_pprof *p, const fcache_ent *c, const cs_pprof_frame *f)
{
    const char *ptr[4] = {f->function, f->file, f->module, f->build_id};
    if (!c->loc || c->line != f->line || c->addr != f->address)
        return 0;
    for (int i = 0; i < 4; i++) {
        if (ptr[i] != c->ptr[i])
            return 0;
        if (ptr[i] && strcmp(ptr[i], p->strs[c->sidx[i]].s) != 0)
            return 0;
    }
    return 1;
}

static int frame_location(cs_pprof *p, const cs_pprof_frame *f, uint32_t *out)
{
    fcache_ent *c = fcache_slot(p, f);
    if (fcache_hit(p, c, f)) {
        *out = c->loc;
        return 0;
    }
    uint32_t mod, bid, name, file;
    loc_ent k = {0, 0, f->address, f->line};
    if (intern(p, f->module, &mod) || intern(p, f->build_id, &bid) ||
        intern(p, f->function, &name) || intern(p, f->file, &file))
        return -1;
    /* Recorded before name is replaced by a synthetic one: the cache compares the caller's
     * strings, and the synthetic name follows from module and address, both checked. */
    fcache_ent fresh = {{f->function, f->file, f->module, f->build_id},
                        {name, file, mod, bid},
                        f->line,
                        f->address,
                        0};
    if ((mod || bid) && mapping_id(p, mod, bid, &k.mapping))
        return -1;
    if (!name && synthetic_name(p, f, &name))
        return -1;
    if (function_id(p, name, file, &k.func))
        return -1;
    if (k.mapping) {
        map_ent *m = &p->maps[k.mapping - 1];
        /* Addresses are module-relative, so the mapping spans [0, highest address]. */
        if (f->address >= m->limit && f->address != UINT64_MAX)
            m->limit = f->address + 1;
        m->has_files |= file != 0;
        m->has_lines |= f->line > 0;
    }
    if (location_id(p, &k, out))
        return -1;
    fresh.loc = *out;
    *c = fresh;
    return 0;
}

/* ---- public: building -------------------------------------------------------------------- */

cs_pprof *cs_pprof_new_with_alloc(const cs_alloc *alloc, const char *period_type,
                                  const char *period_unit, int64_t period, int64_t time_nanos,
                                  int64_t duration_nanos)
{
    cs_alloc a = cs_alloc_std;
    if (alloc) {
        if (!alloc->malloc_fn || !alloc->realloc_fn || !alloc->free_fn) {
            errno = EINVAL;
            return NULL;
        }
        a = *alloc;
    }
    cs_pprof *p = a.malloc_fn(a.ctx, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    memset(p, 0, sizeof *p);
    p->a = a;
    p->period = period;
    p->time_nanos = time_nanos;
    p->duration_nanos = duration_nanos;

    char *empty = NULL;
    if (RESERVE(p, p->strs, p->cap_strs, 1) || !(empty = a.malloc_fn(a.ctx, 1)))
        goto fail;
    empty[0] = '\0';
    p->strs[p->nstrs++] = (str_ent){empty, 0};

    if (period_type || period_unit) {
        if (intern(p, period_type, &p->period_type.type) ||
            intern(p, period_unit, &p->period_type.unit))
            goto fail;
        p->has_period_type = 1;
    }
    return p;
fail:
    cs_pprof_free(p);
    errno = ENOMEM;
    return NULL;
}

cs_pprof *cs_pprof_new(const char *period_type, const char *period_unit, int64_t period,
                       int64_t time_nanos, int64_t duration_nanos)
{
    return cs_pprof_new_with_alloc(NULL, period_type, period_unit, period, time_nanos,
                                   duration_nanos);
}

int cs_pprof_add_sample_type(cs_pprof *p, const char *type, const char *unit)
{
    if (!p || p->nsamples > 0 || p->ntypes >= INT_MAX) {
        errno = EINVAL;
        return -1;
    }
    uint32_t t, u;
    if (intern(p, type, &t) || intern(p, unit, &u))
        goto nomem;
    const str_ent *e = &p->strs[t];
    if (memchr(e->s, '-', e->len)) {
        /* Pyroscope rejects '-' in sample type names: it is its series-name separator. */
        char *fixed = p->a.malloc_fn(p->a.ctx, e->len);
        if (!fixed)
            goto nomem;
        for (uint32_t i = 0; i < e->len; i++)
            fixed[i] = e->s[i] == '-' ? '_' : e->s[i];
        int rc = intern_clean(p, fixed, e->len, &t);
        p->a.free_fn(p->a.ctx, fixed);
        if (rc)
            goto nomem;
    }
    if (RESERVE(p, p->types, p->cap_types, p->ntypes + 1))
        goto nomem;
    p->types[p->ntypes] = (vt_ent){t, u};
    return (int)p->ntypes++;
nomem:
    errno = ENOMEM;
    return -1;
}

int cs_pprof_add_sample(cs_pprof *p, const cs_pprof_frame *frames, size_t nframes,
                        const int64_t *values, const cs_pprof_label *labels, size_t nlabels)
{
    if (!p || p->ntypes == 0 || (nframes && !frames) || (nlabels && !labels) ||
        nframes > UINT32_MAX || nlabels > UINT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (!p->fcache) {
        p->fcache = p->a.malloc_fn(p->a.ctx, FCACHE_SIZE * sizeof *p->fcache);
        if (!p->fcache)
            goto nomem;
        memset(p->fcache, 0, FCACHE_SIZE * sizeof *p->fcache);
    }
    /* Reserve everything first and commit the counters last, so a failure part-way leaves
     * no half-added sample behind (interned strings/locations may stay; they are valid). */
    if (RESERVE(p, p->samples, p->cap_samples, p->nsamples + 1) ||
        RESERVE(p, p->sloc, p->cap_sloc, p->nsloc + nframes) ||
        RESERVE(p, p->vals, p->cap_vals, p->nvals + p->ntypes) ||
        RESERVE(p, p->labs, p->cap_labs, p->nlabs + nlabels))
        goto nomem;

    for (size_t i = 0; i < nframes; i++)
        if (frame_location(p, &frames[i], &p->sloc[p->nsloc + i]))
            goto nomem;

    size_t nlab = 0;
    for (size_t i = 0; i < nlabels; i++) {
        lab_ent *l = &p->labs[p->nlabs + nlab];
        if (intern(p, labels[i].key, &l->key))
            goto nomem;
        if (!l->key)
            continue; /* a label without a key means nothing to any consumer */
        l->is_str = labels[i].str != NULL;
        l->num = l->is_str ? 0 : labels[i].num;
        l->str = 0;
        if (l->is_str && intern(p, labels[i].str, &l->str))
            goto nomem;
        nlab++;
    }

    if (values)
        memcpy(&p->vals[p->nvals], values, p->ntypes * sizeof *values);
    else
        memset(&p->vals[p->nvals], 0, p->ntypes * sizeof *p->vals);

    p->samples[p->nsamples++] = (sample_ent){p->nsloc, p->nlabs, (uint32_t)nframes, (uint32_t)nlab};
    p->nsloc += nframes;
    p->nvals += p->ntypes;
    p->nlabs += nlab;
    return 0;
nomem:
    errno = ENOMEM;
    return -1;
}

size_t cs_pprof_sample_count(const cs_pprof *p)
{
    return p ? p->nsamples : 0;
}

void cs_pprof_free(cs_pprof *p)
{
    if (!p)
        return;
    const cs_alloc a = p->a;
    for (size_t i = 0; i < p->nstrs; i++)
        a.free_fn(a.ctx, p->strs[i].s);
    void *blocks[] = {p->strs,  p->str_ht.slots, p->funcs, p->func_ht.slots,
                      p->maps,  p->map_ht.slots, p->locs,  p->loc_ht.slots,
                      p->types, p->samples,      p->sloc,  p->vals,
                      p->labs,  p->scratch,      p->fcache};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        a.free_fn(a.ctx, blocks[i]);
    a.free_fn(a.ctx, p);
}

/* ---- encoding --------------------------------------------------------------------------- */

static void encode_value_type(cs_pb *b, unsigned field, const vt_ent *vt)
{
    size_t m = cs_pb_begin(b, field);
    cs_pb_uint(b, VALUETYPE_TYPE, vt->type);
    cs_pb_uint(b, VALUETYPE_UNIT, vt->unit);
    cs_pb_end(b, m);
}

static void encode_sample(cs_pb *b, const cs_pprof *p, const sample_ent *s, const int64_t *vals)
{
    size_t m = cs_pb_begin(b, PROFILE_SAMPLE);
    if (s->nloc) {
        size_t mm = cs_pb_begin(b, SAMPLE_LOCATION_ID);
        /* Reserve once for the whole packed run instead of per varint. */
        if (cs_pb_reserve(b, (size_t)s->nloc * 5) == 0)
            for (uint32_t i = 0; i < s->nloc; i++)
                cs_pb_varint_raw(b, p->sloc[s->loc_off + i]);
        cs_pb_end(b, mm);
    }
    size_t mm = cs_pb_begin(b, SAMPLE_VALUE);
    if (cs_pb_reserve(b, p->ntypes * 10) == 0)
        for (size_t i = 0; i < p->ntypes; i++)
            cs_pb_varint_raw(b, (uint64_t)vals[i]);
    cs_pb_end(b, mm);
    for (uint32_t i = 0; i < s->nlab; i++) {
        const lab_ent *l = &p->labs[s->lab_off + i];
        size_t ml = cs_pb_begin(b, SAMPLE_LABEL);
        cs_pb_uint(b, LABEL_KEY, l->key);
        if (l->is_str)
            cs_pb_uint(b, LABEL_STR, l->str);
        else
            cs_pb_uint(b, LABEL_NUM, (uint64_t)l->num);
        cs_pb_end(b, ml);
    }
    cs_pb_end(b, m);
}

static void encode_profile(cs_pb *b, const cs_pprof *p)
{
    for (size_t i = 0; i < p->ntypes; i++)
        encode_value_type(b, PROFILE_SAMPLE_TYPE, &p->types[i]);

    for (size_t i = 0; i < p->nsamples && !b->oom; i++)
        encode_sample(b, p, &p->samples[i], &p->vals[i * p->ntypes]);

    for (size_t i = 0; i < p->nmaps; i++) {
        const map_ent *e = &p->maps[i];
        size_t m = cs_pb_begin(b, PROFILE_MAPPING);
        cs_pb_uint(b, MAPPING_ID, i + 1);
        cs_pb_uint(b, MAPPING_MEMORY_START, 0);
        cs_pb_uint(b, MAPPING_MEMORY_LIMIT, e->limit);
        cs_pb_uint(b, MAPPING_FILENAME, e->file);
        cs_pb_uint(b, MAPPING_BUILD_ID, e->build_id);
        /* Every location carries a Function, so consumers must not try to symbolise. */
        cs_pb_uint(b, MAPPING_HAS_FUNCTIONS, 1);
        cs_pb_uint(b, MAPPING_HAS_FILENAMES, e->has_files);
        cs_pb_uint(b, MAPPING_HAS_LINE_NUMBERS, e->has_lines);
        cs_pb_end(b, m);
    }

    for (size_t i = 0; i < p->nlocs && !b->oom; i++) {
        const loc_ent *e = &p->locs[i];
        size_t m = cs_pb_begin(b, PROFILE_LOCATION);
        cs_pb_uint(b, LOCATION_ID, i + 1);
        cs_pb_uint(b, LOCATION_MAPPING_ID, e->mapping);
        cs_pb_uint(b, LOCATION_ADDRESS, e->addr);
        size_t ml = cs_pb_begin(b, LOCATION_LINE);
        cs_pb_uint(b, LINE_FUNCTION_ID, e->func);
        cs_pb_uint(b, LINE_LINE, (uint64_t)e->line);
        cs_pb_end(b, ml);
        cs_pb_end(b, m);
    }

    for (size_t i = 0; i < p->nfuncs && !b->oom; i++) {
        const func_ent *e = &p->funcs[i];
        size_t m = cs_pb_begin(b, PROFILE_FUNCTION);
        cs_pb_uint(b, FUNCTION_ID, i + 1);
        cs_pb_uint(b, FUNCTION_NAME, e->name);
        cs_pb_uint(b, FUNCTION_SYSTEM_NAME, e->name);
        cs_pb_uint(b, FUNCTION_FILENAME, e->file);
        cs_pb_end(b, m);
    }

    /* Written unconditionally, including the empty string 0, so indices line up. */
    for (size_t i = 0; i < p->nstrs && !b->oom; i++)
        cs_pb_bytes(b, PROFILE_STRING_TABLE, p->strs[i].s, p->strs[i].len);

    cs_pb_uint(b, PROFILE_TIME_NANOS, (uint64_t)p->time_nanos);
    cs_pb_uint(b, PROFILE_DURATION_NANOS, (uint64_t)p->duration_nanos);
    if (p->has_period_type)
        encode_value_type(b, PROFILE_PERIOD_TYPE, &p->period_type);
    cs_pb_uint(b, PROFILE_PERIOD, (uint64_t)p->period);
}

/* ---- public: encoding -------------------------------------------------------------------- */

int cs_pprof_encode(cs_pprof *p, int gzip, uint8_t **out, size_t *out_len)
{
    if (!p || !out || !out_len) {
        errno = EINVAL;
        return -1;
    }
    /* Ids are 4 bytes or less and the average frame costs ~3 bytes in the sample, so this
     * first guess avoids most regrowth. */
    cs_pb b = {&p->a, NULL, 0, 0, 0};
    cs_pb_reserve(&b, 4096 + p->nsloc * 3 + p->nvals * 3 + p->nlocs * 16);
    encode_profile(&b, p);
    if (b.oom) {
        p->a.free_fn(p->a.ctx, b.p);
        errno = ENOMEM;
        return -1;
    }
    if (gzip) {
        uint8_t *z;
        size_t zlen;
        int rc = cs_gzip(&p->a, b.p, b.len, &z, &zlen);
        p->a.free_fn(p->a.ctx, b.p);
        if (rc) {
            errno = ENOMEM;
            return -1;
        }
        *out = z;
        *out_len = zlen;
        return 0;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}
