/* node/src/sync*.c: the router's list parsed strictly, the plan (fetch,
 * replace, remove only what sync placed), Content-Range and the resume
 * decision; then the sync thread against a small HTTP server in this test
 * that speaks the router's shapes (/v1/models for a node, the blob route with
 * Range): a download, a cut connection resumed with Range, a server that
 * ignores Range, corrupt bytes refused, shared storage used in place (no
 * blob request), a split model, removal of what sync placed and never of a
 * hand-placed model; and the models scan of the <id>/<file> layout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "json.h"
#include "models.h"
#include "sync.h"
#include "util.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* ---- pure parts ---- */

static cJSON *parse(const char *text)
{
    cJSON *j = cm_json_parse(text, strlen(text));
    assert_non_null(j);
    return j;
}

static void test_safe_name(void **state)
{
    (void)state;
    assert_true(nd_sync_safe_name("llama-2-7b"));
    assert_true(nd_sync_safe_name("m.Q4_K_M.gguf"));
    assert_false(nd_sync_safe_name(""));
    assert_false(nd_sync_safe_name(NULL));
    assert_false(nd_sync_safe_name(".."));
    assert_false(nd_sync_safe_name(".hidden"));
    assert_false(nd_sync_safe_name("a/b"));
    assert_false(nd_sync_safe_name("a b"));
    assert_false(nd_sync_safe_name("a\\b"));
    char long_name[140];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(nd_sync_safe_name(long_name));
}

static void test_parse_list(void **state)
{
    (void)state;
    cJSON *j = parse(
        "[{\"id\":\"served-only\",\"object\":\"model\"},"
        "{\"id\":\"tiny\",\"registered\":true,\"size\":10,\"sha256\":\"" SHA_A "\",\"path\":\"/r/tiny/tiny.gguf\","
        "\"blob_url\":\"/api/models/blob/tiny\",\"files\":[{\"name\":\"tiny.gguf\",\"size\":10,\"sha256\":\"" SHA_A
        "\",\"path\":\"/r/tiny/tiny.gguf\",\"blob_url\":\"/api/models/blob/tiny\"}]},"
        "{\"id\":\"split\",\"registered\":true,\"files\":["
        "{\"name\":\"s-00001-of-00002.gguf\",\"size\":5,\"sha256\":\"" SHA_A
        "\",\"blob_url\":\"/api/models/blob/split\"},"
        "{\"name\":\"s-00002-of-00002.gguf\",\"size\":7,\"sha256\":\"" SHA_B
        "\",\"blob_url\":\"/api/models/blob/split/s-00002-of-00002.gguf\"}]},"
        /* rejected: unsafe id, unsafe file name, a blob URL elsewhere, an
         * odd checksum, no files, a fractional size, a duplicate id */
        "{\"id\":\"../etc\",\"registered\":true,\"files\":[{\"name\":\"a.gguf\",\"size\":1,\"blob_url\":\"/api/models/blob/x\"}]},"
        "{\"id\":\"b\",\"registered\":true,\"files\":[{\"name\":\"../a.gguf\",\"size\":1,\"blob_url\":\"/api/models/blob/x\"}]},"
        "{\"id\":\"c\",\"registered\":true,\"files\":[{\"name\":\"c.gguf\",\"size\":1,\"blob_url\":\"http://evil/x\"}]},"
        "{\"id\":\"d\",\"registered\":true,\"files\":[{\"name\":\"d.gguf\",\"size\":1,\"sha256\":\"XYZ\",\"blob_url\":\"/api/models/blob/d\"}]},"
        "{\"id\":\"e\",\"registered\":true,\"files\":[]},"
        "{\"id\":\"f\",\"registered\":true,\"files\":[{\"name\":\"f.gguf\",\"size\":1.5,\"blob_url\":\"/api/models/blob/f\"}]},"
        "{\"id\":\"g\",\"registered\":true,\"files\":[{\"name\":\"g.txt\",\"size\":1,\"blob_url\":\"/api/models/blob/g\"}]},"
        "{\"id\":\"h\",\"registered\":true,\"files\":[{\"name\":\"h.gguf\",\"size\":1,\"blob_url\":\"/api/models/blob/../../x\"}]},"
        "{\"id\":\"tiny\",\"registered\":true,\"files\":[{\"name\":\"t.gguf\",\"size\":1,\"blob_url\":\"/api/models/blob/t\"}]}]");
    nd_sync_remote_t *r = cm_xcalloc(16, sizeof(*r));
    size_t rejected = 0;
    size_t n = nd_sync_parse_list(j, r, 16, &rejected);
    assert_int_equal(n, 2);
    assert_int_equal(rejected, 9);
    assert_string_equal(r[0].id, "tiny");
    assert_int_equal(r[0].nfiles, 1);
    assert_int_equal(r[0].size, 10);
    assert_string_equal(r[0].sha256, SHA_A);
    assert_string_equal(r[0].files[0].path, "/r/tiny/tiny.gguf");
    assert_string_equal(r[1].id, "split");
    assert_int_equal(r[1].nfiles, 2);
    assert_int_equal(r[1].size, 12);
    assert_null(r[1].files[0].path);
    assert_string_equal(r[1].files[1].blob_url, "/api/models/blob/split/s-00002-of-00002.gguf");
    /* bounded: at most max, the rest counted as rejected */
    n = nd_sync_parse_list(j, r, 1, &rejected);
    assert_int_equal(n, 1);
    assert_int_equal(rejected, 10);
    /* not an array */
    cJSON *o = parse("{\"data\":[]}");
    assert_int_equal(nd_sync_parse_list(o, r, 16, &rejected), 0);
    assert_int_equal(rejected, 0);
    cJSON_Delete(o);
    free(r);
    cJSON_Delete(j);
}

