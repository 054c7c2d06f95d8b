/* test_instance_check.c - myna_instance_parse_one: the admin API's view of an
 * instance body, every bad field named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "wa/instance.h"

static int check(const char *json, struct myna_field_error *errs, size_t max, size_t *n)
{
    struct myna_instance in;
    struct myna_err err = MYNA_ERR_INIT;
    int rc = myna_instance_parse_one(json, strlen(json), &in, errs, max, n, &err);

    if (rc == MYNA_OK)
        myna_instance_release(&in);
    return rc;
}

static const struct myna_field_error *find(const struct myna_field_error *e, size_t n,
                                           const char *field)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].field, field) == 0)
            return &e[i];
    return NULL;
}

static void test_valid_cloud_and_sim(void **state)
{
    struct myna_field_error e[16];
    struct myna_instance in;
    struct myna_err err = MYNA_ERR_INIT;
    size_t n = 99;
    const char *json = "{\"id\":\"shop\",\"name\":\"Shop\",\"provider\":\"cloud\","
                       "\"phone_number_id\":\"123\",\"access_token\":\"t\",\"app_secret\":\"s\","
                       "\"verify_token\":\"v\",\"batch\":{\"window_ms\":100}}";

    (void)state;
    assert_int_equal(myna_instance_parse_one(json, strlen(json), &in, e, 16, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    assert_string_equal(in.id, "shop");
    assert_int_equal(in.batch_window_ms, 100);
    assert_int_equal(in.batch_max, 10);  /* defaults filled */
    myna_instance_release(&in);
    assert_int_equal(check("{\"id\":\"s\",\"name\":\"S\",\"provider\":\"sim\"}", e, 16, &n),
                     MYNA_OK);
}

static void test_every_bad_field_is_named(void **state)
{
    struct myna_field_error e[16];
    size_t n = 0;
    const struct myna_field_error *f;

    (void)state;
    assert_int_equal(check("{\"id\":\"Bad Id\",\"name\":\"\",\"provider\":\"cloud\","
                           "\"phone_number_id\":\"12a\",\"access_token\":\"t\","
                           "\"verify_token\":7,\"colour\":\"red\","
                           "\"llm\":{\"url\":\"ftp://x\",\"model\":\"m\"},"
                           "\"batch\":{\"window_ms\":-5},\"pacing\":{\"messages_per_second\":0}}",
                           e, 16, &n),
                     MYNA_ECONFIG);
    assert_non_null(f = find(e, n, "colour"));
    assert_string_equal(f->error, "unknown field");
    assert_non_null(f = find(e, n, "id"));
    assert_non_null(strstr(f->error, "a-z"));
    assert_non_null(find(e, n, "name"));
    assert_non_null(find(e, n, "phone_number_id"));
    assert_non_null(f = find(e, n, "app_secret"));
    assert_string_equal(f->error, "missing");
    assert_non_null(f = find(e, n, "verify_token"));
    assert_string_equal(f->error, "must be a string");
    assert_non_null(f = find(e, n, "llm.url"));
    assert_non_null(strstr(f->error, "https://"));
    assert_non_null(find(e, n, "batch.window_ms"));
    assert_non_null(find(e, n, "pacing.messages_per_second"));
    assert_int_equal(n, 9);
}

static void test_bounded_and_hostile(void **state)
{
    struct myna_field_error e[2];
    size_t n = 0;

    (void)state;
    /* more errors than room: the first ones are kept, still an error */
    assert_int_equal(check("{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", e, 2, &n), MYNA_ECONFIG);
    assert_int_equal(n, 2);
    assert_int_equal(check("not json", e, 2, &n), MYNA_EPARSE);
    assert_int_equal(check("[1,2]", e, 2, &n), MYNA_ECONFIG);
    assert_int_equal(check("{\"id\":\"x\",\"id\":\"y\",\"name\":\"n\",\"provider\":\"sim\"}", e, 2,
                           &n),
                     MYNA_ECONFIG);
    assert_string_equal(e[0].field, "id");
    assert_string_equal(e[0].error, "appears twice");
    /* a named provider is for the instances file only */
    assert_int_equal(check("{\"id\":\"x\",\"name\":\"n\",\"provider\":\"sim\",\"llm\":\"groq\"}",
                           e, 2, &n),
                     MYNA_ECONFIG);
    assert_string_equal(e[0].field, "llm");
}

