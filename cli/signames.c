/*
 * signames.c: signal and si_code names (Linux x86_64 values, from <signal.h>).
 */
#include "signames.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

const char *cs_signal_name(int sig)
{
    static char buf[16];
    const char *n = sigabbrev_np(sig);
    if (!n) {
        snprintf(buf, sizeof buf, "SIG%d", sig);
        return buf;
    }
    snprintf(buf, sizeof buf, "SIG%s", n);
    return buf;
}

typedef struct code {
    int sig, code;
    const char *name, *text;
} code;

static const code codes[] = {
    {SIGSEGV, SEGV_MAPERR, "SEGV_MAPERR", "address not mapped to object"},
    {SIGSEGV, SEGV_ACCERR, "SEGV_ACCERR", "invalid permissions for mapped object"},
    {SIGSEGV, 3, "SEGV_BNDERR", "failed address bound checks"},
    {SIGSEGV, 4, "SEGV_PKUERR", "access denied by memory protection keys"},
    {SIGBUS, BUS_ADRALN, "BUS_ADRALN", "invalid address alignment"},
    {SIGBUS, BUS_ADRERR, "BUS_ADRERR", "nonexistent physical address"},
    {SIGBUS, BUS_OBJERR, "BUS_OBJERR", "object-specific hardware error"},
    {SIGBUS, 4, "BUS_MCEERR_AR", "hardware memory error consumed"},
    {SIGBUS, 5, "BUS_MCEERR_AO", "hardware memory error detected"},
    {SIGILL, ILL_ILLOPC, "ILL_ILLOPC", "illegal opcode"},
    {SIGILL, ILL_ILLOPN, "ILL_ILLOPN", "illegal operand"},
    {SIGILL, ILL_ILLADR, "ILL_ILLADR", "illegal addressing mode"},
    {SIGILL, ILL_ILLTRP, "ILL_ILLTRP", "illegal trap"},
    {SIGILL, ILL_PRVOPC, "ILL_PRVOPC", "privileged opcode"},
    {SIGILL, ILL_PRVREG, "ILL_PRVREG", "privileged register"},
    {SIGILL, ILL_COPROC, "ILL_COPROC", "coprocessor error"},
    {SIGILL, ILL_BADSTK, "ILL_BADSTK", "internal stack error"},
    {SIGFPE, FPE_INTDIV, "FPE_INTDIV", "integer divide by zero"},
    {SIGFPE, FPE_INTOVF, "FPE_INTOVF", "integer overflow"},
    {SIGFPE, FPE_FLTDIV, "FPE_FLTDIV", "floating-point divide by zero"},
    {SIGFPE, FPE_FLTOVF, "FPE_FLTOVF", "floating-point overflow"},
    {SIGFPE, FPE_FLTUND, "FPE_FLTUND", "floating-point underflow"},
    {SIGFPE, FPE_FLTRES, "FPE_FLTRES", "floating-point inexact result"},
    {SIGFPE, FPE_FLTINV, "FPE_FLTINV", "floating-point invalid operation"},
    {SIGFPE, FPE_FLTSUB, "FPE_FLTSUB", "subscript out of range"},
    {SIGTRAP, TRAP_BRKPT, "TRAP_BRKPT", "process breakpoint"},
    {SIGTRAP, TRAP_TRACE, "TRAP_TRACE", "process trace trap"},
    {SIGSYS, 1, "SYS_SECCOMP", "system call blocked by seccomp"},
};

static const code generic[] = {
    {0, SI_USER, "SI_USER", "sent by kill()"},
    {0, SI_KERNEL, "SI_KERNEL", "sent by the kernel"},
    {0, SI_QUEUE, "SI_QUEUE", "sent by sigqueue()"},
    {0, SI_TIMER, "SI_TIMER", "POSIX timer expired"},
    {0, SI_TKILL, "SI_TKILL", "sent by tkill() (raise, abort)"},
    {0, SI_ASYNCIO, "SI_ASYNCIO", "AIO completed"},
};

static const code *find(int sig, int c)
{
    if (c > 0 && c != SI_KERNEL)
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
            if (codes[i].sig == sig && codes[i].code == c)
                return &codes[i];
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        if (generic[i].code == c)
            return &generic[i];
    return NULL;
}

const char *cs_code_name(int sig, int c)
{
    static char buf[24];
    const code *k = find(sig, c);
    if (k)
        return k->name;
    snprintf(buf, sizeof buf, "%d", c);
    return buf;
}

const char *cs_code_text(int sig, int c)
{
    const code *k = find(sig, c);
    return k ? k->text : "unknown code";
}
