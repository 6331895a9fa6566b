/* http_client: libcurl's multi_socket interface driven by a libevent loop.
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
#define MAX_HEADERS 64
#define HBUF_MIN 512 /* first size of a response head buffer; doubles up to hmax */
#define URL_CACHE 32  /* parsed URLs kept per client (CURLOPT_CURLU) */

/* A URL parsed once and handed to curl as a CURLU, so that curl skips parsing
 * and re-printing the URL on every request. refs: requests using it (curl
 * reads it while the transfer runs, so it is not replaced under them). */
typedef struct {
    char *url;
    CURLU *u;
    unsigned refs;
} url_ent_t;

typedef struct creq creq_t;

typedef struct sock {
    cm_hc_t *hc;
    curl_socket_t fd;
    short kind;
    bool idle; /* curl stopped watching it (kept alive in its cache): lingering */
    struct event *ev;
} sock_t;

struct cm_hc {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    cm_closer_t *closer; /* both transports' closed sockets, closed a turn later */
    int depth;    /* > 0 while curl is on the stack */
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
    hc_ev_t *ev; /* plain HTTP to numeric addresses: http_client_ev.c */
};

struct creq {
    cm_hc_req_t base; /* base.ev false */
    cm_hc_t *hc;
    CURL *easy;
    struct curl_slist *hdrs; /* in blk: no allocation per header line */
    cm_hc_opts_t o;
    char *url;               /* in blk */
    url_ent_t *uent;         /* the parsed URL, or NULL */
    char *blk;               /* one block: url, header list nodes and lines */
    struct event *resume_ev;
    int status;
    bool head_done, paused, cancelled, aborted, too_big, bad_status;
    bool clean; /* ended OK and never paused: the easy handle needs no reset */
    char *hbuf; /* response header lines, '\0'-separated; freed once delivered */
    size_t hlen, hcap, hmax;
    creq_t *next_dead;
    LIST_ENTRY(creq) link; /* hc->live */
    char errbuf[CURL_ERROR_SIZE];
};

const char *cm_hc_strerror(int result)
{
    switch (result) {
#define CM_HC_CASE(name, val, text) case val: return text;
        CM_HC_ERRORS(CM_HC_CASE)
#undef CM_HC_CASE
    default: return "unknown error";
    }
}

/* ---- curl -> libevent ---- */

static void drive(cm_hc_t *hc, curl_socket_t fd, int action);
static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud);
static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud);

static void idle_drop(cm_hc_t *hc, sock_t *sp)
{
    hc->idle[sp->fd] = NULL;
    event_free(sp->ev);
    free(sp);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    sock_t *sp = arg;
    if (sp->idle) {
        /* an idle connection woke up (closed by the peer, most likely): stop
         * watching it; curl finds it dead when it next tries to reuse it */
        idle_drop(sp->hc, sp);
        return;
    }
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    drive(sp->hc, fd, action);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    cm_hc_t *hc = arg;
    (void)fd;
    (void)what;
    hc->in_timer = true;
    drive(hc, CURL_SOCKET_TIMEOUT, 0);
    hc->in_timer = false;
}

static void set_kind(sock_t *sp, short kind)
{
    if (sp->kind == kind)
        return;
    /* del + assign: the changelist folds this into one epoll MOD */
    event_del(sp->ev);
    event_assign(sp->ev, sp->hc->base, sp->fd, kind, on_sock_event, sp);
    event_add(sp->ev, NULL);
    sp->kind = kind;
}

