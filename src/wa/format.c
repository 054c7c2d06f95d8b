/* format.c - Markdown to WhatsApp text, and splitting long texts.
 *
 * The converter works line by line: block rules (fences, tables, headings,
 * rules, bullets, quotes) look at the start of a line, then the inline pass
 * rewrites emphasis, links and escapes inside the line. Inline constructs
 * never span lines: an LLM's reply keeps emphasis within a line, and a
 * stray marker then damages one line, not the rest of the message.
 *
 * Every search for a closing marker remembers its answer (struct memo), and
 * every link destination is parsed once for the ']' it follows (struct
 * dest), so a line full of unmatched openers costs linear time, not
 * quadratic: a 1 MiB line of "**", or of "[" before one "](" that never
 * closes, is hostile input, not a reason to spin the loop. */
#include "wa/format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "core/banned.h"

#define NONE SIZE_MAX
/* A part cut inside a code fence closes it, and the next one reopens it:
 * WhatsApp would show a lone ``` as text. */
#define FENCE_OPEN "```\n"
#define FENCE_CLOSE "\n```"
/* The longest marks after a part: FENCE_CLOSE, "\n" and an ellipsis. */
#define MARKS_MAX_CHARS 6

/* Emphasis nested deeper than this is copied as it is (recursion bound). */
#define INLINE_DEPTH_MAX 8
/* Code spans opened by longer backtick runs are not recognised (the run is
 * literal): no LLM writes them, and it bounds the per-length bookkeeping. */
#define CODE_RUN_MAX 16

/* code[] marks, per input byte, the spans of the current line that are
 * not Markdown: code spans, and bare URLs (CODE_URL at their start). */
enum { CODE_NO = 0, CODE_START = 1, CODE_IN = 2, CODE_URL = 3 };

struct conv {
    const char *s;          /* the whole input */
    size_t len;
    unsigned char *code;    /* len bytes: CODE_* for the current line */
    struct myna_buf out;
    int rc;                 /* first failure; later output is skipped */
    int pending_blank;      /* a blank line is owed before the next line */
    size_t cell;            /* NONE, or where the table cell being written began */
};

/* The first closer at or after `from` is `at` (NONE: there is none). A
 * later search from q >= from whose answer is still ahead reuses it. */
struct memo {
    size_t from, at;
};

/* The destination parsed from `at` (NONE: none yet): its ')' at paren
 * (NONE: not a destination) and its url [u, ue). */
struct dest {
    size_t at, paren, u, ue;
};

static void put(struct conv *c, const void *p, size_t n)
{
    if (c->rc == MYNA_OK && n > 0)
        c->rc = myna_buf_append(&c->out, p, n);
}

