/* sse_load: streaming load client for the proxy benchmark (libcurl multi).
 *
 *   sse_load URL [-c CONCURRENT] [-n TOTAL] [-H header]... [-d BODY]
 *
 * Keeps CONCURRENT streaming POSTs open until TOTAL have finished; measures
 * each request's time to first body byte and counts SSE events. A request is
 * an error unless it got 200 and ended with "data: [DONE]". Prints one JSON
 * line: requests, errors, ttfb_p50_us, ttfb_p99_us, events, events_per_s,
 * duration_s, max_open. */
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    CURL *easy;
    uint64_t start_us, first_us;
    long events;
    char tail[16]; /* last bytes seen, to find [DONE] across chunk borders */
    size_t tail_len;
    bool done_seen;
} xfer_t;

static long total_events;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = sz * n;
    if (!x->first_us)
        x->first_us = cm_now_us();
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '\n' && p[i + 1] == '\n')
            x->events++;
    /* "[DONE]" search over tail + chunk start, and in the chunk */
    char probe[64];
    size_t k = len < 48 ? len : 48;
    memcpy(probe, x->tail, x->tail_len);
    memcpy(probe + x->tail_len, p + len - k, k);
    probe[x->tail_len + k] = '\0';
    if (strstr(probe, "[DONE]") || memmem(p, len, "[DONE]", 6))
        x->done_seen = true;
    size_t t = len < sizeof(x->tail) ? len : sizeof(x->tail);
    memcpy(x->tail, p + len - t, t);
    x->tail_len = t;
    return len;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void start_one(CURLM *m, const char *url, struct curl_slist *hdrs, const char *body)
{
    xfer_t *x = cm_xcalloc(1, sizeof(*x));
    x->easy = curl_easy_init();
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(x->easy, CURLOPT_TCP_NODELAY, 1L);
    x->start_us = cm_now_us();
    curl_multi_add_handle(m, x->easy);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *body = "{\"model\":\"mock\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    long conc = 1, total = 100;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            conc = atol(argv[++i]);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            total = atol(argv[++i]);
        else if (strcmp(argv[i], "-H") == 0 && i + 1 < argc)
            hdrs = curl_slist_append(hdrs, argv[++i]);
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
            body = argv[++i];
        else
            url = argv[i];
    }
    if (!url || conc < 1 || total < conc) {
        fprintf(stderr, "usage: sse_load URL [-c N] [-n TOTAL>=N] [-H h] [-d body]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, conc);
    uint64_t *ttfb = cm_xcalloc((size_t)total, sizeof(uint64_t));
    long started = 0, finished = 0, errors = 0, open = 0, max_open = 0;
    uint64_t t0 = cm_now_us();
    while (finished < total) {
        while (open < conc && started < total) {
            start_one(m, url, hdrs, body);
            started++;
            open++;
        }
        if (open > max_open)
            max_open = open;
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            xfer_t *x;
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result != CURLE_OK || status != 200 || !x->done_seen)
                errors++;
            ttfb[finished++] = x->first_us ? x->first_us - x->start_us : 0;
            total_events += x->events;
            curl_multi_remove_handle(m, x->easy);
            curl_easy_cleanup(x->easy);
            free(x);
            open--;
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double dur = (double)(cm_now_us() - t0) / 1e6;
    qsort(ttfb, (size_t)total, sizeof(uint64_t), cmp_u64);
    printf("{\"requests\":%ld,\"errors\":%ld,\"ttfb_p50_us\":%llu,\"ttfb_p99_us\":%llu,"
           "\"events\":%ld,\"events_per_s\":%.0f,\"duration_s\":%.3f,\"max_open\":%ld}\n",
           total, errors, (unsigned long long)ttfb[total / 2],
           (unsigned long long)ttfb[(size_t)((double)total * 0.99)], total_events,
           (double)total_events / dur, dur, max_open);
    free(ttfb);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    curl_global_cleanup();
    return errors ? 1 : 0;
}
