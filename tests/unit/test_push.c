/* test_push.c: tests uploader/push.c (the Pyroscope transport) against the test receiver
 * (tests/receiver/pyroscope_receiver.py) and against a tiny scripted HTTP server of its own.
 *
 * Usage: test_push PORT DUMP_DIR
 *   PORT      the receiver's port; it must run with --basic-auth user:s3cret-token
 *             --tenant team-a --dump-dir DUMP_DIR (tests/unit/test_push.sh starts it so)
 *   DUMP_DIR  where the receiver writes accepted profiles (checked to grow)
 *
 * Prints one "ok: ..." or "FAIL: ..." line per check and a final "test_push: N passed,
 * M failed" line; exits 1 if anything failed. Must never touch anything but 127.0.0.1, hang
 * (every request has a short timeout), or print the receiver's password itself: every check
 * that a secret is absent names the secret by what it is, not by its value.
 */
#include "pprof.h"
#include "push.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define PASSWORD "s3cret-token"
#define USER     "user"
#define TENANT   "team-a"
/* base64("user:s3cret-token"), the Authorization token a server could echo back */
#define BASIC_TOKEN "dXNlcjpzM2NyZXQtdG9rZW4="

static int g_pass, g_fail;
static int g_port;
static char g_base[64];

static void check(int cond, const char *name, const char *fmt, ...)
{
    if (cond) {
        printf("ok: %s\n", name);
        g_pass++;
        return;
    }
    printf("FAIL: %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    g_fail++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Describes a result for a failure message (never includes a secret: r has none). */
static const char *desc(const cs_send_result *r)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "status=%ld retryable=%d used_ingest=%d bytes=%zu endpoint='%s' "
             "error='%s'",
             r->http_status, r->retryable, r->used_ingest, r->bytes, r->endpoint, r->error);
    return buf;
}

static int has_secret(const char *s)
{
    return strstr(s, PASSWORD) || strstr(s, BASIC_TOKEN) || strstr(s, "s3cret");
}

/* ---- the profile sent ------------------------------------------------------------------ */

static uint8_t *make_pprof(size_t *len)
{
    cs_pprof *p = cs_pprof_new("cpu", "nanoseconds", 10000000, now_ns(), 10000000000LL);
    if (!p || cs_pprof_add_sample_type(p, "cpu", "nanoseconds") != 0) {
        fprintf(stderr, "test_push: cannot build a pprof\n");
        exit(1);
    }
    cs_pprof_frame f[2] = {{.function = "push_leaf",
                            .file = "leaf.c",
                            .line = 7,
                            .module = "/usr/bin/app",
                            .address = 0x1234},
                           {.function = "main",
                            .file = "main.c",
                            .line = 3,
                            .module = "/usr/bin/app",
                            .address = 0x1000}};
    int64_t v1 = 30000000, v2 = 10000000;
    cs_pprof_label lab = {"thread_name", "worker", 0};
    uint8_t *out = NULL;
    if (cs_pprof_add_sample(p, f, 2, &v1, &lab, 1) != 0 ||
        cs_pprof_add_sample(p, f + 1, 1, &v2, NULL, 0) != 0 || cs_pprof_encode(p, 1, &out, len)) {
        fprintf(stderr, "test_push: cannot encode the pprof\n");
        exit(1);
    }
    cs_pprof_free(p);
    return out;
}

/* ---- receiver control ------------------------------------------------------------------ */

static size_t discard(char *d, size_t s, size_t n, void *u)
{
    (void)d;
    (void)u;
    return s * n;
}

static void control(const char *json)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/control", g_port);
    CURL *h = curl_easy_init();
    long st = 0;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        curl_easy_cleanup(h);
    }
    if (st != 200) {
        fprintf(stderr, "test_push: POST /control %s failed (HTTP %ld)\n", json, st);
        exit(1);
    }
}

