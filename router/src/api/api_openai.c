/* api_openai: the OpenAI-compatible surface. Inference routes read only
 * "model" from the body (one parse, on the offload pool for a large body so
 * that no loop stalls) and hand the untouched body to the proxy, or to the
 * cloud upstream for a provider prefix. /v1/models: api_v1_models.c. */
#include "api/handlers.h"
#include "api/views.h"
#include "core/cloud_proxy.h"
#include "core/proxy.h"
#include "core/registry.h"
#include "json.h"
#include "router.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODEL_ID 256

/* Cloud prefixes are another kind of upstream (core/cloud_proxy.c). */
static bool cloud_model(const char *model)
{
    rt_cloud_provider_t p;
    const char *name;
    return rt_cloud_parse_model(model, &p, &name);
}

/* Bodies from this size on are parsed on the offload pool, not on the loop.
 * Measured (cJSON through cm_json_parse, mimalloc, this project's CI VM):
 * 2-4 ms per MiB for a body that is mostly one long string, 6-30 ms per MiB
 * (parse and free) for one of many small messages: 16 MiB of the latter held
 * a loop, and every client on it, for up to half a second. At 128 KiB the
 * worst case left on the loop is ~4 ms; the hand-off to a pool thread and
 * back costs tens of microseconds, small beside any inference. */
#define OFFLOAD_PARSE_BYTES (128u * 1024u)

/* What the body says, read from its parse: the one decision route acts on. */
typedef enum { BODY_NOT_OBJECT, BODY_NO_MODEL, BODY_CLOUD, BODY_OK } body_verdict_t;

static body_verdict_t judge(const cJSON *j, char model[MAX_MODEL_ID + 1])
{
    const char *m;
    if (!cJSON_IsObject(j))
        return BODY_NOT_OBJECT;
    if (cm_json_str(j, "model", &m) != CM_JSON_OK || !*m || strlen(m) > MAX_MODEL_ID)
        return BODY_NO_MODEL;
    snprintf(model, MAX_MODEL_ID + 1, "%s", m);
    return cloud_model(model) ? BODY_CLOUD : BODY_OK;
}

/* Replies or forwards, finishing req. */
static void route(cm_http_req_t *req, rt_router_t *rt, const char *path, body_verdict_t v, const char *model,
                  const char *body, size_t len)
{
    switch (v) {
    case BODY_NOT_OBJECT: /* what cm_http_req_json_object answers */
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_json", NULL,
                            "The request body must be a JSON object");
        return;
    case BODY_NO_MODEL:
        cm_http_reply_error(req, 400, NULL, "missing_model", "model", "'model' must be a non-empty string");
        return;
    case BODY_CLOUD:
        rt_cloud_forward(rt->cloud, req, path, model, body, len);
        return;
    case BODY_OK:
        rt_proxy_forward(rt->proxy, req, path, model, body, len);
        return;
    }
}

/* A large body's parse, carried through the offload pool. body is req's
 * (valid until req is finished, which only done does). The tree is built
 * and freed on the pool thread (its allocator's memory goes back to the
 * thread that took it, not across threads); done reads only the verdict. */
typedef struct {
    rt_router_t *rt;
    const char *path; /* a literal */
    const char *body;
    size_t len;
    body_verdict_t verdict;
    char model[MAX_MODEL_ID + 1];
    rt_cloud_prep_t prep; /* a cloud request, translated on the pool too */
} parse_job_t;

static void parse_work(void *arg)
{
    parse_job_t *pj = arg;
    cJSON *j = cm_json_parse(pj->body, pj->len);
    pj->verdict = judge(j, pj->model);
    if (pj->verdict == BODY_CLOUD)
        rt_cloud_prepare(pj->rt->cloud, pj->path, pj->model, j, pj->body, pj->len, &pj->prep);
    cJSON_Delete(j);
}

static void parse_free(void *arg)
{
    parse_job_t *pj = arg;
    rt_cloud_prep_free(&pj->prep); /* unless rt_cloud_send took it */
    free(pj);
}

static void parse_done(cm_http_req_t *req, void *arg)
{
    parse_job_t *pj = arg;
    if (cm_http_req_closed(req)) { /* left while its body was parsed: finish it quietly */
        cm_http_reply_error(req, 400, NULL, "client_closed", NULL, "The client closed the connection");
        return;
    }
    if (pj->verdict == BODY_CLOUD)
        rt_cloud_send(pj->rt->cloud, req, pj->path, pj->model, pj->body, pj->len, &pj->prep);
    else
        route(req, pj->rt, pj->path, pj->verdict, pj->model, pj->body, pj->len);
}

static const rt_offload_ops_t parse_ops = { parse_work, parse_done, parse_free };

static void forward(cm_http_req_t *req, rt_router_t *rt, const char *path)
{
    size_t len;
    const char *body = cm_http_req_body(req, &len); /* appends a NUL each call: take it once */
    if (len >= OFFLOAD_PARSE_BYTES) {
        parse_job_t *pj = cm_xcalloc(1, sizeof(*pj));
        *pj = (parse_job_t){ .rt = rt, .path = path, .body = body, .len = len };
        rt_offload(rt, req, &parse_ops, pj); /* or 503 busy, as other offloaded work */
        return;
    }
    char model[MAX_MODEL_ID + 1];
    cJSON *j = cm_json_parse(body, len);
    body_verdict_t v = judge(j, model);
    if (v == BODY_CLOUD) { /* translated from this parse: no second one */
        rt_cloud_prep_t prep;
        rt_cloud_prepare(rt->cloud, path, model, j, body, len, &prep);
        cJSON_Delete(j);
        rt_cloud_send(rt->cloud, req, path, model, body, len, &prep);
        return;
    }
    cJSON_Delete(j);
    route(req, rt, path, v, model, body, len);
}

void rt_h_v1_chat(cm_http_req_t *req, void *ud) { forward(req, ud, "/v1/chat/completions"); }
void rt_h_v1_completions(cm_http_req_t *req, void *ud) { forward(req, ud, "/v1/completions"); }
void rt_h_v1_embeddings(cm_http_req_t *req, void *ud) { forward(req, ud, "/v1/embeddings"); }
