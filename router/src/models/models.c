/* models: PLACEHOLDER until the catalogue lands. */
#include "models/models.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_models {
    char *dir;
};

rt_models_t *rt_models_new(const rt_models_opts_t *o, rt_store_t *st, char *err, size_t errlen)
{
    (void)st, (void)err, (void)errlen;
    rt_models_t *m = cm_xcalloc(1, sizeof(*m));
    m->dir = cm_xstrdup(o->dir ? o->dir : "");
    return m;
}

void rt_models_free(rt_models_t *m)
{
    if (!m)
        return;
    free(m->dir);
    free(m);
}

const char *rt_models_dir(const rt_models_t *m) { return m->dir; }
bool rt_models_get(rt_models_t *m, const char *id, rt_model_rec_t *out) { (void)m, (void)id, (void)out; return false; }
size_t rt_models_list(rt_models_t *m, rt_model_rec_t **out) { (void)m; *out = NULL; return 0; }
void rt_model_rec_clear(rt_model_rec_t *r) { (void)r; }
void rt_model_recs_free(rt_model_rec_t *v, size_t n) { (void)n; free(v); }
uint64_t rt_models_version(rt_models_t *m) { (void)m; return 0; }
