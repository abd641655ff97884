/*
 * db.c: opening the database, the schema and its version, prepared statements.
 *
 * Invariants: an existing file is never deleted, truncated or rewritten because it looks
 * wrong: a file that is not a crashscope database, or one of a newer schema, is refused
 * with a one-line reason. Writers create the schema idempotently, so any number of
 * processes may open the same new file at once.
 */
#include "db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS processes("
    " id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, ppid INTEGER, app_name TEXT, exe TEXT,"
    " cmdline TEXT, tags TEXT, hostname TEXT, start_ns INTEGER, last_seen INTEGER,"
    " end_ns INTEGER, end_reason TEXT, cpu_hz INTEGER, wall_hz INTEGER, window_seconds INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS processes_key ON processes(pid, start_ns);"
    "CREATE TABLE IF NOT EXISTS modules("
    " id INTEGER PRIMARY KEY, path TEXT NOT NULL, build_id TEXT NOT NULL DEFAULT '',"
    " UNIQUE(path, build_id));"
    "CREATE TABLE IF NOT EXISTS frames("
    " id INTEGER PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'native',"
    " module_id INTEGER NOT NULL DEFAULT 0, address INTEGER NOT NULL DEFAULT 0,"
    " function TEXT, file TEXT, line INTEGER, last_seen INTEGER NOT NULL,"
    " UNIQUE(module_id, address, kind, function));"
    "CREATE TABLE IF NOT EXISTS stacks("
    " id INTEGER PRIMARY KEY, hash INTEGER NOT NULL UNIQUE, depth INTEGER NOT NULL,"
    " frame_ids BLOB NOT NULL, last_seen INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS samples("
    " process_id INTEGER NOT NULL, pid INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " tid INTEGER NOT NULL, thread_name TEXT, profile TEXT NOT NULL,"
    " stack_id INTEGER NOT NULL, count INTEGER NOT NULL, value INTEGER NOT NULL, labels TEXT);"
    "CREATE INDEX IF NOT EXISTS samples_ts ON samples(ts);"
    "CREATE INDEX IF NOT EXISTS samples_profile ON samples(profile, ts);"
    "CREATE INDEX IF NOT EXISTS samples_process ON samples(process_id, ts);"
    "CREATE INDEX IF NOT EXISTS samples_stack ON samples(stack_id);"
    "CREATE TABLE IF NOT EXISTS timeline("
    " process_id INTEGER NOT NULL, ts INTEGER NOT NULL, rss_kb INTEGER, peak_rss_kb INTEGER,"
    " cpu_user_ms INTEGER, cpu_system_ms INTEGER, threads INTEGER, fds INTEGER,"
    " minor_faults INTEGER, major_faults INTEGER, voluntary_cs INTEGER, involuntary_cs INTEGER,"
    " threads_created INTEGER, threads_exited INTEGER, heap_live_bytes INTEGER,"
    " PRIMARY KEY(process_id, ts)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS timeline_ts ON timeline(ts);"
    "CREATE TABLE IF NOT EXISTS crashes("
    " id INTEGER PRIMARY KEY, process_id INTEGER NOT NULL, pid INTEGER NOT NULL,"
    " kind TEXT NOT NULL, time_ns INTEGER NOT NULL, signal INTEGER, code INTEGER,"
    " fault_address INTEGER, sender_pid INTEGER, tid INTEGER, thread_name TEXT,"
    " stack_id INTEGER, registers TEXT, record TEXT UNIQUE, samples_saved INTEGER,"
    " ingested_ns INTEGER);"
    "CREATE INDEX IF NOT EXISTS crashes_process ON crashes(process_id);"
    "CREATE TABLE IF NOT EXISTS crash_threads("
    " crash_id INTEGER NOT NULL, tid INTEGER, name TEXT, state TEXT, stack_id INTEGER);"
    "CREATE INDEX IF NOT EXISTS crash_threads_crash ON crash_threads(crash_id);"
    "CREATE TABLE IF NOT EXISTS crash_modules("
    " crash_id INTEGER NOT NULL, path TEXT, base INTEGER, build_id TEXT);"
    "CREATE TABLE IF NOT EXISTS uploads("
    " id INTEGER PRIMARY KEY, process_id INTEGER NOT NULL, crash_id INTEGER NOT NULL,"
    " profile TEXT NOT NULL, phase TEXT NOT NULL, slice_from INTEGER NOT NULL,"
    " slice_until INTEGER NOT NULL, labels TEXT NOT NULL, body BLOB, sample_rate INTEGER,"
    " state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, sent_at INTEGER,"
    " last_status INTEGER, last_error TEXT,"
    " UNIQUE(process_id, crash_id, profile, phase, slice_from));"
    "CREATE INDEX IF NOT EXISTS uploads_state ON uploads(state, next_attempt);"
    "CREATE TABLE IF NOT EXISTS upload_attempts("
    " upload_id INTEGER NOT NULL, time_ns INTEGER NOT NULL, endpoint TEXT, status INTEGER,"
    " bytes INTEGER, error TEXT);"
    "CREATE INDEX IF NOT EXISTS upload_attempts_upload ON upload_attempts(upload_id);"
    "CREATE TABLE IF NOT EXISTS upload_cursor(process_id INTEGER PRIMARY KEY,"
    " until INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');";

