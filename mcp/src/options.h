/* options: the MCP server's environment variables, declared once (the
 * seed's names: LLM_ROUTER_URL, LLM_ROUTER_API_KEY, LLM_ROUTER_JWT_TOKEN,
 * LLM_ROUTER_TIMEOUT). --help is generated from the table. */
#ifndef MCP_OPTIONS_H
#define MCP_OPTIONS_H

#include "config.h"

#include <stddef.h>

typedef struct {
    const char *router_url;   /* base URL every request goes to */
    const char *api_key;      /* /v1/... (Authorization: Bearer) */
    const char *username;     /* management: logs in at /api/auth/login */
    const char *password;
    const char *jwt_token;    /* management: a session token instead */
    int timeout_s;            /* default per-call limit */
    int timeout_max_s;        /* ceiling of a call's timeout_s argument */
    long long max_result_bytes; /* text of a result beyond this is truncated */
    const char *log_level;
} mcp_config_t;

extern const cm_opt_t mcp_options[];
extern const size_t mcp_options_count;

#endif
