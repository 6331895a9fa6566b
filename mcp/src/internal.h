/* internal: what server.c (protocol, loop), call.c (HTTP to the router) and
 * tools.c (the tool table) share. Not used outside mcp/src. */
#ifndef MCP_INTERNAL_H
#define MCP_INTERNAL_H

#include "server.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JSON-RPC error codes */
#define RPC_PARSE_ERROR (-32700)
#define RPC_INVALID_REQUEST (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INVALID_PARAMS (-32602)
#define RPC_INTERNAL_ERROR (-32603)
#define RPC_RESOURCE_NOT_FOUND (-32002)

/* one request to the router */
typedef struct {
    const char *method; /* static text */
    char *path;         /* owned; checked by url.c before use */
    cJSON *query;       /* owned object of strings, or NULL */
    cJSON *body;        /* owned, or NULL: no body */
} mcp_http_t;

/* a router answer */
typedef struct {
    long status;
    const char *text; /* the body, NUL-terminated */
    size_t len;
    bool truncated;   /* larger than the buffer: the rest was dropped */
    cJSON *json;      /* the body parsed (strictly), or NULL */
} mcp_resp_t;

typedef struct mcp_call mcp_call_t;

enum { MCP_RO = 1, MCP_DESTRUCTIVE = 2, MCP_IDEMPOTENT = 4 };

typedef struct {
    const char *name, *title, *description;
    const char *props;    /* JSON text: the inputSchema's properties */
    const char *required; /* JSON text: its required array, or NULL */
    unsigned flags;
    /* Fills c->req from args (already checked against the schema). 0, or -1
     * with a sentence in err: the call ends in an isError result and no
     * request is made. */
    int (*plan)(mcp_call_t *c, const cJSON *args, char *err, size_t errlen);
    /* After a 2xx answer (NULL: the answer is the result): 1 after filling
     * c->req for one more request, or 0 with *data the result (owned). */
    int (*next)(mcp_call_t *c, mcp_resp_t *r, cJSON **data);
    const char *unmasked; /* a top-level member of the answer returned as is */
} mcp_tool_t;

struct mcp_call {
    mcp_call_t *next;
    mcp_server_t *srv;
    cJSON *id;
    const mcp_tool_t *tool;
    cJSON *args;
    uint64_t started_ms, deadline_ms;
    int timeout_s;
    mcp_http_t req;
    int step;    /* the tool's own */
    cJSON *acc;  /* the tool's own: data gathered over steps */
    bool login;  /* the request in flight is a login */
    bool relogged;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body_text;
    char *resp;
    size_t resp_len, resp_cap;
    bool resp_over;
    char errbuf[CURL_ERROR_SIZE];
};

struct mcp_server {
    const mcp_config_t *cfg;
    char *base;
    CURLM *multi;
    cJSON *tools_list; /* the tools array of tools/list */
    cJSON **schemas;   /* each tool's inputSchema (borrowed from tools_list) */
    int out_fd;
    bool out_failed;
    bool initialized;
    char *session;     /* a session token (LLM_ROUTER_JWT_TOKEN or a login) */
    mcp_call_t *calls;
    size_t ncalls;
};

extern const mcp_tool_t mcp_tools[];
extern const size_t mcp_tools_count;

/* server.c */
void mcp_send(mcp_server_t *s, cJSON *msg); /* frees msg */
void mcp_send_result(mcp_server_t *s, const cJSON *id, cJSON *result);
void mcp_send_error(mcp_server_t *s, const cJSON *id, int code, const char *msg, cJSON *data);

/* call.c: starts a tools/call (args checked); answers it when it ends */
void mcp_call_start(mcp_server_t *s, const cJSON *id, const mcp_tool_t *tool, const cJSON *args);
/* aborts the call with this id (notifications/cancelled): no answer */
bool mcp_call_cancel(mcp_server_t *s, const cJSON *id);
/* libcurl says a transfer ended */
void mcp_call_transfer_done(mcp_server_t *s, CURL *easy, CURLcode rc);
void mcp_call_free_all(mcp_server_t *s);

/* tools.c helpers for plans */
void mcp_req_set(mcp_call_t *c, const char *method, char *path, cJSON *query, cJSON *body);
void mcp_req_clear(mcp_http_t *r);

/* schema.c: checks args against a tool's inputSchema; 0, or -1 with err */
int mcp_schema_check(const cJSON *schema, const cJSON *args, char *err, size_t errlen);

#endif
