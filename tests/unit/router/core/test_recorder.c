/* Unit tests of router/src/core/recorder.c and recorder_sse.c: streams fed to
 * the observer cut at every byte boundary come out of a real history file in
 * the non-streamed shape with their token counts; long streams keep their
 * finish reason and usage; caps, retries, bodies off; and the queue drops
 * (and counts) rows while the writer is held, without making end wait. */
#include "core/recorder.h"
#include "core/recorder_int.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static char g_dir[256];
static char g_path[300];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/llmr-test-recorder-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof(g_path), "%s/history.db", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = cm_xasprintf("rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

typedef struct {
    rt_history_t *h;
    rt_metrics_t *m;
    rt_recorder_t *r;
    rt_proxy_observer_t obs;
} fx_t;

static void fx_open(fx_t *f, bool bodies, size_t max_body, size_t queue)
{
    char err[256] = "";
    unlink(g_path);
    assert_int_equal(rt_history_open(g_path, &f->h, err, sizeof(err)), 0);
    f->m = rt_metrics_new();
    rt_recorder_opts_t o = { .bodies = bodies, .max_body = max_body, .queue_max = queue, .retention_days = 7 };
    f->r = rt_recorder_new(&o, f->h, f->m);
    rt_recorder_observer(f->r, &f->obs);
}

static void fx_close(fx_t *f)
{
    rt_recorder_free(f->r);
    rt_history_close(f->h);
    rt_metrics_free(f->m);
    char wal[320];
    unlink(g_path);
    snprintf(wal, sizeof(wal), "%s-wal", g_path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", g_path);
    unlink(wal);
}

/* One request through the observer: the answer fed in pieces of step bytes. */
static void run(fx_t *f, const char *id, const char *path, const char *req_body, const char *answer, size_t len,
                size_t step, bool sse, const char *trailer)
{
    rt_rec_client_t c = { .request_id = id, .peer = "127.0.0.1", .kind = "api_key", .id = "key-1", .name = "k" };
    void *ck = rt_rec_begin(f->r, &c, path, "m1", req_body, req_body ? strlen(req_body) : 0);
    for (size_t i = 0; i < len; i += step)
        f->obs.chunk(f->obs.ud, ck, answer + i, len - i < step ? len - i : step);
    uint64_t t = cm_now_us();
    rt_proxy_result_t res = {
        .node_id = "n1", .node_name = "node one", .attempts = 1, .status = 200, .sse = sse,
        .start_us = t - 5000, .first_byte_us = t - 3000, .end_us = t, .usage_trailer = trailer,
    };
    f->obs.end(f->obs.ud, ck, &res);
}

/* ---- reading a row back ---- */

typedef struct {
    bool found;
    char *response, *request;
    size_t response_len, request_len;
    bool resp_trunc, req_trunc, stream;
    int64_t p, c, t, ttft, dur;
    char client_kind[16], node_name[64];
} got_t;

static void got_cb(const rt_history_row_t *r, void *arg)
{
    got_t *g = arg;
    g->found = true;
    g->response = r->response_body ? cm_xstrndup(r->response_body, r->response_len) : NULL;
    g->request = r->request_body ? cm_xstrndup(r->request_body, r->request_len) : NULL;
    g->response_len = r->response_len;
    g->request_len = r->request_len;
    g->resp_trunc = r->response_truncated;
    g->req_trunc = r->request_truncated;
    g->stream = r->stream;
    g->p = r->prompt_tokens;
    g->c = r->completion_tokens;
    g->t = r->total_tokens;
    g->ttft = r->ttft_us;
    g->dur = r->duration_us;
    snprintf(g->client_kind, sizeof(g->client_kind), "%s", r->client_kind ? r->client_kind : "");
    snprintf(g->node_name, sizeof(g->node_name), "%s", r->node_name ? r->node_name : "");
}

static got_t get(fx_t *f, const char *id)
{
    rt_recorder_flush(f->r);
    got_t g = { 0 };
    assert_int_equal(rt_history_get(f->h, id, got_cb, &g), 0);
    assert_true(g.found);
    return g;
}

static void got_free(got_t *g)
{
    free(g->response);
    free(g->request);
}

static const char *choice_str(const cJSON *body, int i, const char *a, const char *b)
{
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(body, "choices"), i);
    const cJSON *v = cJSON_GetObjectItem(ch, a);
    if (b)
        v = cJSON_GetObjectItem(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- streams ---- */

static const char chat_stream[] =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m1\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m1\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
    ": a comment\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m1\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo, \\\"w\\u00f6rld\\\"\\n\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m1\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m1\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":4,\"total_tokens\":15}}\n\n"
    "data: [DONE]\n\n";

static void test_chat_stream_any_split(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, true, 65536, 1000);
    size_t len = strlen(chat_stream);
    for (size_t step = 1; step <= len; step += step < 16 ? 1 : 37) {
        char id[32];
        snprintf(id, sizeof(id), "chat-%zu", step);
        run(&f, id, "/v1/chat/completions", "{\"model\":\"m1\",\"stream\":true}", chat_stream, len, step, true, NULL);
    }
    for (size_t step = 1; step <= len; step += step < 16 ? 1 : 37) {
        char id[32];
        snprintf(id, sizeof(id), "chat-%zu", step);
        got_t g = get(&f, id);
        cJSON *b = cJSON_Parse(g.response);
        assert_non_null(b);
        assert_string_equal(cJSON_GetObjectItem(b, "object")->valuestring, "chat.completion");
        assert_string_equal(cJSON_GetObjectItem(b, "id")->valuestring, "c1");
        assert_string_equal(cJSON_GetObjectItem(b, "model")->valuestring, "m1");
        assert_int_equal(cJSON_GetObjectItem(b, "created")->valueint, 7);
        assert_string_equal(choice_str(b, 0, "message", "content"), "Hello, \"w\xc3\xb6rld\"\n");
        assert_string_equal(choice_str(b, 0, "message", "role"), "assistant");
        assert_string_equal(choice_str(b, 0, "finish_reason", NULL), "stop");
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "usage"), "total_tokens")->valueint, 15);
        assert_int_equal(g.p, 11);
        assert_int_equal(g.c, 4);
        assert_int_equal(g.t, 15);
        assert_true(g.stream);
        assert_false(g.resp_trunc);
        assert_int_equal(g.ttft, 2000);
        assert_int_equal(g.dur, 5000);
        assert_string_equal(g.client_kind, "api_key");
        assert_string_equal(g.node_name, "node one");
        assert_string_equal(g.request, "{\"model\":\"m1\",\"stream\":true}");
        cJSON_Delete(b);
        got_free(&g);
    }
    fx_close(&f);
}

