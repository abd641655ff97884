/*
 * writer.c: drain, aggregate, symbolize, store.
 *
 * Owns every piece of state it touches (stack table, aggregates, database handle) from its
 * one thread; the only shared things are the ring (lock-free) and db_lock, which is held
 * around every SQLite call so that fork() never copies SQLite in the middle of a call
 * (the child would inherit SQLite's internal mutexes locked). In the child the parent's
 * state is abandoned, never freed or closed: it may be mid-update, and closing the parent's
 * connection could checkpoint or unlink its files.
 * Memory is bounded: the stack table is reset when it grows too large, and aggregates that
 * cannot be written are dropped (and counted) rather than kept without limit.
 */
#include "writer.h"

#include "../storage/storage.h"
#include "hash.h"
#include "heap.h"
#include "heaplive.h"
#include "merge.h"
#include "procstat.h"
#include "python.h"
#include "pythreads.h"
#include "ring.h"
#include "selftime.h"
#include "shim.h"
#include "symbolize.h"
#include "threads.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_STACKS 65536
#define MAX_AGGS   200000
/* The writer drains at least this often (and at once when the ring is a quarter full): the
 * module snapshot that handlers unwind with is refreshed then too, so a module dlopen'ed
 * since is unwound through within this. Each wake-up of a thread costs 40-80 us of kernel
 * time on a virtual machine: 10 a second were a tenth of the recorder's cost on a busy
 * program; 2-3 now (the ring's quarter-fill wake-up keeps a fast producer from filling it). */
#define DRAIN_PERIOD_NS 500000000L

typedef struct stack_ent {
    uint64_t hash;
    uint64_t *ips;
    cs_pyframe *py; /* NULL when npy == 0 */
    uint16_t npy;
    int64_t *frame_ids; /* valid when db_id > 0 */
    int64_t db_id;
    int64_t touched;
    uint16_t n;    /* ips */
    uint16_t nids; /* frame_ids (crashscope's own frames left out) */
} stack_ent;

typedef struct agg {
    int64_t ts;
    int32_t tid;
    uint8_t kind;
    uint32_t stack;
    uint32_t labels; /* index in the writer's label strings; 0 = none */
    int64_t count;
    double objects, bytes; /* allocation samples: what they stand for */
    char name[64];         /* the kernel's name, or Python's (pythreads.h) */
} agg;

#define MAX_EVAL_RANGES 4

typedef struct ipframe {
    uint64_t key; /* ip << 1 | return_address */
    int64_t frame_id;
    int eval; /* a frame of CPython's evaluation loop: Python frames go there */
} ipframe;

/* Python frame -> frame row, so that a Python frame costs its upserts once, not once per
 * stack it appears in. The whole key is kept: a wrong name is worse than a slow one. */
typedef struct pyframe_id {
    cs_pyframe key; /* flags cleared */
    int64_t frame_id;
} pyframe_id;

typedef struct tidstack {
    int32_t tid;
    uint32_t stack;
    uint32_t labels;
    uint32_t seq; /* when it was last set (the writer's sample count): the later one wins */
} tidstack;

typedef struct writer {
    cs_config cfg;
    char app[256];
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    const char *end_reason;
    int done;

    cs_db *db;
    int db_failed;
    int64_t process_id;
    int pid;
    cs_symbolizer *sym;

    stack_ent *stacks;
    int nstacks, cap_stacks;
    uint32_t *stack_index; /* open addressing: stack number + 1, 0 = empty */
    int index_cap;

    agg *aggs;
    int naggs, cap_aggs;
    uint32_t *agg_index;
    int agg_index_cap;

    ipframe *ipf;
    int ipf_cap, ipf_n;
    pyframe_id *pyf;
    int pyf_cap, pyf_n;
    tidstack *last_wall; /* per thread: its last wall stack, and (tid negated) last cpu stack */
    int lw_cap, lw_n;
    /* Where CPython's evaluation loop lies, [lo, hi) (runtime addresses). Its frames are
     * replaced by the Python frames they run, so where inside it a sample landed says
     * nothing; every address in it is recorded as one, or each sample of a Python program
     * would make a stack of its own (tens of thousands of distinct instructions). */
    uint64_t eval_lo[MAX_EVAL_RANGES], eval_hi[MAX_EVAL_RANGES];
    int neval;
    uint32_t seq;      /* samples drained, for tidstack.seq */
    cs_heaplive live;  /* sampled allocations still live */
    int unknown_stack; /* the empty stack, for threads never sampled; -1 not made yet */

    /* distinct label strings ("endpoint=x,gil=held"); index 0 is "" */
    char **labels;
    int nlabels, cap_labels;

    int64_t last_flush_s;
    int64_t started_s;    /* when this writer started (a fork child's: when it did) */
    int ring_populated;   /* cs_ring_populate done: after 2 s, or sooner if producers are busy */
    int64_t caches_since; /* when the frame-id caches were last emptied */
    unsigned flushes;
    uint64_t dropped_aggs;
    int said_busy;
    int said_heap_full; /* the allocation sampler's table overflowed: said once */
    int said_ring_full; /* samples were dropped for want of room in the ring: said once */

    /* Samples moved out of the ring while a flush (symbol tables, SQLite) kept the writer
     * from draining: compact copies (see spill), drained before the ring's. */
    unsigned char *spill;
    size_t spill_len, spill_cap;
} writer;

static writer *W;
static pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER;

/* The crash handshake. The writer's changes to its in-memory samples (and its commits,
 * which make them redundant) happen between two increments of `wgen`; it checks `frozen`
 * after the first, the crash handler sets `frozen` and then waits for an even `wgen`. Both
 * sides use sequentially consistent atomics, so one of them always sees the other. */
static _Atomic unsigned wgen;
static _Atomic int frozen;

static int mutation_begin(void)
{
    atomic_fetch_add(&wgen, 1);
    if (atomic_load(&frozen)) {
        atomic_fetch_add(&wgen, 1);
        return 0;
    }
    return 1;
}