static void put_str(struct conv *c, const char *s)
{
    put(c, s, strlen(s));
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Letters and digits for the word rules of _ and single *; any non-ASCII
 * byte counts as a letter so that Cyrillic words behave like Latin ones. */
static int is_word(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           ch >= 0x80;
}

static int is_escapable(unsigned char ch)
{
    return ch != '\0' && strchr("\\`*_{}[]()#+-.!|~<>", ch) != NULL;
}

static size_t skip_spaces(const char *s, size_t i, size_t end)
{
    while (i < end && is_space((unsigned char)s[i]))
        i++;
    return i;
}

static size_t trim_end(const char *s, size_t start, size_t end)
{
    while (end > start && is_space((unsigned char)s[end - 1]))
        end--;
    return end;
}

/* ---- code spans --------------------------------------------------------- */

static size_t run_len(const char *s, size_t i, size_t end, char ch)
{
    size_t j = i;

    while (j < end && s[j] == ch)
        j++;
    return j - i;
}

/* Whether a bare URL starts at i: "http://" or "https://" not inside a
 * word. */
static int url_starts(const char *s, size_t i, size_t b)
{
    if (i > 0 && is_word((unsigned char)s[i - 1]))
        return 0;
    return (b - i > 7 && strncmp(s + i, "http://", 7) == 0) ||
           (b - i > 8 && strncmp(s + i, "https://", 8) == 0);
}

/* Marks the bare URLs of line [a, b) outside its code spans, once they
 * are marked (GFM's
 * extended autolinks): an address, not Markdown, so the underscores,
 * asterisks and tildes of "https://x.io/__init__" stay. A URL ends at a
 * space, a code span, or what no address holds and Markdown uses around
 * one (< > [ ] ` |); the marks it ends with (**https://x.io**) are left
 * out, as GFM leaves them. Linear: a URL is scanned once. */
static void mark_urls(struct conv *c, size_t a, size_t b)
{
    const char *s = c->s;
    size_t i = a, j;

    while (i < b) {
        if (c->code[i] != CODE_NO || s[i] != 'h' || !url_starts(s, i, b)) {
            i++;
            continue;
        }
        for (j = i; j < b && c->code[j] == CODE_NO && !is_space((unsigned char)s[j]) &&
                    !strchr("<>[]`|", s[j]);
             j++) {
        }
        while (j > i && strchr("*_~", s[j - 1]))
            j--;
        memset(c->code + i, CODE_IN, j - i);
        c->code[i] = CODE_URL;
        i = j;
    }
}

/* Marks the code spans of line [a, b) in c->code (CommonMark: a run of N
 * backticks opens, the next run of exactly N closes, an unmatched run is
 * literal). Searches for one N never overlap, and once one fails no later
 * run of that length can match, so this is linear. */
static void mark_code_spans(struct conv *c, size_t a, size_t b)
{
    unsigned char unmatched[CODE_RUN_MAX + 1] = { 0 };
    const char *s = c->s;
    size_t i = a;

    memset(c->code + a, CODE_NO, b - a);
    while (i < b) {
        size_t n, j;

        if (s[i] != '`') {
            i++;
            continue;
        }
        n = run_len(s, i, b, '`');
        if (n > CODE_RUN_MAX || unmatched[n]) {
            i += n;
            continue;
        }
        for (j = i + n; j < b;) {
            size_t m;

            if (s[j] != '`') {
                j++;
                continue;
            }
            m = run_len(s, j, b, '`');
            if (m == n)
                break;
            j += m;
        }
        if (j >= b) {
            unmatched[n] = 1;
            i += n;
            continue;
        }
        memset(c->code + i, CODE_IN, j + n - i);
        c->code[i] = CODE_START;
        i = j + n;
    }
}

/* End of the code span or URL starting at i. */
static size_t code_span_end(const struct conv *c, size_t i, size_t b)
{
    size_t j = i + 1;

    while (j < b && c->code[j] == CODE_IN)
        j++;
    return j;
}

/* ---- inline ------------------------------------------------------------- */

enum delim { D_STAR1, D_STAR2, D_STAR3, D_UNDER2, D_TILDE2, D_BRACKET, D_COUNT };

struct inline_ctx {
    struct conv *c;
    size_t b;                    /* end of the range being converted */
    int depth;
    int heading;                 /* inside a heading, which is bold already */
    struct memo memo[D_COUNT];
    struct dest dest;
};

static const struct {
    char ch;
    size_t n;
    int word_rule;   /* like _ in CommonMark: not inside a word */
} delims[D_COUNT] = {
    [D_STAR1] = { '*', 1, 1 },  [D_STAR2] = { '*', 2, 0 }, [D_STAR3] = { '*', 3, 0 },
    [D_UNDER2] = { '_', 2, 1 }, [D_TILDE2] = { '~', 2, 0 }, [D_BRACKET] = { ']', 1, 0 },
};

/* Whether a closing delimiter d starts at j: outside code, not escaped, a
 * run of exactly its length, hugging the text before it. */
static int closes_at(const struct inline_ctx *x, enum delim d, size_t j)
{
    const char *s = x->c->s;
    char ch = delims[d].ch;
    size_t n = delims[d].n, after = j + n;

    if (s[j] != ch || x->c->code[j] != CODE_NO || s[j - 1] == '\\')
        return 0;
    if (d == D_BRACKET)
        return 1;
    /* the cheap tests first: run_len inside a long run of markers, for
     * each of its bytes, would be quadratic */
    if (after > x->b || s[j - 1] == ch || is_space((unsigned char)s[j - 1]) ||
        run_len(s, j, x->b, ch) != n)
        return 0;
    return !delims[d].word_rule || after == x->b || !is_word((unsigned char)s[after]);
}

/* The first closer of d at or after q (q > start of the range). */
static size_t find_closer(struct inline_ctx *x, enum delim d, size_t q)
{
    struct memo *m = &x->memo[d];
    size_t j;

    if (m->from != NONE && q >= m->from && (m->at == NONE || m->at >= q))
        return m->at;
    for (j = q; j < x->b && !closes_at(x, d, j); j++) {
    }
    m->from = q;
    m->at = j < x->b ? j : NONE;
    return m->at;
}

static void convert_inline(struct conv *c, size_t a, size_t b, int depth, int heading);

/* Emphasis d opening at i: converts the content and returns the end of the
 * closer, or NONE when d does not open here. */
static size_t try_emphasis(struct inline_ctx *x, enum delim d, size_t i)
{
    const char *s = x->c->s;
    size_t n = delims[d].n, q = i + n, j;

    if (q >= x->b || is_space((unsigned char)s[q]))
        return NONE;
    if (delims[d].word_rule && i > 0 && is_word((unsigned char)s[i - 1]))
        return NONE;
    if ((j = find_closer(x, d, q)) == NONE)
        return NONE;
    /* a heading is bold already: WhatsApp does not nest one marker in itself */
    switch (d) {
    case D_STAR3:
        put_str(x->c, x->heading ? "_" : "*_");
        convert_inline(x->c, q, j, x->depth + 1, x->heading);
        put_str(x->c, x->heading ? "_" : "_*");
        break;
    case D_STAR2:
    case D_UNDER2:
        put_str(x->c, x->heading ? "" : "*");
        convert_inline(x->c, q, j, x->depth + 1, x->heading);
        put_str(x->c, x->heading ? "" : "*");
        break;
    case D_STAR1:
        put_str(x->c, "_");
        convert_inline(x->c, q, j, x->depth + 1, x->heading);
        put_str(x->c, "_");
        break;
    default:
        put_str(x->c, "~");
        convert_inline(x->c, q, j, x->depth + 1, x->heading);
        put_str(x->c, "~");
        break;
    }
    return j + n;
}

/* The "(url "title")" part of a link, from just after its '(' at p: sets
 * [*u, *ue) to the url and returns the position of the closing ')', or NONE.
 * As in CommonMark the url has no spaces and its parentheses nest
 * (Wikipedia URLs); it also stops at brackets, which keeps the scans after
 * different ']' from overlapping ("[a](" repeated). */
static size_t parse_destination(const struct inline_ctx *x, size_t p, size_t *u, size_t *ue)
{
    const char *s = x->c->s;
    size_t j = skip_spaces(s, p, x->b), depth = 0;

    if (j < x->b && s[j] == '<') {
        for (*u = ++j; j < x->b && s[j] != '>' && s[j] != '<'; j++) {
        }
        if (j >= x->b || s[j] != '>')
            return NONE;
        *ue = j++;
    } else {
        for (*u = j; j < x->b; j++) {
            unsigned char ch = (unsigned char)s[j];
            if (ch <= ' ' || ch == '[' || ch == ']' || ch == '<' || (ch == ')' && depth == 0))
                break;
            if (ch == '\\' && j + 1 < x->b)
                j++;
            else if (ch == '(')
                depth++;
            else if (ch == ')')
                depth--;
        }
        *ue = j;
    }
    j = skip_spaces(s, j, x->b);
    if (j < x->b && j > *ue && (s[j] == '"' || s[j] == '\'')) {
        char q = s[j];   /* a title, dropped */
        for (j++; j < x->b && s[j] != q; j++) {
        }
        if (j >= x->b)
            return NONE;
        j = skip_spaces(s, j + 1, x->b);
    }
    return j < x->b && s[j] == ')' ? j : NONE;
}

/* parse_destination(p), remembered: every '[' before one ']' asks for the
 * destination at the same p, and "[" * n + "](" + m bytes that never close
 * would otherwise cost n * m. The ']' found for a later '[' is never an
 * earlier one, so p never goes back and one remembered answer suffices. */
static size_t find_destination(struct inline_ctx *x, size_t p, size_t *u, size_t *ue)
{
    struct dest *d = &x->dest;

    if (d->at != p) {
        d->at = p;
        d->u = d->ue = p;
        d->paren = parse_destination(x, p, &d->u, &d->ue);
    }
    *u = d->u;
    *ue = d->ue;
    return d->paren;
}

/* a[0..an) and b[0..bn) name the same address: equal once a scheme and a
 * trailing slash are dropped ([example.com](https://example.com/)). */
static void strip_url(const char **p, size_t *n)
{
    static const char *const schemes[] = { "https://", "http://", "mailto:" };
    size_t k;

    for (k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
        size_t sl = strlen(schemes[k]);
        if (*n >= sl && strncmp(*p, schemes[k], sl) == 0) {
            *p += sl;
            *n -= sl;
            break;
        }
    }
    if (*n > 0 && (*p)[*n - 1] == '/')
        (*n)--;
}

static int same_url(const char *a, size_t an, const char *b, size_t bn)
{
    strip_url(&a, &an);
    strip_url(&b, &bn);
    return an == bn && memcmp(a, b, an) == 0;
}

/* [text](url) with '[' at i (an image's '!' was before it): writes
 * "text (url)", or just the url when the text is empty or the url itself.
 * Returns the end of the link or NONE. */
static size_t try_link(struct inline_ctx *x, size_t i)
{
    const char *s = x->c->s;
    size_t close, paren, u, ue, t = i + 1;

    if ((close = find_closer(x, D_BRACKET, t)) == NONE || close + 1 >= x->b ||
        s[close + 1] != '(' || (paren = find_destination(x, close + 2, &u, &ue)) == NONE)
        return NONE;
    if (ue == u) {
        convert_inline(x->c, t, close, x->depth + 1, x->heading);
    } else if (close == t || same_url(s + t, close - t, s + u, ue - u)) {
        put(x->c, s + u, ue - u);
    } else {
        convert_inline(x->c, t, close, x->depth + 1, x->heading);
        put_str(x->c, " (");
        put(x->c, s + u, ue - u);
        put_str(x->c, ")");
    }
    return paren + 1;
}

/* <https://...> autolinks lose their brackets. */
static size_t try_autolink(struct inline_ctx *x, size_t i)
{
    const char *s = x->c->s;
    size_t j;

    if (!((x->b - i > 8 && strncmp(s + i + 1, "https://", 8) == 0) ||
          (x->b - i > 7 && strncmp(s + i + 1, "http://", 7) == 0) ||
          (x->b - i > 7 && strncmp(s + i + 1, "mailto:", 7) == 0)))
        return NONE;
    /* stopping at '<' keeps "<http://<http://..." linear */
    for (j = i + 1; j < x->b && s[j] != '>' && s[j] != '<' && !is_space((unsigned char)s[j]); j++) {
    }
    if (j >= x->b || s[j] != '>')
        return NONE;
    put(x->c, s + i + 1, j - i - 1);
    return j + 1;
}

/* <br>, <br/> or <br /> in a table cell, where a model breaks the lines a
 * Markdown cell cannot hold: a space between the cell's words, none at its
 * ends, instead of the tag shown as text. */
static size_t try_cell_break(struct inline_ctx *x, size_t i)
{
    struct conv *c = x->c;
    const char *s = c->s;
    size_t j = i + 3;

    if (c->cell == NONE || x->b - i < 4 || strncasecmp(s + i, "<br", 3) != 0)
        return NONE;
    j = skip_spaces(s, j, x->b);
    if (j < x->b && s[j] == '/')
        j++;
    if (j >= x->b || s[j] != '>')
        return NONE;
    j = skip_spaces(s, j + 1, x->b);
    if (c->rc == MYNA_OK)
        c->out.len = trim_end(c->out.data != NULL ? c->out.data : "", c->cell, c->out.len);
    if (c->out.len > c->cell && j < x->b)
        put_str(c, " ");
    return j;
}

/* Converts s[a..b) of the current line (code spans marked) into c->out. */
static void convert_inline(struct conv *c, size_t a, size_t b, int depth, int heading)
{
    struct inline_ctx x;
    const char *s = c->s;
    size_t i = a, lit = a, k;

    if (depth > INLINE_DEPTH_MAX) {
        put(c, s + a, b - a);
        return;
    }
    x.c = c;
    x.b = b;
    x.depth = depth;
    x.heading = heading;
    for (k = 0; k < D_COUNT; k++)
        x.memo[k].from = NONE;
    x.dest.at = NONE;

    while (i < b) {
        unsigned char ch = (unsigned char)s[i];
        size_t end = NONE, run;

        if (c->code[i] == CODE_START) {
            i = code_span_end(c, i, b);   /* verbatim */
            continue;
        }
        if (c->code[i] == CODE_URL) {
            /* as written, but for Markdown escapes (https://x.io/a\_b) */
            size_t e = code_span_end(c, i, b);
            put(c, s + lit, i - lit);
            for (lit = i; i < e; i++)
                if (s[i] == '\\' && i + 1 < e && is_escapable((unsigned char)s[i + 1])) {
                    put(c, s + lit, i - lit);
                    lit = i + 1;
                    i++;
                }
            continue;
        }
        if (!strchr("\\*_~[!<", ch) || ch == '\0') {
            i++;
            continue;
        }
        put(c, s + lit, i - lit);
        lit = i;
        if (ch == '\\') {
            if (i + 1 < b && is_escapable((unsigned char)s[i + 1])) {
                put(c, s + i + 1, 1);   /* the character, never a marker */
                end = i + 2;
            }
        } else if (ch == '*' || ch == '_' || ch == '~') {
            run = run_len(s, i, b, (char)ch);
            if (ch == '*' && run <= 3)
                end = try_emphasis(&x, run == 1 ? D_STAR1 : run == 2 ? D_STAR2 : D_STAR3, i);
            else if (ch == '_' && run == 2)
                end = try_emphasis(&x, D_UNDER2, i);
            else if (ch == '~' && run == 2)
                end = try_emphasis(&x, D_TILDE2, i);
            if (end == NONE) {
                i += run;   /* the whole run is literal */
                continue;
            }
        } else if (ch == '[') {
            end = try_link(&x, i);
        } else if (ch == '!') {
            if (i + 1 < b && s[i + 1] == '[')
                end = try_link(&x, i + 1);   /* an image reads like a link */
        } else if ((end = try_cell_break(&x, i)) == NONE) {
            end = try_autolink(&x, i);
        }
        if (end == NONE) {
            i++;
            continue;
        }
        i = lit = end;
    }
    put(c, s + lit, b - lit);
}

/* ---- blocks ------------------------------------------------------------- */

/* ```lang or ~~~lang at the start of [a, b): *ch and *n describe the fence,
 * *p is where it starts. CommonMark: a backtick fence's info string has no
 * backtick, so "```x```" on one line is inline code, not a fence. */
static int is_fence_open(const char *s, size_t a, size_t b, char *ch, size_t *n, size_t *p)
{
    size_t i = skip_spaces(s, a, b), r;

    if (i >= b || (s[i] != '`' && s[i] != '~'))
        return 0;
    r = run_len(s, i, b, s[i]);
    if (r < 3 || (s[i] == '`' && memchr(s + i + r, '`', b - i - r) != NULL))
        return 0;
    *ch = s[i];
    *n = r;
    *p = i;
    return 1;
}

static int is_fence_close(const char *s, size_t a, size_t b, char ch, size_t n)
{
    size_t i = skip_spaces(s, a, b), r = run_len(s, i, b, ch);

    return r >= n && skip_spaces(s, i + r, b) == b;
}

/* |---|:--:| and ---|--- rows: only pipes, dashes, colons and spaces. */
static int is_table_sep(const char *s, size_t a, size_t b)
{
    int pipe = 0, dash = 0;
    size_t i;

    for (i = a; i < b; i++) {
        if (s[i] == '|')
            pipe = 1;
        else if (s[i] == '-')
            dash = 1;
        else if (s[i] != ':' && !is_space((unsigned char)s[i]))
            return 0;
    }
    return pipe && dash;
}

/* ---, ***, ___, "- - -": three or more of one of -*_ and nothing else. */
static int is_rule(const char *s, size_t a, size_t b)
{
    size_t i = skip_spaces(s, a, b), n = 0;
    char ch;

    if (i >= b || (s[i] != '-' && s[i] != '*' && s[i] != '_'))
        return 0;
    ch = s[i];
    for (; i < b; i++) {
        if (s[i] == ch)
            n++;
        else if (!is_space((unsigned char)s[i]))
            return 0;
    }
    return n >= 3;
}

/* A table row: cells split at the pipes outside code spans, trimmed, the
 * empty ones dropped, joined by " - ". */
static void convert_table_row(struct conv *c, size_t a, size_t b)
{
    const char *s = c->s;
    size_t i = skip_spaces(s, a, b), e = trim_end(s, a, b), cell;
    int first = 1;

    if (i < e && s[i] == '|')
        i++;
    if (e > i && s[e - 1] == '|' && !(e - 1 > i && s[e - 2] == '\\'))
        e--;
    for (cell = i; cell <= e; i++) {
        size_t cs, ce;

        if (i < e && (s[i] != '|' || c->code[i] != CODE_NO || (i > cell && s[i - 1] == '\\')))
            continue;
        cs = skip_spaces(s, cell, i);
        ce = trim_end(s, cs, i);
        if (ce > cs) {
            size_t before = c->out.len;
            if (!first)
                put_str(c, " - ");
            c->cell = c->out.len;
            convert_inline(c, cs, ce, 0, 0);
            if (c->rc == MYNA_OK && c->out.len == c->cell)
                c->out.len = before;   /* only breaks: an empty cell */
            else
                first = 0;
            c->cell = NONE;
        }
        cell = i + 1;
        if (i >= e)
            break;
    }
}

/* "# Title ##" -> "*Title*"; returns 0 when the line is no heading. */
static int convert_heading(struct conv *c, size_t a, size_t b)
{
    const char *s = c->s;
    size_t i = a, h, t, e;

    h = run_len(s, i, b, '#');
    if (h == 0 || h > 6 || (i + h < b && s[i + h] != ' ' && s[i + h] != '\t'))
        return 0;
    t = skip_spaces(s, i + h, b);
    e = trim_end(s, t, b);
    /* an optional closing run of '#', after a space or alone */
    {
        size_t k = e;
        while (k > t && s[k - 1] == '#')
            k--;
        if (k == t || is_space((unsigned char)s[k - 1]))
            e = trim_end(s, t, k);
    }
    if (e > t) {
        put_str(c, "*");
        convert_inline(c, t, e, 0, 1);
        put_str(c, "*");
    }
    return 1;
}

/* One line outside fences and tables: indentation and quote markers are
 * kept, then a rule, heading, bullet or plain text follows. */
static void convert_text_line(struct conv *c, size_t a, size_t b)
{
    const char *s = c->s;
    size_t i = skip_spaces(s, a, b);

    put(c, s + a, i - a);
    while (i < b && s[i] == '>') {
        size_t j = skip_spaces(s, i + 1, b);
        put(c, s + i, j - i);
        i = j;
    }
    if (is_rule(s, i, b))
        return;   /* the line stays empty: a rule reads as a pause */
    if (convert_heading(c, i, b))
        return;
    if (i + 1 < b && (s[i] == '-' || s[i] == '*' || s[i] == '+') &&
        (s[i + 1] == ' ' || s[i + 1] == '\t')) {
        put_str(c, "- ");
        i += 2;
    }
    convert_inline(c, i, b, 0, 0);
}

/* Starts an output line; returns where its text begins. A blank line owed
 * by the input goes first, and none before the first line. */
static size_t line_begin(struct conv *c)
{
    if (c->out.len > 0)
        put_str(c, c->pending_blank ? "\n\n" : "\n");
    return c->out.len;
}

/* Ends a line begun at start whose text began at body: trailing spaces go,
 * and an empty line is taken back, owing a blank line when it stands for one
 * (a rule) and nothing when it was dropped (a table row of empty cells), so
 * that runs of blank lines collapse to one. */
static void line_end(struct conv *c, size_t start, size_t body, int empty_is_blank)
{
    if (c->rc != MYNA_OK)
        return;
    c->out.len = trim_end(c->out.data != NULL ? c->out.data : "", body, c->out.len);
    if (c->out.len > body) {
        c->pending_blank = 0;
    } else {
        c->out.len = start;
        if (empty_is_blank && start > 0)
            c->pending_blank = 1;
    }
    if (c->out.data != NULL)
        c->out.data[c->out.len] = '\0';
}

/* The end of the line starting at a, without its "\r\n" or "\n". */
static size_t line_stop(const char *s, size_t a, size_t len, size_t *next)
{
    const char *nl = memchr(s + a, '\n', len - a);
    size_t e = nl != NULL ? (size_t)(nl - s) : len;

    *next = nl != NULL ? e + 1 : len;
    if (e > a && s[e - 1] == '\r')
        e--;
    return e;
}

static int has_pipe(const char *s, size_t a, size_t b)
{
    return memchr(s + a, '|', b - a) != NULL;
}

/* A fence the input never closed (an answer cut short, a model that forgot)
 * would show its ``` as text: it is closed. The fence's output began at
 * start and its content at body; blank lines at its end go, and a fence
 * with nothing in it goes whole. */
static void close_fence(struct conv *c, size_t start, size_t body)
{
    if (c->rc != MYNA_OK)
        return;
    while (c->out.len > body && (c->out.data[c->out.len - 1] == '\n' ||
                                 is_space((unsigned char)c->out.data[c->out.len - 1])))
        c->out.len--;
    if (c->out.len == body)
        c->out.len = start;
    if (c->out.data != NULL)
        c->out.data[c->out.len] = '\0';
    if (c->out.len > start)
        put_str(c, "\n```");
}

static void convert_lines(struct conv *c)
{
    const char *s = c->s;
    size_t a = 0, next;
    char fence_ch = 0;
    size_t fence_n = 0, fence_start = 0, fence_body = 0;
    int in_table = 0;

    while (a < c->len && c->rc == MYNA_OK) {
        size_t b = line_stop(s, a, c->len, &next), start = c->out.len, body, fp;

        if (fence_ch != 0) {
            /* inside a fence every line is kept as it is, blank or not */
            line_begin(c);
            if (is_fence_close(s, a, b, fence_ch, fence_n)) {
                fence_ch = 0;
                put(c, s + a, skip_spaces(s, a, b) - a);
                put_str(c, "```");
            } else {
                put(c, s + a, b - a);
            }
            a = next;
            continue;
        }
        if (skip_spaces(s, a, b) == b) {
            c->pending_blank = c->out.len > 0;
            in_table = 0;
            a = next;
            continue;
        }
        if (is_fence_open(s, a, b, &fence_ch, &fence_n, &fp)) {
            fence_start = c->out.len;
            line_begin(c);
            c->pending_blank = 0;
            put(c, s + a, fp - a);
            put_str(c, "```");   /* the language tag would show as text */
            fence_body = c->out.len;
            a = next;
            continue;
        }
        mark_code_spans(c, a, b);
        mark_urls(c, a, b);
        if (!in_table && has_pipe(s, a, b)) {
            size_t n2, b2 = next < c->len ? line_stop(s, next, c->len, &n2) : next;
            in_table = s[skip_spaces(s, a, b)] == '|' || is_table_sep(s, next, b2);
        }
        if (in_table && has_pipe(s, a, b)) {
            if (!is_table_sep(s, a, b)) {   /* the |---| row is dropped */
                body = line_begin(c);
                convert_table_row(c, a, b);
                line_end(c, start, body, 0);
            }
        } else {
            in_table = 0;
            body = line_begin(c);
            convert_text_line(c, a, b);
            line_end(c, start, body, 1);
        }
        a = next;
    }
    if (fence_ch != 0)
        close_fence(c, fence_start, fence_body);
}

/* NUL bytes would cut the C string short; they carry no text. */
static char *drop_nuls(const char *md, size_t len, size_t *out_len)
{
    char *p = malloc(len ? len : 1);
    size_t i, n = 0;

    if (p == NULL)
        return NULL;
    for (i = 0; i < len; i++)
        if (md[i] != '\0')
            p[n++] = md[i];
    *out_len = n;
    return p;
}

char *myna_wa_from_markdown(const char *md, size_t len, struct myna_err *err)
{
    struct conv c;
    char *copy = NULL, *res;

    if (md == NULL && len > 0) {
        myna_err_set(err, MYNA_EINVAL, "cannot convert markdown: no input");
        return NULL;
    }
    if (len > MYNA_WA_MARKDOWN_MAX_BYTES) {
        myna_err_set(err, MYNA_ETOOBIG, "cannot convert markdown: %zu bytes, limit %u", len,
                     MYNA_WA_MARKDOWN_MAX_BYTES);
        return NULL;
    }
    memset(&c, 0, sizeof(c));
    if (len > 0 && memchr(md, '\0', len) != NULL) {
        if ((copy = drop_nuls(md, len, &len)) == NULL)
            goto nomem;
        md = copy;
    }
    c.s = md;
    c.len = len;
    c.cell = NONE;
    /* no rule more than triples a byte ("|" -> " - ") */
    c.out = (struct myna_buf)MYNA_BUF_INIT(3 * len + 16);
    c.code = malloc(len ? len : 1);
    if (c.code == NULL)
        goto nomem;
    convert_lines(&c);
    free(c.code);
    free(copy);
    if (c.rc != MYNA_OK) {
        myna_buf_release(&c.out);
        myna_err_set(err, c.rc, "cannot convert markdown: %s", myna_strerror(c.rc));
        return NULL;
    }
    if (c.out.len == 0) {
        myna_buf_release(&c.out);
        res = calloc(1, 1);
    } else {
        res = myna_buf_detach(&c.out, NULL);
    }
    if (res == NULL)
        goto nomem;
    return res;

nomem:
    free(copy);
    myna_err_set(err, MYNA_ENOMEM, "cannot convert markdown: out of memory");
    return NULL;
}

/* ---- splitting ---------------------------------------------------------- */

/* Bytes of the character at s[0..n): a valid UTF-8 sequence (no overlongs,
 * surrogates or values past U+10FFFF), or 1 for a byte that starts none. */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
    size_t k = myna_utf8_seq(s, n);

    return k ? k : 1;
}

