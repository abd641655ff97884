/*
 * report.c: the crash report, for a person (text) and for scripts (JSON).
 *
 * The text is what somebody debugging at 3 a.m. needs first: what killed the process, where,
 * in which thread, what every other thread was doing, and what the process was busy with in
 * the minute before. The JSON carries the same, with stable keys (see README).
 * Read-only: never writes the database.
 */
#include "report.h"

#include "../uploader/profile.h"
#include "json.h"
#include "signames.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cs_format_time(int64_t ns, char *out, size_t len, int iso)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char d[32];
    strftime(d, sizeof d, iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
    int ms = (int)((ns / 1000000) % 1000);
    snprintf(out, len, "%.20s.%03d%s", d, ms < 0 ? 0 : ms, iso ? "Z" : " UTC");
}

static const char *base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p;
}

static int is_system_module(const char *m)
{
    const char *b = base_name(m);
    return b &&
           (!strncmp(b, "libc.so", 7) || !strncmp(b, "libc-", 5) || !strncmp(b, "ld-linux", 8) ||
            !strncmp(b, "libpthread", 10) || !strncmp(b, "libcrashscope", 13));
}

int cs_culprit_frame(const cs_frame_row *f, int n)
{
    for (int i = 0; i < n; i++)
        if (!is_system_module(f[i].module))
            return i;
    return 0;
}

void cs_crash_where(const cs_frame_row *f, int n, char *out, size_t len)
{
    out[0] = 0;
    if (n <= 0)
        return;
    int i = cs_culprit_frame(f, n);
    char buf[96];
    size_t k = (size_t)snprintf(out, len, "%s", cs_frame_name(&f[i], buf, sizeof buf));
    if (k < len && f[i].file)
        k += (size_t)snprintf(out + k, len - k, " at %s:%" PRId64, f[i].file, f[i].line);
    if (strcmp(f[i].kind, "native") != 0)
        return;
    /* A native fault under Python code (ctypes, an extension): the Python line that led
     * there is what its author recognises, the program's own rather than the standard
     * library's or an installed package's (under .../lib/python...), when there is one. */
    int own = -1, any = -1;
    for (int p = i + 1; p < n && own < 0; p++) {
        if (strcmp(f[p].kind, "python") != 0)
            continue;
        if (any < 0)
            any = p;
        if (f[p].file && f[p].file[0] != '<' && !strstr(f[p].file, "/lib/python"))
            own = p;
    }
    int py = own >= 0 ? own : any;
    if (py >= 0 && k < len)
        snprintf(out + k, len - k, ", called from Python %s at %s:%" PRId64,
                 f[py].function ? f[py].function : "?", f[py].file ? f[py].file : "?", f[py].line);
}

static void text_stack(FILE *out, cs_db *db, int64_t stack_id, const char *indent, int limit)
{
    cs_frame_row *f;
    int n;
    if (stack_id <= 0 || cs_db_stack_frames(db, stack_id, &f, &n) != 0) {
        fprintf(out, "%s(no stack)\n", indent);
        return;
    }
    for (int i = 0; i < n && i < limit; i++) {
        char buf[96], where[512] = "";
        if (f[i].file)
            snprintf(where, sizeof where, "%s:%" PRId64, f[i].file, f[i].line);
        /* module+offset, for native frames that have a name to go with it: a Python frame's
         * "address" is its line, and an unnamed frame is already called module+offset */
        char mod[160] = "";
        const char *name = cs_frame_name(&f[i], buf, sizeof buf);
        if (f[i].module && strcmp(f[i].kind, "python") != 0 && name != buf)
            snprintf(mod, sizeof mod, "%s+0x%" PRIx64, base_name(f[i].module), f[i].address);
        fprintf(out, "%s#%-3d %-32s %s%s%s\n", indent, i, name, where, *where && *mod ? "  " : "",
                mod);
    }
    if (n > limit)
        fprintf(out, "%s... %d more frames\n", indent, n - limit);
    cs_frames_free(f, n);
}

