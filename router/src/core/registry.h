/* registry: every node the router knows, its state, its metrics and the
 * router's own statistics of it; the one owner of node state.
 *
 * All state sits behind one mutex held only for short, allocation-light
 * sections, so any worker thread may call any function. Selection
 * (rt_registry_acquire) runs the balancer over a snapshot taken under that
 * lock and takes the slot in the same section, which keeps in-flight counts
 * exact: every successful acquire is matched by exactly one release.
 *
 * Readers that render (the APIs, the dashboard) take a snapshot: plain
 * copies made under the lock (rt_registry_snapshot), turned into JSON
 * outside it (api/views.c), so a dashboard poll never holds the lock that
 * every proxied request takes twice.
 *
 * Persistence and tokens are not done here (nodes.c does them): the
 * registry converts to and from the store's record type only. */
#ifndef RT_REGISTRY_H
#define RT_REGISTRY_H

#include "core/balancer.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_registry rt_registry_t;

#define RT_REGISTRY_MAX_NODES 1024
#define RT_REGISTRY_MAX_MODELS 512 /* per node */
#define RT_NODE_ID_MAX 40          /* a node id (a UUID, 36 characters) with its NUL, and room */
/* The header the router presents to a node, "Authorization: Bearer rs_" +
 * 43 characters, with its NUL, and room. Kept whole in each node and copied
 * into each lease, so a proxied request builds nothing. */
#define RT_NODE_AUTH_HDR_MAX 96
#define RT_NODE_NAME_MAX 64 /* a node's display name as leases carry it */

typedef struct {
    rt_lb_mode_t mode;
    int default_slots;  /* for nodes that report none */
    size_t history_max; /* heartbeat samples kept per node */
} rt_registry_opts_t;

/* What a node says about itself at registration. Strings are copied. */
typedef struct {
    const char *id; /* used for a new node; an existing one keeps its id */
    const char *machine_name;
    const char *ip_address;
    const char *runtime_version;
    int runtime_port;
    int api_port;
    bool gpu_available;
    const char *gpu_devices_json; /* JSON array text */
    const char *const *models;    /* ids it can serve */
    size_t nmodels;
    int total_slots;              /* 0: not reported */
    /* The credential the router presents to the node from now on and its
     * sealed form for the store (both NULL: unchanged). */
    const char *secret, *secret_box;
} rt_node_info_t;

/* How rt_registry_claim treats an identity (machine_name + runtime_port)
 * that already exists, and a full registry. */
typedef struct {
    /* hex SHA-256 of the node token the registration presented, NULL: none.
     * An existing node is updated only when it matches the node's current
     * token hash, or when the node is offline and registers from the
     * address it had (a restarted node that lost its token). */
    const char *proof_hash;
    /* When full, evict the node offline the longest (its id into
     * evicted_out); with every node online the registration is refused. */
    bool evict_offline;
} rt_registry_claim_t;

/* One entry of a heartbeat's "model_sync": a registered model the node is
 * pulling (or pulled) from the router, as the node reports it. */
#define RT_NODE_SYNC_MAX 64        /* entries per heartbeat */
#define RT_NODE_SYNC_MODEL_MAX 256 /* a model id with its NUL */
#define RT_NODE_SYNC_ERROR_MAX 512 /* an error message with its NUL */
typedef struct {
    char model[RT_NODE_SYNC_MODEL_MAX];
    char state[16]; /* "queued", "downloading", "verifying", "ready", "failed" */
    uint64_t bytes, total;
    char error[RT_NODE_SYNC_ERROR_MAX]; /* "" when none */
} rt_node_sync_t;

/* One heartbeat. Percentages < 0 mean "not reported". */
typedef struct {
    double cpu, mem, gpu, gpu_mem;
    int active, queued;
    int total_slots; /* 0: keep the last value */
    double avg_ms, tps;
    bool initializing;
    int ready_models[2];
    const char *gpu_devices_json; /* NULL: keep */
    const char *const *models;    /* available + loaded; NULL: keep */
    size_t nmodels;
    const char *const *loaded;    /* loaded (chat and embedding) */
    size_t nloaded;
    /* the model sync's progress (at most RT_NODE_SYNC_MAX, copied);
     * has_sync false: the heartbeat carried none, the last one is kept */
    bool has_sync;
    const rt_node_sync_t *sync;
    size_t nsync;
} rt_node_metrics_t;

