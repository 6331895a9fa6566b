/* cloud_stream: the stream object every provider's events go through, and
 * the writer of OpenAI's chunks.
 *
 * A provider's bytes go through common/sse.h's parser (bounded: one event
 * at most RT_CLOUD_MAX_EVENT bytes), each event to the provider's handler
 * (cloud_anthropic.c, cloud_google.c), which calls the emit_* functions
 * below. The chunks of one feed are gathered in one buffer and added to the
 * caller's evbuffer once, so a feed costs one evbuffer_add whatever it held.
 *
 * Chunks are written by hand rather than through cJSON: the head that every
 * chunk repeats (id, object, created, model) is rendered once at the start,
 * and a chunk is that head, the delta and a fixed tail. This is the hot path
 * of a translated stream; see bench/router/cloud_translate_bench.c. */
#include "cloud/cloud_int.h"

#include "json.h"
#include "util.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAW_MAX (64 * 1024) /* a non-SSE answer (an error body) kept to read it */

/* ---- cbuf ---- */
void cb_put(cbuf_t *b, const char *s, size_t n)
{
    cm_xgrow(&b->p, &b->cap, b->len + n + 1, 256);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void cb_lit(cbuf_t *b, const char *s) { cb_put(b, s, strlen(s)); }

void cb_int(cbuf_t *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    cb_put(b, tmp, (size_t)n);
}

void cb_jstr(cbuf_t *b, const char *s, size_t n)
{
    /* worst case: every byte as \u00XX */
    cm_xgrow(&b->p, &b->cap, b->len + n * 6 + 3, 256);
    char *o = b->p + b->len;
    *o++ = '"';
    size_t run = 0; /* bytes copied as they are, in one memcpy */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        memcpy(o, s + run, i - run);
        o += i - run;
        run = i + 1;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u', *o++ = '0', *o++ = '0';
            *o++ = "0123456789abcdef"[c >> 4];
            *o++ = "0123456789abcdef"[c & 15];
        }
    }
    memcpy(o, s + run, n - run);
    o += n - run;
    *o++ = '"';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

