/* call: one tools/call as one or more requests to the router through the
 * shared libcurl multi handle, with the credentials injected (the API key
 * for /v1/..., the session for /api/...: a configured token, or a login with
 * the configured user that is renewed once on a 401), a deadline, and the
 * answer turned into a tool result (masked, truncated past the limit). */
#include "internal.h"

#include "json.h"
#include "log.h"
#include "mask.h"
#include "url.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* an answer larger than this is cut (the result is truncated far earlier) */
#define MAX_RESP (8u << 20)
#define CONNECT_TIMEOUT_MS 10000

void mcp_req_clear(mcp_http_t *r)
{
    free(r->path);
    cJSON_Delete(r->query);
    cJSON_Delete(r->body);
    memset(r, 0, sizeof(*r));
}

void mcp_req_set(mcp_call_t *c, const char *method, char *path, cJSON *query, cJSON *body)
{
    mcp_req_clear(&c->req);
    c->req.method = method;
    c->req.path = path;
    c->req.query = query;
    c->req.body = body;
}

static void transfer_clear(mcp_call_t *c)
{
    if (c->easy) {
        curl_multi_remove_handle(c->srv->multi, c->easy);
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    if (c->body_text) {
        /* a login body holds the password */
        for (volatile char *z = c->body_text; *z; z++)
            *z = 0;
        free(c->body_text);
        c->body_text = NULL;
    }
    free(c->resp);
    c->resp = NULL;
    c->resp_len = c->resp_cap = 0;
    c->resp_over = false;
}

static void call_free(mcp_call_t *c)
{
    mcp_server_t *s = c->srv;
    for (mcp_call_t **p = &s->calls; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            s->ncalls--;
            break;
        }
    transfer_clear(c);
    mcp_req_clear(&c->req);
    cJSON_Delete(c->id);
    cJSON_Delete(c->args);
    cJSON_Delete(c->acc);
    free(c);
}

void mcp_call_free_all(mcp_server_t *s)
{
    while (s->calls)
        call_free(s->calls);
}

/* ---- results ---- */

/* Sends the tool result: content = [text] + structuredContent. */
static void send_tool_result(mcp_call_t *c, cJSON *structured, bool is_error)
{
    mcp_server_t *s = c->srv;
    char *text = cJSON_PrintUnformatted(structured);
    size_t n = strlen(text), max = (size_t)s->cfg->max_result_bytes;
    if (!is_error && n > max) {
        /* too large: the text cut at a character boundary, with a note; the
         * structured copy says so instead of holding the whole answer */
        size_t keep = cm_utf8_complete_prefix(text, max);
        char note[256];
        snprintf(note, sizeof(note),
                 "truncated: the answer has %zu bytes, %zu shown (LLM_ROUTER_MCP_MAX_RESULT_BYTES); "
                 "narrow the request (filters, page, per_page, tail)",
                 n, keep);
        char *cut = cm_xasprintf("%.*s\n[%s]", (int)keep, text, note);
        free(text);
        text = cut;
        cJSON *st = cJSON_GetObjectItemCaseSensitive(structured, "status");
        cJSON *small = cJSON_CreateObject();
        cJSON_AddNumberToObject(small, "status", st ? st->valuedouble : 0);
        cJSON_AddTrueToObject(small, "truncated");
        cJSON_AddStringToObject(small, "note", note);
        cJSON_Delete(structured);
        structured = small;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(r, "content");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    cJSON_AddStringToObject(t, "text", text);
    cJSON_AddItemToArray(content, t);
    cJSON_AddItemToObject(r, "structuredContent", structured);
    cJSON_AddBoolToObject(r, "isError", is_error);
    free(text);
    mcp_send_result(s, c->id, r);
}

/* Ends the call with an error result {"error":{type, message, status?, router?}}. */
static void finish_error(mcp_call_t *c, const char *type, long status, const char *message, cJSON *router)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "type", type);
    char *m = mcp_mask_text(message, strlen(message));
    cJSON_AddStringToObject(e, "message", m);
    free(m);
    if (status)
        cJSON_AddNumberToObject(e, "status", (double)status);
    cJSON_AddStringToObject(e, "tool", c->tool->name);
    if (router) {
        mcp_mask_json(router, NULL);
        cJSON_AddItemToObject(e, "router", router);
    }
    LOG_INFO("mcp", "tools/call %s failed after %llu ms: %s (%ld)", c->tool->name,
             (unsigned long long)(cm_now_ms() - c->started_ms), type, status);
    send_tool_result(c, o, true);
    call_free(c);
}

