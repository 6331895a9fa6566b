/* stats: request figures of the node over its life and a recent window
 * (average response time, generation tokens/s), and per model the
 * histograms /metrics/prom exports under vLLM's names (time to first token,
 * end-to-end latency, time per output token, prompt and generation lengths,
 * with vLLM's bucket sets). Thread-safe. */
#ifndef ND_STATS_H
#define ND_STATS_H

#include "prom.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nd_stats nd_stats_t;

typedef struct {
    uint64_t requests;        /* finished inference requests */
    uint64_t errors;          /* of which answered with an error */
    uint64_t cancelled;       /* of which the client went away */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    double avg_response_ms;   /* recent window */
    double tokens_per_second; /* recent window: generated tokens / generation time */
    double avg_ttft_ms;       /* recent window */
    /* over the node's life, requests that succeeded: time to the first
     * token (the prompt's processing, queueing included) and from it to the
     * end (generation), with the tokens of each phase */
    double prompt_seconds, gen_seconds;
    uint64_t prompt_seconds_tokens, gen_seconds_tokens;
} nd_stats_snapshot_t;

/* Models with their own series; more are counted as model "other". */
#define ND_STATS_MAX_MODELS 32
#define ND_STATS_MODEL_MAX 128

/* One model's figures (a plain copy). */
typedef struct {
    char model[ND_STATS_MODEL_MAX];
    uint64_t requests, errors, prompt_tokens, gen_tokens;
    cm_prom_hist_t ttft, e2e, tpot, prompt_len, gen_len; /* successful requests */
} nd_stats_model_t;

nd_stats_t *nd_stats_new(void);
void nd_stats_free(nd_stats_t *s);
/* One finished request of model (NULL: "other"). status: HTTP status
 * (ND_STATUS_CLIENT_GONE, 499: the client went away); ttft_us 0: no token. */
void nd_stats_record(nd_stats_t *s, const char *model, int status, uint64_t duration_us, uint64_t ttft_us,
                     int prompt_tokens, int completion_tokens);
void nd_stats_get(nd_stats_t *s, nd_stats_snapshot_t *out);
/* Copies of the per-model figures into out (at most max); returns how many. */
size_t nd_stats_models(nd_stats_t *s, nd_stats_model_t *out, size_t max);

#endif
