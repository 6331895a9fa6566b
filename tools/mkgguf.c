/* mkgguf: writes a llama-architecture GGUF with random weights, for tests,
 * demos and benchmarks. Deterministic: the same flags and --seed give the
 * same bytes.
 *
 *   mkgguf --preset tiny|demo|bench [--type f32|f16|q8_0|q4_0] [--seed N]
 *          [--n-embd N] [--n-layer N] [--n-ff N] [--n-head N] [--n-head-kv N]
 *          [--n-vocab N] [--n-ctx N] -o FILE
 *
 * Vocabulary (SentencePiece style, tokenizer.ggml.model = llama): <unk>, <s>,
 * </s>, the byte tokens <0x00>..<0xFF> (type 6), the ChatML control tokens
 * <|im_start|> <|im_end|>, every printable ASCII character, then words with
 * every prefix of each word present ("\u2581" marks a leading space), common
 * English words first, then made-up syllable words until the vocabulary is
 * full. Every token string is unique (llama.cpp aborts on a duplicate). */
#include "util.h"

#include <ggml.h>
#include <gguf.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int n_embd, n_layer, n_ff, n_head, n_head_kv, n_vocab, n_ctx;
} preset_t;

static const preset_t presets[] = {
    { "tiny", 64, 2, 128, 4, 2, 512, 2048 },
    { "demo", 256, 4, 704, 8, 4, 4096, 4096 },
    { "bench", 1024, 24, 2816, 16, 4, 32000, 4096 },
};

typedef struct {
    preset_t p;
    enum ggml_type type;
    const char *type_name;
    uint64_t seed;
    const char *out;
} opts_t;

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s) /* in [-1, 1) */
{
    return (float)((double)(mix(s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* ---- vocabulary ---- */

typedef struct {
    char **tok;
    float *score;
    int32_t *type;
    int n, cap;
    char **set; /* open addressing, 2 * cap slots */
    size_t nset;
} vocab_t;

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Adds tok unless present or full. Returns true when the vocabulary has room. */
static bool vocab_add(vocab_t *v, const char *tok, int type)
{
    if (v->n >= v->cap)
        return false;
    size_t i = hash_str(tok) % v->nset;
    while (v->set[i]) {
        if (strcmp(v->set[i], tok) == 0)
            return true;
        i = (i + 1) % v->nset;
    }
    char *s = cm_xstrdup(tok);
    v->set[i] = s;
    v->tok[v->n] = s;
    v->type[v->n] = type;
    v->score[v->n] = -(float)v->n;
    v->n++;
    return v->n < v->cap;
}

/* Adds every prefix of word (whole UTF-8 characters), then the word. */
static bool vocab_add_word(vocab_t *v, const char *word)
{
    size_t len = strlen(word);
    char buf[64];
    for (size_t i = 1; i <= len && i < sizeof(buf); i++) {
        if (i < len && (word[i] & 0xC0) == 0x80)
            continue; /* inside a multi-byte character */
        memcpy(buf, word, i);
        buf[i] = '\0';
        if (!vocab_add(v, buf, TT_NORMAL))
            return false;
    }
    return true;
}

static const char *const words[] = {
    "hello", "world", "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on",
    "are", "as", "with", "his", "they", "at", "be", "this", "have", "from", "or", "one",
    "had", "by", "word", "but", "not", "what", "all", "were", "we", "when", "your", "can",
    "said", "there", "use", "an", "each", "which", "she", "do", "how", "their", "if",
    "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
    "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more",
    "write", "go", "see", "number", "no", "way", "could", "people", "my", "than", "first",
    "water", "been", "call", "who", "oil", "its", "now", "find", "long", "down", "day",
    "did", "get", "come", "made", "may", "part", "model", "router",
    "node", "token", "answer", "question", "assistant", "user", "system", "help",
    "Hello", "The", "What", "How", "I", "A", "You", "It", "This", "Yes", "No",
};

static const char *const syllables[] = {
    "ka", "to", "ri", "mu", "se", "na", "lo", "pe", "di", "ga", "ve", "zo", "bi", "fu",
    "ch", "th", "st", "an", "er", "in", "on", "re", "ing", "ed", "al", "es", "or", "ly",
};

static void vocab_build(vocab_t *v, int n_vocab, uint64_t seed)
{
    v->cap = n_vocab;
    v->tok = cm_xcalloc((size_t)n_vocab, sizeof(char *));
    v->score = cm_xcalloc((size_t)n_vocab, sizeof(float));
    v->type = cm_xcalloc((size_t)n_vocab, sizeof(int32_t));
    v->nset = (size_t)n_vocab * 2 + 1;
    v->set = cm_xcalloc(v->nset, sizeof(char *));
    vocab_add(v, "<unk>", TT_UNKNOWN);
    vocab_add(v, "<s>", TT_CONTROL);
    vocab_add(v, "</s>", TT_CONTROL);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof(s), "<0x%02X>", b);
        vocab_add(v, s, TT_BYTE);
    }
    vocab_add(v, "<|im_start|>", TT_CONTROL);
    vocab_add(v, "<|im_end|>", TT_CONTROL);
    vocab_add(v, "\xE2\x96\x81", TT_NORMAL); /* U+2581, SentencePiece's space */
    for (int c = 0x21; c < 0x7F; c++) {
        char s[2] = { (char)c, 0 };
        vocab_add(v, s, TT_NORMAL);
    }
    char buf[64];
    for (size_t i = 0; i < CM_ARRAY_LEN(words) && v->n < v->cap; i++) {
        snprintf(buf, sizeof(buf), "\xE2\x96\x81%s", words[i]);
        if (!vocab_add_word(v, buf) || !vocab_add_word(v, words[i]))
            break;
    }
    uint64_t s = seed ^ 0xA5A5A5A5ull;
    while (v->n < v->cap) {
        int nsyl = 2 + (int)(mix(&s) % 3);
        size_t off = (mix(&s) & 1) ? (size_t)snprintf(buf, sizeof(buf), "\xE2\x96\x81") : 0;
        for (int k = 0; k < nsyl; k++)
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s",
                                    syllables[mix(&s) % CM_ARRAY_LEN(syllables)]);
        vocab_add_word(v, buf);
    }
}

static void vocab_free(vocab_t *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->tok[i]);
    free(v->tok);
    free(v->score);
    free(v->type);
    free(v->set);
}

