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
 * the stream with an SSE "error" event and "data: [DONE]". A non-streaming
 * answer too big to hold (HOLD_MAX) is relayed as it arrives; a node failing
 * after that closes the client's connection without the last chunk
 * (cm_http_stream_abort), so the client sees an incomplete body.
 *
 * Time limits: the node's response head within head_timeout_s, then no
 * silence longer than idle_timeout_s; a node the health sweep takes offline
 * fails its attempts at once (rt_proxy_node_offline). Clients are told a
 * generic message with the request id; the detail (node, address, reason)
 * goes to the log under that id and to the observer.
 *
 * The proxy only picks, forwards, relays, retries and finishes: the registry,
 * the admission queue and the HTTP clients' loops are given to it by the
 * assembler (server.c); it includes no handler header.
 *
 * Room for what comes next: rt_proxy_observer_t sees each request and every
 * response chunk (a history recorder can reassemble streams from it without
 * a second copy on the hot path); a cloud provider is another kind of
 * upstream selected before admission (api_openai.c checks the prefix). */
#ifndef RT_PROXY_H
#define RT_PROXY_H

#include "core/admission.h"
#include "core/registry.h"
#include "http_server.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;

typedef struct rt_proxy rt_proxy_t;

typedef struct {
    int retries;               /* other nodes tried after a failure (at most 16) */
    unsigned queue_timeout_ms; /* longest wait in the admission queue */
    unsigned suspend_ms;       /* a node failing at connection level gets no work for this long */
    /* the node's response head within this long of the request, else the
     * attempt failed (retried elsewhere, the node suspended); 0: none. A
     * non-streaming answer's head comes when the whole answer is ready. */
    long head_timeout_s;
    /* after the head, a node silent for this long between body bytes: the
     * attempt failed (retried while nothing reached the client, else the
     * stream ends with an error event); 0: none. Without head_timeout_s it
     * bounds the wait for the head too. */
    long idle_timeout_s;
    int workers;               /* worker loops the HTTP server runs (one HTTP client each) */
} rt_proxy_opts_t;

/* How a proxied request ended, for the observer's end call. Strings are
 * valid during the call only. Times are monotonic (cm_now_us). */
typedef struct {
    const char *node_id;   /* the last node tried, NULL when none was */
    const char *node_name; /* its display name, NULL when none was tried */
    int attempts;          /* nodes tried (1 + retries); 0: none */
    int status;            /* what the client was sent (200 for a stream that later broke) */
    /* NULL on success; else the error's code as the client saw it
     * ("model_not_found", "queue_full", "queue_timeout", "no_node_available",
     * "upstream_error", "upstream_timeout"), or "stream_error" for a stream
     * the node broke after bytes reached the client, or "client_closed" */
    const char *error_type;
    const char *error;     /* the detail (node, reason); NULL on success */
    bool sse;              /* the answer was an event stream */
    bool client_closed;    /* the client left before the end */
    uint64_t start_us;     /* rt_proxy_forward */
    uint64_t first_byte_us; /* the first byte of the answer reached the client's connection; 0: none */
    uint64_t end_us;
    uint64_t queue_us;     /* spent waiting in the admission queue */
    uint64_t upstream_us;  /* spent waiting on nodes (request out to the last byte), all attempts */
    /* the node's X-LLM-Usage trailer on a stream ({"prompt_tokens":..}), NULL: none */
    const char *usage_trailer;
} rt_proxy_result_t;

/* Optional observer (set once before serving; called on the loop thread). */
typedef struct {
    /* returns a per-request cookie handed to the other calls; req is the
     * client's request (id, principal, peer), valid until end */
    void *(*begin)(void *ud, cm_http_req_t *req, const char *path, const char *model,
                   const char *body, size_t len);
    /* the bytes of the answer of the current attempt, as the node sent them */
    void (*chunk)(void *ud, void *cookie, const char *data, size_t len);
    /* the attempt whose chunks it saw failed before any byte reached the
     * client and is retried on another node: drop those chunks (optional) */
    void (*retry)(void *ud, void *cookie);
    /* exactly once per begin */
    void (*end)(void *ud, void *cookie, const rt_proxy_result_t *res);
    void *ud;
} rt_proxy_observer_t;

/* reg and adm are borrowed and must outlive the proxy; adm must have been
 * made with rt_proxy_try_slot as its try callback and reg as its ud. */
rt_proxy_t *rt_proxy_new(const rt_proxy_opts_t *o, rt_registry_t *reg, rt_admission_t *adm);
/* After the loops stopped. NULL is a no-op. */
void rt_proxy_free(rt_proxy_t *p);
void rt_proxy_set_observer(rt_proxy_t *p, const rt_proxy_observer_t *obs);
/* From the HTTP server's worker hooks, on that worker's loop thread: the
 * loop's HTTP client to the nodes. */
void rt_proxy_worker_start(rt_proxy_t *p, struct event_base *base, int worker);
void rt_proxy_worker_stop(rt_proxy_t *p, int worker);

/* The admission queue's try callback (rt_admission_new): takes a slot on a
 * node for the proxied request ctx; ud is the registry. */
rt_adm_status_t rt_proxy_try_slot(void *ctx, void *ud);

/* node_id went offline (the health sweep): on each worker's own loop, soon
 * after this call, the requests with an attempt on that node fail it, as a
 * broken connection would (retried on another node while nothing reached the
 * client, else the stream ends with an error event). Any thread. */
void rt_proxy_node_offline(rt_proxy_t *p, const char *node_id);

/* Proxies body (req's body, from cm_http_req_body: valid until req is
 * finished) to path ("/v1/...") on a node serving model. Always finishes req. */
void rt_proxy_forward(rt_proxy_t *p, cm_http_req_t *req, const char *path, const char *model,
                      const char *body, size_t len);

#endif
