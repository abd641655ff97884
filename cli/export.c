/*
 * export.c: `crashscope export`: writes a profile of the window as pprof or folded stacks.
 *
 * Reads the database without writing it. An empty selection is an error the user can act
 * on (wrong --pid, nothing recorded yet), never an empty file that looks like a profile.
 */
#include "cli.h"

#include "../storage/storage.h"
#include "../uploader/profile.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct folded_line {
    char *text;
    int64_t count;
} folded_line;

typedef struct export_ctx {
    cs_db *db;
    FILE *folded;
    /* Different addresses in one function fold to the same line: merged before writing. */
    folded_line *lines;
    size_t nlines, cap_lines;
    size_t *index;
    size_t index_cap;
    size_t rows;
    int failed;
    int column; /* CS_COLUMN_*: what the folded counts are */
} export_ctx;

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Takes ownership of TEXT. */
static int add_folded(export_ctx *x, char *text, int64_t count)
{
    if ((x->nlines + 1) * 2 > x->index_cap) {
        size_t cap = x->index_cap ? x->index_cap * 2 : 1024;
        size_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
            goto fail;
        for (size_t i = 0; i < x->nlines; i++) {
            size_t p = hash_str(x->lines[i].text) & (cap - 1);
            while (idx[p])
                p = (p + 1) & (cap - 1);
            idx[p] = i + 1;
        }
        free(x->index);
        x->index = idx;
        x->index_cap = cap;
    }
    size_t p = hash_str(text) & (x->index_cap - 1);
    for (; x->index[p]; p = (p + 1) & (x->index_cap - 1)) {
        folded_line *l = &x->lines[x->index[p] - 1];
        if (!strcmp(l->text, text)) {
            l->count += count;
            free(text);
            return 0;
        }
    }
    if (x->nlines == x->cap_lines) {
        size_t cap = x->cap_lines ? x->cap_lines * 2 : 256;
        folded_line *l = realloc(x->lines, cap * sizeof *l);
        if (!l)
            goto fail;
        x->lines = l;
        x->cap_lines = cap;
    }
    x->lines[x->nlines] = (folded_line){text, count};
    x->index[p] = ++x->nlines;
    return 0;
fail:
    free(text);
    return -1;
}

static int on_row(const cs_profile_row *r, void *arg)
{
    export_ctx *x = arg;
    cs_frame_row *fr;
    int n;
    if (cs_db_stack_frames(x->db, r->stack_id, &fr, &n) != 0)
        return 0; /* a stack collected meanwhile by another process: skip it */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m) {
        x->failed = 1;
    } else {
        for (int i = n - 1; i >= 0; i--) {
            char tmp[96];
            const char *name = cs_frame_name(&fr[i], tmp, sizeof tmp);
            for (const char *c = name; *c; c++) /* ';' and ' ' separate folded fields */
                fputc(*c == ';' || *c == ' ' ? '_' : *c, m);
            if (i)
                fputc(';', m);
        }
        if (fclose(m) != 0 ||
            add_folded(x, text, x->column == CS_COLUMN_VALUE ? r->value : r->count) != 0)
            x->failed = 1;
    }
    cs_frames_free(fr, n);
    x->rows++;
    return x->failed ? -1 : 0;
}

static void usage(void)
{
    fputs("usage: crashscope export --type TYPE [--format pprof|folded] [--pid N]\n"
          "                         [--seconds N] [--db PATH] -o FILE\n"
          "  TYPE          cpu, wall, alloc_objects, alloc_space (summed over the range),\n"
          "                inuse_objects, inuse_space, threads (the state at its end)\n"
          "  --seconds N   only the last N seconds of the window (default: all of it)\n"
          "  --until T     the range ends at T (seconds since 1970; default: the latest)\n"
          "  -o -          folded output to standard output\n",
          stderr);
}

