/* http_client_impl: what http_client.c (the front) and the two transports
 * behind it share. Private to common/; callers include http_client.h only.
 *
 *   http_client_ev.c    ours (prefix hce_): HTTP/1.1 on one libevent event
 *                       per connection, responses parsed by http_parser, for
 *                       plain http:// to a numeric address without a proxy
 *                       (the router's nodes); its connections and upstreams
 *                       are in http_client_pool.c (hcp_);
 *   http_client_curl.c  libcurl's multi interface (hcc_): everything else.
 *
 * The front picks the transport once per request, by a predicate
 * (hce_accepts), and every later call on the request goes through the ops of
 * the transport that took it: nothing is tried on one transport and then on
 * the other. What both would otherwise each do their own way lives here and
 * in http_client.c: the defaults and bounds, the response head (header lines
 * split into cm_hc_header_t, 1xx responses skipped, the size bound), and the
 * calls into the user's callbacks. */
#ifndef CM_HTTP_CLIENT_IMPL_H
#define CM_HTTP_CLIENT_IMPL_H

#include "closer.h"
#include "http_client.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct event_base;
struct hcp_pool;

/* ---- defaults and limits of both transports ---- */

enum { HC_MAX_HEADERS = 64 }; /* response headers given to on_headers; later ones are dropped */

typedef struct {
    long connect_timeout_ms; /* when the options say 0 */
    size_t head_max;         /* response head bytes, when the options say 0 */
    size_t head_buf_min;     /* first size of a head buffer; it doubles up to the bound */
} hc_limits_t;

extern const hc_limits_t hc_limits;

long hc_connect_timeout_ms(const cm_hc_opts_t *o);
size_t hc_head_max(const cm_hc_opts_t *o);

/* A request that failed on a kept-alive connection before any response byte
 * came back is sent once more on a fresh connection: the peer closed the idle
 * connection just as the request went out. A fresh connection's failure is
 * the peer's: the caller decides (the router retries on another node).
 * libcurl applies the same rule inside; the own transport asks this. */
static inline bool hc_retry_stale(bool reused, bool got_bytes, bool retried)
{
    return reused && !got_bytes && !retried;
}

/* ---- header lines ----
 *
 * These run for every piece of every response header and every request
 * header line, on the router's path to its nodes: inline, so that the own
 * transport's parser callbacks pay no call per piece and a 1-byte terminator
 * is a store, not a memcpy. */

/* Splits "Name: value" (len bytes): the name is line[0..*name_len), the
 * value starts at line + *value_off (its leading blanks skipped). false when
 * the line has no ':'. */
static inline bool hc_header_split(const char *line, size_t len, size_t *name_len, size_t *value_off)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return false;
    size_t v = (size_t)(colon - line) + 1;
    while (v < len && (line[v] == ' ' || line[v] == '\t'))
        v++;
    *name_len = (size_t)(colon - line);
    *value_off = v;
    return true;
}

/* A response head as it arrives: names and values in pieces (http_parser) or
 * as whole lines (libcurl), kept as "name\0value\0" in one buffer that grows
 * to the bound. Headers past HC_MAX_HEADERS are kept (they count against the
 * bound) but not indexed. */
typedef struct {
    char *buf;
    size_t len, cap, max;          /* max: the bound on len */
    size_t off[HC_MAX_HEADERS][2]; /* name and value offsets in buf */
    size_t n;                      /* headers seen */
    enum { HC_HEAD_NONE, HC_HEAD_FIELD, HC_HEAD_VALUE } state;
    bool too_big;                  /* the bound was passed */
} hc_head_t;

/* Appends len bytes; -1 past the bound (too_big set). */
static inline int hc_head_put(hc_head_t *h, const char *at, size_t len)
{
    if (h->len + len + 1 > h->max) {
        h->too_big = true;
        return -1;
    }
    cm_xgrow(&h->buf, &h->cap, h->len + len + 1, hc_limits.head_buf_min);
    memcpy(h->buf + h->len, at, len);
    h->len += len;
    return 0;
}

/* Pieces of a name or a value (a new header begins when a name follows a
 * value). -1 past the bound, else 0. */
static inline int hc_head_field(hc_head_t *h, const char *at, size_t len)
{
    if (h->state == HC_HEAD_VALUE) {
        if (hc_head_put(h, "", 1))
            return -1;
        h->n++;
    }
    if (h->state != HC_HEAD_FIELD) {
        if (h->n < HC_MAX_HEADERS)
            h->off[h->n][0] = h->len;
        h->state = HC_HEAD_FIELD;
    }
    return hc_head_put(h, at, len);
}

