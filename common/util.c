#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
    /* libevent never asks for 0 bytes (its wrappers return NULL for that
     * themselves), so the wrappers' "0 means 1" never changes its results */
    event_set_mem_functions(cm_xmalloc, cm_xrealloc, free);
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

/* ---- UTF-8 ---- */

/* Length of the sequence lead byte c announces (1-4), 0 when c cannot lead. */
static int lead_len(unsigned char c)
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

/* Whether byte i (i >= 1) of a sequence led by lead may be c. */
static bool cont_ok(unsigned char lead, int i, unsigned char c)
{
    if ((c & 0xC0) != 0x80)
        return false;
    if (i != 1)
        return true;
    /* the second byte's range excludes overlongs, surrogates and > U+10FFFF */
    switch (lead) {
    case 0xE0: return c >= 0xA0;
    case 0xED: return c <= 0x9F;
    case 0xF0: return c >= 0x90;
    case 0xF4: return c <= 0x8F;
    default: return true;
    }
}

int cm_utf8_seq(const unsigned char *p, size_t n)
{
    if (n == 0)
        return CM_UTF8_INCOMPLETE;
    int len = lead_len(p[0]);
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return CM_UTF8_INCOMPLETE;
        if (!cont_ok(p[0], i, p[i]))
            return 0;
    }
    return len;
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
        int n = cm_utf8_seq(s + i, len - i);
        if (n <= 0) /* invalid, or cut off by the end */
            return false;
        i += (size_t)n;
    }
    return true;
}

size_t cm_utf8_sanitize(char *dst, size_t cap, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0, i = 0;
    if (cap == 0)
        return 0;
    while (i < len) {
        int n = cm_utf8_seq(s + i, len - i);
        bool ok = n > 0;
        const char *from = ok ? (const char *)s + i : CM_UTF8_REPLACEMENT;
        size_t k = ok ? (size_t)n : CM_UTF8_REPLACEMENT_LEN;
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
        int n = lead_len(c);
        if (n > (int)back)
            return len - back; /* incomplete trailing sequence */
        return len;
    }
    return len;
}

/* ---- RFC 3339 times ---- */

#define MS_PER_DAY 86400000LL
/* 10000-01-01T00:00:00Z: the first time four year digits cannot write. */
#define TIME_END_MS 253402300800000LL

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar, and
 * back (H. Hinnant's algorithms; exact for every year used here). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

size_t cm_time_rfc3339(int64_t ms, char out[CM_TIME_RFC3339_SIZE])
{
    if (ms < 0 || ms >= TIME_END_MS) {
        out[0] = '\0';
        return 0;
    }
    int y, mo, d;
    civil_from_days(ms / MS_PER_DAY, &y, &mo, &d);
    int64_t in_day = ms % MS_PER_DAY;
    int n = snprintf(out, CM_TIME_RFC3339_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d,
                     (int)(in_day / 3600000), (int)(in_day / 60000 % 60), (int)(in_day / 1000 % 60),
                     (int)(in_day % 1000));
    return n > 0 ? (size_t)n : 0;
}

/* Reads exactly n decimal digits at *p into *out and moves *p past them. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Whether *p is c (one of two spellings), moving past it when it is. */
static bool read_char(const char **p, char c, char alt)
{
    if (**p != c && **p != alt)
        return false;
    (*p)++;
    return true;
}

int64_t cm_time_parse_rfc3339(const char *s)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, ms = 0, off_s = 0;
    if (!p || !read_digits(&p, 4, &y) || !read_char(&p, '-', '-') || !read_digits(&p, 2, &mo) ||
        !read_char(&p, '-', '-') || !read_digits(&p, 2, &d) ||
        !(read_char(&p, 'T', 't') || read_char(&p, ' ', ' ')) || !read_digits(&p, 2, &h) ||
        !read_char(&p, ':', ':') || !read_digits(&p, 2, &mi) || !read_char(&p, ':', ':') ||
        !read_digits(&p, 2, &sec))
        return -1;
    if (read_char(&p, '.', '.')) {
        int digits = 0;
        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!read_digits(&p, 2, &oh) || !read_char(&p, ':', ':') || !read_digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        off_s = sign * (oh * 3600 + om * 60);
    } else if (!read_char(&p, 'Z', 'z')) {
        return -1;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -1;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    return t < 0 ? -1 : t * 1000 + ms;
}

int cm_lock_file(const char *path, const char *who, char *err, size_t errlen)
{
    return cm_lock_file_for(path, who, NULL, err, errlen);
}

int cm_lock_file_for(const char *path, const char *who, const char *what, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* flock, not fcntl: fcntl locks belong to the process (a second lock
     * from the same process succeeds, any close drops them) */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\r\n")] = '\0';
        close(fd);
        const char *slash = strrchr(path, '/');
        int dlen = slash ? (int)(slash - path) : 1;
        const char *dir = slash ? path : ".";
        if (e == EWOULDBLOCK && what)
            snprintf(err, errlen, "another %s (pid %s) uses %s", who, pid[0] ? pid : "unknown", what);
        else if (e == EWOULDBLOCK)
            snprintf(err, errlen, "another %s (pid %s) uses %.*s", who, pid[0] ? pid : "unknown",
                     dlen, dir);
        else
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* cm_create_private_file: see util.h */
int cm_create_private_file(const char *path, char *err, size_t errlen)
{
    char *dir = cm_xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        if (cm_mkdir_p(dir, 0700) != 0) {
            snprintf(err, errlen, "cannot create directory %s", dir);
            rc = -1;
            goto out;
        }
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        rc = -1;
        goto out;
    }
    close(fd);
out:
    free(dir);
    return rc;
}
