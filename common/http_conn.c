/* http_conn: one client connection of the HTTP server. Reads with one recv
 * per wake-up into a stack buffer, parses in place with http_parser, and
 * writes replies straight to the socket (libevent queues only what the
 * socket does not take). Timeouts: a new connection's first request head
 * must be complete within header_timeout_secs of accept, a later one's
 * within header_timeout_secs of its first byte, the whole request (head and
 * body) within read_timeout_secs of its first byte (else 408); an idle
 * keep-alive connection closes after keepalive_timeout_secs, and one whose
 * client stops reading its reply after timeout_secs.
 *
 * Framing is strict: http_parser (Debian's build is not HTTP_PARSER_STRICT)
 * accepts bare LF line ends, obs-fold, whitespace before a header's colon
 * (it hands "Content-Length " to us as the name, yet frames by it) and
 * chunk data not followed by CRLF. Such requests are what request smuggling
 * through a front proxy that reads them differently is made of, so a small
 * scanner checks the raw bytes of each head and chunked body before the
 * parser sees them, and answers 400. */
#include "http_server_int.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define PENDING_MAX 65536     /* pipelined bytes held while a request is handled */
#define LINGER_MS 2000        /* reading what a client still sends after our close */
#define LINGER_BYTES (1 << 20)

#define HEADER_TIMEOUT_MS 10000 /* header_timeout_secs <= 0 (or the keep-alive one, if shorter) */
#define SENDFILE_CALL_MAX 0x7ffff000 /* what Linux's sendfile moves per call at most */


static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static int timeout_ms(const hs_conn_t *c)
{
    int s = c->w->srv->opts.timeout_secs;
    return (s > 0 ? s : 60) * 1000;
}

/* Idle between requests on a kept-alive connection. */
static int keepalive_ms(const hs_conn_t *c)
{
    int s = c->w->srv->opts.keepalive_timeout_secs;
    return s > 0 ? s * 1000 : timeout_ms(c);
}

/* A request head, from accept (the first) or from its first byte (later ones). */
static int header_ms(const hs_conn_t *c)
{
    int s = c->w->srv->opts.header_timeout_secs;
    if (s > 0)
        return s * 1000;
    int ka = keepalive_ms(c);
    return ka < HEADER_TIMEOUT_MS ? ka : HEADER_TIMEOUT_MS;
}

/* How long a request's head and body may take to arrive. */
static int read_timeout_ms(const hs_conn_t *c)
{
    int s = c->w->srv->opts.read_timeout_secs;
    return s > 0 ? s * 1000 : timeout_ms(c);
}

static struct timeval tv_ms(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    return tv;
}

size_t hs_conn_pending(const hs_conn_t *c)
{
    return c->out ? evbuffer_get_length(c->out) : 0;
}

/* ---- the request head, stored as it is parsed ---- */

static bool head_append(hs_conn_t *c, const char *at, size_t len)
{
    cm_http_req_t *req = c->req;
    size_t limit = c->w->srv->opts.max_headers;
    c->head_bytes += len;
    if (limit && c->head_bytes > limit) {
        c->err_status = 431;
        return false;
    }
    cm_xgrow(&req->head, &req->head_cap, req->head_len + len + 1, 512);
    memcpy(req->head + req->head_len, at, len);
    req->head_len += len;
    req->head[req->head_len] = '\0'; /* what is part way in reads as a string too */
    return true;
}

static bool head_end_string(hs_conn_t *c)
{
    return head_append(c, "", 1);
}

