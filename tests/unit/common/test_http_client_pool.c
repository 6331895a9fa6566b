/* Tests common/http_client_pool.c (the own transport's upstreams and their
 * connections), common/http_origin.c (the CURLU-based origin parser under
 * it) and the own transport's predicate, hce_accepts: which requests it
 * takes, connection reuse, idle connections dropped when the peer closes,
 * and upstreams of departed origins freed. No HTTP is spoken here: the
 * exchange is test_http_client.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "closer.h"
#include "http_client_impl.h"
#include "http_client_pool.h"
#include "http_origin.h"
#include "util.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the origin parser ---- */

typedef struct {
    const char *url;
    int rc;
    bool tls, numeric;
    const char *host, *authority;
    unsigned port;
    const char *target; /* what follows the origin as spelled */
} origin_case_t;

static const origin_case_t origins[] = {
    { "http://127.0.0.1:8081/v1/chat?x=1", CM_ORIGIN_OK, false, true, "127.0.0.1", "127.0.0.1:8081", 8081,
      "/v1/chat?x=1" },
    { "http://10.1.2.3/x", CM_ORIGIN_OK, false, true, "10.1.2.3", "10.1.2.3", 80, "/x" },
    { "http://10.1.2.3:80/x", CM_ORIGIN_OK, false, true, "10.1.2.3", "10.1.2.3", 80, "/x" }, /* as curl's Host */
    { "http://[::1]:9000/p", CM_ORIGIN_OK, false, true, "::1", "[::1]:9000", 9000, "/p" },
    { "http://[::1]/p", CM_ORIGIN_OK, false, true, "::1", "[::1]", 80, "/p" },
    { "http://[::ffff:1.2.3.4]:5/", CM_ORIGIN_OK, false, true, "::ffff:1.2.3.4", "[::ffff:1.2.3.4]:5", 5, "/" },
    { "http://[fe80::1%25eth0]:8/x", CM_ORIGIN_OK, false, false, "fe80::1", "[fe80::1]:8", 8, "/x" },
    { "https://example.com/a", CM_ORIGIN_OK, true, false, "example.com", "example.com", 443, "/a" },
    { "https://example.com:8443", CM_ORIGIN_OK, true, false, "example.com", "example.com:8443", 8443, "" },
    { "HTTP://127.0.0.1:7/x", CM_ORIGIN_OK, false, true, "127.0.0.1", "127.0.0.1:7", 7, "/x" },
    { "http://127.1:7/x", CM_ORIGIN_OK, false, true, "127.0.0.1", "127.0.0.1:7", 7, "/x" }, /* CURLU normalises */
    { "http://node-1:8081?q", CM_ORIGIN_OK, false, false, "node-1", "node-1:8081", 8081, "?q" },
    { "http://1.2.3.4#frag", CM_ORIGIN_OK, false, true, "1.2.3.4", "1.2.3.4", 80, "#frag" },
    { "http://1.2.3.4:0/x", CM_ORIGIN_EPORT, false, false, NULL, NULL, 0, NULL },
    { "http://1.2.3.4:65536/x", CM_ORIGIN_EPORT, false, false, NULL, NULL, 0, NULL },
    { "ftp://1.2.3.4/x", CM_ORIGIN_ESCHEME, false, false, NULL, NULL, 0, NULL },
    { "gopherx://1.2.3.4/x", CM_ORIGIN_ESCHEME, false, false, NULL, NULL, 0, NULL },
    { "http://[::1", CM_ORIGIN_EURL, false, false, NULL, NULL, 0, NULL },
    { "http://", CM_ORIGIN_EURL, false, false, NULL, NULL, 0, NULL },
    { "http://1.2.3.4/a b", CM_ORIGIN_EURL, false, false, NULL, NULL, 0, NULL },
    { "127.0.0.1:8081/x", CM_ORIGIN_ESCHEME, false, false, NULL, NULL, 0, NULL },
    { "", CM_ORIGIN_EURL, false, false, NULL, NULL, 0, NULL },
};

