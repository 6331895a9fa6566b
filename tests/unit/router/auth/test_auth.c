/* Unit tests of router/src/auth/: secrets and the first admin, login and its
 * rate limit (auth_limit.c), JWT checks (signature, alg, expiry, revocation,
 * user gone), node tokens and API keys, and that the per-request checks never
 * read the database (they use mirrors that a thread refreshes). Argon2id runs
 * with libsodium's interactive limits, as in production (about 0.1 s per
 * hash). */
#include "auth/auth_internal.h"

#include "util.h"

#include <jwt.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

static char g_dir[256];
static const char *g_env[16][2];

static const char *fake_env(const char *name, void *ud)
{
    (void)ud;
    for (int i = 0; i < 16 && g_env[i][0]; i++)
        if (strcmp(g_env[i][0], name) == 0)
            return g_env[i][1];
    return NULL;
}

static void setenv_fake(const char *name, const char *value)
{
    int i = 0;
    while (g_env[i][0] && strcmp(g_env[i][0], name) != 0)
        i++;
    g_env[i][0] = name;
    g_env[i][1] = value;
}

typedef struct {
    cm_config_t *loaded;
    rt_config_t cfg;
    rt_store_t *st;
    rt_auth_t *auth;
} ctx_t;

static void ctx_open(ctx_t *c)
{
    char err[256] = "";
    setenv_fake("LLM_ROUTER_DATA_DIR", g_dir);
    assert_int_equal(cm_config_load(rt_options, rt_options_count, fake_env, NULL, &c->cfg, &c->loaded, err, sizeof(err)), 0);
    assert_int_equal(rt_store_open(c->cfg.database_url, &c->st, err, sizeof(err)), 0);
    int rc = rt_auth_new(&c->cfg, g_dir, c->st, &c->auth, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "rt_auth_new: %s\n", err);
    assert_int_equal(rc, 0);
}

static void ctx_close(ctx_t *c)
{
    rt_auth_free(c->auth);
    rt_store_close(c->st);
    cm_config_free(c->loaded);
}

