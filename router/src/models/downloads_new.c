/* downloads_new: register, convert and search requests (see downloads.h):
 * the Hub's tree read, the file chosen, the disk space checked, the task
 * queued. On the offload pool (blocking libcurl), never on a loop. */
#include "models/downloads_int.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <dirent.h>

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* A GGUF that can be a model: not a projector nor an importance matrix,
 * and for a split, its first part. */
static bool candidate(const rt_hf_file_t *f)
{
    const char *b = base_name(f->path);
    if (!ends_with_ci(b, ".gguf") || strcasestr(b, "mmproj") || strcasestr(b, "imatrix"))
        return false;
    unsigned part, count;
    return !rt_model_split_part(b, &part, &count) || part == 1;
}

/* tag followed by '.' or '-' (llama.cpp's find_best_model), any case. */
static bool has_tag(const char *name, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = name; (p = strcasestr(p, tag)); p++)
        if (p[n] == '.' || p[n] == '-')
            return true;
    return false;
}

/* The split's other parts: same prefix and count (all must be there). */
int dl_split_parts(const rt_hf_file_t *v, size_t n, size_t first, size_t idx[256], unsigned *count)
{
    unsigned part;
    const char *path = v[first].path;
    if (!rt_model_split_part(base_name(path), &part, count)) {
        idx[0] = first;
        *count = 1;
        return 0;
    }
    if (*count == 0 || *count > 256)
        return -1;
    /* the prefix before "-NNNNN-of-NNNNN.gguf" (the Hub's names use five
     * digits, as llama.cpp's gguf-split writes them) */
    size_t len = strlen(path), suffix = strlen("-00001-of-00003.gguf");
    if (len <= suffix || strcasecmp(path + len - 5, ".gguf") != 0)
        return -1;
    size_t plen = len - suffix;
    for (unsigned i = 1; i <= *count; i++) {
        char want[2048];
        snprintf(want, sizeof(want), "%.*s-%05u-of-%05u.gguf", (int)plen, path, i, *count);
        size_t j = 0;
        while (j < n && strcmp(v[j].path, want) != 0)
            j++;
        if (j == n)
            return -1;
        idx[i - 1] = j;
    }
    return 0;
}

static uint64_t group_size(const rt_hf_file_t *v, size_t n, size_t first)
{
    size_t idx[256];
    unsigned count;
    if (dl_split_parts(v, n, first, idx, &count) != 0)
        return UINT64_MAX;
    uint64_t s = 0;
    for (unsigned i = 0; i < count; i++)
        s += v[idx[i]].size;
    return s;
}

/* The file the preference picks (downloads.h); n when none. */
size_t dl_pick(const rt_hf_file_t *v, size_t n)
{
    static const char *const prefs[] = { "Q4_K_M", "Q4_0", "Q8_0" };
    for (size_t p = 0; p < sizeof(prefs) / sizeof(prefs[0]); p++)
        for (size_t i = 0; i < n; i++)
            if (candidate(&v[i]) && has_tag(base_name(v[i].path), prefs[p]))
                return i;
    size_t best = n;
    uint64_t best_size = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t s;
        if (candidate(&v[i]) && (s = group_size(v, n, i)) < best_size) {
            best = i;
            best_size = s;
        }
    }
    return best;
}

