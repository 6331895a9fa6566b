/* node/src/models.c: model ids from file names, directory scans, the
 * watcher that rescans on its own thread, unload policy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "models.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void id_is(const char *file, const char *want)
{
    char *id = nd_model_id_from_file(file);
    assert_string_equal(id, want);
    free(id);
}

static void test_ids(void **state)
{
    (void)state;
    id_is("llama-2-7b.Q4_K_M.gguf", "llama-2-7b");
    id_is("/models/llama-2-7b.Q4_K_M.gguf", "llama-2-7b");
    id_is("mistral-7b-instruct-v0.2.Q8_0.gguf", "mistral-7b-instruct-v0.2");
    id_is("tiny-q8_0.gguf", "tiny");
    id_is("phi-3-mini-IQ2_XS.gguf", "phi-3-mini");
    id_is("qwen2.5-0.5b-instruct-fp16.gguf", "qwen2.5-0.5b-instruct");
    id_is("model.BF16.GGUF", "model");
    id_is("gpt-oss-20b.gguf", "gpt-oss-20b");
    id_is("q4_0.gguf", "q4_0"); /* nothing left to strip to */
    id_is("name.q", "name.q");
}

static void touch(const char *dir, const char *name)
{
    char *p = cm_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    free(p);
}

static void test_scan(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_nd_models.XXXXXX";
    assert_non_null(mkdtemp(dir));
    touch(dir, "llama-2-7b.Q4_K_M.gguf");
    touch(dir, "tiny-q8_0.gguf");
    touch(dir, "tiny-q4_0.gguf"); /* clashes with the one above */
    touch(dir, "notes.txt");
    char *sub = cm_xasprintf("%s/shared", dir);
    assert_int_equal(cm_mkdir_p(sub, 0755), 0);
    touch(sub, "whatever.gguf");
    nd_models_t *m = nd_models_new(dir);
    assert_int_equal(nd_models_scan(m), 4);
    cJSON *ids = nd_models_ids_json(m);
    char *s = cJSON_PrintUnformatted(ids);
    assert_string_equal(s, "[\"llama-2-7b\",\"shared\",\"tiny-q4_0\",\"tiny-q8_0\"]");
    free(s);
    cJSON_Delete(ids);
    char *p = nd_models_path(m, "shared");
    assert_non_null(strstr(p, "/shared/whatever.gguf"));
    free(p);
    assert_null(nd_models_path(m, "tiny"));
    nd_models_free(m);
    char *cmd = cm_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(sub);
    nd_models_t *none = nd_models_new("/nonexistent/dir");
    assert_int_equal(nd_models_scan(none), 0);
    nd_models_free(none);
}

/* Lookups answer from the last scan and never scan; the watcher finds a
 * file added later within its interval, and a removed one goes. */
static void test_watch(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_nd_models.XXXXXX";
    assert_non_null(mkdtemp(dir));
    touch(dir, "alpha.gguf");
    nd_models_t *m = nd_models_new(dir);
    assert_int_equal(nd_models_scans(m), 0);
    assert_int_equal(nd_models_scan(m), 1);
    assert_int_equal(nd_models_scans(m), 1);
    touch(dir, "bravo.gguf");
    for (int i = 0; i < 100; i++) /* unknown ids, over and over: no disk */
        assert_null(nd_models_path(m, "bravo"));
    cJSON_Delete(nd_models_ids_json(m));
    assert_int_equal(nd_models_count(m), 1);
    assert_int_equal(nd_models_scans(m), 1);

    assert_int_equal(nd_models_watch(m, 20), 0);
    assert_int_equal(nd_models_watch(m, 20), 0); /* once: a second call is a no-op */
    char *p = NULL;
    for (int i = 0; i < 500 && !(p = nd_models_path(m, "bravo")); i++) /* 5 s at most */
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000L }, NULL);
    assert_non_null(p);
    assert_non_null(strstr(p, "/bravo.gguf"));
    free(p);
    assert_true(nd_models_scans(m) >= 2);
    char *gone = cm_xasprintf("%s/alpha.gguf", dir);
    assert_int_equal(unlink(gone), 0);
    free(gone);
    for (int i = 0; i < 500 && (p = nd_models_path(m, "alpha")); i++) {
        free(p);
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000L }, NULL);
    }
    assert_null(p);
    nd_models_free(m); /* joins the watcher */
    char *cmd = cm_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_victim(void **state)
{
    (void)state;
    nd_loaded_info_t m[3] = { { 100, 0, 1 }, { 50, 2, 1 }, { 70, 0, 1 } };
    assert_int_equal(nd_models_pick_victim(m, 3), 2); /* oldest idle */
    m[2].in_flight = 1;
    assert_int_equal(nd_models_pick_victim(m, 3), 0);
    m[0].in_flight = 1;
    assert_int_equal(nd_models_pick_victim(m, 3), -1); /* all busy */
    assert_int_equal(nd_models_pick_victim(m, 0), -1);
}

static void test_room(void **state)
{
    (void)state;
    nd_loaded_info_t m[2] = { { 10, 0, 100 }, { 5, 1, 100 } };
    assert_int_equal(nd_models_room(m, 2, 0, 0, 50), ND_ROOM_OK);
    assert_int_equal(nd_models_room(m, 2, 3, 250, 50), ND_ROOM_OK);
    assert_int_equal(nd_models_room(m, 2, 2, 0, 50), 0);   /* unload the idle one */
    assert_int_equal(nd_models_room(m, 2, 0, 220, 50), 0); /* memory */
    assert_int_equal(nd_models_room(m, 2, 0, 40, 50), ND_ROOM_NEVER);
    m[0].in_flight = 2;
    assert_int_equal(nd_models_room(m, 2, 2, 0, 50), ND_ROOM_WAIT);
    assert_int_equal(nd_models_room(m, 0, 1, 0, 50), ND_ROOM_OK);
}

int main(void)
{
    cm_util_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids), cmocka_unit_test(test_scan), cmocka_unit_test(test_victim),
        cmocka_unit_test(test_room), cmocka_unit_test(test_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
