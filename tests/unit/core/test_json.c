/* test_json.c - myna_json_has_nul: the strings cJSON would cut at a NUL
 * (raw, or a \u0000 escape) are found, and nothing else is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "core/json.h"
#include "core/util.h"
#include "core/banned.h"

#define HAS_NUL(lit) myna_json_has_nul((lit), sizeof(lit) - 1)

static void test_json_has_nul_escaped(void **state)
{
    (void)state;
    assert_int_equal(HAS_NUL("\"a\\u0000b\""), 1);
    assert_int_equal(HAS_NUL("{\"id\":\"wamid.AB\\u0000CD\"}"), 1);
    assert_int_equal(HAS_NUL("{\"k\\u0000ey\":1}"), 1);             /* in a key too */
    assert_int_equal(HAS_NUL("[\"x\",\"\\\"\\u0000\"]"), 1);        /* after an escaped quote */
    assert_int_equal(HAS_NUL("\"\\u0000\""), 1);
    assert_int_equal(HAS_NUL("\"\\u0001\\u00000\""), 1);
}

static void test_json_has_nul_raw(void **state)
{
    (void)state;
    assert_int_equal(HAS_NUL("\"a\0b\""), 1);
    assert_int_equal(HAS_NUL("{\"a\":1}\0"), 1);
    assert_int_equal(HAS_NUL("\"a\\\0\""), 1);                      /* escaped raw NUL */
}

static void test_json_has_nul_none(void **state)
{
    (void)state;
    assert_int_equal(HAS_NUL(""), 0);
    assert_int_equal(myna_json_has_nul(NULL, 0), 0);
    assert_int_equal(HAS_NUL("{\"a\":\"b\",\"c\":[1,2,null]}"), 0);
    assert_int_equal(HAS_NUL("\"\\\\u0000\""), 0);                  /* an escaped backslash */
    assert_int_equal(HAS_NUL("\"\\\\\\\\u0000\""), 0);
    assert_int_equal(HAS_NUL("\"\\u0001\\u1000\\u0100\\u0010\""), 0);
    assert_int_equal(HAS_NUL("\"\\u000"), 0);
    assert_int_equal(HAS_NUL("\"\\"), 0);
    assert_int_equal(HAS_NUL("\"\\U0000\""), 0);                    /* not an escape cJSON reads */
    /* only the n bytes given are read */
    assert_int_equal(myna_json_has_nul("\"a\\u0000\"", 3), 0);
}

/* What cJSON itself does with each text: the check says 1 exactly when a
 * string of the tree is shorter than its source says. */
static void test_json_has_nul_matches_cjson(void **state)
{
    static const struct {
        const char *text;
        size_t len;     /* bytes of text */
        size_t decoded; /* bytes of the decoded string */
    } cases[] = {
        { "\"ab\"", 4, 2 },
        { "\"a\\u0000b\"", 10, 3 },
        { "\"a\\\\u0000b\"", 11, 8 },
        { "\"a\0b\"", 5, 3 },
        { "\"\\u00e9\\u0000\"", 14, 3 },
        /* cJSON reads an escape with a byte that is not a hex digit as 0 */
        { "\"a\\uzzzzb\"", 10, 3 },
        { "\"a\\u00g0b\"", 10, 3 },
        { "\"a\\u1zzzb\"", 10, 3 },
        { "\"a\\u-123b\"", 10, 3 },
        { "\"a\\u0041b\"", 10, 3 },
        { "\"a\\u00E9b\"", 10, 4 },
        { "\"a\\u00e9b\"", 10, 4 },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *v = cJSON_ParseWithLength(cases[i].text, cases[i].len);
        int cut;
        assert_true(cJSON_IsString(v));
        cut = strlen(v->valuestring) != cases[i].decoded;
        assert_int_equal(myna_json_has_nul(cases[i].text, cases[i].len), cut);
        cJSON_Delete(v);
    }
}

/* The mend writes \uFFFD over each \u0000 escape, and cJSON then cuts
 * nothing there; malformed escapes stay for myna_json_has_nul to find. */
