/* sync: the node's model sync thread (the contract is in sync.h; the pure
 * decisions are in sync_plan.c). */
#include "sync_int.h"

#include "json.h"
#include "log.h"
#include "models.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* The router's /v1/models for a node: a few KiB per model. */
#define MAX_LIST_BYTES (8 * 1024 * 1024)
#define MAX_MODELS 1024
#define LIST_TIMEOUT_MS 30000L
#define CONNECT_TIMEOUT_MS 10000L
/* Without a token yet, or after a failed list read, look again this soon. */
#define RETRY_MS 2000L
#define TOKEN_MAX 256
#define MARKER ".synced"
#define MAX_MARKER_BYTES 4096

/* ---- progress ---- */

static progress_t *prog_slot(nd_sync_t *s, const char *id)
{
    progress_t *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < ND_SYNC_MAX_PROGRESS; i++) {
        progress_t *p = &s->prog[i];
        if (p->state && strcmp(p->model, id) == 0)
            return p;
        if (!p->state && !free_slot)
            free_slot = p;
        if (p->state && !p->active && (!oldest || p->updated_ms < oldest->updated_ms))
            oldest = p;
    }
    progress_t *p = free_slot ? free_slot : oldest;
    if (p) {
        memset(p, 0, sizeof(*p));
        snprintf(p->model, sizeof(p->model), "%s", id);
    }
    return p; /* NULL: 32 fetches at once, the newest is not shown */
}

void nd_sync_set_progress(nd_sync_t *s, const char *id, const char *state, uint64_t bytes, uint64_t total,
                         const char *error)
{
    pthread_mutex_lock(&s->mu);
    progress_t *p = prog_slot(s, id);
    if (p) {
        p->state = state;
        p->bytes = bytes;
        p->total = total;
        p->active = strcmp(state, "downloading") == 0 || strcmp(state, "verifying") == 0;
        snprintf(p->error, sizeof(p->error), "%s", error ? error : "");
        p->updated_ms = cm_now_ms();
    }
    pthread_mutex_unlock(&s->mu);
}

static void drop_progress(nd_sync_t *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < ND_SYNC_MAX_PROGRESS; i++)
        if (s->prog[i].state && strcmp(s->prog[i].model, id) == 0)
            memset(&s->prog[i], 0, sizeof(s->prog[i]));
    pthread_mutex_unlock(&s->mu);
}

cJSON *nd_sync_progress_json(nd_sync_t *s)
{
    cJSON *a = cJSON_CreateArray();
    if (!s)
        return a;
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < ND_SYNC_MAX_PROGRESS; i++) {
        progress_t *p = &s->prog[i];
        if (!p->state)
            continue;
        bool done = strcmp(p->state, "ready") == 0;
        if (done && now - p->updated_ms > ND_SYNC_DONE_KEEP_S * 1000ULL) {
            memset(p, 0, sizeof(*p));
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", p->model);
        cJSON_AddStringToObject(o, "state", p->state);
        cJSON_AddNumberToObject(o, "bytes", (double)p->bytes);
        cJSON_AddNumberToObject(o, "total", (double)p->total);
        if (p->error[0])
            cJSON_AddStringToObject(o, "error", p->error);
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&s->mu);
    return a;
}

void nd_sync_stats(nd_sync_t *s, nd_sync_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}


bool nd_sync_stopping(nd_sync_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool v = s->stop;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* Sleeps up to ms (monotonic) unless stopped or, with wake_on_kick, kicked.
 * Returns true when stopping. */
bool nd_sync_nap(nd_sync_t *s, long ms, bool wake_on_kick)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->stop && !(wake_on_kick && s->kicked) && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0) {
    }
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* ---- HTTP ---- */

typedef struct {
    char *data;
    size_t len;
    bool overflow;
} buf_t;

static size_t on_list_data(char *p, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;
    size_t k = size * n;
    if (b->len + k > MAX_LIST_BYTES) {
        b->overflow = true;
        return 0;
    }
    b->data = cm_xrealloc(b->data, b->len + k + 1);
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

static int on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return nd_sync_stopping(ud) ? 1 : 0; /* non-zero aborts the transfer */
}

/* An easy handle for url with the node token; the header list goes to *h. */
CURL *nd_sync_easy(nd_sync_t *s, const char *url, const char *token, struct curl_slist **h)
{
    CURL *c = curl_easy_init();
    char *hdr = cm_xasprintf("X-Node-Token: %s", token);
    *h = curl_slist_append(NULL, hdr);
    sodium_memzero(hdr, strlen(hdr));
    free(hdr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *h);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    /* the router's own paths only: a redirect could carry the token away */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    return c;
}

