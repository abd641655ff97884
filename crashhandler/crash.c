/*
 * crash.c: the fatal-signal handler.
 *
 * Async-signal-safe only: no malloc, no stdio, no locks, no SQLite, no curl. Memory it needs
 * beyond its stack is mapped at crash time with mmap (a system call) or static.
 * Invariants:
 * - One thread captures (compare-and-swap on `owner`); another thread that crashes meanwhile
 *   waits, bounded, then takes the program's action.
 * - A fault inside the capture ends the capture (siglongjmp), never the chaining: the
 *   program's handler and the default action always run. SA_NODEFER makes such a fault
 *   reach this handler instead of killing the process with a misleading context.
 * - Every wait is bounded; the whole capture takes well under two seconds.
 * - Only the first fatal crash is captured: a program handler that returns into the same
 *   fault must not turn crashscope into a loop that writes records.
 */
#include "crash.h"

#include "../recorder/python.h"
#include "../recorder/pythreads.h"
#include "../recorder/ring.h"
#include "../recorder/sampler.h"
#include "../recorder/shim.h"
#include "../recorder/signals.h"
#include "../recorder/threads.h"
#include "../recorder/unwind.h"
#include "../recorder/guard.h"
#include "../recorder/writer.h"
#include "helper.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define THREAD_WAIT_MS 500
/* A hung gunicorn worker is SIGKILLed about a second after its SIGABRT: answer faster. */
#define HANG_THREAD_WAIT_MS 200
#define WRITER_WAIT_MS      300
#define OTHER_CRASH_MS      3000
#define MAX_AREA_THREADS    1024

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};

static _Atomic pid_t owner;
static _Atomic int chaining;
static _Atomic int fatal_captured;
static int records_ok;
/* CRASHSCOPE_TEST_FAULT_IN_HANDLER=1 makes the capture itself fault, so that the test suite
 * can show that a crash inside the handler ends the capture, not the program's own ending. */
static int fault_in_capture;
static int *volatile unmapped_address; /* NULL: the fault the test asks for */
static __thread sigjmp_buf *capture_jb __attribute__((tls_model("initial-exec")));

/* --- the record writer: a static buffer flushed with write() ----------------------------- */

typedef struct out {
    int fd;
    size_t n;
    int failed;
    unsigned char buf[65536];
} out;

static out rec_out;

static void out_flush(out *o)
{
    size_t off = 0;
    while (off < o->n && !o->failed) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            o->failed = 1;
        else
            off += (size_t)w;
    }
    o->n = 0;
}

static void out_put(out *o, const void *p, size_t len)
{
    const unsigned char *c = p;
    while (len) {
        if (o->n == sizeof o->buf)
            out_flush(o);
        size_t k = sizeof o->buf - o->n < len ? sizeof o->buf - o->n : len;
        memcpy(o->buf + o->n, c, k);
        o->n += k;
        c += k;
        len -= k;
    }
}

static void out_section(out *o, uint32_t type, uint32_t len)
{
    out_put(o, &type, 4);
    out_put(o, &len, 4);
}

/* --- what goes into the record ----------------------------------------------------------- */

static void emit_module(const struct dl_phdr_info *m, void *ctx)
{
    out *o = ctx;
    cs_record_module rm;
    memset(&rm, 0, sizeof rm);
    const char *path = m->dlpi_name && *m->dlpi_name ? m->dlpi_name : "";
    rm.base = m->dlpi_addr;
    for (int i = 0; i < m->dlpi_phnum && rm.nseg < CS_RECORD_MAX_SEGS; i++) {
        if (m->dlpi_phdr[i].p_type != PT_LOAD)
            continue;
        rm.lo[rm.nseg] = m->dlpi_addr + m->dlpi_phdr[i].p_vaddr;
        rm.hi[rm.nseg] = rm.lo[rm.nseg] + m->dlpi_phdr[i].p_memsz;
        rm.nseg++;
    }
    rm.path_len = (uint32_t)strnlen(path, PATH_MAX);
    out_section(o, CS_SEC_MODULE, (uint32_t)sizeof rm + rm.path_len);
    out_put(o, &rm, sizeof rm);
    out_put(o, path, rm.path_len);
}

