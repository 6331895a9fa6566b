/* auth_keys: API keys (created here, checked on every /v1 request against an
 * in-memory mirror of the api_keys table: an unknown key costs a hash lookup,
 * never a database read), ids and hashes. */
#include "auth/auth_internal.h"

#include "log.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* last_used_at is queued at most this often per key. */
#define KEY_TOUCH_MS 1000
/* What lists show of a key: "sk_" + 7 characters, enough to recognise it. */
#define KEY_PREFIX_LEN 10
#define KEY_PREFIX_SIZE 16

void rt_auth_uuid(char out[RT_AUTH_UUID_SIZE])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, RT_AUTH_UUID_SIZE, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

void rt_auth_sha256_hex(const char *s, char out[RT_AUTH_HASH_HEX_SIZE])
{
    unsigned char h[AUTH_SHA256_SIZE];
    auth_sha256(s, strlen(s), h);
    sodium_bin2hex(out, RT_AUTH_HASH_HEX_SIZE, h, sizeof(h));
}

int rt_auth_apikey_create(rt_store_t *st, const char *name, int64_t expires_at,
                          const char *created_by, char key[RT_AUTH_KEY_MAX], rt_apikey_rec_t *rec)
{
    unsigned char raw[AUTH_SECRET_BYTES];
    char b64[sodium_base64_ENCODED_LEN(AUTH_SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)],
        id[RT_AUTH_UUID_SIZE],
        hash[RT_AUTH_HASH_HEX_SIZE], prefix[KEY_PREFIX_SIZE];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    snprintf(key, RT_AUTH_KEY_MAX, "sk_%s", b64);
    sodium_memzero(b64, sizeof(b64));
    rt_auth_sha256_hex(key, hash);
    snprintf(prefix, sizeof(prefix), "%.*s", KEY_PREFIX_LEN, key);
    rt_auth_uuid(id);
    rt_apikey_rec_t r = { .id = id, .name = (char *)name, .key_hash = hash, .key_prefix = prefix,
                          .created_by = (char *)created_by, .created_at = (int64_t)cm_wall_ms(),
                          .expires_at = expires_at };
    int rc = rt_store_apikey_insert(st, &r);
    if (rc != 0) {
        sodium_memzero(key, RT_AUTH_KEY_MAX);
        return RT_STORE_ERR;
    }
    if (rec) {
        rec->id = cm_xstrdup(id);
        rec->name = cm_xstrdup(name);
        rec->key_hash = cm_xstrdup(hash);
        rec->key_prefix = cm_xstrdup(prefix);
        rec->created_by = created_by ? cm_xstrdup(created_by) : NULL;
        rec->created_at = r.created_at;
        rec->expires_at = expires_at;
        rec->last_used_at = 0;
    }
    return 0;
}

/* A mirror entry for a stored key; NULL when its hash is malformed. */
static auth_ent_t *key_ent(const rt_apikey_rec_t *r)
{
    auth_ent_t *e = cm_xcalloc(1, sizeof(*e));
    if (!r->key_hash || strlen(r->key_hash) != RT_AUTH_HASH_HEX_SIZE - 1 ||
        sodium_hex2bin(e->hash, sizeof(e->hash), r->key_hash, RT_AUTH_HASH_HEX_SIZE - 1, NULL, NULL,
                       NULL) != 0 ||
        strlen(r->id) >= sizeof(e->id)) {
        free(e);
        return NULL;
    }
    memcpy(e->id, r->id, strlen(r->id) + 1);
    snprintf(e->name, sizeof(e->name), "%s", r->name ? r->name : "");
    e->expires_at = r->expires_at;
    return e;
}

static void snapshot_key(const rt_apikey_rec_t *r, void *arg)
{
    auth_ent_t *e = key_ent(r);
    if (e)
        auth_table_put(arg, e);
    else
        LOG_WARN("auth", "API key %s: stored hash is malformed; the key is refused", r->id);
}

int auth_keys_snapshot(rt_auth_t *a, auth_table_t *out)
{
    return rt_store_apikeys_each(a->store, snapshot_key, out) == RT_STORE_OK ? 0 : -1;
}

void rt_auth_apikey_sync(rt_auth_t *a, const char *id)
{
    rt_apikey_rec_t r;
    auth_ent_t *e = NULL;
    /* a store error also removes it (fail closed); the refresher restores it */
    if (rt_store_apikey_get(a->store, id, &r) == RT_STORE_OK) {
        e = key_ent(&r);
        rt_apikey_rec_free(&r);
    }
    auth_mirror_set(a, &a->keys, id, e);
}

_Static_assert(sizeof(((auth_ent_t *)0)->id) == sizeof(((rt_principal_t *)0)->id), "id sizes");
_Static_assert(sizeof(((auth_ent_t *)0)->name) == sizeof(((rt_principal_t *)0)->name), "name sizes");

bool auth_apikey_verify(rt_auth_t *a, const char *key, rt_principal_t *p)
{
    unsigned char h[AUTH_SHA256_SIZE];
    bool ok = false, touch = false;
    if (strncmp(key, "sk_", 3) != 0)
        return false;
    auth_sha256(key, strlen(key), h);
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&a->mu);
    auth_ent_t *e = auth_table_find(&a->keys, h);
    if (e && (e->expires_at <= 0 || e->expires_at > (int64_t)cm_wall_ms())) {
        ok = true;
        p->kind = RT_PRINCIPAL_API_KEY;
        memcpy(p->id, e->id, sizeof(p->id)); /* same sizes, NUL-terminated */
        memcpy(p->name, e->name, sizeof(p->name));
        touch = e->touched_ms == 0 || now - e->touched_ms >= KEY_TOUCH_MS;
        if (touch)
            e->touched_ms = now;
    }
    pthread_mutex_unlock(&a->mu);
    if (touch)
        rt_store_apikey_touch(a->store, p->id, (int64_t)cm_wall_ms());
    return ok;
}
