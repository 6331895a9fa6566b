/* api: the OpenAI-compatible endpoints. Each handler parses the body into
 * engine jobs (one per prompt) and keeps the request open; the engine's news
 * comes back through nd_api_on_job on the loop thread, which streams chunks
 * or assembles the final reply. */
#include "node.h"

#include "engine.h"
#include "job.h"
#include "json.h"
#include "log.h"
#include "models.h"
#include "stats.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on one request's work: prompts of a completion (one sequence
 * each), messages of a chat, inputs of an embeddings call. */
#define MAX_PROMPTS 64
#define MAX_MESSAGES 4096
#define MAX_INPUTS 2048
/* Random bytes in a reply's id ("chatcmpl-" + their hex). */
#define ID_RANDOM_BYTES 12
/* A stream whose client has this much output queued and unread holds its
 * sequences until the queue drains (back-pressure; see nd_engine_hold). */
#define STREAM_MAX_QUEUED (256 * 1024)
/* The socket's own buffer for a stream: SSE needs little, and the kernel's
 * autotuned buffer would hide megabytes of unread output from the bound. */
#define STREAM_SNDBUF (64 * 1024)

typedef struct {
    nd_node_t *nd;
    cm_http_req_t *req;
    nd_job_kind_t kind;
    bool stream, include_usage, closed, started, base64;
    bool held; /* the client is not reading: the jobs are held */
    bool trailers; /* the client sent TE: trailers: a stream ends with X-LLM-Usage */
    char id[64];
    long long created;
    char *model;
    nd_job_t **jobs;
    int njobs, ndone;
    char **text; /* per job, non-streaming replies */
    size_t *textlen;
    uint64_t t0;
} areq_t;

static void areq_free(areq_t *r)
{
    for (int i = 0; i < r->njobs; i++) {
        r->jobs[i]->owner = NULL;
        nd_job_unref(r->jobs[i]);
        free(r->text[i]);
    }
    free(r->jobs);
    free(r->text);
    free(r->textlen);
    free(r->model);
    free(r);
}

static void hold(areq_t *r, bool on)
{
    r->held = on;
    for (int i = 0; i < r->njobs; i++)
        nd_engine_hold(r->nd->engine, r->jobs[i], on);
}

/* The client read everything queued: generate again. */
static void on_drain(cm_http_req_t *req, void *arg)
{
    areq_t *r = arg;
    (void)req;
    if (r->held)
        hold(r, false);
}

/* Called after writing: holds the jobs when the client stopped reading. */
static void check_backlog(areq_t *r)
{
    if (!r->held && !r->closed && r->started && cm_http_stream_pending(r->req) > STREAM_MAX_QUEUED)
        hold(r, true);
}

/* The client went away, also while a non-streaming reply is pending (the
 * HTTP layer watches every open request): stop generating at once. */
static void on_close(cm_http_req_t *req, void *arg)
{
    areq_t *r = arg;
    (void)req;
    r->closed = true;
    for (int i = 0; i < r->njobs; i++)
        nd_engine_cancel(r->nd->engine, r->jobs[i]);
}

/* ---- parsing ---- */

static bool bad(cm_http_req_t *req, const char *param, const char *code, const char *msg)
{
    cm_http_reply_error(req, 400, "invalid_request_error", code, param, "%s", msg);
    return false;
}

/* Resolves body.model to a file; replies and returns NULL when it cannot. */
static char *model_path(nd_node_t *nd, cm_http_req_t *req, const cJSON *body, const char **id)
{
    if (cm_json_str(body, "model", id) != CM_JSON_OK || !**id) {
        bad(req, "model", "missing_model", "'model' must be a non-empty string");
        return NULL;
    }
    /* the last scan's answer: a file added since is found by the watcher
     * within seconds, and an unknown id costs no disk work on the loop */
    char *path = nd_models_path(nd->models, *id);
    if (!path)
        cm_http_reply_error(req, 404, "invalid_request_error", "model_not_found", "model",
                            "The model '%s' does not exist on this node", *id);
    return path;
}

