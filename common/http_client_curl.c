/* http_client_curl: http_client's libcurl transport (HTTPS, host names,
 * proxies, and whatever the own transport does not take): libcurl's
 * multi_socket interface driven by a libevent loop. Prefix hcc_.
 *
 * The shape follows curl's hiperfifo example: curl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); libevent tells curl what happened
 * (curl_multi_socket_action). Three details keep it from stalling:
 *
 *  - after every call into curl the timer is re-armed from
 *    curl_multi_timeout(), not only from the timer callback;
 *  - sockets curl closes are closed one loop turn later (CURLOPT_CLOSESOCKET-
 *    FUNCTION), after libevent has applied its pending epoll changes, so a new
 *    socket can never get the number of one whose epoll entry is still queued
 *    for change (the ADD/MOD race with the epoll changelist);
 *  - a request cancelled while curl is on the stack (our depth counter) is
 *    only marked and reaped once curl has returned.
 *
 * Per-request cost: easy handles are pooled and, after a clean transfer, not
 * reset (set_options sets every option a request may change); URLs are parsed
 * once per client and handed to curl as CURLU handles; curl's "call me now"
 * runs later in the same loop turn instead of after another epoll_wait. */
#include "closer.h"
#include "http_client_impl.h"

#include "util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

/* Idle easy handles kept for reuse: above the concurrency a worker usually
 * sees, since a handle made afresh costs more than the rest of a request. */
#define POOL_MAX 256
#define URL_CACHE 32 /* parsed URLs kept per client (CURLOPT_CURLU) */

/* A URL parsed once and handed to curl as a CURLU, so that curl skips parsing
 * and re-printing the URL on every request. refs: requests using it (curl
 * reads it while the transfer runs, so it is not replaced under them). */
typedef struct {
    char *url;
    CURLU *u;
    unsigned refs;
} url_ent_t;

typedef struct creq creq_t;
typedef struct hcc hcc_t;

typedef struct sock {
    hcc_t *c;
    curl_socket_t fd;
    short kind;
    bool idle; /* curl stopped watching it (kept alive in its cache): lingering */
    struct event *ev;
} sock_t;

struct hcc {
    hc_transport_t base;
    struct event_base *evb;
    CURLM *multi;
    struct event *timer;
    cm_closer_t *closer; /* the client's: closed sockets, closed a turn later */
    int depth;           /* > 0 while curl is on the stack */
    bool freeing;
    size_t active;
    creq_t *dead; /* cancelled while curl was on the stack */
    LIST_HEAD(, creq) live; /* every request not yet released */
    CURL *pool[POOL_MAX];
    size_t npool;
    sock_t **idle; /* by fd: sockets curl stopped watching, still in epoll */
    size_t capidle;
    url_ent_t urls[URL_CACHE];
    size_t nurls, url_next;
    bool in_timer;
};

struct creq {
    cm_hc_req_t base;
    hcc_t *c;
    CURL *easy;
    struct curl_slist *hdrs; /* in blk: no allocation per header line */
    char *url;               /* in blk */
    url_ent_t *uent;         /* the parsed URL, or NULL */
    char *blk;               /* one block: url, header list nodes and lines */
    struct event *resume_ev;
    /* the silence deadline: the head within head_timeout_ms, then no gap
     * between body bytes longer than idle_timeout_s (curl's low-speed
     * options average over their window, so a stream sending a byte every
     * few seconds would never trip them); NULL when neither is set */
    struct event *head_ev;
    bool clean; /* ended OK and never paused: the easy handle needs no reset */
    creq_t *next_dead;
    LIST_ENTRY(creq) link; /* c->live */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- curl -> libevent ---- */

static void drive(hcc_t *c, curl_socket_t fd, int action);
static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud);
static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud);

/* (Re)starts r's silence deadline: the head's until it is in (or the idle
 * timeout when no head timeout is set), then the idle timeout; none left:
 * stopped. */
static void arm_deadline(creq_t *r)
{
    const cm_hc_opts_t *o = &r->base.o;
    long ms = !r->base.head_done && o->head_timeout_ms > 0 ? o->head_timeout_ms
              : o->idle_timeout_s > 0                      ? o->idle_timeout_s * 1000
                                                           : 0;
    if (ms <= 0) {
        evtimer_del(r->head_ev);
        return;
    }
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(r->head_ev, &tv);
}