static const char *const stmt_sql[ST_COUNT] = {
    [ST_PROCESS_INSERT] =
        "INSERT INTO processes(pid, ppid, app_name, exe, cmdline, tags, hostname, start_ns,"
        " last_seen, cpu_hz, wall_hz, window_seconds) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(pid, start_ns) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)"
        " RETURNING id",
    [ST_PROCESS_SEEN] = "UPDATE processes SET last_seen = ? WHERE id = ?",
    [ST_PROCESS_END] = "UPDATE processes SET end_ns = ?, end_reason = ?, last_seen = ? / 1000000000"
                       " WHERE id = ? AND end_ns IS NULL",
    [ST_MODULE_UPSERT] = "INSERT INTO modules(path, build_id) VALUES(?, ?)"
                         " ON CONFLICT(path, build_id) DO UPDATE SET path = excluded.path"
                         " RETURNING id",
    [ST_FRAME_UPSERT] =
        "INSERT INTO frames(kind, module_id, address, function, last_seen, file, line)"
        " VALUES('native', ?, ?, ?, ?, ?, ?) ON CONFLICT(module_id, address, kind, function)"
        " DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen),"
        " file = COALESCE(file, excluded.file), line = COALESCE(line, excluded.line)"
        " RETURNING id",
    [ST_FRAME_TOUCH] = "UPDATE frames SET last_seen = ? WHERE id = ?",
    [ST_PYFRAME_UPSERT] =
        "INSERT INTO frames(kind, module_id, address, function, last_seen, file, line)"
        " VALUES('python', ?1, ?4, ?2, ?5, ?3, ?4) ON CONFLICT(module_id, address, kind, function)"
        " DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen) RETURNING id",
    [ST_STACK_UPSERT] =
        "INSERT INTO stacks(hash, depth, frame_ids, last_seen) VALUES(?, ?, ?, ?)"
        " ON CONFLICT(hash) DO UPDATE SET last_seen = excluded.last_seen RETURNING id",
    [ST_SAMPLE_INSERT] =
        "INSERT INTO samples(process_id, pid, ts, tid, thread_name, profile, stack_id, count,"
        " value, labels) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    /* The window before a crash is kept with the crash (see cs_db_trim for its bound). */
    [ST_TRIM_SAMPLES] = "DELETE FROM samples WHERE ts < ?"
                        " AND process_id NOT IN (SELECT process_id FROM crashes)",
    [ST_SNAPSHOT_CLEAR] = "DELETE FROM samples WHERE process_id = ? AND ts = ?"
                          " AND profile IN ('inuse', 'threads')",
    [ST_TIMELINE_ADD] = "INSERT OR REPLACE INTO timeline VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_TRIM_TIMELINE] = "DELETE FROM timeline WHERE ts < ?"
                         " AND process_id NOT IN (SELECT process_id FROM crashes)",
};

