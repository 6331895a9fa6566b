/* cloud: OpenAI <-> provider translation for the cloud prefixes (openai:,
 * anthropic: with its alias ahtnorpic:, google:). Pure: no I/O, no event
 * loop, no globals; every function may run on any thread. The transport
 * (core/cloud_proxy.c) calls it: build the provider's request from the
 * client's OpenAI body, then turn the provider's answer, its errors and its
 * event stream back into OpenAI's shapes.
 *
 * The wire formats are ../shared/reference/wire-formats.md sections 1-3
 * (Anthropic Messages, Gemini v1beta, OpenAI chat streaming). Every byte
 * from a provider is hostile: a malformed answer is an error returned to the
 * caller (502 to the client), never a crash; every buffer is bounded. */
#ifndef RT_CLOUD_H
#define RT_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct evbuffer;

typedef enum { RT_CLOUD_OPENAI = 0, RT_CLOUD_ANTHROPIC, RT_CLOUD_GOOGLE, RT_CLOUD_PROVIDERS } rt_cloud_provider_t;
typedef enum { RT_CLOUD_CHAT = 0, RT_CLOUD_COMPLETIONS, RT_CLOUD_EMBEDDINGS } rt_cloud_endpoint_t;

/* "openai", "anthropic", "google": the label in metrics, history and logs. */
const char *rt_cloud_provider_name(rt_cloud_provider_t p);
/* "anthropic:claude-3-5-haiku" -> RT_CLOUD_ANTHROPIC and "claude-3-5-haiku"
 * (a pointer into model). The alias "ahtnorpic:" is Anthropic. true when
 * model carries a known prefix and a non-empty name after it. */
bool rt_cloud_parse_model(const char *model, rt_cloud_provider_t *p, const char **name);

/* One provider call built from the client's request. */
typedef struct {
    rt_cloud_provider_t provider;
    rt_cloud_endpoint_t endpoint;
    /* appended to the provider's base URL (which ends without '/'):
     * "/v1/chat/completions", "/v1/messages",
     * "/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
     * "/models/text-embedding-004:batchEmbedContents" */
    char *path;
    char *body; /* the provider's JSON request */
    size_t len;
    bool stream;        /* the client asked for a stream ("stream": true) */
    bool include_usage; /* stream_options.include_usage */
    bool base64;        /* embeddings: encoding_format "base64" */
    int inputs;         /* embeddings: how many inputs were sent */
} rt_cloud_call_t;

/* The client's error, for rt_cloud_build's refusal. */
typedef struct {
    int status;        /* 400 */
    const char *code;  /* "invalid_request_error"-style code, a literal */
    const char *param; /* the offending field, a literal or NULL */
    char message[256];
} rt_cloud_refusal_t;

/* Builds the provider's request from req (the client's whole OpenAI body,
 * an object) for model name (without the prefix). OpenAI: the body as the
 * client sent it with only "model" replaced (raw is the client's bytes,
 * used to keep every other byte untouched). Anthropic and Google: the
 * translation. 0, or -1 with *why filled (a request the provider cannot
 * take: embeddings on Anthropic, a malformed message list, ...). */
int rt_cloud_build(rt_cloud_provider_t p, rt_cloud_endpoint_t ep, const struct cJSON *req, const char *raw,
                   size_t raw_len, const char *name, rt_cloud_call_t *out, rt_cloud_refusal_t *why);

/* What the caller decides for the translation (the router's options). */
typedef struct {
    /* Anthropic requires max_tokens: sent when the client gave neither
     * max_tokens nor max_completion_tokens (LLM_ROUTER_ANTHROPIC_MAX_TOKENS).
     * <= 0: RT_CLOUD_DEFAULT_MAX_TOKENS. */
    int anthropic_max_tokens;
} rt_cloud_build_opts_t;
#define RT_CLOUD_DEFAULT_MAX_TOKENS 4096
/* rt_cloud_build with options (o NULL: the defaults; rt_cloud_build is this
 * with NULL). */
int rt_cloud_build_opts(rt_cloud_provider_t p, rt_cloud_endpoint_t ep, const struct cJSON *req, const char *raw,
                        size_t raw_len, const char *name, const rt_cloud_build_opts_t *o, rt_cloud_call_t *out,
                        rt_cloud_refusal_t *why);
void rt_cloud_call_free(rt_cloud_call_t *c);

