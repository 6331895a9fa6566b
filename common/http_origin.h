/* http_origin: the origin of an http:// or https:// URL (scheme, host, port),
 * parsed by libcurl's URL API (CURLU), the parser libcurl itself uses, so a
 * URL means the same to both of http_client's transports.
 *
 * Parsing allocates and costs about a microsecond (CURLU copies each part):
 * callers on a request path parse an origin once and compare URL prefixes
 * against it afterwards (http_client_pool.c keeps one per upstream). */
#ifndef CM_HTTP_ORIGIN_H
#define CM_HTTP_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define CM_ORIGIN_ERRORS(X)                                                 \
    X(CM_ORIGIN_OK, 0, "ok")                                                \
    X(CM_ORIGIN_EURL, -1, "not a URL")                                      \
    X(CM_ORIGIN_ESCHEME, -2, "scheme is neither http nor https")            \
    X(CM_ORIGIN_EPORT, -3, "port out of range")                             \
    X(CM_ORIGIN_ELONG, -4, "host name too long")

typedef enum {
#define CM_ORIGIN_ENUM(name, val, text) name = val,
    CM_ORIGIN_ERRORS(CM_ORIGIN_ENUM)
#undef CM_ORIGIN_ENUM
} cm_origin_result_t;

const char *cm_origin_strerror(int result);

#define CM_ORIGIN_HOST_MAX 256 /* a DNS name is at most 253 bytes */

typedef struct {
    bool tls;                          /* https */
    bool userinfo;                     /* the URL carries "user[:password]@" */
    bool numeric;                      /* host is an IPv4 or IPv6 address: addr is set */
    unsigned short port;               /* as given, else the scheme's (80, 443) */
    char host[CM_ORIGIN_HOST_MAX];     /* as CURLU normalises it, IPv6 without brackets */
    char authority[CM_ORIGIN_HOST_MAX + 8]; /* Host header: host (IPv6 in brackets), and
                                       * ":port" unless the scheme's default, as curl sends it */
    struct sockaddr_storage addr;      /* numeric hosts: host and port */
    socklen_t alen;
    size_t len;                        /* bytes of url up to its path, query or fragment:
                                        * "http://127.0.0.1:8081" of ".../v1/x?y" */
    const char *target;                /* url + len: path and query as spelled (may be
                                        * empty, or start with '?' or '#') */
} cm_origin_t;

/* Parses url's origin into *o. A zone id ("[fe80::1%25eth0]") makes the host
 * non-numeric (connecting needs the interface). Returns CM_ORIGIN_OK or an
 * error; *o is undefined then. o->target points into url. */
int cm_origin_parse(const char *url, cm_origin_t *o);

#endif
