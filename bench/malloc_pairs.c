/*
 * malloc_pairs.c: the cost of one malloc + free, single-threaded, in steady state, for
 * bench/heap.sh: N pairs of 256-byte blocks through a 64-block ring, three calls deep (so that
 * a sample has a stack to unwind), after a warm-up of N/10 pairs. Prints "ns_per_pair X".
 * Usage: malloc_pairs [N=50000000] [CPU]
 *
 * With CPU, the pairs run on that core alone (the calling thread only: a recorder's threads,
 * started before main, keep the others): this VM's two cores have run at 2x different speeds
 * for hours, and a run would otherwise land on either.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

__attribute__((noinline)) static void *leaf(size_t n)
{
    return malloc(n);
}

__attribute__((noinline)) static void *middle(size_t n)
{
    return leaf(n);
}

static void *keep[64];

static void pairs(long n)
{
    for (long i = 0; i < n; i++) {
        int k = (int)(i & 63);
        free(keep[k]);
        keep[k] = middle(256);
        if (!keep[k])
            abort();
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000000;
    if (argc > 2) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(atoi(argv[2]), &set);
        (void)sched_setaffinity(0, sizeof set, &set); /* this thread only */
    }
    pairs(n / 10);
    double t0 = now();
    pairs(n);
    printf("ns_per_pair %.3f\n", (now() - t0) / (double)n * 1e9);
    return 0;
}
