/*
 * heaplive.c: the writer's view of the sampled allocations still live: for each, its block
 * address, the serial heap.c gave it, the writer's stack number and what it stands for.
 * Entries are added from allocation samples and swept once a slice by asking heap.c's table
 * which serials still hold their address; the survivors are the live-heap snapshot.
 *
 * Writer thread only. Must never keep an entry heap.c no longer has (a freed block would stay
 * "live" for ever: a false leak), and never grow without bound (entries are at most heap.c's
 * table size, since every one is backed by a slot there).
 */
#include "heaplive.h"

#include "hash.h"
#include "heap.h"

#include <stdlib.h>
#include <string.h>

static int rebuild_index(cs_heaplive *h, int cap)
{
    uint32_t *idx = calloc((size_t)cap, sizeof *idx);
    if (!idx)
        return -1;
    for (int i = 0; i < h->n; i++)
        cs_index_put(idx, (uint64_t)cap, cs_mix64(h->e[i].addr), (uint32_t)i);
    free(h->index);
    h->index = idx;
    h->index_cap = cap;
    return 0;
}

int cs_heaplive_add(cs_heaplive *h, uint64_t addr, uint64_t serial, uint32_t stack, double objects,
                    double bytes)
{
    /* The address freed and handed out again: the old entry is dead, the new one replaces it. */
    if (h->index_cap) {
        size_t p = cs_mix64(addr) & (size_t)(h->index_cap - 1);
        for (uint32_t k; (k = h->index[p]); p = (p + 1) & (size_t)(h->index_cap - 1)) {
            cs_heaplive_entry *e = &h->e[k - 1];
            if (e->addr == addr) {
                *e = (cs_heaplive_entry){addr, serial, objects, bytes, stack};
                return 0;
            }
        }
    }
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 1024;
        cs_heaplive_entry *e = realloc(h->e, sizeof *e * (size_t)cap);
        if (!e)
            return -1;
        h->e = e;
        h->cap = cap;
    }
    if ((h->n + 1) * 2 > h->index_cap &&
        rebuild_index(h, h->index_cap ? h->index_cap * 2 : 2048) != 0)
        return -1;
    h->e[h->n] = (cs_heaplive_entry){addr, serial, objects, bytes, stack};
    cs_index_put(h->index, (uint64_t)h->index_cap, cs_mix64(addr), (uint32_t)h->n);
    h->n++;
    return 0;
}

void cs_heaplive_sweep(cs_heaplive *h)
{
    int w = 0;
    for (int i = 0; i < h->n; i++)
        if (cs_heap_is_live(h->e[i].addr, h->e[i].serial))
            h->e[w++] = h->e[i];
    if (w == h->n)
        return;
    h->n = w;
    int cap = 2048;
    while (cap < 2 * w)
        cap *= 2;
    if (rebuild_index(h, cap) != 0) {
        /* Without an index, adds would duplicate addresses: start over instead. */
        h->n = 0;
        free(h->index);
        h->index = NULL;
        h->index_cap = 0;
    }
}

void cs_heaplive_remap(cs_heaplive *h, const int32_t *new_stack)
{
    int w = 0;
    for (int i = 0; i < h->n; i++) {
        int32_t s = new_stack[h->e[i].stack];
        if (s < 0)
            continue;
        h->e[i].stack = (uint32_t)s;
        h->e[w++] = h->e[i];
    }
    if (w != h->n) {
        h->n = w;
        if (rebuild_index(h, h->index_cap ? h->index_cap : 2048) != 0) {
            h->n = 0;
            free(h->index);
            h->index = NULL;
            h->index_cap = 0;
        }
    }
}
