/* answerer.c - FAQ retrieval by TF-IDF cosine similarity.
 *
 * Building: every question variant is tokenized; the distinct tokens make a
 * sorted vocabulary (a token's id is its rank, so tokens sorted as strings
 * are also sorted by id); each variant becomes a sparse vector of
 * (1 + ln tf) * idf weights over ids, with its norm. Querying: the message
 * becomes the same kind of vector, plus the weight of its words that no
 * question uses, which only adds to its norm; one merge per variant gives
 * the dot product. An FAQ has tens of entries, so a linear scan is cheap.
 *
 * Everything the answerer owns lives in one arena, freed in one go. */
#include "ai/answerer.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "core/banned.h"

/* Letters kept of one word: longer "words" are noise or attacks, and every
 * real word is told apart by its first 32 letters. */
#define WORD_MAX 32

/* Room for the longest tokens text can give: a bound, not a guess. */
#define TOKENS_MAX_BYTES (MYNA_ANSWERER_MAX_TOKENS * (WORD_MAX * 4 + 1))

struct variant {
    size_t entry;
    size_t n;           /* distinct terms */
    const size_t *ids;  /* ascending vocabulary ids */
    const double *w;    /* their weights */
    double norm;
};

struct myna_answerer {
    struct myna_arena arena;   /* owns everything below */
    double threshold;
    size_t n_entries;
    const char **answers;
    const char **vocab;        /* sorted */
    const double *idf;
    size_t n_vocab;
    double idf_unknown;        /* the weight of a word no question uses */
    struct variant *variants;  /* in entry order */
    size_t n_variants;
    size_t *first_variant;     /* entry e has variants [first[e], first[e + 1]) */
};

/* ---- tokens ------------------------------------------------------------- */

/* Short words that carry no meaning for matching, in English, Russian,
 * Spanish, Portuguese, Ukrainian and Kazakh: articles, prepositions,
 * conjunctions, pronouns, auxiliaries, and the question words that name no
 * topic (what, how: что, que, qual, як, қалай). Question words that do
 * (где, когда, сколько, where, when, dónde, cuándo, cuánto, onde, quando,
 * де, коли, скільки, қайда, қашан, қанша) are kept on purpose: they tell
 * the address, the hours and the prices apart. A word that is content in
 * another of these languages stays out: Portuguese "no" (English "no") and
 * "pelo" (Spanish "hair"), Kazakh "осы" (Russian "wasps"). Written as the
 * tokenizer sees them before stemming: lowercase, ё as е, Latin letters
 * without accents (cuál is cual, são is sao). Sorted by bytes for bsearch. */
static const char *const stopwords[] = {
    "a", "about", "al", "am", "an", "and", "any", "ao", "aos", "are", "aren", "as", "at", "be",
    "been", "but", "by", "can", "com", "como", "con", "could", "cual", "cuales", "da", "das", "de",
    "del", "did", "do", "does", "doesn", "don", "dos", "e", "el", "em", "en", "es", "esta",
    "estan", "estao", "este", "esto", "eu", "favor", "for", "from", "get", "got", "had", "has",
    "have", "how", "i", "if", "in", "is", "isn", "isso", "isto", "it", "its", "just", "la", "las",
    "le", "les", "ll", "lo", "los", "may", "me", "meu", "mi", "minha", "mis", "my", "na", "nas",
    "nos", "o", "of", "on", "or", "os", "ou", "our", "para", "please", "pode", "podem", "por",
    "posso", "puede", "pueden", "puedo", "quais", "qual", "que", "re", "sao", "se", "seu", "si",
    "so", "some", "son", "su", "sua", "sus", "te", "tem", "that", "the", "there", "these", "this",
    "those", "tiene", "tienen", "to", "tu", "tus", "um", "uma", "umas", "un", "una", "unas",
    "unos", "uns", "us", "usted", "ustedes", "ve", "voce", "voces", "was", "we", "were", "what",
    "will", "with", "would", "y", "yo", "you", "your", "yours", "а", "або", "але", "ба", "бе",
    "без", "бен", "бы", "был", "была", "быть", "біз", "біздің", "бұл", "в", "вам", "вас", "ваш",
    "ваша", "ваше", "вашей", "ваши", "ваші", "вже", "ви", "во", "вы", "від", "да", "для", "до",
    "если", "есть", "еще", "же", "және", "з", "за", "и", "из", "или", "й", "как", "какая", "какие",
    "какое", "какой", "какую", "ко", "ли", "ма", "ме", "мен", "мене", "меня", "мені", "ми", "мне",
    "можна", "можно", "мы", "на", "нам", "нас", "не", "ни", "но", "о", "об", "ол", "он", "она",
    "они", "оно", "от", "па", "пе", "пен", "по", "под", "подскажите", "пожалуйста", "при", "про",
    "підкажіть", "с", "сен", "скажите", "скажіть", "со", "сіз", "сізге", "сізде", "сіздер",
    "сіздің", "та", "так", "також", "там", "то", "тоже", "тут", "у", "уже", "це", "цей", "ця",
    "ці", "чи", "что", "ще", "що", "это", "я", "як", "яка", "яке", "який", "якщо", "які", "є", "і",
    "қалай", "қандай", "үшін",
};

