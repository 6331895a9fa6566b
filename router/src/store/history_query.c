/* history_query: the reads of the request history (list, get, export,
 * buckets, summary), each on a connection of the read pool. The statement
 * is built from the filter so that each filter reaches its index: see
 * history.c for the schema. */
#include "store/history_internal.h"

#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_SPAN ((int64_t)1 << HIST_SEQ_BITS)
#define MS_MAX (INT64_MAX >> HIST_SEQ_BITS)
#define MAX_PARAMS 12
#define SQL_MAX 2048

/* The columns of a row, in the order read_row expects. */
#define ROW_COLS                                                                                        \
    "r.id, r.received_ms, r.first_byte_ms, r.finished_ms, r.endpoint, r.model, r.node_id, r.node_name," \
    " r.attempts, r.client_kind, r.client_id, r.client_name, r.client_addr, r.status, r.error_type,"    \
    " r.error_message, r.duration_us, r.ttft_us, r.prompt_tokens, r.completion_tokens, r.total_tokens," \
    " r.stream, r.request_len, r.request_truncated, r.response_len, r.response_truncated"

typedef struct {
    char sql[SQL_MAX];
    size_t len;
    bool overflow;
    int np;
    struct {
        bool text;
        int64_t i;
        const char *s;
    } p[MAX_PARAMS];
    char *match; /* the FTS query built from q (owned) */
    bool indexed; /* an equality filter with an index of its own: order by (received_ms, seq) */
} query_t;

static void add(query_t *q, const char *s)
{
    size_t n = strlen(s);
    if (q->len + n >= sizeof(q->sql)) {
        q->overflow = true;
        return;
    }
    memcpy(q->sql + q->len, s, n + 1);
    q->len += n;
}

static void param_int(query_t *q, int64_t v)
{
    if (q->np >= MAX_PARAMS) {
        q->overflow = true;
        return;
    }
    q->p[q->np].text = false;
    q->p[q->np++].i = v;
}

static void param_text(query_t *q, const char *v)
{
    if (q->np >= MAX_PARAMS) {
        q->overflow = true;
        return;
    }
    q->p[q->np].text = true;
    q->p[q->np++].s = v;
}

static void bind_all(sqlite3_stmt *s, const query_t *q)
{
    for (int i = 0; i < q->np; i++) {
        if (q->p[i].text)
            sqlite3_bind_text(s, i + 1, q->p[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(s, i + 1, q->p[i].i);
    }
}

/* q as an FTS5 query: each whitespace-separated word a quoted string (so
 * nothing in q is FTS syntax), all of them required. NULL when q has no
 * word. */
static char *fts_match(const char *text)
{
    size_t n = strlen(text);
    char *out = cm_xmalloc(n * 2 + 4 * (n / 2 + 1) + 1);
    char *o = out;
    const char *p = text;
    bool any = false;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
            p++;
        if (!*p)
            break;
        if (any)
            *o++ = ' ';
        *o++ = '"';
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')) {
            if (*p == '"')
                *o++ = '"';
            *o++ = *p++;
        }
        *o++ = '"';
        any = true;
    }
    *o = '\0';
    if (!any) {
        free(out);
        return NULL;
    }
    return out;
}

/* WHERE ... for f (empty when f filters nothing); with_q false leaves q
 * out (the scan applies it outside the window). */
