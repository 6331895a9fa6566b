/* hf: the Hugging Face Hub client of the model tasks (wire format: the Hub's
 * API as huggingface_hub uses it). Blocking libcurl easy handles: call only
 * from a task thread or the offload pool, never from a loop.
 *
 * Redirects are followed here, not by libcurl (at most HF_MAX_HOPS): the
 * token (Authorization: Bearer) goes only to the scheme, host and port of
 * the Hub's base URL, so the CDN a download is redirected to never sees it;
 * an https Hub is never left for plain http. Listings follow the GitHub-style
 * `Link: <...>; rel="next"` pagination (bounded pages, same origin only).
 * Bodies are bounded; the Hub's error headers (X-Error-Code, X-Error-Message)
 * become the statuses and messages the API replies with (rt_hf_err_t). */
#ifndef RT_HF_H
#define RT_HF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

typedef struct {
    const char *base_url;   /* no trailing slash */
    const char *token;      /* NULL: none; never logged nor put in an error */
    const char *ca_bundle;  /* extra CAs (PEM) beside the system store (CAPATH kept); NULL: none */
} rt_hf_t;

/* What the API replies when the Hub refuses: status 404 (repository,
 * revision or file not found), 403 (gated or private), 429 (rate limited,
 * retry_after seconds), 502 (the Hub failed or answered nonsense), 504 (it
 * did not answer in time); msg is safe to show (no token, printable). */
typedef struct {
    int status;
    int retry_after;
    char msg[512];
} rt_hf_err_t;

typedef struct {
    char *path;             /* path in the repository ("a/b.gguf") */
    uint64_t size;
    char sha256[65];        /* the LFS sha256 (lfs.oid), "" for a plain git file */
} rt_hf_file_t;

/* Model info (GET /api/models/{repo}/revision/{rev}): the commit the
 * revision points at (40 hex, "" when the Hub gave none: a mirror) and
 * whether the repository is gated. The errors a missing or gated repository
 * gets (404, 403) come from here, before anything is queued. 0, or -1 with e. */
int rt_hf_model_info(const rt_hf_t *h, const char *repo, const char *revision, char commit[41],
                     bool *gated, rt_hf_err_t *e);

/* HEAD of file's resolve URL on the Hub (its redirect not followed): 0
 * when the Hub would serve it (2xx, 3xx), -1 with e otherwise (a gated
 * repository's 401/403 shows here: its info and tree are public). */
int rt_hf_check_access(const rt_hf_t *h, const char *repo, const char *revision, const char *file,
                       rt_hf_err_t *e);
/* "<base>/<repo>/resolve/<revision escaped>/<file, segments escaped>", new. */
char *rt_hf_resolve_url(const rt_hf_t *h, const char *repo, const char *revision, const char *file);

/* The repository's files at revision (tree, recursive, every page). 0 and a
 * new array (rt_hf_files_free), or -1 with e. */
int rt_hf_tree(const rt_hf_t *h, const char *repo, const char *revision, rt_hf_file_t **out,
               size_t *n, rt_hf_err_t *e);
void rt_hf_files_free(rt_hf_file_t *f, size_t n);

/* The Hub's GGUF repositories matching search (sort by downloads), up to
 * limit (pages followed): a new array of {repo, downloads, likes, updated,
 * gated}. 0, or -1 with e. */
int rt_hf_search(const rt_hf_t *h, const char *search, int limit, struct cJSON **out, rt_hf_err_t *e);

/* One file of a repository into part_path, resumed from what part_path
 * holds (re-hashed first), verified against size and sha256 ("" : size only). */
typedef struct {
    const char *repo, *revision, *file;
    const char *part_path;
    uint64_t size;
    const char *sha256;
    /* Called often (at least once a second while connected, and while
     * re-hashing) with the bytes the part holds; non-zero stops the transfer
     * (cancel, shutdown) within that second. */
    int (*progress)(void *arg, uint64_t have);
    void *arg;
} rt_hf_fetch_t;

#define RT_HF_ABORTED 1
/* 0: part_path holds the verified file (fsync'ed), its hash in sha_out;
 * RT_HF_ABORTED: progress asked to stop (the part is kept: resumable);
 * -1 with e: failed (a checksum mismatch deletes the part). A dropped
 * connection is retried (RT_HF_ATTEMPTS, back-off; the count restarts when
 * bytes arrive) with Range from what the part holds; a 200 answer to a range
 * starts again from 0; a 206 must carry the Content-Range asked for. */
#define RT_HF_ATTEMPTS 5
int rt_hf_download(const rt_hf_t *h, const rt_hf_fetch_t *f, char sha_out[65], rt_hf_err_t *e);

/* The rel="next" target of a Link header value, resolved against base and
 * only when it stays on base's scheme, host and port: a new string, or NULL
 * (no next page, or one elsewhere). Pure (libcurl's URL parser). */
char *rt_hf_link_next(const char *link, const char *base);

/* A repository id the Hub could have: "name" or "owner/name", each part
 * [A-Za-z0-9._-] starting with a letter or digit, at most 96 characters. */
bool rt_hf_repo_valid(const char *repo);
/* A revision: [A-Za-z0-9._/-], 1 to 128 characters, no "..". */
bool rt_hf_revision_valid(const char *rev);

#endif
