/* push.c: sends one pprof profile to Grafana Pyroscope (see push.h and
 * /work/shared/notes/pyroscope-protocol.md for the wire facts).
 *
 * Push path: PushRequest{series=[RawProfileSeries{labels, samples=[RawSample{raw_profile,
 * ID}]}]} (protobuf.c writes it), gzipped whole, POSTed as application/proto with
 * Content-Encoding: gzip. Ingest path (a server without the push API answers 404):
 * POST /ingest?name=APP{k=v,...}&from=&until=&format=pprof&sampleRate=&spyName=crashscope with
 * the gzipped pprof as the body. The HTTP itself is http.c; the server URL url.c, the labels
 * labels.c, secrets in error text scrub.c, what an error response says error_body.c.
 *
 * Must never: put a password or token in a URL, in r->endpoint or in r->error (every text that
 * leaves this file is scrubbed of every form of the secret it knows: the password, the
 * password from the URL, raw and decoded, and the base64 basic-auth token), print anything,
 * send duplicate label names or invalid UTF-8 (the server refuses the whole profile), or keep
 * global state.
 */
#include "push.h"

#include "error_body.h"
#include "gzip.h"
#include "http.h"
#include "labels.h"
#include "protobuf.h"
#include "scrub.h"
#include "url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PUSH_PATH          "/push.v1.PusherService/Push"
#define INGEST_PATH        "/ingest"
#define DEFAULT_CONNECT_MS 5000
#define DEFAULT_TOTAL_MS   20000

int cs_push_global_init(void)
{
    return cs_http_global_init();
}

/* ---- small growable byte buffer -------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom; /* sticky: once an append failed, the buffer is unusable */
} sbuf;

static void sb_put(sbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void set_err(cs_send_result *r, const cs_secrets *sc, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    cs_scrub_line(r->error, sizeof r->error, tmp, sc);
}

/* What to say about a non-2xx response: what its body says, if anything. */
static void describe_status(cs_send_result *r, const cs_secrets *sc, const cs_http_response *rs,
                            const char *suffix)
{
    char msg[1024];
    if (cs_error_body_says(rs->body, rs->body_len, msg, sizeof msg))
        set_err(r, sc, "HTTP %ld: %s%s", rs->status, msg, suffix);
    else
        set_err(r, sc, "HTTP %ld%s", rs->status, suffix);
}

/* ---- the push request (push.v1 / types.v1) --------------------------------------------- */

/* PushRequest{ series: [RawProfileSeries{ labels: [LabelPair{name=1, value=2}] = 1,
 * samples: [RawSample{ raw_profile = 1, ID = 2 }] = 2 }] = 1 }, allocated with malloc. */
static uint8_t *encode_push_request(const cs_wire_label *l, size_t nl, const uint8_t *pprof,
                                    size_t len, const char *id, size_t *out_len)
{
    cs_pb b = {&cs_alloc_std, NULL, 0, 0, 0};
    cs_pb_reserve(&b, len + 64 + nl * 64); /* one allocation, most of the time */
    size_t series = cs_pb_begin(&b, 1);
    for (size_t i = 0; i < nl; i++) {
        size_t pair = cs_pb_begin(&b, 1);
        cs_pb_bytes(&b, 1, l[i].name, strlen(l[i].name));
        cs_pb_bytes(&b, 2, l[i].value, strlen(l[i].value));
        cs_pb_end(&b, pair);
    }
    size_t sample = cs_pb_begin(&b, 2);
    cs_pb_bytes(&b, 1, pprof, len);
    cs_pb_bytes(&b, 2, id, strlen(id));
    cs_pb_end(&b, sample);
    cs_pb_end(&b, series);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *out_len = b.len;
    return b.p;
}

/* A random (version 4) UUID, as the SDKs put in RawSample.ID. */
static void uuid_v4(char out[37])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t k = getrandom(b + got, sizeof b - got, GRND_NONBLOCK);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got < sizeof b) {
        /* No entropy yet (early boot): the ID only has to be unlikely to repeat. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                     ((uint64_t)getpid() << 48) ^ (uint64_t)(uintptr_t)out;
        for (size_t i = got; i < sizeof b; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (unsigned char)(x >> 24);
        }
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* ---- ingest query ------------------------------------------------------------------- */

static void sb_pct(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            char ch = (char)c;
            sb_put(b, &ch, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_put(b, e, 3);
        }
    }
}

/* The ingest name parameter, before URL-encoding: app{k=v,...}. The app name allows only
 * [A-Za-z0-9_./-]; when service_name has other characters, the app name is a cleaned copy and
 * the true value goes along as a service_name tag, which the server prefers. Values lose ','
 * and '}' (they would end the value), replaced by '_'. */
