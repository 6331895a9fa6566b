/* test_cloud_fast: cloud/cloud_fast.c, differentially. Every stream below
 * is translated with the fast path on and off (rt_cloud_fast_enable), fed
 * whole and byte by byte, for chat, chat with include_usage and
 * /v1/completions, and the runs must agree: the same state and usage, the
 * same stream object left behind (finish reason, blocks, tools), and the
 * same sequence of SSE events whose JSON parse to equal values
 * (cJSON_Compare; the bytes may differ: the fast path keeps a provider's
 * escapes, "\u00e9" stays "\u00e9" where the cJSON path writes "é").
 * The streams: the common events (texts with escapes, multi-byte UTF-8, \u
 * escapes with surrogate pairs, tool argument deltas, usage, finish
 * reasons, ping), the events the fast path declines (errors, tool calls,
 * thoughts, blocked prompts), hostile variants (wrong types, huge, negative
 * and fractional numbers, missing fields, extra and duplicate keys,
 * truncated and ungrammatical JSON, invalid UTF-8, lone surrogates, deep
 * nesting, more tokens than the fast path holds), and every one-byte
 * deletion, replacement and insertion in the common events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloud/cloud_int.h"
#include "json.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- running a stream ---- */

typedef struct {
    int rc;
    char err[256];
    char *out;
    size_t out_len;
    rt_cloud_usage_t usage;
    bool started;
    /* the stream object before rt_cloud_stream_end */
    int state;
    const char *finish;
    int64_t prompt, completion, total;
    int nblocks, ntools;
    bool role_sent;
    int block_tool[8];
    bool block_args[8];
} run_t;

typedef struct {
    rt_cloud_provider_t provider;
    rt_cloud_endpoint_t ep;
    bool include_usage;
} mode_cfg_t;

/* step 0: the whole stream in one feed */
static run_t run(const mode_cfg_t *m, const char *data, size_t len, size_t step, bool fast)
{
    run_t r;
    memset(&r, 0, sizeof(r));
    rt_cloud_fast_enable(fast);
    rt_cloud_call_t call = { .provider = m->provider, .endpoint = m->ep, .stream = true,
                             .include_usage = m->include_usage };
    rt_cloud_stream_t *s = rt_cloud_stream_new(&call, "provider:model-x", "chatcmpl-fast1", 1700000000);
    struct evbuffer *out = evbuffer_new();
    r.rc = RT_CLOUD_STREAM_MORE;
    for (size_t i = 0; i < len && r.rc == RT_CLOUD_STREAM_MORE;) {
        size_t n = step == 0 || step > len - i ? len - i : step;
        r.rc = rt_cloud_stream_feed(s, data + i, n, out, r.err, sizeof(r.err));
        i += n;
    }
    r.state = s->state;
    r.finish = s->finish;
    r.prompt = s->prompt, r.completion = s->completion, r.total = s->total;
    r.nblocks = s->nblocks, r.ntools = s->ntools;
    r.role_sent = s->role_sent;
    for (int k = 0; k < s->nblocks && k < 8; k++) {
        r.block_tool[k] = s->block_tool[k];
        r.block_args[k] = s->block_args[k];
    }
    if (r.rc == RT_CLOUD_STREAM_MORE)
        r.rc = rt_cloud_stream_end(s, out, r.err, sizeof(r.err));
    r.usage = rt_cloud_stream_usage(s);
    r.started = rt_cloud_stream_started(s);
    r.out_len = evbuffer_get_length(out);
    r.out = malloc(r.out_len + 1);
    evbuffer_remove(out, r.out, r.out_len);
    r.out[r.out_len] = '\0';
    evbuffer_free(out);
    rt_cloud_stream_free(s);
    rt_cloud_fast_enable(true);
    return r;
}

/* the next event of out at *p ("data: ...\n\n"): its data, *n its length */
static const char *next_event(const char **p, size_t *n)
{
    if (!**p)
        return NULL;
    const char *end = strstr(*p, "\n\n");
    assert_non_null(end);
    assert_memory_equal(*p, "data: ", 6);
    const char *d = *p + 6;
    *n = (size_t)(end - d);
    *p = end + 2;
    return d;
}

