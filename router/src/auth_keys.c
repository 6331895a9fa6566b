/* auth_keys: API keys (created here, checked on every /v1 request through an
 * in-memory cache of the store), ids and hashes. */
#include "auth_internal.h"

#include "log.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A cached key is confirmed against the store at most this often, so that a
 * key revoked by the CLI (another process) stops working within this time. */
#define KEY_RECHECK_MS 5000
/* last_used_at is queued at most this often per key. */
#define KEY_TOUCH_MS 1000

void rt_auth_uuid(char out[37])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

void rt_auth_sha256_hex(const char *s, char out[65])
{
    unsigned char h[32];
    auth_sha256(s, strlen(s), h);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

int rt_auth_apikey_create(rt_store_t *st, const char *name, int64_t expires_at,
                          const char *created_by, char key[RT_AUTH_KEY_MAX], rt_apikey_rec_t *rec)
{
    unsigned char raw[32];
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)], id[37], hash[65], prefix[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    snprintf(key, RT_AUTH_KEY_MAX, "sk_%s", b64);
    sodium_memzero(b64, sizeof(b64));
    rt_auth_sha256_hex(key, hash);
    snprintf(prefix, sizeof(prefix), "%.10s", key); /* "sk_" + 7: enough to recognise it */
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

void rt_auth_apikey_forget(rt_auth_t *a, const char *id)
{
    pthread_mutex_lock(&a->mu);
    tbl_remove_id(&a->keys, id);
    pthread_mutex_unlock(&a->mu);
}

/* Copies a cached entry into p when it is valid now; *stale when it should
 * be confirmed in the store first. Caller holds a->mu. */
static bool cached_ok(rt_auth_t *a, ent_t *e, uint64_t now_mono, int64_t now_wall,
                      rt_principal_t *p, bool *touch)
{
    if (e->expires_at > 0 && e->expires_at <= now_wall)
        return false;
    p->kind = RT_PRINCIPAL_API_KEY;
    snprintf(p->id, sizeof(p->id), "%s", e->id);
    snprintf(p->name, sizeof(p->name), "%s", e->name);
    *touch = now_mono - e->touched_ms >= KEY_TOUCH_MS || e->touched_ms == 0;
    if (*touch)
        e->touched_ms = now_mono;
    (void)a;
    return true;
}

/* Looks the key up in the store and caches the result. */
static bool store_lookup(rt_auth_t *a, const unsigned char h[32], rt_principal_t *p, bool *touch)
{
    char hex[65];
    rt_apikey_rec_t r;
    sodium_bin2hex(hex, sizeof(hex), h, 32);
    if (rt_store_apikey_get_by_hash(a->store, hex, &r) != RT_STORE_OK)
        return false;
    ent_t *e = cm_xcalloc(1, sizeof(*e));
    memcpy(e->hash, h, 32);
    snprintf(e->id, sizeof(e->id), "%s", r.id);
    snprintf(e->name, sizeof(e->name), "%s", r.name);
    e->expires_at = r.expires_at;
    e->checked_ms = cm_now_ms();
    rt_apikey_rec_free(&r);
    pthread_mutex_lock(&a->mu);
    tbl_remove_hash(&a->keys, h);
    tbl_put(&a->keys, e);
    bool ok = cached_ok(a, e, cm_now_ms(), (int64_t)cm_wall_ms(), p, touch);
    pthread_mutex_unlock(&a->mu);
    return ok;
}

bool auth_apikey_verify(rt_auth_t *a, const char *key, rt_principal_t *p)
{
    unsigned char h[32];
    bool ok = false, touch = false, recheck = false;
    if (strncmp(key, "sk_", 3) != 0)
        return false;
    auth_sha256(key, strlen(key), h);
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&a->mu);
    ent_t *e = tbl_find(&a->keys, h);
    if (e && now - e->checked_ms < KEY_RECHECK_MS)
        ok = cached_ok(a, e, now, (int64_t)cm_wall_ms(), p, &touch);
    else
        recheck = true;
    pthread_mutex_unlock(&a->mu);
    if (recheck) {
        ok = store_lookup(a, h, p, &touch);
        if (!ok) {
            /* gone from the store (or never there): drop any stale entry */
            pthread_mutex_lock(&a->mu);
            tbl_remove_hash(&a->keys, h);
            pthread_mutex_unlock(&a->mu);
        }
    }
    if (ok && touch)
        rt_store_apikey_touch(a->store, p->id, (int64_t)cm_wall_ms());
    return ok;
}
