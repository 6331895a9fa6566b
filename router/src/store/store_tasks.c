/* store_tasks: the model tasks (table model_tasks, migration 4; see store.h).
 * Writes go through the writer thread's queue so that a task's rows land in
 * the order its thread wrote them (a progress update queued before a final
 * state can never overwrite it, which a synchronous write beside the queue
 * could); reads use the read connection. */
#include "store/store_internal.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define TASK_COLS                                                                                  \
    "id, kind, repo, revision, filename, model_id, files_json, state, bytes_done, bytes_total, " \
    "error, log, params_json, created_at, updated_at"

static char *dup_or_null(const char *s) { return s ? cm_xstrdup(s) : NULL; }

void rt_task_rec_free(rt_task_rec_t *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->kind);
    free(r->repo);
    free(r->revision);
    free(r->filename);
    free(r->model_id);
    free(r->files_json);
    free(r->state);
    free(r->error);
    free(r->log);
    free(r->params_json);
    memset(r, 0, sizeof(*r));
}

static void task_copy(rt_task_rec_t *dst, const rt_task_rec_t *s)
{
    dst->id = dup_or_null(s->id);
    dst->kind = dup_or_null(s->kind);
    dst->repo = dup_or_null(s->repo);
    dst->revision = dup_or_null(s->revision);
    dst->filename = dup_or_null(s->filename);
    dst->model_id = dup_or_null(s->model_id);
    dst->files_json = dup_or_null(s->files_json ? s->files_json : "[]");
    dst->state = dup_or_null(s->state);
    dst->bytes_done = s->bytes_done;
    dst->bytes_total = s->bytes_total;
    dst->error = dup_or_null(s->error);
    dst->log = dup_or_null(s->log);
    dst->params_json = dup_or_null(s->params_json ? s->params_json : "{}");
    dst->created_at = s->created_at;
    dst->updated_at = s->updated_at;
}

static void task_job_free(void *arg)
{
    rt_task_rec_t *r = arg;
    rt_task_rec_free(r);
    free(r);
}

static void task_put_run(sqlite3 *db, void *arg)
{
    const rt_task_rec_t *r = arg;
    sqlite3_stmt *s = st_prepare(db, "INSERT OR REPLACE INTO model_tasks (" TASK_COLS ") "
                                     "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)");
    if (s) {
        st_bind_text(s, 1, r->id);
        st_bind_text(s, 2, r->kind);
        st_bind_text(s, 3, r->repo);
        st_bind_text(s, 4, r->revision);
        st_bind_text(s, 5, r->filename);
        st_bind_text(s, 6, r->model_id);
        st_bind_text(s, 7, r->files_json);
        st_bind_text(s, 8, r->state);
        sqlite3_bind_int64(s, 9, r->bytes_done);
        sqlite3_bind_int64(s, 10, r->bytes_total);
        st_bind_text(s, 11, r->error);
        st_bind_text(s, 12, r->log);
        st_bind_text(s, 13, r->params_json);
        sqlite3_bind_int64(s, 14, r->created_at);
        sqlite3_bind_int64(s, 15, r->updated_at);
    }
    st_step_done(db, s);
}

void rt_store_task_put(rt_store_t *st, const rt_task_rec_t *rec)
{
    rt_task_rec_t *copy = cm_xcalloc(1, sizeof(*copy));
    task_copy(copy, rec);
    st_post(st, task_put_run, copy, task_job_free);
}

static void task_delete_run(sqlite3 *db, void *arg)
{
    sqlite3_stmt *s = st_prepare(db, "DELETE FROM model_tasks WHERE id = ?1");
    st_bind_text(s, 1, arg);
    st_step_done(db, s);
}

void rt_store_task_delete(rt_store_t *st, const char *id)
{
    st_post(st, task_delete_run, cm_xstrdup(id), free);
}

int rt_store_tasks_each(rt_store_t *st, void (*cb)(const rt_task_rec_t *rec, void *arg), void *arg)
{
    pthread_mutex_lock(&st->rmu);
    sqlite3_stmt *s = st_prepare(st->rdb, "SELECT " TASK_COLS " FROM model_tasks ORDER BY created_at, id");
    int rc = s ? RT_STORE_OK : RT_STORE_ERR;
    int step;
    while (s && (step = sqlite3_step(s)) == SQLITE_ROW) {
        rt_task_rec_t r = {
            .id = st_col_dup(s, 0),
            .kind = st_col_dup(s, 1),
            .repo = st_col_dup(s, 2),
            .revision = st_col_dup(s, 3),
            .filename = st_col_dup(s, 4),
            .model_id = st_col_dup(s, 5),
            .files_json = st_col_dup(s, 6),
            .state = st_col_dup(s, 7),
            .bytes_done = sqlite3_column_int64(s, 8),
            .bytes_total = sqlite3_column_int64(s, 9),
            .error = st_col_dup(s, 10),
            .log = st_col_dup(s, 11),
            .params_json = st_col_dup(s, 12),
            .created_at = sqlite3_column_int64(s, 13),
            .updated_at = sqlite3_column_int64(s, 14),
        };
        cb(&r, arg);
        rt_task_rec_free(&r);
    }
    if (s && step != SQLITE_DONE)
        rc = RT_STORE_ERR;
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    return rc;
}
