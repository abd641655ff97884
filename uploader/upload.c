/*
 * upload.c: slicing, queueing and sending profiles to Pyroscope.
 *
 * Invariants: a profile is in the queue (with its body) before its first attempt, so a dead
 * server loses nothing; a slice is queued at most once (UNIQUE key) and sent at most once by
 * concurrent senders (a lease on the row); profiles are never re-stamped: what is older than
 * Pyroscope accepts is marked too old and stays inspectable locally. Labels and recorded
 * endpoints never contain a secret.
 */
#include "upload.h"

#include "profile.h"
#include "push.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_S 60

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Appends "name=value\n"; values lose characters that would break the line format. */
static void add_label(char *out, size_t len, const char *name, const char *value)
{
    size_t o = strlen(out);
    int n = snprintf(out + o, len - o, "%s=", name);
    if (n < 0 || (size_t)n >= len - o)
        return;
    o += (size_t)n;
    for (const char *v = value; *v && o + 2 < len; v++)
        out[o++] = *v == '\n' || *v == '\r' ? ' ' : *v;
    out[o++] = '\n';
    out[o] = 0;
}

static void base_labels(char *out, size_t len, const cs_process_meta *m, const char *name)
{
    out[0] = 0;
    add_label(out, len, "__name__", name);
    add_label(out, len, "service_name", m->app_name[0] ? m->app_name : "unknown");
    /* user tags: "k=v,k=v" */
    char tags[1024];
    snprintf(tags, sizeof tags, "%s", m->tags);
    for (char *save = NULL, *t = strtok_r(tags, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq || !strcmp(t, "service_name"))
            continue;
        *eq = 0;
        add_label(out, len, t, eq + 1);
    }
}

static int64_t queue_profile(cs_db *db, cs_pprof *pp, const cs_upload_row *proto)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!pp || cs_pprof_encode(pp, 1, &buf, &len) != 0) {
        free(buf);
        return -1;
    }
    cs_upload_row u = *proto;
    u.body = buf;
    u.body_len = len;
    int64_t id = cs_db_upload_add(db, &u, (int64_t)time(NULL));
    free(buf);
    return id;
}

static int queue_slices(cs_db *db, const cs_process_meta *m, int64_t process_id, int64_t from,
                        int64_t until, int64_t crash_id, const char *phase,
                        const char *extra_labels)
{
    /* Memory goes as Pyroscope's Go SDK sends it: sample types alloc_objects/alloc_space
     * (what the slice allocated) and inuse_objects/inuse_space (what was live at its end),
     * which the server files under "memory"; threads as a profile of their own. */
    static const cs_value_type alloc_types[] = {{"alloc_objects", "count", CS_COLUMN_COUNT},
                                                {"alloc_space", "bytes", CS_COLUMN_VALUE}};
    static const cs_value_type inuse_types[] = {{"inuse_objects", "count", CS_COLUMN_COUNT},
                                                {"inuse_space", "bytes", CS_COLUMN_VALUE}};
    static const cs_value_type thread_types[] = {{"threads", "count", CS_COLUMN_COUNT}};
    static const struct {
        const char *profile, *name;
        const cs_value_type *types; /* NULL: cpu or wall */
        int ntypes, snapshot;
        const char *period_type, *period_unit;
    } kinds[] = {
        {"cpu", "process_cpu", NULL, 0, 0, NULL, NULL},
        {"wall", "wall", NULL, 0, 0, NULL, NULL},
        {"alloc", "memory", alloc_types, 2, 0, "space", "bytes"},
        {"inuse", "memory", inuse_types, 2, 1, "space", "bytes"},
        {"threads", "threads", thread_types, 1, 1, "threads", "count"},
    };
    int queued = 0;
    for (int64_t s = from; s < until; s += CS_SLICE_SECONDS) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            int hz = k == 1 ? m->wall_hz : m->cpu_hz;
            cs_query q = {.profile = kinds[k].profile,
                          .process_id = process_id,
                          .from_ts = s,
                          .until_ts = s + CS_SLICE_SECONDS - 1,
                          .snapshot = kinds[k].snapshot};
            size_t stacks = 0;
            cs_pprof *pp =
                kinds[k].types
                    ? cs_profile_build_types(
                          db, &q, kinds[k].period_type, kinds[k].period_unit,
                          !strcmp(kinds[k].period_unit, "bytes") ? CS_DEFAULT_HEAP_SAMPLE_BYTES : 1,
                          s * 1000000000LL, CS_SLICE_SECONDS * 1000000000LL, CS_PROFILE_UPLOAD,
                          kinds[k].types, kinds[k].ntypes, &stacks)
                    : cs_profile_build(db, &q, hz, s * 1000000000LL,
                                       CS_SLICE_SECONDS * 1000000000LL, CS_PROFILE_UPLOAD, &stacks);
            if (!pp)
                return -1;
            if (stacks == 0) {
                cs_pprof_free(pp);
                continue;
            }
            char labels[4096];
            base_labels(labels, sizeof labels, m, kinds[k].name);
            strncat(labels, extra_labels, sizeof labels - strlen(labels) - 1);
            cs_upload_row u = {.process_id = process_id,
                               .crash_id = crash_id,
                               .slice_from = s,
                               .slice_until = s + CS_SLICE_SECONDS,
                               .labels = labels,
                               .sample_rate = hz};
            snprintf(u.profile, sizeof u.profile, "%s", kinds[k].profile);
            snprintf(u.phase, sizeof u.phase, "%s", phase);
            int64_t id = queue_profile(db, pp, &u);
            cs_pprof_free(pp);
            if (id < 0)
                return -1;
            queued += id > 0;
        }
    }
    return queued;
}

