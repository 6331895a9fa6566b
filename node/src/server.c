/* server: builds the node (models, engine, agent), runs the HTTP loop and
 * answers the management endpoints. */
#include "node.h"

#include "agent.h"
#include "auth.h"
#include "engine.h"
#include "job.h"
#include "json.h"
#include "log.h"
#include "models.h"
#include "prom.h"
#include "stats.h"
#include "sysinfo.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef LLAMA_LIB_DIR
#define LLAMA_LIB_DIR "/usr/local/lib"
#endif

/* How often the models directory is rescanned (on the models watcher's
 * thread, never the loop's): the longest a file added to it waits before
 * requests can use it. */
#define MODELS_RESCAN_MS 2000
/* A request's line and headers, at most (431 beyond). */
#define MAX_HEADER_BYTES (64 * 1024)
/* GET /api/logs?tail=N: N when absent, and its bounds. */
#define LOGS_TAIL_DEFAULT 200
#define LOGS_TAIL_MAX 10000
/* LLM_NODE_STARTUP_DELAY_MS sleeps in steps this long, to notice a signal. */
#define STARTUP_DELAY_STEP_MS 20

static cm_http_server_t *g_srv; /* for the signal handler */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_srv)
        cm_http_server_request_stop(g_srv);
}

/* The engine's figures; zeros (slots: the configured parallel) while the
 * node is starting and has no engine yet. */
static void engine_stats(nd_node_t *nd, nd_engine_stats_t *es)
{
    if (atomic_load(&nd->ready)) {
        nd_engine_stats(nd->engine, es);
        return;
    }
    memset(es, 0, sizeof(*es));
    es->slots = (int)nd->cfg.parallel;
}

static cJSON *available_models(nd_node_t *nd)
{
    return atomic_load(&nd->ready) ? nd_models_ids_json(nd->models) : cJSON_CreateArray();
}

/* Open to anyone (probes), so without a credential it says only whether the
 * node is up and ready: the router URL and node id are for callers with a
 * credential. */
