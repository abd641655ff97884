/*
 * ring.c: a bounded multi-producer, single-consumer queue of fixed-size samples.
 *
 * The design is Vyukov's bounded queue: each slot carries a sequence number that tells
 * producers whether it is free for their lap and the consumer whether it is filled. Claims
 * are a single compare-and-swap on the head, so a signal handler can produce without locks.
 * It must never block a producer, and never hand the consumer a half-written slot.
 *
 * Each slot stores its sequence number minus its index, so that a fresh anonymous mapping
 * (all zeros) is the queue's initial state: starting, and forgetting the queue in a fork
 * child, touch no page (3.3 MiB of copy-on-write faults made every fork of a recorded shell
 * 20 ms slower). Once a process has lived a while the consumer maps all pages in at once
 * (cs_ring_populate): a page first touched by a producer is a fault taken in the program's
 * thread, and on a VM each cost ~5 us (two per sample, most of a sample's cost, until the ring
 * had gone round once).
 */
#include "ring.h"

#include <errno.h>

#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A power of two. Slots are ~4.4 KiB (200 native and 64 Python frames): 9 MiB once all are
 * touched (pages are touched as used). The writer drains on a timer and whenever a producer
 * fills a quarter of the ring while it sleeps; beyond, samples are dropped and counted. */
#define CS_RING_SLOTS 2048u
#define CS_RING_WAKE  (CS_RING_SLOTS / 4)

typedef struct slot {
    _Atomic size_t seq; /* sequence number - index of the slot */
    cs_sample s;
} slot;

static slot *ring;
static _Atomic size_t head;
static size_t tail; /* consumer only */
static _Atomic uint64_t dropped;
/* The consumer sleeps on WAKE_WORD (a futex) with WAITING set; a producer that commits the
 * last slot of a quarter of the ring wakes it: a system call every CS_RING_WAKE samples, and
 * only while the consumer sleeps. A timer alone drained 2048 slots ten times a second, fewer
 * than an allocation-heavy program's samples (35,000 a second in bench/heap.sh). */
static _Atomic uint32_t wake_word;
static _Atomic int waiting;

static slot *map_ring(void)
{
    void *p = mmap(NULL, sizeof(slot) * CS_RING_SLOTS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t seq_of(slot *sl, size_t pos)
{
    return atomic_load_explicit(&sl->seq, memory_order_acquire) + (pos & (CS_RING_SLOTS - 1));
}

static void set_seq(slot *sl, size_t pos, size_t seq)
{
    atomic_store_explicit(&sl->seq, seq - (pos & (CS_RING_SLOTS - 1)), memory_order_release);
}

void cs_ring_populate(void)
{
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
    if (ring) /* an older kernel says EINVAL: the producers then fault pages in as before */
        (void)madvise(ring, sizeof(slot) * CS_RING_SLOTS, MADV_POPULATE_WRITE);
}

void cs_ring_reset(void)
{
    slot *fresh = ring ? map_ring() : NULL;
    if (fresh) {
        munmap(ring, sizeof(slot) * CS_RING_SLOTS);
        ring = fresh;
    } else if (ring) { /* no memory for a new one: clear this one, page by page */
        for (size_t i = 0; i < CS_RING_SLOTS; i++)
            atomic_store_explicit(&ring[i].seq, 0, memory_order_relaxed);
    }
    atomic_store(&head, 0);
    tail = 0;
    atomic_store(&dropped, 0); /* a fork child's own count */
}

int cs_ring_init(void)
{
    if (ring)
        return 0;
    ring = map_ring();
    return ring ? 0 : -1;
}

cs_sample *cs_ring_claim(void)
{
    uint64_t pos;
    return cs_ring_claim_at(&pos);
}

cs_sample *cs_ring_claim_at(uint64_t *at)
{
    if (!ring)
        return NULL;
    size_t pos = atomic_load_explicit(&head, memory_order_relaxed);
    for (;;) {
        slot *sl = &ring[pos & (CS_RING_SLOTS - 1)];
        size_t seq = seq_of(sl, pos);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *at = pos;
                return &sl->s;
            }
        } else if (diff < 0) {
            atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
            return NULL;
        } else {
            pos = atomic_load_explicit(&head, memory_order_relaxed);
        }
    }
}

int cs_ring_half_claimed(void)
{
    return atomic_load_explicit(&head, memory_order_relaxed) >= CS_RING_SLOTS / 2;
}

void cs_ring_wake(void)
{
    atomic_fetch_add(&wake_word, 1);
    syscall(SYS_futex, &wake_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void cs_ring_commit(cs_sample *s)
{
    slot *sl = (slot *)((char *)s - offsetof(slot, s));
    /* the stored value is the sequence number minus a constant: one more is one more */
    size_t seq = atomic_load_explicit(&sl->seq, memory_order_relaxed);
    atomic_store_explicit(&sl->seq, seq + 1, memory_order_release);
    if (((size_t)(sl - ring) + 1) % CS_RING_WAKE == 0) {
        /* pairs with the consumer's fence: either it sees this slot filled, or this sees it
         * waiting */
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&waiting, memory_order_relaxed)) {
            int e = errno;
            cs_ring_wake();
            errno = e;
        }
    }
}

void cs_ring_wait(long timeout_ns)
{
    uint32_t word = atomic_load(&wake_word);
    atomic_store_explicit(&waiting, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    /* a quarter already waiting (its last slot committed): no sleep; no ring (nothing is
     * sampled): the timer alone */
    size_t last = tail + CS_RING_WAKE - 1;
    if (!ring || seq_of(&ring[last & (CS_RING_SLOTS - 1)], last) != last + 1) {
        struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
        syscall(SYS_futex, &wake_word, FUTEX_WAIT_PRIVATE, word, &ts, NULL, 0);
    }
    atomic_store_explicit(&waiting, 0, memory_order_relaxed);
}

cs_sample *cs_ring_peek(void)
{
    if (!ring)
        return NULL;
    slot *sl = &ring[tail & (CS_RING_SLOTS - 1)];
    return seq_of(sl, tail) == tail + 1 ? &sl->s : NULL;
}

void cs_ring_release(void)
{
    slot *sl = &ring[tail & (CS_RING_SLOTS - 1)];
    set_seq(sl, tail, tail + CS_RING_SLOTS);
    tail++;
}

uint64_t cs_ring_dropped(void)
{
    return atomic_load_explicit(&dropped, memory_order_relaxed);
}

void cs_ring_dump(void (*emit)(const cs_sample *s, void *ctx), void *ctx)
{
    if (!ring)
        return;
    size_t end = atomic_load(&head);
    for (size_t pos = tail; pos != end; pos++) {
        slot *sl = &ring[pos & (CS_RING_SLOTS - 1)];
        if (seq_of(sl, pos) == pos + 1)
            emit(&sl->s, ctx);
    }
}