static int setup(void **state)
{
    (void)state;
    memset(g_env, 0, sizeof(g_env));
    snprintf(g_dir, sizeof(g_dir), "/tmp/llmr-test-auth-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = cm_xasprintf("rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

static char *read_secret(const char *name)
{
    char *path = cm_xasprintf("%s/%s", g_dir, name), *text = NULL;
    size_t len;
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(cm_read_file(path, 4096, &text, &len), 0);
    text[strcspn(text, "\n")] = '\0';
    free(path);
    return text;
}

static char *login(ctx_t *c, const char *user, const char *pw, rt_login_result_t want)
{
    char *tok = NULL;
    long long exp = 0;
    int retry = 0;
    rt_user_rec_t u;
    rt_login_result_t r = rt_auth_login(c->auth, "10.0.0.1", user, pw, &tok, &exp, &u, &retry);
    assert_int_equal(r, want);
    if (r == RT_LOGIN_OK) {
        assert_string_equal(u.username, user);
        assert_int_equal(exp, 86400);
        rt_user_rec_free(&u);
    }
    return tok;
}

static void test_first_start_generates_secrets_and_admin(void **state)
{
    (void)state;
    ctx_t c;
    ctx_open(&c);
    char *pw = read_secret("admin_password"), *join = read_secret("join_token");
    assert_true(strlen(pw) >= 32);
    assert_string_equal(join, rt_auth_join_token(c.auth));
    assert_int_equal(strncmp(join, "jt_", 3), 0);
    assert_false(rt_auth_registration_open(c.auth));
    char *tok = login(&c, "admin", pw, RT_LOGIN_OK);
    ctx_close(&c);

    /* second start: same secret (the token still verifies), no second admin */
    ctx_open(&c);
    rt_principal_t p = { 0 };
    assert_true(auth_jwt_verify(c.auth, tok, &p));
    assert_true(p.admin);
    assert_string_equal(p.name, "admin");
    assert_int_equal(rt_store_user_count(c.st), 1);
    ctx_close(&c);
    free(tok);
    free(pw);
    free(join);
}

static void test_env_admin_and_join(void **state)
{
    (void)state;
    setenv_fake("ADMIN_USERNAME", "root"); /* legacy alias */
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "s3cret-pass");
    setenv_fake("LLM_ROUTER_JOIN_TOKEN", "join-from-env");
    ctx_t c;
    ctx_open(&c);
    assert_string_equal(rt_auth_join_token(c.auth), "join-from-env");
    free(login(&c, "root", "s3cret-pass", RT_LOGIN_OK));
    free(login(&c, "root", "wrong-pass", RT_LOGIN_BAD));
    free(login(&c, "nobody", "s3cret-pass", RT_LOGIN_BAD));
    char *path = cm_xasprintf("%s/admin_password", g_dir);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* nothing generated */
    free(path);
    ctx_close(&c);
}

static void test_login_rate_limit(void **state)
{
    (void)state;
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "good-password");
    setenv_fake("LLM_ROUTER_LOGIN_MAX_FAILURES", "3");
    ctx_t c;
    ctx_open(&c);
    for (int i = 0; i < 3; i++)
        free(login(&c, "admin", "bad-password", RT_LOGIN_BAD));
    char *tok = NULL;
    long long exp;
    int retry = 0;
    rt_user_rec_t u;
    /* even the right password waits now */
    assert_int_equal(rt_auth_login(c.auth, "10.0.0.1", "admin", "good-password", &tok, &exp, &u, &retry),
                     RT_LOGIN_LIMITED);
    assert_true(retry > 0 && retry <= 60);
    /* another address is not affected */
    assert_int_equal(rt_auth_login(c.auth, "10.0.0.2", "admin", "good-password", &tok, &exp, &u, &retry),
                     RT_LOGIN_OK);
    rt_user_rec_free(&u);
    free(tok);
    ctx_close(&c);
}

/* One whole attempt through the reservation: 0 when it was let through. */
static int attempt(auth_limit_t *l, const char *peer, const char *account, bool ok)
{
    int rc = auth_limit_begin(l, peer, account, NULL);
    if (rc == 0)
        auth_limit_end(l, peer, account, ok ? AUTH_LIMIT_SUCCESS : AUTH_LIMIT_FAILURE);
    return rc;
}

/* The limit itself: per account at an address, reset for that account by a
 * success, over with the window. */
static void test_limit_windows(void **state)
{
    (void)state;
    auth_limit_t *l = auth_limit_new(2, 100, 4, 1);
    assert_int_equal(attempt(l, "10.0.0.1", "a", false), 0);
    assert_int_equal(attempt(l, "10.0.0.1", "a", false), 0); /* the second failure */
    assert_int_equal(attempt(l, "10.0.0.1", "a", true), 1);  /* limited: wait 1 s */
    assert_int_equal(attempt(l, "10.0.0.2", "a", true), 0);  /* another address */
    assert_int_equal(attempt(l, "10.0.0.2", "b", false), 0);
    assert_int_equal(attempt(l, "10.0.0.2", "b", true), 0);  /* forgets b's failure */
    assert_int_equal(attempt(l, "10.0.0.2", "b", false), 0);
    assert_int_equal(attempt(l, "10.0.0.2", "b", false), 0);
    struct timespec ts = { 1, 100 * 1000000L }; /* the window is over */
    nanosleep(&ts, NULL);
    assert_int_equal(attempt(l, "10.0.0.1", "a", false), 0);
    auth_limit_free(l);
    auth_limit_free(NULL);
}

/* Finding 5: a success of one account no longer resets the address, so a
 * viewer cannot guess the admin's password without limit; and the address
 * as a whole is limited across accounts. */
