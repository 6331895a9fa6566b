#include "models.h"

#include "model_name.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    char *id;
    char *path;
    char *stem; /* the file name without .gguf: the id used on a clash */
} entry_t;

struct nd_models {
    char *dir;
    pthread_mutex_t mu;  /* the list, swapped whole by a scan */
    entry_t *e;
    size_t n, cap;
    _Atomic uint64_t scans;
    /* the watcher (wmu) */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;  /* CLOCK_MONOTONIC: a wall-clock step does not stall it */
    pthread_t thread;
    bool watching, stop;
    int interval_ms;
};

static char *file_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcasecmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    return cm_xstrndup(base, n);
}

char *nd_model_id_from_file(const char *path)
{
    char *id = file_stem(path);
    for (char *p = id + strlen(id); p > id; p--) {
        if (p[-1] != '.' && p[-1] != '-')
            continue;
        if (p - 1 > id && cm_model_quant_tag(p))
            p[-1] = '\0';
        break;
    }
    return id;
}

nd_models_t *nd_models_new(const char *dir)
{
    nd_models_t *m = cm_xcalloc(1, sizeof(*m));
    m->dir = cm_xstrdup(dir);
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->wmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wcv, &ca);
    pthread_condattr_destroy(&ca);
    return m;
}

static void clear(nd_models_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].id);
        free(m->e[i].path);
        free(m->e[i].stem);
    }
    m->n = 0;
}

void nd_models_free(nd_models_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->wmu);
    bool watching = m->watching;
    m->stop = true;
    pthread_cond_signal(&m->wcv);
    pthread_mutex_unlock(&m->wmu);
    if (watching)
        pthread_join(m->thread, NULL);
    clear(m);
    free(m->e);
    free(m->dir);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->wmu);
    pthread_cond_destroy(&m->wcv);
    free(m);
}

static bool is_gguf(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcasecmp(name + n - 5, ".gguf") == 0 && name[0] != '.';
}

static void add(entry_t **e, size_t *n, size_t *cap, char *id, char *path)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *e = cm_xrealloc(*e, *cap * sizeof(entry_t));
    }
    (*e)[*n].id = id;
    (*e)[*n].path = path;
    (*e)[*n].stem = file_stem(path);
    (*n)++;
}

/* A split GGUF's part: "<stem>-00002-of-00005.gguf" -> part 2 of 5 and the
 * stem's length. false for any other name. */
static bool split_part(const char *name, size_t *stem_len, int *part, int *count)
{
    size_t n = strlen(name);
    /* "-00001-of-00005.gguf" is 20 characters */
    if (n <= 20 || strcasecmp(name + n - 5, ".gguf") != 0)
        return false;
    const char *p = name + n - 20;
    if (p[0] != '-' || strncmp(p + 6, "-of-", 4) != 0)
        return false;
    for (int i = 1; i <= 5; i++)
        if (!isdigit((unsigned char)p[i]) || !isdigit((unsigned char)p[i + 9]))
            return false;
    *part = atoi(p + 1);
    *count = atoi(p + 10);
    *stem_len = (size_t)(p - name);
    return *part >= 1 && *part <= *count;
}

/* The model inside a subdirectory: its one GGUF, or the first part of the
 * one split GGUF whose parts are all there (model sync's <id>/<file>
 * layout), else NULL. */
static char *single_gguf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *found = NULL, *first = NULL, *stem = NULL;
    int count = 0, parts = 0, nparts = 0;
    bool split = true;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_gguf(de->d_name))
            continue;
        if (count++ == 0)
            found = cm_xasprintf("%s/%s", dir, de->d_name);
        size_t sl;
        int part, of;
        if (!split || !split_part(de->d_name, &sl, &part, &of)) {
            split = false;
            continue;
        }
        if (!stem) {
            stem = cm_xstrndup(de->d_name, sl);
            nparts = of;
        } else if (strlen(stem) != sl || strncmp(stem, de->d_name, sl) != 0 || of != nparts) {
            split = false;
            continue;
        }
        parts++;
        if (part == 1 && !first)
            first = cm_xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    char *r = NULL;
    if (count == 1 && !(split && nparts > 1)) {
        r = found;
        found = NULL;
    } else if (split && first && parts == nparts && count == nparts) {
        r = first;
        first = NULL;
    }
    free(found);
    free(first);
    free(stem);
    return r;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->id, ((const entry_t *)b)->id);
}

