/* test_cloud.c - myna_cloud_parse against the committed Cloud API fixtures
 * (tests/data/cloud/README.md says what each must yield), the extra payloads
 * of tests/data/cloud/extra/ (README.md there) and generated bodies: hostile
 * shapes, bounds, truncation, arena exhaustion.
 *
 * Every body is parsed from an exact-size heap copy that is freed before the
 * records are checked: ASan then catches a read past the body and any record
 * string that still points into the body or into the cJSON tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/record.h"
#include "wa/cloud.h"

#ifndef MYNA_TEST_DATA
#error "MYNA_TEST_DATA must name the tests/data directory"
#endif

#define PNID "481516234200915"
#define PNID2 "527364819203746"
#define ALEX "79161234567"
#define MARINA "79037654321"
#define IGOR "79265550123"

struct parsed {
    struct myna_arena a;
    struct myna_cloud_batch b;
    struct myna_err err;
    int rc;
};

/* What one inbound record must hold; NULL means the field must be NULL. */
struct want_msg {
    const char *pnid, *wamid, *contact, *user_id, *profile_name;
    int64_t ts;
    enum myna_msg_type type;
    const char *text, *reply_id, *media_id, *mime_type, *context_id, *referral_id;
    int error_code;
};

struct want_status {
    const char *pnid, *wamid;
    enum myna_status_kind status;
    const char *status_name, *recipient;
    int64_t ts;
    int error_code;
    const char *error_title;
};

/* ---- helpers */

static char *read_data(const char *rel, size_t *len)
{
    char path[1024];
    FILE *f;
    long n;
    char *data;

    snprintf(path, sizeof(path), "%s/%s", MYNA_TEST_DATA, rel);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open '%s'", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    data = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static void assert_str_or_null(const char *got, const char *want, const char *what)
{
    if (want == NULL) {
        if (got != NULL)
            fail_msg("%s: expected NULL, got '%s'", what, got);
        return;
    }
    if (got == NULL)
        fail_msg("%s: expected '%s', got NULL", what, want);
    if (strcmp(got, want) != 0)
        fail_msg("%s: expected '%s', got '%s'", what, want, got);
}

/* raw must be that very object, compact, and parse back to it. */
static void check_raw(const char *raw, size_t raw_len, const char *wamid)
{
    cJSON *j;

    assert_non_null(raw);
    assert_int_equal(strlen(raw), raw_len);
    assert_null(strchr(raw, '\n'));
    j = cJSON_ParseWithLength(raw, raw_len);
    assert_non_null(j);
    assert_true(cJSON_IsObject(j));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id")), wamid);
    cJSON_Delete(j);
}

/* Invariants of every result (git's assert_sane_strbuf). */
static void check_sane(const struct parsed *p)
{
    size_t i;

    if (p->rc != MYNA_OK) {
        assert_int_equal(p->err.code, p->rc);
        assert_true(p->err.msg[0] != '\0');
        assert_null(p->b.msgs);
        assert_null(p->b.statuses);
        assert_int_equal(p->b.n_msgs + p->b.n_statuses + p->b.n_ignored + p->b.n_errors
                             + p->b.n_invalid,
                         0);
        return;
    }
    assert_true(p->b.n_msgs + p->b.n_statuses <= MYNA_CLOUD_MAX_ITEMS);
    assert_true((p->b.msgs == NULL) == (p->b.n_msgs == 0));
    assert_true((p->b.statuses == NULL) == (p->b.n_statuses == 0));
    for (i = 0; i < p->b.n_msgs; i++) {
        const struct myna_inbound *in = &p->b.msgs[i];

        assert_non_null(in->wamid);
        assert_true(in->wamid[0] != '\0');
        assert_non_null(in->contact);
        assert_true((unsigned)in->type < MYNA_MSG__COUNT);
        check_raw(in->raw, in->raw_len, in->wamid);
    }
    for (i = 0; i < p->b.n_statuses; i++) {
        const struct myna_status_rec *st = &p->b.statuses[i];

        assert_non_null(st->wamid);
        assert_non_null(st->status_name);
        assert_int_equal(st->status, myna_status_kind_from_name(st->status_name));
        check_raw(st->raw, st->raw_len, st->wamid);
    }
}

static void parse_mem(struct parsed *p, const void *body, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, body, len);
    memset(p, 0, sizeof(*p));
    p->a = (struct myna_arena)MYNA_ARENA_INIT(64u << 20);
    memset(&p->b, 0x5a, sizeof(p->b));   /* the parser must reset *out */
    p->rc = myna_cloud_parse(copy, len, &p->a, &p->b, &p->err);
    memset(copy, 0xa5, len);
    free(copy);
    check_sane(p);
}

static void parse_str(struct parsed *p, const char *body)
{
    parse_mem(p, body, strlen(body));
}

static void parse_file(struct parsed *p, const char *rel)
{
    size_t len;
    char *body = read_data(rel, &len);

    parse_mem(p, body, len);
    free(body);
}

static void parsed_release(struct parsed *p)
{
    myna_arena_free(&p->a);
}

static void expect_counts(const struct parsed *p, size_t n_msgs, size_t n_statuses,
                          size_t n_ignored, size_t n_errors, size_t n_invalid)
{
    if (p->rc != MYNA_OK)
        fail_msg("parse failed: %d %s", p->rc, p->err.msg);
    assert_int_equal(p->b.n_msgs, n_msgs);
    assert_int_equal(p->b.n_statuses, n_statuses);
    assert_int_equal(p->b.n_ignored, n_ignored);
    assert_int_equal(p->b.n_errors, n_errors);
    assert_int_equal(p->b.n_invalid, n_invalid);
}

static void expect_msg(const struct myna_inbound *in, const struct want_msg *w)
{
    assert_str_or_null(in->phone_number_id, w->pnid, "phone_number_id");
    assert_str_or_null(in->wamid, w->wamid, "wamid");
    assert_str_or_null(in->contact, w->contact, "contact");
    assert_str_or_null(in->contact_user_id, w->user_id, "contact_user_id");
    assert_str_or_null(in->profile_name, w->profile_name, "profile_name");
    assert_int_equal(in->ts, w->ts);
    if (in->type != w->type)
        fail_msg("type: expected %s, got %s", myna_msg_type_name(w->type),
                 myna_msg_type_name(in->type));
    assert_str_or_null(in->text, w->text, "text");
    assert_str_or_null(in->reply_id, w->reply_id, "reply_id");
    assert_str_or_null(in->media_id, w->media_id, "media_id");
    assert_str_or_null(in->mime_type, w->mime_type, "mime_type");
    assert_str_or_null(in->context_id, w->context_id, "context_id");
    assert_str_or_null(in->referral_id, w->referral_id, "referral_id");
    assert_int_equal(in->error_code, w->error_code);
    if (w->type != MYNA_MSG_LOCATION)
        assert_int_equal(in->has_location, 0);
}

static void expect_status(const struct myna_status_rec *st, const struct want_status *w)
{
    assert_str_or_null(st->phone_number_id, w->pnid, "phone_number_id");
    assert_str_or_null(st->wamid, w->wamid, "wamid");
    assert_int_equal(st->status, w->status);
    assert_str_or_null(st->status_name, w->status_name, "status_name");
    assert_str_or_null(st->recipient, w->recipient, "recipient");
    assert_int_equal(st->ts, w->ts);
    assert_int_equal(st->error_code, w->error_code);
    assert_str_or_null(st->error_title, w->error_title, "error_title");
}

static void expect_fail(const char *body, size_t len, int rc, const char *msg_part)
{
    struct parsed p;

    parse_mem(&p, body, len);
    if (p.rc != rc)
        fail_msg("expected rc %d, got %d (%s)", rc, p.rc, p.err.msg);
    if (msg_part != NULL && strstr(p.err.msg, msg_part) == NULL)
        fail_msg("err '%s' does not mention '%s'", p.err.msg, msg_part);
    parsed_release(&p);
}

static void expect_fail_str(const char *body, int rc, const char *msg_part)
{
    expect_fail(body, strlen(body), rc, msg_part);
}

static void expect_fail_file(const char *rel, int rc, const char *msg_part)
{
    size_t len;
    char *body = read_data(rel, &len);

    expect_fail(body, len, rc, msg_part);
    free(body);
}

/* One message with the given JSON members inside a valid envelope. */
static void parse_one_msg(struct parsed *p, const char *members)
{
    struct myna_buf b = MYNA_BUF_INIT(1 << 20);

    assert_int_equal(myna_buf_printf(&b,
                                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
                                     "\"changes\":[{\"field\":\"messages\",\"value\":{"
                                     "\"metadata\":{\"phone_number_id\":\"" PNID "\"},"
                                     "\"messages\":[{%s}]}}]}]}",
                                     members),
                     MYNA_OK);
    parse_mem(p, b.data, b.len);
    myna_buf_release(&b);
}

/* ---- every committed fixture */

