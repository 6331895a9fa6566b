/* store: SQLite connection, migrations, the writer thread, node records.
 * Users, API keys and revoked tokens are in store_users.c. */
#include "store/store_internal.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fire-and-forget writes waiting for the writer; beyond this they are dropped
 * (and counted) so that a stalled disk never stalls a request loop. */
#define QUEUE_MAX 65536
/* Jobs committed together in one transaction. */
#define BATCH_MAX 512

/* Numbered migrations: migrations[i] brings the schema from version i to
 * i + 1 (PRAGMA user_version). Never edit a released one; append. */
static const char *const migrations[] = {
    /* 1: users, API keys, nodes */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  key_hash TEXT NOT NULL UNIQUE,"
    "  key_prefix TEXT NOT NULL,"
    "  created_by TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER,"
    "  last_used_at INTEGER);"
    "CREATE TABLE nodes ("
    "  id TEXT PRIMARY KEY,"
    "  machine_name TEXT NOT NULL,"
    "  ip_address TEXT NOT NULL,"
    "  runtime_port INTEGER NOT NULL,"
    "  api_port INTEGER NOT NULL,"
    "  runtime_version TEXT,"
    "  gpu_available INTEGER NOT NULL DEFAULT 0,"
    "  gpu_devices_json TEXT NOT NULL DEFAULT '[]',"
    "  custom_name TEXT,"
    "  tags_json TEXT NOT NULL DEFAULT '[]',"
    "  notes TEXT,"
    "  token_hash TEXT,"
    "  registered_at INTEGER NOT NULL);",
    /* 2: logout revocations survive a restart */
    "CREATE TABLE revoked_tokens ("
    "  jti TEXT PRIMARY KEY,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);",
    /* 3: the secret the router presents to each node, sealed (secretbox
     * under a key kept outside the database, see core/nodes.c) */
    "ALTER TABLE nodes ADD COLUMN secret_box TEXT;",
    /* 4: the model catalogue and its download and conversion tasks
     * (store_models.c). files_json: [{"name","size","sha256"}] in load
     * order (a split GGUF has several); info_json: the GGUF header's facts */
    "CREATE TABLE models ("
    "  id TEXT PRIMARY KEY,"
    "  files_json TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  source_repo TEXT,"
    "  source_revision TEXT,"
    "  source_file TEXT,"
    "  format TEXT NOT NULL DEFAULT 'gguf',"
    "  state TEXT NOT NULL DEFAULT 'ready',"
    "  info_json TEXT NOT NULL DEFAULT '{}',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE model_tasks ("
    "  id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('download', 'convert')),"
    "  repo TEXT NOT NULL,"
    "  revision TEXT,"
    "  filename TEXT,"
    "  model_id TEXT,"
    "  files_json TEXT NOT NULL DEFAULT '[]',"
    "  state TEXT NOT NULL,"
    "  bytes_done INTEGER NOT NULL DEFAULT 0,"
    "  bytes_total INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  log TEXT,"
    "  params_json TEXT NOT NULL DEFAULT '{}',"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX model_tasks_state ON model_tasks (state);",
};

int rt_store_latest_version(void) { return (int)CM_ARRAY_LEN(migrations); }

/* ---- helpers shared by store_*.c ---- */

/* Statements the current thread ran (see rt_store_thread_statements). */
static _Thread_local uint64_t t_statements;

uint64_t rt_store_thread_statements(void) { return t_statements; }

sqlite3_stmt *st_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    t_statements++;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        LOG_ERROR("store", "prepare failed: %s", sqlite3_errmsg(db));
        return NULL;
    }
    return s;
}

void st_bind_text(sqlite3_stmt *s, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(s, idx, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, idx);
}

char *st_col_dup(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t ? cm_xstrdup((const char *)t) : NULL;
}

int st_step_done(sqlite3 *db, sqlite3_stmt *s)
{
    if (!s)
        return RT_STORE_ERR;
    int rc = sqlite3_step(s);
    int ext = sqlite3_extended_errcode(db);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return RT_STORE_OK;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return RT_STORE_CONFLICT;
    LOG_ERROR("store", "write failed: %s", sqlite3_errmsg(db));
    return RT_STORE_ERR;
}

int st_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    t_statements++;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        LOG_ERROR("store", "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return RT_STORE_ERR;
    }
    return RT_STORE_OK;
}

