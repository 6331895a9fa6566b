/* metrics_write: the scrape (rt_metrics_write, rt_metrics_write_cloud).
 *
 * The counters are copied under their lock (plain memcpy of fixed-size
 * entries, no formatting), the registry snapshot is taken after that lock is
 * released, and the text is formatted from the copies: a scrape holds the
 * lock every request's end takes for the length of a copy only. */
#include "core/metrics_int.h"

#include "util.h"

#include <dirent.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    rt_mseries_t *series;
    size_t nseries;
    rt_mgroup_t *groups; /* err[] point into errs */
    rt_merr_t *errs;
    size_t ngroups, nerrs;
    cm_prom_hist_t overhead, queue_wait;
    uint64_t rejected[REJ_N];
    uint64_t retries, retries_exhausted, dropped;
} copy_t;

static void take_copy(rt_metrics_t *m, copy_t *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_lock(&m->mu);
    c->series = cm_xmalloc((m->series.n ? m->series.n : 1) * sizeof(rt_mseries_t));
    for (size_t i = 0; i < m->series.cap; i++)
        if (m->series.slot[i])
            c->series[c->nseries++] = *(rt_mseries_t *)m->series.slot[i];
    size_t nerr = 0;
    for (size_t i = 0; i < m->groups.cap; i++)
        if (m->groups.slot[i])
            nerr += ((rt_mgroup_t *)m->groups.slot[i])->nerr;
    c->groups = cm_xmalloc((m->groups.n ? m->groups.n : 1) * sizeof(rt_mgroup_t));
    c->errs = cm_xmalloc((nerr ? nerr : 1) * sizeof(rt_merr_t));
    for (size_t i = 0; i < m->groups.cap; i++) {
        rt_mgroup_t *g = m->groups.slot[i];
        if (!g)
            continue;
        rt_mgroup_t *d = &c->groups[c->ngroups++];
        *d = *g;
        for (size_t k = 0; k < g->nerr; k++) {
            c->errs[c->nerrs] = *g->err[k];
            d->err[k] = &c->errs[c->nerrs++];
        }
    }
    c->overhead = m->overhead;
    c->queue_wait = m->queue_wait;
    memcpy(c->rejected, m->rejected, sizeof(c->rejected));
    c->retries = m->retries;
    c->retries_exhausted = m->retries_exhausted;
    c->dropped = m->dropped;
    pthread_mutex_unlock(&m->mu);
}

static void free_copy(copy_t *c)
{
    free(c->series);
    free(c->groups);
    free(c->errs);
}

/* ---- the GenAI family ---- */

/* gen_ai labels of a group (+ extra pairs), as pairs for cm_prom_hist_write */
static size_t genai_labels(const rt_mgroup_t *g, const char **l, const char *k1, const char *v1)
{
    size_t n = 0;
    l[2 * n] = "gen_ai_operation_name", l[2 * n + 1] = rt_metrics_ep_op[g->ep], n++;
    l[2 * n] = "gen_ai_provider_name", l[2 * n + 1] = "llm-node", n++;
    l[2 * n] = "gen_ai_request_model", l[2 * n + 1] = g->model, n++;
    l[2 * n] = "gen_ai_response_model", l[2 * n + 1] = g->model, n++;
    l[2 * n] = "gen_ai_original_model", l[2 * n + 1] = g->model, n++;
    if (k1)
        l[2 * n] = k1, l[2 * n + 1] = v1, n++;
    return n;
}

