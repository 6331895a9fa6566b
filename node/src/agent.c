#include "agent.h"

#include "auth.h"
#include "engine.h"
#include "json.h"
#include "log.h"
#include "models.h"
#include "node.h"
#include "stats.h"
#include "sync.h"
#include "sysinfo.h"
#include "util.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The router's replies are small JSON objects; a longer one aborts. */
#define MAX_REPLY (64 * 1024)
/* Registration retries start this often and double up to MAX_BACKOFF_S. */
#define MIN_BACKOFF_MS 500
#define MAX_BACKOFF_S 30
/* Per call to the router: the agent's thread waits on nothing else, but a
 * router that hangs must not delay the next heartbeat for long. */
#define CONNECT_TIMEOUT_MS 3000L
#define CALL_TIMEOUT_MS 5000L
/* The node token the router hands out, NUL included (longer: refused). */
#define NODE_TOKEN_MAX 256

struct nd_agent {
    nd_node_t *nd;
    char *url, *join_token, *node_ip;
    int port, heartbeat_secs, slots;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    nd_agent_status_t st; /* mu */
    /* written by the agent thread under mu; read by it without, by others
     * (nd_agent_node_token) under mu */
    char token[NODE_TOKEN_MAX];
    /* the heartbeat reply's "models_version" last seen (agent thread) */
    char models_version[32];
};

typedef struct {
    char *data;
    size_t len;
    bool overflow;
} reply_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    reply_t *r = ud;
    size_t k = size * n;
    if (r->len + k > MAX_REPLY) {
        r->overflow = true;
        return 0; /* a bounded buffer: abort the transfer */
    }
    r->data = cm_xrealloc(r->data, r->len + k + 1);
    memcpy(r->data + r->len, p, k);
    r->len += k;
    r->data[r->len] = '\0';
    return k;
}

/* POSTs body to url + path with the headers hdr and hdr2 (NULL: none).
 * Returns the HTTP status (0: no answer); the reply body is parsed into
 * *json when it is JSON. */
static long post(nd_agent_t *a, const char *path, const char *hdr, const char *hdr2, const char *body, cJSON **json)
{
    CURL *c = curl_easy_init();
    char *url = cm_xasprintf("%s%s", a->url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (hdr)
        h = curl_slist_append(h, hdr);
    if (hdr2)
        h = curl_slist_append(h, hdr2);
    reply_t r = { 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CALL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        LOG_DEBUG("agent", "POST %s: %s", url, curl_easy_strerror(rc));
    if (json)
        *json = r.data ? cm_json_parse(r.data, r.len) : NULL;
    if (r.data) /* it may hold the node's credentials */
        sodium_memzero(r.data, r.len);
    free(r.data);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url);
    return status;
}

/* The local address of a socket connected (UDP: nothing is sent) toward the
 * router: the address the router can reach us at. */
static void detect_ip(const char *router_url, char *out, size_t outlen)
{
    snprintf(out, outlen, "127.0.0.1");
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    if (curl_url_set(u, CURLUPART_URL, router_url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return;
    }
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
    if (getaddrinfo(host, port ? port : "80", &hints, &res) == 0) {
        int fd = socket(res->ai_family, SOCK_DGRAM, 0);
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
            getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
            void *addr = ss.ss_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                                   : (void *)&((struct sockaddr_in *)&ss)->sin_addr;
            inet_ntop(ss.ss_family, addr, out, (socklen_t)outlen);
        }
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

static cJSON *gpu_devices(const cm_sysinfo_t *si)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < si->nmodels; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "model", si->models[i].model);
        cJSON_AddNumberToObject(d, "count", si->models[i].count);
        cJSON_AddItemToArray(a, d);
    }
    return a;
}

