/* api_v1_models: GET /v1/models and /v1/models/{id}: what clients can
 * call (the models online nodes serve, the registered models, the
 * configured cloud models); for a node token the registered models carry
 * what a node needs to sync them (path, size, SHA-256, blob URL). */
#include "api/handlers.h"
#include "api/views.h"
#include "auth/auth.h"
#include "core/cloud_proxy.h"
#include "core/registry.h"
#include "json.h"
#include "models/models.h"
#include "router.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static bool listed(const cJSON *a, const char *id)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, a) {
        const char *mid;
        if (cm_json_str(m, "id", &mid) == CM_JSON_OK && strcmp(mid, id) == 0)
            return true;
    }
    return false;
}

/* Moves the items of from whose id is not in a yet (and is id, when given)
 * to the end of a; deletes from. */
static void append_new(cJSON *a, cJSON *from, const char *id)
{
    cJSON *m, *next;
    for (m = from ? from->child : NULL; m; m = next) {
        next = m->next;
        const char *mid;
        if (cm_json_str(m, "id", &mid) != CM_JSON_OK || (id && strcmp(mid, id) != 0) || listed(a, mid))
            continue;
        cJSON_AddItemToArray(a, cJSON_DetachItemViaPointer(from, m));
    }
    cJSON_Delete(from);
}

/* The registered models (rt_model_json: for a node, with what it needs to
 * sync them), then the other models online nodes serve (rt_view_models),
 * then the configured cloud models: one entry per id (a registered model a
 * node serves is listed once, as registered). NULL when id is given and
 * matches none. */
static cJSON *models(rt_router_t *rt, const char *id, bool for_node)
{
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    rt_node_views_t vs = { v, n };
    cJSON *a = cJSON_CreateArray();
    rt_models_append_json(rt->models, a, for_node, id, rt_view_count_nodes, &vs);
    append_new(a, rt_view_models(v, n, id), id);
    rt_registry_views_free(v, n);
    cJSON *cloud = cJSON_CreateArray();
    rt_cloud_models_json(rt->cloud, cloud);
    append_new(a, cloud, id);
    if (id && !a->child) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

/* A node token (X-Node-Token or a Bearer nt_...) sees the sync fields. */
static bool for_node(const cm_http_req_t *req)
{
    const rt_principal_t *p = rt_auth_principal(req);
    return p && p->kind == RT_PRINCIPAL_NODE;
}

void rt_h_v1_models(cm_http_req_t *req, void *ud)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToObject(o, "data", models(ud, NULL, for_node(req)));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

void rt_h_v1_model(cm_http_req_t *req, void *ud)
{
    const char *id = cm_http_req_param(req, "id");
    cJSON *a = models(ud, id, for_node(req));
    if (!a) {
        cm_http_reply_error(req, 404, NULL, "model_not_found", "model", "The model '%s' does not exist", id);
        return;
    }
    cm_http_reply_json(req, 200, cJSON_GetArrayItem(a, 0));
    cJSON_Delete(a);
}
