/* history_bench: the request history store at scale (a tool, not a test).
 *
 *   history_bench [-n ROWS] [-f FILE] [-b BATCH] [-s BODY_BYTES] [-r RUNS]
 *                 [--fts] [--phases fill,list,agg,export,prune]
 *
 * fill:   ROWS rows (default 10,000,000) in batches of BATCH (256) into
 *         FILE (default /tmp/llmr-history-bench.db; an existing file is
 *         reused and only topped up to ROWS); 20 models, 50 nodes, 200 keys,
 *         5% errors, 7 days of timestamps ending now, bodies of about
 *         BODY_BYTES (600) of words with a Zipf-like frequency. Rows/s.
 * list:   p50/p95 over RUNS (50) of page 1, per_page 50, with total, for each
 *         filter and their combination.
 * agg:    the dashboard's summary and bucket queries (from the per-minute
 *         rollup): the first run and the median of 5.
 * Opening the file is timed too: a file from before the rollup builds it
 * then (migration 2), and every open checks it against the row count.
 * export: every row to /dev/null, rows/s and peak RSS (run it as its own
 *         invocation, --phases export, for an RSS of the export alone).
 * prune:  one day's rows (the oldest), with a thread inserting meanwhile:
 *         time, the longest delete transaction, the longest insert wait.
 * Prints markdown tables. */
#include "store/history.h"

#include "log.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL
#define N_MODELS 20
#define N_NODES 50
#define N_KEYS 200
#define VOCAB 4000

