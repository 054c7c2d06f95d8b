/* test_buf.c - the bounded byte buffer against the contracts of buf.h:
 * appends and printf stop at max with MYNA_ETOOBIG and leave the buffer as it
 * was, reset keeps the memory, release and detach go back to the INIT state.
 * assert_sane() checks the invariants after every step (git
 * assert_sane_strbuf): len <= max, len < cap <= max + 1, data NUL-terminated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../child.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/banned.h"

static void assert_sane(const struct myna_buf *b)
{
    if (b->data == NULL) {
        assert_int_equal(b->len, 0);
        assert_int_equal(b->cap, 0);
        return;
    }
    assert_true(b->len <= b->max);
    assert_true(b->len < b->cap);
    assert_true(b->cap <= b->max + 1 || b->max + 1 == 0);
    assert_int_equal(b->data[b->len], '\0');
}

/* The buffer holds exactly the n bytes of want. */
static void assert_holds(const struct myna_buf *b, const char *want, size_t n)
{
    assert_sane(b);
    assert_int_equal(b->len, n);
    if (n > 0) {
        assert_non_null(b->data);
        assert_memory_equal(b->data, want, n);
    }
}

static void test_buf_init_is_empty(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(32);

    (void)state;
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 32);
    assert_sane(&b);
    myna_buf_release(&b); /* releasing an untouched buffer is fine */
    assert_sane(&b);
    assert_int_equal(b.max, 32);
}

static void test_buf_append_and_appends(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(1024);

    (void)state;
    assert_int_equal(myna_buf_append(&b, "hello", 5), MYNA_OK);
    assert_holds(&b, "hello", 5);
    assert_int_equal(myna_buf_appends(&b, ", world"), MYNA_OK);
    assert_holds(&b, "hello, world", 12);
    assert_string_equal(b.data, "hello, world");
    assert_int_equal(myna_buf_appends(&b, ""), MYNA_OK);
    assert_holds(&b, "hello, world", 12);
    myna_buf_release(&b);
    assert_sane(&b);
}

static void test_buf_append_zero_bytes_terminates(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(16);

    (void)state;
    assert_int_equal(myna_buf_append(&b, NULL, 0), MYNA_OK);
    assert_sane(&b);
    assert_int_equal(b.len, 0);
    if (b.data != NULL)
        assert_string_equal(b.data, "");
    myna_buf_release(&b);
}

static void test_buf_append_binary_with_nul(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(16);

    (void)state;
    assert_int_equal(myna_buf_append(&b, "a\0b", 3), MYNA_OK);
    assert_holds(&b, "a\0b", 3);
    assert_int_equal(myna_buf_append(&b, "\0", 1), MYNA_OK);
    assert_holds(&b, "a\0b\0", 4);
    myna_buf_release(&b);
}

static void test_buf_printf(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(256);

    (void)state;
    assert_int_equal(myna_buf_printf(&b, "%d-%s", 42, "x"), MYNA_OK);
    assert_holds(&b, "42-x", 4);
    assert_int_equal(myna_buf_printf(&b, " %05.1f|%c", 3.14159, 'z'), MYNA_OK);
    assert_holds(&b, "42-x 003.1|z", 12);
    assert_int_equal(myna_buf_printf(&b, "%s", ""), MYNA_OK);
    assert_holds(&b, "42-x 003.1|z", 12);
    myna_buf_release(&b);
}

static void test_buf_printf_long_output_grows(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(1 << 16);
    char big[3000];

    (void)state;
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(myna_buf_appends(&b, "<"), MYNA_OK);
    assert_int_equal(myna_buf_printf(&b, "%s>", big), MYNA_OK);
    assert_sane(&b);
    assert_int_equal(b.len, 1 + 2999 + 1);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1], 'q');
    assert_int_equal(b.data[2999], 'q');
    assert_int_equal(b.data[3000], '>');
    myna_buf_release(&b);
}

static void test_buf_stops_at_max(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(4);

    (void)state;
    assert_int_equal(myna_buf_append(&b, "abcd", 4), MYNA_OK);
    assert_holds(&b, "abcd", 4);
    assert_int_equal(myna_buf_append(&b, "e", 1), MYNA_ETOOBIG);
    assert_holds(&b, "abcd", 4);
    assert_int_equal(myna_buf_append(&b, "", 0), MYNA_OK); /* nothing past max */
    assert_holds(&b, "abcd", 4);
    myna_buf_release(&b);
}

static void test_buf_exactly_max_in_one_append(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(10);

    (void)state;
    assert_int_equal(myna_buf_append(&b, "0123456789", 10), MYNA_OK);
    assert_holds(&b, "0123456789", 10);
    assert_true(b.cap <= 11);
    myna_buf_release(&b);
}