/* curl asks to watch s for what. A kept-alive connection is unwatched after
 * each transfer and watched again by the next one: an epoll DEL and ADD per
 * request. Instead the socket lingers in epoll (read only) while idle and is
 * taken up again without a system call; it leaves epoll when it wakes up
 * while idle or when curl closes it. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    cm_hc_t *hc = userp;
    sock_t *sp = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (!sp)
            return 0;
        curl_multi_assign(hc->multi, s, NULL);
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        /* only a connected socket can be a kept-alive connection: one whose
         * connect failed or timed out is closed by curl, possibly without
         * CLOSESOCKETFUNCTION, and an event left on it would make libevent
         * believe the next socket to get that number is already in epoll */
        if (hc->freeing || s < 0 || getpeername(s, (struct sockaddr *)&peer, &plen) != 0) {
            event_free(sp->ev);
            free(sp);
            return 0;
        }
        if ((size_t)s >= hc->capidle) {
            size_t cap = hc->capidle ? hc->capidle : 64;
            while (cap <= (size_t)s)
                cap *= 2;
            hc->idle = cm_xrealloc(hc->idle, cap * sizeof(*hc->idle));
            memset(hc->idle + hc->capidle, 0, (cap - hc->capidle) * sizeof(*hc->idle));
            hc->capidle = cap;
        }
        sp->idle = true;
        hc->idle[s] = sp;
        set_kind(sp, EV_READ | EV_PERSIST);
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                         EV_PERSIST);
    if (!sp && s >= 0 && (size_t)s < hc->capidle && hc->idle[s]) {
        sp = hc->idle[s]; /* the same open socket: curl reuses the connection */
        hc->idle[s] = NULL;
        sp->idle = false;
        curl_multi_assign(hc->multi, s, sp);
        set_kind(sp, kind);
        return 0;
    }
    if (!sp) {
        sp = cm_xcalloc(1, sizeof(*sp));
        sp->hc = hc;
        sp->fd = s;
        sp->kind = kind;
        sp->ev = event_new(hc->base, s, kind, on_sock_event, sp);
        curl_multi_assign(hc->multi, s, sp);
        event_add(sp->ev, NULL);
        return 0;
    }
    set_kind(sp, kind);
    return 0;
}

static void arm_timer(cm_hc_t *hc, long ms)
{
    if (ms < 0) {
        evtimer_del(hc->timer);
        return;
    }
    if (ms == 0 && !hc->in_timer) {
        /* "now": run later in this loop turn instead of after another
         * epoll_wait (a zero timer costs one system call per request). Not
         * from inside on_timer, so that curl asking again and again cannot
         * keep the loop from polling. */
        evtimer_del(hc->timer);
        event_active(hc->timer, EV_TIMEOUT, 1);
        return;
    }
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(hc->timer, &tv);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    arm_timer(userp, timeout_ms);
    return 0;
}

static int close_cb(void *clientp, curl_socket_t fd)
{
    cm_hc_t *hc = clientp;
    if (fd >= 0 && (size_t)fd < hc->capidle && hc->idle[fd])
        idle_drop(hc, hc->idle[fd]); /* out of epoll before the close below */
    if (hc->freeing)
        return close(fd);
    cm_closer_close(hc->closer, fd);
    return 0;
}

/* ---- request lifetime ---- */

/* Options that are the same for every request of a client: set when an easy
 * handle is made or reset. */
static void set_fixed_options(CURL *e, cm_hc_t *hc)
{
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, hc);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
}

static void req_release(creq_t *r)
{
    cm_hc_t *hc = r->hc;
    curl_multi_remove_handle(hc->multi, r->easy);
    LIST_REMOVE(r, link);
    if (r->uent)
        r->uent->refs--;
    if (hc->npool < POOL_MAX && !hc->freeing) {
        /* after a clean transfer no curl_easy_reset (3.5k instructions):
         * set_options sets every option a request may change */
        if (!r->clean) {
            curl_easy_reset(r->easy);
            set_fixed_options(r->easy, hc);
        }
        hc->pool[hc->npool++] = r->easy;
    } else {
        curl_easy_cleanup(r->easy);
    }
    if (r->resume_ev)
        event_free(r->resume_ev);
    free(r->hbuf);
    free(r->blk);
    free(r);
    hc->active--;
}

static int map_result(const creq_t *r, CURLcode rc)
{
    if (rc == CURLE_OK)
        return CM_HC_OK;
    if (r->too_big)
        return CM_HC_ETOOBIG;
    if (r->bad_status)
        return CM_HC_EPROTO;
    if (r->aborted)
        return CM_HC_EABORTED;
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

static void check_done(cm_hc_t *hc)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(hc->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        creq_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r || r->cancelled)
            continue; /* reaped below */
        CURLcode rc = msg->data.result;
        int res = map_result(r, rc);
        if (res == CM_HC_OK && !r->head_done)
            res = CM_HC_EIO;
        curl_multi_remove_handle(hc->multi, r->easy);
        r->clean = rc == CURLE_OK && !r->paused && !r->resume_ev;
        r->cancelled = true; /* no callback after on_done */
        if (r->o.on_done)
            r->o.on_done(&r->base, res, r->errbuf, r->o.ud);
        req_release(r);
    }
}

static void reap(cm_hc_t *hc)
{
    while (hc->dead) {
        creq_t *r = hc->dead;
        hc->dead = r->next_dead;
        req_release(r);
    }
}

/* Every return from curl ends here: deliver completions, free what was
 * cancelled meanwhile, and re-arm the timer from curl_multi_timeout(). */
