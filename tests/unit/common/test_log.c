/* Tests common/log.c: levels, JSON-lines file, tail, retention; the writer
 * thread: order, many threads, drops when its queue is full, flush, and the
 * synchronous path before init and after shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static void level_parse(void **state)
{
    (void)state;
    assert_int_equal(cm_log_level_parse("debug"), CM_LOG_DEBUG);
    assert_int_equal(cm_log_level_parse("WARN"), CM_LOG_WARN);
    assert_int_equal(cm_log_level_parse("warning"), CM_LOG_WARN);
    assert_int_equal(cm_log_level_parse("llm_router=trace"), CM_LOG_TRACE);
    assert_int_equal(cm_log_level_parse("loud"), -1);
    assert_int_equal(cm_log_level_parse(NULL), -1);
}

static char *only_file(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *found = NULL;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "prog.", 5) == 0 && strstr(e->d_name, ".jsonl")) {
            free(found);
            found = cm_xasprintf("%s/%s", dir, e->d_name);
        }
    closedir(d);
    return found;
}

static void file_tail_and_retention(void **state)
{
    (void)state;
    char dir[] = "/tmp/llmr-log-XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* an old file that retention must remove, and a foreign one it must keep */
    char *old = cm_xasprintf("%s/prog.2000-01-01.jsonl", dir);
    char *other = cm_xasprintf("%s/other.2000-01-01.jsonl", dir);
    assert_int_equal(cm_write_file(old, "{}\n", 3, 0600), 0);
    assert_int_equal(cm_write_file(other, "{}\n", 3, 0600), 0);
    struct utimbuf t = { 946684800, 946684800 };
    utime(old, &t);
    utime(other, &t);

    cm_log_opts_t o = { .prog = "prog", .dir = dir, .retention_days = 7, .level = CM_LOG_INFO, .ring_size = 3 };
    assert_int_equal(cm_log_init(&o), 0);
    struct stat st;
    assert_int_not_equal(stat(old, &st), 0);
    assert_int_equal(stat(other, &st), 0);

    LOG_DEBUG("t", "hidden %d", 1);
    LOG_INFO("t", "first \"quoted\"");
    LOG_WARN("t", "second");
    cm_log_set_level(CM_LOG_DEBUG);
    LOG_DEBUG("t", "third");
    LOG_ERROR("t", "fourth");

    char *tail = cm_log_tail_json(10);
    cJSON *arr = cJSON_Parse(tail);
    assert_int_equal(cJSON_GetArraySize(arr), 3); /* ring holds 3 */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "message")->valuestring, "second");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 2), "level")->valuestring, "error");
    cJSON_Delete(arr);
    free(tail);
    tail = cm_log_tail_json(1);
    arr = cJSON_Parse(tail);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    cJSON_Delete(arr);
    free(tail);
    cm_log_shutdown();

    char *file = only_file(dir);
    assert_non_null(file);
    assert_non_null(strstr(file, "/prog."));
    char *data;
    assert_int_equal(cm_read_file(file, 1 << 20, &data, NULL), 0);
    int lines = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j); /* every line is JSON */
        assert_non_null(cJSON_GetObjectItem(j, "timestamp"));
        cJSON_Delete(j);
        lines++;
    }
    assert_int_equal(lines, 4);
    free(data);
    free(file);
    free(old);
    free(other);
    char *cmd = cm_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* ---- the writer ---- */

static char *new_dir(void)
{
    char *dir = cm_xstrdup("/tmp/llmr-log-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(char *dir)
{
    char *cmd = cm_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dir);
}

/* Points stderr at fd (the lines the writer copies there); returns the old one. */
static int stderr_to(int fd)
{
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    return saved;
}

static int stderr_to_null(void)
{
    int fd = open("/dev/null", O_WRONLY);
    int saved = stderr_to(fd);
    close(fd);
    return saved;
}

static void stderr_back(int saved)
{
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
}

/* The file's lines as parsed JSON objects (an array the caller deletes). */
static cJSON *file_lines(const char *dir)
{
    char *file = only_file(dir);
    assert_non_null(file);
    char *data;
    assert_int_equal(cm_read_file(file, 64 << 20, &data, NULL), 0);
    cJSON *arr = cJSON_CreateArray();
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        cJSON_AddItemToArray(arr, j);
    }
    free(data);
    free(file);
    return arr;
}

static const char *field(const cJSON *j, const char *name)
{
    const cJSON *f = cJSON_GetObjectItem(j, name);
    assert_true(cJSON_IsString(f));
    return f->valuestring;
}

