/*
 * python.c: an async-signal-safe reader of the calling thread's CPython frames (3.8-3.13,
 * x86_64, default GIL builds), and the cache that keeps their names after the code objects die.
 *
 * How: PyGILState_GetThisThreadState() (a pthread_getspecific lookup, right also while the
 * thread has released the GIL; CPython's faulthandler calls it from signal handlers too) gives
 * the thread state. From there the frame chain, the code objects and their line tables are read
 * with guarded copies (guard.c: plain loads under a recovery point the fatal-signal handler
 * jumps back to), whole structs at a time, at offsets from a per-version table (checked against
 * the headers by tests/unit/gen_python_offsets.sh, and on 3.13 against the interpreter's own
 * _Py_DebugOffsets at init). A bad address makes the copy fail instead of the program, so a frame
 * torn or freed under us ends the walk early.
 *
 * Must never, in the functions called from signal handlers (cs_python_stack, _remember,
 * _holds_gil): allocate, lock, use stdio, call a Python API other than the thread-state
 * lookup, dereference interpreter memory other than through cs_guard_copy, loop without a
 * bound, or change errno.
 */
#include "python.h"

#include "guard.h"
#include "hash.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h> /* struct iovec, for batches of regions */
#include <unistd.h>

/* --- the layout table ----------------------------------------------------------------- */

/* Every offset the reader uses, in bytes (masks for the PyUnicode state bit-field). The names
 * are those printed by tests/unit/gen_python_offsets.sh, which computes them with offsetof()
 * from each version's headers; -1 = no such field in that version. */
// clang-format off
#define CS_PY_LAYOUT_FIELDS(X)                                                          \
    X(ob_type) X(ob_size) X(bytes_sval)                                                 \
    X(unicode_length) X(unicode_state) X(unicode_ascii_data) X(unicode_compact_data)    \
    X(unicode_kind_mask) X(unicode_compact_bit) X(unicode_ascii_bit)                    \
    X(tstate_interp) X(tstate_frame) X(cframe_current_frame)                            \
    X(tstate_datastack_chunk) X(tstate_datastack_limit)                                 \
    X(frame_back) X(frame_code) X(frame_instr) X(frame_lineno) X(frame_trace)           \
    X(frame_is_entry) X(frame_owner) X(owner_cstack)                                    \
    X(code_filename) X(code_name) X(code_qualname) X(code_firstlineno)                  \
    X(code_linetable) X(code_adaptive)                                                  \
    X(runtime_gil) X(interp_gil) X(gil_holder) X(gil_locked)                            \
    X(runtime_interp_main) X(runtime_eval_breaker) X(interp_eval_breaker)
// clang-format on

typedef struct py_layout {
    int minor;
#define CS_X(n) int32_t n;
    CS_PY_LAYOUT_FIELDS(CS_X)
#undef CS_X
} py_layout;

static const char *const layout_names[] = {
#define CS_X(n) #n,
    CS_PY_LAYOUT_FIELDS(CS_X)
#undef CS_X
};
static const size_t layout_offsets[] = {
#define CS_X(n) offsetof(py_layout, n),
    CS_PY_LAYOUT_FIELDS(CS_X)
#undef CS_X
};

/* Typed from the headers of 3.8.18, 3.9.18, 3.10.13, 3.11.7 (and Debian's 3.11.2), 3.12.1 and
 * 3.13.0. What differs between versions:
 *   tstate_frame: PyThreadState.frame (<= 3.10), .cframe (3.11, 3.12; then
 *     cframe_current_frame), .current_frame (3.13).
 *   frame_*: PyFrameObject (<= 3.10, f_lasti in bytes up to 3.9, in code units in 3.10);
 *     _PyInterpreterFrame (3.11+; prev_instr, or instr_ptr in 3.13; f_code, or f_executable).
 *   code_linetable: co_lnotab (3.8, 3.9), co_linetable (3.10 pairs, 3.11+ location table).
 *   runtime_gil: _PyRuntime.ceval.gil (<= 3.11); interp_gil: PyInterpreterState.ceval.gil, a
 *     pointer (3.12+).
 *   runtime_eval_breaker: _PyRuntime.ceval.eval_breaker (3.8); interp_eval_breaker: the main
 *     interpreter's ceval.eval_breaker (3.9-3.12); 3.13 keeps one per thread state and needs
 *     no nudge (see cs_python_nudge). */
