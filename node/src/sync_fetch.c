/* sync_fetch: one model's download from the router's blob route into
 * <models_dir>/<id>/<name>.part, resumed with Range, SHA-256 verified while
 * writing, renamed when it matches (sync.h has the contract). */
#include "sync_int.h"

#include "log.h"
#include "sha256.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* One file's transfer: the part file, its running hash and where the
 * first answer of each request is checked (nd_sync_resume_decide). */
typedef struct {
    nd_sync_t *s;
    const char *id;
    CURL *c;
    int fd;
    cm_sha256_t h;
    uint64_t have, size;     /* bytes in the part; the file's size */
    uint64_t done, total;    /* the model's, for the progress */
    bool checked, ranged;    /* this request's first answer seen; it sent Range */
    char content_range[128];
    char err[256];
    bool odd_answer;         /* the answer did not fit the request: retry */
    uint64_t last_report_ms;
} dl_t;

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    dl_t *d = ud;
    size_t k = size * n;
    if (k >= 5 && strncmp(p, "HTTP/", 5) == 0)
        d->content_range[0] = '\0'; /* a new response (after a 1xx) */
    else if (k > 14 && strncasecmp(p, "Content-Range:", 14) == 0) {
        size_t v = k - 14 < sizeof(d->content_range) ? k - 14 : sizeof(d->content_range) - 1;
        memcpy(d->content_range, p + 14, v);
        d->content_range[v] = '\0';
    }
    return k;
}

static size_t on_blob_data(char *p, size_t size, size_t n, void *ud)
{
    dl_t *d = ud;
    size_t k = size * n;
    if (!d->checked) {
        long status = 0;
        curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &status);
        nd_resume_t r = nd_sync_resume_decide(status, d->ranged ? d->have : 0, d->content_range, d->size);
        if (r == ND_RESUME_FAIL) {
            snprintf(d->err, sizeof(d->err), "unexpected answer to a resumed download (HTTP %ld)", status);
            d->odd_answer = true;
            return 0;
        }
        if (r == ND_RESUME_RESTART) { /* the whole file came back: start again */
            LOG_INFO("sync", "%s: the router ignored Range: downloading from the start", d->id);
            if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) {
                snprintf(d->err, sizeof(d->err), "cannot truncate the partial file: %s", strerror(errno));
                return 0;
            }
            d->done -= d->have;
            d->have = 0;
            cm_sha256_init(&d->h);
        }
        d->checked = true;
    }
    if (d->have + k > d->size) {
        snprintf(d->err, sizeof(d->err), "the router sent more than the %llu bytes listed",
                 (unsigned long long)d->size);
        return 0;
    }
    for (size_t off = 0; off < k;) {
        ssize_t w = write(d->fd, p + off, k - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(d->err, sizeof(d->err), "cannot write the partial file: %s", strerror(errno));
            return 0;
        }
        off += (size_t)w;
    }
    cm_sha256_update(&d->h, (const unsigned char *)p, k);
    d->have += k;
    d->done += k;
    COUNT(d->s, bytes_downloaded, k);
    uint64_t now = cm_now_ms();
    if (now - d->last_report_ms >= 200) { /* the progress lock, a few times a second */
        d->last_report_ms = now;
        nd_sync_set_progress(d->s, d->id, "downloading", d->done, d->total, NULL);
    }
    return k;
}

/* Hashes the part's first have bytes (a resumed download). 0 or -1. */
static int hash_existing(dl_t *d)
{
    unsigned char *buf = cm_xmalloc(1 << 20);
    uint64_t left = d->have;
    int rc = lseek(d->fd, 0, SEEK_SET) == 0 ? 0 : -1;
    while (rc == 0 && left > 0) {
        ssize_t r = read(d->fd, buf, left < (1 << 20) ? (size_t)left : (1 << 20));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = -1;
        else {
            cm_sha256_update(&d->h, buf, (size_t)r);
            left -= (uint64_t)r;
        }
    }
    free(buf);
    return rc == 0 && lseek(d->fd, (off_t)d->have, SEEK_SET) == (off_t)d->have ? 0 : -1;
}

/* One GET of the rest of the file. 0: complete; 1: worth retrying (a
 * dropped connection, a 5xx); -1: give up (err set). */
static int request_rest(dl_t *d, const char *url, const char *token)
{
    struct curl_slist *h;
    CURL *c = nd_sync_easy(d->s, url, token, &h);
    char range[64];
    d->c = c;
    d->checked = false;
    d->ranged = d->have > 0;
    d->content_range[0] = '\0';
    if (d->ranged) {
        snprintf(range, sizeof(range), "%llu-", (unsigned long long)d->have);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
        COUNT(d->s, range_requests, 1);
    }
    COUNT(d->s, blob_requests, 1);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_blob_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, ND_SYNC_STALL_S);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    nd_sync_easy_free(c, h);
    d->c = NULL;
    if (rc == CURLE_OK && d->have == d->size)
        return 0;
    if (nd_sync_stopping(d->s)) {
        snprintf(d->err, sizeof(d->err), "stopped");
        return -1;
    }
    if (d->err[0])
        return d->odd_answer ? 1 : -1; /* an odd answer to Range: try again; a local error: not */
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        snprintf(d->err, sizeof(d->err), "the router answered HTTP %ld for %s", status, url + strlen(d->s->url));
        return status >= 500 || status == 408 || status == 429 ? 1 : -1;
    }
    snprintf(d->err, sizeof(d->err), "%s after %llu of %llu bytes",
             rc == CURLE_OK ? "the transfer ended early" : curl_easy_strerror(rc), (unsigned long long)d->have,
             (unsigned long long)d->size);
    return 1;
}

