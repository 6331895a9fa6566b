/* test_cloud_anthropic: cloud/cloud_anthropic.c through the public API
 * (rt_cloud_build_opts, rt_cloud_answer, rt_cloud_stream_*). Requests:
 * system lifting, same-role merging, max_tokens default, stop and sampling
 * settings, images, tools and tool_choice, the tool_use / tool_result round
 * trip and refusals. Answers: text, tool calls, finish reasons, usage with
 * cache counts, malformed bodies. Streams: text and tool deltas fed whole
 * and byte by byte (same output), include_usage, ping and unknown events,
 * error events, a missing message_stop, and hostile events. Every output is
 * parsed back and checked field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloud/cloud.h"
#include "json.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

typedef struct {
    rt_cloud_call_t call;
    rt_cloud_refusal_t why;
    cJSON *body; /* the provider's request, parsed; NULL when refused */
    int rc;
} built_t;

static built_t build_ep(rt_cloud_endpoint_t ep, const char *req, const rt_cloud_build_opts_t *o)
{
    built_t b;
    memset(&b, 0, sizeof(b));
    cJSON *j = cm_json_parse(req, strlen(req));
    assert_non_null(j);
    b.rc = rt_cloud_build_opts(RT_CLOUD_ANTHROPIC, ep, j, req, strlen(req), "claude-x", o, &b.call, &b.why);
    cJSON_Delete(j);
    if (b.rc == 0) {
        assert_non_null(b.call.body);
        assert_int_equal(b.call.len, strlen(b.call.body));
        b.body = cm_json_parse(b.call.body, b.call.len);
        assert_non_null(b.body);
    }
    return b;
}

static built_t build(const char *req) { return build_ep(RT_CLOUD_CHAT, req, NULL); }

static void built_free(built_t *b)
{
    cJSON_Delete(b->body);
    rt_cloud_call_free(&b->call);
}

/* the JSON text of v, compact, for whole-value comparisons */
static void assert_json(const cJSON *v, const char *want)
{
    assert_non_null(v);
    char *got = cJSON_PrintUnformatted(v);
    cJSON *w = cm_json_parse(want, strlen(want));
    assert_non_null(w);
    char *wt = cJSON_PrintUnformatted(w);
    if (strcmp(got, wt) != 0)
        fail_msg("got  %s\nwant %s", got, wt);
    free(got);
    free(wt);
    cJSON_Delete(w);
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void assert_refused(const char *req, const char *param, const char *needle)
{
    built_t b = build(req);
    assert_int_equal(b.rc, -1);
    assert_int_equal(b.why.status, 400);
    assert_null(b.call.body);
    if (param) {
        assert_non_null(b.why.param);
        assert_string_equal(b.why.param, param);
    }
    if (needle && !strstr(b.why.message, needle))
        fail_msg("refusal '%s' does not name '%s'", b.why.message, needle);
    built_free(&b);
}

/* ---- requests ---- */

static void test_build_basic(void **state)
{
    (void)state;
    built_t b = build("{\"model\":\"anthropic:claude-x\",\"max_tokens\":50,\"temperature\":0.5,\"top_p\":0.9,"
                      "\"top_k\":20,\"stop\":[\"zzz\",\"  \"],\"user\":\"u-1\",\"logprobs\":true,"
                      "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                      "{\"role\":\"user\",\"content\":\"hello there\"}]}");
    assert_int_equal(b.rc, 0);
    assert_string_equal(b.call.path, "/v1/messages");
    assert_string_equal(get(b.body, "model")->valuestring, "claude-x");
    assert_string_equal(get(b.body, "system")->valuestring, "Be brief.");
    assert_json(get(b.body, "messages"), "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello there\"}]}]");
    assert_json(get(b.body, "max_tokens"), "50");
    assert_json(get(b.body, "temperature"), "0.5");
    assert_json(get(b.body, "top_p"), "0.9");
    assert_json(get(b.body, "top_k"), "20");
    assert_json(get(b.body, "stop_sequences"), "[\"zzz\"]");
    assert_json(get(b.body, "metadata"), "{\"user_id\":\"u-1\"}");
    assert_null(get(b.body, "stream"));
    assert_null(get(b.body, "logprobs")); /* fields Anthropic lacks are not sent */
    assert_null(get(b.body, "tools"));
    assert_null(get(b.body, "tool_choice"));
    built_free(&b);

    b = build("{\"stream\":true,\"stop\":\"END\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(b.rc, 0);
    assert_true(b.call.stream);
    assert_json(get(b.body, "stream"), "true");
    assert_json(get(b.body, "stop_sequences"), "[\"END\"]");
    assert_null(get(b.body, "system"));
    built_free(&b);
}

static void test_build_system_and_max_tokens(void **state)
{
    (void)state;
    built_t b = build("{\"messages\":[{\"role\":\"system\",\"content\":\"A\"},{\"role\":\"user\",\"content\":\"q\"},"
                      "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"B\"}]},"
                      "{\"role\":\"system\",\"content\":\"\"}]}");
    assert_int_equal(b.rc, 0);
    assert_string_equal(get(b.body, "system")->valuestring, "A\n\nB");
    assert_int_equal(cJSON_GetArraySize(get(b.body, "messages")), 1);
    assert_json(get(b.body, "max_tokens"), "4096"); /* NULL options: the default */
    built_free(&b);

    rt_cloud_build_opts_t o = { .anthropic_max_tokens = 333 };
    b = build_ep(RT_CLOUD_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &o);
    assert_json(get(b.body, "max_tokens"), "333");
    built_free(&b);
    o.anthropic_max_tokens = 0;
    b = build_ep(RT_CLOUD_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &o);
    assert_json(get(b.body, "max_tokens"), "4096");
    built_free(&b);
    o.anthropic_max_tokens = 333;
    b = build_ep(RT_CLOUD_CHAT, "{\"max_completion_tokens\":7,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &o);
    assert_json(get(b.body, "max_tokens"), "7");
    built_free(&b);
    assert_refused("{\"max_tokens\":\"9\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "max_tokens", NULL);
}

static void test_build_merge(void **state)
{
    (void)state;
    /* user, user, an empty assistant (dropped), user: one user turn; empty
     * text parts are not sent */
    built_t b = build("{\"messages\":[{\"role\":\"user\",\"content\":\"first\"},{\"role\":\"user\",\"content\":"
                      "[{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"second\"}]},"
                      "{\"role\":\"assistant\",\"content\":\"\"},{\"role\":\"user\",\"content\":\"third\"},"
                      "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"assistant\",\"content\":\"a2  \\n\"}]}");
    assert_int_equal(b.rc, 0);
    assert_json(get(b.body, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"first\"},"
                "{\"type\":\"text\",\"text\":\"second\"},{\"type\":\"text\",\"text\":\"third\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"a1\"},"
                "{\"type\":\"text\",\"text\":\"a2\"}]}]"); /* a final prefill loses its trailing whitespace */
    built_free(&b);

    /* a final assistant turn of whitespace only goes away */
    b = build("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\" \"}]}");
    assert_int_equal(b.rc, 0);
    assert_json(get(b.body, "messages"), "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"}]}]");
    built_free(&b);
}

static void test_build_images(void **state)
{
    (void)state;
    built_t b = build("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is this\"},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://e.x/a.jpg\"}}]}]}");
    assert_int_equal(b.rc, 0);
    assert_json(get(cJSON_GetArrayItem(get(b.body, "messages"), 0), "content"),
                "[{\"type\":\"text\",\"text\":\"what is this\"},"
                "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
                "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://e.x/a.jpg\"}}]");
    built_free(&b);
    assert_refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x\"}}]}]}",
                   "messages", NULL);
    assert_refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":{}}]}]}",
                   "messages", "input_audio");
    assert_refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":5}]}]}", "messages", NULL);
    assert_refused("{\"messages\":[{\"role\":\"user\",\"content\":7}]}", "messages", "messages[0].content");
}

