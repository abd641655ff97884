/*
 * threads.c: per-thread registration, CPU-time timers, and the pthread_create interposer.
 *
 * Each registered thread owns a POSIX timer on its own CPU-time clock that delivers the
 * sampling signal to that thread alone (SIGEV_THREAD_ID): per-thread accuracy that a
 * process-wide ITIMER_PROF cannot give. A thread's slot is claimed and released only by
 * the thread itself (or by the forking thread in a child), so the table needs no lock.
 * Must never change what pthread_create returns or how the new thread behaves.
 */
#include "threads.h"

#include "sampler.h"
#include "shim.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static cs_thread table[CS_MAX_THREADS];
static _Atomic int high_water;
static __thread cs_thread *self __attribute__((tls_model("initial-exec")));

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static pthread_create_fn real_pthread_create;

pid_t cs_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

cs_thread *cs_thread_self(void)
{
    return self;
}

int cs_thread_index(const cs_thread *t)
{
    return (int)(t - table);
}

cs_thread *cs_thread_at(int i)
{
    return &table[i];
}

int cs_thread_high_water(void)
{
    return atomic_load_explicit(&high_water, memory_order_acquire);
}

static void arm(cs_thread *t)
{
    int hz = cs_sampler_cpu_hz();
    if (hz <= 0 || cs_sampler_signal() <= 0)
        return;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = cs_sampler_signal();
    sev.sigev_value.sival_int = CS_KIND_CPU;
    sev.sigev_notify_thread_id = t->tid;
    /* The clock of thread T, built from its tid so the timer can be armed for a thread other
     * than the caller (re-arming after a failed exec). */
    clockid_t clk = (clockid_t)((~(unsigned)t->tid << 3) | 6);
    if (t->tid == cs_gettid())
        clk = CLOCK_THREAD_CPUTIME_ID;
    if (timer_create(clk, &sev, &t->cpu_timer) != 0) {
        cs_shim_degrade("cannot create a CPU timer for a thread");
        return;
    }
    long ns = 1000000000L / hz;
    struct itimerspec its = {.it_interval = {ns / 1000000000L, ns % 1000000000L},
                             .it_value = {ns / 1000000000L, ns % 1000000000L}};
    timer_settime(t->cpu_timer, 0, &its, NULL);
    t->has_timer = 1;
}

/* Every thread gets an alternate signal stack unless it has one: without it a stack
 * overflow cannot be handled at all, and the sampling handler would run on a thread stack
 * that may be small. One guard page below it turns an overflow of the handler itself into a
 * clean fault. */
#define ALTSTACK_SIZE (128 * 1024)

/* The real sigaltstack: the interposer below is for the program. */
static int kernel_sigaltstack(const stack_t *ss, stack_t *old)
{
    return (int)syscall(SYS_sigaltstack, ss, old);
}