static void json_stack(FILE *out, cs_db *db, int64_t stack_id)
{
    cs_frame_row *f;
    int n;
    fputc('[', out);
    if (stack_id > 0 && cs_db_stack_frames(db, stack_id, &f, &n) == 0) {
        for (int i = 0; i < n; i++) {
            char buf[96], addr[24];
            fputs(i ? ",{" : "{", out);
            cs_json_key(out, "function", 1);
            cs_json_str(out, cs_frame_name(&f[i], buf, sizeof buf));
            cs_json_key(out, "module", 0);
            cs_json_str(out, f[i].module);
            cs_json_key(out, "file", 0);
            cs_json_str(out, f[i].file);
            cs_json_key(out, "line", 0);
            if (f[i].file)
                fprintf(out, "%" PRId64, f[i].line);
            else
                fputs("null", out);
            cs_json_key(out, "kind", 0);
            cs_json_str(out, f[i].kind);
            cs_json_key(out, "address", 0);
            snprintf(addr, sizeof addr, "0x%" PRIx64, f[i].address);
            cs_json_str(out, addr);
            fputc('}', out);
        }
        cs_frames_free(f, n);
    }
    fputc(']', out);
}

typedef struct window_ctx {
    FILE *out;
    int json, first;
    int64_t crash_s;
    int64_t cpu, wall;
} window_ctx;

static int on_second(int64_t ts, int64_t cpu, int64_t wall, const char *top, int64_t top_n,
                     void *arg)
{
    window_ctx *w = arg;
    w->cpu += cpu;
    w->wall += wall;
    if (w->json) {
        fputs(w->first ? "{" : ",{", w->out);
        w->first = 0;
        cs_json_key(w->out, "ts", 1);
        fprintf(w->out, "%" PRId64, ts);
        cs_json_key(w->out, "cpu", 0);
        fprintf(w->out, "%" PRId64, cpu);
        cs_json_key(w->out, "wall", 0);
        fprintf(w->out, "%" PRId64, wall);
        cs_json_key(w->out, "top", 0);
        cs_json_str(w->out, top);
        fputc('}', w->out);
    } else {
        char t[40];
        cs_format_time(ts * 1000000000LL, t, sizeof t, 0);
        fprintf(w->out, "  %.8s %4" PRId64 "s  cpu %4" PRId64 "  wall %5" PRId64 "  %s", t + 11,
                ts - w->crash_s, cpu, wall, top ? top : "");
        if (top && cpu > 0)
            fprintf(w->out, " (%" PRId64 "%%)", top_n * 100 / cpu);
        fputc('\n', w->out);
    }
    return 0;
}

typedef struct top_ctx {
    FILE *out;
    int json, first;
    int64_t total;
} top_ctx;

/* One row of "where the CPU went": a function, and for a Python one its file and line. */
static void top_row(top_ctx *t, const char *fn, const char *file, int64_t line, int64_t count)
{
    if (t->json) {
        fputs(t->first ? "{" : ",{", t->out);
        cs_json_key(t->out, "function", 1);
        cs_json_str(t->out, fn);
        if (file) {
            cs_json_key(t->out, "file", 0);
            cs_json_str(t->out, file);
            cs_json_key(t->out, "line", 0);
            fprintf(t->out, "%" PRId64, line);
        }
        cs_json_key(t->out, "samples", 0);
        fprintf(t->out, "%" PRId64 "}", count);
    } else {
        double share = t->total ? 100.0 * (double)count / (double)t->total : 0;
        if (!file)
            fprintf(t->out, "  %5.1f%%  %s\n", share, fn ? fn : "?");
        else {
            if (t->first)
                fputs("  by Python function (the innermost of each sample, what it called "
                      "included;\n  file:line is its line with the most samples):\n",
                      t->out);
            fprintf(t->out, "  %5.1f%%  %-32s %s:%" PRId64 "\n", share, fn ? fn : "?", file, line);
        }
    }
    t->first = 0;
}

static int on_top_python(const char *fn, const char *file, int64_t line, int64_t count, void *arg)
{
    top_row(arg, fn, file ? file : "?", line, count);
    return 0;
}

static int on_top(const char *fn, int64_t count, void *arg)
{
    top_row(arg, fn, NULL, 0, count);
    return 0;
}

typedef struct mod_ctx {
    FILE *out;
    int first;
} mod_ctx;

static int on_module(const char *path, uint64_t base, const char *build_id, void *arg)
{
    mod_ctx *m = arg;
    char b[24];
    fputs(m->first ? "{" : ",{", m->out);
    m->first = 0;
    cs_json_key(m->out, "path", 1);
    cs_json_str(m->out, path);
    snprintf(b, sizeof b, "0x%" PRIx64, base);
    cs_json_key(m->out, "base", 0);
    cs_json_str(m->out, b);
    cs_json_key(m->out, "build_id", 0);
    cs_json_str(m->out, build_id);
    fputc('}', m->out);
    return 0;
}

