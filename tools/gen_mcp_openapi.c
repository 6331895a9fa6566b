/* gen_mcp_openapi: writes the router's API reference for llm-router-mcp's
 * llm-router://api/openapi resource, at build time, from the route table the
 * router itself serves (rt_routes in router/src/api/routes.c, linked from
 * librouter): every route appears with its method, path, policy and body
 * limit, so the document cannot drift from the server.
 *
 *   gen_mcp_openapi OUT_DIR
 *     OUT_DIR/mcp_openapi.h   the OpenAPI 3.1 JSON as a C byte array
 *     OUT_DIR/mcp_routes.txt  "METHOD PATH POLICY" per route (for the tests)
 *
 * Summaries, query parameters and example bodies come from the hand-written
 * notes table below, keyed by method and path. A route without a note still
 * appears (with a generated summary); a note naming a route that is not in
 * the table, a duplicate note or an example that is not JSON fails the
 * build. A new policy without a description fails to compile (-Wswitch). */
#include "auth/auth.h"
#include "router.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LLMR_VERSION
#define LLMR_VERSION "0"
#endif

typedef struct {
    const char *method, *path;
    const char *tag;
    const char *summary;
    const char *ok;        /* success status ("200" when NULL) */
    const char *query[10]; /* "name: description", NULL-terminated */
    const char *example;   /* an example JSON request body, or NULL */
} note_t;

