#include "core/admission.h"

#include "util.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

typedef struct queue queue_t;

struct rt_waiter {
    rt_admission_t *adm;
    queue_t *q;
    TAILQ_ENTRY(rt_waiter) link; /* q->waiters */
    void *ctx;
    rt_adm_done_fn done;
    struct event *ev;
    rt_adm_status_t state; /* QUEUED, then GOT or GONE when served */
};

struct queue {
    char *model;
    TAILQ_HEAD(, rt_waiter) waiters; /* oldest first */
    LIST_ENTRY(queue) link;          /* rt_admission_t.queues */
};

struct rt_admission {
    pthread_mutex_t mu;
    size_t max, count;
    LIST_HEAD(, queue) queues; /* one per model someone waits for */
    rt_adm_try_fn try_fn;
    void *ud;
};

rt_admission_t *rt_admission_new(size_t max_waiters, rt_adm_try_fn try_fn, void *ud)
{
    rt_admission_t *adm = cm_xcalloc(1, sizeof(*adm));
    pthread_mutex_init(&adm->mu, NULL);
    adm->max = max_waiters;
    adm->try_fn = try_fn;
    adm->ud = ud;
    return adm;
}

void rt_admission_free(rt_admission_t *adm)
{
    if (!adm)
        return;
    queue_t *q;
    while ((q = LIST_FIRST(&adm->queues))) {
        LIST_REMOVE(q, link);
        free(q->model);
        free(q);
    }
    pthread_mutex_destroy(&adm->mu);
    free(adm);
}

/* ---- with the lock held ---- */

static queue_t *find_queue(rt_admission_t *adm, const char *model)
{
    queue_t *q;
    LIST_FOREACH(q, &adm->queues, link)
        if (strcmp(q->model, model) == 0)
            return q;
    return NULL;
}

static void unlink_waiter(rt_admission_t *adm, rt_waiter_t *w)
{
    queue_t *q = w->q;
    TAILQ_REMOVE(&q->waiters, w, link);
    w->q = NULL;
    adm->count--;
    if (TAILQ_EMPTY(&q->waiters)) {
        LIST_REMOVE(q, link);
        free(q->model);
        free(q);
    }
}

/* ---- the waiter's loop ---- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    rt_waiter_t *w = arg;
    rt_admission_t *adm = w->adm;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&adm->mu);
    rt_adm_status_t st = w->state;
    if (st == RT_ADM_QUEUED) { /* the deadline, not a kick */
        unlink_waiter(adm, w);
        st = RT_ADM_TIMEOUT;
    }
    pthread_mutex_unlock(&adm->mu);
    void *ctx = w->ctx;
    rt_adm_done_fn done = w->done;
    event_free(w->ev);
    free(w);
    done(ctx, st);
}

rt_adm_status_t rt_admission_enter(rt_admission_t *adm, const char *model, struct event_base *base,
                                   unsigned timeout_ms, void *ctx, rt_adm_done_fn done,
                                   rt_waiter_t **out)
{
    rt_adm_status_t st;
    *out = NULL;
    pthread_mutex_lock(&adm->mu);
    queue_t *q = find_queue(adm, model);
    if (!q) { /* nobody waits for it: try at once */
        st = adm->try_fn(ctx, adm->ud);
        if (st != RT_ADM_BUSY)
            goto out;
    }
    if (adm->count >= adm->max) {
        st = RT_ADM_FULL;
        goto out;
    }
    if (!q) {
        q = cm_xcalloc(1, sizeof(*q));
        q->model = cm_xstrdup(model);
        TAILQ_INIT(&q->waiters);
        LIST_INSERT_HEAD(&adm->queues, q, link);
    }
    rt_waiter_t *w = cm_xcalloc(1, sizeof(*w));
    w->adm = adm;
    w->q = q;
    w->ctx = ctx;
    w->done = done;
    w->state = RT_ADM_QUEUED;
    TAILQ_INSERT_TAIL(&q->waiters, w, link);
    adm->count++;
    w->ev = event_new(base, -1, 0, on_wake, w);
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    event_add(w->ev, &tv);
    *out = w;
    st = RT_ADM_QUEUED;
out:
    pthread_mutex_unlock(&adm->mu);
    return st;
}

bool rt_admission_cancel(rt_admission_t *adm, rt_waiter_t *w)
{
    pthread_mutex_lock(&adm->mu);
    bool granted = w->state == RT_ADM_GOT;
    if (w->state == RT_ADM_QUEUED)
        unlink_waiter(adm, w);
    pthread_mutex_unlock(&adm->mu);
    event_free(w->ev); /* also withdraws a wake-up already made active */
    free(w);
    return granted;
}

void rt_admission_kick(rt_admission_t *adm)
{
    pthread_mutex_lock(&adm->mu);
    queue_t *q, *next;
    for (q = LIST_FIRST(&adm->queues); q; q = next) {
        next = LIST_NEXT(q, link); /* q is freed when its last waiter leaves */
        bool last = false;
        while (!last) {
            rt_waiter_t *w = TAILQ_FIRST(&q->waiters);
            rt_adm_status_t st = adm->try_fn(w->ctx, adm->ud);
            if (st == RT_ADM_BUSY)
                break;
            last = TAILQ_NEXT(w, link) == NULL;
            unlink_waiter(adm, w);
            w->state = st;
            event_active(w->ev, EV_TIMEOUT, 0);
        }
    }
    pthread_mutex_unlock(&adm->mu);
}

size_t rt_admission_waiting(rt_admission_t *adm)
{
    pthread_mutex_lock(&adm->mu);
    size_t n = adm->count;
    pthread_mutex_unlock(&adm->mu);
    return n;
}
