/* Unit tests of router/src/store/store.c and store_users.c. The migration fixture
 * is written with sqlite3 directly: the schema of version 1, as released. */
#include "store/store.h"

#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static char g_dir[256];

static char *db_path(const char *name) { return cm_xasprintf("%s/%s", g_dir, name); }

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/llmr-test-store-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = cm_xasprintf("rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

static rt_store_t *open_store(const char *name)
{
    char *path = db_path(name), *url = cm_xasprintf("sqlite:%s", path), err[256] = "";
    rt_store_t *st = NULL;
    int rc = rt_store_open(url, &st, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    free(url);
    free(path);
    return st;
}

static void test_open_creates_private_wal_db(void **state)
{
    (void)state;
    rt_store_t *st = open_store("a/b/router.db");
    assert_int_equal(rt_store_schema_version(st), rt_store_latest_version());
    assert_true(rt_store_integrity_ok(st));
    rt_store_close(st);
    char *path = db_path("a/b/router.db");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    free(path);
    /* reopening is a no-op migration */
    st = open_store("a/b/router.db");
    assert_int_equal(rt_store_schema_version(st), rt_store_latest_version());
    rt_store_close(st);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char *path = db_path("future.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rt_store_t *st = NULL;
    char err[256] = "";
    assert_int_equal(rt_store_open(path, &st, err, sizeof(err)), -1);
    assert_null(st);
    assert_non_null(strstr(err, "999"));
    free(path);
}

/* Schema version 1 as released, with a row in each table. */
static const char v1_fixture[] =
    "CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE,"
    " password_hash TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,"
    " key_prefix TEXT NOT NULL, created_by TEXT, created_at INTEGER NOT NULL, expires_at INTEGER,"
    " last_used_at INTEGER);"
    "CREATE TABLE nodes (id TEXT PRIMARY KEY, machine_name TEXT NOT NULL, ip_address TEXT NOT NULL,"
    " runtime_port INTEGER NOT NULL, api_port INTEGER NOT NULL, runtime_version TEXT,"
    " gpu_available INTEGER NOT NULL DEFAULT 0, gpu_devices_json TEXT NOT NULL DEFAULT '[]',"
    " custom_name TEXT, tags_json TEXT NOT NULL DEFAULT '[]', notes TEXT, token_hash TEXT,"
    " registered_at INTEGER NOT NULL);"
    "INSERT INTO users VALUES ('u1', 'old-admin', 'h', 'admin', 1, 1);"
    "INSERT INTO api_keys VALUES ('k1', 'old-key', 'abc', 'sk_abc', NULL, 1, NULL, NULL);"
    "INSERT INTO nodes (id, machine_name, ip_address, runtime_port, api_port, registered_at)"
    " VALUES ('n1', 'm', '10.0.0.1', 11434, 11435, 5);"
    "PRAGMA user_version = 1;";

static void test_migrates_v1(void **state)
{
    (void)state;
    char *path = db_path("v1.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v1_fixture, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(path);

    rt_store_t *st = open_store("v1.db");
    assert_int_equal(rt_store_schema_version(st), rt_store_latest_version());
    rt_user_rec_t u;
    assert_int_equal(rt_store_user_get_by_name(st, "old-admin", &u), 0);
    assert_string_equal(u.id, "u1");
    rt_user_rec_free(&u);
    rt_apikey_rec_t k;
    assert_int_equal(rt_store_apikey_get_by_hash(st, "abc", &k), 0);
    assert_string_equal(k.name, "old-key");
    rt_apikey_rec_free(&k);
    /* the table of version 2 is usable */
    rt_store_revoked_add(st, "jti-1", (int64_t)cm_wall_ms() + 60000);
    rt_store_flush(st);
    assert_true(rt_store_integrity_ok(st));
    rt_store_close(st);
}

static rt_user_rec_t mkuser(const char *id, const char *name, const char *role)
{
    return (rt_user_rec_t){ .id = (char *)id, .username = (char *)name, .password_hash = (char *)"x",
                            .role = (char *)role, .created_at = 1, .updated_at = 1 };
}

static void count_cb(const rt_user_rec_t *u, void *arg)
{
    (void)u;
    (*(int *)arg)++;
}

static void test_users(void **state)
{
    (void)state;
    rt_store_t *st = open_store("users.db");
    rt_user_rec_t a = mkuser("1", "alice", "admin"), b = mkuser("2", "bob", "viewer");
    assert_int_equal(rt_store_user_insert(st, &a), 0);
    assert_int_equal(rt_store_user_insert(st, &b), 0);
    rt_user_rec_t dup = mkuser("3", "alice", "viewer");
    assert_int_equal(rt_store_user_insert(st, &dup), RT_STORE_CONFLICT);
    assert_int_equal(rt_store_user_count(st), 2);

    /* the only admin can be neither demoted nor deleted */
    assert_int_equal(rt_store_user_update(st, "1", NULL, NULL, "viewer"), RT_STORE_LAST_ADMIN);
    assert_int_equal(rt_store_user_delete(st, "1"), RT_STORE_LAST_ADMIN);
    /* with a second admin it can */
    assert_int_equal(rt_store_user_update(st, "2", NULL, NULL, "admin"), 0);
    assert_int_equal(rt_store_user_update(st, "1", "alice2", "newhash", "viewer"), 0);
    rt_user_rec_t u;
    assert_int_equal(rt_store_user_get(st, "1", &u), 0);
    assert_string_equal(u.username, "alice2");
    assert_string_equal(u.password_hash, "newhash");
    assert_string_equal(u.role, "viewer");
    rt_user_rec_free(&u);
    assert_int_equal(rt_store_user_update(st, "1", "bob", NULL, NULL), RT_STORE_CONFLICT);
    assert_int_equal(rt_store_user_update(st, "nope", NULL, NULL, "admin"), RT_STORE_NOTFOUND);
    assert_int_equal(rt_store_user_delete(st, "1"), 0);
    assert_int_equal(rt_store_user_delete(st, "1"), RT_STORE_NOTFOUND);
    assert_int_equal(rt_store_user_delete(st, "2"), RT_STORE_LAST_ADMIN);
    int n = 0;
    assert_int_equal(rt_store_users_each(st, count_cb, &n), 0);
    assert_int_equal(n, 1);
    rt_store_close(st);
}

static void test_api_keys(void **state)
{
    (void)state;
    rt_store_t *st = open_store("keys.db");
    rt_apikey_rec_t k = { .id = (char *)"k1", .name = (char *)"ci", .key_hash = (char *)"h1",
                          .key_prefix = (char *)"sk_1", .created_at = 10, .expires_at = 0 };
    assert_int_equal(rt_store_apikey_insert(st, &k), 0);
    assert_int_equal(rt_store_apikey_insert(st, &k), RT_STORE_CONFLICT);
    assert_int_equal(rt_store_apikey_update(st, "k1", "renamed", true, 12345), 0);
    assert_int_equal(rt_store_apikey_update(st, "zz", "x", false, 0), RT_STORE_NOTFOUND);
    rt_store_apikey_touch(st, "k1", 777);
    rt_store_flush(st);
    rt_apikey_rec_t got;
    assert_int_equal(rt_store_apikey_get(st, "k1", &got), 0);
    assert_string_equal(got.name, "renamed");
    assert_int_equal(got.expires_at, 12345);
    assert_int_equal(got.last_used_at, 777);
    assert_null(got.created_by);
    rt_apikey_rec_free(&got);
    assert_int_equal(rt_store_apikey_update(st, "k1", NULL, true, 0), 0); /* clear expiry */
    assert_int_equal(rt_store_apikey_get_by_hash(st, "h1", &got), 0);
    assert_int_equal(got.expires_at, 0);
    rt_apikey_rec_free(&got);
    assert_int_equal(rt_store_apikey_delete(st, "k1"), 0);
    assert_int_equal(rt_store_apikey_delete(st, "k1"), RT_STORE_NOTFOUND);
    assert_int_equal(rt_store_apikey_get(st, "k1", &got), RT_STORE_NOTFOUND);
    rt_store_close(st);
}

typedef struct {
    int n;
    char last_id[64];
    int port_sum;
} nodes_seen_t;

static void node_cb(const rt_node_rec_t *r, void *arg)
{
    nodes_seen_t *s = arg;
    s->n++;
    snprintf(s->last_id, sizeof(s->last_id), "%s", r->id);
    s->port_sum += r->api_port;
    /* migration 3: the sealed secret round-trips, NULL stays NULL */
    if (strcmp(r->id, "node-0001") == 0)
        assert_string_equal(r->secret_box, "a1b2");
    else
        assert_null(r->secret_box);
}

static void test_nodes_async_writes(void **state)
{
    (void)state;
    rt_store_t *st = open_store("nodes.db");
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "node-%04d", i);
        rt_node_rec_t r = { .id = id, .machine_name = (char *)"m", .ip_address = (char *)"127.0.0.1",
                            .runtime_port = 1, .api_port = 1, .token_hash = (char *)"00",
                            .registered_at = i };
        assert_int_equal(rt_store_node_upsert(st, &r), 0);
    }
    rt_node_rec_t upd = { .id = (char *)"node-0001", .machine_name = (char *)"m2",
                          .ip_address = (char *)"::1", .api_port = 1001, .custom_name = (char *)"x",
                          .registered_at = 1, .secret_box = (char *)"a1b2" };
    rt_store_node_upsert(st, &upd);
    rt_store_node_delete(st, "node-0000");
    rt_store_flush(st);
    nodes_seen_t seen = { 0 };
    assert_int_equal(rt_store_nodes_each(st, node_cb, &seen), 0);
    assert_int_equal(seen.n, 1999);
    assert_string_equal(seen.last_id, "node-1999");
    assert_int_equal(seen.port_sum, 1998 + 1001);
    rt_store_close(st);
    /* everything queued is on disk after close */
    st = open_store("nodes.db");
    memset(&seen, 0, sizeof(seen));
    rt_store_nodes_each(st, node_cb, &seen);
    assert_int_equal(seen.n, 1999);
    rt_store_close(st);
}

static void revoked_cb(const char *jti, int64_t exp, void *arg)
{
    (void)exp;
    assert_string_equal(jti, "live");
    (*(int *)arg)++;
}

static void test_revoked_pruned(void **state)
{
    (void)state;
    rt_store_t *st = open_store("rev.db");
    rt_store_revoked_add(st, "dead", 1000);
    rt_store_revoked_add(st, "live", 5000);
    rt_store_flush(st);
    int n = 0;
    assert_int_equal(rt_store_revoked_each(st, 2000, revoked_cb, &n), 0);
    assert_int_equal(n, 1);
    rt_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_private_wal_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrates_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_async_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_pruned, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
