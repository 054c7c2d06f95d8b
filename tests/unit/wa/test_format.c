/* test_format.c - Markdown to WhatsApp text (every rule of format.h, Russian
 * and emoji, nesting, unbalanced markers, hostile bytes) and the splitting
 * of long texts (cut preferences, 4096-character boundaries with multi-byte
 * characters, and the invariants: no part over max_chars code points, no
 * cut inside a UTF-8 sequence, the parts give the text back up to the
 * whitespace at the cuts; tests/common/split_check.h, shared with the fuzz
 * harness). Inputs are exact-size copies without a NUL, so ASan sees any
 * read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "wa/format.h"
#include "../../common/split_check.h"

/* ---- helpers ------------------------------------------------------------ */

static char *convert_n(const char *md, size_t len)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *copy = malloc(len ? len : 1), *out;

    assert_non_null(copy);
    memcpy(copy, md, len);
    out = myna_wa_from_markdown(copy, len, &err);
    free(copy);
    if (out == NULL)
        fail_msg("convert: %s", err.msg);
    return out;
}

static void check_md(const char *md, const char *want)
{
    char *out = convert_n(md, strlen(md));

    if (strcmp(out, want) != 0)
        fail_msg("markdown:\n%s\n--- got:\n%s\n--- want:\n%s", md, out, want);
    free(out);
}

/* Plain text is left alone, and converting again changes nothing. */
static void check_plain(const char *text)
{
    char *once = convert_n(text, strlen(text)), *twice;

    assert_string_equal(once, text);
    twice = convert_n(once, strlen(once));
    assert_string_equal(twice, text);
    free(once);
    free(twice);
}

/* Splits text; fails on the first invariant the parts break. */
static char **split_max(const char *text, size_t max, size_t max_parts, size_t *n)
{
    struct myna_err err = MYNA_ERR_INIT;
    char **parts = NULL;
    const char *why;

    if (myna_wa_split(text, max, max_parts, &parts, n, &err) != MYNA_OK)
        fail_msg("split: %s", err.msg);
    why = split_check_parts(text, max, max_parts, parts, *n);
    if (why != NULL)
        fail_msg("split of '%.60s' at max %zu, max_parts %zu: %s", text, max, max_parts, why);
    return parts;
}

static char **split_ok(const char *text, size_t max, size_t *n)
{
    return split_max(text, max, 0, n);
}

/* Splits into at most max_parts and compares with the want[] parts
 * (NULL-terminated). */
static void check_split_max(const char *text, size_t max, size_t max_parts,
                            const char *const *want)
{
    size_t n, i, nwant = 0;
    char **parts = split_max(text, max, max_parts, &n);

    while (want[nwant] != NULL)
        nwant++;
    for (i = 0; i < n && i < nwant; i++)
        if (strcmp(parts[i], want[i]) != 0)
            fail_msg("part %zu: got '%s', want '%s'", i, parts[i], want[i]);
    assert_int_equal(n, nwant);
    myna_wa_split_free(parts, n);
}

static void check_split(const char *text, size_t max, const char *const *want)
{
    check_split_max(text, max, 0, want);
}

/* A string of count copies of unit. */
static char *repeat(const char *unit, size_t count)
{
    size_t ul = strlen(unit), i;
    char *s = malloc(ul * count + 1);

    assert_non_null(s);
    for (i = 0; i < count; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * count] = '\0';
    return s;
}

/* ---- emphasis ----------------------------------------------------------- */

static void test_bold(void **state)
{
    (void)state;
    check_md("**bold**", "*bold*");
    check_md("__bold__", "*bold*");
    check_md("a **b c** d", "a *b c* d");
    check_md("**Цена:** 1500 ₽", "*Цена:* 1500 ₽");
    check_md("**два** и **три**", "*два* и *три*");
    check_md("Итого:**500**руб", "Итого:*500*руб");
}

static void test_italic(void **state)
{
    (void)state;
    check_md("*italic*", "_italic_");
    check_md("an *italic* word", "an _italic_ word");
    check_md("_already_ whatsapp", "_already_ whatsapp");
    check_md("*курсив* и *ещё*", "_курсив_ и _ещё_");
    check_md("***both***", "*_both_*");
}

static void test_strike(void **state)
{
    (void)state;
    check_md("~~old~~ new", "~old~ new");
    check_md("~~1000 ₽~~ 800 ₽", "~1000 ₽~ 800 ₽");
    check_md("~single~ stays", "~single~ stays");
}

static void test_nested(void **state)
{
    (void)state;
    check_md("**bold with *italic* inside**", "*bold with _italic_ inside*");
    check_md("*italic with **bold** inside*", "_italic with *bold* inside_");
    check_md("~~**both**~~", "~*both*~");
    check_md("**[link](https://x.io)**", "*link (https://x.io)*");
    check_md("[**bold** text](https://x.io)", "*bold* text (https://x.io)");
    check_md("**~~*deep*~~**", "*~_deep_~*");
}

static void test_emoji_and_russian(void **state)
{
    (void)state;
    check_md("**🔥 Акция недели**", "*🔥 Акция недели*");
    check_md("*Скидка* 20% 🎉", "_Скидка_ 20% 🎉");
    check_md("- 💈 Стрижка — **1500 ₽**", "- 💈 Стрижка — *1500 ₽*");
    check_md("👨‍👩‍👧 **семья**", "👨‍👩‍👧 *семья*");
}

static void test_unbalanced_left_alone(void **state)
{
    (void)state;
    check_md("**open only", "**open only");
    check_md("*open only", "*open only");
    check_md("~~open only", "~~open only");
    check_md("close only**", "close only**");
    check_md("2*3*4 = 24", "2*3*4 = 24");
    check_md("a * b * c", "a * b * c");
    check_md("** spaced **", "** spaced **");
    check_md("snake_case_name and __x", "snake_case_name and __x");
    check_md("a **** b", "a **** b");
    check_md("[text](no close", "[text](no close");
    check_md("[text] (not a link)", "[text] (not a link)");
    check_md("[[[[", "[[[[");
    check_md("`open code", "`open code");
    check_md("**bold\nnext** line", "**bold\nnext** line");
}

static void test_escapes(void **state)
{
    (void)state;
    check_md("\\*not italic\\*", "*not italic*");
    check_md("1\\. not a list", "1. not a list");
    check_md("C:\\Users\\me", "C:\\Users\\me");
    check_md("\\[x\\](y)", "[x](y)");
}

/* ---- headings ----------------------------------------------------------- */

