/* test_instance_conversation.c - the conversation fields of an instance:
 * llm (inline or a named provider), batch, access, rate_limit, faq,
 * fallback_text, pacing; defaults and the messages that name a bad field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "wa/instance.h"
#include "../tmpdir.h"

#define BASE "\"id\":\"barber\",\"name\":\"B\",\"provider\":\"cloud\",\"phone_number_id\":\"1\"," \
             "\"access_token\":\"t\",\"app_secret\":\"s\",\"verify_token\":\"v\""

static int parse(const char *json, struct myna_instance_set *set, struct myna_err *err)
{
    return myna_instances_parse(json, strlen(json), set, err);
}

static void expect_error(const char *json, const char *needle)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;

    assert_int_not_equal(parse(json, &set, &err), MYNA_OK);
    assert_int_equal(set.n, 0);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", err.msg, needle);
}

/* What an import stores: each named provider replaced by its settings. */
static void test_providers_inlined(void **state)
{
    cJSON *root = cJSON_Parse("{\"llm_providers\":{\"p\":{\"url\":\"http://x\",\"model\":\"m\"}},"
                              "\"instances\":[{\"id\":\"a\",\"llm\":\"p\"},{\"id\":\"b\",\"llm\":\"q\"},"
                              "{\"id\":\"c\"}]}");
    cJSON *list, *arr;
    char *text;
    int oom = -1;

    (void)state;
    list = myna_instances_inline_providers(root, &oom);
    assert_int_equal(oom, 0);
    assert_ptr_equal(list, cJSON_GetObjectItemCaseSensitive(root, "instances"));
    text = cJSON_PrintUnformatted(list);
    assert_string_equal(text, "[{\"id\":\"a\",\"llm\":{\"url\":\"http://x\",\"model\":\"m\"}},"
                              "{\"id\":\"b\",\"llm\":\"q\"},{\"id\":\"c\"}]");
    cJSON_free(text);
    cJSON_Delete(root);

    arr = cJSON_Parse("[{\"id\":\"a\",\"llm\":\"p\"}]");  /* no providers: left as is */
    assert_ptr_equal(myna_instances_inline_providers(arr, &oom), arr);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(arr->child, "llm")->valuestring, "p");
    cJSON_Delete(arr);
    root = cJSON_Parse("{\"x\":1}");
    assert_null(myna_instances_inline_providers(root, &oom));
    cJSON_Delete(root);
    assert_null(myna_instances_inline_providers(NULL, &oom));
}

/* A file read once: checked, then its tree with the providers inlined; a
 * bad file gives no tree and the message names the file. */
static void test_load_json(void **state)
{
    char dir[64], path[128];
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *root = NULL, *list;
    FILE *f;

    (void)state;
    assert_int_equal(test_tmpdir(dir, sizeof(dir), "instances-json"), 0);
    snprintf(path, sizeof(path), "%s/i.json", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs("{\"llm_providers\":{\"p\":{\"url\":\"http://127.0.0.1:1/v1\",\"model\":\"m\"}},"
          "\"instances\":[{" BASE ",\"llm\":\"p\"}]}", f);
    fclose(f);
    list = myna_instances_load_json(path, &root, &err);
    assert_non_null(list);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(list->child, "llm"), "model")
                            ->valuestring,
                        "m");
    cJSON_Delete(root);

    assert_non_null(f = fopen(path, "w"));
    fputs("[{" BASE ",\"llm\":\"nope\"}]", f);
    fclose(f);
    assert_null(myna_instances_load_json(path, &root, &err));
    assert_null(root);
    assert_non_null(strstr(err.msg, "i.json"));
    assert_non_null(strstr(err.msg, "no provider named"));
    snprintf(path, sizeof(path), "%s/missing.json", dir);
    assert_null(myna_instances_load_json(path, &root, &err));
    assert_int_equal(err.code, MYNA_EIO);
    assert_int_equal(test_rmtree(dir), 0);
}

