/* proxy: the state machine of one proxied request, against real nodes.
 *
 * Each test builds what server.c builds (registry, admission queue, proxy)
 * around an in-process HTTP server (127.0.0.1, port 0, one worker) whose one
 * route hands the body to rt_proxy_forward, and spawns bench/router's
 * mock_node processes as the nodes (MOCK_MODE makes them fail on purpose).
 * The client is libcurl's easy interface on the test thread.
 *
 * Every test ends by checking the registry's counters: every node's in-flight
 * count back to 0, and total == ok + failed == the attempts that ended with
 * an outcome. A slot released twice would show as a total above the attempts,
 * one never released as an in-flight count that stays up. Counters settle
 * just after the client has its answer (the proxy releases after replying),
 * so they are polled, as is everything else, with a deadline. */
#include "proxy_harness.h"

static void test_ok_plain(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int a = mock_node("ok", NULL, 4, 1);
    resp_t want = { 0 }, got = { 0 };
    direct(a, plain_body, &want);
    proxied(plain_body, &got);
    assert_int_equal(got.rc, CURLE_OK);
    assert_int_equal(got.status, 200);
    assert_string_equal(got.ctype, "application/json");
    assert_same_body(&got, &want);
    assert_node(a, 1, 0, false);
    assert_int_equal(mock_stats(&fx.mocks[a]).requests, 2);
    resp_free(&want);
    resp_free(&got);
}

static void test_ok_stream(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int a = mock_node("ok", NULL, 4, 1);
    resp_t want = { 0 }, got = { 0 };
    direct(a, stream_body, &want);
    proxied(stream_body, &got);
    assert_int_equal(got.rc, CURLE_OK);
    assert_int_equal(got.status, 200);
    assert_string_equal(got.ctype, "text/event-stream");
    assert_same_body(&got, &want);
    assert_true(got.len > 20 && strcmp(got.body + got.len - 14, "data: [DONE]\n\n") == 0);
    assert_node(a, 1, 0, false);
    resp_free(&want);
    resp_free(&got);
}

/* ---- retries before any byte reached the client ---- */

/* 5xx: the next node answers; the failing one counted, not suspended */
static void test_retry_after_500(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int bad = mock_node("500", NULL, 4, 1);
    int good = mock_node("ok", NULL, 4, 50);
    resp_t want = { 0 }, got = { 0 };
    direct(good, plain_body, &want);
    proxied(plain_body, &got);
    assert_int_equal(got.status, 200);
    assert_same_body(&got, &want);
    assert_node(bad, 0, 1, false);
    assert_node(good, 1, 0, false);
    assert_int_equal(mock_stats(&fx.mocks[bad]).requests, 1);
    resp_free(&want);
    resp_free(&got);
}

/* refused: retried elsewhere, and the dead node suspended */
static void test_retry_after_refused(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int dead = node_add(closed_port(), 4, 1);
    int good = mock_node("ok", NULL, 4, 50);
    resp_t want = { 0 }, got = { 0 };
    direct(good, plain_body, &want);
    proxied(plain_body, &got);
    assert_int_equal(got.status, 200);
    assert_same_body(&got, &want);
    assert_node(dead, 0, 1, true);
    assert_node(good, 1, 0, false);
    resp_free(&want);
    resp_free(&got);
}

/* a held answer cut halfway is dropped and the request retried invisibly */
static void test_retry_after_cut_held_answer(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int cut = mock_node("cut", NULL, 4, 1);
    int good = mock_node("ok", NULL, 4, 50);
    resp_t want = { 0 }, got = { 0 };
    direct(good, plain_body, &want);
    proxied(plain_body, &got);
    assert_int_equal(got.status, 200);
    assert_same_body(&got, &want);
    assert_node(cut, 0, 1, false);
    assert_node(good, 1, 0, false);
    resp_free(&want);
    resp_free(&got);
}

/* every node answers 5xx: 502 upstream_error once all were tried */
static void test_all_fail_502(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int a = mock_node("500", NULL, 4, 1);
    int b = mock_node("500", NULL, 4, 50);
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_openai_error(&got, 502, "upstream_error");
    assert_generic_message(got.body);
    assert_node(a, 0, 1, false);
    assert_node(b, 0, 1, false);
    resp_free(&got);
}

