/* Handler prototypes for routes.c. Each api_*.c module defines its own; this
 * header only gathers them so the route table can name them. */
#ifndef RT_HANDLERS_H
#define RT_HANDLERS_H

#include "http_server.h"
#include "store/store.h"

#include <stdint.h>

/* server.c */
void rt_h_health(cm_http_req_t *req, void *ud);

/* api_auth.c */
void rt_h_auth_login(cm_http_req_t *req, void *ud);
void rt_h_auth_logout(cm_http_req_t *req, void *ud);
void rt_h_auth_me(cm_http_req_t *req, void *ud);
void rt_h_auth_join_token(cm_http_req_t *req, void *ud);
/* ---- api_offload.c: the management handlers' blocking work off the loops ----
 * Password hashing (~0.1 s, 64 MiB) and synchronous SQLite (API keys, users,
 * logins) run on a fixed pool (common/offload.h) so that no loop relaying
 * streams waits behind the store's writer. RT_OFFLOAD_THREADS run at once
 * (so at most that many Argon2id hashes hold memory), RT_OFFLOAD_QUEUED more
 * wait; beyond that the request gets 503 "busy" with Retry-After: 1. */
#define RT_OFFLOAD_THREADS 4
#define RT_OFFLOAD_QUEUED 64
/* One kind of offloaded job. */
typedef struct {
    void (*work)(void *arg);                     /* on a pool thread: never touches req */
    void (*done)(cm_http_req_t *req, void *arg); /* on req's loop thread: replies */
    void (*free)(void *arg);                     /* after done, or instead of it */
} rt_offload_ops_t;
/* Runs ops->work(arg) on the pool, then ops->done(req, arg) on req's loop
 * thread (also when the client has left: replying then frees req quietly),
 * then ops->free(arg). Takes arg in every case: when the job cannot run
 * (the bound is reached, or the pool is stopping) the request gets 503 at
 * once, or when the pool stops before the job started, and arg goes to
 * ops->free without done. 0, or -1 after such a 503. Call on req's loop. */
/* router: the route's ud (the rt_router_t), whose offload pool (built by
 * server.c, RT_OFFLOAD_THREADS and RT_OFFLOAD_QUEUED) runs the job. */
int rt_offload(void *router, cm_http_req_t *req, const rt_offload_ops_t *ops, void *arg);
/* As rt_offload, ahead of the jobs queued without urgency, taking the place
 * of the newest of them when the queue is full (that one gets 503 busy):
 * logins from addresses without recent failures (cm_offload_submit_urgent). */
int rt_offload_urgent(void *router, cm_http_req_t *req, const rt_offload_ops_t *ops, void *arg);
/* api_users.c */
void rt_h_users_list(cm_http_req_t *req, void *ud);
void rt_h_users_create(cm_http_req_t *req, void *ud);
void rt_h_users_update(cm_http_req_t *req, void *ud);
void rt_h_users_delete(cm_http_req_t *req, void *ud);
/* api_keys.c */
void rt_h_keys_list(cm_http_req_t *req, void *ud);
void rt_h_keys_create(cm_http_req_t *req, void *ud);
void rt_h_keys_update(cm_http_req_t *req, void *ud);
void rt_h_keys_delete(cm_http_req_t *req, void *ud);

/* api_nodes.c: registration, heartbeats, node management and dashboard data */
void rt_h_nodes_register(cm_http_req_t *req, void *ud);
void rt_h_nodes_heartbeat(cm_http_req_t *req, void *ud);
void rt_h_nodes_list(cm_http_req_t *req, void *ud);
void rt_h_nodes_get(cm_http_req_t *req, void *ud);
void rt_h_nodes_delete(cm_http_req_t *req, void *ud);
void rt_h_nodes_disconnect(cm_http_req_t *req, void *ud);
void rt_h_nodes_token(cm_http_req_t *req, void *ud);
void rt_h_nodes_settings(cm_http_req_t *req, void *ud);
void rt_h_nodes_metrics(cm_http_req_t *req, void *ud);
void rt_h_metrics_summary(cm_http_req_t *req, void *ud);
/* api_openai.c: the OpenAI-compatible surface */
void rt_h_v1_chat(cm_http_req_t *req, void *ud);
void rt_h_v1_completions(cm_http_req_t *req, void *ud);
void rt_h_v1_embeddings(cm_http_req_t *req, void *ud);
void rt_h_v1_models(cm_http_req_t *req, void *ud);
void rt_h_v1_model(cm_http_req_t *req, void *ud);

/* api_models.c: the model catalogue (registered list, discovery, deletion) */
void rt_h_models_registered(cm_http_req_t *req, void *ud);
void rt_h_models_discover(cm_http_req_t *req, void *ud);
void rt_h_models_delete(cm_http_req_t *req, void *ud);
/* api_hf.c: Hugging Face search and registration, download and conversion tasks */
void rt_h_models_available(cm_http_req_t *req, void *ud);
void rt_h_models_register(cm_http_req_t *req, void *ud);
void rt_h_models_tasks(cm_http_req_t *req, void *ud);
void rt_h_models_task_get(cm_http_req_t *req, void *ud);
void rt_h_models_task_cancel(cm_http_req_t *req, void *ud);
void rt_h_models_convert(cm_http_req_t *req, void *ud);
void rt_h_models_convert_list(cm_http_req_t *req, void *ud);
void rt_h_models_convert_get(cm_http_req_t *req, void *ud);
void rt_h_models_convert_delete(cm_http_req_t *req, void *ud);
/* api_blob.c: model files for the nodes (GET and HEAD, ranges, checksum) */
void rt_h_models_blob(cm_http_req_t *req, void *ud);

/* api_dashboard.c: the dashboard's data (overview cards, trend, nodes, logs) */
void rt_h_dash_overview(cm_http_req_t *req, void *ud);
void rt_h_dash_stats(cm_http_req_t *req, void *ud);
void rt_h_dash_nodes(cm_http_req_t *req, void *ud);
void rt_h_dash_request_history(cm_http_req_t *req, void *ud);
void rt_h_dash_node_metrics(cm_http_req_t *req, void *ud);
void rt_h_dash_logs_router(cm_http_req_t *req, void *ud);
void rt_h_nodes_logs(cm_http_req_t *req, void *ud);
/* api_history.c: the request history */
void rt_h_history_list(cm_http_req_t *req, void *ud);
void rt_h_history_get(cm_http_req_t *req, void *ud);
void rt_h_history_export(cm_http_req_t *req, void *ud);
/* Stops the running exports (their clients are cut) and waits for their
 * threads (bounded); after the loops stopped, before the history closes. */
void rt_history_exports_stop(void);
/* api_metrics.c: Prometheus */
void rt_h_metrics(cm_http_req_t *req, void *ud);
void rt_h_metrics_cloud(cm_http_req_t *req, void *ud);
void rt_h_metrics_targets(cm_http_req_t *req, void *ud);

/* api_static.c: the dashboard and the playground (web_assets.h) */
void rt_h_static_dashboard(cm_http_req_t *req, void *ud);
void rt_h_static_playground(cm_http_req_t *req, void *ud);
void rt_h_static_root(cm_http_req_t *req, void *ud);

/* Helpers shared by the api_*.c handlers (api_auth.c, api_users.c). */
struct cJSON;
/* A user without its password hash. */
struct cJSON *rt_json_user(const rt_user_rec_t *u);

#endif
