/* test_metrics: core/metrics.c. Counts and histograms after synthetic
 * proxy results, label escaping and bounds, the series cap, process_*
 * metrics, node gauges from a real registry, and every scrape checked by a
 * line validator of the text format 0.0.4 (families contiguous, TYPE before
 * samples, cumulative buckets ending in +Inf == _count). Prints the cost of
 * rt_metrics_request (ns per call, one thread and four). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/metrics.h"
#include "core/registry.h"
#include "util.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *scrape(rt_metrics_t *m, rt_registry_t *reg)
{
    rt_metrics_sources_t src = { .registry = reg, .queue_depth = 3, .history_depth = 2, .history_written = 40,
                                 .history_dropped = 1, .start_wall_ms = 1700000000123ull };
    struct evbuffer *b = evbuffer_new();
    rt_metrics_write(m, &src, b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static char *scrape_cloud(rt_metrics_t *m)
{
    struct evbuffer *b = evbuffer_new();
    rt_metrics_write_cloud(m, b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

/* The value of the sample line that starts with prefix (name{labels...}),
 * NAN when absent. prefix is the whole name with its label block. */
static double value_of(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NAN;
}

static bool has_line_prefix(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0)
            return true;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

/* ---- the line validator (text format 0.0.4) ---- */

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

typedef struct {
    char fam[128][128];
    size_t nfam;
    char cur[128], cur_type[16];
    /* histogram state of the current label set */
    char hkey[1024];
    double last_bucket;
    bool saw_inf, started;
    double inf_value;
} vstate_t;

static bool seen_family(vstate_t *st, const char *f)
{
    for (size_t i = 0; i < st->nfam; i++)
        if (strcmp(st->fam[i], f) == 0)
            return true;
    return false;
}

/* Parses `{a="x",b="y"}` from p; writes the labels without le into key,
 * and le's value into le (or ""). Returns the char after '}' or NULL. */
static const char *parse_labels(const char *p, char *key, size_t keylen, char *le, size_t lelen)
{
    key[0] = le[0] = '\0';
    if (*p != '{')
        return p;
    p++;
    size_t kn = 0;
    while (*p != '}') {
        const char *ns = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        if (p == ns || (isdigit((unsigned char)*ns)) || *p != '=' || p[1] != '"')
            return NULL;
        size_t nl = (size_t)(p - ns);
        bool is_le = nl == 2 && strncmp(ns, "le", 2) == 0;
        p += 2;
        char val[512];
        size_t vn = 0;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return NULL;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return NULL;
            }
            if (vn < sizeof(val) - 1)
                val[vn++] = *p;
            p++;
        }
        val[vn] = '\0';
        p++;
        if (is_le)
            snprintf(le, lelen, "%s", val);
        else
            kn += (size_t)snprintf(key + kn, kn < keylen ? keylen - kn : 0, "%.*s=%s,", (int)nl, ns, val);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

