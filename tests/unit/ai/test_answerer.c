/* test_answerer.c - the built-in FAQ answerer: normalization, word forms,
 * ranking, the threshold, hostile texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ai/answerer.h"

static const char *const q_price[] = { "Сколько стоит стрижка?", "цена стрижки",
                                       "How much is a haircut?" };
static const char *const q_hours[] = { "Когда вы работаете?", "часы работы",
                                       "What are your opening hours?" };
static const char *const q_where[] = { "Где вы находитесь?", "адрес",
                                       "Where are you located?" };
static const char *const q_book[] = { "Хочу записаться", "запись на стрижку", "I want to book" };
static const char *const q_beard[] = { "Оформление бороды", "сколько стоит борода",
                                       "beard trim price" };
static const char *const q_kids[] = { "Детская стрижка", "стрижете детей?", "kids haircut" };

static const struct myna_faq_entry faq[] = {
    { q_price, 3, "PRICE" }, { q_hours, 3, "HOURS" }, { q_where, 3, "WHERE" },
    { q_book, 3, "BOOK" },   { q_beard, 3, "BEARD" }, { q_kids, 3, "KIDS" },
};

static struct myna_answerer *make(void)
{
    struct myna_answerer *a = myna_answerer_new(faq, sizeof(faq) / sizeof(faq[0]), 0.35, NULL);

    assert_non_null(a);
    return a;
}

static void expect(const struct myna_answerer *a, const char *text, const char *want)
{
    double score = -1;
    const char *got = myna_answerer_answer(a, text, &score);

    if (want == NULL ? got != NULL : got == NULL || strcmp(got, want) != 0)
        fail_msg("'%s': got %s (score %.2f), want %s", text, got ? got : "NULL", score,
                 want ? want : "NULL");
    assert_true(score >= 0 && score <= 1.0000001);
}

static void test_tokens(void **state)
{
    char **t;
    size_t n;

    (void)state;
    assert_int_equal(myna_answerer_tokens("Стрижку, СТРИЖКА и стрижки!", &t, &n), 0);
    assert_int_equal(n, 1);  /* one stem; "и" is a stopword */
    assert_string_equal(t[0], "стриж");
    myna_answerer_tokens_free(t, n);
    assert_int_equal(myna_answerer_tokens("Ёлка ёлки", &t, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(t[0], "елк");
    myna_answerer_tokens_free(t, n);
    assert_int_equal(myna_answerer_tokens("Booking haircuts, the BEST prices", &t, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(t[0], "best");
    assert_string_equal(t[1], "book");
    assert_string_equal(t[2], "haircut");
    assert_string_equal(t[3], "price");
    myna_answerer_tokens_free(t, n);
    assert_int_equal(myna_answerer_tokens("💈🙏 !!! \xff\xfe", &t, &n), 0);
    assert_int_equal(n, 0);
    myna_answerer_tokens_free(t, n);
}

static void test_word_forms_find_the_entry(void **state)
{
    struct myna_answerer *a = make();

    (void)state;
    expect(a, "Сколько стоит стрижка машинкой?", "PRICE");
    expect(a, "а вы работаете в воскресенье?", "HOURS");
    expect(a, "где находитесь", "WHERE");
    expect(a, "Какой у вас адрес?", "WHERE");
    expect(a, "where are you located", "WHERE");
    expect(a, "how much for a beard trim", "BEARD");
    expect(a, "Хочу записаться на завтра", "BOOK");
    expect(a, "а детей стрижете?", "KIDS");
    expect(a, "СКОЛЬКО СТОИТ СТРИЖКА", "PRICE");
    myna_answerer_free(a);
}

static void test_unrelated_text_has_no_answer(void **state)
{
    struct myna_answerer *a = make();
    char *big;

    (void)state;
    expect(a, "какая погода завтра", NULL);
    expect(a, "asdfgh", NULL);
    expect(a, "", NULL);
    expect(a, "🙏🙏🙏", NULL);
    expect(a, NULL, NULL);
    /* a hostile text is cut at the token cap and answered or not, quickly */
    big = malloc(2 * 1024 * 1024);
    assert_non_null(big);
    for (size_t i = 0; i + 7 < 2 * 1024 * 1024; i += 7)
        memcpy(big + i, "слово ", 7 - 0);
    big[2 * 1024 * 1024 - 1] = '\0';
    expect(a, big, NULL);
    free(big);
    myna_answerer_free(a);
}

static void test_empty_faq(void **state)
{
    struct myna_answerer *a = myna_answerer_new(NULL, 0, 0.35, NULL);

    (void)state;
    assert_non_null(a);
    expect(a, "Сколько стоит стрижка?", NULL);
    myna_answerer_free(a);
    myna_answerer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_word_forms_find_the_entry),
        cmocka_unit_test(test_unrelated_text_has_no_answer),
        cmocka_unit_test(test_empty_faq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
