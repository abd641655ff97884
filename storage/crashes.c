/*
 * crashes.c: crash records in the database, and the queries `crashscope crashes` and
 * `crashscope inspect` read them with.
 *
 * Written only by the crash helper (`crashscope _ingest`), inside its one transaction; a
 * record file is ingested at most once (crashes.record is UNIQUE). Deaths are not stored:
 * they are derived when read, from processes that stopped being seen without an end.
 */
#include "db_internal.h"

#include <stdlib.h>
#include <string.h>

static char *dup_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

int64_t cs_db_crash_insert(cs_db *db, const cs_crash_row *c, const char *record)
{
    static const char sql[] =
        "INSERT INTO crashes(process_id, pid, kind, time_ns, signal, code, fault_address,"
        " sender_pid, tid, thread_name, stack_id, registers, record, samples_saved, ingested_ns)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?, CAST(unixepoch('subsec') * 1e9 AS INTEGER))"
        " ON CONFLICT(record) DO NOTHING RETURNING id";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "insert crash");
        return -1;
    }
    sqlite3_bind_int64(st, 1, c->process_id);
    sqlite3_bind_int(st, 2, c->pid);
    sqlite3_bind_text(st, 3, c->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, c->time_ns);
    sqlite3_bind_int(st, 5, c->signo);
    sqlite3_bind_int(st, 6, c->code);
    sqlite3_bind_int64(st, 7, (int64_t)c->fault_address);
    sqlite3_bind_int(st, 8, c->sender_pid);
    sqlite3_bind_int(st, 9, c->tid);
    sqlite3_bind_text(st, 10, c->thread_name, -1, SQLITE_STATIC);
    if (c->stack_id > 0)
        sqlite3_bind_int64(st, 11, c->stack_id);
    sqlite3_bind_text(st, 12, c->registers, -1, SQLITE_STATIC);
    if (record) /* deaths have no record; NULLs do not collide in the UNIQUE index */
        sqlite3_bind_text(st, 13, record, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, c->samples_saved);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -1;
    if (id < 0)
        cs_db_set_error(db, "insert crash");
    sqlite3_finalize(st);
    return id;
}

int cs_db_crash_thread_insert(cs_db *db, int64_t crash_id, const cs_crash_thread_row *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "INSERT INTO crash_threads(crash_id, tid, name, state, stack_id)"
                           " VALUES(?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "insert crash thread");
        return -1;
    }
    sqlite3_bind_int64(st, 1, crash_id);
    sqlite3_bind_int(st, 2, t->tid);
    sqlite3_bind_text(st, 3, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->state, -1, SQLITE_STATIC);
    if (t->stack_id > 0)
        sqlite3_bind_int64(st, 5, t->stack_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cs_db_set_error(db, "insert crash thread");
        return -1;
    }
    return 0;
}