static void test_defaults(void **state)
{
    struct myna_instance_set set;
    const struct myna_instance *in;

    (void)state;
    assert_int_equal(parse("[{" BASE "}]", &set, NULL), MYNA_OK);
    in = &set.v[0];
    assert_int_equal(in->llm.enabled, 0);
    assert_int_equal(in->batch_window_ms, 9000);
    assert_int_equal(in->batch_max, 10);
    assert_int_equal(in->n_allowed, 0);
    assert_int_equal(in->n_blocked, 0);
    assert_int_equal(in->rate_count, 5);
    assert_int_equal(in->rate_hours, 5);
    assert_true(strlen(in->rate_notice) > 0);
    assert_true(strlen(in->fallback_text) > 0);
    assert_int_equal(in->n_faq, 0);
    assert_true(in->pacing_mps == 20);
    assert_int_equal(in->loop_replies_per_minute, 10);
    assert_int_equal(in->loop_cooldown_s, 600);
    assert_int_equal(in->loop_repeat_limit, 3);
    myna_instances_release(&set);
    expect_error("[{" BASE ",\"loop_guard\":{\"repeat_limit\":1}}]", "field 'loop_guard.repeat_limit'");
    expect_error("[{" BASE ",\"loop_guard\":{\"x\":1}}]", "unknown field 'loop_guard.x'");
}

/* null for a section is the same as leaving it out, as for every other
 * field: its defaults (a PUT sends it to go back to them). Each was refused
 * as "must be a JSON object". */
static void test_null_sections_are_absent(void **state)
{
    static const char *const sections[] = { "batch", "access", "rate_limit", "loop_guard",
                                            "pacing", "llm", "faq" };
    struct myna_instance_set set;
    struct myna_instance one;
    struct myna_field_error errs[4];
    struct myna_err err = MYNA_ERR_INIT;
    size_t n_errs = 9;
    char json[512];

    (void)state;
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        snprintf(json, sizeof(json), "[{" BASE ",\"%s\":null}]", sections[i]);
        if (parse(json, &set, &err) != MYNA_OK)
            fail_msg("%s: null refused: %s", sections[i], err.msg);
        assert_int_equal(set.v[0].batch_window_ms, 9000);
        assert_int_equal(set.v[0].batch_max, 10);
        assert_int_equal(set.v[0].n_allowed + set.v[0].n_blocked, 0);
        assert_int_equal(set.v[0].rate_count, 5);
        assert_int_equal(set.v[0].rate_hours, 5);
        assert_true(strlen(set.v[0].rate_notice) > 0);
        assert_int_equal(set.v[0].loop_replies_per_minute, 10);
        assert_true(set.v[0].pacing_mps == 20);
        myna_instances_release(&set);
        /* the admin API's check, one instance */
        snprintf(json, sizeof(json), "{" BASE ",\"%s\":null}", sections[i]);
        assert_int_equal(myna_instance_parse_one(json, strlen(json), &one, errs, 4, &n_errs, &err),
                         MYNA_OK);
        assert_int_equal(n_errs, 0);
        myna_instance_release(&one);
    }
    /* not an object and not null: still refused */
    expect_error("[{" BASE ",\"batch\":[]}]", "field 'batch': must be a JSON object");
    expect_error("[{" BASE ",\"pacing\":0}]", "field 'pacing': must be a JSON object");
}

