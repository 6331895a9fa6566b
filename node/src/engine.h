/* engine: the only module that includes llama.h (engine.c; engine_tok.c for
 * prompts and token text, engine_embd.c for embeddings; they share the
 * private engine_int.h).
 *
 * One engine thread owns every llama.cpp object. Each loaded model has one
 * generation context with `parallel` sequences; each step of the batch loop
 * admits waiting jobs into free sequences, puts the prompt chunks and the
 * next token of every active sequence of a model into one batch, calls
 * llama_decode once, samples each sequence with its own sampler chain and
 * hands text back through the job; a held job's sequence is skipped until
 * released. Embedding jobs run on a second context
 * (mean pooling) of the same model. Models load on first use and unload by
 * the limits (count, memory, idle time; least recently used first, never one
 * with requests in flight). */
#ifndef ND_ENGINE_H
#define ND_ENGINE_H

#include "job.h"

#include <stdint.h>

typedef struct {
    const char *lib_dir;    /* ggml backends (ggml_backend_load_all_from_path) */
    int parallel;           /* sequences per model */
    int threads;            /* <= 0: online CPUs */
    int ctx_size;           /* tokens per sequence; 0: model's, at most 4096 */
    int batch_size;         /* tokens per decode */
    int gpu_layers;         /* -1: all */
    int max_loaded;         /* 0: no cap */
    uint64_t max_memory;    /* bytes of loaded models; 0: no cap */
    int idle_timeout_s;     /* 0: never unload for idleness */
} nd_engine_opts_t;

typedef struct nd_engine nd_engine_t;

/* Models loaded at once, at most: the size of the engine's table, and so of
 * the ids its stats carry (a higher LLM_NODE_MAX_LOADED_MODELS is capped to
 * it). */
#define ND_ENGINE_MAX_LOADED 16
/* Bytes of a loaded model's id in the stats, NUL included; longer ids are
 * cut (the stats are a fixed-size copy, published under a lock). */
#define ND_ENGINE_ID_MAX 128

typedef struct {
    int active;             /* sequences generating or being prefilled */
    int held;               /* of which held for a client that reads nothing */
    int queued;             /* jobs waiting for a sequence or a model */
    int slots;              /* parallel x loaded models (at least parallel) */
    int loaded;             /* models loaded */
    uint64_t memory_bytes;  /* of the loaded models */
    uint64_t prompt_tokens; /* totals since start */
    uint64_t gen_tokens;
    uint64_t decode_us;     /* time spent in llama_decode */
    uint64_t n_decode;      /* llama_decode calls for generation */
    uint64_t n_busy_slots;  /* sequences in those calls, summed (/ n_decode: batching) */
    char loaded_ids[ND_ENGINE_MAX_LOADED][ND_ENGINE_ID_MAX]; /* the first `loaded` */
    /* per loaded model (same order): sequences busy, jobs waiting for a
     * sequence, KV cells in use (tokens held by busy sequences) and in all */
    int loaded_active[ND_ENGINE_MAX_LOADED], loaded_waiting[ND_ENGINE_MAX_LOADED];
    int loaded_kv_used[ND_ENGINE_MAX_LOADED], loaded_kv_total[ND_ENGINE_MAX_LOADED];
} nd_engine_stats_t;

/* Initialises the backends and starts the thread. 0, or -1 with err. */
int nd_engine_new(const nd_engine_opts_t *o, nd_engine_t **out, char *err, size_t errlen);
/* Stops the thread (pending jobs fail with 503) and frees everything. */
void nd_engine_free(nd_engine_t *e);
/* Queues a job (the engine takes its own reference). */
void nd_engine_submit(nd_engine_t *e, nd_job_t *j);
/* Marks the job cancelled; its sequence is freed within one step. */
void nd_engine_cancel(nd_engine_t *e, nd_job_t *j);
/* Holds (hold) or releases a job's sequence. A held sequence keeps its slot,
 * its KV cells and its next token but gets no decode steps, so a streaming
 * client that stops reading stops its generation instead of buffering output
 * without bound; the other sequences go on. */
void nd_engine_hold(nd_engine_t *e, nd_job_t *j, bool hold);
void nd_engine_stats(nd_engine_t *e, nd_engine_stats_t *s);

#endif
