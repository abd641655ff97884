/*
 * crashes.c: `crashscope crashes` and `crashscope inspect`.
 *
 * Both first ingest crash records left on disk, then read. A process that stopped being
 * seen without an exit or a crash record (SIGKILL, the OOM killer) is listed as a death.
 */
#include "cli.h"

#include "../storage/storage.h"
#include "../uploader/upload.h"
#include "ingest.h"
#include "json.h"
#include "report.h"
#include "signames.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A live process updates last_seen every second. One not seen for this long, whose pid is
 * no longer alive on this host, died without a word. */
#define DEATH_STALE_S 3

static int pid_alive(int pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* Processes that vanished are recorded as deaths by whoever reads first: the recorded
 * siblings, or this command. Best effort: a read-only database is simply read. */
static void mark_deaths(const char *path)
{
    char err[512], host[256] = "";
    gethostname(host, sizeof host - 1);
    cs_db *db = cs_db_open(path, 0, err, sizeof err);
    if (!db)
        return;
    if (cs_db_begin(db) == 0) {
        if (cs_db_mark_deaths(db, host, (int64_t)time(NULL) - DEATH_STALE_S, pid_alive) >= 0)
            cs_db_commit(db);
        else
            cs_db_rollback(db);
    }
    cs_db_close(db);
}

static cs_db *open_for_reading(const char *opt_db)
{
    cs_config c;
    cs_config_load(&c, 0);
    const char *path = cs_cli_db_path(opt_db, &c);
    if (!path) {
        cs_cli_error("no database: set CRASHSCOPE_DB or pass --db");
        return NULL;
    }
    if (access(path, F_OK) != 0) {
        cs_cli_error("%s does not exist: nothing has been recorded there yet", path);
        return NULL;
    }
    cs_ingest_pending(path);
    mark_deaths(path);
    char err[512];
    cs_db *db = cs_db_open(path, 1, err, sizeof err);
    if (!db)
        cs_cli_error("%s", err);
    return db;
}

static void where(cs_db *db, const cs_crash_row *c, char *out, size_t len)
{
    cs_frame_row *f;
    int n;
    out[0] = 0;
    if (!strcmp(c->kind, "death")) {
        snprintf(out, len, "vanished without exit or crash record (SIGKILL, OOM killer, SIGTERM?)");
        return;
    }
    if (c->stack_id <= 0 || cs_db_stack_frames(db, c->stack_id, &f, &n) != 0)
        return;
    cs_crash_where(f, n, out, len);
    cs_frames_free(f, n);
}

int cs_cmd_crashes(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *opt_db = NULL;
    int json = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'd')
            opt_db = optarg;
        else if (o == 'j')
            json = 1;
        else {
            fputs("usage: crashscope crashes [--db PATH] [--json]\n", o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    cs_db *db = open_for_reading(opt_db);
    if (!db)
        return 1;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cs_crash_row *rows;
    int n;
    if (cs_db_crashes(db, &rows, &n) != 0) {
        cs_cli_error("%s", cs_db_error(db));
        cs_db_close(db);
        return 1;
    }
    if (json)
        fputc('[', stdout);
    else if (n == 0)
        puts("no crashes recorded");
    else
        printf("%-5s %-23s %-6s %-8s %-16s %-8s %s\n", "ID", "WHEN (UTC)", "KIND", "PID", "APP",
               "SIGNAL", "WHERE");
    int shown = 0;
    for (int i = 0; i < n; i++) {
        cs_crash_row *c = &rows[i];
        char when[40], w[512], id[24];

        cs_format_time(c->time_ns, when, sizeof when, json);
        where(db, c, w, sizeof w);
        int death = !strcmp(c->kind, "death");
        if (json) {
            fputs(shown++ ? ",{" : "{", stdout);
            cs_json_key(stdout, "id", 1);
            printf("%" PRId64, c->id);
            cs_json_key(stdout, "kind", 0);
            cs_json_str(stdout, c->kind);
            cs_json_key(stdout, "time", 0);
            cs_json_str(stdout, when);
            cs_json_key(stdout, "pid", 0);
            printf("%d", c->pid);
            cs_json_key(stdout, "app", 0);
            cs_json_str(stdout, c->app_name);
            cs_json_key(stdout, "signal", 0);
            cs_json_str(stdout, death ? NULL : cs_signal_name(c->signo));
            cs_json_key(stdout, "code", 0);
            cs_json_str(stdout, death ? NULL : cs_code_name(c->signo, c->code));
            cs_json_key(stdout, "where", 0);
            cs_json_str(stdout, w);
            fputc('}', stdout);
        } else {
            snprintf(id, sizeof id, "%" PRId64, c->id);
            printf("%-5s %-23.23s %-6s %-8d %-16.16s %-8s %s\n", id, when, c->kind, c->pid,
                   c->app_name ? c->app_name : "?", death ? "-" : cs_signal_name(c->signo), w);
        }
        cs_crash_row_free(c);
    }
    if (json)
        puts("]");
    free(rows);
    cs_db_close(db);
    return 0;
}

int cs_cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"crash", required_argument, 0, 'c'},
                                         {"last", no_argument, 0, 'l'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *opt_db = NULL;
    long id = 0, seconds = 60;
    int json = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case 'd': opt_db = optarg; break;
        case 'l': id = 0; break;
        case 'j': json = 1; break;
        case 'c':
            id = strtol(optarg, &end, 10);
            if (*end || id <= 0) {
                cs_cli_error("--crash '%s' is not a crash id (see crashscope crashes)", optarg);
                return 2;
            }
            break;
        case 's':
            seconds = strtol(optarg, &end, 10);
            if (*end || seconds <= 0 || seconds > 7 * 86400) {
                cs_cli_error("--seconds '%s' is not a number of seconds", optarg);
                return 2;
            }
            break;
        default:
            fputs("usage: crashscope inspect [--db PATH] [--crash ID | --last] [--seconds N] "
                  "[--json]\n",
                  o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    cs_db *db = open_for_reading(opt_db);
    if (!db)
        return 1;
    cs_config c; /* the path again, for the commands the report suggests */
    cs_config_load(&c, 0);
    int rc = cs_report_print(db, cs_cli_db_path(opt_db, &c), id, (int)seconds, json, stdout);
    if (rc == 1)
        cs_cli_error(id ? "no crash %ld in this database (see crashscope crashes)"
                        : "no crashes recorded in this database%.0ld",
                     id);
    else if (rc < 0)
        cs_cli_error("%s", cs_db_error(db));
    cs_db_close(db);
    return rc == 0 ? 0 : 1;
}

int cs_cmd_ingest(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, 0, 'd'}, {0, 0, 0, 0}};
    const char *db = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (o == 'd')
            db = optarg;
    if (!db || optind >= argc) {
        fputs("usage: crashscope _ingest --db PATH RECORD (run by the crash handler)\n", stderr);
        return 2;
    }
    long long id = cs_ingest_record(db, argv[optind], 1);
    if (id <= 0)
        return id < 0 ? 1 : 0;
    /* The crash is stored: now, from this helper and never from the dying program, send it
     * with the window before it. What cannot be sent stays queued for `crashscope upload`. */
    cs_config c;
    cs_config_load(&c, 0);
    if (c.upload == CS_UPLOAD_OFF)
        return 0;
    char err[512];
    cs_db *h = cs_db_open(db, 0, err, sizeof err);
    if (!h)
        return 1;
    int rc = 0;
    if (cs_upload_queue_crash(h, &c, id) < 0) {
        fprintf(stderr, "crashscope: could not prepare the upload of crash %lld: %s\n", id,
                cs_db_error(h));
        rc = 1;
    } else {
        cs_upload_report rep;
        cs_upload_send_due(h, &c, 0, (int64_t)time(NULL) + 30, &rep);
    }
    cs_db_close(h);
    return rc;
}