static void ingest_name(sbuf *b, const cs_wire_label *l, size_t nl)
{
    const char *svc = l[1].value; /* cs_labels_normalize put service_name second */
    int changed = 0;
    for (const char *p = svc; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '/' || c == '-';
        if (!ok)
            changed = 1;
        sb_put(b, ok ? &c : "_", 1);
    }
    int ntags = 0;
    for (size_t i = 0; i < nl; i++) {
        if (strncmp(l[i].name, "__", 2) == 0)
            continue;
        if (strcmp(l[i].name, "service_name") == 0 && !changed)
            continue;
        sb_str(b, ntags++ ? "," : "{");
        sb_str(b, l[i].name);
        sb_put(b, "=", 1);
        for (const char *p = l[i].value; *p; p++)
            sb_put(b, (*p == ',' || *p == '}') ? "_" : p, 1);
    }
    if (ntags)
        sb_put(b, "}", 1);
}

static int64_t now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* ---- one attempt ------------------------------------------------------------------- */

typedef struct {
    const char *user, *password, *tenant;
    long connect_ms, total_ms;
    const cs_secrets *sc;
} ctx;

/* POSTs and fills R from the outcome. SUFFIX is appended to an error message. Returns the
 * HTTP status, or 0 when no response arrived. */
static long post(const ctx *cx, const char *url, const char *endpoint_label,
                 const char *const *hdrs, size_t nh, const uint8_t *body, size_t blen,
                 const char *suffix, cs_send_result *r)
{
    cs_http_request rq = {0};
    rq.url = url;
    rq.user = cx->user;
    rq.password = cx->password;
    rq.headers = hdrs;
    rq.nheaders = nh;
    rq.body = body;
    rq.body_len = blen;
    rq.connect_timeout_ms = cx->connect_ms;
    rq.total_timeout_ms = cx->total_ms;

    cs_http_response *rs = malloc(sizeof *rs);
    if (!rs) {
        r->http_status = 0;
        r->retryable = 1;
        set_err(r, cx->sc, "out of memory");
        return 0;
    }
    snprintf(r->endpoint, sizeof r->endpoint, "%s", endpoint_label);
    r->bytes = blen;
    r->error[0] = '\0';
    cs_http_post(&rq, rs);
    r->http_status = rs->status;
    if (rs->status == 0) {
        r->retryable = !rs->config_error;
        set_err(r, cx->sc, "%s%s%s", rs->timed_out ? "timeout: " : "", rs->error, suffix);
    } else if (rs->status >= 200 && rs->status < 300) {
        r->retryable = 0;
    } else {
        /* 429 and 5xx are the server's state; any other 4xx is about this profile or these
         * credentials, and 3xx means the URL is wrong (redirects are never followed). */
        r->retryable = rs->status == 429 || rs->status >= 500;
        describe_status(r, cx->sc, rs, suffix);
    }
    long st = rs->status;
    memset(rs, 0, sizeof *rs); /* the body could quote credentials back: leave nothing */
    free(rs);
    return st;
}

/* ---- the API ------------------------------------------------------------------------ */

