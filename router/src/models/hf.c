/* hf: the Hugging Face Hub client (see hf.h). */
#include "models/hf_int.h"

#include "json.h"
#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* ---- validation ---- */

static bool part_valid(const char *s, size_t n)
{
    if (n == 0 || n > 96 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
                              (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
            return false;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '.' && s[i + 1] == '.')
            return false;
    return true;
}

bool rt_hf_repo_valid(const char *repo)
{
    if (!repo)
        return false;
    const char *slash = strchr(repo, '/');
    if (!slash)
        return part_valid(repo, strlen(repo));
    return !strchr(slash + 1, '/') && part_valid(repo, (size_t)(slash - repo)) &&
           part_valid(slash + 1, strlen(slash + 1));
}

bool rt_hf_revision_valid(const char *rev)
{
    size_t n = rev ? strlen(rev) : 0;
    if (n == 0 || n > 128 || strstr(rev, "..") || rev[0] == '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-", rev[i]))
            return false;
    return true;
}

/* ---- one response ---- */


typedef struct {
    resp_t *r;
    const sink_t *sink;
    CURL *c;
    bool redirect; /* this response is a 3xx: its body is dropped */
    bool first;
} xfer_t;

/* Copies a header value, keeping printable ASCII only (the Hub's and the
 * CDN's headers are as hostile as any input). */
static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        if ((unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7f)
            dst[o++] = v[i];
    dst[o] = 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (after a 1xx) */
        long keep = x->r->status;
        memset(x->r, 0, sizeof(*x->r));
        x->r->status = keep;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t klen = (size_t)(colon - p), vlen = n - klen - 1;
    const char *v = colon + 1;
#define IS(name) (klen == sizeof(name) - 1 && strncasecmp(p, name, klen) == 0)
    if (IS("location"))
        copy_value(x->r->location, sizeof(x->r->location), v, vlen);
    else if (IS("link"))
        copy_value(x->r->link, sizeof(x->r->link), v, vlen);
    else if (IS("content-range"))
        copy_value(x->r->content_range, sizeof(x->r->content_range), v, vlen);
    else if (IS("x-error-code"))
        copy_value(x->r->error_code, sizeof(x->r->error_code), v, vlen);
    else if (IS("x-error-message"))
        copy_value(x->r->error_message, sizeof(x->r->error_message), v, vlen);
    else if (IS("retry-after")) {
        char tmp[32];
        copy_value(tmp, sizeof(tmp), v, vlen);
        long s = strtol(tmp, NULL, 10);
        x->r->retry_after = s > 0 && s < 86400 ? (int)s : 0;
    }
#undef IS
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nmemb;
    if (x->first) {
        x->first = false;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->r->status);
        x->redirect = x->r->status >= 300 && x->r->status < 400;
    }
    if (x->redirect)
        return n;
    return x->sink->write(x->sink->arg, x->c, x->r->status, p, n);
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    xfer_t *x = arg;
    return x->sink->progress ? x->sink->progress(x->sink->arg) : 0;
}

/* scheme, host and port of url (lowercase host), for the token's rule. */
static int origin_of(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        for (char *q = host; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        snprintf(out, cap, "%s://%s:%s", scheme, host, port);
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* location resolved against current; NULL when not http(s), or plain http
 * reached from an https Hub. */
static char *resolve_location(const char *current, const char *location, const char *base)
{
    CURLU *u = curl_url();
    char *res = NULL, *scheme = NULL, *out = NULL;
    if (curl_url_set(u, CURLUPART_URL, current, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &res, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
        bool https_base = strncasecmp(base, "https:", 6) == 0;
        if (strcmp(scheme, "https") == 0 || (strcmp(scheme, "http") == 0 && !https_base))
            out = cm_xstrdup(res);
    }
    curl_free(res);
    curl_free(scheme);
    curl_url_cleanup(u);
    return out;
}

/* Maps a refused response to what the API says. */
void hf_map_status(const resp_t *r, const char *what, rt_hf_err_t *e)
{
    const char *m = r->error_message[0] ? r->error_message : NULL;
    memset(e, 0, sizeof(*e));
    if (strcmp(r->error_code, "RevisionNotFound") == 0) {
        e->status = 404;
        snprintf(e->msg, sizeof(e->msg), "revision not found: %s", what);
    } else if (strcmp(r->error_code, "EntryNotFound") == 0) {
        e->status = 404;
        snprintf(e->msg, sizeof(e->msg), "file not found in the repository: %s", what);
    } else if (r->status == 404 || strcmp(r->error_code, "RepoNotFound") == 0) {
        e->status = 404;
        snprintf(e->msg, sizeof(e->msg), "repository not found: %s", what);
    } else if (r->status == 401 || r->status == 403 || strcmp(r->error_code, "GatedRepo") == 0) {
        /* The Hub answers 401 for a gated or private repository without a
         * token it accepts (and 403 when the token lacks access). The API
         * says 403: a 401 from the router would mean the caller's own
         * credentials are wrong. */
        e->status = 403;
        snprintf(e->msg, sizeof(e->msg),
                 "gated or private repository %s: the Hub refused access (HTTP %ld); accept its "
                 "conditions on the Hub and set HF_TOKEN to a token with access%s%s%s",
                 what, r->status, m ? " (" : "", m ? m : "", m ? ")" : "");
    } else if (r->status == 429) {
        e->status = 429;
        e->retry_after = r->retry_after > 0 ? r->retry_after : 60;
        snprintf(e->msg, sizeof(e->msg), "rate limited by the Hugging Face Hub: retry after %d s",
                 e->retry_after);
    } else {
        e->status = 502;
        snprintf(e->msg, sizeof(e->msg), "the Hugging Face Hub answered HTTP %ld for %s%s%s%s",
                 r->status, what, m ? " (" : "", m ? m : "", m ? ")" : "");
    }
}

void hf_transport_error(CURLcode cc, rt_hf_err_t *e)
{
    memset(e, 0, sizeof(*e));
    e->status = cc == CURLE_OPERATION_TIMEDOUT ? 504 : 502;
    snprintf(e->msg, sizeof(e->msg), "cannot reach the Hugging Face Hub: %s", curl_easy_strerror(cc));
}

/* One request, redirects followed by hand (see hf.h). range_from > 0 sends
 * Range. Fills r for the final response; *final_url (optional, new string)
 * is where it came from. The CURLcode of the last hop. */
CURLcode hf_perform(const rt_hf_t *h, const char *url, uint64_t range_from, bool json,
                        const sink_t *sink, resp_t *r, char **final_url)
{
    char hub[512];
    if (origin_of(h->base_url, hub, sizeof(hub)) != 0)
        return CURLE_URL_MALFORMAT;
    char *cur = cm_xstrdup(url);
    CURLcode cc = CURLE_TOO_MANY_REDIRECTS;
    for (int hop = 0; hop <= HF_MAX_HOPS; hop++) {
        char org[512];
        bool same = origin_of(cur, org, sizeof(org)) == 0 && strcmp(org, hub) == 0;
        CURL *c = curl_easy_init();
        struct curl_slist *hdrs = NULL;
        char line[128];
        if (same && h->token && *h->token) {
            char *auth = cm_xasprintf("Authorization: Bearer %s", h->token);
            hdrs = curl_slist_append(hdrs, auth);
            sodium_memzero(auth, strlen(auth));
            free(auth);
        }
        if (range_from > 0) {
            snprintf(line, sizeof(line), "Range: bytes=%llu-", (unsigned long long)range_from);
            hdrs = curl_slist_append(hdrs, line);
        }
        hdrs = curl_slist_append(hdrs, json ? "Accept: application/json" : "Accept-Encoding: identity");
        memset(r, 0, sizeof(*r));
        xfer_t x = { .r = r, .sink = sink, .c = c, .first = true };
        curl_easy_setopt(c, CURLOPT_URL, cur);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)HF_CONNECT_S);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)HF_LOW_SPEED_BPS);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)HF_LOW_SPEED_S);
        if (json)
            curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)HF_JSON_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "llm-router/" LLMR_VERSION);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
        if (h->ca_bundle && *h->ca_bundle)
            curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_bundle);
        cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        r->status = status;
        /* the headers held the token: curl_slist_free_all does not wipe */
        for (struct curl_slist *s = hdrs; s; s = s->next)
            sodium_memzero(s->data, strlen(s->data));
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        if (cc != CURLE_OK || status < 300 || status >= 400 || status == 304)
            break;
        char *next = r->location[0] ? resolve_location(cur, r->location, h->base_url) : NULL;
        if (!next) {
            cc = CURLE_TOO_MANY_REDIRECTS; /* a redirect we will not follow */
            break;
        }
        free(cur);
        cur = next;
        cc = CURLE_TOO_MANY_REDIRECTS;
    }
    if (final_url)
        *final_url = cur;
    else
        free(cur);
    return cc;
}