static void test_everything_set(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    const struct myna_instance *in;
    const char *json =
        "[{" BASE ",\"llm\":{\"url\":\"http://127.0.0.1:8000/v1\",\"model\":\"qwen\","
        "\"api_key\":\"k\",\"system_prompt\":\"Ты администратор барбершопа.\","
        "\"temperature\":0.2,\"max_tokens\":300,\"top_p\":0.9,\"timeout_ms\":5000},"
        "\"batch\":{\"window_ms\":200,\"max\":3},"
        "\"access\":{\"allowed\":[\"+7 (916) 123-45-67\"],\"blocked\":[\"79037654321\"]},"
        "\"rate_limit\":{\"count\":2,\"hours\":1,\"notice\":\"Хватит на сегодня\"},"
        "\"faq\":[{\"q\":[\"Сколько стоит стрижка?\",\"цена стрижки\"],\"a\":\"1500 ₽\"},"
        "{\"q\":\"Где вы?\",\"a\":\"Тверская, 1\"}],"
        "\"fallback_text\":\"Мы скоро ответим\",\"pacing\":{\"messages_per_second\":5}}]";

    (void)state;
    if (parse(json, &set, &err) != MYNA_OK)
        fail_msg("%s", err.msg);
    in = &set.v[0];
    assert_int_equal(in->llm.enabled, 1);
    assert_string_equal(in->llm.model, "qwen");
    assert_string_equal(in->llm.system_prompt, "Ты администратор барбершопа.");
    assert_true(in->llm.temperature == 0.2);
    assert_int_equal(in->llm.max_tokens, 300);
    assert_int_equal(in->llm.timeout_ms, 5000);
    assert_int_equal(in->batch_window_ms, 200);
    assert_int_equal(in->batch_max, 3);
    assert_int_equal(in->n_allowed, 1);
    assert_string_equal(in->allowed[0], "79161234567");  /* digits only */
    assert_string_equal(in->blocked[0], "79037654321");
    assert_int_equal(in->rate_count, 2);
    assert_string_equal(in->rate_notice, "Хватит на сегодня");
    assert_int_equal(in->n_faq, 2);
    assert_int_equal(in->faq[0].n_questions, 2);
    assert_string_equal(in->faq[1].questions[0], "Где вы?");
    assert_string_equal(in->faq[1].answer, "Тверская, 1");
    assert_string_equal(in->fallback_text, "Мы скоро ответим");
    assert_true(in->pacing_mps == 5);
    myna_instances_release(&set);
}

static void test_named_provider(void **state)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    const char *json =
        "{\"llm_providers\":{\"cloud:groq\":{\"url\":\"https://api.groq.com/openai/v1\","
        "\"model\":\"llama\",\"api_key\":\"gsk\"}},"
        "\"instances\":[{" BASE ",\"llm\":\"cloud:groq\"}]}";

    (void)state;
    if (parse(json, &set, &err) != MYNA_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(set.v[0].llm.enabled, 1);
    assert_string_equal(set.v[0].llm.url, "https://api.groq.com/openai/v1");
    assert_string_equal(set.v[0].llm.api_key, "gsk");
    myna_instances_release(&set);
    expect_error("{\"instances\":[{" BASE ",\"llm\":\"cloud:nope\"}]}",
                 "field 'llm': no provider named \"cloud:nope\"");
    expect_error("{\"llm_providers\":{\"x\":{\"url\":\"ftp://x\",\"model\":\"m\"}},"
                 "\"instances\":[{" BASE ",\"llm\":\"x\"}]}",
                 "llm provider \"x\": field 'llm.url'");
    /* every provider is checked, used or not: its typo shows now, not when
     * an instance first names it */
    expect_error("{\"llm_providers\":{\"spare\":{\"url\":\"http://x\",\"modle\":\"m\"}},"
                 "\"instances\":[{" BASE "}]}",
                 "llm provider \"spare\": unknown field 'llm.modle'");
    expect_error("{\"llm_providers\":{\"bare\":{\"url\":\"https://\",\"model\":\"m\"}},"
                 "\"instances\":[]}",
                 "llm provider \"bare\": field 'llm.url': has no host after the scheme");
    expect_error("{\"instances\":[], \"extra\":1}", "unknown top-level field 'extra'");
}

