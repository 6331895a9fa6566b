#include "core/registry.h"

#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAT_ALPHA 0.3 /* weight of the newest latency in the moving average */

typedef struct {
    uint64_t wall_ms;
    float cpu, mem, gpu, gpu_mem, avg_ms, tps;
    int active, inflight;
} sample_t;

typedef struct {
    char id[40];
    char *machine_name, *ip, *runtime_version, *gpu_devices_json;
    char *custom_name, *tags_json, *notes, *token_hash;
    int runtime_port, api_port;
    bool gpu_available;
    int64_t registered_at;
    char **models, **loaded;
    size_t nmodels, nloaded;
    char base_url[96];
    /* state */
    bool online, initializing, seen;
    uint64_t last_seen_ms, last_seen_wall, suspended_until;
    int slots, inflight, inflight_at_hb, active, queued;
    double cpu, mem, gpu, gpu_mem, avg_ms, tps;
    int ready[2];
    /* the router's own view */
    uint64_t total, ok, failed;
    double lat_ewma, lat_sum;
    sample_t *hist;
    size_t hist_len, hist_head;
} node_t;

struct rt_registry {
    pthread_mutex_t mu;
    rt_registry_opts_t o;
    node_t *nodes[RT_REGISTRY_MAX_NODES];
    size_t n;
    unsigned rr;
    void (*hook)(void *);
    void *hook_ud;
};

/* ---- helpers (called with the lock held) ---- */

static char *dup_or_null(const char *s)
{
    return s ? cm_xstrdup(s) : NULL;
}

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = dup_or_null(src);
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void set_list(char ***dst, size_t *dn, const char *const *src, size_t n)
{
    free_list(*dst, *dn);
    if (n > RT_REGISTRY_MAX_MODELS)
        n = RT_REGISTRY_MAX_MODELS;
    *dst = n ? cm_xcalloc(n, sizeof(char *)) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = strcmp((*dst)[j], src[i]) == 0;
        if (!dup)
            (*dst)[k++] = cm_xstrdup(src[i]);
    }
    *dn = k;
}

static void node_free(node_t *nd)
{
    free(nd->machine_name);
    free(nd->ip);
    free(nd->runtime_version);
    free(nd->gpu_devices_json);
    free(nd->custom_name);
    free(nd->tags_json);
    free(nd->notes);
    free(nd->token_hash);
    free_list(nd->models, nd->nmodels);
    free_list(nd->loaded, nd->nloaded);
    free(nd->hist);
    free(nd);
}

static node_t *find(rt_registry_t *reg, const char *id)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->nodes[i]->id, id) == 0)
            return reg->nodes[i];
    return NULL;
}

static bool serves(const node_t *nd, const char *model)
{
    for (size_t i = 0; i < nd->nmodels; i++)
        if (strcmp(nd->models[i], model) == 0)
            return true;
    return false;
}

static void set_url(node_t *nd)
{
    bool v6 = strchr(nd->ip, ':') != NULL;
    snprintf(nd->base_url, sizeof(nd->base_url), v6 ? "http://[%s]:%d" : "http://%s:%d", nd->ip,
             nd->api_port);
}

static node_t *node_new(rt_registry_t *reg, const char *id)
{
    node_t *nd = cm_xcalloc(1, sizeof(*nd));
    snprintf(nd->id, sizeof(nd->id), "%s", id);
    nd->tags_json = cm_xstrdup("[]");
    nd->gpu_devices_json = cm_xstrdup("[]");
    nd->cpu = nd->mem = nd->gpu = nd->gpu_mem = -1;
    nd->hist = cm_xcalloc(reg->o.history_max ? reg->o.history_max : 1, sizeof(sample_t));
    reg->nodes[reg->n++] = nd;
    return nd;
}

static void fire_hook(rt_registry_t *reg)
{
    if (reg->hook)
        reg->hook(reg->hook_ud);
}

/* ---- lifetime ---- */

rt_registry_t *rt_registry_new(const rt_registry_opts_t *opts)
{
    rt_registry_t *reg = cm_xcalloc(1, sizeof(*reg));
    pthread_mutex_init(&reg->mu, NULL);
    reg->o = *opts;
    if (reg->o.default_slots <= 0)
        reg->o.default_slots = 4;
    return reg;
}

void rt_registry_free(rt_registry_t *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++)
        node_free(reg->nodes[i]);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

