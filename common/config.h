/* config: every environment variable of a program declared in one table.
 *
 * A program declares `static const cm_opt_t opts[]` (name, legacy aliases,
 * type, default, bounds, help line), loads it once at start with
 * cm_config_load(), and reads typed values by name. --help and the README's
 * tables are generated from the same table (cm_config_print_help/_markdown).
 *
 * Defaults may start with "${OTHER_VAR}" to derive from another option, e.g.
 * "${LLM_ROUTER_DATA_DIR}/router.db"; "~/" expands to $HOME for PATH options. */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    CM_OPT_STR,    /* any text */
    CM_OPT_SECRET, /* text never printed (help shows only whether it is set) */
    CM_OPT_PATH,   /* text, "~/" expanded */
    CM_OPT_INT,    /* integer within [min, max] */
    CM_OPT_BOOL,   /* 1/0, true/false, yes/no, on/off */
    CM_OPT_ENUM,   /* one of `choices` (comma-separated) */
} cm_opt_type_t;

typedef struct {
    const char *name;
    const char *legacy[4]; /* deprecated aliases, NULL-terminated */
    cm_opt_type_t type;
    const char *def;       /* default as text; NULL: unset */
    long long min, max;    /* CM_OPT_INT bounds (inclusive) */
    const char *choices;   /* CM_OPT_ENUM: "auto,metrics" */
    const char *help;      /* one line */
} cm_opt_t;

typedef struct cm_config cm_config_t;

/* Environment lookup; NULL means "not set". Tests inject their own. */
typedef const char *(*cm_getenv_fn)(const char *name, void *ud);

/* Loads every option from the environment (getenv when fn is NULL). On a bad
 * value returns -1 and writes a message naming the variable into err.
 * On success *out is owned by the caller (cm_config_free). The table must
 * outlive the config. */
int cm_config_load(const cm_opt_t *opts, size_t n, cm_getenv_fn fn, void *ud,
                   cm_config_t **out, char *err, size_t errlen);
void cm_config_free(cm_config_t *cfg);

/* Typed reads. The name must be in the table (abort otherwise: a programming
 * error). str returns NULL when unset and without default. */
const char *cm_config_str(const cm_config_t *cfg, const char *name);
long long cm_config_int(const cm_config_t *cfg, const char *name);
bool cm_config_bool(const cm_config_t *cfg, const char *name);
/* True when the variable (or an alias) was present in the environment. */
bool cm_config_is_set(const cm_config_t *cfg, const char *name);

/* Deprecation warnings ("ROUTER_PORT is deprecated; use LLM_ROUTER_PORT"),
 * to be logged once logging is up. Valid while cfg lives. */
size_t cm_config_warnings(const cm_config_t *cfg, const char *const **out);

/* Starts logging from the options PREFIX_LOG_LEVEL, PREFIX_LOG_DIR and
 * PREFIX_LOG_RETENTION_DAYS (e.g. prefix "LLM_ROUTER"), then logs an unknown
 * level and every deprecation warning. prog names the log files. */
void cm_config_init_log(const cm_config_t *cfg, const char *prog, const char *prefix);

void cm_config_print_help(FILE *f, const char *prog, const char *usage,
                          const cm_opt_t *opts, size_t n);
/* A Markdown table: | Variable | Default | Description | Legacy | */
void cm_config_print_markdown(FILE *f, const cm_opt_t *opts, size_t n);

#endif
