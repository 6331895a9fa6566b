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
 * are written by an atexit handler.
 *
 * Floods: LOG_WARN and LOG_ERROR are limited per call site (each use of the
 * macro, hence one message template): at most CM_LOG_SITE_PER_SEC lines a
 * second; the rest are counted, not formatted, and summarised in one line
 * ("... repeated N more time(s)", naming the template, never the arguments)
 * when the second is over (by the writer thread, within about a second) or
 * with the site's next line. A client that makes the router warn ten
 * thousand times a second makes ten lines and a summary. cm_log_write itself
 * and the lower levels are not limited.
 *
 * Size: with max_bytes, a day's file that would grow past it is renamed to
 * <file>.1 (replacing an earlier .1) and a new one is started, so a day takes
 * at most about twice max_bytes on disk; retention deletes both. */
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
    long long max_bytes;   /* a day's file rolls to <file>.1 at this size (0: no cap) */
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

/* Lines one call site of LOG_WARN / LOG_ERROR writes in a second at most. */
#define CM_LOG_SITE_PER_SEC 10

/* The state of one call site (a static of the macro's block). Zero is the
 * initial state; the fields are the log module's. */
typedef struct cm_log_site {
    struct cm_log_site *next; /* registered sites, for the summaries */
    char *component, *fmt;    /* copies, taken at the first line */
    cm_log_level_t level;
    int64_t second;           /* the monotonic second being counted */
    unsigned count;           /* lines written in it */
    uint64_t suppressed;      /* lines counted, not written, not yet summarised */
    int registered;
} cm_log_site_t;

/* cm_log_write, limited per site (see the top of this file). */
void cm_log_site_write(cm_log_site_t *site, cm_log_level_t level, const char *component,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Writes the summary of every site whose counted second is over (all of
 * them with all) and has suppressed lines; returns how many. The writer
 * thread calls it about once a second; tests call it. */
int cm_log_summarise(int all);

#define CM_LOG_AT_SITE(l, c, ...)                                                                  \
    do {                                                                                           \
        static cm_log_site_t cm_log_site_;                                                         \
        cm_log_site_write(&cm_log_site_, l, c, __VA_ARGS__);                                       \
    } while (0)

#define LOG_TRACE(c, ...) cm_log_write(CM_LOG_TRACE, c, __VA_ARGS__)
#define LOG_DEBUG(c, ...) cm_log_write(CM_LOG_DEBUG, c, __VA_ARGS__)
#define LOG_INFO(c, ...) cm_log_write(CM_LOG_INFO, c, __VA_ARGS__)
#define LOG_WARN(c, ...) CM_LOG_AT_SITE(CM_LOG_WARN, c, __VA_ARGS__)
#define LOG_ERROR(c, ...) CM_LOG_AT_SITE(CM_LOG_ERROR, c, __VA_ARGS__)

#endif
