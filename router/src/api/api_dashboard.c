/* api_dashboard: the dashboard's data: overview cards, system statistics,
 * the node table, the request trend, a node's heartbeat history, the
 * router's log ring and a node's logs fetched from the node.
 *
 * Everything that reads the history store (SQLite) or waits on a node runs
 * on the offload pool (rt_offload): the job's work builds the whole reply
 * there (registry snapshots are lock-and-copy, safe on any thread) and done
 * only sends it on the request's loop. Only the registry- and memory-only
 * replies (node list, node history, router logs) are built on the loop.
 *
 * The history store may be off (LLM_ROUTER_HISTORY=0) or fail a query: the
 * replies then say "history": false, with the request figures null (the
 * overview) or the trend all zeros, rather than failing the page.
 *
 * JSON only: names, tags and notes are data, never markup. */
#include "api/handlers.h"
#include "api/views.h"
#include "core/admission.h"
#include "core/recorder.h"
#include "core/registry.h"
#include "store/history.h"
#include "json.h"
#include "log.h"
#include "router.h"
#include "util.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)
#define MAX_BUCKETS 10000        /* request-history: more is a 400 */
#define MAX_TIME_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define LOGS_TAIL_DEFAULT 100
#define LOGS_TAIL_MAX 1000
#define NODE_LOGS_MAX_BYTES (4u << 20)  /* a node's answer beyond this is refused */
#define NODE_LOGS_CONNECT_MS 2000
#define NODE_LOGS_TIMEOUT_MS 5000
/* Node log fetches at once, router-wide: each holds an offload thread for up
 * to NODE_LOGS_TIMEOUT_MS, and the pool also hashes passwords; two leave the
 * other threads to logins whatever a viewer does. */
#define NODE_LOGS_CONCURRENT 2

/* ---- one offloaded reply ---- */

/* The work's build fills either reply or an error; the work then prints
 * reply into text there too (a trend of 10,000 buckets is 1.8 MB of JSON:
 * not something to serialise on a loop), which done sends with status. */
typedef struct job {
    rt_router_t *rt;
    void (*build)(struct job *j);
    cJSON *reply;
    char *text;
    int status;
    const char *code;  /* error: static */
    char message[160]; /* error */
    /* request-history */
    int64_t bucket_ms, from_ms;
    size_t nb;
    const char *bucket_name; /* static */
    /* node logs */
    char node_id[RT_NODE_ID_MAX];
    char base_url[96];
    char auth_hdr[RT_NODE_AUTH_HDR_MAX];
    int tail;
    bool holds_fetch; /* counted in fetches_in_flight */
} job_t;

static atomic_int fetches_in_flight;

static job_t *job_new(void *ud, void (*build)(job_t *))
{
    job_t *j = cm_xcalloc(1, sizeof(*j));
    j->rt = ud;
    j->build = build;
    j->status = 200;
    return j;
}

static void job_fail(job_t *j, int status, const char *code, const char *message)
{
    j->status = status;
    j->code = code;
    snprintf(j->message, sizeof(j->message), "%s", message);
}

static void job_work(void *arg)
{
    job_t *j = arg;
    j->build(j);
    if (j->reply) {
        j->text = cJSON_PrintUnformatted(j->reply);
        cJSON_Delete(j->reply);
        j->reply = NULL;
        if (!j->text)
            job_fail(j, 500, "internal_error", "Out of memory");
    }
}

static void job_done(cm_http_req_t *req, void *arg)
{
    job_t *j = arg;
    if (j->text)
        cm_http_reply(req, j->status, "application/json", j->text, strlen(j->text));
    else
        cm_http_reply_error(req, j->status, NULL, j->code, NULL, "%s", j->message);
}

static void job_free(void *arg)
{
    job_t *j = arg;
    cJSON_Delete(j->reply);
    free(j->text);
    if (j->holds_fetch)
        atomic_fetch_sub(&fetches_in_flight, 1);
    sodium_memzero(j->auth_hdr, sizeof(j->auth_hdr));
    free(j);
}