void rt_registry_set_capacity_hook(rt_registry_t *reg, void (*fn)(void *), void *ud)
{
    reg->hook = fn;
    reg->hook_ud = ud;
}

rt_lb_mode_t rt_registry_mode(const rt_registry_t *reg) { return reg->o.mode; }

/* ---- registration and heartbeats ---- */

int rt_registry_register(rt_registry_t *reg, const rt_node_info_t *info, char id_out[40], bool *created)
{
    int rc = 0;
    pthread_mutex_lock(&reg->mu);
    node_t *nd = NULL;
    for (size_t i = 0; i < reg->n && !nd; i++)
        if (strcmp(reg->nodes[i]->machine_name, info->machine_name) == 0 &&
            reg->nodes[i]->runtime_port == info->runtime_port)
            nd = reg->nodes[i];
    *created = nd == NULL;
    if (!nd) {
        if (reg->n == RT_REGISTRY_MAX_NODES) {
            rc = -1;
            goto out;
        }
        nd = node_new(reg, info->id);
        nd->registered_at = (int64_t)cm_wall_ms();
    }
    set_str(&nd->machine_name, info->machine_name);
    set_str(&nd->ip, info->ip_address);
    set_str(&nd->runtime_version, info->runtime_version ? info->runtime_version : "");
    set_str(&nd->gpu_devices_json, info->gpu_devices_json ? info->gpu_devices_json : "[]");
    nd->runtime_port = info->runtime_port;
    nd->api_port = info->api_port;
    nd->gpu_available = info->gpu_available;
    set_list(&nd->models, &nd->nmodels, info->models, info->nmodels);
    if (info->total_slots > 0)
        nd->slots = info->total_slots;
    set_url(nd);
    nd->online = true;
    nd->seen = true;
    nd->suspended_until = 0;
    nd->last_seen_ms = cm_now_ms();
    nd->last_seen_wall = cm_wall_ms();
    snprintf(id_out, 40, "%s", nd->id);
out:
    pthread_mutex_unlock(&reg->mu);
    if (rc == 0)
        fire_hook(reg);
    return rc;
}

void rt_registry_restore(rt_registry_t *reg, const rt_node_rec_t *rec)
{
    pthread_mutex_lock(&reg->mu);
    if (reg->n < RT_REGISTRY_MAX_NODES && !find(reg, rec->id)) {
        node_t *nd = node_new(reg, rec->id);
        nd->machine_name = cm_xstrdup(rec->machine_name ? rec->machine_name : "");
        nd->ip = cm_xstrdup(rec->ip_address ? rec->ip_address : "127.0.0.1");
        nd->runtime_version = cm_xstrdup(rec->runtime_version ? rec->runtime_version : "");
        set_str(&nd->gpu_devices_json, rec->gpu_devices_json ? rec->gpu_devices_json : "[]");
        set_str(&nd->tags_json, rec->tags_json ? rec->tags_json : "[]");
        nd->custom_name = dup_or_null(rec->custom_name);
        nd->notes = dup_or_null(rec->notes);
        nd->token_hash = dup_or_null(rec->token_hash);
        nd->runtime_port = rec->runtime_port;
        nd->api_port = rec->api_port;
        nd->gpu_available = rec->gpu_available;
        nd->registered_at = rec->registered_at;
        set_url(nd);
    }
    pthread_mutex_unlock(&reg->mu);
}

int rt_registry_export(rt_registry_t *reg, const char *id, rt_node_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd) {
        rec->id = cm_xstrdup(nd->id);
        rec->machine_name = cm_xstrdup(nd->machine_name);
        rec->ip_address = cm_xstrdup(nd->ip);
        rec->runtime_port = nd->runtime_port;
        rec->api_port = nd->api_port;
        rec->runtime_version = cm_xstrdup(nd->runtime_version);
        rec->gpu_available = nd->gpu_available;
        rec->gpu_devices_json = cm_xstrdup(nd->gpu_devices_json);
        rec->custom_name = dup_or_null(nd->custom_name);
        rec->tags_json = cm_xstrdup(nd->tags_json);
        rec->notes = dup_or_null(nd->notes);
        rec->token_hash = dup_or_null(nd->token_hash);
        rec->registered_at = nd->registered_at;
    }
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

