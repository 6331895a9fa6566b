/* http_server: the HTTP/1.1 server shared by the router and the node
 * (libevent loops, http_parser for the requests).
 *
 * One event loop per worker thread, each with its own listening socket on the
 * same port (SO_REUSEPORT: the kernel spreads connections). A route table maps
 * (method, path pattern) to handlers; ":name" matches one path segment and a
 * final "*name" matches the rest; HEAD uses the GET route when it has none.
 * Limits and timeouts are the server's, answered in OpenAI's error shape and
 * followed by closing the connection: 400 for what does not parse or is
 * framed leniently (bare LF line ends, obs-fold, whitespace before a header's
 * colon, chunk framing that is not exactly RFC 9112's, HTTP/1.1 without one
 * Host, two Authorization headers), 505 for an HTTP version other than 1.0
 * and 1.1, 417 for an Expect other than 100-continue, 413 for a body over the
 * route's limit (at once, from Content-Length), 503 when the server's budget
 * of buffered body bytes is spent, 431 for a head over max_headers, 408 for a
 * head not complete header_timeout_secs after it began or a request not
 * complete read_timeout_secs after its first byte. A connection that sends
 * nothing for header_timeout_secs after accept, or idles keep-alive for
 * keepalive_timeout_secs between requests, is closed; so is one whose client
 * stops reading a reply for timeout_secs. Pipelined requests are answered in
 * order. Every reply carries X-Content-Type-Options: nosniff.
 *
 * Requests with a body are routed and passed to the pre hook as soon as their
 * head is complete, before any body byte is buffered or 100 Continue is sent:
 * a request the hook (or routing, or a limit) refuses is answered and the
 * connection closed after a lingering close, its body read and dropped,
 * never stored. Requests without a body are routed when complete.
 *
 * Request lifetime: a handler either replies before returning or keeps the
 * request and finishes it later on the same loop thread. Every request must be
 * finished exactly once (cm_http_reply*, or cm_http_stream_end after
 * cm_http_stream_start), also after its client went away: the on_close
 * callback tells the owner to stop work, and finishing then frees it quietly. */
#ifndef CM_HTTP_SERVER_H
#define CM_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct event_base;

typedef struct cm_http_server cm_http_server_t;
typedef struct cm_http_req cm_http_req_t;

typedef void (*cm_http_handler_fn)(cm_http_req_t *req, void *ud);

typedef struct {
    const char *method; /* "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD" */
    const char *path;   /* "/api/nodes/:id/logs", or "/dashboard/" + "*path" */
    cm_http_handler_fn fn;
    int policy;         /* opaque here: handed to the pre hook (authorization) */
} cm_http_route_t;

/* Runs before each matched handler, once per request, on the loop thread.
 * For a request with a body it runs when the head is complete and before
 * any of the body is read: headers, method, path, params, peer and id are
 * set, cm_http_req_body is still empty (the hook must not judge the body).
 * Return true to go on (the body is read, then the handler runs); return
 * false after replying (e.g. 401): the request is then finished, and when
 * it had a body the connection closes after the reply. The hook must reply
 * synchronously before returning false. */
typedef bool (*cm_http_pre_fn)(cm_http_req_t *req, const cm_http_route_t *route, void *ud);

typedef struct {
    const char *host;          /* bind address */
    int port;                  /* 0: an ephemeral port (see cm_http_server_port) */
    int workers;               /* event loops / threads (<= 0: 1) */
    size_t max_body;           /* bytes; larger bodies get 413 (routes may set their own) */
    size_t max_headers;        /* bytes of request line + headers */
    int timeout_secs;          /* write timeout, and keep-alive idle when keepalive_timeout_secs <= 0 (<= 0: 60) */
    int read_timeout_secs;     /* a request's head and body, from its first byte (<= 0: timeout_secs) */
    /* HTTP limits (hardening) */
    int header_timeout_secs;   /* first byte after accept, and a whole head (<= 0: min(10, keep-alive)) */
    int keepalive_timeout_secs; /* idle between requests (<= 0: timeout_secs) */
    size_t body_budget;        /* bytes of request bodies buffered at once, all connections (0: no limit); 503 beyond */
    int max_conns_per_ip;      /* open connections per client address, all workers (0: no limit); 503 beyond */
    const cm_http_route_t *routes;
    size_t nroutes;
    /* optional: the body limit of routes[i] (bytes; 0: max_body), a column
     * kept apart so that route tables need not spell it out */
    const size_t *route_max_body;
    cm_http_pre_fn pre;        /* optional */
    cm_http_handler_fn fallback; /* optional: unmatched paths (default 404) */
    void *ud;                  /* handed to handlers, pre and the worker hooks */
    /* Per-loop setup/teardown on the worker's own thread (e.g. an HTTP client). */
    void (*worker_start)(struct event_base *base, int worker, void *ud);
    void (*worker_stop)(struct event_base *base, int worker, void *ud);
} cm_http_server_opts_t;

