/* http_client_ev: http_client's own transport, for plain HTTP to a numeric
 * address without a proxy (the router's path to its nodes): HTTP/1.1 written
 * by hand, one libevent event per connection, and the http_parser library
 * for the response. Prefix hce_.
 *
 * Why a transport of its own: a proxied request crosses it twice per request
 * and nothing else does as much per byte. libcurl's multi interface cost ~66k
 * instructions of the router's ~155k per proxied 1 KB request; libevent's
 * evhttp_connection, used before this file, ~30k of ~96k (printf per request
 * header, sscanf per status line, a malloc per header, and two epoll_ctl
 * calls per request from its disable/enable of reading). Here the request
 * head is copied into one buffer and written with the body in one sendmsg,
 * the response is read with one recv per wake-up (no FIONREAD ioctl) into a
 * stack buffer and parsed in place by http_parser, body bytes go to on_data
 * straight from that buffer, and a connection's event stays registered for
 * its whole life: no epoll_ctl per request. libcurl (http_client_curl.c)
 * stays for HTTPS, host names and proxies.
 *
 * Connections (http_client_pool.c): one request at a time each; idle ones are
 * kept per upstream (the origin as the URL spells it), watched for the peer
 * closing them, and reused. A request that fails before any response byte on
 * a reused connection is sent once more on a fresh one (hc_retry_stale).
 *
 * Callbacks and re-entrancy: user callbacks run only from this file's event
 * callbacks, never inside the request call. base.depth > 0 while one runs:
 * cancel from there only marks the request and the code after the callback
 * ends it; pause from on_data stops the parser right after that chunk and the
 * rest of the bytes read are kept in r->held for resume. */
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

#define READ_CHUNK 65536 /* one recv per wake-up at most this much */
#define HEAD_STACK 1024  /* request heads up to this size are built on the stack */

typedef struct hce_req hce_req_t;

typedef struct {
    hc_transport_t base;
    struct event_base *evb;
    hcp_pools_t pools;
    LIST_HEAD(, hce_req) live; /* every request not yet released */
    size_t active;
} hce_t;

typedef struct {
    const char *name;
    bool length; /* Content-Length even without a body */
    bool head;   /* the response has no body */
} method_t;

struct hce_req {
    cm_hc_req_t base;
    hce_t *h;
    hcp_pool_t *pool;             /* held while r lives */
    hcp_conn_t *conn;
    char *blk;                    /* path and header lines, copied */
    const char *path;
    const char **hname, **hval;   /* in blk */
    size_t nh;
    const method_t *method;
    http_parser parser;
    struct event timer;           /* connect and whole-transfer deadlines */
    struct event later;           /* resume, retry, failures, outside the caller's stack */
    char *held;                   /* response bytes read but not parsed (paused) */
    size_t heldlen, heldoff;
    uint64_t t_start;
    int pending;                  /* a failure to report from `later`; 1: none */
    bool reused, retried, retry_due, connecting, got_bytes, complete, starting;
    bool tmo_other;               /* the connection's timeout is not the idle one (idle_tv) */
    char detail[160];             /* of the failure in pending */
    LIST_ENTRY(hce_req) link;     /* h->live */
};

static void conn_cb(evutil_socket_t fd, short what, void *arg);
static struct timeval *idle_tv(hce_req_t *r, struct timeval *tv);
static void send_req(hce_req_t *r);
static void pump(hce_req_t *r, const char *data, size_t len, bool from_held);

/* ---- request lifetime ---- */

/* Ends r without a callback; a connection still with it is closed (it is
 * mid-exchange: finish hands a reusable one back first). */
static void release(hce_req_t *r)
{
    hce_t *h = r->h;
    if (r->conn) {
        hcp_conn_close(r->conn);
        r->conn = NULL;
    }
    hcp_pool_release(r->pool);
    LIST_REMOVE(r, link);
    event_del(&r->timer);
    event_del(&r->later);
    hc_head_free(&r->base.head);
    free(r->held);
    free(r->blk);
    free(r);
    h->active--;
}