/* text completions, two choices interleaved; usage from the node's trailer */
static const char text_stream[] =
    "data: {\"id\":\"t1\",\"object\":\"text_completion\",\"created\":9,\"model\":\"m1\",\"choices\":[{\"index\":1,\"text\":\"B1\",\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"t1\",\"object\":\"text_completion\",\"created\":9,\"model\":\"m1\",\"choices\":[{\"index\":0,\"text\":\"A1\",\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"t1\",\"object\":\"text_completion\",\"created\":9,\"model\":\"m1\",\"choices\":[{\"index\":0,\"text\":\" A2\",\"finish_reason\":\"length\"},{\"index\":1,\"text\":\" B2\",\"finish_reason\":\"stop\"}]}\n\n"
    "data: [DONE]\n\n";

static void test_text_stream_choices_trailer(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, true, 65536, 1000);
    size_t len = strlen(text_stream);
    for (size_t step = 1; step <= len; step += 5) {
        char id[32];
        snprintf(id, sizeof(id), "text-%zu", step);
        run(&f, id, "/v1/completions", "{}", text_stream, len, step, true,
            "{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}");
    }
    for (size_t step = 1; step <= len; step += 5) {
        char id[32];
        snprintf(id, sizeof(id), "text-%zu", step);
        got_t g = get(&f, id);
        cJSON *b = cJSON_Parse(g.response);
        assert_non_null(b);
        assert_string_equal(cJSON_GetObjectItem(b, "object")->valuestring, "text_completion");
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "choices")), 2);
        assert_string_equal(choice_str(b, 0, "text", NULL), "A1 A2");
        assert_string_equal(choice_str(b, 1, "text", NULL), "B1 B2");
        assert_string_equal(choice_str(b, 0, "finish_reason", NULL), "length");
        assert_string_equal(choice_str(b, 1, "finish_reason", NULL), "stop");
        assert_null(cJSON_GetObjectItem(b, "usage"));
        assert_int_equal(g.p, 3);
        assert_int_equal(g.c, 4);
        assert_int_equal(g.t, 7);
        cJSON_Delete(b);
        got_free(&g);
    }
    fx_close(&f);
}

