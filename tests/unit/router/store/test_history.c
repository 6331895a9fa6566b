/* Unit tests of router/src/store/history.c and history_query.c, on a real
 * SQLite file in a temporary directory. The rollup's tests are in
 * test_history_rollup.c. */
#include "history_fixture.h"
#include "store/history.h"

#include "util.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

/* ---- a copy of a row, to compare after the callback returned ---- */

typedef struct {
    rt_history_row_t r;
    char *s[13];
    char *req, *resp;
} saved_t;

static char *dup_or_null(const char *s) { return s ? cm_xstrdup(s) : NULL; }

static char *dup_body(const char *b, size_t n)
{
    if (!b)
        return NULL;
    char *c = cm_xmalloc(n + 1);
    memcpy(c, b, n);
    c[n] = '\0';
    return c;
}

static void save_row(saved_t *o, const rt_history_row_t *r)
{
    o->r = *r;
    const char *src[13] = { r->id, r->endpoint, r->model, r->node_id, r->node_name, r->client_kind, r->client_id,
                            r->client_name, r->client_addr, r->error_type, r->error_message, NULL, NULL };
    for (int i = 0; i < 11; i++)
        o->s[i] = dup_or_null(src[i]);
    o->r.id = o->s[0];
    o->r.endpoint = o->s[1];
    o->r.model = o->s[2];
    o->r.node_id = o->s[3];
    o->r.node_name = o->s[4];
    o->r.client_kind = o->s[5];
    o->r.client_id = o->s[6];
    o->r.client_name = o->s[7];
    o->r.client_addr = o->s[8];
    o->r.error_type = o->s[9];
    o->r.error_message = o->s[10];
    /* the NUL after the body is part of the contract */
    if (r->request_body)
        assert_int_equal(r->request_body[r->request_len], '\0');
    if (r->response_body)
        assert_int_equal(r->response_body[r->response_len], '\0');
    o->req = dup_body(r->request_body, r->request_len);
    o->resp = dup_body(r->response_body, r->response_len);
    o->r.request_body = o->req;
    o->r.response_body = o->resp;
}

static void free_saved(saved_t *o)
{
    for (int i = 0; i < 13; i++)
        free(o->s[i]);
    free(o->req);
    free(o->resp);
    memset(o, 0, sizeof(*o));
}

static void on_get(const rt_history_row_t *r, void *arg) { save_row(arg, r); }

static void assert_str_or_null(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_rows_equal(const rt_history_row_t *a, const rt_history_row_t *b, bool bodies)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->received_ms, b->received_ms);
    assert_int_equal(a->first_byte_ms, b->first_byte_ms);
    assert_int_equal(a->finished_ms, b->finished_ms);
    assert_str_or_null(a->endpoint, b->endpoint);
    assert_str_or_null(a->model, b->model);
    assert_str_or_null(a->node_id, b->node_id);
    assert_str_or_null(a->node_name, b->node_name);
    assert_int_equal(a->attempts, b->attempts);
    assert_str_or_null(a->client_kind, b->client_kind);
    assert_str_or_null(a->client_id, b->client_id);
    assert_str_or_null(a->client_name, b->client_name);
    assert_str_or_null(a->client_addr, b->client_addr);
    assert_int_equal(a->status, b->status);
    assert_str_or_null(a->error_type, b->error_type);
    assert_str_or_null(a->error_message, b->error_message);
    assert_int_equal(a->duration_us, b->duration_us);
    assert_int_equal(a->ttft_us, b->ttft_us);
    assert_int_equal(a->prompt_tokens, b->prompt_tokens);
    assert_int_equal(a->completion_tokens, b->completion_tokens);
    assert_int_equal(a->total_tokens, b->total_tokens);
    assert_int_equal(a->stream, b->stream);
    assert_int_equal(a->request_len, b->request_len);
    assert_int_equal(a->request_truncated, b->request_truncated);
    assert_int_equal(a->response_len, b->response_len);
    assert_int_equal(a->response_truncated, b->response_truncated);
    if (!bodies)
        return;
    assert_ptr_equal(a->request_body == NULL, b->request_body == NULL);
    assert_ptr_equal(a->response_body == NULL, b->response_body == NULL);
    if (a->request_body)
        assert_memory_equal(a->request_body, b->request_body, a->request_len);
    if (a->response_body)
        assert_memory_equal(a->response_body, b->response_body, a->response_len);
}

