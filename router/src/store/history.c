/* history: the request history's SQLite file: open, migrations, the read
 * pool, inserts and pruning. The queries are in history_query.c.
 *
 * Shape (numbers from bench/router/history_bench.c are in history.h):
 * - requests: one row per request without the bodies, keyed by
 *   seq = received_ms << 16 | n, so the table is its own time index and a
 *   time range or a retention cut-off is a rowid range;
 * - bodies: the two bodies by seq, apart so that scans of the metadata
 *   (counts, aggregates) never page through kilobytes of text;
 * - bodies_fts: FTS5 over bodies (external content: the text is stored
 *   once), kept in the insert's transaction;
 * - one index per filter, (column, received_ms): each filter, alone or with
 *   a time range, reads newest first from its index with no sort;
 * - minutes: the per-minute rollup (history_rollup.c), upserted in the
 *   insert's transaction, so aggregates and time-only counts read one row
 *   per minute instead of one per request. */
#include "store/history_internal.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* PRAGMA optimize (ANALYZE where the statistics went stale, bounded by
 * analysis_limit) after this many rows, so that the planner keeps choosing
 * the most selective filter index as the table grows. */
#define OPTIMIZE_EVERY 100000
/* pages given back per PRAGMA incremental_vacuum step (16 MiB) */
#define VACUUM_STEP 4096
#define SEQ_SPAN ((int64_t)1 << HIST_SEQ_BITS)
#define MS_MAX (INT64_MAX >> HIST_SEQ_BITS)

/* Numbered migrations: migrations[i] brings the schema from version i to
 * i + 1 (PRAGMA user_version). Never edit a released one; append. */
static const char *const migrations[] = {
    /* 1: requests, bodies (the FTS table is created beside it, see migrate) */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES ('fts', 0);"
    "CREATE TABLE requests ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  received_ms INTEGER NOT NULL,"
    "  first_byte_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER NOT NULL,"
    "  endpoint TEXT, model TEXT, node_id TEXT, node_name TEXT,"
    "  attempts INTEGER NOT NULL,"
    "  client_kind TEXT, client_id TEXT, client_name TEXT, client_addr TEXT,"
    "  status INTEGER NOT NULL,"
    "  failed INTEGER NOT NULL," /* status >= 400: the error class has an index of its own */
    "  error_type TEXT, error_message TEXT,"
    "  duration_us INTEGER NOT NULL, ttft_us INTEGER NOT NULL,"
    "  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    "  total_tokens INTEGER NOT NULL,"
    "  stream INTEGER NOT NULL,"
    "  request_len INTEGER NOT NULL, request_truncated INTEGER NOT NULL,"
    "  response_len INTEGER NOT NULL, response_truncated INTEGER NOT NULL);"
    "CREATE TABLE bodies (seq INTEGER PRIMARY KEY, request_body BLOB, response_body BLOB);"
    "CREATE INDEX requests_model ON requests (model, received_ms);"
    "CREATE INDEX requests_node ON requests (node_id, received_ms);"
    "CREATE INDEX requests_client ON requests (client_id, received_ms);"
    "CREATE INDEX requests_status ON requests (status, received_ms);"
    "CREATE INDEX requests_failed ON requests (failed, received_ms);",
    /* 2: the per-minute rollup (history_rollup.c), built from the rows
     * already stored (see migrate) */
    "CREATE TABLE minutes ("
    "  minute INTEGER PRIMARY KEY," /* start, ms */
    "  count INTEGER NOT NULL, errors INTEGER NOT NULL,"
    "  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    "  duration_us INTEGER NOT NULL, gen_us INTEGER NOT NULL, max_us INTEGER NOT NULL,"
    "  latency BLOB NOT NULL);",
};

static const char *const fts_schema =
    "CREATE VIRTUAL TABLE bodies_fts USING fts5(request_body, response_body,"
    " content='bodies', content_rowid='seq');"
    "UPDATE meta SET value = 1 WHERE key = 'fts';";

