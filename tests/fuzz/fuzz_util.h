/* fuzz_util.h - what the fuzz harnesses share: a check that traps (so
 * libFuzzer records the input) and an independent UTF-8 validator.
 * Header-only; each harness includes it once. */
#ifndef MYNA_FUZZ_UTIL_H
#define MYNA_FUZZ_UTIL_H

#include <stdint.h>

#define CHECK(cond)                \
    do {                           \
        if (!(cond))               \
            __builtin_trap();      \
    } while (0)

/* Well-formed UTF-8 per RFC 3629, written apart from the parser's own
 * check so that a bug there is not mirrored here. */
static inline int utf8_ok(const unsigned char *s)
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

#endif