void nd_sync_easy_free(CURL *c, struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        sodium_memzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* GET /v1/models: the parsed reply, or NULL (with the reason logged). */
static cJSON *read_list(nd_sync_t *s, const char *token)
{
    char *url = cm_xasprintf("%s/v1/models", s->url);
    struct curl_slist *h;
    CURL *c = nd_sync_easy(s, url, token, &h);
    buf_t b = { 0 };
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_list_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, LIST_TIMEOUT_MS);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    nd_sync_easy_free(c, h);
    cJSON *j = NULL;
    if (rc != CURLE_OK)
        LOG_WARN("sync", "GET %s: %s", url, b.overflow ? "reply too large" : curl_easy_strerror(rc));
    else if (status != 200)
        LOG_WARN("sync", "GET %s: HTTP %ld", url, status);
    else if (!(j = b.data ? cm_json_parse(b.data, b.len) : NULL) || !cJSON_IsObject(j))
        LOG_WARN("sync", "GET %s: not a JSON object", url);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    free(b.data);
    free(url);
    return j;
}

/* ---- files ---- */

static char *model_dir(nd_sync_t *s, const char *id)
{
    return cm_xasprintf("%s/%s", s->dir, id);
}

void nd_sync_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The marker's sha256 (a new string, "" when it has none), or NULL when the
 * directory has no marker. */
static char *read_marker(const char *dir)
{
    char *path = cm_xasprintf("%s/" MARKER, dir), *text = NULL, *sha = NULL;
    size_t len;
    if (cm_read_file(path, MAX_MARKER_BYTES, &text, &len) == 0) {
        cJSON *j = cm_json_parse(text, len);
        const char *v = NULL;
        sha = cm_xstrdup(j && cm_json_str(j, "sha256", &v) == CM_JSON_OK ? v : "");
        cJSON_Delete(j);
    }
    free(text);
    free(path);
    return sha;
}

static int write_marker(const char *dir, const nd_sync_remote_t *r, const char *mode)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", r->id);
    cJSON_AddStringToObject(j, "sha256", r->sha256);
    cJSON_AddStringToObject(j, "mode", mode);
    cJSON_AddStringToObject(j, "note", "placed by llm-node's model sync: removed when the router deletes the model");
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char *path = cm_xasprintf("%s/" MARKER, dir);
    int rc = cm_write_file(path, t, strlen(t), 0644);
    free(path);
    free(t);
    return rc;
}

/* Removes a directory sync made: its entries (files, symlinks: unlinked,
 * never followed) and then itself. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = cm_xasprintf("%s/%s", dir, de->d_name);
        if (unlink(p) != 0 && errno != ENOENT)
            LOG_WARN("sync", "cannot remove %s: %s", p, strerror(errno));
        free(p);
    }
    if (d)
        closedir(d);
    if (rmdir(dir) != 0 && errno != ENOENT)
        LOG_WARN("sync", "cannot remove %s: %s", dir, strerror(errno));
}

/* The local state: the marked directories, and every id the models list
 * holds (present). Strings owned by *ids (freed by free_locals). */
static size_t read_locals(nd_sync_t *s, const nd_sync_remote_t *r, size_t nr, nd_sync_local_t **out)
{
    size_t n = 0, cap = 16;
    nd_sync_local_t *l = cm_xcalloc(cap, sizeof(*l));
    DIR *d = opendir(s->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!nd_sync_safe_name(de->d_name))
            continue;
        char *dir = model_dir(s, de->d_name);
        char *sha = read_marker(dir);
        free(dir);
        if (!sha)
            continue;
        if (n == cap)
            l = cm_xrealloc(l, (cap *= 2) * sizeof(*l));
        char *p = nd_models_path(s->models, de->d_name);
        l[n++] = (nd_sync_local_t){ cm_xstrdup(de->d_name), p != NULL, true, sha };
        free(p);
    }
    if (d)
        closedir(d);
    /* the remote ids this node serves without a marker (the operator's) */
    for (size_t i = 0; i < nr; i++) {
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(l[j].id, r[i].id) == 0;
        char *p = seen ? NULL : nd_models_path(s->models, r[i].id);
        if (p) {
            if (n == cap)
                l = cm_xrealloc(l, (cap *= 2) * sizeof(*l));
            l[n++] = (nd_sync_local_t){ cm_xstrdup(r[i].id), true, false, NULL };
        }
        free(p);
    }
    *out = l;
    return n;
}

