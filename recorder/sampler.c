/*
 * sampler.c: the sampling signal handler and the wall-clock ticker.
 *
 * The handler runs on the interrupted thread, on its own stack. It claims a ring slot,
 * unwinds from the signal context and commits; it takes no lock, allocates nothing and
 * preserves errno. A sampling signal that was not sent by crashscope is passed on to the
 * program's own action for that signal.
 * The ticker never signals a thread that has used no CPU since its last stack was taken: a
 * waiting thread's stack cannot have changed, and a signal would cut its wait short. When
 * no thread needs a signal (every one waits, or runs and has CPU samples that show where),
 * it wakes every WALL_STRIDE_MAX ticks and counts the ticks it slept over: a waiting thread's
 * stack is the same for all of them, and a busy thread's wall samples then take its latest
 * cpu stack every ~165 ms instead of every ~10 (spreading them over the cpu stacks in between,
 * tried, cost the writer more in database rows than the ticker saved). On this VM each
 * wake-up costs 40-85 us of kernel time: 0.4-0.8% of a core at 97 Hz, ~0.05% at 6 a second.
 */
#include "sampler.h"

#include "heap.h"
#include "selftime.h"
#include "shim.h"
#include "signals.h"
#include "tags.h"
#include "threads.h"
#include "unwind.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A thread that used less CPU than this since its last sample is treated as waiting: enough
 * for the return from the handler and a restarted sleep, too little to walk into a new wait
 * (a Python thread from its start to time.sleep uses more). */
#define IDLE_CPU_NS 25000ull

/* At most this many ticks between two wake-ups of the ticker (~165 ms at 97 Hz: a wake-up
 * costs 40-80 us of kernel time on a virtual machine, so 12 a second were ~1 ms/s); one as
 * soon as a thread ran a little (neither waiting nor busy), whose stack only a signal can
 * tell. */
#define WALL_STRIDE_MAX 16

static int sample_sig = -1;
static int cpu_hz, wall_hz;
static pid_t my_pid;
static pthread_t ticker;
static _Atomic int ticker_running;
static _Atomic int ticker_stop;
static __thread unsigned interrupts __attribute__((tls_model("initial-exec")));
static _Atomic int crashing;
static cs_thread_stack *_Atomic crash_area;
static _Atomic int crash_area_n;
static _Atomic int crash_area_users; /* handlers between finding the area and leaving it */

int cs_sampler_signal(void)
{
    return sample_sig;
}

int cs_sampler_cpu_hz(void)
{
    return cpu_hz;
}

unsigned cs_sampler_interrupts(void)
{
    return interrupts;
}

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static clockid_t thread_cpu_clock(pid_t tid)
{
    return (clockid_t)((~(unsigned)tid << 3) | 6);
}

static _Atomic int python_on;

int cs_sampler_python_stack(cs_pyframe *py, int max)
{
    if (!atomic_load_explicit(&python_on, memory_order_relaxed))
        return 0;
    int n = cs_python_stack(py, max);
    for (int i = 0; i < n; i++)
        cs_python_remember(&py[i]);
    return n;
}

size_t cs_sampler_stack_room(void)
{
    /* The machine's stack pointer, not a local's address: under AddressSanitizer locals may
     * live on a heap-allocated fake stack. */
    uintptr_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    cs_thread *t = cs_thread_self();
    if (t && t->altstack && sp >= (uintptr_t)t->altstack &&
        sp < (uintptr_t)t->altstack + t->altstack_size)
        return SIZE_MAX; /* ours: sized for this */
    stack_t ss;
    if (syscall(SYS_sigaltstack, NULL, &ss) != 0 || !(ss.ss_flags & SS_ONSTACK))
        return SIZE_MAX; /* a thread stack */
    return sp > (uintptr_t)ss.ss_sp ? sp - (uintptr_t)ss.ss_sp : 0;
}

/* T's entry of the crash collection, filled from CONTEXT by whichever of its handlers comes
 * first (the request's, or its own fault's wait). The users count lets the capture know when
 * no handler can still be writing into an area it is about to unmap. */
