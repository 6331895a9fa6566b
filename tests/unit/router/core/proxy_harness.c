/* proxy_harness.c: see proxy_harness.h. */
#include "proxy_harness.h"

extern char **environ;

/* ---- mock nodes ---- */


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
int closed_port(void)
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

void resp_free(resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* The mock's request counters (GET /mock/stats). */

stats_t mock_stats(const mock_t *m)
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
stats_t mock_settled(const mock_t *m)
{
    uint64_t deadline = cm_now_ms() + WAIT_MS;
    stats_t s = mock_stats(m);
    while (s.active != 0 && cm_now_ms() < deadline) {
        usleep(5000);
        s = mock_stats(m);
    }
    return s;
}

void assert_openai_error(const resp_t *r, long status, const char *code)
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
void assert_generic_message(const char *text)
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

static void *obs_begin(void *ud, cm_http_req_t *req, const char *path, const char *model,
                       const char *body, size_t len)
{
    rec_t *r = ud;
    (void)req;
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

static void obs_end(void *ud, void *cookie, const rt_proxy_result_t *res)
{
    rec_t *r = ud;
    pthread_mutex_lock(&r->mu);
    r->foreign += cookie != r;
    r->ends++;
    r->end_status = res->status;
    snprintf(r->end_node, sizeof(r->end_node), "%s", res->node_id ? res->node_id : "");
    snprintf(r->end_error, sizeof(r->end_error), "%s", res->error ? res->error : "");
    snprintf(r->end_name, sizeof(r->end_name), "%s", res->node_name ? res->node_name : "");
    snprintf(r->error_type, sizeof(r->error_type), "%s", res->error_type ? res->error_type : "");
    r->attempts = res->attempts;
    r->sse = res->sse;
    r->upstream_us = res->upstream_us;
    r->times_ordered = res->start_us > 0 && res->first_byte_us >= res->start_us && res->end_us >= res->first_byte_us &&
                       res->queue_us + res->upstream_us <= res->end_us - res->start_us;
    pthread_mutex_unlock(&r->mu);
}

/* ---- the router under test ---- */


fx_t fx;

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

const rt_proxy_opts_t default_opts = {
    .retries = 2, .queue_timeout_ms = 3000, .suspend_ms = 30000, .idle_timeout_s = 5, .workers = 1,
};

/* The router around the proxy, as server.c wires it; observe: the recorder
 * watches every request. */
void router_start(const rt_proxy_opts_t *po, bool observe)
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
int node_add(int port, int slots, double cpu)
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
int mock_node(const char *mode, const char *const *extra, int slots, double cpu)
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

int teardown(void **state)
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
void assert_node(int i, uint64_t ok, uint64_t failed, bool suspended)
{
    rt_node_view_t v = settled(i);
    assert_int_equal(v.ok, ok);
    assert_int_equal(v.failed, failed);
    assert_int_equal(v.total, ok + failed);
    assert_int_equal(v.suspended, suspended);
    rt_registry_view_clear(&v);
}

void proxied(const char *body, resp_t *r)
{
    http(fx.port, "/v1/chat/completions", body, r);
}

/* the same request straight to node i's mock: what the proxy must relay */
void direct(int i, const char *body, resp_t *r)
{
    http(fx.mocks[i].port, "/v1/chat/completions", body, r);
    assert_int_equal(r->rc, CURLE_OK);
    assert_int_equal(r->status, 200);
}

void assert_same_body(const resp_t *a, const resp_t *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->body, b->body, a->len);
}

/* ---- answers ---- */

