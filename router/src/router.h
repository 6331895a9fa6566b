/* router: the process-wide context, the top of router/.
 *
 * Built once by rt_router_new() (server.c, the one assembler) from the typed
 * configuration, in order: store, auth, registry, admission, nodes service,
 * proxy; health starts on worker 0's loop. Shared by all worker loops. Each
 * field is owned by the module named beside it; modules below get what they
 * need as arguments and never include this header (only api/ handlers,
 * which receive the context as their route ud, and main.c/cli.c do). */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include "auth/auth.h"
#include "http_server.h"
#include "options.h"

struct event;

typedef struct rt_store rt_store_t;       /* store.c: SQLite, the only user of sqlite3.h */
typedef struct rt_auth rt_auth_t;         /* auth.c: users, JWT, API keys, tokens */
typedef struct rt_registry rt_registry_t; /* registry.c: nodes and their state */
typedef struct rt_admission rt_admission_t; /* admission.c: per-model wait queues */
typedef struct rt_nodes rt_nodes_t;       /* nodes.c: registration, heartbeats, persistence */
typedef struct rt_health rt_health_t;     /* health.c: heartbeat timeout sweep */
typedef struct rt_proxy rt_proxy_t;       /* proxy.c: pick, forward, relay, retry, finish */
typedef struct rt_history rt_history_t;   /* store/history.c: the request history (history.db) */
typedef struct rt_metrics rt_metrics_t;   /* core/metrics.c: Prometheus counters */
typedef struct rt_recorder rt_recorder_t; /* core/recorder.c: the proxy's observer, history writer */
typedef struct rt_cloud rt_cloud_t;       /* core/cloud_proxy.c: the cloud prefixes' upstream */
typedef struct rt_models rt_models_t;     /* models/models.c: the model catalogue */
typedef struct rt_downloads rt_downloads_t; /* models/downloads.c: download and conversion tasks */

typedef struct rt_router {
    rt_config_t cfg;      /* typed options; strings owned by loaded */
    cm_config_t *loaded;
    char *data_dir;
    rt_store_t *store;
    rt_auth_t *auth;
    rt_registry_t *registry;
    rt_admission_t *admission;
    rt_nodes_t *nodes;
    rt_health_t *health;   /* on worker 0's loop while serving */
    rt_proxy_t *proxy;
    rt_history_t *history;   /* NULL with LLM_ROUTER_HISTORY=0 */
    rt_metrics_t *metrics;
    rt_recorder_t *recorder;
    rt_cloud_t *cloud;
    rt_models_t *models;
    rt_downloads_t *downloads;
    uint64_t started_wall_ms; /* process start (uptime, process_start_time_seconds) */
    /* The allocator's collect (main.c sets mi_collect when linked with
     * mimalloc; NULL: none), run on each worker loop every few seconds: a
     * loop gone idle after a burst of large bodies never allocates again, so
     * the memory it freed would otherwise stay with its heap. */
    void (*trim)(void);
    struct event **trim_ev; /* one per worker (server.c) */
    cm_http_server_t *http;
    struct cm_offload *offload; /* common/offload.c: password hashing and management SQL off the loops */
} rt_router_t;

/* The route table (routes.c): every route with who may call it. */
extern const cm_http_route_t rt_routes[];
extern const size_t rt_routes_count;
/* rt_routes[i]'s body limit in bytes (0: LLM_ROUTER_MAX_BODY_BYTES); routes.c */
extern const size_t rt_route_max_body[];

/* Who may call a route: rt_policy_t, in auth/auth.h. */

/* Creates the router from cfg, whose strings belong to loaded (taken over:
 * freed with the router, also on failure): data directory, then every
 * module in the order above. 0, or -1 with a message in err. */
int rt_router_new(const rt_config_t *cfg, cm_config_t *loaded, rt_router_t **out, char *err, size_t errlen);
/* Binds and serves; blocks until SIGINT/SIGTERM. Returns the exit code. */
int rt_router_run(rt_router_t *rt);
void rt_router_free(rt_router_t *rt);

#endif