/* Every line logged reaches the file, in order, by the time shutdown returns. */
static void order_kept_after_shutdown(void **state)
{
    (void)state;
    char *dir = new_dir();
    uint64_t dropped = cm_log_dropped();
    int saved = stderr_to_null();
    cm_log_opts_t o = { .prog = "prog", .dir = dir, .level = CM_LOG_INFO };
    assert_int_equal(cm_log_init(&o), 0);
    /* 2000 lines of ~150 bytes stay under the default 1 MiB queue, so none
     * may be dropped however slow the writer is: normal use loses nothing */
    for (int i = 0; i < 2000; i++)
        LOG_INFO("order", "line %d", i);
    cm_log_shutdown();
    stderr_back(saved);
    assert_int_equal(cm_log_dropped(), dropped);
    cJSON *lines = file_lines(dir);
    assert_int_equal(cJSON_GetArraySize(lines), 2000);
    int i = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, lines) {
        char want[32];
        snprintf(want, sizeof(want), "line %d", i++);
        assert_string_equal(field(j, "message"), want);
        assert_string_equal(field(j, "target"), "order");
        assert_string_equal(field(j, "level"), "info");
    }
    cJSON_Delete(lines);
    remove_dir(dir);
}

/* cm_log_flush: what was logged is in the file while the writer runs. */
static void flush_reaches_file(void **state)
{
    (void)state;
    char *dir = new_dir();
    cm_log_opts_t o = { .prog = "prog", .dir = dir, .level = CM_LOG_INFO };
    assert_int_equal(cm_log_init(&o), 0);
    LOG_INFO("flush", "one");
    LOG_WARN("flush", "two");
    cm_log_flush();
    cJSON *lines = file_lines(dir);
    assert_int_equal(cJSON_GetArraySize(lines), 2);
    assert_string_equal(field(cJSON_GetArrayItem(lines, 1), "message"), "two");
    cJSON_Delete(lines);
    cm_log_shutdown();
    remove_dir(dir);
}

#define THREADS 8
#define PER_THREAD 1000

static void *logger(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        LOG_INFO("many", "t%d n%d", t, i);
        if (i % 100 == 0) {
            char *tail = cm_log_tail_json(5); /* readers of the ring meanwhile */
            free(tail);
        }
    }
    return NULL;
}

/* Threads logging at once: every line once, each thread's lines in order. */
static void many_threads(void **state)
{
    (void)state;
    char *dir = new_dir();
    uint64_t dropped = cm_log_dropped();
    int saved = stderr_to_null();
    /* a queue that holds everything: the count below must be exact */
    cm_log_opts_t o = { .prog = "prog", .dir = dir, .level = CM_LOG_INFO, .queue_bytes = 32 << 20 };
    assert_int_equal(cm_log_init(&o), 0);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, logger, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    cm_log_shutdown();
    stderr_back(saved);
    assert_int_equal(cm_log_dropped(), dropped);
    cJSON *lines = file_lines(dir);
    assert_int_equal(cJSON_GetArraySize(lines), THREADS * PER_THREAD);
    int next[THREADS] = { 0 };
    const cJSON *j;
    cJSON_ArrayForEach(j, lines) {
        int t, n;
        assert_int_equal(sscanf(field(j, "message"), "t%d n%d", &t, &n), 2);
        assert_true(t >= 0 && t < THREADS);
        assert_int_equal(n, next[t]);
        next[t]++;
    }
    cJSON_Delete(lines);
    remove_dir(dir);
}

typedef struct {
    int fd;
    char *text;
    size_t len;
} drain_t;

static void *drain(void *arg)
{
    drain_t *d = arg;
    char buf[65536];
    ssize_t n;
    while ((n = read(d->fd, buf, sizeof(buf))) > 0) {
        d->text = cm_xrealloc(d->text, d->len + (size_t)n + 1);
        memcpy(d->text + d->len, buf, (size_t)n);
        d->len += (size_t)n;
        d->text[d->len] = '\0';
    }
    return NULL;
}

/* A writer stuck on a stderr nobody reads: callers do not wait, lines beyond
 * the queue are dropped and counted, and once stderr moves again the count
 * is reported in the file and on stderr before the next line. */
