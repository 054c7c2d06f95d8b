/* util.h - small helpers shared by every module: clocks, phone masking,
 * bounded number parsing, identifiers. */
#ifndef MYNA_CORE_UTIL_H
#define MYNA_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in microseconds / milliseconds (for intervals). */
int64_t myna_mono_us(void);
int64_t myna_mono_ms(void);
/* Wall clock in milliseconds since the epoch (for stored times). */
int64_t myna_wall_ms(void);

/* Masks a phone number for logs: every digit but the last 4 becomes '*'
 * ("79161234567" -> "*******4567"). Non-digits are dropped; a NULL or empty
 * input gives "-". out must hold cap bytes; the result is always terminated. */
const char *myna_phone_mask(const char *phone, char *out, size_t cap);

/* The other form of a number Meta rewrites (Brazil/Mexico numbers are
 * rewritten by the API, so a message's from and wa_id, and the number a
 * person knows, "may not always match"): a Brazilian mobile with and
 * without its ninth digit, a Mexican mobile with and without the 1 after
 * the country code. 1 with it in out (NUL-terminated), 0 when digits is
 * neither. */
int myna_phone_other_form(const char *digits, char out[16]);

/* Parses a whole decimal integer within [min, max]. 0 or -1. */
int myna_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* An instance id is a slug: 1-64 chars of [a-z0-9-], starting and ending
 * with a letter or digit. */
int myna_is_slug(const char *s);

/* Splits "host:port" (IPv4, name, or [v6]:port) into host (cap bytes) and
 * port. 0 or -1. Port 0 means "any free port". */
int myna_split_hostport(const char *s, char *host, size_t cap, int *port);

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0:
 * no overlongs, no surrogates, nothing past U+10FFFF. */
size_t myna_utf8_seq(const unsigned char *s, size_t n);
/* The code point of the k-byte sequence at s, k as myna_utf8_seq gave it
 * (1 to 4: a well-formed one). */
uint32_t myna_utf8_decode(const unsigned char *s, size_t k);
/* The bytes of the control character at s (n > 0 bytes there), one a
 * terminal obeys instead of showing: a C0 control or DEL (1), or a C1 one
 * in UTF-8, U+0080-U+009F (2); 0 for anything else. */
size_t myna_control_len(const unsigned char *s, size_t n);
/* Length of the longest well-formed UTF-8 prefix of the n bytes at s: n
 * when all of it is. Eight ASCII bytes at a time. */
size_t myna_utf8_prefix(const void *s, size_t n);
/* Code points of s, or (size_t)-1 when s is not valid UTF-8. */
size_t myna_utf8_count(const char *s);
/* Bytes of s to keep to cut it to at most max bytes without splitting a
 * character: strlen(s) when that fits, else the end of the last whole
 * character within max (a byte that starts no valid sequence counts as a
 * character of its own). For "%.*s" and copies of bounded size. */
size_t myna_utf8_cut(const char *s, size_t max);

/* n, or less when the n bytes at s end inside a character of several
 * bytes (a lead byte without all the bytes it announces, as a cut to fit
 * leaves it): the length without that part. For text cut by snprintf. */
size_t myna_utf8_uncut(const char *s, size_t n);

/* The ellipsis, U+2026, in UTF-8: the mark of a text cut short. */
#define MYNA_ELLIPSIS "\xE2\x80\xA6"

/* Whether the n bytes at s end a sentence: with a mark, . ! ? or an
 * ellipsis, or the full stop or question mark of another script (Arabic
 * and Urdu, the dandas of Hindi, Armenian, Amharic, Greek, Chinese and
 * Japanese), then maybe closers that stay with it: spans, quotes and
 * brackets (`*Done.*`, `"Yes."`, `«Да.»`, `(see above.)`), but for “
 * and ‘ after 。！？, which open the next sentence in Chinese. 0 if not;
 * MYNA_SENTENCE_TIGHT after a mark of a script that writes no space
 * before the next sentence (。！？), so a cut may follow it directly;
 * MYNA_SENTENCE_END after any other. A mark inside a word ("3.5") is not
 * at the end: callers test where a space or a cut is. */
#define MYNA_SENTENCE_END 1
#define MYNA_SENTENCE_TIGHT 2
int myna_ends_sentence(const char *s, size_t n);

/* Replaces every copy of secret in the text s (a buffer of cap bytes) with
 * mark (short, ASCII), cut to fit at a character boundary, and, when s is
 * full (a copy cut it), a start of secret at its very end too: an error
 * text that quotes a key or token must not reach a log or an answer. A
 * secret shorter than 4 bytes is left alone (it cannot be told from
 * ordinary text). */
void myna_text_scrub(char *s, size_t cap, const char *secret, const char *mark);

/* The value of one hex digit (either case), or -1. */
int myna_hex_value(int c);

/* Creates the file at path with mode 0600 if it is not there (a store of
 * customer messages or secrets, before SQLite opens it: its -wal and -shm
 * files copy the mode); a file that is there keeps the mode its owner gave
 * it. 0, or the errno of the failure. */
int myna_file_create_private(const char *path);

#endif
