/* cloud_proxy_call: one cloud call, from the provider request out to the
 * client's last byte.
 *
 *   rt_cloud_send -> attempt -> on_headers / on_data / on_done
 *
 * A provider error (status >= 400) is gathered (bounded) and read when its
 * body ends: 429 and 5xx are retried after a back-off honouring Retry-After
 * while nothing reached the client, else the error goes to the client in
 * OpenAI's shape with the provider's status and message. A 2xx answer is
 * held whole (bounded) and translated, or, for a stream, translated event
 * by event (cloud/cloud.h) and relayed with the same back-pressure as the
 * node proxy: the provider is paused while the client's output queue is
 * above HIGH_WATER. A client that leaves cancels the upstream call (its
 * connection closes, which is how a provider learns of it). */
#include "core/cloud_proxy_int.h"

#include "log.h"
#include "offload.h"
#include "sse.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HOLD_MAX (32u << 20)     /* a non-stream answer held whole up to this */
#define ERR_MAX (64u << 10)      /* a provider's error body kept up to this */
#define HIGH_WATER (256u << 10)  /* client output queued before the provider is paused */
#define RETRY_WAIT_MAX_MS 20000  /* a Retry-After longer than this is passed on, not waited */
#define BACKOFF_BASE_MS 250
#define BACKOFF_MAX_MS 4000

struct cloud_call {
    rt_cloud_t *c;
    cm_http_req_t *req;
    LIST_ENTRY(cloud_call) link;
    int worker;
    rt_cloud_call_t call;         /* the provider's request (owned) */
    const char *pname;            /* rt_cloud_provider_name */
    char *model;                  /* the client's, with its prefix */
    char *url;
    char id[96];                  /* chatcmpl-<request id> */
    void *cookie;                 /* the observer's */
    cm_hc_req_t *up;
    struct event *retry_ev;
    int attempts;
    int up_status;                /* the provider's status of this attempt */
    char retry_after[32];         /* its Retry-After, "" when none */
    bool is_sse;                  /* it answers with an event stream */
    bool streaming;               /* the client's stream has started */
    bool over;                    /* the translated stream ended (DONE or ERROR) */
    bool sent, closed, in_cb;
    char tail[2];                 /* the last two bytes written to the client */
    bool in_pool;                 /* the answer is being translated on the offload pool */
    char *answer;                 /* what the pool made of it (NULL: malformed, see answer_err) */
    size_t answer_len;
    char answer_err[160];
    bool plain_ip;                /* http:// to a numeric address: the own transport, as for nodes */
    rt_cloud_stream_t *st;        /* the translator of a streamed answer (not OpenAI) */
    struct evbuffer *scratch;     /* a feed's translated output */
    char *buf;                    /* the held answer or error body */
    size_t blen, bcap;
    int status;                   /* what the client was sent */
    const char *err_type;         /* the error code the client saw */
    char err[200];                /* the detail, for the log and the observer */
    rt_cloud_usage_t usage;
    char usage_json[96];
    uint64_t t_start, t_first, t_sent, upstream_us;
};

static void attempt(cloud_call_t *cc);

/* ---- ending ---- */

static void cc_free(cloud_call_t *cc)
{
    rt_cloud_t *c = cc->c;
    uint64_t now = cm_now_us();
    if (cc->usage.prompt_tokens >= 0 || cc->usage.completion_tokens >= 0)
        snprintf(cc->usage_json, sizeof(cc->usage_json), "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld}",
                 (long long)(cc->usage.prompt_tokens < 0 ? 0 : cc->usage.prompt_tokens),
                 (long long)(cc->usage.completion_tokens < 0 ? 0 : cc->usage.completion_tokens));
    if (c->obs.end && cc->cookie) {
        rt_proxy_result_t res = {
            .node_id = cc->pname,
            .node_name = cc->pname,
            .attempts = cc->attempts,
            .status = cc->status,
            .error_type = cc->closed ? "client_closed" : cc->err_type,
            .error = cc->err[0] ? cc->err : NULL,
            .sse = cc->streaming,
            .client_closed = cc->closed,
            .start_us = cc->t_start,
            .first_byte_us = cc->t_first,
            .end_us = now,
            .upstream_us = cc->upstream_us,
            .usage_trailer = cc->usage_json[0] ? cc->usage_json : NULL,
        };
        c->obs.end(c->obs.ud, cc->cookie, &res);
    }
    if (c->metrics)
        rt_metrics_cloud(c->metrics, cc->pname, cc->closed && !cc->status ? 499 : cc->status,
                         (double)(now - cc->t_start) / 1e6);
    LIST_REMOVE(cc, link);
    if (cc->retry_ev)
        event_free(cc->retry_ev);
    if (cc->scratch)
        evbuffer_free(cc->scratch);
    rt_cloud_stream_free(cc->st);
    rt_cloud_call_free(&cc->call);
    free(cc->model);
    free(cc->url);
    free(cc->buf);
    free(cc->answer);
    free(cc);
}

