/* api_history: the request history (viewer or admin, routes.c).
 *
 *   GET /api/dashboard/request-responses?page=&per_page=&model=&node_id=
 *       &status=&api_key_id=&from=&to=&q=      newest first, paged, total
 *   GET /api/dashboard/request-responses/:id  one row with its bodies
 *   GET /api/dashboard/request-responses/export?format=csv|jsonl&<filters>
 *
 * page counts from 1; per_page is 50 by default and at most MAX_PER_PAGE;
 * from/to are RFC 3339 times or ms since the epoch; status is success (code
 * < 400), error (>= 400) or a code. A bad value gets 400 naming it.
 *
 * List and detail run their SQL on the offload pool (rt_offload). An export
 * runs on a thread of its own (EXPORT_MAX at once, else 503 busy): the store
 * steps one statement row by row, the thread formats rows into chunks and
 * hands them to the request's loop through a small bounded queue and an
 * event; the loop writes them out. The producer waits while the queue is
 * full or the client's pending output is above EXPORT_HWM (woken when it
 * drains), so memory stays bounded whatever the row count; a client that
 * leaves stops the export. With the history off (LLM_ROUTER_HISTORY=0) the
 * list is empty with "enabled": false, details are 404 and exports empty. */
#include "api/handlers.h"

#include "json.h"
#include "log.h"
#include "router.h"
#include "store/history.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PER_PAGE 50
#define MAX_PER_PAGE 500
#define MAX_PAGE 10000000
#define MAX_FILTER_STR 256
#define MAX_Q 512
/* ms since the epoch accepted in from/to: up to the year 9999 */
#define MAX_EPOCH_MS 253402300799999LL

#define EXPORT_MAX 2
#define EXPORT_CHUNK (32 * 1024)   /* a chunk goes to the loop once it holds this much */
#define EXPORT_QUEUED 4            /* chunks waiting for the loop at most */
#define EXPORT_HWM (256 * 1024)    /* the client's pending output the producer waits below */

/* ---- filters ---- */

typedef struct {
    char *model, *node_id, *api_key_id, *q; /* owned */
    rt_history_filter_t f;
    int64_t page, per_page;
    bool jsonl;
} query_t;

static void query_free(query_t *q)
{
    free(q->model);
    free(q->node_id);
    free(q->api_key_id);
    free(q->q);
}

