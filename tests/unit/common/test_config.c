/* Tests common/config.c: defaults, legacy aliases, bounds, bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *dir, *db, *mode, *unset;
    int port;
    long long big;
    bool flag;
} t_config_t;

static const cm_opt_t opts[] = {
    { "T_DIR", { NULL }, CM_OPT_PATH, "~/.x", 0, 0, NULL, "base", CM_AT(t_config_t, dir) },
    { "T_DB", { "OLD_DB" }, CM_OPT_STR, "sqlite:${T_DIR}/r.db", 0, 0, NULL, "db", CM_AT(t_config_t, db) },
    { "T_PORT", { "OLD_PORT", "OLDER_PORT" }, CM_OPT_INT, "8080", 1, 65535, NULL, "port", CM_AT(t_config_t, port) },
    { "T_BIG", { NULL }, CM_OPT_INT, "0", 0, 1LL << 50, NULL, "big", CM_AT(t_config_t, big) },
    { "T_MODE", { NULL }, CM_OPT_ENUM, "auto", 0, 0, "auto,metrics", "mode", CM_AT(t_config_t, mode) },
    { "T_FLAG", { NULL }, CM_OPT_BOOL, "0", 0, 0, NULL, "flag", CM_AT(t_config_t, flag) },
    { "T_UNSET", { NULL }, CM_OPT_STR, NULL, 0, 0, NULL, "unset", CM_AT(t_config_t, unset) },
};

static t_config_t c;

/* env given as "NAME=value" strings, NULL-terminated */
static const char *fake_env(const char *name, void *ud)
{
    const char **env = ud;
    size_t n = strlen(name);
    for (; *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static cm_config_t *load(const char **env, int expect_rc, char *err)
{
    cm_config_t *cfg = NULL;
    memset(&c, 0x5a, sizeof(c)); /* every field must be written */
    int rc = cm_config_load(opts, CM_ARRAY_LEN(opts), fake_env, env, &c, &cfg, err, 256);
    assert_int_equal(rc, expect_rc);
    return cfg;
}

static void defaults(void **state)
{
    (void)state;
    setenv("HOME", "/home/t", 1);
    const char *env[] = { NULL };
    char err[256];
    cm_config_t *cfg = load(env, 0, err);
    assert_string_equal(c.dir, "/home/t/.x");
    assert_string_equal(c.db, "sqlite:/home/t/.x/r.db");
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.mode, "auto");
    assert_false(c.flag);
    assert_null(c.unset);
    assert_int_equal(cm_config_nset(cfg), 0);
    assert_int_equal(c.big, 0);
    const char *const *w;
    assert_int_equal(cm_config_warnings(cfg, &w), 0);
    cm_config_free(cfg);
}

static void derived_default_follows_override(void **state)
{
    (void)state;
    const char *env[] = { "T_DIR=/data", "T_FLAG=yes", NULL };
    char err[256];
    cm_config_t *cfg = load(env, 0, err);
    assert_string_equal(c.db, "sqlite:/data/r.db");
    assert_true(c.flag);
    cm_config_free(cfg);
}

static void legacy_alias_warns(void **state)
{
    (void)state;
    const char *env[] = { "OLDER_PORT=9000", NULL };
    char err[256];
    cm_config_t *cfg = load(env, 0, err);
    assert_int_equal(c.port, 9000);
    assert_int_equal(cm_config_nset(cfg), 1);
    const char *const *w;
    assert_int_equal(cm_config_warnings(cfg, &w), 1);
    assert_string_equal(w[0], "OLDER_PORT is deprecated; use T_PORT");
    cm_config_free(cfg);
}

static void new_name_beats_legacy(void **state)
{
    (void)state;
    const char *env[] = { "OLD_PORT=9000", "T_PORT=9001", NULL };
    char err[256];
    cm_config_t *cfg = load(env, 0, err);
    assert_int_equal(c.port, 9001);
    cm_config_free(cfg);
}

static void wide_int_field(void **state)
{
    (void)state;
    const char *env[] = { "T_BIG=1125899906842624", NULL };
    char err[256];
    cm_config_t *cfg = load(env, 0, err);
    assert_true(c.big == (1LL << 50));
    cm_config_free(cfg);
}

/* A field too small for its option's bounds is a programming error: load aborts. */
static void wrong_field_size_aborts(void **state)
{
    (void)state;
    typedef struct {
        short port;
    } s_config_t;
    static const cm_opt_t bad[] = {
        { "T_PORT", { NULL }, CM_OPT_INT, "8080", 1, 65535, NULL, "port", CM_AT(s_config_t, port) },
    };
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        s_config_t sc;
        const char *env[] = { NULL };
        cm_config_t *cfg = NULL;
        char err[256];
        freopen("/dev/null", "w", stderr);
        cm_config_load(bad, 1, fake_env, env, &sc, &cfg, err, sizeof(err));
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

static void bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *env;
        const char *msg;
    } cases[] = {
        { "T_PORT=70000", "T_PORT: 70000 is out of range [1, 65535]" },
        { "T_PORT=0", "T_PORT: 0 is out of range [1, 65535]" },
        { "T_PORT=80x", "T_PORT: \"80x\" is not an integer" },
        { "T_PORT=", "T_PORT: \"\" is not an integer" },
        { "OLD_PORT=-5", "OLD_PORT: -5 is out of range [1, 65535]" },
        { "T_PORT=99999999999999999999", "T_PORT: \"99999999999999999999\" is not an integer" },
        { "T_MODE=fastest", "T_MODE: \"fastest\" is not one of: auto,metrics" },
        { "T_MODE=aut", "T_MODE: \"aut\" is not one of: auto,metrics" },
        { "T_FLAG=maybe", "T_FLAG: \"maybe\" is not a boolean (use 1/0, true/false)" },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        const char *env[] = { cases[i].env, NULL };
        char err[256] = "";
        assert_null(load(env, -1, err));
        assert_string_equal(err, cases[i].msg);
    }
}

