/*
 * shim.h: the preloaded library's life cycle, shared by the recorder's parts.
 *
 * Everything the shim exports to the program is marked CS_PUBLIC; all else is hidden, so the
 * program and its other libraries never bind to crashscope's internals.
 */
#ifndef CS_SHIM_H
#define CS_SHIM_H

#include "config.h"

#define CS_PUBLIC __attribute__((visibility("default")))

/* Non-zero once the recorder runs in this process (and not CRASHSCOPE_ENABLED=0).
 * Async-signal-safe. */
int cs_shim_active(void);

/* The configuration read at start (valid when active). */
const cs_config *cs_shim_config(void);

/* Reports, once per distinct message, that part of the recorder gave up, then carries on.
 * Safe from any thread (never from a signal handler). */
void cs_shim_degrade(const char *what);

/* When this process (image) started recording, CLOCK_REALTIME ns: with the pid, the key
 * of its row in the database, used by the writer and the crash record alike. */
#include <stdint.h>
int64_t cs_shim_start_ns(void);

/* What is recorded about this process, prepared at start so that the crash handler can
 * copy it without reading /proc. */
#include <limits.h>
typedef struct cs_process_strings {
    char app[256];
    char exe[PATH_MAX];
    char cmdline[4096];
    char tags[1024];
    char host[256];
    int cpu_hz, wall_hz, window_seconds;
} cs_process_strings;
const cs_process_strings *cs_shim_process(void);

/* The program's name as it will be recorded (app name). */
const char *cs_shim_app_name(void);

#endif