static void mutation_end(void)
{
    atomic_fetch_add(&wgen, 1);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- the stack table ------------------------------------------------------------------- */

static uint64_t hash_ips(const uint64_t *ips, int n, const cs_pyframe *py, int npy)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n ^ ((uint64_t)npy << 32);
    for (int i = 0; i < n; i++)
        h = cs_mix64(h ^ ips[i]) + 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < npy; i++)
        h = cs_mix64(h ^ py[i].code ^ ((uint64_t)(uint32_t)py[i].line << 40) ^ py[i].name_ptr ^
                     (py[i].file_ptr << 1) ^ py[i].flags) +
            0x9e3779b97f4a7c15ull;
    return h ? h : 1;
}

static int same_py(const cs_pyframe *a, const cs_pyframe *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].code != b[i].code || a[i].line != b[i].line || a[i].name_ptr != b[i].name_ptr ||
            a[i].file_ptr != b[i].file_ptr || a[i].firstline != b[i].firstline ||
            a[i].flags != b[i].flags)
            return 0;
    return 1;
}

/* Forgets the stacks no live allocation and no thread's last stack refers to (the table is
 * bounded; those stacks are in the database already). */
static void reset_stacks(writer *w)
{
    int32_t *renum = malloc(sizeof *renum * (size_t)(w->nstacks ? w->nstacks : 1));
    if (!renum)
        return;
    for (int i = 0; i < w->nstacks; i++)
        renum[i] = -1;
    for (int i = 0; i < w->live.n; i++)
        renum[w->live.e[i].stack] = 0;
    for (int i = 0; i < w->lw_cap; i++)
        if (w->last_wall[i].tid)
            renum[w->last_wall[i].stack] = 0;
    int kept = 0;
    for (int i = 0; i < w->nstacks; i++) {
        if (renum[i] < 0) {
            free(w->stacks[i].ips);
            free(w->stacks[i].py);
            free(w->stacks[i].frame_ids);
            continue;
        }
        renum[i] = kept;
        w->stacks[kept++] = w->stacks[i];
    }
    w->nstacks = kept;
    if (w->stack_index)
        memset(w->stack_index, 0, sizeof *w->stack_index * (size_t)w->index_cap);
    for (int i = 0; i < kept; i++)
        cs_index_put(w->stack_index, (uint64_t)w->index_cap, w->stacks[i].hash, (uint32_t)i);
    cs_heaplive_remap(&w->live, renum);
    for (int i = 0; i < w->lw_cap; i++)
        if (w->last_wall[i].tid)
            w->last_wall[i].stack = (uint32_t)renum[w->last_wall[i].stack];
    w->unknown_stack = w->unknown_stack >= 0 ? renum[w->unknown_stack] : -1;
    free(renum);
}

static int grow_stack_index(writer *w)
{
    int cap = w->index_cap ? w->index_cap * 2 : 4096;
    uint32_t *idx = calloc((size_t)cap, sizeof *idx);
    if (!idx)
        return -1;
    for (int i = 0; i < w->nstacks; i++)
        cs_index_put(idx, (uint64_t)cap, w->stacks[i].hash, (uint32_t)i);
    free(w->stack_index);
    w->stack_index = idx;
    w->index_cap = cap;
    return 0;
}

/* Returns the stack number of IPS + PY, adding it if new; -1 when out of memory or full. */
static int intern_stack(writer *w, const uint64_t *ips, int n, const cs_pyframe *py, int npy)
{
    uint64_t h = hash_ips(ips, n, py, npy);
    if (w->index_cap) {
        size_t p = h & (size_t)(w->index_cap - 1);
        for (uint32_t e; (e = w->stack_index[p]); p = (p + 1) & (size_t)(w->index_cap - 1)) {
            stack_ent *s = &w->stacks[e - 1];
            if (s->hash == h && s->n == n && s->npy == npy &&
                !memcmp(s->ips, ips, sizeof *ips * (size_t)n) && same_py(s->py, py, npy))
                return (int)e - 1;
        }
    }
    if (w->nstacks >= MAX_STACKS)
        return -1;
    if ((w->nstacks + 1) * 2 > w->index_cap && grow_stack_index(w) != 0)
        return -1;
    if (w->nstacks == w->cap_stacks) {
        int cap = w->cap_stacks ? w->cap_stacks * 2 : 1024;
        stack_ent *s = realloc(w->stacks, sizeof *s * (size_t)cap);
        if (!s)
            return -1;
        w->stacks = s;
        w->cap_stacks = cap;
    }
    stack_ent *s = &w->stacks[w->nstacks];
    memset(s, 0, sizeof *s);
    s->ips = malloc(sizeof *ips * (size_t)(n ? n : 1));
    if (!s->ips)
        return -1;
    memcpy(s->ips, ips, sizeof *ips * (size_t)n);
    if (npy) {
        s->py = malloc(sizeof *py * (size_t)npy);
        if (!s->py) {
            free(s->ips);
            return -1;
        }
        memcpy(s->py, py, sizeof *py * (size_t)npy);
    }
    s->npy = (uint16_t)npy;
    s->n = (uint16_t)n;
    s->hash = h;
    cs_index_put(w->stack_index, (uint64_t)w->index_cap, h, (uint32_t)w->nstacks);
    return w->nstacks++;
}

/* --- label strings ------------------------------------------------------------------------- */

/* Few distinct label sets exist (tags are per request type): a linear scan is enough, and
 * the list is bounded; past the bound, samples go without labels rather than without end. */
#define MAX_LABEL_SETS 4096

static uint32_t intern_labels(writer *w, const char *tags, int gil)
{
    char buf[CS_TAGS_MAX + 32];
    snprintf(buf, sizeof buf, "%s%s%s", tags, *tags && gil >= 0 ? "," : "",
             gil < 0 ? ""
             : gil   ? "gil=held"
                     : "gil=released");
    if (!buf[0])
        return 0;
    for (int i = 1; i < w->nlabels; i++)
        if (!strcmp(w->labels[i], buf))
            return (uint32_t)i;
    if (w->nlabels >= MAX_LABEL_SETS)
        return 0;
    if (w->nlabels + 1 > w->cap_labels) {
        int cap = w->cap_labels ? w->cap_labels * 2 : 16;
        char **l = realloc(w->labels, sizeof *l * (size_t)cap);
        if (!l)
            return 0;
        w->labels = l;
        w->cap_labels = cap;
    }
    if (w->nlabels == 0)
        w->labels[w->nlabels++] = NULL;
    char *copy = strdup(buf);
    if (!copy)
        return 0;
    w->labels[w->nlabels] = copy;
    return (uint32_t)w->nlabels++;
}

