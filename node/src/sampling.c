#include "sampling.h"

#include "json.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- request parameters ---- */

typedef struct {
    const cJSON *body;
    char *param;
    size_t paramlen;
    char *err;
    size_t errlen;
} parse_t;

static int fail(parse_t *p, const char *name, const char *msg)
{
    snprintf(p->param, p->paramlen, "%s", name);
    snprintf(p->err, p->errlen, "%s", msg);
    return -1;
}

/* A number within [lo, hi]; absent leaves *out untouched. */
static int num(parse_t *p, const char *name, float lo, float hi, float *out)
{
    double d;
    int rc = cm_json_num(p->body, name, &d);
    if (rc == CM_JSON_ABSENT)
        return 0;
    char msg[160];
    if (rc != CM_JSON_OK || d < lo || d > hi) {
        snprintf(msg, sizeof(msg), "'%s' must be a number between %g and %g", name, lo, hi);
        return fail(p, name, msg);
    }
    *out = (float)d;
    return 0;
}

static int integer(parse_t *p, const char *name, long long lo, long long hi, long long *out)
{
    int rc = cm_json_int(p->body, name, out);
    if (rc == CM_JSON_ABSENT)
        return 1;
    char msg[160];
    if (rc != CM_JSON_OK || *out < lo || *out > hi) {
        snprintf(msg, sizeof(msg), "'%s' must be an integer between %lld and %lld", name, lo, hi);
        return fail(p, name, msg);
    }
    return 0;
}

static int parse_stop(parse_t *p, nd_sampling_t *sp)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p->body, "stop");
    if (!st || cJSON_IsNull(st))
        return 0;
    if (cJSON_IsString(st)) {
        if (strlen(st->valuestring) == 0 || strlen(st->valuestring) > ND_MAX_STOP_LEN)
            return fail(p, "stop", "'stop' strings must have 1 to 256 bytes");
        sp->stop[sp->nstop++] = cm_xstrdup(st->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(st) || cJSON_GetArraySize(st) > ND_MAX_STOP)
        return fail(p, "stop", "'stop' must be a string or an array of at most 4 strings");
    const cJSON *it;
    cJSON_ArrayForEach(it, st) {
        if (!cJSON_IsString(it) || strlen(it->valuestring) == 0 ||
            strlen(it->valuestring) > ND_MAX_STOP_LEN)
            return fail(p, "stop", "'stop' strings must have 1 to 256 bytes");
        sp->stop[sp->nstop++] = cm_xstrdup(it->valuestring);
    }
    return 0;
}

static int parse_bias(parse_t *p, nd_sampling_t *sp)
{
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(p->body, "logit_bias");
    if (!lb || cJSON_IsNull(lb))
        return 0;
    if (!cJSON_IsObject(lb) || cJSON_GetArraySize(lb) > ND_MAX_BIAS)
        return fail(p, "logit_bias", "'logit_bias' must be an object of at most 1024 token ids");
    sp->bias = cm_xcalloc((size_t)cJSON_GetArraySize(lb) + 1, sizeof(nd_bias_t));
    const cJSON *it;
    cJSON_ArrayForEach(it, lb) {
        char *end;
        long tok = strtol(it->string, &end, 10);
        if (*it->string == '\0' || *end != '\0' || tok < 0 || tok > INT32_MAX ||
            !cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < -100 ||
            it->valuedouble > 100)
            return fail(p, "logit_bias", "'logit_bias' maps token ids to numbers between -100 and 100");
        sp->bias[sp->nbias].token = (int32_t)tok;
        /* OpenAI: -100 bans the token, 100 forces it */
        sp->bias[sp->nbias].bias = it->valuedouble <= -100 ? -INFINITY : (float)it->valuedouble;
        sp->nbias++;
    }
    return 0;
}

