/* The temporary directory and the opening helper test_history.c and
 * test_history_rollup.c share. */
#include "history_fixture.h"

#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

char g_dir[256];

char *db_path(const char *name) { return cm_xasprintf("%s/sub/%s", g_dir, name); }

int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/llmr-test-history-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

int teardown(void **state)
{
    (void)state;
    char *cmd = cm_xasprintf("rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

rt_history_t *open_at(const char *name, bool no_fts)
{
    char *path = db_path(name);
    rt_history_t *h = NULL;
    char err[256] = "";
    rt_history_opts_t o = { .fts = !no_fts };
    int rc = rt_history_open_ex(path, &o, &h, err, sizeof(err));
    if (rc != 0)
        print_error("open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(h);
    free(path);
    return h;
}

void count_rows(const rt_history_row_t *r, void *arg)
{
    (void)r;
    (*(int *)arg)++;
}
