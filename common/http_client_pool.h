/* http_client_pool: the connections of http_client_ev.c, kept per upstream
 * (scheme + host + port as the URL spells it; numeric hosts only). An idle
 * connection stays in epoll, watched for the peer closing it; each has one
 * persistent event whose callback the transport gives. Private to common/. */
#ifndef CM_HTTP_CLIENT_POOL_H
#define CM_HTTP_CLIENT_POOL_H

#include "closer.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct ev_pool ev_pool_t;
struct ev_req;

typedef struct ev_conn {
    evutil_socket_t fd;
    struct event ev;         /* read (+ write while connecting or writing); persistent */
    short mask;              /* what ev is registered for; 0: not added */
    ev_pool_t *pool;
    struct ev_conn *next;    /* in the pool's idle list */
    struct ev_req *req;      /* the request it carries; NULL while idle */
    unsigned served;         /* responses completed on it */
    char *out;               /* request bytes not written yet */
    size_t outlen, outoff;
} ev_conn_t;

struct ev_pool {
    char *origin;            /* "http://127.0.0.1:8081": the URL up to its path */
    size_t olen;
    char *host;              /* numeric, without brackets */
    char *authority;         /* Host header */
    unsigned short port;
    struct sockaddr_storage addr;
    socklen_t alen;
    ev_conn_t *idle;
    size_t nidle;
    cm_closer_t *closer;     /* the transport's: closed connections' descriptors */
};

typedef struct {
    ev_pool_t **v;
    size_t n, cap;
    cm_closer_t *closer;     /* set by the transport; each pool gets it */
} ev_pools_t;

/* The upstream url belongs to, made on first sight; NULL when this transport
 * does not take the URL. *path: where the request target starts in url. */
ev_pool_t *ev_pool_for(ev_pools_t *ps, const char *url, const char **path);
/* Closes every idle connection and frees the pools. */
void ev_pools_free(ev_pools_t *ps);

/* An idle connection of p, out of the idle list, or NULL. */
ev_conn_t *ev_conn_take(ev_pool_t *p);
/* A connected-or-connecting socket to p's address, its event not added yet
 * (ev_conn_watch adds it), or NULL (errno). */
ev_conn_t *ev_conn_new(struct event_base *base, ev_pool_t *p, event_callback_fn cb);
/* What the connection's event waits for (0: nothing) and its timeout. The
 * descriptor stays registered while mask does not change. */
void ev_conn_watch(ev_conn_t *c, short mask, const struct timeval *tv);
/* Back to its pool's idle list (or closed when the pool is full or the
 * connection has unsent bytes). */
void ev_conn_put(ev_conn_t *c);
/* An idle connection woke up (the peer closed it, sent unasked bytes, or it
 * aged): out of the idle list and closed. */
void ev_conn_drop_idle(ev_conn_t *c);
void ev_conn_close(ev_conn_t *c);

#endif
