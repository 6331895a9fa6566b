/* registry: registration identity, selection with exact in-flight counts,
 * exclusions, health sweep, suspension, persistence records, snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/registry.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static const char *models[] = { "m1", "m2" };

/* Sums of the snapshot's counters over every node. */
typedef struct {
    uint64_t total, failed;
    int inflight;
} sums_t;

static sums_t sums(rt_registry_t *r)
{
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(r, false, &v);
    sums_t s = { 0 };
    for (size_t i = 0; i < n; i++) {
        s.total += v[i].total;
        s.failed += v[i].failed;
        s.inflight += v[i].inflight;
    }
    rt_registry_views_free(v, n);
    return s;
}

static void reg_node(rt_registry_t *r, const char *cand, const char *name, int port, int slots, char id[RT_NODE_ID_MAX])
{
    rt_node_info_t info = { .id = cand, .machine_name = name, .ip_address = "127.0.0.1", .runtime_port = port,
                            .api_port = port + 1, .models = models, .nmodels = 2, .total_slots = slots };
    bool created;
    assert_int_equal(rt_registry_register(r, &info, id, &created), 0);
}

static void test_identity_and_pick(void **state)
{
    (void)state;
    rt_registry_opts_t o = { .mode = RT_LB_AUTO, .default_slots = 4, .history_max = 3 };
    rt_registry_t *r = rt_registry_new(&o);
    char a[RT_NODE_ID_MAX], b[RT_NODE_ID_MAX], again[RT_NODE_ID_MAX];
    reg_node(r, "id-a", "box", 1000, 1, a);
    reg_node(r, "id-b", "box", 2000, 1, b);
    reg_node(r, "id-c", "box", 1000, 1, again);
    assert_string_equal(a, "id-a");
    assert_string_equal(again, "id-a"); /* same machine + port: same node */
    rt_lease_t l1, l2, l3;
    assert_int_equal(rt_registry_acquire(r, "nope", NULL, 0, &l1), RT_PICK_NONE);
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l1), RT_PICK_OK);
    assert_int_equal(rt_registry_acquire(r, "m2", NULL, 0, &l2), RT_PICK_OK);
    assert_string_not_equal(l1.node_id, l2.node_id);
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l3), RT_PICK_BUSY);
    rt_registry_release(r, &l1, RT_OUTCOME_OK);
    const char *ex[] = { l1.node_id };
    assert_int_equal(rt_registry_acquire(r, "m1", ex, 1, &l3), RT_PICK_BUSY);
    rt_registry_release(r, &l2, RT_OUTCOME_FAILED);
    const char *both[] = { a, b };
    assert_int_equal(rt_registry_acquire(r, "m1", both, 2, &l3), RT_PICK_EXHAUSTED);
    assert_true(strncmp(l1.base_url, "http://127.0.0.1:", 17) == 0);
    sums_t s = sums(r);
    assert_int_equal(s.total, 2);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.inflight, 0);
    rt_node_view_t *v;
    assert_int_equal(rt_registry_snapshot(r, false, &v), 2);
    assert_string_equal(v[0].id, "id-a");
    assert_int_equal(v[0].nmodels, 2);
    assert_string_equal(v[0].models[1], "m2");
    assert_string_equal(v[0].status, "online");
    assert_null(v[0].hist);
    rt_registry_views_free(v, 2);
    rt_registry_free(r);
}