static void test_buf_max_plus_one_refused_untouched(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(10);

    (void)state;
    /* from empty: nothing allocated, nothing changed */
    assert_int_equal(myna_buf_append(&b, "0123456789A", 11), MYNA_ETOOBIG);
    assert_null(b.data);
    assert_sane(&b);
    assert_int_equal(b.max, 10);
    /* with content: the refused append changes neither bytes nor len nor cap */
    assert_int_equal(myna_buf_append(&b, "0123", 4), MYNA_OK);
    {
        char *data = b.data;
        size_t cap = b.cap;
        assert_int_equal(myna_buf_append(&b, "4567890", 7), MYNA_ETOOBIG);
        assert_ptr_equal(b.data, data);
        assert_int_equal(b.cap, cap);
    }
    assert_holds(&b, "0123", 4);
    assert_int_equal(myna_buf_append(&b, "456789", 6), MYNA_OK);
    assert_holds(&b, "0123456789", 10);
    myna_buf_release(&b);
}

static void test_buf_huge_n_is_toobig_not_overflow(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(16);

    (void)state;
    assert_int_equal(myna_buf_append(&b, "ab", 2), MYNA_OK);
    /* n + len would wrap around: must be refused, p never read */
    assert_int_equal(myna_buf_append(&b, "x", SIZE_MAX), MYNA_ETOOBIG);
    assert_int_equal(myna_buf_append(&b, "x", SIZE_MAX - 1), MYNA_ETOOBIG);
    assert_holds(&b, "ab", 2);
    myna_buf_release(&b);
}

static void test_buf_printf_past_max(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(8);

    (void)state;
    assert_int_equal(myna_buf_printf(&b, "%s", "123456789"), MYNA_ETOOBIG);
    assert_null(b.data);
    assert_sane(&b);
    assert_int_equal(myna_buf_printf(&b, "%d", 123), MYNA_OK);
    assert_holds(&b, "123", 3);
    assert_int_equal(myna_buf_printf(&b, "%s", "456789"), MYNA_ETOOBIG); /* 3 + 6 > 8 */
    assert_holds(&b, "123", 3);
    assert_int_equal(myna_buf_printf(&b, "%s", "45678"), MYNA_OK); /* exactly 8 */
    assert_holds(&b, "12345678", 8);
    assert_int_equal(myna_buf_printf(&b, "%c", 'x'), MYNA_ETOOBIG);
    assert_holds(&b, "12345678", 8);
    myna_buf_release(&b);
}

static void test_buf_max_zero(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(0);

    (void)state;
    assert_int_equal(myna_buf_append(&b, "x", 1), MYNA_ETOOBIG);
    assert_sane(&b);
    assert_int_equal(myna_buf_printf(&b, "%c", 'x'), MYNA_ETOOBIG);
    assert_sane(&b);
    assert_int_equal(myna_buf_append(&b, "", 0), MYNA_OK);
    assert_sane(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(myna_buf_printf(&b, "%s", ""), MYNA_OK);
    assert_sane(&b);
    assert_int_equal(b.len, 0);
    if (b.data != NULL)
        assert_string_equal(b.data, "");
    assert_int_equal(myna_buf_appends(&b, "y"), MYNA_ETOOBIG);
    assert_sane(&b);
    myna_buf_release(&b);
    assert_sane(&b);
    assert_int_equal(b.max, 0);
}

static void test_buf_reset_keeps_memory(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(128);
    char *data;
    size_t cap;

    (void)state;
    myna_buf_reset(&b); /* reset of an untouched buffer is fine */
    assert_sane(&b);
    assert_int_equal(myna_buf_appends(&b, "some bytes"), MYNA_OK);
    data = b.data;
    cap = b.cap;
    myna_buf_reset(&b);
    assert_sane(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");
    assert_int_equal(myna_buf_appends(&b, "again"), MYNA_OK);
    assert_holds(&b, "again", 5);
    assert_ptr_equal(b.data, data);
    myna_buf_release(&b);
}

static void test_buf_reset_then_fill_to_max(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(4);

    (void)state;
    assert_int_equal(myna_buf_appends(&b, "abcd"), MYNA_OK);
    myna_buf_reset(&b);
    assert_int_equal(myna_buf_appends(&b, "wxyz"), MYNA_OK); /* max counts from reset */
    assert_holds(&b, "wxyz", 4);
    assert_int_equal(myna_buf_appends(&b, "!"), MYNA_ETOOBIG);
    assert_holds(&b, "wxyz", 4);
    myna_buf_release(&b);
}

static void test_buf_release_back_to_init(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(64);

    (void)state;
    assert_int_equal(myna_buf_appends(&b, "abc"), MYNA_OK);
    myna_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 64);
    myna_buf_release(&b); /* twice is fine */
    assert_sane(&b);
    assert_int_equal(myna_buf_appends(&b, "reuse"), MYNA_OK);
    assert_holds(&b, "reuse", 5);
    myna_buf_release(&b);
}

static void test_buf_detach(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(64);
    size_t len = 99;
    char *p;

    (void)state;
    assert_int_equal(myna_buf_appends(&b, "owned"), MYNA_OK);
    p = myna_buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_string_equal(p, "owned");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 64);
    assert_sane(&b);
    /* the buffer is reusable and does not share the detached bytes */
    assert_int_equal(myna_buf_appends(&b, "new"), MYNA_OK);
    assert_holds(&b, "new", 3);
    assert_string_equal(p, "owned");
    free(p);
    p = myna_buf_detach(&b, NULL); /* len is optional */
    assert_string_equal(p, "new");
    free(p);
    assert_sane(&b);
}

