/* engine: models, contexts, sequences and the batch loop (see engine.h);
 * prompts and token text live in engine_tok.c, embeddings in engine_embd.c. */
#include "engine.h"

#include "engine_int.h"
#include "log.h"
#include "models.h"
#include "util.h"

#include <ggml-backend.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* LLM_NODE_GPU_LAYERS=-1 (all): more layers than any model has */
#define GPU_LAYERS_ALL 999
/* Tokens per sequence when LLM_NODE_CTX_SIZE is 0: the model's training
 * context, but no more than this (the KV cache is allocated up front). */
#define CTX_DEFAULT_MAX 4096
/* Tokens of one physical decode (llama.cpp's ubatch): prompt chunks above it
 * gain little and cost compute-buffer memory. */
#define UBATCH_MAX 512

typedef struct {
    nd_job_t *job;       /* NULL: free */
    llama_token *prompt;
    int n_prompt;
    int n_past;          /* tokens in this sequence's KV cells */
    int n_gen;
    int max_gen;
    llama_token next;    /* sampled, to be fed in the next step */
    int i_batch;         /* output row in the current batch, -1: none */
    struct llama_sampler *smpl;
    nd_text_t text;      /* UTF-8 assembly and stop strings */
} slot_t;

typedef struct {
    char *id, *path;
    struct llama_model *model;
    struct llama_context *ctx;  /* generation: `parallel` sequences */
    struct llama_context *ectx; /* embeddings, made on first use */
    const struct llama_vocab *vocab;
    slot_t *slots;
    int n_ctx_seq;
    nd_jobq_t wait;             /* placed here, waiting for a sequence */
    int active;
    uint64_t last_used_ms;
    uint64_t bytes;
} emodel_t;

struct nd_engine {
    nd_engine_opts_t o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, started;
    bool kick;                       /* a cancel or a release since the last step (mu) */
    nd_jobq_t in;                    /* submitted (mu) */
    nd_jobq_t pend;                  /* waiting for a model to be loadable */
    emodel_t *m[ND_ENGINE_MAX_LOADED];
    int nm;
    struct llama_batch batch;
    nd_engine_stats_t st;            /* published copy (mu) */
    uint64_t prompt_tokens, gen_tokens, decode_us;
    uint64_t n_decode, n_busy_slots; /* /metrics/prom's llamacpp:n_decode_total, n_busy_slots_per_decode */
};

/* ---- small helpers ---- */

static void llama_log(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level != GGML_LOG_LEVEL_ERROR && level != GGML_LOG_LEVEL_WARN)
        return;
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        n--;
    if (level == GGML_LOG_LEVEL_ERROR)
        LOG_WARN("llama", "%.*s", (int)n, text);
    else
        LOG_DEBUG("llama", "%.*s", (int)n, text);
}

static bool quiet_progress(float p, void *ud)
{
    (void)p;
    (void)ud;
    return true; /* no progress dots */
}

/* ---- models ---- */

static void unload(nd_engine_t *e, int i)
{
    emodel_t *m = e->m[i];
    LOG_INFO("engine", "unloading model %s", m->id);
    for (int s = 0; s < e->o.parallel; s++)
        free(m->slots[s].prompt);
    free(m->slots);
    if (m->ectx)
        llama_free(m->ectx);
    llama_free(m->ctx);
    llama_model_free(m->model);
    free(m->id);
    free(m->path);
    free(m);
    e->m[i] = e->m[--e->nm];
    e->m[e->nm] = NULL;
}

