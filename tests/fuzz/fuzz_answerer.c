/* fuzz_answerer.c - customer text (outside input) against a fixed FAQ. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai/answerer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const q1[] = { "Сколько стоит стрижка?", "цена стрижки", "haircut price" };
static const char *const q2[] = { "Где вы находитесь?", "address" };
static const struct myna_faq_entry faq[] = { { q1, 3, "A1" }, { q2, 2, "A2" } };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct myna_answerer *a;
    char *text = malloc(size + 1), **tokens;
    size_t n;
    double score;
    const char *answer;

    if (a == NULL)
        a = myna_answerer_new(faq, 2, 0.35, NULL);
    if (text == NULL || a == NULL) {
        free(text);
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    answer = myna_answerer_answer(a, text, &score);
    if (answer && strcmp(answer, "A1") != 0 && strcmp(answer, "A2") != 0)
        abort();
    if (score < 0 || score > 1.0000001)
        abort();
    if (myna_answerer_tokens(text, &tokens, &n) == 0) {
        if (n > MYNA_ANSWERER_MAX_TOKENS)
            abort();
        myna_answerer_tokens_free(tokens, n);
    }
    free(text);
    return 0;
}