static void same_events(const run_t *a, const run_t *b, const char *what)
{
    const char *pa = a->out, *pb = b->out, *da, *db;
    size_t na = 0, nb = 0;
    int k = 0;
    while ((da = next_event(&pa, &na)) != NULL) {
        db = next_event(&pb, &nb);
        if (!db)
            fail_msg("%s: event %d missing:\n%s\n---\n%s", what, k, a->out, b->out);
        cJSON *ja = cm_json_parse(da, na), *jb = cm_json_parse(db, nb);
        if (ja || jb) {
            if (!ja || !jb || !cJSON_Compare(ja, jb, true))
                fail_msg("%s: event %d differs:\n%.*s\n%.*s", what, k, (int)na, da, (int)nb, db);
        } else if (na != nb || memcmp(da, db, na) != 0) {
            fail_msg("%s: event %d differs:\n%.*s\n%.*s", what, k, (int)na, da, (int)nb, db);
        }
        cJSON_Delete(ja);
        cJSON_Delete(jb);
        k++;
    }
    if (next_event(&pb, &nb))
        fail_msg("%s: an event more:\n%s\n---\n%s", what, a->out, b->out);
}

static void same_run(const run_t *a, const run_t *b, const char *what)
{
    if (a->rc != b->rc || a->state != b->state || strcmp(a->err, b->err) != 0)
        fail_msg("%s: rc %d/%d state %d/%d err '%s'/'%s'", what, a->rc, b->rc, a->state, b->state, a->err, b->err);
    if (a->usage.prompt_tokens != b->usage.prompt_tokens || a->usage.completion_tokens != b->usage.completion_tokens ||
        a->prompt != b->prompt || a->completion != b->completion || a->total != b->total)
        fail_msg("%s: usage differs", what);
    if (a->started != b->started || a->role_sent != b->role_sent || a->nblocks != b->nblocks ||
        a->ntools != b->ntools || (a->finish != b->finish && (!a->finish || !b->finish || strcmp(a->finish, b->finish))))
        fail_msg("%s: stream state differs (finish %s/%s)", what, a->finish ? a->finish : "-",
                 b->finish ? b->finish : "-");
    for (int k = 0; k < a->nblocks && k < 8; k++)
        if (a->block_tool[k] != b->block_tool[k] || a->block_args[k] != b->block_args[k])
            fail_msg("%s: block %d differs", what, k);
    same_events(a, b, what);
}

static void run_free(run_t *r) { free(r->out); }

static const mode_cfg_t MODES[][3] = {
    { { RT_CLOUD_ANTHROPIC, RT_CLOUD_CHAT, false }, { RT_CLOUD_ANTHROPIC, RT_CLOUD_CHAT, true },
      { RT_CLOUD_ANTHROPIC, RT_CLOUD_COMPLETIONS, false } },
    { { RT_CLOUD_GOOGLE, RT_CLOUD_CHAT, false }, { RT_CLOUD_GOOGLE, RT_CLOUD_CHAT, true },
      { RT_CLOUD_GOOGLE, RT_CLOUD_COMPLETIONS, true } },
};

/* The whole check for one stream: fast and slow, whole and byte by byte,
 * every mode. bytes: also byte by byte (the mutation sweep feeds whole
 * only, to stay fast). Returns the fast, whole, chat run's rc. */
static int check(rt_cloud_provider_t p, const char *data, size_t len, bool bytes, const char *what)
{
    int rc = 0;
    for (int m = 0; m < 3; m++) {
        const mode_cfg_t *mode = &MODES[p == RT_CLOUD_GOOGLE][m];
        run_t slow = run(mode, data, len, 0, false), fast = run(mode, data, len, 0, true);
        same_run(&slow, &fast, what);
        if (bytes) {
            run_t fb = run(mode, data, len, 1, true), sb = run(mode, data, len, 1, false);
            same_run(&slow, &fb, what);
            same_run(&slow, &sb, what);
            run_free(&fb);
            run_free(&sb);
        }
        if (m == 0)
            rc = fast.rc;
        run_free(&slow);
        run_free(&fast);
    }
    return rc;
}

/* ---- Anthropic streams ---- */

#define A_EV(name, json) "event: " name "\ndata: " json "\n\n"
#define A_HEAD                                                                                                         \
    A_EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","          \
                          "\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}") \
    A_EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","  \
                                "\"text\":\"\"}}")                                                                       \
    A_EV("ping", "{\"type\": \"ping\"}")
#define A_TOOL_START                                                                                                   \
    A_EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"          \
                                "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}")
