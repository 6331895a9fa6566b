/* models: the router's model catalogue. Rows persisted in the store
 * (migration 4, table models; store/store_models.c), files under
 * LLM_ROUTER_MODELS_DIR, an in-memory mirror so that /v1/models, the blob
 * route and the heartbeat reply never read SQLite or the disk on a loop.
 *
 * Ids are normalised from the file name (rt_model_id_from_file, the rule in
 * README "Models"). A GGUF's header is read with ggml's gguf reader
 * (gguf_init_from_file, no_alloc) before a file is added; a file that is not
 * a valid GGUF is refused with a clear error. Adding and removing touch the
 * disk and SQLite: call them off the loops (rt_offload, a task thread).
 * Reads (get, list, version) are safe from any thread. */
#ifndef RT_MODELS_H
#define RT_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
typedef struct rt_store rt_store_t;
typedef struct rt_models rt_models_t;

#define RT_SHA256_HEX 65 /* 64 hex digits and the NUL */

typedef struct {
    char *name;                 /* file name inside the model's directory (a split GGUF has several) */
    char *path;                 /* absolute path */
    uint64_t size;
    char sha256[RT_SHA256_HEX]; /* lowercase hex; "" when unknown */
} rt_model_file_t;

/* What the GGUF header says (rt_gguf_info). */
typedef struct {
    char architecture[64];
    uint64_t parameters;        /* 0: unknown */
    uint32_t context_length;    /* 0: unknown */
    char quantization[32];      /* "Q4_K_M", "F16", ... ("" unknown) */
    bool chat_template;
} rt_gguf_info_t;

typedef struct {
    char *id;
    rt_model_file_t *files;     /* at least one; files[0] is what llama.cpp opens */
    size_t nfiles;
    uint64_t size;              /* all files */
    char *source_repo, *source_revision, *source_file; /* NULL for a discovered file */
    char *format;               /* "gguf" */
    char *state;                /* "ready" */
    rt_gguf_info_t info;
    int64_t created_ms;
} rt_model_rec_t;

typedef struct {
    const char *dir;            /* LLM_ROUTER_MODELS_DIR (created when missing) */
} rt_models_opts_t;

/* Loads the catalogue from the store (rows whose files are gone are kept but
 * flagged in the log). NULL with err filled on failure. */
rt_models_t *rt_models_new(const rt_models_opts_t *o, rt_store_t *st, char *err, size_t errlen);
void rt_models_free(rt_models_t *m);
const char *rt_models_dir(const rt_models_t *m);

/* "llama-2-7b.Q4_K_M.gguf" -> "llama-2-7b": the rule in README "Models"
 * (path and ".gguf" dropped, a trailing quantisation tag dropped, a split
 * suffix "-00001-of-00003" dropped). A new string. unique_with_quant gives
 * "llama-2-7b-Q4_K_M": what an id becomes when another quantisation of the
 * same model is already registered. */
char *rt_model_id_from_file(const char *file, bool unique_with_quant);

/* Reads a GGUF header. 0, or -1 with err ("not a GGUF file: ...") */
int rt_gguf_info(const char *path, rt_gguf_info_t *out, char *err, size_t errlen);
/* Part and count of a split GGUF's file name ("x-00002-of-00003.gguf":
 * 2 and 3); false when the name has no split suffix. */
bool rt_model_split_part(const char *file, unsigned *part, unsigned *count);
/* Whether id is a well-formed model id: 1 to RT_MODEL_ID_MAX-1 bytes of
 * [A-Za-z0-9._-], not starting with '.'. */
bool rt_model_id_valid(const char *id);
/* SHA-256 of a file's bytes in lowercase hex, streaming 1 MiB reads
 * (blocking: off the loops); *size (may be NULL) the bytes hashed. 0, or -1
 * with err. */
int rt_file_sha256(const char *path, char hex[RT_SHA256_HEX], uint64_t *size, char *err, size_t errlen);