static void test_headings(void **state)
{
    (void)state;
    check_md("# One", "*One*");
    check_md("## Two", "*Two*");
    check_md("### Three", "*Three*");
    check_md("#### Four", "*Four*");
    check_md("##### Five", "*Five*");
    check_md("###### Six", "*Six*");
    check_md("####### Seven", "####### Seven");
    check_md("## Closed ##", "*Closed*");
    check_md("# C# tips", "*C# tips*");
    check_md("#hashtag", "#hashtag");
    check_md("## **Already bold**", "*Already bold*");
    check_md("## Часы *работы*", "*Часы _работы_*");
    check_md("# Прайс\nСтрижка", "*Прайс*\nСтрижка");
    check_md("text\n# Heading\nmore", "text\n*Heading*\nmore");
    check_md("a\n#\nb", "a\n\nb");
    check_md("not # a heading", "not # a heading");
}

/* ---- links and images --------------------------------------------------- */

static void test_links(void **state)
{
    (void)state;
    check_md("[Запись](https://barber.ru/book)", "Запись (https://barber.ru/book)");
    check_md("[https://x.io](https://x.io)", "https://x.io");
    check_md("[x.io](https://x.io/)", "https://x.io/");
    check_md("[mail](mailto:a@b.c)", "mail (mailto:a@b.c)");
    check_md("[](https://x.io)", "https://x.io");
    check_md("[text]()", "text");
    check_md("[Wiki](https://en.wikipedia.org/wiki/C_(language))",
             "Wiki (https://en.wikipedia.org/wiki/C_(language))");
    check_md("[site](https://x.io \"Title\")", "site (https://x.io)");
    check_md("[site](<https://x.io>)", "site (https://x.io)");
    check_md("see <https://x.io/a> now", "see https://x.io/a now");
    check_md("a <b> c", "a <b> c");
    check_md("[a](u1) and [b](u2)", "a (u1) and b (u2)");
    /* openers before one ']' share its destination, parsed once */
    check_md("[[a](u)", "[a (u)");
    check_md("[[[x](https://x.io)", "[[x (https://x.io)");
    check_md("[x](u \"t) [y](v)", "[x](u \"t) y (v)");
    check_md("[a](<u [b](<v>)", "[a](<u b (v)");
    check_md("[a](u) [[b](v", "a (u) [[b](v");
}

/* A bare URL is an address, not Markdown: its underscores, asterisks and
 * tildes stay as they are, or the link would lead elsewhere. */
static void test_bare_urls_verbatim(void **state)
{
    (void)state;
    check_md("See https://docs.python.org/3/reference/datamodel.html#object.__init__ now",
             "See https://docs.python.org/3/reference/datamodel.html#object.__init__ now");
    check_md("go to https://site.com/__a__/__b__", "go to https://site.com/__a__/__b__");
    check_md("https://example.com/*foo*/bar", "https://example.com/*foo*/bar");
    check_md("http://x.io/~~old~~ and **bold**", "http://x.io/~~old~~ and *bold*");
    check_md("**https://x.io/__a__**", "*https://x.io/__a__*");
    check_md("# Docs: https://x.io/__init__", "*Docs: https://x.io/__init__*");
    check_md("| a | https://x.io/__b__ |", "a - https://x.io/__b__");
    check_md("https://x.io/a\\_b\\_c", "https://x.io/a_b_c");   /* escapes still go */
    check_md("`https://x.io/__a__` __b__", "`https://x.io/__a__` *b*");
    /* not a URL: the word rules apply as before */
    check_md("nothttps://x.io/ __b__", "nothttps://x.io/ *b*");
}

static void test_images(void **state)
{
    (void)state;
    check_md("![Схема проезда](https://x.io/map.png)", "Схема проезда (https://x.io/map.png)");
    check_md("![](https://x.io/p.png)", "https://x.io/p.png");
    check_md("Wow! ![cat](c.png)!", "Wow! cat (c.png)!");
    check_md("![a](u ![b](v)", "![a](u b (v)");
    check_md("![[a](u)", "[a (u)");
}

/* ---- lists and quotes --------------------------------------------------- */

static void test_bullets(void **state)
{
    (void)state;
    check_md("- one\n- two", "- one\n- two");
    check_md("* one\n* two", "- one\n- two");
    check_md("+ one\n+ two", "- one\n- two");
    check_md("- top\n  * nested\n    + deeper", "- top\n  - nested\n    - deeper");
    check_md("\t* tabbed", "\t- tabbed");
    check_md("* **Стрижка** — 1500 ₽", "- *Стрижка* — 1500 ₽");
    check_md("*not a bullet*", "_not a bullet_");
    check_md("-not a bullet", "-not a bullet");
}

static void test_numbered_and_quotes(void **state)
{
    (void)state;
    check_md("1. first\n2. **second**\n10) tenth", "1. first\n2. *second*\n10) tenth");
    check_md("> quoted **text**", "> quoted *text*");
    check_md("> > nested\n>plain", "> > nested\n>plain");
    check_md("> - item in quote", "> - item in quote");
    check_md("> # Heading in quote", "> *Heading in quote*");
}

/* ---- code --------------------------------------------------------------- */

static void test_fences(void **state)
{
    (void)state;
    check_md("```python\nprint(**x**)\n```", "```\nprint(**x**)\n```");
    check_md("``` js \na *b* [c](d)\n```", "```\na *b* [c](d)\n```");
    check_md("~~~\ncode\n~~~", "```\ncode\n```");
    check_md("````md\n```inner```\n````", "```\n```inner```\n```");
    /* blank lines and trailing spaces inside code are content */
    check_md("```\na  \n\n\n\nb\n```\nafter", "```\na  \n\n\n\nb\n```\nafter");
    check_md("text\n```sh\n# not a heading\n| not | table |\n- not - bullet\n```",
             "text\n```\n# not a heading\n| not | table |\n- not - bullet\n```");
    /* unclosed: the rest is code, and the fence is closed */
    check_md("```c\nint **p;\n* x", "```\nint **p;\n* x\n```");
    check_md("Run:\n\n```sh\nls\n\n\n", "Run:\n\n```\nls\n```");
    check_md("  ```\n  indented", "  ```\n  indented\n```");
    check_md("Steps:\n\n```\n\n", "Steps:");
    check_md("```python", "");
    check_md("- step:\n  ```bash\n  ls *.c\n  ```", "- step:\n  ```\n  ls *.c\n  ```");
}

static void test_inline_code(void **state)
{
    (void)state;
    check_md("run `**x** and *y*` now", "run `**x** and *y*` now");
    check_md("**bold** `~~code~~` *it*", "*bold* `~~code~~` _it_");
    check_md("``a ` b`` **c**", "``a ` b`` *c*");
    check_md("```one line```", "```one line```");
    check_md("**a `b** c`", "**a `b** c`");
    check_md("[`x`](u)", "`x` (u)");
}

/* ---- tables ------------------------------------------------------------- */