/* Fails the test at the first bad line. */
static void validate(const char *text)
{
    vstate_t *st = calloc(1, sizeof(*st));
    int lineno = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        assert_non_null(e); /* every line ends with \n */
        lineno++;
        char line[4096];
        size_t n = (size_t)(e - p);
        assert_true(n < sizeof(line));
        memcpy(line, p, n);
        line[n] = '\0';
        p = e + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *nm = line + 7, *sp = strchr(nm, ' ');
            assert_non_null(sp);
            assert_true(name_ok(nm, (size_t)(sp - nm)));
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char nm[128], ty[16];
            assert_int_equal(sscanf(line + 7, "%127s %15s", nm, ty), 2);
            assert_true(strcmp(ty, "counter") == 0 || strcmp(ty, "gauge") == 0 || strcmp(ty, "histogram") == 0);
            if (seen_family(st, nm)) {
                print_error("line %d: family %s declared twice\n", lineno, nm);
                fail();
            }
            snprintf(st->fam[st->nfam++], 128, "%s", nm);
            snprintf(st->cur, sizeof(st->cur), "%s", nm);
            snprintf(st->cur_type, sizeof(st->cur_type), "%s", ty);
            st->hkey[0] = '\0';
            st->started = st->saw_inf = false;
            st->last_bucket = 0;
            continue;
        }
        assert_true(line[0] != '#');
        const char *q = line;
        while (*q && *q != '{' && *q != ' ')
            q++;
        size_t nl = (size_t)(q - line);
        assert_true(name_ok(line, nl));
        char key[1024], le[64];
        q = parse_labels(q, key, sizeof(key), le, sizeof(le));
        if (!q) {
            print_error("line %d: bad labels: %s\n", lineno, line);
            fail();
        }
        assert_true(*q == ' ');
        char *end;
        double v = strtod(q + 1, &end);
        assert_true(end != q + 1 && *end == '\0');
        /* the sample belongs to the current family */
        char base[160];
        snprintf(base, sizeof(base), "%.*s", (int)nl, line);
        if (strcmp(st->cur_type, "histogram") == 0) {
            size_t cl = strlen(st->cur);
            assert_true(strncmp(base, st->cur, cl) == 0);
            const char *suf = base + cl;
            if (strcmp(suf, "_bucket") == 0) {
                assert_true(le[0] != '\0');
                if (!st->started || strcmp(key, st->hkey) != 0) {
                    assert_true(!st->started || st->saw_inf); /* previous set was closed */
                    st->started = true;
                    snprintf(st->hkey, sizeof(st->hkey), "%s", key);
                    st->last_bucket = 0;
                    st->saw_inf = false;
                }
                if (v < st->last_bucket) {
                    print_error("line %d: buckets not cumulative: %s\n", lineno, line);
                    fail();
                }
                st->last_bucket = v;
                if (strcmp(le, "+Inf") == 0) {
                    st->saw_inf = true;
                    st->inf_value = v;
                }
            } else if (strcmp(suf, "_count") == 0) {
                assert_true(st->saw_inf);
                assert_string_equal(key, st->hkey);
                assert_true(v == st->inf_value);
            } else {
                assert_string_equal(suf, "_sum");
            }
        } else {
            if (strcmp(base, st->cur) != 0) {
                print_error("line %d: sample %s outside its family %s\n", lineno, base, st->cur);
                fail();
            }
            assert_true(le[0] == '\0');
            if (strcmp(st->cur_type, "counter") == 0)
                assert_true(v >= 0);
        }
    }
    free(st);
}

/* promtool check metrics (Debian's prometheus) on text, when installed:
 * exit 0 and no remark. */
static void promtool_check(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("[ skip ] promtool absent (scripts/install-deps.sh installs it): format checked by the validator only\n");
        return;
    }
    char path[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    unlink(path);
    if (rc != 0 || n != 0) {
        print_error("promtool: %s\n", out);
        fail();
    }
}

static rt_proxy_result_t ok_result(const char *node, const char *name, bool sse, uint64_t dur_ms)
{
    uint64_t t0 = 1000000;
    return (rt_proxy_result_t){ .node_id = node, .node_name = name, .attempts = 1, .status = 200, .sse = sse,
                                .start_us = t0, .first_byte_us = t0 + 50000, .end_us = t0 + dur_ms * 1000,
                                .queue_us = 1000, .upstream_us = dur_ms * 1000 - 1500 };
}

/* ---- cases ---- */

