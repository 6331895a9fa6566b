/* bevflush: write what a libevent bufferevent has queued now, from the loop
 * turn that queued it.
 *
 * A bufferevent writes only from its write event: queueing bytes costs an
 * epoll MOD to watch for EPOLLOUT, another loop turn and a second MOD to stop.
 * cm_bev_flush writes them at once; when all of it went out it runs the
 * bufferevent's write callback as that turn would have (for evhttp: "the
 * reply/request is written", which may free the evhttp request or start
 * reading the response). On an error or a full socket it leaves the rest to
 * the bufferevent's own write path. Not for a bufferevent still connecting. */
#ifndef CM_BEVFLUSH_H
#define CM_BEVFLUSH_H

struct bufferevent;

void cm_bev_flush(struct bufferevent *bev);

#endif