static bool digits(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (!n || n > maxlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int bad(cm_http_req_t *req, const char *param, const char *what)
{
    cm_http_reply_error(req, 400, "invalid_request_error", "invalid_parameter", param, "%s %s", param, what);
    return -1;
}

static int str_param(cm_http_req_t *req, const char *name, size_t max, char **out)
{
    const char *v = cm_http_req_query(req, name);
    *out = NULL;
    if (!v || !*v)
        return 0;
    if (strlen(v) > max || !cm_utf8_valid(v, strlen(v)))
        return bad(req, name, "is too long or not UTF-8");
    *out = cm_xstrdup(v);
    return 0;
}

static int int_param(cm_http_req_t *req, const char *name, int64_t def, int64_t min, int64_t max, int64_t cap,
                     int64_t *out)
{
    const char *v = cm_http_req_query(req, name);
    *out = def;
    if (!v || !*v)
        return 0;
    if (!digits(v, 12))
        return bad(req, name, "must be a positive integer");
    long long n = strtoll(v, NULL, 10);
    if (n < min || n > max)
        return bad(req, name, "is out of range");
    *out = n > cap ? cap : n;
    return 0;
}

static int time_param(cm_http_req_t *req, const char *name, int64_t *out)
{
    const char *v = cm_http_req_query(req, name);
    *out = 0;
    if (!v || !*v)
        return 0;
    int64_t ms = -1;
    if (digits(v, 15))
        ms = strtoll(v, NULL, 10);
    else
        ms = cm_time_parse_rfc3339(v);
    if (ms < 0 || ms > MAX_EPOCH_MS)
        return bad(req, name, "must be an RFC 3339 time or milliseconds since the epoch");
    /* 0 means "no bound" to the store: the epoch itself bounds nothing anyway */
    *out = ms;
    return 0;
}

static int status_param(cm_http_req_t *req, rt_history_filter_t *f)
{
    const char *v = cm_http_req_query(req, "status");
    if (!v || !*v)
        return 0;
    if (strcmp(v, "success") == 0)
        f->status_class = 1;
    else if (strcmp(v, "error") == 0)
        f->status_class = 2;
    else if (digits(v, 3) && atoi(v) >= 100 && atoi(v) <= 599)
        f->status_code = atoi(v);
    else
        return bad(req, "status", "must be success, error or an HTTP status code");
    return 0;
}

/* Reads the filters (and paging, and the export format when export is set)
 * into q. 0, or -1 after a 400 (q freed). */
static int parse_query(cm_http_req_t *req, query_t *q, bool export)
{
    memset(q, 0, sizeof(*q));
    int rc = 0;
    if (rc == 0)
        rc = int_param(req, "page", 1, 1, MAX_PAGE, MAX_PAGE, &q->page);
    if (rc == 0)
        rc = int_param(req, "per_page", DEFAULT_PER_PAGE, 1, 1000000000000LL, MAX_PER_PAGE, &q->per_page);
    if (rc == 0)
        rc = str_param(req, "model", MAX_FILTER_STR, &q->model);
    if (rc == 0)
        rc = str_param(req, "node_id", MAX_FILTER_STR, &q->node_id);
    if (rc == 0)
        rc = str_param(req, "api_key_id", MAX_FILTER_STR, &q->api_key_id);
    if (rc == 0)
        rc = str_param(req, "q", MAX_Q, &q->q);
    if (rc == 0)
        rc = status_param(req, &q->f);
    if (rc == 0)
        rc = time_param(req, "from", &q->f.from_ms);
    if (rc == 0)
        rc = time_param(req, "to", &q->f.to_ms);
    if (rc == 0 && export) {
        const char *fmt = cm_http_req_query(req, "format");
        if (!fmt || strcmp(fmt, "csv") == 0)
            q->jsonl = false;
        else if (strcmp(fmt, "jsonl") == 0)
            q->jsonl = true;
        else
            rc = bad(req, "format", "must be csv or jsonl");
    }
    if (rc != 0) {
        query_free(q);
        return -1;
    }
    q->f.model = q->model;
    q->f.node_id = q->node_id;
    q->f.api_key_id = q->api_key_id;
    q->f.q = q->q;
    return 0;
}

/* ---- rows as JSON ---- */

static void add_str(cJSON *o, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

static void add_tokens(cJSON *o, const char *key, int64_t v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, key, (double)v);
    else
        cJSON_AddNullToObject(o, key);
}

/* s[0..len) as a JSON string, invalid UTF-8 shown as U+FFFD (the store's
 * strings need not end in a NUL at len). */
static cJSON *text_json(const char *s, size_t len)
{
    size_t cap = len * 3 + 1;
    char *t = cm_xmalloc(cap);
    cm_utf8_sanitize(t, cap, s, len);
    cJSON *j = cJSON_CreateString(t);
    free(t);
    return j;
}

/* A body: its JSON when it is JSON, else its text, null when not recorded. */
static cJSON *body_json(const char *s, size_t len)
{
    if (!s)
        return cJSON_CreateNull();
    cJSON *j = cm_json_parse(s, len);
    return j ? j : text_json(s, len);
}

static cJSON *row_json(const rt_history_row_t *r, bool bodies)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cm_json_add_time(o, "timestamp", r->received_ms);
    cm_json_add_time(o, "first_byte_at", r->first_byte_ms);
    cm_json_add_time(o, "finished_at", r->finished_ms);
    add_str(o, "model", r->model);
    add_str(o, "node_id", r->node_id);
    add_str(o, "node_name", r->node_name);
    add_str(o, "endpoint", r->endpoint);
    cJSON_AddStringToObject(o, "status", r->status >= 400 ? "error" : "success");
    cJSON_AddNumberToObject(o, "status_code", r->status);
    cJSON_AddNumberToObject(o, "duration_ms", (double)r->duration_us / 1000.0);
    if (r->ttft_us >= 0)
        cJSON_AddNumberToObject(o, "ttft_ms", (double)r->ttft_us / 1000.0);
    else
        cJSON_AddNullToObject(o, "ttft_ms");
    cJSON *t = cJSON_AddObjectToObject(o, "tokens");
    add_tokens(t, "prompt", r->prompt_tokens);
    add_tokens(t, "completion", r->completion_tokens);
    add_tokens(t, "total", r->total_tokens);
    cJSON *c = cJSON_AddObjectToObject(o, "client");
    add_str(c, "kind", r->client_kind);
    add_str(c, "id", r->client_id);
    add_str(c, "name", r->client_name);
    add_str(c, "address", r->client_addr);
    cJSON_AddNumberToObject(o, "attempts", r->attempts);
    cJSON_AddBoolToObject(o, "stream", r->stream);
    if (r->error_type || r->error_message) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        add_str(e, "type", r->error_type);
        if (r->error_message)
            cJSON_AddItemToObject(e, "message", text_json(r->error_message, strlen(r->error_message)));
        else
            cJSON_AddNullToObject(e, "message");
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    cJSON_AddNumberToObject(o, "request_body_bytes", (double)r->request_len);
    cJSON_AddBoolToObject(o, "request_truncated", r->request_truncated);
    cJSON_AddNumberToObject(o, "response_body_bytes", (double)r->response_len);
    cJSON_AddBoolToObject(o, "response_truncated", r->response_truncated);
    if (bodies) {
        cJSON_AddItemToObject(o, "request_body", body_json(r->request_body, r->request_len));
        cJSON_AddItemToObject(o, "response_body", body_json(r->response_body, r->response_len));
    }
    return o;
}

/* ---- list and detail (SQL on the offload pool) ---- */

typedef struct {
    rt_history_t *h;
    query_t q;
    char *id;          /* detail */
    cJSON *records;    /* list: built by the callback */
    cJSON *row;        /* detail */
    int64_t total;
    int rc;
    char *out;         /* the reply's text, printed on the pool */
} call_t;

static void list_row(const rt_history_row_t *row, void *arg)
{
    call_t *c = arg;
    cJSON_AddItemToArray(c->records, row_json(row, false));
}

static void list_work(void *arg)
{
    call_t *c = arg;
    c->records = cJSON_CreateArray();
    c->rc = rt_history_list(c->h, &c->q.f, (c->q.page - 1) * c->q.per_page, (int)c->q.per_page, false, list_row, c,
                            &c->total);
    if (c->rc != 0)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "records", c->records);
    c->records = NULL;
    cJSON_AddNumberToObject(o, "total", (double)c->total);
    cJSON_AddNumberToObject(o, "page", (double)c->q.page);
    cJSON_AddNumberToObject(o, "per_page", (double)c->q.per_page);
    cJSON_AddNumberToObject(o, "total_pages", (double)((c->total + c->q.per_page - 1) / c->q.per_page));
    cJSON_AddBoolToObject(o, "enabled", true);
    c->out = cm_json_print(o);
    cJSON_Delete(o);
}