/* --- aggregates -------------------------------------------------------------------------- */

static uint64_t agg_hash(int64_t ts, int32_t tid, uint8_t kind, uint32_t stack, uint32_t labels)
{
    return cs_mix64((uint64_t)ts * 31 + (uint64_t)(uint32_t)tid * 1000003ull + kind * 7919ull +
                    (uint64_t)stack * 0x9e3779b97f4a7c15ull + (uint64_t)labels * 0x85ebca6bull);
}

static int grow_agg_index(writer *w)
{
    int cap = w->agg_index_cap ? w->agg_index_cap * 2 : 4096;
    uint32_t *idx = calloc((size_t)cap, sizeof *idx);
    if (!idx)
        return -1;
    for (int i = 0; i < w->naggs; i++) {
        agg *a = &w->aggs[i];
        cs_index_put(idx, (uint64_t)cap, agg_hash(a->ts, a->tid, a->kind, a->stack, a->labels),
                     (uint32_t)i);
    }
    free(w->agg_index);
    w->agg_index = idx;
    w->agg_index_cap = cap;
    return 0;
}

static agg *add_agg(writer *w, int64_t ts, int32_t tid, uint8_t kind, uint32_t stack,
                    uint32_t labels, int64_t count, const char *name)
{
    uint64_t h = agg_hash(ts, tid, kind, stack, labels);
    if (w->agg_index_cap) {
        size_t p = h & (size_t)(w->agg_index_cap - 1);
        for (uint32_t e; (e = w->agg_index[p]); p = (p + 1) & (size_t)(w->agg_index_cap - 1)) {
            agg *a = &w->aggs[e - 1];
            if (a->ts == ts && a->tid == tid && a->kind == kind && a->stack == stack &&
                a->labels == labels) {
                a->count += count;
                return a;
            }
        }
    }
    if (w->naggs >= MAX_AGGS || ((w->naggs + 1) * 2 > w->agg_index_cap && grow_agg_index(w))) {
        w->dropped_aggs++;
        return NULL;
    }
    if (w->naggs == w->cap_aggs) {
        int cap = w->cap_aggs ? w->cap_aggs * 2 : 1024;
        agg *a = realloc(w->aggs, sizeof *a * (size_t)cap);
        if (!a) {
            w->dropped_aggs++;
            return NULL;
        }
        w->aggs = a;
        w->cap_aggs = cap;
    }
    agg *a = &w->aggs[w->naggs];
    a->ts = ts;
    a->tid = tid;
    a->kind = kind;
    a->stack = stack;
    a->labels = labels;
    a->count = count;
    a->objects = a->bytes = 0;
    snprintf(a->name, sizeof a->name, "%s", name);
    cs_index_put(w->agg_index, (uint64_t)w->agg_index_cap, h, (uint32_t)w->naggs);
    return &w->aggs[w->naggs++];
}

static void clear_aggs(writer *w)
{
    w->naggs = 0;
    if (w->agg_index)
        memset(w->agg_index, 0, sizeof *w->agg_index * (size_t)w->agg_index_cap);
}

/* --- last wall stack per thread (for idle samples) ------------------------------------------ */

static tidstack *last_wall_slot(writer *w, int32_t tid, int create)
{
    if (create && (w->lw_n + 1) * 2 > w->lw_cap) {
        int cap = w->lw_cap ? w->lw_cap * 2 : 256;
        tidstack *n = calloc((size_t)cap, sizeof *n);
        if (!n)
            return NULL;
        for (int i = 0; i < w->lw_cap; i++) {
            if (!w->last_wall[i].tid)
                continue;
            size_t p = cs_mix64((uint64_t)w->last_wall[i].tid) & (size_t)(cap - 1);
            while (n[p].tid)
                p = (p + 1) & (size_t)(cap - 1);
            n[p] = w->last_wall[i];
        }
        free(w->last_wall);
        w->last_wall = n;
        w->lw_cap = cap;
    }
    if (!w->lw_cap)
        return NULL;
    size_t p = cs_mix64((uint64_t)tid) & (size_t)(w->lw_cap - 1);
    for (; w->last_wall[p].tid; p = (p + 1) & (size_t)(w->lw_cap - 1))
        if (w->last_wall[p].tid == tid)
            return &w->last_wall[p];
    if (!create)
        return NULL;
    w->last_wall[p].tid = tid;
    w->lw_n++;
    return &w->last_wall[p];
}

/* --- draining the ring --------------------------------------------------------------------- */

static void fold_eval_addresses(const writer *w, uint64_t *ips, int n)
{
    for (int i = 0; i < n; i++)
        for (int r = 0; r < w->neval; r++)
            if (ips[i] > w->eval_lo[r] && ips[i] <= w->eval_hi[r]) {
                /* lo + 1 stays inside whether looked up as a return address or not */
                ips[i] = w->eval_lo[r] + 1;
                break;
            }
}

static void learn_eval_range(writer *w, const cs_symbol *sym)
{
    if (sym->function_lo >= sym->function_hi || w->neval >= MAX_EVAL_RANGES)
        return;
    for (int r = 0; r < w->neval; r++)
        if (w->eval_lo[r] == sym->function_lo)
            return;
    w->eval_lo[w->neval] = sym->function_lo;
    w->eval_hi[w->neval++] = sym->function_hi;
}

