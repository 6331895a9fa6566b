/* server: the one assembler. Builds the router from its typed configuration,
 * in order (store, auth, registry, admission, nodes service, proxy, the
 * offload pool; health on worker 0's loop), wires the modules to each other,
 * and runs the HTTP workers. No other module creates another. */
#include "router.h"

#include "auth/auth.h"
#include "core/admission.h"
#include "core/cloud_proxy.h"
#include "core/health.h"
#include "core/nodes.h"
#include "core/proxy.h"
#include "core/metrics.h"
#include "core/recorder.h"
#include "core/registry.h"
#include "api/handlers.h"
#include "log.h"
#include "models/downloads.h"
#include "models/models.h"
#include "offload.h"
#include "store/history.h"
#include "store/store.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEARTBEAT_HISTORY 120 /* heartbeat samples kept per node for the dashboard */

static cm_http_server_t *g_srv; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    if (g_srv)
        cm_http_server_request_stop(g_srv);
}

void rt_h_health(cm_http_req_t *req, void *ud)
{
    (void)ud;
    static const char ok[] = "{\"status\":\"ok\"}";
    cm_http_reply(req, 200, "application/json", ok, sizeof(ok) - 1);
}

/* The worker count the server will run: LLM_ROUTER_WORKERS, or one per core. */
static int worker_count(const rt_config_t *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The registry's capacity hook: a slot was released or a node came (back). */
static void capacity_grew(void *ud)
{
    rt_admission_kick(ud);
}

static int build_request_path(rt_router_t *rt)
{
    const rt_config_t *c = &rt->cfg;
    rt_registry_opts_t ro = {
        .mode = (rt_lb_mode_t)rt_lb_mode_parse(c->load_balancer_mode),
        .default_slots = c->default_node_slots,
        .history_max = HEARTBEAT_HISTORY,
    };
    rt->registry = rt_registry_new(&ro);
    rt->admission = rt_admission_new((size_t)c->max_waiters, rt_proxy_try_slot, rt->registry);
    rt_registry_set_capacity_hook(rt->registry, capacity_grew, rt->admission);
    rt_nodes_opts_t no = {
        .require_gpu = c->require_gpu,
        .data_dir = rt->data_dir,
        .trust_address = c->trust_node_address,
        .expire_s = (unsigned)c->node_expire_s,
        .register_per_min = (unsigned)c->register_rate_per_min,
    };
    rt->nodes = rt_nodes_new(rt->registry, rt->store, rt->auth, &no);
    if (!rt->nodes)
        return -1;
    rt_nodes_load(rt->nodes);
    rt_proxy_opts_t po = {
        .retries = c->max_retries,
        .queue_timeout_ms = (unsigned)c->queue_timeout_s * 1000u,
        .suspend_ms = (unsigned)c->node_suspend_s * 1000u,
        .head_timeout_s = c->node_header_timeout_s,
        .idle_timeout_s = c->stream_idle_timeout_s,
        .workers = worker_count(c),
    };
    rt->proxy = rt_proxy_new(&po, rt->registry, rt->admission);
    return 0;
}

/* The metrics, the history store (unless LLM_ROUTER_HISTORY=0) and the
 * recorder that feeds both, as the proxy's observer. */
static int build_recording(rt_router_t *rt, char *err, size_t errlen)
{
    const rt_config_t *c = &rt->cfg;
    rt->metrics = rt_metrics_new();
    if (c->history && rt_history_open(c->history_path, &rt->history, err, errlen) != 0)
        return -1;
    rt_recorder_opts_t ro = {
        .bodies = c->history_bodies,
        .max_body = (size_t)c->history_max_body_bytes,
        .queue_max = (size_t)c->history_queue,
        .retention_days = c->log_retention_days,
    };
    rt->recorder = rt_recorder_new(&ro, rt->history, rt->metrics);
    rt_proxy_observer_t obs;
    rt_recorder_observer(rt->recorder, &obs);
    rt_proxy_set_observer(rt->proxy, &obs);
    return 0;
}

/* The cloud prefixes' upstream, observed by the recorder as the proxy is. */
static void build_cloud(rt_router_t *rt)
{
    const rt_config_t *c = &rt->cfg;
    rt_cloud_opts_t co = {
        .key = { [RT_CLOUD_OPENAI] = c->openai_api_key, [RT_CLOUD_ANTHROPIC] = c->anthropic_api_key,
                 [RT_CLOUD_GOOGLE] = c->google_api_key },
        .key_var = { [RT_CLOUD_OPENAI] = "OPENAI_API_KEY", [RT_CLOUD_ANTHROPIC] = "ANTHROPIC_API_KEY",
                     [RT_CLOUD_GOOGLE] = "GOOGLE_API_KEY" },
        .base_url = { [RT_CLOUD_OPENAI] = c->openai_base_url, [RT_CLOUD_ANTHROPIC] = c->anthropic_base_url,
                      [RT_CLOUD_GOOGLE] = c->google_base_url },
        .ca_bundle = c->ca_bundle,
        .models = c->cloud_models,
        .retries = c->cloud_retries,
        .head_timeout_s = c->cloud_header_timeout_s,
        .idle_timeout_s = c->cloud_idle_timeout_s,
        .anthropic_max_tokens = c->anthropic_max_tokens,
        .anthropic_version = c->anthropic_version,
        .workers = worker_count(c),
    };
    rt->cloud = rt_cloud_new(&co, rt->metrics);
    rt_proxy_observer_t obs;
    rt_recorder_observer(rt->recorder, &obs);
    rt_cloud_set_observer(rt->cloud, &obs);
}

/* The model catalogue and its download and conversion tasks. */
static int build_models(rt_router_t *rt, char *err, size_t errlen)
{
    const rt_config_t *c = &rt->cfg;
    rt_models_opts_t mo = { .dir = c->models_dir };
    rt->models = rt_models_new(&mo, rt->store, err, errlen);
    if (!rt->models)
        return -1;
    rt_downloads_opts_t dopt = {
        .hf_base_url = c->hf_base_url,
        .hf_token = c->hf_token,
        .concurrency = c->model_downloads,
        .converter = c->converter,
        .convert_timeout_s = c->convert_timeout_s,
        .ca_bundle = c->ca_bundle,
    };
    rt->downloads = rt_downloads_new(&dopt, rt->models, rt->store);
    return rt->downloads ? 0 : -1;
}

/* The data directory's lock (cm_lock_file), held from rt_router_new to
 * rt_router_free. A static, not a field of rt_router_t: there is one router
 * per process, and a second rt_router_new on the same directory must fail
 * like a second process would. -1: not held. */
static int g_lock_fd = -1;
static const rt_router_t *g_lock_owner;

int rt_router_new(const rt_config_t *cfg, cm_config_t *loaded, rt_router_t **out, char *err, size_t errlen)
{
    rt_router_t *rt = cm_xcalloc(1, sizeof(*rt));
    rt->cfg = *cfg;
    rt->started_wall_ms = cm_wall_ms();
    rt->loaded = loaded;
    rt->data_dir = cm_xstrdup(cfg->data_dir);
    if (cm_mkdir_p(rt->data_dir, 0700) != 0) {
        snprintf(err, errlen, "LLM_ROUTER_DATA_DIR: cannot create %s", rt->data_dir);
        rt_router_free(rt);
        return -1;
    }
    /* before the store opens: two routers on one directory would share the
     * database, the secrets and the log files without knowing it. The CLI
     * does not take it (it works beside a running router). */
    char *lock = cm_xasprintf("%s/router.lock", rt->data_dir);
    int lfd = cm_lock_file(lock, "llm-router", err, errlen);
    free(lock);
    if (lfd < 0) {
        rt_router_free(rt);
        return -1;
    }
    g_lock_fd = lfd;
    g_lock_owner = rt;
    if (rt_store_open(cfg->database_url, &rt->store, err, errlen) != 0 ||
        rt_auth_new(&rt->cfg, rt->data_dir, rt->store, &rt->auth, err, errlen) != 0) {
        rt_router_free(rt);
        return -1;
    }
    if (build_request_path(rt) != 0) {
        snprintf(err, errlen, "cannot read or create the node secret key in %s", rt->data_dir);
        rt_router_free(rt);
        return -1;
    }
    if (build_recording(rt, err, errlen) != 0) {
        rt_router_free(rt);
        return -1;
    }
    build_cloud(rt);
    if (build_models(rt, err, errlen) != 0) {
        if (!*err)
            snprintf(err, errlen, "cannot start the model tasks");
        rt_router_free(rt);
        return -1;
    }
    rt->offload = cm_offload_new(RT_OFFLOAD_THREADS, RT_OFFLOAD_QUEUED);
    if (!rt->offload) {
        snprintf(err, errlen, "cannot start the offload threads");
        rt_router_free(rt);
        return -1;
    }
    rt_cloud_set_offload(rt->cloud, rt->offload); /* large cloud answers are translated there */
    *out = rt;
    return 0;
}

static void node_went_offline(void *ud, const char *node_id)
{
    rt_proxy_node_offline(ud, node_id);
}

#define TRIM_INTERVAL_S 5

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    rt_router_t *rt = arg;
    (void)fd;
    (void)what;
    rt->trim();
}