static emodel_t *load(nd_engine_t *e, const char *id, const char *path, char *err, size_t errlen)
{
    uint64_t t0 = cm_now_ms();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = e->o.gpu_layers < 0 ? GPU_LAYERS_ALL : e->o.gpu_layers;
    mp.progress_callback = quiet_progress;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) {
        snprintf(err, errlen, "cannot load model %s from %s", id, path);
        return NULL;
    }
    int train = llama_model_n_ctx_train(model);
    int per_seq = e->o.ctx_size > 0 ? e->o.ctx_size
                                    : (train > 0 && train < CTX_DEFAULT_MAX ? train : CTX_DEFAULT_MAX);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)per_seq * (uint32_t)e->o.parallel;
    cp.n_batch = (uint32_t)e->o.batch_size;
    cp.n_ubatch = (uint32_t)(e->o.batch_size < UBATCH_MAX ? e->o.batch_size : UBATCH_MAX);
    cp.n_seq_max = (uint32_t)e->o.parallel;
    cp.n_threads = cp.n_threads_batch = e->o.threads;
    cp.kv_unified = false;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        llama_model_free(model);
        snprintf(err, errlen, "cannot create a context for model %s", id);
        return NULL;
    }
    emodel_t *m = cm_xcalloc(1, sizeof(*m));
    m->id = cm_xstrdup(id);
    m->path = cm_xstrdup(path);
    m->model = model;
    m->ctx = ctx;
    m->vocab = llama_model_get_vocab(model);
    m->slots = cm_xcalloc((size_t)e->o.parallel, sizeof(slot_t));
    m->n_ctx_seq = (int)llama_n_ctx_seq(ctx);
    m->bytes = llama_model_size(model);
    m->last_used_ms = cm_now_ms();
    LOG_INFO("engine", "loaded model %s (%s, %.1f MiB, %d x %d tokens) in %llu ms", id, path,
             (double)m->bytes / 1048576.0, e->o.parallel, m->n_ctx_seq,
             (unsigned long long)(cm_now_ms() - t0));
    return m;
}

static int in_flight(const emodel_t *m)
{
    return m->active + m->wait.n;
}

/* Makes room for a model of `bytes` under the limits: ND_ROOM_OK, _WAIT or _NEVER. */
static int make_room(nd_engine_t *e, uint64_t bytes)
{
    for (;;) {
        nd_loaded_info_t info[ND_ENGINE_MAX_LOADED];
        for (int i = 0; i < e->nm; i++)
            info[i] = (nd_loaded_info_t){ e->m[i]->last_used_ms, in_flight(e->m[i]), e->m[i]->bytes };
        int max = e->o.max_loaded > 0 && e->o.max_loaded < ND_ENGINE_MAX_LOADED ? e->o.max_loaded
                                                                                : ND_ENGINE_MAX_LOADED;
        int v = nd_models_room(info, e->nm, max, e->o.max_memory, bytes);
        if (v < 0)
            return v;
        unload(e, v);
    }
}

static emodel_t *find_model(nd_engine_t *e, const char *id)
{
    for (int i = 0; i < e->nm; i++)
        if (strcmp(e->m[i]->id, id) == 0)
            return e->m[i];
    return NULL;
}

/* Finds or loads the job's model. NULL with *busy when it must wait, NULL
 * without when the job failed. */
static emodel_t *model_for(nd_engine_t *e, nd_job_t *j, bool *busy)
{
    *busy = false;
    emodel_t *m = find_model(e, j->model_id);
    if (m)
        return m;
    struct stat st;
    if (stat(j->model_path, &st) != 0) {
        nd_job_fail(j, 404, "model_not_found", "model file of '%s' is gone", j->model_id);
        return NULL;
    }
    int rc = make_room(e, (uint64_t)st.st_size);
    if (rc == ND_ROOM_NEVER) {
        nd_job_fail(j, 503, "insufficient_memory",
                    "model '%s' (%lld bytes) exceeds LLM_NODE_MAX_MEMORY_BYTES", j->model_id,
                    (long long)st.st_size);
        return NULL;
    }
    if (rc == ND_ROOM_WAIT) {
        *busy = true;
        return NULL;
    }
    char err[512];
    m = load(e, j->model_id, j->model_path, err, sizeof(err));
    if (!m) {
        LOG_ERROR("engine", "%s", err);
        nd_job_fail(j, 500, "model_load_failed", "%s", err);
        return NULL;
    }
    e->m[e->nm++] = m;
    return m;
}

/* ---- sampling ---- */

