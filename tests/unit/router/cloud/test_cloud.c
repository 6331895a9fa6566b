/* test_cloud: cloud/cloud.c and cloud/cloud_msg.c, the parts every
 * provider shares: prefixes, the OpenAI passthrough (the client's bytes
 * with only the top-level "model" replaced), the dispatcher's refusals,
 * provider error bodies in OpenAI's terms, token counts, the request
 * readers (stop lists, token limits, images, tool calls, /v1/completions as
 * chat), and the OpenAI stream watcher of cloud_stream.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloud/cloud_int.h"
#include "json.h"
#include "util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static cJSON *parse(const char *s)
{
    cJSON *j = cm_json_parse(s, strlen(s));
    assert_non_null(j);
    return j;
}

static void test_prefixes(void **state)
{
    (void)state;
    rt_cloud_provider_t p;
    const char *name;
    assert_true(rt_cloud_parse_model("openai:gpt-4o", &p, &name));
    assert_int_equal(p, RT_CLOUD_OPENAI);
    assert_string_equal(name, "gpt-4o");
    assert_true(rt_cloud_parse_model("ahtnorpic:claude", &p, &name));
    assert_int_equal(p, RT_CLOUD_ANTHROPIC);
    assert_string_equal(name, "claude");
    assert_true(rt_cloud_parse_model("google:gemini:x", &p, &name));
    assert_int_equal(p, RT_CLOUD_GOOGLE);
    assert_string_equal(name, "gemini:x");
    assert_false(rt_cloud_parse_model("openai:", &p, &name));
    assert_false(rt_cloud_parse_model("OpenAI:gpt", &p, &name));
    assert_false(rt_cloud_parse_model("llama-3", &p, &name));
    assert_string_equal(rt_cloud_provider_name(RT_CLOUD_GOOGLE), "google");
}

static char *build_openai(const char *raw, rt_cloud_endpoint_t ep, rt_cloud_call_t *c)
{
    cJSON *j = parse(raw);
    rt_cloud_refusal_t why;
    assert_int_equal(rt_cloud_build(RT_CLOUD_OPENAI, ep, j, raw, strlen(raw), "gpt-x", c, &why), 0);
    cJSON_Delete(j);
    return c->body;
}

static void test_passthrough_bytes(void **state)
{
    (void)state;
    rt_cloud_call_t c;
    const char *raw = "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"raw \\u00e9\", \"model\":\"inner\"} ],\n"
                      "  \"model\" :  \"openai:gpt-x\", \"temperature\":1.50, \"x\":{\"model\":\"deep\"} }";
    build_openai(raw, RT_CLOUD_CHAT, &c);
    const char *want = "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"raw \\u00e9\", \"model\":\"inner\"} ],\n"
                       "  \"model\" :  \"gpt-x\", \"temperature\":1.50, \"x\":{\"model\":\"deep\"} }";
    assert_int_equal(c.len, strlen(want));
    assert_memory_equal(c.body, want, c.len);
    assert_string_equal(c.path, "/v1/chat/completions");
    assert_false(c.stream);
    rt_cloud_call_free(&c);

    /* a key spelled with an escape: cJSON reads it as "model"; the body is
     * then re-printed with the new value */
    const char *esc = "{\"mod\\u0065l\":\"openai:gpt-x\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    build_openai(esc, RT_CLOUD_CHAT, &c);
    cJSON *j = parse(c.body);
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "gpt-x");
    assert_true(c.stream);
    assert_true(c.include_usage);
    cJSON_Delete(j);
    rt_cloud_call_free(&c);

    /* a string with quotes and brackets before the key does not fool the scan */
    const char *tricky = "{\"a\":\"}\\\"model\\\": {[\",\"model\":\"openai:q\",\"encoding_format\":\"base64\"}";
    build_openai(tricky, RT_CLOUD_EMBEDDINGS, &c);
    assert_string_equal(c.body, "{\"a\":\"}\\\"model\\\": {[\",\"model\":\"gpt-x\",\"encoding_format\":\"base64\"}");
    assert_string_equal(c.path, "/v1/embeddings");
    assert_true(c.base64);
    rt_cloud_call_free(&c);
}

