/* http_client_ev: http_client's transport for plain HTTP to a numeric
 * address (the router's path to its nodes): one libevent event per
 * connection and the http_parser library for the response.
 *
 * Why a transport of its own: a proxied request crosses it twice per request
 * and nothing else does as much per byte. libcurl's multi interface cost ~66k
 * instructions of the router's ~155k per proxied 1 KB request; libevent's
 * evhttp_connection, used next, ~30k of ~96k (printf per request header,
 * sscanf per status line, a malloc per header, and two epoll_ctl calls per
 * request from its disable/enable of reading). Here the request head is
 * copied into one buffer and written with the body in one writev, the
 * response is read with one recv per wake-up (no FIONREAD ioctl) into a
 * stack buffer and parsed in place by http_parser, body bytes go to on_data
 * straight from that buffer, and a connection's event stays registered for
 * its whole life: no epoll_ctl per request. libcurl stays for HTTPS, host
 * names and proxies.
 *
 * Connections (http_client_pool.c): one request at a time each; idle ones are
 * kept per upstream (scheme + host + port as the URL spells it), watched for
 * the peer closing them, and reused. A request that fails before any response byte on a reused
 * connection (the peer closed it just as we sent) is sent once more on a
 * fresh one, as curl does; never on a fresh one (the caller decides: the
 * router retries on another node).
 *
 * Callbacks and re-entrancy: user callbacks run only from this file's event
 * callbacks, never inside hc_ev_request. depth > 0 while one runs: cancel
 * from there only marks the request and the code after the callback ends it;
 * pause from on_data stops the parser right after that chunk and the rest of
 * the bytes read are kept in r->held for resume. */
#include "http_client_impl.h"
#include "http_client_pool.h"

#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define MAX_HEADERS 64
#define READ_CHUNK 65536     /* one recv per wake-up at most this much */
#define HEAD_STACK 1024      /* request heads up to this size are built on the stack */

typedef struct ev_req ev_req_t;

struct hc_ev {
    struct event_base *base;
    ev_pools_t pools;
    LIST_HEAD(, ev_req) live; /* every request not yet released */
    size_t active;
};

typedef struct {
    const char *name;
    bool length; /* Content-Length even without a body */
    bool head;   /* the response has no body */
} method_t;

struct ev_req {
    cm_hc_req_t base;
    hc_ev_t *h;
    ev_pool_t *pool;
    ev_conn_t *conn;
    cm_hc_opts_t o;
    char *blk;                    /* path and header lines, copied */
    const char *path;
    const char **hname, **hval;   /* in blk */
    size_t nh;
    const method_t *method;
    http_parser parser;
    char *hbuf;                   /* response head: "name\0value\0" pairs */
    size_t hlen, hcap, hmax;
    size_t hoff[MAX_HEADERS][2];  /* name and value offsets in hbuf */
    size_t nresp;                 /* response headers stored */
    enum { H_NONE, H_FIELD, H_VALUE } hstate;
    struct event timer;           /* connect and whole-transfer deadlines */
    struct event later;           /* resume, retry, failures, outside the caller's stack */
    char *held;                   /* response bytes read but not parsed (paused) */
    size_t heldlen, heldoff;
    uint64_t t_start;
    int status;
    int depth;                    /* > 0 while a user callback runs */
    int pending;                  /* a failure to report from `later`; 1: none */
    bool head_done, paused, cancelled, aborted, reused, retried, retry_due, connecting;
    bool got_bytes, complete, too_big, bad_status, starting;
    char detail[128];
    LIST_ENTRY(ev_req) link; /* h->live */
};

static void conn_cb(evutil_socket_t fd, short what, void *arg);
static void send_req(ev_req_t *r);
static void pump(ev_req_t *r, const char *data, size_t len, bool from_held);

/* ---- request lifetime ---- */

/* Ends r without a callback; a connection still with it is closed (it is
 * mid-exchange: finish hands a reusable one back first). */
static void release(ev_req_t *r)
{
    hc_ev_t *h = r->h;
    if (r->conn) {
        ev_conn_close(r->conn);
        r->conn = NULL;
    }
    LIST_REMOVE(r, link);
    event_del(&r->timer);
    event_del(&r->later);
    free(r->held);
    free(r->hbuf);
    free(r->blk);
    free(r);
    h->active--;
}