static int do_register(nd_agent_t *a)
{
    cm_sysinfo_t si;
    cm_sysinfo_read(a->nd->sys, &si);
    char host[256] = "llm-node", ip[INET6_ADDRSTRLEN + 1];
    gethostname(host, sizeof(host) - 1);
    if (a->node_ip && *a->node_ip)
        snprintf(ip, sizeof(ip), "%s", a->node_ip);
    else
        detect_ip(a->url, ip, sizeof(ip));
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "machine_name", host);
    cJSON_AddStringToObject(b, "ip_address", ip);
    cJSON_AddStringToObject(b, "runtime_version", LLMR_VERSION);
    cJSON_AddNumberToObject(b, "runtime_port", a->port);
    cJSON_AddNumberToObject(b, "node_api_port", a->port);
    cJSON_AddBoolToObject(b, "gpu_available", si.gpu_available);
    cJSON_AddItemToObject(b, "gpu_devices", gpu_devices(&si));
    cJSON_AddItemToObject(b, "available_models", nd_models_ids_json(a->nd->models));
    cJSON_AddNumberToObject(b, "total_slots", a->slots);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    char *hdr = a->join_token && *a->join_token ? cm_xasprintf("X-Join-Token: %s", a->join_token) : NULL;
    /* the token we had proves this is the same node, so the router lets us
     * take our identity (machine name + port) back */
    char *proof = a->token[0] ? cm_xasprintf("X-Node-Token: %s", a->token) : NULL;
    cJSON *reply = NULL;
    long status = post(a, "/api/nodes", hdr, proof, body, &reply);
    free(hdr);
    free(proof);
    free(body);
    const char *id = NULL, *token = NULL, *secret = NULL;
    int rc = -1;
    if ((status == 200 || status == 201) && reply && cm_json_str(reply, "node_id", &id) == CM_JSON_OK &&
        cm_json_str(reply, "node_token", &token) == CM_JSON_OK && strlen(id) < sizeof(a->st.node_id) &&
        strlen(token) < sizeof(a->token)) {
        pthread_mutex_lock(&a->mu);
        snprintf(a->token, sizeof(a->token), "%s", token);
        pthread_mutex_unlock(&a->mu);
        if (cm_json_str(reply, "router_secret", &secret) == CM_JSON_OK && *secret)
            nd_auth_set_router_secret(a->nd->auth, secret);
        else
            LOG_WARN("agent", "the router sent no router_secret: it cannot call this node");
        /* a new registration (a restarted router among others): the next
         * reply's models_version kicks the sync whatever its value */
        a->models_version[0] = '\0';
        pthread_mutex_lock(&a->mu);
        snprintf(a->st.node_id, sizeof(a->st.node_id), "%s", id);
        a->st.registered = true;
        a->st.registrations++;
        pthread_mutex_unlock(&a->mu);
        LOG_INFO("agent", "registered with %s as node %s (%s:%d)", a->url, id, ip, a->port);
        rc = 0;
    } else if (status) {
        LOG_WARN("agent", "registration refused by %s: HTTP %ld", a->url, status);
    }
    if (reply) { /* cJSON frees without wiping: the credentials go first */
        const cJSON *it;
        cJSON_ArrayForEach(it, reply)
            if (cJSON_IsString(it))
                sodium_memzero(it->valuestring, strlen(it->valuestring));
    }
    cJSON_Delete(reply);
    return rc;
}

