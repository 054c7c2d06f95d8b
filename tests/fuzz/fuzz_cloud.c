/* fuzz_cloud.c - libFuzzer harness for myna_cloud_parse.
 *
 * Any bytes go in; the parser must return a defined code, and on success
 * every record must keep the promises of record.h and cloud.h. Each string is
 * walked with strlen (ASan sees a pointer into freed or foreign memory) and
 * checked to be UTF-8, and each record's raw must read back as the JSON object
 * it was printed from (its "id" the wamid, a status's "status" its name); a
 * broken promise traps so the fuzzer keeps the input.
 * The arena is bounded like a request's arena and freed every run, so a leak
 * of cJSON memory shows as a LeakSanitizer report. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/record.h"
#include "wa/cloud.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* NULL is allowed where record.h allows it; anything else must be a real,
 * terminated UTF-8 string. */
static size_t touch(const char *s)
{
    if (s == NULL)
        return 0;
    CHECK(utf8_ok((const unsigned char *)s));
    return strlen(s);
}

/* raw is one JSON object whose key holds want. */
static void check_raw(const char *raw, size_t len, const char *key, const char *want)
{
    cJSON *j = cJSON_ParseWithLength(raw, len);
    const char *got = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));

    CHECK(cJSON_IsObject(j));
    CHECK(got != NULL && strcmp(got, want) == 0);
    cJSON_Delete(j);
}

static void check_inbound(const struct myna_inbound *in)
{
    CHECK(in->wamid != NULL && in->wamid[0] != '\0');
    CHECK(in->contact != NULL);
    CHECK((unsigned)in->type < MYNA_MSG__COUNT);
    CHECK(in->raw != NULL && touch(in->raw) == in->raw_len && in->raw[0] == '{');
    check_raw(in->raw, in->raw_len, "id", in->wamid);
    touch(in->phone_number_id);
    touch(in->wamid);
    touch(in->contact);
    touch(in->contact_user_id);
    touch(in->profile_name);
    touch(in->text);
    touch(in->reply_id);
    touch(in->media_id);
    touch(in->mime_type);
    touch(in->context_id);
    touch(in->referral_id);
    CHECK(in->ts >= 0);
    CHECK(in->error_code >= 0);
    if (in->has_location)
        CHECK(in->latitude >= -90 && in->latitude <= 90 && in->longitude >= -180
              && in->longitude <= 180);
}

static void check_status(const struct myna_status_rec *st)
{
    CHECK(st->wamid != NULL && st->wamid[0] != '\0');
    CHECK(st->status_name != NULL && st->status_name[0] != '\0');
    CHECK(st->status == myna_status_kind_from_name(st->status_name));
    CHECK(st->raw != NULL && touch(st->raw) == st->raw_len && st->raw[0] == '{');
    check_raw(st->raw, st->raw_len, "id", st->wamid);
    check_raw(st->raw, st->raw_len, "status", st->status_name);
    touch(st->phone_number_id);
    touch(st->wamid);
    touch(st->recipient);
    touch(st->error_title);
    CHECK(st->ts >= 0);
    CHECK(st->error_code >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_arena a = MYNA_ARENA_INIT(64u << 20);
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_cloud_batch b;
    size_t i;
    int rc = myna_cloud_parse((const char *)data, size, &a, &b, &err);

    switch (rc) {
    case MYNA_OK:
        CHECK(b.n_msgs + b.n_statuses <= MYNA_CLOUD_MAX_ITEMS);
        CHECK((b.msgs == NULL) == (b.n_msgs == 0));
        CHECK((b.statuses == NULL) == (b.n_statuses == 0));
        for (i = 0; i < b.n_msgs; i++)
            check_inbound(&b.msgs[i]);
        for (i = 0; i < b.n_statuses; i++)
            check_status(&b.statuses[i]);
        break;
    case MYNA_EPARSE:
    case MYNA_ESHAPE:
    case MYNA_ETOOBIG:
    case MYNA_ENOMEM:
        CHECK(err.code == rc && err.msg[0] != '\0' && strlen(err.msg) < sizeof(err.msg));
        CHECK(b.msgs == NULL && b.statuses == NULL && b.n_msgs == 0 && b.n_statuses == 0);
        break;
    default:
        CHECK(0);
    }
    myna_arena_free(&a);
    return 0;
}
