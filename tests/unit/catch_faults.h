/*
 * catch_faults.h: for unit tests that include recorder/guard.c without the recorder's
 * fatal-signal handler: installs one that does what that handler does first (a fault inside a
 * guarded read goes back to the reader; any other is a real crash, with the default action).
 */
#ifndef CS_TEST_CATCH_FAULTS_H
#define CS_TEST_CATCH_FAULTS_H

#include <signal.h>
#include <string.h>

/* What the recorder's fatal-signal handler does first: a fault inside a guarded read goes back
 * to the reader; any other is a real crash. */
static void on_fault(int sig)
{
    cs_guard_recover(sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_faults(void)
{
    struct sigaction fa;
    memset(&fa, 0, sizeof fa);
    fa.sa_handler = on_fault;
    fa.sa_flags = SA_NODEFER;
    sigemptyset(&fa.sa_mask);
    sigaction(SIGSEGV, &fa, NULL);
    sigaction(SIGBUS, &fa, NULL);
}

#endif