static char *heartbeat_body(nd_agent_t *a)
{
    nd_engine_stats_t es;
    nd_stats_snapshot_t ss;
    cm_sysinfo_t si;
    nd_engine_stats(a->nd->engine, &es);
    nd_stats_get(a->nd->stats, &ss);
    cm_sysinfo_read(a->nd->sys, &si);
    cJSON *b = cJSON_CreateObject();
    pthread_mutex_lock(&a->mu);
    cJSON_AddStringToObject(b, "node_id", a->st.node_id);
    pthread_mutex_unlock(&a->mu);
    cJSON_AddNumberToObject(b, "cpu_usage", si.cpu_usage);
    cJSON_AddNumberToObject(b, "memory_usage", si.memory_usage);
    cJSON_AddNumberToObject(b, "gpu_usage", si.gpu_usage);
    cJSON_AddNumberToObject(b, "gpu_memory_usage", si.gpu_memory_usage);
    cJSON_AddItemToObject(b, "gpu_devices", gpu_devices(&si));
    cJSON_AddNumberToObject(b, "active_requests", es.active);
    cJSON_AddNumberToObject(b, "queued_requests", es.queued);
    cJSON_AddNumberToObject(b, "total_slots", a->slots);
    cJSON_AddNumberToObject(b, "average_response_time_ms", ss.avg_response_ms);
    cJSON_AddNumberToObject(b, "tokens_per_second", ss.tokens_per_second);
    cJSON *lm = cJSON_AddArrayToObject(b, "loaded_models");
    for (int i = 0; i < es.loaded && i < ND_ENGINE_MAX_LOADED; i++) {
        /* a model whose file is gone (the model sync removed it: deleted
         * on the router) is not advertised, though the engine keeps it
         * loaded until its limits unload it: the router routes only what
         * is listed */
        char *p = nd_models_path(a->nd->models, es.loaded_ids[i]);
        if (p)
            cJSON_AddItemToArray(lm, cJSON_CreateString(es.loaded_ids[i]));
        free(p);
    }
    cJSON_AddArrayToObject(b, "loaded_embedding_models");
    cJSON *avail = nd_models_ids_json(a->nd->models);
    int n = cJSON_GetArraySize(avail);
    cJSON_AddItemToObject(b, "available_models", avail);
    cJSON_AddBoolToObject(b, "initializing", !atomic_load(&a->nd->ready));
    /* models load on demand, so every model on disk is ready to serve */
    cJSON *rm = cJSON_AddArrayToObject(b, "ready_models");
    cJSON_AddItemToArray(rm, cJSON_CreateNumber(n));
    cJSON_AddItemToArray(rm, cJSON_CreateNumber(n));
    cJSON_AddItemToObject(b, "model_sync", nd_sync_progress_json(atomic_load(&a->nd->sync)));
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

/* The reply's "models_version" (a number, or a string from a newer
 * router): a change since the last reply means the router's catalogue
 * changed, so the sync reads it now instead of at its next interval. The
 * first value seen kicks too: the catalogue may have changed while this
 * node was away. */
static void check_models_version(nd_agent_t *a, const cJSON *reply)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(reply, "models_version");
    char now[sizeof(a->models_version)];
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9007199254740992.0)
        snprintf(now, sizeof(now), "%llu", (unsigned long long)v->valuedouble);
    else if (cJSON_IsString(v) && strlen(v->valuestring) < sizeof(now))
        snprintf(now, sizeof(now), "%s", v->valuestring);
    else
        return;
    if (strcmp(now, a->models_version) == 0)
        return;
    LOG_DEBUG("agent", "the router's models version is now %s: syncing", now);
    snprintf(a->models_version, sizeof(a->models_version), "%s", now);
    nd_sync_kick(atomic_load(&a->nd->sync));
}

/* 0: accepted; 1: the router forgot us; -1: no answer or another error. */
static int heartbeat(nd_agent_t *a)
{
    char *body = heartbeat_body(a);
    char *hdr = cm_xasprintf("X-Node-Token: %s", a->token);
    cJSON *reply = NULL;
    long status = post(a, "/api/health", hdr, NULL, body, &reply);
    sodium_memzero(hdr, strlen(hdr));
    free(hdr);
    free(body);
    if ((status == 200 || status == 204) && reply)
        check_models_version(a, reply);
    cJSON_Delete(reply);
    if (status == 200 || status == 204) {
        pthread_mutex_lock(&a->mu);
        a->st.heartbeats++;
        pthread_mutex_unlock(&a->mu);
        return 0;
    }
    if (status == 401 || status == 404) {
        LOG_WARN("agent", "router answered %ld to a heartbeat: registering again", status);
        pthread_mutex_lock(&a->mu);
        a->st.registered = false;
        pthread_mutex_unlock(&a->mu);
        return 1;
    }
    LOG_DEBUG("agent", "heartbeat failed (HTTP %ld)", status);
    return -1;
}

