/*
 * heap.c: sampled allocation profiling. Interposes the C allocator's entry points, picks
 * allocations by Poisson sampling over bytes (mean interval CRASHSCOPE_HEAP_SAMPLE_BYTES),
 * records each picked one's stack into the ring for the writer, and remembers its address in
 * a lock-free table so that the writer can tell, at every slice, which are still live.
 *
 * The cost on the path that is not sampled is a thread-local subtraction on allocation and,
 * on free, one byte read from a 64 KiB filter (the count of sampled blocks per hash bucket):
 * zero means "not sampled" without touching the table.
 *
 * Early calls (before dlsym found the real allocator, and dlsym's own) are served from a
 * static arena and never freed to the real allocator. A thread inside crashscope's own
 * sampling path (unwinding may allocate once per thread) goes straight to the real allocator.
 *
 * Must never: sample inside a signal handler of ours or in a thread already sampling (the
 * recursion guard), hold a lock, lose a free of a sampled block (every entry is found by its
 * full address; probing never stops early), or hand a block of one allocator to another.
 */
#include "heap.h"

#ifdef CS_NO_ALLOC_INTERPOSER /* sanitizer builds: the sampling path below is never called */
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

#include "hash.h"
#include "ring.h"
#include "sampler.h"
#include "selftime.h"
#include "shim.h"
#include "tags.h"
#include "threads.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*reallocarray_fn)(void *, size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef void *(*valloc_fn)(size_t);

static struct {
    malloc_fn malloc;
    free_fn free;
    calloc_fn calloc;
    realloc_fn realloc;
    reallocarray_fn reallocarray;
    posix_memalign_fn posix_memalign;
    memalign_fn aligned_alloc, memalign;
    valloc_fn valloc, pvalloc;
} real;

static _Atomic int resolving;
static _Atomic int resolved;

/* --- the early arena ------------------------------------------------------------------ */

#define EARLY_BYTES (256 * 1024)
static _Alignas(64) unsigned char early[EARLY_BYTES];
static _Atomic size_t early_used;

static void *early_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    size_t cur = atomic_load(&early_used), start, end;
    do {
        start = (cur + align - 1) & ~(align - 1);
        end = start + ((n + 15) & ~(size_t)15);
        if (end > EARLY_BYTES || end < start)
            return NULL;
    } while (!atomic_compare_exchange_weak(&early_used, &cur, end));
    return early + start; /* static storage: already zero, as calloc wants */
}

static int is_early(const void *p)
{
    return (const unsigned char *)p >= early && (const unsigned char *)p < early + EARLY_BYTES;
}

static void resolve(void)
{
    if (atomic_load_explicit(&resolved, memory_order_acquire))
        return;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&resolving, &expect, 1))
        return; /* another thread (or this one, inside dlsym) is at it: early arena meanwhile */
#define FIND(field, name) (*(void **)&real.field = dlsym(RTLD_NEXT, name))
    FIND(free, "free");
    FIND(calloc, "calloc");
    FIND(realloc, "realloc");
    FIND(reallocarray, "reallocarray");
    FIND(posix_memalign, "posix_memalign");
    FIND(aligned_alloc, "aligned_alloc");
    FIND(memalign, "memalign");
    FIND(valloc, "valloc");
    FIND(pvalloc, "pvalloc");
    FIND(malloc, "malloc"); /* last: its presence says the others were looked up */
#undef FIND
    atomic_store_explicit(&resolved, 1, memory_order_release);
}

/* --- the sampling decision --------------------------------------------------------------- */

static _Atomic long mean_interval; /* bytes; 0 = off (until cs_heap_start) */
static _Atomic int decided;        /* cs_heap_start ran: 0 now means off for good */
static __thread int64_t until_sample __attribute__((tls_model("initial-exec")));
static __thread uint64_t rng __attribute__((tls_model("initial-exec")));
static __thread int busy __attribute__((tls_model("initial-exec")));

static double uniform01(void)
{
    if (!rng) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&rng ^ (uint64_t)ts.tv_sec;
        rng |= 1;
    }
    rng ^= rng << 13; /* xorshift64 */
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

/* Bytes until the next sample: exponential with the configured mean, so that sampling is a
 * Poisson process over allocated bytes and every byte has the same chance. */
static int64_t next_interval(long mean)
{
    double x = -log(uniform01()) * (double)mean;
    return x < 1 ? 1 : x > 1e15 ? (int64_t)1e15 : (int64_t)x;
}

/* --- the live table ----------------------------------------------------------------------- */

