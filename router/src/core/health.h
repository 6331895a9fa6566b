/* health: the heartbeat timeout sweep. A timer on one worker's loop marks
 * nodes offline after timeout_ms without a heartbeat (checked every
 * interval_ms), ends suspensions that ran out, and kicks the admission queue
 * as a safety net. A heartbeat (core/nodes.c) brings a node back at once.
 * Each node it takes offline is reported to on_offline (the assembler hands
 * it to the proxy, which fails that node's unanswered requests at once
 * instead of letting them wait for a time limit). */
#ifndef RT_HEALTH_H
#define RT_HEALTH_H

#include "core/admission.h"
#include "core/registry.h"

#include <stdbool.h>

struct event_base;

typedef struct rt_health rt_health_t;

/* skip: LLM_ROUTER_SKIP_HEALTH_CHECK (never mark nodes offline). */
rt_health_t *rt_health_start(struct event_base *base, rt_registry_t *reg, rt_admission_t *adm,
                             unsigned interval_ms, unsigned timeout_ms, bool skip);
/* Before the first tick (or any time on the loop thread). NULL: none. */
void rt_health_on_offline(rt_health_t *h, rt_offline_fn fn, void *ud);
/* On the same loop thread. NULL is a no-op. */
void rt_health_stop(rt_health_t *h);

#endif