static int on_message_begin(http_parser *p)
{
    hs_conn_t *c = p->data;
    if (!c->req)
        c->req = hs_req_new(c);
    c->state = HS_READING;
    c->started_ms = cm_now_ms();
    /* the first head is due from accept: a client that connects and waits
     * before it starts does not get a fresh header timeout by sending a byte */
    c->head_due_ms = (c->nreq++ == 0 ? c->accept_ms : c->started_ms) + (uint64_t)header_ms(c);
    c->head_bytes = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    return head_append(p->data, at, len) ? 0 : -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    cm_http_req_t *req = c->req;
    /* http_parser hands over the name with the whitespace before the colon
     * ("Transfer-Encoding ") and still frames by it: RFC 9112 5.1 says 400 */
    if (memchr(at, ' ', len) || memchr(at, '\t', len)) {
        c->err_status = 400;
        c->err_msg = "Whitespace between a header field name and its colon";
        return -1;
    }
    if (req->head_done)
        return 0; /* a chunked body's trailer: not merged into the headers */
    if (req->nhdr == 0 || req->in_value) { /* a new header: end the URL or the last value */
        if (req->nhdr == HS_MAX_HEADERS) {
            c->err_status = 431;
            return -1;
        }
        if (!head_end_string(c))
            return -1;
        req->hdr[req->nhdr][0] = (uint32_t)req->head_len;
        req->hdr[req->nhdr][1] = (uint32_t)req->head_len;
        req->nhdr++;
        req->in_value = false;
    }
    return head_append(c, at, len) ? 0 : -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    cm_http_req_t *req = c->req;
    if (req->head_done)
        return 0;
    if (!req->in_value) {
        if (!head_end_string(c))
            return -1;
        req->hdr[req->nhdr - 1][1] = (uint32_t)req->head_len;
        req->in_value = true;
    }
    return head_append(c, at, len) ? 0 : -1;
}

static bool head_ready(hs_conn_t *c);

/* What RFC 9110/9112 require of a request head that http_parser lets
 * through: 0, or the status to answer (err_msg set). */