/* Sleeps up to ms unless stopped. Returns true when stopping. */
static bool nap(nd_agent_t *a, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &ts) == 0) {
    }
    bool stop = a->stop;
    pthread_mutex_unlock(&a->mu);
    return stop;
}

static void *agent_main(void *arg)
{
    nd_agent_t *a = arg;
    long backoff = MIN_BACKOFF_MS;
    bool registered = false;
    for (;;) {
        long wait;
        if (!registered) {
            registered = do_register(a) == 0;
            wait = registered ? 0 : backoff;
            backoff = registered ? MIN_BACKOFF_MS
                                 : (backoff * 2 > MAX_BACKOFF_S * 1000 ? MAX_BACKOFF_S * 1000 : backoff * 2);
        } else {
            int rc = heartbeat(a);
            registered = rc != 1;
            wait = rc == 1 ? 0 : a->heartbeat_secs * 1000L;
        }
        if (nap(a, wait))
            break;
    }
    return NULL;
}

static bool sync_token(void *ud, char *buf, size_t len)
{
    return nd_agent_node_token(ud, buf, len);
}

nd_agent_t *nd_agent_start(const nd_agent_opts_t *o, nd_node_t *nd)
{
    nd_agent_t *a = cm_xcalloc(1, sizeof(*a));
    a->nd = nd;
    a->url = cm_xstrdup(o->router_url ? o->router_url : "");
    size_t n = strlen(a->url);
    while (n && a->url[n - 1] == '/')
        a->url[--n] = '\0';
    a->join_token = o->join_token ? cm_xstrdup(o->join_token) : NULL;
    if (o->node_token && strlen(o->node_token) < sizeof(a->token))
        snprintf(a->token, sizeof(a->token), "%s", o->node_token);
    a->node_ip = o->node_ip ? cm_xstrdup(o->node_ip) : NULL;
    a->port = o->port;
    a->heartbeat_secs = o->heartbeat_secs > 0 ? o->heartbeat_secs : 10;
    a->slots = o->slots;
    snprintf(a->st.router_url, sizeof(a->st.router_url), "%s", a->url);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (!*a->url) {
        LOG_INFO("agent", "LLM_ROUTER_URL is empty: not registering with a router");
        return a;
    }
    a->running = pthread_create(&a->thread, NULL, agent_main, a) == 0;
    if (a->running && nd->cfg.sync) {
        /* the sync reads the router with the token this agent holds: it
         * starts with the agent and stops before it (nd_agent_stop) */
        nd_sync_opts_t so = {
            .router_url = a->url,
            .models_dir = nd->cfg.models_dir,
            .models = nd->models,
            .interval_s = nd->cfg.sync_interval_s,
            .concurrency = nd->cfg.sync_concurrency,
            .shared = nd->cfg.sync_shared,
            .token = sync_token,
            .token_ud = a,
        };
        nd_sync_t *s = nd_sync_start(&so);
        if (!s)
            LOG_ERROR("agent", "cannot start the model sync thread");
        atomic_store(&nd->sync, s);
    }
    return a;
}

void nd_agent_stop(nd_agent_t *a)
{
    if (!a)
        return;
    nd_sync_stop(atomic_exchange(&a->nd->sync, NULL));
    if (a->running) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->url);
    free(a->join_token);
    free(a->node_ip);
    free(a);
}

bool nd_agent_node_token(nd_agent_t *a, char *buf, size_t len)
{
    if (!a || !len)
        return false;
    pthread_mutex_lock(&a->mu);
    /* a token means registered: one passed by LLM_NODE_TOKEN is only a
     * proof for the first registration until the router confirms it */
    bool ok = a->st.registered && a->token[0] && strlen(a->token) < len;
    if (ok)
        snprintf(buf, len, "%s", a->token);
    pthread_mutex_unlock(&a->mu);
    return ok;
}

void nd_agent_status(nd_agent_t *a, nd_agent_status_t *s)
{
    if (!a) {
        memset(s, 0, sizeof(*s));
        return;
    }
    pthread_mutex_lock(&a->mu);
    *s = a->st;
    pthread_mutex_unlock(&a->mu);
}
