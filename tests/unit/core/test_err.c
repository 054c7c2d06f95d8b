/* test_err.c - the error table and the error context of err.h: a text for
 * every code (and for unknown ones), myna_err_set filling code and message,
 * myna_err_prefix keeping the code, NULL err accepted, long messages cut
 * but always terminated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/util.h"
#include "core/banned.h"

struct code_text {
    int code;
    const char *name;
    const char *text;
};

static const struct code_text all_codes[] = {
#define X(name, val, text) { MYNA_E##name, #name, text },
    MYNA_ERRORS(X)
#undef X
};
#define N_CODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void assert_terminated(const struct myna_err *err)
{
    assert_non_null(memchr(err->msg, '\0', sizeof(err->msg)));
}

static void test_err_codes_negative_and_distinct(void **state)
{
    (void)state;
    assert_int_equal(MYNA_OK, 0);
    assert_true(N_CODES >= 12);
    for (size_t i = 0; i < N_CODES; i++) {
        assert_true(all_codes[i].code < 0);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(all_codes[i].code, all_codes[j].code);
    }
}

static void test_err_strerror_every_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        const char *s = myna_strerror(all_codes[i].code);
        assert_non_null(s);
        assert_string_equal(s, all_codes[i].text);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        /* texts are distinct */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, myna_strerror(all_codes[j].code));
    }
}

static void test_err_strerror_known_texts(void **state)
{
    (void)state;
    assert_string_equal(myna_strerror(MYNA_OK), "success");
    assert_string_equal(myna_strerror(MYNA_ENOMEM), "out of memory");
    assert_string_equal(myna_strerror(MYNA_EAGAIN), "try again later");
    assert_string_equal(myna_strerror(MYNA_ETOOBIG), "input larger than configured limit");
    assert_string_equal(myna_strerror(MYNA_EBADSIG), "bad signature");
    assert_string_equal(myna_strerror(MYNA_EPARSE), "malformed input");
    assert_string_equal(myna_strerror(MYNA_ESHAPE), "input does not have the expected shape");
    assert_string_equal(myna_strerror(MYNA_EINVAL), "invalid argument");
    assert_string_equal(myna_strerror(MYNA_ENOTFOUND), "not found");
    assert_string_equal(myna_strerror(MYNA_EIO), "input/output error");
    assert_string_equal(myna_strerror(MYNA_ESTORE), "store failure");
    assert_string_equal(myna_strerror(MYNA_EEXISTS), "already exists");
    assert_string_equal(myna_strerror(MYNA_ECONFIG), "invalid configuration");
}

static void test_err_strerror_unknown(void **state)
{
    (void)state;
    assert_string_equal(myna_strerror(1), "unknown error");
    assert_string_equal(myna_strerror(-1000), "unknown error");
    assert_string_equal(myna_strerror(INT32_MIN), "unknown error");
    assert_string_equal(myna_strerror(INT32_MAX), "unknown error");
}

static void test_err_init_is_unset(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
}

static void test_err_set_fills_and_returns_code(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_int_equal(myna_err_set(&err, MYNA_EIO, "cannot open '%s': %s", "a.db", "gone"),
                     MYNA_EIO);
    assert_int_equal(err.code, MYNA_EIO);
    assert_string_equal(err.msg, "cannot open 'a.db': gone");
    /* a second set replaces both */
    assert_int_equal(myna_err_set(&err, MYNA_ECONFIG, "%d", 7), MYNA_ECONFIG);
    assert_int_equal(err.code, MYNA_ECONFIG);
    assert_string_equal(err.msg, "7");
}

static void test_err_set_null_err(void **state)
{
    (void)state;
    assert_int_equal(myna_err_set(NULL, MYNA_ENOMEM, "out of %s", "memory"), MYNA_ENOMEM);
    assert_int_equal(myna_err_set(NULL, MYNA_OK, "%s", "fine"), MYNA_OK);
}

