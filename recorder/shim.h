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

/* The program's name as it will be recorded (app name). */
const char *cs_shim_app_name(void);

#endif
