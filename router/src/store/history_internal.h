/* history_internal: what history.c (open, migrations, writes, pruning) and
 * history_query.c (list, get, export, aggregates) share. Private to them. */
#ifndef RT_HISTORY_INTERNAL_H
#define RT_HISTORY_INTERNAL_H

#include "store/history.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

/* Read connections: enough for the dashboard's concurrent queries and one
 * long export; a caller beyond them waits for one to come back. */
#define HIST_POOL 4
/* requests.seq = received_ms << HIST_SEQ_BITS | n: the rowid order is the
 * (received_ms, insertion) order, so the table itself is the time index, a
 * time range is a rowid range and FTS rowids come out newest first. */
#define HIST_SEQ_BITS 16
/* Without FTS, q scans the bodies of at most this many rows (the newest
 * that pass the other filters). */
#define HIST_Q_WINDOW 50000

enum {
    W_FIND_ID, /* seq of an id (a duplicate replaces the older row) */
    W_LAST_SEQ, /* the highest seq used within one millisecond */
    W_DEL_FTS_ONE,
    W_DEL_BODY_ONE,
    W_DEL_ROW_ONE,
    W_INS_ROW,
    W_INS_BODY,
    W_INS_FTS,
    W_COUNT
};

struct rt_history {
    sqlite3 *wdb;            /* inserts, pruning, migrations; every use holds wmu */
    pthread_mutex_t wmu;
    atomic_int inserts_waiting; /* pruning steps aside for them */
    sqlite3_stmt *ws[W_COUNT]; /* the writer's statements, prepared once */
    uint64_t since_optimize;   /* rows written since the last PRAGMA optimize */
    bool fts;                  /* bodies_fts exists and is maintained */

    sqlite3 *rdb[HIST_POOL];   /* reads: checked out one caller at a time */
    bool rbusy[HIST_POOL];
    pthread_mutex_t pmu;
    pthread_cond_t pcond;
};

/* A read connection of the pool (waits while all are out). */
sqlite3 *hist_reader(rt_history_t *h);
void hist_reader_done(rt_history_t *h, sqlite3 *db);

#endif