static int count_dumps(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 6 && strcmp(e->d_name + l - 6, ".pb.gz") == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ---- a scripted HTTP server, for what the receiver cannot do ---------------------------- */

#define FAKE_MAX 4
static struct {
    pthread_mutex_t mu;
    int fd, port, stop;
    const char *responses[FAKE_MAX]; /* full HTTP responses, in request order; NULL: close */
    size_t big_body;                 /* if set, response 0 is followed by this many bytes */
    int nreq;
    char req[FAKE_MAX][8192]; /* request line + headers of each request */
    unsigned char *body[FAKE_MAX];
    size_t body_len[FAKE_MAX];
} fk = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fake_reset(void)
{
    pthread_mutex_lock(&fk.mu);
    for (int i = 0; i < FAKE_MAX; i++) {
        fk.responses[i] = NULL;
        free(fk.body[i]);
        fk.body[i] = NULL;
        fk.body_len[i] = 0;
        fk.req[i][0] = '\0';
    }
    fk.big_body = 0;
    fk.nreq = 0;
    pthread_mutex_unlock(&fk.mu);
}

static void fake_handle(int c)
{
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char hdr[8192];
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof hdr - 1 && !end) {
        ssize_t k = recv(c, hdr + n, sizeof hdr - 1 - n, 0);
        if (k <= 0)
            return;
        n += (size_t)k;
        hdr[n] = '\0';
        end = strstr(hdr, "\r\n\r\n");
    }
    if (!end)
        return;
    size_t hlen = (size_t)(end - hdr) + 4;
    size_t clen = 0;
    const char *cl = strcasestr(hdr, "\r\nContent-Length:");
    if (cl)
        clen = strtoul(cl + 17, NULL, 10);
    if (clen > (64u << 20))
        return;
    unsigned char *body = malloc(clen + 1);
    if (!body)
        return;
    size_t have = n - hlen;
    memcpy(body, hdr + hlen, have);
    while (have < clen) {
        ssize_t k = recv(c, body + have, clen - have, 0);
        if (k <= 0)
            break;
        have += (size_t)k;
    }
    pthread_mutex_lock(&fk.mu);
    int i = fk.nreq < FAKE_MAX ? fk.nreq : FAKE_MAX - 1;
    fk.nreq++;
    memcpy(fk.req[i], hdr, hlen);
    fk.req[i][hlen] = '\0';
    free(fk.body[i]);
    fk.body[i] = body;
    fk.body_len[i] = have;
    const char *resp = fk.responses[i];
    size_t big = i == 0 ? fk.big_body : 0;
    pthread_mutex_unlock(&fk.mu);
    if (!resp)
        return; /* close without answering */
    send(c, resp, strlen(resp), MSG_NOSIGNAL);
    if (big) {
        static char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        for (size_t sent = 0; sent < big;) {
            ssize_t k = send(c, chunk, sizeof chunk, MSG_NOSIGNAL);
            if (k <= 0)
                break; /* the client stopped reading: expected */
            sent += (size_t)k;
        }
    }
}

static void *fake_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(fk.fd, NULL, NULL);
        pthread_mutex_lock(&fk.mu);
        int stop = fk.stop;
        pthread_mutex_unlock(&fk.mu);
        if (stop) {
            if (c >= 0)
                close(c);
            return NULL;
        }
        if (c < 0)
            continue;
        fake_handle(c);
        close(c);
    }
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("test_push: listen");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void wake_and_stop_fake(pthread_t th)
{
    pthread_mutex_lock(&fk.mu);
    fk.stop = 1;
    pthread_mutex_unlock(&fk.mu);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)fk.port);
    if (s >= 0) {
        connect(s, (struct sockaddr *)&a, sizeof a);
        close(s);
    }
    pthread_join(th, NULL);
    close(fk.fd);
    fake_reset();
}

