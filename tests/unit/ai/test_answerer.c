/* test_answerer.c - the built-in FAQ answerer on a barbershop FAQ in Russian
 * and English: normalization and stemming of word forms, realistic customer
 * questions with other word forms and extra words, the function words of
 * Spanish, Portuguese, Ukrainian and Kazakh, off-topic text that must
 * not be answered, the margin around MYNA_ANSWERER_THRESHOLD, edge inputs
 * (empty, emoji, very long, invalid UTF-8), argument checks, ties, and that
 * the answerer owns copies of everything (ASan sees a use after free). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai/answerer.h"
#include "core/err.h"

#define QS(...) (const char *const[]){ __VA_ARGS__ }, \
                sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)

enum { RU_PRICES, RU_HOURS, RU_ADDRESS, RU_BOOKING, RU_KIDS, RU_BEARD,
       EN_PRICES, EN_HOURS, EN_ADDRESS, EN_BOOKING, EN_KIDS, EN_BEARD, N_FAQ };

static const struct myna_faq_entry barbershop[N_FAQ] = {
    [RU_PRICES] = { QS("Сколько стоит стрижка?", "Какие у вас цены?", "Прайс на услуги"),
                    "Мужская стрижка — 1500 ₽, машинкой — 900 ₽." },
    [RU_HOURS] = { QS("Какой у вас график работы?",
                      "Во сколько вы открываетесь и до скольки работаете?",
                      "Вы работаете в выходные?"),
                   "Каждый день с 10:00 до 21:00." },
    [RU_ADDRESS] = { QS("Где вы находитесь?", "Какой у вас адрес?", "Как до вас добраться?"),
                     "Москва, ул. Тверская, 7, вход со двора." },
    [RU_BOOKING] = { QS("Как записаться на стрижку?", "Хочу записаться",
                        "Можно записаться онлайн?"),
                     "Записаться можно на https://barber.example/book или здесь." },
    [RU_KIDS] = { QS("Вы стрижете детей?", "Сколько стоит детская стрижка?",
                     "Стрижка для ребенка"),
                  "Стрижём детей от 3 лет, 1000 ₽." },
    [RU_BEARD] = { QS("Делаете оформление бороды?", "Сколько стоит стрижка бороды?",
                      "Бреете опасной бритвой?"),
                   "Оформление бороды — 800 ₽, бритьё опасной бритвой — 1200 ₽." },
    [EN_PRICES] = { QS("How much is a haircut?", "What are your prices?", "Price list"),
                    "A men's haircut is $25, a clipper cut $15." },
    [EN_HOURS] = { QS("What are your opening hours?", "When are you open?",
                      "What time do you close?"),
                   "Every day from 10 am to 9 pm." },
    [EN_ADDRESS] = { QS("What is your address?", "Where is the barbershop located?",
                        "How do I find you?"),
                     "7 Tverskaya St, Moscow; the entrance is in the yard." },
    [EN_BOOKING] = { QS("How do I book an appointment?", "Can I book a haircut online?",
                        "I want to make a booking"),
                     "Book at https://barber.example/book or right here." },
    [EN_KIDS] = { QS("Do you cut kids' hair?", "How much is a children's haircut?",
                     "Kids haircut price"),
                  "We cut kids from 3 years old, $18." },
    [EN_BEARD] = { QS("Do you trim beards?", "How much is a beard shave?", "Beard grooming"),
                   "Beard trim $15, hot towel shave $25." },
};

/* Questions as customers write them: other word forms, extra words, case,
 * punctuation and ё. Each must pick its entry, above the threshold. */
static const struct {
    const char *text;
    int entry;
} asked[] = {
    { "Сколько стоит стрижка машинкой?", RU_PRICES },
    { "а вы работаете в воскресенье?", RU_HOURS },
    { "ВЫ РАБОТАЕТЕ В ВОСКРЕСЕНЬЕ", RU_HOURS },
    { "до скольки вы открыты?", RU_HOURS },
    { "часы работы", RU_HOURS },
    { "Подскажите, где вы находитесь?", RU_ADDRESS },
    { "Ёлки, какой адрес у барбершопа?", RU_ADDRESS },
    { "Как записаться к мастеру на завтра?", RU_BOOKING },
    { "запишите меня пожалуйста на субботу", RU_BOOKING },
    { "Можно записаться онлайн через сайт?", RU_BOOKING },
    { "Стрижёте детей?", RU_KIDS },
    { "сколько стоит стрижка ребенку 5 лет", RU_KIDS },
    { "Сколько стоит оформление бороды?", RU_BEARD },
    { "бреете бороду?", RU_BEARD },
    { "цены", RU_PRICES },
    { "where are you located", EN_ADDRESS },
    { "how much for a beard trim", EN_BEARD },
    { "What time do you open on Saturdays?", EN_HOURS },
    { "what are your hours", EN_HOURS },
    { "I'd like to book a haircut for tomorrow", EN_BOOKING },
    { "how much does a haircut cost", EN_PRICES },
    { "Do you do haircuts for kids?", EN_KIDS },
    { "Trimming my beard, how much?", EN_BEARD },
};

