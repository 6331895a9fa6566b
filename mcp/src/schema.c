/* schema: the subset of JSON Schema the tools' inputSchemas use, checked
 * before a call starts: type (one or a list), enum, minimum, maximum,
 * minLength, maxLength, items (one level), properties, required,
 * additionalProperties (false or a schema). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static bool is_type(const cJSON *v, const char *t)
{
    if (strcmp(t, "string") == 0)
        return cJSON_IsString(v);
    if (strcmp(t, "integer") == 0)
        return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
    if (strcmp(t, "number") == 0)
        return cJSON_IsNumber(v) && isfinite(v->valuedouble);
    if (strcmp(t, "boolean") == 0)
        return cJSON_IsBool(v);
    if (strcmp(t, "object") == 0)
        return cJSON_IsObject(v);
    if (strcmp(t, "array") == 0)
        return cJSON_IsArray(v);
    if (strcmp(t, "null") == 0)
        return cJSON_IsNull(v);
    return true;
}

static int check(const cJSON *sch, const cJSON *v, const char *where, char *err, size_t errlen, int depth);

static int check_type(const cJSON *sch, const cJSON *v, const char *where, char *err, size_t errlen)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(sch, "type");
    if (!t)
        return 0;
    if (cJSON_IsString(t)) {
        if (is_type(v, t->valuestring))
            return 0;
        snprintf(err, errlen, "%s must be of type %s", where, t->valuestring);
        return -1;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, t) if (cJSON_IsString(e) && is_type(v, e->valuestring)) return 0;
    char *names = cJSON_PrintUnformatted(t);
    snprintf(err, errlen, "%s must be of type %s", where, names);
    free(names);
    return -1;
}

static int check_object(const cJSON *sch, const cJSON *v, const char *where, char *err, size_t errlen, int depth)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(sch, "properties");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(sch, "additionalProperties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(sch, "required"), *r;
    cJSON_ArrayForEach(r, req) if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
    {
        snprintf(err, errlen, "%s%s%s is required", where, *where ? "." : "", r->valuestring);
        return -1;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, v)
    {
        char sub[160];
        snprintf(sub, sizeof(sub), "%s%s%.100s", where, *where ? "." : "", m->string);
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, m->string);
        if (!ps && cJSON_IsFalse(addl)) {
            snprintf(err, errlen, "unknown argument %s", sub);
            return -1;
        }
        if (!ps && cJSON_IsObject(addl))
            ps = addl;
        if (ps && check(ps, m, sub, err, errlen, depth + 1) != 0)
            return -1;
    }
    return 0;
}

static int check(const cJSON *sch, const cJSON *v, const char *where, char *err, size_t errlen, int depth)
{
    if (depth > 8 || !cJSON_IsObject(sch))
        return 0;
    if (check_type(sch, v, *where ? where : "arguments", err, errlen) != 0)
        return -1;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(sch, "enum");
    if (en) {
        const cJSON *e;
        bool found = false;
        cJSON_ArrayForEach(e, en) if (cJSON_Compare(e, v, true)) found = true;
        if (!found) {
            char *names = cJSON_PrintUnformatted(en);
            snprintf(err, errlen, "%s must be one of %s", where, names);
            free(names);
            return -1;
        }
    }
    const cJSON *lim;
    if (cJSON_IsNumber(v)) {
        if ((lim = cJSON_GetObjectItemCaseSensitive(sch, "minimum")) && v->valuedouble < lim->valuedouble) {
            snprintf(err, errlen, "%s must be at least %g", where, lim->valuedouble);
            return -1;
        }
        if ((lim = cJSON_GetObjectItemCaseSensitive(sch, "maximum")) && v->valuedouble > lim->valuedouble) {
            snprintf(err, errlen, "%s must be at most %g", where, lim->valuedouble);
            return -1;
        }
    }
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if ((lim = cJSON_GetObjectItemCaseSensitive(sch, "minLength")) && (double)n < lim->valuedouble) {
            snprintf(err, errlen, "%s must have at least %g characters", where, lim->valuedouble);
            return -1;
        }
        if ((lim = cJSON_GetObjectItemCaseSensitive(sch, "maxLength")) && (double)n > lim->valuedouble) {
            snprintf(err, errlen, "%s must have at most %g characters", where, lim->valuedouble);
            return -1;
        }
    }
    if (cJSON_IsArray(v)) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(sch, "items"), *e;
        if ((lim = cJSON_GetObjectItemCaseSensitive(sch, "minItems")) &&
            (double)cJSON_GetArraySize(v) < lim->valuedouble) {
            snprintf(err, errlen, "%s must have at least %g items", where, lim->valuedouble);
            return -1;
        }
        int i = 0;
        cJSON_ArrayForEach(e, v)
        {
            char sub[160];
            snprintf(sub, sizeof(sub), "%s[%d]", where, i++);
            if (items && check(items, e, sub, err, errlen, depth + 1) != 0)
                return -1;
        }
    }
    if (cJSON_IsObject(v) && check_object(sch, v, where, err, errlen, depth) != 0)
        return -1;
    return 0;
}

int mcp_schema_check(const cJSON *schema, const cJSON *args, char *err, size_t errlen)
{
    return check(schema, args, "", err, errlen, 0);
}
