/* store: the router's durable state in SQLite (the only module that includes
 * sqlite3.h; a PostgreSQL implementation can follow behind this interface).
 *
 * Opened once at start: WAL mode, numbered migrations applied in transactions.
 * Every call is thread-safe. Reads use their own connection (WAL: they never
 * wait for a write transaction); synchronous writes (management APIs) and the
 * writer thread share the other. Fire-and-forget records (nodes, last-used
 * times, revocations) are queued to the writer thread, so request loops never
 * wait on the disk for them. Callbacks of the *_each functions run after the
 * rows were read and may call the store (rt_store_revoked_each excepted).
 * Strings returned in records are owned by the record (free with the matching
 * _free function). */
#ifndef RT_STORE_H
#define RT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_store rt_store_t;

/* Status codes beside 0 / -1 (RT_STORE_ERR) for the calls that can fail in a
 * way the caller reports to a user. */
enum {
    RT_STORE_OK = 0,
    RT_STORE_ERR = -1,       /* database error (logged by the store) */
    RT_STORE_NOTFOUND = -2,  /* no such row */
    RT_STORE_CONFLICT = -3,  /* unique constraint: duplicate name or key */
    RT_STORE_LAST_ADMIN = -4 /* the change would leave no admin */
};

/* url: "sqlite:/path/to/router.db", "sqlite://path" or a bare path; "~/" is
 * expanded and the parent directory created (0700); a new file is 0600.
 * Opens in WAL mode, applies pending migrations (each in its own
 * transaction) and starts the writer thread. 0, or -1 with err. */
int rt_store_open(const char *url, rt_store_t **out, char *err, size_t errlen);
void rt_store_close(rt_store_t *st);
/* Schema version after migrations. */
int rt_store_schema_version(rt_store_t *st);
/* The newest schema version this binary knows (the number of migrations). */
int rt_store_latest_version(void);
/* Blocks until every write queued before the call is committed (tests,
 * shutdown, management calls that must read their own queued writes). */
void rt_store_flush(rt_store_t *st);
/* PRAGMA integrity_check == "ok". */
bool rt_store_integrity_ok(rt_store_t *st);
/* How many SQL statements the calling thread has run on any store since it
 * started (queued writes run on the writer thread and are not counted). A
 * test hook: it proves that a code path, such as the per-request auth check,
 * never touches the database. */
uint64_t rt_store_thread_statements(void);

/* ---- nodes (registry persistence) ---- */
typedef struct {
    char *id;              /* UUID */
    char *machine_name;
    char *ip_address;
    int runtime_port;
    int api_port;          /* where the router sends /v1 requests */
    char *runtime_version;
    bool gpu_available;
    char *gpu_devices_json; /* JSON array text, as registered */
    char *custom_name;     /* NULL when unset */
    char *tags_json;       /* JSON array text, "[]" when unset */
    char *notes;           /* NULL when unset */
    char *token_hash;      /* hex SHA-256 of the node token */
    int64_t registered_at; /* ms since epoch */
    /* The secret the router presents to the node, sealed by the nodes
     * service (hex of nonce + secretbox); NULL when none. The store never
     * sees the key, so a copy of the database alone does not reveal it. */
    char *secret_box;
} rt_node_rec_t;

void rt_node_rec_free(rt_node_rec_t *rec); /* frees the strings, not rec itself */
/* Insert or replace by id. Queued to the writer thread (the record is
 * copied): returns 0 once queued, never waits on the disk; reads see it after
 * the writer committed it (rt_store_flush to wait). Same for delete. */
int rt_store_node_upsert(rt_store_t *st, const rt_node_rec_t *rec);
int rt_store_node_delete(rt_store_t *st, const char *id);
/* Calls cb for every stored node (rec is freed after cb returns). */
int rt_store_nodes_each(rt_store_t *st, void (*cb)(const rt_node_rec_t *rec, void *arg), void *arg);

/* ---- users ---- */
typedef struct {
    char *id;            /* UUID */
    char *username;
    char *password_hash; /* crypto_pwhash_str output (Argon2id) */
    char *role;          /* "admin" or "viewer" */
    int64_t created_at;  /* ms since epoch */
    int64_t updated_at;
} rt_user_rec_t;

void rt_user_rec_free(rt_user_rec_t *rec); /* frees the strings, not rec itself */
/* Synchronous. RT_STORE_CONFLICT when the username exists. */
int rt_store_user_insert(rt_store_t *st, const rt_user_rec_t *rec);
/* Fills *out (caller frees with rt_user_rec_free). RT_STORE_NOTFOUND. */
int rt_store_user_get(rt_store_t *st, const char *id, rt_user_rec_t *out);
int rt_store_user_get_by_name(rt_store_t *st, const char *username, rt_user_rec_t *out);
/* Every user ordered by username; rec is freed after cb returns. */
int rt_store_users_each(rt_store_t *st, void (*cb)(const rt_user_rec_t *rec, void *arg), void *arg);
int rt_store_user_count(rt_store_t *st);
/* Changes the non-NULL fields of user id, in one transaction that refuses
 * (RT_STORE_LAST_ADMIN) to demote the last admin. RT_STORE_NOTFOUND,
 * RT_STORE_CONFLICT (new username taken). */
