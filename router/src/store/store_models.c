/* store_models: the model catalogue's rows (table models, migration 4; see
 * store.h). Writes are synchronous on the write connection: the catalogue
 * calls them from a pool or task thread, never from a loop. */
#include "store/store_internal.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define MODEL_COLS \
    "id, files_json, size, source_repo, source_revision, source_file, format, state, info_json, created_at"

void rt_model_row_free(rt_model_row_t *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->files_json);
    free(r->source_repo);
    free(r->source_revision);
    free(r->source_file);
    free(r->format);
    free(r->state);
    free(r->info_json);
    memset(r, 0, sizeof(*r));
}

int rt_store_model_insert(rt_store_t *st, const rt_model_row_t *r)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db, "INSERT INTO models (" MODEL_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
    if (s) {
        st_bind_text(s, 1, r->id);
        st_bind_text(s, 2, r->files_json);
        sqlite3_bind_int64(s, 3, r->size);
        st_bind_text(s, 4, r->source_repo);
        st_bind_text(s, 5, r->source_revision);
        st_bind_text(s, 6, r->source_file);
        st_bind_text(s, 7, r->format ? r->format : "gguf");
        st_bind_text(s, 8, r->state ? r->state : "ready");
        st_bind_text(s, 9, r->info_json ? r->info_json : "{}");
        sqlite3_bind_int64(s, 10, r->created_at);
    }
    int rc = st_step_done(st->db, s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int rt_store_model_delete(rt_store_t *st, const char *id)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db, "DELETE FROM models WHERE id = ?1");
    if (s)
        st_bind_text(s, 1, id);
    int rc = st_step_done(st->db, s);
    if (rc == RT_STORE_OK && sqlite3_changes(st->db) == 0)
        rc = RT_STORE_NOTFOUND;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static void row_from(sqlite3_stmt *s, rt_model_row_t *r)
{
    r->id = st_col_dup(s, 0);
    r->files_json = st_col_dup(s, 1);
    r->size = sqlite3_column_int64(s, 2);
    r->source_repo = st_col_dup(s, 3);
    r->source_revision = st_col_dup(s, 4);
    r->source_file = st_col_dup(s, 5);
    r->format = st_col_dup(s, 6);
    r->state = st_col_dup(s, 7);
    r->info_json = st_col_dup(s, 8);
    r->created_at = sqlite3_column_int64(s, 9);
}

int rt_store_models_each(rt_store_t *st, void (*cb)(const rt_model_row_t *row, void *arg), void *arg)
{
    rt_model_row_t *rows = NULL;
    size_t n = 0, cap = 0;
    int step = SQLITE_ERROR;
    pthread_mutex_lock(&st->rmu);
    sqlite3_stmt *s = st_prepare(st->rdb, "SELECT " MODEL_COLS " FROM models ORDER BY created_at, id");
    while (s && (step = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = cm_xrealloc(rows, cap * sizeof(*rows));
        }
        row_from(s, &rows[n++]);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    int rc = step == SQLITE_DONE ? RT_STORE_OK : RT_STORE_ERR;
    for (size_t i = 0; i < n; i++) {
        if (rc == RT_STORE_OK)
            cb(&rows[i], arg);
        rt_model_row_free(&rows[i]);
    }
    free(rows);
    return rc;
}