static const note_t notes[] = {
    { "GET", "/health", "probes", "Liveness probe", NULL, { NULL }, NULL },
    { "POST", "/api/auth/login", "auth", "Log in: returns a session token (JWT) for /api/*", NULL, { NULL },
      "{\"username\":\"admin\",\"password\":\"...\"}" },
    { "POST", "/api/auth/logout", "auth", "End the calling session (its token stops working)", "204", { NULL }, NULL },
    { "GET", "/api/auth/me", "auth", "The calling user", NULL, { NULL }, NULL },
    { "GET", "/api/auth/join-token", "auth", "The join token nodes present to register", NULL, { NULL }, NULL },
    { "GET", "/api/users", "users", "List users", NULL, { NULL }, NULL },
    { "POST", "/api/users", "users", "Create a user (role admin or viewer)", "201", { NULL },
      "{\"username\":\"alice\",\"password\":\"a-long-password\",\"role\":\"viewer\"}" },
    { "PUT", "/api/users/:id", "users", "Change a user's name, password or role", NULL, { NULL },
      "{\"role\":\"admin\"}" },
    { "DELETE", "/api/users/:id", "users", "Delete a user (not the last admin)", "204", { NULL }, NULL },
    { "GET", "/api/api-keys", "api-keys", "List API keys (their prefixes, never the keys)", NULL, { NULL }, NULL },
    { "POST", "/api/api-keys", "api-keys", "Create an API key: the key (sk_...) is in this answer only", "201", { NULL },
      "{\"name\":\"ci\",\"expires_at\":null}" },
    { "PUT", "/api/api-keys/:id", "api-keys", "Rename an API key or change its expiry", NULL, { NULL },
      "{\"name\":\"ci-renamed\"}" },
    { "DELETE", "/api/api-keys/:id", "api-keys", "Revoke an API key", "204", { NULL }, NULL },
    { "POST", "/api/nodes", "nodes", "Register a node (llm-node does this itself, with X-Join-Token)", "201", { NULL },
      "{\"machine_name\":\"gpu-1\",\"ip_address\":\"10.0.0.5\",\"runtime_port\":11435,\"gpu_available\":true}" },
    { "GET", "/api/nodes", "nodes", "List nodes with status, models, load and settings", NULL, { NULL }, NULL },
    { "GET", "/api/nodes/metrics", "nodes", "Each node's latest load sample", NULL, { NULL }, NULL },
    { "GET", "/api/nodes/:id", "nodes", "One node", NULL, { NULL }, NULL },
    { "DELETE", "/api/nodes/:id", "nodes", "Delete a node (it must register again to come back)", "204", { NULL }, NULL },
    { "POST", "/api/nodes/:id/disconnect", "nodes", "Mark a node offline: it gets no requests until its next heartbeat",
      NULL, { NULL }, NULL },
    { "POST", "/api/nodes/:id/token", "nodes", "Issue a new node token for a node (the old one stops working)", NULL,
      { NULL }, NULL },
    { "PUT", "/api/nodes/:id/settings", "nodes", "Set a node's display name, tags and notes (null clears)", NULL, { NULL },
      "{\"custom_name\":\"rack-2 gpu\",\"tags\":[\"a100\",\"prod\"],\"notes\":\"swapped fan\"}" },
    { "GET", "/api/metrics/summary", "metrics", "Router totals: requests, errors, latency, tokens, nodes", NULL, { NULL },
      NULL },
    { "POST", "/api/health", "nodes", "A node's heartbeat (llm-node sends it, with X-Node-Token)", NULL, { NULL },
      "{\"node_id\":\"...\",\"active_requests\":0,\"ready_models\":[\"tiny\"]}" },
    { "GET", "/api/nodes/:id/logs", "logs", "A node's recent log lines (fetched from the node)", NULL,
      { "tail: lines to return (1..1000, default 100)", NULL }, NULL },
    { "GET", "/api/dashboard/overview", "dashboard", "Dashboard overview: nodes, totals, recent activity", NULL, { NULL },
      NULL },
    { "GET", "/api/dashboard/stats", "dashboard", "Request statistics", NULL, { NULL }, NULL },
    { "GET", "/api/dashboard/nodes", "dashboard", "Nodes as the dashboard shows them", NULL, { NULL }, NULL },
    { "GET", "/api/dashboard/request-history", "dashboard", "Requests per minute or hour", NULL,
      { "bucket: minute or hour", "from: RFC 3339 time or milliseconds since the epoch",
        "to: RFC 3339 time or milliseconds since the epoch", NULL },
      NULL },
    { "GET", "/api/dashboard/metrics/:node_id", "dashboard", "A node's recent heartbeat samples", NULL, { NULL }, NULL },
    { "GET", "/api/dashboard/logs/router", "logs", "The router's recent log lines", NULL,
      { "tail: lines to return (1..1000)", "level: lowest level (trace, debug, info, warn, error)", NULL }, NULL },
    { "GET", "/api/dashboard/request-responses", "history", "Search the request history (newest first, paged)", NULL,
      { "model: model id", "node_id: node that served it", "api_key_id: API key that sent it",
        "status: success, error, or an HTTP status", "from: RFC 3339 time or milliseconds since the epoch",
        "to: RFC 3339 time or milliseconds since the epoch", "q: text searched in the request and response",
        "page: page number from 1", "per_page: records per page", NULL },
      NULL },
    { "GET", "/api/dashboard/request-responses/export", "history", "Export the history (same filters as the search)",
      NULL, { "format: csv or jsonl", "model: model id", "status: success, error, or an HTTP status", NULL }, NULL },
    { "GET", "/api/dashboard/request-responses/:id", "history", "One history record with its request and response",
      NULL, { NULL }, NULL },
    { "GET", "/metrics", "prometheus", "Prometheus metrics (text exposition format)", NULL, { NULL }, NULL },
    { "GET", "/metrics/cloud", "prometheus", "Prometheus metrics of the cloud providers", NULL, { NULL }, NULL },
    { "GET", "/metrics/targets", "prometheus", "Prometheus scrape targets (file_sd / http_sd JSON)", NULL, { NULL }, NULL },
    { "GET", "/api/models/registered", "models", "Registered models with each node's readiness", NULL, { NULL }, NULL },
    { "POST", "/api/models/discover-gguf", "models", "Register the GGUF files found in a directory", NULL, { NULL },
      "{\"dir\":\"/srv/models\"}" },
    { "GET", "/api/models/available", "models", "Search Hugging Face for GGUF models", NULL,
      { "source: hf", "search: text to search for", "limit: results (1..100, default 20)", NULL }, NULL },
    { "POST", "/api/models/register", "models",
      "Register a model from Hugging Face: starts a download task (read its progress at /api/models/tasks/{task_id})",
      "202", { NULL }, "{\"repo\":\"Qwen/Qwen2.5-0.5B-Instruct-GGUF\",\"filename\":\"qwen2.5-0.5b-instruct-q4_k_m.gguf\"}" },
    { "GET", "/api/models/tasks", "models", "Download and conversion tasks with their progress", NULL,
      { "kind: download or convert", NULL }, NULL },
    { "GET", "/api/models/tasks/:task_id", "models", "One task: state, bytes done and total, error", NULL, { NULL }, NULL },
    { "DELETE", "/api/models/tasks/:task_id", "models", "Cancel a running task (200) or delete a finished one (204)",
      NULL, { NULL }, NULL },
    { "POST", "/api/models/convert", "models", "Convert a Hugging Face model to GGUF (a conversion task)", "202", { NULL },
      "{\"repo\":\"Qwen/Qwen2.5-0.5B-Instruct\",\"outtype\":\"q8_0\"}" },
    { "GET", "/api/models/convert", "models", "Conversion tasks", NULL, { NULL }, NULL },
    { "GET", "/api/models/convert/:task_id", "models", "One conversion task", NULL, { NULL }, NULL },
    { "DELETE", "/api/models/convert/:task_id", "models", "Cancel or delete a conversion task", NULL, { NULL }, NULL },
    { "GET", "/api/models/blob/*model_name", "models", "A registered model's file, for nodes (Range supported)", NULL,
      { NULL }, NULL },
    { "HEAD", "/api/models/blob/*model_name", "models", "A registered model file's size and digest", NULL, { NULL }, NULL },
    { "DELETE", "/api/models/*model_name", "models", "Delete a registered model (nodes drop what sync placed)", NULL,
      { NULL }, NULL },
    { "POST", "/v1/chat/completions", "openai", "OpenAI chat completion (stream: true for server-sent events)", NULL,
      { NULL },
      "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}],\"max_tokens\":32,"
      "\"temperature\":0.7}" },
    { "POST", "/v1/completions", "openai", "OpenAI text completion", NULL, { NULL },
      "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"max_tokens\":32}" },
    { "POST", "/v1/embeddings", "openai", "OpenAI embeddings", NULL, { NULL },
      "{\"model\":\"tiny\",\"input\":[\"first text\",\"second text\"]}" },
    { "GET", "/v1/models", "openai", "Models served by the nodes, registered, and listed cloud models", NULL, { NULL },
      NULL },
    { "GET", "/v1/models/*id", "openai", "One model", NULL, { NULL }, NULL },
};