static void reply_text(cm_http_req_t *req, void *arg)
{
    call_t *c = arg;
    if (c->rc == RT_HISTORY_NOTFOUND)
        cm_http_reply_error(req, 404, "not_found_error", "not_found", NULL, "No recorded request with this id");
    else if (c->rc != 0 || !c->out)
        cm_http_reply_error(req, 500, "server_error", "history_error", NULL, "The request history could not be read");
    else
        cm_http_reply(req, 200, "application/json", c->out, strlen(c->out));
}

static void call_free(void *arg)
{
    call_t *c = arg;
    query_free(&c->q);
    free(c->id);
    cJSON_Delete(c->records);
    cJSON_Delete(c->row);
    free(c->out);
    free(c);
}

static const rt_offload_ops_t list_ops = { list_work, reply_text, call_free };

void rt_h_history_list(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    call_t *c = cm_xcalloc(1, sizeof(*c));
    if (parse_query(req, &c->q, false) != 0) {
        free(c);
        return;
    }
    if (!rt->history) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddArrayToObject(o, "records");
        cJSON_AddNumberToObject(o, "total", 0);
        cJSON_AddNumberToObject(o, "page", (double)c->q.page);
        cJSON_AddNumberToObject(o, "per_page", (double)c->q.per_page);
        cJSON_AddNumberToObject(o, "total_pages", 0);
        cJSON_AddBoolToObject(o, "enabled", false);
        cm_http_reply_json(req, 200, o);
        cJSON_Delete(o);
        call_free(c);
        return;
    }
    c->h = rt->history;
    rt_offload(rt, req, &list_ops, c);
}

static void get_row(const rt_history_row_t *row, void *arg)
{
    call_t *c = arg;
    cJSON_Delete(c->row);
    c->row = row_json(row, true);
}

static void get_work(void *arg)
{
    call_t *c = arg;
    c->rc = rt_history_get(c->h, c->id, get_row, c);
    if (c->rc == 0 && c->row)
        c->out = cm_json_print(c->row);
}