static struct llama_sampler *make_sampler(emodel_t *m, const nd_sampling_t *sp)
{
    struct llama_sampler_chain_params scp = llama_sampler_chain_default_params();
    scp.no_perf = true;
    struct llama_sampler *c = llama_sampler_chain_init(scp);
    int nv = llama_vocab_n_tokens(m->vocab);
    if (sp->nbias) {
        llama_logit_bias *lb = cm_xcalloc((size_t)sp->nbias, sizeof(*lb));
        for (int i = 0; i < sp->nbias; i++)
            lb[i] = (llama_logit_bias){ sp->bias[i].token, sp->bias[i].bias };
        llama_sampler_chain_add(c, llama_sampler_init_logit_bias(nv, sp->nbias, lb));
        free(lb);
    }
    if (sp->repeat_penalty != 1.0f || sp->frequency_penalty != 0 || sp->presence_penalty != 0)
        llama_sampler_chain_add(c, llama_sampler_init_penalties(nv, sp->repeat_last_n, sp->repeat_penalty,
                                                                sp->frequency_penalty,
                                                                sp->presence_penalty));
    if (sp->temperature <= 0) {
        llama_sampler_chain_add(c, llama_sampler_init_greedy());
        return c;
    }
    if (sp->top_k > 0)
        llama_sampler_chain_add(c, llama_sampler_init_top_k(sp->top_k));
    if (sp->top_p < 1.0f)
        llama_sampler_chain_add(c, llama_sampler_init_top_p(sp->top_p, 1));
    if (sp->min_p > 0)
        llama_sampler_chain_add(c, llama_sampler_init_min_p(sp->min_p, 1));
    llama_sampler_chain_add(c, llama_sampler_init_temp(sp->temperature));
    llama_sampler_chain_add(c, llama_sampler_init_dist(sp->has_seed ? sp->seed : LLAMA_DEFAULT_SEED));
    return c;
}

/* ---- sequences ---- */

static void release(emodel_t *m, int s)
{
    slot_t *sl = &m->slots[s];
    llama_memory_seq_rm(llama_get_memory(m->ctx), s, -1, -1);
    if (sl->smpl)
        llama_sampler_free(sl->smpl);
    nd_text_free(&sl->text);
    free(sl->prompt);
    nd_job_unref(sl->job);
    memset(sl, 0, sizeof(*sl));
    m->active--;
    m->last_used_ms = cm_now_ms();
}

static void finish(emodel_t *m, int s, nd_finish_t why)
{
    slot_t *sl = &m->slots[s];
    if (why == ND_FINISH_LENGTH) {
        char *em = NULL;
        size_t el = 0;
        if (nd_text_flush(&sl->text, &em, &el))
            why = ND_FINISH_STOP;
        nd_job_emit(sl->job, em, el);
        free(em);
    }
    nd_job_finish(sl->job, why, sl->n_prompt, sl->n_gen);
    release(m, s);
}

static int bias_check(emodel_t *m, nd_job_t *j)
{
    int nv = llama_vocab_n_tokens(m->vocab);
    for (int i = 0; i < j->sp.nbias; i++) {
        if (j->sp.bias[i].token >= nv) {
            nd_job_fail(j, 400, "invalid_logit_bias", "logit_bias token %d is outside the vocabulary (%d tokens)",
                        j->sp.bias[i].token, nv);
            return -1;
        }
    }
    return 0;
}

/* Puts job j into free sequence s, or fails it when its prompt cannot run.
 * Either way the engine's reference moves on (to the slot, or dropped). */
static void admit(emodel_t *m, int s, nd_job_t *j)
{
    char *text = j->kind == ND_JOB_CHAT ? nd_engine_chat_prompt(m->model, j) : cm_xstrdup(j->prompt);
    if (!text) {
        nd_job_fail(j, 400, "invalid_messages", "the chat template cannot format these messages");
        nd_job_unref(j);
        return;
    }
    int n = 0;
    llama_token *toks = nd_engine_tokenize(m->vocab, text, true, &n);
    free(text);
    if (!toks || n <= 0) {
        free(toks);
        nd_job_fail(j, 400, "invalid_prompt", "the prompt cannot be tokenized");
        nd_job_unref(j);
        return;
    }
    if (n >= m->n_ctx_seq) {
        free(toks);
        nd_job_fail(j, 400, "context_length_exceeded",
                    "the prompt has %d tokens; this model's context holds %d per request", n,
                    m->n_ctx_seq);
        nd_job_unref(j);
        return;
    }
    if (bias_check(m, j) != 0) {
        free(toks);
        nd_job_unref(j);
        return;
    }
    slot_t *sl = &m->slots[s];
    memset(sl, 0, sizeof(*sl));
    sl->job = j;
    sl->prompt = toks;
    sl->n_prompt = n;
    sl->max_gen = j->sp.max_tokens < 0 ? m->n_ctx_seq : j->sp.max_tokens;
    sl->smpl = make_sampler(m, &j->sp);
    sl->i_batch = -1;
    nd_text_init(&sl->text, (const char *const *)j->sp.stop, j->sp.nstop);
    m->active++;
    m->last_used_ms = cm_now_ms();
    if (sl->max_gen == 0)
        finish(m, s, ND_FINISH_LENGTH);
}

