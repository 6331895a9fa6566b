/* The contract of common/http_client.h, tested against a tiny local server
 * (common/http_server on 127.0.0.1, one worker thread) and raw sockets:
 * bodies, headers, streaming, pause/resume, cancel, timeouts, refused
 * connections, keep-alive reuse, many at once, interim responses, head
 * bounds. Every test runs twice, unchanged: through the own transport
 * (http_client_ev.c: no_proxy, numeric host) and through libcurl
 * (http_client_curl.c: force_curl); each request checks that the transport
 * under test is the one that carried it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_client.h"
#include "http_client_impl.h" /* which transport carried a request */
#include "http_server.h"
#include "util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static cm_http_server_t *srv;
static int port;
static atomic_int last_peer_port;
static atomic_int hang_closed;
static bool use_curl; /* which transport this round tests */

/* r went through the transport under test */
static void assert_transport(const cm_hc_req_t *r)
{
    assert_non_null(r);
    assert_string_equal(r->ops->name, use_curl ? "libcurl" : "own");
}

/* ---- the server ---- */

static void h_echo(cm_http_req_t *req, void *ud)
{
    (void)ud;
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    const char *ct = cm_http_req_header(req, "Content-Type");
    cm_http_add_header(req, "X-Seen-Type", ct ? ct : "none");
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    if (getpeername(cm_http_req_fd(req), (struct sockaddr *)&peer, &plen) == 0)
        last_peer_port = ntohs(peer.sin_port);
    cm_http_reply(req, 200, "application/octet-stream", body, len);
}

static void h_fail(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 500, NULL, "boom", NULL, "it broke");
}

typedef struct {
    cm_http_req_t *req;
    struct event *ev;
    int sent, total;
    size_t size;
} streamer_t;

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    streamer_t *s = arg;
    if (s->sent == s->total || cm_http_req_closed(s->req)) {
        cm_http_stream_end(s->req);
        event_free(s->ev);
        free(s);
        return;
    }
    char *chunk = cm_xmalloc(s->size);
    memset(chunk, 'a' + s->sent % 26, s->size);
    s->sent++;
    cm_http_stream_write(s->req, chunk, s->size);
    free(chunk);
    struct timeval tv = { 0, s->size > 1000 ? 0 : 5000 };
    event_add(s->ev, &tv);
}

/* /drip/:n/:ms: n chunks of 200 bytes, ms apart (a stream whose events
 * come seconds apart) */
typedef struct {
    cm_http_req_t *req;
    struct event *ev;
    int left;
    long ms;
} drip_t;

static void drip_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drip_t *d = arg;
    if (d->left-- == 0 || cm_http_req_closed(d->req)) {
        cm_http_stream_end(d->req);
        event_free(d->ev);
        free(d);
        return;
    }
    char chunk[200];
    memset(chunk, 'd', sizeof(chunk));
    cm_http_stream_write(d->req, chunk, sizeof(chunk));
    struct timeval tv = { d->ms / 1000, (d->ms % 1000) * 1000 };
    event_add(d->ev, &tv);
}

static void h_drip(cm_http_req_t *req, void *ud)
{
    (void)ud;
    drip_t *d = cm_xcalloc(1, sizeof(*d));
    d->req = req;
    d->left = atoi(cm_http_req_param(req, "n"));
    d->ms = atol(cm_http_req_param(req, "ms"));
    d->ev = evtimer_new(cm_http_req_base(req), drip_tick, d);
    cm_http_stream_start(req, 200, "text/event-stream");
    drip_tick(-1, 0, d);
}

/* /stream/:n/:size: n chunks of size bytes, 5 ms apart when small */
static void h_stream(cm_http_req_t *req, void *ud)
{
    (void)ud;
    streamer_t *s = cm_xcalloc(1, sizeof(*s));
    s->req = req;
    s->total = atoi(cm_http_req_param(req, "n"));
    s->size = (size_t)atoi(cm_http_req_param(req, "size"));
    s->ev = evtimer_new(cm_http_req_base(req), stream_tick, s);
    cm_http_stream_start(req, 200, "text/event-stream");
    stream_tick(-1, 0, s);
}

/* /trailers: a chunked body of two chunks that ends with trailer fields
 * when the client sent TE: trailers (announced in a Trailer header), and
 * with a bare last chunk otherwise */
static void h_trailers(cm_http_req_t *req, void *ud)
{
    (void)ud;
    bool te = cm_http_req_te_trailers(req);
    if (te)
        cm_http_add_header(req, "Trailer", "X-LLM-Usage, X-Two");
    cm_http_stream_start(req, 200, "text/event-stream");
    cm_http_stream_write(req, "data: 1\n\n", 9);
    cm_http_stream_write(req, "data: 2\n\n", 9);
    static const char *const fields[] = { "X-LLM-Usage: {\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}",
                                          "X-Two:  two", NULL };
    if (te)
        cm_http_stream_end_trailers(req, fields);
    else
        cm_http_stream_end(req);
}

