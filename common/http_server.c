#include "http_server.h"

#include "bevflush.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <sys/queue.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PARAMS 4
#define ID_GIVEN_MAX 40 /* a client's X-Request-Id is kept when shorter than this */

typedef struct worker {
    cm_http_server_t *srv;
    int index;
    struct event_base *base;
    struct evhttp *http;
    int fd;
    struct event *keep;
    struct evconnlistener *listener;
    struct event *accept_retry; /* re-enables the listener after EMFILE & co */
    uint64_t accept_warned_ms;
    pthread_t thread;
    uint64_t next_id;
} worker_t;

struct cm_http_server {
    cm_http_server_opts_t opts;
    worker_t *workers;
    int nworkers;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile sig_atomic_t stopping;
    bool started;
};

struct cm_http_req {
    struct evhttp_request *raw;
    worker_t *w;
    const char *method;
    char *path; /* decoded */
    struct evkeyvalq query;
    bool query_parsed;
    const char *pnames[MAX_PARAMS];
    size_t pname_len[MAX_PARAMS];
    char *pvals[MAX_PARAMS];
    int nparams;
    char id[48]; /* "req-" + worker (<= 3 digits) + 2 x ("-" + <= 16 hex) + NUL fits */
    char peer[INET6_ADDRSTRLEN];
    void *user;
    void (*user_free)(void *);
    bool closed, streaming, finished;
    bool body_nul;   /* cm_http_req_body appended its NUL (body_len excludes it) */
    size_t body_len;
    bool in_handler; /* finishing inside the handler defers the free to dispatch */
    void (*on_close)(cm_http_req_t *, void *);
    void *on_close_arg;
    void (*on_drain)(cm_http_req_t *, void *);
    void *on_drain_arg;
    struct event *watch; /* peer-close detection while the reply is pending */
};

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PATCH: return "PATCH";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    default: return "OTHER";
    }
}

/* ---- route matching ---- */

/* Matches path against pattern, filling req's params. */
static bool match(const char *pat, const char *path, cm_http_req_t *req)
{
    req->nparams = 0;
    while (*pat && *path) {
        if (*pat == ':' || *pat == '*') {
            bool rest = *pat == '*';
            const char *name = pat + 1;
            const char *pe = rest ? pat + strlen(pat) : strchr(pat, '/');
            if (!pe)
                pe = pat + strlen(pat);
            const char *ve = rest ? path + strlen(path) : strchr(path, '/');
            if (!ve)
                ve = path + strlen(path);
            if (ve == path || req->nparams == MAX_PARAMS)
                return false;
            req->pnames[req->nparams] = name;
            req->pname_len[req->nparams] = (size_t)(pe - name);
            req->pvals[req->nparams] = cm_xstrndup(path, (size_t)(ve - path));
            req->nparams++;
            pat = pe;
            path = ve;
            continue;
        }
        if (*pat != *path)
            return false;
        pat++;
        path++;
    }
    return *pat == '\0' && *path == '\0';
}

static void clear_params(cm_http_req_t *req)
{
    for (int i = 0; i < req->nparams; i++)
        free(req->pvals[i]);
    req->nparams = 0;
}

/* ---- request lifetime ---- */

static void req_free(cm_http_req_t *req)
{
    if (req->watch)
        event_free(req->watch);
    if (req->user && req->user_free)
        req->user_free(req->user);
    clear_params(req);
    if (req->query_parsed)
        evhttp_clear_headers(&req->query);
    free(req->path);
    free(req);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    cm_http_req_t *req = arg;
    (void)evcon;
    if (req->closed || req->finished)
        return;
    req->closed = true;
    if (req->watch)
        event_del(req->watch);
    if (req->on_close)
        req->on_close(req, req->on_close_arg);
}

/* evhttp stops reading a connection while the application owns its request,
 * so it cannot see the client leave until it writes. A one-shot read watch on
 * the socket notices EOF or a reset early (a waiting request is dropped from
 * queues, a generation is cancelled). Pipelined bytes just end the watch. */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    cm_http_req_t *req = arg;
    (void)what;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return; /* data, not a close: stop watching */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(req->watch, NULL);
        return;
    }
    conn_closed(NULL, req);
}

