/* models_discover: registers the GGUF files already on disk
 * (rt_models_discover, POST /api/models/discover-gguf).
 *
 * Two levels, like the node's own scan (node/src/models.c): the files at
 * the top of the directory, and the files of each subdirectory (never
 * deeper). Candidates are gathered first, sorted by path (the answer does
 * not depend on readdir's order), grouped (the parts of a split GGUF become
 * one model), then registered one by one through rt_models_add, which reads
 * the header and hashes the files. */
#include "models/models.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Files looked at in one discovery: a directory holding more is answered
 * with the first ones and a "skipped" entry saying so, never an unbounded
 * walk on a pool thread. */
#define DISCOVER_MAX_FILES 4096

atomic_bool *rt_models_discovery_flag_(rt_models_t *m); /* models.c */

typedef struct {
    char *path;     /* dir/name or dir/sub/name, as found (not resolved) */
    char *name;     /* the file name */
    char *sub;      /* the subdirectory's name, NULL at the top */
    unsigned part, count; /* split GGUF: part k of count; 0, 0 otherwise */
    bool used;
} cand_t;

typedef struct {
    cand_t *v;
    size_t n, cap;
    bool truncated;
} cands_t;

static void skip(cJSON *skipped, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void skip(cJSON *skipped, const char *file, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddItemToArray(skipped, o);
}

static bool is_gguf_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcasecmp(name + n - 5, ".gguf") == 0;
}

static bool inside(const char *root, const char *canon)
{
    size_t n = strlen(root);
    return strncmp(canon, root, n) == 0 && (canon[n] == '/' || (n == 1 && root[0] == '/'));
}

static void push(cands_t *c, const char *path, const char *name, const char *sub)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        c->v = cm_xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    cand_t *k = &c->v[c->n++];
    memset(k, 0, sizeof(*k));
    k->path = cm_xstrdup(path);
    k->name = cm_xstrdup(name);
    k->sub = sub ? cm_xstrdup(sub) : NULL;
    if (!rt_model_split_part(name, &k->part, &k->count))
        k->part = k->count = 0;
}

/* Looks at one entry of root (sub: the subdirectory it lies in, or NULL at
 * the top); descends into a subdirectory when depth allows. */
static void scan(const char *root, const char *dirpath, const char *sub, cands_t *c, cJSON *skipped);

static void look(const char *root, const char *dirpath, const char *sub, const char *name, cands_t *c,
                 cJSON *skipped)
{
    char path[PATH_MAX], canon[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dirpath, name) >= (int)sizeof(path))
        return;
    struct stat lsb, sb;
    if (lstat(path, &lsb) != 0)
        return; /* gone meanwhile */
    bool gguf = is_gguf_name(name);
    if (S_ISLNK(lsb.st_mode)) {
        if (!gguf && sub)
            return;
        if (!realpath(path, canon) || stat(canon, &sb) != 0) {
            if (gguf)
                skip(skipped, path, "a dangling symbolic link");
            return;
        }
        if (!inside(root, canon)) {
            if (gguf || S_ISDIR(sb.st_mode))
                skip(skipped, path, "a symbolic link that leads out of the directory");
            return;
        }
    } else {
        sb = lsb;
    }
    if (S_ISDIR(sb.st_mode)) {
        if (!sub) /* one level down, never deeper */
            scan(root, path, name, c, skipped);
        return;
    }
    if (!gguf)
        return; /* a download's .part, a README: not ours to mention */
    if (!S_ISREG(sb.st_mode)) {
        skip(skipped, path, "not a regular file");
        return;
    }
    if (c->n >= DISCOVER_MAX_FILES) {
        c->truncated = true;
        return;
    }
    push(c, path, name, sub);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void scan(const char *root, const char *dirpath, const char *sub, cands_t *c, cJSON *skipped)
{
    DIR *d = opendir(dirpath);
    if (!d) {
        if (sub)
            skip(skipped, dirpath, "cannot read the directory: %s", strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 4 * DISCOVER_MAX_FILES) {
        if (de->d_name[0] == '.')
            continue; /* hidden, ".", ".." */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = cm_xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = cm_xstrdup(de->d_name);
    }
    if (de)
        c->truncated = true;
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        look(root, dirpath, sub, names[i], c, skipped);
        free(names[i]);
    }
    free(names);
}

/* The directory part of a candidate's path (what its split siblings share). */
static size_t dir_len(const cand_t *k) { return (size_t)(strrchr(k->path, '/') - k->path); }

/* The length of a split part's name before its "-00002-of-00003.gguf". */
static size_t split_stem_len(const char *name)
{
    const char *of = NULL;
    for (const char *p = name; (p = strstr(p, "-of-")); p++)
        of = p;
    size_t i = of ? (size_t)(of - name) : 0;
    while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
        i--;
    return i > 0 ? i - 1 : 0; /* the '-' before the part number */
}

