/* auth_internal: what the files of the auth module share; private to it.
 *
 *   auth.c           the context (secrets, first admin), node and join
 *                    tokens, the policy hook
 *   auth_table.c     the secret indexes (hash tables keyed by SHA-256)
 *   auth_mirror.c    the mirrors of the api_keys and users tables, and the
 *                    thread that reloads them
 *   auth_password.c  Argon2id hashing and checking
 *   auth_users.c     user validation and creation, the users mirror
 *   auth_limit.c     the login rate limit (failures per account and
 *                    address, and per address) and logins in flight
 *   auth_jwt.c       logins, JWT sessions and their revocation (logout)
 *   auth_keys.c      API keys, ids and hashes */
#ifndef RT_AUTH_INTERNAL_H
#define RT_AUTH_INTERNAL_H

#include "auth/auth.h"

#include <pthread.h>
#include <stdint.h>

/* Longest credential we look at; anything longer is simply invalid. */
#define AUTH_CRED_MAX 4096
/* The join token, NUL included. */
#define AUTH_JOIN_TOKEN_SIZE 256
/* How often the mirrors of the api_keys and users tables are reloaded. */
#define AUTH_REFRESH_MS 2000
/* Bytes of a SHA-256 digest (crypto_hash_sha256_BYTES). */
#define AUTH_SHA256_SIZE 32
/* Random bytes behind each generated secret (API keys, node tokens, the JWT
 * secret and join token when generated): 43 base64url characters. */
#define AUTH_SECRET_BYTES 32
/* Buckets of a secret index: one per value of a digest's first byte. */
#define AUTH_TABLE_BUCKETS 256

/* ---- secret indexes (auth_table.c) ---- */

/* An entry of a secret index, keyed by the SHA-256 of the secret (of the
 * user id for the users mirror). */
typedef struct auth_ent {
    struct auth_ent *next;
    unsigned char hash[AUTH_SHA256_SIZE];
    char id[RT_AUTH_ID_SIZE];               /* node id, API key id, or user id */
    char name[RT_AUTH_PRINCIPAL_NAME_SIZE]; /* API key name, or user name */
    int64_t expires_at;     /* ms since epoch, 0: never */
    uint64_t touched_ms;    /* API keys: when last_used_at was last queued */
    bool admin;             /* users: role admin */
} auth_ent_t;

/* Chained hash table; the bucket is the first byte of the SHA-256. */
typedef struct {
    auth_ent_t *b[AUTH_TABLE_BUCKETS];
    size_t n;
} auth_table_t;

auth_ent_t *auth_table_find(auth_table_t *t, const unsigned char hash[AUTH_SHA256_SIZE]); /* constant-time compare */
void auth_table_put(auth_table_t *t, auth_ent_t *e);                        /* takes ownership */
/* Removes (and frees) entries whose id equals id (which must not point into
 * an entry of t); returns how many. */
size_t auth_table_remove_id(auth_table_t *t, const char *id);
/* Removes (and frees) entries that expired before now_ms. */
void auth_table_prune(auth_table_t *t, int64_t now_ms);
/* Removes (and frees) the entry with this hash, if any. */
void auth_table_remove_hash(auth_table_t *t, const unsigned char hash[AUTH_SHA256_SIZE]);
void auth_table_clear(auth_table_t *t);

/* ---- login rate limit (auth_limit.c) ---- */

/* Failed logins per account at an address, and per address, in fixed
 * windows, for a bounded number of both (the oldest idle window is reused
 * when all are taken); and the logins of one address in flight. Check and
 * record are one reservation (begin ... end), so concurrent attempts cannot
 * slip between them. Thread-safe. See auth_limit.c. */
typedef struct auth_limit auth_limit_t;

/* max_failures failures of one account from one address, or
 * max_addr_failures of any accounts from one address, within window_s
 * seconds make that address (for that account, or for all) wait for the rest
 * of the window; max_inflight logins of one address may be pending at once. */
auth_limit_t *auth_limit_new(int max_failures, int max_addr_failures, int max_inflight, int window_s);
void auth_limit_free(auth_limit_t *l);
/* auth_limit_begin's answer when the attempt may not go on now, but only
 * because others of the same address are still pending. */
#define AUTH_LIMIT_BUSY (-1)
/* Reserves an attempt of account from peer: 0 (the caller then calls
 * auth_limit_end exactly once; *clean, when clean is not NULL, tells whether
 * peer has no failure in its window), seconds to wait (> 0) when limited, or
 * AUTH_LIMIT_BUSY. */