static void watch_close(cm_http_req_t *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req->raw);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0)
        return;
    req->watch = event_new(req->w->base, fd, EV_READ, watch_cb, req);
    event_add(req->watch, NULL);
}

/* Detaches our close callback before handing the request back to evhttp. */
static void detach(cm_http_req_t *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req->raw);
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    req->finished = true;
}

/* Writes v in hex (decimal when !hex; small values only) and returns the end.
 * At most 16 characters. */
static char *put_hex(char *p, uint64_t v, bool hex)
{
    static const char digits[] = "0123456789abcdef";
    unsigned base = hex ? 16 : 10;
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v && n < (int)sizeof(tmp));
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static void set_request_id(cm_http_req_t *req)
{
    const char *given = evhttp_find_header(evhttp_request_get_input_headers(req->raw), "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n < ID_GIVEN_MAX;
        for (size_t i = 0; ok && i < n; i++) {
            char c = given[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '-' || c == '_' || c == '.';
        }
        if (ok) {
            memcpy(req->id, given, n + 1);
            return;
        }
    }
    /* "req-<worker>-<wall ms hex>-<counter hex>", formatted by hand: this runs
     * for every request and printf is a visible share of it */
    char *p = req->id;
    memcpy(p, "req-", 4);
    p = put_hex(p + 4, (uint64_t)req->w->index, false);
    *p++ = '-';
    p = put_hex(p, cm_wall_ms(), true);
    *p++ = '-';
    p = put_hex(p, ++req->w->next_id, true);
    *p = '\0';
}

static void dispatch(struct evhttp_request *raw, void *arg)
{
    worker_t *w = arg;
    cm_http_server_t *srv = w->srv;
    cm_http_req_t *req = cm_xcalloc(1, sizeof(*req));
    req->raw = raw;
    req->w = w;
    req->method = method_name(evhttp_request_get_command(raw));

    struct evhttp_connection *evcon = evhttp_request_get_connection(raw);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon) {
        evhttp_connection_get_peer(evcon, &addr, &port);
        if (addr) {
            size_t n = strnlen(addr, sizeof(req->peer) - 1);
            memcpy(req->peer, addr, n); /* req is zeroed: stays terminated */
        }
        evhttp_connection_set_closecb(evcon, conn_closed, req);
    }
    set_request_id(req);

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(raw);
    const char *rawpath = uri ? evhttp_uri_get_path(uri) : NULL;
    size_t plen = 0;
    req->path = rawpath ? evhttp_uridecode(rawpath, 0, &plen) : cm_xstrdup("/");
    if (!req->path || (rawpath && strlen(req->path) != plen)) {
        /* an encoded NUL would make the path we match differ from the one sent */
        free(req->path);
        req->path = cm_xstrdup("/");
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_path", NULL, "Bad request path");
        return;
    }

    const cm_http_route_t *hit = NULL;
    bool path_known = false;
    for (size_t i = 0; i < srv->opts.nroutes; i++) {
        const cm_http_route_t *r = &srv->opts.routes[i];
        if (!match(r->path, req->path, req)) {
            clear_params(req);
            continue;
        }
        if (strcmp(r->method, req->method) == 0) {
            hit = r;
            break;
        }
        path_known = true;
        clear_params(req);
    }
    if (!hit) {
        if (path_known) {
            cm_http_reply_error(req, 405, "invalid_request_error", "method_not_allowed", NULL,
                                "Method %s not allowed on %s", req->method, req->path);
        } else if (srv->opts.fallback) {
            srv->opts.fallback(req, srv->opts.ud);
        } else {
            cm_http_reply_error(req, 404, "invalid_request_error", "not_found", NULL,
                                "No route for %s %s", req->method, req->path);
        }
        return;
    }
    if (srv->opts.pre && !srv->opts.pre(req, hit, srv->opts.ud))
        return;
    req->in_handler = true;
    hit->fn(req, srv->opts.ud);
    req->in_handler = false;
    if (req->finished)
        req_free(req); /* replied inside the handler */
    else
        watch_close(req);
}

