/* api_keys: GET/POST /api/api-keys, PUT/DELETE /api/api-keys/:id (admin only,
 * see routes.c). The key itself is returned once, by POST; lists show its
 * prefix only. expires_at is an RFC 3339 time ("2030-01-01T00:00:00Z"), a
 * number of seconds since the epoch, or null (never). */
#include "auth/auth.h"
#include "api/handlers.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static cJSON *key_json(const rt_apikey_rec_t *k)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddStringToObject(o, "key_prefix", k->key_prefix);
    if (k->created_by)
        cJSON_AddStringToObject(o, "created_by", k->created_by);
    else
        cJSON_AddNullToObject(o, "created_by");
    rt_json_add_time(o, "created_at", k->created_at);
    rt_json_add_time(o, "expires_at", k->expires_at);
    rt_json_add_time(o, "last_used_at", k->last_used_at);
    cJSON_AddBoolToObject(o, "expired", k->expires_at > 0 && k->expires_at <= (int64_t)cm_wall_ms());
    return o;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)" -> ms since epoch; -1 if bad. */
int64_t rt_parse_rfc3339(const char *s)
{
    struct tm tm = { 0 };
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
            return -1;
        off = (hh * 60L + mm) * 60L * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return ((int64_t)t - off) * 1000 + ms;
}

/* Reads "expires_at": *set false when absent; *ms 0 for null. -1 after a 400. */
static int read_expiry(cm_http_req_t *req, const cJSON *j, bool *set, int64_t *ms)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "expires_at");
    *set = e != NULL;
    *ms = 0;
    if (!e || cJSON_IsNull(e))
        return 0;
    if (cJSON_IsString(e))
        *ms = rt_parse_rfc3339(e->valuestring);
    else if (cJSON_IsNumber(e) && isfinite(e->valuedouble) && e->valuedouble > 0 &&
             e->valuedouble < 1e11)
        *ms = (int64_t)(e->valuedouble * 1000);
    else
        *ms = -1;
    if (*ms <= 0) {
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "expires_at",
                            "expires_at must be an RFC 3339 time, epoch seconds, or null");
        return -1;
    }
    return 0;
}

static int read_name(cm_http_req_t *req, const cJSON *j, bool required, const char **name)
{
    *name = NULL;
    int r = cm_json_str(j, "name", name);
    if ((r == CM_JSON_ABSENT && !required) || (r == CM_JSON_OK && **name && strlen(*name) <= 128))
        return 0;
    cm_http_reply_error(req, 400, "invalid_request_error", "invalid_request", "name",
                        "name must be a string of 1 to 128 characters");
    return -1;
}

static void add_key(const rt_apikey_rec_t *k, void *arg) { cJSON_AddItemToArray(arg, key_json(k)); }

void rt_h_keys_list(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "api_keys");
    if (rt_store_apikeys_each(rt->store, add_key, arr) != 0)
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
    else
        cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
}

void rt_h_keys_create(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *name;
    bool set;
    int64_t exp;
    char key[RT_AUTH_KEY_MAX];
    rt_apikey_rec_t k = { 0 };
    cJSON *j = rt_json_body_object(req);
    if (!j)
        return;
    if (read_name(req, j, true, &name) || read_expiry(req, j, &set, &exp))
        goto out;
    if (rt_auth_apikey_create(rt->store, name, exp, rt_auth_principal(req)->name, key, &k) != 0) {
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
        goto out;
    }
    rt_auth_apikey_sync(rt->auth, k.id); /* usable at once */
    LOG_INFO("auth", "API key \"%s\" (%s) created by %s", k.name, k.key_prefix, k.created_by);
    cJSON *o = key_json(&k);
    cJSON_AddStringToObject(o, "key", key); /* the only time it is shown */
    cm_http_add_header(req, "Cache-Control", "no-store");
    cm_http_reply_json(req, 201, o);
    cJSON_Delete(o);
    sodium_memzero(key, sizeof(key));
out:
    rt_apikey_rec_free(&k);
    cJSON_Delete(j);
}

void rt_h_keys_update(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id"), *name;
    bool set;
    int64_t exp;
    rt_apikey_rec_t k = { 0 };
    cJSON *j = rt_json_body_object(req);
    if (!j)
        return;
    if (read_name(req, j, false, &name) || read_expiry(req, j, &set, &exp))
        goto out;
    int rc = rt_store_apikey_update(rt->store, id, name, set, exp);
    if (rc == 0)
        rc = rt_store_apikey_get(rt->store, id, &k);
    rt_auth_apikey_sync(rt->auth, id);
    if (rc != 0) {
        cm_http_reply_error(req, rc == RT_STORE_NOTFOUND ? 404 : 500,
                            rc == RT_STORE_NOTFOUND ? "not_found_error" : "server_error",
                            rc == RT_STORE_NOTFOUND ? "api_key_not_found" : NULL, NULL,
                            rc == RT_STORE_NOTFOUND ? "No such API key" : "Database error");
        goto out;
    }
    cJSON *o = key_json(&k);
    cm_http_reply_json(req, 200, o);
    cJSON_Delete(o);
out:
    rt_apikey_rec_free(&k);
    cJSON_Delete(j);
}

void rt_h_keys_delete(cm_http_req_t *req, void *ud)
{
    rt_router_t *rt = ud;
    const char *id = cm_http_req_param(req, "id");
    int rc = rt_store_apikey_delete(rt->store, id);
    rt_auth_apikey_sync(rt->auth, id); /* refused from now on */
    if (rc == RT_STORE_NOTFOUND) {
        cm_http_reply_error(req, 404, "not_found_error", "api_key_not_found", NULL, "No such API key");
        return;
    }
    if (rc != 0) {
        cm_http_reply_error(req, 500, "server_error", NULL, NULL, "Database error");
        return;
    }
    LOG_INFO("auth", "API key %s deleted by %s", id, rt_auth_principal(req)->name);
    cm_http_reply(req, 204, NULL, NULL, 0);
}
