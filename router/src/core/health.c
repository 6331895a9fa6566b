#include "core/health.h"

#include "core/admission.h"
#include "log.h"
#include "core/registry.h"
#include "util.h"

#include <event2/event.h>
#include <stdlib.h>

struct rt_health {
    struct event *ev;
    rt_registry_t *reg;
    rt_admission_t *adm;
    unsigned timeout_ms;
    bool skip;
    rt_offline_fn on_offline;
    void *offline_ud;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    rt_health_t *h = arg;
    (void)fd;
    (void)what;
    int off = rt_registry_sweep_report(h->reg, cm_now_ms(), h->skip ? 0 : h->timeout_ms, h->on_offline,
                                       h->offline_ud);
    if (off > 0)
        LOG_WARN("health", "%d node(s) went offline: no heartbeat for %u ms", off, h->timeout_ms);
    rt_admission_kick(h->adm);
}

rt_health_t *rt_health_start(struct event_base *base, rt_registry_t *reg, rt_admission_t *adm,
                             unsigned interval_ms, unsigned timeout_ms, bool skip)
{
    rt_health_t *h = cm_xcalloc(1, sizeof(*h));
    h->reg = reg;
    h->adm = adm;
    h->timeout_ms = timeout_ms;
    h->skip = skip;
    h->ev = event_new(base, -1, EV_PERSIST, on_tick, h);
    struct timeval tv = { interval_ms / 1000, (interval_ms % 1000) * 1000 };
    event_add(h->ev, &tv);
    return h;
}

void rt_health_on_offline(rt_health_t *h, rt_offline_fn fn, void *ud)
{
    h->on_offline = fn;
    h->offline_ud = ud;
}

void rt_health_stop(rt_health_t *h)
{
    if (!h)
        return;
    event_free(h->ev);
    free(h);
}
