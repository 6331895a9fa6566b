/* recorder: the proxy's observer and the history's writer (core/recorder.h).
 *
 * On the loop (begin, chunk, retry, end) a request costs one job struct with
 * its fixed-size fields, a copy of the request body (up to max_body) and the
 * answer's bytes: the first HEAD_FACTOR * max_body of them, then a ring of
 * the last RT_REC_TAIL, so a long stream's finish reason and usage survive.
 * No JSON is parsed there. end pushes the job into a bounded queue (rows and
 * bytes); a full queue drops it and counts it, never waits.
 *
 * The writer thread takes batches off the queue, reads each answer
 * (recorder_sse.c: streams reassembled, token counts), counts the tokens
 * into the metrics, inserts the batch in one transaction and prunes rows
 * past the retention at start and once an hour. */
#include "core/recorder.h"
#include "core/recorder_int.h"

#include "auth/auth.h"
#include "core/registry.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Raw answer bytes kept at the head, as a multiple of max_body: a stream's
 * events carry about ten times their content in JSON framing. */
#define HEAD_FACTOR 4
/* Rows the writer inserts in one transaction at most. */
#define BATCH_MAX 256
/* Bytes all queued jobs may hold (bodies and answers), beyond which rows are
 * dropped like a full queue: LLM_ROUTER_HISTORY_QUEUE rows of large bodies
 * would otherwise be gigabytes. */
#define QUEUE_BYTES ((size_t)256 << 20)
/* Retention: rows pruned per transaction, and how often. */
#define PRUNE_BATCH 2000
#define PRUNE_EVERY_MS (3600 * 1000)
/* rt_recorder_free: queued rows are written for this long, then dropped. */
#define DRAIN_MS 5000
#define DROP_LOG_MS 1000

typedef struct job {
    struct job *next;
    char id[64];
    char endpoint[32];
    char model[260];
    const char *client_kind; /* a static string, NULL: no principal */
    char client_id[RT_AUTH_ID_SIZE];
    char client_name[RT_AUTH_PRINCIPAL_NAME_SIZE];
    char addr[64];
    char node_id[RT_NODE_ID_MAX];
    char node_name[RT_NODE_NAME_MAX];
    char error_type[32];
    char error[256];
    char usage[160];
    bool has_node, has_error_type, has_error, has_usage;
    bool sse, closed;
    int attempts, status;
    int64_t received_ms;
    uint64_t start_us, first_us, end_us;
    char *req_body;
    size_t req_len;
    bool req_truncated;
    char *head;              /* the answer's first bytes */
    size_t head_len, head_cap, head_max;
    char *tail;              /* ring of RT_REC_TAIL bytes after the head's bound */
    size_t tail_pos;         /* where the next byte goes */
    uint64_t tail_total;     /* bytes that went into the ring */
    size_t bytes;            /* what the job holds, for QUEUE_BYTES */
} job_t;

struct rt_recorder {
    rt_recorder_opts_t o;
    rt_history_t *h;
    rt_metrics_t *m;
    size_t head_max;         /* 0: bodies are not kept (the ring still reads tokens) */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* the writer waits for jobs (CLOCK_MONOTONIC) */
    pthread_cond_t done_cv;  /* rt_recorder_flush waits for processed */
    job_t *qhead, *qtail;
    size_t qbytes;
    bool writer_idle, stop;
    uint64_t accepted, processed; /* under mu: jobs taken into the queue, and done with */
    uint64_t stop_deadline_ms;
    pthread_t thread;
    bool started;

    atomic_uint_least64_t queued, written, dropped, depth;
    atomic_uint_least64_t drop_log_ms;
};

/* ---- the loop side ---- */

static void copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strnlen(s, cap - 1) : 0;
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

