/* push.h: sends one pprof profile to Grafana Pyroscope (or a compatible server).
 *
 * The current push API (POST /push.v1.PusherService/Push, a hand-encoded, gzipped
 * PushRequest) is tried first; a server that answers it with 404 gets the legacy
 * POST /ingest?name=APP{tags}&format=pprof instead, and the caller can remember that.
 *
 * Must never: log or return a password or token (not in r->endpoint, not in r->error, not in
 * a URL sent on the wire; credentials travel only in the Authorization header), print
 * anything, follow a redirect, block past the configured timeouts, or keep global state
 * besides libcurl's one-time initialisation. cs_push_send is thread-safe (after
 * cs_push_global_init) and not async-signal-safe: never call it from a signal handler or a
 * crashed process.
 */
#ifndef CS_PUSH_H
#define CS_PUSH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cs_label {
    const char *name, *value;
} cs_label;

typedef struct cs_server {
    const char *url;      /* http(s)://host[:port][/prefix], may end with '/'; userinfo
                           * (user:pass@host) is accepted, used as the credentials when
                           * user is NULL, and never stored or sent in a URL. No query
                           * string or fragment. */
    const char *user;     /* basic auth user or NULL */
    const char *password; /* basic auth password/token or NULL: NEVER logged, never in errors */
    const char *tenant;   /* X-Scope-OrgID or NULL */
    int api;              /* CS_API_PUSH (default: push, fall back to ingest after a 404) or
                           * CS_API_INGEST (always ingest) */
    long connect_timeout_ms, total_timeout_ms; /* 0 = defaults 5000 / 20000 (per request; a
                                                * push answered 404 is followed by one ingest
                                                * request, so a call takes at most twice) */
} cs_server;

enum { CS_API_PUSH = 0, CS_API_INGEST = 1 };

typedef struct cs_send_result {
    long http_status;   /* 0 when there was no HTTP response */
    char endpoint[512]; /* what was posted to, without credentials or query string, e.g.
                         * "http://127.0.0.1:4040/push.v1.PusherService/Push" or
                         * "http://127.0.0.1:4040/ingest" */
    char error[256];    /* one line, no secrets; "" on success */
    size_t bytes;       /* request body bytes sent (as on the wire, i.e. compressed) */
    int used_ingest;    /* 1 if the legacy /ingest endpoint was used */
    int retryable;      /* 1 for connection errors, timeouts, 429, 5xx (and local out of
                         * memory); 0 for 3xx, 4xx other than 429 (the profile itself is
                         * refused) and for invalid arguments or a server URL that cannot
                         * work */
} cs_send_result;

/* Loads and initialises libcurl once (see cs_http_global_init; the first send does it too).
 * Returns 0, or -1 if libcurl could not be loaded or initialised. */
int cs_push_global_init(void);

/* Sends one profile. LABELS are the series labels: must contain "__name__" (e.g.
 * "process_cpu", "wall", "crash") and "service_name", both non-empty; other labels are tags.
 * Label names are reduced to [A-Za-z0-9_.] (others become '_'), the first of duplicate names
 * wins, NULL/empty values are dropped, values are made valid UTF-8 (U+FFFD) and cut to the
 * server's limits, and at most 30 labels are sent (__name__ and service_name first).
 * PPROF is a gzipped pprof Profile (LEN > 0). FROM_NS/UNTIL_NS: the slice (for /ingest
 * from/until; <= 0 means now). SAMPLE_RATE for /ingest sampleRate (<= 0 means 100).
 * *PUSH_UNSUPPORTED (in/out, may be NULL): set to 1 when the push path answered 404 (the same
 * profile is then sent once to /ingest within this call), and when already 1, goes straight
 * to /ingest. Returns 0 if the server accepted it (2xx), -1 otherwise; R is always filled. */
int cs_push_send(const cs_server *srv, const cs_label *labels, size_t nlabels, const uint8_t *pprof,
                 size_t len, int64_t from_ns, int64_t until_ns, int sample_rate,
                 int *push_unsupported, cs_send_result *r);

#ifdef __cplusplus
}
#endif

#endif /* CS_PUSH_H */