/* Adds a model whose files are already in place (a finished download, a
 * discovered file): reads the header of files[0], computes missing
 * SHA-256s (blocking), picks the id (rec->id when set, else from the file
 * name, made unique), inserts the row, bumps the version. Takes nothing
 * from rec (copies); created_ms 0 means now. 0 and the id chosen in id_out
 * (RT_MODEL_ID_MAX), or -1 with err. Off the loops.
 *
 * The id rule (README "Models"): rt_model_id_from_file of the file name
 * (source_file when set, else files[0]'s name); when another model has
 * that id, the form keeping the quantisation tag ("llama-2-7b-Q4_K_M");
 * when that is taken too, it with "-2", "-3", ... */
#define RT_MODEL_ID_MAX 256
/* Status of rt_models_add beside 0 / -1: files[0] is already registered;
 * id_out holds that model's id (a retried download can treat it as done). */
#define RT_MODELS_EXISTS (-2)
/* Each files[i] needs path (absolute or relative to the working directory;
 * stored as the canonical absolute path); name defaults to the path's last
 * component, size to the file's (a size given that differs is an error),
 * sha256 "" is computed. rec->id, when set, must pass rt_model_id_valid
 * and is made unique the same way ("-2", "-3"). */
int rt_models_add(rt_models_t *m, const rt_model_rec_t *rec, char id_out[RT_MODEL_ID_MAX], char *err, size_t errlen);
/* Removes the row and, when the file is inside the models directory, the
 * files. 0, 1 when unknown, -1 on a store error. Off the loops. */
int rt_models_remove(rt_models_t *m, const char *id, char *err, size_t errlen);

/* Copies of the mirror (any thread, no I/O). get: true when found. */
bool rt_models_get(rt_models_t *m, const char *id, rt_model_rec_t *out);
size_t rt_models_list(rt_models_t *m, rt_model_rec_t **out);
/* The id of the model whose files[0] is path (compared canonically), into
 * id_out; false when none. Any thread (realpath on path: a stat, no lock
 * held meanwhile). */
bool rt_models_find_path(rt_models_t *m, const char *path, char id_out[RT_MODEL_ID_MAX]);
/* Whether path (canonical) lies inside the models directory. */
bool rt_models_path_inside(const rt_models_t *m, const char *path);
void rt_model_rec_clear(rt_model_rec_t *r);             /* frees the strings, not r */
void rt_model_recs_free(rt_model_rec_t *v, size_t n);    /* clears each, frees v */
/* Bumped on every add and remove: a node whose heartbeat reply carries a
 * version it has not seen reads /v1/models again. */
uint64_t rt_models_version(rt_models_t *m);
/* A model object for the API (/api/models/registered, /v1/models with
 * for_node: path, size, sha256, files and blob URLs). */
struct cJSON *rt_model_json(const rt_model_rec_t *r, bool for_node);
/* Every registered model (only_id: just that one) as rt_model_json objects
 * appended to arr, with "ready_nodes" and "nodes" filled by count (may be
 * NULL: 0) for each id: how many online nodes advertise it and are ready,
 * and how many advertise it at all. Returns how many were appended. Any
 * thread, no I/O. */
size_t rt_models_append_json(rt_models_t *m, struct cJSON *arr, bool for_node, const char *only_id,
                             void (*count)(const char *id, int *ready, int *nodes, void *arg), void *arg);

/* Discovery (models_discover.c): registers the GGUF files already in dir
 * (NULL: the models directory), *.gguf and <sub>/ *.gguf, in place (never
 * moved or copied). Skipped without a word: hidden names, names that do not
 * end in ".gguf" (a download's ".part"). Skipped with a reason (appended to
 * skipped as {"file","reason"}): non-regular files, symlinks that lead out
 * of dir, files already registered, split parts without their first part or
 * with one missing, files that are not valid GGUFs. A file at the top of
 * dir gets its id from the file name; the one model in a subdirectory gets
 * the subdirectory's name (what a node scanning the same directory calls
 * it). The split parts "-0000k-of-0000N" of one model become one model. Each
 * registered model is appended to registered (rt_model_json, not for_node).
 * Blocking (hashes every new file): off the loops. One discovery at a time:
 * RT_MODELS_BUSY while another runs. 0, or -1 with err (dir is not a
 * directory). */
#define RT_MODELS_BUSY (-3)
int rt_models_discover(rt_models_t *m, const char *dir, struct cJSON *registered, struct cJSON *skipped,
                       char *err, size_t errlen);

#endif