/* Binds and starts the worker threads. 0, or -1 with a message in err. The
 * opts' route table must outlive the server. */
int cm_http_server_start(const cm_http_server_opts_t *opts, cm_http_server_t **out,
                         char *err, size_t errlen);
int cm_http_server_port(const cm_http_server_t *srv);
/* Blocks until cm_http_server_stop() is called from any thread (or a signal
 * handler via cm_http_server_request_stop). */
void cm_http_server_wait(cm_http_server_t *srv);
/* Async-signal-safe: asks every loop to exit. */
void cm_http_server_request_stop(cm_http_server_t *srv);
/* Stops the loops, joins the threads and frees everything. NULL is a no-op. */
void cm_http_server_free(cm_http_server_t *srv);
/* The loop of worker i (for timers and clients owned by that worker). */
struct event_base *cm_http_server_base(cm_http_server_t *srv, int worker);

/* ---- the request ---- */
struct event_base *cm_http_req_base(cm_http_req_t *req);
int cm_http_req_worker(const cm_http_req_t *req);
const char *cm_http_req_method(const cm_http_req_t *req);
const char *cm_http_req_path(const cm_http_req_t *req);       /* decoded, no query */
const char *cm_http_req_param(const cm_http_req_t *req, const char *name); /* path ":name" */
/* Query parameter, decoded; NULL when absent. */
const char *cm_http_req_query(cm_http_req_t *req, const char *name);
const char *cm_http_req_header(const cm_http_req_t *req, const char *name);
/* The body, NUL-terminated (len excludes the NUL). Valid until finished. */
const char *cm_http_req_body(cm_http_req_t *req, size_t *len);
const char *cm_http_req_id(const cm_http_req_t *req);
const char *cm_http_req_peer(const cm_http_req_t *req);       /* client IP */
/* The connection's socket; -1 once the client is gone. */
int cm_http_req_fd(const cm_http_req_t *req);
/* Opaque slot for the pre hook (e.g. the authenticated principal); free_fn
 * (may be NULL) runs when the request is finished. */
void cm_http_req_set_user(cm_http_req_t *req, void *user, void (*free_fn)(void *));
void *cm_http_req_user(const cm_http_req_t *req);
bool cm_http_req_closed(const cm_http_req_t *req);
/* Called once if the client disconnects before the request is finished. */
void cm_http_req_on_close(cm_http_req_t *req, void (*cb)(cm_http_req_t *req, void *arg), void *arg);

/* ---- replies (each finishes the request) ---- */
void cm_http_add_header(cm_http_req_t *req, const char *name, const char *value);
void cm_http_reply(cm_http_req_t *req, int status, const char *content_type,
                   const void *body, size_t len);
/* A reply whose body is length bytes of the file fd from offset, sent
 * zero-copy: the head (status, content_type, Content-Length: length and the
 * headers given by cm_http_add_header) goes out in one write, then the body
 * with sendfile(2) straight from the page cache as the socket takes it.
 * What the socket does not take at once waits for writability on the
 * connection's loop (back-pressure: no byte of the file is copied into
 * memory, so memory does not grow with the file's size or the number of
 * downloads); a client that stops reading is disconnected after
 * timeout_secs, like every reply, and the connection is kept alive after
 * the last byte when the request allows it. Takes fd in every case (also
 * when req is finished already, its client gone, the request a HEAD, or the
 * status 1xx/204/304, which send the head only): it is closed when the body
 * has gone out, the client left, or at once when no body is sent. The file
 * must hold [offset, offset + length): a file cut shorter meanwhile ends the
 * connection (the client sees a short body). A read from a cold disk inside
 * sendfile may hold the loop for a moment, as in nginx without aio.
 * Finishes req. */
