/* cloud_anthropic: the Anthropic Messages API behind OpenAI's chat shapes.
 *
 * anthropic_build turns an OpenAI chat request into a /v1/messages body
 * (system and developer turns lifted to "system", tool turns to tool_result
 * blocks in user turns, same-role turns merged, tools and tool_choice
 * mapped); anthropic_answer turns a whole Messages answer into a
 * chat.completion; anthropic_event turns one event of a Messages stream
 * into chat.completion.chunk events through cloud_stream.c's writer.
 * Wire formats: ../shared/reference/wire-formats.md section 1. Everything
 * the provider sends is checked before use: wrong types are a malformed
 * answer (NULL + err, or an upstream_malformed stream error). */
#include "cloud/cloud_int.h"

#include "json.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* block_tool values besides a tool index (>= 0) and text (-1) */
#define BLOCK_UNSEEN (-2)  /* no content_block_start for this index yet */
#define BLOCK_IGNORED (-3) /* thinking and other blocks OpenAI has no field for */

/* ====================================================== request: content */

/* Anthropic refuses empty text blocks: an empty text adds nothing. */
static void add_text(cJSON *blocks, const char *text)
{
    if (!text || !*text)
        return;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "text");
    cJSON_AddStringToObject(b, "text", text);
    cJSON_AddItemToArray(blocks, b);
}

static int add_image(cJSON *blocks, const cJSON *part, rt_cloud_refusal_t *why)
{
    image_ref_t img;
    if (image_url(part, &img, why) != 0)
        return -1;
    cJSON *src = cJSON_CreateObject();
    if (img.is_data) {
        char *mime = cm_xstrndup(img.mime, img.mime_len), *data = cm_xstrndup(img.data, img.data_len);
        cJSON_AddStringToObject(src, "type", "base64");
        cJSON_AddStringToObject(src, "media_type", mime);
        cJSON_AddStringToObject(src, "data", data);
        free(mime);
        free(data);
    } else {
        cJSON_AddStringToObject(src, "type", "url");
        cJSON_AddStringToObject(src, "url", img.url);
    }
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "image");
    cJSON_AddItemToObject(b, "source", src);
    cJSON_AddItemToArray(blocks, b);
    return 0;
}

/* A user or assistant message's content (a string or OpenAI parts) as
 * Anthropic blocks appended to blocks. */
static int add_content(cJSON *blocks, const cJSON *content, int i, rt_cloud_refusal_t *why)
{
    if (!content || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content)) {
        add_text(blocks, content->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(content))
        return refuse(why, "messages", "messages[%d].content must be a string or an array of parts", i);
    int j = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const char *type = NULL, *text = NULL;
        if (cm_json_str(part, "type", &type) != CM_JSON_OK)
            return refuse(why, "messages", "messages[%d].content[%d].type must be a string", i, j);
        if (strcmp(type, "text") == 0) {
            if (cm_json_str(part, "text", &text) != CM_JSON_OK)
                return refuse(why, "messages", "messages[%d].content[%d].text must be a string", i, j);
            add_text(blocks, text);
        } else if (strcmp(type, "image_url") == 0) {
            if (add_image(blocks, part, why) != 0)
                return -1;
        } else {
            return refuse(why, "messages", "messages[%d].content[%d]: part type '%.40s' is not supported for anthropic",
                          i, j, type);
        }
        j++;
    }
    return 0;
}

/* An assistant's tool_calls as tool_use blocks (after its text, as the
 * model itself writes them). */
static int add_tool_uses(cJSON *blocks, const cJSON *calls, int i, rt_cloud_refusal_t *why)
{
    if (!calls || cJSON_IsNull(calls))
        return 0;
    if (!cJSON_IsArray(calls))
        return refuse(why, "messages", "messages[%d].tool_calls must be an array", i);
    const cJSON *c;
    cJSON_ArrayForEach(c, calls) {
        tool_call_t tc;
        if (tool_call(c, &tc, why) != 0) /* tc.args is an object when it succeeds */
            return -1;
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", tc.id);
        cJSON_AddStringToObject(b, "name", tc.name);
        cJSON_AddItemToObject(b, "input", tc.args);
        cJSON_AddItemToArray(blocks, b);
    }
    return 0;
}