/* Decompresses a gzip body (for checking what went on the wire). */
static unsigned char *gunzip(const unsigned char *in, size_t n, size_t *out_len)
{
    size_t cap = 1 << 20;
    unsigned char *out = malloc(cap);
    z_stream z = {0};
    if (!out || inflateInit2(&z, 16 + 15) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    *out_len = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- tests --------------------------------------------------------------------------- */

static const cs_label k_labels[] = {
    {"__name__", "process_cpu"},
    {"service_name", "push-test-app"},
    {"env", "prod"},
    {"env", "duplicate-must-not-be-sent"},
    {"region", "eu,west}1"},
    {"bad_utf8", "x\xff"
                 "y"},
    {NULL, "ignored"},
    {"empty", ""},
};
#define NLABELS (sizeof k_labels / sizeof k_labels[0])

static cs_server good_server(void)
{
    cs_server s = {0};
    s.url = g_base; /* with a trailing '/', which must not double */
    s.user = USER;
    s.password = PASSWORD;
    s.tenant = TENANT;
    s.connect_timeout_ms = 2000;
    s.total_timeout_ms = 5000;
    return s;
}

static void test_receiver(const uint8_t *pp, size_t plen, const char *dump_dir)
{
    char want_push[128], want_ingest[128];
    snprintf(want_push, sizeof want_push, "http://127.0.0.1:%d/push.v1.PusherService/Push", g_port);
    snprintf(want_ingest, sizeof want_ingest, "http://127.0.0.1:%d/ingest", g_port);
    int64_t t1 = now_ns(), t0 = t1 - 10000000000LL;
    cs_send_result r;
    int rc, unsupported;

    /* 1. push, basic auth + tenant */
    int dumps0 = count_dumps(dump_dir);
    cs_server s = good_server();
    unsupported = 0;
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, &unsupported, &r);
    check(rc == 0 && r.http_status == 200 && r.error[0] == '\0' && !r.used_ingest && !r.retryable &&
              r.bytes > 0 && !unsupported,
          "push accepted", "rc=%d %s", rc, desc(&r));
    check(strcmp(r.endpoint, want_push) == 0, "push endpoint", "'%s'", r.endpoint);
    check(count_dumps(dump_dir) == dumps0 + 1, "push dumped by the receiver", "%d -> %d", dumps0,
          count_dumps(dump_dir));

    /* 2. ingest on request */
    s.api = CS_API_INGEST;
    cs_label il[] = {{"__name__", "process_cpu"},
                     {"service_name", "ingest app"},
                     {"env", "staging"},
                     {"region", "a,b}c"},
                     {"__internal", "dropped"}};
    rc = cs_push_send(&s, il, 5, pp, plen, t0, t1, 97, NULL, &r);
    check(rc == 0 && r.http_status == 200 && r.used_ingest && r.error[0] == '\0', "ingest accepted",
          "rc=%d %s", rc, desc(&r));
    check(strcmp(r.endpoint, want_ingest) == 0, "ingest endpoint without query", "'%s'",
          r.endpoint);
    s.api = CS_API_PUSH;

    /* 3. wrong password */
    cs_server bad = good_server();
    bad.password = "wrong-pass-123456";
    rc = cs_push_send(&bad, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 401 && !r.retryable && strncmp(r.error, "HTTP 401", 8) == 0,
          "wrong password: 401, not retryable", "rc=%d %s", rc, desc(&r));
    check(!strstr(r.error, "wrong-pass") && !has_secret(r.error) && !strstr(r.endpoint, "wrong"),
          "wrong password not in error", "%s", desc(&r));

    /* 4. no tenant */
    cs_server nt = good_server();
    nt.tenant = NULL;
    rc = cs_push_send(&nt, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 401 && !r.retryable, "missing tenant: 401", "%s", desc(&r));

    /* 5. credentials in the URL: used, but never stored or sent in the URL */
    char url[256];
    snprintf(url, sizeof url, "http://" USER ":" PASSWORD "@127.0.0.1:%d", g_port);
    cs_server ui = {0};
    ui.url = url;
    ui.tenant = TENANT;
    ui.total_timeout_ms = 5000;
    rc = cs_push_send(&ui, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == 0 && r.http_status == 200 && strcmp(r.endpoint, want_push) == 0,
          "userinfo URL accepted, endpoint stripped", "rc=%d %s", rc, desc(&r));
    snprintf(url, sizeof url, "http://" USER ":bad%%2Dsecret%%40x@127.0.0.1:%d/", g_port);
    rc = cs_push_send(&ui, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 401 && !strstr(r.error, "secret") &&
              !strstr(r.endpoint, "secret") && !strstr(r.endpoint, "@"),
          "wrong userinfo password: 401, not in result", "%s", desc(&r));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/?token=" PASSWORD, g_port);
    rc = cs_push_send(&ui, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 0 && !r.retryable && !has_secret(r.error) &&
              !has_secret(r.endpoint) && r.error[0],
          "query string in server URL refused", "%s", desc(&r));

    /* 6. nothing listening */
    int dead_port;
    int fd = listen_loopback(&dead_port);
    close(fd); /* the port is now (almost certainly) closed */
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", dead_port);
    cs_server ds = good_server();
    ds.url = dead;
    ds.connect_timeout_ms = 1000;
    ds.total_timeout_ms = 2000;
    double st = now_s();
    rc = cs_push_send(&ds, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    double el = now_s() - st;
    check(rc == -1 && r.http_status == 0 && r.retryable && r.error[0] && !has_secret(r.error),
          "nothing listening: no status, retryable", "%s", desc(&r));
    check(el < 2.5, "nothing listening: bounded", "%.2f s", el);

    /* 7. 500 and 429 */
    control("{\"mode\":\"status:500\",\"count\":1}");
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 500 && r.retryable &&
              strstr(r.error, "HTTP 500: injected failure"),
          "500: retryable, message from JSON", "%s", desc(&r));
    control("{\"mode\":\"status:429\",\"count\":1}");
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 429 && r.retryable, "429: retryable", "%s", desc(&r));

    /* 8. 404 on push: fallback to ingest within the call, remembered */
    control("{\"mode\":\"status:404\",\"count\":1,\"endpoint\":\"push\"}");
    unsupported = 0;
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, &unsupported, &r);
    check(rc == 0 && r.http_status == 200 && r.used_ingest && unsupported &&
              strcmp(r.endpoint, want_ingest) == 0,
          "404 on push: fell back to ingest", "rc=%d unsupported=%d %s", rc, unsupported, desc(&r));
    /* push_unsupported=1 goes straight to ingest: a failure armed on push stays untouched */
    control("{\"mode\":\"status:500\",\"count\":1,\"endpoint\":\"push\"}");
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, &unsupported, &r);
    check(rc == 0 && r.used_ingest && unsupported, "push_unsupported=1: straight to ingest",
          "rc=%d %s", rc, desc(&r));
    control("{\"mode\":\"ok\"}");

    /* 9. a profile the server refuses: 400 with the JSON message, not retryable */
    static const uint8_t junk[] = "this is not a pprof";
    rc = cs_push_send(&s, k_labels, NLABELS, junk, sizeof junk - 1, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 400 && !r.retryable &&
              strncmp(r.error, "HTTP 400: ", 10) == 0 && strlen(r.error) > 12,
          "invalid profile: 400 with message", "%s", desc(&r));

    /* 10. stall past the total timeout */
    control("{\"mode\":\"stall:4\",\"count\":1}");
    cs_server ss = good_server();
    ss.connect_timeout_ms = 1000;
    ss.total_timeout_ms = 1500;
    st = now_s();
    rc = cs_push_send(&ss, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    el = now_s() - st;
    check(rc == -1 && r.http_status == 0 && r.retryable && strstr(r.error, "timeout"),
          "stall: timeout, retryable", "%s", desc(&r));
    check(el >= 1.3 && el < 3.0, "stall: bounded by total timeout", "%.2f s", el);
    control("{\"mode\":\"ok\"}");

    /* 11. arguments refused before any request */
    cs_label nn[] = {{"service_name", "x"}, {"env", "prod"}};
    rc = cs_push_send(&s, nn, 2, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 0 && !r.retryable && strstr(r.error, "__name__"),
          "missing __name__ refused", "%s", desc(&r));
    cs_label ns[] = {{"__name__", "wall"}};
    rc = cs_push_send(&s, ns, 1, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && strstr(r.error, "service_name"), "missing service_name refused", "%s",
          desc(&r));
    rc = cs_push_send(&s, k_labels, NLABELS, pp, 0, t0, t1, 100, NULL, &r);
    check(rc == -1 && !r.retryable && r.error[0], "empty profile refused", "%s", desc(&r));
    cs_server fs = good_server();
    fs.url = "ftp://127.0.0.1/";
    rc = cs_push_send(&fs, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && !r.retryable && r.error[0], "non-http URL refused", "%s", desc(&r));
    cs_server ts = good_server();
    ts.tenant = "a\r\nX-Evil: 1";
    rc = cs_push_send(&ts, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 0, "tenant with CRLF refused", "%s", desc(&r));
    rc = cs_push_send(NULL, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.error[0], "NULL server refused", "%s", desc(&r));
}