static void test_counts_and_histograms(void **state)
{
    (void)state;
    rt_metrics_t *m = rt_metrics_new();
    rt_proxy_result_t r = ok_result("n1", "box-1", false, 300);
    rt_metrics_request(m, "/v1/chat/completions", "tiny", &r);
    rt_metrics_request(m, "/v1/chat/completions", "tiny", &r);
    r = ok_result("n1", "box-1", true, 900);
    rt_metrics_request(m, "/v1/chat/completions", "tiny", &r);
    rt_metrics_tokens(m, "/v1/chat/completions", "tiny", 10, 5, 0);
    rt_metrics_tokens(m, "/v1/chat/completions", "tiny", 20, 11, 1.0); /* 0.1 s per token after the first */
    /* a retry that then failed at the node */
    rt_proxy_result_t f = ok_result("n2", "box-2", false, 100);
    f.attempts = 3;
    f.status = 502;
    f.error_type = "upstream_error";
    rt_metrics_request(m, "/v1/chat/completions", "tiny", &f);
    /* refused in the queue, and an unknown model (its name not a label) */
    rt_proxy_result_t q = { .status = 503, .error_type = "queue_full", .start_us = 10, .end_us = 20 };
    rt_metrics_request(m, "/v1/completions", "tiny", &q);
    rt_proxy_result_t nf = { .status = 404, .error_type = "model_not_found", .start_us = 10, .end_us = 20 };
    rt_metrics_request(m, "/v1/chat/completions", "made-up-model", &nf);
    /* an error the node answered itself (no proxy code): status as error_type */
    rt_proxy_result_t bad = ok_result("n1", "box-1", false, 20);
    bad.status = 400;
    rt_metrics_request(m, "/v1/embeddings", "emb", &bad);
    rt_metrics_tokens(m, "/v1/embeddings", "emb", 7, 0, 0);

    char *s = scrape(m, NULL);
    validate(s);
    promtool_check(s);
    assert_true(value_of(s, "llm_router_requests_total{model=\"tiny\",node_id=\"n1\",node_name=\"box-1\","
                            "endpoint=\"/v1/chat/completions\",status=\"200\",stream=\"false\"}") == 2);
    assert_true(value_of(s, "llm_router_requests_total{model=\"tiny\",node_id=\"n1\",node_name=\"box-1\","
                            "endpoint=\"/v1/chat/completions\",status=\"200\",stream=\"true\"}") == 1);
    assert_true(value_of(s, "llm_router_requests_total{model=\"tiny\",node_id=\"n2\",node_name=\"box-2\","
                            "endpoint=\"/v1/chat/completions\",status=\"502\",stream=\"false\"}") == 1);
    assert_true(value_of(s, "llm_router_requests_total{model=\"tiny\",node_id=\"\",node_name=\"\","
                            "endpoint=\"/v1/completions\",status=\"503\",stream=\"false\"}") == 1);
    assert_true(value_of(s, "llm_router_requests_total{model=\"other\",node_id=\"\",node_name=\"\","
                            "endpoint=\"/v1/chat/completions\",status=\"404\",stream=\"false\"}") == 1);
    assert_null(strstr(s, "made-up-model"));
    /* GenAI: successes without error_type, failures with it */
    const char *g = "{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"llm-node\",gen_ai_request_model=\"tiny\","
                    "gen_ai_response_model=\"tiny\",gen_ai_original_model=\"tiny\"";
    char k[512];
    snprintf(k, sizeof(k), "gen_ai_server_request_duration_seconds_count%s}", g);
    assert_true(value_of(s, k) == 3);
    snprintf(k, sizeof(k), "gen_ai_server_request_duration_seconds_bucket%s,le=\"0.32\"}", g);
    assert_true(value_of(s, k) == 2); /* the two 0.3 s answers */
    snprintf(k, sizeof(k), "gen_ai_server_request_duration_seconds_count%s,error_type=\"upstream_error\"}", g);
    assert_true(value_of(s, k) == 1);
    snprintf(k, sizeof(k), "gen_ai_server_time_to_first_token_seconds_count%s}", g);
    assert_true(value_of(s, k) == 1); /* the stream only */
    snprintf(k, sizeof(k), "gen_ai_server_time_to_first_token_seconds_bucket%s,le=\"0.04\"}", g);
    assert_true(value_of(s, k) == 0);
    snprintf(k, sizeof(k), "gen_ai_server_time_to_first_token_seconds_bucket%s,le=\"0.06\"}", g);
    assert_true(value_of(s, k) == 1);
    snprintf(k, sizeof(k), "gen_ai_server_time_per_output_token_seconds_sum%s}", g);
    assert_true(fabs(value_of(s, k) - 0.1) < 1e-9);
    snprintf(k, sizeof(k), "gen_ai_client_token_usage_sum%s,gen_ai_token_type=\"input\"}", g);
    assert_true(value_of(s, k) == 30);
    snprintf(k, sizeof(k), "gen_ai_client_token_usage_sum%s,gen_ai_token_type=\"output\"}", g);
    assert_true(value_of(s, k) == 16);
    snprintf(k, sizeof(k), "gen_ai_client_token_usage_bucket%s,gen_ai_token_type=\"output\",le=\"16\"}", g);
    assert_true(value_of(s, k) == 2);
    /* the largest recommended boundary, written exactly */
    assert_non_null(strstr(s, "le=\"67108864\""));
    assert_non_null(strstr(s, "le=\"16777216\""));
    assert_true(value_of(s, "gen_ai_server_request_duration_seconds_count{gen_ai_operation_name=\"embeddings\","
                            "gen_ai_provider_name=\"llm-node\",gen_ai_request_model=\"emb\",gen_ai_response_model="
                            "\"emb\",gen_ai_original_model=\"emb\",error_type=\"400\"}") == 1);
    /* embeddings record input tokens only */
    assert_true(value_of(s, "llm_router_tokens_total{model=\"emb\",endpoint=\"/v1/embeddings\",token_type=\"input\"}") == 7);
    assert_null(strstr(s, "gen_ai_request_model=\"emb\",gen_ai_response_model=\"emb\",gen_ai_original_model=\"emb\","
                          "gen_ai_token_type=\"output\""));
    assert_true(value_of(s, "llm_router_tokens_total{model=\"tiny\",endpoint=\"/v1/chat/completions\",token_type=\"output\"}") == 16);
    /* router family */
    assert_true(value_of(s, "llm_router_request_duration_seconds_count{model=\"tiny\",endpoint=\"/v1/chat/completions\"}") == 4);
    assert_true(value_of(s, "llm_router_retries_total") == 2);
    assert_true(value_of(s, "llm_router_retries_exhausted_total") == 1);
    assert_true(value_of(s, "llm_router_queue_rejections_total{reason=\"queue_full\"}") == 1);
    assert_true(value_of(s, "llm_router_queue_rejections_total{reason=\"model_not_found\"}") == 1);
    assert_true(value_of(s, "llm_router_queue_rejections_total{reason=\"queue_timeout\"}") == 0);
    assert_true(value_of(s, "llm_router_overhead_seconds_count") == 7);
    /* 300 ms - 1 ms queue - 298.5 ms upstream = 0.5 ms: in le=0.0005 */
    assert_true(value_of(s, "llm_router_overhead_seconds_bucket{le=\"0.001\"}") >= 3);
    assert_true(value_of(s, "llm_router_queue_wait_seconds_count") == 6); /* not the unknown model */
    assert_true(value_of(s, "llm_router_queue_depth") == 3);
    assert_true(value_of(s, "llm_router_history_queue_depth") == 2);
    assert_true(value_of(s, "llm_router_history_written_total") == 40);
    assert_true(value_of(s, "llm_router_history_dropped_total") == 1);
    assert_true(value_of(s, "llm_router_node_suspensions_total") == 0);
    /* process_* from /proc/self */
    assert_true(value_of(s, "process_resident_memory_bytes") > 1e5);
    assert_true(value_of(s, "process_virtual_memory_bytes") > 1e5);
    assert_true(value_of(s, "process_open_fds") >= 3);
    assert_true(value_of(s, "process_max_fds") >= value_of(s, "process_open_fds"));
    assert_true(value_of(s, "process_cpu_seconds_total") >= 0);
    assert_true(value_of(s, "process_start_time_seconds") == 1700000000);
    free(s);
    rt_metrics_free(m);
}