/* retries used up: the last node's own 5xx reaches the client as it was */
static void test_retries_spent_relay_5xx(void **state)
{
    (void)state;
    rt_proxy_opts_t o = default_opts;
    o.retries = 1;
    router_start(&o, false);
    int a = mock_node("500", NULL, 4, 1);
    int b = mock_node("500", NULL, 4, 50);
    int c = mock_node("ok", NULL, 4, 99);
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_openai_error(&got, 500, "mock_failure");
    assert_node(a, 0, 1, false);
    assert_node(b, 0, 1, false);
    assert_node(c, 0, 0, false);
    resp_free(&got);
}

/* connection failures suspend: 502 now, then 503 at once with Retry-After */
static void test_all_suspended_503(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int a = node_add(closed_port(), 4, 1);
    int b = node_add(closed_port(), 4, 50);
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_openai_error(&got, 502, "upstream_error");
    assert_generic_message(got.body); /* was "cannot connect to 127.0.0.1:..." */
    assert_node(a, 0, 1, true);
    assert_node(b, 0, 1, true);
    resp_free(&got);
    proxied(plain_body, &got);
    assert_openai_error(&got, 503, "no_node_available");
    int ra = atoi(got.retry_after);
    assert_true(ra >= 1 && ra <= (int)(default_opts.suspend_ms / 1000));
    assert_node(a, 0, 1, true); /* no attempt was made */
    assert_node(b, 0, 1, true);
    resp_free(&got);
}

/* an upstream silent for idle_timeout_s: 504, and the node suspended */
static void test_idle_timeout_504(void **state)
{
    (void)state;
    rt_proxy_opts_t o = default_opts;
    o.idle_timeout_s = 1;
    router_start(&o, false);
    int a = mock_node("slow", (const char *[]){ "MOCK_DELAY_MS=4000", NULL }, 4, 1);
    resp_t got = { 0 };
    uint64_t t0 = cm_now_ms();
    proxied(plain_body, &got);
    assert_openai_error(&got, 504, "upstream_timeout");
    assert_generic_message(got.body);
    assert_non_null(strstr(got.body, "did not answer in time"));
    assert_true(cm_now_ms() - t0 < 3000);
    assert_node(a, 0, 1, true);
    assert_int_equal(mock_settled(&fx.mocks[a]).requests, 1); /* and the node saw the cancel */
    resp_free(&got);
}

/* ---- relaying ---- */

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* past HOLD_MAX (8 MiB) the held answer turns into a stream, whole */
static void test_hold_to_stream(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int a = mock_node("big", NULL, 4, 1);
    resp_t want = { 0 }, got = { 0 };
    direct(a, plain_body, &want);
    assert_int_equal(want.len, (size_t)10 << 20);
    proxied(plain_body, &got);
    assert_int_equal(got.rc, CURLE_OK);
    assert_int_equal(got.status, 200);
    assert_string_equal(got.ctype, "application/json");
    assert_int_equal(got.len, want.len);
    assert_true(fnv1a(got.body, got.len) == fnv1a(want.body, want.len));
    assert_node(a, 1, 0, false);
    resp_free(&want);
    resp_free(&got);
}

/* a big answer the node cuts after the relay switched to streaming: the
 * client's connection closes without the last chunk, so it can tell the body
 * is incomplete (it used to end cleanly, truncated JSON with status 200) */
static void test_big_cut_aborts(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int cut = mock_node("cut", (const char *[]){ "MOCK_BIG_BYTES=20971520", NULL }, 4, 1);
    int other = mock_node("ok", NULL, 4, 50);
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_int_equal(got.status, 200);
    assert_int_not_equal(got.rc, CURLE_OK); /* curl: transfer closed with outstanding data */
    assert_true(got.len > (size_t)8 << 20 && got.len < (size_t)20 << 20);
    assert_node(cut, 0, 1, false);
    assert_int_equal(mock_stats(&fx.mocks[other]).requests, 0); /* bytes went out: no retry */
    resp_free(&got);
}