static const py_layout layouts[] = {
    {.minor = 8,
     .ob_type = 8,
     .ob_size = 16,
     .bytes_sval = 32,
     .unicode_length = 16,
     .unicode_state = 32,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .unicode_kind_mask = 28,
     .unicode_compact_bit = 32,
     .unicode_ascii_bit = 64,
     .tstate_interp = 16,
     .tstate_frame = 24,
     .cframe_current_frame = -1,
     .tstate_datastack_chunk = -1,
     .tstate_datastack_limit = -1,
     .frame_back = 24,
     .frame_code = 32,
     .frame_instr = 104,
     .frame_lineno = 108,
     .frame_trace = 80,
     .frame_is_entry = -1,
     .frame_owner = -1,
     .owner_cstack = -1,
     .code_filename = 104,
     .code_name = 112,
     .code_qualname = -1,
     .code_firstlineno = 40,
     .code_linetable = 120,
     .code_adaptive = -1,
     .runtime_gil = 1152,
     .interp_gil = -1,
     .gil_holder = 8,
     .gil_locked = 16,
     .runtime_interp_main = 40,
     .runtime_eval_breaker = 592,
     .interp_eval_breaker = -1},
    {.minor = 9,
     .ob_type = 8,
     .ob_size = 16,
     .bytes_sval = 32,
     .unicode_length = 16,
     .unicode_state = 32,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .unicode_kind_mask = 28,
     .unicode_compact_bit = 32,
     .unicode_ascii_bit = 64,
     .tstate_interp = 16,
     .tstate_frame = 24,
     .cframe_current_frame = -1,
     .tstate_datastack_chunk = -1,
     .tstate_datastack_limit = -1,
     .frame_back = 24,
     .frame_code = 32,
     .frame_instr = 104,
     .frame_lineno = 108,
     .frame_trace = 80,
     .frame_is_entry = -1,
     .frame_owner = -1,
     .owner_cstack = -1,
     .code_filename = 104,
     .code_name = 112,
     .code_qualname = -1,
     .code_firstlineno = 40,
     .code_linetable = 120,
     .code_adaptive = -1,
     .runtime_gil = 352,
     .interp_gil = -1,
     .gil_holder = 8,
     .gil_locked = 16,
     .runtime_interp_main = 40,
     .runtime_eval_breaker = -1,
     .interp_eval_breaker = 72},
    {.minor = 10,
     .ob_type = 8,
     .ob_size = 16,
     .bytes_sval = 32,
     .unicode_length = 16,
     .unicode_state = 32,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .unicode_kind_mask = 28,
     .unicode_compact_bit = 32,
     .unicode_ascii_bit = 64,
     .tstate_interp = 16,
     .tstate_frame = 24,
     .cframe_current_frame = -1,
     .tstate_datastack_chunk = -1,
     .tstate_datastack_limit = -1,
     .frame_back = 24,
     .frame_code = 32,
     .frame_instr = 96,
     .frame_lineno = 100,
     .frame_trace = -1,
     .frame_is_entry = -1,
     .frame_owner = -1,
     .owner_cstack = -1,
     .code_filename = 104,
     .code_name = 112,
     .code_qualname = -1,
     .code_firstlineno = 40,
     .code_linetable = 120,
     .code_adaptive = -1,
     .runtime_gil = 352,
     .interp_gil = -1,
     .gil_holder = 8,
     .gil_locked = 16,
     .runtime_interp_main = 40,
     .runtime_eval_breaker = -1,
     .interp_eval_breaker = 68},
    {.minor = 11,
     .ob_type = 8,
     .ob_size = 16,
     .bytes_sval = 32,
     .unicode_length = 16,
     .unicode_state = 32,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .unicode_kind_mask = 28,
     .unicode_compact_bit = 32,
     .unicode_ascii_bit = 64,
     .tstate_interp = 16,
     .tstate_frame = 56,
     .cframe_current_frame = 8,
     .tstate_datastack_chunk = 296,
     .tstate_datastack_limit = 312,
     .frame_back = 48,
     .frame_code = 32,
     .frame_instr = 56,
     .frame_lineno = -1,
     .frame_trace = -1,
     .frame_is_entry = 68,
     .frame_owner = -1,
     .owner_cstack = -1,
     .code_filename = 112,
     .code_name = 120,
     .code_qualname = 128,
     .code_firstlineno = 72,
     .code_linetable = 136,
     .code_adaptive = 184,
     .runtime_gil = 360,
     .interp_gil = -1,
     .gil_holder = 8,
     .gil_locked = 16,
     .runtime_interp_main = 48,
     .runtime_eval_breaker = -1,
     .interp_eval_breaker = 100},
    {.minor = 12,
     .ob_type = 8,
     .ob_size = 16,
     .bytes_sval = 32,
     .unicode_length = 16,
     .unicode_state = 32,
     .unicode_ascii_data = 40,
     .unicode_compact_data = 56,
     .unicode_kind_mask = 28,
     .unicode_compact_bit = 32,
     .unicode_ascii_bit = 64,
     .tstate_interp = 16,
     .tstate_frame = 56,
     .cframe_current_frame = 0,
     .tstate_datastack_chunk = 232,
     .tstate_datastack_limit = 248,
     .frame_back = 8,
     .frame_code = 0,
     .frame_instr = 56,
     .frame_lineno = -1,
     .frame_trace = -1,
     .frame_is_entry = -1,
     .frame_owner = 70,
     .owner_cstack = 3,
     .code_filename = 112,
     .code_name = 120,
     .code_qualname = 128,
     .code_firstlineno = 68,
     .code_linetable = 136,
     .code_adaptive = 192,
     .runtime_gil = -1,
     .interp_gil = 384,
     .gil_holder = 8,
     .gil_locked = 16,
     .runtime_interp_main = 48,
     .runtime_eval_breaker = -1,
     .interp_eval_breaker = 368},
    {.minor = 13,
     .ob_type = 8,
     .ob_size = 16,
     .bytes_sval = 32,
     .unicode_length = 16,
     .unicode_state = 32,
     .unicode_ascii_data = 40,
     .unicode_compact_data = 56,
     .unicode_kind_mask = 28,
     .unicode_compact_bit = 32,
     .unicode_ascii_bit = 64,
     .tstate_interp = 16,
     .tstate_frame = 72,
     .cframe_current_frame = -1,
     .tstate_datastack_chunk = 232,
     .tstate_datastack_limit = 248,
     .frame_back = 8,
     .frame_code = 0,
     .frame_instr = 56,
     .frame_lineno = -1,
     .frame_trace = -1,
     .frame_is_entry = -1,
     .frame_owner = 70,
     .owner_cstack = 3,
     .code_filename = 112,
     .code_name = 120,
     .code_qualname = 128,
     .code_firstlineno = 68,
     .code_linetable = 136,
     .code_adaptive = 200,
     .runtime_gil = -1,
     .interp_gil = 16,
     .gil_holder = 8,
     .gil_locked = 16,
     .runtime_interp_main = 640,
     .runtime_eval_breaker = -1,
     .interp_eval_breaker = -1},
};

static const py_layout *layout_for(int minor)
{
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        if (layouts[i].minor == minor)
            return &layouts[i];
    return NULL;
}

int cs_python_layout_field(int minor, int i, const char **name, long *value)
{
    const py_layout *L = layout_for(minor);
    if (!L || i < 0 || (size_t)i >= sizeof layout_names / sizeof layout_names[0])
        return 0;
    int32_t v;
    memcpy(&v, (const char *)L + layout_offsets[i], sizeof v);
    *name = layout_names[i];
    *value = v;
    return 1;
}

/* --- what init found ---------------------------------------------------------------- */

typedef void *(*tstate_fn)(void);

/* Written by init under init_lock before `ready` is set (release); read-only afterwards. */
static struct {
    const py_layout *L;
    uint64_t runtime, code_type, unicode_type, bytes_type, frame_type;
    tstate_fn get_tstate;
    uint32_t frame_read, code_read; /* bytes read per frame and per code object */
    unsigned kind_shift;            /* of the PyUnicode kind bits */
    void *lib;                      /* where its symbols are looked up (dlsym handle) */
} py;

static _Atomic int ready;
static _Atomic int answer = 0;
static _Atomic int version_hex;
static const char *_Atomic status_text = "Python support not initialised";
static int answered; /* 1 once answer is final (1 or -1) */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

/* --- reading our own memory, safely --------------------------------------------------- */

/* Bigger than any x86_64 user-space address (47-bit, also with 5-level paging off). */
#define USER_TOP 0x800000000000ull

static int addr_ok(uint64_t a, size_t n)
{
    return a >= 4096 && a < USER_TOP && n <= USER_TOP - a;
}

/* Reads N bytes at ADDR into BUF: 0, or -1 if any of it is unreadable. */
static int rd(uint64_t addr, void *buf, size_t n)
{
    if (!addr_ok(addr, n))
        return -1;
    return cs_guard_copy(buf, addr, n);
}

/* Reads up to 32 regions; returns the bit mask of those read in full. The caller checks every
 * address with addr_ok. */
static uint32_t rdv(struct iovec *loc, struct iovec *rem, int n)
{
    uint32_t ok = 0;
    for (int i = 0; i < n; i++)
        if (cs_guard_copy(loc[i].iov_base, (uint64_t)(uintptr_t)rem[i].iov_base, loc[i].iov_len) ==
            0)
            ok |= 1u << i;
    return ok;
}