static const rt_offload_ops_t job_ops = { job_work, job_done, job_free };

/* ---- query parameters ---- */

/* An integer query parameter in [min, max]; def when absent. false when
 * present and not one (strict: digits only). */
static bool int_param(cm_http_req_t *req, const char *name, long def, long min, long max, long *out)
{
    const char *s = cm_http_req_query(req, name);
    if (!s) {
        *out = def;
        return true;
    }
    if (!*s || strlen(s) > 9 || strspn(s, "0123456789") != strlen(s))
        return false;
    *out = strtol(s, NULL, 10);
    return *out >= min && *out <= max;
}

/* An RFC 3339 date-time or ms since the epoch (digits only): ms, or -1. */
static int64_t time_param(const char *s)
{
    if (!*s)
        return -1;
    if (strspn(s, "0123456789") == strlen(s)) {
        if (strlen(s) > 15)
            return -1;
        long long v = strtoll(s, NULL, 10);
        return v <= MAX_TIME_MS ? (int64_t)v : -1;
    }
    int64_t v = cm_time_parse_rfc3339(s);
    return v <= MAX_TIME_MS ? v : -1;
}

static void bad_param(cm_http_req_t *req, const char *param, const char *message)
{
    cm_http_reply_error(req, 400, "invalid_request_error", "invalid_value", param, "%s", message);
}

/* ---- overview ---- */

static void nodes_totals(const rt_node_view_t *v, size_t n, int *online, int *inflight, uint64_t *total,
                         uint64_t *failed)
{
    *online = *inflight = 0;
    *total = *failed = 0;
    for (size_t i = 0; i < n; i++) {
        *online += v[i].online;
        *inflight += v[i].inflight;
        *total += v[i].total;
        *failed += v[i].failed;
    }
}

static void build_overview(job_t *j)
{
    rt_router_t *rt = j->rt;
    int64_t now = (int64_t)cm_wall_ms();
    rt_history_agg_t hour = { 0 }, day = { 0 };
    bool hist = rt->history && rt_history_summary(rt->history, now - HOUR_MS, &hour) == 0 &&
                rt_history_summary(rt->history, now - DAY_MS, &day) == 0;
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    int online, inflight;
    uint64_t total, failed;
    nodes_totals(v, n, &online, &inflight, &total, &failed);

    cJSON *o = cJSON_CreateObject();
    cm_json_add_time(o, "generated_at", now);
    cm_json_add_time(o, "started_at", (int64_t)rt->started_wall_ms);
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)((uint64_t)now - rt->started_wall_ms) / 1000.0);
    cJSON_AddNumberToObject(o, "nodes_online", online);
    cJSON_AddNumberToObject(o, "nodes_total", (double)n);
    cJSON_AddNumberToObject(o, "active_requests", inflight);
    cJSON_AddNumberToObject(o, "queued_requests", (double)rt_admission_waiting(rt->admission));
    cJSON *models = rt_view_models_served(v, n);
    cJSON_AddNumberToObject(o, "models_served_count", cJSON_GetArraySize(models));
    cJSON_AddItemToObject(o, "models_served", models);
    /* the registry's counters: since start, also with the history off */
    cJSON_AddNumberToObject(o, "requests_since_start", (double)total);
    cJSON_AddNumberToObject(o, "errors_since_start", (double)failed);
    cJSON_AddBoolToObject(o, "history", hist);
    cJSON_AddItemToObject(o, "last_hour", rt_view_window(hist ? &hour : NULL));
    cJSON_AddItemToObject(o, "last_day", rt_view_window(hist ? &day : NULL));
    rt_registry_views_free(v, n);
    j->reply = o;
}

void rt_h_dash_overview(cm_http_req_t *req, void *ud)
{
    rt_offload(ud, req, &job_ops, job_new(ud, build_overview));
}

/* ---- stats ---- */