static int parse_limits(parse_t *p, nd_sampling_t *sp)
{
    long long v;
    int rc = integer(p, "max_completion_tokens", 0, 1 << 24, &v);
    if (rc == 1)
        rc = integer(p, "max_tokens", 0, 1 << 24, &v);
    if (rc < 0)
        return -1;
    if (rc == 0)
        sp->max_tokens = (int)v;
    if ((rc = integer(p, "n", 1, 1, &v)) < 0) {
        snprintf(p->err, p->errlen, "only n=1 is supported");
        return -1;
    }
    if ((rc = integer(p, "seed", INT64_MIN / 2, INT64_MAX / 2, &v)) < 0)
        return -1;
    if (rc == 0) {
        sp->has_seed = true;
        sp->seed = (uint32_t)((uint64_t)v & 0xffffffffu);
    }
    if ((rc = integer(p, "top_k", 0, 1 << 20, &v)) < 0)
        return -1;
    if (rc == 0)
        sp->top_k = (int)v;
    if ((rc = integer(p, "repeat_last_n", 0, 1 << 16, &v)) < 0)
        return -1;
    if (rc == 0)
        sp->repeat_last_n = (int)v;
    return 0;
}

static int parse_stream(parse_t *p, nd_sampling_t *sp)
{
    if (cm_json_bool(p->body, "stream", &sp->stream) == CM_JSON_TYPE)
        return fail(p, "stream", "'stream' must be a boolean");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(p->body, "stream_options");
    if (!so || cJSON_IsNull(so))
        return 0;
    if (!cJSON_IsObject(so) || cm_json_bool(so, "include_usage", &sp->include_usage) == CM_JSON_TYPE)
        return fail(p, "stream_options", "'stream_options' must be an object with a boolean include_usage");
    return 0;
}

int nd_sampling_parse(const cJSON *body, nd_sampling_t *sp, char *param, size_t paramlen,
                      char *err, size_t errlen)
{
    memset(sp, 0, sizeof(*sp));
    sp->temperature = 1.0f;
    sp->top_p = 1.0f;
    sp->repeat_penalty = 1.0f;
    sp->repeat_last_n = 64;
    sp->max_tokens = -1;
    parse_t p = { body, param, paramlen, err, errlen };
    if (num(&p, "temperature", 0, 2, &sp->temperature) || num(&p, "top_p", 0, 1, &sp->top_p) ||
        num(&p, "min_p", 0, 1, &sp->min_p) ||
        num(&p, "presence_penalty", -2, 2, &sp->presence_penalty) ||
        num(&p, "frequency_penalty", -2, 2, &sp->frequency_penalty) ||
        num(&p, "repeat_penalty", 0.01f, 10, &sp->repeat_penalty) ||
        num(&p, "repetition_penalty", 0.01f, 10, &sp->repeat_penalty))
        return -1;
    if (parse_limits(&p, sp) || parse_stop(&p, sp) || parse_bias(&p, sp) || parse_stream(&p, sp))
        return -1;
    return 0;
}

void nd_sampling_free(nd_sampling_t *sp)
{
    for (int i = 0; i < sp->nstop; i++)
        free(sp->stop[i]);
    free(sp->bias);
    sp->nstop = 0;
    sp->bias = NULL;
    sp->nbias = 0;
}

/* ---- UTF-8 assembly ---- */

static void append(char **out, size_t *outlen, const void *data, size_t n)
{
    *out = cm_xrealloc(*out, *outlen + n + 1);
    memcpy(*out + *outlen, data, n);
    *outlen += n;
    (*out)[*outlen] = '\0';
}

/* Each byte is judged by the one decoder, cm_utf8_seq, on the held bytes plus
 * the new one: incomplete is held, complete goes out, broken is replaced. */
void nd_utf8_feed(nd_utf8_t *u, const char *in, size_t len, char **out, size_t *outlen)
{
    if (!*out)
        append(out, outlen, "", 0);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)in[k];
        if (u->nheld > 0) {
            u->held[u->nheld] = c; /* nheld <= 3: a 4-byte sequence completes at 4 */
            int n = cm_utf8_seq(u->held, (size_t)u->nheld + 1);
            if (n == CM_UTF8_INCOMPLETE) {
                u->nheld++;
                continue;
            }
            if (n > 0) { /* c completed it */
                append(out, outlen, u->held, (size_t)n);
                u->nheld = 0;
                continue;
            }
            /* broken sequence: replace what was held, then treat c afresh */
            append(out, outlen, CM_UTF8_REPLACEMENT, CM_UTF8_REPLACEMENT_LEN);
            u->nheld = 0;
        }
        int n = cm_utf8_seq(&c, 1);
        if (n == 1)
            append(out, outlen, &c, 1);
        else if (n == 0)
            append(out, outlen, CM_UTF8_REPLACEMENT, CM_UTF8_REPLACEMENT_LEN);
        else
            u->held[u->nheld++] = c;
    }
}

