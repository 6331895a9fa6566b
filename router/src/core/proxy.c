#include "core/proxy.h"

#include "http_client.h"
#include "log.h"
#include "sse.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#define MAX_EXCL 17                 /* 1 + the most retries the config allows */
#define HOLD_MAX (8u << 20)         /* a non-streaming answer held whole up to this */
#define HIGH_WATER (256u << 10)     /* client output queued before the upstream pauses */

typedef struct px px_t;

/* One worker loop's part of the proxy. Only that loop's thread touches hc and
 * live; other threads (the health sweep's) only append to gone under mu and
 * wake the loop through offline_ev, which then acts on its own requests. */
typedef struct {
    cm_hc_t *hc;                  /* the loop's HTTP client to the nodes */
    LIST_HEAD(, px) live;         /* the loop's proxied requests, intrusive */
    pthread_mutex_t mu;           /* guards offline_ev (NULL when stopped) and gone */
    struct event *offline_ev;
    char (*gone)[RT_NODE_ID_MAX]; /* nodes gone offline, not yet acted on */
    size_t ngone, capgone;
} px_worker_t;

struct rt_proxy {
    rt_proxy_opts_t o;
    rt_registry_t *reg;
    rt_admission_t *adm;
    px_worker_t *w; /* one per worker loop, o.workers of them */
    rt_proxy_observer_t obs;
};

/* Held: a non-streaming answer is kept whole (so a node failing halfway is
 * still retried invisibly); streaming: relayed chunk by chunk. */
typedef enum { RELAY_HOLD, RELAY_STREAM } relay_mode_t;

struct px {
    rt_proxy_t *p;
    cm_http_req_t *req;
    LIST_ENTRY(px) link;       /* p->w[worker].live, from forward to px_free */
    int worker;
    const char *body;
    size_t body_len;
    char path[32];
    char *model;
    void *cookie;              /* observer's */
    rt_lease_t lease;
    bool has_lease;
    rt_pick_t pick;
    rt_waiter_t *waiter;
    cm_hc_req_t *up;
    char excl[MAX_EXCL][RT_NODE_ID_MAX];
    const char *exclp[MAX_EXCL];
    size_t nexcl;
    int attempts;
    int status;
    char ctype[128];
    relay_mode_t mode;
    bool sse, sent, closed, in_cb;
    bool rejected;             /* the head was refused (5xx to retry, 401/403, an unknown type) */
    bool node_gone;            /* marked by on_offline: its node went offline */
    char tail[2];
    char *buf;
    size_t blen, bcap;
    int last_result;
    char last_err[160];        /* the detail: logged and observed, never sent to the client */
    const char *err_type;      /* the error code the client saw (rt_proxy_result_t) */
    /* times (cm_now_us) for the observer */
    uint64_t t_start, t_first, t_queued, t_sent, queue_us, upstream_us;
    char usage[160];           /* the node's X-LLM-Usage trailer, "" when none */
};

static void admit(px_t *px);

/* dst = a + b, cut to fit (as snprintf "%s%s" would, without its cost on
 * every request). */
static void join2(char *dst, size_t cap, const char *a, const char *b)
{
    size_t na = strnlen(a, cap - 1);
    size_t nb = strnlen(b, cap - 1 - na);
    memcpy(dst, a, na);
    memcpy(dst + na, b, nb);
    dst[na + nb] = '\0';
}

/* ---- endings: each path releases the slot exactly once and frees px ---- */

static void px_free(px_t *px, rt_outcome_t outcome, const char *error)
{
    rt_proxy_t *p = px->p;
    if (p->obs.end && px->cookie) {
        rt_proxy_result_t res = {
            .node_id = px->attempts ? px->lease.node_id : NULL,
            .node_name = px->attempts ? px->lease.node_name : NULL,
            .attempts = px->attempts,
            .status = px->status,
            .error_type = px->closed ? "client_closed" : px->err_type,
            .error = error,
            .sse = px->sse,
            .client_closed = px->closed,
            .start_us = px->t_start,
            .first_byte_us = px->t_first,
            .end_us = cm_now_us(),
            .queue_us = px->queue_us,
            .upstream_us = px->upstream_us,
            .usage_trailer = px->usage[0] ? px->usage : NULL,
        };
        p->obs.end(p->obs.ud, px->cookie, &res);
    }
    LIST_REMOVE(px, link);
    if (px->has_lease)
        rt_registry_release(px->p->reg, &px->lease, outcome);
    free(px->model);
    free(px->buf);
    free(px);
}