static void test_limit_success_resets_only_its_account(void **state)
{
    (void)state;
    auth_limit_t *l = auth_limit_new(3, 8, 4, 60);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(attempt(l, "10.0.0.1", "admin", false), 0);
        assert_int_equal(attempt(l, "10.0.0.1", "viewer", true), 0); /* the viewer's own login */
    }
    assert_true(attempt(l, "10.0.0.1", "admin", true) > 0);  /* still limited */
    assert_int_equal(attempt(l, "10.0.0.1", "viewer", true), 0);
    /* spraying other accounts: the address's own limit (8 failures) */
    for (int i = 0; i < 5; i++) {
        char acct[16];
        snprintf(acct, sizeof(acct), "u%d", i);
        assert_int_equal(attempt(l, "10.0.0.1", acct, false), 0);
    }
    assert_true(attempt(l, "10.0.0.1", "viewer", true) > 0);
    assert_int_equal(attempt(l, "10.0.0.9", "viewer", true), 0);
    auth_limit_free(l);
}

typedef struct {
    auth_limit_t *l;
    int through; /* atomic */
} race_t;

static void *racer(void *arg)
{
    race_t *r = arg;
    if (auth_limit_begin(r->l, "10.0.0.1", "admin", NULL) == 0) {
        __atomic_add_fetch(&r->through, 1, __ATOMIC_RELAXED);
        struct timespec ts = { 0, 20 * 1000000L }; /* the hash */
        nanosleep(&ts, NULL);
        auth_limit_end(r->l, "10.0.0.1", "admin", AUTH_LIMIT_FAILURE);
    }
    return NULL;
}

/* Finding 5: check and record are one step. 30 concurrent wrong passwords
 * (the seed let 8 of 30 through a limit of 5) reach the hash at most 5 times,
 * and with one login in flight per address, one at a time. */
static void test_limit_concurrent_attempts(void **state)
{
    (void)state;
    for (int inflight = 64; inflight >= 1; inflight -= 63) {
        race_t r = { auth_limit_new(5, 100, inflight, 60), 0 };
        pthread_t t[30];
        for (int i = 0; i < 30; i++)
            assert_int_equal(pthread_create(&t[i], NULL, racer, &r), 0);
        for (int i = 0; i < 30; i++)
            pthread_join(t[i], NULL);
        assert_true(r.through >= 1 && r.through <= 5);
        if (inflight == 64) {
            /* pending reservations count: five begun, none ended, a sixth waits */
            auth_limit_t *l = auth_limit_new(5, 100, 64, 60);
            for (int i = 0; i < 5; i++)
                assert_int_equal(auth_limit_begin(l, "10.0.0.2", "admin", NULL), 0);
            assert_int_equal(auth_limit_begin(l, "10.0.0.2", "admin", NULL), AUTH_LIMIT_BUSY);
            for (int i = 0; i < 5; i++)
                auth_limit_end(l, "10.0.0.2", "admin", AUTH_LIMIT_CANCELLED);
            assert_int_equal(auth_limit_begin(l, "10.0.0.2", "admin", NULL), 0); /* nothing counted */
            auth_limit_end(l, "10.0.0.2", "admin", AUTH_LIMIT_CANCELLED);
            auth_limit_free(l);
        }
        auth_limit_free(r.l);
    }
}

/* Finding 9: one login in flight per address (the default), reported as
 * busy, not as a failure; whether the address is clean decides urgency. */
static void test_limit_inflight_per_address(void **state)
{
    (void)state;
    auth_limit_t *l = auth_limit_new(5, 20, 1, 60);
    bool clean = false;
    assert_int_equal(auth_limit_begin(l, "10.0.0.1", "a", &clean), 0);
    assert_true(clean);
    assert_int_equal(auth_limit_begin(l, "10.0.0.1", "b", NULL), AUTH_LIMIT_BUSY);
    assert_int_equal(auth_limit_begin(l, "10.0.0.2", "a", NULL), 0);
    auth_limit_end(l, "10.0.0.1", "a", AUTH_LIMIT_FAILURE);
    auth_limit_end(l, "10.0.0.2", "a", AUTH_LIMIT_SUCCESS);
    assert_int_equal(auth_limit_begin(l, "10.0.0.1", "b", &clean), 0);
    assert_false(clean); /* it failed once in this window */
    auth_limit_end(l, "10.0.0.1", "b", AUTH_LIMIT_SUCCESS);
    auth_limit_free(l);
}

