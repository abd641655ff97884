/*
 * profile.c: turns rows of the window into pprof profiles.
 *
 * Read-only over the database. Frames without a symbol keep module+offset as their name, so
 * flame graphs never merge unrelated code; stacks a concurrent garbage collection removed are
 * skipped, never invented.
 */
#include "profile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cs_frame_name(const cs_frame_row *f, char *buf, size_t len)
{
    if (f->function && *f->function)
        return f->function;
    const char *b = f->module ? strrchr(f->module, '/') : NULL;
    if (f->module)
        snprintf(buf, len, "%s+0x%" PRIx64, b ? b + 1 : f->module, f->address);
    else
        snprintf(buf, len, "0x%" PRIx64, f->address);
    return buf;
}

/* Frames of STACK_ID as pprof frames; names of unsymbolized frames are written into the rows
 * so that they live as long as the rows. */
static cs_pprof_frame *to_pprof(cs_frame_row *fr, int n)
{
    cs_pprof_frame *pf = calloc((size_t)n + 1, sizeof *pf);
    if (!pf)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (!fr[i].function || !*fr[i].function) {
            char tmp[96];
            const char *name = cs_frame_name(&fr[i], tmp, sizeof tmp);
            char *copy = strdup(name);
            if (!copy) {
                free(pf);
                return NULL;
            }
            free(fr[i].function);
            fr[i].function = copy;
        }
        pf[i].function = fr[i].function;
        pf[i].file = fr[i].file;
        pf[i].line = fr[i].line;
        pf[i].module = fr[i].module;
        pf[i].build_id = fr[i].build_id;
        pf[i].address = fr[i].address;
    }
    return pf;
}

typedef struct build_ctx {
    cs_db *db;
    cs_pprof *pp;
    int flavour;
    size_t stacks;
    int failed;
} build_ctx;

static int on_row(const cs_profile_row *r, void *arg)
{
    build_ctx *x = arg;
    cs_frame_row *fr;
    int n;
    if (cs_db_stack_frames(x->db, r->stack_id, &fr, &n) != 0)
        return 0; /* collected meanwhile by another process */
    cs_pprof_frame *pf = to_pprof(fr, n);
    if (!pf) {
        cs_frames_free(fr, n);
        x->failed = 1;
        return -1;
    }
    char tid[16];
    snprintf(tid, sizeof tid, "%d", r->tid);
    const char *tname = r->thread_name ? r->thread_name : "";
    /* the thread's tags and GIL state: "k=v,k=v" */
    cs_pprof_label labels[3 + 20];
    int nl = 0;
    labels[nl++] = (cs_pprof_label){.key = "thread_name", .str = tname};
    if (x->flavour == CS_PROFILE_UPLOAD) {
        labels[nl++] = (cs_pprof_label){.key = "thread_id", .str = tid};
    } else {
        labels[nl++] = (cs_pprof_label){.key = "thread_id", .num = r->tid};
        labels[nl++] = (cs_pprof_label){.key = "pid", .num = r->pid};
    }
    char tags[512];
    snprintf(tags, sizeof tags, "%s", r->labels ? r->labels : "");
    for (char *save = NULL, *t = strtok_r(tags, ",", &save); t && nl < 23;
         t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq)
            continue;
        *eq = 0;
        labels[nl++] = (cs_pprof_label){.key = t, .str = eq + 1};
    }
    int rc;
    if (x->flavour == CS_PROFILE_UPLOAD) {
        int64_t v = r->value;
        rc = cs_pprof_add_sample(x->pp, pf, (size_t)n, &v, labels, (size_t)nl);
    } else {
        int64_t values[2] = {r->count, r->value};
        rc = cs_pprof_add_sample(x->pp, pf, (size_t)n, values, labels, (size_t)nl);
    }
    free(pf);
    cs_frames_free(fr, n);
    if (rc != 0) {
        x->failed = 1;
        return -1;
    }
    x->stacks++;
    return 0;
}

cs_pprof *cs_profile_build(cs_db *db, const cs_query *q, int hz, int64_t from_ns,
                           int64_t duration_ns, int flavour, size_t *nstacks)
{
    int64_t period = 1000000000LL / (hz > 0 ? hz : 100);
    cs_pprof *pp = cs_pprof_new(q->profile, "nanoseconds", period, from_ns, duration_ns);
    if (!pp)
        return NULL;
    if ((flavour == CS_PROFILE_EXPORT && cs_pprof_add_sample_type(pp, "samples", "count") < 0) ||
        cs_pprof_add_sample_type(pp, q->profile, "nanoseconds") < 0) {
        cs_pprof_free(pp);
        return NULL;
    }
    build_ctx x = {.db = db, .pp = pp, .flavour = flavour};
    if (cs_db_profile_rows(db, q, on_row, &x) != 0 || x.failed) {
        cs_pprof_free(pp);
        return NULL;
    }
    if (nstacks)
        *nstacks = x.stacks;
    return pp;
}

cs_pprof *cs_profile_crash(cs_db *db, const cs_crash_row *c, const char *signal_name)
{
    cs_pprof *pp = cs_pprof_new("crashes", "count", 1, c->time_ns, 1000000000LL);
    if (!pp || cs_pprof_add_sample_type(pp, "crashes", "count") < 0) {
        cs_pprof_free(pp);
        return NULL;
    }
    cs_frame_row *fr = NULL;
    int n = 0;
    if (c->stack_id > 0 && cs_db_stack_frames(db, c->stack_id, &fr, &n) != 0)
        n = 0;
    cs_pprof_frame *pf = to_pprof(fr, n);
    char tid[16];
    snprintf(tid, sizeof tid, "%d", c->tid);
    int64_t one = 1;
    cs_pprof_label labels[3] = {{.key = "thread_name", .str = c->thread_name ? c->thread_name : ""},
                                {.key = "thread_id", .str = tid},
                                {.key = "crash_signal", .str = signal_name}};
    int rc = pf ? cs_pprof_add_sample(pp, pf, (size_t)n, &one, labels, 3) : -1;
    free(pf);
    cs_frames_free(fr, n);
    if (rc != 0) {
        cs_pprof_free(pp);
        return NULL;
    }
    return pp;
}
