/* mask: keeps secrets out of everything the server writes (stderr, error
 * messages, the bodies it returns).
 *
 * Masked: every secret registered with mcp_mask_add (the configured API key,
 * password, session tokens) wherever it appears; any token that looks like
 * one of the router's credentials ("sk_", "nt_", "jt_", "nk_" then at least
 * 16 characters of [A-Za-z0-9_-], starting a word) as "sk_****abcd" (the
 * prefix and the last 4 characters kept, enough to tell keys apart); and
 * whatever follows "Bearer " as "****" unless it is such a token. A known
 * secret without such a prefix (a password) becomes "****". The key_prefix
 * the router lists ("sk_" + 7 characters) is too short to be a key and is
 * kept. In JSON, the string value of a member named token, password,
 * router_secret, node_token, join_token, access_token, refresh_token,
 * api_key, secret, authorization, x-api-key or x-node-token is masked
 * whole ("****", or "sk_****abcd" for a prefixed key). */
#ifndef MCP_MASK_H
#define MCP_MASK_H

#include <stddef.h>

struct cJSON;

/* Registers a secret (copied; at most 16, NULL, "" and those under 6
 * bytes ignored, as masking a short word everywhere would garble text).
 * mcp_mask_clear forgets them all (and wipes the copies). Not thread-safe:
 * the server has one thread. */
void mcp_mask_add(const char *secret);
void mcp_mask_remove(const char *secret);
void mcp_mask_clear(void);

/* A masked copy of s[0..len) (NUL-terminated, caller frees). */
char *mcp_mask_text(const char *s, size_t len);
/* Masks every string value of j in place, at any depth, except the value of
 * the top-level member skip_key when j is an object and skip_key not NULL
 * (the created API key, returned once as the API returns it). */
void mcp_mask_json(struct cJSON *j, const char *skip_key);
/* "sk_****abcd" for a key (its prefix up to and including the first '_'
 * when it has one in its first 4 bytes, "****", its last 4 characters), into
 * out (at least 16 bytes); "****" alone for a key under 8 bytes. */
void mcp_mask_key(const char *key, char *out, size_t outlen);

#endif
