/* closer: closes descriptors at an event loop's next turn.
 *
 * Our loops run with EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST: an event_del
 * reaches epoll only when the loop next dispatches. A descriptor closed
 * before then frees its number while its EPOLL_CTL_DEL is still pending, and
 * another thread's accept() or socket() may take the number meanwhile; the
 * late DEL then names that thread's socket. The kernel refuses it (the number
 * is not in this loop's epoll set) and libevent ignores the refusal, so
 * nothing breaks, but it is an unsynchronised use of another thread's
 * descriptor (ThreadSanitizer reports it, and its report of it can abort).
 * Closing one turn later, after the dispatch has applied the DEL, removes
 * the case. All calls for one closer come from its loop's thread. */
#ifndef CM_CLOSER_H
#define CM_CLOSER_H

#include <event2/event.h>

typedef struct cm_closer cm_closer_t;

cm_closer_t *cm_closer_new(struct event_base *base);
/* Closes fd once the loop has dispatched again; at once when cl is NULL (a
 * loop without a changelist). */
void cm_closer_close(cm_closer_t *cl, evutil_socket_t fd);
/* Closes what is pending now (the loop is ending). */
void cm_closer_flush(cm_closer_t *cl);
/* Flushes, then frees. */
void cm_closer_free(cm_closer_t *cl);

#endif
