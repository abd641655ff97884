/*
 * config.h: crashscope's settings, read from the environment.
 *
 * The shim and every `crashscope` subcommand read the same variables through this one
 * parser, so a setting means the same thing everywhere. Parsing never fails: a bad value
 * is reported once (one line naming the variable and the value) and replaced by its
 * default. Must never allocate after start-up or abort the host program.
 */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <limits.h>
#include <stddef.h>

#define CS_DEFAULT_CPU_HZ            100
#define CS_DEFAULT_WALL_HZ           97
#define CS_DEFAULT_WINDOW_SECONDS    300
#define CS_DEFAULT_HEAP_SAMPLE_BYTES (512 * 1024)
#define CS_MAX_HZ                    1000

enum cs_upload_mode { CS_UPLOAD_OFF = 0, CS_UPLOAD_CRASH = 1, CS_UPLOAD_CONTINUOUS = 2 };

typedef struct cs_config {
    int enabled; /* 0: the shim does nothing at all */
    char db_path[PATH_MAX];
    char app_name[256]; /* empty: derive from the program */
    char tags[1024];    /* normalised "k=v,k=v" */
    int cpu_hz;         /* 0: cpu sampling off */
    int wall_hz;        /* 0: wall sampling off */
    int window_seconds;
    int heap_sample_bytes; /* mean bytes between allocation samples; 0: off */
    int python_malloc;     /* 1: PYTHONMALLOC=malloc, so small Python objects are seen */
    /* Pyroscope. The password lives here and in the environment only: never printed, never
     * stored in the database. */
    char server_url[1024];
    char user[256];
    char password[1024];
    char tenant[256];
    int upload;        /* enum cs_upload_mode */
    int flush_seconds; /* how much of the window a crash upload carries */
    int upload_ingest; /* 1: always the legacy /ingest API */
} cs_config;

/* SERVER_URL without any user:password@ part, for messages. */
void cs_config_redact_url(const char *url, char *out, size_t len);

/* Fills C from the environment. Problems are written to stderr, prefixed "crashscope: ",
 * only when WARN is non-zero (the CLI re-reads quietly what the shim already reported). */
void cs_config_load(cs_config *c, int warn);

/* The default database path: $XDG_STATE_HOME/crashscope/crashscope.db, else
 * $HOME/.local/state/crashscope/crashscope.db. Returns 0, or -1 when neither is set. */
int cs_config_default_db(char *out, size_t len);

/* Validates and normalises a "k=v,k=v" tag list into OUT. Returns 0 or -1 with a reason. */
int cs_config_parse_tags(const char *in, char *out, size_t len, const char **why);

/* Creates the parent directories of PATH (mode 0700). Returns 0 or -1 with errno set. */
int cs_config_make_parent_dirs(const char *path);

/* Writes "crashscope: MSG\n" to stderr with one write() so lines of several processes do
 * not interleave. Safe to call from any thread, never from a signal handler. */
void cs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