/* Off-topic text: nothing may answer, even when a question word matches. */
static const char *const off_topic[] = {
    "какая погода завтра",
    "asdfgh",
    "сколько стоит машина",
    "где купить машину",
    "какой курс доллара",
    "Привет",
    "спасибо",
    "what is the capital of France",
    "I want to buy a car",
    "where can I buy a car",
    "how much is a car",
    "do you sell shampoo",
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static struct myna_answerer *new_barbershop(double threshold)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a = myna_answerer_new(barbershop, N_FAQ, threshold, &err);

    if (a == NULL)
        fail_msg("answerer: %s", err.msg);
    return a;
}

/* Tokens of text, compared with the space-separated want. */
static void check_tokens(const char *text, const char *want)
{
    char **tok = NULL, joined[1024];
    size_t n = 0, i, len = 0;

    assert_int_equal(myna_answerer_tokens(text, &tok, &n), MYNA_OK);
    joined[0] = '\0';
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(joined + len, sizeof(joined) - len, "%s%s", i ? " " : "", tok[i]);
    if (strcmp(joined, want) != 0)
        fail_msg("tokens of '%s': got '%s', want '%s'", text, joined, want);
    assert_true((n == 0) == (tok == NULL));
    free(tok);
}

/* ---- tokens ------------------------------------------------------------- */

static void test_tokens_lowercase_and_split(void **state)
{
    (void)state;
    check_tokens("Привет, МИР!", "прив мир");
    check_tokens("ЁЖИК ёжик ежик", "ежик ежик ежик");
    check_tokens("Hello,WORLD...again", "hello world again");
    check_tokens("стрижка,борода;усы!!!", "стриг бород усы");
    check_tokens("10:00-21:00", "10 00 21 00");
    check_tokens("Café NAÏVE", "cafe naiv");
    /* every Cyrillic capital: Ukrainian, Kazakh, Tatar ... ones too */
    check_tokens("ҚАНША ТҰРАДЫ Ғимарат ҐАНОК ӘЛЕМ ӨРІК ҮЙ ҺӘМ ӁӀ ԚАР",
                 "қанша тұрады ғимарат ґанок әлем өрік үй һәм ӂӏ ԛар");
}

static void test_tokens_stopwords_and_letters(void **state)
{
    (void)state;
    check_tokens("и в на с по а не ли же то у к о из за", "");
    check_tokens("the a an is are do does to of in on for at you your i what how", "");
    check_tokens("а вы работаете?", "работ");
    check_tokens("x y z 5 лет", "5 лет");
    check_tokens("don't I'm what's", "");
    /* Spanish, Portuguese, Ukrainian, Kazakh, accents and case aside */
    check_tokens("¿CUÁL es el precio DEL corte?", "precio cort");
    check_tokens("Qual é o preço do corte? São vocês?", "preco cort");
    check_tokens("Що це коштує? Як у вас з парковкою?", "коштує парко");
    check_tokens("Бұл не? Сіздің мекенжайыңыз қандай?", "мекенжайыңыз");
    /* content words of one language that are function words of another */
    check_tokens("no pelo", "no pelo");
}

/* bsearch finds only what is sorted by bytes, and an entry can only meet a
 * word as the tokenizer gives it (lowercase, no accents): each one alone
 * leaves no token. */
static void test_stopwords_sorted_and_reachable(void **state)
{
    size_t n, i, nt;
    const char *const *sw = myna_answerer__stopwords(&n);
    char **tok;

    (void)state;
    assert_true(n > 0);
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(sw[i - 1], sw[i]) >= 0)
            fail_msg("stopwords out of order: '%s' before '%s'", sw[i - 1], sw[i]);
        assert_int_equal(myna_answerer_tokens(sw[i], &tok, &nt), MYNA_OK);
        if (nt != 0)
            fail_msg("stopword '%s' gives the token '%s'", sw[i], tok[0]);
        free(tok);
    }
}

/* Customers type Spanish, Portuguese, Kazakh Latin without the accents the
 * FAQ has, or with them sent apart (e + U+0301): the same tokens. */
