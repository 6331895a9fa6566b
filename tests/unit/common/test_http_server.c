/* Tests common/http_server.c against real sockets: routing, limits, errors,
 * request ids, the pre hook, streaming and client-disconnect notification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_server.h"
#include "test_streamer.h"
#include "util.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

static cm_http_server_t *srv;
static int port;
static atomic_int closed_seen;

static void h_item(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", cm_http_req_param(req, "id"));
    const char *q = cm_http_req_query(req, "tail");
    cJSON_AddStringToObject(j, "tail", q ? q : "");
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    size_t len2;
    assert_ptr_equal(cm_http_req_body(req, &len2), body); /* idempotent */
    assert_int_equal(len, len2);
    cJSON_AddNumberToObject(j, "body_len", (double)len);
    cJSON_AddBoolToObject(j, "body_nul", body[len] == '\0');
    cm_http_reply_json(req, 200, j);
    cJSON_Delete(j);
}

static void h_rest(cm_http_req_t *req, void *ud)
{
    (void)ud;
    const char *p = cm_http_req_param(req, "path");
    cm_http_reply(req, 200, "text/plain", p, strlen(p));
}

static void hang_closed(cm_http_req_t *req, void *arg)
{
    (void)arg;
    atomic_fetch_add(&closed_seen, 1);
    cm_http_reply(req, 200, "text/plain", "late", 4); /* finishing after close frees quietly */
}

/* never answers: the client gives up, and on_close must tell us */
static void h_hang(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_req_on_close(req, hang_closed, NULL);
}

static void h_ok(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply(req, 200, "text/plain", "ok", 2);
}

/* answers "1" when the connection this request came on has TCP_NODELAY */
static void h_nodelay(cm_http_req_t *req, void *ud)
{
    (void)ud;
    int fd = cm_http_req_fd(req);
    int v = 0;
    socklen_t l = sizeof(v);
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l);
    cm_http_reply(req, 200, "text/plain", v ? "1" : "0", 1);
}

/* headers that would split or spoil the reply head are dropped */
static void h_headers(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_add_header(req, "X-Good", "ok\tfine");
    cm_http_add_header(req, "X-Split", "a\r\nInjected: y");
    cm_http_add_header(req, "X-Ctl", "a\x0c" "b");
    cm_http_add_header(req, "Bad Name", "x");
    cm_http_add_header(req, "", "x");
    cm_http_reply(req, 200, "text/plain", "ok", 2);
}

static bool pre(cm_http_req_t *req, const cm_http_route_t *route, void *ud)
{
    (void)ud;
    if (route->policy == 1 && !cm_http_req_header(req, "X-Key")) {
        cm_http_reply_error(req, 401, NULL, "invalid_api_key", NULL, "key required");
        return false;
    }
    return true;
}

static const cm_http_route_t routes[] = {
    { "GET", "/items/:id/x", h_item, 0 },
    { "POST", "/items/:id/x", h_item, 0 },
    { "GET", "/files/*path", h_rest, 0 },
    { "GET", "/stream", h_stream, 0 },
    { "GET", "/hang", h_hang, 0 },
    { "GET", "/secret", h_ok, 1 },
    { "GET", "/nodelay", h_nodelay, 0 },
    { "GET", "/headers", h_headers, 0 },
};

typedef struct {
    long status;
    char body[8192];
    size_t len;
    char reqid[128];
    char date[64];
    int ndate;
    char heads[2048]; /* every header line */
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t k = sz * n;
    if (r->len + k < sizeof(r->body)) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t k = sz * n;
    size_t have = strlen(r->heads);
    if (have + k < sizeof(r->heads))
        memcpy(r->heads + have, p, k);
    if (k > 14 && strncasecmp(p, "X-Request-Id: ", 14) == 0 && k - 14 < sizeof(r->reqid)) {
        memcpy(r->reqid, p + 14, k - 16);
        r->reqid[k - 16] = '\0';
    }
    if (k > 6 && strncasecmp(p, "Date: ", 6) == 0 && k - 6 < sizeof(r->date)) {
        memcpy(r->date, p + 6, k - 8);
        r->date[k - 8] = '\0';
        r->ndate++;
    }
    return k;
}

static int do_req(const char *method, const char *path, const char *body, size_t blen,
                  struct curl_slist *hdrs, long timeout_ms, resp_t *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

static cJSON *error_of(resp_t *r)
{
    cJSON *j = cJSON_Parse(r->body);
    assert_non_null(j);
    cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_non_null(e);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(e, "message")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(e, "type")));
    assert_non_null(cJSON_GetObjectItem(e, "param"));
    assert_non_null(cJSON_GetObjectItem(e, "code"));
    return j;
}

