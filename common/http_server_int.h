/* Private to http_server.c, http_conn.c and http_reply.c: the server's
 * workers, its connections and its requests.
 *
 * A connection is one accepted socket with two libevent events (read, and
 * write while output is queued) and an http_parser. Requests on it are taken
 * one at a time: the parser is paused at each request's end, the request is
 * handed to the application, and the bytes after it (pipelined requests) wait
 * until its reply has gone out. */
#ifndef CM_HTTP_SERVER_INT_H
#define CM_HTTP_SERVER_INT_H

#include "closer.h"
#include "http_server.h"

#include <arpa/inet.h>
#include <event2/keyvalq_struct.h>
#include <http_parser.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#define HS_MAX_PARAMS 4
#define HS_MAX_HEADERS 100 /* request headers; more get 431 */
#define HS_IP_BUCKETS 256  /* the per-address connection table (max_conns_per_ip) */

typedef struct hs_conn hs_conn_t;

typedef struct hs_worker {
    cm_http_server_t *srv;
    int index;
    struct event_base *base;
    cm_closer_t *closer; /* connections' descriptors, closed a turn later */
    int fd;
    struct event *keep;
    struct evconnlistener *listener;
    struct event *accept_retry; /* re-enables the listener after EMFILE & co */
    uint64_t accept_warned_ms;
    pthread_t thread;
    uint64_t next_id;
    LIST_HEAD(, hs_conn) conns; /* every open connection, for the final free */
} hs_worker_t;

/* Open connections of one client address (max_conns_per_ip). */
typedef struct hs_ipent {
    struct hs_ipent *next;
    unsigned char addr[16];
    uint8_t len;
    int count;
} hs_ipent_t;

struct cm_http_server {
    cm_http_server_opts_t opts;
    /* per route: its first path segment as a key (seg_key), 0 when that
     * segment holds a parameter; a route whose key differs from the
     * request's cannot match, so hs_route skips it without a compare */
    uint32_t *route_keys;
    hs_worker_t *workers;
    int nworkers;
    int port;
    atomic_int stopping; /* set from a signal handler, read by the workers (lock-free) */
    bool started;
    /* body bytes buffered by every worker's requests (opts.body_budget) */
    atomic_size_t body_used;
    atomic_bool trim_armed; /* a burst went by: give the memory back once drained */
    /* connections per client address, shared by the workers (only when
     * opts.max_conns_per_ip > 0; held for a hash lookup, nothing more) */
    pthread_mutex_t ip_lock;
    hs_ipent_t *ip_buckets[HS_IP_BUCKETS];
};

struct cm_http_req {
    hs_conn_t *c; /* NULL once finished or once the client is gone */
    hs_worker_t *w;
    const char *method;
    char *path; /* decoded */
    bool path_owned; /* else it points into head or is a literal */
    /* the request head as received: the URL, then name and value of each
     * header, each NUL-terminated; hdr[] holds their offsets */
    char *head;
    size_t head_len, head_cap;
    uint32_t hdr[HS_MAX_HEADERS][2];
    int nhdr;
    bool in_value;  /* the parser's last header piece was a value */
    bool head_done; /* headers complete (a chunked body's trailers are ignored) */
    char *query_str;
    struct evkeyvalq query;
    bool query_parsed;
    char *body;
    size_t body_len, body_cap;
    size_t max_body;     /* this request's limit (the route's or the server's) */
    size_t budget_held;  /* bytes of body_cap counted in the server's body_used */
    const cm_http_route_t *route; /* set once routed (NULL: the fallback runs) */
    bool routed;         /* route lookup and pre hook done (at the head, for a body) */
    bool expect_continue; /* Expect: 100-continue */
    const char *pnames[HS_MAX_PARAMS];
    size_t pname_len[HS_MAX_PARAMS];
    char *pvals[HS_MAX_PARAMS];
    int nparams;
    char peer[INET6_ADDRSTRLEN]; /* the client's address, kept after it left */
    char id[48]; /* "req-" + worker (<= 3 digits) + 2 x ("-" + <= 16 hex) + NUL fits */
    void *user;
    void (*user_free)(void *);
    char *xh; /* reply headers the application added, "Name: value\r\n" each */
    size_t xh_len, xh_cap;
    bool http10, keep_alive, is_head;
    bool closed, streaming, finished, in_handler;
    void (*on_close)(cm_http_req_t *, void *);
    void *on_close_arg;
    void (*on_drain)(cm_http_req_t *, void *);
    void *on_drain_arg;
};

enum hs_state {
    HS_IDLE,     /* between requests */
    HS_READING,  /* part of a request's head or body is in */
    HS_HANDLING, /* the application owns the request */
    HS_LINGER,   /* replied and shut down our side; reading until the client closes */
};

