/* cloud_google: the Gemini v1beta generateContent translation
 * (wire-formats.md section 2). An OpenAI chat request becomes a
 * GenerateContentRequest (systemInstruction, contents with user/model
 * turns, generationConfig, tools, toolConfig); a GenerateContentResponse
 * becomes a chat.completion; each alt=sse event (one whole
 * GenerateContentResponse) becomes chunks through cloud_stream.c's writer.
 * Gemini has no end event: the stream's final chunk is written by
 * rt_cloud_stream_end from the last finish reason seen here. */
#include "cloud/cloud_int.h"

#include "json.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MAX 128

/* ---- the request ---- */

/* The name goes into the URL path unescaped: only bytes that need no
 * escaping, and nothing that could leave /models/ or start a query. */
static int model_path(const char *name, bool stream, rt_cloud_call_t *out, rt_cloud_refusal_t *why)
{
    size_t n = strlen(name);
    if (n == 0 || n > MODEL_MAX || strstr(name, ".."))
        return refuse(why, "model", "The Google model name must be 1-%d bytes of A-Z a-z 0-9 . _ -", MODEL_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok)
            return refuse(why, "model", "The Google model name must be 1-%d bytes of A-Z a-z 0-9 . _ -",
                          MODEL_MAX);
    }
    out->path = cm_xasprintf("/models/%s:%s", name, stream ? "streamGenerateContent?alt=sse" : "generateContent");
    return 0;
}

/* The assistant tool calls of the whole request, sorted by id, so that each
 * tool message finds its function's name (Gemini's functionResponse wants
 * the name, OpenAI's tool message only has the id) in log time. */
typedef struct {
    const char *id, *name;
    int msg; /* index of the assistant message */
} call_ref_t;

typedef struct {
    call_ref_t *v;
    size_t n, cap;
} call_table_t;

static int ref_cmp(const void *x, const void *y)
{
    const call_ref_t *a = x, *b = y;
    int c = strcmp(a->id, b->id);
    return c ? c : (a->msg > b->msg) - (a->msg < b->msg);
}

static void calls_index(const cJSON *msgs, call_table_t *t)
{
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const char *role = NULL;
        const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (cm_json_str(m, "role", &role) == CM_JSON_OK && strcmp(role, "assistant") == 0 && cJSON_IsArray(tcs)) {
            const cJSON *c;
            cJSON_ArrayForEach(c, tcs) {
                const char *id, *name;
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
                if (cm_json_str(c, "id", &id) != CM_JSON_OK || cm_json_str(fn, "name", &name) != CM_JSON_OK)
                    continue; /* the message's own pass refuses it */
                if (t->n == t->cap) {
                    t->cap = t->cap ? t->cap * 2 : 16;
                    t->v = cm_xrealloc(t->v, t->cap * sizeof(*t->v));
                }
                t->v[t->n++] = (call_ref_t){ id, name, i };
            }
        }
        i++;
    }
    if (t->n)
        qsort(t->v, t->n, sizeof(*t->v), ref_cmp);
}

/* the name of the call id made by an assistant message before message
 * `before`: the first entry with that id has the lowest message index */
static const char *calls_find(const call_table_t *t, const char *id, int before)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(t->v[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n && strcmp(t->v[lo].id, id) == 0 && t->v[lo].msg < before)
        return t->v[lo].name;
    return NULL;
}

/* What the message loop builds. */
typedef struct {
    cJSON *contents;   /* [{role, parts}] */
    cJSON *last_parts; /* the parts of the last content, for merging */
    const char *last_role;
    cJSON *sys; /* systemInstruction parts */
    call_table_t calls;
} conv_t;

static void add_text(cJSON *parts, const char *text)
{
    if (!*text)
        return; /* Gemini refuses empty text parts */
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "text", text);
    cJSON_AddItemToArray(parts, p);
}

/* Gemini wants user and model turns alternating: a turn of the same role
 * as the previous one joins it. parts is taken. */
static void add_turn(conv_t *cv, const char *role, cJSON *parts)
{
    if (!parts->child) {
        cJSON_Delete(parts); /* an empty turn is refused by Gemini: dropped */
        return;
    }
    if (cv->last_role && strcmp(cv->last_role, role) == 0) {
        while (parts->child)
            cJSON_AddItemToArray(cv->last_parts, cJSON_DetachItemViaPointer(parts, parts->child));
        cJSON_Delete(parts);
        return;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "role", role);
    cJSON_AddItemToObject(c, "parts", parts);
    cJSON_AddItemToArray(cv->contents, c);
    cv->last_parts = parts;
    cv->last_role = role; /* a literal */
}