static void test_tokens_without_accents(void **state)
{
    static const char *const q_price[] = { "¿Cuánto cuesta el corte?", "Qual é o preço?" };
    static const char *const q_hours[] = { "¿A qué hora abren?", "Que horas vocês abrem?" };
    const struct myna_faq_entry faq[] = {
        { q_price, 2, "15 €" },
        { q_hours, 2, "10:00-20:00" },
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a;

    (void)state;
    check_tokens("¿CUÁNTO cuesta? Preço, AÇÚCAR, año", "cuanto cuesta preco acucar ano");
    check_tokens("cafe\xcc\x81 CAFE\xcc\x81 café CAFÉ", "cafe cafe cafe cafe");
    check_tokens("Ağaş ŞEKER İstanbul ÜYGE Łódź ØRE đak Œuvre", "aga seker istanbul uyge lodz ore dak œuvre");
    a = myna_answerer_new(faq, 2, MYNA_ANSWERER_THRESHOLD, &err);
    assert_non_null(a);
    assert_string_equal(myna_answerer_answer(a, "cuanto cuesta el corte", NULL), "15 €");
    assert_string_equal(myna_answerer_answer(a, "qual e o preco", NULL), "15 €");
    assert_string_equal(myna_answerer_answer(a, "que horas voces abrem", NULL), "10:00-20:00");
    myna_answerer_free(a);
}

static void test_tokens_russian_stems(void **state)
{
    (void)state;
    check_tokens("стрижка стрижку стрижки стрижкой стрижек стрижёте стричь стригу",
                 "стриг стриг стриг стриг стриг стриг стриг стриг");
    check_tokens("записаться запись записать записи запишите записываться",
                 "запис запис запис запис запис запис");
    check_tokens("работаете работает работаем работа работы", "работ работ работ работ работ");
    check_tokens("цена цены цену ценой", "цен цен цен цен");
    check_tokens("борода бороды бороду бородой", "бород бород бород бород");
    check_tokens("дети детей детям детьми", "дет дет дет дет");
    check_tokens("воскресенье воскресеньям", "воскр воскр");
    check_tokens("находитесь находится", "наход наход");
    check_tokens("адрес адреса адресу", "адрес адрес адрес");
    /* short words keep 3 letters at least */
    check_tokens("где усы час часы", "где усы час час");
}

static void test_tokens_english_stems(void **state)
{
    (void)state;
    check_tokens("price prices priced", "pric pric pric");
    check_tokens("book books booking booked bookings", "book book book book book");
    check_tokens("trim trims trimming trimmed", "trim trim trim trim");
    check_tokens("hours hour open opens opening", "hour hour open open open");
    check_tokens("cities kids boxes glasses", "city kid box glass");
    check_tokens("located location where", "locat location wher");
    /* a word of 4 letters with a final e meets its other forms */
    check_tokens("time times timed timing", "time time time time");
    check_tokens("rate rates rated", "rate rate rate");
    check_tokens("like likes liked liking", "like like like like");
    check_tokens("care cares cared car cars", "care care care car car");
    check_tokens("fixed sewing", "fix sew");
}

static void test_tokens_odd_bytes(void **state)
{
    (void)state;
    check_tokens("", "");
    check_tokens("🙂🙂🔥 💈✂️", "");
    check_tokens("стри\xcc\x81жка", "стриг");        /* a stress mark */
    check_tokens("abc\xff" "def \xd0 ghi", "abc def ghi");
    check_tokens("\xe2\x82", "");
    check_tokens("💈стрижка💈", "стриг");
}

static void test_tokens_bounded(void **state)
{
    size_t n, i, len = 5000 * 8;
    char *text = malloc(len + 1), **tok;

    (void)state;
    assert_non_null(text);
    for (i = 0; i < 5000; i++)
        memcpy(text + i * 8, "beards  ", 8);
    text[len] = '\0';
    assert_int_equal(myna_answerer_tokens(text, &tok, &n), MYNA_OK);
    assert_int_equal(n, MYNA_ANSWERER_MAX_TOKENS);
    free(tok);
    /* one endless word keeps its first 32 letters */
    memset(text, 'q', len);
    assert_int_equal(myna_answerer_tokens(text, &tok, &n), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(tok[0]), 32);
    free(tok);
    free(text);
}

static void test_tokens_invalid_args(void **state)
{
    char **tok;
    size_t n;

    (void)state;
    assert_int_equal(myna_answerer_tokens(NULL, &tok, &n), MYNA_EINVAL);
    assert_int_equal(myna_answerer_tokens("x", NULL, &n), MYNA_EINVAL);
    assert_int_equal(myna_answerer_tokens("x", &tok, NULL), MYNA_EINVAL);
}

/* ---- answers ------------------------------------------------------------ */

static void test_customer_questions(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEMS(asked); i++) {
        double score = -1.0;
        const char *ans = myna_answerer_answer(a, asked[i].text, &score);
        const char *want = barbershop[asked[i].entry].answer;

        if (ans == NULL || strcmp(ans, want) != 0)
            fail_msg("'%s' (score %.3f): got '%s', want '%s'", asked[i].text, score,
                     ans != NULL ? ans : "(none)", want);
        assert_true(score >= MYNA_ANSWERER_THRESHOLD && score <= 1.0);
    }
    myna_answerer_free(a);
}

static void test_off_topic_gets_nothing(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEMS(off_topic); i++) {
        double score = -1.0;
        const char *ans = myna_answerer_answer(a, off_topic[i], &score);

        if (ans != NULL)
            fail_msg("'%s' (score %.3f) answered '%s'", off_topic[i], score, ans);
        assert_true(score >= 0.0 && score < MYNA_ANSWERER_THRESHOLD);
    }
    myna_answerer_free(a);
}

/* The threshold sits in a gap, not on an edge: every customer question
 * clears it by 0.05 and every off-topic text stays 0.05 below. */
static void test_threshold_margin(void **state)
{
    struct myna_answerer *a = new_barbershop(0.0);
    double lowest = 1.0, highest = 0.0, s;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEMS(asked); i++) {
        myna_answerer_answer(a, asked[i].text, &s);
        lowest = s < lowest ? s : lowest;
    }
    for (i = 0; i < N_ELEMS(off_topic); i++) {
        myna_answerer_answer(a, off_topic[i], &s);
        highest = s > highest ? s : highest;
    }
    print_message("customer questions score >= %.3f, off-topic <= %.3f, threshold %.2f\n",
                  lowest, highest, MYNA_ANSWERER_THRESHOLD);
    assert_true(lowest >= MYNA_ANSWERER_THRESHOLD + 0.05);
    assert_true(highest <= MYNA_ANSWERER_THRESHOLD - 0.05);
    myna_answerer_free(a);
}

