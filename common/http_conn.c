/* http_conn: one client connection of the HTTP server. Reads with one recv
 * per wake-up into a stack buffer, parses in place with http_parser, and
 * writes replies straight to the socket (libevent queues only what the
 * socket does not take). Timeouts: the whole request head and body must
 * arrive within read_timeout_secs of its first byte (else 408), an idle
 * keep-alive connection closes after timeout_secs, and so does one whose
 * client stops reading its reply. */
#include "http_server_int.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define PENDING_MAX 65536     /* pipelined bytes held while a request is handled */
#define LINGER_MS 2000        /* reading what a client still sends after our close */
#define LINGER_BYTES (1 << 20)

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static int timeout_ms(const hs_conn_t *c)
{
    int s = c->w->srv->opts.timeout_secs;
    return (s > 0 ? s : 60) * 1000;
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

static int on_headers_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    cm_http_req_t *req = c->req;
    if (!head_end_string(c)) /* ends the last value, or the URL when no header came */
        return -1;
    if (req->nhdr && !req->in_value) /* a name without a value: a bad header */
        req->hdr[req->nhdr - 1][1] = (uint32_t)req->head_len - 1;
    req->head_done = true;
    req->http10 = p->http_major == 0 || (p->http_major == 1 && p->http_minor == 0);
    req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    req->method = http_method_str((enum http_method)p->method);
    req->is_head = p->method == HTTP_HEAD;
    if (!req->keep_alive)
        c->close_after = true;

    bool body = false;
    if (p->flags & F_CHUNKED) {
        body = true;
    } else if (p->content_length != ULLONG_MAX && p->content_length > 0) {
        size_t max = c->w->srv->opts.max_body;
        if (max && p->content_length > max) {
            c->err_status = 413;
            return -1;
        }
        req->body_cap = (size_t)p->content_length + 1;
        req->body = cm_xmalloc(req->body_cap);
        body = true;
    }
    const char *expect = cm_http_req_header(req, "Expect");
    if (body && expect && strcasecmp(expect, "100-continue") == 0 && !req->http10) {
        struct iovec iov = { (void *)continue_100, sizeof(continue_100) - 1 };
        hs_conn_send(c, &iov, 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    cm_http_req_t *req = c->req;
    size_t max = c->w->srv->opts.max_body;
    if (max && req->body_len + len > max) { /* a chunked body grew too big */
        c->err_status = 413;
        return -1;
    }
    cm_xgrow(&req->body, &req->body_cap, req->body_len + len + 1, 1024);
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    if (c->req->body)
        c->req->body[c->req->body_len] = '\0';
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
    if (!c->out)
        c->out = evbuffer_new();
    bool was_empty = evbuffer_get_length(c->out) == 0;
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
    if (c->close_after)
        begin_linger(c);
    else if (c->npending)
        event_active(c->rev, EV_READ, 1);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    hs_conn_t *c = arg;
    c->in_io = true;
    if (what & EV_TIMEOUT) {
        LOG_DEBUG("http", "%s: client stopped reading; closing", c->peer);
        conn_close(c);
    } else if (evbuffer_write(c->out, fd) < 0 && errno != EAGAIN && errno != EINTR) {
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
        struct timeval tv = tv_ms(timeout_ms(c));
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
    default:
        hs_protocol_error(c, 400, "bad_request", http_errno_description(e));
        break;
    }
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
        size_t n = http_parser_execute(&c->p, &settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
        if ((e != HPE_OK && e != HPE_PAUSED) || (n == 0 && e == HPE_OK)) {
            bad_request(c); /* (a parser that takes nothing would spin here) */
            return;
        }
        data += n;
        len -= n;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->p, 0);
            c->state = HS_HANDLING;
            hs_dispatch(c->req); /* may finish it at once: the loop goes on */
        }
    }
    if (c->state == HS_READING && !c->dead) {
        /* a request is part way in: it must be complete by its deadline */
        int64_t left = (int64_t)(c->started_ms + (uint64_t)read_timeout_ms(c)) - (int64_t)cm_now_ms();
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
        left = (int64_t)(c->started_ms + (uint64_t)read_timeout_ms(c)) - (int64_t)now;
        if (left <= 0) {
            LOG_DEBUG("http", "%s: request not received in time", c->peer);
            hs_protocol_error(c, 408, "request_timeout", "Request not received in time");
            return;
        }
        break;
    case HS_IDLE:
        left = (int64_t)(c->last_ms + (uint64_t)timeout_ms(c)) - (int64_t)now;
        if (left <= 0 && hs_conn_pending(c) == 0) {
            conn_close(c);
            return;
        }
        if (left <= 0)
            return; /* output still going: the write timeout watches it */
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
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof(c->peer));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer, sizeof(c->peer));
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->last_ms = cm_now_ms();
    struct timeval tv = tv_ms(timeout_ms(c));
    event_add(c->rev, &tv);
    LIST_INSERT_HEAD(&w->conns, c, link);
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
