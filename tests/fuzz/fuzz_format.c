/* fuzz_format.c - libFuzzer harness for myna_wa_from_markdown and
 * myna_wa_split.
 *
 * The input is converted from an exact-size copy (ASan sees any read past
 * len); the result must be a NUL-terminated string no longer than the
 * converter's bound. The result and the raw input are then split at a small
 * size taken from the first byte and at 4096: every part must be non-empty,
 * trimmed, within max_chars, and the parts must be the text in order with
 * only whitespace left out between them; for valid UTF-8 no cut may fall
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

static void check_split(const char *text, size_t max)
{
    struct myna_err err = MYNA_ERR_INIT;
    int valid = utf8_valid((const unsigned char *)text, strlen(text));
    const char *p = text;
    char **parts = NULL;
    size_t n = 0, i;

    CHECK(myna_wa_split(text, max, 0, &parts, &n, &err) == MYNA_OK);
    CHECK((n == 0) == (parts == NULL));
    for (i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);

        CHECK(len > 0);
        CHECK(!is_ws((unsigned char)parts[i][0]) && !is_ws((unsigned char)parts[i][len - 1]));
        CHECK(min_chars(parts[i]) <= max);
        while (*p != '\0' && is_ws((unsigned char)*p))
            p++;
        CHECK(strncmp(p, parts[i], len) == 0);
        if (valid)
            CHECK(((unsigned char)p[0] & 0xC0) != 0x80 && ((unsigned char)p[len] & 0xC0) != 0x80);
        p += len;
    }
    while (*p != '\0' && is_ws((unsigned char)*p))
        p++;
    CHECK(*p == '\0');
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
    check_split(out, small);
    check_split(out, MYNA_WA_TEXT_MAX_CHARS);
    free(out);

    /* the splitter on the raw bytes, up to the first NUL */
    raw = malloc(size + 1);
    CHECK(raw != NULL);
    if (size > 0)
        memcpy(raw, data, size);
    raw[size] = '\0';
    check_split(raw, small);
    free(raw);
    return 0;
}
