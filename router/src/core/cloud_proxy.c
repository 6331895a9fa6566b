/* cloud_proxy: setup, the checks before a call (provider, key, endpoint,
 * the translation of the request) and the /v1/models list. The call itself,
 * from the request out to the client's last byte, is cloud_proxy_call.c. */
#include "core/cloud_proxy_int.h"

#include "json.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLOUD_MODELS 256 /* entries of LLM_ROUTER_CLOUD_MODELS kept for /v1/models */
#define MAX_RETRIES 10       /* the option's own bound */

/* ---- setup ---- */

/* Wipes a secret before its memory goes back to the allocator (volatile:
 * a plain memset before free may be dropped by the compiler). */
static void wipe(char *s, size_t n)
{
    volatile char *v = s;
    while (n--)
        *v++ = 0;
}

/* "Name: value" with the key, built once: no request formats a secret, and
 * only the header list handed to libcurl ever holds it. */
static char *header_line(const char *name, const char *value)
{
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *s = cm_xmalloc(n);
    snprintf(s, n, "%s: %s", name, value);
    return s;
}

/* A header value must not smuggle another line in: a key or version with
 * CR or LF (a broken environment file) is treated as unset. */
static bool header_safe(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n')
            return false;
    return true;
}

static void build_auth(rt_cloud_t *c)
{
    static const char *const names[RT_CLOUD_PROVIDERS] = {
        [RT_CLOUD_OPENAI] = "Authorization", [RT_CLOUD_ANTHROPIC] = "x-api-key", [RT_CLOUD_GOOGLE] = "x-goog-api-key"
    };
    for (int p = 0; p < RT_CLOUD_PROVIDERS; p++) {
        const char *k = c->o.key[p];
        if (!k || !*k)
            continue;
        if (!header_safe(k)) {
            LOG_WARN("cloud", "%s holds a line break: treated as unset", c->o.key_var[p] ? c->o.key_var[p] : "a key");
            continue;
        }
        if (p == RT_CLOUD_OPENAI) {
            size_t n = strlen("Bearer ") + strlen(k) + 1;
            char *v = cm_xmalloc(n);
            snprintf(v, n, "Bearer %s", k);
            c->auth[p] = header_line(names[p], v);
            wipe(v, n);
            free(v);
        } else {
            c->auth[p] = header_line(names[p], k);
        }
    }
    const char *ver = c->o.anthropic_version && *c->o.anthropic_version ? c->o.anthropic_version : "2023-06-01";
    c->anthropic_version = header_line("anthropic-version", header_safe(ver) ? ver : "2023-06-01");
}

/* LLM_ROUTER_CLOUD_MODELS: "provider:name" entries, comma-separated, spaces
 * around them ignored; one without a known prefix is logged and skipped. */
static void parse_models(rt_cloud_t *c)
{
    const char *s = c->o.models;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *a = s, *b = s + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            char *id = cm_xstrndup(a, (size_t)(b - a));
            rt_cloud_provider_t p;
            const char *name;
            if (!rt_cloud_parse_model(id, &p, &name) || !cm_utf8_valid(id, strlen(id))) {
                LOG_WARN("cloud", "LLM_ROUTER_CLOUD_MODELS: '%.80s' is not provider:name (openai:, anthropic:, "
                         "google:): skipped", id);
                free(id);
            } else if (c->nmodels == MAX_CLOUD_MODELS) {
                LOG_WARN("cloud", "LLM_ROUTER_CLOUD_MODELS: more than %d entries: the rest skipped", MAX_CLOUD_MODELS);
                free(id);
                break;
            } else {
                c->models = cm_xrealloc(c->models, (c->nmodels + 1) * sizeof(*c->models));
                c->models[c->nmodels].id = id;
                c->models[c->nmodels].provider = p;
                c->nmodels++;
            }
        }
        s = end ? end + 1 : NULL;
    }
}

/* "http://10.0.0.5:4000", "http://[::1]/x": plain HTTP to a numeric
 * address, which the own HTTP client carries (http_client.h). */
static bool plain_numeric(const char *url)
{
    if (!url || strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7, *end;
    char host[64];
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end || (size_t)(end - h - 1) >= sizeof(host))
            return false;
        memcpy(host, h + 1, (size_t)(end - h - 1));
        host[end - h - 1] = '\0';
        unsigned char a[16];
        return inet_pton(AF_INET6, host, a) == 1;
    }
    end = h + strcspn(h, ":/?#");
    if ((size_t)(end - h) >= sizeof(host))
        return false;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    unsigned char a[4];
    return inet_pton(AF_INET, host, a) == 1;
}

rt_cloud_t *rt_cloud_new(const rt_cloud_opts_t *o, rt_metrics_t *metrics)
{
    rt_cloud_t *c = cm_xcalloc(1, sizeof(*c));
    c->o = *o;
    if (c->o.workers < 1)
        c->o.workers = 1;
    if (c->o.retries < 0)
        c->o.retries = 0;
    if (c->o.retries > MAX_RETRIES)
        c->o.retries = MAX_RETRIES;
    if (c->o.anthropic_max_tokens <= 0)
        c->o.anthropic_max_tokens = 4096;
    if (c->o.ca_bundle && !*c->o.ca_bundle)
        c->o.ca_bundle = NULL;
    c->metrics = metrics;
    c->created = (int64_t)time(NULL);
    build_auth(c);
    parse_models(c);
    for (int p = 0; p < RT_CLOUD_PROVIDERS; p++)
        c->plain_ip[p] = plain_numeric(c->o.base_url[p]);
    c->w = cm_xcalloc((size_t)c->o.workers, sizeof(*c->w));
    for (int i = 0; i < c->o.workers; i++)
        LIST_INIT(&c->w[i].live);
    return c;
}

