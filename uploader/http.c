/* http.c: one bounded HTTP POST over libcurl (see http.h).
 *
 * Must never: print anything (no CURLOPT_VERBOSE, and a write callback is always installed,
 * because libcurl's default one writes the response body to stdout), follow redirects (a
 * Location could carry the basic-auth credentials to another host), accept anything but
 * http/https, decode a compressed response (a small reply could inflate without bound), keep
 * more than CS_HTTP_BODY_CAP bytes of a response, run past the timeouts it is given, or use
 * signals for timeouts (CURLOPT_NOSIGNAL: SIGALRM-based DNS timeouts are not safe in a
 * multi-threaded process).
 *
 * libcurl is loaded with dlopen at the first request, not linked: it brings some thirty
 * libraries (TLS, Kerberos, LDAP, SSH) whose loading and constructors cost ~15 ms of CPU at
 * every start of `crashscope`, and most commands (`run`, `inspect`, `export`) never upload.
 */
#include "http.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- global init ----------------------------------------------------------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = -1;

static char g_init_error[CS_HTTP_ERROR_LEN];

/* The libcurl functions used here, from the library loaded at the first request. */
static struct {
    CURLcode (*global_init)(long);
    const char *(*easy_strerror)(CURLcode);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} lc;

static int load_curl(void)
{
    /* Debian's libcurl4 (OpenSSL), then the GnuTLS build: the same ABI. */
    static const char *const names[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};
    void *h = NULL;
    for (size_t i = 0; !h && i < sizeof names / sizeof names[0]; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_init_error, sizeof g_init_error,
                 "cannot load libcurl (libcurl.so.4, Debian package libcurl4): uploads need it");
        return -1;
    }
    struct {
        void *dst;
        const char *name;
    } want[] = {
        {&lc.global_init, "curl_global_init"},       {&lc.easy_strerror, "curl_easy_strerror"},
        {&lc.easy_init, "curl_easy_init"},           {&lc.easy_setopt, "curl_easy_setopt"},
        {&lc.easy_perform, "curl_easy_perform"},     {&lc.easy_getinfo, "curl_easy_getinfo"},
        {&lc.easy_cleanup, "curl_easy_cleanup"},     {&lc.slist_append, "curl_slist_append"},
        {&lc.slist_free_all, "curl_slist_free_all"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        void *f = dlsym(h, want[i].name);
        if (!f) {
            snprintf(g_init_error, sizeof g_init_error, "the libcurl found lacks %s", want[i].name);
            return -1; /* left loaded: harmless, and dlclose of TLS libraries is not */
        }
        memcpy(want[i].dst, &f, sizeof f); /* object to function pointer, as POSIX allows */
    }
    return 0;
}

static void global_init_once(void)
{
    if (load_curl() != 0)
        return;
    /* CURL_GLOBAL_DEFAULT initialises the TLS library too; done once for the whole process. */
    g_init_rc = lc.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
    if (g_init_rc != 0)
        snprintf(g_init_error, sizeof g_init_error, "libcurl global initialisation failed");
}

int cs_http_global_init(void)
{
    /* pthread_once makes a second call (or a call from cs_http_post) harmless; it does not make
     * curl_global_init itself safe against other threads already using libcurl or OpenSSL, so
     * the documented rule stays: call it from main before starting threads. */
    pthread_once(&g_once, global_init_once);
    return g_init_rc;
}

/* ---- response body, capped -------------------------------------------------------------- */

typedef struct {
    cs_http_response *rs;
    int overflow;
} body_sink;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    body_sink *s = ud;
    size_t n = size * nmemb; /* size is always 1 for write callbacks */
    size_t room = CS_HTTP_BODY_CAP - s->rs->body_len;
    if (n > room) {
        /* Keep what fits, then stop the transfer: the status is known and an error message
         * never needs more. Returning a short count makes curl abort with CURLE_WRITE_ERROR,
         * which cs_http_post treats as a normal end when a status arrived. */
        memcpy(s->rs->body + s->rs->body_len, data, room);
        s->rs->body_len += room;
        s->rs->body[s->rs->body_len] = '\0';
        s->overflow = 1;
        return 0;
    }
    memcpy(s->rs->body + s->rs->body_len, data, n);
    s->rs->body_len += n;
    s->rs->body[s->rs->body_len] = '\0';
    return n;
}