int nd_models_scan(nd_models_t *m)
{
    atomic_fetch_add(&m->scans, 1);
    entry_t *e = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(m->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *path = cm_xasprintf("%s/%s", m->dir, de->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            char *inner = single_gguf(path);
            if (inner)
                add(&e, &n, &cap, cm_xstrdup(de->d_name), inner);
            free(path);
        } else if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && is_gguf(de->d_name)) {
            add(&e, &n, &cap, nd_model_id_from_file(path), path);
        } else {
            free(path);
        }
    }
    if (d)
        closedir(d);
    /* ids that clash fall back to their full stems (decided before renaming) */
    bool *clash = cm_xcalloc(n + 1, sizeof(bool));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            clash[i] |= j != i && strcmp(e[i].id, e[j].id) == 0;
    for (size_t i = 0; i < n; i++) {
        if (clash[i] && strcmp(e[i].id, e[i].stem) != 0) {
            free(e[i].id);
            e[i].id = cm_xstrdup(e[i].stem);
        }
    }
    free(clash);
    if (n > 1)
        qsort(e, n, sizeof(entry_t), cmp_entry);
    pthread_mutex_lock(&m->mu);
    clear(m);
    free(m->e);
    m->e = e;
    m->n = n;
    m->cap = cap;
    pthread_mutex_unlock(&m->mu);
    return (int)n;
}

uint64_t nd_models_scans(nd_models_t *m)
{
    return atomic_load(&m->scans);
}

static void *watch_main(void *arg)
{
    nd_models_t *m = arg;
    pthread_setname_np(pthread_self(), "models-scan");
    pthread_mutex_lock(&m->wmu);
    while (!m->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += m->interval_ms / 1000;
        ts.tv_nsec += (long)(m->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!m->stop && pthread_cond_timedwait(&m->wcv, &m->wmu, &ts) == 0) {
        }
        if (m->stop)
            break;
        pthread_mutex_unlock(&m->wmu);
        nd_models_scan(m); /* the disk, off every loop; readers see the swap */
        pthread_mutex_lock(&m->wmu);
    }
    pthread_mutex_unlock(&m->wmu);
    return NULL;
}

int nd_models_watch(nd_models_t *m, int interval_ms)
{
    pthread_mutex_lock(&m->wmu);
    int rc = 0;
    if (!m->watching) {
        m->interval_ms = interval_ms > 0 ? interval_ms : 1;
        m->watching = pthread_create(&m->thread, NULL, watch_main, m) == 0;
        rc = m->watching ? 0 : -1;
    }
    pthread_mutex_unlock(&m->wmu);
    return rc;
}

char *nd_models_path(nd_models_t *m, const char *id)
{
    char *r = NULL;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n && !r; i++)
        if (strcmp(m->e[i].id, id) == 0)
            r = cm_xstrdup(m->e[i].path);
    pthread_mutex_unlock(&m->mu);
    return r;
}

cJSON *nd_models_ids_json(nd_models_t *m)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(m->e[i].id));
    pthread_mutex_unlock(&m->mu);
    return a;
}

size_t nd_models_count(nd_models_t *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int nd_models_pick_victim(const nd_loaded_info_t *m, int n)
{
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (m[i].in_flight > 0)
            continue;
        if (best < 0 || m[i].last_used_ms < m[best].last_used_ms)
            best = i;
    }
    return best;
}

int nd_models_room(const nd_loaded_info_t *m, int n, int max_loaded, uint64_t max_memory,
                   uint64_t bytes)
{
    if (max_memory && bytes > max_memory)
        return ND_ROOM_NEVER;
    uint64_t used = 0;
    for (int i = 0; i < n; i++)
        used += m[i].bytes;
    if ((max_loaded <= 0 || n < max_loaded) && (!max_memory || used + bytes <= max_memory))
        return ND_ROOM_OK;
    int v = nd_models_pick_victim(m, n);
    return v < 0 ? ND_ROOM_WAIT : v;
}
