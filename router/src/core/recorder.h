/* recorder: the proxy's observer. For every proxied request it counts the
 * metrics (core/metrics.h) and, with the history on, builds one history row
 * (store/history.h): who asked (API key or user, address), which node
 * answered, after how many attempts, how fast, with how many tokens, and the
 * request and response bodies, each capped (max_body, truncation flags).
 *
 * On the loop it only copies bytes: the request body up to the cap, the
 * answer's bytes up to a bound, and for streams the tail that carries the
 * finish reason and usage. The rows go through a bounded queue to the
 * recorder's writer thread, which reassembles streams into the non-streamed
 * shape (content concatenated, finish reason, usage), reads token counts (the
 * answer's usage, or the node's X-LLM-Usage trailer for streams whose client
 * did not ask for usage), counts tokens into the metrics and inserts rows in
 * batches. A full queue drops the row and counts it: memory stays bounded and
 * no request ever waits for the disk. The writer also prunes rows older than
 * the retention, once an hour. */
#ifndef RT_RECORDER_H
#define RT_RECORDER_H

#include "core/metrics.h"
#include "core/proxy.h"
#include "store/history.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_recorder rt_recorder_t;

typedef struct {
    bool bodies;          /* record request and response bodies */
    size_t max_body;      /* bytes kept of each body */
    size_t queue_max;     /* rows waiting for the writer before drops */
    int retention_days;   /* rows older are pruned (hourly) */
} rt_recorder_opts_t;

/* h: NULL when the history is off (metrics only); m: required. Both
 * borrowed; they must outlive the recorder. Starts the writer thread. */
rt_recorder_t *rt_recorder_new(const rt_recorder_opts_t *o, rt_history_t *h, rt_metrics_t *m);
/* Writes what is queued (bounded wait), stops the writer. NULL: no-op. */
void rt_recorder_free(rt_recorder_t *r);
/* The observer to give rt_proxy_set_observer. */
void rt_recorder_observer(rt_recorder_t *r, rt_proxy_observer_t *out);

typedef struct {
    uint64_t queued;   /* rows accepted into the queue */
    uint64_t written;  /* rows committed */
    uint64_t dropped;  /* rows dropped (queue full, or a failed write) */
    uint64_t depth;    /* rows waiting now */
} rt_recorder_stats_t;
void rt_recorder_stats(rt_recorder_t *r, rt_recorder_stats_t *out);
/* Blocks until every row queued before the call is written (or dropped). */
void rt_recorder_flush(rt_recorder_t *r);

#endif
