/* node/src/api.c through the node's own route table on a real socket, with
 * no engine: requests that name a model the node does not have are answered
 * 404 from the last scan of the models directory without scanning it on the
 * loop (counted by nd_models_scans), and a file added later is served once
 * the watcher has seen it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models.h"
#include "node.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    long status;
    char *body;
    size_t len;
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    r->body = cm_xrealloc(r->body, r->len + sz * n + 1);
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static cJSON *req(int port, const char *method, const char *path, const char *body, long *status)
{
    CURL *c = curl_easy_init();
    char *url = cm_xasprintf("http://127.0.0.1:%d%s", port, path);
    resp_t r = { 0 };
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url);
    cJSON *j = r.body ? cJSON_Parse(r.body) : NULL;
    free(r.body);
    assert_non_null(j);
    return j;
}

static const char *str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* 404 model_not_found, param "model", in OpenAI's shape. */
static void not_found(int port, const char *method, const char *path, const char *body)
{
    long status = 0;
    cJSON *j = req(port, method, path, body, &status);
    assert_int_equal(status, 404);
    assert_string_equal(str(j, "error", "code"), "model_not_found");
    assert_string_equal(str(j, "error", "type"), "invalid_request_error");
    assert_string_equal(str(j, "error", "param"), "model");
    assert_non_null(strstr(str(j, "error", "message"), "does not exist on this node"));
    cJSON_Delete(j);
}

static void touch(const char *dir, const char *name)
{
    char *p = cm_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    free(p);
}

static void unknown_model_no_scan(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_nd_api.XXXXXX";
    assert_non_null(mkdtemp(dir));
    touch(dir, "alpha.gguf");
    /* the parts of a node these routes use before reaching the engine */
    nd_node_t nd = { 0 };
    nd.models = nd_models_new(dir);
    atomic_init(&nd.ready, true);
    assert_int_equal(nd_models_scan(nd.models), 1);
    cm_http_server_opts_t o = {
        .host = "127.0.0.1",
        .workers = 1,
        .max_body = 1 << 20,
        .max_headers = 64 * 1024,
        .routes = nd_routes,
        .nroutes = nd_routes_count,
        .ud = &nd,
    };
    cm_http_server_t *srv;
    char err[256];
    assert_int_equal(cm_http_server_start(&o, &srv, err, sizeof(err)), 0);
    int port = cm_http_server_port(srv);

    touch(dir, "bravo.gguf"); /* on disk, not yet scanned */
    static const char *const bodies[][2] = {
        { "/v1/chat/completions", "{\"model\":\"bravo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" },
        { "/v1/completions", "{\"model\":\"bravo\",\"prompt\":\"hi\"}" },
        { "/v1/embeddings", "{\"model\":\"bravo\",\"input\":\"hi\"}" },
    };
    for (int round = 0; round < 10; round++) {
        for (size_t i = 0; i < CM_ARRAY_LEN(bodies); i++)
            not_found(port, "POST", bodies[i][0], bodies[i][1]);
        not_found(port, "GET", "/v1/models/bravo", NULL);
    }
    long status = 0;
    cJSON *list = req(port, "GET", "/v1/models", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "data")), 1);
    cJSON_Delete(list);
    /* forty-one requests, none of which read the directory */
    assert_int_equal(nd_models_scans(nd.models), 1);

    /* the watcher finds the file within its interval; then it is served */
    assert_int_equal(nd_models_watch(nd.models, 50), 0);
    cJSON *j = NULL;
    for (int i = 0; i < 100; i++) { /* 5 s at most */
        j = req(port, "GET", "/v1/models/bravo", NULL, &status);
        if (status == 200)
            break;
        cJSON_Delete(j);
        j = NULL;
        nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000L }, NULL);
    }
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "bravo");
    cJSON_Delete(j);
    assert_true(nd_models_scans(nd.models) >= 2);

    cm_http_server_request_stop(srv);
    cm_http_server_wait(srv);
    cm_http_server_free(srv);
    nd_models_free(nd.models);
    char *cmd = cm_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(void)
{
    cm_util_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_model_no_scan),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