static void test_fake(const uint8_t *pp, size_t plen)
{
    fk.fd = listen_loopback(&fk.port);
    pthread_t th;
    if (pthread_create(&th, NULL, fake_main, NULL) != 0) {
        fprintf(stderr, "test_push: pthread_create failed\n");
        exit(1);
    }
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", fk.port);
    cs_server s = good_server();
    s.url = base;
    s.total_timeout_ms = 3000;
    int64_t t1 = now_ns(), t0 = t1 - 10000000000LL;
    cs_send_result r;
    int rc;

    /* F1. a server that quotes the password and the basic token back: both scrubbed; and
     * what went on the wire */
    fake_reset();
    fk.responses[0] =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        "{\"code\":\"invalid_argument\",\"details\":[{\"a\":[1,2,{\"b\":null}]}],"
        "\"message\":\"token " PASSWORD " for user rejected\\nbasic " BASIC_TOKEN " \\u00e9\"}";
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 400 && !r.retryable, "echoing server: 400", "%s", desc(&r));
    check(!has_secret(r.error) && strstr(r.error, "HTTP 400: token *** for user rejected") &&
              strstr(r.error, "basic ***") && !strchr(r.error, '\n') && strstr(r.error, "\xc3\xa9"),
          "echoed secrets scrubbed, one line", "error='%s'", r.error);
    pthread_mutex_lock(&fk.mu);
    const char *q = fk.req[0];
    check(strncmp(q, "POST /push.v1.PusherService/Push HTTP/1.1\r\n", 43) == 0, "request line",
          "%.60s", q);
    check(strstr(q, "\r\nAuthorization: Basic " BASIC_TOKEN "\r\n") != NULL, "basic auth header",
          "not found");
    check(strstr(q, "\r\nX-Scope-OrgID: " TENANT "\r\n") &&
              strstr(q, "\r\nUser-Agent: "
                        "crashscope/0.1\r\n") &&
              strstr(q, "\r\nContent-Type: application/proto\r\n") &&
              strstr(q, "\r\nContent-Encoding: gzip\r\n") && !strcasestr(q, "\r\nExpect:"),
          "push headers", "%s", q);
    size_t plain_len = 0;
    unsigned char *plain = fk.body[0] ? gunzip(fk.body[0], fk.body_len[0], &plain_len) : NULL;
    check(plain && plain_len > plen && plain[0] == 0x0a, "push body is a gzipped PushRequest",
          "len=%zu", plain_len);
    /* the pprof bytes travel unchanged inside it */
    int found = 0;
    for (size_t i = 0; plain && i + plen <= plain_len && !found; i++)
        found = memcmp(plain + i, pp, plen) == 0;
    check(found, "raw_profile inside PushRequest", "pprof bytes not found");
    int dup = 0;
    for (size_t i = 0; plain && i + 26 <= plain_len; i++)
        dup |= memcmp(plain + i, "duplicate-must-not-be-sent", 26) == 0;
    check(!dup, "duplicate label not sent", "second 'env' found in body");
    free(plain);
    pthread_mutex_unlock(&fk.mu);

    /* F2. redirect: not followed */
    fake_reset();
    static char redirect[256];
    snprintf(redirect, sizeof redirect,
             "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d/x\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             fk.port);
    fk.responses[0] = redirect;
    fk.responses[1] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    pthread_mutex_lock(&fk.mu);
    int nreq = fk.nreq;
    pthread_mutex_unlock(&fk.mu);
    check(rc == -1 && r.http_status == 307 && !r.retryable && nreq == 1, "redirect not followed",
          "nreq=%d %s", nreq, desc(&r));

    /* F3. a huge response body: read only its start, no hang */
    fake_reset();
    fk.responses[0] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
    fk.big_body = 8u << 20;
    double st = now_s();
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    double el = now_s() - st;
    check(rc == 0 && r.http_status == 200 && el < 2.0, "huge 200 body: accepted, capped",
          "rc=%d %.2f s %s", rc, el, desc(&r));

    /* F4. a long multi-line error: one line, truncated */
    fake_reset();
    static char longresp[4096];
    int o = snprintf(longresp, sizeof longresp,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\n\r\n{\"code\":\"unavailable\",\"message\":\"");
    for (int i = 0; i < 150; i++)
        o += snprintf(longresp + o, sizeof longresp - o, "line %d\\n", i);
    snprintf(longresp + o, sizeof longresp - o, "\"}");
    fk.responses[0] = longresp;
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 503 && r.retryable &&
              strncmp(r.error, "HTTP 503: line 0 line 1", 23) == 0 && strlen(r.error) < 256 &&
              !strchr(r.error, '\n') && strstr(r.error, "..."),
          "long error: one line, truncated", "%s", desc(&r));

    /* F5. 404 on push and on ingest: the ingest request, and both reported */
    fake_reset();
    fk.responses[0] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: "
                      "19\r\nConnection: close\r\n\r\n404 page not found\n";
    fk.responses[1] = fk.responses[0];
    int unsupported = 0;
    cs_label il[] = {{"__name__", "process_cpu"}, {"service_name", "my app"}, {"env", "prod"}};
    rc = cs_push_send(&s, il, 3, pp, plen, 1700000000123456789LL, 1700000010000000000LL, 97,
                      &unsupported, &r);
    check(rc == -1 && r.http_status == 404 && r.used_ingest && unsupported && !r.retryable &&
              strstr(r.error, "HTTP 404: 404 page not found (after push answered 404)"),
          "404 twice: reported", "unsupported=%d %s", unsupported, desc(&r));
    pthread_mutex_lock(&fk.mu);
    q = fk.req[1];
    static const char want_line[] =
        "POST /ingest?name=my_app%7Bservice_name%3Dmy%20app%2Cenv%3Dprod%7D"
        "&from=1700000000&until=1700000010&format=pprof&sampleRate=97"
        "&spyName=crashscope HTTP/1.1\r\n";
    check(strncmp(q, want_line, sizeof want_line - 1) == 0, "ingest request line", "%.200s", q);
    check(strstr(q, "\r\nContent-Type: application/octet-stream\r\n") &&
              !strcasestr(q, "Content-Encoding") && strstr(q, "Authorization: Basic ") &&
              fk.body_len[1] == plen && fk.body[1] && memcmp(fk.body[1], pp, plen) == 0,
          "ingest headers and body", "%s", q);
    pthread_mutex_unlock(&fk.mu);

    /* F6. connection closed without an answer */
    fake_reset();
    rc = cs_push_send(&s, k_labels, NLABELS, pp, plen, t0, t1, 100, NULL, &r);
    check(rc == -1 && r.http_status == 0 && r.retryable && r.error[0], "closed: retryable", "%s",
          desc(&r));

    wake_and_stop_fake(th);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_push RECEIVER_PORT DUMP_DIR\n");
        return 2;
    }
    g_port = atoi(argv[1]);
    if (g_port <= 0 || g_port > 65535) {
        fprintf(stderr, "test_push: bad port %s\n", argv[1]);
        return 2;
    }
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d/", g_port);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (cs_push_global_init() != 0) {
        fprintf(stderr, "test_push: cs_push_global_init failed\n");
        return 1;
    }
    size_t plen = 0;
    uint8_t *pp = make_pprof(&plen);
    test_receiver(pp, plen, argv[2]);
    test_fake(pp, plen);
    free(pp);
    curl_global_cleanup();
    printf("test_push: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