static void h_health(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddBoolToObject(o, "ready", atomic_load(&nd->ready));
    if (!nd_node_authorized(nd, req)) {
        cm_http_reply_json(req, 200, o);
        cJSON_Delete(o);
        return;
    }
    nd_agent_status_t as;
    nd_agent_status(atomic_load(&nd->agent), &as);
    cJSON_AddBoolToObject(o, "registered", as.registered);
    if (as.node_id[0])
        cJSON_AddStringToObject(o, "node_id", as.node_id);
    else
        cJSON_AddNullToObject(o, "node_id");
    cJSON_AddStringToObject(o, "router_url", as.router_url);
    cJSON_AddNumberToObject(o, "uptime_secs", (double)((cm_now_ms() - nd->start_ms) / 1000));
    cJSON_AddStringToObject(o, "version", LLMR_VERSION);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static void h_startup(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    bool ready = atomic_load(&nd->ready);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", ready ? "ready" : "starting");
    cm_http_reply_json(req, ready ? 200 : 503, o);
    cJSON_Delete(o);
}

static void loaded_models(cJSON *o, const nd_engine_stats_t *es)
{
    cJSON *a = cJSON_AddArrayToObject(o, "loaded_models");
    for (int i = 0; i < es->loaded && i < ND_ENGINE_MAX_LOADED; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(es->loaded_ids[i]));
}

static void h_metrics(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    nd_engine_stats_t es;
    nd_stats_snapshot_t ss;
    cm_sysinfo_t si;
    engine_stats(nd, &es);
    nd_stats_get(nd->stats, &ss);
    cm_sysinfo_read(nd->sys, &si);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "active_requests", es.active);
    cJSON_AddNumberToObject(o, "queued_requests", es.queued);
    cJSON_AddNumberToObject(o, "held_requests", es.held);
    cJSON_AddNumberToObject(o, "total_slots", es.slots);
    cJSON_AddNumberToObject(o, "parallel", (double)nd->cfg.parallel);
    loaded_models(o, &es);
    cJSON_AddItemToObject(o, "available_models", available_models(nd));
    cJSON_AddNumberToObject(o, "model_memory_bytes", (double)es.memory_bytes);
    cJSON_AddNumberToObject(o, "requests_total", (double)ss.requests);
    cJSON_AddNumberToObject(o, "errors_total", (double)ss.errors);
    cJSON_AddNumberToObject(o, "cancelled_total", (double)ss.cancelled);
    cJSON_AddNumberToObject(o, "prompt_tokens_total", (double)es.prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens_total", (double)es.gen_tokens);
    cJSON_AddNumberToObject(o, "average_response_time_ms", ss.avg_response_ms);
    cJSON_AddNumberToObject(o, "average_ttft_ms", ss.avg_ttft_ms);
    cJSON_AddNumberToObject(o, "tokens_per_second", ss.tokens_per_second);
    cJSON_AddNumberToObject(o, "cpu_usage", si.cpu_usage);
    cJSON_AddNumberToObject(o, "memory_usage", si.memory_usage);
    cJSON_AddBoolToObject(o, "gpu_available", si.gpu_available);
    cJSON_AddNumberToObject(o, "gpu_usage", si.gpu_usage);
    cJSON_AddNumberToObject(o, "gpu_memory_usage", si.gpu_memory_usage);
    cJSON_AddNumberToObject(o, "uptime_secs", (double)((cm_now_ms() - nd->start_ms) / 1000));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

/* llama-server's names (--metrics), no labels. Prompt time is the time to
 * the first token (queueing included: llama-server counts prompt
 * evaluation only), generation time the rest of each successful request. */
static void prom_llamacpp(struct evbuffer *b, const nd_engine_stats_t *es, const nd_stats_snapshot_t *ss)
{
    int kv_used = 0, kv_total = 0;
    for (int i = 0; i < es->loaded && i < ND_ENGINE_MAX_LOADED; i++) {
        kv_used += es->loaded_kv_used[i];
        kv_total += es->loaded_kv_total[i];
    }
#define PROM(name, type, help, v)                   \
    do {                                            \
        cm_prom_family(b, name, type, help);        \
        cm_prom_sample(b, name, (double)(v), NULL); \
    } while (0)
    PROM("llamacpp:prompt_tokens_total", "counter", "Number of prompt tokens processed.", es->prompt_tokens);
    PROM("llamacpp:prompt_seconds_total", "counter", "Prompt process time (to the first token)", ss->prompt_seconds);
    PROM("llamacpp:tokens_predicted_total", "counter", "Number of generation tokens processed.", es->gen_tokens);
    PROM("llamacpp:tokens_predicted_seconds_total", "counter", "Predict process time", ss->gen_seconds);
    PROM("llamacpp:n_decode_total", "counter", "Total number of llama_decode() calls", es->n_decode);
    PROM("llamacpp:n_busy_slots_per_decode", "gauge", "Average number of busy slots per llama_decode() call",
         es->n_decode ? (double)es->n_busy_slots / (double)es->n_decode : 0);
    PROM("llamacpp:prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.",
         ss->prompt_seconds > 0 ? (double)ss->prompt_seconds_tokens / ss->prompt_seconds : 0);
    PROM("llamacpp:predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.",
         ss->gen_seconds > 0 ? (double)ss->gen_seconds_tokens / ss->gen_seconds : 0);
    PROM("llamacpp:requests_processing", "gauge", "Number of requests processing.", es->active);
    PROM("llamacpp:requests_deferred", "gauge", "Number of requests deferred.", es->queued);
    PROM("llamacpp:kv_cache_usage_ratio", "gauge", "KV-cache usage. 1 means 100 percent usage.",
         kv_total > 0 ? (double)kv_used / kv_total : 0);
    PROM("llamacpp:kv_cache_tokens", "gauge", "KV-cache tokens.", kv_used);
#undef PROM
}

/* A vLLM-compatible subset, labelled model_name and engine="0": gauges per
 * loaded model, counters and histograms per model served since start. */
static void prom_vllm(struct evbuffer *b, const nd_engine_stats_t *es, const nd_stats_model_t *ms, size_t nms)
{
    static const struct {
        const char *name, *help;
    } gauges[] = {
        { "vllm:num_requests_running", "Number of requests in model execution batches." },
        { "vllm:num_requests_waiting", "Number of requests waiting to be processed." },
        { "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage." },
        { "vllm:gpu_cache_usage_perc", "KV-cache usage (the name before vLLM 0.10). 1 means 100 percent usage." },
    };
    int nl = es->loaded < ND_ENGINE_MAX_LOADED ? es->loaded : ND_ENGINE_MAX_LOADED;
    for (size_t g = 0; g < CM_ARRAY_LEN(gauges); g++) {
        cm_prom_family(b, gauges[g].name, "gauge", gauges[g].help);
        for (int i = 0; i < nl; i++) {
            double v = g == 0 ? es->loaded_active[i]
                     : g == 1 ? es->loaded_waiting[i]
                              : (es->loaded_kv_total[i] > 0 ? (double)es->loaded_kv_used[i] / es->loaded_kv_total[i] : 0);
            cm_prom_sample(b, gauges[g].name, v, "model_name", es->loaded_ids[i], "engine", "0", NULL);
        }
    }
    cm_prom_family(b, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.");
    for (size_t i = 0; i < nms; i++)
        cm_prom_sample(b, "vllm:prompt_tokens_total", (double)ms[i].prompt_tokens, "model_name", ms[i].model,
                       "engine", "0", NULL);
    cm_prom_family(b, "vllm:generation_tokens_total", "counter", "Number of generation tokens processed.");
    for (size_t i = 0; i < nms; i++)
        cm_prom_sample(b, "vllm:generation_tokens_total", (double)ms[i].gen_tokens, "model_name", ms[i].model,
                       "engine", "0", NULL);
    static const struct {
        const char *name, *help;
        size_t off;
    } hists[] = {
        { "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
          offsetof(nd_stats_model_t, ttft) },
        { "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
          offsetof(nd_stats_model_t, e2e) },
        { "vllm:request_time_per_output_token_seconds", "Histogram of time_per_output_token_seconds per request.",
          offsetof(nd_stats_model_t, tpot) },
        { "vllm:request_prompt_tokens", "Number of prefill tokens processed.", offsetof(nd_stats_model_t, prompt_len) },
        { "vllm:request_generation_tokens", "Number of generation tokens processed.",
          offsetof(nd_stats_model_t, gen_len) },
    };
    for (size_t h = 0; h < CM_ARRAY_LEN(hists); h++) {
        cm_prom_family(b, hists[h].name, "histogram", hists[h].help);
        for (size_t i = 0; i < nms; i++) {
            const char *l[] = { "model_name", ms[i].model, "engine", "0" };
            cm_prom_hist_write(b, hists[h].name, (const cm_prom_hist_t *)((const char *)&ms[i] + hists[h].off), l, 2);
        }
    }
}

/* GET /metrics/prom: the node's own llm_node_* names, then llama-server's
 * llamacpp:* and a vLLM subset, so boards built for either read this node.
 * Needs the node's credential (LLM_NODE_API_KEY for a Prometheus scraping
 * it directly, see router/src/api/api_metrics.c). */
static void h_prom(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    nd_engine_stats_t es;
    nd_stats_snapshot_t ss;
    cm_sysinfo_t si;
    engine_stats(nd, &es);
    nd_stats_get(nd->stats, &ss);
    cm_sysinfo_read(nd->sys, &si);
    nd_stats_model_t *ms = cm_xmalloc((ND_STATS_MAX_MODELS + 1) * sizeof(*ms));
    size_t nms = nd_stats_models(nd->stats, ms, ND_STATS_MAX_MODELS + 1);
    struct evbuffer *b = evbuffer_new();
#define PROM(name, type, help, v)                   \
    do {                                            \
        cm_prom_family(b, name, type, help);        \
        cm_prom_sample(b, name, (double)(v), NULL); \
    } while (0)
    PROM("llm_node_requests_total", "counter", "Finished inference requests", ss.requests);
    PROM("llm_node_request_errors_total", "counter", "Requests answered with an error", ss.errors);
    PROM("llm_node_requests_cancelled_total", "counter", "Requests whose client went away", ss.cancelled);
    PROM("llm_node_prompt_tokens_total", "counter", "Prompt tokens processed", es.prompt_tokens);
    PROM("llm_node_generated_tokens_total", "counter", "Tokens generated", es.gen_tokens);
    PROM("llm_node_tokens_per_second", "gauge", "Generation tokens/s over recent requests", ss.tokens_per_second);
    PROM("llm_node_average_response_time_ms", "gauge", "Mean response time over recent requests", ss.avg_response_ms);
    PROM("llm_node_active_requests", "gauge", "Sequences generating or prefilling", es.active);
    PROM("llm_node_queued_requests", "gauge", "Requests waiting for a sequence or a model", es.queued);
    PROM("llm_node_held_requests", "gauge", "Sequences held because their streaming client reads nothing", es.held);
    PROM("llm_node_slots", "gauge", "Parallel sequences available", es.slots);
    PROM("llm_node_loaded_models", "gauge", "Models loaded", es.loaded);
    PROM("llm_node_model_memory_bytes", "gauge", "Bytes of the loaded models", es.memory_bytes);
    PROM("llm_node_cpu_usage_percent", "gauge", "Machine CPU usage", si.cpu_usage);
    PROM("llm_node_memory_usage_percent", "gauge", "Machine memory usage", si.memory_usage);
    if (si.gpu_available) {
        PROM("llm_node_gpu_usage_percent", "gauge", "GPU usage", si.gpu_usage);
        PROM("llm_node_gpu_memory_usage_percent", "gauge", "GPU memory usage", si.gpu_memory_usage);
    }
#undef PROM
    prom_llamacpp(b, &es, &ss);
    prom_vllm(b, &es, ms, nms);
    free(ms);
    size_t len = evbuffer_get_length(b);
    cm_http_reply(req, 200, CM_PROM_CONTENT_TYPE, evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

static void h_logs(cm_http_req_t *req, void *ud)
{
    (void)ud;
    const char *t = cm_http_req_query(req, "tail");
    char *end = NULL;
    long n = t ? strtol(t, &end, 10) : LOGS_TAIL_DEFAULT;
    if (t && (*t == '\0' || *end != '\0' || n < 1 || n > LOGS_TAIL_MAX)) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_value", "tail",
                            "'tail' must be an integer between 1 and %d", LOGS_TAIL_MAX);
        return;
    }
    char *entries = cm_log_tail_json((int)n);
    char *body = cm_xasprintf("{\"entries\":%s}", entries);
    cm_http_reply(req, 200, "application/json", body, strlen(body));
    free(body);
    free(entries);
}

static void reply_level(cm_http_req_t *req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "level", cm_log_level_name(cm_log_get_level()));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static void h_get_level(cm_http_req_t *req, void *ud)
{
    (void)ud;
    reply_level(req);
}

static void h_set_level(cm_http_req_t *req, void *ud)
{
    (void)ud;
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    cJSON *j = cm_json_parse(body, len);
    const char *lv = NULL;
    int level = -1;
    if (j && cm_json_str(j, "level", &lv) == CM_JSON_OK)
        level = cm_log_level_parse(lv);
    cJSON_Delete(j);
    if (level < 0) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_value", "level",
                            "'level' must be one of trace, debug, info, warn, error");
        return;
    }
    cm_log_set_level((cm_log_level_t)level);
    LOG_INFO("node", "log level set to %s", cm_log_level_name((cm_log_level_t)level));
    reply_level(req);
}

static void h_internal_error(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 500, "server_error", "internal_error", NULL, "Intentional error (debug endpoint)");
}