static void count_row(const char *jti, int64_t expires_at, void *arg)
{
    (void)jti;
    (void)expires_at;
    ++*(int *)arg;
}

static char *forge(const char *key, jwt_alg_t alg, const char *sub, long exp)
{
    jwt_t *j;
    assert_int_equal(jwt_new(&j), 0);
    jwt_add_grant(j, "sub", sub);
    jwt_add_grant(j, "jti", "forged");
    jwt_add_grant_int(j, "exp", exp);
    if (alg != JWT_ALG_NONE)
        assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    char *s = jwt_encode_str(j);
    jwt_free(j);
    return s;
}

static void test_jwt_checks(void **state)
{
    (void)state;
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "good-password");
    setenv_fake("LLM_ROUTER_JWT_SECRET", "0123456789abcdef0123456789abcdef");
    ctx_t c;
    ctx_open(&c);
    rt_user_rec_t admin;
    assert_int_equal(rt_store_user_get_by_name(c.st, "admin", &admin), 0);
    long now = (long)(cm_wall_ms() / 1000);
    rt_principal_t p = { 0 };
    char *good = forge("0123456789abcdef0123456789abcdef", JWT_ALG_HS256, admin.id, now + 60);
    char *expired = forge("0123456789abcdef0123456789abcdef", JWT_ALG_HS256, admin.id, now - 1);
    char *wrongkey = forge("another-key-another-key-another!", JWT_ALG_HS256, admin.id, now + 60);
    char *none = forge(NULL, JWT_ALG_NONE, admin.id, now + 60);
    char *ghost = forge("0123456789abcdef0123456789abcdef", JWT_ALG_HS256, "no-such-user", now + 60);
    assert_true(auth_jwt_verify(c.auth, good, &p));
    assert_false(auth_jwt_verify(c.auth, expired, &p));
    assert_false(auth_jwt_verify(c.auth, wrongkey, &p));
    assert_false(auth_jwt_verify(c.auth, none, &p));
    assert_false(auth_jwt_verify(c.auth, ghost, &p));
    assert_false(auth_jwt_verify(c.auth, "not.a.jwt", &p));
    assert_false(auth_jwt_verify(c.auth, "", &p));

    /* logout revokes exactly that token, also across a restart */
    char *tok = login(&c, "admin", "good-password", RT_LOGIN_OK);
    memset(&p, 0, sizeof(p));
    assert_true(auth_jwt_verify(c.auth, tok, &p));
    rt_auth_logout(c.auth, &p);
    assert_false(auth_jwt_verify(c.auth, tok, &p));
    assert_true(auth_jwt_verify(c.auth, good, &p));
    ctx_close(&c);
    ctx_open(&c);
    assert_false(auth_jwt_verify(c.auth, tok, &p));
    ctx_close(&c);
    rt_user_rec_free(&admin);
    free(good);
    free(expired);
    free(wrongkey);
    free(none);
    free(ghost);
    free(tok);
}

/* Finding 10: the revocation is committed when rt_auth_logout returns (a
 * second connection sees it at once, before any writer thread ran), and a
 * second auth context on the same database (another process) refuses the
 * token within the mirror's period. */
