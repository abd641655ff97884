/*
 * heap.h: sampled allocation profiling (the interposed allocator lives in heap.c).
 */
#ifndef CS_HEAP_H
#define CS_HEAP_H

#include <stdint.h>

/* Starts sampling with a mean interval of INTERVAL_BYTES (<= 0: off). Normal context, once,
 * from the constructor. Returns 0, or -1 if the live table could not be mapped (then off). */
int cs_heap_start(long interval_bytes);
/* The interval in force (0 = off). */
long cs_heap_interval(void);
/* Never sample allocations of the calling thread (crashscope's own threads). */
void cs_heap_ignore_thread(void);
/* In a fork child: forgets the parent's sampled blocks (the child's writer starts empty). */
void cs_heap_after_fork_child(void);

/* Whether the sampled block at ADDR recorded with SERIAL is still allocated. Any thread. */
int cs_heap_is_live(uint64_t addr, uint64_t serial);
/* What a sampled block of SIZE bytes stands for: OBJECTS allocations of BYTES bytes in all
 * (unbiased estimates at the interval in force). */
void cs_heap_weigh(uint64_t size, double *objects, double *bytes);
/* Sampled allocations that found no room in the live table (never recorded). */
uint64_t cs_heap_dropped(void);

#endif