static void test_origin_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < CM_ARRAY_LEN(origins); i++) {
        const origin_case_t *c = &origins[i];
        cm_origin_t o;
        int rc = cm_origin_parse(c->url, &o);
        if (rc != c->rc)
            fail_msg("%s: %d (%s), want %d", c->url, rc, cm_origin_strerror(rc), c->rc);
        if (rc != CM_ORIGIN_OK)
            continue;
        assert_int_equal(o.tls, c->tls);
        assert_int_equal(o.numeric, c->numeric);
        assert_string_equal(o.host, c->host);
        assert_string_equal(o.authority, c->authority);
        assert_int_equal(o.port, c->port);
        assert_string_equal(o.target, c->target);
        assert_ptr_equal(o.target, c->url + o.len);
    }
}

static void test_origin_address_and_userinfo(void **state)
{
    (void)state;
    cm_origin_t o;
    assert_int_equal(cm_origin_parse("http://127.0.0.1:8081/", &o), CM_ORIGIN_OK);
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&o.addr;
    assert_int_equal(s4->sin_family, AF_INET);
    assert_int_equal(ntohs(s4->sin_port), 8081);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(o.alen, sizeof(*s4));
    assert_false(o.userinfo);

    assert_int_equal(cm_origin_parse("http://[::1]:9/", &o), CM_ORIGIN_OK);
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&o.addr;
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(s6->sin6_port), 9);
    assert_memory_equal(&s6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback));

    assert_int_equal(cm_origin_parse("http://u:p@1.2.3.4:5/x", &o), CM_ORIGIN_OK);
    assert_true(o.userinfo);
    assert_string_equal(o.target, "/x");

    char longname[400] = "http://";
    memset(longname + 7, 'a', 300);
    strcpy(longname + 307, ".com/x");
    int rc = cm_origin_parse(longname, &o);
    assert_true(rc == CM_ORIGIN_ELONG || rc == CM_ORIGIN_EURL); /* CURLU may refuse it first */
    assert_string_equal(cm_origin_strerror(CM_ORIGIN_EPORT), "port out of range");
}

/* ---- upstreams ---- */

typedef struct {
    struct event_base *base;
    cm_closer_t *closer;
    hcp_pools_t ps;
} fix_t;

static int fix_setup(void **state)
{
    fix_t *f = cm_xcalloc(1, sizeof(*f));
    f->base = event_base_new();
    f->closer = cm_closer_new(f->base);
    hcp_pools_init(&f->ps, f->closer);
    *state = f;
    return 0;
}

static int fix_teardown(void **state)
{
    fix_t *f = *state;
    hcp_pools_free(&f->ps);
    cm_closer_free(f->closer);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void test_pool_lookup(void **state)
{
    fix_t *f = *state;
    const char *t1, *t2;
    /* first an origin whose spelling is a prefix of the next one's */
    hcp_pool_t *short_port = hcp_pool_for(&f->ps, "http://127.0.0.1:808/x", &t1);
    assert_non_null(short_port);
    const char *u1 = "http://127.0.0.1:8081/v1/chat/completions", *u2 = "http://127.0.0.1:8081/health?x";
    hcp_pool_t *p = hcp_pool_for(&f->ps, u1, &t1);
    assert_non_null(p);
    assert_ptr_not_equal(p, short_port);
    assert_true(p->direct);
    assert_string_equal(p->spelled, "http://127.0.0.1:8081");
    assert_int_equal(p->origin.port, 8081);
    assert_ptr_equal(t1, u1 + 21);
    assert_ptr_equal(hcp_pool_for(&f->ps, u2, &t2), p); /* the same upstream, by prefix */
    assert_string_equal(t2, "/health?x");
    assert_ptr_equal(hcp_pool_for(&f->ps, "http://127.0.0.1:808/y", &t2), short_port);
    assert_int_equal(f->ps.n, 2);

    /* IPv6 */
    hcp_pool_t *v6 = hcp_pool_for(&f->ps, "http://[::1]:8081/x", &t1);
    assert_non_null(v6);
    assert_true(v6->direct);
    assert_string_equal(v6->origin.authority, "[::1]:8081");
    assert_string_equal(t1, "/x");

    /* a host name is kept, not direct: its next URL needs no parse either */
    hcp_pool_t *named = hcp_pool_for(&f->ps, "http://node-a:8081/x", &t1);
    assert_non_null(named);
    assert_false(named->direct);
    assert_ptr_equal(hcp_pool_for(&f->ps, "http://node-a:8081/y", &t1), named);
}

static void test_pool_refuses(void **state)
{
    fix_t *f = *state;
    static const char *const bad[] = {
        "https://127.0.0.1:8443/x", /* not plain http: libcurl's */
        "http://127.0.0.1:8081",    /* no path */
        "http://127.0.0.1:8081?x",
        "http://u:p@127.0.0.1:8081/x", /* user info: libcurl sends it */
        "http://[::1/x",
        "http://127.0.0.1:0/x",
        "http://127.0.0.1:99999/x",
        "http:/127.0.0.1:8081/x",
        "ftp://127.0.0.1/x",
        "garbage",
    };
    const char *t;
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++)
        if (hcp_pool_for(&f->ps, bad[i], &t))
            fail_msg("%s got an upstream", bad[i]);
    assert_int_equal(f->ps.n, 0);
}

