/* cloud_int: what the translation files share (not for the transport).
 *
 * cloud.c          provider table, rt_cloud_build dispatch, the OpenAI
 *                  passthrough (only the top-level "model" value replaced),
 *                  errors, usage accessors
 * cloud_msg.c      reading the client's OpenAI request (content parts,
 *                  image URLs, stop lists, tool calls) and refusals
 * cloud_anthropic.c  Messages API request, answer and stream events
 * cloud_google.c   Gemini generateContent request, answer, stream events
 * cloud_embed.c    Gemini embeddings (embedContent / batchEmbedContents)
 * cloud_stream.c   the stream object (SSE parser, state) and the OpenAI
 *                  chunk writer every provider's events go through */
#ifndef RT_CLOUD_INT_H
#define RT_CLOUD_INT_H

#include "cloud/cloud.h"

#include "sse.h"

#include <cjson/cJSON.h>
#include <stdarg.h>

/* ---- bounded byte buffer for the chunks we write ---- */
typedef struct {
    char *p;
    size_t len, cap;
} cbuf_t;
void cb_put(cbuf_t *b, const char *s, size_t n);
void cb_lit(cbuf_t *b, const char *s); /* strlen(s) bytes */
void cb_int(cbuf_t *b, int64_t v);
/* s[0..n) as a JSON string, quotes included (s is valid UTF-8: it came from
 * cm_json_parse or from our own literals) */
void cb_jstr(cbuf_t *b, const char *s, size_t n);
void cb_free(cbuf_t *b);

