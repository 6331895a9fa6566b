/* api_blob: GET and HEAD /api/models/blob/<model_name>, the registered
 * models' files for the nodes (node token, or an admin's session: routes.c).
 *
 * "<id>" is the model's first file (files[0], what llama.cpp opens);
 * "<id>/<name>" one of its files by name (the parts of a split GGUF). The
 * name is looked up in the catalogue's mirror (rt_models_get) and only the
 * path stored in its record is opened: nothing built from the URL reaches
 * the file system, so "..", absolute names or names of files that are not
 * the model's get 404 like unknown ids.
 *
 * The open and fstat run on the offload pool (a models directory on network
 * storage may block), the reply on the request's loop with
 * cm_http_reply_file (sendfile, back-pressure). The reply carries
 * Content-Length, Accept-Ranges: bytes, ETag "<sha256>" and Repr-Digest
 * (RFC 9530) when the SHA-256 is known. Per RFC 9110: If-None-Match (weak
 * comparison, "*" too) answers 304; one byte range of a GET ("a-b", "a-",
 * "-n") answers 206 with Content-Range, one that starts beyond the end (or
 * a zero suffix) 416 with Content-Range "bytes *" + "/<size>"; several ranges,
 * a malformed Range, another unit, or an If-Range that is not the ETag
 * (strong comparison; a date never matches: no Last-Modified is sent)
 * answer 200 with the whole file. HEAD answers GET's head, ignoring Range
 * (GET is the only method with range semantics, RFC 9110 14.2). */
#include "api/handlers.h"

#include "models/models.h"
#include "router.h"

#include "log.h"
#include "offload.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_BYTES 1024 /* of the URL's part after /api/models/blob/ */

/* One request's open, carried from the loop to the pool and back. */
typedef struct {
    char *id;   /* for messages */
    char *path; /* the catalogue's, never the URL's */
    uint64_t want_size;
    char sha256[RT_SHA256_HEX];
    /* work's result */
    int fd;
    int err; /* errno of open or fstat; ENOENT also for what is not a regular file */
    uint64_t size;
} blob_job_t;

static void job_free(blob_job_t *j)
{
    if (j->fd >= 0)
        close(j->fd);
    free(j->id);
    free(j->path);
    free(j);
}

/* ---- conditional requests and ranges (RFC 9110 13 and 14) ---- */

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Whether the list of entity tags in v (If-None-Match) holds etag (quoted)
 * by weak comparison, or is "*". */
static bool etag_list_matches(const char *v, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = skip_ows(v);
    if (*p == '*' && *skip_ows(p + 1) == '\0')
        return true;
    while (*p) {
        p = skip_ows(p);
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
        if (!end)
            return false; /* not an entity tag: no match */
        end++;
        if (el && (size_t)(end - p) == el && memcmp(p, etag, el) == 0)
            return true;
        p = skip_ows(end);
        if (*p != ',' && *p != '\0')
            return false;
        if (*p == ',')
            p++;
    }
    return false;
}

/* A run of digits, saturating at UINT64_MAX; NULL when there is none. */
static const char *parse_u64(const char *p, uint64_t *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return p;
}

typedef enum { RANGE_NONE, RANGE_ONE, RANGE_UNSATISFIABLE } range_t;

/* The Range header h against a representation of size bytes: RANGE_ONE
 * with [*first, *last], RANGE_UNSATISFIABLE, or RANGE_NONE (answer the
 * whole file: a malformed value, another unit, several ranges, an empty
 * file). */
static range_t parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (strncasecmp(h, "bytes=", 6) != 0 || size == 0)
        return RANGE_NONE;
    const char *p = skip_ows(h + 6);
    uint64_t a = 0, b = 0;
    bool suffix = *p == '-', open_end = false;
    if (suffix) {
        if (!(p = parse_u64(p + 1, &b)))
            return RANGE_NONE;
    } else {
        if (!(p = parse_u64(p, &a)) || *p++ != '-')
            return RANGE_NONE;
        const char *q = parse_u64(p, &b);
        open_end = !q;
        if (q)
            p = q;
    }
    p = skip_ows(p);
    if (*p != '\0')
        return RANGE_NONE; /* several ranges (a comma) or garbage: the whole file */
    if (suffix) {
        if (b == 0)
            return RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return RANGE_ONE;
    }
    if (!open_end && b < a)
        return RANGE_NONE; /* invalid (RFC 9110 14.1.1): ignored */
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    *first = a;
    *last = open_end || b >= size ? size - 1 : b;
    return RANGE_ONE;
}

