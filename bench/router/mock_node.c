/* mock_node: a fast stand-in for llm-node, for proxy benchmarks and the
 * proxy's unit tests.
 *
 * POST /v1/chat/completions answers a fixed chat.completion, or with
 * "stream": true, MOCK_CHUNKS chat.completion.chunk events MOCK_GAP_US apart
 * then [DONE]. GET /health and GET /v1/models answer too. Prints
 * "MOCK_LISTENING port=N" once listening (MOCK_PORT, default 0 = any).
 *
 * MOCK_MODE makes the chat route misbehave on purpose (unset: the
 * benchmark's path above, with nothing added to it):
 *   ok    the same answers, counted
 *   500   500 with an OpenAI-shaped error
 *   cut   streaming: MOCK_CUT_AFTER chunks (default 3), then the connection
 *         closes without [DONE]; otherwise the head with its Content-Length
 *         and half the body (the big one when MOCK_BIG_BYTES is set), then
 *         the connection closes
 *   big   a non-streaming answer of MOCK_BIG_BYTES (default 10 MiB) of JSON
 *         with its Content-Length (streams as ok)
 *   slow  waits MOCK_DELAY_MS (default 500), then answers as ok
 *   hang  reads the request and never answers (a node that heartbeats but
 *         is stuck), until the client closes
 *   stall streaming: MOCK_CUT_AFTER chunks (default 3), then silence with
 *         the connection open; otherwise as hang
 *   401   401 with an OpenAI-shaped "invalid key" error (a rogue node)
 *   html  200 with Content-Type text/html (what no OpenAI route answers)
 * Every mode counts its requests: GET /mock/stats answers
 * {"requests":N,"active":A,"max_active":M}, where active are the requests
 * neither answered nor closed yet; tests read it to check retries, upstream
 * cancellation and slot limits. */
#include "http_server.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int chunks = 20;
static long gap_us = 0;

static const char completion[] =
    "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"mock\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello from the mock node.\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":6,\"total_tokens\":18}}";

static const char chunk[] =
    "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},"
    "\"finish_reason\":null}]}\n\n";

static const char done_event[] = "data: [DONE]\n\n";

typedef enum { MODE_BENCH, MODE_OK, MODE_500, MODE_CUT, MODE_BIG, MODE_SLOW, MODE_HANG, MODE_STALL, MODE_401, MODE_HTML } mock_mode_t;

static mock_mode_t mode = MODE_BENCH;
static int cut_after = 3;
static long delay_ms = 500;
static char *big;
static size_t big_len;
static atomic_int n_requests, n_active, max_active;

typedef struct {
    cm_http_req_t *req;
    struct event *ev;
    int sent;
    bool stream;  /* modes: what the request asked for */
    bool waiting; /* slow: the delay is running */
} stream_t;

static void stream_done(stream_t *s)
{
    event_free(s->ev);
    free(s);
}

static void closed(cm_http_req_t *req, void *arg)
{
    stream_t *s = arg;
    cm_http_stream_end(req);
    stream_done(s);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream_t *s = arg;
    if (s->sent == chunks) {
        cm_http_stream_write(s->req, done_event, sizeof(done_event) - 1);
        cm_http_stream_end(s->req);
        stream_done(s);
        return;
    }
    s->sent++;
    cm_http_stream_write(s->req, chunk, sizeof(chunk) - 1);
    struct timeval tv = { gap_us / 1000000, gap_us % 1000000 };
    event_add(s->ev, &tv);
}

/* ---- MOCK_MODE: off the benchmark's path ---- */

static void mode_done(stream_t *s)
{
    atomic_fetch_sub(&n_active, 1);
    stream_done(s);
}

/* The client left, or the connection we cut has closed: finishing now frees
 * the request quietly (streamed or not). */
static void mode_closed(cm_http_req_t *req, void *arg)
{
    cm_http_stream_end(req);
    mode_done(arg);
}

static void mode_start(stream_t *s);

/* Closes the connection under the server's feet: the client sees the body
 * end early; the server sees the EOF and calls mode_closed. */
static void cut(stream_t *s)
{
    if (cm_http_stream_pending(s->req) > 0) { /* the chunks first, then the cut */
        struct timeval tv = { 0, 1000 };
        event_add(s->ev, &tv);
        return;
    }
    shutdown(cm_http_req_fd(s->req), SHUT_RDWR);
}

