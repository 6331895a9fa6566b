/* core/nodes.c: the nodes service over a real registry, SQLite store and
 * auth context: registration issues a token whose hash is persisted,
 * re-registration keeps the id and rotates the token, heartbeats need a
 * known node, settings and deletion reach the store, a GPU can be required,
 * and a new service loads what the store kept. Hardening: the router's
 * secret for the node is issued, rotated, stored sealed and unsealed after a
 * restart; a live identity cannot be taken without its token; the address
 * is the peer's IP; registrations are rate limited; offline nodes expire
 * and make room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "core/nodes.h"
#include "options.h"
#include "store/store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[128];

static const char *fake_env(const char *name, void *ud)
{
    (void)ud;
    if (strcmp(name, "LLM_ROUTER_DATA_DIR") == 0)
        return g_dir;
    if (strcmp(name, "LLM_ROUTER_ADMIN_PASSWORD") == 0)
        return "a-long-enough-password";
    return NULL;
}

typedef struct {
    cm_config_t *loaded;
    rt_config_t cfg;
    rt_store_t *st;
    rt_auth_t *auth;
    rt_registry_t *reg;
    rt_nodes_t *ns;
} ctx_t;

static rt_nodes_opts_t g_opts;

static void ctx_open(ctx_t *c, bool require_gpu)
{
    char err[256] = "";
    assert_int_equal(cm_config_load(rt_options, rt_options_count, fake_env, NULL, &c->cfg, &c->loaded, err, sizeof(err)), 0);
    assert_int_equal(rt_store_open(c->cfg.database_url, &c->st, err, sizeof(err)), 0);
    assert_int_equal(rt_auth_new(&c->cfg, g_dir, c->st, &c->auth, err, sizeof(err)), 0);
    rt_registry_opts_t ro = { .mode = RT_LB_AUTO, .default_slots = 4, .history_max = 4 };
    c->reg = rt_registry_new(&ro);
    rt_nodes_opts_t o = g_opts;
    o.require_gpu = require_gpu;
    o.data_dir = g_dir;
    c->ns = rt_nodes_new(c->reg, c->st, c->auth, &o);
    assert_non_null(c->ns);
    assert_int_equal(rt_nodes_load(c->ns), 0);
}

static void ctx_close(ctx_t *c)
{
    rt_nodes_free(c->ns);
    rt_registry_free(c->reg);
    rt_auth_free(c->auth);
    rt_store_close(c->st);
    cm_config_free(c->loaded);
}

/* The stored record of id (flushed first), or a record with id NULL. */
typedef struct {
    const char *id;
    rt_node_rec_t rec;
    bool found;
} find_t;

static void find_cb(const rt_node_rec_t *rec, void *arg)
{
    find_t *f = arg;
    if (strcmp(rec->id, f->id) != 0)
        return;
    f->found = true;
    f->rec.id = cm_xstrdup(rec->id);
    f->rec.token_hash = rec->token_hash ? cm_xstrdup(rec->token_hash) : NULL;
    f->rec.custom_name = rec->custom_name ? cm_xstrdup(rec->custom_name) : NULL;
    f->rec.secret_box = rec->secret_box ? cm_xstrdup(rec->secret_box) : NULL;
}

static bool stored(rt_store_t *st, const char *id, rt_node_rec_t *out)
{
    find_t f = { .id = id };
    rt_store_flush(st);
    assert_int_equal(rt_store_nodes_each(st, find_cb, &f), 0);
    *out = f.rec;
    return f.found;
}

static const char *models[] = { "m1" };

static rt_node_info_t info(const char *name, int port, bool gpu)
{
    return (rt_node_info_t){ .machine_name = name, .ip_address = "127.0.0.1", .runtime_version = "1",
                             .runtime_port = port, .api_port = port + 1, .gpu_available = gpu,
                             .models = models, .nmodels = 1 };
}

/* The old call shape, over rt_nodes_register from 127.0.0.1. */
static rt_nodes_status_t reg_as(rt_nodes_t *ns, const rt_node_info_t *in, const char *peer, const char *proof,
                                char *id, char *tok, char *secret, bool *created)
{
    rt_nodes_grant_t g;
    rt_nodes_status_t st = rt_nodes_register(ns, in, peer, proof, &g);
    if (st == RT_NODES_OK) {
        strcpy(id, g.id);
        strcpy(tok, g.token);
        if (secret)
            strcpy(secret, g.secret);
        *created = g.created;
    }
    return st;
}

static rt_nodes_status_t reg(rt_nodes_t *ns, const rt_node_info_t *in, char *id, char *tok, bool *created,
                             const char *proof)
{
    return reg_as(ns, in, "127.0.0.1", proof, id, tok, NULL, created);
}