static bool hex_digest(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + k];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16u;
            if (d > 15)
                return false;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return true;
}

/* Repr-Digest's value: "sha-256=:<base64 of the raw digest>:" (RFC 9530
 * 3, a structured-field byte sequence); false when hex is not a digest. */
static bool repr_digest(const char *hex, char out[64])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char d[32];
    if (!hex_digest(hex, d))
        return false;
    char *p = out + sprintf(out, "sha-256=:");
    for (int i = 0; i < 32; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < 32 ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < 32 ? d[i + 2] : 0);
        *p++ = b64[v >> 18 & 63];
        *p++ = b64[v >> 12 & 63];
        *p++ = i + 1 < 32 ? b64[v >> 6 & 63] : '=';
        *p++ = i + 2 < 32 ? b64[v & 63] : '=';
    }
    strcpy(p, ":");
    return true;
}

/* ---- the reply ---- */

static void blob_work(void *arg)
{
    blob_job_t *j = arg;
    j->fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (j->fd < 0) {
        j->err = errno;
        return;
    }
    struct stat st;
    int rc = fstat(j->fd, &st);
    if (rc != 0 || !S_ISREG(st.st_mode)) {
        j->err = rc != 0 ? errno : ENOENT;
        close(j->fd);
        j->fd = -1;
        return;
    }
    j->size = (uint64_t)st.st_size;
    /* the kernel's read-ahead doubled: a blob is read once, front to back */
    (void)posix_fadvise(j->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

/* Answers from the opened file (on the request's loop). */
static void blob_reply(cm_http_req_t *req, blob_job_t *j)
{
    if (j->fd < 0) {
        LOG_WARN("models", "blob %s: cannot open %s: %s", j->id, j->path, strerror(j->err));
        if (j->err == ENOENT || j->err == ENOTDIR)
            cm_http_reply_error(req, 404, NULL, "model_file_missing", NULL,
                                "The file of model '%s' is missing on the router", j->id);
        else
            cm_http_reply_error(req, 500, NULL, "model_file_unreadable", NULL,
                                "The file of model '%s' cannot be read on the router", j->id);
        return;
    }
    uint64_t size = j->size;
    if (j->want_size && size != j->want_size) {
        /* the file changed under the catalogue: its ETag and digest would lie */
        LOG_WARN("models", "blob %s: %s holds %llu bytes, the catalogue says %llu", j->id,
                 j->path, (unsigned long long)size, (unsigned long long)j->want_size);
        cm_http_reply_error(req, 500, NULL, "model_file_changed", NULL,
                            "The file of model '%s' changed on the router since it was registered",
                            j->id);
        return;
    }
    char etag[RT_SHA256_HEX + 2] = "";
    char digest[64];
    if (j->sha256[0])
        snprintf(etag, sizeof(etag), "\"%s\"", j->sha256);
    cm_http_add_header(req, "Accept-Ranges", "bytes");
    if (etag[0])
        cm_http_add_header(req, "ETag", etag);
    if (j->sha256[0] && repr_digest(j->sha256, digest))
        cm_http_add_header(req, "Repr-Digest", digest);

    const char *inm = cm_http_req_header(req, "If-None-Match");
    if (inm && etag_list_matches(inm, etag)) {
        cm_http_reply(req, 304, NULL, NULL, 0);
        return;
    }
    const char *range = strcmp(cm_http_req_method(req), "GET") == 0
                            ? cm_http_req_header(req, "Range")
                            : NULL;
    const char *if_range = cm_http_req_header(req, "If-Range");
    if (range && if_range && !(etag[0] && strcmp(skip_ows(if_range), etag) == 0))
        range = NULL; /* the client's copy is another version: the whole file */
    uint64_t first = 0, last = 0;
    range_t r = range ? parse_range(range, size, &first, &last) : RANGE_NONE;
    char cr[96];
    if (r == RANGE_UNSATISFIABLE) {
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
        cm_http_add_header(req, "Content-Range", cr);
        cm_http_reply_error(req, 416, "invalid_request_error", "range_not_satisfiable", NULL,
                            "The range is not satisfiable: model '%s' is %llu bytes", j->id,
                            (unsigned long long)size);
        return;
    }
    int fd = j->fd;
    j->fd = -1; /* cm_http_reply_file takes it */
    if (r == RANGE_ONE) {
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)size);
        cm_http_add_header(req, "Content-Range", cr);
        cm_http_reply_file(req, 206, "application/octet-stream", fd, first, last - first + 1);
        return;
    }
    cm_http_reply_file(req, 200, "application/octet-stream", fd, 0, size);
}