static void json_registers(FILE *out, const char *regs)
{
    fputc('{', out);
    int first = 1;
    char *copy = regs ? strdup(regs) : NULL;
    for (char *save = NULL, *tok = copy ? strtok_r(copy, " ", &save) : NULL; tok;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        cs_json_key(out, tok, first);
        cs_json_str(out, eq + 1);
        first = 0;
    }
    free(copy);
    fputc('}', out);
}

/* The difference R - P of a counter, right-aligned in WIDTH: "-" on the first row (no second
 * before it in the window) or when either side is unknown. */
static const char *delta(char *buf, size_t len, int width, int64_t r, int64_t p, int have_p)
{
    if (!have_p || r < 0 || p < 0)
        snprintf(buf, len, "%*s", width, "-");
    else
        snprintf(buf, len, "%*" PRId64, width, r - p);
    return buf;
}

/* User + system CPU of a timeline row, -1 when either is unknown. */
static int64_t cpu_ms(const cs_timeline_row *r)
{
    return r->cpu_user_ms >= 0 && r->cpu_system_ms >= 0 ? r->cpu_user_ms + r->cpu_system_ms : -1;
}

/* The process timeline before the crash: one line per second, counters as differences; then,
 * when allocations were sampled, the command that shows where the live heap came from. */
static void text_timeline(FILE *out, const cs_timeline_row *t, int n, const char *db_path, int pid)
{
    fputs("\nthe process, second by second (cpu: user+system ms in that second; threads: as the\n"
          "kernel counts them, crashscope's 2 included; faults and context switches in that\n"
          "second; heap: live bytes estimated from allocation samples):\n"
          "  second     rss MiB  peak MiB  cpu ms  threads  +new -gone   fds  minflt majflt"
          "  vol-cs invol-cs  heap MiB\n",
          out);
    for (int i = 0; i < n; i++) {
        const cs_timeline_row *r = &t[i], *p = i ? &t[i - 1] : r;
        char when[40], heap[24], d[7][24];
        cs_format_time(r->ts * 1000000000LL, when, sizeof when, 0);
        char hms[9];
        snprintf(hms, sizeof hms, "%.8s", strlen(when) > 11 ? when + 11 : when);
        if (r->heap_live_bytes >= 0)
            snprintf(heap, sizeof heap, "%9.1f", (double)r->heap_live_bytes / 1048576.0);
        else
            snprintf(heap, sizeof heap, "%9s", "-");
        fprintf(out, "  %s %9.1f %9.1f %s %8" PRId64 " %s %s %5" PRId64 " %s %s %s %s %s\n", hms,
                (double)r->rss_kb / 1024.0, (double)r->peak_rss_kb / 1024.0,
                delta(d[0], sizeof d[0], 7, cpu_ms(r), cpu_ms(p), i > 0), r->threads,
                delta(d[1], sizeof d[1], 5, r->threads_created, p->threads_created, i > 0),
                delta(d[2], sizeof d[2], 5, r->threads_exited, p->threads_exited, i > 0), r->fds,
                delta(d[3], sizeof d[3], 7, r->minor_faults, p->minor_faults, i > 0),
                delta(d[4], sizeof d[4], 6, r->major_faults, p->major_faults, i > 0),
                delta(d[5], sizeof d[5], 7, r->voluntary_cs, p->voluntary_cs, i > 0),
                delta(d[6], sizeof d[6], 8, r->involuntary_cs, p->involuntary_cs, i > 0), heap);
    }
    if (n > 0 && t[n - 1].heap_live_bytes >= 0)
        fprintf(out,
                "  where that heap was allocated (live blocks by allocation stack, at the last "
                "second):\n    crashscope export --db %s --type inuse_space --pid %d --until "
                "%" PRId64 " -o heap.pb.gz && go tool pprof -top heap.pb.gz\n",
                db_path ? db_path : "DB", pid, t[n - 1].ts);
}