/* Open addressing without tombstones: an address hashes to a window of WINDOW slots (two cache
 * lines) and lives in any free slot of it; removal empties its slot, and every lookup reads
 * the whole window. Tombstones, in the linear probing this replaced, piled up under a
 * program that allocates and frees all day until every miss walked the 128-slot bound. A
 * window with no free slot means "not sampled" (counted, said once by the writer). */
#define LIVE_SLOTS  (1u << 18) /* 4 MiB of (address, serial) pairs, touched as used */
#define WINDOW      8
#define FILTER_BITS 16
#define CLAIMED     ((uintptr_t)-2) /* being filled in by an insert */

typedef struct live_slot {
    _Atomic uintptr_t addr; /* 0 empty, CLAIMED, else a sampled block */
    _Atomic uint64_t serial;
} live_slot;

static live_slot *live; /* page-aligned: a window is two whole cache lines */
static _Atomic uint8_t filter[1u << FILTER_BITS];
static _Atomic uint64_t table_full;

/* The filter bucket of a block: the 256-byte granule its address starts in. A heap is mostly
 * contiguous, so the blocks a program frees map to a few contiguous filter bytes that stay in
 * cache (blocks hashed one by one spread over all 64 KiB and missed it on most frees: +4 ns
 * per free). The price: a free of a block that starts in the same granule as a live sampled
 * one looks into the table (with whole pages as granules, as at first, 2-3% of the frees of a
 * small-block benchmark did, and remove_live was 2% of its time). */
static inline uint32_t filter_of(uintptr_t p)
{
    return (uint32_t)(p >> 8) & ((1u << FILTER_BITS) - 1);
}

static inline live_slot *window_of(uintptr_t p)
{
    return &live[cs_mix64(p) & (LIVE_SLOTS - 1) & ~(uint64_t)(WINDOW - 1)];
}

/* Remembers P as sampled, with SERIAL (never 0). Returns 0, or -1 when its window is full. */
static int insert_live(uintptr_t p, uint64_t serial)
{
    uint32_t f = filter_of(p);
    if (atomic_load_explicit(&filter[f], memory_order_relaxed) == 255)
        return -1; /* a bucket this crowded: do not count past the filter's range */
    live_slot *w = window_of(p);
    for (uint32_t i = 0; i < WINDOW; i++) {
        uintptr_t cur = atomic_load_explicit(&w[i].addr, memory_order_relaxed);
        if (cur == 0 && atomic_compare_exchange_strong(&w[i].addr, &cur, CLAIMED)) {
            atomic_store_explicit(&w[i].serial, serial, memory_order_relaxed);
            atomic_fetch_add_explicit(&filter[f], 1, memory_order_relaxed);
            atomic_store_explicit(&w[i].addr, p, memory_order_release);
            return 0;
        }
    }
    atomic_fetch_add(&table_full, 1);
    return -1;
}

/* Free of P: if P is a sampled block, forget it. A block is freed after its malloc returned,
 * so after its insert finished: it is in its window, or was never sampled. */
static __attribute__((noinline)) void remove_live(uintptr_t p)
{
    live_slot *w = window_of(p);
    for (uint32_t i = 0; i < WINDOW; i++) {
        if (atomic_load_explicit(&w[i].addr, memory_order_relaxed) == p) {
            atomic_store_explicit(&w[i].addr, 0, memory_order_release);
            atomic_fetch_sub_explicit(&filter[filter_of(p)], 1, memory_order_relaxed);
            return;
        }
    }
}

int cs_heap_is_live(uint64_t addr, uint64_t serial)
{
    if (!live)
        return 0;
    live_slot *w = window_of((uintptr_t)addr);
    for (uint32_t i = 0; i < WINDOW; i++)
        if (atomic_load_explicit(&w[i].addr, memory_order_acquire) == addr &&
            atomic_load_explicit(&w[i].serial, memory_order_relaxed) == serial)
            return 1;
    return 0;
}

uint64_t cs_heap_dropped(void)
{
    return atomic_load(&table_full);
}

/* --- a sample --------------------------------------------------------------------------- */

void cs_heap_weigh(uint64_t size, double *objects, double *bytes)
{
    /* The chance that a block of SIZE bytes is picked is 1 - exp(-size/mean); dividing by it
     * makes the estimates unbiased (the scaling pprof's Go runtime uses). */
    long mean = atomic_load_explicit(&mean_interval, memory_order_relaxed);
    double chance = mean > 0 ? 1.0 - exp(-(double)size / (double)mean) : 1.0;
    *objects = chance > 0 ? 1.0 / chance : 1.0;
    *bytes = *objects * (double)size;
}

