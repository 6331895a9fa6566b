/* downloads: the task list, its threads, persistence and JSON (see
 * downloads.h). Register and convert requests are in downloads_new.c, a
 * task's work in downloads_run.c.
 *
 * Every task lives in one list (oldest first) under mu; the queue is the
 * list's queued tasks in order, so resumed tasks keep their place. A thread
 * takes the oldest queued task, marks it running and works without the lock,
 * taking it only to publish progress. Rows are written through the store's
 * writer queue (rt_store_task_put), which keeps one task's writes in order. */
#include "models/downloads_int.h"

#include "json.h"
#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *dup_or_null(const char *s) { return s ? cm_xstrdup(s) : NULL; }

bool dl_state_active(const char *s)
{
    return strcmp(s, "queued") == 0 || strcmp(s, "downloading") == 0 || strcmp(s, "verifying") == 0 ||
           strcmp(s, "converting") == 0;
}

static void uuid(char out[40])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

dl_task_t *dl_task_new(bool convert, const char *repo, const char *revision)
{
    dl_task_t *t = cm_xcalloc(1, sizeof(*t));
    uuid(t->id);
    t->convert = convert;
    t->repo = cm_xstrdup(repo);
    t->revision = cm_xstrdup(revision);
    snprintf(t->state, sizeof(t->state), "queued");
    t->eta_s = -1;
    t->created_ms = t->updated_ms = (int64_t)cm_wall_ms();
    atomic_init(&t->cancel, false);
    return t;
}

const char *dl_rev(const dl_task_t *t) { return t->commit ? t->commit : t->revision; }

void dl_task_free(dl_task_t *t)
{
    if (!t)
        return;
    free(t->repo);
    free(t->revision);
    free(t->filename);
    free(t->model_id);
    free(t->commit);
    free(t->outtype);
    free(t->name);
    for (size_t i = 0; i < t->nfiles; i++)
        free(t->files[i].path);
    free(t->files);
    free(t->error);
    free(t->log);
    free(t);
}

/* ---- persistence ---- */

static cJSON *files_json(const dl_task_t *t)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < t->nfiles; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->files[i].path);
        cJSON_AddNumberToObject(o, "size", (double)t->files[i].size);
        cJSON_AddStringToObject(o, "sha256", t->files[i].sha256);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* The log as valid UTF-8 (a converter prints what it likes). */
static char *log_text(const dl_task_t *t)
{
    if (!t->log)
        return NULL;
    size_t cap = t->log_len * 3 + 1;
    char *s = cm_xmalloc(cap);
    cm_utf8_sanitize(s, cap, t->log, t->log_len);
    return s;
}

void dl_persist_locked(rt_downloads_t *d, dl_task_t *t)
{
    cJSON *f = files_json(t), *p = cJSON_CreateObject();
    if (t->outtype)
        cJSON_AddStringToObject(p, "outtype", t->outtype);
    if (t->name)
        cJSON_AddStringToObject(p, "name", t->name);
    if (t->commit)
        cJSON_AddStringToObject(p, "commit", t->commit);
    t->updated_ms = (int64_t)cm_wall_ms();
    rt_task_rec_t r = {
        .id = t->id,
        .kind = t->convert ? "convert" : "download",
        .repo = t->repo,
        .revision = t->revision,
        .filename = t->filename,
        .model_id = t->model_id,
        .files_json = cm_json_print(f),
        .state = t->state,
        .bytes_done = (int64_t)t->bytes_done,
        .bytes_total = (int64_t)t->bytes_total,
        .error = t->error,
        .log = log_text(t),
        .params_json = cm_json_print(p),
        .created_at = t->created_ms,
        .updated_at = t->updated_ms,
    };
    rt_store_task_put(d->st, &r);
    free(r.files_json);
    free(r.log);
    free(r.params_json);
    cJSON_Delete(f);
    cJSON_Delete(p);
}

