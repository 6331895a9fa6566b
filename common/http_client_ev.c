/* http_client_ev: http_client's transport for plain HTTP to a numeric
 * address (the router's path to its nodes), on libevent's own HTTP client.
 *
 * Why a second transport: on a proxied 1 KB request libcurl's multi interface
 * cost ~66k instructions of the router's ~155k (bench/router/profile.py);
 * evhttp_connection does the same exchange for a fraction, on the loop the
 * router already runs. libcurl stays for HTTPS, host names and proxies.
 *
 * Connections: one evhttp_connection carries one request at a time; idle ones
 * are kept per upstream (scheme + host + port as the URL spells it) and
 * reused. evhttp reconnects a connection the peer closed while idle; a request
 * that fails before any response byte on a reused connection (the peer closed
 * it just as we sent) is sent once more on a fresh one, as curl does.
 *
 * Rules that keep evhttp's state machine safe:
 *  - a connection goes back to the idle pool only from evhttp's completion
 *    callback (libevent allows a new request on it from there) or outside
 *    evhttp's callbacks (a deferred event); never from the chunk callback;
 *  - abort from the header callback is its -1 return; from the chunk callback
 *    evhttp_cancel_request (evhttp defers freeing the request there);
 *  - the response body is read with a chunk callback set in the header
 *    callback, so it is delivered as it arrives and never held whole; while
 *    paused, reading stops (EV_READ off) and what evhttp already read is kept
 *    in r->held, delivered on resume before reading starts again. */
#include "http_client_impl.h"

#include "bevflush.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_HEADERS 64
#define IDLE_MAX 256                  /* idle connections kept per upstream */
#define FOREVER_S (365L * 24 * 3600)  /* evhttp reads "no timeout" as 50 s */

typedef struct ev_pool ev_pool_t;

typedef struct ev_conn {
    struct evhttp_connection *evcon;
    ev_pool_t *pool;
    struct ev_conn *next;
    long timeout_s;        /* last set on evcon */
    size_t max_head;       /* last set on evcon */
    unsigned served;       /* responses completed on it */
} ev_conn_t;

struct ev_pool {
    char *origin;          /* "http://127.0.0.1:8081": the URL up to its path */
    size_t olen;
    char *host;            /* numeric, without brackets */
    char *authority;       /* Host header */
    unsigned short port;
    ev_conn_t *idle;
    size_t nidle;
};

typedef struct ev_req ev_req_t;

struct hc_ev {
    struct event_base *base;
    ev_pool_t **pools;
    size_t npools, cappools;
    ev_conn_t *returning;  /* back to the pool once out of evhttp's callbacks */
    ev_conn_t *doomed;     /* to free, likewise */
    struct event *reaper;
    ev_req_t *live;
    size_t active;
};

struct ev_req {
    cm_hc_req_t base;
    hc_ev_t *h;
    ev_pool_t *pool;
    ev_conn_t *conn;
    struct evhttp_request *req;   /* in evhttp's hands, else NULL */
    cm_hc_opts_t o;
    char *blk;                    /* path and header names/values */
    const char *path;
    const char **hname, **hval;   /* in blk */
    size_t nh;
    enum evhttp_cmd_type method;
    struct event timer;           /* connect check and whole-transfer deadline */
    struct event later;           /* resume, retry, finish outside evhttp */
    struct evbuffer *held;        /* body read while paused */
    uint64_t t_start;
    int status;
    int err;                      /* evhttp's error, -1 none */
    int pending;                  /* result to report once held data is out; 1 none */
    int depth;                    /* > 0 while a user callback runs */
    bool head_done, paused, cancelled, aborted, reused, retried, retry_due, connecting;
    int bad_status; /* a response code outside 100..599: the response is refused */
    bool starting;                /* inside evhttp_make_request */
    char detail[128];             /* of a pending failure */
    ev_req_t *prev, *next;
};

