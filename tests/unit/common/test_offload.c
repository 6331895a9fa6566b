/* Tests common/offload.c: work runs off the loop and done on it, the bound
 * answers -EBUSY, stopping cancels what waits, freeing delivers what is left,
 * and many jobs from several loops at once (run it under TSan too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "offload.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A gate that work functions wait at until the test opens it. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int waiting; /* work functions at the gate */
} gate_t;

static void gate_init(gate_t *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    g->waiting = 0;
}

static void gate_destroy(gate_t *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void gate_pass(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    pthread_mutex_unlock(&g->mu);
}

/* Waits until n work functions are at the gate. */
static void gate_wait_for(gate_t *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->waiting < n)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* What one loop expects and what it saw. */
typedef struct {
    struct event_base *base;
    pthread_t loop_thread;
    int want;            /* dones after which the loop stops */
    int done, cancelled; /* loop thread only */
    int wrong_thread;    /* a done or a work on the wrong thread */
    gate_t *gate;        /* NULL: work does not wait */
    atomic_int worked;
} loop_t;

typedef struct {
    loop_t *l;
    int seq;
    cm_offload_status_t status;
    bool delivered;
    int ran_at; /* order in which work ran (one thread: a sequence) */
} job_t;

static atomic_int g_order;

static void work(void *arg)
{
    job_t *j = arg;
    if (pthread_equal(pthread_self(), j->l->loop_thread))
        j->l->wrong_thread++; /* not on the loop; (racy only when it fails) */
    if (j->l->gate)
        gate_pass(j->l->gate);
    j->ran_at = atomic_fetch_add(&g_order, 1);
    atomic_fetch_add(&j->l->worked, 1);
}

static void done(void *arg, cm_offload_status_t status)
{
    job_t *j = arg;
    loop_t *l = j->l;
    if (!pthread_equal(pthread_self(), l->loop_thread))
        l->wrong_thread++;
    assert_false(j->delivered); /* exactly once */
    j->delivered = true;
    j->status = status;
    if (status == CM_OFFLOAD_DONE)
        l->done++;
    else
        l->cancelled++;
    if (l->done + l->cancelled == l->want)
        event_base_loopbreak(l->base);
}

static void loop_init(loop_t *l, int want)
{
    memset(l, 0, sizeof(*l));
    l->base = event_base_new();
    assert_non_null(l->base);
    l->loop_thread = pthread_self();
    l->want = want;
}

static void loop_run(loop_t *l)
{
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
}

static void results_arrive_on_the_loop_thread(void **state)
{
    (void)state;
    loop_t l;
    loop_init(&l, 16);
    cm_offload_t *p = cm_offload_new(3, 16);
    assert_non_null(p);
    job_t jobs[16] = { 0 };
    for (int i = 0; i < 16; i++) {
        jobs[i] = (job_t){ .l = &l, .seq = i };
        assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[i]), 0);
    }
    loop_run(&l);
    assert_int_equal(l.done, 16);
    assert_int_equal(l.cancelled, 0);
    assert_int_equal(l.wrong_thread, 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(jobs[i].status, CM_OFFLOAD_DONE);
    cm_offload_free(p);
    event_base_free(l.base);
}

static void the_bound_answers_busy(void **state)
{
    (void)state;
    gate_t g;
    gate_init(&g);
    loop_t l;
    loop_init(&l, 3);
    l.gate = &g;
    cm_offload_t *p = cm_offload_new(1, 2); /* one running + two waiting */
    job_t jobs[5] = { 0 };
    for (int i = 0; i < 5; i++)
        jobs[i] = (job_t){ .l = &l, .seq = i };
    for (int i = 0; i < 3; i++)
        assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[i]), 0);
    gate_wait_for(&g, 1);
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[3]), -EBUSY);
    assert_false(jobs[3].delivered); /* refused: done is never called */
    gate_open(&g);
    loop_run(&l);
    assert_int_equal(l.done, 3);
    /* finished work frees its place, also before the next one is delivered */
    l.want = 4;
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[4]), 0);
    loop_run(&l);
    assert_int_equal(l.done, 4);
    assert_false(jobs[3].delivered);
    assert_int_equal(l.wrong_thread, 0);
    cm_offload_free(p);
    event_base_free(l.base);
    gate_destroy(&g);
}

