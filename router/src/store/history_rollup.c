/* history_rollup: the per-minute rollup of the request history (table
 * minutes: count, errors, token sums, duration and generation-time sums, a
 * log-scale latency histogram), kept by the writer in the transaction that
 * writes the rows, so that it always equals what the rows say; and the
 * reads over a time range that use it (aggregates, counts).
 *
 * Why: the dashboard's summary and trend queries and the list's total
 * scanned every row of their window (seconds at a few million rows, and
 * linear in them). A range now reads one rollup row per whole minute and
 * sums the rows of at most two partial minutes at its ends, exactly. */
#include "store/history_internal.h"

#include "log.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MS_MAX (INT64_MAX >> HIST_SEQ_BITS)
#define LAT_BLOB_LEN (HIST_LAT_BUCKETS * 8)

/* Bucket edges in us: edge[k] = round(1000 * 600000^(k/62)), 1 ms to
 * 10 min (values of that formula, kept literal because the file stores
 * bucket indexes: never change them; a new histogram is a new column). */
static const int64_t lat_edges[HIST_LAT_BUCKETS - 1] = {
    1000,      1239,      1536,      1904,      2359,      2924,      3624,      4491,      5566,
    6899,      8550,      10596,     13133,     16276,     20172,     25000,     30984,     38400,
    47591,     58983,     73100,     90597,     112282,    139158,    172466,    213747,    264908,
    328316,    406900,    504294,    624999,    774597,    960001,    1189783,   1474564,   1827509,
    2264934,   2807059,   3478945,   4311650,   5343669,   6622706,   8207889,   10172495,  12607340,
    15624979,  19364908,  24000011,  29744551,  36864081,  45687711,  56623327,  70176446,  86973582,
    107791210, 133591657, 165567588, 205197144, 254312261, 315183364, 390624316, 484122495, 600000000,
};

int rt_history_latency_bucket(int64_t us, int64_t *lo_us, int64_t *hi_us)
{
    int b;
    if (us < lat_edges[0]) {
        b = 0;
    } else if (us >= lat_edges[HIST_LAT_BUCKETS - 2]) {
        b = HIST_LAT_BUCKETS - 1;
    } else { /* the last edge <= us */
        int lo = 0, hi = HIST_LAT_BUCKETS - 2;
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (lat_edges[mid] <= us)
                lo = mid;
            else
                hi = mid;
        }
        b = lo + 1;
    }
    if (lo_us)
        *lo_us = b == 0 ? 0 : lat_edges[b - 1];
    if (hi_us)
        *hi_us = b == HIST_LAT_BUCKETS - 1 ? INT64_MAX : lat_edges[b];
    return b;
}

/* ---- one minute in memory ---- */

static int64_t minute_of(int64_t ms) { return ms / HIST_MINUTE_MS * HIST_MINUTE_MS; }

void hist_sample_read(sqlite3_stmt *s, int col, hist_sample_t *out)
{
    out->ms = sqlite3_column_int64(s, col);
    out->status = sqlite3_column_int(s, col + 1);
    out->prompt_tokens = sqlite3_column_int64(s, col + 2);
    out->completion_tokens = sqlite3_column_int64(s, col + 3);
    out->duration_us = sqlite3_column_int64(s, col + 4);
    out->ttft_us = sqlite3_column_int64(s, col + 5);
    out->stream = sqlite3_column_int(s, col + 6) != 0;
}

void hist_minute_add(hist_minute_t *m, const hist_sample_t *x, int sign)
{
    m->count += sign;
    m->errors += x->status >= 400 ? sign : 0;
    m->prompt_tokens += x->prompt_tokens > 0 ? sign * x->prompt_tokens : 0;
    if (x->completion_tokens > 0) {
        m->completion_tokens += sign * x->completion_tokens;
        /* history.h: a stream's first token opens its generation time; a
         * non-streamed answer's arrives with its last */
        int64_t gen = x->stream && x->ttft_us >= 0 && x->duration_us >= x->ttft_us ? x->duration_us - x->ttft_us
                                                                                      : x->duration_us;
        m->gen_us += sign * gen;
    }
    m->duration_us += sign * x->duration_us;
    m->lat[rt_history_latency_bucket(x->duration_us, NULL, NULL)] += sign;
    if (sign > 0 && x->duration_us > m->max_us)
        m->max_us = x->duration_us;
    if (sign < 0)
        m->removed = true;
}