static void record(void *p, size_t size)
{
    /* The slot first: its position in the ring is the block's serial (unique, with no shared
     * counter of its own to bounce between the cores of threads that all allocate). */
    uint64_t pos;
    cs_sample *s = cs_ring_claim_at(&pos);
    if (!s)
        return; /* counted by the ring, said by the writer */
    /* A block whose window is full still counts as allocated, only not as live. */
    uint64_t serial = insert_live((uintptr_t)p, pos + 1) == 0 ? pos + 1 : 0;
    /* The coarse clock (the vDSO's last tick, a few ms old): samples are counted per second,
     * and the precise one reads the VM's paravirtual clock (53 against 6 cycles in a loop
     * here, more from a cold cache), 50,000 times a second in an allocation-heavy program. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    s->time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    /* the thread table has both, without a system call each */
    cs_thread *t = cs_thread_self();
    s->tid = t ? atomic_load_explicit(&t->tid, memory_order_relaxed) : cs_gettid();
    s->kind = CS_KIND_ALLOC;
    s->count = 1;
    if (t) {
        memcpy(s->thread_name, t->name, sizeof s->thread_name);
        s->thread_name[sizeof s->thread_name - 1] = 0;
    } else {
        prctl(PR_GET_NAME, s->thread_name, 0, 0, 0);
    }
    s->alloc_addr = (uint64_t)(uintptr_t)p;
    s->alloc_serial = serial;
    s->alloc_size = size; /* the writer weighs it: no exp() on the program's thread */
    s->nframes = (uint16_t)cs_unwind_here(s->ips, CS_MAX_FRAMES);
    s->npy = (uint16_t)cs_sampler_python_stack(s->py, CS_MAX_PYFRAMES);
    s->gil = -1;
    cs_tags_copy(s->tags);
    cs_ring_commit(s);
}

/* Never again on this thread (sampling off, or one of crashscope's threads). */
#define NEVER ((int64_t)1 << 62)

static __attribute__((noinline)) void sample_or_not(void *p, size_t size)
{
    long mean = atomic_load_explicit(&mean_interval, memory_order_relaxed);
    if (mean <= 0) {
        /* Before the constructor decided, ask again next time; after, sampling is off. */
        until_sample = atomic_load_explicit(&decided, memory_order_relaxed) ? NEVER : 0;
        return;
    }
    if (!p || busy)
        return;
    busy = 1;
    int saved = errno;
    int first = rng == 0;
    until_sample = next_interval(mean);
    /* A thread's first allocation only starts its countdown: every thread would otherwise
     * sample its first block. */
    if (!first && live && cs_shim_active()) {
        uint64_t t0 = cs_selftime_begin();
        record(p, size);
        cs_selftime_add(CS_ST_ALLOC, t0);
    }
    errno = saved;
    busy = 0;
}

/* The allocation path: one thread-local subtraction unless a sample is due. */
static inline void after_alloc(void *p, size_t size)
{
    if ((until_sample -= (int64_t)size) <= 0)
        sample_or_not(p, size);
}

/* The free path: one byte of the filter unless the block may be a sampled one. */
static inline void before_free(void *p)
{
    if (atomic_load_explicit(&filter[filter_of((uintptr_t)p)], memory_order_relaxed))
        remove_live((uintptr_t)p);
}

/* --- the interposed entry points ---------------------------------------------------------- */

/* Under AddressSanitizer its own interceptors are the allocator (and come first): a second
 * interposer would hand blocks between two allocators. Allocation profiling is then off. */
#ifndef CS_NO_ALLOC_INTERPOSER

/* malloc and free are the two calls a program makes millions of times a second: their
 * common path is a few instructions and a tail call into the real allocator, without a frame
 * (no pushes: -fomit-frame-pointer for these two, whatever the rest of the shim is built
 * with); everything else is in the out-of-line slow halves. */
#define CS_HOT __attribute__((optimize("omit-frame-pointer")))

static __attribute__((noinline)) void *malloc_slow(size_t n)
{
    if (!real.malloc) {
        resolve();
        if (!real.malloc)
            return early_alloc(n, 16);
    }
    void *p = real.malloc(n);
    if (until_sample <= 0)
        sample_or_not(p, n);
    return p;
}

CS_PUBLIC CS_HOT void *malloc(size_t n)
{
    /* The countdown first: when no sample is due, the real malloc is a tail call. */
    int64_t left = until_sample -= (int64_t)n;
    malloc_fn f = real.malloc;
    if (__builtin_expect(left > 0 && f != NULL, 1))
        return f(n);
    return malloc_slow(n);
}

