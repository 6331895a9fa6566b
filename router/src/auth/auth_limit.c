/* auth_limit: the login rate limit and the admission of logins to hashing.
 *
 * Two counters of failures, in fixed windows:
 *   - per account and address ("admin" from 10.0.0.1): max_failures; a
 *     success of that account from that address clears it, and only it;
 *   - per address, whatever the account: max_addr_failures; never cleared by
 *     a success, so logging in as oneself does not buy more guesses at
 *     another account (the bypass of the seed, which cleared the address's
 *     failures on any success).
 * Check and record are one reservation: auth_limit_begin counts the attempt
 * as pending under the lock before any hashing, so N concurrent wrong
 * passwords see each other and at most the limit of them get to the hash;
 * auth_limit_end turns the pending attempt into a failure (or a success) or,
 * with ended == cancelled, drops it. The same reservation bounds the logins
 * of one address in flight (queued or hashing) to max_inflight, so that one
 * address cannot take the offload pool's queue.
 *
 * A fixed number of slots bounds the memory a flood of addresses can take:
 * when all are in use, the one with the oldest window that has nothing
 * pending is taken over. */
#include "auth/auth_internal.h"

#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counters tracked at once (an address, or an account at an address, each
 * takes one). */
#define LIMIT_SLOTS 4096
/* A client address as text (an IPv6 address is at most 45 characters), then
 * "\n" and a username. */
#define PEER_SIZE 64
#define KEY_SIZE (PEER_SIZE + RT_AUTH_NAME_MAX * 4 + 2)

typedef struct {
    char key[KEY_SIZE];      /* "" when the slot is free */
    uint64_t window_start_ms;
    int failures;
    int pending;             /* reserved by auth_limit_begin, not yet ended */
} auth_limit_ent_t;

struct auth_limit {
    pthread_mutex_t mu; /* guards slots */
    int max_failures, max_addr_failures, max_inflight;
    uint64_t window_ms;
    auth_limit_ent_t *slots; /* LIMIT_SLOTS */
};

auth_limit_t *auth_limit_new(int max_failures, int max_addr_failures, int max_inflight, int window_s)
{
    auth_limit_t *l = cm_xcalloc(1, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    l->max_failures = max_failures;
    /* 0 (a config built by hand, not loaded): no per-address limit */
    l->max_addr_failures = max_addr_failures > 0 ? max_addr_failures : INT_MAX / 2;
    l->max_inflight = max_inflight > 0 ? max_inflight : 1;
    l->window_ms = (uint64_t)(window_s > 0 ? window_s : 0) * 1000;
    l->slots = cm_xcalloc(LIMIT_SLOTS, sizeof(*l->slots));
    return l;
}

void auth_limit_free(auth_limit_t *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l);
}

static bool expired(const auth_limit_t *l, const auth_limit_ent_t *e, uint64_t now)
{
    return now - e->window_start_ms >= l->window_ms;
}

/* The slot of key (its window restarted when over), or with create a fresh
 * one: a free or expired idle slot, else the idle one with the oldest window.
 * NULL when key has none and !create, or when every slot has an attempt
 * pending (more than the offload pool can hold: cannot happen in practice).
 * Caller holds l->mu. */
static auth_limit_ent_t *slot(auth_limit_t *l, const char *key, bool create)
{
    uint64_t now = cm_now_ms();
    auth_limit_ent_t *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < LIMIT_SLOTS; i++) {
        auth_limit_ent_t *e = &l->slots[i];
        if (e->key[0] && strcmp(e->key, key) == 0) {
            if (expired(l, e, now)) { /* window over: start afresh */
                e->window_start_ms = now;
                e->failures = 0;
            }
            return e;
        }
        if (e->pending > 0)
            continue; /* its auth_limit_end must find it again */
        if (!e->key[0] || expired(l, e, now)) {
            if (!free_slot)
                free_slot = e;
        } else if (!oldest || e->window_start_ms < oldest->window_start_ms) {
            oldest = e;
        }
    }
    if (!create)
        return NULL;
    auth_limit_ent_t *e = free_slot ? free_slot : oldest;
    if (!e)
        return NULL;
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->window_start_ms = now;
    e->failures = 0;
    e->pending = 0;
    return e;
}

static void pair_key(char *out, const char *peer, const char *account)
{
    snprintf(out, KEY_SIZE, "%.*s\n%s", PEER_SIZE - 1, peer, account);
}

static int wait_s(const auth_limit_t *l, const auth_limit_ent_t *e)
{
    uint64_t end = e->window_start_ms + l->window_ms, now = cm_now_ms();
    int w = end > now ? (int)((end - now + 999) / 1000) : 0;
    return w > 0 ? w : 1;
}

int auth_limit_begin(auth_limit_t *l, const char *peer, const char *account, bool *clean)
{
    char pk[KEY_SIZE];
    pair_key(pk, peer, account);
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    auth_limit_ent_t *a = slot(l, peer, true), *p = a ? slot(l, pk, true) : NULL;
    if (!a || !p) {
        rc = AUTH_LIMIT_BUSY;
        goto out;
    }
    if (a->failures >= l->max_addr_failures) {
        rc = wait_s(l, a);
        goto out;
    }
    if (p->failures >= l->max_failures) {
        rc = wait_s(l, p);
        goto out;
    }
    /* attempts still being checked count as failures until they are known:
     * the reservation is what makes check-and-record atomic */
    if (a->failures + a->pending >= l->max_addr_failures ||
        p->failures + p->pending >= l->max_failures || a->pending >= l->max_inflight) {
        rc = AUTH_LIMIT_BUSY;
        goto out;
    }
    if (clean)
        *clean = a->failures == 0;
    a->pending++;
    p->pending++;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void auth_limit_end(auth_limit_t *l, const char *peer, const char *account, auth_limit_outcome_t how)
{
    char pk[KEY_SIZE];
    pair_key(pk, peer, account);
    pthread_mutex_lock(&l->mu);
    /* pending slots are never taken over, so both are still there */
    auth_limit_ent_t *a = slot(l, peer, false), *p = slot(l, pk, false);
    if (a && a->pending > 0)
        a->pending--;
    if (p && p->pending > 0)
        p->pending--;
    if (how == AUTH_LIMIT_FAILURE) {
        if (a)
            a->failures++;
        if (p)
            p->failures++;
    } else if (how == AUTH_LIMIT_SUCCESS && p) {
        p->failures = 0; /* this account at this address only */
    }
    pthread_mutex_unlock(&l->mu);
}