/* The code point at s[0..n) and its length; a byte that starts no valid
 * UTF-8 sequence is U+FFFD of length 1 (a separator). */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *len)
{
    size_t k = myna_utf8_seq(s, n);

    *len = k ? k : 1;
    return k ? myna_utf8_decode(s, k) : 0xFFFD;
}

/* Letters only reach here (below U+0530): one or two bytes. */
static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static int is_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

/* Latin (ASCII, Latin-1, Extended-A/B) and Cyrillic letters; the FAQ is
 * in a language written with them, every other character separates words. */
static int is_letter(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) ||
           (c >= 0x400 && c <= 0x52F && !(c >= 0x482 && c <= 0x489));
}

/* Inside a word and ignored: combining accents (стри́жка), soft hyphen. */
static int is_ignorable(uint32_t c)
{
    return (c >= 0x300 && c <= 0x36F) || c == 0xAD;
}

/* The Latin letters of U+00C0-U+017F without their accents, lowercase: a
 * customer types "cuanto", "preco" or "cafe" for the FAQ's "¿Cuánto?",
 * "Preço" and "café", and an accent sent apart (e + U+0301) is dropped
 * anyway. A space keeps the letter, lowercased below: æ ð þ ß ĳ œ ŋ have
 * no base letter (and × ÷ are no letters). */
static const char latin_base[] =
    "aaaaaa ceeeeiiii nooooo ouuuuy  "   /* U+00C0 */
    "aaaaaa ceeeeiiii nooooo ouuuuy y"   /* U+00E0 */
    "aaaaaaccccccccddddeeeeeeeeeegggg"   /* U+0100 */
    "gggghhhhiiiiiiiiii  jjkk lllllll"   /* U+0120 */
    "lllnnnnnn   oooooo  rrrrrrssssss"   /* U+0140 */
    "ssttttttuuuuuuuuuuuuwwyyyzzzzzzs";  /* U+0160 */