void rt_cloud_free(rt_cloud_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->o.workers; i++)
        cm_hc_free(c->w[i].hc);
    free(c->w);
    for (int p = 0; p < RT_CLOUD_PROVIDERS; p++)
        if (c->auth[p]) {
            wipe(c->auth[p], strlen(c->auth[p]));
            free(c->auth[p]);
        }
    free(c->anthropic_version);
    for (size_t i = 0; i < c->nmodels; i++)
        free(c->models[i].id);
    free(c->models);
    free(c);
}

void rt_cloud_set_observer(rt_cloud_t *c, const rt_proxy_observer_t *obs)
{
    c->obs = *obs;
}

void rt_cloud_set_offload(rt_cloud_t *c, struct cm_offload *pool)
{
    c->pool = pool;
}

void rt_cloud_worker_start(rt_cloud_t *c, struct event_base *base, int worker)
{
    if (worker < 0 || worker >= c->o.workers) { /* the assembler sizes both from one count */
        LOG_ERROR("cloud", "worker %d started, but the cloud upstream was built for %d", worker, c->o.workers);
        abort();
    }
    c->w[worker].hc = cm_hc_new(base);
    c->w[worker].base = base;
}

void rt_cloud_worker_stop(rt_cloud_t *c, int worker)
{
    if (worker < 0 || worker >= c->o.workers)
        return;
    rt_cloud_calls_stop(c, worker);
    cm_hc_free(c->w[worker].hc);
    c->w[worker].hc = NULL;
    c->w[worker].base = NULL;
}

/* ---- before a call ---- */

static bool endpoint_of(const char *path, rt_cloud_endpoint_t *ep)
{
    if (strcmp(path, "/v1/chat/completions") == 0)
        *ep = RT_CLOUD_CHAT;
    else if (strcmp(path, "/v1/completions") == 0)
        *ep = RT_CLOUD_COMPLETIONS;
    else if (strcmp(path, "/v1/embeddings") == 0)
        *ep = RT_CLOUD_EMBEDDINGS;
    else
        return false;
    return true;
}

__attribute__((format(printf, 6, 7))) static void refuse(rt_cloud_prep_t *out, int status, const char *type,
                                                         const char *code, const char *param, const char *fmt, ...)
{
    va_list ap;
    out->status = status;
    out->type = type;
    out->code = code;
    out->param = param;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
}

void rt_cloud_prepare(const rt_cloud_t *c, const char *path, const char *model, const cJSON *body, const char *raw,
                      size_t len, rt_cloud_prep_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *name;
    rt_cloud_endpoint_t ep;
    if (!rt_cloud_parse_model(model, &out->provider, &name)) {
        refuse(out, 404, "invalid_request_error", "model_not_found", "model", "The model '%.200s' does not exist",
               model);
        return;
    }
    if (!endpoint_of(path, &ep)) {
        refuse(out, 404, "invalid_request_error", "unsupported_endpoint", NULL,
               "Cloud models are not served on %.100s", path);
        return;
    }
    /* before anything goes out, and naming the variable, never the value */
    if (!c->auth[out->provider]) {
        const char *var = c->o.key_var[out->provider] ? c->o.key_var[out->provider] : "the provider's API key";
        out->status = 401;
        out->type = "authentication_error";
        out->code = "missing_api_key";
        snprintf(out->message, sizeof(out->message),
                 "The router has no API key for %s: set %s in the router's environment to use '%.120s'",
                 rt_cloud_provider_name(out->provider), var, model);
        return;
    }
    if (!c->o.base_url[out->provider] || !*c->o.base_url[out->provider]) {
        refuse(out, 503, "server_error", "cloud_not_configured", NULL, "No base URL is set for %s",
               rt_cloud_provider_name(out->provider));
        return;
    }
    rt_cloud_refusal_t why = { 0 };
    rt_cloud_build_opts_t bo = { .anthropic_max_tokens = c->o.anthropic_max_tokens };
    if (rt_cloud_build_opts(out->provider, ep, body, raw, len, name, &bo, &out->call, &why) != 0) {
        out->status = why.status >= 400 && why.status <= 599 ? why.status : 400;
        out->type = cm_http_error_type(out->status);
        out->code = why.code;
        out->param = why.param;
        snprintf(out->message, sizeof(out->message), "%s", why.message[0] ? why.message : "The request was refused");
        rt_cloud_call_free(&out->call);
    }
}

void rt_cloud_prep_free(rt_cloud_prep_t *p)
{
    if (p)
        rt_cloud_call_free(&p->call);
}

void rt_cloud_forward(rt_cloud_t *c, cm_http_req_t *req, const char *path, const char *model, const char *body,
                      size_t len)
{
    rt_cloud_prep_t prep;
    cJSON *j = cm_json_parse(body, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_json", NULL,
                            "The request body must be a JSON object");
        return;
    }
    rt_cloud_prepare(c, path, model, j, body, len, &prep);
    cJSON_Delete(j);
    rt_cloud_send(c, req, path, model, body, len, &prep);
}

/* ---- /v1/models ---- */

void rt_cloud_models_json(const rt_cloud_t *c, cJSON *data)
{
    for (size_t i = 0; c && i < c->nmodels; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", c->models[i].id);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", (double)c->created);
        cJSON_AddStringToObject(m, "owned_by", rt_cloud_provider_name(c->models[i].provider));
        cJSON_AddItemToArray(data, m);
    }
}