#define TOOLS                                                                                                          \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather of a city\","  \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"  \
    "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]"
#define ASK "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

static void assert_choice(const char *extra, const char *want)
{
    char req[2048];
    snprintf(req, sizeof(req), "{" TOOLS ",%s" ASK "}", extra);
    built_t b = build(req);
    assert_int_equal(b.rc, 0);
    assert_json(get(b.body, "tool_choice"), want);
    built_free(&b);
}

static void test_build_tools(void **state)
{
    (void)state;
    built_t b = build("{" TOOLS "," ASK "}");
    assert_int_equal(b.rc, 0);
    assert_json(get(b.body, "tools"),
                "[{\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"input_schema\":{\"type\":\"object\","
                "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},"
                "{\"name\":\"now\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    assert_json(get(b.body, "tool_choice"), "{\"type\":\"auto\"}");
    built_free(&b);

    assert_choice("\"tool_choice\":\"auto\",", "{\"type\":\"auto\"}");
    assert_choice("\"tool_choice\":\"required\",", "{\"type\":\"any\"}");
    assert_choice("\"tool_choice\":\"none\",", "{\"type\":\"none\"}");
    assert_choice("\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},",
                  "{\"type\":\"tool\",\"name\":\"get_weather\"}");
    assert_choice("\"parallel_tool_calls\":false,", "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
    assert_choice("\"parallel_tool_calls\":false,\"tool_choice\":\"required\",",
                  "{\"type\":\"any\",\"disable_parallel_tool_use\":true}");
    assert_choice("\"parallel_tool_calls\":true,\"tool_choice\":\"required\",", "{\"type\":\"any\"}");
    assert_choice("\"parallel_tool_calls\":false,\"tool_choice\":\"none\",", "{\"type\":\"none\"}");

    /* tool_choice without tools: nothing to choose from, nothing sent */
    b = build("{\"tool_choice\":\"required\",\"tools\":[]," ASK "}");
    assert_int_equal(b.rc, 0);
    assert_null(get(b.body, "tools"));
    assert_null(get(b.body, "tool_choice"));
    built_free(&b);

    assert_refused("{\"tools\":{}," ASK "}", "tools", NULL);
    assert_refused("{\"tools\":[5]," ASK "}", "tools", "tools[0]");
    assert_refused("{\"tools\":[{\"type\":\"code_interpreter\"}]," ASK "}", "tools", NULL);
    assert_refused("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"\"}}]," ASK "}", "tools", NULL);
    assert_refused("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":[]}}]," ASK "}",
                   "tools", NULL);
    assert_refused("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"description\":1}}]," ASK "}",
                   "tools", NULL);
    assert_refused("{" TOOLS ",\"tool_choice\":\"sometimes\"," ASK "}", "tool_choice", NULL);
    assert_refused("{" TOOLS ",\"tool_choice\":{\"type\":\"function\"}," ASK "}", "tool_choice", NULL);
    assert_refused("{" TOOLS ",\"tool_choice\":3," ASK "}", "tool_choice", NULL);
    assert_refused("{" TOOLS ",\"parallel_tool_calls\":\"no\"," ASK "}", "parallel_tool_calls", NULL);
}

