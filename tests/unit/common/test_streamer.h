/* A route handler shared by the HTTP server tests: a streamed reply of three
 * SSE events ("data: 0" .. "data: 2"), 10 ms apart, from a timer on the
 * request's loop. */
#ifndef TEST_STREAMER_H
#define TEST_STREAMER_H

#include "http_server.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    cm_http_req_t *req;
    struct event *ev;
    int sent;
} streamer_t;

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    streamer_t *s = arg;
    if (s->sent == 3) {
        cm_http_stream_end(s->req);
        event_free(s->ev);
        free(s);
        return;
    }
    char chunk[32];
    int n = snprintf(chunk, sizeof(chunk), "data: %d\n\n", s->sent++);
    cm_http_stream_write(s->req, chunk, (size_t)n);
    struct timeval tv = { 0, 10000 };
    event_add(s->ev, &tv);
}

static void h_stream(cm_http_req_t *req, void *ud)
{
    (void)ud;
    streamer_t *s = cm_xcalloc(1, sizeof(*s));
    s->req = req;
    s->ev = evtimer_new(cm_http_req_base(req), stream_tick, s);
    cm_http_stream_start(req, 200, "text/event-stream");
    stream_tick(-1, 0, s);
}

#endif
