/*
 * sleep.c: makes crashscope's own sampling signal invisible to sleeping threads.
 *
 * nanosleep and clock_nanosleep return EINTR when any handler runs, SA_RESTART or not, so a
 * wall sample landing in a sleep would end it early (a C program's sleep(10) returning
 * after a few milliseconds). These wrappers resume the sleep for the time left when the
 * only handler that ran during it was crashscope's, and return EINTR exactly as before
 * when any handler of the program ran (counted by signals.c's trampoline). Must never sleep
 * longer than asked, and never swallow an interruption the program's handler caused.
 */
#include "sampler.h"
#include "shim.h"
#include "signals.h"

#include <dlfcn.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

static nanosleep_fn real_nanosleep;
static clock_nanosleep_fn real_clock_nanosleep;

static void resolve(void)
{
    if (!real_nanosleep)
        real_nanosleep = (nanosleep_fn)dlsym(RTLD_NEXT, "nanosleep");
    if (!real_clock_nanosleep)
        real_clock_nanosleep = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
}

CS_PUBLIC int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                              struct timespec *rem)
{
    resolve();
    if (!real_clock_nanosleep)
        return ENOSYS;
    struct timespec t = *req, left;
    for (;;) {
        unsigned before = cs_sampler_interrupts(), program = cs_signals_program_handled();
        int rc = real_clock_nanosleep(clk, flags, &t, &left);
        if (rc != EINTR || cs_sampler_interrupts() == before ||
            cs_signals_program_handled() != program) {
            if (rc == EINTR && rem && !(flags & TIMER_ABSTIME))
                *rem = left;
            return rc;
        }
        if (!(flags & TIMER_ABSTIME))
            t = left; /* only our signal ran: sleep what was left */
    }
}

CS_PUBLIC int nanosleep(const struct timespec *req, struct timespec *rem)
{
    resolve();
    if (!real_nanosleep) {
        errno = ENOSYS;
        return -1;
    }
    struct timespec t = *req, left;
    for (;;) {
        unsigned before = cs_sampler_interrupts(), program = cs_signals_program_handled();
        int rc = real_nanosleep(&t, &left);
        if (rc == 0 || errno != EINTR || cs_sampler_interrupts() == before ||
            cs_signals_program_handled() != program) {
            if (rc != 0 && errno == EINTR && rem)
                *rem = left;
            return rc;
        }
        t = left;
    }
}

CS_PUBLIC int usleep(useconds_t usec)
{
    struct timespec ts = {usec / 1000000u, (long)(usec % 1000000u) * 1000};
    return nanosleep(&ts, NULL);
}

CS_PUBLIC unsigned int sleep(unsigned int seconds)
{
    struct timespec ts = {seconds, 0};
    if (nanosleep(&ts, &ts) == 0)
        return 0;
    /* glibc rounds what is left to the nearest second */
    return (unsigned)ts.tv_sec + (ts.tv_nsec >= 500000000L);
}
