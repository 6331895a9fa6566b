/* sse: the parser must give the same events whatever the chunk boundaries. */
#include "sse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char log[4096];
    size_t n;
    int events;
    int stop_after;
} sink_t;

static int on_event(const cm_sse_event_t *ev, void *ud)
{
    sink_t *s = ud;
    s->n += (size_t)snprintf(s->log + s->n, sizeof(s->log) - s->n, "[%s|%s|%s]", ev->event, ev->data, ev->id);
    s->events++;
    return s->stop_after && s->events >= s->stop_after;
}

static const char stream[] =
    "\xEF\xBB\xBF: comment line\r\n"
    "data: {\"a\":1}\r\n\r\n"
    "event: error\n"
    "data: line one\n"
    "data:line two\n"
    "id: 7\n\n"
    "retry: 100\r"
    "data: cr only\r\r"
    "data\n\n"
    "event: empty\n\n"
    "data: [DONE]\n\n"
    "data: unterminated";

static const char expected[] =
    "[message|{\"a\":1}|][error|line one\nline two|7][message|cr only|7][message||7][message|[DONE]|7]";

static void parse_split(size_t a, size_t b, sink_t *s)
{
    size_t len = sizeof(stream) - 1;
    memset(s, 0, sizeof(*s));
    cm_sse_parser_t *p = cm_sse_parser_new(256, 1024, on_event, s);
    assert_int_equal(cm_sse_parser_feed(p, stream, a), CM_SSE_OK);
    assert_int_equal(cm_sse_parser_feed(p, stream + a, b - a), CM_SSE_OK);
    assert_int_equal(cm_sse_parser_feed(p, stream + b, len - b), CM_SSE_OK);
    cm_sse_parser_free(p);
}

static void test_every_split(void **state)
{
    (void)state;
    size_t len = sizeof(stream) - 1;
    sink_t s;
    for (size_t a = 0; a <= len; a++) {
        parse_split(a, a, &s);
        assert_string_equal(s.log, expected);
    }
}

static void test_every_pair_of_splits(void **state)
{
    (void)state;
    size_t len = sizeof(stream) - 1;
    sink_t s;
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            parse_split(a, b, &s);
            assert_string_equal(s.log, expected);
        }
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    sink_t s = { 0 };
    cm_sse_parser_t *p = cm_sse_parser_new(0, 0, on_event, &s);
    for (size_t i = 0; i < sizeof(stream) - 1; i++)
        assert_int_equal(cm_sse_parser_feed(p, stream + i, 1), CM_SSE_OK);
    assert_string_equal(s.log, expected);
    assert_true(cm_sse_parser_pending(p) > 0); /* the unterminated tail */
    cm_sse_parser_free(p);
}

static void test_line_too_long(void **state)
{
    (void)state;
    sink_t s = { 0 };
    cm_sse_parser_t *p = cm_sse_parser_new(16, 1024, on_event, &s);
    assert_int_equal(cm_sse_parser_feed(p, "data: 0123456789", 16), CM_SSE_OK);
    assert_int_equal(cm_sse_parser_feed(p, "x", 1), CM_SSE_ETOOLONG);
    assert_int_equal(cm_sse_parser_feed(p, "\n\n", 2), CM_SSE_ETOOLONG); /* sticky */
    assert_int_equal(s.events, 0);
    cm_sse_parser_free(p);
}

static void test_data_too_long(void **state)
{
    (void)state;
    sink_t s = { 0 };
    cm_sse_parser_t *p = cm_sse_parser_new(64, 10, on_event, &s);
    assert_int_equal(cm_sse_parser_feed(p, "data: 12345\n", 12), CM_SSE_OK);
    assert_int_equal(cm_sse_parser_feed(p, "data: 12345\n", 12), CM_SSE_ETOOLONG);
    cm_sse_parser_free(p);
}

static void test_stop(void **state)
{
    (void)state;
    sink_t s = { .stop_after = 1 };
    cm_sse_parser_t *p = cm_sse_parser_new(0, 0, on_event, &s);
    assert_int_equal(cm_sse_parser_feed(p, "data: a\n\ndata: b\n\n", 18), CM_SSE_ESTOPPED);
    assert_int_equal(s.events, 1);
    cm_sse_parser_free(p);
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    size_t n;
    char *out = cm_sse_format("error", "{\"x\":1}\nsecond", 14, &n);
    assert_string_equal(out, "event: error\ndata: {\"x\":1}\ndata: second\n\n");
    assert_int_equal(n, strlen(out));
    sink_t s = { 0 };
    cm_sse_parser_t *p = cm_sse_parser_new(0, 0, on_event, &s);
    assert_int_equal(cm_sse_parser_feed(p, out, n), CM_SSE_OK);
    assert_string_equal(s.log, "[error|{\"x\":1}\nsecond|]");
    cm_sse_parser_free(p);
    free(out);
    out = cm_sse_format(NULL, "", 0, &n);
    assert_string_equal(out, "data: \n\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_every_pair_of_splits),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_data_too_long),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_format_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
