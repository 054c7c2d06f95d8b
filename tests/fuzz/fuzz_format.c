/* fuzz_format.c - libFuzzer harness for myna_wa_from_markdown and
 * myna_wa_split.
 *
 * The input is converted from an exact-size copy (ASan sees any read past
 * len); the result must be a NUL-terminated string no longer than the
 * converter's bound. The result and the raw input are then split at a small
 * size taken from the first byte and at 4096: every part must be non-empty,
 * trimmed, within max_chars, and the parts must be the text in order with
 * only whitespace and the splitter's marks (fences closed and reopened, the
 * ellipsis of a capped reply) between them; for valid UTF-8 no cut may fall
 * inside a character. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "wa/format.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Valid UTF-8 per RFC 3629 (no overlongs, surrogates, or past U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need, k;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3;
        else
            return 0;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (i + need >= n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* At most the number of characters the splitter counts: bytes that are not
 * continuation bytes (a stray continuation byte counts one there). */
static size_t min_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Whether the line at s is a code fence as the converter writes it (s at
 * its start or in its indentation). */
static int fence_line(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncmp(s, "```", 3) != 0)
        return 0;
    for (s += 3; *s != '\0' && *s != '\n'; s++)
        if (!is_ws((unsigned char)*s))
            return 0;
    return 1;
}

/* fence_line at p in text, where p must start its line: a "```" within a
 * line of text is no fence. */
static int fence_line_at(const char *text, const char *p)
{
    const char *k = p;

    while (k > text && (k[-1] == ' ' || k[-1] == '\t'))
        k--;
    return (k == text || k[-1] == '\n') && fence_line(p);
}

/* Past the whitespace; then past a fence line and its whitespace when
 * skip_fence. */
static const char *skip_ws_fence(const char *text, const char *p, int skip_fence)
{
    while (*p != '\0' && is_ws((unsigned char)*p))
        p++;
    if (skip_fence && fence_line_at(text, p))
        for (p += strcspn(p, "\n"); *p != '\0' && is_ws((unsigned char)*p); p++) {
        }
    return p;
}

/* How much of the text at p part q[0..len) is: all of it, or all but the
 * "\n```" closing a fence it was cut in (*closed); 0 when neither. */
static size_t part_matches(const char *p, const char *q, size_t len, int *closed)
{
    int close = len > 4 && memcmp(q + len - 4, "\n```", 4) == 0;

    *closed = 0;
    /* a "```" that starts a line of code is not the fence's own close */
    if (strncmp(p, q, len) == 0 && !(close && !fence_line(p + len - 3)))
        return len;
    if (close && strncmp(p, q, len - 4) == 0) {
        *closed = 1;
        return len - 4;
    }
    return 0;
}

/* The parts are the text, but for the marks (format.h): a fence closed at
 * the end of a part and reopened at the start of the next (a line closing
 * it right at the cut skipped), an empty fence at the end dropped, and the
 * ellipsis of a last part that leaves text out. */
static void check_split(const char *text, size_t max, size_t max_parts)
{
    struct myna_err err = MYNA_ERR_INIT;
    int valid = utf8_valid((const unsigned char *)text, strlen(text));
    int decor = max >= MYNA_WA_SPLIT_DECOR_MIN, reopen = 0, closed = 0, cut_short = 0;
    const char *p = text, *rest;
    char **parts = NULL;
    size_t n = 0, i;

    CHECK(myna_wa_split(text, max, max_parts, &parts, &n, &err) == MYNA_OK);
    CHECK((n == 0) == (parts == NULL));
    CHECK(max_parts == 0 || n <= max_parts);
    for (i = 0; i < n; i++) {
        const char *q = parts[i];
        size_t len = strlen(q), m;

        CHECK(len > 0);
        CHECK(!is_ws((unsigned char)q[0]) && !is_ws((unsigned char)q[len - 1]));
        CHECK(min_chars(q) <= max);
        p = skip_ws_fence(text, p, 0);
        if (reopen) {
            CHECK(strncmp(q, "```\n", 4) == 0);
            q += 4;
            len -= 4;
        }
        m = part_matches(p, q, len, &closed);
        rest = m > 0 ? skip_ws_fence(text, skip_ws_fence(text, p + m, closed), decor) : p;
        if (decor && i + 1 == max_parts && !(m > 0 && *rest == '\0')) {
            CHECK(len > 3 && strcmp(q + len - 3, "\xe2\x80\xa6") == 0);
            len -= 3;
            if (q[len - 1] == ' ' || q[len - 1] == '\n')
                len--;
            cut_short = 1;
            m = part_matches(p, q, len, &closed);
        }
        CHECK(m > 0);
        if (valid)
            CHECK(((unsigned char)p[0] & 0xC0) != 0x80 && ((unsigned char)p[m] & 0xC0) != 0x80);
        p = skip_ws_fence(text, p + m, 0);
        reopen = closed && !fence_line_at(text, p);
        if (closed)
            p = skip_ws_fence(text, p, 1);
    }
    if (!cut_short && !(max_parts > 0 && n == max_parts && !decor))
        CHECK(*skip_ws_fence(text, p, decor) == '\0');
    myna_wa_split_free(parts, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *md = calloc(1, size ? size : 1), *out, *raw;
    size_t small = size > 0 ? 1 + data[0] % 64 : 1;

    CHECK(md != NULL);
    if (size > 0)
        memcpy(md, data, size);
    out = myna_wa_from_markdown(md, size, &err);
    free(md);
    if (size > MYNA_WA_MARKDOWN_MAX_BYTES) {
        CHECK(out == NULL && err.code == MYNA_ETOOBIG);
        return 0;
    }
    CHECK(out != NULL);
    CHECK(strlen(out) <= 3 * size + 16);
    check_split(out, small, 0);
    check_split(out, MYNA_WA_TEXT_MAX_CHARS, 0);
    check_split(out, small, 1 + size % MYNA_WA_REPLY_MAX_PARTS);
    free(out);

    /* the splitter on the raw bytes, up to the first NUL */
    raw = malloc(size + 1);
    CHECK(raw != NULL);
    if (size > 0)
        memcpy(raw, data, size);
    raw[size] = '\0';
    check_split(raw, small, 0);
    free(raw);
    return 0;
}