/* a stream the node cuts: the chunks, an SSE error event, [DONE]; never a
 * retry once bytes went out */
static void test_stream_cut(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int cut = mock_node("cut", (const char *[]){ "MOCK_CUT_AFTER=3", NULL }, 4, 1);
    int other = mock_node("ok", NULL, 4, 50);
    resp_t got = { 0 };
    proxied(stream_body, &got);
    assert_int_equal(got.rc, CURLE_OK); /* the proxy ended its stream cleanly */
    assert_int_equal(got.status, 200);
    size_t cl = sizeof(mock_chunk) - 1;
    assert_true(got.len > 3 * cl);
    for (int k = 0; k < 3; k++)
        assert_memory_equal(got.body + k * cl, mock_chunk, cl);
    const char *rest = got.body + 3 * cl;
    static const char ev[] = "event: error\ndata: ";
    assert_memory_equal(rest, ev, sizeof(ev) - 1);
    const char *json = rest + sizeof(ev) - 1;
    const char *end = strstr(json, "\n\n");
    assert_non_null(end);
    assert_string_equal(end + 2, "data: [DONE]\n\n");
    resp_t e = { .status = 200, .body = (char *)json, .len = (size_t)(end - json) };
    assert_openai_error(&e, 200, "upstream_error");
    assert_generic_message(json);
    assert_node(cut, 0, 1, false);
    assert_node(other, 0, 0, false);
    assert_int_equal(mock_stats(&fx.mocks[other]).requests, 0);
    resp_free(&got);
}

/* the client leaves mid-stream: the slot comes back, the node's request is
 * cancelled, nothing is retried */
static void test_client_disconnect(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    const char *slow_stream[] = { "MOCK_CHUNKS=1000", "MOCK_GAP_US=5000", NULL }; /* 5 s */
    int a = mock_node("ok", slow_stream, 4, 1);
    int b = mock_node("ok", NULL, 4, 50);
    resp_t got = { .abort_after = 1 };
    uint64_t t0 = cm_now_ms();
    proxied(stream_body, &got);
    assert_int_equal(got.rc, CURLE_WRITE_ERROR);
    stats_t s = mock_settled(&fx.mocks[a]);
    assert_int_equal(s.active, 0);
    assert_int_equal(s.requests, 1);
    assert_node(a, 0, 0, false); /* given back without an outcome */
    assert_node(b, 0, 0, false);
    assert_int_equal(mock_stats(&fx.mocks[b]).requests, 0);
    assert_true(cm_now_ms() - t0 < 2500); /* well before the stream's end */
    resp_free(&got);
}

/* ---- admission ---- */

static void test_unknown_model_404(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int a = mock_node("ok", NULL, 4, 1);
    resp_t got = { 0 };
    proxied("{\"model\":\"nope\"}", &got);
    assert_openai_error(&got, 404, "model_not_found");
    assert_node(a, 0, 0, false);
    assert_int_equal(mock_stats(&fx.mocks[a]).requests, 0);
    resp_free(&got);
}

typedef struct {
    pthread_t t;
    const char *body;
    resp_t r;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    proxied(c->body, &c->r);
    return NULL;
}

static void client_go(client_t *c, const char *body)
{
    c->body = body;
    assert_int_equal(pthread_create(&c->t, NULL, client_main, c), 0);
}

/* true once cond(ud) held within WAIT_MS */
static bool wait_for(bool (*cond)(void *), void *ud)
{
    uint64_t deadline = cm_now_ms() + WAIT_MS;
    while (!cond(ud)) {
        if (cm_now_ms() > deadline)
            return false;
        usleep(2000);
    }
    return true;
}

static bool one_waiting(void *ud)
{
    (void)ud;
    return rt_admission_waiting(fx.adm) == 1;
}

static bool node_busy(void *ud)
{
    return mock_stats(ud).active == 1;
}