static void idle_drop(hcc_t *c, sock_t *sp)
{
    c->idle[sp->fd] = NULL;
    event_free(sp->ev);
    free(sp);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    sock_t *sp = arg;
    if (sp->idle) {
        /* an idle connection woke up (closed by the peer, most likely): stop
         * watching it; curl finds it dead when it next tries to reuse it */
        idle_drop(sp->c, sp);
        return;
    }
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    drive(sp->c, fd, action);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    hcc_t *c = arg;
    (void)fd;
    (void)what;
    c->in_timer = true;
    drive(c, CURL_SOCKET_TIMEOUT, 0);
    c->in_timer = false;
}

static void set_kind(sock_t *sp, short kind)
{
    if (sp->kind == kind)
        return;
    /* del + assign: the changelist folds this into one epoll MOD */
    event_del(sp->ev);
    event_assign(sp->ev, sp->c->evb, sp->fd, kind, on_sock_event, sp);
    event_add(sp->ev, NULL);
    sp->kind = kind;
}

/* curl stopped watching s: keep it in epoll (read only) as an idle
 * connection, unless it never connected. */
static void sock_linger(hcc_t *c, curl_socket_t s, sock_t *sp)
{
    curl_multi_assign(c->multi, s, NULL);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    /* only a connected socket can be a kept-alive connection: one whose
     * connect failed or timed out is closed by curl, possibly without
     * CLOSESOCKETFUNCTION, and an event left on it would make libevent
     * believe the next socket to get that number is already in epoll */
    if (c->freeing || s < 0 || getpeername(s, (struct sockaddr *)&peer, &plen) != 0) {
        event_free(sp->ev);
        free(sp);
        return;
    }
    if ((size_t)s >= c->capidle) {
        size_t cap = c->capidle ? c->capidle : 64;
        while (cap <= (size_t)s)
            cap *= 2;
        c->idle = cm_xrealloc(c->idle, cap * sizeof(*c->idle));
        memset(c->idle + c->capidle, 0, (cap - c->capidle) * sizeof(*c->idle));
        c->capidle = cap;
    }
    sp->idle = true;
    c->idle[s] = sp;
    set_kind(sp, EV_READ | EV_PERSIST);
}

/* curl asks to watch s for what. A kept-alive connection is unwatched after
 * each transfer and watched again by the next one: an epoll DEL and ADD per
 * request. Instead the socket lingers in epoll (read only) while idle and is
 * taken up again without a system call; it leaves epoll when it wakes up
 * while idle or when curl closes it. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    hcc_t *c = userp;
    sock_t *sp = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (sp)
            sock_linger(c, s, sp);
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                         EV_PERSIST);
    if (!sp && s >= 0 && (size_t)s < c->capidle && c->idle[s]) {
        sp = c->idle[s]; /* the same open socket: curl reuses the connection */
        c->idle[s] = NULL;
        sp->idle = false;
        curl_multi_assign(c->multi, s, sp);
        set_kind(sp, kind);
        return 0;
    }
    if (!sp) {
        sp = cm_xcalloc(1, sizeof(*sp));
        sp->c = c;
        sp->fd = s;
        sp->kind = kind;
        sp->ev = event_new(c->evb, s, kind, on_sock_event, sp);
        curl_multi_assign(c->multi, s, sp);
        event_add(sp->ev, NULL);
        return 0;
    }
    set_kind(sp, kind);
    return 0;
}

static void arm_timer(hcc_t *c, long ms)
{
    if (ms < 0) {
        evtimer_del(c->timer);
        return;
    }
    if (ms == 0 && !c->in_timer) {
        /* "now": run later in this loop turn instead of after another
         * epoll_wait (a zero timer costs one system call per request). Not
         * from inside on_timer, so that curl asking again and again cannot
         * keep the loop from polling. */
        evtimer_del(c->timer);
        event_active(c->timer, EV_TIMEOUT, 1);
        return;
    }
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(c->timer, &tv);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    arm_timer(userp, timeout_ms);
    return 0;
}

static int close_cb(void *clientp, curl_socket_t fd)
{
    hcc_t *c = clientp;
    if (fd >= 0 && (size_t)fd < c->capidle && c->idle[fd])
        idle_drop(c, c->idle[fd]); /* out of epoll before the close below */
    if (c->freeing)
        return close(fd);
    cm_closer_close(c->closer, fd);
    return 0;
}

/* ---- request lifetime ---- */

/* Options that are the same for every request of a client: set when an easy
 * handle is made or reset. */
static void set_fixed_options(CURL *e, hcc_t *c)
{
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
}

