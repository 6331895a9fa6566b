#include "sse.h"

#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 128

struct cm_sse_parser {
    cm_sse_event_fn fn;
    void *ud;
    size_t max_line, max_data;
    char *line; /* current line, max_line + 1 */
    size_t llen;
    char *data; /* joined data lines, max_data + 2 */
    size_t dlen;
    bool has_data;
    char event[MAX_NAME];
    char id[MAX_NAME];
    bool cr;    /* the last byte was CR: a following LF belongs to it */
    bool first; /* no line finished yet (BOM check) */
    int err;
};

cm_sse_parser_t *cm_sse_parser_new(size_t max_line, size_t max_data, cm_sse_event_fn fn, void *ud)
{
    cm_sse_parser_t *p = cm_xcalloc(1, sizeof(*p));
    p->fn = fn;
    p->ud = ud;
    p->max_line = max_line ? max_line : 64 * 1024;
    p->max_data = max_data ? max_data : 1024 * 1024;
    p->line = cm_xmalloc(p->max_line + 1);
    p->data = cm_xmalloc(p->max_data + 2);
    p->first = true;
    return p;
}

void cm_sse_parser_free(cm_sse_parser_t *p)
{
    if (!p)
        return;
    free(p->line);
    free(p->data);
    free(p);
}

size_t cm_sse_parser_pending(const cm_sse_parser_t *p)
{
    return p->llen + p->dlen;
}

static int dispatch(cm_sse_parser_t *p)
{
    int rc = CM_SSE_OK;
    if (p->has_data) {
        if (p->dlen > 0 && p->data[p->dlen - 1] == '\n')
            p->dlen--; /* the spec drops the last joining LF */
        p->data[p->dlen] = '\0';
        cm_sse_event_t ev = { p->event[0] ? p->event : "message", p->data, p->dlen, p->id };
        if (p->fn && p->fn(&ev, p->ud) != 0)
            rc = CM_SSE_ESTOPPED;
    }
    p->dlen = 0;
    p->has_data = false;
    p->event[0] = '\0';
    return rc;
}

static void copy_name(char *dst, const char *src, size_t n)
{
    if (n >= MAX_NAME)
        n = MAX_NAME - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* One complete line (without its terminator) in p->line[0..llen). */
static int process_line(cm_sse_parser_t *p)
{
    char *s = p->line;
    size_t n = p->llen;
    if (p->first) {
        p->first = false;
        if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            n -= 3;
        }
    }
    if (n == 0)
        return dispatch(p);
    if (s[0] == ':')
        return CM_SSE_OK;
    char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen > 0 && *v == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(s, "data", 4) == 0) {
        if (p->dlen + vlen + 1 > p->max_data)
            return CM_SSE_ETOOLONG;
        memcpy(p->data + p->dlen, v, vlen);
        p->dlen += vlen;
        p->data[p->dlen++] = '\n';
        p->has_data = true;
    } else if (flen == 5 && memcmp(s, "event", 5) == 0) {
        copy_name(p->event, v, vlen);
    } else if (flen == 2 && memcmp(s, "id", 2) == 0 && !memchr(v, '\0', vlen)) {
        copy_name(p->id, v, vlen);
    }
    return CM_SSE_OK; /* "retry" and unknown fields are ignored */
}

int cm_sse_parser_feed(cm_sse_parser_t *p, const char *buf, size_t len)
{
    size_t i = 0;
    if (p->err)
        return p->err;
    while (i < len) {
        if (p->cr) {
            p->cr = false;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        /* the line's end: the first LF or CR (two memchr scans beat a byte
         * loop on the few-hundred-byte lines providers send) */
        const char *lf = memchr(buf + i, '\n', len - i);
        size_t j = lf ? (size_t)(lf - buf) : len;
        const char *cr = memchr(buf + i, '\r', j - i);
        if (cr)
            j = (size_t)(cr - buf);
        if (p->llen + (j - i) > p->max_line) {
            p->err = CM_SSE_ETOOLONG;
            return p->err;
        }
        memcpy(p->line + p->llen, buf + i, j - i);
        p->llen += j - i;
        if (j == len)
            break;
        p->cr = buf[j] == '\r';
        i = j + 1;
        int rc = process_line(p);
        p->llen = 0;
        if (rc != CM_SSE_OK) {
            p->err = rc;
            return rc;
        }
    }
    return CM_SSE_OK;
}

char *cm_sse_format(const char *event, const char *data, size_t len, size_t *out_len)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    size_t cap = len + lines * 7 + (event ? strlen(event) + 8 : 0) + 2;
    char *out = cm_xmalloc(cap);
    size_t o = 0;
    if (event) {
        size_t en = strlen(event);
        memcpy(out, "event: ", 7);
        memcpy(out + 7, event, en);
        out[7 + en] = '\n';
        o = en + 8;
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n')
            continue;
        memcpy(out + o, "data: ", 6);
        o += 6;
        memcpy(out + o, data + start, i - start);
        o += i - start;
        out[o++] = '\n';
        start = i + 1;
    }
    out[o++] = '\n';
    out[o] = '\0';
    *out_len = o;
    return out;
}
