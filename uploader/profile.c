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
    const cs_value_type *types;
    int ntypes;
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
    int64_t values[CS_MAX_VALUE_TYPES];
    for (int i = 0; i < x->ntypes; i++)
        values[i] = x->types[i].column == CS_COLUMN_VALUE ? r->value : r->count;
    int rc = cs_pprof_add_sample(x->pp, pf, (size_t)n, values, labels, (size_t)nl);
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
    const cs_value_type both[] = {{"samples", "count", CS_COLUMN_COUNT},
                                  {q->profile, "nanoseconds", CS_COLUMN_VALUE}};
    /* what the Pyroscope SDKs send: the time only */
    const cs_value_type *types = flavour == CS_PROFILE_UPLOAD ? both + 1 : both;
    return cs_profile_build_types(db, q, q->profile, "nanoseconds", period, from_ns, duration_ns,
                                  flavour, types, flavour == CS_PROFILE_UPLOAD ? 1 : 2, nstacks);
}

cs_pprof *cs_profile_build_types(cs_db *db, const cs_query *q, const char *period_type,
                                 const char *period_unit, int64_t period, int64_t from_ns,
                                 int64_t duration_ns, int flavour, const cs_value_type *types,
                                 int ntypes, size_t *nstacks)
{
    if (ntypes < 1 || ntypes > CS_MAX_VALUE_TYPES)
        return NULL;
    cs_pprof *pp = cs_pprof_new(period_type, period_unit, period, from_ns, duration_ns);
    if (!pp)
        return NULL;
    for (int i = 0; i < ntypes; i++)
        if (cs_pprof_add_sample_type(pp, types[i].type, types[i].unit) < 0) {
            cs_pprof_free(pp);
            return NULL;
        }
    build_ctx x = {.db = db, .pp = pp, .flavour = flavour, .types = types, .ntypes = ntypes};
    if (cs_db_profile_rows(db, q, on_row, &x) != 0 || x.failed) {
        cs_pprof_free(pp);
        return NULL;
    }
    if (nstacks)
        *nstacks = x.stacks;
    return pp;
}

static const cs_export_type export_types[] = {
    {"alloc_objects", "alloc", 0, {"alloc_objects", "count", CS_COLUMN_COUNT}, "space", "bytes"},
    {"alloc_space", "alloc", 0, {"alloc_space", "bytes", CS_COLUMN_VALUE}, "space", "bytes"},
    {"inuse_objects", "inuse", 1, {"inuse_objects", "count", CS_COLUMN_COUNT}, "space", "bytes"},
    {"inuse_space", "inuse", 1, {"inuse_space", "bytes", CS_COLUMN_VALUE}, "space", "bytes"},
    {"threads", "threads", 1, {"threads", "count", CS_COLUMN_COUNT}, "threads", "count"},
};

const cs_export_type *cs_export_type_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof export_types / sizeof export_types[0]; i++)
        if (!strcmp(export_types[i].name, name))
            return &export_types[i];
    return NULL;
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
