/* server: builds the router context and runs the HTTP workers. */
#include "router.h"

#include "auth/auth.h"
#include "api/handlers.h"
#include "log.h"
#include "core/proxy.h"
#include "store/store.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int rt_router_new(const rt_config_t *cfg, cm_config_t *loaded, rt_router_t **out, char *err, size_t errlen)
{
    rt_router_t *rt = cm_xcalloc(1, sizeof(*rt));
    rt->cfg = *cfg;
    rt->loaded = loaded;
    rt->data_dir = cm_xstrdup(cfg->data_dir);
    if (cm_mkdir_p(rt->data_dir, 0700) != 0) {
        snprintf(err, errlen, "LLM_ROUTER_DATA_DIR: cannot create %s", rt->data_dir);
        rt_router_free(rt);
        return -1;
    }
    if (rt_store_open(cfg->database_url, &rt->store, err, errlen) != 0 ||
        rt_auth_new(&rt->cfg, rt->data_dir, rt->store, &rt->auth, err, errlen) != 0 ||
        rt_proxy_init(rt, err, errlen) != 0) { /* registry, admission, proxy settings */
        rt_router_free(rt);
        return -1;
    }
    *out = rt;
    return 0;
}

int rt_router_run(rt_router_t *rt)
{
    char err[256];
    long long workers = rt->cfg.workers;
    if (workers <= 0)
        workers = sysconf(_SC_NPROCESSORS_ONLN);
    cm_http_server_opts_t o = {
        .host = rt->cfg.host,
        .port = rt->cfg.port,
        .workers = (int)workers,
        .max_body = (size_t)rt->cfg.max_body_bytes,
        .max_headers = 64 * 1024,
        .timeout_secs = rt->cfg.request_timeout_s,
        .read_timeout_secs = rt->cfg.request_read_timeout_s,
        .routes = rt_routes,
        .nroutes = rt_routes_count,
        .pre = rt_auth_pre, /* enforces the policy column of routes.c */
        .worker_start = rt_proxy_worker_start, /* per-loop HTTP client, health sweep */
        .worker_stop = rt_proxy_worker_stop,
        .ud = rt,
    };
    if (cm_http_server_start(&o, &rt->http, err, sizeof(err)) != 0) {
        LOG_ERROR("router", "%s", err);
        return 1;
    }
    g_srv = rt->http;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    LOG_INFO("router", "listening on %s:%d with %lld workers", o.host, cm_http_server_port(rt->http), workers);
    /* machine-readable line for scripts and tests that asked for port 0 */
    printf("LLM_ROUTER_LISTENING port=%d\n", cm_http_server_port(rt->http));
    fflush(stdout);
    cm_http_server_wait(rt->http);
    LOG_INFO("router", "stopped");
    return 0;
}

void rt_router_free(rt_router_t *rt)
{
    if (!rt)
        return;
    rt_offload_drain(); /* password threads may still post to the loops */
    cm_http_server_free(rt->http);
    rt_proxy_fini(rt);
    rt_auth_free(rt->auth);
    rt_store_close(rt->store); /* drains the writer queue */
    cm_config_free(rt->loaded);
    free(rt->data_dir);
    free(rt);
}