static cJSON *image_part(const image_ref_t *img)
{
    cJSON *p = cJSON_CreateObject();
    if (img->is_data) {
        char *mime = cm_xstrndup(img->mime, img->mime_len), *data = cm_xstrndup(img->data, img->data_len);
        cJSON *d = cJSON_AddObjectToObject(p, "inlineData");
        cJSON_AddStringToObject(d, "mimeType", mime);
        cJSON_AddStringToObject(d, "data", data);
        free(mime);
        free(data);
    } else {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "fileData"), "fileUri", img->url);
    }
    return p;
}

/* a user message's content: a string, or text and image_url parts */
static cJSON *user_parts(const cJSON *content, rt_cloud_refusal_t *why)
{
    cJSON *parts = cJSON_CreateArray();
    if (cJSON_IsString(content)) {
        add_text(parts, content->valuestring);
        return parts;
    }
    if (!content || cJSON_IsNull(content))
        return parts;
    if (!cJSON_IsArray(content))
        goto bad;
    const cJSON *p;
    cJSON_ArrayForEach(p, content) {
        const char *type = NULL, *text = NULL;
        image_ref_t img;
        if (cm_json_str(p, "type", &type) != CM_JSON_OK)
            goto bad;
        if (strcmp(type, "text") == 0) {
            if (cm_json_str(p, "text", &text) != CM_JSON_OK)
                goto bad;
            add_text(parts, text);
        } else if (strcmp(type, "image_url") == 0) {
            if (image_url(p, &img, why) < 0) {
                cJSON_Delete(parts);
                return NULL;
            }
            cJSON_AddItemToArray(parts, image_part(&img));
        } else {
            cJSON_Delete(parts);
            refuse(why, "messages", "Content parts of type '%.40s' are not supported for Google models", type);
            return NULL;
        }
    }
    return parts;
bad:
    cJSON_Delete(parts);
    refuse(why, "messages", "A user message's content must be a string or an array of text and image_url parts");
    return NULL;
}

/* an assistant message: its text, then one functionCall part per tool call */
static cJSON *model_parts(const cJSON *m, rt_cloud_refusal_t *why)
{
    char *text = msg_text(cJSON_GetObjectItemCaseSensitive(m, "content"), "assistant", why);
    if (!text)
        return NULL;
    cJSON *parts = cJSON_CreateArray();
    add_text(parts, text);
    free(text);
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), *c;
    if (tcs && !cJSON_IsNull(tcs) && !cJSON_IsArray(tcs)) {
        cJSON_Delete(parts);
        refuse(why, "messages", "An assistant message's tool_calls must be an array");
        return NULL;
    }
    cJSON_ArrayForEach(c, (cJSON_IsArray(tcs) ? tcs : NULL)) {
        tool_call_t tc = { 0 };
        if (tool_call(c, &tc, why) < 0) {
            cJSON_Delete(parts);
            return NULL;
        }
        if (!cJSON_IsObject(tc.args)) { /* Gemini's args is a Struct */
            cJSON_Delete(tc.args);
            cJSON_Delete(parts);
            refuse(why, "messages", "A tool call's arguments must be a JSON object for Google models");
            return NULL;
        }
        cJSON *part = cJSON_CreateObject();
        cJSON *call = cJSON_AddObjectToObject(part, "functionCall");
        cJSON_AddStringToObject(call, "name", tc.name);
        cJSON_AddItemToObject(call, "args", tc.args);
        cJSON_AddItemToArray(parts, part);
    }
    return parts;
}