void *rt_rec_begin(rt_recorder_t *r, const rt_rec_client_t *c, const char *path, const char *model,
                   const char *body, size_t len)
{
    job_t *j = cm_xcalloc(1, sizeof(*j));
    j->received_ms = (int64_t)cm_wall_ms();
    copy_str(j->id, sizeof(j->id), c->request_id);
    copy_str(j->endpoint, sizeof(j->endpoint), path);
    copy_str(j->model, sizeof(j->model), model);
    copy_str(j->addr, sizeof(j->addr), c->peer);
    j->client_kind = c->kind;
    copy_str(j->client_id, sizeof(j->client_id), c->id);
    copy_str(j->client_name, sizeof(j->client_name), c->name);
    j->head_max = r->head_max;
    j->bytes = sizeof(*j);
    if (r->head_max && body) {
        size_t n = len < r->o.max_body ? len : r->o.max_body;
        j->req_body = cm_xmalloc(n + 1);
        memcpy(j->req_body, body, n);
        j->req_body[n] = '\0';
        j->req_len = n;
        j->req_truncated = len > n;
        j->bytes += n;
    }
    return j;
}

static void *on_begin(void *ud, cm_http_req_t *req, const char *path, const char *model, const char *body,
                      size_t len)
{
    const rt_principal_t *p = rt_auth_principal(req);
    rt_rec_client_t c = {
        .request_id = cm_http_req_id(req),
        .peer = cm_http_req_peer(req),
        .kind = !p                              ? NULL
                : p->kind == RT_PRINCIPAL_API_KEY ? "api_key"
                : p->kind == RT_PRINCIPAL_USER    ? "user"
                                                  : "node",
        .id = p ? p->id : NULL,
        .name = p ? p->name : NULL,
    };
    return rt_rec_begin(ud, &c, path, model, body, len);
}

static void ring_put(job_t *j, const char *data, size_t len)
{
    if (!j->tail)
        j->tail = cm_xmalloc(RT_REC_TAIL);
    j->tail_total += len;
    if (len >= RT_REC_TAIL) {
        memcpy(j->tail, data + len - RT_REC_TAIL, RT_REC_TAIL);
        j->tail_pos = 0;
        return;
    }
    size_t first = RT_REC_TAIL - j->tail_pos;
    if (first > len)
        first = len;
    memcpy(j->tail + j->tail_pos, data, first);
    memcpy(j->tail, data + first, len - first);
    j->tail_pos = (j->tail_pos + len) % RT_REC_TAIL;
}

static void on_chunk(void *ud, void *cookie, const char *data, size_t len)
{
    (void)ud;
    job_t *j = cookie;
    if (j->head_len < j->head_max) {
        size_t n = j->head_max - j->head_len;
        if (n > len)
            n = len;
        if (j->head_len + n > j->head_cap) {
            size_t cap = j->head_cap ? j->head_cap * 2 : 4096;
            if (cap < j->head_len + n)
                cap = j->head_len + n;
            if (cap > j->head_max)
                cap = j->head_max;
            j->head = cm_xrealloc(j->head, cap + 1);
            j->head_cap = cap;
        }
        memcpy(j->head + j->head_len, data, n);
        j->head_len += n;
        data += n;
        len -= n;
    }
    if (len)
        ring_put(j, data, len);
}

static void on_retry(void *ud, void *cookie)
{
    (void)ud;
    job_t *j = cookie;
    j->head_len = 0;
    j->tail_pos = 0;
    j->tail_total = 0;
}

static void job_free(job_t *j)
{
    if (!j)
        return;
    free(j->req_body);
    free(j->head);
    free(j->tail);
    free(j);
}

static void count_drop(rt_recorder_t *r)
{
    uint64_t n = atomic_fetch_add(&r->dropped, 1) + 1;
    uint64_t now = cm_now_ms();
    uint64_t last = atomic_load(&r->drop_log_ms);
    if ((last == 0 || now - last >= DROP_LOG_MS) && atomic_compare_exchange_strong(&r->drop_log_ms, &last, now))
        LOG_WARN("history", "history queue full (%zu rows): rows are being dropped, %llu so far",
                 r->o.queue_max, (unsigned long long)n);
}

