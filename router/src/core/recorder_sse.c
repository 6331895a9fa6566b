/* recorder_sse: an answer as the history keeps it (recorder_int.h). A stream
 * of chat.completion.chunk or text_completion events becomes the body the
 * same request would have had without "stream": content (and reasoning and
 * tool call arguments) concatenated per choice, the role, the finish reason,
 * the usage event when there was one, and the id, model and created time of
 * the chunks. Runs on the recorder's writer thread, never on a loop. */
#include "core/recorder_int.h"

#include "sse.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf_t;

typedef struct {
    char *id, *type, *name;
    sbuf_t args;
} tool_t;

typedef struct {
    char *role;
    sbuf_t content, reasoning;
    bool has_content, has_reasoning;
    char *finish;
    tool_t tools[RT_REC_MAX_TOOL_CALLS];
    int ntools;
} choice_t;

typedef struct {
    size_t budget;   /* content bytes left to keep (max_body in all) */
    bool appending;  /* false in a tail after a gap: its deltas miss their start */
    bool truncated;
    bool chat;
    char *id, *model, *fingerprint;
    double created;
    bool has_created;
    cJSON *usage;    /* the last usage object seen */
    cJSON *error;    /* an error event of the stream */
    choice_t ch[RT_REC_MAX_CHOICES];
    int nch;         /* highest index seen + 1 */
    int events;      /* JSON events read */
} asm_t;

static void take_str(char **dst, const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!*dst && cJSON_IsString(v))
        *dst = cm_xstrdup(v->valuestring);
}

/* Appends s to b within the answer's budget of content bytes; beyond it the
 * body is flagged truncated and the rest ignored (cut on a UTF-8 boundary). */
static void append(asm_t *a, sbuf_t *b, const char *s)
{
    if (!a->appending)
        return;
    size_t n = strlen(s);
    if (n > a->budget) {
        n = cm_utf8_complete_prefix(s, a->budget);
        a->truncated = true;
        a->budget = 0;
    } else {
        a->budget -= n;
    }
    if (!n)
        return;
    cm_xgrow(&b->buf, &b->cap, b->len + n + 1, 256);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void tool_delta(asm_t *a, choice_t *c, const cJSON *tc)
{
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
    int i = cJSON_IsNumber(idx) ? (int)idx->valuedouble : c->ntools > 0 ? c->ntools - 1 : 0;
    if (i < 0 || i >= RT_REC_MAX_TOOL_CALLS) {
        a->truncated = true;
        return;
    }
    if (i >= c->ntools)
        c->ntools = i + 1;
    tool_t *t = &c->tools[i];
    take_str(&t->id, tc, "id");
    take_str(&t->type, tc, "type");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    if (!cJSON_IsObject(fn))
        return;
    take_str(&t->name, fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if (cJSON_IsString(args))
        append(a, &t->args, args->valuestring);
}

static void choice_delta(asm_t *a, const cJSON *chj)
{
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(chj, "index");
    double d = cJSON_IsNumber(idx) ? idx->valuedouble : 0;
    if (!(d >= 0 && d < RT_REC_MAX_CHOICES)) {
        a->truncated = true;
        return;
    }
    int i = (int)d;
    if (i >= a->nch)
        a->nch = i + 1;
    choice_t *c = &a->ch[i];
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(chj, "delta");
    if (cJSON_IsObject(delta)) {
        take_str(&c->role, delta, "role");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(delta, "content");
        if (cJSON_IsString(v)) {
            c->has_content = true;
            append(a, &c->content, v->valuestring);
        }
        v = cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content");
        if (cJSON_IsString(v)) {
            c->has_reasoning = true;
            append(a, &c->reasoning, v->valuestring);
        }
        const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
        const cJSON *tc;
        cJSON_ArrayForEach(tc, tcs) if (cJSON_IsObject(tc)) tool_delta(a, c, tc);
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(chj, "text");
    if (cJSON_IsString(text)) {
        c->has_content = true;
        append(a, &c->content, text->valuestring);
    }
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(chj, "finish_reason");
    if (cJSON_IsString(fr)) {
        free(c->finish);
        c->finish = cm_xstrdup(fr->valuestring);
    }
}

static int on_event(const cm_sse_event_t *ev, void *ud)
{
    asm_t *a = ud;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0)
        return 0;
    cJSON *j = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return 0;
    }
    a->events++;
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(j, "object");
    if (cJSON_IsString(obj))
        a->chat = strncmp(obj->valuestring, "chat.", 5) == 0;
    take_str(&a->id, j, "id");
    take_str(&a->model, j, "model");
    take_str(&a->fingerprint, j, "system_fingerprint");
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "created");
    if (!a->has_created && cJSON_IsNumber(cr)) {
        a->created = cr->valuedouble;
        a->has_created = true;
    }
    const cJSON *chs = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *chj;
    cJSON_ArrayForEach(chj, chs) if (cJSON_IsObject(chj)) choice_delta(a, chj);
    cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        cJSON_Delete(a->usage);
        a->usage = cJSON_DetachItemViaPointer(j, u);
    }
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e && !cJSON_IsNull(e) && !a->error)
        a->error = cJSON_DetachItemViaPointer(j, e);
    cJSON_Delete(j);
    return 0;
}