static void req_release(creq_t *r)
{
    hcc_t *c = r->c;
    curl_multi_remove_handle(c->multi, r->easy);
    LIST_REMOVE(r, link);
    if (r->uent)
        r->uent->refs--;
    if (c->npool < POOL_MAX && !c->freeing) {
        /* after a clean transfer no curl_easy_reset (3.5k instructions):
         * set_options sets every option a request may change */
        if (!r->clean) {
            curl_easy_reset(r->easy);
            set_fixed_options(r->easy, c);
        }
        c->pool[c->npool++] = r->easy;
    } else {
        curl_easy_cleanup(r->easy);
    }
    if (r->resume_ev)
        event_free(r->resume_ev);
    if (r->head_ev)
        event_free(r->head_ev);
    hc_head_free(&r->base.head);
    free(r->blk);
    free(r);
    c->active--;
}

static int map_result(const creq_t *r, CURLcode rc)
{
    if (rc == CURLE_OK)
        return CM_HC_OK;
    int own = hc_stop_result(&r->base); /* we stopped it: head too big, bad status, aborted */
    if (own != CM_HC_OK)
        return own;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return CM_HC_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return CM_HC_ETIMEOUT;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return CM_HC_EIO;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: /* also "Unsupported response code" */
        return CM_HC_EPROTO;
    default:
        return CM_HC_EOTHER;
    }
}

static void check_done(hcc_t *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        creq_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r || r->base.cancelled)
            continue; /* reaped below */
        CURLcode rc = msg->data.result;
        int res = map_result(r, rc);
        if (res == CM_HC_OK && !r->base.head_done)
            res = CM_HC_EIO;
        curl_multi_remove_handle(c->multi, r->easy);
        if (res == CM_HC_OK && hc_wants_trailers(&r->base)) {
            c->depth++; /* a cancel from on_trailers puts r on the dead list */
            int trc = hc_deliver_trailers(&r->base);
            c->depth--;
            if (r->base.cancelled)
                continue; /* no on_done; reap() frees it */
            if (trc < 0)
                res = CM_HC_ETOOBIG;
        }
        if (res == CM_HC_ETOOBIG) /* curl's own message would say a callback failed */
            snprintf(r->errbuf, sizeof(r->errbuf), "response %s larger than %zu bytes",
                     r->base.head_done ? "head and trailers" : "head", hc_head_max(&r->base.o));
        r->clean = rc == CURLE_OK && !r->base.paused && !r->resume_ev && !r->base.o.ca_file;
        hc_deliver_done(&r->base, res, r->errbuf);
        req_release(r);
    }
}

static void reap(hcc_t *c)
{
    while (c->dead) {
        creq_t *r = c->dead;
        c->dead = r->next_dead;
        req_release(r);
    }
}

/* Every return from curl ends here: deliver completions, free what was
 * cancelled meanwhile, and re-arm the timer from curl_multi_timeout(). */
static void settle(hcc_t *c)
{
    if (c->depth > 0)
        return;
    check_done(c);
    reap(c);
    long ms = -1;
    curl_multi_timeout(c->multi, &ms);
    arm_timer(c, ms);
}

static void drive(hcc_t *c, curl_socket_t fd, int action)
{
    int running = 0;
    c->depth++;
    curl_multi_socket_action(c->multi, fd, action, &running);
    c->depth--;
    settle(c);
}

/* ---- curl callbacks of one request ---- */

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    creq_t *r = ud;
    size_t n = size * nmemb;
    if (r->base.cancelled)
        return 0;
    if (r->base.head_done) {
        /* after the head: a chunked body's trailer lines (and the blank
         * line that ends them, on some versions), kept for on_trailers and
         * delivered when the transfer is done (check_done) */
        size_t len = n;
        while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
            len--;
        if (!hc_wants_trailers(&r->base) || len == 0)
            return n;
        return hc_head_line(&r->base.head, data, len) ? 0 : n;
    }
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        hc_head_reset(&r->base.head); /* a new response head (after 1xx) */
        return n;
    }
    size_t len = n;
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len > 0) /* 0 on the way: curl ends the transfer, map_result says why */
        return hc_head_line(&r->base.head, data, len) ? 0 : n;
    long code = 0; /* the blank line: the head is complete */
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    if (hc_head_end(&r->base, code) < 0)
        return 0;
    if (r->head_ev && r->base.head_done)
        arm_deadline(r); /* the head is in: from now on the idle timeout */
    return n;
}

/* No response head within head_timeout_ms, or a silence longer than
 * idle_timeout_s: the request ends here, as curl would end it on its own
 * timeouts. A paused transfer is silent because we asked: not counted. */
