/* history: the request history in its own SQLite file (history.db beside
 * router.db), so its write volume and pruning never touch the tables of
 * users, keys and nodes. The only other user of sqlite3.h beside store.c.
 *
 * Writes come in batches from one thread (core/recorder.c's writer): one
 * transaction per batch. Reads (list, get, buckets, summary, export) run on
 * any thread, each on a connection of its own from a small pool (WAL: they
 * never wait for the writer). Retention: rt_history_prune deletes rows older
 * than a cut-off in bounded batches and gives the freed pages back
 * (auto_vacuum = INCREMENTAL), so pruning never holds the write lock long.
 *
 * Times are ms since the epoch; durations microseconds. Token counts are -1
 * when unknown. */
#ifndef RT_HISTORY_H
#define RT_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_history rt_history_t;

/* One recorded request. In rows given to rt_history_insert the strings are
 * borrowed; in rows handed to callbacks they are valid during the call.
 * NULL strings are stored as NULL (shown as null). */
typedef struct {
    const char *id;            /* the request id (X-Request-Id), unique */
    int64_t received_ms;       /* wall clock */
    int64_t first_byte_ms;     /* 0: no byte reached the client */
    int64_t finished_ms;
    const char *endpoint;      /* "/v1/chat/completions" */
    const char *model;
    const char *node_id, *node_name; /* NULL: no node was tried */
    int attempts;              /* nodes tried; retries = attempts - 1 */
    const char *client_kind;   /* "api_key" or "user" */
    const char *client_id;     /* API key id or user id */
    const char *client_name;   /* its name */
    const char *client_addr;   /* the peer address */
    int status;                /* what the client was sent */
    const char *error_type;    /* NULL on success (rt_proxy_result_t.error_type) */
    const char *error_message; /* NULL on success */
    int64_t duration_us;       /* received to finished */
    int64_t ttft_us;           /* received to the first token reached the client; -1: none */
    int64_t prompt_tokens, completion_tokens, total_tokens;
    bool stream;               /* the answer was an event stream */
    const char *request_body;  /* NULL: not recorded */
    size_t request_len;
    bool request_truncated;
    const char *response_body; /* a stream reassembled into the non-streamed shape; NULL: not recorded */
    size_t response_len;
    bool response_truncated;
} rt_history_row_t;

/* Filters of the list, export and count queries; zero/NULL fields do not
 * filter. All given filters must match (AND). */
typedef struct {
    const char *model;
    const char *node_id;
    const char *api_key_id;
    int status_class;   /* 0: any, 1: success (< 400), 2: error (>= 400) */
    int status_code;    /* 0: any */
    int64_t from_ms;    /* received_ms >= from_ms (0: no bound) */
    int64_t to_ms;      /* received_ms <= to_ms (0: no bound) */
    const char *q;      /* text searched in the request and response bodies */
} rt_history_filter_t;

/* path: the SQLite file (parent created 0700, file 0600). 0, or -1 with err. */
int rt_history_open(const char *path, rt_history_t **out, char *err, size_t errlen);
void rt_history_close(rt_history_t *h);

/* One transaction for the n rows. A duplicate id replaces the older row.
 * 0, or -1 (logged). Meant for one writer thread. */
int rt_history_insert(rt_history_t *h, const rt_history_row_t *rows, size_t n);

/* Newest first (received_ms, then id): rows offset .. offset+limit-1 of the
 * filtered set; *total (if not NULL) gets the size of the filtered set.
 * with_bodies false: the body fields are NULL (lengths and flags still
 * set). cb runs while the statement is open and must not call back into h.
 * 0, or -1. */
int rt_history_list(rt_history_t *h, const rt_history_filter_t *f, int64_t offset, int limit, bool with_bodies,
                    void (*cb)(const rt_history_row_t *row, void *arg), void *arg, int64_t *total);
/* The row with this id, with bodies, to cb. 0, RT_HISTORY_NOTFOUND or -1. */
#define RT_HISTORY_NOTFOUND (-2)
int rt_history_get(rt_history_t *h, const char *id, void (*cb)(const rt_history_row_t *row, void *arg), void *arg);
/* Every filtered row, newest first, with bodies, one at a time to cb (one
 * statement stepped row by row: memory stays bounded whatever the count);
 * cb returns false to stop. 0 (also when stopped), or -1. */
int rt_history_export(rt_history_t *h, const rt_history_filter_t *f,
                      bool (*cb)(const rt_history_row_t *row, void *arg), void *arg);

/* Aggregates for the dashboard. */
typedef struct {
    int64_t start_ms;       /* bucket start (aligned to bucket_ms) */
    int64_t count, errors;  /* errors: status >= 400 */
    int64_t prompt_tokens, completion_tokens;
    double avg_ms;          /* mean duration */
    double p95_ms;          /* 95th percentile of duration, approximate: see "Aggregates" below */
    double tokens_per_s;    /* completion tokens / summed generation time */
} rt_history_agg_t;
/* Buckets of bucket_ms (60000 or 3600000) over [from_ms, to_ms], oldest
 * first, only buckets with rows; cb per bucket. 0, or -1. */
int rt_history_buckets(rt_history_t *h, int64_t bucket_ms, int64_t from_ms, int64_t to_ms,
                       void (*cb)(const rt_history_agg_t *b, void *arg), void *arg);