/* A taken slot: the node to send to. Filled by rt_registry_acquire. */
typedef struct {
    char node_id[RT_NODE_ID_MAX];
    char node_name[RT_NODE_NAME_MAX]; /* its custom name, else its machine name (cut to fit) */
    char base_url[96]; /* "http://ip:api_port" */
    char auth_hdr[RT_NODE_AUTH_HDR_MAX]; /* "" when the node has no secret */
    uint64_t start_us;
    unsigned retry_s; /* RT_PICK_DOWN: seconds until the first suspension ends */
} rt_lease_t;

typedef enum {
    RT_PICK_OK,        /* lease filled, slot taken */
    RT_PICK_BUSY,      /* some eligible node serves it, none has a free slot now */
    RT_PICK_NONE,      /* no online node serves the model */
    RT_PICK_EXHAUSTED, /* only nodes in the exclusion list serve it */
    RT_PICK_DOWN,      /* every node serving it is suspended after a failure */
} rt_pick_t;

typedef enum { RT_OUTCOME_OK, RT_OUTCOME_FAILED, RT_OUTCOME_NONE } rt_outcome_t;

rt_registry_t *rt_registry_new(const rt_registry_opts_t *opts);
void rt_registry_free(rt_registry_t *reg);
/* Called (outside the lock) whenever capacity may have grown: a slot was
 * released, a node registered, heartbeated or came out of suspension. */
void rt_registry_set_capacity_hook(rt_registry_t *reg, void (*fn)(void *ud), void *ud);
rt_lb_mode_t rt_registry_mode(const rt_registry_t *reg);

/* Adds or updates (same machine_name + runtime_port: same node, updated in
 * place) and marks it online. Writes the node's id into id_out. 0, or -1
 * when the registry is full. *created tells which. */
int rt_registry_register(rt_registry_t *reg, const rt_node_info_t *info, char id_out[RT_NODE_ID_MAX], bool *created);
/* rt_registry_register with the ownership rules of claim: 0 (evicted_out
 * "" or the id of the offline node removed to make room), -1 full (every
 * node online), -2 the identity belongs to another, proven node. */
#define RT_REGISTRY_FULL (-1)
#define RT_REGISTRY_TAKEN (-2)
int rt_registry_claim(rt_registry_t *reg, const rt_node_info_t *info, const rt_registry_claim_t *claim,
                      char id_out[RT_NODE_ID_MAX], bool *created, char evicted_out[RT_NODE_ID_MAX]);
/* A stored node at start: known, offline until it heartbeats. */
void rt_registry_restore(rt_registry_t *reg, const rt_node_rec_t *rec);
/* Fills rec (strings owned by rec: rt_node_rec_free) for persistence,
 * token_hash included. 0, or -1 when unknown. */
int rt_registry_export(rt_registry_t *reg, const char *id, rt_node_rec_t *rec);
/* 0, or -1 when the node is unknown (the node should re-register). */
int rt_registry_heartbeat(rt_registry_t *reg, const char *id, const rt_node_metrics_t *m);
int rt_registry_remove(rt_registry_t *reg, const char *id);
/* Forces a node offline until its next heartbeat. 0 or -1. */
int rt_registry_disconnect(rt_registry_t *reg, const char *id);
/* Any argument NULL: unchanged. tags_json must be a JSON array text. 0 or -1. */
int rt_registry_settings(rt_registry_t *reg, const char *id, const char *custom_name,
                         const char *tags_json, const char *notes);
/* The hash of the node's current token, kept for rt_registry_export. */
int rt_registry_set_token_hash(rt_registry_t *reg, const char *id, const char *hash);
/* The secret presented to the node (restored from the store) and its
 * sealed form. 0 or -1. */
int rt_registry_set_secret(rt_registry_t *reg, const char *id, const char *secret, const char *box);
bool rt_registry_exists(rt_registry_t *reg, const char *id);
/* How to reach a node's own API (its logs, for the dashboard): its base URL
 * ("http://ip:api_port") and the header the router presents to it ("" when
 * the node has no secret), copied under the lock, and whether it is online.
 * The caller wipes auth_hdr when done (sodium_memzero). 0, or -1 when the
 * node is unknown. */
int rt_registry_endpoint(rt_registry_t *reg, const char *id, char base_url[96], char auth_hdr[RT_NODE_AUTH_HDR_MAX],
                         bool *online);

/* Health: nodes silent for longer than timeout_ms go offline; suspensions
 * that ran out end. Returns how many went offline. */