/* ---- tensors ---- */

typedef struct {
    struct ggml_context *ctx;
    struct gguf_context *gguf;
    void **bufs;
    size_t nbufs, capbufs;
    uint64_t seed;
    int index;
    enum ggml_type type;
} writer_t;

/* Adds a tensor of ne0 x ne1 (ne1 = 1: a vector, kept F32) with uniform
 * random values in [-scale, scale], or all `fill` when scale is 0. */
static void add_tensor(writer_t *w, const char *name, int64_t ne0, int64_t ne1, float scale, float fill)
{
    enum ggml_type type = ne1 == 1 ? GGML_TYPE_F32 : w->type;
    struct ggml_tensor *t = ne1 == 1 ? ggml_new_tensor_1d(w->ctx, type, ne0)
                                     : ggml_new_tensor_2d(w->ctx, type, ne0, ne1);
    ggml_set_name(t, name);
    size_t n = (size_t)(ne0 * ne1);
    float *src = cm_xmalloc(n * sizeof(float));
    uint64_t s = w->seed * 1000003ull + (uint64_t)w->index++;
    for (size_t i = 0; i < n; i++)
        src[i] = scale > 0 ? uniform(&s) * scale : fill;
    void *data;
    if (type == GGML_TYPE_F32) {
        data = src;
    } else {
        data = cm_xmalloc(ggml_row_size(type, ne0) * (size_t)ne1);
        if (type == GGML_TYPE_F16)
            ggml_fp32_to_fp16_row(src, data, (int64_t)n);
        else
            ggml_quantize_chunk(type, src, data, 0, ne1, ne0, NULL);
        free(src);
    }
    if (w->nbufs == w->capbufs) {
        w->capbufs = w->capbufs ? w->capbufs * 2 : 64;
        w->bufs = cm_xrealloc(w->bufs, w->capbufs * sizeof(void *));
    }
    w->bufs[w->nbufs++] = data;
    gguf_add_tensor(w->gguf, t);
    gguf_set_tensor_data(w->gguf, name, data);
}