static int head_check(hs_conn_t *c, const http_parser *p)
{
    cm_http_req_t *req = c->req;
    if (p->http_major != 1 || p->http_minor > 1) {
        c->err_msg = "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)";
        return 505;
    }
    int host = 0, auth = 0;
    const char *expect = NULL;
    for (int i = 0; i < req->nhdr; i++) {
        const char *name = req->head + req->hdr[i][0];
        switch (name[0] | 0x20) { /* the first letter, lower case: most headers stop here */
        case 'h':
            host += strcasecmp(name, "Host") == 0;
            break;
        case 'a':
            auth += strcasecmp(name, "Authorization") == 0;
            break;
        case 'e':
            if (strcasecmp(name, "Expect") == 0) {
                if (expect) {
                    c->err_msg = "Unsupported expectation";
                    return 417;
                }
                expect = req->head + req->hdr[i][1];
            }
            break;
        default:
            break;
        }
    }
    if (host > 1 || (host == 0 && p->http_minor == 1)) { /* RFC 9112 3.2 */
        c->err_msg = host ? "More than one Host header" : "HTTP/1.1 request without a Host header";
        return 400;
    }
    if (auth > 1) { /* which one would auth read, and which one would a proxy in front? */
        c->err_msg = "More than one Authorization header";
        return 400;
    }
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0) { /* RFC 9110 10.1.1 */
            c->err_msg = "Unsupported expectation (only 100-continue is)";
            return 417;
        }
        req->expect_continue = true;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    cm_http_req_t *req = c->req;
    if (!head_end_string(c)) /* ends the last value, or the URL when no header came */
        return -1;
    if (req->nhdr && !req->in_value) /* a name without a value: a bad header */
        req->hdr[req->nhdr - 1][1] = (uint32_t)req->head_len - 1;
    req->head_done = true;
    int status = head_check(c, p);
    if (status) {
        c->err_status = status;
        return -1;
    }
    req->http10 = p->http_minor == 0;
    req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    req->method = http_method_str((enum http_method)p->method);
    req->is_head = p->method == HTTP_HEAD;
    if (!req->keep_alive)
        c->close_after = true;

    bool chunked = (p->flags & F_CHUNKED) != 0;
    if (!chunked && (p->content_length == ULLONG_MAX || p->content_length == 0))
        return 0; /* no body: routed when complete (now) */
    /* a body: routing, the pre hook and the limits run before any of it is
     * read (head_ready) */
    if (c->scan == SC_HEAD_END) {
        /* the scanner stopped at this head (a Transfer-Encoding line): pause
         * here, set the body's scanning up, and parse the LF that ended the
         * head again on resuming */
        c->scan_next = chunked ? SC_CSIZE : SC_NONE;
        c->head_paused = true;
        http_parser_pause(p, 1);
        return 0;
    }
    if (chunked) { /* cannot be: a chunked head has a Transfer-Encoding line */
        c->err_status = 400;
        return -1;
    }
    /* a Content-Length body, the common case: no pause (a second parser
     * call per request is a visible share of a proxied request's cost) */
    if (head_ready(c))
        return 0;
    c->answered = true; /* refused and answered: stop parsing this connection */
    return -1;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    cm_http_req_t *req = c->req;
    size_t max = req->max_body;
    if (max && req->body_len + len > max) { /* a chunked body grew too big */
        c->err_status = 413;
        return -1;
    }
    cm_xgrow(&req->body, &req->body_cap, req->body_len + len + 1, 1024);
    if (req->body_cap > req->budget_held) { /* a chunked body grew: count it */
        size_t more = req->body_cap - req->budget_held;
        if (!hs_budget_take(c->w->srv, more)) {
            c->err_status = 503;
            return -1;
        }
        req->budget_held += more;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    if (c->req->body)
        c->req->body[c->req->body_len] = '\0';
    c->scan = SC_START; /* the next request's head */
    http_parser_pause(p, 1); /* one request at a time: the rest waits */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- closing ---- */

static void conn_free(hs_conn_t *c)
{
    LIST_REMOVE(c, link);
    if (c->ip_counted)
        hs_ip_release(c->w->srv, c->ip, c->iplen);
    if (c->req) /* read, never handed on */
        hs_req_free(c->req);
    event_free(c->rev);
    event_free(c->wev);
    if (c->out)
        evbuffer_free(c->out);
    free(c->pending);
    cm_closer_close(c->w->closer, c->fd); /* after the loop has dropped it from epoll */
    free(c);
}

/* Closes the connection. A request the application owns learns it through
 * on_close; the memory goes when the current callback returns. */
static void conn_close(hs_conn_t *c)
{
    if (c->dead)
        return;
    c->dead = true;
    event_del(c->rev);
    event_del(c->wev);
    cm_http_req_t *req = c->req;
    if (req && c->state == HS_HANDLING) {
        c->req = NULL;
        req->c = NULL;
        req->closed = true;
        if (req->on_close)
            req->on_close(req, req->on_close_arg);
    }
}

/* Our side is done: shut down writing and read (and drop) what the client
 * still sends until it closes, so that unread bytes do not make the kernel
 * reset the connection and destroy the reply it has not read yet. */
static void begin_linger(hs_conn_t *c)
{
    shutdown(c->fd, SHUT_WR);
    c->state = HS_LINGER;
    c->head_bytes = 0; /* counts the bytes dropped while lingering */
    free(c->pending);
    c->pending = NULL;
    c->npending = 0;
    struct timeval tv = tv_ms(LINGER_MS);
    event_add(c->rev, &tv);
    c->rev_off = false;
}

/* ---- writing ---- */

static void write_failed(hs_conn_t *c)
{
    /* not closed here: the application may be on the stack, mid-call; the
     * read callback closes it on the loop's next turn */
    c->write_failed = true;
    event_active(c->rev, EV_READ, 1);
}

/* The connection's output queue. It drains to a socket only (evbuffer_write),
 * and says so: libevent then keeps a file segment as a sendfile chain
 * instead of mapping the file into memory (hs_conn_send_file). */
static struct evbuffer *out_queue(hs_conn_t *c)
{
    if (!c->out) {
        c->out = evbuffer_new();
        evbuffer_set_flags(c->out, EVBUFFER_FLAG_DRAINS_TO_FD);
    }
    return c->out;
}

void hs_conn_send(hs_conn_t *c, struct iovec *iov, int n)
{
    if (c->dead || c->write_failed || c->state == HS_LINGER)
        return;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    size_t sent = 0;
    if (hs_conn_pending(c) == 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                write_failed(c);
                return;
            }
            w = 0;
        }
        sent = (size_t)w;
        if (sent == total)
            return;
    }
    bool was_empty = evbuffer_get_length(out_queue(c)) == 0;
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        if (sent >= len) {
            sent -= len;
            continue;
        }
        evbuffer_add(c->out, (const char *)iov[i].iov_base + sent, len - sent);
        sent = 0;
    }
    if (was_empty) {
        struct timeval tv = tv_ms(timeout_ms(c));
        event_add(c->wev, &tv);
    }
}