/* ---- round trip ---- */

static void test_round_trip(void **state)
{
    (void)state;
    rt_history_t *h = open_at("rt.db", false);
    static const char bin[] = { 'a', '\0', 'b', (char)0xff, (char)0xfe, '\n', '"', 'z' };
    rt_history_row_t full = {
        .id = "req-0-1-1", .received_ms = 1700000000123, .first_byte_ms = 1700000000200,
        .finished_ms = 1700000000900, .endpoint = "/v1/chat/completions", .model = "m1",
        .node_id = "n1", .node_name = "node one", .attempts = 2, .client_kind = "api_key",
        .client_id = "k1", .client_name = "key one", .client_addr = "127.0.0.1", .status = 200,
        .duration_us = 777000, .ttft_us = 77000, .prompt_tokens = 11, .completion_tokens = 22,
        .total_tokens = 33, .stream = true, .request_body = bin, .request_len = sizeof(bin),
        .request_truncated = true, .response_body = "{\"ok\":true}", .response_len = 11,
        .response_truncated = false,
    };
    /* every optional field NULL, unknown numbers, an empty recorded body */
    rt_history_row_t bare = {
        .id = "req-bare", .received_ms = 1700000000500, .attempts = 0, .status = 502,
        .error_type = "upstream_error", .error_message = "node broke", .duration_us = 5, .ttft_us = -1,
        .prompt_tokens = -1, .completion_tokens = -1, .total_tokens = -1, .request_body = "",
        .request_len = 0, .response_body = NULL, .response_len = 4321, .response_truncated = true,
    };
    rt_history_row_t rows[2] = { full, bare };
    assert_int_equal(rt_history_insert(h, rows, 2), 0);
    assert_int_equal(rt_history_count(h), 2);

    saved_t got = { 0 };
    assert_int_equal(rt_history_get(h, "req-0-1-1", on_get, &got), 0);
    assert_rows_equal(&got.r, &full, true);
    free_saved(&got);
    assert_int_equal(rt_history_get(h, "req-bare", on_get, &got), 0);
    assert_rows_equal(&got.r, &bare, true);
    assert_non_null(got.r.request_body); /* recorded and empty: "" not NULL */
    assert_int_equal(got.r.request_len, 0);
    assert_null(got.r.response_body);
    assert_null(got.r.model);
    assert_null(got.r.node_id);
    free_saved(&got);

    assert_int_equal(rt_history_get(h, "nope", on_get, &got), RT_HISTORY_NOTFOUND);
    assert_int_equal(rt_history_get(h, "", on_get, &got), RT_HISTORY_NOTFOUND);

    /* a duplicate id replaces the older row (and its bodies) */
    rt_history_row_t again = full;
    again.received_ms = full.received_ms + 5000;
    again.status = 404;
    again.request_body = "second";
    again.request_len = 6;
    assert_int_equal(rt_history_insert(h, &again, 1), 0);
    assert_int_equal(rt_history_count(h), 2);
    assert_int_equal(rt_history_get(h, "req-0-1-1", on_get, &got), 0);
    assert_rows_equal(&got.r, &again, true);
    free_saved(&got);
    rt_history_close(h);
}

