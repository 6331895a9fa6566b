/* auth_jwt: passwords (Argon2id), users, login with per-address rate limit,
 * JWT sessions (HS256 via libjwt) and their revocation on logout. */
#include "auth/auth_internal.h"

#include "log.h"
#include "util.h"

#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- passwords and users ---- */

int rt_auth_password_hash(const char *password, char out[RT_AUTH_PWHASH_MAX])
{
    _Static_assert(RT_AUTH_PWHASH_MAX >= crypto_pwhash_STRBYTES, "hash buffer too small");
    return crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0 ? 0 : -1;
}

bool rt_auth_password_check(const char *hash, const char *password)
{
    return hash && password && crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RT_AUTH_NAME_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p == 0x7f) /* no spaces or control characters */
            return false;
    return true;
}

int rt_auth_user_validate(const char *username, const char *password, const char *role, char *err,
                          size_t errlen)
{
    if (username && !name_ok(username)) {
        snprintf(err, errlen, "username must be 1-%d printable characters without spaces",
                 RT_AUTH_NAME_MAX);
        return RT_AUTH_EINVAL;
    }
    if (password && (strlen(password) < RT_AUTH_PASSWORD_MIN || strlen(password) > 1024)) {
        snprintf(err, errlen, "password must be %d to 1024 characters", RT_AUTH_PASSWORD_MIN);
        return RT_AUTH_EINVAL;
    }
    if (role && strcmp(role, "admin") != 0 && strcmp(role, "viewer") != 0) {
        snprintf(err, errlen, "role must be \"admin\" or \"viewer\"");
        return RT_AUTH_EINVAL;
    }
    return 0;
}

int rt_auth_user_create(rt_store_t *st, const char *username, const char *password,
                        const char *role, rt_user_rec_t *rec, char *err, size_t errlen)
{
    if (!username || !password || !role) {
        snprintf(err, errlen, "username, password and role are required");
        return RT_AUTH_EINVAL;
    }
    int rc = rt_auth_user_validate(username, password, role, err, errlen);
    if (rc != 0)
        return rc;
    char id[37], hash[RT_AUTH_PWHASH_MAX];
    if (rt_auth_password_hash(password, hash) != 0) {
        snprintf(err, errlen, "password hashing failed (out of memory)");
        return RT_STORE_ERR;
    }
    rt_auth_uuid(id);
    int64_t now = (int64_t)cm_wall_ms();
    rt_user_rec_t r = { .id = id, .username = (char *)username, .password_hash = hash,
                        .role = (char *)role, .created_at = now, .updated_at = now };
    rc = rt_store_user_insert(st, &r);
    if (rc == RT_STORE_CONFLICT)
        snprintf(err, errlen, "user \"%s\" already exists", username);
    else if (rc != 0)
        snprintf(err, errlen, "database error");
    if (rc == 0 && rec) {
        rec->id = cm_xstrdup(id);
        rec->username = cm_xstrdup(username);
        rec->password_hash = cm_xstrdup(hash);
        rec->role = cm_xstrdup(role);
        rec->created_at = rec->updated_at = now;
    }
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

/* ---- login rate limit: failures per client address in a fixed window ---- */

static limit_ent_t *limit_slot(rt_auth_t *a, const char *peer, bool create)
{
    uint64_t now = cm_now_ms(), win = (uint64_t)a->login_window_s * 1000;
    limit_ent_t *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < LIMIT_SLOTS; i++) {
        limit_ent_t *e = &a->limits[i];
        if (e->peer[0] && strcmp(e->peer, peer) == 0) {
            if (now - e->window_start_ms >= win) { /* window over: start afresh */
                e->window_start_ms = now;
                e->failures = 0;
            }
            return e;
        }
        if (!e->peer[0] || now - e->window_start_ms >= win) {
            if (!free_slot)
                free_slot = e;
        } else if (!oldest || e->window_start_ms < oldest->window_start_ms) {
            oldest = e;
        }
    }
    if (!create)
        return NULL;
    limit_ent_t *e = free_slot ? free_slot : oldest;
    snprintf(e->peer, sizeof(e->peer), "%s", peer);
    e->window_start_ms = now;
    e->failures = 0;
    return e;
}

/* Seconds until peer may try again, 0 when it may now. */
static int limit_check(rt_auth_t *a, const char *peer)
{
    pthread_mutex_lock(&a->mu);
    limit_ent_t *e = limit_slot(a, peer, false);
    int wait = 0;
    if (e && e->failures >= a->login_max_failures) {
        uint64_t end = e->window_start_ms + (uint64_t)a->login_window_s * 1000, now = cm_now_ms();
        wait = end > now ? (int)((end - now + 999) / 1000) : 0;
    }
    pthread_mutex_unlock(&a->mu);
    return wait;
}