static void hang_close(cm_http_req_t *req, void *arg)
{
    (void)arg;
    hang_closed++;
    cm_http_reply(req, 200, NULL, NULL, 0);
}

static void h_hang(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_req_on_close(req, hang_close, NULL);
}

typedef struct {
    cm_http_req_t *req;
    struct event *ev;
} late_t;

static void late_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    late_t *l = arg;
    cm_http_reply(l->req, 200, "application/json", "{}", 2);
    event_free(l->ev);
    free(l);
}

/* /late/:ms: the whole answer after ms, nothing before (a server working out
 * its answer before it sends the head) */
static void h_late(cm_http_req_t *req, void *ud)
{
    (void)ud;
    late_t *l = cm_xcalloc(1, sizeof(*l));
    l->req = req;
    l->ev = evtimer_new(cm_http_req_base(req), late_fire, l);
    long ms = atol(cm_http_req_param(req, "ms"));
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(l->ev, &tv);
}

static const cm_http_route_t routes[] = {
    { "GET", "/late/:ms", h_late, 0 },
    { "POST", "/echo", h_echo, 0 },
    { "GET", "/echo", h_echo, 0 },
    { "GET", "/fail", h_fail, 0 },
    { "GET", "/stream/:n/:size", h_stream, 0 },
    { "GET", "/drip/:n/:ms", h_drip, 0 },
    { "GET", "/hang", h_hang, 0 },
    { "GET", "/trailers", h_trailers, 0 },
};

static int setup(void **state)
{
    (void)state;
    cm_util_init();
    char err[128];
    cm_http_server_opts_t o = { .host = "127.0.0.1", .port = 0, .workers = 1, .max_body = 8 << 20,
                                .timeout_secs = 30, .routes = routes, .nroutes = CM_ARRAY_LEN(routes) };
    assert_int_equal(cm_http_server_start(&o, &srv, err, sizeof(err)), 0);
    port = cm_http_server_port(srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(srv);
    return 0;
}

/* ---- the client side ---- */

typedef struct {
    struct event_base *base;
    cm_hc_t *hc;
    int status;
    char ctype[64], seen_type[64];
    char *body;
    size_t len;
    int chunks;
    int result;
    int done;
    int want_done;
    bool pause_first;
    bool cancel_in_data;
    int data_while_paused;
    cm_hc_req_t *r;
    struct event *resume_ev;
    char detail[160];   /* on_done's */
    size_t nh;          /* headers of the last response */
    char heads[4096];   /* "name=value\n" each */
    const char *const *hdrs; /* start()'s request headers (NULL: a Content-Type) */
    bool want_trailers;      /* set on_trailers */
    bool cancel_in_trailers;
    int trailer_calls;
    int chunks_at_trailers, done_at_trailers; /* on_data / on_done calls before on_trailers */
    size_t ntrail;
    char trails[4096];       /* "name=value\n" each */
} ctx_t;

static int on_headers(cm_hc_req_t *r, int status, const cm_hc_header_t *h, size_t nh, void *ud)
{
    ctx_t *c = ud;
    (void)r;
    c->status = status;
    c->nh = nh;
    size_t off = 0;
    for (size_t i = 0; i < nh && off < sizeof(c->heads); i++)
        off += (size_t)snprintf(c->heads + off, sizeof(c->heads) - off, "%s=%s\n", h[i].name, h[i].value);
    for (size_t i = 0; i < nh; i++) {
        if (strcasecmp(h[i].name, "Content-Type") == 0)
            snprintf(c->ctype, sizeof(c->ctype), "%s", h[i].value);
        if (strcasecmp(h[i].name, "X-Seen-Type") == 0)
            snprintf(c->seen_type, sizeof(c->seen_type), "%s", h[i].value);
    }
    return CM_HC_CONTINUE;
}

static void on_trailers(cm_hc_req_t *r, const cm_hc_header_t *h, size_t nh, void *ud)
{
    ctx_t *c = ud;
    c->trailer_calls++;
    c->chunks_at_trailers = c->chunks;
    c->done_at_trailers = c->done;
    c->ntrail = nh;
    size_t off = 0;
    for (size_t i = 0; i < nh && off < sizeof(c->trails); i++)
        off += (size_t)snprintf(c->trails + off, sizeof(c->trails) - off, "%s=%s\n", h[i].name, h[i].value);
    if (c->cancel_in_trailers) {
        cm_hc_cancel(r);
        struct timeval tv = { 0, 50000 };
        event_base_loopexit(c->base, &tv);
    }
}

static void on_resume_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ctx_t *c = arg;
    c->pause_first = false;
    cm_hc_resume(c->r);
}

