/* url: the only way a URL is made. Every request goes to the configured
 * router: LLM_ROUTER_URL + a path this module accepted + a query it encoded,
 * and the result is parsed again and compared with the base (scheme, host,
 * port, path prefix) before it is used. */
#ifndef MCP_URL_H
#define MCP_URL_H

#include <stddef.h>

struct cJSON;

/* Checks a request path from a tool's arguments. 0 when it is acceptable,
 * else -1 with *why a static sentence. Accepted: "/api/..." or "/v1/...",
 * at most 2048 bytes of printable ASCII without space, '\\', '#', '?', '@',
 * with no "//", no "." or ".." segment (nor ".." anywhere), and '%' only as
 * %XX escapes that do not encode '.', '/', '\\', '%', '@', '?', '#' or a
 * control byte. */
int mcp_url_path_check(const char *path, const char **why);

/* Checks and normalises the configured base URL (http or https, a host, no
 * user info, query or fragment; a trailing '/' dropped). Returns a new
 * string, or NULL with *why. */
char *mcp_url_base(const char *url, const char **why);

/* Builds base + path + ("?" + the members of query, an object of strings,
 * percent-encoded) and checks the result again. 0 with *out (caller frees),
 * or -1 with *why. query may be NULL. */
int mcp_url_build(const char *base, const char *path, const struct cJSON *query, char **out,
                  const char **why);

/* Percent-encodes one path segment (everything but unreserved characters)
 * and appends it to a new string "prefix + segment"; caller frees. */
char *mcp_url_join_segment(const char *prefix, const char *segment);

#endif