/* message content: a string, or an array of {type:"text", text} parts */
static char *content_text(const cJSON *c)
{
    if (cJSON_IsString(c))
        return cm_xstrdup(c->valuestring);
    if (cJSON_IsNull(c) || !c)
        return cm_xstrdup("");
    if (!cJSON_IsArray(c))
        return NULL;
    size_t n = 0;
    char *out = cm_xstrdup("");
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const char *type, *text;
        if (!cJSON_IsObject(part) || cm_json_str(part, "type", &type) != CM_JSON_OK ||
            strcmp(type, "text") != 0 || cm_json_str(part, "text", &text) != CM_JSON_OK) {
            free(out);
            return NULL;
        }
        size_t k = strlen(text);
        out = cm_xrealloc(out, n + k + 1);
        memcpy(out + n, text, k + 1);
        n += k;
    }
    return out;
}

static bool parse_messages(cm_http_req_t *req, const cJSON *body, nd_job_t *j)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return bad(req, "messages", "missing_messages", "'messages' must be a non-empty array");
    int n = cJSON_GetArraySize(msgs);
    if (n > MAX_MESSAGES)
        return bad(req, "messages", "too_many_messages", "'messages' has too many entries");
    j->roles = cm_xcalloc((size_t)n, sizeof(char *));
    j->contents = cm_xcalloc((size_t)n, sizeof(char *));
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const char *role;
        if (!cJSON_IsObject(m) || cm_json_str(m, "role", &role) != CM_JSON_OK)
            return bad(req, "messages", "invalid_message", "each message needs a string 'role'");
        if (strcmp(role, "developer") == 0)
            role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool"))
            return bad(req, "messages", "invalid_role", "message roles are system, user, assistant or tool");
        char *text = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
        if (!text)
            return bad(req, "messages", "invalid_content", "'content' must be a string or an array of text parts");
        j->roles[j->nmsg] = cm_xstrdup(role);
        j->contents[j->nmsg++] = text;
    }
    return true;
}

static areq_t *areq_new(nd_node_t *nd, cm_http_req_t *req, nd_job_kind_t kind, const char *model, int njobs)
{
    areq_t *r = cm_xcalloc(1, sizeof(*r));
    r->nd = nd;
    r->req = req;
    r->kind = kind;
    r->model = cm_xstrdup(model);
    r->jobs = cm_xcalloc((size_t)njobs, sizeof(nd_job_t *));
    r->text = cm_xcalloc((size_t)njobs, sizeof(char *));
    r->textlen = cm_xcalloc((size_t)njobs, sizeof(size_t));
    r->created = (long long)(cm_wall_ms() / 1000);
    r->t0 = cm_now_us();
    unsigned char rnd[ID_RANDOM_BYTES];
    randombytes_buf(rnd, sizeof(rnd));
    char hex[ID_RANDOM_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(r->id, sizeof(r->id), "%s-%s", kind == ND_JOB_CHAT ? "chatcmpl" : kind == ND_JOB_COMPLETION ? "cmpl" : "embd", hex);
    return r;
}

static nd_job_t *new_job(nd_node_t *nd, nd_job_kind_t kind, const char *id, const char *path, int index)
{
    nd_job_t *j = nd_job_new(kind, nd->notify);
    j->model_id = cm_xstrdup(id);
    j->model_path = cm_xstrdup(path);
    j->index = index;
    return j;
}

static void submit(areq_t *r)
{
    for (int i = 0; i < r->njobs; i++) {
        r->jobs[i]->owner = r;
        nd_engine_submit(r->nd->engine, r->jobs[i]);
    }
    cm_http_req_on_close(r->req, on_close, r);
}

/* Sampling parameters into j->sp; replies 400 on a bad one. */
static bool parse_sampling(cm_http_req_t *req, const cJSON *body, nd_job_t *j)
{
    char param[64], err[256];
    if (nd_sampling_parse(body, &j->sp, param, sizeof(param), err, sizeof(err)) != 0) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_value", param, "%s", err);
        return false;
    }
    return true;
}

void nd_h_chat(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    const char *id;
    char *path = NULL;
    nd_job_t *j = NULL;
    cJSON *body = cm_http_req_json_object(req);
    if (!body || !(path = model_path(nd, req, body, &id)))
        goto out;
    j = new_job(nd, ND_JOB_CHAT, id, path, 0);
    if (!parse_messages(req, body, j) || !parse_sampling(req, body, j))
        goto out;
    areq_t *r = areq_new(nd, req, ND_JOB_CHAT, id, 1);
    r->stream = j->sp.stream;
    r->include_usage = j->sp.include_usage;
    r->jobs[r->njobs++] = j;
    j = NULL;
    submit(r);
out:
    nd_job_unref(j);
    free(path);
    cJSON_Delete(body);
}

