/* answerer.c - FAQ retrieval: normalize, stem, TF-IDF cosine. */
#include "ai/answerer.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

#define WORD_MAX 64      /* code points kept of one word */
#define STEM_RU 5        /* a Russian stem keeps at most this many letters */

struct variant {
    char **tokens;       /* unique, sorted */
    size_t n;
    double norm;         /* of its TF-IDF vector */
};

struct entry {
    struct variant *v;
    size_t n_v;
    char *answer;
};

struct term {            /* document frequency over all variants */
    char *token;
    double idf;
};

struct myna_answerer {
    struct entry *e;
    size_t n;
    struct term *terms;  /* sorted by token */
    size_t n_terms;
    double threshold;
};

static const char *const stopwords[] = {
    /* Russian */
    "а", "без", "бы", "в", "вам", "вас", "ваш", "во", "вот", "вы", "да", "для", "до", "его", "ее",
    "если", "есть", "же", "за", "и", "из", "или", "им", "их", "к", "как", "ко", "ли", "мне", "мы",
    "на", "не", "нет", "ну", "о", "об", "он", "она", "они", "от", "по", "при", "с", "со", "так",
    "то", "у", "уж", "что", "это", "я", "можно", "пожалуйста", "здравствуйте", "привет",
    /* English */
    "a", "an", "and", "are", "at", "be", "can", "do", "does", "for", "hello", "hi", "how", "i",
    "in", "is", "it", "me", "my", "of", "on", "or", "please", "the", "to", "we", "what", "you",
    "your",
    NULL,
};

/* Russian endings stripped before the stem is cut, longest first. */
static const char *const ru_endings[] = {
    "ами", "ями", "ого", "его", "ому", "ему", "ая", "яя", "ое", "ее", "ые", "ие", "ый", "ий",
    "ой", "ей", "ом", "ем", "ам", "ям", "ах", "ях", "ую", "юю", "а", "я", "ы", "и", "у", "ю",
    "е", "о", "ь", NULL,
};

/* ---- UTF-8 and normalization ---- */

static int decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if ((s[0] & 0xF8) == 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
        (s[3] & 0xC0) == 0x80) {
        *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
              ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return 4;
    }
    *cp = 0xFFFD;  /* a broken byte separates words like punctuation */
    return 1;
}

/* Lowercase letter or digit, or 0 when cp separates words. */
static uint32_t fold(uint32_t cp)
{
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
        return cp;
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp >= 0x0430 && cp <= 0x044F)  /* а..я */
        return cp;
    if (cp >= 0x0410 && cp <= 0x042F)  /* А..Я */
        return cp + 32;
    if (cp == 0x0401 || cp == 0x0451)  /* Ё ё -> е */
        return 0x0435;
    return 0;
}

static size_t encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));  /* only Latin and Cyrillic reach here */
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static int is_stopword(const char *w)
{
    for (size_t i = 0; stopwords[i]; i++)
        if (strcmp(stopwords[i], w) == 0)
            return 1;
    return 0;
}

static int ends_with(const char *w, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len > n && memcmp(w + len - n, suffix, n) == 0;
}

/* Crude stemming in place; cyr says whether the word is Cyrillic (each
 * letter 2 bytes) and letters how many it has. */
static void stem(char *w, int cyr, size_t letters)
{
    size_t len = strlen(w);

    if (cyr) {
        if (letters >= 4)
            for (size_t i = 0; ru_endings[i]; i++)
                if (ends_with(w, len, ru_endings[i]) && (len - strlen(ru_endings[i])) / 2 >= 3) {
                    len -= strlen(ru_endings[i]);
                    break;
                }
        if (len > STEM_RU * 2)
            len = STEM_RU * 2;
    } else if (letters > 4) {
        if (ends_with(w, len, "ing"))
            len -= 3;
        else if (ends_with(w, len, "ed"))
            len -= 2;
        else if (ends_with(w, len, "es") && len > 5 && strchr("sxz", w[len - 3]) != NULL)
            len -= 2;  /* boxes, buzzes; but prices -> price */
        else if (ends_with(w, len, "ches") || ends_with(w, len, "shes"))
            len -= 2;
        else if (ends_with(w, len, "s") && !ends_with(w, len, "ss"))
            len -= 1;
    }
    w[len] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void myna_answerer_tokens_free(char **tokens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
}

/* Unique sorted stems of text. */
int myna_answerer_tokens(const char *text, char ***tokens, size_t *n)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    char word[WORD_MAX * 2 + 1], **v = NULL;
    size_t wl = 0, letters = 0, cap = 0;
    int cyr = 0;

    *tokens = NULL;
    *n = 0;
    for (;;) {
        uint32_t cp = 0, f;
        int adv = *s ? decode(s, &cp) : 0;

        f = adv ? fold(cp) : 0;
        if (f && letters < WORD_MAX) {
            wl += encode(f, word + wl);
            letters++;
            cyr |= f >= 0x0430;
        } else if (!f && letters > 0) {
            word[wl] = '\0';
            if (!is_stopword(word)) {
                stem(word, cyr, letters);
                if (*n == cap) {
                    char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
                    if (nv == NULL)
                        goto nomem;
                    v = nv;
                }
                if ((v[*n] = strdup(word)) == NULL)
                    goto nomem;
                (*n)++;
            }
            wl = letters = 0;
            cyr = 0;
            if (*n >= MYNA_ANSWERER_MAX_TOKENS)
                break;
        }
        if (!adv)
            break;
        s += adv;
    }
    if (*n > 1) {  /* sort, then drop repeats: a set of stems */
        size_t u = 1;
        qsort(v, *n, sizeof(*v), cmp_str);
        for (size_t i = 1; i < *n; i++) {
            if (strcmp(v[i], v[u - 1]) == 0)
                free(v[i]);
            else
                v[u++] = v[i];
        }
        *n = u;
    }
    *tokens = v;
    return MYNA_OK;
nomem:
    myna_answerer_tokens_free(v, *n);
    *n = 0;
    return MYNA_ENOMEM;
}

