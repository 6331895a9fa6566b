/* http_server: the HTTP server shared by the router and the node: worker
 * threads and their listeners, routing, and the request's accessors. The
 * connections are in http_conn.c, the replies in http_reply.c. */
#include "http_server_int.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <malloc.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID_GIVEN_MAX 40 /* a client's X-Request-Id is kept when shorter than this */

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
            if (ve == path || req->nparams == HS_MAX_PARAMS)
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

/* The first segment of path ("/v1/models": "v1") as a key: its length and
 * first two bytes (never 0). 0 for a pattern whose first segment holds a
 * parameter or a path not starting with '/': those are matched in full. */
static uint32_t seg_key(const char *path, bool pattern)
{
    if (path[0] != '/')
        return 0;
    size_t n = 0;
    for (const char *p = path + 1; *p && *p != '/'; p++, n++)
        if (pattern && (*p == ':' || *p == '*'))
            return 0;
    unsigned char a = n > 0 ? (unsigned char)path[1] : 0, b = n > 1 ? (unsigned char)path[2] : 0;
    return 0x80000000u | (uint32_t)(n & 0x7fff) << 16 | (uint32_t)a << 8 | b;
}

static void clear_params(cm_http_req_t *req)
{
    for (int i = 0; i < req->nparams; i++)
        free(req->pvals[i]);
    req->nparams = 0;
}

/* ---- request lifetime ---- */

cm_http_req_t *hs_req_new(hs_conn_t *c)
{
    cm_http_req_t *req = cm_xcalloc(1, sizeof(*req));
    req->c = c;
    req->w = c->w;
    memcpy(req->peer, c->peer, sizeof(req->peer));
    req->method = "GET";
    return req;
}

void hs_req_free(cm_http_req_t *req)
{
    if (req->user && req->user_free)
        req->user_free(req->user);
    clear_params(req);
    if (req->query_parsed)
        evhttp_clear_headers(&req->query);
    if (req->path_owned)
        free(req->path);
    free(req->head);
    free(req->body);
    if (req->budget_held)
        hs_budget_put(req->w->srv, req->budget_held);
    free(req->xh);
    free(req);
}

static void set_request_id(cm_http_req_t *req)
{
    const char *given = cm_http_req_header(req, "X-Request-Id");
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
    p = cm_put_uint(p + 4, (uint64_t)req->w->index, 10);
    *p++ = '-';
    p = cm_put_uint(p, cm_wall_ms(), 16);
    *p++ = '-';
    p = cm_put_uint(p, ++req->w->next_id, 16);
    *p = '\0';
}

/* Splits the request target (http_parser's URL parser) into the decoded path
 * and the raw query, both NUL-terminated in place in the head. False when
 * the target is not a URL or decodes to something with a NUL in it. */
static bool split_target(cm_http_req_t *req)
{
    char *url = req->head ? req->head : (char *)"";
    size_t len = strlen(url);
    struct http_parser_url u;
    http_parser_url_init(&u);
    bool connect = strcmp(req->method, "CONNECT") == 0;
    if (len == 0 || http_parser_parse_url(url, len, connect, &u) != 0) {
        req->path = (char *)"/";
        return strcmp(url, "*") == 0; /* OPTIONS * */
    }
    char *path = (char *)"/";
    if (u.field_set & (1 << UF_QUERY)) {
        req->query_str = url + u.field_data[UF_QUERY].off;
        req->query_str[u.field_data[UF_QUERY].len] = '\0';
    }
    if (u.field_set & (1 << UF_PATH)) {
        path = url + u.field_data[UF_PATH].off;
        path[u.field_data[UF_PATH].len] = '\0';
    }
    if (!strchr(path, '%')) {
        req->path = path; /* nothing to decode: the head's own copy */
        return true;
    }
    size_t plen = 0;
    req->path = evhttp_uridecode(path, 0, &plen);
    req->path_owned = req->path != NULL;
    if (!req->path || strlen(req->path) != plen) {
        /* an encoded NUL would make the path we match differ from the one sent */
        free(req->path);
        req->path = (char *)"/";
        req->path_owned = false;
        return false;
    }
    return true;
}