/* Whether b is another part of the split GGUF whose first part is a: the
 * same directory, the same name up to the split suffix, the same count. */
static bool same_split(const cand_t *a, const cand_t *b)
{
    size_t sa = split_stem_len(a->name), sb = split_stem_len(b->name);
    return b->count == a->count && dir_len(a) == dir_len(b) && strncmp(a->path, b->path, dir_len(a)) == 0 &&
           sa == sb && strncmp(a->name, b->name, sa) == 0;
}

/* How many models the subdirectory sub holds (a split GGUF counts once). */
static size_t models_in_sub(const cands_t *c, const char *sub)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].sub && strcmp(c->v[i].sub, sub) == 0 && c->v[i].part <= 1)
            k++;
    return k;
}

/* Registers one model made of files (paths), files[0] the one llama.cpp
 * opens. */
static void register_one(rt_models_t *m, const cands_t *c, const cand_t *first, const char **paths,
                         size_t npaths, cJSON *registered, cJSON *skipped)
{
    char id[RT_MODEL_ID_MAX];
    if (rt_models_find_path(m, first->path, id)) {
        skip(skipped, first->path, "already registered as '%s'", id);
        return;
    }
    rt_model_rec_t rec = { 0 };
    rec.files = cm_xcalloc(npaths, sizeof(*rec.files));
    rec.nfiles = npaths;
    for (size_t i = 0; i < npaths; i++)
        rec.files[i].path = (char *)paths[i];
    /* the one model of a subdirectory is called what a node scanning the
     * same directory calls it: the subdirectory's name */
    if (first->sub && rt_model_id_valid(first->sub) && models_in_sub(c, first->sub) == 1)
        rec.id = first->sub;
    char err[512];
    int rc = rt_models_add(m, &rec, id, err, sizeof(err));
    free(rec.files);
    if (rc == RT_MODELS_EXISTS) {
        skip(skipped, first->path, "already registered as '%s'", id);
    } else if (rc != 0) {
        skip(skipped, first->path, "%s", err);
    } else {
        rt_model_rec_t r;
        if (rt_models_get(m, id, &r)) {
            cJSON_AddItemToArray(registered, rt_model_json(&r, false));
            rt_model_rec_clear(&r);
        }
    }
}

/* A split GGUF's parts, in order, when all are there; else a skip. */
static void register_split(rt_models_t *m, cands_t *c, size_t i, cJSON *registered, cJSON *skipped)
{
    cand_t *first = &c->v[i];
    const char **paths = cm_xcalloc(first->count, sizeof(*paths));
    paths[0] = first->path;
    first->used = true;
    for (size_t j = 0; j < c->n; j++) {
        cand_t *b = &c->v[j];
        if (j != i && !b->used && b->part >= 2 && same_split(first, b) && !paths[b->part - 1]) {
            paths[b->part - 1] = b->path;
            b->used = true;
        }
    }
    unsigned missing = 0;
    for (unsigned k = 0; k < first->count && !missing; k++)
        if (!paths[k])
            missing = k + 1;
    if (missing)
        skip(skipped, first->path, "split GGUF: part %u of %u is missing", missing, first->count);
    else
        register_one(m, c, first, paths, first->count, registered, skipped);
    free(paths);
}

static int discover(rt_models_t *m, const char *root, cJSON *registered, cJSON *skipped)
{
    cands_t c = { 0 };
    scan(root, root, NULL, &c, skipped);
    for (size_t i = 0; i < c.n; i++) {
        cand_t *k = &c.v[i];
        if (k->used)
            continue;
        if (k->part == 1) {
            register_split(m, &c, i, registered, skipped);
        } else if (k->part == 0) {
            k->used = true;
            const char *p = k->path;
            register_one(m, &c, k, &p, 1, registered, skipped);
        }
    }
    /* parts left over belong to no first part */
    for (size_t i = 0; i < c.n; i++)
        if (!c.v[i].used)
            skip(skipped, c.v[i].path, "split GGUF part %u of %u without its first part", c.v[i].part,
                 c.v[i].count);
    if (c.truncated)
        skip(skipped, root, "more than %d files: the rest were not looked at", DISCOVER_MAX_FILES);
    for (size_t i = 0; i < c.n; i++) {
        free(c.v[i].path);
        free(c.v[i].name);
        free(c.v[i].sub);
    }
    free(c.v);
    return 0;
}

int rt_models_discover(rt_models_t *m, const char *dir, cJSON *registered, cJSON *skipped, char *err,
                       size_t errlen)
{
    char root[PATH_MAX];
    struct stat sb;
    const char *d = dir && *dir ? dir : rt_models_dir(m);
    if (!realpath(d, root) || stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", d);
        return -1;
    }
    atomic_bool *busy = rt_models_discovery_flag_(m);
    if (atomic_exchange(busy, true))
        return RT_MODELS_BUSY;
    int rc = discover(m, root, registered, skipped);
    atomic_store(busy, false);
    return rc;
}
