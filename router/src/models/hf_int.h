/* hf_int: what hf.c (the Hub's API: access check, listings, model info,
 * tree, search) and hf_download.c (a file's download) share: the limits, one
 * response's fields, and the request that follows redirects itself, sending
 * the token only to the Hub's own host. */
#ifndef RT_HF_INT_H
#define RT_HF_INT_H

#include "models/hf.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#define HF_MAX_HOPS 10          /* redirects followed per request */
#define HF_MAX_PAGES 100        /* pages of one listing */
#define HF_JSON_MAX (16u << 20) /* one page of a listing */
#define HF_HDR_MAX 8192         /* a kept header (signed CDN URLs are long) */
#define HF_CONNECT_S 10
/* A transfer slower than this for that long is dropped (and retried): no
 * total limit, a big file takes as long as it takes. */
#define HF_LOW_SPEED_BPS 1024
#define HF_LOW_SPEED_S 30
#define HF_JSON_TIMEOUT_S 60
#define HF_BACKOFF_MAX_S 30

typedef struct {
    long status;
    char location[HF_HDR_MAX];
    char link[HF_HDR_MAX];
    char content_range[128];
    char error_code[64];
    char error_message[256];
    int retry_after;
} resp_t;

/* Where a final (non-redirect) response's body goes. */
typedef struct {
    size_t (*write)(void *arg, CURL *c, long status, const char *p, size_t n); /* n: taken, else abort */
    int (*progress)(void *arg);                                                /* non-zero: abort */
    void *arg;
} sink_t;

/* One request to url (a path on the Hub or an absolute URL), following
 * redirects by hand (at most HF_MAX_HOPS; the token only to the Hub's own
 * origin), from range_from with Range when non-zero. Fills r for the final
 * response; *final_url (optional, new string) is where it came from. The
 * CURLcode of the last hop. */
CURLcode hf_perform(const rt_hf_t *h, const char *url, uint64_t range_from, bool json, const sink_t *sink,
                    resp_t *r, char **final_url);
/* The final response's status as the Hub's error (404 repo, 401/403 gated,
 * 429 with its Retry-After, ...) naming what. */
void hf_map_status(const resp_t *r, const char *what, rt_hf_err_t *e);
/* A transfer that failed below HTTP as the Hub's error. */
void hf_transport_error(CURLcode cc, rt_hf_err_t *e);

#endif
