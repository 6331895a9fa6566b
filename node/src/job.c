#include "job.h"

#include "util.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nd_notify {
    pthread_mutex_t mu;
    nd_job_t *head, *tail;
    struct event *ev;
    nd_notify_fn fn;
    void *ud;
};

nd_job_t *nd_job_new(nd_job_kind_t kind, nd_notify_t *notify)
{
    nd_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->kind = kind;
    j->notify = notify;
    j->refs = 1;
    atomic_init(&j->cancelled, false);
    atomic_init(&j->held, false);
    pthread_mutex_init(&j->mu, NULL);
    return j;
}

nd_job_t *nd_job_ref(nd_job_t *j)
{
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    return j;
}

static void free_strv(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void nd_job_unref(nd_job_t *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    free(j->model_id);
    free(j->model_path);
    free(j->prompt);
    free_strv(j->roles, j->nmsg);
    free_strv(j->contents, j->nmsg);
    free_strv(j->inputs, j->ninputs);
    nd_sampling_free(&j->sp);
    for (size_t i = 0; i < j->npieces; i++)
        free(j->pieces[i]);
    free(j->pieces);
    free(j->embd);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void nd_job_emit(nd_job_t *j, const char *text, size_t len)
{
    if (len == 0)
        return;
    pthread_mutex_lock(&j->mu);
    if (j->npieces + 1 >= j->cappieces) {
        j->cappieces = j->cappieces ? j->cappieces * 2 : 16;
        j->pieces = cm_xrealloc(j->pieces, j->cappieces * sizeof(char *));
    }
    j->pieces[j->npieces++] = cm_xstrndup(text, len);
    pthread_mutex_unlock(&j->mu);
    nd_notify_push(j->notify, j);
}

void nd_job_first_token(nd_job_t *j)
{
    pthread_mutex_lock(&j->mu);
    if (!j->t_first_us)
        j->t_first_us = cm_now_us();
    pthread_mutex_unlock(&j->mu);
}

void nd_job_finish(nd_job_t *j, nd_finish_t finish, int n_prompt, int n_gen)
{
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->finish = finish;
    j->n_prompt = n_prompt;
    j->n_gen = n_gen;
    pthread_mutex_unlock(&j->mu);
    nd_notify_push(j->notify, j);
}

void nd_job_fail(nd_job_t *j, int status, const char *code, const char *fmt, ...)
{
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->status = status;
    snprintf(j->errcode, sizeof(j->errcode), "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->errmsg, sizeof(j->errmsg), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&j->mu);
    nd_notify_push(j->notify, j);
}

void nd_job_embeddings(nd_job_t *j, float *embd, int n_embd, int n_prompt)
{
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->embd = embd;
    j->n_embd = n_embd;
    j->n_prompt = n_prompt;
    pthread_mutex_unlock(&j->mu);
    nd_notify_push(j->notify, j);
}

char **nd_job_take(nd_job_t *j, size_t *n)
{
    pthread_mutex_lock(&j->mu);
    char **r = NULL;
    *n = j->npieces;
    if (j->npieces) {
        r = j->pieces;
        r[j->npieces] = NULL;
        j->pieces = NULL;
        j->npieces = j->cappieces = 0;
    }
    pthread_mutex_unlock(&j->mu);
    return r;
}

/* ---- queue ---- */

void nd_jobq_push(nd_jobq_t *q, nd_job_t *j)
{
    j->engine_next = NULL;
    if (q->tail)
        q->tail->engine_next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

nd_job_t *nd_jobq_pop(nd_jobq_t *q)
{
    nd_job_t *j = q->head;
    if (j) {
        q->head = j->engine_next;
        if (!q->head)
            q->tail = NULL;
        j->engine_next = NULL;
        q->n--;
    }
    return j;
}

void nd_jobq_fail_all(nd_jobq_t *q, int status, const char *code, const char *msg)
{
    nd_job_t *j;
    while ((j = nd_jobq_pop(q))) {
        nd_job_fail(j, status, code, "%s", msg);
        nd_job_unref(j);
    }
}

/* ---- notifier ---- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    nd_notify_t *n = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&n->mu);
    nd_job_t *j = n->head;
    n->head = n->tail = NULL;
    pthread_mutex_unlock(&n->mu);
    while (j) {
        /* Each job leaves the batch under the lock, just before its turn: a
         * push from an engine thread relinks notify_next once notify_queued
         * is false, so clearing it for the whole batch up front let a push
         * cut the rest of the batch off (lost news, a leaked reference) or
         * splice the new list in (a job handled and unreferenced twice). */
        pthread_mutex_lock(&n->mu);
        nd_job_t *next = j->notify_next;
        j->notify_next = NULL;
        j->notify_queued = false;
        pthread_mutex_unlock(&n->mu);
        n->fn(j, n->ud);
        nd_job_unref(j);
        j = next;
    }
}

nd_notify_t *nd_notify_new(struct event_base *base, nd_notify_fn fn, void *ud)
{
    nd_notify_t *n = cm_xcalloc(1, sizeof(*n));
    pthread_mutex_init(&n->mu, NULL);
    n->ev = event_new(base, -1, 0, on_wake, n);
    n->fn = fn;
    n->ud = ud;
    return n;
}

void nd_notify_free(nd_notify_t *n)
{
    if (!n)
        return;
    event_free(n->ev);
    nd_job_t *j = n->head;
    while (j) {
        nd_job_t *next = j->notify_next;
        nd_job_unref(j);
        j = next;
    }
    pthread_mutex_destroy(&n->mu);
    free(n);
}

void nd_notify_push(nd_notify_t *n, nd_job_t *job)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    bool was_empty = n->head == NULL;
    if (!job->notify_queued) {
        job->notify_queued = true;
        job->notify_next = NULL;
        nd_job_ref(job);
        if (n->tail)
            n->tail->notify_next = job;
        else
            n->head = job;
        n->tail = job;
    }
    pthread_mutex_unlock(&n->mu);
    if (was_empty)
        event_active(n->ev, 0, 0);
}