static void json_timeline(FILE *out, const cs_timeline_row *t, int n)
{
    fputc('[', out);
    for (int i = 0; i < n; i++) {
        const cs_timeline_row *r = &t[i];
        fprintf(out,
                "%s{\"ts\":%" PRId64 ",\"rss_kb\":%" PRId64 ",\"peak_rss_kb\":%" PRId64
                ",\"cpu_user_ms\":%" PRId64 ",\"cpu_system_ms\":%" PRId64 ",\"threads\":%" PRId64
                ",\"fds\":%" PRId64 ",\"minor_faults\":%" PRId64 ",\"major_faults\":%" PRId64
                ",\"voluntary_cs\":%" PRId64 ",\"involuntary_cs\":%" PRId64
                ",\"threads_created\":%" PRId64 ",\"threads_exited\":%" PRId64
                ",\"heap_live_bytes\":%" PRId64 "}",
                i ? "," : "", r->ts, r->rss_kb, r->peak_rss_kb, r->cpu_user_ms, r->cpu_system_ms,
                r->threads, r->fds, r->minor_faults, r->major_faults, r->voluntary_cs,
                r->involuntary_cs, r->threads_created, r->threads_exited, r->heap_live_bytes);
    }
    fputc(']', out);
}

int cs_report_print(cs_db *db, const char *db_path, int64_t id, int seconds, int json, FILE *out)
{
    cs_crash_row c;
    int found = cs_db_crash_get(db, id, &c);
    if (found <= 0)
        return found < 0 ? -1 : 1;
    cs_frame_row *frames = NULL;
    int nframes = 0;
    cs_db_stack_frames(db, c.stack_id, &frames, &nframes);
    int culprit = cs_culprit_frame(frames, nframes);
    cs_crash_thread_row *threads = NULL;
    int nthreads = 0;
    cs_db_crash_threads(db, c.id, &threads, &nthreads);
    int64_t crash_s = c.time_ns / 1000000000;
    int64_t from = crash_s - seconds + 1;
    cs_timeline_row *tl = NULL;
    int ntl = 0;
    cs_db_timeline(db, c.process_id, from, crash_s, &tl, &ntl);
    char when[40], fault[24];
    snprintf(fault, sizeof fault, "0x%" PRIx64, c.fault_address);
    const char *sig = cs_signal_name(c.signo);
    char signame[16];
    snprintf(signame, sizeof signame, "%s", sig);

    if (json) {
        fputs("{\"crash\":{", out);
        cs_json_key(out, "id", 1);
        fprintf(out, "%" PRId64, c.id);
        cs_json_key(out, "kind", 0);
        cs_json_str(out, c.kind);
        cs_json_key(out, "pid", 0);
        fprintf(out, "%d", c.pid);
        cs_json_key(out, "ppid", 0);
        fprintf(out, "%d", c.ppid);
        cs_json_key(out, "app", 0);
        cs_json_str(out, c.app_name);
        int death = !strcmp(c.kind, "death");
        cs_json_key(out, "signal", 0);
        cs_json_str(out, death ? NULL : signame);
        cs_json_key(out, "signal_number", 0);
        fprintf(out, "%d", c.signo);
        cs_json_key(out, "code", 0);
        cs_json_str(out, death ? NULL : cs_code_name(c.signo, c.code));
        cs_json_key(out, "code_description", 0);
        cs_json_str(out, death ? NULL : cs_code_text(c.signo, c.code));
        cs_json_key(out, "fault_address", 0);
        cs_json_str(out, fault);
        cs_json_key(out, "sender_pid", 0);
        fprintf(out, "%d", c.sender_pid);
        cs_format_time(c.time_ns, when, sizeof when, 1);
        cs_json_key(out, "time", 0);
        cs_json_str(out, when);
        cs_json_key(out, "time_ns", 0);
        fprintf(out, "%" PRId64, c.time_ns);
        cs_json_key(out, "thread", 0);
        fputc('{', out);
        cs_json_key(out, "tid", 1);
        fprintf(out, "%d", c.tid);
        cs_json_key(out, "name", 0);
        cs_json_str(out, c.thread_name);
        fputc('}', out);
        cs_json_key(out, "culprit_frame", 0);
        fprintf(out, "%d", culprit);
        cs_json_key(out, "stack", 0);
        json_stack(out, db, c.stack_id);
        cs_json_key(out, "threads", 0);
        fputc('[', out);
        for (int i = 0; i < nthreads; i++) {
            fputs(i ? ",{" : "{", out);
            cs_json_key(out, "tid", 1);
            fprintf(out, "%d", threads[i].tid);
            cs_json_key(out, "name", 0);
            cs_json_str(out, threads[i].name);
            cs_json_key(out, "state", 0);
            cs_json_str(out, threads[i].state);
            cs_json_key(out, "stack", 0);
            json_stack(out, db, threads[i].stack_id);
            fputc('}', out);
        }
        fputc(']', out);
        cs_json_key(out, "timeline", 0);
        json_timeline(out, tl, ntl);
        cs_json_key(out, "registers", 0);
        json_registers(out, c.registers);
        cs_json_key(out, "modules", 0);
        fputc('[', out);
        mod_ctx mc = {out, 1};
        cs_db_crash_modules(db, c.id, on_module, &mc);
        fputc(']', out);
        cs_json_key(out, "samples_saved_at_crash", 0);
        fprintf(out, "%d", c.samples_saved);
        cs_upload_summary u;
        cs_db_upload_summary(db, c.id, &u);
        cs_json_key(out, "upload", 0);
        fprintf(out,
                "{\"total\":%d,\"sent\":%d,\"pending\":%d,\"too_old\":%d,\"refused\":%d,"
                "\"crash_profile_sent\":%s,\"last_status\":%ld",
                u.total, u.sent, u.pending, u.too_old, u.refused,
                u.crash_profile_sent ? "true" : "false", u.last_status);
        cs_json_key(out, "last_endpoint", 0);
        cs_json_str(out, u.last_endpoint[0] ? u.last_endpoint : NULL);
        cs_json_key(out, "last_error", 0);
        cs_json_str(out, u.last_error[0] ? u.last_error : NULL);
        fputc('}', out);
        fputs("},\"process\":{", out);
        cs_json_key(out, "pid", 1);
        fprintf(out, "%d", c.pid);
        cs_json_key(out, "exe", 0);
        cs_json_str(out, c.exe);
        cs_json_key(out, "cmdline", 0);
        cs_json_str(out, c.cmdline);
        cs_json_key(out, "hostname", 0);
        cs_json_str(out, c.hostname);
        cs_format_time(c.start_ns, when, sizeof when, 1);
        cs_json_key(out, "start", 0);
        cs_json_str(out, when);
        fputs("},\"window\":{", out);
        cs_format_time(from * 1000000000LL, when, sizeof when, 1);
        cs_json_key(out, "from", 1);
        cs_json_str(out, when);
        cs_format_time(c.time_ns, when, sizeof when, 1);
        cs_json_key(out, "until", 0);
        cs_json_str(out, when);
        cs_json_key(out, "seconds", 0);
        fputc('[', out);
        window_ctx w = {.out = out, .json = 1, .first = 1, .crash_s = crash_s};
        cs_db_seconds(db, c.process_id, from, crash_s, on_second, &w);
        fputc(']', out);
        cs_json_key(out, "samples", 0);
        fprintf(out, "{\"cpu\":%" PRId64 ",\"wall\":%" PRId64 "}", w.cpu, w.wall);
        cs_json_key(out, "top_cpu", 0);
        fputc('[', out);
        top_ctx t = {.out = out, .json = 1, .first = 1};
        cs_db_top_functions(db, c.process_id, "cpu", from, crash_s, 10, on_top, &t);
        fputc(']', out);
        cs_json_key(out, "top_cpu_python", 0);
        fputc('[', out);
        top_ctx tp = {.out = out, .json = 1, .first = 1};
        cs_db_top_python(db, c.process_id, "cpu", from, crash_s, 10, on_top_python, &tp);
        fputs("]}}\n", out);
    } else {
        cs_format_time(c.time_ns, when, sizeof when, 0);
        int hang = !strcmp(c.kind, "hang");
        if (!strcmp(c.kind, "death")) {
            fprintf(out,
                    "crash %" PRId64 ": %s (pid %d) vanished, last seen %s\n"
                    "  no exit and no crash record: killed by a signal crashscope does not "
                    "capture (SIGKILL, as the OOM killer\n  sends; SIGTERM, SIGINT or SIGHUP "
                    "left to their default action), or the machine stopped\n"
                    "  command: %s (parent %d, ran %.1f s)\n",
                    c.id, c.app_name ? c.app_name : "?", c.pid, when, c.cmdline ? c.cmdline : "?",
                    c.ppid, (double)(c.time_ns - c.start_ns) / 1e9);
            goto window;
        }
        fprintf(out, "crash %" PRId64 ": %s (pid %d) %s %s at %s\n", c.id,
                c.app_name ? c.app_name : "?", c.pid, hang ? "was stopped as hung by" : "died of",
                signame, when);
        if (hang)
            fprintf(out, "  %s sent by pid %d (its parent): a worker timeout, not a crash\n",
                    signame, c.sender_pid);
        else if (c.code <= 0)
            fprintf(out, "  %s (%s), sent by pid %d\n", cs_code_name(c.signo, c.code),
                    cs_code_text(c.signo, c.code), c.sender_pid);
        else
            fprintf(out, "  %s (%s), fault address %s\n", cs_code_name(c.signo, c.code),
                    cs_code_text(c.signo, c.code), fault);
        fprintf(out, "  thread \"%s\" (tid %d)", c.thread_name ? c.thread_name : "", c.tid);
        if (nframes) {
            char where[1024];
            cs_crash_where(frames, nframes, where, sizeof where);
            fprintf(out, ", in %s", where);
        }
        fprintf(out, "\n  command: %s (parent %d, ran %.1f s)\n", c.cmdline ? c.cmdline : "?",
                c.ppid, (double)(c.time_ns - c.start_ns) / 1e9);
        fprintf(out, "\nstack of the %s thread (innermost first):\n",
                hang ? "signalled" : "crashing");
        text_stack(out, db, c.stack_id, "  ", 64);
        int answered = 0;
        for (int i = 0; i < nthreads; i++)
            answered += strcmp(threads[i].state, "no answer") != 0;
        fprintf(out, "\nother threads (%d, %d answered):\n", nthreads, answered);
        for (int i = 0; i < nthreads; i++) {
            const char *st = threads[i].state;
            fprintf(out, "  tid %d \"%s\"", threads[i].tid, threads[i].name ? threads[i].name : "");
            if (!strcmp(st, "no answer"))
                fputs(": did not answer within 0.5 s\n", out);
            else if (!strncmp(st, "crashed ", 8))
                fprintf(out, ": crashed too (%s) while this was captured; at its fault:\n", st + 8);
            else
                fputc('\n', out);
            if (strcmp(st, "no answer") != 0)
                text_stack(out, db, threads[i].stack_id, "    ", 24);
        }
    window:
        fprintf(out, "\nthe %d s before (per second: cpu and wall samples, busiest function):\n",
                seconds);
        window_ctx w = {.out = out, .crash_s = crash_s};
        cs_db_seconds(db, c.process_id, from, crash_s, on_second, &w);
        if (w.cpu + w.wall == 0)
            fputs("  (nothing recorded in that time)\n", out);
        if (w.cpu) {
            fprintf(out, "\nwhere the CPU went in those %d s (%" PRId64 " samples):\n", seconds,
                    w.cpu);
            top_ctx t = {.out = out, .total = w.cpu};
            cs_db_top_functions(db, c.process_id, "cpu", from, crash_s, 8, on_top, &t);
            top_ctx tp = {.out = out, .total = w.cpu, .first = 1};
            cs_db_top_python(db, c.process_id, "cpu", from, crash_s, 8, on_top_python, &tp);
        }
        if (ntl)
            text_timeline(out, tl, ntl, db_path, c.pid);
        if (c.registers)
            fprintf(out, "\nregisters: %s\n", c.registers);
        cs_upload_summary u;
        cs_db_upload_summary(db, c.id, &u);
        if (u.total == 0)
            fputs("\nPyroscope: nothing uploaded for this crash (no CRASHSCOPE_SERVER_URL, or "
                  "CRASHSCOPE_UPLOAD=off)\n",
                  out);
        else
            fprintf(out,
                    "\nPyroscope: %d of %d profiles delivered%s%s; %d pending, %d too old, %d "
                    "refused; last attempt: %s, HTTP %ld%s%s\n",
                    u.sent, u.total, u.crash_profile_sent ? " (the crash profile too)" : "",
                    u.pending ? " - run `crashscope upload` when the server is back" : "",
                    u.pending, u.too_old, u.refused, u.last_endpoint[0] ? u.last_endpoint : "none",
                    u.last_status, u.last_error[0] ? ", " : "", u.last_error);
    }
    free(tl);
    cs_frames_free(frames, nframes);
    cs_crash_threads_free(threads, nthreads);
    cs_crash_row_free(&c);
    return 0;
}
