/* log: levelled logging to stderr (human-readable) and to daily JSON-lines
 * files (<dir>/<prog>.YYYY-MM-DD.jsonl) with retention in days; the last
 * entries are kept in memory for the logs APIs (cm_log_tail_json).
 *
 * Thread-safe, and a caller never waits for a disk or a terminal: between
 * cm_log_init() and cm_log_shutdown() a line goes into the memory ring and a
 * bounded queue, and a writer thread writes the queue to stderr and the file
 * (flushing the file whenever the queue drains). When the queue is full the
 * line is dropped from stderr and the file (it is still in the ring) and
 * counted; the writer reports the count in a warning line ("log: N line(s)
 * dropped ...") as soon as a line fits again, or at shutdown.
 *
 * Before cm_log_init() and after cm_log_shutdown() lines are written
 * synchronously, to stderr only. Lines still queued when the process exits
 * are written by an atexit handler. */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CM_LOG_TRACE, CM_LOG_DEBUG, CM_LOG_INFO, CM_LOG_WARN, CM_LOG_ERROR } cm_log_level_t;

typedef struct {
    const char *prog;      /* file name prefix and "target" field */
    const char *dir;       /* NULL: no files */
    int retention_days;    /* files older than this are deleted (0: keep) */
    cm_log_level_t level;
    int ring_size;         /* entries kept in memory for tail (0: 1000) */
    size_t queue_bytes;    /* lines waiting for the writer, at most (0: 1 MiB);
                            * beyond it lines are dropped and counted */
} cm_log_opts_t;

/* Opens the day's file, prunes old ones and starts the writer thread (an
 * earlier writer is drained and stopped first). 0, or -1 when dir cannot be
 * made. */
int cm_log_init(const cm_log_opts_t *opts);
/* Writes every queued line, joins the writer, closes the file and frees the
 * ring. Logging goes on afterwards, synchronously to stderr. */
void cm_log_shutdown(void);
/* Returns once every line logged before the call is written and the file
 * flushed (for start-up lines that must precede a "ready" line on another
 * stream, and for tests). Blocks as long as the writer does. */
void cm_log_flush(void);
/* Lines dropped because the queue was full, since the process started. */
uint64_t cm_log_dropped(void);

/* "trace|debug|info|warn|error" (also "warning"); also the EnvFilter-style
 * "llm_router=debug" form (the last level named wins). -1 when unknown. */
int cm_log_level_parse(const char *s);
const char *cm_log_level_name(cm_log_level_t level);
void cm_log_set_level(cm_log_level_t level);
cm_log_level_t cm_log_get_level(void);

void cm_log_write(cm_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The last n entries (at most the ring size) as a JSON array text
 * [{"timestamp","level","target","message"},...], oldest first. Caller frees. */
char *cm_log_tail_json(int n);

/* Deletes <dir>/<prog>.*.jsonl files older than retention_days. Called at init
 * and at each day change. Returns how many were removed. */
int cm_log_prune(void);

#define LOG_TRACE(c, ...) cm_log_write(CM_LOG_TRACE, c, __VA_ARGS__)
#define LOG_DEBUG(c, ...) cm_log_write(CM_LOG_DEBUG, c, __VA_ARGS__)
#define LOG_INFO(c, ...) cm_log_write(CM_LOG_INFO, c, __VA_ARGS__)
#define LOG_WARN(c, ...) cm_log_write(CM_LOG_WARN, c, __VA_ARGS__)
#define LOG_ERROR(c, ...) cm_log_write(CM_LOG_ERROR, c, __VA_ARGS__)

#endif