static void test_tables(void **state)
{
    (void)state;
    check_md("| Услуга | Цена |\n|---|---:|\n| Стрижка | 1500 ₽ |\n| Борода | 800 ₽ |",
             "Услуга - Цена\nСтрижка - 1500 ₽\nБорода - 800 ₽");
    check_md("Name | Price\n--- | ---\nCut | $20", "Name - Price\nCut - $20");
    check_md("| **a** | b |\n| :-: | - |\n| | c |", "*a* - b\nc");
    check_md("| `x|y` | z |", "`x|y` - z");
    check_md("| a \\| b | c |", "a | b - c");
    check_md("Before\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter",
             "Before\n\na - b\n1 - 2\n\nAfter");
    check_md("| h |\n|---|\n| | |\n| x |", "h\nx");
    /* a model breaks a cell's lines with <br>: a space, never the tag */
    check_md("| Услуга | Цена |\n|:--|--:|\n| Стрижка<br>мужская | 1500 ₽ <BR/> 2000 ₽ |\n"
             "| **Борода** <br /> **усы** | <br> |\n| • a<br>• b<br> | `<br>` |",
             "Услуга - Цена\nСтрижка мужская - 1500 ₽ 2000 ₽\n*Борода* *усы*\n• a • b - `<br>`");
    check_md("| <br> | x |\n|---|---|\n| <br><br> | <br>y |", "x\ny");
    /* outside a table, and not a tag, it stays as it is */
    check_md("a<br>b <brb> <br", "a<br>b <brb> <br");
    /* a pipe in prose without a separator row is no table */
    check_md("cats | dogs", "cats | dogs");
}

/* ---- rules, blank lines, whitespace ------------------------------------- */

static void test_rules(void **state)
{
    (void)state;
    check_md("a\n---\nb", "a\n\nb");
    check_md("a\n***\nb", "a\n\nb");
    check_md("a\n___\nb", "a\n\nb");
    check_md("a\n- - -\nb", "a\n\nb");
    check_md("a\n\n---\n\nb", "a\n\nb");
    check_md("---\na\n---", "a");
    check_md("a\n--\nb", "a\n--\nb");
}

static void test_blank_lines_and_spaces(void **state)
{
    (void)state;
    check_md("a\n\n\n\n\nb", "a\n\nb");
    check_md("a\n\n\nb", "a\n\nb");
    check_md("a\n\nb", "a\n\nb");
    check_md("a\n \t \n\t\nb", "a\n\nb");
    check_md("\n\n\na\n\n\n", "a");
    check_md("trailing   \nspaces\t", "trailing\nspaces");
    check_md("crlf\r\nlines\r\n\r\n\r\nend", "crlf\nlines\n\nend");
    check_md("", "");
    check_md("   \n\n  ", "");
}

static void test_plain_text_idempotent(void **state)
{
    (void)state;
    check_plain("Hello! How can I help you today?");
    check_plain("Здравствуйте! Мы работаем с 10:00 до 21:00, без выходных.");
    check_plain("Стрижка — 1500 ₽\nБорода — 800 ₽\n\nЗапись по телефону +7 (999) 123-45-67.");
    check_plain("Emoji 💈✂️🧔 and flags 🇷🇺 and ZWJ 👨‍👩‍👧");
    check_plain("- one\n- two\n1. three\n> four");
    check_plain("_italic_ ~strike~ `code` *");
    check_plain("50% off, 2 + 2 = 4, a-b, (x), \"quoted\", it's");
    check_plain("https://barber.example/book?x=1&y=2");
}

/* ---- bytes -------------------------------------------------------------- */

static void test_invalid_utf8_passes_through(void **state)
{
    static const char md[] = "ok \xff\xfe \xd0 \xe2\x82 **b\xc0**\n\xf0\x9f";
    static const char want[] = "ok \xff\xfe \xd0 \xe2\x82 *b\xc0*\n\xf0\x9f";
    char *out;

    (void)state;
    out = convert_n(md, sizeof(md) - 1);
    assert_string_equal(out, want);
    free(out);
}

static void test_never_reads_past_len(void **state)
{
    char *out;

    (void)state;
    /* len stops inside the markers: the closer is not there to be seen */
    out = convert_n("**bold**", 7);
    assert_string_equal(out, "**bold*");
    free(out);
    out = convert_n("[t](u)", 5);
    assert_string_equal(out, "[t](u");
    free(out);
    out = convert_n("```c\nx", 3);
    assert_string_equal(out, "");   /* a fence with nothing in it */
    free(out);
}

static void test_nul_bytes_dropped(void **state)
{
    static const char md[] = "a\0b **c\0**";
    char *out;

    (void)state;
    out = convert_n(md, sizeof(md) - 1);
    assert_string_equal(out, "ab *c*");
    free(out);
}

static void test_errors(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *big, *out;

    (void)state;
    assert_null(myna_wa_from_markdown(NULL, 3, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    out = myna_wa_from_markdown(NULL, 0, &err);
    assert_non_null(out);
    assert_string_equal(out, "");
    free(out);

    big = malloc(MYNA_WA_MARKDOWN_MAX_BYTES + 1);
    assert_non_null(big);
    memset(big, 'a', MYNA_WA_MARKDOWN_MAX_BYTES + 1);
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_wa_from_markdown(big, MYNA_WA_MARKDOWN_MAX_BYTES + 1, &err));
    assert_int_equal(err.code, MYNA_ETOOBIG);
    assert_true(err.msg[0] != '\0');
    /* exactly the limit is fine */
    out = myna_wa_from_markdown(big, MYNA_WA_MARKDOWN_MAX_BYTES, &err);
    assert_non_null(out);
    assert_int_equal(strlen(out), MYNA_WA_MARKDOWN_MAX_BYTES);
    free(out);
    free(big);
}

/* Lines of unmatched openers must cost linear time, not quadratic: each of
 * these took minutes before the closer searches were remembered. */
static void test_hostile_lines_are_fast(void **state)
{
    static const char *const units[] = { "**a ", "*a ", "[a", "[a](", "~~a ", "__a ",
                                         "`` ` ", "<http://", "**[a](" };
    size_t k;
    clock_t t0 = clock();

    (void)state;
    for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        char *md = repeat(units[k], MYNA_WA_MARKDOWN_MAX_BYTES / strlen(units[k]));
        char *out = convert_n(md, strlen(md));
        assert_true(strlen(out) > 0);
        free(out);
        free(md);
    }
    /* openers waiting for a closer across a long run of markers */
    for (k = 0; k < 6; k++) {
        static const char head[] = "**x ~~y __z *w [a](b ";
        size_t hl = sizeof(head) - 1, rl = 500000;
        char *line = malloc(hl + rl + 3), *out;

        assert_non_null(line);
        memcpy(line, head, hl);
        memset(line + hl, "*~_`[)"[k], rl);
        memcpy(line + hl + rl, " y", 3);
        out = convert_n(line, hl + rl + 2);
        assert_true(strlen(out) > rl);
        free(out);
        free(line);
    }
    /* generous for ASan on a slow machine; quadratic would be hours */
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 30.0);
}