/* One aggregate over received_ms >= since_ms (p95 included). 0, or -1. */
int rt_history_summary(rt_history_t *h, int64_t since_ms, rt_history_agg_t *out);

/* Deletes the rows with received_ms < before_ms, at most batch rows per
 * transaction until none is left, then returns freed pages to the file
 * system. Returns the number deleted, or -1. */
int64_t rt_history_prune(rt_history_t *h, int64_t before_ms, int batch);
/* Rows stored (exact: the rollup's sum). -1 on error. */
int64_t rt_history_count(rt_history_t *h);

/* ---- additions ----
 *
 * Order. Rows are keyed by seq = received_ms << 16 | n (n counts the rows of
 * one millisecond in insertion order), so "newest first" is received_ms
 * descending, then the most recently inserted first (the "then id" above:
 * ties within one millisecond). A millisecond holds at most 65536 rows; a row
 * beyond is not kept (logged).
 *
 * Bodies in rows handed to callbacks are NUL-terminated (the length excludes
 * the NUL) and may themselves contain NULs; an empty recorded body is "" with
 * length 0, an unrecorded one NULL.
 *
 * q. By default a case-sensitive substring match of the whole q (bytes) in
 * the request or the response body, scanning the bodies of at most the
 * newest 50,000 rows that pass the other filters (HIST_Q_WINDOW): rows older
 * than that window are reached by narrowing from/to or the other filters,
 * and total is then the count of matches within the window. Why no index:
 * FTS5 kept in the insert's transaction cut the writer from ~25k to ~6k
 * rows/s (bodies of ~600 B + ~600 B, batches of 256; see the bench), far
 * under what one router worker proxies. A file created with opts.fts (and
 * a SQLite with FTS5) has the FTS5 table instead: q is then split into words
 * by the unicode61 tokenizer (case-insensitive) and a row matches when every
 * word appears as a whole word in its bodies (each word quoted: q is never
 * FTS syntax), with no window and an exact total.
 *
 * total: exact. With no filter but from/to it comes from the rollup (below)
 * plus the rows of the two partial minutes at the ends (constant cost,
 * whatever the window); otherwise a count over the index the query uses
 * (for q without FTS, within the window). Costs are measured by
 * bench/router/history_bench.c.
 *
 * Rollup. The writer keeps one row per minute (count, errors, token sums,
 * duration and generation-time sums, a latency histogram) in the same
 * transaction as the rows it sums, so it always agrees with them: a
 * replaced duplicate leaves its old minute, pruning removes what it
 * deletes, and a file from before the rollup gets it built from its rows
 * when first opened (one pass, logged). rt_history_buckets (bucket_ms a
 * whole number of minutes), rt_history_summary, rt_history_count and the
 * time-only total read it: whole minutes from the rollup, the rows of a
 * partial first or last minute summed exactly. Another bucket_ms scans the
 * rows (p95 0 then).
 *
 * Aggregates: count and errors over every row; prompt/completion tokens sum
 * the known counts (-1 is skipped); tokens_per_s = the sum of completion
 * tokens over the sum of generation seconds of the rows whose completion
 * count is known and > 0, where a row's generation time is duration - ttft
 * for a stream with a first token, and the whole duration otherwise (a
 * non-streamed answer's first token arrives with its last). These are exact.
 * p95 (summary and buckets) is approximate: the rank is the nearest rank
 * (the ceil(0.95 n)-th shortest duration), located in a fixed log-scale
 * histogram (rt_history_latency_bucket: [0, 1 ms), 62 buckets from 1 ms to
 * 10 min each 1.24x wide, [10 min, oo)) and interpolated linearly within
 * its bucket, whose top is lowered to the longest duration seen. The exact
 * value lies in the same bucket, so the error is under one bucket's width
 * (at most ~24% of the value, about +-12% around the bucket's middle;
 * typically a few %). */

typedef struct {
    /* Create a new file with the FTS5 table over the bodies (see q above:
     * searches by word, ~4x the write cost). Only read when the file is
     * created; a file keeps its choice. */
    bool fts;
} rt_history_opts_t;
/* rt_history_open with options (o may be NULL). */
int rt_history_open_ex(const char *path, const rt_history_opts_t *o, rt_history_t **out, char *err,
                       size_t errlen);
/* Whether q is served by FTS5 (see above). */
bool rt_history_has_fts(rt_history_t *h);
/* The schema version this binary migrates to. */
int rt_history_latest_version(void);
/* The rollup's latency bucket of a duration (us): its index (0 ..
 * 63) and its bounds [*lo_us, *hi_us) (INT64_MAX: the open last one); lo_us
 * and hi_us may be NULL. */
int rt_history_latency_bucket(int64_t us, int64_t *lo_us, int64_t *hi_us);

typedef struct {
    int64_t deleted;
    int64_t batches;       /* delete transactions */
    int64_t max_tx_us;     /* the longest one: how long the writer waited at most */
    int64_t vacuum_steps;  /* incremental_vacuum steps */
    int64_t max_vacuum_us; /* the longest one */
} rt_history_prune_stats_t;
/* rt_history_prune, reporting what it did to st (may be NULL). */
int64_t rt_history_prune_ex(rt_history_t *h, int64_t before_ms, int batch, rt_history_prune_stats_t *st);

#endif