typedef struct {
    cm_http_req_t *req;
    blob_job_t *job;
} blob_call_t;

static void call_work(void *arg)
{
    blob_work(((blob_call_t *)arg)->job);
}

static void call_done(void *arg, cm_offload_status_t status)
{
    blob_call_t *c = arg;
    if (status == CM_OFFLOAD_DONE) {
        blob_reply(c->req, c->job);
    } else if (status == CM_OFFLOAD_REFUSED) {
        /* an urgent job (a login) took this one's place: opening a local
         * file on the loop costs microseconds, less than refusing a node */
        blob_work(c->job);
        blob_reply(c->req, c->job);
    } else {
        cm_http_add_header(c->req, "Retry-After", "1");
        cm_http_reply_error(c->req, 503, "server_error", "shutting_down", NULL,
                            "The server is shutting down; retry");
    }
    job_free(c->job);
    free(c);
}

/* The record's file that the URL's name selects: "<id>" its first file,
 * "<id>/<name>" the file called name. NULL when there is none. */
static const rt_model_file_t *select_file(rt_models_t *m, const char *name, rt_model_rec_t *rec)
{
    if (rt_models_get(m, name, rec))
        return rec->nfiles ? &rec->files[0] : NULL;
    const char *slash = strrchr(name, '/');
    if (!slash || slash == name || !slash[1])
        return NULL;
    char *id = cm_xstrndup(name, (size_t)(slash - name));
    bool found = rt_models_get(m, id, rec);
    free(id);
    if (!found)
        return NULL;
    const char *fname = slash + 1;
    if (strcmp(fname, ".") == 0 || strcmp(fname, "..") == 0)
        return NULL;
    for (size_t i = 0; i < rec->nfiles; i++)
        if (rec->files[i].name && strcmp(rec->files[i].name, fname) == 0)
            return &rec->files[i];
    return NULL;
}

void rt_h_models_blob(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *name = cm_http_req_param(req, "model_name");
    rt_model_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    const rt_model_file_t *f = NULL;
    if (name && *name && strlen(name) <= NAME_MAX_BYTES && rt->models)
        f = select_file(rt->models, name, &rec);
    if (!f || !f->path || f->path[0] != '/') {
        rt_model_rec_clear(&rec);
        cm_http_reply_error(req, 404, NULL, "model_not_found", "model_name",
                            "No registered model file '%.200s'", name ? name : "");
        return;
    }
    blob_job_t *j = cm_xcalloc(1, sizeof(*j));
    j->id = cm_xstrdup(name);
    j->path = cm_xstrdup(f->path);
    j->want_size = f->size;
    snprintf(j->sha256, sizeof(j->sha256), "%s", f->sha256);
    j->fd = -1;
    rt_model_rec_clear(&rec);

    blob_call_t *c = cm_xmalloc(sizeof(*c));
    *c = (blob_call_t){ .req = req, .job = j };
    int rc = rt->offload ? cm_offload_submit(rt->offload, cm_http_req_base(req), call_work,
                                             call_done, c)
                         : -EBUSY;
    if (rc == 0)
        return;
    free(c);
    if (rc == -ESHUTDOWN) {
        cm_http_add_header(req, "Retry-After", "1");
        cm_http_reply_error(req, 503, "server_error", "shutting_down", NULL,
                            "The server is shutting down; retry");
    } else {
        /* the pool is full (a burst of management work or of nodes starting
         * a sync at once): open here rather than refuse a node, as above */
        blob_work(j);
        blob_reply(req, j);
    }
    job_free(j);
}