static void test_plan(void **state)
{
    (void)state;
    nd_sync_remote_t r[3] = { { .id = "new", .sha256 = SHA_A },
                              { .id = "mine", .sha256 = SHA_A },
                              { .id = "hand", .sha256 = SHA_A } };
    nd_sync_remote_t changed = { .id = "mine", .sha256 = SHA_B };
    nd_sync_local_t l[4] = {
        { "mine", true, true, SHA_A },   /* placed by sync, up to date */
        { "hand", true, false, NULL },   /* the operator's */
        { "gone", true, true, SHA_A },   /* placed by sync, no longer registered */
        { "half", false, true, SHA_A },  /* a download left halfway, no longer registered */
    };
    nd_sync_action_t a[8];
    size_t n = nd_sync_plan(r, 3, l, 4, a, 8);
    assert_int_equal(n, 3);
    assert_int_equal(a[0].kind, ND_SYNC_FETCH);
    assert_int_equal(a[0].index, 0);
    assert_int_equal(a[1].kind, ND_SYNC_REMOVE);
    assert_string_equal(l[a[1].index].id, "gone");
    assert_int_equal(a[2].kind, ND_SYNC_REMOVE);
    assert_string_equal(l[a[2].index].id, "half");
    /* the router's file changed: replace what sync placed */
    n = nd_sync_plan(&changed, 1, l, 1, a, 8);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].kind, ND_SYNC_REPLACE);
    /* the operator's model under that id is never replaced */
    nd_sync_local_t hand = { "mine", true, false, NULL };
    assert_int_equal(nd_sync_plan(&changed, 1, &hand, 1, a, 8), 0);
    /* a marked directory whose model is not served yet: fetched (resumed) */
    nd_sync_local_t half = { "new", false, true, SHA_A };
    n = nd_sync_plan(r, 1, &half, 1, a, 8);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].kind, ND_SYNC_FETCH);
    /* an empty list removes every marked model, never the operator's */
    n = nd_sync_plan(NULL, 0, l, 4, a, 8);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_true(l[a[i].index].synced);
    /* bounded by max */
    assert_int_equal(nd_sync_plan(r, 3, l, 4, a, 2), 2);
}