static void reply_error(cloud_call_t *cc, int status, const char *type, const char *code, const char *param,
                        const char *msg)
{
    cc->status = status;
    cc->err_type = code ? code : type;
    if (!cc->t_first)
        cc->t_first = cm_now_us();
    cm_http_reply_error(cc->req, status, type, code, param, "%s", msg);
}

static void client_gone(cm_http_req_t *req, void *arg)
{
    cloud_call_t *cc = arg;
    (void)req;
    cc->closed = true;
    if (cc->in_cb || cc->in_pool)
        return; /* the running callback aborts the transfer (on_done ends it); a
                 * translation on the pool ends it when it is back */
    if (cc->up)
        cm_hc_cancel(cc->up);
    cc->up = NULL;
    if (cc->t_sent) {
        cc->upstream_us += cm_now_us() - cc->t_sent;
        cc->t_sent = 0;
    }
    snprintf(cc->err, sizeof(cc->err), "client closed the connection");
    cm_http_stream_end(cc->req); /* finishes quietly after a close */
    cc_free(cc);
}

/* ---- writing to the client ---- */

static void on_drain(cm_http_req_t *req, void *arg)
{
    cloud_call_t *cc = arg;
    (void)req;
    if (cc->up && cm_hc_paused(cc->up))
        cm_hc_resume(cc->up);
}

static void write_client(cloud_call_t *cc, const char *data, size_t len)
{
    rt_cloud_t *c = cc->c;
    if (len == 0)
        return;
    if (!cc->streaming) {
        cc->streaming = true;
        cc->status = 200;
        cm_http_stream_on_drain(cc->req, on_drain, cc);
        cm_http_stream_start(cc->req, 200, CM_SSE_CONTENT_TYPE);
    }
    if (c->obs.chunk && cc->cookie)
        c->obs.chunk(c->obs.ud, cc->cookie, data, len);
    cm_http_stream_write(cc->req, data, len);
    if (len >= 2) {
        cc->tail[0] = data[len - 2];
        cc->tail[1] = data[len - 1];
    } else {
        cc->tail[0] = cc->tail[1];
        cc->tail[1] = data[0];
    }
    if (!cc->sent)
        cc->t_first = cm_now_us();
    cc->sent = true;
    if (cc->up && cm_http_stream_pending(cc->req) > HIGH_WATER)
        cm_hc_pause(cc->up); /* resumed by on_drain */
}

static void flush_scratch(cloud_call_t *cc)
{
    size_t n = evbuffer_get_length(cc->scratch);
    if (!n)
        return;
    const char *p = (const char *)evbuffer_pullup(cc->scratch, (ev_ssize_t)n);
    write_client(cc, p, n);
    evbuffer_drain(cc->scratch, n);
}

/* ---- the provider's answer ---- */

static bool retryable(int status) { return status == 429 || status >= 500; }

static bool can_retry(const cloud_call_t *cc)
{
    return !cc->sent && !cc->closed && cc->attempts <= cc->c->o.retries;
}

