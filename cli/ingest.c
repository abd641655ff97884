/*
 * ingest.c: `crashscope _ingest`: parse a crash record, symbolize it, store it.
 *
 * A record is claimed by renaming it (atomic), so the helper and a concurrent `crashscope`
 * command never ingest it twice; it is removed only after its transaction committed. A
 * record that does not parse is kept under a .bad name with a message, never deleted: it is
 * evidence. Every length in a record is checked against the file before it is used.
 */
#include "ingest.h"

#include "../crashhandler/record.h"
#include "../recorder/config.h"
#include "../recorder/merge.h"
#include "../recorder/ring.h"
#include "../recorder/symbolize.h"
#include "../storage/storage.h"
#include "signames.h"
#include "srcline.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_RECORD_BYTES (256u << 20)

/* Sections are packed: their fields and frames may sit at any alignment, so everything is
 * copied out with memcpy, never read through a cast pointer. */
typedef struct rstack {
    const unsigned char *raw; /* n little uint64 in the record, any alignment */
    int n;
    const unsigned char *py; /* npy cs_record_pyframe, any alignment */
    int npy;
} rstack;

typedef struct rpystack {
    int32_t tid;
    const unsigned char *py;
    int n;
} rpystack;

typedef struct rthread {
    cs_record_thread t;
    rstack st;
} rthread;

typedef struct rsample {
    cs_record_sample s;
    rstack st;
} rsample;

typedef struct record {
    unsigned char *data;
    size_t len;
    const cs_record_header *h;
    cs_record_process proc;
    char *app, *exe, *cmdline, *tags, *host;
    rthread *threads;
    int nthreads;
    rsample *samples;
    int nsamples;
    rpystack *pystacks;
    int npystacks;
    int complete;
} record;