static void finish(ev_req_t *r, int result, const char *detail, bool keep_conn)
{
    r->cancelled = true; /* no callback after on_done; cm_hc_cancel from it is a no-op */
    if (keep_conn && r->conn) {
        ev_conn_put(r->conn); /* free for the next request before on_done runs */
        r->conn = NULL;
    }
    if (r->o.on_done) {
        r->depth++;
        r->o.on_done(&r->base, result, detail ? detail : "", r->o.ud);
        r->depth--;
    }
    release(r);
}

static void later(ev_req_t *r)
{
    event_active(&r->later, EV_TIMEOUT, 1);
}

/* A failure found inside hc_ev_request is reported from the loop. */
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

/* The connection broke (EOF or error) before the response was complete. */
static void broken(ev_req_t *r, const char *why)
{
    if (!r->got_bytes && r->reused && !r->retried) {
        /* the peer closed the kept-alive connection as we sent: once more on
         * a fresh one */
        ev_conn_close(r->conn);
        r->conn = NULL;
        r->retried = true;
        r->retry_due = true;
        later(r);
        return;
    }
    char detail[128];
    snprintf(detail, sizeof(detail), "%s %s", why, r->head_done ? "during the response body" : "before the response");
    fail(r, CM_HC_EIO, detail); /* deferred when it broke inside hc_ev_request */
}

/* ---- the response, through http_parser ---- */

static ev_req_t *req_of(http_parser *p)
{
    return p->data;
}

/* Appends to the response head; 1 (a parser error) past the bound. */
static int head_put(ev_req_t *r, const char *at, size_t len)
{
    if (r->hlen + len + 1 > r->hmax) {
        r->too_big = true;
        return 1;
    }
    cm_xgrow(&r->hbuf, &r->hcap, r->hlen + len + 1, 512);
    memcpy(r->hbuf + r->hlen, at, len);
    r->hlen += len;
    return 0;
}

/* http_parser hands names and values in pieces (a piece per read): a piece
 * continues the current string unless the kind changes. */