#define A_TAIL                                                                                                         \
    A_EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")                                       \
    A_EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"                      \
                          "\"usage\":{\"output_tokens\":12}}")                                                         \
    A_EV("message_stop", "{\"type\":\"message_stop\"}")
#define A_TEXT(t) A_EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" t "\"}}")
#define A_ARGS(t) A_EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"" t "\"}}")

/* one delta event's data between the common head and tail */
static char *a_stream(const char *delta_data, bool tool)
{
    const char *head = A_HEAD, *tstart = A_TOOL_START, *tail = A_TAIL;
    size_t n = strlen(head) + strlen(tstart) + strlen(delta_data) + strlen(tail) + 64;
    char *s = malloc(n);
    snprintf(s, n, "%s%sevent: content_block_delta\ndata: %s\n\n%s", head, tool ? tstart : "", delta_data, tail);
    return s;
}

static const char *const A_STREAMS[] = {
    A_HEAD A_TEXT("Hello") A_TEXT(", world") A_TAIL,
    A_HEAD A_TEXT("line\\nnext \\\"quoted\\\" back\\\\slash \\/ tab\\t cr\\r \\b\\f") A_TAIL,
    A_HEAD A_TEXT("h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89") A_TAIL,
    A_HEAD A_TEXT("\\u00e9\\u65E5 \\ud83c\\udf89 \\u0001 \\u001f \\u2028") A_TAIL,
    A_HEAD A_TEXT("") A_TEXT("x") A_TAIL,
    A_HEAD A_TOOL_START A_TEXT("calling")
        A_ARGS("{\\\"location\\\": \\\"San") A_ARGS("") A_ARGS("\\n\\t\\\\ \\/ \\b\\f\\r\\u0041") A_ARGS(" Jos\\u00e9 \\ud83c\\udf89\\\"}")
            A_EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}") A_TAIL,
    A_HEAD A_TOOL_START A_EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}") A_TAIL,
    /* unnamed events: the type in the JSON names them */
    "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"un\\u00e9\"}}\n\n"
    "data: {\"type\":\"ping\"}\n\n"
    "data: {\"type\":\"message_stop\"}\n\n",
    /* pretty-printed, over several data lines */
    A_HEAD "event: content_block_delta\ndata: {\n data:  \"type\" : \"content_block_delta\" ,\r\ndata: \"index\":\t0,"
           "\"delta\" : { \"text\" : \"sp aced\", \"type\":\"text_delta\" } }\n\n" A_TAIL,
    /* thinking: a block the fast path does not take */
    A_EV("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}")
    A_EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}")
    A_EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}")
    A_EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hm\"}}")
    A_EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}") A_TAIL,
    /* an error event in the middle */
    A_HEAD A_TEXT("a") A_EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"),
    /* cut short */
    A_HEAD A_TEXT("a"),
};

/* delta events that the fast path must decline or take exactly as the
 * cJSON path does (each between the head and the tail, with the tool block
 * started at index 1) */
static const char *const A_DELTAS[] = {
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}",
    /* numbers */
    "{\"type\":\"content_block_delta\",\"index\":0.0,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0e0,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":-0,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":-1,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":00,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1.5,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":99999999999999999999,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1000000000000000,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":5,\"delta\":{\"type\":\"text_delta\",\"text\":\"unstarted\"}}",
    "{\"type\":\"content_block_delta\",\"index\":2000,\"delta\":{\"type\":\"text_delta\",\"text\":\"too many\"}}",
    "{\"type\":\"content_block_delta\",\"index\":\"0\",\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":null,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":true,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":tru,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"},\"n\":1.2.3}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"},\"n\":-}",
    ("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"},\"n\":"
     "1111111111111111111111111111111111111111111111111111111111111111111111}"),
    /* types */
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":5}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":null}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":[\"a\"]}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":\"text\"}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":null}",
    "{\"type\":\"content_block_delta\",\"index\":0}",
    "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"no type\"}}",
    "{\"type\":\"message_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"other type\"}}",
    "{\"type\":7,\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":5,\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"text\":\"f\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"to a tool\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":3}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text\\u005fdelta\",\"text\":\"escaped type\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"te\\u0078t\":\"escaped key\"}}",
    /* extra and duplicate keys */
    "{\"type\":\"content_block_delta\",\"index\":0,\"extra\":{\"a\":[1,true,null]},\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\",\"extra\":false}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"first\",\"text\":\"second\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
    /* grammar */
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\",}}",
    "{\"type\":\"content_block_delta\",\"index\":0 \"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\" \"text\":\"x\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\" \"x\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\"::\"x\"}}",
    "{\"type\":\"content_block_delta\",,\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
    "{,\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}} {}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}} x",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}  \t ",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},\"a\":[1 2]}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},\"a\":[1,]}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},\"a\":[\"k\":1]}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},\"a\":{\"k\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},\"a\":{1:2}}",
    "\xef\xbb\xbf{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"bom\"}}",
    "[{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}]",
    "\"content_block_delta\"",
    "",
    /* strings: invalid UTF-8, control bytes, bad escapes, lone surrogates */
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xc3\x28\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xff\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xed\xa0\x80\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tab\tin\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"nul\\u0000\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\x41\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\u12\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\ud800\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\udc00x\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\ud800\\u0041\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\ud800\\ud800\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\udbff\\udfff\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},\"k\":\"\\ud800\"}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"},\"\\udfff\":1}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\\ud800\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\ud83c\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\\",
};