static const rt_offload_ops_t get_ops = { get_work, reply_text, call_free };

void rt_h_history_get(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id");
    if (!rt->history || !id || !*id || strlen(id) > 128) {
        cm_http_reply_error(req, 404, "not_found_error", "not_found", NULL, "No recorded request with this id");
        return;
    }
    call_t *c = cm_xcalloc(1, sizeof(*c));
    c->h = rt->history;
    c->id = cm_xstrdup(id);
    rt_offload(rt, req, &get_ops, c);
}

/* ---- export (a thread of its own, chunks to the loop) ---- */

static atomic_int g_exports;

/* The running producers, so that shutdown can stop them before the history
 * closes (rt_history_exports_stop). */
typedef struct export export_t;
static pthread_mutex_t g_live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_live_cv = PTHREAD_COND_INITIALIZER;
static export_t *g_live[8];
static int g_nlive;
static atomic_bool g_stopping;

typedef struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
} chunk_t;

struct export {
    cm_http_req_t *req;   /* the loop's; the thread never touches it */
    struct event *ev;     /* on req's loop: chunks or the end are ready */
    rt_history_t *h;
    query_t q;
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* the producer waits for room */
    chunk_t *qh, *qt;     /* mu: chunks for the loop */
    int nq;
    bool blocked;         /* mu: the client's pending output is above EXPORT_HWM */
    bool gone;            /* mu: the client left */
    bool done, failed;    /* mu: the producer finished */
    atomic_int refs;      /* the loop's and the thread's */
    /* the producer's own */
    char *buf;
    size_t len, cap;
    uint64_t rows;
};

static void export_unref(export_t *ex)
{
    if (atomic_fetch_sub(&ex->refs, 1) != 1)
        return;
    while (ex->qh) {
        chunk_t *n = ex->qh->next;
        free(ex->qh);
        ex->qh = n;
    }
    query_free(&ex->q);
    free(ex->buf);
    pthread_cond_destroy(&ex->cv);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
}

static void put(export_t *ex, const char *s, size_t n)
{
    cm_xgrow(&ex->buf, &ex->cap, ex->len + n + 1, EXPORT_CHUNK * 2);
    memcpy(ex->buf + ex->len, s, n);
    ex->len += n;
}

static void put_s(export_t *ex, const char *s)
{
    put(ex, s, strlen(s));
}

/* One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF,
 * quotes doubled. */
static void csv_field(export_t *ex, const char *s, size_t n, bool last)
{
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        put(ex, s, n);
    } else {
        put(ex, "\"", 1);
        const char *p = s, *end = s + n;
        while (p < end) {
            const char *qt = memchr(p, '"', (size_t)(end - p));
            size_t k = qt ? (size_t)(qt - p) + 1 : (size_t)(end - p);
            put(ex, p, k);
            if (qt)
                put(ex, "\"", 1);
            p += k;
        }
        put(ex, "\"", 1);
    }
    put(ex, last ? "\r\n" : ",", last ? 2 : 1);
}

static void csv_str(export_t *ex, const char *s)
{
    csv_field(ex, s ? s : "", s ? strlen(s) : 0, false);
}

static void csv_int(export_t *ex, int64_t v, bool null_if_negative)
{
    char b[32];
    int n = null_if_negative && v < 0 ? 0 : snprintf(b, sizeof(b), "%lld", (long long)v);
    csv_field(ex, b, (size_t)n, false);
}

static void csv_ms(export_t *ex, int64_t us)
{
    char b[32];
    int n = us < 0 ? 0 : snprintf(b, sizeof(b), "%.3f", (double)us / 1000.0);
    csv_field(ex, b, (size_t)n, false);
}

static const char csv_header[] =
    "id,timestamp,model,node_id,node_name,endpoint,status,status_code,duration_ms,ttft_ms,"
    "prompt_tokens,completion_tokens,total_tokens,client_kind,client_id,client_name,client_address,"
    "attempts,stream,error_type,error_message,request_body,request_truncated,response_body,response_truncated\r\n";

