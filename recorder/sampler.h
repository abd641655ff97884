/*
 * sampler.h: CPU-time and wall-clock stack sampling.
 *
 * CPU samples come from each thread's own CPU-time timer; wall samples from a ticker thread
 * that, each wall period, sorts every thread into one of three: on the CPU for most of the
 * period (its latest CPU sample's stack stands in: no second signal for busy threads), not
 * run at all (it can only be waiting where it was last seen: no signal), or ran a little and
 * may now wait somewhere new (it gets a signal; at most CS_WALL_SIGNALS_PER_TICK a tick).
 */
#ifndef CS_SAMPLER_H
#define CS_SAMPLER_H

#include "config.h"
#include "ring.h"

#include <stdatomic.h>
#include <stdint.h>

#define CS_WALL_SIGNALS_PER_TICK 64

/* Picks a free real-time signal, installs the handler, starts the wall ticker.
 * Returns 0 or -1 (sampling off; the program runs on). */
int cs_sampler_start(const cs_config *c);
/* Stops the ticker and disarms every timer (before exec); restart after a failed exec. */
void cs_sampler_pause(void);
void cs_sampler_resume(void);
/* In the child of a fork: new ticker, caller's timer re-armed. */
void cs_sampler_after_fork_child(void);

int cs_sampler_signal(void);
int cs_sampler_cpu_hz(void);

/* The stack of one thread at the moment of a crash, filled by that thread's own handler. */
typedef struct cs_thread_stack {
    _Atomic int claimed; /* by the one handler that fills it */
    _Atomic int done;
    int32_t tid;
    uint16_t nframes;
    char name[16];
    uint16_t npy;
    int fault_signal; /* non-zero: the thread faulted too, and IPS are from its fault */
    uint64_t ips[CS_MAX_FRAMES];
    cs_pyframe py[CS_MAX_PYFRAMES];
} cs_thread_stack;

/* For the crash handler: asks every registered thread but the caller for its stack, into
 * AREA (one entry per registry slot, N entries), waiting at most TIMEOUT_MS in all. While
 * a crash is being captured, ordinary samples are not taken. Returns the number of threads
 * asked. Async-signal-safe. */
int cs_sampler_collect_stacks(cs_thread_stack *area, int n, int timeout_ms);
/* Ends the collection: no handler writes into the area after this returns 0, and it may be
 * unmapped; -1 when a late one still did after TIMEOUT_MS (the area must then stay mapped).
 * Async-signal-safe. */
int cs_sampler_release_stacks(int timeout_ms);
/* A thread that faulted while another thread's crash is captured: puts its stack at its own
 * fault (CONTEXT, signal SIG) into its entry of the collection, once, whether it was asked
 * yet or not, and even when it blocks the signal that asks. Async-signal-safe. */
void cs_sampler_answer_crash(void *context, int sig);
void cs_sampler_set_crashing(int on);

/* Async-signal-safe: the calling thread's Python frames into PY (names remembered), or 0. */
int cs_sampler_python_stack(cs_pyframe *py, int max);

/* Bytes of stack left below the caller when it runs on an alternate signal stack that is not
 * crashscope's (the program's, e.g. Python's faulthandler allocates a 16 KiB one on the heap);
 * SIZE_MAX otherwise. Handlers check it before deep work: overflowing such a stack would
 * write into the program's heap. Async-signal-safe. */
#include <stddef.h>
size_t cs_sampler_stack_room(void);
#define CS_HANDLER_ROOM (64 * 1024)

/* How many sampling signals this thread has handled; the sleep wrappers use it to tell an
 * interruption by crashscope from one by the program's own signals. Async-signal-safe. */
unsigned cs_sampler_interrupts(void);

#endif