static void finish(hce_req_t *r, int result, const char *detail, bool keep_conn)
{
    if (keep_conn && r->conn) {
        hcp_conn_put(r->conn); /* free for the next request before on_done runs */
        r->conn = NULL;
    }
    hc_deliver_done(&r->base, result, detail);
    release(r);
}

static void later(hce_req_t *r)
{
    event_active(&r->later, EV_TIMEOUT, 1);
}

/* A failure found inside the request call is reported from the loop. */
static void fail(hce_req_t *r, int result, const char *detail)
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
static void broken(hce_req_t *r, const char *why)
{
    if (hc_retry_stale(r->reused, r->got_bytes, r->retried)) {
        hcp_conn_close(r->conn);
        r->conn = NULL;
        r->retried = true;
        r->retry_due = true;
        later(r);
        return;
    }
    char detail[128];
    snprintf(detail, sizeof(detail), "%s %s", why,
             r->base.head_done ? "during the response body" : "before the response");
    fail(r, CM_HC_EIO, detail); /* deferred when it broke inside the request call */
}

/* ---- the response, through http_parser ---- */

static hce_req_t *req_of(http_parser *p)
{
    return p->data;
}

/* http_parser hands names and values in pieces (a piece per read); after
 * the head, those of a chunked body's trailer, kept only for on_trailers
 * (http_parser bounds them otherwise, at 80 KiB). */
