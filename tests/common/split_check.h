/* split_check.h - the invariants of myna_wa_split (wa/format.h), checked
 * from outside the splitter: every part non-empty, trimmed and within max
 * characters, at most max_parts parts, and the parts in order the text
 * itself with only whitespace left out at the cuts and the splitter's marks
 * added (a fence closed at a cut and reopened in the next part, the "…" of
 * a last part cut short); for valid UTF-8 no cut inside a character; no
 * part for text that shows nothing (myna_wa_is_blank).
 * Header-only, shared by the unit test (tests/unit/wa/test_format.c) and the
 * fuzz harness (tests/fuzz/fuzz_format.c): it never fails by itself, it
 * describes the first violation and each caller fails its own way. */
#ifndef MYNA_TEST_SPLIT_CHECK_H
#define MYNA_TEST_SPLIT_CHECK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "wa/format.h"

static inline int split_check_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Valid UTF-8 per RFC 3629 (no overlongs, surrogates, or past U+10FFFF),
 * as the splitter has it: any other byte counts as one character there, so
 * a cut may fall next to it. */
static inline int split_check_utf8(const unsigned char *s, size_t n)
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

/* Code points of valid UTF-8: bytes that are not continuation bytes. For
 * any text at most the characters the splitter counts (a stray
 * continuation byte counts one there). */
static inline size_t split_check_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Whether the line at s is a code fence as the converter writes it (s at
 * its start or in its indentation). */
static inline int split_check_fence_line(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncmp(s, "```", 3) != 0)
        return 0;
    for (s += 3; *s != '\0' && *s != '\n'; s++)
        if (!split_check_ws((unsigned char)*s))
            return 0;
    return 1;
}

/* split_check_fence_line at p in text, where p must start its line: a
 * "```" within a line of text is no fence. */
static inline int split_check_fence_at(const char *text, const char *p)
{
    const char *k = p;

    while (k > text && (k[-1] == ' ' || k[-1] == '\t'))
        k--;
    return (k == text || k[-1] == '\n') && split_check_fence_line(p);
}

/* Past the whitespace; then, when skip_fence, past a fence line there and
 * the whitespace after it. */
static inline const char *split_check_skip(const char *text, const char *p, int skip_fence)
{
    while (*p != '\0' && split_check_ws((unsigned char)*p))
        p++;
    if (skip_fence && split_check_fence_at(text, p))
        for (p += strcspn(p, "\n"); *p != '\0' && split_check_ws((unsigned char)*p); p++) {
        }
    return p;
}

/* How much of the text at p part q[0..len) is: all of it, or all but the
 * "\n```" closing a fence it was cut in (*closed); 0 when neither. */
static inline size_t split_check_matches(const char *p, const char *q, size_t len, int *closed)
{
    int close = len > 4 && memcmp(q + len - 4, "\n```", 4) == 0;

    *closed = 0;
    /* a "```" that starts a line of code is not the fence's own close */
    if (strncmp(p, q, len) == 0 && !(close && !split_check_fence_line(p + len - 3)))
        return len;
    if (close && strncmp(p, q, len - 4) == 0) {
        *closed = 1;
        return len - 4;
    }
    return 0;
}

/* The description split_check_parts returns, in a buffer of its own. */
__attribute__((format(printf, 1, 2)))
static inline const char *split_check_why(const char *fmt, ...)
{
    static char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return why;
}

/* Whether the n parts myna_wa_split gave for text, max and max_parts hold
 * every invariant: NULL when they do, else a short description of the first
 * violation (valid until the next call). The parts are the text but for
 * the marks (format.h): a fence closed at the end of a part and reopened at
 * the start of the next (a line closing it right at the cut skipped), an
 * empty fence at the end dropped, and the ellipsis of a last part that
 * leaves text out. */
static inline const char *split_check_parts(const char *text, size_t max, size_t max_parts,
                                            char **parts, size_t n)
{
    int valid = split_check_utf8((const unsigned char *)text, strlen(text));
    int decor = max >= MYNA_WA_SPLIT_DECOR_MIN, reopen = 0, closed = 0, cut_short = 0;
    const char *p = text, *rest;
    size_t i;

    if ((n == 0) != (parts == NULL))
        return split_check_why("%zu parts but parts %s NULL", n, parts == NULL ? "is" : "is not");
    if (n == 0 && myna_wa_is_blank(text))
        return NULL;  /* it shows nothing: no part */
    if (max_parts > 0 && n > max_parts)
        return split_check_why("%zu parts, max_parts %zu", n, max_parts);
    for (i = 0; i < n; i++) {
        const char *q = parts[i];
        size_t len = strlen(q), m;

        if (len == 0)
            return split_check_why("part %zu is empty", i);
        if (split_check_ws((unsigned char)q[0]) || split_check_ws((unsigned char)q[len - 1]))
            return split_check_why("part %zu '%.60s' is not trimmed", i, parts[i]);
        if (split_check_chars(q) > max)
            return split_check_why("part %zu has %zu characters, max %zu", i,
                                   split_check_chars(q), max);
        p = split_check_skip(text, p, 0);
        if (reopen) {
            if (strncmp(q, "```\n", 4) != 0)
                return split_check_why("part %zu '%.60s' does not reopen the fence", i,
                                       parts[i]);
            q += 4;
            len -= 4;
        }
        m = split_check_matches(p, q, len, &closed);
        rest = m > 0 ? split_check_skip(text, split_check_skip(text, p + m, closed), decor) : p;
        if (decor && i + 1 == max_parts && !(m > 0 && *rest == '\0')) {
            /* cut short: the text, then "…", " …" or "\n…" */
            if (!(len > 3 && strcmp(q + len - 3, "\xe2\x80\xa6") == 0))
                return split_check_why("part %zu '%.60s' leaves text out without a mark", i,
                                       parts[i]);
            len -= 3;
            if (q[len - 1] == ' ' || q[len - 1] == '\n')
                len--;
            cut_short = 1;
            m = split_check_matches(p, q, len, &closed);
        }
        if (m == 0)
            return split_check_why("part %zu '%.60s' is not the text at '%.40s'", i, parts[i],
                                   p);
        if (valid && (((unsigned char)p[0] & 0xC0) == 0x80 || ((unsigned char)p[m] & 0xC0) == 0x80))
            return split_check_why("part %zu is cut inside a character", i);
        p = split_check_skip(text, p + m, 0);
        reopen = closed && !split_check_fence_at(text, p);
        if (closed)
            p = split_check_skip(text, p, 1);
    }
    if (!cut_short && !(max_parts > 0 && n == max_parts && !decor)
        && *split_check_skip(text, p, decor) != '\0')
        return split_check_why("text left out after %zu parts: '%.40s'", n, p);
    return NULL;
}

#endif