/* Takes one sample into the in-memory aggregates (may modify S). */
static void drain_one(writer *w, cs_sample *s)
{
    int64_t ts = (int64_t)(s->time_ns / 1000000000ull);
    int stack = -1;
    uint32_t labels = 0;
    uint8_t kind = (uint8_t)s->kind;
    if (kind == CS_KIND_WALL_IDLE || kind == CS_KIND_WALL_BUSY) {
        /* cpu stacks are kept under the negated tid, wall stacks under the tid; the labels
         * of the sample whose stack stands in come with it */
        tidstack *t = last_wall_slot(w, kind == CS_KIND_WALL_BUSY ? -s->tid : s->tid, 0);
        if (t) {
            stack = (int)t->stack;
            labels = t->labels;
        }
        kind = CS_KIND_WALL;
    } else {
        if (s->npy)
            fold_eval_addresses(w, s->ips, s->nframes);
        stack = intern_stack(w, s->ips, s->nframes, s->py, s->npy);
        s->tags[CS_TAGS_MAX] = 0;
        labels = intern_labels(w, s->tags, s->gil);
        if ((kind == CS_KIND_WALL || kind == CS_KIND_CPU) && stack >= 0 && s->nframes) {
            tidstack *t = last_wall_slot(w, kind == CS_KIND_CPU ? -s->tid : s->tid, 1);
            if (t) {
                t->stack = (uint32_t)stack;
                t->labels = labels;
                t->seq = ++w->seq;
            }
        }
    }
    if (stack >= 0) {
        char pyname[sizeof w->aggs->name];
        agg *a =
            add_agg(w, ts, s->tid, kind, (uint32_t)stack, labels, s->count,
                    cs_pythreads_name(s->tid, pyname, sizeof pyname) ? pyname : s->thread_name);
        if (kind == CS_KIND_ALLOC) {
            double objects, bytes;
            cs_heap_weigh(s->alloc_size, &objects, &bytes);
            if (a) {
                a->objects += objects;
                a->bytes += bytes;
            }
            /* Most sampled blocks of a program that allocates a lot are freed before the
             * writer sees them: those never enter the live set (which the slice's sweep would
             * only empty again). */
            if (s->alloc_serial && cs_heap_is_live(s->alloc_addr, s->alloc_serial) &&
                cs_heaplive_add(&w->live, s->alloc_addr, s->alloc_serial, (uint32_t)stack, objects,
                                bytes) != 0)
                w->dropped_aggs++;
        }
    } else
        w->dropped_aggs++;
}

/* A compact copy: the sample up to its native frames, then the frames it has, then its
 * Python frames (an allocation sample is ~250 bytes of its 4.4 KiB slot). */
#define SPILL_HEAD offsetof(cs_sample, ips)
#define SPILL_MAX  ((size_t)32 << 20) /* beyond, the ring fills and drops, as without a spill */

static size_t spill_size(const cs_sample *s)
{
    return SPILL_HEAD + s->nframes * sizeof s->ips[0] + s->npy * sizeof s->py[0];
}

/* Called between the steps of a flush: an allocation-heavy program fills the ring's 2048
 * slots in ~10 ms, less than a flush that reads a module's symbol table or waits for the disk
 * takes, and what does not fit is lost. */
static void spill_ring(writer *w)
{
    cs_sample *s;
    while ((s = cs_ring_peek())) {
        if (s->nframes > CS_MAX_FRAMES || s->npy > CS_MAX_PYFRAMES) {
            cs_ring_release();
            continue;
        }
        size_t n = spill_size(s);
        if (w->spill_len + n > w->spill_cap) {
            size_t cap = w->spill_cap ? w->spill_cap * 2 : (size_t)1 << 20;
            unsigned char *m = cap <= SPILL_MAX ? realloc(w->spill, cap) : NULL;
            if (!m)
                break; /* the ring holds the rest, and drops beyond it (counted, said) */
            w->spill = m;
            w->spill_cap = cap;
        }
        unsigned char *o = w->spill + w->spill_len;
        memcpy(o, s, SPILL_HEAD);
        memcpy(o + SPILL_HEAD, s->ips, s->nframes * sizeof s->ips[0]);
        memcpy(o + SPILL_HEAD + s->nframes * sizeof s->ips[0], s->py, s->npy * sizeof s->py[0]);
        w->spill_len += n;
        cs_ring_release();
    }
}

/* The compact copy at offset AT, whole again in S; returns the offset of the next one, or 0
 * when it is not whole (only a crash handler reading the buffer of a writer it stopped could
 * meet one). */
static size_t spill_unpack(const writer *w, size_t at, cs_sample *s)
{
    const unsigned char *o = w->spill + at;
    if (at + SPILL_HEAD > w->spill_len)
        return 0;
    memcpy(s, o, SPILL_HEAD);
    if (s->nframes > CS_MAX_FRAMES || s->npy > CS_MAX_PYFRAMES || at + spill_size(s) > w->spill_len)
        return 0;
    memcpy(s->ips, o + SPILL_HEAD, s->nframes * sizeof s->ips[0]);
    memcpy(s->py, o + SPILL_HEAD + s->nframes * sizeof s->ips[0], s->npy * sizeof s->py[0]);
    return at + spill_size(s);
}

static void spill(writer *w)
{
    if (cs_ring_peek() && mutation_begin()) {
        spill_ring(w);
        mutation_end();
    }
}

static void drain(writer *w)
{
    if (!mutation_begin())
        return;
    static cs_sample one; /* writer thread only */
    unsigned k = 0;
    for (size_t at = 0; at < w->spill_len;) {
        if (++k % 256 == 0)
            spill_ring(w); /* the ring keeps filling while this drains */
        if (!(at = spill_unpack(w, at, &one)))
            break;
        drain_one(w, &one);
    }
    w->spill_len = 0;
    cs_sample *s;
    while ((s = cs_ring_peek())) {
        drain_one(w, s);
        cs_ring_release();
    }
    mutation_end();
}

/* --- writing -------------------------------------------------------------------------------- */

static int ipf_lookup(writer *w, uint64_t key, int64_t *id, int *eval)
{
    if (!w->ipf_cap)
        return 0;
    size_t p = cs_mix64(key) & (size_t)(w->ipf_cap - 1);
    for (; w->ipf[p].key; p = (p + 1) & (size_t)(w->ipf_cap - 1))
        if (w->ipf[p].key == key) {
            *id = w->ipf[p].frame_id;
            *eval = w->ipf[p].eval;
            return 1;
        }
    return 0;
}

static void ipf_clear(writer *w)
{
    if (w->ipf)
        memset(w->ipf, 0, sizeof *w->ipf * (size_t)w->ipf_cap);
    w->ipf_n = 0;
}

