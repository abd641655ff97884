/*
 * python_probe.c: a shared object that tests/unit/test_python.sh preloads (LD_PRELOAD) into
 * real CPython interpreters to test recorder/python.c from inside them.
 *
 * Its constructor calls cs_python_init, as the recorder's does, and installs a SIGUSR2
 * handler that captures the Python stack with cs_python_stack, cs_python_holds_gil and
 * cs_python_remember: the code under test runs in a real signal handler, on the main thread or
 * on another one (probe_sample_thread). The test script calls the probe_* functions through
 * ctypes and formats nothing itself: the names come back through cs_python_lookup.
 *
 * python.c is included, not linked, so that probe_check_lines can compare its line-table
 * decoder with the interpreter's own PyCode_Addr2Line. Built without any Python header: one
 * build serves every version. Must never be part of the recorder.
 */
#include "guard.c"
#include "python.c"

#include "catch_faults.h"

#include <signal.h>
#include <stdio.h>
#include <time.h>

#define PROBE_CS_PUBLIC __attribute__((visibility("default")))
#define PROBE_MAX       160

typedef struct capture {
    cs_pyframe frames[PROBE_MAX];
    int n, gil;
} capture;

static capture cap, saved;
static _Atomic int cap_done;
static int init_result;
static const char *init_why = "";
static char mismatch[256];

static void on_probe_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    int e = errno;
    cap.n = cs_python_stack(cap.frames, PROBE_MAX);
    cap.gil = cs_python_holds_gil();
    for (int i = 0; i < cap.n; i++)
        cs_python_remember(&cap.frames[i]);
    atomic_store(&cap_done, 1);
    errno = e;
}

__attribute__((constructor)) static void probe_start(void)
{
    catch_faults();
    init_result = cs_python_init(&init_why);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_probe_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}

/* "gil=G\n" then one line per frame: qualname TAB file TAB line TAB firstline TAB flags. */
static int format_frames(const capture *c, int from, int to, char *out, int n)
{
    int len = snprintf(out, (size_t)n, "gil=%d\n", c->gil);
    for (int i = from; i < to && len >= 0 && len < n; i++) {
        const char *q = "?", *f = "?";
        cs_python_lookup(&c->frames[i], &q, &f);
        len += snprintf(out + len, (size_t)(n - len), "%s\t%s\t%d\t%d\t%u\n", q, f,
                        c->frames[i].line, c->frames[i].firstline, c->frames[i].flags);
    }
    return c->n;
}

/* The init answer and its reason; a second init must give the same. */
PROBE_CS_PUBLIC int probe_status(char *why, int n)
{
    int again = cs_python_try_init();
    snprintf(why, (size_t)n, "%s", init_why);
    return again == init_result ? init_result : -100;
}

PROBE_CS_PUBLIC int probe_version(void)
{
    return cs_python_version();
}

/* Samples the calling thread from its own signal handler. */
PROBE_CS_PUBLIC int probe_sample(char *out, int n)
{
    atomic_store(&cap_done, 0);
    pthread_kill(pthread_self(), SIGUSR2);
    if (!atomic_load(&cap_done))
        return -1;
    return format_frames(&cap, 0, cap.n, out, n);
}

static int signal_and_wait(unsigned long thread)
{
    atomic_store(&cap_done, 0);
    if (pthread_kill((pthread_t)thread, SIGUSR2) != 0)
        return -1;
    for (int i = 0; i < 20000 && !atomic_load(&cap_done); i++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&cap_done) ? 0 : -1;
}

/* Samples another thread (threading.Thread.ident is its pthread_t) from its signal handler. */
PROBE_CS_PUBLIC int probe_sample_thread(unsigned long thread, char *out, int n)
{
    if (signal_and_wait(thread) != 0)
        return -1;
    return format_frames(&cap, 0, cap.n, out, n);
}

/* Signals THREAD COUNT times, waiting for each capture; returns the captures made and the
 * deepest stack seen. For the torn-frame stress test. */
