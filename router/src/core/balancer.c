#include "core/balancer.h"

#include <math.h>
#include <string.h>

#define CPU_OVERLOAD 80.0
#define GPU_FACTOR 0.8

int rt_lb_mode_parse(const char *s)
{
    if (!s || strcmp(s, "auto") == 0)
        return RT_LB_AUTO;
    if (strcmp(s, "metrics") == 0)
        return RT_LB_METRICS;
    if (strcmp(s, "round_robin") == 0 || strcmp(s, "round-robin") == 0 || strcmp(s, "rr") == 0)
        return RT_LB_ROUND_ROBIN;
    return -1;
}

const char *rt_lb_mode_name(rt_lb_mode_t m)
{
    switch (m) {
    case RT_LB_METRICS: return "metrics";
    case RT_LB_ROUND_ROBIN: return "round_robin";
    default: return "auto";
    }
}

static int slots_of(const rt_bal_node_t *n)
{
    return n->slots > 0 ? n->slots : 1;
}

static int active_of(const rt_bal_node_t *n)
{
    return n->inflight + (n->external > 0 ? n->external : 0);
}

static bool is_free(const rt_bal_node_t *n)
{
    return n->inflight < slots_of(n);
}

double rt_balancer_metrics_score(const rt_bal_node_t *n)
{
    double s = (n->cpu > 0 ? n->cpu : 0) + (n->mem > 0 ? n->mem : 0) + 10.0 * active_of(n);
    if (n->gpu_available && n->gpu >= 0)
        s += n->gpu + (n->gpu_mem > 0 ? n->gpu_mem : 0);
    return s;
}

double rt_balancer_auto_score(const rt_bal_node_t *n, double ref_ms)
{
    double lat = n->latency_ms > 0 ? n->latency_ms : n->reported_ms > 0 ? n->reported_ms : ref_ms;
    double s = lat * (1.0 + (double)active_of(n) / slots_of(n));
    return n->gpu_available ? s * GPU_FACTOR : s;
}

/* The latency a node without a measurement is assumed to have: the mean of
 * the others, or 1 when nobody has one. A node reporting only tokens/s gets
 * that mean scaled by how its tokens/s compares with the others'. */
static void fill_latency(const rt_bal_node_t *nodes, size_t n, double *lat)
{
    double sum = 0, tsum = 0;
    int k = 0, tk = 0;
    for (size_t i = 0; i < n; i++) {
        double l = nodes[i].latency_ms > 0 ? nodes[i].latency_ms : nodes[i].reported_ms;
        lat[i] = l;
        if (l > 0) {
            sum += l;
            k++;
        }
        if (nodes[i].tps > 0) {
            tsum += nodes[i].tps;
            tk++;
        }
    }
    double ref = k ? sum / k : 1.0;
    double tref = tk ? tsum / tk : 0;
    for (size_t i = 0; i < n; i++)
        if (lat[i] <= 0)
            lat[i] = (nodes[i].tps > 0 && tref > 0) ? ref * tref / nodes[i].tps : ref;
}

static double score_of(rt_lb_mode_t mode, const rt_bal_node_t *nd, double lat)
{
    if (mode == RT_LB_METRICS)
        return rt_balancer_metrics_score(nd);
    if (mode == RT_LB_ROUND_ROBIN)
        return 0;
    rt_bal_node_t tmp = *nd;
    tmp.latency_ms = lat;
    return rt_balancer_auto_score(&tmp, lat);
}

int rt_balancer_pick(rt_lb_mode_t mode, const rt_bal_node_t *nodes, size_t n, unsigned *rr)
{
    if (n == 0)
        return -1;
    if (n > RT_BALANCER_MAX)
        n = RT_BALANCER_MAX;
    double lat[RT_BALANCER_MAX];
    fill_latency(nodes, n, lat);
    bool all_hot = true, any_free = false;
    for (size_t i = 0; i < n; i++) {
        if (!is_free(&nodes[i]))
            continue;
        any_free = true;
        if (!(nodes[i].cpu > CPU_OVERLOAD))
            all_hot = false;
    }
    if (!any_free)
        return -1;
    if (mode == RT_LB_METRICS && all_hot)
        mode = RT_LB_ROUND_ROBIN;
    double best = INFINITY;
    for (size_t i = 0; i < n; i++)
        if (is_free(&nodes[i])) {
            double s = score_of(mode, &nodes[i], lat[i]);
            if (s < best)
                best = s;
        }
    double eps = fabs(best) * 1e-9 + 1e-12;
    size_t start = *rr % n;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (is_free(&nodes[i]) && score_of(mode, &nodes[i], lat[i]) <= best + eps) {
            *rr = (unsigned)(i + 1);
            return (int)i;
        }
    }
    return -1; /* not reached */
}