/* ---- the request ---------------------------------------------------------------------- */

/* Errors that no retry can fix: the request itself cannot be made with this URL/build. */
static int is_config_error(CURLcode c)
{
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION: return 1;
    default: return 0;
    }
}

static void set_error(cs_http_response *rs, CURLcode c, const char *errbuf)
{
    const char *text = (errbuf && errbuf[0]) ? errbuf : lc.easy_strerror(c);
    snprintf(rs->error, sizeof rs->error, "%s (curl error %d)", text, (int)c);
}

int cs_http_post(const cs_http_request *rq, cs_http_response *rs)
{
    memset(rs, 0, sizeof *rs);
    if (!rq || !rq->url || (!rq->body && rq->body_len)) {
        snprintf(rs->error, sizeof rs->error, "invalid HTTP request");
        rs->config_error = 1;
        return -1;
    }
    if (cs_http_global_init() != 0) {
        snprintf(rs->error, sizeof rs->error, "%s", g_init_error);
        return -1;
    }

    CURL *h = lc.easy_init();
    if (!h) {
        snprintf(rs->error, sizeof rs->error, "libcurl: cannot create a handle (out of memory?)");
        return -1;
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    body_sink sink = {rs, 0};
    struct curl_slist *hdrs = NULL;
    CURLcode c = CURLE_OK;

    /* "Expect:" turns off `Expect: 100-continue`, which curl adds for bodies over 1 MiB and
     * which costs a second of waiting against servers that do not answer it. */
    struct curl_slist *t = lc.slist_append(NULL, "Expect:");
    if (!t) {
        c = CURLE_OUT_OF_MEMORY;
        goto done;
    }
    hdrs = t;
    for (size_t i = 0; i < rq->nheaders; i++) {
        if (!rq->headers[i])
            continue;
        t = lc.slist_append(hdrs, rq->headers[i]);
        if (!t) {
            c = CURLE_OUT_OF_MEMORY;
            goto done;
        }
        hdrs = t;
    }

/* Every setopt is checked: an option that silently fails to apply (a timeout, say) would
 * break the guarantees above. */
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if ((c = lc.easy_setopt(h, opt, val)) != CURLE_OK)                                         \
            goto done;                                                                             \
    } while (0)

    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_VERBOSE, 0L);
    SETOPT(CURLOPT_NOPROGRESS, 1L);
    SETOPT(CURLOPT_URL, rq->url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0: the string form; the long form is deprecated */
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, rq->total_timeout_ms);
    SETOPT(CURLOPT_POST, 1L);
    /* POSTFIELDS does not copy: the body outlives curl_easy_perform below. */
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    SETOPT(CURLOPT_POSTFIELDS, rq->body_len ? (const char *)rq->body : "");
    SETOPT(CURLOPT_HTTPHEADER, hdrs);
    SETOPT(CURLOPT_USERAGENT, "crashscope/0.1");
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, &sink);
    if (rq->user || rq->password) {
        /* Only basic, sent up front: no negotiation round trip, and never a scheme the
         * server picks for us. */
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(CURLOPT_USERNAME, rq->user ? rq->user : "");
        SETOPT(CURLOPT_PASSWORD, rq->password ? rq->password : "");
    }
#undef SETOPT

    c = lc.easy_perform(h);
    long status = 0;
    if (lc.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    /* With 100-continue off, a status below 200 cannot be final; treat it as none. */
    rs->status = status >= 200 ? status : 0;
    if (c == CURLE_OPERATION_TIMEDOUT)
        rs->timed_out = 1;
    if (c == CURLE_WRITE_ERROR && sink.overflow)
        c = CURLE_OK; /* our own cap, not a failure */

done:
    if (c != CURLE_OK) {
        set_error(rs, c, errbuf);
        if (is_config_error(c))
            rs->config_error = 1;
    }
    lc.easy_cleanup(h);
    lc.slist_free_all(hdrs);
    /* A status that arrived counts even when the rest of the transfer failed (a timeout while
     * reading the body, say): the server has decided. */
    return rs->status ? 0 : -1;
}
