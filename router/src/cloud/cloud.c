/* cloud: the provider table, rt_cloud_build's dispatch and the OpenAI
 * passthrough, the OpenAI answer skeleton every translation fills, provider
 * errors and token counts. The providers' own translations are
 * cloud_anthropic.c, cloud_google.c and cloud_embed.c (cloud_int.h). */
#include "cloud/cloud_int.h"

#include "json.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rt_cloud_provider_name(rt_cloud_provider_t p)
{
    switch (p) {
    case RT_CLOUD_OPENAI: return "openai";
    case RT_CLOUD_ANTHROPIC: return "anthropic";
    case RT_CLOUD_GOOGLE: return "google";
    default: return "unknown";
    }
}

bool rt_cloud_parse_model(const char *model, rt_cloud_provider_t *p, const char **name)
{
    static const struct {
        const char *prefix;
        rt_cloud_provider_t p;
    } t[] = { { "openai:", RT_CLOUD_OPENAI },
              { "google:", RT_CLOUD_GOOGLE },
              { "anthropic:", RT_CLOUD_ANTHROPIC },
              { "ahtnorpic:", RT_CLOUD_ANTHROPIC } };
    for (size_t i = 0; i < CM_ARRAY_LEN(t); i++) {
        size_t n = strlen(t[i].prefix);
        if (strncmp(model, t[i].prefix, n) == 0 && model[n]) {
            *p = t[i].p;
            *name = model + n;
            return true;
        }
    }
    return false;
}

/* ---- shared helpers (cloud_int.h) ---- */

int refuse(rt_cloud_refusal_t *why, const char *param, const char *fmt, ...)
{
    va_list ap;
    why->status = 400;
    why->code = "invalid_value";
    why->param = param;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof(why->message), fmt, ap);
    va_end(ap);
    return -1;
}

int get_count(const cJSON *obj, const char *key, int64_t *v)
{
    const cJSON *it = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it))
        return -1;
    double d = it->valuedouble;
    if (!(d >= 0 && d < 9007199254740992.0) || d != (double)(int64_t)d)
        return -1;
    *v = (int64_t)d;
    return 1;
}

const char *error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

cJSON *answer_head(const answer_ctx_t *a)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", a->id);
    cJSON_AddStringToObject(root, "object",
                            a->call->endpoint == RT_CLOUD_COMPLETIONS ? "text_completion" : "chat.completion");
    cJSON_AddNumberToObject(root, "created", (double)a->created);
    cJSON_AddStringToObject(root, "model", a->model);
    return root;
}

cJSON *answer_choice(const answer_ctx_t *a, int index, const char *text, cJSON *tool_calls, const char *finish)
{
    cJSON *c = cJSON_CreateObject();
    if (a->call->endpoint == RT_CLOUD_COMPLETIONS) {
        cJSON_AddStringToObject(c, "text", text ? text : "");
        cJSON_AddNumberToObject(c, "index", index);
        cJSON_AddNullToObject(c, "logprobs");
        cJSON_AddStringToObject(c, "finish_reason", finish ? finish : "stop");
        cJSON_Delete(tool_calls); /* no tools were offered on /v1/completions */
        return c;
    }
    cJSON_AddNumberToObject(c, "index", index);
    cJSON *m = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    /* OpenAI's content is null when the turn is only tool calls */
    if ((!text || !*text) && tool_calls)
        cJSON_AddNullToObject(m, "content");
    else
        cJSON_AddStringToObject(m, "content", text ? text : "");
    cJSON_AddNullToObject(m, "refusal");
    if (tool_calls)
        cJSON_AddItemToObject(m, "tool_calls", tool_calls);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", finish ? finish : "stop");
    return c;
}

void answer_usage(cJSON *root, int64_t prompt, int64_t completion, int64_t total)
{
    if (prompt < 0)
        prompt = 0;
    if (completion < 0)
        completion = 0;
    if (total < 0)
        total = prompt + completion;
    cJSON *u = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)completion);
    cJSON_AddNumberToObject(u, "total_tokens", (double)total);
}