/* one slot: the second request queues and gets the slot the first gives back */
static void test_queue_waits_for_slot(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int a = mock_node("slow", (const char *[]){ "MOCK_DELAY_MS=300", NULL }, 1, 1);
    client_t c[2] = { 0 };
    client_go(&c[0], plain_body);
    assert_true(wait_for(node_busy, &fx.mocks[a]));
    client_go(&c[1], plain_body);
    assert_true(wait_for(one_waiting, NULL));
    for (int i = 0; i < 2; i++) {
        pthread_join(c[i].t, NULL);
        assert_int_equal(c[i].r.status, 200);
        resp_free(&c[i].r);
    }
    assert_int_equal(rt_admission_waiting(fx.adm), 0);
    assert_node(a, 2, 0, false);
    stats_t s = mock_stats(&fx.mocks[a]);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.max_active, 1); /* the node never had two at once */
}

/* a short queue timeout: the waiter gets 503 queue_timeout, the first still 200 */
static void test_queue_timeout_503(void **state)
{
    (void)state;
    rt_proxy_opts_t o = default_opts;
    o.queue_timeout_ms = 100;
    router_start(&o, false);
    int a = mock_node("slow", (const char *[]){ "MOCK_DELAY_MS=600", NULL }, 1, 1);
    client_t first = { 0 };
    client_go(&first, plain_body);
    assert_true(wait_for(node_busy, &fx.mocks[a]));
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_openai_error(&got, 503, "queue_timeout");
    assert_true(got.retry_after[0] != '\0');
    pthread_join(first.t, NULL);
    assert_int_equal(first.r.status, 200);
    assert_node(a, 1, 0, false);
    assert_int_equal(mock_stats(&fx.mocks[a]).requests, 1);
    resp_free(&first.r);
    resp_free(&got);
}

/* ---- time limits and nodes gone offline (hardening) ---- */

/* The SSE error event that ends a stream after n mock chunks, then
 * [DONE]: its message is the generic one. */
static void assert_stream_error_after(const resp_t *got, int n)
{
    size_t cl = sizeof(mock_chunk) - 1;
    assert_true(got->len > (size_t)n * cl);
    for (int k = 0; k < n; k++)
        assert_memory_equal(got->body + (size_t)k * cl, mock_chunk, cl);
    const char *rest = got->body + (size_t)n * cl;
    static const char ev[] = "event: error\ndata: ";
    assert_memory_equal(rest, ev, sizeof(ev) - 1);
    const char *json = rest + sizeof(ev) - 1;
    const char *end = strstr(json, "\n\n");
    assert_non_null(end);
    assert_string_equal(end + 2, "data: [DONE]\n\n");
    resp_t e = { .status = 200, .body = (char *)json, .len = (size_t)(end - json) };
    assert_openai_error(&e, 200, "upstream_error");
    assert_generic_message(json);
}

/* a node that takes the request and never sends its head: after
 * head_timeout_s the attempt fails (the node suspended) and another node
 * answers, long before the idle timeout */
static void test_head_timeout_retried(void **state)
{
    (void)state;
    rt_proxy_opts_t o = default_opts;
    o.head_timeout_s = 1;
    o.idle_timeout_s = 30;
    router_start(&o, false);
    int hang = mock_node("hang", NULL, 4, 1);
    int good = mock_node("ok", NULL, 4, 50);
    resp_t want = { 0 }, got = { 0 };
    direct(good, plain_body, &want);
    uint64_t t0 = cm_now_ms();
    proxied(plain_body, &got);
    uint64_t took = cm_now_ms() - t0;
    assert_int_equal(got.status, 200);
    assert_same_body(&got, &want);
    assert_true(took >= 900 && took < 3000);
    assert_node(hang, 0, 1, true);
    assert_node(good, 1, 0, false);
    assert_int_equal(mock_settled(&fx.mocks[hang]).requests, 1); /* and it saw the cancel */
    resp_free(&want);
    resp_free(&got);
}

/* a stream whose node goes silent after some events: the idle limit ends it
 * with the error event, even with a long head limit */