static uint64_t u64at(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int32_t i32at(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int rd_u64(uint64_t addr, uint64_t *v)
{
    return rd(addr, v, sizeof *v);
}

/* --- line tables -------------------------------------------------------------------- */

/* The head of a line table read with the code objects' batch: the bytes header and the first
 * bytes of data, enough for the first couple of hundred instructions. */
#define LT_HEAD 256
/* Later parts are read this much at a time (a read of 4 KiB costs little more than one of 64
 * bytes; the outermost frames, module code, often have long tables). */
#define LT_CHUNK 4096
/* A line table longer than this (a generated function of thousands of lines) is not walked
 * past this point in a handler: the line is reported unknown instead. */
#define LT_WALK_MAX (64 * 1024)

/* A bytes object's data, read in chunks as the decoder walks it. */
typedef struct lt_stream {
    uint64_t data;
    int64_t size;   /* bytes in the table (capped at LT_WALK_MAX) */
    int64_t lo, hi; /* p holds [lo, hi) */
    const uint8_t *p;
    uint8_t *buf; /* LT_CHUNK bytes for later parts */
} lt_stream;

/* Opens the bytes object at OBJ. HEAD, if not NULL, holds its first LT_HEAD bytes as read
 * already; otherwise only its header is read now, and the data when needed. */
static int lt_open(lt_stream *s, uint64_t obj, const uint8_t *head, uint8_t *buf)
{
    const py_layout *L = py.L;
    uint8_t hdr[64];
    size_t hn = (size_t)L->bytes_sval;
    if (hn > sizeof hdr || hn >= LT_HEAD || (obj & 7))
        return -1;
    if (!head) {
        if (rd(obj, hdr, hn) != 0)
            return -1;
        head = hdr;
    }
    if (u64at(head + L->ob_type) != py.bytes_type)
        return -1;
    int64_t size = (int64_t)u64at(head + L->ob_size);
    if (size < 0)
        return -1;
    s->buf = buf;
    s->data = obj + hn;
    s->size = size > LT_WALK_MAX ? LT_WALK_MAX : size;
    s->lo = 0;
    s->hi = 0;
    if (head != hdr) {
        s->p = head + hn;
        s->hi = s->size < (int64_t)(LT_HEAD - hn) ? s->size : (int64_t)(LT_HEAD - hn);
    }
    return 0;
}

/* The byte at POS, or -1 past the end or if unreadable. */
static int lt_byte(lt_stream *s, int64_t pos)
{
    if (pos < 0 || pos >= s->size)
        return -1;
    if (pos < s->lo || pos >= s->hi) {
        int64_t n = s->size - pos < LT_CHUNK ? s->size - pos : LT_CHUNK;
        if (rd(s->data + (uint64_t)pos, s->buf, (size_t)n) != 0)
            return -1;
        s->p = s->buf;
        s->lo = pos;
        s->hi = pos + n;
    }
    return s->p[pos - s->lo];
}

/* 3.8, 3.9: co_lnotab, pairs (address step in bytes, signed line step); the same walk as
 * PyCode_Addr2Line of those versions. OFF in bytes. */
static int32_t line_lnotab(lt_stream *s, int32_t first, int64_t off)
{
    int32_t line = first;
    int64_t addr = 0;
    for (int64_t i = 0; i + 1 < s->size; i += 2) {
        int a = lt_byte(s, i), d = lt_byte(s, i + 1);
        if (a < 0 || d < 0)
            return -1;
        addr += a;
        if (addr > off)
            break;
        line += (int8_t)d;
    }
    return line;
}

/* 3.10: co_linetable, pairs (byte step, signed line step, -128 = no line), address ranges as in
 * _PyCode_CheckLineNumber (zero-length ranges only move the line). OFF in bytes. */
static int32_t line_310(lt_stream *s, int32_t first, int64_t off)
{
    int32_t computed = first, line = -1;
    int64_t end = 0;
    for (int64_t i = 0; i + 1 < s->size; i += 2) {
        int a = lt_byte(s, i), d = lt_byte(s, i + 1);
        if (a < 0 || d < 0)
            return -1;
        int64_t start = end;
        end += a;
        if ((int8_t)d == -128) {
            line = -1;
        } else {
            computed += (int8_t)d;
            line = computed;
        }
        if (start <= off && off < end)
            return line;
    }
    return -1;
}

/* 3.11+ location table (Objects/locations.md): each entry starts with a byte 1CCCCLLL and
 * covers LLL+1 code units; the line delta is 0 (codes 0-9, 15), code-10 (10-12), or a signed
 * varint after the first byte (13, 14); code 15 has no line. OFF in bytes. */
static int varint(lt_stream *s, int64_t *pos, uint32_t *out)
{
    int b = lt_byte(s, (*pos)++);
    if (b < 0)
        return -1;
    uint32_t v = (uint32_t)b & 63;
    for (unsigned shift = 6; b & 64; shift += 6) {
        if (shift > 30)
            return -1;
        b = lt_byte(s, (*pos)++);
        if (b < 0)
            return -1;
        v |= ((uint32_t)b & 63) << shift;
    }
    *out = v;
    return 0;
}

static int32_t line_locations(lt_stream *s, int32_t first, int64_t off)
{
    int32_t computed = first;
    int64_t end = 0, i = 0;
    while (i < s->size) {
        int b = lt_byte(s, i);
        if (b < 0 || !(b & 0x80))
            return -1;
        int code = (b >> 3) & 15;
        if (code == 13 || code == 14) {
            int64_t p = i + 1;
            uint32_t u;
            if (varint(s, &p, &u) != 0)
                return -1;
            computed += (u & 1) ? -(int32_t)(u >> 1) : (int32_t)(u >> 1);
        } else if (code >= 10 && code <= 12) {
            computed += code - 10;
        }
        int64_t start = end;
        end += ((b & 7) + 1) * 2;
        if (start <= off && off < end)
            return code == 15 ? -1 : computed;
        /* The next entry is the next byte with the top bit set. */
        for (i++; i < s->size; i++) {
            int c = lt_byte(s, i);
            if (c < 0)
                return -1;
            if (c & 0x80)
                break;
        }
    }
    return -1;
}

/* The line of byte offset OFF in a code object whose line table object is LT (HEAD: its first
 * LT_HEAD bytes if already read; BUF: LT_CHUNK bytes to read the rest into), the way
 * PyCode_Addr2Line computes it: a negative offset, as in a frame that has not started, is the
 * first line. -1 if unknown. */
static int32_t line_at(uint64_t lt, const uint8_t *head, uint8_t *buf, int32_t first, int64_t off)
{
    if (off < 0)
        return first;
    lt_stream s;
    if (lt_open(&s, lt, head, buf) != 0)
        return -1;
    if (py.L->minor <= 9)
        return line_lnotab(&s, first, off);
    if (py.L->minor == 10)
        return line_310(&s, first, off);
    return line_locations(&s, first, off);
}

/* --- the line cache ------------------------------------------------------------------ */

/* Decoding a line table costs one or more reads and a walk of the table up to the offset, for
 * frames that are mostly the same from one sample to the next: the lines found are kept in a
 * lossy, direct-mapped cache. The key holds the line table's address and the name key besides
 * the code address and offset, so that an entry can only be reused wrongly by a new code
 * object with the same name, file and first line, whose code object and line table both took
 * the dead ones' addresses (in practice the same source compiled again, with the same lines).
 * Each slot is a sequence lock that writers only try: a writer never waits (a handler on the
 * same thread may have interrupted another writer), and a reader seeing a write under way or
 * a changed sequence treats the slot as a miss. */
#define LINE_SLOTS 4096u /* power of two */

typedef struct line_slot {
    _Atomic uint64_t seq; /* odd while written */
    _Atomic uint64_t code, lt, name_ptr, file_ptr, off;
    _Atomic int32_t firstline, line;
} line_slot;

static line_slot *_Atomic lines;

static uint64_t line_hash(const cs_pyframe *f, uint64_t lt, int64_t off)
{
    uint64_t h = f->code * 0x9e3779b97f4a7c15ull ^ lt ^ ((uint64_t)off << 40) ^ f->name_ptr;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h;
}

#define LC_LOAD(x)     atomic_load_explicit(&(x), memory_order_relaxed)
#define LC_STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

static int line_cached(const cs_pyframe *f, uint64_t lt, int64_t off, int32_t *line)
{
    line_slot *t = atomic_load_explicit(&lines, memory_order_acquire);
    if (!t)
        return 0;
    line_slot *s = &t[line_hash(f, lt, off) & (LINE_SLOTS - 1)];
    uint64_t q = atomic_load_explicit(&s->seq, memory_order_acquire);
    if ((q & 1) || q == 0)
        return 0;
    int hit = LC_LOAD(s->code) == f->code && LC_LOAD(s->lt) == lt &&
              LC_LOAD(s->name_ptr) == f->name_ptr && LC_LOAD(s->file_ptr) == f->file_ptr &&
              LC_LOAD(s->off) == (uint64_t)off && LC_LOAD(s->firstline) == f->firstline;
    int32_t v = LC_LOAD(s->line);
    atomic_thread_fence(memory_order_acquire);
    if (!hit || atomic_load_explicit(&s->seq, memory_order_relaxed) != q)
        return 0;
    *line = v;
    return 1;
}

static void line_store(const cs_pyframe *f, uint64_t lt, int64_t off, int32_t line)
{
    line_slot *t = atomic_load_explicit(&lines, memory_order_acquire);
    if (!t)
        return;
    line_slot *s = &t[line_hash(f, lt, off) & (LINE_SLOTS - 1)];
    uint64_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
    if ((q & 1) || !atomic_compare_exchange_strong_explicit(
                       &s->seq, &q, q + 1, memory_order_acquire, memory_order_relaxed))
        return; /* being written by someone else: skip, never wait */
    atomic_thread_fence(memory_order_release);
    LC_STORE(s->code, f->code);
    LC_STORE(s->lt, lt);
    LC_STORE(s->name_ptr, f->name_ptr);
    LC_STORE(s->file_ptr, f->file_ptr);
    LC_STORE(s->off, (uint64_t)off);
    LC_STORE(s->firstline, f->firstline);
    LC_STORE(s->line, line);
    atomic_store_explicit(&s->seq, q + 2, memory_order_release);
}

/* --- the walk ----------------------------------------------------------------------- */

#define FRAME_BUF 128
#define CODE_BUF  160
/* 3.11+ frames of one thread sit next to each other in its data stack chunk: one read of up
 * to this many bytes below the innermost frame usually holds all of them. */
#define WINDOW 8192
/* Code objects read with one system call; line table heads with one call per LT_BATCH. */
#define BATCH    32
#define LT_BATCH 16
/* Line numbers not known yet while the frames are collected. */
#define LINE_PENDING INT32_MIN

typedef struct walk_ctx {
    uint64_t chunk, limit; /* 3.11+: the thread's current data stack chunk, [chunk, limit) */
    uint64_t wlo, whi;     /* the window holds [wlo, whi) */
    int windows;           /* window reads made (bounded) */
} walk_ctx;

/* The big buffers of a walk, on the handler's stack (12 KiB): the frame window while the
 * chain is followed; then the code objects of a batch, whose space then holds the later parts
 * of line tables while the lines are decoded; and the line table heads. */
typedef struct scratch {
    union {
        uint8_t window[WINDOW];
        uint8_t code[BATCH][CODE_BUF];
        uint8_t refill[LT_CHUNK];
    } u;
    uint8_t lt[LT_BATCH][LT_HEAD];
} scratch;
_Static_assert(sizeof(((scratch *)0)->u.code) >= LT_CHUNK, "refill space");

static int read_frame(walk_ctx *c, scratch *sc, uint64_t a, uint8_t *dst)
{
    size_t n = py.frame_read;
    if (!addr_ok(a, n) || (a & 7))
        return -1;
    if (a >= c->wlo && a + n <= c->whi) {
        memcpy(dst, sc->u.window + (a - c->wlo), n);
        return 0;
    }
    if (c->chunk && a >= c->chunk && a + n <= c->limit && c->windows < 4) {
        uint64_t hi = a + n, lo = hi > WINDOW ? hi - WINDOW : 0;
        if (lo < c->chunk)
            lo = c->chunk;
        c->windows++;
        if (rd(lo, sc->u.window, (size_t)(hi - lo)) == 0) {
            c->wlo = lo;
            c->whi = hi;
            memcpy(dst, sc->u.window + (a - lo), n);
            return 0;
        }
        c->wlo = c->whi = 0;
    }
    return rd(a, dst, n);
}

/* Phase 1: follows the frame chain from the innermost frame F, storing per Python frame its
 * code object address, and for now its instruction pointer (in name_ptr) and a line already
 * known (in line: a tracer's f_lineno on <= 3.10, else LINE_PENDING). */
static int collect(walk_ctx *c, scratch *sc, uint64_t f, cs_pyframe *out, int max)
{
    const py_layout *L = py.L;
    uint8_t fr[FRAME_BUF];
    uint64_t seen[CS_PY_MAX_DEPTH];
    int n = 0;
    for (int depth = 0; depth < CS_PY_MAX_DEPTH && n < max && f; depth++) {
        /* A frame seen before is a cycle in a torn chain: stop. */
        for (int i = 0; i < depth; i++)
            if (seen[i] == f)
                return n;
        seen[depth] = f;
        if (read_frame(c, sc, f, fr) != 0)
            break;
        uint64_t back = u64at(fr + L->frame_back);
        if (L->frame_owner >= 0 && fr[L->frame_owner] == (uint8_t)L->owner_cstack) {
            /* 3.12+: the shim an evaluation-loop call pushes on entry. Not a Python frame;
             * the frame before it (innermost side) is the last one of that call. */
            if (n > 0)
                out[n - 1].flags |= CS_PYF_ENTRY;
            f = back;
            continue;
        }
        if (L->minor <= 10 && u64at(fr + L->ob_type) != py.frame_type)
            break; /* not a frame object (any more) */
        cs_pyframe *o = &out[n++];
        o->code = u64at(fr + L->frame_code);
        o->file_ptr = 0;
        o->firstline = 0;
        o->line = LINE_PENDING;
        o->flags = 0;
        if (L->minor <= 10) {
            int32_t lasti = i32at(fr + L->frame_instr);
            o->name_ptr = (uint64_t)(int64_t)lasti;
            o->flags |= CS_PYF_ENTRY;
            /* Under a tracer CPython keeps f_lineno itself (PyFrame_GetLineNumber). */
            if (L->minor <= 9 ? u64at(fr + L->frame_trace) != 0 : i32at(fr + L->frame_lineno) != 0)
                o->line = i32at(fr + L->frame_lineno);
        } else {
            o->name_ptr = u64at(fr + L->frame_instr);
            if (L->frame_is_entry >= 0 && fr[L->frame_is_entry])
                o->flags |= CS_PYF_ENTRY;
        }
        f = back;
    }
    return n;
}

/* The byte offset of the instruction a frame is at, from what collect() stored; or sets
 * *LINE when the offset says it (first line, unknown). */
static int64_t frame_offset(uint64_t instr, uint64_t code, const uint8_t *cb, int32_t first,
                            int32_t *line)
{
    const py_layout *L = py.L;
    if (L->minor <= 10) {
        int64_t lasti = (int64_t)instr; /* bytes up to 3.9, code units in 3.10 */
        if (lasti < 0) {
            *line = first;
            return 0;
        }
        return L->minor == 10 ? lasti * 2 : lasti;
    }
    /* prev_instr (3.11, 3.12) is one unit before the code on a frame that has not run an
     * instruction yet: the first line, as CPython says. */
    uint64_t start = code + (uint64_t)L->code_adaptive;
    int64_t units = (int64_t)u64at(cb + L->ob_size);
    if (instr < start)
        *line = instr + 2 >= start ? first : -1;
    else if (units <= 0 || instr - start >= (uint64_t)units * 2)
        *line = -1;
    return instr >= start ? (int64_t)((instr - start) & ~1ull) : 0;
}

/* Phases 2 and 3 for out[from, to): reads the code objects (one system call), fills in the
 * names, then the line table heads (one call per LT_BATCH) and the lines. Frames whose code
 * object is unreadable end the stack (3.13: frames running no code object are dropped).
 * Compacts into out[w...]; returns the new w, or -(w+1) when the stack ends here. */
static int finish(scratch *sc, cs_pyframe *out, int from, int to, int w)
{
    const py_layout *L = py.L;
    struct iovec loc[BATCH], rem[BATCH];
    int n = to - from, stop = 0;
    for (int i = 0; i < n; i++) {
        uint64_t code = out[from + i].code;
        int good = code && !(code & 7) && addr_ok(code, py.code_read);
        loc[i] = (struct iovec){sc->u.code[i], good ? py.code_read : 0};
        rem[i] = (struct iovec){(void *)(uintptr_t)code, good ? py.code_read : 0};
    }
    uint32_t ok = rdv(loc, rem, n);

    uint64_t ltp[BATCH];
    int64_t loff[BATCH];
    int lidx[BATCH], nl = 0;
    for (int i = 0; i < n; i++) {
        cs_pyframe f = out[from + i];
        const uint8_t *cb = sc->u.code[i];
        if (!(ok & (1u << i)) || !loc[i].iov_len || u64at(cb + L->ob_type) != py.code_type) {
            if (L->minor < 13) {
                stop = 1; /* f_code is always a code object before 3.13: a torn frame */
                break;
            }
            /* 3.13: f_executable may be None on frames that run no Python code. */
            if ((f.flags & CS_PYF_ENTRY) && w > 0)
                out[w - 1].flags |= CS_PYF_ENTRY;
            continue;
        }
        cs_pyframe *o = &out[w];
        o->code = f.code;
        o->name_ptr = u64at(cb + (L->code_qualname >= 0 ? L->code_qualname : L->code_name));
        o->file_ptr = u64at(cb + L->code_filename);
        o->firstline = i32at(cb + L->code_firstlineno);
        o->flags = f.flags;
        o->line = f.line;
        if (o->line == LINE_PENDING) {
            int64_t off = frame_offset(f.name_ptr, f.code, cb, o->firstline, &o->line);
            uint64_t lt = u64at(cb + L->code_linetable);
            if (o->line == LINE_PENDING && !line_cached(o, lt, off, &o->line)) {
                ltp[nl] = lt;
                loff[nl] = off;
                lidx[nl++] = w;
            }
        }
        w++;
    }

    for (int b = 0; b < nl; b += LT_BATCH) {
        int m = nl - b < LT_BATCH ? nl - b : LT_BATCH;
        for (int i = 0; i < m; i++) {
            uint64_t a = ltp[b + i];
            int good = a && !(a & 7) && addr_ok(a, LT_HEAD);
            loc[i] = (struct iovec){sc->lt[i], good ? LT_HEAD : 0};
            rem[i] = (struct iovec){(void *)(uintptr_t)a, good ? LT_HEAD : 0};
        }
        ok = rdv(loc, rem, m);
        for (int i = 0; i < m; i++) {
            /* A head that could not be read whole (the table ends near unreadable memory)
             * is read again piece by piece. */
            const uint8_t *head = (ok & (1u << i)) && loc[i].iov_len ? sc->lt[i] : NULL;
            cs_pyframe *o = &out[lidx[b + i]];
            o->line = line_at(ltp[b + i], head, sc->u.refill, o->firstline, loff[b + i]);
            if (o->line >= 0)
                line_store(o, ltp[b + i], loff[b + i], o->line);
        }
    }
    return stop ? -(w + 1) : w;
}

static int walk(cs_pyframe *out, int max)
{
    const py_layout *L = py.L;
    walk_ctx c = {0};
    uint64_t ts = (uint64_t)(uintptr_t)py.get_tstate();
    if (!ts || (ts & 7))
        return 0;
    /* One read of the thread state from the frame pointer to the data stack limit. */
    uint8_t tb[320];
    int32_t lo = L->tstate_frame, hi = L->tstate_frame + 8;
    if (L->tstate_datastack_chunk >= 0) {
        lo = lo < L->tstate_datastack_chunk ? lo : L->tstate_datastack_chunk;
        hi = hi > L->tstate_datastack_limit + 8 ? hi : L->tstate_datastack_limit + 8;
    }
    if (hi - lo > (int32_t)sizeof tb || rd(ts + (uint64_t)lo, tb, (size_t)(hi - lo)) != 0)
        return 0;
    uint64_t f = u64at(tb + (L->tstate_frame - lo));
    if (L->tstate_datastack_chunk >= 0) {
        c.chunk = u64at(tb + (L->tstate_datastack_chunk - lo));
        c.limit = u64at(tb + (L->tstate_datastack_limit - lo));
        if (c.limit <= c.chunk)
            c.chunk = c.limit = 0;
    }
    if (L->cframe_current_frame >= 0) {
        if (!f || (f & 7) || rd_u64(f + (uint64_t)L->cframe_current_frame, &f) != 0)
            return 0;
    }
    if (!f || (f & 7))
        return 0;

    scratch sc;
    int n = collect(&c, &sc, f, out, max);
    int w = 0;
    for (int from = 0; from < n; from += BATCH) {
        int to = n - from < BATCH ? n : from + BATCH;
        w = finish(&sc, out, from, to, w);
        if (w < 0)
            return -(w + 1);
    }
    return w;
}

int cs_python_stack(cs_pyframe *out, int max)
{
    if (!out || max <= 0 || !atomic_load_explicit(&ready, memory_order_acquire))
        return 0;
    int saved = errno;
    int n = walk(out, max);
    errno = saved;
    return n;
}

int cs_python_holds_gil(void)
{
    if (!atomic_load_explicit(&ready, memory_order_acquire))
        return -1;
    const py_layout *L = py.L;
    int saved = errno, r = -1;
    uint64_t ts = (uint64_t)(uintptr_t)py.get_tstate(), gil = 0, interp = 0;
    if (!ts) {
        r = 0;
        goto out;
    }
    if (L->runtime_gil >= 0) {
        gil = py.runtime + (uint64_t)L->runtime_gil;
    } else if (rd_u64(ts + (uint64_t)L->tstate_interp, &interp) != 0 ||
               rd_u64(interp + (uint64_t)L->interp_gil, &gil) != 0) {
        goto out;
    }
    /* The GIL is held by this thread when it is locked and this thread took it last. */
    uint8_t g[32];
    size_t n = (size_t)(L->gil_locked > L->gil_holder ? L->gil_locked + 4 : L->gil_holder + 8);
    if (n <= sizeof g && rd(gil, g, n) == 0)
        r = i32at(g + L->gil_locked) == 1 && u64at(g + L->gil_holder) == ts;
out:
    errno = saved;
    return r;
}

/* --- strings and the name cache --------------------------------------------------------- */

/* Appends code point C to OUT as UTF-8 (lone surrogates and invalid values as '?'). Returns
 * the new length, or -1 if it does not fit in CAP bytes: names are cut at a character. */
static int put_utf8(char *out, int len, int cap, uint32_t c)
{
    uint8_t b[4];
    int n;
    if (c == 0 || (c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
        c = '?';
    if (c < 0x80) {
        b[0] = (uint8_t)c;
        n = 1;
    } else if (c < 0x800) {
        b[0] = (uint8_t)(0xc0 | (c >> 6));
        b[1] = (uint8_t)(0x80 | (c & 63));
        n = 2;
    } else if (c < 0x10000) {
        b[0] = (uint8_t)(0xe0 | (c >> 12));
        b[1] = (uint8_t)(0x80 | ((c >> 6) & 63));
        b[2] = (uint8_t)(0x80 | (c & 63));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xf0 | (c >> 18));
        b[1] = (uint8_t)(0x80 | ((c >> 12) & 63));
        b[2] = (uint8_t)(0x80 | ((c >> 6) & 63));
        b[3] = (uint8_t)(0x80 | (c & 63));
        n = 4;
    }
    if (len + n > cap)
        return -1;
    memcpy(out + len, b, (size_t)n);
    return len + n;
}

/* Characters kept per string: every character takes one UTF-8 byte or more, so no more than
 * CS_PY_FILENAME_MAX characters can fit; 4 bytes each for the widest kind. */
#define STR_HDR_MAX 96
#define STR_BUF     (STR_HDR_MAX + 4 * CS_PY_FILENAME_MAX)

/* Copies the str object at OBJ into OUT as UTF-8, at most CAP bytes plus a NUL. Only compact
 * strings (what code object names always are) are read. Returns the length or -1. */
static int read_str(uint64_t obj, char *out, int cap)
{
    const py_layout *L = py.L;
    uint8_t buf[STR_BUF];
    size_t have = (size_t)L->unicode_compact_data + 128;
    if ((obj & 7) || have > sizeof buf)
        return -1;
    /* The header and the start of the text in one read; a short string near the end of its
     * memory region may make that fail: then the smallest header alone. */
    if (rd(obj, buf, have) != 0) {
        have = (size_t)L->unicode_ascii_data;
        if (rd(obj, buf, have) != 0)
            return -1;
    }
    if (u64at(buf + L->ob_type) != py.unicode_type)
        return -1;
    int64_t length = (int64_t)u64at(buf + L->unicode_length);
    uint32_t state;
    memcpy(&state, buf + L->unicode_state, sizeof state);
    if (length < 0 || !(state & (uint32_t)L->unicode_compact_bit))
        return -1;
    int ascii = (state & (uint32_t)L->unicode_ascii_bit) != 0;
    unsigned kind = (state & (uint32_t)L->unicode_kind_mask) >> py.kind_shift;
    if (kind != 1 && kind != 2 && kind != 4)
        return -1;
    size_t data = ascii ? (size_t)L->unicode_ascii_data : (size_t)L->unicode_compact_data;
    size_t nchar = length < cap ? (size_t)length : (size_t)cap;
    size_t need = data + nchar * kind;
    if (need > sizeof buf)
        return -1;
    if (need > have && rd(obj + have, buf + have, need - have) != 0)
        return -1;
    int len = 0;
    for (size_t i = 0; i < nchar; i++) {
        uint32_t c;
        if (kind == 1) {
            c = buf[data + i];
        } else if (kind == 2) {
            uint16_t v;
            memcpy(&v, buf + data + 2 * i, 2);
            c = v;
        } else {
            memcpy(&c, buf + data + 4 * i, 4);
        }
        if (ascii && c >= 0x80)
            c = '?';
        int next = put_utf8(out, len, cap, c);
        if (next < 0)
            break;
        len = next;
    }
    out[len] = 0;
    return len;
}

/* The name cache: open addressing, insert-only. A slot is claimed by setting its tag (0 when
 * free) from 0 to the key's hash with a compare-and-swap; the one handler that won writes the
 * key and names, then sets ready (release). Readers only look at the key and names of ready
 * slots, so no lock is needed anywhere. A handler that finds a slot with its own tag that is
 * not ready yet leaves: the same key is being written by another (or by the code it
 * interrupted), and waiting is not an option in a handler. */
#define NAME_SLOTS  8192u /* power of two */
#define NAME_LIMIT  (NAME_SLOTS / 8 * 7)
#define NAME_PROBES 64

typedef struct name_slot {
    _Atomic uint64_t tag; /* key hash | 1, 0 = free */
    _Atomic uint32_t ready;
    int32_t firstline;
    uint64_t code, name_ptr, file_ptr;
    char qualname[CS_PY_QUALNAME_MAX + 1];
    char filename[CS_PY_FILENAME_MAX + 1];
} name_slot;

static name_slot *_Atomic names;
static _Atomic uint64_t names_used, names_dropped;

static uint64_t key_hash(const cs_pyframe *f)
{
    uint64_t h = f->code ^ (f->name_ptr * 0x9e3779b97f4a7c15ull) ^
                 (f->file_ptr * 0xc2b2ae3d27d4eb4full) ^ ((uint64_t)(uint32_t)f->firstline << 32);
    return cs_mix64(h) | 1;
}

static int key_eq(const name_slot *s, const cs_pyframe *f)
{
    return s->code == f->code && s->name_ptr == f->name_ptr && s->file_ptr == f->file_ptr &&
           s->firstline == f->firstline;
}

/* The ready slot holding F's key, or NULL. *BUSY is set if a slot with F's tag is still being
 * written. */
static name_slot *find(name_slot *t, const cs_pyframe *f, uint64_t h, int *busy)
{
    for (unsigned i = 0; i < NAME_PROBES; i++) {
        name_slot *s = &t[(h + i) & (NAME_SLOTS - 1)];
        uint64_t tag = atomic_load_explicit(&s->tag, memory_order_acquire);
        if (tag == 0)
            return NULL;
        if (tag != h)
            continue;
        if (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
            if (busy)
                *busy = 1;
            continue;
        }
        if (key_eq(s, f))
            return s;
    }
    return NULL;
}

void cs_python_remember(const cs_pyframe *f)
{
    name_slot *t = atomic_load_explicit(&names, memory_order_acquire);
    if (!f || !t || !f->code || !atomic_load_explicit(&ready, memory_order_acquire))
        return;
    uint64_t h = key_hash(f);
    int busy = 0;
    if (find(t, f, h, &busy) || busy)
        return;
    if (atomic_load_explicit(&names_used, memory_order_relaxed) >= NAME_LIMIT) {
        atomic_fetch_add_explicit(&names_dropped, 1, memory_order_relaxed);
        return;
    }
    int saved = errno;
    char q[CS_PY_QUALNAME_MAX + 1], fn[CS_PY_FILENAME_MAX + 1];
    /* Names that cannot be read now (the code object is already gone) are not cached: a
     * later sample of the same key may do better. */
    if (read_str(f->name_ptr, q, CS_PY_QUALNAME_MAX) < 0 ||
        read_str(f->file_ptr, fn, CS_PY_FILENAME_MAX) < 0)
        goto out;
    for (unsigned i = 0; i < NAME_PROBES; i++) {
        name_slot *s = &t[(h + i) & (NAME_SLOTS - 1)];
        uint64_t tag = atomic_load_explicit(&s->tag, memory_order_acquire);
        if (tag == 0 && atomic_compare_exchange_strong_explicit(
                            &s->tag, &tag, h, memory_order_acq_rel, memory_order_acquire)) {
            s->code = f->code;
            s->name_ptr = f->name_ptr;
            s->file_ptr = f->file_ptr;
            s->firstline = f->firstline;
            memcpy(s->qualname, q, sizeof q);
            memcpy(s->filename, fn, sizeof fn);
            atomic_fetch_add_explicit(&names_used, 1, memory_order_relaxed);
            atomic_store_explicit(&s->ready, 1, memory_order_release);
            goto out;
        }
        /* Another handler took this slot meanwhile, maybe for this very key. */
        if (tag == h && (!atomic_load_explicit(&s->ready, memory_order_acquire) || key_eq(s, f)))
            goto out;
    }
    atomic_fetch_add_explicit(&names_dropped, 1, memory_order_relaxed);
out:
    errno = saved;
}

int cs_python_lookup(const cs_pyframe *f, const char **qualname, const char **filename)
{
    name_slot *t = atomic_load_explicit(&names, memory_order_acquire);
    if (!f || !t)
        return 0;
    name_slot *s = find(t, f, key_hash(f), NULL);
    if (!s)
        return 0;
    if (qualname)
        *qualname = s->qualname;
    if (filename)
        *filename = s->filename;
    return 1;
}

uint64_t cs_python_names_used(void)
{
    return atomic_load_explicit(&names_used, memory_order_relaxed);
}

uint64_t cs_python_names_dropped(void)
{
    return atomic_load_explicit(&names_dropped, memory_order_relaxed);
}

/* --- detection ---------------------------------------------------------------------- */

/* 3.13's _Py_DebugOffsets, the first field of _PyRuntime, as far as it is used here
 * (Include/internal/pycore_runtime.h of 3.13; its layout changes between minor versions). */
typedef struct dbg313 {
    char cookie[8];
    uint64_t version, free_threaded;
    struct {
        uint64_t size, finalizing, interpreters_head;
    } runtime_state;
    struct {
        uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil,
            gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked,
            gil_runtime_state_holder;
    } interpreter_state;
    struct {
        uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id,
            datastack_chunk, status;
    } thread_state;
    struct {
        uint64_t size, previous, executable, instr_ptr, localsplus, owner;
    } interpreter_frame;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames,
            localspluskinds, co_code_adaptive;
    } code_object;
    struct {
        uint64_t size, ob_type;
    } pyobject;
    struct {
        uint64_t size, tp_name, tp_repr, tp_flags;
    } type_object;
    struct {
        uint64_t size, ob_item, ob_size;
    } tuple_object;
    struct {
        uint64_t size, ob_item, ob_size;
    } list_object;
    struct {
        uint64_t size, ma_keys, ma_values;
    } dict_object;
    struct {
        uint64_t size, ob_fval;
    } float_object;
    struct {
        uint64_t size, lv_tag, ob_digit;
    } long_object;
    struct {
        uint64_t size, ob_size, ob_sval;
    } bytes_object;
    struct {
        uint64_t size, state, length, asciiobject_size;
    } unicode_object;
} dbg313;

/* Compares the typed 3.13 table with the interpreter's own offsets. NULL or the first field
 * that differs. */
static const char *check_313(const dbg313 *d, const py_layout *L)
{
    const uint64_t gil = d->interpreter_state.gil_runtime_state;
#define CS_CHECK(have, want)                                                                       \
    if ((uint64_t)(have) != (uint64_t)(want))                                                      \
        return #want;
    CS_CHECK(d->thread_state.interp, L->tstate_interp)
    CS_CHECK(d->thread_state.current_frame, L->tstate_frame)
    CS_CHECK(d->thread_state.datastack_chunk, L->tstate_datastack_chunk)
    CS_CHECK(d->interpreter_frame.previous, L->frame_back)
    CS_CHECK(d->interpreter_frame.executable, L->frame_code)
    CS_CHECK(d->interpreter_frame.instr_ptr, L->frame_instr)
    CS_CHECK(d->interpreter_frame.owner, L->frame_owner)
    CS_CHECK(d->code_object.filename, L->code_filename)
    CS_CHECK(d->code_object.name, L->code_name)
    CS_CHECK(d->code_object.qualname, L->code_qualname)
    CS_CHECK(d->code_object.linetable, L->code_linetable)
    CS_CHECK(d->code_object.firstlineno, L->code_firstlineno)
    CS_CHECK(d->code_object.co_code_adaptive, L->code_adaptive)
    CS_CHECK(d->pyobject.ob_type, L->ob_type)
    CS_CHECK(d->bytes_object.ob_size, L->ob_size)
    CS_CHECK(d->bytes_object.ob_sval, L->bytes_sval)
    CS_CHECK(d->unicode_object.state, L->unicode_state)
    CS_CHECK(d->unicode_object.length, L->unicode_length)
    CS_CHECK(d->unicode_object.asciiobject_size, L->unicode_ascii_data)
    CS_CHECK(d->interpreter_state.ceval_gil, L->interp_gil)
    CS_CHECK(d->interpreter_state.gil_runtime_state_locked - gil, L->gil_locked)
    CS_CHECK(d->interpreter_state.gil_runtime_state_holder - gil, L->gil_holder)
#undef CS_CHECK
    return NULL;
}

/* "3.9.18 (main, ...)" or "3.13.0rc1+ ..." -> PY_VERSION_HEX; 0 if unreadable. */
static int parse_version(const char *s)
{
    int part[3] = {0, 0, 0}, level = 0xf, serial = 0, i = 0;
    if (!s)
        return 0;
    for (; i < 3; i++) {
        if (*s < '0' || *s > '9')
            return 0;
        while (*s >= '0' && *s <= '9')
            part[i] = part[i] * 10 + (*s++ - '0');
        if (i < 2 && *s++ != '.')
            return 0;
    }
    if (s[0] == 'a' || s[0] == 'b' || (s[0] == 'r' && s[1] == 'c')) {
        level = s[0] == 'a' ? 0xa : s[0] == 'b' ? 0xb : 0xc;
        s += s[0] == 'r' ? 2 : 1;
        while (*s >= '0' && *s <= '9')
            serial = serial * 10 + (*s++ - '0');
    }
    if (part[0] > 255 || part[1] > 255 || part[2] > 255 || serial > 15)
        return 0;
    return part[0] << 24 | part[1] << 16 | part[2] << 8 | level << 4 | serial;
}

static char libpython_path[4096];

static int find_libpython_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name, *base = name ? strrchr(name, '/') : NULL;
    base = base ? base + 1 : name;
    if (base && strncmp(base, "libpython3", 10) == 0 && strlen(name) < sizeof libpython_path) {
        strcpy(libpython_path, name);
        return 1;
    }
    return 0;
}

/* A libpython loaded with RTLD_LOCAL by an embedding application is invisible to
 * dlsym(RTLD_DEFAULT): find it among the loaded modules. */
static void *find_libpython(void)
{
    libpython_path[0] = 0;
    dl_iterate_phdr(find_libpython_cb, NULL);
    return libpython_path[0] ? dlopen(libpython_path, RTLD_NOLOAD | RTLD_LAZY) : NULL;
}

static int give(int a, const char *why)
{
    atomic_store(&status_text, why);
    atomic_store(&answer, a);
    if (a != 0)
        answered = 1;
    return a;
}

static int detect(void)
{
    void *h = RTLD_DEFAULT;
    void *runtime = dlsym(h, "_PyRuntime");
    void *getver = dlsym(h, "Py_GetVersion");
    if (!runtime && !getver) {
        h = find_libpython();
        if (!h)
            return give(0, "no Python in this process");
        runtime = dlsym(h, "_PyRuntime");
        getver = dlsym(h, "Py_GetVersion");
        if (!runtime && !getver)
            return give(0, "no Python in this process");
    }

    const unsigned long *pv = dlsym(h, "Py_Version");
    int v = pv ? (int)*pv : parse_version(((const char *(*)(void))getver)());
    atomic_store(&version_hex, v);
    int major = (v >> 24) & 0xff, minor = (v >> 16) & 0xff;
    if (major != 3 || minor < 8)
        return give(-1, "Python older than 3.8 is not supported");
    if (minor > 13)
        return give(-1, "Python newer than 3.13 is not supported (frame layout unknown)");
    const py_layout *L = layout_for(minor);
    if (!L)
        return give(-1, "Python version not in the layout table");
    /* Debug builds (Py_REF_DEBUG) export these and lay structures out differently;
     * free-threaded 3.13t exports the biased reference counting entry points. */
    if (dlsym(h, "_Py_NegativeRefcount") || dlsym(h, "_Py_RefTotal"))
        return give(-1, "debug builds of Python are not supported");
    if (dlsym(h, "_Py_MergeZeroLocalRefcount") || dlsym(h, "_Py_DecRefShared"))
        return give(-1, "free-threaded Python is not supported");

    void *get_tstate = dlsym(h, "PyGILState_GetThisThreadState");
    void *code_type = dlsym(h, "PyCode_Type"), *unicode_type = dlsym(h, "PyUnicode_Type");
    void *bytes_type = dlsym(h, "PyBytes_Type"), *frame_type = dlsym(h, "PyFrame_Type");
    if (!runtime || !get_tstate || !code_type || !unicode_type || !bytes_type ||
        (minor <= 10 && !frame_type))
        return give(-1, "Python found, but not all the symbols its frames need are exported");

    if (minor == 13) {
        dbg313 d;
        memcpy(&d, runtime, sizeof d);
        if (memcmp(d.cookie, "xdebugpy", 8) != 0 || d.version != (uint64_t)(unsigned)v)
            return give(-1, "Python 3.13 without the expected _Py_DebugOffsets");
        if (d.free_threaded)
            return give(-1, "free-threaded Python is not supported");
        if (check_313(&d, L))
            return give(-1, "Python 3.13 layout differs from the table (_Py_DebugOffsets)");
    }

    if (!atomic_load(&lines)) {
        void *p = mmap(NULL, sizeof(line_slot) * LINE_SLOTS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) /* without it lines are decoded every time */
            atomic_store_explicit(&lines, (line_slot *)p, memory_order_release);
    }
    if (!atomic_load(&names)) {
        void *p = mmap(NULL, sizeof(name_slot) * NAME_SLOTS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return give(-1, "cannot map the Python name cache");
        atomic_store_explicit(&names, (name_slot *)p, memory_order_release);
    }

    /* Keep libpython loaded for as long as we are: handlers call into it and read its data,
     * so an embedding application's dlclose must not unmap it under them. */
    Dl_info info;
    if (dladdr(runtime, &info) && info.dli_fname && info.dli_fname[0])
        (void)dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);

    py.L = L;
    py.lib = h;
    py.runtime = (uint64_t)(uintptr_t)runtime;
    py.code_type = (uint64_t)(uintptr_t)code_type;
    py.unicode_type = (uint64_t)(uintptr_t)unicode_type;
    py.bytes_type = (uint64_t)(uintptr_t)bytes_type;
    py.frame_type = (uint64_t)(uintptr_t)frame_type;
    py.get_tstate = (tstate_fn)(uintptr_t)get_tstate;
    py.kind_shift = (unsigned)__builtin_ctz((unsigned)L->unicode_kind_mask);
    int32_t fmax = L->frame_back;
    const int32_t ff[] = {L->frame_code,     L->frame_instr, L->frame_lineno, L->frame_trace,
                          L->frame_is_entry, L->frame_owner, L->ob_type};
    for (size_t i = 0; i < sizeof ff / sizeof ff[0]; i++)
        if (ff[i] > fmax)
            fmax = ff[i];
    int32_t cmax = L->code_linetable;
    const int32_t cf[] = {L->code_filename, L->code_name, L->code_qualname, L->code_firstlineno,
                          L->ob_size};
    for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++)
        if (cf[i] > cmax)
            cmax = cf[i];
    py.frame_read = (uint32_t)fmax + 8;
    py.code_read = (uint32_t)cmax + 8;
    if (py.frame_read > FRAME_BUF || py.code_read > CODE_BUF ||
        L->unicode_compact_data > STR_HDR_MAX)
        return give(-1, "Python layout does not fit the read buffers");
    atomic_store_explicit(&ready, 1, memory_order_release);
    return give(1, "Python supported");
}

