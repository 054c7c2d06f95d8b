/* test_arena.c - the region allocator against the contracts of arena.h:
 * 16-byte alignment, zeroing, strndup of unterminated input, allocations
 * larger than a block mixed with small ones (every byte written and checked
 * afterwards, so an overlap shows), the max limit, on_free hooks (latest
 * first, exactly once), own(), and reuse after free. ASan fills fresh
 * malloc memory with garbage, so the zalloc test means something under it. */
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

#include "core/arena.h"
#include "core/err.h"
#include "core/banned.h"

static void assert_aligned(const void *p)
{
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
}

/* The arena is back to its INIT state (max kept). */
static void assert_empty(const struct myna_arena *a)
{
    assert_null(a->head);
    assert_null(a->hooks);
    assert_int_equal(a->used, 0);
}

static void test_arena_init_and_free_empty(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);

    (void)state;
    assert_empty(&a);
    myna_arena_free(&a);
    assert_empty(&a);
    myna_arena_free(&a);
    assert_empty(&a);
}

static void test_arena_alignment_16(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    static const size_t sizes[] = { 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4095, 4096,
                                    4097, 5000, 1, 9 };

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = myna_arena_alloc(&a, sizes[i]);
        assert_aligned(p);
        memset(p, 0x5a, sizes[i]); /* writable, whole size */
    }
    for (int i = 0; i < 1000; i++)
        assert_aligned(myna_arena_alloc(&a, (size_t)(i % 37) + 1));
    myna_arena_free(&a);
    assert_empty(&a);
}

static void test_arena_used_counts_rounded_sizes(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);

    (void)state;
    assert_non_null(myna_arena_alloc(&a, 1));
    assert_int_equal(a.used, 16);
    assert_non_null(myna_arena_alloc(&a, 16));
    assert_int_equal(a.used, 32);
    assert_non_null(myna_arena_alloc(&a, 17));
    assert_int_equal(a.used, 64);
    assert_non_null(myna_arena_alloc(&a, 0)); /* a distinct, aligned pointer */
    assert_int_equal(a.used, 80);
    myna_arena_free(&a);
    assert_empty(&a);
}

static void test_arena_zero_size_distinct(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    void *p, *q;

    (void)state;
    p = myna_arena_alloc(&a, 0);
    q = myna_arena_alloc(&a, 0);
    assert_aligned(p);
    assert_aligned(q);
    assert_ptr_not_equal(p, q);
    myna_arena_free(&a);
}

static void test_arena_zalloc_zeroes(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    static const size_t sizes[] = { 1, 24, 100, 4000, 9000, 3 };

    (void)state;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            unsigned char *p = myna_arena_zalloc(&a, sizes[i]);
            assert_aligned(p);
            for (size_t j = 0; j < sizes[i]; j++)
                assert_int_equal(p[j], 0);
            memset(p, 0xff, sizes[i]); /* dirty it for the next round */
        }
        myna_arena_free(&a);
        assert_empty(&a);
    }
}

static void test_arena_strndup_unterminated(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    const char src[4] = { 'a', 'b', 'c', 'd' }; /* no NUL: ASan catches a read past it */
    char *s;

    (void)state;
    s = myna_arena_strndup(&a, src, sizeof(src));
    assert_aligned(s);
    assert_string_equal(s, "abcd");
    s = myna_arena_strndup(&a, src, 2);
    assert_string_equal(s, "ab");
    s = myna_arena_strndup(&a, src, 0);
    assert_non_null(s);
    assert_string_equal(s, "");
    /* n counts bytes, an embedded NUL is copied as is */
    s = myna_arena_strndup(&a, "x\0y", 3);
    assert_memory_equal(s, "x\0y\0", 4);
    myna_arena_free(&a);
}

static void test_arena_strdup(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    char src[] = "copy me";
    char *s;

    (void)state;
    s = myna_arena_strdup(&a, src);
    assert_string_equal(s, "copy me");
    assert_ptr_not_equal(s, src);
    src[0] = 'X';
    assert_string_equal(s, "copy me");
    assert_string_equal(myna_arena_strdup(&a, ""), "");
    myna_arena_free(&a);
}

static void test_arena_strndup_size_max_is_null(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);

    (void)state;
    assert_null(myna_arena_strndup(&a, "x", SIZE_MAX));
    assert_int_equal(a.used, 0);
    myna_arena_free(&a);
}

/* Allocations bigger than a block (4096) interleaved with small ones: each
 * gets a pattern, and all patterns are intact at the end. */
