/* cloud_proxy_int: what cloud_proxy.c (setup, checks, /v1/models) and
 * cloud_proxy_call.c (one call, from the request out to the client's last
 * byte) share. */
#ifndef RT_CLOUD_PROXY_INT_H
#define RT_CLOUD_PROXY_INT_H

#include "core/cloud_proxy.h"

#include "http_client.h"

#include <stdint.h>
#include <sys/queue.h>

typedef struct cloud_call cloud_call_t;

/* One worker loop's part: only that loop's thread touches it. */
typedef struct {
    cm_hc_t *hc;                    /* the loop's HTTP client (libcurl for HTTPS) */
    struct event_base *base;
    LIST_HEAD(, cloud_call) live;   /* the loop's calls in flight */
} cloud_worker_t;

typedef struct {
    char *id; /* "provider:name", as listed */
    rt_cloud_provider_t provider;
} cloud_model_t;

struct rt_cloud {
    rt_cloud_opts_t o;
    rt_metrics_t *metrics;
    int64_t created;                     /* /v1/models' created for the listed models */
    char *auth[RT_CLOUD_PROVIDERS];      /* the key's header line, NULL: no key */
    char *anthropic_version;             /* "anthropic-version: ..." */
    /* the base URL is plain http:// to a numeric address (a gateway on the
     * LAN, a test's fake): it goes through the own HTTP client as the nodes
     * do, without proxies; anything else (HTTPS, host names) through libcurl */
    bool plain_ip[RT_CLOUD_PROVIDERS];
    cloud_model_t *models;
    size_t nmodels;
    cloud_worker_t *w;                   /* o.workers of them */
    rt_proxy_observer_t obs;
    struct cm_offload *pool;             /* large answers are translated there (NULL: on the loop) */
};

/* Worker stop: cancels the loop's upstream calls and their timers (the
 * clients' requests are finished by the server as it closes them). */
void rt_cloud_calls_stop(rt_cloud_t *c, int worker);

#endif
