/* llm-router: the central server. Everything lives in librouter. */
#include "cli.h"
#include "log.h"
#include "router.h"
#include "options.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LLMR_MIMALLOC
#include <mimalloc.h>
#endif

#ifdef LLMR_MIMALLOC
/* each worker loop's heap gives back what it freed (rt_router_t.trim) */
static void collect(void)
{
    mi_collect(true);
}
#endif

int main(int argc, char **argv)
{
    cm_util_init();
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cm_config_print_help(stdout, "llm-router", "[--help|--version|--help-markdown] | user ... | apikey ... (see llm-router user)", rt_options,
                             rt_options_count);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("llm-router %s\n", LLMR_VERSION);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--help-markdown") == 0) {
        cm_config_print_markdown(stdout, rt_options, rt_options_count);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--routes") == 0) /* for tests and docs */
        return rt_cli_print_routes();
    char err[512];
    cm_config_t *loaded;
    rt_config_t cfg;
    if (cm_config_load(rt_options, rt_options_count, NULL, NULL, &cfg, &loaded, err, sizeof(err)) != 0) {
        fprintf(stderr, "llm-router: configuration error: %s\n", err);
        return 2;
    }
    if (rt_cli_is_command(argc, argv)) {
        int crc = rt_cli_run(argc, argv, &cfg);
        cm_config_free(loaded);
        return crc;
    }
    if (argc > 1) {
        fprintf(stderr, "llm-router: unknown argument %s (try --help)\n", argv[1]);
        cm_config_free(loaded);
        return 2;
    }
    cm_config_init_log(loaded, "llm-router", "LLM_ROUTER_LOG_LEVEL", cfg.log_level, cfg.log_dir,
                       cfg.log_retention_days, cfg.log_max_bytes);
#ifdef LLMR_MIMALLOC
    /* also makes the link keep libmimalloc, whose malloc then serves the process */
    LOG_DEBUG("router", "allocator: mimalloc %d", mi_version());
    /* A freed segment (what a multi-MiB request body or its parse takes) is
     * given back to the system after segment_decommit_delay (500 ms), but
     * only when the thread that freed it next allocates through that layer:
     * a loop gone idle after a burst never does, and 64 x 16 MiB bodies left
     * the router at 289-340 MB for good (16 MB before). At 0 such segments go
     * back as they are freed; steady traffic rarely frees a whole segment,
     * so its cost stays off the hot path (unlike decommit_delay 0 for spans
     * inside segments: +0.7 page faults and ~15% CPU per proxied request).
     * The MIMALLOC_SEGMENT_DECOMMIT_DELAY environment variable still wins. */
    if (!getenv("MIMALLOC_SEGMENT_DECOMMIT_DELAY"))
        mi_option_set(mi_option_segment_decommit_delay, 0);
#endif

    rt_router_t *rt;
    if (rt_router_new(&cfg, loaded, &rt, err, sizeof(err)) != 0) {
        LOG_ERROR("router", "%s", err);
        return 1;
    }
#ifdef LLMR_MIMALLOC
    rt->trim = collect;
#endif
    int rc = rt_router_run(rt);
    rt_router_free(rt);
    cm_log_shutdown();
    return rc;
}