static void test_stream_idle_error(void **state)
{
    (void)state;
    rt_proxy_opts_t o = default_opts;
    o.head_timeout_s = 30;
    o.idle_timeout_s = 1;
    router_start(&o, false);
    int stall = mock_node("stall", (const char *[]){ "MOCK_CUT_AFTER=2", NULL }, 4, 1);
    int other = mock_node("ok", NULL, 4, 50);
    resp_t got = { 0 };
    uint64_t t0 = cm_now_ms();
    proxied(stream_body, &got);
    assert_true(cm_now_ms() - t0 < 3000);
    assert_int_equal(got.rc, CURLE_OK);
    assert_int_equal(got.status, 200);
    assert_stream_error_after(&got, 2);
    assert_non_null(strstr(got.body, "did not answer in time"));
    assert_node(stall, 0, 1, false);
    assert_node(other, 0, 0, false);
    assert_int_equal(mock_settled(&fx.mocks[stall]).active, 0);
    resp_free(&got);
}

static bool node_has(void *ud)
{
    return mock_stats(ud).active == 1;
}

/* the node of an unanswered request goes offline (rt_proxy_node_offline,
 * called from another thread as the health sweep's is): retried on another
 * node at once, not after the time limits */
static void test_offline_node_retried(void **state)
{
    (void)state;
    rt_proxy_opts_t o = default_opts;
    o.idle_timeout_s = 30;
    router_start(&o, false);
    int hang = mock_node("hang", NULL, 4, 1);
    int good = mock_node("ok", NULL, 4, 50);
    client_t c = { 0 };
    client_go(&c, plain_body);
    assert_true(wait_for(node_has, &fx.mocks[hang]));
    uint64_t t0 = cm_now_ms();
    rt_proxy_node_offline(fx.proxy, fx.ids[good]); /* no request there: nothing happens */
    rt_proxy_node_offline(fx.proxy, fx.ids[hang]);
    pthread_join(c.t, NULL);
    assert_true(cm_now_ms() - t0 < 2000);
    assert_int_equal(c.r.status, 200);
    assert_node(hang, 0, 1, true);
    assert_node(good, 1, 0, false);
    assert_int_equal(mock_settled(&fx.mocks[hang]).active, 0); /* its request was cancelled */
    resp_free(&c.r);
}

/* a running stream whose node goes offline ends with the error event at once */
static void test_offline_node_ends_stream(void **state)
{
    (void)state;
    rt_proxy_opts_t o = default_opts;
    o.idle_timeout_s = 30;
    router_start(&o, false);
    int stall = mock_node("stall", (const char *[]){ "MOCK_CUT_AFTER=2", NULL }, 4, 1);
    int other = mock_node("ok", NULL, 4, 50);
    client_t c = { 0 };
    client_go(&c, stream_body);
    assert_true(wait_for(node_has, &fx.mocks[stall]));
    usleep(300 * 1000); /* the two events reach the client */
    uint64_t t0 = cm_now_ms();
    rt_proxy_node_offline(fx.proxy, fx.ids[stall]);
    pthread_join(c.t, NULL);
    assert_true(cm_now_ms() - t0 < 2000);
    assert_int_equal(c.r.rc, CURLE_OK);
    assert_stream_error_after(&c.r, 2);
    assert_node(stall, 0, 1, false);
    assert_node(other, 0, 0, false);
    assert_int_equal(mock_settled(&fx.mocks[stall]).active, 0);
    resp_free(&c.r);
}

/* a node's 401 is never relayed (a rogue node could tell clients their key
 * was revoked): retried elsewhere, and 502 when no node is left */
static void test_node_401_not_relayed(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int rogue = mock_node("401", NULL, 4, 1);
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_openai_error(&got, 502, "upstream_error");
    assert_generic_message(got.body);
    assert_null(strstr(got.body, "revoked"));
    assert_node(rogue, 0, 1, false);
    resp_free(&got);
    int good = mock_node("ok", NULL, 4, 50);
    proxied(plain_body, &got);
    assert_int_equal(got.status, 200);
    assert_node(rogue, 0, 2, false);
    assert_node(good, 1, 0, false);
    resp_free(&got);
}