static uint32_t to_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 0x20;
    if (c >= 0xC0 && c - 0xC0 < sizeof(latin_base) - 1 && latin_base[c - 0xC0] != ' ')
        return (uint32_t)latin_base[c - 0xC0];
    if (c == 0x401 || c == 0x451)
        return 0x435;   /* Ё ё -> е: people write both */
    if (c >= 0x410 && c <= 0x42F)
        return c + 0x20;
    if (c >= 0x400 && c <= 0x40F)
        return c + 0x50;
    /* the other Cyrillic letters (Ukrainian ґ, Kazakh қ ә ө ...) come in
     * pairs, the capital first; from Ӂ to ӎ the capital is the odd one */
    if ((c >= 0x460 && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
        return c | 1;
    if (c >= 0x4C1 && c <= 0x4CE)
        return c + (c & 1);
    if (c == 0x4C0)
        return 0x4CF;   /* Ӏ ӏ */
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 0x20;
    if (c == 0x132 || c == 0x14A || c == 0x152)
        return c + 1;   /* Ĳ Ŋ Œ */
    return c;
}

/* Words that say what kind of question it is but not what about (where,
 * how much, when) count half: "сколько стоит машина" must not reach the
 * prices of a barbershop on "сколько стоит" alone. Stems, as tokens are. */
static double word_factor(const char *stem)
{
    static const char *const weak[] = {
        "где", "куд", "когд", "сколь", "сто", "хоч", "нужн", "над",
        "wher", "when", "much", "many", "cost", "want", "need", "like",
    };
    size_t k;

    for (k = 0; k < sizeof(weak) / sizeof(weak[0]); k++)
        if (strcmp(stem, weak[k]) == 0)
            return 0.5;
    return 1.0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *const *myna_answerer__stopwords(size_t *n)
{
    *n = sizeof(stopwords) / sizeof(stopwords[0]);
    return stopwords;
}

static int is_stopword(const char *w)
{
    return bsearch(&w, stopwords, sizeof(stopwords) / sizeof(stopwords[0]), sizeof(stopwords[0]),
                   cmp_str) != NULL;
}

static int ends_with(const char *w, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);

    return n >= sl && memcmp(w + n - sl, suffix, sl) == 0;
}

/* Russian (every letter 2 bytes): the longest ending goes while 3 letters
 * stay, then 5 letters are kept. The ending matters for short words (цена,
 * цены -> цен; дети, детей -> дет), the cut for long ones, whose suffixes
 * vary more than any list (записаться, записываться, запись -> запис).
 * Last, the consonants that alternate in verbs meet at the end of a stem
 * of 4 or more letters: ш -> с (запишите, записать), ж and ч -> г (стрижёте,
 * стричь, стригу). On 25 word-form groups of a barbershop FAQ this meets
 * 132 of 132 pairs of forms and merges 3 of 18 unrelated pairs (машинка and
 * машина, открыты and открытка, адрес and адресат); without the endings
 * 102/132, cutting at 4 letters merges 8/18, at 6 meets 95/132. */
static size_t stem_ru(char *w, size_t n)
{
    static const char *const endings[] = {
        "ами", "ями", "ого", "его", "ому", "ему", "ыми", "ими", "ьми", "ете", "ите", "ешь",
        "ишь", "ой", "ей", "ий", "ый", "ая", "яя", "ое", "ее", "ые", "ие", "ую", "юю", "ом",
        "ем", "им", "ым", "ах", "ях", "ых", "их", "ов", "ев", "ам", "ям", "ет", "ит", "ут",
        "ют", "ат", "ят", "ть", "а", "я", "о", "е", "ы", "и", "у", "ю", "ь", "й",
    };
    size_t k, best = 0;

    for (k = 0; k < sizeof(endings) / sizeof(endings[0]); k++) {
        size_t el = strlen(endings[k]);
        if (el > best && n >= el + 6 && ends_with(w, n, endings[k]))
            best = el;
    }
    n -= best;
    if (n > 10)
        n = 10;
    if (n >= 8) {
        if (memcmp(w + n - 2, "ш", 2) == 0)
            memcpy(w + n - 2, "с", 2);
        else if (memcmp(w + n - 2, "ж", 2) == 0 || memcmp(w + n - 2, "ч", 2) == 0)
            memcpy(w + n - 2, "г", 2);
    }
    return n;
}

static int is_consonant(char c)
{
    return strchr("aeiouy", c) == NULL;
}

/* English (ASCII): plurals from 4 letters, -ing and -ed from 5, and a final
 * -e of a stem of 5, so that book/books/booking, trim/trimming,
 * price/prices/priced and time/times/timing meet. */
static size_t stem_en(char *w, size_t n)
{
    size_t orig = n;

    if (n >= 4 && w[n - 1] == 's') {
        if (n > 4 && ends_with(w, n, "ies")) {
            n -= 2;
            w[n - 1] = 'y';
        } else if (ends_with(w, n, "sses") || ends_with(w, n, "xes") ||
                   ends_with(w, n, "ches") || ends_with(w, n, "shes") || ends_with(w, n, "zes")) {
            n -= 2;
        } else if (!ends_with(w, n, "ss") && !ends_with(w, n, "us") && !ends_with(w, n, "is")) {
            n -= 1;
        }
    }
    if (orig < 5)
        return n;
    if (ends_with(w, n, "ied") && n > 4) {
        n -= 2;
        w[n - 1] = 'y';
    } else if ((ends_with(w, n, "ing") && n >= 6) || (ends_with(w, n, "ed") && n >= 5)) {
        n -= w[n - 1] == 'g' ? 3 : 2;
        if (w[n - 1] == w[n - 2] && is_consonant(w[n - 1]) && strchr("lsz", w[n - 1]) == NULL)
            n--;   /* trimming -> trimm -> trim */
        else if (n == 3 && is_consonant(w[0]) && !is_consonant(w[1]) && is_consonant(w[2]) &&
                 strchr("wx", w[2]) == NULL)
            w[n++] = 'e';   /* timing -> tim -> time: the e a short word lost */
    }
    /* from 5 letters left: time and times keep their e, care is no car */
    if (n > 4 && w[n - 1] == 'e')
        n--;
    return n;
}

struct word {
    uint32_t cp[WORD_MAX];
    size_t n;
};

/* Appends the finished word, normalized, as "token\0" to out and counts
 * it; stopwords and single letters are dropped. Empties the word. */
static int add_word(struct word *wd, struct myna_buf *out, size_t *count)
{
    char w[WORD_MAX * 2 + 1];
    size_t i, len = 0;
    int russian = 1, english = 1, rc;

    if (wd->n == 0)
        return MYNA_OK;
    for (i = 0; i < wd->n; i++) {
        uint32_t c = wd->cp[i];
        russian &= c >= 0x430 && c <= 0x44F;
        english &= c >= 'a' && c <= 'z';
        len += utf8_encode(c, w + len);
    }
    w[len] = '\0';
    if ((wd->n == 1 && !is_digit(wd->cp[0])) || is_stopword(w)) {
        wd->n = 0;
        return MYNA_OK;
    }
    wd->n = 0;
    if (russian)
        len = stem_ru(w, len);
    else if (english)
        len = stem_en(w, len);
    w[len] = '\0';
    if ((rc = myna_buf_append(out, w, len + 1)) != MYNA_OK)
        return rc;
    (*count)++;
    return MYNA_OK;
}

/* Tokens of text as "a\0b\0..." in out, at most MYNA_ANSWERER_MAX_TOKENS. */
static int tokenize(const char *text, struct myna_buf *out, size_t *count)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text), i = 0;
    struct word wd;
    int rc = MYNA_OK;

    wd.n = 0;
    *count = 0;
    while (i < len && *count < MYNA_ANSWERER_MAX_TOKENS && rc == MYNA_OK) {
        size_t cl;
        uint32_t c = utf8_decode(s + i, len - i, &cl);

        i += cl;
        if (is_letter(c) || is_digit(c)) {
            if (wd.n < WORD_MAX)
                wd.cp[wd.n++] = to_lower(c);
        } else if (!is_ignorable(c)) {
            rc = add_word(&wd, out, count);
        }
    }
    if (rc == MYNA_OK && *count < MYNA_ANSWERER_MAX_TOKENS)
        rc = add_word(&wd, out, count);
    return rc;
}

