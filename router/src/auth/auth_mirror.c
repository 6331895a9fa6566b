/* auth_mirror: the in-memory mirrors of the api_keys and users tables that
 * the request path reads: targeted updates after a change made through this
 * process, and a thread that reloads both every AUTH_REFRESH_MS so that
 * changes made by another process (the CLI) are seen. */
#include "auth/auth_internal.h"

#include "log.h"
#include "util.h"

#include <stdlib.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static auth_ent_t *find_id(auth_table_t *t, const char *id)
{
    for (int i = 0; i < AUTH_TABLE_BUCKETS; i++)
        for (auth_ent_t *e = t->b[i]; e; e = e->next)
            if (strcmp(e->id, id) == 0)
                return e;
    return NULL;
}

void auth_mirror_set(rt_auth_t *a, auth_table_t *t, const char *id, auth_ent_t *e)
{
    pthread_mutex_lock(&a->mu);
    auth_ent_t *old = find_id(t, id);
    if (old && e)
        e->touched_ms = old->touched_ms;
    auth_table_remove_id(t, id);
    if (e)
        auth_table_put(t, e);
    a->mirror_gen++;
    pthread_mutex_unlock(&a->mu);
}

/* Swaps the tables a and b. */
static void table_swap(auth_table_t *a, auth_table_t *b)
{
    auth_table_t t = *a;
    *a = *b;
    *b = t;
}

/* Swaps in the snapshots unless a targeted change happened since gen (it
 * would be undone). Keeps each key's touched_ms. Caller holds a->mu. */
static bool mirrors_swap(rt_auth_t *a, uint64_t gen, auth_table_t *keys, auth_table_t *users)
{
    if (a->mirror_gen != gen)
        return false;
    for (int i = 0; i < AUTH_TABLE_BUCKETS; i++)
        for (auth_ent_t *e = keys->b[i]; e; e = e->next) {
            auth_ent_t *old = auth_table_find(&a->keys, e->hash);
            if (old)
                e->touched_ms = old->touched_ms;
        }
    table_swap(&a->keys, keys);
    table_swap(&a->users, users);
    return true;
}

int auth_mirrors_refresh(rt_auth_t *a)
{
    for (int attempt = 0;; attempt++) {
        auth_table_t keys = { 0 }, users = { 0 };
        pthread_mutex_lock(&a->mu);
        uint64_t gen = a->mirror_gen;
        pthread_mutex_unlock(&a->mu);
        int rc = -1;
        if (auth_keys_snapshot(a, &keys) == 0 && auth_users_snapshot(a, &users) == 0) {
            pthread_mutex_lock(&a->mu);
            rc = mirrors_swap(a, gen, &keys, &users) ? 0 : 1;
            pthread_mutex_unlock(&a->mu);
        }
        auth_table_clear(&keys); /* the old tables, or an unused snapshot */
        auth_table_clear(&users);
        if (rc != 1)
            return rc;
        if (attempt >= 3)
            return 0; /* raced each time: the next period reads again */
    }
}

static void revoked_collect(const char *jti, int64_t expires_at, void *arg)
{
    auth_table_t *t = arg;
    auth_ent_t *e = cm_xcalloc(1, sizeof(*e));
    auth_sha256(jti, strlen(jti), e->hash);
    e->expires_at = expires_at;
    auth_table_put(t, e);
}

/* Revocations made by another process (a second router on a copy of the
 * database, a later CLI) reach this one. A union, never a swap: a revocation
 * is never undone, and one this process just added may not be in a snapshot
 * read a moment earlier. 0 or -1. */
static int revoked_refresh(rt_auth_t *a)
{
    auth_table_t snap = { 0 };
    if (rt_store_revoked_read(a->store, (int64_t)cm_wall_ms(), revoked_collect, &snap) != RT_STORE_OK) {
        auth_table_clear(&snap);
        return -1;
    }
    pthread_mutex_lock(&a->mu);
    auth_table_prune(&a->revoked, (int64_t)cm_wall_ms());
    for (int i = 0; i < AUTH_TABLE_BUCKETS; i++) {
        auth_ent_t *e = snap.b[i];
        snap.b[i] = NULL;
        while (e) {
            auth_ent_t *next = e->next;
            e->next = NULL;
            if (auth_table_find(&a->revoked, e->hash))
                free(e);
            else
                auth_table_put(&a->revoked, e);
            e = next;
        }
    }
    snap.n = 0;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* Waits on a->rcv until AUTH_REFRESH_MS passed or stop; true on stop.
 * Caller holds a->rmu. */
static bool refresher_wait(rt_auth_t *a)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += AUTH_REFRESH_MS / 1000;
    ts.tv_nsec += (long)(AUTH_REFRESH_MS % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!a->stop && pthread_cond_timedwait(&a->rcv, &a->rmu, &ts) != ETIMEDOUT)
        ;
    return a->stop;
}

static void *refresher_main(void *arg)
{
    rt_auth_t *a = arg;
    bool failing = false;
    pthread_mutex_lock(&a->rmu);
    while (!refresher_wait(a)) {
        pthread_mutex_unlock(&a->rmu);
        int rc = auth_mirrors_refresh(a);
        if (revoked_refresh(a) != 0)
            rc = -1;
        if (rc != 0 && !failing)
            LOG_WARN("auth", "cannot reload API keys, users and revoked sessions from the database; the last "
                             "copy stays in use until it works again");
        else if (rc == 0 && failing)
            LOG_INFO("auth", "API keys and users reloaded from the database again");
        failing = rc != 0;
        pthread_mutex_lock(&a->rmu);
    }
    pthread_mutex_unlock(&a->rmu);
    return NULL;
}

int auth_refresher_start(rt_auth_t *a, char *err, size_t errlen)
{
    if (auth_mirrors_refresh(a) != 0) {
        snprintf(err, errlen, "cannot load API keys and users");
        return -1;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->rcv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&a->rmu, NULL);
    int rc = pthread_create(&a->refresher, NULL, refresher_main, a);
    if (rc != 0) {
        pthread_cond_destroy(&a->rcv);
        pthread_mutex_destroy(&a->rmu);
        snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
        return -1;
    }
    a->refresher_started = true;
    return 0;
}

void auth_refresher_stop(rt_auth_t *a)
{
    if (!a->refresher_started)
        return;
    pthread_mutex_lock(&a->rmu);
    a->stop = true;
    pthread_cond_signal(&a->rcv);
    pthread_mutex_unlock(&a->rmu);
    pthread_join(a->refresher, NULL);
    pthread_cond_destroy(&a->rcv);
    pthread_mutex_destroy(&a->rmu);
    a->refresher_started = false;
}
