/* api/views.c: the node and model JSON rendered from registry snapshots
 * (fields, nulls for unreported figures, history, summary totals, the model
 * list with ready counts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "api/views.h"
#include "util.h"

#include <string.h>

static const char *models[] = { "m1", "m2" };

static void reg_node(rt_registry_t *r, const char *cand, const char *name, int port, char id[RT_NODE_ID_MAX])
{
    rt_node_info_t info = { .id = cand, .machine_name = name, .ip_address = "127.0.0.1", .runtime_port = port,
                            .api_port = port + 1, .models = models, .nmodels = 2, .total_slots = 2,
                            .gpu_devices_json = "[{\"model\":\"X\",\"count\":1}]" };
    bool created;
    assert_int_equal(rt_registry_register(r, &info, id, &created), 0);
}

static void node_and_summary(void **state)
{
    (void)state;
    rt_registry_opts_t o = { .mode = RT_LB_ROUND_ROBIN, .default_slots = 4, .history_max = 2 };
    rt_registry_t *r = rt_registry_new(&o);
    char a[RT_NODE_ID_MAX], b[RT_NODE_ID_MAX];
    reg_node(r, "id-a", "box-a", 1000, a);
    reg_node(r, "id-b", "box-b", 2000, b);
    rt_node_metrics_t hb = { .cpu = 5, .mem = 6, .gpu = -1, .gpu_mem = -1, .total_slots = 2 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(rt_registry_heartbeat(r, a, &hb), 0);
    assert_int_equal(rt_registry_settings(r, a, "Nice", "[\"t1\",\"t2\"]", NULL), 0);
    rt_lease_t l;
    assert_int_equal(rt_registry_acquire(r, "m1", NULL, 0, &l), RT_PICK_OK);
    rt_registry_release(r, &l, RT_OUTCOME_FAILED);
    rt_registry_disconnect(r, b);

    rt_node_view_t v;
    assert_int_equal(rt_registry_snapshot_one(r, a, true, &v), 0);
    cJSON *j = rt_view_node(&v, true);
    rt_registry_view_clear(&v);
    assert_string_equal(cJSON_GetObjectItem(j, "node_id")->valuestring, "id-a");
    assert_string_equal(cJSON_GetObjectItem(j, "custom_name")->valuestring, "Nice");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "notes")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tags")), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "gpu_devices"), 0), "model")->valuestring, "X");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "gpu_usage"))); /* not reported */
    assert_int_equal(cJSON_GetObjectItem(j, "cpu_usage")->valueint, 5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "history")), 2); /* bounded by history_max */
    const char *ts = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "history"), 0), "timestamp")->valuestring;
    assert_int_equal(strlen(ts), 24); /* 2026-01-02T03:04:05.678Z */
    assert_int_equal(ts[23], 'Z');
    cJSON_Delete(j);

    rt_node_view_t *vs;
    size_t n = rt_registry_snapshot(r, false, &vs);
    assert_int_equal(n, 2);
    cJSON *list = rt_view_nodes(vs, n);
    assert_int_equal(cJSON_GetArraySize(list), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "status")->valuestring, "offline");
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "history"));
    cJSON_Delete(list);
    cJSON *s = rt_view_summary(vs, n, rt_registry_mode(r));
    assert_int_equal(cJSON_GetObjectItem(s, "total_nodes")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(s, "online_nodes")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(s, "total_requests")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(s, "failed_requests")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(s, "total_slots")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(s, "load_balancer_mode")->valuestring, "round_robin");
    cJSON_Delete(s);
    /* models: only online nodes count */
    cJSON *m = rt_view_models(vs, n, NULL);
    assert_int_equal(cJSON_GetArraySize(m), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "nodes")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "ready_nodes")->valueint, 1);
    cJSON_Delete(m);
    cJSON *one = rt_view_models(vs, n, "m2");
    assert_int_equal(cJSON_GetArraySize(one), 1);
    cJSON_Delete(one);
    assert_null(rt_view_models(vs, n, "nope"));
    rt_registry_views_free(vs, n);
    rt_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_and_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