/* A tool turn: one tool_result block (sent in a user turn). */
static int add_tool_result(cJSON *blocks, const cJSON *m, int i, rt_cloud_refusal_t *why)
{
    const char *id = NULL;
    if (cm_json_str(m, "tool_call_id", &id) != CM_JSON_OK || !*id)
        return refuse(why, "messages", "messages[%d].tool_call_id is required for a tool message", i);
    char *text = msg_text(cJSON_GetObjectItemCaseSensitive(m, "content"), "a tool message", why);
    if (!text)
        return -1;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "tool_result");
    cJSON_AddStringToObject(b, "tool_use_id", id);
    cJSON *inner = cJSON_AddArrayToObject(b, "content");
    add_text(inner, text); /* an empty result stays an empty list */
    cJSON_AddItemToArray(blocks, b);
    free(text);
    return 0;
}

/* ===================================================== request: messages */

typedef struct {
    cJSON *msgs;      /* the Messages "messages" array */
    cJSON *last;      /* its last turn's content array */
    const char *role; /* its last turn's role (a literal) */
    cbuf_t system;    /* system and developer texts joined */
} turns_t;

/* Consecutive turns of one role become one turn: the API would combine
 * them anyway, and a tool_result must sit in the user turn right after the
 * assistant's tool_use. A turn with no blocks is not sent (the API refuses
 * empty content). Takes blocks. */
static void push_turn(turns_t *t, const char *role, cJSON *blocks)
{
    if (!blocks->child) {
        cJSON_Delete(blocks);
        return;
    }
    if (t->role && strcmp(t->role, role) == 0) {
        cJSON *b;
        while ((b = cJSON_DetachItemFromArray(blocks, 0)) != NULL)
            cJSON_AddItemToArray(t->last, b);
        cJSON_Delete(blocks);
        return;
    }
    cJSON *turn = cJSON_CreateObject();
    cJSON_AddStringToObject(turn, "role", role);
    cJSON_AddItemToObject(turn, "content", blocks);
    cJSON_AddItemToArray(t->msgs, turn);
    t->last = blocks;
    t->role = role;
}

static int add_system(turns_t *t, const cJSON *m, rt_cloud_refusal_t *why)
{
    char *text = msg_text(cJSON_GetObjectItemCaseSensitive(m, "content"), "a system message", why);
    if (!text)
        return -1;
    if (*text) {
        if (t->system.len)
            cb_lit(&t->system, "\n\n");
        cb_lit(&t->system, text);
    }
    free(text);
    return 0;
}

static int add_message(turns_t *t, const cJSON *m, int i, rt_cloud_refusal_t *why)
{
    const char *role = NULL;
    if (!cJSON_IsObject(m) || cm_json_str(m, "role", &role) != CM_JSON_OK)
        return refuse(why, "messages", "messages[%d] must be an object with a string role", i);
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return add_system(t, m, why);
    cJSON *blocks = cJSON_CreateArray();
    const char *as;
    int rc;
    if (strcmp(role, "user") == 0) {
        as = "user";
        rc = add_content(blocks, cJSON_GetObjectItemCaseSensitive(m, "content"), i, why);
    } else if (strcmp(role, "assistant") == 0) {
        as = "assistant";
        rc = add_content(blocks, cJSON_GetObjectItemCaseSensitive(m, "content"), i, why);
        if (rc == 0)
            rc = add_tool_uses(blocks, cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), i, why);
    } else if (strcmp(role, "tool") == 0) {
        as = "user";
        rc = add_tool_result(blocks, m, i, why);
    } else {
        cJSON_Delete(blocks);
        return refuse(why, "messages", "messages[%d].role '%.40s' is not supported for anthropic", i, role);
    }
    if (rc != 0) {
        cJSON_Delete(blocks);
        return -1;
    }
    push_turn(t, as, blocks);
    return 0;
}

/* The API refuses a final assistant turn (a prefill) that ends in
 * whitespace: trim its last text block, dropping what becomes empty. */
