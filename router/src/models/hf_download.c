/* hf_download: one file of a repository into a partial file: Range resume
 * after a dropped connection (a 200 to a range starts again), the SHA-256
 * hashed while the bytes arrive (the part already there re-hashed on
 * resume), bounded retries with back-off, cancellable through the fetch's
 * progress callback (see hf.h). */
#include "models/hf_int.h"

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
#include <time.h>
#include <unistd.h>

/* ---- download ---- */

typedef struct {
    const rt_hf_fetch_t *f;
    int fd;
    cm_sha256_t sha;
    uint64_t have;
    uint64_t asked;      /* the Range start of this request */
    bool started;        /* the body's first byte was seen */
    bool aborted;        /* progress asked to stop */
    bool restart;        /* the server ignored or garbled our range: from 0 */
    bool too_long;       /* more bytes than the Hub's size */
    bool io_error;
    resp_t *r;           /* the response being received (its Content-Range) */
} dl_t;

static int dl_reset(dl_t *d)
{
    d->have = 0;
    cm_sha256_init(&d->sha);
    return ftruncate(d->fd, 0);
}

/* A 206's Content-Range must start where we asked ("bytes a-b/total"). */
static bool range_ok(const char *cr, uint64_t asked, uint64_t size)
{
    unsigned long long a, b, total;
    if (sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &total) != 3)
        return false;
    return a == asked && b + 1 == size && total == size;
}

static size_t dl_write(void *arg, CURL *c, long status, const char *p, size_t n)
{
    (void)c;
    dl_t *d = arg;
    if (status != 200 && status != 206)
        return n; /* an error's body: dropped */
    if (!d->started) {
        d->started = true;
        if (status == 200 && d->have > 0) {
            /* a range answered with the whole file: start again */
            if (dl_reset(d) != 0) {
                d->io_error = true;
                return 0;
            }
        } else if (status == 206 && !range_ok(d->r->content_range, d->asked, d->f->size)) {
            /* bytes from elsewhere in the file: take none of them */
            d->restart = true;
            return 0;
        }
    }
    if (d->have + n > d->f->size) {
        d->too_long = true;
        return 0;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(d->fd, p + off, n - off, (off_t)(d->have + off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            d->io_error = true;
            return 0;
        }
        off += (size_t)w;
    }
    cm_sha256_update(&d->sha, (const unsigned char *)p, n);
    d->have += n;
    return n;
}

static int dl_progress(void *arg)
{
    dl_t *d = arg;
    if (d->f->progress && d->f->progress(d->f->arg, d->have)) {
        d->aborted = true;
        return 1;
    }
    return 0;
}

/* Re-hashes what the part holds (a resumed file's hash covers every byte). */
static int rehash(dl_t *d)
{
    unsigned char *buf = cm_xmalloc(1 << 20);
    uint64_t off = 0;
    int rc = 0;
    while (off < d->have) {
        size_t want = d->have - off < (1u << 20) ? (size_t)(d->have - off) : (1u << 20);
        ssize_t r = pread(d->fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = -1;
            break;
        }
        cm_sha256_update(&d->sha, buf, (size_t)r);
        off += (uint64_t)r;
        if (d->f->progress && d->f->progress(d->f->arg, off)) {
            d->aborted = true;
            break;
        }
    }
    free(buf);
    return rc;
}

static void sleep_abortable(dl_t *d, int seconds)
{
    for (int i = 0; i < seconds * 10 && !d->aborted; i++) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        dl_progress(d);
    }
}

