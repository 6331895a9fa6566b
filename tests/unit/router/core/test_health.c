/* health: the heartbeat timeout sweep on a private loop, with short
 * intervals: nodes go offline after the timeout and come back with a
 * heartbeat, skip never takes them offline, suspensions that ran out end,
 * and every tick kicks the admission queue. Every wait has a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/admission.h"
#include "core/health.h"
#include "core/registry.h"
#include "log.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERVAL_MS 10
#define TIMEOUT_MS 200
#define WAIT_MS 3000 /* the longest any condition is waited for */

typedef struct {
    struct event_base *base;
    rt_registry_t *reg;
    rt_admission_t *adm;
    rt_health_t *health;
    int hook_calls; /* the registry's capacity hook (the loop's thread only) */
    char gone[4][RT_NODE_ID_MAX]; /* what the offline callback was told */
    int ngone;
} fx_t;

static void on_offline(void *ud, const char *id)
{
    fx_t *f = ud;
    if (f->ngone < 4)
        snprintf(f->gone[f->ngone], RT_NODE_ID_MAX, "%s", id);
    f->ngone++;
}

/* A request waiting for a slot, as the proxy's would. */
typedef struct {
    rt_lease_t lease;
    rt_adm_status_t status;
    bool done;
} job_t;

static rt_adm_status_t try_slot(void *ctx, void *ud)
{
    job_t *j = ctx;
    rt_pick_t p = rt_registry_acquire(ud, "m", NULL, 0, &j->lease);
    return p == RT_PICK_OK ? RT_ADM_GOT : p == RT_PICK_BUSY ? RT_ADM_BUSY : RT_ADM_GONE;
}

static void job_done(void *ctx, rt_adm_status_t st)
{
    job_t *j = ctx;
    j->status = st;
    j->done = true;
}

/* Counts the calls and does not kick: what reaches a waiter then comes from
 * the health tick's own kick. */
static void count_hook(void *ud)
{
    ((fx_t *)ud)->hook_calls++;
}

static fx_t *fx_new(bool skip)
{
    fx_t *f = cm_xcalloc(1, sizeof(*f));
    f->base = event_base_new();
    rt_registry_opts_t ro = { .mode = RT_LB_ROUND_ROBIN, .default_slots = 1, .history_max = 4 };
    f->reg = rt_registry_new(&ro);
    f->adm = rt_admission_new(8, try_slot, f->reg);
    rt_registry_set_capacity_hook(f->reg, count_hook, f);
    f->health = rt_health_start(f->base, f->reg, f->adm, INTERVAL_MS, TIMEOUT_MS, skip);
    rt_health_on_offline(f->health, on_offline, f);
    return f;
}

static void fx_free(fx_t *f)
{
    rt_health_stop(f->health);
    rt_admission_free(f->adm);
    rt_registry_free(f->reg);
    event_base_free(f->base);
    free(f);
}

static void node_add(fx_t *f, const char *name, char id[RT_NODE_ID_MAX])
{
    const char *models[] = { "m" };
    rt_node_info_t info = {
        .id = name, .machine_name = name, .ip_address = "127.0.0.1", .runtime_port = 1,
        .api_port = 1, .models = models, .nmodels = 1, .total_slots = 1,
    };
    bool created;
    assert_int_equal(rt_registry_register(f->reg, &info, id, &created), 0);
}

static void heartbeat(fx_t *f, const char *id)
{
    rt_node_metrics_t m = { .cpu = -1, .mem = -1, .gpu = -1, .gpu_mem = -1 };
    assert_int_equal(rt_registry_heartbeat(f->reg, id, &m), 0);
}

static rt_node_view_t view(fx_t *f, const char *id)
{
    rt_node_view_t v;
    assert_int_equal(rt_registry_snapshot_one(f->reg, id, false, &v), 0);
    return v;
}

static bool online(fx_t *f, const char *id)
{
    rt_node_view_t v = view(f, id);
    bool on = v.online;
    rt_registry_view_clear(&v);
    return on;
}