/* A stream longer than the head's bound: the content is cut (flagged), the
 * finish reason and usage come from the kept tail. */
static void test_long_stream_keeps_tail(void **state)
{
    (void)state;
    fx_t f;
    size_t max_body = 512;
    fx_open(&f, true, max_body, 1000);
    size_t cap = 1 << 20, len = 0;
    char *s = cm_xmalloc(cap);
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "data: {\"id\":\"L\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                                "\"delta\":{\"content\":\"w%d \"},\"finish_reason\":null}]}\n\n", i);
    len += (size_t)snprintf(s + len, cap - len,
                            "data: {\"id\":\"L\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                            "\"delta\":{},\"finish_reason\":\"length\"}]}\n\n"
                            "data: {\"id\":\"L\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"
                            "{\"prompt_tokens\":5,\"completion_tokens\":2000,\"total_tokens\":2005}}\n\ndata: [DONE]\n\n");
    static const size_t steps[] = { 1, 7, 100, 4096, 1 << 20 };
    for (size_t k = 0; k < 5; k++) {
        char id[32];
        snprintf(id, sizeof(id), "long-%zu", k);
        run(&f, id, "/v1/chat/completions", "{}", s, len, steps[k], true, NULL);
        got_t g = get(&f, id);
        assert_true(g.resp_trunc);
        assert_true(g.response_len <= max_body);
        assert_int_equal(g.c, 2000);
        assert_int_equal(g.t, 2005);
        assert_non_null(strstr(g.response, "\"content\":\"w0 w1 w2 "));
        got_free(&g);
    }
    /* without a cap on the content the body is whole JSON with the tail's finish reason */
    rt_rec_input_t in = { .head = s, .head_len = 4 * max_body, .tail = s + len - RT_REC_TAIL, .tail_len = RT_REC_TAIL,
                          .gap = true, .sse = true, .chat = true, .want_body = true, .max_body = 1 << 20 };
    rt_rec_answer_t a;
    rt_rec_answer(&in, &a);
    cJSON *b = cJSON_Parse(a.body);
    assert_non_null(b);
    assert_string_equal(choice_str(b, 0, "finish_reason", NULL), "length");
    assert_true(a.truncated);
    assert_int_equal(a.completion_tokens, 2000);
    cJSON_Delete(b);
    free(a.body);
    free(s);
    fx_close(&f);
}

