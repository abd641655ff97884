/* prefork.c: a pre-fork server pattern: the parent forks three workers, each burning argv[1]
 * seconds (default 3) of its own CPU time in its own function, prints "worker PID FUNCTION"
 * per worker, and waits for them. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile double sink;
static double secs = 3;

static int elapsed(const struct timespec *s)
{
    struct timespec n;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &n);
    return (n.tv_sec - s->tv_sec) + (n.tv_nsec - s->tv_nsec) / 1e9 >= secs;
}

#define WORKER(name)                                                                               \
    __attribute__((noinline)) void name(void)                                                      \
    {                                                                                              \
        struct timespec s;                                                                         \
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &s);                                                \
        double x = 0;                                                                              \
        while (!elapsed(&s))                                                                       \
            for (int i = 0; i < 200000; i++)                                                       \
                x += i;                                                                            \
        sink = x;                                                                                  \
    }
WORKER(worker_alpha)
WORKER(worker_beta)
WORKER(worker_gamma)

int main(int argc, char **argv)
{
    if (argc > 1)
        secs = atof(argv[1]);
    void (*fns[])(void) = {worker_alpha, worker_beta, worker_gamma};
    const char *names[] = {"worker_alpha", "worker_beta", "worker_gamma"};
    for (int i = 0; i < 3; i++) {
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            fns[i]();
            _exit(0);
        }
        printf("worker %d %s\n", (int)p, names[i]);
    }
    fflush(stdout);
    int st, bad = 0;
    while (wait(&st) > 0)
        bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    return bad;
}