/* ---- access check ---- */

static size_t drop_body(char *p, size_t size, size_t nmemb, void *arg)
{
    (void)p, (void)arg;
    return size * nmemb;
}

int rt_hf_check_access(const rt_hf_t *h, const char *repo, const char *revision, const char *file,
                       rt_hf_err_t *e)
{
    memset(e, 0, sizeof(*e));
    char *url = rt_hf_resolve_url(h, repo, revision, file);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    if (h->token && *h->token) {
        char *auth = cm_xasprintf("Authorization: Bearer %s", h->token);
        hdrs = curl_slist_append(hdrs, auth);
        sodium_memzero(auth, strlen(auth));
        free(auth);
    }
    hdrs = curl_slist_append(hdrs, "Accept-Encoding: identity");
    resp_t r;
    memset(&r, 0, sizeof(r));
    xfer_t x = { .r = &r, .c = c, .first = true };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* the Hub's own answer: a redirect means yes */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)HF_CONNECT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)HF_JSON_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "llm-router/" LLMR_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop_body);
    if (h->ca_bundle && *h->ca_bundle)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_bundle);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    r.status = status;
    for (struct curl_slist *sl = hdrs; sl; sl = sl->next)
        sodium_memzero(sl->data, strlen(sl->data));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(url);
    if (cc != CURLE_OK) {
        hf_transport_error(cc, e);
        return -1;
    }
    if (status >= 200 && status < 400)
        return 0;
    hf_map_status(&r, status == 404 && !r.error_code[0] ? file : repo, e);
    if (status == 404 && !r.error_code[0]) {
        e->status = 404;
        snprintf(e->msg, sizeof(e->msg), "file not found in the repository %s: %s", repo, file);
    }
    return -1;
}