/* a tool message: a functionResponse named after the call it answers */
static cJSON *tool_parts(const conv_t *cv, const cJSON *m, int index, rt_cloud_refusal_t *why)
{
    const char *id = NULL, *name;
    if (cm_json_str(m, "tool_call_id", &id) != CM_JSON_OK) {
        refuse(why, "messages", "A tool message needs a tool_call_id string");
        return NULL;
    }
    if (!(name = calls_find(&cv->calls, id, index))) {
        refuse(why, "messages", "The tool message's tool_call_id '%.64s' answers no earlier assistant tool call", id);
        return NULL;
    }
    char *text = msg_text(cJSON_GetObjectItemCaseSensitive(m, "content"), "tool", why);
    if (!text)
        return NULL;
    cJSON *parts = cJSON_CreateArray(), *part = cJSON_CreateObject();
    cJSON *fr = cJSON_AddObjectToObject(part, "functionResponse");
    cJSON_AddStringToObject(fr, "name", name);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(fr, "response"), "content", text);
    cJSON_AddItemToArray(parts, part);
    free(text);
    return parts;
}

static int system_text(conv_t *cv, const cJSON *m, rt_cloud_refusal_t *why)
{
    char *text = msg_text(cJSON_GetObjectItemCaseSensitive(m, "content"), "system", why);
    if (!text)
        return -1;
    add_text(cv->sys, text);
    free(text);
    return 0;
}

static int messages(const cJSON *req, conv_t *cv, rt_cloud_refusal_t *why)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages"), *m;
    if (!cJSON_IsArray(msgs))
        return refuse(why, "messages", "messages must be an array");
    calls_index(msgs, &cv->calls);
    int i = 0;
    cJSON_ArrayForEach(m, msgs) {
        const char *role = NULL;
        if (cm_json_str(m, "role", &role) != CM_JSON_OK)
            return refuse(why, "messages", "Each message needs a role string");
        cJSON *parts;
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (system_text(cv, m, why) < 0)
                return -1;
            i++;
            continue;
        }
        if (strcmp(role, "user") == 0)
            parts = user_parts(cJSON_GetObjectItemCaseSensitive(m, "content"), why);
        else if (strcmp(role, "assistant") == 0)
            parts = model_parts(m, why);
        else if (strcmp(role, "tool") == 0)
            parts = tool_parts(cv, m, i, why);
        else
            return refuse(why, "messages", "The role '%.32s' is not supported for Google models", role);
        if (!parts)
            return -1;
        add_turn(cv, strcmp(role, "assistant") == 0 ? "model" : "user", parts);
        i++;
    }
    if (!cv->contents->child)
        return refuse(why, "messages", "The request has no user or assistant content to send");
    return 0;
}

/* response_format: json_object (and json_schema, whose schema goes along
 * as responseJsonSchema) ask for JSON */
static int response_format(const cJSON *req, cJSON *g, rt_cloud_refusal_t *why)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    const char *type = NULL;
    if (!rf || cJSON_IsNull(rf))
        return 0;
    if (cm_json_str(rf, "type", &type) != CM_JSON_OK)
        return refuse(why, "response_format", "response_format needs a type string");
    if (strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") != 0 && strcmp(type, "json_schema") != 0)
        return refuse(why, "response_format", "response_format type '%.32s' is not supported", type);
    cJSON_AddStringToObject(g, "responseMimeType", "application/json");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    if (strcmp(type, "json_schema") == 0 && cJSON_IsObject(schema))
        cJSON_AddItemToObject(g, "responseJsonSchema", cJSON_Duplicate(schema, 1));
    return 0;
}

/* generationConfig: only the keys the client gave; none at all when none */
static int generation(const cJSON *req, bool stream, cJSON *root, rt_cloud_refusal_t *why)
{
    static const struct {
        const char *from, *to;
    } nums[] = { { "temperature", "temperature" },
                 { "top_p", "topP" },
                 { "top_k", "topK" },
                 { "n", "candidateCount" },
                 { "presence_penalty", "presencePenalty" },
                 { "frequency_penalty", "frequencyPenalty" },
                 { "seed", "seed" } };
    cJSON *g = cJSON_CreateObject(), *stops = NULL;
    long long mt;
    int rc;
    for (size_t i = 0; i < CM_ARRAY_LEN(nums); i++)
        if (copy_num(req, nums[i].from, g, nums[i].to, why) < 0)
            goto fail;
    if ((rc = max_tokens(req, &mt, why)) < 0)
        goto fail;
    if (rc == 1)
        cJSON_AddNumberToObject(g, "maxOutputTokens", (double)mt);
    if (stop_list(req, &stops, why) < 0)
        goto fail;
    if (stops)
        cJSON_AddItemToObject(g, "stopSequences", stops);
    if (response_format(req, g, why) < 0)
        goto fail;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(g, "candidateCount");
    if (stream && n && n->valuedouble > 1) { /* the chunk writer has one choice */
        refuse(why, "n", "n greater than 1 is not supported when streaming from Google models");
        goto fail;
    }
    if (g->child)
        cJSON_AddItemToObject(root, "generationConfig", g);
    else
        cJSON_Delete(g);
    return 0;
fail:
    cJSON_Delete(g);
    return -1;
}

