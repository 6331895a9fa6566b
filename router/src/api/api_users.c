/* api_users: GET/POST /api/users, PUT/DELETE /api/users/:id (admin only, see
 * routes.c). Duplicate names are 409; changes that would leave no admin are
 * 400 with code "last_admin". */
#include "auth/auth.h"
#include "api/handlers.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_user(const rt_user_rec_t *u, void *arg) { cJSON_AddItemToArray(arg, rt_json_user(u)); }

void rt_h_users_list(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "users");
    if (rt_store_users_each(rt->store, add_user, arr) != 0)
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
    else
        cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

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

/* A create or update, prepared on the loop, run where hashing may take its
 * time (rt_offload), answered back on the loop. */
typedef struct {
    rt_router_t *rt;
    bool create;
    char id[64];
    char name[RT_AUTH_NAME_MAX + 1], role[16], pw[1025], by[128];
    bool has_name, has_role, has_pw;
    int rc;
    char err[160];
    rt_user_rec_t u;
} user_job_t;

static void user_job_free(user_job_t *j)
{
    rt_user_rec_free(&j->u);
    sodium_memzero(j, sizeof(*j));
    free(j);
}

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
    } else {
        LOG_INFO("auth", "user \"%s\" (%s) %s by %s", j->u.username, j->u.role,
                 j->create ? "created" : "updated", j->by);
        cJSON *o = rt_json_user(&j->u);
        cm_http_reply_json(req, j->create ? 201 : 200, o);
        cJSON_Delete(o);
    }
    user_job_free(j);
}

/* Parses and validates the body into a job; NULL after replying 400. */
static user_job_t *user_job_new(cm_http_req_t *req, rt_router_t *rt, bool create)
{
    const char *name, *pw, *role;
    char err[160] = "";
    user_job_t *job = NULL;
    cJSON *j = rt_json_body_object(req);
    if (!j)
        return NULL;
    if (opt_str(req, j, "username", &name) || opt_str(req, j, "password", &pw) ||
        opt_str(req, j, "role", &role))
        goto out;
    if ((create && (!name || !pw)) || rt_auth_user_validate(name, pw, role, err, sizeof(err)) != 0) {
        reply_store_error(req, RT_AUTH_EINVAL, err[0] ? err : "username and password are required");
        goto out;
    }
    job = cm_xcalloc(1, sizeof(*job));
    job->rt = rt;
    job->create = create;
    job->has_name = name != NULL;
    job->has_pw = pw != NULL;
    job->has_role = role != NULL;
    snprintf(job->name, sizeof(job->name), "%s", name ? name : "");
    snprintf(job->pw, sizeof(job->pw), "%s", pw ? pw : "");
    snprintf(job->role, sizeof(job->role), "%s", role ? role : "");
    snprintf(job->by, sizeof(job->by), "%s", rt_auth_principal(req)->name);
    if (!create)
        snprintf(job->id, sizeof(job->id), "%s", cm_http_req_param(req, "id"));
out:
    cJSON_Delete(j);
    return job;
}

void rt_h_users_create(cm_http_req_t *req, void *ud)
{
    user_job_t *job = user_job_new(req, ud, true);
    if (job && rt_offload(req, user_work, user_done, job) != 0)
        user_job_free(job);
}

void rt_h_users_update(cm_http_req_t *req, void *ud)
{
    user_job_t *job = user_job_new(req, ud, false);
    if (!job)
        return;
    if (!job->has_pw) { /* nothing to hash: answer at once */
        user_work(job);
        user_done(req, job);
    } else if (rt_offload(req, user_work, user_done, job) != 0) {
        user_job_free(job);
    }
}

void rt_h_users_delete(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id");
    int rc = rt_store_user_delete(rt->store, id);
    if (rc == 0)
        rt_auth_user_sync(rt->auth, id); /* their sessions end now */
    if (rc != 0) {
        reply_store_error(req, rc, NULL);
        return;
    }
    LOG_INFO("auth", "user %s deleted by %s", id, rt_auth_principal(req)->name);
    cm_http_reply(req, 204, NULL, NULL, 0);
}
