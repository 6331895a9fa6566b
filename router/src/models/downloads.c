/* downloads: PLACEHOLDER until the tasks land. */
#include "models/downloads.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

struct rt_downloads {
    int unused;
};

rt_downloads_t *rt_downloads_new(const rt_downloads_opts_t *o, rt_models_t *models, rt_store_t *st)
{
    (void)o, (void)models, (void)st;
    return cm_xcalloc(1, sizeof(rt_downloads_t));
}

void rt_downloads_free(rt_downloads_t *d) { free(d); }
struct cJSON *rt_downloads_tasks_json(rt_downloads_t *d, const char *kind) { (void)d, (void)kind; return cJSON_CreateArray(); }