static void test_build_tool_round_trip(void **state)
{
    (void)state;
    built_t b = build("{" TOOLS ",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
                      "{\"role\":\"assistant\",\"content\":\"I'll call get_weather.\",\"tool_calls\":["
                      "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
                      "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"\"}}]},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"18C\"},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"noon\"}]},"
                      "{\"role\":\"user\",\"content\":\"thanks\"}]}");
    assert_int_equal(b.rc, 0);
    assert_json(get(b.body, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"I'll call get_weather.\"},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"now\",\"input\":{}}]},"
                "{\"role\":\"user\",\"content\":["
                "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":[{\"type\":\"text\",\"text\":\"18C\"}]},"
                "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"noon\"}]},"
                "{\"type\":\"text\",\"text\":\"thanks\"}]}]");
    built_free(&b);

    /* an assistant turn of tool calls only (content null) */
    b = build("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":null,"
              "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
              "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"\"}]}");
    assert_int_equal(b.rc, 0);
    assert_json(get(cJSON_GetArrayItem(get(b.body, "messages"), 1), "content"),
                "[{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":\"f\",\"input\":{}}]");
    assert_json(get(cJSON_GetArrayItem(get(b.body, "messages"), 2), "content"),
                "[{\"type\":\"tool_result\",\"tool_use_id\":\"c1\",\"content\":[]}]");
    built_free(&b);

    assert_refused("{\"messages\":[{\"role\":\"tool\",\"content\":\"18C\"}]}", "messages", "tool_call_id");
    assert_refused("{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":5,\"content\":\"18C\"}]}", "messages", NULL);
    assert_refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}", "messages", "tool_calls");
    assert_refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":"
                   "{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                   "messages", NULL);
    assert_refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]}]}",
                   "messages", NULL);
}

static void test_build_refusals(void **state)
{
    (void)state;
    assert_refused("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"function\",\"content\":\"x\"}]}",
                   "messages", "messages[1].role");
    assert_refused("{\"n\":2," ASK "}", "n", "n > 1 is not supported for anthropic");
    assert_refused("{\"n\":\"2\"," ASK "}", "n", NULL);
    assert_refused("{\"messages\":[{\"role\":\"system\",\"content\":\"only me\"}]}", "messages", NULL);
    assert_refused("{\"messages\":[]}", "messages", NULL);
    assert_refused("{\"messages\":{}}", "messages", NULL);
    assert_refused("{}", "messages", NULL);
    assert_refused("{\"messages\":[5]}", "messages", "messages[0]");
    assert_refused("{\"messages\":[{\"role\":1,\"content\":\"x\"}]}", "messages", NULL);
    assert_refused("{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\"}]},"
                   "{\"role\":\"user\",\"content\":\"q\"}]}",
                   "messages", NULL);
    assert_refused("{\"temperature\":\"hot\"," ASK "}", "temperature", NULL);
    assert_refused("{\"stop\":[1]," ASK "}", "stop", NULL);
    assert_refused("{\"user\":42," ASK "}", "user", NULL);

    built_t b = build("{\"n\":1," ASK "}");
    assert_int_equal(b.rc, 0);
    built_free(&b);
}

static void test_build_completions(void **state)
{
    (void)state;
    built_t b = build_ep(RT_CLOUD_COMPLETIONS, "{\"prompt\":\"tell me\",\"max_tokens\":5,\"stream\":true}", NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.call.endpoint, RT_CLOUD_COMPLETIONS);
    assert_json(get(b.body, "messages"), "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"tell me\"}]}]");
    assert_json(get(b.body, "max_tokens"), "5");
    assert_json(get(b.body, "stream"), "true");
    built_free(&b);
}

/* ---- answers ---- */

static rt_cloud_call_t chat_call(rt_cloud_endpoint_t ep, bool stream, bool include_usage)
{
    return (rt_cloud_call_t){ .provider = RT_CLOUD_ANTHROPIC, .endpoint = ep, .stream = stream,
                              .include_usage = include_usage };
}

/* the OpenAI answer for an Anthropic body, parsed; NULL (err set) when refused */
static cJSON *answer_ep(rt_cloud_endpoint_t ep, const char *body, char *err, size_t errlen)
{
    rt_cloud_call_t c = chat_call(ep, false, false);
    size_t n = 0;
    err[0] = '\0';
    char *s = rt_cloud_answer(&c, body, strlen(body), "anthropic:claude-x", "chatcmpl-r1", 1700000000, &n, err, errlen);
    if (!s) {
        assert_true(err[0] != '\0');
        return NULL;
    }
    assert_int_equal(n, strlen(s));
    cJSON *j = cm_json_parse(s, n);
    assert_non_null(j);
    free(s);
    return j;
}

static cJSON *answer(const char *body)
{
    char err[256];
    cJSON *j = answer_ep(RT_CLOUD_CHAT, body, err, sizeof(err));
    if (!j)
        fail_msg("answer refused: %s", err);
    return j;
}

static void test_finish_map(void **state)
{
    (void)state;
    static const char *const t[][2] = { { "end_turn", "stop" },       { "stop_sequence", "stop" },
                                        { "max_tokens", "length" },   { "tool_use", "tool_calls" },
                                        { "refusal", "content_filter" }, { "pause_turn", "stop" },
                                        { "something_new", "stop" } };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
                 "\"text\":\"x\"}],\"stop_reason\":\"%s\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
                 t[i][0]);
        cJSON *j = answer(body);
        assert_string_equal(get(cJSON_GetArrayItem(get(j, "choices"), 0), "finish_reason")->valuestring, t[i][1]);
        cJSON_Delete(j);
    }
    /* stop_reason null or absent: stop */
    cJSON *j = answer("{\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}");
    assert_string_equal(get(cJSON_GetArrayItem(get(j, "choices"), 0), "finish_reason")->valuestring, "stop");
    cJSON_Delete(j);
}