/* ---- JSON listings ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool over;
} jbuf_t;

static size_t jwrite(void *arg, CURL *c, long status, const char *p, size_t n)
{
    (void)c;
    jbuf_t *b = arg;
    if (status < 200 || status >= 300)
        return n; /* an error's body: the headers say it */
    if (b->len + n > HF_JSON_MAX) {
        b->over = true;
        return 0;
    }
    cm_xgrow(&b->buf, &b->cap, b->len + n + 1, 4096);
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->buf[b->len] = 0;
    return n;
}

/* The rel="next" target of a Link header, when on the Hub's own origin. */
char *rt_hf_link_next(const char *link, const char *base)
{
    const char *p = link;
    while ((p = strchr(p, '<'))) {
        const char *end = strchr(p, '>');
        if (!end)
            return NULL;
        const char *params = end + 1, *stop = strchr(params, ',');
        size_t plen = stop ? (size_t)(stop - params) : strlen(params);
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)(plen < 255 ? plen : 255), params);
        if (strstr(tmp, "rel=\"next\"") || strstr(tmp, "rel=next")) {
            char *url = cm_xstrndup(p + 1, (size_t)(end - p - 1));
            char a[512], b[512];
            char *abs = resolve_location(base, url, base);
            free(url);
            if (abs && origin_of(abs, a, sizeof(a)) == 0 && origin_of(base, b, sizeof(b)) == 0 &&
                strcmp(a, b) == 0)
                return abs;
            free(abs);
            return NULL;
        }
        p = end + 1;
    }
    return NULL;
}

/* GETs url and every next page, calling each(page array) until it returns
 * non-zero (enough) or the pages end. 0, or -1 with e. */