static int on_data(cm_hc_req_t *r, const char *data, size_t len, void *ud)
{
    ctx_t *c = ud;
    if (c->pause_first && c->chunks > 0)
        c->data_while_paused++;
    c->body = cm_xrealloc(c->body, c->len + len + 1);
    memcpy(c->body + c->len, data, len);
    c->len += len;
    c->body[c->len] = '\0';
    c->chunks++;
    if (c->cancel_in_data) {
        cm_hc_cancel(r);
        struct timeval tv = { 0, 50000 };
        event_base_loopexit(c->base, &tv);
        return CM_HC_CONTINUE;
    }
    if (c->pause_first && c->chunks == 1) {
        cm_hc_pause(r);
        c->resume_ev = evtimer_new(c->base, on_resume_timer, c);
        struct timeval tv = { 0, 100000 };
        evtimer_add(c->resume_ev, &tv);
    }
    return CM_HC_CONTINUE;
}

static void on_done(cm_hc_req_t *r, int result, const char *detail, void *ud)
{
    ctx_t *c = ud;
    (void)r;
    snprintf(c->detail, sizeof(c->detail), "%s", detail);
    c->result = result;
    if (++c->done >= (c->want_done ? c->want_done : 1))
        event_base_loopbreak(c->base);
}

static void ctx_init(ctx_t *c)
{
    memset(c, 0, sizeof(*c));
    c->base = event_base_new();
    c->hc = cm_hc_new(c->base);
    c->result = 99;
}

static void ctx_free(ctx_t *c)
{
    cm_hc_free(c->hc);
    if (c->resume_ev)
        event_free(c->resume_ev);
    event_base_free(c->base);
    free(c->body);
}

static cm_hc_req_t *start(ctx_t *c, const char *method, const char *path, const char *body, size_t blen,
                          long timeout_ms)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    static const char *const hdrs[] = { "Content-Type: application/json", NULL };
    cm_hc_opts_t o = { .method = method, .url = url, .headers = c->hdrs ? c->hdrs : hdrs, .body = body, .body_len = blen,
                       .timeout_ms = timeout_ms, .no_proxy = true, .force_curl = use_curl, .on_headers = on_headers, .on_data = on_data,
                       .on_trailers = c->want_trailers ? on_trailers : NULL, .on_done = on_done, .ud = c };
    c->r = cm_hc_request(c->hc, &o);
    assert_transport(c->r);
    return c->r;
}

static void run(ctx_t *c)
{
    struct timeval limit = { 10, 0 }; /* every wait bounded */
    event_base_loopexit(c->base, &limit);
    event_base_dispatch(c->base);
}

static void test_get_and_post(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    start(&c, "GET", "/echo", NULL, 0, 0);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.ctype, "application/octet-stream");
    assert_int_equal(c.len, 0);
    int first_port = last_peer_port;

    size_t n = 300 * 1024;
    char *big = cm_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('0' + i % 10);
    c.done = 0;
    start(&c, "POST", "/echo", big, n, 0);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.len, n);
    assert_memory_equal(c.body, big, n);
    assert_string_equal(c.seen_type, "application/json");
    assert_int_equal(last_peer_port, first_port); /* keep-alive: same connection */
    assert_int_equal(cm_hc_active(c.hc), 0);
    free(big);
    ctx_free(&c);
}

static void test_error_status_relayed(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    start(&c, "GET", "/fail", NULL, 0, 0);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.status, 500);
    assert_non_null(strstr(c.body, "it broke"));
    ctx_free(&c);
}

static void test_streaming_chunks(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    start(&c, "GET", "/stream/5/10", NULL, 0, 0);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_string_equal(c.ctype, "text/event-stream");
    assert_int_equal(c.len, 50);
    assert_true(c.chunks >= 2); /* delivered as it came, not at the end */
    ctx_free(&c);
}

static void test_pause_resume(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    c.pause_first = true;
    start(&c, "GET", "/stream/64/65536", NULL, 0, 0); /* 4 MiB */
    uint64_t t0 = cm_now_ms();
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.len, 64 * 65536);
    assert_int_equal(c.data_while_paused, 0);
    assert_true(cm_now_ms() - t0 >= 90);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(c.body[i * 65536 + 100], 'a' + (int)i % 26);
    ctx_free(&c);
}

static void test_cancel_in_callback(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    c.cancel_in_data = true;
    start(&c, "GET", "/stream/50/10", NULL, 0, 0);
    run(&c);
    assert_int_equal(c.done, 0);
    assert_int_equal(c.chunks, 1);
    assert_int_equal(cm_hc_active(c.hc), 0);
    /* the client still works */
    c.cancel_in_data = false;
    start(&c, "GET", "/echo", NULL, 0, 0);
    run(&c);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.result, CM_HC_OK);
    ctx_free(&c);
}

