/* node/src/sampling.c: request parameters, UTF-8 assembly, stop strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sampling.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *json, nd_sampling_t *sp, char *param)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    char err[256];
    int rc = nd_sampling_parse(j, sp, param, 64, err, sizeof(err));
    cJSON_Delete(j);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    nd_sampling_t sp;
    char param[64];
    assert_int_equal(parse("{}", &sp, param), 0);
    assert_true(sp.temperature == 1.0f && sp.top_p == 1.0f && sp.top_k == 0 && sp.min_p == 0);
    assert_int_equal(sp.max_tokens, -1);
    assert_false(sp.has_seed);
    assert_false(sp.stream);
    assert_int_equal(sp.nstop, 0);
    nd_sampling_free(&sp);
}

static void test_values(void **state)
{
    (void)state;
    nd_sampling_t sp;
    char param[64];
    assert_int_equal(parse("{\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"min_p\":0.05,"
                           "\"seed\":7,\"presence_penalty\":0.5,\"frequency_penalty\":-1,"
                           "\"max_tokens\":16,\"stop\":[\"a\",\"bc\"],\"stream\":true,"
                           "\"stream_options\":{\"include_usage\":true},"
                           "\"logit_bias\":{\"5\":-100,\"9\":2.5},\"n\":1}", &sp, param), 0);
    assert_true(fabsf(sp.temperature - 0.5f) < 1e-6 && fabsf(sp.top_p - 0.9f) < 1e-6);
    assert_int_equal(sp.top_k, 40);
    assert_true(sp.has_seed);
    assert_int_equal(sp.seed, 7);
    assert_int_equal(sp.max_tokens, 16);
    assert_int_equal(sp.nstop, 2);
    assert_string_equal(sp.stop[1], "bc");
    assert_true(sp.stream && sp.include_usage);
    assert_int_equal(sp.nbias, 2);
    assert_int_equal(sp.bias[0].token, 5);
    assert_true(isinf(sp.bias[0].bias) && sp.bias[0].bias < 0);
    assert_true(fabsf(sp.bias[1].bias - 2.5f) < 1e-6);
    nd_sampling_free(&sp);
    /* max_completion_tokens wins over max_tokens; a single stop string */
    assert_int_equal(parse("{\"max_completion_tokens\":3,\"max_tokens\":9,\"stop\":\"x\"}", &sp, param), 0);
    assert_int_equal(sp.max_tokens, 3);
    assert_int_equal(sp.nstop, 1);
    nd_sampling_free(&sp);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct { const char *json, *param; } bad[] = {
        { "{\"temperature\":3}", "temperature" },
        { "{\"temperature\":\"1\"}", "temperature" },
        { "{\"top_p\":-0.1}", "top_p" },
        { "{\"max_tokens\":-1}", "max_tokens" },
        { "{\"max_tokens\":1.5}", "max_tokens" },
        { "{\"n\":2}", "n" },
        { "{\"top_k\":-3}", "top_k" },
        { "{\"stop\":5}", "stop" },
        { "{\"stop\":[\"\"]}", "stop" },
        { "{\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop" },
        { "{\"logit_bias\":[]}", "logit_bias" },
        { "{\"logit_bias\":{\"-1\":1}}", "logit_bias" },
        { "{\"logit_bias\":{\"3\":101}}", "logit_bias" },
        { "{\"stream\":1}", "stream" },
        { "{\"stream_options\":{\"include_usage\":\"yes\"}}", "stream_options" },
        { "{\"seed\":\"x\"}", "seed" },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++) {
        nd_sampling_t sp;
        char param[64] = "";
        assert_int_equal(parse(bad[i].json, &sp, param), -1);
        assert_string_equal(param, bad[i].param);
        nd_sampling_free(&sp);
    }
}

/* Feeds bytes one call per chunk of size step; returns the output. */
static char *utf8_run(const char *in, size_t len, size_t step)
{
    nd_utf8_t u = { { 0 }, 0 };
    char *out = NULL;
    size_t outlen = 0;
    for (size_t i = 0; i < len; i += step)
        nd_utf8_feed(&u, in + i, len - i < step ? len - i : step, &out, &outlen);
    nd_utf8_flush(&u, &out, &outlen);
    assert_true(cm_utf8_valid(out, outlen));
    return out;
}