int rt_history_latest_version(void) { return (int)CM_ARRAY_LEN(migrations); }

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        LOG_ERROR("history", "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* ---- open and migrate ---- */

/* The rollup is written with the rows, but rows written or deleted by
 * anything else (the sqlite3 shell, a script) leave it behind: when its
 * count disagrees with the table's, it is rebuilt. One count per open
 * (~0.15 s at 3.4M rows, from the smallest index). */
static int check_rollup(rt_history_t *h, char *err, size_t errlen)
{
    int64_t rows = query_int(h->wdb, "SELECT count(*) FROM requests");
    int64_t summed = query_int(h->wdb, "SELECT coalesce(sum(count), 0) FROM minutes");
    if (rows < 0 || summed < 0) {
        snprintf(err, errlen, "history: cannot read the rollup: %s", sqlite3_errmsg(h->wdb));
        return -1;
    }
    if (rows == summed)
        return 0;
    LOG_WARN("history", "the rollup counts %lld rows, the table holds %lld: rebuilding it", (long long)summed,
             (long long)rows);
    if (exec(h->wdb, "BEGIN IMMEDIATE") != 0)
        goto fail;
    if (exec(h->wdb, "DELETE FROM minutes") != 0 || hist_rollup_backfill(h->wdb) != 0 ||
        exec(h->wdb, "COMMIT") != 0) {
        sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "history: cannot rebuild the rollup: %s", sqlite3_errmsg(h->wdb));
    return -1;
}

static int migrate(rt_history_t *h, bool want_fts, char *err, size_t errlen)
{
    int v = (int)query_int(h->wdb, "PRAGMA user_version");
    int latest = rt_history_latest_version();
    if (v < 0 || v > latest) {
        snprintf(err, errlen, "history schema version %d is not one this binary knows (<= %d)", v, latest);
        return -1;
    }
    bool fresh = v == 0;
    for (; v < latest; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        char *msg = NULL;
        bool ok = exec(h->wdb, "BEGIN IMMEDIATE") == 0 &&
                  sqlite3_exec(h->wdb, migrations[v], NULL, NULL, &msg) == SQLITE_OK;
        /* the FTS table is decided once, when the file is made: a file
         * without it keeps searching by scan, one with it keeps it current */
        if (ok && v == 0 && fresh && want_fts)
            ok = sqlite3_exec(h->wdb, fts_schema, NULL, NULL, &msg) == SQLITE_OK;
        /* an existing file gets the rollup of the rows it already holds */
        if (ok && v == 1)
            ok = hist_rollup_backfill(h->wdb) == 0;
        ok = ok && exec(h->wdb, bump) == 0 && exec(h->wdb, "COMMIT") == 0;
        if (!ok) {
            snprintf(err, errlen, "history migration %d failed: %s", v + 1, msg ? msg : sqlite3_errmsg(h->wdb));
            sqlite3_free(msg);
            sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        LOG_INFO("history", "history database migrated to schema version %d", v + 1);
    }
    h->fts = query_int(h->wdb, "SELECT value FROM meta WHERE key = 'fts'") == 1;
    return check_rollup(h, err, errlen);
}

/* The parent directory and the file itself with owner-only modes: the
 * bodies are whatever the clients sent. */
static int prepare_file(const char *path, char *err, size_t errlen)
{
    return cm_create_private_file(path, err, errlen);
}

static int open_conn(const char *path, sqlite3 **db, char *err, size_t errlen)
{
    /* NOMUTEX: every connection is used by one thread at a time (wmu, or a
     * checkout from the pool) */
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open history database %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}

static int configure_writer(sqlite3 *db)
{
    /* page size and auto_vacuum only take effect before the first table: on
     * a fresh file this runs first; on an existing one it is a no-op. 8 KiB
     * pages: rows with bodies of ~1 KB each fit 3 to a page instead of 1
     * (the file halved in the bench) */
    if (exec(db, "PRAGMA page_size = 8192; PRAGMA auto_vacuum = INCREMENTAL") != 0)
        return -1;
    sqlite3_stmt *s = NULL;
    bool wal = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
               sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    sqlite3_finalize(s);
    if (!wal)
        return -1;
    /* WAL + NORMAL: a committed batch survives a process crash. The cache
     * (64 MiB) holds the hot ends of the indexes; checkpoints every 16 MiB
     * of WAL (fewer fsyncs than the default 4 MiB: +15% rows/s measured);
     * the WAL is truncated back to 64 MiB after checkpoints that outgrew it. */
    return exec(db, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 4000;"
                    " PRAGMA journal_size_limit = 67108864; PRAGMA analysis_limit = 1000");
}

static const char *const wsql[W_COUNT] = {
    [W_FIND_ID] = "SELECT seq, " HIST_SAMPLE_COLS " FROM requests WHERE id = ?1",
    [W_LAST_SEQ] = "SELECT seq FROM requests WHERE seq >= ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1",
    [W_DEL_FTS_ONE] = "INSERT INTO bodies_fts (bodies_fts, rowid, request_body, response_body)"
                      " SELECT 'delete', seq, request_body, response_body FROM bodies WHERE seq = ?1",
    [W_DEL_BODY_ONE] = "DELETE FROM bodies WHERE seq = ?1",
    [W_DEL_ROW_ONE] = "DELETE FROM requests WHERE seq = ?1",
    [W_INS_ROW] = "INSERT INTO requests (seq, id, received_ms, first_byte_ms, finished_ms, endpoint, model,"
                  " node_id, node_name, attempts, client_kind, client_id, client_name, client_addr, status,"
                  " failed, error_type, error_message, duration_us, ttft_us, prompt_tokens,"
                  " completion_tokens, total_tokens, stream, request_len, request_truncated,"
                  " response_len, response_truncated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
                  " ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
    [W_INS_BODY] = "INSERT INTO bodies (seq, request_body, response_body) VALUES (?1, ?2, ?3)",
    [W_INS_FTS] = "INSERT INTO bodies_fts (rowid, request_body, response_body) VALUES (?1, ?2, ?3)",
};

static int prepare_writer(rt_history_t *h, char *err, size_t errlen)
{
    for (int i = 0; i < W_COUNT; i++) {
        if (!h->fts && (i == W_DEL_FTS_ONE || i == W_INS_FTS))
            continue;
        if (sqlite3_prepare_v3(h->wdb, wsql[i], -1, SQLITE_PREPARE_PERSISTENT, &h->ws[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "history: cannot prepare a statement: %s", sqlite3_errmsg(h->wdb));
            return -1;
        }
    }
    return 0;
}

int rt_history_open_ex(const char *path, const rt_history_opts_t *o, rt_history_t **out, char *err,
                       size_t errlen)
{
    rt_history_t *h = cm_xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->wmu, NULL);
    pthread_mutex_init(&h->pmu, NULL);
    pthread_cond_init(&h->pcond, NULL);
    bool want_fts = o && o->fts && sqlite3_compileoption_used("ENABLE_FTS5");
    int rc = -1;
    if (prepare_file(path, err, errlen) != 0 || open_conn(path, &h->wdb, err, errlen) != 0)
        goto out;
    if (configure_writer(h->wdb) != 0 || hist_rollup_register(h->wdb) != 0) {
        snprintf(err, errlen, "cannot configure history database %s: %s", path, sqlite3_errmsg(h->wdb));
        goto out;
    }
    if (migrate(h, want_fts, err, errlen) != 0 || prepare_writer(h, err, errlen) != 0)
        goto out;
    /* fresh statistics for the planner (bounded by analysis_limit) */
    exec(h->wdb, "PRAGMA optimize");
    for (int i = 0; i < HIST_POOL; i++) {
        if (open_conn(path, &h->rdb[i], err, errlen) != 0)
            goto out;
        if (exec(h->rdb[i], "PRAGMA query_only = 1; PRAGMA cache_size = -8192") != 0) {
            snprintf(err, errlen, "cannot configure history database %s", path);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc != 0) {
        rt_history_close(h);
        h = NULL;
    }
    *out = h;
    return rc;
}

int rt_history_open(const char *path, rt_history_t **out, char *err, size_t errlen)
{
    return rt_history_open_ex(path, NULL, out, err, errlen);
}

void rt_history_close(rt_history_t *h)
{
    if (!h)
        return;
    for (int i = 0; i < W_COUNT; i++)
        sqlite3_finalize(h->ws[i]);
    sqlite3_finalize(h->upsert);
    sqlite3_finalize(h->drop_empty);
    for (int i = 0; i < HIST_POOL; i++)
        sqlite3_close_v2(h->rdb[i]);
    if (h->wdb) {
        /* statistics for the next open; closing the last connection
         * checkpoints the WAL into the file */
        sqlite3_exec(h->wdb, "PRAGMA optimize", NULL, NULL, NULL);
        sqlite3_close_v2(h->wdb);
    }
    pthread_mutex_destroy(&h->wmu);
    pthread_mutex_destroy(&h->pmu);
    pthread_cond_destroy(&h->pcond);
    free(h);
}

bool rt_history_has_fts(rt_history_t *h) { return h->fts; }

sqlite3 *hist_reader(rt_history_t *h)
{
    pthread_mutex_lock(&h->pmu);
    for (;;) {
        for (int i = 0; i < HIST_POOL; i++) {
            if (!h->rbusy[i]) {
                h->rbusy[i] = true;
                pthread_mutex_unlock(&h->pmu);
                return h->rdb[i];
            }
        }
        pthread_cond_wait(&h->pcond, &h->pmu);
    }
}

void hist_reader_done(rt_history_t *h, sqlite3 *db)
{
    pthread_mutex_lock(&h->pmu);
    for (int i = 0; i < HIST_POOL; i++)
        if (h->rdb[i] == db)
            h->rbusy[i] = false;
    pthread_cond_signal(&h->pcond);
    pthread_mutex_unlock(&h->pmu);
}

/* ---- inserts ---- */

static int step_reset(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

static void bind_text(sqlite3_stmt *s, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, idx);
}

/* Bodies are blobs: binary-safe, and bound the same way for the FTS insert
 * and (from the stored column) its delete, so both tokenize the same bytes. */
static void bind_body(sqlite3_stmt *s, int idx, const char *v, size_t n)
{
    if (v)
        sqlite3_bind_blob64(s, idx, v, n, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, idx);
}

/* Removes the row seq and its bodies (and their FTS entry). */
static int delete_one(rt_history_t *h, int64_t seq)
{
    if (h->fts) {
        sqlite3_bind_int64(h->ws[W_DEL_FTS_ONE], 1, seq);
        if (step_reset(h->ws[W_DEL_FTS_ONE]) != SQLITE_DONE)
            return -1;
    }
    sqlite3_bind_int64(h->ws[W_DEL_BODY_ONE], 1, seq);
    sqlite3_bind_int64(h->ws[W_DEL_ROW_ONE], 1, seq);
    if (step_reset(h->ws[W_DEL_BODY_ONE]) != SQLITE_DONE || step_reset(h->ws[W_DEL_ROW_ONE]) != SQLITE_DONE)
        return -1;
    return 0;
}

/* The next free seq within r's millisecond; -1 when all 65536 are taken. */
static int64_t next_seq(rt_history_t *h, int64_t ms)
{
    int64_t base = ms << HIST_SEQ_BITS;
    sqlite3_stmt *s = h->ws[W_LAST_SEQ];
    sqlite3_bind_int64(s, 1, base);
    sqlite3_bind_int64(s, 2, base + SEQ_SPAN);
    int64_t seq = base;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        seq = sqlite3_column_int64(s, 0) + 1;
    else if (rc != SQLITE_DONE)
        seq = -2;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return seq >= base + SEQ_SPAN ? -1 : seq;
}

static int insert_row(rt_history_t *h, const rt_history_row_t *r)
{
    sqlite3_stmt *s = h->ws[W_FIND_ID];
    bind_text(s, 1, r->id);
    int rc = sqlite3_step(s);
    int64_t old = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    hist_sample_t gone;
    if (old >= 0)
        hist_sample_read(s, 1, &gone);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    /* the replaced row leaves its minute of the rollup */
    if (old >= 0 && (delete_one(h, old) != 0 || hist_acc_add(h, &gone, -1) != 0))
        return -1;

    int64_t ms = r->received_ms < 0 ? 0 : r->received_ms > MS_MAX ? MS_MAX : r->received_ms;
    int64_t seq = next_seq(h, ms);
    if (seq == -1) {
        LOG_WARN("history", "more than 65536 requests received in one millisecond: one not recorded");
        return 0;
    }
    if (seq < 0)
        return -1;
    s = h->ws[W_INS_ROW];
    sqlite3_bind_int64(s, 1, seq);
    bind_text(s, 2, r->id);
    sqlite3_bind_int64(s, 3, ms);
    sqlite3_bind_int64(s, 4, r->first_byte_ms);
    sqlite3_bind_int64(s, 5, r->finished_ms);
    bind_text(s, 6, r->endpoint);
    bind_text(s, 7, r->model);
    bind_text(s, 8, r->node_id);
    bind_text(s, 9, r->node_name);
    sqlite3_bind_int(s, 10, r->attempts);
    bind_text(s, 11, r->client_kind);
    bind_text(s, 12, r->client_id);
    bind_text(s, 13, r->client_name);
    bind_text(s, 14, r->client_addr);
    sqlite3_bind_int(s, 15, r->status);
    sqlite3_bind_int(s, 16, r->status >= 400);
    bind_text(s, 17, r->error_type);
    bind_text(s, 18, r->error_message);
    sqlite3_bind_int64(s, 19, r->duration_us);
    sqlite3_bind_int64(s, 20, r->ttft_us);
    sqlite3_bind_int64(s, 21, r->prompt_tokens);
    sqlite3_bind_int64(s, 22, r->completion_tokens);
    sqlite3_bind_int64(s, 23, r->total_tokens);
    sqlite3_bind_int(s, 24, r->stream);
    sqlite3_bind_int64(s, 25, (int64_t)r->request_len);
    sqlite3_bind_int(s, 26, r->request_truncated);
    sqlite3_bind_int64(s, 27, (int64_t)r->response_len);
    sqlite3_bind_int(s, 28, r->response_truncated);
    if (step_reset(s) != SQLITE_DONE)
        return -1;
    hist_sample_t x = { .ms = ms, .status = r->status, .prompt_tokens = r->prompt_tokens,
                        .completion_tokens = r->completion_tokens, .duration_us = r->duration_us,
                        .ttft_us = r->ttft_us, .stream = r->stream };
    if (hist_acc_add(h, &x, 1) != 0)
        return -1;
    if (!r->request_body && !r->response_body)
        return 0;
    for (int i = W_INS_BODY; i <= W_INS_FTS; i++) {
        if (i == W_INS_FTS && !h->fts)
            break;
        s = h->ws[i];
        sqlite3_bind_int64(s, 1, seq);
        bind_body(s, 2, r->request_body, r->request_len);
        bind_body(s, 3, r->response_body, r->response_len);
        if (step_reset(s) != SQLITE_DONE)
            return -1;
    }
    return 0;
}

int rt_history_insert(rt_history_t *h, const rt_history_row_t *rows, size_t n)
{
    if (n == 0)
        return 0;
    atomic_fetch_add(&h->inserts_waiting, 1);
    pthread_mutex_lock(&h->wmu);
    atomic_fetch_sub(&h->inserts_waiting, 1);
    int rc = -1;
    h->nacc = 0;
    if (exec(h->wdb, "BEGIN IMMEDIATE") != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].id) /* the recorder always sets one; a row without is not kept */
            continue;
        if (insert_row(h, &rows[i]) != 0) {
            LOG_ERROR("history", "insert failed: %s", sqlite3_errmsg(h->wdb));
            sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
    }
    /* the batch's minutes, one upsert each, in the same transaction */
    if (hist_acc_flush(h) != 0) {
        sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    if (exec(h->wdb, "COMMIT") != 0) {
        sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    rc = 0;
    h->since_optimize += n;
    if (h->since_optimize >= OPTIMIZE_EVERY) {
        h->since_optimize = 0;
        exec(h->wdb, "PRAGMA optimize");
    }
out:
    pthread_mutex_unlock(&h->wmu);
    return rc;
}

/* ---- pruning ---- */

/* Deletes rows with seq in [lo, hi] (one transaction, under wmu). */
static int delete_range(rt_history_t *h, int64_t lo, int64_t hi)
{
    static const char *const sql[] = {
        ("INSERT INTO bodies_fts (bodies_fts, rowid, request_body, response_body)"
         " SELECT 'delete', seq, request_body, response_body FROM bodies WHERE seq BETWEEN ?1 AND ?2"),
        "DELETE FROM bodies WHERE seq BETWEEN ?1 AND ?2",
        "DELETE FROM requests WHERE seq BETWEEN ?1 AND ?2",
    };
    if (exec(h->wdb, "BEGIN IMMEDIATE") != 0)
        return -1;
    if (hist_rollup_remove_range(h, lo, hi) != 0) {
        sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    for (size_t i = h->fts ? 0 : 1; i < CM_ARRAY_LEN(sql); i++) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(h->wdb, sql[i], -1, &s, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(s, 1, lo);
            sqlite3_bind_int64(s, 2, hi);
            rc = sqlite3_step(s);
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
            LOG_ERROR("history", "prune failed: %s", sqlite3_errmsg(h->wdb));
            sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    if (exec(h->wdb, "COMMIT") != 0) {
        sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* Between two steps of a prune: a waiting insert goes first (a mutex is
 * not fair: without this the pruning thread takes it back at once). */
static void let_inserts_in(rt_history_t *h)
{
    for (int i = 0; i < 10000 && atomic_load(&h->inserts_waiting) > 0; i++)
        sched_yield();
}

/* The seq of the batch-th row below cut (the end of the next batch), or the
 * last one below it when fewer are left; -1 when none is left. */
static int64_t batch_end(rt_history_t *h, int64_t cut, int batch, int64_t *nrows)
{
    sqlite3_stmt *s = NULL;
    int64_t end = -1;
    *nrows = 0;
    if (sqlite3_prepare_v2(h->wdb, "SELECT seq FROM requests WHERE seq < ?1 ORDER BY seq LIMIT ?2", -1, &s,
                           NULL) != SQLITE_OK)
        return -2;
    sqlite3_bind_int64(s, 1, cut);
    sqlite3_bind_int(s, 2, batch);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        end = sqlite3_column_int64(s, 0);
        (*nrows)++;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? end : -2;
}

int64_t rt_history_prune_ex(rt_history_t *h, int64_t before_ms, int batch, rt_history_prune_stats_t *st)
{
    rt_history_prune_stats_t local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    if (batch <= 0)
        batch = 5000;
    int64_t ms = before_ms < 0 ? 0 : before_ms > MS_MAX ? MS_MAX : before_ms;
    int64_t cut = ms << HIST_SEQ_BITS, deleted = 0;
    for (;;) {
        /* the lock is taken per batch: the recorder's inserts run between */
        pthread_mutex_lock(&h->wmu);
        uint64_t t0 = cm_now_us();
        int64_t n = 0, end = batch_end(h, cut, batch, &n);
        int rc = end == -2 ? -1 : end < 0 ? 1 : delete_range(h, 0, end);
        uint64_t dt = cm_now_us() - t0;
        pthread_mutex_unlock(&h->wmu);
        let_inserts_in(h);
        if (rc < 0)
            return -1;
        if (rc > 0)
            break;
        deleted += n;
        st->batches++;
        if ((int64_t)dt > st->max_tx_us)
            st->max_tx_us = (int64_t)dt;
    }
    st->deleted = deleted;
    /* no row is left in the minutes that ended before the cut: nor is any
     * rollup minute (removing the rows emptied them; this keeps it so).
     * Looked for first: a prune with nothing to do never takes the write
     * lock */
    pthread_mutex_lock(&h->wmu);
    sqlite3_stmt *s = NULL;
    int drc = sqlite3_prepare_v2(h->wdb, "SELECT 1 FROM minutes WHERE minute <= ?1 LIMIT 1", -1, &s, NULL);
    if (drc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, ms - HIST_MINUTE_MS);
        drc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (drc == SQLITE_ROW) {
        drc = sqlite3_prepare_v2(h->wdb, "DELETE FROM minutes WHERE minute <= ?1", -1, &s, NULL);
        if (drc == SQLITE_OK) {
            sqlite3_bind_int64(s, 1, ms - HIST_MINUTE_MS);
            drc = sqlite3_step(s);
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&h->wmu);
    if (drc != SQLITE_DONE) {
        LOG_ERROR("history", "prune of the rollup failed: %s", sqlite3_errmsg(h->wdb));
        return -1;
    }
    if (deleted == 0)
        return 0;
    /* the freed pages go back to the file system a step at a time */
    char step[64];
    snprintf(step, sizeof(step), "PRAGMA incremental_vacuum(%d)", VACUUM_STEP);
    for (;;) {
        pthread_mutex_lock(&h->wmu);
        uint64_t t0 = cm_now_us();
        int64_t free_pages = query_int(h->wdb, "PRAGMA freelist_count");
        int rc = free_pages > 0 ? exec(h->wdb, step) : 1;
        if (rc > 0) /* the WAL holds the moved pages: fold them back (without
                       waiting for readers: a reader's snapshot may still need them) */
            sqlite3_wal_checkpoint_v2(h->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        uint64_t dt = cm_now_us() - t0;
        pthread_mutex_unlock(&h->wmu);
        let_inserts_in(h);
        if (rc == 0) {
            st->vacuum_steps++;
            if ((int64_t)dt > st->max_vacuum_us)
                st->max_vacuum_us = (int64_t)dt;
        }
        if (rc != 0)
            break;
    }
    pthread_mutex_lock(&h->wmu);
    exec(h->wdb, "PRAGMA optimize");
    pthread_mutex_unlock(&h->wmu);
    return deleted;
}

int64_t rt_history_prune(rt_history_t *h, int64_t before_ms, int batch)
{
    return rt_history_prune_ex(h, before_ms, batch, NULL);
}

int64_t rt_history_count(rt_history_t *h)
{
    /* the rollup's sum: one row per minute instead of one per request */
    sqlite3 *db = hist_reader(h);
    int64_t n = query_int(db, "SELECT coalesce(sum(count), 0) FROM minutes");
    hist_reader_done(h, db);
    return n;
}
