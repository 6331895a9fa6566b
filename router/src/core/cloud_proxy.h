/* cloud_proxy: the cloud prefixes as another kind of upstream beside the
 * nodes. A request whose model is "openai:...", "anthropic:..." (alias
 * "ahtnorpic:...") or "google:..." is sent to that provider with the prefix
 * stripped, through the libcurl transport of the worker's HTTP client
 * (HTTPS, the system CA store plus an optional extra bundle, connections
 * kept alive per loop), translated by cloud/cloud.h and answered in
 * OpenAI's shapes, streams included. A missing key answers 401 naming the
 * variable before any upstream call; 429 and 5xx before any byte reached
 * the client are retried with back-off honouring Retry-After (bounded); a
 * client that leaves cancels the upstream call. The proxy's observer sees
 * each request (node = the provider) so the history and /metrics record it;
 * /metrics/cloud counts through rt_metrics_cloud. Keys never reach logs,
 * history or errors. */
#ifndef RT_CLOUD_PROXY_H
#define RT_CLOUD_PROXY_H

#include "cloud/cloud.h"
#include "core/metrics.h"
#include "core/proxy.h"
#include "http_server.h"

struct event_base;
struct cJSON;

typedef struct rt_cloud rt_cloud_t;

typedef struct {
    const char *key[RT_CLOUD_PROVIDERS];      /* NULL or "": unset (401 naming key_var) */
    const char *key_var[RT_CLOUD_PROVIDERS];  /* "OPENAI_API_KEY", ... (for the 401) */
    const char *base_url[RT_CLOUD_PROVIDERS]; /* no trailing '/' needed */
    const char *ca_bundle;                    /* extra CA file (PEM), NULL: system store only */
    const char *models;                       /* "openai:gpt-4o-mini,anthropic:claude-3-5-haiku" for /v1/models */
    int retries;                              /* retries after 429/5xx/connection failure before any byte */
    long connect_timeout_ms;
    long head_timeout_s;                      /* provider's response head within this long */
    long idle_timeout_s;                      /* then no silence longer than this */
    int anthropic_max_tokens;                 /* max_tokens when the client sent none */
    const char *anthropic_version;            /* anthropic-version header */
    int workers;
} rt_cloud_opts_t;

/* Strings in o are borrowed (the config's) and must outlive the cloud. */
rt_cloud_t *rt_cloud_new(const rt_cloud_opts_t *o, rt_metrics_t *metrics);
void rt_cloud_free(rt_cloud_t *c);
/* The observer the proxy has (the recorder): the same calls, node = provider. */
void rt_cloud_set_observer(rt_cloud_t *c, const rt_proxy_observer_t *obs);
/* The pool a large whole answer (128 KiB on) is translated on rather than
 * on the loop; set once before serving. NULL: on the loop. */
struct cm_offload;
void rt_cloud_set_offload(rt_cloud_t *c, struct cm_offload *pool);
void rt_cloud_worker_start(rt_cloud_t *c, struct event_base *base, int worker);
void rt_cloud_worker_stop(rt_cloud_t *c, int worker);

/* A cloud request made ready for sending: the checks that need no loop
 * (provider, key, endpoint) and the provider's request built from the
 * client's parsed body. api_openai.c parses a large body on the offload
 * pool and prepares it there too, so that neither the parse nor the
 * translation of a huge body runs on a loop. */
typedef struct {
    rt_cloud_provider_t provider;
    rt_cloud_call_t call; /* built when status is 0 (owned: rt_cloud_send takes it) */
    int status;           /* 0: ready; else the client's error (401 no key, 400 refused, 404 ...) */
    const char *type;     /* the error's OpenAI type, a literal */
    const char *code;     /* a literal or NULL */
    const char *param;    /* a literal or NULL */
    char message[288];
} rt_cloud_prep_t;

/* Fills *out for the client's request (path, model with its prefix, body
 * its parse and raw/len its bytes). Reads only the cloud's immutable setup:
 * any thread. Always fills out (rt_cloud_prep_free it unless sent). */
void rt_cloud_prepare(const rt_cloud_t *c, const char *path, const char *model, const struct cJSON *body,
                      const char *raw, size_t len, rt_cloud_prep_t *out);
void rt_cloud_prep_free(rt_cloud_prep_t *p);
/* Sends a prepared request (or answers its error), finishing req; takes
 * prep's call. path, model, body and len as rt_cloud_forward. On req's loop. */
void rt_cloud_send(rt_cloud_t *c, cm_http_req_t *req, const char *path, const char *model, const char *body,
                   size_t len, rt_cloud_prep_t *prep);

/* Parses body, prepares and sends: for a body small enough to parse on the
 * loop. Forwards body (the client's, valid until req is finished) for path
 * ("/v1/chat/completions", "/v1/completions", "/v1/embeddings") and model
 * (with its prefix). Always finishes req. On req's loop. */
void rt_cloud_forward(rt_cloud_t *c, cm_http_req_t *req, const char *path, const char *model, const char *body,
                      size_t len);

/* Appends one OpenAI model object per configured cloud model to the array
 * data (/v1/models). Any thread. */
void rt_cloud_models_json(const rt_cloud_t *c, struct cJSON *data);

#endif
