/*
 * writer.h: the recorder's background thread that turns samples into the window on disk.
 *
 * It drains the sample ring ten times a second, aggregates identical stacks, and once a
 * second symbolizes what is new and writes it in one transaction. Every failure (database
 * locked, disk full, corrupt file) is reported once on stderr and the program runs on.
 */
#ifndef CS_WRITER_H
#define CS_WRITER_H

#include "config.h"
#include "ring.h"

int cs_writer_start(const cs_config *c, const char *app_name);
/* Drains and writes everything still in memory, marks the process ended with REASON
 * ("exit", "exec") and stops the thread; gives up after TIMEOUT_MS. */
void cs_writer_stop(const char *reason, int timeout_ms);
/* After an exec that failed: the process lives on. */
void cs_writer_restart(void);

/* For the crash handler (async-signal-safe). Freeze stops the writer from changing its
 * in-memory samples and from committing them, waiting at most TIMEOUT_MS for a step in
 * progress; returns 0 when frozen, -1 when the writer did not stop in time (then nothing of
 * it may be read). Dump hands every sample held in memory and not yet committed to EMIT. */
#include "python.h"
#include <stdint.h>
typedef void (*cs_writer_emit_fn)(int64_t ts, int32_t tid, int kind, int64_t count,
                                  const char *name, const uint64_t *ips, int n,
                                  const cs_pyframe *py, int npy, const char *labels, void *ctx);
int cs_writer_freeze(int timeout_ms);
void cs_writer_dump(cs_writer_emit_fn emit, void *ctx);
/* The same for samples a flush moved out of the ring and the writer has not drained yet
 * (raw samples, as cs_ring_dump gives them). Async-signal-safe; writer frozen. */
void cs_writer_dump_spilled(void (*emit)(const cs_sample *s, void *ctx), void *ctx);
void cs_writer_thaw(void);

void cs_writer_fork_prepare(void);
void cs_writer_fork_parent(void);
void cs_writer_fork_child(void);

#endif