static int on_headers(cm_hc_req_t *r, int status, const cm_hc_header_t *h, size_t nh, void *ud)
{
    cloud_call_t *cc = ud;
    (void)r;
    cc->up_status = status;
    cc->retry_after[0] = '\0';
    cc->is_sse = false;
    for (size_t i = 0; i < nh; i++) {
        if (strcasecmp(h[i].name, "Retry-After") == 0)
            snprintf(cc->retry_after, sizeof(cc->retry_after), "%s", h[i].value);
        else if (strcasecmp(h[i].name, "Content-Type") == 0)
            cc->is_sse = strncasecmp(h[i].value, CM_SSE_CONTENT_TYPE, strlen(CM_SSE_CONTENT_TYPE)) == 0;
    }
    cc->blen = 0;
    /* a stream goes through the stream object: the translator, or for
     * OpenAI the watcher of the relayed bytes; an OpenAI answer that is not
     * an event stream is held and relayed whole */
    if (status >= 200 && status < 300 && cc->call.stream && (cc->is_sse || cc->call.provider != RT_CLOUD_OPENAI)) {
        rt_cloud_stream_free(cc->st);
        cc->st = rt_cloud_stream_new(&cc->call, cc->model, cc->id, (int64_t)time(NULL));
        if (!cc->scratch)
            cc->scratch = evbuffer_new();
    }
    return CM_HC_CONTINUE;
}

static bool hold(cloud_call_t *cc, const char *data, size_t len, size_t max)
{
    if (cc->blen + len > max)
        return false;
    cm_xgrow(&cc->buf, &cc->bcap, cc->blen + len + 1, 4096);
    memcpy(cc->buf + cc->blen, data, len);
    cc->blen += len;
    cc->buf[cc->blen] = '\0';
    return true;
}

static int on_data(cm_hc_req_t *r, const char *data, size_t len, void *ud)
{
    cloud_call_t *cc = ud;
    (void)r;
    if (cc->closed)
        return CM_HC_ABORT;
    if (cc->up_status < 200 || cc->up_status >= 300) { /* an error body: its start is enough */
        size_t room = ERR_MAX - cc->blen;
        hold(cc, data, len < room ? len : room, ERR_MAX);
        return CM_HC_CONTINUE;
    }
    if (cc->over)
        return CM_HC_CONTINUE; /* after the stream's end: read to the end, keep the connection */
    if (!cc->st) {
        if (hold(cc, data, len, HOLD_MAX))
            return CM_HC_CONTINUE;
        snprintf(cc->err, sizeof(cc->err), "%s answer larger than %u MiB", cc->pname, HOLD_MAX >> 20);
        cc->up_status = -1; /* on_done: a failed attempt that is not retried */
        return CM_HC_ABORT;
    }
    /* a stream: translated, or (OpenAI) relayed as is while the stream
     * object watches it for usage, errors and [DONE] */
    char err[160];
    cc->in_cb = true;
    int rc = rt_cloud_stream_feed(cc->st, data, len, cc->scratch, err, sizeof(err));
    flush_scratch(cc);
    cc->in_cb = false;
    if (rc == RT_CLOUD_STREAM_ERROR)
        snprintf(cc->err, sizeof(cc->err), "%s stream error: %s", cc->pname, err);
    if (rc != RT_CLOUD_STREAM_MORE)
        cc->over = true;
    return cc->closed ? CM_HC_ABORT : CM_HC_CONTINUE;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3); -1 when
 * absent or unreadable. */
static long retry_after_ms(const char *v)
{
    if (!v || !*v)
        return -1;
    char *end;
    long s = strtol(v, &end, 10);
    if (end != v && *end == '\0' && s >= 0)
        return s > 86400 ? 86400000L : s * 1000L;
    struct tm tm = { 0 };
    const char *rest = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!rest || *rest)
        return -1;
    time_t when = timegm(&tm), now = time(NULL);
    return when <= now ? 0 : (long)(when - now) * 1000L;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    cloud_call_t *cc = arg;
    (void)fd, (void)what;
    attempt(cc);
}

/* Schedules the next attempt; false when the wait would be too long (the
 * caller then passes the provider's answer on). */