/* ---- the OpenAI passthrough: the client's bytes with only "model" ---- */

/* Skips one JSON string starting at s[i] == '"'; returns the index after
 * its closing quote. The body was validated by cm_json_parse already. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* Finds the value of the first top-level "model" key written plainly (no
 * escapes in the key) as a string: [*a, *b) are its bytes, quotes included.
 * false when there is none (then the body is re-printed instead). */
static bool find_model_value(const char *s, size_t n, size_t *a, size_t *b)
{
    int depth = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '"') {
            size_t end = skip_string(s, n, i);
            if (depth == 1 && end - i == 7 && memcmp(s + i, "\"model\"", 7) == 0) {
                size_t j = skip_ws(s, n, end);
                if (j < n && s[j] == ':') {
                    j = skip_ws(s, n, j + 1);
                    if (j < n && s[j] == '"') {
                        *a = j;
                        *b = skip_string(s, n, j);
                        return true;
                    }
                }
            }
            i = end;
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
        i++;
    }
    return false;
}

static void openai_body(const cJSON *req, const char *raw, size_t raw_len, const char *name, rt_cloud_call_t *out)
{
    size_t a, b;
    cbuf_t buf = { 0 };
    if (raw && find_model_value(raw, raw_len, &a, &b)) {
        cb_put(&buf, raw, a);
        cb_jstr(&buf, name, strlen(name));
        cb_put(&buf, raw + b, raw_len - b);
        out->body = buf.p;
        out->len = buf.len;
        return;
    }
    cJSON *copy = cJSON_Duplicate(req, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "model");
    cJSON_AddStringToObject(copy, "model", name);
    out->body = cJSON_PrintUnformatted(copy);
    out->len = strlen(out->body);
    cJSON_Delete(copy);
}

static const char *const openai_paths[] = { [RT_CLOUD_CHAT] = "/v1/chat/completions",
                                            [RT_CLOUD_COMPLETIONS] = "/v1/completions",
                                            [RT_CLOUD_EMBEDDINGS] = "/v1/embeddings" };

/* What every call records from the client's request before translating. */
static void read_flags(const cJSON *req, rt_cloud_call_t *out)
{
    out->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"));
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
    out->include_usage = out->stream && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    const char *enc;
    out->base64 = cm_json_str(req, "encoding_format", &enc) == CM_JSON_OK && strcmp(enc, "base64") == 0;
}

int rt_cloud_build_opts(rt_cloud_provider_t p, rt_cloud_endpoint_t ep, const cJSON *req, const char *raw,
                        size_t raw_len, const char *name, const rt_cloud_build_opts_t *o, rt_cloud_call_t *out,
                        rt_cloud_refusal_t *why)
{
    rt_cloud_build_opts_t defaults = { .anthropic_max_tokens = RT_CLOUD_DEFAULT_MAX_TOKENS };
    if (!o)
        o = &defaults;
    memset(out, 0, sizeof(*out));
    memset(why, 0, sizeof(*why));
    out->provider = p;
    out->endpoint = ep;
    if (!cJSON_IsObject(req) || (unsigned)ep > RT_CLOUD_EMBEDDINGS || (unsigned)p >= RT_CLOUD_PROVIDERS)
        return refuse(why, NULL, "The request body must be a JSON object");
    read_flags(req, out);
    if (p == RT_CLOUD_OPENAI) {
        out->path = cm_xstrdup(openai_paths[ep]);
        openai_body(req, raw, raw_len, name, out);
        return 0;
    }
    if (ep == RT_CLOUD_EMBEDDINGS) {
        if (p == RT_CLOUD_ANTHROPIC) {
            refuse(why, "model", "Anthropic has no embeddings API: use an openai: or google: model for /v1/embeddings");
            why->code = "unsupported_endpoint";
            return -1;
        }
        int rc = google_embed_build(req, name, out, why);
        if (rc != 0)
            rt_cloud_call_free(out), out->provider = p, out->endpoint = ep;
        return rc;
    }
    cJSON *chat = NULL;
    if (ep == RT_CLOUD_COMPLETIONS && !(chat = completion_as_chat(req, why)))
        return -1;
    const cJSON *r = chat ? chat : req;
    int rc = p == RT_CLOUD_ANTHROPIC ? anthropic_build(r, name, o, out, why) : google_build(r, name, out, why);
    cJSON_Delete(chat);
    if (rc != 0) {
        free(out->path), out->path = NULL;
        free(out->body), out->body = NULL;
        out->len = 0;
    }
    return rc;
}

