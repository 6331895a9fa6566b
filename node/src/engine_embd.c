/* engine_embd: the engine's embeddings half. A second context per model with
 * mean pooling; inputs are decoded in groups of up to `parallel` sequences
 * and EMBD_CTX tokens, and each pooled vector is L2-normalised. */
#include "engine_int.h"

#include "util.h"

#include <math.h>
#include <stdlib.h>

/* Tokens of one embeddings batch, and so of one input at most. */
#define EMBD_CTX 2048

static struct llama_context *new_ectx(struct llama_model *model, int parallel, int threads)
{
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = EMBD_CTX;
    cp.n_batch = cp.n_ubatch = EMBD_CTX;
    cp.n_seq_max = (uint32_t)parallel;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
    cp.kv_unified = true;
    cp.no_perf = true;
    return llama_init_from_model(model, cp);
}

/* Decodes inputs [from, to) as one batch, one sequence each, and stores their
 * normalised pooled embeddings. */
static int embed_group(struct llama_model *model, struct llama_context *ectx, llama_token **toks,
                       const int *ntok, int from, int to, float *out, uint64_t *decode_us)
{
    int total = 0;
    for (int i = from; i < to; i++)
        total += ntok[i];
    struct llama_batch b = llama_batch_init(total, 0, 1);
    for (int i = from; i < to; i++) {
        for (int k = 0; k < ntok[i]; k++) {
            int t = b.n_tokens++;
            b.token[t] = toks[i][k];
            b.pos[t] = k;
            b.n_seq_id[t] = 1;
            b.seq_id[t][0] = i - from;
            b.logits[t] = 1;
        }
    }
    uint64_t t0 = cm_now_us();
    int rc = llama_decode(ectx, b);
    *decode_us += cm_now_us() - t0;
    int n_embd = llama_model_n_embd(model);
    for (int i = from; rc == 0 && i < to; i++) {
        const float *v = llama_get_embeddings_seq(ectx, i - from);
        if (!v) {
            rc = -1;
            break;
        }
        double norm = 0;
        for (int k = 0; k < n_embd; k++)
            norm += (double)v[k] * v[k];
        norm = sqrt(norm);
        for (int k = 0; k < n_embd; k++)
            out[(size_t)i * (size_t)n_embd + (size_t)k] = norm > 0 ? (float)(v[k] / norm) : 0.0f;
    }
    llama_memory_clear(llama_get_memory(ectx), true);
    llama_batch_free(b);
    return rc;
}

void nd_engine_embed(struct llama_model *model, struct llama_context **ectx, int parallel,
                     int threads, nd_job_t *j, uint64_t *decode_us, uint64_t *prompt_tokens)
{
    int n = j->ninputs, total = 0, rc = 0;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    llama_token **toks = cm_xcalloc((size_t)n, sizeof(*toks));
    int *ntok = cm_xcalloc((size_t)n, sizeof(int));
    float *out = NULL;
    if (!*ectx)
        *ectx = new_ectx(model, parallel, threads);
    if (!*ectx) {
        nd_job_fail(j, 500, "embeddings_unavailable", "cannot create an embeddings context");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        toks[i] = nd_engine_tokenize(vocab, j->inputs[i], false, &ntok[i]);
        if (!toks[i] || ntok[i] <= 0 || ntok[i] > EMBD_CTX) {
            nd_job_fail(j, 400, "context_length_exceeded",
                        "input %d has %d tokens; embeddings take 1 to %d", i, ntok[i], EMBD_CTX);
            goto out;
        }
        total += ntok[i];
    }
    int n_embd = llama_model_n_embd(model);
    out = cm_xmalloc((size_t)n * (size_t)n_embd * sizeof(float));
    for (int from = 0; from < n && rc == 0;) {
        int to = from, sum = 0;
        while (to < n && to - from < parallel && sum + ntok[to] <= EMBD_CTX)
            sum += ntok[to++];
        rc = embed_group(model, *ectx, toks, ntok, from, to, out, decode_us);
        from = to;
    }
    if (rc != 0) {
        nd_job_fail(j, 500, "decode_failed", "llama_decode failed for embeddings (%d)", rc);
        goto out;
    }
    *prompt_tokens += (uint64_t)total;
    nd_job_embeddings(j, out, n_embd, total);
    out = NULL;
out:
    for (int i = 0; i < n; i++)
        free(toks[i]);
    free(toks);
    free(ntok);
    free(out);
}