static int declaration(const cJSON *t, cJSON *decls, rt_cloud_refusal_t *why)
{
    const char *type = NULL, *name = NULL, *desc = NULL;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    if (cm_json_str(t, "type", &type) != CM_JSON_OK || strcmp(type, "function") != 0)
        return refuse(why, "tools", "Only tools of type 'function' are supported for Google models");
    if (!cJSON_IsObject(fn) || cm_json_str(fn, "name", &name) != CM_JSON_OK || !*name)
        return refuse(why, "tools", "Each tool needs a function with a name");
    if (cm_json_str(fn, "description", &desc) == CM_JSON_TYPE)
        return refuse(why, "tools", "A tool's description must be a string");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
        return refuse(why, "tools", "A tool's parameters must be an object");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", name);
    if (desc)
        cJSON_AddStringToObject(d, "description", desc);
    if (cJSON_IsObject(params))
        cJSON_AddItemToObject(d, "parameters", cJSON_Duplicate(params, 1));
    cJSON_AddItemToArray(decls, d);
    return 0;
}

static int tools(const cJSON *req, cJSON *root, rt_cloud_refusal_t *why)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(req, "tools"), *t;
    if (!ts || cJSON_IsNull(ts))
        return 0;
    if (!cJSON_IsArray(ts))
        return refuse(why, "tools", "tools must be an array");
    cJSON *decls = cJSON_CreateArray();
    cJSON_ArrayForEach(t, ts) {
        if (declaration(t, decls, why) < 0) {
            cJSON_Delete(decls);
            return -1;
        }
    }
    if (!decls->child) {
        cJSON_Delete(decls);
        return 0;
    }
    cJSON *tool = cJSON_CreateObject();
    cJSON_AddItemToObject(tool, "functionDeclarations", decls);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "tools"), tool);
    return 0;
}

static int tool_choice(const cJSON *req, cJSON *root, rt_cloud_refusal_t *why)
{
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    const char *mode = NULL, *name = NULL, *type = NULL;
    if (!tc || cJSON_IsNull(tc))
        return 0;
    if (cJSON_IsString(tc)) {
        if (strcmp(tc->valuestring, "auto") == 0)
            mode = "AUTO";
        else if (strcmp(tc->valuestring, "none") == 0)
            mode = "NONE";
        else if (strcmp(tc->valuestring, "required") == 0)
            mode = "ANY";
    } else if (cm_json_str(tc, "type", &type) == CM_JSON_OK && strcmp(type, "function") == 0 &&
               cm_json_str(cJSON_GetObjectItemCaseSensitive(tc, "function"), "name", &name) == CM_JSON_OK) {
        mode = "ANY";
    }
    if (!mode)
        return refuse(why, "tool_choice", "tool_choice must be auto, none, required or a named function");
    cJSON *fcc = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "toolConfig"), "functionCallingConfig");
    cJSON_AddStringToObject(fcc, "mode", mode);
    if (name)
        cJSON_AddItemToArray(cJSON_AddArrayToObject(fcc, "allowedFunctionNames"), cJSON_CreateString(name));
    return 0;
}

int google_build(const cJSON *req, const char *name, rt_cloud_call_t *out, rt_cloud_refusal_t *why)
{
    conv_t cv = { .contents = cJSON_CreateArray(), .sys = cJSON_CreateArray() };
    cJSON *root = cJSON_CreateObject();
    int rc = -1;
    if (model_path(name, out->stream, out, why) < 0 || messages(req, &cv, why) < 0)
        goto out;
    if (cv.sys->child) {
        cJSON_AddItemToObject(cJSON_AddObjectToObject(root, "systemInstruction"), "parts", cv.sys);
        cv.sys = NULL;
    }
    cJSON_AddItemToObject(root, "contents", cv.contents);
    cv.contents = NULL;
    if (generation(req, out->stream, root, why) < 0 || tools(req, root, why) < 0 || tool_choice(req, root, why) < 0)
        goto out;
    out->body = cm_json_print(root);
    out->len = strlen(out->body);
    rc = 0;
out:
    if (rc < 0) {
        free(out->path);
        out->path = NULL;
    }
    cJSON_Delete(cv.contents);
    cJSON_Delete(cv.sys);
    cJSON_Delete(root);
    free(cv.calls.v);
    return rc;
}