static void push_sample(rt_registry_t *reg, node_t *nd)
{
    if (!reg->o.history_max)
        return;
    sample_t *s = &nd->hist[nd->hist_head];
    *s = (sample_t){ cm_wall_ms(), (float)nd->cpu, (float)nd->mem, (float)nd->gpu, (float)nd->gpu_mem,
                     (float)nd->avg_ms, (float)nd->tps, nd->active, nd->inflight };
    nd->hist_head = (nd->hist_head + 1) % reg->o.history_max;
    if (nd->hist_len < reg->o.history_max)
        nd->hist_len++;
}

int rt_registry_heartbeat(rt_registry_t *reg, const char *id, const rt_node_metrics_t *m)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (!nd) {
        pthread_mutex_unlock(&reg->mu);
        return -1;
    }
    nd->cpu = m->cpu;
    nd->mem = m->mem;
    nd->gpu = m->gpu;
    nd->gpu_mem = m->gpu_mem;
    nd->active = m->active;
    nd->queued = m->queued;
    if (m->total_slots > 0)
        nd->slots = m->total_slots;
    nd->avg_ms = m->avg_ms;
    nd->tps = m->tps;
    nd->initializing = m->initializing;
    nd->ready[0] = m->ready_models[0];
    nd->ready[1] = m->ready_models[1];
    if (m->gpu_devices_json)
        set_str(&nd->gpu_devices_json, m->gpu_devices_json);
    if (m->models)
        set_list(&nd->models, &nd->nmodels, m->models, m->nmodels);
    if (m->loaded)
        set_list(&nd->loaded, &nd->nloaded, m->loaded, m->nloaded);
    nd->inflight_at_hb = nd->inflight;
    nd->online = true;
    nd->seen = true;
    nd->suspended_until = 0;
    nd->last_seen_ms = cm_now_ms();
    nd->last_seen_wall = cm_wall_ms();
    push_sample(reg, nd);
    pthread_mutex_unlock(&reg->mu);
    fire_hook(reg);
    return 0;
}

int rt_registry_remove(rt_registry_t *reg, const char *id)
{
    int rc = -1;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->nodes[i]->id, id) == 0) {
            node_free(reg->nodes[i]);
            memmove(&reg->nodes[i], &reg->nodes[i + 1], (reg->n - i - 1) * sizeof(node_t *));
            reg->n--;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

int rt_registry_disconnect(rt_registry_t *reg, const char *id)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd)
        nd->online = false;
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

int rt_registry_settings(rt_registry_t *reg, const char *id, const char *custom_name,
                         const char *tags_json, const char *notes)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd) {
        if (custom_name)
            set_str(&nd->custom_name, *custom_name ? custom_name : NULL);
        if (tags_json)
            set_str(&nd->tags_json, tags_json);
        if (notes)
            set_str(&nd->notes, *notes ? notes : NULL);
    }
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

int rt_registry_set_token_hash(rt_registry_t *reg, const char *id, const char *hash)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd)
        set_str(&nd->token_hash, hash);
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

bool rt_registry_exists(rt_registry_t *reg, const char *id)
{
    pthread_mutex_lock(&reg->mu);
    bool ok = find(reg, id) != NULL;
    pthread_mutex_unlock(&reg->mu);
    return ok;
}

/* ---- health ---- */

int rt_registry_sweep(rt_registry_t *reg, uint64_t now_ms, uint64_t timeout_ms)
{
    int off = 0;
    bool lifted = false;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n; i++) {
        node_t *nd = reg->nodes[i];
        if (nd->online && timeout_ms && now_ms > nd->last_seen_ms + timeout_ms) {
            nd->online = false;
            off++;
        }
        if (nd->suspended_until && now_ms >= nd->suspended_until) {
            nd->suspended_until = 0;
            lifted = true;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    if (lifted)
        fire_hook(reg);
    return off;
}

void rt_registry_suspend(rt_registry_t *reg, const char *id, uint64_t ms)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd)
        nd->suspended_until = cm_now_ms() + ms;
    pthread_mutex_unlock(&reg->mu);
}

/* ---- selection ---- */

static bool excluded(const char *id, const char *const *excl, size_t nexcl)
{
    for (size_t i = 0; i < nexcl; i++)
        if (strcmp(excl[i], id) == 0)
            return true;
    return false;
}