int cs_upload_queue_crash(cs_db *db, const cs_config *cfg, int64_t crash_id)
{
    cs_crash_row c;
    if (cs_db_crash_get(db, crash_id, &c) != 1)
        return -1;
    cs_process_meta m;
    if (cs_db_process_meta(db, c.process_id, &m) != 0) {
        cs_crash_row_free(&c);
        return -1;
    }
    char sig[32], extra[256];
    if (!strcmp(c.kind, "death"))
        snprintf(sig, sizeof sig, "none");
    else
        snprintf(sig, sizeof sig, "%s", sigabbrev_np(c.signo) ? sigabbrev_np(c.signo) : "?");
    char signame[40];
    snprintf(signame, sizeof signame, "%s%s", strcmp(sig, "none") && strcmp(sig, "?") ? "SIG" : "",
             sig);
    snprintf(extra, sizeof extra, "crash_id=%" PRId64 "\ncrash_signal=%s\ncrash_kind=%s\n", c.id,
             signame, c.kind);
    int64_t crash_s = c.time_ns / 1000000000;
    int64_t from = (crash_s - cfg->flush_seconds + 1) / CS_SLICE_SECONDS * CS_SLICE_SECONDS;
    char pre[300];
    snprintf(pre, sizeof pre, "%sphase=pre_crash\n", extra);
    int queued = queue_slices(db, &m, c.process_id, from, crash_s + 1, c.id, "pre_crash", pre);
    if (queued >= 0 && strcmp(c.kind, "death") != 0) {
        char labels[4096];
        base_labels(labels, sizeof labels, &m, "crash");
        strncat(labels, extra, sizeof labels - strlen(labels) - 1);
        strncat(labels, "phase=crash\n", sizeof labels - strlen(labels) - 1);
        cs_pprof *pp = cs_profile_crash(db, &c, signame);
        cs_upload_row u = {.process_id = c.process_id,
                           .crash_id = c.id,
                           .slice_from = crash_s,
                           .slice_until = crash_s + 1,
                           .labels = labels,
                           .sample_rate = 1};
        snprintf(u.profile, sizeof u.profile, "crash");
        snprintf(u.phase, sizeof u.phase, "crash");
        int64_t id = queue_profile(db, pp, &u);
        cs_pprof_free(pp);
        queued = id < 0 ? -1 : queued + (id > 0);
    }
    cs_crash_row_free(&c);
    return queued;
}

