/* balancer: which node gets the next request. Pure functions over a snapshot
 * of candidate nodes (the registry builds it under its lock), so every rule
 * here is unit-tested with tables and nothing here locks or allocates.
 *
 * Candidates are nodes already known to be online, ready, not suspended and
 * serving the model; a candidate whose in-flight count reached its slots is
 * never picked. Modes (LLM_ROUTER_LOAD_BALANCER_MODE):
 *  - metrics: score = cpu% + memory% + 10 x active (+ gpu% + gpu memory% when
 *    the node reports a GPU); lowest wins; when every free candidate is above
 *    80% CPU, plain round-robin.
 *  - auto: expected time for one more request =
 *    latency x (1 + active / slots) x (0.8 when the node has a GPU), where
 *    latency is the router's own recent measurement of the node, else the
 *    node's reported average, else derived from its tokens/s, else the mean of
 *    the candidates that have one (a new node is neither favoured nor shunned).
 *  - round_robin: rotate over the free candidates.
 * Ties go round-robin: the scan starts at the rotating cursor *rr. A later
 * prefix-aware input can be one more term of the auto score. */
#ifndef RT_BALANCER_H
#define RT_BALANCER_H

#include <stdbool.h>
#include <stddef.h>

/* The most candidates one pick considers (the registry never passes more). */
#define RT_BALANCER_MAX 256

typedef enum { RT_LB_AUTO, RT_LB_METRICS, RT_LB_ROUND_ROBIN } rt_lb_mode_t;

typedef struct {
    int inflight;           /* the router's own requests on the node now */
    int external;           /* requests the node reported beyond ours */
    int slots;              /* parallel slots (<= 0 taken as 1) */
    double cpu, mem;        /* percent; < 0 unknown */
    double gpu, gpu_mem;    /* percent; < 0 not reported */
    bool gpu_available;
    double latency_ms;      /* router-measured recent latency; 0 unknown */
    double reported_ms;     /* node-reported average response time; 0 unknown */
    double tps;             /* node-reported tokens/s; 0 unknown */
} rt_bal_node_t;

/* "auto", "metrics", "round_robin" (also "round-robin", "rr"); -1 otherwise. */
int rt_lb_mode_parse(const char *s);
const char *rt_lb_mode_name(rt_lb_mode_t m);

double rt_balancer_metrics_score(const rt_bal_node_t *n);
/* ref_ms: the latency assumed for a node without any figure. */
double rt_balancer_auto_score(const rt_bal_node_t *n, double ref_ms);

/* Index of the chosen candidate, or -1 when every one is at capacity (or
 * n == 0). Advances the round-robin cursor *rr past the choice. */
int rt_balancer_pick(rt_lb_mode_t mode, const rt_bal_node_t *nodes, size_t n, unsigned *rr);

#endif
