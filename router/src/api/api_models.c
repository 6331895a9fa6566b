/* api_models: the model catalogue's management routes (routes.c says who
 * may call them):
 *   GET    /api/models/registered    the catalogue and the model tasks
 *   POST   /api/models/discover-gguf register the GGUF files on disk
 *   DELETE /api/models/{model_name} remove a model (its files when they lie
 *                                    inside the models directory)
 * The list is read from the catalogue's mirror on the loop (no I/O);
 * discovery (header reads, SHA-256 of every new file) and deletion (SQLite,
 * unlink) run on the offload pool. */
#include "api/handlers.h"
#include "api/views.h"
#include "auth/auth.h"
#include "core/registry.h"
#include "json.h"
#include "log.h"
#include "models/downloads.h"
#include "models/models.h"
#include "router.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- GET /api/models/registered ---- */


void rt_h_models_registered(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    rt_node_view_t *v;
    rt_node_views_t vs = { NULL, 0 };
    vs.n = rt_registry_snapshot(rt->registry, false, &v);
    vs.v = v;
    cJSON *o = cJSON_CreateObject();
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    rt_models_append_json(rt->models, models, false, NULL, rt_view_count_nodes, &vs);
    rt_registry_views_free(v, vs.n);
    cJSON *tasks = rt->downloads ? rt_downloads_tasks_json(rt->downloads, NULL) : NULL;
    cJSON_AddItemToObject(o, "tasks", tasks ? tasks : cJSON_CreateArray());
    cJSON_AddNumberToObject(o, "version", (double)rt_models_version(rt->models));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

/* ---- POST /api/models/discover-gguf ---- */

typedef struct {
    rt_router_t *rt;
    char *dir;              /* NULL: the models directory */
    char by[RT_AUTH_PRINCIPAL_NAME_SIZE];
    int rc;
    char err[PATH_MAX + 64];
    cJSON *registered, *skipped;
} discover_job_t;

static void discover_work(void *arg)
{
    discover_job_t *j = arg;
    j->registered = cJSON_CreateArray();
    j->skipped = cJSON_CreateArray();
    j->rc = rt_models_discover(j->rt->models, j->dir, j->registered, j->skipped, j->err, sizeof(j->err));
}

static void discover_done(cm_http_req_t *req, void *arg)
{
    discover_job_t *j = arg;
    if (j->rc == RT_MODELS_BUSY) {
        cm_http_add_header(req, "Retry-After", "5");
        cm_http_reply_error(req, 409, "invalid_request_error", "discovery_running", NULL,
                            "A discovery is already running; try again when it has finished");
        return;
    }
    if (j->rc != 0) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "dir", "%s", j->err);
        return;
    }
    LOG_INFO("models", "discovery in %s by %s: %d registered, %d skipped", j->dir ? j->dir : "the models directory",
             j->by, cJSON_GetArraySize(j->registered), cJSON_GetArraySize(j->skipped));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "registered", j->registered);
    cJSON_AddItemToObject(o, "skipped", j->skipped);
    j->registered = j->skipped = NULL;
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static void discover_free(void *arg)
{
    discover_job_t *j = arg;
    cJSON_Delete(j->registered);
    cJSON_Delete(j->skipped);
    free(j->dir);
    free(j);
}

static const rt_offload_ops_t discover_ops = { discover_work, discover_done, discover_free };

/* The body's "dir": NULL when absent; -1 after a 400. An empty body is {}. */
static int read_dir(cm_http_req_t *req, char **dir)
{
    *dir = NULL;
    size_t len;
    cm_http_req_body(req, &len);
    if (len == 0)
        return 0;
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return -1;
    int rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        if (strcmp(it->string, "dir") != 0) {
            cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", it->string,
                                "Unknown field '%s' (the body takes only \"dir\")", it->string);
            rc = -1;
            goto out;
        }
    }
    const char *d;
    int r = cm_json_str(j, "dir", &d);
    if (r == CM_JSON_ABSENT || (r == CM_JSON_OK && !*d) ||
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "dir")))
        goto out;
    if (r != CM_JSON_OK || d[0] != '/' || strlen(d) >= PATH_MAX) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "dir",
                            "dir must be an absolute path (a string starting with '/', under %d bytes)", PATH_MAX);
        rc = -1;
        goto out;
    }
    *dir = cm_xstrdup(d);
out:
    cJSON_Delete(j);
    return rc;
}

void rt_h_models_discover(cm_http_req_t *req, void *ud)
{
    char *dir;
    if (read_dir(req, &dir) != 0)
        return;
    discover_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->rt = ud;
    j->dir = dir;
    const rt_principal_t *p = rt_auth_principal(req);
    snprintf(j->by, sizeof(j->by), "%s", p ? p->name : "");
    rt_offload(ud, req, &discover_ops, j);
}

/* ---- DELETE /api/models/{model_name} (the rest of the path) ---- */

typedef struct {
    rt_router_t *rt;
    char id[RT_MODEL_ID_MAX];
    char by[RT_AUTH_PRINCIPAL_NAME_SIZE];
    int rc;
    char err[256];
} delete_job_t;

static void delete_work(void *arg)
{
    delete_job_t *j = arg;
    /* first the tasks: a download finishing now must not add the model
     * back after the row is gone */
    if (j->rt->downloads)
        rt_downloads_cancel_model(j->rt->downloads, j->id);
    j->rc = rt_models_remove(j->rt->models, j->id, j->err, sizeof(j->err));
}

static void delete_done(cm_http_req_t *req, void *arg)
{
    delete_job_t *j = arg;
    if (j->rc == 1) {
        cm_http_reply_error(req, 404, "not_found_error", "model_not_found", "model_name",
                            "The model '%s' is not registered", j->id);
        return;
    }
    if (j->rc != 0) {
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "%s", j->err);
        return;
    }
    LOG_INFO("models", "model '%s' deleted by %s", j->id, j->by);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", j->id);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static const rt_offload_ops_t delete_ops = { delete_work, delete_done, free };

void rt_h_models_delete(cm_http_req_t *req, void *ud)
{
    const char *id = cm_http_req_param(req, "model_name");
    if (!id || !rt_model_id_valid(id)) {
        /* no registered model has such a name: nothing to look up */
        cm_http_reply_error(req, 404, "not_found_error", "model_not_found", "model_name",
                            "No registered model has that name");
        return;
    }
    delete_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->rt = ud;
    snprintf(j->id, sizeof(j->id), "%s", id);
    const rt_principal_t *p = rt_auth_principal(req);
    snprintf(j->by, sizeof(j->by), "%s", p ? p->name : "");
    rt_offload(ud, req, &delete_ops, j);
}
