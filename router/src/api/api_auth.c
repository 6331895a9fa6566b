/* api_auth: login, logout, me, and the join token for admins. Thin glue over
 * auth.c; the policy of each route is in routes.c. */
#include "auth/auth.h"
#include "api/handlers.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <event2/event.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers shared by api_auth.c, api_users.c and api_keys.c ---- */

void rt_json_add_time(cJSON *obj, const char *key, int64_t ms)
{
    if (ms <= 0) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    cJSON_AddStringToObject(obj, key, buf);
}

cJSON *rt_json_user(const rt_user_rec_t *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", u->id);
    cJSON_AddStringToObject(o, "username", u->username);
    cJSON_AddStringToObject(o, "role", u->role);
    rt_json_add_time(o, "created_at", u->created_at);
    rt_json_add_time(o, "updated_at", u->updated_at);
    return o;
}

cJSON *rt_json_body_object(cm_http_req_t *req)
{
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    cJSON *j = cm_json_parse(body, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_json", NULL,
                            "The body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- handlers ---- */

/* ---- password work off the loop ----
 * Argon2id takes ~0.1 s and 64 MiB: logins and password changes run on a
 * short-lived thread so the worker's loop keeps serving, and at most
 * OFFLOAD_MAX run at once (more get 503) so a flood cannot exhaust memory. */
#define OFFLOAD_MAX 4
static atomic_int g_jobs;    /* until the reply is sent */
static atomic_int g_threads; /* until the thread is done with the loop */

typedef struct {
    cm_http_req_t *req;
    void (*work)(void *arg);
    void (*done)(cm_http_req_t *req, void *arg);
    void *arg;
} offload_t;

static void offload_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    offload_t *o = arg;
    o->done(o->req, o->arg);
    free(o);
    atomic_fetch_sub(&g_jobs, 1);
}

static void *offload_thread(void *arg)
{
    offload_t *o = arg;
    o->work(o->arg);
    static const struct timeval now = { 0, 0 };
    if (event_base_once(cm_http_req_base(o->req), -1, EV_TIMEOUT, offload_done, o, &now) != 0)
        LOG_ERROR("auth", "cannot hand a result back to its loop");
    atomic_fetch_sub(&g_threads, 1);
    return NULL;
}

int rt_offload(cm_http_req_t *req, void (*work)(void *arg), void (*done)(cm_http_req_t *req, void *arg),
               void *arg)
{
    if (atomic_fetch_add(&g_jobs, 1) >= OFFLOAD_MAX) {
        atomic_fetch_sub(&g_jobs, 1);
        cm_http_add_header(req, "Retry-After", "1");
        cm_http_reply_error(req, 503, "server_error", "busy", NULL,
                            "Too many password operations at once; retry");
        return -1;
    }
    offload_t *o = cm_xcalloc(1, sizeof(*o));
    *o = (offload_t){ .req = req, .work = work, .done = done, .arg = arg };
    atomic_fetch_add(&g_threads, 1);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, offload_thread, o) != 0)
        offload_thread(o); /* no thread: do it here rather than fail */
    pthread_attr_destroy(&attr);
    return 0;
}

void rt_offload_drain(void)
{
    for (int i = 0; i < 500 && atomic_load(&g_threads) > 0; i++)
        usleep(10000);
}

/* ---- handlers ---- */

typedef struct {
    rt_router_t *rt;
    char user[RT_AUTH_NAME_MAX + 1];
    char pw[1025];
    char peer[64];
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

static void login_free(login_job_t *j)
{
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
    login_free(j);
}

void rt_h_auth_login(cm_http_req_t *req, void *ud)
{
    const char *user = NULL, *pw = NULL;
    cJSON *j = rt_json_body_object(req);
    if (!j)
        return;
    if (cm_json_str(j, "username", &user) != CM_JSON_OK || cm_json_str(j, "password", &pw) != CM_JSON_OK ||
        strlen(user) > RT_AUTH_NAME_MAX || strlen(pw) > 1024) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", NULL,
                            "username and password (strings) are required");
        goto out;
    }
    login_job_t *job = cm_xcalloc(1, sizeof(*job));
    job->rt = ud;
    snprintf(job->user, sizeof(job->user), "%s", user);
    snprintf(job->pw, sizeof(job->pw), "%s", pw);
    snprintf(job->peer, sizeof(job->peer), "%s", cm_http_req_peer(req));
    if (rt_offload(req, login_work, login_done, job) != 0)
        login_free(job);
out:
    cJSON_Delete(j);
}

void rt_h_auth_logout(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const rt_principal_t *p = rt_auth_principal(req);
    if (p)
        rt_auth_logout(rt->auth, p);
    cm_http_reply(req, 204, NULL, NULL, 0);
}

void rt_h_auth_me(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const rt_principal_t *p = rt_auth_principal(req);
    rt_user_rec_t u;
    int rc = p ? rt_store_user_get(rt->store, p->id, &u) : RT_STORE_NOTFOUND;
    if (rc != RT_STORE_OK) {
        cm_http_reply_error(req, rc == RT_STORE_NOTFOUND ? 401 : 500, cm_http_error_type(401),
                            "unauthorized", NULL, "No such user");
        return;
    }
    cJSON *o = rt_json_user(&u);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
    rt_user_rec_free(&u);
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