static void trim_prefill(turns_t *t)
{
    if (!t->role || strcmp(t->role, "assistant") != 0)
        return;
    cJSON *b = t->last->child ? t->last->child->prev : NULL;
    const char *type = NULL, *text = NULL;
    if (cm_json_str(b, "type", &type) != CM_JSON_OK || strcmp(type, "text") != 0 ||
        cm_json_str(b, "text", &text) != CM_JSON_OK)
        return;
    size_t n = strlen(text);
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\n' || text[n - 1] == '\t' || text[n - 1] == '\r'))
        n--;
    if (n == strlen(text))
        return;
    char *cut = cm_xstrndup(text, n);
    if (n)
        cJSON_ReplaceItemInObjectCaseSensitive(b, "text", cJSON_CreateString(cut));
    else
        cJSON_Delete(cJSON_DetachItemViaPointer(t->last, b));
    free(cut);
    if (!t->last->child) /* the whole turn was whitespace */
        cJSON_Delete(cJSON_DetachItemViaPointer(t->msgs, t->msgs->child->prev));
}

static int add_messages(cJSON *body, const cJSON *req, rt_cloud_refusal_t *why)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsArray(list))
        return refuse(why, "messages", "messages must be an array");
    turns_t t = { .msgs = cJSON_CreateArray() };
    int i = 0, rc = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        if ((rc = add_message(&t, m, i++, why)) != 0)
            break;
    }
    if (rc == 0)
        trim_prefill(&t);
    if (rc == 0 && !t.msgs->child)
        rc = refuse(why, "messages", "messages must hold at least one user or assistant message for anthropic");
    if (rc == 0) {
        if (t.system.len)
            cJSON_AddStringToObject(body, "system", t.system.p);
        cJSON_AddItemToObject(body, "messages", t.msgs);
    } else {
        cJSON_Delete(t.msgs);
    }
    cb_free(&t.system);
    return rc;
}

/* ===================================================== request: settings */

static int add_settings(cJSON *body, const cJSON *req, rt_cloud_refusal_t *why)
{
    long long n = 1;
    int r = cm_json_int(req, "n", &n);
    if (r == CM_JSON_TYPE)
        return refuse(why, "n", "n must be an integer");
    if (r == CM_JSON_OK && n > 1)
        return refuse(why, "n", "n > 1 is not supported for anthropic");
    cJSON *stop = NULL;
    if (stop_list(req, &stop, why) != 0)
        return -1;
    if (stop)
        cJSON_AddItemToObject(body, "stop_sequences", stop);
    if (copy_num(req, "temperature", body, "temperature", why) != 0 || copy_num(req, "top_p", body, "top_p", why) != 0 ||
        copy_num(req, "top_k", body, "top_k", why) != 0)
        return -1;
    const char *user = NULL;
    r = cm_json_str(req, "user", &user);
    if (r == CM_JSON_TYPE)
        return refuse(why, "user", "user must be a string");
    if (r == CM_JSON_OK && *user)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "metadata"), "user_id", user);
    return 0;
}

/* One OpenAI function tool as an Anthropic tool. */
static int add_tool(cJSON *tools, const cJSON *t, int i, rt_cloud_refusal_t *why)
{
    const char *type = NULL, *name = NULL, *desc = NULL;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    if (cm_json_str(t, "type", &type) != CM_JSON_OK || strcmp(type, "function") != 0 || !cJSON_IsObject(fn))
        return refuse(why, "tools", "tools[%d] must be {\"type\":\"function\",\"function\":{...}}", i);
    if (cm_json_str(fn, "name", &name) != CM_JSON_OK || !*name)
        return refuse(why, "tools", "tools[%d].function.name must be a non-empty string", i);
    int dr = cm_json_str(fn, "description", &desc);
    if (dr == CM_JSON_TYPE)
        return refuse(why, "tools", "tools[%d].function.description must be a string", i);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
        return refuse(why, "tools", "tools[%d].function.parameters must be an object", i);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    if (dr == CM_JSON_OK)
        cJSON_AddStringToObject(o, "description", desc);
    if (cJSON_IsObject(params)) {
        cJSON_AddItemToObject(o, "input_schema", cJSON_Duplicate(params, 1));
    } else {
        /* a function without parameters: the API requires a schema */
        cJSON *s = cJSON_AddObjectToObject(o, "input_schema");
        cJSON_AddStringToObject(s, "type", "object");
        cJSON_AddObjectToObject(s, "properties");
    }
    cJSON_AddItemToArray(tools, o);
    return 0;
}