static void test_exact_question_scores_one(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    double s;
    const char *ans = myna_answerer_answer(a, "Где вы находитесь?", &s);

    (void)state;
    assert_non_null(ans);
    assert_string_equal(ans, barbershop[RU_ADDRESS].answer);
    assert_true(fabs(s - 1.0) < 1e-9);
    /* the answer is borrowed: the same pointer every time */
    assert_ptr_equal(myna_answerer_answer(a, "где вы находитесь", NULL), ans);
    myna_answerer_free(a);
}

static void test_empty_and_emoji_text(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    double s = -1.0;

    (void)state;
    assert_null(myna_answerer_answer(a, "", &s));
    assert_true(s == 0.0);
    s = -1.0;
    assert_null(myna_answerer_answer(a, "   \n\t ", &s));
    assert_true(s == 0.0);
    s = -1.0;
    assert_null(myna_answerer_answer(a, "🙂🙂🔥👍", &s));
    assert_true(s == 0.0);
    s = -1.0;
    assert_null(myna_answerer_answer(a, "и в на the a", &s));
    assert_true(s == 0.0);
    s = -1.0;
    assert_null(myna_answerer_answer(a, NULL, &s));
    assert_true(s == 0.0);
    assert_null(myna_answerer_answer(NULL, "цены", &s));
    assert_true(s == 0.0);
    myna_answerer_free(a);
}

static void test_empty_faq(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a = myna_answerer_new(NULL, 0, 0.0, &err);
    double s = -1.0;

    (void)state;
    assert_non_null(a);
    assert_null(myna_answerer_answer(a, "Сколько стоит стрижка?", &s));
    assert_true(s == 0.0);
    assert_null(myna_answerer_answer(a, "", NULL));
    myna_answerer_free(a);
    myna_answerer_free(NULL);
}

/* Entries without questions, or whose questions are all stopwords, never
 * answer; the others still do. */
