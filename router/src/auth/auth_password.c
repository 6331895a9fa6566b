/* auth_password: password hashing (Argon2id through libsodium, with its
 * interactive limits: about 0.1 s and 64 MiB per hash, so callers on an event
 * loop hand it to a worker thread) and constant-time checking. */
#include "auth/auth_internal.h"

#include <sodium.h>
#include <string.h>

int rt_auth_password_hash(const char *password, char out[RT_AUTH_PWHASH_MAX])
{
    _Static_assert(RT_AUTH_PWHASH_MAX >= crypto_pwhash_STRBYTES, "hash buffer too small");
    return crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0 ? 0 : -1;
}

bool rt_auth_password_check(const char *hash, const char *password)
{
    return hash && password && crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}