static void to_bal(const rt_registry_t *reg, const node_t *nd, rt_bal_node_t *b)
{
    int ext = nd->active - nd->inflight_at_hb;
    *b = (rt_bal_node_t){
        .inflight = nd->inflight, .external = ext > 0 ? ext : 0,
        .slots = nd->slots > 0 ? nd->slots : reg->o.default_slots,
        .cpu = nd->cpu, .mem = nd->mem, .gpu = nd->gpu, .gpu_mem = nd->gpu_mem,
        .gpu_available = nd->gpu_available, .latency_ms = nd->lat_ewma,
        .reported_ms = nd->avg_ms, .tps = nd->tps,
    };
}

rt_pick_t rt_registry_acquire(rt_registry_t *reg, const char *model, const char *const *excl,
                              size_t nexcl, rt_lease_t *lease)
{
    rt_bal_node_t snap[RT_BALANCER_MAX];
    node_t *map[RT_BALANCER_MAX];
    size_t k = 0;
    bool served = false, hit_excl = false, usable = false;
    uint64_t now = cm_now_ms(), lift = 0;
    rt_pick_t rc;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n; i++) {
        node_t *nd = reg->nodes[i];
        if (!nd->online || !serves(nd, model))
            continue;
        if (excluded(nd->id, excl, nexcl)) {
            hit_excl = true;
            continue;
        }
        served = true;
        if (nd->suspended_until && now < nd->suspended_until) {
            lift = lift && lift < nd->suspended_until ? lift : nd->suspended_until;
            continue;
        }
        usable = true; /* busy or loading: worth waiting for */
        if (nd->initializing || k == RT_BALANCER_MAX)
            continue;
        to_bal(reg, nd, &snap[k]);
        map[k++] = nd;
    }
    int idx = rt_balancer_pick(reg->o.mode, snap, k, &reg->rr);
    if (idx >= 0) {
        node_t *nd = map[idx];
        nd->inflight++;
        snprintf(lease->node_id, sizeof(lease->node_id), "%s", nd->id);
        memcpy(lease->base_url, nd->base_url, sizeof(lease->base_url));
        lease->start_us = cm_now_us();
        rc = RT_PICK_OK;
    } else {
        rc = usable ? RT_PICK_BUSY : served ? RT_PICK_DOWN : hit_excl ? RT_PICK_EXHAUSTED : RT_PICK_NONE;
        lease->retry_s = rc == RT_PICK_DOWN ? (unsigned)((lift - now + 999) / 1000) : 0;
    }
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

void rt_registry_release(rt_registry_t *reg, const rt_lease_t *lease, rt_outcome_t outcome)
{
    double ms = (double)(cm_now_us() - lease->start_us) / 1000.0;
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, lease->node_id);
    if (nd) {
        if (nd->inflight > 0)
            nd->inflight--;
        if (outcome != RT_OUTCOME_NONE)
            nd->total++;
        if (outcome == RT_OUTCOME_OK) {
            nd->ok++;
            nd->lat_sum += ms;
            nd->lat_ewma = nd->lat_ewma > 0 ? LAT_ALPHA * ms + (1 - LAT_ALPHA) * nd->lat_ewma : ms;
        } else if (outcome == RT_OUTCOME_FAILED) {
            nd->failed++;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    fire_hook(reg);
}

bool rt_registry_model_known(rt_registry_t *reg, const char *model)
{
    bool known = false;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n && !known; i++)
        known = reg->nodes[i]->online && serves(reg->nodes[i], model);
    pthread_mutex_unlock(&reg->mu);
    return known;
}

/* ---- JSON for the APIs ---- */

static void add_time(cJSON *o, const char *key, uint64_t wall_ms)
{
    if (!wall_ms) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[96];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
    cJSON_AddStringToObject(o, key, buf);
}

