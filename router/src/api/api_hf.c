/* api_hf: Hugging Face search and registration, the download and
 * conversion tasks (routes.c; the work is models/downloads.c). Bodies are
 * parsed on the loop; whatever talks to the Hub or waits for a task thread
 * runs on the offload pool (rt_offload). Task reads copy the in-memory list
 * (no I/O) and answer on the loop.
 *
 *   GET    /api/models/available?source=hf&search=&limit=  -> {"source","models":[...]}
 *   POST   /api/models/register {repo, filename?, revision?} -> 202 task (200: same task)
 *   GET    /api/models/tasks[?kind=download|convert]       -> {"tasks":[...]}
 *   GET    /api/models/tasks/:task_id                      -> task
 *   DELETE /api/models/tasks/:task_id   -> 200 task (cancelled), 204 (finished: record deleted)
 *   POST   /api/models/convert {repo, revision?, outtype?, name?} -> 202 task
 *   GET    /api/models/convert, GET/DELETE /api/models/convert/:task_id: the same, convert tasks */
#include "api/handlers.h"
#include "json.h"
#include "models/downloads.h"
#include "router.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEARCH_MAX 200
#define LIMIT_DEFAULT 20
#define LIMIT_MAX 100

typedef struct {
    rt_router_t *rt;
    int op;                 /* OP_* */
    char *a, *b, *c, *d;    /* repo, filename / outtype, revision, name; id; search */
    const char *kind;
    int limit;
    int rc, status;
    rt_hf_err_t e;
    cJSON *out;
} hf_job_t;

enum { OP_SEARCH, OP_REGISTER, OP_CONVERT, OP_CANCEL };

static void job_free(void *arg)
{
    hf_job_t *j = arg;
    free(j->a), free(j->b), free(j->c), free(j->d);
    cJSON_Delete(j->out);
    free(j);
}

static const char *err_code(int status)
{
    switch (status) {
    case 404: return "not_found";
    case 403: return "gated_repository";
    case 409: return "model_exists";
    case 429: return "rate_limited";
    case 507: return "insufficient_storage";
    case 502: return "hub_error";
    case 504: return "hub_timeout";
    default: return "invalid_request";
    }
}

static void reply_hf_error(cm_http_req_t *req, const rt_hf_err_t *e)
{
    int st = e->status ? e->status : 502;
    if (st == 429) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", e->retry_after > 0 ? e->retry_after : 60);
        cm_http_add_header(req, "Retry-After", ra);
    }
    cm_http_reply_error(req, st, cm_http_error_type(st), err_code(st), NULL, "%s",
                        e->msg[0] ? e->msg : "the Hugging Face Hub failed");
}

static void work(void *arg)
{
    hf_job_t *j = arg;
    rt_downloads_t *d = j->rt->downloads;
    switch (j->op) {
    case OP_SEARCH:
        j->rc = rt_downloads_search(d, j->d, j->limit, &j->out, &j->e);
        break;
    case OP_REGISTER:
        j->rc = rt_downloads_register(d, j->a, j->b, j->c, &j->out, &j->status, &j->e);
        break;
    case OP_CONVERT:
        j->rc = rt_downloads_convert(d, j->a, j->c, j->b, j->d, &j->out, &j->e);
        j->status = 202;
        break;
    case OP_CANCEL:
        j->rc = rt_downloads_cancel(d, j->a, j->kind, &j->out);
        break;
    }
}

static void done(cm_http_req_t *req, void *arg)
{
    hf_job_t *j = arg;
    if (j->op == OP_CANCEL) {
        if (j->rc < 0)
            cm_http_reply_error(req, 404, "not_found_error", "task_not_found", NULL, "No such task");
        else if (j->rc == 1)
            cm_http_reply(req, 204, NULL, NULL, 0);
        else
            cm_http_reply_json(req, 200, j->out);
        return;
    }
    if (j->rc != 0) {
        reply_hf_error(req, &j->e);
        return;
    }
    if (j->op == OP_SEARCH) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "source", "hf");
        cJSON_AddItemToObject(o, "models", j->out);
        j->out = NULL;
        cm_http_reply_json(req, 200, o);
        cJSON_Delete(o);
        return;
    }
    cm_http_reply_json(req, j->status ? j->status : 202, j->out);
}

static const rt_offload_ops_t ops = { work, done, job_free };

static hf_job_t *job_new(void *ud, int op)
{
    hf_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->rt = ud;
    j->op = op;
    return j;
}

/* Reads an optional string member: 0 (absent: *out NULL), -1 after a 400. */
static int opt_str(cm_http_req_t *req, const cJSON *body, const char *key, size_t max, char **out)
{
    const char *s = NULL;
    int r = cm_json_str(body, key, &s);
    *out = NULL;
    if (r == CM_JSON_ABSENT)
        return 0;
    if (r != CM_JSON_OK || !*s || strlen(s) > max) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", key,
                            "%s must be a string of 1 to %zu characters", key, max);
        return -1;
    }
    *out = cm_xstrdup(s);
    return 0;
}

static bool downloads_ready(cm_http_req_t *req, rt_router_t *rt)
{
    if (rt->downloads)
        return true;
    cm_http_reply_error(req, 503, "server_error", "unavailable", NULL, "Model tasks are not running");
    return false;
}