static void test_labels_escaped_and_bounded(void **state)
{
    (void)state;
    rt_metrics_t *m = rt_metrics_new();
    rt_proxy_result_t r = ok_result("n1", "rack \"a\"\\1", false, 10);
    rt_metrics_request(m, "/v1/chat/completions", "we\"ird\\model", &r);
    r.node_name = "line\nbreak"; /* control characters: not a label value */
    rt_metrics_request(m, "/v1/chat/completions", "bad\xff utf8", &r);
    char longm[300];
    memset(longm, 'x', sizeof(longm) - 1);
    longm[sizeof(longm) - 1] = '\0';
    rt_metrics_request(m, "/v1/chat/completions", longm, &r);
    rt_metrics_request(m, "/v2/unknown", "tiny", &r);
    rt_metrics_request(m, "/v1/chat/completions", "caf\xc3\xa9", &r); /* valid UTF-8 is kept */
    char *s = scrape(m, NULL);
    validate(s);
    promtool_check(s);
    assert_non_null(strstr(s, "model=\"we\\\"ird\\\\model\",node_id=\"n1\",node_name=\"rack \\\"a\\\"\\\\1\""));
    assert_true(value_of(s, "llm_router_requests_total{model=\"other\",node_id=\"n1\",node_name=\"\","
                            "endpoint=\"/v1/chat/completions\",status=\"200\",stream=\"false\"}") == 2);
    assert_true(value_of(s, "llm_router_requests_total{model=\"tiny\",node_id=\"n1\",node_name=\"\","
                            "endpoint=\"other\",status=\"200\",stream=\"false\"}") == 1);
    assert_non_null(strstr(s, "model=\"caf\xc3\xa9\""));
    assert_null(strstr(s, "xxxxxxxx"));
    free(s);
    rt_metrics_free(m);
}