bool hs_route(cm_http_req_t *req)
{
    cm_http_server_t *srv = req->w->srv;
    req->routed = true;
    set_request_id(req);
    if (!split_target(req)) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_path", NULL, "Bad request path");
        return false;
    }

    const cm_http_route_t *hit = NULL, *get = NULL;
    bool path_known = false;
    uint32_t key = seg_key(req->path, false);
    for (size_t i = 0; i < srv->opts.nroutes; i++) {
        const cm_http_route_t *r = &srv->opts.routes[i];
        uint32_t rk = srv->route_keys ? srv->route_keys[i] : 0; /* NULL: a server assembled by hand (the fuzzer) */
        if (rk && key && rk != key)
            continue; /* another first segment: cannot match */
        if (!match(r->path, req->path, req)) {
            clear_params(req);
            continue;
        }
        if (strcmp(r->method, req->method) == 0) {
            hit = r;
            break;
        }
        if (req->is_head && !get && strcmp(r->method, "GET") == 0) {
            get = r; /* HEAD is GET without the body, unless a route says otherwise */
            clear_params(req);
            continue;
        }
        path_known = true;
        clear_params(req);
    }
    if (!hit && get)
        match(get->path, req->path, req);
    hit = hit ? hit : get;
    req->route = hit;
    if (!hit) {
        if (path_known) {
            cm_http_reply_error(req, 405, "invalid_request_error", "method_not_allowed", NULL,
                                "Method %s not allowed on %s", req->method, req->path);
            return false;
        }
        if (srv->opts.fallback)
            return true; /* a handler: it runs once the body is in */
        cm_http_reply_error(req, 404, "invalid_request_error", "not_found", NULL,
                            "No route for %s %s", req->method, req->path);
        return false;
    }
    return !srv->opts.pre || srv->opts.pre(req, hit, srv->opts.ud);
}

void hs_dispatch(cm_http_req_t *req)
{
    cm_http_server_t *srv = req->w->srv;
    if (!req->routed && !hs_route(req))
        return;
    req->in_handler = true;
    if (req->route)
        req->route->fn(req, srv->opts.ud);
    else
        srv->opts.fallback(req, srv->opts.ud);
    req->in_handler = false;
    if (req->finished)
        hs_req_free(req); /* replied inside the handler */
}

/* ---- the body budget ---- */

/* A burst that buffered this much is followed by malloc_trim once the
 * budget drains: glibc keeps freed heap (bodies under its mmap threshold,
 * which grows up to 32 MiB as large blocks are freed) otherwise. */
#define TRIM_ARM_BYTES ((size_t)64 << 20)

bool hs_budget_take(cm_http_server_t *srv, size_t n)
{
    size_t limit = srv->opts.body_budget;
    size_t now = atomic_fetch_add_explicit(&srv->body_used, n, memory_order_relaxed) + n;
    if (limit && now > limit) {
        atomic_fetch_sub_explicit(&srv->body_used, n, memory_order_relaxed);
        return false;
    }
    if (now >= TRIM_ARM_BYTES && !atomic_load_explicit(&srv->trim_armed, memory_order_relaxed))
        atomic_store_explicit(&srv->trim_armed, true, memory_order_relaxed);
    return true;
}

void hs_budget_put(cm_http_server_t *srv, size_t n)
{
    size_t left = atomic_fetch_sub_explicit(&srv->body_used, n, memory_order_relaxed) - n;
    if (left == 0 && atomic_load_explicit(&srv->trim_armed, memory_order_relaxed) &&
        atomic_exchange_explicit(&srv->trim_armed, false, memory_order_relaxed)) {
#ifdef __GLIBC__
        malloc_trim(0); /* once per burst, not per request (it walks the heap) */
#endif
    }
}

/* ---- connections per client address ---- */

static unsigned ip_hash(const unsigned char *a, size_t len)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ a[i]) * 16777619u;
    return h % HS_IP_BUCKETS;
}

bool hs_ip_acquire(cm_http_server_t *srv, const unsigned char *addr, size_t len)
{
    bool ok = true;
    hs_ipent_t **b = &srv->ip_buckets[ip_hash(addr, len)];
    pthread_mutex_lock(&srv->ip_lock);
    hs_ipent_t *e = *b;
    while (e && (e->len != len || memcmp(e->addr, addr, len) != 0))
        e = e->next;
    if (!e) {
        e = cm_xcalloc(1, sizeof(*e));
        memcpy(e->addr, addr, len);
        e->len = (uint8_t)len;
        e->next = *b;
        *b = e;
    }
    if (e->count >= srv->opts.max_conns_per_ip)
        ok = false;
    else
        e->count++;
    pthread_mutex_unlock(&srv->ip_lock);
    return ok;
}

