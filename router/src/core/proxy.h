/* proxy: one proxied OpenAI request, start to finish.
 *
 *   admit (admission queue + balancer via the registry) -> forward the
 *   client's body untouched (http_client) -> relay the answer -> on failure
 *   before any byte reached the client, retry on another node -> release the
 *   slot and record the outcome (exactly once, on every path).
 *
 * Non-streaming answers are held (bounded) until complete, so a node failing
 * halfway is still retried invisibly; Server-Sent Events are relayed chunk by
 * chunk as they arrive, and a slow client pauses the upstream read (no
 * unbounded buffering). A client that disconnects cancels the upstream
 * request or leaves the queue. After streaming began, a node failure ends
 * the stream with an SSE "error" event and "data: [DONE]".
 *
 * Room for what comes next: rt_proxy_observer_t sees each request and every
 * response chunk (a history recorder can reassemble streams from it without
 * a second copy on the hot path); a cloud provider is another kind of
 * upstream selected before admission (api_openai.c checks the prefix). */
#ifndef RT_PROXY_H
#define RT_PROXY_H

#include "http_server.h"
#include "router.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* Optional observer (set once before serving; called on the loop thread). */
typedef struct {
    /* returns a per-request cookie handed to the other calls */
    void *(*begin)(void *ud, const char *req_id, const char *path, const char *model,
                   const char *body, size_t len);
    void (*chunk)(void *ud, void *cookie, const char *data, size_t len);
    void (*end)(void *ud, void *cookie, const char *node_id, int status, const char *error);
    void *ud;
} rt_proxy_observer_t;

/* Builds the registry, the admission queue and the proxy settings from the
 * configuration and loads stored nodes. 0, or -1 with err. */
int rt_proxy_init(rt_router_t *rt, char *err, size_t errlen);
void rt_proxy_fini(rt_router_t *rt);
void rt_proxy_set_observer(rt_router_t *rt, const rt_proxy_observer_t *obs);
/* cm_http_server_opts_t worker hooks (ud: the router): the per-loop HTTP
 * client, and the health sweep on worker 0. */
void rt_proxy_worker_start(struct event_base *base, int worker, void *ud);
void rt_proxy_worker_stop(struct event_base *base, int worker, void *ud);

/* Proxies body (req's body, from cm_http_req_body: valid until req is
 * finished) to path ("/v1/...") on a node serving model. Always finishes req. */
void rt_proxy_forward(rt_router_t *rt, cm_http_req_t *req, const char *path, const char *model,
                      const char *body, size_t len);

/* Requests waiting in the admission queue now. */
size_t rt_proxy_waiting(rt_router_t *rt);

#endif