static void reply_error(px_t *px, int status, const char *code, const char *retry_after, const char *msg)
{
    px->status = status;
    px->err_type = code;
    if (!px->t_first)
        px->t_first = cm_now_us();
    if (retry_after)
        cm_http_add_header(px->req, "Retry-After", retry_after);
    cm_http_reply_error(px->req, status, NULL, code, NULL, "%s", msg);
}

static void client_gone(cm_http_req_t *req, void *arg)
{
    px_t *px = arg;
    (void)req;
    px->closed = true;
    if (px->in_cb)
        return; /* the running callback aborts the transfer; on_done ends it */
    if (px->waiter && rt_admission_cancel(px->p->adm, px->waiter))
        px->has_lease = true; /* a slot was granted meanwhile: give it back */
    px->waiter = NULL;
    if (px->up)
        cm_hc_cancel(px->up);
    px->up = NULL;
    cm_http_stream_end(px->req); /* finishes quietly after a close */
    px_free(px, RT_OUTCOME_NONE, "client closed the connection");
}

/* ---- relaying ---- */

static void on_drain(cm_http_req_t *req, void *arg)
{
    px_t *px = arg;
    (void)req;
    if (px->up && cm_hc_paused(px->up))
        cm_hc_resume(px->up);
}

static void write_client(px_t *px, const char *data, size_t len)
{
    if (len == 0)
        return;
    cm_http_stream_write(px->req, data, len);
    if (!px->sent)
        px->t_first = cm_now_us();
    px->sent = true;
    if (len >= 2) {
        px->tail[0] = data[len - 2];
        px->tail[1] = data[len - 1];
    } else {
        px->tail[0] = px->tail[1];
        px->tail[1] = data[0];
    }
    if (px->up && cm_http_stream_pending(px->req) > HIGH_WATER)
        cm_hc_pause(px->up); /* resumed by on_drain */
}

static void start_stream(px_t *px)
{
    px->mode = RELAY_STREAM;
    cm_http_stream_on_drain(px->req, on_drain, px);
    cm_http_stream_start(px->req, px->status, px->ctype[0] ? px->ctype : "application/json");
}

static bool can_retry(const px_t *px)
{
    return !px->sent && !px->closed && px->attempts <= px->p->o.retries;
}

