/* resources: the MCP resources (resources.h). The texts are compiled in:
 * the API reference and the router's and node's configuration tables are
 * generated at build time (mcp/resources.cmake: gen/mcp_openapi.h from the
 * route table, gen/mcp_config.h from the binaries' --help-markdown), the
 * MCP server's own table is printed from its option table (options.c), and
 * the guides are resources_guides.c. Reading does no I/O beyond a memory
 * stream. */
#include "resources.h"

#include "config.h"
#include "mcp_config.h"
#include "mcp_openapi.h"
#include "options.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* resources_guides.c */
extern const char mcp_guide_overview[], mcp_guide_openai[], mcp_guide_nodes[], mcp_guide_models[],
    mcp_guide_dashboard[];

#define MIME_JSON "application/json"
#define MIME_MD "text/markdown"

typedef struct {
    const char *uri, *name, *title, *description, *mime;
    const char *text; /* NULL: built at read time (the configuration) */
} resource_t;

/* The seed's URIs and names (llm-router-openapi, llm-router-api-overview,
 * ...), plus the configuration. */
static const resource_t resources[] = {
    { "llm-router://api/openapi", "llm-router-openapi", "llm-router API reference (OpenAPI 3.1)",
      "Every route of the router with method, path, who may call it (x-llm-router-policy), a summary and "
      "example request bodies; generated from the router's route table",
      MIME_JSON, mcp_openapi_json },
    { "llm-router://config", "llm-router-config", "Configuration (environment variables)",
      "Every environment variable of llm-router-mcp, llm-router and llm-node with default, bounds and meaning; "
      "generated from their option tables",
      MIME_MD, NULL },
    { "llm-router://guide/overview", "llm-router-api-overview", "Guide: overview",
      "Start here: what each area does, which tools change things, credentials, errors and limits", MIME_MD,
      mcp_guide_overview },
    { "llm-router://guide/openai-compatible", "llm-router-openai-api", "Guide: OpenAI-compatible API",
      "Chat completions, embeddings and model ids under /v1", MIME_MD, mcp_guide_openai },
    { "llm-router://guide/node-management", "llm-router-node-api", "Guide: node management",
      "Node states, metrics and logs; renaming, disconnecting and deleting nodes", MIME_MD, mcp_guide_nodes },
    { "llm-router://guide/model-management", "llm-router-model-api", "Guide: model management",
      "Registering models from Hugging Face, reading download progress, deleting models", MIME_MD,
      mcp_guide_models },
    { "llm-router://guide/dashboard", "llm-router-dashboard-api", "Guide: dashboard, history and metrics",
      "Request history search, records, metrics and logs", MIME_MD, mcp_guide_dashboard },
};

void mcp_resources_list(cJSON *list)
{
    for (size_t i = 0; i < CM_ARRAY_LEN(resources); i++) {
        const resource_t *r = &resources[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "uri", r->uri);
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "title", r->title);
        cJSON_AddStringToObject(o, "description", r->description);
        cJSON_AddStringToObject(o, "mimeType", r->mime);
        cJSON_AddItemToArray(list, o);
    }
}

/* The configuration resource's Markdown; the caller frees it. */
static char *config_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort(); /* memory: the cm_x* policy */
    fputs("# Configuration\n\n"
          "Every program reads environment variables only (each may also be given as NAME_FILE, the path of a "
          "file holding it, when it is a secret). Defaults in `${...}` derive from another variable.\n\n"
          "## llm-router-mcp (this server)\n\n",
          f);
    cm_config_print_markdown(f, mcp_options, mcp_options_count);
    fputs("\n## llm-router\n\n", f);
    fputs(mcp_config_router_md, f);
    fputs("\n## llm-node\n\n", f);
    fputs(mcp_config_node_md, f);
    if (fclose(f) != 0 || !buf)
        abort(); /* memory: the cm_x* policy */
    return buf;
}

cJSON *mcp_resources_read(const char *uri)
{
    if (!uri)
        return NULL;
    for (size_t i = 0; i < CM_ARRAY_LEN(resources); i++) {
        const resource_t *r = &resources[i];
        if (strcmp(r->uri, uri) != 0)
            continue;
        cJSON *contents = cJSON_CreateArray(), *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "uri", r->uri);
        cJSON_AddStringToObject(o, "mimeType", r->mime);
        if (r->text) {
            cJSON_AddStringToObject(o, "text", r->text);
        } else {
            char *t = config_text();
            cJSON_AddStringToObject(o, "text", t);
            free(t);
        }
        cJSON_AddItemToArray(contents, o);
        return contents;
    }
    return NULL;
}
