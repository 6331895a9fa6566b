/* admission: the per-model FIFO of requests waiting for a free slot.
 *
 * A request enters with its model. When nobody waits for that model it tries
 * for a slot at once (the try callback, in practice rt_registry_acquire);
 * otherwise, or when every node is busy, it queues behind the others. The
 * queue is bounded (ROUTER_MAX_WAITERS in total) and each waiter has a
 * deadline. Whenever capacity may have grown (rt_admission_kick, from the
 * registry's capacity hook) the oldest waiter of each model tries again, in
 * order, until one fails; a slot taken this way is handed to that waiter.
 *
 * Waiters belong to the loop of the worker that owns their request: the
 * outcome (slot granted, timed out, model gone) is delivered by an event on
 * that loop, so a kick from another thread never runs request code itself.
 * One mutex guards the queues; the try callback runs under it (lock order:
 * admission, then registry). */
#ifndef RT_ADMISSION_H
#define RT_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

typedef struct rt_admission rt_admission_t;
typedef struct rt_waiter rt_waiter_t;

/* Results of the try callback, of rt_admission_enter and of the done
 * callback. */
typedef enum {
    RT_ADM_GOT,     /* a slot was taken for ctx */
    RT_ADM_BUSY,    /* try: no free slot now */
    RT_ADM_GONE,    /* nobody can serve it any more (try, done) */
    RT_ADM_QUEUED,  /* enter: waiting; done will be called */
    RT_ADM_FULL,    /* enter: the queue is full */
    RT_ADM_TIMEOUT, /* done: the deadline passed */
} rt_adm_status_t;

/* Tries to take a slot for the request ctx; GOT, BUSY or GONE. */
typedef rt_adm_status_t (*rt_adm_try_fn)(void *ctx, void *ud);
/* The outcome of a queued wait (GOT, TIMEOUT or GONE), on the waiter's loop.
 * The waiter is freed before this runs. */
typedef void (*rt_adm_done_fn)(void *ctx, rt_adm_status_t status);

rt_admission_t *rt_admission_new(size_t max_waiters, rt_adm_try_fn try_fn, void *ud);
/* Every waiter must have left (done or cancelled) before. NULL is a no-op. */
void rt_admission_free(rt_admission_t *adm);

/* GOT or GONE (decided now: done is not called), FULL, or QUEUED with *out
 * set (done will be called on base's loop unless cancelled first). */
rt_adm_status_t rt_admission_enter(rt_admission_t *adm, const char *model, struct event_base *base,
                                   unsigned timeout_ms, void *ctx, rt_adm_done_fn done,
                                   rt_waiter_t **out);
/* The waiter's client went away: called on its loop; done is not called.
 * Returns true when a slot had already been taken for it (the caller gives
 * it back). */
bool rt_admission_cancel(rt_admission_t *adm, rt_waiter_t *w);
/* Capacity may have grown: serve the oldest waiters that now fit. Any thread. */
void rt_admission_kick(rt_admission_t *adm);
size_t rt_admission_waiting(rt_admission_t *adm);

#endif
