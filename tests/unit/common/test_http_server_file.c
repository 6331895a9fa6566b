/* Tests cm_http_reply_file (common/http_reply.c, http_conn.c) against a real
 * server over raw TCP sockets on 127.0.0.1: a whole file, ranges given by the
 * handler, HEAD (files and every other reply), keep-alive and pipelining
 * after a file, HTTP/1.0, a client leaving halfway (its file descriptor
 * closed: open descriptors counted), a slow client while the loop serves
 * others, a client that stops reading (disconnected after the write
 * timeout), a file cut short, and memory that stays flat over a 1 GiB sparse
 * file and 16 concurrent downloads. Every read is bounded by a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_server.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_LEN (1u << 20)            /* "small": a patterned file, compared byte for byte */
#define BIG_LEN ((uint64_t)64 << 20)    /* "big": sparse */
#define HUGE_LEN ((uint64_t)1 << 30)    /* "huge": sparse, 1 GiB */
#define SHORT_LEN 1000                  /* "short": asked for more than it holds */
#define WRITE_TIMEOUT_S 2               /* the server's timeout_secs */
#define RESP_MS 3000

static cm_http_server_t *srv;
static int port;
static char dir[256];

/* ---- handlers ---- */

static uint64_t query_u64(cm_http_req_t *req, const char *name, uint64_t dflt)
{
    const char *v = cm_http_req_query(req, name);
    return v ? strtoull(v, NULL, 10) : dflt;
}

/* GET /file/:name?off=&len=&status=: the file from dir, whole by default */
static void h_file(cm_http_req_t *req, void *ud)
{
    (void)ud;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, cm_http_req_param(req, "name"));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        cm_http_reply_error(req, 404, NULL, "not_found", NULL, "no such file");
        return;
    }
    uint64_t off = query_u64(req, "off", 0);
    uint64_t len = query_u64(req, "len", (uint64_t)st.st_size - off);
    int status = (int)query_u64(req, "status", 200);
    cm_http_add_header(req, "X-File", "1");
    cm_http_reply_file(req, status, "application/octet-stream", fd, off, len);
}

static void h_ok(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply(req, 200, "text/plain", "ok", 2);
}

static void h_stream(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_stream_start(req, 200, "text/plain");
    cm_http_stream_write(req, "hello", 5);
    cm_http_stream_end(req);
}

static void h_err(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 404, NULL, "nothing_here", NULL, "Nothing here");
}

/* replies, then hands a file to the finished request: the fd must be closed */
static void h_late_file(cm_http_req_t *req, void *ud)
{
    (void)ud;
    char path[512];
    snprintf(path, sizeof(path), "%s/small", dir);
    cm_http_reply(req, 200, "text/plain", "ok", 2);
    cm_http_reply_file(req, 200, NULL, open(path, O_RDONLY | O_CLOEXEC), 0, 10);
}

static const cm_http_route_t routes[] = {
    { "GET", "/file/:name", h_file, 0 },
    { "GET", "/ok", h_ok, 0 },
    { "GET", "/stream", h_stream, 0 },
    { "GET", "/err", h_err, 0 },
    { "GET", "/late", h_late_file, 0 },
};

/* ---- client side ---- */

static unsigned char small_byte(uint64_t i) { return (unsigned char)(i * 7 + i / 251); }

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* Waits (bounded) for the open descriptors to come back to want or below:
 * the server closes a connection's socket a loop turn after it ends
 * (closer.c), so a previous test's last socket may still have been open
 * when want was counted, and be gone now. More than want is a leak. */