static int on_field(http_parser *p, const char *at, size_t len)
{
    ev_req_t *r = req_of(p);
    if (r->hstate == H_VALUE) {
        if (head_put(r, "", 1))
            return 1;
        r->nresp++;
    }
    if (r->hstate != H_FIELD) {
        if (r->nresp < MAX_HEADERS)
            r->hoff[r->nresp][0] = r->hlen;
        r->hstate = H_FIELD;
    }
    return head_put(r, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    ev_req_t *r = req_of(p);
    if (r->hstate != H_VALUE) {
        if (head_put(r, "", 1))
            return 1;
        if (r->nresp < MAX_HEADERS)
            r->hoff[r->nresp][1] = r->hlen;
        r->hstate = H_VALUE;
    }
    return head_put(r, at, len);
}

static void head_reset(ev_req_t *r)
{
    r->hlen = 0;
    r->nresp = 0;
    r->hstate = H_NONE;
}

/* After a user callback: -1 stops the parser (cancelled or aborted there);
 * a pause there stops it once this callback returns. */
static int after_user(ev_req_t *r, http_parser *p, int rc)
{
    if (r->cancelled)
        return -1;
    if (rc != CM_HC_CONTINUE) {
        r->aborted = true;
        return -1;
    }
    if (r->paused)
        http_parser_pause(p, 1);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    ev_req_t *r = req_of(p);
    int st = p->status_code;
    if (st < 100 || st > 599) {
        r->bad_status = true;
        return -1;
    }
    if (st < 200)
        return 0; /* an interim response: its message ends, the real one follows */
    if (r->hstate == H_VALUE) {
        if (head_put(r, "", 1))
            return -1;
        r->nresp++;
    }
    cm_hc_header_t hs[MAX_HEADERS];
    size_t nh = r->nresp < MAX_HEADERS ? r->nresp : MAX_HEADERS;
    for (size_t i = 0; i < nh; i++) {
        hs[i].name = r->hbuf + r->hoff[i][0];
        hs[i].value = r->hbuf + r->hoff[i][1];
    }
    r->status = st;
    r->head_done = true;
    int rc = CM_HC_CONTINUE;
    if (r->o.on_headers) {
        r->depth++;
        rc = r->o.on_headers(&r->base, st, hs, nh, r->o.ud);
        r->depth--;
    }
    free(r->hbuf); /* not needed any more: a long stream should not hold it */
    r->hbuf = NULL;
    r->hcap = 0;
    head_reset(r);
    if (after_user(r, p, rc) != 0)
        return -1;
    return r->method->head ? 1 : 0; /* 1: no body follows */
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    ev_req_t *r = req_of(p);
    int rc = CM_HC_CONTINUE;
    if (r->o.on_data && len > 0) {
        r->depth++;
        rc = r->o.on_data(&r->base, at, len, r->o.ud);
        r->depth--;
    }
    return after_user(r, p, rc);
}

static int on_message_complete(http_parser *p)
{
    ev_req_t *r = req_of(p);
    if (p->status_code < 200) {
        head_reset(r); /* 1xx: the final response follows */
        return 0;
    }
    r->complete = true;
    http_parser_pause(p, 1); /* stop at the end of this message */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static struct timeval *idle_tv(ev_req_t *r, struct timeval *tv);

/* Feeds response bytes (len 0: the peer closed) and acts on where the parser
 * stopped. from_held: data is r->held's unparsed rest (a resume). Every path
 * that ends r returns right after. */
static void pump(ev_req_t *r, const char *data, size_t len, bool from_held)
{
    if (len > 0)
        r->got_bytes = true;
    size_t n = http_parser_execute(&r->parser, &parser_settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
    if (r->cancelled) { /* cm_hc_cancel from a callback */
        release(r);
        return;
    }
    if (r->aborted) {
        finish(r, CM_HC_EABORTED, "aborted by callback", false);
        return;
    }
    if (r->complete) {
        /* reusable when the peer keeps it alive and sent nothing more */
        bool keep = len > 0 && n == len && http_should_keep_alive(&r->parser);
        if (keep)
            r->conn->served++;
        finish(r, CM_HC_OK, NULL, keep);
        return;
    }
    if (err == HPE_PAUSED) { /* paused by the user in on_headers/on_body */
        if (from_held) {
            r->heldoff += n;
        } else if (n < len) {
            free(r->held);
            r->heldlen = len - n;
            r->held = cm_xmalloc(r->heldlen);
            memcpy(r->held, data + n, r->heldlen);
            r->heldoff = 0;
        }
        ev_conn_watch(r->conn, 0, NULL);
        return;
    }
    if (from_held)
        r->heldoff = r->heldlen;
    if (err != HPE_OK) {
        char detail[128];
        if (r->too_big) {
            snprintf(detail, sizeof(detail), "response head larger than %zu bytes", r->hmax);
            finish(r, CM_HC_ETOOBIG, detail, false);
        } else if (r->bad_status) {
            snprintf(detail, sizeof(detail), "response status %u is not an HTTP status", r->parser.status_code);
            finish(r, CM_HC_EPROTO, detail, false);
        } else if (len == 0 && err == HPE_INVALID_EOF_STATE) {
            broken(r, "connection closed");
        } else {
            snprintf(detail, sizeof(detail), "invalid response: %s", http_errno_description(err));
            finish(r, CM_HC_EPROTO, detail, false);
        }
        return;
    }
    if (len == 0) {
        broken(r, "connection closed"); /* EOF the parser did not mind, without a whole message */
        return;
    }
    if (from_held) { /* all held bytes parsed: read the socket again */
        struct timeval tv;
        ev_conn_watch(r->conn, EV_READ, idle_tv(r, &tv));
    }
}

/* ---- the connection's event ---- */

static struct timeval *idle_tv(ev_req_t *r, struct timeval *tv)
{
    if (r->o.idle_timeout_s <= 0)
        return NULL;
    tv->tv_sec = r->o.idle_timeout_s;
    tv->tv_usec = 0;
    return tv;
}

/* Writes what is left of the request; false when the connection failed. */
static bool flush_out(ev_conn_t *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->outoff += (size_t)w;
    }
    free(c->out);
    c->out = NULL;
    c->outlen = c->outoff = 0;
    return true;
}

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
    ev_conn_t *c = arg;
    ev_req_t *r = c->req;
    char buf[READ_CHUNK];
    if (!r) { /* idle: the peer closed it, or sent what nobody asked for, or it aged */
        ev_conn_drop_idle(c);
        return;
    }
    struct timeval tv;
    if (what & EV_TIMEOUT) {
        char detail[96];
        snprintf(detail, sizeof(detail), "no data from the peer for %ld s", r->o.idle_timeout_s);
        finish(r, CM_HC_ETIMEOUT, detail, false);
        return;
    }
    if (what & EV_WRITE) {
        if (r->connecting) {
            int err = 0;
            socklen_t el = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                char detail[128];
                snprintf(detail, sizeof(detail), "cannot connect to %s:%u: %s", r->pool->host, r->pool->port,
                         strerror(err ? err : errno));
                finish(r, CM_HC_ECONNECT, detail, false);
                return;
            }
            r->connecting = false;
        }
        if (!flush_out(c)) {
            broken(r, strerror(errno));
            return;
        }
        if (c->outoff >= c->outlen)
            ev_conn_watch(c, r->paused ? 0 : EV_READ, idle_tv(r, &tv));
        if (!(what & EV_READ))
            return;
    }
    if (!(what & EV_READ) || r->paused)
        return;
    if (r->connecting) { /* readable before writable: the connect failed */
        char detail[128];
        snprintf(detail, sizeof(detail), "cannot connect to %s:%u", r->pool->host, r->pool->port);
        finish(r, CM_HC_ECONNECT, detail, false);
        return;
    }
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        broken(r, strerror(errno));
        return;
    }
    pump(r, buf, (size_t)n, false); /* n == 0: the peer closed */
}