static void test_bad_fields_are_named(void **state)
{
    (void)state;
    expect_error("[{" BASE ",\"llm\":{\"url\":\"http://x\"}}]", "field 'llm.model': missing");
    /* a second api_key would skip the seal and the mask */
    expect_error("[{" BASE ",\"llm\":{\"url\":\"http://x/v1\",\"model\":\"m\","
                 "\"api_key\":\"sk-one\",\"api_key\":\"sk-two\"}}]",
                 "field 'llm.api_key': appears twice");
    expect_error("{\"llm_providers\":{\"p\":{\"url\":\"http://x\",\"model\":\"m\","
                 "\"api_key\":\"a\",\"api_key\":\"b\"}},\"instances\":[{" BASE ",\"llm\":\"p\"}]}",
                 "field 'llm_providers.p.api_key': appears twice");
    expect_error("[{" BASE ",\"faq\":[{\"q\":\"a\",\"a\":\"b\",\"a\":\"c\"}]}]",
                 "field 'faq[0].a': appears twice");
    /* what the model client refuses: the bot would only exit */
    expect_error("[{" BASE ",\"llm\":{\"url\":\"http://x/v1 \",\"model\":\"m\"}}]",
                 "field 'llm.url': has a space");
    expect_error("[{" BASE ",\"llm\":{\"url\":\"http://x/v1\",\"model\":\"m\","
                 "\"api_key\":\"sk-abc\\n\"}}]",
                 "field 'llm.api_key': has a line break");
    expect_error("[{" BASE ",\"llm\":{\"url\":\"http://x\",\"model\":\"m\",\"temperature\":5}}]",
                 "field 'llm.temperature': must be a number from 0 to 2");
    expect_error("[{" BASE ",\"llm\":{\"url\":\"http://x\",\"model\":\"m\",\"modle\":1}}]",
                 "unknown field 'llm.modle'");
    expect_error("[{" BASE ",\"batch\":{\"window_ms\":-1}}]", "field 'batch.window_ms'");
    expect_error("[{" BASE ",\"batch\":{\"max\":0}}]", "field 'batch.max'");
    expect_error("[{" BASE ",\"batch\":5}]", "field 'batch': must be a JSON object");
    expect_error("[{" BASE ",\"access\":{\"blocked\":[\"not a phone\"]}}]",
                 "field 'access.blocked': entry 1 is not a phone number");
    expect_error("[{" BASE ",\"access\":{\"allowed\":\"79161234567\"}}]",
                 "field 'access.allowed': must be an array");
    /* E.164 numbers have at most 15 digits: more is a typo that never matches */
    expect_error("[{" BASE ",\"access\":{\"blocked\":[\"7916123456789012\"]}}]",
                 "field 'access.blocked': entry 1 is not a phone number (5 to 15 digits)");
    expect_error("[{" BASE ",\"llm\":{\"url\":\"https://\",\"model\":\"m\"}}]",
                 "field 'llm.url': has no host after the scheme");
    {   /* null is absent, as for every other field */
        struct myna_instance_set set;
        struct myna_err err = MYNA_ERR_INIT;
        const char *json = "[{" BASE ",\"access\":{\"allowed\":null,"
                           "\"blocked\":[\"+7 916 123-45-67\", \"791612345678901\"]}}]";
        if (parse(json, &set, &err) != MYNA_OK)
            fail_msg("%s", err.msg);
        assert_int_equal(set.v[0].n_allowed, 0);
        assert_int_equal(set.v[0].n_blocked, 2);
        assert_string_equal(set.v[0].blocked[0], "79161234567");
        myna_instances_release(&set);
    }
    expect_error("[{" BASE ",\"rate_limit\":{\"hours\":0}}]", "field 'rate_limit.hours'");
    expect_error("[{" BASE ",\"faq\":[{\"q\":[],\"a\":\"x\"}]}]", "field 'faq[0].q'");
    expect_error("[{" BASE ",\"faq\":[{\"q\":\"x\"}]}]", "field 'faq[0].a': missing");
    /* one question as a plain string is checked as one in an array */
    expect_error("[{" BASE ",\"faq\":[{\"q\":[\"\"],\"a\":\"x\"}]}]",
                 "field 'faq[0].q': questions must be non-empty strings");
    expect_error("[{" BASE ",\"faq\":[{\"q\":\"\",\"a\":\"x\"}]}]",
                 "field 'faq[0].q': questions must be non-empty strings");
    {
        char json[1400];
        int len = snprintf(json, sizeof(json),
                           "[{" BASE ",\"faq\":[{\"q\":\"%01001d\",\"a\":\"x\"}]}]", 0);

        assert_true(len > 0 && (size_t)len < sizeof(json));
        expect_error(json, "field 'faq[0].q': questions must be non-empty strings");
    }
    expect_error("[{" BASE ",\"faq\":[{\"q\":\"x\",\"a\":\"y\",\"z\":1}]}]",
                 "unknown field 'faq[0].z'");
    expect_error("[{" BASE ",\"faq\":{}}]", "field 'faq': must be an array");
    expect_error("[{" BASE ",\"fallback_text\":7}]", "field 'fallback_text'");
    expect_error("[{" BASE ",\"pacing\":{\"messages_per_second\":0}}]",
                 "field 'pacing.messages_per_second'");
}