/* Urgent jobs (logins from addresses without failures) go ahead of the
 * waiting ones, and when the bound is reached take the place of the newest
 * non-urgent one, which is answered CM_OFFLOAD_REFUSED (finding 9: rotating
 * addresses filled the queue and starved real logins). */
static void urgent_jobs_go_first_and_displace(void **state)
{
    (void)state;
    gate_t g;
    gate_init(&g);
    loop_t l;
    loop_init(&l, 5);
    l.gate = &g;
    cm_offload_t *p = cm_offload_new(1, 3); /* one running + three waiting */
    job_t jobs[6] = { 0 };
    for (int i = 0; i < 6; i++)
        jobs[i] = (job_t){ .l = &l, .seq = i, .ran_at = -1 };
    atomic_store(&g_order, 0);
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[0]), 0);
    gate_wait_for(&g, 1); /* jobs[0] runs and holds the thread */
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[1]), 0);
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[2]), 0);
    assert_int_equal(cm_offload_submit_urgent(p, l.base, work, done, &jobs[3]), 0);
    /* full: an urgent job takes jobs[2]'s place; a plain one is refused */
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[5]), -EBUSY);
    assert_int_equal(cm_offload_submit_urgent(p, l.base, work, done, &jobs[4]), 0);
    gate_open(&g);
    loop_run(&l);
    assert_int_equal(l.done, 4);
    assert_int_equal(l.cancelled, 1);
    assert_int_equal(jobs[2].status, CM_OFFLOAD_REFUSED);
    assert_int_equal(jobs[2].ran_at, -1);
    assert_int_equal(jobs[0].ran_at, 0);
    assert_int_equal(jobs[3].ran_at, 1); /* urgent, in their order */
    assert_int_equal(jobs[4].ran_at, 2);
    assert_int_equal(jobs[1].ran_at, 3);
    assert_false(jobs[5].delivered);
    /* only urgent jobs waiting: nothing to displace */
    cm_offload_free(p);
    event_base_free(l.base);
    gate_destroy(&g);
}

static void zero_queue_allows_only_the_threads(void **state)
{
    (void)state;
    gate_t g;
    gate_init(&g);
    loop_t l;
    loop_init(&l, 2);
    l.gate = &g;
    cm_offload_t *p = cm_offload_new(2, 0);
    job_t jobs[3] = { 0 };
    for (int i = 0; i < 3; i++)
        jobs[i] = (job_t){ .l = &l, .seq = i };
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[0]), 0);
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[1]), 0);
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[2]), -EBUSY);
    gate_open(&g);
    loop_run(&l);
    assert_int_equal(l.done, 2);
    cm_offload_free(p);
    event_base_free(l.base);
    gate_destroy(&g);
}

static void stop_cancels_the_queued_jobs(void **state)
{
    (void)state;
    gate_t g;
    gate_init(&g);
    loop_t l;
    loop_init(&l, 5);
    l.gate = &g;
    cm_offload_t *p = cm_offload_new(1, 8);
    job_t jobs[6] = { 0 };
    for (int i = 0; i < 6; i++)
        jobs[i] = (job_t){ .l = &l, .seq = i };
    for (int i = 0; i < 5; i++)
        assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[i]), 0);
    gate_wait_for(&g, 1); /* job 0 runs, 1-4 wait */
    cm_offload_stop(p);
    cm_offload_stop(p); /* again: nothing more */
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[5]), -ESHUTDOWN);
    gate_open(&g);
    loop_run(&l);
    assert_int_equal(l.done, 1);
    assert_int_equal(l.cancelled, 4);
    assert_int_equal(jobs[0].status, CM_OFFLOAD_DONE);
    for (int i = 1; i < 5; i++)
        assert_int_equal(jobs[i].status, CM_OFFLOAD_CANCELLED);
    assert_false(jobs[5].delivered);
    assert_int_equal(atomic_load(&l.worked), 1); /* cancelled work never ran */
    assert_int_equal(l.wrong_thread, 0);
    cm_offload_free(p);
    event_base_free(l.base);
    gate_destroy(&g);
}