/* ---- answers ---- */

const char *google_finish(const char *reason)
{
    static const char *const filtered[] = { "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                                            "IMAGE_SAFETY" };
    if (!reason)
        return "stop";
    if (strcmp(reason, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < CM_ARRAY_LEN(filtered); i++)
        if (strcmp(reason, filtered[i]) == 0)
            return "content_filter";
    return "stop"; /* STOP, MALFORMED_FUNCTION_CALL, and values newer than us */
}

/* usageMetadata: prompt, completion (thoughts count as completion: they
 * are billed as output), total (-1: not given). -1 when ill-typed. */
static int usage_of(const cJSON *root, int64_t *prompt, int64_t *completion, int64_t *total)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usageMetadata");
    int64_t p = 0, c = 0, th = 0, t = -1;
    *prompt = *completion = *total = -1;
    if (!u || cJSON_IsNull(u))
        return 0;
    if (!cJSON_IsObject(u) || get_count(u, "promptTokenCount", &p) < 0 ||
        get_count(u, "candidatesTokenCount", &c) < 0 || get_count(u, "thoughtsTokenCount", &th) < 0 ||
        get_count(u, "totalTokenCount", &t) < 0)
        return -1;
    *prompt = p, *completion = c + th, *total = t;
    return 1;
}

/* what a part is, after its types were checked */
enum { PART_SKIP, PART_TEXT, PART_CALL, PART_BAD };

static int part_kind(const cJSON *p)
{
    if (!cJSON_IsObject(p))
        return PART_BAD;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(p, "functionCall");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "thought")))
        return PART_SKIP; /* a thought summary is not the answer */
    if (fc) {
        const char *name = NULL;
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fc, "args");
        if (!cJSON_IsObject(fc) || cm_json_str(fc, "name", &name) != CM_JSON_OK || !*name ||
            (args && !cJSON_IsNull(args) && !cJSON_IsObject(args)))
            return PART_BAD;
        return PART_CALL;
    }
    if (text)
        return cJSON_IsString(text) ? PART_TEXT : PART_BAD;
    return PART_SKIP; /* inlineData, executableCode...: nothing OpenAI can carry */
}

/* a functionCall's arguments as OpenAI's string: printed args, "{}" when absent */
static char *call_args(const cJSON *fc)
{
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fc, "args");
    return cJSON_IsObject(args) ? cm_json_print(args) : cm_xstrdup("{}");
}

/* The candidate's parts (NULL when none), checked; -1 when ill-typed. */
static int candidate_parts(const cJSON *cand, const cJSON **parts, const char **finish)
{
    *parts = NULL;
    *finish = NULL;
    if (!cJSON_IsObject(cand) || cm_json_str(cand, "finishReason", finish) == CM_JSON_TYPE)
        return -1;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(cand, "content"), *p;
    if (!content || cJSON_IsNull(content))
        return 0; /* a safety stop has no content */
    if (!cJSON_IsObject(content))
        return -1;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(content, "parts");
    if (ps && !cJSON_IsNull(ps) && !cJSON_IsArray(ps))
        return -1;
    int calls = 0;
    cJSON_ArrayForEach(p, (cJSON_IsArray(ps) ? ps : NULL)) {
        int k = part_kind(p);
        if (k == PART_BAD || (k == PART_CALL && ++calls > RT_CLOUD_MAX_BLOCKS))
            return -1;
    }
    *parts = cJSON_IsArray(ps) ? ps : NULL;
    return 0;
}

/* the part of the completion id after "chatcmpl-": tool call ids made from
 * it are unique per answer, so a conversation's calls never collide */
static const char *id_suffix(const char *id)
{
    return strncmp(id, "chatcmpl-", 9) == 0 ? id + 9 : id;
}