static void put_pyframes(out *o, const cs_pyframe *py, int n)
{
    for (int i = 0; i < n; i++) {
        cs_record_pyframe rf;
        memset(&rf, 0, sizeof rf);
        rf.line = py[i].line;
        rf.flags = py[i].flags;
        const char *q = "?", *f = "?";
        cs_python_lookup(&py[i], &q, &f); /* plain reads of the name cache */
        strncpy(rf.qualname, q, sizeof rf.qualname - 1);
        strncpy(rf.filename, f, sizeof rf.filename - 1);
        out_put(o, &rf, sizeof rf);
    }
}

static void emit_sample(int64_t ts, int32_t tid, int kind, int64_t count, const char *name,
                        const uint64_t *ips, int n, const cs_pyframe *py, int npy,
                        const char *labels, void *ctx)
{
    out *o = ctx;
    cs_record_sample rs;
    memset(&rs, 0, sizeof rs);
    rs.ts = ts;
    rs.tid = tid;
    rs.kind = kind == CS_KIND_WALL_IDLE ? CS_KIND_WALL : kind;
    rs.count = count;
    rs.nframes = n;
    rs.npy = npy;
    /* NAME is NUL-terminated within its buffer, which may be shorter than ours */
    memcpy(rs.name, name, strnlen(name, sizeof rs.name - 1));
    strncpy(rs.labels, labels ? labels : "", sizeof rs.labels - 1);
    out_section(o, CS_SEC_SAMPLE,
                (uint32_t)(sizeof rs + 8 * (size_t)n + sizeof(cs_record_pyframe) * (size_t)npy));
    out_put(o, &rs, sizeof rs);
    out_put(o, ips, 8 * (size_t)n);
    put_pyframes(o, py, npy);
}

static void emit_ring_sample(const cs_sample *s, void *ctx)
{
    /* Idle and busy wall samples carry no stack of their own (the writer fills it in from
     * the thread's previous samples): left out. */
    if (s->kind != CS_KIND_CPU && s->kind != CS_KIND_WALL)
        return;
    char name[CS_RECORD_NAME];
    if (!cs_pythreads_name(s->tid, name, sizeof name))
        memcpy(name, s->thread_name, sizeof s->thread_name);
    emit_sample((int64_t)(s->time_ns / 1000000000ull), s->tid, s->kind, s->count, name, s->ips,
                s->nframes, s->py, s->npy, s->tags, ctx);
}

static void emit_process(out *o)
{
    const cs_process_strings *p = cs_shim_process();
    cs_record_process rp;
    memset(&rp, 0, sizeof rp);
    rp.cpu_hz = p->cpu_hz;
    rp.wall_hz = p->wall_hz;
    rp.window_seconds = p->window_seconds;
    rp.app_len = (uint32_t)strlen(p->app);
    rp.exe_len = (uint32_t)strlen(p->exe);
    rp.cmdline_len = (uint32_t)strlen(p->cmdline);
    rp.tags_len = (uint32_t)strlen(p->tags);
    rp.host_len = (uint32_t)strlen(p->host);
    out_section(o, CS_SEC_PROCESS,
                (uint32_t)sizeof rp + rp.app_len + rp.exe_len + rp.cmdline_len + rp.tags_len +
                    rp.host_len);
    out_put(o, &rp, sizeof rp);
    out_put(o, p->app, rp.app_len);
    out_put(o, p->exe, rp.exe_len);
    out_put(o, p->cmdline, rp.cmdline_len);
    out_put(o, p->tags, rp.tags_len);
    out_put(o, p->host, rp.host_len);
}

static void emit_pystack(out *o, int32_t tid, const cs_pyframe *py, int n)
{
    if (n <= 0)
        return;
    cs_record_pystack ps = {.tid = tid, .n = n};
    out_section(o, CS_SEC_PYSTACK, (uint32_t)(sizeof ps + sizeof(cs_record_pyframe) * (size_t)n));
    out_put(o, &ps, sizeof ps);
    put_pyframes(o, py, n);
}

