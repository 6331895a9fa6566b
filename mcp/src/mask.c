/* mask: see mask.h. */
#include "mask.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SECRETS 16
#define MIN_SECRET 6
#define MIN_TOKEN_BODY 16

static char *secrets[MAX_SECRETS];

void mcp_mask_add(const char *secret)
{
    if (!secret || strlen(secret) < MIN_SECRET)
        return;
    for (int i = 0; i < MAX_SECRETS; i++)
        if (secrets[i] && strcmp(secrets[i], secret) == 0)
            return;
    for (int i = 0; i < MAX_SECRETS; i++)
        if (!secrets[i]) {
            secrets[i] = cm_xstrdup(secret);
            return;
        }
}

static void wipe(char **s)
{
    if (*s) {
        volatile char *p = *s;
        while (*p)
            *p++ = 0;
        free(*s);
        *s = NULL;
    }
}

void mcp_mask_remove(const char *secret)
{
    for (int i = 0; secret && i < MAX_SECRETS; i++)
        if (secrets[i] && strcmp(secrets[i], secret) == 0)
            wipe(&secrets[i]);
}

void mcp_mask_clear(void)
{
    for (int i = 0; i < MAX_SECRETS; i++)
        wipe(&secrets[i]);
}

static bool tok_char(unsigned char c) { return isalnum(c) || c == '_' || c == '-'; }

static const char *const prefixes[] = { "sk_", "nt_", "jt_", "nk_" };

/* The length of a credential-looking token at p (prefix + body), 0 if none. */
static size_t cred_token(const char *p, size_t left)
{
    for (size_t i = 0; i < CM_ARRAY_LEN(prefixes); i++) {
        if (left < 3 || memcmp(p, prefixes[i], 3) != 0)
            continue;
        size_t n = 3;
        while (n < left && tok_char((unsigned char)p[n]))
            n++;
        if (n - 3 >= MIN_TOKEN_BODY)
            return n;
    }
    return 0;
}

void mcp_mask_key(const char *key, char *out, size_t outlen)
{
    size_t n = key ? strlen(key) : 0;
    if (n < 8) {
        snprintf(out, outlen, "****");
        return;
    }
    size_t pre = 0;
    for (size_t i = 0; i < 4 && i < n; i++)
        if (key[i] == '_') {
            pre = i + 1;
            break;
        }
    snprintf(out, outlen, "%.*s****%s", (int)pre, key, key + n - 4);
}

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    cm_xgrow(&b->p, &b->cap, b->len + n + 1, 64);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void put_masked_token(buf_t *b, const char *tok, size_t n)
{
    char *t = cm_xstrndup(tok, n), m[32];
    mcp_mask_key(t, m, sizeof(m));
    for (volatile char *z = t; *z; z++)
        *z = 0;
    free(t);
    put(b, m, strlen(m));
}

char *mcp_mask_text(const char *s, size_t len)
{
    buf_t b = { 0 };
    put(&b, "", 0);
    size_t i = 0;
    while (i < len) {
        size_t left = len - i;
        bool boundary = i == 0 || !tok_char((unsigned char)s[i - 1]);
        /* a registered secret, anywhere */
        size_t best = 0;
        for (int k = 0; k < MAX_SECRETS; k++) {
            size_t n = secrets[k] ? strlen(secrets[k]) : 0;
            if (n && n <= left && n > best && memcmp(s + i, secrets[k], n) == 0)
                best = n;
        }
        if (best) {
            if (cred_token(s + i, best) == best)
                put_masked_token(&b, s + i, best);
            else
                put(&b, "****", 4);
            i += best;
            continue;
        }
        size_t n = boundary ? cred_token(s + i, left) : 0;
        if (n) {
            put_masked_token(&b, s + i, n);
            i += n;
            continue;
        }
        if (boundary && left > 7 && strncasecmp(s + i, "bearer ", 7) == 0) {
            size_t j = 7;
            while (j < left && s[i + j] == ' ')
                j++;
            size_t t = j;
            while (t < left && !isspace((unsigned char)s[i + t]) && s[i + t] != '"' && s[i + t] != '\\' &&
                   s[i + t] != ',')
                t++;
            put(&b, s + i, j);
            if (t > j) {
                if (cred_token(s + i + j, t - j) == t - j)
                    put_masked_token(&b, s + i + j, t - j);
                else
                    put(&b, "****", 4);
            }
            i += t;
            continue;
        }
        put(&b, s + i, 1);
        i++;
    }
    return b.p;
}

/* members whose whole value is a credential, whatever it looks like */
static bool secret_member(const char *name)
{
    static const char *const names[] = { "token",        "password",      "router_secret", "node_token",
                                         "join_token",   "access_token",  "refresh_token", "api_key",
                                         "secret",       "authorization", "x-api-key",     "x-node-token" };
    for (size_t i = 0; name && i < CM_ARRAY_LEN(names); i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

static void mask_value(cJSON *j)
{
    if (cJSON_IsString(j) && j->valuestring && secret_member(j->string) && *j->valuestring) {
        char *m = mcp_mask_text(j->valuestring, strlen(j->valuestring));
        /* a prefixed key keeps its sk_****abcd form, anything else is hidden */
        cJSON_SetValuestring(j, strcmp(m, j->valuestring) != 0 && strstr(m, "_****") ? m : "****");
        free(m);
        return;
    }
    if (cJSON_IsString(j) && j->valuestring) {
        char *m = mcp_mask_text(j->valuestring, strlen(j->valuestring));
        if (strcmp(m, j->valuestring) != 0)
            cJSON_SetValuestring(j, m);
        free(m);
        return;
    }
    for (cJSON *c = j ? j->child : NULL; c; c = c->next)
        mask_value(c);
}

void mcp_mask_json(cJSON *j, const char *skip_key)
{
    if (!j)
        return;
    if (!cJSON_IsObject(j) || !skip_key) {
        mask_value(j);
        return;
    }
    for (cJSON *c = j->child; c; c = c->next)
        if (!c->string || strcmp(c->string, skip_key) != 0)
            mask_value(c);
}
