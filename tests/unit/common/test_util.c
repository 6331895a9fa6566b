/* Tests common/util.c: the UTF-8 decoder and checks, RFC 3339 times, files,
 * home expansion, the allocator hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* The one decoder: whole characters, broken ones, and starts that need more. */
static void utf8_seq(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        int want;
    } cases[] = {
        { "a", 1, 1 },
        { "\x7f", 1, 1 },
        { "ab", 2, 1 },                      /* only the first character counts */
        { "\xc3\xa9", 2, 2 },                /* U+00E9 */
        { "\xc3\xa9z", 3, 2 },
        { "\xe2\x82\xac", 3, 3 },            /* U+20AC */
        { "\xf0\x9f\x98\x80", 4, 4 },        /* U+1F600 */
        { "\xf4\x8f\xbf\xbf", 4, 4 },        /* U+10FFFF, the last */
        { "\xef\xbf\xbd", 3, 3 },            /* U+FFFD itself */
        { "\xed\x9f\xbf", 3, 3 },            /* U+D7FF, below the surrogates */
        { "\xee\x80\x80", 3, 3 },            /* U+E000, above them */
        { "\xc3", 1, CM_UTF8_INCOMPLETE },
        { "\xe2\x82", 2, CM_UTF8_INCOMPLETE },
        { "\xf0\x9f\x98", 3, CM_UTF8_INCOMPLETE },
        { "\xe0", 1, CM_UTF8_INCOMPLETE },   /* judged when the next byte comes */
        { "", 0, CM_UTF8_INCOMPLETE },
        { "\x80", 1, 0 },                    /* lone continuation */
        { "\xbf", 1, 0 },
        { "\xc0\xaf", 2, 0 },                /* overlong lead bytes */
        { "\xc1\xbf", 2, 0 },
        { "\xe0\x9f\xbf", 3, 0 },            /* overlong 3-byte */
        { "\xe0\x80", 2, 0 },                /* ... known at its second byte */
        { "\xf0\x8f\xbf\xbf", 4, 0 },        /* overlong 4-byte */
        { "\xed\xa0\x80", 3, 0 },            /* U+D800, a surrogate */
        { "\xed\xbf\xbf", 3, 0 },            /* U+DFFF */
        { "\xf4\x90\x80\x80", 4, 0 },        /* above U+10FFFF */
        { "\xf5\x80\x80\x80", 4, 0 },
        { "\xff", 1, 0 },
        { "\xc3\x41", 2, 0 },                /* a continuation byte missing */
        { "\xe2\x82\x41", 3, 0 },
        { "\xf0\x9f\x98\xc3", 4, 0 },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        int got = cm_utf8_seq((const unsigned char *)cases[i].bytes, cases[i].n);
        if (got != cases[i].want)
            fail_msg("case %zu: %d, want %d", i, got, cases[i].want);
    }
    assert_int_equal(CM_UTF8_REPLACEMENT_LEN, strlen(CM_UTF8_REPLACEMENT));
    assert_int_equal(cm_utf8_seq((const unsigned char *)CM_UTF8_REPLACEMENT, CM_UTF8_REPLACEMENT_LEN),
                     CM_UTF8_REPLACEMENT_LEN);
}

static void time_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { 1, "1970-01-01T00:00:00.001Z" },
        { 1000, "1970-01-01T00:00:01.000Z" },
        { 86399999, "1970-01-01T23:59:59.999Z" },
        { 951782400000LL, "2000-02-29T00:00:00.000Z" },   /* leap day of a year / 400 */
        { 951868800000LL, "2000-03-01T00:00:00.000Z" },
        { 1709164800000LL, "2024-02-29T00:00:00.000Z" },
        { 1893456000250LL, "2030-01-01T00:00:00.250Z" },
        { 4107542399999LL, "2100-02-28T23:59:59.999Z" },  /* 2100 is no leap year */
        { 4107542400000LL, "2100-03-01T00:00:00.000Z" },
        { 253402300799999LL, "9999-12-31T23:59:59.999Z" },
        { 253402300800000LL, "" },                        /* year 10000 */
        { -1, "" },
        { INT64_MIN, "" },
        { INT64_MAX, "" },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        char out[CM_TIME_RFC3339_SIZE] = "junk";
        size_t n = cm_time_rfc3339(cases[i].ms, out);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

