/* The node's environment variables: the single place they are declared.
 * README's node table is generated from this (llm-node --help-markdown).
 * Each entry fills one field of nd_config_t (options.h). */
#include "options.h"

#include "json.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cm_opt_t nd_options[] = {
    { "LLM_ROUTER_URL", { NULL }, CM_OPT_STR, "http://127.0.0.1:8080", 0, 0, NULL, "Router URL to register with (empty: do not register)", CM_AT(nd_config_t, router_url) },
    { "LLM_ROUTER_JOIN_TOKEN", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "Join token presented when registering (X-Join-Token)", CM_AT(nd_config_t, join_token) },
    { "LLM_NODE_TOKEN", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "A node token an admin issued for this node (POST /api/nodes/:id/token): the first registration presents it to take that identity back, e.g. after a re-install on another address", CM_AT(nd_config_t, node_token) },
    { "LLM_NODE_PORT", { NULL }, CM_OPT_INT, "11435", 0, 65535, NULL, "Node listen port (0: any free port)", CM_AT(nd_config_t, port) },
    { "LLM_NODE_BIND_ADDRESS", { "LLM_BIND_ADDRESS" }, CM_OPT_STR, "0.0.0.0", 0, 0, NULL, "Bind address", CM_AT(nd_config_t, bind_address) },
    { "LLM_NODE_IP", { NULL }, CM_OPT_STR, NULL, 0, 0, NULL, "Node IP reported to the router (default: the address that routes to it)", CM_AT(nd_config_t, node_ip) },
    { "LLM_NODE_MODELS_DIR", { "LLM_MODELS_DIR" }, CM_OPT_PATH, "~/.llm-router/models", 0, 0, NULL, "Model storage directory (*.gguf)", CM_AT(nd_config_t, models_dir) },
    { "LLM_NODE_HEARTBEAT_SECS", { "LLM_HEARTBEAT_SECS" }, CM_OPT_INT, "10", 1, 3600, NULL, "Heartbeat interval (seconds)", CM_AT(nd_config_t, heartbeat_s) },
    { "LLM_NODE_LOG_LEVEL", { "LLM_LOG_LEVEL", "LOG_LEVEL" }, CM_OPT_STR, "info", 0, 0, NULL, "Log level (trace, debug, info, warn, error)", CM_AT(nd_config_t, log_level) },
    { "LLM_NODE_LOG_DIR", { "LLM_LOG_DIR" }, CM_OPT_PATH, "~/.llm-router/logs", 0, 0, NULL, "Log directory", CM_AT(nd_config_t, log_dir) },
    { "LLM_NODE_LOG_RETENTION_DAYS", { "LLM_LOG_RETENTION_DAYS" }, CM_OPT_INT, "7", 1, 3650, NULL, "Log retention days", CM_AT(nd_config_t, log_retention_days) },
    { "LLM_NODE_CONFIG", { NULL }, CM_OPT_PATH, "~/.llm-router/config.json", 0, 0, NULL, "JSON file of these variables, read for those not in the environment", CM_AT(nd_config_t, config_file) },
    { "LLM_NODE_PARALLEL", { NULL }, CM_OPT_INT, "4", 1, 64, NULL, "Requests one model serves at once (parallel sequences)", CM_AT(nd_config_t, parallel) },
    { "LLM_NODE_THREADS", { NULL }, CM_OPT_INT, "0", 0, 1024, NULL, "Inference threads (0: one per core)", CM_AT(nd_config_t, threads) },
    { "LLM_NODE_CTX_SIZE", { NULL }, CM_OPT_INT, "0", 0, 1048576, NULL, "Context tokens per request (0: the model's, at most 4096)", CM_AT(nd_config_t, ctx_size) },
    { "LLM_NODE_BATCH_SIZE", { NULL }, CM_OPT_INT, "512", 1, 65536, NULL, "Tokens per decode step (prompt chunks + one per active request)", CM_AT(nd_config_t, batch_size) },
    { "LLM_NODE_GPU_LAYERS", { NULL }, CM_OPT_INT, "-1", -1, 100000, NULL, "Layers offloaded to a GPU backend (-1: all)", CM_AT(nd_config_t, gpu_layers) },
    { "LLM_NODE_MODEL_IDLE_TIMEOUT", { "LLM_MODEL_IDLE_TIMEOUT" }, CM_OPT_INT, NULL, 0, 31536000, NULL, "Seconds before an idle model is unloaded (unset: never)", CM_AT(nd_config_t, model_idle_timeout_s) },
    { "LLM_NODE_MAX_LOADED_MODELS", { "LLM_MAX_LOADED_MODELS" }, CM_OPT_INT, NULL, 0, 16, NULL, "Cap on simultaneously loaded models (unset: the engine's limit, 16)", CM_AT(nd_config_t, max_loaded_models) },
    { "LLM_NODE_MAX_MEMORY_BYTES", { "LLM_MAX_MEMORY_BYTES" }, CM_OPT_INT, NULL, 0, 4611686018427387904LL, NULL, "Cap on the bytes of loaded models (unset: none)", CM_AT(nd_config_t, max_memory_bytes) },
    { "LLM_NODE_LLAMA_LIB_DIR", { NULL }, CM_OPT_PATH, NULL, 0, 0, NULL, "Directory of the ggml backend libraries (unset: the one found at build time)", CM_AT(nd_config_t, llama_lib_dir) },
    { "LLM_NODE_MAX_BODY_BYTES", { NULL }, CM_OPT_INT, "16777216", 1024, 1073741824, NULL, "Largest accepted request body (bytes)", CM_AT(nd_config_t, max_body_bytes) },
    { "LLM_NODE_STARTUP_DELAY_MS", { NULL }, CM_OPT_INT, "0", 0, 600000, NULL, "Extra time the node stays in its starting state (503 on /startup) before it reports ready (ms; for probe tests)", CM_AT(nd_config_t, startup_delay_ms) },
    { "LLM_NODE_REQUEST_TIMEOUT", { NULL }, CM_OPT_INT, "600", 1, 86400, NULL, "A client that stops reading a reply is disconnected after this long (seconds; keep-alive idle has its own setting)", CM_AT(nd_config_t, request_timeout_s) },
    { "LLM_NODE_REQUEST_READ_TIMEOUT", { NULL }, CM_OPT_INT, "60", 1, 86400, NULL, "A client's request (head and body) must arrive within this long of its first byte, else 408 (seconds)", CM_AT(nd_config_t, request_read_timeout_s) },
    /* node credentials and registration (hardening) */
    { "LLM_NODE_API_KEY", { NULL }, CM_OPT_SECRET, NULL, 0, 0, NULL, "Key clients present to call the node directly (Authorization: Bearer <key>); the router uses the secret it issued at registration", CM_AT(nd_config_t, api_key) },
    /* HTTP limits (hardening) */
    { "LLM_NODE_BODY_BUDGET_BYTES", { NULL }, CM_OPT_INT, "268435456", 1048576, 2147483647, NULL, "Request body bytes buffered at once across all client connections; a body beyond gets 503 with Retry-After", CM_AT(nd_config_t, body_budget_bytes) },
    { "LLM_NODE_CLIENT_HEADER_TIMEOUT", { NULL }, CM_OPT_INT, "10", 1, 3600, NULL, "A new connection's first request head must be complete this long after accept (a later request's, after its first byte); silence closes, a partial head gets 408 (seconds)", CM_AT(nd_config_t, client_header_timeout_s) },
    { "LLM_NODE_KEEPALIVE_TIMEOUT", { NULL }, CM_OPT_INT, "75", 1, 86400, NULL, "An idle keep-alive client connection closes after this long between requests (seconds)", CM_AT(nd_config_t, keepalive_timeout_s) },
    { "LLM_NODE_MAX_CONNS_PER_IP", { NULL }, CM_OPT_INT, "0", 0, 1000000, NULL, "Open client connections per client address; one beyond gets 503 and is closed (0: no limit)", CM_AT(nd_config_t, max_conns_per_ip) },
    /* auth and secrets (hardening) */
    { "LLM_NODE_LOG_MAX_BYTES", { NULL }, CM_OPT_INT, "104857600", 0, 1099511627776LL, NULL, "Size of a day's log file at which it rolls to <file>.1 (the previous .1 is replaced; 0: no cap)", CM_AT(nd_config_t, log_max_bytes) },
    /* model sync from the router (sync.h) */
    { "LLM_NODE_MODEL_SYNC", { NULL }, CM_OPT_BOOL, "1", 0, 0, NULL, "Pull the router's registered models into LLM_NODE_MODELS_DIR, one directory per model id (at start, every LLM_NODE_MODEL_SYNC_SECS and when a heartbeat reply says the router's catalogue changed) and remove the ones sync placed when the router deletes them (never files placed by hand)", CM_AT(nd_config_t, sync) },
    { "LLM_NODE_MODEL_SYNC_SECS", { NULL }, CM_OPT_INT, "300", 0, 86400, NULL, "Seconds between two periodic reads of the router's model list (0: only at start and when the catalogue changes)", CM_AT(nd_config_t, sync_interval_s) },
    { "LLM_NODE_MODEL_SYNC_CONCURRENCY", { NULL }, CM_OPT_INT, "2", 1, 16, NULL, "Models downloaded from the router at once", CM_AT(nd_config_t, sync_concurrency) },
    { "LLM_NODE_MODEL_SYNC_SHARED", { NULL }, CM_OPT_BOOL, "1", 0, 0, NULL, "Use a registered model's router path in place (a symlink to it in the model's directory, no copy) when it is readable here with the listed size (shared storage); 0: always download the blob", CM_AT(nd_config_t, sync_shared) },
};
const size_t nd_options_count = CM_ARRAY_LEN(nd_options);

