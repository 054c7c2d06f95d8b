/* util.c - clocks, masking, parsing helpers. */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "core/banned.h"

int64_t myna_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t myna_mono_ms(void)
{
    return myna_mono_us() / 1000;
}

int64_t myna_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *myna_phone_mask(const char *phone, char *out, size_t cap)
{
    size_t digits = 0, o = 0, seen = 0;
    const char *p;

    if (cap == 0)
        return out;
    if (phone != NULL)
        for (p = phone; *p; p++)
            digits += (*p >= '0' && *p <= '9');
    if (digits == 0) {
        snprintf(out, cap, "-");
        return out;
    }
    for (p = phone; *p && o + 1 < cap; p++) {
        if (*p < '0' || *p > '9')
            continue;
        out[o++] = seen + 4 < digits ? '*' : *p;
        seen++;
    }
    out[o] = '\0';
    return out;
}

/* Brazil: 55 AA 9 NNNNNNNN and 55 AA NNNNNNNN (no 0 in either digit of a
 * Brazilian area code, 11 to 99); Mexico: 52 1 NNNNNNNNNN and 52 NNNNNNNNNN
 * (a Mexican number starts with neither 0 nor 1). */
int myna_phone_other_form(const char *digits, char out[16])
{
    size_t n = digits != NULL ? strlen(digits) : 0;

    if (n == 0 || n > 13 || strspn(digits, "0123456789") != n)
        return 0;
    if (strncmp(digits, "55", 2) == 0 && digits[2] >= '1' && digits[3] >= '1') {
        if (n == 13 && digits[4] == '9') {
            memcpy(out, digits, 4);
            memcpy(out + 4, digits + 5, 9);   /* with its NUL */
            return 1;
        }
        if (n == 12) {
            memcpy(out, digits, 4);
            out[4] = '9';
            memcpy(out + 5, digits + 4, 9);
            return 1;
        }
    }
    if (strncmp(digits, "521", 3) == 0 && n == 13 && digits[3] >= '2') {
        memcpy(out, "52", 2);
        memcpy(out + 2, digits + 3, 11);
        return 1;
    }
    if (strncmp(digits, "52", 2) == 0 && n == 12 && digits[2] >= '2') {
        memcpy(out, "521", 3);
        memcpy(out + 3, digits + 2, 11);
        return 1;
    }
    return 0;
}