static int is_hang(int sig, const siginfo_t *si)
{
    /* gunicorn's arbiter sends SIGABRT to a worker that timed out, then SIGKILL. */
    return sig == SIGABRT && si && si->si_code == SI_USER && si->si_pid == getppid();
}

static void capture(int sig, siginfo_t *si, ucontext_t *uc)
{
    int hang = is_hang(sig, si);
    pid_t me = (pid_t)syscall(SYS_gettid);
    int64_t start = cs_shim_start_ns();
    cs_sampler_set_crashing(1);
    int writer_frozen = !hang && cs_writer_freeze(WRITER_WAIT_MS) == 0;

    static cs_record_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CS_RECORD_MAGIC, 8);
    h.version = CS_RECORD_VERSION;
    h.header_size = sizeof h;
    h.kind = hang ? CS_CRASH_HANG : CS_CRASH_FATAL;
    h.pid = getpid();
    h.ppid = getppid();
    h.tid = me;
    h.signo = sig;
    h.code = si ? si->si_code : 0;
    h.errno_value = si ? si->si_errno : 0;
    if (si && si->si_code <= 0) {
        h.sender_pid = si->si_pid;
        h.sender_uid = (int32_t)si->si_uid;
    }
    h.fault_address = si ? (uint64_t)(uintptr_t)si->si_addr : 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h.time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    h.start_ns = (uint64_t)start;
    if (!cs_pythreads_name(h.tid, h.thread_name, sizeof h.thread_name))
        prctl(PR_GET_NAME, h.thread_name, 0, 0, 0);
    if (uc) {
        for (int i = 0; i < CS_RECORD_NGREGS && i < NGREG; i++)
            h.gregs[i] = (uint64_t)uc->uc_mcontext.gregs[i];
        h.nframes = cs_unwind_signal_context(uc, h.frames, CS_RECORD_FRAMES);
    }
    static cs_pyframe py[CS_MAX_PYFRAMES];
    /* Reading Python frames needs a deep stack; on a small program altstack (faulthandler's)
     * the crash is recorded without them rather than overflowing into the heap. */
    int npy = cs_sampler_stack_room() >= CS_HANDLER_ROOM
                  ? cs_sampler_python_stack(py, CS_MAX_PYFRAMES)
                  : 0;

    if (fault_in_capture)
        *unmapped_address = 1;

    /* Every other thread, each unwinding itself from its own handler. */
    size_t area_len = sizeof(cs_thread_stack) * MAX_AREA_THREADS;
    cs_thread_stack *area =
        mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int nthreads = cs_thread_high_water();
    if (nthreads > MAX_AREA_THREADS)
        nthreads = MAX_AREA_THREADS;
    if (area != MAP_FAILED)
        cs_sampler_collect_stacks(area, nthreads, hang ? HANG_THREAD_WAIT_MS : THREAD_WAIT_MS);
    else
        area = NULL;

    static char path[PATH_MAX];
    int fd = -1;
    if (cs_helper_record_path(path, sizeof path, h.pid, start) == 0)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        out *o = &rec_out;
        o->fd = fd;
        o->n = 0;
        o->failed = 0;
        out_put(o, &h, sizeof h);
        emit_process(o);
        emit_pystack(o, me, py, npy);
        cs_unwind_each_module(emit_module, o);
        for (int i = 0; area && i < nthreads; i++) {
            cs_thread_stack *t = &area[i];
            if (!t->tid || t->tid == me)
                continue;
            cs_record_thread rt;
            memset(&rt, 0, sizeof rt);
            rt.tid = t->tid;
            int answered = atomic_load(&t->done);
            rt.state = !answered         ? CS_THREAD_NO_ANSWER
                       : t->fault_signal ? CS_THREAD_CRASHED | t->fault_signal << 8
                                         : CS_THREAD_OK;
            rt.nframes = answered ? t->nframes : 0;
            if (!cs_pythreads_name(t->tid, rt.name, sizeof rt.name))
                memcpy(rt.name, t->name, strnlen(t->name, sizeof t->name));
            out_section(o, CS_SEC_THREAD, (uint32_t)(sizeof rt + 8 * (size_t)rt.nframes));
            out_put(o, &rt, sizeof rt);
            out_put(o, t->ips, 8 * (size_t)rt.nframes);
            if (answered)
                emit_pystack(o, t->tid, t->py, t->npy);
        }
        if (writer_frozen) {
            /* The samples of the last second, not yet in the database. */
            cs_writer_dump(emit_sample, o);
            cs_writer_dump_spilled(emit_ring_sample, o); /* moved out of the ring by a flush */
            cs_ring_dump(emit_ring_sample, o);
        }
        out_section(o, CS_SEC_END, 0);
        out_flush(o);
        close(fd);
        if (!o->failed)
            cs_helper_spawn(path);
        else
            unlink(path);
    }
    /* A thread that answers late must not write into the area once it is unmapped (or into
     * whatever is mapped there next): kept mapped rather than that. */
    if (area && cs_sampler_release_stacks(100) == 0)
        munmap(area, area_len);
    if (hang) {
        cs_writer_thaw();
        cs_sampler_set_crashing(0);
    }
}

