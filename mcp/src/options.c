/* The MCP server's environment variables: the single place they are
 * declared (options.h). */
#include "options.h"

#include "util.h"

const cm_opt_t mcp_options[] = {
    { "LLM_ROUTER_URL", { NULL }, CM_OPT_STR, "http://127.0.0.1:8080", 0, 0, NULL, "The router's base URL (http or https): every request goes there and nowhere else", CM_AT(mcp_config_t, router_url) },
    { "LLM_ROUTER_API_KEY", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "API key (sk_...) presented to /v1/* (chat, embeddings, models)", CM_AT(mcp_config_t, api_key) },
    { "LLM_ROUTER_USERNAME", { NULL }, CM_OPT_STR, NULL, 0, 0, NULL, "Admin or viewer user for /api/*: the server logs in at /api/auth/login and logs in again when the session ends", CM_AT(mcp_config_t, username) },
    { "LLM_ROUTER_PASSWORD", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "Password of LLM_ROUTER_USERNAME", CM_AT(mcp_config_t, password) },
    { "LLM_ROUTER_JWT_TOKEN", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "A session token for /api/* (instead of a username and password; not renewed)", CM_AT(mcp_config_t, jwt_token) },
    { "LLM_ROUTER_TIMEOUT", { NULL }, CM_OPT_INT, "30", 1, 300, NULL, "Default time limit of one tool call (seconds; a call's timeout_s argument may change it up to LLM_ROUTER_MCP_TIMEOUT_MAX)", CM_AT(mcp_config_t, timeout_s) },
    { "LLM_ROUTER_MCP_TIMEOUT_MAX", { NULL }, CM_OPT_INT, "300", 1, 3600, NULL, "Ceiling of a call's timeout_s argument (seconds)", CM_AT(mcp_config_t, timeout_max_s) },
    { "LLM_ROUTER_MCP_MAX_RESULT_BYTES", { NULL }, CM_OPT_INT, "262144", 1024, 16777216, NULL, "A tool result's text beyond this is truncated, with a note saying so", CM_AT(mcp_config_t, max_result_bytes) },
    { "LLM_ROUTER_MCP_LOG_LEVEL", { NULL }, CM_OPT_STR, "info", 0, 0, NULL, "Log level on stderr (trace, debug, info, warn, error)", CM_AT(mcp_config_t, log_level) },
};
const size_t mcp_options_count = CM_ARRAY_LEN(mcp_options);
