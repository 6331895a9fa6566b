/* api_openai: the OpenAI-compatible surface. Inference routes read only
 * "model" from the body (one parse) and hand the untouched body to the proxy;
 * /v1/models lists what the online nodes serve. */
#include "api/handlers.h"
#include "api/views.h"
#include "core/proxy.h"
#include "core/registry.h"
#include "json.h"
#include "router.h"

#include <string.h>

#define MAX_MODEL_ID 256

/* Cloud prefixes are another kind of upstream (a later module); until it
 * exists they are refused clearly instead of being looked up on nodes. */
static bool cloud_model(const char *model)
{
    static const char *const prefixes[] = { "openai:", "google:", "anthropic:", "ahtnorpic:" };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(model, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static void forward(cm_http_req_t *req, rt_router_t *rt, const char *path)
{
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    cJSON *j = cm_http_req_json_object(req);
    const char *model;
    if (!j)
        return;
    if (cm_json_str(j, "model", &model) != CM_JSON_OK || !*model || strlen(model) > MAX_MODEL_ID) {
        cm_http_reply_error(req, 400, NULL, "missing_model", "model", "'model' must be a non-empty string");
        goto out;
    }
    if (cloud_model(model)) {
        cm_http_reply_error(req, 501, NULL, "cloud_not_available", "model",
                            "Cloud models are not available in this build");
        goto out;
    }
    rt_proxy_forward(rt->proxy, req, path, model, body, len);
out:
    cJSON_Delete(j);
}

void rt_h_v1_chat(cm_http_req_t *req, void *ud) { forward(req, ud, "/v1/chat/completions"); }
void rt_h_v1_completions(cm_http_req_t *req, void *ud) { forward(req, ud, "/v1/completions"); }
void rt_h_v1_embeddings(cm_http_req_t *req, void *ud) { forward(req, ud, "/v1/embeddings"); }

/* rt_view_models over a snapshot of the registry. */
static cJSON *models(rt_router_t *rt, const char *id)
{
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    cJSON *a = rt_view_models(v, n, id);
    rt_registry_views_free(v, n);
    return a;
}

void rt_h_v1_models(cm_http_req_t *req, void *ud)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToObject(o, "data", models(ud, NULL));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

void rt_h_v1_model(cm_http_req_t *req, void *ud)
{
    const char *id = cm_http_req_param(req, "id");
    cJSON *a = models(ud, id);
    if (!a) {
        cm_http_reply_error(req, 404, NULL, "model_not_found", "model", "The model '%s' does not exist", id);
        return;
    }
    cm_http_reply_json(req, 200, cJSON_GetArrayItem(a, 0));
    cJSON_Delete(a);
}
