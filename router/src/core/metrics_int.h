/* metrics_int: what metrics.c (counting) and metrics_write.c (the scrape)
 * share; nothing else includes it. */
#ifndef RT_METRICS_INT_H
#define RT_METRICS_INT_H

#include "core/metrics.h"
#include "prom.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_OTHER, EP_N };
extern const char *const rt_metrics_ep_path[EP_N]; /* the endpoint label */
extern const char *const rt_metrics_ep_op[EP_N];   /* gen_ai_operation_name */

/* llm_router_admission_rejected_total's reasons, in output order */
enum { REJ_QUEUE_FULL, REJ_QUEUE_TIMEOUT, REJ_NO_NODE, REJ_MODEL_NOT_FOUND, REJ_CLIENT_GONE, REJ_N };
extern const char *const rt_metrics_rej_name[REJ_N];

#define ERR_NAME_MAX 24

/* One llm_router_requests_total series. Fixed size: no allocation after
 * first sight. */
typedef struct {
    uint32_t hash;
    uint8_t ep;
    bool stream;
    uint16_t status;
    char model[RT_METRICS_MODEL_MAX + 1];
    char node_id[RT_NODE_ID_MAX];
    char node_name[RT_NODE_NAME_MAX];
    uint64_t count;
} rt_mseries_t;

typedef struct {
    char name[ERR_NAME_MAX];
    cm_prom_hist_t h;
} rt_merr_t;

/* One (endpoint, model) group of histograms. */
typedef struct {
    uint32_t hash;
    uint8_t ep;
    char model[RT_METRICS_MODEL_MAX + 1];
    cm_prom_hist_t dur;      /* llm_router_request_duration_seconds: every outcome */
    cm_prom_hist_t ok_dur;   /* gen_ai_server_request_duration_seconds, success */
    cm_prom_hist_t ttft;     /* streams that succeeded */
    cm_prom_hist_t tpot;
    cm_prom_hist_t tok_in, tok_out;
    uint64_t tokens_in, tokens_out; /* llm_router_tokens_total */
    size_t nerr;
    rt_merr_t *err[RT_METRICS_MAX_ERROR_TYPES + 1]; /* the last one is _OTHER */
} rt_mgroup_t;

typedef struct {
    char provider[64];
    int status;
    uint64_t count;
} rt_mcloud_t;

typedef struct {
    char provider[64];
    cm_prom_hist_t lat;
} rt_mcloud_lat_t;

/* Open addressing with linear probing over pointers; cap a power of two. */
typedef struct {
    void **slot;
    size_t cap, n;
} rt_mtable_t;

struct rt_metrics {
    pthread_mutex_t mu;
    rt_mtable_t series, groups;
    cm_prom_hist_t overhead, queue_wait;
    uint64_t rejected[REJ_N];
    uint64_t retries, retries_exhausted;
    uint64_t dropped; /* request tuples past the hard bound */
    /* cloud (its own small arrays, linear search: a handful of providers) */
    rt_mcloud_t cloud[RT_METRICS_MAX_PROVIDERS * 8];
    size_t ncloud;
    rt_mcloud_lat_t cloud_lat[RT_METRICS_MAX_PROVIDERS + 1];
    size_t ncloud_lat;
};

/* Printable, well-formed UTF-8 of at most max bytes: a safe label value. */
bool rt_metrics_label_ok(const char *s, size_t max);

/* The bucket sets (metrics.c). */
extern const double rt_metrics_b_genai_dur[14], rt_metrics_b_ttft[16], rt_metrics_b_tpot[13],
    rt_metrics_b_tokens[14], rt_metrics_b_router_dur[19], rt_metrics_b_overhead[13], rt_metrics_b_queue[15];

#endif