static void on_later(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void send_req(ev_req_t *r);

/* ---- pools and connections ---- */

static void pool_free(ev_pool_t *p)
{
    while (p->idle) {
        ev_conn_t *c = p->idle;
        p->idle = c->next;
        evhttp_connection_free(c->evcon);
        free(c);
    }
    free(p->origin);
    free(p->host);
    free(p->authority);
    free(p);
}

/* The upstream url belongs to, made on first sight; NULL when this transport
 * does not take the URL. *path: where the request target starts in url. */
static ev_pool_t *pool_for(hc_ev_t *h, const char *url, const char **path)
{
    for (size_t i = 0; i < h->npools; i++) {
        ev_pool_t *p = h->pools[i];
        if (strncmp(url, p->origin, p->olen) == 0 && url[p->olen] == '/') {
            *path = url + p->olen;
            return p;
        }
    }
    if (strncmp(url, "http://", 7) != 0 || strchr(url, '#'))
        return NULL;
    const char *slash = strchr(url + 7, '/');
    if (!slash || memchr(url + 7, '?', (size_t)(slash - url - 7)) || memchr(url + 7, '@', (size_t)(slash - url - 7)))
        return NULL;
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
    if (!u)
        return NULL;
    const char *host = evhttp_uri_get_host(u);
    int port = evhttp_uri_get_port(u);
    char addr[64];
    size_t hl = host ? strlen(host) : 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    unsigned char tmp[sizeof(struct in6_addr)];
    bool numeric = hl > 0 && hl < sizeof(addr);
    if (numeric) {
        memcpy(addr, host, hl);
        addr[hl] = '\0';
        numeric = evutil_inet_pton(AF_INET, addr, tmp) == 1 || evutil_inet_pton(AF_INET6, addr, tmp) == 1;
    }
    if (!numeric || port == 0 || port > 65535) {
        evhttp_uri_free(u);
        return NULL;
    }
    ev_pool_t *p = cm_xcalloc(1, sizeof(*p));
    p->olen = (size_t)(slash - url);
    p->origin = cm_xstrndup(url, p->olen);
    p->authority = cm_xstrndup(url + 7, p->olen - 7);
    p->host = cm_xstrdup(addr);
    p->port = (unsigned short)(port < 0 ? 80 : port);
    evhttp_uri_free(u);
    if (h->npools == h->cappools) {
        h->cappools = h->cappools ? h->cappools * 2 : 8;
        h->pools = cm_xrealloc(h->pools, h->cappools * sizeof(*h->pools));
    }
    h->pools[h->npools++] = p;
    *path = slash;
    return p;
}

static ev_conn_t *conn_get(hc_ev_t *h, ev_pool_t *p, bool *reused)
{
    if (p->idle) {
        ev_conn_t *c = p->idle;
        p->idle = c->next;
        p->nidle--;
        c->next = NULL;
        *reused = c->served > 0;
        return c;
    }
    ev_conn_t *c = cm_xcalloc(1, sizeof(*c));
    c->pool = p;
    c->evcon = evhttp_connection_base_new(h->base, NULL, p->host, p->port);
    if (!c->evcon)
        abort(); /* out of memory: same policy as cm_xmalloc */
    /* reconnects go to the address already resolved, without getaddrinfo */
    evhttp_connection_set_flags(c->evcon, EVHTTP_CON_REUSE_CONNECTED_ADDR);
    evhttp_connection_set_retries(c->evcon, 0);
    *reused = false;
    return c;
}

static void kick_reaper(hc_ev_t *h)
{
    event_active(h->reaper, EV_TIMEOUT, 1);
}

/* Back to its pool. defer: we are inside evhttp's callbacks for this
 * connection (other than its completion callback), where it may not be handed
 * to a new request yet: the reaper event puts it back from the loop. */
static void conn_put(hc_ev_t *h, ev_conn_t *c, bool defer)
{
    if (defer) {
        c->next = h->returning;
        h->returning = c;
        kick_reaper(h);
        return;
    }
    ev_pool_t *p = c->pool;
    if (p->nidle >= IDLE_MAX) {
        c->next = h->doomed;
        h->doomed = c;
        kick_reaper(h);
        return;
    }
    c->next = p->idle;
    p->idle = c;
    p->nidle++;
}

static void on_reaper(evutil_socket_t fd, short what, void *arg)
{
    hc_ev_t *h = arg;
    (void)fd;
    (void)what;
    while (h->returning) {
        ev_conn_t *c = h->returning;
        h->returning = c->next;
        conn_put(h, c, false);
    }
    while (h->doomed) {
        ev_conn_t *c = h->doomed;
        h->doomed = c->next;
        evhttp_connection_free(c->evcon);
        free(c);
    }
}

/* ---- request lifetime ---- */

static void release(ev_req_t *r, bool defer_conn)
{
    hc_ev_t *h = r->h;
    if (r->conn)
        conn_put(h, r->conn, defer_conn);
    if (r->prev)
        r->prev->next = r->next;
    else
        h->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    event_del(&r->timer);
    event_del(&r->later);
    if (r->held)
        evbuffer_free(r->held);
    free(r->blk);
    free(r);
    h->active--;
}

static void finish(ev_req_t *r, int result, const char *detail, bool defer_conn)
{
    r->cancelled = true; /* no callback after on_done; cm_hc_cancel from it is a no-op */
    if (r->o.on_done) {
        r->depth++;
        r->o.on_done(&r->base, result, detail ? detail : "", r->o.ud);
        r->depth--;
    }
    release(r, defer_conn);
}

/* Takes the request away from evhttp; the connection is closed (evhttp
 * resets it) and stays with r. */
static void drop_evreq(ev_req_t *r)
{
    struct evhttp_request *q = r->req;
    r->req = NULL;
    if (q)
        evhttp_cancel_request(q); /* its error callback sees r->req == NULL */
}

static void later(ev_req_t *r)
{
    event_active(&r->later, EV_TIMEOUT, 1);
}

static struct bufferevent *bev_of(ev_req_t *r)
{
    return evhttp_connection_get_bufferevent(r->conn->evcon);
}

/* Hands body bytes from src to on_data until src is empty or the user pauses,
 * cancels or aborts; what is left moves to r->held. */
static void deliver(ev_req_t *r, struct evbuffer *src)
{
    while (evbuffer_get_length(src) > 0 && !r->paused && !r->cancelled && !r->aborted) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(src, -1, NULL, &v, 1) < 1)
            break;
        int rc = CM_HC_CONTINUE;
        if (r->o.on_data && v.iov_len > 0) {
            r->depth++;
            rc = r->o.on_data(&r->base, v.iov_base, v.iov_len, r->o.ud);
            r->depth--;
        }
        evbuffer_drain(src, v.iov_len);
        if (rc != CM_HC_CONTINUE && !r->cancelled)
            r->aborted = true;
    }
    if (evbuffer_get_length(src) > 0 && !r->cancelled && !r->aborted && src != r->held) {
        if (!r->held)
            r->held = evbuffer_new();
        evbuffer_add_buffer(r->held, src);
    }
}

