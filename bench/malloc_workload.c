/*
 * malloc_workload.c: a fixed amount of allocator traffic from several threads, for the
 * allocation sampler's overhead (bench/heap.sh).
 *
 * Each of THREADS threads keeps a working set of 4096 blocks and replaces one at a time,
 * chosen by its own xorshift generator, with a block of 16 to 512 bytes (a web server's
 * small strings and objects), OPS times; one block in 64 is realloc'ed instead and one in 128
 * is a calloc. With "fill", each block is also written whole and read every 64 bytes (a
 * program that uses what it allocates); without, only its first and last bytes are touched
 * (the allocator alone: the worst case for an interposer).
 *
 * Prints, for the whole work phase: its wall time "work_wall_s", the process CPU time over it
 * "work_cpu_s" (recorder threads included), the worker threads' own CPU "workers_cpu_s", and
 * a checksum so that runs can be seen to do the same work. And for its steady part, from
 * WARMUP seconds after the start until the first thread finishes (all threads at work, a
 * recorder past its start-up): "steady_wall_s", "steady_pairs", "steady_cpu_s",
 * "steady_workers_cpu_s"; absent when the work ends before the warm-up does.
 *
 * With "ab" (see work_ab), each thread alternates the program's allocator calls with
 * glibc's own entry points and prints the CPU time a pair took through each
 * ("ab_program_ns", "ab_glibc_ns") over "ab_pairs" pairs each, instead of the steady part.
 *
 * Usage: malloc_workload [THREADS=4] [OPS=4000000] [fill|nofill] [WARMUP=2] [ab]
 *
 * Must never depend on the machine's speed for what it computes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SET 4096

static long ops_per_thread;
static int fill;
static int ab;               /* see work_ab */
static _Atomic int finished; /* workers done */
static _Atomic int m0_taken; /* the steady part has begun */
static int steady;           /* and the first worker to finish ended it */

/* One cache line each: the threads write their own results, and two of them sharing a line
 * measured the line bouncing between cores (up to 3x, depending on where the array landed). */
typedef struct worker {
    _Alignas(64) pthread_t t;
    uint64_t seed, sum;
    double cpu;                            /* the thread's own CPU time */
    _Atomic long done;                     /* pairs so far, published every 4096 */
    double ab_program, ab_glibc, ab_pairs; /* "ab": CPU time in each, pairs in each */
} worker;

/* The steady part's counters at one moment: wall, process CPU, workers' CPU, pairs. */
typedef struct mark {
    double wall, cpu, workers, pairs;
} mark;