int cs_db_crash_module_insert(cs_db *db, int64_t crash_id, const char *path, uint64_t base,
                              const char *build_id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "INSERT INTO crash_modules(crash_id, path, base, build_id)"
                           " VALUES(?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, crash_id);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)base);
    sqlite3_bind_text(st, 4, build_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int cs_db_crash_modules(cs_db *db, int64_t crash_id,
                        int (*cb)(const char *path, uint64_t base, const char *build_id, void *arg),
                        void *arg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT path, base, build_id FROM crash_modules WHERE crash_id = ?"
                           " ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, crash_id);
    while (sqlite3_step(st) == SQLITE_ROW)
        if (cb((const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
               (const char *)sqlite3_column_text(st, 2), arg) != 0)
            break;
    sqlite3_finalize(st);
    return 0;
}

static int pin_stack_blob(cs_db *db, sqlite3_stmt *upd, const void *blob, int bytes)
{
    const unsigned char *b = blob;
    for (int i = 0; i < bytes / 8; i++) {
        sqlite3_reset(upd);
        sqlite3_bind_int64(upd, 1, CS_PINNED_S);
        sqlite3_bind_int64(upd, 2, cs_stack_frame_id(b, i));
        if (sqlite3_step(upd) != SQLITE_DONE) {
            cs_db_set_error(db, "pin frames");
            return -1;
        }
    }
    return 0;
}

int cs_db_pin_process(cs_db *db, int64_t process_id, int64_t crash_id)
{
    static const char sql[] = "SELECT frame_ids FROM stacks WHERE id IN ("
                              " SELECT stack_id FROM samples WHERE process_id = ?1"
                              " UNION SELECT stack_id FROM crashes WHERE id = ?2"
                              " UNION SELECT stack_id FROM crash_threads WHERE crash_id = ?2)";
    sqlite3_stmt *st = NULL, *upd = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->h, "UPDATE frames SET last_seen = ? WHERE id = ?", -1, &upd, NULL) !=
            SQLITE_OK) {
        cs_db_set_error(db, "pin frames");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_bind_int64(st, 1, process_id);
    sqlite3_bind_int64(st, 2, crash_id);
    int rc = 0, r;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
        rc = pin_stack_blob(db, upd, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    sqlite3_finalize(upd);
    return rc;
}

int cs_db_mark_deaths(cs_db *db, const char *hostname, int64_t stale_before_s,
                      int (*is_alive)(int pid))
{
    static const char find[] =
        "SELECT id, pid, last_seen FROM processes WHERE end_ns IS NULL AND hostname = ?1"
        " AND last_seen < ?2 AND id NOT IN (SELECT process_id FROM crashes)";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, find, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "find deaths");
        return -1;
    }
    sqlite3_bind_text(st, 1, hostname, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, stale_before_s);
    int64_t ids[256];
    int pids[256];
    int64_t seen[256];
    int n = 0;
    while (n < 256 && sqlite3_step(st) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(st, 0);
        pids[n] = sqlite3_column_int(st, 1);
        seen[n] = sqlite3_column_int64(st, 2);
        if (!is_alive(pids[n]))
            n++;
    }
    sqlite3_finalize(st);
    int marked = 0;
    for (int i = 0; i < n; i++) {
        cs_crash_row c = {.process_id = ids[i], .pid = pids[i], .time_ns = seen[i] * 1000000000};
        strcpy(c.kind, "death");
        if (cs_db_crash_insert(db, &c, NULL) < 0 ||
            cs_db_process_end(db, ids[i], seen[i] * 1000000000, "vanished") != 0)
            return -1;
        marked++;
    }
    return marked;
}

#define CRASH_COLUMNS                                                                              \
    "c.id, c.process_id, c.pid, p.ppid, c.kind, c.time_ns, c.signal, c.code, c.fault_address,"     \
    " c.sender_pid, c.tid, c.thread_name, p.app_name, p.exe, p.cmdline, c.registers,"              \
    " p.hostname, c.stack_id, p.start_ns, p.last_seen, c.samples_saved"

static void read_crash(sqlite3_stmt *st, cs_crash_row *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(st, 0);
    c->process_id = sqlite3_column_int64(st, 1);
    c->pid = sqlite3_column_int(st, 2);
    c->ppid = sqlite3_column_int(st, 3);
    const unsigned char *k = sqlite3_column_text(st, 4);
    strncpy(c->kind, k ? (const char *)k : "?", sizeof c->kind - 1);
    c->time_ns = sqlite3_column_int64(st, 5);
    c->signo = sqlite3_column_int(st, 6);
    c->code = sqlite3_column_int(st, 7);
    c->fault_address = (uint64_t)sqlite3_column_int64(st, 8);
    c->sender_pid = sqlite3_column_int(st, 9);
    c->tid = sqlite3_column_int(st, 10);
    c->thread_name = dup_text(st, 11);
    c->app_name = dup_text(st, 12);
    c->exe = dup_text(st, 13);
    c->cmdline = dup_text(st, 14);
    c->registers = dup_text(st, 15);
    c->hostname = dup_text(st, 16);
    c->stack_id = sqlite3_column_int64(st, 17);
    c->start_ns = sqlite3_column_int64(st, 18);
    c->last_seen = sqlite3_column_int64(st, 19);
    c->samples_saved = sqlite3_column_int(st, 20);
}

int cs_db_crashes(cs_db *db, cs_crash_row **out, int *n)
{
    static const char sql[] =
        "SELECT " CRASH_COLUMNS " FROM crashes c JOIN processes p ON p.id = c.process_id"
        " ORDER BY c.time_ns DESC, c.id DESC";
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "list crashes");
        return -1;
    }
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            cs_crash_row *r = realloc(*out, sizeof *r * (size_t)cap);
            if (!r)
                break;
            *out = r;
        }
        read_crash(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    return 0;
}

int cs_db_crash_get(cs_db *db, int64_t id, cs_crash_row *out)
{
    static const char sql[] =
        "SELECT " CRASH_COLUMNS " FROM crashes c JOIN processes p ON p.id = c.process_id"
        " WHERE ?1 = 0 OR c.id = ?1 ORDER BY c.time_ns DESC LIMIT 1";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "read crash");
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    int found = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        read_crash(st, out);
        found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

