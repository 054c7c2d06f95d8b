/* fuzz_instances.c - libFuzzer harness for the two parsers of instance
 * JSON: the instances file (myna_instances_parse) and one instance object,
 * an admin API body (myna_instance_parse_one). Any bytes in, a set or an
 * error out, no leak, no crash.
 *   - On success every instance of the file has its required fields and a
 *     unique id; on failure the set is empty and the message set.
 *   - What an import stores, each instance object of the file with its
 *     named provider inlined (myna_instances_inline_providers) and printed,
 *     is an instance the admin API's parser takes with the same settings:
 *     an accepted file never stores an instance that does not load.
 *   - The same bytes as one object: on success the required fields are
 *     there; on MYNA_ECONFIG of an object at least one and at most max
 *     field errors, each with its reason.
 * Corpus in corpus/instances/, dictionary in instances.dict. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/instance.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            abort();          \
    } while (0)

#define MAX_ERRS 8

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_required(const struct myna_instance *in)
{
    CHECK(in->id != NULL && in->name != NULL && in->provider != NULL &&
          in->phone_number_id != NULL && in->waba_id != NULL && in->access_token != NULL &&
          in->app_secret != NULL && in->verify_token != NULL && in->graph_url != NULL);
}

/* The settings two parses of one instance must agree on. */
static void check_same(const struct myna_instance *a, const struct myna_instance *b)
{
    CHECK(same(a->id, b->id) && same(a->name, b->name) && same(a->provider, b->provider));
    CHECK(same(a->phone_number_id, b->phone_number_id) && same(a->waba_id, b->waba_id));
    CHECK(same(a->access_token, b->access_token) && same(a->app_secret, b->app_secret));
    CHECK(same(a->verify_token, b->verify_token) && same(a->graph_url, b->graph_url));
    CHECK(a->llm.enabled == b->llm.enabled && same(a->llm.url, b->llm.url));
    CHECK(same(a->llm.model, b->llm.model) && same(a->llm.api_key, b->llm.api_key));
    CHECK(same(a->llm.system_prompt, b->llm.system_prompt));
    CHECK(a->llm.temperature == b->llm.temperature && a->llm.top_p == b->llm.top_p);
    CHECK(a->llm.max_tokens == b->llm.max_tokens && a->llm.timeout_ms == b->llm.timeout_ms);
    CHECK(a->batch_window_ms == b->batch_window_ms && a->batch_max == b->batch_max);
    CHECK(a->n_allowed == b->n_allowed && a->n_blocked == b->n_blocked);
    CHECK(a->rate_count == b->rate_count && a->rate_hours == b->rate_hours);
    CHECK(same(a->rate_notice, b->rate_notice) && a->n_faq == b->n_faq);
    CHECK(same(a->fallback_text, b->fallback_text) && a->pacing_mps == b->pacing_mps);
    CHECK(a->loop_replies_per_minute == b->loop_replies_per_minute);
    CHECK(a->loop_cooldown_s == b->loop_cooldown_s);
    CHECK(a->loop_repeat_limit == b->loop_repeat_limit);
    CHECK(a->enabled == b->enabled && a->auto_start == b->auto_start);
    CHECK(a->max_memory_mb == b->max_memory_mb);
}

/* Each instance of an accepted file, as an import stores it. */
static void check_stored(const uint8_t *data, size_t size, const struct myna_instance_set *set)
{
    cJSON *root = cJSON_ParseWithLength((const char *)data, size), *list, *item;
    size_t i = 0;
    int oom = 0;

    CHECK(root != NULL);
    list = myna_instances_inline_providers(root, &oom);
    CHECK(list != NULL && !oom);
    cJSON_ArrayForEach(item, list) {
        struct myna_field_error errs[MAX_ERRS];
        struct myna_err err = MYNA_ERR_INIT;
        struct myna_instance in;
        char *text = cJSON_PrintUnformatted(item);
        size_t n = 0;

        CHECK(text != NULL && i < set->n);
        CHECK(myna_instance_parse_one(text, strlen(text), &in, errs, MAX_ERRS, &n, &err) ==
              MYNA_OK);
        check_same(&set->v[i], &in);
        myna_instance_release(&in);
        free(text);
        i++;
    }
    CHECK(i == set->n);
    cJSON_Delete(root);
}

static void check_one(const uint8_t *data, size_t size)
{
    struct myna_field_error errs[MAX_ERRS];
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_instance in;
    size_t n = 99;
    int rc = myna_instance_parse_one((const char *)data, size, &in, errs, MAX_ERRS, &n, &err);

    CHECK(n <= MAX_ERRS);
    if (rc == MYNA_OK) {
        CHECK(n == 0);
        check_required(&in);
        myna_instance_release(&in);
        return;
    }
    CHECK(err.code == rc && err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof(err.msg)));
    CHECK(in.id == NULL && in.name == NULL && in.faq == NULL && in.llm.url == NULL);
    if (rc == MYNA_ECONFIG && n == 0) {   /* only a value that is no object */
        cJSON *v = cJSON_ParseWithLength((const char *)data, size);
        CHECK(v != NULL && !cJSON_IsObject(v));
        cJSON_Delete(v);
    }
    for (size_t i = 0; i < n; i++)
        CHECK(memchr(errs[i].field, '\0', sizeof(errs[i].field)) != NULL &&
              memchr(errs[i].error, '\0', sizeof(errs[i].error)) != NULL &&
              errs[i].error[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    int rc = myna_instances_parse((const char *)data, size, &set, &err);

    if (rc == MYNA_OK) {
        for (size_t i = 0; i < set.n; i++) {
            const struct myna_instance *in = &set.v[i];
            check_required(in);
            CHECK(myna_instances_find(&set, in->id) == in); /* ids are unique */
        }
        check_stored(data, size, &set);
    } else {
        CHECK(set.v == NULL && set.n == 0 && err.code == rc && err.msg[0] != '\0' &&
              memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
    }
    myna_instances_release(&set);
    check_one(data, size);
    return 0;
}