static const struct {
    const char *file;
    size_t n_msgs, n_statuses;
} fixtures[] = {
    { "cloud-button-reply.json", 1, 0 },
    { "cloud-contacts.json", 1, 0 },
    { "cloud-image-with-caption.json", 1, 0 },
    { "cloud-list-reply.json", 1, 0 },
    { "cloud-location.json", 1, 0 },
    { "cloud-order.json", 1, 0 },
    { "cloud-reaction.json", 1, 0 },
    { "cloud-referral-ad.json", 1, 0 },
    { "cloud-reply-context.json", 1, 0 },
    { "cloud-status-delivered-read.json", 0, 2 },
    { "cloud-status-failed-131047.json", 0, 1 },
    { "cloud-status-sent.json", 0, 1 },
    { "cloud-sticker.json", 1, 0 },
    { "cloud-system.json", 1, 0 },
    { "cloud-template-button.json", 1, 0 },
    { "cloud-text-cyrillic-emoji.json", 1, 0 },
    { "cloud-text-duplicate-retry.json", 1, 0 },
    { "cloud-text.json", 1, 0 },
    { "cloud-three-messages-one-post.json", 3, 0 },
    { "cloud-unsupported.json", 1, 0 },
    { "cloud-voice.json", 1, 0 },
};

/* A new cloud-*.json without a row above (and a test below) fails here. */
static void test_every_fixture_is_listed(void **state)
{
    DIR *d = opendir(MYNA_TEST_DATA "/cloud");
    struct dirent *de;
    size_t seen = 0, i;

    (void)state;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        int listed = 0;

        if (strncmp(de->d_name, "cloud-", 6) != 0 || n < 5
            || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
            listed |= strcmp(fixtures[i].file, de->d_name) == 0;
        if (!listed)
            fail_msg("fixture '%s' has no expectations in test_cloud.c", de->d_name);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, sizeof(fixtures) / sizeof(fixtures[0]));
}

static void test_fixture_counts(void **state)
{
    char rel[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        struct parsed p;

        snprintf(rel, sizeof(rel), "cloud/%s", fixtures[i].file);
        parse_file(&p, rel);
        expect_counts(&p, fixtures[i].n_msgs, fixtures[i].n_statuses, 0, 0, 0);
        parsed_release(&p);
    }
}