/* Many '[' before one "](" whose destination never closes: every '[' finds
 * that same ']', and parsing its destination again for each of them took
 * minutes for a 1 MiB line ("[" * n + "](" + m bytes cost n * m). */
static void test_hostile_links_are_fast(void **state)
{
    static const struct {
        const char *opener, *mid;
        char fill;
    } shapes[] = {
        { "[", "](", 'x' },      /* a url that never ends */
        { "![", "](", 'x' },     /* images try each '[' twice */
        { "[a", "](", 'x' },
        { "[", "](<", 'x' },     /* <url> without its '>' */
        { "[", "](x \"", 'y' }, /* a title without its closing quote */
    };
    size_t k, len = MYNA_WA_MARKDOWN_MAX_BYTES;
    clock_t t0 = clock();

    (void)state;
    for (k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        size_t ol = strlen(shapes[k].opener), ml = strlen(shapes[k].mid);
        size_t n = len / 2 / ol, at = n * ol;
        char *line = repeat(shapes[k].opener, n), *out, *big;

        big = realloc(line, len + 1);
        assert_non_null(big);
        memcpy(big + at, shapes[k].mid, ml);
        memset(big + at + ml, shapes[k].fill, len - at - ml);
        big[len] = '\0';
        out = convert_n(big, len);
        assert_int_equal(strlen(out), len);   /* no link: the line as it is */
        assert_memory_equal(out, big, len);
        free(out);
        free(big);
    }
    /* generous for ASan on a slow machine; quadratic is many minutes */
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 30.0);
}

/* A reply as an LLM writes it, end to end. */
static void test_llm_reply(void **state)
{
    static const char md[] =
        "## Наши услуги\n"
        "\n"
        "Вот **основные** цены:\n"
        "\n"
        "| Услуга | Цена |\n"
        "|--------|------|\n"
        "| Мужская стрижка | 1500 ₽ |\n"
        "| Стрижка бороды | 800 ₽ |\n"
        "\n"
        "* *Детская стрижка* — ~~1200 ₽~~ 1000 ₽\n"
        "* Подробнее: [сайт](https://barber.example/prices)\n"
        "\n"
        "---\n"
        "\n"
        "\n"
        "> Запись по телефону   \n"
        "```text\n"
        "+7 999 123-45-67\n"
        "```\n";
    static const char want[] =
        "*Наши услуги*\n"
        "\n"
        "Вот *основные* цены:\n"
        "\n"
        "Услуга - Цена\n"
        "Мужская стрижка - 1500 ₽\n"
        "Стрижка бороды - 800 ₽\n"
        "\n"
        "- _Детская стрижка_ — ~1200 ₽~ 1000 ₽\n"
        "- Подробнее: сайт (https://barber.example/prices)\n"
        "\n"
        "> Запись по телефону\n"
        "```\n"
        "+7 999 123-45-67\n"
        "```";

    (void)state;
    check_md(md, want);
}

/* ---- splitting ---------------------------------------------------------- */

static void test_split_fits_in_one(void **state)
{
    (void)state;
    check_split("Привет!", 4096, (const char *const[]){ "Привет!", NULL });
    check_split("  \n padded \n\n ", 4096, (const char *const[]){ "padded", NULL });
    check_split("abcd", 4, (const char *const[]){ "abcd", NULL });
    check_split("абвг", 4, (const char *const[]){ "абвг", NULL });
    check_split("a\n\nb", 4096, (const char *const[]){ "a\n\nb", NULL });
}