static void test_cancel_outside_and_free_with_live(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    cm_hc_req_t *r = start(&c, "GET", "/hang", NULL, 0, 0);
    cm_hc_cancel(r);
    start(&c, "GET", "/hang", NULL, 0, 0);
    struct timeval tv = { 0, 100000 };
    event_base_loopexit(c.base, &tv);
    event_base_dispatch(c.base);
    assert_int_equal(c.done, 0);
    ctx_free(&c); /* frees the live request without callbacks */
}

static void test_timeout(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    int before = hang_closed;
    start(&c, "GET", "/hang", NULL, 0, 200);
    uint64_t t0 = cm_now_ms();
    run(&c);
    assert_int_equal(c.result, CM_HC_ETIMEOUT);
    assert_true(cm_now_ms() - t0 < 2000);
    ctx_free(&c);
    for (int i = 0; i < 100 && hang_closed == before; i++)
        usleep(10000);
    assert_true(hang_closed > before); /* the server saw the close */
}

static cm_hc_req_t *start_timed(ctx_t *c, const char *path, long head_ms, long idle_s)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    cm_hc_opts_t o = { .url = url, .head_timeout_ms = head_ms, .idle_timeout_s = idle_s, .no_proxy = true,
                       .force_curl = use_curl, .on_headers = on_headers, .on_data = on_data, .on_done = on_done,
                       .ud = c };
    c->r = cm_hc_request(c->hc, &o);
    assert_transport(c->r);
    return c->r;
}

/* a server that never sends its head: ETIMEOUT at head_timeout_ms, though
 * the idle timeout is far off */
static void test_head_timeout(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    int before = hang_closed;
    start_timed(&c, "/hang", 300, 30);
    uint64_t t0 = cm_now_ms();
    run(&c);
    uint64_t took = cm_now_ms() - t0;
    assert_int_equal(c.result, CM_HC_ETIMEOUT);
    assert_non_null(strstr(c.detail, "no response head within 300 ms"));
    assert_true(took >= 250 && took < 2000);
    ctx_free(&c);
    for (int i = 0; i < 100 && hang_closed == before; i++)
        usleep(10000);
    assert_true(hang_closed > before);
}

/* while the head is awaited the idle timeout does not apply (an answer
 * worked out whole before its head), and once the head is in the head
 * deadline is over: a body longer than it streams to its end */
static void test_head_timeout_scope(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    start_timed(&c, "/late/1500", 4000, 1);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.status, 200);
    ctx_free(&c);
    ctx_init(&c);
    start_timed(&c, "/stream/60/10", 150, 5); /* 60 chunks 5 ms apart: ~300 ms */
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.len, 600);
    ctx_free(&c);
}

/* the idle timeout is a silence between body bytes, not an average rate:
 * 200 bytes every 2.6 s trips a 2 s idle timeout after the first chunk
 * (curl's low-speed options, averaged over seconds, would not), while gaps
 * shorter than it stream to the end */
static void test_idle_is_silence(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    start_timed(&c, "/drip/4/2600", 0, 2);
    uint64_t t0 = cm_now_ms();
    run(&c);
    uint64_t took = cm_now_ms() - t0;
    assert_int_equal(c.result, CM_HC_ETIMEOUT);
    assert_int_equal(c.len, 200);
    assert_true(took >= 1900 && took < 2600);
    ctx_free(&c);
    ctx_init(&c);
    start_timed(&c, "/drip/3/400", 5000, 1);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.len, 600);
    ctx_free(&c);
}

static void test_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd); /* nobody listens there now */
    ctx_t c;
    ctx_init(&c);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    cm_hc_opts_t o = { .url = url, .no_proxy = true, .force_curl = use_curl, .on_done = on_done, .ud = &c };
    assert_transport(cm_hc_request(c.hc, &o));
    run(&c);
    assert_int_equal(c.result, CM_HC_ECONNECT);
    assert_string_equal(cm_hc_strerror(CM_HC_ECONNECT), "connection failed");
    ctx_free(&c);
}

static void test_many_at_once(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    c.want_done = 100;
    for (int i = 0; i < 100; i++)
        start(&c, "POST", "/echo", "{\"k\":1}", 7, 0);
    run(&c);
    assert_int_equal(c.done, 100);
    assert_int_equal(c.len, 700);
    ctx_free(&c);
}

/* Pooled easy handles are not reset after a clean transfer, and URLs are
 * parsed once per client: what one request set must not leak into the next
 * (method, body, timeout), and more distinct URLs than the cache holds, also
 * at once, still work. */