static void worker_start(struct event_base *base, int worker, void *ud)
{
    rt_router_t *rt = ud;
    rt_proxy_worker_start(rt->proxy, base, worker);
    rt_cloud_worker_start(rt->cloud, base, worker);
    if (rt->trim && rt->trim_ev) {
        rt->trim_ev[worker] = event_new(base, -1, EV_PERSIST, on_trim, rt);
        struct timeval tv = { TRIM_INTERVAL_S, 0 };
        if (rt->trim_ev[worker])
            event_add(rt->trim_ev[worker], &tv);
    }
    if (worker == 0)
        rt_nodes_start(rt->nodes, base); /* node expiry */
    if (worker == 0)
        rt->health = rt_health_start(base, rt->registry, rt->admission, (unsigned)rt->cfg.health_check_interval_s * 1000u,
                                     (unsigned)rt->cfg.node_timeout_s * 1000u, rt->cfg.skip_health_check);
    if (worker == 0) /* a node gone offline fails its unanswered requests at once */
        rt_health_on_offline(rt->health, node_went_offline, rt->proxy);
}

static void worker_stop(struct event_base *base, int worker, void *ud)
{
    rt_router_t *rt = ud;
    (void)base;
    if (rt->trim_ev && rt->trim_ev[worker]) {
        event_free(rt->trim_ev[worker]);
        rt->trim_ev[worker] = NULL;
    }
    if (worker == 0) {
        rt_nodes_stop(rt->nodes);
        rt_health_stop(rt->health);
        rt->health = NULL;
    }
    rt_cloud_worker_stop(rt->cloud, worker);
    rt_proxy_worker_stop(rt->proxy, worker);
}

