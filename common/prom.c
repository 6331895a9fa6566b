#include "prom.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
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

static void escape(struct evbuffer *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        switch (*p) {
        case '\\': evbuffer_add(b, "\\\\", 2); break;
        case '"': evbuffer_add(b, "\\\"", 2); break;
        case '\n': evbuffer_add(b, "\\n", 2); break;
        default: evbuffer_add(b, p, 1);
        }
    }
}

static void value(struct evbuffer *b, double v)
{
    if (isnan(v))
        evbuffer_add_printf(b, " NaN\n");
    else if (isinf(v))
        evbuffer_add_printf(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else if (v == floor(v) && fabs(v) < 1e15)
        evbuffer_add_printf(b, " %.0f\n", v);
    else
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
        evbuffer_add_printf(b, "%s=\"", ln);
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

static void hist_line(struct evbuffer *b, const char *name, const char *suffix,
                      const char *const *labels, size_t n, const char *le, double v)
{
    evbuffer_add_printf(b, "%s%s", name, suffix);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        labels_open(b, &first);
        evbuffer_add_printf(b, "%s=\"", labels[2 * i]);
        escape(b, labels[2 * i + 1]);
        evbuffer_add(b, "\"", 1);
    }
    if (le) {
        labels_open(b, &first);
        evbuffer_add_printf(b, "le=\"%s\"", le);
    }
    if (!first)
        evbuffer_add(b, "}", 1);
    value(b, v);
}

void cm_prom_hist_write(struct evbuffer *b, const char *name, const cm_prom_hist_t *h,
                        const char *const *labels, size_t n_labels)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i < h->nb; i++) {
        cum += h->counts[i];
        snprintf(le, sizeof(le), "%g", h->bounds[i]);
        hist_line(b, name, "_bucket", labels, n_labels, le, (double)cum);
    }
    cum += h->counts[h->nb];
    hist_line(b, name, "_bucket", labels, n_labels, "+Inf", (double)cum);
    hist_line(b, name, "_sum", labels, n_labels, NULL, h->sum);
    hist_line(b, name, "_count", labels, n_labels, NULL, (double)h->count);
}
