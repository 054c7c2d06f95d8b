/* test_instance.c - the instances file of wa/instance.h: a valid file, the
 * graph_url default, and every way a file can be wrong, each with the exact
 * place named in the message (instance N ("id"): field 'X'). On failure the
 * set must be empty. Inputs are built with cJSON from a valid instance with
 * one field changed, so each test breaks exactly one thing. Files for
 * myna_instances_load go to a mkdtemp directory. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "../tmpdir.h"

#include "wa/instance.h"
#include "core/banned.h"

struct fix {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (test_tmpdir(f->dir, sizeof(f->dir), "test-instance") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/instances.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    int rc = test_rmtree(f->dir);

    free(f);
    return rc;
}

/* ---- helpers ---- */

static const char *const required[] = { "id",           "name",       "provider",
                                        "phone_number_id", "access_token", "app_secret",
                                        "verify_token" };
static const char *const all_fields[] = { "id",           "name",       "provider",
                                          "phone_number_id", "waba_id",  "access_token",
                                          "app_secret",   "verify_token", "graph_url" };
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A valid instance object: id, phone_number_id as given, the rest derived. */
static cJSON *inst(const char *id, const char *phone)
{
    cJSON *o = cJSON_CreateObject();
    char buf[128];

    assert_non_null(o);
    cJSON_AddStringToObject(o, "id", id);
    snprintf(buf, sizeof(buf), "Instance %s", id);
    cJSON_AddStringToObject(o, "name", buf);
    cJSON_AddStringToObject(o, "provider", "cloud");
    cJSON_AddStringToObject(o, "phone_number_id", phone);
    cJSON_AddStringToObject(o, "waba_id", "900100");
    snprintf(buf, sizeof(buf), "EAAtoken-%s", id);
    cJSON_AddStringToObject(o, "access_token", buf);
    snprintf(buf, sizeof(buf), "secret-%s", id);
    cJSON_AddStringToObject(o, "app_secret", buf);
    snprintf(buf, sizeof(buf), "verify-%s", id);
    cJSON_AddStringToObject(o, "verify_token", buf);
    return o;
}

static void set_str(cJSON *o, const char *field, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, field);
    cJSON_AddStringToObject(o, field, value);
}

/* [acme, beta] with obj (if not NULL) appended as the third. */
static cJSON *array_of(cJSON *a, cJSON *b, cJSON *c)
{
    cJSON *arr = cJSON_CreateArray();

    assert_non_null(arr);
    if (a)
        cJSON_AddItemToArray(arr, a);
    if (b)
        cJSON_AddItemToArray(arr, b);
    if (c)
        cJSON_AddItemToArray(arr, c);
    return arr;
}

