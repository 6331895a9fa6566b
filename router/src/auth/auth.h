/* auth: who is calling. Users and passwords (Argon2id), JWT sessions (HS256,
 * revocation list), API keys and node tokens (stored as SHA-256 hashes, looked
 * up in memory, compared in constant time), the join token, and the pre-route
 * hook that enforces the policy column of routes.c.
 *
 * Below the router context: it receives what it needs (the configuration,
 * the store) as arguments and never includes router.h. */
#ifndef RT_AUTH_H
#define RT_AUTH_H

#include "http_server.h"
#include "options.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_auth rt_auth_t;

/* Who may call a route (cm_http_route_t.policy); rt_auth_pre enforces it. */
typedef enum {
    RT_POLICY_OPEN,        /* no credentials: login, static assets, probes */
    RT_POLICY_API_KEY,     /* inference under /v1: API key */
    RT_POLICY_API_OR_NODE, /* /v1/models: API key or node token */
    RT_POLICY_NODE,        /* heartbeats, blob pulls: node token */
    RT_POLICY_JOIN,        /* registration: join token unless registration is open */
    RT_POLICY_VIEWER,      /* read APIs, dashboard data: JWT viewer or admin */
    RT_POLICY_ADMIN,       /* management writes: JWT admin */
    RT_POLICY_USER,        /* any logged-in user (me, logout) */
    RT_POLICY_METRICS,     /* /metrics*: API key or a user's session; open with LLM_ROUTER_METRICS_PUBLIC=1 */
    RT_POLICY_NODE_OR_ADMIN, /* model blobs: node token, or an admin's session */
} rt_policy_t;

/* ---- sizes (buffers include the NUL) ---- */

#define RT_AUTH_ID_SIZE 64          /* user, API key and node ids (UUIDs: 36 characters) */
#define RT_AUTH_UUID_SIZE 37        /* rt_auth_uuid's text */
#define RT_AUTH_NAME_MAX 64         /* usernames, in characters */
#define RT_AUTH_KEY_NAME_MAX 128    /* API key names, in characters */
#define RT_AUTH_PRINCIPAL_NAME_SIZE (RT_AUTH_KEY_NAME_MAX + 1) /* a user or key name */
#define RT_AUTH_JTI_SIZE 48         /* a session's token id (32 hex characters) */
#define RT_AUTH_PASSWORD_MIN 8
#define RT_AUTH_PASSWORD_MAX 1024   /* longer is refused before any hashing */
#define RT_AUTH_PWHASH_MAX 128      /* crypto_pwhash_STRBYTES */
#define RT_AUTH_KEY_MAX 80          /* "sk_" + 43 chars + NUL fits */
#define RT_AUTH_NODE_TOKEN_SIZE 64  /* "nt_" + 43 chars + NUL fits */
#define RT_AUTH_HASH_HEX_SIZE 65    /* a hex SHA-256 */

typedef enum { RT_PRINCIPAL_USER, RT_PRINCIPAL_API_KEY, RT_PRINCIPAL_NODE, RT_PRINCIPAL_JOIN } rt_principal_kind_t;

/* Attached to each authenticated request (cm_http_req_set_user with free), so
 * it lives exactly as long as the request; handlers only read it. */
typedef struct {
    rt_principal_kind_t kind;
    char id[RT_AUTH_ID_SIZE];                /* user id, API key id, or node id */
    char name[RT_AUTH_PRINCIPAL_NAME_SIZE];  /* user name or key name */
    bool admin;                              /* users: role admin */
    /* users (JWT) only: the token's id and expiry, for logout */
    char jti[RT_AUTH_JTI_SIZE];
    long long expires_at; /* seconds since epoch */
} rt_principal_t;

/* The principal of an authenticated request, NULL for open routes. */
const rt_principal_t *rt_auth_principal(const cm_http_req_t *req);

/* Node tokens: a new random token for node_id ("nt_" + 43 chars); writes the
 * plaintext into token and its hex SHA-256 into hash for the caller to store
 * with the node record; the in-memory index is updated. Issuing a new token
 * for a node revokes its previous one. */
void rt_auth_node_token_issue(rt_auth_t *auth, const char *node_id, char token[RT_AUTH_NODE_TOKEN_SIZE],
                              char hash[RT_AUTH_HASH_HEX_SIZE]);
/* Registers a stored hash at start (from rt_store_nodes_each). */
void rt_auth_node_token_load(rt_auth_t *auth, const char *node_id, const char *hash);
/* Forgets a node's token (node deleted). */
void rt_auth_node_token_revoke(rt_auth_t *auth, const char *node_id);

/* The policy check that runs before each handler (the body of the server's
 * cm_http_server_opts_t.pre hook, which hands it the router's auth context):
 * true when the credentials the route's policy asks for are there (the
 * principal is then attached to req, see rt_auth_principal); false after
 * replying 401 or 403. */
bool rt_auth_pre(rt_auth_t *auth, cm_http_req_t *req, const cm_http_route_t *route);

/* ---- lifetime ---- */

/* Builds the auth context from cfg: the JWT secret (LLM_ROUTER_JWT_SECRET, or
 * <data_dir>/jwt_secret generated once, 0600), the join token
 * (LLM_ROUTER_JOIN_TOKEN, or <data_dir>/join_token generated once, 0600), the
 * first admin when the users table is empty (LLM_ROUTER_ADMIN_USERNAME /
 * LLM_ROUTER_ADMIN_PASSWORD; without a password one is generated into
 * <data_dir>/admin_password, 0600, and only its path is logged), the
 * revocation list, and the mirrors of the api_keys and users tables; starts
 * the thread that refreshes the mirrors (rt_auth_free stops and joins it at
 * once). store is borrowed and must outlive the auth context.
 * 0, or -1 with err. */
