#include "stats.h"

#include "job.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>

#define WINDOW 64

typedef struct {
    uint64_t duration_us, ttft_us;
    int gen;
} sample_t;

struct nd_stats {
    pthread_mutex_t mu;
    nd_stats_snapshot_t tot;
    sample_t win[WINDOW];
    int nwin, next;
};

nd_stats_t *nd_stats_new(void)
{
    nd_stats_t *s = cm_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void nd_stats_free(nd_stats_t *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void nd_stats_record(nd_stats_t *s, int status, uint64_t duration_us, uint64_t ttft_us,
                     int prompt_tokens, int completion_tokens)
{
    pthread_mutex_lock(&s->mu);
    s->tot.requests++;
    if (status == ND_STATUS_CLIENT_GONE)
        s->tot.cancelled++;
    else if (status >= 400)
        s->tot.errors++;
    s->tot.prompt_tokens += (uint64_t)(prompt_tokens > 0 ? prompt_tokens : 0);
    s->tot.completion_tokens += (uint64_t)(completion_tokens > 0 ? completion_tokens : 0);
    if (status < 400) {
        s->win[s->next] = (sample_t){ duration_us, ttft_us, completion_tokens };
        s->next = (s->next + 1) % WINDOW;
        if (s->nwin < WINDOW)
            s->nwin++;
    }
    pthread_mutex_unlock(&s->mu);
}

void nd_stats_get(nd_stats_t *s, nd_stats_snapshot_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->tot;
    double dur = 0, ttft = 0, gen_time = 0, gen = 0;
    int nttft = 0;
    for (int i = 0; i < s->nwin; i++) {
        dur += (double)s->win[i].duration_us;
        if (s->win[i].ttft_us) {
            ttft += (double)s->win[i].ttft_us;
            nttft++;
            /* generation time: from the first token to the end */
            if (s->win[i].gen > 1 && s->win[i].duration_us > s->win[i].ttft_us) {
                gen_time += (double)(s->win[i].duration_us - s->win[i].ttft_us);
                gen += s->win[i].gen - 1;
            }
        }
    }
    out->avg_response_ms = s->nwin ? dur / s->nwin / 1000.0 : 0;
    out->avg_ttft_ms = nttft ? ttft / nttft / 1000.0 : 0;
    out->tokens_per_second = gen_time > 0 ? gen / (gen_time / 1e6) : 0;
    pthread_mutex_unlock(&s->mu);
}
