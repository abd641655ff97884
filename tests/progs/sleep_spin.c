/* sleep_spin.c: one thread ("sleeper") sleeps in sleeper_wait, another ("spinner") spins in
 * spinner_loop, for argv[1] seconds (default 3). Prints how long each sleep(1) really took,
 * so a test can check that sampling never cuts a sleep short. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int seconds = 3;
static volatile int stop;
static volatile double sink;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) void sleeper_wait(void)
{
    for (int i = 0; i < seconds; i++) {
        double t0 = now();
        unsigned left = sleep(1);
        printf("sleep %.3f left %u\n", now() - t0, left);
    }
}

static void *sleeper(void *a)
{
    (void)a;
    pthread_setname_np(pthread_self(), "sleeper");
    sleeper_wait();
    return NULL;
}

__attribute__((noinline)) void spinner_loop(void)
{
    double x = 0;
    while (!stop)
        for (int i = 0; i < 100000; i++)
            x += i;
    sink = x;
}

static void *spinner(void *a)
{
    (void)a;
    pthread_setname_np(pthread_self(), "spinner");
    spinner_loop();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atoi(argv[1]);
    pthread_t a, b;
    pthread_create(&a, NULL, sleeper, NULL);
    pthread_create(&b, NULL, spinner, NULL);
    pthread_join(a, NULL);
    stop = 1;
    pthread_join(b, NULL);
    return 0;
}