static bool schedule_retry(cloud_call_t *cc)
{
    rt_cloud_t *c = cc->c;
    long ms = retry_after_ms(cc->retry_after);
    if (ms > RETRY_WAIT_MAX_MS)
        return false;
    if (ms < 0) {
        long b = BACKOFF_BASE_MS << (cc->attempts - 1 < 5 ? cc->attempts - 1 : 5);
        ms = b > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b;
        ms += (long)(cm_now_us() % (uint64_t)(ms / 4 + 1)); /* jitter: clients retrying together spread */
    }
    if (c->obs.retry && cc->cookie)
        c->obs.retry(c->obs.ud, cc->cookie);
    if (!cc->retry_ev)
        cc->retry_ev = evtimer_new(c->w[cc->worker].base, retry_cb, cc);
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(cc->retry_ev, &tv);
    LOG_INFO("cloud", "%s %s answered %d: retry %d in %ld ms", cm_http_req_id(cc->req), cc->pname, cc->up_status,
             cc->attempts, ms);
    return true;
}

/* The provider's error answer, in OpenAI's shape with its status. */
static void provider_error(cloud_call_t *cc)
{
    rt_cloud_error_t pe;
    rt_cloud_error(cc->call.provider, cc->up_status, cc->buf, cc->blen, &pe);
    snprintf(cc->err, sizeof(cc->err), "%s answered %d", cc->pname, cc->up_status);
    int st = cc->up_status >= 400 && cc->up_status <= 599 ? cc->up_status : 502;
    if (cc->retry_after[0] && (st == 429 || st == 503 || st == 529))
        cm_http_add_header(cc->req, "Retry-After", cc->retry_after);
    if (cc->up_status >= 500 && !pe.message[0])
        snprintf(pe.message, sizeof(pe.message), "%s failed (HTTP %d)", cc->pname, cc->up_status);
    reply_error(cc, st, pe.type, pe.code[0] ? pe.code : NULL, NULL, pe.message);
    cc_free(cc);
}

/* A whole 2xx answer: relayed (OpenAI) or translated. An answer from
 * OFFLOAD_BYTES on is read (OpenAI: for its usage) or translated on the
 * offload pool, so that a large one (embeddings of many inputs) does not
 * hold the loop; cc->buf, call, model and id stay untouched meanwhile. */
#define OFFLOAD_BYTES (128u * 1024u)

static void translate(cloud_call_t *cc)
{
    if (cc->call.provider == RT_CLOUD_OPENAI) {
        cc->usage = rt_cloud_answer_usage(cc->buf, cc->blen);
        return;
    }
    cc->answer = rt_cloud_answer(&cc->call, cc->buf, cc->blen, cc->model, cc->id, (int64_t)time(NULL),
                                 &cc->answer_len, cc->answer_err, sizeof(cc->answer_err));
    if (cc->answer)
        cc->usage = rt_cloud_answer_usage(cc->answer, cc->answer_len);
}

static void reply_answer(cloud_call_t *cc)
{
    rt_cloud_t *c = cc->c;
    const char *body = cc->call.provider == RT_CLOUD_OPENAI ? (cc->buf ? cc->buf : "") : cc->answer;
    size_t len = cc->call.provider == RT_CLOUD_OPENAI ? cc->blen : cc->answer_len;
    if (!body) {
        snprintf(cc->err, sizeof(cc->err), "%s: malformed answer: %s", cc->pname, cc->answer_err);
        LOG_WARN("cloud", "%s %s", cm_http_req_id(cc->req), cc->err);
        char msg[300];
        snprintf(msg, sizeof(msg), "The provider %s sent an answer that could not be read: %s", cc->pname,
                 cc->answer_err);
        reply_error(cc, 502, "server_error", "upstream_malformed", NULL, msg);
        cc_free(cc);
        return;
    }
    cc->status = cc->call.provider == RT_CLOUD_OPENAI ? cc->up_status : 200;
    cc->t_first = cm_now_us();
    if (c->obs.chunk && cc->cookie)
        c->obs.chunk(c->obs.ud, cc->cookie, body, len);
    cm_http_reply(cc->req, cc->status, "application/json", body, len);
    cc_free(cc);
}

static void translate_work(void *arg) { translate(arg); }

static void translate_done(void *arg, cm_offload_status_t st)
{
    cloud_call_t *cc = arg;
    cc->in_pool = false;
    if (st != CM_OFFLOAD_DONE && !cc->closed)
        translate(cc); /* cancelled at shutdown or refused: here after all */
    if (cc->closed) {
        client_gone(cc->req, cc);
        return;
    }
    reply_answer(cc);
}

