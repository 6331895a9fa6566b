/* test_cloud_google: cloud/cloud_google.c and cloud/cloud_embed.c through
 * the public API of cloud.h. Requests: every OpenAI -> Gemini mapping field
 * by field (the output JSON parsed and compared whole, as the e2e test's
 * deepEqual), the turn merge rule, the tool round trip, the refusals.
 * Answers: text, usage, every finish reason, tool calls, a blocked prompt,
 * embeddings as floats and base64 (decoded here). Streams: alt=sse events
 * fed whole and byte by byte (identical output), include_usage, tool calls,
 * errors in and instead of the stream, a body without a finish reason, and
 * hostile bytes (truncations and byte flips of valid answers) that must
 * never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloud/cloud.h"
#include "json.h"
#include "util.h"

#include <event2/buffer.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static cJSON *parse(const char *s)
{
    cJSON *j = cm_json_parse(s, strlen(s));
    assert_non_null(j);
    return j;
}

/* builds for endpoint ep and model name; the refusal in *why */
static int build_ep(rt_cloud_endpoint_t ep, const char *name, const char *req, rt_cloud_call_t *c,
                    rt_cloud_refusal_t *why)
{
    cJSON *r = parse(req);
    int rc = rt_cloud_build(RT_CLOUD_GOOGLE, ep, r, req, strlen(req), name, c, why);
    cJSON_Delete(r);
    if (rc == 0) {
        assert_non_null(c->path);
        assert_non_null(c->body);
        assert_int_equal(c->len, strlen(c->body));
    } else {
        assert_int_equal(why->status, 400);
        assert_true(why->message[0] != '\0');
    }
    return rc;
}

/* the translated request body of a chat request that must be accepted */
static cJSON *chat_body(const char *req, rt_cloud_call_t *c)
{
    rt_cloud_refusal_t why;
    int rc = build_ep(RT_CLOUD_CHAT, "gemini-x", req, c, &why);
    if (rc != 0)
        fail_msg("refused: %s", why.message);
    return parse(c->body);
}

/* a chat request that must be refused; the param it names */
static const char *refused(rt_cloud_endpoint_t ep, const char *name, const char *req)
{
    rt_cloud_call_t c;
    static rt_cloud_refusal_t why;
    if (build_ep(ep, name, req, &c, &why) == 0)
        fail_msg("accepted: %s -> %s", req, c.body);
    assert_null(c.body);
    assert_null(c.path);
    return why.param ? why.param : "";
}

/* deep equality of j[key] with the JSON text want (NULL: key absent) */
static void expect_json(const cJSON *j, const char *key, const char *want)
{
    const cJSON *got = key ? cJSON_GetObjectItemCaseSensitive(j, key) : j;
    if (!want) {
        if (got)
            fail_msg("%s: expected absent, got %s", key, cJSON_PrintUnformatted(got));
        return;
    }
    cJSON *w = parse(want);
    if (!got || !cJSON_Compare(got, w, true)) {
        char *g = got ? cJSON_PrintUnformatted(got) : cm_xstrdup("(absent)");
        fail_msg("%s: got %s, want %s", key ? key : "", g, want);
    }
    cJSON_Delete(w);
}

static const char *str_at(const cJSON *j, const char *path)
{
    /* "a.b.0.c": object keys and array indexes */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *cur = j;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && cur; k = strtok_r(NULL, ".", &save))
        cur = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(cur, atoi(k)) : cJSON_GetObjectItemCaseSensitive(cur, k);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

static const cJSON *at(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *cur = j;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && cur; k = strtok_r(NULL, ".", &save))
        cur = (*k >= '0' && *k <= '9') ? cJSON_GetArrayItem(cur, atoi(k)) : cJSON_GetObjectItemCaseSensitive(cur, k);
    return cur;
}

static double num_at(const cJSON *j, const char *path)
{
    const cJSON *n = at(j, path);
    if (!cJSON_IsNumber(n))
        fail_msg("%s is not a number", path);
    return n->valuedouble;
}

/* a chat call as the transport has it, for answers and streams */
static rt_cloud_call_t call_of(rt_cloud_endpoint_t ep, bool stream, bool include_usage)
{
    return (rt_cloud_call_t){ .provider = RT_CLOUD_GOOGLE, .endpoint = ep, .stream = stream,
                              .include_usage = include_usage };
}

/* the OpenAI answer for a Gemini body, parsed; NULL when refused (err set) */
static cJSON *answer_of(const rt_cloud_call_t *c, const char *body)
{
    char err[256] = "";
    size_t n = 0;
    char *s = rt_cloud_answer(c, body, strlen(body), "google:gemini-x", "chatcmpl-req42", 1700000000, &n, err,
                              sizeof(err));
    if (!s) {
        assert_true(err[0] != '\0');
        return NULL;
    }
    assert_int_equal(n, strlen(s));
    cJSON *j = cm_json_parse(s, n);
    if (!j)
        fail_msg("not JSON: %s", s);
    free(s);
    return j;
}

static cJSON *chat_answer(const char *body)
{
    rt_cloud_call_t c = call_of(RT_CLOUD_CHAT, false, false);
    return answer_of(&c, body);
}

/* ---- requests ---- */