static void answer_crash(cs_thread *t, void *context, int fault_signal)
{
    atomic_fetch_add(&crash_area_users, 1);
    cs_thread_stack *area = atomic_load(&crash_area);
    int idx = t ? cs_thread_index(t) : -1;
    int expect = 0;
    if (area && idx >= 0 && idx < atomic_load(&crash_area_n) &&
        atomic_compare_exchange_strong(&area[idx].claimed, &expect, 1)) {
        cs_thread_stack *ts = &area[idx];
        ts->tid = t->tid;
        prctl(PR_GET_NAME, ts->name, 0, 0, 0);
        ts->fault_signal = fault_signal;
        ts->nframes = (uint16_t)cs_unwind_signal_context(context, ts->ips, CS_MAX_FRAMES);
        ts->npy = (uint16_t)cs_sampler_python_stack(ts->py, CS_MAX_PYFRAMES);
        atomic_store_explicit(&ts->done, 1, memory_order_release);
    }
    atomic_fetch_sub(&crash_area_users, 1);
}

void cs_sampler_answer_crash(void *context, int sig)
{
    if (cs_sampler_stack_room() >= CS_HANDLER_ROOM)
        answer_crash(cs_thread_self(), context, sig);
}

int cs_sampler_release_stacks(int timeout_ms)
{
    atomic_store(&crash_area, NULL);
    for (int waited = 0; atomic_load(&crash_area_users) > 0; waited++) {
        if (waited >= timeout_ms)
            return -1;
        struct timespec ms = {0, 1000000};
        syscall(SYS_nanosleep, &ms, NULL);
    }
    return 0;
}

static void on_sample_signal(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    int kind = 0;
    if (si->si_code == SI_TIMER && si->si_value.sival_int == CS_KIND_CPU)
        kind = CS_KIND_CPU;
    else if (si->si_code == SI_QUEUE && si->si_pid == my_pid &&
             (si->si_value.sival_int == CS_KIND_WALL ||
              si->si_value.sival_int == CS_KIND_CRASH_STACK))
        kind = si->si_value.sival_int;
    if (!kind) {
        cs_signals_chain(sig, si, ucv);
        errno = saved_errno;
        return;
    }
    interrupts++;
    cs_thread *t = cs_thread_self();
    if (cs_sampler_stack_room() < CS_HANDLER_ROOM) {
        /* On a small alternate stack of the program's: no sample rather than an overflow. */
        if (kind == CS_KIND_WALL && t)
            atomic_store_explicit(&t->wall_done, atomic_load(&t->wall_sent), memory_order_release);
        errno = saved_errno;
        return;
    }
    if (kind == CS_KIND_CRASH_STACK) {
        /* A thread that faulted too is asked while it waits in the crash handler: where it
         * was is its fault, not the handler's wait this signal interrupted. */
        void *fault = t ? atomic_load(&t->fault_context) : NULL;
        answer_crash(t, fault ? fault : ucv, fault ? atomic_load(&t->fault_signal) : 0);
        errno = saved_errno;
        return;
    }
    if (!t || !cs_shim_active() || atomic_load_explicit(&crashing, memory_order_relaxed)) {
        errno = saved_errno;
        return;
    }
    uint64_t t0 = cs_selftime_begin();
    cs_sample *s = cs_ring_claim();
    if (s) {
        s->time_ns = now_ns(CLOCK_REALTIME);
        s->tid = t->tid;
        s->kind = (uint16_t)kind;
        s->count = kind == CS_KIND_CPU && si->si_overrun > 0 ? 1u + (unsigned)si->si_overrun : 1u;
        if (kind == CS_KIND_WALL) {
            uint32_t wt = atomic_load_explicit(&t->wall_weight, memory_order_relaxed);
            s->count = wt ? wt : 1u;
        }
        if (s->time_ns - t->name_ns >= 1000000000ull) {
            prctl(PR_GET_NAME, t->name, 0, 0, 0); /* a program's prctl(PR_SET_NAME) shows */
            t->name_ns = s->time_ns;
        }
        memcpy(s->thread_name, t->name, sizeof s->thread_name);
        s->thread_name[sizeof s->thread_name - 1] = 0;
        s->nframes = (uint16_t)cs_unwind_signal_context(ucv, s->ips, CS_MAX_FRAMES);
        s->npy = (uint16_t)cs_sampler_python_stack(s->py, CS_MAX_PYFRAMES);
        s->gil = (int16_t)(s->npy ? cs_python_holds_gil() : -1);
        cs_tags_copy(s->tags);
        cs_ring_commit(s);
        if (kind == CS_KIND_WALL && s->nframes)
            atomic_store_explicit(&t->have_wall_stack, 1, memory_order_relaxed);
        if (kind == CS_KIND_CPU && s->nframes)
            atomic_store_explicit(&t->have_cpu_stack, 1, memory_order_relaxed);
    }
    /* Only a wall sample says where the thread may now wait: the ticker reuses the last wall
     * stack while the thread has not run since. After a cpu sample the thread may block
     * somewhere else at once, and that stack would be stale (and the clock read is a system
     * call, ~1.3 us here, on every cpu sample). */
    if (kind == CS_KIND_WALL) {
        atomic_store_explicit(&t->cpu_ns_after_sample, now_ns(CLOCK_THREAD_CPUTIME_ID),
                              memory_order_relaxed);
        atomic_store_explicit(&t->wall_done, atomic_load(&t->wall_sent), memory_order_release);
    }
    cs_selftime_add(CS_ST_HANDLER, t0);
    errno = saved_errno;
}

