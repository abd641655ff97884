/*
 * ingest.h: storing crash records in the database (the crash helper's job).
 */
#ifndef CS_INGEST_H
#define CS_INGEST_H

#include <time.h>

/* Ingests the record file RECORD into the database DB_PATH and removes the file. Returns the
 * crash id (> 0), 0 if it was already ingested, -1 on error (the file is kept). */
long long cs_ingest_record(const char *db_path, const char *record, int verbose);

/* Ingests every record left in DB_PATH's crash directory (a helper that did not run, or did
 * not finish). Quiet unless something could not be ingested. Returns how many were. */
int cs_ingest_pending(const char *db_path);

/* Crash records in DB_PATH's record directory modified at or after SINCE (still being written,
 * or stored by their helper: names ending in .crash or holding .crash.ingesting-). */
int cs_records_in_flight(const char *db_path, time_t since);

#endif
