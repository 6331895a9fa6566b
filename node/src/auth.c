#include "auth.h"

#include "util.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A credential longer than this is refused unhashed (a bounded cost). */
#define CRED_MAX 512

struct nd_auth {
    pthread_mutex_t mu;
    bool has_key, has_secret, expect_router;
    unsigned char key[crypto_hash_sha256_BYTES];    /* SHA-256 of LLM_NODE_API_KEY */
    unsigned char secret[crypto_hash_sha256_BYTES]; /* SHA-256 of the router's secret; mu */
};

static void digest(const char *s, unsigned char out[crypto_hash_sha256_BYTES])
{
    crypto_hash_sha256(out, (const unsigned char *)s, strlen(s));
}

nd_auth_t *nd_auth_new(const char *api_key, bool expect_router)
{
    nd_auth_t *a = cm_xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->expect_router = expect_router;
    if (api_key && *api_key) {
        digest(api_key, a->key);
        a->has_key = true;
    }
    return a;
}

void nd_auth_free(nd_auth_t *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    sodium_memzero(a, sizeof(*a));
    free(a);
}

void nd_auth_set_router_secret(nd_auth_t *a, const char *secret)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    bool has = secret && *secret;
    if (has)
        digest(secret, h);
    pthread_mutex_lock(&a->mu);
    a->has_secret = has;
    if (has)
        memcpy(a->secret, h, sizeof(h));
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(h, sizeof(h));
}

nd_auth_result_t nd_auth_check(nd_auth_t *a, const char *authorization)
{
    static const char scheme[] = "Bearer ";
    const char *cred = NULL;
    if (authorization && strncasecmp(authorization, scheme, sizeof(scheme) - 1) == 0) {
        cred = authorization + sizeof(scheme) - 1;
        while (*cred == ' ')
            cred++;
        if (!*cred || strnlen(cred, CRED_MAX + 1) > CRED_MAX)
            cred = NULL;
    }
    bool ok = false, pending;
    unsigned char h[crypto_hash_sha256_BYTES];
    if (cred)
        digest(cred, h);
    pthread_mutex_lock(&a->mu);
    if (cred) {
        /* both compared, always: the time does not tell which one exists */
        bool k = sodium_memcmp(h, a->key, sizeof(h)) == 0 && a->has_key;
        bool s = sodium_memcmp(h, a->secret, sizeof(h)) == 0 && a->has_secret;
        ok = k || s;
    }
    pending = a->expect_router && !a->has_secret;
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(h, sizeof(h));
    return ok ? ND_AUTH_OK : pending ? ND_AUTH_PENDING : ND_AUTH_DENIED;
}