static void write_genai(struct evbuffer *b, const copy_t *c)
{
    const char *l[14];
    cm_prom_family(b, "gen_ai_client_token_usage", "histogram",
                   "Tokens per request (OpenTelemetry GenAI gen_ai.client.token.usage), input and output");
    for (size_t i = 0; i < c->ngroups; i++) {
        const rt_mgroup_t *g = &c->groups[i];
        if (g->tok_in.count)
            cm_prom_hist_write(b, "gen_ai_client_token_usage", &g->tok_in, l,
                               genai_labels(g, l, "gen_ai_token_type", "input"));
        if (g->tok_out.count)
            cm_prom_hist_write(b, "gen_ai_client_token_usage", &g->tok_out, l,
                               genai_labels(g, l, "gen_ai_token_type", "output"));
    }
    cm_prom_family(b, "gen_ai_server_request_duration_seconds", "histogram",
                   "Request duration as the router served it (gen_ai.server.request.duration); error_type on failures");
    for (size_t i = 0; i < c->ngroups; i++) {
        const rt_mgroup_t *g = &c->groups[i];
        if (g->ok_dur.count)
            cm_prom_hist_write(b, "gen_ai_server_request_duration_seconds", &g->ok_dur, l,
                               genai_labels(g, l, NULL, NULL));
        for (size_t k = 0; k < g->nerr; k++)
            cm_prom_hist_write(b, "gen_ai_server_request_duration_seconds", &g->err[k]->h, l,
                               genai_labels(g, l, "error_type", g->err[k]->name));
    }
    cm_prom_family(b, "gen_ai_server_time_to_first_token_seconds", "histogram",
                   "Time from the request to the first byte of a streamed answer (gen_ai.server.time_to_first_token)");
    for (size_t i = 0; i < c->ngroups; i++)
        if (c->groups[i].ttft.count)
            cm_prom_hist_write(b, "gen_ai_server_time_to_first_token_seconds", &c->groups[i].ttft, l,
                               genai_labels(&c->groups[i], l, NULL, NULL));
    cm_prom_family(b, "gen_ai_server_time_per_output_token_seconds", "histogram",
                   "Time per output token after the first, of streamed answers (gen_ai.server.time_per_output_token)");
    for (size_t i = 0; i < c->ngroups; i++)
        if (c->groups[i].tpot.count)
            cm_prom_hist_write(b, "gen_ai_server_time_per_output_token_seconds", &c->groups[i].tpot, l,
                               genai_labels(&c->groups[i], l, NULL, NULL));
}

/* ---- llm_router_*: requests ---- */

static void write_requests(struct evbuffer *b, const copy_t *c)
{
    char st[8];
    cm_prom_family(b, "llm_router_requests_total", "counter",
                   "Proxied requests by model, node, endpoint, status code and whether the answer streamed");
    for (size_t i = 0; i < c->nseries; i++) {
        const rt_mseries_t *s = &c->series[i];
        snprintf(st, sizeof(st), "%u", s->status);
        cm_prom_sample(b, "llm_router_requests_total", (double)s->count, "model", s->model, "node_id", s->node_id,
                       "node_name", s->node_name, "endpoint", rt_metrics_ep_path[s->ep], "status", st, "stream",
                       s->stream ? "true" : "false", NULL);
    }
    const char *l[4];
    cm_prom_family(b, "llm_router_request_duration_seconds", "histogram",
                   "Request duration, arrival to last byte, every outcome");
    for (size_t i = 0; i < c->ngroups; i++) {
        const rt_mgroup_t *g = &c->groups[i];
        l[0] = "model", l[1] = g->model, l[2] = "endpoint", l[3] = rt_metrics_ep_path[g->ep];
        cm_prom_hist_write(b, "llm_router_request_duration_seconds", &g->dur, l, 2);
    }
    cm_prom_family(b, "llm_router_tokens_total", "counter", "Tokens of finished requests by model, endpoint and type");
    for (size_t i = 0; i < c->ngroups; i++) {
        const rt_mgroup_t *g = &c->groups[i];
        if (!g->tok_in.count && !g->tok_out.count)
            continue;
        const char *ep = rt_metrics_ep_path[g->ep];
        cm_prom_sample(b, "llm_router_tokens_total", (double)g->tokens_in, "model", g->model, "endpoint", ep,
                       "token_type", "input", NULL);
        cm_prom_sample(b, "llm_router_tokens_total", (double)g->tokens_out, "model", g->model, "endpoint", ep,
                       "token_type", "output", NULL);
    }
    cm_prom_family(b, "llm_router_overhead_seconds", "histogram",
                   "The router's own time per request: duration minus queue wait minus time waiting on nodes");
    cm_prom_hist_write(b, "llm_router_overhead_seconds", &c->overhead, NULL, 0);
    cm_prom_family(b, "llm_router_queue_wait_seconds", "histogram", "Time spent in the admission queue");
    cm_prom_hist_write(b, "llm_router_queue_wait_seconds", &c->queue_wait, NULL, 0);
    cm_prom_family(b, "llm_router_queue_rejections_total", "counter",
                   "Requests refused before reaching a node, by reason");
    for (int i = 0; i < REJ_N; i++)
        cm_prom_sample(b, "llm_router_queue_rejections_total", (double)c->rejected[i], "reason",
                       rt_metrics_rej_name[i], NULL);
    cm_prom_family(b, "llm_router_retries_total", "counter", "Attempts on another node after a failure");
    cm_prom_sample(b, "llm_router_retries_total", (double)c->retries, NULL);
    cm_prom_family(b, "llm_router_retries_exhausted_total", "counter",
                   "Requests that failed after retrying on other nodes");
    cm_prom_sample(b, "llm_router_retries_exhausted_total", (double)c->retries_exhausted, NULL);
}