static void test_buf_detach_empty_is_null(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(64);
    size_t len = 99;

    (void)state;
    assert_null(myna_buf_detach(&b, &len));
    assert_int_equal(len, 0);
    assert_sane(&b);
}

/* buf.h: "Hands the bytes to the caller (NULL when empty)". A buffer that was
 * filled and then reset is empty, so a caller may skip free() on NULL/len 0.
 * (The kept allocation must not be handed out.) */
static void test_buf_detach_after_reset_is_null(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(64);
    size_t len = 99;
    char *p;

    (void)state;
    assert_int_equal(myna_buf_appends(&b, "abc"), MYNA_OK);
    myna_buf_reset(&b);
    p = myna_buf_detach(&b, &len);
    assert_int_equal(len, 0);
    assert_sane(&b);
    if (p != NULL) {
        free(p); /* no leak whatever the outcome */
        fail_msg("myna_buf_detach of an empty (reset) buffer returned a non-NULL pointer");
    }
}

static void test_buf_many_appends_grow(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(1 << 20);
    size_t i;

    (void)state;
    for (i = 0; i < 20000; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(myna_buf_append(&b, &c, 1), MYNA_OK);
        assert_sane(&b);
        assert_int_equal(b.len, i + 1);
    }
    for (i = 0; i < 20000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    /* geometric growth: capacity less than twice what is needed (+ start) */
    assert_true(b.cap < 2 * (b.len + 1) + 64);
    myna_buf_release(&b);
}

static void test_buf_growth_capped_at_max(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(100);
    size_t i;

    (void)state;
    for (i = 0; i < 100; i++) {
        assert_int_equal(myna_buf_append(&b, "z", 1), MYNA_OK);
        assert_sane(&b);
        assert_true(b.cap <= 101);
    }
    assert_int_equal(myna_buf_append(&b, "z", 1), MYNA_ETOOBIG);
    assert_sane(&b);
    assert_int_equal(b.len, 100);
    myna_buf_release(&b);
}

static void test_buf_mixed_appends_and_printf(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(4096);
    char want[4096];
    size_t n = 0;

    (void)state;
    for (int i = 0; i < 200; i++) {
        if (i % 2) {
            assert_int_equal(myna_buf_printf(&b, "[%d]", i), MYNA_OK);
            n += (size_t)snprintf(want + n, sizeof(want) - n, "[%d]", i);
        } else {
            assert_int_equal(myna_buf_appends(&b, "ab"), MYNA_OK);
            n += (size_t)snprintf(want + n, sizeof(want) - n, "ab");
        }
        assert_holds(&b, want, n);
    }
    myna_buf_release(&b);
}

static void child_max_size_max(void)
{
    struct myna_buf b = MYNA_BUF_INIT(SIZE_MAX);

    if (myna_buf_appends(&b, "abc") != MYNA_OK || b.len != 3 || b.cap < 4 ||
        strcmp(b.data, "abc") != 0)
        _exit(1);
    if (myna_buf_printf(&b, "%s", "defgh") != MYNA_OK || strcmp(b.data, "abcdefgh") != 0)
        _exit(1);
    myna_buf_release(&b);
}

/* max = SIZE_MAX ("no practical limit") must still work: clamping the
 * capacity to max + 1 would wrap to 0. */
static void test_buf_max_size_max(void **state)
{
    (void)state;
    assert_child_ok(child_max_size_max);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_init_is_empty),
        cmocka_unit_test(test_buf_append_and_appends),
        cmocka_unit_test(test_buf_append_zero_bytes_terminates),
        cmocka_unit_test(test_buf_append_binary_with_nul),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_printf_long_output_grows),
        cmocka_unit_test(test_buf_stops_at_max),
        cmocka_unit_test(test_buf_exactly_max_in_one_append),
        cmocka_unit_test(test_buf_max_plus_one_refused_untouched),
        cmocka_unit_test(test_buf_huge_n_is_toobig_not_overflow),
        cmocka_unit_test(test_buf_printf_past_max),
        cmocka_unit_test(test_buf_max_zero),
        cmocka_unit_test(test_buf_reset_keeps_memory),
        cmocka_unit_test(test_buf_reset_then_fill_to_max),
        cmocka_unit_test(test_buf_release_back_to_init),
        cmocka_unit_test(test_buf_detach),
        cmocka_unit_test(test_buf_detach_empty_is_null),
        cmocka_unit_test(test_buf_detach_after_reset_is_null),
        cmocka_unit_test(test_buf_many_appends_grow),
        cmocka_unit_test(test_buf_growth_capped_at_max),
        cmocka_unit_test(test_buf_mixed_appends_and_printf),
        cmocka_unit_test(test_buf_max_size_max),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
