/* json.h - cJSON allocations from an arena, and the checks on a JSON text
 * or tree that cJSON cannot make itself.
 *
 * cJSON mallocs every node and string and frees them one by one; on the
 * webhook path that was a fifth of the loop's time. While a thread has an
 * arena installed with myna_json_arena_begin, cJSON's allocations on that
 * thread come from that arena and its frees do nothing: the tree goes with the
 * arena. Outside such a section cJSON uses malloc and free as usual.
 *
 * Rule: a cJSON object made inside a section must not outlive its arena and
 * must not be deleted after the section ends (its memory was never malloc'd).
 * Sections nest; the hooks are installed once per process. */
#ifndef MYNA_CORE_JSON_H
#define MYNA_CORE_JSON_H

#include <stddef.h>

#include "core/arena.h"

struct myna_json_section {
    struct myna_arena *prev;
    int prev_failed;
};

/* cJSON on this thread allocates from a until myna_json_arena_end. */
void myna_json_arena_begin(struct myna_json_section *s, struct myna_arena *a);
/* Returns 1 if an allocation in the section failed (the arena was full or
 * out of memory), so that a NULL from cJSON can be told from bad input. */
int myna_json_arena_end(struct myna_json_section *s);

/* 1 if cJSON would read a string of the n bytes at text as shorter than it
 * is: a NUL byte anywhere, or a \u escape inside a string that cJSON
 * decodes as 0 (\u0000, or one with a byte that is not a hex digit, which
 * cJSON 1.7.15 takes for a 0 instead of refusing it). cJSON keeps
 * no string lengths, so such a valuestring ends at the NUL ("a\u0000b" reads
 * as "a") and nothing in the tree tells. Else 0 (also for NULL). Exact for
 * any text cJSON parses; on other text it may say 1 where no string would
 * have been cut. */
int myna_json_has_nul(const char *text, size_t n);

/* Rewrites, in place, into \uFFFD (the replacement character: the same six
 * bytes, so nothing moves) each escape of a string of text[0..n) that
 * cJSON mishandles although it is valid JSON: \u0000, at which cJSON cuts
 * the string, and half a surrogate pair alone ("\ud83d", "\udc88": valid
 * JSON, RFC 8259 8.2, that encodes no character), for which cJSON refuses
 * the whole text; whole pairs are left as they are. Malformed \u escapes
 * and NUL bytes, which no valid JSON holds, are left as they are (check
 * with myna_json_has_nul). Returns how many escapes it rewrote; 0 for
 * NULL. */
size_t myna_json_mend_escapes(char *text, size_t n);

struct cJSON;

/* The JSON value of all n bytes at text (cJSON_Delete it), or NULL with
 * *why (when why is not NULL) a short reason for a person: not valid
 * JSON, bytes other than whitespace after the value ({"a":1}{"a":2}: a
 * proxy that checked one value and Myna, which would keep the other, must
 * not disagree), or a string cJSON would cut at a NUL (myna_json_has_nul:
 * "tok\u0000en" would be kept as "tok"). For the bodies of requests. */
struct cJSON *myna_json_parse_whole(const char *text, size_t n, const char **why);

/* Whether some object anywhere in v holds a key twice. cJSON keeps both
 * and every lookup finds the first, so a check, a mask or a seal of one
 * name misses the other ({"api_key":"a","api_key":"b"}). Returns 1 with
 * the repeated key's path in path ("llm.api_key", "faq[2].q"; cut to
 * fit), 0 when every key is unique (path ""), -1 out of memory. Takes
 * O(k log k) for an object of k keys. */
int myna_json_repeated_key(const struct cJSON *v, char *path, size_t cap);

/* Whether some number anywhere in v is not finite. JSON has no infinity,
 * but cJSON reads a number past the range of a double (1e999) as one and
 * prints it back as null: a tree checked as it was parsed and the text
 * printed from it would disagree (a bound refused in one is a default in
 * the other). Returns 1 with the number's path in path ("llm.temperature",
 * "[2].batch.max"; cut to fit), else 0 (path ""). */
int myna_json_infinite(const struct cJSON *v, char *path, size_t cap);

#endif