const cm_http_route_t nd_routes[] = {
    { "POST", "/v1/chat/completions", nd_h_chat, ND_ROUTE_READY },
    { "POST", "/v1/completions", nd_h_completions, ND_ROUTE_READY },
    { "POST", "/v1/embeddings", nd_h_embeddings, ND_ROUTE_READY },
    { "GET", "/v1/models", nd_h_models, ND_ROUTE_READY },
    { "GET", "/v1/models/:id", nd_h_model, ND_ROUTE_READY },
    { "GET", "/health", h_health, ND_ROUTE_OPEN },
    { "GET", "/startup", h_startup, ND_ROUTE_OPEN },
    { "GET", "/metrics", h_metrics, 0 },
    { "GET", "/metrics/prom", h_prom, 0 },
    { "GET", "/api/logs", h_logs, 0 },
    { "GET", "/log/level", h_get_level, 0 },
    { "POST", "/log/level", h_set_level, 0 },
    { "GET", "/internal-error", h_internal_error, 0 },
};
const size_t nd_routes_count = CM_ARRAY_LEN(nd_routes);

bool nd_node_authorized(nd_node_t *nd, const cm_http_req_t *req)
{
    return nd->auth && nd_auth_check(nd->auth, cm_http_req_header(req, "Authorization")) == ND_AUTH_OK;
}