/* ---- accessors ---- */

struct evhttp_request *cm_http_req_raw(cm_http_req_t *req) { return req->raw; }
struct event_base *cm_http_req_base(cm_http_req_t *req) { return req->w->base; }
int cm_http_req_worker(const cm_http_req_t *req) { return req->w->index; }
const char *cm_http_req_method(const cm_http_req_t *req) { return req->method; }
const char *cm_http_req_path(const cm_http_req_t *req) { return req->path; }
const char *cm_http_req_id(const cm_http_req_t *req) { return req->id; }
const char *cm_http_req_peer(const cm_http_req_t *req) { return req->peer; }
void cm_http_req_set_user(cm_http_req_t *req, void *user, void (*free_fn)(void *))
{
    if (req->user && req->user_free)
        req->user_free(req->user);
    req->user = user;
    req->user_free = free_fn;
}
void *cm_http_req_user(const cm_http_req_t *req) { return req->user; }
bool cm_http_req_closed(const cm_http_req_t *req) { return req->closed; }

void cm_http_req_on_close(cm_http_req_t *req, void (*cb)(cm_http_req_t *, void *), void *arg)
{
    req->on_close = cb;
    req->on_close_arg = arg;
}

const char *cm_http_req_param(const cm_http_req_t *req, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < req->nparams; i++)
        if (req->pname_len[i] == n && strncmp(req->pnames[i], name, n) == 0)
            return req->pvals[i];
    return NULL;
}

const char *cm_http_req_query(cm_http_req_t *req, const char *name)
{
    if (!req->query_parsed) {
        TAILQ_INIT(&req->query);
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->raw);
        const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
        if (q)
            evhttp_parse_query_str(q, &req->query);
        req->query_parsed = true;
    }
    return evhttp_find_header(&req->query, name);
}

const char *cm_http_req_header(const cm_http_req_t *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req->raw), name);
}

const char *cm_http_req_body(cm_http_req_t *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req->raw);
    if (!req->body_nul) {
        /* a trailing NUL (not counted) makes the body a C string without a copy */
        req->body_len = evbuffer_get_length(in);
        evbuffer_add(in, "", 1);
        req->body_nul = true;
    }
    const char *p = (const char *)evbuffer_pullup(in, -1);
    if (len)
        *len = req->body_len;
    return p;
}

/* ---- replies ---- */

void cm_http_add_header(cm_http_req_t *req, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(req->raw), name, value);
}

/* The reply evhttp just queued goes out now (cm_bev_flush); when all of it
 * went out, evhttp's "written" step runs too, which may free the evhttp
 * request. Not inside a handler: evhttp's request dispatch is still on the
 * stack there. */
static void flush_now(cm_http_req_t *req)
{
    if (req->in_handler || req->closed)
        return;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req->raw);
    cm_bev_flush(evcon ? evhttp_connection_get_bufferevent(evcon) : NULL);
}

/* The Date header, formatted once a second per thread: evhttp formats it for
 * every reply otherwise (gmtime + printf, ~3k instructions). The "C" locale
 * (never changed here) gives the English names HTTP wants. */
static const char *http_date(void)
{
    static _Thread_local time_t at = (time_t)-1;
    static _Thread_local char buf[40];
    time_t now = time(NULL);
    if (now != at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        at = now;
    }
    return buf;
}

static void common_headers(cm_http_req_t *req, const char *ctype)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req->raw);
    evhttp_add_header(h, "Date", http_date());
    if (ctype)
        evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "X-Request-Id", req->id);
}

void cm_http_reply(cm_http_req_t *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    if (req->finished)
        return;
    common_headers(req, content_type);
    /* straight into the request's own output buffer: no evbuffer per reply */
    if (len)
        evbuffer_add(evhttp_request_get_output_buffer(req->raw), body, len);
    detach(req);
    evhttp_send_reply(req->raw, status, NULL, NULL);
    flush_now(req);
    if (!req->in_handler)
        req_free(req);
}

