/* test_util.c - the small helpers of util.h: phone masking (never more than
 * the last 4 digits shown, output always terminated within cap), bounded
 * integer parsing, instance-id slugs, host:port splitting, and the clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/util.h"
#include "core/banned.h"

/* ---- phone mask ---- */

static const char *mask(const char *phone, char *out, size_t cap)
{
    const char *r = myna_phone_mask(phone, out, cap);

    assert_ptr_equal(r, out);
    if (cap > 0)
        assert_non_null(memchr(out, '\0', cap));
    return r;
}

static void test_util_phone_mask_plain(void **state)
{
    char out[32];

    (void)state;
    assert_string_equal(mask("79161234567", out, sizeof(out)), "*******4567");
}

static void test_util_phone_mask_formatted(void **state)
{
    char out[32];

    (void)state;
    /* non-digits dropped, same result as the bare digits */
    assert_string_equal(mask("+7 (916) 123-45-67", out, sizeof(out)), "*******4567");
    assert_string_equal(mask("+1-202-555-0143", out, sizeof(out)), "*******0143");
}

static void test_util_phone_mask_short(void **state)
{
    char out[32];

    (void)state;
    assert_string_equal(mask("123", out, sizeof(out)), "123");
    assert_string_equal(mask("1234", out, sizeof(out)), "1234");
    assert_string_equal(mask("12345", out, sizeof(out)), "*2345");
    assert_string_equal(mask("7", out, sizeof(out)), "7");
}

static void test_util_phone_mask_null_empty(void **state)
{
    char out[32];

    (void)state;
    assert_string_equal(mask(NULL, out, sizeof(out)), "-");
    assert_string_equal(mask("", out, sizeof(out)), "-");
    assert_string_equal(mask("+() -", out, sizeof(out)), "-"); /* no digits at all */
}

static void test_util_phone_mask_small_cap(void **state)
{
    char out[8];

    (void)state;
    /* truncation keeps the masked prefix: never a digit that should be hidden */
    assert_string_equal(mask("79161234567", out, 4), "***");
    assert_string_equal(mask("79161234567", out, 1), "");
    assert_string_equal(mask("79161234567", out, 8), "*******");
    assert_string_equal(mask("79161234567", out, 2), "*");
    assert_string_equal(mask(NULL, out, 1), "");
    assert_string_equal(mask(NULL, out, 2), "-");
    memset(out, 'Z', sizeof(out));
    myna_phone_mask("123", out, 0); /* cap 0: nothing written */
    assert_int_equal(out[0], 'Z');
}

static void test_util_phone_mask_exact_cap(void **state)
{
    char out[12];

    (void)state;
    /* 11 digits need 12 bytes */
    assert_string_equal(mask("79161234567", out, 12), "*******4567");
    assert_string_equal(mask("79161234567", out, 11), "*******456");
}

static void test_util_phone_mask_never_leaks_hidden_digits(void **state)
{
    char out[64];
    const char *in = "+44 7700 900123";

    (void)state;
    for (size_t cap = 1; cap <= sizeof(out); cap++) {
        mask(in, out, cap);
        /* digits only among the last 4 of the 12 digits */
        for (size_t i = 0; out[i]; i++)
            if (i < 8)
                assert_int_equal(out[i], '*');
    }
}

/* ---- parse_i64 ---- */

