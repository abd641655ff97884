/*
 * unwind.h: native stacks from a signal context, without the loader lock.
 *
 * libunwind is loaded privately (RTLD_LOCAL) so that its _Unwind_* symbols never replace
 * libgcc's in the program (C++ exceptions keep their own unwinder). While a sampling
 * handler unwinds, libunwind's calls to dl_iterate_phdr are served from a snapshot of the
 * module list instead of the real function, which takes the loader lock: a signal that
 * lands inside dlopen, dlclose or another unwinder therefore cannot deadlock.
 */
#ifndef CS_UNWIND_H
#define CS_UNWIND_H

#include <stdint.h>
#include <ucontext.h>

/* Loads libunwind and takes the first module snapshot. Returns 0 or -1 (no stacks). */
int cs_unwind_init(void);

/* Unwinds from UC (a signal context) into IPS, innermost first. Returns the number of
 * frames (0 if unwinding is unavailable or was refused). Async-signal-safe: no locks, no
 * allocation, and a fault while reading a torn stack ends the unwind, not the program. */
int cs_unwind_signal_context(ucontext_t *uc, uint64_t *ips, int max);

/* Unwinds the calling thread from here, in normal context (no signal frame): for allocation
 * samples. ips[0] is a return address into crashscope's caller chain like every other entry
 * (the writer drops crashscope's own frames). Returns the number of frames, 0 if refused. */
int cs_unwind_here(uint64_t *ips, int max);

/* Prepares libunwind's per-thread state outside any signal handler. */
void cs_unwind_warm_thread(void);
/* In a fork child: only the calling thread's grant survives. */
void cs_unwind_after_fork_child(void);
/* The calling thread ends: gives its fast-path grant back. */
void cs_unwind_thread_exit(void);

/* Refreshes the module snapshot if modules were loaded or unloaded since the last one.
 * Normal context only (takes the loader lock via the real dl_iterate_phdr). */
void cs_unwind_refresh_modules(void);

/* Calls CB for each module of the current snapshot (path, load bias, program headers).
 * Async-signal-safe: for the crash handler's module list. */
struct dl_phdr_info;
void cs_unwind_each_module(void (*cb)(const struct dl_phdr_info *m, void *ctx), void *ctx);

/* Called by the fatal-signal handler: if the fault happened while this thread was
 * unwinding, jumps back into the unwinder (does not return). Otherwise returns. */
void cs_unwind_recover_from_fault(int sig);

#endif
