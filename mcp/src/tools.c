/* tools: the tool table. Each tool is a thin call of one router route (two
 * for list_models); the shapes are the handlers' in router/src/api/. Every
 * path is built here from fixed text plus percent-encoded segments, and
 * checked again by url.c before any request. */
#include "internal.h"

#include "json.h"
#include "url.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static const char *arg_str(const cJSON *args, const char *key)
{
    const char *s = NULL;
    return cm_json_str(args, key, &s) == CM_JSON_OK ? s : NULL;
}

/* prefix + the argument key as one encoded segment (+ suffix) */
static char *seg_path(const cJSON *args, const char *prefix, const char *key, const char *suffix)
{
    char *p = mcp_url_join_segment(prefix, arg_str(args, key));
    if (suffix) {
        char *q = cm_xasprintf("%s%s", p, suffix);
        free(p);
        p = q;
    }
    return p;
}

/* Copies the given arguments into a new query object (strings; integers
 * written in base 10); NULL when none is present. */
static cJSON *query_of(const cJSON *args, const char *const *keys)
{
    cJSON *q = NULL;
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, *keys);
        char num[32];
        const char *text = NULL;
        if (cJSON_IsString(v))
            text = v->valuestring;
        else if (cJSON_IsNumber(v)) {
            snprintf(num, sizeof(num), "%.0f", v->valuedouble);
            text = num;
        }
        if (!text)
            continue;
        if (!q)
            q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, *keys, text);
    }
    return q;
}

/* A body holding the given arguments as they are (NULL-terminated keys). */
static cJSON *body_of(const cJSON *args, const char *const *keys)
{
    cJSON *b = cJSON_CreateObject();
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, *keys);
        if (v)
            cJSON_AddItemToObject(b, *keys, cJSON_Duplicate(v, 1));
    }
    return b;
}

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* ---- plans ---- */

static int p_list_nodes(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)a, (void)err, (void)n;
    mcp_req_set(c, "GET", cm_xstrdup("/api/nodes"), NULL, NULL);
    return 0;
}

static int p_get_node(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "GET", seg_path(a, "/api/nodes/", "node_id", NULL), NULL, NULL);
    return 0;
}

static int p_node_metrics(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "GET", seg_path(a, "/api/dashboard/metrics/", "node_id", NULL),
                query_of(a, KEYS("bucket", "from", "to")), NULL);
    return 0;
}

static int p_node_logs(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "GET", seg_path(a, "/api/nodes/", "node_id", "/logs"), query_of(a, KEYS("tail", "level")),
                NULL);
    return 0;
}

static int p_update_node(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    cJSON *b = body_of(a, KEYS("custom_name", "tags", "notes"));
    if (!b->child) {
        cJSON_Delete(b);
        snprintf(err, n, "give at least one of custom_name, tags, notes");
        return -1;
    }
    mcp_req_set(c, "PUT", seg_path(a, "/api/nodes/", "node_id", "/settings"), NULL, b);
    return 0;
}

static int p_disconnect_node(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "POST", seg_path(a, "/api/nodes/", "node_id", "/disconnect"), NULL, NULL);
    return 0;
}

static int p_delete_node(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "DELETE", seg_path(a, "/api/nodes/", "node_id", NULL), NULL, NULL);
    return 0;
}

static int p_list_models(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)a, (void)err, (void)n;
    mcp_req_set(c, "GET", cm_xstrdup("/v1/models"), NULL, NULL);
    return 0;
}

/* /v1/models, then /api/models/registered: {"models": [...], "registered": ...} */
static int n_list_models(mcp_call_t *c, mcp_resp_t *r, cJSON **data)
{
    if (c->step == 0) {
        c->acc = cJSON_CreateObject();
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r->json, "data");
        cJSON_AddItemToObject(c->acc, "models", d ? cJSON_Duplicate(d, 1) : cJSON_CreateArray());
        c->step = 1;
        mcp_req_set(c, "GET", cm_xstrdup("/api/models/registered"), NULL, NULL);
        return 1;
    }
    cJSON_AddItemToObject(c->acc, "registered", r->json ? cJSON_Duplicate(r->json, 1) : cJSON_CreateNull());
    *data = c->acc;
    c->acc = NULL;
    return 0;
}

static int p_register_model(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "POST", cm_xstrdup("/api/models/register"), NULL, body_of(a, KEYS("repo", "filename", "revision")));
    return 0;
}

static int p_model_task(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "GET", seg_path(a, "/api/models/tasks/", "task_id", NULL), NULL, NULL);
    return 0;
}

