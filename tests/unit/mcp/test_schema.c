/* schema: the argument checks tools/call makes before any request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int run(const char *schema, const char *args)
{
    cJSON *s = cJSON_Parse(schema), *a = cJSON_Parse(args);
    char err[300] = "";
    int rc = mcp_schema_check(s, a, err, sizeof(err));
    if (rc)
        assert_true(err[0] != 0);
    cJSON_Delete(s);
    cJSON_Delete(a);
    return rc;
}

#define S "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5}," \
          "\"s\":{\"type\":[\"string\",\"array\"]},\"e\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}," \
          "\"q\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}," \
          "\"m\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"object\"}}}," \
          "\"required\":[\"n\"],\"additionalProperties\":false}"

static void test_schema(void **state)
{
    (void)state;
    assert_int_equal(run(S, "{\"n\":3}"), 0);
    assert_int_equal(run(S, "{\"n\":3,\"s\":\"x\",\"e\":\"b\",\"q\":{\"a\":\"1\"},\"m\":[{}]}"), 0);
    assert_int_equal(run(S, "{\"n\":3,\"s\":[1]}"), 0);
    assert_int_equal(run(S, "{}"), -1);
    assert_int_equal(run(S, "{\"n\":3.5}"), -1);
    assert_int_equal(run(S, "{\"n\":9}"), -1);
    assert_int_equal(run(S, "{\"n\":\"3\"}"), -1);
    assert_int_equal(run(S, "{\"n\":3,\"x\":1}"), -1);
    assert_int_equal(run(S, "{\"n\":3,\"s\":1}"), -1);
    assert_int_equal(run(S, "{\"n\":3,\"e\":\"c\"}"), -1);
    assert_int_equal(run(S, "{\"n\":3,\"q\":{\"a\":1}}"), -1);
    assert_int_equal(run(S, "{\"n\":3,\"m\":[]}"), -1);
    assert_int_equal(run(S, "{\"n\":3,\"m\":[1]}"), -1);
    assert_int_equal(run(S, "[]"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_schema) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
