/*
 * alloc.h: the uploader's allocator seam. The pprof builder, the protobuf writer and gzip
 * take every byte through a cs_alloc, so that a host can keep them off an interposed malloc
 * and tests can make any single allocation fail.
 *
 * Must never: be called from a signal handler (the standard one is malloc itself).
 */
#ifndef CS_ALLOC_H
#define CS_ALLOC_H

#include <stddef.h>

/* realloc_fn behaves like realloc (NULL ptr allowed; on failure the old block stays valid);
 * free_fn accepts NULL. */
typedef struct cs_alloc {
    void *(*malloc_fn)(void *ctx, size_t size);
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
    void *ctx;
} cs_alloc;

/* malloc, realloc and free. */
extern const cs_alloc cs_alloc_std;

/* Grows the array *ARRP (any T*, passed as T**) so that it holds NEED elements of ELEM bytes,
 * doubling from 16. Returns 0, or -1 (overflow, or out of memory: the array is unchanged). */
int cs_alloc_grow(const cs_alloc *a, void *arrp, size_t *cap, size_t need, size_t elem);

#endif