/* ---- refusals (rt_cloud_build) ---- */
int refuse(rt_cloud_refusal_t *why, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- reading the client's request (cloud_msg.c) ---- */
/* The message's text when content is a string, or the text parts of an
 * array joined (non-text parts refused): a new string, or NULL with *why
 * filled. content NULL or JSON null: "". */
char *msg_text(const cJSON *content, const char *what, rt_cloud_refusal_t *why);
/* An image_url part's URL: data:<mime>;base64,<data> split into mime and
 * data (pointers into url, lengths), or http(s):// (*is_data false).
 * -1 when neither. */
typedef struct {
    bool is_data;
    const char *mime, *data, *url;
    size_t mime_len, data_len;
} image_ref_t;
int image_url(const cJSON *part, image_ref_t *img, rt_cloud_refusal_t *why);
/* "stop": a string or an array of strings, as a new array of the
 * non-blank ones (NULL: none); -1 on a wrong type. */
int stop_list(const cJSON *req, cJSON **out, rt_cloud_refusal_t *why);
/* max_tokens or max_completion_tokens: 1 set (*v), 0 absent, -1 refused */
int max_tokens(const cJSON *req, long long *v, rt_cloud_refusal_t *why);
/* Copies a number field (temperature...) when present: -1 when not a
 * number. */
int copy_num(const cJSON *req, const char *key, cJSON *dst, const char *dkey, rt_cloud_refusal_t *why);
/* One assistant tool call: id, name, arguments parsed (a new object). */
typedef struct {
    const char *id, *name;
    cJSON *args;
} tool_call_t;
int tool_call(const cJSON *call, tool_call_t *tc, rt_cloud_refusal_t *why);
/* /v1/completions: a copy of req with its prompt as one user message (the
 * chat builders take it from there). NULL with *why when prompt is not one
 * string. */
cJSON *completion_as_chat(const cJSON *req, rt_cloud_refusal_t *why);

/* ---- builders per provider ---- */
int anthropic_build(const cJSON *req, const char *name, const rt_cloud_build_opts_t *o, rt_cloud_call_t *out,
                    rt_cloud_refusal_t *why);
int google_build(const cJSON *req, const char *name, rt_cloud_call_t *out, rt_cloud_refusal_t *why);
int google_embed_build(const cJSON *req, const char *name, rt_cloud_call_t *out, rt_cloud_refusal_t *why);

/* ---- answers (non-stream) ---- */
/* What every provider's answer is turned into before it is printed. */
typedef struct {
    const rt_cloud_call_t *call;
    const char *model, *id;
    int64_t created;
} answer_ctx_t;
cJSON *answer_head(const answer_ctx_t *a);          /* id, object, created, model */
cJSON *answer_choice(const answer_ctx_t *a, int index, const char *text, cJSON *tool_calls, const char *finish);
void answer_usage(cJSON *root, int64_t prompt, int64_t completion, int64_t total);
char *anthropic_answer(const answer_ctx_t *a, const cJSON *body, char *err, size_t errlen);
char *google_answer(const answer_ctx_t *a, const cJSON *body, char *err, size_t errlen);
char *google_embed_answer(const answer_ctx_t *a, const cJSON *body, char *err, size_t errlen);

/* A token count: an integral number in [0, 2^53); 1 read, 0 absent, -1
 * malformed (a string, a fraction, negative, huge). */
int get_count(const cJSON *obj, const char *key, int64_t *v);

/* ---- streams ---- */
#define RT_CLOUD_MAX_EVENT (1024 * 1024) /* one provider event, bytes */
#define RT_CLOUD_MAX_BLOCKS 1024          /* content blocks / tool calls in one answer */

struct rt_cloud_stream {
    rt_cloud_provider_t provider;
    bool completions; /* /v1/completions: text_completion chunks */
    bool include_usage;
    int state; /* RT_CLOUD_STREAM_* */
    cm_sse_parser_t *sse;
    struct evbuffer *out; /* during a feed */
    cbuf_t buf;           /* the chunks of one feed, added to out at once */
    char *head;           /* {"id":...,"object":...,"created":...,"model":...,"choices":[ */
    size_t head_len;
    bool started, role_sent;
    int64_t prompt, completion, total; /* -1: not reported */
    const char *finish;                /* a literal: the finish reason seen */
    char err[256];
    /* Anthropic: the tool index of each content block (-1 text), whether a
     * tool block got any argument bytes */
    int *block_tool;
    bool *block_args;
    int nblocks, ntools;
    bool saw_stop;
    /* Google: an answer that is not SSE (a JSON error body) gathered here;
     * for an SSE answer, the last bytes of the body (keep_tail) */
    cbuf_t raw;
    bool not_sse, any_event;
};

/* chunk writer: each appends one whole event to s->buf */
void emit_role(rt_cloud_stream_t *s);
void emit_text(rt_cloud_stream_t *s, const char *text, size_t n);
/* emit_text for a text still in its JSON form: raw[0..n) is the content of
 * a JSON string as the provider sent it (between the quotes, escapes
 * checked, bytes checked by cm_json_bytes_ok), written as it is. n == 0
 * exactly when the decoded text is empty (no escape decodes to nothing). */
void emit_text_raw(rt_cloud_stream_t *s, const char *raw, size_t n);
void emit_tool_start(rt_cloud_stream_t *s, int index, const char *id, const char *name, const char *args, size_t n);
void emit_tool_args(rt_cloud_stream_t *s, int index, const char *args, size_t n);
/* final chunk, usage chunk (include_usage), [DONE]; state DONE */
void emit_end(rt_cloud_stream_t *s);
/* the error event and [DONE]; state ERROR; message kept in s->err */
void emit_error(rt_cloud_stream_t *s, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* provider event handlers: 0 go on, non-zero stop (state set) */
int anthropic_event(rt_cloud_stream_t *s, const cm_sse_event_t *ev);
int google_event(rt_cloud_stream_t *s, const cm_sse_event_t *ev);

/* The fast path for the common stream events (cloud_fast.c): jsmn, no
 * tree, no allocation. FAST_DONE: the event was handled exactly as the
 * provider's cJSON handler would have (the same emit_* calls and state),
 * and FAST_DONE (0) is that handler's answer, go on. FAST_NO: not a shape
 * the fast path knows for sure (an error, a rare field, anything odd): the
 * caller runs its cJSON handler on the same event, which nothing has
 * touched. */
enum { FAST_DONE = 0, FAST_NO = -1 };
int anthropic_fast(rt_cloud_stream_t *s, const cm_sse_event_t *ev);
int google_fast(rt_cloud_stream_t *s, const cm_sse_event_t *ev);
/* Tests only (the differential test): false sends every event to the
 * cJSON handlers. On by default; not for use while streams run on other
 * threads. */
void rt_cloud_fast_enable(bool on);

/* finish reasons */
const char *anthropic_finish(const char *stop_reason);
const char *google_finish(const char *reason);

/* the status's OpenAI-style error type */
const char *error_type(int status);

#endif