static void test_handle_and_url_reuse(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    start(&c, "POST", "/echo", "abc", 3, 100);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.len, 3);
    c.done = 0;
    c.len = 0;
    start(&c, "GET", "/echo", NULL, 0, 0); /* GET again: no body sent */
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.len, 0);
    c.done = 0;
    start(&c, "GET", "/stream/30/10", NULL, 0, 0); /* ~150 ms: the 100 ms timeout is gone */
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.len, 300);

    for (int i = 0; i < 40; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/echo?n=%d", i);
        c.done = 0;
        c.len = 0;
        start(&c, "POST", path, "xy", 2, 0);
        run(&c);
        assert_int_equal(c.result, CM_HC_OK);
        assert_int_equal(c.len, 2);
    }
    c.done = 0;
    c.len = 0;
    c.want_done = 40;
    for (int i = 0; i < 40; i++) { /* more in flight than the cache holds */
        char path[32];
        snprintf(path, sizeof(path), "/echo?m=%d", i);
        start(&c, "POST", path, "z", 1, 0);
    }
    run(&c);
    assert_int_equal(c.done, 40);
    assert_int_equal(c.len, 40);
    assert_int_equal(cm_hc_active(c.hc), 0);

    c.done = 0;
    c.want_done = 0;
    cm_hc_opts_t o = { .url = "http://[::1", .on_done = on_done, .ud = &c }; /* curl's own parse fails */
    assert_non_null(cm_hc_request(c.hc, &o));
    run(&c);
    assert_int_equal(c.done, 1);
    assert_int_not_equal(c.result, CM_HC_OK);
    ctx_free(&c);
}

/* ---- a raw server that closes a kept-alive connection as the next request
 * arrives (the race every keep-alive client meets) ---- */

typedef struct {
    int lfd;
    atomic_int requests, conns;
} raw_t;

/* A listening socket on 127.0.0.1 (any port) and the URL of /x on it. */
static int raw_listen(int backlog, char *url, size_t ulen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    snprintf(url, ulen, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    return fd;
}

static bool read_request(int fd)
{
    char buf[4096];
    size_t n = 0;
    while (n < sizeof(buf) - 1) {
        ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (k <= 0)
            return false;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return true;
    }
    return false;
}

/* Reads one request on fd and, when reply is not NULL, writes it. */
static void answer(raw_t *rs, int fd, const char *reply)
{
    if (!read_request(fd))
        return;
    rs->requests++;
    if (reply)
        assert_true(write(fd, reply, strlen(reply)) > 0);
}

static int accept_one(raw_t *rs)
{
    int fd = accept(rs->lfd, NULL, NULL);
    rs->conns++;
    return fd;
}

static void *raw_main(void *arg)
{
    raw_t *rs = arg;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    /* connection 1: answers one request, then closes on the second */
    int fd = accept_one(rs);
    answer(rs, fd, ok);
    answer(rs, fd, NULL);
    close(fd);
    /* connection 2: answers */
    fd = accept_one(rs);
    answer(rs, fd, ok);
    close(fd);
    return NULL;
}

static void test_stale_keepalive_retried(void **state)
{
    (void)state;
    char url[64];
    raw_t rs = { .lfd = raw_listen(8, url, sizeof(url)) };
    pthread_t th;
    pthread_create(&th, NULL, raw_main, &rs);
    ctx_t c;
    ctx_init(&c);
    for (int i = 0; i < 2; i++) {
        cm_hc_opts_t o = { .url = url, .no_proxy = true, .force_curl = use_curl, .on_headers = on_headers,
                           .on_data = on_data, .on_done = on_done, .ud = &c };
        c.done = 0;
        c.len = 0;
        assert_transport(cm_hc_request(c.hc, &o));
        run(&c);
        assert_int_equal(c.result, CM_HC_OK);
        assert_int_equal(c.status, 200);
        assert_int_equal(c.len, 2);
    }
    pthread_join(th, NULL);
    close(rs.lfd);
    assert_int_equal(rs.conns, 2);
    assert_int_equal(rs.requests, 3); /* the second request was sent twice */
    ctx_free(&c);
}

/* A connection that was never used before gets no second try: the failure is
 * the node's, and the caller decides (the router retries on another node). */
static void *close_at_once(void *arg)
{
    raw_t *rs = arg;
    int fd = accept_one(rs);
    answer(rs, fd, NULL);
    close(fd);
    return NULL;
}

static void test_fresh_connection_not_retried(void **state)
{
    (void)state;
    char url[64];
    raw_t rs = { .lfd = raw_listen(8, url, sizeof(url)) };
    pthread_t th;
    pthread_create(&th, NULL, close_at_once, &rs);
    ctx_t c;
    ctx_init(&c);
    cm_hc_opts_t o = { .url = url, .no_proxy = true, .force_curl = use_curl, .connect_timeout_ms = 2000,
                       .on_done = on_done, .ud = &c };
    assert_transport(cm_hc_request(c.hc, &o));
    run(&c);
    pthread_join(th, NULL);
    close(rs.lfd);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.result, CM_HC_EIO);
    assert_int_equal(rs.requests, 1);
    ctx_free(&c);
}

/* A response code that is not an HTTP status is refused (CM_HC_EPROTO, no
 * on_headers): the router must not relay "HTTP/1.1 -1" to its client. */