/* Upstreams of departed origins are freed; held ones and ones with idle
 * connections stay; the array stays as long as the upstreams in use. */
static void test_departed_origins_dropped(void **state)
{
    fix_t *f = *state;
    const char *t;
    f->ps.drop_ms = 0; /* sweep at every new origin */
    hcp_pool_t *a = hcp_pool_for(&f->ps, "http://10.0.0.1:1/x", &t);
    hcp_pool_t *b = hcp_pool_for(&f->ps, "http://10.0.0.2:1/x", &t); /* sweeps: a was just used */
    assert_int_equal(f->ps.n, 2);
    hcp_pool_hold(a); /* a request in flight */
    hcp_pools_sweep(&f->ps); /* b was looked up since the last sweep */
    assert_int_equal(f->ps.n, 2);
    hcp_pools_sweep(&f->ps); /* b: unused since, empty: gone; a: held */
    assert_int_equal(f->ps.n, 1);
    assert_ptr_equal(f->ps.v[0], a);
    assert_ptr_equal(hcp_pool_for(&f->ps, "http://10.0.0.1:1/y", &t), a);
    hcp_pool_release(a);
    hcp_pools_sweep(&f->ps); /* looked up: stays once more */
    assert_int_equal(f->ps.n, 1);
    hcp_pools_sweep(&f->ps);
    assert_int_equal(f->ps.n, 0);
    (void)b;

    /* churn: a thousand nodes, one after the other */
    for (int i = 0; i < 1000; i++) {
        char url[64];
        snprintf(url, sizeof(url), "http://10.%d.%d.%d:8081/v1", i / 65536, i / 256 % 256, i % 256);
        hcp_pool_t *p = hcp_pool_for(&f->ps, url, &t);
        assert_non_null(p);
        assert_true(f->ps.n <= 2);
    }
    assert_true(f->ps.cap <= 8);

    /* with the real interval nothing recent goes */
    f->ps.drop_ms = HCP_DROP_MS;
    size_t before = f->ps.n;
    assert_non_null(hcp_pool_for(&f->ps, "http://10.9.9.9:1/x", &t));
    assert_int_equal(f->ps.n, before + 1);
}

/* ---- connections ---- */

static int listen_local(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(*a);
    assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    getsockname(fd, (struct sockaddr *)a, &al);
    return fd;
}

static int idle_wakeups;

/* The transport's connection callback, as far as idle connections go. */
static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    hcp_conn_t *c = arg;
    (void)fd;
    (void)what;
    assert_null(c->req);
    idle_wakeups++;
    hcp_conn_drop_idle(c);
}

