/* http_client_pool: see http_client_pool.h. */
#include "http_client_pool.h"

#include "util.h"

#include <errno.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IDLE_MAX 256    /* idle connections kept per upstream */
#define IDLE_KEEP_S 300 /* an idle connection unused this long is closed */

/* ---- connections ---- */

void hcp_conn_watch(hcp_conn_t *c, short mask, const struct timeval *tv)
{
    if (c->mask == mask) { /* the timeout only: the descriptor stays registered */
        if (mask && tv)
            event_add(&c->ev, tv);
        else if (mask)
            event_remove_timer(&c->ev);
        return;
    }
    if (c->mask)
        event_del(&c->ev);
    c->mask = mask;
    if (!mask)
        return;
    event_assign(&c->ev, event_get_base(&c->ev), c->fd, (short)(mask | EV_PERSIST), event_get_callback(&c->ev), c);
    event_add(&c->ev, tv);
}

void hcp_conn_close(hcp_conn_t *c)
{
    if (c->mask)
        event_del(&c->ev);
    cm_closer_close(c->pool->closer, c->fd); /* after the loop has dropped it from epoll */
    free(c->out);
    free(c);
}

hcp_conn_t *hcp_conn_new(struct event_base *base, hcp_pool_t *p, event_callback_fn cb)
{
    const cm_origin_t *o = &p->origin;
    evutil_socket_t fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&o->addr, o->alen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        evutil_closesocket(fd);
        errno = e;
        return NULL;
    }
    hcp_conn_t *c = cm_xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->pool = p;
    event_assign(&c->ev, base, fd, EV_READ | EV_PERSIST, cb, c);
    return c;
}

void hcp_conn_put(hcp_conn_t *c)
{
    hcp_pool_t *p = c->pool;
    c->req = NULL;
    if (p->nidle >= IDLE_MAX || c->outlen > c->outoff) {
        hcp_conn_close(c);
        return;
    }
    struct timeval keep = { IDLE_KEEP_S, 0 };
    hcp_conn_watch(c, EV_READ, &keep);
    c->next = p->idle;
    p->idle = c;
    p->nidle++;
}

hcp_conn_t *hcp_conn_take(hcp_pool_t *p)
{
    hcp_conn_t *c = p->idle;
    if (!c)
        return NULL;
    p->idle = c->next;
    p->nidle--;
    c->next = NULL;
    return c;
}

void hcp_conn_drop_idle(hcp_conn_t *c)
{
    hcp_pool_t *p = c->pool;
    for (hcp_conn_t **pp = &p->idle; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            p->nidle--;
            break;
        }
    hcp_conn_close(c);
}

/* ---- upstreams ---- */

void hcp_pools_init(hcp_pools_t *ps, cm_closer_t *closer)
{
    memset(ps, 0, sizeof(*ps));
    ps->closer = closer;
    ps->drop_ms = HCP_DROP_MS;
    ps->swept_ms = cm_now_ms();
}

static void pool_free(hcp_pool_t *p)
{
    while (p->idle)
        hcp_conn_close(hcp_conn_take(p));
    free(p->spelled);
    free(p);
}

void hcp_pools_free(hcp_pools_t *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        pool_free(ps->v[i]);
    free(ps->v);
    ps->v = NULL;
    ps->n = ps->cap = 0;
}

void hcp_pools_sweep(hcp_pools_t *ps)
{
    size_t k = 0;
    for (size_t i = 0; i < ps->n; i++) {
        hcp_pool_t *p = ps->v[i];
        if (!p->used && p->refs == 0 && p->nidle == 0) {
            pool_free(p);
            continue;
        }
        p->used = false;
        ps->v[k++] = p;
    }
    ps->n = k;
    ps->swept_ms = cm_now_ms();
}

/* A new upstream for url, parsed; NULL when url is no origin of ours to
 * keep (not http://, user info, no path). */
static hcp_pool_t *pool_new(hcp_pools_t *ps, const char *url, const char **target)
{
    cm_origin_t o;
    if (strncmp(url, "http://", 7) != 0 || cm_origin_parse(url, &o) != CM_ORIGIN_OK || o.userinfo ||
        o.target[0] != '/')
        return NULL;
    hcp_pool_t *p = cm_xcalloc(1, sizeof(*p));
    p->spelled = cm_xstrndup(url, o.len);
    p->origin = o;
    p->origin.target = NULL; /* it pointed into this url */
    p->direct = o.numeric;
    p->closer = ps->closer;
    p->used = true;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = cm_xrealloc(ps->v, ps->cap * sizeof(*ps->v));
    }
    ps->v[ps->n++] = p;
    *target = o.target;
    return p;
}

hcp_pool_t *hcp_pool_for(hcp_pools_t *ps, const char *url, const char **target)
{
    for (size_t i = 0; i < ps->n; i++) {
        hcp_pool_t *p = ps->v[i];
        size_t n = p->origin.len;
        if (strncmp(url, p->spelled, n) == 0 && url[n] == '/') {
            p->used = true;
            *target = url + n;
            return p;
        }
    }
    if (cm_now_ms() - ps->swept_ms >= ps->drop_ms)
        hcp_pools_sweep(ps); /* a new origin: the departed ones may go */
    return pool_new(ps, url, target);
}

void hcp_pool_hold(hcp_pool_t *p)
{
    p->refs++;
}

void hcp_pool_release(hcp_pool_t *p)
{
    p->refs--;
}