/* ---- timers and deferred work ---- */

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
        snprintf(detail, sizeof(detail), "no complete response within %ld ms", r->o.timeout_ms);
        finish(r, CM_HC_ETIMEOUT, detail, false);
        return;
    }
    if (r->connecting) {
        snprintf(detail, sizeof(detail), "cannot connect to %s:%u within %lu ms", r->pool->host, r->pool->port,
                 (unsigned long)elapsed);
        finish(r, CM_HC_ECONNECT, detail, false);
        return;
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
    if (r->pending != 1) {
        finish(r, r->pending, r->detail, false);
        return;
    }
    if (r->retry_due) {
        r->retry_due = false;
        send_req(r);
        return;
    }
    if (r->paused || !r->conn)
        return;
    /* resumed: the held bytes first, then the socket again */
    http_parser_pause(&r->parser, 0);
    if (r->held && r->heldoff < r->heldlen) {
        pump(r, r->held + r->heldoff, r->heldlen - r->heldoff, true);
        return; /* pump watches the socket again or has ended r */
    }
    struct timeval tv;
    if (!r->connecting && r->conn->outoff >= r->conn->outlen)
        ev_conn_watch(r->conn, EV_READ, idle_tv(r, &tv));
}

/* ---- sending ---- */

static size_t head_size(const ev_req_t *r)
{
    size_t n = strlen(r->method->name) + strlen(r->path) + strlen(r->pool->authority) + 96; /* + request line, Host, Content-Length */
    for (size_t i = 0; i < r->nh; i++)
        n += strlen(r->hname[i]) + strlen(r->hval[i]) + 4;
    return n;
}

/* The request head into dst (head_size bytes); returns its length. */
static size_t build_head(const ev_req_t *r, char *dst)
{
    char *p = dst;
    p = cm_put_str(p, r->method->name);
    *p++ = ' ';
    p = cm_put_str(p, r->path);
    p = cm_put_str(p, " HTTP/1.1\r\nHost: ");
    p = cm_put_str(p, r->pool->authority);
    p = cm_put_str(p, "\r\n");
    for (size_t i = 0; i < r->nh; i++) {
        p = cm_put_str(p, r->hname[i]);
        p = cm_put_str(p, ": ");
        p = cm_put_str(p, r->hval[i]);
        p = cm_put_str(p, "\r\n");
    }
    if (r->o.body_len > 0 || r->method->length) {
        p = cm_put_str(p, "Content-Length: ");
        p = cm_put_uint(p, r->o.body_len, 10);
        p = cm_put_str(p, "\r\n");
    }
    p = cm_put_str(p, "\r\n");
    return (size_t)(p - dst);
}

