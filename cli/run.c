/*
 * run.c: `crashscope run [options] -- CMD ARGS...`.
 *
 * Preloads the recorder into CMD, says in one line where the data goes, and exits with
 * CMD's own status (128+N when CMD was killed by signal N, as a shell reports it). Like a
 * shell, it ignores the terminal's SIGINT/SIGQUIT (the child gets them from the terminal)
 * and passes on SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2.
 */
#include "cli.h"

#include "../storage/storage.h"
#include "ingest.h"
#include "report.h"
#include "signames.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

/* Finds libcrashscope.so next to this binary, or in ../lib[/crashscope] (installed). */
static int find_library(char *out, size_t len)
{
    const char *env = getenv("CRASHSCOPE_LIBRARY");
    if (env && access(env, R_OK) == 0) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = 0;
    static const char *const rel[] = {"/libcrashscope.so", "/../lib/crashscope/libcrashscope.so",
                                      "/../lib/libcrashscope.so"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s", self, rel[i]);
        if (access(p, R_OK) == 0 && realpath(p, out))
            return 0;
    }
    return -1;
}

/* The program died of a signal: if crashscope captured it, show the report. The crash
 * helper stores it within a few hundred milliseconds; wait at most five seconds. */
static void print_crash(const char *db_path, pid_t pid, int64_t since_ns)
{
    char err[512];
    for (int i = 0; i < 50; i++) {
        if (access(db_path, F_OK) == 0) {
            cs_db *db = cs_db_open(db_path, 1, err, sizeof err);
            int64_t id = db ? cs_db_crash_of_pid(db, (int)pid, since_ns) : 0;
            if (id > 0) {
                fputc('\n', stderr);
                cs_report_print(db, db_path, id, 60, 0, stderr);
                fprintf(stderr,
                        "\n(crashscope inspect --db %s --crash %lld --json for all of "
                        "it)\n",
                        db_path, (long long)id);
            }
            cs_db_close(db);
            if (id > 0)
                return;
        }
        struct timespec t = {0, 100000000};
        nanosleep(&t, NULL);
    }
}

/* A process the program started (a pre-fork server's worker) crashed while it ran: the
 * program may live on, and only the server's log would say so. One line each. */
#define BELOW_MAX 10
static void print_crashes_below(const char *db_path, pid_t pid, int64_t since_ns)
{
    /* A child that crashed just before the end: its helper stores it within ~0.2 s. */
    for (int i = 0; i < 30 && cs_records_in_flight(db_path, (time_t)(since_ns / 1000000000)); i++) {
        struct timespec t = {0, 100000000};
        nanosleep(&t, NULL);
    }
    if (access(db_path, F_OK) != 0)
        return;
    char err[512];
    cs_db *db = cs_db_open(db_path, 1, err, sizeof err);
    if (!db)
        return;
    int64_t ids[BELOW_MAX];
    int n = cs_db_crashes_below(db, (int)pid, since_ns, ids, BELOW_MAX);
    if (n > 0)
        fprintf(stderr, "\ncrashscope: %d crash%s in processes it started, while it ran:\n", n,
                n == 1 ? "" : "es");
    for (int i = 0; i < n && i < BELOW_MAX; i++) {
        cs_crash_row c;
        if (cs_db_crash_get(db, ids[i], &c) != 1)
            continue;
        char when[40], where[1024] = "";
        cs_format_time(c.time_ns, when, sizeof when, 0);
        cs_frame_row *f;
        int nf;
        if (c.stack_id > 0 && cs_db_stack_frames(db, c.stack_id, &f, &nf) == 0) {
            cs_crash_where(f, nf, where, sizeof where);
            cs_frames_free(f, nf);
        }
        fprintf(stderr, "  crash %lld: pid %d %s %s at %s%s%s\n", (long long)c.id, c.pid,
                strcmp(c.kind, "hang") ? "died of" : "was stopped as hung by",
                cs_signal_name(c.signo), when + 11, *where ? ", in " : "", where);
        cs_crash_row_free(&c);
    }
    if (n > 0)
        fprintf(stderr, "  (crashscope inspect --db %s --crash ID for each)\n", db_path);
    cs_db_close(db);
}

