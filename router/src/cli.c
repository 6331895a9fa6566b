/* cli: user and API key management on the database (see cli.h). */
#include "cli.h"

#include "auth/auth.h"
#include "router.h"
#include "store/store.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Room for a password line: longer than RT_AUTH_PASSWORD_MAX, so a password
 * that is too long is read as too long (and refused), not cut to fit. */
#define PASSWORD_LINE_SIZE 1100
_Static_assert(PASSWORD_LINE_SIZE > RT_AUTH_PASSWORD_MAX + 1, "password line too short");

static const char usage[] =
    "usage: llm-router user list\n"
    "       llm-router user add NAME [--role admin|viewer]   (password from the terminal or stdin)\n"
    "       llm-router user delete NAME\n"
    "       llm-router user passwd NAME                     (password from the terminal or stdin)\n"
    "       llm-router apikey create NAME [--expires-at 2030-01-01T00:00:00Z]\n"
    "       llm-router apikey list\n"
    "       llm-router apikey revoke ID\n";

int rt_cli_is_command(int argc, char **argv)
{
    return argc > 1 && (strcmp(argv[1], "user") == 0 || strcmp(argv[1], "apikey") == 0);
}

int rt_cli_print_routes(void)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < rt_routes_count; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", rt_routes[i].method);
        cJSON_AddStringToObject(o, "path", rt_routes[i].path);
        cJSON_AddStringToObject(o, "policy", rt_policy_name(rt_routes[i].policy));
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(arr);
    puts(text);
    free(text);
    cJSON_Delete(arr);
    return 0;
}

/* A time for the lists: RFC 3339 UTC to the second (the columns' width), "-"
 * when unset. */
static void fmt_time(int64_t ms, char out[CM_TIME_RFC3339_SIZE])
{
    char full[CM_TIME_RFC3339_SIZE];
    if (ms <= 0 || cm_time_rfc3339(ms, full) == 0)
        snprintf(out, CM_TIME_RFC3339_SIZE, "-");
    else
        snprintf(out, CM_TIME_RFC3339_SIZE, "%.19sZ", full); /* without ".mmm" */
}

/* Reads one line into buf without echo on a terminal. 0 or -1. */
static int read_secret(const char *prompt, char *buf, size_t len)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *r = fgets(buf, (int)len, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!r)
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int read_new_password(char *buf, size_t len)
{
    if (read_secret("New password: ", buf, len) != 0) {
        fprintf(stderr, "llm-router: no password given\n");
        return -1;
    }
    if (isatty(STDIN_FILENO)) {
        char again[PASSWORD_LINE_SIZE];
        int bad = read_secret("Repeat password: ", again, sizeof(again)) != 0 || strcmp(again, buf) != 0;
        sodium_memzero(again, sizeof(again));
        if (bad) {
            fprintf(stderr, "llm-router: passwords differ\n");
            return -1;
        }
    }
    return 0;
}

static void print_user(const rt_user_rec_t *u, void *arg)
{
    (void)arg;
    char t[CM_TIME_RFC3339_SIZE];
    fmt_time(u->created_at, t);
    printf("%-36s  %-24s  %-6s  %s\n", u->id, u->username, u->role, t);
}

static int user_cmd(rt_store_t *st, int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "", *name = argc > 3 ? argv[3] : NULL;
    char pw[PASSWORD_LINE_SIZE] = "", err[256] = "";
    int rc = 1;
    rt_user_rec_t u = { 0 };
    if (strcmp(sub, "list") == 0) {
        printf("%-36s  %-24s  %-6s  %s\n", "ID", "USERNAME", "ROLE", "CREATED");
        rc = rt_store_users_each(st, print_user, NULL) == 0 ? 0 : 1;
        goto out;
    }
    if (!name) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(sub, "add") == 0) {
        const char *role = "viewer";
        if (argc > 5 && strcmp(argv[4], "--role") == 0)
            role = argv[5];
        if (rt_auth_user_validate(name, NULL, role, err, sizeof(err)) != 0 || read_new_password(pw, sizeof(pw)) != 0)
            goto out;
        if (rt_auth_user_create(st, name, pw, role, NULL, err, sizeof(err)) == 0) {
            printf("created user %s (%s)\n", name, role);
            rc = 0;
        }
        goto out;
    }
    int r = rt_store_user_get_by_name(st, name, &u);
    if (r != 0) {
        snprintf(err, sizeof(err), r == RT_STORE_NOTFOUND ? "no user named %s" : "database error", name);
        goto out;
    }
    if (strcmp(sub, "delete") == 0) {
        r = rt_store_user_delete(st, u.id);
    } else if (strcmp(sub, "passwd") == 0) {
        char hash[RT_AUTH_PWHASH_MAX];
        if (read_new_password(pw, sizeof(pw)) != 0 ||
            rt_auth_user_validate(NULL, pw, NULL, err, sizeof(err)) != 0)
            goto out;
        r = rt_auth_password_hash(pw, hash) == 0 ? rt_store_user_update(st, u.id, NULL, hash, NULL) : -1;
    } else {
        fputs(usage, stderr);
        rc = 2;
        goto out;
    }
    if (r == RT_STORE_LAST_ADMIN)
        snprintf(err, sizeof(err), "%s is the last admin", name);
    else if (r != 0)
        snprintf(err, sizeof(err), "database error");
    else
        printf("%s: done\n", name);
    rc = r == 0 ? 0 : 1;
