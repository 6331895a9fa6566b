/* Tests common/json.c: typed getters are strict about types; times; and the
 * OpenAI error object that http_reply.c builds every error body from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_server.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

static void getters(void **state)
{
    (void)state;
    const char *text = "{\"s\":\"x\",\"i\":3,\"f\":3.5,\"b\":true,\"n\":null,\"big\":1e300}";
    cJSON *j = cm_json_parse(text, strlen(text));
    const char *s;
    long long i;
    double d;
    bool b;
    assert_int_equal(cm_json_str(j, "s", &s), CM_JSON_OK);
    assert_string_equal(s, "x");
    assert_int_equal(cm_json_str(j, "i", &s), CM_JSON_TYPE);
    assert_int_equal(cm_json_str(j, "n", &s), CM_JSON_ABSENT);
    assert_int_equal(cm_json_str(j, "missing", &s), CM_JSON_ABSENT);
    assert_int_equal(cm_json_int(j, "i", &i), CM_JSON_OK);
    assert_int_equal(i, 3);
    assert_int_equal(cm_json_int(j, "f", &i), CM_JSON_TYPE);
    assert_int_equal(cm_json_int(j, "big", &i), CM_JSON_TYPE);
    assert_int_equal(cm_json_num(j, "f", &d), CM_JSON_OK);
    assert_true(d == 3.5);
    assert_int_equal(cm_json_bool(j, "b", &b), CM_JSON_OK);
    assert_true(b);
    assert_int_equal(cm_json_bool(j, "i", &b), CM_JSON_TYPE);
    cJSON_Delete(j);
}

static void hostile(void **state)
{
    (void)state;
    static const char *bad[] = { "", "{", "{\"a\":}", "[1,2", "nul", "{\"a\":1}}" };
    for (size_t n = 0; n < sizeof(bad) / sizeof(bad[0]); n++) {
        cJSON *j = cm_json_parse(bad[n], strlen(bad[n]));
        assert_null(j); /* incomplete documents and trailing garbage alike */
    }
    /* deep nesting is refused, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    assert_null(cm_json_parse(deep, depth * 2));
    free(deep);
    /* JSON text is UTF-8: a raw invalid byte in a string is refused (cJSON
     * alone would copy it and it would come back in error messages) */
    assert_null(cm_json_parse("{\"model\":\"no\xb1" "e\"}", 16));
    cJSON *u = cm_json_parse("{\"model\":\"n\xc3\xa9\"}", 15);
    assert_non_null(u);
    assert_string_equal(cJSON_GetObjectItem(u, "model")->valuestring, "n\xc3\xa9");
    cJSON_Delete(u);
    /* a length shorter than the text parses only the prefix */
    assert_null(cm_json_parse("{\"a\":1}", 3));
    cJSON *ok = cm_json_parse("{\"a\":1}\r\n ", 10);
    assert_non_null(ok);
    cJSON_Delete(ok);
}

static void add_time(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    cm_json_add_time(o, "a", 1893456000250LL);
    cm_json_add_time(o, "unset", 0);
    cm_json_add_time(o, "negative", -5);
    cm_json_add_time(o, "far", 253402300800000LL); /* year 10000: not writable */
    char *text = cm_json_print(o);
    assert_string_equal(text, "{\"a\":\"2030-01-01T00:00:00.250Z\",\"unset\":null,\"negative\":null,"
                              "\"far\":null}");
    free(text);
    cJSON_Delete(o);
}

static void error_object(void **state)
{
    (void)state;
    cJSON *e = cm_http_error_json("invalid_request_error", "invalid_json", "model", "bad body");
    char *text = cm_json_print(e);
    assert_string_equal(text, "{\"error\":{\"message\":\"bad body\",\"type\":\"invalid_request_error\","
                              "\"param\":\"model\",\"code\":\"invalid_json\"}}");
    free(text);
    cJSON_Delete(e);
    /* param and code null; a message that is not UTF-8 comes out as UTF-8 */
    e = cm_http_error_json("server_error", NULL, NULL, "no\xb1" "de");
    text = cm_json_print(e);
    assert_string_equal(text, "{\"error\":{\"message\":\"no\xef\xbf\xbd" "de\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}");
    free(text);
    cJSON_Delete(e);
    /* a long message (beyond any stack buffer) is kept whole */
    size_t n = 5000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    e = cm_http_error_json(NULL, NULL, NULL, big);
    const cJSON *inner = cJSON_GetObjectItem(e, "error");
    assert_int_equal(strlen(cJSON_GetObjectItem(inner, "message")->valuestring), n);
    assert_string_equal(cJSON_GetObjectItem(inner, "type")->valuestring, "server_error");
    cJSON_Delete(e);
    free(big);
    e = cm_http_error_json("x", NULL, NULL, NULL);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "error"), "message")->valuestring, "");
    cJSON_Delete(e);
}

/* Finding 12: what cJSON accepts but changes or should not accept. */
static void nul_and_control_bytes(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{\"username\":\"a\\u0000b\"}",       /* cJSON's string would end at it: "a" */
        "{\"model\":\"tiny\\u0000evil\"}",
        "{\"a\\u0000\":1}",                    /* in a key too */
        "\"\\u0000\"",
        "{\"a\":\"x\x01y\"}",                   /* raw control bytes in a string */
        "{\"a\":\"x\ty\"}",
        "{\"a\":\"x\ny\"}",
        "{\"a\":\"x\x1fy\"}",
        "\x01{}",                                 /* cJSON skips any byte below 0x21 */
        "{\"a\":\x0b1}",
        "{\"a\":\"\\",                          /* an escape cut off */
        "{\"a\":\"0123456789abcdef\\u0000\"}",  /* past the 8-byte fast path */
        "{\"a\":\"x\\\"\ny\"}",                  /* an escaped quote does not end the string */
        "{\"a\":\"0123456789abcdef\n\"}",          /* a newline found after quotes were skipped */
        "{\"a\":\"0123456789abcdef0123\x01\"}",     /* control byte inside a 16-byte block */
        "{\"a\":\"0123456789abcdef0123\xff\"}",     /* not UTF-8, inside a 16-byte block */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *j = cm_json_parse(bad[i], strlen(bad[i]));
        if (j)
            fail_msg("accepted: case %zu", i);
    }
    /* a NUL byte itself, inside and outside a string */
    assert_null(cm_json_parse("{\"a\":\"x\0y\"}", 11));
    assert_null(cm_json_parse("{}\0", 3));
    static const char *good[] = {
        "{\"a\":\"\\\\u0000\"}",  /* an escaped backslash, then text */
        "{\"a\":\"\\u0001 \\t \\n \\\" \\u00e9\"}",
        "\t{\r\n\"a\" :\n[1, 2]}\n",
        "{\"a\":\"x\\\\\"\n,\"b\":\"0123456789abcdef\"\n}",  /* "x\\" ends, then a newline outside */
        "{\"k\":\"caf\xc3\xa9 0123456789abcdef 0123456789abcdef\"}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *j = cm_json_parse(good[i], strlen(good[i]));
        if (!j)
            fail_msg("refused: case %zu", i);
        cJSON_Delete(j);
    }
    cJSON *j = cm_json_parse(good[0], strlen(good[0]));
    assert_string_equal(cJSON_GetObjectItem(j, "a")->valuestring, "\\u0000");
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(getters),
        cmocka_unit_test(hostile),
        cmocka_unit_test(nul_and_control_bytes),
        cmocka_unit_test(add_time),
        cmocka_unit_test(error_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
