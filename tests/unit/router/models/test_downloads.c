/* test_downloads: the pure parts of the model tasks (file choice, split
 * groups, the Hub's Link pagination, repository and revision checks) and
 * the tasks' persistence (store_tasks.c rows, and a task list that comes
 * back after a restart with unfinished tasks queued again and finished ones
 * as they were). No network: the Hub is an unreachable loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "json.h"
#include "models/downloads_int.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static rt_hf_file_t F(const char *path, uint64_t size)
{
    rt_hf_file_t f = { .path = (char *)path, .size = size };
    return f;
}

static const char *picked(const rt_hf_file_t *v, size_t n)
{
    size_t i = dl_pick(v, n);
    return i < n ? v[i].path : NULL;
}

static void test_pick_preference(void **state)
{
    (void)state;
    rt_hf_file_t a[] = { F("README.md", 10), F("m.Q8_0.gguf", 800), F("m.Q4_0.gguf", 400),
                         F("m.Q4_K_M.gguf", 450), F("m.Q2_K.gguf", 200) };
    assert_string_equal(picked(a, 5), "m.Q4_K_M.gguf");
    rt_hf_file_t b[] = { F("m.Q8_0.gguf", 800), F("m.Q4_0.gguf", 400), F("m.Q2_K.gguf", 200) };
    assert_string_equal(picked(b, 3), "m.Q4_0.gguf");
    rt_hf_file_t c[] = { F("m.Q2_K.gguf", 200), F("m.Q8_0.gguf", 800) };
    assert_string_equal(picked(c, 2), "m.Q8_0.gguf");
    /* none preferred: the smallest GGUF */
    rt_hf_file_t d[] = { F("m.F16.gguf", 1600), F("m.Q3_K_S.gguf", 300), F("m.Q5_K_M.gguf", 500) };
    assert_string_equal(picked(d, 3), "m.Q3_K_S.gguf");
    /* any case, the tag followed by '.' or '-' only */
    rt_hf_file_t e[] = { F("m-q4_k_m.gguf", 450), F("m.Q8_0.gguf", 800) };
    assert_string_equal(picked(e, 2), "m-q4_k_m.gguf");
    rt_hf_file_t f[] = { F("m.Q4_K_MX.gguf", 100), F("m.Q8_0.gguf", 800) };
    assert_string_equal(picked(f, 2), "m.Q8_0.gguf");
}

static void test_pick_skips(void **state)
{
    (void)state;
    /* projectors and importance matrices are never the model */
    rt_hf_file_t a[] = { F("mmproj-m.Q4_K_M.gguf", 10), F("m.imatrix.gguf", 5), F("m.Q6_K.gguf", 600) };
    assert_string_equal(picked(a, 3), "m.Q6_K.gguf");
    /* no GGUF at all */
    rt_hf_file_t b[] = { F("model.safetensors", 10), F("config.json", 1) };
    assert_null(picked(b, 2));
    assert_int_equal(dl_pick(b, 0), 0);
    /* a split's later parts are not candidates; its size is the whole */
    rt_hf_file_t c[] = { F("big-00002-of-00002.gguf", 10), F("big-00001-of-00002.gguf", 500),
                         F("small.Q5_K_M.gguf", 400) };
    assert_string_equal(picked(c, 3), "small.Q5_K_M.gguf");
    rt_hf_file_t d[] = { F("big-00002-of-00002.gguf", 10), F("big-00001-of-00002.gguf", 100),
                         F("small.Q5_K_M.gguf", 400) };
    assert_string_equal(picked(d, 3), "big-00001-of-00002.gguf");
    /* a split whose parts are incomplete is not picked by size */
    rt_hf_file_t e[] = { F("big-00001-of-00003.gguf", 1), F("big-00002-of-00003.gguf", 1),
                         F("small.Q5_K_M.gguf", 400) };
    assert_string_equal(picked(e, 3), "small.Q5_K_M.gguf");
}

