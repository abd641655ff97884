/* push.c: sends one pprof profile to Grafana Pyroscope (see push.h and
 * /work/shared/notes/pyroscope-protocol.md for the wire facts).
 *
 * Push path: PushRequest{series=[RawProfileSeries{labels, samples=[RawSample{raw_profile,
 * ID}]}]} (protobuf.c writes it), gzipped whole, POSTed as application/proto with
 * Content-Encoding: gzip. Ingest path (a server without the push API answers 404):
 * POST /ingest?name=APP{k=v,...}&from=&until=&format=pprof&sampleRate=&spyName=crashscope with
 * the gzipped pprof as the body. The HTTP itself is uploader/http.c.
 *
 * Must never: put a password or token in a URL, in r->endpoint or in r->error (every text that
 * leaves this file is scrubbed of every form of the secret it knows: the password, the
 * password from the URL, raw and decoded, and the base64 basic-auth token), print anything,
 * send duplicate label names or invalid UTF-8 (the server refuses the whole profile), or keep
 * global state.
 */
#include "push.h"

#include "gzip.h"
#include "http.h"
#include "protobuf.h"
#include "utf8.h"

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
/* Server defaults (pkg/validation/limits.go): over these, the whole profile is refused. */
#define MAX_LABELS    30
#define MAX_NAME_LEN  1024
#define MAX_VALUE_LEN 2048

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

/* A valid UTF-8 copy of s (see cs_utf8_sanitize) of at most max bytes. NULL when out of
 * memory. */
static char *utf8_sanitize_dup(const char *s, size_t max)
{
    size_t n = strlen(s);
    /* Each input byte yields at most 3 output bytes (U+FFFD), and never more than max. */
    size_t cap = n <= max / 3 ? n * 3 : max;
    char *out = malloc(cap + 1);
    if (out)
        out[cs_utf8_sanitize(out, cap, s, n)] = '\0';
    return out;
}

/* ---- secrets and error text ------------------------------------------------------------ */

/* Every form of a secret that could show up in text from the server or libcurl. */
typedef struct {
    const char *s[4];
    size_t n;
} secrets;

static void secrets_add(secrets *sc, const char *s)
{
    if (s && s[0] && sc->n < sizeof sc->s / sizeof sc->s[0])
        sc->s[sc->n++] = s;
}

/* Copies src to dst (cap bytes) as one printable line with every secret replaced by "***",
 * control characters by spaces and invalid UTF-8 by '?'; cut at a character boundary with
 * "..." when it does not fit. Secrets are replaced before cutting, so a cut can never leave
 * a secret's prefix behind that was whole in src. */
static void clean_line(char *dst, size_t cap, const char *src, const secrets *sc)
{
    size_t o = 0, n = strlen(src);
    int cut = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < n && !cut;) {
        const char *piece = NULL;
        size_t plen = 0, adv = 0;
        for (size_t k = 0; k < sc->n; k++) {
            size_t sl = strlen(sc->s[k]);
            if (sl <= n - i && memcmp(src + i, sc->s[k], sl) == 0) {
                piece = "***";
                plen = 3;
                adv = sl;
                break;
            }
        }
        if (!piece) {
            unsigned char c = (unsigned char)src[i];
            if (c < 0x20 || c == 0x7f) {
                piece = " ";
                plen = adv = 1;
            } else {
                size_t k = cs_utf8_seq((const unsigned char *)src + i, n - i);
                if (k == 0) {
                    piece = "?";
                    plen = adv = 1;
                } else {
                    piece = src + i;
                    plen = adv = k;
                }
            }
        }
        if (o + plen + 1 > cap) {
            cut = 1;
            break;
        }
        memcpy(dst + o, piece, plen);
        o += plen;
        i += adv;
    }
    if (cut) {
        /* Make room for "..." by dropping whole characters. */
        while (o > 0 && o + 4 > cap) {
            do {
                o--;
            } while (o > 0 && ((unsigned char)dst[o] & 0xc0) == 0x80);
        }
        if (o + 4 <= cap) {
            memcpy(dst + o, "...", 3);
            o += 3;
        }
    }
    /* Trailing blanks say nothing. */
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