#define NNOTES (sizeof(notes) / sizeof(notes[0]))

/* Who may call a route, in words, and its OpenAPI security requirement. */
static const char *policy_text(rt_policy_t p)
{
    switch (p) {
    case RT_POLICY_OPEN: return "Anyone: no credentials.";
    case RT_POLICY_API_KEY: return "An API key: Authorization: Bearer sk_... or X-API-Key.";
    case RT_POLICY_API_OR_NODE: return "An API key, or a node's token (X-Node-Token).";
    case RT_POLICY_NODE: return "A node's token (X-Node-Token), bound to its node.";
    case RT_POLICY_JOIN: return "The join token (X-Join-Token), unless LLM_ROUTER_OPEN_REGISTRATION=1.";
    case RT_POLICY_VIEWER: return "A logged-in viewer or admin (Authorization: Bearer <session token>).";
    case RT_POLICY_ADMIN: return "A logged-in admin (Authorization: Bearer <session token>).";
    case RT_POLICY_USER: return "Any logged-in user (Authorization: Bearer <session token>).";
    case RT_POLICY_METRICS: return "An API key or a user's session; anyone with LLM_ROUTER_METRICS_PUBLIC=1.";
    case RT_POLICY_NODE_OR_ADMIN: return "A node's token (X-Node-Token), or a logged-in admin.";
    }
    return NULL;
}

static const char *const policy_schemes[][3] = {
    [RT_POLICY_OPEN] = { NULL },
    [RT_POLICY_API_KEY] = { "apiKey", "apiKeyHeader", NULL },
    [RT_POLICY_API_OR_NODE] = { "apiKey", "apiKeyHeader", "nodeToken" },
    [RT_POLICY_NODE] = { "nodeToken", NULL },
    [RT_POLICY_JOIN] = { "joinToken", NULL },
    [RT_POLICY_VIEWER] = { "session", NULL },
    [RT_POLICY_ADMIN] = { "session", NULL },
    [RT_POLICY_USER] = { "session", NULL },
    [RT_POLICY_METRICS] = { "apiKey", "apiKeyHeader", "session" },
    [RT_POLICY_NODE_OR_ADMIN] = { "nodeToken", "session", NULL },
};

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gen_mcp_openapi: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static const note_t *find_note(const char *method, const char *path)
{
    for (size_t i = 0; i < NNOTES; i++)
        if (!strcmp(notes[i].method, method) && !strcmp(notes[i].path, path))
            return &notes[i];
    return NULL;
}