static void test_split_parts(void **state)
{
    (void)state;
    rt_hf_file_t v[] = { F("q/m-Q4_K_M-00003-of-00003.gguf", 3), F("q/m-Q4_K_M-00001-of-00003.gguf", 1),
                         F("other.gguf", 9), F("q/m-Q4_K_M-00002-of-00003.gguf", 2) };
    size_t idx[256];
    unsigned count = 0;
    assert_int_equal(dl_split_parts(v, 4, 1, idx, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], 3);
    assert_int_equal(idx[2], 0);
    /* the Q4_K_M preference reaches the first part of a split */
    assert_string_equal(picked(v, 4), "q/m-Q4_K_M-00001-of-00003.gguf");
    /* a plain file is a group of one */
    assert_int_equal(dl_split_parts(v, 4, 2, idx, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(idx[0], 2);
    /* a missing part */
    rt_hf_file_t w[] = { F("m-00001-of-00003.gguf", 1), F("m-00003-of-00003.gguf", 3) };
    assert_int_equal(dl_split_parts(w, 2, 0, idx, &count), -1);
}

static void test_link_next(void **state)
{
    (void)state;
    const char *base = "https://huggingface.co";
    char *n = rt_hf_link_next("<https://huggingface.co/api/models?cursor=abc&limit=2>; rel=\"next\"", base);
    assert_non_null(n);
    assert_string_equal(n, "https://huggingface.co/api/models?cursor=abc&limit=2");
    free(n);
    /* several links, next not first; a relative target */
    n = rt_hf_link_next("</api/models?p=1>; rel=\"prev\", </api/models/x/tree/main?cursor=Zz%3D>; rel=\"next\"",
                        base);
    assert_non_null(n);
    assert_string_equal(n, "https://huggingface.co/api/models/x/tree/main?cursor=Zz%3D");
    free(n);
    /* only prev, nothing, garbage */
    assert_null(rt_hf_link_next("</api/models?p=1>; rel=\"prev\"", base));
    assert_null(rt_hf_link_next("", base));
    assert_null(rt_hf_link_next("<unterminated; rel=\"next\"", base));
    /* another origin (host, port or scheme) is not followed */
    assert_null(rt_hf_link_next("<https://evil.example/api/models?c=1>; rel=\"next\"", base));
    assert_null(rt_hf_link_next("<https://huggingface.co:8443/api/models?c=1>; rel=\"next\"", base));
    assert_null(rt_hf_link_next("<http://huggingface.co/api/models?c=1>; rel=\"next\"", base));
    n = rt_hf_link_next("<http://127.0.0.1:9000/api/models?c=2>; rel=\"next\"", "http://127.0.0.1:9000");
    assert_non_null(n);
    free(n);
}

static void test_repo_revision_valid(void **state)
{
    (void)state;
    assert_true(rt_hf_repo_valid("TheBloke/Llama-2-7B-GGUF"));
    assert_true(rt_hf_repo_valid("gpt2"));
    assert_true(rt_hf_repo_valid("a.b_c/d-e.f"));
    assert_false(rt_hf_repo_valid(NULL));
    assert_false(rt_hf_repo_valid(""));
    assert_false(rt_hf_repo_valid("a/b/c"));
    assert_false(rt_hf_repo_valid("../x"));
    assert_false(rt_hf_repo_valid("a/..b"));
    assert_false(rt_hf_repo_valid("a/.b"));
    assert_false(rt_hf_repo_valid("a b/c"));
    assert_false(rt_hf_repo_valid("a/b?x=1"));
    assert_false(rt_hf_repo_valid("a/b%2f"));
    assert_true(rt_hf_revision_valid("main"));
    assert_true(rt_hf_revision_valid("refs/pr/1"));
    assert_true(rt_hf_revision_valid("0123456789abcdef0123456789abcdef01234567"));
    assert_false(rt_hf_revision_valid(""));
    assert_false(rt_hf_revision_valid("../main"));
    assert_false(rt_hf_revision_valid("/main"));
    assert_false(rt_hf_revision_valid("ma in"));
    assert_false(rt_hf_revision_valid("main?x"));
}

/* ---- persistence ---- */

typedef struct {
    char dir[256];
    rt_store_t *st;
    rt_models_t *models;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = cm_xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/llmr-test-downloads-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256];
    char *db = cm_xasprintf("%s/router.db", f->dir), *mdir = cm_xasprintf("%s/models", f->dir);
    assert_int_equal(rt_store_open(db, &f->st, err, sizeof(err)), 0);
    rt_models_opts_t mo = { .dir = mdir };
    f->models = rt_models_new(&mo, f->st, err, sizeof(err));
    assert_non_null(f->models);
    free(db);
    free(mdir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    rt_models_free(f->models);
    rt_store_close(f->st);
    char *cmd = cm_xasprintf("rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f);
    return 0;
}

typedef struct {
    int n;
    char ids[8][40];
    char states[8][16];
    int64_t done[8];
} seen_t;

static void collect(const rt_task_rec_t *r, void *arg)
{
    seen_t *s = arg;
    if (s->n < 8) {
        snprintf(s->ids[s->n], 40, "%s", r->id);
        snprintf(s->states[s->n], 16, "%s", r->state);
        s->done[s->n] = r->bytes_done;
        s->n++;
    }
}

static void test_store_round_trip(void **state)
{
    fx_t *f = *state;
    rt_task_rec_t r = { .id = "t-1", .kind = "download", .repo = "o/r", .revision = "main",
                        .filename = "m.Q4_K_M.gguf", .model_id = "m",
                        .files_json = "[{\"name\":\"m.Q4_K_M.gguf\",\"size\":100,\"sha256\":\"\"}]",
                        .state = "queued", .bytes_total = 100, .created_at = 1000, .updated_at = 1000 };
    rt_store_task_put(f->st, &r);
    /* a later write of the same task replaces it, in order */
    r.state = "downloading";
    r.bytes_done = 42;
    rt_store_task_put(f->st, &r);
    rt_task_rec_t c = { .id = "t-2", .kind = "convert", .repo = "o/s", .state = "failed", .error = "boom",
                        .log = "line\n", .params_json = "{\"outtype\":\"q8_0\"}", .created_at = 2000,
                        .updated_at = 2000 };
    rt_store_task_put(f->st, &c);
    rt_store_flush(f->st);
    seen_t s = { 0 };
    assert_int_equal(rt_store_tasks_each(f->st, collect, &s), RT_STORE_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "t-1");
    assert_string_equal(s.states[0], "downloading");
    assert_int_equal(s.done[0], 42);
    assert_string_equal(s.ids[1], "t-2");
    assert_string_equal(s.states[1], "failed");
    rt_store_task_delete(f->st, "t-1");
    rt_store_flush(f->st);
    memset(&s, 0, sizeof(s));
    assert_int_equal(rt_store_tasks_each(f->st, collect, &s), RT_STORE_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ids[0], "t-2");
}

static const cJSON *find_task(const cJSON *a, const char *id)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, a) {
        const char *tid = NULL;
        if (cm_json_str(t, "id", &tid) == CM_JSON_OK && strcmp(tid, id) == 0)
            return t;
    }
    return NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const char *s = NULL;
    return cm_json_str(o, k, &s) == CM_JSON_OK ? s : NULL;
}

static void test_tasks_restart(void **state)
{
    fx_t *f = *state;
    /* an unfinished download persisted by an earlier run */
    rt_task_rec_t r = { .id = "11111111-2222-4333-8444-555555555555", .kind = "download", .repo = "o/r",
                        .revision = "main", .filename = "m.Q4_K_M.gguf", .model_id = "m",
                        .files_json = "[{\"name\":\"m.Q4_K_M.gguf\",\"size\":1000,\"sha256\":"
                                      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]",
                        .state = "downloading", .bytes_done = 300, .bytes_total = 1000,
                        .params_json = "{\"commit\":\"0123456789abcdef0123456789abcdef01234567\"}",
                        .created_at = 1000, .updated_at = 1500 };
    rt_store_task_put(f->st, &r);
    rt_store_flush(f->st);
    /* the Hub is a closed port: the resumed task keeps retrying */
    rt_downloads_opts_t o = { .hf_base_url = "http://127.0.0.1:1", .concurrency = 1 };
    rt_downloads_t *d = rt_downloads_new(&o, f->models, f->st);
    assert_non_null(d);
    cJSON *a = rt_downloads_tasks_json(d, NULL);
    const cJSON *t = find_task(a, r.id);
    assert_non_null(t);
    assert_true(strcmp(jstr(t, "state"), "queued") == 0 || strcmp(jstr(t, "state"), "downloading") == 0);
    assert_string_equal(jstr(t, "repo"), "o/r");
    assert_string_equal(jstr(t, "model_id"), "m");
    assert_string_equal(jstr(t, "commit"), "0123456789abcdef0123456789abcdef01234567");
    assert_int_equal((int)cJSON_GetObjectItem(t, "bytes_total")->valuedouble, 1000);
    const cJSON *files = cJSON_GetObjectItem(t, "files");
    assert_int_equal(cJSON_GetArraySize(files), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(files, 0), "name"), "m.Q4_K_M.gguf");
    cJSON_Delete(a);
    /* a convert task with no converter configured fails at once, naming
     * the setting, and stays listed */
    cJSON *ct = NULL;
    rt_hf_err_t e;
    assert_int_equal(rt_downloads_convert(d, "o/conv", NULL, NULL, NULL, &ct, &e), 0);
    assert_string_equal(jstr(ct, "state"), "failed");
    assert_non_null(strstr(jstr(ct, "error"), "LLM_ROUTER_CONVERTER"));
    char cid[40];
    snprintf(cid, sizeof(cid), "%s", jstr(ct, "id"));
    cJSON_Delete(ct);
    /* bad input is refused before the Hub is asked */
    assert_int_equal(rt_downloads_convert(d, "../x", NULL, NULL, NULL, &ct, &e), -1);
    assert_int_equal(e.status, 400);
    assert_int_equal(rt_downloads_convert(d, "o/c", NULL, "q3", NULL, &ct, &e), -1);
    assert_int_equal(e.status, 400);
    int st = 0;
    assert_int_equal(rt_downloads_register(d, "o/r", "../../etc/passwd", NULL, &ct, &st, &e), -1);
    assert_int_equal(e.status, 400);
    /* the Hub is down: 502, nothing queued */
    assert_int_equal(rt_downloads_register(d, "o/r2", NULL, NULL, &ct, &st, &e), -1);
    assert_int_equal(e.status, 502);
    assert_non_null(strstr(e.msg, "Hugging Face"));
    rt_downloads_free(d);
    rt_store_flush(f->st);

    /* the next start: the download queued again, the failed task as it was */
    d = rt_downloads_new(&o, f->models, f->st);
    assert_non_null(d);
    a = rt_downloads_tasks_json(d, NULL);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    t = find_task(a, r.id);
    assert_non_null(t);
    assert_true(strcmp(jstr(t, "state"), "queued") == 0 || strcmp(jstr(t, "state"), "downloading") == 0);
    t = find_task(a, cid);
    assert_non_null(t);
    assert_string_equal(jstr(t, "state"), "failed");
    assert_string_equal(jstr(t, "kind"), "convert");
    cJSON_Delete(a);
    a = rt_downloads_tasks_json(d, "convert");
    assert_int_equal(cJSON_GetArraySize(a), 1);
    cJSON_Delete(a);
    /* cancel: the running download stops, a finished task's record goes */
    cJSON *after = NULL;
    assert_int_equal(rt_downloads_cancel(d, r.id, NULL, &after), 0);
    assert_string_equal(jstr(after, "state"), "cancelled");
    cJSON_Delete(after);
    assert_int_equal(rt_downloads_cancel(d, cid, "download", &after), -1); /* wrong kind */
    assert_int_equal(rt_downloads_cancel(d, cid, "convert", &after), 1);
    assert_null(rt_downloads_task_json(d, cid, NULL));
    assert_int_equal(rt_downloads_cancel(d, "nope", NULL, &after), -1);
    assert_int_equal(rt_downloads_cancel_model(d, "m"), 0); /* nothing active left */
    rt_downloads_free(d);
    rt_store_flush(f->st);
    seen_t s = { 0 };
    assert_int_equal(rt_store_tasks_each(f->st, collect, &s), RT_STORE_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.states[0], "cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_preference),
        cmocka_unit_test(test_pick_skips),
        cmocka_unit_test(test_split_parts),
        cmocka_unit_test(test_link_next),
        cmocka_unit_test(test_repo_revision_valid),
        cmocka_unit_test_setup_teardown(test_store_round_trip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tasks_restart, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