static void test_file_setup(void **state)
{
    (void)state;
    rt_history_t *h = open_at("modes.db", false);
    assert_true(rt_history_has_fts(h));
    rt_history_close(h);
    char *path = db_path("modes.db");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *dir = cm_xasprintf("%s/sub", g_dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    const char *checks[][2] = { { "PRAGMA auto_vacuum", "2" },
                                { "PRAGMA journal_mode", "wal" },
                                { "PRAGMA user_version", "2" } };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sqlite3_prepare_v2(db, checks[i][0], -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(s, 0), checks[i][1]);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    /* plain rt_history_open: no FTS table (its write cost, see history.h) */
    char *plain = db_path("plain.db");
    rt_history_t *hp = NULL;
    char perr[256];
    assert_int_equal(rt_history_open(plain, &hp, perr, sizeof(perr)), 0);
    assert_false(rt_history_has_fts(hp));
    rt_history_close(hp);
    free(plain);
    /* a version from the future is refused */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rt_history_t *h2 = NULL;
    char err[256];
    assert_int_equal(rt_history_open(path, &h2, err, sizeof(err)), -1);
    assert_null(h2);
    assert_non_null(strstr(err, "99"));
    free(path);
    free(dir);
}

/* ---- a data set with known attributes ---- */

#define N_SET 120
#define T0 1700000000000LL

typedef struct {
    char id[32], model[8], node[8], key[8];
    char req[64], resp[64];
    rt_history_row_t r;
} fixture_t;

static fixture_t g_set[N_SET];

static const char *const g_words[] = { "apple", "banana", "cherry" };

static void build_set(void)
{
    for (int i = 0; i < N_SET; i++) {
        fixture_t *x = &g_set[i];
        snprintf(x->id, sizeof(x->id), "req-%03d", i);
        snprintf(x->model, sizeof(x->model), "m%d", i % 3);
        snprintf(x->node, sizeof(x->node), "n%d", i % 4);
        snprintf(x->key, sizeof(x->key), "k%d", i % 5);
        snprintf(x->req, sizeof(x->req), "{\"prompt\":\"tell me about %s number %d\"}", g_words[i % 3], i);
        snprintf(x->resp, sizeof(x->resp), "answer %s%s", i % 7 == 0 ? "Zebra " : "", "done");
        int status = i % 10 == 0 ? 500 : i % 10 == 1 ? 404 : i % 10 == 2 ? 429 : 200;
        /* two rows per millisecond: ties are newest-inserted first */
        x->r = (rt_history_row_t){
            .id = x->id, .received_ms = T0 + (i / 2) * 1000, .finished_ms = T0 + (i / 2) * 1000 + 10,
            .endpoint = "/v1/chat/completions", .model = x->model, .node_id = x->node, .attempts = 1,
            .client_kind = "api_key", .client_id = x->key, .status = status,
            .duration_us = 1000 * (i + 1), .ttft_us = i % 2 ? 100 * (i + 1) : -1,
            .prompt_tokens = 10, .completion_tokens = i % 2 ? i : -1, .total_tokens = 10 + (i % 2 ? i : 0),
            .stream = i % 2 == 1, .request_body = x->req, .request_len = strlen(x->req),
            .response_body = x->resp, .response_len = strlen(x->resp),
        };
    }
}

static rt_history_t *open_with_set(const char *name, bool no_fts)
{
    build_set();
    rt_history_t *h = open_at(name, no_fts);
    /* in three batches, out of order */
    rt_history_row_t rows[N_SET];
    for (int i = 0; i < N_SET; i++)
        rows[i] = g_set[i].r;
    assert_int_equal(rt_history_insert(h, rows + 80, 40), 0);
    assert_int_equal(rt_history_insert(h, rows, 40), 0);
    assert_int_equal(rt_history_insert(h, rows + 40, 40), 0);
    return h;
}

/* Rows inserted in the order 80..119, 0..39, 40..79: within one ms the
 * newest-inserted (the higher index here, same batch) comes first. The
 * expected order is by received_ms desc, then index desc. */
static bool matches(const fixture_t *x, const rt_history_filter_t *f)
{
    const rt_history_row_t *r = &x->r;
    if (f->model && strcmp(r->model, f->model) != 0)
        return false;
    if (f->node_id && strcmp(r->node_id, f->node_id) != 0)
        return false;
    if (f->api_key_id && strcmp(r->client_id, f->api_key_id) != 0)
        return false;
    if (f->status_class == 1 && r->status >= 400)
        return false;
    if (f->status_class == 2 && r->status < 400)
        return false;
    if (f->status_code && r->status != f->status_code)
        return false;
    if (f->from_ms && r->received_ms < f->from_ms)
        return false;
    if (f->to_ms && r->received_ms > f->to_ms)
        return false;
    return true;
}

typedef struct {
    char ids[N_SET][32];
    int n;
    bool bodies_seen;
} collect_t;

static void on_list(const rt_history_row_t *r, void *arg)
{
    collect_t *c = arg;
    assert_true(c->n < N_SET);
    snprintf(c->ids[c->n++], 32, "%s", r->id);
    if (r->request_body || r->response_body)
        c->bodies_seen = true;
    assert_true(r->request_len > 0);
}

static int expected(const rt_history_filter_t *f, const char *word, int *out)
{
    int n = 0;
    for (int i = N_SET - 1; i >= 0; i--)
        if (matches(&g_set[i], f) && (!word || strstr(g_set[i].req, word) || strstr(g_set[i].resp, word)))
            out[n++] = i;
    return n;
}

static void check_list(rt_history_t *h, const rt_history_filter_t *f, const char *word)
{
    int exp[N_SET];
    int ne = expected(f, word, exp);
    collect_t c = { .n = 0 };
    int64_t total = -1;
    assert_int_equal(rt_history_list(h, f, 0, N_SET, false, on_list, &c, &total), 0);
    assert_int_equal(total, ne);
    assert_int_equal(c.n, ne);
    assert_false(c.bodies_seen);
    for (int i = 0; i < ne; i++)
        assert_string_equal(c.ids[i], g_set[exp[i]].id);
}

static void test_list_filters(void **state)
{
    (void)state;
    rt_history_t *h = open_with_set("filters.db", false);
    const rt_history_filter_t filters[] = {
        { 0 },
        { .model = "m1" },
        { .model = "absent" },
        { .node_id = "n2" },
        { .api_key_id = "k3" },
        { .status_class = 1 },
        { .status_class = 2 },
        { .status_code = 404 },
        { .status_code = 200 },
        { .status_class = 2, .status_code = 429 },
        { .status_class = 1, .status_code = 500 }, /* contradictory: none */
        { .from_ms = T0 + 10000 },
        { .to_ms = T0 + 10000 },
        { .from_ms = T0 + 10000, .to_ms = T0 + 20000 },
        { .model = "m0", .from_ms = T0 + 5000, .to_ms = T0 + 40000 },
        { .model = "m2", .node_id = "n1" },
        { .model = "m2", .node_id = "n1", .api_key_id = "k0" },
        { .node_id = "n0", .status_class = 2 },
        { .api_key_id = "k1", .status_class = 1, .from_ms = T0 + 20000 },
        { .model = "m0", .node_id = "n0", .api_key_id = "k0", .status_code = 500, .from_ms = T0,
          .to_ms = T0 + 59000 },
    };
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        check_list(h, &filters[i], NULL);

    /* hand-checked: model m0 and node n0 -> i % 12 == 0; errors among them
     * (i % 10 in 0, 1, 2): 0, 12, 60, 72 -> newest first */
    rt_history_filter_t f = { .model = "m0", .node_id = "n0", .status_class = 2 };
    collect_t c = { .n = 0 };
    int64_t total = 0;
    assert_int_equal(rt_history_list(h, &f, 0, 50, false, on_list, &c, &total), 0);
    assert_int_equal(total, 4);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.ids[0], "req-072");
    assert_string_equal(c.ids[1], "req-060");
    assert_string_equal(c.ids[2], "req-012");
    assert_string_equal(c.ids[3], "req-000");

    /* ties within one millisecond: the later inserted first (41 after 40) */
    rt_history_filter_t tie = { .from_ms = T0 + 20000, .to_ms = T0 + 20000 };
    c.n = 0;
    assert_int_equal(rt_history_list(h, &tie, 0, 50, true, on_list, &c, &total), 0);
    assert_int_equal(total, 2);
    assert_string_equal(c.ids[0], "req-041");
    assert_string_equal(c.ids[1], "req-040");
    assert_true(c.bodies_seen);
    rt_history_close(h);
}

