/* sampling: the pure text side of a generation, no llama.cpp here.
 *
 * - nd_sampling_parse: an OpenAI request body -> sampling parameters, limits
 *   and stop strings, with OpenAI-style validation errors;
 * - nd_utf8_t: turns a stream of token bytes into valid UTF-8 (an incomplete
 *   character is held until it completes; invalid bytes become U+FFFD);
 * - nd_stop_t: holds back text that might be the start of a stop string, so a
 *   stop string is never emitted, also when split across tokens. */
#ifndef ND_SAMPLING_H
#define ND_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define ND_MAX_STOP 4
#define ND_MAX_STOP_LEN 256
#define ND_MAX_BIAS 1024

typedef struct {
    int32_t token;
    float bias;
} nd_bias_t;

typedef struct {
    float temperature;       /* 0: greedy; default 1 */
    float top_p;             /* default 1 (off) */
    int top_k;               /* 0: off */
    float min_p;             /* 0: off */
    bool has_seed;
    uint32_t seed;
    float presence_penalty;  /* -2..2, 0: off */
    float frequency_penalty; /* -2..2, 0: off */
    float repeat_penalty;    /* > 0, 1: off */
    int repeat_last_n;       /* tokens the penalties look back at */
    int max_tokens;          /* -1: until the context is full */
    int nstop;
    char *stop[ND_MAX_STOP];
    int nbias;
    nd_bias_t *bias;
    bool stream;
    bool include_usage;      /* stream_options.include_usage */
} nd_sampling_t;

/* Fills sp from the request (defaults for what is absent). On a bad value
 * returns -1 with the offending parameter name in param and a message in
 * err. sp owns its strings: release with nd_sampling_free (also after -1). */
int nd_sampling_parse(const struct cJSON *body, nd_sampling_t *sp, char *param, size_t paramlen,
                      char *err, size_t errlen);
void nd_sampling_free(nd_sampling_t *sp);

/* ---- UTF-8 assembly ---- */
typedef struct {
    unsigned char held[4];
    int nheld;
} nd_utf8_t;

/* Appends the valid UTF-8 made of in[0..len) (plus held bytes) to *out
 * (grown with cm_xrealloc, *outlen updated, NUL-terminated). A trailing
 * incomplete character is held for the next call. */
void nd_utf8_feed(nd_utf8_t *u, const char *in, size_t len, char **out, size_t *outlen);
/* End of stream: held bytes become U+FFFD. */
void nd_utf8_flush(nd_utf8_t *u, char **out, size_t *outlen);

/* ---- stop strings ---- */
typedef struct {
    const char *const *stop; /* borrowed */
    int nstop;
    char *pending;           /* text held back */
    size_t npending;
} nd_stop_t;

void nd_stop_init(nd_stop_t *s, const char *const *stop, int nstop);
void nd_stop_free(nd_stop_t *s);
/* Feeds text. Returns true when a stop string matched: *emit then holds the
 * text before it (the stop string and anything after are dropped). Otherwise
 * *emit holds the text that can no longer be part of a stop string. *emit is
 * a new string owned by the caller (may be empty), *emitlen its length. */
bool nd_stop_feed(nd_stop_t *s, const char *text, size_t len, char **emit, size_t *emitlen);
/* End of generation without a match: everything held. Caller frees. */
char *nd_stop_flush(nd_stop_t *s, size_t *len);

/* ---- the text of one generation: token bytes -> UTF-8 -> stop strings ---- */
typedef struct {
    nd_utf8_t u8;
    nd_stop_t stop;
} nd_text_t;

void nd_text_init(nd_text_t *t, const char *const *stop, int nstop);
void nd_text_free(nd_text_t *t);
/* Feeds the bytes of one token. *emit (caller frees, may be empty) is the
 * text that can be sent now. True when a stop string matched: the generation
 * ends and nothing from the stop string on is ever sent. */
bool nd_text_feed(nd_text_t *t, const char *bytes, size_t len, char **emit, size_t *emitlen);
/* End of generation: what was held back (a partial character becomes
 * U+FFFD, a possible stop string start is text after all). True when that
 * completed a stop string (then *emit is the text before it). */
bool nd_text_flush(nd_text_t *t, char **emit, size_t *emitlen);

#endif
