/* api_nodes: thin handlers: registration (POST /api/nodes), heartbeats
 * (POST /api/health), node management and the dashboard's node data. They
 * parse and validate, call the nodes service (core/nodes.c) or take a
 * registry snapshot, and reply; JSON is rendered by api/views.c. */
#include "api/handlers.h"
#include "api/views.h"
#include "auth/auth.h"
#include "core/admission.h"
#include "core/nodes.h"
#include "core/registry.h"
#include "json.h"
#include "models/models.h"
#include "router.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NAME 128
#define MAX_MODEL_ID 256
#define MAX_NOTES 4096
#define MAX_TAGS 32
#define MAX_DEVICES_JSON 8192

/* ---- parsing helpers ---- */

static bool str_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max;
}

static bool host_ok(const char *s)
{
    if (!str_ok(s, 64))
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '.' || *s == ':' || *s == '-'))
            return false;
    return true;
}

/* Appends the strings of arr[key] to v (deduplicated by the registry).
 * false when the key holds something else or an item is too long. */
static bool collect_ids(const cJSON *obj, const char *key, const char **v, size_t *n, bool *present)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!a || cJSON_IsNull(a))
        return true;
    if (!cJSON_IsArray(a))
        return false;
    *present = true;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it) || !str_ok(it->valuestring, MAX_MODEL_ID))
            return false;
        if (*n < RT_REGISTRY_MAX_MODELS)
            v[(*n)++] = it->valuestring;
    }
    return true;
}

static double num_or(const cJSON *obj, const char *key, double def)
{
    double v;
    return cm_json_num(obj, key, &v) == CM_JSON_OK ? v : def;
}

/* The gpu_devices array as text (NULL when absent); false when malformed. */
static bool devices_text(const cJSON *obj, char **out)
{
    *out = NULL;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "gpu_devices");
    if (!a || cJSON_IsNull(a))
        return true;
    if (!cJSON_IsArray(a))
        return false;
    char *s = cJSON_PrintUnformatted(a);
    if (strlen(s) > MAX_DEVICES_JSON) {
        free(s);
        return false;
    }
    *out = s;
    return true;
}

static void reply_not_found(cm_http_req_t *req, const char *id)
{
    cm_http_reply_error(req, 404, NULL, "node_not_found", NULL, "Node %s not found", id);
}

static void reply_node(cm_http_req_t *req, rt_router_t *rt, const char *id, int status, bool history)
{
    rt_node_view_t v;
    if (rt_registry_snapshot_one(rt->registry, id, history, &v) != 0) {
        reply_not_found(req, id);
        return;
    }
    cJSON *j = rt_view_node(&v, history);
    rt_registry_view_clear(&v);
    cm_http_reply_json(req, status, j);
    cJSON_Delete(j);
}

/* The whole registry through one of the views. */
static void reply_views(cm_http_req_t *req, rt_router_t *rt, bool history, cJSON *(*view)(const rt_node_view_t *, size_t))
{
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, history, &v);
    cJSON *j = view(v, n);
    rt_registry_views_free(v, n);
    cm_http_reply_json(req, 200, j);
    cJSON_Delete(j);
}

/* ---- registration ---- */