static void test_paging(void **state)
{
    (void)state;
    rt_history_t *h = open_with_set("paging.db", false);
    rt_history_filter_t f = { .status_class = 1 };
    int exp[N_SET];
    int ne = expected(&f, NULL, exp);
    int seen = 0;
    for (int64_t off = 0; off < ne + 7; off += 7) {
        collect_t c = { .n = 0 };
        int64_t total = -1;
        assert_int_equal(rt_history_list(h, &f, off, 7, false, on_list, &c, &total), 0);
        assert_int_equal(total, ne);
        int want = ne - off < 7 ? (int)(ne - off) : 7;
        if (want < 0)
            want = 0;
        assert_int_equal(c.n, want);
        for (int i = 0; i < c.n; i++)
            assert_string_equal(c.ids[i], g_set[exp[seen++]].id);
    }
    assert_int_equal(seen, ne);
    /* total is optional; a zero limit lists nothing */
    collect_t c = { .n = 0 };
    assert_int_equal(rt_history_list(h, NULL, 0, 0, false, on_list, &c, NULL), 0);
    assert_int_equal(c.n, 0);
    rt_history_close(h);
}

static void run_q(bool no_fts)
{
    rt_history_t *h = open_with_set(no_fts ? "q-scan.db" : "q-fts.db", no_fts);
    assert_int_equal(rt_history_has_fts(h), !no_fts);
    rt_history_filter_t f = { .q = "banana" };
    check_list(h, &f, "banana");
    f.q = "Zebra";
    check_list(h, &f, "Zebra");
    f.model = "m1";
    f.status_class = 1;
    check_list(h, &f, "Zebra");
    f = (rt_history_filter_t){ .q = "cherry", .from_ms = T0 + 30000 };
    check_list(h, &f, "cherry");
    f = (rt_history_filter_t){ .q = "durian" };
    check_list(h, &f, "durian");
    /* FTS syntax in q is text, not an operator, and never an error */
    const char *hostile[] = { "\"", "apple OR banana", "NEAR(a b)", "*", "a\"b", "-x", "^", "()" };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        collect_t c = { .n = 0 };
        int64_t total = -1;
        f = (rt_history_filter_t){ .q = hostile[i] };
        assert_int_equal(rt_history_list(h, &f, 0, 10, false, on_list, &c, &total), 0);
        if (i == 1) /* both words and the word OR: none has all three */
            assert_int_equal(total, 0);
    }
    /* blanks only filter nothing */
    f = (rt_history_filter_t){ .q = "  " };
    check_list(h, &f, NULL);
    rt_history_close(h);
}

