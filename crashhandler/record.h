/*
 * record.h: the crash record, the file a dying process writes with write() only.
 *
 * The handler cannot use SQLite, so it writes this small binary record into
 * <database>.crashes/<pid>-<start>-<n>.crash and hands it to a helper process
 * (`crashscope _ingest`), which symbolizes it and stores it in the database. Any crashscope
 * command that opens the database ingests records left behind (helper killed, disk busy).
 * Layout: a fixed header, then sections {uint32 type, uint32 length, payload}, then
 * CS_SEC_END. All integers in the machine's own byte order: records never leave it.
 * A reader rejects a record it does not understand instead of guessing.
 */
#ifndef CS_RECORD_H
#define CS_RECORD_H

#include <stdint.h>

#define CS_RECORD_MAGIC   "CSCRASH1"
#define CS_RECORD_VERSION 2
/* Thread names: the kernel's (15 bytes) or Python's (threading.Thread.name, cut). */
#define CS_RECORD_NAME   64
#define CS_RECORD_FRAMES 200
#define CS_RECORD_NGREGS 23

enum cs_crash_kind {
    CS_CRASH_FATAL = 1, /* a fatal signal: the process dies */
    CS_CRASH_HANG = 2,  /* SIGABRT sent by the parent (gunicorn's worker timeout) */
};

typedef struct cs_record_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint32_t kind;
    int32_t pid, ppid, tid;
    int32_t signo, code, errno_value;
    int32_t sender_pid, sender_uid;
    int32_t nframes;
    uint64_t fault_address;
    uint64_t time_ns;  /* CLOCK_REALTIME at the signal */
    uint64_t start_ns; /* the process's start, as in processes.start_ns */
    char thread_name[CS_RECORD_NAME];
    uint64_t gregs[CS_RECORD_NGREGS];  /* ucontext gregs, in REG_R8 .. REG_CR2 order */
    uint64_t frames[CS_RECORD_FRAMES]; /* the faulting thread, frame 0 = faulting pc */
} cs_record_header;

enum cs_record_section {
    CS_SEC_END = 0,
    CS_SEC_PROCESS = 1, /* cs_record_process + strings */
    CS_SEC_MODULE = 2,  /* cs_record_module + path */
    CS_SEC_THREAD = 3,  /* cs_record_thread + frames */
    CS_SEC_SAMPLE = 4,  /* cs_record_sample + frames: samples not yet written */
    CS_SEC_PYSTACK = 5, /* cs_record_pystack + entries: one thread's Python frames */
};

/* The Python frames of one thread (the crashing thread's, or one of CS_SEC_THREAD's, by tid),
 * innermost first, with their names resolved in the handler: the helper is another process. */
typedef struct cs_record_pystack {
    int32_t tid;
    int32_t n;
} cs_record_pystack;

typedef struct cs_record_pyframe {
    int32_t line;
    uint32_t flags; /* CS_PYF_ENTRY */
    char qualname[128];
    char filename[256];
} cs_record_pyframe;

typedef struct cs_record_process {
    int32_t cpu_hz, wall_hz, window_seconds;
    uint32_t app_len, exe_len, cmdline_len, tags_len, host_len;
    /* followed by the five strings, not NUL-terminated */
} cs_record_process;

#define CS_RECORD_MAX_SEGS 8

typedef struct cs_record_module {
    uint64_t base;
    uint32_t nseg, path_len;
    uint64_t lo[CS_RECORD_MAX_SEGS], hi[CS_RECORD_MAX_SEGS];
    /* followed by the path */
} cs_record_module;

/* state: CS_THREAD_CRASHED | signal << 8 for a thread that faulted too while the capture ran
 * (its frames are those of its own fault). */
enum { CS_THREAD_OK = 0, CS_THREAD_NO_ANSWER = 1, CS_THREAD_CRASHED = 2 };

typedef struct cs_record_thread {
    int32_t tid;
    int32_t state;
    int32_t nframes;
    char name[CS_RECORD_NAME];
    /* followed by nframes uint64 */
} cs_record_thread;

typedef struct cs_record_sample {
    int64_t ts;
    int32_t tid;
    int32_t kind; /* CS_KIND_CPU or CS_KIND_WALL */
    int64_t count;
    int32_t nframes;
    int32_t npy;
    char name[CS_RECORD_NAME];
    char labels[272]; /* "k=v,k=v", NUL-terminated */
    /* followed by nframes uint64, then npy cs_record_pyframe */
} cs_record_sample;

#endif
