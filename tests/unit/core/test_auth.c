/* test_auth.c - credentials of auth.h: API tokens (shape, 1000 distinct,
 * hash stable and 64 hex, the shape check), scrypt password hashes (the
 * stored form, salted, verify right/wrong, the RFC 7914 vector, length
 * bounds, and malformed or hostile stored strings refused quickly, the
 * costliest accepted one bounded), and role names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>

#include "core/auth.h"
#include "core/secret.h"
#include "core/util.h"
#include "core/banned.h"

#define B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/* RFC 7914 section 12: scrypt("pleaseletmein", "SodiumChloride", N=16384,
 * r=8, p=1), first 32 bytes, in our stored form */
#define RFC_SALT "U29kaXVtQ2hsb3JpZGU"
#define RFC_HASH "cCO9yzr9c0hGHAbNgf046_2o-7qQT44-qbVD9lRdofI"
#define RFC_STORED "scrypt$14$8$1$" RFC_SALT "$" RFC_HASH

static int is_hex64(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* ---- tokens ---- */

static void test_auth_token_shape(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char token[64], hash[65], again[65];
    unsigned char raw[40];

    (void)state;
    assert_int_equal(myna_token_new(token, hash, &err), MYNA_OK);
    assert_int_equal(err.code, 0);
    assert_int_equal(strlen(token), 48);
    assert_memory_equal(token, "myna_", 5);
    assert_int_equal(strspn(token + 5, B64URL), 43);
    assert_int_equal(myna_token_looks_valid(token), 1);
    /* the body is exactly 32 bytes, canonically spelled */
    assert_int_equal(myna_secret__b64url_decode(token + 5, 43, raw, sizeof(raw)), 32);
    /* the hash is SHA-256 of the whole token */
    assert_true(is_hex64(hash));
    myna_token_hash(token, again);
    assert_string_equal(hash, again);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_auth_token_unique(void **state)
{
    enum { N = 1000 };
    char (*tokens)[64] = calloc(N, 64), (*hashes)[65] = calloc(N, 65);

    (void)state;
    assert_non_null(tokens);
    assert_non_null(hashes);
    for (int i = 0; i < N; i++) {
        assert_int_equal(myna_token_new(tokens[i], hashes[i], NULL), MYNA_OK);
        assert_int_equal(myna_token_looks_valid(tokens[i]), 1);
        assert_true(is_hex64(hashes[i]));
    }
    qsort(tokens, N, 64, cmp_str);
    qsort(hashes, N, 65, cmp_str);
    for (int i = 1; i < N; i++) {
        assert_string_not_equal(tokens[i - 1], tokens[i]);
        assert_string_not_equal(hashes[i - 1], hashes[i]);
    }
    free(tokens);
    free(hashes);
}

static void test_auth_token_hash_stable(void **state)
{
    char h1[65], h2[65];

    (void)state;
    myna_token_hash("abc", h1);
    assert_string_equal(h1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    myna_token_hash("", h1);
    assert_string_equal(h1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    myna_token_hash("myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h1);
    myna_token_hash("myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h2);
    assert_true(is_hex64(h1));
    assert_string_equal(h1, h2);
    myna_token_hash("myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", h2);
    assert_string_not_equal(h1, h2);
    memset(h1, 'x', sizeof(h1));
    myna_token_hash(NULL, h1);
    assert_string_equal(h1, "");
}

static void test_auth_token_looks_valid(void **state)
{
    static const char *const bad[] = {
        "",
        "myna_",
        "myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",     /* 42 */
        "myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 44 */
        "Myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "myna-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mynaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        " myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",
        "myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        "myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        "myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "myna_AAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAA",
        "myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xd0\x96",
        "Bearer myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };

    (void)state;
    assert_int_equal(myna_token_looks_valid("myna_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 1);
    assert_int_equal(myna_token_looks_valid("myna_-_09azAZ-_09azAZ-_09azAZ-_09azAZ-_09azAZ-_0"), 1);
    assert_int_equal(myna_token_looks_valid(NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (myna_token_looks_valid(bad[i]))
            fail_msg("'%s' taken as a token", bad[i]);
}

/* ---- passwords ---- */

static char *hash_ok(const char *password)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *h = myna_password_hash(password, &err);

    if (h == NULL)
        fail_msg("hash failed: %s", err.msg);
    assert_int_equal(err.code, 0);
    return h;
}

static void test_auth_password_stored_form(void **state)
{
    char *h, *f[8], *copy;
    size_t n = 0;
    int64_t t0, ms;

    (void)state;
    t0 = myna_mono_us();
    h = hash_ok("correct horse battery staple");
    ms = (myna_mono_us() - t0) / 1000;
    print_message("one scrypt hash (logN=%d r=%d p=%d): %lld ms\n", MYNA_SCRYPT_LOG_N,
                  MYNA_SCRYPT_R, MYNA_SCRYPT_P, (long long)ms);
    copy = strdup(h);
    assert_non_null(copy);
    f[n++] = copy;
    for (char *p = copy; *p && n < 8; p++)
        if (*p == '$') {
            *p = '\0';
            f[n++] = p + 1;
        }
    assert_int_equal(n, 6);
    assert_string_equal(f[0], "scrypt");
    assert_string_equal(f[1], "14");
    assert_string_equal(f[2], "8");
    assert_string_equal(f[3], "1");
    assert_int_equal(strlen(f[4]), 22);   /* 16 bytes */
    assert_int_equal(strspn(f[4], B64URL), 22);
    assert_int_equal(strlen(f[5]), 43);   /* 32 bytes */
    assert_int_equal(strspn(f[5], B64URL), 43);
    assert_null(strstr(h, "horse"));
    free(copy);
    free(h);
}

static void test_auth_password_verify(void **state)
{
    char *h = hash_ok("s3cret-passw0rd");

    (void)state;
    assert_int_equal(myna_password_verify("s3cret-passw0rd", h), 1);
    assert_int_equal(myna_password_verify("s3cret-passw0rD", h), 0);
    assert_int_equal(myna_password_verify("s3cret-passw0rd ", h), 0);
    assert_int_equal(myna_password_verify("s3cret-passw0r", h), 0);
    assert_int_equal(myna_password_verify("short", h), 0);
    assert_int_equal(myna_password_verify(NULL, h), 0);
    assert_int_equal(myna_password_verify("s3cret-passw0rd", NULL), 0);
    free(h);
    /* UTF-8 passwords are bytes like any other */
    h = hash_ok("пароль-секрет-🔑");
    assert_int_equal(myna_password_verify("пароль-секрет-🔑", h), 1);
    assert_int_equal(myna_password_verify("пароль-секрет-🗝", h), 0);
    free(h);
}

static void test_auth_password_salted(void **state)
{
    char *a = hash_ok("same password"), *b = hash_ok("same password");

    (void)state;
    assert_string_not_equal(a, b);
    assert_int_equal(myna_password_verify("same password", a), 1);
    assert_int_equal(myna_password_verify("same password", b), 1);
    free(a);
    free(b);
}

static void test_auth_password_rfc7914_vector(void **state)
{
    (void)state;
    assert_int_equal(myna_password_verify("pleaseletmein", RFC_STORED), 1);
    assert_int_equal(myna_password_verify("pleaseletmeiN", RFC_STORED), 0);
    /* each parameter is part of the hash */
    assert_int_equal(myna_password_verify("pleaseletmein",
                                          "scrypt$13$8$1$" RFC_SALT "$" RFC_HASH), 0);
    assert_int_equal(myna_password_verify("pleaseletmein",
                                          "scrypt$14$7$1$" RFC_SALT "$" RFC_HASH), 0);
    assert_int_equal(myna_password_verify("pleaseletmein",
                                          "scrypt$14$8$2$" RFC_SALT "$" RFC_HASH), 0);
    assert_int_equal(myna_password_verify("pleaseletmein",
                                          "scrypt$14$8$1$U29kaXVtQ2hsb3JpZGY" "$" RFC_HASH), 0);
}

static void test_auth_password_length_bounds(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *pw = malloc(MYNA_PASSWORD_MAX + 2), *h;

    (void)state;
    assert_non_null(pw);
    assert_null(myna_password_hash("1234567", &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_non_null(strstr(err.msg, "8"));
    assert_null(strstr(err.msg, "1234567"));   /* never the password */
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_password_hash("", &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_password_hash(NULL, &err));
    assert_int_equal(err.code, MYNA_EINVAL);

    h = hash_ok("12345678");
    assert_int_equal(myna_password_verify("12345678", h), 1);
    free(h);

    memset(pw, 'p', MYNA_PASSWORD_MAX);
    pw[MYNA_PASSWORD_MAX] = '\0';
    h = hash_ok(pw);
    assert_int_equal(myna_password_verify(pw, h), 1);
    pw[MYNA_PASSWORD_MAX - 1] = 'q';
    assert_int_equal(myna_password_verify(pw, h), 0);
    free(h);

    pw[MYNA_PASSWORD_MAX] = 'p';
    pw[MYNA_PASSWORD_MAX + 1] = '\0';
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_password_hash(pw, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_non_null(strstr(err.msg, "1024"));
    assert_null(strstr(err.msg, "pppp"));
    free(pw);
}

/* Every malformed stored string gives 0 without running scrypt: all of them
 * together take well under one default hash each. */
static void test_auth_password_malformed_fast(void **state)
{
    static const char *const bad[] = {
        "",
        "scrypt",
        "scrypt$",
        "scrypt$$$$$",
        "bcrypt$14$8$1$" RFC_SALT "$" RFC_HASH,
        "SCRYPT$14$8$1$" RFC_SALT "$" RFC_HASH,
        "$2b$12$abcdefghijklmnopqrstuuJ0mTh5wUq3rGk7Qe1cYQmZc0Bq7yBXy",
        "scrypt$14$8$1$" RFC_SALT "$" RFC_HASH "$",
        "scrypt$14$8$1$" RFC_SALT "$" RFC_HASH "$extra",
        "scrypt$14$8$1$" RFC_SALT,
        "scrypt$14$8$" RFC_SALT "$" RFC_HASH,
        /* parameters out of bounds: huge, zero, negative, padded, not numbers */
        "scrypt$21$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$64$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$99$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$4294967310$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$14$17$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$14$99999999$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$14$8$5$" RFC_SALT "$" RFC_HASH,
        "scrypt$14$8$16$" RFC_SALT "$" RFC_HASH,
        "scrypt$0$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$14$0$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$14$8$0$" RFC_SALT "$" RFC_HASH,
        "scrypt$-14$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$014$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$+14$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$ 14$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$14 $8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$0x e$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$$8$1$" RFC_SALT "$" RFC_HASH,
        /* each bound alone is met, but memory or work together is not */
        "scrypt$20$16$4$" RFC_SALT "$" RFC_HASH,
        "scrypt$20$2$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$18$8$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$19$4$1$" RFC_SALT "$" RFC_HASH,
        "scrypt$17$16$1$" RFC_SALT "$" RFC_HASH,
        /* salt and hash: empty, not base64url, padded, wrong lengths */
        "scrypt$14$8$1$$" RFC_HASH,
        "scrypt$14$8$1$" RFC_SALT "$",
        "scrypt$14$8$1$!!!!!!!!!!!!!!!!!!!$" RFC_HASH,
        "scrypt$14$8$1$" RFC_SALT "$cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofI",
        "scrypt$14$8$1$" RFC_SALT "=$" RFC_HASH,
        "scrypt$14$8$1$" RFC_SALT "$" RFC_HASH "=",
        "scrypt$14$8$1$AAAAAAA$" RFC_HASH,                    /* 5 bytes of salt */
        "scrypt$14$8$1$" RFC_SALT "$cCO9yzr9c0hGHAbNgf046_2o-7qQT44-qbVD9lRdofIA",
        "scrypt$14$8$1$" RFC_SALT "$cCO9yzr9c0hGHAbNgf046_2o-7qQT44-qbVD9lRdof",
        "scrypt$14$8$1$" RFC_SALT "$cCO9yzr9c0hGHAbNgf046_2o",   /* a cut hash */
        "scrypt$14$8$1$" RFC_SALT "$cCO9yzr9c0hGHAbNgf046_2o-7qQT44-qbVD9lRdofJ",
        /* the one that runs scrypt: the right shape, a changed hash */
        "scrypt$14$8$1$" RFC_SALT "$dCO9yzr9c0hGHAbNgf046_2o-7qQT44-qbVD9lRdofI",
    };
    char *big = malloc(100001), cut[256];
    size_t full = strlen(RFC_STORED);
    int64_t t0 = myna_mono_us(), ms;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (myna_password_verify("pleaseletmein", bad[i]) != 0)
            fail_msg("'%s' verified", bad[i]);
    /* every truncation of a good stored string */
    for (size_t i = 0; i < full; i++) {
        memcpy(cut, RFC_STORED, i);
        cut[i] = '\0';
        if (myna_password_verify("pleaseletmein", cut) != 0)
            fail_msg("truncation '%s' verified", cut);
    }
    /* a huge stored string */
    assert_non_null(big);
    memcpy(big, "scrypt$14$8$1$", 14);
    memset(big + 14, 'A', 100000 - 14);
    big[100000] = '\0';
    assert_int_equal(myna_password_verify("pleaseletmein", big), 0);
    free(big);
    ms = (myna_mono_us() - t0) / 1000;
    print_message("%zu malformed stored strings refused in %lld ms\n",
                  sizeof(bad) / sizeof(bad[0]) + full + 1, (long long)ms);
    /* one hash at the default cost takes tens of ms; only the last entry of
     * bad ran one */
    assert_true(ms < 1500);
}

/* Within our bounds but refused by OpenSSL (scrypt needs N < 2^(16 r)):
 * no match, and nothing left in OpenSSL's error queue. */
static void test_auth_password_openssl_refuses(void **state)
{
    (void)state;
    ERR_clear_error();
    assert_int_equal(myna_password_verify("pleaseletmein", "scrypt$17$1$1$" RFC_SALT "$" RFC_HASH),
                     0);
    assert_int_equal(ERR_peek_error(), 0);
}

/* The costliest stored string verify accepts: logN 19 with r 2 (128 MiB)
 * and p 4 (32 times the default work). It must finish, in seconds. */
static void test_auth_password_costliest_bounded(void **state)
{
    int64_t t0 = myna_mono_us(), ms;

    (void)state;
    assert_int_equal(myna_password_verify("pleaseletmein", "scrypt$19$2$4$" RFC_SALT "$" RFC_HASH),
                     0);
    ms = (myna_mono_us() - t0) / 1000;
    print_message("costliest accepted parameters: %lld ms\n", (long long)ms);
    assert_true(ms < 60000);
}

/* ---- roles ---- */

static void test_auth_roles(void **state)
{
    static const enum myna_role all[] = { MYNA_ROLE_GUEST, MYNA_ROLE_USER, MYNA_ROLE_ADMIN };
    static const char *const bad[] = { "", "Admin", "ADMIN", "admin ", " user", "root",
                                       "unknown", "guest\n", "adm" };
    enum myna_role r;

    (void)state;
    assert_string_equal(myna_role_name(MYNA_ROLE_GUEST), "guest");
    assert_string_equal(myna_role_name(MYNA_ROLE_USER), "user");
    assert_string_equal(myna_role_name(MYNA_ROLE_ADMIN), "admin");
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        r = (enum myna_role)-1;
        assert_int_equal(myna_role_parse(myna_role_name(all[i]), &r), 0);
        assert_int_equal(r, all[i]);
    }
    assert_string_equal(myna_role_name((enum myna_role)42), "unknown");
    assert_string_equal(myna_role_name((enum myna_role)-1), "unknown");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = MYNA_ROLE_USER;
        assert_int_equal(myna_role_parse(bad[i], &r), -1);
        assert_int_equal(r, MYNA_ROLE_USER);   /* untouched */
    }
    assert_int_equal(myna_role_parse(NULL, &r), -1);
}

/* The Bearer scheme in any case, then one or more spaces; anything else
 * is another scheme. */
static void test_auth_bearer(void **state)
{
    (void)state;
    assert_string_equal(myna_auth_bearer("Bearer abc"), "abc");
    assert_string_equal(myna_auth_bearer("bearer abc"), "abc");
    assert_string_equal(myna_auth_bearer("BEARER   abc"), "abc");
    assert_string_equal(myna_auth_bearer("Bearer "), "");
    assert_null(myna_auth_bearer(NULL));
    assert_null(myna_auth_bearer("Bearerabc"));
    assert_null(myna_auth_bearer("Bearer"));
    assert_null(myna_auth_bearer("Basic abc"));
    assert_null(myna_auth_bearer(" Bearer abc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_token_shape),
        cmocka_unit_test(test_auth_token_unique),
        cmocka_unit_test(test_auth_token_hash_stable),
        cmocka_unit_test(test_auth_token_looks_valid),
        cmocka_unit_test(test_auth_password_stored_form),
        cmocka_unit_test(test_auth_password_verify),
        cmocka_unit_test(test_auth_password_salted),
        cmocka_unit_test(test_auth_password_rfc7914_vector),
        cmocka_unit_test(test_auth_password_length_bounds),
        cmocka_unit_test(test_auth_password_malformed_fast),
        cmocka_unit_test(test_auth_password_openssl_refuses),
        cmocka_unit_test(test_auth_password_costliest_bounded),
        cmocka_unit_test(test_auth_roles),
        cmocka_unit_test(test_auth_bearer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