static void build_stats(job_t *j)
{
    rt_router_t *rt = j->rt;
    int64_t rows = rt->history ? rt_history_count(rt->history) : -1;
    rt_recorder_stats_t rs = { 0 };
    if (rt->recorder)
        rt_recorder_stats(rt->recorder, &rs);
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    cJSON *o = rt_view_dash_stats(v, n, rt_registry_mode(rt->registry));
    rt_registry_views_free(v, n);
    uint64_t now = cm_wall_ms();
    cJSON_AddNumberToObject(o, "queued_requests", (double)rt_admission_waiting(rt->admission));
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)(now - rt->started_wall_ms) / 1000.0);
    cm_json_add_time(o, "generated_at", (int64_t)now);
    cJSON *h = cJSON_AddObjectToObject(o, "history");
    cJSON_AddBoolToObject(h, "enabled", rt->history != NULL);
    if (rows >= 0)
        cJSON_AddNumberToObject(h, "rows", (double)rows);
    else
        cJSON_AddNullToObject(h, "rows");
    cJSON_AddNumberToObject(h, "queued", (double)rs.queued);
    cJSON_AddNumberToObject(h, "written", (double)rs.written);
    cJSON_AddNumberToObject(h, "dropped", (double)rs.dropped);
    cJSON_AddNumberToObject(h, "queue_depth", (double)rs.depth);
    j->reply = o;
}

void rt_h_dash_stats(cm_http_req_t *req, void *ud)
{
    rt_offload(ud, req, &job_ops, job_new(ud, build_stats));
}

/* ---- nodes and their heartbeat history (registry only: on the loop) ---- */

void rt_h_dash_nodes(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    rt_node_view_t *v;
    size_t n = rt_registry_snapshot(rt->registry, false, &v);
    cJSON *j = rt_view_dash_nodes(v, n);
    rt_registry_views_free(v, n);
    cm_http_reply_json(req, 200, j);
    cJSON_Delete(j);
}

void rt_h_dash_node_metrics(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    rt_node_view_t v;
    if (rt_registry_snapshot_one(rt->registry, cm_http_req_param(req, "node_id"), true, &v) != 0) {
        cm_http_reply_error(req, 404, NULL, "node_not_found", NULL, "Node not found");
        return;
    }
    cJSON *j = rt_view_node_history(&v);
    rt_registry_view_clear(&v);
    cm_http_reply_json(req, 200, j);
    cJSON_Delete(j);
}

/* ---- request trend ---- */

static void on_bucket(const rt_history_agg_t *b, void *arg)
{
    job_t *j = ((void **)arg)[0];
    rt_history_agg_t *agg = ((void **)arg)[1];
    if (b->start_ms < j->from_ms || (b->start_ms - j->from_ms) % j->bucket_ms != 0)
        return; /* not one of ours: the store aligns to bucket_ms like we do */
    int64_t i = (b->start_ms - j->from_ms) / j->bucket_ms;
    if (i < (int64_t)j->nb)
        agg[i] = *b;
}

static void build_request_history(job_t *j)
{
    rt_router_t *rt = j->rt;
    rt_history_agg_t *agg = cm_xcalloc(j->nb, sizeof(*agg));
    int64_t to_ms = j->from_ms + (int64_t)j->nb * j->bucket_ms - 1; /* whole buckets */
    void *arg[2] = { j, agg };
    bool hist = rt->history && rt_history_buckets(rt->history, j->bucket_ms, j->from_ms, to_ms, on_bucket, arg) == 0;
    if (!hist)
        memset(agg, 0, j->nb * sizeof(*agg)); /* a failed query may have filled some */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bucket", j->bucket_name);
    cJSON_AddNumberToObject(o, "bucket_ms", (double)j->bucket_ms);
    cm_json_add_time(o, "from", j->from_ms);
    cm_json_add_time(o, "to", to_ms);
    cJSON_AddBoolToObject(o, "history", hist);
    cJSON_AddItemToObject(o, "buckets", rt_view_buckets(agg, j->nb, j->from_ms, j->bucket_ms));
    free(agg);
    j->reply = o;
}