/* Queues the sampling signal to thread TID with KIND as its value: SI_QUEUE from our own
 * pid is how the handler tells crashscope's requests from anybody else's. */
static int send_request(pid_t tid, int kind)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sample_sig;
    si.si_code = SI_QUEUE;
    si.si_pid = my_pid;
    si.si_uid = getuid();
    si.si_value.sival_int = kind;
    return (int)syscall(SYS_rt_tgsigqueueinfo, my_pid, tid, sample_sig, &si);
}

void cs_sampler_set_crashing(int on)
{
    atomic_store(&crashing, on);
}

int cs_sampler_collect_stacks(cs_thread_stack *area, int n, int timeout_ms)
{
    if (sample_sig <= 0)
        return 0;
    atomic_store(&crash_area_n, n);
    atomic_store(&crash_area, area);
    pid_t me = cs_gettid();
    int hw = cs_thread_high_water();
    int asked = 0;
    for (int i = 0; i < hw && i < n; i++) {
        cs_thread *t = cs_thread_at(i);
        if (atomic_load(&t->state) != CS_SLOT_LIVE || t->tid == me)
            continue;
        area[i].tid = t->tid;
        memcpy(area[i].name, t->name, sizeof area[i].name);
        if (send_request(t->tid, CS_KIND_CRASH_STACK) == 0)
            asked++;
    }
    /* Bounded: a thread that blocks the signal, or is stopped, is reported as such. */
    for (int waited = 0; waited < timeout_ms; waited++) {
        int pending = 0;
        for (int i = 0; i < hw && i < n; i++)
            if (area[i].tid && area[i].tid != me && !atomic_load(&area[i].done))
                pending++;
        if (!pending)
            break;
        struct timespec ms = {0, 1000000};
        syscall(SYS_nanosleep, &ms, NULL);
    }
    return asked;
}

static void push_idle(cs_thread *t, pid_t tid, uint64_t when, int kind, int ticks)
{
    cs_sample *s = cs_ring_claim();
    if (!s)
        return;
    s->time_ns = when;
    s->tid = tid;
    s->kind = (uint16_t)kind;
    s->count = (uint32_t)ticks;
    s->nframes = 0;
    s->npy = 0;
    s->gil = -1;
    s->tags[0] = 0; /* the writer uses the tags of the sample whose stack stands in */
    memcpy(s->thread_name, t->name, sizeof s->thread_name);
    s->thread_name[15] = 0;
    cs_ring_commit(s);
}

/* Samples every live thread for the TICKS wall periods since the last call. Returns the
 * number of threads that had to be signalled (the next call should come after one tick). */
static int wall_tick(int *rr, int ticks)
{
    uint64_t busy_ns = 1000000000ull / (uint64_t)wall_hz * (uint64_t)ticks * 3 / 4;
    int hw = cs_thread_high_water();
    int sent = 0;
    uint64_t when = now_ns(CLOCK_REALTIME);
    for (int k = 0; k < hw; k++) {
        int i = (*rr + k) % hw;
        cs_thread *t = cs_thread_at(i);
        if (atomic_load_explicit(&t->state, memory_order_acquire) != CS_SLOT_LIVE)
            continue;
        pid_t tid = t->tid;
        uint64_t cpu = now_ns(thread_cpu_clock(tid));
        if (cpu == 0)
            continue; /* the thread is gone */
        int have = atomic_load_explicit(&t->have_wall_stack, memory_order_relaxed);
        uint64_t after = atomic_load_explicit(&t->cpu_ns_after_sample, memory_order_relaxed);
        int pending = atomic_load(&t->wall_sent) != atomic_load(&t->wall_done);
        uint64_t ran = t->cpu_ns_at_tick ? cpu - t->cpu_ns_at_tick : 0;
        t->cpu_ns_at_tick = cpu;
        if (have && cpu - after < IDLE_CPU_NS) {
            push_idle(t, tid, when, CS_KIND_WALL_IDLE, ticks);
        } else if (cpu_hz > 0 && ran > busy_ns &&
                   atomic_load_explicit(&t->have_cpu_stack, memory_order_relaxed)) {
            /* On the CPU for most of the last period: its CPU samples already show where. */
            push_idle(t, tid, when, CS_KIND_WALL_BUSY, ticks);
        } else if (!pending && sent < CS_WALL_SIGNALS_PER_TICK) {
            atomic_store_explicit(&t->wall_weight, (uint32_t)ticks, memory_order_relaxed);
            atomic_fetch_add(&t->wall_sent, 1);
            if (send_request(tid, CS_KIND_WALL) != 0)
                atomic_store(&t->wall_done, atomic_load(&t->wall_sent));
            sent++;
        } else if (have) {
            /* over the per-tick bound: its last stack stands in */
            push_idle(t, tid, when, CS_KIND_WALL_IDLE, ticks);
        }
    }
    if (hw > 0)
        *rr = (*rr + 1) % hw;
    return sent;
}