static void test_json_mend_escapes(void **state)
{
    char t[] = "[\"a\\u0000b\", \"\\\\u0000\", \"c\\u0000\"]";
    char bad[] = "[\"\\u\"]\", \"\\uzz\\\"x\"]";
    cJSON *v;

    (void)state;
    assert_int_equal(myna_json_has_nul(t, strlen(t)), 1);
    assert_int_equal(myna_json_mend_escapes(t, strlen(t)), 2);
    assert_string_equal(t, "[\"a\\uFFFDb\", \"\\\\u0000\", \"c\\uFFFD\"]");
    assert_int_equal(myna_json_has_nul(t, strlen(t)), 0);
    assert_int_equal(myna_json_mend_escapes(t, strlen(t)), 0);
    assert_non_null(v = cJSON_Parse(t));
    assert_string_equal(cJSON_GetArrayItem(v, 0)->valuestring, "a\xef\xbf\xbd" "b");
    assert_string_equal(cJSON_GetArrayItem(v, 1)->valuestring, "\\u0000");
    assert_string_equal(cJSON_GetArrayItem(v, 2)->valuestring, "c\xef\xbf\xbd");
    cJSON_Delete(v);
    assert_int_equal(myna_json_mend_escapes(bad, strlen(bad)), 0);
    assert_string_equal(bad, "[\"\\u\"]\", \"\\uzz\\\"x\"]");
    assert_int_equal(myna_json_has_nul(bad, strlen(bad)), 1);
    assert_int_equal(myna_json_mend_escapes(NULL, 5), 0);
}

/* The path of the repeated key in text, or "" (and the result in *rc). */
static int repeated(const char *text, char *path, size_t cap)
{
    cJSON *v = cJSON_Parse(text);
    int rc;

    assert_non_null(v);
    rc = myna_json_repeated_key(v, path, cap);
    cJSON_Delete(v);
    return rc;
}

static void test_json_repeated_key_found(void **state)
{
    char path[64];

    (void)state;
    assert_int_equal(repeated("{\"a\":1,\"a\":2}", path, sizeof(path)), 1);
    assert_string_equal(path, "a");
    /* nested: the one a seal or a mask of "llm.api_key" would miss */
    assert_int_equal(repeated("{\"id\":\"x\",\"llm\":{\"url\":\"u\",\"api_key\":\"k1\","
                              "\"api_key\":\"k2\"}}", path, sizeof(path)), 1);
    assert_string_equal(path, "llm.api_key");
    assert_int_equal(repeated("{\"faq\":[{\"q\":1},{\"q\":1,\"a\":2},{\"q\":1,\"q\":2}]}", path,
                              sizeof(path)), 1);
    assert_string_equal(path, "faq[2].q");
    assert_int_equal(repeated("[[{\"k\":{\"z\":0,\"z\":1}}]]", path, sizeof(path)), 1);
    assert_string_equal(path, "[0][0].k.z");
    /* the path is cut to fit, never overrun */
    assert_int_equal(repeated("{\"aaaaaaaaaaaaaaaa\":{\"b\":1,\"b\":2}}", path, 8), 1);
    assert_string_equal(path, "aaaaaaa");
    assert_int_equal(repeated("{\"a\":{\"b\":1,\"b\":2}}", NULL, 0), 1);
}

/* A path cut to fit ends between characters: it goes into error messages
 * that are sent as JSON, where half a character is not valid UTF-8. */