static void set_err(cs_send_result *r, const secrets *sc, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    clean_line(r->error, sizeof r->error, tmp, sc);
}

/* ---- a minimal JSON reader: only to find a top-level "message" string ------------------- */

static const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long js_u4(const char *p, const char *e)
{
    if (e - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* p at '"'. Decodes the string into out (cap bytes, NUL-terminated, silently cut) when out is
 * not NULL. Returns the position after the closing quote, or NULL if it is not a string. */
static const char *js_string(const char *p, const char *e, char *out, size_t cap)
{
    size_t o = 0;
    if (p >= e || *p != '"')
        return NULL;
    p++;
    while (p < e && *p != '"') {
        char buf[4];
        size_t n = 1;
        if (*p == '\\') {
            if (++p >= e)
                return NULL;
            switch (*p) {
            case 'n':
            case 'r':
            case 't':
            case 'b':
            case 'f': buf[0] = ' '; break;
            case 'u': {
                long cp = js_u4(p + 1, e);
                if (cp < 0)
                    return NULL;
                p += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && e - p > 6 && p[1] == '\\' && p[2] == 'u') {
                    long lo = js_u4(p + 3, e);
                    if (lo >= 0xdc00 && lo < 0xe000) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        p += 6;
                    }
                }
                if (cp >= 0xd800 && cp < 0xe000)
                    cp = 0xfffd; /* lone surrogate */
                if (cp < 0x20)
                    cp = ' ';
                n = put_utf8(buf, (unsigned long)cp);
                break;
            }
            default: buf[0] = *p; break; /* \" \\ \/ */
            }
        } else {
            buf[0] = *p;
        }
        if (out && o + n < cap) {
            memcpy(out + o, buf, n);
            o += n;
        }
        p++;
    }
    if (p >= e)
        return NULL;
    if (out && cap)
        out[o < cap ? o : cap - 1] = '\0';
    return p + 1;
}

static const char *js_value(const char *p, const char *e, int depth)
{
    p = js_ws(p, e);
    if (p >= e || depth > 16)
        return NULL;
    if (*p == '"')
        return js_string(p, e, NULL, 0);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = js_ws(p + 1, e);
        if (p < e && *p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                p = js_string(js_ws(p, e), e, NULL, 0);
                if (!p)
                    return NULL;
                p = js_ws(p, e);
                if (p >= e || *p != ':')
                    return NULL;
                p++;
            }
            p = js_value(p, e, depth + 1);
            if (!p)
                return NULL;
            p = js_ws(p, e);
            if (p >= e)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    /* number, true, false, null */
    const char *s = p;
    while (p < e && !strchr(",}] \t\r\n", *p))
        p++;
    return p > s ? p : NULL;
}

/* Finds "message" in a top-level JSON object such as Connect's {"code":..,"message":..}. */
static int json_message(const char *body, size_t len, char *out, size_t cap)
{
    const char *p = body, *e = body + len;
    p = js_ws(p, e);
    if (p >= e || *p != '{')
        return 0;
    p = js_ws(p + 1, e);
    while (p < e && *p != '}') {
        char key[16];
        p = js_string(p, e, key, sizeof key);
        if (!p)
            return 0;
        p = js_ws(p, e);
        if (p >= e || *p != ':')
            return 0;
        p = js_ws(p + 1, e);
        if (strcmp(key, "message") == 0 && p < e && *p == '"')
            return js_string(p, e, out, cap) != NULL;
        p = js_value(p, e, 1);
        if (!p)
            return 0;
        p = js_ws(p, e);
        if (p < e && *p == ',')
            p = js_ws(p + 1, e);
    }
    return 0;
}

/* What to say about a non-2xx response: the JSON message, or else the first line of a short
 * text body (Go's "404 page not found"); HTML error pages from proxies say nothing useful. */
