/* downloads: the model tasks. A download task resolves a Hugging Face
 * repository through the Hub API (HF_BASE_URL, HF_TOKEN), downloads the
 * chosen GGUF file(s) into LLM_ROUTER_MODELS_DIR (partial file, Range
 * resume, redirects without the token to another host, SHA-256 verified
 * against the Hub's LFS hash, atomic rename) and adds it to the catalogue
 * (models.h). A convert task downloads a non-GGUF repository and runs the
 * configured converter (LLM_ROUTER_CONVERTER) in its own process group,
 * with a time limit and its output kept. Tasks are persisted (table
 * model_tasks), resumed after a restart, cancellable, with bounded
 * concurrency; they run on the tasks' own threads (blocking libcurl and
 * disk), never on a loop. Reads of the task list are safe from any thread. */
#ifndef RT_DOWNLOADS_H
#define RT_DOWNLOADS_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;
typedef struct rt_store rt_store_t;
typedef struct rt_models rt_models_t;
typedef struct rt_downloads rt_downloads_t;

typedef struct {
    const char *hf_base_url;   /* HF_BASE_URL (alias HF_ENDPOINT) */
    const char *hf_token;      /* HF_TOKEN, NULL: none; never logged */
    int concurrency;           /* tasks running at once */
    const char *converter;     /* LLM_ROUTER_CONVERTER command line, NULL: none */
    int convert_timeout_s;
    const char *ca_bundle;     /* extra CA file for the Hub (tests), NULL: none */
} rt_downloads_opts_t;

rt_downloads_t *rt_downloads_new(const rt_downloads_opts_t *o, rt_models_t *models, rt_store_t *st);
/* Stops the threads (running transfers are interrupted and stay resumable). */
void rt_downloads_free(rt_downloads_t *d);

/* Every task as JSON (id, kind, repo, files, state, bytes_done, bytes_total,
 * speed_bps, eta_s, error, model_id, created_at): a new array. Any thread. */
struct cJSON *rt_downloads_tasks_json(rt_downloads_t *d, const char *kind);

#endif
