/* metrics: counting (core/metrics.h). The scrape is in metrics_write.c.
 *
 * One mutex guards two open-addressing tables (request series, histogram
 * groups) keyed by their label tuple. A request's end hashes its labels
 * outside the lock, then finds (or, the first time only, allocates) its
 * entries and bumps them under it: a few hundred nanoseconds, no allocation
 * once a tuple has been seen (the unit test prints the figure). */
#include "core/metrics_int.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rt_metrics_ep_path[EP_N] = { "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                               "other" };
const char *const rt_metrics_ep_op[EP_N] = { "chat", "text_completion", "embeddings", "other" };
const char *const rt_metrics_rej_name[REJ_N] = { "queue_full", "queue_timeout", "no_node_available",
                                                 "model_not_found", "client_gone" };

/* OpenTelemetry GenAI recommended boundaries (semantic-conventions
 * docs/gen-ai/gen-ai-metrics.md). */
const double rt_metrics_b_genai_dur[14] = { 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64,
                                            1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92 };
const double rt_metrics_b_ttft[16] = { 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                       0.25,  0.5,   0.75, 1,    2.5,  5,    7.5,  10 };
const double rt_metrics_b_tpot[13] = { 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5 };
const double rt_metrics_b_tokens[14] = { 1,      4,       16,      64,       256,      1024,     4096,
                                         16384,  65536,   262144,  1048576,  4194304,  16777216, 67108864 };
/* The router's request duration: the GenAI set with millisecond steps below
 * (embeddings and errors answer in milliseconds) and two above. */
const double rt_metrics_b_router_dur[19] = { 0.001, 0.0025, 0.005, 0.01,  0.02,  0.04,  0.08,
                                             0.16,  0.32,   0.64,  1.28,  2.56,  5.12,  10.24,
                                             20.48, 40.96,  81.92, 163.84, 327.68 };
/* The router's own time per request (Bifrost's overhead set, 10 us .. 0.1 s). */
const double rt_metrics_b_overhead[13] = { 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                           0.0025,  0.005,    0.01,    0.025,  0.05,    0.1 };
const double rt_metrics_b_queue[15] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,   5,    10,    30,   60,  120 };

#define NB(a) (sizeof(a) / sizeof((a)[0]))

/* ---- labels ---- */

static int ep_index(const char *endpoint)
{
    if (!endpoint)
        return EP_OTHER;
    for (int i = 0; i < EP_OTHER; i++)
        if (strcmp(endpoint, rt_metrics_ep_path[i]) == 0 || strcmp(endpoint, rt_metrics_ep_path[i] + 3) == 0)
            return i;
    return EP_OTHER;
}

/* Printable UTF-8 (no control characters, well-formed sequences) of at most
 * max bytes: a label value every Prometheus parser accepts. */
bool rt_metrics_label_ok(const char *s, size_t max)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (p[n]) {
        unsigned c = p[n];
        size_t k;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80)
            k = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            k = 2;
        else if (c >= 0xe0 && c <= 0xef)
            k = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 4;
        else
            return false;
        for (size_t i = 1; i < k; i++)
            if ((p[n + i] & 0xc0) != 0x80)
                return false;
        if (k == 3 && ((c == 0xe0 && p[n + 1] < 0xa0) || (c == 0xed && p[n + 1] > 0x9f)))
            return false; /* overlong, surrogate */
        if (k == 4 && ((c == 0xf0 && p[n + 1] < 0x90) || (c == 0xf4 && p[n + 1] > 0x8f)))
            return false;
        n += k;
        if (n > max)
            return false;
    }
    return true;
}

static const char *model_label(const char *model, const char *error_type)
{
    if (!model || !*model || (error_type && strcmp(error_type, "model_not_found") == 0) ||
        !rt_metrics_label_ok(model, RT_METRICS_MODEL_MAX))
        return "other";
    return model;
}

static const char *name_label(const char *s, size_t max)
{
    return s && rt_metrics_label_ok(s, max - 1) ? s : "";
}

/* FNV-1a, strings separated by their NUL */
static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t fnv_str(uint32_t h, const char *s) { return fnv(h, s, strlen(s) + 1); }

