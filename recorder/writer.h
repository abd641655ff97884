/*
 * writer.h: the recorder's background thread that turns samples into the window on disk.
 *
 * It drains the sample ring ten times a second, aggregates identical stacks, and once a
 * second symbolizes what is new and writes it in one transaction. Every failure (database
 * locked, disk full, corrupt file) is reported once on stderr and the program runs on.
 */
#ifndef CS_WRITER_H
#define CS_WRITER_H

#include "config.h"

int cs_writer_start(const cs_config *c, const char *app_name);
/* Drains and writes everything still in memory, marks the process ended with REASON
 * ("exit", "exec") and stops the thread; gives up after TIMEOUT_MS. */
void cs_writer_stop(const char *reason, int timeout_ms);
/* After an exec that failed: the process lives on. */
void cs_writer_restart(void);

void cs_writer_fork_prepare(void);
void cs_writer_fork_parent(void);
void cs_writer_fork_child(void);

#endif