static int parse_register(cJSON *j, rt_node_info_t *info, const char **models, char **devices, char *err,
                          size_t errlen)
{
    long long port, api_port = 0, slots = 0;
    bool gpu = false, present = false;
    info->runtime_version = "";
    if (cm_json_str(j, "machine_name", &info->machine_name) != CM_JSON_OK || !str_ok(info->machine_name, MAX_NAME))
        return snprintf(err, errlen, "machine_name: a string of 1 to %d characters is required", MAX_NAME), -1;
    /* read only with LLM_ROUTER_TRUST_NODE_ADDRESS (then it must be an IP
     * literal, checked by the nodes service); the peer address otherwise */
    int ip_rc = cm_json_str(j, "ip_address", &info->ip_address);
    if (ip_rc == CM_JSON_ABSENT)
        info->ip_address = NULL;
    else if (ip_rc != CM_JSON_OK || !host_ok(info->ip_address))
        return snprintf(err, errlen, "ip_address: an IP address"), -1;
    if (cm_json_int(j, "runtime_port", &port) != CM_JSON_OK || port < 1 || port > 65535)
        return snprintf(err, errlen, "runtime_port: a port number is required"), -1;
    int rc = cm_json_int(j, "node_api_port", &api_port);
    if (rc == CM_JSON_TYPE || (rc == CM_JSON_OK && (api_port < 1 || api_port > 65535)))
        return snprintf(err, errlen, "node_api_port: must be a port number"), -1;
    if (rc == CM_JSON_ABSENT && port == 65535)
        return snprintf(err, errlen, "node_api_port: required when runtime_port is 65535"), -1;
    if (cm_json_str(j, "runtime_version", &info->runtime_version) == CM_JSON_TYPE ||
        strlen(info->runtime_version) > 64)
        return snprintf(err, errlen, "runtime_version: a short string"), -1;
    if (cm_json_bool(j, "gpu_available", &gpu) == CM_JSON_TYPE)
        return snprintf(err, errlen, "gpu_available: must be a boolean"), -1;
    if (cm_json_int(j, "total_slots", &slots) == CM_JSON_TYPE || slots < 0 || slots > 4096)
        return snprintf(err, errlen, "total_slots: an integer from 0 to 4096"), -1;
    if (!devices_text(j, devices))
        return snprintf(err, errlen, "gpu_devices: an array of {model, count}"), -1;
    if (!collect_ids(j, "available_models", models, &info->nmodels, &present))
        return snprintf(err, errlen, "available_models: an array of model ids"), -1;
    info->runtime_port = (int)port;
    info->api_port = rc == CM_JSON_OK ? (int)api_port : (int)port + 1;
    info->gpu_available = gpu;
    info->gpu_devices_json = *devices;
    info->models = models;
    info->total_slots = (int)slots;
    return 0;
}

/* The node token a re-registering node presents, as it sends it with its
 * heartbeats (X-Node-Token, or Authorization: Bearer nt_...); NULL: none. */
static const char *presented_node_token(const cm_http_req_t *req)
{
    const char *x = cm_http_req_header(req, "X-Node-Token");
    if (x && *x)
        return x;
    const char *a = cm_http_req_header(req, "Authorization");
    if (a && strncasecmp(a, "Bearer nt_", 10) == 0)
        return a + 7;
    return NULL;
}

void rt_h_nodes_register(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *models[RT_REGISTRY_MAX_MODELS];
    char *devices = NULL, err[160], ra[16];
    rt_node_info_t info = { 0 };
    rt_nodes_grant_t g;
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return;
    if (parse_register(j, &info, models, &devices, err, sizeof(err)) != 0) {
        cm_http_reply_error(req, 400, NULL, "invalid_node", NULL, "%s", err);
        goto out;
    }
    switch (rt_nodes_register(rt->nodes, &info, cm_http_req_peer(req), presented_node_token(req), &g)) {
    case RT_NODES_OK:
        break;
    case RT_NODES_GPU_REQUIRED:
        cm_http_reply_error(req, 403, NULL, "gpu_required", NULL,
                            "GPU is required: this router only accepts nodes with a GPU (LLM_ROUTER_REQUIRE_GPU)");
        goto out;
    case RT_NODES_TAKEN:
        cm_http_reply_error(req, 409, NULL, "node_identity_taken", NULL,
                            "A node with this machine_name and runtime_port is registered: re-registering it "
                            "needs its node token (X-Node-Token), or an admin deletes it first");
        goto out;
    case RT_NODES_BAD_ADDRESS:
        cm_http_reply_error(req, 400, NULL, "invalid_node", "ip_address",
                            rt->cfg.trust_node_address ? "ip_address: an IP address (not a host name) is required"
                                                       : "The registration's address cannot be used to reach the node");
        goto out;
    case RT_NODES_RATE_LIMITED:
        snprintf(ra, sizeof(ra), "%u", g.retry_after_s ? g.retry_after_s : 1);
        cm_http_add_header(req, "Retry-After", ra);
        cm_http_reply_error(req, 429, NULL, "too_many_registrations", NULL,
                            "Too many registrations from this address; retry in %s s", ra);
        goto out;
    default:
        cm_http_reply_error(req, 503, NULL, "registry_full", NULL, "Too many nodes are registered and online");
        goto out;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "node_id", g.id);
    cJSON_AddStringToObject(r, "status", "registered");
    cJSON_AddNumberToObject(r, "node_api_port", info.api_port);
    cJSON_AddStringToObject(r, "node_token", g.token);
    /* what the router presents to the node (Authorization: Bearer) */
    cJSON_AddStringToObject(r, "router_secret", g.secret);
    cJSON_AddStringToObject(r, "ip_address", g.address);
    cm_http_reply_json(req, 201, r);
    cJSON_Delete(r);
    sodium_memzero(&g, sizeof(g));
out:
    free(devices);
    cJSON_Delete(j);
}