/* ---- the index ---- */

static const struct term *term_find(const struct myna_answerer *a, const char *token)
{
    size_t lo = 0, hi = a->n_terms;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(a->terms[mid].token, token);
        if (c == 0)
            return &a->terms[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static double idf_of(const struct myna_answerer *a, const char *token)
{
    const struct term *t = term_find(a, token);

    return t ? t->idf : 0;
}

/* Document frequencies over every variant, then each variant's norm. */
static int build_index(struct myna_answerer *a)
{
    size_t total = 0, n_docs = 0;
    char **all;

    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < a->e[i].n_v; j++) {
            total += a->e[i].v[j].n;
            n_docs++;
        }
    if (total == 0)
        return MYNA_OK;
    if ((all = malloc(total * sizeof(*all))) == NULL ||
        (a->terms = calloc(total, sizeof(*a->terms))) == NULL) {
        free(all);
        return MYNA_ENOMEM;
    }
    total = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < a->e[i].n_v; j++)
            for (size_t k = 0; k < a->e[i].v[j].n; k++)
                all[total++] = a->e[i].v[j].tokens[k];
    qsort(all, total, sizeof(*all), cmp_str);
    for (size_t i = 0; i < total;) {
        size_t df = 1;
        while (i + df < total && strcmp(all[i + df], all[i]) == 0)
            df++;
        a->terms[a->n_terms].token = all[i];  /* borrowed from the variant */
        a->terms[a->n_terms].idf = log(1.0 + (double)n_docs / (double)df);
        a->n_terms++;
        i += df;
    }
    free(all);
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < a->e[i].n_v; j++) {
            struct variant *v = &a->e[i].v[j];
            double sum = 0;
            for (size_t k = 0; k < v->n; k++) {
                double w = idf_of(a, v->tokens[k]);
                sum += w * w;
            }
            v->norm = sqrt(sum);
        }
    return MYNA_OK;
}

void myna_answerer_free(struct myna_answerer *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        for (size_t j = 0; j < a->e[i].n_v; j++)
            myna_answerer_tokens_free(a->e[i].v[j].tokens, a->e[i].v[j].n);
        free(a->e[i].v);
        free(a->e[i].answer);
    }
    free(a->e);
    free(a->terms);
    free(a);
}

struct myna_answerer *myna_answerer_new(const struct myna_faq_entry *faq, size_t n,
                                        double threshold, struct myna_err *err)
{
    struct myna_answerer *a = calloc(1, sizeof(*a));

    if (a == NULL || (n && (a->e = calloc(n, sizeof(*a->e))) == NULL))
        goto nomem;
    a->threshold = threshold;
    for (size_t i = 0; i < n; i++, a->n++) {
        struct entry *e = &a->e[i];
        if ((e->answer = strdup(faq[i].answer ? faq[i].answer : "")) == NULL ||
            (faq[i].n_questions && (e->v = calloc(faq[i].n_questions, sizeof(*e->v))) == NULL))
            goto nomem_counted;
        for (size_t j = 0; j < faq[i].n_questions; j++, e->n_v++)
            if (myna_answerer_tokens(faq[i].questions[j], &e->v[j].tokens, &e->v[j].n) != MYNA_OK)
                goto nomem_counted;
    }
    if (build_index(a) != MYNA_OK)
        goto nomem;
    return a;
nomem_counted:
    a->n++;  /* the entry being built is freed too */
nomem:
    myna_answerer_free(a);
    myna_err_set(err, MYNA_ENOMEM, "out of memory building the FAQ index");
    return NULL;
}

/* Cosine of the query's and the variant's TF-IDF vectors (binary tf). */
static double cosine(const struct myna_answerer *a, char **q, size_t nq, double qnorm,
                     const struct variant *v)
{
    double dot = 0;
    size_t i = 0, j = 0;

    while (i < nq && j < v->n) {  /* both sorted */
        int c = strcmp(q[i], v->tokens[j]);
        if (c == 0) {
            double w = idf_of(a, q[i]);
            dot += w * w;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    return qnorm > 0 && v->norm > 0 ? dot / (qnorm * v->norm) : 0;
}

const char *myna_answerer_answer(const struct myna_answerer *a, const char *text, double *score)
{
    char **q;
    size_t nq;
    double qnorm = 0, best = 0;
    const char *answer = NULL;

    if (score)
        *score = 0;
    if (a == NULL || myna_answerer_tokens(text, &q, &nq) != MYNA_OK)
        return NULL;
    /* words no question knows still make the query longer: they count */
    for (size_t i = 0; i < nq; i++) {
        double w = idf_of(a, q[i]);
        qnorm += w > 0 ? w * w : 1.0;
    }
    qnorm = sqrt(qnorm);
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < a->e[i].n_v; j++) {
            double s = cosine(a, q, nq, qnorm, &a->e[i].v[j]);
            if (s > best + 1e-12) {
                best = s;
                answer = a->e[i].answer;
            }
        }
    myna_answerer_tokens_free(q, nq);
    if (score)
        *score = best;
    return best >= a->threshold ? answer : NULL;
}