static void test_health_and_suspend(void **state)
{
    (void)state;
    rt_registry_opts_t o = { .mode = RT_LB_AUTO, .default_slots = 4, .history_max = 3 };
    rt_registry_t *r = rt_registry_new(&o);
    char a[RT_NODE_ID_MAX];
    reg_node(r, "id-a", "box", 1000, 2, a);
    rt_lease_t l;
    assert_int_equal(rt_registry_sweep(r, cm_now_ms() + 10000, 5000), 1);
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_NONE);
    rt_node_metrics_t hb = { .cpu = 5, .mem = 6, .gpu = -1, .gpu_mem = -1, .total_slots = 2 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(rt_registry_heartbeat(r, a, &hb), 0);
    assert_int_equal(rt_registry_heartbeat(r, "unknown", &hb), -1);
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_OK);
    rt_registry_release(r, &l, RT_OUTCOME_NONE);
    rt_registry_suspend(r, a, 60000);
    /* its only node suspended: DOWN with the time left, not BUSY (no wait) */
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_DOWN);
    assert_in_range(l.retry_s, 59, 60);
    assert_int_equal(rt_registry_heartbeat(r, a, &hb), 0); /* a heartbeat lifts it */
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_OK);
    rt_registry_release(r, &l, RT_OUTCOME_OK);
    /* one node suspended, the other only full: BUSY, worth waiting for */
    char b[RT_NODE_ID_MAX];
    reg_node(r, "id-b", "box2", 2000, 1, b);
    rt_lease_t lb;
    assert_int_equal(rt_registry_acquire(r, "m1", (const char *const[]){ a }, 1, &lb), RT_PICK_OK);
    assert_string_equal(lb.node_id, b);
    rt_registry_suspend(r, a, 3000);
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_BUSY);
    rt_registry_suspend(r, b, 60000); /* both suspended: DOWN, the sooner lift counts */
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_DOWN);
    assert_in_range(l.retry_s, 2, 3);
    rt_registry_release(r, &lb, RT_OUTCOME_OK);
    assert_int_equal(rt_registry_remove(r, b), 0);
    assert_int_equal(rt_registry_heartbeat(r, a, &hb), 0);
    rt_node_view_t nv;
    assert_int_equal(rt_registry_snapshot_one(r, a, true, &nv), 0);
    assert_int_equal(nv.nhist, 3); /* bounded */
    assert_true(nv.hist[2].cpu == 5);
    assert_string_equal(nv.status, "online");
    rt_registry_view_clear(&nv);
    assert_int_equal(rt_registry_snapshot_one(r, "unknown", false, &nv), -1);
    /* persistence round trip */
    assert_int_equal(rt_registry_settings(r, a, "Nice", "[\"t\"]", "note"), 0);
    rt_registry_set_token_hash(r, a, "abc");
    rt_node_rec_t rec;
    assert_int_equal(rt_registry_export(r, a, &rec), 0);
    rt_registry_t *r2 = rt_registry_new(&o);
    rt_registry_restore(r2, &rec);
    rt_node_rec_t rec2;
    assert_int_equal(rt_registry_export(r2, a, &rec2), 0);
    assert_string_equal(rec2.custom_name, "Nice");
    assert_string_equal(rec2.token_hash, "abc");
    assert_int_equal(rec2.api_port, 1001);
    assert_int_equal(rt_registry_acquire(r2, "m1", NULL, 0, &l), RT_PICK_NONE); /* offline until heartbeat */
    rt_node_rec_free(&rec);
    rt_node_rec_free(&rec2);
    assert_int_equal(rt_registry_remove(r, a), 0);
    assert_int_equal(rt_registry_remove(r, a), -1);
    rt_registry_free(r);
    rt_registry_free(r2);
}

/* Many threads acquiring and releasing: the in-flight count never exceeds
 * the slots and ends at zero. */
static rt_registry_t *shared;
static atomic_ullong acquired;
static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        rt_lease_t l;
        if (rt_registry_acquire(shared, "m1", NULL, 0, &l) == RT_PICK_OK) {
            atomic_fetch_add(&acquired, 1);
            rt_registry_release(shared, &l, RT_OUTCOME_OK);
        }
    }
    return NULL;
}

static void test_threads_exact(void **state)
{
    (void)state;
    rt_registry_opts_t o = { .mode = RT_LB_AUTO, .default_slots = 4, .history_max = 3 };
    shared = rt_registry_new(&o);
    char a[RT_NODE_ID_MAX], b[RT_NODE_ID_MAX];
    reg_node(shared, "id-a", "a", 1000, 2, a);
    reg_node(shared, "id-b", "b", 1000, 2, b);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(sums(shared).inflight, 0);
    assert_int_equal(sums(shared).total, atomic_load(&acquired)); /* every release counted once */
    rt_registry_free(shared);
}

/* Finding 4: an existing identity is taken over only with the node's token
 * hash, or when offline from the same address; offline nodes expire; a full
 * registry evicts the node offline the longest, and refuses when every node
 * is online. The lease carries the node's credential header. */
