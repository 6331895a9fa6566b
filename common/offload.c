/* offload: see offload.h. One mutex guards the pool; the hand-back is one
 * event per job, created on the submitting loop's thread and activated by the
 * worker (or by cm_offload_stop) when the job's done may run. */
#include "offload.h"

#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <time.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct job {
    struct job *next_wait;       /* the queue of jobs waiting for a thread */
    struct job *prev, *next;     /* every job whose done has not run, in order */
    cm_offload_t *pool;
    struct event *ev;            /* of the submitter's loop: runs deliver() */
    cm_offload_work_fn work;
    cm_offload_done_fn done;
    void *arg;
    cm_offload_status_t status;  /* final once ev is activated */
    bool urgent;                 /* queued ahead of the others */
} job_t;


struct cm_offload {
    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t cv;           /* a job waits, or the pool stops */
    job_t *wait_head, *wait_tail;
    job_t *wait_urgent;          /* the last urgent job waiting, NULL: none */
    job_t *head, *tail;          /* undelivered jobs, oldest first */
    size_t active;               /* accepted jobs whose work has not finished */
    size_t limit;                /* threads + max_queued: the bound on active */
    bool stopping;
    void (*idle)(void);          /* cm_offload_set_idle; NULL: none */
    unsigned idle_ms;
    int nthreads;
    pthread_t *threads;
};

/* Takes j off the undelivered list. Caller holds p->mu. */
static void unlink_job(cm_offload_t *p, job_t *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        p->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        p->tail = j->prev;
    j->prev = j->next = NULL;
}

/* On the submitter's loop: the job's result (or its cancellation) is in. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_t *j = arg;
    cm_offload_t *p = j->pool;
    pthread_mutex_lock(&p->mu);
    unlink_job(p, j);
    cm_offload_status_t status = j->status;
    pthread_mutex_unlock(&p->mu);
    event_free(j->ev); /* a non-persistent event may be freed from its callback */
    j->done(j->arg, status);
    free(j);
}

/* Waits for a job or the stop. A thread that ran jobs since its last idle
 * call waits at most idle_ms, then makes it (outside the lock). */
static void wait_for_job(cm_offload_t *p, bool *ran)
{
    while (!p->wait_head && !p->stopping) {
        if (!*ran || !p->idle) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += p->idle_ms / 1000;
        ts.tv_nsec += (long)(p->idle_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT && !p->wait_head && !p->stopping) {
            void (*fn)(void) = p->idle;
            *ran = false;
            pthread_mutex_unlock(&p->mu);
            fn();
            pthread_mutex_lock(&p->mu);
        }
    }
}

static void *worker_main(void *arg)
{
    cm_offload_t *p = arg;
    bool ran = false;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        wait_for_job(p, &ran);
        job_t *j = p->wait_head;
        if (!j) /* stopping: cm_offload_stop took the queue away */
            break;
        p->wait_head = j->next_wait;
        if (!p->wait_head)
            p->wait_tail = NULL;
        if (p->wait_urgent == j)
            p->wait_urgent = NULL; /* urgent jobs are at the head: it was the only one */
        pthread_mutex_unlock(&p->mu);
        j->work(j->arg);
        ran = true;
        pthread_mutex_lock(&p->mu);
        p->active--;
        j->status = CM_OFFLOAD_DONE;
        pthread_mutex_unlock(&p->mu);
        /* the last touch of j: its loop may run deliver() and free it as soon
         * as this returns */
        event_active(j->ev, 0, 0);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void cm_offload_set_idle(cm_offload_t *pool, void (*fn)(void), unsigned idle_ms)
{
    pthread_mutex_lock(&pool->mu);
    pool->idle = fn;
    pool->idle_ms = idle_ms;
    pthread_mutex_unlock(&pool->mu);
}

cm_offload_t *cm_offload_new(int threads, size_t max_queued)
{
    if (threads < 1)
        threads = 1;
    cm_offload_t *p = cm_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->limit = max_queued > SIZE_MAX - (size_t)threads ? SIZE_MAX : (size_t)threads + max_queued;
    p->threads = cm_xcalloc((size_t)threads, sizeof(*p->threads));
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            cm_offload_free(p); /* joins the ones that started */
            return NULL;
        }
        pthread_setname_np(p->threads[i], "offload");
        p->nthreads++;
    }
    return p;
}

