/* log: see log.h. Two locks: `mu` guards the ring and the queue (held only
 * for pointer work, so a logging loop never waits on I/O), `out_mu` guards
 * the outputs (stderr writes, the file and what names it) and is held by
 * whoever writes: the writer thread, or the caller itself when no writer
 * runs. Neither is taken while holding the other. */
#include "log.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_RING 1000
#define DEFAULT_QUEUE_BYTES (1024 * 1024)
#define MSG_MAX 2048 /* longer messages are cut */
#define STAMP_MAX 64

typedef struct {
    char ts[STAMP_MAX];
    cm_log_level_t level;
    char *component;
    char *message;
} entry_t;

/* A line on its way to the outputs: one allocation with its texts. */
typedef struct line {
    struct line *next;
    size_t size;           /* bytes charged to the queue */
    uint64_t dropped;      /* lines dropped just before it: reported first */
    bool report_only;      /* carries only that report (at the writer's exit) */
    time_t sec;            /* picks the day's file */
    cm_log_level_t level;
    char ts[STAMP_MAX];
    const char *component; /* into text */
    const char *message;
    char text[];
} line_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;   /* writer: a line queued, or stop */
    pthread_cond_t done;   /* cm_log_flush: a batch written */
    cm_log_level_t level;  /* atomic */
    entry_t *ring;
    int ring_size, ring_next, ring_count;
    /* the writer (mu) */
    bool accepting;        /* callers queue (false: they write themselves) */
    bool stop;             /* the writer drains and exits */
    bool alive;            /* a writer thread exists (until joined) */
    pthread_t thread;
    line_t *head, *tail;
    size_t queued;         /* bytes queued or being written */
    size_t max_queued;
    uint64_t enq_seq;      /* lines queued so far */
    uint64_t done_seq;     /* of which written */
    uint64_t dropped;      /* since the last report */
    uint64_t dropped_total;
    /* outputs (out_mu) */
    pthread_mutex_t out_mu;
    char *prog;
    char *dir;
    int retention_days;
    long long max_bytes;   /* 0: no cap */
    FILE *file;
    char *path;            /* of the open file */
    long long file_bytes;  /* its size */
    int file_day;          /* yyyymmdd of the open file */
} L = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
    .out_mu = PTHREAD_MUTEX_INITIALIZER,
    .level = CM_LOG_INFO,
};

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

/* ---- outputs (out_mu held) ---- */

/* Opens the file of the given day. */
static void open_day(int day)
{
    if (L.file)
        fclose(L.file);
    L.file = NULL;
    free(L.path);
    L.path = NULL;
    L.file_bytes = 0;
    L.file_day = day;
    if (!L.dir)
        return;
    L.path = cm_xasprintf("%s/%s.%04d-%02d-%02d.jsonl", L.dir, L.prog, day / 10000,
                          day / 100 % 100, day % 100);
    L.file = fopen(L.path, "a");
    struct stat st;
    if (L.file && fstat(fileno(L.file), &st) == 0)
        L.file_bytes = (long long)st.st_size;
}

/* The day's file reached max_bytes: it becomes <file>.1 (replacing an older
 * one) and writing goes on in a new file, so the newest lines are kept and a
 * day costs at most about twice the cap. */
static void roll(void)
{
    fclose(L.file);
    L.file = NULL;
    char *old = cm_xasprintf("%s.1", L.path);
    rename(L.path, old);
    free(old);
    L.file = fopen(L.path, "a");
    L.file_bytes = 0;
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
        bool jsonl = n >= 6 && strcmp(e->d_name + n - 6, ".jsonl") == 0;
        bool rolled = n >= 8 && strcmp(e->d_name + n - 8, ".jsonl.1") == 0;
        if (strncmp(e->d_name, L.prog, plen) != 0 || e->d_name[plen] != '.' || !(jsonl || rolled))
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

/* Text for stderr, gathered so that a batch takes one write. */
typedef struct {
    char *p;
    size_t n, cap;
} text_t;

static void text_add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if (!t->p || t->n + (size_t)k >= t->cap) {
        t->cap = (t->n + (size_t)k + 1) * 2;
        t->p = cm_xrealloc(t->p, t->cap);
        va_start(ap, fmt);
        vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
    }
    t->n += (size_t)k;
}

static void text_flush(text_t *t)
{
    if (t->n)
        fwrite(t->p, 1, t->n, stderr);
    t->n = 0;
}