void hist_minute_merge(hist_minute_t *into, const hist_minute_t *m)
{
    into->count += m->count;
    into->errors += m->errors;
    into->prompt_tokens += m->prompt_tokens;
    into->completion_tokens += m->completion_tokens;
    into->duration_us += m->duration_us;
    into->gen_us += m->gen_us;
    if (m->max_us > into->max_us)
        into->max_us = m->max_us;
    for (int i = 0; i < HIST_LAT_BUCKETS; i++)
        into->lat[i] += m->lat[i];
    into->removed |= m->removed;
}

/* The ceil(0.95 n)-th shortest duration (the nearest rank of the exact
 * summary it replaces), interpolated linearly within its bucket; the top of
 * a bucket is lowered to the longest duration seen, which also closes the
 * last bucket. */
static double p95_us(const hist_minute_t *m)
{
    if (m->count <= 0)
        return 0;
    int64_t rank = (95 * m->count + 99) / 100, cum = 0;
    for (int b = 0; b < HIST_LAT_BUCKETS; b++) {
        int64_t c = m->lat[b];
        if (c <= 0 || cum + c < rank) {
            cum += c > 0 ? c : 0;
            continue;
        }
        double lo = b == 0 ? 0 : (double)lat_edges[b - 1];
        double hi = b == HIST_LAT_BUCKETS - 1 ? (double)m->max_us : (double)lat_edges[b];
        if ((double)m->max_us < hi)
            hi = (double)m->max_us;
        if (hi < lo)
            hi = lo;
        return lo + (hi - lo) * (double)(rank - cum) / (double)c;
    }
    return (double)m->max_us;
}

void hist_minute_agg(const hist_minute_t *m, rt_history_agg_t *out)
{
    out->count = m->count;
    out->errors = m->errors;
    out->prompt_tokens = m->prompt_tokens;
    out->completion_tokens = m->completion_tokens;
    out->avg_ms = m->count > 0 ? (double)m->duration_us / (double)m->count / 1000.0 : 0;
    out->tokens_per_s = m->gen_us > 0 ? (double)m->completion_tokens / ((double)m->gen_us / 1e6) : 0;
    out->p95_ms = p95_us(m) / 1000.0;
}

/* ---- the histogram BLOB: HIST_LAT_BUCKETS little-endian int64 ---- */

static void lat_encode(const int64_t *lat, unsigned char *out)
{
    for (int i = 0; i < HIST_LAT_BUCKETS; i++) {
        uint64_t v = (uint64_t)lat[i];
        for (int k = 0; k < 8; k++)
            out[i * 8 + k] = (unsigned char)(v >> (8 * k));
    }
}

/* A blob of another length (none is written) adds what it holds. */
static void lat_add_blob(int64_t *lat, const unsigned char *b, int n)
{
    for (int i = 0; i < HIST_LAT_BUCKETS && (i + 1) * 8 <= n; i++) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v |= (uint64_t)b[i * 8 + k] << (8 * k);
        lat[i] += (int64_t)v;
    }
}

/* rollup_merge(stored, delta): the bucket-wise sum, for the upsert. */
static void rollup_merge_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    int64_t lat[HIST_LAT_BUCKETS] = { 0 };
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_BLOB)
            lat_add_blob(lat, sqlite3_value_blob(argv[i]), sqlite3_value_bytes(argv[i]));
    unsigned char out[LAT_BLOB_LEN];
    lat_encode(lat, out);
    sqlite3_result_blob(ctx, out, LAT_BLOB_LEN, SQLITE_TRANSIENT);
}