static void test_series_cap(void **state)
{
    (void)state;
    rt_metrics_t *m = rt_metrics_new();
    rt_proxy_result_t r = ok_result("n1", "box", false, 10);
    char model[32];
    for (int i = 0; i < RT_METRICS_MAX_SERIES + 50; i++) {
        snprintf(model, sizeof(model), "m%d", i);
        rt_metrics_request(m, "/v1/chat/completions", model, &r);
    }
    size_t series, groups;
    rt_metrics_counts(m, &series, &groups);
    assert_int_equal(series, RT_METRICS_MAX_SERIES + 1); /* + the fold */
    assert_int_equal(groups, RT_METRICS_MAX_GROUPS + 1);
    /* past the reserve: dropped and counted, never unbounded */
    for (int st = 0; st < RT_METRICS_FOLD_RESERVE + 10; st++) {
        r.status = 100 + st % 900;
        r.node_id = st < 900 ? "n1" : "n2";
        if (st >= 1800)
            r.node_id = "n3";
        rt_metrics_request(m, "/v1/chat/completions", "m-new", &r);
    }
    rt_metrics_counts(m, &series, &groups);
    assert_int_equal(series, RT_METRICS_MAX_SERIES + RT_METRICS_FOLD_RESERVE);
    char *s = scrape(m, NULL);
    validate(s);
    assert_true(value_of(s, "llm_router_requests_total{model=\"other\",node_id=\"n1\",node_name=\"box\","
                            "endpoint=\"/v1/chat/completions\",status=\"200\",stream=\"false\"}") >= 50);
    assert_true(value_of(s, "llm_router_metrics_dropped_total") > 0);
    assert_non_null(strstr(s, "error_type=\"_OTHER\"")); /* error labels bounded too */
    assert_true(value_of(s, "llm_router_metrics_series") == RT_METRICS_MAX_SERIES + RT_METRICS_FOLD_RESERVE);
    free(s);
    rt_metrics_free(m);
}