static bool suspended(fx_t *f, const char *id)
{
    rt_node_view_t v = view(f, id);
    bool s = v.suspended;
    rt_registry_view_clear(&v);
    return s;
}

/* Runs the loop (its health timer ticks every INTERVAL_MS) for ms. */
static void run_for(fx_t *f, unsigned ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

typedef bool (*cond_fn)(fx_t *f, const void *arg);

/* Runs the loop until cond holds; false when WAIT_MS passed first. */
static bool run_until(fx_t *f, cond_fn cond, const void *arg)
{
    uint64_t deadline = cm_now_ms() + WAIT_MS;
    while (!cond(f, arg)) {
        if (cm_now_ms() > deadline)
            return false;
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    return true;
}

static bool is_offline(fx_t *f, const void *id)
{
    return !online(f, id);
}

static bool job_finished(fx_t *f, const void *j)
{
    (void)f;
    return ((const job_t *)j)->done;
}

static bool hook_called(fx_t *f, const void *arg)
{
    (void)arg;
    return f->hook_calls > 0;
}

/* silent past the timeout: offline, not before */
static void test_offline_after_timeout(void **state)
{
    (void)state;
    fx_t *f = fx_new(false);
    char id[RT_NODE_ID_MAX];
    uint64_t seen = cm_now_ms();
    node_add(f, "a", id);
    run_for(f, TIMEOUT_MS / 4);
    if (cm_now_ms() - seen < TIMEOUT_MS) /* a slow (sanitizer) run may be past it already */
        assert_true(online(f, id));
    assert_true(run_until(f, is_offline, id));
    assert_true(cm_now_ms() - seen >= TIMEOUT_MS);
    fx_free(f);
}

/* each node taken offline is reported once, by id (the proxy fails its
 * unanswered requests from that); a node kept alive is not */
static void test_offline_reported(void **state)
{
    (void)state;
    fx_t *f = fx_new(false);
    char a[RT_NODE_ID_MAX], b[RT_NODE_ID_MAX];
    node_add(f, "a", a);
    node_add(f, "b", b);
    uint64_t end = cm_now_ms() + 2 * TIMEOUT_MS;
    while (cm_now_ms() < end) {
        run_for(f, TIMEOUT_MS / 5);
        heartbeat(f, b);
    }
    assert_false(online(f, a));
    assert_int_equal(f->ngone, 1);
    assert_string_equal(f->gone[0], a);
    run_for(f, TIMEOUT_MS / 2);
    heartbeat(f, b);
    assert_int_equal(f->ngone, 1); /* already offline: not again */
    fx_free(f);
}

/* a heartbeat brings an offline node back at once, and heartbeats keep it */
static void test_heartbeat_brings_back(void **state)
{
    (void)state;
    fx_t *f = fx_new(false);
    char id[RT_NODE_ID_MAX];
    node_add(f, "a", id);
    assert_true(run_until(f, is_offline, id));
    heartbeat(f, id);
    assert_true(online(f, id));
    uint64_t end = cm_now_ms() + 2 * TIMEOUT_MS;
    while (cm_now_ms() < end) {
        run_for(f, TIMEOUT_MS / 5);
        assert_true(online(f, id));
        heartbeat(f, id);
    }
    fx_free(f);
}

/* skip: ticks go on (a suspension still ends) but nobody goes offline */
static void test_skip_never_offline(void **state)
{
    (void)state;
    fx_t *f = fx_new(true);
    char id[RT_NODE_ID_MAX];
    node_add(f, "a", id);
    rt_registry_suspend(f->reg, id, 20);
    f->hook_calls = 0;
    run_for(f, 3 * TIMEOUT_MS);
    assert_true(online(f, id));
    assert_true(f->hook_calls > 0); /* the sweep ran and lifted the suspension */
    assert_false(suspended(f, id));
    fx_free(f);
}

/* a suspension that ran out ends at the next sweep, which reports the
 * capacity (the hook), and the node takes work again */
static void test_suspension_ends(void **state)
{
    (void)state;
    fx_t *f = fx_new(false);
    char id[RT_NODE_ID_MAX];
    node_add(f, "a", id);
    uint64_t t0 = cm_now_ms();
    rt_registry_suspend(f->reg, id, 50);
    f->hook_calls = 0;
    assert_true(suspended(f, id));
    rt_lease_t l;
    assert_int_equal(rt_registry_acquire(f->reg, "m", NULL, 0, &l), RT_PICK_DOWN);
    assert_true(run_until(f, hook_called, NULL));
    assert_true(cm_now_ms() - t0 >= 50); /* not before it ran out */
    assert_false(suspended(f, id));
    assert_true(online(f, id));
    assert_int_equal(rt_registry_acquire(f->reg, "m", NULL, 0, &l), RT_PICK_OK);
    rt_registry_release(f->reg, &l, RT_OUTCOME_OK);
    fx_free(f);
}

/* a slot given back without a kick (the hook here only counts): the next
 * tick kicks the queue and the waiter gets it */
static void test_tick_kicks_queue(void **state)
{
    (void)state;
    fx_t *f = fx_new(false);
    char id[RT_NODE_ID_MAX];
    node_add(f, "a", id);
    job_t first = { 0 }, waiter = { 0 };
    rt_waiter_t *w = NULL;
    assert_int_equal(rt_admission_enter(f->adm, "m", f->base, WAIT_MS, &first, job_done, &w), RT_ADM_GOT);
    assert_int_equal(rt_admission_enter(f->adm, "m", f->base, WAIT_MS, &waiter, job_done, &w), RT_ADM_QUEUED);
    rt_registry_release(f->reg, &first.lease, RT_OUTCOME_OK);
    assert_int_equal(rt_admission_waiting(f->adm), 1);
    assert_true(run_until(f, job_finished, &waiter));
    assert_int_equal(waiter.status, RT_ADM_GOT);
    assert_string_equal(waiter.lease.node_id, id);
    assert_int_equal(rt_admission_waiting(f->adm), 0);
    rt_registry_release(f->reg, &waiter.lease, RT_OUTCOME_OK);
    fx_free(f);
}

/* a suspended node and a full one: the waiter queues (BUSY), and when the
 * suspension runs out the sweep hands it the suspended node's slot */
static void test_suspension_end_serves_waiter(void **state)
{
    (void)state;
    fx_t *f = fx_new(false);
    char a[RT_NODE_ID_MAX], b[RT_NODE_ID_MAX];
    node_add(f, "a", a);
    node_add(f, "b", b);
    rt_registry_suspend(f->reg, a, 50);
    job_t busy = { 0 }, waiter = { 0 };
    rt_waiter_t *w = NULL;
    assert_int_equal(rt_admission_enter(f->adm, "m", f->base, WAIT_MS, &busy, job_done, &w), RT_ADM_GOT);
    assert_string_equal(busy.lease.node_id, b);
    assert_int_equal(rt_admission_enter(f->adm, "m", f->base, WAIT_MS, &waiter, job_done, &w), RT_ADM_QUEUED);
    assert_true(run_until(f, job_finished, &waiter));
    assert_int_equal(waiter.status, RT_ADM_GOT);
    assert_string_equal(waiter.lease.node_id, a);
    rt_registry_release(f->reg, &waiter.lease, RT_OUTCOME_OK);
    rt_registry_release(f->reg, &busy.lease, RT_OUTCOME_OK);
    fx_free(f);
}

int main(void)
{
    cm_util_init();
    cm_log_set_level(CM_LOG_ERROR); /* nodes going offline here is the point */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offline_after_timeout),
        cmocka_unit_test(test_offline_reported),
        cmocka_unit_test(test_heartbeat_brings_back),
        cmocka_unit_test(test_skip_never_offline),
        cmocka_unit_test(test_suspension_ends),
        cmocka_unit_test(test_tick_kicks_queue),
        cmocka_unit_test(test_suspension_end_serves_waiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
