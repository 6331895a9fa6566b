/* auth: the context (secrets, first admin), node and join tokens, and the
 * pre-route hook that enforces routes.c's policy column. The other files of
 * the module are listed in auth_internal.h. */
#include "auth/auth_internal.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- secrets in the data directory ---- */

/* The longest secret file read back (a secret plus its newline). */
#define SECRET_FILE_MAX 1024
/* A JWT signing secret, NUL included; one from the environment shorter than
 * JWT_SECRET_MIN is used but warned about. */
#define JWT_SECRET_SIZE 256
#define JWT_SECRET_MIN 32
/* A generated first-admin password, NUL included. */
#define ADMIN_PASSWORD_SIZE 128

/* Reads <dir>/<name>, or creates it (0600) with a fresh random token made of
 * prefix + 43 base64url characters. Writes the value into out. 1 when
 * created, 0 when read, -1 on error (err). */
static int secret_file(const char *dir, const char *name, const char *prefix, char *out,
                       size_t outlen, char *err, size_t errlen)
{
    char *path = cm_xasprintf("%s/%s", dir, name);
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    int r = cm_read_file(path, SECRET_FILE_MAX, &text, &len);
    if (r == 0) {
        len = strcspn(text, "\r\n");
        text[len] = '\0';
        if (len == 0 || len >= outlen) {
            snprintf(err, errlen, "%s: empty or too long", path);
            goto out;
        }
        memcpy(out, text, len + 1);
        rc = 0;
        goto out;
    }
    if (r != -ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
        goto out;
    }
    unsigned char raw[AUTH_SECRET_BYTES];
    char b64[sodium_base64_ENCODED_LEN(AUTH_SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, outlen, "%s%s", prefix, b64);
    char *line = cm_xasprintf("%s\n", out);
    r = cm_write_file(path, line, strlen(line), 0600);
    sodium_memzero(line, strlen(line));
    free(line);
    if (r != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
        goto out;
    }
    rc = 1;
out:
    if (text)
        sodium_memzero(text, len);
    free(text);
    free(path);
    return rc;
}

static int load_jwt_secret(rt_auth_t *a, const rt_config_t *cfg, const char *dir, char *err,
                           size_t errlen)
{
    const char *env = cfg->jwt_secret;
    char buf[JWT_SECRET_SIZE];
    if (env && *env) {
        if (strlen(env) < JWT_SECRET_MIN)
            LOG_WARN("auth", "LLM_ROUTER_JWT_SECRET is shorter than %d characters", JWT_SECRET_MIN);
        snprintf(buf, sizeof(buf), "%s", env);
    } else {
        int r = secret_file(dir, "jwt_secret", "", buf, sizeof(buf), err, errlen);
        if (r < 0)
            return -1;
        if (r == 1)
            LOG_INFO("auth", "generated a JWT signing secret in %s/jwt_secret", dir);
    }
    a->jwt_key_len = strlen(buf);
    a->jwt_key = cm_xmalloc(a->jwt_key_len + 1);
    memcpy(a->jwt_key, buf, a->jwt_key_len + 1);
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

static int load_join_token(rt_auth_t *a, const rt_config_t *cfg, const char *dir, char *err,
                           size_t errlen)
{
    a->open_registration = cfg->open_registration;
    a->metrics_public = cfg->metrics_public;
    if (a->open_registration)
        LOG_WARN("auth", "LLM_ROUTER_OPEN_REGISTRATION is set: any host that reaches this port "
                         "can register a node");
    const char *env = cfg->join_token;
    if (env && *env) {
        if (strlen(env) >= sizeof(a->join_token)) {
            snprintf(err, errlen, "LLM_ROUTER_JOIN_TOKEN is longer than %zu characters",
                     sizeof(a->join_token) - 1);
            return -1;
        }
        snprintf(a->join_token, sizeof(a->join_token), "%s", env);
        return 0;
    }
    int r = secret_file(dir, "join_token", "jt_", a->join_token, sizeof(a->join_token), err, errlen);
    if (r < 0)
        return -1;
    if (r == 1)
        LOG_INFO("auth", "generated the node join token in %s/join_token (give it to nodes as "
                         "LLM_ROUTER_JOIN_TOKEN)", dir);
    return 0;
}

/* Creates the first admin when there is no user at all. */
static int bootstrap_admin(rt_auth_t *a, const rt_config_t *cfg, const char *dir, char *err,
                           size_t errlen)
{
    int n = rt_store_user_count(a->store);
    if (n < 0) {
        snprintf(err, errlen, "cannot count users");
        return -1;
    }
    if (n > 0)
        return 0;
    const char *name = cfg->admin_username;
    const char *pw = cfg->admin_password;
    char gen[ADMIN_PASSWORD_SIZE];
    bool generated = !pw || !*pw;
    if (generated) {
        /* a leftover file from an earlier first start is reused, so the
         * password the operator may have read stays valid */
        if (secret_file(dir, "admin_password", "", gen, sizeof(gen), err, errlen) < 0)
            return -1;
        pw = gen;
    }
    int rc = rt_auth_user_create(a->store, name, pw, "admin", NULL, err, errlen);
    sodium_memzero(gen, sizeof(gen));
    if (rc != 0) {
        if (rc != RT_AUTH_EINVAL)
            snprintf(err, errlen, "cannot create the admin user");
        return -1;
    }
    if (generated)
        LOG_WARN("auth", "created admin user \"%s\" with a generated password: read it from "
                         "%s/admin_password (mode 0600) and change it", name, dir);
    else
        LOG_INFO("auth", "created admin user \"%s\"", name);
    return 0;
}

static void revoked_load(const char *jti, int64_t expires_at, void *arg)
{
    rt_auth_t *a = arg;
    auth_ent_t *e = cm_xcalloc(1, sizeof(*e));
    auth_sha256(jti, strlen(jti), e->hash);
    e->expires_at = expires_at;
    auth_table_put(&a->revoked, e);
}

int rt_auth_new(const rt_config_t *cfg, const char *data_dir, rt_store_t *store, rt_auth_t **out,
                char *err, size_t errlen)
{
    rt_auth_t *a = cm_xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->store = store;
    a->limit = auth_limit_new(cfg->login_max_failures, cfg->login_max_address_failures,
                              cfg->login_max_concurrent, cfg->login_window_s);
    a->jwt_ttl_s = cfg->jwt_ttl_s;
    int rc = -1;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        goto out;
    }
    if (rt_auth_password_hash("not a password", a->dummy_hash) != 0) {
        snprintf(err, errlen, "password hashing failed (out of memory)");
        goto out;
    }
    if (load_jwt_secret(a, cfg, data_dir, err, errlen) != 0 ||
        load_join_token(a, cfg, data_dir, err, errlen) != 0 ||
        bootstrap_admin(a, cfg, data_dir, err, errlen) != 0)
        goto out;
    if (rt_store_revoked_each(store, (int64_t)cm_wall_ms(), revoked_load, a) != 0) {
        snprintf(err, errlen, "cannot load revoked tokens");
        goto out;
    }
    if (auth_refresher_start(a, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        rt_auth_free(a);
        a = NULL;
    }
    *out = a;
    return rc;
}

void rt_auth_free(rt_auth_t *a)
{
    if (!a)
        return;
    auth_refresher_stop(a);
    auth_table_clear(&a->nodes);
    auth_table_clear(&a->keys);
    auth_table_clear(&a->users);
    auth_table_clear(&a->revoked);
    if (a->jwt_key) {
        sodium_memzero(a->jwt_key, a->jwt_key_len);
        free(a->jwt_key);
    }
    sodium_memzero(a->join_token, sizeof(a->join_token));
    auth_limit_free(a->limit);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

const char *rt_auth_join_token(const rt_auth_t *a) { return a->join_token; }
bool rt_auth_registration_open(const rt_auth_t *a) { return a->open_registration; }

/* ---- node tokens ---- */

void rt_auth_node_token_issue(rt_auth_t *a, const char *node_id, char token[RT_AUTH_NODE_TOKEN_SIZE],
                              char hash[RT_AUTH_HASH_HEX_SIZE])
{
    unsigned char raw[AUTH_SECRET_BYTES], h[AUTH_SHA256_SIZE];
    char b64[sodium_base64_ENCODED_LEN(AUTH_SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(token, RT_AUTH_NODE_TOKEN_SIZE, "nt_%s", b64);
    auth_sha256(token, strlen(token), h);
    sodium_bin2hex(hash, RT_AUTH_HASH_HEX_SIZE, h, sizeof(h));
    rt_auth_node_token_load(a, node_id, hash);
    sodium_memzero(raw, sizeof(raw));
}

void rt_auth_node_token_load(rt_auth_t *a, const char *node_id, const char *hash)
{
    auth_ent_t *e = cm_xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", node_id);
    if (!hash || strlen(hash) != RT_AUTH_HASH_HEX_SIZE - 1 ||
        sodium_hex2bin(e->hash, sizeof(e->hash), hash, RT_AUTH_HASH_HEX_SIZE - 1, NULL, NULL, NULL) != 0) {
        LOG_WARN("auth", "node %s: stored token hash is malformed; the node must register again",
                 node_id);
        free(e);
        rt_auth_node_token_revoke(a, node_id);
        return;
    }
    pthread_mutex_lock(&a->mu);
    auth_table_remove_id(&a->nodes, node_id); /* one token per node: the new one wins */
    auth_table_put(&a->nodes, e);
    pthread_mutex_unlock(&a->mu);
}

void rt_auth_node_token_revoke(rt_auth_t *a, const char *node_id)
{
    pthread_mutex_lock(&a->mu);
    auth_table_remove_id(&a->nodes, node_id);
    pthread_mutex_unlock(&a->mu);
}

bool auth_node_verify(rt_auth_t *a, const char *token, rt_principal_t *p)
{
    unsigned char h[AUTH_SHA256_SIZE];
    auth_sha256(token, strlen(token), h);
    pthread_mutex_lock(&a->mu);
    auth_ent_t *e = auth_table_find(&a->nodes, h);
    if (e) {
        p->kind = RT_PRINCIPAL_NODE;
        snprintf(p->id, sizeof(p->id), "%s", e->id);
    }
    pthread_mutex_unlock(&a->mu);
    return e != NULL;
}

static bool join_verify(const rt_auth_t *a, const char *token, rt_principal_t *p)
{
    size_t n = strlen(token), m = strlen(a->join_token);
    /* compare hashes so that the comparison is constant-time whatever the lengths */
    unsigned char h1[AUTH_SHA256_SIZE], h2[AUTH_SHA256_SIZE];
    auth_sha256(token, n, h1);
    auth_sha256(a->join_token, m, h2);
    if (m == 0 || sodium_memcmp(h1, h2, sizeof(h1)) != 0)
        return false;
    p->kind = RT_PRINCIPAL_JOIN;
    snprintf(p->id, sizeof(p->id), "join");
    return true;
}

/* ---- the policy hook ---- */

const char *rt_policy_name(int policy)
{
    static const char *const names[] = {
        [RT_POLICY_OPEN] = "open",     [RT_POLICY_API_KEY] = "api_key",
        [RT_POLICY_API_OR_NODE] = "api_key_or_node", [RT_POLICY_NODE] = "node",
        [RT_POLICY_JOIN] = "join",     [RT_POLICY_VIEWER] = "viewer",
        [RT_POLICY_ADMIN] = "admin",   [RT_POLICY_USER] = "user",
        [RT_POLICY_METRICS] = "metrics", [RT_POLICY_NODE_OR_ADMIN] = "node_or_admin",
    };
    if (policy < 0 || (size_t)policy >= CM_ARRAY_LEN(names) || !names[policy])
        return "unknown";
    return names[policy];
}

const rt_principal_t *rt_auth_principal(const cm_http_req_t *req)
{
    return cm_http_req_user(req);
}

/* A header's value when present and of a sane length (else NULL). */
static const char *cred_header(const cm_http_req_t *req, const char *name)
{
    const char *v = cm_http_req_header(req, name);
    if (!v || !*v || strnlen(v, AUTH_CRED_MAX + 1) > AUTH_CRED_MAX)
        return NULL;
    return v;
}

static const char *bearer(const cm_http_req_t *req)
{
    const char *v = cred_header(req, "Authorization");
    static const char scheme[] = "Bearer ";
    if (!v || strncasecmp(v, scheme, sizeof(scheme) - 1) != 0)
        return NULL;
    v += sizeof(scheme) - 1;
    while (*v == ' ')
        v++;
    return *v ? v : NULL;
}

static bool has_prefix(const char *s, const char *p) { return s && strncmp(s, p, strlen(p)) == 0; }

/* Tries the credentials the policy accepts. Returns 0 (p filled), 401 or 403. */
static int authenticate(rt_auth_t *a, const cm_http_req_t *req, int policy, rt_principal_t *p)
{
    /* headers are looked up only where the policy reads them: this runs on
     * every proxied request */
    const char *bt = bearer(req);
    const char *xkey, *xnode;
    switch (policy) {
    case RT_POLICY_API_OR_NODE:
        if ((xnode = cred_header(req, "X-Node-Token")) || has_prefix(bt, "nt_"))
            return auth_node_verify(a, xnode ? xnode : bt, p) ? 0 : 401;
        /* fall through */
    case RT_POLICY_API_KEY:
    case RT_POLICY_METRICS:
        if (has_prefix(bt, "sk_"))
            return auth_apikey_verify(a, bt, p) ? 0 : 401;
        if ((xkey = cred_header(req, "X-API-Key")))
            return auth_apikey_verify(a, xkey, p) ? 0 : 401;
        /* a dashboard session may call /v1 too (the playground) */
        return bt && auth_jwt_verify(a, bt, p) ? 0 : 401;
    case RT_POLICY_NODE_OR_ADMIN:
        if ((xnode = cred_header(req, "X-Node-Token")) || has_prefix(bt, "nt_"))
            return auth_node_verify(a, xnode ? xnode : bt, p) ? 0 : 401;
        if (!bt || !auth_jwt_verify(a, bt, p))
            return 401;
        return p->admin ? 0 : 403;
    case RT_POLICY_NODE:
        if (!(xnode = cred_header(req, "X-Node-Token")) && has_prefix(bt, "nt_"))
            xnode = bt;
        return xnode && auth_node_verify(a, xnode, p) ? 0 : 401;
    case RT_POLICY_JOIN: {
        const char *j = cred_header(req, "X-Join-Token");
        return j && join_verify(a, j, p) ? 0 : 401;
    }
    case RT_POLICY_VIEWER:
    case RT_POLICY_USER:
        return bt && auth_jwt_verify(a, bt, p) ? 0 : 401;
    case RT_POLICY_ADMIN:
        if (!bt || !auth_jwt_verify(a, bt, p))
            return 401;
        return p->admin ? 0 : 403;
    default:
        return 401; /* an unknown policy is closed */
    }
}

static void reject(cm_http_req_t *req, int policy, int status)
{
    bool v1 = policy == RT_POLICY_API_KEY || policy == RT_POLICY_API_OR_NODE || policy == RT_POLICY_METRICS;
    if (status == 403) {
        cm_http_reply_error(req, 403, cm_http_error_type(403), "forbidden", NULL,
                            "This action requires the admin role");
        return;
    }
    cm_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"llm-router\"");
    if (v1)
        cm_http_reply_error(req, 401, "invalid_request_error", "invalid_api_key", NULL,
                            "Missing, invalid or expired API key: send Authorization: Bearer "
                            "sk_... or X-API-Key");
    else if (policy == RT_POLICY_NODE || policy == RT_POLICY_NODE_OR_ADMIN)
        cm_http_reply_error(req, 401, cm_http_error_type(401), "unauthorized", NULL,
                            "Missing or invalid node token (X-Node-Token)");
    else if (policy == RT_POLICY_JOIN)
        cm_http_reply_error(req, 401, cm_http_error_type(401), "unauthorized", NULL,
                            "Registration requires the join token (X-Join-Token; the node reads "
                            "LLM_ROUTER_JOIN_TOKEN)");
    else
        cm_http_reply_error(req, 401, cm_http_error_type(401), "unauthorized", NULL,
                            "Missing, invalid or expired session: log in at /api/auth/login "
                            "and send Authorization: Bearer <token>");
}

bool rt_auth_pre(rt_auth_t *a, cm_http_req_t *req, const cm_http_route_t *route)
{
    int policy = route->policy;
    if (policy == RT_POLICY_OPEN || (policy == RT_POLICY_JOIN && a->open_registration) ||
        (policy == RT_POLICY_METRICS && a->metrics_public))
        return true;
    rt_principal_t p = { 0 };
    int status = authenticate(a, req, policy, &p);
    if (status != 0) {
        sodium_memzero(&p, sizeof(p));
        reject(req, policy, status);
        return false;
    }
    rt_principal_t *copy = cm_xmalloc(sizeof(*copy));
    *copy = p;
    cm_http_req_set_user(req, copy, free);
    return true;
}
