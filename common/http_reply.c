/* http_reply: the server's replies. The head is built in one buffer and goes
 * out with the body in one sendmsg; a streamed reply is chunked for HTTP/1.1
 * clients and ends with the connection for HTTP/1.0 ones; a file's body
 * follows its head with sendfile (cm_http_reply_file). A HEAD request gets
 * every reply's head as GET would (Content-Length or chunked framing
 * included), never a body byte. */
#include "http_server_int.h"

#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_FIXED 512 /* status line, our headers and framing, without the caller's */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* The Date header, formatted once a second per thread (gmtime + strftime is
 * ~3k instructions). The "C" locale (never changed here) gives the English
 * names HTTP wants. */
static const char *http_date(void)
{
    static _Thread_local time_t at = (time_t)-1;
    static _Thread_local char buf[40];
    time_t now = time(NULL);
    if (now != at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        at = now;
    }
    return buf;
}

typedef enum { BODY_LENGTH, BODY_CHUNKED, BODY_TO_CLOSE, BODY_NONE } framing_t;

/* Writes the reply's head into buf (at least HEAD_FIXED + the caller's
 * headers + the content type long) and returns its length. */
static size_t build_head(cm_http_req_t *req, char *buf, int status, const char *ctype, framing_t f,
                         uint64_t len)
{
    hs_conn_t *c = req->c;
    bool closing = !req->keep_alive || c->close_after || atomic_load_explicit(&c->w->srv->stopping, memory_order_relaxed) || f == BODY_TO_CLOSE;
    if (closing)
        c->close_after = true;
    if (status < 100 || status > 999)
        status = 500;
    char *p = cm_put_str(buf, "HTTP/1.1 ");
    p = cm_put_uint(p, (uint64_t)status, 10);
    *p++ = ' ';
    p = cm_put_str(p, reason(status));
    p = cm_put_str(p, "\r\nDate: ");
    p = cm_put_str(p, http_date());
    if (ctype) {
        p = cm_put_str(p, "\r\nContent-Type: ");
        p = cm_put_str(p, ctype);
    }
    /* every reply: a browser must not guess a JSON error or a model's text to be HTML */
    p = cm_put_str(p, "\r\nX-Content-Type-Options: nosniff\r\nX-Request-Id: ");
    p = cm_put_str(p, req->id);
    p = cm_put_str(p, "\r\n");
    if (req->xh_len) {
        memcpy(p, req->xh, req->xh_len);
        p += req->xh_len;
    }
    if (f == BODY_LENGTH) {
        p = cm_put_str(p, "Content-Length: ");
        p = cm_put_uint(p, len, 10);
        p = cm_put_str(p, "\r\n");
    } else if (f == BODY_CHUNKED) {
        p = cm_put_str(p, "Transfer-Encoding: chunked\r\n");
    }
    if (closing) {
        p = cm_put_str(p, "Connection: close\r\n");
    } else {
        if (req->http10)
            p = cm_put_str(p, "Connection: keep-alive\r\n");
        /* how long the connection stays open idle: clients that honour the
         * hint (undici, Node's fetch) stop reusing it before we close it,
         * instead of racing our close with their next request */
        p = cm_put_str(p, "Keep-Alive: timeout=");
        const cm_http_server_opts_t *o = &c->w->srv->opts;
        int idle = o->keepalive_timeout_secs > 0 ? o->keepalive_timeout_secs : o->timeout_secs;
        p = cm_put_uint(p, (uint64_t)(idle > 0 ? idle : 60), 10);
        p = cm_put_str(p, "\r\n");
    }
    p = cm_put_str(p, "\r\n");
    return (size_t)(p - buf);
}

/* Sends the head (and a body) of req's reply. */
static void send_head(cm_http_req_t *req, int status, const char *ctype, framing_t f,
                      const void *body, uint64_t len)
{
    char stack[2048];
    size_t need = HEAD_FIXED + req->xh_len + (ctype ? strlen(ctype) : 0);
    char *buf = need <= sizeof(stack) ? stack : cm_xmalloc(need);
    struct iovec iov[2];
    iov[0].iov_base = buf;
    iov[0].iov_len = build_head(req, buf, status, ctype, f, len);
    int n = 1;
    if (body && len && !req->is_head && f == BODY_LENGTH) {
        iov[1].iov_base = (void *)body;
        iov[1].iov_len = (size_t)len;
        n = 2;
    }
    hs_conn_send(req->c, iov, n);
    if (buf != stack)
        free(buf);
}

