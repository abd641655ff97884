/*
 * hash.h: the one 64-bit mixing function the in-memory hash tables use (MurmurHash3's
 * finalizer: every input bit affects every output bit). Pure arithmetic: usable anywhere,
 * signal handlers included. Nothing persisted depends on its values.
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

#endif