static void test_logout_durable_and_shared(void **state)
{
    (void)state;
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "good-password");
    ctx_t a, b;
    ctx_open(&a);
    ctx_open(&b);
    char *tok = login(&a, "admin", "good-password", RT_LOGIN_OK);
    rt_principal_t p = { 0 };
    assert_true(auth_jwt_verify(a.auth, tok, &p));
    assert_true(auth_jwt_verify(b.auth, tok, &p));
    assert_int_equal(rt_auth_logout(a.auth, &p), 0);
    rt_store_t *other = NULL;
    char err[256];
    assert_int_equal(rt_store_open(a.cfg.database_url, &other, err, sizeof(err)), 0);
    int n = 0;
    assert_int_equal(rt_store_revoked_read(other, (int64_t)cm_wall_ms(), count_row, &n), 0);
    assert_int_equal(n, 1);
    rt_store_close(other);
    assert_false(auth_jwt_verify(a.auth, tok, &p));
    uint64_t until = cm_now_ms() + 3 * AUTH_REFRESH_MS;
    while (auth_jwt_verify(b.auth, tok, &p) && cm_now_ms() < until) {
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_false(auth_jwt_verify(b.auth, tok, &p));
    ctx_close(&b);
    ctx_close(&a);
    free(tok);
}

static void test_role_change_applies_to_live_tokens(void **state)
{
    (void)state;
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "good-password");
    ctx_t c;
    ctx_open(&c);
    char err[128];
    rt_user_rec_t v;
    assert_int_equal(rt_auth_user_create(c.st, "vera", "vera-password", "admin", &v, err, sizeof(err)), 0);
    assert_int_equal(rt_auth_user_create(c.st, "vera", "vera-password", "viewer", NULL, err, sizeof(err)),
                     RT_STORE_CONFLICT);
    assert_int_equal(rt_auth_user_create(c.st, "bad name", "vera-password", "viewer", NULL, err, sizeof(err)),
                     RT_AUTH_EINVAL);
    assert_int_equal(rt_auth_user_create(c.st, "short", "1234567", "viewer", NULL, err, sizeof(err)),
                     RT_AUTH_EINVAL);
    assert_int_equal(rt_auth_user_create(c.st, "x", "12345678", "root", NULL, err, sizeof(err)), RT_AUTH_EINVAL);
    char *tok = login(&c, "vera", "vera-password", RT_LOGIN_OK);
    rt_principal_t p = { 0 };
    assert_true(auth_jwt_verify(c.auth, tok, &p));
    assert_true(p.admin);
    /* as the users API does: change, then sync the mirror */
    assert_int_equal(rt_store_user_update(c.st, v.id, "vera2", NULL, "viewer"), 0);
    rt_auth_user_sync(c.auth, v.id);
    assert_true(auth_jwt_verify(c.auth, tok, &p));
    assert_false(p.admin);
    assert_string_equal(p.name, "vera2");
    assert_int_equal(rt_store_user_delete(c.st, v.id), 0);
    rt_auth_user_sync(c.auth, v.id);
    assert_false(auth_jwt_verify(c.auth, tok, &p));
    free(tok);
    rt_user_rec_free(&v);
    ctx_close(&c);
}

static void test_node_tokens(void **state)
{
    (void)state;
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "good-password");
    ctx_t c;
    ctx_open(&c);
    char t1[64], h1[65], t2[64], h2[65], t3[64], h3[65];
    rt_auth_node_token_issue(c.auth, "node-a", t1, h1);
    rt_auth_node_token_issue(c.auth, "node-b", t2, h2);
    assert_int_equal(strncmp(t1, "nt_", 3), 0);
    assert_true(strlen(t1) >= 40);
    rt_principal_t p = { 0 };
    assert_true(auth_node_verify(c.auth, t1, &p));
    assert_string_equal(p.id, "node-a");
    assert_int_equal(p.kind, RT_PRINCIPAL_NODE);
    assert_true(auth_node_verify(c.auth, t2, &p));
    assert_string_equal(p.id, "node-b");
    /* a new token replaces the old one */
    rt_auth_node_token_issue(c.auth, "node-a", t3, h3);
    assert_false(auth_node_verify(c.auth, t1, &p));
    assert_true(auth_node_verify(c.auth, t3, &p));
    rt_auth_node_token_revoke(c.auth, "node-a");
    assert_false(auth_node_verify(c.auth, t3, &p));
    /* loading a stored hash (restart) */
    rt_auth_node_token_load(c.auth, "node-a", h3);
    assert_true(auth_node_verify(c.auth, t3, &p));
    assert_string_equal(p.id, "node-a");
    rt_auth_node_token_load(c.auth, "node-c", "garbage");
    assert_false(auth_node_verify(c.auth, "nt_garbage", &p));
    ctx_close(&c);
}

