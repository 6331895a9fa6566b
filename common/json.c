#include "json.h"
#include "util.h"

#include <math.h>

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

cJSON *cm_json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    if (!cm_utf8_valid(text, len)) /* RFC 8259: JSON text is UTF-8; cJSON copies any byte */
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