static void give_altstack(cs_thread *t)
{
    stack_t old;
    t->altstack = NULL;
    memset(&t->program_ss, 0, sizeof t->program_ss);
    t->program_ss.ss_flags = SS_DISABLE;
    if (kernel_sigaltstack(NULL, &old) != 0 || (old.ss_flags & SS_ONSTACK))
        return;
    /* A stack the thread already has (Rust and the sanitizers give every thread one) stays
     * if it is as big as ours; a smaller one becomes the program's view, as if it had been
     * set through the interposer below. */
    if (!(old.ss_flags & SS_DISABLE)) {
        if (old.ss_size >= ALTSTACK_SIZE)
            return;
        t->program_ss = old;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t total = ALTSTACK_SIZE + page;
    void *p =
        mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return;
    mprotect(p, page, PROT_NONE);
    stack_t ss = {.ss_sp = (char *)p + page, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (kernel_sigaltstack(&ss, NULL) != 0) {
        munmap(p, total);
        return;
    }
    t->altstack = p;
    t->altstack_size = total;
}

static void take_altstack(cs_thread *t)
{
    if (!t->altstack)
        return;
    stack_t cur;
    /* Only if it is still ours (the program may have installed its own since). */
    if (sigaltstack(NULL, &cur) == 0 &&
        cur.ss_sp == (char *)t->altstack + t->altstack_size - ALTSTACK_SIZE) {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
        munmap(t->altstack, t->altstack_size);
    }
    t->altstack = NULL;
}

static void disarm(cs_thread *t)
{
    if (t->has_timer) {
        t->has_timer = 0;
        timer_delete(t->cpu_timer);
    }
}

static _Atomic uint64_t threads_created, threads_exited;

void cs_threads_counts(uint64_t *created, uint64_t *exited)
{
    *created = atomic_load_explicit(&threads_created, memory_order_relaxed);
    *exited = atomic_load_explicit(&threads_exited, memory_order_relaxed);
}

cs_thread *cs_thread_register(void)
{
    if (self)
        return self;
    for (int i = 0; i < CS_MAX_THREADS; i++) {
        int expect = CS_SLOT_FREE;
        if (!atomic_compare_exchange_strong(&table[i].state, &expect, CS_SLOT_BUSY))
            continue;
        cs_thread *t = &table[i];
        t->tid = cs_gettid();
        t->has_timer = 0;
        atomic_store(&t->cpu_ns_after_sample, 0);
        atomic_store(&t->wall_sent, 0);
        atomic_store(&t->wall_done, 0);
        atomic_store(&t->have_wall_stack, 0);
        atomic_store(&t->have_cpu_stack, 0);
        t->cpu_ns_at_tick = 0;
        t->pthread = pthread_self();
        prctl(PR_GET_NAME, t->name, 0, 0, 0);
        t->name_ns = 0;
        atomic_store(&t->fault_context, NULL);
        atomic_fetch_add_explicit(&threads_created, 1, memory_order_relaxed);
        int hw = atomic_load(&high_water);
        while (hw < i + 1 && !atomic_compare_exchange_weak(&high_water, &hw, i + 1))
            ;
        self = t;
        give_altstack(t);
        atomic_store_explicit(&t->state, CS_SLOT_LIVE, memory_order_release);
        cs_unwind_warm_thread();
        arm(t);
        return t;
    }
    cs_shim_degrade("more than 4096 live threads; new threads are not sampled");
    return NULL;
}

void cs_thread_unregister(void)
{
    cs_thread *t = self;
    if (!t)
        return;
    /* Mark the slot busy first so the ticker stops signalling this thread, then delete the
     * timer; a signal already queued is harmless because the handler checks `self`. */
    atomic_store_explicit(&t->state, CS_SLOT_BUSY, memory_order_release);
    atomic_fetch_add_explicit(&threads_exited, 1, memory_order_relaxed);
    disarm(t);
    cs_unwind_thread_exit();
    take_altstack(t);
    self = NULL;
    atomic_store_explicit(&t->state, CS_SLOT_FREE, memory_order_release);
}

void cs_threads_after_fork_child(void)
{
    cs_thread *me = self;
    /* Only slots that were ever used, and only written when they must change: every write
     * here is a copy-on-write page fault, paid by each fork. */
    int hw = cs_thread_high_water();
    for (int i = 0; i < hw && i < CS_MAX_THREADS; i++) {
        if (&table[i] == me)
            continue;
        if (table[i].has_timer)
            table[i].has_timer = 0; /* timers were not inherited; never delete the parent's ids */
        if (atomic_load(&table[i].state) != CS_SLOT_FREE)
            atomic_store(&table[i].state, CS_SLOT_FREE);
    }
    if (me) {
        me->has_timer = 0;
        me->tid = cs_gettid();
        atomic_store(&me->cpu_ns_after_sample, 0);
        atomic_store(&me->wall_sent, 0);
        atomic_store(&me->wall_done, 0);
        atomic_store(&me->have_wall_stack, 0);
        atomic_store(&me->have_cpu_stack, 0);
        me->cpu_ns_at_tick = 0;
        arm(me);
    }
}

void cs_threads_disarm_all(void)
{
    int hw = cs_thread_high_water();
    for (int i = 0; i < hw; i++)
        if (atomic_load(&table[i].state) == CS_SLOT_LIVE)
            disarm(&table[i]);
}

void cs_threads_rearm_all(void)
{
    int hw = cs_thread_high_water();
    for (int i = 0; i < hw; i++)
        if (atomic_load(&table[i].state) == CS_SLOT_LIVE && !table[i].has_timer)
            arm(&table[i]);
}

/* --- the sigaltstack interposer ----------------------------------------------------------
 *
 * A thread keeps crashscope's 128 KiB alternate stack even when the program asks for a
 * smaller one of its own (Python's faulthandler allocates 16 KiB): crashscope's handlers run
 * first on that stack and need the room, and the program's handlers, chained from them, run
 * there too, so the program still gets what it wanted (its handlers survive a stack
 * overflow). The program sees exactly the stack it set. A bigger stack is installed as asked,
 * and then crashscope's is released. */
CS_PUBLIC int sigaltstack(const stack_t *ss, stack_t *old)
{
    cs_thread *t = self;
    if (!cs_shim_active() || !t || !t->altstack)
        return kernel_sigaltstack(ss, old);
    stack_t cur;
    if (kernel_sigaltstack(NULL, &cur) != 0 ||
        cur.ss_sp != (char *)t->altstack + t->altstack_size - ALTSTACK_SIZE)
        return kernel_sigaltstack(ss, old); /* ours is not installed any more */
    stack_t prev = t->program_ss;
    prev.ss_flags = (prev.ss_flags & SS_DISABLE) | (cur.ss_flags & SS_ONSTACK);
    if (ss) {
        if (cur.ss_flags & SS_ONSTACK) {
            errno = EPERM; /* as the kernel says while a handler runs on it */
            return -1;
        }
        if (!(ss->ss_flags & SS_DISABLE)) {
            if (ss->ss_size < (size_t)MINSIGSTKSZ) {
                errno = ENOMEM;
                return -1;
            }
            if (ss->ss_size > ALTSTACK_SIZE) {
                if (kernel_sigaltstack(ss, NULL) != 0)
                    return -1;
                munmap(t->altstack, t->altstack_size);
                t->altstack = NULL;
                if (old)
                    *old = prev;
                return 0;
            }
        }
        t->program_ss = *ss;
    }
    if (old)
        *old = prev;
    return 0;
}

/* --- the pthread_create interposer ------------------------------------------------- */

typedef struct start_arg {
    void *(*fn)(void *);
    void *arg;
} start_arg;

static void unregister_cleanup(void *unused)
{
    (void)unused;
    cs_thread_unregister();
}

static void *thread_start(void *p)
{
    start_arg a = *(start_arg *)p;
    free(p);
    if (cs_shim_active())
        cs_thread_register();
    void *ret;
    pthread_cleanup_push(unregister_cleanup, NULL);
    ret = a.fn(a.arg);
    pthread_cleanup_pop(1);
    return ret;
}

void cs_threads_init(void)
{
    if (!real_pthread_create)
        real_pthread_create = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
}

CS_PUBLIC int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                             void *(*start_routine)(void *), void *arg)
{
    if (!real_pthread_create)
        cs_threads_init();
    if (!real_pthread_create)
        return EAGAIN;
    if (!cs_shim_active())
        return real_pthread_create(thread, attr, start_routine, arg);
    start_arg *a = malloc(sizeof *a);
    if (!a) /* no memory for our wrapper: the thread still starts, unsampled */
        return real_pthread_create(thread, attr, start_routine, arg);
    a->fn = start_routine;
    a->arg = arg;
    int rc = real_pthread_create(thread, attr, thread_start, a);
    if (rc != 0)
        free(a);
    return rc;
}

/* Names given through pthread_setname_np reach the thread table at once (the thread profile
 * names every thread each second, also those that never ran since). */
typedef int (*setname_fn)(pthread_t, const char *);

CS_PUBLIC int pthread_setname_np(pthread_t thread, const char *name)
{
    static setname_fn real_setname;
    if (!real_setname)
        real_setname = (setname_fn)dlsym(RTLD_NEXT, "pthread_setname_np");
    if (!real_setname)
        return ENOSYS;
    int rc = real_setname(thread, name);
    if (rc == 0) {
        int hw = cs_thread_high_water();
        for (int i = 0; i < hw; i++) {
            cs_thread *t = &table[i];
            if (atomic_load(&t->state) == CS_SLOT_LIVE && pthread_equal(t->pthread, thread)) {
                size_t n = strnlen(name, sizeof t->name - 1);
                memcpy(t->name, name, n);
                t->name[n] = 0;
                break;
            }
        }
    }
    return rc;
}

int cs_spawn_internal(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (!real_pthread_create)
        cs_threads_init();
    if (!real_pthread_create)
        return -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = real_pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