static int is_ws(unsigned char ch)
{
    return ch == '\n' || is_space(ch);
}

static int is_blank_line_after(const char *s, size_t j, size_t len)
{
    size_t k = j + 1;

    while (k < len && is_space((unsigned char)s[k]))
        k++;
    return k < len && s[k] == '\n';
}

/* The code point at s[i..len), UINT32_MAX for a byte that starts none. */
static uint32_t code_point_at(const char *s, size_t i, size_t len)
{
    const unsigned char *p = (const unsigned char *)s + i;
    size_t k = myna_utf8_seq(p, len - i);

    return k ? myna_utf8_decode(p, k) : UINT32_MAX;
}

/* Where the character before j starts (a byte that starts none is one). */
static size_t char_before(const char *s, size_t j)
{
    size_t k = j - 1;

    while (k > 0 && j - k < 4 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return utf8_char_len((const unsigned char *)s + k, j - k) == j - k ? k : j - 1;
}

/* Whether cp is in one of the n [first, last] ranges. */
static int in_ranges(uint32_t cp, const uint32_t (*ranges)[2], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return 1;
    return 0;
}

/* Whether cp shows nothing: White_Space and Default_Ignorable_Code_Point
 * (Unicode), and the fillers that show blank (U+2800, the Hangul ones). */
static int is_invisible(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        { 0x0009, 0x000D }, { 0x0020, 0x0020 }, { 0x0085, 0x0085 }, { 0x00A0, 0x00A0 },
        { 0x00AD, 0x00AD }, { 0x034F, 0x034F }, { 0x061C, 0x061C }, { 0x115F, 0x1160 },
        { 0x1680, 0x1680 }, { 0x17B4, 0x17B5 }, { 0x180B, 0x180F }, { 0x2000, 0x200F },
        { 0x2028, 0x202F }, { 0x205F, 0x206F }, { 0x2800, 0x2800 }, { 0x3000, 0x3000 },
        { 0x3164, 0x3164 }, { 0xFE00, 0xFE0F }, { 0xFEFF, 0xFEFF }, { 0xFFA0, 0xFFA0 },
        { 0xFFF0, 0xFFF8 }, { 0x1BCA0, 0x1BCA3 }, { 0x1D173, 0x1D17A }, { 0xE0000, 0xE0FFF },
    };

    return in_ranges(cp, ranges, sizeof(ranges) / sizeof(ranges[0]));
}