static void on_head_timeout(evutil_socket_t fd, short what, void *arg)
{
    creq_t *r = arg;
    hcc_t *c = r->c;
    (void)fd;
    (void)what;
    if (r->base.cancelled)
        return;
    if (r->base.paused) {
        arm_deadline(r);
        return;
    }
    char detail[64];
    if (r->base.head_done || r->base.o.head_timeout_ms <= 0)
        snprintf(detail, sizeof(detail), "no data for %ld s", r->base.o.idle_timeout_s);
    else
        snprintf(detail, sizeof(detail), "no response head within %ld ms", r->base.o.head_timeout_ms);
    curl_multi_remove_handle(c->multi, r->easy);
    r->clean = false;
    hc_deliver_done(&r->base, CM_HC_ETIMEOUT, detail);
    req_release(r);
    settle(c);
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    creq_t *r = ud;
    size_t n = size * nmemb;
    if (r->base.cancelled)
        return 0;
    if (r->base.paused)
        return CURL_WRITEFUNC_PAUSE;
    if (r->head_ev && r->base.o.idle_timeout_s > 0)
        arm_deadline(r); /* a byte came: the silence starts again */
    return hc_deliver_data(&r->base, data, n) ? n : 0;
}

/* ---- requests ---- */

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    creq_t *r = arg;
    hcc_t *c = r->c;
    (void)fd;
    (void)what;
    if (r->base.paused || r->base.cancelled)
        return;
    c->depth++;
    curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may deliver held data now */
    c->depth--;
    settle(c);
}

/* The parsed form of url from the client's cache (parsed now on a miss), or
 * NULL when it cannot be cached: curl then parses the URL itself. */
static url_ent_t *url_lookup(hcc_t *c, const char *url)
{
    for (size_t i = 0; i < c->nurls; i++)
        if (strcmp(c->urls[i].url, url) == 0)
            return &c->urls[i];
    url_ent_t *ent = NULL;
    if (c->nurls < URL_CACHE) {
        ent = &c->urls[c->nurls];
    } else {
        /* full: replace in place (requests point at entries) one no request
         * uses, round-robin */
        for (size_t k = 0; k < URL_CACHE && !ent; k++) {
            url_ent_t *e = &c->urls[(c->url_next + k) % URL_CACHE];
            if (e->refs == 0)
                ent = e;
        }
        if (!ent)
            return NULL;
        c->url_next = (size_t)(ent - c->urls + 1) % URL_CACHE;
    }
    CURLU *u = curl_url();
    if (!u)
        abort();
    /* the flags curl itself parses CURLOPT_URL with */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(u);
        return NULL; /* curl reports the error on its own parse */
    }
    if (ent->u) {
        curl_url_cleanup(ent->u);
        free(ent->url);
    } else {
        c->nurls++;
    }
    ent->url = cm_xstrdup(url);
    ent->u = u;
    ent->refs = 0;
    return ent;
}

/* Every option a request may change is set here, also to its default, since
 * pooled easy handles are not reset between clean transfers. */
static void set_options(creq_t *r)
{
    CURL *e = r->easy;
    const cm_hc_opts_t *o = &r->base.o;
    /* the string too: curl keeps it for messages and skips re-printing it */
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_CURLU, r->uent ? r->uent->u : NULL);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, hc_connect_timeout_ms(o));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 0L);
    /* the head and idle deadlines are our own timer (arm_deadline) */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 0L);
    /* both set: curl then reads none of the proxy variables (getenv) */
    curl_easy_setopt(e, CURLOPT_PROXY, o->no_proxy ? "" : NULL);
    curl_easy_setopt(e, CURLOPT_NOPROXY, o->no_proxy ? "*" : NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    /* Extra CAs beside the system store: CAINFO names the file while the
     * built-in CAPATH (the system's hashed directory) stays set, and OpenSSL
     * trusts both. A handle that had it is reset before reuse (check_done
     * marks its transfer unclean), so no other request inherits it. */
    if (o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    const char *m = o->method ? o->method : "GET";
    if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, strcmp(m, "POST") != 0 ? m : NULL);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body ? (const char *)o->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    }
}

/* Copies the URL and the header lines into one block, the curl_slist nodes
 * included (curl only reads the list), instead of an allocation per line. */
