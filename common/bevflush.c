#include "bevflush.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

void cm_bev_flush(struct bufferevent *bev)
{
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0)
        return;
    struct evbuffer *out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0)
        return;
    /* the bufferevent keeps its output's start frozen once it has written
     * (only it drains it); we drain it in its place, as its write callback does */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (n < 0 || evbuffer_get_length(out) > 0)
        return;
    bufferevent_disable(bev, EV_WRITE); /* cancels the pending epoll MOD */
    bufferevent_trigger(bev, EV_WRITE, 0);
}
