/*
 * selftime.c: crashscope's cost to the recorded program, measured where it is spent, for
 * users who want the figure for their own program and for the benchmarks (whose end-to-end
 * differences cannot resolve 1% on a noisy machine; these counters can).
 *
 * Handler and allocation-sample times are CLOCK_MONOTONIC spans (the vDSO: no system call)
 * taken on the program's threads, so they include what the kernel does meanwhile; the
 * signal's delivery and return are not included (~1-3 us each on a virtual machine). The
 * recorder threads report their own CPU time as they end, and once where the steady part
 * starts (the writer notes the program threads' counters then).
 *
 * Must never: allocate, lock or make a system call in the hooks (they run in signal
 * handlers and in malloc), or print anything unless asked.
 */
#include "selftime.h"

#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Atomic int cs_selftime_on;
static _Atomic uint64_t spent_ns[CS_ST_N], count[CS_ST_N];
static _Atomic int reported;
static uint64_t started_ns;
/* The steady part of each counter: from where it starts (the warm-up over) to where it ends
 * (a recorder thread stopping, before its final flush; else the report), as (time, value)
 * pairs; a time of 0 is "not yet". */
static _Atomic uint64_t mark_at[CS_ST_N], mark_val[CS_ST_N], end_at[CS_ST_N], end_val[CS_ST_N];

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void cs_selftime_init(void)
{
    const char *v = getenv("CRASHSCOPE_SELF_TIME");
    for (int i = 0; i < CS_ST_N; i++) {
        atomic_store(&spent_ns[i], 0);
        atomic_store(&count[i], 0);
        atomic_store(&mark_at[i], 0);
        atomic_store(&end_at[i], 0);
    }
    atomic_store(&reported, 0);
    started_ns = mono_ns();
    atomic_store(&cs_selftime_on, v && !strcmp(v, "1"));
}

uint64_t cs_selftime_begin(void)
{
    return atomic_load_explicit(&cs_selftime_on, memory_order_relaxed) ? mono_ns() : 0;
}

void cs_selftime_add(int what, uint64_t t0)
{
    if (!t0 || what < 0 || what >= CS_ST_N)
        return;
    atomic_fetch_add_explicit(&spent_ns[what], mono_ns() - t0, memory_order_relaxed);
    atomic_fetch_add_explicit(&count[what], 1, memory_order_relaxed);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void cs_selftime_thread_done(int what)
{
    if (!atomic_load_explicit(&cs_selftime_on, memory_order_relaxed))
        return;
    cs_selftime_end(what);
    atomic_fetch_add(&spent_ns[what], thread_cpu_ns());
    atomic_fetch_add(&count[what], 1);
}

void cs_selftime_mark(int what)
{
    if (!atomic_load_explicit(&cs_selftime_on, memory_order_relaxed) || what < 0 ||
        what >= CS_ST_N || atomic_load(&mark_at[what]))
        return;
    uint64_t now = mono_ns();
    if (what == CS_ST_WRITER) {
        if (now - started_ns < CS_SELFTIME_WARMUP_S * 1000000000ull)
            return;
        /* the program threads' counters start with the writer's: they are the writer's to note */
        for (int i = CS_ST_HANDLER; i <= CS_ST_ALLOC; i++) {
            atomic_store(&mark_val[i], atomic_load(&spent_ns[i]));
            atomic_store(&mark_at[i], now);
        }
    } else if (!atomic_load(&mark_at[CS_ST_WRITER])) {
        return; /* the writer says when the warm-up is over */
    }
    atomic_store(&mark_val[what], thread_cpu_ns());
    atomic_store(&mark_at[what], now);
}

void cs_selftime_end(int what)
{
    if (!atomic_load_explicit(&cs_selftime_on, memory_order_relaxed) || what < 0 ||
        what >= CS_ST_N || atomic_load(&end_at[what]))
        return;
    atomic_store(&end_val[what], thread_cpu_ns());
    atomic_store(&end_at[what], mono_ns());
}

void cs_selftime_report(void)
{
    if (!atomic_load(&cs_selftime_on) || atomic_exchange(&reported, 1))
        return;
    double secs = (double)(mono_ns() - started_ns) / 1e9;
    double ms[CS_ST_N], total = 0;
    for (int i = 0; i < CS_ST_N; i++)
        total += ms[i] = (double)atomic_load(&spent_ns[i]) / 1e6;
    unsigned long long hn = atomic_load(&count[CS_ST_HANDLER]),
                       an = atomic_load(&count[CS_ST_ALLOC]);
    fprintf(stderr,
            "crashscope: self time over %.1f s: sampling handler %.1f ms (%llu samples, %.1f us "
            "each), allocation samples %.1f ms (%llu, %.1f us each), writer thread %.1f ms, "
            "wall ticker %.1f ms; in all %.1f ms, %.2f%% of one core\n",
            secs, ms[CS_ST_HANDLER], hn, hn ? ms[CS_ST_HANDLER] * 1e3 / (double)hn : 0.0,
            ms[CS_ST_ALLOC], an, an ? ms[CS_ST_ALLOC] * 1e3 / (double)an : 0.0, ms[CS_ST_WRITER],
            ms[CS_ST_TICKER], total, secs > 0 ? total / 10.0 / secs : 0.0);
    /* The steady part, per second of each counter's own span. A counter that never started one
     * (a ticker that was off, a process shorter than the warm-up) adds nothing. */
    uint64_t now = mono_ns(), w0 = atomic_load(&mark_at[CS_ST_WRITER]);
    if (!w0 || now - w0 < 1000000000ull)
        return;
    double per[CS_ST_N], all = 0;
    for (int i = 0; i < CS_ST_N; i++) {
        uint64_t t0 = atomic_load(&mark_at[i]), v0 = atomic_load(&mark_val[i]);
        uint64_t t1 = atomic_load(&end_at[i]), v1 = atomic_load(&end_val[i]);
        if (i == CS_ST_HANDLER || i == CS_ST_ALLOC) {
            t1 = now;
            v1 = atomic_load(&spent_ns[i]);
        }
        per[i] = t0 && t1 > t0 && v1 > v0 ? (double)(v1 - v0) / 1e6 / ((double)(t1 - t0) / 1e9) : 0;
        all += per[i];
    }
    fprintf(stderr,
            "crashscope: self time after the first %d s (%.1f s): sampling handler %.2f ms/s, "
            "allocation samples %.2f ms/s, writer thread %.2f ms/s, wall ticker %.2f ms/s; in "
            "all %.2f%% of one core\n",
            CS_SELFTIME_WARMUP_S, (double)(now - w0) / 1e9, per[CS_ST_HANDLER], per[CS_ST_ALLOC],
            per[CS_ST_WRITER], per[CS_ST_TICKER], all / 10.0);
}