/* Where the first whole event of a tail starts: after its first blank line
 * (a line end followed by another: LF LF, CR CR, CRLF CRLF). len: none. */
static size_t first_event(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if ((s[i] == '\n' && s[i + 1] == '\n') || (s[i] == '\r' && s[i + 1] == '\r' && (i + 2 >= len || s[i + 2] != '\n')))
            return i + 2;
        if (i + 3 < len && memcmp(s + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    }
    return len;
}

static void feed(asm_t *a, const char *s, size_t len)
{
    if (!len)
        return;
    /* bounds as large as the input: a long event is read, not refused */
    cm_sse_parser_t *p = cm_sse_parser_new(len + 1, len + 1, on_event, a);
    cm_sse_parser_feed(p, s, len);
    cm_sse_parser_free(p); /* an unterminated last event is dropped, as a client would */
}

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *choice_json(const asm_t *a, int i)
{
    const choice_t *c = &a->ch[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", i);
    if (a->chat) {
        cJSON *m = cJSON_AddObjectToObject(o, "message");
        cJSON_AddStringToObject(m, "role", c->role ? c->role : "assistant");
        cJSON_AddItemToObject(m, "content", c->has_content || !c->ntools ? cJSON_CreateString(c->content.buf ? c->content.buf : "")
                                                                            : cJSON_CreateNull());
        if (c->has_reasoning)
            cJSON_AddStringToObject(m, "reasoning_content", c->reasoning.buf ? c->reasoning.buf : "");
        if (c->ntools) {
            cJSON *arr = cJSON_AddArrayToObject(m, "tool_calls");
            for (int t = 0; t < c->ntools; t++) {
                const tool_t *tl = &c->tools[t];
                cJSON *tj = cJSON_CreateObject();
                cJSON_AddItemToObject(tj, "id", str_or_null(tl->id));
                cJSON_AddStringToObject(tj, "type", tl->type ? tl->type : "function");
                cJSON *fn = cJSON_AddObjectToObject(tj, "function");
                cJSON_AddItemToObject(fn, "name", str_or_null(tl->name));
                cJSON_AddStringToObject(fn, "arguments", tl->args.buf ? tl->args.buf : "");
                cJSON_AddItemToArray(arr, tj);
            }
        }
    } else {
        cJSON_AddStringToObject(o, "text", c->content.buf ? c->content.buf : "");
    }
    cJSON_AddItemToObject(o, "finish_reason", str_or_null(c->finish));
    return o;
}

static char *assembled_json(const asm_t *a)
{
    cJSON *o = cJSON_CreateObject();
    if (a->id)
        cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "object", a->chat ? "chat.completion" : "text_completion");
    if (a->has_created)
        cJSON_AddNumberToObject(o, "created", a->created);
    if (a->model)
        cJSON_AddStringToObject(o, "model", a->model);
    if (a->fingerprint)
        cJSON_AddStringToObject(o, "system_fingerprint", a->fingerprint);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < a->nch; i++)
        cJSON_AddItemToArray(arr, choice_json(a, i));
    if (a->usage)
        cJSON_AddItemToObject(o, "usage", cJSON_Duplicate(a->usage, true));
    if (a->error)
        cJSON_AddItemToObject(o, "error", cJSON_Duplicate(a->error, true));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void asm_free(asm_t *a)
{
    for (int i = 0; i < RT_REC_MAX_CHOICES; i++) {
        choice_t *c = &a->ch[i];
        free(c->role);
        free(c->content.buf);
        free(c->reasoning.buf);
        free(c->finish);
        for (int t = 0; t < c->ntools; t++) {
            free(c->tools[t].id);
            free(c->tools[t].type);
            free(c->tools[t].name);
            free(c->tools[t].args.buf);
        }
    }
    free(a->id);
    free(a->model);
    free(a->fingerprint);
    cJSON_Delete(a->usage);
    cJSON_Delete(a->error);
}

static bool usage_counts(const cJSON *u, int64_t *p, int64_t *c, int64_t *t)
{
    if (!cJSON_IsObject(u))
        return false;
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *cj = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    const cJSON *tj = cJSON_GetObjectItemCaseSensitive(u, "total_tokens");
    /* embeddings have prompt and total only */
    if (!cJSON_IsNumber(pj) && !cJSON_IsNumber(cj) && !cJSON_IsNumber(tj))
        return false;
    int64_t pv = -1, cv = -1, tv = -1;
    if (cJSON_IsNumber(pj) && pj->valuedouble >= 0 && pj->valuedouble < 1e15)
        pv = (int64_t)pj->valuedouble;
    if (cJSON_IsNumber(cj) && cj->valuedouble >= 0 && cj->valuedouble < 1e15)
        cv = (int64_t)cj->valuedouble;
    if (cJSON_IsNumber(tj) && tj->valuedouble >= 0 && tj->valuedouble < 1e15)
        tv = (int64_t)tj->valuedouble;
    else if (pv >= 0 && cv >= 0)
        tv = pv + cv;
    *p = pv;
    *c = cv;
    *t = tv;
    return true;
}

bool rt_rec_parse_usage(const char *s, size_t len, int64_t *prompt, int64_t *completion, int64_t *total)
{
    cJSON *j = cJSON_ParseWithLength(s, len);
    bool ok = usage_counts(j, prompt, completion, total);
    cJSON_Delete(j);
    return ok;
}

/* The last "usage" object in s, for a body whose start was not kept. */
static bool usage_in_tail(const char *s, size_t len, int64_t *p, int64_t *c, int64_t *t)
{
    static const char key[] = "\"usage\"";
    const size_t kl = sizeof(key) - 1;
    for (size_t i = len >= kl ? len - kl + 1 : 0; i-- > 0;) {
        if (memcmp(s + i, key, kl) != 0)
            continue;
        size_t k = i + kl;
        while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n'))
            k++;
        if (k >= len || s[k] != ':')
            continue;
        k++;
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(s + k, len - k, &end, false);
        bool ok = usage_counts(j, p, c, t);
        cJSON_Delete(j);
        if (ok)
            return true;
    }
    return false;
}

static void set_body(rt_rec_answer_t *out, char *s, size_t len, size_t max)
{
    if (len > max) {
        len = cm_utf8_complete_prefix(s, max);
        out->truncated = true;
    }
    s[len] = '\0';
    out->body = s;
    out->body_len = len;
}

static void copy_body(rt_rec_answer_t *out, const char *s, size_t len, size_t max)
{
    size_t n = len > max ? max : len;
    char *b = cm_xmalloc(n + 1);
    memcpy(b, s, n);
    set_body(out, b, n, max);
    if (len > max)
        out->truncated = true;
}

static void read_stream(const rt_rec_input_t *in, rt_rec_answer_t *out)
{
    /* No body kept (history off) and the counts came in the trailer (the
     * node's X-LLM-Usage, the cloud upstream's own count): the events need
     * not be parsed at all. */
    if (!in->want_body && in->usage_trailer &&
        rt_rec_parse_usage(in->usage_trailer, strlen(in->usage_trailer), &out->prompt_tokens,
                           &out->completion_tokens, &out->total_tokens))
        return;
    asm_t a = { .budget = in->max_body, .appending = true, .chat = in->chat };
    feed(&a, in->head, in->head_len);
    if (in->tail_len) {
        size_t skip = in->gap ? first_event(in->tail, in->tail_len) : 0;
        a.appending = !in->gap;
        feed(&a, in->tail + skip, in->tail_len - skip);
    }
    if (in->gap)
        a.truncated = true;
    if (!usage_counts(a.usage, &out->prompt_tokens, &out->completion_tokens, &out->total_tokens) &&
        in->usage_trailer)
        rt_rec_parse_usage(in->usage_trailer, strlen(in->usage_trailer), &out->prompt_tokens,
                           &out->completion_tokens, &out->total_tokens);
    if (in->want_body) {
        if (a.events) {
            char *s = assembled_json(&a);
            set_body(out, s, strlen(s), in->max_body);
        } else if (in->head_len) {
            copy_body(out, in->head, in->head_len, in->max_body); /* not JSON events: as it came */
        }
        out->truncated = out->truncated || a.truncated;
    }
    asm_free(&a);
}

static void read_body(const rt_rec_input_t *in, rt_rec_answer_t *out)
{
    if (!in->gap) {
        cJSON *j = cJSON_ParseWithLength(in->head, in->head_len);
        usage_counts(cJSON_GetObjectItemCaseSensitive(j, "usage"), &out->prompt_tokens, &out->completion_tokens,
                     &out->total_tokens);
        cJSON_Delete(j);
    } else {
        usage_in_tail(in->tail, in->tail_len, &out->prompt_tokens, &out->completion_tokens, &out->total_tokens);
    }
    if (in->want_body && in->head_len) {
        copy_body(out, in->head, in->head_len, in->max_body);
        out->truncated = out->truncated || in->gap;
    }
}

void rt_rec_answer(const rt_rec_input_t *in, rt_rec_answer_t *out)
{
    memset(out, 0, sizeof(*out));
    out->prompt_tokens = out->completion_tokens = out->total_tokens = -1;
    if (in->sse)
        read_stream(in, out);
    else
        read_body(in, out);
}