static char *strndup_or_empty(const unsigned char *p, uint32_t n)
{
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static void record_free(record *r)
{
    free(r->data);
    free(r->app);
    free(r->exe);
    free(r->cmdline);
    free(r->tags);
    free(r->host);
    free(r->threads);
    free(r->samples);
    free(r->pystacks);
}

static int grow(void **p, int n, int *cap, size_t size)
{
    if (n < *cap)
        return 0;
    int c = *cap ? *cap * 2 : 64;
    void *q = realloc(*p, size * (size_t)c);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Parses R->data; module sections go straight into SYM. Returns NULL or a reason. */
static const char *parse(record *r, cs_symbolizer *sym)
{
    if (r->len < sizeof(cs_record_header))
        return "too short for a crash record";
    r->h = (const cs_record_header *)r->data;
    if (memcmp(r->h->magic, CS_RECORD_MAGIC, 8) != 0)
        return "not a crash record";
    if (r->h->version != CS_RECORD_VERSION || r->h->header_size != sizeof(cs_record_header))
        return "a crash record of another version";
    if (r->h->nframes < 0 || r->h->nframes > CS_RECORD_FRAMES)
        return "bad frame count";
    size_t off = sizeof(cs_record_header);
    int cap_t = 0, cap_s = 0, cap_p = 0;
    while (off + 8 <= r->len) {
        uint32_t type, len;
        memcpy(&type, r->data + off, 4);
        memcpy(&len, r->data + off + 4, 4);
        off += 8;
        if (len > r->len - off)
            return "a section runs past the end";
        const unsigned char *p = r->data + off;
        off += len;
        if (type == CS_SEC_END) {
            r->complete = 1;
            break;
        }
        if (type == CS_SEC_PROCESS && len >= sizeof(cs_record_process)) {
            memcpy(&r->proc, p, sizeof r->proc);
            uint64_t total = (uint64_t)r->proc.app_len + r->proc.exe_len + r->proc.cmdline_len +
                             r->proc.tags_len + r->proc.host_len;
            if (total > len - sizeof r->proc)
                return "bad process section";
            p += sizeof r->proc;
            r->app = strndup_or_empty(p, r->proc.app_len);
            p += r->proc.app_len;
            r->exe = strndup_or_empty(p, r->proc.exe_len);
            p += r->proc.exe_len;
            r->cmdline = strndup_or_empty(p, r->proc.cmdline_len);
            p += r->proc.cmdline_len;
            r->tags = strndup_or_empty(p, r->proc.tags_len);
            p += r->proc.tags_len;
            r->host = strndup_or_empty(p, r->proc.host_len);
        } else if (type == CS_SEC_MODULE && len >= sizeof(cs_record_module)) {
            cs_record_module m;
            memcpy(&m, p, sizeof m);
            if (m.path_len > len - sizeof m || m.nseg > CS_RECORD_MAX_SEGS)
                return "bad module section";
            char *path = strndup_or_empty(p + sizeof m, m.path_len);
            if (!path)
                return "out of memory";
            /* The main program is listed without a name. */
            const char *use = *path ? path : (r->exe ? r->exe : "");
            if (*use)
                cs_symbolizer_add(sym, use, m.base, m.lo, m.hi, (int)m.nseg);
            free(path);
        } else if (type == CS_SEC_THREAD && len >= sizeof(cs_record_thread)) {
            rthread t;
            memcpy(&t.t, p, sizeof t.t);
            if (t.t.nframes < 0 || (size_t)t.t.nframes * 8 > len - sizeof t.t)
                return "bad thread section";
            t.st = (rstack){p + sizeof t.t, t.t.nframes, NULL, 0};
            if (grow((void **)&r->threads, r->nthreads, &cap_t, sizeof *r->threads))
                return "out of memory";
            r->threads[r->nthreads++] = t;
        } else if (type == CS_SEC_PYSTACK && len >= sizeof(cs_record_pystack)) {
            cs_record_pystack ps;
            memcpy(&ps, p, sizeof ps);
            if (ps.n < 0 || (size_t)ps.n * sizeof(cs_record_pyframe) > len - sizeof ps)
                return "bad python stack section";
            if (grow((void **)&r->pystacks, r->npystacks, &cap_p, sizeof *r->pystacks))
                return "out of memory";
            r->pystacks[r->npystacks++] = (rpystack){ps.tid, p + sizeof ps, ps.n};
        } else if (type == CS_SEC_SAMPLE && len >= sizeof(cs_record_sample)) {
            rsample s;
            memcpy(&s.s, p, sizeof s.s);
            s.s.labels[sizeof s.s.labels - 1] = 0;
            if (s.s.nframes < 0 || s.s.npy < 0 ||
                (size_t)s.s.nframes * 8 + (size_t)s.s.npy * sizeof(cs_record_pyframe) >
                    len - sizeof s.s)
                return "bad sample section";
            s.st = (rstack){p + sizeof s.s, s.s.nframes, p + sizeof s.s + 8 * (size_t)s.s.nframes,
                            s.s.npy};
            if (grow((void **)&r->samples, r->nsamples, &cap_s, sizeof *r->samples))
                return "out of memory";
            r->samples[r->nsamples++] = s;
        }
    }
    return NULL;
}

static int read_file(const char *path, record *r)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > MAX_RECORD_BYTES) {
        fclose(f);
        errno = EFBIG;
        return -1;
    }
    r->data = malloc((size_t)st.st_size);
    r->len = r->data ? fread(r->data, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    return r->data ? 0 : -1;
}

typedef struct ctx {
    cs_db *db;
    cs_symbolizer *sym;
    cs_srcline *src;
    int64_t now;
} ctx;

/* Stores STACK (frame 0 exact, the others return addresses, then its Python frames spliced
 * in at the evaluation loop) and returns its id. crashscope's own frames are left out, as the
 * recorder does. */
static int64_t store_stack(ctx *c, const rstack *st, int with_lines, int64_t pin)
{
    int64_t nat[CS_RECORD_FRAMES > CS_MAX_FRAMES ? CS_RECORD_FRAMES : CS_MAX_FRAMES];
    uint8_t eval[sizeof nat / sizeof nat[0]], entry[CS_MAX_PYFRAMES];
    int nn = 0;
    for (int i = 0; i < st->n && nn < (int)(sizeof nat / sizeof nat[0]); i++) {
        uint64_t ip;
        memcpy(&ip, st->raw + 8 * (size_t)i, 8);
        cs_symbol sym;
        cs_symbolizer_lookup(c->sym, ip, i > 0, &sym);
        if (sym.module) {
            const char *b = strrchr(sym.module, '/');
            if (!strcmp(b ? b + 1 : sym.module, "libcrashscope.so"))
                continue;
        }
        int64_t module_id = 0;
        if (sym.module && (module_id = cs_db_module_id(c->db, sym.module, sym.build_id)) < 0)
            return -1;
        const char *file = NULL;
        int line = 0;
        if (with_lines && sym.module)
            cs_srcline_lookup(c->src, sym.module, sym.rel - (i > 0 ? 1 : 0), &file, &line);
        int64_t id = cs_db_frame_id_line(c->db, module_id, sym.rel, sym.function, file, line,
                                         pin ? pin : c->now);
        if (id <= 0)
            return -1;
        eval[nn] = (uint8_t)cs_merge_is_eval(sym.function);
        nat[nn++] = id;
    }
    int npy = st->npy < CS_MAX_PYFRAMES ? st->npy : CS_MAX_PYFRAMES;
    cs_record_pyframe pf[CS_MAX_PYFRAMES];
    for (int j = 0; j < npy; j++) {
        memcpy(&pf[j], st->py + sizeof(cs_record_pyframe) * (size_t)j, sizeof pf[j]);
        pf[j].qualname[sizeof pf[j].qualname - 1] = 0;
        pf[j].filename[sizeof pf[j].filename - 1] = 0;
        entry[j] = (pf[j].flags & CS_PYF_ENTRY) != 0;
    }
    cs_merged order[sizeof nat / sizeof nat[0] + CS_MAX_PYFRAMES];
    int no = cs_merge(eval, nn, entry, npy, order);
    int64_t ids[sizeof order / sizeof order[0] + 1];
    int n = 0;
    for (int k = 0; k < no; k++) {
        int64_t id;
        if (order[k].python) {
            const cs_record_pyframe *f = &pf[order[k].index];
            int64_t module_id = cs_db_module_id(c->db, f->filename, "");
            id = module_id < 0 ? -1
                               : cs_db_python_frame_id(c->db, module_id, f->qualname, f->filename,
                                                       f->line, pin ? pin : c->now);
        } else {
            id = nat[order[k].index];
        }
        if (id <= 0)
            return -1;
        ids[n++] = id;
    }
    if (n == 0 && (ids[n++] = cs_db_frame_id(c->db, 0, 0, "[unknown]", c->now)) <= 0)
        return -1;
    return cs_db_stack_id(c->db, ids, n, c->now);
}

static void warm(ctx *c, const unsigned char *raw, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t ip;
        memcpy(&ip, raw + 8 * (size_t)i, 8);
        cs_symbol sym;
        cs_symbolizer_lookup(c->sym, ip, i > 0, &sym);
        const char *file;
        int line;
        if (sym.module)
            cs_srcline_lookup(c->src, sym.module, sym.rel - (i > 0 ? 1 : 0), &file, &line);
    }
}