static void test_answer_text(void **state)
{
    (void)state;
    cJSON *j = answer("{\"id\":\"msg_019Q\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x-2025\","
                      "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"s\"},"
                      "{\"type\":\"text\",\"text\":\"echo: \"},{\"type\":\"text\",\"text\":\"hello there\"}],"
                      "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,"
                      "\"output_tokens\":4,\"cache_creation_input_tokens\":2,\"cache_read_input_tokens\":3,"
                      "\"service_tier\":\"standard\"}}");
    assert_string_equal(get(j, "id")->valuestring, "chatcmpl-r1");
    assert_string_equal(get(j, "object")->valuestring, "chat.completion");
    assert_string_equal(get(j, "model")->valuestring, "anthropic:claude-x");
    assert_json(get(j, "created"), "1700000000");
    assert_int_equal(cJSON_GetArraySize(get(j, "choices")), 1);
    const cJSON *c = cJSON_GetArrayItem(get(j, "choices"), 0);
    assert_json(get(c, "index"), "0");
    assert_string_equal(get(c, "finish_reason")->valuestring, "stop");
    const cJSON *m = get(c, "message");
    assert_string_equal(get(m, "role")->valuestring, "assistant");
    assert_string_equal(get(m, "content")->valuestring, "echo: hello there");
    assert_null(get(m, "tool_calls"));
    /* prompt = input + cache creation + cache read */
    assert_json(get(j, "usage"), "{\"prompt_tokens\":15,\"completion_tokens\":4,\"total_tokens\":19}");
    cJSON_Delete(j);

    /* /v1/completions: a text_completion */
    char err[256];
    j = answer_ep(RT_CLOUD_COMPLETIONS,
                  "{\"content\":[{\"type\":\"text\",\"text\":\"echo: tell me\"}],\"stop_reason\":\"max_tokens\","
                  "\"usage\":{\"input_tokens\":2,\"output_tokens\":3}}",
                  err, sizeof(err));
    assert_non_null(j);
    assert_string_equal(get(j, "object")->valuestring, "text_completion");
    c = cJSON_GetArrayItem(get(j, "choices"), 0);
    assert_string_equal(get(c, "text")->valuestring, "echo: tell me");
    assert_string_equal(get(c, "finish_reason")->valuestring, "length");
    assert_json(get(j, "usage"), "{\"prompt_tokens\":2,\"completion_tokens\":3,\"total_tokens\":5}");
    cJSON_Delete(j);
}

static void test_answer_tools(void **state)
{
    (void)state;
    cJSON *j = answer("{\"id\":\"msg_2\",\"content\":[{\"type\":\"text\",\"text\":\"I'll call get_weather.\"},"
                      "{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
                      "{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"now\",\"input\":{}}],"
                      "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}");
    const cJSON *c = cJSON_GetArrayItem(get(j, "choices"), 0);
    assert_string_equal(get(c, "finish_reason")->valuestring, "tool_calls");
    const cJSON *m = get(c, "message");
    assert_string_equal(get(m, "content")->valuestring, "I'll call get_weather.");
    const cJSON *calls = get(m, "tool_calls");
    assert_int_equal(cJSON_GetArraySize(calls), 2);
    const cJSON *t0 = cJSON_GetArrayItem(calls, 0), *t1 = cJSON_GetArrayItem(calls, 1);
    assert_string_equal(get(t0, "id")->valuestring, "toolu_01");
    assert_string_equal(get(t0, "type")->valuestring, "function");
    assert_string_equal(get(get(t0, "function"), "name")->valuestring, "get_weather");
    const char *args = get(get(t0, "function"), "arguments")->valuestring;
    cJSON *a = cm_json_parse(args, strlen(args));
    assert_json(a, "{\"city\":\"Paris\"}");
    cJSON_Delete(a);
    assert_string_equal(get(get(t1, "function"), "arguments")->valuestring, "{}");
    cJSON_Delete(j);

    /* only a tool call: content null */
    j = answer("{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{\"a\":[1,2]}}],"
               "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}");
    m = get(cJSON_GetArrayItem(get(j, "choices"), 0), "message");
    assert_true(cJSON_IsNull(get(m, "content")));
    assert_string_equal(get(get(cJSON_GetArrayItem(get(m, "tool_calls"), 0), "function"), "arguments")->valuestring,
                        "{\"a\":[1,2]}");
    cJSON_Delete(j);
}

static void test_answer_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"type\":\"message\",\"content\":\"not-a-list\",\"usage\":5}",
        "{\"content\":[]}",
        "{\"content\":[],\"usage\":[]}",
        "{\"content\":[],\"usage\":{\"output_tokens\":1}}",
        "{\"content\":[],\"usage\":{\"input_tokens\":\"3\",\"output_tokens\":1}}",
        "{\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":-1}}",
        "{\"content\":[],\"usage\":{\"input_tokens\":3.5,\"output_tokens\":1}}",
        "{\"content\":[],\"usage\":{\"input_tokens\":1e300,\"output_tokens\":1}}",
        "{\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1,\"cache_read_input_tokens\":\"x\"}}",
        "{\"content\":[5],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
        "{\"content\":[{\"type\":7}],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
        "{\"content\":[{\"type\":\"text\",\"text\":5}],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
        "{\"content\":[{\"type\":\"text\"}],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
        "{\"content\":[{\"type\":\"tool_use\",\"name\":\"f\",\"input\":{}}],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
        ("{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":[1]}],\"usage\":{\"input_tokens\":3,"
         "\"output_tokens\":1}}"),
        "{\"content\":[],\"stop_reason\":3,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256];
        cJSON *j = answer_ep(RT_CLOUD_CHAT, bad[i], err, sizeof(err));
        if (j)
            fail_msg("malformed answer %zu taken: %s", i, bad[i]);
    }
    char err[256];
    assert_null(answer_ep(RT_CLOUD_CHAT, "{\"content\":{},\"usage\":{}}", err, sizeof(err)));
    assert_non_null(strstr(err, "content"));
}

