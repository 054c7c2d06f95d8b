/* json.c - cJSON hooks that allocate from the current thread's arena; the
 * NUL check on a JSON text. */
#include "core/json.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/banned.h"

static _Thread_local struct myna_arena *json_arena;
static _Thread_local int json_failed;

static void *json_malloc(size_t n)
{
    void *p;

    if (json_arena == NULL)
        return malloc(n);
    if ((p = myna_arena_alloc(json_arena, n)) == NULL)
        json_failed = 1;
    return p;
}

static void json_free(void *p)
{
    if (json_arena == NULL)
        free(p);
    /* else: arena memory, released with the arena */
}

/* Before main, while the process has one thread: cJSON keeps its hooks in
 * globals that every cJSON call reads, on any thread. */
__attribute__((constructor)) static void json_install(void)
{
    cJSON_Hooks hooks = { json_malloc, json_free };

    cJSON_InitHooks(&hooks);
}

void myna_json_arena_begin(struct myna_json_section *s, struct myna_arena *a)
{
    s->prev = json_arena;
    s->prev_failed = json_failed;
    json_arena = a;
    json_failed = 0;
}

int myna_json_arena_end(struct myna_json_section *s)
{
    int failed = json_failed;

    json_arena = s->prev;
    json_failed = s->prev_failed;
    return failed;
}

/* The four bytes after a \u decode to code point 0: "0000", or any byte
 * that is not a hex digit, which cJSON (1.7.15) reads as a 0 for the whole
 * escape instead of refusing it ("\uzzzz" is a NUL to it). */
static int u_escape_is_nul(const char *hex)
{
    for (int k = 0; k < 4; k++)
        if (!isxdigit((unsigned char)hex[k]))
            return 1;
    return memcmp(hex, "0000", 4) == 0;
}