static void test_q_fts(void **state)
{
    (void)state;
    run_q(false);
    /* with FTS, words match case-insensitively and as whole words */
    rt_history_t *h = open_with_set("q-case.db", false);
    rt_history_filter_t f = { .q = "ZEBRA done" };
    check_list(h, &f, "Zebra");
    f.q = "zeb";
    check_list(h, &f, "no such text");
    rt_history_close(h);
}

static void test_q_scan(void **state)
{
    (void)state;
    run_q(true);
}

/* ---- export ---- */

typedef struct {
    int n, stop_at;
    char last[32];
} export_t;

static bool on_export(const rt_history_row_t *r, void *arg)
{
    export_t *e = arg;
    assert_non_null(r->request_body);
    assert_non_null(r->response_body);
    if (e->n > 0) /* newest first: ids descend in this set (see build_set) */
        assert_true(strcmp(r->id, e->last) < 0);
    snprintf(e->last, sizeof(e->last), "%s", r->id);
    e->n++;
    return e->stop_at == 0 || e->n < e->stop_at;
}

static void test_export(void **state)
{
    (void)state;
    rt_history_t *h = open_with_set("export.db", false);
    export_t e = { 0 };
    assert_int_equal(rt_history_export(h, NULL, on_export, &e), 0);
    assert_int_equal(e.n, N_SET);
    assert_string_equal(e.last, "req-000");
    e = (export_t){ .stop_at = 5 };
    assert_int_equal(rt_history_export(h, NULL, on_export, &e), 0);
    assert_int_equal(e.n, 5);
    rt_history_filter_t f = { .model = "m1", .status_class = 2 };
    int exp[N_SET];
    int ne = expected(&f, NULL, exp);
    e = (export_t){ 0 };
    assert_int_equal(rt_history_export(h, &f, on_export, &e), 0);
    assert_int_equal(e.n, ne);
    /* the pool is whole again: N reads after an early stop still work */
    for (int i = 0; i < 10; i++)
        assert_int_equal(rt_history_count(h), N_SET);
    rt_history_close(h);
}