/* ---- heartbeats ---- */

static int parse_heartbeat(cJSON *j, rt_node_metrics_t *m, const char **models, const char **loaded,
                           char **devices, rt_node_sync_t **sync)
{
    bool any = false, any_loaded = false;
    long long v;
    m->cpu = num_or(j, "cpu_usage", -1);
    m->mem = num_or(j, "memory_usage", -1);
    m->gpu = num_or(j, "gpu_usage", -1);
    m->gpu_mem = num_or(j, "gpu_memory_usage", -1);
    m->active = cm_json_int(j, "active_requests", &v) == CM_JSON_OK && v >= 0 && v < 1000000 ? (int)v : 0;
    m->queued = cm_json_int(j, "queued_requests", &v) == CM_JSON_OK && v >= 0 && v < 1000000 ? (int)v : 0;
    m->total_slots = cm_json_int(j, "total_slots", &v) == CM_JSON_OK && v > 0 && v <= 4096 ? (int)v : 0;
    m->avg_ms = num_or(j, "average_response_time_ms", 0);
    m->tps = num_or(j, "tokens_per_second", 0);
    cm_json_bool(j, "initializing", &m->initializing);
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(j, "ready_models");
    if (cJSON_GetArraySize(rm) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(rm, 0))) {
        m->ready_models[0] = (int)cJSON_GetArrayItem(rm, 0)->valuedouble;
        m->ready_models[1] = (int)cJSON_GetArrayItem(rm, 1)->valuedouble;
    }
    if (!devices_text(j, devices))
        return -1;
    m->gpu_devices_json = *devices;
    if (!collect_ids(j, "available_models", models, &m->nmodels, &any) ||
        !collect_ids(j, "loaded_models", models, &m->nmodels, &any) ||
        !collect_ids(j, "loaded_embedding_models", models, &m->nmodels, &any) ||
        !collect_ids(j, "loaded_models", loaded, &m->nloaded, &any_loaded) ||
        !collect_ids(j, "loaded_embedding_models", loaded, &m->nloaded, &any_loaded))
        return -1;
    m->models = any ? models : NULL;
    m->loaded = any_loaded ? loaded : NULL;
    /* the model sync's progress (bounded, strict: nodes.h) */
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "model_sync");
    if (rt_nodes_parse_sync(ms, sync, &m->nsync) != 0)
        return -1;
    m->has_sync = ms != NULL;
    m->sync = *sync;
    return 0;
}

void rt_h_nodes_heartbeat(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *mod[RT_REGISTRY_MAX_MODELS], *loaded[RT_REGISTRY_MAX_MODELS];
    char *devices = NULL;
    rt_node_sync_t *sync = NULL;
    const char *node_id;
    rt_node_metrics_t m = { 0 };
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return;
    const rt_principal_t *who = rt_auth_principal(req);
    if (cm_json_str(j, "node_id", &node_id) != CM_JSON_OK || !str_ok(node_id, 64)) {
        cm_http_reply_error(req, 400, NULL, "invalid_heartbeat", "node_id", "node_id is required");
        goto out;
    }
    if (!who || who->kind != RT_PRINCIPAL_NODE || strcmp(who->id, node_id) != 0) {
        cm_http_reply_error(req, 403, NULL, "node_token_mismatch", "node_id",
                            "This node token does not belong to node %s", node_id);
        goto out;
    }
    if (parse_heartbeat(j, &m, mod, loaded, &devices, &sync) != 0) {
        cm_http_reply_error(req, 400, NULL, "invalid_heartbeat", NULL, "Malformed heartbeat fields");
        goto out;
    }
    if (rt_nodes_heartbeat(rt->nodes, node_id, &m) != RT_NODES_OK) {
        cm_http_reply_error(req, 404, NULL, "node_not_found", "node_id",
                            "Node %s is not registered; register again", node_id);
        goto out;
    }
    /* a node that sees a new models_version reads /v1/models again */
    char ok[80];
    int len = snprintf(ok, sizeof(ok), "{\"status\":\"ok\",\"models_version\":%llu}",
                       (unsigned long long)(rt->models ? rt_models_version(rt->models) : 0));
    cm_http_reply(req, 200, "application/json", ok, (size_t)len);
out:
    free(sync);
    free(devices);
    cJSON_Delete(j);
}

