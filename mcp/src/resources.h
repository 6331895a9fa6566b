/* resources: the MCP resources (resources/list, resources/read). The URIs
 * are the seed's: llm-router://api/openapi (the router's API reference,
 * generated at build time from router/src/api/routes.c's route table, so it
 * cannot drift), llm-router://config (the configuration table, generated
 * from the router's and node's option tables), and
 * llm-router://guide/{overview,openai-compatible,node-management,
 * model-management,dashboard} (short guides for assistants). Texts are
 * compiled in: reading a resource does no I/O. */
#ifndef MCP_RESOURCES_H
#define MCP_RESOURCES_H

struct cJSON;

/* Appends one {"uri","name","title","description","mimeType"} object per
 * resource to the array list. */
void mcp_resources_list(struct cJSON *list);

/* The contents array for resources/read of uri ([{"uri","mimeType","text"}]),
 * a new cJSON the caller owns; NULL when there is no such resource. */
struct cJSON *mcp_resources_read(const char *uri);

#endif
