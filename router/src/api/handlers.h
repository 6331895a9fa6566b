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
/* Runs work(arg) on a short-lived thread (password hashing: ~0.1 s), then
 * done(req, arg) on req's loop thread, which replies and frees arg. At most 4
 * run at once: beyond that replies 503 "busy" and returns -1 (arg untouched,
 * the caller frees it). */
int rt_offload(cm_http_req_t *req, void (*work)(void *arg),
               void (*done)(cm_http_req_t *req, void *arg), void *arg);
/* Waits (at most 5 s) for offload threads still using the loops and the auth
 * context; call after the loops stopped, before freeing them. */
void rt_offload_drain(void);
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
void rt_h_nodes_settings(cm_http_req_t *req, void *ud);
void rt_h_nodes_metrics(cm_http_req_t *req, void *ud);
void rt_h_metrics_summary(cm_http_req_t *req, void *ud);
/* Puts the stored nodes into the registry (offline) and their token hashes
 * into auth; called once at start by rt_proxy_init. */
struct rt_router;
void rt_nodes_load(struct rt_router *rt);
/* api_openai.c: the OpenAI-compatible surface */
void rt_h_v1_chat(cm_http_req_t *req, void *ud);
void rt_h_v1_completions(cm_http_req_t *req, void *ud);
void rt_h_v1_embeddings(cm_http_req_t *req, void *ud);
void rt_h_v1_models(cm_http_req_t *req, void *ud);
void rt_h_v1_model(cm_http_req_t *req, void *ud);

/* Helpers shared by the api_*.c handlers (api_auth.c, api_keys.c). */
struct cJSON;
/* Adds key: RFC 3339 UTC time with milliseconds, or null when ms <= 0. */
void rt_json_add_time(struct cJSON *obj, const char *key, int64_t ms);
/* A user without its password hash. */
struct cJSON *rt_json_user(const rt_user_rec_t *u);
/* The body as a JSON object, or NULL after replying 400. Caller deletes it. */
struct cJSON *rt_json_body_object(cm_http_req_t *req);
/* RFC 3339 time -> ms since epoch, -1 when malformed. */
int64_t rt_parse_rfc3339(const char *s);

#endif