static void *open_later(void *arg)
{
    struct timespec ts = { 0, 100 * 1000000L };
    nanosleep(&ts, NULL);
    gate_open(arg);
    return NULL;
}

/* The loop no longer runs: free waits for the running job, cancels those
 * still waiting, and delivers everything on its own thread (the test's
 * thread is also the loop's, so the thread check holds either way). */
static void free_finishes_what_the_loop_did_not(void **state)
{
    (void)state;
    gate_t g;
    gate_init(&g);
    loop_t l;
    loop_init(&l, -1);
    l.gate = &g;
    cm_offload_t *p = cm_offload_new(1, 8);
    job_t jobs[4] = { 0 };
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job_t){ .l = &l, .seq = i };
        assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[i]), 0);
    }
    gate_wait_for(&g, 1);
    pthread_t opener;
    pthread_create(&opener, NULL, open_later, &g);
    cm_offload_free(p); /* blocks until the opener lets job 0 finish */
    pthread_join(opener, NULL);
    assert_int_equal(l.done + l.cancelled, 4);
    assert_int_equal(jobs[0].status, CM_OFFLOAD_DONE);
    for (int i = 0; i < 4; i++)
        assert_true(jobs[i].delivered);
    /* the opener waits 100 ms: free has stopped the pool by then */
    assert_int_equal(l.cancelled, 3);
    assert_int_equal(l.wrong_thread, 0);
    event_base_free(l.base);
    gate_destroy(&g);
}

