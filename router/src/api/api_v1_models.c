/* api_v1_models: GET /v1/models and /v1/models/{id}: what clients can
 * call (the models online nodes serve, the registered models, the
 * configured cloud models); for a node token the registered models carry
 * what a node needs to sync them (path, size, SHA-256, blob URL). */
#include "api/handlers.h"
#include "api/views.h"
#include "core/cloud_proxy.h"
#include "core/registry.h"
#include "json.h"
#include "router.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rt_view_models over a snapshot of the registry. */
static cJSON *models(rt_router_t *rt, const char *id)
{
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    cJSON *a = rt_view_models(v, n, id);
    rt_registry_views_free(v, n);
    /* the configured cloud models after the local ones */
    cJSON *cloud = cJSON_CreateArray();
    rt_cloud_models_json(rt->cloud, cloud);
    cJSON *m, *next;
    for (m = cloud->child; m; m = next) {
        next = m->next;
        const char *mid;
        if (id && (cm_json_str(m, "id", &mid) != CM_JSON_OK || strcmp(mid, id) != 0))
            continue;
        if (!a)
            a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_DetachItemViaPointer(cloud, m));
        if (id)
            break;
    }
    cJSON_Delete(cloud);
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