/* every one-byte deletion, replacement and insertion of event, between
 * the head and the tail */
static const char MUT_BYTES[] = { '"', '\\', ',', ':', '{', '}', '[', ']', '0', '9', '-', '.', 'e', 'u', 'x', ' ',
                                  't', 'n', '/', '\t', '\x01', '\x80', '\xc3' };

static void sweep(rt_cloud_provider_t p, const char *event, char *(*wrap)(const char *, bool), bool tool)
{
    size_t n = strlen(event);
    char *m = malloc(n + 2);
    for (size_t i = 0; i <= n; i++) {
        for (int op = -1; op < (int)sizeof(MUT_BYTES) * 2; op++) {
            if (i == n && op < (int)sizeof(MUT_BYTES))
                continue; /* only insertions at the end */
            size_t len;
            if (op < 0) { /* delete */
                memcpy(m, event, i);
                memcpy(m + i, event + i + 1, n - i - 1);
                len = n - 1;
            } else if (op < (int)sizeof(MUT_BYTES)) { /* replace */
                memcpy(m, event, n);
                m[i] = MUT_BYTES[op];
                len = n;
            } else { /* insert */
                memcpy(m, event, i);
                m[i] = MUT_BYTES[op - sizeof(MUT_BYTES)];
                memcpy(m + i + 1, event + i, n - i);
                len = n + 1;
            }
            m[len] = '\0';
            if (memchr(m, '\n', len))
                continue; /* a new line would split the data line: another stream, not this event mutated */
            char *s = wrap(m, tool);
            char what[64];
            snprintf(what, sizeof(what), "mutation %zu/%d", i, op);
            check(p, s, strlen(s), false, what);
            free(s);
        }
    }
    free(m);
}

static void test_anthropic_streams(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(A_STREAMS) / sizeof(A_STREAMS[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "anthropic stream %zu", i);
        check(RT_CLOUD_ANTHROPIC, A_STREAMS[i], strlen(A_STREAMS[i]), true, what);
    }
    assert_int_equal(check(RT_CLOUD_ANTHROPIC, A_STREAMS[0], strlen(A_STREAMS[0]), false, "ok"), RT_CLOUD_STREAM_DONE);
}

static void test_anthropic_deltas(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(A_DELTAS) / sizeof(A_DELTAS[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "anthropic delta %zu", i);
        char *s = a_stream(A_DELTAS[i], true);
        check(RT_CLOUD_ANTHROPIC, s, strlen(s), true, what);
        free(s);
    }
}

/* the fast path is live: a provider's escape stays as it was sent (the
 * cJSON path decodes it and writes the character) */
static void test_fast_path_taken(void **state)
{
    (void)state;
    const char *a = A_HEAD A_TEXT("\\u00e9") A_TAIL;
    const char *g = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\u00e9\"}]},\"finishReason\":\"STOP\"}]}\n\n";
    mode_cfg_t ma = { RT_CLOUD_ANTHROPIC, RT_CLOUD_CHAT, false }, mg = { RT_CLOUD_GOOGLE, RT_CLOUD_CHAT, false };
    run_t fa = run(&ma, a, strlen(a), 0, true), sa = run(&ma, a, strlen(a), 0, false);
    run_t fg = run(&mg, g, strlen(g), 0, true), sg = run(&mg, g, strlen(g), 0, false);
    assert_non_null(strstr(fa.out, "\"content\":\"\\u00e9\""));
    assert_non_null(strstr(sa.out, "\"content\":\"\xc3\xa9\""));
    assert_non_null(strstr(fg.out, "\"content\":\"\\u00e9\""));
    assert_non_null(strstr(sg.out, "\"content\":\"\xc3\xa9\""));
    same_run(&sa, &fa, "anthropic taken");
    same_run(&sg, &fg, "google taken");
    run_free(&fa);
    run_free(&sa);
    run_free(&fg);
    run_free(&sg);
}