static void free_locals(nd_sync_local_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)l[i].id);
        free((char *)l[i].synced_sha256);
    }
    free(l);
}

/* ---- shared storage ---- */

/* Every file's path is a readable regular file here of the listed size. */
static bool shared_usable(const nd_sync_remote_t *r)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        const nd_sync_file_t *f = &r->files[i];
        size_t n = f->path ? strlen(f->path) : 0;
        /* an absolute path to a GGUF: the router's list cannot point the
         * node's models directory at any other file */
        if (n <= 5 || f->path[0] != '/' || strcasecmp(f->path + n - 5, ".gguf") != 0)
            return false;
        int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == f->size;
        if (fd >= 0)
            close(fd);
        if (!ok)
            return false;
    }
    return true;
}

/* Symlinks <dir>/<name> -> path for every file (each made under a hidden
 * name, then renamed: the scan never sees half a link). */
static int link_shared(const char *dir, const nd_sync_remote_t *r, char *err, size_t errlen)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        char *tmp = cm_xasprintf("%s/.%s.link", dir, r->files[i].name);
        char *dst = cm_xasprintf("%s/%s", dir, r->files[i].name);
        unlink(tmp);
        int rc = symlink(r->files[i].path, tmp) == 0 && rename(tmp, dst) == 0 ? 0 : -1;
        if (rc != 0) {
            snprintf(err, errlen, "cannot link %s: %s", dst, strerror(errno));
            unlink(tmp);
        }
        free(tmp);
        free(dst);
        if (rc != 0)
            return -1;
    }
    nd_sync_fsync_dir(dir);
    return 0;
}

/* Fetches one model: shared in place, else downloaded. */
static void fetch_model(nd_sync_t *s, const nd_sync_remote_t *r, const char *token)
{
    char err[512] = "";
    char *dir = model_dir(s, r->id), *marker = NULL;
    bool shared = s->shared && shared_usable(r);
    struct stat st;
    int rc = -1;
    if (stat(dir, &st) == 0 && !(marker = read_marker(dir))) {
        snprintf(err, sizeof(err), "%s exists and was not made by sync: left alone", dir);
        goto out;
    }
    if (cm_mkdir_p(dir, 0755) != 0 || write_marker(dir, r, shared ? "shared" : "download") != 0) {
        snprintf(err, sizeof(err), "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    if (shared) {
        rc = link_shared(dir, r, err, sizeof(err));
    } else {
        LOG_INFO("sync", "%s: downloading %llu bytes from the router", r->id, (unsigned long long)r->size);
        nd_sync_set_progress(s, r->id, "downloading", 0, r->size, NULL);
        uint64_t t0 = cm_now_ms();
        rc = nd_sync_download(s, r, dir, token, err, sizeof(err));
        if (rc == 0)
            LOG_INFO("sync", "%s: downloaded and verified in %llu ms", r->id, (unsigned long long)(cm_now_ms() - t0));
    }
out:
    if (rc == 0) {
        nd_models_scan(s->models); /* the next heartbeat advertises it */
        nd_sync_set_progress(s, r->id, "ready", r->size, r->size, NULL);
        if (shared) {
            LOG_INFO("sync", "%s: using the router's file in place (%s)", r->id, r->files[0].path);
            COUNT(s, models_shared, 1);
        } else {
            COUNT(s, models_downloaded, 1);
        }
    } else {
        LOG_WARN("sync", "%s: %s", r->id, err);
        nd_sync_set_progress(s, r->id, "failed", 0, r->size, err);
        COUNT(s, failures, 1);
    }
    free(marker);
    free(dir);
}

/* ---- a pass ---- */

typedef struct {
    nd_sync_t *s;
    const nd_sync_remote_t *const *jobs;
    size_t njobs, next;
    pthread_mutex_t mu;
    const char *token;
} pool_t;

static void *pool_main(void *arg)
{
    pool_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->njobs && !nd_sync_stopping(p->s) ? p->next++ : p->njobs;
        pthread_mutex_unlock(&p->mu);
        if (i == p->njobs)
            return NULL;
        fetch_model(p->s, p->jobs[i], p->token);
    }
}

