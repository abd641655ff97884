/*
 * unwind.c: signal-context stack unwinding with libunwind, guarded three ways.
 *
 * 1. libunwind is dlopen'ed with RTLD_LOCAL: linking it would put its _Unwind_* symbols
 *    ahead of libgcc's for libraries loaded later (C++ extensions of a Python program).
 * 2. dl_iterate_phdr is interposed: inside a sampling handler it walks a snapshot of the
 *    module list and of their program headers (two buffers, readers counted, swapped by
 *    normal code) instead of taking the loader lock. While a dlclose runs, handlers record
 *    only the interrupted instruction: the module being unmapped may be in the snapshot.
 * 3. A fault while reading a torn stack is caught by the fatal-signal handler, which jumps
 *    back here (sigsetjmp per unwind), so a bad frame costs the sample, never the program.
 * 4. sigprocmask is interposed: libunwind blocks every signal around its unwind-table search
 *    (two system calls per frame it has not cached; a sample in a large function such as
 *    Python's evaluation loop always has one), which is of no use under 1-3 and cost most of
 *    a sample on a VM. libunwind's calls inside our unwinds do nothing; all others are glibc's.
 * Must never allocate, lock or call the real dl_iterate_phdr from a handler.
 */
#include "unwind.h"

#include "guard.h"
#include "shim.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define CS_MAX_MODULES 2048
#define CS_FAST_MAX    256

typedef int (*init_local2_fn)(unw_cursor_t *, unw_context_t *, int);
typedef int (*backtrace_fn)(void **, int);
typedef int (*step_fn)(unw_cursor_t *);
typedef int (*get_reg_fn)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
typedef int (*caching_fn)(unw_addr_space_t, unw_caching_policy_t);
typedef int (*iterate_fn)(int (*)(struct dl_phdr_info *, size_t, void *), void *);
typedef int (*dlclose_fn)(void *);

static struct {
    init_local2_fn init_local2;
    step_fn step;
    get_reg_fn get_reg;
    backtrace_fn backtrace;
    int ready;
} unw;

static iterate_fn real_iterate;
static dlclose_fn real_dlclose;

#define CS_MAX_PHDRS 16384

typedef struct snapshot {
    struct dl_phdr_info mods[CS_MAX_MODULES];
    /* Copies of the program headers: the originals live in the modules' own memory, which a
     * concurrent dlclose may unmap while a handler walks the list. */
    ElfW(Phdr) phdrs[CS_MAX_PHDRS];
    int n, nphdrs;
    unsigned long long adds, subs;
} snapshot;

static snapshot snaps[2];
static _Atomic int current_snap;
static _Atomic int snap_readers[2];
static _Atomic int dlclose_busy;
static pthread_mutex_t refresh_lock = PTHREAD_MUTEX_INITIALIZER;

static __thread int in_unwind __attribute__((tls_model("initial-exec")));
/* libunwind is dlopen'ed, so its thread-local caches are dynamic TLS: the first touch on a
 * thread goes through __tls_get_addr, which calls malloc. In a handler that interrupted
 * malloc that deadlocks, so every thread is warmed up in normal context first, and a thread
 * that was not (created behind pthread_create's back) gets only its interrupted pc. */
static __thread int warmed __attribute__((tls_model("initial-exec")));
static __thread sigjmp_buf *recover __attribute__((tls_model("initial-exec")));
/* libunwind's fast path keeps a 256 KiB frame cache per thread that uses it, all of it
 * resident: 200 threads would carry 50 MB. So only the first CS_FAST_THREADS live threads
 * (the main thread and early workers, in practice the busy ones) get it; others take the slow
 * path, which costs more CPU per sample and no memory of that size. */
#define CS_FAST_THREADS 16
static _Atomic int fast_threads;
static __thread int fast_granted __attribute__((tls_model("initial-exec")));
/* Which snapshot this thread is reading (index + 1), so a fault inside a callback does not
 * leave the reader count raised for ever. */
static __thread int reading_snap __attribute__((tls_model("initial-exec")));