static void add_where(query_t *q, rt_history_t *h, const rt_history_filter_t *f, bool with_q)
{
    const char *sep = " WHERE ";
#define TERM(s)       \
    do {              \
        add(q, sep);  \
        add(q, s);    \
        sep = " AND "; \
    } while (0)
    if (!f)
        return;
    if (f->model) {
        TERM("r.model = ?");
        param_text(q, f->model);
        q->indexed = true;
    }
    if (f->node_id) {
        TERM("r.node_id = ?");
        param_text(q, f->node_id);
        q->indexed = true;
    }
    if (f->api_key_id) {
        TERM("r.client_id = ?");
        param_text(q, f->api_key_id);
        q->indexed = true;
    }
    if (f->status_code) {
        TERM("r.status = ?");
        param_int(q, f->status_code);
        q->indexed = true;
    }
    if (f->status_class == 1 || f->status_class == 2) {
        TERM(f->status_class == 1 ? "r.failed = 0" : "r.failed = 1");
        q->indexed = true;
    }
    /* a time bound twice: as a rowid range (the table scan) and on the
     * received_ms of the filter indexes; the planner takes the one it uses */
    if (f->from_ms > 0) {
        int64_t ms = f->from_ms > MS_MAX ? MS_MAX : f->from_ms;
        TERM("r.seq >= ? AND r.received_ms >= ?");
        param_int(q, ms << HIST_SEQ_BITS);
        param_int(q, ms);
    }
    if (f->to_ms > 0) {
        int64_t ms = f->to_ms >= MS_MAX ? MS_MAX - 1 : f->to_ms;
        TERM("r.seq < ? AND r.received_ms <= ?");
        param_int(q, (ms + 1) << HIST_SEQ_BITS);
        param_int(q, ms);
    }
    if (with_q && q->match) {
        if (h->fts) {
            TERM("r.seq IN (SELECT rowid FROM bodies_fts WHERE bodies_fts MATCH ?)");
            param_text(q, q->match);
        } else {
            TERM("EXISTS (SELECT 1 FROM bodies b2 WHERE b2.seq = r.seq AND"
                 " (instr(b2.request_body, CAST(? AS BLOB)) > 0 OR instr(b2.response_body, CAST(? AS BLOB)) > 0))");
            param_text(q, f->q);
            param_text(q, f->q);
        }
    }
#undef TERM
}

static void add_order(query_t *q);

/* FROM ... WHERE ... for f. join: added after the table (a LEFT JOIN of the
 * bodies, or ""). Without FTS, q scans the bodies of the newest
 * HIST_Q_WINDOW rows that pass the other filters (see history.h). */
static void add_source(query_t *q, rt_history_t *h, const rt_history_filter_t *f, const char *join)
{
    /* a q of blanks only filters nothing */
    q->match = f && f->q ? fts_match(f->q) : NULL;
    if (!q->match || h->fts) {
        add(q, " FROM requests r");
        add(q, join);
        add_where(q, h, f, true);
        return;
    }
    add(q, " FROM (SELECT * FROM requests r");
    add_where(q, h, f, false);
    add_order(q);
    add(q, " LIMIT ?) r");
    param_int(q, HIST_Q_WINDOW);
    add(q, join);
    rt_history_filter_t only_q = { .q = f->q };
    add_where(q, h, &only_q, true);
}

static void add_order(query_t *q)
{
    /* the same order either way (seq follows received_ms); written so that
     * the index in use already delivers it and nothing is sorted */
    add(q, q->indexed ? " ORDER BY r.received_ms DESC, r.seq DESC" : " ORDER BY r.seq DESC");
}

static sqlite3_stmt *prepare(sqlite3 *db, query_t *q)
{
    if (q->overflow) {
        LOG_ERROR("history", "query too long");
        return NULL;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, q->sql, (int)q->len, &s, NULL) != SQLITE_OK) {
        LOG_ERROR("history", "prepare failed: %s", sqlite3_errmsg(db));
        return NULL;
    }
    bind_all(s, q);
    return s;
}

static const char *col_text(sqlite3_stmt *s, int c) { return (const char *)sqlite3_column_text(s, c); }

/* The body at column c: NULL when not recorded, else NUL-terminated text
 * (sqlite3_column_text returns NULL for an empty blob, hence the type
 * check: an empty recorded body is "", not NULL). */
static const char *col_body(sqlite3_stmt *s, int c)
{
    if (sqlite3_column_type(s, c) == SQLITE_NULL)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(s, c);
    return t ? t : "";
}