/* Runs the fetches, at most concurrency at once (this thread is one). */
static void run_fetches(nd_sync_t *s, const nd_sync_remote_t *const *jobs, size_t n, const char *token)
{
    pool_t p = { .s = s, .jobs = jobs, .njobs = n, .token = token };
    pthread_mutex_init(&p.mu, NULL);
    size_t extra = (size_t)s->concurrency - 1 < n ? (size_t)s->concurrency - 1 : (n ? n - 1 : 0);
    pthread_t *t = cm_xcalloc(extra + 1, sizeof(*t));
    size_t started = 0;
    for (; started < extra; started++)
        if (pthread_create(&t[started], NULL, pool_main, &p) != 0)
            break;
    pool_main(&p);
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    pthread_mutex_destroy(&p.mu);
}

static void remove_model(nd_sync_t *s, const char *id, const char *why)
{
    char *dir = model_dir(s, id);
    LOG_INFO("sync", "%s: %s: removing %s (placed by sync)", id, why, dir);
    remove_dir(dir);
    free(dir);
    drop_progress(s, id);
    COUNT(s, models_removed, 1);
}

/* One pass. 0, or -1 when the list could not be read. */
static int pass(nd_sync_t *s, const char *token)
{
    cJSON *list = read_list(s, token);
    if (!list) {
        COUNT(s, list_failures, 1);
        return -1;
    }
    COUNT(s, passes, 1);
    nd_sync_remote_t *r = cm_xcalloc(MAX_MODELS, sizeof(*r));
    size_t rejected = 0;
    size_t nr = nd_sync_parse_list(cJSON_GetObjectItemCaseSensitive(list, "data"), r, MAX_MODELS, &rejected);
    if (rejected)
        LOG_WARN("sync", "%zu registered model(s) in the router's list are malformed or unsafe: skipped", rejected);
    nd_models_scan(s->models);
    nd_sync_local_t *l;
    size_t nl = read_locals(s, r, nr, &l);
    size_t max = nr + nl;
    nd_sync_action_t *a = cm_xcalloc(max + 1, sizeof(*a));
    size_t na = nd_sync_plan(r, nr, l, nl, a, max);
    const nd_sync_remote_t **jobs = cm_xcalloc(na + 1, sizeof(*jobs));
    size_t nj = 0;
    bool removed = false;
    for (size_t i = 0; i < na; i++) {
        if (a[i].kind == ND_SYNC_REMOVE) {
            remove_model(s, l[a[i].index].id, "no longer registered on the router");
            removed = true;
        } else {
            if (a[i].kind == ND_SYNC_REPLACE) {
                remove_model(s, r[a[i].index].id, "its SHA-256 changed on the router");
                removed = true;
            }
            jobs[nj++] = &r[a[i].index];
        }
    }
    if (removed)
        nd_models_scan(s->models);
    for (size_t i = 0; i < nj; i++)
        nd_sync_set_progress(s, jobs[i]->id, "queued", 0, jobs[i]->size, NULL);
    run_fetches(s, jobs, nj, token);
    COUNT(s, passes_done, 1);
    free(jobs);
    free(a);
    free_locals(l, nl);
    free(r);
    cJSON_Delete(list);
    return 0;
}

static void *sync_main(void *arg)
{
    nd_sync_t *s = arg;
    pthread_setname_np(pthread_self(), "model-sync");
    char token[TOKEN_MAX];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        s->kicked = false;
        pthread_mutex_unlock(&s->mu);
        long wait = RETRY_MS;
        if (s->token(s->token_ud, token, sizeof(token))) {
            if (pass(s, token) == 0)
                wait = s->interval_s > 0 ? s->interval_s * 1000L : 24L * 3600 * 1000;
            sodium_memzero(token, sizeof(token));
        }
        if (nd_sync_nap(s, wait, true))
            break;
    }
    return NULL;
}

nd_sync_t *nd_sync_start(const nd_sync_opts_t *o)
{
    nd_sync_t *s = cm_xcalloc(1, sizeof(*s));
    s->url = cm_xstrdup(o->router_url);
    size_t n = strlen(s->url);
    while (n && s->url[n - 1] == '/')
        s->url[--n] = '\0';
    s->dir = cm_xstrdup(o->models_dir);
    s->models = o->models;
    s->interval_s = o->interval_s;
    s->concurrency = o->concurrency > 0 ? o->concurrency : 1;
    s->shared = o->shared;
    s->token = o->token;
    s->token_ud = o->token_ud;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, sync_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s->url);
        free(s->dir);
        free(s);
        return NULL;
    }
    return s;
}

void nd_sync_kick(nd_sync_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->kicked = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void nd_sync_stop(nd_sync_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->url);
    free(s->dir);
    free(s);
}
