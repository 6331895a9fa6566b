/* history: placeholder until the history store lands (store/history.h). */
#include "store/history.h"


int rt_history_open(const char *path, rt_history_t **out, char *err, size_t errlen)
{
    (void)path;
    (void)err;
    (void)errlen;
    *out = NULL; /* none yet: the recorder counts metrics only */
    return 0;
}
void rt_history_close(rt_history_t *h) { (void)h; }
int rt_history_insert(rt_history_t *h, const rt_history_row_t *rows, size_t n) { (void)h; (void)rows; (void)n; return -1; }
int rt_history_list(rt_history_t *h, const rt_history_filter_t *f, int64_t offset, int limit, bool with_bodies,
                    void (*cb)(const rt_history_row_t *row, void *arg), void *arg, int64_t *total)
{
    (void)h; (void)f; (void)offset; (void)limit; (void)with_bodies; (void)cb; (void)arg; (void)total;
    return -1;
}
int rt_history_get(rt_history_t *h, const char *id, void (*cb)(const rt_history_row_t *row, void *arg), void *arg)
{
    (void)h; (void)id; (void)cb; (void)arg;
    return -1;
}
int rt_history_export(rt_history_t *h, const rt_history_filter_t *f,
                      bool (*cb)(const rt_history_row_t *row, void *arg), void *arg)
{
    (void)h; (void)f; (void)cb; (void)arg;
    return -1;
}
int rt_history_buckets(rt_history_t *h, int64_t bucket_ms, int64_t from_ms, int64_t to_ms,
                       void (*cb)(const rt_history_agg_t *b, void *arg), void *arg)
{
    (void)h; (void)bucket_ms; (void)from_ms; (void)to_ms; (void)cb; (void)arg;
    return -1;
}
int rt_history_summary(rt_history_t *h, int64_t since_ms, rt_history_agg_t *out) { (void)h; (void)since_ms; (void)out; return -1; }
int64_t rt_history_prune(rt_history_t *h, int64_t before_ms, int batch) { (void)h; (void)before_ms; (void)batch; return -1; }
int64_t rt_history_count(rt_history_t *h) { (void)h; return -1; }