static void test_split_empty(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char **parts = (char **)1;
    size_t n = 99;

    (void)state;
    assert_int_equal(myna_wa_split("", 10, 0, &parts, &n, &err), MYNA_OK);
    assert_null(parts);
    assert_int_equal(n, 0);
    assert_int_equal(myna_wa_split(" \n\t\r\n ", 10, 0, &parts, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    myna_wa_split_free(parts, n);
    myna_wa_split_free(NULL, 0);
}

/* An answer of only Unicode whitespace or characters that show no glyph
 * (NBSP, U+3000, U+2028, U+200B, a line of U+FEFF) shows as an empty
 * message, as one of ASCII spaces would: it is blank and gives no part.
 * Such characters inside text that shows are kept. */
static void test_split_unicode_blank(void **state)
{
    static const char *const blank[] = {
        "\xc2\xa0", "\xe2\x80\x8b", "\xe3\x80\x80", "\xe2\x80\xa8",
        "\xef\xbb\xbf\xef\xbb\xbf\xef\xbb\xbf",
        " \xc2\xa0\n\xe2\x80\x8b\xe2\x80\x8d \xef\xb8\x8f\t",
        "\n\xef\xbb\xbf\n\xe2\x80\x8e\xe2\x81\xa0\xe2\x80\xaf\n",
    };
    struct myna_err err = MYNA_ERR_INIT;
    char **parts = (char **)1;
    size_t n = 99;

    (void)state;
    for (size_t i = 0; i < sizeof(blank) / sizeof(blank[0]); i++) {
        assert_true(myna_wa_is_blank(blank[i]));
        assert_int_equal(myna_wa_split(blank[i], 4096, MYNA_WA_REPLY_MAX_PARTS, &parts, &n, &err),
                         MYNA_OK);
        assert_null(parts);
        assert_int_equal(n, 0);
    }
    assert_true(myna_wa_is_blank(""));
    assert_false(myna_wa_is_blank("\xc2\xa0.\xc2\xa0"));
    assert_false(myna_wa_is_blank("\xe2\x80\x8b\xf0\x9f\x98\x80"));
    assert_false(myna_wa_is_blank("\xff"));  /* not UTF-8: shows as a character */
    check_split("\xc2\xa0\xd0\xb4\xd0\xb0\xc2\xa0", 4096,
                (const char *const[]){ "\xc2\xa0\xd0\xb4\xd0\xb0\xc2\xa0", NULL });
}

static void test_split_errors(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char **parts;
    size_t n;

    (void)state;
    assert_int_equal(myna_wa_split("text", 0, 0, &parts, &n, &err), MYNA_EINVAL);
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_null(parts);
    assert_int_equal(n, 0);
    assert_int_equal(myna_wa_split(NULL, 10, 0, &parts, &n, &err), MYNA_EINVAL);
    assert_int_equal(myna_wa_split("text", 10, 0, NULL, &n, &err), MYNA_EINVAL);
    assert_int_equal(myna_wa_split("text", 10, 0, &parts, NULL, &err), MYNA_EINVAL);
}

static void test_split_prefers_paragraphs(void **state)
{
    (void)state;
    /* a line break and sentences come later, the blank line still wins */
    check_split("First para.\n\nSecond. Line\nmore words", 30,
                (const char *const[]){ "First para.", "Second. Line\nmore words", NULL });
    check_split("Абзац один.\n  \nАбзац два, длинный", 25,
                (const char *const[]){ "Абзац один.", "Абзац два, длинный", NULL });
    /* the last blank line in reach, not the first */
    check_split("a\n\nb\n\nc\n\nddddd", 8,
                (const char *const[]){ "a\n\nb\n\nc", "ddddd", NULL });
}

static void test_split_prefers_lines(void **state)
{
    (void)state;
    check_split("Line one. Yes\nline two words here", 25,
                (const char *const[]){ "Line one. Yes", "line two words here", NULL });
    check_split("- стрижка\n- борода\n- усы", 18,
                (const char *const[]){ "- стрижка\n- борода", "- усы", NULL });
}

static void test_split_prefers_sentences(void **state)
{
    (void)state;
    check_split("One two. Three four five", 20,
                (const char *const[]){ "One two.", "Three four five", NULL });
    check_split("Привет! Как дела? Всё хорошо", 20,
                (const char *const[]){ "Привет! Как дела?", "Всё хорошо", NULL });
    check_split("Ну… Давайте завтра", 12,
                (const char *const[]){ "Ну…", "Давайте", "завтра", NULL });
    check_split("Wait… then go on", 12,
                (const char *const[]){ "Wait…", "then go on", NULL });
    /* a dot inside a number is no sentence end */
    check_split("Pi is 3.14 and more", 12,
                (const char *const[]){ "Pi is 3.14", "and more", NULL });
}

/* A sentence ends at its mark and the closers after it, which stay with
 * it: spans, quotes, brackets; and at the marks of other scripts. */
static void test_split_sentence_closers_and_scripts(void **state)
{
    (void)state;
    check_split("*Готово.* Дальше по списку", 20,
                (const char *const[]){ "*Готово.*", "Дальше по списку", NULL });
    check_split("_Done!_ Next we go", 14, (const char *const[]){ "_Done!_", "Next we go", NULL });
    check_split("\"Yes.\" Then we go on", 16,
                (const char *const[]){ "\"Yes.\"", "Then we go on", NULL });
    check_split("«Да.» Потом ещё слово", 16,
                (const char *const[]){ "«Да.»", "Потом ещё слово", NULL });
    check_split("(see above.) Next one here", 20,
                (const char *const[]){ "(see above.)", "Next one here", NULL });
    check_split("*Итого: 1500 ₽.* Записать вас?", 24,
                (const char *const[]){ "*Итого: 1500 ₽.*", "Записать вас?", NULL });
    check_split("هل تريد الحجز؟ نعم من فضلك", 20,
                (const char *const[]){ "هل تريد الحجز؟", "نعم من فضلك", NULL });
    check_split("آپ کا شکریہ۔ کل ملتے ہیں", 16,
                (const char *const[]){ "آپ کا شکریہ۔", "کل ملتے ہیں", NULL });
    check_split("धन्यवाद। कल मिलते हैं", 14,
                (const char *const[]){ "धन्यवाद।", "कल मिलते हैं", NULL });
    check_split("Շնորհակալություն։ Վաղը կտեսնվենք", 24,
                (const char *const[]){ "Շնորհակալություն։", "Վաղը կտեսնվենք", NULL });
    check_split("እሺ። ነገ እንገናኝ እሺ", 12, (const char *const[]){ "እሺ።", "ነገ እንገናኝ እሺ", NULL });
    check_split("Τι ώρα\xCD\xBE Στις δέκα το πρωί", 17,
                (const char *const[]){ "Τι ώρα\xCD\xBE", "Στις δέκα το πρωί", NULL });
    /* Chinese and Japanese write no space: the cut follows the mark, and
     * a closing bracket after it */
    check_split("好的。明天见面吧朋友", 8, (const char *const[]){ "好的。", "明天见面吧朋友", NULL });
    check_split("はい！「了解。」次はどう", 9,
                (const char *const[]){ "はい！「了解。」", "次はどう", NULL });
    check_split("可以吗？可以的谢谢你", 8, (const char *const[]){ "可以吗？", "可以的谢谢你", NULL });
    /* a Chinese opening quote after the mark goes with the next sentence */
    check_split("他说好的。“我们明天见。”然后走了。", 12,
                (const char *const[]){ "他说好的。", "“我们明天见。”", "然后走了。", NULL });
    /* a closer that is not after a mark ends nothing; a dot in a number
     * or an abbreviation without a space after it is no cut */
    check_split("*bold* text and more", 14,
                (const char *const[]){ "*bold* text", "and more", NULL });
    check_split("Version 3.5) and e.g more", 14,
                (const char *const[]){ "Version 3.5)", "and e.g more", NULL });
    /* the last part allowed: a tight sentence end takes the mark alone */
    check_split_max("好的，我们明天见。请准时到达我们的店里谢谢你们", 16, 1,
                    (const char *const[]){ "好的，我们明天见。…", NULL });
}

/* A reply over 4,096 characters whose only sentence end in reach is the
 * given one: the first message ends with that sentence, closers and all,
 * and the second starts with the next. */
static void check_long_sentence_cut(const char *word, const char *end, const char *next)
{
    char *before = repeat(word, 3000 / strlen(word)), *after = repeat(word, 2000), *text;
    size_t lb = strlen(before), le = strlen(end), ln = strlen(next), la = strlen(after), n;
    char **parts;

    text = malloc(lb + le + ln + la + 1);
    assert_non_null(text);
    memcpy(text, before, lb);
    memcpy(text + lb, end, le);
    memcpy(text + lb + le, next, ln);
    memcpy(text + lb + le + ln, after, la + 1);
    parts = split_ok(text, MYNA_WA_TEXT_MAX_CHARS, &n);
    assert_true(n >= 2);
    assert_true(strlen(parts[0]) >= le);
    if (strcmp(parts[0] + strlen(parts[0]) - le, end) != 0)
        fail_msg("first message ends '%s', want '%s'", parts[0] + strlen(parts[0]) - le, end);
    next += strspn(next, " ");   /* the space at the cut goes */
    if (strncmp(parts[1], next, strlen(next)) != 0)
        fail_msg("second message starts '%.40s', want '%s'", parts[1], next);
    myna_wa_split_free(parts, n);
    free(before);
    free(after);
    free(text);
}

static void test_split_long_reply_at_sentence(void **state)
{
    (void)state;
    check_long_sentence_cut("слово ", "*Готово.*", " Дальше ");
    check_long_sentence_cut("слово ", "«Да.»", " Потом ");
    check_long_sentence_cut("слово ", "*Итого: 1500 ₽.*", " Записать вас ");
    check_long_sentence_cut("好的", "完成了。", "明天见");
    check_long_sentence_cut("好的", "「完成了。」", "明天见");
    check_long_sentence_cut("كلمة ", "هل تريد الحجز؟", " نعم ");
    check_long_sentence_cut("शब्द ", "धन्यवाद।", " कल ");
}

static void test_split_prefers_spaces(void **state)
{
    (void)state;
    check_split("aaaa bbbb cccc", 9, (const char *const[]){ "aaaa bbbb", "cccc", NULL });
    /* the space right after the last fitting character counts */
    check_split("aaaa bbbb", 4, (const char *const[]){ "aaaa", "bbbb", NULL });
    check_split("стрижка машинкой недорого", 16,
                (const char *const[]){ "стрижка машинкой", "недорого", NULL });
}

/* A cut inside *bold* (or _, ~, `) would leave both halves showing bare
 * marks: the space before the span wins while there is one. */
static void test_split_keeps_out_of_marks(void **state)
{
    (void)state;
    check_split("aa *bb cc* dd", 9, (const char *const[]){ "aa", "*bb cc*", "dd", NULL });
    check_split("one _two three_ four", 14,
                (const char *const[]){ "one", "_two three_", "four", NULL });
    check_split("x ~a b~ `c d` e", 12, (const char *const[]){ "x ~a b~", "`c d` e", NULL });
    /* a sentence end inside a span is no cut either */
    check_split("Go. *Now. Then* x", 14, (const char *const[]){ "Go.", "*Now. Then* x", NULL });
    /* marks that pair nothing are plain text: 2*3 and a * alone */
    check_split("aa 2*3 bb * cc", 9, (const char *const[]){ "aa 2*3 bb", "* cc", NULL });
    /* a span wider than a part: cut inside it as before */
    check_split("*aaa bbb ccc*", 8, (const char *const[]){ "*aaa bbb", "ccc*", NULL });
    /* the last part allowed ends before the span, then the ellipsis; after
     * a line break, a sentence end out of the spans of its line */
    check_split_max("aaaa *bb cc dd ee* ff gg", 16, 1, (const char *const[]){ "aaaa…", NULL });
    check_split_max("aa\nb. *c. d. e* f g h", 16, 1,
                    (const char *const[]){ "aa\nb. …", NULL });
}

static void test_split_hard_cuts(void **state)
{
    (void)state;
    check_split("abcdefghij", 4, (const char *const[]){ "abcd", "efgh", "ij", NULL });
    /* two bytes per character: cuts fall between characters */
    check_split("абвгдеёжз", 4, (const char *const[]){ "абвг", "деёж", "з", NULL });
    /* four bytes per character */
    check_split("😀😁😂😃😄", 2, (const char *const[]){ "😀😁", "😂😃", "😄", NULL });
    check_split("a😀б€c", 2, (const char *const[]){ "a😀", "б€", "c", NULL });
    check_split("x", 1, (const char *const[]){ "x", NULL });
}

static void test_split_invalid_utf8(void **state)
{
    size_t n;
    char **parts;

    (void)state;
    /* each byte that starts no valid sequence is one character */
    parts = split_ok("\xff\xfe\xfd", 1, &n);
    assert_int_equal(n, 3);
    myna_wa_split_free(parts, n);
    /* a truncated sequence: three characters, not one */
    check_split("\xd0\xb0\xe2\x82", 2, (const char *const[]){ "\xd0\xb0\xe2", "\x82", NULL });
}

/* 4096 characters of each width fit in one message; one more splits. */
static void test_split_4096_boundary(void **state)
{
    static const char *const units[] = { "a", "ж", "€", "😀" };
    size_t k, n;

    (void)state;
    for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        char *s = repeat(units[k], 4096), *t = repeat(units[k], 4097);
        char **parts = split_ok(s, MYNA_WA_TEXT_MAX_CHARS, &n);

        assert_int_equal(n, 1);
        assert_string_equal(parts[0], s);
        myna_wa_split_free(parts, n);
        parts = split_ok(t, MYNA_WA_TEXT_MAX_CHARS, &n);
        assert_int_equal(n, 2);
        assert_int_equal(split_check_chars(parts[0]), 4096);
        assert_string_equal(parts[1], units[k]);
        myna_wa_split_free(parts, n);
        free(s);
        free(t);
    }
}

/* A long Russian reply with paragraphs: every part is full enough, within
 * 4096, and the paragraph boundaries are where the cuts are. */
static void test_split_long_russian_reply(void **state)
{
    static const char sentence[] = "Мы работаем каждый день с 10 до 21 часа, ждём вас! ";
    char *para = repeat(sentence, 30), *text;  /* 51 chars x 30 = 1530 per paragraph */
    size_t plen = strlen(para), n, i;
    char **parts;

    (void)state;
    text = malloc(5 * (plen + 2) + 1);
    assert_non_null(text);
    text[0] = '\0';
    for (i = 0; i < 5; i++) {
        memcpy(text + i * (plen + 2), para, plen);
        memcpy(text + i * (plen + 2) + plen, "\n\n", 2);
    }
    text[5 * (plen + 2)] = '\0';
    parts = split_ok(text, MYNA_WA_TEXT_MAX_CHARS, &n);
    /* two paragraphs fit (3061 chars), three do not */
    assert_int_equal(n, 3);
    for (i = 0; i + 1 < n; i++)
        assert_true(split_check_chars(parts[i]) > 3000);
    myna_wa_split_free(parts, n);
    free(para);
    free(text);
}

/* A long line with multi-byte characters and no spaces near 4096: the hard
 * cut lands between two characters, never inside one. */
static void test_split_4096_multibyte_hard_cut(void **state)
{
    char *a = repeat("я", 4095), *b = repeat("😀", 10), *text;
    size_t n, la = strlen(a), lb = strlen(b);
    char **parts;

    (void)state;
    text = malloc(la + lb + 1);
    assert_non_null(text);
    memcpy(text, a, la);
    memcpy(text + la, b, lb + 1);
    parts = split_ok(text, MYNA_WA_TEXT_MAX_CHARS, &n);
    assert_int_equal(n, 2);
    assert_int_equal(split_check_chars(parts[0]), 4096);
    assert_int_equal(strlen(parts[0]), la + 4);
    assert_int_equal(split_check_chars(parts[1]), 9);
    myna_wa_split_free(parts, n);
    free(a);
    free(b);
    free(text);
}

/* A part cut inside a code block closes it and the next reopens it, so
 * that no part shows a lone ``` as text; an opening fence never ends a
 * part. */
static void test_split_code_fences(void **state)
{
    char *md = repeat("    x = compute(x) + 1\n", 400), *code, *out;
    size_t n, i, k;
    char **parts;

    (void)state;
    check_split("Code:\n```\nline one\nline two\nline three\n```\nAfter.", 24,
                (const char *const[]){ "Code:\n```\nline one\n```", "```\nline two\n```",
                                       "```\nline three\n```", "After.", NULL });
    /* the fence closes right at the cut: its own line closes it */
    check_split("Code:\n```\nline one\nline two\n```\nAfter the code.", 24,
                (const char *const[]){ "Code:\n```\nline one\n```", "```\nline two\n```",
                                       "After the code.", NULL });
    check_split("```\naaaa bbbb cccc dddd eeee\n```", 20,
                (const char *const[]){ "```\naaaa bbbb\n```", "```\ncccc dddd\n```",
                                       "```\neeee\n```", NULL });
    /* a part that begins at an indented fence (a code block in a list
     * item) opens it: cut inside, it closes it, and the next one reopens */
    check_split("Intro line here.\n\n   ```\nline one of code\nline two of code\nline three\n"
                "   ```\nAfter.", 40,
                (const char *const[]){ "Intro line here.", "```\nline one of code\n```",
                                       "```\nline two of code\nline three\n   ```",
                                       "After.", NULL });
    check_split("1. Install:\n\n   ```\n   pip install myna-client\n   ```", 40,
                (const char *const[]){ "1. Install:", "```\n   pip install myna-client\n   ```",
                                       NULL });
    check_split("Intro text.\n```\nx = 1\n```", 16,
                (const char *const[]){ "Intro text.", "```\nx = 1\n```", NULL });
    check_split_max("Intro.\n```\nx = 1\ny = 2\nz = 3\n```", 16, 1,
                    (const char *const[]){ "Intro. …", NULL });
    check_split_max("```\nx = 1\ny = 2\nz = 3\n```", 16, 1,
                    (const char *const[]){ "```\nx = 1\n```\n…", NULL });

    /* a long code block from the model, converted then split */
    code = malloc(strlen(md) + 32);
    assert_non_null(code);
    snprintf(code, strlen(md) + 32, "Run this:\n\n```python\n%s```\nDone.", md);
    out = convert_n(code, strlen(code));
    parts = split_ok(out, MYNA_WA_TEXT_MAX_CHARS, &n);
    assert_true(n >= 3);
    for (i = 0; i < n; i++) {
        const char *q = parts[i];
        size_t fences = 0;
        for (k = 0; q[k] != '\0'; k++)
            if ((k == 0 || q[k - 1] == '\n') && split_check_fence_line(q + k))
                fences++;
        if (fences % 2 != 0)
            fail_msg("part %zu has %zu fence lines", i, fences);
    }
    assert_string_equal(parts[n - 1] + strlen(parts[n - 1]) - 9, "```\nDone.");
    myna_wa_split_free(parts, n);
    free(out);
    free(code);
    free(md);
}

/* A runaway answer becomes at most max_parts messages: the last one ends at
 * a line break, a sentence end or a space, with a mark that says more was
 * cut, and the rest is dropped. */
static void test_split_max_parts(void **state)
{
    char *big = repeat("Мы работаем каждый день с 10 до 21 часа, ждём вас! ", 20000);
    char *words = repeat("слово ", 5000);
    size_t n, i;
    char **parts;

    (void)state;
    check_split_max("One two three four five six", 16, 1,
                    (const char *const[]){ "One two three…", NULL });
    /* a sentence end beats a later space */
    check_split_max("Hi there. More words here", 16, 1,
                    (const char *const[]){ "Hi there. …", NULL });
    check_split_max("Line one\nline two goes on", 16, 1,
                    (const char *const[]){ "Line one…", NULL });
    check_split_max("Привет! Как дела? Всё хорошо, спасибо", 20, 2,
                    (const char *const[]){ "Привет! Как дела?", "Всё хорошо, спасибо", NULL });
    check_split_max("Привет! Как дела? Всё хорошо, спасибо, а у вас?", 20, 2,
                    (const char *const[]){ "Привет! Как дела?", "Всё хорошо,…", NULL });
    /* what fits is not marked */
    check_split_max("First part here. Second one.", 16, 2,
                    (const char *const[]){ "First part here.", "Second one.", NULL });
    /* no room for a mark in tiny parts */
    check_split_max("aaaa bbbb cccc", 9, 1, (const char *const[]){ "aaaa bbbb", NULL });
    /* a long unbroken word: a hard cut, then the mark */
    check_split_max("abcdefghijklmnopqrstuvwxyz", 16, 1,
                    (const char *const[]){ "abcdefghijklmno…", NULL });

    /* a 2 MB answer: 4 full messages, not 250 */
    parts = split_max(big, MYNA_WA_TEXT_MAX_CHARS, MYNA_WA_REPLY_MAX_PARTS, &n);
    assert_int_equal(n, MYNA_WA_REPLY_MAX_PARTS);
    for (i = 0; i < n; i++)
        assert_true(split_check_chars(parts[i]) > 4000);
    assert_non_null(strstr(parts[3], "ждём вас! …"));
    assert_string_equal(parts[3] + strlen(parts[3]) - strlen("вас! …"), "вас! …");
    myna_wa_split_free(parts, n);
    parts = split_max(words, MYNA_WA_TEXT_MAX_CHARS, MYNA_WA_REPLY_MAX_PARTS, &n);
    assert_int_equal(n, MYNA_WA_REPLY_MAX_PARTS);
    assert_string_equal(parts[3] + strlen(parts[3]) - strlen("слово слово…"), "слово слово…");
    myna_wa_split_free(parts, n);
    free(big);
    free(words);
}

/* What shows as one character is never cut by a hard cut: not a flag (two
 * regional indicators), not before a skin tone, an emoji selector or a
 * combining accent, not on either side of a joiner. */
static void test_split_hard_cut_keeps_clusters(void **state)
{
    static const char *const tails[] = {
        "\xf0\x9f\x87\xb7\xf0\x9f\x87\xba",           /* flag RU */
        "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",           /* thumbs up, skin tone */
        "\xe2\x9d\xa4\xef\xb8\x8f",                   /* heart, VS16 */
        "e\xcc\x81",                                  /* e, combining acute */
        "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9", /* man ZWJ woman */
    };
    char *xs = repeat("x", 4095), *text;
    size_t k, n;
    char **parts;

    (void)state;
    text = malloc(4095 + 32);
    assert_non_null(text);
    for (k = 0; k < sizeof(tails) / sizeof(tails[0]); k++) {
        snprintf(text, 4095 + 32, "%s%s", xs, tails[k]);
        parts = split_ok(text, MYNA_WA_TEXT_MAX_CHARS, &n);
        assert_int_equal(n, 2);
        assert_string_equal(parts[0], xs);
        assert_string_equal(parts[1], tails[k]);
        myna_wa_split_free(parts, n);
    }
    /* after a joiner: the cut goes before the whole sequence */
    snprintf(text, 4095 + 32, "%s%s", xs + 1, tails[4]);
    parts = split_ok(text, MYNA_WA_TEXT_MAX_CHARS, &n);
    assert_int_equal(n, 2);
    assert_string_equal(parts[0], xs + 1);
    assert_string_equal(parts[1], tails[4]);
    myna_wa_split_free(parts, n);
    /* flags pair from the start of their run: RU RU, then the cut */
    check_split("\xf0\x9f\x87\xb7\xf0\x9f\x87\xba\xf0\x9f\x87\xb7\xf0\x9f\x87\xba", 3,
                (const char *const[]){ "\xf0\x9f\x87\xb7\xf0\x9f\x87\xba",
                                       "\xf0\x9f\x87\xb7\xf0\x9f\x87\xba", NULL });
    /* nowhere to step back to: a hard cut all the same */
    check_split("\xf0\x9f\x87\xb7\xf0\x9f\x87\xba", 1,
                (const char *const[]){ "\xf0\x9f\x87\xb7", "\xf0\x9f\x87\xba", NULL });
    free(text);
    free(xs);
}

/* A hard cut one character into each of these would leave a bare mark at
 * the start of the next message (a dotted circle, a lone keycap, a black
 * flag): the cut goes before the whole of it. */
static void test_split_hard_cut_keeps_marks(void **state)
{
    static const struct {
        size_t xs;          /* characters before it: the cut falls after skip */
        const char *tail;
    } cases[] = {
        { 4094, "1\xef\xb8\x8f\xe2\x83\xa3" },             /* keycap 1: 1 VS16 U+20E3 */
        { 4094, "\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xa5"
                "\xf3\xa0\x81\xae\xf3\xa0\x81\xa7\xf3\xa0\x81\xbf" },  /* flag of England */
        { 4095, "\xd8\xa8\xd9\x8e" },                      /* Arabic beh, fatha */
        { 4095, "\xd7\xa9\xd7\x81" },                      /* Hebrew shin, shin dot */
        { 4095, "\xe0\xa4\x95\xe0\xa4\xbf" },              /* Devanagari ka, vowel sign i */
        { 4094, "\xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7" },  /* ka, virama, ssa: one conjunct */
        { 4095, "\xe0\xb8\x81\xe0\xb8\xb5" },              /* Thai ko kai, sara ii */
        { 4095, "a\xe2\x83\x97" },                          /* a, combining arrow above */
        { 4095, "\xe2\x9c\x8c\xef\xb8\x8e" },              /* victory hand, VS15 */
    };
    char *xs = repeat("x", 4095), *text;
    size_t k, n;
    char **parts;

    (void)state;
    text = malloc(4095 + 64);
    assert_non_null(text);
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        snprintf(text, 4095 + 64, "%s%s", xs + (4095 - cases[k].xs), cases[k].tail);
        parts = split_ok(text, MYNA_WA_TEXT_MAX_CHARS, &n);
        assert_int_equal(n, 2);
        if (strcmp(parts[1], cases[k].tail) != 0)
            fail_msg("case %zu: the second part is not the whole mark sequence", k);
        myna_wa_split_free(parts, n);
    }
    free(text);
    free(xs);
}