/* The server's pre hook: the route's policy, checked by auth. */
static bool pre_hook(cm_http_req_t *req, const cm_http_route_t *route, void *ud)
{
    return rt_auth_pre(((rt_router_t *)ud)->auth, req, route);
}

/* The port's lock: SO_REUSEPORT (one socket per worker) would also let a
 * second llm-router of the same user join the port (one with another data
 * directory, whose lock does not meet ours), and the kernel would split the
 * connections between two routers with separate state. So a fixed port is
 * taken under a lock named after it, before binding. Port 0 needs none: the
 * kernel hands out a port no other process holds. A lock file another user
 * owns cannot be opened: that user's router could not share our port anyway
 * (the kernel only lets sockets of one user share a port), so it is skipped.
 * Returns the descriptor (kept until exit), -2 when skipped, -1 with err. */
static int port_lock(int port, char *err, size_t errlen)
{
    if (port == 0)
        return -2;
    char path[64], what[32];
    snprintf(path, sizeof(path), "/tmp/llm-router.port-%d.lock", port);
    snprintf(what, sizeof(what), "port %d", port);
    int fd = cm_lock_file_for(path, "llm-router", what, err, errlen);
    if (fd < 0 && access(path, R_OK | W_OK) != 0 && errno == EACCES)
        return -2;
    return fd;
}