static int on_field(http_parser *p, const char *at, size_t len)
{
    cm_hc_req_t *b = &req_of(p)->base;
    if (b->head_done && !hc_wants_trailers(b))
        return 0;
    return hc_head_field(&b->head, at, len) ? 1 : 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    cm_hc_req_t *b = &req_of(p)->base;
    if (b->head_done && !hc_wants_trailers(b))
        return 0;
    return hc_head_value(&b->head, at, len) ? 1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    hce_req_t *r = req_of(p);
    int rc = hc_head_end(&r->base, p->status_code);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return 0; /* an interim response: its message ends, the real one follows */
    if (r->base.paused) {
        http_parser_pause(p, 1);
    } else if (r->tmo_other && (r->conn->mask & EV_READ)) {
        struct timeval tv; /* the head is in: from now on the idle timeout */
        hcp_conn_watch(r->conn, r->conn->mask, idle_tv(r, &tv));
    }
    return r->method->head ? 1 : 0; /* 1: no body follows */
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hce_req_t *r = req_of(p);
    if (!hc_deliver_data(&r->base, at, len))
        return -1;
    if (r->base.paused) /* paused from on_data: stop right after this chunk */
        http_parser_pause(p, 1);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    hce_req_t *r = req_of(p);
    if (p->status_code < 200)
        return 0; /* 1xx: the final response follows */
    if (hc_wants_trailers(&r->base) && hc_deliver_trailers(&r->base) < 0)
        return -1; /* over the bound, or cancelled from on_trailers */
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

/* The connection's read timeout: the head deadline while the head is
 * awaited when it is the shorter one (or there is no idle limit), else the
 * idle timeout. The head deadline rides on the connection's own event, not
 * on a timer of its own, so that a request costs no extra timer operations;
 * conn_cb checks it against t_start, and re-arms for the rest of it when
 * the idle timeout fired first. Only when the event ends up armed with
 * something else than the idle timeout (tmo_other) is it re-armed when the
 * head arrives: with the router's settings (head 300 s, idle 120 s) a
 * request pays no timer operation for the switch. */
static struct timeval *idle_tv(hce_req_t *r, struct timeval *tv)
{
    const cm_hc_opts_t *o = &r->base.o;
    long idle_ms = o->idle_timeout_s > 0 ? o->idle_timeout_s * 1000 : 0;
    if (o->head_timeout_ms > 0 && !r->base.head_done && (idle_ms == 0 || o->head_timeout_ms < idle_ms)) {
        r->tmo_other = true;
        tv->tv_sec = o->head_timeout_ms / 1000;
        tv->tv_usec = (o->head_timeout_ms % 1000) * 1000;
        return tv;
    }
    r->tmo_other = false;
    if (idle_ms == 0)
        return NULL;
    tv->tv_sec = o->idle_timeout_s;
    tv->tv_usec = 0;
    return tv;
}

/* The parser stopped on an error (err): the reason to on_done. */
static void parse_failed(hce_req_t *r, enum http_errno err, size_t len)
{
    char detail[128];
    switch (hc_stop_result(&r->base)) {
    case CM_HC_ETOOBIG:
        snprintf(detail, sizeof(detail), "response %s larger than %zu bytes",
                 r->base.head_done ? "head and trailers" : "head", hc_head_max(&r->base.o));
        finish(r, CM_HC_ETOOBIG, detail, false);
        return;
    case CM_HC_EPROTO:
        snprintf(detail, sizeof(detail), "response status %u is not an HTTP status", r->parser.status_code);
        finish(r, CM_HC_EPROTO, detail, false);
        return;
    default:
        break;
    }
    if (len == 0 && err == HPE_INVALID_EOF_STATE) {
        broken(r, "connection closed");
        return;
    }
    snprintf(detail, sizeof(detail), "invalid response: %s", http_errno_description(err));
    finish(r, CM_HC_EPROTO, detail, false);
}

/* Feeds response bytes (len 0: the peer closed) and acts on where the parser
 * stopped. from_held: data is r->held's unparsed rest (a resume). Every path
 * that ends r returns right after. */
static void pump(hce_req_t *r, const char *data, size_t len, bool from_held)
{
    if (len > 0)
        r->got_bytes = true;
    size_t n = http_parser_execute(&r->parser, &parser_settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
    if (r->base.cancelled) { /* cm_hc_cancel from a callback */
        release(r);
        return;
    }
    if (r->base.aborted) {
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
        hcp_conn_watch(r->conn, 0, NULL);
        return;
    }
    if (from_held)
        r->heldoff = r->heldlen;
    if (err != HPE_OK) {
        parse_failed(r, err, len);
        return;
    }
    if (len == 0) {
        broken(r, "connection closed"); /* EOF the parser did not mind, without a whole message */
        return;
    }
    if (from_held) { /* all held bytes parsed: read the socket again */
        struct timeval tv;
        hcp_conn_watch(r->conn, EV_READ, idle_tv(r, &tv));
    }
}

/* ---- the connection's event ---- */

/* Writes what is left of the request; false when the connection failed. */
static bool flush_out(hcp_conn_t *c)
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

/* The connect to r's upstream failed: err (0: unknown) and after how long
 * (NULL: not a timeout) in the detail. The host is numeric, so it is short:
 * %.64s only tells the compiler so. */
static void connect_failed(hce_req_t *r, int err, const char *after)
{
    char detail[160];
    const cm_origin_t *o = &r->pool->origin;
    snprintf(detail, sizeof(detail), "cannot connect to %.64s:%u%s%s%s%s", o->host, o->port, err ? ": " : "",
             err ? strerror(err) : "", after ? " within " : "", after ? after : "");
    fail(r, CM_HC_ECONNECT, detail); /* deferred when it failed inside the request call */
}

/* Writable: the connect ended (true when it worked) and what is left of the
 * request goes out. false when r has ended. */
static bool on_writable(hce_req_t *r, hcp_conn_t *c)
{
    if (r->connecting) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            connect_failed(r, err ? err : errno, NULL);
            return false;
        }
        r->connecting = false;
    }
    if (!flush_out(c)) {
        broken(r, strerror(errno));
        return false;
    }
    struct timeval tv;
    if (c->outoff >= c->outlen)
        hcp_conn_watch(c, r->base.paused ? 0 : EV_READ, idle_tv(r, &tv));
    return true;
}

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
    hcp_conn_t *c = arg;
    hce_req_t *r = c->req;
    char buf[READ_CHUNK];
    if (!r) { /* idle: the peer closed it, or sent what nobody asked for, or it aged */
        hcp_conn_drop_idle(c);
        return;
    }
    if (what & EV_TIMEOUT) {
        char detail[96];
        long head_ms = r->base.o.head_timeout_ms;
        if (head_ms > 0 && !r->base.head_done) {
            uint64_t elapsed = cm_now_ms() - r->t_start;
            if (elapsed < (uint64_t)head_ms) { /* re-armed since the request went out, or the idle timeout fired */
                uint64_t left = (uint64_t)head_ms - elapsed;
                struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
                hcp_conn_watch(c, c->mask, &tv);
                r->tmo_other = true; /* the head's rest, not the idle timeout */
                return;
            }
            snprintf(detail, sizeof(detail), "no response head within %ld ms", head_ms);
            finish(r, CM_HC_ETIMEOUT, detail, false);
            return;
        }
        snprintf(detail, sizeof(detail), "no data from the peer for %ld s", r->base.o.idle_timeout_s);
        finish(r, CM_HC_ETIMEOUT, detail, false);
        return;
    }
    if ((what & EV_WRITE) && !on_writable(r, c))
        return;
    if (!(what & EV_READ) || r->base.paused)
        return;
    if (r->connecting) { /* readable before writable: the connect failed */
        connect_failed(r, 0, NULL);
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

static void arm_timer(hce_req_t *r)
{
    const cm_hc_opts_t *o = &r->base.o;
    uint64_t now = cm_now_ms(), due = UINT64_MAX;
    if (r->connecting)
        due = r->t_start + (uint64_t)hc_connect_timeout_ms(o);
    if (o->timeout_ms > 0 && r->t_start + (uint64_t)o->timeout_ms < due)
        due = r->t_start + (uint64_t)o->timeout_ms;
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
    hce_req_t *r = arg;
    (void)fd;
    (void)what;
    if (r->base.cancelled)
        return;
    uint64_t elapsed = cm_now_ms() - r->t_start;
    char detail[128];
    if (r->base.o.timeout_ms > 0 && elapsed >= (uint64_t)r->base.o.timeout_ms) {
        snprintf(detail, sizeof(detail), "no complete response within %ld ms", r->base.o.timeout_ms);
        finish(r, CM_HC_ETIMEOUT, detail, false);
        return;
    }
    if (r->connecting) {
        snprintf(detail, sizeof(detail), "%lu ms", (unsigned long)elapsed);
        connect_failed(r, 0, detail);
        return;
    }
    arm_timer(r);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    hce_req_t *r = arg;
    (void)fd;
    (void)what;
    if (r->base.cancelled)
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
    if (r->base.paused || !r->conn)
        return;
    /* resumed: the held bytes first, then the socket again */
    http_parser_pause(&r->parser, 0);
    if (r->held && r->heldoff < r->heldlen) {
        pump(r, r->held + r->heldoff, r->heldlen - r->heldoff, true);
        return; /* pump watches the socket again or has ended r */
    }
    struct timeval tv;
    if (!r->connecting && r->conn->outoff >= r->conn->outlen)
        hcp_conn_watch(r->conn, EV_READ, idle_tv(r, &tv));
}

/* ---- sending ---- */

static size_t head_size(const hce_req_t *r)
{
    /* + the request line's spaces and version, Host, Content-Length */
    size_t n = strlen(r->method->name) + strlen(r->path) + strlen(r->pool->origin.authority) + 96;
    for (size_t i = 0; i < r->nh; i++)
        n += strlen(r->hname[i]) + strlen(r->hval[i]) + 4;
    return n;
}

/* The request head into dst (head_size bytes); returns its length. */
static size_t build_head(const hce_req_t *r, char *dst)
{
    char *p = dst;
    p = cm_put_str(p, r->method->name);
    *p++ = ' ';
    p = cm_put_str(p, r->path);
    p = cm_put_str(p, " HTTP/1.1\r\nHost: ");
    p = cm_put_str(p, r->pool->origin.authority);
    p = cm_put_str(p, "\r\n");
    for (size_t i = 0; i < r->nh; i++) {
        p = cm_put_str(p, r->hname[i]);
        p = cm_put_str(p, ": ");
        p = cm_put_str(p, r->hval[i]);
        p = cm_put_str(p, "\r\n");
    }
    if (r->base.o.body_len > 0 || r->method->length) {
        p = cm_put_str(p, "Content-Length: ");
        p = cm_put_uint(p, r->base.o.body_len, 10);
        p = cm_put_str(p, "\r\n");
    }
    p = cm_put_str(p, "\r\n");
    return (size_t)(p - dst);
}

/* A connection for r: an idle one of its upstream (not for a retry), else a
 * new one. false when none could be had (r has failed). */
static bool get_conn(hce_req_t *r)
{
    hcp_pool_t *p = r->pool;
    r->reused = false;
    if (!r->retried && (r->conn = hcp_conn_take(p)) != NULL) {
        r->reused = r->conn->served > 0;
        r->connecting = false;
        return true;
    }
    r->conn = hcp_conn_new(r->h->evb, p, conn_cb);
    if (!r->conn) {
        connect_failed(r, errno, NULL);
        return false;
    }
    r->connecting = true;
    return true;
}

/* Keeps what the socket did not take of head (hl bytes) and the body (done
 * bytes of both went out) for the connection's writable event. */
static void keep_rest(hce_req_t *r, const char *head, size_t hl, size_t done)
{
    hcp_conn_t *c = r->conn;
    size_t blen = r->base.o.body_len;
    c->outlen = hl + blen - done;
    c->outoff = 0;
    c->out = cm_xmalloc(c->outlen);
    size_t off = 0;
    if (done < hl) {
        memcpy(c->out, head + done, hl - done);
        off = hl - done;
        done = hl;
    }
    if (blen > 0)
        memcpy(c->out + off, (const char *)r->base.o.body + (done - hl), blen - (done - hl));
}

static void send_req(hce_req_t *r)
{
    if (!get_conn(r))
        return;
    hcp_conn_t *c = r->conn;
    c->req = r;
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    hc_head_reset(&r->base.head);
    r->base.head_done = r->got_bytes = r->complete = false;
    r->t_start = r->t_start ? r->t_start : cm_now_ms();

    char stackbuf[HEAD_STACK];
    size_t need = head_size(r);
    char *head = need <= sizeof(stackbuf) ? stackbuf : cm_xmalloc(need);
    size_t hl = build_head(r, head);
    const cm_hc_opts_t *o = &r->base.o;
    struct iovec iov[2] = { { head, hl }, { (void *)o->body, o->body_len } };
    size_t done = 0;
    if (!r->connecting) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = o->body_len ? 2 : 1 };
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
    if (done < hl + o->body_len) { /* the rest waits for the socket (or the connect) */
        keep_rest(r, head, hl, done);
        hcp_conn_watch(c, EV_READ | EV_WRITE, idle_tv(r, &tv));
    } else {
        hcp_conn_watch(c, EV_READ, idle_tv(r, &tv));
    }
    if (head != stackbuf)
        free(head);
    arm_timer(r);
}

