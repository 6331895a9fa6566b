#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *cm_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *cm_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *cm_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *cm_xstrdup(const char *s)
{
    return cm_xstrndup(s, strlen(s));
}

char *cm_xstrndup(const char *s, size_t n)
{
    char *p = cm_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cm_put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

char *cm_put_uint(char *p, uint64_t v, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

char *cm_xgrow(char **buf, size_t *cap, size_t need, size_t min)
{
    if (need <= *cap)
        return *buf;
    size_t n = *cap > min ? *cap : min;
    while (n < need)
        n *= 2;
    *buf = cm_xrealloc(*buf, n);
    *cap = n;
    return *buf;
}

char *cm_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = cm_xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

static void *json_malloc(size_t n)
{
    return cm_xmalloc(n);
}

void cm_util_init(void)
{
    cJSON_Hooks hooks = { json_malloc, free };
    cJSON_InitHooks(&hooks);
}

uint64_t cm_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cm_now_ms(void)
{
    return cm_now_us() / 1000u;
}

uint64_t cm_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *cm_expand_home(const char *path)
{
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            home = "/root";
        return cm_xasprintf("%s%s", home, path + 1);
    }
    return cm_xstrdup(path);
}

int cm_mkdir_p(const char *path, unsigned mode)
{
    char *p = cm_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            rc = -errno;
            goto out;
        }
        *s = '/';
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST)
        rc = -errno;
out:
    free(p);
    return rc;
}

int cm_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    buf = cm_xmalloc(max + 1);
    size_t n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        goto out;
    }
    if (n > max) {
        rc = -EFBIG;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (len)
        *len = n;
out:
    free(buf);
    fclose(f);
    return rc;
}

int cm_write_file(const char *path, const void *data, size_t len, unsigned mode)
{
    char *tmp = cm_xasprintf("%s.tmp.%d", path, (int)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            close(fd);
            unlink(tmp);
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        rc = -errno;
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        unlink(tmp);
    }
out:
    free(tmp);
    return rc;
}

int cm_utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* Checks one sequence of length n at s (overlongs and surrogates rejected). */
static bool seq_ok(const unsigned char *s, int n)
{
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return false;
    if (n == 3) {
        if (s[0] == 0xE0 && s[1] < 0xA0)
            return false;
        if (s[0] == 0xED && s[1] > 0x9F)
            return false;
    } else if (n == 4) {
        if (s[0] == 0xF0 && s[1] < 0x90)
            return false;
        if (s[0] == 0xF4 && s[1] > 0x8F)
            return false;
    }
    return true;
}

bool cm_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs 8 bytes at a time: request bodies are mostly ASCII */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int n = cm_utf8_seq_len(s[i]);
        if (n == 0 || i + (size_t)n > len || !seq_ok(s + i, n))
            return false;
        i += (size_t)n;
    }
    return true;
}

size_t cm_utf8_sanitize(char *dst, size_t cap, const char *str, size_t len)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0, i = 0;
    if (cap == 0)
        return 0;
    while (i < len) {
        int n = cm_utf8_seq_len(s[i]);
        bool ok = n > 0 && i + (size_t)n <= len && seq_ok(s + i, n);
        const char *from = ok ? (const char *)s + i : replacement;
        size_t k = ok ? (size_t)n : 3;
        if (o + k >= cap)
            break;
        memcpy(dst + o, from, k);
        o += k;
        i += ok ? (size_t)n : 1;
    }
    dst[o] = '\0';
    return o;
}

size_t cm_utf8_complete_prefix(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    /* look back at most 3 bytes for the start of a trailing sequence */
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char c = s[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: keep looking for the lead */
        int n = cm_utf8_seq_len(c);
        if (n > (int)back)
            return len - back; /* incomplete trailing sequence */
        return len;
    }
    return len;
}
