/*
 * python.h: reads the calling thread's CPython frames from inside a signal handler.
 *
 * Supports CPython 3.8 to 3.13 on x86_64, default (GIL) release builds, whether libpython is
 * a shared library or linked into the interpreter. Everything named "async-signal-safe" below
 * allocates nothing, takes no lock, calls no Python API except the thread-state TSS lookup,
 * and reads interpreter memory only through cs_guard_copy (guard.h): a torn or freed frame
 * gives a shorter stack, never a crash, as long as the fatal-signal handler calls
 * cs_guard_recover first.
 */
#ifndef CS_PYTHON_H
#define CS_PYTHON_H

#include <stdint.h>

/* Deepest Python stack read (frames walked, C-stack shim frames included). */
#define CS_PY_MAX_DEPTH 128
/* Stack used by cs_python_stack at most (measured: about 15 KiB), cs_python_remember about
 * 2 KiB. */
#define CS_PY_STACK_USE (16 * 1024)
/* Longest names kept by the name cache, in bytes of UTF-8 (terminating NUL not counted). */
#define CS_PY_QUALNAME_MAX 127
#define CS_PY_FILENAME_MAX 255

/* Called once from the library constructor (normal context, may allocate). Detects a CPython
 * in the process and selects the structure layout of its version. Returns 1 if supported, 0
 * if there is no Python (yet), -1 if there is a Python this code cannot read (3.7 or older,
 * 3.14 or newer, free-threaded or debug builds, a 3.13 whose
 * own debug offsets disagree with the table). *why (if WHY is not NULL) is a one-line reason
 * that stays valid for ever. */
int cs_python_init(const char **why);
/* The same, for callers that look again later (an embedding application may dlopen libpython
 * after start). Normal context only. Once the answer is 1 or -1 it never changes; after 0 it
 * looks again. Safe to call from several threads. */
int cs_python_try_init(void);
/* After Py_AddPendingCall from a thread that is not the main thread: makes the main thread
 * look at its pending calls at its next check. On 3.9 to 3.12 the call only sets the "calls
 * to do" flag, and the interpreter-wide eval_breaker it recomputes includes that flag only
 * when computed by the main thread itself, so a main thread that never switches the GIL never
 * runs the call; setting eval_breaker is what a signal does, and the main thread recomputes
 * it from the flags once it has looked. 3.8 has no such condition, 3.13 sets a per-thread
 * breaker: there it changes nothing (3.8: harmless). Returns 0, or -1 if it could not. */
int cs_python_nudge(void);

/* The address of NAME in the supported Python found (its C API, for pythreads.c), or NULL
 * (no supported Python, or no such symbol). Normal context only. */
void *cs_python_symbol(const char *name);
/* The reason of the last answer, a static one-line string. */
const char *cs_python_status(void);
/* PY_VERSION_HEX of the Python found (e.g. 0x030b07f0), also when it is not supported; 0 if
 * none. */
int cs_python_version(void);

/* One Python frame, as captured in the signal handler. The first four fields are the key of
 * the name cache: the code object may be freed and its memory reused right after the sample,
 * so names are looked up by all four, never by the code address alone. */
typedef struct cs_pyframe {
    uint64_t code;               /* address of the code object */
    uint64_t name_ptr, file_ptr; /* co_qualname (3.11+) or co_name, and co_filename objects */
    int32_t line;                /* line number from the line table, -1 unknown */
    int32_t firstline;           /* co_firstlineno */
    uint32_t flags;              /* CS_PYF_* */
} cs_pyframe;

/* This frame is the last (outermost) Python frame run by one call of the evaluation loop:
 * when merging with a native stack, the Python frames up to and including it belong to the
 * innermost remaining _PyEval_EvalFrameDefault native frame. 3.8-3.10: every frame; 3.11:
 * frames with is_entry; 3.12/3.13: the frame just before a C-stack shim frame (the shim itself
 * is never reported). */
#define CS_PYF_ENTRY 1u

/* Async-signal-safe. Walks the calling thread's Python frames, innermost first, into OUT (at
 * most MAX, and at most CS_PY_MAX_DEPTH frames walked). Returns the count: 0 if this thread has
 * no Python thread state or Python is not supported. Works whether or not the thread holds the
 * GIL (a thread sleeping in time.sleep has released it). Preserves errno. Uses up to
 * CS_PY_STACK_USE bytes of the caller's stack (buffers for batched reads). Cost: about a
 * microsecond for 30 frames (tests/unit/test_python.sh measures it). */
int cs_python_stack(cs_pyframe *out, int max);

/* Async-signal-safe. Copies the qualified name and file name of F's code object into the name
 * cache (a preallocated, lock-free, insert-only table), unless F's key is already there, so
 * that they can be named after the code object is gone. When the table is full, new keys are
 * not added (cs_python_names_dropped counts them) and those frames are named "?" later.
 * Preserves errno. */
void cs_python_remember(const cs_pyframe *f);

/* The names remembered for F's key: returns 1 and sets *qualname and *filename to
 * NUL-terminated UTF-8 strings inside the table (stable for ever), or returns 0. Plain reads of
 * the table: async-signal-safe too (the crash handler names its frames with it). */
int cs_python_lookup(const cs_pyframe *f, const char **qualname, const char **filename);

/* Name cache statistics: keys held, and keys not added because the table was full (both
 * monotonic). Any context. */
uint64_t cs_python_names_used(void);
uint64_t cs_python_names_dropped(void);

/* Async-signal-safe. 1 if the calling thread holds the GIL right now, 0 if it does not (or has
 * no Python thread state), -1 if unknown (Python not supported, memory unreadable). */
int cs_python_holds_gil(void);

/* For the offset test (tests/unit/test_python.sh): the I-th field of the typed layout table
 * for CPython 3.MINOR. Returns 1 and sets *name and *value (-1 when the field does not exist in
 * that version), or 0 past the last field or for an unknown version. Normal context. */
int cs_python_layout_field(int minor, int i, const char **name, long *value);

#endif