static void test_content_range(void **state)
{
    (void)state;
    uint64_t a, b, t;
    assert_int_equal(nd_sync_parse_content_range(" bytes 100-199/1000", &a, &b, &t), 0);
    assert_int_equal(a, 100);
    assert_int_equal(b, 199);
    assert_int_equal(t, 1000);
    assert_int_equal(nd_sync_parse_content_range("bytes 0-0/1\r\n", &a, &b, &t), 0);
    assert_int_equal(nd_sync_parse_content_range("bytes */1000", &a, &b, &t), -1);
    assert_int_equal(nd_sync_parse_content_range("bytes 5-4/1000", &a, &b, &t), -1);
    assert_int_equal(nd_sync_parse_content_range("bytes 0-1000/1000", &a, &b, &t), -1);
    assert_int_equal(nd_sync_parse_content_range("bytes -1-5/10", &a, &b, &t), -1);
    assert_int_equal(nd_sync_parse_content_range("bytes 1-5/10 junk", &a, &b, &t), -1);
    assert_int_equal(nd_sync_parse_content_range("items 1-5/10", &a, &b, &t), -1);
    assert_int_equal(nd_sync_parse_content_range("bytes 1-5/99999999999999999999999", &a, &b, &t), -1);
    assert_int_equal(nd_sync_parse_content_range(NULL, &a, &b, &t), -1);
}

static void test_resume_decide(void **state)
{
    (void)state;
    assert_int_equal(nd_sync_resume_decide(200, 0, NULL, 100), ND_RESUME_APPEND);
    assert_int_equal(nd_sync_resume_decide(200, 40, NULL, 100), ND_RESUME_RESTART);
    assert_int_equal(nd_sync_resume_decide(206, 40, "bytes 40-99/100", 100), ND_RESUME_APPEND);
    assert_int_equal(nd_sync_resume_decide(206, 40, "bytes 0-99/100", 100), ND_RESUME_FAIL);
    assert_int_equal(nd_sync_resume_decide(206, 40, "bytes 40-99/200", 100), ND_RESUME_FAIL);
    assert_int_equal(nd_sync_resume_decide(206, 40, "bytes 40-89/100", 100), ND_RESUME_FAIL);
    assert_int_equal(nd_sync_resume_decide(206, 40, NULL, 100), ND_RESUME_FAIL);
    assert_int_equal(nd_sync_resume_decide(206, 0, "bytes 0-99/100", 100), ND_RESUME_FAIL);
    assert_int_equal(nd_sync_resume_decide(416, 40, NULL, 100), ND_RESUME_FAIL);
}

/* ---- the thread against a small server ---- */

typedef struct {
    char path[256];
    char range[64];
    bool token_ok;
} req_log_t;

enum { MODE_OK, MODE_CUT_FIRST, MODE_IGNORE_RANGE, MODE_CORRUPT };