/* ---- streams ---- */

#define EV(name, data) "event: " name "\ndata: " data "\n\n"

/* the SDK's recorded tool_use stream (wire-formats.md 1.4) */
static const char TOOL_STREAM[] =
    EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_019Q\",\"type\":\"message\",\"role\":\"assistant\","
                        "\"model\":\"claude-sonnet-4\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":"
                        "{\"input_tokens\":377,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
                        "\"output_tokens\":1,\"service_tier\":\"standard\"}}}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
    EV("ping", "{\"type\": \"ping\"}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                              "\"text\":\"I'll check the weather in \\\"Paris\\\"\\n\"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                              "\"text\":\"for you.\"}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
                              "\"id\":\"toolu_01NR\",\"name\":\"get_weather\",\"caller\":{\"type\":\"direct\"},\"input\":{}}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
                              "\"partial_json\":\"\"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
                              "\"partial_json\":\"{\\\"locati\"}}")
    EV("some_future_event", "{\"type\":\"some_future_event\",\"x\":[1,2]}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
                              "\"partial_json\":\"on\\\": \\\"Paris\\\"}\"}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
                              "\"id\":\"toolu_02\",\"name\":\"now\",\"input\":{}}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}")
    EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
                        "\"usage\":{\"output_tokens\":65}}")
    EV("message_stop", "{\"type\":\"message_stop\"}");

typedef struct {
    char *out; /* everything written to the client */
    int rc;    /* the last state returned */
    char err[256];
    rt_cloud_usage_t usage;
    bool started;
} streamed_t;

/* Feeds data in pieces of step bytes (0: at once); end: then calls
 * rt_cloud_stream_end. */
static streamed_t run_stream(rt_cloud_endpoint_t ep, bool include_usage, const char *data, size_t len, size_t step,
                             bool end)
{
    streamed_t r;
    memset(&r, 0, sizeof(r));
    rt_cloud_call_t c = chat_call(ep, true, include_usage);
    rt_cloud_stream_t *s = rt_cloud_stream_new(&c, "anthropic:claude-x", "chatcmpl-s1", 1700000001);
    struct evbuffer *out = evbuffer_new();
    if (!step)
        step = len ? len : 1;
    r.rc = RT_CLOUD_STREAM_MORE;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        int rc = rt_cloud_stream_feed(s, data + i, n, out, r.err, sizeof(r.err));
        if (r.rc != RT_CLOUD_STREAM_MORE)
            assert_int_equal(rc, r.rc); /* sticky */
        r.rc = rc;
    }
    if (end)
        r.rc = rt_cloud_stream_end(s, out, r.err, sizeof(r.err));
    r.usage = rt_cloud_stream_usage(s);
    r.started = rt_cloud_stream_started(s);
    size_t n = evbuffer_get_length(out);
    r.out = malloc(n + 1);
    evbuffer_remove(out, r.out, n);
    r.out[n] = '\0';
    evbuffer_free(out);
    rt_cloud_stream_free(s);
    return r;
}

/* The events written: each "data: X\n\n"; the last must be [DONE] (not
 * in the array). Every other payload is a JSON object. */
static cJSON *events_of(const char *out)
{
    cJSON *list = cJSON_CreateArray();
    const char *p = out;
    bool done = false;
    while (*p) {
        assert_false(done); /* nothing after [DONE] */
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        p += 6;
        const char *e = strstr(p, "\n\n");
        assert_non_null(e);
        if ((size_t)(e - p) == 6 && memcmp(p, "[DONE]", 6) == 0) {
            done = true;
        } else {
            cJSON *j = cm_json_parse(p, (size_t)(e - p));
            if (!cJSON_IsObject(j))
                fail_msg("not a JSON event: %.*s", (int)(e - p), p);
            cJSON_AddItemToArray(list, j);
        }
        p = e + 2;
    }
    assert_true(done);
    return list;
}

/* What a client assembles from the chunks (the openai SDK's way). */
typedef struct {
    char text[1024];
    char args[4][256];
    char ids[4][64], names[4][64];
    int ntools;
    const char *finish;
    int chunks;
} assembled_t;

static void assemble(const cJSON *evs, assembled_t *a, bool include_usage)
{
    memset(a, 0, sizeof(*a));
    const cJSON *ev;
    cJSON_ArrayForEach(ev, evs) {
        if (get(ev, "error"))
            continue;
        assert_string_equal(get(ev, "id")->valuestring, "chatcmpl-s1");
        assert_string_equal(get(ev, "object")->valuestring, "chat.completion.chunk");
        assert_string_equal(get(ev, "model")->valuestring, "anthropic:claude-x");
        assert_json(get(ev, "created"), "1700000001");
        const cJSON *ch = get(ev, "choices");
        assert_true(cJSON_IsArray(ch));
        if (include_usage && cJSON_GetArraySize(ch) > 0)
            assert_true(cJSON_IsNull(get(ev, "usage")));
        if (!include_usage)
            assert_null(get(ev, "usage"));
        const cJSON *c = cJSON_GetArrayItem(ch, 0);
        if (!c)
            continue;
        if (a->chunks++ == 0)
            assert_string_equal(get(get(c, "delta"), "role")->valuestring, "assistant");
        const cJSON *d = get(c, "delta");
        const cJSON *f = get(c, "finish_reason");
        if (cJSON_IsString(f)) {
            assert_null(a->finish); /* one finish chunk */
            a->finish = f->valuestring;
        }
        if (cJSON_IsString(get(d, "content")))
            strncat(a->text, get(d, "content")->valuestring, sizeof(a->text) - strlen(a->text) - 1);
        const cJSON *tc;
        cJSON_ArrayForEach(tc, get(d, "tool_calls")) {
            int i = get(tc, "index")->valueint;
            assert_true(i >= 0 && i < 4);
            if (get(tc, "id")) {
                assert_int_equal(i, a->ntools); /* tools numbered from 0 in order */
                a->ntools++;
                snprintf(a->ids[i], sizeof(a->ids[i]), "%s", get(tc, "id")->valuestring);
                snprintf(a->names[i], sizeof(a->names[i]), "%s", get(get(tc, "function"), "name")->valuestring);
            }
            strncat(a->args[i], get(get(tc, "function"), "arguments")->valuestring,
                    sizeof(a->args[i]) - strlen(a->args[i]) - 1);
        }
    }
}

