/* auth: who is calling. Users and passwords (Argon2id), JWT sessions (HS256,
 * revocation list), API keys and node tokens (stored as SHA-256 hashes, looked
 * up in memory, compared in constant time), the join token, and the pre-route
 * hook that enforces the policy column of routes.c. */
#ifndef RT_AUTH_H
#define RT_AUTH_H

#include "http_server.h"
#include "router.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum { RT_PRINCIPAL_USER, RT_PRINCIPAL_API_KEY, RT_PRINCIPAL_NODE, RT_PRINCIPAL_JOIN } rt_principal_kind_t;

/* Attached to each authenticated request (cm_http_req_set_user with free), so
 * it lives exactly as long as the request; handlers only read it. */
typedef struct {
    rt_principal_kind_t kind;
    char id[64];      /* user id, API key id, or node id */
    char name[128];   /* user name or key name */
    bool admin;       /* users: role admin */
} rt_principal_t;

/* The principal of an authenticated request, NULL for open routes. */
const rt_principal_t *rt_auth_principal(const cm_http_req_t *req);

/* Node tokens: a new random token for node_id ("nt_" + 43 chars); writes the
 * plaintext into token (size >= 64) and its hex SHA-256 into hash (size >= 65)
 * for the caller to store with the node record; the in-memory index is
 * updated. Issuing a new token for a node revokes its previous one. */
void rt_auth_node_token_issue(rt_auth_t *auth, const char *node_id, char *token, char *hash);
/* Registers a stored hash at start (from rt_store_nodes_each). */
void rt_auth_node_token_load(rt_auth_t *auth, const char *node_id, const char *hash);
/* Forgets a node's token (node deleted). */
void rt_auth_node_token_revoke(rt_auth_t *auth, const char *node_id);

/* The route pre-hook for cm_http_server_opts_t.pre (ud is the rt_router_t). */
bool rt_auth_pre(cm_http_req_t *req, const cm_http_route_t *route, void *ud);

#endif
