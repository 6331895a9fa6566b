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
    bool ran; /* login_work ended the reservation of rt_auth_login_begin */
} login_job_t;

static void login_work(void *arg)
{
    login_job_t *j = arg;
    j->res = rt_auth_login_finish(j->rt->auth, j->peer, j->user, j->pw, &j->token, &j->expires_in,
                                  &j->u);
    j->ran = true;
    sodium_memzero(j->pw, sizeof(j->pw));
}

static void login_free(void *arg)
{
    login_job_t *j = arg;
    if (!j->ran) /* refused or cancelled before a thread took it: nothing to count */
        rt_auth_login_cancel(j->rt->auth, j->peer, j->user);
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

/* 429 before any thread or hash: too many failures (limited), or another
 * login of this address still in flight (busy). */
static void login_refused(cm_http_req_t *req, rt_login_result_t res, int retry, const char *peer)
{
    char ra[16];
    snprintf(ra, sizeof(ra), "%d", retry);
    cm_http_add_header(req, "Cache-Control", "no-store");
    cm_http_add_header(req, "Retry-After", ra);
    if (res == RT_LOGIN_BUSY) {
        cm_http_reply_error(req, 429, "rate_limit_error", "login_in_progress", NULL,
                            "Another login from this address is in progress; retry in %d s", retry);
        return;
    }
    cm_http_reply_error(req, 429, "rate_limit_error", "too_many_login_attempts", NULL,
                        "Too many failed logins from this address; retry in %d s", retry);
    /* a flood makes one line a second per call site, not one per attempt */
    LOG_WARN("auth", "login attempts from %s are rate-limited", peer);
}

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
    rt_router_t *rt = ud;
    const char *peer = cm_http_req_peer(req);
    int retry = 0;
    bool clean = false;
    /* admitted on the loop, before a queue slot is taken: an address over
     * its limit, or with a login in flight, costs no thread and no slot */
    rt_login_result_t adm = rt_auth_login_begin(rt->auth, peer, user, &retry, &clean);
    if (adm != RT_LOGIN_OK) {
        login_refused(req, adm, retry, peer);
        goto out;
    }
    login_job_t *job = cm_xcalloc(1, sizeof(*job));
    job->rt = rt;
    snprintf(job->user, sizeof(job->user), "%s", user);
    snprintf(job->pw, sizeof(job->pw), "%s", pw);
    snprintf(job->peer, sizeof(job->peer), "%s", peer);
    /* an address without failures goes ahead of those that have some, so
     * guessers rotating addresses do not starve real users */
    if (clean)
        rt_offload_urgent(rt, req, &login_ops, job);
    else
        rt_offload(rt, req, &login_ops, job);
out:
    cJSON_Delete(j);
}

/* ---- logout: the revocation committed before the 204 ---- */

typedef struct {
    rt_router_t *rt;
    rt_principal_t p;
    int rc;
} logout_job_t;

static void logout_work(void *arg)
{
    logout_job_t *j = arg;
    j->rc = rt_auth_logout(j->rt->auth, &j->p);
}

static void logout_done(cm_http_req_t *req, void *arg)
{
    logout_job_t *j = arg;
    if (j->rc != 0) {
        cm_http_reply_error(req, 500, "server_error", NULL, NULL,
                            "Logout could not be saved; the session is ended in this process only");
        return;
    }
    cm_http_reply(req, 204, NULL, NULL, 0);
}

static void logout_free(void *arg)
{
    logout_job_t *j = arg;
    sodium_memzero(j, sizeof(*j));
    free(j);
}

static const rt_offload_ops_t logout_ops = { logout_work, logout_done, logout_free };

/* The 204 means the revocation is committed to the store (a kill -9 right
 * after it does not bring the token back), so the write is synchronous, on
 * the offload pool. Refused (503), nothing was revoked: a retry works. */
void rt_h_auth_logout(cm_http_req_t *req, void *ud)
{
    const rt_principal_t *p = rt_auth_principal(req);
    if (!p) { /* the route's policy always sets one */
        cm_http_reply(req, 204, NULL, NULL, 0);
        return;
    }
    logout_job_t *job = cm_xcalloc(1, sizeof(*job));
    job->rt = ud;
    job->p = *p;
    rt_offload(ud, req, &logout_ops, job);
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
