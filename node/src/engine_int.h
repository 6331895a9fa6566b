/* engine_int: what engine.c shares with its embeddings half engine_embd.c.
 * Private to the engine module (the only code that includes llama.h); the
 * rest of the node sees engine.h alone. Engine thread only. */
#ifndef ND_ENGINE_INT_H
#define ND_ENGINE_INT_H

#include "job.h"

#include <llama.h>

#include <stdbool.h>
#include <stdint.h>

/* Tokens of text (a new array the caller frees), or NULL with *n < 0. */
llama_token *nd_engine_tokenize(const struct llama_vocab *v, const char *text, bool special, int *n);

/* Runs embedding job j to its end (embeddings or a failure) on the model's
 * embeddings context *ectx, made on first use (the caller frees it with
 * llama_free). Adds decode time and input tokens to *decode_us and
 * *prompt_tokens. Does not drop the caller's reference to j. */
void nd_engine_embed(struct llama_model *model, struct llama_context **ectx, int parallel,
                     int threads, nd_job_t *j, uint64_t *decode_us, uint64_t *prompt_tokens);

#endif