static void test_err_set_long_message_truncated(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char big[2000];

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(myna_err_set(&err, MYNA_EPARSE, "%s", big), MYNA_EPARSE);
    assert_terminated(&err);
    assert_int_equal(strlen(err.msg), MYNA_ERR_MSG_MAX - 1);
    assert_int_equal(err.code, MYNA_EPARSE);
}

/* A message cut to fit ends on a whole character: a value of 2-, 3- or
 * 4-byte characters quoted in it is never left with half of one. */
static void test_err_cut_never_splits_characters(void **state)
{
    static const char *const chars[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
    struct myna_err err = MYNA_ERR_INIT;
    char big[1200];

    (void)state;
    for (size_t c = 0; c < 3; c++) {
        size_t k = strlen(chars[c]);
        for (size_t shift = 0; shift < k; shift++) {
            size_t o = shift, n;
            memset(big, 'a', shift);
            while (o + k < sizeof(big)) {
                memcpy(big + o, chars[c], k);
                o += k;
            }
            big[o] = '\0';
            myna_err_set(&err, MYNA_ECONFIG, "option 'x': '%s' is bad", big);
            n = strlen(err.msg);
            assert_true(n >= MYNA_ERR_MSG_MAX - 4);
            assert_int_equal(myna_utf8_prefix(err.msg, n), n);
            myna_err_set(&err, MYNA_ECONFIG, "%s", big + shift);
            myna_err_prefix(&err, "file '%.*s'", (int)shift, "bbb");
            n = strlen(err.msg);
            assert_true(n >= MYNA_ERR_MSG_MAX - 4);
            assert_int_equal(myna_utf8_prefix(err.msg, n), n);
        }
    }
}

static void test_err_prefix(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    myna_err_set(&err, MYNA_EPARSE, "not valid JSON");
    assert_int_equal(myna_err_prefix(&err, "instances file '%s'", "x.json"), MYNA_EPARSE);
    assert_string_equal(err.msg, "instances file 'x.json': not valid JSON");
    assert_int_equal(err.code, MYNA_EPARSE);
    assert_int_equal(myna_err_prefix(&err, "load"), MYNA_EPARSE);
    assert_string_equal(err.msg, "load: instances file 'x.json': not valid JSON");
}

static void test_err_prefix_null_err(void **state)
{
    (void)state;
    assert_int_equal(myna_err_prefix(NULL, "ctx %d", 1), MYNA_EINVAL);
}

static void test_err_prefix_of_unset_err(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_int_equal(myna_err_prefix(&err, "ctx"), 0);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "ctx: ");
}

static void test_err_prefix_long_truncated(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char big[700];

    (void)state;
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    myna_err_set(&err, MYNA_EIO, "tail");
    assert_int_equal(myna_err_prefix(&err, "%s", big), MYNA_EIO);
    assert_terminated(&err);
    assert_int_equal(strlen(err.msg), MYNA_ERR_MSG_MAX - 1);
    assert_int_equal(err.msg[0], 'p');
    /* a long old message is cut at the end, the prefix stays whole */
    myna_err_set(&err, MYNA_EIO, "%s", big);
    assert_int_equal(myna_err_prefix(&err, "head"), MYNA_EIO);
    assert_terminated(&err);
    assert_int_equal(strncmp(err.msg, "head: ppp", 9), 0);
    assert_int_equal(strlen(err.msg), MYNA_ERR_MSG_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_codes_negative_and_distinct),
        cmocka_unit_test(test_err_strerror_every_code),
        cmocka_unit_test(test_err_strerror_known_texts),
        cmocka_unit_test(test_err_strerror_unknown),
        cmocka_unit_test(test_err_init_is_unset),
        cmocka_unit_test(test_err_set_fills_and_returns_code),
        cmocka_unit_test(test_err_set_null_err),
        cmocka_unit_test(test_err_set_long_message_truncated),
        cmocka_unit_test(test_err_cut_never_splits_characters),
        cmocka_unit_test(test_err_prefix),
        cmocka_unit_test(test_err_prefix_null_err),
        cmocka_unit_test(test_err_prefix_of_unset_err),
        cmocka_unit_test(test_err_prefix_long_truncated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
