/* store_users: users, API keys and revoked JWTs (see store.h). */
#include "store/store_internal.h"

#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ---- users ---- */

#define USER_COLS "id, username, password_hash, role, created_at, updated_at"

void rt_user_rec_free(rt_user_rec_t *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->username);
    if (r->password_hash)
        memset(r->password_hash, 0, strlen(r->password_hash));
    free(r->password_hash);
    free(r->role);
    memset(r, 0, sizeof(*r));
}

static void user_from_row(sqlite3_stmt *s, rt_user_rec_t *r)
{
    r->id = st_col_dup(s, 0);
    r->username = st_col_dup(s, 1);
    r->password_hash = st_col_dup(s, 2);
    r->role = st_col_dup(s, 3);
    r->created_at = sqlite3_column_int64(s, 4);
    r->updated_at = sqlite3_column_int64(s, 5);
}

int rt_store_user_insert(rt_store_t *st, const rt_user_rec_t *r)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db, "INSERT INTO users (" USER_COLS ") VALUES (?1,?2,?3,?4,?5,?6)");
    if (s) {
        st_bind_text(s, 1, r->id);
        st_bind_text(s, 2, r->username);
        st_bind_text(s, 3, r->password_hash);
        st_bind_text(s, 4, r->role);
        sqlite3_bind_int64(s, 5, r->created_at);
        sqlite3_bind_int64(s, 6, r->updated_at);
    }
    int rc = st_step_done(st->db, s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int user_get_by(rt_store_t *st, const char *sql, const char *key, rt_user_rec_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&st->rmu);
    sqlite3_stmt *s = st_prepare(st->rdb, sql);
    int rc = RT_STORE_ERR;
    if (s) {
        st_bind_text(s, 1, key);
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            user_from_row(s, out);
            rc = RT_STORE_OK;
        } else if (step == SQLITE_DONE) {
            rc = RT_STORE_NOTFOUND;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    return rc;
}

int rt_store_user_get(rt_store_t *st, const char *id, rt_user_rec_t *out)
{
    return user_get_by(st, "SELECT " USER_COLS " FROM users WHERE id = ?1", id, out);
}

int rt_store_user_get_by_name(rt_store_t *st, const char *username, rt_user_rec_t *out)
{
    return user_get_by(st, "SELECT " USER_COLS " FROM users WHERE username = ?1", username, out);
}

int rt_store_users_each(rt_store_t *st, void (*cb)(const rt_user_rec_t *rec, void *arg), void *arg)
{
    rt_user_rec_t *rows = NULL;
    size_t n = 0, cap = 0;
    int step = SQLITE_ERROR;
    pthread_mutex_lock(&st->rmu);
    sqlite3_stmt *s = st_prepare(st->rdb, "SELECT " USER_COLS " FROM users ORDER BY username");
    while (s && (step = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = cm_xrealloc(rows, cap * sizeof(*rows));
        }
        user_from_row(s, &rows[n++]);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    int rc = step == SQLITE_DONE ? RT_STORE_OK : RT_STORE_ERR;
    for (size_t i = 0; i < n; i++) {
        if (rc == RT_STORE_OK)
            cb(&rows[i], arg);
        rt_user_rec_free(&rows[i]);
    }
    free(rows);
    return rc;
}

static int count_query(sqlite3 *db, const char *sql, const char *param)
{
    sqlite3_stmt *s = st_prepare(db, sql);
    int n = -1;
    if (s) {
        if (param)
            st_bind_text(s, 1, param);
        if (sqlite3_step(s) == SQLITE_ROW)
            n = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
    return n;
}

int rt_store_user_count(rt_store_t *st)
{
    pthread_mutex_lock(&st->rmu);
    int n = count_query(st->rdb, "SELECT COUNT(*) FROM users", NULL);
    pthread_mutex_unlock(&st->rmu);
    return n;
}

/* True when id is an admin and the only one (caller holds mu, in a tx). */
static bool is_last_admin(sqlite3 *db, const char *id)
{
    int mine = count_query(db, "SELECT COUNT(*) FROM users WHERE id = ?1 AND role = 'admin'", id);
    int all = count_query(db, "SELECT COUNT(*) FROM users WHERE role = 'admin'", NULL);
    return mine == 1 && all <= 1;
}

static int user_update_tx(sqlite3 *db, const char *id, const char *username, const char *hash,
                          const char *role)
{
    if (count_query(db, "SELECT COUNT(*) FROM users WHERE id = ?1", id) != 1)
        return RT_STORE_NOTFOUND;
    if (role && strcmp(role, "admin") != 0 && is_last_admin(db, id))
        return RT_STORE_LAST_ADMIN;
    sqlite3_stmt *s = st_prepare(db,
        "UPDATE users SET username = COALESCE(?2, username),"
        " password_hash = COALESCE(?3, password_hash), role = COALESCE(?4, role),"
        " updated_at = ?5 WHERE id = ?1");
    if (s) {
        st_bind_text(s, 1, id);
        st_bind_text(s, 2, username);
        st_bind_text(s, 3, hash);
        st_bind_text(s, 4, role);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)cm_wall_ms());
    }
    return st_step_done(db, s);
}

int rt_store_user_update(rt_store_t *st, const char *id, const char *username,
                         const char *password_hash, const char *role)
{
    pthread_mutex_lock(&st->mu);
    int rc = st_exec(st->db, "BEGIN IMMEDIATE");
    if (rc == RT_STORE_OK) {
        rc = user_update_tx(st->db, id, username, password_hash, role);
        if (st_exec(st->db, rc == RT_STORE_OK ? "COMMIT" : "ROLLBACK") != RT_STORE_OK && rc == RT_STORE_OK)
            rc = RT_STORE_ERR;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int user_delete_tx(sqlite3 *db, const char *id)
{
    if (count_query(db, "SELECT COUNT(*) FROM users WHERE id = ?1", id) != 1)
        return RT_STORE_NOTFOUND;
    if (is_last_admin(db, id))
        return RT_STORE_LAST_ADMIN;
    sqlite3_stmt *s = st_prepare(db, "DELETE FROM users WHERE id = ?1");
    if (s)
        st_bind_text(s, 1, id);
    return st_step_done(db, s);
}

int rt_store_user_delete(rt_store_t *st, const char *id)
{
    pthread_mutex_lock(&st->mu);
    int rc = st_exec(st->db, "BEGIN IMMEDIATE");
    if (rc == RT_STORE_OK) {
        rc = user_delete_tx(st->db, id);
        if (st_exec(st->db, rc == RT_STORE_OK ? "COMMIT" : "ROLLBACK") != RT_STORE_OK && rc == RT_STORE_OK)
            rc = RT_STORE_ERR;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- API keys ---- */

#define KEY_COLS "id, name, key_hash, key_prefix, created_by, created_at, expires_at, last_used_at"

void rt_apikey_rec_free(rt_apikey_rec_t *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->name);
    free(r->key_hash);
    free(r->key_prefix);
    free(r->created_by);
    memset(r, 0, sizeof(*r));
}

static void key_from_row(sqlite3_stmt *s, rt_apikey_rec_t *r)
{
    r->id = st_col_dup(s, 0);
    r->name = st_col_dup(s, 1);
    r->key_hash = st_col_dup(s, 2);
    r->key_prefix = st_col_dup(s, 3);
    r->created_by = st_col_dup(s, 4);
    r->created_at = sqlite3_column_int64(s, 5);
    r->expires_at = sqlite3_column_int64(s, 6);   /* NULL reads as 0 */
    r->last_used_at = sqlite3_column_int64(s, 7);
}

static void bind_ms_or_null(sqlite3_stmt *s, int idx, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(s, idx, v);
    else
        sqlite3_bind_null(s, idx);
}

int rt_store_apikey_insert(rt_store_t *st, const rt_apikey_rec_t *r)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db, "INSERT INTO api_keys (" KEY_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8)");
    if (s) {
        st_bind_text(s, 1, r->id);
        st_bind_text(s, 2, r->name);
        st_bind_text(s, 3, r->key_hash);
        st_bind_text(s, 4, r->key_prefix);
        st_bind_text(s, 5, r->created_by);
        sqlite3_bind_int64(s, 6, r->created_at);
        bind_ms_or_null(s, 7, r->expires_at);
        bind_ms_or_null(s, 8, r->last_used_at);
    }
    int rc = st_step_done(st->db, s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int key_get_by(rt_store_t *st, const char *sql, const char *key, rt_apikey_rec_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&st->rmu);
    sqlite3_stmt *s = st_prepare(st->rdb, sql);
    int rc = RT_STORE_ERR;
    if (s) {
        st_bind_text(s, 1, key);
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            key_from_row(s, out);
            rc = RT_STORE_OK;
        } else if (step == SQLITE_DONE) {
            rc = RT_STORE_NOTFOUND;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    return rc;
}

int rt_store_apikey_get(rt_store_t *st, const char *id, rt_apikey_rec_t *out)
{
    return key_get_by(st, "SELECT " KEY_COLS " FROM api_keys WHERE id = ?1", id, out);
}

int rt_store_apikey_get_by_hash(rt_store_t *st, const char *key_hash, rt_apikey_rec_t *out)
{
    return key_get_by(st, "SELECT " KEY_COLS " FROM api_keys WHERE key_hash = ?1", key_hash, out);
}

int rt_store_apikeys_each(rt_store_t *st, void (*cb)(const rt_apikey_rec_t *rec, void *arg), void *arg)
{
    rt_apikey_rec_t *rows = NULL;
    size_t n = 0, cap = 0;
    int step = SQLITE_ERROR;
    pthread_mutex_lock(&st->rmu);
    sqlite3_stmt *s = st_prepare(st->rdb, "SELECT " KEY_COLS " FROM api_keys ORDER BY created_at, id");
    while (s && (step = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = cm_xrealloc(rows, cap * sizeof(*rows));
        }
        key_from_row(s, &rows[n++]);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    int rc = step == SQLITE_DONE ? RT_STORE_OK : RT_STORE_ERR;
    for (size_t i = 0; i < n; i++) {
        if (rc == RT_STORE_OK)
            cb(&rows[i], arg);
        rt_apikey_rec_free(&rows[i]);
    }
    free(rows);
    return rc;
}

int rt_store_apikey_update(rt_store_t *st, const char *id, const char *name, bool set_expiry,
                           int64_t expires_at)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db,
        "UPDATE api_keys SET name = COALESCE(?2, name),"
        " expires_at = CASE WHEN ?3 THEN ?4 ELSE expires_at END WHERE id = ?1");
    if (s) {
        st_bind_text(s, 1, id);
        st_bind_text(s, 2, name);
        sqlite3_bind_int(s, 3, set_expiry ? 1 : 0);
        bind_ms_or_null(s, 4, expires_at);
    }
    int rc = st_step_done(st->db, s);
    if (rc == RT_STORE_OK && sqlite3_changes(st->db) == 0)
        rc = RT_STORE_NOTFOUND;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int rt_store_apikey_delete(rt_store_t *st, const char *id)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db, "DELETE FROM api_keys WHERE id = ?1");
    if (s)
        st_bind_text(s, 1, id);
    int rc = st_step_done(st->db, s);
    if (rc == RT_STORE_OK && sqlite3_changes(st->db) == 0)
        rc = RT_STORE_NOTFOUND;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

typedef struct {
    char *id;
    int64_t when;
} touch_t;

static void touch_free(void *arg)
{
    touch_t *t = arg;
    free(t->id);
    free(t);
}

static void touch_run(sqlite3 *db, void *arg)
{
    touch_t *t = arg;
    sqlite3_stmt *s = st_prepare(db, "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1");
    if (!s)
        return;
    st_bind_text(s, 1, t->id);
    sqlite3_bind_int64(s, 2, t->when);
    st_step_done(db, s);
}

void rt_store_apikey_touch(rt_store_t *st, const char *id, int64_t when)
{
    touch_t *t = cm_xcalloc(1, sizeof(*t));
    t->id = cm_xstrdup(id);
    t->when = when;
    st_post(st, touch_run, t, touch_free);
}

/* ---- revoked tokens ---- */

static void revoked_run(sqlite3 *db, void *arg)
{
    touch_t *t = arg; /* same shape: jti + expiry */
    sqlite3_stmt *s = st_prepare(db, "INSERT OR REPLACE INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2)");
    if (!s)
        return;
    st_bind_text(s, 1, t->id);
    sqlite3_bind_int64(s, 2, t->when);
    st_step_done(db, s);
}

void rt_store_revoked_add(rt_store_t *st, const char *jti, int64_t expires_at)
{
    touch_t *t = cm_xcalloc(1, sizeof(*t));
    t->id = cm_xstrdup(jti);
    t->when = expires_at;
    st_post(st, revoked_run, t, touch_free);
}

int rt_store_revoked_each(rt_store_t *st, int64_t now_ms,
                          void (*cb)(const char *jti, int64_t expires_at, void *arg), void *arg)
{
    pthread_mutex_lock(&st->mu);
    int rc = RT_STORE_ERR, step = SQLITE_ERROR;
    sqlite3_stmt *s = st_prepare(st->db, "DELETE FROM revoked_tokens WHERE expires_at <= ?1");
    if (s)
        sqlite3_bind_int64(s, 1, now_ms);
    if (st_step_done(st->db, s) != RT_STORE_OK)
        goto out;
    s = st_prepare(st->db, "SELECT jti, expires_at FROM revoked_tokens");
    while (s && (step = sqlite3_step(s)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), arg);
    sqlite3_finalize(s);
    rc = step == SQLITE_DONE ? RT_STORE_OK : RT_STORE_ERR;
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int rt_store_revoked_put(rt_store_t *st, const char *jti, int64_t expires_at)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db, "INSERT OR REPLACE INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2)");
    if (s) {
        st_bind_text(s, 1, jti);
        sqlite3_bind_int64(s, 2, expires_at);
    }
    int rc = st_step_done(st->db, s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int rt_store_revoked_read(rt_store_t *st, int64_t now_ms,
                          void (*cb)(const char *jti, int64_t expires_at, void *arg), void *arg)
{
    pthread_mutex_lock(&st->rmu);
    int step = SQLITE_ERROR;
    sqlite3_stmt *s = st_prepare(st->rdb, "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?1");
    if (s)
        sqlite3_bind_int64(s, 1, now_ms);
    while (s && (step = sqlite3_step(s)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), arg);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    return step == SQLITE_DONE ? RT_STORE_OK : RT_STORE_ERR;
}
