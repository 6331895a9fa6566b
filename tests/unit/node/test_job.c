/* node/src/job.c: the job queue, results, and the cross-thread notifier. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "job.h"
#include "util.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_queue(void **state)
{
    (void)state;
    nd_jobq_t q = { 0 };
    nd_job_t *a = nd_job_new(ND_JOB_CHAT, NULL), *b = nd_job_new(ND_JOB_CHAT, NULL);
    nd_jobq_push(&q, nd_job_ref(a));
    nd_jobq_push(&q, nd_job_ref(b));
    assert_int_equal(q.n, 2);
    assert_ptr_equal(nd_jobq_pop(&q), a);
    nd_job_unref(a);
    nd_jobq_fail_all(&q, 503, "shutting_down", "bye");
    assert_int_equal(q.n, 0);
    assert_null(nd_jobq_pop(&q));
    assert_true(b->done);
    assert_int_equal(b->status, 503);
    assert_string_equal(b->errcode, "shutting_down");
    assert_string_equal(b->errmsg, "bye");
    nd_job_unref(a);
    nd_job_unref(b);
}

typedef struct {
    struct event_base *base;
    int calls;
    size_t pieces;
    bool done;
} seen_t;

static void on_job(nd_job_t *j, void *ud)
{
    seen_t *s = ud;
    s->calls++;
    /* done first, then the pieces: everything emitted before the finish is
     * there to take (reading done after taking could miss the last ones) */
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    size_t n;
    char **p = nd_job_take(j, &n);
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
    s->pieces += n;
    s->done = done;
    if (s->done)
        event_base_loopbreak(s->base);
}

static void *producer(void *arg)
{
    nd_job_t *j = arg;
    for (int i = 0; i < 1000; i++)
        nd_job_emit(j, "tok", 3);
    nd_job_finish(j, ND_FINISH_LENGTH, 5, 1000);
    nd_job_unref(j);
    return NULL;
}

static void test_notify_across_threads(void **state)
{
    (void)state;
    evthread_use_pthreads();
    seen_t s = { .base = event_base_new() };
    nd_notify_t *n = nd_notify_new(s.base, on_job, &s);
    nd_job_t *j = nd_job_new(ND_JOB_COMPLETION, n);
    pthread_t t;
    pthread_create(&t, NULL, producer, nd_job_ref(j));
    struct timeval limit = { 10, 0 };
    event_base_loopexit(s.base, &limit); /* bounded wait */
    event_base_dispatch(s.base);
    pthread_join(t, NULL);
    assert_true(s.done);
    assert_int_equal(s.pieces, 1000); /* every piece, coalesced into fewer calls */
    assert_true(s.calls >= 1 && s.calls <= 1001);
    assert_int_equal(j->finish, ND_FINISH_LENGTH);
    assert_int_equal(j->n_gen, 1000);
    nd_job_unref(j);
    nd_notify_free(n);
    event_base_free(s.base);
}

/* Several jobs pushed in changing orders while the loop is busy with the
 * previous batch: a push must not relink the batch being walked (that lost
 * a job's news and leaked its reference, or handled a job twice and freed it
 * under its owner). */
#define RACE_JOBS 4
#define RACE_ROUNDS 400

typedef struct {
    struct event_base *base;
    nd_job_t *jobs[RACE_JOBS];
    size_t pieces[RACE_JOBS];
    bool done[RACE_JOBS];
    int ndone;
} race_t;

static void on_race_job(nd_job_t *j, void *ud)
{
    race_t *s = ud;
    int i = j->index;
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    size_t n;
    char **p = nd_job_take(j, &n);
    for (size_t k = 0; k < n; k++)
        free(p[k]);
    free(p);
    s->pieces[i] += n;
    usleep(20); /* a busy loop thread: the producer pushes meanwhile */
    if (done && !s->done[i]) {
        s->done[i] = true;
        if (++s->ndone == RACE_JOBS)
            event_base_loopbreak(s->base);
    }
}

static void *race_producer(void *arg)
{
    race_t *s = arg;
    for (int r = 0; r < RACE_ROUNDS; r++) {
        for (int k = 0; k < RACE_JOBS; k++) {
            /* forwards, backwards and rotated: the batch order changes */
            int i = r % 3 == 0 ? k : r % 3 == 1 ? RACE_JOBS - 1 - k : (k + r) % RACE_JOBS;
            nd_job_emit(s->jobs[i], "t", 1);
        }
        if (r % 16 == 0)
            usleep(50);
    }
    for (int i = RACE_JOBS - 1; i >= 0; i--)
        nd_job_finish(s->jobs[i], ND_FINISH_LENGTH, 1, RACE_ROUNDS);
    return NULL;
}

static void test_notify_batch_not_relinked(void **state)
{
    (void)state;
    evthread_use_pthreads();
    race_t s = { .base = event_base_new() };
    nd_notify_t *n = nd_notify_new(s.base, on_race_job, &s);
    for (int i = 0; i < RACE_JOBS; i++) {
        s.jobs[i] = nd_job_new(ND_JOB_COMPLETION, n);
        s.jobs[i]->index = i;
    }
    pthread_t t;
    pthread_create(&t, NULL, race_producer, &s);
    struct timeval limit = { 20, 0 };
    event_base_loopexit(s.base, &limit); /* bounded wait */
    event_base_dispatch(s.base);
    pthread_join(t, NULL);
    event_base_loop(s.base, EVLOOP_NONBLOCK); /* news queued after the last done */
    assert_int_equal(s.ndone, RACE_JOBS);
    for (int i = 0; i < RACE_JOBS; i++) {
        assert_int_equal(s.pieces[i], RACE_ROUNDS);
        pthread_mutex_lock(&s.jobs[i]->mu);
        int refs = s.jobs[i]->refs;
        pthread_mutex_unlock(&s.jobs[i]->mu);
        assert_int_equal(refs, 1); /* the notifier holds none once all is handled */
        nd_job_unref(s.jobs[i]);
    }
    nd_notify_free(n);
    event_base_free(s.base);
}

int main(void)
{
    cm_util_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue), cmocka_unit_test(test_notify_across_threads),
        cmocka_unit_test(test_notify_batch_not_relinked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
