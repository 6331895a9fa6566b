/* The router's environment variables: the single place they are declared.
 * README's router table is generated from this (llm-router --help-markdown).
 * Each entry fills one field of rt_config_t (options.h). */
#include "options.h"

#include "util.h"

const cm_opt_t rt_options[] = {
    { "LLM_ROUTER_HOST", { "ROUTER_HOST" }, CM_OPT_STR, "0.0.0.0", 0, 0, NULL, "Bind address", CM_AT(rt_config_t, host) },
    { "LLM_ROUTER_PORT", { "ROUTER_PORT" }, CM_OPT_INT, "8080", 0, 65535, NULL, "Listen port (0: any free port)", CM_AT(rt_config_t, port) },
    { "LLM_ROUTER_WORKERS", { NULL }, CM_OPT_INT, "0", 0, 256, NULL, "Event-loop threads (0: one per core)", CM_AT(rt_config_t, workers) },
    { "LLM_ROUTER_DATA_DIR", { NULL }, CM_OPT_PATH, "~/.llm-router", 0, 0, NULL, "Base directory for the database, logs and secrets", CM_AT(rt_config_t, data_dir) },
    { "LLM_ROUTER_DATABASE_URL", { "DATABASE_URL" }, CM_OPT_STR, "sqlite:${LLM_ROUTER_DATA_DIR}/router.db", 0, 0, NULL, "Database URL (sqlite:PATH)", CM_AT(rt_config_t, database_url) },
    { "LLM_ROUTER_LOG_LEVEL", { "LLM_LOG_LEVEL", "RUST_LOG" }, CM_OPT_STR, "info", 0, 0, NULL, "Log level (trace, debug, info, warn, error)", CM_AT(rt_config_t, log_level) },
    { "LLM_ROUTER_LOG_DIR", { "LLM_LOG_DIR" }, CM_OPT_PATH, "${LLM_ROUTER_DATA_DIR}/logs", 0, 0, NULL, "Directory of the JSON-lines log files", CM_AT(rt_config_t, log_dir) },
    { "LLM_ROUTER_LOG_RETENTION_DAYS", { "LLM_LOG_RETENTION_DAYS" }, CM_OPT_INT, "7", 1, 3650, NULL, "Days to keep log files and request history", CM_AT(rt_config_t, log_retention_days) },
    { "LLM_ROUTER_MAX_BODY_BYTES", { NULL }, CM_OPT_INT, "16777216", 1024, 1073741824, NULL, "Largest accepted request body (bytes)", CM_AT(rt_config_t, max_body_bytes) },
    { "LLM_ROUTER_REQUEST_TIMEOUT", { NULL }, CM_OPT_INT, "600", 1, 86400, NULL, "A client that stops reading a reply is disconnected after this long (seconds; keep-alive idle and node time limits have their own settings)", CM_AT(rt_config_t, request_timeout_s) },
    { "LLM_ROUTER_REQUEST_READ_TIMEOUT", { NULL }, CM_OPT_INT, "60", 1, 86400, NULL, "A client's request (head and body) must arrive within this long of its first byte, else 408 (seconds)", CM_AT(rt_config_t, request_read_timeout_s) },
    /* auth (auth.c) */
    { "LLM_ROUTER_JWT_SECRET", { "JWT_SECRET" }, CM_OPT_SECRET, NULL, 0, 0, NULL, "JWT signing secret (default: generated once into <data dir>/jwt_secret, 0600)", CM_AT(rt_config_t, jwt_secret) },
    { "LLM_ROUTER_JWT_TTL", { NULL }, CM_OPT_INT, "86400", 60, 31536000, NULL, "Lifetime of a login session token (seconds)", CM_AT(rt_config_t, jwt_ttl_s) },
    { "LLM_ROUTER_ADMIN_USERNAME", { "ADMIN_USERNAME" }, CM_OPT_STR, "admin", 0, 0, NULL, "Name of the admin created at first start", CM_AT(rt_config_t, admin_username) },
    { "LLM_ROUTER_ADMIN_PASSWORD", { "ADMIN_PASSWORD" }, CM_OPT_SECRET, NULL, 0, 0, NULL, "Password of the admin created at first start (unset: generated into <data dir>/admin_password, 0600)", CM_AT(rt_config_t, admin_password) },
    { "LLM_ROUTER_JOIN_TOKEN", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "Token nodes present to register (unset: generated once into <data dir>/join_token, 0600)", CM_AT(rt_config_t, join_token) },
    { "LLM_ROUTER_OPEN_REGISTRATION", { NULL }, CM_OPT_BOOL, "0", 0, 0, NULL, "Let any host register a node without the join token (not recommended)", CM_AT(rt_config_t, open_registration) },
    { "LLM_ROUTER_LOGIN_MAX_FAILURES", { NULL }, CM_OPT_INT, "5", 1, 1000000, NULL, "Failed logins per client address before it must wait (429)", CM_AT(rt_config_t, login_max_failures) },
    { "LLM_ROUTER_LOGIN_WINDOW_SECS", { NULL }, CM_OPT_INT, "60", 1, 86400, NULL, "Window of the failed-login limit (seconds)", CM_AT(rt_config_t, login_window_s) },
    /* nodes, balancing, admission, proxy (registry.c, health.c, admission.c, proxy.c) */
    { "LLM_ROUTER_HEALTH_CHECK_INTERVAL", { "HEALTH_CHECK_INTERVAL" }, CM_OPT_INT, "30", 1, 86400, NULL, "Node health check interval (seconds)", CM_AT(rt_config_t, health_check_interval_s) },
    { "LLM_ROUTER_NODE_TIMEOUT", { "NODE_TIMEOUT" }, CM_OPT_INT, "60", 1, 86400, NULL, "A node without a heartbeat for this long goes offline (seconds)", CM_AT(rt_config_t, node_timeout_s) },
    { "LLM_ROUTER_SKIP_HEALTH_CHECK", { NULL }, CM_OPT_BOOL, "0", 0, 0, NULL, "Never mark silent nodes offline (tests)", CM_AT(rt_config_t, skip_health_check) },
    { "LLM_ROUTER_NODE_SUSPEND_SECS", { NULL }, CM_OPT_INT, "5", 1, 3600, NULL, "A node that fails a request at connection level gets no new requests for this long, or until its next heartbeat; while every node of a model is suspended its requests get 503 with Retry-After (seconds)", CM_AT(rt_config_t, node_suspend_s) },
    { "LLM_ROUTER_LOAD_BALANCER_MODE", { "LOAD_BALANCER_MODE" }, CM_OPT_ENUM, "auto", 0, 0, "auto,metrics,round_robin", "Load balancer mode (auto, metrics, round_robin)", CM_AT(rt_config_t, load_balancer_mode) },
    { "LLM_ROUTER_DEFAULT_NODE_SLOTS", { NULL }, CM_OPT_INT, "4", 1, 4096, NULL, "Parallel slots assumed for a node that reports none", CM_AT(rt_config_t, default_node_slots) },
    { "LLM_ROUTER_MAX_WAITERS", { "ROUTER_MAX_WAITERS" }, CM_OPT_INT, "1024", 1, 1000000, NULL, "Admission queue limit (requests waiting for a free node slot)", CM_AT(rt_config_t, max_waiters) },
    { "LLM_ROUTER_QUEUE_TIMEOUT", { NULL }, CM_OPT_INT, "30", 1, 86400, NULL, "Longest wait in the admission queue before 503 (seconds)", CM_AT(rt_config_t, queue_timeout_s) },
    { "LLM_ROUTER_MAX_RETRIES", { NULL }, CM_OPT_INT, "2", 0, 16, NULL, "Retries on another node when a node fails before any byte reached the client", CM_AT(rt_config_t, max_retries) },
    { "LLM_ROUTER_REQUIRE_GPU", { NULL }, CM_OPT_BOOL, "0", 0, 0, NULL, "Reject nodes without a GPU at registration (403)", CM_AT(rt_config_t, require_gpu) },
    /* node credentials and registration (hardening) */
    { "LLM_ROUTER_TRUST_NODE_ADDRESS", { NULL }, CM_OPT_BOOL, "0", 0, 0, NULL, "Send requests to the ip_address a node registers with (an IP literal) instead of the address its registration came from (nodes behind NAT or a proxy)", CM_AT(rt_config_t, trust_node_address) },
    { "LLM_ROUTER_NODE_EXPIRE_SECS", { NULL }, CM_OPT_INT, "86400", 0, 31536000, NULL, "A node offline for this long is forgotten (registry and database; 0: never)", CM_AT(rt_config_t, node_expire_s) },
    { "LLM_ROUTER_REGISTER_RATE_PER_MIN", { NULL }, CM_OPT_INT, "10", 0, 1000000, NULL, "Registrations accepted per client address per minute (429 beyond; 0: no limit)", CM_AT(rt_config_t, register_rate_per_min) },
    /* auth and secrets (hardening) */
    { "LLM_ROUTER_LOGIN_MAX_ADDRESS_FAILURES", { NULL }, CM_OPT_INT, "20", 1, 1000000, NULL, "Failed logins per client address, whatever the account, before it must wait (429); a success does not reset it", CM_AT(rt_config_t, login_max_address_failures) },
    { "LLM_ROUTER_LOGIN_MAX_CONCURRENT", { NULL }, CM_OPT_INT, "1", 1, 64, NULL, "Logins of one client address queued or being checked at once (429 with Retry-After: 1 beyond)", CM_AT(rt_config_t, login_max_concurrent) },
    { "LLM_ROUTER_LOG_MAX_BYTES", { NULL }, CM_OPT_INT, "104857600", 0, 1099511627776LL, NULL, "Size of a day's log file at which it rolls to <file>.1 (the previous .1 is replaced; 0: no cap)", CM_AT(rt_config_t, log_max_bytes) },
    /* proxy time limits (hardening) */
    { "LLM_ROUTER_NODE_HEADER_TIMEOUT", { NULL }, CM_OPT_INT, "300", 0, 86400, NULL, "A node must send its response head within this long of a request, else the request is retried on another node and the node suspended (seconds; 0: the stream idle limit bounds it instead). A non-streaming answer's head comes when the whole answer is ready, so this bounds a non-streaming generation", CM_AT(rt_config_t, node_header_timeout_s) },
    { "LLM_ROUTER_STREAM_IDLE_TIMEOUT", { NULL }, CM_OPT_INT, "120", 0, 86400, NULL, "After a node's response head, its longest silence between body bytes: a stream then ends with an error event (retried instead while nothing reached the client) (seconds; 0: no limit)", CM_AT(rt_config_t, stream_idle_timeout_s) },
    /* HTTP limits (hardening) */
    { "LLM_ROUTER_BODY_BUDGET_BYTES", { NULL }, CM_OPT_INT, "268435456", 1048576, 2147483647, NULL, "Request body bytes buffered at once across all client connections; a body beyond gets 503 with Retry-After", CM_AT(rt_config_t, body_budget_bytes) },
    { "LLM_ROUTER_CLIENT_HEADER_TIMEOUT", { NULL }, CM_OPT_INT, "10", 1, 3600, NULL, "A new connection's first request head must be complete this long after accept (a later request's, after its first byte); silence closes, a partial head gets 408 (seconds)", CM_AT(rt_config_t, client_header_timeout_s) },
    { "LLM_ROUTER_KEEPALIVE_TIMEOUT", { NULL }, CM_OPT_INT, "75", 1, 86400, NULL, "An idle keep-alive client connection closes after this long between requests (seconds)", CM_AT(rt_config_t, keepalive_timeout_s) },
    { "LLM_ROUTER_MAX_CONNS_PER_IP", { NULL }, CM_OPT_INT, "0", 0, 1000000, NULL, "Open client connections per client address; one beyond gets 503 and is closed (0: no limit)", CM_AT(rt_config_t, max_conns_per_ip) },
    /* request history and metrics (core/recorder.c, store/history.c, api/api_metrics.c) */
    { "LLM_ROUTER_HISTORY", { NULL }, CM_OPT_BOOL, "1", 0, 0, NULL, "Record every proxied request in the request history (0: off; metrics still count them)", CM_AT(rt_config_t, history) },
    { "LLM_ROUTER_HISTORY_BODIES", { NULL }, CM_OPT_BOOL, "1", 0, 0, NULL, "Keep request and response bodies in the history (0: metadata only)", CM_AT(rt_config_t, history_bodies) },
    { "LLM_ROUTER_HISTORY_MAX_BODY_BYTES", { NULL }, CM_OPT_INT, "65536", 256, 16777216, NULL, "Bytes of each request and response body kept in the history (longer ones are cut and flagged truncated)", CM_AT(rt_config_t, history_max_body_bytes) },
    { "LLM_ROUTER_HISTORY_QUEUE", { NULL }, CM_OPT_INT, "20000", 16, 10000000, NULL, "History rows waiting for the writer; beyond, rows are dropped and counted (llm_router_history_dropped_total)", CM_AT(rt_config_t, history_queue) },
    { "LLM_ROUTER_HISTORY_PATH", { NULL }, CM_OPT_PATH, "${LLM_ROUTER_DATA_DIR}/history.db", 0, 0, NULL, "SQLite file of the request history (its own file beside the database)", CM_AT(rt_config_t, history_path) },
    { "LLM_ROUTER_METRICS_PUBLIC", { NULL }, CM_OPT_BOOL, "0", 0, 0, NULL, "Serve /metrics, /metrics/cloud and /metrics/targets without credentials", CM_AT(rt_config_t, metrics_public) },
    /* outbound HTTPS */
    { "LLM_ROUTER_CA_BUNDLE", { NULL }, CM_OPT_PATH, NULL, 0, 0, NULL, "Extra CA certificates (PEM file) trusted for outbound HTTPS to cloud providers and Hugging Face, beside the system store", CM_AT(rt_config_t, ca_bundle) },
    /* models (models/models.c, models/downloads.c) */
    { "LLM_ROUTER_MODELS_DIR", { NULL }, CM_OPT_PATH, "${LLM_ROUTER_DATA_DIR}/models", 0, 0, NULL, "Directory of the router's model files (registered, downloaded, discovered)", CM_AT(rt_config_t, models_dir) },
    { "HF_BASE_URL", { "HF_ENDPOINT" }, CM_OPT_STR, "https://huggingface.co", 0, 0, NULL, "Hugging Face Hub base URL (a mirror or cache)", CM_AT(rt_config_t, hf_base_url) },
    { "HF_TOKEN", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "Hugging Face token (gated repositories, higher rate limits); sent only to the Hub's own host", CM_AT(rt_config_t, hf_token) },
    { "LLM_ROUTER_MODEL_DOWNLOADS", { NULL }, CM_OPT_INT, "2", 1, 64, NULL, "Model download and conversion tasks running at once (more wait queued)", CM_AT(rt_config_t, model_downloads) },
    { "LLM_ROUTER_CONVERTER", { NULL }, CM_OPT_STR, NULL, 0, 0, NULL, "Command that converts a downloaded non-GGUF repository to GGUF (see README \"Conversion\"; unset: conversion tasks fail naming this setting)", CM_AT(rt_config_t, converter) },
    { "LLM_ROUTER_CONVERT_TIMEOUT", { NULL }, CM_OPT_INT, "7200", 1, 604800, NULL, "Longest run of the converter before it is killed (seconds)", CM_AT(rt_config_t, convert_timeout_s) },
    /* cloud prefixes (core/cloud_proxy.c) */
    { "OPENAI_API_KEY", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "API key for openai: models", CM_AT(rt_config_t, openai_api_key) },
    { "OPENAI_BASE_URL", { NULL }, CM_OPT_STR, "https://api.openai.com", 0, 0, NULL, "OpenAI base URL", CM_AT(rt_config_t, openai_base_url) },
    { "GOOGLE_API_KEY", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "API key for google: models", CM_AT(rt_config_t, google_api_key) },
    { "GOOGLE_API_BASE_URL", { NULL }, CM_OPT_STR, "https://generativelanguage.googleapis.com/v1beta", 0, 0, NULL, "Google Gemini API base URL", CM_AT(rt_config_t, google_base_url) },
    { "ANTHROPIC_API_KEY", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "API key for anthropic: (and ahtnorpic:) models", CM_AT(rt_config_t, anthropic_api_key) },
    { "ANTHROPIC_API_BASE_URL", { NULL }, CM_OPT_STR, "https://api.anthropic.com", 0, 0, NULL, "Anthropic API base URL", CM_AT(rt_config_t, anthropic_base_url) },
    { "LLM_ROUTER_ANTHROPIC_VERSION", { NULL }, CM_OPT_STR, "2023-06-01", 0, 0, NULL, "anthropic-version header sent to Anthropic", CM_AT(rt_config_t, anthropic_version) },
    { "LLM_ROUTER_ANTHROPIC_MAX_TOKENS", { NULL }, CM_OPT_INT, "4096", 1, 1000000, NULL, "max_tokens sent to Anthropic when the client gave none (Anthropic requires it)", CM_AT(rt_config_t, anthropic_max_tokens) },
    { "LLM_ROUTER_CLOUD_MODELS", { NULL }, CM_OPT_STR, NULL, 0, 0, NULL, "Cloud models listed in /v1/models, comma-separated (openai:gpt-4o-mini,anthropic:claude-3-5-haiku-latest); any provider:name is accepted whether listed or not", CM_AT(rt_config_t, cloud_models) },
    { "LLM_ROUTER_CLOUD_RETRIES", { NULL }, CM_OPT_INT, "2", 0, 10, NULL, "Retries of a cloud call that got 429, 5xx or no connection before any byte reached the client (back-off honours Retry-After)", CM_AT(rt_config_t, cloud_retries) },
    { "LLM_ROUTER_CLOUD_HEADER_TIMEOUT", { NULL }, CM_OPT_INT, "300", 1, 86400, NULL, "A cloud provider must send its response head within this long (seconds)", CM_AT(rt_config_t, cloud_header_timeout_s) },
    { "LLM_ROUTER_CLOUD_IDLE_TIMEOUT", { NULL }, CM_OPT_INT, "120", 1, 86400, NULL, "Longest silence of a cloud provider's stream after its head (seconds)", CM_AT(rt_config_t, cloud_idle_timeout_s) },
};
const size_t rt_options_count = CM_ARRAY_LEN(rt_options);
