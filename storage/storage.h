/*
 * storage.h: the SQLite database that holds the rolling window (and, later, crashes).
 *
 * storage/ owns the schema and every SQL statement of the project; nothing else writes SQL.
 * One cs_db is one connection, used by one thread at a time. The database is shared by
 * every process recorded into it (pre-fork servers): WAL mode, a busy timeout, and each
 * process writing only its own rows. The schema is documented in docs/SCHEMA.md.
 */
#ifndef CS_STORAGE_H
#define CS_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#define CS_SCHEMA_VERSION 1
/* How many crashes keep their pre-crash window; older ones keep only the crash itself. */
#define CS_KEEP_CRASHES_STR "100"

typedef struct cs_db cs_db;

/* Opens (and for writers creates and migrates) the database at PATH. On failure returns
 * NULL and a one-line reason in ERR (never deletes or rewrites an existing file). */
cs_db *cs_db_open(const char *path, int readonly, char *err, size_t errlen);
void cs_db_close(cs_db *db);
/* The last error of DB as one line. */
const char *cs_db_error(cs_db *db);

/* --- the write path (storage/window.c) ------------------------------------------- */

typedef struct cs_process_info {
    int pid, ppid;
    const char *app_name, *exe, *cmdline, *tags, *hostname;
    int64_t start_ns;
    int cpu_hz, wall_hz, window_seconds;
} cs_process_info;

int cs_db_begin(cs_db *db);  /* BEGIN IMMEDIATE */
int cs_db_commit(cs_db *db); /* 0, or -1 after rolling back */
void cs_db_rollback(cs_db *db);

int64_t cs_db_process_insert(cs_db *db, const cs_process_info *p);
int cs_db_process_seen(cs_db *db, int64_t process_id, int64_t now_s);
int cs_db_process_end(cs_db *db, int64_t process_id, int64_t now_ns, const char *reason);

int64_t cs_db_module_id(cs_db *db, const char *path, const char *build_id);
/* Returns the id of the native frame (module_id, address), inserting or touching it. */
int64_t cs_db_frame_id(cs_db *db, int64_t module_id, uint64_t address, const char *function,
                       int64_t now_s);
/* The same with a source location (the crash helper, which reads debug info). */
int64_t cs_db_frame_id_line(cs_db *db, int64_t module_id, uint64_t address, const char *function,
                            const char *file, int line, int64_t now_s);
/* The id of a Python frame: FUNCTION (the qualified name) at LINE of FILE, whose module row
 * (MODULE_ID) is the file. */
int64_t cs_db_python_frame_id(cs_db *db, int64_t module_id, const char *function, const char *file,
                              int line, int64_t now_s);
/* Frames that crashes refer to are never collected: last_seen is set to this. */
#define CS_PINNED_S 4000000000000000000LL
int cs_db_frames_touch(cs_db *db, const int64_t *ids, int n, int64_t now_s);
/* Returns the id of the stack made of FRAME_IDS (innermost first), inserting or touching. */
int64_t cs_db_stack_id(cs_db *db, const int64_t *frame_ids, int n, int64_t now_s);
/* LABELS: the sample's own labels ("k=v,k=v": the thread's tags, gil=held|released), or
 * NULL. */
int cs_db_sample_add(cs_db *db, int64_t process_id, int pid, int64_t ts, int tid,
                     const char *thread_name, const char *profile, int64_t stack_id, int64_t count,
                     int64_t value, const char *labels);
/* Deletes samples older than OLDEST_TS; with GC, also stacks, frames, modules and finished
 * processes nothing can refer to any more (untouched since before GC_BEFORE_S). */
/* Removes the snapshot rows ("inuse", "threads") of PROCESS_ID at second TS: a second
 * flushed twice (the final flush) keeps only its last snapshot. */
int cs_db_snapshot_clear(cs_db *db, int64_t process_id, int64_t ts);
int cs_db_trim(cs_db *db, int64_t oldest_ts, int gc, int64_t gc_before_s);

/* --- crashes (storage/crashes.c) ------------------------------------------------------ */

typedef struct cs_crash_row {
    int64_t id, process_id;
    int pid, ppid;
    char kind[8]; /* "crash" or "hang"; "death" for a process that vanished (no record) */
    int64_t time_ns;
    int signo, code;
    uint64_t fault_address;
    int sender_pid, tid;
    char *thread_name, *app_name, *exe, *cmdline, *registers, *hostname;
    int64_t stack_id, start_ns, last_seen;
    int samples_saved;
} cs_crash_row;

typedef struct cs_crash_thread_row {
    int tid;
    char *name;
    char state[16];
    int64_t stack_id;
} cs_crash_thread_row;