static void test_tool_calls_and_reasoning(void **state)
{
    (void)state;
    static const char s[] =
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"think\"}}]}\n\n"
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n"
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n";
    rt_rec_input_t in = { .head = s, .head_len = strlen(s), .sse = true, .chat = true, .want_body = true, .max_body = 4096 };
    rt_rec_answer_t a;
    rt_rec_answer(&in, &a);
    cJSON *b = cJSON_Parse(a.body);
    assert_non_null(b);
    assert_string_equal(choice_str(b, 0, "message", "reasoning_content"), "think");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "choices"), 0), "message"), "content")));
    const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "choices"), 0), "message"), "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring, "call_1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "arguments")->valuestring, "{\"a\":1}");
    assert_string_equal(choice_str(b, 0, "finish_reason", NULL), "tool_calls");
    assert_int_equal(a.total_tokens, -1);
    cJSON_Delete(b);
    free(a.body);
}

/* ---- bodies ---- */

static void test_body_caps_and_usage(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, true, 300, 1000);
    /* a non-streamed answer with usage at its end, larger than the cap */
    char answer[4000];
    char pad[3000];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(answer, sizeof(answer),
             "{\"id\":\"a\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
             "\"content\":\"%s\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":9,\"total_tokens\":11}}",
             pad);
    char reqb[1000];
    memset(reqb, 'r', sizeof(reqb) - 1);
    reqb[sizeof(reqb) - 1] = '\0';
    run(&f, "big", "/v1/chat/completions", reqb, answer, strlen(answer), 333, false, NULL);
    got_t g = get(&f, "big");
    assert_int_equal(g.response_len, 300);
    assert_true(g.resp_trunc);
    assert_int_equal(g.request_len, 300);
    assert_true(g.req_trunc);
    assert_int_equal(g.c, 9); /* read from the tail: the head was not the whole body */
    assert_int_equal(g.t, 11);
    assert_memory_equal(g.response, answer, 300);
    got_free(&g);
    /* a small one is whole */
    const char *small = "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}";
    run(&f, "small", "/v1/chat/completions", "{}", small, strlen(small), 1, false, NULL);
    g = get(&f, "small");
    assert_string_equal(g.response, small);
    assert_false(g.resp_trunc);
    assert_false(g.req_trunc);
    assert_int_equal(g.t, 3); /* prompt + completion when total is missing */
    got_free(&g);
    fx_close(&f);
}

static void test_retry_discards(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, true, 65536, 1000);
    rt_rec_client_t c = { .request_id = "retry", .peer = "::1" };
    void *ck = rt_rec_begin(f.r, &c, "/v1/chat/completions", "m1", "{}", 2);
    f.obs.chunk(f.obs.ud, ck, "{\"error\":", 9);
    f.obs.retry(f.obs.ud, ck);
    const char *ok = "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}";
    f.obs.chunk(f.obs.ud, ck, ok, strlen(ok));
    uint64_t t = cm_now_us();
    rt_proxy_result_t res = { .node_id = "n2", .node_name = "two", .attempts = 2, .status = 200, .start_us = t, .end_us = t };
    f.obs.end(f.obs.ud, ck, &res);
    got_t g = get(&f, "retry");
    assert_string_equal(g.response, ok);
    assert_string_equal(g.client_kind, "");
    assert_int_equal(g.ttft, -1);
    got_free(&g);
    fx_close(&f);
}

static void test_bodies_off_keeps_tokens(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, false, 65536, 1000);
    size_t len = strlen(chat_stream);
    run(&f, "s", "/v1/chat/completions", "{\"secret\":1}", chat_stream, len, 10, true, NULL);
    const char *body = "{\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5,\"total_tokens\":9}}";
    run(&f, "b", "/v1/chat/completions", "{\"secret\":1}", body, strlen(body), 10, false, NULL);
    got_t g = get(&f, "s");
    assert_null(g.response);
    assert_null(g.request);
    assert_int_equal(g.t, 15);
    got_free(&g);
    g = get(&f, "b");
    assert_null(g.response);
    assert_null(g.request);
    assert_int_equal(g.t, 9);
    got_free(&g);
    fx_close(&f);
}

/* ---- the queue ---- */