static void test_stream_text_and_tools(void **state)
{
    (void)state;
    size_t len = strlen(TOOL_STREAM);
    streamed_t whole = run_stream(RT_CLOUD_CHAT, false, TOOL_STREAM, len, 0, false);
    streamed_t bytes = run_stream(RT_CLOUD_CHAT, false, TOOL_STREAM, len, 1, false);
    streamed_t odd = run_stream(RT_CLOUD_CHAT, false, TOOL_STREAM, len, 7, false);
    assert_int_equal(whole.rc, RT_CLOUD_STREAM_DONE);
    assert_int_equal(bytes.rc, RT_CLOUD_STREAM_DONE);
    assert_string_equal(whole.out, bytes.out);
    assert_string_equal(whole.out, odd.out);
    assert_true(whole.started);
    assert_null(strstr(whole.out, "event:"));
    assert_int_equal(whole.usage.prompt_tokens, 377);
    assert_int_equal(whole.usage.completion_tokens, 65);

    cJSON *evs = events_of(whole.out);
    assembled_t a;
    assemble(evs, &a, false);
    assert_string_equal(a.text, "I'll check the weather in \"Paris\"\nfor you.");
    assert_int_equal(a.ntools, 2);
    assert_string_equal(a.ids[0], "toolu_01NR");
    assert_string_equal(a.names[0], "get_weather");
    cJSON *args = cm_json_parse(a.args[0], strlen(a.args[0]));
    assert_json(args, "{\"location\":\"Paris\"}");
    cJSON_Delete(args);
    assert_string_equal(a.ids[1], "toolu_02");
    assert_string_equal(a.args[1], "{}"); /* no argument bytes: "{}" so clients can parse it */
    assert_non_null(a.finish);
    assert_string_equal(a.finish, "tool_calls");
    /* the finish chunk is the last event */
    const cJSON *last = cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1);
    assert_string_equal(get(cJSON_GetArrayItem(get(last, "choices"), 0), "finish_reason")->valuestring, "tool_calls");
    cJSON_Delete(evs);

    /* end after DONE: the same state, nothing written */
    streamed_t again = run_stream(RT_CLOUD_CHAT, false, TOOL_STREAM, len, 0, true);
    assert_int_equal(again.rc, RT_CLOUD_STREAM_DONE);
    assert_string_equal(again.out, whole.out);
    free(whole.out);
    free(bytes.out);
    free(odd.out);
    free(again.out);
}

#define TEXT_STREAM(stop_reason)                                                                                       \
    EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":5,"         \
                        "\"cache_read_input_tokens\":2,\"output_tokens\":1}}}")                                         \
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","   \
                              "\"text\":\"echo:\"}}")                                                                   \
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","     \
                              "\"text\":\" one two\"}}")                                                                \
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")                                          \
    EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" stop_reason "\"},"                \
                        "\"usage\":{\"output_tokens\":3}}")

static void test_stream_include_usage(void **state)
{
    (void)state;
    const char *data = TEXT_STREAM("end_turn") EV("message_stop", "{\"type\":\"message_stop\"}");
    streamed_t r = run_stream(RT_CLOUD_CHAT, true, data, strlen(data), 0, false);
    assert_int_equal(r.rc, RT_CLOUD_STREAM_DONE);
    cJSON *evs = events_of(r.out);
    assembled_t a;
    assemble(evs, &a, true);
    assert_string_equal(a.text, "echo: one two");
    assert_string_equal(a.finish, "stop");
    const cJSON *last = cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1);
    assert_json(get(last, "choices"), "[]");
    /* prompt = input + cache read; completion from message_delta */
    assert_json(get(last, "usage"), "{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}");
    cJSON_Delete(evs);
    free(r.out);

    /* max_tokens -> length, refusal -> content_filter, no usage chunk */
    const char *len = TEXT_STREAM("max_tokens") EV("message_stop", "{\"type\":\"message_stop\"}");
    r = run_stream(RT_CLOUD_CHAT, false, len, strlen(len), 3, false);
    evs = events_of(r.out);
    assemble(evs, &a, false);
    assert_string_equal(a.finish, "length");
    assert_null(strstr(r.out, "\"usage\""));
    cJSON_Delete(evs);
    free(r.out);
    const char *ref = TEXT_STREAM("refusal") EV("message_stop", "{\"type\":\"message_stop\"}");
    r = run_stream(RT_CLOUD_CHAT, false, ref, strlen(ref), 0, false);
    evs = events_of(r.out);
    assemble(evs, &a, false);
    assert_string_equal(a.finish, "content_filter");
    cJSON_Delete(evs);
    free(r.out);
}