static void routing(void **state)
{
    (void)state;
    resp_t r;
    assert_int_equal(do_req("GET", "/items/a%20b/x?tail=5&z=1", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "a b");
    assert_string_equal(cJSON_GetObjectItem(j, "tail")->valuestring, "5");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "body_nul")));
    cJSON_Delete(j);

    assert_int_equal(do_req("GET", "/files/a/b/c.js", NULL, 0, NULL, 5000, &r), 0);
    assert_string_equal(r.body, "a/b/c.js");

    assert_int_equal(do_req("GET", "/items//x", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 404); /* an empty segment is not a parameter */
    cJSON_Delete(error_of(&r));

    assert_int_equal(do_req("DELETE", "/items/1/x", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 405);
    j = error_of(&r);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code")->valuestring,
                        "method_not_allowed");
    cJSON_Delete(j);

    assert_int_equal(do_req("GET", "/nope", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 404);
    cJSON_Delete(error_of(&r));

    assert_int_equal(do_req("GET", "/items/%00/x", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 400);

    /* the 404 message quotes the path: bytes that are not UTF-8 are replaced,
     * so the reply stays valid JSON */
    assert_int_equal(do_req("GET", "/nope%FF%C3", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 404);
    assert_true(cm_utf8_valid(r.body, r.len));
    cJSON_Delete(error_of(&r));
}

static void limits(void **state)
{
    (void)state;
    resp_t r;
    char *big = cm_xmalloc(4096);
    memset(big, 'a', 4096);
    assert_int_equal(do_req("POST", "/items/1/x", big, 1024, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"body_len\":1024"));
    assert_int_equal(do_req("POST", "/items/1/x", big, 4096, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 413);

    /* headers over the limit are refused; the server keeps serving */
    char *hdr = cm_xmalloc(20000);
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'b', 20000 - 8);
    hdr[19999] = '\0';
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    int rc = do_req("GET", "/items/1/x", NULL, 0, h, 5000, &r);
    assert_true(rc != 0 || r.status >= 400);
    curl_slist_free_all(h);
    free(hdr);
    free(big);
    assert_int_equal(do_req("GET", "/items/1/x", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
}

static void request_ids(void **state)
{
    (void)state;
    resp_t r;
    struct curl_slist *h = curl_slist_append(NULL, "X-Request-Id: abc-123");
    assert_int_equal(do_req("GET", "/items/1/x", NULL, 0, h, 5000, &r), 0);
    assert_string_equal(r.reqid, "abc-123");
    curl_slist_free_all(h);
    h = curl_slist_append(NULL, "X-Request-Id: bad id<script>");
    assert_int_equal(do_req("GET", "/items/1/x", NULL, 0, h, 5000, &r), 0);
    assert_non_null(strstr(r.reqid, "req-"));
    curl_slist_free_all(h);
    char first[128];
    strcpy(first, r.reqid);
    assert_int_equal(do_req("GET", "/items/1/x", NULL, 0, NULL, 5000, &r), 0);
    assert_string_not_equal(first, r.reqid);
}

/* One Date header (cached per second), in the
 * IMF-fixdate form, on plain and streamed replies, and it is now. */
static void date_header(void **state)
{
    (void)state;
    const char *paths[] = { "/items/1/x", "/stream" };
    for (size_t i = 0; i < 2; i++) {
        resp_t r;
        assert_int_equal(do_req("GET", paths[i], NULL, 0, NULL, 5000, &r), 0);
        assert_int_equal(r.ndate, 1);
        struct tm tm = { 0 };
        const char *end = strptime(r.date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        assert_non_null(end);
        assert_int_equal(*end, '\0');
        time_t t = timegm(&tm), now = time(NULL);
        assert_true(t <= now && now - t <= 2);
    }
}

/* Streamed replies are many small writes: Nagle must not hold them. */
static void nodelay(void **state)
{
    (void)state;
    resp_t r;
    assert_int_equal(do_req("GET", "/nodelay", NULL, 0, NULL, 5000, &r), 0);
    assert_string_equal(r.body, "1");
}

static void bad_reply_headers(void **state)
{
    (void)state;
    resp_t r;
    assert_int_equal(do_req("GET", "/headers", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.heads, "X-Good: ok\tfine\r\n"));
    assert_null(strstr(r.heads, "Injected"));
    assert_null(strstr(r.heads, "X-Split"));
    assert_null(strstr(r.heads, "X-Ctl"));
    assert_null(strstr(r.heads, "Bad Name"));
    assert_string_equal(r.body, "ok");
}

static void pre_hook(void **state)
{
    (void)state;
    resp_t r;
    assert_int_equal(do_req("GET", "/secret", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 401);
    cJSON_Delete(error_of(&r));
    struct curl_slist *h = curl_slist_append(NULL, "X-Key: k");
    assert_int_equal(do_req("GET", "/secret", NULL, 0, h, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    curl_slist_free_all(h);
}

static void streaming(void **state)
{
    (void)state;
    resp_t r;
    assert_int_equal(do_req("GET", "/stream", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

static void client_disconnect(void **state)
{
    (void)state;
    resp_t r;
    atomic_store(&closed_seen, 0);
    assert_int_not_equal(do_req("GET", "/hang", NULL, 0, NULL, 300, &r), 0); /* times out */
    for (int i = 0; i < 200 && atomic_load(&closed_seen) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&closed_seen), 1);
    assert_int_equal(do_req("GET", "/items/1/x", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
}

static void garbage(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char junk[] = "\x01\x02 NOT HTTP AT ALL\r\n\r\n";
    assert_true(write(fd, junk, sizeof(junk) - 1) > 0);
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        assert_non_null(strstr(buf, " 400 "));
    }
    close(fd);
    resp_t r;
    assert_int_equal(do_req("GET", "/items/1/x", NULL, 0, NULL, 5000, &r), 0);
    assert_int_equal(r.status, 200);
}

static int setup(void **state)
{
    (void)state;
    cm_util_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cm_http_server_opts_t o = {
        .host = "127.0.0.1", .port = 0, .workers = 2, .max_body = 1024, .max_headers = 8192,
        .timeout_secs = 10, .routes = routes, .nroutes = CM_ARRAY_LEN(routes), .pre = pre,
    };
    char err[256];
    if (cm_http_server_start(&o, &srv, err, sizeof(err)) != 0)
        return -1;
    port = cm_http_server_port(srv);
    return port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(srv);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routing),       cmocka_unit_test(limits),
        cmocka_unit_test(request_ids),   cmocka_unit_test(pre_hook),
        cmocka_unit_test(streaming),     cmocka_unit_test(client_disconnect),
        cmocka_unit_test(garbage),       cmocka_unit_test(date_header),
        cmocka_unit_test(nodelay),       cmocka_unit_test(bad_reply_headers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