static void file_line(const char *ts, cm_log_level_t level, const char *component, const char *msg)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "timestamp", ts);
    cJSON_AddStringToObject(j, "level", names[level]);
    cJSON_AddStringToObject(j, "target", component);
    cJSON_AddStringToObject(j, "message", msg);
    char *s = cJSON_PrintUnformatted(j);
    long long n = (long long)strlen(s) + 1;
    if (L.max_bytes > 0 && L.file_bytes > 0 && L.file_bytes + n > L.max_bytes && L.path)
        roll();
    if (L.file) {
        fputs(s, L.file);
        fputc('\n', L.file);
        L.file_bytes += n;
    }
    free(s);
    cJSON_Delete(j);
}

/* One line (after the report of the lines dropped before it) to stderr's
 * text and to the day's file. */
static void emit(const line_t *ln, text_t *err)
{
    if (L.dir) {
        struct tm lt;
        localtime_r(&ln->sec, &lt);
        if (today(&lt) != L.file_day) {
            open_day(today(&lt));
            prune_locked();
        }
    }
    if (ln->dropped) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%llu line(s) dropped: the log writer fell behind",
                 (unsigned long long)ln->dropped);
        text_add(err, "%s %-5s %s: %s\n", ln->ts, names[CM_LOG_WARN], "log", msg);
        if (L.file)
            file_line(ln->ts, CM_LOG_WARN, "log", msg);
    }
    if (!ln->report_only) {
        text_add(err, "%s %-5s %s: %s\n", ln->ts, names[ln->level], ln->component, ln->message);
        if (L.file)
            file_line(ln->ts, ln->level, ln->component, ln->message);
    }
}

/* ---- lines ---- */

static void stamp_now(char *ts, time_t *sec)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, STAMP_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    *sec = now.tv_sec;
}

static line_t *line_new(cm_log_level_t level, const char *component, const char *msg)
{
    size_t cl = strlen(component) + 1, ml = strlen(msg) + 1;
    line_t *ln = cm_xmalloc(sizeof(*ln) + cl + ml);
    ln->next = NULL;
    ln->size = sizeof(*ln) + cl + ml;
    ln->dropped = 0;
    ln->report_only = false;
    ln->level = level;
    stamp_now(ln->ts, &ln->sec);
    memcpy(ln->text, component, cl);
    memcpy(ln->text + cl, msg, ml);
    ln->component = ln->text;
    ln->message = ln->text + cl;
    return ln;
}

/* Writes a batch (a list it frees) and returns the bytes it was charged. */
static size_t write_batch(line_t *ln)
{
    size_t bytes = 0;
    text_t err = { 0 };
    pthread_mutex_lock(&L.out_mu);
    while (ln) {
        line_t *next = ln->next;
        emit(ln, &err);
        bytes += ln->size;
        free(ln);
        ln = next;
    }
    text_flush(&err);
    pthread_mutex_unlock(&L.out_mu);
    free(err.p);
    return bytes;
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "log-writer");
    pthread_mutex_lock(&L.mu);
    for (;;) {
        while (!L.head && !L.stop) {
            /* wakes each second to summarise the sites that were limited */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&L.wake, &L.mu, &ts) != 0 && !L.head && !L.stop) {
                pthread_mutex_unlock(&L.mu);
                cm_log_summarise(0); /* queues its lines: taken on the next turn */
                pthread_mutex_lock(&L.mu);
            }
        }
        if (!L.head)
            break; /* stopping, and nothing is left */
        line_t *batch = L.head;
        L.head = L.tail = NULL;
        uint64_t last = L.enq_seq; /* every line queued so far is in the batch */
        pthread_mutex_unlock(&L.mu);
        size_t bytes = write_batch(batch);
        pthread_mutex_lock(&L.mu);
        L.queued -= bytes; /* room again only once written: the bound is on memory */
        L.done_seq = last;
        bool drained = !L.head;
        pthread_cond_broadcast(&L.done);
        if (drained) {
            /* a burst costs one flush, taken off the callers' path */
            pthread_mutex_unlock(&L.mu);
            pthread_mutex_lock(&L.out_mu);
            if (L.file)
                fflush(L.file);
            pthread_mutex_unlock(&L.out_mu);
            pthread_mutex_lock(&L.mu);
        }
    }
    /* drops after the last queued line are reported before the writer goes */
    uint64_t dropped = L.dropped;
    L.dropped = 0;
    pthread_mutex_unlock(&L.mu);
    if (dropped) {
        line_t *ln = line_new(CM_LOG_WARN, "log", "");
        ln->dropped = dropped;
        ln->report_only = true;
        write_batch(ln);
    }
    return NULL;
}