/* ---- the writer thread ---- */

void st_post(rt_store_t *st, void (*run)(sqlite3 *db, void *arg), void *arg,
             void (*free_arg)(void *arg))
{
    st_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->run = run;
    j->arg = arg;
    j->free_arg = free_arg;
    pthread_mutex_lock(&st->qmu);
    if (st->qlen >= QUEUE_MAX || st->stop) {
        uint64_t d = ++st->dropped;
        pthread_mutex_unlock(&st->qmu);
        if ((d & (d - 1)) == 0) /* log the 1st, 2nd, 4th, ... drop */
            LOG_WARN("store", "write queue full: %llu writes dropped", (unsigned long long)d);
        if (free_arg)
            free_arg(arg);
        free(j);
        return;
    }
    if (st->tail)
        st->tail->next = j;
    else
        st->head = j;
    st->tail = j;
    st->qlen++;
    st->posted++;
    pthread_cond_signal(&st->qcond);
    pthread_mutex_unlock(&st->qmu);
}

/* Runs one batch (a detached list of n jobs) in a single transaction. */
static void run_batch(rt_store_t *st, st_job_t *batch)
{
    pthread_mutex_lock(&st->mu);
    bool tx = st_exec(st->db, "BEGIN IMMEDIATE") == RT_STORE_OK;
    for (st_job_t *j = batch; j; j = j->next)
        j->run(st->db, j->arg);
    if (tx && st_exec(st->db, "COMMIT") != RT_STORE_OK)
        st_exec(st->db, "ROLLBACK");
    pthread_mutex_unlock(&st->mu);
    while (batch) {
        st_job_t *next = batch->next;
        if (batch->free_arg)
            batch->free_arg(batch->arg);
        free(batch);
        batch = next;
    }
}

static void *writer_main(void *arg)
{
    rt_store_t *st = arg;
    pthread_mutex_lock(&st->qmu);
    for (;;) {
        while (!st->head && !st->stop)
            pthread_cond_wait(&st->qcond, &st->qmu);
        if (!st->head && st->stop)
            break;
        st_job_t *batch = st->head, *last = batch;
        size_t n = 1;
        while (last->next && n < BATCH_MAX) {
            last = last->next;
            n++;
        }
        st->head = last->next;
        if (!st->head)
            st->tail = NULL;
        last->next = NULL;
        st->qlen -= n;
        pthread_mutex_unlock(&st->qmu);
        run_batch(st, batch);
        pthread_mutex_lock(&st->qmu);
        st->completed += n;
        pthread_cond_broadcast(&st->qdone);
    }
    pthread_mutex_unlock(&st->qmu);
    return NULL;
}

void rt_store_flush(rt_store_t *st)
{
    pthread_mutex_lock(&st->qmu);
    uint64_t target = st->posted;
    while (st->completed < target && st->writer_started)
        pthread_cond_wait(&st->qdone, &st->qmu);
    pthread_mutex_unlock(&st->qmu);
}

/* ---- open and migrate ---- */