void rt_h_models_available(cm_http_req_t *req, void *ud)
{
    if (!downloads_ready(req, ud))
        return;
    const char *source = cm_http_req_query(req, "source");
    const char *search = cm_http_req_query(req, "search");
    const char *limit = cm_http_req_query(req, "limit");
    if (source && strcmp(source, "hf") != 0) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "source",
                            "source must be \"hf\" (Hugging Face)");
        return;
    }
    if (search && strlen(search) > SEARCH_MAX) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "search",
                            "search must be at most %d characters", SEARCH_MAX);
        return;
    }
    long n = LIMIT_DEFAULT;
    if (limit) {
        char *end;
        n = strtol(limit, &end, 10);
        if (*end || end == limit || n < 1 || n > LIMIT_MAX) {
            cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "limit",
                                "limit must be a number from 1 to %d", LIMIT_MAX);
            return;
        }
    }
    hf_job_t *j = job_new(ud, OP_SEARCH);
    j->d = cm_xstrdup(search ? search : "");
    j->limit = (int)n;
    rt_offload(ud, req, &ops, j);
}

void rt_h_models_register(cm_http_req_t *req, void *ud)
{
    if (!downloads_ready(req, ud))
        return;
    cJSON *body = cm_http_req_json_object(req);
    if (!body)
        return;
    hf_job_t *j = job_new(ud, OP_REGISTER);
    const char *repo = NULL;
    if (cm_json_str(body, "repo", &repo) != CM_JSON_OK || !*repo || strlen(repo) > 200) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "repo",
                            "repo (a Hugging Face repository id, e.g. \"TheBloke/Llama-2-7B-GGUF\") is required");
        goto out;
    }
    j->a = cm_xstrdup(repo);
    if (opt_str(req, body, "filename", 1024, &j->b) != 0 || opt_str(req, body, "revision", 128, &j->c) != 0)
        goto out;
    rt_offload(ud, req, &ops, j);
    j = NULL;
out:
    if (j)
        job_free(j);
    cJSON_Delete(body);
}

static void list(cm_http_req_t *req, void *ud, const char *kind)
{
    rt_router_t *rt = ud;
    if (!downloads_ready(req, rt))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "tasks", rt_downloads_tasks_json(rt->downloads, kind));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

static void get_one(cm_http_req_t *req, void *ud, const char *kind)
{
    rt_router_t *rt = ud;
    if (!downloads_ready(req, rt))
        return;
    const char *id = cm_http_req_param(req, "task_id");
    cJSON *t = id ? rt_downloads_task_json(rt->downloads, id, kind) : NULL;
    if (!t) {
        cm_http_reply_error(req, 404, "not_found_error", "task_not_found", NULL, "No such task");
        return;
    }
    cm_http_reply_json(req, 200, t);
    cJSON_Delete(t);
}

static void cancel(cm_http_req_t *req, void *ud, const char *kind)
{
    if (!downloads_ready(req, ud))
        return;
    const char *id = cm_http_req_param(req, "task_id");
    hf_job_t *j = job_new(ud, OP_CANCEL);
    j->a = cm_xstrdup(id ? id : "");
    j->kind = kind;
    rt_offload(ud, req, &ops, j);
}

void rt_h_models_tasks(cm_http_req_t *req, void *ud)
{
    const char *kind = cm_http_req_query(req, "kind");
    if (kind && strcmp(kind, "download") != 0 && strcmp(kind, "convert") != 0) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "kind",
                            "kind must be \"download\" or \"convert\"");
        return;
    }
    list(req, ud, kind ? (kind[0] == 'd' ? "download" : "convert") : NULL);
}

void rt_h_models_task_get(cm_http_req_t *req, void *ud) { get_one(req, ud, NULL); }
void rt_h_models_task_cancel(cm_http_req_t *req, void *ud) { cancel(req, ud, NULL); }
void rt_h_models_convert_list(cm_http_req_t *req, void *ud) { list(req, ud, "convert"); }
void rt_h_models_convert_get(cm_http_req_t *req, void *ud) { get_one(req, ud, "convert"); }
void rt_h_models_convert_delete(cm_http_req_t *req, void *ud) { cancel(req, ud, "convert"); }

void rt_h_models_convert(cm_http_req_t *req, void *ud)
{
    if (!downloads_ready(req, ud))
        return;
    cJSON *body = cm_http_req_json_object(req);
    if (!body)
        return;
    hf_job_t *j = job_new(ud, OP_CONVERT);
    const char *repo = NULL;
    if (cm_json_str(body, "repo", &repo) != CM_JSON_OK || !*repo || strlen(repo) > 200) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "repo",
                            "repo (a Hugging Face repository id) is required");
        goto out;
    }
    j->a = cm_xstrdup(repo);
    if (opt_str(req, body, "revision", 128, &j->c) != 0 || opt_str(req, body, "outtype", 16, &j->b) != 0 ||
        opt_str(req, body, "name", 128, &j->d) != 0)
        goto out;
    rt_offload(ud, req, &ops, j);
    j = NULL;
out:
    if (j)
        job_free(j);
    cJSON_Delete(body);
}
