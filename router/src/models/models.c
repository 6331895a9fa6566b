/* models: the catalogue (rows in the store, an in-memory mirror under a
 * mutex) and its JSON. Ids: models_id.c; headers and hashes: models_gguf.c;
 * discovery: models_discover.c.
 *
 * Locking: mu guards the mirror (held only to copy in or out, never across
 * I/O), so a reader on a loop never waits behind the disk. amu serialises
 * the writers (add, remove) across their whole pick-insert or delete, so two
 * adds cannot choose the same id; the hashing and header reading of an add
 * run before amu is taken. */
#include "models/models.h"

#include "log.h"
#include "store/store.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rt_models {
    char *dir;              /* canonical, no trailing '/' */
    rt_store_t *st;         /* NULL: memory only (tests) */
    pthread_mutex_t mu;     /* v, n, version */
    rt_model_rec_t *v;
    size_t n, cap;
    uint64_t version;
    pthread_mutex_t amu;    /* writers */
    atomic_bool discovering; /* models_discover.c */
};

/* ---- records ---- */

void rt_model_rec_clear(rt_model_rec_t *r)
{
    if (!r)
        return;
    free(r->id);
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].name);
        free(r->files[i].path);
    }
    free(r->files);
    free(r->source_repo);
    free(r->source_revision);
    free(r->source_file);
    free(r->format);
    free(r->state);
    memset(r, 0, sizeof(*r));
}

void rt_model_recs_free(rt_model_rec_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rt_model_rec_clear(&v[i]);
    free(v);
}

static char *dup_or_null(const char *s) { return s ? cm_xstrdup(s) : NULL; }

static void rec_copy(rt_model_rec_t *dst, const rt_model_rec_t *src)
{
    *dst = *src;
    dst->id = dup_or_null(src->id);
    dst->files = cm_xcalloc(src->nfiles ? src->nfiles : 1, sizeof(*dst->files));
    for (size_t i = 0; i < src->nfiles; i++) {
        dst->files[i] = src->files[i];
        dst->files[i].name = dup_or_null(src->files[i].name);
        dst->files[i].path = dup_or_null(src->files[i].path);
    }
    dst->source_repo = dup_or_null(src->source_repo);
    dst->source_revision = dup_or_null(src->source_revision);
    dst->source_file = dup_or_null(src->source_file);
    dst->format = dup_or_null(src->format);
    dst->state = dup_or_null(src->state);
}

/* ---- store rows <-> records ---- */

static cJSON *files_json(const rt_model_rec_t *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < r->nfiles; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", r->files[i].name);
        cJSON_AddNumberToObject(f, "size", (double)r->files[i].size);
        cJSON_AddStringToObject(f, "sha256", r->files[i].sha256);
        cJSON_AddStringToObject(f, "path", r->files[i].path);
        cJSON_AddItemToArray(a, f);
    }
    return a;
}

static cJSON *info_json(const rt_gguf_info_t *in)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "architecture", in->architecture);
    cJSON_AddNumberToObject(o, "parameters", (double)in->parameters);
    cJSON_AddNumberToObject(o, "context_length", in->context_length);
    cJSON_AddStringToObject(o, "quantization", in->quantization);
    cJSON_AddBoolToObject(o, "chat_template", in->chat_template);
    return o;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? v->valuedouble : 0;
}

/* A stored row as a record; false when its JSON is unreadable. */
static bool rec_from_row(const rt_model_row_t *row, rt_model_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    cJSON *files = cJSON_Parse(row->files_json ? row->files_json : "");
    cJSON *info = cJSON_Parse(row->info_json ? row->info_json : "{}");
    int nf = cJSON_IsArray(files) ? cJSON_GetArraySize(files) : 0;
    if (nf <= 0 || !row->id) {
        cJSON_Delete(files);
        cJSON_Delete(info);
        return false;
    }
    r->id = cm_xstrdup(row->id);
    r->files = cm_xcalloc((size_t)nf, sizeof(*r->files));
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        rt_model_file_t *mf = &r->files[r->nfiles++];
        mf->name = cm_xstrdup(jstr(f, "name"));
        mf->path = cm_xstrdup(jstr(f, "path"));
        mf->size = (uint64_t)jnum(f, "size");
        snprintf(mf->sha256, sizeof(mf->sha256), "%s", jstr(f, "sha256"));
    }
    r->size = (uint64_t)(row->size > 0 ? row->size : 0);
    r->source_repo = dup_or_null(row->source_repo);
    r->source_revision = dup_or_null(row->source_revision);
    r->source_file = dup_or_null(row->source_file);
    r->format = cm_xstrdup(row->format ? row->format : "gguf");
    r->state = cm_xstrdup(row->state ? row->state : "ready");
    snprintf(r->info.architecture, sizeof(r->info.architecture), "%s", jstr(info, "architecture"));
    r->info.parameters = (uint64_t)jnum(info, "parameters");
    r->info.context_length = (uint32_t)jnum(info, "context_length");
    snprintf(r->info.quantization, sizeof(r->info.quantization), "%s", jstr(info, "quantization"));
    r->info.chat_template = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "chat_template"));
    r->created_ms = row->created_at;
    cJSON_Delete(files);
    cJSON_Delete(info);
    return true;
}

