/* core/nodes.c: the nodes service over a real registry, SQLite store and
 * auth context: registration issues a token whose hash is persisted,
 * re-registration keeps the id and rotates the token, heartbeats need a
 * known node, settings and deletion reach the store, a GPU can be required,
 * and a new service loads what the store kept. */
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

static void ctx_open(ctx_t *c, bool require_gpu)
{
    char err[256] = "";
    assert_int_equal(cm_config_load(rt_options, rt_options_count, fake_env, NULL, &c->cfg, &c->loaded, err, sizeof(err)), 0);
    assert_int_equal(rt_store_open(c->cfg.database_url, &c->st, err, sizeof(err)), 0);
    assert_int_equal(rt_auth_new(&c->cfg, g_dir, c->st, &c->auth, err, sizeof(err)), 0);
    rt_registry_opts_t ro = { .mode = RT_LB_AUTO, .default_slots = 4, .history_max = 4 };
    c->reg = rt_registry_new(&ro);
    c->ns = rt_nodes_new(c->reg, c->st, c->auth, require_gpu);
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

static void register_rotate_delete(void **state)
{
    (void)state;
    ctx_t c = { 0 };
    ctx_open(&c, false);
    char id[RT_NODE_ID_MAX], again[RT_NODE_ID_MAX], tok1[RT_NODE_TOKEN_MAX], tok2[RT_NODE_TOKEN_MAX], hash[65];
    bool created;
    rt_node_info_t in = info("box", 9000, false);
    assert_int_equal(rt_nodes_register(c.ns, &in, id, tok1, &created), RT_NODES_OK);
    assert_true(created);
    assert_int_equal(strlen(id), 36);
    assert_true(strncmp(tok1, "nt_", 3) == 0);
    rt_node_rec_t rec;
    assert_true(stored(c.st, id, &rec));
    rt_auth_sha256_hex(tok1, hash);
    assert_string_equal(rec.token_hash, hash); /* only the hash is kept */
    rt_node_rec_free(&rec);
    /* same machine and port: same id, a new token, the new hash stored */
    assert_int_equal(rt_nodes_register(c.ns, &in, again, tok2, &created), RT_NODES_OK);
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
    assert_int_equal(rt_nodes_register(c.ns, &in2, id2, tok1, &created), RT_NODES_OK);
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
    assert_int_equal(rt_nodes_register(c.ns, &cpu, id, tok, &created), RT_NODES_GPU_REQUIRED);
    assert_int_equal(rt_nodes_register(c.ns, &gpu, id, tok, &created), RT_NODES_OK);
    ctx_close(&c);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