static void ipf_store(writer *w, uint64_t key, int64_t id, int eval)
{
    if ((w->ipf_n + 1) * 2 > w->ipf_cap) {
        if (w->ipf_cap >= (1 << 20)) {
            ipf_clear(w); /* bounded: forget and re-resolve rather than grow without end */
        } else {
            int cap = w->ipf_cap ? w->ipf_cap * 2 : 4096;
            ipframe *n = calloc((size_t)cap, sizeof *n);
            if (!n)
                return;
            for (int i = 0; i < w->ipf_cap; i++) {
                if (!w->ipf[i].key)
                    continue;
                size_t p = cs_mix64(w->ipf[i].key) & (size_t)(cap - 1);
                while (n[p].key)
                    p = (p + 1) & (size_t)(cap - 1);
                n[p] = w->ipf[i];
            }
            free(w->ipf);
            w->ipf = n;
            w->ipf_cap = cap;
        }
    }
    size_t p = cs_mix64(key) & (size_t)(w->ipf_cap - 1);
    while (w->ipf[p].key && w->ipf[p].key != key)
        p = (p + 1) & (size_t)(w->ipf_cap - 1);
    if (!w->ipf[p].key)
        w->ipf_n++;
    w->ipf[p].key = key;
    w->ipf[p].frame_id = id;
    w->ipf[p].eval = eval;
}

/* The path of libcrashscope.so itself: its frames (the pthread_create and sleep wrappers)
 * are crashscope's, not the program's, and are left out of the stacks. */
static const char *self_path(void)
{
    static char path[PATH_MAX];
    if (!path[0]) {
        Dl_info info;
        if (dladdr((void *)self_path, &info) && info.dli_fname && realpath(info.dli_fname, path))
            return path;
        snprintf(path, sizeof path, "%s", info.dli_fname ? info.dli_fname : "?");
    }
    return path;
}

/* Returns the frame id of IP, 0 for a frame of crashscope itself (to be left out), -1 on
 * failure. */
static int64_t frame_for(writer *w, uint64_t ip, int return_address, int64_t now, int *eval)
{
    uint64_t key = ip << 1 | (uint64_t)(return_address != 0);
    int64_t id;
    *eval = 0;
    if (ipf_lookup(w, key, &id, eval))
        return id;
    spill(w); /* a new module's symbol table may take tens of milliseconds to read */
    cs_symbol sym;
    cs_symbolizer_lookup(w->sym, ip, return_address, &sym);
    if (sym.module && !strcmp(sym.module, self_path())) {
        ipf_store(w, key, 0, 0);
        return 0;
    }
    *eval = cs_merge_is_eval(sym.function);
    if (*eval)
        learn_eval_range(w, &sym);
    int64_t module_id = 0;
    if (sym.module && (module_id = cs_db_module_id(w->db, sym.module, sym.build_id)) < 0)
        return -1;
    id = cs_db_frame_id(w->db, module_id, sym.rel, sym.function, now);
    if (id > 0)
        ipf_store(w, key, id, *eval);
    return id;
}

static uint64_t pyf_hash(const cs_pyframe *f)
{
    return cs_mix64(f->code ^ cs_mix64(f->name_ptr ^ (f->file_ptr << 7)) ^
                    ((uint64_t)(uint32_t)f->line << 32) ^ (uint32_t)f->firstline);
}

static int pyf_same(const cs_pyframe *a, const cs_pyframe *b)
{
    return a->code == b->code && a->name_ptr == b->name_ptr && a->file_ptr == b->file_ptr &&
           a->line == b->line && a->firstline == b->firstline;
}

static int64_t pyf_lookup(writer *w, const cs_pyframe *f)
{
    if (!w->pyf_cap)
        return 0;
    for (size_t p = pyf_hash(f) & (size_t)(w->pyf_cap - 1); w->pyf[p].frame_id;
         p = (p + 1) & (size_t)(w->pyf_cap - 1))
        if (pyf_same(&w->pyf[p].key, f))
            return w->pyf[p].frame_id;
    return 0;
}

static void pyf_clear(writer *w)
{
    if (w->pyf)
        memset(w->pyf, 0, sizeof *w->pyf * (size_t)w->pyf_cap);
    w->pyf_n = 0;
}

static void pyf_store(writer *w, const cs_pyframe *f, int64_t id)
{
    if ((w->pyf_n + 1) * 2 > w->pyf_cap) {
        if (w->pyf_cap >= (1 << 18)) {
            pyf_clear(w); /* bounded: forget and upsert again rather than grow */
        } else {
            int cap = w->pyf_cap ? w->pyf_cap * 2 : 1024;
            pyframe_id *n = calloc((size_t)cap, sizeof *n);
            if (!n)
                return;
            for (int i = 0; i < w->pyf_cap; i++) {
                if (!w->pyf[i].frame_id)
                    continue;
                size_t p = pyf_hash(&w->pyf[i].key) & (size_t)(cap - 1);
                while (n[p].frame_id)
                    p = (p + 1) & (size_t)(cap - 1);
                n[p] = w->pyf[i];
            }
            free(w->pyf);
            w->pyf = n;
            w->pyf_cap = cap;
        }
    }
    size_t p = pyf_hash(f) & (size_t)(w->pyf_cap - 1);
    while (w->pyf[p].frame_id)
        p = (p + 1) & (size_t)(w->pyf_cap - 1);
    w->pyf[p].key = *f;
    w->pyf[p].key.flags = 0;
    w->pyf[p].frame_id = id;
    w->pyf_n++;
}

/* The frame row of a Python frame: its code's names (remembered in the handler, so right
 * even if the code object is gone), the file as its module and the line as its address. */
static int64_t python_frame_for(writer *w, const cs_pyframe *f, int64_t now)
{
    int64_t cached = pyf_lookup(w, f);
    if (cached > 0)
        return cached;
    const char *qualname = "?", *file = "?";
    cs_python_lookup(f, &qualname, &file);
    int64_t module_id = cs_db_module_id(w->db, file, "");
    if (module_id < 0)
        return -1;
    int64_t id = cs_db_python_frame_id(w->db, module_id, qualname, file, f->line, now);
    if (id > 0)
        pyf_store(w, f, id);
    return id;
}

