#include "core/nodes.h"

#include "log.h"
#include "util.h"

#include <stdlib.h>

struct rt_nodes {
    rt_registry_t *reg;
    rt_store_t *store;
    rt_auth_t *auth;
    bool require_gpu;
};

rt_nodes_t *rt_nodes_new(rt_registry_t *reg, rt_store_t *store, rt_auth_t *auth, bool require_gpu)
{
    rt_nodes_t *ns = cm_xcalloc(1, sizeof(*ns));
    ns->reg = reg;
    ns->store = store;
    ns->auth = auth;
    ns->require_gpu = require_gpu;
    return ns;
}

void rt_nodes_free(rt_nodes_t *ns)
{
    free(ns);
}

static void load_one(const rt_node_rec_t *rec, void *arg)
{
    rt_nodes_t *ns = arg;
    rt_registry_restore(ns->reg, rec);
    if (rec->token_hash && *rec->token_hash)
        rt_auth_node_token_load(ns->auth, rec->id, rec->token_hash);
}

int rt_nodes_load(rt_nodes_t *ns)
{
    if (ns->store && rt_store_nodes_each(ns->store, load_one, ns) != 0) {
        LOG_ERROR("nodes", "cannot read the stored nodes");
        return -1;
    }
    return 0;
}

/* Queues the node's record to the store's writer. */
static void persist(rt_nodes_t *ns, const char *id)
{
    rt_node_rec_t rec;
    if (!ns->store || rt_registry_export(ns->reg, id, &rec) != 0)
        return;
    if (rt_store_node_upsert(ns->store, &rec) != 0)
        LOG_ERROR("nodes", "cannot store node %s", id);
    rt_node_rec_free(&rec);
}

rt_nodes_status_t rt_nodes_register(rt_nodes_t *ns, const rt_node_info_t *info, char id[RT_NODE_ID_MAX],
                                    char token[RT_NODE_TOKEN_MAX], bool *created)
{
    if (!info->gpu_available && ns->require_gpu)
        return RT_NODES_GPU_REQUIRED;
    char cand[37], hash[65];
    rt_auth_uuid(cand);
    rt_node_info_t in = *info;
    in.id = cand; /* used only when the node is new */
    if (rt_registry_register(ns->reg, &in, id, created) != 0)
        return RT_NODES_FULL;
    rt_auth_node_token_issue(ns->auth, id, token, hash);
    rt_registry_set_token_hash(ns->reg, id, hash);
    persist(ns, id);
    LOG_INFO("nodes", "node %s %s: %s (%s:%d, api %d, %zu models)", id, *created ? "registered" : "re-registered",
             info->machine_name, info->ip_address, info->runtime_port, info->api_port, info->nmodels);
    return RT_NODES_OK;
}

rt_nodes_status_t rt_nodes_heartbeat(rt_nodes_t *ns, const char *id, const rt_node_metrics_t *m)
{
    return rt_registry_heartbeat(ns->reg, id, m) == 0 ? RT_NODES_OK : RT_NODES_NOT_FOUND;
}

rt_nodes_status_t rt_nodes_delete(rt_nodes_t *ns, const char *id)
{
    if (rt_registry_remove(ns->reg, id) != 0)
        return RT_NODES_NOT_FOUND;
    rt_auth_node_token_revoke(ns->auth, id);
    if (ns->store && rt_store_node_delete(ns->store, id) != 0)
        LOG_ERROR("nodes", "cannot delete stored node %s", id);
    LOG_INFO("nodes", "node %s deleted", id);
    return RT_NODES_OK;
}

rt_nodes_status_t rt_nodes_disconnect(rt_nodes_t *ns, const char *id)
{
    if (rt_registry_disconnect(ns->reg, id) != 0)
        return RT_NODES_NOT_FOUND;
    LOG_INFO("nodes", "node %s forced offline", id);
    return RT_NODES_OK;
}

rt_nodes_status_t rt_nodes_settings(rt_nodes_t *ns, const char *id, const char *custom_name,
                                    const char *tags_json, const char *notes)
{
    if (rt_registry_settings(ns->reg, id, custom_name, tags_json, notes) != 0)
        return RT_NODES_NOT_FOUND;
    persist(ns, id);
    return RT_NODES_OK;
}