void rt_h_dash_request_history(cm_http_req_t *req, void *ud)
{
    const char *bucket = cm_http_req_query(req, "bucket");
    const char *from = cm_http_req_query(req, "from"), *to = cm_http_req_query(req, "to");
    int64_t bms, range;
    if (!bucket || strcmp(bucket, "minute") == 0) {
        bms = MINUTE_MS;
        range = HOUR_MS;
    } else if (strcmp(bucket, "hour") == 0) {
        bms = HOUR_MS;
        range = DAY_MS;
    } else {
        bad_param(req, "bucket", "'bucket' must be minute or hour");
        return;
    }
    int64_t to_ms = to ? time_param(to) : (int64_t)cm_wall_ms();
    if (to_ms < 0) {
        bad_param(req, "to", "'to' must be an RFC 3339 time or milliseconds since the epoch");
        return;
    }
    int64_t from_ms = from ? time_param(from) : to_ms > range ? to_ms - range : 0;
    if (from_ms < 0) {
        bad_param(req, "from", "'from' must be an RFC 3339 time or milliseconds since the epoch");
        return;
    }
    if (from_ms > to_ms) {
        bad_param(req, "from", "'from' must not be after 'to'");
        return;
    }
    int64_t first = from_ms - from_ms % bms, last = to_ms - to_ms % bms;
    int64_t nb = (last - first) / bms + 1;
    if (nb > MAX_BUCKETS) {
        cm_http_reply_error(req, 400, "invalid_request_error", "range_too_large", "from",
                            "The range holds %lld buckets; at most %d (use bucket=hour or a shorter range)",
                            (long long)nb, MAX_BUCKETS);
        return;
    }
    job_t *j = job_new(ud, build_request_history);
    j->bucket_ms = bms;
    j->bucket_name = bms == MINUTE_MS ? "minute" : "hour";
    j->from_ms = first;
    j->nb = (size_t)nb;
    rt_offload(ud, req, &job_ops, j);
}

/* ---- the router's log ring (memory only: on the loop) ---- */

/* A level name (trace, debug, info, warn or warning, error): its level, or -1. */
static int level_param(const char *s)
{
    return strchr(s, '=') ? -1 : cm_log_level_parse(s);
}

static int entry_level(const cJSON *e)
{
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(e, "level");
    return cJSON_IsString(lv) ? cm_log_level_parse(lv->valuestring) : -1;
}

/* The last tail entries of the ring (entries, a JSON array, taken; NULL:
 * none) at level min or more severe, oldest first. */
static cJSON *filter_entries(cJSON *entries, int min, long tail)
{
    cJSON *out = cJSON_CreateArray();
    int n = cJSON_GetArraySize(entries), k = 0;
    cJSON **v = n ? cm_xmalloc((size_t)n * sizeof(*v)) : NULL, *e;
    cJSON_ArrayForEach(e, entries)
        v[k++] = e;
    int start = n;
    for (long m = 0; start > 0 && m < tail;)
        m += entry_level(v[--start]) >= min;
    for (int i = start; i < n; i++)
        if (entry_level(v[i]) >= min)
            cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(entries, v[i]));
    free(v);
    cJSON_Delete(entries);
    return out;
}