static void assert_empty_set(const struct myna_instance_set *set)
{
    assert_null(set->v);
    assert_int_equal(set->n, 0);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* Parses the printed JSON of root (deleted here) into set. */
static int parse_json(cJSON *root, struct myna_instance_set *set, struct myna_err *err)
{
    char *text = cJSON_PrintUnformatted(root);
    int rc;

    assert_non_null(text);
    cJSON_Delete(root);
    rc = myna_instances_parse(text, strlen(text), set, err);
    cJSON_free(text);
    return rc;
}

/* root must fail with code and a message containing want (and want2). */
static void parse_fails(cJSON *root, int code, const char *want, const char *want2)
{
    struct myna_instance_set set = { (struct myna_instance *)&set, 77 }; /* garbage */
    struct myna_err err = MYNA_ERR_INIT;

    assert_int_equal(parse_json(root, &set, &err), code);
    assert_int_equal(err.code, code);
    assert_empty_set(&set);
    if (want)
        assert_contains(err.msg, want);
    if (want2)
        assert_contains(err.msg, want2);
}

static void text_fails(const char *text, int code, const char *want)
{
    struct myna_instance_set set = { NULL, 0 };
    struct myna_err err = MYNA_ERR_INIT;

    assert_int_equal(myna_instances_parse(text, strlen(text), &set, &err), code);
    assert_empty_set(&set);
    if (want)
        assert_contains(err.msg, want);
}

/* The third instance ("gamma") with field set to value must fail with
 * instance 3 ("gamma"): field 'F': why. */
static void field_fails(const char *field, const char *value, const char *why)
{
    cJSON *bad = inst("gamma", "1003");
    char want[600];

    set_str(bad, field, value);
    snprintf(want, sizeof(want), "instance 3 (\"%s\"): field '%s': %s",
             strcmp(field, "id") == 0 ? value : "gamma", field, why);
    parse_fails(array_of(inst("acme", "1001"), inst("beta", "1002"), bad), MYNA_ECONFIG, want,
                NULL);
}

static void field_ok(const char *field, const char *value)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *o = inst("acme", "1001");

    set_str(o, field, value);
    if (parse_json(array_of(o, NULL, NULL), &set, &err) != MYNA_OK)
        fail_msg("%s='%.40s' refused: %s", field, value, err.msg);
    assert_int_equal(set.n, 1);
    myna_instances_release(&set);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* ---- valid input ---- */

static void test_instance_two_valid(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *a = inst("acme", "1001"), *b = inst("beta-2", "1002");
    const struct myna_instance *in;

    (void)state;
    set_str(b, "graph_url", "http://127.0.0.1:9000/v25.0");
    cJSON_DeleteItemFromObjectCaseSensitive(b, "waba_id");
    assert_int_equal(parse_json(array_of(a, b, NULL), &set, &err), MYNA_OK);
    assert_int_equal(err.code, 0); /* untouched on success */
    assert_int_equal(set.n, 2);
    assert_non_null(set.v);
    in = &set.v[0];
    assert_string_equal(in->id, "acme");
    assert_string_equal(in->name, "Instance acme");
    assert_string_equal(in->provider, "cloud");
    assert_string_equal(in->phone_number_id, "1001");
    assert_string_equal(in->waba_id, "900100");
    assert_string_equal(in->access_token, "EAAtoken-acme");
    assert_string_equal(in->app_secret, "secret-acme");
    assert_string_equal(in->verify_token, "verify-acme");
    assert_string_equal(in->graph_url, MYNA_GRAPH_URL_DEFAULT);
    in = &set.v[1];
    assert_string_equal(in->id, "beta-2");
    assert_string_equal(in->phone_number_id, "1002");
    assert_string_equal(in->waba_id, ""); /* optional */
    assert_string_equal(in->graph_url, "http://127.0.0.1:9000/v25.0");
    myna_instances_release(&set);
    assert_empty_set(&set);
}

static void test_instance_graph_url_default(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *a = inst("acme", "1001"), *b = inst("beta", "1002");

    (void)state;
    cJSON_AddNullToObject(b, "graph_url");
    cJSON_DeleteItemFromObjectCaseSensitive(b, "waba_id");
    cJSON_AddNullToObject(b, "waba_id");
    assert_int_equal(parse_json(array_of(a, b, NULL), &set, &err), MYNA_OK);
    assert_string_equal(set.v[0].graph_url, "https://graph.facebook.com/v25.0");
    assert_string_equal(set.v[1].graph_url, MYNA_GRAPH_URL_DEFAULT); /* null = absent */
    assert_string_equal(set.v[1].waba_id, "");
    myna_instances_release(&set);
}

static void test_instance_literal_file(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    const char *text =
        "[\n"
        "  {\"id\": \"acme\", \"name\": \"Acme \\u00e9\", \"provider\": \"cloud\",\n"
        "   \"phone_number_id\": \"106540352242922\", \"waba_id\": \"\",\n"
        "   \"access_token\": \"EAAB\", \"app_secret\": \"s\", \"verify_token\": \"v\",\n"
        "   \"graph_url\": \"https://graph.facebook.com/v19.0\"}\n"
        "]\n";

    (void)state;
    assert_int_equal(myna_instances_parse(text, strlen(text), &set, &err), MYNA_OK);
    assert_int_equal(set.n, 1);
    assert_string_equal(set.v[0].name, "Acme \xc3\xa9");
    assert_string_equal(set.v[0].phone_number_id, "106540352242922");
    assert_string_equal(set.v[0].graph_url, "https://graph.facebook.com/v19.0");
    myna_instances_release(&set);
}

static void test_instance_empty_array(void **state)
{
    struct myna_instance_set set = { (struct myna_instance *)&set, 5 };
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_int_equal(myna_instances_parse("[]", 2, &set, &err), MYNA_OK);
    assert_empty_set(&set);
    assert_int_equal(myna_instances_parse(" [ ]\n", 5, &set, &err), MYNA_OK);
    assert_empty_set(&set);
    assert_int_equal(err.code, 0);
    myna_instances_release(&set);
}

static void test_instance_len_is_respected(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    char *exact;

    (void)state;
    /* bytes past len are not read: "[]" of "[]garbage" */
    assert_int_equal(myna_instances_parse("[]garbage", 2, &set, &err), MYNA_OK);
    assert_empty_set(&set);
    /* unterminated input: ASan catches a read past the end */
    exact = malloc(2);
    assert_non_null(exact);
    memcpy(exact, "[]", 2);
    assert_int_equal(myna_instances_parse(exact, 2, &set, &err), MYNA_OK);
    memcpy(exact, "[1", 2);
    assert_int_equal(myna_instances_parse(exact, 2, &set, &err), MYNA_EPARSE);
    free(exact);
}

/* ---- missing and mistyped fields ---- */

static void test_instance_each_required_missing(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(required); i++) {
        cJSON *bad = inst("beta", "1002");
        char want[200];
        cJSON_DeleteItemFromObjectCaseSensitive(bad, required[i]);
        if (strcmp(required[i], "id") == 0)
            snprintf(want, sizeof(want), "instance 2: field 'id': missing");
        else
            snprintf(want, sizeof(want), "instance 2 (\"beta\"): field '%s': missing",
                     required[i]);
        parse_fails(array_of(inst("acme", "1001"), bad, NULL), MYNA_ECONFIG, want, NULL);
    }
}