static void test_request_fields(void **state)
{
    (void)state;
    rt_cloud_call_t c;
    cJSON *b = chat_body("{\"model\":\"google:gemini-x\",\"max_tokens\":50,\"temperature\":0.5,\"top_p\":0.9,"
                         "\"top_k\":20,\"stop\":[\"zzz\"],\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                         "{\"role\":\"user\",\"content\":\"hello there\"}]}",
                         &c);
    assert_string_equal(c.path, "/models/gemini-x:generateContent");
    expect_json(b, "systemInstruction", "{\"parts\":[{\"text\":\"Be brief.\"}]}");
    expect_json(b, "contents", "[{\"role\":\"user\",\"parts\":[{\"text\":\"hello there\"}]}]");
    expect_json(b, "generationConfig",
                "{\"temperature\":0.5,\"topP\":0.9,\"topK\":20,\"maxOutputTokens\":50,\"stopSequences\":[\"zzz\"]}");
    expect_json(b, "tools", NULL);
    expect_json(b, "toolConfig", NULL);
    expect_json(b, "model", NULL); /* the model is in the path */
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    /* nothing given: no generationConfig at all; a stream asks for SSE */
    b = chat_body("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &c);
    assert_string_equal(c.path, "/models/gemini-x:streamGenerateContent?alt=sse");
    assert_true(c.stream);
    expect_json(b, "generationConfig", NULL);
    expect_json(b, "systemInstruction", NULL);
    expect_json(b, NULL, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    /* the other generation settings */
    b = chat_body("{\"n\":2,\"presence_penalty\":0.25,\"frequency_penalty\":-0.5,\"seed\":7,"
                  "\"max_completion_tokens\":9,\"stop\":\"END\",\"response_format\":{\"type\":\"json_object\"},"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  &c);
    expect_json(b, "generationConfig",
                "{\"candidateCount\":2,\"presencePenalty\":0.25,\"frequencyPenalty\":-0.5,\"seed\":7,"
                "\"maxOutputTokens\":9,\"stopSequences\":[\"END\"],\"responseMimeType\":\"application/json\"}");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    b = chat_body("{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s\",\"schema\":"
                  "{\"type\":\"object\"}}},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  &c);
    expect_json(b, "generationConfig",
                "{\"responseMimeType\":\"application/json\",\"responseJsonSchema\":{\"type\":\"object\"}}");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    b = chat_body("{\"response_format\":{\"type\":\"text\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  &c);
    expect_json(b, "generationConfig", NULL);
    cJSON_Delete(b);
    rt_cloud_call_free(&c);
}

static void test_request_turns(void **state)
{
    (void)state;
    rt_cloud_call_t c;
    /* same-role turns merge; developer joins system; empty turns go */
    cJSON *b = chat_body(
        "{\"messages\":[{\"role\":\"developer\",\"content\":\"d1\"},{\"role\":\"user\",\"content\":\"first\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"second\"},{\"type\":\"text\",\"text\":\"\"}]},"
        "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"s2\"}]},"
        "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"assistant\",\"content\":null},"
        "{\"role\":\"assistant\",\"content\":\"a2\"},{\"role\":\"user\",\"content\":\"\"},"
        "{\"role\":\"user\",\"content\":\"third\"}]}",
        &c);
    expect_json(b, "systemInstruction", "{\"parts\":[{\"text\":\"d1\"},{\"text\":\"s2\"}]}");
    expect_json(b, "contents",
                "[{\"role\":\"user\",\"parts\":[{\"text\":\"first\"},{\"text\":\"second\"}]},"
                "{\"role\":\"model\",\"parts\":[{\"text\":\"a1\"},{\"text\":\"a2\"}]},"
                "{\"role\":\"user\",\"parts\":[{\"text\":\"third\"}]}]");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    /* images: a data URL inline, an https URL as a file */
    b = chat_body("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is this\"},"
                  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
                  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/a.jpg\"}}]}]}",
                  &c);
    expect_json(b, "contents",
                "[{\"role\":\"user\",\"parts\":[{\"text\":\"what is this\"},"
                "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
                "{\"fileData\":{\"fileUri\":\"https://example.com/a.jpg\"}}]}]");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    /* /v1/completions: the prompt is one user turn */
    rt_cloud_refusal_t why;
    assert_int_equal(build_ep(RT_CLOUD_COMPLETIONS, "gemini-x", "{\"prompt\":\"tell me\",\"max_tokens\":5}", &c, &why),
                     0);
    b = parse(c.body);
    expect_json(b, "contents", "[{\"role\":\"user\",\"parts\":[{\"text\":\"tell me\"}]}]");
    expect_json(b, "generationConfig", "{\"maxOutputTokens\":5}");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);
}

#define TOOLS                                                                                                        \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather of a city\"," \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}," \
    "{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}]"

static void test_request_tools(void **state)
{
    (void)state;
    rt_cloud_call_t c;
    static const struct {
        const char *choice, *config;
    } choices[] = {
        { "\"auto\"", "{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}" },
        { "\"none\"", "{\"functionCallingConfig\":{\"mode\":\"NONE\"}}" },
        { "\"required\"", "{\"functionCallingConfig\":{\"mode\":\"ANY\"}}" },
        { "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}",
          "{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"get_weather\"]}}" },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(choices); i++) {
        char req[2048];
        snprintf(req, sizeof(req), "{" TOOLS ",\"tool_choice\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 choices[i].choice);
        cJSON *b = chat_body(req, &c);
        expect_json(b, "tools",
                    "[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"description\":\"Weather of a city\","
                    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
                    "\"required\":[\"city\"]}},{\"name\":\"noargs\"}]}]");
        expect_json(b, "toolConfig", choices[i].config);
        cJSON_Delete(b);
        rt_cloud_call_free(&c);
    }

    /* the round trip: the assistant's calls as functionCall parts after its
     * text, each tool answer as a functionResponse named by its call's id */
    cJSON *b = chat_body(
        "{" TOOLS ",\"messages\":[{\"role\":\"user\",\"content\":\"call get_weather\"},"
        "{\"role\":\"assistant\",\"content\":\"let me see\",\"tool_calls\":["
        "{\"id\":\"call_0_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_1_a\",\"type\":\"function\",\"function\":{\"name\":\"noargs\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1_a\",\"content\":\"done\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_0_a\",\"content\":[{\"type\":\"text\",\"text\":\"18C\"}]},"
        "{\"role\":\"user\",\"content\":\"thanks\"}]}",
        &c);
    expect_json(b, "contents",
                "[{\"role\":\"user\",\"parts\":[{\"text\":\"call get_weather\"}]},"
                "{\"role\":\"model\",\"parts\":[{\"text\":\"let me see\"},"
                "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}},"
                "{\"functionCall\":{\"name\":\"noargs\",\"args\":{}}}]},"
                "{\"role\":\"user\",\"parts\":["
                "{\"functionResponse\":{\"name\":\"noargs\",\"response\":{\"content\":\"done\"}}},"
                "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"content\":\"18C\"}}},"
                "{\"text\":\"thanks\"}]}]");
    expect_json(b, "toolConfig", NULL);
    cJSON_Delete(b);
    rt_cloud_call_free(&c);
}

static void test_request_refusals(void **state)
{
    (void)state;
    const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    static const char *const names[] = { "a/b", "gemini?x=1", "a%2fb", "..", "a..b", "", "a b", "a:b", "a\\b",
                                         "é" };
    for (size_t i = 0; i < CM_ARRAY_LEN(names); i++) {
        assert_string_equal(refused(RT_CLOUD_CHAT, names[i], ok), "model");
        assert_string_equal(refused(RT_CLOUD_EMBEDDINGS, names[i], "{\"input\":\"x\"}"), "model");
    }
    char longname[130];
    memset(longname, 'a', 129);
    longname[129] = '\0';
    assert_string_equal(refused(RT_CLOUD_CHAT, longname, ok), "model");
    longname[128] = '\0'; /* 128 bytes is the limit, allowed */
    rt_cloud_call_t c;
    rt_cloud_refusal_t why;
    assert_int_equal(build_ep(RT_CLOUD_CHAT, longname, ok, &c, &why), 0);
    rt_cloud_call_free(&c);
    assert_int_equal(build_ep(RT_CLOUD_CHAT, "models-1.5_x", ok, &c, &why), 0);
    assert_string_equal(c.path, "/models/models-1.5_x:generateContent");
    rt_cloud_call_free(&c);

    static const char *const bad[] = {
        "{}",
        "{\"messages\":{}}",
        "{\"messages\":[]}",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"only a system prompt\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
        "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":7,\"content\":\"x\"}]}",
        "{\"messages\":[\"user\"]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":7}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":7}]}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x\"}}]}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[7]}]}",
        /* a tool answer for an unknown call, a call made later, no id */
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"r\"}]}",
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r\"},"
         "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}"),
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"content\":\"r\"}]}",
        "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}",
        "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
        "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]}]}",
        "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]}]}",
        /* settings of the wrong type */
        "{\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"stop\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"response_format\":{\"type\":\"xml\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"response_format\":\"json\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"stream\":true,\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        /* tools */
        "{\"tools\":{},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"tools\":[{\"type\":\"web_search\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"description\":\"d\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[]}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":1}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"tool_choice\":\"sometimes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"tool_choice\":{\"type\":\"function\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"tool_choice\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++)
        refused(RT_CLOUD_CHAT, "gemini-x", bad[i]);
    assert_string_equal(refused(RT_CLOUD_CHAT, "gemini-x", "{\"stream\":true,\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), "n");
    /* n > 1 is fine without a stream (one choice per candidate) */
    assert_int_equal(build_ep(RT_CLOUD_CHAT, "gemini-x", "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                              &c, &why),
                     0);
    rt_cloud_call_free(&c);
}

/* ---- answers ---- */

static void test_answer_text(void **state)
{
    (void)state;
    cJSON *a = chat_answer("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"thinking...\","
                           "\"thought\":true},{\"text\":\"echo: \"},{\"text\":\"hello there\"}]},\"finishReason\":\"STOP\","
                           "\"index\":0,\"safetyRatings\":[]}],\"usageMetadata\":{\"promptTokenCount\":3,"
                           "\"candidatesTokenCount\":3,\"totalTokenCount\":6,\"promptTokensDetails\":[]},"
                           "\"modelVersion\":\"gemini-x\",\"responseId\":\"r1\"}");
    assert_non_null(a);
    assert_string_equal(str_at(a, "id"), "chatcmpl-req42");
    assert_string_equal(str_at(a, "object"), "chat.completion");
    assert_string_equal(str_at(a, "model"), "google:gemini-x");
    assert_true(num_at(a, "created") == 1700000000);
    assert_int_equal(cJSON_GetArraySize(at(a, "choices")), 1);
    assert_string_equal(str_at(a, "choices.0.message.role"), "assistant");
    assert_string_equal(str_at(a, "choices.0.message.content"), "echo: hello there");
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "stop");
    assert_null(at(a, "choices.0.message.tool_calls"));
    expect_json(a, "usage", "{\"prompt_tokens\":3,\"completion_tokens\":3,\"total_tokens\":6}");
    cJSON_Delete(a);

    /* thoughts are output tokens; no usage at all is zeros */
    a = chat_answer("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"STOP\"}],"
                    "\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":10,"
                    "\"totalTokenCount\":16}}");
    expect_json(a, "usage", "{\"prompt_tokens\":4,\"completion_tokens\":12,\"total_tokens\":16}");
    cJSON_Delete(a);
    a = chat_answer("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}");
    expect_json(a, "usage", "{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}");
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "stop");
    cJSON_Delete(a);

    /* several candidates: one choice each */
    a = chat_answer("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"STOP\"},"
                    "{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"MAX_TOKENS\"}]}");
    assert_int_equal(cJSON_GetArraySize(at(a, "choices")), 2);
    assert_true(num_at(a, "choices.1.index") == 1);
    assert_string_equal(str_at(a, "choices.1.message.content"), "b");
    assert_string_equal(str_at(a, "choices.1.finish_reason"), "length");
    cJSON_Delete(a);

    /* /v1/completions: a text_completion */
    rt_cloud_call_t c = call_of(RT_CLOUD_COMPLETIONS, false, false);
    a = answer_of(&c, "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"echo: tell me\"}]},\"finishReason\":"
                      "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":2,\"candidatesTokenCount\":3,"
                      "\"totalTokenCount\":5}}");
    assert_string_equal(str_at(a, "object"), "text_completion");
    assert_string_equal(str_at(a, "choices.0.text"), "echo: tell me");
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "stop");
    cJSON_Delete(a);
}

static void test_answer_finish(void **state)
{
    (void)state;
    static const struct {
        const char *reason, *want;
    } t[] = { { "STOP", "stop" },
              { "MAX_TOKENS", "length" },
              { "SAFETY", "content_filter" },
              { "RECITATION", "content_filter" },
              { "BLOCKLIST", "content_filter" },
              { "PROHIBITED_CONTENT", "content_filter" },
              { "SPII", "content_filter" },
              { "IMAGE_SAFETY", "content_filter" },
              { "MALFORMED_FUNCTION_CALL", "stop" },
              { "FINISH_REASON_UNSPECIFIED", "stop" },
              { "OTHER", "stop" },
              { "A_REASON_FROM_THE_FUTURE", "stop" } };
    for (size_t i = 0; i < CM_ARRAY_LEN(t); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"%s\"}]}",
                 t[i].reason);
        cJSON *a = chat_answer(body);
        assert_non_null(a);
        if (strcmp(str_at(a, "choices.0.finish_reason"), t[i].want) != 0)
            fail_msg("%s -> %s, want %s", t[i].reason, str_at(a, "choices.0.finish_reason"), t[i].want);
        cJSON_Delete(a);
    }
    /* a safety stop without content (as Gemini sends it) */
    cJSON *a = chat_answer("{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,\"safetyRatings\":[]}],"
                           "\"usageMetadata\":{\"promptTokenCount\":3,\"totalTokenCount\":3}}");
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "content_filter");
    assert_string_equal(str_at(a, "choices.0.message.content"), "");
    expect_json(a, "usage", "{\"prompt_tokens\":3,\"completion_tokens\":0,\"total_tokens\":3}");
    cJSON_Delete(a);
    /* a blocked prompt: no candidates, a block reason */
    a = chat_answer("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":3}}");
    assert_non_null(a);
    assert_int_equal(cJSON_GetArraySize(at(a, "choices")), 1);
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "content_filter");
    assert_string_equal(str_at(a, "choices.0.message.content"), "");
    cJSON_Delete(a);
    a = chat_answer("{\"candidates\":[],\"promptFeedback\":{\"blockReason\":\"OTHER\"}}");
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "content_filter");
    cJSON_Delete(a);
}

