/* Shared by the history's unit tests: a temporary directory per run
 * (cmocka group setup/teardown) and opening a history file inside it. */
#ifndef TEST_HISTORY_FIXTURE_H
#define TEST_HISTORY_FIXTURE_H

#include "store/history.h"

#include <stdbool.h>

extern char g_dir[256];
/* "<g_dir>/sub/<name>" (a new string) */
char *db_path(const char *name);
int setup(void **state);
int teardown(void **state);
/* Opens (creating) the history file name, FTS5 unless no_fts; fails the test otherwise. */
rt_history_t *open_at(const char *name, bool no_fts);
/* A list callback counting rows into *(int *)arg. */
void count_rows(const rt_history_row_t *r, void *arg);

#endif
