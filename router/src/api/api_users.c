/* api_users: GET/POST /api/users, PUT/DELETE /api/users/:id (admin only, see
 * routes.c). Duplicate names are 409; changes that would leave no admin are
 * 400 with code "last_admin". The body is read on the loop; hashing and the
 * store's work run on the offload pool (rt_offload). */
#include "api/handlers.h"
#include "auth/auth.h"
#include "json.h"
#include "log.h"
#include "router.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replies for a store status other than OK. */
static void reply_store_error(cm_http_req_t *req, int rc, const char *err)
{
    switch (rc) {
    case RT_STORE_NOTFOUND:
        cm_http_reply_error(req, 404, "not_found_error", "user_not_found", NULL, "No such user");
        break;
    case RT_STORE_CONFLICT:
        cm_http_reply_error(req, 409, "invalid_request_error", "user_exists", "username", "%s",
                            err && *err ? err : "Username already exists");
        break;
    case RT_STORE_LAST_ADMIN:
        cm_http_reply_error(req, 400, "invalid_request_error", "last_admin", NULL,
                            "The last admin cannot be deleted or demoted");
        break;
    case RT_AUTH_EINVAL:
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", NULL, "%s", err);
        break;
    default:
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
    }
}

/* Reads an optional string field: 0 (absent: *out NULL), or -1 after a 400. */
static int opt_str(cm_http_req_t *req, const cJSON *j, const char *key, const char **out)
{
    *out = NULL;
    int r = cm_json_str(j, key, out);
    if (r == CM_JSON_TYPE) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", key,
                            "%s must be a string", key);
        return -1;
    }
    return 0;
}

/* One users request, prepared on the loop, run on the pool, answered back on
 * the loop. */
typedef struct {
    rt_router_t *rt;
    bool create;
    char *id;                                  /* update, delete: the path's :id */
    char name[RT_AUTH_NAME_MAX + 1], role[16], pw[RT_AUTH_PASSWORD_MAX + 1];
    char by[RT_AUTH_PRINCIPAL_NAME_SIZE];      /* who asked */
    bool has_name, has_role, has_pw;
    int rc;
    char err[160];
    rt_user_rec_t u;                           /* create, update: the user after */
    cJSON *list;                               /* list: the answer */
} user_job_t;

static user_job_t *user_job_alloc(cm_http_req_t *req, rt_router_t *rt)
{
    user_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->rt = rt;
    const char *id = cm_http_req_param(req, "id");
    j->id = cm_xstrdup(id ? id : "");
    const rt_principal_t *p = rt_auth_principal(req);
    snprintf(j->by, sizeof(j->by), "%s", p ? p->name : "");
    return j;
}

static void user_job_free(void *arg)
{
    user_job_t *j = arg;
    rt_user_rec_free(&j->u);
    cJSON_Delete(j->list);
    free(j->id);
    sodium_memzero(j, sizeof(*j));
    free(j);
}

/* ---- GET /api/users ---- */

static void add_user(const rt_user_rec_t *u, void *arg) { cJSON_AddItemToArray(arg, rt_json_user(u)); }

static void list_work(void *arg)
{
    user_job_t *j = arg;
    j->list = cJSON_CreateObject();
    j->rc = rt_store_users_each(j->rt->store, add_user, cJSON_AddArrayToObject(j->list, "users"));
}

static void list_done(cm_http_req_t *req, void *arg)
{
    user_job_t *j = arg;
    if (j->rc != 0)
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
    else
        cm_http_reply_json(req, 200, j->list);
}

static const rt_offload_ops_t list_ops = { list_work, list_done, user_job_free };

void rt_h_users_list(cm_http_req_t *req, void *ud)
{
    rt_offload(ud, req, &list_ops, user_job_alloc(req, ud));
}

/* ---- POST /api/users, PUT /api/users/:id ---- */