static void test_api_keys(void **state)
{
    (void)state;
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "good-password");
    ctx_t c;
    ctx_open(&c);
    char key[RT_AUTH_KEY_MAX], old[RT_AUTH_KEY_MAX];
    rt_apikey_rec_t k;
    assert_int_equal(rt_auth_apikey_create(c.st, "ci", 0, "admin", key, &k), 0);
    assert_int_equal(strncmp(key, "sk_", 3), 0);
    assert_true(strlen(key) >= 3 + 32);
    char hex[65];
    rt_auth_sha256_hex(key, hex);
    assert_string_equal(hex, k.key_hash); /* only the hash is stored */
    rt_auth_apikey_sync(c.auth, k.id); /* as the API handler does */
    rt_principal_t p = { 0 };
    assert_true(auth_apikey_verify(c.auth, key, &p));
    assert_string_equal(p.id, k.id);
    assert_int_equal(p.kind, RT_PRINCIPAL_API_KEY);
    assert_string_equal(p.name, "ci");
    assert_true(auth_apikey_verify(c.auth, key, &p));
    snprintf(old, sizeof(old), "%s", key);
    old[5] ^= 1;
    assert_false(auth_apikey_verify(c.auth, old, &p));
    assert_false(auth_apikey_verify(c.auth, "sk_", &p));
    /* expiry in the past */
    assert_int_equal(rt_store_apikey_update(c.st, k.id, NULL, true, (int64_t)cm_wall_ms() - 1000), 0);
    rt_auth_apikey_sync(c.auth, k.id);
    assert_false(auth_apikey_verify(c.auth, key, &p));
    /* expiry cleared, then deleted */
    assert_int_equal(rt_store_apikey_update(c.st, k.id, NULL, true, 0), 0);
    rt_auth_apikey_sync(c.auth, k.id);
    assert_true(auth_apikey_verify(c.auth, key, &p));
    assert_int_equal(rt_store_apikey_delete(c.st, k.id), 0);
    rt_auth_apikey_sync(c.auth, k.id);
    assert_false(auth_apikey_verify(c.auth, key, &p));
    rt_apikey_rec_free(&k);
    ctx_close(&c);
}

/* Polls f until it returns want, at most ms milliseconds; the time it took,
 * or -1. */