static void test_stream_completions(void **state)
{
    (void)state;
    const char *data = TEXT_STREAM("end_turn") EV("message_stop", "{\"type\":\"message_stop\"}");
    streamed_t r = run_stream(RT_CLOUD_COMPLETIONS, false, data, strlen(data), 0, false);
    assert_int_equal(r.rc, RT_CLOUD_STREAM_DONE);
    cJSON *evs = events_of(r.out);
    char text[128] = "";
    const char *finish = NULL;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, evs) {
        assert_string_equal(get(ev, "object")->valuestring, "text_completion");
        const cJSON *c = cJSON_GetArrayItem(get(ev, "choices"), 0);
        strncat(text, get(c, "text")->valuestring, sizeof(text) - strlen(text) - 1);
        if (cJSON_IsString(get(c, "finish_reason")))
            finish = get(c, "finish_reason")->valuestring;
    }
    assert_string_equal(text, "echo: one two");
    assert_non_null(finish);
    assert_string_equal(finish, "stop");
    cJSON_Delete(evs);
    free(r.out);
}

/* the error event the client got: {"error":{message,type,code}} second to
 * last, then [DONE] */
static void assert_stream_error(const streamed_t *r, const char *type, const char *code)
{
    assert_int_equal(r->rc, RT_CLOUD_STREAM_ERROR);
    assert_true(r->err[0] != '\0');
    cJSON *evs = events_of(r->out);
    const cJSON *last = cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1);
    const cJSON *e = get(last, "error");
    if (!cJSON_IsObject(e))
        fail_msg("no error event at the end: %s", r->out);
    assert_true(cJSON_IsString(get(e, "message")));
    assert_string_equal(get(e, "type")->valuestring, type);
    assert_string_equal(get(e, "code")->valuestring, code);
    /* no finish chunk: the answer did not end */
    const cJSON *ev;
    cJSON_ArrayForEach(ev, evs) {
        const cJSON *c = cJSON_GetArrayItem(get(ev, "choices"), 0);
        if (c)
            assert_true(cJSON_IsNull(get(c, "finish_reason")));
    }
    cJSON_Delete(evs);
}

static void test_stream_error_event(void **state)
{
    (void)state;
    const char *data = EV("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,"
                                           "\"output_tokens\":1}}}")
        EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}")
        EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                                  "\"text\":\"partial\"}}")
        EV("error", "{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}")
        EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                                  "\"text\":\"after\"}}");
    streamed_t r = run_stream(RT_CLOUD_CHAT, true, data, strlen(data), 1, true);
    assert_stream_error(&r, "overloaded_error", "overloaded_error");
    assert_string_equal(r.err, "Overloaded");
    assert_non_null(strstr(r.out, "partial"));
    assert_null(strstr(r.out, "after")); /* sticky: nothing after the error */
    assert_null(strstr(r.out, "\"usage\":{"));
    free(r.out);

    static const char *const map[][2] = { { "api_error", "server_error" },
                                          { "rate_limit_error", "rate_limit_error" },
                                          { "invalid_request_error", "invalid_request_error" },
                                          { "brand_new_error", "server_error" } };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        char ev[256];
        snprintf(ev, sizeof(ev), "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m\"}}\n\n",
                 map[i][0]);
        r = run_stream(RT_CLOUD_CHAT, false, ev, strlen(ev), 0, false);
        assert_stream_error(&r, map[i][1], map[i][0]);
        free(r.out);
    }
    /* an error event that is not JSON is still an error */
    const char *junk = "event: error\ndata: oops\n\n";
    r = run_stream(RT_CLOUD_CHAT, false, junk, strlen(junk), 0, false);
    assert_stream_error(&r, "server_error", "upstream_error");
    free(r.out);
}

static void test_stream_cut_short(void **state)
{
    (void)state;
    const char *data = TEXT_STREAM("end_turn");
    streamed_t r = run_stream(RT_CLOUD_CHAT, true, data, strlen(data), 0, false);
    assert_int_equal(r.rc, RT_CLOUD_STREAM_MORE);
    assert_null(strstr(r.out, "[DONE]"));
    free(r.out);
    r = run_stream(RT_CLOUD_CHAT, true, data, strlen(data), 0, true);
    assert_stream_error(&r, "server_error", "upstream_error");
    assert_non_null(strstr(r.err, "message_stop"));
    free(r.out);

    /* a last message_stop without its blank line is taken */
    const char *nolf = TEXT_STREAM("end_turn") "event: message_stop\ndata: {\"type\":\"message_stop\"}";
    r = run_stream(RT_CLOUD_CHAT, false, nolf, strlen(nolf), 0, true);
    assert_int_equal(r.rc, RT_CLOUD_STREAM_DONE);
    free(r.out);

    /* an empty body */
    r = run_stream(RT_CLOUD_CHAT, false, "", 0, 0, true);
    assert_int_equal(r.rc, RT_CLOUD_STREAM_ERROR);
    free(r.out);
}

static void test_stream_ignored_events(void **state)
{
    (void)state;
    /* thinking blocks, signature deltas, pings, unknown events, events with
     * no event: line (named by their type) */
    const char *data = EV("message_start", "{\"type\":\"message_start\",\"message\":{}}")
        EV("ping", "not even json")
        EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
                                  "\"thinking\":\"\"}}")
        EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
                                  "\"thinking\":\"secret\"}}")
        EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
                                  "\"signature\":\"sig\"}}")
        EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
        EV("future", "][")
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"visible\"}}\n\n"
        "data: {\"type\":\"ping\"}\n\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n"
        "data: {\"type\":\"message_stop\"}\n\n"
        EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
                                  "\"text\":\"late\"}}");
    streamed_t r = run_stream(RT_CLOUD_CHAT, true, data, strlen(data), 0, true);
    assert_int_equal(r.rc, RT_CLOUD_STREAM_DONE);
    assert_null(strstr(r.out, "secret"));
    assert_null(strstr(r.out, "late"));
    cJSON *evs = events_of(r.out);
    assembled_t a;
    assemble(evs, &a, true);
    assert_string_equal(a.text, "visible");
    assert_string_equal(a.finish, "stop");
    const cJSON *last = cJSON_GetArrayItem(evs, cJSON_GetArraySize(evs) - 1);
    assert_json(get(last, "usage"), "{\"prompt_tokens\":0,\"completion_tokens\":2,\"total_tokens\":2}");
    cJSON_Delete(evs);
    free(r.out);
}