/* only JSON and event streams are relayed: any other type is the node
 * failing (502), never text/html under the router's name */
static void test_foreign_type_not_relayed(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int odd = mock_node("html", NULL, 4, 1);
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_openai_error(&got, 502, "upstream_error");
    assert_string_equal(got.ctype, "application/json");
    assert_null(strstr(got.body, "<html>"));
    assert_node(odd, 0, 1, false);
    resp_free(&got);
}

/* ---- the observer ---- */

static bool observed_end(void *ud)
{
    rec_t *r = ud;
    pthread_mutex_lock(&r->mu);
    bool done = r->ends > 0;
    pthread_mutex_unlock(&r->mu);
    return done;
}

/* begin once, every byte the client got as chunks, end once with the node */
static void observe_one(const char *body, int node, int attempts)
{
    rec_t *r = &fx.rec;
    pthread_mutex_lock(&r->mu);
    r->begins = r->ends = r->retries = 0;
    r->seen_len = 0;
    pthread_mutex_unlock(&r->mu);
    resp_t got = { 0 };
    proxied(body, &got);
    assert_int_equal(got.status, 200);
    assert_true(wait_for(observed_end, r));
    pthread_mutex_lock(&r->mu);
    assert_int_equal(r->begins, 1);
    assert_string_equal(r->path, "/v1/chat/completions");
    assert_string_equal(r->model, "mock");
    assert_int_equal(r->body_len, strlen(body));
    assert_int_equal(r->ends, 1);
    assert_int_equal(r->foreign, 0);
    assert_int_equal(r->seen_len, got.len);
    assert_memory_equal(r->seen, got.body, got.len);
    assert_string_equal(r->end_node, fx.ids[node]);
    assert_int_equal(r->end_status, 200);
    assert_string_equal(r->end_error, "");
    assert_string_equal(r->error_type, "");
    assert_int_equal(r->attempts, attempts);
    assert_true(r->end_name[0] != '\0'); /* the node's machine name */
    assert_int_equal(r->sse, body == stream_body);
    assert_true(r->times_ordered);
    assert_true(r->upstream_us > 0);
    pthread_mutex_unlock(&r->mu);
    resp_free(&got);
}

static void test_observer(void **state)
{
    (void)state;
    router_start(&default_opts, true);
    int a = mock_node("ok", NULL, 4, 1);
    observe_one(plain_body, a, 1);
    observe_one(stream_body, a, 1);
    assert_node(a, 2, 0, false);
}

/* a held answer cut halfway is retried: the observer is told to drop what
 * it saw of the failed attempt, and ends up with exactly the client's bytes */
static void test_observer_retry(void **state)
{
    (void)state;
    router_start(&default_opts, true);
    int cut = mock_node("cut", NULL, 4, 1);
    int good = mock_node("ok", NULL, 4, 50);
    observe_one(plain_body, good, 2);
    assert_int_equal(fx.rec.retries, 1);
    assert_node(cut, 0, 1, false);
    assert_node(good, 1, 0, false);
}

/* A stream whose node sends its head and then fails before any event is
 * retried on another node: the client gets one head and the other node's
 * whole stream (the head waits for the first event). */
static void test_stream_head_then_cut_retried(void **state)
{
    (void)state;
    router_start(&default_opts, false);
    int cut = mock_node("cut", (const char *[]){ "MOCK_CUT_AFTER=0", NULL }, 4, 1);
    int good = mock_node("ok", NULL, 4, 50);
    resp_t want = { 0 }, got = { 0 };
    direct(good, stream_body, &want);
    proxied(stream_body, &got);
    assert_int_equal(got.rc, CURLE_OK);
    assert_int_equal(got.status, 200);
    assert_same_body(&got, &want);
    assert_node(cut, 0, 1, false);
    assert_node(good, 1, 0, false);
    resp_free(&want);
    resp_free(&got);
}

