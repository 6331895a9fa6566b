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
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/admission.h"
#include "core/proxy.h"
#include "core/registry.h"
#include "http_server.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_NODES 3
#define WAIT_MS 5000 /* the longest any condition is waited for */

static const char plain_body[] = "{\"model\":\"mock\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char stream_body[] =
    "{\"model\":\"mock\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
/* one event of the mock's stream (bench/router/mock_node.c) */
static const char mock_chunk[] =
    "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},"
    "\"finish_reason\":null}]}\n\n";

/* ---- mock nodes ---- */

typedef struct {
    pid_t pid;
    int port;
} mock_t;

/* Starts mock_node with the extra environment (NULL-terminated "K=V" list)
 * and reads its port from "MOCK_LISTENING port=N". The child dies with us. */
static mock_t mock_start(const char *const *extra)
{
    mock_t m = { -1, 0 };
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    size_t nx = 0;
    while (extra && extra[nx])
        nx++;
    char **envp = cm_xcalloc(n + nx + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "MOCK_", 5) != 0) /* only what the test says */
            envp[k++] = environ[i];
    for (size_t i = 0; i < nx; i++)
        envp[k++] = (char *)extra[i];
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* only async-signal-safe calls until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], STDOUT_FILENO);
        char *argv[] = { "mock_node", NULL };
        execve(MOCK_NODE_PATH, argv, envp);
        _exit(127);
    }
    free(envp);
    close(pfd[1]);
    char line[128];
    size_t len = 0;
    uint64_t deadline = cm_now_ms() + WAIT_MS * 2; /* a sanitizer build starts slowly */
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len) && cm_now_ms() < deadline) {
        struct pollfd p = { pfd[0], POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(pfd[0], line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(pfd[0]);
    line[len] = '\0';
    m.pid = pid;
    assert_int_equal(sscanf(line, "MOCK_LISTENING port=%d", &m.port), 1);
    return m;
}

static void mock_stop(mock_t *m)
{
    if (m->pid <= 0)
        return;
    kill(m->pid, SIGKILL);
    waitpid(m->pid, NULL, 0);
    m->pid = -1;
}

/* A port nothing listens on (bound, then closed: refused when connected). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the client ---- */

typedef struct {
    long status;
    CURLcode rc;
    char *body;
    size_t len, cap;
    char ctype[128];
    char retry_after[32];
    size_t abort_after; /* > 0: leave once this many body bytes arrived */
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n;
    cm_xgrow(&r->body, &r->cap, r->len + len + 1, 4096);
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return r->abort_after && r->len >= r->abort_after ? 0 : len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n;
    static const char ra[] = "Retry-After:";
    if (len > sizeof(ra) && strncasecmp(p, ra, sizeof(ra) - 1) == 0)
        snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)strcspn(p + sizeof(ra), "\r\n"),
                 p + sizeof(ra));
    return len;
}

/* body NULL: GET. Blocking, with timeouts; r is filled (r->body freed by
 * resp_free). */