static void add_weights(writer_t *w, const preset_t *p)
{
    int head_dim = p->n_embd / p->n_head;
    int64_t n_kv = (int64_t)head_dim * p->n_head_kv;
    /* Xavier-like scales keep activations near unit size; the output scale
     * gives logits a spread of a few units so sampling is neither flat nor
     * one-hot. */
    float s_embd = 1.0f / sqrtf((float)p->n_embd), s_ff = 1.0f / sqrtf((float)p->n_ff);
    char name[96];
    add_tensor(w, "token_embd.weight", p->n_embd, p->n_vocab, 1.0f, 0);
    add_tensor(w, "output_norm.weight", p->n_embd, 1, 0, 1.0f);
    add_tensor(w, "output.weight", p->n_embd, p->n_vocab, 5.0f * s_embd, 0);
    for (int l = 0; l < p->n_layer; l++) {
#define BLK(suffix) (snprintf(name, sizeof(name), "blk.%d." suffix ".weight", l), name)
        add_tensor(w, BLK("attn_norm"), p->n_embd, 1, 0, 1.0f);
        add_tensor(w, BLK("attn_q"), p->n_embd, p->n_embd, 2.0f * s_embd, 0);
        add_tensor(w, BLK("attn_k"), p->n_embd, n_kv, 2.0f * s_embd, 0);
        add_tensor(w, BLK("attn_v"), p->n_embd, n_kv, s_embd, 0);
        add_tensor(w, BLK("attn_output"), p->n_embd, p->n_embd, s_embd, 0);
        add_tensor(w, BLK("ffn_norm"), p->n_embd, 1, 0, 1.0f);
        add_tensor(w, BLK("ffn_gate"), p->n_embd, p->n_ff, 2.0f * s_embd, 0);
        add_tensor(w, BLK("ffn_up"), p->n_embd, p->n_ff, s_embd, 0);
        add_tensor(w, BLK("ffn_down"), p->n_ff, p->n_embd, s_ff, 0);
#undef BLK
    }
}

static const char chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static void add_metadata(struct gguf_context *g, const opts_t *o, const vocab_t *v)
{
    const preset_t *p = &o->p;
    char name[64];
    snprintf(name, sizeof(name), "mkgguf-%s-%s", p->name, o->type_name);
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.name", name);
    uint32_t ftype = o->type == GGML_TYPE_F32 ? 0 : o->type == GGML_TYPE_F16 ? 1
                   : o->type == GGML_TYPE_Q4_0 ? 2 : 7;
    gguf_set_val_u32(g, "general.file_type", ftype);
    gguf_set_val_u32(g, "general.quantization_version", 2);
    gguf_set_val_u32(g, "llama.context_length", (uint32_t)p->n_ctx);
    gguf_set_val_u32(g, "llama.embedding_length", (uint32_t)p->n_embd);
    gguf_set_val_u32(g, "llama.block_count", (uint32_t)p->n_layer);
    gguf_set_val_u32(g, "llama.feed_forward_length", (uint32_t)p->n_ff);
    gguf_set_val_u32(g, "llama.attention.head_count", (uint32_t)p->n_head);
    gguf_set_val_u32(g, "llama.attention.head_count_kv", (uint32_t)p->n_head_kv);
    gguf_set_val_u32(g, "llama.rope.dimension_count", (uint32_t)(p->n_embd / p->n_head));
    gguf_set_val_f32(g, "llama.rope.freq_base", 10000.0f);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_u32(g, "llama.vocab_size", (uint32_t)p->n_vocab);
    gguf_set_val_str(g, "tokenizer.ggml.model", "llama");
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", (const char **)v->tok, (size_t)v->n);
    gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v->score, (size_t)v->n);
    gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->type, (size_t)v->n);
    gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id", 0);
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", 2);
    gguf_set_val_u32(g, "tokenizer.ggml.eot_token_id", 3 + 256 + 1); /* <|im_end|> */
    gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", true);
    gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
    gguf_set_val_bool(g, "tokenizer.ggml.add_space_prefix", false);
    gguf_set_val_str(g, "tokenizer.chat_template", chatml_template);
}