/* Pseudo-random texts from words of every width, spaces, line breaks and
 * sentence ends, split at many sizes: the invariants hold every time. */
static void test_split_invariants_random(void **state)
{
    static const char *const pieces[] = { "word", "слово", "😀", "€", "x", " ", " ", "  ",
                                          "\n", "\n\n", ". ", "! ", "? ", "… ", "\t",
                                          "длинноесловобезпробелов", "👨‍👩‍👧", "\n```\n",
                                          "\n  ```\n", "好的", "。", "」", "*", "?\"" };
    static const size_t sizes[] = { 1, 2, 3, 5, 8, 13, 50, 200, 4096 };
    uint32_t seed = 12345;
    int round;

    (void)state;
    for (round = 0; round < 300; round++) {
        char text[4000];
        size_t len = 0, k, n;

        while (1) {
            const char *p;
            seed = seed * 1103515245u + 12345u;
            p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
            if (len + strlen(p) + 1 > sizeof(text) || (seed >> 8) % 97 == 0)
                break;
            memcpy(text + len, p, strlen(p));
            len += strlen(p);
        }
        text[len] = '\0';
        for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            char **parts = split_ok(text, sizes[k], &n);
            myna_wa_split_free(parts, n);
            parts = split_max(text, sizes[k], 1 + (size_t)round % 4, &n);
            myna_wa_split_free(parts, n);
        }
    }
}

