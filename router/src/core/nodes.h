/* nodes: the node service. Registration, heartbeats, removal and settings
 * over the registry (state), the store (persistence) and auth (node tokens),
 * so that the HTTP handlers (api/api_nodes.c) only parse and reply.
 *
 * A join token lets its holder register a node, nothing more:
 *  - re-registering an identity that exists (machine_name + runtime_port)
 *    needs that node's current node token, or the node must be offline and
 *    register from the address it had; otherwise RT_NODES_TAKEN (an admin
 *    deletes the node to free its identity);
 *  - the address the router connects to is the registration's peer address
 *    (or, with trust_address, the body's ip_address, which must be an IP
 *    literal), never a host name;
 *  - registrations are limited per peer address (RT_NODES_RATE_LIMITED);
 *  - nodes offline for expire_s are forgotten (rt_nodes_expire, on a timer
 *    of rt_nodes_start and before each registration), and a full registry
 *    makes room by evicting the node offline the longest.
 *
 * Each registration also issues the node a secret (router_secret) that the
 * router presents to it (Authorization: Bearer) on every request; it is
 * rotated on each registration and stored sealed (XChaCha20-Poly1305 under a
 * key in <data_dir>/node_secret_key, 0600, bound to the node id), so that a
 * copy of the database alone does not reveal it.
 *
 * Every call is thread-safe (the registry, store and auth each are); store
 * writes are queued to the store's writer, so no call waits on the disk. */
#ifndef RT_NODES_H
#define RT_NODES_H

#include "auth/auth.h"
#include "core/registry.h"
#include "store/store.h"

#include <stdbool.h>

struct event_base;
typedef struct rt_nodes rt_nodes_t;

typedef enum {
    RT_NODES_OK = 0,
    RT_NODES_NOT_FOUND = -1,    /* no such node */
    RT_NODES_FULL = -2,         /* RT_REGISTRY_MAX_NODES nodes, all online */
    RT_NODES_GPU_REQUIRED = -3, /* require_gpu and the node has none */
    RT_NODES_TAKEN = -4,        /* the identity belongs to a node this caller cannot prove to be */
    RT_NODES_BAD_ADDRESS = -5,  /* no usable IP address to reach the node at */
    RT_NODES_RATE_LIMITED = -6, /* too many registrations from this address */
} rt_nodes_status_t;

#define RT_NODE_TOKEN_MAX 64  /* "nt_" + 43 characters, with its NUL */
#define RT_NODE_SECRET_MAX 64 /* "rs_" + 43 characters, with its NUL */

typedef struct {
    bool require_gpu;          /* LLM_ROUTER_REQUIRE_GPU */
    const char *data_dir;      /* holds node_secret_key; NULL: a key for this process only */
    bool trust_address;        /* LLM_ROUTER_TRUST_NODE_ADDRESS */
    unsigned expire_s;         /* LLM_ROUTER_NODE_EXPIRE_SECS; 0: never */
    unsigned register_per_min; /* LLM_ROUTER_REGISTER_RATE_PER_MIN; 0: no limit */
} rt_nodes_opts_t;

/* What a registration hands the node (shown once). */
typedef struct {
    char id[RT_NODE_ID_MAX];
    char token[RT_NODE_TOKEN_MAX];   /* for heartbeats (X-Node-Token) */
    char secret[RT_NODE_SECRET_MAX]; /* what the router presents to it */
    char address[48];                /* the IP the router will connect to */
    bool created;
    unsigned retry_after_s;          /* RT_NODES_RATE_LIMITED: seconds to wait */
} rt_nodes_grant_t;

/* registry, store (may be NULL: nothing persisted) and auth are borrowed
 * and must outlive the service; o is copied (data_dir too). NULL when the
 * key file exists but cannot be read or a new one cannot be written. */
rt_nodes_t *rt_nodes_new(rt_registry_t *reg, rt_store_t *store, rt_auth_t *auth, const rt_nodes_opts_t *o);
void rt_nodes_free(rt_nodes_t *ns);
/* Puts the stored nodes into the registry (offline until they heartbeat),
 * their secrets and their token hashes into auth (a node whose secret
 * cannot be unsealed keeps no token: it must register again). Once, at
 * start. 0 or -1 (logged). */