static void time_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t want;
    } cases[] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "1970-01-01T00:00:01Z", 1000 },
        { "2030-01-01T00:00:00Z", 1893456000000LL },
        { "2030-01-01T00:00:00.250Z", 1893456000250LL },
        { "2030-01-01T00:00:00.2Z", 1893456000200LL },
        { "2030-01-01T00:00:00.25Z", 1893456000250LL },
        { "2030-01-01T00:00:00.123456789Z", 1893456000123LL }, /* truncated to ms */
        { "2030-01-01T01:00:00+01:00", 1893456000000LL },
        { "2029-12-31T23:00:00-01:00", 1893456000000LL },
        { "2030-01-01T05:30:00+05:30", 1893456000000LL },
        { "2030-01-01T00:00:00-00:00", 1893456000000LL },
        { "2030-01-01t00:00:00z", 1893456000000LL },       /* RFC 3339 allows lower case */
        { "2030-01-01 00:00:00Z", 1893456000000LL },       /* and a space */
        { "2000-02-29T00:00:00Z", 951782400000LL },        /* leap years */
        { "2024-02-29T12:00:00Z", 1709208000000LL },
        { "2016-12-31T23:59:60Z", 1483228800000LL },       /* leap second: next minute */
        { "9999-12-31T23:59:59.999Z", 253402300799999LL },
        { "1970-01-01T01:00:00+01:00", 0 },
        /* malformed */
        { "2030-01-01T00:00:00", -1 },                     /* zone required */
        { "tomorrow", -1 },
        { "", -1 },
        { "2030-01-01T00:00:00Zjunk", -1 },
        { "2030-01-01T00:00:00Z ", -1 },
        { " 2030-01-01T00:00:00Z", -1 },
        { "2030-1-1T0:0:0Z", -1 },                         /* two digits each */
        { "+2030-01-01T00:00:00Z", -1 },
        { "12030-01-01T00:00:00Z", -1 },
        { "2030-01-01", -1 },
        { "2030-01-01T00:00Z", -1 },
        { "2030-01-01T00:00:00.Z", -1 },                   /* a fraction needs a digit */
        { "2030-01-01T00:00:00+01", -1 },
        { "2030-01-01T00:00:00+0100", -1 },
        { "2030-01-01T00:00:00+24:00", -1 },
        { "2030-01-01T00:00:00+01:60", -1 },
        { "2030-01-01X00:00:00Z", -1 },
        { "2030/01/01T00:00:00Z", -1 },
        /* days the month does not have, and out-of-range fields */
        { "2023-02-29T00:00:00Z", -1 },
        { "1900-02-29T00:00:00Z", -1 },                    /* / 100: no leap day */
        { "2100-02-29T00:00:00Z", -1 },
        { "2030-02-30T00:00:00Z", -1 },
        { "2030-04-31T00:00:00Z", -1 },
        { "2030-00-10T00:00:00Z", -1 },
        { "2030-13-10T00:00:00Z", -1 },
        { "2030-01-00T00:00:00Z", -1 },
        { "2030-01-32T00:00:00Z", -1 },
        { "2030-01-01T24:00:00Z", -1 },
        { "2030-01-01T00:60:00Z", -1 },
        { "2030-01-01T00:00:61Z", -1 },
        /* before the epoch */
        { "1969-12-31T23:59:59Z", -1 },
        { "1970-01-01T00:00:00+00:01", -1 },
        { "0000-01-01T00:00:00Z", -1 },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        int64_t got = cm_time_parse_rfc3339(cases[i].s);
        if (got != cases[i].want)
            fail_msg("\"%s\": %lld, want %lld", cases[i].s, (long long)got, (long long)cases[i].want);
    }
    assert_int_equal(cm_time_parse_rfc3339(NULL), -1);
    /* what the formatter writes, the parser reads back */
    for (int64_t ms = 0; ms < 253402300800000LL; ms += 7777777777LL + 1) {
        char out[CM_TIME_RFC3339_SIZE];
        assert_int_equal(cm_time_rfc3339(ms, out), 24);
        assert_int_equal(cm_time_parse_rfc3339(out), ms);
    }
}

/* cm_util_init routes libevent's allocations through cm_x*: an object made
 * after it is freed by the same free(), so nothing changes but the policy. */
static void allocator_hooks(void **state)
{
    (void)state;
    cm_util_init();
    cm_util_init(); /* once or twice: the same hooks */
    struct event_base *b = event_base_new();
    assert_non_null(b);
    event_base_free(b);
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

/* Finding 6: the data directory's lock. A second holder (another open
 * description: this process again, or another process) is refused with the
 * holder's PID; closing releases it. */
static void lock_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/llmr-test-lock-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = cm_xasprintf("%s/router.lock", dir);
    char err[256] = "";
    int fd = cm_lock_file(path, "llm-router", err, sizeof(err));
    assert_true(fd >= 0);
    char want[256];
    snprintf(want, sizeof(want), "another llm-router (pid %ld) uses %s", (long)getpid(), dir);
    assert_int_equal(cm_lock_file(path, "llm-router", err, sizeof(err)), -1);
    assert_string_equal(err, want);
    pid_t child = fork();
    if (child == 0) /* another process: refused too */
        _exit(cm_lock_file(path, "llm-router", err, sizeof(err)) == -1 ? 0 : 1);
    int st = 0;
    waitpid(child, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fd);
    fd = cm_lock_file(path, "llm-router", err, sizeof(err));
    assert_true(fd >= 0);
    close(fd);
    char *missing = cm_xasprintf("%s/no/such/dir/router.lock", dir);
    assert_int_equal(cm_lock_file(missing, "llm-router", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
    free(missing);
    unlink(path);
    rmdir(dir);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_valid),
        cmocka_unit_test(utf8_prefix),
        cmocka_unit_test(utf8_sanitize),
        cmocka_unit_test(utf8_seq),
        cmocka_unit_test(time_format),
        cmocka_unit_test(time_parse),
        cmocka_unit_test(allocator_hooks),
        cmocka_unit_test(put_uint),
        cmocka_unit_test(files),
        cmocka_unit_test(home),
        cmocka_unit_test(lock_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
