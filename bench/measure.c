/*
 * measure.c: runs one command and appends its wall time and CPU time to a file; the
 * overhead benchmark (bench/run.sh) runs every configuration through it.
 *
 * Usage: measure OUTFILE CMD [ARGS...]
 * Appends one line "wall_s user_s sys_s" to OUTFILE and exits with CMD's status.
 *
 * The CPU time comes from wait4() on the child, which covers the child and every
 * descendant it waited for, all threads included. So for `crashscope run -- PROG` it
 * counts the recorder's own threads (wall ticker, writer), its start-up and its final
 * flush, which a clock read inside PROG would miss, and the `crashscope run` wrapper too:
 * the whole price a user pays. /usr/bin/time reports the same rusage, but only to 10 ms,
 * about 0.5% of a benchmark run, too coarse for a 1% budget; this prints microseconds.
 *
 * Must never print on stdout, nor on stderr except to say why it could not measure (both
 * belong to CMD), and must never change what CMD inherits (environment, descriptors,
 * signal dispositions).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: measure OUTFILE CMD [ARGS...]\n", stderr);
        return 2;
    }
    /* Open the output before starting the clock: a failure here should cost no run. */
    FILE *out = fopen(argv[1], "a");
    if (!out) {
        fprintf(stderr, "measure: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "measure: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        fclose(out); /* CMD must not inherit the results file */
        execvp(argv[2], argv + 2);
        fprintf(stderr, "measure: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "measure: wait4: %s\n", strerror(errno));
            return 2;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(out, "%.6f %.6f %.6f\n", wall, tv_seconds(ru.ru_utime), tv_seconds(ru.ru_stime));
    if (fclose(out) != 0) {
        fprintf(stderr, "measure: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}