void hs_req_finish(cm_http_req_t *req)
{
    req->finished = true;
    hs_conn_t *c = req->c;
    if (c) {
        req->c = NULL;
        hs_conn_request_done(c);
    }
    if (!req->in_handler)
        hs_req_free(req);
}

/* ---- replies ---- */

/* RFC 9110 5.6.2: a token character (of a field name). */
static bool token_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* RFC 9110: a value has no control characters but the tab (CR or LF would
 * split the head, the rest make it invalid). */
static bool value_ok(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

/* A field name is a token. */
static bool header_ok(const char *name, const char *value)
{
    if (!*name)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (!token_char(*p))
            return false;
    return value_ok(value);
}

void cm_http_add_header(cm_http_req_t *req, const char *name, const char *value)
{
    if (!header_ok(name, value)) {
        LOG_WARN("http", "reply header \"%.64s\" dropped: not a valid header field", name);
        return;
    }
    size_t nl = strlen(name), vl = strlen(value);
    cm_xgrow(&req->xh, &req->xh_cap, req->xh_len + nl + vl + 4, 256);
    char *p = req->xh + req->xh_len;
    memcpy(p, name, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    req->xh_len = (size_t)(p - req->xh);
}

void cm_http_reply(cm_http_req_t *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    if (req->finished)
        return;
    if (req->c) {
        bool bodiless = status == 204 || status == 304 || status < 200;
        send_head(req, status, content_type, bodiless ? BODY_NONE : BODY_LENGTH, body,
                  bodiless ? 0 : len);
    }
    hs_req_finish(req);
}

void cm_http_reply_file(cm_http_req_t *req, int status, const char *content_type, int fd,
                        uint64_t offset, uint64_t length)
{
    if (req->finished) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (req->c) {
        bool bodiless = status == 204 || status == 304 || status < 200;
        send_head(req, status, content_type, bodiless ? BODY_NONE : BODY_LENGTH, NULL,
                  bodiless ? 0 : length);
        if (!bodiless && !req->is_head && length > 0 && fd >= 0) {
            hs_conn_send_file(req->c, fd, offset, length); /* takes fd */
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    hs_req_finish(req);
}

void cm_http_reply_json(cm_http_req_t *req, int status, const cJSON *json)
{
    char *s = cJSON_PrintUnformatted(json);
    cm_http_reply(req, status, "application/json", s, strlen(s));
    free(s);
}

const char *cm_http_error_type(int status)
{
    switch (status) {
    case 400: case 405: case 408: case 409: case 413: case 422: case 431: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

cJSON *cm_http_error_json(const char *type, const char *code, const char *param, const char *message)
{
    if (!message)
        message = "";
    size_t len = strlen(message), cap = len * CM_UTF8_REPLACEMENT_LEN + 1;
    char stack[1024];
    char *msg = cap <= sizeof(stack) ? stack : cm_xmalloc(cap); /* every byte may become U+FFFD */
    cm_utf8_sanitize(msg, cap, message, len);
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type ? type : "server_error");
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    if (msg != stack)
        free(msg);
    return root;
}

void cm_http_reply_error(cm_http_req_t *req, int status, const char *type, const char *code,
                         const char *param, const char *fmt, ...)
{
    char raw[1024], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* messages quote what the client sent (a path, a model name): the reply
     * must stay valid UTF-8 JSON however it was cut or what bytes came */
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
    cm_utf8_sanitize(msg, sizeof(msg), raw, len); /* cut to fit, never inside a character */
    cJSON *root = cm_http_error_json(type ? type : cm_http_error_type(status), code, param, msg);
    cm_http_reply_json(req, status, root);
    cJSON_Delete(root);
}

/* ---- streaming ---- */

void cm_http_stream_start(cm_http_req_t *req, int status, const char *content_type)
{
    if (req->finished || req->streaming)
        return;
    req->streaming = true;
    if (!req->c)
        return;
    cm_http_add_header(req, "Cache-Control", "no-cache");
    send_head(req, status, content_type, req->http10 ? BODY_TO_CLOSE : BODY_CHUNKED, NULL, 0);
}

void cm_http_stream_write(cm_http_req_t *req, const void *data, size_t len)
{
    if (req->closed || req->finished || !req->c || len == 0 || req->is_head || !req->streaming)
        return;
    if (req->http10) {
        struct iovec iov = { (void *)data, len };
        hs_conn_send(req->c, &iov, 1);
        return;
    }
    char size[24];
    size_t k = (size_t)(cm_put_uint(size, len, 16) - size);
    size[k++] = '\r';
    size[k++] = '\n';
    struct iovec iov[3] = { { size, k }, { (void *)data, len }, { (void *)"\r\n", 2 } };
    hs_conn_send(req->c, iov, 3);
}

size_t cm_http_stream_pending(cm_http_req_t *req)
{
    return req->c && !req->finished ? hs_conn_pending(req->c) : 0;
}

void cm_http_stream_on_drain(cm_http_req_t *req, void (*cb)(cm_http_req_t *, void *), void *arg)
{
    req->on_drain = cb;
    req->on_drain_arg = arg;
}

void cm_http_stream_sndbuf(cm_http_req_t *req, int bytes)
{
    if (req->c && !req->finished)
        setsockopt(req->c->fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

void cm_http_stream_end(cm_http_req_t *req)
{
    if (req->finished)
        return;
    if (!req->streaming) {
        cm_http_reply(req, 200, NULL, NULL, 0);
        return;
    }
    if (req->c && !req->http10 && !req->is_head) {
        struct iovec iov = { (void *)"0\r\n\r\n", 5 };
        hs_conn_send(req->c, &iov, 1);
    }
    hs_req_finish(req);
}

bool cm_http_req_te_trailers(const cm_http_req_t *req)
{
    if (req->http10 || req->is_head)
        return false;
    const char *te = cm_http_req_header(req, "TE");
    if (!te)
        return false;
    /* TE = #( t-codings ), t-codings = "trailers" / ( transfer-coding [ weight ] ) */
    for (const char *p = te; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        if (p - tok == 8 && strncasecmp(tok, "trailers", 8) == 0)
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

/* Fields a trailer must not carry (RFC 9110 6.5.1: framing, routing,
 * the head's own controls): a recipient that merged them would be misled. */
static bool trailer_forbidden(const char *name, size_t n)
{
    static const char *const names[] = { "Content-Length", "Transfer-Encoding", "Host", "Trailer",
                                         "Content-Type", "Content-Encoding", "Content-Range",
                                         "Connection", "Keep-Alive", "TE", "Upgrade", "Authorization",
                                         "Set-Cookie", "Cache-Control", "Expect" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
            return true;
    return false;
}

/* Appends the trailer field line ("Name: value", checked) to out (cap
 * bytes, *len used) as "Name: value\r\n"; false (and nothing added) when it
 * is not a valid field, is one a trailer must not carry, or does not fit. */
static bool trailer_put(char *out, size_t cap, size_t *len, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return false;
    size_t nl = (size_t)(colon - line);
    for (size_t i = 0; i < nl; i++)
        if (!token_char((unsigned char)line[i]))
            return false;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    if (!value_ok(v) || trailer_forbidden(line, nl) || *len + nl + vl + 4 > cap)
        return false;
    char *p = out + *len;
    memcpy(p, line, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, v, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    *len = (size_t)(p - out);
    return true;
}

void cm_http_stream_end_trailers(cm_http_req_t *req, const char *const *fields)
{
    if (req->finished)
        return;
    if (!req->streaming || !req->c || req->http10 || req->is_head || !fields || !fields[0]) {
        cm_http_stream_end(req); /* no chunked body to carry them */
        return;
    }
    char buf[CM_HTTP_TRAILERS_MAX + 8];
    size_t len = 3;
    memcpy(buf, "0\r\n", 3);
    for (size_t i = 0; fields[i]; i++)
        if (!trailer_put(buf, sizeof(buf) - 2, &len, fields[i]))
            LOG_WARN("http", "trailer field \"%.64s\" dropped: not a valid trailer field", fields[i]);
    buf[len++] = '\r';
    buf[len++] = '\n';
    struct iovec iov = { buf, len };
    hs_conn_send(req->c, &iov, 1);
    hs_req_finish(req);
}

void cm_http_stream_abort(cm_http_req_t *req)
{
    if (req->finished)
        return;
    if (!req->streaming) {
        cm_http_reply_error(req, 502, NULL, "upstream_error", NULL, "The answer could not be completed");
        return;
    }
    if (req->c)
        req->c->close_after = true; /* what is queued goes out, then our side closes: no last chunk */
    hs_req_finish(req);
}