static cJSON *tool_call_json(const cJSON *fc, int n, const char *suffix)
{
    char id[96];
    snprintf(id, sizeof(id), "call_%d_%.64s", n, suffix);
    char *args = call_args(fc);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "type", "function");
    cJSON *f = cJSON_AddObjectToObject(c, "function");
    cJSON_AddStringToObject(f, "name", cJSON_GetObjectItemCaseSensitive(fc, "name")->valuestring);
    cJSON_AddStringToObject(f, "arguments", args);
    free(args);
    return c;
}

/* one candidate as choice index; *ncalls numbers the tool calls across
 * candidates */
static cJSON *candidate_choice(const answer_ctx_t *a, const cJSON *cand, int index, int *ncalls)
{
    const cJSON *parts, *p;
    const char *reason;
    if (candidate_parts(cand, &parts, &reason) < 0)
        return NULL;
    cbuf_t text = { 0 };
    cJSON *calls = NULL;
    cJSON_ArrayForEach(p, parts) {
        int k = part_kind(p);
        if (k == PART_TEXT) {
            const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
            cb_put(&text, t, strlen(t));
        } else if (k == PART_CALL) {
            if (!calls)
                calls = cJSON_CreateArray();
            cJSON_AddItemToArray(calls, tool_call_json(cJSON_GetObjectItemCaseSensitive(p, "functionCall"),
                                                       (*ncalls)++, id_suffix(a->id)));
        }
    }
    cJSON *choice = answer_choice(a, index, text.p ? text.p : "", calls, calls ? "tool_calls" : google_finish(reason));
    cb_free(&text);
    return choice;
}

char *google_answer(const answer_ctx_t *a, const cJSON *body, char *err, size_t errlen)
{
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(body, "candidates"), *c;
    int64_t prompt, completion, total;
    const char *block = NULL;
    if (!cJSON_IsObject(body) || (cands && !cJSON_IsNull(cands) && !cJSON_IsArray(cands)) ||
        usage_of(body, &prompt, &completion, &total) < 0 ||
        cm_json_str(cJSON_GetObjectItemCaseSensitive(body, "promptFeedback"), "blockReason", &block) ==
            CM_JSON_TYPE) {
        snprintf(err, errlen, "Google answered a GenerateContentResponse of the wrong shape");
        return NULL;
    }
    int n = cJSON_IsArray(cands) ? cJSON_GetArraySize(cands) : 0, index = 0, ncalls = 0;
    if (n == 0 && !block) {
        snprintf(err, errlen, "Google answered no candidates and no block reason");
        return NULL;
    }
    cJSON *root = answer_head(a), *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    if (!choices)
        choices = cJSON_AddArrayToObject(root, "choices");
    if (n == 0) /* the prompt was blocked */
        cJSON_AddItemToArray(choices, answer_choice(a, 0, "", NULL, "content_filter"));
    cJSON_ArrayForEach(c, (n ? cands : NULL)) {
        cJSON *choice = candidate_choice(a, c, index++, &ncalls);
        if (!choice) {
            cJSON_Delete(root);
            snprintf(err, errlen, "Google answered a candidate of the wrong shape");
            return NULL;
        }
        cJSON_AddItemToArray(choices, choice);
    }
    prompt = prompt < 0 ? 0 : prompt;
    completion = completion < 0 ? 0 : completion;
    answer_usage(root, prompt, completion, total >= 0 ? total : prompt + completion);
    char *s = cm_json_print(root);
    cJSON_Delete(root);
    return s;
}

/* ---- stream events ---- */

/* the completion id's suffix from the chunk head ({"id":"chatcmpl-...",),
 * kept to the bytes an id needs */
static void stream_suffix(const rt_cloud_stream_t *s, char *buf, size_t cap)
{
    const char *p = s->head ? strstr(s->head, "\"id\":\"") : NULL;
    size_t n = 0;
    if (p) {
        p = id_suffix(p + 6);
        while (n + 1 < cap && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                               *p == '-' || *p == '_'))
            buf[n++] = *p++;
    }
    buf[n] = '\0';
}