/* ---- management and dashboard data ---- */

void rt_h_nodes_list(cm_http_req_t *req, void *ud)
{
    reply_views(req, ud, false, rt_view_nodes);
}

void rt_h_nodes_get(cm_http_req_t *req, void *ud)
{
    reply_node(req, ud, cm_http_req_param(req, "id"), 200, true);
}

void rt_h_nodes_delete(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id");
    if (rt_nodes_delete(rt->nodes, id) != RT_NODES_OK) {
        reply_not_found(req, id);
        return;
    }
    cm_http_reply(req, 204, NULL, NULL, 0);
}

void rt_h_nodes_disconnect(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id");
    if (rt_nodes_disconnect(rt->nodes, id) != RT_NODES_OK) {
        reply_not_found(req, id);
        return;
    }
    reply_node(req, rt, id, 200, false);
}

/* An admin's new token for an existing node: shown once, the previous one
 * revoked (rt_nodes_issue_token). */
void rt_h_nodes_token(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id");
    char token[RT_AUTH_NODE_TOKEN_SIZE];
    if (rt_nodes_issue_token(rt->nodes, id, token) != RT_NODES_OK) {
        reply_not_found(req, id);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "node_id", id);
    cJSON_AddStringToObject(o, "node_token", token);
    cJSON_AddStringToObject(o, "usage", "start llm-node with LLM_NODE_TOKEN set to node_token: its next registration "
                                        "takes this node's identity; the previous token no longer works");
    sodium_memzero(token, sizeof(token));
    cm_http_add_header(req, "Cache-Control", "no-store");
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static bool tags_text(const cJSON *j, char **out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "tags");
    *out = NULL;
    if (!a)
        return true;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > MAX_TAGS)
        return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
        if (!cJSON_IsString(it) || !str_ok(it->valuestring, 64))
            return false;
    *out = cJSON_PrintUnformatted(a);
    return true;
}

static bool opt_text(const cJSON *j, const char *key, size_t max, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = NULL;
    if (!v)
        return true;
    if (cJSON_IsNull(v)) {
        *out = ""; /* cleared */
        return true;
    }
    if (!cJSON_IsString(v) || strlen(v->valuestring) > max)
        return false;
    *out = v->valuestring;
    return true;
}

void rt_h_nodes_settings(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id"), *name, *notes;
    char *tags = NULL;
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return;
    if (!opt_text(j, "custom_name", MAX_NAME, &name) || !opt_text(j, "notes", MAX_NOTES, &notes) ||
        !tags_text(j, &tags)) {
        cm_http_reply_error(req, 400, NULL, "invalid_settings", NULL,
                            "custom_name (<= %d chars), notes (<= %d chars), tags (<= %d strings)", MAX_NAME,
                            MAX_NOTES, MAX_TAGS);
        goto out;
    }
    if (rt_nodes_settings(rt->nodes, id, name, tags, notes) != RT_NODES_OK) {
        reply_not_found(req, id);
        goto out;
    }
    reply_node(req, rt, id, 200, false);
out:
    free(tags);
    cJSON_Delete(j);
}

void rt_h_nodes_metrics(cm_http_req_t *req, void *ud)
{
    reply_views(req, ud, true, rt_view_metrics);
}

void rt_h_metrics_summary(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    cJSON *o = rt_view_summary(v, n, rt_registry_mode(rt->registry));
    rt_registry_views_free(v, n);
    cJSON_AddNumberToObject(o, "queued_requests", (double)rt_admission_waiting(rt->admission));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}