/* ---- aggregates ---- */

typedef struct {
    rt_history_agg_t b[N_SET];
    int n;
} buckets_t;

static void on_bucket(const rt_history_agg_t *b, void *arg)
{
    buckets_t *bs = arg;
    assert_true(bs->n < N_SET);
    bs->b[bs->n++] = *b;
}

static void test_aggregates(void **state)
{
    (void)state;
    rt_history_t *h = open_with_set("agg.db", false);
    /* minute buckets: rows i have received T0 + (i/2) s, so the 60 s of
     * T0 (1700000000000 is 20 s past a minute) split 40 / 80 rows */
    buckets_t bs = { .n = 0 };
    assert_int_equal(rt_history_buckets(h, 60000, T0, T0 + 3600000, on_bucket, &bs), 0);
    int64_t minute0 = (T0 / 60000) * 60000;
    int64_t cut = minute0 + 60000; /* rows with received < cut go to bucket 0 */
    int64_t exp_count[3] = { 0 }, exp_err[3] = { 0 }, exp_comp[3] = { 0 };
    double exp_dur[3] = { 0 }, gen[3] = { 0 }, tok[3] = { 0 };
    for (int i = 0; i < N_SET; i++) {
        const rt_history_row_t *r = &g_set[i].r;
        int b = (int)((r->received_ms - minute0) / 60000);
        assert_true(b >= 0 && b < 3);
        exp_count[b]++;
        exp_err[b] += r->status >= 400;
        exp_comp[b] += r->completion_tokens > 0 ? r->completion_tokens : 0;
        exp_dur[b] += (double)r->duration_us;
        if (r->completion_tokens > 0) {
            tok[b] += (double)r->completion_tokens;
            gen[b] += (double)(r->stream && r->ttft_us >= 0 ? r->duration_us - r->ttft_us : r->duration_us);
        }
    }
    (void)cut;
    int nb = 0;
    for (int b = 0; b < 3; b++)
        if (exp_count[b])
            nb++;
    assert_int_equal(bs.n, nb);
    int k = 0;
    for (int b = 0; b < 3; b++) {
        if (!exp_count[b])
            continue;
        rt_history_agg_t *a = &bs.b[k++];
        assert_int_equal(a->start_ms, minute0 + b * 60000);
        assert_int_equal(a->count, exp_count[b]);
        assert_int_equal(a->errors, exp_err[b]);
        assert_int_equal(a->prompt_tokens, exp_count[b] * 10);
        assert_int_equal(a->completion_tokens, exp_comp[b]);
        assert_float_equal(a->avg_ms, exp_dur[b] / (double)exp_count[b] / 1000.0, 1e-6);
        assert_float_equal(a->tokens_per_s, gen[b] > 0 ? tok[b] / (gen[b] / 1e6) : 0, 1e-6);
        assert_true(a->p95_ms > 0); /* approximate: checked in test_rollup_* */
    }
    /* hour buckets: one */
    bs.n = 0;
    assert_int_equal(rt_history_buckets(h, 3600000, T0, T0 + 3600000, on_bucket, &bs), 0);
    assert_int_equal(bs.n, 1);
    assert_int_equal(bs.b[0].count, N_SET);
    /* a window with nothing */
    bs.n = 0;
    assert_int_equal(rt_history_buckets(h, 60000, T0 + 7200000, T0 + 9000000, on_bucket, &bs), 0);
    assert_int_equal(bs.n, 0);

    /* summary since row 20 (received T0 + 10 s): 100 rows, durations
     * 21..120 ms -> p95 by nearest rank is the 95th shortest: 115 ms,
     * estimated within its rollup bucket */
    rt_history_agg_t s;
    assert_int_equal(rt_history_summary(h, T0 + 10000, &s), 0);
    assert_int_equal(s.count, 100);
    int64_t errs = 0;
    for (int i = 20; i < N_SET; i++)
        errs += g_set[i].r.status >= 400;
    assert_int_equal(s.errors, errs);
    assert_float_equal(s.avg_ms, (21.0 + 120.0) / 2.0, 1e-9);
    int64_t lo, hi;
    rt_history_latency_bucket(115000, &lo, &hi);
    assert_true(s.p95_ms >= (double)lo / 1000 && s.p95_ms <= (double)hi / 1000);
    assert_int_equal(rt_history_summary(h, T0 + 999999999, &s), 0);
    assert_int_equal(s.count, 0);
    assert_float_equal(s.p95_ms, 0, 0);
    assert_float_equal(s.tokens_per_s, 0, 0);
    rt_history_close(h);
}