int myna_wa_is_blank(const char *text)
{
    size_t len = strlen(text);

    for (size_t i = 0; i < len; i += utf8_char_len((const unsigned char *)text + i, len - i))
        if (!is_invisible(code_point_at(text, i, len)))
            return 0;
    return 1;
}

static int is_regional_indicator(uint32_t cp)
{
    return cp >= 0x1F1E6 && cp <= 0x1F1FF;
}

/* Whether cp belongs to the character before it: a joiner, a variation
 * selector, a skin tone, an emoji tag (the flags of England, Scotland,
 * Wales), or a combining mark: accents, marks for symbols (the keycap of
 * a 1 as a keycap), and the points and vowel signs of the scripts that write them
 * apart (Hebrew, Arabic, Syriac, the Indic scripts, Thai, Lao). Generous
 * where a block mixes marks and letters: a cut moved back one letter too
 * many costs nothing, a bare mark at the start of a message shows as a
 * dotted circle. */
static int is_mark(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        { 0x0300, 0x036F }, { 0x0483, 0x0489 }, { 0x0591, 0x05C7 }, { 0x0610, 0x061A },
        { 0x064B, 0x065F }, { 0x0670, 0x0670 }, { 0x06D6, 0x06ED }, { 0x0711, 0x0711 },
        { 0x0730, 0x074A }, { 0x0E31, 0x0E31 }, { 0x0E34, 0x0E3A }, { 0x0E47, 0x0E4E },
        { 0x0EB1, 0x0EB1 }, { 0x0EB4, 0x0EBC }, { 0x0EC8, 0x0ECE }, { 0x1AB0, 0x1AFF },
        { 0x1DC0, 0x1DFF }, { 0x200C, 0x200D }, { 0x20D0, 0x20FF }, { 0x3099, 0x309A },
        { 0xFE00, 0xFE0F }, { 0xFE20, 0xFE2F }, { 0x1F3FB, 0x1F3FF }, { 0xE0020, 0xE007F },
        { 0xE0100, 0xE01EF },
    };
    uint32_t off = cp & 0x7F;

    /* Devanagari to Malayalam share one layout, block by block: signs
     * before the letters, vowel signs and the virama after them */
    if (cp >= 0x0900 && cp <= 0x0D7F)
        return off <= 0x03 || (off >= 0x3A && off <= 0x4F && off != 0x3D) ||
               (off >= 0x51 && off <= 0x57) || (off >= 0x62 && off <= 0x63);
    return in_ranges(cp, ranges, sizeof(ranges) / sizeof(ranges[0]));
}