static void test_refusals(void **state)
{
    (void)state;
    rt_cloud_call_t c;
    rt_cloud_refusal_t why;
    cJSON *j = parse("{\"model\":\"anthropic:c\",\"input\":\"x\"}");
    assert_int_equal(rt_cloud_build(RT_CLOUD_ANTHROPIC, RT_CLOUD_EMBEDDINGS, j, NULL, 0, "c", &c, &why), -1);
    assert_int_equal(why.status, 400);
    assert_string_equal(why.code, "unsupported_endpoint");
    assert_non_null(strstr(why.message, "Anthropic"));
    assert_null(c.body);
    cJSON_Delete(j);

    j = parse("{\"model\":\"anthropic:c\",\"prompt\":[\"a\",\"b\"]}");
    assert_int_equal(rt_cloud_build(RT_CLOUD_ANTHROPIC, RT_CLOUD_COMPLETIONS, j, NULL, 0, "c", &c, &why), -1);
    assert_string_equal(why.param, "prompt");
    cJSON_Delete(j);

    j = parse("[1]");
    assert_int_equal(rt_cloud_build(RT_CLOUD_GOOGLE, RT_CLOUD_CHAT, j, NULL, 0, "g", &c, &why), -1);
    cJSON_Delete(j);
}

static void test_errors(void **state)
{
    (void)state;
    rt_cloud_error_t e;
    const char *oa = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}";
    rt_cloud_error(RT_CLOUD_OPENAI, 429, oa, strlen(oa), &e);
    assert_string_equal(e.message, "Rate limit reached");
    assert_string_equal(e.type, "rate_limit_error");
    assert_string_equal(e.code, "rate_limit_exceeded");

    const char *an = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    rt_cloud_error(RT_CLOUD_ANTHROPIC, 529, an, strlen(an), &e);
    assert_string_equal(e.message, "Overloaded");
    assert_string_equal(e.type, "overloaded_error");
    assert_string_equal(e.code, "overloaded_error");

    const char *go = "[{\"error\":{\"code\":400,\"message\":\"API key not valid\",\"status\":\"INVALID_ARGUMENT\"}}]";
    rt_cloud_error(RT_CLOUD_GOOGLE, 400, go, strlen(go), &e);
    assert_string_equal(e.message, "API key not valid");
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.code, "INVALID_ARGUMENT");

    /* not JSON, or JSON without a message: the status speaks */
    rt_cloud_error(RT_CLOUD_GOOGLE, 502, "<html>bad gateway</html>", 24, &e);
    assert_string_equal(e.message, "google answered HTTP 502");
    assert_string_equal(e.type, "server_error");
    assert_string_equal(e.code, "");
    rt_cloud_error(RT_CLOUD_OPENAI, 401, "{\"error\":{\"message\":7}}", 23, &e);
    assert_string_equal(e.type, "authentication_error");
    assert_string_equal(e.message, "openai answered HTTP 401");

    /* a long message is bounded and stays valid UTF-8 */
    char big[2048] = "{\"error\":{\"message\":\"";
    size_t n = strlen(big);
    while (n < sizeof(big) - 8) {
        memcpy(big + n, "\xc3\xa9", 2); /* é */
        n += 2;
    }
    strcpy(big + n, "\"}}");
    rt_cloud_error(RT_CLOUD_OPENAI, 400, big, strlen(big), &e);
    assert_true(strlen(e.message) < sizeof(e.message));
    assert_true(cm_utf8_valid(e.message, strlen(e.message)));
}

static void test_counts(void **state)
{
    (void)state;
    cJSON *j = parse("{\"a\":3,\"b\":-1,\"c\":2.5,\"d\":\"4\",\"e\":1e300,\"f\":null}");
    int64_t v = 0;
    assert_int_equal(get_count(j, "a", &v), 1);
    assert_int_equal(v, 3);
    assert_int_equal(get_count(j, "b", &v), -1);
    assert_int_equal(get_count(j, "c", &v), -1);
    assert_int_equal(get_count(j, "d", &v), -1);
    assert_int_equal(get_count(j, "e", &v), -1);
    assert_int_equal(get_count(j, "f", &v), 0);
    assert_int_equal(get_count(j, "zz", &v), 0);
    cJSON_Delete(j);
    const char *ans = "{\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}";
    rt_cloud_usage_t u = rt_cloud_answer_usage(ans, strlen(ans));
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.completion_tokens, 5);
    u = rt_cloud_answer_usage("nope", 4);
    assert_int_equal(u.prompt_tokens, -1);
    assert_int_equal(u.completion_tokens, -1);
}

