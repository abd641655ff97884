/* sleep_signal.c: a thread sleeps 5 s with sleep(); after 1 s the main thread interrupts it
 * with SIGUSR1, which the program handles. Prints "left N handled M": sleep() must come back
 * early (N >= 3) with the handler run once, recorder or not. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static unsigned left;

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void *sleeper(void *a)
{
    (void)a;
    left = sleep(5);
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    struct timespec s, n;
    clock_gettime(CLOCK_MONOTONIC, &s);
    volatile double x = 0;
    do { /* keep running so that the wall sampler keeps visiting */
        for (int i = 0; i < 10000; i++)
            x += i;
        clock_gettime(CLOCK_MONOTONIC, &n);
    } while ((n.tv_sec - s.tv_sec) + (n.tv_nsec - s.tv_nsec) / 1e9 < 1.0);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    printf("left %u handled %d\n", left, (int)handled);
    return 0;
}