/* ct is the media type t (n bytes), with or without parameters */
static bool type_is(const char *ct, const char *t, size_t n)
{
    return strncasecmp(ct, t, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int on_headers(cm_hc_req_t *r, int status, const cm_hc_header_t *h, size_t nh, void *ud)
{
    px_t *px = ud;
    (void)r;
    px->status = status;
    px->ctype[0] = '\0';
    for (size_t i = 0; i < nh; i++)
        if (strcasecmp(h[i].name, "Content-Type") == 0)
            join2(px->ctype, sizeof(px->ctype), h[i].value, "");
    /* What a node may say to a client: the OpenAI API's two media types (none:
     * application/json, as it always was), and no 401/403 (the client's key
     * is the router's business: a node could otherwise tell clients it was
     * revoked). Anything else is the node failing: retried, else 502. */
    px->sse = type_is(px->ctype, CM_SSE_CONTENT_TYPE, sizeof(CM_SSE_CONTENT_TYPE) - 1);
    bool foreign = status == 401 || status == 403 ||
                   (px->ctype[0] && !px->sse && !type_is(px->ctype, "application/json", 16));
    if (foreign || (status >= 500 && can_retry(px))) {
        px->rejected = true;
        return CM_HC_ABORT;
    }
    /* A stream's head goes to the client with its first chunk, not now: a node
     * that fails between its head and its first event is still retried
     * invisibly, and the client never gets a second head. */
    px->blen = 0;
    return CM_HC_CONTINUE;
}

static int on_data(cm_hc_req_t *r, const char *data, size_t len, void *ud)
{
    px_t *px = ud;
    rt_proxy_t *p = px->p;
    (void)r;
    if (px->closed)
        return CM_HC_ABORT;
    if (p->obs.chunk && px->cookie)
        p->obs.chunk(p->obs.ud, px->cookie, data, len);
    px->in_cb = true;
    if (px->mode == RELAY_HOLD && (px->sse || px->blen + len > HOLD_MAX)) {
        start_stream(px); /* a stream, or too big to hold: relay what we have and go on streaming */
        write_client(px, px->buf, px->blen);
        px->blen = 0;
    }
    if (px->mode == RELAY_STREAM) {
        write_client(px, data, len);
    } else {
        if (px->blen + len > px->bcap) {
            px->bcap = (px->blen + len) * 2;
            px->buf = cm_xrealloc(px->buf, px->bcap);
        }
        memcpy(px->buf + px->blen, data, len);
        px->blen += len;
    }
    px->in_cb = false;
    return px->closed ? CM_HC_ABORT : CM_HC_CONTINUE;
}

/* The node's trailer fields (a chunked stream's end): X-LLM-Usage carries
 * the stream's exact token counts (node/src/api.c), consumed here and never
 * relayed, so the client's bytes are the node's event stream unchanged. */
static void on_trailers(cm_hc_req_t *r, const cm_hc_header_t *h, size_t nh, void *ud)
{
    px_t *px = ud;
    (void)r;
    for (size_t i = 0; i < nh; i++)
        if (strcasecmp(h[i].name, "X-LLM-Usage") == 0)
            join2(px->usage, sizeof(px->usage), h[i].value, "");
}

/* What the client is told of a failed node: no node id, no address (those
 * are logged with the request id, which the client can quote). */
static void client_msg(const px_t *px, char *buf, size_t cap)
{
    snprintf(buf, cap, "The node serving this request %s (request id %s)",
             px->last_result == CM_HC_ETIMEOUT ? "did not answer in time" : "failed", cm_http_req_id(px->req));
}

static void end_stream_with_error(px_t *px, const char *msg)
{
    if (px->sse) {
        if (px->tail[0] != '\n' || px->tail[1] != '\n')
            cm_http_stream_write(px->req, "\n\n", 2);
        cJSON *root = cm_http_error_json("server_error", "upstream_error", NULL, msg);
        char *json = cJSON_PrintUnformatted(root);
        size_t n;
        char *ev = cm_sse_format("error", json, strlen(json), &n);
        cm_http_stream_write(px->req, ev, n);
        cm_http_stream_write(px->req, CM_SSE_DONE, strlen(CM_SSE_DONE));
        free(ev);
        free(json);
        cJSON_Delete(root);
    }
    cm_http_stream_end(px->req);
}

static void finish_ok(px_t *px)
{
    if (px->mode == RELAY_STREAM)
        cm_http_stream_end(px->req);
    else {
        px->t_first = cm_now_us();
        cm_http_reply(px->req, px->status, px->ctype[0] ? px->ctype : NULL, px->buf, px->blen);
    }
    px_free(px, px->status < 500 ? RT_OUTCOME_OK : RT_OUTCOME_FAILED, NULL);
}

static void finish_failed(px_t *px)
{
    char msg[160];
    client_msg(px, msg, sizeof(msg));
    /* A stream ends with an SSE error event; a held answer that went over
     * HOLD_MAX and was relayed as a plain chunked body cannot carry one, so
     * its connection closes without the last chunk: the client sees an
     * incomplete body, not a complete truncated one. */
    if (px->mode == RELAY_STREAM && !px->sse) {
        px->err_type = "stream_error";
        cm_http_stream_abort(px->req);
    } else if (px->mode == RELAY_STREAM) {
        px->err_type = "stream_error";
        end_stream_with_error(px, msg);
    } else if (px->last_result == CM_HC_ETIMEOUT) {
        px->status = 504;
        reply_error(px, 504, "upstream_timeout", NULL, msg);
    } else {
        px->status = 502;
        reply_error(px, 502, "upstream_error", NULL, msg);
    }
    px_free(px, RT_OUTCOME_NONE, px->last_err);
}

static void on_done(cm_hc_req_t *r, int result, const char *detail, void *ud)
{
    px_t *px = ud;
    rt_proxy_t *p = px->p;
    (void)r;
    px->up = NULL;
    if (px->t_sent) {
        px->upstream_us += cm_now_us() - px->t_sent;
        px->t_sent = 0;
    }
    if (px->closed) {
        client_gone(px->req, px);
        return;
    }
    if (result == CM_HC_OK && !px->rejected) {
        finish_ok(px);
        return;
    }
    /* the node failed this request */
    px->last_result = result;
    if (px->rejected)
        snprintf(px->last_err, sizeof(px->last_err), "node %s answered %d%s%.64s%s", px->lease.node_id, px->status,
                 px->ctype[0] ? " (" : "", px->ctype, px->ctype[0] ? ")" : "");
    else
        snprintf(px->last_err, sizeof(px->last_err), "node %s: %s%s%s", px->lease.node_id,
                 cm_hc_strerror(result), detail && *detail ? ": " : "", detail ? detail : "");
    if (!px->rejected && px->status == 0) /* connection level (no head in time too): stop sending it work */
        rt_registry_suspend(p->reg, px->lease.node_id, p->o.suspend_ms);
    LOG_WARN("proxy", "%s %s: %s", cm_http_req_id(px->req), px->path, px->last_err);
    rt_registry_release(p->reg, &px->lease, RT_OUTCOME_FAILED);
    px->has_lease = false;
    if (px->nexcl < MAX_EXCL) {
        snprintf(px->excl[px->nexcl], sizeof(px->excl[0]), "%s", px->lease.node_id);
        px->exclp[px->nexcl] = px->excl[px->nexcl];
        px->nexcl++;
    }
    if (can_retry(px)) {
        if (p->obs.retry && px->cookie) /* what it saw of this attempt is void */
            p->obs.retry(p->obs.ud, px->cookie);
        px->rejected = false;
        px->status = 0;
        px->blen = 0;
        admit(px);
        return;
    }
    finish_failed(px);
}

static void send_upstream(px_t *px)
{
    rt_proxy_t *p = px->p;
    char url[160], rid[80];
    join2(url, sizeof(url), px->lease.base_url, px->path);
    join2(rid, sizeof(rid), "X-Request-Id: ", cm_http_req_id(px->req));
    /* the node's credential travels in the lease, built once per
     * registration (registry.c), so this request formats nothing for it */
    const char *hdrs[] = { "Content-Type: application/json", "TE: trailers", rid,
                           px->lease.auth_hdr[0] ? px->lease.auth_hdr : NULL, NULL };
    cm_hc_opts_t o = {
        .method = "POST", .url = url, .headers = hdrs, .body = px->body, .body_len = px->body_len,
        .connect_timeout_ms = 5000, .idle_timeout_s = p->o.idle_timeout_s,
        .head_timeout_ms = p->o.head_timeout_s * 1000, .no_proxy = true,
        .on_headers = on_headers, .on_data = on_data, .on_trailers = on_trailers, .on_done = on_done, .ud = px,
    };
    px->attempts++;
    px->mode = RELAY_HOLD;
    px->usage[0] = '\0';
    px->t_sent = cm_now_us();
    px->up = cm_hc_request(p->w[px->worker].hc, &o);
    if (!px->up) /* refused at once (a URL the client cannot take): a failed attempt */
        on_done(NULL, CM_HC_EOTHER, "cannot start the request", px);
}

/* ---- admission ---- */

rt_adm_status_t rt_proxy_try_slot(void *ctx, void *ud)
{
    px_t *px = ctx;
    rt_registry_t *reg = ud;
    px->pick = rt_registry_acquire(reg, px->model, px->exclp, px->nexcl, &px->lease);
    if (px->pick == RT_PICK_OK) {
        px->has_lease = true;
        return RT_ADM_GOT;
    }
    return px->pick == RT_PICK_BUSY ? RT_ADM_BUSY : RT_ADM_GONE;
}

static void no_node(px_t *px)
{
    if (px->attempts == 0 && px->pick == RT_PICK_NONE) {
        px->status = 404;
        px->err_type = "model_not_found";
        px->t_first = cm_now_us();
        cm_http_reply_error(px->req, 404, NULL, "model_not_found", "model",
                            "The model '%s' does not exist or no node serves it", px->model);
        px_free(px, RT_OUTCOME_NONE, "model_not_found");
    } else if (px->attempts == 0 && px->pick == RT_PICK_DOWN) {
        char ra[16], msg[200];
        snprintf(ra, sizeof(ra), "%u", px->lease.retry_s ? px->lease.retry_s : 1);
        snprintf(msg, sizeof(msg), "Every node serving '%s' failed its last request and is suspended; try again in %s s",
                 px->model, ra);
        reply_error(px, 503, "no_node_available", ra, msg);
        px_free(px, RT_OUTCOME_NONE, "every node suspended");
    } else if (px->attempts == 0) {
        reply_error(px, 503, "no_node_available", "1", "No node can serve this model now");
        px_free(px, RT_OUTCOME_NONE, "no node available");
    } else {
        finish_failed(px);
    }
}

static void on_admitted(void *ctx, rt_adm_status_t st)
{
    px_t *px = ctx;
    px->waiter = NULL;
    px->queue_us += cm_now_us() - px->t_queued;
    if (st == RT_ADM_GOT) {
        send_upstream(px);
    } else if (st == RT_ADM_TIMEOUT) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Every node serving '%s' stayed busy for %.1f s; try again", px->model,
                 px->p->o.queue_timeout_ms / 1000.0);
        reply_error(px, 503, "queue_timeout", "2", msg);
        px_free(px, RT_OUTCOME_NONE, "queue timeout");
    } else {
        no_node(px);
    }
}

