/*
 * window.c: the write path of the rolling window.
 *
 * The recorder's writer calls these inside one transaction per flush. Frames and stacks are
 * deduplicated across all processes of the database by upserts that also "touch" the row
 * (last_seen): garbage collection removes only rows untouched for longer than any sample
 * can refer to them, so a writer's cached ids stay valid while other processes trim.
 * Nothing here may keep a statement active between calls (a fork may come at any time).
 */
#include "db_internal.h"

#include <stdlib.h>
#include <string.h>

static int64_t returning_id(cs_db *db, sqlite3_stmt *st, const char *what)
{
    int64_t id = -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    else
        cs_db_set_error(db, what);
    sqlite3_reset(st);
    return id;
}

int cs_db_begin(cs_db *db)
{
    return cs_db_exec(db, "BEGIN IMMEDIATE");
}

int cs_db_commit(cs_db *db)
{
    if (cs_db_exec(db, "COMMIT") == 0)
        return 0;
    cs_db_rollback(db);
    return -1;
}

void cs_db_rollback(cs_db *db)
{
    if (!sqlite3_get_autocommit(db->h))
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

int64_t cs_db_process_insert(cs_db *db, const cs_process_info *p)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_PROCESS_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, p->pid);
    sqlite3_bind_int(st, 2, p->ppid);
    sqlite3_bind_text(st, 3, p->app_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->exe, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->cmdline, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->tags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, p->hostname, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, p->start_ns);
    sqlite3_bind_int64(st, 9, p->start_ns / 1000000000);
    sqlite3_bind_int(st, 10, p->cpu_hz);
    sqlite3_bind_int(st, 11, p->wall_hz);
    sqlite3_bind_int(st, 12, p->window_seconds);
    /* An upsert: the crash helper may have created the row first (a crash within the first
     * second), and both sides must end up with the same id. */
    return returning_id(db, st, "insert process");
}

int cs_db_process_seen(cs_db *db, int64_t process_id, int64_t now_s)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_PROCESS_SEEN);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, now_s);
    sqlite3_bind_int64(st, 2, process_id);
    return cs_db_run(db, st, "update process");
}

int cs_db_process_end(cs_db *db, int64_t process_id, int64_t now_ns, const char *reason)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_PROCESS_END);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, now_ns);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ns);
    sqlite3_bind_int64(st, 4, process_id);
    return cs_db_run(db, st, "end process");
}

int64_t cs_db_module_id(cs_db *db, const char *path, const char *build_id)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_MODULE_UPSERT);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, build_id ? build_id : "", -1, SQLITE_STATIC);
    return returning_id(db, st, "module");
}

int64_t cs_db_frame_id(cs_db *db, int64_t module_id, uint64_t address, const char *function,
                       int64_t now_s)
{
    return cs_db_frame_id_line(db, module_id, address, function, NULL, 0, now_s);
}

int64_t cs_db_frame_id_line(cs_db *db, int64_t module_id, uint64_t address, const char *function,
                            const char *file, int line, int64_t now_s)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_FRAME_UPSERT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, module_id);
    sqlite3_bind_int64(st, 2, (int64_t)address);
    /* UNIQUE treats NULLs as distinct, so "no name" is stored as '' to deduplicate. */
    sqlite3_bind_text(st, 3, function ? function : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_s);
    if (file) {
        sqlite3_bind_text(st, 5, file, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, line);
    }
    return returning_id(db, st, "frame");
}

int64_t cs_db_python_frame_id(cs_db *db, int64_t module_id, const char *function, const char *file,
                              int line, int64_t now_s)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_PYFRAME_UPSERT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, module_id);
    sqlite3_bind_text(st, 2, function, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, line);
    sqlite3_bind_int64(st, 5, now_s);
    return returning_id(db, st, "python frame");
}

int cs_db_frames_touch(cs_db *db, const int64_t *ids, int n, int64_t now_s)
{
    for (int i = 0; i < n; i++) {
        sqlite3_stmt *st = cs_db_stmt(db, ST_FRAME_TOUCH);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, now_s);
        sqlite3_bind_int64(st, 2, ids[i]);
        if (cs_db_run(db, st, "touch frame") != 0)
            return -1;
    }
    return 0;
}

int64_t cs_db_stack_id(cs_db *db, const int64_t *frame_ids, int n, int64_t now_s)
{
    /* FNV-1a over the frame ids: the ids are global to the database, so every process
     * computes the same hash for the same stack. */
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        uint64_t v = (uint64_t)frame_ids[i];
        for (int b = 0; b < 8; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 1099511628211ull;
        }
    }
    h ^= (uint64_t)n;
    uint8_t *blob = malloc((size_t)n * 8 + 1);
    if (!blob)
        return -1;
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            blob[i * 8 + b] = (uint8_t)((uint64_t)frame_ids[i] >> (8 * b));
    sqlite3_stmt *st = cs_db_stmt(db, ST_STACK_UPSERT);
    if (!st) {
        free(blob);
        return -1;
    }
    sqlite3_bind_int64(st, 1, (int64_t)h);
    sqlite3_bind_int(st, 2, n);
    sqlite3_bind_blob(st, 3, blob, n * 8, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now_s);
    int64_t id = returning_id(db, st, "stack");
    free(blob);
    return id;
}

