/* views: the JSON the node and model APIs return, rendered from registry
 * snapshots (core/registry.h) outside the registry's lock. Pure functions of
 * their input; every result is owned by the caller (cJSON_Delete). */
#ifndef RT_VIEWS_H
#define RT_VIEWS_H

#include "core/balancer.h"
#include "core/registry.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* One node as GET /api/nodes/:id shows it; with "history" when asked. */
cJSON *rt_view_node(const rt_node_view_t *v, bool history);
/* GET /api/nodes: every node, without history. */
cJSON *rt_view_nodes(const rt_node_view_t *v, size_t n);
/* GET /api/dashboard/metrics-style list: each node's figures and history. */
cJSON *rt_view_metrics(const rt_node_view_t *v, size_t n);
/* Totals over all nodes (GET /api/metrics/summary, without the queue). */
cJSON *rt_view_summary(const rt_node_view_t *v, size_t n, rt_lb_mode_t mode);
/* OpenAI model objects of every model an online node serves, with
 * "ready_nodes" and "nodes"; only `model` when not NULL (then NULL when no
 * online node serves it). */
cJSON *rt_view_models(const rt_node_view_t *v, size_t n, const char *model);

#endif