static void mode_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream_t *s = arg;
    if (s->waiting) {
        s->waiting = false;
        mode_start(s);
        return;
    }
    if (mode == MODE_CUT && s->sent >= cut_after) {
        cut(s);
        return;
    }
    if (mode == MODE_STALL && s->sent >= cut_after)
        return; /* silent from now on; mode_closed ends it */
    if (s->sent == chunks) {
        cm_http_stream_write(s->req, done_event, sizeof(done_event) - 1);
        cm_http_stream_end(s->req);
        mode_done(s);
        return;
    }
    s->sent++;
    cm_http_stream_write(s->req, chunk, sizeof(chunk) - 1);
    struct timeval tv = { gap_us / 1000000, gap_us % 1000000 };
    event_add(s->ev, &tv);
}

/* All of p on the non-blocking socket fd, waiting for room as long as the
 * peer reads (blocking this loop: a mock serves one such client at a time). */
static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = { fd, POLLOUT, 0 };
            if (poll(&pf, 1, 5000) <= 0)
                return false;
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* cut, not streaming: a head promising the whole body, then half of it. */
static void cut_reply(stream_t *s)
{
    const char *body = big ? big : completion;
    size_t len = big ? big_len : sizeof(completion) - 1;
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", len);
    int fd = cm_http_req_fd(s->req);
    if (send_all(fd, head, (size_t)n))
        send_all(fd, body, len / 2);
    shutdown(fd, SHUT_RDWR);
}

static void mode_start(stream_t *s)
{
    if (!s->stream && mode == MODE_CUT) {
        cut_reply(s); /* mode_closed ends it */
    } else if (!s->stream) {
        if (mode == MODE_BIG)
            cm_http_reply(s->req, 200, "application/json", big, big_len);
        else
            cm_http_reply(s->req, 200, "application/json", completion, sizeof(completion) - 1);
        mode_done(s);
    } else {
        cm_http_stream_start(s->req, 200, "text/event-stream");
        mode_tick(-1, 0, s);
    }
}

static void mode_chat(cm_http_req_t *req, bool stream)
{
    atomic_fetch_add(&n_requests, 1);
    int active = atomic_fetch_add(&n_active, 1) + 1;
    int seen = atomic_load(&max_active);
    while (active > seen && !atomic_compare_exchange_weak(&max_active, &seen, active))
        ;
    if (mode == MODE_500 || mode == MODE_401 || mode == MODE_HTML) {
        if (mode == MODE_500)
            cm_http_reply_error(req, 500, NULL, "mock_failure", NULL, "the mock node fails on purpose");
        else if (mode == MODE_401)
            cm_http_reply_error(req, 401, NULL, "invalid_api_key", NULL, "Your API key was revoked");
        else
            cm_http_reply(req, 200, "text/html", "<html>hello</html>", 18);
        atomic_fetch_sub(&n_active, 1);
        return;
    }
    stream_t *s = cm_xcalloc(1, sizeof(*s));
    s->req = req;
    s->stream = stream;
    s->ev = evtimer_new(cm_http_req_base(req), mode_tick, s);
    cm_http_req_on_close(req, mode_closed, s);
    if (mode == MODE_HANG || (mode == MODE_STALL && !stream))
        return; /* never answered: mode_closed ends it */
    if (mode == MODE_SLOW) {
        s->waiting = true;
        struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };
        event_add(s->ev, &tv);
        return;
    }
    mode_start(s);
}

static void h_stats(cm_http_req_t *req, void *ud)
{
    (void)ud;
    char b[128];
    int n = snprintf(b, sizeof(b), "{\"requests\":%d,\"active\":%d,\"max_active\":%d}",
                     atomic_load(&n_requests), atomic_load(&n_active), atomic_load(&max_active));
    cm_http_reply(req, 200, "application/json", b, (size_t)n);
}

/* A valid chat.completion of exactly n bytes (at least the frame's), its
 * content a pattern that does not repeat at any short period, so that a
 * checksum notices bytes lost, doubled or moved. */