static void test_instance_each_required_null(void **state)
{
    (void)state;
    for (size_t i = 1; i < N(required); i++) {
        cJSON *bad = inst("beta", "1002");
        char want[200];
        cJSON_DeleteItemFromObjectCaseSensitive(bad, required[i]);
        cJSON_AddNullToObject(bad, required[i]);
        snprintf(want, sizeof(want), "instance 2 (\"beta\"): field '%s': missing", required[i]);
        parse_fails(array_of(inst("acme", "1001"), bad, NULL), MYNA_ECONFIG, want, NULL);
    }
}

static void test_instance_wrong_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(all_fields); i++) {
        for (int kind = 0; kind < 4; kind++) {
            cJSON *bad = inst("beta", "1002");
            char want[200];
            cJSON_DeleteItemFromObjectCaseSensitive(bad, all_fields[i]);
            if (kind == 0)
                cJSON_AddNumberToObject(bad, all_fields[i], 1002);
            else if (kind == 1)
                cJSON_AddTrueToObject(bad, all_fields[i]);
            else if (kind == 2)
                cJSON_AddObjectToObject(bad, all_fields[i]);
            else
                cJSON_AddArrayToObject(bad, all_fields[i]);
            if (strcmp(all_fields[i], "id") == 0)
                snprintf(want, sizeof(want), "instance 2: field 'id': must be a string");
            else
                snprintf(want, sizeof(want), "instance 2 (\"beta\"): field '%s': must be a string",
                         all_fields[i]);
            parse_fails(array_of(inst("acme", "1001"), bad, NULL), MYNA_ECONFIG, want, NULL);
        }
    }
}

static void test_instance_unknown_field(void **state)
{
    cJSON *bad = inst("beta", "1002");
    cJSON *typo = inst("gamma", "1003");

    (void)state;
    cJSON_AddStringToObject(bad, "phone", "1002");
    parse_fails(array_of(inst("acme", "1001"), bad, NULL), MYNA_ECONFIG,
                "instance 2 (\"beta\"): unknown field 'phone'", NULL);
    /* a typo of an optional field must not silently drop it */
    cJSON_AddStringToObject(typo, "graph_ur1", "https://example.com");
    parse_fails(array_of(typo, NULL, NULL), MYNA_ECONFIG,
                "instance 1 (\"gamma\"): unknown field 'graph_ur1'", NULL);
    /* case matters */
    bad = inst("acme", "1001");
    cJSON_AddStringToObject(bad, "ID", "acme");
    parse_fails(array_of(bad, NULL, NULL), MYNA_ECONFIG, "unknown field 'ID'", NULL);
}

static void test_instance_not_an_object(void **state)
{
    (void)state;
    text_fails("[1]", MYNA_ECONFIG, "instance 1: must be a JSON object");
    text_fails("[\"acme\"]", MYNA_ECONFIG, "instance 1: must be a JSON object");
    text_fails("[[]]", MYNA_ECONFIG, "instance 1: must be a JSON object");
    text_fails("[null]", MYNA_ECONFIG, "instance 1: must be a JSON object");
    parse_fails(array_of(inst("acme", "1001"), cJSON_CreateNumber(2), NULL), MYNA_ECONFIG,
                "instance 2: must be a JSON object", NULL);
}

/* ---- values ---- */

static void test_instance_bad_slug_ids(void **state)
{
    static const char *const bad[] = { "Acme", "-acme", "acme-", "ac_me", "ac me", "../x",
                                       "a.b",  "-",     "ACME",  "acm\xc3\xa9" };
    char long_id[80];

    (void)state;
    for (size_t i = 0; i < N(bad); i++)
        field_fails("id", bad[i], "must be 1-64 characters of a-z, 0-9 and '-'");
    /* 65 chars: too long to be shown as the instance's name */
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    {
        cJSON *o = inst("x", "1001");
        set_str(o, "id", long_id);
        parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "instance 1: field 'id': must be 1-64",
                    NULL);
    }
    /* empty id */
    {
        cJSON *o = inst("x", "1001");
        set_str(o, "id", "");
        parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'id': must be 1-64", NULL);
    }
    long_id[64] = '\0';
    field_ok("id", long_id); /* 64 is fine */
    field_ok("id", "a");
    field_ok("id", "0-9");
}