static void limit_record(rt_auth_t *a, const char *peer, bool success)
{
    pthread_mutex_lock(&a->mu);
    limit_ent_t *e = limit_slot(a, peer, !success);
    if (e && success)
        memset(e, 0, sizeof(*e));
    else if (e)
        e->failures++;
    pthread_mutex_unlock(&a->mu);
}

/* ---- JWT ---- */

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
    unsigned char raw[16];
    char jti[33];
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

/* ---- the users mirror (what a session check reads) ---- */

static ent_t *user_ent(const rt_user_rec_t *u)
{
    if (!u->id || strlen(u->id) >= sizeof(((ent_t *)0)->id))
        return NULL;
    ent_t *e = cm_xcalloc(1, sizeof(*e));
    auth_sha256(u->id, strlen(u->id), e->hash);
    memcpy(e->id, u->id, strlen(u->id) + 1);
    snprintf(e->name, sizeof(e->name), "%s", u->username ? u->username : "");
    e->admin = u->role && strcmp(u->role, "admin") == 0;
    return e;
}

static void snapshot_user(const rt_user_rec_t *u, void *arg)
{
    ent_t *e = user_ent(u);
    if (e)
        tbl_put(arg, e);
}

int auth_users_snapshot(rt_auth_t *a, table_t *out)
{
    return rt_store_users_each(a->store, snapshot_user, out) == RT_STORE_OK ? 0 : -1;
}

void rt_auth_user_sync(rt_auth_t *a, const char *id)
{
    rt_user_rec_t u;
    ent_t *e = NULL;
    /* a store error also removes it (fail closed); the refresher restores it */
    if (rt_store_user_get(a->store, id, &u) == RT_STORE_OK) {
        e = user_ent(&u);
        rt_user_rec_free(&u);
    }
    auth_mirror_set(a, &a->users, id, e);
}

bool auth_jwt_verify(rt_auth_t *a, const char *token, rt_principal_t *p)
{
    jwt_t *j = NULL;
    bool ok = false;
    unsigned char jh[32], uh[32];
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
    ent_t *u = tbl_find(&a->revoked, jh) ? NULL : tbl_find(&a->users, uh);
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

rt_login_result_t rt_auth_login(rt_auth_t *a, const char *peer, const char *username,
                                const char *password, char **token, long long *expires_in,
                                rt_user_rec_t *user, int *retry_after)
{
    *token = NULL;
    memset(user, 0, sizeof(*user));
    int wait = limit_check(a, peer);
    if (wait > 0) {
        *retry_after = wait;
        return RT_LOGIN_LIMITED;
    }
    int rc = rt_store_user_get_by_name(a->store, username, user);
    if (rc == RT_STORE_ERR)
        return RT_LOGIN_ERROR;
    /* an unknown user costs the same Argon2id work as a wrong password */
    const char *hash = rc == RT_STORE_OK ? user->password_hash : a->dummy_hash;
    bool good = rt_auth_password_check(hash, password);
    if (!good || rc != RT_STORE_OK) {
        rt_user_rec_free(user);
        limit_record(a, peer, false);
        return RT_LOGIN_BAD;
    }
    limit_record(a, peer, true);
    /* a user made by the CLI may log in before the mirror's next reload */
    auth_mirror_set(a, &a->users, user->id, user_ent(user));
    *token = jwt_issue(a, user, expires_in);
    if (!*token) {
        rt_user_rec_free(user);
        return RT_LOGIN_ERROR;
    }
    return RT_LOGIN_OK;
}

void rt_auth_logout(rt_auth_t *a, const rt_principal_t *p)
{
    if (p->kind != RT_PRINCIPAL_USER || !p->jti[0])
        return;
    ent_t *e = cm_xcalloc(1, sizeof(*e));
    auth_sha256(p->jti, strlen(p->jti), e->hash);
    e->expires_at = (int64_t)p->expires_at * 1000;
    pthread_mutex_lock(&a->mu);
    tbl_prune(&a->revoked, (int64_t)cm_wall_ms());
    if (!tbl_find(&a->revoked, e->hash)) {
        tbl_put(&a->revoked, e);
        e = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    free(e);
    rt_store_revoked_add(a->store, p->jti, (int64_t)p->expires_at * 1000);
}
