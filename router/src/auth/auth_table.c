/* auth_table: the secret indexes. A chained hash table keyed by a SHA-256
 * (of a secret, or of a user id), the bucket picked by the digest's first
 * byte; lookups compare digests in constant time, and removed entries are
 * wiped before they are freed. Not locked here: callers hold rt_auth.mu. */
#include "auth/auth_internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(AUTH_TABLE_BUCKETS == 256, "a digest's first byte picks the bucket");

auth_ent_t *auth_table_find(auth_table_t *t, const unsigned char hash[AUTH_SHA256_SIZE])
{
    for (auth_ent_t *e = t->b[hash[0]]; e; e = e->next)
        if (sodium_memcmp(e->hash, hash, AUTH_SHA256_SIZE) == 0)
            return e;
    return NULL;
}

void auth_table_put(auth_table_t *t, auth_ent_t *e)
{
    e->next = t->b[e->hash[0]];
    t->b[e->hash[0]] = e;
    t->n++;
}

static size_t table_remove_if(auth_table_t *t, bool (*pred)(const auth_ent_t *e, const void *arg),
                              const void *arg)
{
    size_t removed = 0;
    for (int i = 0; i < AUTH_TABLE_BUCKETS; i++) {
        auth_ent_t **pp = &t->b[i];
        while (*pp) {
            auth_ent_t *e = *pp;
            if (pred(e, arg)) {
                *pp = e->next;
                sodium_memzero(e, sizeof(*e));
                free(e);
                removed++;
            } else {
                pp = &e->next;
            }
        }
    }
    t->n -= removed;
    return removed;
}

static bool same_id(const auth_ent_t *e, const void *arg) { return strcmp(e->id, arg) == 0; }
static bool expired(const auth_ent_t *e, const void *arg)
{
    return e->expires_at > 0 && e->expires_at <= *(const int64_t *)arg;
}
static bool any(const auth_ent_t *e, const void *arg)
{
    (void)e;
    (void)arg;
    return true;
}

size_t auth_table_remove_id(auth_table_t *t, const char *id) { return table_remove_if(t, same_id, id); }

void auth_table_remove_hash(auth_table_t *t, const unsigned char hash[AUTH_SHA256_SIZE])
{
    for (auth_ent_t **pp = &t->b[hash[0]]; *pp; pp = &(*pp)->next) {
        auth_ent_t *e = *pp;
        if (sodium_memcmp(e->hash, hash, AUTH_SHA256_SIZE) == 0) {
            *pp = e->next;
            sodium_memzero(e, sizeof(*e));
            free(e);
            t->n--;
            return;
        }
    }
}
void auth_table_prune(auth_table_t *t, int64_t now_ms) { table_remove_if(t, expired, &now_ms); }
void auth_table_clear(auth_table_t *t) { table_remove_if(t, any, NULL); }

void auth_sha256(const void *data, size_t len, unsigned char out[AUTH_SHA256_SIZE])
{
    crypto_hash_sha256(out, data, len);
}