/* ---- evhttp callbacks ---- */

static void on_error(enum evhttp_request_error err, void *arg)
{
    ev_req_t *r = arg;
    if (r->req)
        r->err = (int)err;
}

static int on_head(struct evhttp_request *req, void *arg);
static void on_chunk(struct evhttp_request *req, void *arg);

static int on_head(struct evhttp_request *req, void *arg)
{
    ev_req_t *r = arg;
    if (r->cancelled)
        return -1;
    r->status = evhttp_request_get_response_code(req);
    if (r->status < 100 || r->status > 599) { /* evhttp takes any atoi() but 0 */
        r->bad_status = r->status ? r->status : -1;
        return -1;
    }
    r->head_done = true;
    evhttp_request_set_chunked_cb(req, on_chunk);
    cm_hc_header_t hs[MAX_HEADERS];
    size_t nh = 0;
    struct evkeyval *kv;
    for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv && nh < MAX_HEADERS; kv = kv->next.tqe_next) {
        hs[nh].name = kv->key;
        hs[nh].value = kv->value;
        nh++;
    }
    int rc = CM_HC_CONTINUE;
    if (r->o.on_headers) {
        r->depth++;
        rc = r->o.on_headers(&r->base, r->status, hs, nh, r->o.ud);
        r->depth--;
    }
    if (rc != CM_HC_CONTINUE && !r->cancelled)
        r->aborted = true;
    /* -1: evhttp closes the connection and calls on_complete(NULL) */
    return r->cancelled || r->aborted ? -1 : 0;
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
    ev_req_t *r = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    if (!r->cancelled && !r->aborted) {
        if (r->paused || (r->held && evbuffer_get_length(r->held) > 0)) {
            if (!r->held)
                r->held = evbuffer_new();
            evbuffer_add_buffer(r->held, in);
        } else {
            deliver(r, in);
        }
        if (r->paused)
            bufferevent_disable(bev_of(r), EV_READ); /* evhttp may have re-enabled it */
    }
    if (!r->cancelled && !r->aborted)
        return;
    /* stop here: evhttp defers freeing req until this callback returns */
    drop_evreq(r);
    if (r->cancelled)
        release(r, true);
    else
        finish(r, CM_HC_EABORTED, "aborted by callback", true);
}

