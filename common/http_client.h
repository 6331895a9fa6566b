/* http_client: outbound HTTP on a worker's own libevent loop.
 *
 * Two transports behind this one interface, chosen once per request: plain
 * http:// to a numeric address with no_proxy set (the router's nodes) goes
 * through our own HTTP/1.1 client (http_client_ev.c: http_parser and one
 * libevent event per connection, a fraction of libcurl's cost per request);
 * everything else (HTTPS, host names, proxies, force_curl) through libcurl's
 * multi interface (http_client_curl.c). Both behave the same to the caller;
 * tests/unit/common/test_http_client.c runs one suite over both.
 *
 * One cm_hc_t per event loop (create it in the worker_start hook): it keeps
 * connections alive per upstream (own transport) and in one curl multi
 * handle (libcurl), reused across requests of that loop. Each request is a
 * cm_hc_req_t driven by callbacks on the loop thread:
 *
 *   on_headers  once, when the final (non-1xx) response head has arrived;
 *   on_data     for each body chunk, as it arrives (never buffered whole);
 *   on_done     exactly once at the end (success or error), unless the request
 *               was cancelled. The request is freed after on_done returns.
 *
 * Back-pressure: cm_hc_pause() stops body delivery (the transport keeps the
 * bytes it already read and stops reading the socket); cm_hc_resume() delivers
 * those and reads again.
 * cm_hc_cancel() aborts a request at any time, also from inside its own
 * callbacks; no callback runs after it.
 *
 * Not thread-safe: a client and its requests belong to one loop thread. */
#ifndef CM_HTTP_CLIENT_H
#define CM_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

typedef struct cm_hc cm_hc_t;
typedef struct cm_hc_req cm_hc_req_t;

/* Result of a request, given to on_done. */
#define CM_HC_ERRORS(X)                                                     \
    X(CM_HC_OK, 0, "ok")                                                    \
    X(CM_HC_ECONNECT, -1, "connection failed")                              \
    X(CM_HC_ETIMEOUT, -2, "timed out")                                      \
    X(CM_HC_EIO, -3, "connection lost")                                     \
    X(CM_HC_EABORTED, -4, "aborted by callback")                            \
    X(CM_HC_ETOOBIG, -5, "response head too large")                         \
    X(CM_HC_EOTHER, -6, "transfer failed")                                  \
    X(CM_HC_EPROTO, -7, "invalid response")

typedef enum {
#define CM_HC_ENUM(name, val, text) name = val,
    CM_HC_ERRORS(CM_HC_ENUM)
#undef CM_HC_ENUM
} cm_hc_result_t;

const char *cm_hc_strerror(int result);

/* on_data's return: keep going, or abort the request (on_done gets
 * CM_HC_EABORTED). Call cm_hc_pause() to stop further chunks for a while. */
enum { CM_HC_CONTINUE = 0, CM_HC_ABORT = -1 };

typedef struct {
    const char *name;
    const char *value;
} cm_hc_header_t;

typedef struct {
    const char *method;            /* "GET" (default), "POST", "PUT", "DELETE" */
    const char *url;               /* copied */
    const char *const *headers;    /* "Name: value" lines, NULL-terminated; copied */
    const void *body;              /* not copied: must stay valid until on_done/cancel */
    size_t body_len;
    long connect_timeout_ms;       /* 0: 10 s */
    long timeout_ms;               /* whole transfer; 0: none */
    long idle_timeout_s;           /* no byte received for this long: ETIMEOUT; 0: none */
    /* The final response head must have arrived within this long of the
     * request going out: ETIMEOUT ("no response head within"). While the head
     * is awaited idle_timeout_s does not apply (a server may work out a whole
     * answer before it sends its head); after it, idle_timeout_s bounds every
     * silence of the body. 0: none (idle_timeout_s applies throughout). The
     * own transport checks it when the connection has been silent that long,
     * so a head still trickling in is given until it goes silent. */
    long head_timeout_ms;
    size_t max_header_bytes;       /* response head bound; 0: 64 KiB */
    bool no_proxy;                 /* connect directly: ignore http_proxy & co. (and skip
                                    * reading them on every request) */
    bool force_curl;               /* libcurl even where the own transport could go */
    /* Extra CA certificates (a PEM file, not copied: it must outlive the
     * request) trusted for HTTPS beside the system store; NULL: the system
     * store only. libcurl's transport loads it as CURLOPT_CAINFO while its
     * CA directory (CURLOPT_CAPATH, libcurl's built-in default, e.g.
     * /etc/ssl/certs on Debian) stays, so both are trusted with OpenSSL. On
     * a libcurl built without a CA directory the file replaces the bundle
     * and must then hold the system CAs too. (HTTPS always goes through
     * libcurl: the own transport takes plain http:// only.) */
    const char *ca_file;
    /* status and the response headers (valid during the call). Return
     * CM_HC_ABORT to stop the transfer (on_done gets CM_HC_EABORTED). */
    int (*on_headers)(cm_hc_req_t *r, int status, const cm_hc_header_t *h, size_t nh, void *ud);
    int (*on_data)(cm_hc_req_t *r, const char *data, size_t len, void *ud);
    /* Optional: the trailer fields of a chunked response (valid during the
     * call), once, after the last on_data and before on_done; not called
     * when the response had none. */
    void (*on_trailers)(cm_hc_req_t *r, const cm_hc_header_t *h, size_t nh, void *ud);
    /* result: a cm_hc_result_t; detail: the transport's message (may be empty). */
    void (*on_done)(cm_hc_req_t *r, int result, const char *detail, void *ud);
    void *ud;
} cm_hc_opts_t;

/* A client on base. Owned by the caller; cm_hc_free cancels what is left. */
cm_hc_t *cm_hc_new(struct event_base *base);
void cm_hc_free(cm_hc_t *hc);

/* Starts a request. Callbacks run later on the loop, never inside this call.
 * Returns the handle (owned by the client; valid until on_done returned or
 * cm_hc_cancel), or NULL when the options are invalid. */
cm_hc_req_t *cm_hc_request(cm_hc_t *hc, const cm_hc_opts_t *opts);
/* Aborts; no callback runs afterwards. The handle is invalid after this. */
void cm_hc_cancel(cm_hc_req_t *r);
void cm_hc_pause(cm_hc_req_t *r);
void cm_hc_resume(cm_hc_req_t *r);
bool cm_hc_paused(const cm_hc_req_t *r);
/* The response status once headers arrived, else 0. */
int cm_hc_status(const cm_hc_req_t *r);

/* Requests in flight on this client (for tests and metrics). */
size_t cm_hc_active(const cm_hc_t *hc);

#endif
