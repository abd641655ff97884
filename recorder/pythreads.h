/*
 * pythreads.h: Python thread names (threading.Thread.name) by kernel thread id.
 */
#ifndef CS_PYTHREADS_H
#define CS_PYTHREADS_H

#include <stddef.h>

/* Normal context (the writer). Asks the interpreter, if there is a supported one, to refresh
 * the names in its main thread soon; does nothing while an earlier request is pending. */
void cs_pythreads_request(void);

/* In a forked child, before anything else asks. */
void cs_pythreads_after_fork_child(void);

/* Async-signal-safe. Copies the Python name of thread TID into OUT (NUL-terminated, cut to
 * CAP - 1 bytes) and returns 1; 0 if Python gave it no name (yet). */
int cs_pythreads_name(int tid, char *out, size_t cap);

#endif
