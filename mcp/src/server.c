/* server: the protocol and the loop (server.h). */
#include "internal.h"

#include "json.h"
#include "log.h"
#include "mask.h"
#include "resources.h"
#include "url.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the revisions this server speaks, latest first; another requested
 * revision is answered with the latest (the client decides whether to go on) */
static const char *const versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" };

#define MAX_CALLS 256

static const char instructions[] =
    "llm-router-mcp operates one LLM Router (the URL in LLM_ROUTER_URL) through its HTTP API. "
    "Credentials are injected by the server; never ask the user for keys or tokens. "
    "Read-only tools: list_nodes, get_node, node_metrics, node_logs, list_models, model_task, "
    "search_history, get_history_record, metrics_summary, list_users, list_api_keys. "
    "Changes (admin): update_node, disconnect_node, delete_node, register_model, delete_model, "
    "create_user, create_api_key, revoke_api_key. Inference: chat_completion, embeddings. "
    "router_request reaches any other /api/ or /v1/ route of the same router. "
    "Failures come back as results with isError and a JSON body {\"error\":{...}}. "
    "Every call has a time limit (timeout_s). The resources llm-router://api/openapi and "
    "llm-router://guide/* document every route.";

static const char output_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"status\":{\"type\":\"integer\",\"description\":\"HTTP status of the router's answer\"},"
    "\"data\":{\"description\":\"the router's answer (JSON), or its text\"},"
    "\"truncated\":{\"type\":\"boolean\"},\"note\":{\"type\":\"string\"}},"
    "\"required\":[\"status\"]}";

static cJSON *parse_static(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        fprintf(stderr, "llm-router-mcp: a built-in schema does not parse: %.80s\n", text);
        abort(); /* a programming error every start hits */
    }
    return j;
}