/* A request header line the own transport can send as it is: a name before
 * the ':' and no line break. */
static bool header_ok(const char *line)
{
    const char *colon = strchr(line, ':');
    return colon && colon != line && !strpbrk(line, "\r\n");
}

/* Copies the path and the "Name: value" lines (checked by hce_accepts) into
 * one block, split. */
static void copy_strings(hce_req_t *r, const char *path, const char *const *headers)
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
        len = strlen(headers[i]);
        memcpy(p, headers[i], len + 1);
        size_t nl = 0, voff = 0;
        hc_header_split(p, len, &nl, &voff);
        p[nl] = '\0';
        r->hname[i] = p;
        r->hval[i] = p + voff;
        p += len + 1;
    }
    r->nh = n;
}

static const method_t *method_of(const char *m)
{
    static const method_t known[] = { { "GET", false, false },   { "POST", true, false }, { "PUT", true, false },
                                      { "DELETE", false, false }, { "PATCH", true, false }, { "HEAD", false, true } };
    if (!m)
        return &known[0];
    for (size_t i = 0; i < CM_ARRAY_LEN(known); i++)
        if (strcmp(m, known[i].name) == 0)
            return &known[i];
    return NULL;
}

/* ---- the transport's interface ---- */

static const hc_ops_t hce_ops;

