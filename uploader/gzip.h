/*
 * gzip.h: compresses a buffer into a gzip member (RFC 1952), what pprof files on disk and
 * HTTP's Content-Encoding: gzip both mean.
 */
#ifndef CS_GZIP_H
#define CS_GZIP_H

#include "alloc.h"

#include <stddef.h>
#include <stdint.h>

/* Compresses IN (N bytes, any size) into a new buffer allocated through A (zlib's own memory
 * too). 0 with *OUT and *OUT_LEN set, or -1 (out of memory) with both untouched. */
int cs_gzip(const cs_alloc *a, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len);

#endif
