/*
 * protobuf.c: the protobuf wire-format writer (see protobuf.h).
 *
 * Must never: write past its buffer, or write anything after an append has failed (a
 * message with a hole in it decodes as something else; a failed one is thrown away whole).
 */
#include "protobuf.h"

#include <string.h>

int cs_pb_reserve(cs_pb *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX - b->len) {
        b->oom = 1;
        return -1;
    }
    if (b->len + extra <= b->cap)
        return 0;
    if (cs_alloc_grow(b->a, &b->p, &b->cap, b->len + extra, 1)) {
        b->oom = 1;
        return -1;
    }
    return 0;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void varint(cs_pb *b, uint64_t v)
{
    if (cs_pb_reserve(b, 10) == 0)
        cs_pb_varint_raw(b, v);
}

static void tag(cs_pb *b, unsigned field, unsigned wire_type)
{
    varint(b, ((uint64_t)field << 3) | wire_type);
}

void cs_pb_uint(cs_pb *b, unsigned field, uint64_t v)
{
    if (v) {
        tag(b, field, CS_PB_VARINT);
        varint(b, v);
    }
}

void cs_pb_bytes(cs_pb *b, unsigned field, const void *d, size_t n)
{
    tag(b, field, CS_PB_LEN);
    varint(b, n);
    if (n && cs_pb_reserve(b, n) == 0) {
        memcpy(b->p + b->len, d, n);
        b->len += n;
    }
}

/* The body is written behind a one-byte length guess, widened by cs_pb_end when it turns out
 * longer: most of a profile's messages are under 128 bytes, so this rarely moves anything and
 * needs no sizing pass. */
size_t cs_pb_begin(cs_pb *b, unsigned field)
{
    tag(b, field, CS_PB_LEN);
    if (cs_pb_reserve(b, 1))
        return 0;
    b->len++;
    return b->len;
}

void cs_pb_end(cs_pb *b, size_t start)
{
    if (b->oom)
        return;
    size_t body = b->len - start;
    size_t n = varint_size(body);
    if (n > 1) {
        if (cs_pb_reserve(b, n - 1))
            return;
        memmove(b->p + start + n - 1, b->p + start, body);
        b->len += n - 1;
    }
    size_t end = b->len;
    b->len = start - 1;
    cs_pb_varint_raw(b, body);
    b->len = end;
}