void dl_set_state(rt_downloads_t *d, dl_task_t *t, const char *state, const char *error)
{
    pthread_mutex_lock(&d->mu);
    snprintf(t->state, sizeof(t->state), "%s", state);
    if (error) {
        free(t->error);
        t->error = cm_xstrdup(error);
    }
    if (strcmp(state, "ready") == 0)
        t->bytes_done = t->bytes_total;
    if (!dl_state_active(state)) {
        t->speed_bps = 0;
        t->eta_s = strcmp(state, "ready") == 0 ? 0 : -1;
    }
    dl_persist_locked(d, t);
    pthread_mutex_unlock(&d->mu);
}

void dl_task_add(rt_downloads_t *d, dl_task_t *t)
{
    pthread_mutex_lock(&d->mu);
    if (d->tail)
        d->tail->next = t;
    else
        d->head = t;
    d->tail = t;
    dl_persist_locked(d, t);
    pthread_cond_signal(&d->work);
    pthread_mutex_unlock(&d->mu);
}

/* A persisted row back as a task; unfinished ones are queued again. */
static void load_row(const rt_task_rec_t *r, void *arg)
{
    rt_downloads_t *d = arg;
    if (!r->id || strlen(r->id) >= 40 || !r->repo || !r->state || !r->kind)
        return;
    dl_task_t *t = dl_task_new(strcmp(r->kind, "convert") == 0, r->repo, r->revision ? r->revision : "main");
    snprintf(t->id, sizeof(t->id), "%s", r->id);
    t->filename = dup_or_null(r->filename);
    t->model_id = dup_or_null(r->model_id);
    t->error = dup_or_null(r->error);
    if (r->log) {
        t->log_len = strlen(r->log);
        t->log = cm_xstrndup(r->log, t->log_len);
    }
    t->bytes_done = r->bytes_done > 0 ? (uint64_t)r->bytes_done : 0;
    t->bytes_total = r->bytes_total > 0 ? (uint64_t)r->bytes_total : 0;
    t->created_ms = r->created_at;
    t->updated_ms = r->updated_at;
    snprintf(t->state, sizeof(t->state), "%s", dl_state_active(r->state) ? "queued" : r->state);
    cJSON *p = r->params_json ? cm_json_parse(r->params_json, strlen(r->params_json)) : NULL;
    const char *s;
    if (cm_json_str(p, "outtype", &s) == CM_JSON_OK)
        t->outtype = cm_xstrdup(s);
    if (cm_json_str(p, "name", &s) == CM_JSON_OK)
        t->name = cm_xstrdup(s);
    if (cm_json_str(p, "commit", &s) == CM_JSON_OK && strlen(s) == 40)
        t->commit = cm_xstrdup(s);
    cJSON_Delete(p);
    cJSON *f = r->files_json ? cm_json_parse(r->files_json, strlen(r->files_json)) : NULL;
    int n = cJSON_IsArray(f) ? cJSON_GetArraySize(f) : 0;
    t->files = cm_xcalloc((size_t)n + 1, sizeof(*t->files));
    const cJSON *it;
    cJSON_ArrayForEach(it, f) {
        const char *name = NULL, *sha = NULL;
        double size = 0;
        if (cm_json_str(it, "name", &name) != CM_JSON_OK || cm_json_num(it, "size", &size) != CM_JSON_OK)
            continue;
        dl_file_t *x = &t->files[t->nfiles++];
        x->path = cm_xstrdup(name);
        x->size = size > 0 ? (uint64_t)size : 0;
        if (cm_json_str(it, "sha256", &sha) == CM_JSON_OK && strlen(sha) == 64)
            memcpy(x->sha256, sha, 65);
    }
    cJSON_Delete(f);
    if (d->tail)
        d->tail->next = t;
    else
        d->head = t;
    d->tail = t;
    if (strcmp(t->state, "queued") == 0)
        LOG_INFO("models", "task %s (%s %s) resumed", t->id, t->convert ? "convert" : "download", t->repo);
}

/* ---- threads ---- */

static dl_task_t *next_queued(rt_downloads_t *d)
{
    for (dl_task_t *t = d->head; t; t = t->next)
        if (!t->running && strcmp(t->state, "queued") == 0)
            return t;
    return NULL;
}

