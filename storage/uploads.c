/*
 * uploads.c: the queue of profiles for Pyroscope, and the record of every attempt.
 *
 * A profile is queued with its encoded body before the first attempt, so that nothing is
 * lost when the server is down: it stays "pending" and is retried with backoff. The body is
 * dropped once the upload is settled (sent, refused by the server, or too old for it); the
 * row and its attempts stay a day so `crashscope inspect` can say what happened. Nothing
 * here ever holds a password: labels and endpoints are stored as given, and callers never
 * put secrets in them.
 */
#include "db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t cs_db_upload_add(cs_db *db, const cs_upload_row *u, int64_t now_s)
{
    static const char sql[] =
        "INSERT INTO uploads(process_id, crash_id, profile, phase, slice_from, slice_until,"
        " labels, body, sample_rate, created) VALUES(?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(process_id, crash_id, profile, phase, slice_from) DO NOTHING RETURNING id";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "queue upload");
        return -1;
    }
    sqlite3_bind_int64(st, 1, u->process_id);
    sqlite3_bind_int64(st, 2, u->crash_id);
    sqlite3_bind_text(st, 3, u->profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, u->phase, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, u->slice_from);
    sqlite3_bind_int64(st, 6, u->slice_until);
    sqlite3_bind_text(st, 7, u->labels, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, u->body, (int)u->body_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, u->sample_rate);
    sqlite3_bind_int64(st, 10, now_s);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -1;
    if (id < 0)
        cs_db_set_error(db, "queue upload");
    sqlite3_finalize(st);
    return id;
}

int cs_db_uploads_due(cs_db *db, int64_t now_s, int force, int64_t after_id, int max,
                      cs_upload_row **out, int *n)
{
    static const char sql[] =
        "SELECT id, process_id, crash_id, profile, phase, slice_from, slice_until, labels, body,"
        " sample_rate, attempts FROM uploads WHERE state = 'pending' AND (?1 OR next_attempt <= ?2)"
        " AND id > ?4 ORDER BY id LIMIT ?3";
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "read uploads");
        return -1;
    }
    sqlite3_bind_int(st, 1, force);
    sqlite3_bind_int64(st, 2, now_s);
    sqlite3_bind_int(st, 3, max);
    sqlite3_bind_int64(st, 4, after_id);
    cs_upload_row *rows = calloc((size_t)max + 1, sizeof *rows);
    if (!rows) {
        sqlite3_finalize(st);
        return -1;
    }
    while (*n < max && sqlite3_step(st) == SQLITE_ROW) {
        cs_upload_row *u = &rows[*n];
        u->id = sqlite3_column_int64(st, 0);
        u->process_id = sqlite3_column_int64(st, 1);
        u->crash_id = sqlite3_column_int64(st, 2);
        snprintf(u->profile, sizeof u->profile, "%s", (const char *)sqlite3_column_text(st, 3));
        snprintf(u->phase, sizeof u->phase, "%s", (const char *)sqlite3_column_text(st, 4));
        u->slice_from = sqlite3_column_int64(st, 5);
        u->slice_until = sqlite3_column_int64(st, 6);
        const unsigned char *l = sqlite3_column_text(st, 7);
        u->labels = strdup(l ? (const char *)l : "");
        int len = sqlite3_column_bytes(st, 8);
        const void *b = sqlite3_column_blob(st, 8);
        if (b && len > 0 && (u->body = malloc((size_t)len))) {
            memcpy(u->body, b, (size_t)len);
            u->body_len = (size_t)len;
        }
        u->sample_rate = sqlite3_column_int(st, 9);
        u->attempts = sqlite3_column_int(st, 10);
        (*n)++;
    }
    sqlite3_finalize(st);
    *out = rows;
    return 0;
}

void cs_upload_rows_free(cs_upload_row *u, int n)
{
    for (int i = 0; u && i < n; i++) {
        free(u[i].labels);
        free(u[i].body);
    }
    free(u);
}