/* ---- the batch loop ---- */

static void on_token(nd_engine_t *e, emodel_t *m, int s, llama_token tok)
{
    slot_t *sl = &m->slots[s];
    e->gen_tokens++;
    if (sl->n_gen == 0)
        nd_job_first_token(sl->job);
    if (llama_vocab_is_eog(m->vocab, tok)) {
        finish(m, s, ND_FINISH_STOP);
        return;
    }
    sl->n_gen++;
    char buf[ND_ENGINE_PIECE_BUF], *spill;
    size_t n;
    const char *piece = nd_engine_piece(m->vocab, tok, buf, sizeof(buf), &spill, &n);
    char *em = NULL;
    size_t el = 0;
    bool stopped = nd_text_feed(&sl->text, piece, n, &em, &el);
    free(spill);
    nd_job_emit(sl->job, em, el);
    free(em);
    if (stopped)
        finish(m, s, ND_FINISH_STOP);
    else if (sl->n_gen >= sl->max_gen || sl->n_past + 1 >= m->n_ctx_seq)
        finish(m, s, ND_FINISH_LENGTH);
    else
        sl->next = tok;
}

static void batch_add(struct llama_batch *b, llama_token t, int pos, int seq, bool out)
{
    int i = b->n_tokens++;
    b->token[i] = t;
    b->pos[i] = pos;
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = seq;
    b->logits[i] = out;
}

/* One llama_decode for every active sequence of model m that is not held.
 * Returns the number of tokens decoded. */
static int step(nd_engine_t *e, emodel_t *m)
{
    struct llama_batch *b = &e->batch;
    b->n_tokens = 0;
    int budget = e->o.batch_size;
    /* sequences already generating first: one token each */
    for (int s = 0; s < e->o.parallel; s++) {
        slot_t *sl = &m->slots[s];
        sl->i_batch = -1;
        if (sl->job && sl->n_past >= sl->n_prompt && budget > 0 && !atomic_load(&sl->job->held)) {
            sl->i_batch = b->n_tokens;
            batch_add(b, sl->next, sl->n_past++, s, true);
            budget--;
        }
    }
    for (int s = 0; s < e->o.parallel && budget > 0; s++) {
        slot_t *sl = &m->slots[s];
        if (!sl->job || sl->n_past >= sl->n_prompt || sl->i_batch >= 0)
            continue;
        int k = sl->n_prompt - sl->n_past;
        if (k > budget)
            k = budget;
        for (int i = 0; i < k; i++) {
            bool last = sl->n_past + 1 == sl->n_prompt;
            if (last)
                sl->i_batch = b->n_tokens;
            batch_add(b, sl->prompt[sl->n_past], sl->n_past, s, last);
            sl->n_past++;
        }
        e->prompt_tokens += (uint64_t)k;
        budget -= k;
    }
    if (b->n_tokens == 0)
        return 0;
    uint64_t t0 = cm_now_us();
    int rc = llama_decode(m->ctx, *b);
    e->decode_us += cm_now_us() - t0;
    e->n_decode++;
    for (int s = 0; s < e->o.parallel; s++)
        e->n_busy_slots += m->slots[s].i_batch >= 0;
    for (int s = 0; s < e->o.parallel; s++) {
        slot_t *sl = &m->slots[s];
        if (!sl->job || sl->i_batch < 0)
            continue;
        if (rc != 0) {
            nd_job_fail(sl->job, 500, "decode_failed", "llama_decode failed (%d)", rc);
            release(m, s);
            continue;
        }
        on_token(e, m, s, llama_sampler_sample(sl->smpl, m->ctx, sl->i_batch));
    }
    return b->n_tokens;
}