/* --- the module snapshot ------------------------------------------------------------ */

static int fill_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    snapshot *s = data;
    if (s->n >= CS_MAX_MODULES)
        return 1;
    if (s->nphdrs + info->dlpi_phnum > CS_MAX_PHDRS)
        return 1;
    struct dl_phdr_info *m = &s->mods[s->n++];
    memset(m, 0, sizeof *m);
    memcpy(m, info, size < sizeof *m ? size : sizeof *m);
    memcpy(&s->phdrs[s->nphdrs], info->dlpi_phdr, sizeof(ElfW(Phdr)) * info->dlpi_phnum);
    m->dlpi_phdr = &s->phdrs[s->nphdrs];
    s->nphdrs += info->dlpi_phnum;
    s->adds = info->dlpi_adds;
    s->subs = info->dlpi_subs;
    return 0;
}

static int counters_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    unsigned long long *c = data;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1;
}

static void refresh(int force)
{
    if (!real_iterate)
        return;
    pthread_mutex_lock(&refresh_lock);
    int cur = atomic_load(&current_snap);
    unsigned long long c[2] = {0, 0};
    real_iterate(counters_cb, c);
    if (!force && snaps[cur].n && c[0] == snaps[cur].adds && c[1] == snaps[cur].subs) {
        pthread_mutex_unlock(&refresh_lock);
        return;
    }
    int next = 1 - cur;
    /* A reader of the spare buffer is a handler that started before the last swap; it
     * finishes in microseconds. Give up this refresh rather than wait long. */
    for (int i = 0; atomic_load(&snap_readers[next]) > 0; i++) {
        if (i > 1000) {
            pthread_mutex_unlock(&refresh_lock);
            return;
        }
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    snaps[next].n = 0;
    snaps[next].nphdrs = 0;
    real_iterate(fill_cb, &snaps[next]);
    atomic_store(&current_snap, next);
    pthread_mutex_unlock(&refresh_lock);
}

void cs_unwind_refresh_modules(void)
{
    refresh(0);
}

/* Counts this reader on the current snapshot (re-checked after counting, so a concurrent
 * swap never refills a buffer under it); release with atomic_fetch_sub on snap_readers. */
static int acquire_snapshot(void)
{
    for (;;) {
        int idx = atomic_load(&current_snap);
        atomic_fetch_add(&snap_readers[idx], 1);
        if (atomic_load(&current_snap) == idx)
            return idx;
        atomic_fetch_sub(&snap_readers[idx], 1);
    }
}

CS_PUBLIC int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    if (!in_unwind) {
        if (!real_iterate)
            real_iterate = (iterate_fn)dlsym(RTLD_NEXT, "dl_iterate_phdr");
        return real_iterate ? real_iterate(cb, data) : 0;
    }
    int idx = acquire_snapshot(), ret = 0;
    reading_snap = idx + 1;
    snapshot *s = &snaps[idx];
    for (int i = 0; i < s->n && ret == 0; i++)
        ret = cb(&s->mods[i], sizeof s->mods[i], data);
    reading_snap = 0;
    atomic_fetch_sub(&snap_readers[idx], 1);
    return ret;
}

/* libunwind's own code, where its calls to sigprocmask come from (set once at start). */
static uintptr_t unw_text_lo, unw_text_hi;

static int find_unw_text(struct dl_phdr_info *m, size_t size, void *base)
{
    (void)size;
    if ((void *)m->dlpi_addr != base)
        return 0;
    for (int i = 0; i < m->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &m->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            unw_text_lo = m->dlpi_addr + ph->p_vaddr;
            unw_text_hi = unw_text_lo + ph->p_memsz;
            return 1;
        }
    }
    return 1;
}

/* libunwind masks signals so that a handler on the same thread cannot re-enter its global
 * cache lock or the loader's lock. Neither can happen inside our unwinds: the cache is per
 * thread, dl_iterate_phdr walks our snapshot, and a handler that interrupts an unwind does
 * not unwind (in_unwind). Only libunwind's calls during our unwinds are skipped: a program's
 * signal handler that runs meanwhile on this thread gets the real thing. Elsewhere: exactly
 * glibc's sigprocmask (pthread_sigmask with the error in errno). */