void hs_conn_send_file(hs_conn_t *c, int fd, uint64_t offset, uint64_t length)
{
    if (c->dead || c->write_failed || c->state == HS_LINGER || length == 0) {
        close(fd);
        return;
    }
    if (hs_conn_pending(c) == 0) {
        /* written from this call, as hs_conn_send does: the socket takes
         * what its buffer holds (megabytes on loopback) without waiting for
         * the loop's next turn */
        off_t at = (off_t)offset;
        ssize_t w = sendfile(c->fd, fd, &at, length < SENDFILE_CALL_MAX ? (size_t)length : SENDFILE_CALL_MAX);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            close(fd);
            write_failed(c);
            return;
        }
        if (w == 0) { /* end of file before the length the head promised */
            LOG_WARN("http", "%s: file shorter than its reply's length; closing", c->peer);
            close(fd);
            write_failed(c);
            return;
        }
        if (w > 0) {
            offset += (uint64_t)w;
            length -= (uint64_t)w;
        }
        if (length == 0) {
            close(fd);
            return;
        }
    }
    /* the rest as a sendfile chain of the output queue: on_write's
     * evbuffer_write sends it from the page cache as the socket drains; the
     * queue holds a small record, never the file's bytes */
    struct evbuffer_file_segment *seg = evbuffer_file_segment_new(
        fd, (ev_off_t)offset, (ev_off_t)length, EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_LOCKING);
    if (!seg) {
        close(fd);
        write_failed(c);
        return;
    }
    struct evbuffer *out = out_queue(c);
    bool was_empty = evbuffer_get_length(out) == 0;
    int rc = evbuffer_add_file_segment(out, seg, 0, (ev_off_t)length);
    evbuffer_file_segment_free(seg); /* the queue holds its own reference; this closes fd on failure */
    if (rc != 0) {
        write_failed(c);
        return;
    }
    if (was_empty) {
        struct timeval tv = tv_ms(timeout_ms(c));
        event_add(c->wev, &tv);
    }
}

/* The queued output has gone: the next step is whatever waited for it. */
static void drained(hs_conn_t *c)
{
    cm_http_req_t *req = c->req;
    if (req && c->state == HS_HANDLING) {
        if (req->on_drain)
            req->on_drain(req, req->on_drain_arg);
        return;
    }
    if (c->dead || c->state != HS_IDLE)
        return;
    /* idle from now, not from when the reply began: a download of minutes
     * must not leave its connection with no keep-alive time left */
    c->last_ms = cm_now_ms();
    if (c->close_after)
        begin_linger(c);
    else if (c->npending)
        event_active(c->rev, EV_READ, 1);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    hs_conn_t *c = arg;
    c->in_io = true;
    int n = 0;
    if (!(what & EV_TIMEOUT) && evbuffer_get_length(c->out) > 0) {
        /* errno 0 first: a sendfile chain whose file ended early writes
         * nothing and reports nothing (libevent returns 0 as for EAGAIN),
         * and the level-triggered write event would spin on it */
        errno = 0;
        n = evbuffer_write(c->out, fd);
    }
    if (what & EV_TIMEOUT) {
        LOG_DEBUG("http", "%s: client stopped reading; closing", c->peer);
        conn_close(c);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        conn_close(c);
    } else if (n == 0 && errno == 0 && evbuffer_get_length(c->out) > 0) {
        LOG_WARN("http", "%s: file shorter than its reply's length; closing", c->peer);
        conn_close(c);
    } else if (evbuffer_get_length(c->out) == 0) {
        event_del(c->wev);
        drained(c);
    }
    c->in_io = false;
    if (c->dead)
        conn_free(c);
}

/* ---- reading ---- */

void hs_conn_request_done(hs_conn_t *c)
{
    c->req = NULL;
    c->last_ms = cm_now_ms();
    if (c->dead)
        return;
    c->state = HS_IDLE;
    if (c->rev_off) {
        struct timeval tv = tv_ms(keepalive_ms(c));
        event_add(c->rev, &tv);
        c->rev_off = false;
    }
    if (hs_conn_pending(c) > 0)
        return; /* drained() goes on */
    if (c->close_after)
        begin_linger(c);
    else if (c->npending)
        event_active(c->rev, EV_READ, 1);
}

/* Holds bytes that cannot be parsed yet (a request is being handled). */
static void keep(hs_conn_t *c, const char *data, size_t len)
{
    c->pending = cm_xrealloc(c->pending, c->npending + len);
    memcpy(c->pending + c->npending, data, len);
    c->npending += len;
    if (c->npending > PENDING_MAX && !c->rev_off) {
        event_del(c->rev); /* the client learns back-pressure from TCP */
        c->rev_off = true;
    }
}

/* Time left for the request being read: its head by head_due_ms, the whole
 * request by read_timeout_secs after its first byte. */