int cs_upload_queue_slices(cs_db *db, const cs_config *cfg, int64_t now_s)
{
    (void)cfg;
    int64_t *ids;
    int n, total = 0;
    if (cs_db_active_processes(db, now_s - 3 * CS_SLICE_SECONDS, &ids, &n) != 0)
        return -1;
    /* A slice is closed when the writer (once a second) cannot add to it any more. */
    int64_t closed = (now_s - 2) / CS_SLICE_SECONDS * CS_SLICE_SECONDS;
    for (int i = 0; i < n; i++) {
        cs_process_meta m;
        if (cs_db_process_meta(db, ids[i], &m) != 0)
            continue;
        int64_t from = cs_db_upload_cursor(db, ids[i]);
        if (from == 0 || from < closed - CS_MAX_AGE_SECONDS)
            from = closed - CS_SLICE_SECONDS;
        if (from >= closed)
            continue;
        int q = queue_slices(db, &m, ids[i], from, closed, 0, "continuous", "");
        if (q < 0 || cs_db_upload_cursor_set(db, ids[i], closed) != 0) {
            free(ids);
            return -1;
        }
        total += q;
    }
    free(ids);
    return total;
}

static int parse_labels(char *text, cs_label *out, int max)
{
    int n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < max;
         l = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = 0;
        out[n].name = l;
        out[n].value = eq + 1;
        n++;
    }
    return n;
}

int cs_upload_send_due(cs_db *db, const cs_config *cfg, int force, int64_t deadline_s,
                       cs_upload_report *rep)
{
    memset(rep, 0, sizeof *rep);
    cs_server srv = {.url = cfg->server_url,
                     .user = cfg->user[0] ? cfg->user : NULL,
                     .password = cfg->password[0] ? cfg->password : NULL,
                     .tenant = cfg->tenant[0] ? cfg->tenant : NULL,
                     .api = cfg->upload_ingest ? CS_API_INGEST : CS_API_PUSH};
    int push_unsupported = 0;
    int64_t after = 0;
    for (;;) {
        int64_t now = (int64_t)time(NULL);
        if (now >= deadline_s)
            break;
        cs_upload_row *rows;
        int n;
        if (cs_db_uploads_due(db, now, force, after, 32, &rows, &n) != 0)
            return -1;
        int stop = n == 0;
        for (int i = 0; i < n && !stop && (int64_t)time(NULL) < deadline_s; i++) {
            cs_upload_row *u = &rows[i];
            after = u->id; /* each upload is tried at most once per call */
            now = (int64_t)time(NULL);
            if (!cs_db_upload_claim(db, u->id, now, LEASE_S, force))
                continue; /* another sender has it */
            if (u->slice_from < now - CS_MAX_AGE_SECONDS || !u->body) {
                cs_db_upload_result(db, u->id, "too_old", 0, 0, NULL, 0,
                                    "older than Pyroscope accepts (1 hour)", now_ns());
                rep->too_old++;
                continue;
            }
            cs_label labels[64];
            int nl = parse_labels(u->labels, labels, 64);
            cs_send_result r;
            int ok = cs_push_send(&srv, labels, (size_t)nl, u->body, u->body_len,
                                  u->slice_from * 1000000000LL, u->slice_until * 1000000000LL,
                                  u->sample_rate, &push_unsupported, &r);
            const char *state = ok == 0 ? "sent" : r.retryable ? "pending" : "refused";
            /* backoff: 5 s, 10 s, 20 s ... up to 10 minutes */
            int64_t backoff = 5LL << (u->attempts < 7 ? u->attempts : 7);
            if (backoff > 600)
                backoff = 600;
            cs_db_upload_result(db, u->id, state, now + backoff, r.http_status, r.endpoint, r.bytes,
                                r.error, now_ns());
            if (ok == 0) {
                rep->sent++;
            } else {
                if (r.retryable)
                    rep->retry++;
                else
                    rep->refused++;
                snprintf(rep->last_error, sizeof rep->last_error, "%s", r.error);
                /* The server is down or overloaded: the rest waits for the backoff. */
                if (r.retryable)
                    stop = 1;
            }
        }
        cs_upload_rows_free(rows, n);
        if (stop)
            break;
    }
    return 0;
}