int rt_registry_sweep(rt_registry_t *reg, uint64_t now_ms, uint64_t timeout_ms);
/* Told of each node the sweep took offline (called after the registry's lock
 * is released, on the sweeping thread). */
typedef void (*rt_offline_fn)(void *ud, const char *node_id);
/* rt_registry_sweep, calling on_offline (may be NULL) for each node that went
 * offline: the proxy fails their unanswered requests at once. */
int rt_registry_sweep_report(rt_registry_t *reg, uint64_t now_ms, uint64_t timeout_ms, rt_offline_fn on_offline,
                             void *ud);
/* Removes the nodes offline for longer than max_offline_ms (counted from
 * their last heartbeat or registration, or from their restore at start),
 * writing up to max of their ids into ids; call again while it returns max.
 * Online nodes never expire. Returns how many were removed. */
size_t rt_registry_expire(rt_registry_t *reg, uint64_t now_ms, uint64_t max_offline_ms,
                          char (*ids)[RT_NODE_ID_MAX], size_t max);
/* The node failed at connection level: no new requests for ms (a heartbeat
 * lifts it early). */
void rt_registry_suspend(rt_registry_t *reg, const char *id, uint64_t ms);
/* How many suspensions rt_registry_suspend began (or renewed) since start:
 * llm_router_node_suspensions_total. */
uint64_t rt_registry_suspensions(rt_registry_t *reg);

/* Picks a node for model, skipping the ids in excl, and takes one of its
 * slots. BUSY (worth waiting for) needs a node that is only full or still
 * loading; when every node serving the model is suspended it is DOWN, with
 * lease->retry_s set, so that clients are told at once instead of queueing
 * behind a node known to be failing. */
rt_pick_t rt_registry_acquire(rt_registry_t *reg, const char *model, const char *const *excl,
                              size_t nexcl, rt_lease_t *lease);
/* Gives the slot back and records the outcome (latency only for OK). */
void rt_registry_release(rt_registry_t *reg, const rt_lease_t *lease, rt_outcome_t outcome);
/* True when some online node lists the model. */
bool rt_registry_model_known(rt_registry_t *reg, const char *model);

/* ---- snapshots for the read APIs ---- */

/* One heartbeat sample. Percentages < 0: not reported. */
typedef struct {
    uint64_t wall_ms;
    float cpu, mem, gpu, gpu_mem, avg_ms, tps;
    int active, inflight;
} rt_node_sample_t;

/* A copy of one node as it was when the snapshot was taken. Every pointer is
 * owned by the view (rt_registry_views_free). */
typedef struct {
    char id[RT_NODE_ID_MAX];
    char *machine_name, *ip_address, *runtime_version;
    char *gpu_devices_json; /* JSON array text, as registered */
    char *custom_name;      /* NULL when unset */
    char *tags_json;        /* JSON array text */
    char *notes;            /* NULL when unset */
    int runtime_port, api_port;
    bool gpu_available;
    int64_t registered_at;  /* ms since epoch */
    char **models, **loaded;
    size_t nmodels, nloaded;
    /* state */
    const char *status;     /* "online", "initializing", "suspended", "offline" (static) */
    bool online, initializing, suspended;
    uint64_t last_seen_wall; /* ms since epoch, 0: never */
    int slots;              /* reported, or the default */
    int inflight, active, queued;
    double cpu, mem, gpu, gpu_mem, avg_ms, tps;
    int ready[2];
    /* the router's own view */
    uint64_t total, ok, failed;
    double lat_sum, lat_ewma;
    rt_node_sample_t *hist; /* oldest first; NULL unless asked for */
    size_t nhist;
    rt_node_sync_t *sync;   /* the last heartbeat's "model_sync" */
    size_t nsync;
} rt_node_view_t;

/* Every node, in registration order, with its heartbeat history when asked.
 * *out is owned by the caller (rt_registry_views_free). Returns the count. */
size_t rt_registry_snapshot(rt_registry_t *reg, bool history, rt_node_view_t **out);
/* One node: 0 and *out filled (its contents freed with
 * rt_registry_view_clear), or -1 when unknown. */
int rt_registry_snapshot_one(rt_registry_t *reg, const char *id, bool history, rt_node_view_t *out);
/* Frees the views' contents and, when owned (from rt_registry_snapshot), v. */
void rt_registry_views_free(rt_node_view_t *v, size_t n);
/* Frees one view's contents (from rt_registry_snapshot_one). */
void rt_registry_view_clear(rt_node_view_t *v);

#endif