static int get_user_version(sqlite3 *db)
{
    sqlite3_stmt *s = st_prepare(db, "PRAGMA user_version");
    int v = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int migrate(rt_store_t *st, char *err, size_t errlen)
{
    int v = get_user_version(st->db);
    int latest = rt_store_latest_version();
    if (v < 0 || v > latest) {
        snprintf(err, errlen, "database schema version %d is not one this binary knows (<= %d)", v,
                 latest);
        return -1;
    }
    for (; v < latest; v++) {
        char bump[64];
        /* PRAGMA takes no parameters; the number is our own constant */
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        char *msg = NULL;
        if (st_exec(st->db, "BEGIN IMMEDIATE") != RT_STORE_OK ||
            sqlite3_exec(st->db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
            st_exec(st->db, bump) != RT_STORE_OK || st_exec(st->db, "COMMIT") != RT_STORE_OK) {
            snprintf(err, errlen, "migration %d failed: %s", v + 1,
                     msg ? msg : sqlite3_errmsg(st->db));
            sqlite3_free(msg);
            st_exec(st->db, "ROLLBACK");
            return -1;
        }
        LOG_INFO("store", "database migrated to schema version %d", v + 1);
    }
    st->version = latest;
    return 0;
}

static char *url_to_path(const char *url)
{
    const char *p = url;
    if (strncmp(p, "sqlite://", 9) == 0)
        p += 9;
    else if (strncmp(p, "sqlite:", 7) == 0)
        p += 7;
    return cm_expand_home(p);
}

/* Creates the parent directory and the file itself with owner-only modes:
 * the database holds password and key hashes. */
static int prepare_file(const char *path, char *err, size_t errlen)
{
    return cm_create_private_file(path, err, errlen);
}

static int configure(sqlite3 *db)
{
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *s = st_prepare(db, "PRAGMA journal_mode = WAL");
    bool wal = s && sqlite3_step(s) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    sqlite3_finalize(s);
    if (!wal)
        return -1;
    /* WAL + NORMAL: a committed transaction survives a process crash */
    if (st_exec(db, "PRAGMA synchronous = NORMAL") != 0 || st_exec(db, "PRAGMA foreign_keys = ON") != 0)
        return -1;
    return 0;
}

int rt_store_open(const char *url, rt_store_t **out, char *err, size_t errlen)
{
    rt_store_t *st = cm_xcalloc(1, sizeof(*st));
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_mutex_init(&st->qmu, NULL);
    pthread_cond_init(&st->qcond, NULL);
    pthread_cond_init(&st->qdone, NULL);
    char *path = url_to_path(url);
    int rc = -1;
    if (strncmp(url, "postgres", 8) == 0) {
        snprintf(err, errlen, "LLM_ROUTER_DATABASE_URL: only sqlite: URLs are supported");
        goto out;
    }
    if (prepare_file(path, err, errlen) != 0)
        goto out;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    if (configure(st->db) != 0) {
        snprintf(err, errlen, "cannot enable WAL on %s: %s", path, sqlite3_errmsg(st->db));
        goto out;
    }
    if (migrate(st, err, errlen) != 0)
        goto out;
    /* a second connection for reads: in WAL mode they never wait for the
     * writer's transactions (nor it for them) */
    if (sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 st->rdb ? sqlite3_errmsg(st->rdb) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(st->rdb, 5000);
    if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
        snprintf(err, errlen, "cannot start the database writer thread");
        goto out;
    }
    st->writer_started = true;
    rc = 0;
out:
    free(path);
    if (rc != 0) {
        rt_store_close(st);
        st = NULL;
    }
    *out = st;
    return rc;
}

void rt_store_close(rt_store_t *st)
{
    if (!st)
        return;
    if (st->writer_started) {
        pthread_mutex_lock(&st->qmu);
        st->stop = true; /* the writer drains what is queued, then exits */
        pthread_cond_signal(&st->qcond);
        pthread_mutex_unlock(&st->qmu);
        pthread_join(st->writer, NULL);
    }
    if (st->rdb)
        sqlite3_close_v2(st->rdb);
    if (st->db)
        sqlite3_close_v2(st->db);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->rmu);
    pthread_mutex_destroy(&st->qmu);
    pthread_cond_destroy(&st->qcond);
    pthread_cond_destroy(&st->qdone);
    free(st);
}

int rt_store_schema_version(rt_store_t *st) { return st->version; }

bool rt_store_integrity_ok(rt_store_t *st)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *s = st_prepare(st->db, "PRAGMA integrity_check");
    bool ok = s && sqlite3_step(s) == SQLITE_ROW &&
              strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return ok;
}

/* ---- nodes ---- */

void rt_node_rec_free(rt_node_rec_t *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->machine_name);
    free(r->ip_address);
    free(r->runtime_version);
    free(r->gpu_devices_json);
    free(r->custom_name);
    free(r->tags_json);
    free(r->notes);
    free(r->token_hash);
    free(r->secret_box);
    memset(r, 0, sizeof(*r));
}

static char *dup_or_null(const char *s) { return s ? cm_xstrdup(s) : NULL; }

static void node_job_free(void *arg)
{
    rt_node_rec_free(arg);
    free(arg);
}