struct hs_conn {
    hs_worker_t *w;
    int fd;
    struct event *rev, *wev;
    http_parser p;
    enum hs_state state;
    cm_http_req_t *req;  /* being read or handled */
    char *pending;       /* received, not yet parsed (pipelined) */
    size_t npending;
    struct evbuffer *out; /* queued output the socket did not take yet */
    uint64_t started_ms;  /* the current request's first byte */
    uint64_t last_ms;     /* the last request's end (idle timeout) */
    uint64_t accept_ms;   /* first byte due within the header timeout of this */
    uint64_t head_due_ms; /* the current request's head must be complete by then */
    unsigned nreq;        /* requests begun on this connection */
    size_t head_bytes;    /* of the current request's head */
    char peer[INET6_ADDRSTRLEN];
    unsigned char ip[16]; /* the client's address, binary (per-address cap) */
    uint8_t iplen;
    bool ip_counted;      /* counted in the server's per-address table */
    /* strict framing: raw bytes checked ahead of http_parser (http_conn.c) */
    uint8_t scan, scan_next;
    bool scan_cr;         /* the last byte scanned was CR */
    bool scan_te;         /* the head has (or may have) a Transfer-Encoding line */
    bool answered;        /* a parser callback answered the request (refused at its head) */
    uint8_t chunk_digits; /* of the chunk size being scanned */
    uint64_t chunk_left;  /* of the chunk being scanned */
    bool head_paused;     /* the parser stopped at the end of a head with a body */
    int err_status;       /* a protocol error seen by a parser callback */
    const char *err_msg;  /* its message (NULL: the parser's) */
    bool close_after;     /* close once the output has gone */
    bool rev_off;         /* reading stopped (pipelined bytes piling up) */
    bool write_failed;
    bool in_io, dead;     /* inside this connection's callbacks; freed when they return */
    LIST_ENTRY(hs_conn) link; /* hs_worker_t.conns */
};

/* http_conn.c */
void hs_conn_accept(hs_worker_t *w, int fd, const struct sockaddr *sa);
/* Sends iov now, queueing what the socket does not take. */
void hs_conn_send(hs_conn_t *c, struct iovec *iov, int n);
/* Queues length bytes of the file fd from offset after what is queued,
 * sent with sendfile (now, as far as the socket takes it, then on
 * writability). Takes fd: closed when sent, on error, or with the
 * connection. */
void hs_conn_send_file(hs_conn_t *c, int fd, uint64_t offset, uint64_t length);
/* The connection's request is finished: go on with the next one. */
void hs_conn_request_done(hs_conn_t *c);
size_t hs_conn_pending(const hs_conn_t *c);
/* Closes at once, telling an unfinished request's owner (server stop). */
void hs_conn_free_all(hs_worker_t *w);

/* http_server.c */
cm_http_req_t *hs_req_new(hs_conn_t *c);
void hs_req_free(cm_http_req_t *req);
void hs_dispatch(cm_http_req_t *req);
/* Sets the request id, finds the route and runs the pre hook. False when the
 * request was answered (404, 405, 400 path, or the pre hook's refusal): it is
 * then finished and freed. */
bool hs_route(cm_http_req_t *req);
/* Counts n more body bytes against the server's budget; false when over it. */
bool hs_budget_take(cm_http_server_t *srv, size_t n);
void hs_budget_put(cm_http_server_t *srv, size_t n);
/* The per-address connection cap: false when this address has too many. */
bool hs_ip_acquire(cm_http_server_t *srv, const unsigned char *addr, size_t len);
void hs_ip_release(cm_http_server_t *srv, const unsigned char *addr, size_t len);
/* Answers a request that cannot be parsed (400, 408, 413, 431) and closes. */
void hs_protocol_error(hs_conn_t *c, int status, const char *code, const char *msg);

/* http_reply.c */
/* Marks the request finished and detaches it from its connection; frees it
 * unless its handler is still on the stack. */
void hs_req_finish(cm_http_req_t *req);

/* The framing scanner's states (hs_conn_t.scan); see hs_strict_scan(). */
enum {
    SC_START,      /* before a request line: empty lines (CRLF) are skipped */
    SC_START_LF,   /* CR of such an empty line seen */
    SC_LINE,       /* in the request line or a header line */
    SC_LINE_START, /* at the first byte of a header line */
    SC_END_LF,     /* CR of the head's blank line seen */
    SC_HEAD_END,   /* the head ended; its last LF is handed to the parser again */
    SC_NONE,       /* a Content-Length body: nothing to check */
    SC_CSIZE,      /* chunk size digits */
    SC_CSIZE_WS,   /* whitespace after them: only before an extension */
    SC_CEXT,       /* a chunk extension, to its CR */
    SC_CSIZE_LF,   /* CR after the size line */
    SC_CDATA,      /* chunk_left bytes of data */
    SC_CDATA_CR,   /* CRLF after them */
    SC_CDATA_LF,
    SC_TSTART,     /* the first byte of a trailer line (or of the final CRLF) */
    SC_TLINE,      /* a trailer line */
    SC_TEND_LF,    /* CR of the final CRLF seen */
};

/* Checks data[0..len) of connection c ahead of http_parser (http_strict.c):
 * the bytes the parser may take now, or 0 with *why set (the request is not
 * strict HTTP/1.1: answer 400). Its state lives in c (scan, scan_next, ...). */
size_t hs_strict_scan(hs_conn_t *c, const char *data, size_t len, const char **why);

#endif
