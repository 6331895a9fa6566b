/* closer: see closer.h.
 *
 * A descriptor is closed at the second firing of a zero timeout after it was
 * handed over. The first firing may come in the very turn the descriptor
 * arrived (the timer was already due), before the loop has dispatched again;
 * it only moves the batch along and re-arms. A timer armed while callbacks
 * run fires only after the next dispatch, and that dispatch has applied
 * every change queued before it, the batch's EPOLL_CTL_DELs included. */
#include "closer.h"

#include "util.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct {
    evutil_socket_t *v;
    size_t n, cap;
} fds_t;

struct cm_closer {
    struct event *ev; /* zero timeout */
    fds_t arrived;    /* handed over since the last firing */
    fds_t ready;      /* a dispatch has run since they arrived: closed next firing */
};

static void close_all(fds_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        close(f->v[i]);
    f->n = 0;
}

static void arm(cm_closer_t *cl)
{
    struct timeval zero = { 0, 0 };
    if (!evtimer_pending(cl->ev, NULL))
        evtimer_add(cl->ev, &zero);
}

static void on_turn(evutil_socket_t fd, short what, void *arg)
{
    cm_closer_t *cl = arg;
    (void)fd;
    (void)what;
    close_all(&cl->ready);
    fds_t t = cl->ready; /* swap: the arrivals wait one more turn */
    cl->ready = cl->arrived;
    cl->arrived = t;
    if (cl->ready.n)
        arm(cl);
}

cm_closer_t *cm_closer_new(struct event_base *base)
{
    cm_closer_t *cl = cm_xcalloc(1, sizeof(*cl));
    cl->ev = evtimer_new(base, on_turn, cl);
    return cl;
}

void cm_closer_close(cm_closer_t *cl, evutil_socket_t fd)
{
    if (!cl) {
        close(fd);
        return;
    }
    fds_t *f = &cl->arrived;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->v = cm_xrealloc(f->v, f->cap * sizeof(*f->v));
    }
    f->v[f->n++] = fd;
    arm(cl);
}

void cm_closer_flush(cm_closer_t *cl)
{
    if (!cl)
        return;
    close_all(&cl->ready);
    close_all(&cl->arrived);
    event_del(cl->ev);
}

void cm_closer_free(cm_closer_t *cl)
{
    if (!cl)
        return;
    cm_closer_flush(cl);
    event_free(cl->ev);
    free(cl->arrived.v);
    free(cl->ready.v);
    free(cl);
}
