#include "core/nodes.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Node ids removed per call into the registry while expiring (the loop
 * calls again while a batch comes back full). */
#define EXPIRE_BATCH 32
/* The registration limit's window, and how many addresses it remembers:
 * beyond that the entry whose window started first is reused, so a flood
 * of addresses costs memory no more than this. */
#define RATE_WINDOW_MS 60000u
#define RATE_SLOTS 1024
#define RATE_PROBE 16
/* The file (in the data directory) of the key sealing node secrets. */
#define KEY_FILE "node_secret_key"
#define SECRET_BYTES 32

typedef struct {
    char ip[48];
    uint64_t start_ms;
    unsigned count;
} rate_ent_t;

struct rt_nodes {
    rt_registry_t *reg;
    rt_store_t *store;
    rt_auth_t *auth;
    rt_nodes_opts_t o;
    unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    struct event *timer;
    pthread_mutex_t rmu; /* the rate table */
    rate_ent_t *rate;    /* RATE_SLOTS entries; NULL without a limit */
};

/* ---- the sealing key ---- */

/* Reads <dir>/node_secret_key (hex), or creates it (0600). 0 or -1. */
static int load_key(rt_nodes_t *ns, const char *dir)
{
    int rc = -1;
    char *path = cm_xasprintf("%s/%s", dir, KEY_FILE), *text = NULL;
    size_t len = 0;
    if (cm_read_file(path, 4096, &text, &len) == 0) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = '\0';
        if (len == 2 * sizeof(ns->key) &&
            sodium_hex2bin(ns->key, sizeof(ns->key), text, len, NULL, NULL, NULL) == 0)
            rc = 0;
        else
            LOG_ERROR("nodes", "%s is not %zu hex bytes", path, sizeof(ns->key));
    } else {
        char hex[2 * sizeof(ns->key) + 2];
        crypto_aead_xchacha20poly1305_ietf_keygen(ns->key);
        sodium_bin2hex(hex, sizeof(hex), ns->key, sizeof(ns->key));
        strcat(hex, "\n");
        rc = cm_write_file(path, hex, strlen(hex), 0600) == 0 ? 0 : -1;
        if (rc != 0)
            LOG_ERROR("nodes", "cannot write %s", path);
        sodium_memzero(hex, sizeof(hex));
    }
    if (text)
        sodium_memzero(text, len);
    free(text);
    free(path);
    return rc;
}

void rt_nodes_seal(const rt_nodes_t *ns, const char *node_id, const char *secret, char box[RT_NODE_BOX_MAX])
{
    enum { NB = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, AB = crypto_aead_xchacha20poly1305_ietf_ABYTES };
    unsigned char buf[NB + RT_NODE_SECRET_MAX + AB];
    size_t n = strlen(secret);
    unsigned long long clen = 0;
    if (n >= RT_NODE_SECRET_MAX) {
        box[0] = '\0';
        return;
    }
    randombytes_buf(buf, NB);
    /* the node id is the associated data: a box moved to another row does
     * not open, so nobody with write access to the database can make the
     * router hand one node's secret to another */
    crypto_aead_xchacha20poly1305_ietf_encrypt(buf + NB, &clen, (const unsigned char *)secret, n,
                                               (const unsigned char *)node_id, strlen(node_id), NULL, buf,
                                               ns->key);
    sodium_bin2hex(box, RT_NODE_BOX_MAX, buf, NB + (size_t)clen);
}

bool rt_nodes_unseal(const rt_nodes_t *ns, const char *node_id, const char *box, char secret[RT_NODE_SECRET_MAX])
{
    enum { NB = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, AB = crypto_aead_xchacha20poly1305_ietf_ABYTES };
    unsigned char buf[NB + RT_NODE_SECRET_MAX + AB];
    size_t blen = 0;
    unsigned long long mlen = 0;
    secret[0] = '\0';
    if (!box || sodium_hex2bin(buf, sizeof(buf), box, strlen(box), NULL, &blen, NULL) != 0 || blen <= NB + AB ||
        crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)secret, &mlen, NULL, buf + NB, blen - NB,
                                                   (const unsigned char *)node_id, strlen(node_id), buf,
                                                   ns->key) != 0 ||
        mlen >= RT_NODE_SECRET_MAX) {
        secret[0] = '\0';
        return false;
    }
    secret[mlen] = '\0';
    return true;
}

static void new_secret(char out[RT_NODE_SECRET_MAX])
{
    unsigned char raw[SECRET_BYTES];
    char b64[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, RT_NODE_SECRET_MAX, "rs_%s", b64);
    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(b64, sizeof(b64));
}