/* The credential first (nothing about the node leaks to a caller without
 * one, its state included), then: routes that need the engine answer 503
 * (with Retry-After) while starting. */
bool nd_node_pre(cm_http_req_t *req, const cm_http_route_t *route, void *ud)
{
    nd_node_t *nd = ud;
    if (!(route->policy & ND_ROUTE_OPEN)) {
        nd_auth_result_t ar = nd->auth ? nd_auth_check(nd->auth, cm_http_req_header(req, "Authorization"))
                                       : ND_AUTH_DENIED;
        if (ar == ND_AUTH_PENDING) {
            /* the router may be sending the secret this node is about to
             * receive; a 503 makes it try another node meanwhile */
            cm_http_add_header(req, "Retry-After", "1");
            cm_http_reply_error(req, 503, NULL, "node_not_registered", NULL,
                                "The node has not registered with its router yet; retry shortly");
            return false;
        }
        if (ar != ND_AUTH_OK) {
            cm_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"llm-node\"");
            cm_http_reply_error(req, 401, "invalid_request_error", "invalid_api_key", NULL,
                                "Missing or invalid credential: send Authorization: Bearer <LLM_NODE_API_KEY>");
            return false;
        }
    }
    if (!(route->policy & ND_ROUTE_READY) || atomic_load(&nd->ready))
        return true;
    cm_http_add_header(req, "Retry-After", "1");
    cm_http_reply_error(req, 503, NULL, "node_starting", NULL, "The node is starting; retry shortly");
    return false;
}

