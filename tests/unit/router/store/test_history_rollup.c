/* Unit tests of router/src/store/history_rollup.c: the per-minute rollup
 * against a brute-force model of the rows, and the migration that builds it
 * for a file written before it existed. */
#include "history_fixture.h"
#include "store/history.h"

#include "util.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

/* ---- the per-minute rollup against a brute-force model ----
 *
 * A model keeps the live row of every id (a duplicate replaces it); every
 * figure the rollup serves is compared with the same figure summed from the
 * model: counts, errors and tokens exactly, averages to rounding, p95 within
 * the histogram bucket that holds the exact nearest-rank value. */

#define M_IDS 3000
#define M_T0 (1700000000000LL + 12345) /* not on a minute */
#define M_SPAN (3 * 3600000LL)        /* rows over three hours */

typedef struct {
    bool live;
    int64_t ms, dur, ttft, prompt, completion;
    int status;
    bool stream;
} mrow_t;

typedef struct {
    mrow_t r[M_IDS];
    uint64_t rng;
} model_t;

static uint64_t mrand(model_t *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

/* durations log-uniform from 0.1 ms to 20 min, a few exactly on an edge */
static int64_t rand_duration(model_t *m)
{
    if (mrand(m) % 50 == 0) {
        int64_t lo;
        rt_history_latency_bucket(1000 + (int64_t)(mrand(m) % 600000000), &lo, NULL);
        return lo;
    }
    double u = (double)(mrand(m) % 1000000) / 1e6;
    return (int64_t)(100.0 * pow(12000000.0, u));
}

static void rand_row(model_t *m, mrow_t *x, int64_t ms)
{
    static const int statuses[] = { 200, 200, 200, 200, 201, 400, 404, 429, 500, 502 };
    x->live = true;
    x->ms = ms;
    x->status = statuses[mrand(m) % 10];
    x->dur = rand_duration(m);
    x->stream = mrand(m) % 2;
    x->ttft = mrand(m) % 4 == 0 ? -1 : (int64_t)(mrand(m) % (uint64_t)(x->dur + 2)); /* may exceed dur */
    x->prompt = mrand(m) % 5 == 0 ? -1 : (int64_t)(mrand(m) % 1000);
    x->completion = mrand(m) % 5 == 0 ? -1 : (int64_t)(mrand(m) % 500);
}

/* Inserts n rows (ids picked at random: some replace a live row, some twice
 * in one batch) through rt_history_insert, and into the model. */
static void model_insert(rt_history_t *h, model_t *m, int n, int64_t t0, int64_t span)
{
    rt_history_row_t *rows = cm_xcalloc((size_t)n, sizeof(*rows));
    char (*ids)[16] = cm_xcalloc((size_t)n, 16);
    for (int i = 0; i < n; i++) {
        int id = (int)(mrand(m) % M_IDS);
        mrow_t x;
        rand_row(m, &x, t0 + (int64_t)(mrand(m) % (uint64_t)span));
        m->r[id] = x;
        snprintf(ids[i], 16, "m-%d", id);
        rows[i] = (rt_history_row_t){ .id = ids[i], .received_ms = x.ms, .finished_ms = x.ms + x.dur / 1000,
                                      .model = "m", .status = x.status, .duration_us = x.dur, .ttft_us = x.ttft,
                                      .prompt_tokens = x.prompt, .completion_tokens = x.completion,
                                      .total_tokens = -1, .stream = x.stream };
    }
    assert_int_equal(rt_history_insert(h, rows, (size_t)n), 0);
    free(rows);
    free(ids);
}

typedef struct {
    int64_t count, errors, prompt, completion, dur, gen, p95_us;
} exact_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The model's rows with ms in [lo, hi] (hi < 0: no bound). */
static void brute(const model_t *m, int64_t lo, int64_t hi, exact_t *e)
{
    memset(e, 0, sizeof(*e));
    int64_t *d = cm_xcalloc(M_IDS, sizeof(int64_t));
    for (int i = 0; i < M_IDS; i++) {
        const mrow_t *x = &m->r[i];
        if (!x->live || x->ms < lo || (hi >= 0 && x->ms > hi))
            continue;
        d[e->count++] = x->dur;
        e->errors += x->status >= 400;
        e->prompt += x->prompt > 0 ? x->prompt : 0;
        e->dur += x->dur;
        if (x->completion > 0) {
            e->completion += x->completion;
            e->gen += x->stream && x->ttft >= 0 && x->dur >= x->ttft ? x->dur - x->ttft : x->dur;
        }
    }
    if (e->count) {
        qsort(d, (size_t)e->count, sizeof(int64_t), cmp_i64);
        e->p95_us = d[(95 * e->count + 99) / 100 - 1];
    }
    free(d);
}

static void check_agg(const rt_history_agg_t *a, const exact_t *e)
{
    assert_int_equal(a->count, e->count);
    assert_int_equal(a->errors, e->errors);
    assert_int_equal(a->prompt_tokens, e->prompt);
    assert_int_equal(a->completion_tokens, e->completion);
    double avg = e->count ? (double)e->dur / (double)e->count / 1000.0 : 0;
    assert_float_equal(a->avg_ms, avg, 1e-9 * (avg + 1));
    double tps = e->gen > 0 ? (double)e->completion / ((double)e->gen / 1e6) : 0;
    assert_float_equal(a->tokens_per_s, tps, 1e-9 * (tps + 1));
    if (!e->count) {
        assert_float_equal(a->p95_ms, 0, 0);
        return;
    }
    /* the estimate lies in the bucket of the exact value */
    int64_t lo, hi;
    rt_history_latency_bucket(e->p95_us, &lo, &hi);
    double est_us = a->p95_ms * 1000;
    if (est_us < (double)lo - 1e-6 || (hi != INT64_MAX && est_us > (double)hi + 1e-6))
        fail_msg("p95 %.1f us outside [%lld, %lld) of the exact %lld us", est_us, (long long)lo, (long long)hi,
                 (long long)e->p95_us);
}

static int64_t model_count(const model_t *m, int64_t lo, int64_t hi)
{
    exact_t e;
    brute(m, lo, hi, &e);
    return e.count;
}

typedef struct {
    rt_history_agg_t b[400];
    int n;
} mbuckets_t;

static void on_mbucket(const rt_history_agg_t *b, void *arg)
{
    mbuckets_t *bs = arg;
    assert_true(bs->n < 400);
    bs->b[bs->n++] = *b;
}

static void check_buckets(rt_history_t *h, const model_t *m, int64_t bucket_ms, int64_t from, int64_t to)
{
    mbuckets_t *bs = cm_xcalloc(1, sizeof(*bs));
    assert_int_equal(rt_history_buckets(h, bucket_ms, from, to, on_mbucket, bs), 0);
    int k = 0;
    for (int64_t b = from / bucket_ms * bucket_ms; b <= to; b += bucket_ms) {
        exact_t e;
        int64_t lo = b < from ? from : b, hi = b + bucket_ms - 1 > to ? to : b + bucket_ms - 1;
        brute(m, lo, hi, &e);
        if (!e.count)
            continue;
        assert_true(k < bs->n);
        assert_int_equal(bs->b[k].start_ms, b);
        check_agg(&bs->b[k], &e);
        k++;
    }
    assert_int_equal(k, bs->n);
    free(bs);
}

static void check_total(rt_history_t *h, const model_t *m, int64_t from, int64_t to)
{
    rt_history_filter_t f = { .from_ms = from, .to_ms = to };
    int n = 0;
    int64_t total = -1;
    assert_int_equal(rt_history_list(h, &f, 0, 1, false, count_rows, &n, &total), 0);
    assert_int_equal(total, model_count(m, from, to > 0 ? to : -1));
    /* the same count through the indexed path agrees */
    rt_history_filter_t g = { .model = "m", .from_ms = from, .to_ms = to };
    int64_t total2 = -1;
    assert_int_equal(rt_history_list(h, &g, 0, 1, false, count_rows, &n, &total2), 0);
    assert_int_equal(total2, total);
}

/* Every figure the rollup serves, against the model. */
static void check_model(rt_history_t *h, model_t *m)
{
    assert_int_equal(rt_history_count(h), model_count(m, 0, -1));
    int64_t t0 = M_T0 - 120000, t1 = M_T0 + M_SPAN + 120000;
    int64_t m0 = t0 / 60000 * 60000;
    /* minute and hour buckets, aligned and not; a bucket of 5 minutes */
    check_buckets(h, m, 60000, m0, t1 / 60000 * 60000 + 59999);
    check_buckets(h, m, 60000, t0 + 777, t1 - 333);
    check_buckets(h, m, 3600000, t0, t1);
    check_buckets(h, m, 300000, t0 + 1, t1);
    /* summaries and totals from random points, in one minute or across */
    for (int i = 0; i < 25; i++) {
        int64_t since = t0 + (int64_t)(mrand(m) % (uint64_t)(t1 - t0));
        if (i % 5 == 0)
            since = since / 60000 * 60000; /* on a minute */
        rt_history_agg_t a;
        exact_t e;
        assert_int_equal(rt_history_summary(h, since, &a), 0);
        brute(m, since, -1, &e);
        check_agg(&a, &e);
        int64_t len = i % 3 == 0 ? (int64_t)(mrand(m) % 60000) : (int64_t)(mrand(m) % 5400000);
        check_total(h, m, since, since + len);
        check_total(h, m, since, 0);
        check_total(h, m, 0, since);
        check_buckets(h, m, 60000, since, since + len);
    }
    check_total(h, m, 0, 0);
    rt_history_agg_t a;
    exact_t e;
    assert_int_equal(rt_history_summary(h, 0, &a), 0);
    brute(m, 0, -1, &e);
    check_agg(&a, &e);
}

/* The rollup table itself: no empty minute, none before `after`. */
static void check_minutes_table(const char *name, int64_t after)
{
    char *path = db_path(name);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM minutes WHERE count <= 0 OR minute + 60000 <= ?1",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, after);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(path);
}

static void prune_model(model_t *m, int64_t before)
{
    for (int i = 0; i < M_IDS; i++)
        if (m->r[i].ms < before)
            m->r[i].live = false;
}

static void test_rollup_random(void **state)
{
    (void)state;
    model_t *m = cm_xcalloc(1, sizeof(*m));
    m->rng = 0x9e3779b97f4a7c15ULL;
    rt_history_t *h = open_at("rollup.db", true);
    check_model(h, m); /* empty */
    /* batches of 1 to 300 rows over the whole span (some replace rows of
     * other minutes), and a batch over more minutes than the writer gathers
     * before it upserts */
    for (int b = 0; b < 40; b++)
        model_insert(h, m, 1 + (int)(mrand(m) % 300), M_T0, M_SPAN);
    model_insert(h, m, 400, M_T0, M_SPAN);
    /* the same ids again in one burst: every one a replacement */
    model_insert(h, m, 200, M_T0 + M_SPAN / 2, 90000);
    check_model(h, m);

    /* prune at a cut inside a minute: its earlier rows leave the rollup */
    int64_t cut = (M_T0 + 3600000) / 60000 * 60000 + 41234;
    int64_t n_before = model_count(m, 0, -1);
    int64_t deleted = rt_history_prune(h, cut, 37);
    prune_model(m, cut);
    assert_int_equal(deleted, n_before - model_count(m, 0, -1));
    check_model(h, m);
    rt_history_close(h);
    check_minutes_table("rollup.db", cut);

    /* reopened: the same figures; more writes keep it so */
    h = open_at("rollup.db", true);
    check_model(h, m);
    model_insert(h, m, 250, cut - 60000, 240000); /* some before the cut again */
    check_model(h, m);
    /* a prune on a minute boundary, and one that finds nothing */
    cut = (M_T0 + 2 * 3600000) / 60000 * 60000;
    rt_history_prune(h, cut, 0);
    prune_model(m, cut);
    check_model(h, m);
    assert_int_equal(rt_history_prune(h, cut, 0), 0);
    check_model(h, m);
    rt_history_close(h);
    check_minutes_table("rollup.db", cut);
    free(m);
}

/* A file as the first release wrote it (schema version 1, no rollup): a
 * frozen copy of that migration, filled by plain sqlite3 calls. */
static const char v1_schema[] =
    "PRAGMA page_size = 8192; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES ('fts', 0);"
    "CREATE TABLE requests (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, received_ms INTEGER NOT NULL,"
    " first_byte_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL, endpoint TEXT, model TEXT, node_id TEXT,"
    " node_name TEXT, attempts INTEGER NOT NULL, client_kind TEXT, client_id TEXT, client_name TEXT,"
    " client_addr TEXT, status INTEGER NOT NULL, failed INTEGER NOT NULL, error_type TEXT, error_message TEXT,"
    " duration_us INTEGER NOT NULL, ttft_us INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " request_len INTEGER NOT NULL, request_truncated INTEGER NOT NULL, response_len INTEGER NOT NULL,"
    " response_truncated INTEGER NOT NULL);"
    "CREATE TABLE bodies (seq INTEGER PRIMARY KEY, request_body BLOB, response_body BLOB);"
    "CREATE INDEX requests_model ON requests (model, received_ms);"
    "CREATE INDEX requests_node ON requests (node_id, received_ms);"
    "CREATE INDEX requests_client ON requests (client_id, received_ms);"
    "CREATE INDEX requests_status ON requests (status, received_ms);"
    "CREATE INDEX requests_failed ON requests (failed, received_ms);"
    "PRAGMA user_version = 1;";

/* Writes the model's live rows straight into the table (no rollup). */
static void raw_fill(const char *name, const model_t *m, bool create)
{
    char *path = db_path(name);
    if (create) {
        char *dir = cm_xasprintf("%s/sub", g_dir);
        mkdir(dir, 0700);
        free(dir);
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (create)
        assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO requests VALUES (?1, ?2, ?3, ?3, ?3, '/v1/chat/completions',"
                                        " 'm', 'n1', 'node', 1, 'api_key', 'k1', 'key', '127.0.0.1', ?4, ?4 >= 400,"
                                        " NULL, NULL, ?5, ?6, ?7, ?8, -1, ?9, 0, 0, 0, 0)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    for (int i = 0; i < M_IDS; i++) {
        const mrow_t *x = &m->r[i];
        if (!x->live)
            continue;
        char id[16];
        snprintf(id, sizeof(id), "m-%d", i);
        /* seq: ms << 16 | n; ids are unique, i keeps seqs apart */
        sqlite3_bind_int64(s, 1, x->ms << 16 | (i & 0xffff));
        sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, x->ms);
        sqlite3_bind_int(s, 4, x->status);
        sqlite3_bind_int64(s, 5, x->dur);
        sqlite3_bind_int64(s, 6, x->ttft);
        sqlite3_bind_int64(s, 7, x->prompt);
        sqlite3_bind_int64(s, 8, x->completion);
        sqlite3_bind_int(s, 9, x->stream);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
            fail_msg("raw insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(path);
}

static void test_rollup_migration(void **state)
{
    (void)state;
    model_t *m = cm_xcalloc(1, sizeof(*m));
    m->rng = 0x1234567887654321ULL;
    for (int i = 0; i < M_IDS; i += 2)
        rand_row(m, &m->r[i], M_T0 + (int64_t)(mrand(m) % (uint64_t)M_SPAN));
    raw_fill("v1.db", m, true);

    /* opening migrates it to the latest version and builds the rollup */
    rt_history_t *h = open_at("v1.db", true);
    check_model(h, m);
    model_insert(h, m, 300, M_T0, M_SPAN);
    check_model(h, m);
    rt_history_close(h);
    char *path = db_path("v1.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), rt_history_latest_version());
    sqlite3_finalize(s);

    /* rows deleted and added behind the store's back (the sqlite3 shell):
     * the next open sees the rollup disagree and rebuilds it */
    assert_int_equal(sqlite3_exec(db, "DELETE FROM requests WHERE id IN ('m-0', 'm-2', 'm-4')", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    free(path);
    m->r[0].live = m->r[2].live = m->r[4].live = false;
    model_t *extra = cm_xcalloc(1, sizeof(*extra));
    for (int i = 1; i < M_IDS; i += 2) {
        if (m->r[i].live)
            continue;
        rand_row(m, &m->r[i], M_T0 + (int64_t)(mrand(m) % (uint64_t)M_SPAN));
        extra->r[i] = m->r[i];
    }
    raw_fill("v1.db", extra, false);
    h = open_at("v1.db", true);
    check_model(h, m);
    rt_history_close(h);
    free(extra);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollup_random),
        cmocka_unit_test(test_rollup_migration),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