static __attribute__((noinline)) void free_slow(void *p)
{
    if (!p || is_early(p))
        return;
    before_free(p);
    if (!real.free)
        resolve();
    if (real.free)
        real.free(p);
}

CS_PUBLIC CS_HOT void free(void *p)
{
    /* One filter byte says "not a sampled block"; the early arena's blocks are never the
     * real allocator's; free(NULL) may go to the real free, which ignores it. */
    free_fn f = real.free;
    uintptr_t u = (uintptr_t)p;
    if (__builtin_expect(f != NULL && u - (uintptr_t)early >= EARLY_BYTES &&
                             !atomic_load_explicit(&filter[filter_of(u)], memory_order_relaxed),
                         1))
        return f(p);
    free_slow(p);
}

CS_PUBLIC void *calloc(size_t n, size_t size)
{
    resolve();
    if (!real.calloc) {
        size_t total;
        if (__builtin_mul_overflow(n, size, &total))
            return NULL;
        return early_alloc(total, 16);
    }
    void *p = real.calloc(n, size);
    after_alloc(p, n * size);
    return p;
}

CS_PUBLIC void *realloc(void *old, size_t n)
{
    resolve();
    if (is_early(old) || !real.realloc) {
        /* a block of the early arena moves to the real allocator (or to more arena) */
        void *p = malloc(n);
        if (p && old) {
            size_t have = (size_t)(early + EARLY_BYTES - (unsigned char *)old);
            memcpy(p, old, have < n ? have : n);
        }
        return p;
    }
    if (old)
        before_free(old);
    void *p = real.realloc(old, n);
    if (!p && old && n) {
        /* the old block lives on: it was sampled or not, we no longer know; a lost free is
         * the cheaper error (a sampled block that looks freed) */
        return p;
    }
    after_alloc(p, n);
    return p;
}

CS_PUBLIC void *reallocarray(void *old, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, total);
}

CS_PUBLIC int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    if (!real.posix_memalign) {
        void *p = early_alloc(n, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    int rc = real.posix_memalign(out, align, n);
    if (rc == 0)
        after_alloc(*out, n);
    return rc;
}

CS_PUBLIC void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    if (!real.aligned_alloc)
        return early_alloc(n, align);
    void *p = real.aligned_alloc(align, n);
    after_alloc(p, n);
    return p;
}

CS_PUBLIC void *memalign(size_t align, size_t n)
{
    resolve();
    if (!real.memalign)
        return early_alloc(n, align);
    void *p = real.memalign(align, n);
    after_alloc(p, n);
    return p;
}

CS_PUBLIC void *valloc(size_t n)
{
    resolve();
    if (!real.valloc)
        return early_alloc(n, 4096);
    void *p = real.valloc(n);
    after_alloc(p, n);
    return p;
}

CS_PUBLIC void *pvalloc(size_t n)
{
    resolve();
    if (!real.pvalloc)
        return early_alloc((n + 4095) & ~(size_t)4095, 4096);
    void *p = real.pvalloc(n);
    after_alloc(p, n);
    return p;
}

#endif /* CS_NO_ALLOC_INTERPOSER */

/* --- control ---------------------------------------------------------------------------- */

int cs_heap_start(long interval_bytes)
{
#ifdef CS_NO_ALLOC_INTERPOSER
    interval_bytes = 0;
#endif
    if (interval_bytes <= 0) {
        atomic_store(&decided, 1);
        return 0;
    }
    void *p = mmap(NULL, sizeof(live_slot) * LIVE_SLOTS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        atomic_store(&decided, 1);
        return -1;
    }
    live = p;
    atomic_store(&mean_interval, interval_bytes);
    atomic_store(&decided, 1);
    return 0;
}

void cs_heap_ignore_thread(void)
{
    busy = 1;
    until_sample = NEVER;
}

long cs_heap_interval(void)
{
    return atomic_load(&mean_interval);
}

void cs_heap_after_fork_child(void)
{
    /* The child inherits its parent's live blocks, but the writer that knew them is gone
     * and a new one starts empty: forget them all, filter included (touching only what was
     * used would need a scan; a fresh mapping costs nothing until used). */
    if (!live)
        return;
    void *p = mmap(NULL, sizeof(live_slot) * LIVE_SLOTS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        atomic_store(&mean_interval, 0);
        return;
    }
    munmap(live, sizeof(live_slot) * LIVE_SLOTS);
    live = p;
    memset(filter, 0, sizeof filter);
}