int rt_auth_new(const rt_config_t *cfg, const char *data_dir, rt_store_t *store, rt_auth_t **out,
                char *err, size_t errlen);
void rt_auth_free(rt_auth_t *auth);

/* "open", "api_key", "api_key_or_node", "node", "join", "viewer", "admin", "user". */
const char *rt_policy_name(int policy);

/* ---- helpers usable without an auth context (CLI, handlers) ---- */

/* A random UUID v4 into out. */
void rt_auth_uuid(char out[RT_AUTH_UUID_SIZE]);
/* Hex SHA-256 of s into out. */
void rt_auth_sha256_hex(const char *s, char out[RT_AUTH_HASH_HEX_SIZE]);
/* Argon2id (libsodium, interactive limits). 0, or -1 (out of memory). */
int rt_auth_password_hash(const char *password, char out[RT_AUTH_PWHASH_MAX]);
/* Constant-time verification against a stored hash. */
bool rt_auth_password_check(const char *hash, const char *password);

/* Validates and creates a user (role "admin" or "viewer"): 0 and *rec filled
 * (caller frees with rt_user_rec_free; rec may be NULL), RT_STORE_CONFLICT,
 * RT_STORE_ERR, or -10 (RT_AUTH_EINVAL) with a message in err. */
#define RT_AUTH_EINVAL (-10)
int rt_auth_user_create(rt_store_t *st, const char *username, const char *password,
                        const char *role, rt_user_rec_t *rec, char *err, size_t errlen);
/* Checks a new username / password / role; 0 or RT_AUTH_EINVAL with err. Any
 * argument may be NULL (not checked). */
int rt_auth_user_validate(const char *username, const char *password, const char *role,
                          char *err, size_t errlen);

/* Creates an API key: "sk_" + 43 random base64url characters into key (shown
 * once; only its SHA-256 is stored). expires_at: ms since epoch, 0 never.
 * created_by may be NULL. 0 and *rec filled (may be NULL), or RT_STORE_ERR. */
int rt_auth_apikey_create(rt_store_t *st, const char *name, int64_t expires_at,
                          const char *created_by, char key[RT_AUTH_KEY_MAX], rt_apikey_rec_t *rec);

/* ---- what the handlers need ---- */

typedef enum { RT_LOGIN_OK, RT_LOGIN_BAD, RT_LOGIN_LIMITED, RT_LOGIN_ERROR, RT_LOGIN_BUSY } rt_login_result_t;

/* A login in two steps, so that its admission happens before it waits for a
 * hashing thread. rt_auth_login_begin (cheap, no store, no hash; call it on
 * the loop): RT_LOGIN_OK reserves the attempt (then exactly one
 * rt_auth_login_finish or rt_auth_login_cancel with the same peer and
 * username); RT_LOGIN_LIMITED: too many failures, *retry_after seconds to
 * wait; RT_LOGIN_BUSY: other logins of peer are still in flight (retry in a
 * second). *clean (may be NULL): peer has no failure in its window, so its
 * login may go ahead of the others (rt_offload_urgent). */
rt_login_result_t rt_auth_login_begin(rt_auth_t *auth, const char *peer, const char *username,
                                      int *retry_after, bool *clean);
/* Checks the password of a reserved attempt and ends the reservation. On
 * RT_LOGIN_OK: *token (caller frees) is a JWT valid for *expires_in seconds
 * and *user is filled (caller frees with rt_user_rec_free). RT_LOGIN_BAD or
 * RT_LOGIN_ERROR otherwise. Blocks (store read, Argon2id). */
rt_login_result_t rt_auth_login_finish(rt_auth_t *auth, const char *peer, const char *username,
                                       const char *password, char **token, long long *expires_in,
                                       rt_user_rec_t *user);
/* Ends a reserved attempt whose check never ran (the job was refused or
 * cancelled): nothing is counted. */
void rt_auth_login_cancel(rt_auth_t *auth, const char *peer, const char *username);
/* Both steps at once (tests, tools): rt_auth_login_begin's refusals, or
 * rt_auth_login_finish's answer. */
rt_login_result_t rt_auth_login(rt_auth_t *auth, const char *peer, const char *username,
                                const char *password, char **token, long long *expires_in,
                                rt_user_rec_t *user, int *retry_after);
/* Revokes the JWT of principal p until it expires (logout): committed to
 * the store (a synchronous write: off the loops), then refused in memory at
 * once; other processes see it within ~2 s (the mirror thread reloads
 * revocations). 0, or -1 when the store write failed (the token is refused
 * in this process anyway). */
int rt_auth_logout(rt_auth_t *auth, const rt_principal_t *p);
/* The request path checks API keys and session users against in-memory
 * mirrors of the api_keys and users tables, reloaded from the store every
 * ~2 s by a thread of the auth context (so changes made by the CLI apply
 * within ~2 s). After a change made through this process, these bring the
 * entry of id in line with the store at once (gone from the store: removed).
 * One synchronous store read: management paths only, never per request. */
void rt_auth_apikey_sync(rt_auth_t *auth, const char *id);
void rt_auth_user_sync(rt_auth_t *auth, const char *id);
/* The join token nodes present in X-Join-Token, and whether registration is
 * open to anyone (LLM_ROUTER_OPEN_REGISTRATION=1). */
const char *rt_auth_join_token(const rt_auth_t *auth);
bool rt_auth_registration_open(const rt_auth_t *auth);

#endif
