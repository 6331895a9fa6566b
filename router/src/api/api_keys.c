/* api_keys: GET/POST /api/api-keys, PUT/DELETE /api/api-keys/:id (admin only,
 * see routes.c). The key itself is returned once, by POST; lists show its
 * prefix only. expires_at is an RFC 3339 time ("2030-01-01T00:00:00Z"), a
 * number of seconds since the epoch, or null (never). The body is read on
 * the loop; the store's work runs on the offload pool (rt_offload). */
#include "api/handlers.h"
#include "auth/auth.h"
#include "json.h"
#include "log.h"
#include "router.h"
#include "util.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Epoch seconds accepted for expires_at: below this (about year 5138). */
#define EXPIRY_SECONDS_MAX 1e11

static cJSON *key_json(const rt_apikey_rec_t *k)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddStringToObject(o, "key_prefix", k->key_prefix);
    if (k->created_by)
        cJSON_AddStringToObject(o, "created_by", k->created_by);
    else
        cJSON_AddNullToObject(o, "created_by");
    cm_json_add_time(o, "created_at", k->created_at);
    cm_json_add_time(o, "expires_at", k->expires_at);
    cm_json_add_time(o, "last_used_at", k->last_used_at);
    cJSON_AddBoolToObject(o, "expired", k->expires_at > 0 && k->expires_at <= (int64_t)cm_wall_ms());
    return o;
}

/* Reads "expires_at": *set false when absent; *ms 0 for null. -1 after a 400. */
static int read_expiry(cm_http_req_t *req, const cJSON *j, bool *set, int64_t *ms)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "expires_at");
    *set = e != NULL;
    *ms = 0;
    if (!e || cJSON_IsNull(e))
        return 0;
    if (cJSON_IsString(e))
        *ms = cm_time_parse_rfc3339(e->valuestring);
    else if (cJSON_IsNumber(e) && isfinite(e->valuedouble) && e->valuedouble > 0 &&
             e->valuedouble < EXPIRY_SECONDS_MAX)
        *ms = (int64_t)(e->valuedouble * 1000);
    else
        *ms = -1;
    if (*ms <= 0) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "expires_at",
                            "expires_at must be an RFC 3339 time, epoch seconds, or null");
        return -1;
    }
    return 0;
}

static int read_name(cm_http_req_t *req, const cJSON *j, bool required, const char **name)
{
    *name = NULL;
    int r = cm_json_str(j, "name", name);
    if ((r == CM_JSON_ABSENT && !required) ||
        (r == CM_JSON_OK && **name && strlen(*name) <= RT_AUTH_KEY_NAME_MAX))
        return 0;
    cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "name",
                        "name must be a string of 1 to %d characters", RT_AUTH_KEY_NAME_MAX);
    return -1;
}

/* One API-key request, carried from the loop to the pool and back. */
typedef struct {
    rt_router_t *rt;
    char *id;                                 /* update, delete: the path's :id */
    char name[RT_AUTH_KEY_NAME_MAX + 1];      /* create, update (has_name) */
    bool has_name;
    bool set_expiry;                          /* update: expires_at was given */
    int64_t expires_at;
    char by[RT_AUTH_PRINCIPAL_NAME_SIZE];     /* who asked */
    int rc;
    cJSON *list;                              /* list: the answer */
    rt_apikey_rec_t k;                        /* create, update: the key after */
    char key[RT_AUTH_KEY_MAX];                /* create: the secret, shown once */
} key_job_t;

static key_job_t *key_job_new(cm_http_req_t *req, rt_router_t *rt)
{
    key_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->rt = rt;
    const char *id = cm_http_req_param(req, "id");
    j->id = cm_xstrdup(id ? id : "");
    const rt_principal_t *p = rt_auth_principal(req);
    snprintf(j->by, sizeof(j->by), "%s", p ? p->name : "");
    return j;
}

static void key_job_free(void *arg)
{
    key_job_t *j = arg;
    cJSON_Delete(j->list);
    free(j->id);
    rt_apikey_rec_free(&j->k);
    sodium_memzero(j->key, sizeof(j->key));
    free(j);
}

static void reply_not_found_or_error(cm_http_req_t *req, int rc)
{
    if (rc == RT_STORE_NOTFOUND)
        cm_http_reply_error(req, 404, "not_found_error", "api_key_not_found", NULL, "No such API key");
    else
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
}

/* ---- GET /api/api-keys ---- */

static void add_key(const rt_apikey_rec_t *k, void *arg) { cJSON_AddItemToArray(arg, key_json(k)); }