static void answer(cloud_call_t *cc)
{
    rt_cloud_t *c = cc->c;
    if (c->pool && cc->blen >= OFFLOAD_BYTES) {
        cc->in_pool = true;
        if (cm_offload_submit(c->pool, c->w[cc->worker].base, translate_work, translate_done, cc) == 0)
            return;
        cc->in_pool = false; /* the pool is full: on the loop after all */
    }
    translate(cc);
    reply_answer(cc);
}

/* The stream's end: what the stream object writes for it (the final
 * chunk and [DONE], or an error event and [DONE] when it was cut short),
 * then the end. */
static void end_stream(cloud_call_t *cc, int result, const char *detail)
{
    char err[160] = "";
    bool whole = cc->tail[0] == '\n' && cc->tail[1] == '\n';
    if (!cc->over && cc->sent && !whole) /* an OpenAI event cut in half: close it first */
        write_client(cc, "\n\n", 2);
    if (result == CM_HC_OK) {
        if (rt_cloud_stream_end(cc->st, cc->scratch, err, sizeof(err)) == RT_CLOUD_STREAM_ERROR && !cc->err[0])
            snprintf(cc->err, sizeof(cc->err), "%s stream error: %s", cc->pname, err);
    } else {
        rt_cloud_stream_cut(cc->st, result == CM_HC_ETIMEOUT ? "The provider's stream went silent for too long"
                                                             : "The provider's stream was cut short",
                            cc->scratch);
        if (!cc->err[0])
            snprintf(cc->err, sizeof(cc->err), "%s: %s%s%s", cc->pname, cm_hc_strerror(result),
                     detail && *detail ? ": " : "", detail ? detail : "");
    }
    flush_scratch(cc);
    cc->usage = rt_cloud_stream_usage(cc->st);
    if (cc->err[0])
        cc->err_type = "stream_error";
    cm_http_stream_end(cc->req);
    cc_free(cc);
}

static void on_done(cm_hc_req_t *r, int result, const char *detail, void *ud)
{
    cloud_call_t *cc = ud;
    (void)r;
    cc->up = NULL;
    if (cc->t_sent) {
        cc->upstream_us += cm_now_us() - cc->t_sent;
        cc->t_sent = 0;
    }
    if (cc->closed) {
        client_gone(cc->req, cc);
        return;
    }
    bool ok2xx = cc->up_status >= 200 && cc->up_status < 300;
    if (ok2xx && cc->st && (cc->sent || result == CM_HC_OK || !can_retry(cc))) {
        end_stream(cc, result, detail);
        return;
    }
    if (result == CM_HC_OK && ok2xx) {
        answer(cc);
        return;
    }
    if (result == CM_HC_OK && cc->up_status >= 400) {
        if (retryable(cc->up_status) && can_retry(cc) && schedule_retry(cc))
            return;
        provider_error(cc);
        return;
    }
    /* the call failed at the connection (or the answer was too big) */
    if (cc->up_status != -1 && !cc->err[0])
        snprintf(cc->err, sizeof(cc->err), "%s: %s%s%s", cc->pname, cm_hc_strerror(result),
                 detail && *detail ? ": " : "", detail ? detail : "");
    LOG_WARN("cloud", "%s %s", cm_http_req_id(cc->req), cc->err);
    if (cc->up_status != -1 && can_retry(cc) && schedule_retry(cc)) {
        cc->err[0] = '\0';
        return;
    }
    char msg[200];
    bool timeout = result == CM_HC_ETIMEOUT;
    snprintf(msg, sizeof(msg), "The provider %s %s (request id %s)", cc->pname,
             cc->up_status == -1 ? "sent an answer too large to relay"
             : timeout           ? "did not answer in time"
                                 : "could not be reached or broke the connection",
             cm_http_req_id(cc->req));
    reply_error(cc, timeout ? 504 : 502, "server_error", timeout ? "upstream_timeout" : "upstream_error", NULL, msg);
    cc_free(cc);
}

