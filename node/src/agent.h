/* agent: the node's router client, on its own thread with blocking libcurl
 * calls (it never touches the HTTP loop).
 *
 * Registers (POST {router}/api/nodes, X-Join-Token) with exponential backoff
 * while the router is unreachable, then heartbeats (POST /api/health,
 * X-Node-Token) every heartbeat_secs with the machine's and the node's
 * figures; a 401 or 404 means the router forgot the node: register again.
 * Each heartbeat carries the model sync's progress ("model_sync"); a reply
 * whose "models_version" differs from the last one seen kicks the sync. */
#ifndef ND_AGENT_H
#define ND_AGENT_H

#include <stdbool.h>
#include <stddef.h>

struct nd_node;
typedef struct nd_agent nd_agent_t;

typedef struct {
    const char *router_url;  /* NULL or "": no router, the agent idles */
    const char *join_token;  /* may be NULL */
    /* a node token an admin issued for this node's identity
     * (POST /api/nodes/:id/token), presented at the first registration;
     * NULL: none (replaced by the router's after each registration) */
    const char *node_token;
    const char *node_ip;     /* NULL: the address that routes to the router */
    int port;                /* the node's API port */
    int heartbeat_secs;
    int slots;
} nd_agent_opts_t;

typedef struct {
    bool registered;
    char node_id[128];
    char router_url[256];
    unsigned registrations;  /* successful registrations so far */
    unsigned heartbeats;     /* accepted heartbeats so far */
} nd_agent_status_t;

/* Copies the options; nd must outlive the agent. */
nd_agent_t *nd_agent_start(const nd_agent_opts_t *o, struct nd_node *nd);
/* Stops and joins the thread. NULL is a no-op. */
void nd_agent_stop(nd_agent_t *a);
void nd_agent_status(nd_agent_t *a, nd_agent_status_t *s);
/* Copies the node token the router issued into buf (len bytes): true, or
 * false while the agent has none (or NULL). For the model sync's calls to
 * the router; the caller wipes buf and never logs it. Any thread. */
bool nd_agent_node_token(nd_agent_t *a, char *buf, size_t len);

#endif