static int64_t stack_db_id(writer *w, stack_ent *s, int64_t now)
{
    int64_t touch_every = w->cfg.window_seconds / 4 > 1 ? w->cfg.window_seconds / 4 : 1;
    if (s->db_id > 0 && now - s->touched < touch_every)
        return s->db_id;
    if (s->db_id > 0) {
        /* Tell other processes' garbage collection that this stack and its frames live on. */
        if (cs_db_stack_id(w->db, s->frame_ids, s->nids, now) != s->db_id ||
            cs_db_frames_touch(w->db, s->frame_ids, s->nids, now) != 0)
            return -1;
        s->touched = now;
        return s->db_id;
    }
    int n = s->n + s->npy + 1;
    int64_t *ids = malloc(sizeof *ids * (size_t)n);
    if (!ids)
        return -1;
    /* Native frames first (crashscope's own left out), then Python frames spliced in at the
     * evaluation-loop frames. */
    int64_t nat[CS_MAX_FRAMES];
    uint8_t eval[CS_MAX_FRAMES], entry[CS_MAX_PYFRAMES];
    int nn = 0;
    for (int i = 0; i < s->n; i++) {
        int is_eval;
        int64_t f = frame_for(w, s->ips[i], i > 0, now, &is_eval);
        if (f < 0) {
            free(ids);
            return -1;
        }
        if (f > 0) {
            nat[nn] = f;
            eval[nn++] = (uint8_t)is_eval;
        }
    }
    for (int j = 0; j < s->npy; j++)
        entry[j] = (s->py[j].flags & CS_PYF_ENTRY) != 0;
    cs_merged order[CS_MAX_FRAMES + CS_MAX_PYFRAMES];
    int no = cs_merge(eval, nn, entry, s->npy, order);
    int kept = 0;
    for (int k = 0; k < no; k++) {
        int64_t f = order[k].python ? python_frame_for(w, &s->py[order[k].index], now)
                                    : nat[order[k].index];
        if (f < 0) {
            free(ids);
            return -1;
        }
        ids[kept++] = f;
    }
    /* Nothing at all (no libunwind, a stack it could not read, or only crashscope's own
     * frames): the sample is kept, as unknown. */
    if (kept == 0)
        ids[kept++] = cs_db_frame_id(w->db, 0, 0, "[unknown]", now);
    int64_t id = -1;
    if (ids[kept - 1] > 0) {
        n = kept;
        id = cs_db_stack_id(w->db, ids, n, now);
    }
    if (id <= 0) {
        free(ids);
        return -1;
    }
    free(s->frame_ids);
    s->frame_ids = ids;
    s->nids = (uint16_t)n;
    s->db_id = id;
    s->touched = now;
    return id;
}

/* After a rollback every id handed out inside the transaction is void. */
static void forget_db_ids(writer *w, int process_inserted)
{
    for (int i = 0; i < w->nstacks; i++)
        w->stacks[i].db_id = 0;
    ipf_clear(w);
    pyf_clear(w);
    if (process_inserted)
        w->process_id = 0;
}

static void open_db(writer *w)
{
    char err[512];
    if (!w->cfg.db_path[0]) {
        w->db_failed = 1;
        return;
    }
    if (cs_config_make_parent_dirs(w->cfg.db_path) != 0) {
        cs_shim_degrade("cannot create the directory of CRASHSCOPE_DB; nothing is recorded");
        w->db_failed = 1;
        return;
    }
    w->db = cs_db_open(w->cfg.db_path, 0, err, sizeof err);
    if (!w->db) {
        cs_warn("cannot record into %s: %s", w->cfg.db_path, err);
        w->db_failed = 1;
    }
}

/* A process recorded on this host that has not written for this long and whose pid is gone
 * died without a word (SIGKILL, the OOM killer): its siblings record the death. */
#define DEATH_STALE_S 3

