/* api_auth: login, logout, me, and the join token for admins. Thin glue over
 * auth/; the policy of each route is in routes.c. What reads the store or
 * hashes a password runs on the offload pool (rt_offload). */
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

/* ---- helpers shared by api_auth.c and api_users.c ---- */

cJSON *rt_json_user(const rt_user_rec_t *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", u->id);
    cJSON_AddStringToObject(o, "username", u->username);
    cJSON_AddStringToObject(o, "role", u->role);
    cm_json_add_time(o, "created_at", u->created_at);
    cm_json_add_time(o, "updated_at", u->updated_at);
    return o;
}


/* ---- login: Argon2id off the loop ---- */

/* A client address as text (an IPv6 address is at most 45 characters). */
#define PEER_SIZE 64

typedef struct {
    rt_router_t *rt;
    char user[RT_AUTH_NAME_MAX + 1];
    char pw[RT_AUTH_PASSWORD_MAX + 1];
    char peer[PEER_SIZE];
    rt_login_result_t res;
    char *token;
    long long expires_in;
    rt_user_rec_t u;
    int retry;
} login_job_t;

static void login_work(void *arg)
{
    login_job_t *j = arg;
    j->res = rt_auth_login(j->rt->auth, j->peer, j->user, j->pw, &j->token, &j->expires_in, &j->u,
                           &j->retry);
    sodium_memzero(j->pw, sizeof(j->pw));
}

static void login_free(void *arg)
{
    login_job_t *j = arg;
    if (j->token) {
        sodium_memzero(j->token, strlen(j->token));
        free(j->token);
    }
    rt_user_rec_free(&j->u);
    sodium_memzero(j, sizeof(*j));
    free(j);
}

static void login_done(cm_http_req_t *req, void *arg)
{
    login_job_t *j = arg;
    cm_http_add_header(req, "Cache-Control", "no-store");
    switch (j->res) {
    case RT_LOGIN_OK: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "token", j->token);
        cJSON_AddStringToObject(o, "token_type", "Bearer");
        cJSON_AddNumberToObject(o, "expires_in", (double)j->expires_in);
        cJSON_AddItemToObject(o, "user", rt_json_user(&j->u));
        cm_http_reply_json(req, 200, o);
        cJSON_Delete(o);
        LOG_INFO("auth", "user \"%s\" logged in from %s", j->u.username, j->peer);
        break;
    }
    case RT_LOGIN_LIMITED: {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", j->retry);
        cm_http_add_header(req, "Retry-After", ra);
        cm_http_reply_error(req, 429, "rate_limit_error", "too_many_login_attempts", NULL,
                            "Too many failed logins from this address; retry in %d s", j->retry);
        LOG_WARN("auth", "login attempts from %s are rate-limited", j->peer);
        break;
    }
    case RT_LOGIN_BAD:
        cm_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"llm-router\"");
        cm_http_reply_error(req, 401, "authentication_error", "invalid_credentials", NULL,
                            "Invalid username or password");
        break;
    default:
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Login failed");
    }
}

static const rt_offload_ops_t login_ops = { login_work, login_done, login_free };

void rt_h_auth_login(cm_http_req_t *req, void *ud)
{
    const char *user = NULL, *pw = NULL;
    cJSON *j = cm_http_req_json_object(req);
    if (!j)
        return;
    if (cm_json_str(j, "username", &user) != CM_JSON_OK || cm_json_str(j, "password", &pw) != CM_JSON_OK ||
        strlen(user) > RT_AUTH_NAME_MAX || strlen(pw) > RT_AUTH_PASSWORD_MAX) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", NULL,
                            "username and password (strings) are required");
        goto out;
    }
    login_job_t *job = cm_xcalloc(1, sizeof(*job));
    job->rt = ud;
    snprintf(job->user, sizeof(job->user), "%s", user);
    snprintf(job->pw, sizeof(job->pw), "%s", pw);
    snprintf(job->peer, sizeof(job->peer), "%s", cm_http_req_peer(req));
    rt_offload(ud, req, &login_ops, job);
out:
    cJSON_Delete(j);
}

/* The revocation is in memory, and queued to the store's writer: no wait. */
void rt_h_auth_logout(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const rt_principal_t *p = rt_auth_principal(req);
    if (p)
        rt_auth_logout(rt->auth, p);
    cm_http_reply(req, 204, NULL, NULL, 0);
}

/* ---- me: one store read ---- */

typedef struct {
    rt_router_t *rt;
    char id[RT_AUTH_ID_SIZE];
    int rc;
    rt_user_rec_t u;
} me_job_t;

static void me_work(void *arg)
{
    me_job_t *j = arg;
    j->rc = rt_store_user_get(j->rt->store, j->id, &j->u);
}

static void me_done(cm_http_req_t *req, void *arg)
{
    me_job_t *j = arg;
    if (j->rc != RT_STORE_OK) {
        cm_http_reply_error(req, j->rc == RT_STORE_NOTFOUND ? 401 : 500, cm_http_error_type(401),
                            "unauthorized", NULL, "No such user");
        return;
    }
    cJSON *o = rt_json_user(&j->u);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static void me_free(void *arg)
{
    me_job_t *j = arg;
    rt_user_rec_free(&j->u);
    free(j);
}

static const rt_offload_ops_t me_ops = { me_work, me_done, me_free };

void rt_h_auth_me(cm_http_req_t *req, void *ud)
{
    const rt_principal_t *p = rt_auth_principal(req);
    if (!p) { /* the route's policy always sets one */
        cm_http_reply_error(req, 401, cm_http_error_type(401), "unauthorized", NULL, "No such user");
        return;
    }
    me_job_t *job = cm_xcalloc(1, sizeof(*job));
    job->rt = ud;
    snprintf(job->id, sizeof(job->id), "%s", p->id);
    rt_offload(ud, req, &me_ops, job);
}

void rt_h_auth_join_token(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "join_token", rt_auth_join_token(rt->auth));
    cJSON_AddBoolToObject(o, "open_registration", rt_auth_registration_open(rt->auth));
    cJSON_AddStringToObject(o, "header", "X-Join-Token");
    cJSON_AddStringToObject(o, "env", "LLM_ROUTER_JOIN_TOKEN");
    cm_http_add_header(req, "Cache-Control", "no-store");
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}
