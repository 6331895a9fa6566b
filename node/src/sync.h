/* sync: the node pulls the router's registered models by itself (issue 15;
 * the router never pushes).
 *
 * One thread (blocking libcurl easy calls: it runs no event loop) makes a
 * pass at start (once the agent holds a node token), every interval_s, and
 * when nd_sync_kick is called (the agent does so when the heartbeat reply's
 * "models_version" changes). A pass reads GET {router}/v1/models with
 * X-Node-Token and, for each registered model this node lacks (no model of
 * that id in the models list), either
 *   - shared storage: every file's "path" is readable here and its size
 *     equals "size": symlinks <models_dir>/<id>/<name> -> path are made and
 *     the node serves the router's file in place. The size check is the
 *     contract: a shared file is never hashed (that would read a whole model
 *     per node per pass) and nothing is downloaded; or
 *   - download: each file from "blob_url" into <models_dir>/<id>/<name>.part
 *     (the models scan ignores it), resumed with Range after a dropped
 *     connection (bounded retries with back-off; a 200 answering a Range
 *     restarts from 0; Content-Range is checked), SHA-256 computed while
 *     writing (on resume the existing part is hashed first) and compared with
 *     the router's "sha256" (a mismatch deletes the part: state failed,
 *     retried at the next pass), fsync'd, renamed atomically to <name>.
 * Then the models are rescanned, so the next heartbeat advertises the model;
 * the router routes to a node only what the node advertises.
 *
 * Disk space is checked first (statvfs); at most `concurrency` models are
 * fetched at once. <models_dir>/<id>/.synced (JSON: id, sha256, mode) marks
 * what sync placed: when a successfully read list no longer holds a model,
 * only a marked directory is removed (never files an operator placed by
 * hand). The engine has no unload call: removed files are unlinked (a loaded
 * model keeps its mapping until the engine unloads it by its limits) and the
 * rescan stops new requests for it at once.
 *
 * The progress of recent models is kept for the heartbeat's "model_sync". */
#ifndef ND_SYNC_H
#define ND_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
typedef struct nd_models nd_models_t;
typedef struct nd_sync nd_sync_t;

/* Copies the node token into buf (len bytes) and returns true, or false
 * while there is none. The token is never logged. */
typedef bool (*nd_sync_token_fn)(void *ud, char *buf, size_t len);

typedef struct {
    const char *router_url;   /* "http://host:port" */
    const char *models_dir;
    nd_models_t *models;      /* rescanned after each change */
    int interval_s;           /* 0: no periodic pass (start and kicks only) */
    int concurrency;          /* models fetched at once (>= 1) */
    bool shared;              /* use a readable router path in place */
    nd_sync_token_fn token;
    void *token_ud;
} nd_sync_opts_t;

/* Starts the thread (the first pass runs as soon as a token exists). The
 * options are copied; models must outlive the sync. NULL when the thread
 * cannot start. */
nd_sync_t *nd_sync_start(const nd_sync_opts_t *o);
/* Stops (an ongoing transfer is aborted within a second) and joins. NULL:
 * a no-op. */
void nd_sync_stop(nd_sync_t *s);
/* Asks for a pass soon (coalesced with one pending or running). */
void nd_sync_kick(nd_sync_t *s);

/* The heartbeat's "model_sync": [{"model","state","bytes","total","error"?}]
 * for at most ND_SYNC_MAX_PROGRESS recent models (ready ones are
 * dropped ND_SYNC_DONE_KEEP_S after they finished). A new array, [] for
 * NULL. */
#define ND_SYNC_MAX_PROGRESS 32
#define ND_SYNC_DONE_KEEP_S 600
struct cJSON *nd_sync_progress_json(nd_sync_t *s);

typedef struct {
    uint64_t passes;          /* list reads that succeeded */
    uint64_t passes_done;     /* passes finished, their fetches included */
    uint64_t list_failures;   /* list reads that failed */
    uint64_t blob_requests;   /* GETs of a blob */
    uint64_t range_requests;  /* of which carried Range */
    uint64_t bytes_downloaded;
    uint64_t models_downloaded;
    uint64_t models_shared;
    uint64_t models_removed;
    uint64_t failures;        /* model fetches that failed */
} nd_sync_stats_t;
/* Zeros for NULL. */
void nd_sync_stats(nd_sync_t *s, nd_sync_stats_t *out);

/* ---- pure parts (unit-tested) ---- */

/* A registered model as the router lists it (strings borrowed). */
typedef struct {
    const char *name, *sha256, *path, *blob_url;
    uint64_t size;
} nd_sync_file_t;

#define ND_SYNC_MAX_FILES 64
typedef struct {
    const char *id, *sha256; /* sha256 of files[0] */
    nd_sync_file_t files[ND_SYNC_MAX_FILES];
    size_t nfiles;
    uint64_t size;
} nd_sync_remote_t;

/* Parses /v1/models's "data" array into at most max registered models
 * (items without "registered": true are not the router's and are skipped;
 * a malformed or unsafe item, e.g. an id that is not a plain directory
 * name, is skipped too and counted in *rejected). Strings point into data.
 * Returns the count. */
size_t nd_sync_parse_list(const struct cJSON *data, nd_sync_remote_t *out, size_t max, size_t *rejected);

/* What the node has: a model id it serves (scanned), and whether sync
 * placed it (its directory has a .synced marker) with which sha256. */
typedef struct {
    const char *id;
    bool present;             /* in the models list */
    bool synced;              /* a .synced marker */
    const char *synced_sha256;
} nd_sync_local_t;

typedef enum {
    ND_SYNC_FETCH,   /* remote[i]: the node lacks it */
    ND_SYNC_REPLACE, /* remote[i]: placed by sync with another sha256: remove, then fetch */
    ND_SYNC_REMOVE,  /* local[i]: placed by sync, no longer registered */
} nd_sync_action_kind_t;

typedef struct {
    nd_sync_action_kind_t kind;
    size_t index; /* into remote (FETCH, REPLACE) or local (REMOVE) */
} nd_sync_action_t;

/* The actions that bring local to remote, at most max (remote first, then
 * removals). A model present but not placed by sync is never touched; a
 * marked directory whose model is not (yet) present is fetched again (a
 * download left halfway resumes). Returns the count. */
size_t nd_sync_plan(const nd_sync_remote_t *remote, size_t nr, const nd_sync_local_t *local, size_t nl,
                    nd_sync_action_t *out, size_t max);

/* "bytes 100-199/1000" -> 0 and the three numbers; -1 when malformed
 * (also "bytes * /1000", start > end, end >= total). */
int nd_sync_parse_content_range(const char *v, uint64_t *start, uint64_t *end, uint64_t *total);

typedef enum {
    ND_RESUME_APPEND,  /* write after the `have` bytes already in the part */
    ND_RESUME_RESTART, /* the server sent the whole file: truncate, hash from 0 */
    ND_RESUME_FAIL,    /* an answer that does not fit: give up this attempt */
} nd_resume_t;

/* The first answer to a request for bytes have.. of a file of `size`
 * (have 0: no Range was sent): status and Content-Range (NULL: absent). */
nd_resume_t nd_sync_resume_decide(long status, uint64_t have, const char *content_range, uint64_t size);

/* A file or directory name sync may create: [A-Za-z0-9._+-], 1..128
 * characters, not starting with '.'. */
bool nd_sync_safe_name(const char *s);

#endif
