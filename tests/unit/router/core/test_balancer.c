/* balancer: table tests of the pure selection rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/balancer.h"

static rt_bal_node_t nd(double cpu, double mem, int inflight, int slots)
{
    return (rt_bal_node_t){ .inflight = inflight, .slots = slots, .cpu = cpu, .mem = mem, .gpu = -1, .gpu_mem = -1 };
}

static void test_seed_example(void **state)
{
    (void)state;
    rt_bal_node_t n[2] = { nd(70, 50, 5, 16), nd(20, 30, 1, 16) };
    assert_true(rt_balancer_metrics_score(&n[1]) == 60.0);
    assert_true(rt_balancer_metrics_score(&n[0]) == 170.0);
    unsigned rr = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(rt_balancer_pick(RT_LB_METRICS, n, 2, &rr), 1);
}

static void test_all_hot_round_robin(void **state)
{
    (void)state;
    rt_bal_node_t n[3] = { nd(90, 10, 0, 4), nd(85, 90, 3, 4), nd(99, 50, 1, 4) };
    unsigned rr = 0;
    int seen[3] = { 0 };
    for (int i = 0; i < 9; i++)
        seen[rt_balancer_pick(RT_LB_METRICS, n, 3, &rr)]++;
    assert_int_equal(seen[0], 3);
    assert_int_equal(seen[1], 3);
    assert_int_equal(seen[2], 3);
}

static void test_never_above_slots(void **state)
{
    (void)state;
    rt_bal_node_t n[2] = { nd(0, 0, 4, 4), nd(99, 99, 1, 2) };
    unsigned rr = 0;
    for (rt_lb_mode_t m = RT_LB_AUTO; m <= RT_LB_ROUND_ROBIN; m++)
        assert_int_equal(rt_balancer_pick(m, n, 2, &rr), 1);
    n[1].inflight = 2;
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 2, &rr), -1);
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 0, &rr), -1);
}

static void test_ties_round_robin(void **state)
{
    (void)state;
    rt_bal_node_t n[2] = { nd(10, 10, 0, 4), nd(10, 10, 0, 4) };
    unsigned rr = 0;
    int a = rt_balancer_pick(RT_LB_AUTO, n, 2, &rr);
    int b = rt_balancer_pick(RT_LB_AUTO, n, 2, &rr);
    assert_int_not_equal(a, b);
    a = rt_balancer_pick(RT_LB_METRICS, n, 2, &rr);
    b = rt_balancer_pick(RT_LB_METRICS, n, 2, &rr);
    assert_int_not_equal(a, b);
}

static void test_auto_prefers_fast_and_idle(void **state)
{
    (void)state;
    rt_bal_node_t n[2] = { nd(0, 0, 0, 4), nd(0, 0, 0, 4) };
    n[0].latency_ms = 100;
    n[1].latency_ms = 400; /* 4x slower */
    unsigned rr = 0;
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 2, &rr), 0);
    n[0].inflight = 3; /* 100 * 1.75 = 175 < 400: still the fast one */
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 2, &rr), 0);
    n[1].latency_ms = 150; /* 150 < 175 */
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 2, &rr), 1);
    /* external load reported by the node counts too */
    n[0].inflight = 0;
    n[0].external = 8;
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 2, &rr), 1);
}

static void test_auto_unknown_is_neutral_and_gpu_helps(void **state)
{
    (void)state;
    rt_bal_node_t n[3] = { nd(0, 0, 0, 4), nd(0, 0, 0, 4), nd(0, 0, 0, 4) };
    n[0].latency_ms = 100;
    n[1].latency_ms = 300; /* mean 200 for the unknown one */
    unsigned rr = 0;
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 3, &rr), 0);
    n[0].inflight = 3; /* 175 */
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 3, &rr), 0);
    n[0].inflight = 4; /* full */
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 3, &rr), 2); /* 200 < 300 */
    n[1].gpu_available = true; /* 240 */
    n[2].inflight = 1;         /* 250 */
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, n, 3, &rr), 1);
    /* tokens/s only: the faster generator wins */
    rt_bal_node_t t[2] = { nd(0, 0, 0, 4), nd(0, 0, 0, 4) };
    t[0].tps = 10;
    t[1].tps = 40;
    assert_int_equal(rt_balancer_pick(RT_LB_AUTO, t, 2, &rr), 1);
}

static void test_metrics_gpu_terms_and_modes(void **state)
{
    (void)state;
    rt_bal_node_t g = nd(20, 30, 1, 4);
    g.gpu_available = true;
    g.gpu = 50;
    g.gpu_mem = 10;
    assert_true(rt_balancer_metrics_score(&g) == 120.0);
    assert_int_equal(rt_lb_mode_parse("metrics"), RT_LB_METRICS);
    assert_int_equal(rt_lb_mode_parse("auto"), RT_LB_AUTO);
    assert_int_equal(rt_lb_mode_parse("round_robin"), RT_LB_ROUND_ROBIN);
    assert_int_equal(rt_lb_mode_parse("bogus"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_all_hot_round_robin),
        cmocka_unit_test(test_never_above_slots),
        cmocka_unit_test(test_ties_round_robin),
        cmocka_unit_test(test_auto_prefers_fast_and_idle),
        cmocka_unit_test(test_auto_unknown_is_neutral_and_gpu_helps),
        cmocka_unit_test(test_metrics_gpu_terms_and_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