static void usage(void)
{
    fputs("usage: crashscope run [--db PATH] [--app-name NAME] [--tags k=v,...]\n"
          "                      [--cpu-hz N] [--wall-hz N] [--window SECONDS] -- CMD [ARGS...]\n",
          stderr);
}

int cs_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},      {"app-name", required_argument, 0, 'a'},
        {"tags", required_argument, 0, 't'},    {"cpu-hz", required_argument, 0, 'c'},
        {"wall-hz", required_argument, 0, 'w'}, {"window", required_argument, 0, 'W'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        const char *var = NULL;
        switch (o) {
        case 'd': var = "CRASHSCOPE_DB"; break;
        case 'a': var = "CRASHSCOPE_APP_NAME"; break;
        case 't': var = "CRASHSCOPE_TAGS"; break;
        case 'c': var = "CRASHSCOPE_CPU_HZ"; break;
        case 'w': var = "CRASHSCOPE_WALL_HZ"; break;
        case 'W': var = "CRASHSCOPE_WINDOW_SECONDS"; break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
        setenv(var, optarg, 1);
    }
    if (optind >= argc) {
        usage();
        return 2;
    }
    char **cmd = argv + optind;

    char lib[PATH_MAX];
    if (find_library(lib, sizeof lib) != 0) {
        cs_cli_error("cannot find libcrashscope.so next to this program "
                     "(set CRASHSCOPE_LIBRARY to its path)");
        return 127;
    }
    /* Read the configuration the way the shim will, so the line below is the truth; the
     * shim itself reports any bad value once, in the child. */
    cs_config c;
    cs_config_load(&c, 0);
    const char *pre = getenv("LD_PRELOAD");
    char *preload = NULL;
    if (asprintf(&preload, "%s%s%s", lib, pre && *pre ? ":" : "", pre && *pre ? pre : "") < 0)
        return 127;
    setenv("LD_PRELOAD", preload, 1);
    free(preload);
    /* The Python module (from crashscope import tag_wrapper) lives beside the library. */
    char pydir[PATH_MAX];
    snprintf(pydir, sizeof pydir, "%s", lib);
    char *slash = strrchr(pydir, '/');
    if (slash && (size_t)(slash - pydir) + 8 < sizeof pydir) {
        strcpy(slash, "/python");
        if (access(pydir, R_OK) == 0) {
            const char *old = getenv("PYTHONPATH");
            char *pp = NULL;
            if (asprintf(&pp, "%s%s%s", pydir, old && *old ? ":" : "", old && *old ? old : "") >=
                0) {
                setenv("PYTHONPATH", pp, 1);
                free(pp);
            }
        }
    }

    if (!c.enabled)
        fprintf(stderr, "crashscope: CRASHSCOPE_ENABLED=0: running %s without recording\n", cmd[0]);
    else
        fprintf(stderr, "crashscope: recording %s into %s (cpu %d Hz, wall %d Hz, window %d s)\n",
                cmd[0], c.db_path[0] ? c.db_path : "(no database: HOME unset)", c.cpu_hz, c.wall_hz,
                c.window_seconds);
    fflush(stderr);

    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward}, old_int,
                     old_quit;
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    struct timespec t0; /* before the fork: whatever the program records starts after it */
    clock_gettime(CLOCK_REALTIME, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        cs_cli_error("fork: %s", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        execvp(cmd[0], cmd);
        int e = errno;
        cs_cli_error("cannot run %s: %s", cmd[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    child_pid = pid;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    sigaction(SIGUSR1, &fwd, NULL);
    sigaction(SIGUSR2, &fwd, NULL);
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            cs_cli_error("waitpid: %s", strerror(errno));
            return 127;
        }
    }
    int64_t since = (int64_t)t0.tv_sec * 1000000000LL + t0.tv_nsec;
    if (WIFSIGNALED(st) && c.enabled && c.db_path[0])
        print_crash(c.db_path, pid, since);
    if (c.enabled && c.db_path[0])
        print_crashes_below(c.db_path, pid, since);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}
