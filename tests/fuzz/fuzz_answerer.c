/* fuzz_answerer.c - libFuzzer harness for the built-in FAQ answerer.
 *
 * A small fixed answerer (Russian and English barbershop FAQ) is built once
 * and queried with the input as a NUL-terminated copy (up to its first NUL).
 * The score must be in [0, 1] and the answer NULL or one of the FAQ's
 * answers, consistent with the threshold; the tokens must be at most
 * MYNA_ANSWERER_MAX_TOKENS non-empty, bounded strings of valid UTF-8 with no
 * ASCII capitals, separators or accented Latin letters. The input as an FAQ question can match
 * exactly when it has tokens, and then the same text gets its answer.
 * myna_answerer_answer_all gives at most max distinct FAQ answers, the
 * first ones of a larger max, at least the one myna_answerer_answer gives,
 * exactly that one for a text of one sentence, and none without tokens. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai/answerer.h"
#include "core/err.h"
#include "core/util.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_FAQ 4

static const char *const q_prices[] = { "Сколько стоит стрижка?", "How much is a haircut?" };
static const char *const q_hours[] = { "Вы работаете в выходные?", "What are your opening hours?" };
static const char *const q_address[] = { "Где вы находитесь?", "Where are you located?" };
static const char *const q_stop[] = { "а вы?" };

static const struct myna_faq_entry faq[N_FAQ] = {
    { q_prices, 2, "1500 ₽ / $25" },
    { q_hours, 2, "10:00-21:00" },
    { q_address, 2, "Тверская, 7" },
    { q_stop, 1, "never" },
};

/* One answerer for the whole run, as a bot keeps one: reachable, no leak. */
static struct myna_answerer *fuzz_answerer(void)
{
    static struct myna_answerer *a;

    if (a == NULL) {
        a = myna_answerer_new(faq, N_FAQ, MYNA_ANSWERER_THRESHOLD, NULL);
        CHECK(a != NULL);
    }
    return a;
}

/* Valid UTF-8, one character at a time (tokens hold ASCII and 2-byte
 * letters only). */
static int token_ok(const char *t)
{
    const unsigned char *p = (const unsigned char *)t;
    size_t len = strlen(t);

    if (len == 0 || len > 64)
        return 0;
    while (*p != '\0') {
        if (*p < 0x80) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
                return 0;
            p++;
        } else if (*p >= 0xC2 && *p <= 0xDF && (p[1] & 0xC0) == 0x80) {
            unsigned cp = ((unsigned)(*p & 0x1F) << 6) | (p[1] & 0x3Fu);
            /* Latin letters lose their accents; those with no base stay */
            if (cp >= 0xC0 && cp <= 0x17F && cp != 0xDF && cp != 0xE6 && cp != 0xF0 &&
                cp != 0xFE && cp != 0x133 && cp != 0x138 && cp != 0x149 && cp != 0x14B &&
                cp != 0x153)
                return 0;
            p += 2;
        } else {
            return 0;
        }
    }
    return 1;
}

/* 1 when text has no sentence end that myna_answerer_answer_all cuts at:
 * a line break, or a blank after an end of sentence. */
static int one_sentence(const char *text)
{
    size_t j;

    for (j = 0; text[j] != '\0'; j++) {
        char c = text[j];
        if (c == '\n' || c == '\r')
            return 0;
        if ((c == ' ' || c == '\t' || c == '\v' || c == '\f') && myna_ends_sentence(text, j))
            return 0;
    }
    return 1;
}

/* myna_answerer_answer_all's invariants; ans is myna_answerer_answer's. */
static void check_all(struct myna_answerer *a, const char *text, const char *ans, size_t n_tok)
{
    const char *got[MYNA_ANSWERER_MAX_ANSWERS], *first[1];
    double score = -1.0;
    size_t n = myna_answerer_answer_all(a, text, got, MYNA_ANSWERER_MAX_ANSWERS, &score), i, k;

    CHECK(n <= MYNA_ANSWERER_MAX_ANSWERS);
    CHECK(score >= 0.0 && score <= 1.0);
    if (n > 0)
        CHECK(score >= MYNA_ANSWERER_THRESHOLD);
    for (i = 0; i < n; i++) {
        for (k = 0; k < N_FAQ && got[i] != faq[k].answer && strcmp(got[i], faq[k].answer) != 0;
             k++) {
        }
        CHECK(k < N_FAQ - 1);
        for (k = 0; k < i; k++)
            CHECK(strcmp(got[i], got[k]) != 0);
    }
    if (ans != NULL)
        CHECK(n >= 1);
    if (n_tok == 0)
        CHECK(n == 0 && score == 0.0);
    if (one_sentence(text)) {
        CHECK(n == (ans != NULL));
        if (n == 1)
            CHECK(got[0] == ans);
    }
    CHECK(myna_answerer_answer_all(a, text, first, 1, NULL) == (n > 0));
    if (n > 0)
        CHECK(first[0] == got[0]);
    CHECK(myna_answerer_answer_all(a, text, first, 0, NULL) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_answerer *a = fuzz_answerer();
    char *text = malloc(size + 1), **tok = NULL;
    const char *ans;
    double score = -1.0;
    size_t n = 0, i, k;

    CHECK(text != NULL);
    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';

    ans = myna_answerer_answer(a, text, &score);
    CHECK(score >= 0.0 && score <= 1.0);
    if (ans != NULL) {
        CHECK(score >= MYNA_ANSWERER_THRESHOLD);
        for (k = 0; k < N_FAQ && strcmp(ans, faq[k].answer) != 0; k++) {
        }
        CHECK(k < N_FAQ - 1);   /* the stopword-only entry never answers */
    }

    CHECK(myna_answerer_tokens(text, &tok, &n) == MYNA_OK);
    CHECK(n <= MYNA_ANSWERER_MAX_TOKENS);
    CHECK((n == 0) == (tok == NULL));
    for (i = 0; i < n; i++)
        CHECK(token_ok(tok[i]));
    /* no tokens, no answer */
    if (n == 0)
        CHECK(ans == NULL && score == 0.0);
    check_all(a, text, ans, n);
    {
        const char *const qs[] = { text };
        const struct myna_faq_entry own = { qs, 1, "own" };
        struct myna_answerer *b = myna_answerer_new(&own, 1, MYNA_ANSWERER_THRESHOLD, NULL);

        CHECK(b != NULL);
        CHECK(myna_answerer_can_match(b, 0, 0) == (n > 0));
        CHECK(!myna_answerer_can_match(b, 0, 1) && !myna_answerer_can_match(b, 1, 0));
        if (n > 0) {
            const char *got[MYNA_ANSWERER_MAX_ANSWERS];
            CHECK(myna_answerer_answer(b, text, NULL) != NULL);
            CHECK(myna_answerer_answer_all(b, text, got, MYNA_ANSWERER_MAX_ANSWERS, NULL) == 1);
            CHECK(strcmp(got[0], "own") == 0);
        }
        myna_answerer_free(b);
    }
    free(tok);
    free(text);
    return 0;
}