void nd_h_completions(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    const char *id;
    char *path = NULL;
    areq_t *r = NULL;
    cJSON *body = cm_http_req_json_object(req);
    if (!body || !(path = model_path(nd, req, body, &id)))
        goto out;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    int n = cJSON_IsString(p) ? 1 : cJSON_IsArray(p) ? cJSON_GetArraySize(p) : 0;
    if (n == 0 || n > MAX_PROMPTS) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_prompt", "prompt",
                            "'prompt' must be a string or an array of 1 to %d strings", MAX_PROMPTS);
        goto out;
    }
    r = areq_new(nd, req, ND_JOB_COMPLETION, id, n);
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsString(p) ? p : cJSON_GetArrayItem(p, i);
        if (!cJSON_IsString(s)) {
            bad(req, "prompt", "invalid_prompt", "'prompt' arrays must hold strings (token arrays are not supported)");
            goto out;
        }
        nd_job_t *j = new_job(nd, ND_JOB_COMPLETION, id, path, i);
        r->jobs[r->njobs++] = j;
        j->prompt = cm_xstrdup(s->valuestring);
        if (!parse_sampling(req, body, j))
            goto out;
    }
    r->stream = r->jobs[0]->sp.stream;
    r->include_usage = r->jobs[0]->sp.include_usage;
    submit(r);
    r = NULL;
out:
    if (r)
        areq_free(r);
    free(path);
    cJSON_Delete(body);
}

void nd_h_embeddings(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    const char *id, *fmt = "float";
    char *path = NULL;
    nd_job_t *j = NULL;
    cJSON *body = cm_http_req_json_object(req);
    if (!body || !(path = model_path(nd, req, body, &id)))
        goto out;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(body, "input");
    int n = cJSON_IsString(in) ? 1 : cJSON_IsArray(in) ? cJSON_GetArraySize(in) : 0;
    if (n == 0 || n > MAX_INPUTS) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_input", "input",
                            "'input' must be a string or an array of 1 to %d strings", MAX_INPUTS);
        goto out;
    }
    if (cm_json_str(body, "encoding_format", &fmt) == CM_JSON_TYPE ||
        (strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0)) {
        bad(req, "encoding_format", "invalid_value", "'encoding_format' must be float or base64");
        goto out;
    }
    j = new_job(nd, ND_JOB_EMBED, id, path, 0);
    j->inputs = cm_xcalloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsString(in) ? in : cJSON_GetArrayItem(in, i);
        if (!cJSON_IsString(s) || !*s->valuestring) {
            bad(req, "input", "invalid_input", "each input must be a non-empty string (token arrays are not supported)");
            goto out;
        }
        j->inputs[j->ninputs++] = cm_xstrdup(s->valuestring);
    }
    areq_t *r = areq_new(nd, req, ND_JOB_EMBED, id, 1);
    r->base64 = strcmp(fmt, "base64") == 0;
    r->jobs[r->njobs++] = j;
    j = NULL;
    submit(r);
out:
    nd_job_unref(j);
    free(path);
    cJSON_Delete(body);
}

/* ---- replies ---- */

static const char *finish_name(nd_finish_t f)
{
    return f == ND_FINISH_LENGTH ? "length" : "stop";
}

static cJSON *envelope(const areq_t *r, const char *object)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON_AddNullToObject(o, "system_fingerprint");
    return o;
}

static void add_usage(cJSON *o, int prompt, int completion)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", completion);
    cJSON_AddNumberToObject(u, "total_tokens", prompt + completion);
}

static void sse_write(areq_t *r, const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    char *line = cm_xasprintf("data: %s\n\n", s);
    cm_http_stream_write(r->req, line, strlen(line));
    free(line);
    free(s);
}

/* One streamed chunk: text (may be NULL), finish (NULL while running), role
 * on a chat's first chunk. */
