/* crasher.c: dies in the way argv[1] names, in a named function, from a named thread:
 *   null       a worker thread "db-worker" dereferences NULL in store_record
 *   overflow   unbounded recursion in recurse_forever (stack overflow)
 *   abort      abort() from validate_invariant
 *   bus        touches a page of a file mapping past the file's end in read_mapped (SIGBUS)
 *   ill        an illegal instruction (ud2) in execute_opcode
 *   fpe        integer division by zero in compute_ratio
 *   doublefree a double free in release_buffer while three threads hammer malloc
 *   segv-user  sends itself SIGSEGV with kill() from send_self
 *   two        "db-worker" dereferences NULL in store_record, and "index-worker", which blocks
 *              signals, in store_index while that crash is being captured
 * Other threads are left running (one sleeping in idle_wait) so every-thread capture shows
 * them. Prints "ready" before crashing. The crashing functions keep their own frames
 * (no inlining, no sibling calls) so that a test can name them. */
#pragma GCC diagnostic ignored "-Winfinite-recursion"
#pragma GCC diagnostic ignored "-Wuse-after-free"
#define KEEP_FRAME __attribute__((noinline, optimize("no-optimize-sibling-calls")))
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile int sink;
static volatile int zero;

__attribute__((noinline)) void idle_wait(void)
{
    for (;;)
        pause();
}

static void *idler(void *a)
{
    (void)a;
    pthread_setname_np(pthread_self(), "idler");
    idle_wait();
    return NULL;
}

static int *volatile missing_slot; /* NULL, and the compiler cannot know it */

KEEP_FRAME void store_record(int *slot, int v)
{
    *slot = v;
}

static void *db_worker(void *a)
{
    (void)a;
    pthread_setname_np(pthread_self(), "db-worker");
    store_record(missing_slot, 42);
    return NULL;
}

KEEP_FRAME void store_index(int *slot, int v)
{
    *slot = v;
}

static volatile int go, first_faults;

/* Blocks every signal a fault does not raise (as threads that leave signals to main do), so
 * that crashscope's request for its stack waits; faults 20 ms after db-worker did, while that
 * fault is being captured. */
static void *index_worker(void *a)
{
    (void)a;
    pthread_setname_np(pthread_self(), "index-worker");
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!first_faults)
        ;
    usleep(20000);
    store_index(missing_slot, 7);
    return NULL;
}

static void *db_worker_first(void *a)
{
    (void)a;
    pthread_setname_np(pthread_self(), "db-worker");
    while (!go)
        ;
    first_faults = 1;
    store_record(missing_slot, 42);
    return NULL;
}

KEEP_FRAME int recurse_forever(int depth)
{
    volatile char pad[256];
    pad[0] = (char)depth;
    return recurse_forever(depth + 1) + pad[0];
}

KEEP_FRAME void validate_invariant(int ok)
{
    if (!ok)
        abort();
    sink++;
}

__attribute__((noinline)) int read_mapped(void)
{
    char path[] = "/tmp/crasher-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    if (ftruncate(fd, 4096) != 0)
        return -1;
    volatile char *p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    return p[4096]; /* the second page is past the end of the file */
}

__attribute__((noinline)) void execute_opcode(void)
{
    __asm__ volatile("ud2");
}

__attribute__((noinline)) int compute_ratio(int a, int b)
{
    return a / b;
}

static volatile int hammering = 1;
static void *hammer(void *a)
{
    (void)a;
    pthread_setname_np(pthread_self(), "allocator");
    while (hammering) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = malloc(16 + i * 8);
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    return NULL;
}

KEEP_FRAME void release_buffer(char *b)
{
    free(b);
    free(b);
    sink++;
}

KEEP_FRAME void send_self(void)
{
    kill(getpid(), SIGSEGV);
    sink++;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "null";
    pthread_t t;
    pthread_create(&t, NULL, idler, NULL);
    usleep(300000); /* let the recorder take some samples first */
    puts("ready");
    fflush(stdout);
    if (!strcmp(mode, "null")) {
        pthread_create(&t, NULL, db_worker, NULL);
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "two")) {
        pthread_t u;
        pthread_create(&t, NULL, db_worker_first, NULL);
        pthread_create(&u, NULL, index_worker, NULL);
        usleep(50000);
        go = 1;
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "overflow")) {
        sink = recurse_forever(0);
    } else if (!strcmp(mode, "abort")) {
        validate_invariant(0);
    } else if (!strcmp(mode, "bus")) {
        sink = read_mapped();
    } else if (!strcmp(mode, "ill")) {
        execute_opcode();
    } else if (!strcmp(mode, "fpe")) {
        sink = compute_ratio(1, zero);
    } else if (!strcmp(mode, "doublefree")) {
        for (int i = 0; i < 3; i++)
            pthread_create(&t, NULL, hammer, NULL);
        usleep(200000);
        char *b = malloc(64);
        release_buffer(b);
    } else if (!strcmp(mode, "segv-user")) {
        send_self();
        pause();
    }
    return 0;
}