static void test_readers(void **state)
{
    (void)state;
    rt_cloud_refusal_t why;
    cJSON *out;
    cJSON *j = parse("{\"stop\":[\"a\",\"  \",\"b\"],\"max_tokens\":7,\"max_completion_tokens\":9,\"temperature\":0.5}");
    assert_int_equal(stop_list(j, &out, &why), 0);
    assert_int_equal(cJSON_GetArraySize(out), 2);
    assert_string_equal(cJSON_GetArrayItem(out, 1)->valuestring, "b");
    cJSON_Delete(out);
    long long mt = 0;
    assert_int_equal(max_tokens(j, &mt, &why), 1);
    assert_int_equal(mt, 9); /* max_completion_tokens wins */
    cJSON *dst = cJSON_CreateObject();
    assert_int_equal(copy_num(j, "temperature", dst, "t", &why), 0);
    assert_true(cJSON_GetObjectItem(dst, "t")->valuedouble == 0.5);
    assert_int_equal(copy_num(j, "absent", dst, "x", &why), 0);
    assert_null(cJSON_GetObjectItem(dst, "x"));
    cJSON_Delete(dst);
    cJSON_Delete(j);

    j = parse("{\"stop\":\"   \",\"max_tokens\":0,\"temperature\":\"hot\"}");
    assert_int_equal(stop_list(j, &out, &why), 0);
    assert_null(out);
    assert_int_equal(max_tokens(j, &mt, &why), -1);
    assert_string_equal(why.param, "max_tokens");
    dst = cJSON_CreateObject();
    assert_int_equal(copy_num(j, "temperature", dst, "t", &why), -1);
    cJSON_Delete(dst);
    cJSON_Delete(j);
    j = parse("{\"stop\":[1]}");
    assert_int_equal(stop_list(j, &out, &why), -1);
    cJSON_Delete(j);

    j = parse("[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]");
    char *t = msg_text(j, "messages[0]", &why);
    assert_string_equal(t, "a\nb");
    free(t);
    cJSON_Delete(j);
    j = parse("[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,QUJD\"}}]");
    assert_null(msg_text(j, "messages[0]", &why));
    image_ref_t img;
    assert_int_equal(image_url(cJSON_GetArrayItem(j, 0), &img, &why), 0);
    assert_true(img.is_data);
    assert_int_equal(img.mime_len, 9);
    assert_memory_equal(img.mime, "image/png", 9);
    assert_int_equal(img.data_len, 4);
    cJSON_Delete(j);
    j = parse("{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,QUJD\"}}");
    assert_int_equal(image_url(j, &img, &why), -1);
    cJSON_Delete(j);
    j = parse("{\"type\":\"image_url\",\"image_url\":\"https://x.test/a.png\"}");
    assert_int_equal(image_url(j, &img, &why), 0);
    assert_false(img.is_data);
    assert_string_equal(img.url, "https://x.test/a.png");
    cJSON_Delete(j);

    tool_call_t tc;
    j = parse("{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}");
    assert_int_equal(tool_call(j, &tc, &why), 0);
    assert_string_equal(tc.name, "f");
    assert_int_equal(cJSON_GetObjectItem(tc.args, "a")->valueint, 1);
    cJSON_Delete(tc.args);
    cJSON_Delete(j);
    j = parse("{\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"[1,2]\"}}");
    assert_int_equal(tool_call(j, &tc, &why), -1);
    cJSON_Delete(j);
    j = parse("{\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}");
    assert_int_equal(tool_call(j, &tc, &why), 0);
    assert_true(cJSON_IsObject(tc.args));
    cJSON_Delete(tc.args);
    cJSON_Delete(j);

    j = parse("{\"model\":\"m\",\"prompt\":[\"only one\"],\"max_tokens\":3,\"echo\":true}");
    cJSON *chat = completion_as_chat(j, &why);
    assert_non_null(chat);
    assert_null(cJSON_GetObjectItem(chat, "prompt"));
    assert_null(cJSON_GetObjectItem(chat, "echo"));
    cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(chat, "messages"), 0);
    assert_string_equal(cJSON_GetObjectItem(m0, "role")->valuestring, "user");
    assert_string_equal(cJSON_GetObjectItem(m0, "content")->valuestring, "only one");
    assert_int_equal(cJSON_GetObjectItem(chat, "max_tokens")->valueint, 3);
    cJSON_Delete(chat);
    cJSON_Delete(j);
}

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