static void settle(cm_hc_t *hc)
{
    if (hc->depth > 0)
        return;
    check_done(hc);
    reap(hc);
    long ms = -1;
    curl_multi_timeout(hc->multi, &ms);
    arm_timer(hc, ms);
}

static void drive(cm_hc_t *hc, curl_socket_t fd, int action)
{
    int running = 0;
    hc->depth++;
    curl_multi_socket_action(hc->multi, fd, action, &running);
    hc->depth--;
    settle(hc);
}

/* ---- curl callbacks of one request ---- */

static int deliver_head(creq_t *r)
{
    cm_hc_header_t h[MAX_HEADERS];
    size_t nh = 0;
    for (size_t off = 0; off < r->hlen && nh < MAX_HEADERS;) {
        char *line = r->hbuf + off;
        size_t n = strlen(line);
        off += n + 1;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        h[nh].name = line;
        h[nh].value = v;
        nh++;
    }
    if (!r->o.on_headers)
        return CM_HC_CONTINUE;
    return r->o.on_headers(&r->base, r->status, h, nh, r->o.ud);
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    creq_t *r = ud;
    size_t n = size * nmemb;
    if (r->cancelled || r->head_done)
        return r->cancelled ? 0 : n; /* trailers are ignored */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        r->hlen = 0; /* a new response head (after 1xx) */
        return n;
    }
    size_t len = n;
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len == 0) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 100 && code < 200)
            return n;
        if (code < 100 || code > 599) {
            r->bad_status = true;
            return 0;
        }
        r->status = (int)code;
        r->head_done = true;
        int rc = deliver_head(r);
        free(r->hbuf); /* not needed any more: a long stream should not hold it */
        r->hbuf = NULL;
        r->hlen = r->hcap = 0;
        if (rc != CM_HC_CONTINUE) {
            r->aborted = true;
            return 0;
        }
        return r->cancelled ? 0 : n;
    }
    if (r->hlen + len + 1 > r->hmax) {
        r->too_big = true;
        return 0;
    }
    if (r->hlen + len + 1 > r->hcap) {
        size_t cap = r->hcap ? r->hcap : HBUF_MIN;
        while (cap < r->hlen + len + 1)
            cap *= 2;
        r->hcap = cap < r->hmax ? cap : r->hmax;
        r->hbuf = cm_xrealloc(r->hbuf, r->hcap);
    }
    memcpy(r->hbuf + r->hlen, data, len);
    r->hbuf[r->hlen + len] = '\0';
    r->hlen += len + 1;
    return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    creq_t *r = ud;
    size_t n = size * nmemb;
    if (r->cancelled)
        return 0;
    if (r->paused)
        return CURL_WRITEFUNC_PAUSE;
    if (r->o.on_data && n > 0 && r->o.on_data(&r->base, data, n, r->o.ud) != CM_HC_CONTINUE) {
        r->aborted = true;
        return 0;
    }
    return r->cancelled ? 0 : n;
}

/* ---- public ---- */

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

cm_hc_t *cm_hc_new(struct event_base *base)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    cm_hc_t *hc = cm_xcalloc(1, sizeof(*hc));
    hc->base = base;
    hc->multi = curl_multi_init();
    if (!hc->multi)
        abort(); /* out of memory: same policy as cm_xmalloc */
    hc->closer = cm_closer_new(base);
    hc->ev = hc_ev_new(base, hc->closer);
    hc->timer = evtimer_new(base, on_timer, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, 256L);
    return hc;
}

void cm_hc_free(cm_hc_t *hc)
{
    if (!hc)
        return;
    hc->freeing = true;
    hc_ev_free(hc->ev);
    /* what is still in flight is cancelled: no callbacks */
    hc->dead = NULL;
    while (!LIST_EMPTY(&hc->live))
        req_release(LIST_FIRST(&hc->live));
    for (size_t i = 0; i < hc->npool; i++)
        curl_easy_cleanup(hc->pool[i]);
    for (size_t i = 0; i < hc->nurls; i++) {
        curl_url_cleanup(hc->urls[i].u);
        free(hc->urls[i].url);
    }
    curl_multi_cleanup(hc->multi); /* closes the idle sockets: close_cb drops them */
    for (size_t i = 0; i < hc->capidle; i++)
        if (hc->idle[i])
            idle_drop(hc, hc->idle[i]);
    free(hc->idle);
    cm_closer_free(hc->closer);
    event_free(hc->timer);
    free(hc);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    creq_t *r = arg;
    cm_hc_t *hc = r->hc;
    (void)fd;
    (void)what;
    if (r->paused || r->cancelled)
        return;
    hc->depth++;
    curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may deliver held data now */
    hc->depth--;
    settle(hc);
}