static const char *const bad_status[] = {
    "HTTP/1.1 99999999999 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 600 Nope\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 -5 Minus\r\nContent-Length: 2\r\n\r\nok",
};

/* A raw server that answers connection i with replies[i] and closes it. */
typedef struct {
    raw_t rs;
    const char *const *replies;
    size_t n;
} canned_t;

static void *canned_main(void *arg)
{
    canned_t *cs = arg;
    for (size_t i = 0; i < cs->n; i++) {
        int fd = accept_one(&cs->rs);
        answer(&cs->rs, fd, cs->replies[i]);
        close(fd); /* the request was read whole: no reset */
    }
    return NULL;
}

/* Serves replies (one connection each), makes one request per reply with
 * max_head as the head bound, and checks each result against want. */
static void run_canned(ctx_t *c, const char *const *replies, size_t n, size_t max_head, const int *want)
{
    char url[64];
    canned_t cs = { .rs.lfd = raw_listen(8, url, sizeof(url)), .replies = replies, .n = n };
    pthread_t th;
    pthread_create(&th, NULL, canned_main, &cs);
    for (size_t i = 0; i < n; i++) {
        cm_hc_opts_t o = { .url = url, .no_proxy = true, .force_curl = use_curl, .max_header_bytes = max_head,
                           .on_headers = on_headers, .on_data = on_data,
                           .on_trailers = c->want_trailers ? on_trailers : NULL, .on_done = on_done, .ud = c };
        c->done = 0;
        c->status = 0;
        c->len = 0;
        c->result = 99;
        assert_transport(cm_hc_request(c->hc, &o));
        run(c);
        assert_int_equal(c->done, 1);
        assert_int_equal(c->result, want[i]);
        if (want[i] != CM_HC_OK)
            assert_int_equal(c->status, 0); /* a refused head never reached on_headers */
    }
    pthread_join(th, NULL);
    close(cs.rs.lfd);
    assert_int_equal(cs.rs.requests, (int)n);
}

static void test_bad_status_refused(void **state)
{
    (void)state;
    ctx_t c;
    ctx_init(&c);
    int want[CM_ARRAY_LEN(bad_status)];
    for (size_t i = 0; i < CM_ARRAY_LEN(bad_status); i++)
        want[i] = CM_HC_EPROTO;
    run_canned(&c, bad_status, CM_ARRAY_LEN(bad_status), 0, want);
    assert_int_equal(c.status, 0); /* on_headers never saw one */
    assert_int_equal(c.len, 0);
    ctx_free(&c);
}

/* Interim (1xx) responses are skipped: on_headers sees the final status and
 * only its headers. */
static void test_interim_responses_skipped(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok",
    };
    ctx_t c;
    ctx_init(&c);
    run_canned(&c, replies, 1, 0, (const int[]){ CM_HC_OK });
    assert_int_equal(c.status, 201);
    assert_non_null(strstr(c.heads, "X-Final=yes\n"));
    assert_null(strstr(c.heads, "Link"));
    assert_int_equal(c.len, 2);
    ctx_free(&c);
}

/* Header lines are split the same way by both transports: an empty value, a
 * value after blanks, and at most 64 headers given to on_headers. */
static void test_header_shapes(void **state)
{
    (void)state;
    static char reply[4096];
    char *p = reply;
    p += sprintf(p, "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaced: \t spaced\r\n");
    for (int i = 0; i < 70; i++)
        p += sprintf(p, "X-N%d: %d\r\n", i, i);
    sprintf(p, "Content-Length: 2\r\n\r\nok");
    const char *const replies[] = { reply };
    ctx_t c;
    ctx_init(&c);
    run_canned(&c, replies, 1, 0, (const int[]){ CM_HC_OK });
    assert_int_equal(c.status, 200);
    assert_int_equal(c.nh, 64);
    assert_true(strncmp(c.heads, "X-Empty=\nX-Spaced=spaced\nX-N0=0\n", 32) == 0);
    assert_non_null(strstr(c.heads, "\nX-N61=61\n"));
    assert_null(strstr(c.heads, "X-N62"));
    assert_int_equal(c.len, 2); /* the body still came: Content-Length was read, not given */
    ctx_free(&c);
}

/* A response head past max_header_bytes ends the request with ETOOBIG before
 * on_headers; under the bound the same head goes through. */
