/*
 * crash.h: crashscope's handler for the fatal signals.
 *
 * On SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP and SIGSYS it captures the faulting
 * thread (signal, code, address, registers, stack), every other thread's stack, the module
 * list and the samples still in memory into a crash record, starts the helper that stores
 * it, then runs the program's own handler and lets the signal take its default effect, so
 * the exit status and the core dump are exactly what they would have been.
 */
#ifndef CS_CRASH_H
#define CS_CRASH_H

/* Installs the handlers; DB_PATH is where the records go (NULL: only chaining). */
int cs_crash_install(const char *db_path);
/* In the child of a fork: a new process may crash on its own. */
void cs_crash_after_fork_child(void);

#endif
