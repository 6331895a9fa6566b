/* auth_users: what a valid user is (name, password length, role), creating
 * one, and the in-memory mirror of the users table that session checks read
 * (id -> name and role), with its targeted update after a change. */
#include "auth/auth_internal.h"

#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (password && (strlen(password) < RT_AUTH_PASSWORD_MIN || strlen(password) > RT_AUTH_PASSWORD_MAX)) {
        snprintf(err, errlen, "password must be %d to %d characters", RT_AUTH_PASSWORD_MIN,
                 RT_AUTH_PASSWORD_MAX);
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
    char id[RT_AUTH_UUID_SIZE], hash[RT_AUTH_PWHASH_MAX];
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

/* ---- the users mirror (what a session check reads) ---- */

auth_ent_t *auth_user_ent(const rt_user_rec_t *u)
{
    if (!u->id || strlen(u->id) >= sizeof(((auth_ent_t *)0)->id))
        return NULL;
    auth_ent_t *e = cm_xcalloc(1, sizeof(*e));
    auth_sha256(u->id, strlen(u->id), e->hash);
    memcpy(e->id, u->id, strlen(u->id) + 1);
    snprintf(e->name, sizeof(e->name), "%s", u->username ? u->username : "");
    e->admin = u->role && strcmp(u->role, "admin") == 0;
    return e;
}

static void snapshot_user(const rt_user_rec_t *u, void *arg)
{
    auth_ent_t *e = auth_user_ent(u);
    if (e)
        auth_table_put(arg, e);
}

int auth_users_snapshot(rt_auth_t *a, auth_table_t *out)
{
    return rt_store_users_each(a->store, snapshot_user, out) == RT_STORE_OK ? 0 : -1;
}

void rt_auth_user_sync(rt_auth_t *a, const char *id)
{
    rt_user_rec_t u;
    auth_ent_t *e = NULL;
    /* a store error also removes it (fail closed); the refresher restores it */
    if (rt_store_user_get(a->store, id, &u) == RT_STORE_OK) {
        e = auth_user_ent(&u);
        rt_user_rec_free(&u);
    }
    auth_mirror_set(a, &a->users, id, e);
}
