/*
 * shim.c: what happens when libcrashscope.so is preloaded: start, fork, exec, exit.
 *
 * The constructor reads the configuration, and unless CRASHSCOPE_ENABLED=0 (then it does
 * nothing at all) starts the writer and the samplers and registers the main thread. fork
 * re-arms everything in the child; exec stops sampling, writes what is in memory and puts
 * the program's signal dispositions back before the new image replaces this one; normal
 * exit writes the last partial second.
 * Must never change what any interposed call returns, and never stop the program: every
 * failure here degrades to recording less.
 */
#include "shim.h"

#include "../crashhandler/crash.h"
#include "../crashhandler/helper.h"
#include "heap.h"
#include "pythreads.h"
#include "ring.h"
#include "sampler.h"
#include "selftime.h"
#include "signals.h"
#include "threads.h"
#include "unwind.h"
#include "writer.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXIT_FLUSH_MS 2000

static cs_config config;
static _Atomic int active;
static pid_t recorder_pid;
static char app_name[256];
static int64_t start_ns;
static cs_process_strings proc;

const cs_process_strings *cs_shim_process(void)
{
    return &proc;
}

static void read_process_strings(void)
{
    snprintf(proc.app, sizeof proc.app, "%s", app_name);
    ssize_t n = readlink("/proc/self/exe", proc.exe, sizeof proc.exe - 1);
    proc.exe[n > 0 ? n : 0] = 0;
    proc.cmdline[0] = 0;
    FILE *f = fopen("/proc/self/cmdline", "re");
    if (f) {
        size_t m = fread(proc.cmdline, 1, sizeof proc.cmdline - 1, f);
        fclose(f);
        for (size_t i = 0; i + 1 < m; i++)
            if (!proc.cmdline[i])
                proc.cmdline[i] = ' ';
        proc.cmdline[m] = 0;
    }
    snprintf(proc.tags, sizeof proc.tags, "%s", config.tags);
    gethostname(proc.host, sizeof proc.host - 1);
    proc.cpu_hz = config.cpu_hz;
    proc.wall_hz = config.wall_hz;
    proc.window_seconds = config.window_seconds;
}

int64_t cs_shim_start_ns(void)
{
    return start_ns;
}

static void set_start_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cs_shim_active(void)
{
    return atomic_load_explicit(&active, memory_order_relaxed);
}

const cs_config *cs_shim_config(void)
{
    return &config;
}

const char *cs_shim_app_name(void)
{
    return app_name;
}

void cs_shim_degrade(const char *what)
{
    /* Once per message: remember the last few message pointers (they are literals). */
    static const char *said[32];
    static _Atomic int nsaid;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    int n = atomic_load(&nsaid);
    for (int i = 0; i < n; i++)
        if (said[i] == what) {
            pthread_mutex_unlock(&mu);
            return;
        }
    if (n < 32) {
        said[n] = what;
        atomic_store(&nsaid, n + 1);
    }
    pthread_mutex_unlock(&mu);
    cs_warn("%s", what);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* For "python3 [opts] script.py" the script's name; for "python3 -m pkg.mod" the module. */
static void derive_app_name(int argc, char **argv)
{
    if (config.app_name[0]) {
        snprintf(app_name, sizeof app_name, "%s", config.app_name);
        return;
    }
    const char *prog = argc > 0 && argv && argv[0] ? base_name(argv[0]) : "";
    if (!*prog) {
        static char exe[256];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        prog = base_name(exe);
    }
    snprintf(app_name, sizeof app_name, "%s", *prog ? prog : "unknown");
    if (strncmp(prog, "python", 6) != 0)
        return;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") && i + 1 < argc) {
            snprintf(app_name, sizeof app_name, "%s", argv[i + 1]);
            return;
        }
        if (!strcmp(a, "-c")) {
            /* "python3-c", the interpreter's name cut to leave room for the suffix */
            size_t n = strnlen(prog, sizeof app_name - sizeof "-c");
            memcpy(app_name, prog, n);
            memcpy(app_name + n, "-c", sizeof "-c");
            return;
        }
        if (!strcmp(a, "-X") || !strcmp(a, "-W") || !strcmp(a, "--check-hash-based-pycs")) {
            i++;
            continue;
        }
        if (a[0] == '-')
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s", base_name(a));
        size_t n = strlen(name);
        if (n > 3 && !strcmp(name + n - 3, ".py"))
            name[n - 3] = 0;
        snprintf(app_name, sizeof app_name, "%s", name);
        return;
    }
}

