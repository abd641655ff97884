/*
 * signals.c: interposes sigaction(), signal() and their aliases for the signals crashscope
 * handles, and chains to the program's action.
 *
 * Invariants: a claimed signal always has crashscope's handler in the kernel (between
 * cs_signals_claim and cs_signals_release_all); the program's view through sigaction() is
 * exactly what it would be without crashscope; chaining is async-signal-safe (no locks, no
 * allocation) and never swallows a fatal signal. Unclaimed signals pass straight through.
 */
#include "signals.h"

#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction;
static struct sigaction program_act[_NSIG];
static struct sigaction our_act[_NSIG];
static _Atomic int claimed[_NSIG];
/* Signals the program handles itself: the kernel calls `trampoline`, which counts the call
 * (per thread) and runs the program's handler. The count tells the sleep wrappers that an
 * interruption was the program's own, so its EINTR must reach the program. */
static _Atomic int wrapped[_NSIG];
static __thread unsigned program_handled __attribute__((tls_model("initial-exec")));

unsigned cs_signals_program_handled(void)
{
    return program_handled;
}

static int is_handler(const struct sigaction *a)
{
    return a->sa_flags & SA_SIGINFO ? a->sa_sigaction != NULL
                                    : (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN);
}

static void trampoline(int sig, siginfo_t *si, void *uc)
{
    program_handled++;
    struct sigaction act = program_act[sig];
    if (act.sa_flags & SA_RESETHAND) {
        /* the kernel has already reset the disposition, as it does for the program */
        memset(&program_act[sig], 0, sizeof program_act[sig]);
        program_act[sig].sa_handler = SIG_DFL;
        atomic_store(&wrapped[sig], 0);
    }
    if (act.sa_flags & SA_SIGINFO) {
        if (act.sa_sigaction)
            act.sa_sigaction(sig, si, uc);
    } else if (act.sa_handler != SIG_DFL && act.sa_handler != SIG_IGN) {
        act.sa_handler(sig);
    }
}

void cs_signals_init(void)
{
    if (!real_sigaction)
        real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
}

static int real(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!real_sigaction)
        cs_signals_init();
    if (!real_sigaction) {
        errno = ENOSYS;
        return -1;
    }
    return real_sigaction(sig, act, old);
}

int cs_signals_is_default(int sig)
{
    struct sigaction old;
    return real(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
}

int cs_signals_claim(int sig, cs_sig_handler handler, int flags)
{
    if (sig <= 0 || sig >= _NSIG)
        return -1;
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = handler;
    act.sa_flags = SA_SIGINFO | SA_ONSTACK | flags;
    sigemptyset(&act.sa_mask);
    if (real(sig, &act, &program_act[sig]) != 0)
        return -1;
    our_act[sig] = act;
    atomic_store(&claimed[sig], 1);
    return 0;
}

void cs_signals_program_action(int sig, struct sigaction *out)
{
    *out = program_act[sig];
}

void cs_signals_release_all(void)
{
    for (int s = 1; s < _NSIG; s++)
        if (atomic_load(&claimed[s]))
            real(s, &program_act[s], NULL);
}

void cs_signals_reclaim_all(void)
{
    for (int s = 1; s < _NSIG; s++)
        if (atomic_load(&claimed[s]))
            real(s, &our_act[s], NULL);
}

static int is_fault(int sig, const siginfo_t *info)
{
    /* si_code > 0 means the kernel raised it for an instruction; returning re-executes it */
    return info && info->si_code > 0 &&
           (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP);
}

void cs_signals_chain(int sig, siginfo_t *info, void *uc)
{
    struct sigaction act = program_act[sig];
    if (is_handler(&act)) {
        program_handled++;
        sigset_t old;
        if (act.sa_flags & SA_RESETHAND) {
            memset(&program_act[sig], 0, sizeof program_act[sig]);
            program_act[sig].sa_handler = SIG_DFL;
        }
        sigset_t mask = act.sa_mask;
        if (!(act.sa_flags & SA_NODEFER))
            sigaddset(&mask, sig); /* as the kernel would while the program's handler runs */
        pthread_sigmask(SIG_BLOCK, &mask, &old);
        if (act.sa_flags & SA_SIGINFO)
            act.sa_sigaction(sig, info, uc);
        else
            act.sa_handler(sig);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return;
    }
    if (act.sa_handler == SIG_IGN && !is_fault(sig, info))
        return;
    /* Default action (or an ignored fault, which the kernel turns into the default): put
     * the default back so the signal has exactly the effect it would have had. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    real(sig, &dfl, NULL);
    if (is_fault(sig, info))
        return; /* the instruction runs again and the kernel applies the default */
    /* A sent signal: send it again, to this thread, with the same siginfo; it is delivered
     * as soon as this handler returns and the signal is unblocked. */
    siginfo_t si = *info;
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), sig, &si) != 0)
        syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

/* --- what the program calls ---------------------------------------------------------- */

CS_PUBLIC int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig <= 0 || sig >= _NSIG || !cs_shim_active())
        return real(sig, act, old);
    if (atomic_load(&claimed[sig])) {
        struct sigaction prev = program_act[sig];
        if (act)
            program_act[sig] = *act;
        if (old)
            *old = prev;
        return 0;
    }
    int was_wrapped = atomic_load(&wrapped[sig]);
    struct sigaction prev, kernel_old;
    if (!act) {
        if (!was_wrapped)
            return real(sig, NULL, old);
        if (old)
            *old = program_act[sig];
        return 0;
    }
    int rc;
    if (is_handler(act)) {
        struct sigaction k = *act;
        k.sa_sigaction = trampoline;
        k.sa_flags |= SA_SIGINFO;
        rc = real(sig, &k, &kernel_old);
        if (rc == 0) {
            prev = was_wrapped ? program_act[sig] : kernel_old;
            program_act[sig] = *act;
            atomic_store(&wrapped[sig], 1);
        }
    } else {
        rc = real(sig, act, &kernel_old);
        if (rc == 0) {
            prev = was_wrapped ? program_act[sig] : kernel_old;
            atomic_store(&wrapped[sig], 0);
        }
    }
    if (rc == 0 && old)
        *old = prev;
    return rc;
}

CS_PUBLIC int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    return sigaction(sig, act, old);
}

static sighandler_t set_simple(int sig, sighandler_t h, int flags)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = h;
    act.sa_flags = flags;
    sigemptyset(&act.sa_mask);
    if (!(flags & SA_NODEFER))
        sigaddset(&act.sa_mask, sig);
    if (sig <= 0 || sig >= _NSIG || sigaction(sig, &act, &old) != 0) {
        errno = EINVAL;
        return SIG_ERR;
    }
    return old.sa_handler;
}

/* glibc's signal() has BSD semantics: the handler stays, interrupted calls restart. */
CS_PUBLIC sighandler_t signal(int sig, sighandler_t h)
{
    return set_simple(sig, h, SA_RESTART);
}

CS_PUBLIC sighandler_t bsd_signal(int sig, sighandler_t h)
{
    return set_simple(sig, h, SA_RESTART);
}

CS_PUBLIC sighandler_t sysv_signal(int sig, sighandler_t h)
{
    return set_simple(sig, h, SA_RESETHAND | SA_NODEFER);
}