/* tool_choice (absent: auto) with parallel_tool_calls folded in. */
static cJSON *map_tool_choice(const cJSON *req, rt_cloud_refusal_t *why)
{
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    const char *name = NULL, *type = "auto";
    if (cJSON_IsString(tc)) {
        const char *v = tc->valuestring;
        type = strcmp(v, "auto") == 0 ? "auto" : strcmp(v, "required") == 0 ? "any" : strcmp(v, "none") == 0 ? "none" : NULL;
    } else if (cJSON_IsObject(tc)) {
        const char *t = NULL;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        if (cm_json_str(tc, "type", &t) != CM_JSON_OK || strcmp(t, "function") != 0 ||
            cm_json_str(fn, "name", &name) != CM_JSON_OK || !*name)
            type = NULL;
        else
            type = "tool";
    } else if (tc && !cJSON_IsNull(tc)) {
        type = NULL;
    }
    if (!type) {
        refuse(why, "tool_choice",
               "tool_choice must be \"auto\", \"required\", \"none\" or {\"type\":\"function\",\"function\":{\"name\":...}}");
        return NULL;
    }
    bool parallel = true;
    if (cm_json_bool(req, "parallel_tool_calls", &parallel) == CM_JSON_TYPE) {
        refuse(why, "parallel_tool_calls", "parallel_tool_calls must be a boolean");
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    if (name)
        cJSON_AddStringToObject(o, "name", name);
    if (!parallel && strcmp(type, "none") != 0) /* "none" takes no such field */
        cJSON_AddTrueToObject(o, "disable_parallel_tool_use");
    return o;
}

static int add_tools(cJSON *body, const cJSON *req, rt_cloud_refusal_t *why)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (!list || cJSON_IsNull(list))
        return 0; /* a tool_choice without tools has nothing to choose from */
    if (!cJSON_IsArray(list))
        return refuse(why, "tools", "tools must be an array");
    if (!list->child)
        return 0;
    cJSON *tools = cJSON_CreateArray();
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, list) {
        if (add_tool(tools, t, i++, why) != 0) {
            cJSON_Delete(tools);
            return -1;
        }
    }
    cJSON *choice = map_tool_choice(req, why);
    if (!choice) {
        cJSON_Delete(tools);
        return -1;
    }
    cJSON_AddItemToObject(body, "tools", tools);
    cJSON_AddItemToObject(body, "tool_choice", choice);
    return 0;
}

int anthropic_build(const cJSON *req, const char *name, const rt_cloud_build_opts_t *o, rt_cloud_call_t *out,
                    rt_cloud_refusal_t *why)
{
    cJSON *body = cJSON_CreateObject();
    int rc = -1;
    long long mt = 0;
    int m = max_tokens(req, &mt, why);
    if (m < 0)
        goto out;
    if (m == 0) /* the API requires max_tokens */
        mt = o && o->anthropic_max_tokens > 0 ? o->anthropic_max_tokens : RT_CLOUD_DEFAULT_MAX_TOKENS;
    cJSON_AddStringToObject(body, "model", name);
    cJSON_AddNumberToObject(body, "max_tokens", (double)mt);
    if (add_messages(body, req, why) != 0 || add_settings(body, req, why) != 0 || add_tools(body, req, why) != 0)
        goto out;
    if (out->stream)
        cJSON_AddTrueToObject(body, "stream");
    out->path = cm_xstrdup("/v1/messages");
    out->body = cm_json_print(body);
    out->len = strlen(out->body);
    rc = 0;
out:
    cJSON_Delete(body);
    return rc;
}

/* ================================================================ answers */

