/* mask: secrets never come out whole; short key prefixes and ordinary words
 * (task_id) are left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mask.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define KEY "sk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-wxyz"

static void check(const char *in, const char *want)
{
    char *m = mcp_mask_text(in, strlen(in));
    assert_string_equal(m, want);
    free(m);
}

static void test_tokens(void **state)
{
    (void)state;
    check("key " KEY " end", "key sk_****wxyz end");
    check("Authorization: Bearer " KEY, "Authorization: Bearer sk_****wxyz");
    check("Authorization: Bearer opaque.session.token", "Authorization: Bearer ****");
    check("bearer abc, more", "bearer ****, more");
    check("nt_0123456789abcdefghijkl and jt_test_join_token_0123456789", "nt_****ijkl and jt_****6789");
    check("{\"key_prefix\":\"sk_AbCdEfG\"}", "{\"key_prefix\":\"sk_AbCdEfG\"}");
    check("task_id=sk_notakeyatall_but_long_enough", "task_id=sk_****ough");
    check("mytask_0123456789abcdefghij", "mytask_0123456789abcdefghij"); /* not at a word start */
    check("", "");
}

static void test_registered(void **state)
{
    (void)state;
    mcp_mask_add("hunter2-password");
    mcp_mask_add("short"); /* ignored: too short */
    mcp_mask_add(NULL);
    check("login with hunter2-password failed", "login with **** failed");
    check("short stays", "short stays");
    mcp_mask_add("eyJhbGciOi.session");
    check("tok=eyJhbGciOi.session;", "tok=****;");
    mcp_mask_remove("eyJhbGciOi.session");
    check("tok=eyJhbGciOi.session;", "tok=eyJhbGciOi.session;");
    mcp_mask_clear();
    check("hunter2-password", "hunter2-password");
}

static void test_key(void **state)
{
    (void)state;
    char out[32];
    mcp_mask_key(KEY, out, sizeof(out));
    assert_string_equal(out, "sk_****wxyz");
    mcp_mask_key("abc", out, sizeof(out));
    assert_string_equal(out, "****");
    mcp_mask_key("plainsecretvalue", out, sizeof(out));
    assert_string_equal(out, "****alue");
}

static void test_json(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("{\"key\":\"" KEY "\",\"nested\":{\"h\":[\"Bearer " KEY "\"]},\"id\":\"k1\"}");
    cJSON *copy = cJSON_Duplicate(j, 1);
    mcp_mask_json(j, NULL);
    char *t = cJSON_PrintUnformatted(j);
    assert_null(strstr(t, KEY));
    assert_non_null(strstr(t, "sk_****wxyz"));
    free(t);
    mcp_mask_json(copy, "key"); /* the created key returned once, as the API gives it */
    t = cJSON_PrintUnformatted(copy);
    assert_non_null(strstr(t, "\"key\":\"" KEY "\""));
    assert_non_null(strstr(t, "Bearer sk_****wxyz"));
    free(t);
    cJSON_Delete(j);
    cJSON_Delete(copy);
    j = cJSON_Parse("{\"token\":\"opaque-session\",\"user\":{\"password\":\"pw\"},\"node_token\":\"nt_x\",\"name\":\"token\"}");
    mcp_mask_json(j, NULL);
    t = cJSON_PrintUnformatted(j);
    assert_string_equal(t, "{\"token\":\"****\",\"user\":{\"password\":\"****\"},\"node_token\":\"****\",\"name\":\"token\"}");
    free(t);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_registered),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
