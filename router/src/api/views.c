#include "api/views.h"

#include "json.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void add_pct(cJSON *o, const char *key, double v)
{
    if (v < 0)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

static void add_str_or_null(cJSON *o, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *str_array(char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

/* Stored JSON array text (validated when it was registered), or []. */
static cJSON *parsed_array(const char *text)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    return j ? j : cJSON_CreateArray();
}

static void add_metrics(cJSON *o, const rt_node_view_t *v)
{
    add_pct(o, "cpu_usage", v->cpu);
    add_pct(o, "memory_usage", v->mem);
    add_pct(o, "gpu_usage", v->gpu);
    add_pct(o, "gpu_memory_usage", v->gpu_mem);
    cJSON_AddNumberToObject(o, "active_requests", v->active);
    cJSON_AddNumberToObject(o, "queued_requests", v->queued);
    cJSON_AddNumberToObject(o, "average_response_time_ms", v->avg_ms);
    cJSON_AddNumberToObject(o, "tokens_per_second", v->tps);
}

static void add_stats(cJSON *o, const rt_node_view_t *v)
{
    cJSON_AddNumberToObject(o, "in_flight", v->inflight);
    cJSON_AddNumberToObject(o, "total_slots", v->slots);
    cJSON_AddNumberToObject(o, "total_requests", (double)v->total);
    cJSON_AddNumberToObject(o, "successful_requests", (double)v->ok);
    cJSON_AddNumberToObject(o, "failed_requests", (double)v->failed);
    cJSON_AddNumberToObject(o, "average_latency_ms", v->ok ? v->lat_sum / (double)v->ok : 0);
    cJSON_AddNumberToObject(o, "recent_latency_ms", v->lat_ewma);
}

static cJSON *history(const rt_node_view_t *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->nhist; i++) {
        const rt_node_sample_t *s = &v->hist[i];
        cJSON *o = cJSON_CreateObject();
        cm_json_add_time(o, "timestamp", (int64_t)s->wall_ms);
        add_pct(o, "cpu_usage", s->cpu);
        add_pct(o, "memory_usage", s->mem);
        add_pct(o, "gpu_usage", s->gpu);
        add_pct(o, "gpu_memory_usage", s->gpu_mem);
        cJSON_AddNumberToObject(o, "active_requests", s->active);
        cJSON_AddNumberToObject(o, "in_flight", s->inflight);
        cJSON_AddNumberToObject(o, "average_response_time_ms", s->avg_ms);
        cJSON_AddNumberToObject(o, "tokens_per_second", s->tps);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* The node's last reported model sync: [{"model","state","bytes","total","error"?}]. */
static cJSON *model_sync(const rt_node_view_t *v)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < v->nsync; i++) {
        const rt_node_sync_t *e = &v->sync[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", e->model);
        cJSON_AddStringToObject(o, "state", e->state);
        cJSON_AddNumberToObject(o, "bytes", (double)e->bytes);
        cJSON_AddNumberToObject(o, "total", (double)e->total);
        if (e->error[0])
            cJSON_AddStringToObject(o, "error", e->error);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

cJSON *rt_view_node(const rt_node_view_t *v, bool with_history)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v->id);
    cJSON_AddStringToObject(o, "node_id", v->id);
    cJSON_AddStringToObject(o, "machine_name", v->machine_name);
    cJSON_AddStringToObject(o, "ip_address", v->ip_address);
    cJSON_AddStringToObject(o, "runtime_version", v->runtime_version);
    cJSON_AddNumberToObject(o, "runtime_port", v->runtime_port);
    cJSON_AddNumberToObject(o, "node_api_port", v->api_port);
    cJSON_AddStringToObject(o, "status", v->status);
    cJSON_AddBoolToObject(o, "online", v->online);
    cm_json_add_time(o, "registered_at", v->registered_at);
    cm_json_add_time(o, "last_seen", (int64_t)v->last_seen_wall);
    add_str_or_null(o, "custom_name", v->custom_name);
    cJSON_AddItemToObject(o, "tags", parsed_array(v->tags_json));
    add_str_or_null(o, "notes", v->notes);
    cJSON_AddBoolToObject(o, "gpu_available", v->gpu_available);
    cJSON_AddItemToObject(o, "gpu_devices", parsed_array(v->gpu_devices_json));
    cJSON_AddItemToObject(o, "available_models", str_array(v->models, v->nmodels));
    cJSON_AddItemToObject(o, "loaded_models", str_array(v->loaded, v->nloaded));
    cJSON_AddBoolToObject(o, "initializing", v->initializing);
    cJSON *rm = cJSON_AddArrayToObject(o, "ready_models");
    cJSON_AddItemToArray(rm, cJSON_CreateNumber(v->ready[0]));
    cJSON_AddItemToArray(rm, cJSON_CreateNumber(v->ready[1]));
    add_metrics(o, v);
    add_stats(o, v);
    cJSON_AddItemToObject(o, "model_sync", model_sync(v));
    if (with_history)
        cJSON_AddItemToObject(o, "history", history(v));
    return o;
}

cJSON *rt_view_nodes(const rt_node_view_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, rt_view_node(&v[i], false));
    return a;
}

cJSON *rt_view_metrics(const rt_node_view_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "node_id", v[i].id);
        cJSON_AddStringToObject(o, "machine_name", v[i].machine_name);
        cJSON_AddStringToObject(o, "status", v[i].status);
        cm_json_add_time(o, "last_seen", (int64_t)v[i].last_seen_wall);
        add_metrics(o, &v[i]);
        add_stats(o, &v[i]);
        cJSON_AddItemToObject(o, "history", history(&v[i]));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

cJSON *rt_view_summary(const rt_node_view_t *v, size_t n, rt_lb_mode_t mode)
{
    int online = 0, suspended = 0, inflight = 0, slots = 0;
    uint64_t total = 0, ok = 0, failed = 0;
    double lat = 0;
    for (size_t i = 0; i < n; i++) {
        online += v[i].online;
        suspended += v[i].online && v[i].suspended;
        inflight += v[i].inflight;
        if (v[i].online)
            slots += v[i].slots;
        total += v[i].total;
        ok += v[i].ok;
        failed += v[i].failed;
        lat += v[i].lat_sum;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "total_nodes", (double)n);
    cJSON_AddNumberToObject(o, "online_nodes", online);
    cJSON_AddNumberToObject(o, "offline_nodes", (double)n - online);
    cJSON_AddNumberToObject(o, "suspended_nodes", suspended);
    cJSON_AddNumberToObject(o, "total_slots", slots);
    cJSON_AddNumberToObject(o, "active_requests", inflight);
    cJSON_AddNumberToObject(o, "total_requests", (double)total);
    cJSON_AddNumberToObject(o, "successful_requests", (double)ok);
    cJSON_AddNumberToObject(o, "failed_requests", (double)failed);
    cJSON_AddNumberToObject(o, "average_response_time_ms", ok ? lat / (double)ok : 0);
    cJSON_AddStringToObject(o, "load_balancer_mode", rt_lb_mode_name(mode));
    return o;
}

static bool serves(const rt_node_view_t *v, const char *model)
{
    for (size_t i = 0; i < v->nmodels; i++)
        if (strcmp(v->models[i], model) == 0)
            return true;
    return false;
}

static cJSON *model_obj(const char *id, int ready, int nodes)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "llm-router");
    cJSON_AddNumberToObject(m, "ready_nodes", ready);
    cJSON_AddNumberToObject(m, "nodes", nodes);
    return m;
}

