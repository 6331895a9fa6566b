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
 * disk), never on a loop. Reads of the task list are safe from any thread.
 *
 * File choice when register names none (README "Models"): the first GGUF
 * whose name carries Q4_K_M, else Q4_0, else Q8_0 (the tag followed by '.'
 * or '-', any case), else the smallest GGUF; mmproj and imatrix files are
 * never picked; a split GGUF ("-00001-of-00003") is taken with all its
 * parts. Registering the same repository and file while its task is queued
 * or running answers that task (200) instead of a new one (202); one already
 * registered answers 409. The revision is resolved to its commit first (model
 * info), and every file is fetched at that commit, also after a restart.
 * The model's id is chosen before the download (models.h's rule, skipping
 * ids of active tasks and non-empty directories), so its files go to
 * <models dir>/<id>/<file>.part and are renamed to <file> once verified.
 *
 * Conversion (README "Conversion"): the repository's files (without the
 * duplicate .bin/.pt/.onnx... weights when safetensors are there) go to
 * <models dir>/.convert/<task id>/src; LLM_ROUTER_CONVERTER is split like a
 * shell would (wordexp, no command substitution) and run with
 * "<src dir> --outfile <output.gguf> --outtype <outtype>" appended (what
 * llama.cpp's convert_hf_to_gguf.py takes), or, when the command holds any
 * of {input}, {output}, {outtype}, with those replaced instead; the same
 * three are also in its environment (LLM_ROUTER_CONVERT_INPUT, _OUTPUT,
 * _OUTTYPE), secrets (names with TOKEN, KEY, SECRET, PASSWORD) are not. It
 * runs in its own session and process group (setsid), stdin /dev/null,
 * stdout and stderr into the task's log (the last 64 KiB), killed as a group
 * (SIGTERM, SIGKILL 5 s later) on cancel, on shutdown and after
 * LLM_ROUTER_CONVERT_TIMEOUT. Exit status 0 and a GGUF at the output path:
 * the output "<name>.<OUTTYPE>.gguf" moves to <models dir>/<id>/ and is
 * added to the catalogue; anything else fails the task with the log kept. */
#ifndef RT_DOWNLOADS_H
#define RT_DOWNLOADS_H

#include "models/hf.h"

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

/* Loads the persisted tasks and queues again the unfinished ones (queued,
 * downloading, verifying, converting), then starts the task threads. */
rt_downloads_t *rt_downloads_new(const rt_downloads_opts_t *o, rt_models_t *models, rt_store_t *st);
/* Stops the threads (running transfers are interrupted and stay resumable;
 * a running converter's process group is killed and runs again next start). */
void rt_downloads_free(rt_downloads_t *d);

/* Every task as JSON (id, kind, repo, revision, filename, files, state,
 * bytes_done, bytes_total, speed_bps, eta_s, error, model_id, created_at,
 * updated_at; a convert task adds outtype, name and log): a new array,
 * oldest first. kind "download", "convert" or NULL (all). Any thread. */
struct cJSON *rt_downloads_tasks_json(rt_downloads_t *d, const char *kind);
/* One task (kind NULL: any), a new object; NULL when unknown. Any thread. */
struct cJSON *rt_downloads_task_json(rt_downloads_t *d, const char *id, const char *kind);

/* POST /api/models/register: resolves repo at revision (NULL: "main")
 * through the Hub, picks the file(s) (filename NULL: the rule above),
 * checks the disk space, queues the task. 0 with *task (new object) and
 * *status 202 (queued) or 200 (the same task already active); -1 with e
 * (status 400, 403 gated or private, 404, 409, 429, 502, 504, 507). Blocking: off the loops. */
int rt_downloads_register(rt_downloads_t *d, const char *repo, const char *filename,
                          const char *revision, struct cJSON **task, int *status, rt_hf_err_t *e);
/* POST /api/models/convert: a convert task for repo's files. outtype
 * "f16" (NULL) or "q8_0"; name (NULL: the repository's name) names the
 * output "<name>.<OUTTYPE>.gguf". With no converter configured the task is
 * created already failed, its error naming LLM_ROUTER_CONVERTER (still 0:
 * the API answers 202 with it). 0 with *task, or -1 with e. Off the loops. */
int rt_downloads_convert(rt_downloads_t *d, const char *repo, const char *revision, const char *outtype,
                         const char *name, struct cJSON **task, rt_hf_err_t *e);
/* GET /api/models/available: the Hub's GGUF repositories (rt_hf_search). */
int rt_downloads_search(rt_downloads_t *d, const char *search, int limit, struct cJSON **out,
                        rt_hf_err_t *e);

/* DELETE of a task (kind NULL: any): a queued or running task is cancelled
 * (a transfer stops within about a second, a converter's process group is
 * killed; its partial files are deleted) and *task is its state after
 * (waits up to 3 s for the thread); a finished task's record is deleted.
 * 0 cancelled, 1 deleted, -1 unknown. Off the loops. */
#define RT_DOWNLOADS_CANCEL_WAIT_MS 3000
int rt_downloads_cancel(rt_downloads_t *d, const char *id, const char *kind, struct cJSON **task);
/* Cancels the tasks in flight that produce model_id (DELETE of a model),
 * waiting as above. The number cancelled. Off the loops. */
int rt_downloads_cancel_model(rt_downloads_t *d, const char *model_id);

#endif
