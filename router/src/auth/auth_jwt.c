/* auth_jwt: sessions. A login (rate-limited per address, auth_limit.c; the
 * password checked by auth_password.c) issues an HS256 JWT (libjwt); each
 * request's token is verified against memory only (signature, expiry, the
 * revocation list, the users mirror); logout revokes a token until it
 * expires, in memory at once and in the store through its writer thread. */
#include "auth/auth_internal.h"

#include "util.h"

#include <jwt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Random bytes in a token id (hex-encoded into the jti claim). */
#define JTI_BYTES 16
_Static_assert(JTI_BYTES * 2 < RT_AUTH_JTI_SIZE, "jti buffer too small");

/* A compact JWS has exactly two dots; anything else is not worth decoding. */
static bool jws_shape(const char *t)
{
    int dots = 0;
    for (; *t; t++)
        dots += *t == '.';
    return dots == 2;
}

static char *jwt_issue(rt_auth_t *a, const rt_user_rec_t *u, long long *expires_in)
{
    jwt_t *j = NULL;
    char *out = NULL;
    unsigned char raw[JTI_BYTES];
    char jti[JTI_BYTES * 2 + 1];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(jti, sizeof(jti), raw, sizeof(raw));
    long now = (long)(cm_wall_ms() / 1000);
    if (jwt_new(&j) != 0)
        goto out;
    if (jwt_add_grant(j, "sub", u->id) || jwt_add_grant(j, "name", u->username) ||
        jwt_add_grant(j, "role", u->role) || jwt_add_grant(j, "jti", jti) ||
        jwt_add_grant(j, "iss", "llm-router") || jwt_add_grant_int(j, "iat", now) ||
        jwt_add_grant_int(j, "exp", now + (long)a->jwt_ttl_s))
        goto out;
    if (jwt_set_alg(j, JWT_ALG_HS256, a->jwt_key, (int)a->jwt_key_len) != 0)
        goto out;
    out = jwt_encode_str(j);
    *expires_in = a->jwt_ttl_s;
out:
    jwt_free(j);
    return out;
}

bool auth_jwt_verify(rt_auth_t *a, const char *token, rt_principal_t *p)
{
    jwt_t *j = NULL;
    bool ok = false;
    unsigned char jh[AUTH_SHA256_SIZE], uh[AUTH_SHA256_SIZE];
    if (!jws_shape(token))
        goto out;
    if (jwt_decode(&j, token, a->jwt_key, (int)a->jwt_key_len) != 0 || !j)
        goto out;
    if (jwt_get_alg(j) != JWT_ALG_HS256) /* never "none", never another key type */
        goto out;
    long exp = jwt_get_grant_int(j, "exp");
    const char *sub = jwt_get_grant(j, "sub"), *jti = jwt_get_grant(j, "jti");
    size_t jti_len = jti ? strlen(jti) : 0;
    if (exp <= (long)(cm_wall_ms() / 1000) || !sub || !jti || jti_len >= sizeof(p->jti))
        goto out;
    auth_sha256(jti, jti_len, jh);
    auth_sha256(sub, strlen(sub), uh);
    pthread_mutex_lock(&a->mu);
    /* not logged out; the user still exists, and the role is the one it has now */
    auth_ent_t *u = auth_table_find(&a->revoked, jh) ? NULL : auth_table_find(&a->users, uh);
    if (u) {
        p->kind = RT_PRINCIPAL_USER;
        memcpy(p->id, u->id, sizeof(p->id)); /* same sizes, NUL-terminated */
        memcpy(p->name, u->name, sizeof(p->name));
        p->admin = u->admin;
        ok = true;
    }
    pthread_mutex_unlock(&a->mu);
    if (ok) {
        memcpy(p->jti, jti, jti_len + 1);
        p->expires_at = exp;
    }
out:
    jwt_free(j);
    return ok;
}