int rt_hf_download(const rt_hf_t *h, const rt_hf_fetch_t *f, char sha_out[65], rt_hf_err_t *e)
{
    memset(e, 0, sizeof(*e));
    sha_out[0] = 0;
    dl_t d = { .f = f, .fd = -1 };
    int rc = -1;
    char *path = NULL;
    d.fd = open(f->part_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d.fd < 0) {
        e->status = 500;
        snprintf(e->msg, sizeof(e->msg), "cannot write %s: %s", f->part_path, strerror(errno));
        goto out;
    }
    struct stat sb;
    cm_sha256_init(&d.sha);
    if (fstat(d.fd, &sb) == 0)
        d.have = (uint64_t)sb.st_size;
    if (d.have > f->size && dl_reset(&d) != 0)
        goto io;
    if (rehash(&d) != 0)
        goto io;
    path = rt_hf_resolve_url(h, f->repo, f->revision, f->file);
    int attempts = 0;
    while (!d.aborted && d.have < f->size) {
        uint64_t before = d.have;
        d.asked = d.have;
        d.started = d.restart = false;
        sink_t sink = { dl_write, dl_progress, &d };
        resp_t r;
        d.r = &r;
        CURLcode cc = hf_perform(h, path, d.asked, false, &sink, &r, NULL);
        if (d.aborted)
            break;
        if (d.io_error)
            goto io;
        if (d.too_long) {
            e->status = 502;
            snprintf(e->msg, sizeof(e->msg), "%s: the server sent more than the Hub's size (%llu bytes)",
                     f->file, (unsigned long long)f->size);
            goto fail;
        }
        if (d.restart) {
            LOG_WARN("models", "%s: 206 with Content-Range \"%s\" for bytes=%llu-: starting again",
                     f->file, r.content_range, (unsigned long long)d.asked);
            if (dl_reset(&d) != 0)
                goto io;
        } else if (r.status == 416 && d.asked > 0) {
            if (dl_reset(&d) != 0)
                goto io;
        } else if (cc == CURLE_OK && r.status != 200 && r.status != 206) {
            hf_map_status(&r, f->file, e);
            /* a rate limit or a server error may pass; the rest will not */
            if (r.status != 429 && r.status != 408 && r.status < 500)
                goto fail;
        }
        if (d.have >= f->size)
            break;
        if (d.have > before)
            attempts = 0; /* bytes arrived: the count starts again */
        if (++attempts > RT_HF_ATTEMPTS) {
            if (!e->status) {
                if (cc != CURLE_OK)
                    hf_transport_error(cc, e);
                else {
                    e->status = 502;
                    snprintf(e->msg, sizeof(e->msg), "%s: the transfer ended early", f->file);
                }
            }
            size_t len = strlen(e->msg);
            if (len + 32 < sizeof(e->msg))
                snprintf(e->msg + len, sizeof(e->msg) - len, " (after %d attempts)", RT_HF_ATTEMPTS);
            goto fail;
        }
        int wait = 1 << (attempts - 1);
        if (r.status == 429 && r.retry_after > wait)
            wait = r.retry_after;
        if (wait > HF_BACKOFF_MAX_S)
            wait = HF_BACKOFF_MAX_S;
        LOG_INFO("models", "%s: transfer interrupted at %llu of %llu bytes (%s): retry in %d s", f->file,
                 (unsigned long long)d.have, (unsigned long long)f->size,
                 cc != CURLE_OK ? curl_easy_strerror(cc) : "early end", wait);
        memset(e, 0, sizeof(*e));
        sleep_abortable(&d, wait);
    }
    if (d.aborted) {
        rc = RT_HF_ABORTED;
        goto out;
    }
    unsigned char digest[CM_SHA256_BYTES];
    cm_sha256_final(&d.sha, digest);
    sodium_bin2hex(sha_out, 65, digest, sizeof(digest));
    if (f->sha256 && *f->sha256 && strcmp(sha_out, f->sha256) != 0) {
        e->status = 502;
        snprintf(e->msg, sizeof(e->msg), "checksum mismatch for %s: expected sha256 %s, got %s", f->file,
                 f->sha256, sha_out);
        unlink(f->part_path);
        sha_out[0] = 0;
        goto out;
    }
    if (fsync(d.fd) != 0)
        goto io;
    rc = 0;
    goto out;
io:
    e->status = 500;
    snprintf(e->msg, sizeof(e->msg), "cannot write %s: %s", f->part_path, strerror(errno));
    goto out;
fail:
    sha_out[0] = 0;
out:
    if (d.fd >= 0)
        close(d.fd);
    free(path);
    return rc;
}