/* Inserts a crash of PROCESS_ID; returns its id (0 if RECORD was already ingested). */
int64_t cs_db_crash_insert(cs_db *db, const cs_crash_row *c, const char *record);
int cs_db_crash_thread_insert(cs_db *db, int64_t crash_id, const cs_crash_thread_row *t);
/* Calls CB for every module of crash CRASH_ID (path, load bias, build id or NULL). */
int cs_db_crash_modules(cs_db *db, int64_t crash_id,
                        int (*cb)(const char *path, uint64_t base, const char *build_id, void *arg),
                        void *arg);
int cs_db_crash_module_insert(cs_db *db, int64_t crash_id, const char *path, uint64_t base,
                              const char *build_id);
/* Keeps the frames of every stack of PROCESS_ID's samples and of crash stacks for ever. */
int cs_db_pin_process(cs_db *db, int64_t process_id, int64_t crash_id);

/* Records as deaths the processes on HOSTNAME that stopped being seen before STALE_BEFORE_S
 * without an exit or a crash record, and whose pid IS_ALIVE says is gone (SIGKILL, the OOM
 * killer): a crashes row of kind "death" keeps their window like a crash's. Returns how many
 * were recorded, or -1. Must run inside a transaction of a writable connection. */
int cs_db_mark_deaths(cs_db *db, const char *hostname, int64_t stale_before_s,
                      int (*is_alive)(int pid));

/* Crashes, hangs and deaths, newest first. Rows are freed with cs_crash_row_free. */
int cs_db_crashes(cs_db *db, cs_crash_row **out, int *n);
/* One crash by id (or the newest when ID is 0). Returns 1 found, 0 not found, -1 error. */
int cs_db_crash_get(cs_db *db, int64_t id, cs_crash_row *out);
/* The newest crash of PID at or after SINCE_NS; 0 if none yet. */
int64_t cs_db_crash_of_pid(cs_db *db, int pid, int64_t since_ns);
/* The crashes and hangs, at or after SINCE_NS, of the processes descended from ROOT_PID that
 * started then (a pre-fork server's workers, a shell's children), oldest first: up to MAX
 * ids into IDS. Returns how many there are in all, or -1. */
int cs_db_crashes_below(cs_db *db, int root_pid, int64_t since_ns, int64_t *ids, int max);
int cs_db_crash_threads(cs_db *db, int64_t crash_id, cs_crash_thread_row **out, int *n);
void cs_crash_row_free(cs_crash_row *c);
void cs_crash_threads_free(cs_crash_thread_row *t, int n);

/* Per-second activity of PROCESS_ID in [FROM, UNTIL]: calls CB(ts, cpu, wall, top, top_n)
 * where TOP is the innermost function of the most frequent cpu stack of that second. */
int cs_db_seconds(cs_db *db, int64_t process_id, int64_t from, int64_t until,
                  int (*cb)(int64_t ts, int64_t cpu, int64_t wall, const char *top, int64_t top_n,
                            void *arg),
                  void *arg);
/* The hottest innermost functions of PROCESS_ID's PROFILE samples in [FROM, UNTIL]. */
int cs_db_top_functions(cs_db *db, int64_t process_id, const char *profile, int64_t from,
                        int64_t until, int limit,
                        int (*cb)(const char *function, int64_t count, void *arg), void *arg);

/* The same by the innermost Python function of each sample (function, file, and the line
 * of it with the most samples), its native callees included: which of a Python program's
 * functions the time went to. Samples without a Python frame are left out. */
int cs_db_top_python(cs_db *db, int64_t process_id, const char *profile, int64_t from,
                     int64_t until, int limit,
                     int (*cb)(const char *function, const char *file, int64_t line, int64_t count,
                               void *arg),
                     void *arg);

/* --- the upload queue (storage/uploads.c) ------------------------------------------------ */

typedef struct cs_upload_row {
    int64_t id, process_id, crash_id;
    char profile[16], phase[16];
    int64_t slice_from, slice_until; /* Unix seconds, [from, until) */
    char *labels;                    /* "name=value\n" lines */
    uint8_t *body;                   /* gzipped pprof */
    size_t body_len;
    int sample_rate, attempts;
} cs_upload_row;

/* Queues a profile; returns its id, or 0 when the same slice is already queued or sent. */
int64_t cs_db_upload_add(cs_db *db, const cs_upload_row *u, int64_t now_s);
/* Pending uploads due at NOW_S (all of them when FORCE) with an id above AFTER_ID, in queue
 * order, at most MAX. */
int cs_db_uploads_due(cs_db *db, int64_t now_s, int force, int64_t after_id, int max,
                      cs_upload_row **out, int *n);
void cs_upload_rows_free(cs_upload_row *u, int n);
/* After an attempt: STATE "sent", "pending" (retry at NEXT_S), "too_old" or "refused". The
 * body is dropped once nothing will send it again. ENDPOINT and ERROR carry no secrets. */
