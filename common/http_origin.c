/* http_origin: see http_origin.h. */
#include "http_origin.h"

#include "util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

const char *cm_origin_strerror(int result)
{
    switch (result) {
#define CM_ORIGIN_CASE(name, val, text) case val: return text;
        CM_ORIGIN_ERRORS(CM_ORIGIN_CASE)
#undef CM_ORIGIN_CASE
    default: return "unknown error";
    }
}

static int map_uc(CURLUcode uc)
{
    switch (uc) {
    case CURLUE_OK: return CM_ORIGIN_OK;
    case CURLUE_UNSUPPORTED_SCHEME: return CM_ORIGIN_ESCHEME;
    case CURLUE_BAD_PORT_NUMBER: return CM_ORIGIN_EPORT;
    case CURLUE_OUT_OF_MEMORY: abort(); /* the allocation policy of cm_xmalloc */
    default: return CM_ORIGIN_EURL;
    }
}

/* The address of a numeric host, or false for a name. */
static bool set_addr(cm_origin_t *o)
{
    memset(&o->addr, 0, sizeof(o->addr));
    o->alen = 0;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&o->addr;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o->addr;
    if (inet_pton(AF_INET, o->host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(o->port);
        o->alen = sizeof(*s4);
        return true;
    }
    if (inet_pton(AF_INET6, o->host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(o->port);
        o->alen = sizeof(*s6);
        return true;
    }
    return false;
}

/* Where the path starts in url as spelled. CURLU has accepted the URL, so the
 * authority after "scheme:" and its slashes ends at the first '/', '?' or '#'
 * (RFC 3986 3.2), whatever CURLU made of the parts. */
static size_t origin_len(const char *url)
{
    const char *p = strchr(url, ':');
    p++;
    while (*p == '/')
        p++;
    p += strcspn(p, "/?#");
    return (size_t)(p - url);
}

/* host, port and authority from CURLU's parts. */
static int fill(cm_origin_t *o, const char *host, const char *port, bool zone)
{
    size_t hl = strlen(host);
    bool v6 = hl >= 2 && host[0] == '[';
    if (v6) { /* CURLU keeps the brackets: the address is what is inside */
        host++;
        hl -= 2;
    }
    if (hl + 1 > sizeof(o->host))
        return CM_ORIGIN_ELONG;
    memcpy(o->host, host, hl);
    o->host[hl] = '\0';
    char *end;
    unsigned long pn = strtoul(port, &end, 10);
    if (*end || pn == 0 || pn > 65535)
        return CM_ORIGIN_EPORT; /* CURLU takes ":0" */
    o->port = (unsigned short)pn;
    /* fits: host, two brackets and ":65535" are at most sizeof(host) + 7 */
    char *p = o->authority;
    if (v6)
        *p++ = '[';
    memcpy(p, o->host, hl);
    p += hl;
    if (v6)
        *p++ = ']';
    if (o->port != (o->tls ? 443 : 80)) {
        *p++ = ':';
        p = cm_put_uint(p, o->port, 10);
    }
    *p = '\0';
    o->numeric = !zone && set_addr(o);
    return CM_ORIGIN_OK;
}

int cm_origin_parse(const char *url, cm_origin_t *o)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *zone = NULL;
    CURLU *u = curl_url();
    if (!u)
        abort();
    int rc = map_uc(curl_url_set(u, CURLUPART_URL, url, 0));
    if (rc != CM_ORIGIN_OK)
        goto out;
    if ((rc = map_uc(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0))) != CM_ORIGIN_OK)
        goto out;
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = CM_ORIGIN_ESCHEME;
        goto out;
    }
    if ((rc = map_uc(curl_url_get(u, CURLUPART_HOST, &host, 0))) != CM_ORIGIN_OK ||
        (rc = map_uc(curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT))) != CM_ORIGIN_OK)
        goto out;
    o->tls = scheme[4] == 's';
    o->userinfo = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
    bool has_zone = curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK;
    if ((rc = fill(o, host, port, has_zone)) != CM_ORIGIN_OK)
        goto out;
    o->len = origin_len(url);
    o->target = url + o->len;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(zone);
    curl_url_cleanup(u);
    return rc;
}