static int64_t read_left(const hs_conn_t *c)
{
    uint64_t due = c->started_ms + (uint64_t)read_timeout_ms(c);
    if (!c->req || !c->req->head_done)
        due = c->head_due_ms < due ? c->head_due_ms : due;
    return (int64_t)due - (int64_t)cm_now_ms();
}

static void bad_request(hs_conn_t *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
    int status = c->err_status ? c->err_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
    switch (status) {
    case 413:
        hs_protocol_error(c, 413, "request_too_large", "Request body too large");
        break;
    case 431:
        hs_protocol_error(c, 431, "headers_too_large", "Request head too large");
        break;
    case 417:
        hs_protocol_error(c, 417, "expectation_failed", c->err_msg);
        break;
    case 503:
        hs_protocol_error(c, 503, "server_busy", "Too many request bodies in flight; retry shortly");
        break;
    case 505:
        hs_protocol_error(c, 505, "http_version_not_supported", c->err_msg);
        break;
    default:
        hs_protocol_error(c, 400, "bad_request", c->err_msg ? c->err_msg : http_errno_description(e));
        break;
    }
}

/* The head of a request with a body is complete (called from
 * on_headers_complete for a Content-Length body, from feed() after the
 * parser paused at the head for a chunked one): route it, run the pre hook, apply the route's body limit and the
 * server's budget, and only then take the body (100 Continue, the buffer).
 * False when the request was answered: the connection then closes after a
 * lingering close, which reads and drops the body instead of storing it. */
static bool head_ready(hs_conn_t *c)
{
    cm_http_req_t *req = c->req;
    const http_parser *p = &c->p;
    bool keep_alive = req->keep_alive;
    /* any reply from here on says Connection: close: the body is unread */
    req->keep_alive = false;
    c->state = HS_HANDLING;
    if (!hs_route(req))
        return false; /* answered (and freed) */
    const cm_http_route_t *r = req->route;
    const cm_http_server_opts_t *o = &c->w->srv->opts;
    size_t max = o->max_body;
    if (r && o->route_max_body && o->route_max_body[r - o->routes])
        max = o->route_max_body[r - o->routes];
    req->max_body = max;
    if (!(p->flags & F_CHUNKED)) {
        if (max && p->content_length > max) {
            cm_http_reply_error(req, 413, NULL, "request_too_large", NULL,
                                "Request body too large (over %zu bytes)", max);
            return false;
        }
        size_t cap = (size_t)p->content_length + 1;
        if (!hs_budget_take(c->w->srv, cap)) {
            cm_http_add_header(req, "Retry-After", "1");
            cm_http_reply_error(req, 503, NULL, "server_busy", NULL,
                                "Too many request bodies in flight; retry shortly");
            return false;
        }
        req->budget_held = cap;
        req->body_cap = cap;
        req->body = cm_xmalloc(cap);
    }
    c->state = HS_READING;
    req->keep_alive = keep_alive;
    if (req->expect_continue && !req->http10) {
        struct iovec iov = { (void *)continue_100, sizeof(continue_100) - 1 };
        hs_conn_send(c, &iov, 1);
    }
    return true;
}

/* Parses what arrived, handing each complete request on in turn. */
static void feed(hs_conn_t *c, const char *data, size_t len)
{
    while (len > 0 && !c->dead) {
        if (c->state == HS_LINGER)
            return;
        if (c->state == HS_HANDLING ||
            (c->state == HS_IDLE && (c->close_after || hs_conn_pending(c) > 0))) {
            keep(c, data, len);
            return;
        }
        const char *why = NULL;
        size_t lim = hs_strict_scan(c, data, len, &why);
        if (lim == 0) {
            hs_protocol_error(c, 400, "bad_request", why);
            return;
        }
        size_t n = http_parser_execute(&c->p, &settings, data, lim);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
        if (c->answered)
            return; /* refused at its head (head_ready): replied, lingering */
        if ((e != HPE_OK && e != HPE_PAUSED) || (n == 0 && e == HPE_OK)) {
            bad_request(c); /* (a parser that takes nothing would spin here) */
            return;
        }
        data += n;
        len -= n;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->p, 0);
            if (c->head_paused) {
                c->head_paused = false;
                if (!head_ready(c))
                    return; /* answered; the rest of the body is dropped */
                continue;
            }
            c->state = HS_HANDLING;
            hs_dispatch(c->req); /* may finish it at once: the loop goes on */
        }
    }
    if (c->state == HS_READING && !c->dead) {
        /* a request is part way in: it must be complete by its deadline */
        int64_t left = read_left(c);
        if (left <= 0) {
            hs_protocol_error(c, 408, "request_timeout", "Request not received in time");
            return;
        }
        struct timeval tv = tv_ms(left);
        event_add(c->rev, &tv);
    }
}