/* The virama of an Indic script, which joins the letters around it into
 * one conjunct (ka, virama, ssa). */
static int is_virama(uint32_t cp)
{
    return cp >= 0x0900 && cp <= 0x0D7F && (cp & 0x7F) == 0x4D;
}

/* Whether a cut at j would split what shows as one character: before a
 * mark (is_mark), after a joiner or a virama, or between the two regional
 * indicators of a flag (pairs count from the start of their run, so an odd
 * count before j means j is inside one). */
static int splits_cluster(const char *s, size_t j, size_t len)
{
    uint32_t next, prev;
    size_t k, n = 0;

    if (j == 0 || j >= len)
        return 0;
    next = code_point_at(s, j, len);
    prev = code_point_at(s, char_before(s, j), len);
    if (is_mark(next) || prev == 0x200D || is_virama(prev))
        return 1;
    if (!is_regional_indicator(next))
        return 0;
    for (k = j; k > 0 && is_regional_indicator(code_point_at(s, char_before(s, k), len));
         k = char_before(s, k))
        n++;
    return n % 2 == 1;
}

/* A cut between two characters at end, moved back until it splits no
 * character as shown; end itself when no such cut is left in the part. */
static size_t hard_cut(const char *s, size_t pos, size_t end, size_t len)
{
    size_t j = end;

    while (j > pos && splits_cluster(s, j, len))
        j = char_before(s, j);
    return j > pos ? j : end;
}