bool hce_accepts(hc_transport_t *t, const cm_hc_opts_t *o, hc_route_t *route)
{
    hce_t *h = (hce_t *)(void *)t;
    /* the cheap checks first: libcurl's requests should pay nothing here */
    if (!o->no_proxy || o->force_curl || strncmp(o->url, "http://", 7) != 0 ||
        !(route->method = method_of(o->method)) || strpbrk(o->url, " \t\r\n#"))
        return false;
    for (size_t i = 0; o->headers && o->headers[i]; i++)
        if (!header_ok(o->headers[i]))
            return false; /* a header line libcurl may make sense of */
    hcp_pool_t *p = hcp_pool_for(&h->pools, o->url, &route->target);
    if (!p || !p->direct)
        return false;
    route->pool = p;
    return true;
}

static cm_hc_req_t *hce_request(hc_transport_t *t, const cm_hc_opts_t *opts, const hc_route_t *route)
{
    hce_t *h = (hce_t *)(void *)t;
    hce_req_t *r = cm_xcalloc(1, sizeof(*r));
    hc_req_init(&r->base, &hce_ops, opts);
    r->h = h;
    r->pool = route->pool;
    hcp_pool_hold(r->pool);
    r->method = route->method;
    r->pending = 1;
    copy_strings(r, route->target, opts->headers);
    evtimer_assign(&r->timer, h->evb, on_timer, r); /* in r: no allocation per request */
    evtimer_assign(&r->later, h->evb, on_later, r);
    LIST_INSERT_HEAD(&h->live, r, link);
    h->active++;
    r->starting = true;
    send_req(r);
    r->starting = false;
    return &r->base;
}

