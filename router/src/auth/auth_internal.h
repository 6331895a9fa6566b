/* auth_internal: what auth.c, auth_jwt.c and auth_keys.c share. Private to
 * the auth module. */
#ifndef RT_AUTH_INTERNAL_H
#define RT_AUTH_INTERNAL_H

#include "auth/auth.h"

#include <pthread.h>
#include <stdint.h>

/* Longest credential we look at; anything longer is simply invalid. */
#define CRED_MAX 4096

/* An entry of a secret index, keyed by the SHA-256 of the secret (of the
 * user id for the users mirror). */
typedef struct ent {
    struct ent *next;
    unsigned char hash[32];
    char id[64];            /* node id, API key id, or user id */
    char name[128];         /* API key name, or user name */
    int64_t expires_at;     /* ms since epoch, 0: never */
    uint64_t touched_ms;    /* API keys: when last_used_at was last queued */
    bool admin;             /* users: role admin */
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

    pthread_mutex_t mu; /* guards the tables below and mirror_gen */
    table_t nodes;      /* node token hash -> node id */
    table_t keys;       /* API key hash -> key: a mirror of the api_keys table */
    table_t users;      /* SHA-256(user id) -> name and role: a mirror of users */
    table_t revoked;    /* SHA-256(jti) -> expiry */
    uint64_t mirror_gen; /* bumped by each targeted change of keys or users */
    limit_ent_t *limits; /* LIMIT_SLOTS login failure windows per address */

    /* the refresher thread: reloads the mirrors every AUTH_REFRESH_MS so that
     * changes made by the CLI (another process) are seen */
    pthread_t refresher;
    bool refresher_started;
    pthread_mutex_t rmu; /* guards stop */
    pthread_cond_t rcv;  /* signalled on stop */
    bool stop;
};

/* How often the mirrors of the api_keys and users tables are reloaded. */
#define AUTH_REFRESH_MS 2000

/* SHA-256 of len bytes. */
void auth_sha256(const void *data, size_t len, unsigned char out[32]);

/* The request path (the three verify functions below) reads memory only:
 * never the store. */

/* auth_jwt.c: verifies a JWT (HS256, expiry, revocation, user still in the
 * users mirror, with the role it has there); fills p. */
bool auth_jwt_verify(rt_auth_t *auth, const char *token, rt_principal_t *p);
/* auth_keys.c: verifies an API key (in the keys mirror, not expired); fills
 * p and queues last_used_at. */
bool auth_apikey_verify(rt_auth_t *auth, const char *key, rt_principal_t *p);

/* Snapshots of the whole api_keys (auth_keys.c) and users (auth_jwt.c)
 * tables into out (empty on entry; filled even on error, caller clears).
 * Synchronous store reads: start and the refresher thread only. 0 or -1. */
int auth_keys_snapshot(rt_auth_t *auth, table_t *out);
int auth_users_snapshot(rt_auth_t *auth, table_t *out);
/* auth.c: reloads both mirrors from the store, keeping each key's
 * touched_ms. A snapshot that raced with a targeted change (mirror_gen moved
 * meanwhile) is dropped and taken again. 0, or -1 (store error: the mirrors
 * are left as they were). */
int auth_mirrors_refresh(rt_auth_t *auth);
/* auth.c: replaces the entries with e's id in t by e (NULL: just removes
 * them) and bumps mirror_gen. Takes ownership of e; takes a->mu. */
void auth_mirror_set(rt_auth_t *auth, table_t *t, const char *id, ent_t *e);
/* auth.c: verifies a node token; fills p with its node id. */
bool auth_node_verify(rt_auth_t *auth, const char *token, rt_principal_t *p);

#endif