static void make_big(size_t n)
{
    static const char head[] =
        "{\"id\":\"chatcmpl-mock-big\",\"object\":\"chat.completion\",\"created\":1700000000,"
        "\"model\":\"mock\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"";
    static const char tail[] = "\"},\"finish_reason\":\"stop\"}]}";
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    size_t frame = sizeof(head) - 1 + sizeof(tail) - 1;
    if (n < frame)
        n = frame;
    big = cm_xmalloc(n);
    big_len = n;
    memcpy(big, head, sizeof(head) - 1);
    for (size_t i = sizeof(head) - 1; i < n - (sizeof(tail) - 1); i++)
        big[i] = alpha[(i * 7 + i / 4093) % (sizeof(alpha) - 1)];
    memcpy(big + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
}

static int parse_mode(const char *s)
{
    static const struct { const char *name; mock_mode_t mode; } modes[] = {
        { "ok", MODE_OK },     { "500", MODE_500 },     { "cut", MODE_CUT }, { "big", MODE_BIG },
        { "slow", MODE_SLOW }, { "hang", MODE_HANG },   { "stall", MODE_STALL }, { "401", MODE_401 },
        { "html", MODE_HTML },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(modes); i++)
        if (strcmp(s, modes[i].name) == 0) {
            mode = modes[i].mode;
            return 0;
        }
    return -1;
}

/* ---- routes ---- */

static void h_chat(cm_http_req_t *req, void *ud)
{
    (void)ud;
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    cJSON *j = cm_json_parse(body, len);
    bool stream = false;
    if (!j || cm_json_bool(j, "stream", &stream) == CM_JSON_TYPE) {
        cJSON_Delete(j);
        cm_http_reply_error(req, 400, NULL, NULL, NULL, "bad request");
        return;
    }
    cJSON_Delete(j);
    if (mode != MODE_BENCH) {
        mode_chat(req, stream);
        return;
    }
    if (!stream) {
        cm_http_reply(req, 200, "application/json", completion, sizeof(completion) - 1);
        return;
    }
    stream_t *s = cm_xcalloc(1, sizeof(*s));
    s->req = req;
    s->ev = evtimer_new(cm_http_req_base(req), tick, s);
    cm_http_req_on_close(req, closed, s);
    cm_http_stream_start(req, 200, "text/event-stream");
    tick(-1, 0, s);
}

static void h_health(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static void h_models(cm_http_req_t *req, void *ud)
{
    (void)ud;
    static const char m[] = "{\"object\":\"list\",\"data\":[{\"id\":\"mock\",\"object\":\"model\",\"owned_by\":\"mock\"}]}";
    cm_http_reply(req, 200, "application/json", m, sizeof(m) - 1);
}

static const cm_http_route_t routes[] = {
    { "POST", "/v1/chat/completions", h_chat, 0 },
    { "GET", "/health", h_health, 0 },
    { "GET", "/v1/models", h_models, 0 },
    { "GET", "/mock/stats", h_stats, 0 },
};

int main(void)
{
    cm_util_init();
    if (getenv("MOCK_CHUNKS"))
        chunks = atoi(getenv("MOCK_CHUNKS"));
    if (getenv("MOCK_GAP_US"))
        gap_us = atol(getenv("MOCK_GAP_US"));
    const char *m = getenv("MOCK_MODE");
    if (m && *m && parse_mode(m) != 0) {
        fprintf(stderr, "mock_node: MOCK_MODE=%s: expected ok, 500, cut, big, slow, hang, stall, 401 or html\n", m);
        return 2;
    }
    if (getenv("MOCK_CUT_AFTER"))
        cut_after = atoi(getenv("MOCK_CUT_AFTER"));
    if (getenv("MOCK_DELAY_MS"))
        delay_ms = atol(getenv("MOCK_DELAY_MS"));
    if (mode == MODE_BIG || (mode == MODE_CUT && getenv("MOCK_BIG_BYTES")))
        make_big(getenv("MOCK_BIG_BYTES") ? (size_t)atol(getenv("MOCK_BIG_BYTES")) : (size_t)10 << 20);
    cm_http_server_opts_t o = {
        .host = "127.0.0.1",
        .port = getenv("MOCK_PORT") ? atoi(getenv("MOCK_PORT")) : 0,
        .workers = getenv("MOCK_WORKERS") ? atoi(getenv("MOCK_WORKERS")) : 1,
        .max_body = 1 << 20, .max_headers = 65536, .timeout_secs = 120,
        .routes = routes, .nroutes = CM_ARRAY_LEN(routes),
    };
    cm_http_server_t *srv;
    char err[256];
    if (cm_http_server_start(&o, &srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "mock_node: %s\n", err);
        return 1;
    }
    printf("MOCK_LISTENING port=%d\n", cm_http_server_port(srv));
    fflush(stdout);
    cm_http_server_wait(srv);
    cm_http_server_free(srv);
    free(big);
    return 0;
}
