/* node/src/auth.c and the node's pre hook (server.c): every route but the
 * probes needs the router's secret or LLM_NODE_API_KEY (both accepted when
 * both exist; a new secret replaces the old one); without one the answer is
 * 401 in OpenAI's shape, or 503 while the router's secret is still to come;
 * /health without a credential shows only status and readiness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "models.h"
#include "node.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

static void credentials(void **state)
{
    (void)state;
    nd_auth_t *a = nd_auth_new("nk_operator", true);
    assert_int_equal(nd_auth_check(a, "Bearer nk_operator"), ND_AUTH_OK);
    assert_int_equal(nd_auth_check(a, "bearer  nk_operator"), ND_AUTH_OK);
    /* the router's secret has not come yet: anything else waits */
    assert_int_equal(nd_auth_check(a, NULL), ND_AUTH_PENDING);
    assert_int_equal(nd_auth_check(a, "Bearer rs_one"), ND_AUTH_PENDING);
    nd_auth_set_router_secret(a, "rs_one");
    assert_int_equal(nd_auth_check(a, "Bearer rs_one"), ND_AUTH_OK);
    assert_int_equal(nd_auth_check(a, "Bearer nk_operator"), ND_AUTH_OK); /* both */
    assert_int_equal(nd_auth_check(a, NULL), ND_AUTH_DENIED);
    assert_int_equal(nd_auth_check(a, "rs_one"), ND_AUTH_DENIED);           /* no scheme */
    assert_int_equal(nd_auth_check(a, "Basic rs_one"), ND_AUTH_DENIED);
    assert_int_equal(nd_auth_check(a, "Bearer rs_on"), ND_AUTH_DENIED);      /* a prefix */
    assert_int_equal(nd_auth_check(a, "Bearer rs_one2"), ND_AUTH_DENIED);
    assert_int_equal(nd_auth_check(a, "Bearer "), ND_AUTH_DENIED);
    nd_auth_set_router_secret(a, "rs_two"); /* re-registration rotates */
    assert_int_equal(nd_auth_check(a, "Bearer rs_one"), ND_AUTH_DENIED);
    assert_int_equal(nd_auth_check(a, "Bearer rs_two"), ND_AUTH_OK);
    nd_auth_free(a);
    /* no key, no router: nothing opens the node */
    nd_auth_t *b = nd_auth_new("", false);
    assert_int_equal(nd_auth_check(b, "Bearer "), ND_AUTH_DENIED);
    assert_int_equal(nd_auth_check(b, "Bearer x"), ND_AUTH_DENIED);
    nd_auth_free(b);
    nd_auth_free(NULL);
}

typedef struct {
    char *body;
    size_t len;
} buf_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    buf_t *b = ud;
    b->body = cm_xrealloc(b->body, b->len + sz * n + 1);
    memcpy(b->body + b->len, p, sz * n);
    b->len += sz * n;
    b->body[b->len] = '\0';
    return sz * n;
}

static cJSON *get(int port, const char *method, const char *path, const char *auth, long *status)
{
    CURL *c = curl_easy_init();
    char *url = cm_xasprintf("http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = auth ? curl_slist_append(NULL, auth) : NULL;
    buf_t b = { 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "POST"))
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"level\":\"trace\"}");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url);
    cJSON *j = b.body ? cJSON_Parse(b.body) : NULL;
    free(b.body);
    assert_non_null(j);
    return j;
}

static void routes_closed(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_nd_auth.XXXXXX";
    assert_non_null(mkdtemp(dir));
    nd_node_t nd = { 0 };
    nd.models = nd_models_new(dir);
    nd.auth = nd_auth_new("nk_operator", false);
    atomic_init(&nd.ready, true);
    cm_http_server_opts_t o = {
        .host = "127.0.0.1", .workers = 1, .max_body = 1 << 20, .max_headers = 64 * 1024,
        .routes = nd_routes, .nroutes = nd_routes_count, .pre = nd_node_pre, .ud = &nd,
    };
    cm_http_server_t *srv;
    char err[256];
    assert_int_equal(cm_http_server_start(&o, &srv, err, sizeof(err)), 0);
    int port = cm_http_server_port(srv);
    long st = 0;
    static const char *const closed[][2] = {
        { "GET", "/v1/models" }, { "GET", "/metrics" }, { "GET", "/metrics/prom" }, { "GET", "/api/logs" },
        { "GET", "/log/level" }, { "POST", "/log/level" }, { "GET", "/internal-error" },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(closed); i++) {
        cJSON *j = get(port, closed[i][0], closed[i][1], NULL, &st);
        assert_int_equal(st, 401);
        cJSON *e = cJSON_GetObjectItem(j, "error");
        assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, "invalid_api_key");
        assert_non_null(cJSON_GetObjectItem(e, "type"));
        assert_non_null(cJSON_GetObjectItem(e, "message"));
        cJSON_Delete(j);
        j = get(port, closed[i][0], closed[i][1], "Authorization: Bearer wrong", &st);
        assert_int_equal(st, 401);
        cJSON_Delete(j);
    }
    cJSON *j = get(port, "GET", "/v1/models", "Authorization: Bearer nk_operator", &st);
    assert_int_equal(st, 200);
    cJSON_Delete(j);
    /* the probes: open, and without a credential only status and readiness */
    j = get(port, "GET", "/health", NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(cJSON_GetArraySize(j), 2);
    assert_non_null(cJSON_GetObjectItem(j, "status"));
    assert_non_null(cJSON_GetObjectItem(j, "ready"));
    cJSON_Delete(j);
    j = get(port, "GET", "/health", "Authorization: Bearer nk_operator", &st);
    assert_non_null(cJSON_GetObjectItem(j, "router_url"));
    assert_non_null(cJSON_GetObjectItem(j, "node_id"));
    cJSON_Delete(j);
    j = get(port, "GET", "/startup", NULL, &st);
    assert_int_equal(st, 200);
    cJSON_Delete(j);
    cm_http_server_request_stop(srv);
    cm_http_server_wait(srv);
    cm_http_server_free(srv);
    nd_auth_free(nd.auth);
    nd_models_free(nd.models);
    char *cmd = cm_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(void)
{
    cm_util_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(credentials),
        cmocka_unit_test(routes_closed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