static void on_fatal(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    cs_unwind_recover_from_fault(sig); /* a torn stack in the sampler: back there */
    cs_guard_recover(sig);             /* a freed Python frame in the sampler: likewise */
    pid_t me = (pid_t)syscall(SYS_gettid);
    if (capture_jb && atomic_load(&owner) == me)
        siglongjmp(*capture_jb, 1); /* a fault inside the capture: abandon it */

    int capture_it = records_ok && cs_shim_active() && !atomic_load(&fatal_captured);
    if (atomic_load(&owner) == me && atomic_load(&chaining)) {
        /* The program's own handler faulted: the default action, as without crashscope. */
        capture_it = 0;
    } else if (capture_it) {
        pid_t expect = 0;
        if (!atomic_compare_exchange_strong(&owner, &expect, me)) {
            /* Another thread is capturing: give it time, then take the program's action.
             * Meanwhile, asked for its stack, this thread answers with its own fault's. */
            cs_thread *self = cs_thread_self();
            if (self) {
                atomic_store(&self->fault_signal, sig);
                atomic_store(&self->fault_context, ucv);
            }
            for (int i = 0;
                 i < OTHER_CRASH_MS && atomic_load(&owner) != 0 && !atomic_load(&chaining); i++) {
                /* Its entry, as soon as the capture collects: even a thread that blocks the
                 * request's signal is then reported at its fault, not as silent. */
                cs_sampler_answer_crash(ucv, sig);
                struct timespec ms = {0, 1000000};
                syscall(SYS_nanosleep, &ms, NULL);
            }
            if (self)
                atomic_store(&self->fault_context, NULL);
            capture_it = 0;
        }
    }
    if (capture_it) {
        sigjmp_buf jb;
        if (sigsetjmp(jb, 1) == 0) {
            capture_jb = &jb;
            capture(sig, si, ucv);
        }
        capture_jb = NULL;
        if (!is_hang(sig, si))
            atomic_store(&fatal_captured, 1);
        atomic_store(&chaining, 1);
    }
    cs_signals_chain(sig, si, ucv);
    if (capture_it && is_hang(sig, si)) {
        /* The program handled the hang and lives on: a later crash is captured again. */
        atomic_store(&chaining, 0);
        atomic_store(&owner, 0);
    }
    errno = saved_errno;
}

int cs_crash_install(const char *db_path)
{
    records_ok = cs_helper_prepare(db_path) == 0;
    const char *t = getenv("CRASHSCOPE_TEST_FAULT_IN_HANDLER");
    fault_in_capture = t && !strcmp(t, "1");
    int rc = 0;
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
        rc |= cs_signals_claim(fatal_signals[i], on_fatal, SA_NODEFER);
    return rc;
}

void cs_crash_after_fork_child(void)
{
    atomic_store(&owner, 0);
    atomic_store(&chaining, 0);
    atomic_store(&fatal_captured, 0);
}