static void on_timeout(hs_conn_t *c)
{
    uint64_t now = cm_now_ms();
    int64_t left = 0;
    switch (c->state) {
    case HS_HANDLING:
        return; /* the application decides how long a request takes */
    case HS_LINGER:
        conn_close(c);
        return;
    case HS_READING:
        left = read_left(c);
        if (left <= 0) {
            LOG_DEBUG("http", "%s: request not received in time", c->peer);
            hs_protocol_error(c, 408, "request_timeout", "Request not received in time");
            return;
        }
        break;
    case HS_IDLE:
        /* no byte since accept (header timeout) or since the last reply (keep-alive) */
        if (c->nreq == 0)
            left = (int64_t)(c->accept_ms + (uint64_t)header_ms(c)) - (int64_t)now;
        else
            left = (int64_t)(c->last_ms + (uint64_t)keepalive_ms(c)) - (int64_t)now;
        if (left <= 0 && hs_conn_pending(c) == 0) {
            conn_close(c);
            return;
        }
        if (left <= 0) /* output still going (a file of minutes): the write timeout watches it */
            left = keepalive_ms(c); /* look again later, not at the last short deadline's pace */
        break;
    }
    struct timeval tv = tv_ms(left);
    event_add(c->rev, &tv);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    hs_conn_t *c = arg;
    c->in_io = true;
    if (c->write_failed) {
        conn_close(c);
        goto out;
    }
    if (what & EV_TIMEOUT) {
        on_timeout(c);
        goto out;
    }
    if (c->npending && c->state == HS_IDLE && !c->close_after && hs_conn_pending(c) == 0) {
        char *held = c->pending; /* pipelined requests held back: their turn */
        size_t n = c->npending;
        c->pending = NULL;
        c->npending = 0;
        feed(c, held, n);
        free(held);
        if (c->dead || c->rev_off)
            goto out;
    }
    char buf[READ_CHUNK];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) {
        conn_close(c); /* the client left (a request part way in is dropped) */
    } else if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(c);
    } else if (c->state == HS_LINGER) {
        c->head_bytes += (size_t)n;
        if (c->head_bytes > LINGER_BYTES)
            conn_close(c);
    } else {
        feed(c, buf, (size_t)n);
    }
out:
    c->in_io = false;
    if (c->dead)
        conn_free(c);
}

void hs_conn_accept(hs_worker_t *w, int fd, const struct sockaddr *sa)
{
    hs_conn_t *c = cm_xcalloc(1, sizeof(*c));
    c->w = w;
    c->fd = fd;
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    if (sa->sa_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *)sa)->sin_addr;
        inet_ntop(AF_INET, a, c->peer, sizeof(c->peer));
        memcpy(c->ip, a, 4);
        c->iplen = 4;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        inet_ntop(AF_INET6, a, c->peer, sizeof(c->peer));
        memcpy(c->ip, a, 16);
        c->iplen = 16;
    }
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->accept_ms = c->last_ms = cm_now_ms();
    LIST_INSERT_HEAD(&w->conns, c, link);
    cm_http_server_t *srv = w->srv;
    if (srv->opts.max_conns_per_ip > 0 && c->iplen) {
        c->ip_counted = hs_ip_acquire(srv, c->ip, c->iplen);
        if (!c->ip_counted) {
            /* over the cap: a 503 the client can read (then a lingering
             * close), rather than a bare close it would retry at once */
            LOG_DEBUG("http", "%s: over %d connections from this address", c->peer,
                      srv->opts.max_conns_per_ip);
            c->req = hs_req_new(c);
            c->in_io = true;
            hs_protocol_error(c, 503, "too_many_connections",
                              "Too many connections from this address; retry shortly");
            c->in_io = false;
            if (c->dead)
                conn_free(c);
            return;
        }
    }
    struct timeval tv = tv_ms(header_ms(c));
    event_add(c->rev, &tv);
}

void hs_conn_free_all(hs_worker_t *w)
{
    hs_conn_t *c;
    while ((c = LIST_FIRST(&w->conns))) {
        c->in_io = true;
        conn_close(c);
        conn_free(c);
    }
}