static bool pre(cm_http_req_t *req, const cm_http_route_t *route, void *ud)
{
    return nd_node_pre(req, route, ud);
}

/* ---- lifetime ---- */

int nd_node_new(const nd_config_t *cfg, cm_config_t *loaded, nd_node_t **out, char *err, size_t errlen)
{
    nd_node_t *nd = cm_xcalloc(1, sizeof(*nd));
    nd->cfg = *cfg;
    nd->loaded = loaded;
    nd->start_ms = cm_now_ms();
    atomic_init(&nd->ready, false);
    nd->stats = nd_stats_new();
    nd->sys = cm_sysinfo_new();
    const char *dir = cfg->models_dir;
    cm_mkdir_p(dir, 0755);
    nd->models = nd_models_new(dir);
    bool router = cfg->router_url && *cfg->router_url;
    nd->auth = nd_auth_new(cfg->api_key, router);
    if (!router && !(cfg->api_key && *cfg->api_key))
        LOG_WARN("node", "no router and no LLM_NODE_API_KEY: every route but /health and /startup answers 401");
    (void)err;
    (void)errlen;
    *out = nd;
    return 0;
}

/* The part of starting that the probes wait for: models scanned, backend
 * and engine up. Runs while the server already answers /health and /startup. */
static int start_up(nd_node_t *nd, char *err, size_t errlen)
{
    const nd_config_t *cfg = &nd->cfg;
    int n = nd_models_scan(nd->models);
    LOG_INFO("node", "%d model(s) in %s", n, cfg->models_dir);
    if (nd_models_watch(nd->models, MODELS_RESCAN_MS) != 0) {
        snprintf(err, errlen, "cannot start the models watcher thread");
        return -1;
    }
    nd_engine_opts_t eo = {
        .lib_dir = cfg->llama_lib_dir ? cfg->llama_lib_dir : LLAMA_LIB_DIR,
        .parallel = (int)cfg->parallel,
        .threads = (int)cfg->threads,
        .ctx_size = (int)cfg->ctx_size,
        .batch_size = (int)cfg->batch_size,
        .gpu_layers = (int)cfg->gpu_layers,
        .max_loaded = (int)cfg->max_loaded_models,
        .max_memory = (uint64_t)cfg->max_memory_bytes,
        .idle_timeout_s = (int)cfg->model_idle_timeout_s,
    };
    if (nd_engine_new(&eo, &nd->engine, err, errlen) != 0)
        return -1;
    /* a test hook: hold the starting state so probes can see it */
    for (long ms = (long)cfg->startup_delay_ms; ms > 0 && !g_stop; ms -= STARTUP_DELAY_STEP_MS)
        nanosleep(&(struct timespec){ .tv_nsec = STARTUP_DELAY_STEP_MS * 1000000L }, NULL);
    return 0;
}

