/* config: every environment variable of a program declared in one table.
 *
 * A program declares `static const cm_opt_t opts[]` (name, legacy aliases,
 * type, default, bounds, help line, and the field of the program's typed
 * configuration struct it fills: CM_AT(type, field)), loads it once at start
 * with cm_config_load(), and its modules read the struct's fields. Nothing is
 * looked up by name after loading, so a misspelt option cannot hide on a path
 * that runs late. --help and the README's tables are generated from the same
 * table (cm_config_print_help/_markdown).
 *
 * Field types: STR, SECRET, PATH and ENUM fill a `const char *` (NULL when
 * unset; the text is owned by the cm_config_t, so the struct is valid while
 * it lives); INT an `int` or a `long long` (bounds must fit); BOOL a `bool`.
 * A field of the wrong size is a programming error that aborts at load, which
 * every start runs.
 *
 * Secrets: every CM_OPT_SECRET option NAME may instead be given as
 * NAME_FILE, the path of a file holding it (a mounted secret): the file's
 * content, trailing newlines stripped, at most 64 KiB, neither empty nor
 * with a NUL. NAME (under a legacy alias too, and not empty) and NAME_FILE
 * both set is an error, as is a file that cannot be read; a file other users may read is
 * a warning. Messages name the variable and the path, never the secret; the
 * loaded secrets are overwritten when the config is freed.
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
    size_t off, size;      /* the field it fills: CM_AT(type, field) */
} cm_opt_t;

#define CM_AT(type, field) offsetof(type, field), sizeof(((type *)0)->field)

typedef struct cm_config cm_config_t;

/* Environment lookup; NULL means "not set". Tests inject their own. */
typedef const char *(*cm_getenv_fn)(const char *name, void *ud);

/* Loads every option from the environment (getenv when fn is NULL) into the
 * fields of dst (the program's typed configuration). On a bad value returns
 * -1 and writes a message naming the variable into err. On success *out owns
 * the text dst's strings point to (cm_config_free). The table must outlive
 * the config. */
int cm_config_load(const cm_opt_t *opts, size_t n, cm_getenv_fn fn, void *ud, void *dst,
                   cm_config_t **out, char *err, size_t errlen);
void cm_config_free(cm_config_t *cfg);

/* How many options were present in the environment (under their name or an
 * alias): for tests of the loader. */
size_t cm_config_nset(const cm_config_t *cfg);

/* Deprecation warnings ("ROUTER_PORT is deprecated; use LLM_ROUTER_PORT"),
 * to be logged once logging is up. Valid while cfg lives. */
size_t cm_config_warnings(const cm_config_t *cfg, const char *const **out);

/* Starts logging (level as text, e.g. "info"; dir of the JSON-lines files;
 * days kept; max_bytes: a day's file rolls to .1 past it, 0 no cap), then
 * logs an unknown level (level_var names its variable) and every
 * deprecation warning of cfg. prog names the log files. */
void cm_config_init_log(const cm_config_t *cfg, const char *prog, const char *level_var,
                        const char *level, const char *dir, int retention_days, long long max_bytes);

void cm_config_print_help(FILE *f, const char *prog, const char *usage,
                          const cm_opt_t *opts, size_t n);
/* A Markdown table: | Variable | Default | Description | Legacy | */
void cm_config_print_markdown(FILE *f, const cm_opt_t *opts, size_t n);

#endif