static cJSON *build_tools(const mcp_config_t *cfg, cJSON ***schemas)
{
    cJSON *list = cJSON_CreateArray();
    *schemas = cm_xcalloc(mcp_tools_count, sizeof(**schemas));
    for (size_t i = 0; i < mcp_tools_count; i++) {
        const mcp_tool_t *t = &mcp_tools[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "title", t->title);
        cJSON_AddStringToObject(o, "description", t->description);
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "type", "object");
        cJSON *props = parse_static(t->props ? t->props : "{}");
        char tdesc[160];
        snprintf(tdesc, sizeof(tdesc), "Time limit of this call in seconds (default %d, at most %d)",
                 cfg->timeout_s, cfg->timeout_max_s);
        cJSON *ts = cJSON_AddObjectToObject(props, "timeout_s");
        cJSON_AddStringToObject(ts, "type", "integer");
        cJSON_AddNumberToObject(ts, "minimum", 1);
        cJSON_AddNumberToObject(ts, "maximum", cfg->timeout_max_s);
        cJSON_AddStringToObject(ts, "description", tdesc);
        cJSON_AddItemToObject(in, "properties", props);
        if (t->required)
            cJSON_AddItemToObject(in, "required", parse_static(t->required));
        cJSON_AddFalseToObject(in, "additionalProperties");
        cJSON_AddItemToObject(o, "inputSchema", in);
        (*schemas)[i] = in;
        cJSON_AddItemToObject(o, "outputSchema", parse_static(output_schema));
        cJSON *a = cJSON_AddObjectToObject(o, "annotations");
        cJSON_AddStringToObject(a, "title", t->title);
        cJSON_AddBoolToObject(a, "readOnlyHint", (t->flags & MCP_RO) != 0);
        cJSON_AddBoolToObject(a, "destructiveHint", (t->flags & MCP_DESTRUCTIVE) != 0);
        cJSON_AddBoolToObject(a, "idempotentHint", (t->flags & (MCP_IDEMPOTENT | MCP_RO)) != 0);
        cJSON_AddFalseToObject(a, "openWorldHint");
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

mcp_server_t *mcp_server_new(const mcp_config_t *cfg, char *err, size_t errlen)
{
    const char *why = NULL;
    char *base = mcp_url_base(cfg->router_url, &why);
    if (!base) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    if (cfg->timeout_s > cfg->timeout_max_s) {
        snprintf(err, errlen, "LLM_ROUTER_TIMEOUT (%d) is above LLM_ROUTER_MCP_TIMEOUT_MAX (%d)", cfg->timeout_s,
                 cfg->timeout_max_s);
        free(base);
        return NULL;
    }
    if ((cfg->username && *cfg->username) != (cfg->password && *cfg->password)) {
        snprintf(err, errlen, "LLM_ROUTER_USERNAME and LLM_ROUTER_PASSWORD go together");
        free(base);
        return NULL;
    }
    mcp_server_t *s = cm_xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->base = base;
    s->multi = curl_multi_init();
    s->tools_list = build_tools(cfg, &s->schemas);
    if (cfg->jwt_token && *cfg->jwt_token)
        s->session = cm_xstrdup(cfg->jwt_token);
    mcp_mask_add(cfg->api_key);
    mcp_mask_add(cfg->password);
    mcp_mask_add(cfg->jwt_token);
    return s;
}

void mcp_server_free(mcp_server_t *s)
{
    if (!s)
        return;
    mcp_call_free_all(s);
    curl_multi_cleanup(s->multi);
    cJSON_Delete(s->tools_list);
    free(s->schemas);
    free(s->base);
    free(s->session);
    free(s);
}

/* ---- output ---- */

static void write_all(mcp_server_t *s, const char *p, size_t n)
{
    while (n && !s->out_failed) {
        ssize_t w = write(s->out_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = { .fd = s->out_fd, .events = POLLOUT };
                poll(&pf, 1, 1000);
                continue;
            }
            s->out_failed = true;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void mcp_send(mcp_server_t *s, cJSON *msg)
{
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    size_t n = strlen(text);
    text = cm_xrealloc(text, n + 2);
    text[n] = '\n';
    write_all(s, text, n + 1);
    free(text);
}

static cJSON *envelope(const cJSON *id)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    cJSON_AddItemToObject(m, "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull());
    return m;
}

void mcp_send_result(mcp_server_t *s, const cJSON *id, cJSON *result)
{
    cJSON *m = envelope(id);
    cJSON_AddItemToObject(m, "result", result);
    mcp_send(s, m);
}

void mcp_send_error(mcp_server_t *s, const cJSON *id, int code, const char *msg, cJSON *data)
{
    cJSON *m = envelope(id);
    cJSON *e = cJSON_AddObjectToObject(m, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    if (data)
        cJSON_AddItemToObject(e, "data", data);
    mcp_send(s, m);
}

/* ---- methods ---- */

static void m_initialize(mcp_server_t *s, const cJSON *id, const cJSON *params)
{
    const char *asked = NULL;
    if (cm_json_str(params, "protocolVersion", &asked) != CM_JSON_OK) {
        mcp_send_error(s, id, RPC_INVALID_PARAMS, "initialize needs params.protocolVersion (a string)", NULL);
        return;
    }
    const char *v = versions[0];
    for (size_t i = 0; i < CM_ARRAY_LEN(versions); i++)
        if (strcmp(asked, versions[i]) == 0)
            v = versions[i];
    s->initialized = true;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "protocolVersion", v);
    cJSON *caps = cJSON_AddObjectToObject(r, "capabilities");
    cJSON_AddFalseToObject(cJSON_AddObjectToObject(caps, "tools"), "listChanged");
    cJSON *res = cJSON_AddObjectToObject(caps, "resources");
    cJSON_AddFalseToObject(res, "subscribe");
    cJSON_AddFalseToObject(res, "listChanged");
    cJSON *info = cJSON_AddObjectToObject(r, "serverInfo");
    cJSON_AddStringToObject(info, "name", MCP_SERVER_NAME);
    cJSON_AddStringToObject(info, "title", "LLM Router");
    cJSON_AddStringToObject(info, "version", MCP_SERVER_VERSION);
    cJSON_AddStringToObject(r, "instructions", instructions);
    LOG_INFO("mcp", "initialize: client asked %.40s, answered %s", asked, v);
    mcp_send_result(s, id, r);
}

static void m_tools_call(mcp_server_t *s, const cJSON *id, const cJSON *params)
{
    const char *name = NULL;
    if (cm_json_str(params, "name", &name) != CM_JSON_OK) {
        mcp_send_error(s, id, RPC_INVALID_PARAMS, "tools/call needs params.name (a string)", NULL);
        return;
    }
    size_t i = 0;
    while (i < mcp_tools_count && strcmp(mcp_tools[i].name, name) != 0)
        i++;
    if (i == mcp_tools_count) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Unknown tool: %.120s", name);
        mcp_send_error(s, id, RPC_INVALID_PARAMS, msg, NULL);
        return;
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    cJSON *empty = NULL;
    if (!args || cJSON_IsNull(args))
        args = empty = cJSON_CreateObject();
    char err[300];
    if (!cJSON_IsObject(args)) {
        mcp_send_error(s, id, RPC_INVALID_PARAMS, "params.arguments must be an object", NULL);
    } else if (mcp_schema_check(s->schemas[i], args, err, sizeof(err)) != 0) {
        char msg[400];
        snprintf(msg, sizeof(msg), "Invalid arguments for tool %s: %s", name, err);
        mcp_send_error(s, id, RPC_INVALID_PARAMS, msg, NULL);
    } else if (s->ncalls >= MAX_CALLS) {
        mcp_send_error(s, id, RPC_INTERNAL_ERROR, "too many tool calls in flight", NULL);
    } else {
        mcp_call_start(s, id, &mcp_tools[i], args);
    }
    cJSON_Delete(empty);
}

static void m_resources_read(mcp_server_t *s, const cJSON *id, const cJSON *params)
{
    const char *uri = NULL;
    if (cm_json_str(params, "uri", &uri) != CM_JSON_OK) {
        mcp_send_error(s, id, RPC_INVALID_PARAMS, "resources/read needs params.uri (a string)", NULL);
        return;
    }
    cJSON *contents = mcp_resources_read(uri);
    if (!contents) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "uri", uri);
        mcp_send_error(s, id, RPC_RESOURCE_NOT_FOUND, "Resource not found", d);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "contents", contents);
    mcp_send_result(s, id, r);
}

static void request(mcp_server_t *s, const cJSON *id, const char *method, const cJSON *params)
{
    if (strcmp(method, "initialize") == 0) {
        if (s->initialized)
            mcp_send_error(s, id, RPC_INVALID_REQUEST, "already initialized", NULL);
        else
            m_initialize(s, id, params);
        return;
    }
    if (strcmp(method, "ping") == 0) {
        mcp_send_result(s, id, cJSON_CreateObject());
        return;
    }
    bool known = strcmp(method, "tools/list") == 0 || strcmp(method, "tools/call") == 0 ||
                 strcmp(method, "resources/list") == 0 || strcmp(method, "resources/read") == 0 ||
                 strcmp(method, "resources/templates/list") == 0;
    if (!known) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Method not found: %.120s", method);
        mcp_send_error(s, id, RPC_METHOD_NOT_FOUND, msg, NULL);
        return;
    }
    if (!s->initialized) {
        mcp_send_error(s, id, RPC_INVALID_REQUEST, "Server not initialized: send initialize first", NULL);
        return;
    }
    if (strcmp(method, "tools/list") == 0) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddItemToObject(r, "tools", cJSON_Duplicate(s->tools_list, 1));
        mcp_send_result(s, id, r);
    } else if (strcmp(method, "tools/call") == 0) {
        m_tools_call(s, id, params);
    } else if (strcmp(method, "resources/list") == 0) {
        cJSON *r = cJSON_CreateObject();
        mcp_resources_list(cJSON_AddArrayToObject(r, "resources"));
        mcp_send_result(s, id, r);
    } else if (strcmp(method, "resources/templates/list") == 0) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddArrayToObject(r, "resourceTemplates");
        mcp_send_result(s, id, r);
    } else {
        m_resources_read(s, id, params);
    }
}