/* ---- llm_router_*: nodes ---- */

#define NODE_GAUGES 9
static const struct {
    const char *name, *help;
} node_gauges[NODE_GAUGES] = {
    { "llm_router_node_up", "1 when the node is online (heartbeating), else 0" },
    { "llm_router_in_flight_requests", "Requests the router has in flight on the node" },
    { "llm_router_node_slots_busy", "Sequences busy on the node, as it reported" },
    { "llm_router_node_slots", "Parallel sequences of the node (its capacity; not _total: a gauge)" },
    { "llm_router_node_queued_requests", "Requests waiting on the node, as it reported" },
    { "llm_router_node_cpu_percent", "CPU usage of the node's machine" },
    { "llm_router_node_memory_percent", "Memory usage of the node's machine" },
    { "llm_router_node_gpu_percent", "GPU usage of the node's machine" },
    { "llm_router_node_gpu_memory_percent", "GPU memory usage of the node's machine" },
};

static double node_value(const rt_node_view_t *v, int k)
{
    switch (k) {
    case 0: return v->online ? 1 : 0;
    case 1: return v->inflight;
    case 2: return v->active;
    case 3: return v->slots;
    case 4: return v->queued;
    case 5: return v->cpu;
    case 6: return v->mem;
    case 7: return v->gpu;
    default: return v->gpu_mem;
    }
}

static const char *view_name(const rt_node_view_t *v)
{
    const char *n = v->custom_name && *v->custom_name ? v->custom_name : v->machine_name;
    return n && rt_metrics_label_ok(n, RT_NODE_NAME_MAX - 1) ? n : "";
}

static void write_nodes(struct evbuffer *b, rt_registry_t *reg)
{
    rt_node_view_t *v = NULL;
    size_t n = reg ? rt_registry_snapshot(reg, false, &v) : 0;
    static const char *const states[] = { "online", "initializing", "suspended", "offline" };
    cm_prom_family(b, "llm_router_nodes", "gauge", "Registered nodes by status");
    for (size_t s = 0; s < 4; s++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += strcmp(v[i].status, states[s]) == 0;
        cm_prom_sample(b, "llm_router_nodes", (double)k, "status", states[s], NULL);
    }
    for (int k = 0; k < NODE_GAUGES; k++) {
        cm_prom_family(b, node_gauges[k].name, "gauge", node_gauges[k].help);
        for (size_t i = 0; i < n; i++) {
            double x = node_value(&v[i], k);
            if (k >= 5 && x < 0)
                continue; /* not reported */
            cm_prom_sample(b, node_gauges[k].name, x, "node_id", v[i].id, "node_name", view_name(&v[i]), NULL);
        }
    }
    cm_prom_family(b, "llm_router_node_status", "gauge",
                   "The node's status: 1 on the series of its current status, 0 on the others");
    for (size_t i = 0; i < n; i++)
        for (size_t s = 0; s < 4; s++)
            cm_prom_sample(b, "llm_router_node_status", strcmp(v[i].status, states[s]) == 0 ? 1 : 0, "node_id",
                           v[i].id, "node_name", view_name(&v[i]), "status", states[s], NULL);
    uint64_t susp = reg ? rt_registry_suspensions(reg) : 0;
    cm_prom_family(b, "llm_router_node_suspensions_total", "counter",
                   "Nodes suspended after failing at connection level");
    cm_prom_sample(b, "llm_router_node_suspensions_total", (double)susp, NULL);
    rt_registry_views_free(v, n);
}

/* ---- process_* (/proc/self), as the Prometheus client libraries name them ---- */

