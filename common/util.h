/* util: allocation that aborts on failure, clocks, small string helpers.
 *
 * Allocation policy (STYLE.md 5): every allocation in this project goes through
 * cm_x* wrappers, which abort the process on out-of-memory. Callers never check
 * for NULL from them. */
#ifndef CM_UTIL_H
#define CM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

void *cm_xmalloc(size_t n);
void *cm_xcalloc(size_t count, size_t size);
void *cm_xrealloc(void *p, size_t n);
char *cm_xstrdup(const char *s);
char *cm_xstrndup(const char *s, size_t n);
/* Writers for heads built by hand (no printf on the request path): copy s, or
 * v in base 10 or 16 (lower case), at p; return the end. No NUL is written.
 * Inline: for a literal s the length is a constant and the copy a few
 * stores, and base is a constant at every call (a multiply, not a divide). */
static inline char *cm_put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static inline char *cm_put_uint(char *p, uint64_t v, unsigned base)
{
    size_t n = 1; /* digits, counted first so that they are written in place */
    for (uint64_t t = v; t >= base; t /= base)
        n++;
    char *end = p + n;
    do {
        *--end = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    return p + n;
}
/* Makes the byte buffer *buf (capacity *cap) hold at least need bytes,
 * doubling from min; returns *buf. */
char *cm_xgrow(char **buf, size_t *cap, size_t need, size_t min);
/* printf into a new string owned by the caller. */
char *cm_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Installs cm_xmalloc/cm_xrealloc/free as the allocator of cJSON and of
 * libevent, so that their allocations follow the same abort-on-OOM policy.
 * Call once, first thing in main: libevent requires it before it creates any
 * object (a base, an event, a lock), and memory it allocated before would be
 * freed with the same free() anyway. */
void cm_util_init(void);

/* Monotonic clock in milliseconds / microseconds; wall clock in ms since epoch. */
uint64_t cm_now_ms(void);
uint64_t cm_now_us(void);
uint64_t cm_wall_ms(void);

/* Expands a leading "~/" with $HOME. Returns a new string. */
char *cm_expand_home(const char *path);
/* mkdir -p with the given mode. 0 or -errno. */
int cm_mkdir_p(const char *path, unsigned mode);
/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. 0 or -errno. */
int cm_read_file(const char *path, size_t max, char **out, size_t *len);
/* Writes a file atomically (tmp + rename) with the given mode. 0 or -errno. */
int cm_write_file(const char *path, const void *data, size_t len, unsigned mode);

/* Takes an exclusive lock (flock) on path, created 0600, and writes this
 * process's PID into it: one process at a time owns what it guards (a data
 * directory). The lock lasts while the returned descriptor is open (close it
 * to release; the kernel releases it when the process dies, kill -9 too, so
 * a stale file never blocks a start). Returns the descriptor, or -1 with a
 * message in err: "another <who> (pid N) uses <dir of path>" when another
 * open description holds it (another process, or this one a second time). */
int cm_lock_file(const char *path, const char *who, char *err, size_t errlen);
/* The same, naming what the lock guards in the message ("port 8080")
 * instead of the lock file's folder. */
int cm_lock_file_for(const char *path, const char *who, const char *what, char *err, size_t errlen);

/* U+FFFD REPLACEMENT CHARACTER, in UTF-8, for bytes that are not UTF-8. */
#define CM_UTF8_REPLACEMENT "\xEF\xBF\xBD"
#define CM_UTF8_REPLACEMENT_LEN 3

/* The one UTF-8 decoder (RFC 3629): what the n bytes at p (n may be 0) begin
 * with.
 *   1-4                 a whole valid character of that many bytes;
 *   0                   not UTF-8: a byte that cannot lead (a continuation
 *                       byte, 0xC0, 0xC1, 0xF5..0xFF), a missing continuation
 *                       byte, an overlong form, a surrogate, or a code point
 *                       above U+10FFFF;
 *   CM_UTF8_INCOMPLETE  p[0..n) is a valid start that needs more bytes.
 * Bytes after the first character are not looked at. */
#define CM_UTF8_INCOMPLETE (-1)
int cm_utf8_seq(const unsigned char *p, size_t n);
/* True when s is valid UTF-8 (len bytes). */
bool cm_utf8_valid(const char *s, size_t len);
/* Length of the longest prefix of s[0..len) that ends on a whole UTF-8 character
 * (an incomplete sequence at the end is excluded). */
size_t cm_utf8_complete_prefix(const char *s, size_t len);
/* Copies s[0..len) into dst (cap bytes, NUL-terminated) as valid UTF-8: each
 * byte that does not start a valid sequence becomes U+FFFD, and the copy
 * never ends inside a sequence. Returns the bytes written (without the NUL). */
size_t cm_utf8_sanitize(char *dst, size_t cap, const char *s, size_t len);

/* ---- RFC 3339 times ---- */

/* Bytes cm_time_rfc3339 needs, NUL included ("9999-12-31T23:59:59.999Z"). */
#define CM_TIME_RFC3339_SIZE 32
/* Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, always with
 * milliseconds) into out. Returns the length (24), or 0 with out "" when ms
 * is outside years 1970..9999 (negative included). */
size_t cm_time_rfc3339(int64_t ms, char out[CM_TIME_RFC3339_SIZE]);
/* Parses an RFC 3339 date-time, "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"
 * ('t', 'z' and a space for 'T' accepted, as RFC 3339 allows; fractions
 * beyond milliseconds truncated; second 60, a leap second, counts as the next
 * minute's 0). Returns ms since the epoch, or -1 when s is malformed, names a
 * day the month does not have, or is before 1970-01-01T00:00:00Z. */
int64_t cm_time_parse_rfc3339(const char *s);

#define CM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Creates path's parent directory (0700) and the file itself (0600) if
 * missing, for files that hold secrets or clients' data. 0, or -1 with err. */
int cm_create_private_file(const char *path, char *err, size_t errlen);

#endif
