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

/* Which column of the stored rows a sample type takes. */
enum { CS_COLUMN_COUNT = 0, CS_COLUMN_VALUE = 1 };
#define CS_MAX_VALUE_TYPES 4

typedef struct cs_value_type {
    const char *type, *unit; /* e.g. "alloc_space", "bytes" */
    int column;              /* CS_COLUMN_* */
} cs_value_type;

/* The general form: the profile of Q's rows with the sample types TYPES, period PERIOD of
 * PERIOD_TYPE/PERIOD_UNIT. */
cs_pprof *cs_profile_build_types(cs_db *db, const cs_query *q, const char *period_type,
                                 const char *period_unit, int64_t period, int64_t from_ns,
                                 int64_t duration_ns, int flavour, const cs_value_type *types,
                                 int ntypes, size_t *nstacks);

/* A type `crashscope export --type` and uploads know: how it is stored and what it holds. */
typedef struct cs_export_type {
    const char *name;   /* alloc_objects, ... */
    const char *stored; /* samples.profile */
    int snapshot;       /* a state at the end of the range, not a sum over it */
    cs_value_type value;
    const char *period_type, *period_unit;
} cs_export_type;

/* The memory and thread types (cpu and wall go through cs_profile_build); NULL if unknown. */
const cs_export_type *cs_export_type_find(const char *name);

/* The one-sample profile of a crash: its faulting stack, sample type crashes/count. */
cs_pprof *cs_profile_crash(cs_db *db, const cs_crash_row *c, const char *signal_name);

#endif
