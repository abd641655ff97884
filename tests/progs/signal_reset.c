/* signal_reset.c: daemon-style start-up that resets every signal to its default and unblocks
 * all of them, then burns CPU for 2 s. Under the recorder this must still exit 0: the
 * recorder's own signals must survive the reset. Also checks that sigaction reports back
 * exactly what the program set, and that sigprocmask (which the recorder interposes for its
 * unwinder) blocks, reports and unblocks as glibc's does, errors included.
 * "signal_reset nested": instead, a handler of the program's that uses sigprocmask interrupts
 * the main thread over and over while it allocates (under a small CRASHSCOPE_HEAP_SAMPLE_BYTES
 * much of its time is inside crashscope's unwinder): every call must take effect. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile double sink;
static volatile sig_atomic_t got_usr1;
static void handler(int s)
{
    (void)s;
}

static void on_usr1(int s)
{
    (void)s;
    got_usr1++;
}

/* 0 when sigprocmask behaves as it should while CPU samples (and unwinds) come in. */
static int check_sigprocmask(void)
{
    signal(SIGUSR1, on_usr1);
    sigset_t usr1, old, now, pending;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    for (int round = 0; round < 2000; round++) {
        if (sigprocmask(SIG_BLOCK, &usr1, &old) != 0 || sigismember(&old, SIGUSR1))
            return fprintf(stderr, "round %d: SIG_BLOCK failed or SIGUSR1 already blocked\n",
                           round),
                   1;
        if (sigprocmask(SIG_BLOCK, NULL, &now) != 0 || !sigismember(&now, SIGUSR1))
            return fprintf(stderr, "round %d: the mask read back lacks SIGUSR1\n", round), 1;
        raise(SIGUSR1);
        if (got_usr1 != round || sigpending(&pending) != 0 || !sigismember(&pending, SIGUSR1))
            return fprintf(stderr, "round %d: a blocked SIGUSR1 was not held pending\n", round), 1;
        if (sigprocmask(SIG_SETMASK, &old, NULL) != 0 || got_usr1 != round + 1)
            return fprintf(stderr, "round %d: unblocking did not deliver SIGUSR1\n", round), 1;
    }
    errno = 0;
    if (sigprocmask(12345, &usr1, NULL) != -1 || errno != EINVAL)
        return fprintf(stderr, "a bad 'how' did not fail with EINVAL (errno %d)\n", errno), 1;
    return 0;
}

static volatile sig_atomic_t nested_bad, nested_seen, nested_done;

static void on_usr1_mask(int sig)
{
    (void)sig;
    sigset_t u2, cur;
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &u2, NULL);
    if (sigprocmask(SIG_BLOCK, NULL, &cur) != 0 || !sigismember(&cur, SIGUSR2))
        nested_bad++;
    sigprocmask(SIG_UNBLOCK, &u2, NULL);
    if (sigprocmask(SIG_BLOCK, NULL, &cur) != 0 || sigismember(&cur, SIGUSR2))
        nested_bad++;
    nested_seen++;
}

static void *pester(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    while (!nested_done) {
        pthread_kill(target, SIGUSR1);
        usleep(20);
    }
    return NULL;
}

__attribute__((noinline)) static void *allocate(size_t n)
{
    return malloc(n);
}

static int nested(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1_mask;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t self = pthread_self(), p;
    pthread_create(&p, NULL, pester, &self);
    struct timespec st, n;
    clock_gettime(CLOCK_MONOTONIC, &st);
    unsigned long i = 0;
    do {
        for (int k = 0; k < 1000; k++, i++) {
            void *b = allocate(64 + i % 512);
            free(b);
        }
        clock_gettime(CLOCK_MONOTONIC, &n);
    } while ((n.tv_sec - st.tv_sec) + (n.tv_nsec - st.tv_nsec) / 1e9 < 2);
    nested_done = 1;
    pthread_join(p, NULL);
    printf("nested: %d handler runs, %d wrong masks, %lu allocations\n", (int)nested_seen,
           (int)nested_bad, i);
    return nested_bad == 0 && nested_seen >= 1000 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "nested"))
        return nested();
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction sa, back;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGSEGV, NULL, &back);
    if (back.sa_handler != handler) {
        fprintf(stderr, "sigaction did not report the program's own SIGSEGV handler\n");
        return 1;
    }
    signal(SIGSEGV, SIG_DFL);
    if (check_sigprocmask() != 0)
        return 1;
    struct timespec st, n;
    clock_gettime(CLOCK_MONOTONIC, &st);
    double x = 0;
    do {
        for (int i = 0; i < 100000; i++)
            x += i;
        clock_gettime(CLOCK_MONOTONIC, &n);
    } while ((n.tv_sec - st.tv_sec) + (n.tv_nsec - st.tv_nsec) / 1e9 < 2);
    sink = x;
    puts("survived");
    return 0;
}