static void describe_status(cs_send_result *r, const secrets *sc, const cs_http_response *rs,
                            const char *suffix)
{
    char msg[1024];
    msg[0] = '\0';
    if (!json_message(rs->body, rs->body_len, msg, sizeof msg)) {
        msg[0] = '\0';
        const char *p = rs->body;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p && *p != '<' && *p != '{') {
            size_t n = strcspn(p, "\r\n");
            if (n >= sizeof msg)
                n = sizeof msg - 1;
            memcpy(msg, p, n);
            msg[n] = '\0';
        }
    }
    if (msg[0])
        set_err(r, sc, "HTTP %ld: %s%s", rs->status, msg, suffix);
    else
        set_err(r, sc, "HTTP %ld%s", rs->status, suffix);
}

/* ---- base64, only to scrub the Authorization token should a server echo it ------------- */

static char *base64_dup(const char *a, const char *b)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t la = strlen(a), lb = strlen(b), n = la + 1 + lb;
    unsigned char *in = malloc(n + 1);
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!in || !out) {
        free(in);
        free(out);
        return NULL;
    }
    memcpy(in, a, la);
    in[la] = ':';
    memcpy(in + la + 1, b, lb);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    /* The input held the password: do not leave it in freed memory. */
    memset(in, 0, n);
    free(in);
    return out;
}

/* ---- the server URL ------------------------------------------------------------------- */

typedef struct {
    char *base;         /* scheme://host[:port][/prefix] without trailing '/' or userinfo */
    char *url_user;     /* from userinfo, percent-decoded, or NULL */
    char *url_pass;     /* idem; a secret */
    char *url_pass_raw; /* as written in the URL (still percent-encoded); a secret */
} parsed_url;

static void free_secret(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static void parsed_url_free(parsed_url *u)
{
    free(u->base);
    free(u->url_user);
    free_secret(u->url_pass);
    free_secret(u->url_pass_raw);
    memset(u, 0, sizeof *u);
}

static char *pct_decode_dup(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h1, h2;
        if (s[i] == '%' && i + 2 < n && (h1 = hexval(s[i + 1])) >= 0 &&
            (h2 = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(h1 * 16 + h2);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static char *strndup_or_null(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Splits URL into its parts. Returns 0, -1 with a message (that never quotes the URL, which
 * may hold a password) in err, or -2 on allocation failure. */
static int parse_url(const char *url, parsed_url *u, const char **err)
{
    memset(u, 0, sizeof *u);
    *err = NULL;
    if (!url || !url[0]) {
        *err = "no server URL";
        return -1;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            *err = "server URL contains spaces or control characters";
            return -1;
        }
    }
    size_t slen;
    if (strncasecmp(url, "http://", 7) == 0)
        slen = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        slen = 8;
    else {
        *err = "server URL must start with http:// or https://";
        return -1;
    }
    const char *auth = url + slen;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    if (strpbrk(rest, "?#")) {
        *err = "server URL must not contain a query string or fragment";
        return -1;
    }
    /* userinfo ends at the last '@' of the authority (a password may contain '@' only
     * percent-encoded, but be lenient). */
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *host = at ? at + 1 : auth;
    size_t hlen = (size_t)(auth + alen - host);
    if (hlen == 0 || host[0] == ':') {
        *err = "server URL has no host";
        return -1;
    }
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
        u->url_user = pct_decode_dup(auth, ulen);
        if (!u->url_user)
            goto oom;
        if (colon) {
            size_t plen = (size_t)(at - colon - 1);
            u->url_pass = pct_decode_dup(colon + 1, plen);
            u->url_pass_raw = strndup_or_null(colon + 1, plen);
            if (!u->url_pass || !u->url_pass_raw)
                goto oom;
        }
    }
    size_t plen = strlen(rest);
    while (plen > 0 && rest[plen - 1] == '/')
        plen--; /* "http://h:4040/" and "...//" alike */
    u->base = malloc(slen + hlen + plen + 1);
    if (!u->base)
        goto oom;
    memcpy(u->base, url, slen);
    memcpy(u->base + slen, host, hlen);
    memcpy(u->base + slen + hlen, rest, plen);
    u->base[slen + hlen + plen] = '\0';
    return 0;
oom:
    parsed_url_free(u);
    return -2;
}

/* ---- labels -------------------------------------------------------------------------- */

typedef struct {
    char *name, *value;
} lbl;

static void lbls_free(lbl *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].name);
        free(l[i].value);
    }
    free(l);
}

