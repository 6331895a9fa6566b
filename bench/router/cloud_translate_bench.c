/* cloud_translate_bench: the translators alone, no sockets: one streamed
 * answer of N text events per provider (the shapes of cloud_fake.py) fed
 * through rt_cloud_stream_feed in 4 KiB pieces, as a provider's bytes
 * arrive, R times. Prints ns per event for each provider, the OpenAI
 * passthrough (relayed as is, watched for usage and [DONE]) being the
 * anchor. Steadier than cloud_bench.py for A/B work; under
 * `valgrind --tool=callgrind` the instruction counts are steadier still.
 *   cloud_translate_bench [events=200] [repeats=2000] */
#include "cloud/cloud.h"
#include "util.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5))) static void add(char **s, size_t *len, size_t *cap, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    cm_xgrow(s, cap, *len + (size_t)n + 1, 4096);
    memcpy(*s + *len, tmp, (size_t)n + 1);
    *len += (size_t)n;
}

static char *stream_of(rt_cloud_provider_t p, int n, size_t *len)
{
    char *s = NULL;
    size_t cap = 0;
    *len = 0;
    if (p == RT_CLOUD_OPENAI) {
#define HEAD "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-bench\","
        for (int i = 0; i < n; i++)
            add(&s, len, &cap, HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w%d\"},\"finish_reason\":null}]}\n\n", i);
        add(&s, len, &cap, HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\ndata: [DONE]\n\n", n, n + 5);
    } else if (p == RT_CLOUD_ANTHROPIC) {
        add(&s, len, &cap, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\","
            "\"role\":\"assistant\",\"model\":\"claude-bench\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
            "\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
            "event: ping\ndata: {\"type\":\"ping\"}\n\n");
        for (int i = 0; i < n; i++)
            add(&s, len, &cap, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                "\"delta\":{\"type\":\"text_delta\",\"text\":\" w%d\"}}\n\n", i);
        add(&s, len, &cap, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
            "\"usage\":{\"output_tokens\":%d}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", n);
    } else {
        for (int i = 0; i < n; i++)
            add(&s, len, &cap, i == n - 1
                ? "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" w%d\"}],\"role\":\"model\"},\"index\":0,\"finishReason\":\"STOP\"}],"
                  "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":%d,\"totalTokenCount\":6},\"modelVersion\":\"gemini-bench\"}\r\n\r\n"
                : "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" w%d\"}],\"role\":\"model\"},\"index\":0}],"
                  "\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":%d,\"totalTokenCount\":6},\"modelVersion\":\"gemini-bench\"}\r\n\r\n",
                i, i + 1);
    }
    return s;
}

static double run(rt_cloud_provider_t p, int n, int repeats)
{
    size_t len;
    char *in = stream_of(p, n, &len);
    rt_cloud_call_t call = { .provider = p, .endpoint = RT_CLOUD_CHAT, .stream = true };
    struct evbuffer *out = evbuffer_new();
    char err[160];
    uint64_t t0 = cm_now_us();
    for (int r = 0; r < repeats; r++) {
        rt_cloud_stream_t *s = rt_cloud_stream_new(&call, "provider:bench-model", "chatcmpl-0123456789abcdef", 1700000000);
        for (size_t off = 0; off < len; off += 4096)
            rt_cloud_stream_feed(s, in + off, len - off < 4096 ? len - off : 4096, out, err, sizeof(err));
        if (rt_cloud_stream_end(s, out, err, sizeof(err)) != RT_CLOUD_STREAM_DONE) {
            fprintf(stderr, "%s: the stream did not end cleanly: %s\n", rt_cloud_provider_name(p), err);
            exit(1);
        }
        rt_cloud_stream_free(s);
        evbuffer_drain(out, evbuffer_get_length(out));
    }
    double ns = (double)(cm_now_us() - t0) * 1000.0 / ((double)repeats * n);
    evbuffer_free(out);
    free(in);
    return ns;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200, repeats = argc > 2 ? atoi(argv[2]) : 2000;
    double base = run(RT_CLOUD_OPENAI, n, repeats);
    printf("| stream | ns per event | vs openai: passthrough |\n|---|---|---|\n");
    printf("| openai: (passthrough, watched) | %.0f | 1.00x |\n", base);
    for (rt_cloud_provider_t p = RT_CLOUD_ANTHROPIC; p <= RT_CLOUD_GOOGLE; p++) {
        double ns = run(p, n, repeats);
        printf("| %s: (translated) | %.0f | %.2fx |\n", rt_cloud_provider_name(p), ns, ns / base);
    }
    return 0;
}
