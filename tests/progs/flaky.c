/* flaky.c: the demo's "production service": a few worker threads handle requests (CPU in
 * checksum_payload, waiting in wait_for_request), a background thread flushes a cache every
 * 200 ms, and after argv[1] seconds (default 4) a request with a missing customer record
 * makes apply_discount dereference NULL, the way real services die. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct customer {
    const char *name;
    double discount;
};

static volatile unsigned long sink;
static double crash_after = 4;
static struct timespec started;

static double elapsed(void)
{
    struct timespec n;
    clock_gettime(CLOCK_MONOTONIC, &n);
    return (n.tv_sec - started.tv_sec) + (n.tv_nsec - started.tv_nsec) / 1e9;
}

__attribute__((noinline)) unsigned long checksum_payload(const unsigned char *p, size_t n)
{
    unsigned long h = 5381;
    for (int round = 0; round < 200; round++)
        for (size_t i = 0; i < n; i++)
            h = h * 33 + p[i];
    return h;
}

__attribute__((noinline)) double apply_discount(const struct customer *c, double amount)
{
    return amount * (1.0 - c->discount); /* c is NULL for the unlucky request */
}

__attribute__((noinline)) void handle_request(int id)
{
    unsigned char payload[4096];
    memset(payload, id & 0xff, sizeof payload);
    sink += checksum_payload(payload, sizeof payload);
    struct customer vip = {"vip", 0.1};
    const struct customer *c = elapsed() > crash_after ? NULL : &vip;
    sink += (unsigned long)apply_discount(c, 100.0);
}

__attribute__((noinline)) void wait_for_request(void)
{
    usleep(2000);
}

static void *worker(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "worker-%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    for (int id = 0;; id++) {
        wait_for_request();
        handle_request(id);
    }
    return NULL;
}

__attribute__((noinline)) void flush_cache(void)
{
    usleep(200000);
}

static void *flusher(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "cache-flusher");
    for (;;)
        flush_cache();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        crash_after = atof(argv[1]);
    clock_gettime(CLOCK_MONOTONIC, &started);
    printf("flaky: serving requests with 3 workers; it will crash in %.0f s\n", crash_after);
    fflush(stdout);
    pthread_t t;
    pthread_create(&t, NULL, flusher, NULL);
    for (long i = 1; i <= 3; i++)
        pthread_create(&t, NULL, worker, (void *)i);
    pthread_join(t, NULL);
    return 0;
}