static void free_delivers_finished_results(void **state)
{
    (void)state;
    loop_t l;
    loop_init(&l, -1);
    cm_offload_t *p = cm_offload_new(2, 8);
    job_t jobs[6] = { 0 };
    for (int i = 0; i < 6; i++) {
        jobs[i] = (job_t){ .l = &l, .seq = i };
        assert_int_equal(cm_offload_submit(p, l.base, work, done, &jobs[i]), 0);
    }
    while (atomic_load(&l.worked) < 6) { /* the loop is never run */
        struct timespec ts = { 0, 1000000L };
        nanosleep(&ts, NULL);
    }
    cm_offload_free(p);
    assert_int_equal(l.done, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(jobs[i].status, CM_OFFLOAD_DONE);
    event_base_free(l.base); /* no event of the pool is left in it */
}

#define LOOPS 3
#define PER_LOOP 3000

typedef struct {
    loop_t l;
    cm_offload_t *pool;
    job_t *jobs;
    int busy; /* refusals, retried */
} submitter_t;

/* One loop thread submitting PER_LOOP jobs, in bursts of what the bound lets
 * in, and running its loop until every one is delivered. */
static void *submitter_main(void *arg)
{
    submitter_t *s = arg;
    s->l.loop_thread = pthread_self();
    int next = 0;
    while (s->l.done < PER_LOOP) {
        while (next < PER_LOOP) {
            int rc = cm_offload_submit(s->pool, s->l.base, work, done, &s->jobs[next]);
            if (rc == -EBUSY) {
                s->busy++;
                break;
            }
            if (rc != 0)
                return NULL;
            next++;
        }
        s->l.want = next; /* stop once everything submitted so far is back */
        if (s->l.done < next)
            loop_run(&s->l);
    }
    return NULL;
}

static void many_jobs_from_many_loops(void **state)
{
    (void)state;
    cm_offload_t *p = cm_offload_new(4, 64);
    submitter_t s[LOOPS];
    pthread_t th[LOOPS];
    for (int i = 0; i < LOOPS; i++) {
        loop_init(&s[i].l, 0);
        s[i].pool = p;
        s[i].busy = 0;
        s[i].jobs = cm_xcalloc(PER_LOOP, sizeof(job_t));
        for (int k = 0; k < PER_LOOP; k++)
            s[i].jobs[k] = (job_t){ .l = &s[i].l, .seq = k };
    }
    for (int i = 0; i < LOOPS; i++)
        pthread_create(&th[i], NULL, submitter_main, &s[i]);
    for (int i = 0; i < LOOPS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < LOOPS; i++) {
        assert_int_equal(s[i].l.done, PER_LOOP);
        assert_int_equal(s[i].l.cancelled, 0);
        assert_int_equal(s[i].l.wrong_thread, 0);
        for (int k = 0; k < PER_LOOP; k++)
            assert_true(s[i].jobs[k].delivered);
    }
    cm_offload_free(p);
    for (int i = 0; i < LOOPS; i++) {
        event_base_free(s[i].l.base);
        free(s[i].jobs);
    }
}

static void threads_below_one_are_one(void **state)
{
    (void)state;
    loop_t l;
    loop_init(&l, 1);
    cm_offload_t *p = cm_offload_new(0, 0);
    assert_non_null(p);
    job_t j = { .l = &l };
    assert_int_equal(cm_offload_submit(p, l.base, work, done, &j), 0);
    loop_run(&l);
    assert_int_equal(l.done, 1);
    cm_offload_free(p);
    cm_offload_free(NULL);
    event_base_free(l.base);
}

/* The idle hook runs once per pause of a thread that ran jobs, on that
 * thread, and never for a thread that ran none. */
static atomic_int idle_calls;
static pthread_t idle_thread;
static void on_idle(void)
{
    idle_thread = pthread_self();
    atomic_fetch_add(&idle_calls, 1);
}

static pthread_t worked_on;
static void record_work(void *arg)
{
    (void)arg;
    worked_on = pthread_self();
}

static void stop_loop(void *arg, cm_offload_status_t st)
{
    (void)st;
    event_base_loopbreak(arg);
}

static void idle_hook_runs_once_per_pause(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    cm_offload_t *p = cm_offload_new(1, 4);
    cm_offload_set_idle(p, on_idle, 50);
    atomic_store(&idle_calls, 0);
    usleep(200 * 1000); /* no job yet: no call */
    assert_int_equal(atomic_load(&idle_calls), 0);
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(cm_offload_submit(p, base, record_work, stop_loop, base), 0);
        event_base_dispatch(base);
        for (int i = 0; i < 200 && atomic_load(&idle_calls) < round; i++)
            usleep(10 * 1000);
        assert_int_equal(atomic_load(&idle_calls), round);
        assert_true(pthread_equal(idle_thread, worked_on));
        usleep(200 * 1000); /* idle on: not called again without a job */
        assert_int_equal(atomic_load(&idle_calls), round);
    }
    cm_offload_free(p);
    event_base_free(base);
}

int main(void)
{
    cm_util_init();
    evthread_use_pthreads(); /* event_active from the pool's threads */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(results_arrive_on_the_loop_thread),
        cmocka_unit_test(the_bound_answers_busy),
        cmocka_unit_test(urgent_jobs_go_first_and_displace),
        cmocka_unit_test(zero_queue_allows_only_the_threads),
        cmocka_unit_test(stop_cancels_the_queued_jobs),
        cmocka_unit_test(free_finishes_what_the_loop_did_not),
        cmocka_unit_test(free_delivers_finished_results),
        cmocka_unit_test(many_jobs_from_many_loops),
        cmocka_unit_test(threads_below_one_are_one),
        cmocka_unit_test(idle_hook_runs_once_per_pause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