/* The Python frames the record holds for thread TID, into ST. */
static void attach_python(const record *r, int32_t tid, rstack *st)
{
    for (int i = 0; i < r->npystacks; i++)
        if (r->pystacks[i].tid == tid) {
            st->py = r->pystacks[i].py;
            st->npy = r->pystacks[i].n;
            return;
        }
}

static void registers_text(const cs_record_header *h, char *out, size_t len)
{
    static const char *const names[CS_RECORD_NGREGS] = {
        "r8",  "r9",     "r10",    "r11", "r12",    "r13",     "r14", "r15",
        "rdi", "rsi",    "rbp",    "rbx", "rdx",    "rax",     "rcx", "rsp",
        "rip", "eflags", "csgsfs", "err", "trapno", "oldmask", "cr2"};
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < CS_RECORD_NGREGS && o + 40 < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s=0x%" PRIx64, i ? " " : "", names[i],
                              h->gregs[i]);
}

static long long store(const char *db_path, const char *record_name, record *r, cs_symbolizer *sym,
                       char *err, size_t errlen)
{
    cs_db *db = cs_db_open(db_path, 0, err, errlen);
    if (!db)
        return -1;
    ctx c = {.db = db, .sym = sym, .src = cs_srcline_new(), .now = (int64_t)time(NULL)};
    const cs_record_header *h = r->h;
    /* Read symbol tables and line tables before taking the database's write lock: recorded
     * processes flush into the same file and must not wait for our file reading. */
    warm(&c, (const unsigned char *)h->frames, h->nframes);
    for (int i = 0; i < r->nthreads; i++)
        warm(&c, r->threads[i].st.raw, r->threads[i].st.n);
    long long crash_id = -1;
    for (int attempt = 0; attempt < 20 && cs_db_begin(db) != 0; attempt++) {
        struct timespec t = {0, 250000000};
        nanosleep(&t, NULL); /* the database is busy: writers hold it for milliseconds */
    }
    cs_process_info pi = {
        .pid = h->pid,
        .ppid = h->ppid,
        .app_name = r->app ? r->app : "",
        .exe = r->exe ? r->exe : "",
        .cmdline = r->cmdline ? r->cmdline : "",
        .tags = r->tags ? r->tags : "",
        .hostname = r->host ? r->host : "",
        .start_ns = (int64_t)h->start_ns,
        .cpu_hz = r->proc.cpu_hz,
        .wall_hz = r->proc.wall_hz,
        .window_seconds = r->proc.window_seconds,
    };
    int64_t pid_row = cs_db_process_insert(db, &pi);
    int ok = pid_row > 0;
    int64_t cpu_period = r->proc.cpu_hz > 0 ? 1000000000LL / r->proc.cpu_hz : 0;
    int64_t wall_period = r->proc.wall_hz > 0 ? 1000000000LL / r->proc.wall_hz : 0;
    for (int i = 0; ok && i < r->nsamples; i++) {
        const cs_record_sample *s = &r->samples[i].s;
        int cpu = s->kind == CS_KIND_CPU;
        char name[CS_RECORD_NAME + 1];
        memcpy(name, s->name, CS_RECORD_NAME);
        name[CS_RECORD_NAME] = 0;
        int64_t sid = store_stack(&c, &r->samples[i].st, 0, 0);
        ok = sid > 0 &&
             cs_db_sample_add(db, pid_row, h->pid, s->ts, s->tid, name, cpu ? "cpu" : "wall", sid,
                              s->count, s->count * (cpu ? cpu_period : wall_period),
                              s->labels[0] ? s->labels : NULL) == 0;
    }
    rstack main_stack = {(const unsigned char *)h->frames, h->nframes, NULL, 0};
    attach_python(r, h->tid, &main_stack);
    int64_t crash_stack = ok ? store_stack(&c, &main_stack, 1, CS_PINNED_S) : -1;
    ok = ok && crash_stack > 0;
    char regs[1024];
    registers_text(h, regs, sizeof regs);
    char tname[CS_RECORD_NAME + 1];
    memcpy(tname, h->thread_name, CS_RECORD_NAME);
    tname[CS_RECORD_NAME] = 0;
    cs_crash_row cr = {
        .process_id = pid_row,
        .pid = h->pid,
        .time_ns = (int64_t)h->time_ns,
        .signo = h->signo,
        .code = h->code,
        .fault_address = h->fault_address,
        .sender_pid = h->sender_pid,
        .tid = h->tid,
        .thread_name = tname,
        .stack_id = crash_stack,
        .registers = regs,
        .samples_saved = r->nsamples,
    };
    snprintf(cr.kind, sizeof cr.kind, "%s", h->kind == CS_CRASH_HANG ? "hang" : "crash");
    if (ok) {
        crash_id = cs_db_crash_insert(db, &cr, record_name);
        ok = crash_id >= 0;
    }
    for (int i = 0; ok && crash_id > 0 && i < r->nthreads; i++) {
        const cs_record_thread *t = &r->threads[i].t;
        char name[CS_RECORD_NAME + 1];
        memcpy(name, t->name, CS_RECORD_NAME);
        name[CS_RECORD_NAME] = 0;
        cs_crash_thread_row tr = {.tid = t->tid, .name = name};
        int crashed = (t->state & 0xff) == CS_THREAD_CRASHED;
        if (crashed)
            snprintf(tr.state, sizeof tr.state, "crashed %s", cs_signal_name(t->state >> 8));
        else
            snprintf(tr.state, sizeof tr.state, "%s",
                     t->state == CS_THREAD_OK ? "ok" : "no answer");
        if (t->state == CS_THREAD_OK || crashed) {
            attach_python(r, t->tid, &r->threads[i].st);
            tr.stack_id = store_stack(&c, &r->threads[i].st, 1, CS_PINNED_S);
            ok = tr.stack_id > 0;
        }
        ok = ok && cs_db_crash_thread_insert(db, crash_id, &tr) == 0;
    }
    for (int i = 0; ok && crash_id > 0 && i < cs_symbolizer_count(sym); i++) {
        const char *path, *build_id;
        uint64_t base;
        if (cs_symbolizer_module(sym, i, &path, &base, &build_id) == 0)
            ok = cs_db_crash_module_insert(db, crash_id, path, base, build_id) == 0;
    }
    if (ok && crash_id > 0 && h->kind == CS_CRASH_FATAL)
        ok = cs_db_process_end(db, pid_row, (int64_t)h->time_ns, "crash") == 0;
    if (ok && crash_id > 0)
        ok = cs_db_pin_process(db, pid_row, crash_id) == 0;
    if (!ok || cs_db_commit(db) != 0) {
        snprintf(err, errlen, "%s", cs_db_error(db));
        cs_db_rollback(db);
        crash_id = -1;
    }
    cs_srcline_free(c.src);
    cs_db_close(db);
    return crash_id;
}