static void test_claim_expire_evict(void **state)
{
    (void)state;
    rt_registry_opts_t o = { .mode = RT_LB_AUTO, .default_slots = 4, .history_max = 1 };
    rt_registry_t *r = rt_registry_new(&o);
    char id[RT_NODE_ID_MAX], id2[RT_NODE_ID_MAX], ev[RT_NODE_ID_MAX], cand[40];
    bool created;
    rt_node_info_t in = { .id = "v", .machine_name = "victim", .ip_address = "10.0.0.5", .runtime_port = 1,
                          .api_port = 2, .models = models, .nmodels = 1, .secret = "rs_a", .secret_box = "box" };
    rt_registry_claim_t none = { 0 }, good = { .proof_hash = "ab" }, bad = { .proof_hash = "cd" };
    assert_int_equal(rt_registry_claim(r, &in, &none, id, &created, ev), 0);
    assert_true(created);
    assert_int_equal(rt_registry_set_token_hash(r, id, "ab"), 0);
    rt_lease_t l;
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_OK);
    assert_string_equal(l.auth_hdr, "Authorization: Bearer rs_a");
    rt_registry_release(r, &l, RT_OUTCOME_NONE);
    assert_int_equal(rt_registry_claim(r, &in, &none, id2, &created, ev), RT_REGISTRY_TAKEN);
    assert_int_equal(rt_registry_claim(r, &in, &bad, id2, &created, ev), RT_REGISTRY_TAKEN);
    assert_int_equal(rt_registry_claim(r, &in, &good, id2, &created, ev), 0);
    assert_false(created);
    assert_string_equal(id2, id);
    rt_node_rec_t rec;
    assert_int_equal(rt_registry_export(r, id, &rec), 0);
    assert_string_equal(rec.secret_box, "box");
    rt_node_rec_free(&rec);
    /* offline: the same address may reclaim it, another may not */
    assert_int_equal(rt_registry_disconnect(r, id), 0);
    rt_node_info_t other = in;
    other.ip_address = "10.0.0.6";
    assert_int_equal(rt_registry_claim(r, &other, &none, id2, &created, ev), RT_REGISTRY_TAKEN);
    assert_int_equal(rt_registry_claim(r, &in, &none, id2, &created, ev), 0);
    /* expiry: only offline nodes, only past the limit */
    assert_int_equal(rt_registry_disconnect(r, id), 0);
    char ids[4][RT_NODE_ID_MAX];
    assert_int_equal(rt_registry_expire(r, cm_now_ms() + 500, 1000, ids, 4), 0);
    assert_int_equal(rt_registry_expire(r, cm_now_ms() + 1500, 1000, ids, 4), 1);
    assert_string_equal(ids[0], id);
    assert_false(rt_registry_exists(r, id));
    /* full: evict the longest offline, refuse when all are online */
    char first[RT_NODE_ID_MAX] = "";
    for (int i = 0; i < RT_REGISTRY_MAX_NODES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(cand, sizeof(cand), "id-%d", i);
        rt_node_info_t f = { .id = cand, .machine_name = name, .ip_address = "10.0.0.9", .runtime_port = i,
                             .api_port = 1 };
        assert_int_equal(rt_registry_claim(r, &f, &none, id2, &created, ev), 0);
        if (i == 0)
            strcpy(first, id2);
    }
    rt_node_info_t late = { .id = "late", .machine_name = "late", .ip_address = "10.0.0.9", .runtime_port = 1,
                            .api_port = 1 };
    rt_registry_claim_t evict = { .evict_offline = true };
    assert_int_equal(rt_registry_claim(r, &late, &evict, id2, &created, ev), RT_REGISTRY_FULL);
    assert_int_equal(rt_registry_disconnect(r, "id-7"), 0);
    assert_int_equal(rt_registry_disconnect(r, first), 0);
    assert_int_equal(rt_registry_claim(r, &late, &evict, id2, &created, ev), 0);
    assert_string_equal(ev, first); /* seen before id-7: offline the longest */
    assert_false(rt_registry_exists(r, first));
    assert_true(rt_registry_exists(r, "id-7"));
    rt_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_and_pick),
        cmocka_unit_test(test_claim_expire_evict),
        cmocka_unit_test(test_health_and_suspend),
        cmocka_unit_test(test_threads_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
