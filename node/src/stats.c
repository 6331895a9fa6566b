#include "stats.h"

#include "job.h"
#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 64
#define NB(a) (sizeof(a) / sizeof((a)[0]))

/* vLLM's bucket sets (vllm/v1/metrics/loggers.py) */
static const double b_ttft[] = { 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                 1,     2.5,   5,    7.5,  10,   20,   40,   80,  160, 640, 2560 };
static const double b_request[] = { 0.3, 0.5, 0.8, 1,  1.5, 2,   2.5, 5,   10,  15,   20,
                                    30,  40,  50,  60, 120, 240, 480, 960, 1920, 7680 };
static const double b_tpot[] = { 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                                 0.75, 1,     2.5,  5,     7.5, 10,   20,  40,  80 };
/* vLLM builds 1-2-5 steps up to max_model_len; ours to 100000 */
static const double b_tokens[] = { 1,    2,    5,    10,   20,    50,    100,   200,   500,
                                   1000, 2000, 5000, 10000, 20000, 50000, 100000 };

typedef struct {
    uint64_t duration_us, ttft_us;
    int gen;
} sample_t;

struct nd_stats {
    pthread_mutex_t mu;
    nd_stats_snapshot_t tot;
    sample_t win[WINDOW];
    int nwin, next;
    nd_stats_model_t models[ND_STATS_MAX_MODELS + 1]; /* the last: "other" */
    size_t nmodels;
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

/* Printable ASCII that fits: a model_name label (ids come from file names,
 * but a failed request carries the client's). */
static bool label_ok(const char *m)
{
    if (!m || !*m)
        return false;
    size_t n = 0;
    for (; m[n]; n++)
        if ((unsigned char)m[n] < 0x20 || (unsigned char)m[n] >= 0x7f || n + 1 >= ND_STATS_MODEL_MAX)
            return false;
    return true;
}

static nd_stats_model_t *find(nd_stats_t *s, const char *model)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].model, model) == 0)
            return &s->models[i];
    return NULL;
}

/* The model's entry, made on first sight (mu held). Past
 * ND_STATS_MAX_MODELS names, "other" (the array's last place). */
static nd_stats_model_t *model_entry(nd_stats_t *s, const char *model)
{
    if (!label_ok(model))
        model = "other";
    nd_stats_model_t *m = find(s, model);
    if (m)
        return m;
    if (s->nmodels >= ND_STATS_MAX_MODELS && strcmp(model, "other") != 0) {
        model = "other";
        if ((m = find(s, model)))
            return m;
    }
    m = &s->models[s->nmodels++];
    memset(m, 0, sizeof(*m));
    snprintf(m->model, sizeof(m->model), "%s", model);
    cm_prom_hist_init(&m->ttft, b_ttft, NB(b_ttft));
    cm_prom_hist_init(&m->e2e, b_request, NB(b_request));
    cm_prom_hist_init(&m->tpot, b_tpot, NB(b_tpot));
    cm_prom_hist_init(&m->prompt_len, b_tokens, NB(b_tokens));
    cm_prom_hist_init(&m->gen_len, b_tokens, NB(b_tokens));
    return m;
}

void nd_stats_record(nd_stats_t *s, const char *model, int status, uint64_t duration_us, uint64_t ttft_us,
                     int prompt_tokens, int completion_tokens)
{
    uint64_t pt = (uint64_t)(prompt_tokens > 0 ? prompt_tokens : 0);
    uint64_t ct = (uint64_t)(completion_tokens > 0 ? completion_tokens : 0);
    pthread_mutex_lock(&s->mu);
    s->tot.requests++;
    if (status == ND_STATUS_CLIENT_GONE)
        s->tot.cancelled++;
    else if (status >= 400)
        s->tot.errors++;
    s->tot.prompt_tokens += pt;
    s->tot.completion_tokens += ct;
    nd_stats_model_t *m = model_entry(s, model);
    m->requests++;
    m->errors += status >= 400;
    m->prompt_tokens += pt;
    m->gen_tokens += ct;
    if (status < 400) {
        s->win[s->next] = (sample_t){ duration_us, ttft_us, completion_tokens };
        s->next = (s->next + 1) % WINDOW;
        if (s->nwin < WINDOW)
            s->nwin++;
        double dur = (double)duration_us / 1e6;
        cm_prom_hist_observe(&m->e2e, dur);
        cm_prom_hist_observe(&m->prompt_len, (double)pt);
        if (ct > 0 || ttft_us)
            cm_prom_hist_observe(&m->gen_len, (double)ct);
        if (ttft_us) {
            double ttft = (double)ttft_us / 1e6;
            cm_prom_hist_observe(&m->ttft, ttft);
            s->tot.prompt_seconds += ttft;
            s->tot.prompt_seconds_tokens += pt;
            if (duration_us > ttft_us) {
                s->tot.gen_seconds += dur - ttft;
                s->tot.gen_seconds_tokens += ct;
                if (ct > 1)
                    cm_prom_hist_observe(&m->tpot, (dur - ttft) / (double)(ct - 1));
            }
        }
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

size_t nd_stats_models(nd_stats_t *s, nd_stats_model_t *out, size_t max)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nmodels < max ? s->nmodels : max;
    memcpy(out, s->models, n * sizeof(*out));
    pthread_mutex_unlock(&s->mu);
    return n;
}