/* The parsed form of url from the client's cache (parsed now on a miss), or
 * NULL when it cannot be cached: curl then parses the URL itself. */
static url_ent_t *url_lookup(cm_hc_t *hc, const char *url)
{
    for (size_t i = 0; i < hc->nurls; i++)
        if (strcmp(hc->urls[i].url, url) == 0)
            return &hc->urls[i];
    url_ent_t *ent = NULL;
    if (hc->nurls < URL_CACHE) {
        ent = &hc->urls[hc->nurls];
    } else {
        /* full: replace in place (requests point at entries) one no request
         * uses, round-robin */
        for (size_t k = 0; k < URL_CACHE && !ent; k++) {
            url_ent_t *c = &hc->urls[(hc->url_next + k) % URL_CACHE];
            if (c->refs == 0)
                ent = c;
        }
        if (!ent)
            return NULL;
        hc->url_next = (size_t)(ent - hc->urls + 1) % URL_CACHE;
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
        hc->nurls++;
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
    const cm_hc_opts_t *o = &r->o;
    /* the string too: curl keeps it for messages and skips re-printing it */
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_CURLU, r->uent ? r->uent->u : NULL);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 0L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, o->idle_timeout_s > 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o->idle_timeout_s > 0 ? o->idle_timeout_s : 0L);
    /* both set: curl then reads none of the proxy variables (getenv) */
    curl_easy_setopt(e, CURLOPT_PROXY, o->no_proxy ? "" : NULL);
    curl_easy_setopt(e, CURLOPT_NOPROXY, o->no_proxy ? "*" : NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
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

cm_hc_req_t *cm_hc_request(cm_hc_t *hc, const cm_hc_opts_t *opts)
{
    if (!opts->url || !*opts->url)
        return NULL;
    if (!opts->force_curl) {
        cm_hc_req_t *er = hc_ev_request(hc->ev, opts);
        if (er)
            return er;
    }
    creq_t *r = cm_xcalloc(1, sizeof(*r));
    r->hc = hc;
    r->o = *opts;
    copy_strings(r, opts);
    r->o.url = r->url;
    r->o.headers = NULL; /* copied into r->hdrs */
    r->hmax = opts->max_header_bytes ? opts->max_header_bytes : 64 * 1024;
    if (hc->npool) {
        r->easy = hc->pool[--hc->npool];
    } else {
        r->easy = curl_easy_init();
        if (!r->easy)
            abort();
        set_fixed_options(r->easy, hc);
    }
    r->uent = url_lookup(hc, r->url);
    if (r->uent)
        r->uent->refs++;
    set_options(r);
    hc->active++;
    LIST_INSERT_HEAD(&hc->live, r, link);
    /* adding only asks curl for a timeout; the first socket_action runs from
     * the loop, so no callback runs inside this call */
    curl_multi_add_handle(hc->multi, r->easy);
    return &r->base;
}

void cm_hc_cancel(cm_hc_req_t *req)
{
    if (req && req->ev) {
        hc_ev_cancel(req);
        return;
    }
    creq_t *r = (creq_t *)(void *)req;
    if (!r || r->cancelled)
        return;
    cm_hc_t *hc = r->hc;
    r->cancelled = true;
    if (hc->depth > 0) {
        r->next_dead = hc->dead;
        hc->dead = r;
        return;
    }
    req_release(r);
    settle(hc);
}

void cm_hc_pause(cm_hc_req_t *req)
{
    if (req->ev) {
        hc_ev_pause(req);
        return;
    }
    creq_t *r = (creq_t *)(void *)req;
    r->paused = true; /* the next write callback answers CURL_WRITEFUNC_PAUSE */
}

void cm_hc_resume(cm_hc_req_t *req)
{
    if (req->ev) {
        hc_ev_resume(req);
        return;
    }
    creq_t *r = (creq_t *)(void *)req;
    if (!r->paused)
        return;
    r->paused = false;
    if (!r->resume_ev)
        r->resume_ev = evtimer_new(r->hc->base, on_resume, r);
    struct timeval zero = { 0, 0 };
    evtimer_add(r->resume_ev, &zero);
}

bool cm_hc_paused(const cm_hc_req_t *r)
{
    return r->ev ? hc_ev_paused(r) : ((const creq_t *)(const void *)r)->paused;
}

int cm_hc_status(const cm_hc_req_t *r)
{
    return r->ev ? hc_ev_status(r) : ((const creq_t *)(const void *)r)->status;
}

size_t cm_hc_active(const cm_hc_t *hc) { return hc->active + hc_ev_active(hc->ev); }
