/* offload: a fixed pool of threads for blocking work that must not run on an
 * event loop (password hashing, synchronous SQLite), with the result handed
 * back to the loop that asked for it.
 *
 * A job is work(arg) on one of the pool's threads, then done(arg, status) on
 * the thread of the event loop named at submit: the worker activates an
 * event of that loop (event_active) and the loop runs done. So done may touch
 * what belongs to that loop (an HTTP request, its connection) without locks.
 *
 * Bound: at most threads + max_queued jobs are in the pool at once (running
 * or waiting for a thread); one more is refused with -EBUSY, so a flood costs
 * a refusal each, not memory or an ever longer wait. A job whose work has
 * finished no longer counts, even before its done has run.
 *
 * Every accepted job gets exactly one done call:
 *   CM_OFFLOAD_DONE       work(arg) ran;
 *   CM_OFFLOAD_CANCELLED  the pool was stopped before a thread took the job:
 *                         work(arg) never ran;
 *   CM_OFFLOAD_REFUSED    an urgent job took its place in the queue
 *                         (cm_offload_submit_urgent): work(arg) never ran.
 * Loops: the base handed to cm_offload_submit must accept event_active from
 * other threads (evthread_use_pthreads() before it was created, as
 * cm_http_server_start does) and must outlive the job's done, or be stopped
 * before cm_offload_free (see there). */
#ifndef CM_OFFLOAD_H
#define CM_OFFLOAD_H

#include <stddef.h>

struct event_base;

typedef struct cm_offload cm_offload_t;

typedef enum { CM_OFFLOAD_DONE, CM_OFFLOAD_CANCELLED, CM_OFFLOAD_REFUSED } cm_offload_status_t;

/* Runs on a pool thread: the blocking part. It must not touch what belongs to
 * the loop (the request, its connection). */
typedef void (*cm_offload_work_fn)(void *arg);
/* Runs once per job on the loop's thread (or, see cm_offload_free, on the
 * thread that frees the pool); it owns arg from then on. */
typedef void (*cm_offload_done_fn)(void *arg, cm_offload_status_t status);

/* Starts threads worker threads (less than 1 is 1); max_queued jobs may
 * wait for one of them beyond those running (0: none wait). NULL when the
 * threads cannot be started (pthread_create failed); the caller reports it. */
cm_offload_t *cm_offload_new(int threads, size_t max_queued);

/* Queues work(arg) and, later, done(arg, status) on base's loop. Call from
 * base's loop thread. 0 (the pool calls done exactly once), or, with done
 * never called and arg still the caller's: -EBUSY when the bound is reached,
 * -ESHUTDOWN once cm_offload_stop ran, -ENOMEM when base refuses an event. */
int cm_offload_submit(cm_offload_t *pool, struct event_base *base, cm_offload_work_fn work,
                      cm_offload_done_fn done, void *arg);

/* As cm_offload_submit, for work that must not wait behind a flood (a login
 * from an address without failures while others hammer): the job goes ahead
 * of every waiting non-urgent job (behind earlier urgent ones), and when the
 * bound is reached it takes the place of the newest waiting non-urgent job,
 * whose done then gets CM_OFFLOAD_REFUSED. -EBUSY only when no such job
 * waits. */
int cm_offload_submit_urgent(cm_offload_t *pool, struct event_base *base, cm_offload_work_fn work,
                             cm_offload_done_fn done, void *arg);

/* fn runs on a pool thread that has been idle idle_ms after running jobs,
 * once per such pause: the allocator's collect (the router's
 * mi_collect), so that a burst of large jobs (a 16 MiB body parsed here)
 * does not leave its memory with the thread's heap. NULL: none. Any thread. */
void cm_offload_set_idle(cm_offload_t *pool, void (*fn)(void), unsigned idle_ms);

/* Stops accepting (submit answers -ESHUTDOWN from now on) and cancels the
 * jobs still waiting for a thread: their done(arg, CM_OFFLOAD_CANCELLED) is
 * handed to their loops like any result. Running jobs finish. Any thread,
 * does not block; calling it again does nothing. */
void cm_offload_stop(cm_offload_t *pool);

/* cm_offload_stop, then waits for the running jobs and joins the threads.
 * Results not yet delivered (their loop has stopped, or not yet run done)
 * get their done called here, on the calling thread, in submission order.
 * Call once the loops that submitted jobs no longer dispatch and before their
 * bases are freed: the pool frees its events of those bases here. NULL is a
 * no-op. */
void cm_offload_free(cm_offload_t *pool);

#endif