static void chunk(areq_t *r, int index, const char *text, const char *finish, bool role)
{
    bool chat = r->kind == ND_JOB_CHAT;
    cJSON *o = envelope(r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), c);
    cJSON_AddNumberToObject(c, "index", index);
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role)
            cJSON_AddStringToObject(d, "role", "assistant");
        if (text)
            cJSON_AddStringToObject(d, "content", text);
    } else {
        cJSON_AddStringToObject(c, "text", text ? text : "");
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (finish)
        cJSON_AddStringToObject(c, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    if (r->include_usage)
        cJSON_AddNullToObject(o, "usage");
    sse_write(r, o);
    cJSON_Delete(o);
}

static void stream_start(areq_t *r)
{
    if (r->started)
        return;
    r->started = true;
    /* The stream's exact token counts go to a client that takes trailers
     * (the router: TE: trailers) as the trailer field X-LLM-Usage, out of
     * band, so that it knows them without include_usage and without one
     * byte of the event stream changing. */
    r->trailers = cm_http_req_te_trailers(r->req);
    if (r->trailers)
        cm_http_add_header(r->req, "Trailer", "X-LLM-Usage");
    cm_http_stream_start(r->req, 200, "text/event-stream");
    cm_http_stream_on_drain(r->req, on_drain, r);
    cm_http_stream_sndbuf(r->req, STREAM_SNDBUF);
    if (r->kind == ND_JOB_CHAT)
        for (int i = 0; i < r->njobs; i++)
            chunk(r, i, "", NULL, true);
}

static void totals(const areq_t *r, int *prompt, int *gen, uint64_t *ttft)
{
    *prompt = *gen = 0;
    *ttft = 0;
    for (int i = 0; i < r->njobs; i++) {
        *prompt += r->jobs[i]->n_prompt;
        *gen += r->jobs[i]->n_gen;
        if (r->jobs[i]->t_first_us && (!*ttft || r->jobs[i]->t_first_us - r->t0 < *ttft))
            *ttft = r->jobs[i]->t_first_us - r->t0;
    }
}

/* Ends a started stream: with the usage trailer when the client takes it. */
static void end_stream(areq_t *r, int prompt, int gen)
{
    if (!r->trailers) {
        cm_http_stream_end(r->req);
        return;
    }
    char usage[160];
    snprintf(usage, sizeof(usage),
             "X-LLM-Usage: {\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}", prompt, gen,
             prompt + gen);
    const char *const fields[] = { usage, NULL };
    cm_http_stream_end_trailers(r->req, fields);
}

static void finish_stream(areq_t *r, int prompt, int gen)
{
    stream_start(r);
    for (int i = 0; i < r->njobs; i++)
        chunk(r, i, NULL, finish_name(r->jobs[i]->finish), false);
    if (r->include_usage) {
        cJSON *o = envelope(r, r->kind == ND_JOB_CHAT ? "chat.completion.chunk" : "text_completion");
        cJSON_AddArrayToObject(o, "choices");
        add_usage(o, prompt, gen);
        sse_write(r, o);
        cJSON_Delete(o);
    }
    static const char done[] = "data: [DONE]\n\n";
    cm_http_stream_write(r->req, done, sizeof(done) - 1);
    end_stream(r, prompt, gen);
}

static void reply_completion(areq_t *r, int prompt, int gen)
{
    bool chat = r->kind == ND_JOB_CHAT;
    cJSON *o = envelope(r, chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < r->njobs; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", i);
        const char *text = r->text[i] ? r->text[i] : "";
        if (chat) {
            cJSON *m = cJSON_AddObjectToObject(c, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", text);
            cJSON_AddNullToObject(m, "refusal");
        } else {
            cJSON_AddStringToObject(c, "text", text);
        }
        cJSON_AddNullToObject(c, "logprobs");
        cJSON_AddStringToObject(c, "finish_reason", finish_name(r->jobs[i]->finish));
    }
    add_usage(o, prompt, gen);
    cm_http_reply_json(r->req, 200, o);
    cJSON_Delete(o);
}

static void reply_embeddings(areq_t *r)
{
    nd_job_t *j = r->jobs[0];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < j->ninputs; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(data, e);
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", i);
        const float *v = j->embd + (size_t)i * (size_t)j->n_embd;
        if (r->base64) {
            /* little-endian float32, as OpenAI sends it */
            size_t bytes = (size_t)j->n_embd * sizeof(float);
            size_t blen = sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_ORIGINAL);
            char *b64 = cm_xmalloc(blen);
            sodium_bin2base64(b64, blen, (const unsigned char *)v, bytes, sodium_base64_VARIANT_ORIGINAL);
            cJSON_AddStringToObject(e, "embedding", b64);
            free(b64);
        } else {
            cJSON *arr = cJSON_AddArrayToObject(e, "embedding");
            for (int k = 0; k < j->n_embd; k++)
                cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[k]));
        }
    }
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "total_tokens", j->n_prompt);
    cm_http_reply_json(r->req, 200, o);
    cJSON_Delete(o);
}