int myna_answerer_tokens(const char *text, char ***tokens, size_t *n)
{
    struct myna_buf b = MYNA_BUF_INIT(TOKENS_MAX_BYTES);
    size_t count, i, off = 0;
    char **v, *strs;
    int rc;

    if (tokens == NULL || n == NULL)
        return MYNA_EINVAL;
    *tokens = NULL;
    *n = 0;
    if (text == NULL)
        return MYNA_EINVAL;
    if ((rc = tokenize(text, &b, &count)) != MYNA_OK || count == 0) {
        myna_buf_release(&b);
        return rc;
    }
    /* one block: the pointers, then the strings they point into */
    v = malloc(count * sizeof(*v) + b.len);
    if (v == NULL) {
        myna_buf_release(&b);
        return MYNA_ENOMEM;
    }
    strs = (char *)(v + count);
    memcpy(strs, b.data, b.len);
    for (i = 0; i < count; i++) {
        v[i] = strs + off;
        off += strlen(strs + off) + 1;
    }
    myna_buf_release(&b);
    *tokens = v;
    *n = count;
    return MYNA_OK;
}

/* ---- building ----------------------------------------------------------- */

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

/* The vocabulary id of tok, or SIZE_MAX. */
static size_t vocab_find(const struct myna_answerer *a, const char *tok)
{
    const char **hit;

    if (a->n_vocab == 0)
        return SIZE_MAX;
    hit = bsearch(&tok, a->vocab, a->n_vocab, sizeof(*a->vocab), cmp_str);
    return hit != NULL ? (size_t)(hit - a->vocab) : SIZE_MAX;
}

/* The tokens of all variants in one list (strings in the answerer's
 * arena): variant v owns tok[first[v]..first[v + 1]). */
