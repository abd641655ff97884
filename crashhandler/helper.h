/*
 * helper.h: handing a crash record over to a separate process.
 *
 * Everything the hand-over needs (the helper's path, its argv and envp, the directory for
 * records) is prepared at start, because a dying process may have a corrupt heap: at crash
 * time only async-signal-safe system calls are used.
 */
#ifndef CS_HELPER_H
#define CS_HELPER_H

#include <stddef.h>
#include <stdint.h>

/* Prepares for DB_PATH. Returns 0, or -1 when crash records cannot be written (then the
 * handler still chains and the program dies as it would have). Normal context only. */
int cs_helper_prepare(const char *db_path);

/* Writes into OUT the path of a new crash record of this process. Async-signal-safe. */
int cs_helper_record_path(char *out, size_t len, int pid, int64_t start_ns);

/* Starts `crashscope _ingest` on RECORD detached from this process (double fork, new
 * session: never a child that a waitpid(-1) in the program could reap). Async-signal-safe;
 * returns at once. */
void cs_helper_spawn(const char *record);

/* Continuous uploads: starts `crashscope upload --follow` for this database unless one is
 * already running (it holds <db>.uploader.lock). Normal context; returns at once. */
void cs_helper_spawn_uploader(void);

/* Async-signal-safe formatting helpers shared by the crash handler. */
size_t cs_fmt_u64(char *out, uint64_t v);

#endif