struct nd_config_file {
    cJSON *root;
    char buf[64];
};

/* The file is read before the table loads (its values are the lookup's
 * fallback), so its path is the one option looked up on its own; its name,
 * aliases and default still come from its entry, written once above. */
static const cm_opt_t *config_file_opt(void)
{
    for (size_t i = 0; i < nd_options_count; i++)
        if (nd_options[i].off == offsetof(nd_config_t, config_file))
            return &nd_options[i];
    abort(); /* the table lost its entry: a programming error every start hits */
}

nd_config_file_t *nd_config_file_load(void)
{
    nd_config_file_t *f = cm_xcalloc(1, sizeof(*f));
    const cm_opt_t *o = config_file_opt();
    const char *p = getenv(o->name);
    for (size_t a = 0; !p && a < CM_ARRAY_LEN(o->legacy) && o->legacy[a]; a++)
        p = getenv(o->legacy[a]);
    char *path = cm_expand_home(p ? p : o->def);
    char *text = NULL;
    size_t len;
    if (cm_read_file(path, 1 << 20, &text, &len) == 0) {
        f->root = cm_json_parse(text, len);
        if (!f->root || !cJSON_IsObject(f->root))
            fprintf(stderr, "llm-node: ignoring %s: not a JSON object\n", path);
    }
    free(text);
    free(path);
    return f;
}

void nd_config_file_free(nd_config_file_t *f)
{
    if (!f)
        return;
    cJSON_Delete(f->root);
    free(f);
}

const char *nd_config_getenv(const char *name, void *ud)
{
    const char *v = getenv(name);
    nd_config_file_t *f = ud;
    if (v || !f || !f->root || !cJSON_IsObject(f->root))
        return v;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(f->root, name);
    if (cJSON_IsString(it))
        return it->valuestring;
    if (cJSON_IsNumber(it)) {
        snprintf(f->buf, sizeof(f->buf), "%lld", (long long)it->valuedouble);
        return f->buf;
    }
    if (cJSON_IsBool(it))
        return cJSON_IsTrue(it) ? "1" : "0";
    return NULL;
}