/* Frees the sequences of cancelled jobs; returns how many. */
static int drop_cancelled(emodel_t *m, int parallel)
{
    int n = 0;
    for (int s = 0; s < parallel; s++) {
        nd_job_t *j = m->slots[s].job;
        if (j && atomic_load(&j->cancelled)) {
            nd_job_fail(j, ND_STATUS_CLIENT_GONE, "cancelled", "the client went away");
            release(m, s);
            n++;
        }
    }
    return n;
}

/* Moves waiting jobs of m into free sequences; embeddings run at once. */
static void admit_waiting(nd_engine_t *e, emodel_t *m)
{
    nd_jobq_t keep = { 0 };
    nd_job_t *j;
    while ((j = nd_jobq_pop(&m->wait))) {
        if (atomic_load(&j->cancelled)) {
            nd_job_fail(j, ND_STATUS_CLIENT_GONE, "cancelled", "the client went away");
            nd_job_unref(j);
            continue;
        }
        if (j->kind == ND_JOB_EMBED) {
            nd_engine_embed(m->model, &m->ectx, e->o.parallel, e->o.threads, j, &e->decode_us,
                            &e->prompt_tokens);
            m->last_used_ms = cm_now_ms();
            nd_job_unref(j);
            continue;
        }
        int s = 0;
        while (s < e->o.parallel && m->slots[s].job)
            s++;
        if (s == e->o.parallel)
            nd_jobq_push(&keep, j);
        else
            admit(m, s, j);
    }
    m->wait = keep;
}

/* Places new and pending jobs on their models (loading as needed). */
static void place_jobs(nd_engine_t *e, nd_jobq_t *incoming)
{
    nd_job_t *j;
    while ((j = nd_jobq_pop(incoming)))
        nd_jobq_push(&e->pend, j);
    nd_jobq_t keep = { 0 };
    while ((j = nd_jobq_pop(&e->pend))) {
        bool busy = false, cancelled = atomic_load(&j->cancelled);
        emodel_t *m = cancelled ? NULL : model_for(e, j, &busy);
        if (m) {
            nd_jobq_push(&m->wait, j);
            m->last_used_ms = cm_now_ms();
        } else if (busy) {
            nd_jobq_push(&keep, j);
        } else {
            if (cancelled)
                nd_job_fail(j, ND_STATUS_CLIENT_GONE, "cancelled", "the client went away");
            nd_job_unref(j);
        }
    }
    e->pend = keep;
}

static void unload_idle(nd_engine_t *e)
{
    if (e->o.idle_timeout_s <= 0)
        return;
    uint64_t now = cm_now_ms();
    for (int i = e->nm - 1; i >= 0; i--)
        if (in_flight(e->m[i]) == 0 && now - e->m[i]->last_used_ms >= (uint64_t)e->o.idle_timeout_s * 1000)
            unload(e, i);
}

static void publish(nd_engine_t *e)
{
    nd_engine_stats_t s = { 0 };
    s.queued = e->pend.n;
    s.loaded = e->nm;
    for (int i = 0; i < e->nm; i++) {
        s.active += e->m[i]->active;
        for (int k = 0; k < e->o.parallel; k++)
            s.held += e->m[i]->slots[k].job && atomic_load(&e->m[i]->slots[k].job->held);
        s.queued += e->m[i]->wait.n;
        s.memory_bytes += e->m[i]->bytes;
        snprintf(s.loaded_ids[i], sizeof(s.loaded_ids[i]), "%s", e->m[i]->id);
        s.loaded_active[i] = e->m[i]->active;
        s.loaded_waiting[i] = e->m[i]->wait.n;
        s.loaded_kv_total[i] = e->m[i]->n_ctx_seq * e->o.parallel;
        for (int k = 0; k < e->o.parallel; k++)
            if (e->m[i]->slots[k].job)
                s.loaded_kv_used[i] += e->m[i]->slots[k].n_past;
    }
    s.slots = e->o.parallel * (e->nm > 0 ? e->nm : 1);
    s.prompt_tokens = e->prompt_tokens;
    s.gen_tokens = e->gen_tokens;
    s.decode_us = e->decode_us;
    s.n_decode = e->n_decode;
    s.n_busy_slots = e->n_busy_slots;
    pthread_mutex_lock(&e->mu);
    e->st = s;
    pthread_mutex_unlock(&e->mu);
}

