/*
 * profile.h: a pprof profile of what the window holds, for `crashscope export` and for
 * uploads to Pyroscope.
 */
#ifndef CS_PROFILE_H
#define CS_PROFILE_H

#include "../storage/storage.h"
#include "pprof.h"

enum cs_profile_flavour {
    /* for people and go tool pprof: samples/count and <type>/nanoseconds, pid labels */
    CS_PROFILE_EXPORT = 0,
    /* what the Pyroscope SDKs send: one sample type, <type>/nanoseconds, string labels */
    CS_PROFILE_UPLOAD = 1,
};

/* The name a person reads for a frame: the function, else module+offset, else the address. */
const char *cs_frame_name(const cs_frame_row *f, char *buf, size_t len);

/* Builds the profile of the samples Q selects ("cpu" or "wall"), sampled at HZ, covering
 * [FROM_NS, FROM_NS + DURATION_NS). *NSTACKS counts the stacks added. NULL on error (with a
 * reason in DB's error) or out of memory. */
cs_pprof *cs_profile_build(cs_db *db, const cs_query *q, int hz, int64_t from_ns,
                           int64_t duration_ns, int flavour, size_t *nstacks);

/* The one-sample profile of a crash: its faulting stack, sample type crashes/count. */
cs_pprof *cs_profile_crash(cs_db *db, const cs_crash_row *c, const char *signal_name);

#endif