typedef struct {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t mu;
    char *list;         /* /v1/models body */
    struct {
        char url[128];
        unsigned char *data;
        size_t len;
    } blobs[4];
    int nblobs;
    int mode;
    int blob_gets;
    req_log_t log[64];
    int nlog;
} srv_t;

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void serve_one(srv_t *s, int c)
{
    char buf[4096];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        struct pollfd p = { c, POLLIN, 0 };
        if (poll(&p, 1, 2000) <= 0)
            return;
        ssize_t r = recv(c, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    char path[256] = "";
    sscanf(buf, "GET %255s", path);
    req_log_t e = { 0 };
    snprintf(e.path, sizeof(e.path), "%s", path);
    const char *rg = strcasestr(buf, "\r\nRange: bytes=");
    uint64_t from = 0;
    if (rg) {
        from = strtoull(rg + 15, NULL, 10);
        snprintf(e.range, sizeof(e.range), "%llu-", (unsigned long long)from);
    }
    e.token_ok = strstr(buf, "\r\nX-Node-Token: nt_test\r\n") != NULL;
    pthread_mutex_lock(&s->mu);
    if (s->nlog < 64)
        s->log[s->nlog++] = e;
    int mode = s->mode;
    char *list = s->list ? cm_xstrdup(s->list) : NULL;
    int blob = -1;
    for (int i = 0; i < s->nblobs; i++)
        if (strcmp(s->blobs[i].url, path) == 0)
            blob = i;
    int nth = blob >= 0 ? s->blob_gets++ : 0;
    pthread_mutex_unlock(&s->mu);
    char head[512];
    if (!e.token_ok) {
        const char *b = "{\"error\":{\"message\":\"no token\"}}";
        int n = snprintf(head, sizeof(head), "HTTP/1.1 401 Unauthorized\r\nContent-Length: %zu\r\n\r\n", strlen(b));
        send_all(c, head, (size_t)n);
        send_all(c, b, strlen(b));
    } else if (strcmp(path, "/v1/models") == 0 && list) {
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                         strlen(list));
        send_all(c, head, (size_t)n);
        send_all(c, list, strlen(list));
    } else if (blob >= 0) {
        const unsigned char *d = s->blobs[blob].data;
        size_t total = s->blobs[blob].len;
        if (mode == MODE_IGNORE_RANGE)
            from = 0;
        if (from >= total)
            from = 0;
        size_t body = total - from;
        int n = from ? snprintf(head, sizeof(head),
                                "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\n"
                                "Content-Range: bytes %llu-%zu/%zu\r\n\r\n",
                                body, (unsigned long long)from, total - 1, total)
                     : snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", total);
        send_all(c, head, (size_t)n);
        if (mode == MODE_CORRUPT) {
            unsigned char *bad = cm_xmalloc(body);
            memcpy(bad, d + from, body);
            bad[body / 2] ^= 0xff;
            send_all(c, bad, body);
            free(bad);
        } else if ((mode == MODE_CUT_FIRST || mode == MODE_IGNORE_RANGE) && nth == 0) {
            send_all(c, d + from, body / 2); /* then the connection drops */
        } else {
            send_all(c, d + from, body);
        }
    } else {
        const char *b = "{\"error\":{\"message\":\"not found\"}}";
        int n = snprintf(head, sizeof(head), "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\n\r\n", strlen(b));
        send_all(c, head, (size_t)n);
        send_all(c, b, strlen(b));
    }
    free(list);
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = { s->fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(s, c);
        close(c); /* one request per connection */
    }
    return NULL;
}

static void srv_start(srv_t *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(srv_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
    free(s->list);
    for (int i = 0; i < s->nblobs; i++)
        free(s->blobs[i].data);
    pthread_mutex_destroy(&s->mu);
}

static void sha_hex(const unsigned char *d, size_t n, char out[65])
{
    unsigned char h[32];
    crypto_hash_sha256(h, d, n);
    sodium_bin2hex(out, 65, h, 32);
}

/* A fake GGUF (the scan only looks at names) of n bytes. */
static unsigned char *blob_bytes(size_t n, unsigned seed)
{
    unsigned char *d = cm_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char)(i * 31u + seed);
    return d;
}

static void srv_add_blob(srv_t *s, const char *url, unsigned char *d, size_t n)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->blobs[s->nblobs].url, sizeof(s->blobs[0].url), "%s", url);
    s->blobs[s->nblobs].data = d;
    s->blobs[s->nblobs].len = n;
    s->nblobs++;
    pthread_mutex_unlock(&s->mu);
}

static void srv_set_list(srv_t *s, const char *list)
{
    pthread_mutex_lock(&s->mu);
    free(s->list);
    s->list = cm_xstrdup(list);
    pthread_mutex_unlock(&s->mu);
}

static bool token_fn(void *ud, char *buf, size_t len)
{
    (void)ud;
    snprintf(buf, len, "nt_test");
    return true;
}

typedef struct {
    srv_t srv;
    char dir[64];
    nd_models_t *models;
    nd_sync_t *sync;
    char url[64];
} fx_t;

static void fx_start(fx_t *f, bool shared)
{
    srv_start(&f->srv);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_nd_sync.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->models = nd_models_new(f->dir);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/", f->srv.port);
    nd_sync_opts_t o = { .router_url = f->url, .models_dir = f->dir, .models = f->models, .interval_s = 0,
                         .concurrency = 2, .shared = shared, .token = token_fn };
    f->sync = nd_sync_start(&o);
    assert_non_null(f->sync);
}