static char g_vocab[VOCAB][12];
static double g_cdf[VOCAB];
static uint64_t g_rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static double rnd01(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static void build_vocab(void)
{
    static const char *syl[] = { "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "po", "da", "fe",
                                 "gu", "hi", "jo", "be", "co", "wu", "xi", "ya" };
    double sum = 0;
    for (int i = 0; i < VOCAB; i++) {
        int a = i % 20, b = (i / 20) % 20, c = (i / 400) % 10;
        snprintf(g_vocab[i], sizeof(g_vocab[i]), "%s%s%s", syl[a], syl[b], syl[c]);
        sum += 1.0 / (i + 1);
        g_cdf[i] = sum;
    }
    for (int i = 0; i < VOCAB; i++)
        g_cdf[i] /= sum;
}

static const char *word(void)
{
    double u = rnd01();
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (g_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return g_vocab[lo];
}

static size_t fill_text(char *out, size_t target)
{
    size_t n = 0;
    while (n + 13 < target) {
        const char *w = word();
        size_t l = strlen(w);
        memcpy(out + n, w, l);
        n += l;
        out[n++] = ' ';
    }
    out[n] = '\0';
    return n;
}

typedef struct {
    char id[48], model[16], node[16], node_name[24], key[16], key_name[24];
    char *req, *resp;
    rt_history_row_t r;
} gen_t;

static int64_t g_now, g_start;
static uint64_t g_counter;

static void gen_row(gen_t *g, int64_t received, size_t body)
{
    int m = (int)(rnd() % N_MODELS), nd = (int)(rnd() % N_NODES), k = (int)(rnd() % N_KEYS);
    uint64_t c = ++g_counter;
    snprintf(g->id, sizeof(g->id), "req-%d-%llx-%llx", (int)(c % 4), (unsigned long long)received,
             (unsigned long long)c);
    snprintf(g->model, sizeof(g->model), "model-%02d", m);
    snprintf(g->node, sizeof(g->node), "node-%02d", nd);
    snprintf(g->node_name, sizeof(g->node_name), "gpu-box-%02d", nd);
    snprintf(g->key, sizeof(g->key), "key-%03d", k);
    snprintf(g->key_name, sizeof(g->key_name), "team key %03d", k);
    bool err = rnd() % 100 < 5;
    static const int errs[] = { 500, 502, 503, 429, 404, 400 };
    int status = err ? errs[rnd() % 6] : 200;
    bool stream = rnd() % 2;
    int64_t dur = 50000 + (int64_t)(rnd() % 3000000);
    int64_t comp = err ? -1 : (int64_t)(rnd() % 400);
    size_t half = body / 2;
    int hn = snprintf(g->req, 64, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"", g->model);
    size_t rl = (size_t)hn + fill_text(g->req + hn, body - (size_t)hn - 4);
    memcpy(g->req + rl, "\"}]}", 5);
    rl += 4;
    int rn = snprintf(g->resp, 64, "{\"choices\":[{\"message\":{\"content\":\"");
    size_t sl = err ? 0 : (size_t)rn + fill_text(g->resp + rn, half + half - (size_t)rn - 4);
    if (!err) {
        memcpy(g->resp + sl, "\"}}]}", 6);
        sl += 5;
    }
    g->r = (rt_history_row_t){
        .id = g->id, .received_ms = received, .first_byte_ms = received + 30, .finished_ms = received + dur / 1000,
        .endpoint = "/v1/chat/completions", .model = g->model, .node_id = g->node, .node_name = g->node_name,
        .attempts = 1 + (rnd() % 50 == 0), .client_kind = "api_key", .client_id = g->key,
        .client_name = g->key_name, .client_addr = "10.0.3.17", .status = status,
        .error_type = err ? "upstream_error" : NULL, .error_message = err ? "the node failed" : NULL,
        .duration_us = dur, .ttft_us = err ? -1 : 30000 + (int64_t)(rnd() % 200000),
        .prompt_tokens = 20 + (int64_t)(rnd() % 300), .completion_tokens = comp,
        .total_tokens = comp >= 0 ? comp + 100 : -1, .stream = stream, .request_body = g->req,
        .request_len = rl, .response_body = err ? NULL : g->resp, .response_len = sl,
    };
}

static double now_s(void) { return (double)cm_now_us() / 1e6; }

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int64_t file_mb(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size / (1024 * 1024) : -1;
}

static void fill(rt_history_t *h, int64_t target, int batch, size_t body, const char *path)
{
    int64_t have = rt_history_count(h);
    printf("\n## Fill\n\n");
    if (have >= target) {
        printf("reusing %lld rows in %s (%lld MiB)\n", (long long)have, path, (long long)file_mb(path));
        return;
    }
    gen_t *g = cm_xcalloc((size_t)batch, sizeof(*g));
    rt_history_row_t *rows = cm_xcalloc((size_t)batch, sizeof(*rows));
    for (int i = 0; i < batch; i++) {
        g[i].req = cm_xmalloc(body + 128);
        g[i].resp = cm_xmalloc(body + 128);
    }
    double t0 = now_s(), tlast = t0, in_insert = 0;
    int64_t done = have, last = have;
    double span = (double)(7 * DAY_MS);
    while (done < target) {
        int n = target - done < batch ? (int)(target - done) : batch;
        for (int i = 0; i < n; i++) {
            /* spread over 7 days in order, each finishing up to 3 s late */
            int64_t at = g_start + (int64_t)(span * (double)(done + i) / (double)target) - (int64_t)(rnd() % 3000);
            gen_row(&g[i], at, body);
            rows[i] = g[i].r;
        }
        double ti = now_s();
        int irc = rt_history_insert(h, rows, (size_t)n);
        in_insert += now_s() - ti;
        if (irc != 0) {
            fprintf(stderr, "insert failed\n");
            exit(1);
        }
        done += n;
        double t = now_s();
        if (t - tlast >= 30) {
            fprintf(stderr, "  %lld rows, %.0f rows/s recently\n", (long long)done, (double)(done - last) / (t - tlast));
            tlast = t;
            last = done;
        }
    }
    double dt = now_s() - t0;
    printf("| rows | batch | body bytes | FTS | seconds | rows/s (wall, with generation) | rows/s (inside rt_history_insert) | file MiB |\n|---|---|---|---|---|---|---|---|\n");
    printf("| %lld | %d | ~%zu + ~%zu | %s | %.1f | %.0f | %.0f | %lld |\n", (long long)(done - have), batch, body,
           body, rt_history_has_fts(h) ? "yes" : "no", dt, (double)(done - have) / dt,
           (double)(done - have) / in_insert, (long long)file_mb(path));
    for (int i = 0; i < batch; i++) {
        free(g[i].req);
        free(g[i].resp);
    }
    free(g);
    free(rows);
}

static void on_row(const rt_history_row_t *r, void *arg)
{
    (void)r;
    (*(int *)arg)++;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const char *name;
    bool model, node, key, error, hour, day, q;
} case_t;

static void list_phase(rt_history_t *h, int runs)
{
    static const case_t cases[] = {
        { "no filter", 0, 0, 0, 0, 0, 0, 0 },
        { "model", 1, 0, 0, 0, 0, 0, 0 },
        { "node", 0, 1, 0, 0, 0, 0, 0 },
        { "status=error", 0, 0, 0, 1, 0, 0, 0 },
        { "api key", 0, 0, 1, 0, 0, 0, 0 },
        { "last hour", 0, 0, 0, 0, 1, 0, 0 },
        { "last day", 0, 0, 0, 0, 0, 1, 0 },
        { "q (a word)", 0, 0, 0, 0, 0, 0, 1 },
        { "model + error + last day", 1, 0, 0, 1, 0, 1, 0 },
        { "q + model + last day", 1, 0, 0, 0, 0, 1, 1 },
        { "all combined (last day)", 1, 1, 1, 1, 0, 1, 1 },
        { "all combined (last hour)", 1, 1, 1, 1, 1, 0, 1 },
    };
    printf("\n## List (page 1, per_page 50, with total; %d runs each)\n\n", runs);
    printf("| filter | p50 ms | p95 ms | max ms | total (last run) |\n|---|---|---|---|---|\n");
    double *t = cm_xcalloc((size_t)runs, sizeof(double));
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const case_t *k = &cases[c];
        int64_t total = 0;
        for (int i = 0; i < runs; i++) {
            char model[16], node[16], key[16];
            snprintf(model, sizeof(model), "model-%02d", i % N_MODELS);
            snprintf(node, sizeof(node), "node-%02d", (i * 7) % N_NODES);
            snprintf(key, sizeof(key), "key-%03d", (i * 13) % N_KEYS);
            /* words of rank 50..100: each in a few % of the bodies */
            rt_history_filter_t f = {
                .model = k->model ? model : NULL, .node_id = k->node ? node : NULL,
                .api_key_id = k->key ? key : NULL, .status_class = k->error ? 2 : 0,
                .from_ms = k->hour ? g_now - HOUR_MS : k->day ? g_now - DAY_MS : 0,
                .q = k->q ? g_vocab[50 + i % 50] : NULL,
            };
            int n = 0;
            double t0 = now_s();
            if (rt_history_list(h, &f, 0, 50, false, on_row, &n, &total) != 0) {
                fprintf(stderr, "list failed\n");
                exit(1);
            }
            t[i] = (now_s() - t0) * 1000;
        }
        qsort(t, (size_t)runs, sizeof(double), cmp_d);
        int p95 = (int)ceil(0.95 * runs) - 1;
        printf("| %s | %.2f | %.2f | %.2f | %lld |\n", k->name, t[runs / 2], t[p95], t[runs - 1], (long long)total);
        fflush(stdout);
    }
    /* deep paging costs the offset */
    rt_history_filter_t none = { 0 };
    int n = 0;
    double t0 = now_s();
    rt_history_list(h, &none, 100000, 50, false, on_row, &n, NULL);
    printf("\npage at offset 100000, no filter, without total: %.1f ms\n", (now_s() - t0) * 1000);
    t0 = now_s();
    int64_t all = rt_history_count(h);
    printf("rt_history_count (%lld rows): %.1f ms\n", (long long)all, (now_s() - t0) * 1000);
    free(t);
}

static void on_bucket(const rt_history_agg_t *b, void *arg)
{
    (void)b;
    (*(int *)arg)++;
}

#define AGG_RUNS 5

static void agg_phase(rt_history_t *h)
{
    printf("\n## Aggregates (the dashboard's cards and trend chart)\n\n"
           "| query | first ms | median of %d ms | rows in window | p95 ms |\n|---|---|---|---|---|\n",
           AGG_RUNS);
    double t[AGG_RUNS];
    int64_t since[2] = { g_now - HOUR_MS, g_now - DAY_MS };
    const char *names[2] = { "summary, last hour (p95 included)", "summary, last day (p95 included)" };
    for (int i = 0; i < 2; i++) {
        rt_history_agg_t a;
        for (int k = 0; k < AGG_RUNS; k++) {
            double t0 = now_s();
            rt_history_summary(h, since[i], &a);
            t[k] = (now_s() - t0) * 1000;
        }
        double first = t[0];
        qsort(t, AGG_RUNS, sizeof(double), cmp_d);
        printf("| %s | %.2f | %.2f | %lld | %.1f |\n", names[i], first, t[AGG_RUNS / 2], (long long)a.count,
               a.p95_ms);
    }
    struct {
        const char *name;
        int64_t bucket, from;
    } b[] = { { "buckets: minute, last hour", 60000, g_now - HOUR_MS },
              { "buckets: minute, last day", 60000, g_now - DAY_MS },
              { "buckets: hour, 7 days", HOUR_MS, g_now - 7 * DAY_MS } };
    for (size_t i = 0; i < 3; i++) {
        int n = 0;
        for (int k = 0; k < AGG_RUNS; k++) {
            n = 0;
            double t0 = now_s();
            rt_history_buckets(h, b[i].bucket, b[i].from, g_now, on_bucket, &n);
            t[k] = (now_s() - t0) * 1000;
        }
        double first = t[0];
        qsort(t, AGG_RUNS, sizeof(double), cmp_d);
        printf("| %s | %.2f | %.2f | %d buckets | |\n", b[i].name, first, t[AGG_RUNS / 2], n);
    }
}

typedef struct {
    FILE *out;
    int64_t n, bytes;
} export_t;

static bool on_export(const rt_history_row_t *r, void *arg)
{
    export_t *e = arg;
    /* about what a CSV line costs: the fields and both bodies */
    int w = fprintf(e->out, "%s,%lld,%s,%s,%s,%d,%lld,%lld,", r->id, (long long)r->received_ms,
                    r->model ? r->model : "", r->node_id ? r->node_id : "", r->client_id ? r->client_id : "",
                    r->status, (long long)r->duration_us, (long long)r->total_tokens);
    if (r->request_body)
        fwrite(r->request_body, 1, r->request_len, e->out);
    if (r->response_body)
        fwrite(r->response_body, 1, r->response_len, e->out);
    fputc('\n', e->out);
    e->bytes += w + (int64_t)r->request_len + (int64_t)r->response_len + 1;
    e->n++;
    return true;
}

static void export_phase(rt_history_t *h)
{
    export_t e = { .out = fopen("/dev/null", "w") };
    long rss0 = peak_rss_kb();
    double t0 = now_s();
    rt_history_export(h, NULL, on_export, &e);
    double dt = now_s() - t0;
    fclose(e.out);
    printf("\n## Export (every row, with bodies, to /dev/null)\n\n| rows | seconds | rows/s | MiB/s | peak RSS before | peak RSS after |\n|---|---|---|---|---|---|\n");
    printf("| %lld | %.1f | %.0f | %.0f | %ld MiB | %ld MiB |\n", (long long)e.n, dt, (double)e.n / dt,
           (double)e.bytes / dt / 1048576.0, rss0 / 1024, peak_rss_kb() / 1024);
}

typedef struct {
    rt_history_t *h;
    volatile bool stop;
    double max_ms;
    int64_t batches;
    size_t body;
} ins_t;

static void *inserter(void *p)
{
    ins_t *x = p;
    gen_t *g = cm_xcalloc(256, sizeof(*g));
    rt_history_row_t rows[256];
    for (int i = 0; i < 256; i++) {
        g[i].req = cm_xmalloc(x->body + 128);
        g[i].resp = cm_xmalloc(x->body + 128);
    }
    while (!x->stop) {
        for (int i = 0; i < 256; i++) {
            gen_row(&g[i], g_now + (int64_t)(rnd() % 1000), x->body);
            rows[i] = g[i].r;
        }
        double t0 = now_s();
        rt_history_insert(x->h, rows, 256);
        double ms = (now_s() - t0) * 1000;
        if (ms > x->max_ms)
            x->max_ms = ms;
        x->batches++;
        /* about 10k rows/s: what a busy router records */
        struct timespec ts = { 0, 25 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 256; i++) {
        free(g[i].req);
        free(g[i].resp);
    }
    free(g);
    return NULL;
}

static void prune_phase(rt_history_t *h, const char *path, size_t body)
{
    /* the oldest stored day */
    int64_t before = g_start + DAY_MS;
    int64_t n0 = rt_history_count(h), mb0 = file_mb(path);
    ins_t x = { .h = h, .body = body };
    pthread_t t;
    pthread_create(&t, NULL, inserter, &x);
    rt_history_prune_stats_t st;
    double t0 = now_s();
    int64_t del = rt_history_prune_ex(h, before, 5000, &st);
    double dt = now_s() - t0;
    x.stop = true;
    pthread_join(t, NULL);
    printf("\n## Prune (the oldest day, batches of 5000, an inserter running: 256 rows every ~25 ms)\n\n");
    printf("| rows before | deleted | seconds | rows/s | delete txs | longest tx ms | vacuum steps | longest step ms | longest insert wait ms (%lld batches) | file MiB before | after |\n",
           (long long)x.batches);
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    printf("| %lld | %lld | %.1f | %.0f | %lld | %.1f | %lld | %.1f | %.1f | %lld | %lld |\n", (long long)n0,
           (long long)del, dt, (double)del / dt, (long long)st.batches, (double)st.max_tx_us / 1000,
           (long long)st.vacuum_steps, (double)st.max_vacuum_us / 1000, x.max_ms, (long long)mb0,
           (long long)file_mb(path));
}

static void on_newest(const rt_history_row_t *r, void *arg) { *(int64_t *)arg = r->received_ms; }

int main(int argc, char **argv)
{
    int64_t rows = 10000000;
    const char *path = "/tmp/llmr-history-bench.db";
    const char *phases = "fill,list,agg,export,prune";
    int batch = 256, runs = 50;
    size_t body = 600;
    bool fts = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-n") && v)
            rows = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(a, "-f") && v)
            path = argv[++i];
        else if (!strcmp(a, "-b") && v)
            batch = atoi(argv[++i]);
        else if (!strcmp(a, "-s") && v)
            body = (size_t)atoi(argv[++i]);
        else if (!strcmp(a, "-r") && v)
            runs = atoi(argv[++i]);
        else if (!strcmp(a, "--phases") && v)
            phases = argv[++i];
        else if (!strcmp(a, "--fts"))
            fts = true;
        else {
            fprintf(stderr, "usage: %s [-n ROWS] [-f FILE] [-b BATCH] [-s BODY_BYTES] [-r RUNS] [--fts]"
                            " [--phases fill,list,agg,export,prune]\n", argv[0]);
            return 2;
        }
    }
    if (batch < 1 || runs < 1 || body < 128 || rows < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    cm_util_init();
    build_vocab();
    g_now = (int64_t)cm_wall_ms();
    rt_history_t *h = NULL;
    char err[256];
    rt_history_opts_t o = { .fts = fts };
    double topen = now_s();
    if (rt_history_open_ex(path, &o, &h, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    topen = now_s() - topen;
    /* a reused file keeps the clock of its fill: "now" is its newest row */
    int64_t newest = 0;
    rt_history_list(h, NULL, 0, 1, false, on_newest, &newest, NULL);
    if (newest > 0)
        g_now = newest;
    g_start = g_now - 7 * DAY_MS;
    printf("# history_bench: %s, %lld rows target\n", path, (long long)rows);
    printf("\nopen (migrations, rollup check): %.1f ms\n", topen * 1000);
    if (strstr(phases, "fill"))
        fill(h, rows, batch, body, path);
    if (strstr(phases, "list"))
        list_phase(h, runs);
    if (strstr(phases, "agg"))
        agg_phase(h);
    if (strstr(phases, "export"))
        export_phase(h);
    if (strstr(phases, "prune"))
        prune_phase(h, path, body);
    rt_history_close(h);
    printf("\npeak RSS of the run: %ld MiB\n", peak_rss_kb() / 1024);
    return 0;
}