static void csv_row(export_t *ex, const rt_history_row_t *r)
{
    char ts[CM_TIME_RFC3339_SIZE];
    cm_time_rfc3339(r->received_ms, ts);
    csv_str(ex, r->id);
    csv_str(ex, ts);
    csv_str(ex, r->model);
    csv_str(ex, r->node_id);
    csv_str(ex, r->node_name);
    csv_str(ex, r->endpoint);
    csv_str(ex, r->status >= 400 ? "error" : "success");
    csv_int(ex, r->status, false);
    csv_ms(ex, r->duration_us);
    csv_ms(ex, r->ttft_us);
    csv_int(ex, r->prompt_tokens, true);
    csv_int(ex, r->completion_tokens, true);
    csv_int(ex, r->total_tokens, true);
    csv_str(ex, r->client_kind);
    csv_str(ex, r->client_id);
    csv_str(ex, r->client_name);
    csv_str(ex, r->client_addr);
    csv_int(ex, r->attempts, false);
    csv_str(ex, r->stream ? "true" : "false");
    csv_str(ex, r->error_type);
    csv_str(ex, r->error_message);
    csv_field(ex, r->request_body ? r->request_body : "", r->request_body ? r->request_len : 0, false);
    csv_str(ex, r->request_truncated ? "true" : "false");
    csv_field(ex, r->response_body ? r->response_body : "", r->response_body ? r->response_len : 0, false);
    csv_field(ex, r->response_truncated ? "true" : "false", r->response_truncated ? 4 : 5, true);
}

static void jsonl_row(export_t *ex, const rt_history_row_t *r)
{
    cJSON *o = row_json(r, true);
    char *s = cm_json_print(o);
    cJSON_Delete(o);
    put_s(ex, s);
    put(ex, "\n", 1);
    free(s);
}

/* Hands what is buffered to the loop, waiting while EXPORT_QUEUED chunks
 * are waiting or the client is behind. false: the client left. */