int cs_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"type", required_argument, 0, 't'},
                                         {"format", required_argument, 0, 'f'},
                                         {"pid", required_argument, 0, 'p'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"db", required_argument, 0, 'd'},
                                         {"output", required_argument, 0, 'o'},
                                         {"until", required_argument, 0, 'u'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *type = NULL, *format = "pprof", *out = NULL, *opt_db = NULL;
    long pid = 0, seconds = 0;
    long long until_opt = 0;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case 't': type = optarg; break;
        case 'f': format = optarg; break;
        case 'd': opt_db = optarg; break;
        case 'o': out = optarg; break;
        case 'p':
            pid = strtol(optarg, &end, 10);
            if (*end || pid <= 0) {
                cs_cli_error("--pid '%s' is not a process id", optarg);
                return 2;
            }
            break;
        case 's':
            seconds = strtol(optarg, &end, 10);
            if (*end || seconds <= 0) {
                cs_cli_error("--seconds '%s' is not a positive number", optarg);
                return 2;
            }
            break;
        case 'u':
            until_opt = strtoll(optarg, &end, 10);
            if (*end || until_opt <= 0) {
                cs_cli_error("--until '%s' is not a time in seconds since 1970", optarg);
                return 2;
            }
            break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    const cs_export_type *et = cs_export_type_find(type);
    if (!type || (strcmp(type, "cpu") && strcmp(type, "wall") && !et)) {
        cs_cli_error("--type must be cpu, wall, alloc_objects, alloc_space, inuse_objects,"
                     " inuse_space or threads");
        usage();
        return 2;
    }
    const char *stored = et ? et->stored : type;
    if (strcmp(format, "pprof") && strcmp(format, "folded")) {
        cs_cli_error("--format must be pprof or folded");
        return 2;
    }
    if (!out) {
        cs_cli_error("-o FILE is required");
        usage();
        return 2;
    }
    cs_config c;
    cs_config_load(&c, 0);
    const char *path = cs_cli_db_path(opt_db, &c);
    if (!path) {
        cs_cli_error("no database: set CRASHSCOPE_DB or pass --db");
        return 1;
    }
    char err[512];
    cs_db *db = cs_db_open(path, 1, err, sizeof err);
    if (!db) {
        cs_cli_error("%s", err);
        return 1;
    }
    int64_t from = 0, until = 0;
    if (!cs_db_time_range(db, stored, (int)pid, &from, &until)) {
        const char *what = !strcmp(stored, "alloc") || !strcmp(stored, "inuse")
                               ? " (allocation sampling off? CRASHSCOPE_HEAP_SAMPLE_BYTES)"
                               : "";
        if (pid)
            cs_cli_error("no %s samples of pid %ld in %s%s", stored, pid, path, what);
        else
            cs_cli_error("no %s samples in %s yet%s", stored, path, what);
        cs_db_close(db);
        return 1;
    }
    if (until_opt && until_opt < until)
        until = until_opt;
    if (until < from) {
        cs_cli_error("nothing recorded before --until %lld (the window starts at %" PRId64 ")",
                     until_opt, from);
        cs_db_close(db);
        return 1;
    }
    if (seconds && until - seconds + 1 > from)
        from = until - seconds + 1;
    int cpu_hz, wall_hz;
    cs_db_rates(db, (int)pid, &cpu_hz, &wall_hz);
    int hz = !strcmp(type, "cpu") ? cpu_hz : wall_hz;
    if (hz <= 0)
        hz = !strcmp(type, "cpu") ? CS_DEFAULT_CPU_HZ : CS_DEFAULT_WALL_HZ;

    cs_query q = {.profile = stored, .pid = (int)pid, .from_ts = from, .until_ts = until};
    if (et && et->snapshot) {
        /* the state at the end of the window: the latest second each process recorded */
        q.snapshot = 1;
        q.from_ts = 0;
        q.until_ts = until_opt ? until : 0;
    }
    export_ctx x = {.db = db, .column = et ? et->value.column : CS_COLUMN_COUNT};
    int rc = 0;
    if (!strcmp(format, "pprof")) {
        cs_pprof *pp =
            et ? cs_profile_build_types(db, &q, et->period_type, et->period_unit,
                                        !strcmp(et->period_unit, "bytes") ? c.heap_sample_bytes : 1,
                                        from * 1000000000LL, (until - from + 1) * 1000000000LL,
                                        CS_PROFILE_EXPORT, &et->value, 1, &x.rows)
               : cs_profile_build(db, &q, hz, from * 1000000000LL,
                                  (until - from + 1) * 1000000000LL, CS_PROFILE_EXPORT, &x.rows);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (!pp || cs_pprof_encode(pp, 1, &buf, &len) != 0) {
            cs_cli_error("reading %s failed: %s", path, pp ? "cannot encode" : cs_db_error(db));
            rc = 1;
        } else {
            FILE *f = fopen(out, "wb");
            if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
                cs_cli_error("cannot write %s: %s", out, strerror(errno));
                rc = 1;
            }
        }
        free(buf);
        cs_pprof_free(pp);
    } else {
        x.folded = !strcmp(out, "-") ? stdout : fopen(out, "w");
        if (!x.folded) {
            cs_cli_error("cannot write %s: %s", out, strerror(errno));
            cs_db_close(db);
            return 1;
        }
        if (cs_db_profile_rows(db, &q, on_row, &x) != 0 || x.failed) {
            cs_cli_error("reading %s failed: %s", path,
                         x.failed ? "out of memory" : cs_db_error(db));
            rc = 1;
        }
        for (size_t i = 0; i < x.nlines; i++) {
            if (rc == 0)
                fprintf(x.folded, "%s %" PRId64 "\n", x.lines[i].text, x.lines[i].count);
            free(x.lines[i].text);
        }
        free(x.lines);
        free(x.index);
        if ((x.folded != stdout ? fclose(x.folded) : fflush(stdout)) != 0)
            rc = 1;
    }
    if (rc == 0)
        fprintf(stderr,
                "crashscope: wrote %zu stacks of %s samples (%" PRId64 "..%" PRId64 ") to %s\n",
                x.rows, type, from, until, out);
    cs_db_close(db);
    return rc;
}
