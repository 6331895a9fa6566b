/* llm-router-mcp: the MCP server over stdio (server.h). Nothing but
 * protocol goes to stdout; logs go to stderr. */
#include "options.h"
#include "server.h"

#include "config.h"
#include "log.h"
#include "mask.h"
#include "util.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] = "llm-router-mcp [--help | --help-markdown | --version]\n"
                            "An MCP server over stdio for one LLM Router; configured by these environment variables:";

int main(int argc, char **argv)
{
    cm_util_init();
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            cm_config_print_help(stdout, "llm-router-mcp", usage, mcp_options, mcp_options_count);
            return 0;
        }
        if (strcmp(argv[1], "--help-markdown") == 0) {
            cm_config_print_markdown(stdout, mcp_options, mcp_options_count);
            return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
            printf("%s %s\n", MCP_SERVER_NAME, MCP_SERVER_VERSION);
            return 0;
        }
        fprintf(stderr, "llm-router-mcp: unknown argument %s (try --help)\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    mcp_config_t cfg = { 0 };
    cm_config_t *loaded = NULL;
    char err[512];
    if (cm_config_load(mcp_options, mcp_options_count, NULL, NULL, &cfg, &loaded, err, sizeof(err)) != 0) {
        fprintf(stderr, "llm-router-mcp: %s\n", err);
        return 2;
    }
    int lvl = cm_log_level_parse(cfg.log_level);
    cm_log_set_level(lvl < 0 ? CM_LOG_INFO : (cm_log_level_t)lvl);
    const char *const *warn = NULL;
    size_t nw = cm_config_warnings(loaded, &warn);
    for (size_t i = 0; i < nw; i++)
        LOG_WARN("mcp", "%s", warn[i]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 1;
    mcp_server_t *s = mcp_server_new(&cfg, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "llm-router-mcp: %s\n", err);
        rc = 2;
        goto out;
    }
    char key[32];
    mcp_mask_key(cfg.api_key, key, sizeof(key));
    LOG_INFO("mcp", "serving MCP on stdio for %s (API key %s, management %s)", cfg.router_url,
             cfg.api_key ? key : "unset",
             cfg.jwt_token ? "session token" : cfg.username ? "login as LLM_ROUTER_USERNAME" : "unset");
    rc = mcp_server_run(s, STDIN_FILENO, STDOUT_FILENO) == 0 ? 0 : 1;
out:
    mcp_server_free(s);
    mcp_mask_clear();
    curl_global_cleanup();
    cm_config_free(loaded);
    return rc;
}