static int get_pages(const rt_hf_t *h, const char *url, const char *what,
                     int (*each)(const cJSON *page, void *arg), void *arg, rt_hf_err_t *e)
{
    char *next = cm_xstrdup(url);
    int rc = -1;
    for (int page = 0; next && page < HF_MAX_PAGES; page++) {
        jbuf_t b = { 0 };
        sink_t sink = { jwrite, NULL, &b };
        resp_t r;
        CURLcode cc = hf_perform(h, next, 0, true, &sink, &r, NULL);
        free(next);
        next = NULL;
        if (b.over) {
            e->status = 502;
            snprintf(e->msg, sizeof(e->msg), "the Hub's listing for %s is larger than %u MiB",
                     what, HF_JSON_MAX >> 20);
        } else if (cc != CURLE_OK) {
            hf_transport_error(cc, e);
        } else if (r.status != 200) {
            hf_map_status(&r, what, e);
        }
        cJSON *j = !e->status ? cm_json_parse(b.buf ? b.buf : "", b.len) : NULL;
        free(b.buf);
        if (e->status)
            goto out;
        if (!cJSON_IsArray(j)) {
            cJSON_Delete(j);
            e->status = 502;
            snprintf(e->msg, sizeof(e->msg), "the Hub's listing for %s is not a JSON array", what);
            goto out;
        }
        int enough = each(j, arg);
        cJSON_Delete(j);
        if (enough)
            break;
        next = r.link[0] ? rt_hf_link_next(r.link, h->base_url) : NULL;
    }
    rc = 0;
out:
    free(next);
    return rc;
}

static char *escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = cm_xstrdup(e ? e : "");
    curl_free(e);
    return out;
}

char *rt_hf_resolve_url(const rt_hf_t *h, const char *repo, const char *revision, const char *file)
{
    char *rev = escape(revision);
    /* each path segment escaped, the slashes kept */
    size_t cap = strlen(file) * 3 + 1, o = 0;
    char *f = cm_xmalloc(cap);
    for (const char *p = file; *p; p++) {
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/", *p))
            f[o++] = *p;
        else
            o += (size_t)snprintf(f + o, cap - o, "%%%02X", (unsigned char)*p);
    }
    f[o] = 0;
    char *url = cm_xasprintf("%s/%s/resolve/%s/%s", h->base_url, repo, rev, f);
    free(rev);
    free(f);
    return url;
}

/* ---- model info ---- */

int rt_hf_model_info(const rt_hf_t *h, const char *repo, const char *revision, char commit[41],
                     bool *gated, rt_hf_err_t *e)
{
    memset(e, 0, sizeof(*e));
    commit[0] = 0;
    *gated = false;
    char *rev = escape(revision);
    char *url = cm_xasprintf("%s/api/models/%s/revision/%s", h->base_url, repo, rev);
    free(rev);
    jbuf_t b = { 0 };
    sink_t sink = { jwrite, NULL, &b };
    resp_t r;
    CURLcode cc = hf_perform(h, url, 0, true, &sink, &r, NULL);
    free(url);
    if (b.over) {
        e->status = 502;
        snprintf(e->msg, sizeof(e->msg), "the Hub's model info for %s is larger than %u MiB", repo,
                 HF_JSON_MAX >> 20);
    } else if (cc != CURLE_OK) {
        hf_transport_error(cc, e);
    } else if (r.status != 200) {
        hf_map_status(&r, repo, e);
    }
    cJSON *j = !e->status ? cm_json_parse(b.buf ? b.buf : "", b.len) : NULL;
    free(b.buf);
    if (e->status)
        return -1;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        e->status = 502;
        snprintf(e->msg, sizeof(e->msg), "the Hub's model info for %s is not a JSON object", repo);
        return -1;
    }
    const char *sha = NULL;
    if (cm_json_str(j, "sha", &sha) == CM_JSON_OK && strlen(sha) == 40 &&
        strspn(sha, "0123456789abcdef") == 40)
        memcpy(commit, sha, 41);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "gated");
    /* false, "auto" or "manual" */
    *gated = g && !cJSON_IsFalse(g) && !cJSON_IsNull(g);
    cJSON_Delete(j);
    return 0;
}

/* ---- tree ---- */

typedef struct {
    rt_hf_file_t *v;
    size_t n, cap;
} files_t;

static bool hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