int hist_rollup_register(sqlite3 *db)
{
    return sqlite3_create_function_v2(db, "rollup_merge", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                      rollup_merge_fn, NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

/* ---- writes ---- */

static const char upsert_sql[] =
    "INSERT INTO minutes (minute, count, errors, prompt_tokens, completion_tokens, duration_us, gen_us,"
    " max_us, latency) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (minute) DO UPDATE SET count = count + excluded.count, errors = errors + excluded.errors,"
    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = completion_tokens + excluded.completion_tokens,"
    " duration_us = duration_us + excluded.duration_us, gen_us = gen_us + excluded.gen_us,"
    " max_us = max(max_us, excluded.max_us), latency = rollup_merge(latency, excluded.latency)";
static const char drop_empty_sql[] = "DELETE FROM minutes WHERE minute = ?1 AND count <= 0";

static int prepare_once(sqlite3 *db, sqlite3_stmt **s, const char *sql)
{
    if (*s)
        return 0;
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) == SQLITE_OK ? 0 : -1;
}

static int upsert(sqlite3 *db, sqlite3_stmt *s, sqlite3_stmt *drop, const hist_minute_t *m)
{
    unsigned char blob[LAT_BLOB_LEN];
    lat_encode(m->lat, blob);
    sqlite3_bind_int64(s, 1, m->minute);
    sqlite3_bind_int64(s, 2, m->count);
    sqlite3_bind_int64(s, 3, m->errors);
    sqlite3_bind_int64(s, 4, m->prompt_tokens);
    sqlite3_bind_int64(s, 5, m->completion_tokens);
    sqlite3_bind_int64(s, 6, m->duration_us);
    sqlite3_bind_int64(s, 7, m->gen_us);
    sqlite3_bind_int64(s, 8, m->max_us);
    sqlite3_bind_blob(s, 9, blob, LAT_BLOB_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE)
        goto fail;
    if (m->removed) { /* its last rows may have gone: no empty minute is kept */
        sqlite3_bind_int64(drop, 1, m->minute);
        rc = sqlite3_step(drop);
        sqlite3_reset(drop);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    return 0;
fail:
    LOG_ERROR("history", "rollup write failed: %s", sqlite3_errmsg(db));
    return -1;
}

int hist_acc_flush(rt_history_t *h)
{
    int rc = 0;
    if (h->nacc > 0 && (prepare_once(h->wdb, &h->upsert, upsert_sql) != 0 ||
                        prepare_once(h->wdb, &h->drop_empty, drop_empty_sql) != 0)) {
        LOG_ERROR("history", "rollup: cannot prepare: %s", sqlite3_errmsg(h->wdb));
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < h->nacc; i++)
        rc = upsert(h->wdb, h->upsert, h->drop_empty, &h->acc[i]);
    h->nacc = 0;
    return rc;
}

int hist_acc_add(rt_history_t *h, const hist_sample_t *x, int sign)
{
    int64_t minute = minute_of(x->ms);
    /* rows arrive in time order, mostly: the newest pending minute first */
    for (int i = h->nacc - 1; i >= 0; i--) {
        if (h->acc[i].minute == minute) {
            hist_minute_add(&h->acc[i], x, sign);
            return 0;
        }
    }
    if (h->nacc == HIST_ACC_MAX && hist_acc_flush(h) != 0)
        return -1;
    hist_minute_t *m = &h->acc[h->nacc++];
    memset(m, 0, sizeof(*m));
    m->minute = minute;
    hist_minute_add(m, x, sign);
    return 0;
}

int hist_rollup_remove_range(rt_history_t *h, int64_t lo_seq, int64_t hi_seq)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;
    h->nacc = 0;
    if (sqlite3_prepare_v2(h->wdb, "SELECT " HIST_SAMPLE_COLS " FROM requests WHERE seq BETWEEN ?1 AND ?2", -1,
                           &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(s, 1, lo_seq);
    sqlite3_bind_int64(s, 2, hi_seq);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        hist_sample_t x;
        hist_sample_read(s, 0, &x);
        if (hist_acc_add(h, &x, -1) != 0)
            goto out;
    }
    if (step == SQLITE_DONE)
        rc = hist_acc_flush(h);
out:
    if (rc != 0)
        LOG_ERROR("history", "rollup: prune failed: %s", sqlite3_errmsg(h->wdb));
    h->nacc = 0;
    sqlite3_finalize(s);
    return rc;
}

int hist_rollup_backfill(sqlite3 *db)
{
    sqlite3_stmt *s = NULL, *up = NULL, *drop = NULL;
    int rc = -1, step;
    int64_t rows = 0, minutes = 0;
    uint64_t t0 = cm_now_us();
    hist_minute_t m = { .minute = -1 };
    /* seq order is time order: one minute is open at a time */
    if (sqlite3_prepare_v2(db, "SELECT " HIST_SAMPLE_COLS " FROM requests ORDER BY seq", -1, &s, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, upsert_sql, -1, &up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, drop_empty_sql, -1, &drop, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        hist_sample_t x;
        hist_sample_read(s, 0, &x);
        int64_t minute = minute_of(x.ms);
        if (minute != m.minute) {
            if (m.count > 0 && upsert(db, up, drop, &m) != 0)
                goto out;
            memset(&m, 0, sizeof(m));
            m.minute = minute;
            minutes++;
        }
        hist_minute_add(&m, &x, 1);
        rows++;
    }
    if (step != SQLITE_DONE || (m.count > 0 && upsert(db, up, drop, &m) != 0))
        goto out;
    if (rows > 0)
        LOG_INFO("history", "rollup built from %lld rows (%lld minutes) in %.1f s", (long long)rows,
                 (long long)minutes, (double)(cm_now_us() - t0) / 1e6);
    rc = 0;
out:
    sqlite3_finalize(s);
    sqlite3_finalize(up);
    sqlite3_finalize(drop);
    return rc;
}

/* ---- reads ---- */

/* The rows with seq in [lo_seq, hi_seq) summed into m (one minute). */
static int sum_rows(sqlite3 *db, int64_t lo_seq, int64_t hi_seq, hist_minute_t *m)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT " HIST_SAMPLE_COLS " FROM requests WHERE seq >= ?1 AND seq < ?2", -1, &s,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(s, 1, lo_seq);
    sqlite3_bind_int64(s, 2, hi_seq);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        hist_sample_t x;
        hist_sample_read(s, 0, &x);
        hist_minute_add(m, &x, 1);
    }
    sqlite3_finalize(s);
    return step == SQLITE_DONE ? 0 : -1;
}

static int count_rows(sqlite3 *db, int64_t lo_seq, int64_t hi_seq, int64_t *n)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM requests WHERE seq >= ?1 AND seq < ?2", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(s, 1, lo_seq);
        sqlite3_bind_int64(s, 2, hi_seq);
        if (sqlite3_step(s) == SQLITE_ROW) {
            *n += sqlite3_column_int64(s, 0);
            rc = 0;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

/* [lo, hi] split into a partial first minute [lo, a), the whole minutes
 * [a, b) and a partial last minute [b, hi]; an empty part has its start
 * past its end. hi < 0: no upper bound (b = INT64_MAX). */
typedef struct {
    int64_t lo, hi; /* ms, hi inclusive */
    int64_t a, b;   /* whole minutes: starts in [a, b) */
    bool head, tail; /* partial minutes to sum from the rows */
} split_t;

static bool split(int64_t lo, int64_t hi, split_t *sp)
{
    lo = lo < 0 ? 0 : lo > MS_MAX ? MS_MAX : lo;
    if (hi > MS_MAX - 1)
        hi = MS_MAX - 1;
    if (hi >= 0 && hi < lo)
        return false;
    *sp = (split_t){ .lo = lo, .hi = hi };
    int64_t m0 = minute_of(lo);
    sp->head = lo != m0;
    sp->a = sp->head ? m0 + HIST_MINUTE_MS : m0;
    if (hi < 0) {
        sp->b = INT64_MAX;
        return true;
    }
    int64_t m1 = minute_of(hi);
    if (m0 == m1 && (sp->head || hi != m1 + HIST_MINUTE_MS - 1)) { /* inside one minute */
        sp->head = true;
        sp->a = sp->b = INT64_MAX;
        return true;
    }
    sp->tail = hi != m1 + HIST_MINUTE_MS - 1;
    sp->b = sp->tail ? m1 : m1 + HIST_MINUTE_MS;
    return true;
}

/* the seq range of the head: [lo, min(a, hi + 1)) */
static int64_t head_end_seq(const split_t *sp)
{
    int64_t end = sp->a == INT64_MAX ? sp->hi + 1 : sp->a;
    if (sp->hi >= 0 && end > sp->hi + 1)
        end = sp->hi + 1;
    return (end > MS_MAX ? MS_MAX : end) << HIST_SEQ_BITS;
}

int hist_range(sqlite3 *db, int64_t lo_ms, int64_t hi_ms, void (*cb)(const hist_minute_t *m, void *arg), void *arg)
{
    split_t sp;
    if (!split(lo_ms, hi_ms, &sp))
        return 0;
    hist_minute_t m;
    if (sp.head) {
        memset(&m, 0, sizeof(m));
        m.minute = minute_of(sp.lo);
        if (sum_rows(db, sp.lo << HIST_SEQ_BITS, head_end_seq(&sp), &m) != 0)
            return -1;
        if (m.count > 0)
            cb(&m, arg);
    }
    sqlite3_stmt *s = NULL;
    if (sp.a < sp.b) {
        if (sqlite3_prepare_v2(db,
                               "SELECT minute, count, errors, prompt_tokens, completion_tokens, duration_us, gen_us,"
                               " max_us, latency FROM minutes WHERE minute >= ?1 AND minute < ?2 AND count > 0"
                               " ORDER BY minute",
                               -1, &s, NULL) != SQLITE_OK)
            return -1;
        sqlite3_bind_int64(s, 1, sp.a);
        sqlite3_bind_int64(s, 2, sp.b);
        int step;
        while ((step = sqlite3_step(s)) == SQLITE_ROW) {
            memset(&m, 0, sizeof(m));
            m.minute = sqlite3_column_int64(s, 0);
            m.count = sqlite3_column_int64(s, 1);
            m.errors = sqlite3_column_int64(s, 2);
            m.prompt_tokens = sqlite3_column_int64(s, 3);
            m.completion_tokens = sqlite3_column_int64(s, 4);
            m.duration_us = sqlite3_column_int64(s, 5);
            m.gen_us = sqlite3_column_int64(s, 6);
            m.max_us = sqlite3_column_int64(s, 7);
            lat_add_blob(m.lat, sqlite3_column_blob(s, 8), sqlite3_column_bytes(s, 8));
            cb(&m, arg);
        }
        sqlite3_finalize(s);
        if (step != SQLITE_DONE)
            return -1;
    }
    if (sp.tail) {
        memset(&m, 0, sizeof(m));
        m.minute = sp.b;
        if (sum_rows(db, sp.b << HIST_SEQ_BITS, (sp.hi + 1) << HIST_SEQ_BITS, &m) != 0)
            return -1;
        if (m.count > 0)
            cb(&m, arg);
    }
    return 0;
}

int hist_range_count(sqlite3 *db, int64_t lo_ms, int64_t hi_ms, int64_t *n)
{
    *n = 0;
    split_t sp;
    if (!split(lo_ms, hi_ms, &sp))
        return 0;
    if (sp.head && count_rows(db, sp.lo << HIST_SEQ_BITS, head_end_seq(&sp), n) != 0)
        return -1;
    if (sp.a < sp.b) {
        sqlite3_stmt *s = NULL;
        int rc = -1;
        if (sqlite3_prepare_v2(db, "SELECT sum(count) FROM minutes WHERE minute >= ?1 AND minute < ?2", -1, &s,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(s, 1, sp.a);
            sqlite3_bind_int64(s, 2, sp.b);
            if (sqlite3_step(s) == SQLITE_ROW) {
                *n += sqlite3_column_int64(s, 0); /* NULL (no minute): 0 */
                rc = 0;
            }
        }
        sqlite3_finalize(s);
        if (rc != 0)
            return -1;
    }
    if (sp.tail && count_rows(db, sp.b << HIST_SEQ_BITS, (sp.hi + 1) << HIST_SEQ_BITS, n) != 0)
        return -1;
    return 0;
}
