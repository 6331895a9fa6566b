/* Tests common/util.c: UTF-8 checks, files, home expansion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void utf8_valid(void **state)
{
    (void)state;
    assert_true(cm_utf8_valid("hello", 5));
    assert_true(cm_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(cm_utf8_valid("\xc3", 1));             /* truncated */
    assert_false(cm_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(cm_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(cm_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(cm_utf8_valid("\x80", 1));             /* lone continuation */
    assert_false(cm_utf8_valid("\xff", 1));
    /* the 8-byte ASCII fast path: a bad byte at every offset of a long run */
    char buf[40];
    for (size_t at = 0; at < sizeof(buf); at++) {
        memset(buf, 'a', sizeof(buf));
        assert_true(cm_utf8_valid(buf, sizeof(buf)));
        buf[at] = (char)0xb1;
        assert_false(cm_utf8_valid(buf, sizeof(buf)));
        if (at + 2 <= sizeof(buf)) {
            buf[at] = (char)0xc3; /* a whole 2-byte character there is fine */
            buf[at + 1] = (char)0xa9;
            assert_true(cm_utf8_valid(buf, sizeof(buf)));
        }
    }
    assert_false(cm_utf8_valid("abcdefg\xc3", 8)); /* truncated at the end of a word */
}

static void utf8_prefix(void **state)
{
    (void)state;
    const char *euro = "a\xe2\x82\xac"; /* a + 3-byte char */
    assert_int_equal(cm_utf8_complete_prefix(euro, 4), 4);
    assert_int_equal(cm_utf8_complete_prefix(euro, 3), 1);
    assert_int_equal(cm_utf8_complete_prefix(euro, 2), 1);
    assert_int_equal(cm_utf8_complete_prefix(euro, 1), 1);
    const char *emoji = "\xf0\x9f\x98\x80";
    for (size_t n = 1; n < 4; n++)
        assert_int_equal(cm_utf8_complete_prefix(emoji, n), 0);
    assert_int_equal(cm_utf8_complete_prefix(emoji, 4), 4);
    assert_int_equal(cm_utf8_complete_prefix("", 0), 0);
}

static void utf8_sanitize(void **state)
{
    (void)state;
    char out[32];
    /* valid text is copied as is */
    assert_int_equal(cm_utf8_sanitize(out, sizeof(out), "a\xc3\xa9\xe2\x82\xac", 6), 6);
    assert_string_equal(out, "a\xc3\xa9\xe2\x82\xac");
    /* each bad byte becomes U+FFFD: a lone 0xff, a truncated sequence, an overlong */
    assert_int_equal(cm_utf8_sanitize(out, sizeof(out), "a\xff" "b\xc3", 4), 8);
    assert_string_equal(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    cm_utf8_sanitize(out, sizeof(out), "\xc0\xaf", 2);
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd");
    assert_true(cm_utf8_valid(out, strlen(out)));
    /* a short buffer never ends inside a sequence */
    char small[4];
    assert_int_equal(cm_utf8_sanitize(small, sizeof(small), "ab\xe2\x82\xac", 5), 2);
    assert_string_equal(small, "ab");
    assert_int_equal(cm_utf8_sanitize(small, sizeof(small), "", 0), 0);
}

static void put_uint(void **state)
{
    (void)state;
    char buf[32];
    *cm_put_uint(buf, 0, 10) = '\0';
    assert_string_equal(buf, "0");
    *cm_put_uint(buf, 18446744073709551615ull, 10) = '\0';
    assert_string_equal(buf, "18446744073709551615");
    *cm_put_uint(buf, 0x1a2bull, 16) = '\0';
    assert_string_equal(buf, "1a2b");
    char *p = cm_put_str(buf, "len: ");
    *cm_put_uint(p, 42, 10) = '\0';
    assert_string_equal(buf, "len: 42");
}

static void files(void **state)
{
    (void)state;
    char dir[] = "/tmp/llmr-util-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *sub = cm_xasprintf("%s/a/b/c", dir);
    assert_int_equal(cm_mkdir_p(sub, 0700), 0);
    assert_int_equal(cm_mkdir_p(sub, 0700), 0); /* idempotent */
    char *file = cm_xasprintf("%s/secret", sub);
    assert_int_equal(cm_write_file(file, "s3cret", 6, 0600), 0);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *data;
    size_t len;
    assert_int_equal(cm_read_file(file, 100, &data, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(data, "s3cret");
    free(data);
    assert_true(cm_read_file(file, 3, &data, &len) < 0); /* over the limit */
    unlink(file);
    free(file);
    free(sub);
    char *cmd = cm_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void home(void **state)
{
    (void)state;
    setenv("HOME", "/h", 1);
    char *p = cm_expand_home("~/x");
    assert_string_equal(p, "/h/x");
    free(p);
    p = cm_expand_home("/abs/~/x");
    assert_string_equal(p, "/abs/~/x");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_valid),
        cmocka_unit_test(utf8_prefix),
        cmocka_unit_test(utf8_sanitize),
        cmocka_unit_test(put_uint),
        cmocka_unit_test(files),
        cmocka_unit_test(home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