static void on_fork_prepare(void)
{
    if (cs_shim_active())
        cs_writer_fork_prepare();
}

static void on_fork_parent(void)
{
    if (cs_shim_active())
        cs_writer_fork_parent();
}

static void on_fork_child(void)
{
    if (!cs_shim_active())
        return;
    recorder_pid = getpid();
    set_start_ns();
    cs_selftime_init();
    cs_crash_after_fork_child();
    cs_pythreads_after_fork_child();
    cs_heap_after_fork_child();
    cs_unwind_after_fork_child();
    cs_sampler_after_fork_child();
    /* Last: the new writer thread drains the ring at once if it likes, so the ring (reset
     * above) must be the child's before it exists. The other order lost a worker's whole
     * recording now and then on a loaded machine (the writer drained the parent's ring while
     * this thread replaced it). */
    cs_writer_fork_child();
}

/* The crashscope CLI marks itself so that it never records itself (it runs as the
 * crash helper inside a recorded environment). */
static int is_crashscope_cli(void)
{
    return dlsym(RTLD_DEFAULT, "crashscope_cli_marker") != NULL;
}

__attribute__((constructor)) static void cs_shim_start(int argc, char **argv, char **envp)
{
    (void)envp;
    cs_config_load(&config, 1);
    if (!config.enabled || is_crashscope_cli()) {
        cs_heap_start(0); /* the allocator wrappers stay: make them pass straight through */
        return;
    }
    derive_app_name(argc, argv);
    cs_selftime_init();
    /* Before the interpreter reads its environment (in main): small objects then come from
     * malloc, where the allocation sampler sees them. */
    if (config.python_malloc)
        setenv("PYTHONMALLOC", "malloc", 1);
    recorder_pid = getpid();
    set_start_ns();
    read_process_strings();
    cs_signals_init();
    cs_threads_init();
    if (cs_unwind_init() != 0)
        cs_shim_degrade("libunwind.so.8 could not be loaded; samples carry no stacks");
    cs_crash_install(config.db_path);
    if (config.upload == CS_UPLOAD_CONTINUOUS)
        cs_helper_spawn_uploader();
    atomic_store(&active, 1);
    if (cs_writer_start(&config, app_name) != 0) {
        atomic_store(&active, 0);
        return;
    }
    cs_sampler_start(&config);
    if (config.heap_sample_bytes <= 0)
        cs_heap_start(0); /* off: threads stop checking */
    else if (cs_ring_init() != 0 || cs_heap_start(config.heap_sample_bytes) != 0)
        cs_shim_degrade("cannot map the allocation sampler's tables; no memory profiles");
    cs_thread_register();
    pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

__attribute__((destructor)) static void cs_shim_stop(void)
{
    if (!cs_shim_active() || getpid() != recorder_pid)
        return;
    cs_sampler_pause();
    cs_writer_stop("exit", EXIT_FLUSH_MS);
    atomic_store(&active, 0);
    cs_selftime_report();
}

/* _exit skips destructors, but it is how pre-fork workers and os._exit() end: write the last
 * partial second there too (bounded), unless this is a vfork child sharing our memory. */
typedef void (*exit_fn)(int);

static void before_immediate_exit(void)
{
    if (getpid() == recorder_pid && cs_shim_active()) {
        cs_sampler_pause();
        cs_writer_stop("exit", EXIT_FLUSH_MS);
        atomic_store(&active, 0);
        cs_selftime_report();
    }
}

CS_PUBLIC void _exit(int status)
{
    exit_fn f = (exit_fn)dlsym(RTLD_NEXT, "_exit");
    before_immediate_exit();
    if (f)
        f(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

CS_PUBLIC void _Exit(int status)
{
    _exit(status);
}

/* --- exec ------------------------------------------------------------------------------ */

static int in_recorded_process(void)
{
    /* A vfork child shares our memory but is not us: it must not stop our threads. */
    return cs_shim_active() && getpid() == recorder_pid;
}

static void before_exec(void)
{
    if (!in_recorded_process()) {
        if (cs_shim_active())
            cs_signals_release_all();
        return;
    }
    cs_sampler_pause();
    cs_writer_stop("exec", EXIT_FLUSH_MS);
    /* A sampling signal still pending would survive exec and, with the default action,
     * kill the new program: ignoring the signal discards it. */
    int sig = cs_sampler_signal();
    if (sig > 0) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        cs_signals_release_all();
        struct sigaction prog;
        cs_signals_program_action(sig, &prog);
        int (*real_sa)(int, const struct sigaction *, struct sigaction *) =
            (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT,
                                                                              "sigaction");
        if (real_sa) {
            real_sa(sig, &ign, NULL);
            real_sa(sig, &prog, NULL);
        }
    } else {
        cs_signals_release_all();
    }
}

static void after_failed_exec(void)
{
    int saved = errno;
    cs_signals_reclaim_all();
    if (in_recorded_process()) {
        cs_writer_restart();
        cs_sampler_resume();
    }
    errno = saved;
}

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

CS_PUBLIC int execve(const char *path, char *const argv[], char *const envp[])
{
    execve_fn f = REAL("execve", execve_fn);
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    before_exec();
    int rc = f(path, argv, envp);
    after_failed_exec();
    return rc;
}

CS_PUBLIC int execvpe(const char *file, char *const argv[], char *const envp[])
{
    execvpe_fn f = REAL("execvpe", execvpe_fn);
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    before_exec();
    int rc = f(file, argv, envp);
    after_failed_exec();
    return rc;
}

CS_PUBLIC int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

CS_PUBLIC int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

CS_PUBLIC int fexecve(int fd, char *const argv[], char *const envp[])
{
    fexecve_fn f = REAL("fexecve", fexecve_fn);
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    before_exec();
    int rc = f(fd, argv, envp);
    after_failed_exec();
    return rc;
}

CS_PUBLIC int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                       int flags)
{
    execveat_fn f = REAL("execveat", execveat_fn);
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    before_exec();
    int rc = f(dirfd, path, argv, envp, flags);
    after_failed_exec();
    return rc;
}

/* The execl family: collect the variadic arguments, then go through the wrappers above. */
#define COLLECT_ARGS(arg0, ap, argv, envp_out)                                                     \
    size_t n_ = 1;                                                                                 \
    va_start(ap, arg0);                                                                            \
    while (va_arg(ap, char *))                                                                     \
        n_++;                                                                                      \
    va_end(ap);                                                                                    \
    char **argv = alloca((n_ + 1) * sizeof(char *));                                               \
    va_start(ap, arg0);                                                                            \
    argv[0] = (char *)arg0;                                                                        \
    for (size_t i_ = 1; i_ <= n_; i_++)                                                            \
        argv[i_] = va_arg(ap, char *);                                                             \
    envp_out;                                                                                      \
    va_end(ap)

CS_PUBLIC int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(arg, ap, argv, (void)0);
    return execve(path, argv, environ);
}

CS_PUBLIC int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(arg, ap, argv, (void)0);
    return execvpe(file, argv, environ);
}

CS_PUBLIC int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    char **envp = NULL;
    COLLECT_ARGS(arg, ap, argv, envp = va_arg(ap, char **));
    return execve(path, argv, envp);
}