/* ---- pruning ---- */

static int64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int64_t)st.st_size;
}

static void test_prune(void **state)
{
    (void)state;
    rt_history_t *h = open_with_set("prune.db", false);
    /* rows with received < T0 + 30 s: i < 60 */
    rt_history_prune_stats_t st;
    assert_int_equal(rt_history_prune_ex(h, T0 + 30000, 7, &st), 60);
    assert_int_equal(st.deleted, 60);
    assert_int_equal(st.batches, 9); /* 60 rows by 7 */
    assert_int_equal(rt_history_count(h), 60);
    saved_t got = { 0 };
    assert_int_equal(rt_history_get(h, "req-059", on_get, &got), RT_HISTORY_NOTFOUND);
    assert_int_equal(rt_history_get(h, "req-060", on_get, &got), 0);
    free_saved(&got);
    /* the FTS entries of pruned rows are gone too, the others remain */
    rt_history_filter_t f = { .q = "apple" };
    int exp[N_SET], ne = 0;
    for (int i = N_SET - 1; i >= 60; i--)
        if (strstr(g_set[i].req, "apple"))
            exp[ne++] = i;
    collect_t c = { .n = 0 };
    int64_t total = -1;
    assert_int_equal(rt_history_list(h, &f, 0, N_SET, false, on_list, &c, &total), 0);
    assert_int_equal(total, ne);
    for (int i = 0; i < ne; i++)
        assert_string_equal(c.ids[i], g_set[exp[i]].id);
    /* nothing older is left */
    assert_int_equal(rt_history_prune(h, T0 + 30000, 0), 0);
    rt_history_close(h);

    /* the file shrinks after the prune of most of its rows */
    h = open_at("shrink.db", false);
    char *body = cm_xmalloc(4096);
    memset(body, 'x', 4095);
    body[4095] = '\0';
    enum { N = 4000, B = 200 };
    rt_history_row_t rows[B];
    char ids[B][32];
    for (int base = 0; base < N; base += B) {
        for (int i = 0; i < B; i++) {
            snprintf(ids[i], sizeof(ids[i]), "big-%d", base + i);
            rows[i] = (rt_history_row_t){ .id = ids[i], .received_ms = T0 + base + i, .status = 200,
                                          .request_body = body, .request_len = 4095,
                                          .response_body = body, .response_len = 2000, .ttft_us = -1 };
        }
        assert_int_equal(rt_history_insert(h, rows, B), 0);
    }
    char *path = db_path("shrink.db");
    /* fold the WAL in so that the file holds every page */
    rt_history_close(h);
    h = open_at("shrink.db", false);
    int64_t before = file_size(path);
    assert_int_equal(rt_history_prune_ex(h, T0 + N - 100, 500, &st), N - 100);
    assert_true(st.vacuum_steps >= 1);
    rt_history_close(h);
    int64_t after = file_size(path);
    assert_true(after < before / 4);
    h = open_at("shrink.db", false);
    assert_int_equal(rt_history_count(h), 100);
    rt_history_close(h);
    free(path);
    free(body);
}