static bool route_exists(const char *method, const char *path)
{
    for (size_t i = 0; i < rt_routes_count; i++)
        if (!strcmp(rt_routes[i].method, method) && !strcmp(rt_routes[i].path, path))
            return true;
    return false;
}

/* "/api/nodes/:id" -> "/api/nodes/{id}", "*name" likewise; the parameters'
 * names, and whether each is a wildcard, go into params. */
static char *openapi_path(const char *path, cJSON *params)
{
    size_t n = strlen(path);
    char *out = malloc(n * 2 + 3), *o = out;
    if (!out)
        die("out of memory");
    for (const char *p = path; *p;) {
        if ((*p == ':' || *p == '*') && p > path && p[-1] == '/') {
            bool wild = *p == '*';
            const char *s = ++p;
            while (*p && *p != '/')
                p++;
            if (p == s || (wild && *p))
                die("bad parameter in route %s", path);
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(p - s), s);
            o += sprintf(o, "{%s}", name);
            cJSON *prm = cJSON_CreateObject();
            cJSON_AddStringToObject(prm, "name", name);
            cJSON_AddStringToObject(prm, "in", "path");
            cJSON_AddBoolToObject(prm, "required", true);
            cJSON_AddStringToObject(prm, "description",
                                    wild ? "The rest of the path; may contain '/' (e.g. a Hugging Face repo/file id)"
                                         : "Identifier (one path segment)");
            cJSON_AddItemToObject(cJSON_AddObjectToObject(prm, "schema"), "type", cJSON_CreateString("string"));
            if (wild)
                cJSON_AddBoolToObject(prm, "x-llm-router-wildcard", true);
            cJSON_AddItemToArray(params, prm);
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

static char *lower(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    buf[i] = 0;
    return buf;
}

static void operation_id(const char *method, const char *path, char *buf, size_t size)
{
    lower(method, buf, size);
    size_t n = strlen(buf);
    for (const char *p = path; *p && n + 1 < size; p++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum)
            buf[n++] = c;
        else if (n && buf[n - 1] != '_')
            buf[n++] = '_';
    }
    while (n && buf[n - 1] == '_')
        n--;
    buf[n] = 0;
    /* "/dashboard/" beside "/dashboard", and "/" itself */
    if (path[0] && path[strlen(path) - 1] == '/')
        snprintf(buf + n, size - n, "_index");
}

static cJSON *error_ref(void)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "$ref", "#/components/responses/Error");
    return r;
}