static worker *all;
static int nthreads;
static mark m0, m1;

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static mark take(worker *w, int n)
{
    mark m = {0, 0, 0, 0};
    m.wall = now(CLOCK_MONOTONIC);
    m.cpu = now(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++) {
        clockid_t c;
        struct timespec ts;
        if (pthread_getcpuclockid(w[i].t, &c) != 0 || clock_gettime(c, &ts) != 0)
            return (mark){0, 0, 0, 0}; /* a thread gone: no steady part */
        m.workers += (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        m.pairs += (double)atomic_load_explicit(&w[i].done, memory_order_relaxed);
    }
    return m;
}

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One replacement of a block of SET (the index and size from R), through the allocator
 * functions given: the program's (interposed, when a library is preloaded) or glibc's own
 * entry points (never interposed). A macro, so that both are plain calls as in a program. */
#define REPLACE(MALLOC, FREE, CALLOC, REALLOC, set, r, sum)                                        \
    do {                                                                                           \
        size_t slot_ = (size_t)((r) % SET), size_ = 16 + (size_t)(((r) >> 20) % 497);              \
        unsigned char *p_;                                                                         \
        if (((r) >> 40) % 64 == 0 && (set)[slot_]) {                                               \
            p_ = REALLOC((set)[slot_], size_);                                                     \
        } else {                                                                                   \
            FREE((set)[slot_]);                                                                    \
            p_ = ((r) >> 48) % 128 == 0 ? CALLOC(1, size_) : MALLOC(size_);                        \
        }                                                                                          \
        if (!p_)                                                                                   \
            abort();                                                                               \
        if (fill) {                                                                                \
            /* what a program does with what it allocates: writes it, reads some of it */          \
            memset(p_, (int)((r) >> 8), size_);                                                    \
            for (size_t k_ = 0; k_ < size_; k_ += 64)                                              \
                (sum) += p_[k_];                                                                   \
        } else {                                                                                   \
            p_[0] = (unsigned char)(r);                                                            \
            p_[size_ - 1] = (unsigned char)((r) >> 8);                                             \
        }                                                                                          \
        (sum) += p_[0];                                                                            \
        (set)[slot_] = p_;                                                                         \
    } while (0)

/* glibc's own entry points: what a call costs without an interposer, in the same process. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

/* N replacements through the program's functions; SEED and SUM go on from where they were
 * (in registers meanwhile, not in memory the calls could touch). */
static __attribute__((noinline)) void batch_program(unsigned char **set, uint64_t *seed,
                                                    uint64_t *sum, long n)
{
    uint64_t x = *seed, total = *sum;
    for (long i = 0; i < n; i++) {
        uint64_t r = next(&x);
        REPLACE(malloc, free, calloc, realloc, set, r, total);
    }
    *seed = x;
    *sum = total;
}

/* The same through glibc's own entry points. Two functions with direct calls, not one taking
 * the four functions as pointers: an indirect call on both sides would add to each the very
 * cost the A/B compares. */
static __attribute__((noinline)) void batch_glibc(unsigned char **set, uint64_t *seed,
                                                  uint64_t *sum, long n)
{
    uint64_t x = *seed, total = *sum;
    for (long i = 0; i < n; i++) {
        uint64_t r = next(&x);
        REPLACE(__libc_malloc, __libc_free, __libc_calloc, __libc_realloc, set, r, total);
    }
    *seed = x;
    *sum = total;
}

/* "ab": the thread alternates batches through the program's allocator functions and through
 * glibc's own, each with its own working set, and times each on its own CPU clock. Whatever
 * slows the machine (another tenant of the host, a slower core) slows both alike; the
 * difference is what the interposer and its samples cost an allocation. The first fifth is
 * a warm-up. */
#define AB_BATCH 32768

static void work_ab(worker *w, uint64_t *sum)
{
    unsigned char **other = __libc_calloc(SET, sizeof *other);
    unsigned char **set = calloc(SET, sizeof *set);
    if (!other || !set)
        abort();
    uint64_t seed = w->seed, seed2 = w->seed ^ 0x5bd1e995u;
    long batches = ops_per_thread / AB_BATCH;
    for (long b = 0; b < batches; b++) {
        int program_first = b & 1; /* neither always runs on the other's leftovers */
        double t0 = now(CLOCK_THREAD_CPUTIME_ID);
        if (program_first)
            batch_program(set, &seed, sum, AB_BATCH);
        else
            batch_glibc(other, &seed2, sum, AB_BATCH);
        double t1 = now(CLOCK_THREAD_CPUTIME_ID);
        if (program_first)
            batch_glibc(other, &seed2, sum, AB_BATCH);
        else
            batch_program(set, &seed, sum, AB_BATCH);
        double t2 = now(CLOCK_THREAD_CPUTIME_ID);
        if (b >= batches / 5) {
            w->ab_program += program_first ? t1 - t0 : t2 - t1;
            w->ab_glibc += program_first ? t2 - t1 : t1 - t0;
            w->ab_pairs += AB_BATCH;
        }
    }
    for (size_t i = 0; i < SET; i++) {
        free(set[i]);
        __libc_free(other[i]);
    }
    free(set);
    __libc_free(other);
}

static void *work(void *arg)
{
    worker *w = arg;
    /* glibc gives each thread an arena aligned to 64 MiB: the threads' working sets would sit
     * at the same offsets and fight over the same cache sets, by an amount that anything else
     * in the process (a preloaded library's own allocations) changes. A different offset per
     * thread takes that out of the comparison. */
    void *pad = malloc(64 + (size_t)(w->seed % 61) * 4160);
    uint64_t sum = 0, seed = w->seed; /* not in the shared array */
    if (ab) {
        work_ab(w, &sum);
    } else {
        unsigned char **set = calloc(SET, sizeof *set);
        if (!set)
            abort();
        for (long i = 0; i < ops_per_thread; i += 4096) {
            long n = ops_per_thread - i < 4096 ? ops_per_thread - i : 4096;
            batch_program(set, &seed, &sum, n);
            atomic_store_explicit(&w->done, i + n, memory_order_relaxed);
        }
        for (size_t i = 0; i < SET; i++)
            free(set[i]);
        free(set);
    }
    free(pad);
    w->sum = sum;
    w->cpu = now(CLOCK_THREAD_CPUTIME_ID);
    atomic_store_explicit(&w->done, ops_per_thread, memory_order_relaxed);
    /* The first to finish ends the steady part, while every thread is still alive to have
     * its CPU clock read. */
    if (atomic_fetch_add(&finished, 1) == 0 && atomic_load(&m0_taken)) {
        m1 = take(all, nthreads);
        steady = m0.wall > 0 && m1.wall > 0;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    ops_per_thread = argc > 2 ? atol(argv[2]) : 4000000;
    fill = argc > 3 && !strcmp(argv[3], "fill");
    double warmup = argc > 4 ? atof(argv[4]) : 2.0;
    ab = argc > 5 && !strcmp(argv[5], "ab");
    if (n < 1 || n > 256 || ops_per_thread < 1)
        return 2;
    worker *w = aligned_alloc(64, (size_t)n * sizeof *w);
    if (!w)
        return 2;
    all = w;
    nthreads = n;
    memset(w, 0, (size_t)n * sizeof *w);
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++) {
        w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        pthread_create(&w[i].t, NULL, work, &w[i]);
    }
    /* The steady part: from the warm-up's end until the first thread is done (which takes
     * the second mark). */
    struct timespec tick = {0, 5000000};
    while (now(CLOCK_MONOTONIC) - t0 < warmup && !atomic_load(&finished))
        nanosleep(&tick, NULL);
    if (!atomic_load(&finished)) {
        m0 = take(w, n);
        atomic_store(&m0_taken, 1);
    }
    uint64_t sum = 0;
    double threads_cpu = 0, ab_program = 0, ab_glibc = 0, ab_pairs = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].t, NULL);
        sum += w[i].sum;
        threads_cpu += w[i].cpu;
        ab_program += w[i].ab_program;
        ab_glibc += w[i].ab_glibc;
        ab_pairs += w[i].ab_pairs;
    }
    double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    printf("work_wall_s %.6f\nwork_cpu_s %.6f\nworkers_cpu_s %.6f\nchecksum %llu\n", t1 - t0,
           c1 - c0, threads_cpu, (unsigned long long)sum);
    if (ab && ab_pairs > 0)
        printf("ab_pairs %.0f\nab_program_ns %.3f\nab_glibc_ns %.3f\n", ab_pairs,
               ab_program / ab_pairs * 1e9, ab_glibc / ab_pairs * 1e9);
    if (steady && !ab)
        printf(
            "steady_wall_s %.6f\nsteady_pairs %.0f\nsteady_cpu_s %.6f\nsteady_workers_cpu_s %.6f\n",
            m1.wall - m0.wall, m1.pairs - m0.pairs, m1.cpu - m0.cpu, m1.workers - m0.workers);
    free(w);
    return 0;
}