static void test_instance_provider(void **state)
{
    (void)state;
    field_fails("provider", "twilio", "unsupported provider (supported: cloud, sim)");
    field_fails("provider", "Cloud", "unsupported provider");
    field_fails("provider", "cloud ", "unsupported provider");
    field_fails("provider", "", "unsupported provider");
}

static void test_instance_phone_number_id(void **state)
{
    char digits[40];

    (void)state;
    field_fails("phone_number_id", "+1003", "must be the digits of Meta's id");
    field_fails("phone_number_id", "10 03", "must be the digits of Meta's id");
    field_fails("phone_number_id", "abc", "must be the digits of Meta's id");
    field_fails("phone_number_id", "", "must be the digits of Meta's id");
    field_fails("phone_number_id", "-1", "must be the digits of Meta's id");
    field_fails("phone_number_id", "1e3", "must be the digits of Meta's id");
    memset(digits, '7', 33);
    digits[33] = '\0';
    field_fails("phone_number_id", digits, "must be the digits of Meta's id");
    digits[32] = '\0';
    field_ok("phone_number_id", digits);
}

static void test_instance_waba_id(void **state)
{
    (void)state;
    field_ok("waba_id", "");
    field_ok("waba_id", "123456");
    field_fails("waba_id", "12x", "must be the digits of Meta's id");
    field_fails("waba_id", " ", "must be the digits of Meta's id");
}

static void test_instance_graph_url(void **state)
{
    (void)state;
    field_fails("graph_url", "graph.facebook.com/v25.0", "must start with https:// or http://");
    field_fails("graph_url", "ftp://graph.facebook.com", "must start with https:// or http://");
    field_fails("graph_url", "", "must start with https:// or http://");
    field_fails("graph_url", "HTTPS://graph.facebook.com", "must start with");
    field_fails("graph_url", "https://graph.facebook.com/v25.0/", "must not end with '/'");
    field_fails("graph_url", "https://", "has no host after the scheme");
    field_fails("graph_url", "http://:8080/v1", "has no host after the scheme");
    /* what the sender refuses: the bot would only exit */
    field_fails("graph_url", "https://graph.facebook.com/v25.0 ", "has a space");
    field_fails("graph_url", "https://graph.facebook.com/v25.0\n", "has a space, a line break");
    field_fails("graph_url", "https://gráph.facebook.com", "has a space, a line break or a non-ASCII");
    field_ok("graph_url", "https://graph.facebook.com/v25.0");
    field_ok("graph_url", "http://127.0.0.1:9000");
}

static void test_instance_name_and_secrets(void **state)
{
    char name[210];

    (void)state;
    field_fails("name", "", "must be a non-empty string of at most 200 bytes");
    memset(name, 'n', 201);
    name[201] = '\0';
    field_fails("name", name, "must be a non-empty string of at most 200 bytes");
    name[200] = '\0';
    field_ok("name", name);
    field_fails("name", "Bad\xff\xfeName", "must be valid UTF-8");  /* shown again as JSON */
    field_ok("name", "Барбершоп «Усы»");
    field_fails("access_token", "", "a non-empty string is required");
    /* it goes into a header: pasted with a space or a line break, every send would fail */
    field_fails("access_token", "EAAGabc ", "has a space, a line break or a non-ASCII character");
    field_fails("access_token", "EAAGabc\n", "has a space, a line break");
    field_fails("access_token", "EAAG abc", "has a space");
    field_fails("access_token", "EAAGабв", "has a space, a line break or a non-ASCII");
    field_ok("access_token", "EAAGm0PX4ZCpsBA-_.~+/=");
    field_ok("app_secret", "any bytes: ключ with spaces");  /* only a key for the HMAC */
    field_ok("verify_token", "any text at all");
    field_fails("app_secret", "", "a non-empty string is required");
    field_fails("verify_token", "", "a non-empty string is required");
    /* shown again as JSON by an export with ?secrets=1 */
    field_fails("app_secret", "key\xff\xfe", "must be valid UTF-8");
    field_fails("verify_token", "tok\xc3", "must be valid UTF-8");
}

static void test_instance_field_too_long(void **state)
{
    char *big = malloc(4098);

    (void)state;
    assert_non_null(big);
    memset(big, 's', 4097);
    big[4097] = '\0';
    field_fails("access_token", big, "longer than 4096 bytes");
    big[4096] = '\0';
    field_ok("access_token", big);
    free(big);
}