/* ---- tables ---- */

static void table_init(rt_mtable_t *t, size_t max)
{
    size_t cap = 16;
    while (cap < 2 * max)
        cap <<= 1;
    t->slot = cm_xcalloc(cap, sizeof(void *));
    t->cap = cap;
    t->n = 0;
}

static uint32_t series_hash(int ep, const char *model, const char *id, const char *name, int status, bool stream)
{
    uint32_t h = 2166136261u;
    unsigned char e[2] = { (unsigned char)ep, stream };
    h = fnv(h, e, 2);
    h = fnv(h, &status, sizeof(status));
    h = fnv_str(h, model);
    h = fnv_str(h, id);
    return fnv_str(h, name);
}

/* The series, added when new and there is room (limit). NULL: full. */
static rt_mseries_t *series_get(rt_mtable_t *t, uint32_t h, int ep, const char *model, const char *id,
                                const char *name, int status, bool stream, size_t limit)
{
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        rt_mseries_t *s = t->slot[i];
        if (!s) {
            if (t->n >= limit)
                return NULL;
            s = cm_xcalloc(1, sizeof(*s));
            s->hash = h;
            s->ep = (uint8_t)ep;
            s->stream = stream;
            s->status = (uint16_t)status;
            snprintf(s->model, sizeof(s->model), "%s", model);
            snprintf(s->node_id, sizeof(s->node_id), "%s", id);
            snprintf(s->node_name, sizeof(s->node_name), "%s", name);
            t->slot[i] = s;
            t->n++;
            return s;
        }
        if (s->hash == h && s->ep == ep && s->status == status && s->stream == stream &&
            strcmp(s->model, model) == 0 && strcmp(s->node_id, id) == 0 && strcmp(s->node_name, name) == 0)
            return s;
    }
}

static uint32_t group_hash(int ep, const char *model)
{
    unsigned char e = (unsigned char)ep;
    return fnv_str(fnv(2166136261u, &e, 1), model);
}

static rt_mgroup_t *group_find(rt_mtable_t *t, uint32_t h, int ep, const char *model, size_t limit)
{
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        rt_mgroup_t *g = t->slot[i];
        if (!g) {
            if (t->n >= limit)
                return NULL;
            g = cm_xcalloc(1, sizeof(*g));
            g->hash = h;
            g->ep = (uint8_t)ep;
            snprintf(g->model, sizeof(g->model), "%s", model);
            cm_prom_hist_init(&g->dur, rt_metrics_b_router_dur, NB(rt_metrics_b_router_dur));
            cm_prom_hist_init(&g->ok_dur, rt_metrics_b_genai_dur, NB(rt_metrics_b_genai_dur));
            cm_prom_hist_init(&g->ttft, rt_metrics_b_ttft, NB(rt_metrics_b_ttft));
            cm_prom_hist_init(&g->tpot, rt_metrics_b_tpot, NB(rt_metrics_b_tpot));
            cm_prom_hist_init(&g->tok_in, rt_metrics_b_tokens, NB(rt_metrics_b_tokens));
            cm_prom_hist_init(&g->tok_out, rt_metrics_b_tokens, NB(rt_metrics_b_tokens));
            t->slot[i] = g;
            t->n++;
            return g;
        }
        if (g->hash == h && g->ep == ep && strcmp(g->model, model) == 0)
            return g;
    }
}

/* The group of (ep, model), or of (ep, "other") once the groups are full
 * (RT_METRICS_MAX_GROUPS + one "other" per endpoint). */
static rt_mgroup_t *group_get(rt_metrics_t *m, int ep, const char *model, uint32_t h)
{
    rt_mgroup_t *g = group_find(&m->groups, h, ep, model, RT_METRICS_MAX_GROUPS);
    if (!g)
        g = group_find(&m->groups, group_hash(ep, "other"), ep, "other", RT_METRICS_MAX_GROUPS + EP_N);
    return g;
}

