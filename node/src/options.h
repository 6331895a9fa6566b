/* options: the node's typed configuration, filled once at start from the
 * option table (options.c) by cm_config_load; modules read its fields and
 * never look a value up by name. Strings point into the cm_config_t that
 * loaded them (valid while it lives); NULL means unset with no default; an
 * unset integer without default is 0 (its "off" value). */
#ifndef ND_OPTIONS_H
#define ND_OPTIONS_H

#include "config.h"

#include <stdbool.h>

typedef struct nd_config {
    /* router */
    const char *router_url;
    const char *join_token;
    const char *node_token;
    const char *node_ip;
    int heartbeat_s;
    /* HTTP server */
    int port;
    const char *bind_address;
    int max_body_bytes;
    int request_timeout_s;
    int request_read_timeout_s;
    int startup_delay_ms;
    /* logs, files */
    const char *log_level;
    const char *log_dir;
    int log_retention_days;
    const char *config_file;
    const char *models_dir;
    const char *llama_lib_dir;
    /* engine */
    int parallel;
    int threads;
    int ctx_size;
    int batch_size;
    int gpu_layers;
    int model_idle_timeout_s;
    int max_loaded_models;
    long long max_memory_bytes;
    /* node credentials and registration (hardening) */
    const char *api_key;
    /* HTTP limits (hardening) */
    int body_budget_bytes;
    int client_header_timeout_s;
    int keepalive_timeout_s;
    int max_conns_per_ip;
    /* auth and secrets (hardening) */
    long long log_max_bytes;
    /* model sync from the router (sync.h) */
    bool sync;
    int sync_interval_s;
    int sync_concurrency;
    bool sync_shared;
} nd_config_t;

/* The node's option table: every environment variable it reads. */
extern const cm_opt_t nd_options[];
extern const size_t nd_options_count;
/* Environment lookup that falls back to the JSON file LLM_NODE_CONFIG
 * ({"LLM_NODE_PORT": 11435, ...}); ud is an nd_config_file_t. */
typedef struct nd_config_file nd_config_file_t;
nd_config_file_t *nd_config_file_load(void);
void nd_config_file_free(nd_config_file_t *f);
const char *nd_config_getenv(const char *name, void *ud);

#endif