int rt_store_user_update(rt_store_t *st, const char *id, const char *username,
                         const char *password_hash, const char *role);
/* RT_STORE_NOTFOUND, RT_STORE_LAST_ADMIN. */
int rt_store_user_delete(rt_store_t *st, const char *id);

/* ---- API keys ---- */
typedef struct {
    char *id;            /* UUID */
    char *name;
    char *key_hash;      /* hex SHA-256 of the whole key */
    char *key_prefix;    /* first characters of the key, for display */
    char *created_by;    /* user id or name; NULL when made by the CLI */
    int64_t created_at;  /* ms since epoch */
    int64_t expires_at;  /* ms since epoch, 0: never */
    int64_t last_used_at; /* ms since epoch, 0: never */
} rt_apikey_rec_t;

void rt_apikey_rec_free(rt_apikey_rec_t *rec);
int rt_store_apikey_insert(rt_store_t *st, const rt_apikey_rec_t *rec);
int rt_store_apikey_get(rt_store_t *st, const char *id, rt_apikey_rec_t *out);
int rt_store_apikey_get_by_hash(rt_store_t *st, const char *key_hash, rt_apikey_rec_t *out);
int rt_store_apikeys_each(rt_store_t *st, void (*cb)(const rt_apikey_rec_t *rec, void *arg), void *arg);
/* name NULL: unchanged; set_expiry false: expiry unchanged. */
int rt_store_apikey_update(rt_store_t *st, const char *id, const char *name, bool set_expiry,
                           int64_t expires_at);
int rt_store_apikey_delete(rt_store_t *st, const char *id);
/* Queued (fire-and-forget): last_used_at = when. */
void rt_store_apikey_touch(rt_store_t *st, const char *id, int64_t when);

/* ---- revoked JWTs (logout), kept until they expire ---- */
/* Queued (fire-and-forget). */
void rt_store_revoked_add(rt_store_t *st, const char *jti, int64_t expires_at);
/* Deletes the expired ones, then calls cb for each remaining one. */
int rt_store_revoked_each(rt_store_t *st, int64_t now_ms,
                          void (*cb)(const char *jti, int64_t expires_at, void *arg), void *arg);

/* Synchronous (logout: the 204 promises the revocation is committed):
 * inserts or replaces it. RT_STORE_OK or RT_STORE_ERR. */
int rt_store_revoked_put(rt_store_t *st, const char *jti, int64_t expires_at);
/* The revocations not expired at now_ms, read on the read connection (so
 * the auth mirror thread never waits for a write); deletes nothing. cb must
 * not call the store. */
int rt_store_revoked_read(rt_store_t *st, int64_t now_ms,
                          void (*cb)(const char *jti, int64_t expires_at, void *arg), void *arg);

/* ---- model catalogue (store_models.c): table models ---- */
/* One catalogue row as stored; models/models.c owns the meaning of the JSON
 * columns (files_json: [{"name","size","sha256","path"}] in load order,
 * info_json: the GGUF header's facts). Strings owned by the row. */
typedef struct {
    char *id;
    char *files_json;
    int64_t size;
    char *source_repo, *source_revision, *source_file; /* NULL: none */
    char *format, *state, *info_json;
    int64_t created_at;  /* ms since epoch */
} rt_model_row_t;

void rt_model_row_free(rt_model_row_t *row); /* frees the strings, not row itself */
/* Synchronous. RT_STORE_CONFLICT when the id exists. */
int rt_store_model_insert(rt_store_t *st, const rt_model_row_t *row);
/* Synchronous. RT_STORE_NOTFOUND when there is no such id. */
int rt_store_model_delete(rt_store_t *st, const char *id);
/* Every row ordered by created_at, id (row is freed after cb returns). */
int rt_store_models_each(rt_store_t *st, void (*cb)(const rt_model_row_t *row, void *arg), void *arg);

/* ---- model tasks (store_tasks.c): table model_tasks ---- */

typedef struct {
    char *id;            /* UUID */
    char *kind;          /* "download" or "convert" */
    char *repo, *revision, *filename; /* filename: the chosen (first) file, NULL for convert */
    char *model_id;      /* expected, then the catalogue's id */
    char *files_json;    /* [{"name","size","sha256"}]: what the task fetches */
    char *state;         /* queued, downloading, verifying, converting, ready, failed, cancelled */
    int64_t bytes_done, bytes_total;
    char *error;         /* NULL unless failed */
    char *log;           /* convert: the converter's output (a bounded tail) */
    char *params_json;   /* convert: {"outtype","name"} */
    int64_t created_at, updated_at; /* ms since epoch */
} rt_task_rec_t;

void rt_task_rec_free(rt_task_rec_t *rec); /* frees the strings, not rec itself */
/* Insert or replace by id; queued to the writer (the record is copied), so
 * one task's writes land in the order they were made. */
void rt_store_task_put(rt_store_t *st, const rt_task_rec_t *rec);
void rt_store_task_delete(rt_store_t *st, const char *id);
/* Every task, oldest first (read connection); rec is freed after cb returns. */
int rt_store_tasks_each(rt_store_t *st, void (*cb)(const rt_task_rec_t *rec, void *arg), void *arg);

#endif