struct corpus {
    const char **tok;
    size_t n_tok, cap;
    size_t *first;
};

static int check_faq(const struct myna_faq_entry *faq, size_t n, double threshold,
                     struct myna_err *err)
{
    size_t e, q;

    if (faq == NULL && n > 0)
        return myna_err_set(err, MYNA_EINVAL, "cannot build answerer: no FAQ entries");
    if (!(threshold >= 0.0 && threshold <= 1.0))
        return myna_err_set(err, MYNA_EINVAL,
                            "cannot build answerer: threshold %g not in [0, 1]", threshold);
    for (e = 0; e < n; e++) {
        if (faq[e].answer == NULL)
            return myna_err_set(err, MYNA_EINVAL,
                                "cannot build answerer: FAQ entry %zu has no answer", e);
        if (faq[e].questions == NULL && faq[e].n_questions > 0)
            return myna_err_set(err, MYNA_EINVAL,
                                "cannot build answerer: FAQ entry %zu has no questions", e);
        for (q = 0; q < faq[e].n_questions; q++)
            if (faq[e].questions[q] == NULL)
                return myna_err_set(err, MYNA_EINVAL,
                                    "cannot build answerer: FAQ entry %zu question %zu is NULL",
                                    e, q);
    }
    return MYNA_OK;
}

/* Adds the "a\0b\0..." tokens of b to c, copied into the arena. */
static int corpus_add(struct myna_answerer *a, struct corpus *c, const struct myna_buf *b,
                      size_t count)
{
    size_t i, off = 0;

    if (c->n_tok + count > c->cap) {
        size_t ncap = (c->n_tok + count) * 2;
        const char **nt = realloc(c->tok, ncap * sizeof(*nt));
        if (nt == NULL)
            return MYNA_ENOMEM;
        c->tok = nt;
        c->cap = ncap;
    }
    for (i = 0; i < count; i++) {
        size_t l = strlen(b->data + off);
        if ((c->tok[c->n_tok++] = myna_arena_strndup(&a->arena, b->data + off, l)) == NULL)
            return MYNA_ENOMEM;
        off += l + 1;
    }
    return MYNA_OK;
}

/* Tokenizes every question into c, in entry order. */
static int collect_tokens(struct myna_answerer *a, const struct myna_faq_entry *faq, size_t n,
                          struct corpus *c)
{
    struct myna_buf b = MYNA_BUF_INIT(TOKENS_MAX_BYTES);
    size_t e, q, v = 0, count;
    int rc = MYNA_OK;

    for (e = 0; e < n && rc == MYNA_OK; e++) {
        for (q = 0; q < faq[e].n_questions && rc == MYNA_OK; q++, v++) {
            a->variants[v].entry = e;
            c->first[v] = c->n_tok;
            myna_buf_reset(&b);
            rc = tokenize(faq[e].questions[q], &b, &count);
            if (rc == MYNA_OK && count > 0)
                rc = corpus_add(a, c, &b, count);
        }
    }
    c->first[v] = c->n_tok;
    myna_buf_release(&b);
    return rc;
}

/* The sorted distinct tokens of c become the vocabulary. */
static int build_vocab(struct myna_answerer *a, const struct corpus *c)
{
    const char **all;
    size_t i, n = 0;

    if (c->n_tok == 0)
        return MYNA_OK;
    all = myna_arena_alloc(&a->arena, c->n_tok * sizeof(*all));
    if (all == NULL)
        return MYNA_ENOMEM;
    memcpy(all, c->tok, c->n_tok * sizeof(*all));
    qsort(all, c->n_tok, sizeof(*all), cmp_str);
    for (i = 0; i < c->n_tok; i++)
        if (n == 0 || strcmp(all[n - 1], all[i]) != 0)
            all[n++] = all[i];
    a->vocab = all;
    a->n_vocab = n;
    return MYNA_OK;
}

