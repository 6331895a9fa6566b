/* Tests common/log.c: levels, JSON-lines file, tail, retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

int main(void)
{
    cm_util_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(level_parse),
        cmocka_unit_test(file_tail_and_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