/* A name cut to fit a message ends between characters: the admin API
 * sends field and error as JSON, which cannot hold half a character. */
static void test_cut_between_characters(void **state)
{
#define SIM "{\"id\":\"x\",\"name\":\"n\",\"provider\":\"sim\","
#define ZH16 "\\u0436\\u0436\\u0436\\u0436\\u0436\\u0436\\u0436\\u0436" \
             "\\u0436\\u0436\\u0436\\u0436\\u0436\\u0436\\u0436\\u0436"
    /* the key goes between the two halves */
    static const char *const around[][2] = {
        { SIM "\"", "\":1}" },
        { SIM "\"llm\":{\"url\":\"http://h\",\"model\":\"m\",\"", "\":1}}" },
        { SIM "\"llm\":\"", "\"}" },
        /* a repeated key deep enough that its path is cut to fit e.field */
        { SIM "\"llm\":{\"", "\":{\"a" ZH16 "\":1,\"a" ZH16 "\":2}}}" },
    };
    char key[80], json[512];
    struct myna_field_error e[4];
    size_t n = 0;

    (void)state;
    /* 63 ASCII bytes and a 2-byte character: byte 64 is its first half */
    memset(key, 'a', 63);
    memcpy(key + 63, "\xc3\xa9", 3);
    for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++) {
        snprintf(json, sizeof(json), "%s%s%s", around[i][0], i == 3 ? key + 3 : key,
                 around[i][1]);
        assert_int_equal(check(json, e, 4, &n), MYNA_ECONFIG);
        assert_true(n >= 1);
        for (size_t k = 0; k < n; k++) {
            if (myna_utf8_count(e[k].field) == (size_t)-1 ||
                myna_utf8_count(e[k].error) == (size_t)-1)
                fail_msg("case %zu: '%s': '%s' holds half a character", i, e[k].field,
                         e[k].error);
        }
    }
}

static void test_how_it_runs(void **state)
{
    struct myna_field_error e[8];
    struct myna_instance in;
    struct myna_err err = MYNA_ERR_INIT;
    size_t n = 0;
    const char *ok = "{\"id\":\"x\",\"name\":\"n\",\"provider\":\"sim\",\"enabled\":false,"
                     "\"auto_start\":false,\"max_memory_mb\":64}";

    (void)state;
    assert_int_equal(myna_instance_parse_one(ok, strlen(ok), &in, e, 8, &n, &err), MYNA_OK);
    assert_int_equal(in.enabled, 0);
    assert_int_equal(in.auto_start, 0);
    assert_int_equal(in.max_memory_mb, 64);
    myna_instance_release(&in);
    assert_int_equal(check("{\"id\":\"x\",\"name\":\"n\",\"provider\":\"sim\"}", e, 8, &n),
                     MYNA_OK);
    assert_int_equal(check("{\"id\":\"x\",\"name\":\"n\",\"provider\":\"sim\",\"enabled\":\"yes\","
                           "\"max_memory_mb\":5}",
                           e, 8, &n),
                     MYNA_ECONFIG);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].field, "enabled");
    assert_string_equal(e[0].error, "must be true or false");
    assert_string_equal(e[1].field, "max_memory_mb");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_cloud_and_sim),
        cmocka_unit_test(test_every_bad_field_is_named),
        cmocka_unit_test(test_bounded_and_hostile),
        cmocka_unit_test(test_how_it_runs),
        cmocka_unit_test(test_cut_between_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
