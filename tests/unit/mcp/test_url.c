/* url: the path checker refuses every escape; the builder only makes URLs
 * on the configured router. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "url.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void test_accepts(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "/api/nodes", "/v1/models", "/api/nodes/abc-123/logs", "/v1/models/org%20x", "/api/models/org/name",
        "/api/dashboard/request-responses", "/api/models/a.b.gguf", "/api/x:y", "/v1/models/a%3Ab",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(ok); i++) {
        const char *why = "x";
        assert_int_equal(mcp_url_path_check(ok[i], &why), 0);
        assert_null(why);
    }
}

static void test_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://evil.example/api/x", "https://127.0.0.1:8080/api/nodes", "//evil.example/api/x", "api/nodes",
        "/metrics", "/health", "/dashboard", "/api", "/v1", "/apix/nodes", "/v1x/models",
        "/api//evil.example", "/api/@evil.example", "/api/x@evil", "/api/../metrics", "/api/nodes/..",
        "/v1/..%2fmetrics", "/api/%2e%2e/metrics", "/api/%2E%2E/x", "/api/%2fx", "/api/%2Fx", "/api/%5cx",
        "/api/%5Cx", "/api/%252e%252e/x", "/api/%00", "/api/%0d%0aHost:x", "/api/x\r\nHost: evil", "/api/x\n",
        "/api/x y", "/api/x\\y", "/api/x#frag", "/api/x?y=1", "/api/./x", "/api/x/.", "/api/%", "/api/%zz",
        "/api/%4", "/api/\x01", "/api/\x7f", "/api/\xc3\xa9", "/api/%40evil", "", NULL,
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++) {
        const char *why = NULL;
        assert_int_equal(mcp_url_path_check(bad[i], &why), -1);
        assert_non_null(why);
    }
    char longp[3000] = "/api/";
    memset(longp + 5, 'a', sizeof(longp) - 6);
    longp[sizeof(longp) - 1] = 0;
    const char *why;
    assert_int_equal(mcp_url_path_check(longp, &why), -1);
}

static void test_base(void **state)
{
    (void)state;
    const char *why;
    char *b = mcp_url_base("http://127.0.0.1:8080/", &why);
    assert_string_equal(b, "http://127.0.0.1:8080");
    free(b);
    b = mcp_url_base("https://router.example/prefix", &why);
    assert_string_equal(b, "https://router.example/prefix");
    free(b);
    static const char *const bad[] = { "", "ftp://x/", "file:///etc/passwd", "127.0.0.1:8080", "http://u:p@h/",
                                       "http://h/?q=1", "http://h/#f", "http://h /", "gopher://h" };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++) {
        why = NULL;
        assert_null(mcp_url_base(bad[i], &why));
        assert_non_null(why);
    }
}

static void test_build(void **state)
{
    (void)state;
    char *u;
    const char *why;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "q", "a b&c=d#e");
    cJSON_AddStringToObject(q, "per_page", "5");
    assert_int_equal(mcp_url_build("http://127.0.0.1:8080", "/api/dashboard/request-responses", q, &u, &why), 0);
    assert_string_equal(u, "http://127.0.0.1:8080/api/dashboard/request-responses?q=a%20b%26c%3Dd%23e&per_page=5");
    free(u);
    assert_int_equal(mcp_url_build("http://h:1/pre", "/v1/models", NULL, &u, &why), 0);
    assert_string_equal(u, "http://h:1/pre/v1/models");
    free(u);
    assert_int_equal(mcp_url_build("http://h:1", "/api/../x", NULL, &u, &why), -1);
    assert_null(u);
    cJSON *bad = cJSON_CreateObject();
    cJSON_AddNumberToObject(bad, "n", 1);
    assert_int_equal(mcp_url_build("http://h:1", "/api/x", bad, &u, &why), -1);
    cJSON_Delete(bad);
    cJSON_Delete(q);
}

static void test_segment(void **state)
{
    (void)state;
    char *s = mcp_url_join_segment("/api/nodes/", "../x/y?z#@\\%");
    assert_string_equal(s, "/api/nodes/..%2Fx%2Fy%3Fz%23%40%5C%25");
    const char *why;
    assert_int_equal(mcp_url_path_check(s, &why), -1); /* ".." and an encoded '/' */
    free(s);
    s = mcp_url_join_segment("/api/nodes/", "node-1_a.b~");
    assert_string_equal(s, "/api/nodes/node-1_a.b~");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts), cmocka_unit_test(test_refuses), cmocka_unit_test(test_base),
        cmocka_unit_test(test_build),   cmocka_unit_test(test_segment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
