/*
 * ring.h: the lock-free queue between the sampling signal handlers and the writer.
 *
 * Many producers (signal handlers on any thread, the wall ticker) and one consumer (the
 * writer thread). Producers never block, never allocate and never take a lock: when the
 * ring is full the sample is dropped and counted. The memory is mapped once at start.
 */
#ifndef CS_RING_H
#define CS_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "python.h"
#include "tags.h"

#define CS_MAX_FRAMES   200
#define CS_MAX_PYFRAMES 64

enum cs_sample_kind {
    CS_KIND_CPU = 1,
    CS_KIND_WALL = 2,
    /* A wall sample of a thread that has not run since its last stack was taken: the
     * writer reuses that stack, so waiting threads are recorded without a signal. */
    CS_KIND_WALL_IDLE = 3,
    /* Not a sample: the crash handler asks every thread for its stack. */
    CS_KIND_CRASH_STACK = 4,
    /* A wall sample of a thread that was busy on the CPU all along: the writer uses its latest
     * CPU sample's stack (at most one CPU period old), so busy threads get no second signal. */
    CS_KIND_WALL_BUSY = 5,
    /* A sampled allocation (heap.c), taken in normal context; alloc_* say which and how much
     * it stands for. */
    CS_KIND_ALLOC = 6,
};

typedef struct cs_sample {
    uint64_t time_ns; /* CLOCK_REALTIME */
    int32_t tid;
    uint16_t kind;
    uint16_t nframes;
    uint32_t count; /* samples this record stands for (CPU timer overruns + 1) */
    char thread_name[16];
    uint64_t alloc_addr, alloc_serial; /* CS_KIND_ALLOC: the block and its live-table serial */
    uint64_t alloc_size;               /* and its size (cs_heap_weigh: what it stands for) */
    uint16_t npy;                      /* Python frames, innermost first (0: none or not Python) */
    int16_t gil;                       /* 1 holds the GIL, 0 does not, -1 unknown or not Python */
    char tags[CS_TAGS_MAX + 1];        /* the thread's tags, "k=v,k=v" */
    uint64_t ips[CS_MAX_FRAMES];       /* innermost first; ips[0] is the interrupted pc */
    cs_pyframe py[CS_MAX_PYFRAMES];
} cs_sample;

/* Returns 0, or -1 if the ring could not be mapped. Idempotent. */
int cs_ring_init(void);
/* Maps every page of the ring in (normal context; the consumer's thread), so that producers
 * take no page faults; the memory it holds is that of a ring that has gone round once. */
void cs_ring_populate(void);
/* Forgets every queued sample: the child of a fork must not write its parent's samples. */
void cs_ring_reset(void);

/* Producer side, async-signal-safe. Returns a slot to fill or NULL when full; the slot is
 * published by cs_ring_commit. Between the two calls the producer must not be interrupted
 * by another producer on the same thread that waits for it (signal handlers never wait). */
cs_sample *cs_ring_claim(void);
/* The same, and the slot's position in the ring's sequence in *AT: unique until the ring is
 * reset (a fork child starts again at 0). */
cs_sample *cs_ring_claim_at(uint64_t *at);
void cs_ring_commit(cs_sample *s);

/* Whether producers have claimed half the ring's slots since the start (or the last reset):
 * busy enough that they will go round it, so that mapping it all in (cs_ring_populate) pays. */
int cs_ring_half_claimed(void);
/* Consumer side: sleeps until a producer has filled a quarter of the ring, cs_ring_wake is
 * called, or TIMEOUT_NS pass (a signal may end it sooner). */
void cs_ring_wait(long timeout_ns);
void cs_ring_wake(void);
/* Consumer side: the next committed sample, or NULL; release it when copied. */
cs_sample *cs_ring_peek(void);
void cs_ring_release(void);

/* For the crash handler: calls EMIT for every committed sample the writer has not taken
 * yet. Async-signal-safe; the writer must be frozen (cs_writer_freeze). */
void cs_ring_dump(void (*emit)(const cs_sample *s, void *ctx), void *ctx);

/* Samples dropped because the ring was full, since start (monotonic). */
uint64_t cs_ring_dropped(void);

#endif