static bool sha_equal(const unsigned char dig[CM_SHA256_BYTES], const char *hex)
{
    char got[CM_SHA256_BYTES * 2 + 1];
    sodium_bin2hex(got, sizeof(got), dig, CM_SHA256_BYTES);
    return strcmp(got, hex) == 0;
}

/* Downloads one file of r into dir, verified and renamed. 0, or -1 with err. */
static int fetch_file(nd_sync_t *s, const nd_sync_remote_t *r, const nd_sync_file_t *f, const char *dir,
                      uint64_t *done, const char *token, char *err, size_t errlen)
{
    char *part = cm_xasprintf("%s/%s.part", dir, f->name), *dst = cm_xasprintf("%s/%s", dir, f->name);
    char *url = cm_xasprintf("%s%s", s->url, f->blob_url);
    dl_t d = { .s = s, .id = r->id, .size = f->size, .total = r->size, .fd = -1 };
    int rc = -1;
    struct stat st;
    d.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d.fd < 0 || fstat(d.fd, &st) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", part, strerror(errno));
        goto out;
    }
    cm_sha256_init(&d.h);
    d.have = (uint64_t)st.st_size <= f->size ? (uint64_t)st.st_size : 0;
    if ((uint64_t)st.st_size > f->size && ftruncate(d.fd, 0) != 0) {
        snprintf(err, errlen, "cannot truncate %s: %s", part, strerror(errno));
        goto out;
    }
    if (d.have && hash_existing(&d) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", part, strerror(errno));
        goto out;
    }
    d.done = *done + d.have;
    nd_sync_set_progress(s, r->id, "downloading", d.done, d.total, NULL);
    long backoff = 1000;
    for (int attempt = 1; d.have < d.size; attempt++) {
        d.err[0] = '\0';
        d.odd_answer = false;
        int k = request_rest(&d, url, token);
        if (k == 0)
            break;
        if (k < 0 || attempt == ND_SYNC_MAX_ATTEMPTS) {
            snprintf(err, errlen, "%s", d.err);
            goto out;
        }
        LOG_INFO("sync", "%s: %s; resuming in %ld ms (attempt %d of %d)", r->id, d.err, backoff, attempt + 1,
                 ND_SYNC_MAX_ATTEMPTS);
        if (nd_sync_nap(s, backoff, false)) {
            snprintf(err, errlen, "stopped");
            goto out;
        }
        backoff = backoff * 2 > ND_SYNC_MAX_BACKOFF_MS ? ND_SYNC_MAX_BACKOFF_MS : backoff * 2;
    }
    nd_sync_set_progress(s, r->id, "verifying", d.done, d.total, NULL);
    unsigned char dig[CM_SHA256_BYTES];
    cm_sha256_final(&d.h, dig);
    if (!sha_equal(dig, f->sha256)) {
        char got[CM_SHA256_BYTES * 2 + 1];
        sodium_bin2hex(got, sizeof(got), dig, sizeof(dig));
        snprintf(err, errlen, "SHA-256 mismatch for %s: expected %.12s..., got %.12s... (download deleted)",
                 f->name, f->sha256, got);
        unlink(part);
        goto out;
    }
    if (fsync(d.fd) != 0 || rename(part, dst) != 0) {
        snprintf(err, errlen, "cannot finish %s: %s", dst, strerror(errno));
        goto out;
    }
    nd_sync_fsync_dir(dir);
    *done = d.done;
    rc = 0;
out:
    if (d.fd >= 0)
        close(d.fd);
    free(part);
    free(dst);
    free(url);
    return rc;
}

/* Bytes still to download for r in dir (finished files and parts count). */
static uint64_t bytes_missing(const nd_sync_remote_t *r, const char *dir)
{
    uint64_t need = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        char *dst = cm_xasprintf("%s/%s", dir, r->files[i].name);
        char *part = cm_xasprintf("%s/%s.part", dir, r->files[i].name);
        struct stat st;
        if (stat(dst, &st) == 0 && (uint64_t)st.st_size == r->files[i].size)
            ;
        else if (stat(part, &st) == 0 && (uint64_t)st.st_size <= r->files[i].size)
            need += r->files[i].size - (uint64_t)st.st_size;
        else
            need += r->files[i].size;
        free(dst);
        free(part);
    }
    return need;
}

int nd_sync_download(nd_sync_t *s, const nd_sync_remote_t *r, const char *dir, const char *token, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (!r->files[i].sha256[0])
            return snprintf(err, errlen, "the router lists no SHA-256 for %s: not downloaded", r->files[i].name), -1;
    struct statvfs vf;
    uint64_t need = bytes_missing(r, dir);
    if (statvfs(dir, &vf) == 0 && (uint64_t)vf.f_bavail * vf.f_frsize < need)
        return snprintf(err, errlen, "not enough disk space in %s: %llu bytes needed, %llu available", s->dir,
                        (unsigned long long)need, (unsigned long long)vf.f_bavail * vf.f_frsize),
               -1;
    uint64_t done = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        char *dst = cm_xasprintf("%s/%s", dir, r->files[i].name);
        struct stat st;
        /* a part of a split model finished by an earlier pass was verified
         * before its rename */
        bool have = stat(dst, &st) == 0 && (uint64_t)st.st_size == r->files[i].size;
        free(dst);
        if (have) {
            done += r->files[i].size;
            continue;
        }
        if (fetch_file(s, r, &r->files[i], dir, &done, token, err, errlen) != 0)
            return -1;
    }
    return 0;
}