static void admit(px_t *px)
{
    rt_proxy_t *p = px->p;
    px->t_queued = cm_now_us();
    rt_adm_status_t st = rt_admission_enter(p->adm, px->model, cm_http_req_base(px->req), p->o.queue_timeout_ms,
                                            px, on_admitted, &px->waiter);
    switch (st) {
    case RT_ADM_GOT:
        send_upstream(px);
        break;
    case RT_ADM_QUEUED:
        break;
    case RT_ADM_FULL:
        reply_error(px, 503, "queue_full", "1", "Too many requests are waiting for a node; try again");
        px_free(px, RT_OUTCOME_NONE, "queue full");
        break;
    default:
        no_node(px);
        break;
    }
}

void rt_proxy_forward(rt_proxy_t *p, cm_http_req_t *req, const char *path, const char *model,
                      const char *body, size_t len)
{
    px_t *px = cm_xcalloc(1, sizeof(*px));
    px->p = p;
    px->req = req;
    px->body = body; /* cm_http_req_body appends a NUL each call: take it once */
    px->body_len = len;
    snprintf(px->path, sizeof(px->path), "%s", path);
    px->model = cm_xstrdup(model);
    px->worker = cm_http_req_worker(req);
    LIST_INSERT_HEAD(&p->w[px->worker].live, px, link);
    px->t_start = cm_now_us();
    if (p->obs.begin)
        px->cookie = p->obs.begin(p->obs.ud, req, path, model, px->body, px->body_len);
    cm_http_req_on_close(req, client_gone, px);
    admit(px);
}

