/* stats: request figures of the node over its life and a recent window
 * (average response time, generation tokens/s). Thread-safe. */
#ifndef ND_STATS_H
#define ND_STATS_H

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
} nd_stats_snapshot_t;

nd_stats_t *nd_stats_new(void);
void nd_stats_free(nd_stats_t *s);
/* One finished request. status: HTTP status (ND_STATUS_CLIENT_GONE, 499: the client went away). */
void nd_stats_record(nd_stats_t *s, int status, uint64_t duration_us, uint64_t ttft_us,
                     int prompt_tokens, int completion_tokens);
void nd_stats_get(nd_stats_t *s, nd_stats_snapshot_t *out);

#endif
