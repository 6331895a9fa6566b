/* server: the MCP server over stdio (JSON-RPC 2.0, one message per line).
 *
 * One thread: stdin is one more descriptor in libcurl's multi poll
 * (curl_multi_poll's extra fds), so pings, cancellations and new requests
 * are handled while calls to the router run; answers go out in the order
 * calls complete (JSON-RPC allows it). A line longer than
 * MCP_SERVER_MAX_LINE is answered with a parse error and discarded. */
#ifndef MCP_SERVER_H
#define MCP_SERVER_H

#include "options.h"

#define MCP_SERVER_MAX_LINE (4u << 20)
#define MCP_SERVER_NAME "llm-router-mcp"
#ifdef LLMR_VERSION
#define MCP_SERVER_VERSION LLMR_VERSION /* the project's version (CMakeLists.txt) */
#else
#define MCP_SERVER_VERSION "0.0.0"
#endif
/* the revisions answered (the first is the latest, offered to a client that
 * asks for another) */
#define MCP_PROTOCOL_LATEST "2025-11-25"

typedef struct mcp_server mcp_server_t;

/* A server for cfg (borrowed; must outlive it). NULL with a message in err
 * when the configuration cannot work (a bad LLM_ROUTER_URL). */
mcp_server_t *mcp_server_new(const mcp_config_t *cfg, char *err, size_t errlen);
/* Serves in_fd / out_fd until in_fd ends and every call in flight is done.
 * 0, or -1 when out_fd fails (the client is gone). */
int mcp_server_run(mcp_server_t *s, int in_fd, int out_fd);
void mcp_server_free(mcp_server_t *s);

#endif
