/* recorder: placeholder until the recorder lands (core/recorder.h). */
#include "core/recorder.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

struct rt_recorder {
    rt_recorder_opts_t o;
    rt_history_t *h;
    rt_metrics_t *m;
};

rt_recorder_t *rt_recorder_new(const rt_recorder_opts_t *o, rt_history_t *h, rt_metrics_t *m)
{
    rt_recorder_t *r = cm_xcalloc(1, sizeof(*r));
    r->o = *o;
    r->h = h;
    r->m = m;
    return r;
}
void rt_recorder_free(rt_recorder_t *r) { free(r); }
void rt_recorder_observer(rt_recorder_t *r, rt_proxy_observer_t *out) { memset(out, 0, sizeof(*out)); out->ud = r; }
void rt_recorder_stats(rt_recorder_t *r, rt_recorder_stats_t *out) { (void)r; memset(out, 0, sizeof(*out)); }
void rt_recorder_flush(rt_recorder_t *r) { (void)r; }