static int tree_page(const cJSON *page, void *arg)
{
    files_t *f = arg;
    const cJSON *it;
    cJSON_ArrayForEach(it, page) {
        const char *type = NULL, *path = NULL;
        double size = -1;
        if (cm_json_str(it, "type", &type) != CM_JSON_OK || strcmp(type, "file") != 0 ||
            cm_json_str(it, "path", &path) != CM_JSON_OK || !*path || strlen(path) > 1024 ||
            cm_json_num(it, "size", &size) != CM_JSON_OK || size < 0 || size > 1e15)
            continue;
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 32;
            f->v = cm_xrealloc(f->v, f->cap * sizeof(*f->v));
        }
        rt_hf_file_t *x = &f->v[f->n++];
        memset(x, 0, sizeof(*x));
        x->path = cm_xstrdup(path);
        x->size = (uint64_t)size;
        const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(it, "lfs");
        const char *oid = NULL;
        if (cJSON_IsObject(lfs) && cm_json_str(lfs, "oid", &oid) == CM_JSON_OK && hex64(oid)) {
            for (int i = 0; i < 64; i++)
                x->sha256[i] = (char)(oid[i] >= 'A' && oid[i] <= 'F' ? oid[i] - 'A' + 'a' : oid[i]);
            x->sha256[64] = 0;
        }
        if (f->n >= 100000)
            return 1; /* bounded: no real repository has this many files */
    }
    return 0;
}

int rt_hf_tree(const rt_hf_t *h, const char *repo, const char *revision, rt_hf_file_t **out,
               size_t *n, rt_hf_err_t *e)
{
    memset(e, 0, sizeof(*e));
    char *rev = escape(revision);
    char *url = cm_xasprintf("%s/api/models/%s/tree/%s?recursive=true&expand=false", h->base_url,
                             repo, rev);
    files_t f = { 0 };
    int rc = get_pages(h, url, repo, tree_page, &f, e);
    free(rev);
    free(url);
    if (rc != 0) {
        rt_hf_files_free(f.v, f.n);
        f.v = NULL;
        f.n = 0;
    }
    *out = f.v;
    *n = f.n;
    return rc;
}

void rt_hf_files_free(rt_hf_file_t *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        free(f[i].path);
    free(f);
}

/* ---- search ---- */

typedef struct {
    cJSON *out;
    int limit;
} search_t;

static int search_page(const cJSON *page, void *arg)
{
    search_t *s = arg;
    const cJSON *it;
    cJSON_ArrayForEach(it, page) {
        if (cJSON_GetArraySize(s->out) >= s->limit)
            return 1;
        const char *id = NULL, *updated = NULL;
        if (cm_json_str(it, "id", &id) != CM_JSON_OK && cm_json_str(it, "modelId", &id) != CM_JSON_OK)
            continue;
        if (strlen(id) > 256)
            continue;
        double downloads = 0, likes = 0;
        cm_json_num(it, "downloads", &downloads);
        cm_json_num(it, "likes", &likes);
        cm_json_str(it, "lastModified", &updated);
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(it, "gated");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "repo", id);
        cJSON_AddNumberToObject(o, "downloads", downloads);
        cJSON_AddNumberToObject(o, "likes", likes);
        if (updated && strlen(updated) < 64)
            cJSON_AddStringToObject(o, "updated", updated);
        else
            cJSON_AddNullToObject(o, "updated");
        /* the Hub says false, "auto" or "manual" */
        cJSON_AddBoolToObject(o, "gated", g && !cJSON_IsFalse(g) && !cJSON_IsNull(g));
        cJSON_AddItemToArray(s->out, o);
    }
    return cJSON_GetArraySize(s->out) >= s->limit;
}

int rt_hf_search(const rt_hf_t *h, const char *search, int limit, cJSON **out, rt_hf_err_t *e)
{
    memset(e, 0, sizeof(*e));
    char *q = escape(search ? search : "");
    char *url = cm_xasprintf("%s/api/models?search=%s&filter=gguf&sort=downloads&limit=%d",
                             h->base_url, q, limit);
    search_t s = { cJSON_CreateArray(), limit };
    int rc = get_pages(h, url, "the model search", search_page, &s, e);
    free(q);
    free(url);
    if (rc != 0) {
        cJSON_Delete(s.out);
        s.out = NULL;
    }
    *out = s.out;
    return rc;
}