static void list_work(void *arg)
{
    key_job_t *j = arg;
    j->list = cJSON_CreateObject();
    j->rc = rt_store_apikeys_each(j->rt->store, add_key, cJSON_AddArrayToObject(j->list, "api_keys"));
}

static void list_done(cm_http_req_t *req, void *arg)
{
    key_job_t *j = arg;
    if (j->rc != 0)
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
    else
        cm_http_reply_json(req, 200, j->list);
}

static const rt_offload_ops_t list_ops = { list_work, list_done, key_job_free };

void rt_h_keys_list(cm_http_req_t *req, void *ud)
{
    rt_offload(ud, req, &list_ops, key_job_new(req, ud));
}

/* ---- POST /api/api-keys ---- */

static void create_work(void *arg)
{
    key_job_t *j = arg;
    j->rc = rt_auth_apikey_create(j->rt->store, j->name, j->expires_at, j->by, j->key, &j->k);
    if (j->rc == 0)
        rt_auth_apikey_sync(j->rt->auth, j->k.id); /* usable at once */
}

static void create_done(cm_http_req_t *req, void *arg)
{
    key_job_t *j = arg;
    if (j->rc != 0) {
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
        return;
    }
    LOG_INFO("auth", "API key \"%s\" (%s) created by %s", j->k.name, j->k.key_prefix, j->k.created_by);
    cJSON *o = key_json(&j->k);
    cJSON_AddStringToObject(o, "key", j->key); /* the only time it is shown */
    cm_http_add_header(req, "Cache-Control", "no-store");
    cm_http_reply_json(req, 201, o);
    cJSON_Delete(o);
}

static const rt_offload_ops_t create_ops = { create_work, create_done, key_job_free };

void rt_h_keys_create(cm_http_req_t *req, void *ud)
{
    const char *name;
    bool set;
    int64_t exp;
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return;
    if (read_name(req, j, true, &name) == 0 && read_expiry(req, j, &set, &exp) == 0) {
        key_job_t *job = key_job_new(req, ud);
        snprintf(job->name, sizeof(job->name), "%s", name);
        job->expires_at = exp;
        rt_offload(ud, req, &create_ops, job);
    }
    cJSON_Delete(j);
}

/* ---- PUT /api/api-keys/:id ---- */

static void update_work(void *arg)
{
    key_job_t *j = arg;
    j->rc = rt_store_apikey_update(j->rt->store, j->id, j->has_name ? j->name : NULL, j->set_expiry,
                                   j->expires_at);
    if (j->rc == 0)
        j->rc = rt_store_apikey_get(j->rt->store, j->id, &j->k);
    rt_auth_apikey_sync(j->rt->auth, j->id);
}

static void update_done(cm_http_req_t *req, void *arg)
{
    key_job_t *j = arg;
    if (j->rc != 0) {
        reply_not_found_or_error(req, j->rc);
        return;
    }
    cJSON *o = key_json(&j->k);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static const rt_offload_ops_t update_ops = { update_work, update_done, key_job_free };

void rt_h_keys_update(cm_http_req_t *req, void *ud)
{
    const char *name;
    bool set;
    int64_t exp;
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return;
    if (read_name(req, j, false, &name) == 0 && read_expiry(req, j, &set, &exp) == 0) {
        key_job_t *job = key_job_new(req, ud);
        job->has_name = name != NULL;
        snprintf(job->name, sizeof(job->name), "%s", name ? name : "");
        job->set_expiry = set;
        job->expires_at = exp;
        rt_offload(ud, req, &update_ops, job);
    }
    cJSON_Delete(j);
}

/* ---- DELETE /api/api-keys/:id ---- */

static void delete_work(void *arg)
{
    key_job_t *j = arg;
    j->rc = rt_store_apikey_delete(j->rt->store, j->id);
    rt_auth_apikey_sync(j->rt->auth, j->id); /* refused from now on */
}

static void delete_done(cm_http_req_t *req, void *arg)
{
    key_job_t *j = arg;
    if (j->rc != 0) {
        reply_not_found_or_error(req, j->rc);
        return;
    }
    LOG_INFO("auth", "API key %s deleted by %s", j->id, j->by);
    cm_http_reply(req, 204, NULL, NULL, 0);
}

static const rt_offload_ops_t delete_ops = { delete_work, delete_done, key_job_free };

void rt_h_keys_delete(cm_http_req_t *req, void *ud)
{
    rt_offload(ud, req, &delete_ops, key_job_new(req, ud));
}