static void mirror_push(rt_models_t *m, rt_model_rec_t *r) /* takes r's contents; caller holds mu */
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = cm_xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    m->v[m->n++] = *r;
    memset(r, 0, sizeof(*r));
}

static void load_row(const rt_model_row_t *row, void *arg)
{
    rt_models_t *m = arg;
    rt_model_rec_t r;
    if (!rec_from_row(row, &r)) {
        LOG_WARN("models", "catalogue row '%s' is unreadable; ignored", row->id ? row->id : "?");
        return;
    }
    for (size_t i = 0; i < r.nfiles; i++)
        if (access(r.files[i].path, R_OK) != 0)
            LOG_WARN("models", "model '%s': file %s is missing (%s)", r.id, r.files[i].path, strerror(errno));
    mirror_push(m, &r);
}

/* ---- lifetime ---- */

rt_models_t *rt_models_new(const rt_models_opts_t *o, rt_store_t *st, char *err, size_t errlen)
{
    if (!o->dir || !*o->dir) {
        snprintf(err, errlen, "models: no models directory");
        return NULL;
    }
    char *exp = cm_expand_home(o->dir);
    if (cm_mkdir_p(exp, 0755) != 0) {
        snprintf(err, errlen, "models: cannot create %s: %s", exp, strerror(errno));
        free(exp);
        return NULL;
    }
    char canon[PATH_MAX];
    if (!realpath(exp, canon)) {
        snprintf(err, errlen, "models: %s: %s", exp, strerror(errno));
        free(exp);
        return NULL;
    }
    free(exp);
    rt_models_t *m = cm_xcalloc(1, sizeof(*m));
    m->dir = cm_xstrdup(canon);
    m->st = st;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->amu, NULL);
    atomic_init(&m->discovering, false);
    if (st && rt_store_models_each(st, load_row, m) != RT_STORE_OK) {
        snprintf(err, errlen, "models: cannot read the catalogue from the store");
        rt_models_free(m);
        return NULL;
    }
    return m;
}

void rt_models_free(rt_models_t *m)
{
    if (!m)
        return;
    rt_model_recs_free(m->v, m->n);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->amu);
    free(m->dir);
    free(m);
}

const char *rt_models_dir(const rt_models_t *m) { return m->dir; }

atomic_bool *rt_models_discovery_flag_(rt_models_t *m); /* models_discover.c */
atomic_bool *rt_models_discovery_flag_(rt_models_t *m) { return &m->discovering; }

bool rt_models_path_inside(const rt_models_t *m, const char *path)
{
    size_t n = strlen(m->dir);
    return strncmp(path, m->dir, n) == 0 && path[n] == '/' && path[n + 1];
}

/* ---- reads ---- */

static ssize_t find_locked(const rt_models_t *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].id, id) == 0)
            return (ssize_t)i;
    return -1;
}

bool rt_models_get(rt_models_t *m, const char *id, rt_model_rec_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!id)
        return false;
    pthread_mutex_lock(&m->mu);
    ssize_t i = find_locked(m, id);
    if (i >= 0)
        rec_copy(out, &m->v[i]);
    pthread_mutex_unlock(&m->mu);
    return i >= 0;
}

size_t rt_models_list(rt_models_t *m, rt_model_rec_t **out)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    *out = n ? cm_xcalloc(n, sizeof(**out)) : NULL;
    for (size_t i = 0; i < n; i++)
        rec_copy(&(*out)[i], &m->v[i]);
    pthread_mutex_unlock(&m->mu);
    return n;
}

