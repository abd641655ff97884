/*
 * pythreads.c: the names a Python program gives its threads (threading.Thread.name), which
 * CPython before 3.14 never hands to the operating system, so that samples and crash reports
 * say "db-poller" rather than "python3" for every thread.
 *
 * How: when asked (by the writer, once a second), the interpreter is given a pending call
 * (Py_AddPendingCall, which needs neither the GIL nor a thread state). CPython runs it in its
 * main thread between two bytecodes, holding the GIL, so the C API is safe there. It reads
 * threading._active, the dict of started threads, without importing anything: for each Thread
 * its _native_id (the kernel thread id our samples carry) and _name, into a fixed table that
 * signal handlers and the writer read without locks (a sequence count per entry).
 *
 * Must never: import a module or call threading's functions (threading.enumerate takes
 * _active_limbo_lock, which the main thread may hold at the very instant the call runs: a
 * deadlock), leave an exception set or clobber one in flight, run while the interpreter
 * finalizes, queue a call while one is pending, or allocate in cs_pythreads_name.
 * Known limit: pending calls run only in the main thread, so while it never runs Python code
 * (blocked in a C call) names are not refreshed, and threads keep their OS names until it does.
 */
#include "pythreads.h"

#include "python.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#define MAX_NAMES      1024
#define NAME_MAX_BYTES 63

typedef struct name_entry {
    _Atomic unsigned seq; /* odd while being written */
    _Atomic int tid;
    char name[NAME_MAX_BYTES + 1];
} name_entry;

static name_entry table[MAX_NAMES];
static _Atomic int table_n;

typedef struct PyObj PyObj; /* opaque: only pointers pass through here */

/* The C API, looked up in the interpreter found by python.c. Stable from 3.8 to 3.13. */
static struct {
    int (*add_pending)(int (*)(void *), void *);
    int (*is_initialized)(void);
    int (*is_finalizing)(void);
    PyObj *(*modules)(void);
    PyObj *(*dict_get_string)(PyObj *, const char *); /* borrowed, never raises */
    PyObj *(*getattr)(PyObj *, const char *);
    PyObj *(*dict_values)(PyObj *);
    ptrdiff_t (*list_size)(PyObj *);
    PyObj *(*list_get)(PyObj *, ptrdiff_t); /* borrowed */
    const char *(*utf8)(PyObj *, ptrdiff_t *);
    long (*as_long)(PyObj *);
    void (*decref)(PyObj *);
    void (*fetch)(PyObj **, PyObj **, PyObj **);
    void (*restore)(PyObj *, PyObj *, PyObj *);
    void (*clear)(void);
} api;

static _Atomic int api_state; /* 0 not looked up, 1 usable, -1 not usable */
static _Atomic int pending;   /* a call is queued and has not run yet */

static int load_api(void)
{
    int st = atomic_load(&api_state);
    if (st)
        return st;
#define SYM(field, name) (*(void **)&api.field = cs_python_symbol(name))
    SYM(add_pending, "Py_AddPendingCall");
    SYM(is_initialized, "Py_IsInitialized");
    if (!SYM(is_finalizing, "Py_IsFinalizing")) /* 3.13; before, the private spelling */
        SYM(is_finalizing, "_Py_IsFinalizing");
    SYM(modules, "PyImport_GetModuleDict");
    SYM(dict_get_string, "PyDict_GetItemString");
    SYM(getattr, "PyObject_GetAttrString");
    SYM(dict_values, "PyDict_Values");
    SYM(list_size, "PyList_Size");
    SYM(list_get, "PyList_GetItem");
    SYM(utf8, "PyUnicode_AsUTF8AndSize");
    SYM(as_long, "PyLong_AsLong");
    SYM(decref, "Py_DecRef");
    SYM(fetch, "PyErr_Fetch");
    SYM(restore, "PyErr_Restore");
    SYM(clear, "PyErr_Clear");
#undef SYM
    void *const all[] = {api.add_pending,     api.is_initialized, api.is_finalizing, api.modules,
                         api.dict_get_string, api.getattr,        api.dict_values,   api.list_size,
                         api.list_get,        api.utf8,           api.as_long,       api.decref,
                         api.fetch,           api.restore,        api.clear};
    st = 1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!all[i])
            st = -1;
    atomic_store(&api_state, st);
    return st;
}

