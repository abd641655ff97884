/*
 * fatal.c: the fatal-signal handler.
 *
 * Async-signal-safe only: no malloc, stdio, locks, SQLite or curl. It must never return to
 * a faulting instruction without the program's or the default action in place (that would
 * loop), and never turn a crash into anything else.
 */
#include "fatal.h"

#include "../recorder/signals.h"
#include "../recorder/unwind.h"

#include <errno.h>
#include <signal.h>

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    cs_unwind_recover_from_fault(sig); /* returns only if the fault was not the sampler's */
    cs_signals_chain(sig, si, uc);
    errno = saved_errno;
}

int cs_fatal_install(void)
{
    int rc = 0;
    rc |= cs_signals_claim(SIGSEGV, on_fatal, 0);
    rc |= cs_signals_claim(SIGBUS, on_fatal, 0);
    return rc;
}