void hs_ip_release(cm_http_server_t *srv, const unsigned char *addr, size_t len)
{
    hs_ipent_t **pp = &srv->ip_buckets[ip_hash(addr, len)];
    pthread_mutex_lock(&srv->ip_lock);
    for (hs_ipent_t *e = *pp; e; pp = &e->next, e = e->next) {
        if (e->len != len || memcmp(e->addr, addr, len) != 0)
            continue;
        if (--e->count <= 0) { /* the table holds addresses with open connections only */
            *pp = e->next;
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&srv->ip_lock);
}

void hs_protocol_error(hs_conn_t *c, int status, const char *code, const char *msg)
{
    if (!c->req)
        c->req = hs_req_new(c);
    cm_http_req_t *req = c->req;
    req->keep_alive = false;
    /* a HEAD's error is a head too (RFC 9110 9.3.2): is_head stays as parsed */
    c->close_after = true;
    c->state = HS_HANDLING;
    if (!req->head_done)
        req->nhdr = 0; /* a head part way in: none of its headers count */
    if (!req->id[0])
        set_request_id(req);
    LOG_DEBUG("http", "%s: %d %s", c->peer, status, msg);
    if (status == 503)
        cm_http_add_header(req, "Retry-After", "1"); /* a busy server, not a bad request */
    cm_http_reply_error(req, status, NULL, code, NULL, "%s", msg);
}

/* ---- accessors ---- */

struct event_base *cm_http_req_base(cm_http_req_t *req) { return req->w->base; }
int cm_http_req_worker(const cm_http_req_t *req) { return req->w->index; }
const char *cm_http_req_method(const cm_http_req_t *req) { return req->method; }
const char *cm_http_req_path(const cm_http_req_t *req) { return req->path; }
const char *cm_http_req_id(const cm_http_req_t *req) { return req->id; }
const char *cm_http_req_peer(const cm_http_req_t *req) { return req->peer; }
int cm_http_req_fd(const cm_http_req_t *req) { return req->c ? req->c->fd : -1; }
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
        if (req->query_str)
            evhttp_parse_query_str(req->query_str, &req->query);
        req->query_parsed = true;
    }
    return evhttp_find_header(&req->query, name);
}

const char *cm_http_req_header(const cm_http_req_t *req, const char *name)
{
    for (int i = 0; i < req->nhdr; i++)
        if (strcasecmp(req->head + req->hdr[i][0], name) == 0)
            return req->head + req->hdr[i][1];
    return NULL;
}

const char *cm_http_req_body(cm_http_req_t *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
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

static void *worker_main(void *arg)
{
    hs_worker_t *w = arg;
    cm_http_server_t *srv = w->srv;
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
    hs_worker_t *w = arg;
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

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                      void *arg)
{
    (void)lev;
    (void)socklen;
    hs_conn_accept(arg, fd, sa);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hs_worker_t *w = arg;
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

static int worker_init(hs_worker_t *w, char *err, size_t errlen)
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
    w->closer = cm_closer_new(w->base);
    w->listener = evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                     0 /* already listening */, w->fd);
    if (!w->listener) {
        snprintf(err, errlen, "cannot accept on socket");
        return -1;
    }
    w->fd = -1; /* the listener's now */
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
    srv->route_keys = cm_xcalloc(opts->nroutes ? opts->nroutes : 1, sizeof(uint32_t));
    for (size_t i = 0; i < opts->nroutes; i++)
        srv->route_keys[i] = seg_key(opts->routes[i].path, true);
    pthread_mutex_init(&srv->ip_lock, NULL);
    srv->nworkers = opts->workers > 0 ? opts->workers : 1;
    srv->workers = cm_xcalloc((size_t)srv->nworkers, sizeof(hs_worker_t));
    int port = opts->port;
    for (int i = 0; i < srv->nworkers; i++) {
        hs_worker_t *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        w->fd = -1;
    }
    for (int i = 0; i < srv->nworkers; i++) {
        hs_worker_t *w = &srv->workers[i];
        w->fd = bind_socket(opts->host ? opts->host : "0.0.0.0", port, err, errlen);
        if (w->fd < 0)
            goto fail;
        if (i == 0) {
            port = bound_port(w->fd);
            srv->port = port;
        }
        if (worker_init(w, err, errlen) != 0)
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
    atomic_store_explicit(&srv->stopping, 1, memory_order_relaxed);
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
        hs_worker_t *w = &srv->workers[i];
        if (w->keep)
            event_free(w->keep);
        if (w->accept_retry)
            event_free(w->accept_retry);
        if (w->listener)
            evconnlistener_free(w->listener); /* closes the listening socket */
        else if (w->fd >= 0)
            close(w->fd);
        hs_conn_free_all(w);
        cm_closer_free(w->closer);
        if (w->base)
            event_base_free(w->base);
    }
    free(srv->workers);
    free(srv->route_keys);
    for (int i = 0; i < HS_IP_BUCKETS; i++) {
        hs_ipent_t *e = srv->ip_buckets[i];
        while (e) {
            hs_ipent_t *next = e->next;
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&srv->ip_lock);
    free(srv);
}
