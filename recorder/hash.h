/*
 * hash.h: the one 64-bit mixing function the in-memory hash tables use (MurmurHash3's
 * finalizer: every input bit affects every output bit), and the one insertion into their
 * indexes. Pure arithmetic: usable anywhere, signal handlers included. Nothing persisted
 * depends on its values.
 */
#ifndef CS_HASH_H
#define CS_HASH_H

#include <stdint.h>

static inline uint64_t cs_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* An index of positions in an array: CAP slots (a power of two), each 0 (empty) or a position
 * plus one. Puts POS in the first empty slot from HASH (linear probing); the caller keeps the
 * index at most half full, so there is one. */
static inline void cs_index_put(uint32_t *idx, uint64_t cap, uint64_t hash, uint32_t pos)
{
    uint64_t p = hash & (cap - 1);
    while (idx[p])
        p = (p + 1) & (cap - 1);
    idx[p] = pos + 1;
}

#endif