int64_t cs_db_crash_of_pid(cs_db *db, int pid, int64_t since_ns)
{
    sqlite3_stmt *st;
    int64_t id = 0;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT id FROM crashes WHERE pid = ? AND time_ns >= ?"
                           " ORDER BY time_ns DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int(st, 1, pid);
    sqlite3_bind_int64(st, 2, since_ns);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

int cs_db_crashes_below(cs_db *db, int root_pid, int64_t since_ns, int64_t *ids, int max)
{
    static const char sql[] =
        "WITH RECURSIVE tree(pid) AS (SELECT pid FROM processes WHERE ppid = ?1 AND start_ns >= ?2"
        "  UNION SELECT p.pid FROM processes p JOIN tree t ON p.ppid = t.pid"
        "  WHERE p.start_ns >= ?2)"
        " SELECT id FROM crashes WHERE time_ns >= ?2 AND pid != ?1"
        " AND pid IN (SELECT pid FROM tree) ORDER BY time_ns";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "crashes of descendants");
        return -1;
    }
    sqlite3_bind_int(st, 1, root_pid);
    sqlite3_bind_int64(st, 2, since_ns);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n < max)
            ids[n] = sqlite3_column_int64(st, 0);
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

void cs_crash_row_free(cs_crash_row *c)
{
    free(c->thread_name);
    free(c->app_name);
    free(c->exe);
    free(c->cmdline);
    free(c->registers);
    free(c->hostname);
}

int cs_db_crash_threads(cs_db *db, int64_t crash_id, cs_crash_thread_row **out, int *n)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db->h,
                           "SELECT tid, name, state, stack_id FROM crash_threads"
                           " WHERE crash_id = ? ORDER BY tid",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, crash_id);
    int cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cs_crash_thread_row *r = realloc(*out, sizeof *r * (size_t)cap);
            if (!r)
                break;
            *out = r;
        }
        cs_crash_thread_row *t = &(*out)[(*n)++];
        memset(t, 0, sizeof *t);
        t->tid = sqlite3_column_int(st, 0);
        t->name = dup_text(st, 1);
        const unsigned char *s = sqlite3_column_text(st, 2);
        strncpy(t->state, s ? (const char *)s : "", sizeof t->state - 1);
        t->stack_id = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    return 0;
}

void cs_crash_threads_free(cs_crash_thread_row *t, int n)
{
    for (int i = 0; i < n; i++)
        free(t[i].name);
    free(t);
}

/* The innermost frame's function of a stack, as SQL: the first 8 bytes of frame_ids. */
#define LEAF_FUNCTION                                                                              \
    "(SELECT COALESCE(NULLIF(f.function, ''), printf('%s+0x%x',"                                   \
    " replace(m.path, rtrim(m.path, replace(m.path, '/', '')), ''), f.address))"                   \
    " FROM frames f LEFT JOIN modules m ON m.id = f.module_id"                                     \
    " WHERE f.id = (SELECT leaf_id(frame_ids) FROM stacks WHERE id = s.stack_id))"

static void leaf_id(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *b = sqlite3_value_blob(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    if (!b || n < 8) {
        sqlite3_result_null(ctx);
        return;
    }
    sqlite3_result_int64(ctx, cs_stack_frame_id(b, 0));
}

static int ensure_leaf_fn(cs_db *db)
{
    return sqlite3_create_function(db->h, "leaf_id", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                   leaf_id, NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

int cs_db_seconds(cs_db *db, int64_t process_id, int64_t from, int64_t until,
                  int (*cb)(int64_t ts, int64_t cpu, int64_t wall, const char *top, int64_t top_n,
                            void *arg),
                  void *arg)
{
    static const char sql[] =
        "WITH per AS (SELECT ts, SUM(CASE profile WHEN 'cpu' THEN count END) AS cpu,"
        "  SUM(CASE profile WHEN 'wall' THEN count END) AS wall FROM samples"
        "  WHERE process_id = ?1 AND ts BETWEEN ?2 AND ?3 GROUP BY ts),"
        " leaf AS (SELECT s.ts, " LEAF_FUNCTION " AS fn, SUM(s.count) AS n FROM samples s"
        "  WHERE s.process_id = ?1 AND s.profile = 'cpu' AND s.ts BETWEEN ?2 AND ?3"
        "  GROUP BY s.ts, fn),"
        " top AS (SELECT ts, fn, MAX(n) AS n FROM leaf GROUP BY ts)"
        " SELECT per.ts, COALESCE(per.cpu, 0), COALESCE(per.wall, 0), top.fn, top.n"
        " FROM per LEFT JOIN top ON top.ts = per.ts ORDER BY per.ts";
    sqlite3_stmt *st;
    if (ensure_leaf_fn(db) != 0 || sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "per-second summary");
        return -1;
    }
    sqlite3_bind_int64(st, 1, process_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, until);
    while (sqlite3_step(st) == SQLITE_ROW)
        if (cb(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
               sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3),
               sqlite3_column_int64(st, 4), arg) != 0)
            break;
    sqlite3_finalize(st);
    return 0;
}

/* The parameters of both "top" queries: ?1 process, ?2 profile, ?3-?4 seconds, ?5 rows. */
static void bind_top(sqlite3_stmt *st, int64_t process_id, const char *profile, int64_t from,
                     int64_t until, int limit)
{
    sqlite3_bind_int64(st, 1, process_id);
    sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, from);
    sqlite3_bind_int64(st, 4, until);
    sqlite3_bind_int(st, 5, limit);
}