static void user_work(void *arg)
{
    user_job_t *j = arg;
    char hash[RT_AUTH_PWHASH_MAX] = "";
    if (j->create) {
        j->rc = rt_auth_user_create(j->rt->store, j->name, j->pw, j->has_role ? j->role : "viewer",
                                    &j->u, j->err, sizeof(j->err));
        if (j->rc == 0)
            rt_auth_user_sync(j->rt->auth, j->u.id);
        goto out;
    }
    j->rc = j->has_pw && rt_auth_password_hash(j->pw, hash) != 0 ? RT_STORE_ERR : 0;
    if (j->rc == 0)
        j->rc = rt_store_user_update(j->rt->store, j->id, j->has_name ? j->name : NULL,
                                     j->has_pw ? hash : NULL, j->has_role ? j->role : NULL);
    if (j->rc == RT_STORE_CONFLICT)
        snprintf(j->err, sizeof(j->err), "Username already exists");
    if (j->rc == 0)
        j->rc = rt_store_user_get(j->rt->store, j->id, &j->u);
    /* live sessions see a new name or role at once */
    rt_auth_user_sync(j->rt->auth, j->id);
out:
    sodium_memzero(hash, sizeof(hash));
    sodium_memzero(j->pw, sizeof(j->pw));
}

static void user_done(cm_http_req_t *req, void *arg)
{
    user_job_t *j = arg;
    if (j->rc != 0) {
        reply_store_error(req, j->rc, j->err);
        return;
    }
    LOG_INFO("auth", "user \"%s\" (%s) %s by %s", j->u.username, j->u.role,
             j->create ? "created" : "updated", j->by);
    cJSON *o = rt_json_user(&j->u);
    cm_http_reply_json(req, j->create ? 201 : 200, o);
    cJSON_Delete(o);
}

static const rt_offload_ops_t user_ops = { user_work, user_done, user_job_free };

/* Parses and validates the body into a job; NULL after replying 400. */
static user_job_t *user_job_new(cm_http_req_t *req, rt_router_t *rt, bool create)
{
    const char *name, *pw, *role;
    char err[160] = "";
    user_job_t *job = NULL;
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return NULL;
    if (opt_str(req, j, "username", &name) || opt_str(req, j, "password", &pw) ||
        opt_str(req, j, "role", &role))
        goto out;
    if ((create && (!name || !pw)) || rt_auth_user_validate(name, pw, role, err, sizeof(err)) != 0) {
        reply_store_error(req, RT_AUTH_EINVAL, err[0] ? err : "username and password are required");
        goto out;
    }
    job = user_job_alloc(req, rt);
    job->create = create;
    job->has_name = name != NULL;
    job->has_pw = pw != NULL;
    job->has_role = role != NULL;
    snprintf(job->name, sizeof(job->name), "%s", name ? name : "");
    snprintf(job->pw, sizeof(job->pw), "%s", pw ? pw : "");
    snprintf(job->role, sizeof(job->role), "%s", role ? role : "");
out:
    cJSON_Delete(j);
    return job;
}

void rt_h_users_create(cm_http_req_t *req, void *ud)
{
    user_job_t *job = user_job_new(req, ud, true);
    if (job)
        rt_offload(ud, req, &user_ops, job);
}

void rt_h_users_update(cm_http_req_t *req, void *ud)
{
    user_job_t *job = user_job_new(req, ud, false);
    if (job)
        rt_offload(ud, req, &user_ops, job);
}

/* ---- DELETE /api/users/:id ---- */

static void delete_work(void *arg)
{
    user_job_t *j = arg;
    j->rc = rt_store_user_delete(j->rt->store, j->id);
    if (j->rc == 0)
        rt_auth_user_sync(j->rt->auth, j->id); /* their sessions end now */
}

static void delete_done(cm_http_req_t *req, void *arg)
{
    user_job_t *j = arg;
    if (j->rc != 0) {
        reply_store_error(req, j->rc, NULL);
        return;
    }
    LOG_INFO("auth", "user %s deleted by %s", j->id, j->by);
    cm_http_reply(req, 204, NULL, NULL, 0);
}

static const rt_offload_ops_t delete_ops = { delete_work, delete_done, user_job_free };

void rt_h_users_delete(cm_http_req_t *req, void *ud)
{
    rt_offload(ud, req, &delete_ops, user_job_alloc(req, ud));
}
