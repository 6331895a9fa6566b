/* test_sha256: common/sha256.c against the FIPS 180-2 vectors, fed whole
 * and in uneven pieces, and a state started again after a partial hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const unsigned char *d, char out[65])
{
    for (int i = 0; i < CM_SHA256_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void digest(const char *s, size_t n, size_t piece, char out[65])
{
    cm_sha256_t h;
    unsigned char d[CM_SHA256_BYTES];
    cm_sha256_init(&h);
    for (size_t i = 0; i < n; i += piece)
        cm_sha256_update(&h, s + i, n - i < piece ? n - i : piece);
    cm_sha256_final(&h, d);
    hex(d, out);
}

static void test_vectors(void **state)
{
    (void)state;
    char out[65];
    digest("", 0, 1, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest("abc", 3, 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t piece = 1; piece <= 64; piece += 7) {
        digest(two, strlen(two), piece, out);
        assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
    /* a million 'a's, in 4 KiB pieces */
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    digest(a, n, 4096, out);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_restart(void **state)
{
    (void)state;
    cm_sha256_t h;
    unsigned char d[CM_SHA256_BYTES];
    char out[65];
    cm_sha256_init(&h);
    cm_sha256_update(&h, "garbage from a dropped download", 31);
    cm_sha256_init(&h); /* started again: nothing of before counts, nothing leaks */
    cm_sha256_update(&h, "abc", 3);
    cm_sha256_final(&h, d);
    hex(d, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_vectors), cmocka_unit_test(test_restart) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