int cs_db_sample_add(cs_db *db, int64_t process_id, int pid, int64_t ts, int tid,
                     const char *thread_name, const char *profile, int64_t stack_id, int64_t count,
                     int64_t value, const char *labels)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_SAMPLE_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, process_id);
    sqlite3_bind_int(st, 2, pid);
    sqlite3_bind_int64(st, 3, ts);
    sqlite3_bind_int(st, 4, tid);
    sqlite3_bind_text(st, 5, thread_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, profile, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, stack_id);
    sqlite3_bind_int64(st, 8, count);
    sqlite3_bind_int64(st, 9, value);
    sqlite3_bind_text(st, 10, labels && *labels ? labels : NULL, -1, SQLITE_STATIC);
    return cs_db_run(db, st, "insert sample");
}

int cs_db_snapshot_clear(cs_db *db, int64_t process_id, int64_t ts)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_SNAPSHOT_CLEAR);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, process_id);
    sqlite3_bind_int64(st, 2, ts);
    return cs_db_run(db, st, "clear snapshot");
}

int cs_db_trim(cs_db *db, int64_t oldest_ts, int gc, int64_t gc_before_s)
{
    sqlite3_stmt *st = cs_db_stmt(db, ST_TRIM_SAMPLES);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, oldest_ts);
    if (cs_db_run(db, st, "trim samples") != 0)
        return -1;
    if (!(st = cs_db_stmt(db, ST_TRIM_TIMELINE)))
        return -1;
    sqlite3_bind_int64(st, 1, oldest_ts);
    if (cs_db_run(db, st, "trim timeline") != 0)
        return -1;
    if (!gc)
        return 0;
    sqlite3_stmt *g;
    static const char *const gc_sql[] = {
        /* Crashes beyond the newest CS_KEEP_CRASHES lose their window (not their record). */
        "DELETE FROM samples WHERE process_id IN (SELECT process_id FROM crashes"
        " ORDER BY id DESC LIMIT -1 OFFSET " CS_KEEP_CRASHES_STR ")"
        " AND ts < ?1",
        "DELETE FROM timeline WHERE process_id IN (SELECT process_id FROM crashes"
        " ORDER BY id DESC LIMIT -1 OFFSET " CS_KEEP_CRASHES_STR ")"
        " AND ts < ?1",
        "DELETE FROM stacks WHERE last_seen < ?1 AND id NOT IN (SELECT stack_id FROM samples)"
        " AND id NOT IN (SELECT stack_id FROM crashes WHERE stack_id IS NOT NULL)"
        " AND id NOT IN (SELECT stack_id FROM crash_threads WHERE stack_id IS NOT NULL)",
        "DELETE FROM frames WHERE last_seen < ?1",
        "DELETE FROM modules WHERE id NOT IN (SELECT DISTINCT module_id FROM frames)",
        /* A process is kept while it may still write, or while samples name it. */
        /* Delivered or abandoned uploads are kept a day for `inspect`, then go. */
        "DELETE FROM upload_attempts WHERE upload_id IN (SELECT id FROM uploads"
        " WHERE state != 'pending' AND created < strftime('%s','now') - 86400)",
        "DELETE FROM uploads WHERE state != 'pending' AND created < strftime('%s','now') - 86400",
        "DELETE FROM upload_cursor WHERE process_id NOT IN (SELECT id FROM processes)",
        "DELETE FROM processes WHERE last_seen < ?1"
        " AND id NOT IN (SELECT DISTINCT process_id FROM samples)"
        " AND id NOT IN (SELECT DISTINCT process_id FROM timeline)"
        " AND id NOT IN (SELECT process_id FROM crashes)",
    };
    for (size_t i = 0; i < sizeof gc_sql / sizeof gc_sql[0]; i++) {
        if (sqlite3_prepare_v2(db->h, gc_sql[i], -1, &g, NULL) != SQLITE_OK) {
            cs_db_set_error(db, "gc");
            return -1;
        }
        if (sqlite3_bind_parameter_count(g) > 0)
            sqlite3_bind_int64(g, 1, gc_before_s);
        int rc = sqlite3_step(g);
        sqlite3_finalize(g);
        if (rc != SQLITE_DONE) {
            cs_db_set_error(db, "gc");
            return -1;
        }
    }
    return 0;
}