void cs_db_set_error(cs_db *db, const char *what)
{
    snprintf(db->err, sizeof db->err, "%s: %s", what, db->h ? sqlite3_errmsg(db->h) : "no db");
}

int cs_db_run(cs_db *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        cs_db_set_error(db, what);
        return -1;
    }
    return 0;
}

const char *cs_db_error(cs_db *db)
{
    return db->err;
}

int cs_db_exec(cs_db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(db->err, sizeof db->err, "%s", msg ? msg : sqlite3_errmsg(db->h));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

sqlite3_stmt *cs_db_stmt(cs_db *db, int which)
{
    if (!db->st[which] && sqlite3_prepare_v3(db->h, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                             &db->st[which], NULL) != SQLITE_OK) {
        cs_db_set_error(db, "prepare");
        return NULL;
    }
    sqlite3_reset(db->st[which]);
    sqlite3_clear_bindings(db->st[which]);
    return db->st[which];
}

static int schema_version(cs_db *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = atoi((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

/* Columns added after a table first shipped: added in place, never by rebuilding. */
static int add_missing_columns(cs_db *db)
{
    sqlite3_stmt *st;
    int have = 0;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT 1 FROM pragma_table_info('samples') WHERE name = 'labels'", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    have = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return have ? 0 : cs_db_exec(db, "ALTER TABLE samples ADD COLUMN labels TEXT");
}

cs_db *cs_db_open(const char *path, int readonly, char *err, size_t errlen)
{
    cs_db *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 db->h ? sqlite3_errmsg(db->h) : "out of memory");
        cs_db_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db->h, 1000);
    sqlite3_extended_result_codes(db->h, 1);
    /* The first read tells a database from any other file; nothing is written before. */
    if (cs_db_exec(db, "SELECT count(*) FROM sqlite_schema") != 0) {
        snprintf(err, errlen, "%s is not a usable SQLite database (%s); it is left untouched", path,
                 db->err);
        cs_db_close(db);
        return NULL;
    }
    if (!readonly) {
        if (cs_db_exec(db, "PRAGMA journal_mode=WAL") != 0 ||
            cs_db_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=4194304;"
                           " PRAGMA wal_autocheckpoint=100") != 0 ||
            cs_db_exec(db, "BEGIN IMMEDIATE") != 0) {
            snprintf(err, errlen, "cannot prepare %s: %s", path, db->err);
            cs_db_close(db);
            return NULL;
        }
        /* Refuse foreign databases: a file with tables but no crashscope meta table. */
        int v = schema_version(db);
        sqlite3_stmt *st;
        int tables = 0;
        if (sqlite3_prepare_v2(db->h, "SELECT count(*) FROM sqlite_schema WHERE type='table'", -1,
                               &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                tables = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
        if ((tables > 0 && v < 0) || v > CS_SCHEMA_VERSION) {
            cs_db_exec(db, "ROLLBACK");
            snprintf(err, errlen,
                     v > CS_SCHEMA_VERSION
                         ? "%s was written by a newer crashscope (schema %d); it is left untouched"
                         : "%s is an SQLite database but not crashscope's; it is left untouched",
                     path, v);
            cs_db_close(db);
            return NULL;
        }
        if (cs_db_exec(db, schema_sql) != 0 || add_missing_columns(db) != 0 ||
            cs_db_exec(db, "COMMIT") != 0) {
            snprintf(err, errlen, "cannot create the schema in %s: %s", path, db->err);
            cs_db_exec(db, "ROLLBACK");
            cs_db_close(db);
            return NULL;
        }
    } else {
        int v = schema_version(db);
        if (v < 0 || v > CS_SCHEMA_VERSION) {
            snprintf(err, errlen,
                     v < 0 ? "%s is not a crashscope database (no schema version)"
                           : "%s was written by a newer crashscope (schema %d)",
                     path, v);
            cs_db_close(db);
            return NULL;
        }
    }
    return db;
}

void cs_db_close(cs_db *db)
{
    if (!db)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    sqlite3_close_v2(db->h);
    free(db);
}