static void *task_thread(void *arg)
{
    rt_downloads_t *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!atomic_load(&d->stop)) {
        dl_task_t *t = next_queued(d);
        if (!t) {
            pthread_cond_wait(&d->work, &d->mu);
            continue;
        }
        t->running = true;
        pthread_mutex_unlock(&d->mu);
        dl_run(d, t);
        pthread_mutex_lock(&d->mu);
        t->running = false;
        pthread_cond_broadcast(&d->done);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

rt_downloads_t *rt_downloads_new(const rt_downloads_opts_t *o, rt_models_t *models, rt_store_t *st)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    rt_downloads_t *d = cm_xcalloc(1, sizeof(*d));
    d->base_url = cm_xstrdup(o->hf_base_url && *o->hf_base_url ? o->hf_base_url : "https://huggingface.co");
    for (size_t n = strlen(d->base_url); n > 0 && d->base_url[n - 1] == '/'; n--)
        d->base_url[n - 1] = 0;
    d->token = o->hf_token && *o->hf_token ? cm_xstrdup(o->hf_token) : NULL;
    d->ca_bundle = dup_or_null(o->ca_bundle);
    d->converter = o->converter && *o->converter ? cm_xstrdup(o->converter) : NULL;
    d->convert_timeout_s = o->convert_timeout_s > 0 ? o->convert_timeout_s : 7200;
    d->hf = (rt_hf_t){ d->base_url, d->token, d->ca_bundle };
    d->models = models;
    d->st = st;
    d->dir = cm_xstrdup(models ? rt_models_dir(models) : ".");
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->work, NULL);
    pthread_cond_init(&d->done, NULL);
    atomic_init(&d->stop, false);
    if (st && rt_store_tasks_each(st, load_row, d) != RT_STORE_OK)
        LOG_WARN("models", "cannot read the model tasks: unfinished downloads are not resumed");
    int n = o->concurrency > 0 ? o->concurrency : 1;
    d->threads = cm_xcalloc((size_t)n, sizeof(*d->threads));
    for (int i = 0; i < n; i++) {
        if (pthread_create(&d->threads[i], NULL, task_thread, d) != 0) {
            LOG_ERROR("models", "cannot start a model task thread");
            break;
        }
        d->nthreads++;
    }
    if (d->nthreads == 0) {
        rt_downloads_free(d);
        return NULL;
    }
    return d;
}

void rt_downloads_free(rt_downloads_t *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    atomic_store(&d->stop, true);
    pthread_cond_broadcast(&d->work);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < d->nthreads; i++)
        pthread_join(d->threads[i], NULL);
    free(d->threads);
    for (dl_task_t *t = d->head, *next; t; t = next) {
        next = t->next;
        dl_task_free(t);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->work);
    pthread_cond_destroy(&d->done);
    free(d->base_url);
    if (d->token)
        sodium_memzero(d->token, strlen(d->token));
    free(d->token);
    free(d->ca_bundle);
    free(d->converter);
    free(d->dir);
    free(d);
}

/* ---- JSON ---- */

cJSON *dl_task_json_locked(const dl_task_t *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "task_id", t->id);
    cJSON_AddStringToObject(o, "kind", t->convert ? "convert" : "download");
    cJSON_AddStringToObject(o, "repo", t->repo);
    cJSON_AddStringToObject(o, "revision", t->revision);
    if (t->commit)
        cJSON_AddStringToObject(o, "commit", t->commit);
    if (t->filename)
        cJSON_AddStringToObject(o, "filename", t->filename);
    else
        cJSON_AddNullToObject(o, "filename");
    if (t->model_id)
        cJSON_AddStringToObject(o, "model_id", t->model_id);
    else
        cJSON_AddNullToObject(o, "model_id");
    cJSON_AddItemToObject(o, "files", files_json(t));
    cJSON_AddStringToObject(o, "state", t->state);
    cJSON_AddNumberToObject(o, "bytes_done", (double)t->bytes_done);
    cJSON_AddNumberToObject(o, "bytes_total", (double)t->bytes_total);
    cJSON_AddNumberToObject(o, "progress",
                            t->bytes_total ? (double)t->bytes_done / (double)t->bytes_total : 0);
    cJSON_AddNumberToObject(o, "speed_bps", (double)(uint64_t)t->speed_bps);
    if (t->eta_s >= 0)
        cJSON_AddNumberToObject(o, "eta_s", (double)t->eta_s);
    else
        cJSON_AddNullToObject(o, "eta_s");
    if (t->error)
        cJSON_AddStringToObject(o, "error", t->error);
    else
        cJSON_AddNullToObject(o, "error");
    if (t->convert) {
        cJSON_AddStringToObject(o, "outtype", t->outtype ? t->outtype : "f16");
        if (t->name)
            cJSON_AddStringToObject(o, "name", t->name);
        char *log = log_text(t);
        cJSON_AddStringToObject(o, "log", log ? log : "");
        free(log);
    }
    cm_json_add_time(o, "created_at", t->created_ms);
    cm_json_add_time(o, "updated_at", t->updated_ms);
    return o;
}