static void put(int i, int tid, const char *name, ptrdiff_t len)
{
    name_entry *e = &table[i];
    if (atomic_load_explicit(&e->tid, memory_order_relaxed) == tid &&
        (size_t)len == strnlen(e->name, sizeof e->name) && !memcmp(e->name, name, (size_t)len))
        return;
    atomic_fetch_add_explicit(&e->seq, 1, memory_order_acq_rel);
    atomic_store_explicit(&e->tid, tid, memory_order_relaxed);
    memcpy(e->name, name, (size_t)len);
    e->name[len] = 0;
    atomic_fetch_add_explicit(&e->seq, 1, memory_order_release);
}

/* Cuts LEN bytes of UTF-8 to at most NAME_MAX_BYTES without splitting a character. */
static ptrdiff_t cut_utf8(const char *s, ptrdiff_t len)
{
    if (len <= NAME_MAX_BYTES)
        return len;
    len = NAME_MAX_BYTES;
    while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
        len--;
    return len;
}

/* The pending call: in the main thread, GIL held. Always returns 0 with the error indicator
 * as it found it: a -1 would raise in the program. */
static int collect(void *arg)
{
    (void)arg;
    atomic_store(&pending, 0);
    if (!api.is_initialized() || api.is_finalizing())
        return 0;
    PyObj *et, *ev, *tb;
    api.fetch(&et, &ev, &tb);
    PyObj *threading = api.dict_get_string(api.modules(), "threading");
    PyObj *active = threading ? api.getattr(threading, "_active") : NULL;
    PyObj *threads = active ? api.dict_values(active) : NULL;
    int n = 0;
    ptrdiff_t count = threads ? api.list_size(threads) : 0;
    for (ptrdiff_t i = 0; i < count && n < MAX_NAMES; i++) {
        PyObj *t = api.list_get(threads, i);
        PyObj *tid = t ? api.getattr(t, "_native_id") : NULL;
        PyObj *name = t ? api.getattr(t, "_name") : NULL;
        long id = tid ? api.as_long(tid) : -1;
        ptrdiff_t len = 0;
        const char *s = name ? api.utf8(name, &len) : NULL;
        if (id > 0 && id <= 0x7fffffff && s && len > 0)
            put(n++, (int)id, s, cut_utf8(s, len));
        if (tid)
            api.decref(tid);
        if (name)
            api.decref(name);
        api.clear(); /* a thread not started yet has no _native_id: not an error of the program */
    }
    if (threads)
        api.decref(threads);
    if (active)
        api.decref(active);
    api.clear();
    api.restore(et, ev, tb);
    if (threading || n > 0)
        atomic_store(&table_n, n);
    return 0;
}

void cs_pythreads_request(void)
{
    if (cs_python_version() == 0 || load_api() != 1)
        return;
    int idle = 0;
    if (!atomic_compare_exchange_strong(&pending, &idle, 1))
        return;
    /* Never near finalization: the nudge writes into the interpreter state, which (3.9-3.11)
     * is freed at its very end, milliseconds after the finalizing flag is set. */
    if (!api.is_initialized() || api.is_finalizing() || api.add_pending(collect, NULL) != 0)
        atomic_store(&pending, 0); /* queue full or not running: next time */
    else if (!api.is_finalizing())
        cs_python_nudge();
}

void cs_pythreads_after_fork_child(void)
{
    /* The child's interpreter starts with an empty queue (PyOS_AfterFork_Child). */
    atomic_store(&pending, 0);
}

int cs_pythreads_name(int tid, char *out, size_t cap)
{
    if (tid <= 0 || cap == 0)
        return 0;
    int n = atomic_load_explicit(&table_n, memory_order_acquire);
    for (int i = 0; i < n && i < MAX_NAMES; i++) {
        name_entry *e = &table[i];
        if (atomic_load_explicit(&e->tid, memory_order_relaxed) != tid)
            continue;
        for (int tries = 0; tries < 3; tries++) {
            unsigned s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
            if (s1 & 1)
                continue;
            char copy[sizeof e->name];
            for (size_t k = 0; k < sizeof copy; k++)
                copy[k] = ((volatile const char *)e->name)[k];
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1 ||
                atomic_load_explicit(&e->tid, memory_order_relaxed) != tid)
                break;
            copy[sizeof copy - 1] = 0;
            size_t len = strnlen(copy, sizeof copy);
            if (len == 0)
                return 0;
            if (len >= cap)
                len = cap - 1;
            memcpy(out, copy, len);
            out[len] = 0;
            return 1;
        }
        return 0;
    }
    return 0;
}