static void fx_stop(fx_t *f)
{
    nd_sync_stop(f->sync);
    nd_models_free(f->models);
    srv_stop(&f->srv);
    char *cmd = cm_xasprintf("rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* Waits (at most 10 s) until the sync has finished `passes` passes (their
 * fetches included). */
static void wait_passes(fx_t *f, uint64_t passes)
{
    for (int i = 0; i < 1000; i++) {
        nd_sync_stats_t st;
        nd_sync_stats(f->sync, &st);
        if (st.passes_done >= passes)
            return;
        nanosleep(&(struct timespec){ .tv_nsec = 10000000L }, NULL);
    }
    fail_msg("the sync did not finish %llu passes in 10 s", (unsigned long long)passes);
}

static char *list_one(const char *id, const char *file, size_t size, const char *sha, const char *path)
{
    char *p = path ? cm_xasprintf(",\"path\":\"%s\"", path) : cm_xstrdup("");
    char *s = cm_xasprintf("{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\",\"registered\":true,"
                           "\"size\":%zu,\"sha256\":\"%s\",\"blob_url\":\"/api/models/blob/%s\",\"files\":[{\"name\":"
                           "\"%s\",\"size\":%zu,\"sha256\":\"%s\"%s,\"blob_url\":\"/api/models/blob/%s\"}]}]}",
                           id, size, sha, id, file, size, sha, p, id);
    free(p);
    return s;
}

static bool file_equals(const char *path, const unsigned char *d, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    bool eq = cm_read_file(path, n + 1, &text, &len) == 0 && len == n && memcmp(text, d, n) == 0;
    free(text);
    return eq;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int count_log(srv_t *s, const char *path, bool ranged)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nlog; i++)
        if (strcmp(s->log[i].path, path) == 0 && (s->log[i].range[0] != '\0') == ranged)
            n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void run_download(int mode, bool expect_ok)
{
    fx_t f;
    fx_start(&f, true);
    f.srv.mode = mode;
    size_t n = 3 * 1024 * 1024 + 17;
    unsigned char *d = blob_bytes(n, (unsigned)mode);
    char sha[65];
    sha_hex(d, n, sha);
    srv_add_blob(&f.srv, "/api/models/blob/tiny", d, n);
    char *list = list_one("tiny", "tiny.Q4_K_M.gguf", n, sha, "/nonexistent/tiny.Q4_K_M.gguf");
    srv_set_list(&f.srv, list);
    free(list);
    nd_sync_kick(f.sync);
    wait_passes(&f, 1);
    char *file = cm_xasprintf("%s/tiny/tiny.Q4_K_M.gguf", f.dir);
    char *part = cm_xasprintf("%s.part", file);
    char *path = nd_models_path(f.models, "tiny");
    cJSON *p = nd_sync_progress_json(f.sync);
    assert_int_equal(cJSON_GetArraySize(p), 1);
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(p, 0), "state"));
    nd_sync_stats_t st;
    nd_sync_stats(f.sync, &st);
    if (expect_ok) {
        assert_string_equal(state, "ready");
        assert_true(file_equals(file, d, n));
        assert_false(exists(part));
        assert_non_null(path);
        assert_string_equal(path, file); /* the scan gives the router's id */
        assert_int_equal(st.models_downloaded, 1);
        if (mode == MODE_CUT_FIRST) {
            /* the second request asked for the rest */
            assert_int_equal(count_log(&f.srv, "/api/models/blob/tiny", false), 1);
            assert_int_equal(count_log(&f.srv, "/api/models/blob/tiny", true), 1);
        } else if (mode == MODE_IGNORE_RANGE) {
            /* it asked for the rest, got the whole file, started again */
            assert_int_equal(count_log(&f.srv, "/api/models/blob/tiny", true), 1);
        } else {
            assert_int_equal(st.blob_requests, 1);
        }
    } else {
        assert_string_equal(state, "failed");
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(p, 0), "error"));
        assert_non_null(strstr(err, "SHA-256 mismatch"));
        assert_false(exists(file));
        assert_false(exists(part));
        assert_null(path);
        assert_int_equal(st.failures, 1);
    }
    cJSON_Delete(p);
    /* the next pass finds it served: no new request */
    int before = f.srv.nlog;
    nd_sync_kick(f.sync);
    wait_passes(&f, 2);
    if (expect_ok)
        assert_int_equal(f.srv.nlog, before + 1); /* the list only */
    /* removed on the router: the directory sync made goes */
    srv_set_list(&f.srv, "{\"object\":\"list\",\"data\":[]}");
    nd_sync_kick(f.sync);
    wait_passes(&f, 3);
    char *mdir = cm_xasprintf("%s/tiny", f.dir);
    assert_false(exists(mdir));
    free(mdir);
    char *path2 = nd_models_path(f.models, "tiny");
    assert_null(path2);
    free(path);
    free(file);
    free(part);
    fx_stop(&f);
}

