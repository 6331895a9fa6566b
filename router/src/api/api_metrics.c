/* api_metrics: Prometheus (RT_POLICY_METRICS: an API key or a viewer
 * session; LLM_ROUTER_METRICS_PUBLIC=1 opens them).
 *
 *   GET /metrics          the whole router (core/metrics.h), text 0.0.4
 *   GET /metrics/cloud    cloud_requests_total, cloud_request_latency_seconds
 *   GET /metrics/targets  HTTP service discovery of the online nodes'
 *                         /metrics/prom, for Prometheus to scrape them directly
 *
 * A Prometheus scrape configuration (the router's API key as bearer token;
 * the nodes want their own credential, LLM_NODE_API_KEY, set on each node):
 *
 *   scrape_configs:
 *     - job_name: llm-router
 *       authorization: { credentials: "<router API key>" }
 *       static_configs: [{ targets: ["router:8080"] }]
 *     - job_name: llm-node
 *       authorization: { credentials: "<LLM_NODE_API_KEY>" }
 *       http_sd_configs:
 *         - url: http://router:8080/metrics/targets
 *           authorization: { credentials: "<router API key>" }
 */
#include "api/handlers.h"
#include "core/admission.h"
#include "core/metrics.h"
#include "core/recorder.h"
#include "core/registry.h"
#include "prom.h"
#include "router.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

static void reply_buffer(cm_http_req_t *req, struct evbuffer *b)
{
    size_t len = evbuffer_get_length(b);
    cm_http_reply(req, 200, CM_PROM_CONTENT_TYPE, evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

void rt_h_metrics(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    rt_recorder_stats_t rs = { 0 };
    if (rt->recorder)
        rt_recorder_stats(rt->recorder, &rs);
    rt_metrics_sources_t src = {
        .registry = rt->registry,
        .queue_depth = rt->admission ? rt_admission_waiting(rt->admission) : 0,
        .history_depth = rs.depth,
        .history_written = rs.written,
        .history_dropped = rs.dropped,
        .start_wall_ms = rt->started_wall_ms,
    };
    struct evbuffer *b = evbuffer_new();
    rt_metrics_write(rt->metrics, &src, b);
    reply_buffer(req, b);
}

void rt_h_metrics_cloud(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    struct evbuffer *b = evbuffer_new();
    rt_metrics_write_cloud(rt->metrics, b);
    reply_buffer(req, b);
}

void rt_h_metrics_targets(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (!v[i].online || !v[i].ip_address || v[i].api_port <= 0)
            continue;
        char target[128];
        bool v6 = strchr(v[i].ip_address, ':') != NULL;
        snprintf(target, sizeof(target), v6 ? "[%s]:%d" : "%s:%d", v[i].ip_address, v[i].api_port);
        cJSON *t = cJSON_CreateObject();
        cJSON *ts = cJSON_AddArrayToObject(t, "targets");
        cJSON_AddItemToArray(ts, cJSON_CreateString(target));
        cJSON *l = cJSON_AddObjectToObject(t, "labels");
        cJSON_AddStringToObject(l, "node_id", v[i].id);
        const char *name = v[i].custom_name && *v[i].custom_name ? v[i].custom_name : v[i].machine_name;
        cJSON_AddStringToObject(l, "node_name", name ? name : "");
        cJSON_AddStringToObject(l, "__metrics_path__", "/metrics/prom");
        cJSON_AddItemToArray(a, t);
    }
    rt_registry_views_free(v, n);
    cm_http_reply_json(req, 200, a);
    cJSON_Delete(a);
}