static int write_model(const opts_t *o, char *err, size_t errlen)
{
    const preset_t *p = &o->p;
    vocab_t v = { 0 };
    vocab_build(&v, p->n_vocab, o->seed);
    size_t ntensors = 3 + 9 * (size_t)p->n_layer;
    struct ggml_init_params ip = { ggml_tensor_overhead() * (ntensors + 8), NULL, true };
    writer_t w = { .ctx = ggml_init(ip), .gguf = gguf_init_empty(), .seed = o->seed, .type = o->type };
    add_metadata(w.gguf, o, &v);
    add_weights(&w, p);
    int rc = 0;
    if (!gguf_write_to_file(w.gguf, o->out, false)) {
        snprintf(err, errlen, "cannot write %s: %s", o->out, strerror(errno));
        rc = -1;
    }
    for (size_t i = 0; i < w.nbufs; i++)
        free(w.bufs[i]);
    free(w.bufs);
    gguf_free(w.gguf);
    ggml_free(w.ctx);
    vocab_free(&v);
    return rc;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: mkgguf --preset tiny|demo|bench [--type f32|f16|q8_0|q4_0] [--seed N]\n"
               "              [--n-embd N] [--n-layer N] [--n-ff N] [--n-head N] [--n-head-kv N]\n"
               "              [--n-vocab N] [--n-ctx N] -o FILE\n");
}

static int parse_type(const char *s, opts_t *o)
{
    static const struct { const char *name; enum ggml_type type; } types[] = {
        { "f32", GGML_TYPE_F32 }, { "f16", GGML_TYPE_F16 },
        { "q8_0", GGML_TYPE_Q8_0 }, { "q4_0", GGML_TYPE_Q4_0 },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(types); i++) {
        if (strcmp(types[i].name, s) == 0) {
            o->type = types[i].type;
            o->type_name = types[i].name;
            return 0;
        }
    }
    return -1;
}

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 1 << 20)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    const char *preset = "tiny";
    int over[7] = { 0 };
    static const char *const names[7] = { "--n-embd", "--n-layer", "--n-ff", "--n-head",
                                          "--n-head-kv", "--n-vocab", "--n-ctx" };
    parse_type("q8_0", o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!val)
            return -1;
        i++;
        if (strcmp(a, "--preset") == 0) {
            preset = val;
        } else if (strcmp(a, "--type") == 0) {
            if (parse_type(val, o) != 0)
                return -1;
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = strtoull(val, NULL, 10);
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            o->out = val;
        } else {
            size_t k = 0;
            while (k < 7 && strcmp(a, names[k]) != 0)
                k++;
            if (k == 7 || parse_int(val, &over[k]) != 0)
                return -1;
        }
    }
    size_t pi = 0;
    while (pi < CM_ARRAY_LEN(presets) && strcmp(presets[pi].name, preset) != 0)
        pi++;
    if (pi == CM_ARRAY_LEN(presets) || !o->out)
        return -1;
    o->p = presets[pi];
    int *dims[7] = { &o->p.n_embd, &o->p.n_layer, &o->p.n_ff, &o->p.n_head,
                     &o->p.n_head_kv, &o->p.n_vocab, &o->p.n_ctx };
    for (int k = 0; k < 7; k++)
        if (over[k])
            *dims[k] = over[k];
    return 0;
}

static int check_shape(const preset_t *p, char *err, size_t errlen)
{
    if (p->n_embd % p->n_head || p->n_head % p->n_head_kv || (p->n_embd / p->n_head) % 2)
        snprintf(err, errlen, "n_embd must split into an even head size; n_head a multiple of n_head_kv");
    else if (p->n_embd % 32 || p->n_ff % 32)
        snprintf(err, errlen, "n_embd and n_ff must be multiples of 32 (quantization blocks)");
    else if (p->n_vocab < 400)
        snprintf(err, errlen, "n_vocab must be at least 400 (specials, bytes, ASCII)");
    else
        return 0;
    return -1;
}

int main(int argc, char **argv)
{
    cm_util_init();
    opts_t o = { .seed = 42 };
    char err[256];
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (check_shape(&o.p, err, sizeof(err)) != 0 || write_model(&o, err, sizeof(err)) != 0) {
        fprintf(stderr, "mkgguf: %s\n", err);
        return 1;
    }
    return 0;
}
