/* prom: Prometheus text exposition (version 0.0.4) written into an evbuffer.
 *
 * Labels are given as alternating name/value strings ending in NULL; values
 * are escaped here. Histograms keep cumulative buckets (cm_prom_hist_t is not
 * thread-safe: guard it or keep one per thread and merge). */
#ifndef CM_PROM_H
#define CM_PROM_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define CM_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* # HELP / # TYPE lines. type: counter, gauge, histogram, summary, untyped. */
void cm_prom_family(struct evbuffer *b, const char *name, const char *type, const char *help);
/* One sample: name{labels} value. Variadic: label name, value, ..., NULL. */
void cm_prom_sample(struct evbuffer *b, const char *name, double value, ...);

/* 32: the longest bucket sets in use (vLLM's time to first token, 22; the
 * router's request duration, 19) fit with room. */
#define CM_PROM_MAX_BUCKETS 32
typedef struct {
    size_t nb;
    double bounds[CM_PROM_MAX_BUCKETS]; /* upper bounds, ascending; +Inf implied */
    uint64_t counts[CM_PROM_MAX_BUCKETS + 1];
    double sum;
    uint64_t count;
} cm_prom_hist_t;

/* Initialises with the given bounds (at most CM_PROM_MAX_BUCKETS). */
void cm_prom_hist_init(cm_prom_hist_t *h, const double *bounds, size_t nb);
void cm_prom_hist_observe(cm_prom_hist_t *h, double v);
/* Writes name_bucket{...,le=".."}, name_sum, name_count with the given labels
 * (name, value pairs; n_labels pairs). Each le is the shortest text that
 * reads back as the same double (16777216, not 1.67772e+07). */
/* The shortest %g text of v that strtod reads back as v, into buf. */
void cm_prom_fmt_double(char *buf, size_t len, double v);
void cm_prom_hist_write(struct evbuffer *b, const char *name, const cm_prom_hist_t *h,
                        const char *const *labels, size_t n_labels);

#endif
