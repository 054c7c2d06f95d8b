/* test_fleet.c - master/fleet.c (included, to make a live instance without
 * a control store, and to fail cJSON_SetValuestring on demand): the API's
 * views of an instance's config show its secrets masked or not at all,
 * never in the clear, even when there is no memory for a mask. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <string.h>

#include "../tmpdir.h"

static int mask_fails;  /* cJSON_SetValuestring fails to set a mask */

/* cJSON_SetValuestring, or, setting a mask with mask_fails, what it does
 * when its copy finds no memory: NULL, the old string left in place */
static char *test_set_valuestring(cJSON *item, const char *s)
{
    if (mask_fails && strncmp(s, "\xe2\x80\xa2", 3) == 0)
        return NULL;
    return cJSON_SetValuestring(item, s);
}

#define cJSON_SetValuestring test_set_valuestring
#include "master/fleet.c"
#undef cJSON_SetValuestring

/* short secrets: each mask ("••••" and 4 characters) is longer, so it
 * takes an allocation */
#define TOKEN "tok-abcd"
#define APP_SECRET "sec-wxyz"
#define VERIFY "vt-9876"
#define API_KEY "key-5432"

struct fx {
    char dir[64], key[128];
    struct myna_secret_box *box;
    struct myna_fleet *fleet;
};

static char *seal(struct fx *f, const char *plain, const char *field)
{
    char aad[200], *s;

    aad_of(aad, sizeof(aad), "shop", field);
    s = myna_secret_seal(f->box, plain, aad, NULL);
    assert_non_null(s);
    return s;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char config[2048], *tok, *app, *ver, *api;
    struct live *l;
    int oom = 0;

    if (f == NULL || test_tmpdir(f->dir, sizeof(f->dir), "test-fleet") != 0)
        return -1;
    snprintf(f->key, sizeof(f->key), "%s/secret.key", f->dir);
    if ((f->box = myna_secret_box_open(f->key, 1, NULL)) == NULL ||
        (f->fleet = myna_fleet_new(NULL, f->box, NULL, NULL, NULL, f->dir, "127.0.0.1:8081", 256,
                                   NULL)) == NULL)
        return -1;
    tok = seal(f, TOKEN, "access_token");
    app = seal(f, APP_SECRET, "app_secret");
    ver = seal(f, VERIFY, "verify_token");
    api = seal(f, API_KEY, "llm.api_key");
    snprintf(config, sizeof(config),
             "{\"id\":\"shop\",\"name\":\"Shop\",\"provider\":\"cloud\","
             "\"phone_number_id\":\"123456789\",\"access_token\":\"%s\",\"app_secret\":\"%s\","
             "\"verify_token\":\"%s\",\"llm\":{\"url\":\"http://127.0.0.1:9\",\"model\":\"m\","
             "\"api_key\":\"%s\"}}",
             tok, app, ver, api);
    free(tok);
    free(app);
    free(ver);
    free(api);
    if ((l = live_new(f->fleet, "shop", 0, 1, config, NULL)) == NULL)
        return -1;
    assert_null(put(f->fleet, l, &oom));
    assert_int_equal(oom, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    mask_fails = 0;
    myna_fleet_free(f->fleet);
    myna_secret_box_free(f->box);
    test_rmtree(f->dir);
    free(f);
    return 0;
}

/* The secret at path ("llm.api_key" or a top-level name) in o, or NULL. */
static const char *secret_of(const cJSON *o, const char *name)
{
    const cJSON *v;

    if (strcmp(name, "llm.api_key") == 0)
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "llm"),
                                             "api_key");
    else
        v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The view's text shows none of the secrets in the clear. */
static void no_plain_secret(const cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);

    assert_non_null(text);
    if (strstr(text, TOKEN) || strstr(text, APP_SECRET) || strstr(text, VERIFY) ||
        strstr(text, API_KEY))
        fail_msg("a secret in the clear: %s", text);
    free(text);
}

static void test_fleet_views_mask_secrets(void **state)
{
    struct fx *f = *state;
    cJSON *o = myna_fleet_config_json(f->fleet, "shop", MYNA_SECRETS_MASKED);

    assert_non_null(o);
    no_plain_secret(o);
    assert_string_equal(secret_of(o, "access_token"), "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2"
                                                      "\xe2\x80\xa2" "abcd");
    assert_string_equal(secret_of(o, "llm.api_key"), "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2"
                                                     "\xe2\x80\xa2" "5432");
    cJSON_Delete(o);

    o = myna_fleet_config_json(f->fleet, "shop", MYNA_SECRETS_HIDDEN);
    assert_non_null(o);
    no_plain_secret(o);
    assert_null(secret_of(o, "verify_token"));
    cJSON_Delete(o);

    o = myna_fleet_config_json(f->fleet, "shop", MYNA_SECRETS_SHOWN);  /* the export */
    assert_non_null(o);
    assert_string_equal(secret_of(o, "app_secret"), APP_SECRET);
    cJSON_Delete(o);
}

/* No memory for a mask: the secret is left out, as in a guest's view; it
 * stayed in the clear in the answer. */
static void test_fleet_mask_without_memory_leaves_secret_out(void **state)
{
    struct fx *f = *state;
    static const char *const names[] = { "access_token", "app_secret", "verify_token",
                                         "llm.api_key" };
    cJSON *o;

    mask_fails = 1;
    o = myna_fleet_config_json(f->fleet, "shop", MYNA_SECRETS_MASKED);
    mask_fails = 0;
    assert_non_null(o);
    no_plain_secret(o);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_null(secret_of(o, names[i]));
    /* the rest of the config is there */
    assert_string_equal(secret_of(o, "phone_number_id"), "123456789");
    cJSON_Delete(o);
}

static void check_slug(const char *name, const char *want)
{
    char id[64];

    slugify(name, id, sizeof(id));
    assert_string_equal(id, want);
}

/* An id is made from a name in any of the alphabets a small business here
 * names itself in: Cyrillic and accented Latin letters are written in
 * Latin ones; they were dropped ("Кафе" made "instance"). */
static void test_fleet_slug_from_names(void **state)
{
    (void)state;
    check_slug("Support Bot", "support-bot");
    check_slug("  --Shop 24/7!  ", "shop-24-7");
    check_slug("Кафе", "kafe");
    check_slug("Барбершоп «Щётка»", "barbershop-shchetka");
    check_slug("Объявления", "obyavleniya");
    check_slug("Їжа і кава", "izha-i-kava");
    check_slug("Café Olé", "cafe-ole");
    check_slug("Straße × Ærø", "strasse-aero");
    check_slug("Ÿ ÿ ÷ Ø", "y-o");
    check_slug("日本", "instance");
    check_slug("\xff\xfe", "instance");
    check_slug("", "instance");
    /* at most 56 characters, never ending with '-' */
    check_slug("щщщщщщщщщщщщщщ щ", "shchshchshchshchshchshchshchshchshchshchshchshchshchshch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fleet_slug_from_names),
        cmocka_unit_test_setup_teardown(test_fleet_views_mask_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_mask_without_memory_leaves_secret_out, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