/* ---- uniqueness ---- */

static void test_instance_duplicate_id(void **state)
{
    (void)state;
    parse_fails(array_of(inst("acme", "1001"), inst("beta", "1002"), inst("acme", "1003")),
                MYNA_ECONFIG, "instance 3: field 'id': \"acme\" is already used by instance 1",
                NULL);
}

static void test_instance_duplicate_phone_number_id(void **state)
{
    (void)state;
    parse_fails(array_of(inst("acme", "1001"), inst("beta", "1002"), inst("gamma", "1002")),
                MYNA_ECONFIG,
                "instance 3 (\"gamma\"): field 'phone_number_id': already used by instance 2 "
                "(\"beta\")",
                NULL);
}

static void test_instance_first_bad_one_named(void **state)
{
    cJSON *b = inst("beta", "1002"), *c = inst("gamma", "1003");

    (void)state;
    set_str(b, "provider", "x");
    set_str(c, "provider", "y");
    parse_fails(array_of(inst("acme", "1001"), b, c), MYNA_ECONFIG,
                "instance 2 (\"beta\"): field 'provider'", NULL);
}

/* ---- the document ---- */

static void test_instance_not_an_array(void **state)
{
    (void)state;
    text_fails("{}", MYNA_ECONFIG, "must be a JSON array of instance objects");
    text_fails("{\"id\":\"acme\"}", MYNA_ECONFIG, "must be a JSON array");
    text_fails("\"acme\"", MYNA_ECONFIG, "must be a JSON array");
    text_fails("1", MYNA_ECONFIG, "must be a JSON array");
    text_fails("null", MYNA_ECONFIG, "must be a JSON array");
}

static void test_instance_not_json(void **state)
{
    (void)state;
    text_fails("", MYNA_EPARSE, "not valid JSON");
    text_fails("[", MYNA_EPARSE, "not valid JSON");
    text_fails("[{]", MYNA_EPARSE, "not valid JSON");
    text_fails("nope", MYNA_EPARSE, "not valid JSON");
    text_fails("[{\"id\":\"acme\",}]", MYNA_EPARSE, "not valid JSON");
    text_fails("   ", MYNA_EPARSE, "not valid JSON");
    /* a token cut at a NUL ("tok\u0000en" kept as "tok") */
    text_fails("[{\"id\":\"acme\",\"access_token\":\"tok\\u0000en\"}]", MYNA_EPARSE,
               "a string holds a NUL character");
}

/* The file must be one JSON array and nothing else: a second array pasted
 * after the first must not be dropped in silence. */
static void test_instance_trailing_garbage_refused(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *first = array_of(inst("acme", "1001"), NULL, NULL);
    cJSON *second = array_of(inst("beta", "1002"), NULL, NULL);
    char *a = cJSON_PrintUnformatted(first), *b = cJSON_PrintUnformatted(second);
    char text[2048];
    int rc_concat, rc_junk;
    size_t n_concat;

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    snprintf(text, sizeof(text), "%s\n%s\n", a, b);
    rc_concat = myna_instances_parse(text, strlen(text), &set, &err);
    n_concat = set.n;
    myna_instances_release(&set);
    rc_junk = myna_instances_parse("[] x", 4, &set, &err);
    myna_instances_release(&set);
    cJSON_free(a);
    cJSON_free(b);
    cJSON_Delete(first);
    cJSON_Delete(second);
    if (rc_concat == MYNA_OK || rc_junk == MYNA_OK)
        fail_msg("trailing content accepted: two arrays -> rc %d with %zu instance(s); "
                 "\"[] x\" -> rc %d",
                 rc_concat, n_concat, rc_junk);
}

static void test_instance_too_many(void **state)
{
    size_t n = MYNA_INSTANCES_MAX + 1;
    char *text = malloc(2 * n + 2);
    size_t o = 0;

    (void)state;
    assert_non_null(text);
    text[o++] = '[';
    for (size_t i = 0; i < n; i++) {
        text[o++] = '1';
        text[o++] = i + 1 < n ? ',' : ']';
    }
    text[o] = '\0';
    text_fails(text, MYNA_ETOOBIG, "more than 10000 instances");
    free(text);
}