uint64_t rt_models_version(rt_models_t *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t v = m->version;
    pthread_mutex_unlock(&m->mu);
    return v;
}

static bool find_path_canon(rt_models_t *m, const char *canon, char id_out[RT_MODEL_ID_MAX])
{
    bool found = false;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n && !found; i++)
        if (m->v[i].nfiles && strcmp(m->v[i].files[0].path, canon) == 0) {
            snprintf(id_out, RT_MODEL_ID_MAX, "%s", m->v[i].id);
            found = true;
        }
    pthread_mutex_unlock(&m->mu);
    return found;
}

bool rt_models_find_path(rt_models_t *m, const char *path, char id_out[RT_MODEL_ID_MAX])
{
    char canon[PATH_MAX];
    if (!realpath(path, canon))
        snprintf(canon, sizeof(canon), "%s", path);
    return find_path_canon(m, canon, id_out);
}

/* ---- add ---- */

static bool id_taken(rt_models_t *m, const char *id)
{
    pthread_mutex_lock(&m->mu);
    bool t = find_locked(m, id) >= 0;
    pthread_mutex_unlock(&m->mu);
    return t;
}

/* The first free id of base, base_q (the quantised form, may equal base),
 * base_q-2, base_q-3, ... Caller holds amu. */
static void pick_id(rt_models_t *m, const char *base, const char *base_q, char out[RT_MODEL_ID_MAX])
{
    snprintf(out, RT_MODEL_ID_MAX, "%s", base);
    if (!id_taken(m, out))
        return;
    snprintf(out, RT_MODEL_ID_MAX, "%s", base_q);
    if (!id_taken(m, out))
        return;
    for (unsigned k = 2;; k++) {
        char sfx[16];
        int sl = snprintf(sfx, sizeof(sfx), "-%u", k);
        int bl = (int)strlen(base_q);
        if (bl + sl >= RT_MODEL_ID_MAX)
            bl = RT_MODEL_ID_MAX - 1 - sl;
        snprintf(out, RT_MODEL_ID_MAX, "%.*s%s", bl, base_q, sfx);
        if (!id_taken(m, out))
            return;
    }
}

/* The files of rec checked and completed into r (canonical paths, names,
 * sizes, hashes). Blocking. 0 or -1 with err. */
static int prepare_files(const rt_model_rec_t *rec, rt_model_rec_t *r, char *err, size_t errlen)
{
    r->files = cm_xcalloc(rec->nfiles, sizeof(*r->files));
    for (size_t i = 0; i < rec->nfiles; i++) {
        const rt_model_file_t *in = &rec->files[i];
        rt_model_file_t *f = &r->files[r->nfiles++];
        char canon[PATH_MAX];
        struct stat sb;
        if (!in->path || !realpath(in->path, canon) || stat(canon, &sb) != 0) {
            snprintf(err, errlen, "cannot read %s: %s", in->path ? in->path : "(no path)", strerror(errno));
            return -1;
        }
        if (!S_ISREG(sb.st_mode)) {
            snprintf(err, errlen, "%s is not a regular file", in->path);
            return -1;
        }
        if (in->size && in->size != (uint64_t)sb.st_size) {
            snprintf(err, errlen, "%s has %lld bytes, expected %llu", in->path, (long long)sb.st_size,
                     (unsigned long long)in->size);
            return -1;
        }
        const char *slash = strrchr(canon, '/');
        f->path = cm_xstrdup(canon);
        f->name = cm_xstrdup(in->name && *in->name ? in->name : slash + 1);
        f->size = (uint64_t)sb.st_size;
        if (in->sha256[0]) {
            snprintf(f->sha256, sizeof(f->sha256), "%s", in->sha256);
        } else if (rt_file_sha256(canon, f->sha256, NULL, err, errlen) != 0) {
            return -1;
        }
        r->size += f->size;
    }
    return 0;
}

static int insert_row(rt_models_t *m, const rt_model_rec_t *r)
{
    if (!m->st)
        return RT_STORE_OK;
    cJSON *fj = files_json(r), *ij = info_json(&r->info);
    rt_model_row_t row = {
        .id = r->id,
        .files_json = cJSON_PrintUnformatted(fj),
        .size = (int64_t)r->size,
        .source_repo = r->source_repo,
        .source_revision = r->source_revision,
        .source_file = r->source_file,
        .format = r->format,
        .state = r->state,
        .info_json = cJSON_PrintUnformatted(ij),
        .created_at = r->created_ms,
    };
    int rc = rt_store_model_insert(m->st, &row);
    free(row.files_json);
    free(row.info_json);
    cJSON_Delete(fj);
    cJSON_Delete(ij);
    return rc;
}