/* ---- nodes gone offline ---- */

/* On worker w's loop: every request of this loop with an upstream request on
 * a node that went offline fails that attempt now, as if the connection had
 * broken: retried elsewhere when nothing reached the client yet, else its
 * stream ends with an error event. Matches are marked first and acted on one
 * at a time, rescanning, since acting (a retry, a finish, a waiter woken by
 * the released slot) changes the list. */
static void on_offline(evutil_socket_t fd, short what, void *arg)
{
    px_worker_t *w = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->mu);
    size_t n = w->ngone;
    char(*gone)[RT_NODE_ID_MAX] = w->gone;
    w->gone = NULL;
    w->ngone = w->capgone = 0;
    pthread_mutex_unlock(&w->mu);
    px_t *px;
    bool any = false;
    LIST_FOREACH(px, &w->live, link)
        for (size_t i = 0; i < n && px->up; i++)
            if (px->has_lease && strcmp(px->lease.node_id, gone[i]) == 0)
                any = px->node_gone = true;
    free(gone);
    while (any) {
        any = false;
        LIST_FOREACH(px, &w->live, link)
            if (px->node_gone) {
                px->node_gone = false;
                any = true;
                break;
            }
        if (!any || !px->up)
            continue;
        cm_hc_cancel(px->up);
        px->up = NULL;
        on_done(NULL, CM_HC_EIO, "the node went offline (no heartbeat)", px);
    }
}