static void register_rotate_delete(void **state)
{
    (void)state;
    ctx_t c = { 0 };
    ctx_open(&c, false);
    char id[RT_NODE_ID_MAX], again[RT_NODE_ID_MAX], tok1[RT_NODE_TOKEN_MAX], tok2[RT_NODE_TOKEN_MAX], hash[65];
    bool created;
    rt_node_info_t in = info("box", 9000, false);
    assert_int_equal(reg(c.ns, &in, id, tok1, &created, NULL), RT_NODES_OK);
    assert_true(created);
    assert_int_equal(strlen(id), 36);
    assert_true(strncmp(tok1, "nt_", 3) == 0);
    rt_node_rec_t rec;
    assert_true(stored(c.st, id, &rec));
    rt_auth_sha256_hex(tok1, hash);
    assert_string_equal(rec.token_hash, hash); /* only the hash is kept */
    rt_node_rec_free(&rec);
    /* same machine and port: same id, a new token, the new hash stored */
    assert_int_equal(reg(c.ns, &in, again, tok2, &created, tok1), RT_NODES_OK);
    assert_false(created);
    assert_string_equal(again, id);
    assert_string_not_equal(tok1, tok2);
    assert_true(stored(c.st, id, &rec));
    rt_auth_sha256_hex(tok2, hash);
    assert_string_equal(rec.token_hash, hash);
    rt_node_rec_free(&rec);
    /* heartbeats, settings, disconnect */
    rt_node_metrics_t hb = { .cpu = 1, .mem = 2, .gpu = -1, .gpu_mem = -1 };
    assert_int_equal(rt_nodes_heartbeat(c.ns, id, &hb), RT_NODES_OK);
    assert_int_equal(rt_nodes_heartbeat(c.ns, "unknown", &hb), RT_NODES_NOT_FOUND);
    assert_int_equal(rt_nodes_settings(c.ns, id, "Nice", NULL, NULL), RT_NODES_OK);
    assert_int_equal(rt_nodes_settings(c.ns, "unknown", "x", NULL, NULL), RT_NODES_NOT_FOUND);
    assert_true(stored(c.st, id, &rec));
    assert_string_equal(rec.custom_name, "Nice");
    rt_node_rec_free(&rec);
    assert_int_equal(rt_nodes_disconnect(c.ns, id), RT_NODES_OK);
    assert_int_equal(rt_nodes_disconnect(c.ns, "unknown"), RT_NODES_NOT_FOUND);
    rt_lease_t l;
    assert_int_equal(rt_registry_acquire(c.reg, "m1", NULL, 0, &l), RT_PICK_NONE); /* offline */
    /* a second node survives a restart of the service; the deleted one does not */
    char id2[RT_NODE_ID_MAX];
    rt_node_info_t in2 = info("box2", 9100, false);
    assert_int_equal(reg(c.ns, &in2, id2, tok1, &created, NULL), RT_NODES_OK);
    assert_int_equal(rt_nodes_delete(c.ns, id), RT_NODES_OK);
    assert_int_equal(rt_nodes_delete(c.ns, id), RT_NODES_NOT_FOUND);
    assert_false(stored(c.st, id, &rec));
    ctx_close(&c);

    ctx_t d = { 0 };
    ctx_open(&d, false);
    assert_false(rt_registry_exists(d.reg, id));
    assert_true(rt_registry_exists(d.reg, id2));
    assert_int_equal(rt_registry_acquire(d.reg, "m1", NULL, 0, &l), RT_PICK_NONE); /* offline until it heartbeats */
    hb.models = models; /* the store keeps no model list: heartbeats bring it */
    hb.nmodels = 1;
    assert_int_equal(rt_nodes_heartbeat(d.ns, id2, &hb), RT_NODES_OK);
    assert_int_equal(rt_registry_acquire(d.reg, "m1", NULL, 0, &l), RT_PICK_OK);
    rt_registry_release(d.reg, &l, RT_OUTCOME_NONE);
    ctx_close(&d);
}

static void gpu_required(void **state)
{
    (void)state;
    ctx_t c = { 0 };
    ctx_open(&c, true);
    char id[RT_NODE_ID_MAX], tok[RT_NODE_TOKEN_MAX];
    bool created;
    rt_node_info_t cpu = info("cpu-box", 9200, false), gpu = info("gpu-box", 9300, true);
    assert_int_equal(reg(c.ns, &cpu, id, tok, &created, NULL), RT_NODES_GPU_REQUIRED);
    assert_int_equal(reg(c.ns, &gpu, id, tok, &created, NULL), RT_NODES_OK);
    ctx_close(&c);
}

/* Finding 1: a secret per node, in every lease, rotated on re-registration,
 * stored sealed (not in the clear, bound to its row) and back after a
 * restart; a box that does not open leaves the node without a token. */