static void test_head_bound(void **state)
{
    (void)state;
    static char reply[4096];
    char *p = reply;
    p += sprintf(p, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(p, 'a', 2000);
    p += 2000;
    sprintf(p, "\r\nContent-Length: 2\r\n\r\nok");
    const char *const replies[] = { reply };
    ctx_t c;
    ctx_init(&c);
    run_canned(&c, replies, 1, 1024, (const int[]){ CM_HC_ETOOBIG });
    assert_int_equal(c.status, 0);
    run_canned(&c, replies, 1, 4096, (const int[]){ CM_HC_OK });
    assert_int_equal(c.status, 200);
    assert_int_equal(c.nh, 2);
    ctx_free(&c);
}

/* A chunked response's trailer fields reach on_trailers once, after the
 * last on_data and before on_done, when the request sent TE: trailers (the
 * server's cm_http_stream_end_trailers); the Trailer header announced them.
 * Without TE the server sends none and on_trailers is not called; without
 * on_trailers the same response still completes. */
static void test_trailers(void **state)
{
    (void)state;
    static const char *const te[] = { "TE: trailers", NULL };
    ctx_t c;
    ctx_init(&c);
    c.hdrs = te;
    c.want_trailers = true;
    start(&c, "GET", "/trailers", NULL, 0, 5000);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "data: 1\n\ndata: 2\n\n");
    assert_non_null(strstr(c.heads, "Trailer=X-LLM-Usage, X-Two\n"));
    assert_int_equal(c.trailer_calls, 1);
    assert_int_equal(c.chunks_at_trailers, c.chunks); /* after the last on_data */
    assert_int_equal(c.done_at_trailers, 0);          /* before on_done */
    assert_int_equal(c.ntrail, 2);
    assert_string_equal(c.trails, "X-LLM-Usage={\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}\n"
                                  "X-Two=two\n");
    ctx_free(&c);

    ctx_init(&c); /* no TE: no trailer, no Trailer header */
    c.want_trailers = true;
    start(&c, "GET", "/trailers", NULL, 0, 5000);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_string_equal(c.body, "data: 1\n\ndata: 2\n\n");
    assert_null(strstr(c.heads, "Trailer="));
    assert_int_equal(c.trailer_calls, 0);
    ctx_free(&c);

    ctx_init(&c); /* trailers sent, nobody asked for them */
    c.hdrs = te;
    start(&c, "GET", "/trailers", NULL, 0, 5000);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_string_equal(c.body, "data: 1\n\ndata: 2\n\n");
    ctx_free(&c);

    ctx_init(&c); /* twice on one kept-alive connection: the second is framed right */
    c.hdrs = te;
    c.want_trailers = true;
    c.want_done = 1;
    start(&c, "GET", "/trailers", NULL, 0, 5000);
    run(&c);
    c.done = 0;
    c.trailer_calls = 0;
    c.len = 0;
    start(&c, "GET", "/trailers", NULL, 0, 5000);
    run(&c);
    assert_int_equal(c.result, CM_HC_OK);
    assert_int_equal(c.trailer_calls, 1);
    assert_string_equal(c.body, "data: 1\n\ndata: 2\n\n");
    ctx_free(&c);
}

/* Trailers from a raw server: several fields and one without a value; the
 * head and the trailers together are bounded by max_header_bytes (ETOOBIG
 * past it, the same response fine under it); cm_hc_cancel from on_trailers
 * means no on_done. */
