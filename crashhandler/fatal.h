/*
 * fatal.h: crashscope's handler for the fatal signals.
 *
 * Installed at start for SIGSEGV and SIGBUS. Today it does two things: it rescues the
 * sampler when reading a torn stack faults (the sample is dropped, the program goes on), and
 * otherwise passes the signal to the program's own action, or the default one, so the exit
 * status and the core dump are what they would have been.
 */
#ifndef CS_FATAL_H
#define CS_FATAL_H

int cs_fatal_install(void);

#endif