static cJSON *operation(const cm_http_route_t *rt, size_t max_body, cJSON *params, const note_t *note)
{
    cJSON *op = cJSON_CreateObject();
    char buf[256];
    operation_id(rt->method, rt->path, buf, sizeof(buf));
    cJSON_AddStringToObject(op, "operationId", buf);
    if (note) {
        cJSON_AddStringToObject(op, "summary", note->summary);
    } else {
        snprintf(buf, sizeof(buf), "%s %s", rt->method, rt->path);
        cJSON_AddStringToObject(op, "summary", buf);
    }
    cJSON_AddItemToArray(cJSON_AddArrayToObject(op, "tags"), cJSON_CreateString(note ? note->tag : "other"));
    const char *who = policy_text((rt_policy_t)rt->policy);
    if (!who)
        die("route %s %s has an unknown policy", rt->method, rt->path);
    cJSON_AddStringToObject(op, "description", who);
    cJSON_AddStringToObject(op, "x-llm-router-policy", rt_policy_name(rt->policy));
    if (max_body)
        cJSON_AddNumberToObject(op, "x-llm-router-max-body-bytes", (double)max_body);
    cJSON *sec = cJSON_AddArrayToObject(op, "security");
    const char *const *schemes = policy_schemes[rt->policy];
    if (!schemes[0])
        cJSON_AddItemToArray(sec, cJSON_CreateObject());
    for (int i = 0; i < 3 && schemes[i]; i++) { /* alternatives: any one of them */
        cJSON *req = cJSON_CreateObject();
        cJSON_AddArrayToObject(req, schemes[i]);
        cJSON_AddItemToArray(sec, req);
    }

    cJSON *ps = cJSON_Duplicate(params, true);
    for (int i = 0; note && i < 10 && note->query[i]; i++) {
        const char *q = note->query[i], *colon = strstr(q, ": ");
        if (!colon)
            die("query note \"%s\" of %s is not \"name: description\"", q, rt->path);
        snprintf(buf, sizeof(buf), "%.*s", (int)(colon - q), q);
        cJSON *prm = cJSON_CreateObject();
        cJSON_AddStringToObject(prm, "name", buf);
        cJSON_AddStringToObject(prm, "in", "query");
        cJSON_AddBoolToObject(prm, "required", false);
        cJSON_AddStringToObject(prm, "description", colon + 2);
        cJSON_AddItemToObject(cJSON_AddObjectToObject(prm, "schema"), "type", cJSON_CreateString("string"));
        cJSON_AddItemToArray(ps, prm);
    }
    if (cJSON_GetArraySize(ps))
        cJSON_AddItemToObject(op, "parameters", ps);
    else
        cJSON_Delete(ps);

    if (note && note->example) {
        cJSON *ex = cJSON_Parse(note->example);
        if (!ex)
            die("the example of %s %s is not JSON", rt->method, rt->path);
        cJSON *rb = cJSON_AddObjectToObject(op, "requestBody");
        cJSON_AddBoolToObject(rb, "required", true);
        cJSON *mt = cJSON_AddObjectToObject(cJSON_AddObjectToObject(rb, "content"), "application/json");
        cJSON_AddItemToObject(cJSON_AddObjectToObject(mt, "schema"), "type", cJSON_CreateString("object"));
        cJSON_AddItemToObject(mt, "example", ex);
    }
    cJSON *resp = cJSON_AddObjectToObject(op, "responses");
    const char *ok = note && note->ok ? note->ok : "200";
    cJSON *okr = cJSON_AddObjectToObject(resp, ok);
    cJSON_AddStringToObject(okr, "description", !strcmp(ok, "204") ? "Done (no body)" : "Success");
    if (rt->policy != RT_POLICY_OPEN)
        cJSON_AddItemToObject(resp, "401", error_ref());
    cJSON_AddItemToObject(resp, "default", error_ref());
    return op;
}

static cJSON *components(void)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *s = cJSON_AddObjectToObject(c, "securitySchemes");
    cJSON *o = cJSON_AddObjectToObject(s, "apiKey");
    cJSON_AddStringToObject(o, "type", "http");
    cJSON_AddStringToObject(o, "scheme", "bearer");
    cJSON_AddStringToObject(o, "description", "An API key (sk_...) created by an admin at /api/api-keys");
    o = cJSON_AddObjectToObject(s, "apiKeyHeader");
    cJSON_AddStringToObject(o, "type", "apiKey");
    cJSON_AddStringToObject(o, "in", "header");
    cJSON_AddStringToObject(o, "name", "X-API-Key");
    o = cJSON_AddObjectToObject(s, "session");
    cJSON_AddStringToObject(o, "type", "http");
    cJSON_AddStringToObject(o, "scheme", "bearer");
    cJSON_AddStringToObject(o, "bearerFormat", "JWT");
    cJSON_AddStringToObject(o, "description", "A session token from POST /api/auth/login");
    o = cJSON_AddObjectToObject(s, "nodeToken");
    cJSON_AddStringToObject(o, "type", "apiKey");
    cJSON_AddStringToObject(o, "in", "header");
    cJSON_AddStringToObject(o, "name", "X-Node-Token");
    o = cJSON_AddObjectToObject(s, "joinToken");
    cJSON_AddStringToObject(o, "type", "apiKey");
    cJSON_AddStringToObject(o, "in", "header");
    cJSON_AddStringToObject(o, "name", "X-Join-Token");

    cJSON *err = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "schemas"), "Error");
    cJSON_AddStringToObject(err, "type", "object");
    cJSON *inner = cJSON_AddObjectToObject(cJSON_AddObjectToObject(err, "properties"), "error");
    cJSON_AddStringToObject(inner, "type", "object");
    cJSON *props = cJSON_AddObjectToObject(inner, "properties");
    const char *fields[] = { "message", "type", "param", "code" };
    const char *nullable[] = { "string", "null" };
    for (size_t i = 0; i < 4; i++)
        cJSON_AddItemToObject(cJSON_AddObjectToObject(props, fields[i]), "type",
                              i < 2 ? cJSON_CreateString("string") : cJSON_CreateStringArray(nullable, 2));
    cJSON *er = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "responses"), "Error");
    cJSON_AddStringToObject(er, "description", "An error in OpenAI's shape");
    cJSON_AddStringToObject(
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(er, "content"), "application/json"),
                                "schema"),
        "$ref", "#/components/schemas/Error");
    return c;
}