static void read_row(sqlite3_stmt *s, rt_history_row_t *r, bool bodies)
{
    memset(r, 0, sizeof(*r));
    r->id = col_text(s, 0);
    r->received_ms = sqlite3_column_int64(s, 1);
    r->first_byte_ms = sqlite3_column_int64(s, 2);
    r->finished_ms = sqlite3_column_int64(s, 3);
    r->endpoint = col_text(s, 4);
    r->model = col_text(s, 5);
    r->node_id = col_text(s, 6);
    r->node_name = col_text(s, 7);
    r->attempts = sqlite3_column_int(s, 8);
    r->client_kind = col_text(s, 9);
    r->client_id = col_text(s, 10);
    r->client_name = col_text(s, 11);
    r->client_addr = col_text(s, 12);
    r->status = sqlite3_column_int(s, 13);
    r->error_type = col_text(s, 14);
    r->error_message = col_text(s, 15);
    r->duration_us = sqlite3_column_int64(s, 16);
    r->ttft_us = sqlite3_column_int64(s, 17);
    r->prompt_tokens = sqlite3_column_int64(s, 18);
    r->completion_tokens = sqlite3_column_int64(s, 19);
    r->total_tokens = sqlite3_column_int64(s, 20);
    r->stream = sqlite3_column_int(s, 21) != 0;
    r->request_len = (size_t)sqlite3_column_int64(s, 22);
    r->request_truncated = sqlite3_column_int(s, 23) != 0;
    r->response_len = (size_t)sqlite3_column_int64(s, 24);
    r->response_truncated = sqlite3_column_int(s, 25) != 0;
    if (bodies) {
        r->request_body = col_body(s, 26);
        r->response_body = col_body(s, 27);
    }
}

static void select_rows(query_t *q, rt_history_t *h, const rt_history_filter_t *f, bool bodies)
{
    add(q, "SELECT " ROW_COLS);
    add(q, bodies ? ", b.request_body, b.response_body" : "");
    add_source(q, h, f, bodies ? " LEFT JOIN bodies b ON b.seq = r.seq" : "");
    add_order(q);
}

/* Whether f bounds received_ms and nothing else (a q of blanks filters
 * nothing): the count is then the rollup's. */
static bool time_only(const rt_history_filter_t *f, const query_t *page)
{
    return !f || (!f->model && !f->node_id && !f->api_key_id && !f->status_code && f->status_class != 1 &&
                  f->status_class != 2 && !page->match);
}

static int count_rows(sqlite3 *db, rt_history_t *h, const rt_history_filter_t *f, const query_t *page,
                      int64_t *total)
{
    if (time_only(f, page)) {
        /* whole minutes from the rollup, the two partial ones counted by
         * rowid range: a handful of rows read whatever the window */
        int64_t lo = f && f->from_ms > 0 ? f->from_ms : 0, hi = f && f->to_ms > 0 ? f->to_ms : -1;
        return hist_range_count(db, lo, hi, total);
    }
    query_t q = { .len = 0 };
    add(&q, "SELECT count(*)");
    add_source(&q, h, f, "");
    sqlite3_stmt *s = prepare(db, &q);
    int rc = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        *total = sqlite3_column_int64(s, 0);
        rc = 0;
    }
    sqlite3_finalize(s);
    free(q.match);
    return rc;
}

int rt_history_list(rt_history_t *h, const rt_history_filter_t *f, int64_t offset, int limit, bool with_bodies,
                    void (*cb)(const rt_history_row_t *row, void *arg), void *arg, int64_t *total)
{
    sqlite3 *db = hist_reader(h);
    query_t q = { .len = 0 };
    int rc = -1;
    /* one read transaction: the page and the total see the same rows */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    select_rows(&q, h, f, with_bodies);
    add(&q, " LIMIT ? OFFSET ?");
    param_int(&q, limit < 0 ? 0 : limit);
    param_int(&q, offset < 0 ? 0 : offset);
    sqlite3_stmt *s = prepare(db, &q);
    if (!s)
        goto end;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        rt_history_row_t r;
        read_row(s, &r, with_bodies);
        cb(&r, arg);
    }
    sqlite3_finalize(s);
    if (step != SQLITE_DONE) {
        LOG_ERROR("history", "list failed: %s", sqlite3_errmsg(db));
        goto end;
    }
    rc = total ? count_rows(db, h, f, &q, total) : 0;