static inline int hc_head_value(hc_head_t *h, const char *at, size_t len)
{
    if (h->state != HC_HEAD_VALUE) {
        if (hc_head_put(h, "", 1))
            return -1;
        if (h->n < HC_MAX_HEADERS)
            h->off[h->n][1] = h->len;
        h->state = HC_HEAD_VALUE;
    }
    return hc_head_put(h, at, len);
}

/* One whole header line, without its CRLF; a line without ':' is skipped. */
int hc_head_line(hc_head_t *h, const char *line, size_t len);
/* Forgets the headers (an interim response ended); the buffer is kept. */
void hc_head_reset(hc_head_t *h);
/* Frees the buffer: a long stream should not hold it after delivery. */
void hc_head_free(hc_head_t *h);

/* ---- requests and transports ---- */

typedef struct hc_transport hc_transport_t;

/* What hce_accepts found out about a request, handed to the transport's
 * request() so that it is not worked out twice. libcurl's ignores it. */
typedef struct {
    struct hcp_pool *pool; /* the upstream */
    const char *target;    /* request-target: in the options' url */
    const void *method;    /* the own transport's entry for the method */
} hc_route_t;

/* A transport of one client (one loop). request() copies what it keeps of
 * the options and runs no callback inside the call. cancel(): no callback
 * afterwards, also from inside the request's own callbacks. free() ends what
 * is left without callbacks. */
typedef struct {
    const char *name;
    cm_hc_req_t *(*request)(hc_transport_t *t, const cm_hc_opts_t *o, const hc_route_t *route);
    void (*cancel)(cm_hc_req_t *r);
    void (*pause)(cm_hc_req_t *r);
    void (*resume)(cm_hc_req_t *r);
    size_t (*active)(const hc_transport_t *t);
    void (*free)(hc_transport_t *t);
} hc_ops_t;

/* The first member of each transport's own state. */
struct hc_transport {
    const hc_ops_t *ops;
};

/* The first member of each transport's request. The state the public calls
 * read (status, paused) is here, so they need no transport. */
struct cm_hc_req {
    const hc_ops_t *ops;
    cm_hc_opts_t o;   /* the caller's options; url and headers NULL (the transport copied them) */
    hc_head_t head;
    int status;       /* of the final response, once its head arrived */
    int depth;        /* > 0 while one of the user's callbacks runs */
    bool head_done, paused, cancelled, aborted, bad_status;
};

/* Sets up the base of a new request from the caller's options. */
void hc_req_init(cm_hc_req_t *r, const hc_ops_t *ops, const cm_hc_opts_t *o);

/* A response head ended with status st. 1 for an interim (1xx) one: its
 * headers are dropped and the final head follows. 0 for the final head,
 * delivered to on_headers (then freed), which let it go on. -1: stop, st is
 * not an HTTP status (bad_status), or on_headers aborted (aborted) or
 * cancelled the request. */
int hc_head_end(cm_hc_req_t *r, long st);
/* A chunked response's trailer fields arrive into r->head after the body,
 * bounded by what the head left of the bound (max_header_bytes counts head
 * and trailers together). Whether the transport should keep them: only for
 * a caller with on_trailers. */
static inline bool hc_wants_trailers(const cm_hc_req_t *r)
{
    return r->o.on_trailers != NULL;
}
/* The trailers kept (if any) to on_trailers, once, and frees them. -1: stop,
 * over the bound (head.too_big) or cancelled from on_trailers. */
int hc_deliver_trailers(cm_hc_req_t *r);
/* Body bytes to on_data. false: stop (aborted, or cancelled from on_data). */
bool hc_deliver_data(cm_hc_req_t *r, const char *data, size_t len);
/* on_done, once: no callback runs for r afterwards. */
void hc_deliver_done(cm_hc_req_t *r, int result, const char *detail);
/* The result of a transfer that r's own state stopped (head too big, bad
 * status, aborted by a callback), or CM_HC_OK when none did. */
int hc_stop_result(const cm_hc_req_t *r);

/* The own transport (http_client_ev.c). Its closed connections go to
 * closer, the client's, which outlives it. */
hc_transport_t *hce_new(struct event_base *base, cm_closer_t *closer);
/* True when the own transport carries o: plain http:// to a numeric address,
 * no_proxy, not force_curl, a method and header lines it knows how to send.
 * Fills *route. Cheap for a URL whose upstream it has seen: a prefix
 * compare, no URL parse. */
bool hce_accepts(hc_transport_t *t, const cm_hc_opts_t *o, hc_route_t *route);

/* libcurl's transport (http_client_curl.c): takes any request. */
hc_transport_t *hcc_new(struct event_base *base, cm_closer_t *closer);

#endif
