/* libFuzzer target: the HTTP server's connection code (http_conn.c,
 * http_server.c, http_reply.c) with coverage guidance. Each input is one
 * client's byte stream, written to a real connection (a socketpair) in
 * pieces whose size the first byte picks, with the server's loop run
 * between pieces; the routes answer at once, from a timer, streamed, or
 * never (until the client leaves). What comes back must parse as a sequence
 * of HTTP/1.1 responses (http_parser) with statuses in 100..599, every error
 * OpenAI-shaped JSON; the sanitizers watch memory and leaks.
 *
 * Built only with clang under -DLLMR_SANITIZE=ON (ctest label fuzz, a bounded
 * run from tests/fuzz/corpus/http_server). By hand:
 *   build-asan/tests/fuzz_http_server -max_total_time=60 tests/fuzz/corpus/http_server */
#include "http_server_int.h"
#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static cm_http_server_t srv;
static hs_worker_t w;
static int held; /* requests a timer still owes a reply */

static void h_ok(cm_http_req_t *req, void *ud)
{
    (void)ud;
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    const char *q = cm_http_req_query(req, "q");
    const char *id = cm_http_req_param(req, "id");
    cm_http_add_header(req, "X-Q", q ? q : "-");
    cm_http_add_header(req, "X-Id", id ? id : "-");
    cm_http_reply(req, 200, "text/plain", body, len);
}

static void h_stream(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_stream_start(req, 200, "text/event-stream");
    cm_http_stream_write(req, "data: 1\n\n", 9);
    cm_http_stream_write(req, "data: 2\n\n", 9);
    cm_http_stream_end(req);
}

typedef struct {
    cm_http_req_t *req;
    struct event *ev;
} later_t;

static void later_done(later_t *l)
{
    event_free(l->ev);
    free(l);
    held--;
}

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    later_t *l = arg;
    cm_http_reply_error(l->req, 503, NULL, "later", NULL, "answered %s", "later");
    later_done(l);
}

static void later_gone(cm_http_req_t *req, void *arg)
{
    later_t *l = arg;
    cm_http_reply(req, 499, NULL, NULL, 0); /* finishing a closed request frees it */
    later_done(l);
}

static void h_later(cm_http_req_t *req, void *ud)
{
    (void)ud;
    later_t *l = cm_xcalloc(1, sizeof(*l));
    l->req = req;
    l->ev = evtimer_new(w.base, later_fire, l);
    cm_http_req_on_close(req, later_gone, l);
    struct timeval now = { 0, 0 };
    evtimer_add(l->ev, &now);
    held++;
}

static bool pre(cm_http_req_t *req, const cm_http_route_t *route, void *ud)
{
    (void)ud;
    if (route->policy == 1 && !cm_http_req_header(req, "X-Key")) {
        cm_http_reply_error(req, 401, NULL, "no_key", NULL, "key required");
        return false;
    }
    return true;
}

static const cm_http_route_t routes[] = {
    { "GET", "/a", h_ok, 0 },
    { "POST", "/a", h_ok, 0 },
    { "GET", "/p/:id", h_ok, 1 },
    { "GET", "/s", h_stream, 0 },
    { "POST", "/l", h_later, 0 },
    { "GET", "/f/*rest", h_ok, 0 },
    { "POST", "/p/:id", h_ok, 1 }, /* refused at the head without X-Key: the body is never read */
};
/* /l takes at most 64 bytes: a route limit below the server's (413 from the head) */
static const size_t route_max_body[] = { 0, 0, 0, 0, 64, 0, 0 };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cm_util_init();
    cm_log_set_level(CM_LOG_ERROR); /* the fuzzer's odd query values are dropped headers, each a warning */
    srv.opts = (cm_http_server_opts_t){ .host = "127.0.0.1", .workers = 1, .max_body = 1024,
                                        .max_headers = 2048, .timeout_secs = 3600,
                                        .routes = routes, .nroutes = CM_ARRAY_LEN(routes), .pre = pre,
                                        .route_max_body = route_max_body,
                                        .body_budget = 1536 /* a body of 1024 and a little: 503 paths */ };
    srv.nworkers = 1;
    srv.workers = &w;
    w.srv = &srv;
    w.base = event_base_new();
    return 0;
}