static void http(int port, const char *path, const char *body, resp_t *r)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WAIT_MS * 2);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (body) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    const char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void resp_free(resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* The mock's request counters (GET /mock/stats). */
typedef struct {
    int requests, active, max_active;
} stats_t;

static stats_t mock_stats(const mock_t *m)
{
    resp_t r = { 0 };
    http(m->port, "/mock/stats", NULL, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cm_json_parse(r.body, r.len);
    assert_non_null(j);
    stats_t s = { 0 };
    long long v;
    assert_int_equal(cm_json_int(j, "requests", &v), CM_JSON_OK);
    s.requests = (int)v;
    assert_int_equal(cm_json_int(j, "active", &v), CM_JSON_OK);
    s.active = (int)v;
    assert_int_equal(cm_json_int(j, "max_active", &v), CM_JSON_OK);
    s.max_active = (int)v;
    cJSON_Delete(j);
    resp_free(&r);
    return s;
}

/* waits until the mock has no request left open (it saw its end or close) */
static stats_t mock_settled(const mock_t *m)
{
    uint64_t deadline = cm_now_ms() + WAIT_MS;
    stats_t s = mock_stats(m);
    while (s.active != 0 && cm_now_ms() < deadline) {
        usleep(5000);
        s = mock_stats(m);
    }
    return s;
}

static void assert_openai_error(const resp_t *r, long status, const char *code)
{
    assert_int_equal(r->status, status);
    cJSON *j = cm_json_parse(r->body, r->len);
    assert_non_null(j);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    const char *s;
    assert_int_equal(cm_json_str(e, "message", &s), CM_JSON_OK);
    assert_int_equal(cm_json_str(e, "type", &s), CM_JSON_OK);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(e, "param"));
    assert_int_equal(cm_json_str(e, "code", &s), CM_JSON_OK);
    assert_string_equal(s, code);
    cJSON_Delete(j);
}

/* What a client is told of a failed node: a generic message with the request
 * id, never a node id or an address (those go to the log). */
static void assert_generic_message(const char *text)
{
    assert_non_null(strstr(text, "The node serving this request"));
    assert_non_null(strstr(text, "(request id "));
    assert_null(strstr(text, "id-0")); /* node ids (node_add names them id-N) */
    assert_null(strstr(text, "id-1"));
    assert_null(strstr(text, "127.0.0.1"));
    assert_null(strstr(text, "answered")); /* the detail of what the node did */
    assert_null(strstr(text, "connect"));
}

/* ---- the observer ---- */

/* What the observer saw, recorded on the loop thread and checked on the
 * test thread (cmocka's assertions must not run on another thread). */
typedef struct {
    pthread_mutex_t mu;
    int begins, ends, end_status, foreign; /* foreign: calls with another cookie */
    char path[64], model[64];
    size_t body_len;
    char *seen; /* the chunks, concatenated */
    size_t seen_len, seen_cap;
    char end_node[RT_NODE_ID_MAX];
    char end_error[160];
    int retries;
} rec_t;

static void *obs_begin(void *ud, const char *req_id, const char *path, const char *model,
                       const char *body, size_t len)
{
    rec_t *r = ud;
    (void)req_id;
    (void)body;
    pthread_mutex_lock(&r->mu);
    r->begins++;
    snprintf(r->path, sizeof(r->path), "%s", path);
    snprintf(r->model, sizeof(r->model), "%s", model);
    r->body_len = len;
    pthread_mutex_unlock(&r->mu);
    return r;
}

static void obs_chunk(void *ud, void *cookie, const char *data, size_t len)
{
    rec_t *r = ud;
    pthread_mutex_lock(&r->mu);
    r->foreign += cookie != r;
    cm_xgrow(&r->seen, &r->seen_cap, r->seen_len + len, 4096);
    memcpy(r->seen + r->seen_len, data, len);
    r->seen_len += len;
    pthread_mutex_unlock(&r->mu);
}

/* the attempt seen so far was discarded: so are its chunks */
static void obs_retry(void *ud, void *cookie)
{
    rec_t *r = ud;
    pthread_mutex_lock(&r->mu);
    r->foreign += cookie != r;
    r->retries++;
    r->seen_len = 0;
    pthread_mutex_unlock(&r->mu);
}

static void obs_end(void *ud, void *cookie, const char *node_id, int status, const char *error)
{
    rec_t *r = ud;
    pthread_mutex_lock(&r->mu);
    r->foreign += cookie != r;
    r->ends++;
    r->end_status = status;
    snprintf(r->end_node, sizeof(r->end_node), "%s", node_id ? node_id : "");
    snprintf(r->end_error, sizeof(r->end_error), "%s", error ? error : "");
    pthread_mutex_unlock(&r->mu);
}

/* ---- the router under test ---- */

typedef struct {
    rt_registry_t *reg;
    rt_admission_t *adm;
    rt_proxy_t *proxy;
    cm_http_server_t *srv;
    int port;
    mock_t mocks[MAX_NODES];
    char ids[MAX_NODES][RT_NODE_ID_MAX];
    int nnodes;
    rec_t rec;
} fx_t;

static fx_t fx;

static void h_chat(cm_http_req_t *req, void *ud)
{
    fx_t *f = ud;
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    cJSON *j = cm_json_parse(body, len);
    const char *model = "";
    if (j)
        cm_json_str(j, "model", &model);
    rt_proxy_forward(f->proxy, req, "/v1/chat/completions", model, body, len);
    cJSON_Delete(j);
}

static const cm_http_route_t routes[] = {
    { "POST", "/v1/chat/completions", h_chat, 0 },
};

static void worker_start(struct event_base *base, int worker, void *ud)
{
    rt_proxy_worker_start(((fx_t *)ud)->proxy, base, worker);
}

static void worker_stop(struct event_base *base, int worker, void *ud)
{
    (void)base;
    rt_proxy_worker_stop(((fx_t *)ud)->proxy, worker);
}

static void capacity_grew(void *ud)
{
    rt_admission_kick(ud);
}

static const rt_proxy_opts_t default_opts = {
    .retries = 2, .queue_timeout_ms = 3000, .suspend_ms = 30000, .idle_timeout_s = 5, .workers = 1,
};

/* The router around the proxy, as server.c wires it; observe: the recorder
 * watches every request. */
static void router_start(const rt_proxy_opts_t *po, bool observe)
{
    rt_registry_opts_t ro = { .mode = RT_LB_METRICS, .default_slots = 4, .history_max = 4 };
    fx.reg = rt_registry_new(&ro);
    fx.adm = rt_admission_new(16, rt_proxy_try_slot, fx.reg);
    rt_registry_set_capacity_hook(fx.reg, capacity_grew, fx.adm);
    fx.proxy = rt_proxy_new(po, fx.reg, fx.adm);
    if (observe) {
        rt_proxy_observer_t o = { .begin = obs_begin, .chunk = obs_chunk, .retry = obs_retry, .end = obs_end, .ud = &fx.rec };
        rt_proxy_set_observer(fx.proxy, &o);
    }
    cm_http_server_opts_t so = {
        .host = "127.0.0.1", .port = 0, .workers = 1, .max_body = 1 << 20, .max_headers = 65536,
        .timeout_secs = 30, .routes = routes, .nroutes = CM_ARRAY_LEN(routes),
        .worker_start = worker_start, .worker_stop = worker_stop, .ud = &fx,
    };
    char err[256];
    assert_int_equal(cm_http_server_start(&so, &fx.srv, err, sizeof(err)), 0);
    fx.port = cm_http_server_port(fx.srv);
}

/* A node serving "mock" on port (its mock, if any, already in fx.mocks[i]).
 * The metrics balancer prefers the lowest cpu: tests order their nodes with
 * it. Returns the node's index. */
static int node_add(int port, int slots, double cpu)
{
    int i = fx.nnodes++;
    char machine[32], id[RT_NODE_ID_MAX];
    snprintf(machine, sizeof(machine), "node-%d", i);
    snprintf(id, sizeof(id), "id-%d", i);
    const char *models[] = { "mock" };
    rt_node_info_t info = {
        .id = id, .machine_name = machine, .ip_address = "127.0.0.1", .runtime_port = port,
        .api_port = port, .models = models, .nmodels = 1, .total_slots = slots,
    };
    bool created;
    assert_int_equal(rt_registry_register(fx.reg, &info, fx.ids[i], &created), 0);
    assert_true(created);
    rt_node_metrics_t m = { .cpu = cpu, .mem = 0, .gpu = -1, .gpu_mem = -1, .total_slots = slots };
    assert_int_equal(rt_registry_heartbeat(fx.reg, fx.ids[i], &m), 0);
    return i;
}

/* A mock in the given mode (extra: more "K=V", NULL-terminated, or NULL)
 * registered as a node. */
static int mock_node(const char *mode, const char *const *extra, int slots, double cpu)
{
    char mode_env[32];
    snprintf(mode_env, sizeof(mode_env), "MOCK_MODE=%s", mode);
    const char *env[8] = { mode_env };
    for (size_t i = 0; extra && extra[i] && i < 6; i++)
        env[i + 1] = extra[i];
    mock_t m = mock_start(env);
    fx.mocks[fx.nnodes] = m;
    return node_add(m.port, slots, cpu);
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(fx.srv);
    rt_proxy_free(fx.proxy);
    rt_admission_free(fx.adm);
    rt_registry_free(fx.reg);
    for (int i = 0; i < MAX_NODES; i++)
        mock_stop(&fx.mocks[i]);
    free(fx.rec.seen);
    pthread_mutex_destroy(&fx.rec.mu);
    memset(&fx, 0, sizeof(fx));
    pthread_mutex_init(&fx.rec.mu, NULL);
    return 0;
}

/* One node's view, after every in-flight count went back to 0. */
static rt_node_view_t settled(int i)
{
    rt_node_view_t *v = NULL;
    size_t n = 0;
    uint64_t deadline = cm_now_ms() + WAIT_MS;
    for (;;) {
        n = rt_registry_snapshot(fx.reg, false, &v);
        bool idle = true;
        for (size_t k = 0; k < n; k++)
            idle = idle && v[k].inflight == 0;
        if (idle || cm_now_ms() > deadline)
            break;
        rt_registry_views_free(v, n);
        usleep(2000);
    }
    assert_int_equal(n, (size_t)fx.nnodes);
    rt_node_view_t one = { 0 };
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(v[k].inflight, 0);
        assert_int_equal(v[k].total, v[k].ok + v[k].failed);
        if (strcmp(v[k].id, fx.ids[i]) == 0) { /* moved out: views_free skips it */
            one = v[k];
            memset(&v[k], 0, sizeof(v[k]));
        }
    }
    rt_registry_views_free(v, n);
    return one;
}