PROBE_CS_PUBLIC int probe_storm(unsigned long thread, int count, int *maxdepth)
{
    int done = 0;
    *maxdepth = 0;
    for (int i = 0; i < count; i++) {
        if (signal_and_wait(thread) != 0)
            break;
        done++;
        if (cap.n > *maxdepth)
            *maxdepth = cap.n;
    }
    return done;
}

PROBE_CS_PUBLIC void probe_save(void)
{
    saved = cap;
}

PROBE_CS_PUBLIC unsigned long long probe_code(int i, int from_saved)
{
    const capture *c = from_saved ? &saved : &cap;
    return i >= 0 && i < c->n ? c->frames[i].code : 0;
}

/* Frame I of the saved capture, named now. */
PROBE_CS_PUBLIC int probe_lookup_saved(int i, char *out, int n)
{
    if (i < 0 || i >= saved.n)
        return -1;
    return format_frames(&saved, i, i + 1, out, n);
}

PROBE_CS_PUBLIC int probe_holds_gil(void)
{
    return cs_python_holds_gil();
}

/* Compares the line of every instruction offset of the code object CODE (NBYTES of bytecode)
 * with the interpreter's PyCode_Addr2Line. The caller holds the GIL (ctypes.PyDLL). Returns
 * the number of mismatches (-1 if it cannot compare); the first one is in probe_mismatch. */
PROBE_CS_PUBLIC int probe_check_lines(unsigned long long code, int nbytes)
{
    static int (*addr2line)(void *, int);
    if (!addr2line)
        addr2line = (int (*)(void *, int))(uintptr_t)dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");
    if (!addr2line || !atomic_load(&ready))
        return -1;
    const py_layout *L = py.L;
    uint8_t cb[CODE_BUF];
    static uint8_t refill[LT_CHUNK];
    if (rd(code, cb, py.code_read) != 0)
        return -1;
    int32_t first = i32at(cb + L->code_firstlineno);
    uint64_t lt = u64at(cb + L->code_linetable);
    int bad = 0;
    for (int off = -2; off < nbytes; off += 2) {
        int32_t mine = line_at(lt, NULL, refill, first, off);
        int theirs = addr2line((void *)(uintptr_t)code, off);
        if (mine != theirs && bad++ == 0)
            snprintf(mismatch, sizeof mismatch, "offset %d: ours %d, PyCode_Addr2Line %d", off,
                     mine, theirs);
    }
    return bad;
}

/* Copies N bytes of CODE's bytecode, read where the layout table says it is (3.11+). */
PROBE_CS_PUBLIC int probe_code_bytes(unsigned long long code, unsigned char *out, int n)
{
    if (!atomic_load(&ready) || py.L->code_adaptive < 0 || n <= 0)
        return -1;
    return rd(code + (uint64_t)py.L->code_adaptive, out, (size_t)n);
}

PROBE_CS_PUBLIC const char *probe_mismatch(void)
{
    return mismatch;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Nanoseconds per cs_python_stack call on the calling thread (WHAT 0), per call plus
 * cs_python_remember of every frame (1, names already cached), or per whole self-signalled
 * sample (2: delivery, handler, remember). *DEPTH is the number of frames. */
PROBE_CS_PUBLIC double probe_bench(int iters, int what, int *depth)
{
    static cs_pyframe fr[PROBE_MAX];
    *depth = cs_python_stack(fr, PROBE_MAX);
    for (int i = 0; i < *depth; i++)
        cs_python_remember(&fr[i]);
    double t0 = now_ns();
    for (int k = 0; k < iters; k++) {
        if (what == 2) {
            pthread_kill(pthread_self(), SIGUSR2);
            continue;
        }
        int n = cs_python_stack(fr, PROBE_MAX);
        if (what == 1)
            for (int i = 0; i < n; i++)
                cs_python_remember(&fr[i]);
    }
    return (now_ns() - t0) / iters;
}

PROBE_CS_PUBLIC unsigned long long probe_names_dropped(void)
{
    return cs_python_names_dropped();
}
