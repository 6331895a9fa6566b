/* models: the GGUF files a node can serve, found in LLM_NODE_MODELS_DIR.
 *
 * A model's id comes from its file name (nd_model_id_from_file). A scan
 * builds a new list off the lock and swaps it in whole; readers take the lock
 * only to copy from the last list, so they never touch the disk and are safe
 * from any thread. The node scans at start and then on a watcher thread
 * (nd_models_watch), never on its HTTP loop: a request for an unknown id is
 * answered from the last scan instead of letting clients trigger disk scans.
 * Also the pure policy that picks which loaded model to unload. */
#ifndef ND_MODELS_H
#define ND_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* "dir/llama-2-7b.Q4_K_M.gguf" -> "llama-2-7b": the directory, the ".gguf"
 * extension and a trailing quantization tag (Q4_K_M, q8_0, IQ2_XS, F16,
 * BF16, f32, ...) after '.' or '-' are removed. A new string. */
char *nd_model_id_from_file(const char *path);

typedef struct nd_models nd_models_t;

/* dir is copied; it need not exist yet. */
nd_models_t *nd_models_new(const char *dir);
/* Stops the watcher, if any, and frees. NULL is a no-op. */
void nd_models_free(nd_models_t *m);
/* Rescans the directory: *.gguf files, and <name>/<file>.gguf (id <name>)
 * for a subdirectory holding one GGUF. When two files would get the same id,
 * both keep their full file stem instead. Returns the number of models.
 * Reads the disk: not for an event loop's thread. */
int nd_models_scan(nd_models_t *m);
/* Starts a thread that rescans every interval_ms (the first scan one
 * interval from now), so a file added to the directory becomes servable
 * within that time. Once per list; 0, or -1 when the thread cannot start. */
int nd_models_watch(nd_models_t *m, int interval_ms);
/* Scans done so far, by any thread: a test hook that shows which paths touch
 * the disk. */
uint64_t nd_models_scans(nd_models_t *m);
/* The path of model id (a new string), or NULL when unknown. */
char *nd_models_path(nd_models_t *m, const char *id);
/* A JSON array of the ids (caller owns). */
struct cJSON *nd_models_ids_json(nd_models_t *m);
size_t nd_models_count(nd_models_t *m);

/* ---- unload policy (pure) ---- */
typedef struct {
    uint64_t last_used_ms; /* last time a request used it */
    int in_flight;         /* active + queued requests */
    uint64_t bytes;
} nd_loaded_info_t;

/* The least recently used model with nothing in flight, or -1. */
int nd_models_pick_victim(const nd_loaded_info_t *m, int n);

enum { ND_ROOM_OK = -1, ND_ROOM_WAIT = -2, ND_ROOM_NEVER = -3 };
/* Room for a new model of `bytes` next to the n loaded ones under the caps
 * (0: no cap): ND_ROOM_OK, the index of the model to unload first (then ask
 * again), ND_ROOM_WAIT when every candidate is busy, ND_ROOM_NEVER when it
 * cannot fit even alone. */
int nd_models_room(const nd_loaded_info_t *m, int n, int max_loaded, uint64_t max_memory,
                   uint64_t bytes);

#endif
