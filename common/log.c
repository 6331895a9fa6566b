#include "log.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    char ts[64];
    cm_log_level_t level;
    char *component;
    char *message;
} entry_t;

static struct {
    pthread_mutex_t mu;
    cm_log_level_t level;
    char *prog;
    char *dir;
    int retention_days;
    FILE *file;
    int file_day;      /* yyyymmdd of the open file */
    entry_t *ring;
    int ring_size, ring_next, ring_count;
} L = { .mu = PTHREAD_MUTEX_INITIALIZER, .level = CM_LOG_INFO };

static const char *names[] = { "trace", "debug", "info", "warn", "error" };

const char *cm_log_level_name(cm_log_level_t level)
{
    return names[level];
}

int cm_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    /* EnvFilter style "a=debug,b=info": take the text after the last '=' */
    const char *eq = strrchr(s, '=');
    if (eq)
        s = eq + 1;
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return CM_LOG_WARN;
    return -1;
}

void cm_log_set_level(cm_log_level_t level)
{
    __atomic_store_n(&L.level, level, __ATOMIC_RELAXED);
}

cm_log_level_t cm_log_get_level(void)
{
    return __atomic_load_n(&L.level, __ATOMIC_RELAXED);
}

static int today(struct tm *tm)
{
    return (tm->tm_year + 1900) * 10000 + (tm->tm_mon + 1) * 100 + tm->tm_mday;
}

/* Opens the file of the given day; mu held. */
static void open_day(int day)
{
    if (L.file)
        fclose(L.file);
    L.file = NULL;
    L.file_day = day;
    if (!L.dir)
        return;
    char *path = cm_xasprintf("%s/%s.%04d-%02d-%02d.jsonl", L.dir, L.prog, day / 10000,
                              day / 100 % 100, day % 100);
    L.file = fopen(path, "a");
    free(path);
}

static int prune_locked(void)
{
    if (!L.dir || L.retention_days <= 0)
        return 0;
    DIR *d = opendir(L.dir);
    if (!d)
        return 0;
    int removed = 0;
    time_t cutoff = time(NULL) - (time_t)L.retention_days * 86400;
    size_t plen = strlen(L.prog);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, L.prog, plen) != 0 || e->d_name[plen] != '.' || n < 6 ||
            strcmp(e->d_name + n - 6, ".jsonl") != 0)
            continue;
        char *path = cm_xasprintf("%s/%s", L.dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && st.st_mtime < cutoff && remove(path) == 0)
            removed++;
        free(path);
    }
    closedir(d);
    return removed;
}

int cm_log_prune(void)
{
    pthread_mutex_lock(&L.mu);
    int n = prune_locked();
    pthread_mutex_unlock(&L.mu);
    return n;
}

int cm_log_init(const cm_log_opts_t *o)
{
    pthread_mutex_lock(&L.mu);
    free(L.prog);
    free(L.dir);
    L.prog = cm_xstrdup(o->prog ? o->prog : "llm");
    L.dir = o->dir ? cm_xstrdup(o->dir) : NULL;
    L.retention_days = o->retention_days;
    L.level = o->level;
    if (!L.ring) {
        L.ring_size = o->ring_size > 0 ? o->ring_size : 1000;
        L.ring = cm_xcalloc((size_t)L.ring_size, sizeof(entry_t));
    }
    int rc = 0;
    if (L.dir && cm_mkdir_p(L.dir, 0700) != 0)
        rc = -1;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    open_day(today(&tm));
    prune_locked();
    pthread_mutex_unlock(&L.mu);
    return rc;
}

void cm_log_shutdown(void)
{
    pthread_mutex_lock(&L.mu);
    if (L.file)
        fclose(L.file);
    L.file = NULL;
    for (int i = 0; i < L.ring_size; i++) {
        free(L.ring[i].component);
        free(L.ring[i].message);
    }
    free(L.ring);
    L.ring = NULL;
    L.ring_size = L.ring_count = L.ring_next = 0;
    free(L.prog);
    free(L.dir);
    L.prog = L.dir = NULL;
    pthread_mutex_unlock(&L.mu);
}

void cm_log_write(cm_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level < cm_log_get_level())
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    pthread_mutex_lock(&L.mu);
    fprintf(stderr, "%s %-5s %s: %s\n", stamp, names[level], component, msg);
    if (L.dir) {
        struct tm lt;
        localtime_r(&ts.tv_sec, &lt);
        if (today(&lt) != L.file_day) {
            open_day(today(&lt));
            prune_locked();
        }
    }
    if (L.file || L.ring) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "timestamp", stamp);
        cJSON_AddStringToObject(j, "level", names[level]);
        cJSON_AddStringToObject(j, "target", component);
        cJSON_AddStringToObject(j, "message", msg);
        if (L.file) {
            char *line = cJSON_PrintUnformatted(j);
            fprintf(L.file, "%s\n", line);
            fflush(L.file);
            free(line);
        }
        cJSON_Delete(j);
    }
    if (L.ring) {
        entry_t *e = &L.ring[L.ring_next];
        free(e->component);
        free(e->message);
        memcpy(e->ts, stamp, sizeof(stamp));
        e->level = level;
        e->component = cm_xstrdup(component);
        e->message = cm_xstrdup(msg);
        L.ring_next = (L.ring_next + 1) % L.ring_size;
        if (L.ring_count < L.ring_size)
            L.ring_count++;
    }
    pthread_mutex_unlock(&L.mu);
}

char *cm_log_tail_json(int n)
{
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&L.mu);
    if (n < 0)
        n = 0;
    if (n > L.ring_count)
        n = L.ring_count;
    for (int k = n; k > 0; k--) {
        int idx = (L.ring_next - k + L.ring_size) % (L.ring_size ? L.ring_size : 1);
        entry_t *e = &L.ring[idx];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "timestamp", e->ts);
        cJSON_AddStringToObject(j, "level", names[e->level]);
        cJSON_AddStringToObject(j, "target", e->component);
        cJSON_AddStringToObject(j, "message", e->message);
        cJSON_AddItemToArray(arr, j);
    }
    pthread_mutex_unlock(&L.mu);
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}
