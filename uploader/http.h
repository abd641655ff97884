/* http.h: the one HTTP POST the uploader needs, over libcurl, bounded in time and memory.
 *
 * It posts a body to a URL with optional HTTP basic auth and extra headers, and reports the
 * HTTP status, a short transport error and the first few KiB of the response body. It knows
 * nothing about Pyroscope: uploader/push.c builds the URLs, bodies and error messages.
 *
 * Must never: print anything (stdout/stderr), enable CURLOPT_VERBOSE, follow a redirect (it
 * could carry the credentials to another host), put credentials into a URL, read an unbounded
 * response body, block longer than the timeouts it is given, or raise signals (CURLOPT_NOSIGNAL:
 * the process may be multi-threaded). Thread-safe after cs_http_global_init(): every call uses
 * its own curl handle and shares nothing.
 */
#ifndef CS_HTTP_H
#define CS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How much of a response body is kept (enough for a JSON error message). Past this the
 * transfer is stopped: the status line has already arrived, the rest is not needed. */
#define CS_HTTP_BODY_CAP  4096
#define CS_HTTP_ERROR_LEN 256

typedef struct cs_http_request {
    const char *url;             /* full URL, without userinfo (the caller strips it) */
    const char *user, *password; /* basic auth; both NULL = no auth */
    const char *const *headers;  /* "Name: value" lines, no CR/LF inside */
    size_t nheaders;
    const uint8_t *body;
    size_t body_len;
    long connect_timeout_ms, total_timeout_ms; /* > 0 */
} cs_http_request;

typedef struct cs_http_response {
    long status;                     /* HTTP status, 0 when no response arrived */
    int timed_out;                   /* 1 when a timeout stopped the transfer */
    int config_error;                /* 1 when the request could not be made at all (bad URL,
                                      * unsupported scheme, out of memory is NOT one) */
    char error[CS_HTTP_ERROR_LEN];   /* transport error ("" if none); names hosts and ports,
                                      * never credentials (none are in the URL) */
    char body[CS_HTTP_BODY_CAP + 1]; /* first bytes of the response body, NUL-terminated */
    size_t body_len;
} cs_http_response;

/* Loads libcurl (dlopen) and runs curl_global_init, once; cs_http_post does it when it has
 * not been done. curl_global_init is not thread-safe on every libcurl: a program with threads
 * calls this from main before starting them. Returns 0 or -1. Calling it again is harmless. */
int cs_http_global_init(void);

/* POSTs the request. Returns 0 when an HTTP response arrived (any status, see rs->status),
 * -1 otherwise (rs->error says why). rs is always filled. */
int cs_http_post(const cs_http_request *rq, cs_http_response *rs);

#ifdef __cplusplus
}
#endif

#endif /* CS_HTTP_H */
