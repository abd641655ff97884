/*
 * selftime.c: crashscope's cost to the recorded program, measured where it is spent, for
 * users who want the figure for their own program and for the benchmarks (whose end-to-end
 * differences cannot resolve 1% on a noisy machine; these counters can).
 *
 * Handler and allocation-sample times are CLOCK_MONOTONIC spans (the vDSO: no system call)
 * taken on the program's threads, so they include what the kernel does meanwhile; the
 * signal's delivery and return are not included (~1-3 us each on a virtual machine). The
 * recorder threads report their own CPU time as they end.
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

void cs_selftime_thread_done(int what)
{
    if (!atomic_load_explicit(&cs_selftime_on, memory_order_relaxed))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    atomic_fetch_add(&spent_ns[what], (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    atomic_fetch_add(&count[what], 1);
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
}
