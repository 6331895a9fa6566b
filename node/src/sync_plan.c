/* sync_plan: the pure parts of model sync (sync.h): reading the router's
 * list, deciding what to fetch and remove, and how to treat the answer to a
 * resumed download. No I/O, so tests/unit/node/test_sync.c covers them with
 * tables. */
#include "sync.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Integers a JSON number represents exactly. */
#define MAX_EXACT ((double)(1ULL << 53))

bool nd_sync_safe_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128 || s[0] == '.')
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

static bool sha_ok(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* A path below the router's blob route, made of URL characters only (it is
 * appended to the router's URL as it is). */
static bool blob_url_ok(const char *s)
{
    static const char prefix[] = "/api/models/blob/";
    if (!s || strncmp(s, prefix, sizeof(prefix) - 1) != 0 || strlen(s) > 1024 || strstr(s, ".."))
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || *s == '#' || *s == '?' || *s == '\\')
            return false;
    return true;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool size_of(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > MAX_EXACT ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

/* One file object: a safe GGUF file name, a size, a checksum (or "" when
 * the router has none yet: then only shared mode can use it), a path
 * (may be absent) and a blob URL. */
static bool parse_file(const cJSON *f, nd_sync_file_t *out)
{
    const char *name = str_of(f, "name"), *sha = str_of(f, "sha256");
    size_t n = name ? strlen(name) : 0;
    if (!nd_sync_safe_name(name) || n <= 5 || strcasecmp(name + n - 5, ".gguf") != 0)
        return false;
    if (!size_of(f, "size", &out->size) || (sha && *sha && !sha_ok(sha)))
        return false;
    out->name = name;
    out->sha256 = sha ? sha : "";
    out->path = str_of(f, "path");
    out->blob_url = str_of(f, "blob_url");
    return blob_url_ok(out->blob_url);
}

static bool parse_model(const cJSON *it, nd_sync_remote_t *r)
{
    memset(r, 0, sizeof(*r));
    r->id = str_of(it, "id");
    if (!nd_sync_safe_name(r->id))
        return false;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(it, "files");
    if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) < 1 || cJSON_GetArraySize(files) > ND_SYNC_MAX_FILES)
        return false;
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        if (!cJSON_IsObject(f) || !parse_file(f, &r->files[r->nfiles]))
            return false;
        for (size_t j = 0; j < r->nfiles; j++)
            if (strcmp(r->files[j].name, r->files[r->nfiles].name) == 0)
                return false; /* two files would write one path */
        r->size += r->files[r->nfiles].size;
        r->nfiles++;
    }
    r->sha256 = r->files[0].sha256;
    return true;
}

size_t nd_sync_parse_list(const cJSON *data, nd_sync_remote_t *out, size_t max, size_t *rejected)
{
    size_t n = 0, bad = 0;
    const cJSON *it;
    if (!cJSON_IsArray(data))
        goto out;
    cJSON_ArrayForEach(it, data) {
        if (!cJSON_IsObject(it) || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "registered")))
            continue; /* a model some node serves: not the catalogue's */
        if (n == max || !parse_model(it, &out[n])) {
            bad++;
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(out[j].id, out[n].id) == 0;
        if (dup)
            bad++;
        else
            n++;
    }
out:
    if (rejected)
        *rejected = bad;
    return n;
}

static const nd_sync_local_t *find_local(const nd_sync_local_t *l, size_t nl, const char *id, size_t *idx)
{
    for (size_t i = 0; i < nl; i++)
        if (strcmp(l[i].id, id) == 0) {
            if (idx)
                *idx = i;
            return &l[i];
        }
    return NULL;
}

size_t nd_sync_plan(const nd_sync_remote_t *remote, size_t nr, const nd_sync_local_t *local, size_t nl,
                    nd_sync_action_t *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < nr && k < max; i++) {
        const nd_sync_local_t *l = find_local(local, nl, remote[i].id, NULL);
        if (!l || (!l->present && l->synced))
            out[k++] = (nd_sync_action_t){ ND_SYNC_FETCH, i };
        else if (l->present && l->synced && remote[i].sha256[0] && l->synced_sha256 &&
                 strcmp(l->synced_sha256, remote[i].sha256) != 0)
            out[k++] = (nd_sync_action_t){ ND_SYNC_REPLACE, i };
        /* present and the operator's (no marker), or up to date: keep */
    }
    for (size_t i = 0; i < nl && k < max; i++) {
        if (!local[i].synced)
            continue;
        bool listed = false;
        for (size_t j = 0; j < nr && !listed; j++)
            listed = strcmp(remote[j].id, local[i].id) == 0;
        if (!listed)
            out[k++] = (nd_sync_action_t){ ND_SYNC_REMOVE, i };
    }
    return k;
}

/* A decimal without sign or spaces; *p moved past it. */
static bool read_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end - s > 19)
        return false;
    *out = v;
    *p = end;
    return true;
}

int nd_sync_parse_content_range(const char *v, uint64_t *start, uint64_t *end, uint64_t *total)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, "bytes ", 6) != 0)
        return -1;
    const char *p = v + 6;
    if (!read_u64(&p, start) || *p++ != '-' || !read_u64(&p, end) || *p++ != '/' || !read_u64(&p, total))
        return -1;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p || *start > *end || *end >= *total)
        return -1;
    return 0;
}

nd_resume_t nd_sync_resume_decide(long status, uint64_t have, const char *content_range, uint64_t size)
{
    if (status == 200)
        return have ? ND_RESUME_RESTART : ND_RESUME_APPEND;
    uint64_t a, b, t;
    if (status != 206 || !have || nd_sync_parse_content_range(content_range, &a, &b, &t) != 0)
        return ND_RESUME_FAIL;
    /* exactly the bytes asked for, of the file we expect */
    return a == have && t == size && b == size - 1 ? ND_RESUME_APPEND : ND_RESUME_FAIL;
}