/* Puts j in the wait queue: at the tail, or an urgent one behind the urgent
 * ones already waiting. Caller holds p->mu. */
static void enqueue(cm_offload_t *p, job_t *j)
{
    if (j->urgent) {
        job_t *after = p->wait_urgent;
        j->next_wait = after ? after->next_wait : p->wait_head;
        if (after)
            after->next_wait = j;
        else
            p->wait_head = j;
        if (!j->next_wait)
            p->wait_tail = j;
        p->wait_urgent = j;
    } else {
        if (p->wait_tail)
            p->wait_tail->next_wait = j;
        else
            p->wait_head = j;
        p->wait_tail = j;
    }
    j->prev = p->tail; /* the undelivered list stays in submission order */
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
}

/* Takes the newest waiting non-urgent job out of the queue (NULL: none).
 * Caller holds p->mu. */
static job_t *displace(cm_offload_t *p)
{
    job_t *last = p->wait_tail;
    if (!last || last->urgent)
        return NULL; /* urgent jobs are in front: none waits behind them */
    job_t *prev = NULL;
    for (job_t *k = p->wait_head; k != last; k = k->next_wait)
        prev = k;
    if (prev)
        prev->next_wait = NULL;
    else
        p->wait_head = NULL;
    p->wait_tail = prev;
    last->status = CM_OFFLOAD_REFUSED;
    return last;
}

static int submit(cm_offload_t *p, struct event_base *base, cm_offload_work_fn work,
                  cm_offload_done_fn done, void *arg, bool urgent)
{
    job_t *j = cm_xcalloc(1, sizeof(*j));
    *j = (job_t){ .pool = p, .work = work, .done = done, .arg = arg, .urgent = urgent };
    j->ev = event_new(base, -1, 0, deliver, j);
    if (!j->ev) {
        free(j);
        return -ENOMEM;
    }
    int rc = 0;
    job_t *out = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        rc = -ESHUTDOWN;
    } else if (p->active >= p->limit && !(urgent && (out = displace(p)))) {
        rc = -EBUSY;
    } else {
        if (!out)
            p->active++; /* a displaced job leaves its count to j */
        enqueue(p, j);
    }
    pthread_mutex_unlock(&p->mu);
    if (out)
        event_active(out->ev, 0, 0); /* its loop answers it; deliver() frees it */
    if (rc != 0) {
        event_free(j->ev);
        free(j);
    }
    return rc;
}

int cm_offload_submit(cm_offload_t *p, struct event_base *base, cm_offload_work_fn work,
                      cm_offload_done_fn done, void *arg)
{
    return submit(p, base, work, done, arg, false);
}

int cm_offload_submit_urgent(cm_offload_t *p, struct event_base *base, cm_offload_work_fn work,
                             cm_offload_done_fn done, void *arg)
{
    return submit(p, base, work, done, arg, true);
}

void cm_offload_stop(cm_offload_t *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->stopping = true;
    job_t *cancelled = p->wait_head;
    p->wait_head = p->wait_tail = p->wait_urgent = NULL;
    for (job_t *j = cancelled; j; j = j->next_wait) {
        j->status = CM_OFFLOAD_CANCELLED;
        p->active--;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    while (cancelled) {
        job_t *next = cancelled->next_wait; /* before: deliver() may free it */
        event_active(cancelled->ev, 0, 0);
        cancelled = next;
    }
}

void cm_offload_free(cm_offload_t *p)
{
    if (!p)
        return;
    cm_offload_stop(p);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* no worker is left; the loops no longer dispatch: what is still
     * undelivered (activated or not) is finished here */
    pthread_mutex_lock(&p->mu);
    job_t *j = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (j) {
        job_t *next = j->next;
        event_free(j->ev); /* also takes it off its base's active queue */
        j->done(j->arg, j->status);
        free(j);
        j = next;
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
