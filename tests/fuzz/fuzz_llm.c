/* fuzz_llm.c - libFuzzer harness for myna_llm_parse_response.
 *
 * Any bytes go in (an LLM server, or whatever answers in its place, is not
 * trusted); the parser must return a defined code. On success the text must
 * be a terminated, valid UTF-8 string no longer than the repair can make it
 * and the token counts non-negative; on failure every OUT parameter must be
 * cleared and err complete. The arena is bounded like the client's and freed
 * every run, so cJSON memory that escapes it shows as a LeakSanitizer report. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ai/llm.h"
#include "core/arena.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                \
    do {                           \
        if (!(cond))               \
            __builtin_trap();      \
    } while (0)

/* Well-formed UTF-8 per RFC 3629, written apart from the parser's own
 * check so that a bug there is not mirrored here. */
static int utf8_ok(const unsigned char *s)
{
    while (*s != '\0') {
        uint32_t cp;
        int n, i;

        if (s[0] < 0x80) {
            s++;
            continue;
        }
        if ((s[0] & 0xE0) == 0xC0) {
            n = 1;
            cp = s[0] & 0x1F;
        } else if ((s[0] & 0xF0) == 0xE0) {
            n = 2;
            cp = s[0] & 0x0F;
        } else if ((s[0] & 0xF8) == 0xF0) {
            n = 3;
            cp = s[0] & 0x07;
        } else {
            return 0;
        }
        for (i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_arena a = MYNA_ARENA_INIT(40u << 20);
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = (const char *)data;   /* must be overwritten */
    int pt = -1, ct = -1;
    int rc = myna_llm_parse_response((const char *)data, size, &a, &text, &pt, &ct, &err);

    switch (rc) {
    case MYNA_OK:
        CHECK(text != NULL);
        CHECK(utf8_ok((const unsigned char *)text));
        /* each byte of the body becomes at most one U+FFFD (3 bytes) */
        CHECK(strlen(text) <= 3 * size);
        CHECK(pt >= 0 && ct >= 0);
        CHECK(err.code == 0);
        break;
    case MYNA_EPARSE:
    case MYNA_ENOMEM:
        CHECK(err.code == rc && err.msg[0] != '\0' && strlen(err.msg) < sizeof(err.msg));
        CHECK(text == NULL && pt == 0 && ct == 0);
        break;
    default:
        CHECK(0);
    }
    myna_arena_free(&a);
    return 0;
}