long long cs_ingest_record(const char *db_path, const char *path, int verbose)
{
    /* Claim it: whoever renames it first ingests it. */
    char claimed[PATH_MAX];
    snprintf(claimed, sizeof claimed, "%s.ingesting-%d", path, (int)getpid());
    if (rename(path, claimed) != 0) {
        if (verbose)
            fprintf(stderr, "crashscope: %s: %s\n", path, strerror(errno));
        return errno == ENOENT ? 0 : -1;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    record r = {0};
    cs_symbolizer *sym = cs_symbolizer_new_static();
    char err[512] = "";
    long long id = -1;
    const char *why = NULL;
    if (!sym || read_file(claimed, &r) != 0)
        why = strerror(errno);
    else
        why = parse(&r, sym);
    if (why) {
        char bad[PATH_MAX];
        snprintf(bad, sizeof bad, "%s.bad", path);
        rename(claimed, bad);
        fprintf(stderr, "crashscope: crash record %s cannot be read (%s); kept as %s\n", path, why,
                bad);
    } else {
        id = store(db_path, base, &r, sym, err, sizeof err);
        if (id >= 0) {
            unlink(claimed);
        } else {
            rename(claimed, path); /* give it back for the next attempt */
            fprintf(stderr, "crashscope: could not store crash record %s: %s\n", path, err);
        }
    }
    record_free(&r);
    cs_symbolizer_free(sym);
    return id;
}

/* The record directory of DB_PATH, opened, its path in DIR; NULL when there is none. */
static DIR *records_dir(const char *db_path, char dir[PATH_MAX])
{
    if (snprintf(dir, PATH_MAX, "%s.crashes", db_path) >= PATH_MAX)
        return NULL;
    return opendir(dir);
}

int cs_records_in_flight(const char *db_path, time_t since)
{
    char dir[PATH_MAX];
    DIR *d = records_dir(db_path, dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        int record = (len > 6 && !strcmp(e->d_name + len - 6, ".crash")) ||
                     strstr(e->d_name, ".crash.ingesting-");
        struct stat st;
        char path[PATH_MAX];
        if (record && snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            stat(path, &st) == 0 && st.st_mtime >= since)
            n++;
    }
    closedir(d);
    return n;
}

int cs_ingest_pending(const char *db_path)
{
    char dir[PATH_MAX];
    DIR *d = records_dir(db_path, dir);
    if (!d)
        return 0;
    int done = 0;
    struct dirent *e;
    time_t now = time(NULL);
    while ((e = readdir(d))) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        const char *ing = strstr(e->d_name, ".crash.ingesting-");
        if (ing) {
            /* An ingester that died half-way: give its record back. */
            int pid = atoi(ing + strlen(".crash.ingesting-"));
            if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
                char orig[PATH_MAX];
                snprintf(orig, sizeof orig, "%.*s.crash", (int)(ing - e->d_name), e->d_name);
                char back[PATH_MAX];
                if (snprintf(back, sizeof back, "%s/%s", dir, orig) < (int)sizeof back)
                    rename(path, back);
            }
            continue;
        }
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".crash") != 0)
            continue;
        struct stat st;
        /* A record younger than two seconds may still be being written by its process. */
        if (stat(path, &st) != 0 || now - st.st_mtime < 2)
            continue;
        if (cs_ingest_record(db_path, path, 0) > 0)
            done++;
    }
    closedir(d);
    return done;
}
