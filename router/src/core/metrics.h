/* metrics: the router's Prometheus metrics, counted as requests end and
 * written out on a scrape (GET /metrics, api/api_metrics.c).
 *
 * Two families (../shared/reference/metrics.md has the names and sources):
 * the OpenTelemetry GenAI names as Envoy AI Gateway exports them
 * (gen_ai_client_token_usage, gen_ai_server_request_duration_seconds,
 * gen_ai_server_time_to_first_token_seconds,
 * gen_ai_server_time_per_output_token_seconds, with the conventions' label
 * names and recommended buckets), and the router's own llm_router_* family.
 * Labels are bounded: model, node id and name, endpoint, status code, reason;
 * never a request, session or client address.
 *
 * Thread-safe: rt_metrics_request runs on the worker loops at each request's
 * end, rt_metrics_tokens on the recorder's thread, rt_metrics_write on the
 * scraping request's loop. Counting is cheap (no allocation once a label set
 * has been seen); writing takes the registry snapshot outside any lock the
 * counters hold. */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include "core/proxy.h"
#include "core/registry.h"

#include <stdint.h>

struct evbuffer;

typedef struct rt_metrics rt_metrics_t;

/* Cardinality bounds. A request series is one (model, node id, node name,
 * endpoint, status, stream) tuple of llm_router_requests_total; past
 * RT_METRICS_MAX_SERIES of them, new tuples are counted with model="other"
 * (the node, endpoint and status kept), and past RT_METRICS_MAX_SERIES +
 * RT_METRICS_FOLD_RESERVE not at all (llm_router_metrics_dropped_total). A
 * histogram group is one (endpoint, model) pair carrying the duration, time
 * to first token, time per output token and token usage histograms; past
 * RT_METRICS_MAX_GROUPS new models are folded into model="other". A model
 * name that is longer than RT_METRICS_MODEL_MAX bytes, is not valid UTF-8 or
 * has control characters is "other" too, and so is the model of a request
 * answered model_not_found (clients choose those names: they must not mint
 * series). Endpoints are the three OpenAI paths or "other". */
#define RT_METRICS_MAX_SERIES 10000
#define RT_METRICS_FOLD_RESERVE 2048
#define RT_METRICS_MAX_GROUPS 1000
#define RT_METRICS_MODEL_MAX 128
/* Error labels of gen_ai_server_request_duration_seconds per group (the
 * proxy's codes, or the status code of an error the node answered); more
 * fold into error_type="_OTHER". */
#define RT_METRICS_MAX_ERROR_TYPES 12
/* Cloud providers of /metrics/cloud; more fold into provider="other". */
#define RT_METRICS_MAX_PROVIDERS 32

rt_metrics_t *rt_metrics_new(void);
void rt_metrics_free(rt_metrics_t *m);

/* A proxied request ended (the loop thread, from the recorder's end call):
 * requests by model, node, endpoint and status; duration; time to first
 * byte; the router's overhead (duration minus queue and upstream time);
 * queue wait; retries (attempts - 1); rejections by reason (error_type). */
void rt_metrics_request(rt_metrics_t *m, const char *endpoint, const char *model, const rt_proxy_result_t *r);
/* Its token counts, once the recorder knows them (any thread); < 0: unknown.
 * gen_s: first byte to end (time per output token = gen_s / completion). */
/* (Addition.) Time per output token is observed only for gen_s > 0 and
 * completion_tokens > 1, as gen_s / (completion_tokens - 1): the first byte
 * carries the first token, so gen_s spans the n - 1 intervals after it (as
 * vLLM and OTel define it). Pass gen_s = 0 for an answer that was not
 * streamed (its bytes come at once: no per-token timing). Embeddings record
 * input tokens only. */
void rt_metrics_tokens(rt_metrics_t *m, const char *endpoint, const char *model, int64_t prompt_tokens,
                       int64_t completion_tokens, double gen_s);
/* A cloud provider's request (the cloud module): /metrics/cloud's
 * cloud_requests_total{provider,status} and cloud_request_latency_seconds. */
void rt_metrics_cloud(rt_metrics_t *m, const char *provider, int status, double latency_s);

/* What the scrape reads from other modules, gathered by the caller. */
typedef struct {
    rt_registry_t *registry;   /* per-node gauges (up, status, slots, in flight, cpu, memory, gpu) */
    size_t queue_depth;        /* admission queue: requests waiting now */
    uint64_t history_depth;    /* recorder queue: rows waiting for the writer */
    uint64_t history_written, history_dropped;
    uint64_t start_wall_ms;    /* process start, for process_start_time_seconds */
} rt_metrics_sources_t;
/* The whole router in the text format 0.0.4 (CM_PROM_CONTENT_TYPE),
 * process_* included. */
void rt_metrics_write(rt_metrics_t *m, const rt_metrics_sources_t *src, struct evbuffer *out);
/* /metrics/cloud's two families. */
void rt_metrics_write_cloud(rt_metrics_t *m, struct evbuffer *out);

/* (Addition.) Request series and histogram groups held now (tests, the
 * llm_router_metrics_series gauge). */
void rt_metrics_counts(rt_metrics_t *m, size_t *series, size_t *groups);

#endif
