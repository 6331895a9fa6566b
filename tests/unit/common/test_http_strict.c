/* common/http_server.c's hardening, over raw TCP on 127.0.0.1: strict
 * framing (each lenient shape http_parser lets through is a 400), version,
 * Host, Expect and Authorization rules, the pre hook and route body limits
 * applied before a body is read, the body budget, the header and keep-alive
 * timeouts and the per-address connection cap. Every read has a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_server.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static cm_http_server_t *srv, *srv_t; /* srv_t: short timeouts and a per-address cap */
static int port, port_t;
static atomic_int handled;     /* handler runs */
static atomic_size_t pre_body; /* body bytes the pre hook saw (must stay 0) */

/* ---- handlers ---- */

static void h_echo(cm_http_req_t *req, void *ud)
{
    (void)ud;
    atomic_fetch_add(&handled, 1);
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    char out[64];
    int n = snprintf(out, sizeof(out), "L=%zu B=%.16s", len, body);
    cm_http_reply(req, 200, "text/plain", out, (size_t)n);
}

enum { OPEN, SECRET };

/* SECRET routes need "Authorization: Bearer ok" */
static bool pre(cm_http_req_t *req, const cm_http_route_t *route, void *ud)
{
    (void)ud;
    size_t len;
    cm_http_req_body(req, &len);
    atomic_fetch_add(&pre_body, len);
    const char *a = cm_http_req_header(req, "Authorization");
    if (route->policy == OPEN || (a && strcmp(a, "Bearer ok") == 0))
        return true;
    cm_http_reply_error(req, 401, NULL, "unauthorized", NULL, "no");
    return false;
}

static const cm_http_route_t routes[] = {
    { "GET", "/echo", h_echo, OPEN },
    { "POST", "/echo", h_echo, OPEN },
    { "POST", "/secret", h_echo, SECRET },
    { "POST", "/small", h_echo, OPEN },
};
static const size_t route_max_body[] = { 0, 0, 0, 100 };

/* ---- raw connections ---- */

static int fds[64];
static int nfds;

static int xconnect(int p)
{
    assert_true(nfds < (int)CM_ARRAY_LEN(fds));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    fds[nfds++] = fd;
    return fd;
}

static int close_all(void **state)
{
    (void)state;
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    nfds = 0;
    usleep(50000); /* the server sees the closes (per-address counts) */
    return 0;
}

static void xsend(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return; /* the server may have answered and closed */
        s += k;
        n -= (size_t)k;
    }
}

/* Reads one response (head, and a Content-Length body) within ms into buf;
 * its status, or -1. An interim 100 is a response of its own. */
static int response(int fd, char *buf, size_t cap, int ms)
{
    size_t len = 0;
    uint64_t deadline = cm_now_ms() + (uint64_t)ms;
    buf[0] = '\0';
    for (;;) {
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(buf, "\r\nContent-Length: ");
            size_t want = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0);
            if (len >= want) {
                int status = -1;
                sscanf(buf, "HTTP/1.1 %d", &status);
                return status;
            }
        }
        uint64_t now = cm_now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (now >= deadline || len + 1 >= cap || poll(&p, 1, (int)(deadline - now)) <= 0)
            return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
    }
}

/* True when the server closes fd (EOF or reset) within ms; bytes before are dropped. */
static bool closes(int fd, int ms)
{
    uint64_t deadline = cm_now_ms() + (uint64_t)ms;
    char buf[4096];
    for (;;) {
        uint64_t now = cm_now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            return false;
        if (recv(fd, buf, sizeof(buf), 0) <= 0)
            return true;
    }
}

/* One request on a new connection: the status, and the server closes after. */
static void refused(const char *what, const char *req, int status)
{
    char buf[8192];
    int fd = xconnect(port);
    xsend(fd, req);
    int got = response(fd, buf, sizeof(buf), 2000);
    if (got != status)
        fail_msg("[%s] expected %d, got %d: %.300s", what, status, got, buf);
    if (!strstr(buf, "\"error\""))
        fail_msg("[%s] not the error shape: %.300s", what, buf);
    if (!closes(fd, 1000))
        fail_msg("[%s] connection left open after %d", what, status);
}

/* The same, the request in two reads: a, then b 20 ms later (the scanner's
 * state across reads). */
static void refused_split(const char *what, const char *a, const char *b, int status)
{
    char buf[8192];
    int fd = xconnect(port);
    xsend(fd, a);
    usleep(20000);
    send(fd, b, strlen(b), MSG_NOSIGNAL); /* may fail once the server has answered */
    int got = response(fd, buf, sizeof(buf), 2000);
    if (got != status)
        fail_msg("[%s] expected %d, got %d: %.300s", what, status, got, buf);
    if (!closes(fd, 1000))
        fail_msg("[%s] connection left open after %d", what, status);
}