/* Whether s[pos..j) ends a sentence (myna_ends_sentence: its mark, then
 * the closers that stay with it); MYNA_SENTENCE_TIGHT after 。！？. */
static int ends_sentence(const char *s, size_t pos, size_t j)
{
    return j > pos ? myna_ends_sentence(s + pos, j - pos) : 0;
}

/* Whether a cut at j, where no space is, goes right after a sentence of a
 * script that writes none before the next one (。！？ and their closers):
 * j is past every closer, and splits no character as shown. */
static int tight_sentence_cut(const char *s, size_t pos, size_t j, size_t len)
{
    return j > pos && j < len && !is_ws((unsigned char)s[j]) &&
           ends_sentence(s, pos, j) == MYNA_SENTENCE_TIGHT &&
           !ends_sentence(s, pos, j + utf8_char_len((const unsigned char *)s + j, len - j)) &&
           !splits_cluster(s, j, len);
}

/* WhatsApp's marks inside a line: *bold*, _italic_, ~struck~ and `code`. A
 * span opens at a mark at the start of the text, or after what is no letter
 * or digit, with no space after it; it closes at the next like mark with
 * something between, no space before it, and no letter or digit after it,
 * on the same line. A cut inside a span leaves both halves showing the
 * bare marks. */
static const char inline_marks[4] = { '*', '_', '~', '`' };

