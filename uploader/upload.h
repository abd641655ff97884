/*
 * upload.h: what crashscope sends to Pyroscope, and when.
 *
 * Profiles are cut in 10-second slices like the Pyroscope SDKs', queued in the database with
 * their encoded body, then sent; what cannot be sent stays queued and is retried with
 * backoff. CLI side only (the crash helper, `crashscope upload`, the continuous uploader):
 * the recorded program never sends anything itself.
 */
#ifndef CS_UPLOAD_H
#define CS_UPLOAD_H

#include "../recorder/config.h"
#include "../storage/storage.h"

#define CS_SLICE_SECONDS 10
/* Pyroscope refuses profiles more than an hour old; this margin keeps clear of the edge. */
#define CS_MAX_AGE_SECONDS (3600 - 300)

typedef struct cs_upload_report {
    int sent, retry, too_old, refused;
    char last_error[256];
} cs_upload_report;

/* Queues crash CRASH_ID: the cpu and wall slices of the FLUSH_SECONDS before it (labels
 * phase=pre_crash, crash_id, crash_signal) and the crash profile (__name__=crash,
 * phase=crash). Returns how many were queued, or -1. */
int cs_upload_queue_crash(cs_db *db, const cs_config *cfg, int64_t crash_id);

/* Continuous mode: queues the closed slices of every process seen lately. */
int cs_upload_queue_slices(cs_db *db, const cs_config *cfg, int64_t now_s);

/* Sends what is due (everything pending when FORCE), until DEADLINE_S (Unix seconds). */
int cs_upload_send_due(cs_db *db, const cs_config *cfg, int force, int64_t deadline_s,
                       cs_upload_report *rep);

#endif