static int pid_alive(int pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* --- snapshots: live heap, threads, timeline ------------------------------------------------ */

static int by_stack(const void *a, const void *b)
{
    const cs_heaplive_entry *x = a, *y = b;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/* The sampled allocations still live at NOW, summed per stack, as profile "inuse". Stores the
 * estimated live bytes in *LIVE_BYTES. */
static int write_heap_snapshot(writer *w, int64_t now, int64_t *live_bytes)
{
    *live_bytes = -1;
    if (cs_heap_interval() <= 0)
        return 0;
    cs_heaplive_sweep(&w->live);
    if (!w->said_heap_full && cs_heap_dropped() > 0) {
        cs_warn("more sampled allocations are live than the sampler can track; some are not "
                "recorded, so the live heap is underestimated from now on "
                "(CRASHSCOPE_HEAP_SAMPLE_BYTES larger helps)");
        w->said_heap_full = 1;
    }
    int n = w->live.n;
    cs_heaplive_entry *e = malloc(sizeof *e * (size_t)(n ? n : 1));
    if (!e)
        return 0; /* no snapshot this second rather than a failed flush */
    memcpy(e, w->live.e, sizeof *e * (size_t)n);
    qsort(e, (size_t)n, sizeof *e, by_stack);
    double total = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0;) {
        double objects = 0, bytes = 0;
        int j = i;
        for (; j < n && e[j].stack == e[i].stack; j++) {
            objects += e[j].objects;
            bytes += e[j].bytes;
        }
        total += bytes;
        int64_t sid = stack_db_id(w, &w->stacks[e[i].stack], now);
        rc = sid > 0 && cs_db_sample_add(w->db, w->process_id, w->pid, now, 0, NULL, "inuse", sid,
                                         llround(objects), llround(bytes), NULL) == 0
                 ? 0
                 : -1;
        i = j;
    }
    free(e);
    *live_bytes = llround(total);
    return rc;
}

static int unknown_stack(writer *w)
{
    if (w->unknown_stack < 0) {
        uint64_t none[1] = {0};
        w->unknown_stack = intern_stack(w, none, 0, NULL, 0);
    }
    return w->unknown_stack;
}

/* Every live thread once, with its latest stack (a thread never sampled yet: an empty stack),
 * as profile "threads". */
static int write_thread_profile(writer *w, int64_t now)
{
    int hw = cs_thread_high_water();
    for (int i = 0; i < hw; i++) {
        cs_thread *t = cs_thread_at(i);
        if (atomic_load(&t->state) != CS_SLOT_LIVE)
            continue;
        int32_t tid = atomic_load(&t->tid);
        tidstack *ws = last_wall_slot(w, tid, 0), *cs = last_wall_slot(w, -tid, 0);
        tidstack *last = ws && cs ? (ws->seq >= cs->seq ? ws : cs) : ws ? ws : cs;
        int stack = last ? (int)last->stack : unknown_stack(w);
        if (stack < 0)
            continue;
        char name[64];
        if (!cs_pythreads_name(tid, name, sizeof name)) {
            memcpy(name, t->name, sizeof t->name); /* a handler may be rewriting it: cut */
            name[sizeof t->name - 1] = 0;
        }
        int64_t sid = stack_db_id(w, &w->stacks[stack], now);
        if (sid <= 0 ||
            cs_db_sample_add(w->db, w->process_id, w->pid, now, tid, name, "threads", sid, 1, 1,
                             last && last->labels ? w->labels[last->labels] : NULL))
            return -1;
    }
    return 0;
}

static void flush(writer *w, int final)
{
    int64_t now = now_s();
    /* A process that recorded nothing (a fork child that execs or exits at once) leaves no
     * trace in the database. */
    if (!w->process_id && w->naggs == 0)
        return;
    pthread_mutex_lock(&db_lock);
    if (!w->db && !w->db_failed)
        open_db(w);
    spill(w);
    if (!w->db) {
        if (mutation_begin()) { /* no database: nothing can be kept */
            clear_aggs(w);
            mutation_end();
        }
        pthread_mutex_unlock(&db_lock);
        return;
    }
    cs_pythreads_request(); /* names for the next second's samples */
    if (cs_symbolizer_refresh(w->sym))
        w->neval = 0; /* relearned from the new module list */
    spill(w);
    /* Frame ids are cached, but a frame no stack touched for two windows may be collected by
     * another process: forget them well before that, so a cached id is never a stale one. */
    int64_t quarter = w->cfg.window_seconds / 4 > 1 ? w->cfg.window_seconds / 4 : 1;
    if (now - w->caches_since >= quarter) {
        ipf_clear(w);
        pyf_clear(w);
        w->caches_since = now;
    }
    if (cs_db_begin(w->db) != 0) {
        if (!w->said_busy) {
            cs_warn("database %s is busy (%s); keeping samples in memory and retrying",
                    w->cfg.db_path, cs_db_error(w->db));
            w->said_busy = 1;
        }
        if (w->naggs > MAX_AGGS / 2 && mutation_begin()) {
            w->dropped_aggs += (uint64_t)w->naggs;
            clear_aggs(w);
            mutation_end();
        }
        pthread_mutex_unlock(&db_lock);
        return;
    }
    int inserted = 0, ok = 1;
    cs_timeline_row tl;
    cs_procstat_read(&tl);
    if (!w->process_id) {
        const cs_process_strings *ps = cs_shim_process();
        cs_process_info p = {
            .pid = w->pid,
            .ppid = getppid(),
            .app_name = ps->app,
            .exe = ps->exe,
            .cmdline = ps->cmdline,
            .tags = ps->tags,
            .hostname = ps->host,
            .start_ns = cs_shim_start_ns(),
            .cpu_hz = ps->cpu_hz,
            .wall_hz = ps->wall_hz,
            .window_seconds = ps->window_seconds,
        };
        w->process_id = cs_db_process_insert(w->db, &p);
        inserted = 1;
        ok = w->process_id > 0;
    }
    int64_t cpu_period = w->cfg.cpu_hz ? 1000000000LL / w->cfg.cpu_hz : 0;
    int64_t wall_period = w->cfg.wall_hz ? 1000000000LL / w->cfg.wall_hz : 0;
    for (int i = 0; ok && i < w->naggs; i++) {
        agg *a = &w->aggs[i];
        spill(w);
        int64_t sid = stack_db_id(w, &w->stacks[a->stack], now);
        int cpu = a->kind == CS_KIND_CPU, alloc = a->kind == CS_KIND_ALLOC;
        ok = sid > 0 && cs_db_sample_add(w->db, w->process_id, w->pid, a->ts, a->tid, a->name,
                                         alloc ? "alloc"
                                         : cpu ? "cpu"
                                               : "wall",
                                         sid, alloc ? llround(a->objects) : a->count,
                                         alloc ? llround(a->bytes)
                                               : a->count * (cpu ? cpu_period : wall_period),
                                         a->labels ? w->labels[a->labels] : NULL) == 0;
    }
    if (ok)
        ok = cs_db_snapshot_clear(w->db, w->process_id, now) == 0;
    spill(w);
    if (ok)
        ok = write_heap_snapshot(w, now, &tl.heap_live_bytes) == 0;
    spill(w);
    if (ok)
        ok = write_thread_profile(w, now) == 0;
    spill(w);
    if (ok)
        ok = cs_db_timeline_add(w->db, w->process_id, now, &tl) == 0;
    if (ok)
        ok = cs_db_process_seen(w->db, w->process_id, now) == 0;
    if (ok && final)
        ok = cs_db_process_end(w->db, w->process_id, realtime_ns(), w->end_reason) == 0;
    if (ok && w->flushes % 10 == 5)
        ok = cs_db_mark_deaths(w->db, cs_shim_process()->host, now - DEATH_STALE_S, pid_alive) >= 0;
    if (ok)
        ok = cs_db_trim(w->db, now - w->cfg.window_seconds, w->flushes % 60 == 0,
                        now - 2 * (int64_t)w->cfg.window_seconds) == 0;
    spill(w);
    int mutating = ok && mutation_begin();
    if (ok && !mutating) {
        /* A crash is being captured: its record carries these samples; committing them too
         * would count them twice. */
        cs_db_rollback(w->db);
        forget_db_ids(w, inserted);
    } else if (ok && cs_db_commit(w->db) == 0) {
        clear_aggs(w);
        w->said_busy = 0;
    } else {
        if (ok == 0)
            cs_db_rollback(w->db);
        if (!w->said_busy) {
            cs_warn("could not write to %s (%s); will retry", w->cfg.db_path, cs_db_error(w->db));
            w->said_busy = 1;
        }
        forget_db_ids(w, inserted);
        if (w->naggs > MAX_AGGS / 2 && (mutating || mutation_begin())) {
            w->dropped_aggs += (uint64_t)w->naggs;
            clear_aggs(w);
            if (!mutating)
                mutation_end();
        }
    }
    if (w->naggs == 0 && w->nstacks > MAX_STACKS * 3 / 4 && mutating)
        reset_stacks(w);
    if (mutating)
        mutation_end();
    w->flushes++;
    pthread_mutex_unlock(&db_lock);
}

int cs_writer_freeze(int timeout_ms)
{
    atomic_store(&frozen, 1);
    for (int i = 0; i < timeout_ms * 10; i++) {
        if (!(atomic_load(&wgen) & 1))
            return 0;
        struct timespec t = {0, 100000};
        nanosleep(&t, NULL);
    }
    return -1;
}

void cs_writer_thaw(void)
{
    atomic_store(&frozen, 0);
}

void cs_writer_dump(cs_writer_emit_fn emit, void *ctx)
{
    writer *w = W;
    if (!w)
        return;
    for (int i = 0; i < w->naggs; i++) {
        agg *a = &w->aggs[i];
        if (a->stack >= (uint32_t)w->nstacks)
            continue;
        stack_ent *st = &w->stacks[a->stack];
        if (a->kind != CS_KIND_CPU && a->kind != CS_KIND_WALL)
            continue; /* a crash record carries the cpu and wall window only */
        emit(a->ts, a->tid, a->kind, a->count, a->name, st->ips, st->n, st->py, st->npy,
             a->labels ? w->labels[a->labels] : "", ctx);
    }
}

void cs_writer_dump_spilled(void (*emit)(const cs_sample *s, void *ctx), void *ctx)
{
    /* One crash captures at a time, and the writer is frozen: a static sample suffices. */
    static cs_sample one;
    writer *w = W;
    if (!w)
        return;
    for (size_t at = 0; at < w->spill_len && (at = spill_unpack(w, at, &one));)
        emit(&one, ctx);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    prctl(PR_SET_NAME, "crashscope-db", 0, 0, 0);
    w->started_s = now_s();
    w->ring_populated = 0;
    cs_heap_ignore_thread(); /* SQLite's allocations are ours, not the program's */
    pthread_mutex_lock(&w->mu);
    if (!w->sym) /* under the fork lock: it reads the loader's module list (see below) */
        w->sym = cs_symbolizer_new();
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        /* the producers wake it sooner when the ring fills; cs_writer_stop wakes it too. A
         * second's samples are written just after it ends, not up to a period later. */
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        long to_next_second = 1000000000L - rt.tv_nsec + 2000000L;
        cs_ring_wait(to_next_second < DRAIN_PERIOD_NS ? to_next_second : DRAIN_PERIOD_NS);
        pthread_mutex_lock(&w->mu);
        if (w->stop)
            break;
        /* Under the lock a fork takes first: this reads the loader's module list, and a fork
         * in the middle would leave the child's loader lock held by a thread the child does
         * not have (its writer, and any dlopen or C++ throw of the program, would hang). */
        cs_unwind_refresh_modules();
        pthread_mutex_unlock(&w->mu);
        drain(w);
        if (!w->said_ring_full && cs_ring_dropped() > 0) {
            cs_warn("samples arrive faster than they can be stored; some are dropped, so "
                    "profiles undercount from now on (lower CRASHSCOPE_CPU_HZ/WALL_HZ or a larger "
                    "CRASHSCOPE_HEAP_SAMPLE_BYTES helps)");
            w->said_ring_full = 1;
        }
        /* Not at once: a short-lived process (a shell loop's) would pay for 9 MiB of pages it
         * never uses. But soon in one whose producers will go round the ring anyway: an
         * allocation-heavy program makes thousands of samples a second, each of which would
         * otherwise fault its slot's pages in on the program's thread. */
        int64_t s = now_s();
        if (!w->ring_populated && (s - w->started_s >= 2 || cs_ring_half_claimed())) {
            cs_ring_populate();
            w->ring_populated = 1;
        }
        if (s != w->last_flush_s && w->sym) {
            w->last_flush_s = s;
            flush(w, 0);
            cs_selftime_mark(CS_ST_WRITER);
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    cs_selftime_end(CS_ST_WRITER); /* the final flush is part of stopping, not steady */
    drain(w);
    if (w->sym)
        flush(w, 1);
    pthread_mutex_lock(&w->mu);
    cs_selftime_thread_done(CS_ST_WRITER);
    w->done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int spawn(writer *w)
{
    w->stop = 0;
    w->done = 0;
    if (cs_spawn_internal(&w->thread, writer_main, w) != 0) {
        cs_shim_degrade("cannot start the writer thread; nothing is recorded");
        return -1;
    }
    w->running = 1;
    return 0;
}

static void init_sync(writer *w)
{
    w->unknown_stack = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
}

int cs_writer_start(const cs_config *c, const char *app_name)
{
    writer *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->cfg = *c;
    snprintf(w->app, sizeof w->app, "%s", app_name);
    w->pid = getpid();
    init_sync(w);
    W = w;
    return spawn(w);
}

void cs_writer_stop(const char *reason, int timeout_ms)
{
    writer *w = W;
    if (!w || !w->running)
        return;
    pthread_mutex_lock(&w->mu);
    w->end_reason = reason;
    w->stop = 1;
    cs_ring_wake(); /* the writer sleeps on the ring, not on the condition variable */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_nsec -= 1000000000L;
        dl.tv_sec++;
    }
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
    int finished = w->done;
    pthread_mutex_unlock(&w->mu);
    if (finished) {
        pthread_join(w->thread, NULL);
        w->running = 0;
    }
    /* else: the database stayed locked past the bound; exit goes on without the writer */
}

void cs_writer_restart(void)
{
    writer *w = W;
    if (!w || w->running)
        return;
    spawn(w);
}

void cs_writer_fork_prepare(void)
{
    if (W)
        pthread_mutex_lock(&W->mu);
    pthread_mutex_lock(&db_lock);
}

void cs_writer_fork_parent(void)
{
    pthread_mutex_unlock(&db_lock);
    if (W)
        pthread_mutex_unlock(&W->mu);
}

void cs_writer_fork_child(void)
{
    pthread_mutex_init(&db_lock, NULL);
    writer *old = W;
    if (!old)
        return;
    /* Abandon the parent's writer (its thread does not exist here; its state may be
     * half-updated), keeping only the configuration. */
    writer *w = calloc(1, sizeof *w);
    if (!w) {
        W = NULL;
        return;
    }
    w->cfg = old->cfg;
    memcpy(w->app, old->app, sizeof w->app);
    w->pid = getpid();
    init_sync(w);
    W = w;
    spawn(w);
}
