/* url: see url.h. */
#include "url.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PATH 2048
#define MAX_URL 16384

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mcp_url_path_check(const char *path, const char **why)
{
    const char *w = NULL;
    size_t n = path ? strlen(path) : 0;
    if (!path || (strncmp(path, "/api/", 5) != 0 && strncmp(path, "/v1/", 4) != 0))
        w = "path must start with /api/ or /v1/ (a path on the router, not a URL)";
    else if (n > MAX_PATH)
        w = "path is longer than 2048 bytes";
    else if (strstr(path, "//"))
        w = "path must not contain \"//\"";
    else if (strstr(path, ".."))
        w = "path must not contain \"..\"";
    else if (strstr(path, "/./") || (n >= 2 && strcmp(path + n - 2, "/.") == 0))
        w = "path must not contain a \".\" segment";
    for (size_t i = 0; !w && i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x21 || c > 0x7e)
            w = "path must be printable ASCII without spaces or control bytes (CR/LF included); percent-encode the rest";
        else if (c == '\\')
            w = "path must not contain a backslash";
        else if (c == '#')
            w = "path must not contain '#'";
        else if (c == '?')
            w = "path must not contain '?': give query parameters in \"query\"";
        else if (c == '@')
            w = "path must not contain '@'";
        else if (c == '%') {
            int h = i + 2 < n ? hexval(path[i + 1]) : -1, l = h >= 0 ? hexval(path[i + 2]) : -1;
            if (h < 0 || l < 0) {
                w = "path has a '%' that is not a %XX escape";
                break;
            }
            int v = h * 16 + l;
            if (v < 0x20 || v == 0x7f || strchr("./\\%@?#", v))
                w = "path must not percent-encode '.', '/', '\\', '%', '@', '?', '#' or control bytes";
            i += 2;
        }
    }
    if (why)
        *why = w;
    return w ? -1 : 0;
}

/* The parts of a URL compared between the base and a built URL. */
typedef struct {
    char *scheme, *host, *port, *path, *user, *query, *fragment;
} parts_t;

static void parts_free(parts_t *p)
{
    curl_free(p->scheme);
    curl_free(p->host);
    curl_free(p->port);
    curl_free(p->path);
    curl_free(p->user);
    curl_free(p->query);
    curl_free(p->fragment);
    memset(p, 0, sizeof(*p));
}

static int parse(const char *url, parts_t *p)
{
    memset(p, 0, sizeof(*p));
    CURLU *h = curl_url();
    if (!h)
        return -1;
    int rc = -1;
    /* no guessing of a scheme, no non-standard schemes */
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(h, CURLUPART_SCHEME, &p->scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &p->host, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_PORT, &p->port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_PATH, &p->path, 0) != CURLUE_OK)
        goto out;
    curl_url_get(h, CURLUPART_USER, &p->user, 0);
    curl_url_get(h, CURLUPART_QUERY, &p->query, 0);
    curl_url_get(h, CURLUPART_FRAGMENT, &p->fragment, 0);
    rc = 0;
out:
    curl_url_cleanup(h);
    if (rc)
        parts_free(p);
    return rc;
}

char *mcp_url_base(const char *url, const char **why)
{
    *why = NULL;
    if (!url || !*url) {
        *why = "LLM_ROUTER_URL is empty";
        return NULL;
    }
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        *why = "LLM_ROUTER_URL must start with http:// or https://";
        return NULL;
    }
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e) {
            *why = "LLM_ROUTER_URL must be printable ASCII";
            return NULL;
        }
    parts_t p;
    if (parse(url, &p) != 0) {
        *why = "LLM_ROUTER_URL is not a URL";
        return NULL;
    }
    char *out = NULL;
    if (p.user || strchr(url, '@'))
        *why = "LLM_ROUTER_URL must not hold user info (use LLM_ROUTER_USERNAME/PASSWORD)";
    else if (p.query || p.fragment || strchr(url, '?') || strchr(url, '#'))
        *why = "LLM_ROUTER_URL must not have a query or fragment";
    else {
        out = cm_xstrdup(url);
        size_t n = strlen(out);
        while (n > 0 && out[n - 1] == '/')
            out[--n] = 0;
    }
    parts_free(&p);
    return out;
}

char *mcp_url_join_segment(const char *prefix, const char *segment)
{
    size_t n = strlen(segment), pn = strlen(prefix);
    char *out = cm_xmalloc(pn + 3 * n + 1), *o = out;
    memcpy(o, prefix, pn);
    o += pn;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)segment[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            *o++ = (char)c;
        else {
            *o++ = '%';
            *o++ = "0123456789ABCDEF"[c >> 4];
            *o++ = "0123456789ABCDEF"[c & 15];
        }
    }
    *o = 0;
    return out;
}

int mcp_url_build(const char *base, const char *path, const cJSON *query, char **out, const char **why)
{
    *out = NULL;
    *why = NULL;
    if (mcp_url_path_check(path, why) != 0)
        return -1;
    size_t cap = 0, len = 0;
    char *u = NULL;
    size_t bn = strlen(base), pn = strlen(path);
    cm_xgrow(&u, &cap, bn + pn + 2, 256);
    memcpy(u, base, bn);
    memcpy(u + bn, path, pn + 1);
    len = bn + pn;
    char sep = '?';
    const cJSON *q;
    cJSON_ArrayForEach(q, query)
    {
        if (!cJSON_IsString(q) || !q->string) {
            *why = "query values must be strings";
            goto fail;
        }
        char *k = mcp_url_join_segment("", q->string), *v = mcp_url_join_segment("", q->valuestring);
        size_t kn = strlen(k), vn = strlen(v);
        cm_xgrow(&u, &cap, len + kn + vn + 3, 256);
        u[len++] = sep;
        memcpy(u + len, k, kn);
        len += kn;
        u[len++] = '=';
        memcpy(u + len, v, vn + 1);
        len += vn;
        sep = '&';
        free(k);
        free(v);
    }
    if (len > MAX_URL) {
        *why = "the URL would be longer than 16 KiB";
        goto fail;
    }
    /* the check again, on what curl will see: same scheme, host and port as
     * the base, the path under the base's, no user info or fragment */
    parts_t b, r;
    if (parse(base, &b) != 0) {
        *why = "LLM_ROUTER_URL is not a URL";
        goto fail;
    }
    if (parse(u, &r) != 0) {
        parts_free(&b);
        *why = "the URL built from the path does not parse";
        goto fail;
    }
    size_t bpn = strcmp(b.path, "/") == 0 ? 0 : strlen(b.path);
    bool same = strcasecmp(b.scheme, r.scheme) == 0 && strcasecmp(b.host, r.host) == 0 &&
                strcmp(b.port, r.port) == 0 && !r.user && !r.fragment &&
                strncmp(r.path, b.path, bpn) == 0 && strcmp(r.path + bpn, path) == 0 &&
                strncmp(u, base, bn) == 0;
    parts_free(&b);
    parts_free(&r);
    if (!same) {
        *why = "the URL built from the path would leave the router";
        goto fail;
    }
    *out = u;
    return 0;
fail:
    free(u);
    return -1;
}
