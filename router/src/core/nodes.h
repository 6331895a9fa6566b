/* nodes: the node service. Registration, heartbeats, removal and settings
 * over the registry (state), the store (persistence) and auth (node tokens),
 * so that the HTTP handlers (api/api_nodes.c) only parse and reply.
 *
 * Every call is thread-safe (the registry, store and auth each are); store
 * writes are queued to the store's writer, so no call waits on the disk. */
#ifndef RT_NODES_H
#define RT_NODES_H

#include "auth/auth.h"
#include "core/registry.h"
#include "store/store.h"

#include <stdbool.h>

typedef struct rt_nodes rt_nodes_t;

typedef enum {
    RT_NODES_OK = 0,
    RT_NODES_NOT_FOUND = -1,    /* no such node */
    RT_NODES_FULL = -2,         /* the registry holds RT_REGISTRY_MAX_NODES */
    RT_NODES_GPU_REQUIRED = -3, /* require_gpu and the node has none */
} rt_nodes_status_t;

#define RT_NODE_TOKEN_MAX 64 /* "nt_" + 43 characters, with its NUL */

/* registry, store (may be NULL: nothing persisted) and auth are borrowed
 * and must outlive the service. require_gpu: LLM_ROUTER_REQUIRE_GPU. */
rt_nodes_t *rt_nodes_new(rt_registry_t *reg, rt_store_t *store, rt_auth_t *auth, bool require_gpu);
void rt_nodes_free(rt_nodes_t *ns);
/* Puts the stored nodes into the registry (offline until they heartbeat)
 * and their token hashes into auth. Once, at start. 0 or -1 (logged). */
int rt_nodes_load(rt_nodes_t *ns);

/* Registers (or re-registers: same machine_name + runtime_port) a node,
 * issues it a new token (its previous one stops working) and persists it.
 * On OK: id and token (shown to the node once) filled, *created set. */
rt_nodes_status_t rt_nodes_register(rt_nodes_t *ns, const rt_node_info_t *info, char id[RT_NODE_ID_MAX],
                                    char token[RT_NODE_TOKEN_MAX], bool *created);
/* OK or NOT_FOUND (the node should register again). */
rt_nodes_status_t rt_nodes_heartbeat(rt_nodes_t *ns, const char *id, const rt_node_metrics_t *m);
/* Forgets the node, its token and its stored record. OK or NOT_FOUND. */
rt_nodes_status_t rt_nodes_delete(rt_nodes_t *ns, const char *id);
/* Offline until its next heartbeat. OK or NOT_FOUND. */
rt_nodes_status_t rt_nodes_disconnect(rt_nodes_t *ns, const char *id);
/* Operator settings (NULL: unchanged; "" clears custom_name/notes; tags_json
 * a JSON array text), persisted. OK or NOT_FOUND. */
rt_nodes_status_t rt_nodes_settings(rt_nodes_t *ns, const char *id, const char *custom_name,
                                    const char *tags_json, const char *notes);

#endif