int rt_cloud_build(rt_cloud_provider_t p, rt_cloud_endpoint_t ep, const cJSON *req, const char *raw, size_t raw_len,
                   const char *name, rt_cloud_call_t *out, rt_cloud_refusal_t *why)
{
    return rt_cloud_build_opts(p, ep, req, raw, raw_len, name, NULL, out, why);
}

void rt_cloud_call_free(rt_cloud_call_t *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->body);
    memset(c, 0, sizeof(*c));
}

/* ---- answers ---- */

char *rt_cloud_answer(const rt_cloud_call_t *call, const char *body, size_t len, const char *model, const char *id,
                      int64_t created, size_t *out_len, char *err, size_t errlen)
{
    cJSON *j = cm_json_parse(body ? body : "", len);
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "The provider's answer is not a JSON object");
        cJSON_Delete(j);
        return NULL;
    }
    answer_ctx_t a = { .call = call, .model = model, .id = id, .created = created };
    char *s = NULL;
    if (call->provider == RT_CLOUD_ANTHROPIC && call->endpoint != RT_CLOUD_EMBEDDINGS)
        s = anthropic_answer(&a, j, err, errlen);
    else if (call->provider == RT_CLOUD_GOOGLE && call->endpoint == RT_CLOUD_EMBEDDINGS)
        s = google_embed_answer(&a, j, err, errlen);
    else if (call->provider == RT_CLOUD_GOOGLE)
        s = google_answer(&a, j, err, errlen);
    else
        snprintf(err, errlen, "No translation for this answer");
    cJSON_Delete(j);
    if (s && out_len)
        *out_len = strlen(s);
    return s;
}

/* The provider's error object: OpenAI {"error":{"message","type","code"}},
 * Anthropic {"type":"error","error":{"type","message"}}, Google
 * {"error":{"code","message","status"}} (streamGenerateContent without
 * alt=sse wraps it in an array). */
void rt_cloud_error(rt_cloud_provider_t p, int status, const char *body, size_t len, rt_cloud_error_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->type, sizeof(out->type), "%s", error_type(status));
    cJSON *j = body && len ? cm_json_parse(body, len) : NULL;
    const cJSON *root = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, 0) : j;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const char *msg = NULL, *code = NULL;
    if (cJSON_IsObject(e)) {
        cm_json_str(e, "message", &msg);
        if (p == RT_CLOUD_GOOGLE)
            cm_json_str(e, "status", &code);
        else if (cm_json_str(e, "code", &code) != CM_JSON_OK)
            cm_json_str(e, "type", &code);
    } else if (cJSON_IsString(e)) {
        msg = e->valuestring;
    }
    if (msg && *msg)
        cm_utf8_sanitize(out->message, sizeof(out->message), msg, strlen(msg));
    else
        snprintf(out->message, sizeof(out->message), "%s answered HTTP %d", rt_cloud_provider_name(p), status);
    if (code)
        cm_utf8_sanitize(out->code, sizeof(out->code), code, strlen(code));
    cJSON_Delete(j);
}

rt_cloud_usage_t rt_cloud_answer_usage(const char *openai_json, size_t len)
{
    rt_cloud_usage_t u = { -1, -1 };
    cJSON *j = cm_json_parse(openai_json ? openai_json : "", len);
    const cJSON *us = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(us)) {
        get_count(us, "prompt_tokens", &u.prompt_tokens);
        get_count(us, "completion_tokens", &u.completion_tokens);
    }
    cJSON_Delete(j);
    return u;
}