static void add_pct(cJSON *o, const char *key, double v)
{
    if (v < 0)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

static cJSON *str_array(char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *parsed_or(const char *text, cJSON *fallback)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    if (!j)
        return fallback;
    cJSON_Delete(fallback);
    return j;
}

static const char *status_of(const node_t *nd, uint64_t now)
{
    if (!nd->online)
        return "offline";
    if (nd->suspended_until && now < nd->suspended_until)
        return "suspended";
    return nd->initializing ? "initializing" : "online";
}

static void add_metrics(cJSON *o, const node_t *nd)
{
    add_pct(o, "cpu_usage", nd->cpu);
    add_pct(o, "memory_usage", nd->mem);
    add_pct(o, "gpu_usage", nd->gpu);
    add_pct(o, "gpu_memory_usage", nd->gpu_mem);
    cJSON_AddNumberToObject(o, "active_requests", nd->active);
    cJSON_AddNumberToObject(o, "queued_requests", nd->queued);
    cJSON_AddNumberToObject(o, "average_response_time_ms", nd->avg_ms);
    cJSON_AddNumberToObject(o, "tokens_per_second", nd->tps);
}

static void add_stats(cJSON *o, const rt_registry_t *reg, const node_t *nd)
{
    cJSON_AddNumberToObject(o, "in_flight", nd->inflight);
    cJSON_AddNumberToObject(o, "total_slots", nd->slots > 0 ? nd->slots : reg->o.default_slots);
    cJSON_AddNumberToObject(o, "total_requests", (double)nd->total);
    cJSON_AddNumberToObject(o, "successful_requests", (double)nd->ok);
    cJSON_AddNumberToObject(o, "failed_requests", (double)nd->failed);
    cJSON_AddNumberToObject(o, "average_latency_ms", nd->ok ? nd->lat_sum / (double)nd->ok : 0);
    cJSON_AddNumberToObject(o, "recent_latency_ms", nd->lat_ewma);
}

static cJSON *history_json(const rt_registry_t *reg, const node_t *nd)
{
    cJSON *a = cJSON_CreateArray();
    size_t max = reg->o.history_max;
    for (size_t i = 0; i < nd->hist_len; i++) {
        const sample_t *s = &nd->hist[(nd->hist_head + max - nd->hist_len + i) % max];
        cJSON *o = cJSON_CreateObject();
        add_time(o, "timestamp", s->wall_ms);
        add_pct(o, "cpu_usage", s->cpu);
        add_pct(o, "memory_usage", s->mem);
        add_pct(o, "gpu_usage", s->gpu);
        add_pct(o, "gpu_memory_usage", s->gpu_mem);
        cJSON_AddNumberToObject(o, "active_requests", s->active);
        cJSON_AddNumberToObject(o, "in_flight", s->inflight);
        cJSON_AddNumberToObject(o, "average_response_time_ms", s->avg_ms);
        cJSON_AddNumberToObject(o, "tokens_per_second", s->tps);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *node_json(const rt_registry_t *reg, const node_t *nd, bool history, uint64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", nd->id);
    cJSON_AddStringToObject(o, "node_id", nd->id);
    cJSON_AddStringToObject(o, "machine_name", nd->machine_name);
    cJSON_AddStringToObject(o, "ip_address", nd->ip);
    cJSON_AddStringToObject(o, "runtime_version", nd->runtime_version);
    cJSON_AddNumberToObject(o, "runtime_port", nd->runtime_port);
    cJSON_AddNumberToObject(o, "node_api_port", nd->api_port);
    cJSON_AddStringToObject(o, "status", status_of(nd, now));
    cJSON_AddBoolToObject(o, "online", nd->online);
    add_time(o, "registered_at", (uint64_t)nd->registered_at);
    add_time(o, "last_seen", nd->seen ? nd->last_seen_wall : 0);
    if (nd->custom_name)
        cJSON_AddStringToObject(o, "custom_name", nd->custom_name);
    else
        cJSON_AddNullToObject(o, "custom_name");
    cJSON_AddItemToObject(o, "tags", parsed_or(nd->tags_json, cJSON_CreateArray()));
    if (nd->notes)
        cJSON_AddStringToObject(o, "notes", nd->notes);
    else
        cJSON_AddNullToObject(o, "notes");
    cJSON_AddBoolToObject(o, "gpu_available", nd->gpu_available);
    cJSON_AddItemToObject(o, "gpu_devices", parsed_or(nd->gpu_devices_json, cJSON_CreateArray()));
    cJSON_AddItemToObject(o, "available_models", str_array(nd->models, nd->nmodels));
    cJSON_AddItemToObject(o, "loaded_models", str_array(nd->loaded, nd->nloaded));
    cJSON_AddBoolToObject(o, "initializing", nd->initializing);
    cJSON *rm = cJSON_AddArrayToObject(o, "ready_models");
    cJSON_AddItemToArray(rm, cJSON_CreateNumber(nd->ready[0]));
    cJSON_AddItemToArray(rm, cJSON_CreateNumber(nd->ready[1]));
    add_metrics(o, nd);
    add_stats(o, reg, nd);
    if (history)
        cJSON_AddItemToObject(o, "history", history_json(reg, nd));
    return o;
}

cJSON *rt_registry_nodes_json(rt_registry_t *reg)
{
    cJSON *a = cJSON_CreateArray();
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n; i++)
        cJSON_AddItemToArray(a, node_json(reg, reg->nodes[i], false, now));
    pthread_mutex_unlock(&reg->mu);
    return a;
}

cJSON *rt_registry_node_json(rt_registry_t *reg, const char *id, bool history)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    cJSON *o = nd ? node_json(reg, nd, history, cm_now_ms()) : NULL;
    pthread_mutex_unlock(&reg->mu);
    return o;
}

cJSON *rt_registry_metrics_json(rt_registry_t *reg)
{
    cJSON *a = cJSON_CreateArray();
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n; i++) {
        node_t *nd = reg->nodes[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "node_id", nd->id);
        cJSON_AddStringToObject(o, "machine_name", nd->machine_name);
        cJSON_AddStringToObject(o, "status", status_of(nd, now));
        add_time(o, "last_seen", nd->seen ? nd->last_seen_wall : 0);
        add_metrics(o, nd);
        add_stats(o, reg, nd);
        cJSON_AddItemToObject(o, "history", history_json(reg, nd));
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&reg->mu);
    return a;
}