end:
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
out:
    free(q.match);
    hist_reader_done(h, db);
    return rc;
}

int rt_history_get(rt_history_t *h, const char *id, void (*cb)(const rt_history_row_t *row, void *arg), void *arg)
{
    sqlite3 *db = hist_reader(h);
    sqlite3_stmt *s = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT " ROW_COLS ", b.request_body, b.response_body FROM requests r"
                           " LEFT JOIN bodies b ON b.seq = r.seq WHERE r.id = ?1",
                           -1, &s, NULL) != SQLITE_OK) {
        LOG_ERROR("history", "prepare failed: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(s, 1, id ? id : "", -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        rt_history_row_t r;
        read_row(s, &r, true);
        cb(&r, arg);
        rc = 0;
    } else if (step == SQLITE_DONE) {
        rc = RT_HISTORY_NOTFOUND;
    } else {
        LOG_ERROR("history", "get failed: %s", sqlite3_errmsg(db));
    }
out:
    sqlite3_finalize(s);
    hist_reader_done(h, db);
    return rc;
}

int rt_history_export(rt_history_t *h, const rt_history_filter_t *f,
                      bool (*cb)(const rt_history_row_t *row, void *arg), void *arg)
{
    /* one statement stepped to the end on one connection: SQLite holds one
     * row at a time, whatever the count (the WAL cannot be checkpointed past
     * this snapshot until it ends) */
    sqlite3 *db = hist_reader(h);
    query_t q = { .len = 0 };
    select_rows(&q, h, f, true);
    sqlite3_stmt *s = prepare(db, &q);
    int rc = -1;
    if (!s)
        goto out;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        rt_history_row_t r;
        read_row(s, &r, true);
        if (!cb(&r, arg)) {
            step = SQLITE_DONE;
            break;
        }
    }
    if (step != SQLITE_DONE)
        LOG_ERROR("history", "export failed: %s", sqlite3_errmsg(db));
    else
        rc = 0;
out:
    sqlite3_finalize(s);
    free(q.match);
    hist_reader_done(h, db);
    return rc;
}

/* ---- aggregates ----
 *
 * From the rollup (history_rollup.c): a range reads one row per whole
 * minute and sums the rows of its partial first and last minutes. A
 * bucket_ms that is not a whole number of minutes falls back to a scan of
 * the rows (no p95 then). */

/* count, errors, prompt, completion, avg duration (us), completion tokens
 * and generation us of the rows with a known completion count (tokens_per_s) */
#define AGG_COLS                                                                                     \
    "count(*), total(r.failed), total(max(r.prompt_tokens, 0)), total(max(r.completion_tokens, 0)),"  \
    " avg(r.duration_us),"                                                                           \
    " total(CASE WHEN r.completion_tokens > 0 THEN r.completion_tokens END),"                       \
    " total(CASE WHEN r.completion_tokens > 0 THEN"                                                  \
    "   CASE WHEN r.stream AND r.ttft_us >= 0 AND r.duration_us >= r.ttft_us"                        \
    "   THEN r.duration_us - r.ttft_us ELSE r.duration_us END END)"

static void read_agg(sqlite3_stmt *s, int c, rt_history_agg_t *a)
{
    a->count = sqlite3_column_int64(s, c);
    a->errors = (int64_t)sqlite3_column_double(s, c + 1);
    a->prompt_tokens = (int64_t)sqlite3_column_double(s, c + 2);
    a->completion_tokens = (int64_t)sqlite3_column_double(s, c + 3);
    a->avg_ms = sqlite3_column_double(s, c + 4) / 1000.0;
    double tok = sqlite3_column_double(s, c + 5), gen_us = sqlite3_column_double(s, c + 6);
    a->tokens_per_s = gen_us > 0 ? tok / (gen_us / 1e6) : 0;
}

