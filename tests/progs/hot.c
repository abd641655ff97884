/* hot.c: burns N seconds of its own CPU time (argv[1], default 5), almost all of it in
 * hot_function. CPU time, not wall time, so that the number of CPU samples expected does not
 * depend on how busy the machine is (argv[2] "wall": N seconds of wall-clock time instead, for
 * tests that need a bounded duration). argv[3], if given, is a name the thread gives itself
 * with prctl(PR_SET_NAME) half way through (not through pthread_setname_np, which the recorder
 * sees at once). Exits with status 3 so tests can check that the status passes through. */
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static volatile double sink;

__attribute__((noinline)) void hot_function(void)
{
    double x = 0;
    for (int i = 0; i < 2000000; i++)
        x += i * 0.5;
    sink = x;
}

__attribute__((noinline)) void cold_function(void)
{
    double x = 0;
    for (int i = 0; i < 20000; i++)
        x += i * 0.5;
    sink = x;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 5;
    struct timespec s, n;
    clockid_t clk =
        argc > 2 && !strcmp(argv[2], "wall") ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
    const char *rename = argc > 3 ? argv[3] : NULL;
    double t;
    clock_gettime(clk, &s);
    do {
        hot_function();
        cold_function();
        clock_gettime(clk, &n);
        t = (n.tv_sec - s.tv_sec) + (n.tv_nsec - s.tv_nsec) / 1e9;
        if (rename && t >= secs / 2) {
            prctl(PR_SET_NAME, rename, 0, 0, 0);
            rename = NULL;
        }
    } while (t < secs);
    return 3;
}