void cb_free(cbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- chunk writer ---- */
static void chunk_open(rt_cloud_stream_t *s)
{
    cb_put(&s->buf, "data: ", 6);
    cb_put(&s->buf, s->head, s->head_len);
}

/* closes the choices array and the chunk: OpenAI sends "usage":null on
 * every chunk but the last when include_usage is set */
static void chunk_close(rt_cloud_stream_t *s)
{
    if (s->include_usage)
        cb_lit(&s->buf, "],\"usage\":null}\n\n");
    else
        cb_put(&s->buf, "]}\n\n", 4);
}

static void delta_open(rt_cloud_stream_t *s)
{
    chunk_open(s);
    cb_lit(&s->buf, "{\"index\":0,\"delta\":{");
}

/* the finish reason (JSON null while the answer goes on) and the choice's
 * closing brace */
static void finish_close(rt_cloud_stream_t *s, const char *finish)
{
    if (finish) {
        cb_jstr(&s->buf, finish, strlen(finish));
        cb_put(&s->buf, "}", 1);
    } else {
        cb_lit(&s->buf, "null}");
    }
    chunk_close(s);
}

static void delta_close(rt_cloud_stream_t *s, const char *finish)
{
    cb_lit(&s->buf, "},\"logprobs\":null,\"finish_reason\":");
    finish_close(s, finish);
}

/* a text_completion choice */
static void text_choice(rt_cloud_stream_t *s, const char *text, size_t n, const char *finish)
{
    chunk_open(s);
    cb_lit(&s->buf, "{\"text\":");
    cb_jstr(&s->buf, text, n);
    cb_lit(&s->buf, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    finish_close(s, finish);
}

void emit_role(rt_cloud_stream_t *s)
{
    if (s->role_sent)
        return;
    s->role_sent = true;
    if (s->completions)
        return; /* text_completion chunks have no role */
    delta_open(s);
    cb_lit(&s->buf, "\"role\":\"assistant\",\"content\":\"\"");
    delta_close(s, NULL);
}

void emit_text(rt_cloud_stream_t *s, const char *text, size_t n)
{
    emit_role(s);
    if (n == 0)
        return;
    if (s->completions) {
        text_choice(s, text, n, NULL);
        return;
    }
    delta_open(s);
    cb_lit(&s->buf, "\"content\":");
    cb_jstr(&s->buf, text, n);
    delta_close(s, NULL);
}

void emit_text_raw(rt_cloud_stream_t *s, const char *raw, size_t n)
{
    emit_role(s);
    if (n == 0)
        return;
    if (s->completions) {
        chunk_open(s);
        cb_lit(&s->buf, "{\"text\":\"");
        cb_put(&s->buf, raw, n);
        cb_lit(&s->buf, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}");
        chunk_close(s);
        return;
    }
    delta_open(s);
    cb_lit(&s->buf, "\"content\":\"");
    cb_put(&s->buf, raw, n);
    cb_put(&s->buf, "\"", 1);
    delta_close(s, NULL);
}

void emit_tool_start(rt_cloud_stream_t *s, int index, const char *id, const char *name, const char *args, size_t n)
{
    emit_role(s);
    if (s->completions)
        return; /* no tools were offered on /v1/completions */
    delta_open(s);
    cb_lit(&s->buf, "\"tool_calls\":[{\"index\":");
    cb_int(&s->buf, index);
    cb_lit(&s->buf, ",\"id\":");
    cb_jstr(&s->buf, id, strlen(id));
    cb_lit(&s->buf, ",\"type\":\"function\",\"function\":{\"name\":");
    cb_jstr(&s->buf, name, strlen(name));
    cb_lit(&s->buf, ",\"arguments\":");
    cb_jstr(&s->buf, args, n);
    cb_lit(&s->buf, "}}]");
    delta_close(s, NULL);
}

void emit_tool_args(rt_cloud_stream_t *s, int index, const char *args, size_t n)
{
    emit_role(s);
    if (s->completions || n == 0)
        return;
    delta_open(s);
    cb_lit(&s->buf, "\"tool_calls\":[{\"index\":");
    cb_int(&s->buf, index);
    cb_lit(&s->buf, ",\"function\":{\"arguments\":");
    cb_jstr(&s->buf, args, n);
    cb_lit(&s->buf, "}}]");
    delta_close(s, NULL);
}

static int64_t count_or_zero(int64_t v) { return v < 0 ? 0 : v; }

void emit_end(rt_cloud_stream_t *s)
{
    emit_role(s);
    const char *finish = s->finish ? s->finish : "stop";
    if (s->completions) {
        text_choice(s, "", 0, finish);
    } else {
        delta_open(s);
        delta_close(s, finish);
    }
    if (s->include_usage) {
        int64_t p = count_or_zero(s->prompt), c = count_or_zero(s->completion);
        int64_t t = s->total >= 0 ? s->total : p + c;
        chunk_open(s);
        cb_lit(&s->buf, "],\"usage\":{\"prompt_tokens\":");
        cb_int(&s->buf, p);
        cb_lit(&s->buf, ",\"completion_tokens\":");
        cb_int(&s->buf, c);
        cb_lit(&s->buf, ",\"total_tokens\":");
        cb_int(&s->buf, t);
        cb_lit(&s->buf, "}}\n\n");
    }
    cb_lit(&s->buf, CM_SSE_DONE);
    s->state = RT_CLOUD_STREAM_DONE;
}

void emit_error(rt_cloud_stream_t *s, const char *type, const char *code, const char *fmt, ...)
{
    char msg[sizeof(s->err)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* the message may quote a provider's text cut anywhere: valid UTF-8 */
    cm_utf8_sanitize(s->err, sizeof(s->err), msg, strlen(msg));
    cb_lit(&s->buf, "data: {\"error\":{\"message\":");
    cb_jstr(&s->buf, s->err, strlen(s->err));
    cb_lit(&s->buf, ",\"type\":");
    cb_jstr(&s->buf, type, strlen(type));
    cb_lit(&s->buf, ",\"param\":null,\"code\":");
    cb_jstr(&s->buf, code, strlen(code));
    cb_lit(&s->buf, "}}\n\n" CM_SSE_DONE);
    s->state = RT_CLOUD_STREAM_ERROR;
}

/* ---- OpenAI: relayed as is; we only watch for [DONE] and usage ---- */
static int openai_event(rt_cloud_stream_t *s, const cm_sse_event_t *ev)
{
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        s->state = RT_CLOUD_STREAM_DONE;
        return 1;
    }
    if (!memmem(ev->data, ev->data_len, "\"usage\"", 7) && !memmem(ev->data, ev->data_len, "\"error\"", 7))
        return 0; /* the common case costs one scan, no parse */
    cJSON *j = cm_json_parse(ev->data, ev->data_len);
    const cJSON *u = j ? cJSON_GetObjectItemCaseSensitive(j, "usage") : NULL;
    if (cJSON_IsObject(u)) {
        get_count(u, "prompt_tokens", &s->prompt);
        get_count(u, "completion_tokens", &s->completion);
        get_count(u, "total_tokens", &s->total);
    }
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    if (cJSON_IsObject(e)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        cm_utf8_sanitize(s->err, sizeof(s->err), cJSON_IsString(m) ? m->valuestring : "provider error",
                         cJSON_IsString(m) ? strlen(m->valuestring) : 14);
        /* the provider's own event went out as is; [DONE] closes the stream
         * as every error event of ours does */
        cb_lit(&s->buf, CM_SSE_DONE);
        s->state = RT_CLOUD_STREAM_ERROR;
    }
    cJSON_Delete(j);
    return s->state != RT_CLOUD_STREAM_MORE;
}

static int on_event(const cm_sse_event_t *ev, void *ud)
{
    rt_cloud_stream_t *s = ud;
    if (s->state != RT_CLOUD_STREAM_MORE)
        return 1;
    s->any_event = true;
    switch (s->provider) {
    case RT_CLOUD_ANTHROPIC: return anthropic_event(s, ev);
    case RT_CLOUD_GOOGLE: return google_event(s, ev);
    default: return openai_event(s, ev);
    }
}

rt_cloud_stream_t *rt_cloud_stream_new(const rt_cloud_call_t *call, const char *model, const char *id,
                                       int64_t created)
{
    rt_cloud_stream_t *s = cm_xcalloc(1, sizeof(*s));
    s->provider = call->provider;
    s->completions = call->endpoint == RT_CLOUD_COMPLETIONS;
    s->include_usage = call->include_usage;
    s->prompt = s->completion = s->total = -1;
    s->sse = cm_sse_parser_new(RT_CLOUD_MAX_EVENT, RT_CLOUD_MAX_EVENT, on_event, s);
    cbuf_t h = { 0 };
    cb_lit(&h, "{\"id\":");
    cb_jstr(&h, id, strlen(id));
    cb_lit(&h, s->completions ? ",\"object\":\"text_completion\",\"created\":" : ",\"object\":\"chat.completion.chunk\",\"created\":");
    cb_int(&h, created);
    cb_lit(&h, ",\"model\":");
    cb_jstr(&h, model, strlen(model));
    cb_lit(&h, ",\"choices\":[");
    s->head = h.p;
    s->head_len = h.len;
    return s;
}

void rt_cloud_stream_free(rt_cloud_stream_t *s)
{
    if (!s)
        return;
    cm_sse_parser_free(s->sse);
    cb_free(&s->buf);
    cb_free(&s->raw);
    free(s->head);
    free(s->block_tool);
    free(s->block_args);
    free(s);
}

static void flush(rt_cloud_stream_t *s, struct evbuffer *out)
{
    if (s->buf.len) {
        evbuffer_add(out, s->buf.p, s->buf.len);
        s->started = true;
        s->buf.len = 0;
    }
}

static int finish_feed(rt_cloud_stream_t *s, struct evbuffer *out, char *err, size_t errlen)
{
    flush(s, out);
    s->out = NULL;
    if (s->state == RT_CLOUD_STREAM_ERROR && err && errlen)
        snprintf(err, errlen, "%s", s->err);
    return s->state;
}

/* A body that starts with '{' or '[' is not an event stream (SSE lines
 * start with a field name): Gemini sends errors that way after a 200. It is
 * kept (bounded) and read when the body ends. */
static void sniff(rt_cloud_stream_t *s, const char *data, size_t len)
{
    for (size_t i = 0; i < len && !s->any_event && !s->not_sse; i++) {
        char c = data[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '{' || c == '[')
            s->not_sse = true;
        s->any_event = true; /* decided */
    }
}

/* Gemini reports an error in the middle of a stream as plain (multi-line)
 * JSON without "data:", which the SSE parser skips as lines of no field:
 * the last TAIL_MAX bytes of the body are kept so that the end can find
 * it. */
#define TAIL_MAX (16 * 1024)
static void keep_tail(rt_cloud_stream_t *s, const char *data, size_t len)
{
    if (len >= TAIL_MAX) {
        s->raw.len = 0;
        cb_put(&s->raw, data + len - TAIL_MAX, TAIL_MAX);
        return;
    }
    if (s->raw.len + len > TAIL_MAX) { /* keep the newer half: amortised, one move per TAIL_MAX/2 bytes */
        size_t keep = TAIL_MAX / 2 > len ? TAIL_MAX / 2 - len : 0;
        if (keep > s->raw.len)
            keep = s->raw.len;
        memmove(s->raw.p, s->raw.p + s->raw.len - keep, keep);
        s->raw.len = keep;
    }
    cb_put(&s->raw, data, len);
}

/* The tail's last line-leading '{' through its end, when that parses as a
 * provider error object: 1 (the error event written), else 0. */
static int tail_error(rt_cloud_stream_t *s)
{
    const char *p = s->raw.p;
    size_t n = s->raw.len;
    for (size_t i = n; p && i-- > 0;) {
        if (p[i] != '{' || (i > 0 && p[i - 1] != '\n'))
            continue;
        cJSON *j = cm_json_parse(p + i, n - i);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsObject(e)) {
            rt_cloud_error_t pe;
            int64_t code = 0;
            if (get_count(e, "code", &code) != 1 || code < 400 || code > 599)
                code = 500;
            rt_cloud_error(s->provider, (int)code, p + i, n - i, &pe);
            emit_error(s, pe.type, pe.code[0] ? pe.code : "upstream_error", "%s", pe.message);
        }
        cJSON_Delete(j);
        return s->state == RT_CLOUD_STREAM_ERROR;
    }
    return 0;
}

int rt_cloud_stream_feed(rt_cloud_stream_t *s, const char *data, size_t len, struct evbuffer *out, char *err,
                         size_t errlen)
{
    if (s->state != RT_CLOUD_STREAM_MORE)
        return s->state;
    s->out = out;
    if (s->provider != RT_CLOUD_OPENAI)
        sniff(s, data, len);
    if (s->not_sse) {
        if (s->raw.len + len > RAW_MAX)
            emit_error(s, "server_error", "upstream_malformed", "The provider answered with bytes that are not an event stream");
        else
            cb_put(&s->raw, data, len);
        return finish_feed(s, out, err, errlen);
    }
    if (s->provider == RT_CLOUD_OPENAI) {
        evbuffer_add(out, data, len);
        s->started = s->started || len > 0;
    } else if (s->provider == RT_CLOUD_GOOGLE) {
        keep_tail(s, data, len);
    }
    int rc = cm_sse_parser_feed(s->sse, data, len);
    if (rc == CM_SSE_ETOOLONG && s->state == RT_CLOUD_STREAM_MORE)
        emit_error(s, "server_error", "upstream_malformed", "The provider sent an event larger than %d bytes",
                   RT_CLOUD_MAX_EVENT);
    return finish_feed(s, out, err, errlen);
}

void rt_cloud_stream_cut(rt_cloud_stream_t *s, const char *why, struct evbuffer *out)
{
    if (s->state != RT_CLOUD_STREAM_MORE)
        return;
    emit_error(s, "server_error", "upstream_error", "%s", why && *why ? why : "The provider's stream was cut short");
    finish_feed(s, out, NULL, 0);
}

/* The non-SSE body: a provider error, or bytes we cannot read. */
static void raw_error(rt_cloud_stream_t *s)
{
    cJSON *j = cm_json_parse(s->raw.p ? s->raw.p : "", s->raw.len);
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    if (cJSON_IsArray(j)) /* streamGenerateContent without alt=sse sends an array */
        e = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(j, 0), "error");
    if (cJSON_IsObject(e)) {
        rt_cloud_error_t pe;
        char *txt = cJSON_PrintUnformatted(e);
        cbuf_t wrap = { 0 };
        cb_lit(&wrap, "{\"error\":");
        cb_lit(&wrap, txt);
        cb_lit(&wrap, "}");
        int64_t code = 0;
        if (get_count(e, "code", &code) != 1)
            code = 500;
        rt_cloud_error(s->provider, code >= 400 && code < 600 ? (int)code : 500, wrap.p, wrap.len, &pe);
        emit_error(s, pe.type, pe.code[0] ? pe.code : "upstream_error", "%s", pe.message);
        free(txt);
        cb_free(&wrap);
    } else {
        emit_error(s, "server_error", "upstream_malformed", "The provider answered with bytes that are not an event stream");
    }
    cJSON_Delete(j);
}

