/* sync_int: what the sync module's files share (sync.c: the thread, the
 * list, the markers, shared storage; sync_fetch.c: a verified, resumable
 * download). Not for other modules. */
#ifndef ND_SYNC_INT_H
#define ND_SYNC_INT_H

#include "sync.h"

#include <curl/curl.h>
#include <pthread.h>

/* A file's transfer is dropped (and resumed) after moving less than 1
 * byte/s for this long; there is no total time limit: a model may take
 * hours. */
#define ND_SYNC_STALL_S 30L
/* Attempts per file within one pass, with back-off 1, 2, 4, ... s. */
#define ND_SYNC_MAX_ATTEMPTS 6
#define ND_SYNC_MAX_BACKOFF_MS 16000L

typedef struct {
    char model[129];
    const char *state; /* static */
    uint64_t bytes, total;
    char error[256];
    uint64_t updated_ms;
    bool active; /* a fetch in progress: never evicted */
} progress_t;

struct nd_sync {
    char *url, *dir;
    nd_models_t *models;
    int interval_s, concurrency;
    bool shared;
    nd_sync_token_fn token;
    void *token_ud;
    pthread_t thread;
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    bool stop, kicked;
    progress_t prog[ND_SYNC_MAX_PROGRESS];
    nd_sync_stats_t st;
};


/* Adds n to a counter of the stats (under the lock). */
#define COUNT(s, field, n)          \
    do {                            \
        pthread_mutex_lock(&(s)->mu); \
        (s)->st.field += (n);       \
        pthread_mutex_unlock(&(s)->mu); \
    } while (0)

/* One entry of the progress (created, or the oldest finished one reused). */
void nd_sync_set_progress(nd_sync_t *s, const char *id, const char *state, uint64_t bytes, uint64_t total,
                          const char *error);
bool nd_sync_stopping(nd_sync_t *s);
/* Sleeps up to ms unless stopped (or kicked, with wake_on_kick). true: stopping. */
bool nd_sync_nap(nd_sync_t *s, long ms, bool wake_on_kick);
/* An easy handle for url carrying the node token (never logged; wiped by
 * nd_sync_easy_free), aborted when the sync stops, no redirects. */
CURL *nd_sync_easy(nd_sync_t *s, const char *url, const char *token, struct curl_slist **h);
void nd_sync_easy_free(CURL *c, struct curl_slist *h);
void nd_sync_fsync_dir(const char *dir);

/* Downloads every file of r not yet complete in dir (the model's directory,
 * which exists): disk space first, each file resumed, verified, renamed.
 * 0, or -1 with err. */
int nd_sync_download(nd_sync_t *s, const nd_sync_remote_t *r, const char *dir, const char *token, char *err,
                     size_t errlen);

#endif
