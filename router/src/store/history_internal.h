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

/* ---- the per-minute rollup (history_rollup.c) ---- */

#define HIST_MINUTE_MS 60000
/* Latency histogram buckets: 0 is [0, 1 ms), 1..62 are log-spaced up to
 * 10 min (each edge 1.24x the one before), 63 is [10 min, oo). Stored as a
 * BLOB of HIST_LAT_BUCKETS little-endian int64 counts. */
#define HIST_LAT_BUCKETS 64
/* Distinct minutes a write gathers before it upserts them (a batch that
 * spans more upserts more often; a recorder batch spans one or two). */
#define HIST_ACC_MAX 64

/* What one row contributes to its minute (the columns HIST_SAMPLE_COLS). */
typedef struct {
    int64_t ms; /* received_ms as stored */
    int status;
    int64_t prompt_tokens, completion_tokens, duration_us, ttft_us;
    bool stream;
} hist_sample_t;
#define HIST_SAMPLE_COLS "received_ms, status, prompt_tokens, completion_tokens, duration_us, ttft_us, stream"

/* One minute of the rollup, or the sum of several. */
typedef struct {
    int64_t minute; /* start, ms */
    int64_t count, errors, prompt_tokens, completion_tokens;
    int64_t duration_us; /* sum */
    int64_t gen_us;      /* sum of generation time of the rows with completion tokens (history.h) */
    int64_t max_us;      /* longest duration seen (a bound: never lowered by a removal) */
    int64_t lat[HIST_LAT_BUCKETS];
    bool removed;        /* a row was subtracted: the minute may have become empty */
} hist_minute_t;

void hist_sample_read(sqlite3_stmt *s, int col, hist_sample_t *out);
/* Adds (sign 1) or removes (sign -1) a row's contribution. */
void hist_minute_add(hist_minute_t *m, const hist_sample_t *x, int sign);
void hist_minute_merge(hist_minute_t *into, const hist_minute_t *m);
/* The agg of m: avg, tokens/s, p95 interpolated within its bucket. */
void hist_minute_agg(const hist_minute_t *m, rt_history_agg_t *out);

/* Writer side (wmu held). rollup_merge() on the writer connection. */
int hist_rollup_register(sqlite3 *db);
/* Builds the rollup of every stored row (migration 2, in its transaction). */
int hist_rollup_backfill(sqlite3 *db);
/* Adds x (sign 1) or removes it (-1) from the writer's pending minutes;
 * upserts them when HIST_ACC_MAX distinct minutes are pending. 0 or -1. */
int hist_acc_add(rt_history_t *h, const hist_sample_t *x, int sign);
/* Upserts the pending minutes (before COMMIT). 0 or -1. */
int hist_acc_flush(rt_history_t *h);
/* Removes the rows with seq in [lo, hi] from the rollup (before they are
 * deleted, in the same transaction). 0 or -1. */
int hist_rollup_remove_range(rt_history_t *h, int64_t lo_seq, int64_t hi_seq);

/* Reader side, inside a read transaction. The rows with received_ms in
 * [lo_ms, hi_ms] (hi_ms < 0: no upper bound), minute by minute, oldest
 * first, minutes without rows skipped: whole minutes from the rollup, the
 * partial minutes at either end summed from the rows. 0 or -1. */
int hist_range(sqlite3 *db, int64_t lo_ms, int64_t hi_ms, void (*cb)(const hist_minute_t *m, void *arg), void *arg);
/* The number of rows with received_ms in [lo_ms, hi_ms] (same shape). */
int hist_range_count(sqlite3 *db, int64_t lo_ms, int64_t hi_ms, int64_t *n);

enum {
    W_FIND_ID, /* seq and sample of an id (a duplicate replaces the older row) */
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
    sqlite3_stmt *upsert, *drop_empty; /* the rollup's writes */
    hist_minute_t acc[HIST_ACC_MAX];   /* minutes pending in the current write */
    int nacc;

    sqlite3 *rdb[HIST_POOL];   /* reads: checked out one caller at a time */
    bool rbusy[HIST_POOL];
    pthread_mutex_t pmu;
    pthread_cond_t pcond;
};

/* A read connection of the pool (waits while all are out). */
sqlite3 *hist_reader(rt_history_t *h);
void hist_reader_done(rt_history_t *h, sqlite3 *db);

#endif
