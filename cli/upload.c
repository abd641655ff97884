/*
 * upload.c: `crashscope upload`: sends what is queued for Pyroscope, and in continuous mode
 * (`--follow`) keeps cutting and sending 10-second slices of every recorded process.
 *
 * One follower per database (an flock on <db>.uploader.lock); it leaves by itself once no
 * recorded process has been seen for 15 seconds. Prints counts and errors, never a secret.
 */
#include "cli.h"

#include "../storage/storage.h"
#include "../uploader/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_PERIOD_S 2
#define FOLLOW_IDLE_S   15

static int open_db(const char *path, cs_db **db)
{
    char err[512];
    *db = cs_db_open(path, 0, err, sizeof err);
    if (!*db)
        cs_cli_error("%s", err);
    return *db ? 0 : -1;
}

static int follow(const char *path, const cs_config *c)
{
    char lock[PATH_MAX];
    snprintf(lock, sizeof lock, "%s.uploader.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
        return 0; /* another follower serves this database */
    int64_t last_active = (int64_t)time(NULL);
    while ((int64_t)time(NULL) - last_active < FOLLOW_IDLE_S) {
        cs_db *db;
        if (open_db(path, &db) == 0) {
            int64_t now = (int64_t)time(NULL);
            int queued = cs_upload_queue_slices(db, c, now);
            int64_t *ids;
            int n = 0;
            if (cs_db_active_processes(db, now - 5, &ids, &n) == 0) {
                free(ids);
                if (n > 0)
                    last_active = now;
            }
            cs_upload_report rep;
            cs_upload_send_due(db, c, 0, now + 30, &rep);
            (void)queued;
            cs_db_close(db);
        }
        sleep(FOLLOW_PERIOD_S);
    }
    close(fd);
    return 0;
}

int cs_cmd_upload(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"follow", no_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *opt_db = NULL;
    int follow_mode = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'd')
            opt_db = optarg;
        else if (o == 'f')
            follow_mode = 1;
        else {
            fputs("usage: crashscope upload [--db PATH] [--follow]\n"
                  "  sends every profile still queued for Pyroscope (CRASHSCOPE_SERVER_URL)\n",
                  o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    cs_config c;
    cs_config_load(&c, 1);
    const char *path = cs_cli_db_path(opt_db, &c);
    if (!path) {
        cs_cli_error("no database: set CRASHSCOPE_DB or pass --db");
        return 1;
    }
    if (!c.server_url[0]) {
        cs_cli_error("no server: set CRASHSCOPE_SERVER_URL (and the credentials) to upload");
        return 1;
    }
    if (follow_mode)
        return follow(path, &c);
    cs_db *db;
    if (access(path, F_OK) != 0) {
        cs_cli_error("%s does not exist: nothing has been recorded there yet", path);
        return 1;
    }
    if (open_db(path, &db) != 0)
        return 1;
    cs_upload_report rep;
    int rc = cs_upload_send_due(db, &c, 1, (int64_t)time(NULL) + 600, &rep);
    cs_upload_summary left;
    cs_db_upload_summary(db, -1, &left);
    char shown[1024];
    cs_config_redact_url(c.server_url, shown, sizeof shown);
    printf("crashscope: %d profiles sent to %s, %d still pending, %d too old to upload "
           "(older than 1 h; they stay in the local window), %d refused by the server\n",
           rep.sent, shown, left.pending, rep.too_old, rep.refused);
    if (rep.last_error[0])
        printf("crashscope: last error: %s\n", rep.last_error);
    cs_db_close(db);
    return rc == 0 && left.pending == 0 && rep.refused == 0 ? 0 : 1;
}