static void test_answer_tool_calls(void **state)
{
    (void)state;
    cJSON *a = chat_answer("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
                           "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}},"
                           "{\"functionCall\":{\"name\":\"noargs\"}}]},\"finishReason\":\"STOP\"}],"
                           "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":1,\"totalTokenCount\":6}}");
    assert_non_null(a);
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "tool_calls");
    assert_true(cJSON_IsNull(at(a, "choices.0.message.content")));
    const cJSON *calls = at(a, "choices.0.message.tool_calls");
    assert_int_equal(cJSON_GetArraySize(calls), 2);
    assert_string_equal(str_at(calls, "0.id"), "call_0_req42");
    assert_string_equal(str_at(calls, "1.id"), "call_1_req42");
    assert_string_equal(str_at(calls, "0.type"), "function");
    assert_string_equal(str_at(calls, "0.function.name"), "get_weather");
    cJSON *args = parse(str_at(calls, "0.function.arguments"));
    expect_json(args, NULL, "{\"city\":\"Paris\"}");
    cJSON_Delete(args);
    assert_string_equal(str_at(calls, "1.function.arguments"), "{}");

    /* the answer goes back: the call's id finds its name */
    char req[2048];
    snprintf(req, sizeof(req),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":null,"
             "\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"%s\",\"arguments\":"
             "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"18C\"}]}",
             str_at(calls, "0.id"), str_at(calls, "0.function.name"), str_at(calls, "0.id"));
    rt_cloud_call_t c;
    cJSON *b = chat_body(req, &c);
    expect_json(b, "contents",
                "[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]},"
                "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}}]},"
                "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"get_weather\",\"response\":"
                "{\"content\":\"18C\"}}}]}]");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);
    cJSON_Delete(a);

    /* text and a call: both kept */
    a = chat_answer("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"sure\"},{\"functionCall\":{\"name\":\"f\","
                    "\"args\":{}}}]},\"finishReason\":\"STOP\"}]}");
    assert_string_equal(str_at(a, "choices.0.message.content"), "sure");
    assert_string_equal(str_at(a, "choices.0.finish_reason"), "tool_calls");
    cJSON_Delete(a);
}

