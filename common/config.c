#include "config.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A secret read from a <NAME>_FILE is at most this long: a key, a token, a
 * password; anything longer is a wrong path (a log, a binary). */
#define SECRET_FILE_MAX 65536

typedef struct {
    char *text;   /* resolved value (default applied), NULL when unset */
    long long i;  /* INT and BOOL */
    bool set;     /* present in the environment */
} value_t;

struct cm_config {
    const cm_opt_t *opts;
    size_t n;
    value_t *vals;
    char **warnings;
    size_t nwarn;
};

static const char *env_get(cm_getenv_fn fn, void *ud, const char *name)
{
    const char *v = fn ? fn(name, ud) : getenv(name);
    return v;
}

static void warn(cm_config_t *cfg, char *msg)
{
    cfg->warnings = cm_xrealloc(cfg->warnings, (cfg->nwarn + 1) * sizeof(char *));
    cfg->warnings[cfg->nwarn++] = msg;
}

/* Overwrites a secret before its memory is freed. */
static void wipe(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = 0;
}

/* Reads the secret of option `var` from the file `path` (the value of
 * var_FILE): the whole content, trailing newlines stripped (what `echo` and
 * editors leave), at most SECRET_FILE_MAX bytes, not empty. Errors and
 * warnings name the variable and the path, never the content. 0 with *out
 * (caller frees), or -1 with err. */