/* The set of Python frame ids, for python_leaf(): sorted, searched by bisection. */
typedef struct {
    int64_t *ids;
    size_t n;
} id_set;

static int id_set_has(const id_set *s, int64_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ids[mid] == id)
            return 1;
        if (s->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* python_leaf(frame_ids): the innermost frame of a stack that is a Python frame, or NULL. */
static void python_leaf(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const id_set *py = sqlite3_user_data(ctx);
    const unsigned char *b = sqlite3_value_blob(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    for (int i = 0; b && i < n / 8; i++) {
        int64_t id = cs_stack_frame_id(b, i);
        if (id_set_has(py, id)) {
            sqlite3_result_int64(ctx, id);
            return;
        }
    }
    sqlite3_result_null(ctx);
}

int cs_db_top_python(cs_db *db, int64_t process_id, const char *profile, int64_t from,
                     int64_t until, int limit,
                     int (*cb)(const char *function, const char *file, int64_t line, int64_t count,
                               void *arg),
                     void *arg)
{
    /* The Python frames first: a stack's blob does not say which of its frames they are. */
    id_set py = {NULL, 0};
    size_t cap = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, "SELECT id FROM frames WHERE kind = 'python' ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "python frames");
        return -1;
    }
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (py.n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            int64_t *m = realloc(py.ids, ncap * sizeof *m);
            if (!m) {
                rc = -1;
                break;
            }
            py.ids = m;
            cap = ncap;
        }
        py.ids[py.n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc || py.n == 0) {
        free(py.ids);
        return rc; /* no Python frame in the database: nothing to say */
    }
    static const char sql[] =
        "WITH per AS (SELECT stack_id, SUM(count) AS n FROM samples WHERE process_id = ?1"
        "  AND profile = ?2 AND ts BETWEEN ?3 AND ?4 GROUP BY stack_id),"
        " py AS MATERIALIZED (SELECT COALESCE(NULLIF(f.function, ''), '?') AS fn, f.file,"
        "  f.line, SUM(per.n) AS n FROM per JOIN stacks s ON s.id = per.stack_id"
        "  JOIN frames f ON f.id = python_leaf(s.frame_ids) GROUP BY 1, 2, 3)"
        " SELECT fn, file, SUM(n) AS total, (SELECT line FROM py AS b WHERE b.fn = py.fn"
        "  AND b.file IS py.file ORDER BY b.n DESC LIMIT 1) FROM py GROUP BY fn, file"
        " ORDER BY total DESC LIMIT ?5";
    if (sqlite3_create_function(db->h, "python_leaf", 1, SQLITE_UTF8, &py, python_leaf, NULL,
                                NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "top Python functions");
        sqlite3_create_function(db->h, "python_leaf", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL);
        free(py.ids);
        return -1;
    }
    bind_top(st, process_id, profile, from, until, limit);
    while (sqlite3_step(st) == SQLITE_ROW)
        if (cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
               sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 2), arg) != 0)
            break;
    sqlite3_finalize(st);
    /* The function points at this call's set: gone with it. */
    sqlite3_create_function(db->h, "python_leaf", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL);
    free(py.ids);
    return 0;
}

int cs_db_top_functions(cs_db *db, int64_t process_id, const char *profile, int64_t from,
                        int64_t until, int limit,
                        int (*cb)(const char *function, int64_t count, void *arg), void *arg)
{
    static const char sql[] = "SELECT " LEAF_FUNCTION " AS fn, SUM(s.count) FROM samples s"
                              " WHERE s.process_id = ?1 AND s.profile = ?2"
                              " AND s.ts BETWEEN ?3 AND ?4 GROUP BY fn ORDER BY 2 DESC LIMIT ?5";
    sqlite3_stmt *st;
    if (ensure_leaf_fn(db) != 0 || sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "top functions");
        return -1;
    }
    bind_top(st, process_id, profile, from, until, limit);
    while (sqlite3_step(st) == SQLITE_ROW)
        if (cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), arg) != 0)
            break;
    sqlite3_finalize(st);
    return 0;
}