static void test_conn_reuse_and_peer_close(void **state)
{
    fix_t *f = *state;
    struct sockaddr_in a;
    int lfd = listen_local(&a);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    const char *t;
    hcp_pool_t *p = hcp_pool_for(&f->ps, url, &t);
    assert_non_null(p);
    assert_null(hcp_conn_take(p));

    hcp_conn_t *c = hcp_conn_new(f->base, p, idle_cb);
    assert_non_null(c);
    int sfd = accept(lfd, NULL, NULL);
    assert_true(sfd >= 0);
    hcp_conn_put(c);
    assert_int_equal(p->nidle, 1);
    assert_ptr_equal(hcp_conn_take(p), c); /* reused, not a new socket */
    assert_int_equal(p->nidle, 0);
    hcp_conn_put(c);

    /* the peer closes the idle connection: it leaves the pool */
    idle_wakeups = 0;
    close(sfd);
    struct timeval limit = { 2, 0 };
    event_base_loopexit(f->base, &limit);
    while (idle_wakeups == 0 && event_base_got_exit(f->base) == 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(idle_wakeups, 1);
    assert_int_equal(p->nidle, 0);
    assert_null(hcp_conn_take(p));

    /* an upstream with an idle connection is not dropped, an empty one is */
    c = hcp_conn_new(f->base, p, idle_cb);
    assert_non_null(c);
    hcp_conn_put(c);
    hcp_pools_sweep(&f->ps);
    hcp_pools_sweep(&f->ps);
    assert_int_equal(f->ps.n, 1);
    c = hcp_conn_take(p);
    hcp_conn_close(c);
    hcp_pools_sweep(&f->ps);
    assert_int_equal(f->ps.n, 0);
    close(lfd);
}

/* ---- which requests the own transport takes ---- */

static void test_own_transport_accepts(void **state)
{
    fix_t *f = *state;
    hc_transport_t *own = hce_new(f->base, f->closer);
    static const char *const good_h[] = { "Content-Type: application/json", "X-Request-Id:  abc", NULL };
    static const char *const bad_h[] = { "no colon here", NULL };
    static const char *const empty_name[] = { ": value", NULL };
    static const char *const crlf[] = { "X-A: 1\r\nX-B: 2", NULL };
    struct {
        cm_hc_opts_t o;
        bool want;
    } cases[] = {
        { { .url = "http://127.0.0.1:8081/v1/x", .no_proxy = true, .headers = good_h }, true },
        { { .url = "http://[::1]:8081/v1/x", .no_proxy = true, .method = "POST" }, true },
        { { .url = "http://127.0.0.1:8081/v1/x", .no_proxy = false }, false }, /* proxies: libcurl */
        { { .url = "http://127.0.0.1:8081/v1/x", .no_proxy = true, .force_curl = true }, false },
        { { .url = "https://127.0.0.1:8081/v1/x", .no_proxy = true }, false },
        { { .url = "http://localhost:8081/v1/x", .no_proxy = true }, false },
        { { .url = "http://localhost:8081/v1/y", .no_proxy = true }, false }, /* the kept entry answers */
        { { .url = "http://127.0.0.1:8081/v1/x#f", .no_proxy = true }, false },
        { { .url = "http://127.0.0.1:8081/v1 x", .no_proxy = true }, false },
        { { .url = "http://127.0.0.1:8081/v1/x", .no_proxy = true, .method = "OPTIONS" }, false },
        { { .url = "http://127.0.0.1:8081/v1/x", .no_proxy = true, .headers = bad_h }, false },
        { { .url = "http://127.0.0.1:8081/v1/x", .no_proxy = true, .headers = empty_name }, false },
        { { .url = "http://127.0.0.1:8081/v1/x", .no_proxy = true, .headers = crlf }, false },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        hc_route_t route = { 0 };
        bool got = hce_accepts(own, &cases[i].o, &route);
        if (got != cases[i].want)
            fail_msg("case %zu (%s): %d", i, cases[i].o.url, got);
        if (got) {
            assert_non_null(route.pool);
            assert_string_equal(route.target, "/v1/x");
        }
    }
    own->ops->free(own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_parse),
        cmocka_unit_test(test_origin_address_and_userinfo),
        cmocka_unit_test_setup_teardown(test_pool_lookup, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_pool_refuses, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_departed_origins_dropped, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_conn_reuse_and_peer_close, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_own_transport_accepts, fix_setup, fix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
