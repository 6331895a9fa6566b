/* options: the router's typed configuration, filled once at start from the
 * option table (options.c) by cm_config_load; modules read its fields and
 * never look a value up by name. The bottom layer of router/: any module may
 * include it, it includes nothing of the router.
 *
 * Strings point into the cm_config_t that loaded them (valid while it lives);
 * NULL means unset with no default. Durations keep their variable's unit,
 * named in the field. */
#ifndef RT_OPTIONS_H
#define RT_OPTIONS_H

#include "config.h"

#include <stdbool.h>

typedef struct rt_config {
    /* HTTP server */
    const char *host;
    int port;
    int workers; /* 0: one per core */
    int max_body_bytes;
    int request_timeout_s;
    int request_read_timeout_s;
    /* files and logs */
    const char *data_dir;
    const char *database_url;
    const char *log_level;
    const char *log_dir;
    int log_retention_days;
    /* auth */
    const char *jwt_secret;
    int jwt_ttl_s;
    const char *admin_username;
    const char *admin_password;
    const char *join_token;
    bool open_registration;
    int login_max_failures;
    int login_window_s;
    /* nodes, balancing, admission, proxy */
    int health_check_interval_s;
    int node_timeout_s;
    bool skip_health_check;
    int node_suspend_s;
    const char *load_balancer_mode;
    int default_node_slots;
    int max_waiters;
    int queue_timeout_s;
    int max_retries;
    bool require_gpu;
    /* node credentials and registration (hardening) */
    bool trust_node_address;
    int node_expire_s;
    int register_rate_per_min;
    /* auth and secrets (hardening) */
    int login_max_address_failures;
    int login_max_concurrent;
    long long log_max_bytes;
    /* proxy time limits (hardening) */
    int node_header_timeout_s;
    int stream_idle_timeout_s;
    /* HTTP limits (hardening) */
    int body_budget_bytes;
    int client_header_timeout_s;
    int keepalive_timeout_s;
    int max_conns_per_ip;
    /* request history and metrics */
    bool history;
    bool history_bodies;
    int history_max_body_bytes;
    int history_queue;
    const char *history_path;
    bool metrics_public;
    /* outbound HTTPS (cloud providers, Hugging Face) */
    const char *ca_bundle;
    /* models (models/models.c, models/downloads.c) */
    const char *models_dir;
    const char *hf_base_url;
    const char *hf_token;
    int model_downloads;
    const char *converter;
    int convert_timeout_s;
    /* cloud prefixes (core/cloud_proxy.c) */
    const char *openai_api_key;
    const char *openai_base_url;
    const char *google_api_key;
    const char *google_base_url;
    const char *anthropic_api_key;
    const char *anthropic_base_url;
    const char *anthropic_version;
    int anthropic_max_tokens;
    const char *cloud_models;
    int cloud_retries;
    int cloud_header_timeout_s;
    int cloud_idle_timeout_s;
} rt_config_t;

/* The router's option table: every environment variable it reads. */
extern const cm_opt_t rt_options[];
extern const size_t rt_options_count;

#endif