int cs_push_send(const cs_server *srv, const cs_label *labels, size_t nlabels, const uint8_t *pprof,
                 size_t len, int64_t from_ns, int64_t until_ns, int sample_rate,
                 int *push_unsupported, cs_send_result *r)
{
    cs_send_result dummy;
    if (!r)
        r = &dummy;
    memset(r, 0, sizeof *r);

    cs_secrets sc = {{0}, 0};
    cs_url u = {0};
    cs_wire_label *l = NULL;
    size_t nl = 0;
    char *token = NULL, *tenant_hdr = NULL;
    uint8_t *msg = NULL, *gz = NULL;
    sbuf url = {0}, ep = {0};
    int ret = -1;
    const char *err = NULL;

    if (!srv) {
        set_err(r, &sc, "no server configuration");
        return -1;
    }
    cs_secrets_add(&sc, srv->password);
    int prc = cs_url_parse(srv->url, &u, &err);
    if (prc == -2)
        goto oom;
    if (prc < 0) {
        set_err(r, &sc, "%s", err);
        goto out;
    }
    cs_secrets_add(&sc, u.url_pass);
    cs_secrets_add(&sc, u.url_pass_raw);

    /* Credentials: the explicit ones win; userinfo in the URL is a convenience, and goes in the
     * Authorization header like the others, never in the URL sent. */
    ctx cx = {0};
    cx.sc = &sc;
    if (srv->user || srv->password) {
        cx.user = srv->user;
        cx.password = srv->password;
    } else if (u.url_user) {
        cx.user = u.url_user;
        cx.password = u.url_pass;
    }
    if (cx.user || cx.password) {
        token = cs_basic_token(cx.user ? cx.user : "", cx.password ? cx.password : "");
        if (!token)
            goto oom;
        cs_secrets_add(&sc, token);
    }
    cx.connect_ms = srv->connect_timeout_ms > 0 ? srv->connect_timeout_ms : DEFAULT_CONNECT_MS;
    cx.total_ms = srv->total_timeout_ms > 0 ? srv->total_timeout_ms : DEFAULT_TOTAL_MS;
    if (cx.connect_ms > cx.total_ms)
        cx.connect_ms = cx.total_ms;

    if (srv->tenant && srv->tenant[0]) {
        for (const char *p = srv->tenant; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                /* A CR/LF would let the tenant add headers of its own. */
                set_err(r, &sc, "tenant contains control characters");
                goto out;
            }
        }
        size_t n = strlen(srv->tenant) + sizeof "X-Scope-OrgID: ";
        tenant_hdr = malloc(n);
        if (!tenant_hdr)
            goto oom;
        snprintf(tenant_hdr, n, "X-Scope-OrgID: %s", srv->tenant);
    }

    if (!pprof || len == 0) {
        set_err(r, &sc, "empty profile");
        goto out;
    }
    int lrc = cs_labels_normalize(labels, nlabels, &l, &nl, &err);
    if (lrc == -2)
        goto oom;
    if (lrc < 0) {
        set_err(r, &sc, "%s", err);
        goto out;
    }

    int use_ingest = srv->api == CS_API_INGEST || (push_unsupported && *push_unsupported);
    const char *fallback_note = "";
    if (!use_ingest) {
        char id[37];
        uuid_v4(id);
        size_t mlen = 0, glen = 0;
        msg = encode_push_request(l, nl, pprof, len, id, &mlen);
        if (!msg)
            goto oom;
        if (cs_gzip(&cs_alloc_std, msg, mlen, &gz, &glen))
            goto oom;
        sb_str(&url, u.base);
        sb_str(&url, PUSH_PATH);
        if (url.oom)
            goto oom;
        const char *hdrs[] = {"Content-Type: application/proto", "Content-Encoding: gzip",
                              "Connect-Protocol-Version: 1", tenant_hdr};
        long st = post(&cx, url.p, url.p, hdrs, tenant_hdr ? 4 : 3, gz, glen, "", r);
        if (st != 404) {
            ret = st >= 200 && st < 300 ? 0 : -1;
            goto out;
        }
        /* No push API here (an older server, or a prefix that only serves /ingest): say so
         * for the next calls, and give this profile its one chance on /ingest. */
        if (push_unsupported)
            *push_unsupported = 1;
        fallback_note = " (after push answered 404)";
        url.len = 0;
    }

    sbuf name = {0};
    ingest_name(&name, l, nl);
    if (name.oom) {
        free(name.p);
        goto oom;
    }
    int64_t now = now_seconds();
    int64_t from = from_ns > 0 ? from_ns / 1000000000 : now;
    int64_t until = until_ns > 0 ? until_ns / 1000000000 : now;
    if (until < from)
        until = from;
    sb_str(&url, u.base);
    sb_str(&url, INGEST_PATH);
    if (url.oom) {
        free(name.p);
        goto oom;
    }
    sb_str(&ep, url.p); /* the endpoint as reported: no query string */
    sb_str(&url, "?name=");
    sb_pct(&url, name.p);
    free(name.p);
    sb_printf(&url, "&from=%lld&until=%lld&format=pprof&sampleRate=%d&spyName=crashscope",
              (long long)from, (long long)until, sample_rate > 0 ? sample_rate : 100);
    if (url.oom || ep.oom)
        goto oom;
    {
        const char *hdrs[] = {"Content-Type: application/octet-stream", tenant_hdr};
        long st = post(&cx, url.p, ep.p, hdrs, tenant_hdr ? 2 : 1, pprof, len, fallback_note, r);
        r->used_ingest = 1;
        ret = st >= 200 && st < 300 ? 0 : -1;
    }
    goto out;

oom:
    r->http_status = 0;
    r->retryable = 1;
    set_err(r, &sc, "out of memory");
    ret = -1;
out:
    cs_labels_free(l, nl);
    free(msg);
    free(gz);
    free(url.p);
    free(ep.p);
    free(tenant_hdr);
    cs_secret_free(token);
    cs_url_free(&u);
    if (ret == 0)
        r->error[0] = '\0';
    return ret;
}