static void test_instance_parse_too_large(void **state)
{
    size_t len = MYNA_INSTANCES_FILE_MAX + 1;
    char *text = malloc(len);
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_non_null(text);
    memset(text, ' ', len);
    text[0] = '[';
    text[len - 1] = ']';
    assert_int_equal(myna_instances_parse(text, len, &set, &err), MYNA_ETOOBIG);
    assert_empty_set(&set);
    assert_contains(err.msg, "larger than 16777216 bytes");
    /* exactly the limit is parsed: "[   ...   ]" is an empty array */
    text[1] = '[';
    assert_int_equal(myna_instances_parse(text + 1, len - 1, &set, &err), MYNA_OK);
    assert_empty_set(&set);
    free(text);
}

/* ---- load ---- */

static void test_instance_load_ok(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *root = array_of(inst("acme", "1001"), inst("beta", "1002"), NULL);
    char *text = cJSON_Print(root);

    assert_non_null(text);
    write_file(f->path, text);
    cJSON_free(text);
    cJSON_Delete(root);
    assert_int_equal(myna_instances_load(f->path, &set, &err), MYNA_OK);
    assert_int_equal(err.code, 0);
    assert_int_equal(set.n, 2);
    assert_string_equal(set.v[1].app_secret, "secret-beta");
    myna_instances_release(&set);
}

static void test_instance_load_error_names_file(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    char want[300];

    write_file(f->path, "[{\"id\":\"acme\"}]");
    assert_int_equal(myna_instances_load(f->path, &set, &err), MYNA_ECONFIG);
    assert_empty_set(&set);
    snprintf(want, sizeof(want), "instances file '%s': instance 1 (\"acme\"): field 'name': missing",
             f->path);
    assert_string_equal(err.msg, want);
    write_file(f->path, "");
    assert_int_equal(myna_instances_load(f->path, &set, &err), MYNA_EPARSE);
    snprintf(want, sizeof(want), "instances file '%s': not valid JSON", f->path);
    assert_string_equal(err.msg, want);
}

static void test_instance_load_missing_file(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set = { (struct myna_instance *)&set, 3 };
    struct myna_err err = MYNA_ERR_INIT;
    char path[200];

    snprintf(path, sizeof(path), "%s/absent.json", f->dir);
    assert_int_equal(myna_instances_load(path, &set, &err), MYNA_EIO);
    assert_int_equal(err.code, MYNA_EIO);
    assert_empty_set(&set);
    assert_contains(err.msg, path);
    assert_contains(err.msg, strerror(ENOENT));
}

/* A FIFO in the file's place fails at once instead of waiting for a writer
 * (in a child, so that a wait fails the test instead of hanging it); so
 * does a directory. */
