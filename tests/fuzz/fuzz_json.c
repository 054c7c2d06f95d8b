/* fuzz_json.c - libFuzzer harness for the checks on JSON texts and trees
 * that every outside body goes through (core/json.h): the admin API's and
 * the simulator's bodies, instances files, webhooks, model answers.
 *
 * Whatever the bytes:
 *   - myna_json_mend_escapes keeps the length, writes "FFFD" only over the
 *     four hex digits of a \u escape that held 0000 or a surrogate half,
 *     says how many it wrote, and has nothing left to mend a second time;
 *     a text cJSON read before mending it still reads after;
 *   - a value myna_json_parse_whole takes is all of the text, with no
 *     string cut at a NUL, and its print is taken again as the same value;
 *   - myna_json_repeated_key and myna_json_infinite agree with a plain walk
 *     of the tree, and their path fits a small cap, terminated.
 * A broken promise traps so the fuzzer keeps the input. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The four hex digits at h: 0000 or a surrogate half (D800-DFFF). */
static int mendable(const char *h)
{
    long v = 0;

    for (int k = 0; k < 4; k++) {
        if (!isxdigit((unsigned char)h[k]))
            return 0;
        v = v << 4 | (isdigit((unsigned char)h[k]) ? h[k] - '0' : (tolower(h[k]) - 'a' + 10));
    }
    return v == 0 || (v >= 0xD800 && v <= 0xDFFF);
}

/* Where a group "\uFFFD" of m written over text starts, holding byte i:
 * its first hex digit, or 0 for none. */
static size_t group_of(const char *m, const char *text, size_t n, size_t i)
{
    for (size_t g = i >= 3 ? i - 3 : 0; g <= i; g++)
        if (g >= 2 && g + 4 <= n && m[g - 2] == '\\' && m[g - 1] == 'u' &&
            memcmp(m + g, "FFFD", 4) == 0 && mendable(text + g))
            return g;
    return 0;
}

static void check_mend(const char *text, size_t n)
{
    char *m = malloc(n ? n : 1);
    size_t wrote, groups = 0, last = 0;
    cJSON *before, *after;

    CHECK(m != NULL);
    if (n > 0)
        memcpy(m, text, n);
    wrote = myna_json_mend_escapes(m, n);
    for (size_t i = 0; i < n; i++) {
        size_t g;
        if (m[i] == text[i])
            continue;
        CHECK((g = group_of(m, text, n, i)) != 0);
        if (g != last)
            groups++;
        last = g;
    }
    CHECK(groups <= wrote);  /* a 0000 or "FFFD" already there may change no byte */
    CHECK(myna_json_mend_escapes(m, n) == 0);   /* nothing left to mend */
    before = cJSON_ParseWithLength(text, n);
    if (before != NULL) {
        after = cJSON_ParseWithLength(m, n);
        CHECK(after != NULL);
        cJSON_Delete(after);
    }
    cJSON_Delete(before);
    free(m);
}

/* A key of some object of v twice, by a plain walk. */
static int naive_repeated(const cJSON *v)
{
    for (const cJSON *a = v ? v->child : NULL; a; a = a->next) {
        if (cJSON_IsObject(v))
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return 1;
        if (naive_repeated(a))
            return 1;
    }
    return 0;
}

static int naive_infinite(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return !isfinite(v->valuedouble);
    for (const cJSON *a = v ? v->child : NULL; a; a = a->next)
        if (naive_infinite(a))
            return 1;
    return 0;
}

static void check_tree(const cJSON *v, size_t cap)
{
    char path[48];
    int rc;

    memset(path, 'x', sizeof(path));
    rc = myna_json_repeated_key(v, path, cap);
    CHECK(rc == naive_repeated(v));
    CHECK(memchr(path, '\0', cap) != NULL);
    if (rc == 0)
        CHECK(path[0] == '\0');
    memset(path, 'x', sizeof(path));
    rc = myna_json_infinite(v, path, cap);
    CHECK(rc == naive_infinite(v));
    CHECK(memchr(path, '\0', cap) != NULL);
    if (rc == 0)
        CHECK(path[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *why = NULL;
    size_t cap = size > 0 ? 1 + data[0] % 47 : 1;
    cJSON *v, *any;
    char *printed;

    check_mend(text, size);

    v = myna_json_parse_whole(text, size, &why);
    if (v == NULL) {
        CHECK(why != NULL && why[0] != '\0');
    } else {
        CHECK(!myna_json_has_nul(text, size));
        printed = cJSON_PrintUnformatted(v);
        /* cJSON_Compare finds the first of a repeated key in both */
        if (printed != NULL && !naive_infinite(v) && !naive_repeated(v)) {
            cJSON *again = myna_json_parse_whole(printed, strlen(printed), NULL);
            CHECK(again != NULL && cJSON_Compare(v, again, 1));
            cJSON_Delete(again);
        }
        free(printed);
        check_tree(v, cap);
        cJSON_Delete(v);
    }
    any = cJSON_ParseWithLength(text, size);
    if (any != NULL)
        check_tree(any, cap);
    cJSON_Delete(any);
    return 0;
}