/* Gemini's status names, for the error type when the code is missing */
static int status_http(const char *status)
{
    static const struct {
        const char *name;
        int http;
    } t[] = { { "INVALID_ARGUMENT", 400 },  { "FAILED_PRECONDITION", 400 }, { "OUT_OF_RANGE", 400 },
              { "UNAUTHENTICATED", 401 },   { "PERMISSION_DENIED", 403 },   { "NOT_FOUND", 404 },
              { "RESOURCE_EXHAUSTED", 429 }, { "CANCELLED", 499 },          { "UNAVAILABLE", 503 },
              { "DEADLINE_EXCEEDED", 504 } };
    for (size_t i = 0; status && i < CM_ARRAY_LEN(t); i++)
        if (strcmp(status, t[i].name) == 0)
            return t[i].http;
    return 0;
}

static int stream_error(rt_cloud_stream_t *s, const cJSON *e)
{
    const char *status = NULL, *msg = NULL;
    int64_t code = 0;
    char codebuf[64] = "upstream_error";
    if (cJSON_IsObject(e)) {
        cm_json_str(e, "status", &status);
        cm_json_str(e, "message", &msg);
        get_count(e, "code", &code);
    }
    /* the code first, as for a JSON error body (cloud_stream.c's raw_error) */
    int http = code >= 400 && code < 600 ? (int)code : status_http(status);
    if (!http)
        http = 500;
    if (status && *status)
        cm_utf8_sanitize(codebuf, sizeof(codebuf), status, strlen(status));
    emit_error(s, error_type(http), codebuf, "%s", msg && *msg ? msg : "Google reported an error in the stream");
    return 1;
}

static int malformed(rt_cloud_stream_t *s, const char *what)
{
    emit_error(s, "server_error", "upstream_malformed", "Google sent %s", what);
    return 1;
}

static int stream_parts(rt_cloud_stream_t *s, const cJSON *parts)
{
    const cJSON *p;
    char suffix[72], id[96];
    cJSON_ArrayForEach(p, parts) {
        int k = part_kind(p);
        if (k == PART_TEXT) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
            emit_text(s, t->valuestring, strlen(t->valuestring));
        } else if (k == PART_CALL) {
            if (s->ntools >= RT_CLOUD_MAX_BLOCKS)
                return malformed(s, "more tool calls than the router takes in one answer");
            const cJSON *fc = cJSON_GetObjectItemCaseSensitive(p, "functionCall");
            char *args = call_args(fc);
            stream_suffix(s, suffix, sizeof(suffix));
            snprintf(id, sizeof(id), "call_%d_%s", s->ntools, suffix);
            emit_tool_start(s, s->ntools, id, cJSON_GetObjectItemCaseSensitive(fc, "name")->valuestring, args,
                            strlen(args));
            s->ntools++;
            free(args);
        }
    }
    return 0;
}

static int stream_json(rt_cloud_stream_t *s, const cJSON *j)
{
    if (!cJSON_IsObject(j))
        return malformed(s, "an event that is not a JSON object");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e && !cJSON_IsNull(e))
        return stream_error(s, e);
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(j, "candidates"), *parts = NULL;
    const char *reason = NULL, *block = NULL;
    int64_t p, c, t;
    int u = usage_of(j, &p, &c, &t);
    if ((cands && !cJSON_IsNull(cands) && !cJSON_IsArray(cands)) || u < 0 ||
        cm_json_str(cJSON_GetObjectItemCaseSensitive(j, "promptFeedback"), "blockReason", &block) == CM_JSON_TYPE)
        return malformed(s, "an event of the wrong shape");
    const cJSON *cand = cJSON_IsArray(cands) ? cands->child : NULL; /* one choice: n > 1 is refused */
    if (cand && candidate_parts(cand, &parts, &reason) < 0)
        return malformed(s, "a candidate of the wrong shape");
    if (stream_parts(s, parts))
        return 1;
    if (reason)
        s->finish = google_finish(reason);
    else if (!cand && block)
        s->finish = "content_filter";
    if (s->finish && s->ntools > 0)
        s->finish = "tool_calls";
    if (u == 1) { /* cumulative: the last one wins */
        s->prompt = p;
        s->completion = c;
        s->total = t;
    }
    return 0;
}

int google_event(rt_cloud_stream_t *s, const cm_sse_event_t *ev)
{
    int fast = google_fast(s, ev);
    if (fast != FAST_NO)
        return fast;
    if (ev->data_len == 0)
        return 0; /* a keep-alive */
    cJSON *j = cm_json_parse(ev->data, ev->data_len);
    int rc = j ? stream_json(s, j) : malformed(s, "an event that is not JSON");
    cJSON_Delete(j);
    return rc;
}
