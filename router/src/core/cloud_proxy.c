/* cloud_proxy: PLACEHOLDER until the cloud transport lands. */
#include "core/cloud_proxy.h"

#include "util.h"

#include <stdlib.h>

struct rt_cloud {
    rt_cloud_opts_t o;
    rt_metrics_t *metrics;
    rt_proxy_observer_t obs;
};

rt_cloud_t *rt_cloud_new(const rt_cloud_opts_t *o, rt_metrics_t *metrics)
{
    rt_cloud_t *c = cm_xcalloc(1, sizeof(*c));
    c->o = *o;
    c->metrics = metrics;
    return c;
}

void rt_cloud_free(rt_cloud_t *c) { free(c); }
void rt_cloud_set_observer(rt_cloud_t *c, const rt_proxy_observer_t *obs) { c->obs = *obs; }
void rt_cloud_worker_start(rt_cloud_t *c, struct event_base *base, int worker) { (void)c, (void)base, (void)worker; }
void rt_cloud_worker_stop(rt_cloud_t *c, int worker) { (void)c, (void)worker; }

void rt_cloud_forward(rt_cloud_t *c, cm_http_req_t *req, const char *path, const char *model, const char *body,
                      size_t len)
{
    (void)c, (void)path, (void)model, (void)body, (void)len;
    cm_http_reply_error(req, 501, NULL, "cloud_not_available", "model", "Cloud models are not available in this build");
}

void rt_cloud_models_json(const rt_cloud_t *c, struct cJSON *data) { (void)c, (void)data; }
