/* router: the process-wide context every router module receives.
 *
 * Built once by rt_router_new() from the configuration, shared by all worker
 * loops. Each field is owned by the module named beside it; modules reach each
 * other only through their own headers. */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include "http_server.h"
#include "options.h"

typedef struct rt_store rt_store_t;       /* store.c: SQLite, the only user of sqlite3.h */
typedef struct rt_auth rt_auth_t;         /* auth.c: users, JWT, API keys, tokens */
typedef struct rt_registry rt_registry_t; /* registry.c: nodes and their state */
typedef struct rt_admission rt_admission_t; /* admission.c: per-model wait queues */
typedef struct rt_health rt_health_t;     /* health.c: heartbeat timeout sweep */
typedef struct rt_proxy rt_proxy_t;       /* proxy.c: settings, per-worker HTTP clients */

typedef struct rt_router {
    rt_config_t cfg;      /* typed options; strings owned by loaded */
    cm_config_t *loaded;
    char *data_dir;
    rt_store_t *store;
    rt_auth_t *auth;
    rt_registry_t *registry;
    rt_admission_t *admission;
    rt_health_t *health;
    rt_proxy_t *proxy;
    cm_http_server_t *http;
} rt_router_t;

/* The route table (routes.c): every route with who may call it. */
extern const cm_http_route_t rt_routes[];
extern const size_t rt_routes_count;

/* Who may call a route (cm_http_route_t.policy). */
typedef enum {
    RT_POLICY_OPEN,        /* no credentials: login, static assets, probes */
    RT_POLICY_API_KEY,     /* inference under /v1: API key */
    RT_POLICY_API_OR_NODE, /* /v1/models: API key or node token */
    RT_POLICY_NODE,        /* heartbeats, blob pulls: node token */
    RT_POLICY_JOIN,        /* registration: join token unless registration is open */
    RT_POLICY_VIEWER,      /* read APIs, dashboard data: JWT viewer or admin */
    RT_POLICY_ADMIN,       /* management writes: JWT admin */
    RT_POLICY_USER,        /* any logged-in user (me, logout) */
} rt_policy_t;

/* Creates the router from cfg, whose strings belong to loaded (taken over:
 * freed with the router, also on failure): data directory, storage, auth,
 * registry. 0, or -1 with a message in err. */
int rt_router_new(const rt_config_t *cfg, cm_config_t *loaded, rt_router_t **out, char *err, size_t errlen);
/* Binds and serves; blocks until SIGINT/SIGTERM. Returns the exit code. */
int rt_router_run(rt_router_t *rt);
void rt_router_free(rt_router_t *rt);

#endif