static void *engine_main(void *arg)
{
    nd_engine_t *e = arg;
    bool worked = false;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        /* sleep when the last turn did nothing: no sequence could step (none,
         * or all held) and nothing arrived; a submit, a cancel or a release
         * wakes it, the timeout runs the idle checks */
        if (!e->in.head && !e->stop && !e->kick && !worked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
        }
        if (e->stop) { /* nd_engine_free fails what is left */
            pthread_mutex_unlock(&e->mu);
            break;
        }
        e->kick = false;
        nd_jobq_t in = e->in;
        memset(&e->in, 0, sizeof(e->in));
        pthread_mutex_unlock(&e->mu);
        place_jobs(e, &in);
        worked = false;
        for (int i = 0; i < e->nm; i++) {
            if (drop_cancelled(e->m[i], e->o.parallel) > 0)
                worked = true; /* freed room: pending jobs may place next turn */
            admit_waiting(e, e->m[i]);
            if (step(e, e->m[i]) > 0)
                worked = true;
        }
        unload_idle(e);
        publish(e);
    }
    return NULL;
}

/* ---- public ---- */

int nd_engine_new(const nd_engine_opts_t *o, nd_engine_t **out, char *err, size_t errlen)
{
    nd_engine_t *e = cm_xcalloc(1, sizeof(*e));
    e->o = *o;
    if (e->o.parallel < 1)
        e->o.parallel = 1;
    if (e->o.threads <= 0)
        e->o.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (e->o.batch_size < e->o.parallel)
        e->o.batch_size = e->o.parallel;
    llama_log_set(llama_log, NULL);
    ggml_backend_load_all_from_path(o->lib_dir);
    llama_backend_init();
    if (ggml_backend_dev_count() == 0) {
        snprintf(err, errlen, "no ggml backend found in %s (set LLM_NODE_LLAMA_LIB_DIR)", o->lib_dir);
        free(e);
        return -1;
    }
    e->batch = llama_batch_init(e->o.batch_size, 0, 1);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->st.slots = e->o.parallel;
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        snprintf(err, errlen, "cannot start the engine thread");
        nd_engine_free(e);
        return -1;
    }
    e->started = true;
    *out = e;
    return 0;
}

void nd_engine_free(nd_engine_t *e)
{
    if (!e)
        return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    static const char bye[] = "the node is shutting down";
    nd_jobq_fail_all(&e->in, 503, "shutting_down", bye);
    nd_jobq_fail_all(&e->pend, 503, "shutting_down", bye);
    while (e->nm > 0) {
        emodel_t *m = e->m[e->nm - 1];
        nd_jobq_fail_all(&m->wait, 503, "shutting_down", bye);
        for (int s = 0; s < e->o.parallel; s++) {
            if (m->slots[s].job) {
                nd_job_fail(m->slots[s].job, 503, "shutting_down", bye);
                release(m, s);
            }
        }
        unload(e, e->nm - 1);
    }
    llama_batch_free(e->batch);
    llama_backend_free();
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

void nd_engine_submit(nd_engine_t *e, nd_job_t *j)
{
    nd_job_ref(j);
    j->t_submit_us = cm_now_us();
    pthread_mutex_lock(&e->mu);
    nd_jobq_push(&e->in, j);
    e->st.queued++; /* visible at once; the next publish recounts */
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static void kick(nd_engine_t *e)
{
    pthread_mutex_lock(&e->mu);
    e->kick = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void nd_engine_cancel(nd_engine_t *e, nd_job_t *j)
{
    atomic_store(&j->cancelled, true);
    kick(e);
}

void nd_engine_hold(nd_engine_t *e, nd_job_t *j, bool hold)
{
    atomic_store(&j->held, hold);
    if (!hold)
        kick(e);
}

void nd_engine_stats(nd_engine_t *e, nd_engine_stats_t *s)
{
    pthread_mutex_lock(&e->mu);
    *s = e->st;
    pthread_mutex_unlock(&e->mu);
}
