/* format.h - WhatsApp message text: an LLM's Markdown rewritten in WhatsApp's
 * own markup, and long replies split into messages.
 *
 * WhatsApp knows *bold*, _italic_, ~strike~, ```monospace```, `inline code`,
 * "- " bullets, "1. " lists and "> " quotes, and shows everything else
 * literally (reference B7): headings, tables, links and images are rewritten
 * as plain text. A text message holds at most 4096 characters (B2), counted
 * in Unicode code points, not bytes. Both functions are pure (bytes in, heap
 * strings out): no I/O, no logging, safe on any bytes. */
#ifndef MYNA_WA_FORMAT_H
#define MYNA_WA_FORMAT_H

#include <stddef.h>

#include "core/err.h"

#define MYNA_WA_TEXT_MAX_CHARS 4096          /* text message body, B2 */
#define MYNA_WA_MARKDOWN_MAX_BYTES (1u << 20) /* longer input: MYNA_ETOOBIG */
/* Messages one reply may become: a runaway answer must not flood a chat. */
#define MYNA_WA_REPLY_MAX_PARTS 4
/* Parts shorter than this get no marks added by myna_wa_split. */
#define MYNA_WA_SPLIT_DECOR_MIN 16

/* Converts md[0..len) (need not be NUL-terminated) to WhatsApp text:
 *   **b** __b__ -> *b*   *i* -> _i_   ***bi*** -> *_bi_*   ~~s~~ -> ~s~
 *   "# Title" (levels 1-6)       -> "*Title*" on its own line
 *   [text](url) -> "text (url)"; [url](url) -> "url"; ![alt](url) -> "alt (url)"
 *   <https://x> -> "https://x"; \* and other Markdown escapes -> the character
 *   a bare http(s) URL is kept as written (its _ * ~ are no markers), but
 *   for Markdown escapes; marks it ends with are not part of it
 *   "* x", "+ x", "- x" -> "- x" keeping the indentation; "1. x" and "> x" kept
 *   ```lang fences (and ~~~) -> ``` fences; inside fences and `code` nothing
 *   is converted; a fence still open at the end is closed (one with nothing
 *   in it dropped)
 *   table rows -> cells joined by " - " (empty cells and |---| rows dropped);
 *   a <br> (<br/>, <br />) in a cell -> a space between its words
 *   ---, ***, ___ rules -> an empty line
 * Runs of blank lines become one blank line, trailing spaces and leading and
 * trailing blank lines go, CRLF becomes LF, NUL bytes are dropped. Unbalanced
 * markers and invalid UTF-8 pass through as they are.
 * Returns a malloc'd NUL-terminated string (free() it), or NULL with err:
 * MYNA_EINVAL (md NULL with len > 0), MYNA_ETOOBIG (len over
 * MYNA_WA_MARKDOWN_MAX_BYTES), MYNA_ENOMEM. */
char *myna_wa_from_markdown(const char *md, size_t len, struct myna_err *err);

/* Splits the NUL-terminated text into *n parts of at most max_chars code
 * points each (MYNA_WA_TEXT_MAX_CHARS for a text message). Each cut is the
 * last one in reach of the first kind found, in this order: a blank line, a
 * line break, a sentence end (". ", "! ", "? ", "… "), a space, and else a
 * hard cut between two code points (never inside a UTF-8 sequence; a byte
 * that is not valid UTF-8 counts as one character), moved back so as not
 * to split what shows as one character: a flag, an emoji with a skin tone,
 * a selector or a joiner, a keycap, a tagged flag, a letter with its
 * combining marks (accents, Hebrew and Arabic points, Indic and Thai vowel
 * signs, an Indic conjunct), unless the
 * whole part is one such sequence. A sentence end or space inside a
 * span of WhatsApp's marks on its line (*bold*, _italic_, ~struck~,
 * `code`, paired as the part will show them) is passed over while one
 * outside every span is in reach: both halves would show bare marks.
 * Parts are trimmed of ASCII whitespace and empty ones dropped, so text
 * that fits gives exactly one part and blank text (myna_wa_is_blank) gives
 * none (*parts NULL, *n 0). The parts are, in
 * order, the text with only whitespace removed at the cuts, and these
 * marks: a part cut inside a code fence (a "```" line, as the converter
 * writes them) ends with "\n```" closing it and the next begins with
 * "```\n" reopening it (or, when the fence closes right at the cut, skips
 * that closing line); no part ends with a fence that opens, and one that
 * opens at the very end of the text is dropped.
 * With max_parts > 0 there are at most max_parts parts: when the text does
 * not fit them, the last one ends at the last line break, sentence end or
 * space in reach, followed by "…" (" …" after a sentence end, "\n…" after
 * a fence it closes), and the rest of the text is dropped. Parts under
 * MYNA_WA_SPLIT_DECOR_MIN characters have no room for marks: they are the
 * text alone, and with max_parts the rest is dropped without a mark.
 * MYNA_OK; MYNA_EINVAL (NULL argument, max_chars 0); MYNA_ENOMEM. On failure
 * *parts is NULL and *n 0. Free the parts with myna_wa_split_free. */
int myna_wa_split(const char *text, size_t max_chars, size_t max_parts, char ***parts,
                  size_t *n, struct myna_err *err);

/* 1 when the NUL-terminated text would show as an empty message: it has
 * only whitespace (Unicode's: also NBSP, U+2000-200A, U+2028, U+3000 ...)
 * and characters that show no glyph (U+200B, joiners, direction marks,
 * U+FEFF, variation selectors, tags, the Hangul fillers and the blank
 * Braille pattern), or nothing; else 0. A byte that is not UTF-8 shows. */
int myna_wa_is_blank(const char *text);

/* Frees what myna_wa_split returned; NULL is ok. */
void myna_wa_split_free(char **parts, size_t n);

#endif
