/*
 * cpu_workload.c: the CPU-bound program the overhead benchmark (bench/run.sh) runs with
 * and without the recorder.
 *
 * It does a fixed amount of work, identical on every run: UNITS descents through three
 * mutually recursive functions to a depth of 20 to 40 frames, each ending in one of three
 * leaf kernels (integer hashing, floating-point polynomial, pointer chasing through a
 * cache-sized array). The depths and kernels follow a fixed pseudo-random sequence, so
 * the recorder sees many distinct, realistically deep stacks, as in a real program, yet
 * every run executes exactly the same instructions. It prints a checksum (so the work
 * cannot be optimised away, and so runs can be compared), its wall and CPU time, and how
 * that CPU time splits between its own threads and any others in the process (there, the
 * recorder's), for the whole work and for its steady part: everything after the first
 * WARM percent of each thread's share, when a profiler's start-up work (first stacks seen,
 * symbols looked up) is over and only its per-second cost remains.
 *
 * Usage: cpu_workload [-t THREADS] [-n UNITS] [-w WARM]
 *   THREADS (default 1) threads share the UNITS (default 9000000, about 1.8 s of CPU on
 *   the 2-core benchmark machine) equally: the total work is the same whatever the thread
 *   count. WARM defaults to 20.
 *
 * Must never read a clock, sleep or do I/O inside the work loops (clocks are read only
 * at the start, at the end of the warm part and at the end), and must never make the
 * amount of work depend on time: the benchmark compares the time that fixed work takes,
 * so a time-bounded loop would hide exactly the overhead being measured.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_DEPTH   20
#define DEPTH_SPAN  21          /* depths MIN_DEPTH .. MIN_DEPTH + DEPTH_SPAN - 1 */
#define CHASE_WORDS (32768 / 8) /* 32 KiB per thread: stays in L1/L2, so the work is CPU-bound */
#define LEAF_ITERS  96          /* inner-loop length of each leaf kernel */

typedef struct worker {
    uint64_t seed;
    long units;
    uint64_t *chase; /* a random cyclic permutation, for the pointer-chasing kernel */
    uint64_t checksum;
    double cpu_s;        /* this thread's CPU time for its share, its signal handlers included */
    double steady_cpu_s; /* the same, after the warm part */
    pthread_t thread;
} worker;

/* Every worker finishes its warm part at this barrier; the one the barrier picks then
 * reads the process clocks, so the steady part starts at one instant for all threads. */
static pthread_barrier_t warm_done;
static int warm_percent = 20;
static double steady_wall0, steady_cpu0;

/* xorshift64*: cheap, deterministic, and good enough to vary depths and kernels. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* The three leaf kernels stand for the three kinds of hot code a profile usually shows:
 * integer work, floating-point work and memory-latency-bound work. noinline keeps each one
 * a frame of its own, as a real program's leaves are. */
__attribute__((noinline)) static uint64_t kernel_hash(uint64_t v)
{
    for (int i = 0; i < LEAF_ITERS; i++) {
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdull;
        v ^= v >> 29;
        v += (uint64_t)i;
    }
    return v;
}

__attribute__((noinline)) static uint64_t kernel_float(uint64_t v)
{
    double x = (double)(v & 0xffff) / 65536.0, acc = 0.0;
    for (int i = 0; i < LEAF_ITERS / 2; i++)
        acc = acc * x + 1.0 / (1.0 + (double)i * x); /* a division: not vectorisable away */
    return v ^ (uint64_t)(acc * 1e6);
}

__attribute__((noinline)) static uint64_t kernel_chase(const uint64_t *chase, uint64_t v)
{
    uint64_t p = v % CHASE_WORDS;
    for (int i = 0; i < LEAF_ITERS; i++)
        p = chase[p]; /* each load depends on the previous one */
    return v + p;
}

static uint64_t leaf(worker *w, uint64_t v)
{
    switch (v % 3) {
    case 0: return kernel_hash(v);
    case 1: return kernel_float(v);
    default: return kernel_chase(w->chase, v);
    }
}

/* Mutual recursion a -> b -> c -> a ... The result is used after the call returns, so the
 * compiler cannot turn the calls into jumps: every level stays a real frame on the stack. */
static uint64_t descend_b(worker *w, int depth, uint64_t v);
static uint64_t descend_c(worker *w, int depth, uint64_t v);

__attribute__((noinline)) static uint64_t descend_a(worker *w, int depth, uint64_t v)
{
    if (depth == 0)
        return leaf(w, v);
    return descend_b(w, depth - 1, v * 3 + 1) ^ (uint64_t)depth;
}

__attribute__((noinline)) static uint64_t descend_b(worker *w, int depth, uint64_t v)
{
    if (depth == 0)
        return leaf(w, v);
    return descend_c(w, depth - 1, v + 0x9e3779b97f4a7c15ull) + (uint64_t)depth;
}

__attribute__((noinline)) static uint64_t descend_c(worker *w, int depth, uint64_t v)
{
    if (depth == 0)
        return leaf(w, v);
    return descend_a(w, depth - 1, v ^ (v >> 7)) * 5u;
}