static void test_queue_drops_when_writer_held(void **state)
{
    (void)state;
    fx_t f;
    fx_open(&f, true, 1024, 16);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    run(&f, "first", "/v1/chat/completions", "{}", "{}", 2, 2, false, NULL);
    /* the writer takes it and waits for the lock (bounded wait) */
    for (int i = 0; i < 500; i++) {
        rt_recorder_stats_t st0;
        rt_recorder_stats(f.r, &st0);
        if (st0.depth == 0)
            break;
        usleep(10 * 1000);
    }
    usleep(50 * 1000);
    uint64_t worst = 0;
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "q%d", i);
        uint64_t t0 = cm_now_us();
        run(&f, id, "/v1/chat/completions", "{}", "{}", 2, 2, false, NULL);
        uint64_t d = cm_now_us() - t0;
        worst = d > worst ? d : worst;
    }
    rt_recorder_stats_t st;
    rt_recorder_stats(f.r, &st);
    assert_int_equal(st.dropped, 24);
    assert_int_equal(st.depth, 16);
    assert_int_equal(st.queued, 17);
    assert_true(worst < 50 * 1000); /* end never waits for the writer */
    print_message("    held writer: 40 requests ended in at most %llu us each, %llu dropped\n",
                  (unsigned long long)worst, (unsigned long long)st.dropped);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rt_recorder_flush(f.r);
    rt_recorder_stats(f.r, &st);
    assert_int_equal(st.written, 17);
    assert_int_equal(st.depth, 0);
    assert_int_equal(rt_history_count(f.h), 17);
    fx_close(&f);
}

/* With the history off, the recorder still reads tokens for the metrics and
 * counts nothing as written. */
static void test_history_off(void **state)
{
    (void)state;
    rt_metrics_t *m = rt_metrics_new();
    rt_recorder_opts_t o = { .bodies = true, .max_body = 65536, .queue_max = 100, .retention_days = 7 };
    rt_recorder_t *r = rt_recorder_new(&o, NULL, m);
    rt_proxy_observer_t obs;
    rt_recorder_observer(r, &obs);
    rt_rec_client_t c = { .request_id = "x" };
    void *ck = rt_rec_begin(r, &c, "/v1/chat/completions", "m1", "{}", 2);
    obs.chunk(obs.ud, ck, chat_stream, strlen(chat_stream));
    rt_proxy_result_t res = { .status = 200, .sse = true, .attempts = 1 };
    obs.end(obs.ud, ck, &res);
    rt_recorder_flush(r);
    rt_recorder_stats_t st;
    rt_recorder_stats(r, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.written, 0);
    assert_int_equal(st.depth, 0);
    rt_recorder_free(r);
    rt_metrics_free(m);
}

static void test_usage_parse(void **state)
{
    (void)state;
    int64_t p = 0, c = 0, t = 0;
    assert_true(rt_rec_parse_usage("{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}", 58, &p, &c, &t));
    assert_int_equal(p + c + t, 6);
    assert_false(rt_rec_parse_usage("nope", 4, &p, &c, &t));
    assert_false(rt_rec_parse_usage("{\"x\":1}", 7, &p, &c, &t));
    /* not events at all: the stream is stored as it came */
    rt_rec_input_t in = { .head = "hello", .head_len = 5, .sse = true, .want_body = true, .max_body = 3 };
    rt_rec_answer_t a;
    rt_rec_answer(&in, &a);
    assert_string_equal(a.body, "hel");
    assert_true(a.truncated);
    free(a.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_stream_any_split),
        cmocka_unit_test(test_text_stream_choices_trailer),
        cmocka_unit_test(test_long_stream_keeps_tail),
        cmocka_unit_test(test_tool_calls_and_reasoning),
        cmocka_unit_test(test_body_caps_and_usage),
        cmocka_unit_test(test_retry_discards),
        cmocka_unit_test(test_bodies_off_keeps_tokens),
        cmocka_unit_test(test_queue_drops_when_writer_held),
        cmocka_unit_test(test_history_off),
        cmocka_unit_test(test_usage_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
