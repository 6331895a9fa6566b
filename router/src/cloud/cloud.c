/* cloud: the provider table and the parts shared by the translations.
 * PLACEHOLDER until the translation lands: build refuses, streams error. */
#include "cloud/cloud.h"

#include "util.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rt_cloud_provider_name(rt_cloud_provider_t p)
{
    switch (p) {
    case RT_CLOUD_OPENAI: return "openai";
    case RT_CLOUD_ANTHROPIC: return "anthropic";
    case RT_CLOUD_GOOGLE: return "google";
    default: return "unknown";
    }
}

bool rt_cloud_parse_model(const char *model, rt_cloud_provider_t *p, const char **name)
{
    static const struct {
        const char *prefix;
        rt_cloud_provider_t p;
    } t[] = { { "openai:", RT_CLOUD_OPENAI },
              { "google:", RT_CLOUD_GOOGLE },
              { "anthropic:", RT_CLOUD_ANTHROPIC },
              { "ahtnorpic:", RT_CLOUD_ANTHROPIC } };
    for (size_t i = 0; i < CM_ARRAY_LEN(t); i++) {
        size_t n = strlen(t[i].prefix);
        if (strncmp(model, t[i].prefix, n) == 0 && model[n]) {
            *p = t[i].p;
            *name = model + n;
            return true;
        }
    }
    return false;
}

int rt_cloud_build(rt_cloud_provider_t p, rt_cloud_endpoint_t ep, const struct cJSON *req, const char *raw,
                   size_t raw_len, const char *name, rt_cloud_call_t *out, rt_cloud_refusal_t *why)
{
    (void)p, (void)ep, (void)req, (void)raw, (void)raw_len, (void)name;
    memset(out, 0, sizeof(*out));
    *why = (rt_cloud_refusal_t){ .status = 400, .code = "cloud_not_available" };
    snprintf(why->message, sizeof(why->message), "Cloud translation is not built yet");
    return -1;
}

void rt_cloud_call_free(rt_cloud_call_t *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->body);
    memset(c, 0, sizeof(*c));
}

char *rt_cloud_answer(const rt_cloud_call_t *call, const char *body, size_t len, const char *model, const char *id,
                      int64_t created, size_t *out_len, char *err, size_t errlen)
{
    (void)call, (void)body, (void)len, (void)model, (void)id, (void)created, (void)out_len;
    snprintf(err, errlen, "not built");
    return NULL;
}

void rt_cloud_error(rt_cloud_provider_t p, int status, const char *body, size_t len, rt_cloud_error_t *out)
{
    (void)p, (void)body, (void)len;
    memset(out, 0, sizeof(*out));
    snprintf(out->message, sizeof(out->message), "The provider answered %d", status);
    snprintf(out->type, sizeof(out->type), "server_error");
}

struct rt_cloud_stream {
    int state;
};

rt_cloud_stream_t *rt_cloud_stream_new(const rt_cloud_call_t *call, const char *model, const char *id,
                                       int64_t created)
{
    (void)call, (void)model, (void)id, (void)created;
    return cm_xcalloc(1, sizeof(rt_cloud_stream_t));
}

int rt_cloud_stream_feed(rt_cloud_stream_t *s, const char *data, size_t len, struct evbuffer *out, char *err,
                         size_t errlen)
{
    (void)s, (void)data, (void)len, (void)out;
    snprintf(err, errlen, "not built");
    return RT_CLOUD_STREAM_ERROR;
}

void rt_cloud_stream_cut(rt_cloud_stream_t *s, const char *why, struct evbuffer *out) { (void)s, (void)why, (void)out; }
bool rt_cloud_stream_started(const rt_cloud_stream_t *s) { (void)s; return false; }
rt_cloud_usage_t rt_cloud_stream_usage(const rt_cloud_stream_t *s) { (void)s; return (rt_cloud_usage_t){ -1, -1 }; }
void rt_cloud_stream_free(rt_cloud_stream_t *s) { free(s); }
rt_cloud_usage_t rt_cloud_answer_usage(const char *openai_json, size_t len)
{
    (void)openai_json, (void)len;
    return (rt_cloud_usage_t){ -1, -1 };
}
