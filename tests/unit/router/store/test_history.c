/* Unit tests of router/src/store/history.c and history_query.c, on a real
 * SQLite file in a temporary directory. */
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

static char g_dir[256];

static char *db_path(const char *name) { return cm_xasprintf("%s/sub/%s", g_dir, name); }

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/llmr-test-history-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = cm_xasprintf("rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

static rt_history_t *open_at(const char *name, bool no_fts)
{
    char *path = db_path(name);
    rt_history_t *h = NULL;
    char err[256] = "";
    rt_history_opts_t o = { .fts = !no_fts };
    int rc = rt_history_open_ex(path, &o, &h, err, sizeof(err));
    if (rc != 0)
        print_error("open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(h);
    free(path);
    return h;
}

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

static void count_cb(const rt_history_row_t *r, void *arg)
{
    (void)r;
    (*(int *)arg)++;
}

static void *reader_main(void *p)
{
    writer_arg_t *w = p;
    for (int i = 0; i < 200; i++) {
        int n = 0;
        int64_t total = 0;
        rt_history_filter_t f = { .model = "m", .status_class = i % 3, .q = i % 2 ? "hello" : NULL };
        if (rt_history_list(w->h, &f, 0, 20, i % 2, count_cb, &n, &total) != 0 || n > 20 || total < n)
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
    assert_int_equal(rt_history_list(h, &f, 0, 1, false, count_cb, &n, &total), 0);
    assert_int_equal(total, model_count(m, from, to > 0 ? to : -1));
    /* the same count through the indexed path agrees */
    rt_history_filter_t g = { .model = "m", .from_ms = from, .to_ms = to };
    int64_t total2 = -1;
    assert_int_equal(rt_history_list(h, &g, 0, 1, false, count_cb, &n, &total2), 0);
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
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_file_setup),
        cmocka_unit_test(test_list_filters), cmocka_unit_test(test_paging),
        cmocka_unit_test(test_q_fts),       cmocka_unit_test(test_q_scan),
        cmocka_unit_test(test_export),      cmocka_unit_test(test_aggregates),
        cmocka_unit_test(test_prune),       cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_rollup_random), cmocka_unit_test(test_rollup_migration),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
