/*
 * heaplive.h: the sampled allocations still live, as the writer knows them.
 */
#ifndef CS_HEAPLIVE_H
#define CS_HEAPLIVE_H

#include <stdint.h>

typedef struct cs_heaplive_entry {
    uint64_t addr, serial;
    double objects, bytes; /* what the sample stands for */
    uint32_t stack;        /* the writer's stack number */
} cs_heaplive_entry;

typedef struct cs_heaplive {
    cs_heaplive_entry *e;
    int n, cap;
    uint32_t *index; /* open addressing by address: entry + 1, 0 = empty */
    int index_cap;
} cs_heaplive;

/* Adds a sampled block (replacing a dead entry at the same address). 0, or -1 out of memory. */
int cs_heaplive_add(cs_heaplive *h, uint64_t addr, uint64_t serial, uint32_t stack, double objects,
                    double bytes);
/* Drops the entries whose blocks were freed since (heap.c's table no longer has them). */
void cs_heaplive_sweep(cs_heaplive *h);
/* After the writer renumbered its stacks: NEW_STACK[old] is the new number, or -1 if the
 * stack is gone (its entries go too). */
void cs_heaplive_remap(cs_heaplive *h, const int32_t *new_stack);

#endif
