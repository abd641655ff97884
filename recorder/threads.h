/*
 * threads.h: the registry of the program's threads that crashscope samples.
 *
 * Threads enter through the pthread_create interposer (or at start, the main thread) and
 * leave when their start routine returns or they call pthread_exit. Slots live in a static
 * array read without locks by the wall ticker and written by the owning thread; nothing
 * here allocates after start-up.
 */
#ifndef CS_THREADS_H
#define CS_THREADS_H

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CS_MAX_THREADS 4096

enum { CS_SLOT_FREE = 0, CS_SLOT_BUSY = 1, CS_SLOT_LIVE = 2 };

typedef struct cs_thread {
    _Atomic int state;
    _Atomic pid_t tid;
    timer_t cpu_timer;
    int has_timer;
    /* written by the sampling handler of this thread, read by the wall ticker: the thread's
     * CPU time just after its last wall sample */
    _Atomic uint64_t cpu_ns_after_sample;
    _Atomic uint32_t wall_sent, wall_done;
    _Atomic uint32_t wall_weight; /* wall ticks the requested wall sample stands for */
    _Atomic int have_wall_stack;
    _Atomic int have_cpu_stack;
    uint64_t cpu_ns_at_tick; /* the wall ticker's own bookkeeping */
    char name[16];
    /* CLOCK_REALTIME of the sampling handler's last look at the OS name: a system call costs
     * ~1 us on a VM, so it looks once a second (pthread_setname_np updates NAME at once) */
    uint64_t name_ns;
    pthread_t pthread;
    void *altstack; /* crashscope's alternate signal stack for this thread, if it gave one */
    size_t altstack_size;
    stack_t program_ss; /* what the program asked sigaltstack() for, while ours stays */
    /* Set while this thread, faulted itself, waits in the crash handler for another thread's
     * capture: the context of its own fault, which its stack is reported from. */
    _Atomic(void *) fault_context;
    _Atomic int fault_signal;
} cs_thread;

/* The calling thread's slot, or NULL if it is not registered. Async-signal-safe. */
cs_thread *cs_thread_self(void);

/* Registers the calling thread and arms its CPU timer. Returns its slot or NULL. */
cs_thread *cs_thread_register(void);
/* Disarms and frees the calling thread's slot. */
void cs_thread_unregister(void);

/* The index of slot T in the table. */
int cs_thread_index(const cs_thread *t);

/* Slot I of the table (for the wall ticker's scan); check state before use. */
cs_thread *cs_thread_at(int i);
int cs_thread_high_water(void);

/* After fork, in the child: every slot but the caller's is gone; re-arm the caller. */
void cs_threads_after_fork_child(void);
/* Before exec: disarm every CPU timer (POSIX timers do not survive exec, but a pending
 * signal would, and would kill the new image). After a failed exec: re-arm them. */
void cs_threads_disarm_all(void);
void cs_threads_rearm_all(void);

/* Threads registered and unregistered since the start (for the timeline). */
void cs_threads_counts(uint64_t *created, uint64_t *exited);

/* Resolves the real pthread_create; called once from the constructor. */
void cs_threads_init(void);

/* The kernel's id of the calling thread (no glibc cache involved). Async-signal-safe. */
pid_t cs_gettid(void);

/* Starts one of crashscope's own threads: never registered or sampled, every signal
 * blocked so the program's signals go to the program's threads. */
#include <pthread.h>
int cs_spawn_internal(pthread_t *t, void *(*fn)(void *), void *arg);
#endif
