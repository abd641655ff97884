/* execer.c: burns 1.5 s of its own CPU time in before_exec_work, then execs argv[1..] (the exec
 * path must write what was recorded before the image is replaced: about 150 samples at
 * 100 Hz, of which up to a second's worth would be lost without it). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile double sink;

__attribute__((noinline)) void before_exec_work(void)
{
    struct timespec s, n;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &s);
    double x = 0;
    do {
        for (int i = 0; i < 100000; i++)
            x += i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &n);
    } while ((n.tv_sec - s.tv_sec) + (n.tv_nsec - s.tv_nsec) / 1e9 < 1.5);
    sink = x;
}

int main(int argc, char **argv)
{
    before_exec_work();
    if (argc > 1) {
        execvp(argv[1], argv + 1);
        perror("execvp");
        return 127;
    }
    return 0;
}