int myna_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    if (s == NULL || !(isdigit((unsigned char)s[0]) ||
                       (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -1;  /* strtoll would also take spaces and '+' */
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int myna_is_slug(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 64 && s[0] != '-' && s[n - 1] != '-';
}

int myna_split_hostport(const char *s, char *host, size_t cap, int *port)
{
    const char *colon, *h = s;
    size_t hl;
    int64_t p;

    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        /* one colon only: "::1" or "fe80::1:8080" is an IPv6 address
         * without brackets, not a host and a port */
        colon = strchr(s, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= cap || myna_parse_i64(colon + 1, 0, 65535, &p) != 0)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0:
 * no overlongs, no surrogates, nothing past U+10FFFF. */
size_t myna_control_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x20 || s[0] == 0x7f)
        return 1;
    return n >= 2 && s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f ? 2 : 0;
}

size_t myna_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
                       (s[3] & 0xc0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

uint32_t myna_utf8_decode(const unsigned char *s, size_t k)
{
    static const unsigned char lead_bits[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
    uint32_t cp = s[0] & lead_bits[k < 5 ? k : 0];

    for (size_t i = 1; i < k && i < 4; i++)
        cp = cp << 6 | (s[i] & 0x3f);
    return cp;
}

size_t myna_utf8_prefix(const void *buf, size_t n)
{
    const unsigned char *s = buf;
    size_t i = 0, k;

    while (i < n) {
        uint64_t w;

        if (n - i >= 8) {
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080u) == 0) {  /* eight ASCII bytes */
                i += 8;
                continue;
            }
        }
        if ((k = myna_utf8_seq(s + i, n - i)) == 0)
            return i;
        i += k;
    }
    return n;
}

size_t myna_utf8_uncut(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t j = n, need;

    while (j > 0 && n - j < 3 && (p[j - 1] & 0xc0) == 0x80)
        j--;
    if (j == 0 || p[j - 1] < 0xc2 || p[j - 1] > 0xf4)
        return n;
    need = p[j - 1] < 0xe0 ? 2 : p[j - 1] < 0xf0 ? 3 : 4;
    return n - (j - 1) < need ? j - 1 : n;
}

/* The marks that end a sentence, in UTF-8. The scripts that write no space
 * between words (Chinese, Japanese) start the next sentence right after
 * theirs: those are tight. */
static const struct {
    const char *mark;
    int tight;
} sentence_marks[] = {
    { ".", 0 }, { "!", 0 }, { "?", 0 }, { MYNA_ELLIPSIS, 0 },
    { "\xD8\x9F", 0 },               /* U+061F Arabic question mark */
    { "\xDB\x94", 0 },               /* U+06D4 Arabic full stop (Urdu) */
    { "\xE0\xA5\xA4", 0 },           /* U+0964 danda (Hindi, Marathi, Nepali) */
    { "\xE0\xA5\xA5", 0 },           /* U+0965 double danda */
    { "\xD6\x89", 0 },               /* U+0589 Armenian full stop */
    { "\xE1\x8D\xA2", 0 },           /* U+1362 Ethiopic full stop (Amharic) */
    { "\xCD\xBE", 0 },               /* U+037E Greek question mark */
    { "\xE3\x80\x82", 1 },           /* U+3002 ideographic full stop */
    { "\xEF\xBC\x81", 1 },           /* U+FF01 fullwidth ! */
    { "\xEF\xBC\x9F", 1 },           /* U+FF1F fullwidth ? */
};

/* What may close around a sentence after its mark: WhatsApp's spans and
 * Markdown's emphasis, quotes, brackets, and their fullwidth and CJK forms.
 * German and Danish quotes close with the marks others open with. */
static const char *const sentence_closers[] = {
    "*", "_", "~", "`", "\"", "'", ")", "]",
    "\xE2\x80\x9D", "\xE2\x80\x99",  /* U+201D U+2019 right quotes */
    "\xE2\x80\x9C", "\xE2\x80\x98",  /* U+201C U+2018 German closing quotes */
    "\xC2\xBB", "\xC2\xAB",          /* U+00BB U+00AB guillemets */
    "\xE2\x80\xBA", "\xE2\x80\xB9",  /* U+203A U+2039 single guillemets */
    "\xEF\xBC\x82", "\xEF\xBC\x87",  /* U+FF02 U+FF07 fullwidth quotes */
    "\xEF\xBC\x89", "\xEF\xBC\xBD",  /* U+FF09 U+FF3D fullwidth ) ] */
    "\xE3\x80\x8D", "\xE3\x80\x8F",  /* U+300D U+300F corner brackets */
    "\xE3\x80\x89", "\xE3\x80\x8B",  /* U+3009 U+300B angle brackets */
    "\xE3\x80\x91",                  /* U+3011 lenticular bracket */
};

/* More closers than this after a mark are no sentence end: it keeps each
 * test short however many marks a text repeats. */
#define SENTENCE_CLOSERS_MAX 8

/* Whether closer opens a quote in the scripts of the tight marks:
 * Chinese quotes as English does, so after 。！？ a “ or ‘ starts the next
 * sentence ("好的。“明天见。”") and stays with it. */
static int opens_after_tight(const char *closer)
{
    return strcmp(closer, "\xE2\x80\x9C") == 0 || strcmp(closer, "\xE2\x80\x98") == 0;
}

/* Whether s[0..n) ends with str; its length in *len. */
static int ends_with(const char *s, size_t n, const char *str, size_t *len)
{
    *len = strlen(str);
    return n >= *len && memcmp(s + n - *len, str, *len) == 0;
}

int myna_ends_sentence(const char *s, size_t n)
{
    size_t k, len;
    int closers = 0, opener = 0;

    for (;;) {   /* the closers after the mark stay with the sentence */
        for (k = 0; k < sizeof(sentence_closers) / sizeof(sentence_closers[0]); k++)
            if (ends_with(s, n, sentence_closers[k], &len))
                break;
        if (k == sizeof(sentence_closers) / sizeof(sentence_closers[0]))
            break;
        if (++closers > SENTENCE_CLOSERS_MAX)
            return 0;
        opener |= opens_after_tight(sentence_closers[k]);
        n -= len;
    }
    for (k = 0; k < sizeof(sentence_marks) / sizeof(sentence_marks[0]); k++)
        if (ends_with(s, n, sentence_marks[k].mark, &len))
            return !sentence_marks[k].tight ? MYNA_SENTENCE_END
                   : opener                 ? 0
                                            : MYNA_SENTENCE_TIGHT;
    return 0;
}

size_t myna_utf8_cut(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    /* a character that starts before max ends at most 3 bytes past it */
    size_t len = strnlen(s, max < SIZE_MAX - 4 ? max + 4 : SIZE_MAX), i = 0, k;

    if (len <= max)
        return len;
    while (i < max) {
        if ((k = myna_utf8_seq(p + i, len - i)) == 0)
            k = 1;
        if (k > max - i)
            break;
        i += k;
    }
    return i;
}

/* Code points of s, or (size_t)-1 when s is not valid UTF-8. */
size_t myna_utf8_count(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, cps = 0;

    while (i < n) {
        size_t k = myna_utf8_seq(p + i, n - i);
        if (k == 0)
            return (size_t)-1;
        i += k;
        cps++;
    }
    return cps;
}

void myna_text_scrub(char *s, size_t cap, const char *secret, const char *mark)
{
    size_t tl, ml, len, k;
    char *p, *from = s;

    if (s == NULL || cap == 0 || secret == NULL || mark == NULL)
        return;
    tl = strlen(secret);
    ml = strlen(mark);
    if (tl < 4)
        return;  /* too short to tell from ordinary text */
    /* the search goes on after each mark: a secret such as "oken" would be
     * found again inside "[token]" */
    while ((p = strstr(from, secret)) != NULL) {
        size_t at = (size_t)(p - s), tail = strlen(p + tl);
        if (at + ml + 1 > cap) {  /* no room for the whole mark: end before it */
            *p = '\0';
            break;
        }
        if (at + ml + tail + 1 > cap)
            tail = cap - 1 - at - ml;
        memmove(p + ml, p + tl, tail);
        memcpy(p, mark, ml);
        p[ml + tail] = '\0';
        /* a mark longer than the secret pushed the end out: whole characters */
        s[myna_utf8_prefix(s, strlen(s))] = '\0';
        from = p + ml;
    }
    /* a copy longer than the room left was cut, and its start is no whole
     * copy for the search above (Meta echoes a malformed token: "Malformed
     * access token EAA...") */
    if ((len = strlen(s)) + 1 < cap || cap <= ml + 1)
        return;
    for (k = tl - 1 < len ? tl - 1 : len; k >= 4; k--)
        if (memcmp(s + len - k, secret, k) == 0) {
            len -= k;
            if (len + ml + 1 > cap)
                len = myna_utf8_cut(s, cap - ml - 1);
            memcpy(s + len, mark, ml + 1);
            return;
        }
}

int myna_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int myna_file_create_private(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno == EEXIST ? 0 : errno;
}