static void secret_issue_rotate_restore(void **state)
{
    (void)state;
    ctx_t c = { 0 };
    ctx_open(&c, false);
    char id[RT_NODE_ID_MAX], tok[RT_NODE_TOKEN_MAX], s1[RT_NODE_SECRET_MAX], s2[RT_NODE_SECRET_MAX], hdr[128];
    bool created;
    rt_node_info_t in = info("sbox", 9400, false);
    assert_int_equal(reg_as(c.ns, &in, "127.0.0.1", NULL, id, tok, s1, &created), RT_NODES_OK);
    assert_true(strncmp(s1, "rs_", 3) == 0 && strlen(s1) == 46);
    rt_lease_t l;
    assert_int_equal(rt_registry_acquire(c.reg, "m1", NULL, 0, &l), RT_PICK_OK);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", s1);
    assert_string_equal(l.auth_hdr, hdr);
    rt_registry_release(c.reg, &l, RT_OUTCOME_NONE);
    assert_int_equal(reg_as(c.ns, &in, "127.0.0.1", tok, id, tok, s2, &created), RT_NODES_OK);
    assert_string_not_equal(s1, s2);
    assert_int_equal(rt_registry_acquire(c.reg, "m1", NULL, 0, &l), RT_PICK_OK);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", s2);
    assert_string_equal(l.auth_hdr, hdr);
    rt_registry_release(c.reg, &l, RT_OUTCOME_NONE);
    rt_node_rec_t rec;
    assert_true(stored(c.st, id, &rec));
    assert_non_null(rec.secret_box);
    assert_null(strstr(rec.secret_box, s2 + 3)); /* not in the clear */
    char back[RT_NODE_SECRET_MAX];
    assert_true(rt_nodes_unseal(c.ns, id, rec.secret_box, back));
    assert_string_equal(back, s2);
    assert_false(rt_nodes_unseal(c.ns, "another-node-id", rec.secret_box, back)); /* bound to its row */
    rt_node_rec_free(&rec);
    ctx_close(&c);

    /* a restart: the same key file opens the box, the lease carries it */
    ctx_t d = { 0 };
    ctx_open(&d, false);
    rt_node_metrics_t hb = { .cpu = -1, .mem = -1, .gpu = -1, .gpu_mem = -1, .models = models, .nmodels = 1 };
    assert_int_equal(rt_nodes_heartbeat(d.ns, id, &hb), RT_NODES_OK);
    assert_int_equal(rt_registry_acquire(d.reg, "m1", NULL, 0, &l), RT_PICK_OK);
    assert_string_equal(l.auth_hdr, hdr);
    rt_registry_release(d.reg, &l, RT_OUTCOME_NONE);
    ctx_close(&d);

    /* another key (the key file lost): the box does not open */
    char *kf = cm_xasprintf("%s/node_secret_key", g_dir);
    assert_int_equal(unlink(kf), 0);
    free(kf);
    ctx_t e = { 0 };
    ctx_open(&e, false);
    assert_int_equal(rt_nodes_heartbeat(e.ns, id, &hb), RT_NODES_OK);
    assert_int_equal(rt_registry_acquire(e.reg, "m1", NULL, 0, &l), RT_PICK_OK);
    assert_string_equal(l.auth_hdr, "");
    rt_registry_release(e.reg, &l, RT_OUTCOME_NONE);
    ctx_close(&e);
}

/* Finding 4: the identity of a live node needs its token; the address is
 * the peer's IP literal (the body's only when trusted); a restarted node
 * (offline, same address) gets its identity back without it. */