static double seconds(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t work(worker *w, uint64_t *s, long units)
{
    uint64_t sum = 0;
    for (long u = 0; u < units; u++) {
        uint64_t r = next_rand(s);
        int depth = MIN_DEPTH + (int)(r % DEPTH_SPAN);
        sum += descend_a(w, depth, r >> 8);
    }
    return sum;
}

__attribute__((noinline)) static void *run_worker(void *arg)
{
    worker *w = arg;
    uint64_t s = w->seed, sum;
    long warm = w->units * warm_percent / 100;
    double cpu0 = seconds(CLOCK_THREAD_CPUTIME_ID);
    sum = work(w, &s, warm);
    if (pthread_barrier_wait(&warm_done) == PTHREAD_BARRIER_SERIAL_THREAD) {
        steady_wall0 = seconds(CLOCK_MONOTONIC);
        steady_cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    }
    double cpu1 = seconds(CLOCK_THREAD_CPUTIME_ID);
    sum += work(w, &s, w->units - warm);
    double cpu2 = seconds(CLOCK_THREAD_CPUTIME_ID);
    w->cpu_s = cpu2 - cpu0;
    w->steady_cpu_s = cpu2 - cpu1;
    w->checksum = sum;
    return NULL;
}

/* Sattolo's shuffle: a single cycle through all CHASE_WORDS slots, so a chase never
 * falls into a short loop that would stay in one cache line. */
static int make_chase(worker *w)
{
    w->chase = malloc(CHASE_WORDS * sizeof *w->chase);
    if (!w->chase)
        return -1;
    for (uint64_t i = 0; i < CHASE_WORDS; i++)
        w->chase[i] = i;
    uint64_t s = w->seed ^ 0xabcdefull;
    for (uint64_t i = CHASE_WORDS - 1; i > 0; i--) {
        uint64_t j = next_rand(&s) % i;
        uint64_t t = w->chase[i];
        w->chase[i] = w->chase[j];
        w->chase[j] = t;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    long units = 9000000;
    int o;
    while ((o = getopt(argc, argv, "t:n:w:")) != -1) {
        switch (o) {
        case 't': nthreads = atoi(optarg); break;
        case 'n': units = atol(optarg); break;
        case 'w': warm_percent = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-t THREADS] [-n UNITS] [-w WARM]\n", argv[0]);
            return 2;
        }
    }
    if (nthreads < 1 || nthreads > 64 || units < 1 || warm_percent < 0 || warm_percent > 90) {
        fprintf(stderr, "%s: THREADS must be 1..64, UNITS positive, WARM 0..90\n", argv[0]);
        return 2;
    }
    if (pthread_barrier_init(&warm_done, NULL, (unsigned)nthreads) != 0) {
        fprintf(stderr, "%s: pthread_barrier_init failed\n", argv[0]);
        return 1;
    }

    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    if (!ws)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        ws[i].seed = 0x853c49e6748fea9bull + (uint64_t)i * 0x9e3779b97f4a7c15ull;
        /* The remainder goes to the first threads, so the total is exactly UNITS. */
        ws[i].units = units / nthreads + (i < units % nthreads ? 1 : 0);
        if (make_chase(&ws[i]) != 0) {
            perror("malloc");
            return 1;
        }
    }

    double wall0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    double main0 = seconds(CLOCK_THREAD_CPUTIME_ID);
    if (nthreads == 1) {
        run_worker(&ws[0]); /* on the main thread: the common single-threaded case */
    } else {
        for (int i = 0; i < nthreads; i++) {
            if (pthread_create(&ws[i].thread, NULL, run_worker, &ws[i]) != 0) {
                fprintf(stderr, "%s: pthread_create failed\n", argv[0]);
                return 1;
            }
        }
        for (int i = 0; i < nthreads; i++)
            pthread_join(ws[i].thread, NULL);
    }
    double wall_end = seconds(CLOCK_MONOTONIC), cpu_end = seconds(CLOCK_PROCESS_CPUTIME_ID);
    /* The process clock covers every thread in the process, the recorder's included, but
     * only during the work: the recorder's start-up and final flush happen outside it.
     * bench/run.sh therefore takes the total CPU time from the parent's wait4(); these
     * figures split it: own = the threads this program runs (with whatever signal handlers
     * ran on them), other = the threads it did not create, i.e. the recorder's. */
    double wall = wall_end - wall0, cpu = cpu_end - cpu0;
    double steady_wall = wall_end - steady_wall0, steady_cpu = cpu_end - steady_cpu0;
    /* With worker threads, the main thread only waits; its little CPU counts as own. */
    double own = nthreads == 1 ? 0.0 : seconds(CLOCK_THREAD_CPUTIME_ID) - main0;
    double steady_own = 0.0;

    uint64_t checksum = 0;
    for (int i = 0; i < nthreads; i++) {
        checksum ^= ws[i].checksum;
        own += ws[i].cpu_s;
        steady_own += ws[i].steady_cpu_s;
        free(ws[i].chase);
    }
    free(ws);
    pthread_barrier_destroy(&warm_done);
    printf("threads=%d units=%ld checksum=%016" PRIx64
           " work_wall_s=%.6f work_cpu_s=%.6f own_cpu_s=%.6f other_cpu_s=%.6f"
           " steady_wall_s=%.6f steady_cpu_s=%.6f steady_own_s=%.6f steady_other_s=%.6f\n",
           nthreads, units, checksum, wall, cpu, own, cpu > own ? cpu - own : 0.0, steady_wall,
           steady_cpu, steady_own, steady_cpu > steady_own ? steady_cpu - steady_own : 0.0);
    return 0;
}