static void *ticker_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "crashscope-wall", 0, 0, 0);
    cs_heap_ignore_thread();
    long period = 1000000000L / wall_hz;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int rr = 0, stride = 1;
    while (!atomic_load(&ticker_stop)) {
        next.tv_nsec += period * stride;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        /* A futex wait rather than a sleep: stopping wakes it at once, so a process that
         * exits or execs right after starting does not wait out a tick to join it. */
        while (!atomic_load(&ticker_stop) &&
               syscall(SYS_futex, &ticker_stop, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &next,
                       NULL, FUTEX_BITSET_MATCH_ANY) != 0 &&
               errno != ETIMEDOUT)
            ;
        if (atomic_load(&ticker_stop))
            break;
        stride = wall_tick(&rr, stride) > 0 ? 1 : WALL_STRIDE_MAX;
        cs_selftime_mark(CS_ST_TICKER);
        /* After a stall (suspended process, overloaded machine) do not fire a burst. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec + 1)
            next = now;
    }
    cs_selftime_thread_done(CS_ST_TICKER);
    return NULL;
}

static void start_ticker(void)
{
    if (wall_hz <= 0 || atomic_load(&ticker_running))
        return;
    atomic_store(&ticker_stop, 0);
    if (cs_spawn_internal(&ticker, ticker_main, NULL) == 0)
        atomic_store(&ticker_running, 1);
    else
        cs_shim_degrade("cannot start the wall-clock sampling thread; no wall profile");
}

static void stop_ticker(void)
{
    if (!atomic_load(&ticker_running))
        return;
    atomic_store(&ticker_stop, 1);
    syscall(SYS_futex, &ticker_stop, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
    pthread_join(ticker, NULL);
    atomic_store(&ticker_running, 0);
}

/* Python is found at start; a Python that cannot be read (3.14, debug or free-threaded builds)
 * gets one line and native-only stacks. */
static void start_python(void)
{
    const char *why = NULL;
    int rc = cs_python_init(&why);
    if (rc == 1)
        atomic_store(&python_on, 1);
    else if (rc < 0)
        cs_warn("Python stacks are off: %s; native stacks only", why ? why : "unsupported");
}

int cs_sampler_start(const cs_config *c)
{
    start_python();
    cpu_hz = c->cpu_hz;
    wall_hz = c->wall_hz;
    my_pid = getpid();
    if (cpu_hz <= 0 && wall_hz <= 0)
        return 0;
    if (cs_ring_init() != 0) {
        cs_shim_degrade("cannot map the sample buffer; sampling is off");
        return -1;
    }
    /* glibc keeps the first real-time signals for itself; programs that use real-time
     * signals mostly take the lowest free ones, so search from the top. */
    for (int s = SIGRTMAX - 2; s > SIGRTMIN + 4; s--) {
        if (cs_signals_is_default(s)) {
            sample_sig = s;
            break;
        }
    }
    if (sample_sig < 0 || cs_signals_claim(sample_sig, on_sample_signal, SA_RESTART) != 0) {
        sample_sig = -1;
        cs_shim_degrade("no free real-time signal for sampling; sampling is off");
        return -1;
    }
    start_ticker();
    return 0;
}

void cs_sampler_pause(void)
{
    stop_ticker();
    cs_threads_disarm_all();
}

void cs_sampler_resume(void)
{
    cs_threads_rearm_all();
    start_ticker();
}

void cs_sampler_after_fork_child(void)
{
    my_pid = getpid();
    atomic_store(&ticker_running, 0); /* the parent's ticker does not exist here */
    cs_ring_reset();
    cs_threads_after_fork_child();
    start_ticker();
}
