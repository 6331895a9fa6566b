/* cloud_embed: OpenAI /v1/embeddings as Gemini's embedContent (one string)
 * and batchEmbedContents (an array of strings), and their answers back as
 * OpenAI's embeddings list (wire-formats.md 2.5 and 3.3). The vectors go
 * out as JSON numbers, or with encoding_format "base64" as the base64 of
 * their little-endian float32 bytes (what the openai SDKs ask for by
 * default). Token arrays are refused: Gemini takes text only. */
#include "cloud/cloud_int.h"

#include "json.h"
#include "util.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MAX 128
#define MAX_INPUTS 2048  /* OpenAI's own bound on one request's inputs */
#define MAX_VALUES 65536 /* one vector's dimensions */

/* As cloud_google.c: the name goes into the URL path unescaped. */
static int model_ok(const char *name, rt_cloud_refusal_t *why)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= MODEL_MAX && !strstr(name, "..");
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
             c == '-';
    }
    return ok ? 0
              : refuse(why, "model", "The Google model name must be 1-%d bytes of A-Z a-z 0-9 . _ -", MODEL_MAX);
}

/* {"model":"models/<name>","content":{"parts":[{"text"}]}[,"outputDimensionality"]} */
static cJSON *embed_request(const char *name, const char *text, long long dims)
{
    cJSON *r = cJSON_CreateObject();
    char *model = cm_xasprintf("models/%s", name);
    cJSON_AddStringToObject(r, "model", model);
    free(model);
    cJSON *part = cJSON_CreateObject();
    cJSON_AddStringToObject(part, "text", text);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(r, "content"), "parts"), part);
    if (dims > 0)
        cJSON_AddNumberToObject(r, "outputDimensionality", (double)dims);
    return r;
}

int google_embed_build(const cJSON *req, const char *name, rt_cloud_call_t *out, rt_cloud_refusal_t *why)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(req, "input"), *it;
    long long dims = 0;
    int dr = cm_json_int(req, "dimensions", &dims);
    if (model_ok(name, why) < 0)
        return -1;
    if (dr == CM_JSON_TYPE || (dr == CM_JSON_OK && (dims < 1 || dims > MAX_VALUES)))
        return refuse(why, "dimensions", "dimensions must be an integer from 1 to %d", MAX_VALUES);
    cJSON *root;
    if (cJSON_IsString(in)) {
        root = embed_request(name, in->valuestring, dims);
        out->inputs = 1;
        out->path = cm_xasprintf("/models/%s:embedContent", name);
    } else if (cJSON_IsArray(in)) {
        int n = cJSON_GetArraySize(in);
        if (n == 0 || n > MAX_INPUTS)
            return refuse(why, "input", "input must hold 1 to %d strings", MAX_INPUTS);
        cJSON_ArrayForEach(it, in) {
            if (!cJSON_IsString(it))
                return refuse(why, "input", "Google embedding models take text only: input must be a string or an "
                                            "array of strings (no token arrays)");
        }
        root = cJSON_CreateObject();
        cJSON *reqs = cJSON_AddArrayToObject(root, "requests");
        cJSON_ArrayForEach(it, in)
            cJSON_AddItemToArray(reqs, embed_request(name, it->valuestring, dims));
        out->inputs = n;
        out->path = cm_xasprintf("/models/%s:batchEmbedContents", name);
    } else {
        return refuse(why, "input", "input must be a string or an array of strings");
    }
    out->body = cm_json_print(root);
    out->len = strlen(out->body);
    cJSON_Delete(root);
    return 0;
}

/* the shortest of %.15g / %.17g that reads back as the same double: the
 * client gets exactly the provider's value */
static void put_double(cbuf_t *b, double d)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d)
        n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    cb_put(b, tmp, (size_t)n);
}

/* the values as base64 of little-endian float32 bytes; -1 when one does
 * not fit a float */
static int put_base64(cbuf_t *b, const cJSON *values, int n)
{
    size_t len = (size_t)n * 4, i = 0;
    unsigned char *bin = cm_xmalloc(len);
    const cJSON *v;
    cJSON_ArrayForEach(v, values) {
        float f = (float)v->valuedouble;
        uint32_t u;
        if (!isfinite(f)) {
            free(bin);
            return -1;
        }
        memcpy(&u, &f, 4);
        for (int k = 0; k < 4; k++)
            bin[i++] = (unsigned char)(u >> (8 * k));
    }
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *txt = cm_xmalloc(cap);
    sodium_bin2base64(txt, cap, bin, len, sodium_base64_VARIANT_ORIGINAL);
    cb_put(b, "\"", 1);
    cb_lit(b, txt);
    cb_put(b, "\"", 1);
    free(txt);
    free(bin);
    return 0;
}

/* one {"values":[...]} as an OpenAI embedding object; -1 when malformed */
static int put_vector(cbuf_t *b, const cJSON *e, int index, bool base64)
{
    const cJSON *values = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "values") : NULL, *v;
    int n = 0;
    if (!cJSON_IsArray(values))
        return -1;
    cJSON_ArrayForEach(v, values) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || ++n > MAX_VALUES)
            return -1;
    }
    if (n == 0)
        return -1;
    if (index)
        cb_put(b, ",", 1);
    cb_lit(b, "{\"object\":\"embedding\",\"index\":");
    cb_int(b, index);
    cb_lit(b, ",\"embedding\":");
    if (base64) {
        if (put_base64(b, values, n) < 0)
            return -1;
    } else {
        cb_put(b, "[", 1);
        cJSON_ArrayForEach(v, values) {
            if (v != values->child)
                cb_put(b, ",", 1);
            put_double(b, v->valuedouble);
        }
        cb_put(b, "]", 1);
    }
    cb_put(b, "}", 1);
    return 0;
}

/* Written by hand: a batch of 2048 vectors of 3072 values would be six
 * million cJSON nodes. */
char *google_embed_answer(const answer_ctx_t *a, const cJSON *body, char *err, size_t errlen)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "embeddings");
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(body, "embedding"), *e;
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : cJSON_IsObject(one) ? 1 : -1;
    if (!cJSON_IsObject(body) || n < 0) {
        snprintf(err, errlen, "Google answered no embeddings");
        return NULL;
    }
    if (n != a->call->inputs) {
        snprintf(err, errlen, "Google answered %d embeddings for %d inputs", n, a->call->inputs);
        return NULL;
    }
    cbuf_t b = { 0 };
    int i = 0;
    cb_lit(&b, "{\"object\":\"list\",\"data\":[");
    if (cJSON_IsArray(list)) {
        cJSON_ArrayForEach(e, list) {
            if (put_vector(&b, e, i, a->call->base64) < 0)
                goto bad;
            i++;
        }
    } else if (put_vector(&b, one, 0, a->call->base64) < 0) {
        goto bad;
    }
    cb_lit(&b, "],\"model\":");
    cb_jstr(&b, a->model, strlen(a->model));
    cb_lit(&b, ",\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}");
    return b.p;
bad:
    cb_free(&b);
    snprintf(err, errlen, "Google answered an embedding that is not 1 to %d finite numbers", MAX_VALUES);
    return NULL;
}