static void finish_data(mcp_call_t *c, long status, cJSON *data)
{
    mcp_mask_json(data, c->tool->unmasked);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "status", (double)status);
    cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateNull());
    LOG_INFO("mcp", "tools/call %s: %ld in %llu ms", c->tool->name, status,
             (unsigned long long)(cm_now_ms() - c->started_ms));
    send_tool_result(c, o, false);
    call_free(c);
}

/* ---- transfers ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    mcp_call_t *c = ud;
    size_t len = size * n;
    if (c->resp_len + len > MAX_RESP) {
        c->resp_over = true;
        len = MAX_RESP - c->resp_len;
    }
    cm_xgrow(&c->resp, &c->resp_cap, c->resp_len + len + 1, 4096);
    memcpy(c->resp + c->resp_len, p, len);
    c->resp_len += len;
    c->resp[c->resp_len] = 0;
    return size * n;
}

static bool is_v1(const char *path) { return strncmp(path, "/v1/", 4) == 0; }

static bool can_login(const mcp_server_t *s)
{
    return s->cfg->username && *s->cfg->username && s->cfg->password && *s->cfg->password;
}

/* Starts c->req (or a login first when the session is missing). */
static void issue(mcp_call_t *c)
{
    mcp_server_t *s = c->srv;
    transfer_clear(c);
    uint64_t now = cm_now_ms();
    if (now >= c->deadline_ms) {
        char m[160];
        snprintf(m, sizeof(m), "the call ran out of its time limit (%d s)", c->timeout_s);
        finish_error(c, "timeout", 0, m, NULL);
        return;
    }
    bool v1 = is_v1(c->req.path);
    c->login = !v1 && !s->session && can_login(s);
    const char *method = c->login ? "POST" : c->req.method;
    const char *path = c->login ? "/api/auth/login" : c->req.path;
    char *url = NULL;
    const char *why = NULL;
    if (mcp_url_build(s->base, path, c->login ? NULL : c->req.query, &url, &why) != 0) {
        finish_error(c, "refused", 0, why, NULL);
        return;
    }
    if (c->login) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "username", s->cfg->username);
        cJSON_AddStringToObject(b, "password", s->cfg->password);
        c->body_text = cJSON_PrintUnformatted(b);
        /* the copy cJSON holds is freed (not wiped) with b: the configured
         * password lives for the process anyway */
        cJSON_Delete(b);
    } else if (c->req.body) {
        c->body_text = cJSON_PrintUnformatted(c->req.body);
    }
    CURL *e = c->easy = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* only the router: no redirects, no proxy from the environment, no
     * other protocol than the base's */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    c->errbuf[0] = 0;
    long left = (long)(c->deadline_ms - now);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, left < CONNECT_TIMEOUT_MS ? left : CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_USERAGENT, MCP_SERVER_NAME "/" MCP_SERVER_VERSION);
    c->hdrs = curl_slist_append(c->hdrs, "Accept: application/json");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    const char *cred = c->login ? NULL : v1 ? s->cfg->api_key : s->session;
    if (cred && *cred) {
        char *h = cm_xasprintf("Authorization: Bearer %s", cred);
        c->hdrs = curl_slist_append(c->hdrs, h);
        for (volatile char *z = h; *z; z++)
            *z = 0;
        free(h);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (c->body_text) {
            c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body_text);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body_text));
        } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
    LOG_DEBUG("mcp", "%s %s (%s)", method, path, c->tool->name);
    curl_multi_add_handle(s->multi, e);
}

void mcp_call_start(mcp_server_t *s, const cJSON *id, const mcp_tool_t *tool, const cJSON *args)
{
    mcp_call_t *c = cm_xcalloc(1, sizeof(*c));
    c->srv = s;
    c->id = cJSON_Duplicate(id, 1);
    c->tool = tool;
    c->args = cJSON_Duplicate(args, 1);
    c->started_ms = cm_now_ms();
    long long t = s->cfg->timeout_s;
    cm_json_int(args, "timeout_s", &t);
    if (t < 1)
        t = 1;
    if (t > s->cfg->timeout_max_s)
        t = s->cfg->timeout_max_s;
    c->timeout_s = (int)t;
    c->deadline_ms = c->started_ms + (uint64_t)t * 1000;
    c->next = s->calls;
    s->calls = c;
    s->ncalls++;
    char err[300] = "";
    if (tool->plan(c, c->args, err, sizeof(err)) != 0) {
        finish_error(c, "refused", 0, err, NULL);
        return;
    }
    issue(c);
}