static int p_delete_model(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    /* a model id may hold '/' (org/name): each segment encoded on its own */
    const char *m = arg_str(a, "model");
    char *p = cm_xstrdup("/api/models");
    const char *s = m;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char *segm = cm_xstrndup(s, len);
        if (!len || strcmp(segm, ".") == 0 || strcmp(segm, "..") == 0) {
            free(segm);
            free(p);
            snprintf(err, n, "model must be a model id (segments separated by single '/', no . or ..)");
            return -1;
        }
        char *pre = cm_xasprintf("%s/", p);
        free(p);
        p = mcp_url_join_segment(pre, segm);
        free(pre);
        free(segm);
        s += len;
        if (*s == '/' && !*++s) {
            free(p);
            snprintf(err, n, "model must not end with '/'");
            return -1;
        }
    }
    mcp_req_set(c, "DELETE", p, NULL, NULL);
    return 0;
}

static int p_chat(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    cJSON *b = body_of(a, KEYS("model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens",
                               "stop", "seed", "presence_penalty", "frequency_penalty", "n", "response_format",
                               "tools", "tool_choice", "logprobs", "top_logprobs", "user"));
    cJSON_AddFalseToObject(b, "stream");
    mcp_req_set(c, "POST", cm_xstrdup("/v1/chat/completions"), NULL, b);
    return 0;
}

static int p_embeddings(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "POST", cm_xstrdup("/v1/embeddings"), NULL,
                body_of(a, KEYS("model", "input", "encoding_format", "dimensions", "user")));
    return 0;
}

static int p_search_history(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "GET", cm_xstrdup("/api/dashboard/request-responses"),
                query_of(a, KEYS("model", "node_id", "status", "api_key_id", "from", "to", "q", "page", "per_page")),
                NULL);
    return 0;
}

static int p_history_record(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "GET", seg_path(a, "/api/dashboard/request-responses/", "id", NULL), NULL, NULL);
    return 0;
}

static int p_metrics_summary(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    const char *v = arg_str(a, "view");
    const char *path = v && strcmp(v, "overview") == 0 ? "/api/dashboard/overview"
                       : v && strcmp(v, "stats") == 0  ? "/api/dashboard/stats"
                                                       : "/api/metrics/summary";
    mcp_req_set(c, "GET", cm_xstrdup(path), NULL, NULL);
    return 0;
}

static int p_list_users(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)a, (void)err, (void)n;
    mcp_req_set(c, "GET", cm_xstrdup("/api/users"), NULL, NULL);
    return 0;
}

static int p_create_user(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "POST", cm_xstrdup("/api/users"), NULL, body_of(a, KEYS("username", "password", "role")));
    return 0;
}

static int p_list_keys(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)a, (void)err, (void)n;
    mcp_req_set(c, "GET", cm_xstrdup("/api/api-keys"), NULL, NULL);
    return 0;
}

static int p_create_key(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "POST", cm_xstrdup("/api/api-keys"), NULL, body_of(a, KEYS("name", "expires_at")));
    return 0;
}

static int p_revoke_key(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    (void)err, (void)n;
    mcp_req_set(c, "DELETE", seg_path(a, "/api/api-keys/", "key_id", NULL), NULL, NULL);
    return 0;
}

static int p_router_request(mcp_call_t *c, const cJSON *a, char *err, size_t n)
{
    const char *path = arg_str(a, "path"), *why = NULL;
    if (mcp_url_path_check(path, &why) != 0) {
        snprintf(err, n, "%s", why);
        return -1;
    }
    const char *method = arg_str(a, "method");
    static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" };
    const char *m = NULL;
    for (size_t i = 0; i < CM_ARRAY_LEN(methods); i++)
        if (strcmp(method, methods[i]) == 0)
            m = methods[i];
    if (!m) {
        snprintf(err, n, "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD");
        return -1;
    }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(a, "query");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(a, "body");
    if (b && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)) {
        snprintf(err, n, "a %s request has no body", m);
        return -1;
    }
    mcp_req_set(c, m, cm_xstrdup(path), q ? cJSON_Duplicate(q, 1) : NULL, b ? cJSON_Duplicate(b, 1) : NULL);
    return 0;
}

/* ---- the table ---- */

#define NODE_ID "\"node_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,\"description\":\"The node's id (list_nodes)\"}"
#define REQ_NODE "[\"node_id\"]"

