/* registry: every node the router knows, its state, its metrics and the
 * router's own statistics of it; the one owner of node state.
 *
 * All state sits behind one mutex held only for short, allocation-light
 * sections, so any worker thread may call any function. Selection
 * (rt_registry_acquire) runs the balancer over a snapshot taken under that
 * lock and takes the slot in the same section, which keeps in-flight counts
 * exact: every successful acquire is matched by exactly one release.
 *
 * Persistence and tokens are not done here (api_nodes.c does them): the
 * registry converts to and from the store's record type only. */
#ifndef RT_REGISTRY_H
#define RT_REGISTRY_H

#include "core/balancer.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_registry rt_registry_t;

#define RT_REGISTRY_MAX_NODES 1024
#define RT_REGISTRY_MAX_MODELS 512 /* per node */

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
} rt_node_info_t;

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
} rt_node_metrics_t;

/* A taken slot: the node to send to. Filled by rt_registry_acquire. */
typedef struct {
    char node_id[40];
    char base_url[96]; /* "http://ip:api_port" */
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
int rt_registry_register(rt_registry_t *reg, const rt_node_info_t *info, char id_out[40], bool *created);
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
bool rt_registry_exists(rt_registry_t *reg, const char *id);

/* Health: nodes silent for longer than timeout_ms go offline; suspensions
 * that ran out end. Returns how many went offline. */
int rt_registry_sweep(rt_registry_t *reg, uint64_t now_ms, uint64_t timeout_ms);
/* The node failed at connection level: no new requests for ms (a heartbeat
 * lifts it early). */
void rt_registry_suspend(rt_registry_t *reg, const char *id, uint64_t ms);

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

/* JSON for the APIs (caller frees with cJSON_Delete). */
cJSON *rt_registry_nodes_json(rt_registry_t *reg);
/* One node (NULL when unknown); with its metrics history when asked. */
cJSON *rt_registry_node_json(rt_registry_t *reg, const char *id, bool history);
cJSON *rt_registry_metrics_json(rt_registry_t *reg);
cJSON *rt_registry_summary_json(rt_registry_t *reg);
/* OpenAI model objects of every model an online node serves, with
 * "ready_nodes"; only model when not NULL (NULL result when not served). */
cJSON *rt_registry_models_json(rt_registry_t *reg, const char *model);

#endif