/* One variant's weights: ids[0..nt) are its term ids, sorted here. */
static int build_variant(struct myna_answerer *a, struct variant *var, size_t *ids, size_t nt)
{
    size_t *out_ids, i, j, k = 0;
    double *w, norm = 0.0;

    qsort(ids, nt, sizeof(*ids), cmp_size);
    out_ids = myna_arena_alloc(&a->arena, (nt + 1) * sizeof(*out_ids));
    w = myna_arena_alloc(&a->arena, (nt + 1) * sizeof(*w));
    if (out_ids == NULL || w == NULL)
        return MYNA_ENOMEM;
    for (i = 0; i < nt; i = j) {
        for (j = i; j < nt && ids[j] == ids[i]; j++) {
        }
        out_ids[k] = ids[i];
        w[k] = (1.0 + log((double)(j - i))) * a->idf[ids[i]];
        norm += w[k] * w[k];
        k++;
    }
    var->n = k;
    var->ids = out_ids;
    var->w = w;
    var->norm = sqrt(norm);
    return MYNA_OK;
}

/* idf over entries, then each variant's weights and norm. */
static int build_vectors(struct myna_answerer *a, const struct corpus *c)
{
    size_t *ids, *last_entry, *df, v, i;
    double *idf;
    int rc = MYNA_ENOMEM;

    idf = myna_arena_alloc(&a->arena, (a->n_vocab + 1) * sizeof(*idf));
    ids = malloc((c->n_tok + 1) * sizeof(*ids));
    last_entry = malloc((a->n_vocab + 1) * sizeof(*last_entry));
    df = calloc(a->n_vocab + 1, sizeof(*df));
    if (idf == NULL || ids == NULL || last_entry == NULL || df == NULL)
        goto out;
    for (i = 0; i < c->n_tok; i++)
        ids[i] = vocab_find(a, c->tok[i]);
    for (i = 0; i < a->n_vocab; i++)
        last_entry[i] = SIZE_MAX;
    /* document frequency counts each entry once, however many variants */
    for (v = 0; v < a->n_variants; v++) {
        for (i = c->first[v]; i < c->first[v + 1]; i++) {
            if (last_entry[ids[i]] != a->variants[v].entry) {
                last_entry[ids[i]] = a->variants[v].entry;
                df[ids[i]]++;
            }
        }
    }
    /* smooth idf, 1 + ln((N + 1) / (df + 1)): never 0, so a word found in
     * every entry still counts a little */
    for (i = 0; i < a->n_vocab; i++)
        idf[i] = (1.0 + log(((double)a->n_entries + 1.0) / ((double)df[i] + 1.0))) *
                 word_factor(a->vocab[i]);
    a->idf = idf;
    a->idf_unknown = 1.0 + log((double)a->n_entries + 1.0);
    for (v = 0; v < a->n_variants; v++) {
        rc = build_variant(a, &a->variants[v], ids + c->first[v], c->first[v + 1] - c->first[v]);
        if (rc != MYNA_OK)
            goto out;
    }
    rc = MYNA_OK;
out:
    free(ids);
    free(last_entry);
    free(df);
    return rc;
}

struct myna_answerer *myna_answerer_new(const struct myna_faq_entry *faq, size_t n,
                                        double threshold, struct myna_err *err)
{
    struct myna_answerer *a;
    struct corpus c = { NULL, 0, 0, NULL };
    size_t e, nv = 0;

    if (check_faq(faq, n, threshold, err) != MYNA_OK)
        return NULL;
    for (e = 0; e < n; e++)
        nv += faq[e].n_questions;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        goto nomem;
    a->arena = (struct myna_arena)MYNA_ARENA_INIT(0);
    a->threshold = threshold;
    a->n_entries = n;
    a->n_variants = nv;
    a->answers = myna_arena_alloc(&a->arena, (n + 1) * sizeof(*a->answers));
    a->variants = myna_arena_zalloc(&a->arena, (nv + 1) * sizeof(*a->variants));
    a->first_variant = myna_arena_alloc(&a->arena, (n + 1) * sizeof(*a->first_variant));
    c.first = malloc((nv + 1) * sizeof(*c.first));
    if (a->answers == NULL || a->variants == NULL || a->first_variant == NULL || c.first == NULL)
        goto nomem;
    a->first_variant[0] = 0;
    for (e = 0; e < n; e++)
        a->first_variant[e + 1] = a->first_variant[e] + faq[e].n_questions;
    for (e = 0; e < n; e++)
        if ((a->answers[e] = myna_arena_strdup(&a->arena, faq[e].answer)) == NULL)
            goto nomem;
    if (collect_tokens(a, faq, n, &c) != MYNA_OK || build_vocab(a, &c) != MYNA_OK ||
        build_vectors(a, &c) != MYNA_OK)
        goto nomem;
    free(c.tok);
    free(c.first);
    return a;

nomem:
    free(c.tok);
    free(c.first);
    myna_answerer_free(a);
    myna_err_set(err, MYNA_ENOMEM, "cannot build answerer: out of memory");
    return NULL;
}

