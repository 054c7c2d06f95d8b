/* test_signature.c - X-Hub-Signature-256 checks against the vectors of
 * tests/data/cloud/README.md ("Signature test vectors": HMAC-SHA256 with the
 * app secret test-app-secret-0123456789abcdef over the exact file bytes),
 * RFC 4231, and every way a header can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "wa/signature.h"

#ifndef MYNA_TEST_DATA
#error "MYNA_TEST_DATA must name the tests/data directory"
#endif

#define SECRET "test-app-secret-0123456789abcdef"

static const struct {
    const char *file, *header;
} vectors[] = {
    { "cloud-text.json",
      "sha256=0a2f4f90431ca9f10f9daa26e4ad6efa5d764920b9d660a61c6655503f578d46" },
    { "cloud-text-cyrillic-emoji.json",
      "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333" },
    { "cloud-three-messages-one-post.json",
      "sha256=83fe2c767c9da887fd9aac7dc712664c24ec0ce2cbba5f57ab94f0765077f023" },
    { "cloud-status-delivered-read.json",
      "sha256=023402f49228ef9dd2e65284c8416adb764b115f3958b5eb0df3c2d577c0ea5e" },
};

#define N_VECTORS (sizeof(vectors) / sizeof(vectors[0]))

/* Exact-size copy of a fixture: a read past the body shows under ASan. */
static char *read_fixture(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    long n;
    char *data;

    snprintf(path, sizeof(path), "%s/cloud/%s", MYNA_TEST_DATA, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open '%s'", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    data = malloc((size_t)n);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static struct myna_hmac_key *test_key(void)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_hmac_key *k = myna_hmac_key_new(SECRET, strlen(SECRET), &err);

    if (k == NULL)
        fail_msg("key: %s", err.msg);
    return k;
}

/* The check fails with MYNA_EBADSIG and an err naming the reason. */
static void expect_bad(struct myna_hmac_key *k, const char *header, const void *body,
                       size_t len, const char *reason)
{
    struct myna_err err = MYNA_ERR_INIT;
    int rc = myna_signature_verify(k, header, body, len, &err);

    if (rc != MYNA_EBADSIG)
        fail_msg("header '%s': expected MYNA_EBADSIG, got %d", header ? header : "(null)", rc);
    assert_int_equal(err.code, MYNA_EBADSIG);
    if (strstr(err.msg, reason) == NULL)
        fail_msg("header '%s': err '%s' does not say '%s'", header ? header : "(null)", err.msg,
                 reason);
}

static void test_vectors_verify(void **state)
{
    struct myna_hmac_key *k = test_key();
    size_t i;

    (void)state;
    for (i = 0; i < N_VECTORS; i++) {
        struct myna_err err = MYNA_ERR_INIT;
        size_t len;
        char *body = read_fixture(vectors[i].file, &len);

        if (myna_signature_verify(k, vectors[i].header, body, len, &err) != MYNA_OK)
            fail_msg("%s: %s", vectors[i].file, err.msg);
        /* success leaves err untouched */
        assert_int_equal(err.code, 0);
        assert_int_equal(err.msg[0], '\0');
        free(body);
    }
    myna_hmac_key_free(k);
}

static void test_uppercase_hex_verifies(void **state)
{
    struct myna_hmac_key *k = test_key();
    struct myna_err err = MYNA_ERR_INIT;
    char header[80];
    size_t len, i;
    char *body = read_fixture(vectors[0].file, &len);

    (void)state;
    snprintf(header, sizeof(header), "%s", vectors[0].header);
    for (i = 7; header[i] != '\0'; i++)
        header[i] = (char)toupper((unsigned char)header[i]);
    assert_int_equal(myna_signature_verify(k, header, body, len, &err), MYNA_OK);
    /* mixed case too */
    for (i = 7; header[i] != '\0'; i += 2)
        header[i] = (char)tolower((unsigned char)header[i]);
    assert_int_equal(myna_signature_verify(k, header, body, len, &err), MYNA_OK);
    free(body);
    myna_hmac_key_free(k);
}

static void test_flipped_body_byte_fails(void **state)
{
    struct myna_hmac_key *k = test_key();
    size_t i;

    (void)state;
    for (i = 0; i < N_VECTORS; i++) {
        size_t len, pos;
        char *body = read_fixture(vectors[i].file, &len);

        /* first, middle and last byte; one bit is enough */
        for (pos = 0; pos < len; pos += len / 2 > 0 ? len / 2 : 1) {
            body[pos] ^= 0x01;
            expect_bad(k, vectors[i].header, body, len, "does not match");
            body[pos] ^= 0x01;
        }
        body[len - 1] ^= 0x01;
        expect_bad(k, vectors[i].header, body, len, "does not match");
        /* a body one byte shorter or longer does not match either */
        body[len - 1] ^= 0x01;
        expect_bad(k, vectors[i].header, body, len - 1, "does not match");
        free(body);
    }
    myna_hmac_key_free(k);
}

static void test_flipped_hex_digit_fails(void **state)
{
    struct myna_hmac_key *k = test_key();
    char header[80];
    size_t len, i;
    char *body = read_fixture(vectors[1].file, &len);

    (void)state;
    for (i = 7; i < 7 + 64; i++) {
        snprintf(header, sizeof(header), "%s", vectors[1].header);
        header[i] = header[i] == '0' ? '1' : '0';
        expect_bad(k, header, body, len, "does not match");
    }
    free(body);
    myna_hmac_key_free(k);
}

static void test_malformed_headers_fail(void **state)
{
    static const char hex64[] =
        "c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333";
    static const struct {
        const char *header, *reason;
    } cases[] = {
        { "", "empty X-Hub-Signature-256 header" },
        { hex64, "does not start with \"sha256=\"" },
        { "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", "does not start with \"sha256=\"" },
        { "SHA256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333",
          "does not start with \"sha256=\"" },
        { " sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333",
          "does not start with \"sha256=\"" },
        { "sha256", "does not start with \"sha256=\"" },
        { "sha256=", "has 0 hex digits, expected 64" },
        { "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb133",
          "has 63 hex digits, expected 64" },
        { "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb13330",
          "has 65 hex digits, expected 64" },
        { "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333\r\n",
          "has 66 hex digits, expected 64" },
        { "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333 ",
          "has 65 hex digits, expected 64" },
        { "sha256=g220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333",
          "non-hex character at digit 0" },
        { "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb133z",
          "non-hex character at digit 63" },
        { "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb13 3",
          "non-hex character at digit 62" },
        { "sha256=0xc220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb13",
          "non-hex character at digit 1" },
        { "sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb13\xc3\xa9",
          "non-hex character at digit 62" },
    };
    struct myna_hmac_key *k = test_key();
    size_t len, i;
    char *body = read_fixture(vectors[1].file, &len);

    (void)state;
    expect_bad(k, NULL, body, len, "missing X-Hub-Signature-256 header");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_bad(k, cases[i].header, body, len, cases[i].reason);
    free(body);
    myna_hmac_key_free(k);
}

/* Each failure has its own message: the operator can tell a missing header
 * (proxy strips it) from a mismatch (wrong app secret). */
static void test_reasons_are_distinct(void **state)
{
    static const char *headers[] = {
        NULL,
        "",
        "c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333",
        "sha256=c220",
        "sha256=x220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
    };
    enum { N = sizeof(headers) / sizeof(headers[0]) };
    struct myna_err errs[N];
    struct myna_hmac_key *k = test_key();
    size_t i, j;

    (void)state;
    for (i = 0; i < N; i++) {
        memset(&errs[i], 0, sizeof(errs[i]));
        assert_int_equal(myna_signature_verify(k, headers[i], "{}", 2, &errs[i]), MYNA_EBADSIG);
        assert_true(errs[i].msg[0] != '\0');
        /* the header value itself never lands in the message (logs) */
        if (headers[i] != NULL && strlen(headers[i]) > 8)
            assert_null(strstr(errs[i].msg, headers[i]));
    }
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            if (strcmp(errs[i].msg, errs[j].msg) == 0)
                fail_msg("headers %zu and %zu share the message '%s'", i, j, errs[i].msg);
    myna_hmac_key_free(k);
}

/* Parsing and re-serializing turns \u0417 into UTF-8 and \/ into /: the MAC
 * must be computed over the bytes as received (A2). */
static void test_reencoded_body_fails(void **state)
{
    struct myna_hmac_key *k = test_key();
    struct myna_err err = MYNA_ERR_INIT;
    size_t len;
    char *body = read_fixture("cloud-text-cyrillic-emoji.json", &len);
    cJSON *j = cJSON_ParseWithLength(body, len);
    char *again;

    (void)state;
    assert_non_null(j);
    again = cJSON_PrintUnformatted(j);
    assert_non_null(again);
    assert_true(strlen(again) != len || memcmp(again, body, len) != 0);
    assert_int_equal(myna_signature_verify(k, vectors[1].header, again, strlen(again), &err),
                     MYNA_EBADSIG);
    assert_non_null(strstr(err.msg, "does not match"));
    /* the bytes as read still pass */
    assert_int_equal(myna_signature_verify(k, vectors[1].header, body, len, &err), MYNA_OK);
    cJSON_free(again);
    cJSON_Delete(j);
    free(body);
    myna_hmac_key_free(k);
}

static void test_make_round_trips(void **state)
{
    struct myna_hmac_key *k = test_key();
    struct myna_err err = MYNA_ERR_INIT;
    char header[72];
    size_t i;

    (void)state;
    for (i = 0; i < N_VECTORS; i++) {
        size_t len;
        char *body = read_fixture(vectors[i].file, &len);

        memset(header, 'X', sizeof(header));
        assert_int_equal(myna_signature_make(k, body, len, header), MYNA_OK);
        assert_string_equal(header, vectors[i].header);
        assert_int_equal(strlen(header), 71);
        assert_int_equal(myna_signature_verify(k, header, body, len, &err), MYNA_OK);
        free(body);
    }
    /* an empty body has a signature too */
    assert_int_equal(myna_signature_make(k, "", 0, header), MYNA_OK);
    assert_int_equal(myna_signature_verify(k, header, "", 0, &err), MYNA_OK);
    assert_int_equal(myna_signature_verify(k, header, NULL, 0, &err), MYNA_OK);
    expect_bad(k, header, "x", 1, "does not match");
    myna_hmac_key_free(k);
}

/* RFC 4231 test case 2 and the well-known empty-message MAC: the primitive
 * itself, independent of our fixtures. */
static void test_hmac_known_answers(void **state)
{
    static const uint8_t rfc4231_2[32] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
        0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
    };
    static const uint8_t empty[32] = {
        0x5d, 0x5d, 0x13, 0x95, 0x63, 0xc9, 0x5b, 0x59, 0x67, 0xb9, 0xbd, 0x9a, 0x8c, 0x9b, 0x23, 0x3a,
        0x9d, 0xed, 0xb4, 0x50, 0x72, 0x79, 0x4c, 0xd2, 0x32, 0xdc, 0x1b, 0x74, 0x83, 0x26, 0x07, 0xd0,
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_hmac_key *jefe = myna_hmac_key_new("Jefe", 4, &err);
    struct myna_hmac_key *key = myna_hmac_key_new("key", 3, &err);
    static const char msg[] = "what do ya want for nothing?";
    uint8_t out[32];
    int i;

    (void)state;
    assert_non_null(jefe);
    assert_non_null(key);
    /* the keyed context is reused: many MACs, same answer, no state leaks
     * from one call into the next */
    for (i = 0; i < 100; i++) {
        memset(out, 0, sizeof(out));
        assert_int_equal(myna_hmac_sha256(jefe, msg, sizeof(msg) - 1, out), MYNA_OK);
        assert_memory_equal(out, rfc4231_2, 32);
        assert_int_equal(myna_hmac_sha256(key, "", 0, out), MYNA_OK);
        assert_memory_equal(out, empty, 32);
    }
    myna_hmac_key_free(jefe);
    myna_hmac_key_free(key);
}

static void test_key_arguments(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_hmac_key *k;
    uint8_t out[32];

    (void)state;
    assert_null(myna_hmac_key_new("", 0, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_non_null(strstr(err.msg, "empty app secret"));
    memset(&err, 0, sizeof(err));
    assert_null(myna_hmac_key_new(NULL, 16, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_null(myna_hmac_key_new(NULL, 0, NULL));   /* err is optional */
    myna_hmac_key_free(NULL);
    /* a binary secret with a NUL inside keys on all its bytes */
    k = myna_hmac_key_new("a\0b", 3, &err);
    assert_non_null(k);
    assert_int_equal(myna_hmac_sha256(k, "x", 1, out), MYNA_OK);
    myna_hmac_key_free(k);
    assert_int_equal(myna_hmac_sha256(NULL, "x", 1, out), MYNA_EINVAL);
    k = test_key();
    assert_int_equal(myna_hmac_sha256(k, NULL, 1, out), MYNA_EINVAL);
    assert_int_equal(myna_signature_verify(NULL, vectors[0].header, "x", 1, &err), MYNA_EINVAL);
    /* a wrong secret is a mismatch, not a format error */
    myna_hmac_key_free(k);
    k = myna_hmac_key_new("another-secret", 14, &err);
    assert_non_null(k);
    {
        size_t len;
        char *body = read_fixture(vectors[0].file, &len);

        expect_bad(k, vectors[0].header, body, len, "wrong app secret");
        free(body);
    }
    myna_hmac_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_verify),
        cmocka_unit_test(test_uppercase_hex_verifies),
        cmocka_unit_test(test_flipped_body_byte_fails),
        cmocka_unit_test(test_flipped_hex_digit_fails),
        cmocka_unit_test(test_malformed_headers_fail),
        cmocka_unit_test(test_reasons_are_distinct),
        cmocka_unit_test(test_reencoded_body_fails),
        cmocka_unit_test(test_make_round_trips),
        cmocka_unit_test(test_hmac_known_answers),
        cmocka_unit_test(test_key_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
