/* mock_node: a fast stand-in for llm-node, for proxy benchmarks.
 *
 * POST /v1/chat/completions answers a fixed chat.completion, or with
 * "stream": true, MOCK_CHUNKS chat.completion.chunk events MOCK_GAP_US apart
 * then [DONE]. GET /health and GET /v1/models answer too. Prints
 * "MOCK_LISTENING port=N" once listening (MOCK_PORT, default 0 = any). */
#include "http_server.h"
#include "json.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct {
    cm_http_req_t *req;
    struct event *ev;
    int sent;
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
        static const char done[] = "data: [DONE]\n\n";
        cm_http_stream_write(s->req, done, sizeof(done) - 1);
        cm_http_stream_end(s->req);
        stream_done(s);
        return;
    }
    s->sent++;
    cm_http_stream_write(s->req, chunk, sizeof(chunk) - 1);
    struct timeval tv = { gap_us / 1000000, gap_us % 1000000 };
    event_add(s->ev, &tv);
}

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
};

int main(void)
{
    cm_util_init();
    if (getenv("MOCK_CHUNKS"))
        chunks = atoi(getenv("MOCK_CHUNKS"));
    if (getenv("MOCK_GAP_US"))
        gap_us = atol(getenv("MOCK_GAP_US"));
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
    return 0;
}