/* an error ending is observed too, once, with the reason */
static void test_observer_error(void **state)
{
    (void)state;
    router_start(&default_opts, true);
    int a = mock_node("500", NULL, 4, 1);
    resp_t got = { 0 };
    proxied(plain_body, &got);
    assert_int_equal(got.status, 502);
    assert_true(wait_for(observed_end, &fx.rec));
    pthread_mutex_lock(&fx.rec.mu);
    assert_int_equal(fx.rec.begins, 1);
    assert_int_equal(fx.rec.ends, 1);
    assert_int_equal(fx.rec.foreign, 0);
    assert_non_null(strstr(fx.rec.end_error, "answered 500"));
    assert_string_equal(fx.rec.end_node, fx.ids[a]); /* the node that failed it */
    assert_int_equal(fx.rec.end_status, 502);         /* what the client got */
    assert_string_equal(fx.rec.error_type, "upstream_error");
    assert_int_equal(fx.rec.attempts, 1);
    assert_true(fx.rec.times_ordered);
    pthread_mutex_unlock(&fx.rec.mu);
    assert_node(a, 0, 1, false);
    resp_free(&got);
}

/* a request no node can take is observed too: its status and error code,
 * no node, no attempt */
static void test_observer_no_node(void **state)
{
    (void)state;
    router_start(&default_opts, true);
    mock_node("ok", NULL, 4, 1);
    resp_t got = { 0 };
    proxied("{\"model\":\"nope\"}", &got);
    assert_int_equal(got.status, 404);
    assert_true(wait_for(observed_end, &fx.rec));
    pthread_mutex_lock(&fx.rec.mu);
    assert_int_equal(fx.rec.ends, 1);
    assert_int_equal(fx.rec.end_status, 404);
    assert_string_equal(fx.rec.error_type, "model_not_found");
    assert_int_equal(fx.rec.attempts, 0);
    assert_string_equal(fx.rec.end_node, "");
    assert_true(fx.rec.times_ordered);
    pthread_mutex_unlock(&fx.rec.mu);
    resp_free(&got);
}

static int group_setup(void **state)
{
    (void)state;
    cm_util_init();
    cm_log_set_level(CM_LOG_ERROR); /* the failures here are on purpose */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&fx.rec.mu, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pthread_mutex_destroy(&fx.rec.mu);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ok_plain, teardown),
        cmocka_unit_test_teardown(test_ok_stream, teardown),
        cmocka_unit_test_teardown(test_retry_after_500, teardown),
        cmocka_unit_test_teardown(test_retry_after_refused, teardown),
        cmocka_unit_test_teardown(test_retry_after_cut_held_answer, teardown),
        cmocka_unit_test_teardown(test_all_fail_502, teardown),
        cmocka_unit_test_teardown(test_retries_spent_relay_5xx, teardown),
        cmocka_unit_test_teardown(test_all_suspended_503, teardown),
        cmocka_unit_test_teardown(test_idle_timeout_504, teardown),
        cmocka_unit_test_teardown(test_hold_to_stream, teardown),
        cmocka_unit_test_teardown(test_big_cut_aborts, teardown),
        cmocka_unit_test_teardown(test_stream_cut, teardown),
        cmocka_unit_test_teardown(test_client_disconnect, teardown),
        cmocka_unit_test_teardown(test_unknown_model_404, teardown),
        cmocka_unit_test_teardown(test_queue_waits_for_slot, teardown),
        cmocka_unit_test_teardown(test_queue_timeout_503, teardown),
        cmocka_unit_test_teardown(test_observer, teardown),
        cmocka_unit_test_teardown(test_observer_error, teardown),
        cmocka_unit_test_teardown(test_observer_no_node, teardown),
        cmocka_unit_test_teardown(test_observer_retry, teardown),
        cmocka_unit_test_teardown(test_stream_head_then_cut_retried, teardown),
        cmocka_unit_test_teardown(test_head_timeout_retried, teardown),
        cmocka_unit_test_teardown(test_stream_idle_error, teardown),
        cmocka_unit_test_teardown(test_offline_node_retried, teardown),
        cmocka_unit_test_teardown(test_offline_node_ends_stream, teardown),
        cmocka_unit_test_teardown(test_node_401_not_relayed, teardown),
        cmocka_unit_test_teardown(test_foreign_type_not_relayed, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