/* The provider's whole (non-stream) 2xx answer as OpenAI JSON (a new
 * string, *out_len its length): chat.completion / text_completion / an
 * embeddings list. model is what the client asked for (with its prefix),
 * id the completion id to use ("chatcmpl-<request id>"), created unix
 * seconds. NULL with err filled when the answer is malformed (-> 502). For
 * OpenAI the answer is relayed as is and this is not called. */
char *rt_cloud_answer(const rt_cloud_call_t *call, const char *body, size_t len, const char *model, const char *id,
                      int64_t created, size_t *out_len, char *err, size_t errlen);

/* Token counts read from an answer or a stream; -1: not reported. */
typedef struct {
    int64_t prompt_tokens, completion_tokens;
} rt_cloud_usage_t;

/* A provider's error answer (status >= 400, its body as sent) as OpenAI's
 * error fields: the provider's message kept (bounded, made valid UTF-8),
 * type from the status ("rate_limit_error", "invalid_request_error",
 * "authentication_error", "server_error", "overloaded_error"), code the
 * provider's own error type when it names one. */
typedef struct {
    char message[512];
    char type[48];
    char code[64];
} rt_cloud_error_t;
void rt_cloud_error(rt_cloud_provider_t p, int status, const char *body, size_t len, rt_cloud_error_t *out);

/* ---- streams ---- */
typedef struct rt_cloud_stream rt_cloud_stream_t;

enum { RT_CLOUD_STREAM_MORE = 0, RT_CLOUD_STREAM_DONE = 1, RT_CLOUD_STREAM_ERROR = -1 };

/* A translator for one streamed answer of call (Anthropic or Google; an
 * OpenAI stream is relayed as is). model, id, created as rt_cloud_answer. */
rt_cloud_stream_t *rt_cloud_stream_new(const rt_cloud_call_t *call, const char *model, const char *id,
                                       int64_t created);
/* Feeds the provider's event-stream bytes (cut anywhere) and appends the
 * OpenAI events they make to out: "data: {chat.completion.chunk}\n\n"
 * (the first with the assistant role, text and tool-call deltas, the last
 * with finish_reason; with include_usage one more chunk with empty choices
 * and usage), then "data: [DONE]\n\n" when the provider's stream ends.
 * RT_CLOUD_STREAM_MORE, RT_CLOUD_STREAM_DONE (the provider ended it;
 * [DONE] written; bytes after it ignored), or RT_CLOUD_STREAM_ERROR (the
 * provider sent an error event, or bytes that are not its stream: an OpenAI
 * error event {"error":{...}} and [DONE] written, err filled). Sticky once
 * DONE or ERROR. */
int rt_cloud_stream_feed(rt_cloud_stream_t *s, const char *data, size_t len, struct evbuffer *out, char *err,
                         size_t errlen);
/* The provider's stream ended (EOF, time limit, connection lost) before
 * DONE: appends the error event (message why) and [DONE]. No-op after DONE
 * or ERROR. */
void rt_cloud_stream_cut(rt_cloud_stream_t *s, const char *why, struct evbuffer *out);
/* The provider's body ended cleanly (the whole HTTP body arrived). Gemini
 * has no end event: its stream is over when the body is, so for Google this
 * is where the final chunk (finish_reason of the last event that had one),
 * the usage chunk and [DONE] are written: RT_CLOUD_STREAM_DONE. A last
 * event without its blank line is taken (as if the blank line came). No
 * finish reason seen (Google), or no message_stop (Anthropic): the stream
 * was cut short: the error event and [DONE] are written, err filled,
 * RT_CLOUD_STREAM_ERROR. After DONE or ERROR: returns that state, writes
 * nothing. Call it on every clean EOF, whatever the provider. */
int rt_cloud_stream_end(rt_cloud_stream_t *s, struct evbuffer *out, char *err, size_t errlen);
/* true once any event reached out (the client has seen bytes) */
bool rt_cloud_stream_started(const rt_cloud_stream_t *s);
rt_cloud_usage_t rt_cloud_stream_usage(const rt_cloud_stream_t *s);
void rt_cloud_stream_free(rt_cloud_stream_t *s);

/* Usage of a whole OpenAI-shaped answer (what rt_cloud_answer made, or an
 * OpenAI provider's own). */
rt_cloud_usage_t rt_cloud_answer_usage(const char *openai_json, size_t len);

#endif
