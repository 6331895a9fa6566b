/* sha256: streaming SHA-256 for model files (the router's catalogue and
 * downloads, the node's model sync), with OpenSSL's libcrypto, whose
 * assembly uses the CPU's SHA extensions where it has them: 358 MB in
 * ~0.5 s here against libsodium's portable code at ~1.7 s. The state lives
 * in the caller's memory (no allocation, nothing to free), so a hash can be
 * started again or dropped on any path. */
#ifndef CM_SHA256_H
#define CM_SHA256_H

#include <stddef.h>

#define CM_SHA256_BYTES 32

typedef struct {
    _Alignas(16) unsigned char opaque[128]; /* OpenSSL's SHA256_CTX */
} cm_sha256_t;

void cm_sha256_init(cm_sha256_t *h);
void cm_sha256_update(cm_sha256_t *h, const void *data, size_t len);
void cm_sha256_final(cm_sha256_t *h, unsigned char out[CM_SHA256_BYTES]);

#endif