/* Drains the queue and joins the writer; callers write themselves after. */
static void stop_writer(void)
{
    pthread_mutex_lock(&L.mu);
    if (!L.alive || L.stop) {
        /* none, or another thread is stopping it: wait for that to finish */
        while (L.alive)
            pthread_cond_wait(&L.done, &L.mu);
        pthread_mutex_unlock(&L.mu);
        return;
    }
    L.accepting = false;
    L.stop = true;
    pthread_cond_signal(&L.wake);
    pthread_t t = L.thread;
    pthread_mutex_unlock(&L.mu);
    pthread_join(t, NULL);
    pthread_mutex_lock(&L.out_mu);
    if (L.file)
        fflush(L.file);
    pthread_mutex_unlock(&L.out_mu);
    pthread_mutex_lock(&L.mu);
    L.alive = false;
    L.stop = false;
    pthread_cond_broadcast(&L.done);
    pthread_mutex_unlock(&L.mu);
}

/* mu held. The writer takes no signals: one would cut its write to stderr
 * short (EINTR), and the program's handlers belong to its own threads. */
static void start_writer(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    L.alive = pthread_create(&L.thread, NULL, writer_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    L.accepting = L.alive; /* no thread: callers write themselves, as before init */
}

/* Lines still queued when the process exits are not lost (a main that
 * returns after an error without cm_log_shutdown). */
static void at_exit(void)
{
    stop_writer();
}

/* ---- public ---- */

int cm_log_prune(void)
{
    pthread_mutex_lock(&L.out_mu);
    int n = prune_locked();
    pthread_mutex_unlock(&L.out_mu);
    return n;
}

int cm_log_init(const cm_log_opts_t *o)
{
    static bool registered; /* first init only; init runs on the main thread */
    stop_writer();
    int rc = 0;
    pthread_mutex_lock(&L.out_mu);
    free(L.prog);
    free(L.dir);
    L.prog = cm_xstrdup(o->prog ? o->prog : "llm");
    L.dir = o->dir ? cm_xstrdup(o->dir) : NULL;
    L.retention_days = o->retention_days;
    L.max_bytes = o->max_bytes;
    if (L.dir && cm_mkdir_p(L.dir, 0700) != 0)
        rc = -1;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    open_day(today(&tm));
    prune_locked();
    pthread_mutex_unlock(&L.out_mu);

    pthread_mutex_lock(&L.mu);
    cm_log_set_level(o->level);
    if (!L.ring) {
        L.ring_size = o->ring_size > 0 ? o->ring_size : DEFAULT_RING;
        L.ring = cm_xcalloc((size_t)L.ring_size, sizeof(entry_t));
    }
    L.max_queued = o->queue_bytes > 0 ? o->queue_bytes : DEFAULT_QUEUE_BYTES;
    start_writer();
    pthread_mutex_unlock(&L.mu);
    if (!registered) {
        registered = true;
        atexit(at_exit);
    }
    return rc;
}

void cm_log_shutdown(void)
{
    cm_log_summarise(1);
    stop_writer();
    pthread_mutex_lock(&L.out_mu);
    if (L.file)
        fclose(L.file);
    L.file = NULL;
    free(L.path);
    L.path = NULL;
    L.file_day = 0;
    free(L.prog);
    free(L.dir);
    L.prog = L.dir = NULL;
    pthread_mutex_unlock(&L.out_mu);

    pthread_mutex_lock(&L.mu);
    for (int i = 0; i < L.ring_size; i++) {
        free(L.ring[i].component);
        free(L.ring[i].message);
    }
    free(L.ring);
    L.ring = NULL;
    L.ring_size = L.ring_count = L.ring_next = 0;
    pthread_mutex_unlock(&L.mu);
}

void cm_log_flush(void)
{
    pthread_mutex_lock(&L.mu);
    uint64_t target = L.enq_seq;
    while (L.alive && L.done_seq < target)
        pthread_cond_wait(&L.done, &L.mu);
    pthread_mutex_unlock(&L.mu);
    pthread_mutex_lock(&L.out_mu);
    if (L.file)
        fflush(L.file);
    pthread_mutex_unlock(&L.out_mu);
}

uint64_t cm_log_dropped(void)
{
    pthread_mutex_lock(&L.mu);
    uint64_t n = L.dropped_total;
    pthread_mutex_unlock(&L.mu);
    return n;
}

static void write_msg(cm_log_level_t level, const char *component, const char *msg);

void cm_log_write(cm_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level < cm_log_get_level())
        return;
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    write_msg(level, component, msg);
}