static void reply_error(areq_t *r, const nd_job_t *j, int prompt, int gen)
{
    if (!r->started) {
        cm_http_reply_error(r->req, j->status, NULL, j->errcode[0] ? j->errcode : NULL, NULL, "%s", j->errmsg);
        return;
    }
    /* the stream has begun: the error goes out as its last event */
    cJSON *o = cm_http_error_json(cm_http_error_type(j->status), j->errcode, NULL, j->errmsg);
    sse_write(r, o);
    cJSON_Delete(o);
    end_stream(r, prompt, gen); /* what was computed before it failed */
}

/* Every job is done: answer and free the request. */
static void complete(areq_t *r)
{
    int prompt, gen, status = 200;
    uint64_t ttft;
    totals(r, &prompt, &gen, &ttft);
    const nd_job_t *failed = NULL;
    for (int i = 0; i < r->njobs && !failed; i++)
        if (r->jobs[i]->status && r->jobs[i]->status != ND_STATUS_CLIENT_GONE)
            failed = r->jobs[i];
    if (r->closed) {
        status = ND_STATUS_CLIENT_GONE;
        if (r->started)
            cm_http_stream_end(r->req);
        else
            cm_http_reply(r->req, ND_STATUS_CLIENT_GONE, NULL, NULL, 0);
    } else if (failed) {
        status = failed->status;
        reply_error(r, failed, prompt, gen);
    } else if (r->kind == ND_JOB_EMBED) {
        reply_embeddings(r);
    } else if (r->stream) {
        finish_stream(r, prompt, gen);
    } else {
        reply_completion(r, prompt, gen);
    }
    nd_stats_record(r->nd->stats, r->model, status, cm_now_us() - r->t0, ttft, prompt, gen);
    areq_free(r);
}

static void take_text(areq_t *r, nd_job_t *j)
{
    size_t n;
    char **pieces = nd_job_take(j, &n);
    for (size_t i = 0; i < n; i++) {
        if (r->closed) {
        } else if (r->stream) {
            stream_start(r);
            chunk(r, j->index, pieces[i], NULL, false);
        } else {
            size_t k = strlen(pieces[i]);
            r->text[j->index] = cm_xrealloc(r->text[j->index], r->textlen[j->index] + k + 1);
            memcpy(r->text[j->index] + r->textlen[j->index], pieces[i], k + 1);
            r->textlen[j->index] += k;
        }
        free(pieces[i]);
    }
    free(pieces);
    if (r->stream && n > 0)
        check_backlog(r);
}

void nd_api_on_job(nd_job_t *j, void *ud)
{
    (void)ud;
    areq_t *r = j->owner;
    if (!r)
        return; /* its request is already finished */
    /* done before the text: the engine emits a job's last pieces before it
     * marks it done, so once done is seen every piece is there to take (the
     * other order could miss pieces emitted between the take and the look) */
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    take_text(r, j);
    if (!done || j->owner_saw_done)
        return;
    j->owner_saw_done = true;
    if (j->status && j->status != ND_STATUS_CLIENT_GONE && !r->closed) {
        /* one failed prompt fails the request: stop the others */
        for (int i = 0; i < r->njobs; i++)
            nd_engine_cancel(r->nd->engine, r->jobs[i]);
    }
    if (++r->ndone == r->njobs)
        complete(r);
}

/* ---- models ---- */

static cJSON *model_obj(const char *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", 0);
    cJSON_AddStringToObject(o, "owned_by", "llm-node");
    return o;
}

void nd_h_models(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    cJSON *ids = nd_models_ids_json(nd->models);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
        cJSON_AddItemToArray(data, model_obj(it->valuestring));
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
    cJSON_Delete(ids);
}

void nd_h_model(cm_http_req_t *req, void *ud)
{
    nd_node_t *nd = ud;
    const char *id = cm_http_req_param(req, "id");
    char *path = nd_models_path(nd->models, id);
    if (!path) {
        cm_http_reply_error(req, 404, "invalid_request_error", "model_not_found", "model",
                            "The model '%s' does not exist on this node", id);
        return;
    }
    free(path);
    cJSON *o = model_obj(id);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}