static void test_answer_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"candidates\":[]}",
        "{\"candidates\":\"not-a-list\",\"usageMetadata\":3}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":3}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":{\"promptTokenCount\":\"3\"}}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":{\"promptTokenCount\":-1}}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":{\"candidatesTokenCount\":1.5}}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":{\"totalTokenCount\":1e300}}",
        "{\"candidates\":[7]}",
        "{\"candidates\":[{\"content\":\"text\"}]}",
        "{\"candidates\":[{\"content\":{\"parts\":{}}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[7]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":7}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":7}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"args\":{}}}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"\"}}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":[1]}}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":1}]}",
        "{\"promptFeedback\":{\"blockReason\":7}}",
        "{\"promptFeedback\":\"blocked\"}",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++) {
        cJSON *a = chat_answer(bad[i]);
        if (a)
            fail_msg("accepted %s -> %s", bad[i], cJSON_PrintUnformatted(a));
    }
}

/* ---- embeddings ---- */

static void test_embed_request(void **state)
{
    (void)state;
    rt_cloud_call_t c;
    rt_cloud_refusal_t why;
    assert_int_equal(build_ep(RT_CLOUD_EMBEDDINGS, "gemini-embedding-001", "{\"input\":\"alpha\"}", &c, &why), 0);
    assert_string_equal(c.path, "/models/gemini-embedding-001:embedContent");
    assert_int_equal(c.inputs, 1);
    assert_false(c.base64);
    cJSON *b = parse(c.body);
    expect_json(b, NULL, "{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"alpha\"}]}}");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    assert_int_equal(build_ep(RT_CLOUD_EMBEDDINGS, "gemini-embedding-001",
                              "{\"input\":[\"alpha\",\"beta\",\"gamma\"],\"dimensions\":256,\"encoding_format\":\"base64\"}",
                              &c, &why),
                     0);
    assert_string_equal(c.path, "/models/gemini-embedding-001:batchEmbedContents");
    assert_int_equal(c.inputs, 3);
    assert_true(c.base64);
    b = parse(c.body);
    expect_json(b, NULL,
                "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"alpha\"}]},"
                "\"outputDimensionality\":256},{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":"
                "[{\"text\":\"beta\"}]},\"outputDimensionality\":256},{\"model\":\"models/gemini-embedding-001\","
                "\"content\":{\"parts\":[{\"text\":\"gamma\"}]},\"outputDimensionality\":256}]}");
    cJSON_Delete(b);
    rt_cloud_call_free(&c);

    static const char *const bad[] = { "{}",
                                       "{\"input\":7}",
                                       "{\"input\":[]}",
                                       "{\"input\":[1,2,3]}",
                                       "{\"input\":[[1,2],[3]]}",
                                       "{\"input\":[\"a\",7]}",
                                       "{\"input\":{\"text\":\"a\"}}",
                                       "{\"input\":\"a\",\"dimensions\":\"8\"}",
                                       "{\"input\":\"a\",\"dimensions\":0}",
                                       "{\"input\":\"a\",\"dimensions\":1.5}" };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++)
        refused(RT_CLOUD_EMBEDDINGS, "gemini-embedding-001", bad[i]);
    assert_string_equal(refused(RT_CLOUD_EMBEDDINGS, "e", "{\"input\":[1,2,3]}"), "input");

    /* 2048 inputs at most */
    {
        size_t cap = 2049 * 4 + 64, n = 0;
        char *req = cm_xmalloc(cap);
        n += (size_t)snprintf(req + n, cap - n, "{\"input\":[");
        for (int i = 0; i < 2049; i++)
            n += (size_t)snprintf(req + n, cap - n, "%s\"x\"", i ? "," : "");
        snprintf(req + n, cap - n, "]}");
        assert_string_equal(refused(RT_CLOUD_EMBEDDINGS, "e", req), "input");
        char *last = strrchr(req, ',');
        strcpy(last, "]}"); /* 2048 */
        assert_int_equal(build_ep(RT_CLOUD_EMBEDDINGS, "e", req, &c, &why), 0);
        assert_int_equal(c.inputs, 2048);
        rt_cloud_call_free(&c);
        free(req);
    }
}

