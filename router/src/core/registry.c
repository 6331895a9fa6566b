#include "core/registry.h"

#include "util.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAT_ALPHA 0.3 /* weight of the newest latency in the moving average */



typedef struct {
    char id[RT_NODE_ID_MAX];
    char *machine_name, *ip, *runtime_version, *gpu_devices_json;
    char *custom_name, *tags_json, *notes, *token_hash;
    int runtime_port, api_port;
    bool gpu_available;
    int64_t registered_at;
    char **models, **loaded;
    size_t nmodels, nloaded;
    char base_url[96];
    char auth_hdr[RT_NODE_AUTH_HDR_MAX]; /* what leases carry to the node */
    char *secret_box;                    /* its sealed form, for the store */
    /* state */
    bool online, initializing, seen;
    uint64_t last_seen_ms, last_seen_wall, suspended_until;
    int slots, inflight, inflight_at_hb, active, queued;
    double cpu, mem, gpu, gpu_mem, avg_ms, tps;
    int ready[2];
    /* the router's own view */
    uint64_t total, ok, failed;
    double lat_ewma, lat_sum;
    rt_node_sample_t *hist;
    size_t hist_len, hist_head;
    rt_node_sync_t *sync; /* the model sync's progress, as last reported */
    size_t nsync;
} node_t;