const mcp_tool_t mcp_tools[] = {
    { "list_nodes", "List nodes",
      "Every node registered with the router: id, name, address, status (online, offline, ...), models, "
      "slots, load, GPU, custom name, tags, notes. GET /api/nodes (viewer).",
      "{}", NULL, MCP_RO, p_list_nodes, NULL, NULL },
    { "get_node", "Get a node", "One node by id. GET /api/nodes/:id (viewer).",
      "{" NODE_ID "}", REQ_NODE, MCP_RO, p_get_node, NULL, NULL },
    { "node_metrics", "Node metrics",
      "A node's metrics over time (CPU, memory, GPU, requests). GET /api/dashboard/metrics/:node_id (viewer).",
      "{" NODE_ID ",\"bucket\":{\"type\":\"string\",\"description\":\"Bucket size, e.g. minute or hour\"},"
      "\"from\":{\"type\":\"string\",\"description\":\"RFC 3339 time or ms since the epoch\"},"
      "\"to\":{\"type\":\"string\",\"description\":\"RFC 3339 time or ms since the epoch\"}}",
      REQ_NODE, MCP_RO, p_node_metrics, NULL, NULL },
    { "node_logs", "Node logs", "The last log lines of a node. GET /api/nodes/:id/logs (viewer).",
      "{" NODE_ID ",\"tail\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"description\":\"How many lines (default 100)\"},"
      "\"level\":{\"type\":\"string\",\"enum\":[\"trace\",\"debug\",\"info\",\"warn\",\"error\"],\"description\":\"Lowest level shown\"}}",
      REQ_NODE, MCP_RO, p_node_logs, NULL, NULL },
    { "update_node", "Rename, tag or annotate a node",
      "Sets a node's custom name, tags and notes (those given). PUT /api/nodes/:id/settings (admin).",
      "{" NODE_ID ",\"custom_name\":{\"type\":\"string\",\"maxLength\":256},"
      "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"notes\":{\"type\":\"string\"}}",
      REQ_NODE, MCP_IDEMPOTENT, p_update_node, NULL, NULL },
    { "disconnect_node", "Disconnect a node",
      "Marks a node offline: it gets no more requests until it registers again. POST /api/nodes/:id/disconnect (admin).",
      "{" NODE_ID "}", REQ_NODE, MCP_DESTRUCTIVE | MCP_IDEMPOTENT, p_disconnect_node, NULL, NULL },
    { "delete_node", "Delete a node", "Removes a node from the router. DELETE /api/nodes/:id (admin).",
      "{" NODE_ID "}", REQ_NODE, MCP_DESTRUCTIVE | MCP_IDEMPOTENT, p_delete_node, NULL, NULL },
    { "list_models", "List models",
      "The models clients can call (GET /v1/models: id, owner, and which nodes have them ready) and the "
      "router's registered catalogue with per-node readiness (GET /api/models/registered).",
      "{}", NULL, MCP_RO, p_list_models, n_list_models, NULL },
    { "register_model", "Register a model from Hugging Face",
      "Registers a GGUF model from a Hugging Face repository; the router downloads it (and nodes sync it). "
      "Returns a task id: follow it with model_task. POST /api/models/register (admin).",
      "{\"repo\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"description\":\"Repository id, e.g. TheBloke/Llama-2-7B-GGUF\"},"
      "\"filename\":{\"type\":\"string\",\"description\":\"A .gguf file of the repository (default: the best quantisation)\"},"
      "\"revision\":{\"type\":\"string\",\"description\":\"Branch, tag or commit (default main)\"}}",
      "[\"repo\"]", 0, p_register_model, NULL, NULL },
    { "model_task", "Model task progress",
      "The state and progress of a download or conversion task. GET /api/models/tasks/:task_id (viewer).",
      "{\"task_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128}}", "[\"task_id\"]", MCP_RO,
      p_model_task, NULL, NULL },
    { "delete_model", "Delete a model",
      "Removes a registered model (and its files on the router; nodes drop what they synced). "
      "DELETE /api/models/:model (admin).",
      "{\"model\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":512,\"description\":\"Model id as list_models shows it\"}}",
      "[\"model\"]", MCP_DESTRUCTIVE | MCP_IDEMPOTENT, p_delete_model, NULL, NULL },
    { "chat_completion", "Chat completion",
      "An OpenAI-compatible chat completion (not streamed) through the router: POST /v1/chat/completions "
      "(API key). Returns the completion with choices and usage.",
      "{\"model\":{\"type\":\"string\",\"minLength\":1},"
      "\"messages\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"object\"},\"description\":\"[{role, content}]\"},"
      "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2},\"top_p\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
      "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1},\"max_completion_tokens\":{\"type\":\"integer\",\"minimum\":1},"
      "\"stop\":{\"type\":[\"string\",\"array\"]},\"seed\":{\"type\":\"integer\"},"
      "\"presence_penalty\":{\"type\":\"number\"},\"frequency_penalty\":{\"type\":\"number\"},"
      "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":16},\"response_format\":{\"type\":\"object\"},"
      "\"tools\":{\"type\":\"array\"},\"tool_choice\":{\"type\":[\"string\",\"object\"]},"
      "\"logprobs\":{\"type\":\"boolean\"},\"top_logprobs\":{\"type\":\"integer\"},\"user\":{\"type\":\"string\"}}",
      "[\"model\",\"messages\"]", 0, p_chat, NULL, NULL },
    { "embeddings", "Embeddings", "Embedding vectors for text: POST /v1/embeddings (API key).",
      "{\"model\":{\"type\":\"string\",\"minLength\":1},\"input\":{\"type\":[\"string\",\"array\"]},"
      "\"encoding_format\":{\"type\":\"string\",\"enum\":[\"float\",\"base64\"]},\"dimensions\":{\"type\":\"integer\"},"
      "\"user\":{\"type\":\"string\"}}",
      "[\"model\",\"input\"]", MCP_IDEMPOTENT, p_embeddings, NULL, NULL },
    { "search_history", "Search request history",
      "The router's recorded requests and responses, newest first, filtered and paged. "
      "GET /api/dashboard/request-responses (viewer).",
      "{\"model\":{\"type\":\"string\"},\"node_id\":{\"type\":\"string\"},"
      "\"status\":{\"type\":\"string\",\"description\":\"success, error or an HTTP status code\"},"
      "\"api_key_id\":{\"type\":\"string\"},\"from\":{\"type\":\"string\",\"description\":\"RFC 3339 time or ms since the epoch\"},"
      "\"to\":{\"type\":\"string\"},\"q\":{\"type\":\"string\",\"description\":\"Text searched in requests and responses\"},"
      "\"page\":{\"type\":\"integer\",\"minimum\":1},\"per_page\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100}}",
      NULL, MCP_RO, p_search_history, NULL, NULL },
    { "get_history_record", "Get a history record",
      "One recorded request and its response. GET /api/dashboard/request-responses/:id (viewer).",
      "{\"id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128}}", "[\"id\"]", MCP_RO, p_history_record,
      NULL, NULL },
    { "metrics_summary", "Router metrics summary",
      "Totals of requests, errors, latency and tokens: GET /api/metrics/summary (view summary, the default), "
      "/api/dashboard/overview (overview) or /api/dashboard/stats (stats) (viewer).",
      "{\"view\":{\"type\":\"string\",\"enum\":[\"summary\",\"overview\",\"stats\"]}}", NULL, MCP_RO,
      p_metrics_summary, NULL, NULL },
    { "list_users", "List users", "Dashboard users and their roles. GET /api/users (admin).", "{}", NULL, MCP_RO,
      p_list_users, NULL, NULL },
    { "create_user", "Create a user", "A dashboard user (admin or viewer). POST /api/users (admin).",
      "{\"username\":{\"type\":\"string\",\"minLength\":1},\"password\":{\"type\":\"string\",\"minLength\":1},"
      "\"role\":{\"type\":\"string\",\"enum\":[\"admin\",\"viewer\"]}}",
      "[\"username\",\"password\"]", 0, p_create_user, NULL, NULL },
    { "list_api_keys", "List API keys", "API keys (name, prefix, created, expiry; never the key). GET /api/api-keys (admin).",
      "{}", NULL, MCP_RO, p_list_keys, NULL, NULL },
    { "create_api_key", "Create an API key",
      "A new API key for /v1/*. The key itself is in this result only (the router never shows it again). "
      "POST /api/api-keys (admin).",
      "{\"name\":{\"type\":\"string\",\"minLength\":1},"
      "\"expires_at\":{\"type\":[\"string\",\"number\",\"null\"],\"description\":\"RFC 3339 time or epoch seconds\"}}",
      "[\"name\"]", 0, p_create_key, NULL, "key" },
    { "revoke_api_key", "Revoke an API key", "Deletes an API key: it stops working at once. DELETE /api/api-keys/:id (admin).",
      "{\"key_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,\"description\":\"The key's id (list_api_keys)\"}}",
      "[\"key_id\"]", MCP_DESTRUCTIVE | MCP_IDEMPOTENT, p_revoke_key, NULL, NULL },
    { "router_request", "Call any router API",
      "One request to the configured router for routes no other tool covers: method, a path under /api/ or "
      "/v1/ (no scheme, host, '..', encoded traversal, '@', '#', backslash or control bytes), query "
      "parameters (encoded by the server) and a JSON body. Credentials are injected; redirects are not "
      "followed. See the resource llm-router://api/openapi for the routes.",
      "{\"method\":{\"type\":\"string\",\"enum\":[\"GET\",\"POST\",\"PUT\",\"PATCH\",\"DELETE\",\"HEAD\"]},"
      "\"path\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":2048,\"description\":\"e.g. /api/dashboard/stats\"},"
      "\"query\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
      "\"body\":{\"description\":\"JSON body (POST, PUT, PATCH, DELETE)\"}}",
      "[\"method\",\"path\"]", MCP_DESTRUCTIVE, p_router_request, NULL, NULL },
};
const size_t mcp_tools_count = CM_ARRAY_LEN(mcp_tools);
