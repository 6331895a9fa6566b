#include "sysinfo.h"

#include "util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few NVML entry points used, declared here so nothing GPU-related is
 * needed at build time. */
typedef void *nvml_dev_t;
typedef struct { unsigned int gpu, memory; } nvml_util_t;
typedef struct { unsigned long long total, free, used; } nvml_mem_t;

typedef struct {
    void *lib;
    int (*init)(void);
    int (*count)(unsigned int *);
    int (*handle)(unsigned int, nvml_dev_t *);
    int (*name)(nvml_dev_t, char *, unsigned int);
    int (*util)(nvml_dev_t, nvml_util_t *);
    int (*mem)(nvml_dev_t, nvml_mem_t *);
} nvml_t;

struct cm_sysinfo {
    pthread_mutex_t mu;
    uint64_t prev_busy, prev_total;
    nvml_t nv;
    bool nv_ok;
};

int cm_sysinfo_parse_stat(const char *text, uint64_t *busy, uint64_t *total)
{
    unsigned long long v[8] = { 0 };
    if (strncmp(text, "cpu ", 4) != 0)
        return -1;
    int n = sscanf(text + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]);
    if (n < 4)
        return -1;
    uint64_t t = 0;
    for (int i = 0; i < n; i++)
        t += v[i];
    *total = t;
    *busy = t - v[3] - (n > 4 ? v[4] : 0); /* minus idle and iowait */
    return 0;
}

int cm_sysinfo_parse_meminfo(const char *text, uint64_t *total, uint64_t *available)
{
    const char *t = strstr(text, "MemTotal:");
    const char *a = strstr(text, "MemAvailable:");
    unsigned long long kt, ka;
    if (!t || !a || sscanf(t, "MemTotal: %llu", &kt) != 1 || sscanf(a, "MemAvailable: %llu", &ka) != 1)
        return -1;
    *total = kt * 1024;
    *available = ka * 1024;
    return 0;
}

static void nvml_open(nvml_t *nv, bool *ok)
{
    *ok = false;
    nv->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!nv->lib)
        return;
    *(void **)&nv->init = dlsym(nv->lib, "nvmlInit_v2");
    *(void **)&nv->count = dlsym(nv->lib, "nvmlDeviceGetCount_v2");
    *(void **)&nv->handle = dlsym(nv->lib, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&nv->name = dlsym(nv->lib, "nvmlDeviceGetName");
    *(void **)&nv->util = dlsym(nv->lib, "nvmlDeviceGetUtilizationRates");
    *(void **)&nv->mem = dlsym(nv->lib, "nvmlDeviceGetMemoryInfo");
    if (!nv->init || !nv->count || !nv->handle || !nv->name || !nv->util || !nv->mem ||
        nv->init() != 0) {
        dlclose(nv->lib);
        nv->lib = NULL;
        return;
    }
    *ok = true;
}

cm_sysinfo_sampler_t *cm_sysinfo_new(void)
{
    cm_sysinfo_sampler_t *s = cm_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    nvml_open(&s->nv, &s->nv_ok);
    return s;
}

void cm_sysinfo_free(cm_sysinfo_sampler_t *s)
{
    if (!s)
        return;
    if (s->nv.lib)
        dlclose(s->nv.lib);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void read_gpus(nvml_t *nv, cm_sysinfo_t *out)
{
    unsigned int n = 0;
    if (nv->count(&n) != 0 || n == 0)
        return;
    double util = 0;
    unsigned long long mt = 0, mu = 0;
    for (unsigned int i = 0; i < n; i++) {
        nvml_dev_t d;
        if (nv->handle(i, &d) != 0)
            continue;
        char name[96] = "NVIDIA GPU";
        nv->name(d, name, sizeof(name));
        nvml_util_t u = { 0, 0 };
        nvml_mem_t m = { 0, 0, 0 };
        if (nv->util(d, &u) == 0)
            util += u.gpu;
        if (nv->mem(d, &m) == 0) {
            mt += m.total;
            mu += m.used;
        }
        out->ngpu++;
        int k = 0;
        while (k < out->nmodels && strcmp(out->models[k].model, name) != 0)
            k++;
        if (k == out->nmodels && k < CM_SYSINFO_MAX_GPU) {
            snprintf(out->models[k].model, sizeof(out->models[k].model), "%s", name);
            out->nmodels++;
        }
        if (k < CM_SYSINFO_MAX_GPU)
            out->models[k].count++;
    }
    out->gpu_available = out->ngpu > 0;
    out->gpu_usage = out->ngpu ? util / out->ngpu : 0;
    out->gpu_memory_usage = mt ? 100.0 * (double)mu / (double)mt : 0;
}

void cm_sysinfo_read(cm_sysinfo_sampler_t *s, cm_sysinfo_t *out)
{
    memset(out, 0, sizeof(*out));
    char *text = NULL;
    size_t len;
    uint64_t busy, total;
    pthread_mutex_lock(&s->mu);
    if (cm_read_file("/proc/stat", 1 << 20, &text, &len) == 0 &&
        cm_sysinfo_parse_stat(text, &busy, &total) == 0) {
        uint64_t db = busy - s->prev_busy, dt = total - s->prev_total;
        out->cpu_usage = dt ? 100.0 * (double)db / (double)dt : 0;
        s->prev_busy = busy;
        s->prev_total = total;
    }
    free(text);
    text = NULL;
    if (cm_read_file("/proc/meminfo", 1 << 20, &text, &len) == 0 &&
        cm_sysinfo_parse_meminfo(text, &out->mem_total, &out->mem_available) == 0 && out->mem_total)
        out->memory_usage = 100.0 * (double)(out->mem_total - out->mem_available) / (double)out->mem_total;
    free(text);
    if (s->nv_ok)
        read_gpus(&s->nv, out);
    pthread_mutex_unlock(&s->mu);
}