void rt_h_dash_logs_router(cm_http_req_t *req, void *ud)
{
    (void)ud;
    long tail;
    if (!int_param(req, "tail", LOGS_TAIL_DEFAULT, 1, LOGS_TAIL_MAX, &tail)) {
        bad_param(req, "tail", "'tail' must be an integer between 1 and 1000");
        return;
    }
    const char *ls = cm_http_req_query(req, "level");
    int min = ls ? level_param(ls) : CM_LOG_TRACE;
    if (min < 0) {
        bad_param(req, "level", "'level' must be one of trace, debug, info, warn, error");
        return;
    }
    /* the whole ring when filtering: the last tail entries that match */
    char *text = cm_log_tail_json(min > CM_LOG_TRACE ? 1 << 20 : (int)tail);
    cJSON *entries = filter_entries(cJSON_Parse(text), min, tail);
    free(text);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", "router");
    cJSON_AddStringToObject(o, "level", cm_log_level_name((cm_log_level_t)min));
    cJSON_AddNumberToObject(o, "tail", (double)tail);
    cJSON_AddItemToObject(o, "entries", entries);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

/* ---- a node's logs, fetched from the node ---- */

typedef struct {
    char *data;
    size_t len;
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    body_t *b = ud;
    size_t k = size * n;
    if (b->len + k > NODE_LOGS_MAX_BYTES)
        return 0; /* bounded: curl fails the transfer (CURLE_WRITE_ERROR) */
    b->data = cm_xrealloc(b->data, b->len + k + 1);
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

/* GET <base>/api/logs?tail= with the node's credential: the body (caller
 * frees) with the status in *status, or NULL (the reason logged). */
static char *fetch_logs(const job_t *j, size_t *len)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/api/logs?tail=%d", j->base_url, j->tail);
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    struct curl_slist *h = curl_slist_append(NULL, j->auth_hdr);
    body_t b = { 0 };
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)NODE_LOGS_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)NODE_LOGS_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || status != 200) {
        if (rc != CURLE_OK)
            LOG_WARN("dashboard", "logs of node %s: %s", j->node_id,
                     rc == CURLE_WRITE_ERROR ? "answer over 4 MiB" : curl_easy_strerror(rc));
        else
            LOG_WARN("dashboard", "logs of node %s: the node answered %ld", j->node_id, status);
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

static void build_node_logs(job_t *j)
{
    size_t len = 0;
    char *body = fetch_logs(j, &len);
    if (!body) {
        job_fail(j, 502, "node_unavailable", "The node's logs could not be fetched");
        return;
    }
    cJSON *p = cm_json_parse(body, len);
    free(body);
    cJSON *entries = cJSON_DetachItemFromObjectCaseSensitive(p, "entries");
    cJSON_Delete(p);
    if (!cJSON_IsArray(entries)) {
        LOG_WARN("dashboard", "logs of node %s: not a JSON object with entries", j->node_id);
        cJSON_Delete(entries);
        job_fail(j, 502, "node_unavailable", "The node's logs could not be fetched");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", "node");
    cJSON_AddStringToObject(o, "node_id", j->node_id);
    cJSON_AddNumberToObject(o, "tail", j->tail);
    cJSON_AddItemToObject(o, "entries", entries);
    j->reply = o;
}

void rt_h_nodes_logs(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id");
    long tail;
    if (!int_param(req, "tail", LOGS_TAIL_DEFAULT, 1, LOGS_TAIL_MAX, &tail)) {
        bad_param(req, "tail", "'tail' must be an integer between 1 and 1000");
        return;
    }
    job_t *j = job_new(ud, build_node_logs);
    bool online = false;
    if (rt_registry_endpoint(rt->registry, id, j->base_url, j->auth_hdr, &online) != 0) {
        job_free(j);
        cm_http_reply_error(req, 404, NULL, "node_not_found", NULL, "Node not found");
        return;
    }
    if (!online || !j->auth_hdr[0]) {
        job_free(j);
        cm_http_reply_error(req, 502, NULL, "node_unavailable", NULL, "The node is offline");
        return;
    }
    if (atomic_fetch_add(&fetches_in_flight, 1) >= NODE_LOGS_CONCURRENT) {
        atomic_fetch_sub(&fetches_in_flight, 1);
        job_free(j);
        cm_http_add_header(req, "Retry-After", "1");
        cm_http_reply_error(req, 503, "server_error", "busy", NULL, "Too many node log requests at once; retry");
        return;
    }
    j->holds_fetch = true;
    snprintf(j->node_id, sizeof(j->node_id), "%s", id);
    j->tail = (int)tail;
    rt_offload(ud, req, &job_ops, j);
}