static void send_req(ev_req_t *r)
{
    hc_ev_t *h = r->h;
    ev_pool_t *p = r->pool;
    r->reused = false;
    if (!r->retried && (r->conn = ev_conn_take(p)) != NULL) {
        r->reused = r->conn->served > 0;
        r->connecting = false;
    } else {
        r->conn = ev_conn_new(h->base, p, conn_cb);
        if (!r->conn) {
            char detail[128];
            snprintf(detail, sizeof(detail), "cannot connect to %s:%u: %s", p->host, p->port, strerror(errno));
            fail(r, CM_HC_ECONNECT, detail);
            return;
        }
        r->connecting = true;
    }
    ev_conn_t *c = r->conn;
    c->req = r;
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    head_reset(r);
    r->head_done = r->got_bytes = r->complete = false;
    r->t_start = r->t_start ? r->t_start : cm_now_ms();

    char stackbuf[HEAD_STACK];
    size_t need = head_size(r);
    char *head = need <= sizeof(stackbuf) ? stackbuf : cm_xmalloc(need);
    size_t hl = build_head(r, head);
    struct iovec iov[2] = { { head, hl }, { (void *)r->o.body, r->o.body_len } };
    size_t total = hl + r->o.body_len, done = 0;
    if (!r->connecting) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = r->o.body_len ? 2 : 1 };
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w > 0)
            done = (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            if (head != stackbuf)
                free(head);
            broken(r, strerror(e));
            return;
        }
    }
    struct timeval tv;
    if (done < total) { /* the rest waits for the socket (or the connect) */
        c->outlen = total - done;
        c->outoff = 0;
        c->out = cm_xmalloc(c->outlen);
        size_t off = 0;
        if (done < hl) {
            memcpy(c->out, head + done, hl - done);
            off = hl - done;
            done = hl;
        }
        if (r->o.body_len > 0)
            memcpy(c->out + off, (const char *)r->o.body + (done - hl), r->o.body_len - (done - hl));
        ev_conn_watch(c, EV_READ | EV_WRITE, idle_tv(r, &tv));
    } else {
        ev_conn_watch(c, EV_READ, idle_tv(r, &tv));
    }
    if (head != stackbuf)
        free(head);
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
        if (!colon || colon == p || strpbrk(p, "\r\n"))
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

static const method_t *method_of(const char *m)
{
    static const method_t known[] = { { "GET", false, false },   { "POST", true, false }, { "PUT", true, false },
                                      { "DELETE", false, false }, { "PATCH", true, false }, { "HEAD", false, true } };
    for (size_t i = 0; i < CM_ARRAY_LEN(known); i++)
        if (strcmp(m, known[i].name) == 0)
            return &known[i];
    return NULL;
}

/* ---- the transport's interface ---- */

hc_ev_t *hc_ev_new(struct event_base *base, cm_closer_t *closer)
{
    hc_ev_t *h = cm_xcalloc(1, sizeof(*h));
    h->base = base;
    h->pools.closer = closer;
    return h;
}

void hc_ev_free(hc_ev_t *h)
{
    if (!h)
        return;
    ev_req_t *r;
    while ((r = LIST_FIRST(&h->live))) {
        r->cancelled = true;
        release(r);
    }
    ev_pools_free(&h->pools);
    free(h);
}

cm_hc_req_t *hc_ev_request(hc_ev_t *h, const cm_hc_opts_t *opts)
{
    const char *path;
    const method_t *method = method_of(opts->method ? opts->method : "GET");
    if (!opts->no_proxy || !method || strpbrk(opts->url, " \r\n\t"))
        return NULL;
    ev_pool_t *pool = ev_pool_for(&h->pools, opts->url, &path);
    if (!pool)
        return NULL;
    ev_req_t *r = cm_xcalloc(1, sizeof(*r));
    r->base.ev = true;
    r->h = h;
    r->pool = pool;
    r->method = method;
    r->pending = 1;
    if (!copy_strings(r, path, opts->headers)) {
        free(r->blk);
        free(r);
        return NULL; /* a header line libcurl may make sense of */
    }
    r->o = *opts;
    r->o.url = NULL;
    r->o.headers = NULL;
    r->hmax = opts->max_header_bytes ? opts->max_header_bytes : 64 * 1024;
    evtimer_assign(&r->timer, h->base, on_timer, r); /* in r: no allocation per request */
    evtimer_assign(&r->later, h->base, on_later, r);
    LIST_INSERT_HEAD(&h->live, r, link);
    h->active++;
    r->starting = true;
    send_req(r);
    r->starting = false;
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
    release(r);
}

void hc_ev_pause(cm_hc_req_t *base)
{
    ev_req_t *r = (ev_req_t *)(void *)base;
    if (r->paused || r->cancelled)
        return;
    r->paused = true;
    if (r->depth > 0)
        return; /* the parser callback stops the parser; pump stops the socket */
    if (r->conn && !r->connecting && r->conn->outoff >= r->conn->outlen)
        ev_conn_watch(r->conn, 0, NULL);
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