int rt_models_add(rt_models_t *m, const rt_model_rec_t *rec, char id_out[RT_MODEL_ID_MAX], char *err,
                  size_t errlen)
{
    id_out[0] = '\0';
    if (!rec->nfiles || !rec->files) {
        snprintf(err, errlen, "a model needs at least one file");
        return -1;
    }
    if (rec->id && !rt_model_id_valid(rec->id)) {
        snprintf(err, errlen, "invalid model id (1 to %d characters of A-Z a-z 0-9 . _ -)", RT_MODEL_ID_MAX - 1);
        return -1;
    }
    rt_model_rec_t r = { 0 };
    int rc = -1;
    char canon0[PATH_MAX];
    if (rec->files[0].path && realpath(rec->files[0].path, canon0) && find_path_canon(m, canon0, id_out))
        return RT_MODELS_EXISTS; /* before hashing: a second discovery costs nothing */
    if (prepare_files(rec, &r, err, errlen) != 0)
        goto out;
    if (rt_gguf_info(r.files[0].path, &r.info, err, errlen) != 0)
        goto out;
    r.source_repo = dup_or_null(rec->source_repo);
    r.source_revision = dup_or_null(rec->source_revision);
    r.source_file = dup_or_null(rec->source_file);
    r.format = cm_xstrdup(rec->format ? rec->format : "gguf");
    r.state = cm_xstrdup(rec->state ? rec->state : "ready");
    r.created_ms = rec->created_ms > 0 ? rec->created_ms : (int64_t)cm_wall_ms();
    const char *name = rec->source_file ? rec->source_file : r.files[0].name;
    char *base = rec->id ? cm_xstrdup(rec->id) : rt_model_id_from_file(name, false);
    char *base_q = rec->id ? cm_xstrdup(rec->id) : rt_model_id_from_file(name, true);
    pthread_mutex_lock(&m->amu);
    if (find_path_canon(m, r.files[0].path, id_out)) {
        rc = RT_MODELS_EXISTS;
    } else {
        char id[RT_MODEL_ID_MAX];
        pick_id(m, base, base_q, id);
        r.id = cm_xstrdup(id);
        int src = insert_row(m, &r);
        if (src == RT_STORE_OK) {
            snprintf(id_out, RT_MODEL_ID_MAX, "%s", id);
            LOG_INFO("models", "registered model '%s': %s (%zu file%s, %llu bytes, %s)", id, r.files[0].path,
                     r.nfiles, r.nfiles == 1 ? "" : "s", (unsigned long long)r.size,
                     r.info.quantization[0] ? r.info.quantization : "unknown quantisation");
            pthread_mutex_lock(&m->mu);
            mirror_push(m, &r);
            m->version++;
            pthread_mutex_unlock(&m->mu);
            rc = 0;
        } else {
            snprintf(err, errlen, "cannot store model '%s'%s", id,
                     src == RT_STORE_CONFLICT ? ": the id exists in the store" : "");
        }
    }
    pthread_mutex_unlock(&m->amu);
    free(base);
    free(base_q);
out:
    rt_model_rec_clear(&r);
    return rc;
}

/* ---- remove ---- */

/* Deletes the files of r that lie inside the models directory, then their
 * directory when it became empty and is not the models directory itself. */
static void remove_files(rt_models_t *m, const rt_model_rec_t *r)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        char canon[PATH_MAX];
        if (!realpath(r->files[i].path, canon) || !rt_models_path_inside(m, canon))
            continue; /* gone already, or registered in place elsewhere: never ours to delete */
        if (unlink(canon) != 0)
            LOG_WARN("models", "cannot delete %s: %s", canon, strerror(errno));
        char *slash = strrchr(canon, '/');
        *slash = '\0';
        if (strcmp(canon, m->dir) != 0 && rt_models_path_inside(m, canon))
            (void)rmdir(canon); /* fails harmlessly while other files remain */
    }
}