const char *anthropic_finish(const char *stop_reason)
{
    if (!stop_reason)
        return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0 || strcmp(stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn, and what comes next */
}

/* usage's input tokens: input_tokens plus the cache counts, which Anthropic
 * reports apart ("the summation ... is the total input"). 1 read, 0 no
 * input_tokens, -1 malformed. */
static int read_prompt(const cJSON *usage, int64_t *prompt)
{
    int64_t in = 0, cc = 0, cr = 0;
    int r = get_count(usage, "input_tokens", &in);
    if (r < 0 || get_count(usage, "cache_creation_input_tokens", &cc) < 0 ||
        get_count(usage, "cache_read_input_tokens", &cr) < 0)
        return -1;
    if (r == 1)
        *prompt = in + cc + cr;
    return r;
}

/* A tool_use block as an OpenAI tool call (input printed as arguments). */
static cJSON *answer_tool_call(const cJSON *b)
{
    const char *id = NULL, *name = NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
    if (cm_json_str(b, "id", &id) != CM_JSON_OK || cm_json_str(b, "name", &name) != CM_JSON_OK ||
        (input && !cJSON_IsObject(input)))
        return NULL;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(c, "function");
    cJSON_AddStringToObject(fn, "name", name);
    char *args = input ? cm_json_print(input) : cm_xstrdup("{}");
    cJSON_AddStringToObject(fn, "arguments", args);
    free(args);
    return c;
}

/* The content blocks: text joined into *text, tool_use blocks into *calls
 * (created on the first). Other blocks (thinking...) have no OpenAI field. */
static int answer_blocks(const cJSON *content, cbuf_t *text, cJSON **calls, char *err, size_t errlen)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        const char *type = NULL, *t = NULL;
        if (cm_json_str(b, "type", &type) != CM_JSON_OK) {
            snprintf(err, errlen, "The provider's answer has a content block without a type");
            return -1;
        }
        if (strcmp(type, "text") == 0) {
            if (cm_json_str(b, "text", &t) != CM_JSON_OK) {
                snprintf(err, errlen, "The provider's answer has a text block without text");
                return -1;
            }
            cb_lit(text, t);
        } else if (strcmp(type, "tool_use") == 0) {
            cJSON *c = answer_tool_call(b);
            if (!c) {
                snprintf(err, errlen, "The provider's answer has a malformed tool_use block");
                return -1;
            }
            if (!*calls)
                *calls = cJSON_CreateArray();
            cJSON_AddItemToArray(*calls, c);
        }
    }
    return 0;
}

char *anthropic_answer(const answer_ctx_t *a, const cJSON *body, char *err, size_t errlen)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(body, "content");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(body, "usage");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(body, "stop_reason");
    int64_t prompt = 0, completion = 0;
    if (!cJSON_IsArray(content)) {
        snprintf(err, errlen, "The provider's answer has no content array");
        return NULL;
    }
    if (!cJSON_IsObject(usage) || read_prompt(usage, &prompt) != 1 || get_count(usage, "output_tokens", &completion) != 1) {
        snprintf(err, errlen, "The provider's answer has no valid usage (input_tokens, output_tokens)");
        return NULL;
    }
    if (stop && !cJSON_IsNull(stop) && !cJSON_IsString(stop)) {
        snprintf(err, errlen, "The provider's answer has a stop_reason that is not a string");
        return NULL;
    }
    cbuf_t text = { 0 };
    cJSON *calls = NULL;
    if (answer_blocks(content, &text, &calls, err, errlen) != 0) {
        cb_free(&text);
        cJSON_Delete(calls);
        return NULL;
    }
    cJSON *root = answer_head(a);
    const char *finish = anthropic_finish(cJSON_IsString(stop) ? stop->valuestring : NULL);
    /* answer_choice takes calls; content null when there are only calls */
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"),
                         answer_choice(a, 0, text.len ? text.p : "", calls, finish));
    answer_usage(root, prompt, completion, prompt + completion);
    char *s = cm_json_print(root);
    cJSON_Delete(root);
    cb_free(&text);
    return s;
}

/* ================================================================ streams */

static int malformed(rt_cloud_stream_t *s, const char *what)
{
    emit_error(s, "server_error", "upstream_malformed", "The provider's stream is malformed: %s", what);
    return 1;
}

/* The event's block index, its slot allocated (every new slot unseen).
 * -1 (error emitted) when it is not an integer in [0, RT_CLOUD_MAX_BLOCKS). */
static int block_index(rt_cloud_stream_t *s, const cJSON *j)
{
    long long i = -1;
    if (cm_json_int(j, "index", &i) != CM_JSON_OK || i < 0) {
        malformed(s, "a content block event without a valid index");
        return -1;
    }
    if (i >= RT_CLOUD_MAX_BLOCKS) {
        malformed(s, "too many content blocks");
        return -1;
    }
    if (i >= s->nblocks) {
        /* indexes come in order: this grows one slot at a time */
        int n = (int)i + 1;
        s->block_tool = cm_xrealloc(s->block_tool, (size_t)n * sizeof(*s->block_tool));
        s->block_args = cm_xrealloc(s->block_args, (size_t)n * sizeof(*s->block_args));
        for (int k = s->nblocks; k < n; k++) {
            s->block_tool[k] = BLOCK_UNSEEN;
            s->block_args[k] = false;
        }
        s->nblocks = n;
    }
    return (int)i;
}