static void test_util_parse_i64_ok(void **state)
{
    int64_t v = 0;

    (void)state;
    assert_int_equal(myna_parse_i64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(myna_parse_i64("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(myna_parse_i64("-17", -20, 0, &v), 0);
    assert_int_equal(v, -17);
    assert_int_equal(myna_parse_i64("007", 0, 10, &v), 0);
    assert_int_equal(v, 7);
}

static void test_util_parse_i64_bounds_inclusive(void **state)
{
    int64_t v = 0;

    (void)state;
    assert_int_equal(myna_parse_i64("1", 1, 5, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(myna_parse_i64("5", 1, 5, &v), 0);
    assert_int_equal(v, 5);
    v = 99;
    assert_int_equal(myna_parse_i64("0", 1, 5, &v), -1);
    assert_int_equal(myna_parse_i64("6", 1, 5, &v), -1);
    assert_int_equal(myna_parse_i64("-1", 0, 5, &v), -1);
    assert_int_equal(v, 99); /* untouched on failure */
}

static void test_util_parse_i64_extremes(void **state)
{
    int64_t v = 0;

    (void)state;
    assert_int_equal(myna_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(myna_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    v = 5;
    assert_int_equal(myna_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(myna_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(myna_parse_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(v, 5);
}

static void test_util_parse_i64_junk(void **state)
{
    int64_t v = 3;

    (void)state;
    assert_int_equal(myna_parse_i64("", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64(NULL, 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64("12x", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64("12 ", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64("x12", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64("1.5", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64("1e3", 0, 10000, &v), -1);
    assert_int_equal(myna_parse_i64("0x10", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64("-", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64("+", 0, 100, &v), -1);
    assert_int_equal(myna_parse_i64(" ", 0, 100, &v), -1);
    assert_int_equal(v, 3);
}

/* ---- slugs ---- */

static void test_util_is_slug_ok(void **state)
{
    (void)state;
    assert_true(myna_is_slug("a"));
    assert_true(myna_is_slug("0"));
    assert_true(myna_is_slug("acme"));
    assert_true(myna_is_slug("acme-2"));
    assert_true(myna_is_slug("a-b-c"));
    assert_true(myna_is_slug("a--b"));
    assert_true(myna_is_slug("9lives"));
}

static void test_util_is_slug_length(void **state)
{
    char s[70];

    (void)state;
    memset(s, 'a', sizeof(s));
    s[64] = '\0';
    assert_true(myna_is_slug(s));
    s[64] = 'a';
    s[65] = '\0';
    assert_false(myna_is_slug(s));
    s[1] = '\0';
    assert_true(myna_is_slug(s));
}

static void test_util_is_slug_bad(void **state)
{
    (void)state;
    assert_false(myna_is_slug(NULL));
    assert_false(myna_is_slug(""));
    assert_false(myna_is_slug("-"));
    assert_false(myna_is_slug("-acme"));
    assert_false(myna_is_slug("acme-"));
    assert_false(myna_is_slug("Acme"));
    assert_false(myna_is_slug("ACME"));
    assert_false(myna_is_slug("ac_me"));
    assert_false(myna_is_slug("ac.me"));
    assert_false(myna_is_slug("ac me"));
    assert_false(myna_is_slug("../x"));
    assert_false(myna_is_slug("ac/me"));
    assert_false(myna_is_slug("acm\xc3\xa9"));
}

/* ---- host:port ---- */

static void test_util_split_hostport_v4(void **state)
{
    char host[64];
    int port = -1;

    (void)state;
    assert_int_equal(myna_split_hostport("127.0.0.1:8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(myna_split_hostport("localhost:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 65535);
    assert_int_equal(myna_split_hostport("0.0.0.0:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 0);
}

static void test_util_split_hostport_v6(void **state)
{
    char host[64];
    int port = -1;

    (void)state;
    assert_int_equal(myna_split_hostport("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(myna_split_hostport("[fe80::1:2]:443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "fe80::1:2");
    assert_int_equal(port, 443);
}

static void test_util_split_hostport_bad(void **state)
{
    char host[64];
    int port = 1234;

    (void)state;
    assert_int_equal(myna_split_hostport("localhost:65536", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("noport", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport(":80", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("host:", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("host:-1", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("host:80x", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("[::1]", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("[::1]80", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("[]:80", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("[::1:80", host, sizeof(host), &port), -1);
    /* an IPv6 address without brackets: its last group is no port */
    assert_int_equal(myna_split_hostport("::1", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("fe80::1:8080", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("a:b:80", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport("", host, sizeof(host), &port), -1);
    assert_int_equal(myna_split_hostport(NULL, host, sizeof(host), &port), -1);
    assert_int_equal(port, 1234); /* untouched on failure */
}

static void test_util_split_hostport_host_cap(void **state)
{
    char host[16];
    int port = 0;

    (void)state;
    memset(host, 'Z', sizeof(host));
    /* "localhost" is 9 bytes: needs cap 10 */
    assert_int_equal(myna_split_hostport("localhost:80", host, 9, &port), -1);
    assert_int_equal(host[0], 'Z'); /* nothing written */
    assert_int_equal(myna_split_hostport("localhost:80", host, 10, &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(host[10], 'Z');
    assert_int_equal(port, 80);
}

/* ---- clocks ---- */

/* The plain definition, one sequence at a time, to check the fast one by. */
static size_t utf8_prefix_ref(const unsigned char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n && (k = myna_utf8_seq(s + i, n - i)) != 0)
        i += k;
    return i;
}

static void test_util_utf8_prefix(void **state)
{
    static const char *const seqs[] = { "a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
    static const char *const bad[] = { "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                       "\xff", "\xe2\x82" };
    unsigned char buf[64];
    uint64_t x = 0x9E3779B97F4A7C15u;

    (void)state;
    memset(buf, 'a', sizeof(buf));
    for (size_t n = 0; n <= sizeof(buf); n++)
        assert_int_equal(myna_utf8_prefix(buf, n), n);
    /* a bad byte at every offset: the fast path must stop on it */
    for (size_t at = 0; at < 40; at++)
        for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
            size_t blen = strlen(bad[b]);
            memset(buf, 'a', sizeof(buf));
            memcpy(buf + at, bad[b], blen);
            assert_int_equal(myna_utf8_prefix(buf, 40 + blen), at);
        }
    /* good sequences across every 8-byte boundary */
    for (size_t at = 0; at < 40; at++)
        for (size_t q = 0; q < sizeof(seqs) / sizeof(seqs[0]); q++) {
            memset(buf, 'a', sizeof(buf));
            memcpy(buf + at, seqs[q], strlen(seqs[q]));
            assert_int_equal(myna_utf8_prefix(buf, 48), 48);
            /* cut inside the sequence: the prefix ends where it starts */
            if (strlen(seqs[q]) > 1)
                assert_int_equal(myna_utf8_prefix(buf, at + 1), at);
        }
    /* random bytes, mostly ASCII: the same answer as one sequence at a time */
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 60);
        for (size_t i = 0; i < n; i++) {
            x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
            buf[i] = (x >> 56) < 230 ? (unsigned char)('a' + (x >> 40) % 26)
                                      : (unsigned char)(x >> 24);
        }
        assert_int_equal(myna_utf8_prefix(buf, n), utf8_prefix_ref(buf, n));
    }
}

/* ---- sentence ends ---- */

static int ends(const char *s)
{
    return myna_ends_sentence(s, strlen(s));
}

static void test_util_ends_sentence_marks(void **state)
{
    static const char *const marks[] = {
        ".", "!", "?", "\xE2\x80\xA6",         /* ellipsis */
        "\xD8\x9F", "\xDB\x94",               /* Arabic ?, Urdu full stop */
        "\xE0\xA5\xA4", "\xE0\xA5\xA5",       /* danda, double danda */
        "\xD6\x89", "\xE1\x8D\xA2", "\xCD\xBE", /* Armenian, Ethiopic, Greek ? */
    };
    static const char *const tight[] = { "\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F" };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        snprintf(buf, sizeof(buf), "word%s", marks[i]);
        assert_int_equal(ends(buf), MYNA_SENTENCE_END);
        assert_int_equal(ends(marks[i]), MYNA_SENTENCE_END);
        snprintf(buf, sizeof(buf), "%sword", marks[i]);   /* not at the end */
        assert_int_equal(ends(buf), 0);
    }
    for (size_t i = 0; i < sizeof(tight) / sizeof(tight[0]); i++) {
        snprintf(buf, sizeof(buf), "\xE5\xA5\xBD%s", tight[i]);   /* 好。 */
        assert_int_equal(ends(buf), MYNA_SENTENCE_TIGHT);
    }
    assert_int_equal(ends(""), 0);
    assert_int_equal(myna_ends_sentence("Yes. No", 4), MYNA_SENTENCE_END);
    assert_int_equal(ends("word"), 0);
    assert_int_equal(ends("3.5"), 0);
    assert_int_equal(ends("e.g"), 0);
    assert_int_equal(ends("a, b;"), 0);   /* an ASCII semicolon is no Greek ? */
    assert_int_equal(ends("a:"), 0);      /* nor a colon an Armenian full stop */
    assert_int_equal(ends("\xE2\x80\xA5"), 0);   /* two dots, U+2025 */
    /* the end of a cut character is no mark */
    assert_int_equal(ends("\xE3\x80"), 0);
    assert_int_equal(ends("\x82"), 0);
}

static void test_util_ends_sentence_closers(void **state)
{
    static const char *const closers[] = {
        "*", "_", "~", "`", "```", "\"", "'", ")", "]",
        "\xE2\x80\x9D", "\xE2\x80\x99", "\xE2\x80\x9C", "\xC2\xBB", "\xC2\xAB", "\xE2\x80\xBA",
        "\xEF\xBC\x82", "\xEF\xBC\x87", "\xEF\xBC\x89", "\xEF\xBC\xBD",
        "\xE3\x80\x8D", "\xE3\x80\x8F", "\xE3\x80\x8B", "\xE3\x80\x91",
    };
    char buf[48];

    (void)state;
    for (size_t i = 0; i < sizeof(closers) / sizeof(closers[0]); i++) {
        snprintf(buf, sizeof(buf), "Done.%s", closers[i]);
        assert_int_equal(ends(buf), MYNA_SENTENCE_END);
        snprintf(buf, sizeof(buf), "Done%s", closers[i]);   /* no mark before it */
        assert_int_equal(ends(buf), 0);
        snprintf(buf, sizeof(buf), "\xE5\xA5\xBD\xE3\x80\x82%s", closers[i]);
        /* in Chinese “ opens a quote: after 。 it starts the next sentence */
        assert_int_equal(ends(buf), strcmp(closers[i], "\xE2\x80\x9C") == 0
                                        ? 0 : MYNA_SENTENCE_TIGHT);
    }
    assert_int_equal(ends("\xE5\xA5\xBD\xE3\x80\x82\xE2\x80\x98"), 0);   /* 好。‘ */
    assert_int_equal(ends("\xE5\xA5\xBD\xE3\x80\x82\xE2\x80\x9D"), MYNA_SENTENCE_TIGHT);
    /* German closes with them after a spaced mark: „Ja.“ */
    assert_int_equal(ends("\xE2\x80\x9EJa.\xE2\x80\x9C"), MYNA_SENTENCE_END);
    assert_int_equal(ends("*\xD0\x93\xD0\xBE\xD1\x82\xD0\xBE\xD0\xB2\xD0\xBE.*"),
                     MYNA_SENTENCE_END);                            /* *Готово.* */
    assert_int_equal(ends("\xC2\xAB\xD0\x94\xD0\xB0.\xC2\xBB"), MYNA_SENTENCE_END); /* «Да.» */
    assert_int_equal(ends("**1500 \xE2\x82\xBD.**"), MYNA_SENTENCE_END);   /* **1500 ₽.** */
    assert_int_equal(ends("(see \"above.\")"), MYNA_SENTENCE_END);
    assert_int_equal(ends("_Done!_"), MYNA_SENTENCE_END);
    assert_int_equal(ends("(3.5)"), 0);
    assert_int_equal(ends("Done. *"), 0);   /* a space between: the mark is behind */
    /* a run of closers longer than any sentence ends with is none */
    assert_int_equal(ends("Done.********"), MYNA_SENTENCE_END);
    assert_int_equal(ends("Done.*********"), 0);
}

static void test_util_utf8_cut(void **state)
{
    static const char mixed[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";  /* a é € 😀 z */
    static const size_t want[] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11, 11, 11 };

    (void)state;
    for (size_t max = 0; max < sizeof(want) / sizeof(want[0]); max++)
        assert_int_equal(myna_utf8_cut(mixed, max), want[max]);
    assert_int_equal(myna_utf8_cut("", 0), 0);
    assert_int_equal(myna_utf8_cut("", 5), 0);
    assert_int_equal(myna_utf8_cut("abc", 3), 3);
    assert_int_equal(myna_utf8_cut("abc", (size_t)-1), 3);
    /* bytes that start no sequence count one each; a truncated sequence at
     * the end of the string is such bytes, not a character to keep out */
    assert_int_equal(myna_utf8_cut("a\xff\x80" "b", 3), 3);
    assert_int_equal(myna_utf8_cut("ab\xe2\x82", 3), 3);
    assert_int_equal(myna_utf8_cut("ab\xe2\x82\xac", 3), 2);
    assert_int_equal(myna_utf8_cut("ab\xe2\x82\xac", 4), 2);
    assert_int_equal(myna_utf8_cut("ab\xe2\x82\xac", 5), 5);
}

static void test_util_mono_non_decreasing(void **state)
{
    int64_t prev_us = myna_mono_us(), prev_ms = myna_mono_ms();

    (void)state;
    assert_true(prev_us > 0);
    for (int i = 0; i < 100000; i++) {
        int64_t us = myna_mono_us(), ms = myna_mono_ms();
        assert_true(us >= prev_us);
        assert_true(ms >= prev_ms);
        prev_us = us;
        prev_ms = ms;
    }
}

static void test_util_mono_advances(void **state)
{
    struct timespec d = { 0, 20 * 1000 * 1000 };
    int64_t us0 = myna_mono_us(), ms0 = myna_mono_ms(), us1, ms1;

    (void)state;
    nanosleep(&d, NULL);
    ms1 = myna_mono_ms();
    us1 = myna_mono_us();
    assert_true(us1 - us0 >= 20000);
    assert_true(us1 - us0 < 5 * 1000 * 1000);
    assert_true(ms1 - ms0 >= 19); /* ms truncation */
    /* ms and us are one clock: us read between two ms reads lies between
     * them (a fixed bound would fail whenever the thread is preempted) */
    assert_true(ms1 <= us1 / 1000 && us1 / 1000 <= myna_mono_ms());
}

static void test_util_wall_ms_is_epoch(void **state)
{
    int64_t before = (int64_t)time(NULL) * 1000;
    int64_t w = myna_wall_ms();
    int64_t after = ((int64_t)time(NULL) + 1) * 1000;

    (void)state;
    assert_true(w >= before && w <= after);
    assert_true(w > INT64_C(1600000000000)); /* after 2020 */
}

/* What a terminal obeys: C0, DEL and C1 (U+0080-U+009F in UTF-8), and no
 * more: U+00A0 and letters are shown. */
static void test_util_control_len(void **state)
{
    (void)state;
    assert_int_equal(myna_control_len((const unsigned char *)"\x1b[31m", 5), 1);
    assert_int_equal(myna_control_len((const unsigned char *)"\n", 1), 1);
    assert_int_equal(myna_control_len((const unsigned char *)"\x7f", 1), 1);
    assert_int_equal(myna_control_len((const unsigned char *)"\xc2\x9b", 2), 2);
    assert_int_equal(myna_control_len((const unsigned char *)"\xc2\x80", 2), 2);
    assert_int_equal(myna_control_len((const unsigned char *)"\xc2\xa0", 2), 0);
    assert_int_equal(myna_control_len((const unsigned char *)"\xc2\x9b", 1), 0);  /* cut */
    assert_int_equal(myna_control_len((const unsigned char *)"a", 1), 0);
    assert_int_equal(myna_control_len((const unsigned char *)"\xd0\x96", 2), 0);
}

/* A well-formed sequence's code point, for every length. */
static void test_util_text_scrub(void **state)
{
    char s[32];

    (void)state;
    snprintf(s, sizeof(s), "key sk-abc1 and sk-abc1.");
    myna_text_scrub(s, sizeof(s), "sk-abc1", "[key]");
    assert_string_equal(s, "key [key] and [key].");
    /* a secret found again inside its own mark is not replaced forever */
    snprintf(s, sizeof(s), "a oken b");
    myna_text_scrub(s, sizeof(s), "oken", "[token]");
    assert_string_equal(s, "a [token] b");
    /* a longer mark pushes the end out: cut, the secret gone */
    snprintf(s, sizeof(s), "01234567890123456789 abcd xyz");
    myna_text_scrub(s, sizeof(s), "abcd", "[api_key]");
    assert_string_equal(s, "01234567890123456789 [api_key] ");
    /* no room for the whole mark: the text ends before the secret */
    snprintf(s, sizeof(s), "0123456789012345678901 abcd xyz");
    myna_text_scrub(s, sizeof(s), "abcd", "[api_key]");
    assert_string_equal(s, "0123456789012345678901 ");
    /* a full text that ends in the start of the secret: that start goes */
    snprintf(s, sizeof(s), "0123456789012345678901234 sk-ab");
    myna_text_scrub(s, sizeof(s), "sk-abcdef", "[key]");
    assert_string_equal(s, "0123456789012345678901234 [key]");
    /* too short to tell: left alone */
    snprintf(s, sizeof(s), "abc");
    myna_text_scrub(s, sizeof(s), "abc", "[key]");
    assert_string_equal(s, "abc");
}

static void test_util_utf8_decode(void **state)
{
    static const char *const seqs[] = { "A", "\xc3\xa9", "\xd0\x96", "\xe2\x80\xa6",
                                        "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf" };
    static const uint32_t cps[] = { 0x41, 0xe9, 0x416, 0x2026, 0x1f600, 0x10ffff };

    (void)state;
    for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
        const unsigned char *s = (const unsigned char *)seqs[i];
        size_t k = myna_utf8_seq(s, strlen(seqs[i]));
        assert_int_equal(k, strlen(seqs[i]));
        assert_int_equal(myna_utf8_decode(s, k), cps[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_util_control_len),
        cmocka_unit_test(test_util_utf8_decode),
        cmocka_unit_test(test_util_text_scrub),
        cmocka_unit_test(test_util_phone_mask_plain),
        cmocka_unit_test(test_util_phone_mask_formatted),
        cmocka_unit_test(test_util_phone_mask_short),
        cmocka_unit_test(test_util_phone_mask_null_empty),
        cmocka_unit_test(test_util_phone_mask_small_cap),
        cmocka_unit_test(test_util_phone_mask_exact_cap),
        cmocka_unit_test(test_util_phone_mask_never_leaks_hidden_digits),
        cmocka_unit_test(test_util_parse_i64_ok),
        cmocka_unit_test(test_util_parse_i64_bounds_inclusive),
        cmocka_unit_test(test_util_parse_i64_extremes),
        cmocka_unit_test(test_util_parse_i64_junk),
        cmocka_unit_test(test_util_is_slug_ok),
        cmocka_unit_test(test_util_is_slug_length),
        cmocka_unit_test(test_util_is_slug_bad),
        cmocka_unit_test(test_util_split_hostport_v4),
        cmocka_unit_test(test_util_split_hostport_v6),
        cmocka_unit_test(test_util_split_hostport_bad),
        cmocka_unit_test(test_util_split_hostport_host_cap),
        cmocka_unit_test(test_util_utf8_prefix),
        cmocka_unit_test(test_util_utf8_cut),
        cmocka_unit_test(test_util_ends_sentence_marks),
        cmocka_unit_test(test_util_ends_sentence_closers),
        cmocka_unit_test(test_util_mono_non_decreasing),
        cmocka_unit_test(test_util_mono_advances),
        cmocka_unit_test(test_util_wall_ms_is_epoch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