static void hce_cancel(cm_hc_req_t *base)
{
    hce_req_t *r = (hce_req_t *)(void *)base;
    r->base.cancelled = true;
    if (r->base.depth > 0)
        return; /* inside one of its callbacks: the code after it ends the request */
    release(r);
}

static void hce_pause(cm_hc_req_t *base)
{
    hce_req_t *r = (hce_req_t *)(void *)base;
    r->base.paused = true;
    if (r->base.depth > 0)
        return; /* the parser callback stops the parser; pump stops the socket */
    if (r->conn && !r->connecting && r->conn->outoff >= r->conn->outlen)
        hcp_conn_watch(r->conn, 0, NULL);
}

static void hce_resume(cm_hc_req_t *base)
{
    hce_req_t *r = (hce_req_t *)(void *)base;
    r->base.paused = false;
    later(r); /* held bytes first, then reading again, outside the caller's stack */
}

static size_t hce_active(const hc_transport_t *t)
{
    return ((const hce_t *)(const void *)t)->active;
}

static void hce_free(hc_transport_t *t)
{
    hce_t *h = (hce_t *)(void *)t;
    hce_req_t *r;
    while ((r = LIST_FIRST(&h->live))) {
        r->base.cancelled = true;
        release(r);
    }
    hcp_pools_free(&h->pools);
    free(h);
}

static const hc_ops_t hce_ops = {
    .name = "own",
    .request = hce_request,
    .cancel = hce_cancel,
    .pause = hce_pause,
    .resume = hce_resume,
    .active = hce_active,
    .free = hce_free,
};

hc_transport_t *hce_new(struct event_base *base, cm_closer_t *closer)
{
    hce_t *h = cm_xcalloc(1, sizeof(*h));
    h->base.ops = &hce_ops;
    h->evb = base;
    hcp_pools_init(&h->pools, closer);
    LIST_INIT(&h->live);
    return &h->base;
}
