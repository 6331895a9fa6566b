/* recorder_int: what recorder.c (the observer, the queue, the writer) and
 * recorder_sse.c (reading an answer: streams reassembled, token counts)
 * share. Private to them and to tests/unit/router/core/test_recorder.c.
 *
 * Everything here runs on the writer thread over bytes the loop only copied:
 * the first head_len bytes of the answer and, when the answer outgrew the
 * head's bound, the last tail_len bytes of it (gap: bytes between them were
 * not kept). */
#ifndef RT_RECORDER_INT_H
#define RT_RECORDER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the answer kept beyond the head's bound: enough for the last
 * events of a stream (finish reason, usage) or the end of a JSON body. */
#define RT_REC_TAIL 8192
/* Choices of one answer that are reassembled (n > this: the rest ignored,
 * the body flagged truncated). */
#define RT_REC_MAX_CHOICES 16
/* Tool calls per choice that are reassembled. */
#define RT_REC_MAX_TOOL_CALLS 16

typedef struct {
    const char *head;
    size_t head_len;
    const char *tail;          /* NULL/0 when the head holds the whole answer */
    size_t tail_len;
    bool gap;                  /* bytes between head and tail were not kept */
    bool sse;                  /* an event stream */
    bool chat;                 /* the endpoint is chat (streams without an object field) */
    bool want_body;            /* build the body (false: tokens only) */
    size_t max_body;           /* the body is cut to this (flag set) */
    const char *usage_trailer; /* the node's X-LLM-Usage value, NULL: none */
} rt_rec_input_t;

typedef struct {
    char *body;                /* owned (free); NULL when not built or no answer bytes */
    size_t body_len;
    bool truncated;
    /* -1: unknown. Streams: the usage event when the client asked for it,
     * else the trailer. */
    int64_t prompt_tokens, completion_tokens, total_tokens;
} rt_rec_answer_t;

/* Reads an answer: the body in the non-streamed shape (a stream's content
 * concatenated per choice with its role, finish reason and usage; a body
 * as it came), cut at max_body on a UTF-8 boundary, and its token counts. */
void rt_rec_answer(const rt_rec_input_t *in, rt_rec_answer_t *out);

/* {"prompt_tokens":N,"completion_tokens":M,"total_tokens":K} (a usage
 * object's text, e.g. the trailer) into the three counts; a missing total
 * is prompt + completion. false (counts untouched) when it is not one. */
bool rt_rec_parse_usage(const char *s, size_t len, int64_t *prompt, int64_t *completion, int64_t *total);

/* on the loop: what the observer's begin reads from the request, as values
 * (so tests can start a request without an HTTP server). */
typedef struct {
    const char *request_id;
    const char *peer;
    const char *kind;  /* "api_key", "user" (static), NULL: no principal */
    const char *id, *name;
} rt_rec_client_t;
struct rt_recorder;
/* The observer's begin: a cookie for its chunk, retry and end calls. */
void *rt_rec_begin(struct rt_recorder *r, const rt_rec_client_t *c, const char *path, const char *model,
                   const char *body, size_t len);

#endif