/* float32-exact values, as the fake sends them */
static const float VEC_A[] = { 0.5f, -0.25f, 0.1f, -0.99900001287460327f, 0.0f, 0.333f, 1e-7f, -1.0f };
static const float VEC_B[] = { 0.75f, 0.2f, -0.3f, 0.125f, 0.9f, -0.6f, 0.01f, 0.4f };

static void values_json(char *buf, size_t cap, const float *v, int n)
{
    size_t o = (size_t)snprintf(buf, cap, "{\"values\":[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%.17g", i ? "," : "", (double)v[i]);
    snprintf(buf + o, cap - o, "]}");
}

static void expect_vector(const cJSON *d, const float *want, int n, bool base64)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(d, "embedding");
    assert_string_equal(str_at(d, "object"), "embedding");
    if (!base64) {
        assert_true(cJSON_IsArray(e));
        assert_int_equal(cJSON_GetArraySize(e), n);
        for (int i = 0; i < n; i++)
            assert_true(cJSON_GetArrayItem(e, i)->valuedouble == (double)want[i]); /* exact */
        return;
    }
    assert_true(cJSON_IsString(e));
    unsigned char bin[64];
    size_t len = 0;
    assert_int_equal(sodium_base642bin(bin, sizeof(bin), e->valuestring, strlen(e->valuestring), NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(len, (size_t)n * 4);
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)bin[4 * i] | (uint32_t)bin[4 * i + 1] << 8 | (uint32_t)bin[4 * i + 2] << 16 |
                     (uint32_t)bin[4 * i + 3] << 24; /* little-endian */
        float f;
        memcpy(&f, &u, 4);
        assert_true(f == want[i]);
    }
}

static void test_embed_answer(void **state)
{
    (void)state;
    char a[512], b[512], body[1600];
    values_json(a, sizeof(a), VEC_A, 8);
    values_json(b, sizeof(b), VEC_B, 8);
    for (int base64 = 0; base64 < 2; base64++) {
        rt_cloud_call_t c = { .provider = RT_CLOUD_GOOGLE, .endpoint = RT_CLOUD_EMBEDDINGS, .inputs = 2,
                              .base64 = base64 };
        snprintf(body, sizeof(body), "{\"embeddings\":[%s,%s]}", a, b);
        cJSON *j = answer_of(&c, body);
        assert_non_null(j);
        assert_string_equal(str_at(j, "object"), "list");
        assert_string_equal(str_at(j, "model"), "google:gemini-x");
        expect_json(j, "usage", "{\"prompt_tokens\":0,\"total_tokens\":0}");
        assert_int_equal(cJSON_GetArraySize(at(j, "data")), 2);
        assert_true(num_at(j, "data.0.index") == 0);
        assert_true(num_at(j, "data.1.index") == 1);
        expect_vector(at(j, "data.0"), VEC_A, 8, base64);
        expect_vector(at(j, "data.1"), VEC_B, 8, base64);
        cJSON_Delete(j);

        c.inputs = 1;
        snprintf(body, sizeof(body), "{\"embedding\":%s}", a);
        j = answer_of(&c, body);
        assert_non_null(j);
        assert_int_equal(cJSON_GetArraySize(at(j, "data")), 1);
        expect_vector(at(j, "data.0"), VEC_A, 8, base64);
        cJSON_Delete(j);
    }

    /* counts that differ from the inputs, values that are not numbers */
    rt_cloud_call_t c = { .provider = RT_CLOUD_GOOGLE, .endpoint = RT_CLOUD_EMBEDDINGS, .inputs = 2 };
    snprintf(body, sizeof(body), "{\"embeddings\":[%s]}", a);
    assert_null(answer_of(&c, body));
    snprintf(body, sizeof(body), "{\"embeddings\":[%s,%s,%s]}", a, b, a);
    assert_null(answer_of(&c, body));
    static const char *const bad[] = { "{}",
                                       "{\"embeddings\":{}}",
                                       "{\"embeddings\":[{\"values\":[1]},{\"values\":[\"2\"]}]}",
                                       "{\"embeddings\":[{\"values\":[1]},{\"values\":[]}]}",
                                       "{\"embeddings\":[{\"values\":[1]},{\"values\":{}}]}",
                                       "{\"embeddings\":[{\"values\":[1]},7]}",
                                       "{\"embeddings\":[{\"values\":[1]},{\"values\":[1e999]}]}",
                                       "{\"embeddings\":[{\"values\":[1]},{\"values\":[null]}]}" };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++)
        assert_null(answer_of(&c, bad[i]));
    c.inputs = 1;
    assert_null(answer_of(&c, "{\"embedding\":[1,2]}"));
    c.base64 = true; /* 1e39 is a double but no float */
    assert_null(answer_of(&c, "{\"embedding\":{\"values\":[1e39]}}"));

    /* 65536 values per vector at most */
    size_t cap = 65537 * 2 + 64, o = 0;
    char *big = cm_xmalloc(cap);
    o += (size_t)snprintf(big, cap, "{\"embedding\":{\"values\":[");
    for (int i = 0; i < 65537; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s1", i ? "," : "");
    snprintf(big + o, cap - o, "]}}");
    assert_null(answer_of(&c, big));
    strcpy(strrchr(big, ','), "]}}");
    cJSON *j = answer_of(&c, big);
    assert_non_null(j);
    cJSON_Delete(j);
    free(big);
}

/* ---- streams ---- */

