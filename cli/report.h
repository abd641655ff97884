/*
 * report.h: the crash report that `crashscope inspect` and `crashscope run` print.
 */
#ifndef CS_REPORT_H
#define CS_REPORT_H

#include "../storage/storage.h"

#include <stdio.h>

/* Prints crash ID (0: the newest) with the SECONDS before it, as text or one JSON object.
 * Returns 0, 1 when there is no such crash, -1 on a database error. */
int cs_report_print(cs_db *db, const char *db_path, int64_t id, int seconds, int json, FILE *f);

/* "2026-11-22 22:50:01.123" (UTC) for NS since the epoch. */
void cs_format_time(int64_t ns, char *out, size_t len, int iso);

/* The frame a person should look at first: the innermost one outside libc, the dynamic
 * loader and crashscope (frame 0 when all are). */
int cs_culprit_frame(const cs_frame_row *f, int n);

/* The culprit frame in one line ("store_record at crasher.c:48"); for a native one under
 * Python code, with the innermost Python frame above it (", called from Python crash at
 * app.py:14"). "" for an empty stack. */
void cs_crash_where(const cs_frame_row *f, int n, char *out, size_t len);

#endif