int rt_models_remove(rt_models_t *m, const char *id, char *err, size_t errlen)
{
    int rc = 1;
    rt_model_rec_t r = { 0 };
    pthread_mutex_lock(&m->amu);
    if (!rt_models_get(m, id, &r))
        goto out;
    int src = m->st ? rt_store_model_delete(m->st, id) : RT_STORE_OK;
    if (src != RT_STORE_OK && src != RT_STORE_NOTFOUND) {
        snprintf(err, errlen, "cannot delete model '%s' from the store", id);
        rc = -1;
        goto out;
    }
    pthread_mutex_lock(&m->mu);
    ssize_t i = find_locked(m, id);
    if (i >= 0) {
        rt_model_rec_clear(&m->v[i]);
        memmove(&m->v[i], &m->v[i + 1], (m->n - (size_t)i - 1) * sizeof(*m->v));
        m->n--;
        m->version++;
    }
    pthread_mutex_unlock(&m->mu);
    rc = 0;
out:
    pthread_mutex_unlock(&m->amu);
    if (rc == 0) {
        remove_files(m, &r); /* after the row: no node is told about a file that is going */
        LOG_INFO("models", "deleted model '%s'", id);
    }
    rt_model_rec_clear(&r);
    return rc;
}

/* ---- JSON ---- */

static cJSON *blob_url(const char *id, const char *file)
{
    char *u = file ? cm_xasprintf("/api/models/blob/%s/%s", id, file) : cm_xasprintf("/api/models/blob/%s", id);
    cJSON *s = cJSON_CreateString(u);
    free(u);
    return s;
}

cJSON *rt_model_json(const rt_model_rec_t *r, bool for_node)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)(r->created_ms / 1000));
    cJSON_AddStringToObject(o, "owned_by", "llm-router");
    cJSON_AddBoolToObject(o, "registered", true);
    cJSON_AddStringToObject(o, "format", r->format ? r->format : "gguf");
    cJSON_AddNumberToObject(o, "size", (double)r->size);
    cJSON_AddStringToObject(o, "sha256", r->nfiles ? r->files[0].sha256 : "");
    cJSON_AddNumberToObject(o, "ready_nodes", 0);
    cJSON_AddItemToObject(o, "info", info_json(&r->info));
    if (r->source_repo || r->source_file) {
        cJSON *s = cJSON_AddObjectToObject(o, "source");
        if (r->source_repo)
            cJSON_AddStringToObject(s, "repo", r->source_repo);
        else
            cJSON_AddNullToObject(s, "repo");
        if (r->source_revision)
            cJSON_AddStringToObject(s, "revision", r->source_revision);
        else
            cJSON_AddNullToObject(s, "revision");
        if (r->source_file)
            cJSON_AddStringToObject(s, "file", r->source_file);
        else
            cJSON_AddNullToObject(s, "file");
    } else {
        cJSON_AddNullToObject(o, "source");
    }
    if (!for_node)
        return o;
    cJSON_AddStringToObject(o, "path", r->nfiles ? r->files[0].path : "");
    cJSON_AddItemToObject(o, "blob_url", blob_url(r->id, NULL));
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    for (size_t i = 0; i < r->nfiles; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", r->files[i].name);
        cJSON_AddNumberToObject(f, "size", (double)r->files[i].size);
        cJSON_AddStringToObject(f, "sha256", r->files[i].sha256);
        cJSON_AddStringToObject(f, "path", r->files[i].path);
        /* a split model's parts are addressed by name, files[0] too */
        cJSON_AddItemToObject(f, "blob_url", blob_url(r->id, r->nfiles > 1 ? r->files[i].name : NULL));
        cJSON_AddItemToArray(files, f);
    }
    return o;
}

size_t rt_models_append_json(rt_models_t *m, cJSON *arr, bool for_node, const char *only_id,
                             void (*count)(const char *id, int *ready, int *nodes, void *arg), void *arg)
{
    rt_model_rec_t *v;
    size_t n = rt_models_list(m, &v), added = 0;
    for (size_t i = 0; i < n; i++) {
        if (only_id && strcmp(v[i].id, only_id) != 0)
            continue;
        int ready = 0, nodes = 0;
        if (count)
            count(v[i].id, &ready, &nodes, arg);
        cJSON *o = rt_model_json(&v[i], for_node);
        cJSON_ReplaceItemInObjectCaseSensitive(o, "ready_nodes", cJSON_CreateNumber(ready));
        cJSON_AddNumberToObject(o, "nodes", nodes);
        cJSON_AddItemToArray(arr, o);
        added++;
    }
    rt_model_recs_free(v, n);
    return added;
}
