/* Tests common/json.c: typed getters are strict about types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(getters),
        cmocka_unit_test(hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
