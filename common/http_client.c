/* http_client: the public interface over the two transports (see
 * http_client_impl.h), and what both of them share: defaults, the response
 * head, the calls into the user's callbacks. */
#include "http_client_impl.h"

#include "closer.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct cm_hc {
    cm_closer_t *closer;   /* both transports' closed sockets, closed a turn later */
    hc_transport_t *own;   /* http_client_ev.c */
    hc_transport_t *curl;  /* http_client_curl.c */
};

const hc_limits_t hc_limits = {
    .connect_timeout_ms = 10000,
    .head_max = 64 * 1024,
    .head_buf_min = 512,
};

const char *cm_hc_strerror(int result)
{
    switch (result) {
#define CM_HC_CASE(name, val, text) case val: return text;
        CM_HC_ERRORS(CM_HC_CASE)
#undef CM_HC_CASE
    default: return "unknown error";
    }
}

long hc_connect_timeout_ms(const cm_hc_opts_t *o)
{
    return o->connect_timeout_ms > 0 ? o->connect_timeout_ms : hc_limits.connect_timeout_ms;
}

size_t hc_head_max(const cm_hc_opts_t *o)
{
    return o->max_header_bytes ? o->max_header_bytes : hc_limits.head_max;
}

/* ---- the response head (the inline part is in http_client_impl.h) ---- */

int hc_head_line(hc_head_t *h, const char *line, size_t len)
{
    size_t nl, voff;
    if (!hc_header_split(line, len, &nl, &voff))
        return 0;
    if (hc_head_field(h, line, nl) || hc_head_value(h, line + voff, len - voff))
        return -1;
    return 0;
}

void hc_head_reset(hc_head_t *h)
{
    h->len = h->n = 0;
    h->state = HC_HEAD_NONE;
}

void hc_head_free(hc_head_t *h)
{
    free(h->buf);
    h->buf = NULL;
    h->cap = 0;
    hc_head_reset(h);
}

/* ---- calls into the user's callbacks ---- */

void hc_req_init(cm_hc_req_t *r, const hc_ops_t *ops, const cm_hc_opts_t *o)
{
    r->ops = ops;
    r->o = *o;
    r->o.url = NULL;
    r->o.headers = NULL;
    r->head.max = hc_head_max(o);
}

/* The head's headers as on_headers gets them; the head must be complete. */
static size_t head_headers(hc_head_t *h, cm_hc_header_t *out)
{
    size_t n = h->n < HC_MAX_HEADERS ? h->n : HC_MAX_HEADERS;
    for (size_t i = 0; i < n; i++) {
        out[i].name = h->buf + h->off[i][0];
        out[i].value = h->buf + h->off[i][1];
    }
    return n;
}

int hc_head_end(cm_hc_req_t *r, long st)
{
    if (st < 100 || st > 599) {
        r->bad_status = true;
        return -1;
    }
    if (st < 200) {
        hc_head_reset(&r->head); /* an interim response: the final one follows */
        return 1;
    }
    hc_head_t *h = &r->head;
    if (h->state == HC_HEAD_VALUE) {
        if (hc_head_put(h, "", 1))
            return -1;
        h->n++;
        h->state = HC_HEAD_NONE;
    }
    cm_hc_header_t hs[HC_MAX_HEADERS];
    size_t nh = head_headers(h, hs);
    r->status = (int)st;
    r->head_done = true;
    int rc = CM_HC_CONTINUE;
    if (r->o.on_headers) {
        r->depth++;
        rc = r->o.on_headers(r, r->status, hs, nh, r->o.ud);
        r->depth--;
    }
    /* what is left of the bound is the trailers' (a chunked body's end) */
    h->max = h->max > h->len ? h->max - h->len : 1;
    hc_head_free(h);
    if (rc != CM_HC_CONTINUE)
        r->aborted = true;
    return r->aborted || r->cancelled ? -1 : 0;
}

int hc_deliver_trailers(cm_hc_req_t *r)
{
    hc_head_t *h = &r->head;
    if (h->state == HC_HEAD_VALUE) {
        if (hc_head_put(h, "", 1))
            return -1; /* over the bound (too_big) */
        h->n++;
        h->state = HC_HEAD_NONE;
    }
    if (h->n > 0 && r->o.on_trailers && !r->cancelled) {
        cm_hc_header_t hs[HC_MAX_HEADERS];
        size_t nh = head_headers(h, hs);
        r->depth++;
        r->o.on_trailers(r, hs, nh, r->o.ud);
        r->depth--;
    }
    hc_head_free(h);
    return r->cancelled ? -1 : 0;
}

bool hc_deliver_data(cm_hc_req_t *r, const char *data, size_t len)
{
    if (r->o.on_data && len > 0) {
        r->depth++;
        int rc = r->o.on_data(r, data, len, r->o.ud);
        r->depth--;
        if (rc != CM_HC_CONTINUE)
            r->aborted = true;
    }
    return !r->aborted && !r->cancelled;
}

void hc_deliver_done(cm_hc_req_t *r, int result, const char *detail)
{
    r->cancelled = true; /* no callback after on_done; cm_hc_cancel from it is a no-op */
    if (!r->o.on_done)
        return;
    r->depth++;
    r->o.on_done(r, result, detail ? detail : "", r->o.ud);
    r->depth--;
}

int hc_stop_result(const cm_hc_req_t *r)
{
    if (r->head.too_big)
        return CM_HC_ETOOBIG;
    if (r->bad_status)
        return CM_HC_EPROTO;
    if (r->aborted)
        return CM_HC_EABORTED;
    return CM_HC_OK;
}

/* ---- public ---- */

cm_hc_t *cm_hc_new(struct event_base *base)
{
    cm_hc_t *hc = cm_xcalloc(1, sizeof(*hc));
    hc->closer = cm_closer_new(base);
    hc->own = hce_new(base, hc->closer);
    hc->curl = hcc_new(base, hc->closer);
    return hc;
}

void cm_hc_free(cm_hc_t *hc)
{
    if (!hc)
        return;
    /* what is still in flight ends without callbacks; the closer last, since
     * both transports close their sockets through it */
    hc->own->ops->free(hc->own);
    hc->curl->ops->free(hc->curl);
    cm_closer_free(hc->closer);
    free(hc);
}

cm_hc_req_t *cm_hc_request(cm_hc_t *hc, const cm_hc_opts_t *opts)
{
    if (!opts->url || !*opts->url)
        return NULL;
    hc_route_t route = { 0 };
    hc_transport_t *t = hce_accepts(hc->own, opts, &route) ? hc->own : hc->curl;
    return t->ops->request(t, opts, &route);
}

void cm_hc_cancel(cm_hc_req_t *r)
{
    if (r && !r->cancelled)
        r->ops->cancel(r);
}

void cm_hc_pause(cm_hc_req_t *r)
{
    if (!r->paused && !r->cancelled)
        r->ops->pause(r);
}

void cm_hc_resume(cm_hc_req_t *r)
{
    if (r->paused && !r->cancelled)
        r->ops->resume(r);
}

bool cm_hc_paused(const cm_hc_req_t *r) { return r->paused; }

int cm_hc_status(const cm_hc_req_t *r) { return r->status; }

size_t cm_hc_active(const cm_hc_t *hc) { return hc->own->ops->active(hc->own) + hc->curl->ops->active(hc->curl); }