cJSON *rt_view_models(const rt_node_view_t *v, size_t n, const char *model)
{
    cJSON *list = cJSON_CreateObject(); /* keyed by id: no duplicates */
    for (size_t i = 0; i < n; i++) {
        if (!v[i].online)
            continue;
        for (size_t j = 0; j < v[i].nmodels; j++) {
            const char *id = v[i].models[j];
            if ((model && strcmp(id, model) != 0) || cJSON_GetObjectItemCaseSensitive(list, id))
                continue;
            int ready = 0, nodes = 0;
            for (size_t k = i; k < n; k++) { /* i is the first online node serving id */
                if (!v[k].online || !serves(&v[k], id))
                    continue;
                nodes++;
                ready += !v[k].initializing && !v[k].suspended;
            }
            cJSON_AddItemToObject(list, id, model_obj(id, ready, nodes));
        }
    }
    /* the object keyed by id deduplicated; hand out a plain array */
    cJSON *out = cJSON_CreateArray();
    cJSON *it;
    while ((it = list->child)) {
        cJSON_DetachItemViaPointer(list, it);
        free(it->string);
        it->string = NULL;
        cJSON_AddItemToArray(out, it);
    }
    cJSON_Delete(list);
    if (model && !out->child) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

void rt_view_count_nodes(const char *id, int *ready, int *nodes, void *arg)
{
    const rt_node_views_t *vs = arg;
    for (size_t i = 0; i < vs->n; i++) {
        const rt_node_view_t *v = &vs->v[i];
        if (v->online && serves(v, id)) {
            (*nodes)++;
            *ready += !v->initializing && !v->suspended;
        }
    }
}

/* ---- the dashboard ---- */

static const char *display_name(const rt_node_view_t *v)
{
    return v->custom_name && *v->custom_name ? v->custom_name : v->machine_name;
}

cJSON *rt_view_dash_nodes(const rt_node_view_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = rt_view_node(&v[i], false);
        cJSON_AddStringToObject(o, "display_name", display_name(&v[i]));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

cJSON *rt_view_node_history(const rt_node_view_t *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "node_id", v->id);
    cJSON_AddStringToObject(o, "machine_name", v->machine_name);
    add_str_or_null(o, "custom_name", v->custom_name);
    cJSON_AddStringToObject(o, "display_name", display_name(v));
    cJSON_AddStringToObject(o, "status", v->status);
    cm_json_add_time(o, "last_seen", (int64_t)v->last_seen_wall);
    cJSON_AddNumberToObject(o, "samples", (double)v->nhist);
    cJSON_AddItemToObject(o, "history", history(v));
    return o;
}

/* Adds the mean of the online nodes' reported values (< 0: not reported),
 * null when no online node reports it. */
static void add_mean(cJSON *o, const char *key, double sum, int k)
{
    add_pct(o, key, k ? sum / k : -1);
}

cJSON *rt_view_dash_stats(const rt_node_view_t *v, size_t n, rt_lb_mode_t mode)
{
    cJSON *o = rt_view_summary(v, n, mode);
    int by[4] = { 0 }; /* online, initializing, suspended, offline */
    double sum[4] = { 0 }; /* cpu, mem, gpu, gpu_mem of the online nodes reporting them */
    int k[4] = { 0 };
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = v[i].status;
        by[strcmp(s, "online") == 0 ? 0 : strcmp(s, "initializing") == 0 ? 1 : strcmp(s, "suspended") == 0 ? 2 : 3]++;
        if (v[i].last_seen_wall > last)
            last = v[i].last_seen_wall;
        const double x[4] = { v[i].cpu, v[i].mem, v[i].gpu, v[i].gpu_mem };
        for (int f = 0; f < 4 && v[i].online; f++)
            if (x[f] >= 0) {
                sum[f] += x[f];
                k[f]++;
            }
    }
    cJSON *bs = cJSON_AddObjectToObject(o, "nodes_by_status");
    cJSON_AddNumberToObject(bs, "online", by[0]);
    cJSON_AddNumberToObject(bs, "initializing", by[1]);
    cJSON_AddNumberToObject(bs, "suspended", by[2]);
    cJSON_AddNumberToObject(bs, "offline", by[3]);
    cJSON_AddNumberToObject(o, "total_active_requests", cJSON_GetNumberValue(cJSON_GetObjectItem(o, "active_requests")));
    add_mean(o, "average_cpu_usage", sum[0], k[0]);
    add_mean(o, "average_memory_usage", sum[1], k[1]);
    add_mean(o, "average_gpu_usage", sum[2], k[2]);
    add_mean(o, "average_gpu_memory_usage", sum[3], k[3]);
    cm_json_add_time(o, "last_metrics_updated_at", (int64_t)last);
    return o;
}