int rt_router_run(rt_router_t *rt)
{
    char err[256];
    int workers = worker_count(&rt->cfg);
    cm_http_server_opts_t o = {
        .host = rt->cfg.host,
        .port = rt->cfg.port,
        .workers = workers,
        .max_body = (size_t)rt->cfg.max_body_bytes,
        .max_headers = 64 * 1024,
        .timeout_secs = rt->cfg.request_timeout_s,
        .read_timeout_secs = rt->cfg.request_read_timeout_s,
        .header_timeout_secs = rt->cfg.client_header_timeout_s,
        .keepalive_timeout_secs = rt->cfg.keepalive_timeout_s,
        .body_budget = (size_t)rt->cfg.body_budget_bytes,
        .max_conns_per_ip = rt->cfg.max_conns_per_ip,
        .routes = rt_routes,
        .route_max_body = rt_route_max_body, /* routes.c's body limit column */
        .nroutes = rt_routes_count,
        .pre = pre_hook, /* enforces the policy column of routes.c */
        .worker_start = worker_start,
        .worker_stop = worker_stop,
        .ud = rt,
    };
    if (rt->trim && !rt->trim_ev)
        rt->trim_ev = cm_xcalloc((size_t)workers, sizeof(*rt->trim_ev));
    if (rt->trim) /* the pool's threads parse large bodies: they collect too */
        cm_offload_set_idle(rt->offload, rt->trim, TRIM_INTERVAL_S * 1000u);
    int plock = port_lock(o.port, err, sizeof(err));
    if (plock == -1) {
        LOG_ERROR("router", "%s", err);
        return 1;
    }
    if (cm_http_server_start(&o, &rt->http, err, sizeof(err)) != 0) {
        LOG_ERROR("router", "%s", err);
        if (plock >= 0)
            close(plock);
        return 1;
    }
    g_srv = rt->http;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    LOG_INFO("router", "listening on %s:%d with %d workers", o.host, cm_http_server_port(rt->http), workers);
    /* machine-readable line for scripts and tests that asked for port 0; the
     * log lines before it reach stderr first */
    cm_log_flush();
    printf("LLM_ROUTER_LISTENING port=%d\n", cm_http_server_port(rt->http));
    fflush(stdout);
    cm_http_server_wait(rt->http);
    rt_history_exports_stop();
    LOG_INFO("router", "stopped");
    if (plock >= 0)
        close(plock);
    return 0;
}

void rt_router_free(rt_router_t *rt)
{
    if (!rt)
        return;
    /* after the loops stopped, before their bases go: queued jobs are
     * cancelled, running ones finish, and nothing posts to a loop after */
    cm_offload_free(rt->offload);
    cm_http_server_free(rt->http);
    /* the reverse of the build order */
    rt_downloads_free(rt->downloads); /* its threads may still add to the catalogue */
    rt_models_free(rt->models);
    rt_cloud_free(rt->cloud);
    rt_proxy_free(rt->proxy);
    rt_recorder_free(rt->recorder); /* after the proxy: no request can end any more */
    rt_history_close(rt->history);
    rt_metrics_free(rt->metrics);
    rt_nodes_free(rt->nodes);
    rt_admission_free(rt->admission);
    rt_registry_free(rt->registry);
    rt_auth_free(rt->auth);
    rt_store_close(rt->store); /* drains the writer queue */
    cm_config_free(rt->loaded);
    if (g_lock_owner == rt) { /* after everything that used the directory is closed */
        close(g_lock_fd);
        g_lock_fd = -1;
        g_lock_owner = NULL;
    }
    free(rt->trim_ev);
    free(rt->data_dir);
    free(rt);
}