int cs_db_upload_result(cs_db *db, int64_t id, const char *state, int64_t next_s, long status,
                        const char *endpoint, size_t bytes, const char *error, int64_t now_ns);
/* Takes pending upload ID for LEASE_S seconds, so that two senders never send it twice.
 * Returns 1 if this caller has it. */
int cs_db_upload_claim(cs_db *db, int64_t id, int64_t now_s, int64_t lease_s, int force);

typedef struct cs_process_meta {
    char app_name[256];
    char tags[1024];
    int pid, cpu_hz, wall_hz;
    int64_t last_seen;
} cs_process_meta;
int cs_db_process_meta(cs_db *db, int64_t process_id, cs_process_meta *m);

/* Continuous mode: slices of PROCESS_ID are queued up to this second (0: none yet). */
int64_t cs_db_upload_cursor(cs_db *db, int64_t process_id);
int cs_db_upload_cursor_set(cs_db *db, int64_t process_id, int64_t until);
/* Processes with samples newer than SINCE_S (for the continuous uploader). */
int cs_db_active_processes(cs_db *db, int64_t since_s, int64_t **ids, int *n);

typedef struct cs_upload_summary {
    int total, sent, pending, too_old, refused;
    int64_t last_attempt_ns;
    long last_status;
    char last_endpoint[512];
    char last_error[256];
    int crash_profile_sent;
} cs_upload_summary;
/* What became of the uploads of crash CRASH_ID (all pending ones when CRASH_ID is -1). */
int cs_db_upload_summary(cs_db *db, int64_t crash_id, cs_upload_summary *s);

/* --- the process timeline (storage/timeline.c) ------------------------------------- */

/* One second of a process, as /proc/self said at the writer's flush. Counters are cumulative
 * since the process started; -1 = unknown. */
typedef struct cs_timeline_row {
    int64_t ts;
    int64_t rss_kb, peak_rss_kb;
    int64_t cpu_user_ms, cpu_system_ms;
    int64_t threads, fds;
    int64_t minor_faults, major_faults;
    int64_t voluntary_cs, involuntary_cs;
    int64_t threads_created, threads_exited; /* by crashscope's count, since the start */
    int64_t heap_live_bytes;                 /* estimated from the allocation samples; -1 off */
} cs_timeline_row;

int cs_db_timeline_add(cs_db *db, int64_t process_id, int64_t ts, const cs_timeline_row *r);
/* Rows of PROCESS_ID with FROM <= ts <= UNTIL, oldest first, in *OUT (malloc'd). */
int cs_db_timeline(cs_db *db, int64_t process_id, int64_t from, int64_t until,
                   cs_timeline_row **out, int *n);

/* --- the read path (storage/read.c) ------------------------------------------------ */

typedef struct cs_frame_row {
    int64_t id;
    char *function; /* NULL when unknown */
    char *module;   /* path, NULL when none */
    char *build_id;
    char *file;
    int64_t line;
    uint64_t address;
    char kind[8]; /* "native" or "python" */
} cs_frame_row;

typedef struct cs_profile_row {
    int64_t stack_id;
    int pid, tid;
    char *thread_name;
    char *labels; /* "k=v,k=v" or NULL */
    int64_t count, value;
} cs_profile_row;

typedef struct cs_query {
    const char *profile;       /* as stored: "cpu", "wall", "alloc", "inuse", "threads" */
    int pid;                   /* 0: all */
    int64_t process_id;        /* 0: all */
    int64_t from_ts, until_ts; /* inclusive seconds; 0: open */
    /* 1: a state, not a flow ("inuse", "threads"): per process only the rows of its latest
     * timeline second in the range, never a sum over seconds */
    int snapshot;
} cs_query;

/* Calls CB for every (stack, pid, tid, thread) aggregate matching Q. Returns 0 or -1. */
int cs_db_profile_rows(cs_db *db, const cs_query *q,
                       int (*cb)(const cs_profile_row *row, void *arg), void *arg);
/* The frames of stack ID, innermost first, in *OUT (malloc'd; free with cs_frames_free). */
int cs_db_stack_frames(cs_db *db, int64_t stack_id, cs_frame_row **out, int *n);
void cs_frames_free(cs_frame_row *f, int n);
/* The time range covered by samples of PROFILE (and PID when non-zero). Returns 0 when the
 * window is empty, 1 otherwise. */
int cs_db_time_range(cs_db *db, const char *profile, int pid, int64_t *from, int64_t *until);
/* The CPU and wall rates a process recorded with (for pprof periods); 0 when unknown. */
int cs_db_rates(cs_db *db, int pid, int *cpu_hz, int *wall_hz);

#endif