/* ---- lifetime ---- */

rt_nodes_t *rt_nodes_new(rt_registry_t *reg, rt_store_t *store, rt_auth_t *auth, const rt_nodes_opts_t *o)
{
    rt_nodes_t *ns = cm_xcalloc(1, sizeof(*ns));
    ns->reg = reg;
    ns->store = store;
    ns->auth = auth;
    ns->o = *o;
    ns->o.data_dir = NULL; /* only read here */
    pthread_mutex_init(&ns->rmu, NULL);
    if (o->register_per_min)
        ns->rate = cm_xcalloc(RATE_SLOTS, sizeof(rate_ent_t));
    if (o->data_dir) {
        if (load_key(ns, o->data_dir) != 0) {
            rt_nodes_free(ns);
            return NULL;
        }
    } else {
        crypto_aead_xchacha20poly1305_ietf_keygen(ns->key);
    }
    return ns;
}

void rt_nodes_free(rt_nodes_t *ns)
{
    if (!ns)
        return;
    rt_nodes_stop(ns);
    sodium_memzero(ns->key, sizeof(ns->key));
    pthread_mutex_destroy(&ns->rmu);
    free(ns->rate);
    free(ns);
}

static void load_one(const rt_node_rec_t *rec, void *arg)
{
    rt_nodes_t *ns = arg;
    char secret[RT_NODE_SECRET_MAX];
    rt_registry_restore(ns->reg, rec);
    bool sealed = rt_nodes_unseal(ns, rec->id, rec->secret_box, secret);
    if (sealed)
        rt_registry_set_secret(ns->reg, rec->id, secret, rec->secret_box);
    sodium_memzero(secret, sizeof(secret));
    /* without its secret the router cannot talk to the node: leaving its
     * token out makes its next heartbeat a 401, and it registers again */
    if (sealed && rec->token_hash && *rec->token_hash)
        rt_auth_node_token_load(ns->auth, rec->id, rec->token_hash);
    else if (rec->token_hash && *rec->token_hash)
        LOG_WARN("nodes", "node %s: no usable stored secret; it must register again", rec->id);
}

int rt_nodes_load(rt_nodes_t *ns)
{
    if (ns->store && rt_store_nodes_each(ns->store, load_one, ns) != 0) {
        LOG_ERROR("nodes", "cannot read the stored nodes");
        return -1;
    }
    return 0;
}

/* ---- expiry ---- */

/* A node is gone: its token and its stored record go too. */
static void forget(rt_nodes_t *ns, const char *id)
{
    rt_auth_node_token_revoke(ns->auth, id);
    if (ns->store && rt_store_node_delete(ns->store, id) != 0)
        LOG_ERROR("nodes", "cannot delete stored node %s", id);
}

size_t rt_nodes_expire(rt_nodes_t *ns, uint64_t now_ms)
{
    if (!ns->o.expire_s)
        return 0;
    char ids[EXPIRE_BATCH][RT_NODE_ID_MAX];
    size_t total = 0, k;
    do {
        k = rt_registry_expire(ns->reg, now_ms, (uint64_t)ns->o.expire_s * 1000u, ids, EXPIRE_BATCH);
        for (size_t i = 0; i < k; i++) {
            forget(ns, ids[i]);
            LOG_INFO("nodes", "node %s expired: offline for more than %u s", ids[i], ns->o.expire_s);
        }
        total += k;
    } while (k == EXPIRE_BATCH);
    return total;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rt_nodes_expire(arg, cm_now_ms());
}

void rt_nodes_start(rt_nodes_t *ns, struct event_base *base)
{
    if (!ns->o.expire_s || ns->timer)
        return;
    /* a node is forgotten at most a quarter of its expiry late */
    uint64_t ms = (uint64_t)ns->o.expire_s * 250u;
    ms = ms < 1000 ? 1000 : ms > 60000 ? 60000 : ms;
    ns->timer = event_new(base, -1, EV_PERSIST, on_timer, ns);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    event_add(ns->timer, &tv);
}

void rt_nodes_stop(rt_nodes_t *ns)
{
    if (ns && ns->timer) {
        event_free(ns->timer);
        ns->timer = NULL;
    }
}

/* ---- registration ---- */

