/* views: the JSON the node and model APIs return, rendered from registry
 * snapshots (core/registry.h) outside the registry's lock. Pure functions of
 * their input; every result is owned by the caller (cJSON_Delete). */
#ifndef RT_VIEWS_H
#define RT_VIEWS_H

#include "core/balancer.h"
#include "core/registry.h"
#include "store/history.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* One node as GET /api/nodes/:id shows it; with "history" when asked. */
cJSON *rt_view_node(const rt_node_view_t *v, bool history);
/* GET /api/nodes: every node, without history. */
cJSON *rt_view_nodes(const rt_node_view_t *v, size_t n);
/* GET /api/dashboard/metrics-style list: each node's figures and history. */
cJSON *rt_view_metrics(const rt_node_view_t *v, size_t n);
/* Totals over all nodes (GET /api/metrics/summary, without the queue). */
cJSON *rt_view_summary(const rt_node_view_t *v, size_t n, rt_lb_mode_t mode);
/* OpenAI model objects of every model an online node serves, with
 * "ready_nodes" and "nodes"; only `model` when not NULL (then NULL when no
 * online node serves it). */
cJSON *rt_view_models(const rt_node_view_t *v, size_t n, const char *model);
/* A registry snapshot, as the catalogue's counting callback takes it. */
typedef struct {
    const rt_node_view_t *v;
    size_t n;
} rt_node_views_t;
/* How many online nodes of arg (an rt_node_views_t) advertise id, and how
 * many of them are ready: the callback rt_models_append_json takes. */
void rt_view_count_nodes(const char *id, int *ready, int *nodes, void *arg);

/* ---- the dashboard (api_dashboard.c) ---- */

/* GET /api/dashboard/nodes: rt_view_node of each node (no history) plus
 * "display_name" (custom name, else machine name). Names, tags and notes are
 * plain JSON strings: nothing is rendered as markup. */
cJSON *rt_view_dash_nodes(const rt_node_view_t *v, size_t n);
/* GET /api/dashboard/metrics/:node_id: the node's identity and status and
 * its heartbeat samples, oldest first, as "history". */
cJSON *rt_view_node_history(const rt_node_view_t *v);
/* GET /api/dashboard/stats without the parts outside the registry:
 * rt_view_summary plus "nodes_by_status" {online, initializing, suspended,
 * offline}, "total_active_requests", the mean GPU figures of the online
 * nodes that report them (null when none) and "last_metrics_updated_at". */
cJSON *rt_view_dash_stats(const rt_node_view_t *v, size_t n, rt_lb_mode_t mode);
/* The distinct models of the online nodes, in registration order. */
cJSON *rt_view_models_served(const rt_node_view_t *v, size_t n);
/* One overview window: requests, errors, error_rate, average_latency_ms,
 * p95_latency_ms, tokens_per_second, prompt/completion/total tokens.
 * a NULL (no history): every figure null. */
cJSON *rt_view_window(const rt_history_agg_t *a);
/* The trend series: nb buckets of bucket_ms from from_ms, agg[i] for the one
 * starting at from_ms + i * bucket_ms (zeros where nothing was recorded, so
 * the series has no holes). Each {"timestamp", "requests", "success",
 * "errors", prompt/completion/total tokens, "average_latency_ms",
 * "tokens_per_second"}. */
cJSON *rt_view_buckets(const rt_history_agg_t *agg, size_t nb, int64_t from_ms, int64_t bucket_ms);

#endif