/* node i settled with these counts */
static void assert_node(int i, uint64_t ok, uint64_t failed, bool suspended)
{
    rt_node_view_t v = settled(i);
    assert_int_equal(v.ok, ok);
    assert_int_equal(v.failed, failed);
    assert_int_equal(v.total, ok + failed);
    assert_int_equal(v.suspended, suspended);
    rt_registry_view_clear(&v);
}

static void proxied(const char *body, resp_t *r)
{
    http(fx.port, "/v1/chat/completions", body, r);
}

/* the same request straight to node i's mock: what the proxy must relay */
static void direct(int i, const char *body, resp_t *r)
{
    http(fx.mocks[i].port, "/v1/chat/completions", body, r);
    assert_int_equal(r->rc, CURLE_OK);
    assert_int_equal(r->status, 200);
}

static void assert_same_body(const resp_t *a, const resp_t *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->body, b->body, a->len);
}

/* ---- answers ---- */

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
static void observe_one(const char *body, int node)
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
    pthread_mutex_unlock(&r->mu);
    resp_free(&got);
}

static void test_observer(void **state)
{
    (void)state;
    router_start(&default_opts, true);
    int a = mock_node("ok", NULL, 4, 1);
    observe_one(plain_body, a);
    observe_one(stream_body, a);
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
    observe_one(plain_body, good);
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
    pthread_mutex_unlock(&fx.rec.mu);
    assert_node(a, 0, 1, false);
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