bool rt_nodes_ip_literal(const char *s, char *out, size_t outlen)
{
    unsigned char a[16];
    if (!s)
        return false;
    if (inet_pton(AF_INET, s, a) == 1) {
        if ((a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) || (a[0] >= 224 && a[0] <= 239))
            return false;
        return inet_ntop(AF_INET, a, out, (socklen_t)outlen) != NULL;
    }
    if (inet_pton(AF_INET6, s, a) != 1)
        return false;
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(a, mapped, sizeof(mapped)) == 0) {
        char v4[INET_ADDRSTRLEN];
        return inet_ntop(AF_INET, a + 12, v4, sizeof(v4)) && rt_nodes_ip_literal(v4, out, outlen);
    }
    static const unsigned char zero[16];
    if (memcmp(a, zero, sizeof(zero)) == 0 || a[0] == 0xff)
        return false;
    return inet_ntop(AF_INET6, a, out, (socklen_t)outlen) != NULL;
}

/* Counts a registration from ip: true when within the limit, else false
 * with the seconds until its window ends. */
static bool rate_ok(rt_nodes_t *ns, const char *ip, uint64_t now, unsigned *retry_s)
{
    if (!ns->rate)
        return true;
    uint32_t h = 2166136261u; /* FNV-1a: spreads addresses over the slots */
    for (const char *p = ip; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    rate_ent_t *e = NULL, *oldest = NULL;
    pthread_mutex_lock(&ns->rmu);
    for (unsigned i = 0; i < RATE_PROBE && !e; i++) {
        rate_ent_t *c = &ns->rate[(h + i) % RATE_SLOTS];
        if (strcmp(c->ip, ip) == 0)
            e = c;
        else if (!oldest || c->start_ms < oldest->start_ms)
            oldest = c;
    }
    if (!e) {
        e = oldest;
        snprintf(e->ip, sizeof(e->ip), "%s", ip);
        e->start_ms = now;
        e->count = 0;
    }
    if (now >= e->start_ms + RATE_WINDOW_MS) {
        e->start_ms = now;
        e->count = 0;
    }
    bool ok = e->count < ns->o.register_per_min;
    if (ok)
        e->count++;
    else
        *retry_s = (unsigned)((e->start_ms + RATE_WINDOW_MS - now + 999) / 1000);
    pthread_mutex_unlock(&ns->rmu);
    return ok;
}

/* Queues the node's record to the store's writer. */
static void persist(rt_nodes_t *ns, const char *id)
{
    rt_node_rec_t rec;
    if (!ns->store || rt_registry_export(ns->reg, id, &rec) != 0)
        return;
    if (rt_store_node_upsert(ns->store, &rec) != 0)
        LOG_ERROR("nodes", "cannot store node %s", id);
    rt_node_rec_free(&rec);
}

rt_nodes_status_t rt_nodes_register(rt_nodes_t *ns, const rt_node_info_t *info, const char *peer,
                                    const char *node_token, rt_nodes_grant_t *g)
{
    memset(g, 0, sizeof(*g));
    uint64_t now = cm_now_ms();
    char peer_ip[48] = "";
    rt_nodes_ip_literal(peer, peer_ip, sizeof(peer_ip));
    if (!rate_ok(ns, peer_ip[0] ? peer_ip : (peer ? peer : ""), now, &g->retry_after_s))
        return RT_NODES_RATE_LIMITED;
    if (!info->gpu_available && ns->o.require_gpu)
        return RT_NODES_GPU_REQUIRED;
    /* the router connects to what it saw, unless told to believe the body;
     * either way an IP literal, so no name is ever resolved */
    if (!rt_nodes_ip_literal(ns->o.trust_address ? info->ip_address : peer, g->address, sizeof(g->address)))
        return RT_NODES_BAD_ADDRESS;
    rt_nodes_expire(ns, now); /* expired nodes neither hold an identity nor a place */

    char cand[RT_AUTH_UUID_SIZE], hash[RT_AUTH_HASH_HEX_SIZE], proof[RT_AUTH_HASH_HEX_SIZE], box[RT_NODE_BOX_MAX];
    char evicted[RT_NODE_ID_MAX];
    rt_auth_uuid(cand);
    new_secret(g->secret);
    rt_node_info_t in = *info;
    in.id = cand; /* used only when the node is new */
    in.ip_address = g->address;
    in.secret = g->secret;
    rt_nodes_seal(ns, cand, g->secret, box);
    in.secret_box = box;
    if (node_token && *node_token)
        rt_auth_sha256_hex(node_token, proof);
    rt_registry_claim_t claim = { .proof_hash = node_token && *node_token ? proof : NULL, .evict_offline = true };
    int rc = rt_registry_claim(ns->reg, &in, &claim, g->id, &g->created, evicted);
    if (rc != 0) {
        sodium_memzero(g->secret, sizeof(g->secret));
        return rc == RT_REGISTRY_TAKEN ? RT_NODES_TAKEN : RT_NODES_FULL;
    }
    if (evicted[0]) {
        forget(ns, evicted);
        LOG_INFO("nodes", "node %s evicted (the longest offline) to make room", evicted);
    }
    /* the box is bound to the id: an existing node keeps its own id, so
     * seal again for it */
    if (!g->created) {
        rt_nodes_seal(ns, g->id, g->secret, box);
        rt_registry_set_secret(ns->reg, g->id, NULL, box);
    }
    rt_auth_node_token_issue(ns->auth, g->id, g->token, hash);
    rt_registry_set_token_hash(ns->reg, g->id, hash);
    persist(ns, g->id);
    sodium_memzero(box, sizeof(box));
    LOG_INFO("nodes", "node %s %s: %s (%s:%d, api %d, %zu models)", g->id, g->created ? "registered" : "re-registered",
             info->machine_name, g->address, info->runtime_port, info->api_port, info->nmodels);
    return RT_NODES_OK;
}

rt_nodes_status_t rt_nodes_heartbeat(rt_nodes_t *ns, const char *id, const rt_node_metrics_t *m)
{
    return rt_registry_heartbeat(ns->reg, id, m) == 0 ? RT_NODES_OK : RT_NODES_NOT_FOUND;
}

rt_nodes_status_t rt_nodes_delete(rt_nodes_t *ns, const char *id)
{
    if (rt_registry_remove(ns->reg, id) != 0)
        return RT_NODES_NOT_FOUND;
    forget(ns, id);
    LOG_INFO("nodes", "node %s deleted", id);
    return RT_NODES_OK;
}

rt_nodes_status_t rt_nodes_issue_token(rt_nodes_t *ns, const char *id, char token[RT_AUTH_NODE_TOKEN_SIZE])
{
    char hash[RT_AUTH_HASH_HEX_SIZE];
    if (rt_registry_set_token_hash(ns->reg, id, "") != 0)
        return RT_NODES_NOT_FOUND;
    rt_auth_node_token_issue(ns->auth, id, token, hash);
    rt_registry_set_token_hash(ns->reg, id, hash);
    persist(ns, id);
    LOG_INFO("nodes", "node %s: a new node token was issued by an admin (the previous one is revoked)", id);
    return RT_NODES_OK;
}

rt_nodes_status_t rt_nodes_disconnect(rt_nodes_t *ns, const char *id)
{
    if (rt_registry_disconnect(ns->reg, id) != 0)
        return RT_NODES_NOT_FOUND;
    LOG_INFO("nodes", "node %s forced offline", id);
    return RT_NODES_OK;
}

rt_nodes_status_t rt_nodes_settings(rt_nodes_t *ns, const char *id, const char *custom_name,
                                    const char *tags_json, const char *notes)
{
    if (rt_registry_settings(ns->reg, id, custom_name, tags_json, notes) != 0)
        return RT_NODES_NOT_FOUND;
    persist(ns, id);
    return RT_NODES_OK;
}

/* ---- the model sync's progress ---- */

static bool sync_count(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

int rt_nodes_parse_sync(const cJSON *j, rt_node_sync_t **out, size_t *n)
{
    static const char *const states[] = { "queued", "downloading", "verifying", "ready", "failed" };
    *out = NULL;
    *n = 0;
    if (!j)
        return 0;
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) > RT_NODE_SYNC_MAX)
        return -1;
    size_t k = 0;
    rt_node_sync_t *v = cm_xcalloc(RT_NODE_SYNC_MAX, sizeof(*v));
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        rt_node_sync_t *e = &v[k];
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(it, "model");
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(it, "state");
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(it, "error");
        bool ok = cJSON_IsObject(it) && cJSON_IsString(model) && *model->valuestring &&
                  strlen(model->valuestring) < sizeof(e->model) && cJSON_IsString(state) &&
                  sync_count(it, "bytes", &e->bytes) && sync_count(it, "total", &e->total) &&
                  (!error || cJSON_IsNull(error) ||
                   (cJSON_IsString(error) && strlen(error->valuestring) < sizeof(e->error)));
        bool known = false;
        for (size_t i = 0; ok && i < sizeof(states) / sizeof(states[0]) && !known; i++)
            known = strcmp(state->valuestring, states[i]) == 0;
        if (!ok || !known) {
            free(v);
            return -1;
        }
        snprintf(e->model, sizeof(e->model), "%s", model->valuestring);
        snprintf(e->state, sizeof(e->state), "%s", state->valuestring);
        if (cJSON_IsString(error))
            snprintf(e->error, sizeof(e->error), "%s", error->valuestring);
        k++;
    }
    *out = v;
    *n = k;
    return 0;
}
