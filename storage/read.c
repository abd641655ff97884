/*
 * read.c: the read path, for `crashscope export` and `crashscope inspect`.
 *
 * Read-only queries over the window; results are handed out row by row through callbacks
 * or as malloc'd arrays the caller frees. Never writes, so it may run while recorded
 * processes write the same file.
 */
#include "db_internal.h"

#include <stdlib.h>
#include <string.h>

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t && *t ? strdup((const char *)t) : NULL;
}

int cs_db_profile_rows(cs_db *db, const cs_query *q,
                       int (*cb)(const cs_profile_row *row, void *arg), void *arg)
{
    static const char sql[] =
        "SELECT stack_id, pid, tid, thread_name, SUM(count), SUM(value), labels FROM samples"
        " WHERE profile = ?1 AND (?2 = 0 OR pid = ?2) AND (?3 = 0 OR ts >= ?3)"
        " AND (?4 = 0 OR ts <= ?4) AND (?5 = 0 OR process_id = ?5)"
        " GROUP BY stack_id, pid, tid, thread_name, labels ORDER BY SUM(value) DESC";
    /* The timeline has a row for every second a process flushed, also when its live set was
     * empty: its latest second is the snapshot's, even if that second has no rows. */
    static const char snapshot_sql[] =
        "SELECT stack_id, pid, tid, thread_name, SUM(count), SUM(value), labels FROM samples"
        " WHERE profile = ?1 AND (?2 = 0 OR pid = ?2) AND (?5 = 0 OR process_id = ?5)"
        " AND ts = (SELECT MAX(t.ts) FROM timeline t WHERE t.process_id = samples.process_id"
        " AND (?3 = 0 OR t.ts >= ?3) AND (?4 = 0 OR t.ts <= ?4))"
        " GROUP BY stack_id, pid, tid, thread_name, labels ORDER BY SUM(value) DESC";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, q->snapshot ? snapshot_sql : sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "query samples");
        return -1;
    }
    sqlite3_bind_text(st, 1, q->profile, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, q->pid);
    sqlite3_bind_int64(st, 3, q->from_ts);
    sqlite3_bind_int64(st, 4, q->until_ts);
    sqlite3_bind_int64(st, 5, q->process_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cs_profile_row r = {
            .stack_id = sqlite3_column_int64(st, 0),
            .pid = sqlite3_column_int(st, 1),
            .tid = sqlite3_column_int(st, 2),
            .thread_name = (char *)sqlite3_column_text(st, 3),
            .count = sqlite3_column_int64(st, 4),
            .value = sqlite3_column_int64(st, 5),
            .labels = (char *)sqlite3_column_text(st, 6),
        };
        if (cb(&r, arg) != 0) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    if (rc != SQLITE_DONE)
        cs_db_set_error(db, "query samples");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int cs_db_stack_frames(cs_db *db, int64_t stack_id, cs_frame_row **out, int *n)
{
    static const char sql[] =
        "SELECT f.id, f.function, m.path, m.build_id, f.file, f.line, f.address, f.kind"
        " FROM frames f LEFT JOIN modules m ON m.id = f.module_id WHERE f.id = ?";
    sqlite3_stmt *st = NULL, *fs = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db->h, "SELECT frame_ids FROM stacks WHERE id = ?", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db->h, sql, -1, &fs, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "query stack");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_bind_int64(st, 1, stack_id);
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *blob = sqlite3_column_blob(st, 0);
        int depth = sqlite3_column_bytes(st, 0) / 8;
        cs_frame_row *f = calloc((size_t)depth + 1, sizeof *f);
        if (f) {
            for (int i = 0; i < depth; i++) {
                int64_t id = cs_stack_frame_id(blob, i);
                f[i].id = id;
                sqlite3_reset(fs);
                sqlite3_bind_int64(fs, 1, id);
                if (sqlite3_step(fs) == SQLITE_ROW) {
                    f[i].function = dup_col(fs, 1);
                    f[i].module = dup_col(fs, 2);
                    f[i].build_id = dup_col(fs, 3);
                    f[i].file = dup_col(fs, 4);
                    f[i].line = sqlite3_column_int64(fs, 5);
                    f[i].address = (uint64_t)sqlite3_column_int64(fs, 6);
                    const unsigned char *k = sqlite3_column_text(fs, 7);
                    strncpy(f[i].kind, k ? (const char *)k : "native", sizeof f[i].kind - 1);
                } else {
                    strcpy(f[i].kind, "native");
                }
            }
            *out = f;
            *n = depth;
            rc = 0;
        }
    } else {
        cs_db_set_error(db, "no such stack");
    }
    sqlite3_finalize(st);
    sqlite3_finalize(fs);
    return rc;
}

void cs_frames_free(cs_frame_row *f, int n)
{
    if (!f)
        return;
    for (int i = 0; i < n; i++) {
        free(f[i].function);
        free(f[i].module);
        free(f[i].build_id);
        free(f[i].file);
    }
    free(f);
}

int cs_db_time_range(cs_db *db, const char *profile, int pid, int64_t *from, int64_t *until)
{
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT MIN(ts), MAX(ts) FROM samples WHERE profile = ?1"
                           " AND (?2 = 0 OR pid = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, pid);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *from = sqlite3_column_int64(st, 0);
        *until = sqlite3_column_int64(st, 1);
        found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

int cs_db_rates(cs_db *db, int pid, int *cpu_hz, int *wall_hz)
{
    sqlite3_stmt *st;
    *cpu_hz = *wall_hz = 0;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT cpu_hz, wall_hz FROM processes WHERE (?1 = 0 OR pid = ?1)"
                           " ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int(st, 1, pid);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *cpu_hz = sqlite3_column_int(st, 0);
        *wall_hz = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
}
