/* http_client_impl: what http_client.c and its own transport (http_client_ev.c) share.
 * Private to common/; callers include http_client.h only.
 *
 * A request handle starts with struct cm_hc_req, which says which transport
 * owns it; each transport's own request type embeds it as its first member. */
#ifndef CM_HTTP_CLIENT_IMPL_H
#define CM_HTTP_CLIENT_IMPL_H

#include "closer.h"
#include "http_client.h"

struct cm_hc_req {
    bool ev; /* true: http_client_ev.c's, false: libcurl's */
};

/* The own transport of one client (one loop). Its closed connections go to
 * closer, the client's, which outlives it. */
typedef struct hc_ev hc_ev_t;

hc_ev_t *hc_ev_new(struct event_base *base, cm_closer_t *closer);
void hc_ev_free(hc_ev_t *h); /* cancels what is left: no callbacks */

/* Starts the request on this transport when it can take it (plain http://
 * with a numeric host, no proxy), else returns NULL and the caller uses
 * libcurl. Like cm_hc_request, no callback runs inside this call. */
cm_hc_req_t *hc_ev_request(hc_ev_t *h, const cm_hc_opts_t *opts);
void hc_ev_cancel(cm_hc_req_t *r);
void hc_ev_pause(cm_hc_req_t *r);
void hc_ev_resume(cm_hc_req_t *r);
bool hc_ev_paused(const cm_hc_req_t *r);
int hc_ev_status(const cm_hc_req_t *r);
size_t hc_ev_active(const hc_ev_t *h);

#endif