void cm_http_reply_json(cm_http_req_t *req, int status, const cJSON *json)
{
    char *s = cJSON_PrintUnformatted(json);
    cm_http_reply(req, status, "application/json", s, strlen(s));
    free(s);
}

const char *cm_http_error_type(int status)
{
    switch (status) {
    case 400: case 405: case 409: case 413: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void cm_http_reply_error(cm_http_req_t *req, int status, const char *type, const char *code,
                         const char *param, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type ? type : cm_http_error_type(status));
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    cm_http_reply_json(req, status, root);
    cJSON_Delete(root);
}

void cm_http_stream_start(cm_http_req_t *req, int status, const char *content_type)
{
    common_headers(req, content_type);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req->raw);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    req->streaming = true;
    evhttp_send_reply_start(req->raw, status, NULL);
    flush_now(req);
}

static void drained(struct evhttp_connection *evcon, void *arg)
{
    cm_http_req_t *req = arg;
    (void)evcon;
    if (req->on_drain && !req->finished && !req->closed)
        req->on_drain(req, req->on_drain_arg);
}

void cm_http_stream_write(cm_http_req_t *req, const void *data, size_t len)
{
    if (req->closed || req->finished || len == 0)
        return;
    /* the request's own (unused while streaming) output buffer carries the
     * chunk: evhttp moves its contents out, so no evbuffer per chunk */
    struct evbuffer *b = evhttp_request_get_output_buffer(req->raw);
    evbuffer_add(b, data, len);
    evhttp_send_reply_chunk_with_cb(req->raw, b, drained, req);
    evbuffer_drain(b, evbuffer_get_length(b)); /* left there only when evhttp dropped it */
    flush_now(req);
}

size_t cm_http_stream_pending(cm_http_req_t *req)
{
    if (req->closed || req->finished)
        return 0;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req->raw);
    if (!evcon)
        return 0;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

void cm_http_stream_on_drain(cm_http_req_t *req, void (*cb)(cm_http_req_t *, void *), void *arg)
{
    req->on_drain = cb;
    req->on_drain_arg = arg;
}

void cm_http_stream_sndbuf(cm_http_req_t *req, int bytes)
{
    struct evhttp_connection *evcon = req->finished ? NULL : evhttp_request_get_connection(req->raw);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

void cm_http_stream_end(cm_http_req_t *req)
{
    if (req->finished)
        return;
    if (!req->streaming) {
        cm_http_reply(req, 200, NULL, NULL, 0);
        return;
    }
    detach(req);
    evhttp_send_reply_end(req->raw);
    flush_now(req);
    if (!req->in_handler)
        req_free(req);
}

/* ---- server ---- */

static int bind_socket(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve bind address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* inherited by accepted connections (Linux): a streamed reply is many small
     * writes, and Nagle would hold each one until the previous is acknowledged
     * (up to the client's 40 ms delayed ACK) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        goto fail;
    freeaddrinfo(res);
    return fd;
fail:
    snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static _Thread_local worker_t *this_worker; /* the worker whose loop runs on this thread */

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    cm_http_server_t *srv = w->srv;
    this_worker = w;
    if (srv->opts.worker_start)
        srv->opts.worker_start(w->base, w->index, srv->opts.ud);
    event_base_dispatch(w->base);
    if (srv->opts.worker_stop)
        srv->opts.worker_stop(w->base, w->index, srv->opts.ud);
    return NULL;
}

static void wake_noop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* accept() failed for want of descriptors or memory (a flood of
 * connections): the pending connection stays in the backlog, so the level-
 * triggered listener would wake again at once and spin the loop at 100% CPU
 * (libevent only logs and returns). Stop accepting for a moment instead; the
 * connections already open keep being served and free descriptors meanwhile. */
static void accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg; /* evhttp's own pointer: the listener was made by evhttp */
    worker_t *w = this_worker;
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(lev);
    struct timeval pause = { 0, 100000 };
    evtimer_add(w->accept_retry, &pause);
    uint64_t now = cm_now_ms();
    if (now - w->accept_warned_ms >= 10000) {
        w->accept_warned_ms = now;
        LOG_WARN("http", "worker %d: cannot accept connections: %s (pausing accept for 100 ms; "
                 "raise the open-files limit if this persists)", w->index, strerror(err));
    }
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_t *w = arg;
    evconnlistener_enable(w->listener);
}

/* Every connection is a descriptor: a soft limit of 1024 (a common default)
 * would cap a router at about a thousand clients and streams. */
static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    if (want <= rl.rlim_cur)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        LOG_DEBUG("http", "open-files limit raised from %llu to %llu", (unsigned long long)was,
                  (unsigned long long)want);
}