#define GATHER_MS 10  /* longest a queued row waits for the writer to look */
#define WAKE_DEPTH 64 /* rows queued that wake the writer at once */

static void push(rt_recorder_t *r, job_t *j)
{
    pthread_mutex_lock(&r->mu);
    if (r->stop || atomic_load(&r->depth) >= r->o.queue_max || r->qbytes + j->bytes > QUEUE_BYTES) {
        pthread_mutex_unlock(&r->mu);
        count_drop(r);
        job_free(j);
        return;
    }
    j->next = NULL;
    if (r->qtail)
        r->qtail->next = j;
    else
        r->qhead = j;
    r->qtail = j;
    r->qbytes += j->bytes;
    r->accepted++;
    atomic_fetch_add(&r->depth, 1);
    /* the writer gathers for up to GATHER_MS; woken early only for a full
     * batch: one wake-up per request would cost the loop's core a context
     * switch each (the writer shares it when the router is pinned) */
    bool wake = r->writer_idle && atomic_load(&r->depth) >= WAKE_DEPTH;
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->queued, 1);
    if (wake)
        pthread_cond_signal(&r->work_cv);
}

static void on_end(void *ud, void *cookie, const rt_proxy_result_t *res)
{
    rt_recorder_t *r = ud;
    job_t *j = cookie;
    rt_metrics_request(r->m, j->endpoint, j->model, res);
    j->has_node = res->node_id != NULL;
    copy_str(j->node_id, sizeof(j->node_id), res->node_id);
    copy_str(j->node_name, sizeof(j->node_name), res->node_name);
    j->has_error_type = res->error_type != NULL;
    copy_str(j->error_type, sizeof(j->error_type), res->error_type);
    j->has_error = res->error != NULL;
    copy_str(j->error, sizeof(j->error), res->error);
    j->has_usage = res->usage_trailer != NULL;
    copy_str(j->usage, sizeof(j->usage), res->usage_trailer);
    j->attempts = res->attempts;
    j->status = res->status;
    j->sse = res->sse;
    j->closed = res->client_closed;
    j->start_us = res->start_us;
    j->first_us = res->first_byte_us;
    j->end_us = res->end_us;
    j->bytes += j->head_cap + (j->tail ? RT_REC_TAIL : 0);
    push(r, j);
}

void rt_recorder_observer(rt_recorder_t *r, rt_proxy_observer_t *out)
{
    *out = (rt_proxy_observer_t){
        .begin = on_begin, .chunk = on_chunk, .retry = on_retry, .end = on_end, .ud = r,
    };
}

/* ---- the writer ---- */

/* What the writer made of one job: the row and the memory it points at. */
typedef struct {
    rt_history_row_t row;
    rt_rec_answer_t ans;
    char *joined; /* head + tail when they are contiguous */
} prepared_t;

static int64_t us_between(uint64_t from, uint64_t to)
{
    return to > from ? (int64_t)(to - from) : 0;
}