struct rt_registry {
    pthread_mutex_t mu;
    rt_registry_opts_t o;
    node_t *nodes[RT_REGISTRY_MAX_NODES];
    size_t n;
    unsigned rr;
    void (*hook)(void *);
    void *hook_ud;
    uint64_t suspensions; /* rt_registry_suspend calls on a known node, ever */
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
    free(nd->secret_box);
    sodium_memzero(nd->auth_hdr, sizeof(nd->auth_hdr));
    free_list(nd->models, nd->nmodels);
    free_list(nd->loaded, nd->nloaded);
    free(nd->hist);
    free(nd->sync);
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
    nd->hist = cm_xcalloc(reg->o.history_max ? reg->o.history_max : 1, sizeof(rt_node_sample_t));
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

static void set_secret(node_t *nd, const char *secret, const char *box)
{
    if (secret)
        snprintf(nd->auth_hdr, sizeof(nd->auth_hdr), "Authorization: Bearer %s", secret);
    if (box)
        set_str(&nd->secret_box, box);
}

static void remove_at(rt_registry_t *reg, size_t i)
{
    node_free(reg->nodes[i]);
    memmove(&reg->nodes[i], &reg->nodes[i + 1], (reg->n - i - 1) * sizeof(node_t *));
    reg->n--;
}

/* May this registration take over nd (same identity)? The node's current
 * token proves it; without it only an offline node registering from the
 * address it had (it restarted and lost its token) is taken over, so that a
 * join-token holder cannot steal a live node's identity and traffic. */
static bool may_claim(const node_t *nd, const rt_node_info_t *info, const rt_registry_claim_t *claim)
{
    if (claim->proof_hash && nd->token_hash && strlen(claim->proof_hash) == strlen(nd->token_hash) &&
        sodium_memcmp(claim->proof_hash, nd->token_hash, strlen(nd->token_hash)) == 0)
        return true;
    return !nd->online && nd->ip && info->ip_address && strcmp(nd->ip, info->ip_address) == 0;
}

/* The offline node seen longest ago, or -1 when every node is online. */
static long longest_offline(const rt_registry_t *reg)
{
    long best = -1;
    for (size_t i = 0; i < reg->n; i++)
        if (!reg->nodes[i]->online &&
            (best < 0 || reg->nodes[i]->last_seen_ms < reg->nodes[best]->last_seen_ms))
            best = (long)i;
    return best;
}

int rt_registry_register(rt_registry_t *reg, const rt_node_info_t *info, char id_out[RT_NODE_ID_MAX], bool *created)
{
    return rt_registry_claim(reg, info, NULL, id_out, created, NULL);
}

int rt_registry_claim(rt_registry_t *reg, const rt_node_info_t *info, const rt_registry_claim_t *claim,
                      char id_out[RT_NODE_ID_MAX], bool *created, char evicted_out[RT_NODE_ID_MAX])
{
    int rc = 0;
    if (evicted_out)
        evicted_out[0] = '\0';
    pthread_mutex_lock(&reg->mu);
    node_t *nd = NULL;
    for (size_t i = 0; i < reg->n && !nd; i++)
        if (strcmp(reg->nodes[i]->machine_name, info->machine_name) == 0 &&
            reg->nodes[i]->runtime_port == info->runtime_port)
            nd = reg->nodes[i];
    if (nd && claim && !may_claim(nd, info, claim)) {
        rc = RT_REGISTRY_TAKEN;
        goto out;
    }
    *created = nd == NULL;
    if (!nd) {
        long victim = reg->n == RT_REGISTRY_MAX_NODES && claim && claim->evict_offline ? longest_offline(reg) : -1;
        if (victim >= 0) {
            if (evicted_out)
                snprintf(evicted_out, RT_NODE_ID_MAX, "%s", reg->nodes[victim]->id);
            remove_at(reg, (size_t)victim);
        }
        if (reg->n == RT_REGISTRY_MAX_NODES) {
            rc = RT_REGISTRY_FULL;
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
    set_secret(nd, info->secret, info->secret_box);
    nd->online = true;
    nd->seen = true;
    nd->suspended_until = 0;
    nd->last_seen_ms = cm_now_ms();
    nd->last_seen_wall = cm_wall_ms();
    snprintf(id_out, RT_NODE_ID_MAX, "%s", nd->id);
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
        /* offline since now: expiry counts from the restart, so a node that
         * was live until the router stopped is not forgotten at once */
        nd->last_seen_ms = cm_now_ms();
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
        rec->secret_box = dup_or_null(nd->secret_box);
        rec->registered_at = nd->registered_at;
    }
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

static void push_sample(rt_registry_t *reg, node_t *nd)
{
    if (!reg->o.history_max)
        return;
    rt_node_sample_t *s = &nd->hist[nd->hist_head];
    *s = (rt_node_sample_t){ cm_wall_ms(), (float)nd->cpu, (float)nd->mem, (float)nd->gpu, (float)nd->gpu_mem,
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
    if (m->has_sync) {
        size_t k = m->nsync < RT_NODE_SYNC_MAX ? m->nsync : RT_NODE_SYNC_MAX;
        free(nd->sync);
        nd->sync = k ? cm_xmalloc(k * sizeof(rt_node_sync_t)) : NULL;
        if (k)
            memcpy(nd->sync, m->sync, k * sizeof(rt_node_sync_t));
        nd->nsync = k;
    }
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
            remove_at(reg, i);
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

int rt_registry_set_secret(rt_registry_t *reg, const char *id, const char *secret, const char *box)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd)
        set_secret(nd, secret, box);
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

size_t rt_registry_expire(rt_registry_t *reg, uint64_t now_ms, uint64_t max_offline_ms,
                          char (*ids)[RT_NODE_ID_MAX], size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n && k < max;) {
        node_t *nd = reg->nodes[i];
        if (!nd->online && now_ms > nd->last_seen_ms + max_offline_ms) {
            snprintf(ids[k++], RT_NODE_ID_MAX, "%s", nd->id);
            remove_at(reg, i); /* the next node moved into slot i */
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return k;
}

bool rt_registry_exists(rt_registry_t *reg, const char *id)
{
    pthread_mutex_lock(&reg->mu);
    bool ok = find(reg, id) != NULL;
    pthread_mutex_unlock(&reg->mu);
    return ok;
}

int rt_registry_endpoint(rt_registry_t *reg, const char *id, char base_url[96], char auth_hdr[RT_NODE_AUTH_HDR_MAX],
                         bool *online)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd) {
        memcpy(base_url, nd->base_url, sizeof(nd->base_url));
        memcpy(auth_hdr, nd->auth_hdr, sizeof(nd->auth_hdr));
        *online = nd->online;
    }
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

/* ---- health ---- */

int rt_registry_sweep(rt_registry_t *reg, uint64_t now_ms, uint64_t timeout_ms)
{
    return rt_registry_sweep_report(reg, now_ms, timeout_ms, NULL, NULL);
}

int rt_registry_sweep_report(rt_registry_t *reg, uint64_t now_ms, uint64_t timeout_ms, rt_offline_fn on_offline,
                             void *ud)
{
    int off = 0;
    bool lifted = false;
    char(*ids)[RT_NODE_ID_MAX] = NULL; /* the ids gone offline, reported after the unlock */
    size_t cap = 0;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->n; i++) {
        node_t *nd = reg->nodes[i];
        if (nd->online && timeout_ms && now_ms > nd->last_seen_ms + timeout_ms) {
            nd->online = false;
            if (on_offline && (size_t)off == cap) {
                cap = cap ? 2 * cap : 4;
                ids = cm_xrealloc(ids, cap * sizeof(*ids));
            }
            if (on_offline)
                snprintf(ids[off], RT_NODE_ID_MAX, "%s", nd->id);
            off++;
        }
        if (nd->suspended_until && now_ms >= nd->suspended_until) {
            nd->suspended_until = 0;
            lifted = true;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    /* outside the lock: the callback may ask the registry anything */
    for (int i = 0; on_offline && i < off; i++)
        on_offline(ud, ids[i]);
    free(ids);
    if (lifted)
        fire_hook(reg);
    return off;
}

void rt_registry_suspend(rt_registry_t *reg, const char *id, uint64_t ms)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd) {
        nd->suspended_until = cm_now_ms() + ms;
        reg->suspensions++;
    }
    pthread_mutex_unlock(&reg->mu);
}

uint64_t rt_registry_suspensions(rt_registry_t *reg)
{
    pthread_mutex_lock(&reg->mu);
    uint64_t n = reg->suspensions;
    pthread_mutex_unlock(&reg->mu);
    return n;
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
        const char *nm = nd->custom_name ? nd->custom_name : nd->machine_name;
        size_t nn = strnlen(nm, sizeof(lease->node_name) - 1);
        memcpy(lease->node_name, nm, nn);
        lease->node_name[nn] = '\0';
        memcpy(lease->base_url, nd->base_url, sizeof(lease->base_url));
        memcpy(lease->auth_hdr, nd->auth_hdr, sizeof(lease->auth_hdr));
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

/* ---- snapshots ---- */

static char **dup_list(char **v, size_t n)
{
    char **c = n ? cm_xcalloc(n, sizeof(char *)) : NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = cm_xstrdup(v[i]);
    return c;
}

/* Copies nd into v (with the lock held: only copies, no parsing). */
static void view_of(const rt_registry_t *reg, const node_t *nd, bool history, uint64_t now, rt_node_view_t *v)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->id, nd->id, sizeof(v->id));
    v->machine_name = cm_xstrdup(nd->machine_name);
    v->ip_address = cm_xstrdup(nd->ip);
    v->runtime_version = cm_xstrdup(nd->runtime_version);
    v->gpu_devices_json = dup_or_null(nd->gpu_devices_json);
    v->custom_name = dup_or_null(nd->custom_name);
    v->tags_json = dup_or_null(nd->tags_json);
    v->notes = dup_or_null(nd->notes);
    v->runtime_port = nd->runtime_port;
    v->api_port = nd->api_port;
    v->gpu_available = nd->gpu_available;
    v->registered_at = nd->registered_at;
    v->models = dup_list(nd->models, nd->nmodels);
    v->nmodels = nd->nmodels;
    v->loaded = dup_list(nd->loaded, nd->nloaded);
    v->nloaded = nd->nloaded;
    v->online = nd->online;
    v->initializing = nd->initializing;
    v->suspended = nd->suspended_until && now < nd->suspended_until;
    v->status = !nd->online ? "offline" : v->suspended ? "suspended" : nd->initializing ? "initializing" : "online";
    v->last_seen_wall = nd->seen ? nd->last_seen_wall : 0;
    v->slots = nd->slots > 0 ? nd->slots : reg->o.default_slots;
    v->inflight = nd->inflight;
    v->active = nd->active;
    v->queued = nd->queued;
    v->cpu = nd->cpu;
    v->mem = nd->mem;
    v->gpu = nd->gpu;
    v->gpu_mem = nd->gpu_mem;
    v->avg_ms = nd->avg_ms;
    v->tps = nd->tps;
    v->ready[0] = nd->ready[0];
    v->ready[1] = nd->ready[1];
    v->total = nd->total;
    v->ok = nd->ok;
    v->failed = nd->failed;
    v->lat_sum = nd->lat_sum;
    v->lat_ewma = nd->lat_ewma;
    if (history && nd->hist_len) {
        size_t max = reg->o.history_max;
        v->hist = cm_xmalloc(nd->hist_len * sizeof(rt_node_sample_t));
        for (size_t i = 0; i < nd->hist_len; i++) {
            v->hist[i] = nd->hist[(nd->hist_head + max - nd->hist_len + i) % max];
        }
        v->nhist = nd->hist_len;
    }
    if (nd->nsync) {
        v->sync = cm_xmalloc(nd->nsync * sizeof(rt_node_sync_t));
        memcpy(v->sync, nd->sync, nd->nsync * sizeof(rt_node_sync_t));
        v->nsync = nd->nsync;
    }
}

size_t rt_registry_snapshot(rt_registry_t *reg, bool history, rt_node_view_t **out)
{
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&reg->mu);
    size_t n = reg->n;
    rt_node_view_t *v = n ? cm_xmalloc(n * sizeof(*v)) : NULL;
    for (size_t i = 0; i < n; i++)
        view_of(reg, reg->nodes[i], history, now, &v[i]);
    pthread_mutex_unlock(&reg->mu);
    *out = v;
    return n;
}

int rt_registry_snapshot_one(rt_registry_t *reg, const char *id, bool history, rt_node_view_t *out)
{
    pthread_mutex_lock(&reg->mu);
    node_t *nd = find(reg, id);
    if (nd)
        view_of(reg, nd, history, cm_now_ms(), out);
    pthread_mutex_unlock(&reg->mu);
    return nd ? 0 : -1;
}

void rt_registry_view_clear(rt_node_view_t *v)
{
    free(v->machine_name);
    free(v->ip_address);
    free(v->runtime_version);
    free(v->gpu_devices_json);
    free(v->custom_name);
    free(v->tags_json);
    free(v->notes);
    free_list(v->models, v->nmodels);
    free_list(v->loaded, v->nloaded);
    free(v->hist);
    free(v->sync);
    memset(v, 0, sizeof(*v));
}

void rt_registry_views_free(rt_node_view_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rt_registry_view_clear(&v[i]);
    free(v);
}
