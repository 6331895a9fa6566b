/* auth: who may call the node. Two credentials, both sent as
 * "Authorization: Bearer <credential>":
 *  - the router's secret, issued to this node at each registration (the
 *    agent sets it; a new registration replaces it);
 *  - the operator's key, LLM_NODE_API_KEY, for clients that call the node
 *    directly (a node run without a router).
 * Either one is accepted when both exist. Only SHA-256 digests are kept and
 * compared, in constant time whatever the lengths. Thread-safe: the agent's
 * thread sets the secret while the HTTP loop checks requests. */
#ifndef ND_AUTH_H
#define ND_AUTH_H

#include <stdbool.h>

typedef struct nd_auth nd_auth_t;

typedef enum {
    ND_AUTH_OK,      /* a valid credential */
    ND_AUTH_DENIED,  /* none, or a wrong one: 401 */
    ND_AUTH_PENDING, /* wrong or none, but the router's secret is still to come
                        (a router is configured and the node has not registered
                        yet): 503 and retry, so the router moves on to another node */
} nd_auth_result_t;

/* api_key: NULL or "": none. expect_router: a router will issue a secret. */
nd_auth_t *nd_auth_new(const char *api_key, bool expect_router);
void nd_auth_free(nd_auth_t *a); /* NULL: no-op */
/* The router's current secret (NULL or "": none). */
void nd_auth_set_router_secret(nd_auth_t *a, const char *secret);
/* authorization: the Authorization header's value (NULL: absent). */
nd_auth_result_t nd_auth_check(nd_auth_t *a, const char *authorization);

#endif
