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
 * inside a character (tests/common/split_check.h, shared with the unit
 * test). Valid UTF-8 in (NUL bytes aside) gives valid UTF-8 out, and each
 * message of the reply as the bot sends it (4096 characters, at most
 * MYNA_WA_REPLY_MAX_PARTS) is a text body the Graph API builder takes: no
 * answer can become a request Meta would refuse. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "wa/format.h"
#include "wa/graph.h"
#include "fuzz_util.h"
#include "../common/split_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits text and traps on the first invariant the parts break. */
static void check_split(const char *text, size_t max, size_t max_parts)
{
    struct myna_err err = MYNA_ERR_INIT;
    char **parts = NULL;
    size_t n = 0;

    CHECK(myna_wa_split(text, max, max_parts, &parts, &n, &err) == MYNA_OK);
    CHECK(split_check_parts(text, max, max_parts, parts, n) == NULL);
    myna_wa_split_free(parts, n);
}

/* Every message of the reply as the bot sends it builds a Graph body. */
static void check_sendable(const char *text)
{
    struct myna_err err = MYNA_ERR_INIT;
    char **parts = NULL, *body;
    size_t n = 0;

    CHECK(myna_wa_split(text, MYNA_WA_TEXT_MAX_CHARS, MYNA_WA_REPLY_MAX_PARTS, &parts, &n,
                        &err) == MYNA_OK);
    for (size_t i = 0; i < n; i++) {
        CHECK((body = myna_graph_text_body("79161234567", parts[i], NULL, "outbox:1:2:3",
                                           &err)) != NULL);
        free(body);
    }
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
    {   /* the input without its NUL bytes, which the converter drops */
        unsigned char *clean = malloc(size + 1);
        size_t k = 0;
        CHECK(clean != NULL);
        for (size_t i = 0; i < size; i++)
            if (data[i] != 0)
                clean[k++] = data[i];
        clean[k] = '\0';
        if (utf8_ok(clean)) {
            CHECK(utf8_ok((const unsigned char *)out));
            check_sendable(out);
        }
        free(clean);
    }
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
