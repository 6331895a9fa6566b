#include "prom.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cm_prom_family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            evbuffer_add(b, "\\\\", 2);
        else if (*p == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, p, 1);
    }
    evbuffer_add_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* Label values: runs without a character to escape go in one add. */
static void escape(struct evbuffer *b, const char *v)
{
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, "\\\"\n");
        if (n)
            evbuffer_add(b, p, n);
        p += n;
        switch (*p) {
        case '\\': evbuffer_add(b, "\\\\", 2); break;
        case '"': evbuffer_add(b, "\\\"", 2); break;
        case '\n': evbuffer_add(b, "\\n", 2); break;
        default: return;
        }
        p++;
    }
}

static void value(struct evbuffer *b, double v)
{
    if (isnan(v))
        evbuffer_add(b, " NaN\n", 5);
    else if (isinf(v))
        evbuffer_add(b, v > 0 ? " +Inf\n" : " -Inf\n", 6);
    else if (v == floor(v) && fabs(v) < 1e15) {
        /* integers (most samples): by hand, no printf */
        char buf[24], *e = buf + sizeof(buf), *p = e;
        *--p = '\n';
        uint64_t u = (uint64_t)fabs(v);
        do
            *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (v < 0)
            *--p = '-';
        *--p = ' ';
        evbuffer_add(b, p, (size_t)(e - p));
    } else
        evbuffer_add_printf(b, " %.17g\n", v);
}

static void labels_open(struct evbuffer *b, bool *first)
{
    evbuffer_add(b, *first ? "{" : ",", 1);
    *first = false;
}

void cm_prom_sample(struct evbuffer *b, const char *name, double v, ...)
{
    evbuffer_add(b, name, strlen(name));
    va_list ap;
    va_start(ap, v);
    bool first = true;
    const char *ln;
    while ((ln = va_arg(ap, const char *))) {
        const char *lv = va_arg(ap, const char *);
        labels_open(b, &first);
        evbuffer_add(b, ln, strlen(ln));
        evbuffer_add(b, "=\"", 2);
        escape(b, lv ? lv : "");
        evbuffer_add(b, "\"", 1);
    }
    va_end(ap);
    if (!first)
        evbuffer_add(b, "}", 1);
    value(b, v);
}

void cm_prom_hist_init(cm_prom_hist_t *h, const double *bounds, size_t nb)
{
    memset(h, 0, sizeof(*h));
    if (nb > CM_PROM_MAX_BUCKETS)
        nb = CM_PROM_MAX_BUCKETS;
    memcpy(h->bounds, bounds, nb * sizeof(double));
    h->nb = nb;
}

void cm_prom_hist_observe(cm_prom_hist_t *h, double v)
{
    size_t i = 0;
    while (i < h->nb && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void cm_prom_fmt_double(char *buf, size_t len, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* The le texts of the bounds in use, per thread (a scrape formats the same
 * few dozen bounds over and over): direct-mapped by the value's bits. */
#define LE_CACHE 128
static _Thread_local struct {
    double v;
    char s[32];
    bool set;
} le_cache[LE_CACHE];

static const char *le_text(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    bits ^= bits >> 29;
    bits *= 0xbf58476d1ce4e5b9ull;
    size_t i = (size_t)(bits >> 57) % LE_CACHE;
    if (!le_cache[i].set || le_cache[i].v != v) {
        cm_prom_fmt_double(le_cache[i].s, sizeof(le_cache[i].s), v);
        le_cache[i].v = v;
        le_cache[i].set = true;
    }
    return le_cache[i].s;
}

static void hist_line(struct evbuffer *b, const char *name, const char *suffix,
                      const char *const *labels, size_t n, const char *le, double v)
{
    evbuffer_add(b, name, strlen(name));
    evbuffer_add(b, suffix, strlen(suffix));
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        labels_open(b, &first);
        evbuffer_add(b, labels[2 * i], strlen(labels[2 * i]));
        evbuffer_add(b, "=\"", 2);
        escape(b, labels[2 * i + 1]);
        evbuffer_add(b, "\"", 1);
    }
    if (le) {
        labels_open(b, &first);
        evbuffer_add(b, "le=\"", 4);
        evbuffer_add(b, le, strlen(le));
        evbuffer_add(b, "\"", 1);
    }
    if (!first)
        evbuffer_add(b, "}", 1);
    value(b, v);
}

void cm_prom_hist_write(struct evbuffer *b, const char *name, const cm_prom_hist_t *h,
                        const char *const *labels, size_t n_labels)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < h->nb; i++) {
        cum += h->counts[i];
        hist_line(b, name, "_bucket", labels, n_labels, le_text(h->bounds[i]), (double)cum);
    }
    cum += h->counts[h->nb];
    hist_line(b, name, "_bucket", labels, n_labels, "+Inf", (double)cum);
    hist_line(b, name, "_sum", labels, n_labels, NULL, h->sum);
    hist_line(b, name, "_count", labels, n_labels, NULL, (double)h->count);
}
