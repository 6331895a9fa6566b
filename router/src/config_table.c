/* The router's environment variables: the single place they are declared.
 * README's router table is generated from this (llm-router --help-markdown). */
#include "router.h"

#include "util.h"

const cm_opt_t rt_options[] = {
    { "LLM_ROUTER_HOST", { "ROUTER_HOST" }, CM_OPT_STR, "0.0.0.0", 0, 0, NULL, "Bind address" },
    { "LLM_ROUTER_PORT", { "ROUTER_PORT" }, CM_OPT_INT, "8080", 0, 65535, NULL, "Listen port (0: any free port)" },
    { "LLM_ROUTER_WORKERS", { NULL }, CM_OPT_INT, "0", 0, 256, NULL, "Event-loop threads (0: one per core)" },
    { "LLM_ROUTER_DATA_DIR", { NULL }, CM_OPT_PATH, "~/.llm-router", 0, 0, NULL, "Base directory for the database, logs and secrets" },
    { "LLM_ROUTER_DATABASE_URL", { "DATABASE_URL" }, CM_OPT_STR, "sqlite:${LLM_ROUTER_DATA_DIR}/router.db", 0, 0, NULL, "Database URL (sqlite:PATH)" },
    { "LLM_ROUTER_LOG_LEVEL", { "LLM_LOG_LEVEL", "RUST_LOG" }, CM_OPT_STR, "info", 0, 0, NULL, "Log level (trace, debug, info, warn, error)" },
    { "LLM_ROUTER_LOG_DIR", { "LLM_LOG_DIR" }, CM_OPT_PATH, "${LLM_ROUTER_DATA_DIR}/logs", 0, 0, NULL, "Directory of the JSON-lines log files" },
    { "LLM_ROUTER_LOG_RETENTION_DAYS", { "LLM_LOG_RETENTION_DAYS" }, CM_OPT_INT, "7", 1, 3650, NULL, "Days to keep log files and request history" },
    { "LLM_ROUTER_MAX_BODY_BYTES", { NULL }, CM_OPT_INT, "16777216", 1024, 1073741824, NULL, "Largest accepted request body (bytes)" },
    { "LLM_ROUTER_REQUEST_TIMEOUT", { NULL }, CM_OPT_INT, "600", 1, 86400, NULL, "Idle timeout of a client or upstream connection (seconds)" },
};
const size_t rt_options_count = CM_ARRAY_LEN(rt_options);
