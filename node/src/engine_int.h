/* engine_int: what the files of the engine module share: engine.c (models,
 * sequences, the batch loop), engine_tok.c (chat template, tokenizer,
 * pieces) and engine_embd.c (embeddings). Private to the engine module (the
 * only code that includes llama.h); the rest of the node sees engine.h
 * alone. Engine thread only. */
#ifndef ND_ENGINE_INT_H
#define ND_ENGINE_INT_H

#include "job.h"

#include <llama.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes for a token's text on the caller's stack: all but odd pieces fit
 * (nd_engine_piece spills the others). */
#define ND_ENGINE_PIECE_BUF 256

/* ---- engine_tok.c ---- */

/* Chat job j's messages through the model's chat template (ChatML when it
 * has none or llama.cpp cannot apply it): a new string, or NULL when they
 * cannot be formatted. */
char *nd_engine_chat_prompt(const struct llama_model *model, const nd_job_t *j);
/* Tokens of text (a new array the caller frees), or NULL with *n < 0.
 * special: parse control tokens written in the text (prompts, not inputs). */
llama_token *nd_engine_tokenize(const struct llama_vocab *v, const char *text, bool special, int *n);
/* The text of token tok (control tokens render as nothing): in buf (cap
 * bytes) when it fits, else in a new buffer left in *spill for the caller to
 * free (*spill is NULL otherwise). Returns the text, its length in *len. */
const char *nd_engine_piece(const struct llama_vocab *v, llama_token tok, char *buf, size_t cap,
                            char **spill, size_t *len);

/* ---- engine_embd.c ---- */

/* Runs embedding job j to its end (embeddings or a failure) on the model's
 * embeddings context *ectx, made on first use (the caller frees it with
 * llama_free). Adds decode time and input tokens to *decode_us and
 * *prompt_tokens. Does not drop the caller's reference to j. */
void nd_engine_embed(struct llama_model *model, struct llama_context **ectx, int parallel,
                     int threads, nd_job_t *j, uint64_t *decode_us, uint64_t *prompt_tokens);

#endif