static void test_arena_big_and_small_interleaved(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    static const size_t sizes[] = { 10,   5000, 20,    40000, 3,  4097, 4096, 1,
                                    8192, 17,   100000, 64,   33, 9999, 2,    4080 };
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    unsigned char *p[N];
    size_t used = 0;

    (void)state;
    for (size_t i = 0; i < N; i++) {
        p[i] = myna_arena_alloc(&a, sizes[i]);
        assert_aligned(p[i]);
        memset(p[i], (int)(i + 1), sizes[i]);
        used += (sizes[i] + 15) & ~(size_t)15;
        assert_int_equal(a.used, used);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < sizes[i]; j++)
            if (p[i][j] != (unsigned char)(i + 1))
                fail_msg("allocation %zu (size %zu) overwritten at byte %zu", i, sizes[i], j);
    myna_arena_free(&a);
    assert_empty(&a);
}

static void test_arena_max_limit(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(100);

    (void)state;
    assert_non_null(myna_arena_alloc(&a, 64));
    assert_int_equal(a.used, 64);
    assert_null(myna_arena_alloc(&a, 48)); /* 64 + 48 > 100 */
    assert_int_equal(a.used, 64);
    assert_non_null(myna_arena_alloc(&a, 32)); /* 96 */
    assert_int_equal(a.used, 96);
    assert_null(myna_arena_alloc(&a, 1)); /* rounds to 16: 112 > 100 */
    assert_null(myna_arena_zalloc(&a, 1));
    assert_null(myna_arena_strdup(&a, ""));
    assert_int_equal(a.used, 96);
    myna_arena_free(&a);
    assert_empty(&a);
    assert_int_equal(a.max, 100);
    /* after free the whole budget is back */
    assert_non_null(myna_arena_alloc(&a, 96));
    myna_arena_free(&a);
}

static void test_arena_max_single_request(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(4096);

    (void)state;
    assert_null(myna_arena_alloc(&a, 4097));
    assert_null(myna_arena_alloc(&a, SIZE_MAX));
    assert_null(myna_arena_alloc(&a, SIZE_MAX - 20));
    assert_int_equal(a.used, 0);
    assert_non_null(myna_arena_alloc(&a, 4096)); /* exactly max */
    assert_null(myna_arena_alloc(&a, 1));
    myna_arena_free(&a);
}

static void test_arena_size_max_unlimited_is_null(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);

    (void)state;
    assert_null(myna_arena_alloc(&a, SIZE_MAX)); /* rounding wraps */
    assert_null(myna_arena_alloc(&a, SIZE_MAX - 14));
    assert_int_equal(a.used, 0);
    myna_arena_free(&a);
}

/* ---- hooks ---- */

struct calls {
    int order[16];
    int n;
};

struct hook_arg {
    struct calls *calls;
    int id;
};

static void record_hook(void *p)
{
    struct hook_arg *h = p;

    assert_true(h->calls->n < 16);
    h->calls->order[h->calls->n++] = h->id;
}