static void identity_and_address(void **state)
{
    (void)state;
    ctx_t c = { 0 };
    ctx_open(&c, false);
    char id[RT_NODE_ID_MAX], id2[RT_NODE_ID_MAX], tok[RT_NODE_TOKEN_MAX], tok2[RT_NODE_TOKEN_MAX];
    bool created;
    rt_node_info_t in = info("victim", 9500, false);
    in.ip_address = "10.9.9.9"; /* ignored: not trusted */
    rt_nodes_grant_t g;
    assert_int_equal(rt_nodes_register(c.ns, &in, "::ffff:127.0.0.1", NULL, &g), RT_NODES_OK);
    assert_string_equal(g.address, "127.0.0.1");
    strcpy(id, g.id);
    strcpy(tok, g.token);
    assert_int_equal(reg(c.ns, &in, id2, tok2, &created, NULL), RT_NODES_TAKEN);
    assert_int_equal(reg(c.ns, &in, id2, tok2, &created, "nt_wrong"), RT_NODES_TAKEN);
    assert_int_equal(reg_as(c.ns, &in, "10.1.2.3", NULL, id2, tok2, NULL, &created), RT_NODES_TAKEN);
    assert_int_equal(reg(c.ns, &in, id2, tok2, &created, tok), RT_NODES_OK);
    assert_string_equal(id2, id);
    /* offline: from another address still not, from its own address yes */
    assert_int_equal(rt_nodes_disconnect(c.ns, id), RT_NODES_OK);
    assert_int_equal(reg_as(c.ns, &in, "10.1.2.3", NULL, id2, tok, NULL, &created), RT_NODES_TAKEN);
    assert_int_equal(reg(c.ns, &in, id2, tok, &created, NULL), RT_NODES_OK);
    assert_string_equal(id2, id);
    ctx_close(&c);

    char out[64];
    assert_true(rt_nodes_ip_literal("192.168.1.2", out, sizeof(out)) && strcmp(out, "192.168.1.2") == 0);
    assert_true(rt_nodes_ip_literal("::1", out, sizeof(out)));
    assert_false(rt_nodes_ip_literal("localhost", out, sizeof(out)));
    assert_false(rt_nodes_ip_literal("metadata.internal", out, sizeof(out)));
    assert_false(rt_nodes_ip_literal("0.0.0.0", out, sizeof(out)));
    assert_false(rt_nodes_ip_literal("", out, sizeof(out)));
    assert_false(rt_nodes_ip_literal(NULL, out, sizeof(out)));

    g_opts.trust_address = true;
    ctx_t d = { 0 };
    ctx_open(&d, false);
    rt_node_info_t named = info("named", 9600, false);
    named.ip_address = "internal-host";
    assert_int_equal(rt_nodes_register(d.ns, &named, "127.0.0.1", NULL, &g), RT_NODES_BAD_ADDRESS);
    named.ip_address = "10.0.0.7";
    assert_int_equal(rt_nodes_register(d.ns, &named, "127.0.0.1", NULL, &g), RT_NODES_OK);
    assert_string_equal(g.address, "10.0.0.7");
    ctx_close(&d);
    g_opts.trust_address = false;
}

static void rate_limited(void **state)
{
    (void)state;
    g_opts.register_per_min = 3;
    ctx_t c = { 0 };
    ctx_open(&c, false);
    rt_nodes_grant_t g;
    char name[32];
    for (int i = 0; i < 3; i++) {
        rt_node_info_t in = info((snprintf(name, sizeof(name), "r%d", i), name), 9700 + i, false);
        assert_int_equal(rt_nodes_register(c.ns, &in, "10.0.0.1", NULL, &g), RT_NODES_OK);
    }
    rt_node_info_t in = info("r9", 9799, false);
    assert_int_equal(rt_nodes_register(c.ns, &in, "10.0.0.1", NULL, &g), RT_NODES_RATE_LIMITED);
    assert_true(g.retry_after_s >= 1 && g.retry_after_s <= 60);
    /* another address has its own budget */
    assert_int_equal(rt_nodes_register(c.ns, &in, "10.0.0.2", NULL, &g), RT_NODES_OK);
    ctx_close(&c);
    g_opts.register_per_min = 0;
}

/* Offline nodes expire (registry, token, store); online ones never. */
static void expiry(void **state)
{
    (void)state;
    g_opts.expire_s = 60;
    ctx_t c = { 0 };
    ctx_open(&c, false);
    char a[RT_NODE_ID_MAX], b[RT_NODE_ID_MAX], tok[RT_NODE_TOKEN_MAX];
    bool created;
    rt_node_info_t ia = info("ea", 9800, false), ib = info("eb", 9801, false);
    assert_int_equal(reg(c.ns, &ia, a, tok, &created, NULL), RT_NODES_OK);
    assert_int_equal(reg(c.ns, &ib, b, tok, &created, NULL), RT_NODES_OK);
    assert_int_equal(rt_nodes_disconnect(c.ns, a), RT_NODES_OK);
    assert_int_equal(rt_nodes_expire(c.ns, cm_now_ms() + 30000), 0);
    assert_int_equal(rt_nodes_expire(c.ns, cm_now_ms() + 61000), 1);
    assert_false(rt_registry_exists(c.reg, a));
    assert_true(rt_registry_exists(c.reg, b)); /* online */
    rt_node_rec_t rec;
    assert_false(stored(c.st, a, &rec));
    assert_true(stored(c.st, b, &rec));
    rt_node_rec_free(&rec);
    ctx_close(&c);
    g_opts.expire_s = 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/llmr-test-nodes-XXXXXX");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(register_rotate_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(gpu_required, setup, teardown),
        cmocka_unit_test_setup_teardown(secret_issue_rotate_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(identity_and_address, setup, teardown),
        cmocka_unit_test_setup_teardown(rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
