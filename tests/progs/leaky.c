/* leaky.c: allocates GIB_TOTAL GiB in 64 KiB blocks from leaky_path, never freed, and as much
 * from churn_path, each block freed at once, interleaved; then stays alive for SLEEP_MS so
 * the recorder writes a live-heap snapshot, and exits 0. The blocks are not touched: the
 * profile is about what was allocated, not resident.
 * Usage: leaky [GIB_TOTAL=1] [SLEEP_MS=2500]
 *        leaky fork: leaks 100 MiB from leaky_path, forks; the child frees every block it
 *        inherited and leaks 50 MiB of its own from child_path; both stay 2.5 s, then exit 0. */
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
