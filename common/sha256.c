/* The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP,
 * whose context must be allocated and freed; they remain, run the same
 * assembly, and let the state live in the caller's struct. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sha256.h"

#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((cm_sha256_t *)0)->opaque), "cm_sha256_t too small for SHA256_CTX");

void cm_sha256_init(cm_sha256_t *h) { SHA256_Init((SHA256_CTX *)(void *)h->opaque); }

void cm_sha256_update(cm_sha256_t *h, const void *data, size_t len)
{
    SHA256_Update((SHA256_CTX *)(void *)h->opaque, data, len);
}

void cm_sha256_final(cm_sha256_t *h, unsigned char out[CM_SHA256_BYTES])
{
    SHA256_Final(out, (SHA256_CTX *)(void *)h->opaque);
}