static const char *evhttp_err_text(int err)
{
    switch (err) {
    case EVREQ_HTTP_TIMEOUT: return "no data from the server in time";
    case EVREQ_HTTP_EOF: return "connection closed by the server";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid or too large response head";
    case EVREQ_HTTP_BUFFER_ERROR: return "socket error";
    case EVREQ_HTTP_DATA_TOO_LONG: return "malformed response body";
    default: return "transfer failed";
    }
}

/* A failure; reported from the loop when evhttp gave it inside
 * evhttp_make_request (cm_hc_request never calls back). */
static void fail(ev_req_t *r, int result, const char *detail)
{
    if (r->starting) {
        r->pending = result;
        snprintf(r->detail, sizeof(r->detail), "%s", detail);
        later(r);
        return;
    }
    finish(r, result, detail, false);
}

/* evhttp's last word on the request: req is the complete response, or NULL
 * (failure; on_error said which), or a request without a response code (the
 * connection could not be made). */
static void on_complete(struct evhttp_request *req, void *arg)
{
    ev_req_t *r = arg;
    bool had = r->req != NULL;
    r->req = NULL;
    if (!had)
        return; /* taken away already (drop_evreq) */
    if (r->cancelled) {
        release(r, false);
        return;
    }
    if (req && r->head_done && !r->aborted) {
        r->conn->served++;
        conn_put(r->h, r->conn, false); /* done with it: the next request may take it now */
        r->conn = NULL;
        if (r->held && evbuffer_get_length(r->held) > 0) {
            r->pending = CM_HC_OK; /* reported once the held bytes are out */
            if (!r->paused)
                later(r);
            return;
        }
        finish(r, CM_HC_OK, NULL, false);
        return;
    }
    if (r->aborted) {
        finish(r, CM_HC_EABORTED, "aborted by callback", false);
        return;
    }
    char detail[128];
    if (r->bad_status) {
        snprintf(detail, sizeof(detail), "response status %d is not an HTTP status", r->bad_status);
        fail(r, CM_HC_EPROTO, detail);
        return;
    }
    if (!r->head_done && r->reused && !r->retried && (r->err == EVREQ_HTTP_EOF || r->err == EVREQ_HTTP_BUFFER_ERROR)) {
        /* the peer closed the kept-alive connection as we sent: once more on
         * a fresh one, outside evhttp's callbacks */
        r->retried = true;
        r->retry_due = true;
        later(r);
        return;
    }
    int result;
    if (!req && r->err >= 0) {
        result = r->err == EVREQ_HTTP_TIMEOUT ? CM_HC_ETIMEOUT : CM_HC_EIO;
        snprintf(detail, sizeof(detail), "%s%s", evhttp_err_text(r->err),
                 r->head_done ? " during the response body" : " before the response");
    } else {
        result = CM_HC_ECONNECT;
        snprintf(detail, sizeof(detail), "cannot connect to %s:%u", r->pool->host, r->pool->port);
    }
    fail(r, result, detail);
}

/* ---- timers and deferred work ---- */