static rt_merr_t *group_err(rt_mgroup_t *g, const char *name)
{
    for (size_t i = 0; i < g->nerr; i++)
        if (strcmp(g->err[i]->name, name) == 0)
            return g->err[i];
    if (g->nerr >= RT_METRICS_MAX_ERROR_TYPES)
        name = "_OTHER";
    for (size_t i = 0; i < g->nerr; i++)
        if (strcmp(g->err[i]->name, name) == 0)
            return g->err[i];
    rt_merr_t *e = cm_xcalloc(1, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    cm_prom_hist_init(&e->h, rt_metrics_b_genai_dur, NB(rt_metrics_b_genai_dur));
    g->err[g->nerr++] = e;
    return e;
}

/* ---- public ---- */

rt_metrics_t *rt_metrics_new(void)
{
    rt_metrics_t *m = cm_xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    table_init(&m->series, RT_METRICS_MAX_SERIES + RT_METRICS_FOLD_RESERVE);
    table_init(&m->groups, RT_METRICS_MAX_GROUPS + EP_N);
    cm_prom_hist_init(&m->overhead, rt_metrics_b_overhead, NB(rt_metrics_b_overhead));
    cm_prom_hist_init(&m->queue_wait, rt_metrics_b_queue, NB(rt_metrics_b_queue));
    return m;
}

void rt_metrics_free(rt_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->series.cap; i++)
        free(m->series.slot[i]);
    for (size_t i = 0; i < m->groups.cap; i++) {
        rt_mgroup_t *g = m->groups.slot[i];
        if (!g)
            continue;
        for (size_t k = 0; k < g->nerr; k++)
            free(g->err[k]);
        free(g);
    }
    free(m->series.slot);
    free(m->groups.slot);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int reject_reason(const rt_proxy_result_t *r)
{
    if (!r->error_type)
        return -1;
    for (int i = 0; i < REJ_CLIENT_GONE; i++)
        if (strcmp(r->error_type, rt_metrics_rej_name[i]) == 0)
            return i;
    if (r->attempts == 0 && strcmp(r->error_type, "client_closed") == 0)
        return REJ_CLIENT_GONE; /* left while waiting in the queue */
    return -1;
}

static double secs(uint64_t from, uint64_t to) { return to > from ? (double)(to - from) / 1e6 : 0; }

void rt_metrics_request(rt_metrics_t *m, const char *endpoint, const char *model, const rt_proxy_result_t *r)
{
    int ep = ep_index(endpoint);
    const char *mdl = model_label(model, r->error_type);
    const char *id = name_label(r->node_id, RT_NODE_ID_MAX);
    const char *name = name_label(r->node_name, RT_NODE_NAME_MAX);
    int status = r->status >= 0 && r->status <= 999 ? r->status : 0;
    bool ok = !r->error_type && status < 400;
    /* the error label: the proxy's code, else the node's status code */
    char errbuf[ERR_NAME_MAX];
    const char *err = NULL;
    if (!ok) {
        if (r->error_type && rt_metrics_label_ok(r->error_type, ERR_NAME_MAX - 1))
            err = r->error_type;
        else if (r->error_type)
            err = "_OTHER";
        else {
            snprintf(errbuf, sizeof(errbuf), "%d", status);
            err = errbuf;
        }
    }
    double dur = secs(r->start_us, r->end_us);
    double overhead = dur - (double)r->queue_us / 1e6 - (double)r->upstream_us / 1e6;
    if (overhead < 0)
        overhead = 0;
    int rej = reject_reason(r);
    uint32_t hs = series_hash(ep, mdl, id, name, status, r->sse);
    uint32_t hg = group_hash(ep, mdl);

    pthread_mutex_lock(&m->mu);
    rt_mseries_t *s = series_get(&m->series, hs, ep, mdl, id, name, status, r->sse, RT_METRICS_MAX_SERIES);
    if (!s)
        s = series_get(&m->series, series_hash(ep, "other", id, name, status, r->sse), ep, "other", id, name,
                       status, r->sse, RT_METRICS_MAX_SERIES + RT_METRICS_FOLD_RESERVE);
    if (s)
        s->count++;
    else
        m->dropped++;
    rt_mgroup_t *g = group_get(m, ep, mdl, hg);
    if (g) {
        cm_prom_hist_observe(&g->dur, dur);
        if (ok) {
            cm_prom_hist_observe(&g->ok_dur, dur);
            if (r->sse && r->first_byte_us)
                cm_prom_hist_observe(&g->ttft, secs(r->start_us, r->first_byte_us));
        } else {
            cm_prom_hist_observe(&group_err(g, err)->h, dur);
        }
    }
    cm_prom_hist_observe(&m->overhead, overhead);
    if (rej != REJ_MODEL_NOT_FOUND)
        cm_prom_hist_observe(&m->queue_wait, (double)r->queue_us / 1e6);
    if (rej >= 0)
        m->rejected[rej]++;
    if (r->attempts > 1)
        m->retries += (uint64_t)(r->attempts - 1);
    if (r->attempts > 1 && !ok && (!r->error_type || strncmp(r->error_type, "upstream_", 9) == 0))
        m->retries_exhausted++;
    pthread_mutex_unlock(&m->mu);
}

void rt_metrics_tokens(rt_metrics_t *m, const char *endpoint, const char *model, int64_t prompt_tokens,
                       int64_t completion_tokens, double gen_s)
{
    int ep = ep_index(endpoint);
    const char *mdl = model_label(model, NULL);
    uint32_t hg = group_hash(ep, mdl);
    pthread_mutex_lock(&m->mu);
    rt_mgroup_t *g = group_get(m, ep, mdl, hg);
    if (g) {
        if (prompt_tokens >= 0) {
            cm_prom_hist_observe(&g->tok_in, (double)prompt_tokens);
            g->tokens_in += (uint64_t)prompt_tokens;
        }
        if (completion_tokens >= 0 && ep != EP_EMBEDDINGS) {
            cm_prom_hist_observe(&g->tok_out, (double)completion_tokens);
            g->tokens_out += (uint64_t)completion_tokens;
        }
        if (gen_s > 0 && completion_tokens > 1)
            cm_prom_hist_observe(&g->tpot, gen_s / (double)(completion_tokens - 1));
    }
    pthread_mutex_unlock(&m->mu);
}

void rt_metrics_cloud(rt_metrics_t *m, const char *provider, int status, double latency_s)
{
    const char *p = provider && rt_metrics_label_ok(provider, sizeof(m->cloud[0].provider) - 1) ? provider : "other";
    pthread_mutex_lock(&m->mu);
    rt_mcloud_t *c = NULL;
    for (size_t i = 0; i < m->ncloud && !c; i++)
        if (m->cloud[i].status == status && strcmp(m->cloud[i].provider, p) == 0)
            c = &m->cloud[i];
    if (!c && m->ncloud < NB(m->cloud)) {
        c = &m->cloud[m->ncloud++];
        snprintf(c->provider, sizeof(c->provider), "%s", p);
        c->status = status;
    }
    if (c)
        c->count++;
    else
        m->dropped++;
    rt_mcloud_lat_t *l = NULL;
    for (size_t i = 0; i < m->ncloud_lat && !l; i++)
        if (strcmp(m->cloud_lat[i].provider, p) == 0)
            l = &m->cloud_lat[i];
    if (!l && m->ncloud_lat == RT_METRICS_MAX_PROVIDERS)
        for (size_t i = 0; i < m->ncloud_lat && !l; i++)
            if (strcmp(m->cloud_lat[i].provider, "other") == 0)
                l = &m->cloud_lat[i];
    if (!l && m->ncloud_lat < NB(m->cloud_lat)) {
        l = &m->cloud_lat[m->ncloud_lat++];
        snprintf(l->provider, sizeof(l->provider), "%s", m->ncloud_lat > RT_METRICS_MAX_PROVIDERS ? "other" : p);
        cm_prom_hist_init(&l->lat, rt_metrics_b_genai_dur, NB(rt_metrics_b_genai_dur));
    }
    if (l)
        cm_prom_hist_observe(&l->lat, latency_s);
    pthread_mutex_unlock(&m->mu);
}

void rt_metrics_counts(rt_metrics_t *m, size_t *series, size_t *groups)
{
    pthread_mutex_lock(&m->mu);
    if (series)
        *series = m->series.n;
    if (groups)
        *groups = m->groups.n;
    pthread_mutex_unlock(&m->mu);
}