typedef struct {
    int rc;
    char *text; /* every byte written */
    cJSON *events; /* the JSON of each data: event, [DONE] excluded */
    bool done;     /* ended with data: [DONE] */
    rt_cloud_usage_t usage;
    char err[256];
} stream_out_t;

static void stream_out_free(stream_out_t *o)
{
    free(o->text);
    cJSON_Delete(o->events);
}

/* Feeds body to a Google stream of call, in pieces of `step` bytes (0: one
 * piece), then ends the body (unless the feed already ended it). */
static stream_out_t run_stream(const rt_cloud_call_t *call, const char *body, size_t step)
{
    stream_out_t o = { 0 };
    rt_cloud_stream_t *s = rt_cloud_stream_new(call, "google:gemini-x", "chatcmpl-req42", 1700000000);
    struct evbuffer *out = evbuffer_new();
    size_t n = strlen(body), off = 0;
    o.rc = RT_CLOUD_STREAM_MORE;
    while (off < n && o.rc == RT_CLOUD_STREAM_MORE) {
        size_t k = step && step < n - off ? step : n - off;
        o.rc = rt_cloud_stream_feed(s, body + off, k, out, o.err, sizeof(o.err));
        off += k;
    }
    if (o.rc == RT_CLOUD_STREAM_MORE)
        o.rc = rt_cloud_stream_end(s, out, o.err, sizeof(o.err));
    o.usage = rt_cloud_stream_usage(s);
    size_t len = evbuffer_get_length(out);
    o.text = cm_xmalloc(len + 1);
    evbuffer_remove(out, o.text, len);
    o.text[len] = '\0';
    evbuffer_free(out);
    rt_cloud_stream_free(s);

    /* every event is "data: <json>\n\n"; nothing may follow [DONE] */
    o.events = cJSON_CreateArray();
    for (char *p = o.text; *p;) {
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("not a data line at %s", p);
        char *end = strstr(p, "\n\n");
        assert_non_null(end);
        if (strncmp(p + 6, "[DONE]", 6) == 0 && end == p + 12) {
            o.done = true;
            assert_string_equal(end + 2, "");
            break;
        }
        cJSON *j = cm_json_parse(p + 6, (size_t)(end - p - 6));
        if (!j)
            fail_msg("not JSON: %.*s", (int)(end - p - 6), p + 6);
        cJSON_AddItemToArray(o.events, j);
        p = end + 2;
    }
    return o;
}

/* the text of every content delta joined */
static char *stream_text(const stream_out_t *o)
{
    size_t cap = strlen(o->text) + 1, n = 0;
    char *t = cm_xcalloc(1, cap);
    const cJSON *e;
    cJSON_ArrayForEach(e, o->events) {
        const char *c = str_at(e, "choices.0.delta.content");
        if (c) {
            memcpy(t + n, c, strlen(c));
            n += strlen(c);
        }
    }
    return t;
}

static const char *last_finish(const stream_out_t *o)
{
    const char *f = NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, o->events) {
        const char *x = str_at(e, "choices.0.finish_reason");
        if (x) {
            assert_null(f); /* one finish chunk */
            f = x;
        }
    }
    return f;
}

/* a Gemini alt=sse event with Gemini's own \r\n\r\n separator */
#define EV(json) "data: " json "\r\n\r\n"
#define TXT(t, fin, out)                                                                                             \
    EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"" t "\"}],\"role\":\"model\"}" fin ",\"index\":0}],"  \
       "\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":" out ",\"totalTokenCount\":4},"          \
       "\"modelVersion\":\"gemini-x\",\"responseId\":\"r1\"}")

static const char STREAM_TEXT[] = TXT("echo:", "", "1") TXT(" one", "", "2") TXT(" two", "", "3")
    EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" three\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
       "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":4,\"totalTokenCount\":8}}");

static void test_stream_text(void **state)
{
    (void)state;
    rt_cloud_call_t call = call_of(RT_CLOUD_CHAT, true, true);
    stream_out_t whole = run_stream(&call, STREAM_TEXT, 0), bytes = run_stream(&call, STREAM_TEXT, 1);
    assert_int_equal(whole.rc, RT_CLOUD_STREAM_DONE);
    assert_int_equal(bytes.rc, RT_CLOUD_STREAM_DONE);
    assert_string_equal(whole.text, bytes.text); /* cut anywhere, same chunks */
    assert_true(whole.done);
    int n = cJSON_GetArraySize(whole.events);
    assert_int_equal(n, 7); /* role, 4 texts, finish, usage */
    const cJSON *e;
    cJSON_ArrayForEach(e, whole.events) {
        assert_string_equal(str_at(e, "id"), "chatcmpl-req42");
        assert_string_equal(str_at(e, "object"), "chat.completion.chunk");
        assert_string_equal(str_at(e, "model"), "google:gemini-x");
    }
    const cJSON *first = cJSON_GetArrayItem(whole.events, 0);
    assert_string_equal(str_at(first, "choices.0.delta.role"), "assistant");
    char *t = stream_text(&whole);
    assert_string_equal(t, "echo: one two three");
    free(t);
    assert_string_equal(last_finish(&whole), "stop");
    /* include_usage: usage null on every chunk, then one with empty choices */
    const cJSON *u = cJSON_GetArrayItem(whole.events, n - 1);
    expect_json(u, "choices", "[]");
    expect_json(u, "usage", "{\"prompt_tokens\":4,\"completion_tokens\":4,\"total_tokens\":8}");
    for (int i = 0; i < n - 1; i++)
        assert_true(cJSON_IsNull(at(cJSON_GetArrayItem(whole.events, i), "usage")));
    assert_int_equal(whole.usage.prompt_tokens, 4);
    assert_int_equal(whole.usage.completion_tokens, 4);
    stream_out_free(&whole);
    stream_out_free(&bytes);

    /* without include_usage: no usage anywhere; the last event may lack its
     * blank line; \n\n separators work as well */
    call = call_of(RT_CLOUD_CHAT, true, false);
    stream_out_t o = run_stream(&call,
                                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n"
                                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":"
                                "\"MAX_TOKENS\"}]}",
                                0);
    assert_int_equal(o.rc, RT_CLOUD_STREAM_DONE);
    assert_null(strstr(o.text, "\"usage\""));
    t = stream_text(&o);
    assert_string_equal(t, "ab");
    free(t);
    assert_string_equal(last_finish(&o), "length");
    stream_out_free(&o);

    /* /v1/completions: text_completion chunks */
    call = call_of(RT_CLOUD_COMPLETIONS, true, false);
    o = run_stream(&call, STREAM_TEXT, 0);
    assert_int_equal(o.rc, RT_CLOUD_STREAM_DONE);
    assert_string_equal(str_at(cJSON_GetArrayItem(o.events, 0), "object"), "text_completion");
    assert_string_equal(str_at(cJSON_GetArrayItem(o.events, 0), "choices.0.text"), "echo:");
    stream_out_free(&o);
}