static void test_anthropic_mutations(void **state)
{
    (void)state;
    sweep(RT_CLOUD_ANTHROPIC,
          "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\u00e9\\n\"}}",
          a_stream, true);
    sweep(RT_CLOUD_ANTHROPIC,
          "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"k\\\":\\ud83c\\udf89\"}}",
          a_stream, true);
}

/* ---- Gemini streams ---- */

#define G_EV(json) "data: " json "\r\n\r\n"
#define G_TEXT(t) G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"" t "\"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-x\",\"responseId\":\"r1\"}")
#define G_LAST                                                                                                         \
    G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\".\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","    \
         "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":9,\"totalTokenCount\":14,"    \
         "\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":5}]},\"modelVersion\":\"gemini-x\"}")

static char *g_stream(const char *event_data, bool unused)
{
    (void)unused;
    const char *first = G_TEXT("Hi"), *last = G_LAST;
    size_t n = strlen(first) + strlen(event_data) + strlen(last) + 16;
    char *s = malloc(n);
    snprintf(s, n, "%sdata: %s\r\n\r\n%s", first, event_data, last);
    return s;
}

static const char *const G_STREAMS[] = {
    G_TEXT("Hello") G_TEXT(", world") G_LAST,
    G_TEXT("line\\nnext \\\"quoted\\\" back\\\\slash \\/ \\t\\r\\b\\f") G_LAST,
    G_TEXT("h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89") G_LAST,
    G_TEXT("\\u00e9\\u65E5 \\ud83c\\udf89 \\u0001") G_LAST,
    G_TEXT("") G_LAST,
    /* several parts, a thought signature, an empty content, a finish without content */
    G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},{\"text\":\"\"},{\"text\":\"b\",\"thoughtSignature\":\"c2ln\"}]}}]}")
    G_EV("{\"candidates\":[{\"content\":{},\"index\":0}]}")
    G_EV("{\"candidates\":[{\"content\":{\"parts\":[]},\"index\":0}]}")
    G_EV("{\"candidates\":[{\"finishReason\":\"MAX_TOKENS\",\"safetyRatings\":[{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"probability\":\"NEGLIGIBLE\"}]}],"
         "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":9,\"thoughtsTokenCount\":4,\"totalTokenCount\":18},\"createTime\":\"2025-01-01T00:00:00Z\"}"),
    /* finish reasons */
    G_TEXT("x") G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"finishReason\":\"SAFETY\"}]}"),
    G_TEXT("x") G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"finishReason\":\"\"}]}"),
    G_TEXT("x") G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"finishReason\":\"NEWER_THAN_US\"}]}"),
    G_TEXT("x") G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"finishReason\":\"MAX\\u005fTOKENS\"}]}"),
    G_TEXT("x") G_EV("{\"candidates\":[{\"finishReason\":\"A_FINISH_REASON_LONGER_THAN_FORTY_BYTES_XXXXXXXXX\"}]}"),
    /* tool calls (the cJSON path) then text: finish becomes tool_calls */
    G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}}]}}]}")
    G_TEXT("after") G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"z\"}]},\"finishReason\":\"STOP\"}]}"),
    /* a thought, a blocked prompt, an error in the stream */
    G_EV("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"thinking\",\"thought\":true}]}}]}") G_LAST,
    G_EV("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":4}}"),
    G_TEXT("a") G_EV("{\"error\":{\"code\":429,\"message\":\"Resource exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}"),
    /* no finish reason: cut short at the end */
    G_TEXT("a") G_TEXT("b"),
    /* keep-alives and a plain JSON error after the events */
    G_TEXT("a") "data:\r\n\r\n" G_LAST,
    G_TEXT("a") "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"overloaded\"\n  }\n}\n",
};

