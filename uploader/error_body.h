/*
 * error_body.h: what a server's error response says, in one line. Pyroscope (Connect) answers
 * {"code": ..., "message": ...}; Go's mux a short text ("404 page not found"); a proxy an HTML
 * page, which says nothing useful.
 */
#ifndef CS_ERROR_BODY_H
#define CS_ERROR_BODY_H

#include <stddef.h>

/* Into OUT (CAP bytes, NUL-terminated, cut when longer): the "message" of a top-level JSON
 * object, else the first line of a text body that is neither HTML nor JSON. Returns 1, or 0
 * when the body says nothing (OUT is then ""). BODY holds LEN bytes and a NUL after them. */
int cs_error_body_says(const char *body, size_t len, char *out, size_t cap);

#endif
