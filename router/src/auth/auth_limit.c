/* auth_limit: the login rate limit. Failures are counted per client address
 * in a fixed window; an address that reached the maximum waits for the rest
 * of its window, whatever password it sends then. A fixed number of slots
 * bounds the memory a flood of addresses can take: when all are in use, the
 * slot with the oldest window is taken over. */
#include "auth/auth_internal.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Addresses tracked at once. */
#define LIMIT_SLOTS 4096
/* A client address as text (an IPv6 address is at most 45 characters). */
#define PEER_SIZE 64

typedef struct {
    char peer[PEER_SIZE];      /* "" when the slot is free */
    uint64_t window_start_ms;
    int failures;
} auth_limit_ent_t;

struct auth_limit {
    pthread_mutex_t mu; /* guards slots */
    int max_failures;
    uint64_t window_ms;
    auth_limit_ent_t *slots; /* LIMIT_SLOTS */
};

auth_limit_t *auth_limit_new(int max_failures, int window_s)
{
    auth_limit_t *l = cm_xcalloc(1, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    l->max_failures = max_failures;
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

/* The slot of peer (its window restarted when over), or with create a fresh
 * one: a free or expired slot, else the one with the oldest window. NULL when
 * peer has none and !create. Caller holds l->mu. */
static auth_limit_ent_t *slot(auth_limit_t *l, const char *peer, bool create)
{
    uint64_t now = cm_now_ms();
    auth_limit_ent_t *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < LIMIT_SLOTS; i++) {
        auth_limit_ent_t *e = &l->slots[i];
        if (e->peer[0] && strcmp(e->peer, peer) == 0) {
            if (now - e->window_start_ms >= l->window_ms) { /* window over: start afresh */
                e->window_start_ms = now;
                e->failures = 0;
            }
            return e;
        }
        if (!e->peer[0] || now - e->window_start_ms >= l->window_ms) {
            if (!free_slot)
                free_slot = e;
        } else if (!oldest || e->window_start_ms < oldest->window_start_ms) {
            oldest = e;
        }
    }
    if (!create)
        return NULL;
    auth_limit_ent_t *e = free_slot ? free_slot : oldest;
    snprintf(e->peer, sizeof(e->peer), "%s", peer);
    e->window_start_ms = now;
    e->failures = 0;
    return e;
}

int auth_limit_wait(auth_limit_t *l, const char *peer)
{
    pthread_mutex_lock(&l->mu);
    auth_limit_ent_t *e = slot(l, peer, false);
    int wait = 0;
    if (e && e->failures >= l->max_failures) {
        uint64_t end = e->window_start_ms + l->window_ms, now = cm_now_ms();
        wait = end > now ? (int)((end - now + 999) / 1000) : 0;
    }
    pthread_mutex_unlock(&l->mu);
    return wait;
}

void auth_limit_record(auth_limit_t *l, const char *peer, bool success)
{
    pthread_mutex_lock(&l->mu);
    auth_limit_ent_t *e = slot(l, peer, !success);
    if (e && success)
        memset(e, 0, sizeof(*e));
    else if (e)
        e->failures++;
    pthread_mutex_unlock(&l->mu);
}