static bool kind_is(const dl_task_t *t, const char *kind)
{
    return !kind || strcmp(kind, t->convert ? "convert" : "download") == 0;
}

cJSON *rt_downloads_tasks_json(rt_downloads_t *d, const char *kind)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&d->mu);
    for (dl_task_t *t = d->head; t; t = t->next)
        if (kind_is(t, kind))
            cJSON_AddItemToArray(a, dl_task_json_locked(t));
    pthread_mutex_unlock(&d->mu);
    return a;
}

static dl_task_t *find_locked(rt_downloads_t *d, const char *id, const char *kind)
{
    for (dl_task_t *t = d->head; t; t = t->next)
        if (strcmp(t->id, id) == 0 && kind_is(t, kind))
            return t;
    return NULL;
}

cJSON *rt_downloads_task_json(rt_downloads_t *d, const char *id, const char *kind)
{
    pthread_mutex_lock(&d->mu);
    dl_task_t *t = find_locked(d, id, kind);
    cJSON *o = t ? dl_task_json_locked(t) : NULL;
    pthread_mutex_unlock(&d->mu);
    return o;
}

/* ---- cancel ---- */

/* Flags t; a queued task is finished here, a running one by its thread,
 * awaited for up to RT_DOWNLOADS_CANCEL_WAIT_MS. Caller holds mu. */
static void cancel_locked(rt_downloads_t *d, dl_task_t *t)
{
    atomic_store(&t->cancel, true);
    if (!t->running) {
        snprintf(t->state, sizeof(t->state), "cancelled");
        t->speed_bps = 0;
        t->eta_s = -1;
        dl_persist_locked(d, t);
        t->running = true; /* nobody deletes it while the lock is dropped */
        pthread_mutex_unlock(&d->mu);
        dl_remove_leftovers(d, t);
        pthread_mutex_lock(&d->mu);
        t->running = false;
        pthread_cond_broadcast(&d->done);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += RT_DOWNLOADS_CANCEL_WAIT_MS / 1000;
    while (t->running)
        if (pthread_cond_timedwait(&d->done, &d->mu, &until) != 0)
            break;
}

int rt_downloads_cancel(rt_downloads_t *d, const char *id, const char *kind, cJSON **task)
{
    *task = NULL;
    pthread_mutex_lock(&d->mu);
    dl_task_t *t = find_locked(d, id, kind);
    int rc = -1;
    if (t && (dl_state_active(t->state) || t->running)) {
        cancel_locked(d, t);
        *task = dl_task_json_locked(t);
        rc = 0;
    } else if (t) {
        /* finished: the record goes (tasks are never freed while running) */
        dl_task_t **pp = &d->head, *prev = NULL;
        while (*pp != t) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = t->next;
        if (d->tail == t)
            d->tail = prev;
        rt_store_task_delete(d->st, t->id);
        dl_task_free(t);
        rc = 1;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int rt_downloads_cancel_model(rt_downloads_t *d, const char *model_id)
{
    int n = 0;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        /* the lock is dropped while cancelling: look again from the start
         * (the flagged ones are skipped, so this ends) */
        dl_task_t *hit = NULL;
        for (dl_task_t *t = d->head; t && !hit; t = t->next)
            if (t->model_id && strcmp(t->model_id, model_id) == 0 && dl_state_active(t->state) &&
                !atomic_load(&t->cancel))
                hit = t;
        if (!hit)
            break;
        cancel_locked(d, hit);
        n++;
    }
    pthread_mutex_unlock(&d->mu);
    return n;
}
