/* signal_reset.c: daemon-style start-up that resets every signal to its default and unblocks
 * all of them, then burns CPU for 2 s. Under the recorder this must still exit 0: the
 * recorder's own signals must survive the reset. Also checks that sigaction reports back
 * exactly what the program set. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile double sink;
static void handler(int s)
{
    (void)s;
}

int main(void)
{
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