static void test_trailer_shapes_and_bound(void **state)
{
    (void)state;
    static char big[4096];
    char *p = big;
    p += sprintf(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Big: ");
    memset(p, 'a', 2000);
    p += 2000;
    sprintf(p, "\r\n\r\n");
    static const char *const shapes[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nok\r\n0\r\nX-A: 1\r\nX-Empty:\r\nX-B:  b b\r\n\r\n",
    };
    ctx_t c;
    ctx_init(&c);
    c.want_trailers = true;
    run_canned(&c, shapes, 1, 0, (const int[]){ CM_HC_OK });
    assert_int_equal(c.trailer_calls, 1);
    assert_int_equal(c.ntrail, 3);
    assert_string_equal(c.trails, "X-A=1\nX-Empty=\nX-B=b b\n");
    assert_int_equal(c.len, 2);

    const char *const replies[] = { big };
    c.trailer_calls = 0;
    run_canned(&c, replies, 1, 4096, (const int[]){ CM_HC_OK });
    assert_int_equal(c.trailer_calls, 1);
    assert_int_equal(strlen(c.trails), strlen("X-Big=\n") + 2000);
    ctx_free(&c);

    ctx_init(&c); /* the head fits in 1024 bytes, head and trailers do not */
    c.want_trailers = true;
    char url[64];
    canned_t cs = { .rs.lfd = raw_listen(8, url, sizeof(url)), .replies = replies, .n = 1 };
    pthread_t th;
    pthread_create(&th, NULL, canned_main, &cs);
    cm_hc_opts_t ro = { .url = url, .no_proxy = true, .force_curl = use_curl, .max_header_bytes = 1024,
                        .on_headers = on_headers, .on_data = on_data, .on_trailers = on_trailers,
                        .on_done = on_done, .ud = &c };
    assert_transport(cm_hc_request(c.hc, &ro));
    run(&c);
    pthread_join(th, NULL);
    close(cs.rs.lfd);
    assert_int_equal(c.status, 200); /* the head was fine */
    assert_int_equal(c.result, CM_HC_ETOOBIG);
    assert_non_null(strstr(c.detail, "trailers"));
    assert_int_equal(c.trailer_calls, 0);
    ctx_free(&c);

    ctx_init(&c); /* cancelled from on_trailers: no on_done */
    c.want_trailers = true;
    c.cancel_in_trailers = true;
    canned_t cs2 = { .rs.lfd = raw_listen(8, url, sizeof(url)), .replies = shapes, .n = 1 };
    pthread_create(&th, NULL, canned_main, &cs2);
    ro.url = url;
    ro.max_header_bytes = 0;
    assert_transport(cm_hc_request(c.hc, &ro));
    run(&c);
    pthread_join(th, NULL);
    close(cs2.rs.lfd);
    assert_int_equal(c.trailer_calls, 1);
    assert_int_equal(c.done, 0);
    assert_int_equal(cm_hc_active(c.hc), 0);
    ctx_free(&c);
}

static int libevent_warnings;
static void count_warnings(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_WARN) {
        libevent_warnings++;
        fprintf(stderr, "libevent: %s\n", msg);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (*(int *)arg)++;
}

/* A connect that never completes (a listener whose backlog is full drops the
 * SYN) ends with ECONNECT after connect_timeout_ms, not the idle timeout, and
 * leaves nothing behind in the loop. */
static void test_connect_timeout(void **state)
{
    (void)state;
    char url[64];
    int lfd = raw_listen(0, url, sizeof(url));
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    int fill[4];
    for (int i = 0; i < 4; i++) { /* fill the backlog: later SYNs go unanswered */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(50000);
    ctx_t c;
    ctx_init(&c);
    cm_hc_opts_t o = { .url = url, .no_proxy = true, .force_curl = use_curl, .connect_timeout_ms = 300,
                       .idle_timeout_s = 30, .on_done = on_done, .ud = &c };
    libevent_warnings = 0;
    event_set_log_callback(count_warnings);
    int probe = open("/dev/null", O_RDONLY); /* the lowest free number: the one the connect's socket gets */
    close(probe);
    uint64_t t0 = cm_now_ms();
    assert_transport(cm_hc_request(c.hc, &o));
    run(&c);
    uint64_t took = cm_now_ms() - t0;
    assert_int_equal(c.done, 1);
    assert_true(c.result == CM_HC_ECONNECT || c.result == CM_HC_ETIMEOUT);
    assert_true(took >= 250 && took < 3000);
    /* the socket of the failed connect is gone from the loop's books: a new
     * socket that gets its number (the lowest free one) is watched for real */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (sv[0] != probe) { /* place it on that number */
        assert_int_equal(dup2(sv[0], probe), probe);
        close(sv[0]);
        sv[0] = probe;
    }
    int fired = 0;
    struct event *e = event_new(c.base, sv[0], EV_READ, on_readable, &fired);
    event_add(e, NULL);
    assert_int_equal(write(sv[1], "x", 1), 1);
    struct timeval limit = { 1, 0 };
    event_base_loopexit(c.base, &limit);
    event_base_dispatch(c.base);
    assert_int_equal(fired, 1);
    /* and libevent never touched a closed socket (libcurl closes the socket of
     * a timed-out connect itself: no event may stay on it) */
    event_set_log_callback(NULL);
    assert_int_equal(libevent_warnings, 0);
    event_free(e);
    close(sv[0]);
    close(sv[1]);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
    ctx_free(&c);
}

static int use_own(void **state)
{
    (void)state;
    use_curl = false;
    return 0;
}

static int use_libcurl(void **state)
{
    (void)state;
    use_curl = true;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_error_status_relayed),
        cmocka_unit_test(test_streaming_chunks),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_cancel_in_callback),
        cmocka_unit_test(test_cancel_outside_and_free_with_live),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_head_timeout),
        cmocka_unit_test(test_head_timeout_scope),
        cmocka_unit_test(test_idle_is_silence),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_many_at_once),
        cmocka_unit_test(test_handle_and_url_reuse),
        cmocka_unit_test(test_stale_keepalive_retried),
        cmocka_unit_test(test_fresh_connection_not_retried),
        cmocka_unit_test(test_bad_status_refused),
        cmocka_unit_test(test_interim_responses_skipped),
        cmocka_unit_test(test_header_shapes),
        cmocka_unit_test(test_head_bound),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_trailer_shapes_and_bound),
    };
    struct CMUnitTest own[CM_ARRAY_LEN(tests)], curl[CM_ARRAY_LEN(tests)];
    for (size_t i = 0; i < CM_ARRAY_LEN(tests); i++) {
        own[i] = curl[i] = tests[i];
        own[i].setup_func = use_own;
        curl[i].setup_func = use_libcurl;
    }
    int failed = cmocka_run_group_tests_name("own transport", own, setup, teardown);
    failed += cmocka_run_group_tests_name("libcurl transport", curl, setup, teardown);
    return failed;
}