static void test_instance_load_not_regular(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    char fifo[200];
    int status;
    pid_t pid;

    snprintf(fifo, sizeof(fifo), "%s/fifo.json", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(5);
        _exit(myna_instances_load(fifo, &set, &err) == MYNA_ECONFIG &&
                      strstr(err.msg, "not a regular file") != NULL
                  ? 0
                  : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(myna_instances_load(f->dir, &set, &err), MYNA_ECONFIG);
    assert_empty_set(&set);
    assert_contains(err.msg, "not a regular file");
}

static void test_instance_load_too_large(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    FILE *fp = fopen(f->path, "wb");

    assert_non_null(fp);
    /* "[" then spaces: valid-looking JSON start, one byte past the limit */
    assert_int_equal(fputc('[', fp), '[');
    assert_int_equal(ftruncate(fileno(fp), MYNA_INSTANCES_FILE_MAX + 1), 0);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(myna_instances_load(f->path, &set, &err), MYNA_ETOOBIG);
    assert_empty_set(&set);
    assert_contains(err.msg, f->path);
    assert_contains(err.msg, "larger than 16777216 bytes");
}

/* ---- release and find ---- */

static void test_instance_release_zeroes(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_int_equal(parse_json(array_of(inst("acme", "1001"), NULL, NULL), &set, &err),
                     MYNA_OK);
    assert_int_equal(set.n, 1);
    myna_instances_release(&set);
    assert_empty_set(&set);
    myna_instances_release(&set); /* twice is fine */
    assert_empty_set(&set);
}

static void test_instance_find(void **state)
{
    struct myna_instance_set set;
    struct myna_instance_set none = { NULL, 0 };
    struct myna_err err = MYNA_ERR_INIT;
    const struct myna_instance *in;

    (void)state;
    assert_int_equal(parse_json(array_of(inst("acme", "1001"), inst("beta", "1002"),
                                         inst("gamma", "1003")),
                                &set, &err),
                     MYNA_OK);
    in = myna_instances_find(&set, "beta");
    assert_ptr_equal(in, &set.v[1]);
    assert_string_equal(in->phone_number_id, "1002");
    assert_ptr_equal(myna_instances_find(&set, "acme"), &set.v[0]);
    assert_ptr_equal(myna_instances_find(&set, "gamma"), &set.v[2]);
    assert_null(myna_instances_find(&set, "delta"));
    assert_null(myna_instances_find(&set, "Beta"));
    assert_null(myna_instances_find(&set, "bet"));
    assert_null(myna_instances_find(&set, ""));
    assert_null(myna_instances_find(&none, "acme"));
    myna_instances_release(&set);
}

/* ---- provider "sim": no credentials needed ---- */

/* {"id":id,"name":"Sim <id>","provider":"sim"}: all a sim instance needs. */
static cJSON *sim_inst(const char *id)
{
    cJSON *o = cJSON_CreateObject();
    char buf[128];

    assert_non_null(o);
    cJSON_AddStringToObject(o, "id", id);
    snprintf(buf, sizeof(buf), "Sim %s", id);
    cJSON_AddStringToObject(o, "name", buf);
    cJSON_AddStringToObject(o, "provider", "sim");
    return o;
}

static int digits_only(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static void test_instance_sim_minimal(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    const struct myna_instance *in;
    char pnid[64];

    (void)state;
    assert_int_equal(parse_json(array_of(sim_inst("demo"), NULL, NULL), &set, &err), MYNA_OK);
    assert_int_equal(err.code, 0);
    assert_int_equal(set.n, 1);
    in = &set.v[0];
    assert_string_equal(in->id, "demo");
    assert_string_equal(in->name, "Sim demo");
    assert_string_equal(in->provider, "sim");
    assert_int_equal(strlen(in->phone_number_id), 15);
    assert_true(digits_only(in->phone_number_id));
    /* left for myna_sim_prepare to fill */
    assert_string_equal(in->access_token, "");
    assert_string_equal(in->app_secret, "");
    assert_string_equal(in->verify_token, "");
    assert_string_equal(in->graph_url, "");
    assert_string_equal(in->waba_id, "");
    snprintf(pnid, sizeof(pnid), "%s", in->phone_number_id);
    myna_instances_release(&set);

    /* the same id gives the same number at every start, null = absent */
    {
        cJSON *o = sim_inst("demo");
        cJSON_AddNullToObject(o, "phone_number_id");
        cJSON_AddNullToObject(o, "app_secret");
        assert_int_equal(parse_json(array_of(o, NULL, NULL), &set, &err), MYNA_OK);
    }
    assert_string_equal(set.v[0].phone_number_id, pnid);
    assert_string_equal(set.v[0].app_secret, "");
    myna_instances_release(&set);

    /* other ids, other numbers: several sims live in one file */
    assert_int_equal(parse_json(array_of(sim_inst("demo"), sim_inst("demo-2"), sim_inst("salon")),
                                &set, &err),
                     MYNA_OK);
    assert_int_equal(set.n, 3);
    assert_string_equal(set.v[0].phone_number_id, pnid);
    for (size_t i = 1; i < 3; i++) {
        assert_int_equal(strlen(set.v[i].phone_number_id), 15);
        assert_true(digits_only(set.v[i].phone_number_id));
    }
    assert_string_not_equal(set.v[0].phone_number_id, set.v[1].phone_number_id);
    assert_string_not_equal(set.v[1].phone_number_id, set.v[2].phone_number_id);
    assert_string_not_equal(set.v[0].phone_number_id, set.v[2].phone_number_id);
    myna_instances_release(&set);
}

static void test_instance_sim_given_fields(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *o = sim_inst("demo"), *bare = sim_inst("demo");
    char pnid[64];

    (void)state;
    /* what the operator gives is kept and checked as for cloud */
    set_str(o, "phone_number_id", "1001");
    set_str(o, "access_token", "tok");
    set_str(o, "graph_url", "http://127.0.0.1:1/x");
    assert_int_equal(parse_json(array_of(o, NULL, NULL), &set, &err), MYNA_OK);
    assert_string_equal(set.v[0].phone_number_id, "1001");
    assert_string_equal(set.v[0].access_token, "tok");
    assert_string_equal(set.v[0].graph_url, "http://127.0.0.1:1/x");
    assert_string_equal(set.v[0].app_secret, "");
    myna_instances_release(&set);

    o = sim_inst("demo");
    set_str(o, "phone_number_id", "abc");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG,
                "instance 1 (\"demo\"): field 'phone_number_id': must be the digits", NULL);
    o = sim_inst("demo");
    cJSON_AddNumberToObject(o, "access_token", 5);
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG,
                "instance 1 (\"demo\"): field 'access_token': must be a string", NULL);
    o = sim_inst("demo");
    set_str(o, "graph_url", "ftp://127.0.0.1/x");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'graph_url'", NULL);
    o = sim_inst("demo");
    cJSON_AddStringToObject(o, "token", "x");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "unknown field 'token'", NULL);

    /* an empty phone_number_id is no number: the default, as when absent */
    assert_int_equal(parse_json(array_of(bare, NULL, NULL), &set, &err), MYNA_OK);
    snprintf(pnid, sizeof(pnid), "%s", set.v[0].phone_number_id);
    myna_instances_release(&set);
    o = sim_inst("demo");
    set_str(o, "phone_number_id", "");
    assert_int_equal(parse_json(array_of(o, NULL, NULL), &set, &err), MYNA_OK);
    assert_string_equal(set.v[0].phone_number_id, pnid);
    myna_instances_release(&set);

    /* a sim's derived number does not clash with a cloud instance's */
    assert_int_equal(parse_json(array_of(sim_inst("demo"), inst("acme", "1001"), NULL), &set,
                                &err),
                     MYNA_OK);
    assert_string_equal(set.v[1].app_secret, "secret-acme");
    myna_instances_release(&set);
}

