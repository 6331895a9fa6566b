/* http_client_pool: see http_client_pool.h. */
#include "http_client_pool.h"

#include "util.h"

#include <errno.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDLE_MAX 256    /* idle connections kept per upstream */
#define IDLE_KEEP_S 300 /* an idle connection unused this long is closed */

void ev_conn_watch(ev_conn_t *c, short mask, const struct timeval *tv)
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

void ev_conn_close(ev_conn_t *c)
{
    if (c->mask)
        event_del(&c->ev);
    cm_closer_close(c->pool->closer, c->fd); /* after the loop has dropped it from epoll */
    free(c->out);
    free(c);
}

static void pool_unlink(ev_pool_t *p, ev_conn_t *c)
{
    for (ev_conn_t **pp = &p->idle; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            p->nidle--;
            return;
        }
}

static void pool_free(ev_pool_t *p)
{
    while (p->idle) {
        ev_conn_t *c = p->idle;
        p->idle = c->next;
        ev_conn_close(c);
    }
    free(p->origin);
    free(p->host);
    free(p->authority);
    free(p);
}

ev_conn_t *ev_conn_new(struct event_base *base, ev_pool_t *p, event_callback_fn cb)
{
    evutil_socket_t fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&p->addr, p->alen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        evutil_closesocket(fd);
        errno = e;
        return NULL;
    }
    ev_conn_t *c = cm_xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->pool = p;
    event_assign(&c->ev, base, fd, EV_READ | EV_PERSIST, cb, c);
    return c;
}

void ev_conn_put(ev_conn_t *c)
{
    ev_pool_t *p = c->pool;
    c->req = NULL;
    if (p->nidle >= IDLE_MAX || c->outlen > c->outoff) {
        ev_conn_close(c);
        return;
    }
    struct timeval keep = { IDLE_KEEP_S, 0 };
    ev_conn_watch(c, EV_READ, &keep);
    c->next = p->idle;
    p->idle = c;
    p->nidle++;
}

/* ---- pools ---- */

ev_pool_t *ev_pool_for(ev_pools_t *ps, const char *url, const char **path)
{
    for (size_t i = 0; i < ps->n; i++) {
        ev_pool_t *p = ps->v[i];
        if (strncmp(url, p->origin, p->olen) == 0 && url[p->olen] == '/') {
            *path = url + p->olen;
            return p;
        }
    }
    if (strncmp(url, "http://", 7) != 0 || strchr(url, '#'))
        return NULL;
    const char *auth = url + 7, *slash = strchr(auth, '/');
    if (!slash || slash == auth || memchr(auth, '?', (size_t)(slash - auth)) || memchr(auth, '@', (size_t)(slash - auth)))
        return NULL;
    /* host: "1.2.3.4", "1.2.3.4:80", "[::1]", "[::1]:80" */
    const char *host = auth, *hend, *portp = NULL;
    if (*host == '[') {
        host++;
        hend = memchr(host, ']', (size_t)(slash - host));
        if (!hend)
            return NULL;
        if (hend + 1 < slash) {
            if (hend[1] != ':')
                return NULL;
            portp = hend + 2;
        }
    } else {
        hend = memchr(host, ':', (size_t)(slash - host));
        if (hend)
            portp = hend + 1;
        else
            hend = slash;
    }
    char addr[64];
    size_t hl = (size_t)(hend - host);
    if (hl == 0 || hl >= sizeof(addr))
        return NULL;
    memcpy(addr, host, hl);
    addr[hl] = '\0';
    long port = 80;
    if (portp) {
        if (portp == slash || slash - portp > 5)
            return NULL;
        port = 0;
        for (const char *q = portp; q < slash; q++) {
            if (*q < '0' || *q > '9')
                return NULL;
            port = port * 10 + (*q - '0');
        }
        if (port == 0 || port > 65535)
            return NULL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t alen;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (evutil_inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)port);
        alen = sizeof(*s4);
    } else if (evutil_inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)port);
        alen = sizeof(*s6);
    } else {
        return NULL; /* a host name: libcurl resolves it */
    }
    ev_pool_t *p = cm_xcalloc(1, sizeof(*p));
    p->closer = ps->closer;
    p->olen = (size_t)(slash - url);
    p->origin = cm_xstrndup(url, p->olen);
    p->authority = cm_xstrndup(auth, (size_t)(slash - auth));
    p->host = cm_xstrdup(addr);
    p->port = (unsigned short)port;
    p->addr = ss;
    p->alen = alen;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = cm_xrealloc(ps->v, ps->cap * sizeof(*ps->v));
    }
    ps->v[ps->n++] = p;
    *path = slash;
    return p;
}

void ev_pools_free(ev_pools_t *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        pool_free(ps->v[i]);
    free(ps->v);
    ps->v = NULL;
    ps->n = ps->cap = 0;
}

ev_conn_t *ev_conn_take(ev_pool_t *p)
{
    ev_conn_t *c = p->idle;
    if (!c)
        return NULL;
    p->idle = c->next;
    p->nidle--;
    c->next = NULL;
    return c;
}

void ev_conn_drop_idle(ev_conn_t *c)
{
    pool_unlink(c->pool, c);
    ev_conn_close(c);
}