static bool hand_over(export_t *ex)
{
    chunk_t *c = NULL;
    if (ex->len) {
        c = cm_xmalloc(sizeof(*c) + ex->len);
        c->next = NULL;
        c->len = ex->len;
        memcpy(c->data, ex->buf, ex->len);
        ex->len = 0;
    }
    pthread_mutex_lock(&ex->mu);
    while (!ex->gone && (ex->nq >= EXPORT_QUEUED || ex->blocked))
        pthread_cond_wait(&ex->cv, &ex->mu);
    bool gone = ex->gone;
    if (!gone && c) {
        if (ex->qt)
            ex->qt->next = c;
        else
            ex->qh = c;
        ex->qt = c;
        ex->nq++;
        c = NULL;
        if (!g_stopping)
            event_active(ex->ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&ex->mu);
    free(c);
    return !gone;
}

static bool export_row(const rt_history_row_t *r, void *arg)
{
    export_t *ex = arg;
    if (ex->q.jsonl)
        jsonl_row(ex, r);
    else
        csv_row(ex, r);
    ex->rows++;
    if (ex->len < EXPORT_CHUNK)
        return true;
    return hand_over(ex);
}

static void *export_main(void *arg)
{
    export_t *ex = arg;
    if (!ex->q.jsonl)
        put_s(ex, csv_header);
    int rc = ex->h ? rt_history_export(ex->h, &ex->q.f, export_row, ex) : 0;
    if (rc == 0)
        hand_over(ex);
    else
        LOG_WARN("history", "export stopped after %llu rows: the history could not be read",
                 (unsigned long long)ex->rows);
    pthread_mutex_lock(&g_live_mu);
    bool stopping = g_stopping;
    for (int i = 0; i < g_nlive; i++)
        if (g_live[i] == ex)
            g_live[i] = g_live[--g_nlive];
    pthread_cond_broadcast(&g_live_cv);
    pthread_mutex_unlock(&g_live_mu);
    if (stopping) /* the loops are gone: nobody to hand the end to */
        return NULL;
    pthread_mutex_lock(&ex->mu);
    ex->done = true;
    ex->failed = rc != 0;
    event_active(ex->ev, EV_READ, 0);
    pthread_mutex_unlock(&ex->mu);
    export_unref(ex);
    return NULL;
}

static void export_drained(cm_http_req_t *req, void *arg)
{
    export_t *ex = arg;
    (void)req;
    pthread_mutex_lock(&ex->mu);
    ex->blocked = false;
    pthread_cond_signal(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
}

static void export_gone(cm_http_req_t *req, void *arg)
{
    export_t *ex = arg;
    (void)req;
    pthread_mutex_lock(&ex->mu);
    ex->gone = true;
    pthread_cond_signal(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
}

/* On req's loop: writes the chunks that are ready; at the end finishes req. */
static void export_ready(evutil_socket_t fd, short what, void *arg)
{
    export_t *ex = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&ex->mu);
    chunk_t *c = ex->qh;
    ex->qh = ex->qt = NULL;
    ex->nq = 0;
    bool done = ex->done, failed = ex->failed, gone = ex->gone;
    pthread_mutex_unlock(&ex->mu);
    while (c) {
        chunk_t *n = c->next;
        if (!gone)
            cm_http_stream_write(ex->req, c->data, c->len);
        free(c);
        c = n;
    }
    if (done) {
        cm_http_stream_on_drain(ex->req, NULL, NULL);
        if (failed && !gone)
            cm_http_stream_abort(ex->req);
        else
            cm_http_stream_end(ex->req); /* after the client left: frees it quietly */
        event_free(ex->ev);
        ex->ev = NULL;
        atomic_fetch_sub(&g_exports, 1);
        export_unref(ex);
        return;
    }
    bool behind = !gone && cm_http_stream_pending(ex->req) > EXPORT_HWM;
    pthread_mutex_lock(&ex->mu);
    ex->blocked = behind;
    pthread_cond_signal(&ex->cv); /* room in the queue again */
    pthread_mutex_unlock(&ex->mu);
}

void rt_h_history_export(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    query_t q;
    if (parse_query(req, &q, true) != 0)
        return;
    if (atomic_fetch_add(&g_exports, 1) >= EXPORT_MAX) {
        atomic_fetch_sub(&g_exports, 1);
        query_free(&q);
        cm_http_add_header(req, "Retry-After", "5");
        cm_http_reply_error(req, 503, "server_error", "busy", NULL, "%d exports are running; retry later", EXPORT_MAX);
        return;
    }
    export_t *ex = cm_xcalloc(1, sizeof(*ex));
    ex->req = req;
    ex->h = rt->history;
    ex->q = q;
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->cv, NULL);
    atomic_init(&ex->refs, 2);
    ex->ev = event_new(cm_http_req_base(req), -1, 0, export_ready, ex);
    pthread_mutex_lock(&g_live_mu);
    if (g_nlive < (int)CM_ARRAY_LEN(g_live) && !g_stopping)
        g_live[g_nlive++] = ex;
    pthread_mutex_unlock(&g_live_mu);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = ex->ev ? pthread_create(&t, &attr, export_main, ex) : -1;
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&g_live_mu);
        for (int i = 0; i < g_nlive; i++)
            if (g_live[i] == ex)
                g_live[i] = g_live[--g_nlive];
        pthread_mutex_unlock(&g_live_mu);
        if (ex->ev)
            event_free(ex->ev);
        atomic_fetch_sub(&g_exports, 1);
        atomic_store(&ex->refs, 1);
        export_unref(ex);
        cm_http_add_header(req, "Retry-After", "5");
        cm_http_reply_error(req, 503, "server_error", "busy", NULL, "The export could not be started; retry later");
        return;
    }
    char ts[CM_TIME_RFC3339_SIZE], disp[96];
    cm_time_rfc3339((int64_t)cm_wall_ms(), ts);
    ts[10] = '\0'; /* the date */
    snprintf(disp, sizeof(disp), "attachment; filename=\"request-history-%s.%s\"", ts, q.jsonl ? "jsonl" : "csv");
    cm_http_add_header(req, "Content-Disposition", disp);
    cm_http_add_header(req, "Cache-Control", "no-store");
    cm_http_req_on_close(req, export_gone, ex);
    cm_http_stream_on_drain(req, export_drained, ex);
    cm_http_stream_start(req, 200, q.jsonl ? "application/x-ndjson" : "text/csv; charset=utf-8");
}

void rt_history_exports_stop(void)
{
    pthread_mutex_lock(&g_live_mu);
    g_stopping = true;
    for (int i = 0; i < g_nlive; i++) {
        export_t *ex = g_live[i];
        pthread_mutex_lock(&ex->mu);
        ex->gone = true;
        pthread_cond_signal(&ex->cv);
        pthread_mutex_unlock(&ex->mu);
    }
    /* each stops at its next row; bounded in case one is stuck on the disk */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (g_nlive > 0 && pthread_cond_timedwait(&g_live_cv, &g_live_mu, &until) == 0)
        ;
    if (g_nlive > 0)
        LOG_WARN("history", "%d exports still running at shutdown", g_nlive);
    pthread_mutex_unlock(&g_live_mu);
}