static void test_entries_without_words(void **state)
{
    static const char *const stop_only[] = { "а вы?", "what is it?" };
    const struct myna_faq_entry faq[] = {
        { NULL, 0, "never: no questions" },
        { stop_only, 2, "never: only stopwords" },
        { QS("Есть парковка?"), "Парковка во дворе." },
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a = myna_answerer_new(faq, 3, 0.0, &err);
    double s;

    (void)state;
    assert_non_null(a);
    assert_null(myna_answerer_answer(a, "а вы?", &s));
    assert_true(s == 0.0);
    assert_string_equal(myna_answerer_answer(a, "где парковка", &s), "Парковка во дворе.");
    myna_answerer_free(a);
}

/* The questions no message can reach are told apart, so that the operator
 * hears of them: each question of each entry, in the order given. */
static void test_can_match(void **state)
{
    static const char *const mixed[] = { "What is it?", "Kaspi QR?", "Что это?", "🤔 ?!" };
    static const char *const stop_only[] = { "а вы?", "Is it...?" };
    const struct myna_faq_entry faq[] = {
        { NULL, 0, "no questions" },
        { mixed, 4, "Оплата через Kaspi QR." },
        { stop_only, 2, "never" },
        { QS("Есть парковка?"), "Парковка во дворе." },
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a = myna_answerer_new(faq, 4, MYNA_ANSWERER_THRESHOLD, &err);

    (void)state;
    assert_non_null(a);
    assert_false(myna_answerer_can_match(a, 0, 0));
    assert_false(myna_answerer_can_match(a, 1, 0));
    assert_true(myna_answerer_can_match(a, 1, 1));
    assert_false(myna_answerer_can_match(a, 1, 2));
    assert_false(myna_answerer_can_match(a, 1, 3));
    assert_false(myna_answerer_can_match(a, 1, 4));
    assert_false(myna_answerer_can_match(a, 2, 0));
    assert_false(myna_answerer_can_match(a, 2, 1));
    assert_true(myna_answerer_can_match(a, 3, 0));
    assert_false(myna_answerer_can_match(a, 3, 1));
    assert_false(myna_answerer_can_match(a, 4, 0));
    assert_false(myna_answerer_can_match(NULL, 0, 0));
    /* what can match does */
    assert_string_equal(myna_answerer_answer(a, "kaspi qr есть?", NULL), "Оплата через Kaspi QR.");
    myna_answerer_free(a);
}

static void test_ties_go_to_earlier_entry(void **state)
{
    const struct myna_faq_entry faq[] = {
        { QS("Другой вопрос про маникюр"), "manicure" },
        { QS("Сколько стоит стрижка?"), "first" },
        { QS("Сколько стоит стрижка?"), "second" },
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a = myna_answerer_new(faq, 3, MYNA_ANSWERER_THRESHOLD, &err);

    (void)state;
    assert_non_null(a);
    assert_string_equal(myna_answerer_answer(a, "сколько стоит стрижка", NULL), "first");
    myna_answerer_free(a);
}

/* Every question word weighs half, whatever its stem: "куда" (-> куд) as
 * much as "где", so "where to eat" does not reach the address on its
 * question word alone. */
static void test_question_words_weigh_half(void **state)
{
    const struct myna_faq_entry faq[] = {
        { QS("Где вы находитесь?", "Куда приезжать?"), "address" },
        { QS("Сколько стоит стрижка?"), "prices" },
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a = myna_answerer_new(faq, 2, MYNA_ANSWERER_THRESHOLD, &err);
    double where, whither;

    (void)state;
    assert_non_null(a);
    assert_null(myna_answerer_answer(a, "где поесть", &where));
    if (myna_answerer_answer(a, "куда поесть", &whither) != NULL || fabs(whither - where) > 1e-9)
        fail_msg("'куда поесть' scores %.3f, 'где поесть' %.3f", whither, where);
    assert_string_equal(myna_answerer_answer(a, "куда приезжать", NULL), "address");
    myna_answerer_free(a);
}

/* Spanish, Portuguese, Ukrainian and Kazakh questions share their function
 * words (cuál es el, qual é o, що, як, сіздің ... қандай): the content
 * words pick the entry, and text that shares only function words with an
 * entry gets none. */
enum { ES_HOURS, ES_PRICES, ES_WHERE, PT_HOURS, PT_PRICES, PT_WHERE, UK_PRICES, UK_WHERE,
       UK_BOOKING, UK_HOURS, UK_INCLUDED, KK_PRICES, KK_BOOKING, KK_WHERE, KK_SUNDAY, N_MULTI };

static const struct myna_faq_entry multilingual[N_MULTI] = {
    [ES_HOURS] = { QS("¿Cuál es el horario?"), "es hours" },
    [ES_PRICES] = { QS("¿Cuál es el precio del corte?"), "es prices" },
    [ES_WHERE] = { QS("¿Dónde están ustedes?"), "es where" },
    [PT_HOURS] = { QS("Qual é o horário de funcionamento?"), "pt hours" },
    [PT_PRICES] = { QS("Qual é o preço do corte de cabelo?"), "pt prices" },
    [PT_WHERE] = { QS("Onde vocês estão?"), "pt where" },
    [UK_PRICES] = { QS("Скільки коштує стрижка?"), "uk prices" },
    [UK_WHERE] = { QS("Як до вас дістатися?"), "uk where" },
    [UK_BOOKING] = { QS("Як записатися на стрижку?"), "uk booking" },
    [UK_HOURS] = { QS("Коли ви працюєте?"), "uk hours" },
    [UK_INCLUDED] = { QS("Що входить у стрижку?"), "uk included" },
    [KK_PRICES] = { QS("Шаш алу қанша тұрады?"), "kk prices" },
    [KK_BOOKING] = { QS("Қалай жазылуға болады?"), "kk booking" },
    [KK_WHERE] = { QS("Сіздің мекенжайыңыз қандай?"), "kk where" },
    [KK_SUNDAY] = { QS("Сіз жексенбі күні жұмыс істейсіз бе?"), "kk sunday" },
};

static void test_other_languages_function_words(void **state)
{
    static const struct {
        const char *text;
        int entry;
    } reach[] = {
        { "¿Cuáles son los precios de los cortes de cabello?", ES_PRICES },
        { "¿Cuál es el horario del sábado?", ES_HOURS },
        { "¿Dónde están?", ES_WHERE },
        { "Qual é o valor do corte de cabelo?", PT_PRICES },
        { "Qual o horário de funcionamento no sábado?", PT_HOURS },
        { "Onde vocês estão localizados?", PT_WHERE },
        { "Що це коштує?", UK_PRICES },
        { "Як дістатися до вас від метро?", UK_WHERE },
        { "Ви працюєте в неділю?", UK_HOURS },
        { "Мекенжайыңыз қандай?", KK_WHERE },
        { "Сіз жексенбі күні ашықсыз ба?", KK_SUNDAY },
        { "Шаш алу бағасы қанша?", KK_PRICES },
    };
    static const char *const none[] = {
        "¿Cuál es la contraseña del wifi?",
        "¿Es usted el dueño?",
        "Qual é a senha do wifi de vocês?",
        "Como é o nome de vocês?",
        "Як у вас справи?",
        "Що у вас з парковкою?",
        "Сіздің атыңыз қандай?",
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a = myna_answerer_new(multilingual, N_MULTI, MYNA_ANSWERER_THRESHOLD,
                                                &err);
    size_t i;

    (void)state;
    if (a == NULL)
        fail_msg("answerer: %s", err.msg);
    for (i = 0; i < N_MULTI; i++)
        assert_true(myna_answerer_can_match(a, i, 0));
    for (i = 0; i < N_ELEMS(reach); i++) {
        double score = -1.0;
        const char *ans = myna_answerer_answer(a, reach[i].text, &score);
        const char *want = multilingual[reach[i].entry].answer;

        if (ans == NULL || strcmp(ans, want) != 0)
            fail_msg("'%s' (score %.3f): got '%s', want '%s'", reach[i].text, score,
                     ans != NULL ? ans : "(none)", want);
    }
    for (i = 0; i < N_ELEMS(none); i++) {
        double score = -1.0;
        const char *ans = myna_answerer_answer(a, none[i], &score);

        if (ans != NULL)
            fail_msg("'%s' (score %.3f) answered '%s'", none[i], score, ans);
    }
    myna_answerer_free(a);
}

/* The score comes back whether or not the entry answers. */
static void test_score_set_below_threshold(void **state)
{
    struct myna_answerer *a = new_barbershop(0.99);
    double s = -1.0;

    (void)state;
    assert_null(myna_answerer_answer(a, "Сколько стоит стрижка машинкой?", &s));
    assert_true(s > 0.4 && s < 0.99);
    myna_answerer_free(a);
    /* threshold 0 still needs a shared word */
    a = new_barbershop(0.0);
    assert_null(myna_answerer_answer(a, "asdfgh", &s));
    assert_true(s == 0.0);
    assert_non_null(myna_answerer_answer(a, "борода", &s));
    myna_answerer_free(a);
}

/* ---- several questions in one turn -------------------------------------- */

/* The answers of text (at most max) must be those of the entries
 * want[0..n_want), in that order; the score fits them. */
static void check_all(const struct myna_answerer *a, const char *text, size_t max,
                      const int *want, size_t n_want)
{
    const char *got[8];
    double score = -1.0;
    size_t n, i;

    assert_true(max <= 8);
    n = myna_answerer_answer_all(a, text, got, max, &score);
    if (n != n_want)
        fail_msg("'%s': %zu answers (first '%s'), want %zu", text, n, n ? got[0] : "(none)",
                 n_want);
    for (i = 0; i < n; i++)
        if (strcmp(got[i], barbershop[want[i]].answer) != 0)
            fail_msg("'%s': answer %zu is '%s', want '%s'", text, i, got[i],
                     barbershop[want[i]].answer);
    assert_true(score >= 0.0 && score <= 1.0);
    if (n > 0)
        assert_true(score >= MYNA_ANSWERER_THRESHOLD);
}

#define CHECK_ALL(a, text, ...) \
    check_all((a), (text), 8, (const int[]){ __VA_ARGS__ }, \
              sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int))

static void test_all_two_questions_in_order(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);

    (void)state;
    /* the whole text picks one entry only: the other question goes unanswered */
    assert_string_equal(myna_answerer_answer(a, "Здравствуйте! Сколько стоит стрижка? И где вы "
                                                "находитесь?", NULL),
                        barbershop[RU_ADDRESS].answer);
    CHECK_ALL(a, "Здравствуйте! Сколько стоит стрижка? И где вы находитесь?", RU_PRICES,
              RU_ADDRESS);
    CHECK_ALL(a, "Где вы находитесь? Сколько стоит стрижка?", RU_ADDRESS, RU_PRICES);
    /* two messages of one burst, joined with a space */
    CHECK_ALL(a, "What are your opening hours? How much is a haircut?", EN_HOURS, EN_PRICES);
    CHECK_ALL(a, "How much is a haircut? Do you trim beards?", EN_PRICES, EN_BEARD);
    /* a line break ends a sentence without a mark */
    CHECK_ALL(a, "Где вы находитесь\nсколько стоит стрижка", RU_ADDRESS, RU_PRICES);
    CHECK_ALL(a, "Где вы находитесь\r\nсколько стоит стрижка", RU_ADDRESS, RU_PRICES);
    /* the same words as one question again, a question that builds on one
     * before it with another subject */
    CHECK_ALL(a, "Сколько стоит стрижка? А детская?", RU_PRICES, RU_KIDS);
    CHECK_ALL(a, "Цены… А где вы находитесь!", RU_PRICES, RU_ADDRESS);
    /* no blank after the mark: one sentence (an address, a number) */
    CHECK_ALL(a, "Где вы находитесь?сколько стоит стрижка", RU_ADDRESS);
    myna_answerer_free(a);
}

static void test_all_same_entry_once(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    const struct myna_faq_entry twins[2] = {
        { QS("Где вы находитесь?"), "Тверская, 7." },
        { QS("How do I find you?"), "Тверская, 7." },
    };
    struct myna_answerer *t = myna_answerer_new(twins, 2, MYNA_ANSWERER_THRESHOLD, NULL);
    const char *got[4];

    (void)state;
    CHECK_ALL(a, "Сколько стоит стрижка? Какие у вас цены?", RU_PRICES);
    CHECK_ALL(a, "цены? где вы находитесь? а цены?", RU_PRICES, RU_ADDRESS);
    /* two entries with the same answer: it goes once */
    assert_non_null(t);
    assert_int_equal(myna_answerer_answer_all(t, "Где вы находитесь? How do I find you?", got, 4,
                                              NULL), 1);
    assert_string_equal(got[0], "Тверская, 7.");
    myna_answerer_free(t);
    myna_answerer_free(a);
}

static void test_all_greeting_pulls_nothing(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    const char *got[4];
    double score = -1.0;

    (void)state;
    CHECK_ALL(a, "Hi! How much is a haircut? Thanks!", EN_PRICES);
    CHECK_ALL(a, "Спасибо! Где вы находитесь?", RU_ADDRESS);
    CHECK_ALL(a, "Здравствуйте!\nЗапишите меня на субботу.\nСпасибо!", RU_BOOKING);
    /* a greeting and a thank-you alone: nothing, the score is the text's */
    assert_int_equal(myna_answerer_answer_all(a, "Здравствуйте! Спасибо!", got, 4, &score), 0);
    assert_true(score >= 0.0 && score < MYNA_ANSWERER_THRESHOLD);
    assert_int_equal(myna_answerer_answer_all(a, "Привет. Какая погода завтра?", got, 4, NULL),
                     0);
    myna_answerer_free(a);
}

/* Short fragments that say one thing together: the sentences are read as
 * one question, not each as its own. */
static void test_all_fragments_read_together(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    struct myna_answerer *strict = new_barbershop(0.7);

    (void)state;
    /* "стрижете" alone picks the prices; with "детей?" it is the kids' */
    assert_string_equal(myna_answerer_answer(a, "стрижете", NULL), barbershop[RU_PRICES].answer);
    CHECK_ALL(a, "детей? стрижете", RU_KIDS);
    /* "Во сколько?" alone picks the prices; with the next one the hours */
    CHECK_ALL(a, "Во сколько? Открываетесь?", RU_HOURS);
    CHECK_ALL(a, "Стрижка? Здравствуйте. Сколько стоит?", RU_PRICES);
    /* neither fragment alone reaches the threshold, together they do */
    assert_null(myna_answerer_answer(strict, "Во сколько?", NULL));
    assert_null(myna_answerer_answer(strict, "Открываетесь?", NULL));
    assert_null(myna_answerer_answer(strict, "where?", NULL));
    assert_null(myna_answerer_answer(strict, "located?", NULL));
    {
        const char *got[4];
        assert_int_equal(myna_answerer_answer_all(strict, "Во сколько? Открываетесь?", got, 4,
                                                  NULL), 1);
        assert_string_equal(got[0], barbershop[RU_HOURS].answer);
        assert_int_equal(myna_answerer_answer_all(strict, "where? located?", got, 4, NULL), 1);
        assert_string_equal(got[0], barbershop[EN_ADDRESS].answer);
    }
    /* one sentence: the same as myna_answerer_answer */
    CHECK_ALL(a, "стрижка сколько стоит", RU_PRICES);
    myna_answerer_free(strict);
    myna_answerer_free(a);
}

static void test_all_bounded(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    const char *four = "Цены? Адрес? Во сколько открываетесь? Бороду бреете?";
    const char *got[8], *sentinel = "untouched";
    char *many;
    size_t i, len = 0;

    (void)state;
    CHECK_ALL(a, four, RU_PRICES, RU_ADDRESS, RU_HOURS, RU_BEARD);
    check_all(a, four, MYNA_ANSWERER_MAX_ANSWERS, (const int[]){ RU_PRICES, RU_ADDRESS,
                                                                 RU_HOURS }, 3);
    check_all(a, four, 1, (const int[]){ RU_PRICES }, 1);
    got[0] = sentinel;
    assert_int_equal(myna_answerer_answer_all(a, four, got, 0, NULL), 0);
    assert_ptr_equal(got[0], sentinel);
    /* sentences past MYNA_ANSWERER_MAX_SENTENCES are not read alone: a
     * question after that many is not answered */
    many = malloc(64 * 1024);
    assert_non_null(many);
    for (i = 0; i < MYNA_ANSWERER_MAX_SENTENCES; i++)
        len += (size_t)snprintf(many + len, 64 * 1024 - len, "Цены? ");
    snprintf(many + len, 64 * 1024 - len, "Где вы находитесь?");
    CHECK_ALL(a, many, RU_PRICES);
    /* a long text of sentences with no word the FAQ knows: nothing, fast */
    for (i = 0, len = 0; len + 8 < 64 * 1024; i++)
        len += (size_t)snprintf(many + len, 64 * 1024 - len, "Ура! ");
    assert_int_equal(myna_answerer_answer_all(a, many, got, 8, NULL), 0);
    free(many);
    myna_answerer_free(a);
}

static void test_all_invalid_args(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    const char *got[2];
    double score = -1.0;

    (void)state;
    assert_int_equal(myna_answerer_answer_all(NULL, "цены", got, 2, &score), 0);
    assert_true(score == 0.0);
    assert_int_equal(myna_answerer_answer_all(a, NULL, got, 2, NULL), 0);
    assert_int_equal(myna_answerer_answer_all(a, "цены", NULL, 2, NULL), 0);
    assert_int_equal(myna_answerer_answer_all(a, "", got, 2, &score), 0);
    assert_true(score == 0.0);
    myna_answerer_free(a);
}

static void test_invalid_faq(void **state)
{
    static const char *const with_null[] = { "ok", NULL };
    const struct myna_faq_entry no_answer[] = { { QS("вопрос"), NULL } };
    const struct myna_faq_entry no_questions[] = { { NULL, 2, "answer" } };
    const struct myna_faq_entry null_question[] = { { with_null, 2, "answer" } };
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_null(myna_answerer_new(NULL, 1, 0.35, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_answerer_new(no_answer, 1, 0.35, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_non_null(strstr(err.msg, "entry 0"));
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_answerer_new(no_questions, 1, 0.35, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_answerer_new(null_question, 1, 0.35, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_null(myna_answerer_new(barbershop, N_FAQ, 1.5, &err));
    assert_null(myna_answerer_new(barbershop, N_FAQ, -0.1, &err));
    assert_null(myna_answerer_new(barbershop, N_FAQ, NAN, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_non_null(strstr(err.msg, "threshold"));
}

/* Built from heap strings that are freed right after: the answerer must
 * hold its own copies. */
static void test_copies_everything(void **state)
{
    char *q1 = strdup("Сколько стоит стрижка?"), *q2 = strdup("Прайс"), *ans = strdup("1500 ₽");
    const char *qs[2];
    struct myna_faq_entry *faq = malloc(sizeof(*faq));
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_answerer *a;

    (void)state;
    assert_true(q1 && q2 && ans && faq);
    qs[0] = q1;
    qs[1] = q2;
    faq->questions = qs;
    faq->n_questions = 2;
    faq->answer = ans;
    a = myna_answerer_new(faq, 1, MYNA_ANSWERER_THRESHOLD, &err);
    assert_non_null(a);
    free(q1);
    free(q2);
    free(ans);
    free(faq);
    assert_string_equal(myna_answerer_answer(a, "стрижка сколько стоит?", NULL), "1500 ₽");
    myna_answerer_free(a);
}

/* A long message is read up to MYNA_ANSWERER_MAX_TOKENS tokens: what comes
 * later does not count, and the time is bounded. */
static void test_long_text_bounded(void **state)
{
    struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
    size_t unit = strlen("борода "), count = 200000, i;
    char *text = malloc(unit * count + 64);
    const char *ans;
    double s;

    (void)state;
    assert_non_null(text);
    for (i = 0; i < count; i++)
        memcpy(text + i * unit, "борода ", unit);
    memcpy(text + count * unit, "цены", sizeof("цены"));
    ans = myna_answerer_answer(a, text, &s);
    assert_non_null(ans);
    assert_string_equal(ans, barbershop[RU_BEARD].answer);
    /* megabytes with no words at all */
    for (i = 0; i + 4 <= unit * count; i += 4)
        memcpy(text + i, "🔥", 4);
    text[i] = '\0';
    assert_null(myna_answerer_answer(a, text, &s));
    assert_true(s == 0.0);
    free(text);
    myna_answerer_free(a);
}

/* Built and freed many times, and queried with every question of its own
 * FAQ: each entry answers its own questions (LSan checks the frees). */
static void test_own_questions_and_no_leaks(void **state)
{
    size_t round, e, q;

    (void)state;
    for (round = 0; round < 20; round++) {
        struct myna_answerer *a = new_barbershop(MYNA_ANSWERER_THRESHOLD);
        for (e = 0; e < N_FAQ; e++) {
            for (q = 0; q < barbershop[e].n_questions; q++) {
                double s;
                const char *ans = myna_answerer_answer(a, barbershop[e].questions[q], &s);
                if (ans == NULL || strcmp(ans, barbershop[e].answer) != 0)
                    fail_msg("'%s' got '%s'", barbershop[e].questions[q], ans ? ans : "(none)");
                assert_true(s > 0.999);
            }
        }
        myna_answerer_free(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_lowercase_and_split),
        cmocka_unit_test(test_tokens_stopwords_and_letters),
        cmocka_unit_test(test_stopwords_sorted_and_reachable),
        cmocka_unit_test(test_tokens_without_accents),
        cmocka_unit_test(test_tokens_russian_stems),
        cmocka_unit_test(test_tokens_english_stems),
        cmocka_unit_test(test_tokens_odd_bytes),
        cmocka_unit_test(test_tokens_bounded),
        cmocka_unit_test(test_tokens_invalid_args),
        cmocka_unit_test(test_customer_questions),
        cmocka_unit_test(test_off_topic_gets_nothing),
        cmocka_unit_test(test_threshold_margin),
        cmocka_unit_test(test_exact_question_scores_one),
        cmocka_unit_test(test_empty_and_emoji_text),
        cmocka_unit_test(test_empty_faq),
        cmocka_unit_test(test_entries_without_words),
        cmocka_unit_test(test_can_match),
        cmocka_unit_test(test_ties_go_to_earlier_entry),
        cmocka_unit_test(test_question_words_weigh_half),
        cmocka_unit_test(test_other_languages_function_words),
        cmocka_unit_test(test_score_set_below_threshold),
        cmocka_unit_test(test_all_two_questions_in_order),
        cmocka_unit_test(test_all_same_entry_once),
        cmocka_unit_test(test_all_greeting_pulls_nothing),
        cmocka_unit_test(test_all_fragments_read_together),
        cmocka_unit_test(test_all_bounded),
        cmocka_unit_test(test_all_invalid_args),
        cmocka_unit_test(test_invalid_faq),
        cmocka_unit_test(test_copies_everything),
        cmocka_unit_test(test_long_text_bounded),
        cmocka_unit_test(test_own_questions_and_no_leaks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