CS_PUBLIC int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    uintptr_t from = (uintptr_t)__builtin_return_address(0);
    if (in_unwind && from >= unw_text_lo && from < unw_text_hi)
        return 0; /* libunwind passes what it gets in OLD back to us, here too */
    int rc = pthread_sigmask(how, set, old);
    if (rc == 0)
        return 0;
    errno = rc;
    return -1;
}

void cs_unwind_each_module(void (*cb)(const struct dl_phdr_info *m, void *ctx), void *ctx)
{
    int idx = acquire_snapshot();
    snapshot *s = &snaps[idx];
    for (int i = 0; i < s->n; i++)
        cb(&s->mods[i], ctx);
    atomic_fetch_sub(&snap_readers[idx], 1);
}

CS_PUBLIC int dlclose(void *handle)
{
    if (!real_dlclose)
        real_dlclose = (dlclose_fn)dlsym(RTLD_NEXT, "dlclose");
    if (!real_dlclose)
        return -1;
    atomic_fetch_add(&dlclose_busy, 1);
    int rc = real_dlclose(handle);
    if (unw.ready)
        refresh(0);
    atomic_fetch_sub(&dlclose_busy, 1);
    return rc;
}

/* --- unwinding ---------------------------------------------------------------------- */

int cs_unwind_init(void)
{
    if (unw.ready)
        return 0;
    real_iterate = (iterate_fn)dlsym(RTLD_NEXT, "dl_iterate_phdr");
    real_dlclose = (dlclose_fn)dlsym(RTLD_NEXT, "dlclose");
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return -1;
    unw.init_local2 = (init_local2_fn)dlsym(h, "_ULx86_64_init_local2");
    unw.step = (step_fn)dlsym(h, "_ULx86_64_step");
    unw.get_reg = (get_reg_fn)dlsym(h, "_ULx86_64_get_reg");
    unw.backtrace = (backtrace_fn)dlsym(h, "unw_backtrace");
    Dl_info di;
    if (unw.step && dladdr((void *)unw.step, &di) && di.dli_fbase && real_iterate)
        real_iterate(find_unw_text, di.dli_fbase);
    caching_fn caching = (caching_fn)dlsym(h, "_ULx86_64_set_caching_policy");
    unw_addr_space_t *as = dlsym(h, "_ULx86_64_local_addr_space");
    if (!unw.init_local2 || !unw.step || !unw.get_reg || !caching || !as || !real_iterate)
        return -1;
    /* Not async-signal-safe itself, so set here; the per-thread cache makes warm unwinds
     * a few microseconds and keeps threads out of each other's way. */
    caching(*as, UNW_CACHE_PER_THREAD);
    refresh(1);
    unw.ready = 1;
    cs_unwind_warm_thread();
    return 0;
}

/* The fast path: unw_backtrace walks from the handler itself, through the signal frame, with
 * libunwind's per-thread trace cache (no unwind-table search, no sigprocmask per frame once
 * warm); the interrupted context starts where the interrupted pc appears. Returns -1 when it
 * does not appear, and the caller takes the slow path from the signal context. */
#define SKIP_MAX 16

static int fast_unwind(ucontext_t *uc, uint64_t *ips, int max)
{
    void *buf[CS_FAST_MAX + SKIP_MAX];
    int want = max + SKIP_MAX < (int)(sizeof buf / sizeof buf[0])
                   ? max + SKIP_MAX
                   : (int)(sizeof buf / sizeof buf[0]);
    int n = unw.backtrace(buf, want);
    uint64_t pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    for (int k = 0; k < n && k < SKIP_MAX; k++) {
        if ((uint64_t)(uintptr_t)buf[k] != pc)
            continue;
        int m = 0;
        for (int i = k; i < n && m < max; i++)
            ips[m++] = (uint64_t)(uintptr_t)buf[i];
        return m;
    }
    return -1;
}

