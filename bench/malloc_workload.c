/*
 * malloc_workload.c: a fixed amount of allocator traffic from several threads, for the
 * allocation sampler's overhead (bench/heap.sh).
 *
 * Each of THREADS threads keeps a working set of 4096 blocks and replaces one at a time,
 * chosen by its own xorshift generator, with a block of 16 to 512 bytes (a web server's
 * small strings and objects), OPS times; one block in 64 is realloc'ed instead and one in 128
 * is a calloc. Prints the work phase's wall time as "work_wall_s X", the process CPU time over
 * it as "work_cpu_s X" (recorder threads included), the worker threads' own CPU time as
 * "workers_cpu_s X" (what the interposer costs the threads that allocate), and a checksum so
 * that runs can be seen to do the same work. With "fill", each block is also written whole
 * and read every 64 bytes (a program that uses what it allocates); without, only its first
 * and last bytes are touched (the allocator alone: the worst case for an interposer).
 *
 * Usage: malloc_workload [THREADS=4] [OPS=4000000] [fill]
 *
 * Must never depend on the machine's speed for what it computes.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SET 4096

static long ops_per_thread;
static int fill;

/* One cache line each: the threads write their own results, and two of them sharing a line
 * measured the line bouncing between cores (up to 3x, depending on where the array landed). */
typedef struct worker {
    _Alignas(64) pthread_t t;
    uint64_t seed, sum;
    double cpu; /* the thread's own CPU time */
} worker;

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void *work(void *arg)
{
    worker *w = arg;
    /* glibc gives each thread an arena aligned to 64 MiB: the threads' working sets would sit
     * at the same offsets and fight over the same cache sets, by an amount that anything else
     * in the process (a preloaded library's own allocations) changes. A different offset per
     * thread takes that out of the comparison. */
    void *pad = malloc(64 + (size_t)(w->seed % 61) * 4160);
    unsigned char **set = calloc(SET, sizeof *set);
    uint64_t sum = 0, seed = w->seed; /* in a register, not in the shared array */
    for (long i = 0; i < ops_per_thread; i++) {
        uint64_t r = next(&seed);
        size_t slot = (size_t)(r % SET), size = 16 + (size_t)((r >> 20) % 497);
        unsigned char *p;
        if ((r >> 40) % 64 == 0 && set[slot]) {
            p = realloc(set[slot], size);
        } else {
            free(set[slot]);
            p = (r >> 48) % 128 == 0 ? calloc(1, size) : malloc(size);
        }
        if (!p)
            abort();
        if (fill) {
            /* what a program does with what it allocates: writes it, reads some of it */
            memset(p, (int)(r >> 8), size);
            for (size_t k = 0; k < size; k += 64)
                sum += p[k];
        } else {
            p[0] = (unsigned char)r;
            p[size - 1] = (unsigned char)(r >> 8);
        }
        sum += p[0];
        set[slot] = p;
    }
    for (size_t i = 0; i < SET; i++)
        free(set[i]);
    free(set);
    free(pad);
    w->sum = sum;
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    w->cpu = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return NULL;
}

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    ops_per_thread = argc > 2 ? atol(argv[2]) : 4000000;
    fill = argc > 3 && !strcmp(argv[3], "fill");
    if (n < 1 || n > 256 || ops_per_thread < 1)
        return 2;
    worker *w = aligned_alloc(64, (size_t)n * sizeof *w);
    if (!w)
        return 2;
    memset(w, 0, (size_t)n * sizeof *w);
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++) {
        w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        pthread_create(&w[i].t, NULL, work, &w[i]);
    }
    uint64_t sum = 0;
    double threads_cpu = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].t, NULL);
        sum += w[i].sum;
        threads_cpu += w[i].cpu;
    }
    double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
    printf("work_wall_s %.6f\nwork_cpu_s %.6f\nworkers_cpu_s %.6f\nchecksum %llu\n", t1 - t0,
           c1 - c0, threads_cpu, (unsigned long long)sum);
    free(w);
    return 0;
}
