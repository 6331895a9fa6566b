/* engine_tok: the engine's text side, shared by generation (engine.c) and
 * embeddings (engine_embd.c) through engine_int.h: chat messages through the
 * model's template into one prompt, text into tokens, tokens back into text.
 * Part of the engine module (llama.h); engine thread only. */
#include "engine_int.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

/* llama_chat_apply_template wants its buffer up front: room for every
 * message twice (a template adds its markers around each one) plus these. */
#define TEMPLATE_SLACK 256
#define TEMPLATE_PER_MESSAGE 64

char *nd_engine_chat_prompt(const struct llama_model *model, const nd_job_t *j)
{
    struct llama_chat_message *msg = cm_xcalloc((size_t)j->nmsg, sizeof(*msg));
    int size = TEMPLATE_SLACK;
    for (int i = 0; i < j->nmsg; i++) {
        msg[i] = (struct llama_chat_message){ j->roles[i], j->contents[i] };
        size += (int)(strlen(j->roles[i]) + strlen(j->contents[i])) * 2 + TEMPLATE_PER_MESSAGE;
    }
    /* the model's template; ChatML when it has none or llama.cpp cannot apply it */
    const char *tmpl = llama_model_chat_template(model, NULL);
    char *buf = cm_xmalloc((size_t)size);
    int n = tmpl ? llama_chat_apply_template(tmpl, msg, (size_t)j->nmsg, true, buf, size) : -1;
    if (n < 0)
        n = llama_chat_apply_template("chatml", msg, (size_t)j->nmsg, true, buf, size);
    free(msg);
    if (n < 0 || n >= size) { /* the size above bounds every built-in template */
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

llama_token *nd_engine_tokenize(const struct llama_vocab *v, const char *text, bool special, int *n)
{
    int len = (int)strlen(text);
    /* a first guess: tokens rarely outnumber bytes; the BOS and such fit in
     * the slack, and llama_tokenize says how many it needs when they do not */
    int cap = len + 8;
    llama_token *t = cm_xmalloc((size_t)cap * sizeof(llama_token));
    *n = llama_tokenize(v, text, len, t, cap, true, special);
    if (*n < 0 && *n != INT32_MIN) {
        cap = -*n;
        t = cm_xrealloc(t, (size_t)cap * sizeof(llama_token));
        *n = llama_tokenize(v, text, len, t, cap, true, special);
    }
    if (*n < 0) {
        free(t);
        return NULL;
    }
    return t;
}

const char *nd_engine_piece(const struct llama_vocab *v, llama_token tok, char *buf, size_t cap,
                            char **spill, size_t *len)
{
    *spill = NULL;
    const char *text = buf;
    int n = llama_token_to_piece(v, tok, buf, (int32_t)cap, 0, false);
    if (n < 0) { /* -n bytes needed: a rare long piece */
        int need = -n;
        *spill = cm_xmalloc((size_t)need);
        n = llama_token_to_piece(v, tok, *spill, need, 0, false);
        text = *spill;
    }
    *len = n > 0 ? (size_t)n : 0;
    return text;
}
