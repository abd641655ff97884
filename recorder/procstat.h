/*
 * procstat.h: the process's own figures for the timeline (procstat.c).
 */
#ifndef CS_PROCSTAT_H
#define CS_PROCSTAT_H

#include "../storage/storage.h"

/* Fills R (all but ts and heap_live_bytes) from /proc/self; unknown fields are -1. */
void cs_procstat_read(cs_timeline_row *r);

#endif