bool mcp_call_cancel(mcp_server_t *s, const cJSON *id)
{
    for (mcp_call_t *c = s->calls; c; c = c->next)
        if (cJSON_Compare(c->id, id, true)) {
            LOG_INFO("mcp", "tools/call %s cancelled after %llu ms", c->tool->name,
                     (unsigned long long)(cm_now_ms() - c->started_ms));
            call_free(c);
            return true;
        }
    return false;
}

/* The router's error message, when the body is its {"error":{"message"}}. */
static const char *router_message(const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(m))
        return m->valuestring;
    return cJSON_IsString(e) ? e->valuestring : NULL;
}

/* The body as JSON, or as (valid UTF-8) text, or null when empty. */
static cJSON *body_value(mcp_call_t *c, cJSON **parsed)
{
    *parsed = c->resp_len && !c->resp_over ? cm_json_parse(c->resp, c->resp_len) : NULL;
    if (*parsed)
        return *parsed;
    if (!c->resp_len)
        return cJSON_CreateNull();
    char *clean = cm_xmalloc(c->resp_len * 3 + 1);
    cm_utf8_sanitize(clean, c->resp_len * 3 + 1, c->resp, c->resp_len);
    cJSON *t = cJSON_CreateString(clean);
    free(clean);
    return t;
}

static void login_done(mcp_call_t *c, long status)
{
    mcp_server_t *s = c->srv;
    cJSON *j = c->resp_len ? cm_json_parse(c->resp, c->resp_len) : NULL;
    const char *tok = NULL;
    if (status == 200 && cm_json_str(j, "token", &tok) == CM_JSON_OK && *tok) {
        free(s->session);
        s->session = cm_xstrdup(tok);
        mcp_mask_add(tok);
        LOG_INFO("mcp", "logged in to the router as %s", s->cfg->username);
        cJSON_Delete(j);
        issue(c);
        return;
    }
    char m[300];
    const char *rm = router_message(j);
    snprintf(m, sizeof(m), "logging in as LLM_ROUTER_USERNAME failed: %s", rm ? rm : "no token in the answer");
    cJSON_Delete(j);
    finish_error(c, "login_failed", status, m, NULL);
}

void mcp_call_transfer_done(mcp_server_t *s, CURL *easy, CURLcode rc)
{
    mcp_call_t *c = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    if (!c)
        return;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        char m[CURL_ERROR_SIZE + 200];
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            snprintf(m, sizeof(m), "the router did not answer within the call's time limit (%d s; "
                     "LLM_ROUTER_TIMEOUT or the timeout_s argument)", c->timeout_s);
            finish_error(c, "timeout", 0, m, NULL);
        } else {
            snprintf(m, sizeof(m), "cannot reach the router at %s: %s", s->base,
                     c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
            finish_error(c, "router_unreachable", 0, m, NULL);
        }
        return;
    }
    if (c->login) {
        login_done(c, status);
        return;
    }
    bool v1 = is_v1(c->req.path);
    if (status == 401 && !v1 && can_login(s) && !c->relogged) {
        /* the session ended (expired, logged out, router restarted): once more */
        c->relogged = true;
        if (s->session)
            mcp_mask_remove(s->session);
        free(s->session);
        s->session = NULL;
        issue(c);
        return;
    }
    cJSON *parsed = NULL;
    cJSON *val = body_value(c, &parsed);
    if (status >= 400 || status < 200) {
        const char *rm = router_message(parsed);
        char m[600];
        if (status == 401 && v1 && !(s->cfg->api_key && *s->cfg->api_key))
            snprintf(m, sizeof(m), "the router refused the call (401): set LLM_ROUTER_API_KEY for /v1/...");
        else if (status == 401 && !v1 && !s->session && !can_login(s))
            snprintf(m, sizeof(m), "the router refused the call (401): set LLM_ROUTER_USERNAME and "
                     "LLM_ROUTER_PASSWORD, or LLM_ROUTER_JWT_TOKEN, for /api/...");
        else
            snprintf(m, sizeof(m), "the router answered %ld: %.400s", status, rm ? rm : "(no message)");
        finish_error(c, "router_error", status, m, val);
        return;
    }
    if (c->tool->next) {
        mcp_resp_t r = { status, c->resp ? c->resp : "", c->resp_len, c->resp_over, parsed };
        cJSON *data = NULL;
        int more = c->tool->next(c, &r, &data);
        cJSON_Delete(val);
        if (more) {
            issue(c);
            return;
        }
        finish_data(c, status, data);
        return;
    }
    finish_data(c, status, val);
}
