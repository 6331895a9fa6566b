/* sysinfo: machine figures for heartbeats and metrics: CPU % (from the
 * difference of two /proc/stat readings), memory % (/proc/meminfo), and GPUs
 * through NVML when libnvidia-ml can be dlopen'ed at run time (no build-time
 * GPU dependency; without it the machine is CPU-only). Thread-safe. */
#ifndef CM_SYSINFO_H
#define CM_SYSINFO_H

#include <stdbool.h>
#include <stdint.h>

#define CM_SYSINFO_MAX_GPU 16

typedef struct {
    char model[96];
    int count;          /* devices of this model */
} cm_gpu_model_t;

typedef struct {
    double cpu_usage;          /* 0..100, since the previous reading */
    double memory_usage;       /* 0..100 */
    uint64_t mem_total, mem_available;
    bool gpu_available;
    int ngpu;                  /* devices */
    int nmodels;
    cm_gpu_model_t models[CM_SYSINFO_MAX_GPU];
    double gpu_usage;          /* mean utilisation 0..100 */
    double gpu_memory_usage;   /* used / total 0..100 */
} cm_sysinfo_t;

typedef struct cm_sysinfo cm_sysinfo_sampler_t;

cm_sysinfo_sampler_t *cm_sysinfo_new(void);
void cm_sysinfo_free(cm_sysinfo_sampler_t *s);
void cm_sysinfo_read(cm_sysinfo_sampler_t *s, cm_sysinfo_t *out);

/* Pure parsers (tested on their own). 0, or -1 when the text lacks them. */
int cm_sysinfo_parse_stat(const char *text, uint64_t *busy, uint64_t *total);
int cm_sysinfo_parse_meminfo(const char *text, uint64_t *total, uint64_t *available);

#endif