static const char *const G_EVENTS[] = {
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]}}]}",
    /* usage */
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":-1}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":5.0}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":5.5}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":1e3}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":999999999999999}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":9007199254740993}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":1e400}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":\"5\"}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":null}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":007}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"promptTokenCount\":1,\"promptTokenCount\":2}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"cachedContentTokenCount\":3,\"totalTokenCount\":3}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":{\"newCount\":3}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":null}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"u\"}]}}],\"usageMetadata\":[]}",
    /* candidates */
    "{\"candidates\":[]}",
    "{\"candidates\":null}",
    "{\"candidates\":{}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"one\"}]}},{\"content\":{\"parts\":[{\"text\":\"two\"}]}}]}",
    "{\"candidates\":[5]}",
    "{\"candidates\":[{\"content\":null}]}",
    "{\"candidates\":[{\"content\":\"text\"}]}",
    "{\"candidates\":[{\"content\":{\"parts\":null}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":{\"text\":\"x\"}}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[\"x\"]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":5}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":null}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"AA==\"}}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\",\"thought\":false}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\",\"functionCall\":{\"name\":\"f\"}}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\",\"thoughtSignature\":7}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\",\"text\":\"b\"}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]},\"finishReason\":5}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]},\"finishReason\":null}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]},\"finishReason\":\"STOP\",\"finishReason\":\"SAFETY\"}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]},\"citationMetadata\":{}}]}",
    /* top level */
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}],\"error\":null}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}],\"promptFeedback\":{\"blockReason\":5}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}],\"somethingNew\":1}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}],\"modelVersion\":[1,{\"a\":null}]}",
    "{\"usageMetadata\":{\"promptTokenCount\":3}}",
    "{}",
    "[]",
    "5",
    /* grammar and bytes */
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}]",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}],}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"},]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"} {\"text\":\"u\"}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}]}{}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\ud800\"}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\ud83c\\udf89\"}]}}],\"responseId\":\"\\udc00\"}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\xe2\x82\"}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\u0000\"}]}}]}",
    /* deep nesting and more tokens than the fast path holds */
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"deep\"}]}}],\"modelVersion\":"
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"1\"},{\"text\":\"2\"},{\"text\":\"3\"},{\"text\":\"4\"},"
    "{\"text\":\"5\"},{\"text\":\"6\"},{\"text\":\"7\"},{\"text\":\"8\"},{\"text\":\"9\"},{\"text\":\"10\"},"
    "{\"text\":\"11\"},{\"text\":\"12\"},{\"text\":\"13\"},{\"text\":\"14\"},{\"text\":\"15\"},{\"text\":\"16\"},"
    "{\"text\":\"17\"},{\"text\":\"18\"},{\"text\":\"19\"},{\"text\":\"20\"},{\"text\":\"21\"}]}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\"}]}}],\"modelVersion\":[1,2,3,4,5,6,7,8,9,10,11,12,13,"
    "14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,"
    "51,52,53,54,55,56,57,58,59,60]}",
};

static void test_google_streams(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(G_STREAMS) / sizeof(G_STREAMS[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "google stream %zu", i);
        check(RT_CLOUD_GOOGLE, G_STREAMS[i], strlen(G_STREAMS[i]), true, what);
    }
    assert_int_equal(check(RT_CLOUD_GOOGLE, G_STREAMS[0], strlen(G_STREAMS[0]), false, "ok"), RT_CLOUD_STREAM_DONE);
}

static void test_google_events(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(G_EVENTS) / sizeof(G_EVENTS[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "google event %zu", i);
        char *s = g_stream(G_EVENTS[i], false);
        check(RT_CLOUD_GOOGLE, s, strlen(s), true, what);
        free(s);
    }
}

static void test_google_mutations(void **state)
{
    (void)state;
    sweep(RT_CLOUD_GOOGLE,
          "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\\u00e9\\n\"},{\"text\":\"b\"}],\"role\":\"model\"},"
          "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":12,"
          "\"totalTokenCount\":17},\"modelVersion\":\"m\"}",
          g_stream, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_path_taken),     cmocka_unit_test(test_anthropic_streams),
        cmocka_unit_test(test_anthropic_deltas),    cmocka_unit_test(test_anthropic_mutations),
        cmocka_unit_test(test_google_streams),      cmocka_unit_test(test_google_events),
        cmocka_unit_test(test_google_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
