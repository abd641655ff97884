/*
 * db_internal.h: the connection object shared by the files of storage/ (never used outside
 * storage/).
 */
#ifndef CS_DB_INTERNAL_H
#define CS_DB_INTERNAL_H

#include "storage.h"

#include <sqlite3.h>

enum {
    ST_PROCESS_INSERT,
    ST_PROCESS_SEEN,
    ST_PROCESS_END,
    ST_MODULE_UPSERT,
    ST_FRAME_UPSERT,
    ST_FRAME_TOUCH,
    ST_PYFRAME_UPSERT,
    ST_STACK_UPSERT,
    ST_SAMPLE_INSERT,
    ST_TRIM_SAMPLES,
    ST_TIMELINE_ADD,
    ST_TRIM_TIMELINE,
    ST_SNAPSHOT_CLEAR,
    ST_COUNT
};

struct cs_db {
    sqlite3 *h;
    sqlite3_stmt *st[ST_COUNT];
    char err[256];
};

sqlite3_stmt *cs_db_stmt(cs_db *db, int which);
int cs_db_exec(cs_db *db, const char *sql);
void cs_db_set_error(cs_db *db, const char *what);
/* Runs a cached statement ST (from cs_db_stmt) once and resets it: 0, or -1 with the error
 * set as WHAT. */
int cs_db_run(cs_db *db, sqlite3_stmt *st, const char *what);

/* Frame id I of a stacks.frame_ids blob (little-endian int64s, innermost first; written by
 * cs_db_stack_id). */
static inline int64_t cs_stack_frame_id(const unsigned char *blob, int i)
{
    int64_t id = 0;
    for (int k = 0; k < 8; k++)
        id |= (int64_t)blob[i * 8 + k] << (8 * k);
    return id;
}

#endif