rt_login_result_t rt_auth_login_begin(rt_auth_t *a, const char *peer, const char *username,
                                      int *retry_after, bool *clean)
{
    int rc = auth_limit_begin(a->limit, peer, username, clean);
    if (rc == AUTH_LIMIT_BUSY) {
        *retry_after = 1;
        return RT_LOGIN_BUSY;
    }
    if (rc > 0) {
        *retry_after = rc;
        return RT_LOGIN_LIMITED;
    }
    return RT_LOGIN_OK;
}

void rt_auth_login_cancel(rt_auth_t *a, const char *peer, const char *username)
{
    auth_limit_end(a->limit, peer, username, AUTH_LIMIT_CANCELLED);
}

rt_login_result_t rt_auth_login_finish(rt_auth_t *a, const char *peer, const char *username,
                                       const char *password, char **token, long long *expires_in,
                                       rt_user_rec_t *user)
{
    *token = NULL;
    memset(user, 0, sizeof(*user));
    int rc = rt_store_user_get_by_name(a->store, username, user);
    if (rc == RT_STORE_ERR) {
        auth_limit_end(a->limit, peer, username, AUTH_LIMIT_CANCELLED);
        return RT_LOGIN_ERROR;
    }
    /* an unknown user costs the same Argon2id work as a wrong password */
    const char *hash = rc == RT_STORE_OK ? user->password_hash : a->dummy_hash;
    bool good = rt_auth_password_check(hash, password);
    if (!good || rc != RT_STORE_OK) {
        rt_user_rec_free(user);
        auth_limit_end(a->limit, peer, username, AUTH_LIMIT_FAILURE);
        return RT_LOGIN_BAD;
    }
    auth_limit_end(a->limit, peer, username, AUTH_LIMIT_SUCCESS);
    /* a user made by the CLI may log in before the mirror's next reload */
    auth_mirror_set(a, &a->users, user->id, auth_user_ent(user));
    *token = jwt_issue(a, user, expires_in);
    if (!*token) {
        rt_user_rec_free(user);
        return RT_LOGIN_ERROR;
    }
    return RT_LOGIN_OK;
}

rt_login_result_t rt_auth_login(rt_auth_t *a, const char *peer, const char *username,
                                const char *password, char **token, long long *expires_in,
                                rt_user_rec_t *user, int *retry_after)
{
    *token = NULL;
    memset(user, 0, sizeof(*user));
    rt_login_result_t r = rt_auth_login_begin(a, peer, username, retry_after, NULL);
    if (r != RT_LOGIN_OK)
        return r;
    return rt_auth_login_finish(a, peer, username, password, token, expires_in, user);
}

/* Adds the revocation of jti (its SHA-256 in hash) to memory. */
void auth_revoked_put(rt_auth_t *a, const unsigned char hash[AUTH_SHA256_SIZE], int64_t expires_at)
{
    auth_ent_t *e = cm_xcalloc(1, sizeof(*e));
    memcpy(e->hash, hash, AUTH_SHA256_SIZE);
    e->expires_at = expires_at;
    pthread_mutex_lock(&a->mu);
    auth_table_prune(&a->revoked, (int64_t)cm_wall_ms());
    if (!auth_table_find(&a->revoked, e->hash)) {
        auth_table_put(&a->revoked, e);
        e = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    free(e);
}

int rt_auth_logout(rt_auth_t *a, const rt_principal_t *p)
{
    if (p->kind != RT_PRINCIPAL_USER || !p->jti[0])
        return 0;
    unsigned char h[AUTH_SHA256_SIZE];
    auth_sha256(p->jti, strlen(p->jti), h);
    int64_t exp = (int64_t)p->expires_at * 1000;
    /* committed first: the answer that follows promises it survives a crash */
    int rc = rt_store_revoked_put(a->store, p->jti, exp) == RT_STORE_OK ? 0 : -1;
    auth_revoked_put(a, h, exp);
    return rc;
}