cJSON *rt_view_models_served(const rt_node_view_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (!v[i].online)
            continue;
        for (size_t j = 0; j < v[i].nmodels; j++) {
            bool seen = false;
            const cJSON *it;
            cJSON_ArrayForEach(it, a)
                if (strcmp(it->valuestring, v[i].models[j]) == 0) {
                    seen = true;
                    break;
                }
            if (!seen)
                cJSON_AddItemToArray(a, cJSON_CreateString(v[i].models[j]));
        }
    }
    return a;
}

cJSON *rt_view_window(const rt_history_agg_t *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!a) {
        static const char *const keys[] = { "requests", "errors", "error_rate", "average_latency_ms",
                                            "p95_latency_ms", "tokens_per_second", "prompt_tokens",
                                            "completion_tokens", "total_tokens" };
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            cJSON_AddNullToObject(o, keys[i]);
        return o;
    }
    cJSON_AddNumberToObject(o, "requests", (double)a->count);
    cJSON_AddNumberToObject(o, "errors", (double)a->errors);
    cJSON_AddNumberToObject(o, "error_rate", a->count ? (double)a->errors / (double)a->count : 0);
    cJSON_AddNumberToObject(o, "average_latency_ms", a->avg_ms);
    cJSON_AddNumberToObject(o, "p95_latency_ms", a->p95_ms);
    cJSON_AddNumberToObject(o, "tokens_per_second", a->tokens_per_s);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)a->completion_tokens);
    cJSON_AddNumberToObject(o, "total_tokens", (double)(a->prompt_tokens + a->completion_tokens));
    return o;
}

cJSON *rt_view_buckets(const rt_history_agg_t *agg, size_t nb, int64_t from_ms, int64_t bucket_ms)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < nb; i++) {
        const rt_history_agg_t *b = &agg[i];
        cJSON *o = cJSON_CreateObject();
        cm_json_add_time(o, "timestamp", from_ms + (int64_t)i * bucket_ms);
        cJSON_AddNumberToObject(o, "requests", (double)b->count);
        cJSON_AddNumberToObject(o, "success", (double)(b->count - b->errors));
        cJSON_AddNumberToObject(o, "errors", (double)b->errors);
        cJSON_AddNumberToObject(o, "prompt_tokens", (double)b->prompt_tokens);
        cJSON_AddNumberToObject(o, "completion_tokens", (double)b->completion_tokens);
        cJSON_AddNumberToObject(o, "total_tokens", (double)(b->prompt_tokens + b->completion_tokens));
        cJSON_AddNumberToObject(o, "average_latency_ms", b->avg_ms);
        cJSON_AddNumberToObject(o, "tokens_per_second", b->tokens_per_s);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