static const char *reg_models[] = { "tiny" };

static void test_node_gauges(void **state)
{
    (void)state;
    rt_registry_opts_t o = { .mode = RT_LB_AUTO, .default_slots = 4, .history_max = 3 };
    rt_registry_t *reg = rt_registry_new(&o);
    char a[RT_NODE_ID_MAX], b[RT_NODE_ID_MAX];
    bool created;
    rt_node_info_t ia = { .id = "id-a", .machine_name = "box-a", .ip_address = "127.0.0.1", .runtime_port = 9000,
                          .api_port = 9000, .models = reg_models, .nmodels = 1, .total_slots = 2 };
    rt_node_info_t ib = ia;
    ib.id = "id-b", ib.machine_name = "box-b", ib.runtime_port = 9001, ib.api_port = 9001;
    assert_int_equal(rt_registry_register(reg, &ia, a, &created), 0);
    assert_int_equal(rt_registry_register(reg, &ib, b, &created), 0);
    rt_node_metrics_t hb = { .cpu = 12.5, .mem = 40, .gpu = -1, .gpu_mem = -1, .active = 1, .total_slots = 2 };
    assert_int_equal(rt_registry_heartbeat(reg, a, &hb), 0);
    assert_int_equal(rt_registry_settings(reg, a, "renamed", NULL, NULL), 0);
    rt_lease_t l;
    assert_int_equal(rt_registry_acquire(reg, "tiny", NULL, 0, &l), RT_PICK_OK);
    rt_registry_suspend(reg, b, 60000);
    assert_int_equal(rt_registry_disconnect(reg, b), 0);
    rt_metrics_t *m = rt_metrics_new();
    char *s = scrape(m, reg);
    validate(s);
    promtool_check(s);
    assert_true(value_of(s, "llm_router_node_up{node_id=\"id-a\",node_name=\"renamed\"}") == 1);
    assert_true(value_of(s, "llm_router_node_up{node_id=\"id-b\",node_name=\"box-b\"}") == 0);
    assert_true(value_of(s, "llm_router_node_slots{node_id=\"id-a\",node_name=\"renamed\"}") == 2);
    assert_true(value_of(s, "llm_router_node_slots_busy{node_id=\"id-a\",node_name=\"renamed\"}") == 1);
    assert_true(value_of(s, "llm_router_node_cpu_percent{node_id=\"id-a\",node_name=\"renamed\"}") == 12.5);
    assert_true(value_of(s, "llm_router_node_memory_percent{node_id=\"id-a\",node_name=\"renamed\"}") == 40);
    assert_false(has_line_prefix(s, "llm_router_node_gpu_percent{node_id=\"id-a\"")); /* not reported */
    assert_true(value_of(s, "llm_router_node_status{node_id=\"id-a\",node_name=\"renamed\",status=\"online\"}") == 1);
    assert_true(value_of(s, "llm_router_node_status{node_id=\"id-b\",node_name=\"box-b\",status=\"offline\"}") == 1);
    assert_true(value_of(s, "llm_router_node_status{node_id=\"id-b\",node_name=\"box-b\",status=\"online\"}") == 0);
    assert_true(value_of(s, "llm_router_nodes{status=\"online\"}") == 1);
    assert_true(value_of(s, "llm_router_node_suspensions_total") == 1);
    /* the router's own in-flight count (the lease taken above) */
    double inflight = value_of(s, "llm_router_in_flight_requests{node_id=\"" "id-a" "\",node_name=\"renamed\"}");
    assert_true(inflight == 1 || value_of(s, "llm_router_in_flight_requests{node_id=\"id-b\",node_name=\"box-b\"}") == 1);
    rt_registry_release(reg, &l, RT_OUTCOME_NONE);
    free(s);
    rt_metrics_free(m);
    rt_registry_free(reg);
}