static void prepare(rt_recorder_t *r, job_t *j, prepared_t *p)
{
    char ring[RT_REC_TAIL];
    size_t tail_len = 0;
    bool gap = j->tail_total > RT_REC_TAIL;
    if (j->tail_total) { /* the ring in order */
        if (!gap) {
            tail_len = (size_t)j->tail_total;
            memcpy(ring, j->tail, tail_len);
        } else {
            size_t a = RT_REC_TAIL - j->tail_pos;
            memcpy(ring, j->tail + j->tail_pos, a);
            memcpy(ring + a, j->tail, j->tail_pos);
            tail_len = RT_REC_TAIL;
        }
    }
    rt_rec_input_t in = {
        .head = j->head, .head_len = j->head_len, .sse = j->sse,
        .chat = strstr(j->endpoint, "chat") != NULL,
        .want_body = r->head_max > 0, .max_body = r->o.max_body,
        .usage_trailer = j->has_usage ? j->usage : NULL,
    };
    p->joined = NULL;
    if (!gap && tail_len) { /* no byte was lost: one contiguous answer */
        p->joined = cm_xmalloc(j->head_len + tail_len + 1);
        if (j->head_len)
            memcpy(p->joined, j->head, j->head_len);
        memcpy(p->joined + j->head_len, ring, tail_len);
        in.head = p->joined;
        in.head_len = j->head_len + tail_len;
    } else if (gap) {
        in.tail = ring;
        in.tail_len = tail_len;
        in.gap = true;
    }
    rt_rec_answer(&in, &p->ans);

    int64_t duration = us_between(j->start_us, j->end_us);
    int64_t ttft = j->first_us ? us_between(j->start_us, j->first_us) : -1;
    if (p->ans.completion_tokens >= 0 || p->ans.prompt_tokens >= 0)
        rt_metrics_tokens(r->m, j->endpoint, j->model, p->ans.prompt_tokens, p->ans.completion_tokens,
                          j->first_us ? (double)us_between(j->first_us, j->end_us) / 1e6 : 0);
    p->row = (rt_history_row_t){
        .id = j->id,
        .received_ms = j->received_ms,
        .first_byte_ms = j->first_us ? j->received_ms + ttft / 1000 : 0,
        .finished_ms = j->received_ms + duration / 1000,
        .endpoint = j->endpoint,
        .model = j->model,
        .node_id = j->has_node ? j->node_id : NULL,
        .node_name = j->has_node ? j->node_name : NULL,
        .attempts = j->attempts,
        .client_kind = j->client_kind,
        .client_id = j->client_kind ? j->client_id : NULL,
        .client_name = j->client_kind ? j->client_name : NULL,
        .client_addr = j->addr[0] ? j->addr : NULL,
        .status = j->status,
        .error_type = j->has_error_type ? j->error_type : NULL,
        .error_message = j->has_error ? j->error : NULL,
        .duration_us = duration,
        .ttft_us = ttft,
        .prompt_tokens = p->ans.prompt_tokens,
        .completion_tokens = p->ans.completion_tokens,
        .total_tokens = p->ans.total_tokens,
        .stream = j->sse,
        .request_body = j->req_body,
        .request_len = j->req_len,
        .request_truncated = j->req_truncated,
        .response_body = p->ans.body,
        .response_len = p->ans.body_len,
        .response_truncated = p->ans.truncated,
    };
}

static void write_batch(rt_recorder_t *r, job_t *batch, size_t n)
{
    prepared_t *p = cm_xmalloc(n * sizeof(*p));
    rt_history_row_t *rows = cm_xmalloc(n * sizeof(*rows));
    size_t i = 0;
    for (job_t *j = batch; j; j = j->next, i++) {
        prepare(r, j, &p[i]);
        rows[i] = p[i].row;
    }
    if (r->h) {
        if (rt_history_insert(r->h, rows, n) == 0)
            atomic_fetch_add(&r->written, n);
        else
            atomic_fetch_add(&r->dropped, n);
    }
    for (i = 0; i < n; i++) {
        free(p[i].ans.body);
        free(p[i].joined);
    }
    free(rows);
    free(p);
    while (batch) {
        job_t *next = batch->next;
        job_free(batch);
        batch = next;
    }
}

static void prune(rt_recorder_t *r)
{
    if (!r->h || r->o.retention_days <= 0)
        return;
    int64_t cut = (int64_t)cm_wall_ms() - (int64_t)r->o.retention_days * 86400 * 1000;
    int64_t n = rt_history_prune(r->h, cut, PRUNE_BATCH);
    if (n > 0)
        LOG_INFO("history", "pruned %lld history rows older than %d days", (long long)n, r->o.retention_days);
}

