/*
 * selftime.h: what crashscope costs the program it records, measured in place
 * (CRASHSCOPE_SELF_TIME=1): time in the sampling handler and in allocation samples, taken on
 * the program's threads, and the CPU time of the recorder's own threads; said on stderr when
 * the process ends, for the whole run and for its steady part (after the first
 * CS_SELFTIME_WARMUP_S seconds, without start-up costs). Off, each hook is one load and one
 * branch.
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
/* Seconds of the process's life that its steady figures leave out: reading symbol tables,
 * creating the database, the first samples through cold caches, the ring's pages. */
#define CS_SELFTIME_WARMUP_S 3
/* From a recorder thread's loop (WHAT: CS_ST_WRITER or CS_ST_TICKER): once the warm-up is
 * over, notes the counters and this thread's CPU time where the steady part starts. */
void cs_selftime_mark(int what);
/* A recorder thread that stops (before its final flush, a one-time cost): the steady part of
 * WHAT ends here. cs_selftime_thread_done ends it too when nothing did. */
void cs_selftime_end(int what);
/* Says the totals on stderr, once, when on. */
void cs_selftime_report(void);

#endif