static void test_cloud(void **state)
{
    (void)state;
    rt_metrics_t *m = rt_metrics_new();
    char *s = scrape_cloud(m);
    validate(s);
    /* both families present without samples */
    assert_non_null(strstr(s, "# TYPE cloud_requests_total counter\n"));
    assert_non_null(strstr(s, "# TYPE cloud_request_latency_seconds histogram\n"));
    free(s);
    rt_metrics_cloud(m, "openai", 200, 0.5);
    rt_metrics_cloud(m, "openai", 200, 1.5);
    rt_metrics_cloud(m, "google", 429, 0.1);
    s = scrape_cloud(m);
    validate(s);
    promtool_check(s);
    assert_true(value_of(s, "cloud_requests_total{provider=\"openai\",status=\"200\"}") == 2);
    assert_true(value_of(s, "cloud_requests_total{provider=\"google\",status=\"429\"}") == 1);
    assert_true(value_of(s, "cloud_request_latency_seconds_count{provider=\"openai\"}") == 2);
    assert_true(value_of(s, "cloud_request_latency_seconds_sum{provider=\"openai\"}") == 2);
    free(s);
    rt_metrics_free(m);
}

/* ---- the micro-benchmark ---- */

#define BENCH_N 1000000
#define BENCH_THREADS 4

typedef struct {
    rt_metrics_t *m;
    int n;
    int seed;
} bench_arg_t;

static void *bench_thread(void *p)
{
    bench_arg_t *a = p;
    static const char *models[] = { "llama-3-8b", "qwen-2.5-7b", "mistral-7b", "tiny" };
    static const char *nodes[] = { "0f4a1c2e-0000-4000-8000-000000000001", "0f4a1c2e-0000-4000-8000-000000000002",
                                   "0f4a1c2e-0000-4000-8000-000000000003" };
    rt_proxy_result_t r = ok_result(nodes[0], "gpu-box", false, 120);
    for (int i = 0; i < a->n; i++) {
        int k = i + a->seed;
        r.node_id = nodes[k % 3];
        r.sse = (k & 1) != 0;
        rt_metrics_request(a->m, "/v1/chat/completions", models[k & 3], &r);
    }
    return NULL;
}

static void test_bench(void **state)
{
    (void)state;
    rt_metrics_t *m = rt_metrics_new();
    bench_arg_t one = { m, 1000, 0 };
    bench_thread(&one); /* warm: every series seen */
    uint64_t t0 = cm_now_us();
    one.n = BENCH_N;
    bench_thread(&one);
    double ns1 = (double)(cm_now_us() - t0) * 1000.0 / BENCH_N;
    pthread_t th[BENCH_THREADS];
    bench_arg_t args[BENCH_THREADS];
    t0 = cm_now_us();
    for (int i = 0; i < BENCH_THREADS; i++) {
        args[i] = (bench_arg_t){ m, BENCH_N / BENCH_THREADS, i };
        pthread_create(&th[i], NULL, bench_thread, &args[i]);
    }
    for (int i = 0; i < BENCH_THREADS; i++)
        pthread_join(th[i], NULL);
    double wall = (double)(cm_now_us() - t0) * 1000.0;
    /* and a scrape of this state */
    t0 = cm_now_us();
    char *s = scrape(m, NULL);
    double scrape_us = (double)(cm_now_us() - t0);
    printf("[ bench ] rt_metrics_request: %.0f ns/call (1 thread), %.0f ns/call wall (%d threads, %d calls), "
           "scrape %.0f us (%zu bytes)\n",
           ns1, wall / BENCH_N, BENCH_THREADS, BENCH_N, scrape_us, strlen(s));
    validate(s);
    free(s);
    rt_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_histograms),
        cmocka_unit_test(test_labels_escaped_and_bounded),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_node_gauges),
        cmocka_unit_test(test_cloud),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