int myna_answerer_can_match(const struct myna_answerer *a, size_t e, size_t q)
{
    if (a == NULL || e >= a->n_entries || q >= a->first_variant[e + 1] - a->first_variant[e])
        return 0;
    return a->variants[a->first_variant[e] + q].n > 0;
}

void myna_answerer_free(struct myna_answerer *a)
{
    if (a == NULL)
        return;
    myna_arena_free(&a->arena);
    free(a);
}

/* ---- querying ----------------------------------------------------------- */

/* The message as a sparse vector: ids[0..*n) ascending with weights w;
 * returns its norm, to which the words no question uses add. */
static double query_vector(const struct myna_answerer *a, char **tok, size_t nt, size_t *ids,
                           double *w, size_t *n)
{
    double norm = 0.0;
    size_t i, j, k = 0;

    qsort(tok, nt, sizeof(*tok), cmp_str);
    for (i = 0; i < nt; i = j) {
        size_t id = vocab_find(a, tok[i]);
        double weight;

        for (j = i; j < nt && strcmp(tok[j], tok[i]) == 0; j++) {
        }
        weight = 1.0 + log((double)(j - i));
        if (id == SIZE_MAX) {
            weight *= a->idf_unknown * word_factor(tok[i]);
        } else {
            weight *= a->idf[id];
            ids[k] = id;   /* ascending: the vocabulary is sorted like tok */
            w[k++] = weight;
        }
        norm += weight * weight;
    }
    *n = k;
    return sqrt(norm);
}

static double dot(const size_t *ids, const double *w, size_t n, const struct variant *v)
{
    double sum = 0.0;
    size_t i = 0, j = 0;

    while (i < n && j < v->n) {
        if (ids[i] < v->ids[j])
            i++;
        else if (ids[i] > v->ids[j])
            j++;
        else
            sum += w[i++] * v->w[j++];
    }
    return sum;
}

/* The entry that best matches text, whatever its score (SIZE_MAX when
 * nothing scores above 0, or out of memory); *score gets its score, and
 * *n_known (if not NULL) the number of distinct tokens of text that some
 * question uses: 0 means no variant was compared. */
static size_t best_entry(const struct myna_answerer *a, const char *text, double *score,
                         size_t *n_known)
{
    char **tok = NULL;
    size_t nt = 0, nq = 0, v, best = SIZE_MAX, *ids = NULL;
    double *w = NULL, qnorm, best_score = 0.0;

    if (myna_answerer_tokens(text, &tok, &nt) != MYNA_OK || nt == 0)
        goto out;
    ids = malloc(nt * sizeof(*ids));
    w = malloc(nt * sizeof(*w));
    if (ids == NULL || w == NULL)
        goto out;
    qnorm = query_vector(a, tok, nt, ids, w, &nq);
    for (v = 0; v < a->n_variants && nq > 0; v++) {
        const struct variant *var = &a->variants[v];
        double s;

        if (var->n == 0)
            continue;
        s = dot(ids, w, nq, var) / (qnorm * var->norm);
        if (s > 1.0)
            s = 1.0;   /* rounding */
        /* strictly greater: variants are in entry order, so a tie keeps
         * the earlier entry */
        if (s > best_score) {
            best_score = s;
            best = var->entry;
        }
    }
out:
    free(tok);
    free(ids);
    free(w);
    *score = best_score;
    if (n_known != NULL)
        *n_known = nq;
    return best;
}