static void worker_start(struct event_base *base, int worker, void *ud)
{
    nd_node_t *nd = ud;
    if (worker == 0)
        nd->notify = nd_notify_new(base, nd_api_on_job, nd);
}

int nd_node_run(nd_node_t *nd)
{
    char err[512];
    cm_http_server_opts_t o = {
        .host = nd->cfg.bind_address,
        .port = (int)nd->cfg.port,
        .workers = 1, /* the engine is the parallel part */
        .max_body = (size_t)nd->cfg.max_body_bytes,
        .max_headers = MAX_HEADER_BYTES,
        .timeout_secs = (int)nd->cfg.request_timeout_s,
        .read_timeout_secs = (int)nd->cfg.request_read_timeout_s,
        .header_timeout_secs = nd->cfg.client_header_timeout_s,
        .keepalive_timeout_secs = nd->cfg.keepalive_timeout_s,
        .body_budget = (size_t)nd->cfg.body_budget_bytes,
        .max_conns_per_ip = nd->cfg.max_conns_per_ip,
        .routes = nd_routes,
        .nroutes = nd_routes_count,
        .pre = pre,
        .ud = nd,
        .worker_start = worker_start,
    };
    if (cm_http_server_start(&o, &nd->http, err, sizeof(err)) != 0) {
        LOG_ERROR("node", "%s", err);
        return 1;
    }
    nd->port = cm_http_server_port(nd->http);
    g_srv = nd->http;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* the lines logged so far (deprecation warnings) precede these on the
     * terminal, as they did when logging was synchronous */
    cm_log_flush();
    printf("LLM_NODE_BOUND port=%d\n", nd->port); /* answering probes, not ready yet */
    fflush(stdout);
    if (start_up(nd, err, sizeof(err)) != 0) {
        LOG_ERROR("node", "%s", err);
        cm_http_server_request_stop(nd->http);
        cm_http_server_wait(nd->http);
        return 1;
    }
    atomic_store(&nd->ready, true);
    nd_agent_opts_t ao = {
        .router_url = nd->cfg.router_url,
        .join_token = nd->cfg.join_token,
        .node_token = nd->cfg.node_token,
        .node_ip = nd->cfg.node_ip,
        .port = nd->port,
        .heartbeat_secs = (int)nd->cfg.heartbeat_s,
        .slots = (int)nd->cfg.parallel,
    };
    atomic_store(&nd->agent, nd_agent_start(&ao, nd));
    LOG_INFO("node", "listening on %s:%d", o.host, nd->port);
    /* machine-readable line for scripts and tests that asked for port 0 */
    cm_log_flush();
    printf("LLM_NODE_LISTENING port=%d\n", nd->port);
    fflush(stdout);
    cm_http_server_wait(nd->http);
    LOG_INFO("node", "stopped");
    return 0;
}

void nd_node_free(nd_node_t *nd)
{
    if (!nd)
        return;
    nd_agent_stop(atomic_load(&nd->agent));
    /* the loop has stopped (nd_node_run returned) or never ran */
    nd_engine_free(nd->engine); /* may still notify: free the notifier after */
    nd_notify_free(nd->notify);
    cm_http_server_free(nd->http);
    nd_models_free(nd->models);
    nd_stats_free(nd->stats);
    cm_sysinfo_free(nd->sys);
    nd_auth_free(nd->auth);
    cm_config_free(nd->loaded);
    free(nd);
}