/* The mark closing the span s[i] opens, before stop; NONE: none. */
static size_t span_close(const char *s, size_t i, size_t stop)
{
    for (size_t k = i + 2; k < stop && s[k] != '\n'; k++)
        if (s[k] == s[i] && !is_space((unsigned char)s[k - 1]) &&
            !is_word((unsigned char)s[k + 1]))
            return k;
    return NONE;
}

/* The last space at or before end, at a sentence end if one is in reach,
 * that no span holds (a starts the line or a part; s[a..end] has no line
 * break), or the end of a sentence that needs no space after it (。);
 * NONE when there is none. The spans are paired from a on, as the
 * part will show them, each kind of mark on its own. A span that would
 * close further past end than end is from a counts as none: the search
 * stays linear on one long line. */
static size_t space_outside_spans(const char *s, size_t a, size_t end, size_t len)
{
    size_t from[4], to[4], sentence = NONE, space = NONE;
    size_t stop = len - end > end - a + 1 ? end + (end - a) + 1 : len;

    for (int t = 0; t < 4; t++)
        from[t] = to[t] = NONE;   /* no span yet */
    for (size_t j = a; j <= end; j++) {
        const char *m = memchr(inline_marks, s[j], sizeof(inline_marks));
        int inside = 0, blank;

        if (m != NULL) {
            int t = (int)(m - inline_marks);
            /* once a mark finds no closer, none after it will */
            if ((to[t] == NONE ? from[t] == NONE : j > to[t]) &&
                (j == a || !is_word((unsigned char)s[j - 1])) && !is_ws((unsigned char)s[j + 1])) {
                from[t] = j;
                to[t] = span_close(s, j, stop);
            }
        }
        blank = s[j] == ' ' || s[j] == '\t';
        if (j == a || (!blank && !tight_sentence_cut(s, a, j, len)))
            continue;
        for (int t = 0; t < 4; t++)
            inside |= to[t] != NONE && from[t] < j && j < to[t];
        if (!inside) {
            if (blank)
                space = j;
            if (!blank || ends_sentence(s, a, j))
                sentence = j;
        }
    }
    return sentence != NONE ? sentence : space;
}

/* The last sentence end in reach, else the last space, else a hard cut
 * between two characters: a line's cut when no space is out of the spans. */
static size_t cut_in_line(const char *s, size_t pos, size_t end, size_t len)
{
    size_t j;

    for (j = end; j > pos; j--)   /* the mark and its closers stay, the space goes */
        if (((s[j] == ' ' || s[j] == '\t') && ends_sentence(s, pos, j)) ||
            tight_sentence_cut(s, pos, j, len))
            return j;
    for (j = end; j > pos; j--)
        if (s[j] == ' ' || s[j] == '\t')
            return j;
    return hard_cut(s, pos, end, len);
}

/* Where to cut the text at pos when only s[pos..end) fits: the last cut of
 * the best kind. A separator may sit at end itself, since it is trimmed. */
static size_t choose_cut(const char *s, size_t pos, size_t end, size_t len)
{
    size_t j;

    for (j = end; j > pos; j--)   /* a blank line */
        if (s[j] == '\n' && is_blank_line_after(s, j, len))
            return j;
    for (j = end; j > pos; j--)   /* a line break */
        if (s[j] == '\n')
            return j;
    if ((j = space_outside_spans(s, pos, end, len)) != NONE)
        return j;
    return cut_in_line(s, pos, end, len);
}

/* The cut of a last part that cannot hold the rest: nothing follows it, so
 * keeping more text beats a tidier cut further back, and any line break or
 * sentence end will do. */
static size_t choose_last_cut(const char *s, size_t pos, size_t end, size_t len)
{
    size_t j, nl = pos, sp;

    for (j = end; j > pos && nl == pos; j--)
        if (s[j] == '\n')
            nl = j;
    sp = space_outside_spans(s, nl == pos ? pos : nl + 1, end, len);
    if (sp != NONE && (nl == pos || ends_sentence(s, pos, sp)))
        return sp;
    return nl != pos ? nl : cut_in_line(s, pos, end, len);
}

/* The end of n characters from pos (or len). */
static size_t skip_chars(const char *s, size_t pos, size_t len, size_t n)
{
    while (pos < len && n-- > 0)
        pos += utf8_char_len((const unsigned char *)s + pos, len - pos);
    return pos;
}

static size_t count_chars(const char *s, size_t pos, size_t end)
{
    size_t n = 0;

    while (pos < end) {
        pos += utf8_char_len((const unsigned char *)s + pos, end - pos);
        n++;
    }
    return n;
}

/* Whether the line at j is a code fence as the converter writes it: "```"
 * alone, maybe indented. */