/* The UTF-16 code unit of the four hex digits at hex, or -1. */
static long u_escape_unit(const char *hex)
{
    long v = 0;

    for (int k = 0; k < 4; k++) {
        int d = myna_hex_value(hex[k]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* 1 if the \u escape at text[*i] (its 'u') is half a surrogate pair alone:
 * a high one (D800-DBFF) not followed at once by a \u escape of a low one
 * (DC00-DFFF), which is what cJSON takes for a pair, or a low one. A whole
 * pair moves *i to the last byte of its second half. */
static int lone_surrogate(const char *text, size_t n, size_t *i)
{
    size_t j = *i;
    long c, d;

    if (text[j] != 'u' || n - j <= 4 || (c = u_escape_unit(text + j + 1)) < 0xD800 || c > 0xDFFF)
        return 0;
    if (c <= 0xDBFF && n - j > 10 && text[j + 5] == '\\' && text[j + 6] == 'u' &&
        (d = u_escape_unit(text + j + 7)) >= 0xDC00 && d <= 0xDFFF) {
        *i = j + 10;
        return 0;
    }
    return 1;
}

/* Walks text[0..n) as cJSON tells strings apart: a '"' opens one outside
 * a string and closes it inside, where a backslash makes the next byte
 * literal. Without mend it stops at the first NUL byte or \u escape that
 * cJSON decodes as 0 and returns 1. With mend (text itself) it writes
 * "FFFD" over each \u0000 escape and each half surrogate pair alone, counts
 * them, and passes the rest over: a malformed escape is left as it is (it
 * may hold a quote or a backslash, and writing over one would move where a
 * string ends). */
static size_t scan(const char *text, size_t n, char *mend)
{
    int in_string = 0;
    size_t found = 0;

    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\0') {
            if (mend == NULL)
                return 1;
        } else if (text[i] == '"') {
            in_string = !in_string;
        } else if (in_string && text[i] == '\\' && i + 1 < n) {
            i++;
            if (mend == NULL &&
                (text[i] == '\0' || (text[i] == 'u' && n - i > 4 && u_escape_is_nul(text + i + 1))))
                return 1;
            if (mend != NULL && text[i] == 'u' && n - i > 4 &&
                (memcmp(text + i + 1, "0000", 4) == 0 || lone_surrogate(text, n, &i))) {
                memcpy(mend + i + 1, "FFFD", 4);
                found++;
            }
        }
    }
    return found;
}

int myna_json_has_nul(const char *text, size_t n)
{
    return text != NULL && scan(text, n, NULL) != 0;
}

size_t myna_json_mend_escapes(char *text, size_t n)
{
    return text != NULL ? scan(text, n, text) : 0;
}

/* ---- whole texts ---- */

cJSON *myna_json_parse_whole(const char *text, size_t n, const char **why)
{
    const char *end = NULL, *r = NULL;
    cJSON *v = text ? cJSON_ParseWithLengthOpts(text, n, &end, 0) : NULL;

    if (v == NULL) {
        r = "not valid JSON";
    } else {
        while (end < text + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end != text + n)
            r = "bytes after the JSON value";
        else if (myna_json_has_nul(text, n))
            r = "a string holds a NUL character";
    }
    if (r != NULL) {
        cJSON_Delete(v);
        v = NULL;
        if (why)
            *why = r;
    }
    return v;
}

/* ---- repeated keys ---- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The key of obj that appears twice, or NULL; *oom on a failed allocation.
 * The names are sorted, so that an object of many keys costs k log k, not
 * k squared. */
static const char *repeated_in(const cJSON *obj, int *oom)
{
    const cJSON *a;
    const char **names, *found = NULL;
    size_t k = 0, i;

    for (a = obj->child; a; a = a->next)
        k++;
    if (k < 2)
        return NULL;
    if ((names = malloc(k * sizeof(*names))) == NULL) {
        *oom = 1;
        return NULL;
    }
    for (a = obj->child, i = 0; a; a = a->next)
        names[i++] = a->string;
    qsort(names, k, sizeof(*names), cmp_names);
    for (i = 1; i < k && found == NULL; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            found = names[i];
    free(names);
    return found;
}

/* Appends ".name" (or "name" at the start) or "[i]" to path[0..len); the
 * new length, cut to fit. A name is cut between characters, and before it
 * is written: once snprintf has cut it, its end is all there is to see. */
static size_t path_add(char *path, size_t cap, size_t len, const char *name, size_t i)
{
    size_t room = cap - 1 - len, dot = len ? 1 : 0, keep = 0;
    int n;

    if (name != NULL) {
        keep = myna_utf8_cut(name, 64);
        if (dot + keep > room) {
            keep = room > dot ? myna_utf8_cut(name, room - dot) : 0;
            dot = keep ? dot : 0;  /* no '.' before nothing */
        }
    }
    n = name ? snprintf(path + len, cap - len, "%s%.*s", dot ? "." : "", (int)keep, name)
             : snprintf(path + len, cap - len, "[%zu]", i);
    if (n < 0) {
        path[len] = '\0';
        return len;
    }
    return len + (size_t)n < cap ? len + (size_t)n : cap - 1;
}

static int find_repeated(const cJSON *v, char *path, size_t cap, size_t len)
{
    const cJSON *c;
    const char *dup;
    size_t i = 0;
    int oom = 0, rc;

    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return 0;
    if (cJSON_IsObject(v) && (dup = repeated_in(v, &oom)) != NULL) {
        path_add(path, cap, len, dup, 0);
        return 1;
    }
    if (oom)
        return -1;
    for (c = v->child; c; c = c->next, i++) {
        size_t sub = path_add(path, cap, len, cJSON_IsObject(v) ? c->string : NULL, i);
        if ((rc = find_repeated(c, path, cap, sub)) != 0)
            return rc;
        path[len] = '\0';
    }
    return 0;
}

/* find(v) with path where it stops written to path (cap bytes; NULL or
 * 0: not asked for), "" when it finds nothing. */
static int search(const cJSON *v, char *path, size_t cap,
                  int (*find)(const cJSON *v, char *path, size_t cap, size_t len))
{
    char none[1];

    if (path == NULL || cap == 0) {
        path = none;
        cap = sizeof(none);
    }
    path[0] = '\0';
    return v ? find(v, path, cap, 0) : 0;
}

int myna_json_repeated_key(const cJSON *v, char *path, size_t cap)
{
    return search(v, path, cap, find_repeated);
}

/* ---- numbers out of range ---- */

static int find_infinite(const cJSON *v, char *path, size_t cap, size_t len)
{
    const cJSON *c;
    size_t i = 0;

    if (cJSON_IsNumber(v))
        return !isfinite(v->valuedouble);
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return 0;
    for (c = v->child; c; c = c->next, i++) {
        size_t sub = path_add(path, cap, len, cJSON_IsObject(v) ? c->string : NULL, i);
        if (find_infinite(c, path, cap, sub))
            return 1;
        path[len] = '\0';
    }
    return 0;
}

int myna_json_infinite(const cJSON *v, char *path, size_t cap)
{
    return search(v, path, cap, find_infinite);
}