void nd_utf8_flush(nd_utf8_t *u, char **out, size_t *outlen)
{
    if (!*out)
        append(out, outlen, "", 0);
    if (u->nheld > 0)
        append(out, outlen, CM_UTF8_REPLACEMENT, CM_UTF8_REPLACEMENT_LEN);
    u->nheld = 0;
}

/* ---- stop strings ---- */

void nd_stop_init(nd_stop_t *s, const char *const *stop, int nstop)
{
    memset(s, 0, sizeof(*s));
    s->stop = stop;
    s->nstop = nstop;
}

void nd_stop_free(nd_stop_t *s)
{
    free(s->pending);
    s->pending = NULL;
    s->npending = 0;
}

/* Length of the longest suffix of buf that is a proper prefix of a stop string. */
static size_t held_suffix(const nd_stop_t *s, const char *buf, size_t n)
{
    size_t best = 0;
    for (int i = 0; i < s->nstop; i++) {
        size_t sl = strlen(s->stop[i]);
        size_t max = sl - 1 < n ? sl - 1 : n;
        for (size_t k = max; k > best; k--) {
            if (memcmp(buf + n - k, s->stop[i], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

bool nd_stop_feed(nd_stop_t *s, const char *text, size_t len, char **emit, size_t *emitlen)
{
    s->pending = cm_xrealloc(s->pending, s->npending + len + 1);
    memcpy(s->pending + s->npending, text, len);
    s->npending += len;
    s->pending[s->npending] = '\0';
    /* earliest match of any stop string */
    size_t cut = SIZE_MAX;
    for (int i = 0; i < s->nstop; i++) {
        char *m = memmem(s->pending, s->npending, s->stop[i], strlen(s->stop[i]));
        if (m && (size_t)(m - s->pending) < cut)
            cut = (size_t)(m - s->pending);
    }
    if (cut != SIZE_MAX) {
        *emit = cm_xstrndup(s->pending, cut);
        *emitlen = cut;
        s->npending = 0;
        return true;
    }
    size_t keep = held_suffix(s, s->pending, s->npending);
    size_t n = s->npending - keep;
    *emit = cm_xstrndup(s->pending, n);
    *emitlen = n;
    memmove(s->pending, s->pending + n, keep + 1);
    s->npending = keep;
    return false;
}

char *nd_stop_flush(nd_stop_t *s, size_t *len)
{
    char *r = cm_xstrndup(s->pending ? s->pending : "", s->npending);
    *len = s->npending;
    s->npending = 0;
    return r;
}

/* ---- text pipeline ---- */

void nd_text_init(nd_text_t *t, const char *const *stop, int nstop)
{
    memset(&t->u8, 0, sizeof(t->u8));
    nd_stop_init(&t->stop, stop, nstop);
}

void nd_text_free(nd_text_t *t)
{
    nd_stop_free(&t->stop);
}

bool nd_text_feed(nd_text_t *t, const char *bytes, size_t len, char **emit, size_t *emitlen)
{
    char *u = NULL;
    size_t ul = 0;
    nd_utf8_feed(&t->u8, bytes, len, &u, &ul);
    bool stopped = nd_stop_feed(&t->stop, u, ul, emit, emitlen);
    free(u);
    return stopped;
}

bool nd_text_flush(nd_text_t *t, char **emit, size_t *emitlen)
{
    char *u = NULL;
    size_t ul = 0;
    nd_utf8_flush(&t->u8, &u, &ul);
    bool stopped = nd_stop_feed(&t->stop, u, ul, emit, emitlen);
    free(u);
    if (!stopped) {
        size_t n;
        char *rest = nd_stop_flush(&t->stop, &n);
        *emit = cm_xrealloc(*emit, *emitlen + n + 1);
        memcpy(*emit + *emitlen, rest, n + 1);
        *emitlen += n;
        free(rest);
    }
    return stopped;
}
