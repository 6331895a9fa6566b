/* sse: Server-Sent Events (text/event-stream) writer helpers and an
 * incremental parser.
 *
 * The parser follows the WHATWG event-stream rules: lines end in CRLF, LF or
 * CR (a CRLF split between two chunks counts once), ":" starts a comment, a
 * blank line dispatches the event, "data" lines are joined with "\n", one
 * leading space after the colon is dropped, a leading BOM is ignored, and an
 * unterminated event at the end of the stream is discarded. It accepts the
 * stream in chunks cut anywhere. Every buffer is bounded: a line longer than
 * max_line or an event's data longer than max_data is an error
 * (CM_SSE_ETOOLONG), after which the parser refuses further input. */
#ifndef CM_SSE_H
#define CM_SSE_H

#include <stddef.h>

#define CM_SSE_CONTENT_TYPE "text/event-stream"
/* OpenAI's end-of-stream sentinel, a whole event. */
#define CM_SSE_DONE "data: [DONE]\n\n"

enum { CM_SSE_OK = 0, CM_SSE_ETOOLONG = -1, CM_SSE_ESTOPPED = -2 };

/* One event as dispatched. Strings are NUL-terminated and valid during the
 * callback only. event is "message" when the stream named none; id is the
 * last id seen ("" when none). */
typedef struct {
    const char *event;
    const char *data;
    size_t data_len;
    const char *id;
} cm_sse_event_t;

/* Return 0 to go on; non-zero stops the parser (feed returns CM_SSE_ESTOPPED). */
typedef int (*cm_sse_event_fn)(const cm_sse_event_t *ev, void *ud);

typedef struct cm_sse_parser cm_sse_parser_t;

/* max_line / max_data: 0 picks 64 KiB / 1 MiB. */
cm_sse_parser_t *cm_sse_parser_new(size_t max_line, size_t max_data, cm_sse_event_fn fn, void *ud);
void cm_sse_parser_free(cm_sse_parser_t *p);
/* Feeds len bytes; events complete within them are dispatched before it
 * returns. CM_SSE_OK, CM_SSE_ETOOLONG or CM_SSE_ESTOPPED (sticky). */
int cm_sse_parser_feed(cm_sse_parser_t *p, const char *buf, size_t len);
/* Bytes of an unfinished line or event held now (0 right after a dispatch). */
size_t cm_sse_parser_pending(const cm_sse_parser_t *p);

/* Formats one event: "event: <event>\n" (when event is not NULL) and one
 * "data: " line per line of data, then a blank line. Returns a new string
 * (caller frees) and its length in *out_len. */
char *cm_sse_format(const char *event, const char *data, size_t len, size_t *out_len);

#endif