/* message.usage (input and cache counts, output's placeholder) or
 * message_delta's cumulative usage. */
static int take_usage(rt_cloud_stream_t *s, const cJSON *u)
{
    if (!u || cJSON_IsNull(u))
        return 0;
    int64_t out = 0;
    int r;
    if (!cJSON_IsObject(u) || read_prompt(u, &s->prompt) < 0 || (r = get_count(u, "output_tokens", &out)) < 0)
        return malformed(s, "usage holds a count that is not a count");
    if (r == 1)
        s->completion = out;
    return 0;
}

static int on_message_start(rt_cloud_stream_t *s, const cJSON *j)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsObject(m))
        return malformed(s, "message_start without a message");
    if (take_usage(s, cJSON_GetObjectItemCaseSensitive(m, "usage")) != 0)
        return 1;
    emit_role(s);
    return 0;
}

static int on_block_start(rt_cloud_stream_t *s, const cJSON *j)
{
    int i = block_index(s, j);
    if (i < 0)
        return 1;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "content_block");
    const char *type = NULL, *text = NULL, *id = NULL, *name = NULL;
    if (s->block_tool[i] != BLOCK_UNSEEN)
        return malformed(s, "a content block started twice");
    if (cm_json_str(b, "type", &type) != CM_JSON_OK)
        return malformed(s, "content_block_start without a block type");
    if (strcmp(type, "text") == 0) {
        if (cm_json_str(b, "text", &text) == CM_JSON_TYPE)
            return malformed(s, "a text block whose text is not a string");
        s->block_tool[i] = -1;
        if (text && *text)
            emit_text(s, text, strlen(text));
    } else if (strcmp(type, "tool_use") == 0) {
        if (cm_json_str(b, "id", &id) != CM_JSON_OK || cm_json_str(b, "name", &name) != CM_JSON_OK)
            return malformed(s, "a tool_use block without id and name");
        const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
        s->block_tool[i] = s->ntools++;
        if (cJSON_IsObject(input) && input->child) {
            /* arguments given whole rather than streamed */
            char *args = cm_json_print(input);
            emit_tool_start(s, s->block_tool[i], id, name, args, strlen(args));
            s->block_args[i] = true;
            free(args);
        } else {
            emit_tool_start(s, s->block_tool[i], id, name, "", 0);
        }
    } else {
        s->block_tool[i] = BLOCK_IGNORED;
    }
    return 0;
}

static int on_block_delta(rt_cloud_stream_t *s, const cJSON *j)
{
    int i = block_index(s, j);
    if (i < 0)
        return 1;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delta");
    const char *type = NULL, *v = NULL;
    int tool = s->block_tool[i];
    if (tool == BLOCK_UNSEEN)
        return malformed(s, "a delta for a content block never started");
    if (cm_json_str(d, "type", &type) != CM_JSON_OK)
        return malformed(s, "content_block_delta without a delta type");
    if (tool == BLOCK_IGNORED)
        return 0;
    if (strcmp(type, "text_delta") == 0) {
        if (tool != -1 || cm_json_str(d, "text", &v) != CM_JSON_OK)
            return malformed(s, "a text_delta without text or for a tool block");
        emit_text(s, v, strlen(v));
    } else if (strcmp(type, "input_json_delta") == 0) {
        if (tool < 0 || cm_json_str(d, "partial_json", &v) != CM_JSON_OK)
            return malformed(s, "an input_json_delta without partial_json or for a text block");
        if (*v) {
            emit_tool_args(s, tool, v, strlen(v));
            s->block_args[i] = true;
        }
    }
    /* thinking_delta, signature_delta, citations_delta: no OpenAI field */
    return 0;
}

