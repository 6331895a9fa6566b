/* cloud_msg: reading the client's OpenAI request for the translations
 * (content parts, image URLs, stop lists, token limits, tool calls) and the
 * refusals of what a provider cannot take. Every reader checks types: the
 * client's body is hostile like any other input. */
#include "cloud/cloud_int.h"

#include "json.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STOP 64 /* stop sequences kept (OpenAI allows 4, Anthropic more) */

char *msg_text(const cJSON *content, const char *what, rt_cloud_refusal_t *why)
{
    if (!content || cJSON_IsNull(content))
        return cm_xstrdup("");
    if (cJSON_IsString(content))
        return cm_xstrdup(content->valuestring);
    if (!cJSON_IsArray(content)) {
        refuse(why, "messages", "%s: content must be a string or an array of content parts", what);
        return NULL;
    }
    cbuf_t b = { 0 };
    cb_put(&b, "", 0);
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const char *type, *text;
        if (cm_json_str(part, "type", &type) != CM_JSON_OK || strcmp(type, "text") != 0 ||
            cm_json_str(part, "text", &text) != CM_JSON_OK) {
            cb_free(&b);
            refuse(why, "messages", "%s: only text content parts are supported here", what);
            return NULL;
        }
        if (b.len && *text)
            cb_put(&b, "\n", 1);
        cb_lit(&b, text);
    }
    return b.p;
}

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int image_url(const cJSON *part, image_ref_t *img, rt_cloud_refusal_t *why)
{
    memset(img, 0, sizeof(*img));
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const char *url = NULL;
    if (cJSON_IsString(iu))
        url = iu->valuestring;
    else if (cm_json_str(iu, "url", &url) != CM_JSON_OK)
        url = NULL;
    if (!url)
        return refuse(why, "messages", "An image_url content part needs image_url.url (a string)");
    img->url = url;
    if (has_prefix(url, "data:")) {
        const char *mime = url + 5, *semi = strchr(mime, ';'), *comma = strchr(mime, ',');
        if (!semi || !comma || semi > comma || strncmp(semi, ";base64,", 8) != 0 || semi == mime)
            return refuse(why, "messages", "An image data URL must be data:<media type>;base64,<data>");
        img->is_data = true;
        img->mime = mime;
        img->mime_len = (size_t)(semi - mime);
        img->data = comma + 1;
        img->data_len = strlen(comma + 1);
        if (!img->data_len)
            return refuse(why, "messages", "An image data URL carries no data");
        return 0;
    }
    if (has_prefix(url, "https://") || has_prefix(url, "http://"))
        return 0;
    return refuse(why, "messages", "An image URL must be an http(s):// URL or a base64 data: URL");
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

int stop_list(const cJSON *req, cJSON **out, rt_cloud_refusal_t *why)
{
    *out = NULL;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (!st || cJSON_IsNull(st))
        return 0;
    cJSON *list = cJSON_CreateArray();
    if (cJSON_IsString(st)) {
        if (!blank(st->valuestring))
            cJSON_AddItemToArray(list, cJSON_CreateString(st->valuestring));
    } else if (cJSON_IsArray(st)) {
        const cJSON *s;
        int n = 0;
        cJSON_ArrayForEach(s, st) {
            if (!cJSON_IsString(s)) {
                cJSON_Delete(list);
                return refuse(why, "stop", "'stop' must be a string or an array of strings");
            }
            if (!blank(s->valuestring) && n++ < MAX_STOP)
                cJSON_AddItemToArray(list, cJSON_CreateString(s->valuestring));
        }
    } else {
        cJSON_Delete(list);
        return refuse(why, "stop", "'stop' must be a string or an array of strings");
    }
    if (cJSON_GetArraySize(list) == 0)
        cJSON_Delete(list), list = NULL;
    *out = list;
    return 0;
}

int max_tokens(const cJSON *req, long long *v, rt_cloud_refusal_t *why)
{
    static const char *const keys[] = { "max_completion_tokens", "max_tokens" };
    for (size_t i = 0; i < CM_ARRAY_LEN(keys); i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(req, keys[i]);
        if (!it || cJSON_IsNull(it))
            continue;
        long long n;
        if (cm_json_int(req, keys[i], &n) != CM_JSON_OK || n < 1 || n > 100000000)
            return refuse(why, keys[i], "'%s' must be a positive integer", keys[i]);
        *v = n;
        return 1;
    }
    return 0;
}

int copy_num(const cJSON *req, const char *key, cJSON *dst, const char *dkey, rt_cloud_refusal_t *why)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(req, key);
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it))
        return refuse(why, key, "'%s' must be a number", key);
    cJSON_AddNumberToObject(dst, dkey, it->valuedouble);
    return 0;
}

int tool_call(const cJSON *call, tool_call_t *tc, rt_cloud_refusal_t *why)
{
    memset(tc, 0, sizeof(*tc));
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    const char *args = NULL;
    if (cm_json_str(call, "id", &tc->id) != CM_JSON_OK || !*tc->id)
        return refuse(why, "messages", "An assistant tool call needs an id (a string)");
    if (cm_json_str(fn, "name", &tc->name) != CM_JSON_OK || !*tc->name)
        return refuse(why, "messages", "An assistant tool call needs function.name (a string)");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if (cJSON_IsString(a))
        args = a->valuestring;
    else if (a && !cJSON_IsNull(a))
        return refuse(why, "messages", "A tool call's function.arguments must be a JSON string");
    if (!args || blank(args)) {
        tc->args = cJSON_CreateObject();
        return 0;
    }
    tc->args = cm_json_parse(args, strlen(args));
    if (!cJSON_IsObject(tc->args)) {
        cJSON_Delete(tc->args);
        tc->args = NULL;
        return refuse(why, "messages", "The arguments of tool call '%.64s' are not a JSON object", tc->id);
    }
    return 0;
}

cJSON *completion_as_chat(const cJSON *req, rt_cloud_refusal_t *why)
{
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(req, "prompt");
    if (cJSON_IsArray(prompt) && cJSON_GetArraySize(prompt) == 1)
        prompt = cJSON_GetArrayItem(prompt, 0);
    if (!cJSON_IsString(prompt)) {
        refuse(why, "prompt", "'prompt' must be one string for cloud models");
        return NULL;
    }
    cJSON *chat = cJSON_Duplicate(req, 1);
    cJSON *msgs = cJSON_CreateArray();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", prompt->valuestring);
    cJSON_AddItemToArray(msgs, m);
    static const char *const drop[] = { "prompt", "messages", "suffix", "echo", "best_of", "logprobs", "tools",
                                        "tool_choice" };
    for (size_t i = 0; i < CM_ARRAY_LEN(drop); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(chat, drop[i]);
    cJSON_AddItemToObject(chat, "messages", msgs);
    return chat;
}
