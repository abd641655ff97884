/*
 * signals.h: crashscope's place in the program's signal dispositions.
 *
 * For the signals crashscope handles (its sampling signal, the fatal signals), the kernel
 * keeps crashscope's handler installed for the whole life of the process, and the
 * program's own sigaction/signal calls are recorded as "the program's action" instead:
 * the program sees exactly what it set, and crashscope runs that action after its own work.
 * This is what keeps the recorder first even when Python's faulthandler or gunicorn install
 * their handlers after start. Handlers the program installs for other signals run through a
 * trampoline that only counts them, so the sleep wrappers can tell the program's signals
 * from crashscope's.
 */
#ifndef CS_SIGNALS_H
#define CS_SIGNALS_H

#include <signal.h>

typedef void (*cs_sig_handler)(int, siginfo_t *, void *);

/* Resolves the real sigaction. */
void cs_signals_init(void);

/* Installs HANDLER for SIG (with SA_SIGINFO|SA_ONSTACK|FLAGS) and from then on records the
 * program's calls for SIG. The disposition found in place becomes the program's action.
 * Returns 0 or -1. */
int cs_signals_claim(int sig, cs_sig_handler handler, int flags);

/* Whether SIG's disposition in the kernel is the default (used to pick a free signal). */
int cs_signals_is_default(int sig);

/* The program's action for SIG (what it set, or what was there before crashscope). */
void cs_signals_program_action(int sig, struct sigaction *out);

/* Runs the program's action for SIG as the kernel would have, from inside crashscope's
 * handler: calls its handler (with its mask and flags honoured), or, for SIG_DFL, restores
 * the default disposition and lets the signal take effect (a fault re-executes and hits the
 * default action; a sent signal is re-raised with its siginfo). Async-signal-safe. */
void cs_signals_chain(int sig, siginfo_t *info, void *uc);

/* How many times, on this thread, a handler of the program ran (through crashscope's
 * trampoline or chaining). Async-signal-safe. */
unsigned cs_signals_program_handled(void);

/* Before exec: puts the program's actions back in the kernel, so the new image inherits
 * what the program set (an ignored signal stays ignored). After a failed exec: re-claims. */
void cs_signals_release_all(void);
void cs_signals_reclaim_all(void);

#endif