static void expect_fds(int want, const char *what)
{
    uint64_t end = cm_now_ms() + 3000;
    int n;
    while ((n = open_fds()) > want && cm_now_ms() < end)
        usleep(10000);
    if (n > want)
        fail_msg("%s: %d open descriptors, want %d (a file or socket leaked)", what, n, want);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

typedef struct {
    int fd;
    char in[65536];
    size_t len;
} conn_t;

static conn_t *conn_open_rcvbuf(int rcvbuf)
{
    conn_t *c = cm_xcalloc(1, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) /* before connect: the window is agreed at the handshake */
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return c;
}

static conn_t *conn_open(void) { return conn_open_rcvbuf(0); }

static void conn_close(conn_t *c)
{
    close(c->fd);
    free(c);
}

static void send_str(conn_t *c, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(send(c->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* One recv into c->in within the deadline: bytes, 0 at EOF (or a reset), -2 on timeout. */
static ssize_t fill(conn_t *c, uint64_t deadline)
{
    int64_t left = (int64_t)deadline - (int64_t)cm_now_ms();
    struct pollfd p = { c->fd, POLLIN, 0 };
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
        return -2;
    ssize_t k = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);
    if (k < 0)
        return 0;
    c->len += (size_t)k;
    return k;
}

static void consume(conn_t *c, size_t n)
{
    memmove(c->in, c->in + n, c->len - n);
    c->len -= n;
}

typedef struct {
    int status;
    char head[4096];
    int64_t clen; /* -1: none */
} head_t;

static const char *hdr(const head_t *h, const char *name)
{
    static char val[512];
    size_t n = strlen(name);
    for (const char *p = strstr(h->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r");
            snprintf(val, sizeof(val), "%.*s", (int)k, v);
            return val;
        }
    }
    return NULL;
}

static void read_head(conn_t *c, head_t *h)
{
    uint64_t deadline = cm_now_ms() + RESP_MS;
    char *end;
    while (!(end = memmem(c->in, c->len, "\r\n\r\n", 4)))
        if (fill(c, deadline) <= 0)
            fail_msg("no reply head in time (%zu bytes: \"%.60s\")", c->len, c->len ? c->in : "");
    size_t hl = (size_t)(end - c->in) + 4;
    assert_true(hl < sizeof(h->head));
    memcpy(h->head, c->in, hl);
    h->head[hl] = '\0';
    consume(c, hl);
    assert_int_equal(sscanf(h->head, "HTTP/1.1 %d", &h->status), 1);
    const char *cl = hdr(h, "Content-Length");
    h->clen = cl ? strtoll(cl, NULL, 10) : -1;
}

/* Reads n body bytes; check(i, byte) per byte when given. Returns the bytes
 * read before EOF or the deadline. */
static uint64_t read_body(conn_t *c, uint64_t n, const unsigned char *want, int ms)
{
    uint64_t deadline = cm_now_ms() + (uint64_t)ms, got = 0;
    while (got < n) {
        if (c->len == 0 && fill(c, deadline) <= 0)
            break;
        size_t k = c->len < n - got ? c->len : (size_t)(n - got);
        if (want && memcmp(c->in, want + got, k) != 0)
            fail_msg("body differs from the file within bytes %llu..%llu", (unsigned long long)got,
                     (unsigned long long)(got + k));
        consume(c, k);
        got += k;
    }
    return got;
}

static unsigned char *small;

static void expect_ok(conn_t *c)
{
    head_t h;
    read_head(c, &h);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.clen, 2);
    assert_int_equal(read_body(c, 2, (const unsigned char *)"ok", RESP_MS), 2);
}

/* ---- tests ---- */

/* The whole file, then a range given by the handler (206), on one
 * kept-alive connection, then another request on it. */
static void whole_and_range(void **state)
{
    (void)state;
    int fds = open_fds();
    conn_t *c = conn_open();
    send_str(c, "GET /file/small HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(c, &h);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.clen, SMALL_LEN);
    assert_string_equal(hdr(&h, "Content-Type"), "application/octet-stream");
    assert_string_equal(hdr(&h, "X-File"), "1");
    assert_null(hdr(&h, "Connection"));
    assert_int_equal(read_body(c, SMALL_LEN, small, RESP_MS), SMALL_LEN);

    send_str(c, "GET /file/small?off=1000&len=5000&status=206 HTTP/1.1\r\nHost: x\r\n\r\n");
    read_head(c, &h);
    assert_int_equal(h.status, 206);
    assert_int_equal(h.clen, 5000);
    assert_int_equal(read_body(c, 5000, small + 1000, RESP_MS), 5000);

    send_str(c, "GET /file/small?off=1048575&len=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    read_head(c, &h);
    assert_int_equal(h.clen, 1);
    assert_int_equal(read_body(c, 1, small + SMALL_LEN - 1, RESP_MS), 1);

    send_str(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"); /* keep-alive after the files */
    expect_ok(c);
    conn_close(c);
    expect_fds(fds, "after whole and ranged files");
}

/* Pipelined: a file and a small reply sent at once come back in order. */
static void pipelined(void **state)
{
    (void)state;
    conn_t *c = conn_open();
    send_str(c, "GET /file/small HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /file/small?off=5&len=10 HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(c, &h);
    assert_int_equal(h.clen, SMALL_LEN);
    assert_int_equal(read_body(c, SMALL_LEN, small, RESP_MS), SMALL_LEN);
    expect_ok(c);
    read_head(c, &h);
    assert_int_equal(read_body(c, 10, small + 5, RESP_MS), 10);
    conn_close(c);
}

/* HEAD: the head GET would have, no body byte, for a file, a plain reply,
 * an error and a stream; the file's descriptor is closed at once. */
static void head_requests(void **state)
{
    (void)state;
    int fds = open_fds();
    conn_t *c = conn_open();
    send_str(c, "HEAD /file/small HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(c, &h);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.clen, SMALL_LEN);
    expect_ok(c); /* the next reply follows the head at once: no body came between */

    send_str(c, "HEAD /ok HTTP/1.1\r\nHost: x\r\n\r\nHEAD /err HTTP/1.1\r\nHost: x\r\n\r\n"
                "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    read_head(c, &h);
    assert_int_equal(h.clen, 2);
    read_head(c, &h);
    assert_int_equal(h.status, 404);
    assert_true(h.clen > 0);
    assert_string_equal(hdr(&h, "Content-Type"), "application/json");
    read_head(c, &h);
    assert_int_equal(h.status, 200);
    assert_string_equal(hdr(&h, "Transfer-Encoding"), "chunked");
    expect_ok(c); /* no chunk, no last chunk after the stream's head */
    conn_close(c);
    expect_fds(fds, "after HEAD requests");
}

/* 304 (and any bodiless status) sends the head only and closes the file;
 * a file handed to a finished request is closed too. */
static void bodiless_and_finished(void **state)
{
    (void)state;
    int fds = open_fds();
    conn_t *c = conn_open();
    send_str(c, "GET /file/small?status=304 HTTP/1.1\r\nHost: x\r\n\r\nGET /late HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(c, &h);
    assert_int_equal(h.status, 304);
    assert_int_equal(h.clen, -1);
    expect_ok(c); /* /late: its own reply */
    expect_ok(c);
    conn_close(c);
    expect_fds(fds, "after 304 and a file for a finished request");
}

/* HTTP/1.0: the whole file, then the server closes. */
static void http10(void **state)
{
    (void)state;
    conn_t *c = conn_open();
    send_str(c, "GET /file/small HTTP/1.0\r\n\r\n");
    head_t h;
    c->len = 0;
    uint64_t deadline = cm_now_ms() + RESP_MS;
    while (!memmem(c->in, c->len, "\r\n\r\n", 4))
        assert_true(fill(c, deadline) > 0);
    /* re-parse the 1.0 reply's head (sent as HTTP/1.1, Connection: close) */
    read_head(c, &h);
    assert_string_equal(hdr(&h, "Connection"), "close");
    assert_int_equal(read_body(c, SMALL_LEN, small, RESP_MS), SMALL_LEN);
    assert_int_equal(fill(c, cm_now_ms() + RESP_MS), 0); /* EOF */
    conn_close(c);
}

/* A client that leaves halfway: the file's descriptor and the socket go. */
static void client_leaves(void **state)
{
    (void)state;
    int fds = open_fds();
    for (int i = 0; i < 4; i++) {
        conn_t *c = conn_open_rcvbuf(16384);
        send_str(c, "GET /file/big HTTP/1.1\r\nHost: x\r\n\r\n");
        head_t h;
        read_head(c, &h);
        assert_int_equal(h.clen, (int64_t)BIG_LEN);
        assert_true(read_body(c, 100000 * (uint64_t)(i + 1), NULL, RESP_MS) > 0);
        if (i % 2) { /* a reset rather than a FIN */
            struct linger l = { 1, 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        conn_close(c);
    }
    expect_fds(fds, "after clients left halfway");
    conn_t *c = conn_open();
    send_str(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_ok(c);
    conn_close(c);
}

/* A client reading slowly does not hold the loop (one worker): others are
 * answered meanwhile, and it still gets the whole file. */
static void slow_client(void **state)
{
    (void)state;
    conn_t *slow = conn_open_rcvbuf(16384);
    send_str(slow, "GET /file/big HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(slow, &h);
    assert_int_equal(h.clen, (int64_t)BIG_LEN);
    uint64_t got = read_body(slow, 65536, NULL, RESP_MS);
    for (int i = 0; i < 20; i++) {
        uint64_t t0 = cm_now_ms();
        conn_t *c = conn_open();
        send_str(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
        expect_ok(c);
        conn_close(c);
        if (cm_now_ms() - t0 > 1000)
            fail_msg("a request took %llu ms while a slow download was open",
                     (unsigned long long)(cm_now_ms() - t0));
        got += read_body(slow, 4096, NULL, RESP_MS); /* a little at a time */
    }
    got += read_body(slow, BIG_LEN - got, NULL, 30000);
    assert_int_equal(got, BIG_LEN);
    send_str(slow, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"); /* still kept alive */
    expect_ok(slow);
    conn_close(slow);
}

/* A client that stops reading is cut after the write timeout, and its file
 * descriptor closed. */
static void stuck_client(void **state)
{
    (void)state;
    int fds = open_fds();
    conn_t *c = conn_open_rcvbuf(16384);
    send_str(c, "GET /file/big HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(c, &h);
    int server_side = open_fds() - fds - 1; /* our socket aside: theirs and the file */
    assert_true(server_side >= 1);
    sleep(WRITE_TIMEOUT_S + 2);
    /* the server is gone from the connection: reading ends well before 64 MiB */
    uint64_t got = read_body(c, BIG_LEN, NULL, 5000);
    assert_true(got < BIG_LEN);
    conn_close(c);
    expect_fds(fds, "after a stuck client");
}

/* A file shorter than the length the handler gave: the client gets what
 * there is and the connection ends (the head promised more); the loop does
 * not spin on it. */
static void file_cut_short(void **state)
{
    (void)state;
    int fds = open_fds();
    struct rusage r0, r1;
    conn_t *c = conn_open();
    send_str(c, "GET /file/short?len=100000 HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(c, &h);
    assert_int_equal(h.clen, 100000);
    assert_int_equal(read_body(c, 100000, NULL, RESP_MS), SHORT_LEN);
    conn_close(c);
    expect_fds(fds, "after a short file");
    getrusage(RUSAGE_SELF, &r0);
    usleep(300000);
    getrusage(RUSAGE_SELF, &r1);
    long us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
              (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
    assert_true(us < 100000); /* idle: well under a third of the time */
}

/* 1 GiB from a sparse file: the server's memory does not follow the size. */
static void huge_sparse(void **state)
{
    (void)state;
    long before = rss_kb(), peak = before;
    conn_t *c = conn_open();
    send_str(c, "GET /file/huge HTTP/1.1\r\nHost: x\r\n\r\n");
    head_t h;
    read_head(c, &h);
    assert_int_equal(h.clen, (int64_t)HUGE_LEN);
    uint64_t got = 0;
    while (got < HUGE_LEN) {
        uint64_t k = read_body(c, 32u << 20, NULL, 30000);
        if (k == 0)
            break;
        got += k;
        long now = rss_kb();
        peak = now > peak ? now : peak;
    }
    assert_int_equal(got, HUGE_LEN);
    expect_ok((send_str(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"), c));
    conn_close(c);
    print_message("1 GiB file: RSS %ld KiB before, peak %ld KiB\n", before, peak);
    if (peak - before > 16 * 1024)
        fail_msg("RSS grew by %ld KiB while sending 1 GiB", peak - before);
}

/* 16 downloads at once: memory stays flat, every one completes. */
static void concurrent(void **state)
{
    (void)state;
    enum { N = 16 };
    long before = rss_kb(), peak = before;
    conn_t *c[N];
    uint64_t got[N] = { 0 };
    bool headed[N] = { false };
    for (int i = 0; i < N; i++) {
        c[i] = conn_open();
        send_str(c[i], "GET /file/big HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    uint64_t deadline = cm_now_ms() + 60000;
    int done = 0;
    while (done < N && cm_now_ms() < deadline) {
        struct pollfd p[N];
        for (int i = 0; i < N; i++)
            p[i] = (struct pollfd){ got[i] < BIG_LEN ? c[i]->fd : -1, POLLIN, 0 };
        if (poll(p, N, 1000) <= 0)
            continue;
        for (int i = 0; i < N; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (fill(c[i], cm_now_ms() + 1000) <= 0)
                fail_msg("download %d ended at %llu bytes", i, (unsigned long long)got[i]);
            if (!headed[i]) {
                if (!memmem(c[i]->in, c[i]->len, "\r\n\r\n", 4))
                    continue;
                head_t h;
                read_head(c[i], &h);
                assert_int_equal(h.clen, (int64_t)BIG_LEN);
                headed[i] = true;
            }
            got[i] += c[i]->len;
            c[i]->len = 0;
            if (got[i] == BIG_LEN)
                done++;
        }
        long now = rss_kb();
        peak = now > peak ? now : peak;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(got[i], BIG_LEN);
        conn_close(c[i]);
    }
    print_message("16 x 64 MiB: RSS %ld KiB before, peak %ld KiB\n", before, peak);
    if (peak - before > 16 * 1024)
        fail_msg("RSS grew by %ld KiB with 16 downloads", peak - before);
}

/* ---- fixtures ---- */

static void make_file(const char *name, uint64_t size, const unsigned char *data)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    if (data)
        assert_int_equal(write(fd, data, (size_t)size), (ssize_t)size);
    else
        assert_int_equal(ftruncate(fd, (off_t)size), 0); /* sparse */
    close(fd);
}

static int setup(void **state)
{
    (void)state;
    cm_util_init();
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/llmr-file-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    small = cm_xmalloc(SMALL_LEN);
    for (uint64_t i = 0; i < SMALL_LEN; i++)
        small[i] = small_byte(i);
    make_file("small", SMALL_LEN, small);
    make_file("short", SHORT_LEN, small);
    make_file("big", BIG_LEN, NULL);
    make_file("huge", HUGE_LEN, NULL);
    cm_http_server_opts_t o = {
        .host = "127.0.0.1", .port = 0, .workers = 1, .max_body = 1024, .max_headers = 8192,
        .timeout_secs = WRITE_TIMEOUT_S, .keepalive_timeout_secs = 30,
        .routes = routes, .nroutes = CM_ARRAY_LEN(routes),
    };
    char err[256];
    if (cm_http_server_start(&o, &srv, err, sizeof(err)) != 0)
        return -1;
    port = cm_http_server_port(srv);
    return port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(srv);
    const char *names[] = { "small", "short", "big", "huge" };
    char path[512];
    for (size_t i = 0; i < CM_ARRAY_LEN(names); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    free(small);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_and_range),   cmocka_unit_test(pipelined),
        cmocka_unit_test(head_requests),     cmocka_unit_test(bodiless_and_finished),
        cmocka_unit_test(http10),            cmocka_unit_test(client_leaves),
        cmocka_unit_test(slow_client),       cmocka_unit_test(stuck_client),
        cmocka_unit_test(file_cut_short),    cmocka_unit_test(huge_sparse),
        cmocka_unit_test(concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