static void help_lists_everything(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cm_config_print_help(f, "prog", "[--help]", opts, CM_ARRAY_LEN(opts));
    cm_config_print_markdown(f, opts, CM_ARRAY_LEN(opts));
    fclose(f);
    for (size_t i = 0; i < CM_ARRAY_LEN(opts); i++)
        assert_non_null(strstr(buf, opts[i].name));
    assert_non_null(strstr(buf, "OLDER_PORT"));
    assert_non_null(strstr(buf, "| `T_PORT` | `8080` |"));
    free(buf);
}

/* Finding 13: a secret option also reads NAME_FILE. */
typedef struct {
    const char *secret;
} s_config_t;
static const cm_opt_t sopts[] = {
    { "T_SECRET", { "OLD_SECRET" }, CM_OPT_SECRET, NULL, 0, 0, NULL, "secret", CM_AT(s_config_t, secret) },
};

static int sload(const char **env, s_config_t *sc, cm_config_t **cfg, char *err)
{
    return cm_config_load(sopts, 1, fake_env, env, sc, cfg, err, 256);
}

static void secret_from_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/llmr-test-secret-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = cm_xasprintf("%s/s", dir), *envf = cm_xasprintf("T_SECRET_FILE=%s", path);
    assert_int_equal(cm_write_file(path, "hunter2-secret\n", 15, 0600), 0);
    s_config_t sc = { 0 };
    cm_config_t *cfg = NULL;
    char err[256] = "";
    const char *env[] = { envf, NULL };
    assert_int_equal(sload(env, &sc, &cfg, err), 0);
    assert_string_equal(sc.secret, "hunter2-secret"); /* the newline stripped */
    const char *const *w;
    assert_int_equal(cm_config_warnings(cfg, &w), 0);
    cm_config_free(cfg);

    /* readable by others: loaded, with a warning naming the file */
    chmod(path, 0644);
    assert_int_equal(sload(env, &sc, &cfg, err), 0);
    assert_int_equal(cm_config_warnings(cfg, &w), 1);
    assert_non_null(strstr(w[0], "T_SECRET_FILE"));
    assert_null(strstr(w[0], "hunter2"));
    cm_config_free(cfg);

    /* both set (also under the legacy name): refused */
    const char *both[] = { envf, "T_SECRET=x", NULL };
    assert_int_equal(sload(both, &sc, &cfg, err), -1);
    assert_string_equal(err, "T_SECRET and T_SECRET_FILE are both set; set only one");
    const char *both_old[] = { envf, "OLD_SECRET=x", NULL };
    assert_int_equal(sload(both_old, &sc, &cfg, err), -1);

    /* empty, missing, too large: errors naming the variable, not the content */
    assert_int_equal(cm_write_file(path, "\n", 1, 0600), 0);
    assert_int_equal(sload(env, &sc, &cfg, err), -1);
    assert_non_null(strstr(err, "T_SECRET_FILE"));
    assert_non_null(strstr(err, "empty"));
    char *big = cm_xmalloc(70000);
    memset(big, 'a', 70000);
    assert_int_equal(cm_write_file(path, big, 70000, 0600), 0);
    free(big);
    assert_int_equal(sload(env, &sc, &cfg, err), -1);
    assert_non_null(strstr(err, "larger than 64 KiB"));
    unlink(path);
    assert_int_equal(sload(env, &sc, &cfg, err), -1);
    assert_non_null(strstr(err, "T_SECRET_FILE: cannot read"));
    rmdir(dir);

    /* the help names the _FILE form */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cm_config_print_help(f, "prog", "", sopts, 1);
    cm_config_print_markdown(f, sopts, 1);
    fclose(f);
    assert_non_null(strstr(buf, "or T_SECRET_FILE"));
    assert_non_null(strstr(buf, "`T_SECRET` or `T_SECRET_FILE`"));
    free(buf);
    free(path);
    free(envf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(derived_default_follows_override),
        cmocka_unit_test(legacy_alias_warns),
        cmocka_unit_test(new_name_beats_legacy),
        cmocka_unit_test(wide_int_field),
        cmocka_unit_test(wrong_field_size_aborts),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(help_lists_everything),
        cmocka_unit_test(secret_from_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