static int read_secret_file(cm_config_t *cfg, const char *var, const char *path, char **out,
                            char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    char *buf = NULL;
    int rc = -1;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s_FILE: cannot read %s: %s", var, path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > SECRET_FILE_MAX) {
        snprintf(err, errlen, "%s_FILE: %s is %s", var, path,
                 S_ISREG(st.st_mode) ? "larger than 64 KiB" : "not a regular file");
        goto out;
    }
    buf = cm_xmalloc(SECRET_FILE_MAX + 1);
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, SECRET_FILE_MAX + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, errlen, "%s_FILE: cannot read %s: %s", var, path, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > SECRET_FILE_MAX) { /* grew since fstat */
            snprintf(err, errlen, "%s_FILE: %s is larger than 64 KiB", var, path);
            goto out;
        }
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n == 0 || strlen(buf) != n) {
        snprintf(err, errlen, "%s_FILE: %s is %s", var, path, n == 0 ? "empty" : "not text (a NUL byte)");
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        warn(cfg, cm_xasprintf("%s_FILE: %s can be read by other users (mode %03o); chmod 600 it",
                               var, path, (unsigned)(st.st_mode & 0777)));
    *out = cm_xstrdup(buf);
    rc = 0;
out:
    if (buf) {
        memset(buf, 0, SECRET_FILE_MAX + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static long find(const cm_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->opts[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int parse_bool(const char *s, long long *out)
{
    static const char *yes[] = { "1", "true", "yes", "on" };
    static const char *no[] = { "0", "false", "no", "off", "" };
    for (size_t i = 0; i < CM_ARRAY_LEN(yes); i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
    for (size_t i = 0; i < CM_ARRAY_LEN(no); i++)
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    return -1;
}

static bool in_choices(const char *choices, const char *s)
{
    size_t len = strlen(s);
    const char *p = choices;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, s, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Replaces each ${NAME} with that (earlier) option's resolved value. */
static char *substitute(const cm_config_t *cfg, size_t upto, const char *def)
{
    char *out = cm_xstrdup("");
    const char *p = def;
    for (;;) {
        const char *open = strstr(p, "${");
        const char *close = open ? strchr(open, '}') : NULL;
        if (!close) {
            char *next = cm_xasprintf("%s%s", out, p);
            free(out);
            return next;
        }
        char *ref = cm_xstrndup(open + 2, (size_t)(close - open - 2));
        long idx = find(cfg, ref);
        free(ref);
        const char *val = (idx >= 0 && (size_t)idx < upto && cfg->vals[idx].text) ? cfg->vals[idx].text : "";
        char *next = cm_xasprintf("%s%.*s%s", out, (int)(open - p), p, val);
        free(out);
        out = next;
        p = close + 1;
    }
}

static int load_one(cm_config_t *cfg, size_t i, cm_getenv_fn fn, void *ud, char *err, size_t errlen)
{
    const cm_opt_t *o = &cfg->opts[i];
    value_t *v = &cfg->vals[i];
    const char *raw = env_get(fn, ud, o->name);
    const char *from = o->name;
    for (size_t a = 0; !raw && a < CM_ARRAY_LEN(o->legacy) && o->legacy[a]; a++) {
        raw = env_get(fn, ud, o->legacy[a]);
        if (raw) {
            from = o->legacy[a];
            warn(cfg, cm_xasprintf("%s is deprecated; use %s", o->legacy[a], o->name));
        }
    }
    if (o->type == CM_OPT_SECRET) {
        /* secrets may come from a file (a mounted secret) rather than the
         * environment, which other processes and crash reports can see */
        char *fname = cm_xasprintf("%s_FILE", o->name);
        const char *path = env_get(fn, ud, fname);
        free(fname);
        if (path && raw && raw[0]) { /* an empty NAME (NAME= in a unit file) is no value */
            snprintf(err, errlen, "%s and %s_FILE are both set; set only one", from, o->name);
            return -1;
        }
        if (path) {
            if (read_secret_file(cfg, o->name, path, &v->text, err, errlen) != 0)
                return -1;
            v->set = true;
            return 0;
        }
    }
    v->set = raw != NULL;
    if (raw)
        v->text = cm_xstrdup(raw);
    else if (o->def)
        v->text = substitute(cfg, i, o->def);
    if (!v->text)
        return 0;

    switch (o->type) {
    case CM_OPT_PATH: {
        char *x = cm_expand_home(v->text);
        free(v->text);
        v->text = x;
        break;
    }
    case CM_OPT_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v->text, &end, 10);
        if (errno || end == v->text || *end) {
            snprintf(err, errlen, "%s: \"%s\" is not an integer", from, v->text);
            return -1;
        }
        if (x < o->min || x > o->max) {
            snprintf(err, errlen, "%s: %lld is out of range [%lld, %lld]", from, x, o->min, o->max);
            return -1;
        }
        v->i = x;
        break;
    }
    case CM_OPT_BOOL:
        if (parse_bool(v->text, &v->i) != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not a boolean (use 1/0, true/false)", from, v->text);
            return -1;
        }
        break;
    case CM_OPT_ENUM:
        if (!in_choices(o->choices, v->text)) {
            snprintf(err, errlen, "%s: \"%s\" is not one of: %s", from, v->text, o->choices);
            return -1;
        }
        break;
    case CM_OPT_STR:
    case CM_OPT_SECRET:
        break;
    }
    return 0;
}

static void bad_field(const cm_opt_t *o)
{
    fprintf(stderr, "config: option %s is bound to a field of %zu bytes, wrong for its type\n", o->name,
            o->size);
    abort();
}

/* Writes the loaded value of option i into its field of dst. */
static void store_field(const cm_config_t *cfg, size_t i, char *dst)
{
    const cm_opt_t *o = &cfg->opts[i];
    const value_t *v = &cfg->vals[i];
    char *field = dst + o->off;
    switch (o->type) {
    case CM_OPT_INT:
        if (o->size == sizeof(long long)) {
            long long x = v->i;
            memcpy(field, &x, sizeof(x));
        } else if (o->size == sizeof(int) && o->min >= INT_MIN && o->max <= INT_MAX) {
            int x = (int)v->i;
            memcpy(field, &x, sizeof(x));
        } else {
            bad_field(o);
        }
        break;
    case CM_OPT_BOOL: {
        if (o->size != sizeof(bool))
            bad_field(o);
        bool b = v->i != 0;
        memcpy(field, &b, sizeof(b));
        break;
    }
    default: {
        if (o->size != sizeof(const char *))
            bad_field(o);
        const char *t = v->text;
        memcpy(field, &t, sizeof(t));
        break;
    }
    }
}

int cm_config_load(const cm_opt_t *opts, size_t n, cm_getenv_fn fn, void *ud, void *dst,
                   cm_config_t **out, char *err, size_t errlen)
{
    cm_config_t *cfg = cm_xcalloc(1, sizeof(*cfg));
    cfg->opts = opts;
    cfg->n = n;
    cfg->vals = cm_xcalloc(n, sizeof(value_t));
    for (size_t i = 0; i < n; i++) {
        if (load_one(cfg, i, fn, ud, err, errlen) != 0) {
            cm_config_free(cfg);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        store_field(cfg, i, dst);
    *out = cfg;
    return 0;
}

void cm_config_free(cm_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        if (cfg->opts[i].type == CM_OPT_SECRET)
            wipe(cfg->vals[i].text);
        free(cfg->vals[i].text);
    }
    for (size_t i = 0; i < cfg->nwarn; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    free(cfg->vals);
    free(cfg);
}

size_t cm_config_nset(const cm_config_t *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n; i++)
        n += cfg->vals[i].set;
    return n;
}

size_t cm_config_warnings(const cm_config_t *cfg, const char *const **out)
{
    *out = (const char *const *)cfg->warnings;
    return cfg->nwarn;
}

void cm_config_print_help(FILE *f, const char *prog, const char *usage,
                          const cm_opt_t *opts, size_t n)
{
    fprintf(f, "Usage: %s %s\n\nEnvironment:\n", prog, usage);
    for (size_t i = 0; i < n; i++) {
        const cm_opt_t *o = &opts[i];
        fprintf(f, "  %-34s %s", o->name, o->help);
        if (o->type == CM_OPT_SECRET)
            fprintf(f, "; or %s_FILE: a file holding it", o->name);
        if (o->type == CM_OPT_INT)
            fprintf(f, " [%lld..%lld]", o->min, o->max);
        if (o->type == CM_OPT_ENUM)
            fprintf(f, " (%s)", o->choices);
        fprintf(f, " (default: %s)", o->def ? o->def : "unset");
        if (o->legacy[0]) {
            fprintf(f, " (legacy:");
            for (size_t a = 0; a < CM_ARRAY_LEN(o->legacy) && o->legacy[a]; a++)
                fprintf(f, " %s", o->legacy[a]);
            fprintf(f, ")");
        }
        fputc('\n', f);
    }
}

void cm_config_print_markdown(FILE *f, const cm_opt_t *opts, size_t n)
{
    fprintf(f, "| Variable | Default | Description | Legacy |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const cm_opt_t *o = &opts[i];
        if (o->type == CM_OPT_SECRET)
            fprintf(f, "| `%s` or `%s_FILE` | %s%s%s | %s (`_FILE`: a file holding it)", o->name, o->name,
                    o->def ? "`" : "", o->def ? o->def : "unset", o->def ? "`" : "", o->help);
        else
            fprintf(f, "| `%s` | %s%s%s | %s", o->name, o->def ? "`" : "",
                o->def ? o->def : "unset", o->def ? "`" : "", o->help);
        if (o->type == CM_OPT_INT)
            fprintf(f, " (%lld..%lld)", o->min, o->max);
        if (o->type == CM_OPT_ENUM)
            fprintf(f, " (`%s`)", o->choices);
        fprintf(f, " | ");
        for (size_t a = 0; a < CM_ARRAY_LEN(o->legacy) && o->legacy[a]; a++)
            fprintf(f, "%s`%s`", a ? ", " : "", o->legacy[a]);
        if (!o->legacy[0])
            fprintf(f, "-");
        fprintf(f, " |\n");
    }
}

void cm_config_init_log(const cm_config_t *cfg, const char *prog, const char *level_var,
                        const char *text, const char *dir, int retention_days, long long max_bytes)
{
    int level = cm_log_level_parse(text);
    cm_log_opts_t lo = {
        .prog = prog,
        .dir = dir,
        .retention_days = retention_days,
        .level = level < 0 ? CM_LOG_INFO : (cm_log_level_t)level,
        .max_bytes = max_bytes,
    };
    cm_log_init(&lo);
    if (level < 0)
        LOG_WARN("config", "%s: unknown level \"%s\", using info", level_var, text ? text : "");
    /* not LOG_WARN: one call site, and every warning must be seen */
    for (size_t i = 0; i < cfg->nwarn; i++)
        cm_log_write(CM_LOG_WARN, "config", "%s", cfg->warnings[i]);
}