const char *myna_answerer_answer(const struct myna_answerer *a, const char *text, double *score)
{
    double s = 0.0;
    size_t e = a != NULL && text != NULL ? best_entry(a, text, &s, NULL) : SIZE_MAX;

    if (score != NULL)
        *score = s;
    return e == SIZE_MAX || s < a->threshold ? NULL : a->answers[e];
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether a sentence of text ends before text[j]: at a line break, or at
 * a blank after a sentence end (so that "3.5" and "barber.example" stay
 * whole). myna_ends_sentence tells which marks end one. */
static int sentence_cut(const char *text, size_t j)
{
    return text[j] == '\n' || text[j] == '\r' ||
           (is_blank(text[j]) && myna_ends_sentence(text, j));
}

/* Tokens compared with the FAQ over one text's sentences, alone and
 * joined: each costs a merge with every variant. */
#define SCAN_TOKENS_MAX (2 * MYNA_ANSWERER_MAX_TOKENS)

/* Matching a text sentence by sentence: the question being read is
 * s[start..) with its best entry and score. */
struct asking {
    const struct myna_answerer *a;
    char *s;                 /* a copy of the text, cut at a span's end to read it */
    const char **answers;
    size_t n, max;
    double low;              /* the lowest score among answers */
    size_t n_sent, n_tok;    /* sentences and tokens compared */
    size_t start, entry;
    double score;
    int open;                /* a question is being read */
};

/* The best entry of s[from..to), counting the tokens compared. */
static size_t match_span(struct asking *q, size_t from, size_t to, double *score,
                         size_t *known)
{
    char c = q->s[to];
    size_t e, k;

    q->s[to] = '\0';
    e = best_entry(q->a, q->s + from, score, &k);
    q->s[to] = c;
    q->n_tok += k;
    if (known != NULL)
        *known = k;
    return e;
}

/* The question read so far gives its answer, once, if it matched. */
static void close_question(struct asking *q)
{
    size_t k;

    if (!q->open)
        return;
    q->open = 0;
    if (q->entry == SIZE_MAX || q->score < q->a->threshold || q->n >= q->max)
        return;
    for (k = 0; k < q->n; k++)
        if (strcmp(q->answers[k], q->a->answers[q->entry]) == 0)
            return;
    q->answers[q->n++] = q->a->answers[q->entry];
    if (q->score < q->low)
        q->low = q->score;
}

/* Sentence s[from..to): it continues the question before it when the two
 * together match better than it alone, and either the same entry as that
 * question or better than that question alone too: "Детей? Стрижёте?" and
 * "Во сколько? Открываетесь?" are one question each, "Сколько стоит
 * стрижка? А детская?" two. Else it starts a question. */
static void read_sentence(struct asking *q, size_t from, size_t to)
{
    double si, sj;
    size_t ei, ej, known;

    ei = match_span(q, from, to, &si, &known);
    if (known == 0)
        return;   /* no word any question uses: "Hi!", "Спасибо!" */
    q->n_sent++;
    if (q->open) {
        ej = match_span(q, q->start, to, &sj, NULL);
        if (ej != SIZE_MAX && sj > si && (ej == q->entry || sj > q->score)) {
            if (sj > q->score)
                q->score = sj;
            q->entry = ej;
            return;
        }
        close_question(q);
    }
    q->open = 1;
    q->start = from;
    q->entry = ei;
    q->score = si;
}

size_t myna_answerer_answer_all(const struct myna_answerer *a, const char *text,
                                const char **answers, size_t max, double *score)
{
    struct asking q;
    size_t len, from = 0, j, e;
    double sc = 0.0;

    if (score != NULL)
        *score = 0.0;
    if (a == NULL || text == NULL || answers == NULL || max == 0)
        return 0;
    len = strlen(text);
    memset(&q, 0, sizeof(q));
    q.a = a;
    q.answers = answers;
    q.max = max;
    q.low = 1.0;
    if ((q.s = malloc(len + 1)) == NULL)
        return 0;
    memcpy(q.s, text, len + 1);
    for (j = 0; j <= len && q.n < max && q.n_sent < MYNA_ANSWERER_MAX_SENTENCES &&
                q.n_tok < SCAN_TOKENS_MAX; j++) {
        if (j < len && !sentence_cut(text, j))
            continue;
        if (j > from)
            read_sentence(&q, from, j);
        from = j + 1;
    }
    close_question(&q);
    free(q.s);
    if (q.n > 0) {
        if (score != NULL)
            *score = q.low;
        return q.n;
    }
    /* no sentence, nor sentences read together: the whole text, as
     * myna_answerer_answer reads it */
    e = best_entry(a, text, &sc, NULL);
    if (score != NULL)
        *score = sc;
    if (e == SIZE_MAX || sc < a->threshold)
        return 0;
    answers[0] = a->answers[e];
    return 1;
}