static int64_t clamp_ms(int64_t ms) { return ms < 0 ? 0 : ms > MS_MAX - 1 ? MS_MAX - 1 : ms; }

static int scan_buckets(sqlite3 *db, int64_t bucket_ms, int64_t from_ms, int64_t to_ms,
                        void (*cb)(const rt_history_agg_t *b, void *arg), void *arg)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT (r.received_ms / ?1) * ?1 AS t, " AGG_COLS " FROM requests r"
                           " WHERE r.seq >= ?2 AND r.seq < ?3 GROUP BY t ORDER BY t",
                           -1, &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(s, 1, bucket_ms);
    sqlite3_bind_int64(s, 2, clamp_ms(from_ms) << HIST_SEQ_BITS);
    sqlite3_bind_int64(s, 3, (clamp_ms(to_ms) + 1) << HIST_SEQ_BITS);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        rt_history_agg_t a = { .start_ms = sqlite3_column_int64(s, 0) };
        read_agg(s, 1, &a);
        cb(&a, arg);
    }
    if (step == SQLITE_DONE)
        rc = 0;
out:
    sqlite3_finalize(s);
    return rc;
}

/* Minutes folded into buckets of bucket_ms (a multiple of a minute). */
typedef struct {
    int64_t bucket_ms;
    hist_minute_t cur; /* cur.minute: the open bucket's start, -1 none */
    void (*cb)(const rt_history_agg_t *b, void *arg);
    void *arg;
} fold_t;

static void fold_emit(fold_t *f)
{
    if (f->cur.minute < 0 || f->cur.count <= 0)
        return;
    rt_history_agg_t a = { .start_ms = f->cur.minute };
    hist_minute_agg(&f->cur, &a);
    f->cb(&a, f->arg);
}

static void fold_minute(const hist_minute_t *m, void *arg)
{
    fold_t *f = arg;
    int64_t start = m->minute / f->bucket_ms * f->bucket_ms;
    if (start != f->cur.minute) {
        fold_emit(f);
        memset(&f->cur, 0, sizeof(f->cur));
        f->cur.minute = start;
    }
    hist_minute_merge(&f->cur, m);
}

int rt_history_buckets(rt_history_t *h, int64_t bucket_ms, int64_t from_ms, int64_t to_ms,
                       void (*cb)(const rt_history_agg_t *b, void *arg), void *arg)
{
    if (bucket_ms <= 0)
        return -1;
    sqlite3 *db = hist_reader(h);
    int rc = -1;
    /* one read transaction: the rollup and the edge rows agree */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    if (bucket_ms % HIST_MINUTE_MS != 0) {
        rc = scan_buckets(db, bucket_ms, from_ms, to_ms, cb, arg);
    } else {
        fold_t f = { .bucket_ms = bucket_ms, .cur = { .minute = -1 }, .cb = cb, .arg = arg };
        rc = hist_range(db, clamp_ms(from_ms), clamp_ms(to_ms), fold_minute, &f);
        if (rc == 0)
            fold_emit(&f);
    }
    if (rc != 0)
        LOG_ERROR("history", "buckets failed: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
out:
    hist_reader_done(h, db);
    return rc;
}

static void sum_minute(const hist_minute_t *m, void *arg) { hist_minute_merge(arg, m); }

int rt_history_summary(rt_history_t *h, int64_t since_ms, rt_history_agg_t *out)
{
    memset(out, 0, sizeof(*out));
    out->start_ms = since_ms;
    sqlite3 *db = hist_reader(h);
    int rc = -1;
    hist_minute_t all = { .minute = 0 };
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    rc = hist_range(db, clamp_ms(since_ms), -1, sum_minute, &all);
    if (rc == 0)
        hist_minute_agg(&all, out);
    else
        LOG_ERROR("history", "summary failed: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
out:
    hist_reader_done(h, db);
    return rc;
}