static void deadline_in(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Takes up to BATCH_MAX jobs off the queue (mu held). */
static job_t *take(rt_recorder_t *r, size_t *n)
{
    job_t *first = r->qhead, *last = NULL;
    size_t k = 0;
    for (job_t *j = first; j && k < BATCH_MAX; j = j->next, k++) {
        r->qbytes -= j->bytes;
        last = j;
    }
    r->qhead = last->next;
    if (!r->qhead)
        r->qtail = NULL;
    last->next = NULL;
    atomic_fetch_sub(&r->depth, k);
    *n = k;
    return first;
}

static void *writer_main(void *arg)
{
    rt_recorder_t *r = arg;
    uint64_t next_prune = cm_now_ms(); /* once at start */
    pthread_mutex_lock(&r->mu);
    for (;;) {
        uint64_t now = cm_now_ms();
        if (now >= next_prune && !r->stop) {
            pthread_mutex_unlock(&r->mu);
            prune(r);
            next_prune = cm_now_ms() + PRUNE_EVERY_MS;
            pthread_mutex_lock(&r->mu);
            continue;
        }
        if (!r->qhead) {
            if (r->stop)
                break;
            struct timespec ts;
            deadline_in(&ts, next_prune - now < GATHER_MS ? next_prune - now : GATHER_MS);
            r->writer_idle = true;
            pthread_cond_timedwait(&r->work_cv, &r->mu, &ts);
            r->writer_idle = false;
            continue;
        }
        size_t n;
        job_t *batch = take(r, &n);
        bool late = r->stop && now > r->stop_deadline_ms;
        pthread_mutex_unlock(&r->mu);
        if (late) { /* shutting down and out of time: what is left is dropped */
            atomic_fetch_add(&r->dropped, n);
            while (batch) {
                job_t *next = batch->next;
                job_free(batch);
                batch = next;
            }
        } else {
            write_batch(r, batch, n);
        }
        pthread_mutex_lock(&r->mu);
        r->processed += n;
        pthread_cond_broadcast(&r->done_cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

rt_recorder_t *rt_recorder_new(const rt_recorder_opts_t *o, rt_history_t *h, rt_metrics_t *m)
{
    rt_recorder_t *r = cm_xcalloc(1, sizeof(*r));
    r->o = *o;
    if (r->o.queue_max < 1)
        r->o.queue_max = 1;
    if (r->o.max_body < 1)
        r->o.max_body = 1;
    r->h = h;
    r->m = m;
    r->head_max = h && o->bodies ? HEAD_FACTOR * r->o.max_body : 0;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&r->done_cv, NULL);
    int rc = pthread_create(&r->thread, NULL, writer_main, r);
    if (rc != 0) {
        LOG_ERROR("history", "cannot start the history writer: %s", strerror(rc));
        r->stop = true; /* every row is dropped and counted */
    } else {
        r->started = true;
    }
    return r;
}

void rt_recorder_free(rt_recorder_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    r->stop_deadline_ms = cm_now_ms() + DRAIN_MS;
    pthread_mutex_unlock(&r->mu);
    pthread_cond_signal(&r->work_cv);
    if (r->started)
        pthread_join(r->thread, NULL);
    while (r->qhead) { /* only when the writer never started */
        job_t *next = r->qhead->next;
        job_free(r->qhead);
        r->qhead = next;
    }
    pthread_cond_destroy(&r->work_cv);
    pthread_cond_destroy(&r->done_cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void rt_recorder_stats(rt_recorder_t *r, rt_recorder_stats_t *out)
{
    out->queued = atomic_load(&r->queued);
    out->written = atomic_load(&r->written);
    out->dropped = atomic_load(&r->dropped);
    out->depth = atomic_load(&r->depth);
}

void rt_recorder_flush(rt_recorder_t *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t target = r->accepted;
    if (r->writer_idle)
        pthread_cond_signal(&r->work_cv);
    while (r->started && r->processed < target)
        pthread_cond_wait(&r->done_cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}
