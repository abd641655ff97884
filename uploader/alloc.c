/*
 * alloc.c: the standard allocator behind cs_alloc, and the one growth rule every array of
 * the uploader follows.
 *
 * Must never: leave an array half-grown (a failed growth leaves it as it was).
 */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *std_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void *std_realloc(void *ctx, void *ptr, size_t n)
{
    (void)ctx;
    return realloc(ptr, n);
}

static void std_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

const cs_alloc cs_alloc_std = {std_malloc, std_realloc, std_free, NULL};

int cs_alloc_grow(const cs_alloc *a, void *arrp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem)
        return -1;
    /* The pointer moves through memcpy, not a void ** cast: T ** and void ** may not alias. */
    void *arr;
    memcpy(&arr, arrp, sizeof arr);
    void *n = a->realloc_fn(a->ctx, arr, ncap * elem);
    if (!n)
        return -1;
    memcpy(arrp, &n, sizeof n);
    *cap = ncap;
    return 0;
}