/* A text that is not UTF-8 goes nowhere: Meta, a model and the admin
 * API's JSON want UTF-8; the API refused it, an instances file did not. */
static void test_texts_are_utf8(void **state)
{
    static const char *const bad[][2] = {
        { "\"fallback_text\":\"Sorry \xC3\"", "field 'fallback_text': must be valid UTF-8" },
        { "\"rate_limit\":{\"notice\":\"\xFF\"}",
          "field 'rate_limit.notice': must be valid UTF-8" },
        { "\"faq\":[{\"q\":\"hours\",\"a\":\"9-18 \xE2\x80\"}]",
          "field 'faq[0].a': must be valid UTF-8" },
        { "\"faq\":[{\"q\":[\"ok\",\"\xC0\xAF\"],\"a\":\"x\"}]",
          "field 'faq[0].q': questions must be non-empty strings of at most 1000 bytes of UTF-8" },
        { "\"llm\":{\"url\":\"http://x\",\"model\":\"m\xED\xA0\x80\"}",
          "field 'llm.model': must be valid UTF-8" },
        { "\"llm\":{\"url\":\"http://x\",\"model\":\"m\",\"system_prompt\":\"\x80\"}",
          "field 'llm.system_prompt': must be valid UTF-8" },
    };
    char json[600];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "[{" BASE ",%s}]", bad[i][0]);
        expect_error(json, bad[i][1]);
    }
    /* an id that is not UTF-8 is not shown in the message of its instance */
    expect_error("[{\"id\":\"a\xFF\",\"name\":\"B\"}]", "instance 1:");
    snprintf(json, sizeof(json), "[{" BASE ",\"fallback_text\":\"Извините, ошибка\"}]");
    {
        struct myna_instance_set set;
        struct myna_err err = MYNA_ERR_INIT;
        assert_int_equal(parse(json, &set, &err), MYNA_OK);
        myna_instances_release(&set);
    }
}

/* A count, a time or a size is a whole number: cut to an int, a
 * rate_limit.count of 0.5 was 0, no limit at all. */
static void test_whole_numbers(void **state)
{
    static const char *const bad[][2] = {
        { "\"rate_limit\":{\"count\":0.5}", "field 'rate_limit.count': must be a whole number" },
        { "\"rate_limit\":{\"hours\":1.5}", "field 'rate_limit.hours': must be a whole number" },
        { "\"batch\":{\"window_ms\":0.9}", "field 'batch.window_ms': must be a whole number" },
        { "\"batch\":{\"max\":2.5}", "field 'batch.max': must be a whole number" },
        { "\"loop_guard\":{\"cooldown_s\":0.5}", "field 'loop_guard.cooldown_s'" },
        { "\"max_memory_mb\":16.5", "field 'max_memory_mb': must be a whole number from 16" },
        { "\"llm\":{\"url\":\"http://x\",\"model\":\"m\",\"max_tokens\":1.5}",
          "field 'llm.max_tokens': must be a whole number" },
    };
    struct myna_instance_set set;
    char json[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "[{" BASE ",%s}]", bad[i][0]);
        expect_error(json, bad[i][1]);
    }
    /* 2.0 and 2e3 are whole */
    assert_int_equal(parse("[{" BASE ",\"rate_limit\":{\"count\":2.0},"
                           "\"batch\":{\"window_ms\":2e3}}]", &set, NULL),
                     MYNA_OK);
    assert_int_equal(set.v[0].rate_count, 2);
    assert_int_equal(set.v[0].batch_window_ms, 2000);
    myna_instances_release(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_null_sections_are_absent),
        cmocka_unit_test(test_everything_set),
        cmocka_unit_test(test_named_provider),
        cmocka_unit_test(test_providers_inlined),
        cmocka_unit_test(test_load_json),
        cmocka_unit_test(test_bad_fields_are_named),
        cmocka_unit_test(test_whole_numbers),
        cmocka_unit_test(test_texts_are_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