static void test_download(void **state)
{
    (void)state;
    run_download(MODE_OK, true);
}

static void test_download_cut_resumes(void **state)
{
    (void)state;
    run_download(MODE_CUT_FIRST, true);
}

static void test_download_range_ignored(void **state)
{
    (void)state;
    run_download(MODE_IGNORE_RANGE, true);
}

static void test_download_corrupt(void **state)
{
    (void)state;
    run_download(MODE_CORRUPT, false);
}

static void test_shared_and_hand_placed(void **state)
{
    (void)state;
    fx_t f;
    fx_start(&f, true);
    /* the router's file, readable here */
    char rdir[] = "/tmp/test_nd_sync_router.XXXXXX";
    assert_non_null(mkdtemp(rdir));
    size_t n = 4096;
    unsigned char *d = blob_bytes(n, 7);
    char sha[65];
    sha_hex(d, n, sha);
    char *rfile = cm_xasprintf("%s/shared.Q8_0.gguf", rdir);
    assert_int_equal(cm_write_file(rfile, d, n, 0644), 0);
    srv_add_blob(&f.srv, "/api/models/blob/shared", d, n);
    /* and a model the operator placed by hand under a registered id */
    char *hand = cm_xasprintf("%s/hand.gguf", f.dir);
    assert_int_equal(cm_write_file(hand, "x", 1, 0644), 0);
    char *l1 = list_one("shared", "shared.Q8_0.gguf", n, sha, rfile);
    char *l2 = list_one("hand", "hand.gguf", 1, SHA_A, NULL);
    /* both items in one list */
    char *list = cm_xasprintf("%.*s,%s", (int)(strlen(l1) - 2), l1, strstr(l2, "[{") + 1);
    srv_set_list(&f.srv, list);
    nd_sync_kick(f.sync);
    wait_passes(&f, 1);
    char *link = cm_xasprintf("%s/shared/shared.Q8_0.gguf", f.dir);
    char target[512] = "";
    ssize_t tl = readlink(link, target, sizeof(target) - 1);
    assert_true(tl > 0);
    target[tl] = '\0';
    assert_string_equal(target, rfile);
    char *path = nd_models_path(f.models, "shared");
    assert_string_equal(path, link);
    free(path);
    nd_sync_stats_t st;
    nd_sync_stats(f.sync, &st);
    assert_int_equal(st.models_shared, 1);
    assert_int_equal(st.blob_requests, 0); /* nothing downloaded */
    assert_int_equal(count_log(&f.srv, "/api/models/blob/shared", false), 0);
    assert_int_equal(count_log(&f.srv, "/api/models/blob/hand", false), 0);
    /* removed on the router: the link goes, the router's file and the
     * operator's file stay */
    srv_set_list(&f.srv, "{\"object\":\"list\",\"data\":[]}");
    nd_sync_kick(f.sync);
    wait_passes(&f, 2);
    assert_false(exists(link));
    assert_true(file_equals(rfile, d, n));
    assert_true(exists(hand));
    path = nd_models_path(f.models, "hand");
    assert_non_null(path);
    free(path);
    free(l1);
    free(l2);
    free(list);
    free(link);
    free(hand);
    unlink(rfile);
    rmdir(rdir);
    free(rfile);
    fx_stop(&f);
}