static int worker_init(cm_http_server_t *srv, worker_t *w, char *err, size_t errlen)
{
    struct event_config *cfg = event_config_new();
    /* SPEC: the changelist nearly halves epoll_ctl calls per proxied request */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->base) {
        snprintf(err, errlen, "cannot create event loop");
        return -1;
    }
    w->http = evhttp_new(w->base);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    if (srv->opts.max_body)
        evhttp_set_max_body_size(w->http, (ev_ssize_t)srv->opts.max_body);
    if (srv->opts.max_headers)
        evhttp_set_max_headers_size(w->http, (ev_ssize_t)srv->opts.max_headers);
    if (srv->opts.timeout_secs > 0)
        evhttp_set_timeout(w->http, srv->opts.timeout_secs);
    evhttp_set_gencb(w->http, dispatch, w);
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(w->http, w->fd);
    if (!bound) {
        snprintf(err, errlen, "cannot accept on socket");
        return -1;
    }
    w->listener = evhttp_bound_socket_get_listener(bound);
    w->accept_retry = evtimer_new(w->base, accept_resume, w);
    evconnlistener_set_error_cb(w->listener, accept_error);
    /* a persistent event keeps the loop alive even with no connections */
    w->keep = event_new(w->base, -1, EV_PERSIST, wake_noop, NULL);
    struct timeval day = { 86400, 0 };
    event_add(w->keep, &day);
    return 0;
}

int cm_http_server_start(const cm_http_server_opts_t *opts, cm_http_server_t **out, char *err,
                         size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile_limit();

    cm_http_server_t *srv = cm_xcalloc(1, sizeof(*srv));
    srv->opts = *opts;
    srv->nworkers = opts->workers > 0 ? opts->workers : 1;
    srv->workers = cm_xcalloc((size_t)srv->nworkers, sizeof(worker_t));
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    int port = opts->port;
    for (int i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        w->fd = -1;
    }
    for (int i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        w->fd = bind_socket(opts->host ? opts->host : "0.0.0.0", port, err, errlen);
        if (w->fd < 0)
            goto fail;
        if (i == 0) {
            port = bound_port(w->fd);
            srv->port = port;
        }
        if (worker_init(srv, w, err, errlen) != 0)
            goto fail;
    }
    for (int i = 0; i < srv->nworkers; i++)
        pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
    srv->started = true;
    *out = srv;
    return 0;
fail:
    cm_http_server_free(srv);
    return -1;
}

int cm_http_server_port(const cm_http_server_t *srv)
{
    return srv->port;
}

struct event_base *cm_http_server_base(cm_http_server_t *srv, int worker)
{
    return srv->workers[worker].base;
}

void cm_http_server_request_stop(cm_http_server_t *srv)
{
    srv->stopping = 1;
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].base)
            event_base_loopbreak(srv->workers[i].base);
}

void cm_http_server_wait(cm_http_server_t *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].thread, NULL);
    srv->started = false;
}

void cm_http_server_free(cm_http_server_t *srv)
{
    if (!srv)
        return;
    if (srv->started) {
        cm_http_server_request_stop(srv);
        cm_http_server_wait(srv);
    }
    for (int i = 0; i < srv->nworkers; i++) {
        worker_t *w = &srv->workers[i];
        if (w->keep)
            event_free(w->keep);
        if (w->accept_retry)
            event_free(w->accept_retry);
        if (w->http)
            evhttp_free(w->http); /* closes the bound socket too */
        else if (w->fd > 0)
            close(w->fd);
        if (w->base)
            event_base_free(w->base);
    }
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    free(srv->workers);
    free(srv);
}