static void test_json_repeated_key_cut_between_characters(void **state)
{
    static const char four_e[] = "{\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\":{\"b\":1,\"b\":2}}";
    char path[64];

    (void)state;
    /* "\xc3\xa9" is one character (e with an acute accent), two bytes */
    for (size_t cap = 1; cap <= 24; cap++) {
        assert_int_equal(repeated("{\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\":{\"\xc3\xa9\xc3\xa9\":"
                                  "{\"b\":1,\"b\":2}}}", path, cap), 1);
        assert_true(strlen(path) < cap);
        assert_int_equal(myna_utf8_prefix(path, strlen(path)), strlen(path));
        assert_true(strlen(path) == 0 || path[strlen(path) - 1] != '.');
    }
    assert_int_equal(repeated(four_e, path, 8), 1);
    assert_string_equal(path, "\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_int_equal(repeated(four_e, path, 11), 1);
    assert_string_equal(path, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9.b");
}

/* A number cJSON reads as infinity (past a double's range), found with
 * its path; cJSON prints it back as null. */
static void test_json_infinite(void **state)
{
    static const struct {
        const char *text, *path;
    } cases[] = {
        { "{\"rate_limit\":{\"count\":1e999}}", "rate_limit.count" },
        { "{\"a\":1,\"llm\":{\"temperature\":-1e400}}", "llm.temperature" },
        { "[{\"q\":[1]},{\"q\":[2,1e999]}]", "[1].q[1]" },
        { "1e999", "" },
    };
    char path[64];
    cJSON *v;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_non_null(v = cJSON_Parse(cases[i].text));
        assert_int_equal(myna_json_infinite(v, path, sizeof(path)), 1);
        assert_string_equal(path, cases[i].path);
        assert_int_equal(myna_json_infinite(v, NULL, 0), 1);
        cJSON_Delete(v);
    }
    /* large, small and negative numbers that a double holds are numbers */
    assert_non_null(
        v = cJSON_Parse("{\"a\":1e308,\"b\":-1.7e308,\"c\":1e-999,\"d\":[0,\"1e999\"]}"));
    assert_int_equal(myna_json_infinite(v, path, sizeof(path)), 0);
    assert_string_equal(path, "");
    cJSON_Delete(v);
    assert_int_equal(myna_json_infinite(NULL, path, sizeof(path)), 0);
    /* the path is cut to fit */
    assert_non_null(v = cJSON_Parse("{\"aaaaaaaaaaaaaaaa\":{\"b\":1e999}}"));
    assert_int_equal(myna_json_infinite(v, path, 8), 1);
    assert_string_equal(path, "aaaaaaa");
    cJSON_Delete(v);
}

static void test_json_repeated_key_none(void **state)
{
    char path[64] = "junk";

    (void)state;
    assert_int_equal(repeated("{\"a\":1,\"A\":2,\"b\":{\"a\":1},\"c\":[{\"a\":1},{\"a\":2}]}",
                              path, sizeof(path)), 0);
    assert_string_equal(path, "");  /* and the path was put back at each level */
    assert_int_equal(repeated("[1,\"x\",null,[]]", path, sizeof(path)), 0);
    assert_int_equal(repeated("\"text\"", path, sizeof(path)), 0);
    assert_int_equal(myna_json_repeated_key(NULL, path, sizeof(path)), 0);
}

/* An object of many keys, the repeat found among them once sorted. */
static void test_json_repeated_key_many(void **state)
{
    enum { K = 20000 };
    cJSON *o = cJSON_CreateObject();
    char name[32], path[64];

    (void)state;
    assert_non_null(o);
    for (int i = 0; i < K; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        assert_non_null(cJSON_AddNumberToObject(o, name, i));
    }
    assert_int_equal(myna_json_repeated_key(o, path, sizeof(path)), 0);
    assert_non_null(cJSON_AddNumberToObject(o, "k12345", 0));  /* the last one repeats */
    assert_int_equal(myna_json_repeated_key(o, path, sizeof(path)), 1);
    assert_string_equal(path, "k12345");
    cJSON_Delete(o);
}

/* A body is one JSON value and nothing but whitespace after it, with no
 * string a NUL would cut. */
static void test_json_parse_whole(void **state)
{
    static const struct {
        const char *text, *why;  /* why NULL: taken */
    } cases[] = {
        { "{\"a\":1}", NULL },
        { " [1,2] \r\n\t", NULL },
        { "{\"a\":\"\\\\u0000\"}", NULL },  /* an escaped backslash, then u0000 */
        { "", "not valid JSON" },
        { "{\"a\":", "not valid JSON" },
        { "{\"a\":1}{\"a\":2}", "bytes after the JSON value" },
        { "{\"a\":1} x", "bytes after the JSON value" },
        { "1 2", "bytes after the JSON value" },
        { "{\"a\":\"x\\u0000y\"}", "a string holds a NUL character" },
    };
    const char *why;
    cJSON *v;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        v = myna_json_parse_whole(cases[i].text, strlen(cases[i].text), &why);
        if (cases[i].why == NULL) {
            assert_non_null(v);
            assert_null(why);
        } else {
            assert_null(v);
            assert_string_equal(why, cases[i].why);
        }
        cJSON_Delete(v);
    }
    /* a raw NUL inside the given length, and none past it */
    assert_null(myna_json_parse_whole("{\"a\":\"x\0y\"}", 11, &why));
    v = myna_json_parse_whole("[1]\0junk", 3, NULL);
    assert_non_null(v);
    cJSON_Delete(v);
    assert_null(myna_json_parse_whole(NULL, 0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_has_nul_escaped),
        cmocka_unit_test(test_json_has_nul_raw),
        cmocka_unit_test(test_json_has_nul_none),
        cmocka_unit_test(test_json_has_nul_matches_cjson),
        cmocka_unit_test(test_json_mend_escapes),
        cmocka_unit_test(test_json_parse_whole),
        cmocka_unit_test(test_json_repeated_key_found),
        cmocka_unit_test(test_json_repeated_key_cut_between_characters),
        cmocka_unit_test(test_json_repeated_key_none),
        cmocka_unit_test(test_json_repeated_key_many),
        cmocka_unit_test(test_json_infinite),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
