/*
 * helper.c: prepares and starts the crash helper.
 *
 * The spawn path uses raw system calls only: fork through the syscall (glibc's fork() runs
 * atfork handlers, which take locks), signals unblocked and a new session in the child,
 * then execve of the crashscope binary prepared at start. The intermediate child exits at
 * once and is reaped here, so the helper is nobody's child.
 * Must never allocate, lock or block at crash time, and never fail the crash path: if the
 * helper cannot start, the record stays on disk and the next crashscope command ingests it.
 */
#include "helper.h"

#include "../recorder/config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ENV 512

static char cli_path[PATH_MAX];
static char db_arg[PATH_MAX];
static char crash_dir[PATH_MAX];
static char record_arg[PATH_MAX];
static char *helper_argv[8];
static char *helper_envp[MAX_ENV + 1];
static int prepared;
static _Atomic unsigned seq;

size_t cs_fmt_u64(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return n;
}

/* The crashscope binary: CRASHSCOPE_CLI, else next to libcrashscope.so (the build tree),
 * else ../../bin or ../bin from it (installed under lib/crashscope or lib). */
static int find_cli(void)
{
    const char *env = getenv("CRASHSCOPE_CLI");
    if (env && access(env, X_OK) == 0 && strlen(env) < sizeof cli_path) {
        strcpy(cli_path, env);
        return 0;
    }
    Dl_info info;
    if (!dladdr((void *)find_cli, &info) || !info.dli_fname)
        return -1;
    char dir[PATH_MAX];
    if (!realpath(info.dli_fname, dir))
        return -1;
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = 0;
    static const char *const rel[] = {"/crashscope", "/../../bin/crashscope", "/../bin/crashscope"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s%s", dir, rel[i]) < (int)sizeof p && access(p, X_OK) == 0 &&
            realpath(p, cli_path))
            return 0;
    }
    return -1;
}

int cs_helper_prepare(const char *db_path)
{
    if (!db_path || !*db_path || strlen(db_path) + 10 >= sizeof crash_dir)
        return -1;
    snprintf(crash_dir, sizeof crash_dir, "%s.crashes", db_path);
    snprintf(db_arg, sizeof db_arg, "%s", db_path);
    if (cs_config_make_parent_dirs(crash_dir) != 0 ||
        (mkdir(crash_dir, 0700) != 0 && errno != EEXIST))
        return -1;
    int have_cli = find_cli() == 0;
    /* The helper inherits the settings (database, server) but never the preload. */
    extern char **environ;
    int n = 0;
    for (char **e = environ; e && *e && n < MAX_ENV; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
            helper_envp[n++] = strdup(*e);
    helper_envp[n] = NULL;
    helper_argv[0] = cli_path;
    helper_argv[1] = "_ingest";
    helper_argv[2] = "--db";
    helper_argv[3] = db_arg;
    helper_argv[4] = record_arg;
    helper_argv[5] = NULL;
    prepared = have_cli ? 2 : 1;
    return 0;
}

static char *append(char *p, const char *end, const char *s)
{
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

int cs_helper_record_path(char *out, size_t len, int pid, int64_t start_ns)
{
    if (!prepared || len < 64)
        return -1;
    char num[24];
    char *p = out, *end = out + len - 1;
    p = append(p, end, crash_dir);
    p = append(p, end, "/");
    cs_fmt_u64(num, (uint64_t)pid);
    p = append(p, end, num);
    p = append(p, end, "-");
    cs_fmt_u64(num, (uint64_t)start_ns);
    p = append(p, end, num);
    p = append(p, end, "-");
    cs_fmt_u64(num, atomic_fetch_add(&seq, 1));
    p = append(p, end, num);
    p = append(p, end, ".crash");
    if (p >= end)
        return -1;
    *p = 0;
    return 0;
}

static void spawn(char *const argv[])
{
    long child = syscall(SYS_fork);
    if (child < 0)
        return;
    if (child == 0) {
        long grandchild = syscall(SYS_fork);
        if (grandchild == 0) {
            sigset_t none;
            sigemptyset(&none);
            syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(long));
            syscall(SYS_setsid);
            int devnull = (int)syscall(SYS_open, "/dev/null", O_RDWR);
            if (devnull >= 0) {
                syscall(SYS_dup2, devnull, 0);
                syscall(SYS_dup2, devnull, 1);
            }
            /* The program's sockets and files must not live on in the helper. */
            if (syscall(SYS_close_range, 3, ~0u, 0) != 0)
                for (int fd = 3; fd < 4096; fd++)
                    syscall(SYS_close, fd);
            syscall(SYS_execve, cli_path, argv, helper_envp);
            syscall(SYS_exit_group, 127);
        }
        syscall(SYS_exit_group, 0);
    }
    int status;
    syscall(SYS_wait4, child, &status, 0, NULL);
}

void cs_helper_spawn(const char *record)
{
    if (prepared != 2)
        return;
    size_t n = strlen(record);
    if (n >= sizeof record_arg)
        return;
    memcpy(record_arg, record, n + 1);
    spawn(helper_argv);
}

void cs_helper_spawn_uploader(void)
{
    if (prepared != 2)
        return;
    char lock[PATH_MAX];
    if (snprintf(lock, sizeof lock, "%s.uploader.lock", db_arg) >= (int)sizeof lock)
        return;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int free_lock = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    if (!free_lock)
        return; /* a follower already serves this database */
    static char *argv[] = {cli_path, "upload", "--follow", "--db", db_arg, NULL};
    spawn(argv);
}
