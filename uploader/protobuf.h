/*
 * protobuf.h: a writer of protobuf's wire format, the little of it that pprof profiles and
 * Pyroscope's push requests need: varints, length-delimited fields, nested messages.
 *
 * Errors are sticky: once an append fails (out of memory, overflow), the buffer says so in
 * oom and every later call writes nothing, so encoders write unconditionally and check once.
 */
#ifndef CS_PROTOBUF_H
#define CS_PROTOBUF_H

#include "alloc.h"

#include <stddef.h>
#include <stdint.h>

enum { CS_PB_VARINT = 0, CS_PB_LEN = 2 }; /* wire types */

typedef struct {
    const cs_alloc *a;
    uint8_t *p; /* the message so far, allocated through a; the caller frees it */
    size_t len, cap;
    int oom;
} cs_pb;

/* Makes room for EXTRA more bytes. 0, or -1 (and oom set). */
int cs_pb_reserve(cs_pb *b, size_t extra);

/* A varint without a check: the caller reserved 10 bytes for it. For packed runs. */
static inline void cs_pb_varint_raw(cs_pb *b, uint64_t v)
{
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

/* An unsigned (or int64, as its two's complement) scalar; zero, proto3's default, is left
 * out. */
void cs_pb_uint(cs_pb *b, unsigned field, uint64_t v);

/* A length-delimited field (bytes, string), written even when empty. */
void cs_pb_bytes(cs_pb *b, unsigned field, const void *d, size_t n);

/* A nested message: cs_pb_begin returns where its body starts; cs_pb_end, after the body is
 * written, fills in its length. */
size_t cs_pb_begin(cs_pb *b, unsigned field);
void cs_pb_end(cs_pb *b, size_t start);

#endif