static void ok(const char *what, int fd, const char *req, const char *body_part)
{
    char buf[8192];
    xsend(fd, req);
    int got = response(fd, buf, sizeof(buf), 2000);
    if (got != 200 || (body_part && !strstr(buf, body_part)))
        fail_msg("[%s] expected 200 with \"%s\", got %d: %.300s", what, body_part ? body_part : "",
                 got, buf);
}

#define POST_CHUNKED "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

/* ---- tests ---- */

/* What http_parser 2.9.4 (not built strict) accepts and RFC 9112 does not: 400 and close. */
static void lenient_framing(void **state)
{
    (void)state;
    refused("TE, space before colon", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
            "2\r\nab\r\n0\r\n\r\n", 400);
    refused("CL, space before colon", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\nab", 400);
    refused("tab before colon", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n", 400);
    refused("obs-fold SP", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 400);
    refused("obs-fold HTAB", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n", 400);
    refused("space before the first header", "GET /echo HTTP/1.1\r\n Host: x\r\n\r\n", 400);
    refused("bare LF everywhere", "GET /echo HTTP/1.1\nHost: x\n\n", 400);
    refused("bare LF after the request line", "GET /echo HTTP/1.1\nHost: x\r\n\r\n", 400);
    refused("bare LF after a header", "GET /echo HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400);
    refused("bare LF ending the head", "GET /echo HTTP/1.1\r\nHost: x\r\n\n", 400);
    refused("chunk data not followed by CRLF", POST_CHUNKED "2\r\nabXX0\r\n\r\n", 400);
    refused("chunk data followed by bare LF", POST_CHUNKED "2\r\nab\n0\r\n\r\n", 400);
    refused("bare LF in a chunk extension", POST_CHUNKED "2;a=b\nab\r\n0\r\n\r\n", 400);
    refused("bare LF after a chunk size", POST_CHUNKED "2\nab\r\n0\r\n\r\n", 400);
    refused("space after a chunk size", POST_CHUNKED "2 \r\nab\r\n0\r\n\r\n", 400);
    refused("bare LF in a trailer", POST_CHUNKED "0\r\nX-T: y\n\r\n", 400);
    refused("bare LF ending the trailers", POST_CHUNKED "0\r\n\n", 400);
    refused("obs-fold in a trailer", POST_CHUNKED "0\r\nX-T: y\r\n z\r\n\r\n", 400);
    /* a CR not followed by LF: http_parser takes "CR SP" as a line end and
     * the SP as obs-fold, "CR x" as a line end */
    refused("bare CR then SP in a header", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r 2\r\n\r\n", 400);
    refused("bare CR ending a header", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\rX-B: 2\r\n\r\n", 400);
    refused("bare CR in the request line", "GET /echo\rX HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    refused("bare CR in a trailer", POST_CHUNKED "0\r\nX-T: y\r z\r\n\r\n", 400);
    /* the same shapes with the head cut by a read (the byte scanner, not the
     * whole-head one): at the CR, and right after a CR that did end a line */
    refused_split("bare CR at a read's end", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r", " 2\r\n\r\n", 400);
    refused_split("bare LF after a line cut at its CR", "GET /echo HTTP/1.1\r", "\nX\nHost: x\r\n\r\n", 400);
    refused_split("obs-fold after a cut", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n", " 2\r\n\r\n", 400);
    refused_split("bare LF ending a cut head", "GET /echo HTTP/1.1\r\nHo", "st: x\r\n\n", 400);
    /* strict framing still accepts what is valid, split anywhere */
    int fd = xconnect(port);
    ok("chunk extension with BWS", fd, POST_CHUNKED "2 ;a=b\r\nab\r\n0\r\nX-T: y\r\n\r\n", "L=2 B=ab");
    const char *req = POST_CHUNKED "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    for (size_t i = 0; req[i]; i++) { /* one byte per packet: state kept across reads */
        char one[2] = { req[i], 0 };
        xsend(fd, one);
        usleep(1000);
    }
    char buf[4096];
    assert_int_equal(response(fd, buf, sizeof(buf), 2000), 200);
    assert_non_null(strstr(buf, "L=5 B=abcde"));
}

/* Pipelined chunked, Content-Length and bodiless requests in one write: the
 * scanner finds each message's start where the parser does. */
static void pipelined_framing(void **state)
{
    (void)state;
    int fd = xconnect(port);
    xsend(fd, POST_CHUNKED "1\r\na\r\n0\r\n\r\n" POST_CHUNKED "2\r\nbb\r\n0\r\nT: 1\r\n\r\n"
              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nccc"
              "\r\nGET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char buf[8192];
    size_t len = 0;
    uint64_t deadline = cm_now_ms() + 2000;
    for (;;) { /* everything, until the server closes after the last one */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint64_t now = cm_now_ms();
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            fail_msg("pipelined: no close; got %.400s", buf);
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    const char *want[] = { "L=1 B=a", "L=2 B=bb", "L=3 B=ccc", "L=0 B=" };
    const char *at = buf;
    for (int i = 0; i < 4; i++) {
        at = strstr(at, "HTTP/1.1 200 ");
        if (!at || !strstr(at, want[i]))
            fail_msg("pipelined #%d: want 200 and %s in %.400s", i, want[i], buf);
        at++;
    }
}

/* Versions, Host, Expect, Authorization (RFC 9110, 9112). */
static void head_rules(void **state)
{
    (void)state;
    refused("HTTP/2.0", "GET /echo HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    refused("HTTP/9.9", "GET /echo HTTP/9.9\r\nHost: x\r\n\r\n", 505);
    refused("HTTP/1.2", "GET /echo HTTP/1.2\r\nHost: x\r\n\r\n", 505);
    refused("HTTP/0.9", "GET /echo HTTP/0.9\r\nHost: x\r\n\r\n", 505);
    refused("HTTP/1.1 without Host", "GET /echo HTTP/1.1\r\n\r\n", 400);
    refused("two Hosts", "GET /echo HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400);
    refused("Expect: other", "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\na", 417);
    refused("Expect on GET", "GET /echo HTTP/1.1\r\nHost: x\r\nExpect: x\r\n\r\n", 417);
    refused("two Authorization", "GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n"
            "authorization: Bearer b\r\n\r\n", 400);
    refused("two equal Content-Length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            "Content-Length: 1\r\n\r\na", 400);
    int fd = xconnect(port);
    ok("HTTP/1.0 without Host", fd, "GET /echo HTTP/1.0\r\n\r\n", "L=0");
}

/* Every reply says nosniff: a success, an error of the server's, a 404. */
static void nosniff(void **state)
{
    (void)state;
    char buf[8192];
    const char *reqs[] = { "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
                           "GET /echo HTTP/1.1\r\n\r\n" };
    for (size_t i = 0; i < CM_ARRAY_LEN(reqs); i++) {
        int fd = xconnect(port);
        xsend(fd, reqs[i]);
        assert_true(response(fd, buf, sizeof(buf), 2000) > 0);
        if (!strstr(buf, "\r\nX-Content-Type-Options: nosniff\r\n"))
            fail_msg("no nosniff in %.300s", buf);
    }
}

/* The pre hook runs at the end of the head: a refused request gets its 401
 * before it sends its body, no 100 Continue, and the body is never stored. */
static void auth_before_body(void **state)
{
    (void)state;
    char buf[8192];
    atomic_store(&handled, 0);
    atomic_store(&pre_body, 0);
    int fd = xconnect(port);
    xsend(fd, "POST /secret HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    assert_int_equal(response(fd, buf, sizeof(buf), 1000), 401); /* no body sent at all */
    assert_non_null(strstr(buf, "Connection: close"));
    assert_true(closes(fd, 3000)); /* after the lingering close */

    fd = xconnect(port);
    xsend(fd, "POST /secret HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(response(fd, buf, sizeof(buf), 1000), 401); /* the first reply: not a 100 */

    fd = xconnect(port);
    xsend(fd, "POST /secret HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(response(fd, buf, sizeof(buf), 1000), 401);
    assert_int_equal(atomic_load(&handled), 0);

    /* allowed: 100 Continue, then the body, then the handler */
    fd = xconnect(port);
    xsend(fd, "POST /secret HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\nContent-Length: 4\r\n"
              "Expect: 100-continue\r\n\r\n");
    assert_int_equal(response(fd, buf, sizeof(buf), 1000), 100);
    ok("authorized body", fd, "abcd", "L=4 B=abcd");
    assert_int_equal(atomic_load(&pre_body), 0);
}

/* A route's own limit: 413 from Content-Length at once, and for a chunked body. */
static void route_body_limit(void **state)
{
    (void)state;
    refused("CL 101 on a 100-byte route", "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", 413);
    char req[512];
    char body[121];
    memset(body, 'x', 120);
    body[120] = '\0';
    snprintf(req, sizeof(req), "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n78\r\n%s\r\n0\r\n\r\n", body);
    refused("chunked 120 on a 100-byte route", req, 413);
    int fd = xconnect(port);
    ok("CL 100 on a 100-byte route", fd, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
       "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
       "L=100");
    /* the server's own limit (max_body 8192) still holds elsewhere */
    refused("CL 9000 on /echo", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\n", 413);
}

/* The budget (6000 bytes) is shared by all connections: a body that would
 * pass it waits for none, it gets 503 with Retry-After; freed, it is back. */
static void body_budget(void **state)
{
    (void)state;
    char buf[8192];
    int a = xconnect(port);
    xsend(a, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\nabc"); /* holds 4001 */
    usleep(100000);
    int b = xconnect(port);
    xsend(b, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n");
    assert_int_equal(response(b, buf, sizeof(buf), 1000), 503);
    assert_non_null(strstr(buf, "\r\nRetry-After: 1\r\n"));
    assert_non_null(strstr(buf, "\"server_busy\""));
    char rest[4000];
    memset(rest, 'r', sizeof(rest) - 4);
    rest[sizeof(rest) - 4] = '\0'; /* 3996 + the 3 sent */
    xsend(a, rest);
    xsend(a, "z");
    assert_int_equal(response(a, buf, sizeof(buf), 2000), 200);
    int c = xconnect(port);
    char req[8192];
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n%sabcz", rest);
    ok("budget back after the first body", c, req, "L=4000");
}

/* srv_t: header timeout 1 s, keep-alive 3 s. */
static void header_and_keepalive_timeouts(void **state)
{
    (void)state;
    char buf[4096];
    uint64_t t0 = cm_now_ms();
    int silent = xconnect(port_t);
    int partial = xconnect(port_t);
    xsend(partial, "GET /echo HTTP/1.1\r\nHost: x\r\n"); /* never ends its head */
    int ka = xconnect(port_t);
    ok("keep-alive request", ka, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "L=0");
    assert_int_equal(response(partial, buf, sizeof(buf), 2500), 408);
    assert_true(closes(silent, 2500));
    int took = (int)(cm_now_ms() - t0);
    if (took < 800 || took > 2500)
        fail_msg("silent connection closed after %d ms (header timeout 1 s)", took);
    /* the kept-alive connection outlives the header timeout... */
    assert_false(closes(ka, 800));
    ok("second request on it", ka, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "L=0");
    /* ...and closes after the keep-alive one */
    uint64_t t1 = cm_now_ms();
    assert_true(closes(ka, 5000));
    took = (int)(cm_now_ms() - t1);
    if (took < 2500)
        fail_msg("keep-alive connection closed after %d ms (keep-alive 3 s)", took);
}

/* srv_t: 3 connections per address; the fourth gets 503 and a close. */
static void per_address_cap(void **state)
{
    (void)state;
    char buf[4096];
    int a = xconnect(port_t);
    int b = xconnect(port_t);
    int b2 = xconnect(port_t);
    ok("first", a, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    ok("second", b, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    ok("third", b2, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    int c = xconnect(port_t);
    xsend(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(response(c, buf, sizeof(buf), 1000), 503);
    assert_non_null(strstr(buf, "too_many_connections"));
    assert_true(closes(c, 3000));
    close(a);
    fds[0] = -1;
    usleep(100000);
    int d = xconnect(port_t);
    ok("after one left", d, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
}

static int setup(void **state)
{
    (void)state;
    cm_util_init();
    char err[256];
    cm_http_server_opts_t o = {
        .host = "127.0.0.1", .workers = 2, .max_body = 8192, .max_headers = 8192, .timeout_secs = 5,
        .routes = routes, .nroutes = CM_ARRAY_LEN(routes), .route_max_body = route_max_body, .pre = pre,
        .body_budget = 6000,
    };
    if (cm_http_server_start(&o, &srv, err, sizeof(err)) != 0)
        return -1;
    port = cm_http_server_port(srv);
    o.header_timeout_secs = 1;
    o.keepalive_timeout_secs = 3;
    o.max_conns_per_ip = 3;
    o.body_budget = 0;
    if (cm_http_server_start(&o, &srv_t, err, sizeof(err)) != 0)
        return -1;
    port_t = cm_http_server_port(srv_t);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(srv);
    cm_http_server_free(srv_t);
    return 0;
}

#define T(f) cmocka_unit_test_teardown(f, close_all)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(lenient_framing), T(pipelined_framing), T(head_rules), T(nosniff), T(auth_before_body),
        T(route_body_limit), T(body_budget), T(header_and_keepalive_timeouts), T(per_address_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
