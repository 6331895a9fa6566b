/* auth_internal: what auth.c, auth_jwt.c and auth_keys.c share. Private to
 * the auth module. */
#ifndef RT_AUTH_INTERNAL_H
#define RT_AUTH_INTERNAL_H

#include "auth.h"

#include <pthread.h>
#include <stdint.h>

/* Longest credential we look at; anything longer is simply invalid. */
#define CRED_MAX 4096

/* An entry of a secret index, keyed by the SHA-256 of the secret. */
typedef struct ent {
    struct ent *next;
    unsigned char hash[32];
    char id[64];            /* node id, API key id, or JWT id */
    char name[128];         /* API key name */
    int64_t expires_at;     /* ms since epoch, 0: never */
    uint64_t checked_ms;    /* API keys: when last confirmed in the store */
    uint64_t touched_ms;    /* API keys: when last_used_at was last queued */
} ent_t;

/* Chained hash table; the bucket is the first byte of the SHA-256. */
typedef struct {
    ent_t *b[256];
    size_t n;
} table_t;

ent_t *tbl_find(table_t *t, const unsigned char hash[32]); /* constant-time compare */
void tbl_put(table_t *t, ent_t *e);                          /* takes ownership */
/* Removes (and frees) entries whose id equals id (which must not point into
 * an entry of t); returns how many. */
size_t tbl_remove_id(table_t *t, const char *id);
/* Removes (and frees) entries that expired before now_ms. */
void tbl_prune(table_t *t, int64_t now_ms);
/* Removes (and frees) the entry with this hash, if any. */
void tbl_remove_hash(table_t *t, const unsigned char hash[32]);
void tbl_clear(table_t *t);

typedef struct {
    char peer[64];
    uint64_t window_start_ms;
    int failures;
} limit_ent_t;

#define LIMIT_SLOTS 4096

struct rt_auth {
    rt_store_t *store;
    unsigned char *jwt_key;
    size_t jwt_key_len;
    long long jwt_ttl_s;
    char join_token[256];
    bool open_registration;
    int login_max_failures;
    int login_window_s;
    char dummy_hash[RT_AUTH_PWHASH_MAX]; /* verified against for unknown users */

    pthread_mutex_t mu; /* guards the tables below */
    table_t nodes;      /* node token hash -> node id */
    table_t keys;       /* API key hash -> key (a cache of the store) */
    table_t revoked;    /* SHA-256(jti) -> expiry */
    limit_ent_t *limits; /* LIMIT_SLOTS login failure windows per address */
};

/* SHA-256 of len bytes. */
void auth_sha256(const void *data, size_t len, unsigned char out[32]);

/* auth_jwt.c: verifies a JWT (HS256, expiry, revocation, user still there
 * with the role it now has); fills p. */
bool auth_jwt_verify(rt_auth_t *auth, const char *token, rt_principal_t *p);
/* auth_keys.c: verifies an API key (exists, not expired); fills p and queues
 * last_used_at. */
bool auth_apikey_verify(rt_auth_t *auth, const char *key, rt_principal_t *p);
/* auth.c: verifies a node token; fills p with its node id. */
bool auth_node_verify(rt_auth_t *auth, const char *token, rt_principal_t *p);

#endif