static void test_stream_finish_and_tools(void **state)
{
    (void)state;
    rt_cloud_call_t call = call_of(RT_CLOUD_CHAT, true, true);
    /* a function call arrives whole in one event */
    const char *tools = EV("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
                           "\"args\":{\"city\":\"Paris\"}}},{\"functionCall\":{\"name\":\"noargs\"}}],\"role\":\"model\"},"
                           "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":5,"
                           "\"candidatesTokenCount\":1,\"thoughtsTokenCount\":2,\"totalTokenCount\":8}}");
    stream_out_t o = run_stream(&call, tools, 0), b = run_stream(&call, tools, 1);
    assert_string_equal(o.text, b.text);
    assert_int_equal(o.rc, RT_CLOUD_STREAM_DONE);
    assert_string_equal(last_finish(&o), "tool_calls");
    const cJSON *c0 = NULL, *c1 = NULL, *e;
    cJSON_ArrayForEach(e, o.events) {
        const cJSON *tc = at(e, "choices.0.delta.tool_calls.0");
        if (tc && num_at(tc, "index") == 0)
            c0 = tc;
        else if (tc && num_at(tc, "index") == 1)
            c1 = tc;
    }
    assert_non_null(c0);
    assert_non_null(c1);
    assert_string_equal(str_at(c0, "id"), "call_0_req42");
    assert_string_equal(str_at(c1, "id"), "call_1_req42");
    assert_string_equal(str_at(c0, "type"), "function");
    assert_string_equal(str_at(c0, "function.name"), "get_weather");
    cJSON *args = parse(str_at(c0, "function.arguments"));
    expect_json(args, NULL, "{\"city\":\"Paris\"}");
    cJSON_Delete(args);
    assert_string_equal(str_at(c1, "function.arguments"), "{}");
    expect_json(cJSON_GetArrayItem(o.events, cJSON_GetArraySize(o.events) - 1), "usage",
                "{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}");
    stream_out_free(&o);
    stream_out_free(&b);

    /* finish reasons; the last one seen wins (old models repeat STOP) */
    static const struct {
        const char *reason, *want;
    } t[] = { { "STOP", "stop" },     { "MAX_TOKENS", "length" },     { "SAFETY", "content_filter" },
              { "SPII", "content_filter" }, { "MALFORMED_FUNCTION_CALL", "stop" }, { "NEW_THING", "stop" } };
    for (size_t i = 0; i < CM_ARRAY_LEN(t); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"STOP\"}]}")
                     EV("{\"candidates\":[{\"finishReason\":\"%s\"}]}"),
                 t[i].reason);
        o = run_stream(&call, body, 0);
        assert_int_equal(o.rc, RT_CLOUD_STREAM_DONE);
        assert_string_equal(last_finish(&o), t[i].want);
        stream_out_free(&o);
    }

    /* a blocked prompt: no candidates, a block reason; the role still comes */
    o = run_stream(&call, EV("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":3,"
                             "\"totalTokenCount\":3}}"),
                   0);
    assert_int_equal(o.rc, RT_CLOUD_STREAM_DONE);
    assert_string_equal(last_finish(&o), "content_filter");
    assert_string_equal(str_at(cJSON_GetArrayItem(o.events, 0), "choices.0.delta.role"), "assistant");
    expect_json(cJSON_GetArrayItem(o.events, cJSON_GetArraySize(o.events) - 1), "usage",
                "{\"prompt_tokens\":3,\"completion_tokens\":0,\"total_tokens\":3}");
    stream_out_free(&o);

    /* no finish reason before the body ended: cut short */
    o = run_stream(&call, TXT("a", "", "1") TXT("b", "", "2"), 0);
    assert_int_equal(o.rc, RT_CLOUD_STREAM_ERROR);
    assert_true(o.done);
    assert_true(o.err[0] != '\0');
    e = cJSON_GetArrayItem(o.events, cJSON_GetArraySize(o.events) - 1);
    assert_non_null(str_at(e, "error.message"));
    assert_null(last_finish(&o));
    stream_out_free(&o);
}

/* the stream's last event must be an OpenAI error with type and code */
static void expect_stream_error(const stream_out_t *o, const char *type, const char *code)
{
    assert_int_equal(o->rc, RT_CLOUD_STREAM_ERROR);
    assert_true(o->done);
    assert_true(o->err[0] != '\0');
    const cJSON *e = cJSON_GetArrayItem(o->events, cJSON_GetArraySize(o->events) - 1);
    assert_non_null(str_at(e, "error.message"));
    if (type)
        assert_string_equal(str_at(e, "error.type"), type);
    if (code)
        assert_string_equal(str_at(e, "error.code"), code);
}