/* Label names are reduced to what both APIs accept everywhere: [A-Za-z0-9_.], not starting
 * with a digit (Prometheus rules, plus '.' which ingest tag keys allow). */
static char *clean_name(const char *s)
{
    size_t n = strlen(s);
    if (n > MAX_NAME_LEN - 1)
        n = MAX_NAME_LEN - 1;
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    if (s[0] >= '0' && s[0] <= '9')
        out[o++] = '_';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.';
        out[o++] = ok ? c : '_';
    }
    out[o] = '\0';
    return out;
}

/* Builds the label set actually sent: cleaned, first of duplicates kept, __name__ and
 * service_name first, at most MAX_LABELS. Returns 0, -1 (bad labels, *err says why) or -2
 * (out of memory). */
static int normalize_labels(const cs_label *in, size_t nin, lbl **out, size_t *nout,
                            const char **err)
{
    *out = NULL;
    *nout = 0;
    *err = NULL;
    if (nin && !in) {
        *err = "labels: NULL array";
        return -1;
    }
    lbl *all = calloc(nin ? nin : 1, sizeof *all);
    if (!all)
        return -2;
    size_t n = 0;
    for (size_t i = 0; i < nin; i++) {
        if (!in[i].name || !in[i].name[0] || !in[i].value || !in[i].value[0])
            continue;
        char *name = clean_name(in[i].name);
        if (!name)
            goto oom;
        int dup = 0;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(all[k].name, name) == 0;
        if (dup) {
            free(name);
            continue;
        }
        char *value = utf8_sanitize_dup(in[i].value, MAX_VALUE_LEN);
        if (!value) {
            free(name);
            goto oom;
        }
        all[n].name = name;
        all[n].value = value;
        n++;
    }
    /* Reorder: required labels first, so that the cap never drops them. */
    static const char *const required[] = {"__name__", "service_name"};
    size_t front = 0;
    for (size_t r = 0; r < 2; r++) {
        size_t k = front;
        while (k < n && strcmp(all[k].name, required[r]) != 0)
            k++;
        if (k == n) {
            lbls_free(all, n);
            *err = r == 0 ? "labels: __name__ is required (e.g. process_cpu)"
                          : "labels: service_name is required";
            return -1;
        }
        lbl t = all[k];
        memmove(all + front + 1, all + front, (k - front) * sizeof *all);
        all[front++] = t;
    }
    while (n > MAX_LABELS) {
        n--;
        free(all[n].name);
        free(all[n].value);
    }
    *out = all;
    *nout = n;
    return 0;
oom:
    lbls_free(all, n);
    return -2;
}

/* ---- the push request (push.v1 / types.v1) --------------------------------------------- */

/* PushRequest{ series: [RawProfileSeries{ labels: [LabelPair{name=1, value=2}] = 1,
 * samples: [RawSample{ raw_profile = 1, ID = 2 }] = 2 }] = 1 }, allocated with malloc. */
static uint8_t *encode_push_request(const lbl *l, size_t nl, const uint8_t *pprof, size_t len,
                                    const char *id, size_t *out_len)
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
static void ingest_name(sbuf *b, const lbl *l, size_t nl)
{
    const char *svc = l[1].value; /* normalize_labels put service_name second */
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
    const secrets *sc;
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

    secrets sc = {{0}, 0};
    parsed_url u = {0};
    lbl *l = NULL;
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
    secrets_add(&sc, srv->password);
    int prc = parse_url(srv->url, &u, &err);
    if (prc == -2)
        goto oom;
    if (prc < 0) {
        set_err(r, &sc, "%s", err);
        goto out;
    }
    secrets_add(&sc, u.url_pass);
    secrets_add(&sc, u.url_pass_raw);

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
        token = base64_dup(cx.user ? cx.user : "", cx.password ? cx.password : "");
        if (!token)
            goto oom;
        secrets_add(&sc, token);
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
    int lrc = normalize_labels(labels, nlabels, &l, &nl, &err);
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
    lbls_free(l, nl);
    free(msg);
    free(gz);
    free(url.p);
    free(ep.p);
    free(tenant_hdr);
    free_secret(token);
    parsed_url_free(&u);
    if (ret == 0)
        r->error[0] = '\0';
    return ret;
}