cJSON *rt_registry_summary_json(rt_registry_t *reg)
{
    int online = 0, suspended = 0, inflight = 0, slots = 0;
    uint64_t total = 0, ok = 0, failed = 0;
    double lat = 0;
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&reg->mu);
    size_t n = reg->n;
    for (size_t i = 0; i < n; i++) {
        node_t *nd = reg->nodes[i];
        online += nd->online;
        suspended += nd->online && nd->suspended_until && now < nd->suspended_until;
        inflight += nd->inflight;
        if (nd->online)
            slots += nd->slots > 0 ? nd->slots : reg->o.default_slots;
        total += nd->total;
        ok += nd->ok;
        failed += nd->failed;
        lat += nd->lat_sum;
    }
    pthread_mutex_unlock(&reg->mu);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "total_nodes", (double)n);
    cJSON_AddNumberToObject(o, "online_nodes", online);
    cJSON_AddNumberToObject(o, "offline_nodes", (double)n - online);
    cJSON_AddNumberToObject(o, "suspended_nodes", suspended);
    cJSON_AddNumberToObject(o, "total_slots", slots);
    cJSON_AddNumberToObject(o, "active_requests", inflight);
    cJSON_AddNumberToObject(o, "total_requests", (double)total);
    cJSON_AddNumberToObject(o, "successful_requests", (double)ok);
    cJSON_AddNumberToObject(o, "failed_requests", (double)failed);
    cJSON_AddNumberToObject(o, "average_response_time_ms", ok ? lat / (double)ok : 0);
    cJSON_AddStringToObject(o, "load_balancer_mode", rt_lb_mode_name(reg->o.mode));
    return o;
}

static cJSON *model_obj(const char *id, int ready, int nodes)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "llm-router");
    cJSON_AddNumberToObject(m, "ready_nodes", ready);
    cJSON_AddNumberToObject(m, "nodes", nodes);
    return m;
}

cJSON *rt_registry_models_json(rt_registry_t *reg, const char *model)
{
    cJSON *list = cJSON_CreateObject(); /* keyed by id: no duplicates */
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n; i++) {
        node_t *nd = reg->nodes[i];
        if (!nd->online)
            continue;
        for (size_t j = 0; j < nd->nmodels; j++) {
            const char *id = nd->models[j];
            if ((model && strcmp(id, model) != 0) || cJSON_GetObjectItemCaseSensitive(list, id))
                continue;
            int ready = 0, nodes = 0;
            for (size_t k = i; k < reg->n; k++) {
                node_t *o = reg->nodes[k];
                if (!o->online || !serves(o, id))
                    continue;
                nodes++;
                ready += !o->initializing && !(o->suspended_until && now < o->suspended_until);
            }
            cJSON_AddItemToObject(list, id, model_obj(id, ready, nodes));
        }
    }
    pthread_mutex_unlock(&reg->mu);
    /* the object keyed by id deduplicated; hand out a plain array */
    cJSON *out = cJSON_CreateArray();
    cJSON *it;
    while ((it = list->child)) {
        cJSON_DetachItemViaPointer(list, it);
        free(it->string);
        it->string = NULL;
        cJSON_AddItemToArray(out, it);
    }
    cJSON_Delete(list);
    if (model && !out->child) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}
