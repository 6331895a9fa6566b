/* admission: FIFO order, bound, timeouts, cancellation, on a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/admission.h"

#include <event2/event.h>
#include <string.h>

typedef struct {
    int free_slots;
    int gone;
} pool_t;

typedef struct {
    int id;
    rt_adm_status_t got;
    int order;
} job_t;

static int finished;

static rt_adm_status_t try_fn(void *ctx, void *ud)
{
    pool_t *p = ud;
    (void)ctx;
    if (p->gone)
        return RT_ADM_GONE;
    if (p->free_slots > 0) {
        p->free_slots--;
        return RT_ADM_GOT;
    }
    return RT_ADM_BUSY;
}

static void done_fn(void *ctx, rt_adm_status_t st)
{
    job_t *j = ctx;
    j->got = st;
    j->order = ++finished;
}

static void spin(struct event_base *b)
{
    event_base_loop(b, EVLOOP_NONBLOCK);
    event_base_loop(b, EVLOOP_NONBLOCK);
}

static void test_fifo_and_bound(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    pool_t p = { .free_slots = 1 };
    rt_admission_t *adm = rt_admission_new(3, try_fn, &p);
    job_t j[5] = { { 0 } };
    rt_waiter_t *w;
    finished = 0;
    assert_int_equal(rt_admission_enter(adm, "m", b, 10000, &j[0], done_fn, &w), RT_ADM_GOT);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(rt_admission_enter(adm, "m", b, 10000, &j[i], done_fn, &w), RT_ADM_QUEUED);
    assert_int_equal(rt_admission_enter(adm, "m", b, 10000, &j[4], done_fn, &w), RT_ADM_FULL);
    assert_int_equal(rt_admission_waiting(adm), 3);
    /* a free slot goes to the oldest waiter, even if a newcomer arrives */
    p.free_slots = 1;
    assert_int_equal(rt_admission_enter(adm, "m", b, 10000, &j[4], done_fn, &w), RT_ADM_FULL);
    rt_admission_kick(adm);
    spin(b);
    assert_int_equal(j[1].got, RT_ADM_GOT);
    assert_int_equal(j[1].order, 1);
    p.free_slots = 2;
    rt_admission_kick(adm);
    spin(b);
    assert_int_equal(j[2].order, 2);
    assert_int_equal(j[3].order, 3);
    assert_int_equal(rt_admission_waiting(adm), 0);
    rt_admission_free(adm);
    event_base_free(b);
}

static void test_timeout_and_cancel(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    pool_t p = { 0 };
    rt_admission_t *adm = rt_admission_new(1024, try_fn, &p);
    job_t j[3] = { { 0 } };
    rt_waiter_t *w0, *w1, *w2;
    finished = 0;
    assert_int_equal(rt_admission_enter(adm, "m", b, 50, &j[0], done_fn, &w0), RT_ADM_QUEUED);
    assert_int_equal(rt_admission_enter(adm, "m", b, 10000, &j[1], done_fn, &w1), RT_ADM_QUEUED);
    assert_int_equal(rt_admission_enter(adm, "m", b, 10000, &j[2], done_fn, &w2), RT_ADM_QUEUED);
    /* leaving the queue */
    assert_false(rt_admission_cancel(adm, w1));
    assert_int_equal(rt_admission_waiting(adm), 2);
    struct timeval tv = { 0, 120000 };
    event_base_loopexit(b, &tv);
    event_base_dispatch(b);
    assert_int_equal(j[0].got, RT_ADM_TIMEOUT);
    assert_int_equal(rt_admission_waiting(adm), 1);
    /* granted, then cancelled before its loop ran: the slot is handed back */
    p.free_slots = 1;
    rt_admission_kick(adm);
    assert_true(rt_admission_cancel(adm, w2));
    spin(b);
    assert_int_equal(j[2].order, 0);
    /* model gone */
    assert_int_equal(rt_admission_enter(adm, "m", b, 10000, &j[1], done_fn, &w1), RT_ADM_QUEUED);
    p.gone = 1;
    rt_admission_kick(adm);
    spin(b);
    assert_int_equal(j[1].got, RT_ADM_GONE);
    rt_admission_free(adm);
    event_base_free(b);
}

static void test_1024_fit(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    pool_t p = { 0 };
    rt_admission_t *adm = rt_admission_new(1024, try_fn, &p);
    static job_t j[1025];
    rt_waiter_t *w;
    finished = 0;
    for (int i = 0; i < 1024; i++)
        assert_int_equal(rt_admission_enter(adm, i % 2 ? "a" : "b", b, 10000, &j[i], done_fn, &w), RT_ADM_QUEUED);
    assert_int_equal(rt_admission_enter(adm, "a", b, 10000, &j[1024], done_fn, &w), RT_ADM_FULL);
    p.free_slots = 1024;
    rt_admission_kick(adm);
    spin(b);
    assert_int_equal(finished, 1024);
    for (int i = 2; i < 1024; i += 2)
        assert_true(j[i].order > j[i - 2].order); /* FIFO within a model */
    rt_admission_free(adm);
    event_base_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_bound),
        cmocka_unit_test(test_timeout_and_cancel),
        cmocka_unit_test(test_1024_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