int auth_limit_begin(auth_limit_t *l, const char *peer, const char *account, bool *clean);
typedef enum { AUTH_LIMIT_FAILURE, AUTH_LIMIT_SUCCESS, AUTH_LIMIT_CANCELLED } auth_limit_outcome_t;
/* Ends a reservation: counts a failure, clears the failures of account at
 * peer after a success, or only releases it (the check never ran). */
void auth_limit_end(auth_limit_t *l, const char *peer, const char *account, auth_limit_outcome_t how);

/* ---- the context ---- */

struct rt_auth {
    rt_store_t *store;
    unsigned char *jwt_key;
    size_t jwt_key_len;
    long long jwt_ttl_s;
    char join_token[AUTH_JOIN_TOKEN_SIZE];
    bool open_registration;
    bool metrics_public;
    auth_limit_t *limit;
    char dummy_hash[RT_AUTH_PWHASH_MAX]; /* verified against for unknown users */

    pthread_mutex_t mu;    /* guards the tables below and mirror_gen */
    auth_table_t nodes;    /* node token hash -> node id */
    auth_table_t keys;     /* API key hash -> key: a mirror of the api_keys table */
    auth_table_t users;    /* SHA-256(user id) -> name and role: a mirror of users */
    auth_table_t revoked;  /* SHA-256(jti) -> expiry */
    uint64_t mirror_gen;   /* bumped by each targeted change of keys or users */

    /* the refresher thread: reloads the mirrors every AUTH_REFRESH_MS so that
     * changes made by the CLI (another process) are seen */
    pthread_t refresher;
    bool refresher_started;
    pthread_mutex_t rmu; /* guards stop */
    pthread_cond_t rcv;  /* signalled on stop */
    bool stop;
};

/* auth_table.c: SHA-256 of len bytes. */
void auth_sha256(const void *data, size_t len, unsigned char out[AUTH_SHA256_SIZE]);

/* The request path (the three verify functions below) reads memory only:
 * never the store. */

/* auth_jwt.c: verifies a JWT (HS256, expiry, revocation, user still in the
 * users mirror, with the role it has there); fills p. */
bool auth_jwt_verify(rt_auth_t *auth, const char *token, rt_principal_t *p);
/* auth_keys.c: verifies an API key (in the keys mirror, not expired); fills
 * p and queues last_used_at. */
bool auth_apikey_verify(rt_auth_t *auth, const char *key, rt_principal_t *p);
/* auth.c: verifies a node token; fills p with its node id. */
bool auth_node_verify(rt_auth_t *auth, const char *token, rt_principal_t *p);

/* auth_jwt.c: adds a revocation (SHA-256 of the jti, expiry in ms) to the
 * in-memory list, pruning expired ones; takes a->mu. */
void auth_revoked_put(rt_auth_t *auth, const unsigned char hash[AUTH_SHA256_SIZE], int64_t expires_at);

/* ---- the mirrors of the api_keys and users tables ---- */

/* auth_users.c: the users-mirror entry of u (NULL when its id is too long);
 * the caller owns it. */
auth_ent_t *auth_user_ent(const rt_user_rec_t *u);
/* Snapshots of the whole api_keys (auth_keys.c) and users (auth_users.c)
 * tables into out (empty on entry; filled even on error, caller clears).
 * Synchronous store reads: start and the refresher thread only. 0 or -1. */
int auth_keys_snapshot(rt_auth_t *auth, auth_table_t *out);
int auth_users_snapshot(rt_auth_t *auth, auth_table_t *out);
/* auth_mirror.c: reloads both mirrors from the store, keeping each key's
 * touched_ms. A snapshot that raced with a targeted change (mirror_gen moved
 * meanwhile) is dropped and taken again. 0, or -1 (store error: the mirrors
 * are left as they were). */
int auth_mirrors_refresh(rt_auth_t *auth);
/* auth_mirror.c: replaces the entries with e's id in t by e (NULL: just
 * removes them) and bumps mirror_gen. Takes ownership of e; takes a->mu. */
void auth_mirror_set(rt_auth_t *auth, auth_table_t *t, const char *id, auth_ent_t *e);
/* auth_mirror.c: loads the mirrors and starts the thread that reloads them;
 * 0, or -1 with err. auth_refresher_stop stops and joins it at once (no wait
 * for the period), and does nothing when it never started. */
int auth_refresher_start(rt_auth_t *auth, char *err, size_t errlen);
void auth_refresher_stop(rt_auth_t *auth);

#endif
