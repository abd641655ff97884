/* leaky.c: allocates GIB_TOTAL GiB in 64 KiB blocks from leaky_path, never freed, and as much
 * from churn_path, each block freed at once, interleaved; then stays alive for SLEEP_MS so
 * the recorder writes a live-heap snapshot, and exits 0. The blocks are not touched: the
 * profile is about what was allocated, not resident.
 * Usage: leaky [GIB_TOTAL=1] [SLEEP_MS=2500]
 *        leaky fork: leaks 100 MiB from leaky_path, forks; the child frees every block it
 *        inherited and leaks 50 MiB of its own from child_path; both stay 2.5 s, then exit 0.
 *        leaky churn [OPS=300000] [SET=1024]: 4 threads each keep SET blocks of 16-4095 bytes
 *        and replace a random one OPS times from churn_small (small blocks, all freed but the
 *        last set);
 *        prints the allocations made and the bytes still held ("churn ALLOCS LIVE"), stays
 *        2.5 s, exits 0. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (64 * 1024)

static void *volatile keep; /* so the compiler cannot drop the allocations */

__attribute__((noinline)) static void **leaky_path(void **list, size_t i)
{
    list[i] = malloc(BLOCK);
    keep = list[i];
    return list;
}

__attribute__((noinline)) static void churn_path(void)
{
    void *p = malloc(BLOCK);
    keep = p;
    free(p);
}

__attribute__((noinline)) static void *child_path(void)
{
    void *p = malloc(BLOCK);
    keep = p;
    return p;
}

#define CHURN_THREADS 4

typedef struct churner {
    _Alignas(64) pthread_t t;
    long ops, n;
    uint64_t seed;
    size_t live;
    void **set;
    size_t *size;
} churner;

__attribute__((noinline)) static void *churn_small(size_t n)
{
    void *p = malloc(n);
    if (p)
        memset(p, 1, n < 64 ? n : 64);
    return p;
}

static void *churn_thread(void *arg)
{
    churner *c = arg;
    for (long i = 0; i < c->ops + c->n; i++) {
        uint64_t x = c->seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c->seed = x;
        size_t k = i < c->n ? (size_t)i : (size_t)(x % (uint64_t)c->n);
        size_t n = 16 + (size_t)((x >> 24) % 4080);
        free(c->set[k]);
        c->set[k] = churn_small(n);
        if (!c->set[k])
            abort();
        c->size[k] = n;
    }
    for (long k = 0; k < c->n; k++)
        c->live += c->size[k];
    return NULL;
}

static int churn_mode(long ops, long n)
{
    static churner c[CHURN_THREADS];
    if (n < 1)
        return 2;
    for (int i = 0; i < CHURN_THREADS; i++) {
        c[i].ops = ops;
        c[i].n = n;
        c[i].set = calloc((size_t)n, sizeof *c[i].set);
        c[i].size = calloc((size_t)n, sizeof *c[i].size);
        if (!c[i].set || !c[i].size)
            return 2;
        c[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        if (pthread_create(&c[i].t, NULL, churn_thread, &c[i]) != 0)
            return 2;
    }
    size_t live = 0;
    for (int i = 0; i < CHURN_THREADS; i++) {
        pthread_join(c[i].t, NULL);
        live += c[i].live;
    }
    printf("churn %ld %zu\n", (ops + n) * CHURN_THREADS, live);
    fflush(stdout);
    struct timespec ts = {2, 500000000L};
    nanosleep(&ts, NULL);
    return 0;
}

static int fork_mode(void)
{
    static void *parent[1600];
    for (size_t i = 0; i < 1600; i++)
        leaky_path(parent, i);
    pid_t c = fork();
    if (c < 0)
        return 2;
    struct timespec ts = {2, 500000000L};
    if (c == 0) {
        for (size_t i = 0; i < 1600; i++)
            free(parent[i]);
        for (size_t i = 0; i < 800; i++)
            child_path(); /* kept through `keep`: never freed */
        printf("child %d\n", (int)getpid());
        fflush(stdout);
        nanosleep(&ts, NULL);
        _exit(0);
    }
    printf("parent %d\n", (int)getpid());
    fflush(stdout);
    nanosleep(&ts, NULL);
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "fork"))
        return fork_mode();
    if (argc > 1 && !strcmp(argv[1], "churn"))
        return churn_mode(argc > 2 ? atol(argv[2]) : 300000, argc > 3 ? atol(argv[3]) : 1024);
    double gib = argc > 1 ? atof(argv[1]) : 1.0;
    long ms = argc > 2 ? atol(argv[2]) : 2500;
    size_t n = (size_t)(gib * 1024 * 1024 * 1024 / BLOCK);
    void **list = calloc(n, sizeof *list);
    if (!list)
        return 2;
    for (size_t i = 0; i < n; i++) {
        leaky_path(list, i);
        churn_path();
    }
    printf("leaked %zu blocks of %d bytes\n", n, BLOCK);
    fflush(stdout);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}
