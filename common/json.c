#include "json.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static const cJSON *item(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (it && !cJSON_IsNull(it)) ? it : NULL;
}

int cm_json_str(const cJSON *obj, const char *key, const char **out)
{
    const cJSON *it = item(obj, key);
    if (!it)
        return CM_JSON_ABSENT;
    if (!cJSON_IsString(it))
        return CM_JSON_TYPE;
    *out = it->valuestring;
    return CM_JSON_OK;
}

int cm_json_num(const cJSON *obj, const char *key, double *out)
{
    const cJSON *it = item(obj, key);
    if (!it)
        return CM_JSON_ABSENT;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return CM_JSON_TYPE;
    *out = it->valuedouble;
    return CM_JSON_OK;
}

int cm_json_int(const cJSON *obj, const char *key, long long *out)
{
    double d;
    int rc = cm_json_num(obj, key, &d);
    if (rc != CM_JSON_OK)
        return rc;
    if (d != floor(d) || d < -9.0e15 || d > 9.0e15)
        return CM_JSON_TYPE;
    *out = (long long)d;
    return CM_JSON_OK;
}

int cm_json_bool(const cJSON *obj, const char *key, bool *out)
{
    const cJSON *it = item(obj, key);
    if (!it)
        return CM_JSON_ABSENT;
    if (!cJSON_IsBool(it))
        return CM_JSON_TYPE;
    *out = cJSON_IsTrue(it);
    return CM_JSON_OK;
}

/* True when some byte of the word w is below 0x20 or is '\\': the bytes
 * the scan below must look at (quotes need no look until a control byte
 * asks whether it is inside a string). */
static bool word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t ctl = (w - ones * 0x20) & ~w & highs;
    uint64_t b = w ^ (ones * '\\');
    return (ctl | ((b - ones) & ~b & highs)) != 0;
}

typedef signed char cm_v16s __attribute__((vector_size(16)));

/* The bytes of the 16 at p that the scan must look at: below 0x20, at or
 * above 0x80 (both below 0x20 as signed bytes: one compare) or '\\' (GCC and
 * clang vector extensions: SIMD where the target has it, plain code
 * elsewhere). */
static inline cm_v16s block_special(const unsigned char *p)
{
    cm_v16s v;
    memcpy(&v, p, 16);
    return (v < 0x20) | (v == '\\');
}

static inline bool block_none(cm_v16s bad)
{
    uint64_t a, b;
    memcpy(&a, &bad, 8);
    memcpy(&b, (const char *)&bad + 8, 8);
    return (a | b) == 0;
}

/* Whether s[upto] lies inside a string, scanning on from the last answer
 * (*at, *in): each byte is scanned at most once over a whole document, and
 * only documents with \t \n \r in them (pretty-printed ones) need it. */
static bool inside_string(const unsigned char *s, size_t upto, size_t *at, bool *in)
{
    size_t i = *at;
    bool str = *in;
    while (i < upto) {
        if (s[i] == '"')
            str = !str;
        else if (s[i] == '\\' && str)
            i++; /* the escaped byte: a quote there does not end the string */
        i++;
    }
    *at = i;
    *in = str;
    return str;
}

/* What cJSON lets through and the router must not (one pass, before cJSON's
 * own): bytes that are not UTF-8 (RFC 8259; cJSON copies any byte), control
 * bytes U+0000-U+001F unescaped inside a string (cJSON copies them) or
 * outside one other than \t \n \r (cJSON takes any byte below 0x21 for
 * space), and the escape \u0000 (cJSON stops the C string there, so
 * "a\u0000b" would become "a": a user "a", a model "tiny" for
 * "tiny\u0000evil"). Plain ASCII goes 64 bytes a step, quotes included:
 * a compact body costs about half an instruction per byte. */
bool cm_json_bytes_ok(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, at = 0;
    bool in = false;
    while (i < len) {
        /* 64 bytes a step (four compares folded into one test), then 16 */
        while (i + 64 <= len && block_none(block_special(s + i) | block_special(s + i + 16) |
                                           block_special(s + i + 32) | block_special(s + i + 48)))
            i += 64;
        while (i + 16 <= len && block_none(block_special(s + i)))
            i += 16;
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) || word_special(w))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        unsigned char c = s[i];
        if (c >= 0x80) {
            int n = cm_utf8_seq(s + i, len - i);
            if (n <= 0) /* invalid, or cut off by the end */
                return false;
            i += (size_t)n;
            continue;
        }
        if (c < 0x20) {
            if ((c != '\t' && c != '\n' && c != '\r') || inside_string(s, i, &at, &in))
                return false;
        } else if (c == '\\') {
            /* backslashes are met in order, so this one starts an escape (or
             * stands outside a string, which cJSON refuses) */
            if (i + 1 >= len)
                return false;
            if (s[i + 1] == 'u' && i + 6 <= len && memcmp(s + i + 2, "0000", 4) == 0)
                return false;
            i++; /* the escaped byte */
        }
        i++;
    }
    return true;
}

cJSON *cm_json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    if (!cm_json_bytes_ok(text, len))
        return NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j)
        return NULL;
    /* strict: only whitespace may follow the document */
    for (const char *p = end; p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

char *cm_json_print(const cJSON *json)
{
    return cJSON_PrintUnformatted(json);
}

void cm_json_add_time(cJSON *obj, const char *key, int64_t ms)
{
    char buf[CM_TIME_RFC3339_SIZE];
    if (ms <= 0 || cm_time_rfc3339(ms, buf) == 0)
        cJSON_AddNullToObject(obj, key);
    else
        cJSON_AddStringToObject(obj, key, buf);
}