int cs_python_try_init(void)
{
    pthread_mutex_lock(&init_lock);
    int a = answered ? atomic_load(&answer) : detect();
    pthread_mutex_unlock(&init_lock);
    return a;
}

int cs_python_init(const char **why)
{
    int a = cs_python_try_init();
    if (why)
        *why = cs_python_status();
    return a;
}

int cs_python_nudge(void)
{
    if (!atomic_load_explicit(&ready, memory_order_acquire))
        return -1;
    const py_layout *L = py.L;
    uint64_t addr = 0;
    if (L->runtime_eval_breaker >= 0) {
        addr = py.runtime + (uint64_t)L->runtime_eval_breaker;
    } else if (L->interp_eval_breaker >= 0) {
        uint64_t interp;
        if (rd_u64(py.runtime + (uint64_t)L->runtime_interp_main, &interp) != 0 ||
            !addr_ok(interp, 8) || (interp & 7))
            return -1;
        addr = interp + (uint64_t)L->interp_eval_breaker;
    } else {
        return 0; /* 3.13: the pending call already set the main thread's own breaker */
    }
    return cs_guard_store32(addr, 1);
}

void *cs_python_symbol(const char *name)
{
    return atomic_load_explicit(&ready, memory_order_acquire) ? dlsym(py.lib, name) : NULL;
}

const char *cs_python_status(void)
{
    return atomic_load(&status_text);
}

int cs_python_version(void)
{
    return atomic_load(&version_hex);
}