/* ---- concurrency and reopening ---- */

typedef struct {
    rt_history_t *h;
    int batches;
    int failures;
} writer_arg_t;

static void *writer_main(void *p)
{
    writer_arg_t *w = p;
    rt_history_row_t rows[50];
    char ids[50][32];
    for (int b = 0; b < w->batches; b++) {
        for (int i = 0; i < 50; i++) {
            snprintf(ids[i], sizeof(ids[i]), "c-%d-%d", b, i);
            rows[i] = (rt_history_row_t){ .id = ids[i], .received_ms = T0 + b * 50 + i, .model = "m",
                                          .status = i % 9 ? 200 : 503, .request_body = "hello world",
                                          .request_len = 11, .ttft_us = -1 };
        }
        if (rt_history_insert(w->h, rows, 50) != 0)
            w->failures++;
    }
    return NULL;
}

static void *reader_main(void *p)
{
    writer_arg_t *w = p;
    for (int i = 0; i < 200; i++) {
        int n = 0;
        int64_t total = 0;
        rt_history_filter_t f = { .model = "m", .status_class = i % 3, .q = i % 2 ? "hello" : NULL };
        if (rt_history_list(w->h, &f, 0, 20, i % 2, count_rows, &n, &total) != 0 || n > 20 || total < n)
            w->failures++;
        rt_history_agg_t a;
        if (rt_history_summary(w->h, T0, &a) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    rt_history_t *h = open_at("concurrent.db", false);
    writer_arg_t w = { .h = h, .batches = 100 }, r1 = { .h = h }, r2 = { .h = h };
    pthread_t tw, t1, t2;
    assert_int_equal(pthread_create(&tw, NULL, writer_main, &w), 0);
    assert_int_equal(pthread_create(&t1, NULL, reader_main, &r1), 0);
    assert_int_equal(pthread_create(&t2, NULL, reader_main, &r2), 0);
    pthread_join(tw, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(w.failures + r1.failures + r2.failures, 0);
    assert_int_equal(rt_history_count(h), 5000);
    rt_history_close(h);

    /* reopening keeps every row */
    h = open_at("concurrent.db", false);
    assert_int_equal(rt_history_count(h), 5000);
    saved_t got = { 0 };
    assert_int_equal(rt_history_get(h, "c-99-49", on_get, &got), 0);
    assert_int_equal(got.r.received_ms, T0 + 99 * 50 + 49);
    assert_string_equal(got.req, "hello world");
    free_saved(&got);
    rt_history_close(h);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_file_setup),
        cmocka_unit_test(test_list_filters), cmocka_unit_test(test_paging),
        cmocka_unit_test(test_q_fts),       cmocka_unit_test(test_q_scan),
        cmocka_unit_test(test_export),      cmocka_unit_test(test_aggregates),
        cmocka_unit_test(test_prune),       cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