static void test_split_download(void **state)
{
    (void)state;
    fx_t f;
    fx_start(&f, false); /* shared off: download even though the path is readable */
    size_t n1 = 100000, n2 = 50001;
    unsigned char *d1 = blob_bytes(n1, 1), *d2 = blob_bytes(n2, 2);
    char s1[65], s2[65];
    sha_hex(d1, n1, s1);
    sha_hex(d2, n2, s2);
    srv_add_blob(&f.srv, "/api/models/blob/big", d1, n1);
    srv_add_blob(&f.srv, "/api/models/blob/big/big-00002-of-00002.gguf", d2, n2);
    char *list = cm_xasprintf(
        "{\"data\":[{\"id\":\"big\",\"registered\":true,\"files\":["
        "{\"name\":\"big-00001-of-00002.gguf\",\"size\":%zu,\"sha256\":\"%s\",\"path\":\"/etc/hostname\","
        "\"blob_url\":\"/api/models/blob/big\"},"
        "{\"name\":\"big-00002-of-00002.gguf\",\"size\":%zu,\"sha256\":\"%s\","
        "\"blob_url\":\"/api/models/blob/big/big-00002-of-00002.gguf\"}]}]}",
        n1, s1, n2, s2);
    srv_set_list(&f.srv, list);
    free(list);
    nd_sync_kick(f.sync);
    wait_passes(&f, 1);
    char *p1 = cm_xasprintf("%s/big/big-00001-of-00002.gguf", f.dir);
    char *p2 = cm_xasprintf("%s/big/big-00002-of-00002.gguf", f.dir);
    assert_true(file_equals(p1, d1, n1));
    assert_true(file_equals(p2, d2, n2));
    char *path = nd_models_path(f.models, "big");
    assert_non_null(path);
    assert_string_equal(path, p1); /* the first part is what llama.cpp opens */
    free(path);
    cJSON *p = nd_sync_progress_json(f.sync);
    const cJSON *e = cJSON_GetArrayItem(p, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "state")), "ready");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "bytes")), (int)(n1 + n2));
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "total")), (int)(n1 + n2));
    cJSON_Delete(p);
    free(p1);
    free(p2);
    fx_stop(&f);
}

/* a directory with an incomplete split set is not a model; a complete one
 * is, under the directory's name, opened at its first part */
static void test_scan_split_layout(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_nd_sync_scan.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *a = cm_xasprintf("%s/whole", dir), *b = cm_xasprintf("%s/half", dir), *c = cm_xasprintf("%s/two", dir);
    assert_int_equal(cm_mkdir_p(a, 0755), 0);
    assert_int_equal(cm_mkdir_p(b, 0755), 0);
    assert_int_equal(cm_mkdir_p(c, 0755), 0);
    const char *files[][2] = { { "whole", "m-00002-of-00003.gguf" }, { "whole", "m-00001-of-00003.gguf" },
                               { "whole", "m-00003-of-00003.gguf" }, { "half", "m-00001-of-00002.gguf" },
                               { "half", "m-00002-of-00002.gguf.part" }, { "two", "a.gguf" },
                               { "two", "b.gguf" } };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = cm_xasprintf("%s/%s/%s", dir, files[i][0], files[i][1]);
        assert_int_equal(cm_write_file(p, "x", 1, 0644), 0);
        free(p);
    }
    nd_models_t *m = nd_models_new(dir);
    assert_int_equal(nd_models_scan(m), 1);
    char *path = nd_models_path(m, "whole");
    char *want = cm_xasprintf("%s/m-00001-of-00003.gguf", a);
    assert_string_equal(path, want);
    assert_null(nd_models_path(m, "half"));
    assert_null(nd_models_path(m, "two"));
    free(path);
    free(want);
    nd_models_free(m);
    char *cmd = cm_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(a);
    free(b);
    free(c);
}

static void test_progress_null(void **state)
{
    (void)state;
    cJSON *a = nd_sync_progress_json(NULL);
    assert_true(cJSON_IsArray(a));
    assert_int_equal(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);
    nd_sync_stats_t st;
    nd_sync_stats(NULL, &st);
    assert_int_equal(st.passes, 0);
    nd_sync_kick(NULL);
    nd_sync_stop(NULL);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safe_name),
        cmocka_unit_test(test_parse_list),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_content_range),
        cmocka_unit_test(test_resume_decide),
        cmocka_unit_test(test_download),
        cmocka_unit_test(test_download_cut_resumes),
        cmocka_unit_test(test_download_range_ignored),
        cmocka_unit_test(test_download_corrupt),
        cmocka_unit_test(test_shared_and_hand_placed),
        cmocka_unit_test(test_split_download),
        cmocka_unit_test(test_scan_split_layout),
        cmocka_unit_test(test_progress_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
