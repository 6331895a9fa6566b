/* http_client_pool: the upstreams of the own transport (http_client_ev.c)
 * and their kept-alive connections. Private to common/.
 *
 * An upstream (hcp_pool_t) is one origin as the URL spells it ("http://
 * 10.0.0.7:8081"), parsed once by cm_origin_parse; later URLs find it by a
 * prefix compare, no parse. An origin the own transport cannot reach (a host
 * name) is kept too, marked not direct, so that its URLs go to libcurl
 * without being parsed again. Nodes come and go: an upstream without a
 * request in flight and without an idle connection, and not looked up for
 * drop_ms (60 s), is freed by a sweep that runs at most once per drop_ms,
 * from the lookup of an origin not seen yet. So the array holds the
 * upstreams in use plus those that went quiet recently, and no clock is read
 * on the path of a known upstream.
 *
 * An idle connection stays in epoll, watched for the peer closing it; each
 * has one persistent event whose callback the transport gives. */
#ifndef CM_HTTP_CLIENT_POOL_H
#define CM_HTTP_CLIENT_POOL_H

#include "closer.h"
#include "http_origin.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hcp_pool hcp_pool_t;
struct hce_req;

typedef struct hcp_conn {
    evutil_socket_t fd;
    struct event ev;         /* read (+ write while connecting or writing); persistent */
    short mask;              /* what ev is registered for; 0: not added */
    hcp_pool_t *pool;
    struct hcp_conn *next;   /* in the pool's idle list */
    struct hce_req *req;     /* the request it carries; NULL while idle */
    unsigned served;         /* responses completed on it */
    char *out;               /* request bytes not written yet */
    size_t outlen, outoff;
} hcp_conn_t;

struct hcp_pool {
    char *spelled;           /* the URL's bytes up to its path: the lookup key */
    cm_origin_t origin;      /* parsed; origin.target is not kept */
    bool direct;             /* plain http:// to a numeric address: ours to connect */
    hcp_conn_t *idle;
    size_t nidle;
    unsigned refs;           /* requests that hold it (hcp_pool_hold) */
    bool used;               /* looked up since the last sweep */
    cm_closer_t *closer;     /* the transport's: closed connections' descriptors */
};

typedef struct {
    hcp_pool_t **v;
    size_t n, cap;
    cm_closer_t *closer;     /* each pool gets it */
    uint64_t drop_ms;        /* an empty upstream unused this long is freed (tests shorten it) */
    uint64_t swept_ms;       /* when the last sweep ran */
} hcp_pools_t;

#define HCP_DROP_MS 60000

void hcp_pools_init(hcp_pools_t *ps, cm_closer_t *closer);
/* Closes every idle connection and frees the pools; none may be held. */
void hcp_pools_free(hcp_pools_t *ps);

/* The upstream url belongs to, made on first sight, or NULL when url is not
 * an http:// URL whose path starts with '/' (no fragment, no user info).
 * Not direct: libcurl's. *target: where the request target starts in url. */
hcp_pool_t *hcp_pool_for(hcp_pools_t *ps, const char *url, const char **target);
/* Frees the upstreams that are empty (no hold, no idle connection) and were
 * not looked up since the previous sweep; hcp_pool_for calls it when it
 * meets a new origin and the previous sweep is drop_ms old. */
void hcp_pools_sweep(hcp_pools_t *ps);
/* A request holds the pool while it runs: a held pool is never freed. */
void hcp_pool_hold(hcp_pool_t *p);
void hcp_pool_release(hcp_pool_t *p);

/* An idle connection of p, out of the idle list, or NULL. */
hcp_conn_t *hcp_conn_take(hcp_pool_t *p);
/* A connected-or-connecting socket to p's address, its event not added yet
 * (hcp_conn_watch adds it), or NULL (errno). */
hcp_conn_t *hcp_conn_new(struct event_base *base, hcp_pool_t *p, event_callback_fn cb);
/* What the connection's event waits for (0: nothing) and its timeout. The
 * descriptor stays registered while mask does not change. */
void hcp_conn_watch(hcp_conn_t *c, short mask, const struct timeval *tv);
/* Back to its pool's idle list (or closed when the pool is full or the
 * connection has unsent bytes). */
void hcp_conn_put(hcp_conn_t *c);
/* An idle connection woke up (the peer closed it, sent unasked bytes, or it
 * aged): out of the idle list and closed. */
void hcp_conn_drop_idle(hcp_conn_t *c);
void hcp_conn_close(hcp_conn_t *c);

#endif