out:
    if (err[0])
        fprintf(stderr, "llm-router: %s\n", err);
    sodium_memzero(pw, sizeof(pw));
    rt_user_rec_free(&u);
    return rc;
}

static void print_key(const rt_apikey_rec_t *k, void *arg)
{
    (void)arg;
    char c[CM_TIME_RFC3339_SIZE], e[CM_TIME_RFC3339_SIZE], l[CM_TIME_RFC3339_SIZE];
    fmt_time(k->created_at, c);
    fmt_time(k->expires_at, e);
    fmt_time(k->last_used_at, l);
    printf("%-36s  %-20s  %-10s  %-20s  %-20s  %s\n", k->id, k->name, k->key_prefix, c, e, l);
}

static int apikey_cmd(rt_store_t *st, int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "", *arg = argc > 3 ? argv[3] : NULL;
    if (strcmp(sub, "list") == 0) {
        printf("%-36s  %-20s  %-10s  %-20s  %-20s  %s\n", "ID", "NAME", "PREFIX", "CREATED", "EXPIRES",
               "LAST USED");
        return rt_store_apikeys_each(st, print_key, NULL) == 0 ? 0 : 1;
    }
    if (!arg || (strcmp(sub, "create") != 0 && strcmp(sub, "revoke") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(sub, "revoke") == 0) {
        int r = rt_store_apikey_delete(st, arg);
        if (r != 0)
            fprintf(stderr, "llm-router: %s\n", r == RT_STORE_NOTFOUND ? "no such API key id" : "database error");
        else
            printf("revoked %s\n", arg);
        return r == 0 ? 0 : 1;
    }
    int64_t exp = 0;
    if (argc > 5 && strcmp(argv[4], "--expires-at") == 0 && (exp = cm_time_parse_rfc3339(argv[5])) <= 0) {
        fprintf(stderr, "llm-router: --expires-at wants an RFC 3339 time like 2030-01-01T00:00:00Z\n");
        return 2;
    }
    if (strlen(arg) > RT_AUTH_KEY_NAME_MAX) {
        fprintf(stderr, "llm-router: name is longer than %d characters\n", RT_AUTH_KEY_NAME_MAX);
        return 2;
    }
    char key[RT_AUTH_KEY_MAX];
    rt_apikey_rec_t k = { 0 };
    if (rt_auth_apikey_create(st, arg, exp, "cli", key, &k) != 0) {
        fprintf(stderr, "llm-router: database error\n");
        return 1;
    }
    fprintf(stderr, "created API key %s (id %s); it is shown only once:\n", k.name, k.id);
    printf("%s\n", key);
    sodium_memzero(key, sizeof(key));
    rt_apikey_rec_free(&k);
    return 0;
}

int rt_cli_run(int argc, char **argv, const rt_config_t *cfg)
{
    char err[512];
    rt_store_t *st;
    if (sodium_init() < 0) {
        fprintf(stderr, "llm-router: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    if (rt_store_open(cfg->database_url, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "llm-router: %s\n", err);
        return 1;
    }
    int rc = strcmp(argv[1], "user") == 0 ? user_cmd(st, argc, argv) : apikey_cmd(st, argc, argv);
    rt_store_close(st);
    return rc;
}