static bool is_connected(ev_req_t *r)
{
    if (r->head_done)
        return true;
    int fd = bufferevent_getfd(bev_of(r));
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

static void arm_timer(ev_req_t *r)
{
    uint64_t now = cm_now_ms(), due = UINT64_MAX;
    if (r->connecting)
        due = r->t_start + (uint64_t)(r->o.connect_timeout_ms > 0 ? r->o.connect_timeout_ms : 10000);
    if (r->o.timeout_ms > 0 && r->t_start + (uint64_t)r->o.timeout_ms < due)
        due = r->t_start + (uint64_t)r->o.timeout_ms;
    if (due == UINT64_MAX) {
        evtimer_del(&r->timer);
        return;
    }
    uint64_t ms = due > now ? due - now : 0;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(&r->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    ev_req_t *r = arg;
    (void)fd;
    (void)what;
    if (r->cancelled)
        return;
    uint64_t elapsed = cm_now_ms() - r->t_start;
    char detail[128];
    if (r->o.timeout_ms > 0 && elapsed >= (uint64_t)r->o.timeout_ms) {
        drop_evreq(r);
        snprintf(detail, sizeof(detail), "no complete response within %ld ms", r->o.timeout_ms);
        finish(r, CM_HC_ETIMEOUT, detail, false);
        return;
    }
    if (r->connecting && r->req) {
        if (!is_connected(r)) {
            drop_evreq(r);
            snprintf(detail, sizeof(detail), "cannot connect to %s:%u within %lu ms", r->pool->host,
                     r->pool->port, (unsigned long)elapsed);
            finish(r, CM_HC_ECONNECT, detail, false);
            return;
        }
        r->connecting = false;
    }
    arm_timer(r);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    ev_req_t *r = arg;
    (void)fd;
    (void)what;
    if (r->cancelled)
        return;
    if (r->pending < 0) {
        finish(r, r->pending, r->detail, false);
        return;
    }
    if (r->retry_due) {
        r->retry_due = false;
        r->head_done = false;
        r->err = -1;
        send_req(r);
        return;
    }
    if (r->paused)
        return;
    if (r->held)
        deliver(r, r->held);
    if (r->cancelled || r->aborted) {
        drop_evreq(r);
        if (r->cancelled)
            release(r, false);
        else
            finish(r, CM_HC_EABORTED, "aborted by callback", false);
        return;
    }
    if (r->paused)
        return;
    if (r->pending != 1) {
        finish(r, r->pending, NULL, false);
        return;
    }
    if (r->req && r->head_done)
        bufferevent_enable(bev_of(r), EV_READ);
}

/* ---- sending ---- */

static void send_req(ev_req_t *r)
{
    hc_ev_t *h = r->h;
    if (!r->conn)
        r->conn = conn_get(h, r->pool, &r->reused);
    else
        r->reused = false; /* a retry: evhttp reconnects the closed connection */
    ev_conn_t *c = r->conn;
    long tmo = r->o.idle_timeout_s > 0 ? r->o.idle_timeout_s : FOREVER_S;
    if (c->timeout_s != tmo) {
        struct timeval tv = { (time_t)tmo, 0 };
        evhttp_connection_set_timeout_tv(c->evcon, &tv);
        c->timeout_s = tmo;
    }
    size_t max_head = r->o.max_header_bytes ? r->o.max_header_bytes : 64 * 1024;
    if (c->max_head != max_head) {
        evhttp_connection_set_max_headers_size(c->evcon, (ev_ssize_t)max_head);
        c->max_head = max_head;
    }
    struct evhttp_request *req = evhttp_request_new(on_complete, r);
    if (!req)
        abort();
    evhttp_request_set_header_cb(req, on_head);
    evhttp_request_set_error_cb(req, on_error);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Host", r->pool->authority);
    for (size_t i = 0; i < r->nh; i++)
        evhttp_add_header(out, r->hname[i], r->hval[i]);
    if (r->o.body && r->o.body_len > 0)
        evbuffer_add_reference(evhttp_request_get_output_buffer(req), r->o.body, r->o.body_len, NULL, NULL);
    r->connecting = bufferevent_getfd(bev_of(r)) < 0; /* evhttp connects first */
    r->t_start = r->t_start ? r->t_start : cm_now_ms();
    r->req = req;
    r->starting = true;
    int rc = evhttp_make_request(c->evcon, req, r->method, r->path);
    r->starting = false;
    if (rc != 0 && r->req) {
        r->req = NULL; /* evhttp freed it or never queued it: it is not ours to touch */
        r->retried = true;
        r->starting = true;
        fail(r, CM_HC_ECONNECT, "cannot start the request");
        r->starting = false;
        return;
    }
    if (!r->req)
        return;
    if (!r->connecting)
        cm_bev_flush(bev_of(r)); /* written now, not on the next turn; evhttp then reads the response */
    arm_timer(r);
}

/* Copies the path and the "Name: value" lines into one block, split. */
static bool copy_strings(ev_req_t *r, const char *path, const char *const *headers)
{
    size_t n = 0, bytes = strlen(path) + 1;
    for (; headers && headers[n]; n++)
        bytes += strlen(headers[n]) + 1;
    r->blk = cm_xmalloc(2 * n * sizeof(char *) + bytes);
    r->hname = (const char **)(void *)r->blk;
    r->hval = r->hname + n;
    char *p = r->blk + 2 * n * sizeof(char *);
    size_t len = strlen(path) + 1;
    r->path = memcpy(p, path, len);
    p += len;
    for (size_t i = 0; i < n; i++) {
        len = strlen(headers[i]) + 1;
        memcpy(p, headers[i], len);
        char *colon = strchr(p, ':');
        if (!colon || colon == p)
            return false;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        r->hname[r->nh] = p;
        r->hval[r->nh] = v;
        r->nh++;
        p += len;
    }
    return true;
}

static bool method_of(const char *m, enum evhttp_cmd_type *out)
{
    static const struct {
        const char *name;
        enum evhttp_cmd_type type;
    } map[] = { { "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST }, { "PUT", EVHTTP_REQ_PUT },
                { "DELETE", EVHTTP_REQ_DELETE }, { "PATCH", EVHTTP_REQ_PATCH }, { "HEAD", EVHTTP_REQ_HEAD } };
    for (size_t i = 0; i < CM_ARRAY_LEN(map); i++)
        if (strcmp(m, map[i].name) == 0) {
            *out = map[i].type;
            return true;
        }
    return false;
}

/* ---- the transport's interface ---- */

hc_ev_t *hc_ev_new(struct event_base *base)
{
    hc_ev_t *h = cm_xcalloc(1, sizeof(*h));
    h->base = base;
    h->reaper = evtimer_new(base, on_reaper, h);
    return h;
}

void hc_ev_free(hc_ev_t *h)
{
    if (!h)
        return;
    while (h->live) {
        ev_req_t *r = h->live;
        r->cancelled = true;
        drop_evreq(r);
        release(r, false);
    }
    on_reaper(-1, 0, h);
    for (size_t i = 0; i < h->npools; i++)
        pool_free(h->pools[i]);
    free(h->pools);
    event_free(h->reaper);
    free(h);
}

cm_hc_req_t *hc_ev_request(hc_ev_t *h, const cm_hc_opts_t *opts)
{
    enum evhttp_cmd_type method;
    const char *path;
    if (!opts->no_proxy || !method_of(opts->method ? opts->method : "GET", &method))
        return NULL;
    ev_pool_t *pool = pool_for(h, opts->url, &path);
    if (!pool)
        return NULL;
    ev_req_t *r = cm_xcalloc(1, sizeof(*r));
    r->base.ev = true;
    r->h = h;
    r->pool = pool;
    r->method = method;
    r->err = -1;
    r->pending = 1;
    if (!copy_strings(r, path, opts->headers)) {
        free(r->blk);
        free(r);
        return NULL; /* a header line libcurl may make sense of */
    }
    r->o = *opts;
    r->o.url = NULL;
    r->o.headers = NULL;
    evtimer_assign(&r->timer, h->base, on_timer, r); /* in r: no allocation per request */
    evtimer_assign(&r->later, h->base, on_later, r);
    r->next = h->live;
    if (h->live)
        h->live->prev = r;
    h->live = r;
    h->active++;
    send_req(r);
    return &r->base;
}

void hc_ev_cancel(cm_hc_req_t *base)
{
    ev_req_t *r = (ev_req_t *)(void *)base;
    if (r->cancelled)
        return;
    r->cancelled = true;
    if (r->depth > 0)
        return; /* inside one of its callbacks: the code after it ends the request */
    drop_evreq(r);
    release(r, false);
}

void hc_ev_pause(cm_hc_req_t *base)
{
    ev_req_t *r = (ev_req_t *)(void *)base;
    if (r->paused || r->cancelled)
        return;
    r->paused = true;
    if (r->req && r->head_done)
        bufferevent_disable(bev_of(r), EV_READ);
}

void hc_ev_resume(cm_hc_req_t *base)
{
    ev_req_t *r = (ev_req_t *)(void *)base;
    if (!r->paused || r->cancelled)
        return;
    r->paused = false;
    later(r); /* held bytes first, then reading again, outside the caller's stack */
}

bool hc_ev_paused(const cm_hc_req_t *base) { return ((const ev_req_t *)(const void *)base)->paused; }
int hc_ev_status(const cm_hc_req_t *base) { return ((const ev_req_t *)(const void *)base)->status; }
size_t hc_ev_active(const hc_ev_t *h) { return h->active; }