static void test_stream_hostile(void **state)
{
    (void)state;
#define START0 EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}")
#define TOOL0                                                                                                          \
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"," \
                              "\"id\":\"t\",\"name\":\"f\"}}")
    static const char *const bad[] = {
        EV("message_start", "{\"type\":\"message_start\""),
        EV("message_start", "[1,2]"),
        EV("message_start", "{\"type\":\"message_start\",\"message\":5}"),
        EV("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":\"x\"}}}"),
        EV("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":[1]}}"),
        EV("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":{\"output_tokens\":-3}}}"),
        EV("content_block_start", "{\"index\":\"0\",\"content_block\":{\"type\":\"text\"}}"),
        EV("content_block_start", "{\"index\":-1,\"content_block\":{\"type\":\"text\"}}"),
        EV("content_block_start", "{\"index\":0.5,\"content_block\":{\"type\":\"text\"}}"),
        EV("content_block_start", "{\"index\":5000,\"content_block\":{\"type\":\"text\"}}"),
        EV("content_block_start", "{\"index\":1024,\"content_block\":{\"type\":\"text\"}}"),
        EV("content_block_start", "{\"index\":1e300,\"content_block\":{\"type\":\"text\"}}"),
        EV("content_block_start", "{\"index\":0}"),
        EV("content_block_start", "{\"index\":0,\"content_block\":[]}"),
        EV("content_block_start", "{\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":3}}"),
        EV("content_block_start", "{\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"name\":\"f\"}}"),
        START0 START0,
        EV("content_block_delta", "{\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}"),
        EV("content_block_delta", "{\"index\":3,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}"),
        START0 EV("content_block_delta", "{\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":7}}"),
        START0 EV("content_block_delta", "{\"index\":0,\"delta\":\"text\"}"),
        START0 EV("content_block_delta", "{\"index\":0}"),
        START0 EV("content_block_delta", "{\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}"),
        TOOL0 EV("content_block_delta", "{\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}"),
        TOOL0 EV("content_block_delta", "{\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":{}}}"),
        START0 EV("content_block_delta", "not json at all"),
        EV("content_block_stop", "{\"index\":2}"),
        EV("content_block_stop", "{}"),
        EV("message_delta", "{\"delta\":[]}"),
        EV("message_delta", "{\"delta\":{\"stop_reason\":5}}"),
        EV("message_delta", "{\"delta\":{},\"usage\":{\"output_tokens\":\"65\"}}"),
        EV("message_delta", "{\"delta\":{},\"usage\":\"x\"}"),
        "data: {\"type\":\"content_block_delta\",\"index\":9,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        streamed_t r = run_stream(RT_CLOUD_CHAT, true, bad[i], strlen(bad[i]), 0, false);
        if (r.rc != RT_CLOUD_STREAM_ERROR)
            fail_msg("hostile stream %zu taken: %s", i, bad[i]);
        assert_stream_error(&r, "server_error", "upstream_malformed");
        free(r.out);
    }

    /* many blocks up to the bound, then one past it: bounded, no crash */
    size_t cap = (size_t)1100 * 120, n = 0;
    char *many = malloc(cap);
    for (int i = 0; i < 1025; i++)
        n += (size_t)snprintf(many + n, cap - n,
                              "event: content_block_start\ndata: {\"index\":%d,\"content_block\":{\"type\":\"tool_use\","
                              "\"id\":\"t%d\",\"name\":\"f\"}}\n\n",
                              i, i);
    streamed_t r = run_stream(RT_CLOUD_CHAT, false, many, n, 0, false);
    assert_stream_error(&r, "server_error", "upstream_malformed");
    assert_non_null(strstr(r.out, "\"id\":\"t1023\""));
    assert_null(strstr(r.out, "\"id\":\"t1024\""));
    free(r.out);
    free(many);

    /* a body that is not an event stream (a JSON error after a 200) */
    const char *json = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}";
    r = run_stream(RT_CLOUD_CHAT, false, json, strlen(json), 0, true);
    assert_int_equal(r.rc, RT_CLOUD_STREAM_ERROR);
    free(r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_basic),
        cmocka_unit_test(test_build_system_and_max_tokens),
        cmocka_unit_test(test_build_merge),
        cmocka_unit_test(test_build_images),
        cmocka_unit_test(test_build_tools),
        cmocka_unit_test(test_build_tool_round_trip),
        cmocka_unit_test(test_build_refusals),
        cmocka_unit_test(test_build_completions),
        cmocka_unit_test(test_finish_map),
        cmocka_unit_test(test_answer_text),
        cmocka_unit_test(test_answer_tools),
        cmocka_unit_test(test_answer_malformed),
        cmocka_unit_test(test_stream_text_and_tools),
        cmocka_unit_test(test_stream_include_usage),
        cmocka_unit_test(test_stream_completions),
        cmocka_unit_test(test_stream_error_event),
        cmocka_unit_test(test_stream_cut_short),
        cmocka_unit_test(test_stream_ignored_events),
        cmocka_unit_test(test_stream_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