/* ---- setup ---- */

rt_proxy_t *rt_proxy_new(const rt_proxy_opts_t *o, rt_registry_t *reg, rt_admission_t *adm)
{
    rt_proxy_t *p = cm_xcalloc(1, sizeof(*p));
    p->o = *o;
    if (p->o.workers < 1)
        p->o.workers = 1;
    if (p->o.retries > MAX_EXCL - 1)
        p->o.retries = MAX_EXCL - 1;
    p->reg = reg;
    p->adm = adm;
    p->w = cm_xcalloc((size_t)p->o.workers, sizeof(*p->w));
    for (int i = 0; i < p->o.workers; i++) {
        LIST_INIT(&p->w[i].live);
        pthread_mutex_init(&p->w[i].mu, NULL);
    }
    return p;
}

void rt_proxy_free(rt_proxy_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->o.workers; i++) {
        cm_hc_free(p->w[i].hc);
        if (p->w[i].offline_ev)
            event_free(p->w[i].offline_ev);
        free(p->w[i].gone);
        pthread_mutex_destroy(&p->w[i].mu);
    }
    free(p->w);
    free(p);
}

void rt_proxy_set_observer(rt_proxy_t *p, const rt_proxy_observer_t *obs)
{
    p->obs = *obs;
}

void rt_proxy_worker_start(rt_proxy_t *p, struct event_base *base, int worker)
{
    if (worker < 0 || worker >= p->o.workers) { /* the assembler sizes both from one count */
        LOG_ERROR("proxy", "worker %d started, but the proxy was built for %d", worker, p->o.workers);
        abort();
    }
    px_worker_t *w = &p->w[worker];
    w->hc = cm_hc_new(base);
    struct event *ev = event_new(base, -1, 0, on_offline, w);
    pthread_mutex_lock(&w->mu);
    w->offline_ev = ev;
    pthread_mutex_unlock(&w->mu);
}

void rt_proxy_worker_stop(rt_proxy_t *p, int worker)
{
    if (worker >= 0 && worker < p->o.workers) {
        px_worker_t *w = &p->w[worker];
        pthread_mutex_lock(&w->mu); /* no more wake-ups from other threads */
        struct event *ev = w->offline_ev;
        w->offline_ev = NULL;
        w->ngone = 0;
        pthread_mutex_unlock(&w->mu);
        if (ev)
            event_free(ev);
        cm_hc_free(w->hc);
        w->hc = NULL;
    }
}

void rt_proxy_node_offline(rt_proxy_t *p, const char *node_id)
{
    for (int i = 0; i < p->o.workers; i++) {
        px_worker_t *w = &p->w[i];
        pthread_mutex_lock(&w->mu);
        if (w->offline_ev) {
            if (w->ngone == w->capgone) {
                w->capgone = w->capgone ? 2 * w->capgone : 4;
                w->gone = cm_xrealloc(w->gone, w->capgone * sizeof(*w->gone));
            }
            snprintf(w->gone[w->ngone++], RT_NODE_ID_MAX, "%s", node_id);
            event_active(w->offline_ev, EV_TIMEOUT, 1); /* once, however many were queued */
        }
        pthread_mutex_unlock(&w->mu);
    }
}