/* ---- per call site limits (LOG_WARN, LOG_ERROR) ---- */

/* Sites registered so far (each at its first line), and their counters. */
static struct {
    pthread_mutex_t mu;
    cm_log_site_t *head;
} S = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int64_t mono_second(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* The summary of a site's suppressed lines: the template only, since the
 * arguments differed and could carry anything. */
static void summary(cm_log_level_t level, const char *component, const char *fmt, uint64_t n)
{
    char msg[MSG_MAX];
    snprintf(msg, sizeof(msg), "\"%.200s\" repeated %llu more time(s) (at most %d a second are written)",
             fmt, (unsigned long long)n, CM_LOG_SITE_PER_SEC);
    write_msg(level, component, msg);
}

void cm_log_site_write(cm_log_site_t *site, cm_log_level_t level, const char *component,
                       const char *fmt, ...)
{
    if (level < cm_log_get_level())
        return;
    if (!component)
        component = "-";
    uint64_t pending = 0;
    int64_t now = mono_second();
    pthread_mutex_lock(&S.mu);
    if (!site->registered) {
        site->registered = 1;
        site->component = cm_xstrdup(component);
        site->fmt = cm_xstrdup(fmt);
        site->level = level;
        site->next = S.head;
        S.head = site;
    }
    if (site->second != now) {
        pending = site->suppressed;
        site->suppressed = 0;
        site->second = now;
        site->count = 0;
    }
    bool write = site->count < CM_LOG_SITE_PER_SEC;
    if (write)
        site->count++;
    else
        site->suppressed++; /* not even formatted: a flood costs a lock and a count */
    pthread_mutex_unlock(&S.mu);
    if (pending)
        summary(level, component, fmt, pending);
    if (!write)
        return;
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    write_msg(level, component, msg);
}

int cm_log_summarise(int all)
{
    enum { BATCH = 32 };
    int written = 0;
    int64_t now = mono_second();
    for (;;) {
        /* taken in batches under the lock, written after it */
        struct {
            cm_log_site_t *site;
            uint64_t n;
        } out[BATCH];
        int k = 0;
        pthread_mutex_lock(&S.mu);
        for (cm_log_site_t *x = S.head; x && k < BATCH; x = x->next)
            if (x->suppressed && (all || x->second != now)) {
                out[k].site = x;
                out[k++].n = x->suppressed;
                x->suppressed = 0;
            }
        pthread_mutex_unlock(&S.mu);
        /* component and fmt are set once at registration and never change */
        for (int i = 0; i < k; i++)
            summary(out[i].site->level, out[i].site->component, out[i].site->fmt, out[i].n);
        written += k;
        if (k < BATCH)
            return written;
    }
}

static void write_msg(cm_log_level_t level, const char *component, const char *msg)
{
    if (!component)
        component = "-";
    /* every allocation before the lock: the lock is for pointer work */
    line_t *ln = line_new(level, component, msg);
    char *rc = cm_xstrdup(component), *rm = cm_xstrdup(msg);

    pthread_mutex_lock(&L.mu);
    if (L.ring) {
        entry_t *e = &L.ring[L.ring_next];
        char *oc = e->component, *om = e->message;
        memcpy(e->ts, ln->ts, sizeof(e->ts));
        e->level = level;
        e->component = rc;
        e->message = rm;
        rc = oc; /* freed below */
        rm = om;
        L.ring_next = (L.ring_next + 1) % L.ring_size;
        if (L.ring_count < L.ring_size)
            L.ring_count++;
    }
    bool sync = !L.accepting;
    if (!sync) {
        /* an empty queue takes any line, so that one longer than the bound
         * still gets through */
        if (L.queued == 0 || L.queued + ln->size <= L.max_queued) {
            ln->dropped = L.dropped;
            L.dropped = 0;
            if (L.tail)
                L.tail->next = ln;
            else
                L.head = ln;
            L.tail = ln;
            L.queued += ln->size;
            L.enq_seq++;
            pthread_cond_signal(&L.wake);
        } else {
            L.dropped++;
            L.dropped_total++;
            free(ln);
        }
        ln = NULL;
    }
    pthread_mutex_unlock(&L.mu);
    free(rc);
    free(rm);
    if (sync) {
        /* no writer (before init, after shutdown): as before it existed */
        text_t err = { 0 };
        pthread_mutex_lock(&L.out_mu);
        emit(ln, &err);
        text_flush(&err);
        if (L.file)
            fflush(L.file);
        pthread_mutex_unlock(&L.out_mu);
        free(err.p);
        free(ln);
    }
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
