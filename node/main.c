/* llm-node: the inference server. Everything lives in libnode. */
#include "node.h"

#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    cm_util_init();
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cm_config_print_help(stdout, "llm-node", "[--help|--version|--help-markdown]", nd_options,
                             nd_options_count);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("llm-node %s\n", LLMR_VERSION);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--help-markdown") == 0) {
        cm_config_print_markdown(stdout, nd_options, nd_options_count);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "llm-node: unknown argument %s (configuration is by environment; see --help)\n", argv[1]);
        return 2;
    }
    /* a failed GGML_ASSERT must not try to attach a debugger */
    setenv("GGML_NO_BACKTRACE", "1", 0);
    char err[512];
    cm_config_t *loaded;
    nd_config_t cfg;
    nd_config_file_t *file = nd_config_file_load();
    int rc = cm_config_load(nd_options, nd_options_count, nd_config_getenv, file, &cfg, &loaded, err, sizeof(err));
    nd_config_file_free(file);
    if (rc != 0) {
        fprintf(stderr, "llm-node: configuration error: %s\n", err);
        return 2;
    }
    cm_config_init_log(loaded, "llm-node", "LLM_NODE_LOG_LEVEL", cfg.log_level, cfg.log_dir,
                       cfg.log_retention_days, cfg.log_max_bytes);
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        LOG_ERROR("node", "cannot initialise libsodium or libcurl");
        return 1;
    }
    nd_node_t *nd;
    if (nd_node_new(&cfg, loaded, &nd, err, sizeof(err)) != 0) {
        LOG_ERROR("node", "%s", err);
        return 1;
    }
    rc = nd_node_run(nd);
    nd_node_free(nd);
    curl_global_cleanup();
    cm_log_shutdown();
    return rc;
}