/* Convert then split, the way the outbox uses them. */
static void test_convert_then_split(void **state)
{
    char *md = repeat("## Раздел\n\nТекст с **жирным** словом и [ссылкой](https://x.io). ", 200);
    char *out = convert_n(md, strlen(md));
    size_t n, i;
    char **parts = split_ok(out, MYNA_WA_TEXT_MAX_CHARS, &n);

    (void)state;
    assert_true(n >= 2);
    for (i = 0; i < n; i++)
        assert_null(strstr(parts[i], "**"));
    myna_wa_split_free(parts, n);
    free(out);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bold),
        cmocka_unit_test(test_italic),
        cmocka_unit_test(test_strike),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_emoji_and_russian),
        cmocka_unit_test(test_unbalanced_left_alone),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_headings),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_bare_urls_verbatim),
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_bullets),
        cmocka_unit_test(test_numbered_and_quotes),
        cmocka_unit_test(test_fences),
        cmocka_unit_test(test_inline_code),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_blank_lines_and_spaces),
        cmocka_unit_test(test_plain_text_idempotent),
        cmocka_unit_test(test_invalid_utf8_passes_through),
        cmocka_unit_test(test_never_reads_past_len),
        cmocka_unit_test(test_nul_bytes_dropped),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hostile_lines_are_fast),
        cmocka_unit_test(test_hostile_links_are_fast),
        cmocka_unit_test(test_llm_reply),
        cmocka_unit_test(test_split_fits_in_one),
        cmocka_unit_test(test_split_empty),
        cmocka_unit_test(test_split_unicode_blank),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_split_prefers_paragraphs),
        cmocka_unit_test(test_split_prefers_lines),
        cmocka_unit_test(test_split_prefers_sentences),
        cmocka_unit_test(test_split_sentence_closers_and_scripts),
        cmocka_unit_test(test_split_long_reply_at_sentence),
        cmocka_unit_test(test_split_prefers_spaces),
        cmocka_unit_test(test_split_keeps_out_of_marks),
        cmocka_unit_test(test_split_hard_cuts),
        cmocka_unit_test(test_split_invalid_utf8),
        cmocka_unit_test(test_split_4096_boundary),
        cmocka_unit_test(test_split_long_russian_reply),
        cmocka_unit_test(test_split_4096_multibyte_hard_cut),
        cmocka_unit_test(test_split_hard_cut_keeps_clusters),
        cmocka_unit_test(test_split_hard_cut_keeps_marks),
        cmocka_unit_test(test_split_code_fences),
        cmocka_unit_test(test_split_max_parts),
        cmocka_unit_test(test_split_invariants_random),
        cmocka_unit_test(test_convert_then_split),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
