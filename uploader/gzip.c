/*
 * gzip.c: gzip compression of a buffer through zlib (see gzip.h).
 *
 * Must never: give up on a buffer zlib's 32-bit counters cannot take whole (it is fed and
 * drained in chunks), or return a member that was not finished.
 */
#include "gzip.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    const cs_alloc *a = opaque;
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return a->malloc_fn(a->ctx, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf ptr)
{
    const cs_alloc *a = opaque;
    a->free_fn(a->ctx, ptr);
}

int cs_gzip(const cs_alloc *a, const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    z.zalloc = z_alloc;
    z.zfree = z_free;
    z.opaque = (voidpf)a;
    /* windowBits 15 + 16: the gzip wrapper, not zlib's. Level 1, like Go's runtime/pprof: the
     * time to compress matters more here than the last few percent of size. */
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;

    size_t cap = n / 4 + 64, used = 0, in_left = n;
    uint8_t *buf = a->malloc_fn(a->ctx, cap);
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    z.next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const-correct */
    while (rc == Z_OK || rc == Z_BUF_ERROR) {
        if (used == cap) {
            size_t ncap = cap;
            if (cs_alloc_grow(a, &buf, &ncap, cap + cap / 2 + 64, 1)) {
                rc = Z_MEM_ERROR;
                break;
            }
            cap = ncap;
        }
        if (z.avail_in == 0 && in_left) {
            z.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            in_left -= z.avail_in;
        }
        z.next_out = buf + used;
        z.avail_out = cap - used > UINT_MAX ? UINT_MAX : (uInt)(cap - used);
        uInt before = z.avail_out;
        rc = deflate(&z, in_left || z.avail_in > 0 ? Z_NO_FLUSH : Z_FINISH);
        used += before - z.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && z.avail_out != 0 && z.avail_in != 0) {
            rc = Z_STREAM_ERROR; /* no progress with room on both sides: give up */
            break;
        }
    }
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        a->free_fn(a->ctx, buf);
        return -1;
    }
    *out = buf;
    *out_len = used;
    return 0;
}