static void write_bytes(FILE *f, const char *name, const char *text)
{
    size_t n = strlen(text);
    fprintf(f, "static const char %s[%zu] = {", name, n + 1);
    for (size_t i = 0; i <= n; i++)
        fprintf(f, "%s0x%02x,", i % 16 ? "" : "\n    ", (unsigned char)text[i]);
    fprintf(f, "\n};\n");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: gen_mcp_openapi OUT_DIR");
    for (size_t i = 0; i < NNOTES; i++) {
        if (!route_exists(notes[i].method, notes[i].path))
            die("a note names %s %s, which is not in router/src/api/routes.c", notes[i].method, notes[i].path);
        if (find_note(notes[i].method, notes[i].path) != &notes[i])
            die("two notes for %s %s", notes[i].method, notes[i].path);
    }

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "openapi", "3.1.0");
    cJSON *info = cJSON_AddObjectToObject(doc, "info");
    cJSON_AddStringToObject(info, "title", "llm-router API");
    cJSON_AddStringToObject(info, "version", LLMR_VERSION);
    cJSON_AddStringToObject(info, "description",
                            "Every route of the router (generated at build time from router/src/api/routes.c). "
                            "x-llm-router-policy names who may call a route. Errors use OpenAI's shape "
                            "{\"error\":{\"message\",\"type\",\"param\",\"code\"}}. Through llm-router-mcp, "
                            "credentials are added by the server: use its tools or router_request with a path "
                            "under /api/ or /v1/.");
    cJSON *srv = cJSON_CreateObject();
    cJSON_AddStringToObject(srv, "url", "http://127.0.0.1:8080");
    cJSON_AddStringToObject(srv, "description", "The default LLM_ROUTER_URL; llm-router-mcp uses the configured one");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "servers"), srv);
    cJSON *paths = cJSON_AddObjectToObject(doc, "paths");
    cJSON *opids = cJSON_CreateObject(); /* operationIds seen */

    char file[4096];
    snprintf(file, sizeof(file), "%s/mcp_routes.txt", argv[1]);
    FILE *routes = fopen(file, "w");
    if (!routes)
        die("cannot write %s", file);
    for (size_t i = 0; i < rt_routes_count; i++) {
        const cm_http_route_t *rt = &rt_routes[i];
        cJSON *params = cJSON_CreateArray();
        char *p = openapi_path(rt->path, params);
        cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, p);
        if (!item)
            item = cJSON_AddObjectToObject(paths, p);
        char m[16];
        lower(rt->method, m, sizeof(m));
        if (cJSON_GetObjectItemCaseSensitive(item, m))
            die("two routes for %s %s", rt->method, rt->path);
        cJSON *op = operation(rt, rt_route_max_body[i], params, find_note(rt->method, rt->path));
        const char *opid = cJSON_GetObjectItemCaseSensitive(op, "operationId")->valuestring;
        if (cJSON_GetObjectItemCaseSensitive(opids, opid))
            die("two routes make the operationId %s (%s %s)", opid, rt->method, rt->path);
        cJSON_AddTrueToObject(opids, opid);
        cJSON_AddItemToObject(item, m, op);
        fprintf(routes, "%s %s %s\n", rt->method, rt->path, rt_policy_name(rt->policy));
        cJSON_Delete(params);
        free(p);
    }
    cJSON_Delete(opids);
    cJSON_AddItemToObject(doc, "components", components());
    if (fclose(routes) != 0)
        die("cannot write %s", file);

    char *text = cJSON_PrintUnformatted(doc);
    snprintf(file, sizeof(file), "%s/mcp_openapi.h", argv[1]);
    FILE *f = fopen(file, "w");
    if (!f || !text)
        die("cannot write %s", file);
    fprintf(f, "/* Generated by tools/gen_mcp_openapi from router/src/api/routes.c: do not edit. */\n");
    write_bytes(f, "mcp_openapi_json", text);
    if (fclose(f) != 0)
        die("cannot write %s", file);
    free(text);
    cJSON_Delete(doc);
    return 0;
}