static long wait_for(bool (*f)(ctx_t *c, const char *arg), ctx_t *c, const char *arg, bool want, long ms)
{
    uint64_t t0 = cm_now_ms();
    while (f(c, arg) != want) {
        if (cm_now_ms() - t0 > (uint64_t)ms)
            return -1;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return (long)(cm_now_ms() - t0);
}

static bool key_ok(ctx_t *c, const char *key)
{
    rt_principal_t p = { 0 };
    return auth_apikey_verify(c->auth, key, &p);
}

static bool jwt_ok(ctx_t *c, const char *tok)
{
    rt_principal_t p = { 0 };
    return auth_jwt_verify(c->auth, tok, &p);
}

/* The per-request checks read memory only; changes made behind the router's
 * back (the CLI, another process) are picked up by the refresher. */
static void test_request_path_reads_no_database(void **state)
{
    (void)state;
    setenv_fake("LLM_ROUTER_ADMIN_PASSWORD", "good-password");
    ctx_t c;
    ctx_open(&c);
    char key[RT_AUTH_KEY_MAX], bad[RT_AUTH_KEY_MAX], err[128];
    rt_apikey_rec_t k;
    rt_user_rec_t v;
    /* straight into the store, as the CLI does: the mirror does not know yet */
    assert_int_equal(rt_auth_apikey_create(c.st, "cli", 0, "cli", key, &k), 0);
    snprintf(bad, sizeof(bad), "sk_%s", "no-such-key-no-such-key-no-such-key-no-such");
    assert_int_equal(rt_auth_user_create(c.st, "vic", "vic-password", "viewer", &v, err, sizeof(err)), 0);
    char *tok = login(&c, "vic", "vic-password", RT_LOGIN_OK);

    uint64_t before = rt_store_thread_statements();
    for (int i = 0; i < 10000; i++)
        assert_false(key_ok(&c, bad)); /* a flood of wrong keys */
    assert_true(jwt_ok(&c, tok));
    assert_int_equal(rt_store_thread_statements(), before);

    /* the CLI's key becomes valid within the refresh period, its deletion too */
    long t = wait_for(key_ok, &c, key, true, AUTH_REFRESH_MS + 3000);
    assert_true(t >= 0);
    before = rt_store_thread_statements();
    for (int i = 0; i < 1000; i++)
        assert_true(key_ok(&c, key));
    assert_int_equal(rt_store_thread_statements(), before);
    /* last_used_at was queued once, and a reload keeps that */
    rt_store_flush(c.st);
    rt_apikey_rec_t got;
    assert_int_equal(rt_store_apikey_get(c.st, k.id, &got), 0);
    assert_true(got.last_used_at > 0);
    rt_apikey_rec_free(&got);
    unsigned char h[32];
    auth_sha256(key, strlen(key), h);
    pthread_mutex_lock(&c.auth->mu); /* the refresher swaps the tables */
    uint64_t touched = auth_table_find(&c.auth->keys, h)->touched_ms;
    pthread_mutex_unlock(&c.auth->mu);
    assert_true(touched > 0);
    assert_int_equal(auth_mirrors_refresh(c.auth), 0);
    pthread_mutex_lock(&c.auth->mu);
    uint64_t after = auth_table_find(&c.auth->keys, h)->touched_ms;
    pthread_mutex_unlock(&c.auth->mu);
    assert_int_equal(after, touched);

    assert_int_equal(rt_store_apikey_delete(c.st, k.id), 0);
    assert_true(wait_for(key_ok, &c, key, false, AUTH_REFRESH_MS + 3000) >= 0);
    /* a user deleted by the CLI: their session ends within the period */
    assert_int_equal(rt_store_user_delete(c.st, v.id), 0);
    assert_true(wait_for(jwt_ok, &c, tok, false, AUTH_REFRESH_MS + 3000) >= 0);

    /* shutdown does not wait for the refresh period */
    uint64_t t0 = cm_now_ms();
    rt_auth_free(c.auth);
    c.auth = NULL;
    assert_true(cm_now_ms() - t0 < 500);
    free(tok);
    rt_apikey_rec_free(&k);
    rt_user_rec_free(&v);
    ctx_close(&c);
}

static void test_helpers(void **state)
{
    (void)state;
    char u[37], hash[RT_AUTH_PWHASH_MAX];
    rt_auth_uuid(u);
    assert_int_equal(strlen(u), 36);
    assert_int_equal(u[14], '4');
    assert_int_equal(rt_auth_password_hash("correct horse", hash), 0);
    assert_int_equal(strncmp(hash, "$argon2id$", 10), 0);
    assert_true(rt_auth_password_check(hash, "correct horse"));
    assert_false(rt_auth_password_check(hash, "correct horsE"));
    assert_string_equal(rt_policy_name(RT_POLICY_ADMIN), "admin");
    assert_string_equal(rt_policy_name(99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start_generates_secrets_and_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_admin_and_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_rate_limit, setup, teardown),
        cmocka_unit_test(test_limit_windows),
        cmocka_unit_test(test_limit_success_resets_only_its_account),
        cmocka_unit_test(test_limit_concurrent_attempts),
        cmocka_unit_test(test_limit_inflight_per_address),
        cmocka_unit_test_setup_teardown(test_logout_durable_and_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwt_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_change_applies_to_live_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_path_reads_no_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_helpers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
