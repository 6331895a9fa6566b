/* The router's whole HTTP surface, its authorization policy and its body
 * limits, in one table: a reader sees who may call what, with how much,
 * without reading the handlers. The server checks both before it reads a
 * body: the policy through the pre hook, the limit (0: the server's,
 * LLM_ROUTER_MAX_BODY_BYTES) from Content-Length. */
#include "router.h"

#include "api/handlers.h"
#include "util.h"

/* Each row: method, path, handler, who may call it (auth.h), the largest
 * body (0: LLM_ROUTER_MAX_BODY_BYTES). The server takes the first three and
 * the policy as cm_http_route_t and the last column as route_max_body.
 * Management bodies are a few hundred bytes of JSON (a login, a user, a key,
 * a node's registration or heartbeat with its model list): far below this. */
#define SMALL (64 * 1024)

#define RT_ROUTE_TABLE(X) \
    X("GET", "/health", rt_h_health, RT_POLICY_OPEN, 0) \
    \
    /* sessions (api_auth.c) */ \
    X("POST", "/api/auth/login", rt_h_auth_login, RT_POLICY_OPEN, SMALL) \
    X("POST", "/api/auth/logout", rt_h_auth_logout, RT_POLICY_USER, SMALL) \
    X("GET", "/api/auth/me", rt_h_auth_me, RT_POLICY_USER, 0) \
    X("GET", "/api/auth/join-token", rt_h_auth_join_token, RT_POLICY_ADMIN, 0) \
    /* users (api_users.c) */ \
    X("GET", "/api/users", rt_h_users_list, RT_POLICY_ADMIN, 0) \
    X("POST", "/api/users", rt_h_users_create, RT_POLICY_ADMIN, SMALL) \
    X("PUT", "/api/users/:id", rt_h_users_update, RT_POLICY_ADMIN, SMALL) \
    X("DELETE", "/api/users/:id", rt_h_users_delete, RT_POLICY_ADMIN, SMALL) \
    /* API keys (api_keys.c) */ \
    X("GET", "/api/api-keys", rt_h_keys_list, RT_POLICY_ADMIN, 0) \
    X("POST", "/api/api-keys", rt_h_keys_create, RT_POLICY_ADMIN, SMALL) \
    X("PUT", "/api/api-keys/:id", rt_h_keys_update, RT_POLICY_ADMIN, SMALL) \
    X("DELETE", "/api/api-keys/:id", rt_h_keys_delete, RT_POLICY_ADMIN, SMALL) \
    /* nodes (api_nodes.c) */ \
    X("POST", "/api/nodes", rt_h_nodes_register, RT_POLICY_JOIN, SMALL) \
    X("GET", "/api/nodes", rt_h_nodes_list, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/nodes/metrics", rt_h_nodes_metrics, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/nodes/:id", rt_h_nodes_get, RT_POLICY_VIEWER, 0) \
    X("DELETE", "/api/nodes/:id", rt_h_nodes_delete, RT_POLICY_ADMIN, SMALL) \
    X("POST", "/api/nodes/:id/disconnect", rt_h_nodes_disconnect, RT_POLICY_ADMIN, SMALL) \
    X("POST", "/api/nodes/:id/token", rt_h_nodes_token, RT_POLICY_ADMIN, SMALL) \
    X("PUT", "/api/nodes/:id/settings", rt_h_nodes_settings, RT_POLICY_ADMIN, SMALL) \
    X("GET", "/api/metrics/summary", rt_h_metrics_summary, RT_POLICY_VIEWER, 0) \
    X("POST", "/api/health", rt_h_nodes_heartbeat, RT_POLICY_NODE, SMALL) \
    X("GET", "/api/nodes/:id/logs", rt_h_nodes_logs, RT_POLICY_VIEWER, 0) \
    /* dashboard data (api_dashboard.c) */ \
    X("GET", "/api/dashboard/overview", rt_h_dash_overview, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/dashboard/stats", rt_h_dash_stats, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/dashboard/nodes", rt_h_dash_nodes, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/dashboard/request-history", rt_h_dash_request_history, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/dashboard/metrics/:node_id", rt_h_dash_node_metrics, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/dashboard/logs/router", rt_h_dash_logs_router, RT_POLICY_VIEWER, 0) \
    /* request history (api_history.c) */ \
    X("GET", "/api/dashboard/request-responses", rt_h_history_list, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/dashboard/request-responses/export", rt_h_history_export, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/dashboard/request-responses/:id", rt_h_history_get, RT_POLICY_VIEWER, 0) \
    /* Prometheus (api_metrics.c) */ \
    X("GET", "/metrics", rt_h_metrics, RT_POLICY_METRICS, 0) \
    X("GET", "/metrics/cloud", rt_h_metrics_cloud, RT_POLICY_METRICS, 0) \
    X("GET", "/metrics/targets", rt_h_metrics_targets, RT_POLICY_METRICS, 0) \
    /* models: catalogue, discovery, deletion (api_models.c) */ \
    X("GET", "/api/models/registered", rt_h_models_registered, RT_POLICY_VIEWER, 0) \
    X("POST", "/api/models/discover-gguf", rt_h_models_discover, RT_POLICY_ADMIN, SMALL) \
    /* models: Hugging Face, download and conversion tasks (api_hf.c) */ \
    X("GET", "/api/models/available", rt_h_models_available, RT_POLICY_VIEWER, 0) \
    X("POST", "/api/models/register", rt_h_models_register, RT_POLICY_ADMIN, SMALL) \
    X("GET", "/api/models/tasks", rt_h_models_tasks, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/models/tasks/:task_id", rt_h_models_task_get, RT_POLICY_VIEWER, 0) \
    X("DELETE", "/api/models/tasks/:task_id", rt_h_models_task_cancel, RT_POLICY_ADMIN, SMALL) \
    X("POST", "/api/models/convert", rt_h_models_convert, RT_POLICY_ADMIN, SMALL) \
    X("GET", "/api/models/convert", rt_h_models_convert_list, RT_POLICY_VIEWER, 0) \
    X("GET", "/api/models/convert/:task_id", rt_h_models_convert_get, RT_POLICY_VIEWER, 0) \
    X("DELETE", "/api/models/convert/:task_id", rt_h_models_convert_delete, RT_POLICY_ADMIN, SMALL) \
    /* models: blobs for the nodes (api_blob.c) */ \
    X("GET", "/api/models/blob/*model_name", rt_h_models_blob, RT_POLICY_NODE_OR_ADMIN, 0) \
    X("HEAD", "/api/models/blob/*model_name", rt_h_models_blob, RT_POLICY_NODE_OR_ADMIN, 0) \
    /* after the fixed /api/models/ paths: a model id may contain '/' */ \
    X("DELETE", "/api/models/*model_name", rt_h_models_delete, RT_POLICY_ADMIN, SMALL) \
    /* OpenAI-compatible (api_openai.c) */ \
    X("POST", "/v1/chat/completions", rt_h_v1_chat, RT_POLICY_API_KEY, 0) \
    X("POST", "/v1/completions", rt_h_v1_completions, RT_POLICY_API_KEY, 0) \
    X("POST", "/v1/embeddings", rt_h_v1_embeddings, RT_POLICY_API_KEY, 0) \
    X("GET", "/v1/models", rt_h_v1_models, RT_POLICY_API_OR_NODE, 0) \
    X("GET", "/v1/models/*id", rt_h_v1_model, RT_POLICY_API_OR_NODE, 0) \
    /* the web UI from the binary's embedded files (api_static.c): the pages \
     * hold no data (their scripts call the APIs above with a session) */ \
    X("GET", "/", rt_h_static_root, RT_POLICY_OPEN, 0) \
    X("GET", "/dashboard", rt_h_static_dashboard, RT_POLICY_OPEN, 0) \
    X("HEAD", "/dashboard", rt_h_static_dashboard, RT_POLICY_OPEN, 0) \
    X("GET", "/dashboard/", rt_h_static_dashboard, RT_POLICY_OPEN, 0) \
    X("HEAD", "/dashboard/", rt_h_static_dashboard, RT_POLICY_OPEN, 0) \
    X("GET", "/dashboard/*path", rt_h_static_dashboard, RT_POLICY_OPEN, 0) \
    X("HEAD", "/dashboard/*path", rt_h_static_dashboard, RT_POLICY_OPEN, 0) \
    X("GET", "/playground", rt_h_static_playground, RT_POLICY_OPEN, 0) \
    X("HEAD", "/playground", rt_h_static_playground, RT_POLICY_OPEN, 0) \
    X("GET", "/playground/", rt_h_static_playground, RT_POLICY_OPEN, 0) \
    X("HEAD", "/playground/", rt_h_static_playground, RT_POLICY_OPEN, 0) \
    X("GET", "/playground/*path", rt_h_static_playground, RT_POLICY_OPEN, 0) \
    X("HEAD", "/playground/*path", rt_h_static_playground, RT_POLICY_OPEN, 0) \
    /* end */

#define RT_ROUTE(method, path, fn, policy, max_body) { method, path, fn, policy },
#define RT_LIMIT(method, path, fn, policy, max_body) max_body,
const cm_http_route_t rt_routes[] = { RT_ROUTE_TABLE(RT_ROUTE) };
/* the max_body column, index for index (cm_http_server_opts_t.route_max_body) */
const size_t rt_route_max_body[] = { RT_ROUTE_TABLE(RT_LIMIT) };
const size_t rt_routes_count = CM_ARRAY_LEN(rt_routes);