int rt_nodes_load(rt_nodes_t *ns);
/* Runs expiry on base's loop every so often (expire_s / 4, 1 s to 60 s);
 * rt_nodes_stop before base goes. No-op when expire_s is 0. */
void rt_nodes_start(rt_nodes_t *ns, struct event_base *base);
void rt_nodes_stop(rt_nodes_t *ns);
/* Forgets the nodes offline for longer than expire_s (registry, token,
 * store). Returns how many. */
size_t rt_nodes_expire(rt_nodes_t *ns, uint64_t now_ms);

/* Registers (or re-registers, under the rules above) a node from peer (the
 * client address), which presented node_token (may be NULL); info's
 * ip_address is the body's (may be NULL) and is replaced by the address
 * chosen. Issues a new token and secret (the previous ones stop working)
 * and persists the node. OK: g filled. */
rt_nodes_status_t rt_nodes_register(rt_nodes_t *ns, const rt_node_info_t *info, const char *peer,
                                    const char *node_token, rt_nodes_grant_t *g);
/* OK or NOT_FOUND (the node should register again). */
rt_nodes_status_t rt_nodes_heartbeat(rt_nodes_t *ns, const char *id, const rt_node_metrics_t *m);
/* Forgets the node, its token and its stored record. OK or NOT_FOUND. */
rt_nodes_status_t rt_nodes_delete(rt_nodes_t *ns, const char *id);
/* An admin's new node token for an existing node (a re-installed node that
 * lost its token, on another address): the previous token stops working at
 * once (the old installation's heartbeats get 401), and the node registering
 * with the new one (X-Node-Token, llm-node's LLM_NODE_TOKEN) takes the
 * identity back with its id and settings. Persisted. OK or NOT_FOUND. */
rt_nodes_status_t rt_nodes_issue_token(rt_nodes_t *ns, const char *id, char token[RT_AUTH_NODE_TOKEN_SIZE]);
/* Offline until its next heartbeat. OK or NOT_FOUND. */
rt_nodes_status_t rt_nodes_disconnect(rt_nodes_t *ns, const char *id);
/* Operator settings (NULL: unchanged; "" clears custom_name/notes; tags_json
 * a JSON array text), persisted. OK or NOT_FOUND. */
rt_nodes_status_t rt_nodes_settings(rt_nodes_t *ns, const char *id, const char *custom_name,
                                    const char *tags_json, const char *notes);

/* ---- pure helpers (tested alone) ---- */

struct cJSON;
/* A heartbeat's "model_sync" (j: its value; NULL when the heartbeat has
 * none: 0, *out NULL, *n 0): [{"model","state","bytes","total","error"?}],
 * at most RT_NODE_SYNC_MAX entries; model 1..255 bytes, state one of
 * queued / downloading / verifying / ready / failed, bytes and total
 * integers in 0..2^53, error (optional) a string below
 * RT_NODE_SYNC_ERROR_MAX bytes; other keys are ignored. 0 and *out (n
 * entries, the caller frees it), or -1 when malformed (*out NULL). */
int rt_nodes_parse_sync(const struct cJSON *j, rt_node_sync_t **out, size_t *n);

/* The canonical text of an IP literal (IPv4-mapped IPv6 as IPv4) into out;
 * false for anything else (host names included) and for the unspecified
 * and multicast addresses. */
bool rt_nodes_ip_literal(const char *s, char *out, size_t outlen);
/* Seals / unseals a node secret for the store, bound to node_id (hex text;
 * unseal false on any mismatch). box holds RT_NODE_BOX_MAX. */
#define RT_NODE_BOX_MAX 256
void rt_nodes_seal(const rt_nodes_t *ns, const char *node_id, const char *secret, char box[RT_NODE_BOX_MAX]);
bool rt_nodes_unseal(const rt_nodes_t *ns, const char *node_id, const char *box, char secret[RT_NODE_SECRET_MAX]);

#endif