void cm_http_reply_file(cm_http_req_t *req, int status, const char *content_type, int fd,
                        uint64_t offset, uint64_t length);
/* Serialises json (not freed) as the body. */
void cm_http_reply_json(cm_http_req_t *req, int status, const struct cJSON *json);
/* OpenAI's error shape {"error":{"message","type","param","code"}}; param and
 * code may be NULL (JSON null). */
void cm_http_reply_error(cm_http_req_t *req, int status, const char *type, const char *code,
                         const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* The error type OpenAI uses for a status: invalid_request_error,
 * authentication_error, permission_error, not_found_error, rate_limit_error,
 * server_error, ... */
const char *cm_http_error_type(int status);
/* OpenAI's error object {"error":{"message","type","param","code"}} for
 * bodies and stream events written by hand. type and message are required
 * (NULL is written as "server_error" and ""); param and code may be NULL
 * (JSON null). message is copied as valid UTF-8 (cm_utf8_sanitize: bytes
 * that are not become U+FFFD). The caller owns the result (cJSON_Delete). */
struct cJSON *cm_http_error_json(const char *type, const char *code, const char *param,
                                 const char *message);

/* ---- request bodies ---- */

/* The body parsed as a JSON object (cm_json_parse: strict, UTF-8 only), owned
 * by the caller (cJSON_Delete); NULL after replying 400 invalid_request_error,
 * code "invalid_json", "The request body must be a JSON object", when it is
 * not one (empty, not JSON, or another JSON value): the request is then
 * finished and must not be touched. */
struct cJSON *cm_http_req_json_object(cm_http_req_t *req);

/* ---- streaming (chunked) replies ---- */
void cm_http_stream_start(cm_http_req_t *req, int status, const char *content_type);
void cm_http_stream_write(cm_http_req_t *req, const void *data, size_t len);
/* Bytes queued for the client and not yet written to the socket. */
size_t cm_http_stream_pending(cm_http_req_t *req);
/* Called when the queued output has drained to the socket (back-pressure
 * release). One callback per request; NULL clears it. */
void cm_http_stream_on_drain(cm_http_req_t *req, void (*cb)(cm_http_req_t *req, void *arg), void *arg);
/* Caps the kernel's send buffer of the request's socket (SO_SNDBUF; Linux
 * doubles the value and stops autotuning it, which otherwise grows to
 * megabytes). A client that stops reading then shows in
 * cm_http_stream_pending after that much, not after megabytes. */
void cm_http_stream_sndbuf(cm_http_req_t *req, int bytes);
void cm_http_stream_end(cm_http_req_t *req);
/* Whether the request's client takes trailer fields on a chunked reply: it
 * sent "TE: trailers" (RFC 9110 10.1.4) over HTTP/1.1, and the request is
 * not a HEAD. A reply that will carry them says so at its start:
 * cm_http_add_header(req, "Trailer", "<names>") before cm_http_stream_start. */
bool cm_http_req_te_trailers(const cm_http_req_t *req);
/* Ends a started stream like cm_http_stream_end, its last chunk carrying
 * the trailer fields: "Name: value" lines, NULL-terminated (not kept). A
 * line that is not a valid field (a name that is not a token, a value with
 * CR, LF or another control byte but the tab), a field a trailer must not
 * carry (Content-Length, Transfer-Encoding, Host, Trailer, Content-Type, ...;
 * RFC 9110 6.5.1), or one past CM_HTTP_TRAILERS_MAX bytes in all is dropped
 * (and logged). Sent whatever the request's TE said (check
 * cm_http_req_te_trailers first: a client that did not ask may not expect
 * them); an HTTP/1.0 client's stream, which has no chunks, and a HEAD
 * request's end without them. Finishes req. */
void cm_http_stream_end_trailers(cm_http_req_t *req, const char *const *fields);
#define CM_HTTP_TRAILERS_MAX 4096
/* Ends a started stream as broken: what is queued still goes out, then the
 * connection closes without the last chunk, so a client sees an incomplete
 * body (curl: "transfer closed with outstanding read data") instead of a
 * complete but truncated one. Before the stream started: a 502. Finishes req. */
void cm_http_stream_abort(cm_http_req_t *req);

#endif