static void write_process(struct evbuffer *b, uint64_t start_wall_ms)
{
    double cpu = 0, vsize = 0, rss = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long ut = 0, stt = 0, vs = 0;
        long rs = 0;
        /* after ")": state(3) ... utime(14) stime(15) ... vsize(23) rss(24) */
        if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %*u %lu %ld",
                        &ut, &stt, &vs, &rs) == 4) {
            cpu = (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
            vsize = (double)vs;
            rss = (double)rs * (double)sysconf(_SC_PAGESIZE);
        }
    }
    double fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            fds += e->d_name[0] != '.';
        closedir(d);
        fds -= 1; /* opendir's own */
    }
    struct rlimit rl;
    double maxfds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0;
    cm_prom_family(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    cm_prom_sample(b, "process_cpu_seconds_total", cpu, NULL);
    cm_prom_family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    cm_prom_sample(b, "process_resident_memory_bytes", rss, NULL);
    cm_prom_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    cm_prom_sample(b, "process_virtual_memory_bytes", vsize, NULL);
    cm_prom_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    cm_prom_sample(b, "process_open_fds", fds, NULL);
    cm_prom_family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    cm_prom_sample(b, "process_max_fds", maxfds, NULL);
    cm_prom_family(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    cm_prom_sample(b, "process_start_time_seconds", (double)(start_wall_ms / 1000), NULL);
}

void rt_metrics_write(rt_metrics_t *m, const rt_metrics_sources_t *src, struct evbuffer *out)
{
    copy_t c;
    take_copy(m, &c);
    write_genai(out, &c);
    write_requests(out, &c);
    cm_prom_family(out, "llm_router_queue_depth", "gauge", "Requests waiting in the admission queue now");
    cm_prom_sample(out, "llm_router_queue_depth", (double)src->queue_depth, NULL);
    write_nodes(out, src->registry);
    cm_prom_family(out, "llm_router_history_queue_depth", "gauge", "History rows waiting for the writer");
    cm_prom_sample(out, "llm_router_history_queue_depth", (double)src->history_depth, NULL);
    cm_prom_family(out, "llm_router_history_written_total", "counter", "History rows committed");
    cm_prom_sample(out, "llm_router_history_written_total", (double)src->history_written, NULL);
    cm_prom_family(out, "llm_router_history_dropped_total", "counter",
                   "History rows dropped (queue full or a failed write)");
    cm_prom_sample(out, "llm_router_history_dropped_total", (double)src->history_dropped, NULL);
    cm_prom_family(out, "llm_router_metrics_series", "gauge",
                   "Label sets held by llm_router_requests_total (bounded, see core/metrics.h)");
    cm_prom_sample(out, "llm_router_metrics_series", (double)c.nseries, NULL);
    cm_prom_family(out, "llm_router_metrics_dropped_total", "counter",
                   "Observations not counted because the series bound was reached");
    cm_prom_sample(out, "llm_router_metrics_dropped_total", (double)c.dropped, NULL);
    cm_prom_family(out, "llm_router_build_info", "gauge", "The router's version");
    cm_prom_sample(out, "llm_router_build_info", 1, "version", LLMR_VERSION, NULL);
    write_process(out, src->start_wall_ms);
    free_copy(&c);
}

void rt_metrics_write_cloud(rt_metrics_t *m, struct evbuffer *out)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->ncloud, nl = m->ncloud_lat;
    rt_mcloud_t *cl = cm_xmalloc((n ? n : 1) * sizeof(*cl));
    rt_mcloud_lat_t *lat = cm_xmalloc((nl ? nl : 1) * sizeof(*lat));
    memcpy(cl, m->cloud, n * sizeof(*cl));
    memcpy(lat, m->cloud_lat, nl * sizeof(*lat));
    pthread_mutex_unlock(&m->mu);
    char st[16];
    cm_prom_family(out, "cloud_requests_total", "counter", "Requests to cloud providers by provider and status code");
    for (size_t i = 0; i < n; i++) {
        snprintf(st, sizeof(st), "%d", cl[i].status);
        cm_prom_sample(out, "cloud_requests_total", (double)cl[i].count, "provider", cl[i].provider, "status", st,
                       NULL);
    }
    cm_prom_family(out, "cloud_request_latency_seconds", "histogram", "Latency of cloud provider requests");
    for (size_t i = 0; i < nl; i++) {
        const char *l[2] = { "provider", lat[i].provider };
        cm_prom_hist_write(out, "cloud_request_latency_seconds", &lat[i].lat, l, 1);
    }
    free(cl);
    free(lat);
}