static void test_text(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTdDMkU5MUIwNEQ1RjZBMUMzRQA=",
        .contact = ALEX, .profile_name = "Alex Smirnov", .ts = 1773478800,
        .type = MYNA_MSG_TEXT, .text = "Hi! Are you open on Sunday?",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-text.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
    /* a redelivery is the same record: the ingress dedupes on the wamid */
    parse_file(&p, "cloud/cloud-text-duplicate-retry.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_text_cyrillic_emoji(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTdDMkU5MUIwNEQ1RjZBMUMzRgA=",
        .contact = ALEX,
        .profile_name = "Алексей \xf0\x9f\xa7\x94", /* U+1F9D4 from \ud83e\uddd4 */
        .ts = 1773478860, .type = MYNA_MSG_TEXT,
        /* \ud83d\udc88 = U+1F488, \u2702\ufe0f, \/ = /, \ud83d\ude4f = U+1F64F */
        .text = "Здравствуйте! Хочу записаться на стрижку + бороду "
                "\xf0\x9f\x92\x88\xe2\x9c\x82\xef\xb8\x8f"
                " в субботу 14/03 к 11:00. Мастер Артём свободен? "
                "\xf0\x9f\x99\x8f",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-text-cyrillic-emoji.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    assert_int_equal(strlen(p.b.msgs[0].text), 182);
    parsed_release(&p);
}

static void test_three_messages_matched_by_wa_id(void **state)
{
    struct parsed p;
    static const struct want_msg w[3] = {
        { .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTBCOUQxRTJGM0E0QjVDNkQ3RQA=",
          .contact = ALEX, .profile_name = "Алексей", .ts = 1773478920,
          .type = MYNA_MSG_TEXT, .text = "Добрый день" },
        { .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTBCOUQxRTJGM0E0QjVDNkQ3RgA=",
          .contact = ALEX, .profile_name = "Алексей", .ts = 1773478923,
          .type = MYNA_MSG_TEXT, .text = "Можно сегодня на 18:00?" },
        { .pnid = PNID,
          .wamid = "wamid.HBgLNzkwMzc2NTQzMjEVAgASGCA5RjFDMkIzQTRENUU2RjcwODE5MkEzQjRDNUQ2RTdGOAA=",
          .contact = MARINA, .profile_name = "Марина К.", .ts = 1773478925,
          .type = MYNA_MSG_TEXT, .text = "Сколько стоит детская стрижка?" },
    };
    int i;

    (void)state;
    parse_file(&p, "cloud/cloud-three-messages-one-post.json");
    expect_counts(&p, 3, 0, 0, 0, 0);
    for (i = 0; i < 3; i++)
        expect_msg(&p.b.msgs[i], &w[i]);
    parsed_release(&p);
}

static void test_button_reply(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTExRDJDM0I0QTU5Njg3NzhBMQA=",
        .contact = ALEX, .profile_name = "Алексей", .ts = 1773479100,
        .type = MYNA_MSG_BUTTON_REPLY, .reply_id = "slot:2026-03-14T11:00", .text = "Сб 11:00",
        .context_id = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTFBMkIzQzRENUU2RjcwODEA",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-button-reply.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_list_reply(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTExRDJDM0I0QTU5Njg3NzhBMgA=",
        .contact = ALEX, .profile_name = "Алексей", .ts = 1773479160,
        .type = MYNA_MSG_LIST_REPLY, .reply_id = "svc:beard", .text = "Стрижка бороды",
        .context_id = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTFBMkIzQzRENUU2RjcwODIA",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-list-reply.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_template_button(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID,
        .wamid = "wamid.HBgLNzkwMzc2NTQzMjEVAgASGCA5RjJEM0M0QjVBNjk3ODg3NzY2NTU0NDMzMjIxMUFCMAA=",
        .contact = MARINA, .profile_name = "Марина К.", .ts = 1773479220,
        .type = MYNA_MSG_TEMPLATE_BUTTON, .reply_id = "CONFIRM_BOOKING_8842",
        .text = "Подтверждаю",
        .context_id = "wamid.HBgLNzkwMzc2NTQzMjEVAgARGBI1RTJCM0M0RDVFNkY3MDgxOTIA",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-template-button.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_image_with_caption(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTU1QUEwMUJCMDJDQzAzREQwNAA=",
        .contact = ALEX, .profile_name = "Алексей", .ts = 1773479280, .type = MYNA_MSG_IMAGE,
        .text = "Вот такую хочу \xf0\x9f\x91\x86", .media_id = "1029384756473829",
        .mime_type = "image/jpeg",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-image-with-caption.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_voice(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID,
        .wamid = "wamid.HBgLNzkwMzc2NTQzMjEVAgASGCA5RjNFNEQ1QzZCN0E4OTkwQUFCQkNDRERFRUZGMDAxMQA=",
        .contact = MARINA, .profile_name = "Марина К.", .ts = 1773479340,
        .type = MYNA_MSG_VOICE, .media_id = "1177665544332211",
        .mime_type = "audio/ogg; codecs=opus",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-voice.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_location(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTY2RUUwNUZGMDZBQTA3QkIwOAA=",
        .contact = ALEX, .profile_name = "Алексей", .ts = 1773479400,
        .type = MYNA_MSG_LOCATION,
    };

    (void)state;
    parse_file(&p, "cloud/cloud-location.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    assert_int_equal(p.b.msgs[0].has_location, 1);
    assert_true(p.b.msgs[0].latitude == 55.7602196);
    assert_true(p.b.msgs[0].longitude == 37.6186981);
    parsed_release(&p);
}

static void test_contacts_card(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTc3Q0MwOUREMEFFRTBCRkYwQwA=",
        .contact = ALEX, .profile_name = "Алексей", .ts = 1773479460,
        .type = MYNA_MSG_CONTACTS, .text = "Игорь Петров",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-contacts.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

/* The text names the first card, never a later one: without a
 * formatted_name, its first, middle and last names, else its first phone;
 * a first card with nothing of these gives no text. */
static void test_contacts_first_card(void **state)
{
    static const struct {
        const char *cards, *text;
    } cases[] = {
        { "[{\"name\":{\"formatted_name\":\"A\"}},{\"name\":{\"formatted_name\":\"B\"}}]",
          "A" },
        { "[{\"phones\":[{\"phone\":\"+7 926 555-01-23\"}]},"
          "{\"name\":{\"formatted_name\":\"B\"}}]",
          "+7 926 555-01-23" },
        { "[{\"name\":{\"formatted_name\":\"\",\"first_name\":\"Игорь\","
          "\"last_name\":\"Петров\"}},{\"name\":{\"formatted_name\":\"B\"}}]",
          "Игорь Петров" },
        { "[{\"name\":{\"first_name\":\"Anna\",\"middle_name\":\"Maria\","
          "\"last_name\":\"Lee\",\"prefix\":\"Dr\"}}]",
          "Anna Maria Lee" },
        { "[{\"name\":{\"last_name\":\"Lee\"}}]", "Lee" },
        { "[{\"name\":{\"middle_name\":\"Maria\"},\"phones\":[{\"phone\":\"1\"}]}]",
          "Maria" },
        { "[{\"name\":{\"formatted_name\":5},\"phones\":[{\"wa_id\":\"1\"},"
          "{\"phone\":\"2\"}]},{\"name\":{\"formatted_name\":\"B\"}}]",
          NULL },
        { "[{},{\"name\":{\"formatted_name\":\"B\"}}]", NULL },
        /* what is not an object is no card */
        { "[7,{\"name\":{\"formatted_name\":\"B\"}}]", "B" },
        { "[]", NULL },
    };
    char members[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p;

        snprintf(members, sizeof(members),
                 "\"id\":\"wamid.card\",\"from\":\"1\",\"type\":\"contacts\",\"contacts\":%s",
                 cases[i].cards);
        parse_one_msg(&p, members);
        expect_counts(&p, 1, 0, 0, 0, 0);
        assert_int_equal(p.b.msgs[0].type, MYNA_MSG_CONTACTS);
        assert_str_or_null(p.b.msgs[0].text, cases[i].text, cases[i].cards);
        parsed_release(&p);
    }
}

static void test_reaction(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID,
        .wamid = "wamid.HBgLNzkwMzc2NTQzMjEVAgASGCA5RjRGNUU2RDdDOEI5QUEwQjFDMkQzRTRGNTA2MTcyOAA=",
        .contact = MARINA, .profile_name = "Марина К.", .ts = 1773479520,
        .type = MYNA_MSG_REACTION,
        .reply_id = "wamid.HBgLNzkwMzc2NTQzMjEVAgARGBI1RTRENUU2RjcwODE5MkEzQjQA",
        .text = "\xf0\x9f\x91\x8d",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-reaction.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_sticker(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTg4REQwREVFMEVGRjBGQUExMAA=",
        .contact = ALEX, .profile_name = "Алексей", .ts = 1773479580,
        .type = MYNA_MSG_STICKER, .media_id = "1299887766554433", .mime_type = "image/webp",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-sticker.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_unsupported(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID,
        .wamid = "wamid.HBgLNzkwMzc2NTQzMjEVAgASGCA5RjVBNkI3QzhEOUVBRkIwQzFEMkUzRjQwNTE2MjczOAA=",
        .contact = MARINA, .profile_name = "Марина К.", .ts = 1773479640,
        .type = MYNA_MSG_UNSUPPORTED, .text = "poll_creation", .error_code = 131051,
    };

    (void)state;
    parse_file(&p, "cloud/cloud-unsupported.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_reply_context(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTk5RUUxMUZGMTJBQTEzQkIxNAA=",
        .contact = ALEX, .profile_name = "Алексей", .ts = 1773479700, .type = MYNA_MSG_TEXT,
        .text = "А можно на полчаса позже?",
        .context_id = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTNDNEQ1RTZGNzA4MTkyQTMA",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-reply-context.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_referral_ad(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkyNjU1NTAxMjMVAgASGBQzQUFCMUMyRDNFNEY1MDYxNzI4MwA=",
        .contact = IGOR, .profile_name = "Igor P.", .ts = 1773479760, .type = MYNA_MSG_TEXT,
        .text = "Хочу узнать про скидку", .referral_id = "120229384756102938",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-referral-ad.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_status_sent(void **state)
{
    struct parsed p;
    static const struct want_status w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTZGNzA4MTkyQTNCNEM1RDYA",
        .status = MYNA_STATUS_SENT, .status_name = "sent", .recipient = ALEX,
        .ts = 1773479800,
    };

    (void)state;
    parse_file(&p, "cloud/cloud-status-sent.json");
    expect_counts(&p, 0, 1, 0, 0, 0);
    expect_status(&p.b.statuses[0], &w);
    parsed_release(&p);
}

static void test_status_delivered_read(void **state)
{
    struct parsed p;
    static const struct want_status w[2] = {
        { .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTZGNzA4MTkyQTNCNEM1RDYA",
          .status = MYNA_STATUS_DELIVERED, .status_name = "delivered", .recipient = ALEX,
          .ts = 1773479802 },
        { .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTZGNzA4MTkyQTNCNEM1RDYA",
          .status = MYNA_STATUS_READ, .status_name = "read", .recipient = ALEX,
          .ts = 1773479830 },
    };

    (void)state;
    parse_file(&p, "cloud/cloud-status-delivered-read.json");
    expect_counts(&p, 0, 2, 0, 0, 0);
    expect_status(&p.b.statuses[0], &w[0]);
    expect_status(&p.b.statuses[1], &w[1]);
    parsed_release(&p);
}

static void test_status_failed_131047(void **state)
{
    struct parsed p;
    static const struct want_status w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTVFNkY3MDgxOTJBM0I0QzUA",
        .status = MYNA_STATUS_FAILED, .status_name = "failed", .recipient = ALEX,
        .ts = 1773479900, .error_code = 131047, .error_title = "Re-engagement message",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-status-failed-131047.json");
    expect_counts(&p, 0, 1, 0, 0, 0);
    expect_status(&p.b.statuses[0], &w);
    parsed_release(&p);
}

static void test_system_without_contacts(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUJDMkQzRTRGNTA2MTcyODM5NAA=",
        .contact = ALEX, .ts = 1773480000, .type = MYNA_MSG_SYSTEM,
        .reply_id = "79169876543", .text = "User Алексей changed from 79161234567 to 79169876543",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-system.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_order(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID,
        .wamid = "wamid.HBgLNzkwMzc2NTQzMjEVAgASGCA5RjZCN0M4RDlFQUZCMEMxRDJFM0Y0MDUxNjI3Mzg0OQA=",
        .contact = MARINA, .profile_name = "Марина К.", .ts = 1773480060,
        .type = MYNA_MSG_ORDER, .reply_id = "918273645501234",
        .text = "Запишите, пожалуйста, на субботу",
    };

    (void)state;
    parse_file(&p, "cloud/cloud-order.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    /* the decimal item_price survives in raw, for whoever reads the cart */
    assert_non_null(strstr(p.b.msgs[0].raw, "\"item_price\":749.5"));
    parsed_release(&p);
}

/* ---- extra payloads: tests/data/cloud/extra/ */

static void test_legacy_unknown(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.extra.unknown.1", .contact = ALEX,
        .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_UNSUPPORTED,
        .text = "unknown", .error_code = 131051,
    };

    (void)state;
    parse_file(&p, "cloud/extra/legacy-unknown.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_system_legacy_shapes(void **state)
{
    struct parsed p;
    static const struct want_msg changed = {
        .pnid = PNID, .wamid = "wamid.extra.system.legacy", .contact = ALEX, .ts = 1773481000,
        .type = MYNA_MSG_SYSTEM, .reply_id = "79169876543",
        .text = "Алексей changed from 79161234567 to 79169876543",
    };
    static const struct want_msg identity = {
        .pnid = PNID, .wamid = "wamid.extra.system.identity", .contact = ALEX,
        .ts = 1773481000, .type = MYNA_MSG_SYSTEM, .text = "Алексей's security code changed",
    };

    (void)state;
    parse_file(&p, "cloud/extra/system-customer-changed-number.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &changed);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/system-identity-changed.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &identity);
    parsed_release(&p);
}

static void test_interactive_nfm_and_unknown(void **state)
{
    struct parsed p;
    static const struct want_msg flow = {
        .pnid = PNID, .wamid = "wamid.extra.nfm.1", .contact = ALEX, .profile_name = "Алексей",
        .ts = 1773481000, .type = MYNA_MSG_FLOW_REPLY, .reply_id = "flow",
        .text = "{\"flow_token\":\"booking-8842\",\"service\":\"beard\",\"slot\":\"2026-03-14T11:00\"}",
        .context_id = "wamid.extra.flow.sent",
    };
    static const struct want_msg other = {
        .pnid = PNID, .wamid = "wamid.extra.interactive.payment", .contact = ALEX,
        .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_UNSUPPORTED,
        .text = "interactive",
    };

    (void)state;
    parse_file(&p, "cloud/extra/interactive-nfm-reply.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &flow);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/interactive-unknown-subtype.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &other);
    parsed_release(&p);
}

static void test_media_kinds(void **state)
{
    static const struct {
        const char *file;
        struct want_msg w;
    } cases[] = {
        { "cloud/extra/document-filename-no-caption.json",
          { .pnid = PNID, .wamid = "wamid.extra.document.1", .contact = ALEX,
            .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_DOCUMENT,
            .text = "прайс-2026.pdf", .media_id = "2233445566778899",
            .mime_type = "application/pdf" } },
        { "cloud/extra/document-caption.json",
          { .pnid = PNID, .wamid = "wamid.extra.document.2", .contact = ALEX,
            .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_DOCUMENT,
            .text = "Вот прайс", .media_id = "2233445566778800",
            .mime_type = "application/pdf" } },
        { "cloud/extra/video.json",
          { .pnid = PNID, .wamid = "wamid.extra.video.1", .contact = MARINA,
            .profile_name = "Марина К.", .ts = 1773481000, .type = MYNA_MSG_VIDEO,
            .text = "Как подстричь так?", .media_id = "3344556677889900",
            .mime_type = "video/mp4" } },
        { "cloud/extra/audio-file.json",
          { .pnid = PNID, .wamid = "wamid.extra.audio.file", .contact = ALEX,
            .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_AUDIO,
            .media_id = "4455667788990011", .mime_type = "audio/mpeg" } },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p;

        parse_file(&p, cases[i].file);
        expect_counts(&p, 1, 0, 0, 0, 0);
        expect_msg(&p.b.msgs[0], &cases[i].w);
        parsed_release(&p);
    }
}

static void test_reaction_removed(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.extra.reaction.removed", .contact = MARINA,
        .profile_name = "Марина К.", .ts = 1773481000, .type = MYNA_MSG_REACTION,
        .reply_id = "wamid.HBgLNzkwMzc2NTQzMjEVAgARGBI1RTRENUU2RjcwODE5MkEzQjQA",
    };

    (void)state;
    parse_file(&p, "cloud/extra/reaction-removed.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
}

static void test_location_variants(void **state)
{
    struct parsed p;
    static const struct want_msg named = {
        .pnid = PNID, .wamid = "wamid.extra.location.named", .contact = ALEX,
        .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_LOCATION,
        .text = "Барбершоп «Борода», Тверская ул., 1, Москва",
    };
    static const struct want_msg off = {
        .pnid = PNID, .wamid = "wamid.extra.location.bad", .contact = ALEX,
        .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_LOCATION,
    };

    (void)state;
    parse_file(&p, "cloud/extra/location-named.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &named);
    assert_int_equal(p.b.msgs[0].has_location, 1);
    assert_true(p.b.msgs[0].latitude == 55.7558);
    assert_true(p.b.msgs[0].longitude == -37.6173);
    parsed_release(&p);
    /* latitude 91.5 is not on Earth: the message stays, the pin does not */
    parse_file(&p, "cloud/extra/location-off-globe.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &off);
    assert_int_equal(p.b.msgs[0].has_location, 0);
    parsed_release(&p);
}

static void test_multi_entry_multi_change(void **state)
{
    struct parsed p;
    static const struct want_msg m[3] = {
        { .pnid = PNID, .wamid = "wamid.extra.multi.1", .contact = ALEX,
          .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_TEXT, .text = "первый" },
        { .pnid = PNID, .wamid = "wamid.extra.multi.2", .contact = MARINA,
          .profile_name = "Марина К.", .ts = 1773481000, .type = MYNA_MSG_TEXT, .text = "второй" },
        { .pnid = PNID2, .wamid = "wamid.extra.multi.3", .contact = IGOR,
          .profile_name = "Igor P.", .ts = 1773481000, .type = MYNA_MSG_TEXT, .text = "третий" },
    };
    static const struct want_status s[2] = {
        { .pnid = PNID, .wamid = "wamid.extra.out.1", .status = MYNA_STATUS_DELIVERED,
          .status_name = "delivered", .recipient = ALEX, .ts = 1773481001 },
        { .pnid = PNID2, .wamid = "wamid.extra.out.2", .status = MYNA_STATUS_READ,
          .status_name = "read", .recipient = IGOR, .ts = 1773481002 },
    };
    int i;

    (void)state;
    parse_file(&p, "cloud/extra/multi-entry-multi-change.json");
    expect_counts(&p, 3, 2, 1, 0, 0);
    for (i = 0; i < 3; i++)
        expect_msg(&p.b.msgs[i], &m[i]);
    for (i = 0; i < 2; i++)
        expect_status(&p.b.statuses[i], &s[i]);
    /* records of one value share one copy of the receiving number */
    assert_ptr_equal(p.b.msgs[1].phone_number_id, p.b.statuses[0].phone_number_id);
    parsed_release(&p);
}

static void test_ignored_and_errors(void **state)
{
    struct parsed p;

    (void)state;
    parse_file(&p, "cloud/extra/account-update-only.json");
    expect_counts(&p, 0, 0, 2, 0, 0);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/value-errors.json");
    expect_counts(&p, 0, 0, 0, 2, 0);
    assert_int_equal(p.b.error_code, 131000);
    parsed_release(&p);
}

static void test_status_variants(void **state)
{
    struct parsed p;
    static const struct want_status played = {
        .pnid = PNID, .wamid = "wamid.extra.voice.out", .status = MYNA_STATUS_PLAYED,
        .status_name = "played", .recipient = ALEX, .ts = 1773481100,
    };
    static const struct want_status unknown = {
        .pnid = PNID, .wamid = "wamid.extra.out.3", .status = MYNA_STATUS_UNKNOWN,
        .status_name = "warning", .recipient = ALEX, .ts = 1773481200,
    };
    static const struct want_status failed = {
        .pnid = PNID, .wamid = "wamid.extra.out.4", .status = MYNA_STATUS_FAILED,
        .status_name = "failed", .recipient = ALEX, .ts = 1773481300, .error_code = 131026,
        .error_title = "Message undeliverable",
    };

    (void)state;
    parse_file(&p, "cloud/extra/status-played.json");
    expect_counts(&p, 0, 1, 0, 0, 0);
    expect_status(&p.b.statuses[0], &played);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/status-unknown-name.json");
    expect_counts(&p, 0, 1, 0, 0, 0);
    expect_status(&p.b.statuses[0], &unknown);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/status-failed-message-only.json");
    expect_counts(&p, 0, 1, 0, 0, 0);
    expect_status(&p.b.statuses[0], &failed);
    parsed_release(&p);
}

static void test_unknown_and_missing_type(void **state)
{
    struct parsed p;
    static const struct want_msg welcome = {
        .pnid = PNID, .wamid = "wamid.extra.welcome", .contact = ALEX,
        .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_UNSUPPORTED,
        .text = "request_welcome",
    };
    static const struct want_msg edit = {
        .pnid = PNID, .wamid = "wamid.extra.edit", .contact = ALEX, .profile_name = "Алексей",
        .ts = 1773481000, .type = MYNA_MSG_UNSUPPORTED, .text = "edit",
    };
    static const struct want_msg notype = {
        .pnid = PNID, .wamid = "wamid.extra.notype", .contact = ALEX,
        .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_UNSUPPORTED,
    };

    (void)state;
    parse_file(&p, "cloud/extra/unknown-type.json");
    expect_counts(&p, 2, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &welcome);
    expect_msg(&p.b.msgs[1], &edit);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/missing-type.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &notype);
    parsed_release(&p);
}

static void test_missing_from_uses_bsuid(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.extra.bsuid.1", .contact = "",
        .user_id = "US.13491208655302741918", .profile_name = "Sam", .ts = 1773481400,
        .type = MYNA_MSG_TEXT, .text = "Hi, username here",
    };
    static const struct want_msg both[2] = {
        { .pnid = PNID, .wamid = "wamid.extra.bsuid.2", .contact = ALEX,
          .user_id = "RU.11112222333344445555", .profile_name = "Алексей", .ts = 1773481401,
          .type = MYNA_MSG_TEXT, .text = "с номером" },
        /* no from_user_id on the message: the matched contact's user_id */
        { .pnid = PNID, .wamid = "wamid.extra.bsuid.3", .contact = MARINA,
          .user_id = "RU.66667777888899990000", .profile_name = "Марина К.",
          .ts = 1773481402, .type = MYNA_MSG_TEXT, .text = "без from_user_id" },
    };

    (void)state;
    parse_file(&p, "cloud/extra/missing-from-bsuid.json");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &w);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/bsuid-with-from.json");
    expect_counts(&p, 2, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &both[0]);
    expect_msg(&p.b.msgs[1], &both[1]);
    parsed_release(&p);
}

static void test_contacts_matched_not_by_index(void **state)
{
    struct parsed p;
    static const struct want_msg w[3] = {
        /* the first of two contacts with one wa_id wins */
        { .pnid = PNID, .wamid = "wamid.extra.order.1", .contact = MARINA,
          .profile_name = "Марина (первая)", .ts = 1773481000, .type = MYNA_MSG_TEXT,
          .text = "от Марины" },
        { .pnid = PNID, .wamid = "wamid.extra.order.2", .contact = "79000000000",
          .ts = 1773481000, .type = MYNA_MSG_TEXT, .text = "от незнакомца" },
        { .pnid = PNID, .wamid = "wamid.extra.order.3", .contact = ALEX,
          .profile_name = "Алексей", .ts = 1773481000, .type = MYNA_MSG_TEXT,
          .text = "от Алексея" },
    };
    int i;

    (void)state;
    parse_file(&p, "cloud/extra/contacts-not-by-index.json");
    expect_counts(&p, 3, 0, 0, 0, 0);
    for (i = 0; i < 3; i++)
        expect_msg(&p.b.msgs[i], &w[i]);
    parsed_release(&p);
}

/* Meta warns that from and wa_id "may not always match": a '+' before
 * from still finds its contact, and so does a Brazilian number that Meta
 * gives the ninth digit the wa_id lacks; the key is then the wa_id, the
 * form to send to. With no contact of from's number, nothing is guessed. */
static void test_from_not_wa_id(void **state)
{
    struct parsed p;
    static const struct want_msg w[3] = {
        { .pnid = PNID, .wamid = "wamid.extra.from.1", .contact = "16505551234",
          .profile_name = "Sam", .ts = 1773482000, .type = MYNA_MSG_TEXT,
          .text = "with a plus" },
        { .pnid = PNID, .wamid = "wamid.extra.from.2", .contact = "79160000000",
          .ts = 1773482001, .type = MYNA_MSG_TEXT, .text = "two contacts, neither" },
        { .pnid = PNID, .wamid = "wamid.extra.from.3", .contact = "551187654321",
          .profile_name = "Ana", .ts = 1773482002, .type = MYNA_MSG_TEXT,
          .text = "rewritten number" },
    };

    (void)state;
    parse_file(&p, "cloud/extra/from-not-wa-id.json");
    expect_counts(&p, 3, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++)
        expect_msg(&p.b.msgs[i], &w[i]);
    parsed_release(&p);
}

/* A from matches a contact by its number only, in either form Meta
 * rewrites Brazilian (ninth digit) and Mexican (1 after 52) mobiles to. A
 * value's only contact is not every sender's: the stranger beside Sam in
 * one value, and a lone one, kept the contact's name and were keyed by
 * Sam's wa_id, a reply to Sam. */
static void test_from_rewritten(void **state)
{
    struct parsed p;
    static const struct want_msg w[8] = {
        { .pnid = PNID, .wamid = "wamid.extra.rw.1", .contact = "16505551234",
          .profile_name = "Sam", .ts = 1773483000, .type = MYNA_MSG_TEXT, .text = "Sam" },
        { .pnid = PNID, .wamid = "wamid.extra.rw.2", .contact = "79160000000",
          .ts = 1773483001, .type = MYNA_MSG_TEXT, .text = "not Sam" },
        { .pnid = PNID, .wamid = "wamid.extra.rw.3", .contact = "16505550000",
          .ts = 1773483002, .type = MYNA_MSG_TEXT, .text = "one contact, not mine" },
        { .pnid = PNID, .wamid = "wamid.extra.rw.4", .contact = "551187654321",
          .profile_name = "Ana", .ts = 1773483003, .type = MYNA_MSG_TEXT,
          .text = "Brazil, ninth digit added" },
        { .pnid = PNID, .wamid = "wamid.extra.rw.5", .contact = "5521998765432",
          .profile_name = "Bia", .ts = 1773483004, .type = MYNA_MSG_TEXT,
          .text = "Brazil, ninth digit dropped" },
        { .pnid = PNID, .wamid = "wamid.extra.rw.6", .contact = "5215512345678",
          .profile_name = "Luis", .ts = 1773483005, .type = MYNA_MSG_TEXT,
          .text = "Mexico, 1 dropped" },
        { .pnid = PNID, .wamid = "wamid.extra.rw.7", .contact = "523312345678",
          .profile_name = "Eva", .ts = 1773483006, .type = MYNA_MSG_TEXT,
          .text = "Mexico, 1 added" },
        { .pnid = PNID, .wamid = "wamid.extra.rw.8", .contact = "5511887654321",
          .ts = 1773483007, .type = MYNA_MSG_TEXT, .text = "Brazil, another digit" },
    };

    (void)state;
    parse_file(&p, "cloud/extra/from-rewritten.json");
    expect_counts(&p, 8, 0, 0, 0, 0);
    for (int i = 0; i < 8; i++)
        expect_msg(&p.b.msgs[i], &w[i]);
    parsed_release(&p);
}

/* The rewrite rules themselves: only those two countries, those lengths,
 * a real area code, and digits. */
static void test_rewritten_forms(void **state)
{
    static const struct {
        const char *from, *wa_id;
        int match;
    } cases[] = {
        { "5511987654321", "551187654321", 1 },  { "551187654321", "5511987654321", 1 },
        { "5215512345678", "525512345678", 1 },  { "525512345678", "5215512345678", 1 },
        { "+5511987654321", "551187654321", 1 }, { "5511887654321", "551187654321", 0 },
        { "5501987654321", "550187654321", 0 },  { "550187654321", "5501987654321", 0 },
        { "5510987654321", "551087654321", 0 },  { "5211512345678", "521512345678", 0 },
        { "521512345678", "5211512345678", 0 },  { "5201512345678", "52201512345678", 0 },
        { "55119876543210", "5511876543210", 0 }, { "5511a87654321", "5511a7654321", 0 },
        { "791612345678", "7916912345678", 0 },
    };
    char body[1024];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p;
        const char *want = cases[i].match ? cases[i].wa_id
                                          : cases[i].from + (cases[i].from[0] == '+');

        snprintf(body, sizeof(body),
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
                 "\"field\":\"messages\",\"value\":{\"contacts\":[{\"profile\":{\"name\":"
                 "\"N\"},\"wa_id\":\"%s\"}],\"messages\":[{\"id\":\"w\",\"from\":\"%s\","
                 "\"type\":\"text\",\"text\":{\"body\":\"x\"}}]}}]}]}",
                 cases[i].wa_id, cases[i].from);
        parse_mem(&p, body, strlen(body));
        expect_counts(&p, 1, 0, 0, 0, 0);
        if (strcmp(p.b.msgs[0].contact, want) != 0
            || (p.b.msgs[0].profile_name != NULL) != cases[i].match)
            fail_msg("from '%s', wa_id '%s': contact '%s', profile %s", cases[i].from,
                     cases[i].wa_id, p.b.msgs[0].contact,
                     p.b.msgs[0].profile_name ? p.b.msgs[0].profile_name : "(none)");
        parsed_release(&p);
    }
}

/* A from with a '+' that finds no contact (a system message has none) is
 * keyed by its digits, as the sender's other messages are by their wa_id:
 * "+79161234567" was a second conversation with the same customer. */
static void test_from_plus_without_contact(void **state)
{
    struct parsed p;
    static const struct want_msg sys = {
        .pnid = PNID, .wamid = "wamid.plus.1", .contact = ALEX, .ts = 1773480000,
        .type = MYNA_MSG_SYSTEM, .text = "changed", .reply_id = "79169876543",
    };
    static const struct want_msg bare = {
        .pnid = PNID, .wamid = "wamid.plus.2", .contact = "", .type = MYNA_MSG_TEXT,
        .text = "a",
    };

    (void)state;
    parse_one_msg(&p, "\"from\":\"+" ALEX "\",\"id\":\"wamid.plus.1\",\"timestamp\":\"1773480000\","
                      "\"type\":\"system\",\"system\":{\"body\":\"changed\","
                      "\"wa_id\":\"79169876543\",\"type\":\"user_changed_number\"}");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &sys);
    parsed_release(&p);
    /* a lone '+' holds no number: withheld */
    parse_one_msg(&p, "\"from\":\"+\",\"id\":\"wamid.plus.2\",\"type\":\"text\","
                      "\"text\":{\"body\":\"a\"}");
    expect_counts(&p, 1, 0, 0, 0, 0);
    expect_msg(&p.b.msgs[0], &bare);
    parsed_release(&p);
}

static void test_numbers_as_strings(void **state)
{
    struct parsed p;
    static const struct want_msg w[3] = {
        { .pnid = PNID, .wamid = "wamid.extra.num.1", .contact = ALEX, .profile_name = "Алексей",
          .ts = 1773481500, .type = MYNA_MSG_LOCATION },
        { .pnid = PNID, .wamid = "wamid.extra.num.2", .contact = ALEX, .profile_name = "Алексей",
          .ts = 1773481501, .type = MYNA_MSG_UNSUPPORTED, .text = "poll_creation",
          .error_code = 131051 },
        { .pnid = PNID, .wamid = "wamid.extra.num.3", .contact = ALEX, .profile_name = "Алексей",
          .ts = 1773481502, .type = MYNA_MSG_TEXT, .text = "float ts" },
    };
    int i;

    (void)state;
    parse_file(&p, "cloud/extra/numbers-as-strings.json");
    expect_counts(&p, 3, 0, 0, 0, 0);
    for (i = 0; i < 3; i++)
        expect_msg(&p.b.msgs[i], &w[i]);
    assert_int_equal(p.b.msgs[0].has_location, 1);
    assert_true(p.b.msgs[0].latitude == 55.7602196);
    assert_true(p.b.msgs[0].longitude == 37.6186981);
    parsed_release(&p);
}

/* ids and texts must be JSON strings: a number there reads as absent. */
static void test_strings_as_numbers(void **state)
{
    struct parsed p;
    static const struct want_msg w[2] = {
        { .pnid = PNID, .wamid = "wamid.extra.str.1", .contact = "", .ts = 1773481600,
          .type = MYNA_MSG_TEXT },
        { .pnid = PNID, .wamid = "wamid.extra.str.3", .contact = ALEX, .profile_name = "Алексей",
          .type = MYNA_MSG_UNSUPPORTED },
    };

    (void)state;
    parse_file(&p, "cloud/extra/strings-as-numbers.json");
    expect_counts(&p, 2, 0, 0, 0, 1);   /* "id": 12345 cannot key a message */
    expect_msg(&p.b.msgs[0], &w[0]);
    expect_msg(&p.b.msgs[1], &w[1]);
    parsed_release(&p);
}

static void test_wrong_types_everywhere(void **state)
{
    struct parsed p;
    static const struct want_msg w[8] = {
        { .wamid = "wamid.wrong.1", .contact = ALEX, .type = MYNA_MSG_TEXT },
        { .wamid = "wamid.wrong.2", .contact = ALEX, .type = MYNA_MSG_IMAGE },
        { .wamid = "wamid.wrong.3", .contact = ALEX, .type = MYNA_MSG_UNSUPPORTED,
          .text = "interactive" },
        { .wamid = "wamid.wrong.4", .contact = ALEX, .type = MYNA_MSG_BUTTON_REPLY },
        { .wamid = "wamid.wrong.5", .contact = ALEX, .type = MYNA_MSG_LOCATION },
        { .wamid = "wamid.wrong.6", .contact = ALEX, .type = MYNA_MSG_CONTACTS },
        { .wamid = "wamid.wrong.7", .contact = ALEX, .type = MYNA_MSG_AUDIO, .media_id = "1" },
        { .wamid = "wamid.wrong.8", .contact = ALEX, .type = MYNA_MSG_UNSUPPORTED,
          .text = "unsupported" },
    };
    static const struct want_status s = {
        .wamid = "wamid.s.2", .status = MYNA_STATUS_FAILED, .status_name = "failed",
        .error_title = "fallback",
    };
    int i;

    (void)state;
    parse_file(&p, "cloud/extra/wrong-types-everywhere.json");
    /* 5 changes without field "messages"; invalid: messages {} and statuses
     * "x" (2), 7 messages and 4 statuses that cannot be keyed */
    expect_counts(&p, 8, 1, 5, 0, 13);
    for (i = 0; i < 8; i++)
        expect_msg(&p.b.msgs[i], &w[i]);
    assert_int_equal(p.b.msgs[4].has_location, 0);
    expect_status(&p.b.statuses[0], &s);
    parsed_release(&p);
}

static void test_empty_and_invalid_items(void **state)
{
    struct parsed p;
    static const struct want_msg w = {
        .pnid = PNID, .wamid = "wamid.extra.valid", .contact = ALEX, .profile_name = "Алексей",
        .ts = 1773481000, .type = MYNA_MSG_TEXT, .text = "ok",
    };
    static const struct want_status s = {
        .pnid = PNID, .wamid = "wamid.extra.out.6", .status = MYNA_STATUS_SENT,
        .status_name = "sent",
    };

    (void)state;
    parse_file(&p, "cloud/extra/empty-arrays.json");
    expect_counts(&p, 0, 0, 0, 0, 0);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/empty-entry.json");
    expect_counts(&p, 0, 0, 0, 0, 0);
    parsed_release(&p);
    parse_file(&p, "cloud/extra/invalid-items.json");
    expect_counts(&p, 1, 1, 0, 0, 5);
    expect_msg(&p.b.msgs[0], &w);
    expect_status(&p.b.statuses[0], &s);
    parsed_release(&p);
}

static void test_wrong_envelope(void **state)
{
    (void)state;
    expect_fail_file("cloud/extra/top-level-array.json", MYNA_ESHAPE,
                     "webhook body is an array, not a JSON object");
    expect_fail_file("cloud/extra/object-page.json", MYNA_ESHAPE,
                     "\"object\" is 'page', expected 'whatsapp_business_account'");
    expect_fail_file("cloud/extra/object-number.json", MYNA_ESHAPE,
                     "\"object\" is a number");
    expect_fail_file("cloud/extra/object-missing.json", MYNA_ESHAPE, "missing \"object\" field");
    expect_fail_file("cloud/extra/entry-object.json", MYNA_ESHAPE,
                     "\"entry\" is an object, expected an array");
    expect_fail_file("cloud/extra/entry-missing.json", MYNA_ESHAPE, "missing \"entry\" array");
    expect_fail_str("\"whatsapp_business_account\"", MYNA_ESHAPE, "webhook body is a string");
    expect_fail_str("null", MYNA_ESHAPE, "webhook body is null");
    expect_fail_str("42", MYNA_ESHAPE, "webhook body is a number");
    expect_fail_str("{}", MYNA_ESHAPE, "missing \"object\"");
    expect_fail_str("{\"object\":true,\"entry\":[]}", MYNA_ESHAPE,
                    "\"object\" is a boolean, expected");
    /* keys are case-sensitive, as Meta sends them */
    expect_fail_str("{\"Object\":\"whatsapp_business_account\",\"entry\":[]}", MYNA_ESHAPE,
                    "missing \"object\"");
    /* a hostile value is quoted printable and short in the message */
    expect_fail_str("{\"object\":\"line\\nbreak'quote\\u0007xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                    "xxxxxxxxxxxxxxx\",\"entry\":[]}",
                    MYNA_ESHAPE, "'line?break?quote?xxxxxxxxxxxxxxxxxxxxxxx...'");
}

static void test_not_json(void **state)
{
    static const char *bad[] = {
        "hello", "{", "{\"object\":", "[1,2", "{\"a\" 1}", "nul", "\"unterminated",
        /* (a lone surrogate is JSON: test_lone_surrogate_reads_as_replacement) */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_fail_str(bad[i], MYNA_EPARSE, "not valid JSON");
    expect_fail("", 0, MYNA_EPARSE, "empty webhook body");
    expect_fail_str("   ", MYNA_EPARSE, "not valid JSON");
}

/* Two wamids that differ only after a \u0000 stay two messages; a NUL
 * byte, which no JSON text holds, is refused. */
static void test_nul_cuts_nothing(void **state)
{
    static const char two[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
        "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"" PNID "\"},\"messages\":["
        "{\"from\":\"79161234567\",\"id\":\"wamid.A\\u0000B\",\"type\":\"text\"},"
        "{\"from\":\"79161234567\",\"id\":\"wamid.A\\u0000C\",\"type\":\"text\"}]}}]}]}";
    static const char raw_nul[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"a\0b\"}]}";
    struct parsed p;

    (void)state;
    parse_str(&p, two);
    expect_counts(&p, 2, 0, 0, 0, 0);
    assert_string_equal(p.b.msgs[0].wamid, "wamid.A\xef\xbf\xbd" "B");
    assert_string_equal(p.b.msgs[1].wamid, "wamid.A\xef\xbf\xbd" "C");
    parsed_release(&p);
    expect_fail(raw_nul, sizeof(raw_nul) - 1, MYNA_EPARSE, "NUL byte at byte 55");
}

/* Half a surrogate pair with no other half is valid JSON (RFC 8259 8.2)
 * that encodes no character; cJSON refuses the whole text for it, so one
 * such string would get every record of the body a 400 for 7 days. It
 * reads as U+FFFD, as \u0000 does; a whole pair is still one character. */
static void test_lone_surrogate_reads_as_replacement(void **state)
{
    static const char body[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
        "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"" PNID "\"},\"messages\":["
        "{\"from\":\"79161234567\",\"id\":\"wamid.L1\",\"type\":\"text\","
        "\"text\":{\"body\":\"a\\ud83d b\\udc88 c\\ud83d\\u0041 d\\ud83d\\udc88\\uD83D\"}},"
        "{\"from\":\"79161234567\",\"id\":\"wamid.L2\",\"type\":\"text\","
        "\"text\":{\"body\":\"\\\\ud83d \\\"\\ud83d\\\"\"}}]}}]}]}";
    struct parsed p;

    (void)state;
    parse_str(&p, body);
    expect_counts(&p, 2, 0, 0, 0, 0);
    assert_string_equal(p.b.msgs[0].text, "a\xef\xbf\xbd b\xef\xbf\xbd c\xef\xbf\xbd" "A d"
                                          "\xf0\x9f\x92\x88\xef\xbf\xbd");
    /* an escaped backslash before "ud83d" is no escape */
    assert_string_equal(p.b.msgs[1].text, "\\ud83d \"\xef\xbf\xbd\"");
    parsed_release(&p);
}

/* A \u escape that is not four hex digits is not JSON; cJSON 1.7.15 reads
 * it as a NUL and ends the string there, so "wamid.A\uzzzzB" and
 * "wamid.A\uzzzzC" would both read as "wamid.A": the second taken for a
 * duplicate of the first, answered 200 and never stored. */
static void test_malformed_u_escape(void **state)
{
    static const char two[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
        "\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"" PNID "\"},\"messages\":["
        "{\"from\":\"79161234567\",\"id\":\"wamid.A\\uzzzzB\",\"type\":\"text\"},"
        "{\"from\":\"79161234567\",\"id\":\"wamid.A\\uzzzzC\",\"type\":\"text\"}]}}]}]}";

    (void)state;
    expect_fail_str(two, MYNA_EPARSE, "\\u escape");
    expect_fail_str("{\"object\":\"whatsapp_business_account\",\"entry\":[],"
                    "\"x\":\"a\\u00g1b\"}", MYNA_EPARSE, "\\u escape");
}

static void test_trailing_bytes(void **state)
{
    static const char ok[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[]} \r\n\t";
    static const char nul[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}\0";
    struct parsed p;

    (void)state;
    parse_str(&p, ok);
    expect_counts(&p, 0, 0, 0, 0, 0);
    parsed_release(&p);
    expect_fail_str("{\"object\":\"whatsapp_business_account\",\"entry\":[]} x", MYNA_EPARSE,
                    "bytes after the JSON value at byte 50");
    expect_fail_str("{\"object\":\"whatsapp_business_account\",\"entry\":[]}}", MYNA_EPARSE,
                    "bytes after the JSON value");
    expect_fail_str("{\"object\":\"whatsapp_business_account\",\"entry\":[]}{}", MYNA_EPARSE,
                    "bytes after the JSON value");
    expect_fail(nul, sizeof(nul) - 1, MYNA_EPARSE, "NUL byte at byte 49");
}

static void test_invalid_utf8(void **state)
{
    static const char *bad[] = {
        "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
        "\xf0\x9f\x92", "\x80", "\xf5\x80\x80\x80",
    };
    char body[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[],\"x\":\"%s\"}", bad[i]);
        expect_fail_str(body, MYNA_EPARSE, "not valid UTF-8 at byte 54");
    }
    /* the longest valid sequences are fine */
    snprintf(body, sizeof(body),
             "{\"object\":\"whatsapp_business_account\",\"entry\":[],\"x\":\"%s\"}",
             "\xf4\x8f\xbf\xbf\xef\xbf\xbf\xdf\xbf\x7f");
    {
        struct parsed p;

        parse_str(&p, body);
        expect_counts(&p, 0, 0, 0, 0, 0);
        parsed_release(&p);
    }
}

/* Every proper prefix of a real body is malformed, never a crash. */
static void test_every_truncation(void **state)
{
    size_t len, n;
    char *body = read_data("cloud/cloud-three-messages-one-post.json", &len);

    (void)state;
    for (n = 0; n < len; n++) {
        struct parsed p;

        /* the pretty-printed file ends in "}\n": only the newline may go */
        parse_mem(&p, body, n);
        if (n == len - 1) {
            expect_counts(&p, 3, 0, 0, 0, 0);
        } else if (p.rc != MYNA_EPARSE) {
            fail_msg("prefix of %zu bytes: rc %d", n, p.rc);
        }
        parsed_release(&p);
    }
    free(body);
}

static void test_timestamps(void **state)
{
    static const struct {
        const char *json;
        int64_t ts;
    } cases[] = {
        { "\"1773478800\"", 1773478800 }, { "1773478800", 1773478800 },
        { "1773478800.9", 1773478800 },   { "\"0\"", 0 },
        { "\"9223372036854775807\"", INT64_MAX },
        { "\"9223372036854775808\"", 0 }, { "\"99999999999999999999999\"", 0 },
        { "\"-5\"", 0 },                  { "-5", 0 },
        { "\" 17\"", 0 },                 { "\"17 \"", 0 },
        { "\"\"", 0 },                    { "\"0x10\"", 0 },
        { "1e300", 0 },                   { "9.3e18", 0 },
        { "9223372036854775807", 0 },     { "9223372036854774784", 9223372036854774784 },
        { "true", 0 },                    { "null", 0 },
        { "[1773478800]", 0 },            { "{\"s\":1}", 0 },
    };
    char members[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p;

        snprintf(members, sizeof(members),
                 "\"id\":\"wamid.ts\",\"from\":\"1\",\"type\":\"text\",\"timestamp\":%s",
                 cases[i].json);
        parse_one_msg(&p, members);
        expect_counts(&p, 1, 0, 0, 0, 0);
        if (p.b.msgs[0].ts != cases[i].ts)
            fail_msg("timestamp %s: got %lld", cases[i].json, (long long)p.b.msgs[0].ts);
        parsed_release(&p);
    }
}

static void test_error_codes_and_coordinates(void **state)
{
    static const struct {
        const char *members;
        int code, has_location;
    } cases[] = {
        { "\"type\":\"unknown\",\"errors\":[{\"code\":2147483646}]", 2147483646, 0 },
        /* INT32_MAX itself is a code, as a number and as a string */
        { "\"type\":\"unknown\",\"errors\":[{\"code\":2147483647}]", 2147483647, 0 },
        { "\"type\":\"unknown\",\"errors\":[{\"code\":\"2147483647\"}]", 2147483647, 0 },
        { "\"type\":\"unknown\",\"errors\":[{\"code\":2147483647.5}]", 2147483647, 0 },
        { "\"type\":\"unknown\",\"errors\":[{\"code\":\"2147483648\"}]", 0, 0 },
        { "\"type\":\"unknown\",\"errors\":[{\"code\":2147483648}]", 0, 0 },
        { "\"type\":\"unknown\",\"errors\":[{\"code\":-1}]", 0, 0 },
        { "\"type\":\"unknown\",\"errors\":[{\"code\":\"131051x\"}]", 0, 0 },
        { "\"type\":\"unknown\",\"errors\":[]", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":\"inf\",\"longitude\":1}", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":\"nan\",\"longitude\":1}", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":\"0x1p3\",\"longitude\":1}", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":\" 1\",\"longitude\":1}", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":\"1.5.5\",\"longitude\":1}", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":1e400,\"longitude\":1}", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":-90,\"longitude\":180}", 0, 1 },
        { "\"type\":\"location\",\"location\":{\"latitude\":0,\"longitude\":-180.5}", 0, 0 },
        { "\"type\":\"location\",\"location\":{\"latitude\":\"-33.9\",\"longitude\":\"18.4\"}",
          0, 1 },
    };
    char members[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p;

        snprintf(members, sizeof(members), "\"id\":\"wamid.x\",%s", cases[i].members);
        parse_one_msg(&p, members);
        expect_counts(&p, 1, 0, 0, 0, 0);
        if (p.b.msgs[0].error_code != cases[i].code
            || p.b.msgs[0].has_location != cases[i].has_location)
            fail_msg("%s: code %d has_location %d", cases[i].members, p.b.msgs[0].error_code,
                     p.b.msgs[0].has_location);
        parsed_release(&p);
    }
}

static void test_small_shapes(void **state)
{
    struct parsed p;

    (void)state;
    /* empty caption and empty emoji are absent; empty from is withheld */
    parse_one_msg(&p, "\"id\":\"w1\",\"from\":\"\",\"type\":\"image\","
                      "\"image\":{\"caption\":\"\",\"id\":\"\",\"mime_type\":\"image/png\"}");
    expect_counts(&p, 1, 0, 0, 0, 0);
    assert_string_equal(p.b.msgs[0].contact, "");
    assert_null(p.b.msgs[0].text);
    assert_null(p.b.msgs[0].media_id);
    assert_string_equal(p.b.msgs[0].mime_type, "image/png");
    parsed_release(&p);
    parse_one_msg(&p, "\"id\":\"w2\",\"type\":\"reaction\","
                      "\"reaction\":{\"message_id\":\"wamid.a\",\"emoji\":\"\"}");
    expect_counts(&p, 1, 0, 0, 0, 0);
    assert_null(p.b.msgs[0].text);
    assert_string_equal(p.b.msgs[0].reply_id, "wamid.a");
    parsed_release(&p);
    /* a duplicated key: cJSON keeps the first */
    parse_one_msg(&p, "\"id\":\"first\",\"id\":\"second\",\"type\":\"text\"");
    expect_counts(&p, 1, 0, 0, 0, 0);
    assert_string_equal(p.b.msgs[0].wamid, "first");
    parsed_release(&p);
    /* \u0000 would end the C string early: it reads as U+FFFD instead, and
     * nothing is cut (an escaped backslash before u0000 is no escape) */
    parse_one_msg(&p, "\"id\":\"wamid.a\\u0000b\",\"type\":\"text\","
                      "\"text\":{\"body\":\"x\\u0000y \\\\u0000\"}");
    expect_counts(&p, 1, 0, 0, 0, 0);
    assert_string_equal(p.b.msgs[0].wamid, "wamid.a\xef\xbf\xbd" "b");
    assert_string_equal(p.b.msgs[0].text, "x\xef\xbf\xbdy \\u0000");
    assert_non_null(strstr(p.b.msgs[0].raw, "x\xef\xbf\xbdy"));
    parsed_release(&p);
    /* "messages": null is absent, not invalid */
    parse_str(&p, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
                  "\"field\":\"messages\",\"value\":{\"messages\":null,\"statuses\":null}}]}]}");
    expect_counts(&p, 0, 0, 0, 0, 0);
    parsed_release(&p);
    /* a UTF-8 BOM before the body is tolerated */
    parse_str(&p, "\xef\xbb\xbf{\"object\":\"whatsapp_business_account\",\"entry\":[]}");
    expect_counts(&p, 0, 0, 0, 0, 0);
    parsed_release(&p);
}

/* ---- generated bodies: nesting and bounds */

static void build_nested(struct myna_buf *b, size_t depth)
{
    size_t i;

    assert_int_equal(myna_buf_appends(b, "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
                                         "\"changes\":[{\"field\":\"messages\",\"value\":{"
                                         "\"messages\":[{\"id\":\"wamid.deep\",\"type\":\"text\","
                                         "\"junk\":"),
                     MYNA_OK);
    for (i = 0; i < depth; i++)
        assert_int_equal(myna_buf_appends(b, i % 2 ? "[" : "{\"k\":"), MYNA_OK);
    assert_int_equal(myna_buf_appends(b, "1"), MYNA_OK);
    for (i = depth; i > 0; i--)
        assert_int_equal(myna_buf_appends(b, (i - 1) % 2 ? "]" : "}"), MYNA_OK);
    assert_int_equal(myna_buf_appends(b, "}]}}]}]}"), MYNA_OK);
}

static void test_deep_nesting(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(64 << 20);
    struct parsed p;
    char *flat;

    (void)state;
    /* deep but under cJSON's limit of 1000 levels: parsed, kept in raw */
    build_nested(&b, 900);
    parse_mem(&p, b.data, b.len);
    expect_counts(&p, 1, 0, 0, 0, 0);
    assert_true(p.b.msgs[0].raw_len > 900 * 4);
    parsed_release(&p);
    myna_buf_reset(&b);
    build_nested(&b, 5000);
    expect_fail(b.data, b.len, MYNA_EPARSE, "not valid JSON");
    myna_buf_release(&b);
    /* a million brackets must not exhaust the stack */
    flat = malloc(1000000);
    assert_non_null(flat);
    memset(flat, '[', 1000000);
    expect_fail(flat, 1000000, MYNA_EPARSE, "not valid JSON");
    free(flat);
}

/* n_msgs messages in one change, n_statuses statuses in a second entry. */
static void build_many(struct myna_buf *b, size_t n_msgs, size_t n_statuses)
{
    size_t i;

    assert_int_equal(myna_buf_appends(b, "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
                                         "\"changes\":[{\"field\":\"messages\",\"value\":{"
                                         "\"messages\":["),
                     MYNA_OK);
    for (i = 0; i < n_msgs; i++)
        assert_int_equal(myna_buf_printf(b, "%s{\"id\":\"w%zu\",\"from\":\"1\",\"type\":\"text\","
                                            "\"text\":{\"body\":\"x\"}}",
                                         i ? "," : "", i),
                         MYNA_OK);
    assert_int_equal(myna_buf_appends(b, "]}}]},{\"changes\":[{\"field\":\"messages\",\"value\":{"
                                         "\"statuses\":["),
                     MYNA_OK);
    for (i = 0; i < n_statuses; i++)
        assert_int_equal(myna_buf_printf(b, "%s{\"id\":\"s%zu\",\"status\":\"read\"}", i ? "," : "",
                                         i),
                         MYNA_OK);
    assert_int_equal(myna_buf_appends(b, "]}}]}]}"), MYNA_OK);
}

static void test_item_bound(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(64 << 20);
    struct parsed p;

    (void)state;
    build_many(&b, MYNA_CLOUD_MAX_ITEMS + 1, 0);
    expect_fail(b.data, b.len, MYNA_ETOOBIG, "10001 messages and statuses, more than 10000");
    myna_buf_reset(&b);
    build_many(&b, 5000, 5001);
    expect_fail(b.data, b.len, MYNA_ETOOBIG, "more than 10000");
    myna_buf_reset(&b);
    build_many(&b, 6000, 4000);
    parse_mem(&p, b.data, b.len);
    expect_counts(&p, 6000, 4000, 0, 0, 0);
    assert_string_equal(p.b.msgs[5999].wamid, "w5999");
    assert_string_equal(p.b.statuses[3999].wamid, "s3999");
    parsed_release(&p);
    myna_buf_release(&b);
    /* items that would be invalid still count: the bound is on work */
    assert_int_equal(myna_buf_appends(&b, "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
                                          "\"changes\":[{\"field\":\"messages\",\"value\":{"
                                          "\"messages\":[0"),
                     MYNA_OK);
    for (size_t i = 0; i < MYNA_CLOUD_MAX_ITEMS; i++)
        assert_int_equal(myna_buf_appends(&b, ",0"), MYNA_OK);
    assert_int_equal(myna_buf_appends(&b, "]}}]}]}"), MYNA_OK);
    expect_fail(b.data, b.len, MYNA_ETOOBIG, "more than 10000");
    myna_buf_release(&b);
}

/* Many contacts and messages: the sorted index keeps this fast and exact. */
static void test_many_contacts(void **state)
{
    struct myna_buf b = MYNA_BUF_INIT(64 << 20);
    struct parsed p;
    size_t i, n = 5000;

    (void)state;
    assert_int_equal(myna_buf_appends(&b, "{\"object\":\"whatsapp_business_account\",\"entry\":[{"
                                          "\"changes\":[{\"field\":\"messages\",\"value\":{"
                                          "\"contacts\":["),
                     MYNA_OK);
    for (i = 0; i < n; i++)   /* reverse order: position means nothing */
        assert_int_equal(myna_buf_printf(&b, "%s{\"wa_id\":\"7900%06zu\",\"profile\":{\"name\":\"n%zu\"}}",
                                         i ? "," : "", n - 1 - i, n - 1 - i),
                         MYNA_OK);
    assert_int_equal(myna_buf_appends(&b, "],\"messages\":["), MYNA_OK);
    for (i = 0; i < n; i++)
        assert_int_equal(myna_buf_printf(&b, "%s{\"id\":\"w%zu\",\"from\":\"7900%06zu\"}",
                                         i ? "," : "", i, i),
                         MYNA_OK);
    assert_int_equal(myna_buf_appends(&b, "]}}]}]}"), MYNA_OK);
    parse_mem(&p, b.data, b.len);
    expect_counts(&p, n, 0, 0, 0, 0);
    for (i = 0; i < n; i++) {
        char want[32];

        snprintf(want, sizeof(want), "n%zu", i);
        assert_string_equal(p.b.msgs[i].profile_name, want);
    }
    parsed_release(&p);
    myna_buf_release(&b);
}

/* sqlite faultsim style: every arena limit below what a body needs fails
 * cleanly with MYNA_ENOMEM, then one limit succeeds. */
static void exhaust_arena(const char *rel)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_cloud_batch b;
    size_t len, max;
    char *body = read_data(rel, &len);
    int rc = MYNA_ENOMEM;

    for (max = 16; rc == MYNA_ENOMEM; max += 16) {
        struct myna_arena a = MYNA_ARENA_INIT(max);

        rc = myna_cloud_parse(body, len, &a, &b, &err);
        if (rc == MYNA_ENOMEM) {
            assert_int_equal(b.n_msgs + b.n_statuses + b.n_invalid, 0);
            assert_null(b.msgs);
            assert_null(b.statuses);
            assert_non_null(strstr(err.msg, "arena exhausted"));
        }
        myna_arena_free(&a);
        assert_true(max < 1 << 20);
    }
    assert_int_equal(rc, MYNA_OK);
    free(body);
}

static void test_arena_exhaustion(void **state)
{
    (void)state;
    exhaust_arena("cloud/cloud-three-messages-one-post.json");
    exhaust_arena("cloud/extra/location-named.json");
    exhaust_arena("cloud/extra/multi-entry-multi-change.json");
    exhaust_arena("cloud/extra/wrong-types-everywhere.json");
}

static void test_bad_arguments(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_arena a = MYNA_ARENA_INIT(0);
    struct myna_cloud_batch b;

    (void)state;
    assert_int_equal(myna_cloud_parse(NULL, 5, &a, &b, &err), MYNA_EINVAL);
    assert_int_equal(myna_cloud_parse("{}", 2, NULL, &b, &err), MYNA_EINVAL);
    assert_int_equal(myna_cloud_parse("{}", 2, &a, NULL, &err), MYNA_EINVAL);
    assert_int_equal(myna_cloud_parse(NULL, 0, &a, &b, &err), MYNA_EPARSE);
    /* err is optional */
    assert_int_equal(myna_cloud_parse("x", 1, &a, &b, NULL), MYNA_EPARSE);
    myna_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fixture_is_listed),
        cmocka_unit_test(test_fixture_counts),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_text_cyrillic_emoji),
        cmocka_unit_test(test_three_messages_matched_by_wa_id),
        cmocka_unit_test(test_button_reply),
        cmocka_unit_test(test_list_reply),
        cmocka_unit_test(test_template_button),
        cmocka_unit_test(test_image_with_caption),
        cmocka_unit_test(test_voice),
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_contacts_card),
        cmocka_unit_test(test_contacts_first_card),
        cmocka_unit_test(test_reaction),
        cmocka_unit_test(test_sticker),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_reply_context),
        cmocka_unit_test(test_referral_ad),
        cmocka_unit_test(test_status_sent),
        cmocka_unit_test(test_status_delivered_read),
        cmocka_unit_test(test_status_failed_131047),
        cmocka_unit_test(test_system_without_contacts),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_legacy_unknown),
        cmocka_unit_test(test_system_legacy_shapes),
        cmocka_unit_test(test_interactive_nfm_and_unknown),
        cmocka_unit_test(test_media_kinds),
        cmocka_unit_test(test_reaction_removed),
        cmocka_unit_test(test_location_variants),
        cmocka_unit_test(test_multi_entry_multi_change),
        cmocka_unit_test(test_ignored_and_errors),
        cmocka_unit_test(test_status_variants),
        cmocka_unit_test(test_unknown_and_missing_type),
        cmocka_unit_test(test_missing_from_uses_bsuid),
        cmocka_unit_test(test_contacts_matched_not_by_index),
        cmocka_unit_test(test_from_not_wa_id),
        cmocka_unit_test(test_from_rewritten),
        cmocka_unit_test(test_rewritten_forms),
        cmocka_unit_test(test_from_plus_without_contact),
        cmocka_unit_test(test_nul_cuts_nothing),
        cmocka_unit_test(test_lone_surrogate_reads_as_replacement),
        cmocka_unit_test(test_numbers_as_strings),
        cmocka_unit_test(test_strings_as_numbers),
        cmocka_unit_test(test_wrong_types_everywhere),
        cmocka_unit_test(test_empty_and_invalid_items),
        cmocka_unit_test(test_wrong_envelope),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_malformed_u_escape),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_error_codes_and_coordinates),
        cmocka_unit_test(test_small_shapes),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_item_bound),
        cmocka_unit_test(test_many_contacts),
        cmocka_unit_test(test_arena_exhaustion),
        cmocka_unit_test(test_bad_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