static void test_arena_on_free_reverse_once(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    struct calls calls = { { 0 }, 0 };
    struct hook_arg args[5];

    (void)state;
    for (int i = 0; i < 5; i++) {
        args[i].calls = &calls;
        args[i].id = i + 1;
        assert_int_equal(myna_arena_on_free(&a, record_hook, &args[i]), MYNA_OK);
        /* allocations between hooks, some of them big */
        assert_non_null(myna_arena_alloc(&a, i % 2 ? 6000 : 24));
    }
    assert_int_equal(calls.n, 0); /* nothing runs before free */
    myna_arena_free(&a);
    assert_int_equal(calls.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(calls.order[i], 5 - i);
    assert_empty(&a);
    myna_arena_free(&a); /* the hooks are gone: not run a second time */
    assert_int_equal(calls.n, 5);
}

static void test_arena_on_free_hooks_in_arena_memory(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    struct calls calls = { { 0 }, 0 };
    struct hook_arg *arg;

    (void)state;
    /* the hook's argument lives in the arena itself: hooks run before blocks go */
    arg = myna_arena_alloc(&a, sizeof(*arg));
    assert_non_null(arg);
    arg->calls = &calls;
    arg->id = 7;
    assert_int_equal(myna_arena_on_free(&a, record_hook, arg), MYNA_OK);
    myna_arena_free(&a);
    assert_int_equal(calls.n, 1);
    assert_int_equal(calls.order[0], 7);
}

static void test_arena_on_free_fails_at_max(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(64);
    struct calls calls = { { 0 }, 0 };
    struct hook_arg arg = { &calls, 1 };

    (void)state;
    assert_non_null(myna_arena_alloc(&a, 64));
    assert_int_equal(myna_arena_on_free(&a, record_hook, &arg), MYNA_ENOMEM);
    assert_null(a.hooks);
    myna_arena_free(&a);
    assert_int_equal(calls.n, 0); /* a hook that failed to register never runs */
}

static void test_arena_own_frees(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    char *p = malloc(100), *q = malloc(10);

    (void)state;
    assert_non_null(p);
    assert_non_null(q);
    memset(p, 'p', 100);
    assert_ptr_equal(myna_arena_own(&a, p), p);
    assert_ptr_equal(myna_arena_own(&a, q), q);
    assert_null(myna_arena_own(&a, NULL));
    assert_non_null(a.hooks);
    myna_arena_free(&a); /* LeakSanitizer reports p or q if they were not freed */
    assert_empty(&a);
}

static void test_arena_own_at_max_frees_and_returns_null(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(16);
    char *p = malloc(32);

    (void)state;
    assert_non_null(p);
    assert_non_null(myna_arena_alloc(&a, 16)); /* budget used up */
    assert_null(myna_arena_own(&a, p));        /* p freed: LeakSanitizer checks */
    assert_null(a.hooks);
    myna_arena_free(&a);
}

static void test_arena_free_then_reuse(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(1 << 20);
    struct calls calls = { { 0 }, 0 };
    struct hook_arg arg1 = { &calls, 1 }, arg2 = { &calls, 2 };

    (void)state;
    for (int round = 0; round < 3; round++) {
        char *s = myna_arena_strdup(&a, "round");
        void *big = myna_arena_zalloc(&a, 50000);
        assert_string_equal(s, "round");
        assert_aligned(big);
        assert_int_equal(myna_arena_on_free(&a, record_hook, round == 1 ? &arg2 : &arg1),
                         MYNA_OK);
        myna_arena_free(&a);
        assert_empty(&a);
        assert_int_equal(a.max, 1 << 20);
        assert_int_equal(calls.n, round + 1);
    }
    assert_int_equal(calls.order[0], 1);
    assert_int_equal(calls.order[1], 2);
    assert_int_equal(calls.order[2], 1);
}

static void test_arena_many_small(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    int *v[2000];

    (void)state;
    for (int i = 0; i < 2000; i++) {
        v[i] = myna_arena_alloc(&a, sizeof(int));
        assert_aligned(v[i]);
        *v[i] = i;
    }
    for (int i = 0; i < 2000; i++)
        assert_int_equal(*v[i], i);
    assert_int_equal(a.used, 2000 * 16);
    myna_arena_free(&a);
}

static void child_huge_unlimited(void)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    void *p = myna_arena_alloc(&a, SIZE_MAX - 20);

    myna_arena_free(&a);
    if (p != NULL)
        _exit(1);
}

/* An unlimited arena (max 0, as ingress.c uses) asked for nearly SIZE_MAX
 * bytes must return NULL: sizeof(block) + size must not wrap, which would
 * give malloc 16 bytes and write the block header past them. */
static void test_arena_huge_unlimited_is_null(void **state)
{
    (void)state;
    assert_child_ok(child_huge_unlimited);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_init_and_free_empty),
        cmocka_unit_test(test_arena_alignment_16),
        cmocka_unit_test(test_arena_used_counts_rounded_sizes),
        cmocka_unit_test(test_arena_zero_size_distinct),
        cmocka_unit_test(test_arena_zalloc_zeroes),
        cmocka_unit_test(test_arena_strndup_unterminated),
        cmocka_unit_test(test_arena_strdup),
        cmocka_unit_test(test_arena_strndup_size_max_is_null),
        cmocka_unit_test(test_arena_big_and_small_interleaved),
        cmocka_unit_test(test_arena_max_limit),
        cmocka_unit_test(test_arena_max_single_request),
        cmocka_unit_test(test_arena_size_max_unlimited_is_null),
        cmocka_unit_test(test_arena_on_free_reverse_once),
        cmocka_unit_test(test_arena_on_free_hooks_in_arena_memory),
        cmocka_unit_test(test_arena_on_free_fails_at_max),
        cmocka_unit_test(test_arena_own_frees),
        cmocka_unit_test(test_arena_own_at_max_frees_and_returns_null),
        cmocka_unit_test(test_arena_free_then_reuse),
        cmocka_unit_test(test_arena_many_small),
        cmocka_unit_test(test_arena_huge_unlimited_is_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