__attribute__((format(printf, 3, 4))) static int err_set(rt_hf_err_t *e, int status, const char *fmt, ...)
{
    memset(e, 0, sizeof(*e));
    e->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* Bytes the task's files still need (what the parts hold is counted). */
static uint64_t still_needed(rt_downloads_t *d, const dl_task_t *t)
{
    uint64_t need = 0;
    for (size_t i = 0; i < t->nfiles; i++) {
        char *local = dl_local_path(d, t->model_id ? t->model_id : "_", t->files[i].path);
        char *part = local ? cm_xasprintf("%s.part", local) : NULL;
        struct stat sb;
        uint64_t have = part && stat(part, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        need += t->files[i].size > have ? t->files[i].size - have : 0;
        free(part);
        free(local);
    }
    return need;
}

/* 0 when need bytes (and a margin) fit in the models directory. */
static int check_space(rt_downloads_t *d, uint64_t need, rt_hf_err_t *e)
{
    struct statvfs vf;
    cm_mkdir_p(d->dir, 0755);
    if (statvfs(d->dir, &vf) != 0)
        return 0; /* unknown: the write itself will tell */
    uint64_t avail = (uint64_t)vf.f_bavail * (uint64_t)vf.f_frsize;
    if (need > UINT64_MAX - DL_SPACE_MARGIN || need + DL_SPACE_MARGIN > avail) {
        memset(e, 0, sizeof(*e));
        e->status = 507;
        snprintf(e->msg, sizeof(e->msg), "not enough disk space in %s: needs %.2f GB, %.2f GB free", d->dir,
                 (double)need / 1e9, (double)avail / 1e9);
        return -1;
    }
    return 0;
}

/* The active task fetching the same repository and first file, if any. */
static dl_task_t *same_active_locked(rt_downloads_t *d, bool convert, const char *repo, const char *rev,
                                     const char *file)
{
    for (dl_task_t *t = d->head; t; t = t->next)
        if (t->convert == convert && dl_state_active(t->state) && !atomic_load(&t->cancel) &&
            strcmp(t->repo, repo) == 0 && strcmp(t->revision, rev) == 0 &&
            (convert || (t->filename && strcmp(t->filename, file) == 0)))
            return t;
    return NULL;
}

/* Whether id is free: no registered model, no active task and no
 * non-empty directory of that name (files the operator put there are never
 * overwritten). */
static bool id_free(rt_downloads_t *d, const char *id)
{
    rt_model_rec_t r;
    if (rt_models_get(d->models, id, &r)) {
        rt_model_rec_clear(&r);
        return false;
    }
    bool taken = false;
    pthread_mutex_lock(&d->mu);
    for (dl_task_t *t = d->head; t && !taken; t = t->next)
        taken = dl_state_active(t->state) && t->model_id && strcmp(t->model_id, id) == 0;
    pthread_mutex_unlock(&d->mu);
    if (taken)
        return false;
    char *dir = cm_xasprintf("%s/%s", d->dir, id);
    DIR *dh = opendir(dir);
    free(dir);
    if (!dh)
        return true;
    struct dirent *de;
    while ((de = readdir(dh)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            taken = true;
            break;
        }
    closedir(dh);
    return !taken;
}

/* The id the model will have (the contract in models.h): the plain id,
 * else the one keeping the quantisation, else that with "-2", "-3", ...
 * NULL when no valid id can be made. */
char *dl_choose_id(rt_downloads_t *d, const char *file)
{
    char *plain = rt_model_id_from_file(file, false);
    if (!plain || !rt_model_id_valid(plain)) {
        free(plain);
        return NULL;
    }
    if (id_free(d, plain))
        return plain;
    char *quant = rt_model_id_from_file(file, true);
    free(plain);
    if (!quant || !rt_model_id_valid(quant)) {
        free(quant);
        return NULL;
    }
    if (id_free(d, quant))
        return quant;
    for (int i = 2; i < 1000; i++) {
        char *id = cm_xasprintf("%.*s-%d", RT_MODEL_ID_MAX - 16, quant, i);
        if (id_free(d, id)) {
            free(quant);
            return id;
        }
        free(id);
    }
    free(quant);
    return NULL;
}

/* The registered model already made from repo's file, if any (its id into
 * out). */
static bool already_registered(rt_downloads_t *d, const char *repo, const char *file, char out[RT_MODEL_ID_MAX])
{
    rt_model_rec_t *v = NULL;
    size_t n = rt_models_list(d->models, &v);
    bool hit = false;
    for (size_t i = 0; i < n && !hit; i++)
        if (v[i].source_repo && v[i].source_file && strcmp(v[i].source_repo, repo) == 0 &&
            strcmp(v[i].source_file, file) == 0) {
            snprintf(out, RT_MODEL_ID_MAX, "%s", v[i].id);
            hit = true;
        }
    rt_model_recs_free(v, n);
    return hit;
}

static void add_file(dl_task_t *t, const rt_hf_file_t *f)
{
    t->files = cm_xrealloc(t->files, (t->nfiles + 1) * sizeof(*t->files));
    dl_file_t *x = &t->files[t->nfiles++];
    x->path = cm_xstrdup(f->path);
    x->size = f->size;
    memcpy(x->sha256, f->sha256, sizeof(x->sha256));
    t->bytes_total += f->size;
}

/* The repository at rev: its commit (model info: a missing or gated
 * repository is refused here) and its files at that commit. */
static int resolve(rt_downloads_t *d, const char *repo, const char *rev, char commit[41], rt_hf_file_t **v,
                   size_t *n, rt_hf_err_t *e)
{
    bool gated = false;
    if (rt_hf_model_info(&d->hf, repo, rev, commit, &gated, e) != 0)
        return -1;
    return rt_hf_tree(&d->hf, repo, commit[0] ? commit : rev, v, n, e);
}

int rt_downloads_register(rt_downloads_t *d, const char *repo, const char *filename, const char *revision,
                          cJSON **task, int *status, rt_hf_err_t *e)
{
    *task = NULL;
    memset(e, 0, sizeof(*e));
    const char *rev = revision ? revision : "main";
    if (!rt_hf_repo_valid(repo))
        return err_set(e, 400, "repo must be a Hugging Face repository id (owner/name)");
    if (!rt_hf_revision_valid(rev))
        return err_set(e, 400, "revision is not a valid branch, tag or commit");
    if (filename && (!*filename || strlen(filename) > 1024 || strstr(filename, "..") || filename[0] == '/'))
        return err_set(e, 400, "filename is not a file name of the repository");
    rt_hf_file_t *v = NULL;
    size_t n = 0;
    char commit[41];
    if (resolve(d, repo, rev, commit, &v, &n, e) != 0)
        return -1;
    int rc = -1;
    dl_task_t *t = NULL;
    size_t first = n;
    if (filename) {
        for (size_t i = 0; i < n && first == n; i++)
            if (strcmp(v[i].path, filename) == 0)
                first = i;
        if (first == n) {
            err_set(e, 404, "file not found in %s at %s: %s", repo, rev, filename);
            goto out;
        }
        if (!ends_with_ci(filename, ".gguf")) {
            err_set(e, 400, "%s is not a GGUF file: use POST /api/models/convert for %s", filename, repo);
            goto out;
        }
        unsigned part, count;
        if (rt_model_split_part(base_name(filename), &part, &count) && part != 1) {
            /* a later part names the whole split: start from its first */
            size_t len = strlen(filename), suffix = strlen("-00002-of-00003.gguf");
            char want[2048];
            if (len > suffix && len < sizeof(want)) {
                snprintf(want, sizeof(want), "%.*s-00001-of-%05u.gguf", (int)(len - suffix), filename, count);
                for (size_t i = 0; i < n; i++)
                    if (strcmp(v[i].path, want) == 0)
                        first = i;
            }
        }
    } else {
        first = dl_pick(v, n);
        if (first == n) {
            err_set(e, 400, "no GGUF file in %s: use POST /api/models/convert to convert it", repo);
            goto out;
        }
    }
    size_t idx[256];
    unsigned count;
    if (dl_split_parts(v, n, first, idx, &count) != 0) {
        err_set(e, 502, "%s: a part of the split GGUF %s is missing from the repository", repo, v[first].path);
        goto out;
    }
    for (unsigned i = 0; i < count; i++) {
        char *local = dl_local_path(d, "_", v[idx[i]].path);
        if (!local) {
            err_set(e, 400, "%s: the file name %s cannot be stored", repo, v[idx[i]].path);
            goto out;
        }
        free(local);
    }
    /* a gated repository lists its files to anyone: ask for the file */
    if (rt_hf_check_access(&d->hf, repo, commit[0] ? commit : rev, v[first].path, e) != 0)
        goto out;
    char have[RT_MODEL_ID_MAX];
    if (already_registered(d, repo, v[first].path, have)) {
        err_set(e, 409, "%s %s is already registered as %s (delete it first to download it again)", repo,
                v[first].path, have);
        goto out;
    }
    pthread_mutex_lock(&d->mu);
    dl_task_t *same = same_active_locked(d, false, repo, rev, v[first].path);
    if (same) {
        *task = dl_task_json_locked(same);
        *status = 200;
        pthread_mutex_unlock(&d->mu);
        rc = 0;
        goto out;
    }
    pthread_mutex_unlock(&d->mu);
    t = dl_task_new(false, repo, rev);
    t->filename = cm_xstrdup(v[first].path);
    t->commit = commit[0] ? cm_xstrdup(commit) : NULL;
    for (unsigned i = 0; i < count; i++)
        add_file(t, &v[idx[i]]);
    t->model_id = dl_choose_id(d, base_name(t->filename));
    if (!t->model_id) {
        err_set(e, 400, "%s: no model id can be made from %s", repo, t->filename);
        goto out;
    }
    if (check_space(d, still_needed(d, t), e) != 0)
        goto out;
    pthread_mutex_lock(&d->mu);
    *task = dl_task_json_locked(t);
    pthread_mutex_unlock(&d->mu);
    dl_task_add(d, t);
    t = NULL;
    *status = 202;
    rc = 0;
out:
    dl_task_free(t);
    rt_hf_files_free(v, n);
    return rc;
}

/* A repository path that can be written under the work directory: no
 * absolute path, no "." or ".." segment, no control bytes. */
static bool safe_rel_path(const char *p)
{
    if (!*p || *p == '/' || strlen(p) > 1024)
        return false;
    for (const char *s = p; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '\\')
            return false;
    char *copy = cm_xstrdup(p), *save = NULL;
    bool ok = true;
    for (char *seg = strtok_r(copy, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
        if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
            ok = false;
    free(copy);
    return ok && !strstr(p, "//");
}

/* Weights in formats the converter does not need when safetensors are
 * there (a repository often carries both). */
static bool redundant_weight(const char *path)
{
    static const char *const ext[] = { ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ot",
                                       ".tflite", ".gguf", ".mlmodel", ".onnx_data" };
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        if (ends_with_ci(path, ext[i]))
            return true;
    return false;
}

int rt_downloads_convert(rt_downloads_t *d, const char *repo, const char *revision, const char *outtype,
                         const char *name, cJSON **task, rt_hf_err_t *e)
{
    *task = NULL;
    memset(e, 0, sizeof(*e));
    const char *rev = revision ? revision : "main";
    const char *ot = outtype ? outtype : "f16";
    if (!rt_hf_repo_valid(repo))
        return err_set(e, 400, "repo must be a Hugging Face repository id (owner/name)");
    if (!rt_hf_revision_valid(rev))
        return err_set(e, 400, "revision is not a valid branch, tag or commit");
    if (strcmp(ot, "f16") != 0 && strcmp(ot, "q8_0") != 0 && strcmp(ot, "bf16") != 0 && strcmp(ot, "f32") != 0)
        return err_set(e, 400, "outtype must be one of f16, bf16, f32, q8_0");
    if (name && !rt_model_id_valid(name))
        return err_set(e, 400, "name must be 1 to 128 characters of [A-Za-z0-9._-], not starting with '.'");
    if (name && strlen(name) > 128)
        return err_set(e, 400, "name must be 1 to 128 characters of [A-Za-z0-9._-], not starting with '.'");
    dl_task_t *t = dl_task_new(true, repo, rev);
    t->outtype = cm_xstrdup(ot);
    t->name = name ? cm_xstrdup(name) : NULL;
    if (!d->converter) {
        /* fails at once, and stays listed so the operator sees why */
        snprintf(t->state, sizeof(t->state), "failed");
        t->error = cm_xstrdup(DL_NO_CONVERTER);
    } else {
        rt_hf_file_t *v = NULL;
        size_t n = 0;
        char commit[41];
        if (resolve(d, repo, rev, commit, &v, &n, e) != 0) {
            dl_task_free(t);
            return -1;
        }
        t->commit = commit[0] ? cm_xstrdup(commit) : NULL;
        bool safetensors = false;
        for (size_t i = 0; i < n; i++)
            safetensors |= ends_with_ci(v[i].path, ".safetensors");
        for (size_t i = 0; i < n; i++)
            if (safe_rel_path(v[i].path) && !(safetensors && redundant_weight(v[i].path)))
                add_file(t, &v[i]);
        rt_hf_files_free(v, n);
        /* the sources, then an output about as large */
        uint64_t need = t->bytes_total > UINT64_MAX / 4 ? UINT64_MAX / 2 : t->bytes_total * 2;
        if (t->nfiles == 0) {
            err_set(e, 400, "%s has no files to convert", repo);
            dl_task_free(t);
            return -1;
        }
        if (check_space(d, need, e) != 0) {
            dl_task_free(t);
            return -1;
        }
    }
    pthread_mutex_lock(&d->mu);
    *task = dl_task_json_locked(t);
    pthread_mutex_unlock(&d->mu);
    dl_task_add(d, t);
    return 0;
}

int rt_downloads_search(rt_downloads_t *d, const char *search, int limit, cJSON **out, rt_hf_err_t *e)
{
    return rt_hf_search(&d->hf, search, limit, out, e);
}
