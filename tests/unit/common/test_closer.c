/* closer: with libevent's epoll changelist, a descriptor handed to the closer
 * must outlive its pending EPOLL_CTL_DEL. The test wraps epoll_ctl (this
 * executable's definition comes first for libevent's calls) and counts DELs
 * that the kernel refused because the descriptor was closed already. */
#include "closer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int late_dels; /* DELs refused: EBADF (closed) or ENOENT (number reused) */

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
    int rc = real(epfd, op, fd, ev);
    if (rc != 0 && op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT))
        late_dels++;
    return rc;
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

typedef struct {
    struct event_base *base;
    cm_closer_t *closer; /* NULL: close at once, the old way */
    int a[2], b[2];      /* socketpairs: a[0] and b[0] are watched */
    struct event *ea, *eb;
    struct event *keep;  /* keeps the loop dispatching, as a server's does */
    int turn_a_done;
} scene_t;

static void give_up(scene_t *s, struct event *ev, int fd)
{
    event_free(ev); /* the EPOLL_CTL_DEL waits in the changelist */
    cm_closer_close(s->closer, fd);
}

/* Turn 1: a's peer spoke. a goes to the closer (arming its timer) and b's
 * peer is made to speak, so that b's callback runs next turn, before the
 * closer's timer, which is due by then. */
static void on_a(evutil_socket_t fd, short what, void *arg)
{
    scene_t *s = arg;
    (void)what;
    give_up(s, s->ea, fd);
    s->ea = NULL;
    assert_int_equal(write(s->b[1], "x", 1), 1);
    s->turn_a_done = 1;
}

/* Turn 2: b goes to the closer in the very turn the timer fires. */
static void on_b(evutil_socket_t fd, short what, void *arg)
{
    scene_t *s = arg;
    (void)what;
    give_up(s, s->eb, fd);
    s->eb = NULL;
}

static void on_keep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void run_scene(scene_t *s, bool with_closer)
{
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    s->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    assert_non_null(s->base);
    s->closer = with_closer ? cm_closer_new(s->base) : NULL;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s->a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s->b), 0);
    s->ea = event_new(s->base, s->a[0], EV_READ, on_a, s);
    s->eb = event_new(s->base, s->b[0], EV_READ, on_b, s);
    event_add(s->ea, NULL);
    event_add(s->eb, NULL);
    s->keep = evtimer_new(s->base, on_keep, NULL);
    struct timeval day = { 86400, 0 };
    evtimer_add(s->keep, &day);
    event_base_loop(s->base, EVLOOP_NONBLOCK); /* the ADDs reach epoll */
    assert_int_equal(write(s->a[1], "x", 1), 1);
    late_dels = 0;
    for (int i = 0; i < 10; i++)
        event_base_loop(s->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_true(s->turn_a_done);
    assert_null(s->eb);
}

static void scene_free(scene_t *s)
{
    cm_closer_free(s->closer);
    event_free(s->keep);
    event_base_free(s->base);
    close(s->a[1]);
    close(s->b[1]);
}

static void test_closes_after_the_del(void **state)
{
    (void)state;
    scene_t s = { 0 };
    run_scene(&s, true);
    assert_int_equal(late_dels, 0);
    assert_false(is_open(s.a[0])); /* both closed within the turns run */
    assert_false(is_open(s.b[0]));
    scene_free(&s);
}

/* The control: closing at once leaves both DELs to a closed descriptor. Were
 * this not counted, the test above could not fail. */
static void test_closing_at_once_is_late(void **state)
{
    (void)state;
    scene_t s = { 0 };
    run_scene(&s, false);
    assert_int_equal(late_dels, 2);
    scene_free(&s);
}

/* A descriptor handed over stays open through the turn it arrived in, even
 * when the timer fires in that turn; flush closes whatever is pending. */
static void test_flush(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    cm_closer_t *cl = cm_closer_new(base);
    int p[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
    cm_closer_close(cl, p[0]);
    cm_closer_close(cl, p[1]);
    assert_true(is_open(p[0]));
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* first firing: moved along only */
    assert_true(is_open(p[0]));
    cm_closer_flush(cl);
    assert_false(is_open(p[0]));
    assert_false(is_open(p[1]));
    cm_closer_free(cl);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closes_after_the_del),
        cmocka_unit_test(test_closing_at_once_is_late),
        cmocka_unit_test(test_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
