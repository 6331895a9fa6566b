/* The router's whole HTTP surface and its authorization policy, in one table:
 * a reader sees who may call what without reading the handlers. */
#include "router.h"

#include "api/handlers.h"
#include "util.h"

const cm_http_route_t rt_routes[] = {
    { "GET", "/health", rt_h_health, RT_POLICY_OPEN },

    /* sessions (api_auth.c) */
    { "POST", "/api/auth/login", rt_h_auth_login, RT_POLICY_OPEN },
    { "POST", "/api/auth/logout", rt_h_auth_logout, RT_POLICY_USER },
    { "GET", "/api/auth/me", rt_h_auth_me, RT_POLICY_USER },
    { "GET", "/api/auth/join-token", rt_h_auth_join_token, RT_POLICY_ADMIN },
    /* users (api_users.c) */
    { "GET", "/api/users", rt_h_users_list, RT_POLICY_ADMIN },
    { "POST", "/api/users", rt_h_users_create, RT_POLICY_ADMIN },
    { "PUT", "/api/users/:id", rt_h_users_update, RT_POLICY_ADMIN },
    { "DELETE", "/api/users/:id", rt_h_users_delete, RT_POLICY_ADMIN },
    /* API keys (api_keys.c) */
    { "GET", "/api/api-keys", rt_h_keys_list, RT_POLICY_ADMIN },
    { "POST", "/api/api-keys", rt_h_keys_create, RT_POLICY_ADMIN },
    { "PUT", "/api/api-keys/:id", rt_h_keys_update, RT_POLICY_ADMIN },
    { "DELETE", "/api/api-keys/:id", rt_h_keys_delete, RT_POLICY_ADMIN },
    /* nodes (api_nodes.c) */
    { "POST", "/api/nodes", rt_h_nodes_register, RT_POLICY_JOIN },
    { "GET", "/api/nodes", rt_h_nodes_list, RT_POLICY_VIEWER },
    { "GET", "/api/nodes/metrics", rt_h_nodes_metrics, RT_POLICY_VIEWER },
    { "GET", "/api/nodes/:id", rt_h_nodes_get, RT_POLICY_VIEWER },
    { "DELETE", "/api/nodes/:id", rt_h_nodes_delete, RT_POLICY_ADMIN },
    { "POST", "/api/nodes/:id/disconnect", rt_h_nodes_disconnect, RT_POLICY_ADMIN },
    { "PUT", "/api/nodes/:id/settings", rt_h_nodes_settings, RT_POLICY_ADMIN },
    { "GET", "/api/metrics/summary", rt_h_metrics_summary, RT_POLICY_VIEWER },
    { "POST", "/api/health", rt_h_nodes_heartbeat, RT_POLICY_NODE },
    /* OpenAI-compatible (api_openai.c) */
    { "POST", "/v1/chat/completions", rt_h_v1_chat, RT_POLICY_API_KEY },
    { "POST", "/v1/completions", rt_h_v1_completions, RT_POLICY_API_KEY },
    { "POST", "/v1/embeddings", rt_h_v1_embeddings, RT_POLICY_API_KEY },
    { "GET", "/v1/models", rt_h_v1_models, RT_POLICY_API_OR_NODE },
    { "GET", "/v1/models/*id", rt_h_v1_model, RT_POLICY_API_OR_NODE },
};
const size_t rt_routes_count = CM_ARRAY_LEN(rt_routes);