static int do_unwind(ucontext_t *uc, uint64_t *ips, int max, int signal_frame)
{
    unw_cursor_t cursor;
    volatile int n = 0;
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0) != 0) {
        /* A fault while reading the stack: we left the fatal handler by longjmp. */
        cs_guard_unblock_fault_signals();
        if (reading_snap) {
            atomic_fetch_sub(&snap_readers[reading_snap - 1], 1);
            reading_snap = 0;
        }
        recover = NULL;
        in_unwind = 0;
        return n;
    }
    recover = &jb;
    in_unwind = 1;
    if (!uc) { /* from the caller's own frame (normal context): the fast path from here */
        void *buf[CS_FAST_MAX];
        int m = unw.backtrace(buf, max < CS_FAST_MAX ? max : CS_FAST_MAX);
        for (int i = 0; i < m; i++)
            ips[i] = (uint64_t)(uintptr_t)buf[i];
        n = m;
    } else if (signal_frame && unw.backtrace && fast_granted) {
        int m = fast_unwind(uc, ips, max);
        if (m > 0) {
            recover = NULL;
            in_unwind = 0;
            return m;
        }
    }
    if (uc && unw.init_local2(&cursor, (unw_context_t *)uc,
                              signal_frame ? UNW_INIT_SIGNAL_FRAME : 0) == 0) {
        do {
            unw_word_t ip;
            if (unw.get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0)
                break;
            ips[n] = ip;
            n = n + 1;
        } while (n < max && unw.step(&cursor) > 0);
    }
    recover = NULL;
    in_unwind = 0;
    return n;
}

int cs_unwind_signal_context(ucontext_t *uc, uint64_t *ips, int max)
{
    if (in_unwind || max < 1)
        return 0;
    /* While a dlclose runs, the unwind tables of the module being unmapped may vanish under
     * the unwinder: keep only the interrupted instruction, which is always safe to read. */
    if (!unw.ready || !warmed || atomic_load(&dlclose_busy) > 0) {
        ips[0] = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
        return ips[0] ? 1 : 0;
    }
    return do_unwind(uc, ips, max, 1);
}

int cs_unwind_here(uint64_t *ips, int max)
{
    if (in_unwind || max < 1 || !unw.ready || atomic_load(&dlclose_busy) > 0)
        return 0;
    if (!warmed)
        cs_unwind_warm_thread(); /* normal context: its allocations are fine here */
    if (!fast_granted) {
        ucontext_t uc;
        return getcontext(&uc) == 0 ? do_unwind(&uc, ips, max, 0) : 0;
    }
    return do_unwind(NULL, ips, max, 0);
}

void cs_unwind_warm_thread(void)
{
    if (!unw.ready || warmed)
        return;
    ucontext_t uc;
    uint64_t ips[8];
    if (getcontext(&uc) == 0)
        do_unwind(&uc, ips, 8, 0);
    int granted = atomic_load(&fast_threads);
    while (unw.backtrace && granted < CS_FAST_THREADS &&
           !atomic_compare_exchange_weak(&fast_threads, &granted, granted + 1))
        ;
    if (unw.backtrace && granted < CS_FAST_THREADS) {
        /* the fast path's own state (its cache, a pthread key) is made here, not in a
         * handler: pthread_setspecific may allocate */
        void *buf[8];
        in_unwind = 1; /* the module snapshot, not the loader's lock: a fork may be under way */
        unw.backtrace(buf, 8);
        in_unwind = 0;
        fast_granted = 1;
    }
    warmed = 1;
}

void cs_unwind_after_fork_child(void)
{
    atomic_store(&fast_threads, fast_granted ? 1 : 0); /* only the forking thread lives on */
}

void cs_unwind_thread_exit(void)
{
    /* libunwind frees the thread's cache with its key's destructor, after this */
    if (fast_granted) {
        fast_granted = 0;
        atomic_fetch_sub(&fast_threads, 1);
    }
}

void cs_unwind_recover_from_fault(int sig)
{
    (void)sig;
    if (recover)
        siglongjmp(*recover, 1);
}