static int on_block_stop(rt_cloud_stream_t *s, const cJSON *j)
{
    int i = block_index(s, j);
    if (i < 0)
        return 1;
    if (s->block_tool[i] == BLOCK_UNSEEN)
        return malformed(s, "content_block_stop for a block never started");
    /* a tool called without arguments: OpenAI clients JSON.parse them and
     * "" does not parse */
    if (s->block_tool[i] >= 0 && !s->block_args[i]) {
        emit_tool_args(s, s->block_tool[i], "{}", 2);
        s->block_args[i] = true;
    }
    return 0;
}

static int on_message_delta(rt_cloud_stream_t *s, const cJSON *j)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delta");
    const char *stop = NULL;
    if (d && !cJSON_IsObject(d))
        return malformed(s, "message_delta whose delta is not an object");
    if (cm_json_str(d, "stop_reason", &stop) == CM_JSON_TYPE)
        return malformed(s, "a stop_reason that is not a string");
    if (stop)
        s->finish = anthropic_finish(stop);
    return take_usage(s, cJSON_GetObjectItemCaseSensitive(j, "usage"));
}

/* The provider's error type as OpenAI's error type, through the HTTP
 * status Anthropic gives it (wire-formats.md 1.5), so an error in a stream
 * reads like the same error before one (rt_cloud_error). The provider's
 * own type goes out as the code. */
static const char *error_kind(const char *t)
{
    static const struct {
        const char *type;
        int status;
    } t2s[] = { { "invalid_request_error", 400 }, { "authentication_error", 401 }, { "billing_error", 402 },
                { "permission_error", 403 },      { "not_found_error", 404 },      { "request_too_large", 413 },
                { "rate_limit_error", 429 },      { "api_error", 500 },            { "timeout_error", 504 },
                { "overloaded_error", 529 } };
    for (size_t i = 0; i < CM_ARRAY_LEN(t2s); i++)
        if (strcmp(t, t2s[i].type) == 0)
            return error_type(t2s[i].status);
    return error_type(500); /* a type Anthropic added since */
}

static int on_error(rt_cloud_stream_t *s, const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *type = NULL, *msg = NULL;
    if (cm_json_str(e, "type", &type) != CM_JSON_OK)
        type = NULL;
    if (cm_json_str(e, "message", &msg) != CM_JSON_OK)
        msg = "The provider sent an error event";
    emit_error(s, type ? error_kind(type) : "server_error", type ? type : "upstream_error", "%s", msg);
    return 1;
}

typedef int (*event_fn)(rt_cloud_stream_t *s, const cJSON *j);

static event_fn event_handler(const char *name)
{
    static const struct {
        const char *name;
        event_fn fn;
    } t[] = { { "content_block_delta", on_block_delta }, { "content_block_start", on_block_start },
              { "content_block_stop", on_block_stop },   { "message_start", on_message_start },
              { "message_delta", on_message_delta },     { "error", on_error } };
    for (size_t i = 0; i < CM_ARRAY_LEN(t); i++)
        if (strcmp(name, t[i].name) == 0)
            return t[i].fn;
    return NULL;
}

int anthropic_event(rt_cloud_stream_t *s, const cm_sse_event_t *ev)
{
    int fast = anthropic_fast(s, ev);
    if (fast != FAST_NO)
        return fast;
    const char *name = ev->event ? ev->event : "message";
    if (strcmp(name, "ping") == 0)
        return 0;
    if (strcmp(name, "message_stop") == 0) {
        s->saw_stop = true;
        emit_end(s);
        return 1;
    }
    event_fn fn = event_handler(name);
    bool unnamed = strcmp(name, "message") == 0; /* no event: line: the JSON's type names it */
    if (!fn && !unnamed)
        return 0; /* Anthropic adds event types; unknown ones carry nothing we map */
    cJSON *j = cm_json_parse(ev->data, ev->data_len);
    int rc = 0;
    if (!cJSON_IsObject(j)) {
        rc = strcmp(name, "error") == 0 ? on_error(s, NULL) : malformed(s, "an event whose data is not a JSON object");
    } else if (unnamed) {
        const char *type = NULL;
        if (cm_json_str(j, "type", &type) == CM_JSON_OK && strcmp(type, "message_stop") == 0) {
            s->saw_stop = true;
            emit_end(s);
            rc = 1;
        } else if (type && (fn = event_handler(type)) != NULL) {
            rc = fn(s, j);
        }
    } else {
        rc = fn(s, j);
    }
    cJSON_Delete(j);
    return rc;
}
