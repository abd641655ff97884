/*
 * timeline.c: the per-second process timeline (RSS, CPU, threads, descriptors, faults,
 * context switches, live sampled heap), written by the recorder's writer with each flush and
 * read by `crashscope inspect`.
 *
 * Counters are stored as the process reported them (cumulative since its start); readers
 * take differences. A second written twice (the final flush) keeps the later row. Nothing
 * here may keep a statement active between calls.
 */
#include "db_internal.h"

#include <stdlib.h>
#include <string.h>

int cs_db_timeline_add(cs_db *db, int64_t process_id, int64_t ts, const cs_timeline_row *r)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_TIMELINE_ADD);
    if (!st)
        return -1;
    const int64_t v[] = {process_id,         ts,
                         r->rss_kb,          r->peak_rss_kb,
                         r->cpu_user_ms,     r->cpu_system_ms,
                         r->threads,         r->fds,
                         r->minor_faults,    r->major_faults,
                         r->voluntary_cs,    r->involuntary_cs,
                         r->threads_created, r->threads_exited,
                         r->heap_live_bytes};
    for (int i = 0; i < (int)(sizeof v / sizeof v[0]); i++)
        sqlite3_bind_int64(st, i + 1, v[i]);
    return cs_db_run(db, st, "timeline");
}

int cs_db_timeline(cs_db *db, int64_t process_id, int64_t from, int64_t until,
                   cs_timeline_row **out, int *n)
{
    static const char sql[] =
        "SELECT ts, rss_kb, peak_rss_kb, cpu_user_ms, cpu_system_ms, threads, fds, minor_faults,"
        " major_faults, voluntary_cs, involuntary_cs, threads_created, threads_exited,"
        " heap_live_bytes FROM timeline WHERE process_id = ? AND ts >= ? AND ts <= ?"
        " ORDER BY ts";
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "query timeline");
        return -1;
    }
    sqlite3_bind_int64(st, 1, process_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, until);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            cs_timeline_row *m = realloc(*out, sizeof *m * (size_t)cap);
            if (!m) {
                rc = SQLITE_NOMEM;
                break;
            }
            *out = m;
        }
        cs_timeline_row *r = &(*out)[(*n)++];
        int64_t *f[] = {&r->ts,
                        &r->rss_kb,
                        &r->peak_rss_kb,
                        &r->cpu_user_ms,
                        &r->cpu_system_ms,
                        &r->threads,
                        &r->fds,
                        &r->minor_faults,
                        &r->major_faults,
                        &r->voluntary_cs,
                        &r->involuntary_cs,
                        &r->threads_created,
                        &r->threads_exited,
                        &r->heap_live_bytes};
        for (int i = 0; i < (int)(sizeof f / sizeof f[0]); i++)
            *f[i] = sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cs_db_set_error(db, "query timeline");
        free(*out);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}