static int is_fence_line(const char *s, size_t j, size_t len)
{
    size_t i = j;

    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (len - i < 3 || memcmp(s + i, "```", 3) != 0)
        return 0;
    for (i += 3; i < len && s[i] != '\n'; i++)
        if (!is_space((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Whether only spaces and tabs stand between the start of its line and j:
 * a part begins after the whitespace at its cut, so an indented fence line
 * (a code block in a list item) begins a part at its "```". */
static int starts_line(const char *s, size_t j)
{
    while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t'))
        j--;
    return j == 0 || s[j - 1] == '\n';
}

/* Whether a fence is open at e, given whether one was open at pos: every
 * fence line that starts in [pos, e) opens or closes one. */
static int fence_open_at(const char *s, size_t pos, size_t e, size_t len, int open)
{
    size_t j = pos;

    while (j < e) {
        const char *nl;
        if (starts_line(s, j) && is_fence_line(s, j, len))
            open = !open;
        if ((nl = memchr(s + j, '\n', e - j)) == NULL)
            break;
        j = (size_t)(nl - s) + 1;
    }
    return open;
}

/* The start of the last line of [pos, e) when it is a fence line, else
 * NONE. Called with a fence open at e, it finds a part that would end with
 * the line opening a fence, nothing in it yet. */
static size_t fence_line_at_end(const char *s, size_t pos, size_t e, size_t len)
{
    size_t j = e;

    while (j > pos && s[j - 1] != '\n')
        j--;
    return starts_line(s, j) && is_fence_line(s, j, len) ? j : NONE;
}

/* One part as planned: the text [pos, e), the marks added to it, and where
 * the next part starts. */
struct part {
    size_t pos, e, next;
    int reopen;                /* the previous part was cut inside a fence */
    int close;                 /* this one is: it closes the fence */
    int cut_short;             /* the last part allowed: the rest is dropped */
    const char *suffix;        /* "" or the marks that say so */
};

/* The marks after a part: a fence closed, then the mark of a part cut
 * short. */
static const char *suffix_of(const char *s, const struct part *p)
{
    if (p->close)
        return p->cut_short ? FENCE_CLOSE "\n" MYNA_ELLIPSIS : FENCE_CLOSE;
    if (p->cut_short)
        return ends_sentence(s, p->pos, p->e) == MYNA_SENTENCE_END ? " " MYNA_ELLIPSIS
                                                                    : MYNA_ELLIPSIS;
    return "";
}

static size_t mark_chars(const char *m)
{
    return count_chars(m, 0, strlen(m));
}

/* Where the next part starts after a cut: past the whitespace, past the
 * line that closes the fence the part closed (*open: it did; cleared
 * then), and nowhere (len) before a fence that opens with nothing after it
 * (an empty code block would show as text). */
static size_t next_start(const char *s, size_t pos, size_t len, int fences, int *open)
{
    const char *nl;
    size_t k;

    while (pos < len && is_ws((unsigned char)s[pos]))
        pos++;
    for (k = pos; k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'); k--) {
    }
    if (!fences || pos >= len || (k > 0 && s[k - 1] != '\n') || !is_fence_line(s, pos, len))
        return pos;
    nl = memchr(s + pos, '\n', len - pos);
    for (k = nl != NULL ? (size_t)(nl - s) : len; k < len && is_ws((unsigned char)s[k]); k++) {
    }
    if (*open) {
        *open = 0;
        return k;
    }
    return k >= len ? len : pos;
}

/* The end of a part cut at cut: its whitespace goes. */
static size_t trim_cut(const char *s, size_t pos, size_t cut)
{
    while (cut > pos && is_ws((unsigned char)s[cut - 1]))
        cut--;
    return cut;
}

/* Plans the part at pos. First the most text that fits; when the marks it
 * needs do not fit beside it, again with room kept for them, and at last
 * for the longest marks, which always fit. */
static void plan_part(const char *s, size_t len, size_t max_chars, int last, struct part *p)
{
    int decor = max_chars >= MYNA_WA_SPLIT_DECOR_MIN;
    size_t reserve = 0, end, cut, marks, j;

    if (p->reopen)
        max_chars -= strlen(FENCE_OPEN);
    for (;;) {
        int open;
        end = skip_chars(s, p->pos, len, max_chars - reserve);
        for (cut = end; cut < len && is_ws((unsigned char)s[cut]); cut++) {
        }
        if (cut >= len)
            cut = len;   /* the rest fits */
        else if (last && decor)
            cut = choose_last_cut(s, p->pos, end, len);
        else
            cut = choose_cut(s, p->pos, end, len);
        p->e = trim_cut(s, p->pos, cut);
        p->close = decor && fence_open_at(s, p->pos, p->e, len, p->reopen);
        if (p->close && (j = fence_line_at_end(s, p->pos, p->e, len)) != NONE) {
            /* an empty code block would show as text: the cut goes before
             * the fence, or into its code when the part starts with it */
            cut = j > p->pos ? j : choose_cut(s, j + strcspn(s + j, "\n"), end, len);
            p->e = trim_cut(s, p->pos, cut);
            p->close = fence_open_at(s, p->pos, p->e, len, p->reopen);
        }
        open = p->close;
        p->cut_short = last && next_start(s, cut, len, decor, &open) < len;
        p->suffix = decor ? suffix_of(s, p) : "";
        marks = mark_chars(p->suffix);
        if (reserve >= MARKS_MAX_CHARS || count_chars(s, p->pos, p->e) + marks <= max_chars)
            break;
        reserve = marks > reserve ? marks : MARKS_MAX_CHARS;
    }
    p->next = cut;
}

void myna_wa_split_free(char **parts, size_t n)
{
    size_t i;

    if (parts == NULL)
        return;
    for (i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
}

/* The part's text and marks as one string; NULL when out of memory. */
static char *part_text(const char *s, const struct part *p)
{
    size_t o = p->reopen ? strlen(FENCE_OPEN) : 0, n = p->e - p->pos, m = strlen(p->suffix);
    char *out = malloc(o + n + m + 1);

    if (out == NULL)
        return NULL;
    memcpy(out, FENCE_OPEN, o);
    memcpy(out + o, s + p->pos, n);
    memcpy(out + o + n, p->suffix, m + 1);
    return out;
}

int myna_wa_split(const char *text, size_t max_chars, size_t max_parts, char ***parts,
                  size_t *n, struct myna_err *err)
{
    char **v = NULL;
    size_t nv = 0, cap = 0, len, pos = 0;
    int open = 0;   /* a fence is open where the next part starts */

    if (parts == NULL || n == NULL)
        return myna_err_set(err, MYNA_EINVAL, "cannot split text: no output");
    *parts = NULL;
    *n = 0;
    if (text == NULL)
        return myna_err_set(err, MYNA_EINVAL, "cannot split text: no text");
    if (max_chars == 0)
        return myna_err_set(err, MYNA_EINVAL, "cannot split text into parts of 0 characters");
    len = strlen(text);
    if (myna_wa_is_blank(text))
        return MYNA_OK;  /* it would show as an empty message: none */
    while ((pos = next_start(text, pos, len, max_chars >= MYNA_WA_SPLIT_DECOR_MIN, &open)) <
           len) {
        struct part p = { .pos = pos, .reopen = open };
        char *part;

        plan_part(text, len, max_chars, max_parts > 0 && nv + 1 == max_parts, &p);
        if (nv == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **nvp = realloc(v, ncap * sizeof(*v));
            if (nvp == NULL)
                goto nomem;
            v = nvp;
            cap = ncap;
        }
        if ((part = part_text(text, &p)) == NULL)
            goto nomem;
        v[nv++] = part;
        if (p.cut_short)
            break;
        open = p.close;
        pos = p.next;
    }
    *parts = v;
    *n = nv;
    return MYNA_OK;

nomem:
    myna_wa_split_free(v, nv);
    return myna_err_set(err, MYNA_ENOMEM, "cannot split text: out of memory");
}
