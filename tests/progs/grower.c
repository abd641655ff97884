/* grower.c: two ways a process dies of memory or threads, for the timeline and thread profile.
 *   grower rss MIB_PER_S SECONDS  allocates and touches MIB_PER_S MiB a second (in 8 steps)
 *                                 from grow_cache for SECONDS s, then dereferences NULL
 *   grower threads N SECONDS      starts N threads named worker-NNN that wait; after SECONDS s
 *                                 prints its VmRSS in KiB ("rss_kb N") and exits 0
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static char *volatile *cache;

__attribute__((noinline)) static void grow_cache(size_t i, size_t bytes)
{
    char *p = malloc(bytes);
    if (p)
        memset(p, (int)i, bytes); /* resident, not only reserved */
    cache[i] = p;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int release;

__attribute__((noinline)) static void *wait_for_work(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!release)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "rss")) {
        long mib = atol(argv[2]), secs = atol(argv[3]);
        cache = calloc((size_t)(secs * 8 + 1), sizeof *cache);
        for (long i = 0; i < secs * 8; i++) {
            grow_cache((size_t)i, (size_t)mib * 1024 * 1024 / 8);
            sleep_ms(125);
        }
        fprintf(stderr, "grower: %ld MiB touched, now crashing\n", mib * secs);
        volatile int *null = NULL;
        return *null;
    }
    if (argc == 4 && !strcmp(argv[1], "threads")) {
        int n = atoi(argv[2]);
        long secs = atol(argv[3]);
        pthread_t *t = calloc((size_t)n, sizeof *t);
        for (int i = 0; i < n; i++) {
            if (pthread_create(&t[i], NULL, wait_for_work, NULL) != 0)
                return 2;
            char name[16];
            snprintf(name, sizeof name, "worker-%03d", i % 1000);
            pthread_setname_np(t[i], name);
        }
        sleep_ms(secs * 1000);
        printf("rss_kb %ld\n", rss_kb());
        fflush(stdout);
        pthread_mutex_lock(&mu);
        release = 1;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        return 0;
    }
    fprintf(stderr, "usage: grower rss MIB_PER_S SECONDS | grower threads N SECONDS\n");
    return 2;
}
