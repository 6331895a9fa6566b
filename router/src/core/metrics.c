/* metrics: placeholder until the metrics land (core/metrics.h). */
#include "core/metrics.h"

#include "util.h"

#include <stdlib.h>

struct rt_metrics {
    int unused;
};

rt_metrics_t *rt_metrics_new(void) { return cm_xcalloc(1, sizeof(rt_metrics_t)); }
void rt_metrics_free(rt_metrics_t *m) { free(m); }
void rt_metrics_request(rt_metrics_t *m, const char *endpoint, const char *model, const rt_proxy_result_t *r)
{
    (void)m; (void)endpoint; (void)model; (void)r;
}
void rt_metrics_tokens(rt_metrics_t *m, const char *endpoint, const char *model, int64_t prompt_tokens,
                       int64_t completion_tokens, double gen_s)
{
    (void)m; (void)endpoint; (void)model; (void)prompt_tokens; (void)completion_tokens; (void)gen_s;
}
void rt_metrics_cloud(rt_metrics_t *m, const char *provider, int status, double latency_s)
{
    (void)m; (void)provider; (void)status; (void)latency_s;
}
void rt_metrics_write(rt_metrics_t *m, const rt_metrics_sources_t *src, struct evbuffer *out) { (void)m; (void)src; (void)out; }
void rt_metrics_write_cloud(rt_metrics_t *m, struct evbuffer *out) { (void)m; (void)out; }