static void node_upsert_run(sqlite3 *db, void *arg)
{
    const rt_node_rec_t *r = arg;
    sqlite3_stmt *s = st_prepare(db,
        "INSERT OR REPLACE INTO nodes (id, machine_name, ip_address, runtime_port, api_port,"
        " runtime_version, gpu_available, gpu_devices_json, custom_name, tags_json, notes,"
        " token_hash, registered_at, secret_box) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)");
    if (!s)
        return;
    st_bind_text(s, 1, r->id);
    st_bind_text(s, 2, r->machine_name ? r->machine_name : "");
    st_bind_text(s, 3, r->ip_address ? r->ip_address : "");
    sqlite3_bind_int(s, 4, r->runtime_port);
    sqlite3_bind_int(s, 5, r->api_port);
    st_bind_text(s, 6, r->runtime_version);
    sqlite3_bind_int(s, 7, r->gpu_available ? 1 : 0);
    st_bind_text(s, 8, r->gpu_devices_json ? r->gpu_devices_json : "[]");
    st_bind_text(s, 9, r->custom_name);
    st_bind_text(s, 10, r->tags_json ? r->tags_json : "[]");
    st_bind_text(s, 11, r->notes);
    st_bind_text(s, 12, r->token_hash);
    sqlite3_bind_int64(s, 13, r->registered_at);
    st_bind_text(s, 14, r->secret_box);
    st_step_done(db, s);
}

int rt_store_node_upsert(rt_store_t *st, const rt_node_rec_t *rec)
{
    if (!rec->id)
        return -1;
    rt_node_rec_t *c = cm_xcalloc(1, sizeof(*c));
    *c = *rec;
    c->id = dup_or_null(rec->id);
    c->machine_name = dup_or_null(rec->machine_name);
    c->ip_address = dup_or_null(rec->ip_address);
    c->runtime_version = dup_or_null(rec->runtime_version);
    c->gpu_devices_json = dup_or_null(rec->gpu_devices_json);
    c->custom_name = dup_or_null(rec->custom_name);
    c->tags_json = dup_or_null(rec->tags_json);
    c->notes = dup_or_null(rec->notes);
    c->token_hash = dup_or_null(rec->token_hash);
    c->secret_box = dup_or_null(rec->secret_box);
    st_post(st, node_upsert_run, c, node_job_free);
    return 0;
}

static void node_delete_run(sqlite3 *db, void *arg)
{
    sqlite3_stmt *s = st_prepare(db, "DELETE FROM nodes WHERE id = ?1");
    if (!s)
        return;
    st_bind_text(s, 1, arg);
    st_step_done(db, s);
}

int rt_store_node_delete(rt_store_t *st, const char *id)
{
    st_post(st, node_delete_run, cm_xstrdup(id), free);
    return 0;
}

/* Rows are read under the lock and handed to cb after it is released, so
 * that cb may call the store. */
int rt_store_nodes_each(rt_store_t *st, void (*cb)(const rt_node_rec_t *rec, void *arg), void *arg)
{
    int rc = RT_STORE_ERR, step = SQLITE_ERROR;
    rt_node_rec_t *rows = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&st->rmu);
    sqlite3_stmt *s = st_prepare(st->rdb,
        "SELECT id, machine_name, ip_address, runtime_port, api_port, runtime_version,"
        " gpu_available, gpu_devices_json, custom_name, tags_json, notes, token_hash,"
        " registered_at, secret_box FROM nodes ORDER BY registered_at, id");
    while (s && (step = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = cm_xrealloc(rows, cap * sizeof(*rows));
        }
        rows[n++] = (rt_node_rec_t){
            .id = st_col_dup(s, 0),
            .machine_name = st_col_dup(s, 1),
            .ip_address = st_col_dup(s, 2),
            .runtime_port = sqlite3_column_int(s, 3),
            .api_port = sqlite3_column_int(s, 4),
            .runtime_version = st_col_dup(s, 5),
            .gpu_available = sqlite3_column_int(s, 6) != 0,
            .gpu_devices_json = st_col_dup(s, 7),
            .custom_name = st_col_dup(s, 8),
            .tags_json = st_col_dup(s, 9),
            .notes = st_col_dup(s, 10),
            .token_hash = st_col_dup(s, 11),
            .registered_at = sqlite3_column_int64(s, 12),
            .secret_box = st_col_dup(s, 13),
        };
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->rmu);
    if (step == SQLITE_DONE)
        rc = RT_STORE_OK;
    for (size_t i = 0; i < n; i++) {
        if (rc == RT_STORE_OK)
            cb(&rows[i], arg);
        rt_node_rec_free(&rows[i]);
    }
    free(rows);
    return rc;
}