/* The OpenAI stream is relayed byte for byte; the stream object only
 * reads usage, errors and [DONE] from it. */
static void test_openai_stream_watch(void **state)
{
    (void)state;
    rt_cloud_call_t call = { .provider = RT_CLOUD_OPENAI, .endpoint = RT_CLOUD_CHAT, .stream = true };
    const char *in = "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
                     "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n"
                     "data: [DONE]\n\n";
    rt_cloud_stream_t *s = rt_cloud_stream_new(&call, "openai:g", "id", 0);
    struct evbuffer *out = evbuffer_new();
    char err[128];
    int rc = RT_CLOUD_STREAM_MORE;
    for (size_t i = 0; i < strlen(in) && rc == RT_CLOUD_STREAM_MORE; i++)
        rc = rt_cloud_stream_feed(s, in + i, 1, out, err, sizeof(err));
    assert_int_equal(rc, RT_CLOUD_STREAM_DONE);
    char *got = drain(out);
    assert_string_equal(got, in);
    free(got);
    rt_cloud_usage_t u = rt_cloud_stream_usage(s);
    assert_int_equal(u.prompt_tokens, 4);
    assert_int_equal(u.completion_tokens, 2);
    rt_cloud_stream_free(s);

    /* cut before [DONE]: an error event and [DONE] are added */
    s = rt_cloud_stream_new(&call, "openai:g", "id", 0);
    rt_cloud_stream_feed(s, in, 40, out, err, sizeof(err));
    evbuffer_drain(out, evbuffer_get_length(out));
    assert_int_equal(rt_cloud_stream_end(s, out, err, sizeof(err)), RT_CLOUD_STREAM_ERROR);
    got = drain(out);
    assert_non_null(strstr(got, "\"error\""));
    assert_non_null(strstr(got, "data: [DONE]\n\n"));
    free(got);
    rt_cloud_stream_free(s);
    evbuffer_free(out);
}

/* Gemini's error in the middle of a stream is plain multi-line JSON after
 * the events (no "data:"): its message and kind still reach the client. */
static void test_google_error_after_events(void **state)
{
    (void)state;
    rt_cloud_call_t call = { .provider = RT_CLOUD_GOOGLE, .endpoint = RT_CLOUD_CHAT, .stream = true };
    const char *in = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}],\"role\":\"model\"}}]}\r\n\r\n"
                     "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"The model is overloaded.\",\n"
                     "    \"status\": \"UNAVAILABLE\"\n  }\n}\n";
    rt_cloud_stream_t *s = rt_cloud_stream_new(&call, "google:g", "chatcmpl-x", 0);
    struct evbuffer *out = evbuffer_new();
    char err[160];
    for (size_t i = 0; i < strlen(in); i += 7) {
        size_t n = strlen(in) - i < 7 ? strlen(in) - i : 7;
        assert_int_equal(rt_cloud_stream_feed(s, in + i, n, out, err, sizeof(err)), RT_CLOUD_STREAM_MORE);
    }
    assert_int_equal(rt_cloud_stream_end(s, out, err, sizeof(err)), RT_CLOUD_STREAM_ERROR);
    char *got = drain(out);
    assert_non_null(strstr(got, "\"content\":\"hi\""));
    assert_non_null(strstr(got, "{\"error\":{\"message\":\"The model is overloaded.\",\"type\":\"overloaded_error\""));
    assert_non_null(strstr(got, "\"code\":\"UNAVAILABLE\""));
    assert_non_null(strstr(got, "data: [DONE]\n\n"));
    free(got);
    rt_cloud_stream_free(s);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefixes),  cmocka_unit_test(test_passthrough_bytes),
        cmocka_unit_test(test_refusals),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_counts),    cmocka_unit_test(test_readers),
        cmocka_unit_test(test_openai_stream_watch), cmocka_unit_test(test_google_error_after_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