static void notification(mcp_server_t *s, const char *method, const cJSON *params)
{
    if (strcmp(method, "notifications/cancelled") == 0) {
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(params, "requestId");
        if (rid && mcp_call_cancel(s, rid))
            LOG_INFO("mcp", "call cancelled by the client");
    }
    /* notifications/initialized and any other: nothing to answer */
}

static void message(mcp_server_t *s, const char *line, size_t len)
{
    cJSON *m = cm_json_parse(line, len);
    if (!m) {
        mcp_send_error(s, NULL, RPC_PARSE_ERROR, "Parse error: not a JSON text (UTF-8)", NULL);
        return;
    }
    if (cJSON_IsArray(m)) {
        mcp_send_error(s, NULL, RPC_INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported", NULL);
        goto out;
    }
    if (!cJSON_IsObject(m)) {
        mcp_send_error(s, NULL, RPC_INVALID_REQUEST, "Invalid Request: a message is a JSON object", NULL);
        goto out;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(m, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(m, "params");
    const char *jv = NULL;
    bool id_ok = !id || cJSON_IsString(id) ||
                 (cJSON_IsNumber(id) && id->valuedouble == (double)(long long)id->valuedouble);
    if (!id_ok) {
        mcp_send_error(s, NULL, RPC_INVALID_REQUEST, "Invalid Request: id must be a string or an integer", NULL);
        goto out;
    }
    if (cm_json_str(m, "jsonrpc", &jv) != CM_JSON_OK || strcmp(jv, "2.0") != 0) {
        mcp_send_error(s, id, RPC_INVALID_REQUEST, "Invalid Request: \"jsonrpc\" must be \"2.0\"", NULL);
        goto out;
    }
    if (!method) {
        /* a response: this server sends no requests, so there is nothing to match */
        if (!cJSON_GetObjectItemCaseSensitive(m, "result") && !cJSON_GetObjectItemCaseSensitive(m, "error"))
            mcp_send_error(s, id, RPC_INVALID_REQUEST, "Invalid Request: no method", NULL);
        goto out;
    }
    if (!cJSON_IsString(method)) {
        mcp_send_error(s, id, RPC_INVALID_REQUEST, "Invalid Request: method must be a string", NULL);
        goto out;
    }
    if (params && !cJSON_IsObject(params)) {
        if (id)
            mcp_send_error(s, id, RPC_INVALID_PARAMS, "Invalid params: params must be an object", NULL);
        goto out;
    }
    if (id)
        request(s, id, method->valuestring, params);
    else
        notification(s, method->valuestring, params);
out:
    cJSON_Delete(m);
}

/* ---- the loop ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool discarding; /* inside a line longer than the limit */
} linebuf_t;

static void take_lines(mcp_server_t *s, linebuf_t *lb, bool eof)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(lb->buf + start, '\n', lb->len - start);
        if (!nl && !(eof && start < lb->len))
            break;
        size_t end = nl ? (size_t)(nl - lb->buf) : lb->len;
        size_t n = end - start;
        if (lb->discarding) {
            lb->discarding = false;
        } else {
            if (n && lb->buf[start + n - 1] == '\r')
                n--;
            size_t k = 0;
            while (k < n && (lb->buf[start + k] == ' ' || lb->buf[start + k] == '\t'))
                k++;
            if (k < n)
                message(s, lb->buf + start, n);
        }
        start = nl ? end + 1 : lb->len;
    }
    memmove(lb->buf, lb->buf + start, lb->len - start);
    lb->len -= start;
    if (lb->len > MCP_SERVER_MAX_LINE) {
        if (!lb->discarding)
            mcp_send_error(s, NULL, RPC_PARSE_ERROR, "Parse error: message longer than 4 MiB (discarded)", NULL);
        LOG_WARN("mcp", "a message longer than %u bytes was discarded", MCP_SERVER_MAX_LINE);
        lb->discarding = true;
        lb->len = 0;
    }
}

int mcp_server_run(mcp_server_t *s, int in_fd, int out_fd)
{
    s->out_fd = out_fd;
    linebuf_t lb = { 0 };
    bool in_open = true;
    while (!s->out_failed && (in_open || s->ncalls)) {
        struct curl_waitfd wfd = { .fd = in_fd, .events = CURL_WAIT_POLLIN, .revents = 0 };
        int n = 0;
        curl_multi_poll(s->multi, in_open ? &wfd : NULL, in_open ? 1 : 0, 1000, &n);
        if (in_open && wfd.revents) {
            cm_xgrow(&lb.buf, &lb.cap, lb.len + 65536, 65536);
            ssize_t r = read(in_fd, lb.buf + lb.len, 65536);
            if (r > 0) {
                lb.len += (size_t)r;
                take_lines(s, &lb, false);
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                in_open = false;
                take_lines(s, &lb, true);
                LOG_DEBUG("mcp", "stdin closed; %zu call(s) in flight", s->ncalls);
            }
        }
        int running = 0;
        curl_multi_perform(s->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(s->multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                mcp_call_transfer_done(s, msg->easy_handle, msg->data.result);
    }
    free(lb.buf);
    return s->out_failed ? -1 : 0;
}
