/*
 * signames.h: names of signals and of their si_code values, as people and scripts read
 * them ("SIGSEGV", "SEGV_MAPERR").
 */
#ifndef CS_SIGNAMES_H
#define CS_SIGNAMES_H

const char *cs_signal_name(int sig);
/* The name of CODE for SIG ("SEGV_MAPERR", "SI_USER", ...), never NULL. */
const char *cs_code_name(int sig, int code);
/* A few words on what CODE means for SIG ("address not mapped to object"). */
const char *cs_code_text(int sig, int code);

#endif
