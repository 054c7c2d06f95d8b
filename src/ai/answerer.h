/* answerer.h - the built-in answerer: with no LLM configured, a customer's
 * message is answered from the instance's FAQ by text retrieval.
 *
 * Each FAQ entry has a few ways of asking its question and one answer. The
 * message and every question variant become bags of normalized tokens
 * (myna_answerer_tokens) compared by TF-IDF cosine similarity; an entry
 * scores its best variant's similarity, and the best entry answers if its
 * score reaches the threshold. IDF counts entries, not variants, so that a
 * word repeated across one entry's variants is not mistaken for a common
 * one; words of the message that no question uses count against the match.
 *
 * The answerer copies what it needs, is immutable once built, and may be
 * queried from several threads at once. No I/O, no logging. */
#ifndef MYNA_AI_ANSWERER_H
#define MYNA_AI_ANSWERER_H

#include <stddef.h>

#include "core/err.h"

/* The threshold callers use. On the barbershop FAQ of test_answerer.c,
 * customer questions in other words and word forms score 0.44 and up, and
 * off-topic ones that share a question word ("сколько стоит машина", "how
 * much is a car") 0.23 at most; 0.35 sits in that gap. */
#define MYNA_ANSWERER_THRESHOLD 0.35
/* Tokens read from one text; the rest of a longer text is ignored. */
#define MYNA_ANSWERER_MAX_TOKENS 1000
/* Answers one reply gives to a turn of several questions: the bot's max. */
#define MYNA_ANSWERER_MAX_ANSWERS 3
/* Sentences of one text matched alone, among those with a word some
 * question uses (each costs a scan of the FAQ); the rest are not. */
#define MYNA_ANSWERER_MAX_SENTENCES 16

struct myna_faq_entry {
    const char *const *questions;   /* n_questions ways of asking */
    size_t n_questions;
    const char *answer;
};

struct myna_answerer;

/* Builds an answerer over faq[0..n) (n 0 is fine: it never answers).
 * threshold is in [0, 1], usually MYNA_ANSWERER_THRESHOLD. NULL with err:
 * MYNA_EINVAL (faq NULL with n > 0, an entry without an answer, questions
 * NULL with n_questions > 0, a NULL question, threshold outside [0, 1]),
 * MYNA_ENOMEM. */
struct myna_answerer *myna_answerer_new(const struct myna_faq_entry *faq, size_t n,
                                        double threshold, struct myna_err *err);

/* The answer of the entry that best matches text (borrowed: lives with the
 * answerer), or NULL when nothing matches, the best score is below the
 * threshold, text is NULL or out of memory. *score (if score is not NULL)
 * gets the best score in [0, 1] either way. Ties go to the earlier entry. */
const char *myna_answerer_answer(const struct myna_answerer *a, const char *text, double *score);

/* The answers to each question of text, a turn that may ask several
 * things at once ("Сколько стоит стрижка? И где вы находитесь?"): text is
 * cut into sentences, at line breaks and at a blank after a sentence end
 * (myna_ends_sentence: . ! ? ...), and each sentence is matched alone as
 * by myna_answerer_answer, so that a greeting or a thank-you sentence
 * matches nothing and pulls in no answer. A sentence that matches better
 * together with the question before it than alone, and either the same
 * entry as that question or better than it too, continues it ("Детей?
 * Стрижёте?" is one question, "Сколько стоит стрижка? А детская?" two).
 * The answers of the questions that match go to answers[0..n) (borrowed:
 * they live with the answerer) in the order they were asked, each once
 * (entries asked twice, or with the same answer text, give it once), at
 * most max; n is returned. When none matches, the whole text is matched
 * as one, so that whatever myna_answerer_answer answers gets an answer
 * here too.
 * At most MYNA_ANSWERER_MAX_SENTENCES sentences with a word some question
 * uses are read, and 2 * MYNA_ANSWERER_MAX_TOKENS of their words (alone
 * and joined) compared with the FAQ; the rest is not read. *score (if not NULL): the
 * lowest score among the answers given, or when none, the whole text's best
 * score, in [0, 1]. 0 when nothing matches, for a NULL argument, max 0, or
 * out of memory. */
size_t myna_answerer_answer_all(const struct myna_answerer *a, const char *text,
                                const char **answers, size_t max, double *score);

/* 1 when question q of FAQ entry e (as given to myna_answerer_new) can
 * match a message; 0 when no token is left of it (only stopwords, single
 * letters, punctuation or emoji: "What is it?", "Что это?"), so that no
 * message ever reaches it, and for e or q out of range. An entry none of
 * whose questions can match never answers: the caller tells the operator. */
int myna_answerer_can_match(const struct myna_answerer *a, size_t e, size_t q);

void myna_answerer_free(struct myna_answerer *a);   /* NULL ok */

/* The normalized tokens of text, in order, at most MYNA_ANSWERER_MAX_TOKENS:
 * letters and digits between separators (anything else, emoji included),
 * lowercased (ASCII, Latin-1 and Extended-A, Cyrillic with ё -> е), Latin
 * letters without their accents (cuánto -> cuanto, preço -> preco, ş -> s,
 * also ø ł đ ı), stopwords (English, Russian, Spanish, Portuguese,
 * Ukrainian and Kazakh function words: the, что, el, você, що, бұл) and
 * single letters dropped, and stemmed:
 *   Russian: the longest inflectional ending goes if 3 letters stay
 *            (цена/цены/цену -> цен), the word is cut to 5 letters
 *            (записаться/запись -> запис), and a final ш becomes с, ж and ч
 *            become г (запишите -> запис; стрижка/стричь/стригу -> стриг);
 *   English: plural -s/-es/-ies (from 4 letters), from 5 letters -ing and
 *            -ed (undoubling: trimming -> trim; a 3-letter stem gets its e
 *            back: timing -> time), and a final -e when 4 letters stay
 *            (price/prices/priced -> pric; time/times/timed -> time).
 * Question words (где, сколько, стоит, where, when, much...) are kept but
 * weigh half in the similarity.
 * *tokens is one malloc'd block holding the pointers and the strings:
 * free(*tokens) releases all (NULL when *n is 0). MYNA_OK, MYNA_EINVAL
 * (NULL argument), MYNA_ENOMEM. */
int myna_answerer_tokens(const char *text, char ***tokens, size_t *n);

/* Internal to src/ai and its tests: the stopwords, lowercase and without
 * accents as tokens are before stemming, sorted by bytes; *n of them. */
const char *const *myna_answerer__stopwords(size_t *n);

#endif