static void test_utf8(void **state)
{
    (void)state;
    const char good[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"; /* a é € 😀 z */
    for (size_t step = 1; step <= 4; step++) {
        char *o = utf8_run(good, strlen(good), step);
        assert_string_equal(o, good); /* held across calls, never split */
        free(o);
    }
    /* a stray continuation byte, an invalid lead, a truncated character at the end */
    char *o = utf8_run("a\x80" "b\xFF" "c\xE2\x82", 7, 1);
    assert_string_equal(o, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD");
    free(o);
    /* a broken sequence: the lead is replaced and the next byte kept */
    o = utf8_run("\xE2" "A", 2, 1);
    assert_string_equal(o, "\xEF\xBF\xBD" "A");
    free(o);
    /* overlong and surrogate encodings are invalid */
    o = utf8_run("\xC0\xAF\xED\xA0\x80", 5, 2);
    assert_true(strstr(o, "\xED\xA0") == NULL);
    free(o);
    /* an incomplete character stays held until it completes */
    nd_utf8_t u = { { 0 }, 0 };
    char *out = NULL;
    size_t n = 0;
    nd_utf8_feed(&u, "\xF0\x9F", 2, &out, &n);
    assert_int_equal(n, 0);
    nd_utf8_feed(&u, "\x98\x80", 2, &out, &n);
    assert_int_equal(n, 4);
    free(out);
}

/* Runs pieces through a stop matcher; returns the emitted text and whether it stopped. */
static char *stop_run(const char *const *stops, int nstop, const char *const *pieces, bool *stopped)
{
    nd_stop_t s;
    nd_stop_init(&s, stops, nstop);
    char *all = cm_xstrdup("");
    *stopped = false;
    for (int i = 0; pieces[i] && !*stopped; i++) {
        char *em;
        size_t n;
        *stopped = nd_stop_feed(&s, pieces[i], strlen(pieces[i]), &em, &n);
        char *x = cm_xasprintf("%s%s", all, em);
        free(all);
        free(em);
        all = x;
    }
    if (!*stopped) {
        size_t n;
        char *rest = nd_stop_flush(&s, &n);
        char *x = cm_xasprintf("%s%s", all, rest);
        free(all);
        free(rest);
        all = x;
    }
    nd_stop_free(&s);
    return all;
}

static void test_stop(void **state)
{
    (void)state;
    bool stopped;
    const char *stops[] = { "END", "<|x|>" };
    const char *p1[] = { "hello E", "N", "D and more", NULL };
    char *o = stop_run(stops, 2, p1, &stopped);
    assert_true(stopped);
    assert_string_equal(o, "hello ");
    free(o);
    const char *p2[] = { "a<|", "x", "|", ">b", NULL };
    o = stop_run(stops, 2, p2, &stopped);
    assert_true(stopped);
    assert_string_equal(o, "a");
    free(o);
    /* a false start is released once it cannot match */
    const char *p3[] = { "EN", "Z", NULL };
    o = stop_run(stops, 2, p3, &stopped);
    assert_false(stopped);
    assert_string_equal(o, "ENZ");
    free(o);
    /* held text is emitted at the end when nothing matched */
    const char *p4[] = { "tail E", NULL };
    o = stop_run(stops, 2, p4, &stopped);
    assert_false(stopped);
    assert_string_equal(o, "tail E");
    free(o);
    /* what is emitted before a stop never contains any of it */
    nd_stop_t s;
    nd_stop_init(&s, stops, 2);
    char *em;
    size_t n;
    assert_false(nd_stop_feed(&s, "xxE", 3, &em, &n));
    assert_string_equal(em, "xx");
    free(em);
    nd_stop_free(&s);
}

static void test_text(void **state)
{
    (void)state;
    /* a stop string whose first byte arrives inside a split character */
    const char *stops[] = { "\xC3\xA9nd" };
    nd_text_t t;
    nd_text_init(&t, stops, 1);
    char *em;
    size_t n;
    assert_false(nd_text_feed(&t, "ok \xC3", 4, &em, &n));
    assert_string_equal(em, "ok ");
    free(em);
    assert_false(nd_text_feed(&t, "\xA9n", 2, &em, &n));
    assert_string_equal(em, ""); /* "\xC3\xA9n" may start the stop string */
    free(em);
    assert_true(nd_text_feed(&t, "d!", 2, &em, &n));
    assert_string_equal(em, "");
    free(em);
    nd_text_free(&t);
    /* at the end a dangling lead byte becomes U+FFFD and held text is released */
    nd_text_init(&t, stops, 1);
    assert_false(nd_text_feed(&t, "x\xC3\xA9", 3, &em, &n));
    assert_string_equal(em, "x");
    free(em);
    assert_false(nd_text_feed(&t, "\xE2", 1, &em, &n));
    free(em);
    assert_false(nd_text_flush(&t, &em, &n));
    assert_string_equal(em, "\xC3\xA9\xEF\xBF\xBD");
    free(em);
    nd_text_free(&t);
}

int main(void)
{
    cm_util_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_values), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_utf8), cmocka_unit_test(test_stop), cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
