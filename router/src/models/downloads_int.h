/* downloads_int: what downloads.c (tasks, threads, persistence, JSON),
 * downloads_new.c (register, convert and search requests) and
 * downloads_run.c (a task's transfer and converter) share. Private. */
#ifndef RT_DOWNLOADS_INT_H
#define RT_DOWNLOADS_INT_H

#include "models/downloads.h"
#include "models/hf.h"
#include "models/models.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define DL_LOG_MAX (64u << 10)   /* converter output kept (the tail) */
#define DL_PERSIST_MS 1000       /* progress written at most this often */
#define DL_NO_CONVERTER                                                                      \
    "no converter configured: set LLM_ROUTER_CONVERTER to the conversion command (e.g. "   \
    "\"python3 /opt/llama.cpp/convert_hf_to_gguf.py\"; the router appends <input dir> "  \
    "--outfile <output.gguf> --outtype <outtype>)"
#define DL_SPACE_MARGIN (64ull << 20) /* free space left after a download */

typedef struct {
    char *path;           /* in the repository */
    uint64_t size;
    char sha256[65];      /* the Hub's LFS sha256, "" unknown */
} dl_file_t;

typedef struct dl_task {
    char id[40];
    bool convert;
    char *repo, *revision, *filename, *model_id;
    char *commit;                        /* the revision's commit (model info), NULL: unknown */
    char *outtype, *name;                /* convert */
    dl_file_t *files;
    size_t nfiles;
    char state[16];
    uint64_t bytes_done, bytes_total;
    double speed_bps;
    int64_t eta_s;                       /* -1 unknown */
    char *error;
    char *log;                           /* convert: the output's tail */
    size_t log_len;
    int64_t created_ms, updated_ms;
    /* the running thread's bookkeeping (under the downloads' mu) */
    bool running;
    atomic_bool cancel;
    uint64_t rate_bytes, rate_ms, persist_ms;
    struct dl_task *next;
} dl_task_t;

struct rt_downloads {
    rt_hf_t hf;
    char *base_url, *token, *ca_bundle, *converter;
    int convert_timeout_s;
    rt_models_t *models;
    rt_store_t *st;
    char *dir;                           /* the models directory */
    pthread_mutex_t mu;
    pthread_cond_t work;                 /* a task queued, or stop */
    pthread_cond_t done;                 /* a task stopped running */
    dl_task_t *head, *tail;              /* every task, oldest first */
    atomic_bool stop;
    pthread_t *threads;
    int nthreads;
};

/* downloads.c */
dl_task_t *dl_task_new(bool convert, const char *repo, const char *revision);
void dl_task_free(dl_task_t *t);
/* Appends t (queued unless its state is set) and persists it. */
void dl_task_add(rt_downloads_t *d, dl_task_t *t);
/* Writes t's row (queued to the store's writer). Caller holds mu. */
void dl_persist_locked(rt_downloads_t *d, dl_task_t *t);
/* Sets the state (and error when non-NULL), persists. Takes mu. */
void dl_set_state(rt_downloads_t *d, dl_task_t *t, const char *state, const char *error);
struct cJSON *dl_task_json_locked(const dl_task_t *t);
bool dl_state_active(const char *state);

/* downloads_new.c, pure (unit-tested): the file register picks among the
 * repository's (downloads.h), n when none; the indexes of the split that
 * v[first] starts (all its parts, in order, into idx[256]) and its count,
 * 1 for a plain file; -1 when a part is missing or the count is absurd. */
size_t dl_pick(const rt_hf_file_t *v, size_t n);
int dl_split_parts(const rt_hf_file_t *v, size_t n, size_t first, size_t idx[256], unsigned *count);
/* The id a new model from file gets (models.h's rule, also skipping ids of
 * active tasks and non-empty directories), new; NULL when none can be made. */
char *dl_choose_id(rt_downloads_t *d, const char *file);
/* The revision a task's files are fetched at: its commit when known. */
const char *dl_rev(const dl_task_t *t);

/* downloads_run.c: on a task thread; t->running is set. Ends in a final
 * state, or leaves the task resumable when d->stop. */
void dl_run(rt_downloads_t *d, dl_task_t *t);
/* Deletes what a cancelled or failed task left (parts, work dir). */
void dl_remove_leftovers(rt_downloads_t *d, dl_task_t *t);
/* "<dir>/<model_id>/<basename of path>", new; NULL when the name cannot be
 * a local file (hidden, control bytes). */
char *dl_local_path(rt_downloads_t *d, const char *model_id, const char *path);

#endif