static void copy_strings(creq_t *r, const cm_hc_opts_t *opts)
{
    /* "Expect: 100-continue" would cost a round trip on larger bodies */
    static const char expect[] = "Expect:";
    size_t n = 1, bytes = strlen(opts->url) + 1 + sizeof(expect);
    for (size_t i = 0; opts->headers && opts->headers[i]; i++, n++)
        bytes += strlen(opts->headers[i]) + 1;
    r->blk = cm_xmalloc(n * sizeof(struct curl_slist) + bytes);
    struct curl_slist *nodes = (struct curl_slist *)(void *)r->blk;
    char *p = r->blk + n * sizeof(struct curl_slist);
    size_t len = strlen(opts->url) + 1;
    r->url = memcpy(p, opts->url, len);
    p += len;
    for (size_t i = 0; i < n; i++) {
        const char *line = i == 0 ? expect : opts->headers[i - 1];
        len = strlen(line) + 1;
        nodes[i].data = memcpy(p, line, len);
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
        p += len;
    }
    r->hdrs = nodes;
}

static const hc_ops_t hcc_ops;

static cm_hc_req_t *hcc_request(hc_transport_t *t, const cm_hc_opts_t *opts, const hc_route_t *route)
{
    hcc_t *c = (hcc_t *)(void *)t;
    (void)route;
    creq_t *r = cm_xcalloc(1, sizeof(*r));
    hc_req_init(&r->base, &hcc_ops, opts);
    r->c = c;
    copy_strings(r, opts);
    if (c->npool) {
        r->easy = c->pool[--c->npool];
    } else {
        r->easy = curl_easy_init();
        if (!r->easy)
            abort();
        set_fixed_options(r->easy, c);
    }
    r->uent = url_lookup(c, r->url);
    if (r->uent)
        r->uent->refs++;
    set_options(r);
    c->active++;
    LIST_INSERT_HEAD(&c->live, r, link);
    if (opts->head_timeout_ms > 0 || opts->idle_timeout_s > 0) {
        r->head_ev = evtimer_new(c->evb, on_head_timeout, r);
        arm_deadline(r);
    }
    /* adding only asks curl for a timeout; the first socket_action runs from
     * the loop, so no callback runs inside this call */
    curl_multi_add_handle(c->multi, r->easy);
    return &r->base;
}

static void hcc_cancel(cm_hc_req_t *req)
{
    creq_t *r = (creq_t *)(void *)req;
    hcc_t *c = r->c;
    r->base.cancelled = true;
    if (c->depth > 0) {
        r->next_dead = c->dead;
        c->dead = r;
        return;
    }
    req_release(r);
    settle(c);
}

static void hcc_pause(cm_hc_req_t *req)
{
    req->paused = true; /* the next write callback answers CURL_WRITEFUNC_PAUSE */
}

static void hcc_resume(cm_hc_req_t *req)
{
    creq_t *r = (creq_t *)(void *)req;
    r->base.paused = false;
    if (!r->resume_ev)
        r->resume_ev = evtimer_new(r->c->evb, on_resume, r);
    struct timeval zero = { 0, 0 };
    evtimer_add(r->resume_ev, &zero);
}

static size_t hcc_active(const hc_transport_t *t)
{
    return ((const hcc_t *)(const void *)t)->active;
}

static void hcc_free(hc_transport_t *t)
{
    hcc_t *c = (hcc_t *)(void *)t;
    c->freeing = true;
    /* what is still in flight is cancelled: no callbacks */
    c->dead = NULL;
    while (!LIST_EMPTY(&c->live))
        req_release(LIST_FIRST(&c->live));
    for (size_t i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    for (size_t i = 0; i < c->nurls; i++) {
        curl_url_cleanup(c->urls[i].u);
        free(c->urls[i].url);
    }
    curl_multi_cleanup(c->multi); /* closes the idle sockets: close_cb drops them */
    for (size_t i = 0; i < c->capidle; i++)
        if (c->idle[i])
            idle_drop(c, c->idle[i]);
    free(c->idle);
    event_free(c->timer);
    free(c);
}

static const hc_ops_t hcc_ops = {
    .name = "libcurl",
    .request = hcc_request,
    .cancel = hcc_cancel,
    .pause = hcc_pause,
    .resume = hcc_resume,
    .active = hcc_active,
    .free = hcc_free,
};

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

hc_transport_t *hcc_new(struct event_base *base, cm_closer_t *closer)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    hcc_t *c = cm_xcalloc(1, sizeof(*c));
    c->base.ops = &hcc_ops;
    c->evb = base;
    c->closer = closer;
    LIST_INIT(&c->live);
    c->multi = curl_multi_init();
    if (!c->multi)
        abort(); /* out of memory: same policy as cm_xmalloc */
    c->timer = evtimer_new(base, on_timer, c);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 256L);
    return &c->base;
}