int rt_cloud_stream_end(rt_cloud_stream_t *s, struct evbuffer *out, char *err, size_t errlen)
{
    if (s->state != RT_CLOUD_STREAM_MORE)
        return s->state;
    s->out = out;
    if (s->not_sse) {
        raw_error(s);
        return finish_feed(s, out, err, errlen);
    }
    /* a last event without its blank line: terminate it (a truncated JSON
     * line then fails to parse, as it should) */
    if (cm_sse_parser_pending(s->sse) && s->provider != RT_CLOUD_OPENAI)
        cm_sse_parser_feed(s->sse, "\n\n", 2);
    if (s->state == RT_CLOUD_STREAM_MORE) {
        if (s->provider == RT_CLOUD_GOOGLE && s->finish)
            emit_end(s);
        else if (s->provider == RT_CLOUD_GOOGLE) {
            if (!tail_error(s))
                emit_error(s, "server_error", "upstream_error", "The provider's stream ended before a finish reason");
        }
        else if (s->provider == RT_CLOUD_ANTHROPIC)
            emit_error(s, "server_error", "upstream_error", "The provider's stream ended before message_stop");
        else
            emit_error(s, "server_error", "upstream_error", "The provider's stream ended before [DONE]");
    }
    return finish_feed(s, out, err, errlen);
}

bool rt_cloud_stream_started(const rt_cloud_stream_t *s) { return s->started; }

rt_cloud_usage_t rt_cloud_stream_usage(const rt_cloud_stream_t *s)
{
    return (rt_cloud_usage_t){ s->prompt, s->completion };
}
