/* answerer.h - the built-in answerer: with no LLM configured, a bot answers
 * from its instance's FAQ by text retrieval.
 *
 * Texts are normalized (lowercase Latin and Cyrillic, ё = е, punctuation and
 * emoji dropped, common Russian and English stopwords dropped, word forms
 * stemmed crudely so that "стрижка", "стрижку" and "стрижки" meet), then the
 * question is compared with every question variant of every entry by TF-IDF
 * weighted cosine similarity. An entry scores as its best variant; below the
 * threshold there is no answer (the caller sends its fallback text). */
#ifndef MYNA_AI_ANSWERER_H
#define MYNA_AI_ANSWERER_H

#include <stddef.h>

#include "core/err.h"

#define MYNA_ANSWERER_MAX_TOKENS 1000   /* of one text: a hostile text is cut */

struct myna_faq_entry {
    const char *const *questions;  /* variants of the question */
    size_t n_questions;
    const char *answer;
};

struct myna_answerer;

/* Copies what it needs from faq. threshold in 0..1 (callers use 0.35). */
struct myna_answerer *myna_answerer_new(const struct myna_faq_entry *faq, size_t n,
                                        double threshold, struct myna_err *err);
/* The best entry's answer (borrowed, lives with the answerer), or NULL when
 * the best score is below the threshold; *score (may be NULL) in 0..1. */
const char *myna_answerer_answer(const struct myna_answerer *a, const char *text,
                                 double *score);
void myna_answerer_free(struct myna_answerer *a);  /* NULL ok */

/* The normalized tokens of text (for tests): *tokens malloc'd array of
 * malloc'd strings, free with myna_answerer_tokens_free. */
int myna_answerer_tokens(const char *text, char ***tokens, size_t *n);
void myna_answerer_tokens_free(char **tokens, size_t n);

#endif