int cs_db_upload_result(cs_db *db, int64_t id, const char *state, int64_t next_s, long status,
                        const char *endpoint, size_t bytes, const char *error, int64_t now_ns)
{
    static const char upd[] =
        "UPDATE uploads SET state = ?2, attempts = attempts + (?4 IS NOT NULL),"
        " next_attempt = ?3, last_status = ?5, last_error = ?6,"
        " sent_at = CASE ?2 WHEN 'sent' THEN ?7 / 1000000000 ELSE sent_at END,"
        " body = CASE ?2 WHEN 'pending' THEN body ELSE NULL END WHERE id = ?1";
    static const char att[] = "INSERT INTO upload_attempts(upload_id, time_ns, endpoint, status,"
                              " bytes, error) VALUES(?,?,?,?,?,?)";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h, upd, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "upload result");
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, next_s);
    if (endpoint)
        sqlite3_bind_text(st, 4, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, status);
    sqlite3_bind_text(st, 6, error && *error ? error : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, now_ns);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cs_db_set_error(db, "upload result");
        return -1;
    }
    if (!endpoint) /* settled without an attempt (too old) */
        return 0;
    if (sqlite3_prepare_v2(db->h, att, -1, &st, NULL) != SQLITE_OK) {
        cs_db_set_error(db, "upload attempt");
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ns);
    sqlite3_bind_text(st, 3, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, status);
    sqlite3_bind_int64(st, 5, (int64_t)bytes);
    sqlite3_bind_text(st, 6, error && *error ? error : NULL, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int64_t cs_db_upload_cursor(cs_db *db, int64_t process_id)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (sqlite3_prepare_v2(db->h, "SELECT until FROM upload_cursor WHERE process_id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64(st, 1, process_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int cs_db_upload_cursor_set(cs_db *db, int64_t process_id, int64_t until)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "INSERT INTO upload_cursor(process_id, until) VALUES(?1, ?2)"
                           " ON CONFLICT(process_id) DO UPDATE SET until = MAX(until, ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, process_id);
    sqlite3_bind_int64(st, 2, until);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int cs_db_active_processes(cs_db *db, int64_t since_s, int64_t **ids, int *n)
{
    sqlite3_stmt *st;
    *ids = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db->h, "SELECT id FROM processes WHERE last_seen >= ? ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, since_s);
    int cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *p = realloc(*ids, sizeof *p * (size_t)cap);
            if (!p)
                break;
            *ids = p;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return 0;
}

int cs_db_upload_summary(cs_db *db, int64_t crash_id, cs_upload_summary *s)
{
    static const char sql[] =
        "SELECT COUNT(*), SUM(state = 'sent'), SUM(state = 'pending'), SUM(state = 'too_old'),"
        " SUM(state = 'refused'), SUM(profile = 'crash' AND state = 'sent')"
        " FROM uploads WHERE (?1 = -1 AND state = 'pending') OR crash_id = ?1";
    static const char last[] =
        "SELECT a.time_ns, a.status, a.endpoint, a.error FROM upload_attempts a"
        " JOIN uploads u ON u.id = a.upload_id WHERE (?1 = -1 AND u.state = 'pending')"
        " OR u.crash_id = ?1 ORDER BY a.time_ns DESC LIMIT 1";
    sqlite3_stmt *st;
    memset(s, 0, sizeof *s);
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, crash_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        s->total = sqlite3_column_int(st, 0);
        s->sent = sqlite3_column_int(st, 1);
        s->pending = sqlite3_column_int(st, 2);
        s->too_old = sqlite3_column_int(st, 3);
        s->refused = sqlite3_column_int(st, 4);
        s->crash_profile_sent = sqlite3_column_int(st, 5);
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db->h, last, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, crash_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        s->last_attempt_ns = sqlite3_column_int64(st, 0);
        s->last_status = sqlite3_column_int(st, 1);
        const unsigned char *e = sqlite3_column_text(st, 2);
        snprintf(s->last_endpoint, sizeof s->last_endpoint, "%s", e ? (const char *)e : "");
        e = sqlite3_column_text(st, 3);
        snprintf(s->last_error, sizeof s->last_error, "%s", e ? (const char *)e : "");
    }
    sqlite3_finalize(st);
    return 0;
}

int cs_db_upload_claim(cs_db *db, int64_t id, int64_t now_s, int64_t lease_s, int force)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->h,
                           "UPDATE uploads SET next_attempt = ?2 + ?3 WHERE id = ?1"
                           " AND state = 'pending' AND (?4 OR next_attempt <= ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_s);
    sqlite3_bind_int64(st, 3, lease_s);
    sqlite3_bind_int(st, 4, force);
    int ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db->h) == 1;
    sqlite3_finalize(st);
    return ok;
}

int cs_db_process_meta(cs_db *db, int64_t process_id, cs_process_meta *m)
{
    sqlite3_stmt *st;
    memset(m, 0, sizeof *m);
    if (sqlite3_prepare_v2(db->h,
                           "SELECT app_name, tags, pid, cpu_hz, wall_hz, last_seen FROM processes"
                           " WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, process_id);
    int found = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *a = sqlite3_column_text(st, 0), *t = sqlite3_column_text(st, 1);
        snprintf(m->app_name, sizeof m->app_name, "%s", a ? (const char *)a : "unknown");
        snprintf(m->tags, sizeof m->tags, "%s", t ? (const char *)t : "");
        m->pid = sqlite3_column_int(st, 2);
        m->cpu_hz = sqlite3_column_int(st, 3);
        m->wall_hz = sqlite3_column_int(st, 4);
        m->last_seen = sqlite3_column_int64(st, 5);
        found = 1;
    }
    sqlite3_finalize(st);
    return found ? 0 : -1;
}