static void attempt(cloud_call_t *cc)
{
    rt_cloud_t *c = cc->c;
    const rt_cloud_provider_t p = cc->call.provider;
    const char *hdrs[6];
    size_t nh = 0;
    hdrs[nh++] = "Content-Type: application/json";
    hdrs[nh++] = cc->call.stream ? "Accept: text/event-stream" : "Accept: application/json";
    hdrs[nh++] = c->auth[p];
    if (p == RT_CLOUD_ANTHROPIC)
        hdrs[nh++] = c->anthropic_version;
    hdrs[nh++] = "User-Agent: llm-router";
    hdrs[nh] = NULL;
    cm_hc_opts_t o = {
        .method = "POST", .url = cc->url, .headers = hdrs, .body = cc->call.body, .body_len = cc->call.len,
        .connect_timeout_ms = c->o.connect_timeout_ms > 0 ? c->o.connect_timeout_ms : 10000,
        .idle_timeout_s = c->o.idle_timeout_s, .head_timeout_ms = c->o.head_timeout_s * 1000,
        .ca_file = c->o.ca_bundle, .no_proxy = cc->plain_ip,
        .on_headers = on_headers, .on_data = on_data, .on_done = on_done, .ud = cc,
    };
    cc->attempts++;
    cc->up_status = 0;
    cc->blen = 0;
    cc->t_sent = cm_now_us();
    cc->up = cm_hc_request(c->w[cc->worker].hc, &o);
    if (!cc->up) {
        cc->up_status = -1; /* a URL libcurl refuses: retrying cannot help */
        snprintf(cc->err, sizeof(cc->err), "%s: the request could not start (check its base URL)", cc->pname);
        on_done(NULL, CM_HC_EOTHER, NULL, cc);
    }
}

/* base + path, one "/v1" dropped when both have it (OPENAI_BASE_URL is
 * often written the way the openai SDK wants it, ".../v1"). */
static char *join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    if (n >= 3 && memcmp(base + n - 3, "/v1", 3) == 0 && strncmp(path, "/v1/", 4) == 0)
        path += 3;
    size_t m = strlen(path);
    char *u = cm_xmalloc(n + m + 1);
    memcpy(u, base, n);
    memcpy(u + n, path, m + 1);
    return u;
}

void rt_cloud_send(rt_cloud_t *c, cm_http_req_t *req, const char *path, const char *model, const char *body,
                   size_t len, rt_cloud_prep_t *prep)
{
    cloud_call_t *cc = cm_xcalloc(1, sizeof(*cc));
    cc->c = c;
    cc->req = req;
    cc->worker = cm_http_req_worker(req);
    cc->pname = rt_cloud_provider_name(prep->provider);
    cc->model = cm_xstrdup(model);
    cc->usage = (rt_cloud_usage_t){ -1, -1 };
    cc->t_start = cm_now_us();
    LIST_INSERT_HEAD(&c->w[cc->worker].live, cc, link);
    if (c->obs.begin)
        cc->cookie = c->obs.begin(c->obs.ud, req, path, model, body, len);
    if (prep->status) {
        snprintf(cc->err, sizeof(cc->err), "%.190s", prep->message);
        reply_error(cc, prep->status, prep->type, prep->code, prep->param, prep->message);
        rt_cloud_prep_free(prep);
        cc_free(cc);
        return;
    }
    cc->call = prep->call; /* taken */
    memset(&prep->call, 0, sizeof(prep->call));
    snprintf(cc->id, sizeof(cc->id), "%s%s", cc->call.endpoint == RT_CLOUD_COMPLETIONS ? "cmpl-" : "chatcmpl-",
             cm_http_req_id(req));
    cc->url = join_url(c->o.base_url[cc->call.provider], cc->call.path);
    cc->plain_ip = c->plain_ip[cc->call.provider];
    cm_http_req_on_close(req, client_gone, cc);
    attempt(cc);
}

void rt_cloud_calls_stop(rt_cloud_t *c, int worker)
{
    cloud_call_t *cc;
    LIST_FOREACH(cc, &c->w[worker].live, link) {
        if (cc->up)
            cm_hc_cancel(cc->up);
        cc->up = NULL;
        if (cc->retry_ev)
            event_free(cc->retry_ev);
        cc->retry_ev = NULL;
    }
}
