/*
 * selftime.h: what crashscope costs the program it records, measured in place
 * (CRASHSCOPE_SELF_TIME=1): time in the sampling handler and in allocation samples, taken on
 * the program's threads, and the CPU time of the recorder's own threads; said on stderr when
 * the process ends. Off, each hook is one load and one branch.
 */
#ifndef CS_SELFTIME_H
#define CS_SELFTIME_H

#include <stdatomic.h>
#include <stdint.h>

enum { CS_ST_HANDLER, CS_ST_ALLOC, CS_ST_WRITER, CS_ST_TICKER, CS_ST_N };

extern _Atomic int cs_selftime_on;

/* Reads CRASHSCOPE_SELF_TIME; at start, and again in a fork child (which starts at zero). */
void cs_selftime_init(void);
/* A start time for cs_selftime_add, or 0 when off. Async-signal-safe. */
uint64_t cs_selftime_begin(void);
/* Adds the time since T0 (from cs_selftime_begin; nothing when 0) to WHAT. Async-signal-safe. */
void cs_selftime_add(int what, uint64_t t0);
/* A recorder thread, as it ends: adds its own CPU time to WHAT. */
void cs_selftime_thread_done(int what);
/* Says the totals on stderr, once, when on. */
void cs_selftime_report(void);

#endif