static void test_stream_errors(void **state)
{
    (void)state;
    rt_cloud_call_t call = call_of(RT_CLOUD_CHAT, true, false);
    /* an error object mid-stream; bytes after it are ignored */
    const char *mid = TXT("a", "", "1") EV("{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
                                           "\"status\":\"UNAVAILABLE\"}}") TXT("b", ",\"finishReason\":\"STOP\"", "2");
    stream_out_t o = run_stream(&call, mid, 0), b = run_stream(&call, mid, 1);
    assert_string_equal(o.text, b.text);
    expect_stream_error(&o, "overloaded_error", "UNAVAILABLE");
    char *t = stream_text(&o);
    assert_string_equal(t, "a");
    free(t);
    assert_non_null(strstr(o.err, "overloaded"));
    stream_out_free(&o);
    stream_out_free(&b);

    o = run_stream(&call, EV("{\"error\":{\"message\":\"slow down\",\"status\":\"RESOURCE_EXHAUSTED\"}}"), 0);
    expect_stream_error(&o, "rate_limit_error", "RESOURCE_EXHAUSTED");
    stream_out_free(&o);
    o = run_stream(&call, EV("{\"error\":{\"code\":\"x\"}}"), 0);
    expect_stream_error(&o, "server_error", "upstream_error");
    stream_out_free(&o);

    /* a JSON error body after the 200 instead of SSE (multi-line, as Gemini) */
    const char *raw = "{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Quota exceeded\",\n"
                      "    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}\n";
    o = run_stream(&call, raw, 0);
    b = run_stream(&call, raw, 1);
    assert_string_equal(o.text, b.text);
    expect_stream_error(&o, "rate_limit_error", NULL);
    assert_non_null(strstr(o.err, "Quota exceeded"));
    stream_out_free(&o);
    stream_out_free(&b);

    /* bytes that are not Gemini's events */
    static const char *const bad[] = {
        EV("not json"),
        EV("[DONE]"),
        EV("[1,2]"),
        EV("{\"candidates\":\"not-a-list\",\"usageMetadata\":3}"),
        EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":3}"),
        EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":{\"promptTokenCount\":\"1\"}}"),
        EV("{\"candidates\":[7]}"),
        EV("{\"candidates\":[{\"content\":[]}]}"),
        EV("{\"candidates\":[{\"content\":{\"parts\":\"x\"}}]}"),
        EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":1}]}}]}"),
        EV("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":7}}]}}]}"),
        EV("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":\"{}\"}}]}}]}"),
        EV("{\"candidates\":[{\"finishReason\":[]}]}"),
        EV("{\"promptFeedback\":{\"blockReason\":false}}"),
        EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}") "data: {\"candidates\":[{\"content\":",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++) {
        o = run_stream(&call, bad[i], 0);
        expect_stream_error(&o, "server_error", NULL);
        stream_out_free(&o);
    }
    /* a text event in front of the bad one went out before the error */
    o = run_stream(&call, TXT("ok", "", "1") EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"},7]}}]}"), 0);
    expect_stream_error(&o, "server_error", "upstream_malformed");
    t = stream_text(&o);
    assert_string_equal(t, "ok"); /* the bad event's own good part was not sent */
    free(t);
    stream_out_free(&o);
}

static void test_stream_bounds(void **state)
{
    (void)state;
    rt_cloud_call_t call = call_of(RT_CLOUD_CHAT, true, false);
    /* 1025 function calls in one answer: more than RT_CLOUD_MAX_BLOCKS */
    for (int count = 1024; count <= 1025; count++) {
        size_t cap = (size_t)count * 40 + 256, n = 0;
        char *body = cm_xmalloc(cap);
        n += (size_t)snprintf(body, cap, "data: {\"candidates\":[{\"content\":{\"parts\":[");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(body + n, cap - n, "%s{\"functionCall\":{\"name\":\"f\"}}", i ? "," : "");
        snprintf(body + n, cap - n, "]},\"finishReason\":\"STOP\"}]}\n\n");
        stream_out_t o = run_stream(&call, body, 0);
        if (count == 1024) {
            assert_int_equal(o.rc, RT_CLOUD_STREAM_DONE);
            assert_string_equal(last_finish(&o), "tool_calls");
        } else {
            expect_stream_error(&o, "server_error", "upstream_malformed");
        }
        stream_out_free(&o);
        cJSON *a = chat_answer(body + 6);
        if (count == 1024) {
            assert_int_equal(cJSON_GetArraySize(at(a, "choices.0.message.tool_calls")), 1024);
            cJSON_Delete(a);
        } else {
            assert_null(a);
        }
        free(body);
    }
}

/* Truncations and byte flips of valid answers and streams: each must give
 * valid JSON or an error, never a crash (run under ASan for leaks). */
static void test_hostile(void **state)
{
    (void)state;
    const char *answer = "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hi\"},"
                         "{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":[1,{\"b\":null}]}}},{\"thought\":true,"
                         "\"text\":\"t\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1,"
                         "\"candidatesTokenCount\":2,\"totalTokenCount\":3},\"promptFeedback\":{\"blockReason\":\"X\"}}";
    const char *embed = "{\"embeddings\":[{\"values\":[0.5,-1,2e-3]},{\"values\":[1,2,3]}]}";
    size_t n = strlen(answer);
    char *buf = cm_xmalloc(n + 64);
    static const char flips[] = { '"', '{', '}', '[', ']', ':', ',', '1', '-', 'x', '\\', ' ' };
    rt_cloud_call_t chat = call_of(RT_CLOUD_CHAT, false, false), stream = call_of(RT_CLOUD_CHAT, true, true);
    rt_cloud_call_t emb = { .provider = RT_CLOUD_GOOGLE, .endpoint = RT_CLOUD_EMBEDDINGS, .inputs = 2, .base64 = true };
    int ok = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t f = 0; f <= CM_ARRAY_LEN(flips); f++) {
            memcpy(buf, answer, n + 1);
            if (f < CM_ARRAY_LEN(flips))
                buf[cut < n ? cut : 0] = flips[f];
            else
                buf[cut] = '\0'; /* a truncation */
            cJSON *a = answer_of(&chat, buf);
            ok += a != NULL;
            cJSON_Delete(a);
            char ev[1024];
            snprintf(ev, sizeof(ev), "data: %s\r\n\r\n", buf);
            stream_out_t o = run_stream(&stream, ev, cut % 7 + 1);
            assert_true(o.done); /* always ends cleanly for the client */
            assert_true(o.rc == RT_CLOUD_STREAM_DONE || o.rc == RT_CLOUD_STREAM_ERROR);
            stream_out_free(&o);
        }
    }
    assert_true(ok > 0); /* some flips keep it valid (a digit, a space) */
    n = strlen(embed);
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t f = 0; f < CM_ARRAY_LEN(flips); f++) {
            memcpy(buf, embed, n + 1);
            buf[cut < n ? cut : 0] = flips[f];
            cJSON *a = answer_of(&emb, buf);
            cJSON_Delete(a);
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_fields),  cmocka_unit_test(test_request_turns),
        cmocka_unit_test(test_request_tools),   cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_answer_text),     cmocka_unit_test(test_answer_finish),
        cmocka_unit_test(test_answer_tool_calls), cmocka_unit_test(test_answer_malformed),
        cmocka_unit_test(test_embed_request),   cmocka_unit_test(test_embed_answer),
        cmocka_unit_test(test_stream_text),     cmocka_unit_test(test_stream_finish_and_tools),
        cmocka_unit_test(test_stream_errors),   cmocka_unit_test(test_stream_bounds),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