static void full_queue_drops(void **state)
{
    (void)state;
    char *dir = new_dir();
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = stderr_to(p[1]);
    uint64_t dropped0 = cm_log_dropped();
    cm_log_opts_t o = { .prog = "prog", .dir = dir, .level = CM_LOG_INFO, .queue_bytes = 16384 };
    assert_int_equal(cm_log_init(&o), 0);
    /* ~450 KB: far more than the pipe (64 KiB) and the queue hold together */
    enum { FLOOD = 3000 };
    for (int i = 0; i < FLOOD; i++)
        LOG_INFO("flood", "line %d %0100d", i, 0);
    uint64_t dropped = cm_log_dropped() - dropped0;
    assert_true(dropped > 0);
    assert_true(dropped < FLOOD);
    drain_t d = { .fd = p[0] };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain, &d), 0);
    cm_log_flush(); /* stderr moves again: the queue empties */
    LOG_INFO("flood", "after");
    cm_log_shutdown();
    stderr_back(saved);
    close(p[1]);
    pthread_join(th, NULL);
    close(p[0]);
    assert_int_equal(cm_log_dropped() - dropped0, dropped); /* none since */

    cJSON *lines = file_lines(dir);
    uint64_t reported = 0;
    int kept = 0, reports = 0, last = -1;
    const cJSON *j;
    cJSON_ArrayForEach(j, lines) {
        const char *msg = field(j, "message");
        if (strcmp(field(j, "target"), "log") == 0) {
            unsigned long long n;
            assert_int_equal(sscanf(msg, "%llu line(s) dropped", &n), 1);
            assert_string_equal(field(j, "level"), "warn");
            reported += n;
            reports++;
            continue;
        }
        kept++;
        int i;
        if (strcmp(msg, "after") == 0)
            i = FLOOD;
        else
            assert_int_equal(sscanf(msg, "line %d", &i), 1);
        assert_true(i > last); /* order kept, with gaps where lines dropped */
        last = i;
    }
    assert_int_equal(last, FLOOD); /* "after" came through, last */
    assert_true(reports >= 1);
    assert_int_equal(reported, dropped);
    assert_int_equal((uint64_t)kept + dropped, FLOOD + 1);
    cJSON_Delete(lines);
    assert_non_null(d.text);
    assert_non_null(strstr(d.text, "line(s) dropped: the log writer fell behind"));
    assert_non_null(strstr(d.text, "flood: after\n"));
    free(d.text);
    remove_dir(dir);
}

/* Before init and after shutdown a line is on stderr when the call returns. */
static void sync_without_writer(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = stderr_to(p[1]);
    LOG_WARN("sync", "no writer %d", 1);
    stderr_back(saved);
    close(p[1]);
    char buf[4096];
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, " warn  sync: no writer 1\n"));
    char *tail = cm_log_tail_json(10);
    assert_string_equal(tail, "[]"); /* no ring without init */
    free(tail);
}

/* Finding 9: one call site of LOG_WARN writes at most CM_LOG_SITE_PER_SEC
 * lines a second; the others are counted and summarised with the template,
 * never their arguments. Nothing is lost from the count. */
static void warn_flood_is_summarised(void **state)
{
    (void)state;
    char *dir = new_dir();
    cm_log_opts_t o = { .prog = "prog", .dir = dir, .level = CM_LOG_INFO, .ring_size = 5000 };
    assert_int_equal(cm_log_init(&o), 0);
    enum { FLOOD = 5000 };
    for (int i = 0; i < FLOOD; i++)
        LOG_WARN("auth", "login attempts from 10.0.%d.%d are rate-limited", i / 256, i % 256);
    cm_log_summarise(1);
    cm_log_shutdown();
    cJSON *lines = file_lines(dir);
    unsigned long long written = 0, summarised = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, lines) {
        const char *msg = field(j, "message");
        unsigned long long n;
        const char *rep = strstr(msg, "\" repeated ");
        if (rep) {
            assert_non_null(strstr(msg, "login attempts from 10.0.%d.%d are rate-limited"));
            assert_int_equal(sscanf(rep, "\" repeated %llu more", &n), 1);
            summarised += n;
        } else {
            assert_non_null(strstr(msg, "are rate-limited"));
            written++;
        }
        assert_string_equal(field(j, "level"), "warn");
    }
    /* the flood spans one second or a few */
    assert_true(written >= CM_LOG_SITE_PER_SEC && written <= 4 * CM_LOG_SITE_PER_SEC);
    assert_int_equal(written + summarised, FLOOD);
    cJSON_Delete(lines);
    /* INFO is not limited */
    free(dir);
}

/* The size cap: a day's file rolls to .1 before it passes max_bytes. */
static void file_size_cap(void **state)
{
    (void)state;
    char *dir = new_dir();
    cm_log_opts_t o = { .prog = "prog", .dir = dir, .level = CM_LOG_INFO, .max_bytes = 4096 };
    assert_int_equal(cm_log_init(&o), 0);
    for (int i = 0; i < 200; i++)
        LOG_INFO("t", "line %d %060d", i, 0);
    cm_log_shutdown();
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0, rolled = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = cm_xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size <= 4096);
        assert_true(st.st_size > 0);
        files++;
        rolled += strstr(e->d_name, ".jsonl.1") != NULL;
        free(path);
    }
    closedir(d);
    assert_int_equal(files, 2);
    assert_int_equal(rolled, 1);
    free(dir);
}

int main(void)
{
    cm_util_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_without_writer), /* before any init */
        cmocka_unit_test(level_parse),
        cmocka_unit_test(file_tail_and_retention),
        cmocka_unit_test(sync_without_writer), /* after a shutdown */
        cmocka_unit_test(order_kept_after_shutdown),
        cmocka_unit_test(flush_reaches_file),
        cmocka_unit_test(many_threads),
        cmocka_unit_test(full_queue_drops),
        cmocka_unit_test(warn_flood_is_summarised),
        cmocka_unit_test(file_size_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
