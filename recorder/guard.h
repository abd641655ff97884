/*
 * guard.h: reads of memory that may be unmapped, from signal handlers, without system calls.
 *
 * A copy runs under a per-thread recovery point; a SIGSEGV or SIGBUS it raises reaches the
 * fatal-signal handler, which calls cs_guard_recover() first and so jumps back into the copy,
 * which then fails. Whoever installs the SIGSEGV/SIGBUS handlers must call cs_guard_recover()
 * before anything else, or a bad address kills the program.
 */
#ifndef CS_GUARD_H
#define CS_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* Copies N bytes at address SRC into DST: 0, or -1 if some of it could not be read (DST then
 * holds a part of it). Async-signal-safe; never changes errno or the signal mask on success. */
int cs_guard_copy(void *dst, uint64_t src, size_t n);

/* Stores V at address DST (4 bytes, aligned) as a relaxed atomic: 0, or -1 if it faulted. */
int cs_guard_store32(uint64_t dst, int32_t v);

/* After leaving the fatal-signal handler by a jump: SIGSEGV and SIGBUS are blocked still. */
void cs_guard_unblock_fault_signals(void);

/* From a SIGSEGV/SIGBUS handler: if the fault came from a cs_guard_copy on this thread, jumps
 * back into it (does not return). Otherwise returns at once. */
void cs_guard_recover(int sig);

#endif