static void test_instance_sim_cloud_still_strict(void **state)
{
    cJSON *o;

    (void)state;
    /* the sim exemption is for provider "sim" only */
    o = sim_inst("acme");
    set_str(o, "provider", "cloud");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG,
                "instance 1 (\"acme\"): field 'phone_number_id': missing", NULL);
    o = inst("acme", "1001");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "app_secret");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG,
                "instance 1 (\"acme\"): field 'app_secret': missing", NULL);
    o = inst("acme", "1001");
    set_str(o, "app_secret", "");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG,
                "instance 1 (\"acme\"): field 'app_secret': a non-empty string is required", NULL);
    o = inst("acme", "1001");
    set_str(o, "verify_token", "");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'verify_token'", NULL);
    o = inst("acme", "1001");
    set_str(o, "phone_number_id", "");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'phone_number_id'", NULL);
    /* a later sim does not loosen an earlier cloud instance */
    o = inst("acme", "1001");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "access_token");
    parse_fails(array_of(sim_inst("demo"), o, NULL), MYNA_ECONFIG,
                "instance 2 (\"acme\"): field 'access_token': missing", NULL);
}

static void test_instance_sim_provider_and_id(void **state)
{
    cJSON *o;

    (void)state;
    o = sim_inst("demo");
    set_str(o, "provider", "sms");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG,
                "instance 1 (\"demo\"): field 'provider': unsupported provider (supported: "
                "cloud, sim)",
                NULL);
    o = sim_inst("demo");
    set_str(o, "provider", "Sim");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "unsupported provider", NULL);
    o = sim_inst("demo");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "provider");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'provider': missing", NULL);
    /* id and name are required of a sim too */
    o = sim_inst("demo");
    set_str(o, "id", "");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'id': must be 1-64", NULL);
    o = sim_inst("demo");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "id");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "instance 1: field 'id': missing", NULL);
    o = sim_inst("demo");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "name");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'name': missing", NULL);
    o = sim_inst("demo");
    set_str(o, "name", "");
    parse_fails(array_of(o, NULL, NULL), MYNA_ECONFIG, "field 'name'", NULL);
    /* two sims with one id */
    parse_fails(array_of(sim_inst("demo"), sim_inst("demo"), NULL), MYNA_ECONFIG,
                "\"demo\" is already used by instance 1", NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_instance_two_valid),
        T(test_instance_graph_url_default),
        T(test_instance_literal_file),
        T(test_instance_empty_array),
        T(test_instance_len_is_respected),
        T(test_instance_each_required_missing),
        T(test_instance_each_required_null),
        T(test_instance_wrong_types),
        T(test_instance_unknown_field),
        T(test_instance_not_an_object),
        T(test_instance_bad_slug_ids),
        T(test_instance_provider),
        T(test_instance_phone_number_id),
        T(test_instance_waba_id),
        T(test_instance_graph_url),
        T(test_instance_name_and_secrets),
        T(test_instance_field_too_long),
        T(test_instance_duplicate_id),
        T(test_instance_load_not_regular),
        T(test_instance_duplicate_phone_number_id),
        T(test_instance_first_bad_one_named),
        T(test_instance_not_an_array),
        T(test_instance_not_json),
        T(test_instance_trailing_garbage_refused),
        T(test_instance_too_many),
        T(test_instance_parse_too_large),
        T(test_instance_load_ok),
        T(test_instance_load_error_names_file),
        T(test_instance_load_missing_file),
        T(test_instance_load_too_large),
        T(test_instance_release_zeroes),
        T(test_instance_find),
        T(test_instance_sim_minimal),
        T(test_instance_sim_given_fields),
        T(test_instance_sim_cloud_still_strict),
        T(test_instance_sim_provider_and_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