static void spin(int turns)
{
    for (int i = 0; i < turns; i++)
        event_base_loop(w.base, EVLOOP_NONBLOCK);
}

typedef struct {
    int status;
    bool json;
    bool in_ctype;
    size_t body_len;
    char body[4096];
} resp_t;

static int r_begin(http_parser *p)
{
    resp_t *r = p->data;
    r->json = false;
    r->body_len = 0;
    return 0;
}

static int r_status(http_parser *p)
{
    resp_t *r = p->data;
    r->status = p->status_code;
    if (r->status < 100 || r->status > 599)
        abort();
    return 0;
}

static int r_field(http_parser *p, const char *at, size_t len)
{
    resp_t *r = p->data;
    r->in_ctype = len == 12 && strncasecmp(at, "Content-Type", 12) == 0;
    return 0;
}

static int r_value(http_parser *p, const char *at, size_t len)
{
    resp_t *r = p->data;
    if (r->in_ctype && len >= 16 && strncmp(at, "application/json", 16) == 0)
        r->json = true;
    return 0;
}

static int r_body(http_parser *p, const char *at, size_t len)
{
    resp_t *r = p->data;
    size_t n = len < sizeof(r->body) - 1 - r->body_len ? len : sizeof(r->body) - 1 - r->body_len;
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int r_done(http_parser *p)
{
    resp_t *r = p->data;
    if (r->status >= 400 && r->status != 499) {
        /* every error the server makes is OpenAI's shape */
        if (!r->json)
            abort();
        r->body[r->body_len] = '\0';
        if (!cm_utf8_valid(r->body, r->body_len)) /* JSON is UTF-8 */
            abort();
        cJSON *j = cJSON_Parse(r->body);
        cJSON *e = j ? cJSON_GetObjectItem(j, "error") : NULL;
        if (!e || !cJSON_IsString(cJSON_GetObjectItem(e, "message")))
            abort();
        cJSON_Delete(j);
    }
    return 0;
}

static const http_parser_settings check = {
    .on_message_begin = r_begin, .on_header_field = r_field, .on_header_value = r_value,
    .on_headers_complete = r_status, .on_body = r_body, .on_message_complete = r_done,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    if (size / piece > 32)
        piece = size / 32 + 1; /* at most ~32 writes: long inputs in 1-byte pieces crawl */
    /* HEAD replies carry a length but no body: the checker cannot follow them */
    bool strict = !memmem(data, size, "HEAD", 4);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    hs_conn_accept(&w, sv[0], (struct sockaddr *)&sa);

    char out[65536];
    size_t nout = 0;
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (write(sv[1], data + off, n) < 0)
            break; /* the server closed */
        spin(3);
        ssize_t got;
        while (nout < sizeof(out) && (got = read(sv[1], out + nout, sizeof(out) - nout)) > 0)
            nout += (size_t)got;
    }
    spin(3);
    shutdown(sv[1], SHUT_WR); /* the client has said everything */
    spin(3);
    ssize_t got;
    while (nout < sizeof(out) && (got = read(sv[1], out + nout, sizeof(out) - nout)) > 0)
        nout += (size_t)got;
    close(sv[1]);
    for (int i = 0; i < 10 && (!LIST_EMPTY(&w.conns) || held); i++)
        spin(1);
    hs_conn_free_all(&w); /* whatever is still open (a held request learns it) */
    if (held)
        abort(); /* a request that lost its client must have been told */

    if (nout && strict) {
        if (nout < 9 || memcmp(out, "HTTP/1.1 ", 9) != 0)
            abort();
        http_parser p;
        http_parser_init(&p, HTTP_RESPONSE);
        resp_t r = { 0 };
        p.data = &r;
        size_t used = http_parser_execute(&p, &check, out, nout);
        /* the output may stop mid-reply (the client stopped reading); what is
         * there must parse */
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK && nout < sizeof(out)) {
            fprintf(stderr, "unparsable reply at %zu: %.*s\n", used, (int)(nout - used > 200 ? 200 : nout - used),
                    out + used);
            abort();
        }
    }
    return 0;
}
