/* node: the process-wide context every node module receives.
 *
 * Built once by nd_node_new() from the configuration. The HTTP server runs
 * one event loop (the engine is the parallel part); the engine and the router
 * agent run on their own threads. */
#ifndef ND_NODE_H
#define ND_NODE_H

#include "http_server.h"
#include "options.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct nd_models nd_models_t;
typedef struct nd_engine nd_engine_t;
typedef struct nd_stats nd_stats_t;
typedef struct nd_agent nd_agent_t;
typedef struct nd_sync nd_sync_t;
typedef struct nd_notify nd_notify_t;
typedef struct nd_job nd_job_t;
typedef struct nd_auth nd_auth_t;
typedef struct cm_sysinfo cm_sysinfo_sampler_t;

typedef struct nd_node {
    nd_config_t cfg;         /* typed options; strings owned by loaded */
    cm_config_t *loaded;
    nd_models_t *models;     /* models.c: files on disk */
    nd_engine_t *engine;     /* engine.c: llama.cpp */
    nd_stats_t *stats;       /* stats.c: request figures */
    _Atomic(nd_agent_t *) agent; /* agent.c: the router client (started once ready) */
    _Atomic(nd_sync_t *) sync;   /* sync.c: model sync (started before the agent; NULL: off) */
    cm_sysinfo_sampler_t *sys;
    nd_auth_t *auth;         /* auth.c: the router's secret, LLM_NODE_API_KEY */
    cm_http_server_t *http;
    nd_notify_t *notify;     /* engine -> loop wake-up (server.c) */
    int port;
    uint64_t start_ms;
    /* Set once the server listens, the models are scanned and the engine's
     * backend is loaded; until then engine is NULL and the routes that need
     * it answer 503 (the loop thread reads engine and models only after
     * seeing ready). */
    atomic_bool ready;
} nd_node_t;

/* The route table (server.c). */
extern const cm_http_route_t nd_routes[];
extern const size_t nd_routes_count;

/* Route policies (cm_http_route_t.policy), flags. Every route needs a
 * credential (auth.h) unless it is ND_ROUTE_OPEN. */
enum {
    ND_ROUTE_ANY = 0,
    ND_ROUTE_READY = 1, /* 503 until the node is ready */
    ND_ROUTE_OPEN = 2,  /* no credential: the probes, which then say no more than the status */
};

/* The server's pre hook (ud: the node): the credential (401, or 503 while
 * the router's secret is still to come), then readiness. */
bool nd_node_pre(cm_http_req_t *req, const cm_http_route_t *route, void *ud);
/* Whether req carries a valid credential (the probes show more then). */
bool nd_node_authorized(nd_node_t *nd, const cm_http_req_t *req);

/* Copies cfg, whose strings belong to loaded (taken over: freed with the
 * node, also on failure). 0, or -1 with a message in err. */
int nd_node_new(const nd_config_t *cfg, cm_config_t *loaded, nd_node_t **out, char *err, size_t errlen);
/* Listens (printing "LLM_NODE_BOUND port=N"), then scans the models and
 * loads the engine while /health and /startup already answer, then reports
 * ready ("LLM_NODE_LISTENING port=N"), starts the router agent and serves
 * until SIGINT/SIGTERM. Returns the exit code. */
int nd_node_run(nd_node_t *nd);
void nd_node_free(nd_node_t *nd);

/* Handlers (api.c: OpenAI endpoints; server.c: management). */
void nd_h_chat(cm_http_req_t *req, void *ud);
void nd_h_completions(cm_http_req_t *req, void *ud);
void nd_h_embeddings(cm_http_req_t *req, void *ud);
void nd_h_models(cm_http_req_t *req, void *ud);
void nd_h_model(cm_http_req_t *req, void *ud);
/* The engine's news for a job (runs on the loop thread). */
void nd_api_on_job(nd_job_t *job, void *ud);

#endif
