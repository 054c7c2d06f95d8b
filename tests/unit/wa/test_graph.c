/* test_graph.c - the Cloud API sender: body builders at every limit (in code
 * points: Cyrillic and emoji), myna_graph_classify on the committed
 * tests/data/cloud/graph-*.json answers and on hostile ones, the backoff
 * schedule, and the client against the real myna_fake_graph started as a
 * child process, whose signed status webhooks land in a small evhttp
 * receiver inside this test.
 *
 * Nothing sleeps: every wait runs the loop until a condition holds or a
 * deadline passes. The fake group is skipped (with a message) when the build
 * does not say where myna_fake_graph is (-DMYNA_FAKE_GRAPH="..."). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "net/http_client.h"
#include "wa/graph.h"
#include "wa/signature.h"

#ifndef MYNA_TEST_DATA
#error "MYNA_TEST_DATA must name the tests/data directory"
#endif

#define ALEX "79161234567"
#define PNID "481516234200915"
#define TOKEN "EAAGfakeToken0123456789abcdefXYZ"
#define SECRET "test-app-secret-0123456789abcdef"
#define WAMID_IN "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQTJCMUMwRDlFOEY3QTZCNUM0RAA="

#define CYR "\xd0\x96"          /* Ж: 2 bytes, 1 code point */
#define EMOJI "\xf0\x9f\x98\x80" /* 😀: 4 bytes, 1 code point */

/* ---- helpers ------------------------------------------------------------------- */

/* n copies of unit, malloc'd. */
static char *rep(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * n] = '\0';
    return s;
}

/* Parses a builder's output (and frees it). */
static cJSON *parsed(char *body)
{
    cJSON *root;

    assert_non_null(body);
    root = cJSON_Parse(body);
    assert_non_null(root);
    free(body);
    return root;
}

static const char *str_at(const cJSON *root, const char *const *path)
{
    const cJSON *v = root;

    for (size_t i = 0; path[i]; i++) {
        char *end;
        long idx = strtol(path[i], &end, 10);
        if (*end == '\0' && end != path[i])
            v = cJSON_GetArrayItem(v, (int)idx);
        else
            v = cJSON_GetObjectItemCaseSensitive(v, path[i]);
    }
    return cJSON_GetStringValue(v);
}

#define STR(root, ...) str_at((root), (const char *const[]){ __VA_ARGS__, NULL })

static int has(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}

/* The builder failed with EINVAL and a message that contains needle. */
static void assert_einval(char *body, const struct myna_err *err, const char *needle)
{
    if (body != NULL) {
        fail_msg("expected an error containing '%s', got body %s", needle, body);
        free(body);
    }
    assert_int_equal(err->code, MYNA_EINVAL);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("error '%s' does not contain '%s'", err->msg, needle);
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    long n;
    char *data;

    snprintf(path, sizeof(path), "%s/cloud/%s", MYNA_TEST_DATA, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open '%s'", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    data = malloc((size_t)n);   /* exact size: no NUL, ASan sees an over-read */
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

/* 1 if s is valid UTF-8 without control bytes. */
static int clean_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        int k = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (k == 0 || (k == 1 && (*p < 0x20 || *p == 0x7f)))
            return 0;
        for (int i = 1; i < k; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += k;
    }
    return 1;
}

/* Invariants of every result, whatever went in. */
static void assert_sane(const struct myna_send_result *r)
{
    assert_true(r->cls >= MYNA_SEND_OK && r->cls <= MYNA_SEND_FAILED);
    assert_non_null(memchr(r->error, '\0', sizeof(r->error)));
    assert_non_null(memchr(r->fbtrace_id, '\0', sizeof(r->fbtrace_id)));
    assert_non_null(memchr(r->wamid, '\0', sizeof(r->wamid)));
    assert_non_null(memchr(r->wa_id, '\0', sizeof(r->wa_id)));
    assert_true(clean_utf8(r->error));
    assert_true(clean_utf8(r->fbtrace_id));
    if (r->cls == MYNA_SEND_OK) {
        assert_string_equal(r->error, "");
        assert_int_equal(r->error_code, -1);
        assert_int_equal(r->transport_failed, 0);
    } else {
        assert_true(r->error[0] != '\0');
        assert_string_equal(r->wamid, "");
    }
    if (r->transport_failed || r->maybe_sent)
        assert_int_equal(r->cls, MYNA_SEND_RETRY);
    if (r->timed_out)
        assert_true(r->transport_failed);
}

/* Classifies an exact-size heap copy of body. */
static void classify(long status, const char *body, struct myna_send_result *r)
{
    size_t n = strlen(body);
    char *copy = malloc(n > 0 ? n : 1);

    assert_non_null(copy);
    memcpy(copy, body, n);
    myna_graph_classify(status, 0, copy, n, r);
    free(copy);
    assert_sane(r);
}

/* ---- builders ---------------------------------------------------------------------- */

static void test_text_body(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = "Здравствуйте! Запись на 14/03 к 11:00 💈";
    cJSON *root;

    (void)state;
    root = parsed(myna_graph_text_body(ALEX, text, NULL, NULL, &err));
    assert_string_equal(STR(root, "messaging_product"), "whatsapp");
    assert_string_equal(STR(root, "recipient_type"), "individual");
    assert_string_equal(STR(root, "to"), "+" ALEX);   /* B1: '+' and the country code */
    assert_string_equal(STR(root, "type"), "text");
    assert_string_equal(STR(root, "text", "body"), text);  /* exact UTF-8 round trip */
    assert_false(has(root, "context"));
    assert_false(has(root, "biz_opaque_callback_data"));
    cJSON_Delete(root);

    /* a leading '+' is kept once, context and biz_opaque appear when given */
    root = parsed(myna_graph_text_body("+" ALEX, "hi", WAMID_IN, "outbox:42", &err));
    assert_string_equal(STR(root, "to"), "+" ALEX);
    assert_string_equal(STR(root, "context", "message_id"), WAMID_IN);
    assert_string_equal(STR(root, "biz_opaque_callback_data"), "outbox:42");
    cJSON_Delete(root);

    /* "" means none for both optional fields */
    root = parsed(myna_graph_text_body(ALEX, "hi", "", "", &err));
    assert_false(has(root, "context"));
    assert_false(has(root, "biz_opaque_callback_data"));
    cJSON_Delete(root);
    assert_int_equal(err.code, 0);   /* untouched on success */
}

static void test_text_limits(void **state)
{
    const char *units[] = { "a", CYR, EMOJI };
    struct myna_err err = MYNA_ERR_INIT;
    char *s, *body;

    (void)state;
    for (size_t u = 0; u < 3; u++) {
        s = rep(units[u], MYNA_GRAPH_TEXT_MAX);
        cJSON *root = parsed(myna_graph_text_body(ALEX, s, NULL, NULL, &err));
        assert_string_equal(STR(root, "text", "body"), s);
        cJSON_Delete(root);
        free(s);
        s = rep(units[u], MYNA_GRAPH_TEXT_MAX + 1);
        assert_einval(myna_graph_text_body(ALEX, s, NULL, NULL, &err), &err,
                      "text has 4097 characters, at most 4096");
        free(s);
    }
    assert_einval(myna_graph_text_body(ALEX, "", NULL, NULL, &err), &err, "text is empty");
    assert_einval(myna_graph_text_body(ALEX, NULL, NULL, NULL, &err), &err, "text is missing");
    /* invalid UTF-8: stray continuation, overlong '/', surrogate, cut sequence, > U+10FFFF */
    const char *bad[] = { "a\x80", "\xc0\xaf", "\xed\xa0\x80", "ab\xd0", "\xf4\x90\x80\x80",
                          "\xff" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_einval(myna_graph_text_body(ALEX, bad[i], NULL, NULL, &err), &err,
                      "text is not valid UTF-8");

    /* biz_opaque: 512 code points */
    s = rep(EMOJI, MYNA_GRAPH_BIZ_OPAQUE_MAX);
    body = myna_graph_text_body(ALEX, "x", NULL, s, &err);
    assert_non_null(body);
    free(body);
    free(s);
    s = rep(CYR, MYNA_GRAPH_BIZ_OPAQUE_MAX + 1);
    assert_einval(myna_graph_text_body(ALEX, "x", NULL, s, &err), &err,
                  "biz_opaque_callback_data has 513 characters, at most 512");
    free(s);

    /* the quoted wamid must be printable ASCII */
    assert_einval(myna_graph_text_body(ALEX, "x", "wamid.a b", NULL, &err), &err,
                  "reply_to wamid");
    s = rep("w", 192);
    assert_einval(myna_graph_text_body(ALEX, "x", s, NULL, &err), &err, "reply_to wamid");
    s[191] = '\0';
    body = myna_graph_text_body(ALEX, "x", s, NULL, &err);
    assert_non_null(body);
    free(body);
    free(s);
}

static void test_recipient(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    const char *bad[] = { "", "+", "++79161234567", "7916-123-45-67", "+7 916", "79161234567 ",
                          "1234567890123456", "abc", "٣٣٣" };
    cJSON *root;

    (void)state;
    assert_einval(myna_graph_text_body(NULL, "x", NULL, NULL, &err), &err, "recipient");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_einval(myna_graph_text_body(bad[i], "x", NULL, NULL, &err), &err, "recipient");
    root = parsed(myna_graph_text_body("123456789012345", "x", NULL, NULL, &err)); /* 15 */
    assert_string_equal(STR(root, "to"), "+123456789012345");
    cJSON_Delete(root);
    root = parsed(myna_graph_text_body("+1", "x", NULL, NULL, &err));
    assert_string_equal(STR(root, "to"), "+1");
    cJSON_Delete(root);
}

static void test_buttons_body(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    const char *ids[] = { "slot:2026-03-14T11:00", "slot:2026-03-14T12:00", "other" };
    const char *titles[] = { "11:00", "12:00", "Другое время" };
    cJSON *root, *buttons;

    (void)state;
    root = parsed(myna_graph_buttons_body(ALEX, "Когда вам удобно?", ids, titles, 3, "menu:1",
                                          &err));
    assert_string_equal(STR(root, "to"), "+" ALEX);
    assert_string_equal(STR(root, "type"), "interactive");
    assert_string_equal(STR(root, "interactive", "type"), "button");
    assert_string_equal(STR(root, "interactive", "body", "text"), "Когда вам удобно?");
    assert_string_equal(STR(root, "biz_opaque_callback_data"), "menu:1");
    buttons = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "interactive"),
                                                      "action"), "buttons");
    assert_int_equal(cJSON_GetArraySize(buttons), 3);
    for (int i = 0; i < 3; i++) {
        char idx[16];
        snprintf(idx, sizeof(idx), "%d", i);
        assert_string_equal(STR(root, "interactive", "action", "buttons", idx, "type"), "reply");
        assert_string_equal(STR(root, "interactive", "action", "buttons", idx, "reply", "id"),
                            ids[i]);
        assert_string_equal(STR(root, "interactive", "action", "buttons", idx, "reply", "title"),
                            titles[i]);
    }
    cJSON_Delete(root);
    root = parsed(myna_graph_buttons_body(ALEX, "x", ids, titles, 1, NULL, &err));
    assert_false(has(root, "biz_opaque_callback_data"));
    cJSON_Delete(root);
}

static void test_buttons_limits(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    const char *ids[4] = { "a", "b", "c", "d" };
    const char *titles[4] = { "A", "B", "C", "D" };
    const char *units[] = { "t", CYR, EMOJI };
    char *s, *body;

    (void)state;
    assert_einval(myna_graph_buttons_body(ALEX, "x", ids, titles, 0, NULL, &err), &err,
                  "1 to 3 buttons, got 0");
    assert_einval(myna_graph_buttons_body(ALEX, "x", ids, titles, 4, NULL, &err), &err,
                  "1 to 3 buttons, got 4");
    assert_einval(myna_graph_buttons_body(ALEX, "x", NULL, titles, 2, NULL, &err), &err,
                  "buttons");
    for (size_t u = 0; u < 3; u++) {
        const char *t[2] = { "A", NULL };
        t[1] = s = rep(units[u], MYNA_GRAPH_BUTTON_TITLE_MAX);
        body = myna_graph_buttons_body(ALEX, "x", ids, t, 2, NULL, &err);
        assert_non_null(body);
        free(body);
        free(s);
        t[1] = s = rep(units[u], MYNA_GRAPH_BUTTON_TITLE_MAX + 1);
        assert_einval(myna_graph_buttons_body(ALEX, "x", ids, t, 2, NULL, &err), &err,
                      "button 2 title has 21 characters, at most 20");
        free(s);
    }
    {
        const char *id[1] = { NULL };
        id[0] = s = rep(CYR, MYNA_GRAPH_BUTTON_ID_MAX);
        body = myna_graph_buttons_body(ALEX, "x", id, titles, 1, NULL, &err);
        assert_non_null(body);
        free(body);
        free(s);
        id[0] = s = rep("i", MYNA_GRAPH_BUTTON_ID_MAX + 1);
        assert_einval(myna_graph_buttons_body(ALEX, "x", id, titles, 1, NULL, &err), &err,
                      "button 1 id has 257 characters, at most 256");
        free(s);
    }
    s = rep(EMOJI, MYNA_GRAPH_INTERACTIVE_BODY_MAX);
    body = myna_graph_buttons_body(ALEX, s, ids, titles, 3, NULL, &err);
    assert_non_null(body);
    free(body);
    free(s);
    s = rep(CYR, MYNA_GRAPH_INTERACTIVE_BODY_MAX + 1);
    assert_einval(myna_graph_buttons_body(ALEX, s, ids, titles, 3, NULL, &err), &err,
                  "button message body has 1025 characters, at most 1024");
    free(s);
    {
        const char *dup_t[3] = { "Да", "Нет", "Да" }, *dup_i[3] = { "y", "n", "y" };
        const char *empty[2] = { "A", "" };
        assert_einval(myna_graph_buttons_body(ALEX, "x", ids, dup_t, 3, NULL, &err), &err,
                      "button 3 title repeats");
        assert_einval(myna_graph_buttons_body(ALEX, "x", dup_i, titles, 3, NULL, &err), &err,
                      "button 3 id repeats");
        assert_einval(myna_graph_buttons_body(ALEX, "x", ids, empty, 2, NULL, &err), &err,
                      "button 2 title is empty");
        assert_einval(myna_graph_buttons_body(ALEX, "x", empty, titles, 2, NULL, &err), &err,
                      "button 2 id is empty");
        assert_einval(myna_graph_buttons_body(ALEX, "", ids, titles, 2, NULL, &err), &err,
                      "body is empty");
        assert_einval(myna_graph_buttons_body("x", "x", ids, titles, 2, NULL, &err), &err,
                      "recipient");
    }
}

static void test_list_body(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    const char *ids[] = { "svc:cut", "svc:beard", "svc:both" };
    const char *titles[] = { "Стрижка", "Борода", "Стрижка + борода" };
    const char *desc[] = { "45 минут", NULL, "" };
    cJSON *root, *rows;

    (void)state;
    root = parsed(myna_graph_list_body(ALEX, "Выберите услугу", "Услуги", ids, titles, desc, 3,
                                       "list:7", &err));
    assert_string_equal(STR(root, "to"), "+" ALEX);
    assert_string_equal(STR(root, "interactive", "type"), "list");
    assert_string_equal(STR(root, "interactive", "body", "text"), "Выберите услугу");
    assert_string_equal(STR(root, "interactive", "action", "button"), "Услуги");
    assert_string_equal(STR(root, "biz_opaque_callback_data"), "list:7");
    rows = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
                                                                       root, "interactive"),
                                                                   "action"),
                                               "sections"),
                           0),
        "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 3);
    assert_string_equal(STR(rows, "0", "id"), "svc:cut");
    assert_string_equal(STR(rows, "0", "title"), "Стрижка");
    assert_string_equal(STR(rows, "0", "description"), "45 минут");
    assert_false(has(cJSON_GetArrayItem(rows, 1), "description"));  /* NULL: none */
    assert_false(has(cJSON_GetArrayItem(rows, 2), "description"));  /* "": none */
    cJSON_Delete(root);
    root = parsed(myna_graph_list_body(ALEX, "x", "b", ids, titles, NULL, 1, NULL, &err));
    assert_false(has(root, "biz_opaque_callback_data"));
    cJSON_Delete(root);
}

static void test_list_limits(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    const char *ids[11], *titles[11];
    char idbuf[11][16], *s, *body;

    (void)state;
    for (int i = 0; i < 11; i++) {
        snprintf(idbuf[i], sizeof(idbuf[i]), "r%d", i);
        ids[i] = titles[i] = idbuf[i];
    }
    body = myna_graph_list_body(ALEX, "x", "b", ids, titles, NULL, 10, NULL, &err);
    assert_non_null(body);
    free(body);
    assert_einval(myna_graph_list_body(ALEX, "x", "b", ids, titles, NULL, 11, NULL, &err), &err,
                  "1 to 10 rows, got 11");
    assert_einval(myna_graph_list_body(ALEX, "x", "b", ids, titles, NULL, 0, NULL, &err), &err,
                  "1 to 10 rows, got 0");
    {   /* row title 24, description 72, id 200, label 20: edge ok, one past fails */
        const char *t[1], *d[1], *id[1];
        t[0] = s = rep(EMOJI, MYNA_GRAPH_ROW_TITLE_MAX);
        body = myna_graph_list_body(ALEX, "x", "b", ids, t, NULL, 1, NULL, &err);
        assert_non_null(body);
        free(body);
        free(s);
        t[0] = s = rep(CYR, MYNA_GRAPH_ROW_TITLE_MAX + 1);
        assert_einval(myna_graph_list_body(ALEX, "x", "b", ids, t, NULL, 1, NULL, &err), &err,
                      "row 1 title has 25 characters, at most 24");
        free(s);
        d[0] = s = rep(CYR, MYNA_GRAPH_ROW_DESCRIPTION_MAX);
        body = myna_graph_list_body(ALEX, "x", "b", ids, titles, d, 1, NULL, &err);
        assert_non_null(body);
        free(body);
        free(s);
        d[0] = s = rep(EMOJI, MYNA_GRAPH_ROW_DESCRIPTION_MAX + 1);
        assert_einval(myna_graph_list_body(ALEX, "x", "b", ids, titles, d, 1, NULL, &err), &err,
                      "row 1 description has 73 characters, at most 72");
        free(s);
        id[0] = s = rep("i", MYNA_GRAPH_ROW_ID_MAX);
        body = myna_graph_list_body(ALEX, "x", "b", id, titles, NULL, 1, NULL, &err);
        assert_non_null(body);
        free(body);
        free(s);
        id[0] = s = rep(EMOJI, MYNA_GRAPH_ROW_ID_MAX + 1);
        assert_einval(myna_graph_list_body(ALEX, "x", "b", id, titles, NULL, 1, NULL, &err), &err,
                      "row 1 id has 201 characters, at most 200");
        free(s);
        s = rep(EMOJI, MYNA_GRAPH_LIST_BUTTON_MAX);
        body = myna_graph_list_body(ALEX, "x", s, ids, titles, NULL, 1, NULL, &err);
        assert_non_null(body);
        free(body);
        free(s);
        s = rep(CYR, MYNA_GRAPH_LIST_BUTTON_MAX + 1);
        assert_einval(myna_graph_list_body(ALEX, "x", s, ids, titles, NULL, 1, NULL, &err), &err,
                      "list button label has 21 characters, at most 20");
        free(s);
    }
    s = rep(CYR, MYNA_GRAPH_INTERACTIVE_BODY_MAX);
    body = myna_graph_list_body(ALEX, s, "b", ids, titles, NULL, 2, NULL, &err);
    assert_non_null(body);
    free(body);
    free(s);
    s = rep("x", MYNA_GRAPH_INTERACTIVE_BODY_MAX + 1);
    assert_einval(myna_graph_list_body(ALEX, s, "b", ids, titles, NULL, 2, NULL, &err), &err,
                  "list message body has 1025 characters");
    free(s);
    {
        const char *dup[3] = { "a", "b", "a" }, *t3[3] = { "A", "A", "A" };
        /* same titles are fine in a list (Meta requires unique ids only) */
        body = myna_graph_list_body(ALEX, "x", "b", ids, t3, NULL, 3, NULL, &err);
        assert_non_null(body);
        free(body);
        assert_einval(myna_graph_list_body(ALEX, "x", "b", dup, t3, NULL, 3, NULL, &err), &err,
                      "row 3 id repeats");
        assert_einval(myna_graph_list_body(ALEX, "x", "", ids, t3, NULL, 3, NULL, &err), &err,
                      "list button label is empty");
        assert_einval(myna_graph_list_body(ALEX, "x", NULL, ids, t3, NULL, 3, NULL, &err), &err,
                      "list button label is missing");
        assert_einval(myna_graph_list_body(ALEX, "x", "b", ids, NULL, NULL, 3, NULL, &err), &err,
                      "rows");
    }
}

static void test_read_body(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *root;

    (void)state;
    root = parsed(myna_graph_read_body(WAMID_IN, 0, &err));
    assert_string_equal(STR(root, "messaging_product"), "whatsapp");
    assert_string_equal(STR(root, "status"), "read");
    assert_string_equal(STR(root, "message_id"), WAMID_IN);
    assert_false(has(root, "typing_indicator"));
    assert_false(has(root, "to"));
    cJSON_Delete(root);
    root = parsed(myna_graph_read_body(WAMID_IN, 1, &err));
    assert_string_equal(STR(root, "typing_indicator", "type"), "text");
    cJSON_Delete(root);
    assert_einval(myna_graph_read_body(NULL, 1, &err), &err, "wamid to mark read is missing");
    assert_einval(myna_graph_read_body("", 0, &err), &err, "wamid to mark read is missing");
    assert_einval(myna_graph_read_body("wamid.\n", 0, &err), &err, "printable ASCII");
}

/* ---- classification ------------------------------------------------------------------ */

static void classify_fixture(const char *name, long status, struct myna_send_result *r)
{
    size_t len;
    char *body = read_fixture(name, &len);

    myna_graph_classify(status, 0, body, len, r);
    free(body);
    assert_sane(r);
    assert_int_equal(r->http_status, status);
    assert_int_equal(r->transport_failed, 0);
}

static void test_classify_fixtures(void **state)
{
    static const struct {
        const char *file;
        enum myna_send_class cls;
        int code;
        const char *error, *trace;
    } want[] = {
        { "graph-error-131056.json", MYNA_SEND_RETRY_PAIR, 131056,
          "(#131056) (Business Account, Consumer Account) pair rate limit hit: Message failed "
          "to send because there were too many messages sent from this phone number to the "
          "same phone number in a short period of time.",
          "AzQ7mR3kX1pL9vN2sT5wY8b" },
        { "graph-error-131047.json", MYNA_SEND_WINDOW_CLOSED, 131047,
          "(#131047) Re-engagement message: Message failed to send because more than 24 hours "
          "have passed since the customer last replied to this number.",
          "B1cD2eF3gH4iJ5kL6mN7oP8" },
        { "graph-error-130429.json", MYNA_SEND_RETRY, 130429,
          "(#130429) Rate limit hit: Cloud API message throughput has been reached.",
          "Cq9Wx8Ev7Rt6Yu5Io4Pa3Sd" },
        { "graph-error-190.json", MYNA_SEND_AUTH, 190,
          "Error validating access token: Session has expired on Saturday, 14-Mar-26 01:00:00 "
          "PDT. The current time is Saturday, 14-Mar-26 02:10:11 PDT.",
          "Dm2Nb3Vc4Xz5Lk6Jh7Gf8Ds" },
    };
    /* the class follows error.code whatever the HTTP status (B4) */
    const long statuses[] = { 400, 401, 403, 404, 429, 500, 503, 200 };
    struct myna_send_result r;

    (void)state;
    classify_fixture("graph-send-response.json", 200, &r);
    assert_int_equal(r.cls, MYNA_SEND_OK);
    assert_string_equal(r.wamid, "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI1RTNDNEQ1RTZGNzA4MTkyQTMA");
    assert_string_equal(r.wa_id, ALEX);
    assert_string_equal(r.fbtrace_id, "");
    assert_int_equal(r.error_code, -1);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
            classify_fixture(want[i].file, statuses[s], &r);
            assert_int_equal(r.cls, want[i].cls);
            assert_int_equal(r.error_code, want[i].code);
            assert_string_equal(r.error, want[i].error);
            assert_string_equal(r.fbtrace_id, want[i].trace);
            assert_string_equal(r.wamid, "");
        }
    /* the success body under an error status is not a success */
    classify_fixture("graph-send-response.json", 500, &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    classify_fixture("graph-send-response.json", 400, &r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
}

static void test_classify_codes(void **state)
{
    static const struct {
        int code;
        enum myna_send_class cls;
    } table[] = {
        { 130429, MYNA_SEND_RETRY }, { 131000, MYNA_SEND_RETRY }, { 131016, MYNA_SEND_RETRY },
        { 1, MYNA_SEND_RETRY },      { 2, MYNA_SEND_RETRY },      { 133004, MYNA_SEND_RETRY },
        { 131057, MYNA_SEND_RETRY }, { 4, MYNA_SEND_RETRY },      { 80007, MYNA_SEND_RETRY },
        { 131048, MYNA_SEND_RETRY },   /* spam rate limit: "retry much later" */
        { 131056, MYNA_SEND_RETRY_PAIR },
        { 131047, MYNA_SEND_WINDOW_CLOSED },
        { 190, MYNA_SEND_AUTH },     { 0, MYNA_SEND_AUTH },       { 3, MYNA_SEND_AUTH },
        { 10, MYNA_SEND_AUTH },      { 200, MYNA_SEND_AUTH },     { 250, MYNA_SEND_AUTH },
        { 299, MYNA_SEND_AUTH },
        { 131031, MYNA_SEND_LOCKED }, { 368, MYNA_SEND_LOCKED },  /* "alert a human" */
        { 133010, MYNA_SEND_LOCKED }, { 131042, MYNA_SEND_LOCKED },  /* register, billing */
        { 199, MYNA_SEND_FAILED },   { 300, MYNA_SEND_FAILED },   { 100, MYNA_SEND_FAILED },
        { 131009, MYNA_SEND_FAILED }, { 131008, MYNA_SEND_FAILED }, { 131026, MYNA_SEND_FAILED },
        { 131051, MYNA_SEND_FAILED }, { 131041, MYNA_SEND_FAILED },
        { 132001, MYNA_SEND_FAILED }, { 131030, MYNA_SEND_FAILED }, { 367, MYNA_SEND_FAILED },
        { 369, MYNA_SEND_FAILED },   { 131032, MYNA_SEND_FAILED }, { 5, MYNA_SEND_FAILED },
        { 2147483647, MYNA_SEND_FAILED },
    };
    char body[256];
    struct myna_send_result r;

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"error\":{\"message\":\"(#%d) t\",\"type\":\"OAuthException\",\"code\":%d,"
                 "\"fbtrace_id\":\"T%zu\"}}",
                 table[i].code, table[i].code, i);
        classify(400, body, &r);
        assert_int_equal(r.cls, table[i].cls);
        assert_int_equal(r.error_code, table[i].code);
        /* a 5xx with a Graph code is still decided by the code */
        classify(503, body, &r);
        assert_int_equal(r.cls, table[i].cls);
        classify(502, body, &r);   /* Meta's own answer: it was not taken */
        assert_int_equal(r.cls, table[i].cls);
        assert_int_equal(r.maybe_sent, 0);
    }
    /* code quoted as a string */
    classify(400, "{\"error\":{\"code\":\"131056\",\"message\":\"m\"}}", &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY_PAIR);
    assert_int_equal(r.error_code, 131056);
    /* codes that are not integers: no code, the status decides */
    const char *not_codes[] = { "1.5", "\"13x\"", "\"\"", "1e300", "-1e300", "true", "null",
                                "[131056]", "{}", "\"99999999999\"", "-1", "-01", "-131056",
                                "\"-1\"" };
    for (size_t i = 0; i < sizeof(not_codes) / sizeof(not_codes[0]); i++) {
        snprintf(body, sizeof(body), "{\"error\":{\"code\":%s,\"message\":\"m\"}}", not_codes[i]);
        classify(400, body, &r);
        assert_int_equal(r.cls, MYNA_SEND_FAILED);
        assert_int_equal(r.error_code, -1);
        assert_string_equal(r.error, "m");
        classify(502, body, &r);
        assert_int_equal(r.cls, MYNA_SEND_RETRY);
        assert_int_equal(r.maybe_sent, 1);
        classify(200, body, &r);   /* an error object is never a success */
        assert_int_equal(r.cls, MYNA_SEND_FAILED);
    }
}

static void test_classify_success_shapes(void **state)
{
    struct myna_send_result r;
    char body[512], *w;

    (void)state;
    classify(200, "{\"messages\":[{\"id\":\"wamid.X\"}]}", &r);
    assert_int_equal(r.cls, MYNA_SEND_OK);
    assert_string_equal(r.wamid, "wamid.X");
    assert_string_equal(r.wa_id, "");
    classify(201, "{\"messages\":[{\"id\":\"wamid.X\",\"message_status\":\"accepted\"}],"
                  "\"contacts\":[{\"input\":\"+7\",\"wa_id\":5}]}", &r);
    assert_int_equal(r.cls, MYNA_SEND_OK);
    assert_string_equal(r.wa_id, "");   /* wrong type reads as absent */
    classify(200, "{\"success\":true}", &r);   /* mark read / typing */
    assert_int_equal(r.cls, MYNA_SEND_OK);
    assert_string_equal(r.wamid, "");

    /* a 2xx without a usable messages[0].id is FAILED, never OK */
    const char *bad[] = { "", "{}", "[]", "null", "{\"messages\":[]}", "{\"messages\":{}}",
                          "{\"messages\":{\"id\":\"wamid.X\"}}", "{\"messages\":[{}]}",
                          "{\"messages\":[{\"id\":\"\"}]}", "{\"messages\":[{\"id\":5}]}",
                          "{\"messages\":[null,{\"id\":\"wamid.X\"}]}",
                          "{\"messages\":[{\"id\":\"wamid X\"}]}",
                          "{\"messages\":[{\"id\":\"wamid.\\u0001\"}]}",
                          "{\"success\":false}", "{\"success\":\"true\"}",
                          "{\"messages\":[{\"id\":\"", "<html>OK</html>", "\xff\xfe\x00" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        classify(200, bad[i], &r);
        assert_int_equal(r.cls, MYNA_SEND_FAILED);
        assert_int_equal(r.error_code, -1);
        assert_non_null(strstr(r.error, "messages[0].id"));
    }
    /* the wamid must fit: 191 bytes do, 192 do not */
    w = rep("w", 191);
    snprintf(body, sizeof(body), "{\"messages\":[{\"id\":\"%s\"}]}", w);
    classify(200, body, &r);
    assert_int_equal(r.cls, MYNA_SEND_OK);
    assert_string_equal(r.wamid, w);
    free(w);
    w = rep("w", 192);
    snprintf(body, sizeof(body), "{\"messages\":[{\"id\":\"%s\"}]}", w);
    classify(200, body, &r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    free(w);
    /* an over-long wa_id is dropped, not cut */
    w = rep("7", 64);
    snprintf(body, sizeof(body), "{\"messages\":[{\"id\":\"wamid.X\"}],\"contacts\":[{\"wa_id\":"
                                 "\"%s\"}]}", w);
    classify(200, body, &r);
    assert_int_equal(r.cls, MYNA_SEND_OK);
    assert_string_equal(r.wa_id, "");
    free(w);
}

static void test_classify_no_graph_error(void **state)
{
    static const char html[] = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";
    struct myna_send_result r;

    (void)state;
    /* a gateway's 502/504 may come after it passed the POST on: Meta may
     * have taken the message, as after a timeout */
    classify(502, html, &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.maybe_sent, 1);
    assert_int_equal(r.transport_failed, 0);
    assert_int_equal(r.error_code, -1);
    assert_int_equal(r.http_status, 502);
    assert_string_equal(r.error, "HTTP 502 without a Graph API error (the body is not JSON)");
    classify(504, "", &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.maybe_sent, 1);
    classify(504, "{\"message\":\"upstream timed out\"}", &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.maybe_sent, 1);
    classify(500, "", &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.maybe_sent, 0);
    assert_string_equal(r.error, "HTTP 500 without a Graph API error");
    classify(503, "{\"error\":\"overloaded\"}", &r);    /* error of the wrong type */
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.maybe_sent, 0);
    classify(429, "", &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.maybe_sent, 0);
    classify(408, html, &r);   /* a proxy's: the request never went on */
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.maybe_sent, 0);
    classify(400, "{\"foo\":1}", &r);   /* may be this request's own fault */
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    classify(413, html, &r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    classify(410, "", &r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    classify(0, "", &r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    myna_graph_classify(503, 0, NULL, 0, &r);
    assert_sane(&r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);

    /* no answer at all: RETRY with the transport flag, whatever the rest says */
    myna_graph_classify(0, 1, NULL, 0, &r);
    assert_sane(&r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_int_equal(r.transport_failed, 1);
    assert_int_equal(r.error_code, -1);
    myna_graph_classify(200, 1, "{\"messages\":[{\"id\":\"wamid.X\"}]}", 31, &r);
    assert_sane(&r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
    assert_string_equal(r.wamid, "");
}

/* Meta answers a redirect, a demand for credentials, a refusal or an
 * unknown path with a Graph error: without one they come of a proxy, a
 * firewall or a graph_url that is not Meta's, and every send would get
 * them. Only a person can fix that, as a refused token: AUTH, never the
 * dead letter of one reply after the other. */
static void test_classify_bare_refusal_of_every_request(void **state)
{
    static const char html[] = "<html><body><h1>407 Proxy Authentication Required</h1>"
                               "</body></html>";
    static const long refusals[] = { 300, 301, 302, 303, 307, 308, 399,
                                     401, 403, 404, 405, 407 };
    static const long others[] = { 400, 402, 406, 409, 410, 413, 415, 422, 299, 600 };
    struct myna_send_result r;
    char want[80];

    (void)state;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        classify(refusals[i], html, &r);
        assert_sane(&r);
        if (r.cls != MYNA_SEND_AUTH)
            fail_msg("bare %ld: class %d, want AUTH", refusals[i], r.cls);
        assert_int_equal(r.error_code, -1);   /* told from Meta's 190 by the code */
        assert_int_equal(r.http_status, refusals[i]);
        assert_int_equal(r.maybe_sent, 0);
        snprintf(want, sizeof(want), "HTTP %ld without a Graph API error (the body is not JSON)",
                 refusals[i]);
        assert_string_equal(r.error, want);
        classify(refusals[i], "", &r);
        assert_int_equal(r.cls, MYNA_SEND_AUTH);
        /* a JSON body of a proxy's, an error without a code: not Meta's either */
        classify(refusals[i], "{\"message\":\"Proxy Authentication Required\"}", &r);
        assert_int_equal(r.cls, MYNA_SEND_AUTH);
        classify(refusals[i], "{\"error\":{\"message\":\"denied\"}}", &r);
        assert_int_equal(r.cls, MYNA_SEND_AUTH);
        assert_int_equal(r.error_code, -1);
        assert_string_equal(r.error, "denied");
    }
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        classify(others[i], html, &r);
        if (r.cls != MYNA_SEND_FAILED)
            fail_msg("bare %ld: class %d, want FAILED", others[i], r.cls);
    }
    /* with a Graph error code, the code decides as ever */
    classify(403, "{\"error\":{\"message\":\"(#131026) Message undeliverable\","
                  "\"code\":131026}}", &r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    assert_int_equal(r.error_code, 131026);
    classify(404, "{\"error\":{\"message\":\"(#131000) Something went wrong\","
                  "\"code\":131000}}", &r);
    assert_int_equal(r.cls, MYNA_SEND_RETRY);
}

static void test_classify_hostile(void **state)
{
    struct myna_send_result r;
    char *big, *msg, *body;
    size_t n;

    (void)state;
    /* a 100 KB Cyrillic message is cut at a character boundary */
    msg = rep(CYR, 50000);
    n = 2 * strlen(msg) + 200;
    body = malloc(n);
    assert_non_null(body);
    snprintf(body, n, "{\"error\":{\"code\":131047,\"message\":\"%s\",\"fbtrace_id\":\"%s\"}}", msg,
             msg);
    classify(400, body, &r);
    assert_int_equal(r.cls, MYNA_SEND_WINDOW_CLOSED);
    assert_int_equal(strlen(r.error), 254);           /* 127 two-byte characters */
    assert_int_equal(strlen(r.fbtrace_id), 62);
    assert_int_equal(strncmp(r.error, msg, 254), 0);
    free(body);
    free(msg);

    /* control bytes and broken UTF-8 in the text are neutralised */
    classify(400, "{\"error\":{\"code\":131026,\"message\":\"a\\u0000b\\nc\\td\x80\xd0\","
                  "\"error_data\":{\"details\":\"\\u001b[31mred\"}}}", &r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    assert_string_equal(r.error, "a:  [31mred");   /* cJSON ends a string at \u0000 */
    classify(400, "{\"error\":{\"code\":131026,\"message\":\"b\\nc\\td\x80\xd0\","
                  "\"error_data\":{\"details\":\"\\u001b[31mred\"}}}", &r);
    assert_string_equal(r.error, "b c d??:  [31mred");
    /* details alone, or nothing at all */
    classify(400, "{\"error\":{\"code\":131026,\"error_data\":{\"details\":\"only details\"}}}",
             &r);
    assert_string_equal(r.error, "only details");
    classify(400, "{\"error\":{\"code\":131026,\"message\":123,\"error_data\":\"x\"}}", &r);
    assert_string_equal(r.error, "Graph API error without a message (HTTP 400)");
    /* details already in the message are not repeated */
    classify(400, "{\"error\":{\"code\":1,\"message\":\"(#1) x: boom\","
                  "\"error_data\":{\"details\":\"boom\"}}}", &r);
    assert_string_equal(r.error, "(#1) x: boom");

    /* bodies over 256 KiB are not parsed: the status decides */
    n = 300 * 1024;
    big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"error\":{\"code\":131056}}", 25);
    myna_graph_classify(400, 0, big, n, &r);
    assert_sane(&r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    assert_int_equal(r.error_code, -1);
    myna_graph_classify(400, 0, big, 256 * 1024, &r);   /* at the limit it is parsed */
    assert_int_equal(r.cls, MYNA_SEND_RETRY_PAIR);
    free(big);

    /* deep nesting, truncations of a real answer, embedded NULs */
    big = rep("[", 100000);
    myna_graph_classify(400, 0, big, strlen(big), &r);
    assert_sane(&r);
    assert_int_equal(r.cls, MYNA_SEND_FAILED);
    free(big);
    {
        size_t len;
        char *fx = read_fixture("graph-error-131056.json", &len);
        for (size_t cut = 0; cut <= len; cut++) {
            char *copy = malloc(cut > 0 ? cut : 1);
            assert_non_null(copy);
            memcpy(copy, fx, cut);
            myna_graph_classify(400, 0, copy, cut, &r);
            free(copy);
            assert_sane(&r);
            assert_true(r.cls == MYNA_SEND_RETRY_PAIR || r.cls == MYNA_SEND_FAILED);
        }
        free(fx);
    }
    {
        static const char nul[] = "{\"messages\":[{\"id\":\"wa\0mid\"}]}";
        myna_graph_classify(200, 0, nul, sizeof(nul) - 1, &r);
        assert_sane(&r);
        assert_int_equal(r.cls, MYNA_SEND_FAILED);   /* the JSON ends at the NUL */
    }
    {
        /* \u0000 is valid JSON, but cuts the string just the same */
        static const char esc[] = "{\"messaging_product\":\"whatsapp\","
                                  "\"messages\":[{\"id\":\"wamid.AB\\u0000CD\"}]}";
        static const char ok[] = "{\"success\":true,\"x\":\"\\u0000\"}";
        static const char lit[] = "{\"messages\":[{\"id\":\"wamid.AB\\\\u0000CD\"}]}";
        myna_graph_classify(200, 0, esc, sizeof(esc) - 1, &r);
        assert_sane(&r);
        assert_int_equal(r.cls, MYNA_SEND_FAILED);
        assert_string_equal(r.wamid, "");
        assert_non_null(strstr(r.error, "NUL"));
        {   /* cJSON reads a \u with a byte that is not hex as a NUL too */
            static const char bad[] = "{\"messaging_product\":\"whatsapp\","
                                      "\"messages\":[{\"id\":\"wamid.AB\\u-123CD\"}]}";
            myna_graph_classify(200, 0, bad, sizeof(bad) - 1, &r);
            assert_sane(&r);
            assert_int_equal(r.cls, MYNA_SEND_FAILED);
            assert_string_equal(r.wamid, "");
        }
        myna_graph_classify(200, 0, ok, sizeof(ok) - 1, &r);
        assert_sane(&r);
        assert_int_equal(r.cls, MYNA_SEND_FAILED);
        /* an escaped backslash before "u0000" is no NUL */
        myna_graph_classify(200, 0, lit, sizeof(lit) - 1, &r);
        assert_sane(&r);
        assert_int_equal(r.cls, MYNA_SEND_OK);
        assert_string_equal(r.wamid, "wamid.AB\\u0000CD");
    }
}

/* What a failed status's code means, and which limits hold every send. */
static void test_code_class_and_number_limits(void **state)
{
    struct myna_send_result r;

    (void)state;
    assert_int_equal(myna_graph_code_class(131000), MYNA_SEND_RETRY);
    assert_int_equal(myna_graph_code_class(130429), MYNA_SEND_RETRY);
    assert_int_equal(myna_graph_code_class(131056), MYNA_SEND_RETRY_PAIR);
    assert_int_equal(myna_graph_code_class(131047), MYNA_SEND_WINDOW_CLOSED);
    assert_int_equal(myna_graph_code_class(131026), MYNA_SEND_FAILED);
    assert_int_equal(myna_graph_code_class(190), MYNA_SEND_AUTH);
    const int number[] = { 130429, 131048, 4, 80007, 131057 };
    for (size_t i = 0; i < sizeof(number) / sizeof(number[0]); i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"error\":{\"code\":%d,\"message\":\"m\"}}", number[i]);
        classify(400, body, &r);
        assert_int_equal(r.cls, MYNA_SEND_RETRY);
        assert_int_equal(myna_graph_limits_number(r.error_code, r.http_status), 1);
    }
    classify(500, "{\"error\":{\"code\":131000,\"message\":\"m\"}}", &r);
    assert_int_equal(myna_graph_limits_number(r.error_code, r.http_status), 0);   /* one message's trouble */
    classify(400, "{\"error\":{\"code\":131056,\"message\":\"m\"}}", &r);
    assert_int_equal(myna_graph_limits_number(r.error_code, r.http_status), 0);   /* one recipient's */
    classify(429, "busy", &r);
    assert_int_equal(myna_graph_limits_number(r.error_code, r.http_status), 1);
    classify(503, "busy", &r);
    assert_int_equal(myna_graph_limits_number(r.error_code, r.http_status), 0);
}

/* ---- backoff ------------------------------------------------------------------------ */

static void test_backoff(void **state)
{
    const unsigned rnds[] = { 0, 1, 7, 1000, 123456789, UINT_MAX / 2, UINT_MAX };
    long base = 1000;

    (void)state;
    for (int a = 0; a < 40; a++) {
        long want = base < 300000 ? base : 300000;
        long span = want * 2 / 5;
        /* rnd = span/2 is the midpoint: no jitter */
        assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, a, (unsigned)(span / 2)), want);
        for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
            long ms = myna_graph_backoff_ms(MYNA_SEND_RETRY, a, rnds[i]);
            assert_true(ms >= want * 8 / 10 && ms <= want * 12 / 10);
        }
        if (base < 300000)
            base *= 2;
    }
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, 0, 0), 800);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, 0, 400), 1200);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, 1, 400), 2000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, 8, 51200), 256000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, 9, 60000), 300000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, INT_MAX, 60000), 300000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY, -3, 200), 1000);

    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, 0, 99), 1000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, 1, 99), 4000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, 2, 99), 16000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, 3, 99), 64000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, 4, 99), 256000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, 5, 99), 600000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, INT_MAX, 0), 600000);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_RETRY_PAIR, -1, 0), 1000);

    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_OK, 0, 0), -1);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_WINDOW_CLOSED, 0, 0), -1);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_AUTH, 3, 0), -1);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_LOCKED, 0, 0), -1);
    assert_int_equal(myna_graph_backoff_ms(MYNA_SEND_FAILED, 1, 0), -1);
}

/* ---- the client against myna_fake_graph ------------------------------------------------ */

#define MAX_STATUSES 64

struct got_status {
    char wamid[64], status[16], recipient[24], pnid[32], opaque[128];
    int code;
};

static struct env {
    struct event_base *base;
    struct myna_http_client *http;
    struct evhttp *receiver;
    struct myna_hmac_key *key;
    pid_t pid;
    int err_fd;
    struct event *err_ev;
    char fake_url[64];
    char graph_url[96];
    struct got_status st[MAX_STATUSES];
    int n_st, bad_sig, non_ascii;
    char receiver_url[64];     /* this test's evhttp: http://127.0.0.1:port */
    long n_posts, n_callbacks;
} E;

static void on_receiver(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    const char *sig = evhttp_find_header(evhttp_request_get_input_headers(req),
                                         "X-Hub-Signature-256");
    cJSON *root, *entry, *change, *s, *code;

    (void)arg;
    if (body == NULL) {
        evhttp_send_reply(req, 500, "OOM", NULL);
        return;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    if (myna_signature_verify(E.key, sig, body, len, NULL) != MYNA_OK) {
        E.bad_sig++;
        free(body);
        evhttp_send_reply(req, 403, "Forbidden", NULL);
        return;
    }
    for (size_t i = 0; i < len; i++)   /* Meta's escaped wire form: ASCII only */
        if ((unsigned char)body[i] >= 0x80)
            E.non_ascii++;
    root = cJSON_ParseWithLength(body, len);
    free(body);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(root, "object")),
                        "whatsapp_business_account");
    cJSON_ArrayForEach(entry, cJSON_GetObjectItem(root, "entry")) {
    cJSON_ArrayForEach(change, cJSON_GetObjectItem(entry, "changes")) {
        cJSON *value = cJSON_GetObjectItem(change, "value");
        const char *pnid = STR(value, "metadata", "phone_number_id");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(change, "field")),
                            "messages");
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(value, "statuses")) {
            struct got_status *g;
            const char *op = STR(s, "biz_opaque_callback_data");
            assert_true(E.n_st < MAX_STATUSES);
            g = &E.st[E.n_st++];
            memset(g, 0, sizeof(*g));
            snprintf(g->wamid, sizeof(g->wamid), "%s", STR(s, "id"));
            snprintf(g->status, sizeof(g->status), "%s", STR(s, "status"));
            snprintf(g->recipient, sizeof(g->recipient), "%s", STR(s, "recipient_id"));
            snprintf(g->pnid, sizeof(g->pnid), "%s", pnid ? pnid : "");
            snprintf(g->opaque, sizeof(g->opaque), "%s", op ? op : "");
            assert_non_null(STR(s, "timestamp"));
            code = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "errors"), 0),
                                       "code");
            g->code = cJSON_IsNumber(code) ? code->valueint : 0;
        }
    }
    }
    cJSON_Delete(root);
    evhttp_send_reply(req, 200, "OK", NULL);
}

/* A Graph API that refuses the token and repeats it, as Meta does for a
 * malformed one: "Malformed access token EAA...". */
static void on_echo_token(struct evhttp_request *req, void *arg)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req),
                                          "Authorization");
    struct evbuffer *out = evbuffer_new();

    (void)arg;
    assert_non_null(auth);
    assert_non_null(out);
    assert_int_equal(strncmp(auth, "Bearer ", 7), 0);
    evbuffer_add_printf(out, "{\"error\":{\"message\":\"Malformed access token %s\","
                             "\"type\":\"OAuthException\",\"code\":190,"
                             "\"fbtrace_id\":\"%s\"}}", auth + 7, auth + 7);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, 400, "Bad Request", out);
    evbuffer_free(out);
}

static void on_fake_stderr(evutil_socket_t fd, short what, void *arg)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    (void)what;
    (void)arg;
    if (n > 0) {
        if (write(STDERR_FILENO, buf, (size_t)n) < 0)
            return;
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        event_del(E.err_ev);
    }
}

struct waiter {
    int (*cond)(void *);
    void *arg;
    int expired;
};

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((struct waiter *)arg)->expired = 1;
}

/* Runs the loop until cond(arg) or timeout_ms; 1 if cond held. */
static int run_until(int (*cond)(void *), void *arg, int timeout_ms)
{
    struct waiter w = { cond, arg, 0 };
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    struct event *deadline = evtimer_new(E.base, on_deadline, &w);

    assert_non_null(deadline);
    evtimer_add(deadline, &tv);
    while (!cond(arg) && !w.expired)
        event_base_loop(E.base, EVLOOP_ONCE);
    event_free(deadline);
    return cond(arg);
}

static int flag_set(void *arg)
{
    return *(int *)arg != 0;
}

struct ctl_call {
    int done;
    long status;
    char *body;
};

static void on_ctl(const struct myna_http_resp *resp, void *arg)
{
    struct ctl_call *c = arg;

    c->done = 1;
    c->status = resp->rc == MYNA_OK ? resp->status : -1;
    c->body = strdup(resp->body);
}

/* A control request to the fake; returns its body (free it). */
static char *ctl(const char *method, const char *path, const char *body, long want_status)
{
    struct ctl_call c = { 0, 0, NULL };
    struct myna_http_req req;
    char url[160];

    memset(&req, 0, sizeof(req));
    snprintf(url, sizeof(url), "%s%s", E.fake_url, path);
    req.method = method;
    req.url = url;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout_ms = 5000;
    assert_int_equal(myna_http_request(E.http, &req, on_ctl, &c, NULL), MYNA_OK);
    assert_true(run_until(flag_set, &c.done, 10000));
    if (c.status != want_status)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, c.status, want_status, c.body);
    return c.body;
}

static cJSON *fake_messages(void)
{
    char *s = ctl("GET", "/_fake/messages", NULL, 200);
    cJSON *arr = cJSON_Parse(s);

    free(s);
    assert_true(cJSON_IsArray(arr));
    return arr;
}

static void fault(const char *json)
{
    free(ctl("POST", "/_fake/faults", json, 200));
}

struct send_call {
    int n;
    struct myna_send_result r;
};

static void on_sent(const struct myna_send_result *r, void *arg)
{
    struct send_call *s = arg;

    s->n++;
    s->r = *r;
    E.n_callbacks++;
    assert_sane(r);
}

static int sent_once(void *arg)
{
    return ((struct send_call *)arg)->n > 0;
}

/* Posts body (freed) and waits for its one callback. */
static void send_on(struct myna_graph *g, char *body, long timeout_ms, struct send_call *s)
{
    struct myna_err err = MYNA_ERR_INIT;

    assert_non_null(body);
    memset(s, 0, sizeof(*s));
    assert_int_equal(myna_graph_post(g, body, timeout_ms, on_sent, s, &err), MYNA_OK);
    free(body);   /* copied by the post */
    E.n_posts++;
    assert_int_equal(s->n, 0);   /* never from inside the post */
    assert_true(run_until(sent_once, s, 15000));
    assert_int_equal(s->n, 1);
}

static struct myna_graph *graph(const char *token)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_graph *g = myna_graph_new(E.http, E.graph_url, PNID, token, &err);

    if (g == NULL)
        fail_msg("myna_graph_new: %s", err.msg);
    return g;
}

struct st_want {
    const char *wamid;
    int n;
};

static int statuses_for(void *arg)
{
    struct st_want *w = arg;
    int n = 0;

    for (int i = 0; i < E.n_st; i++)
        n += strcmp(E.st[i].wamid, w->wamid) == 0;
    return n >= w->n;
}

/* The statuses of wamid, in arrival order, as "sent,delivered,read". */
static void status_names(const char *wamid, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < E.n_st; i++)
        if (strcmp(E.st[i].wamid, wamid) == 0) {
            size_t l = strlen(out);
            snprintf(out + l, cap - l, "%s%s", l ? "," : "", E.st[i].status);
        }
}

/* A status carrying this biz_opaque_callback_data arrived; its index + 1. */
static int status_with_opaque(void *arg)
{
    for (int i = 0; i < E.n_st; i++)
        if (strcmp(E.st[i].opaque, arg) == 0)
            return i + 1;
    return 0;
}

static int spawn_fake(const char *receiver_url)
{
#ifdef MYNA_FAKE_GRAPH
    int p[2];
    char line[512];
    size_t have = 0;
    int port = 0;

    if (pipe(p) != 0)
        return -1;
    if ((E.pid = fork()) < 0)
        return -1;
    if (E.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive a crashed test */
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        execl(MYNA_FAKE_GRAPH, MYNA_FAKE_GRAPH, "--listen", "127.0.0.1:0", "--token", TOKEN,
              "--webhook", receiver_url, "--app-secret", SECRET, "--phone-number-id", PNID,
              (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    E.err_fd = p[0];
    /* the ready line, read with a deadline */
    while (port == 0) {
        struct pollfd pfd = { p[0], POLLIN, 0 };
        ssize_t n;
        char *nl, *at;
        if (poll(&pfd, 1, 10000) <= 0 || have >= sizeof(line) - 1)
            return -1;
        if ((n = read(p[0], line + have, sizeof(line) - 1 - have)) <= 0)
            return -1;
        have += (size_t)n;
        line[have] = '\0';
        if ((nl = strchr(line, '\n')) != NULL && (at = strstr(line, "event=ready public=")) &&
            sscanf(at, "event=ready public=127.0.0.1:%d", &port) != 1)
            return -1;
    }
    snprintf(E.fake_url, sizeof(E.fake_url), "http://127.0.0.1:%d", port);
    snprintf(E.graph_url, sizeof(E.graph_url), "%s/v25.0", E.fake_url);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    E.err_ev = event_new(E.base, p[0], EV_READ | EV_PERSIST, on_fake_stderr, NULL);
    return E.err_ev != NULL && event_add(E.err_ev, NULL) == 0 ? 0 : -1;
#else
    (void)receiver_url;
    return -1;
#endif
}

static int fake_setup(void **state)
{
    struct evhttp_bound_socket *bound;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char url[96];

    (void)state;
    memset(&E, 0, sizeof(E));
    E.err_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    E.base = event_base_new();
    assert_non_null(E.base);
    E.http = myna_http_client_new(E.base, NULL);
    E.key = myna_hmac_key_new(SECRET, strlen(SECRET), NULL);
    E.receiver = evhttp_new(E.base);
    assert_non_null(E.http);
    assert_non_null(E.key);
    assert_non_null(E.receiver);
    evhttp_set_gencb(E.receiver, on_receiver, NULL);
    bound = evhttp_bind_socket_with_handle(E.receiver, "127.0.0.1", 0);
    assert_non_null(bound);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &sl),
                     0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhook/acme", ntohs(sin.sin_port));
    snprintf(E.receiver_url, sizeof(E.receiver_url), "http://127.0.0.1:%d", ntohs(sin.sin_port));
    evhttp_set_cb(E.receiver, "/echo/" PNID "/messages", on_echo_token, NULL);
    if (spawn_fake(url) != 0) {
        fprintf(stderr, "test_graph: cannot start %s\n", "myna_fake_graph");
        return -1;
    }
    return 0;
}

static int fake_teardown(void **state)
{
    int status = 0, rc = 0;

    (void)state;
    if (E.pid > 0) {
        kill(E.pid, SIGTERM);
        waitpid(E.pid, &status, 0);
        /* a clean exit: under ASan that also means no leak in the fake */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "test_graph: myna_fake_graph ended with status %d\n", status);
            rc = -1;
        }
    }
    if (E.err_ev) {
        on_fake_stderr(E.err_fd, EV_READ, NULL);   /* its last lines */
        event_free(E.err_ev);
    }
    if (E.err_fd >= 0)
        close(E.err_fd);
    if (E.n_posts != E.n_callbacks) {
        fprintf(stderr, "test_graph: %ld posts, %ld callbacks\n", E.n_posts, E.n_callbacks);
        rc = -1;
    }
    myna_http_client_free(E.http);
    if (E.receiver)
        evhttp_free(E.receiver);
    myna_hmac_key_free(E.key);
    if (E.base)
        event_base_free(E.base);
    return rc;
}

/* Each client test starts from a clean fake and no statuses. */
static int fake_reset(void **state)
{
    (void)state;
    free(ctl("POST", "/_fake/reset", "", 200));
    E.n_st = 0;
    E.bad_sig = 0;
    E.non_ascii = 0;
    return 0;
}

static void test_client_send_text(void **state)
{
    struct myna_graph *g = graph(TOKEN);
    const char *text = "Мастер Артём свободен в 11:00 🙏 / ok";
    const char *opaque = "outbox:42/Ж";
    struct send_call s;
    struct st_want w;
    char names[128];
    cJSON *msgs;

    (void)state;
    send_on(g, myna_graph_text_body(ALEX, text, WAMID_IN, opaque, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_OK);
    assert_int_equal(s.r.http_status, 200);
    assert_int_equal(strncmp(s.r.wamid, "wamid.FAKE", 10), 0);
    assert_string_equal(s.r.wa_id, ALEX);

    /* exactly what was sent, once */
    msgs = fake_messages();
    assert_int_equal(cJSON_GetArraySize(msgs), 1);
    assert_string_equal(STR(msgs, "0", "wamid"), s.r.wamid);
    assert_string_equal(STR(msgs, "0", "body", "to"), "+" ALEX);
    assert_string_equal(STR(msgs, "0", "body", "text", "body"), text);
    assert_string_equal(STR(msgs, "0", "body", "context", "message_id"), WAMID_IN);
    assert_string_equal(STR(msgs, "0", "body", "biz_opaque_callback_data"), opaque);
    cJSON_Delete(msgs);

    /* sent, delivered, read: signed, in order, Meta's envelope, escaped wire form */
    w.wamid = s.r.wamid;
    w.n = 3;
    assert_true(run_until(statuses_for, &w, 10000));
    status_names(s.r.wamid, names, sizeof(names));
    assert_string_equal(names, "sent,delivered,read");
    for (int i = 0; i < E.n_st; i++) {
        if (strcmp(E.st[i].wamid, s.r.wamid) != 0)
            continue;   /* a straggler of an earlier test */
        assert_string_equal(E.st[i].recipient, ALEX);
        assert_string_equal(E.st[i].pnid, PNID);
        assert_string_equal(E.st[i].opaque, opaque);   /* echoed, decoded from \u escapes */
    }
    assert_int_equal(E.bad_sig, 0);
    assert_int_equal(E.non_ascii, 0);
    myna_graph_free(g);
}

static void test_client_interactive_and_read(void **state)
{
    struct myna_graph *g = graph(TOKEN);
    const char *ids[] = { "yes", "no" }, *titles[] = { "Да", "Нет" };
    struct send_call s1, s2, s3;
    char *reads;
    cJSON *msgs, *arr;

    (void)state;
    send_on(g, myna_graph_buttons_body(ALEX, "Подтвердить?", ids, titles, 2, NULL, NULL), 5000,
            &s1);
    assert_int_equal(s1.r.cls, MYNA_SEND_OK);
    send_on(g, myna_graph_list_body(ALEX, "Услуги", "Выбрать", ids, titles, NULL, 2, NULL, NULL),
            5000, &s2);
    assert_int_equal(s2.r.cls, MYNA_SEND_OK);
    assert_string_not_equal(s1.r.wamid, s2.r.wamid);
    send_on(g, myna_graph_read_body(WAMID_IN, 1, NULL), 5000, &s3);
    assert_int_equal(s3.r.cls, MYNA_SEND_OK);
    assert_string_equal(s3.r.wamid, "");   /* {"success":true} */

    msgs = fake_messages();
    assert_int_equal(cJSON_GetArraySize(msgs), 2);   /* a read is not a send */
    assert_string_equal(STR(msgs, "0", "body", "interactive", "type"), "button");
    assert_string_equal(STR(msgs, "1", "body", "interactive", "type"), "list");
    cJSON_Delete(msgs);
    reads = ctl("GET", "/_fake/reads", NULL, 200);
    arr = cJSON_Parse(reads);
    free(reads);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_string_equal(STR(arr, "0", "message_id"), WAMID_IN);
    assert_string_equal(STR(arr, "0", "typing_indicator", "type"), "text");
    cJSON_Delete(arr);
    myna_graph_free(g);
}

/* Bodies our builders never make: the fake answers like Meta, the sender
 * keeps the error and does not retry. */
static void test_client_invalid_bodies(void **state)
{
    struct myna_graph *g = graph(TOKEN);
    struct send_call s;
    char *long_text = rep(CYR, 4097), body[10000];

    (void)state;
    snprintf(body, sizeof(body), "{\"messaging_product\":\"whatsapp\",\"to\":\"+%s\","
                                 "\"type\":\"text\",\"text\":{\"body\":\"%s\"}}", ALEX, long_text);
    free(long_text);
    send_on(g, strdup(body), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_FAILED);
    assert_int_equal(s.r.error_code, 100);
    assert_non_null(strstr(s.r.error, "at most 4096 characters"));
    assert_true(s.r.fbtrace_id[0] != '\0');

    send_on(g, strdup("{\"messaging_product\":\"whatsapp\",\"to\":\"+79161234567\",\"type\":"
                      "\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":"
                      "\"x\"},\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"a\","
                      "\"title\":\"A\"}},{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":"
                      "\"A\"}}]}}}"),
            5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_FAILED);
    assert_int_equal(s.r.error_code, 131009);
    assert_non_null(strstr(s.r.error, "Button title is not unique"));

    send_on(g, strdup("{\"to\":\"+79161234567\",\"text\":{\"body\":\"x\"}}"), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_FAILED);
    assert_int_equal(s.r.error_code, 100);
    assert_non_null(strstr(s.r.error, "messaging_product"));

    send_on(g, strdup("not json"), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_FAILED);

    {   /* none of them was recorded */
        cJSON *msgs = fake_messages();
        assert_int_equal(cJSON_GetArraySize(msgs), 0);
        cJSON_Delete(msgs);
    }
    myna_graph_free(g);
}

static void test_client_wrong_token(void **state)
{
    struct myna_graph *g = graph("EAAGwrongToken987654321");
    struct send_call s;
    cJSON *msgs;

    (void)state;
    send_on(g, myna_graph_text_body(ALEX, "hi", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_AUTH);
    assert_int_equal(s.r.error_code, 190);
    assert_int_equal(s.r.http_status, 401);
    assert_null(strstr(s.r.error, "EAAGwrongToken987654321"));
    msgs = fake_messages();
    assert_int_equal(cJSON_GetArraySize(msgs), 0);
    cJSON_Delete(msgs);
    myna_graph_free(g);
}

static void test_client_faults(void **state)
{
    static const struct {
        const char *fault;
        enum myna_send_class cls;
        int code;
        long http;
        const char *error;
    } table[] = {
        { "{\"code\":131056,\"http\":400}", MYNA_SEND_RETRY_PAIR, 131056, 400, "pair rate limit" },
        { "{\"code\":130429,\"http\":400}", MYNA_SEND_RETRY, 130429, 400, "Rate limit hit" },
        { "{\"code\":131047,\"http\":400}", MYNA_SEND_WINDOW_CLOSED, 131047, 400, "24 hours" },
        { "{\"code\":190,\"http\":401}", MYNA_SEND_AUTH, 190, 401, "Session has expired" },
        { "{\"code\":131026}", MYNA_SEND_FAILED, 131026, 400, "Message undeliverable" },
        { "{\"code\":131000,\"http\":500}", MYNA_SEND_RETRY, 131000, 500, "Something went wrong" },
        { "{\"code\":133004,\"http\":503}", MYNA_SEND_RETRY, 133004, 503, "temporarily" },
        { "{\"code\":4,\"http\":400}", MYNA_SEND_RETRY, 4, 400, "(#4)" },
        { "{\"code\":368,\"http\":403}", MYNA_SEND_LOCKED, 368, 403, "(#368)" },
        { "{\"code\":131031,\"http\":400}", MYNA_SEND_LOCKED, 131031, 400, "(#131031)" },
        { "{\"http\":500}", MYNA_SEND_RETRY, -1, 500, "HTTP 500 without a Graph API error" },
        { "{\"http\":503}", MYNA_SEND_RETRY, -1, 503, "not JSON" },
        { "{\"http\":404}", MYNA_SEND_AUTH, -1, 404, "HTTP 404" },
        { "{\"http\":407}", MYNA_SEND_AUTH, -1, 407, "HTTP 407 without a Graph API error" },
        { "{\"http\":400}", MYNA_SEND_FAILED, -1, 400, "HTTP 400" },
    };
    struct myna_graph *g = graph(TOKEN);
    struct send_call s;
    cJSON *msgs;

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        fault(table[i].fault);
        send_on(g, myna_graph_text_body(ALEX, "hi", NULL, NULL, NULL), 5000, &s);
        if (s.r.cls != table[i].cls)
            fail_msg("fault %s: class %d, want %d (%s)", table[i].fault, s.r.cls, table[i].cls,
                     s.r.error);
        assert_int_equal(s.r.error_code, table[i].code);
        assert_int_equal(s.r.http_status, table[i].http);
        assert_int_equal(s.r.transport_failed, 0);
        if (strstr(s.r.error, table[i].error) == NULL)
            fail_msg("fault %s: error '%s' lacks '%s'", table[i].fault, s.r.error,
                     table[i].error);
    }
    /* count: the next two sends fail, the third goes through */
    fault("{\"code\":131056,\"http\":400,\"count\":2}");
    send_on(g, myna_graph_text_body(ALEX, "1", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_RETRY_PAIR);
    send_on(g, myna_graph_text_body(ALEX, "2", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_RETRY_PAIR);
    send_on(g, myna_graph_text_body(ALEX, "3", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_OK);
    /* nothing refused was recorded, the accepted one once */
    msgs = fake_messages();
    assert_int_equal(cJSON_GetArraySize(msgs), 1);
    assert_string_equal(STR(msgs, "0", "body", "text", "body"), "3");
    assert_string_equal(STR(msgs, "0", "wamid"), s.r.wamid);
    cJSON_Delete(msgs);
    /* the fake refuses malformed faults */
    free(ctl("POST", "/_fake/faults", "{\"codee\":1}", 400));
    free(ctl("POST", "/_fake/faults", "{\"count\":2}", 400));
    myna_graph_free(g);
}

/* A connection dropped without an answer. On a REUSED connection libcurl
 * would resend the request by itself (and turn the drop into an OK, or
 * into a second message); graph posts leave at most once (send_once), so
 * it is a transport failure that may have reached Meta. */
static void test_client_drop(void **state)
{
    struct myna_graph *g;
    struct send_call s;
    cJSON *msgs;

    (void)state;
    g = graph(TOKEN);
    send_on(g, myna_graph_text_body(ALEX, "first", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_OK);  /* the connection is open now */
    fault("{\"drop\":1}");
    send_on(g, myna_graph_text_body(ALEX, "dropped", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_RETRY);
    assert_int_equal(s.r.transport_failed, 1);
    assert_int_equal(s.r.maybe_sent, 1);
    assert_int_equal(s.r.timed_out, 0);
    assert_int_equal(s.r.http_status, 0);
    assert_int_equal(s.r.error_code, -1);
    assert_non_null(strstr(s.r.error, "transport failure"));
    myna_graph_free(g);
    msgs = fake_messages();
    assert_int_equal(cJSON_GetArraySize(msgs), 1);  /* "first" only */
    cJSON_Delete(msgs);
}

static void test_client_timeout(void **state)
{
    struct myna_graph *g = graph(TOKEN);
    struct send_call s;
    cJSON *msgs;
    int i;

    (void)state;
    fault("{\"delay_ms\":1000}");
    send_on(g, myna_graph_text_body(ALEX, "late", NULL, "late:1", NULL), 200, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_RETRY);
    assert_int_equal(s.r.transport_failed, 1);
    assert_int_equal(s.r.timed_out, 1);
    assert_string_equal(s.r.error, "no answer from the Graph API within 200 ms");
    /* a timeout is an unknown outcome: the fake, like Meta, sent it anyway */
    assert_true(run_until(status_with_opaque, (void *)"late:1", 10000));
    i = status_with_opaque((void *)"late:1") - 1;
    assert_string_equal(E.st[i].status, "sent");
    msgs = fake_messages();
    assert_int_equal(cJSON_GetArraySize(msgs), 1);
    assert_string_equal(STR(msgs, "0", "wamid"), E.st[i].wamid);
    assert_string_equal(STR(msgs, "0", "body", "text", "body"), "late");
    cJSON_Delete(msgs);
    /* a delay shorter than the timeout is just slow */
    fault("{\"delay_ms\":100}");
    send_on(g, myna_graph_text_body(ALEX, "slow", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_OK);
    myna_graph_free(g);
}

static void test_client_status_fail(void **state)
{
    struct myna_graph *g = graph(TOKEN);
    struct send_call s;
    struct st_want w;
    char names[128];

    (void)state;
    fault("{\"status_fail\":131047}");
    send_on(g, myna_graph_text_body(ALEX, "hi", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_OK);   /* accepted; the failure comes later (D12) */
    w.wamid = s.r.wamid;
    w.n = 2;
    assert_true(run_until(statuses_for, &w, 10000));
    status_names(s.r.wamid, names, sizeof(names));
    assert_string_equal(names, "sent,failed");   /* the chain ends at failed */
    for (int i = 0; i < E.n_st; i++)
        if (strcmp(E.st[i].wamid, s.r.wamid) == 0 && strcmp(E.st[i].status, "failed") == 0)
            assert_int_equal(E.st[i].code, 131047);
    assert_int_equal(E.bad_sig, 0);
    myna_graph_free(g);
}

static void test_client_connection_refused(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct myna_graph *g;
    struct send_call s;
    char url[64];

    (void)state;
    /* a port that was just ours and is closed now */
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v25.0", ntohs(sin.sin_port));
    g = myna_graph_new(E.http, url, PNID, TOKEN, &err);
    assert_non_null(g);
    send_on(g, myna_graph_text_body(ALEX, "hi", NULL, NULL, NULL), 5000, &s);
    assert_int_equal(s.r.cls, MYNA_SEND_RETRY);
    assert_int_equal(s.r.transport_failed, 1);
    assert_int_equal(s.r.timed_out, 0);
    myna_graph_free(g);
}

/* A token the answer repeats is never in the result, not even the start
 * of one too long for the error text. */
static void test_client_token_echoed(void **state)
{
    static const size_t lens[] = { 40, 200, 226, 229, 232, 233, 240, 300, 1000 };
    struct myna_err err = MYNA_ERR_INIT;
    char url[96];

    (void)state;
    snprintf(url, sizeof(url), "%s/echo", E.receiver_url);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *token = malloc(lens[i] + 1), head[9];
        struct myna_graph *g;
        struct send_call s;

        assert_non_null(token);
        for (size_t j = 0; j < lens[i]; j++)
            token[j] = "EAAGbcdefghijkmnopqrstuvwxyz0123456789ZXCV"[(j * 5 + i) % 42];
        token[lens[i]] = '\0';
        memcpy(head, token, 8);
        head[8] = '\0';
        g = myna_graph_new(E.http, url, PNID, token, &err);
        assert_non_null(g);
        send_on(g, myna_graph_text_body(ALEX, "hi", NULL, NULL, NULL), 5000, &s);
        assert_int_equal(s.r.cls, MYNA_SEND_AUTH);
        assert_int_equal(s.r.error_code, 190);
        if (strstr(s.r.error, head) != NULL || strstr(s.r.fbtrace_id, head) != NULL)
            fail_msg("a %zu-byte token shows in error '%s' or trace '%s'", lens[i], s.r.error,
                     s.r.fbtrace_id);
        assert_int_equal(strncmp(s.r.error, "Malformed access token [token]", 30), 0);
        myna_graph_free(g);
        free(token);
    }
    {   /* a token shorter than its mark, found again inside "[token]" */
        struct myna_graph *g = myna_graph_new(E.http, url, PNID, "token", &err);
        struct send_call s;

        assert_non_null(g);
        send_on(g, myna_graph_text_body(ALEX, "hi", NULL, NULL, NULL), 5000, &s);
        assert_int_equal(s.r.error_code, 190);
        assert_string_equal(s.r.error, "Malformed access [token] [token]");
        assert_string_equal(s.r.fbtrace_id, "[token]");
        myna_graph_free(g);
    }
}

static int http_idle(void *arg)
{
    (void)arg;
    return myna_http_inflight(E.http) == 0;
}

static void never_called(const struct myna_send_result *r, void *arg)
{
    (void)r;
    (void)arg;
    fail_msg("callback of a freed graph ran");
}

/* Freeing the graph with sends in flight: no callback, no leak, no use
 * after free, whether the HTTP client answers later or is freed first. */
static void test_client_free_in_flight(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_graph *g = graph(TOKEN);
    struct myna_http_client *other;
    char *body = myna_graph_text_body(ALEX, "orphan", NULL, NULL, NULL);

    (void)state;
    fault("{\"delay_ms\":50}");
    assert_int_equal(myna_graph_post(g, body, 5000, never_called, NULL, &err), MYNA_OK);
    myna_graph_free(g);
    assert_true(run_until(http_idle, NULL, 10000));

    other = myna_http_client_new(E.base, NULL);
    assert_non_null(other);
    g = myna_graph_new(other, E.graph_url, PNID, TOKEN, &err);
    assert_non_null(g);
    assert_int_equal(myna_graph_post(g, body, 5000, never_called, NULL, &err), MYNA_OK);
    myna_http_client_free(other);   /* cancels without callbacks */
    myna_graph_free(g);
    free(body);
}

static void test_client_bad_arguments(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_graph *g = graph(TOKEN);
    struct send_call s;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(myna_graph_post(g, NULL, 0, on_sent, &s, &err), MYNA_EINVAL);
    assert_int_equal(myna_graph_post(g, "", 0, on_sent, &s, &err), MYNA_EINVAL);
    assert_int_equal(myna_graph_post(g, "{}", 0, NULL, &s, &err), MYNA_EINVAL);
    assert_int_equal(myna_graph_post(NULL, "{}", 0, on_sent, &s, &err), MYNA_EINVAL);
    assert_int_equal(s.n, 0);
    myna_graph_free(g);
    myna_graph_free(NULL);

    assert_null(myna_graph_new(NULL, E.graph_url, PNID, TOKEN, &err));
    assert_null(myna_graph_new(E.http, "ftp://x", PNID, TOKEN, &err));
    assert_non_null(strstr(err.msg, "graph_url must start with"));
    assert_int_equal(err.code, MYNA_ECONFIG);  /* a bot exits 2 for it: not restarted */
    assert_null(myna_graph_new(E.http, "https://graph.facebook.com/v25.0/", PNID, TOKEN, &err));
    assert_non_null(strstr(err.msg, "must not end with '/'"));
    assert_null(myna_graph_new(E.http, "https://graph.facebook.com/v25 .0", PNID, TOKEN, &err));
    assert_null(myna_graph_new(E.http, E.graph_url, "48151x", TOKEN, &err));
    assert_non_null(strstr(err.msg, "phone_number_id"));
    assert_null(myna_graph_new(E.http, E.graph_url, "", TOKEN, &err));
    assert_null(myna_graph_new(E.http, E.graph_url, PNID, "", &err));
    assert_null(myna_graph_new(E.http, E.graph_url, PNID, "EAAG secret\r\nX: y", &err));
    assert_non_null(strstr(err.msg, "access_token"));
    assert_int_equal(err.code, MYNA_ECONFIG);
    assert_null(strstr(err.msg, "secret"));   /* never the token's value */
    assert_null(myna_graph_new(E.http, E.graph_url, PNID, NULL, &err));
}

#define FAKE_TEST(f) cmocka_unit_test_setup(f, fake_reset)

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_text_body),
        cmocka_unit_test(test_text_limits),
        cmocka_unit_test(test_recipient),
        cmocka_unit_test(test_buttons_body),
        cmocka_unit_test(test_buttons_limits),
        cmocka_unit_test(test_list_body),
        cmocka_unit_test(test_list_limits),
        cmocka_unit_test(test_read_body),
        cmocka_unit_test(test_classify_fixtures),
        cmocka_unit_test(test_classify_codes),
        cmocka_unit_test(test_classify_success_shapes),
        cmocka_unit_test(test_classify_no_graph_error),
        cmocka_unit_test(test_classify_bare_refusal_of_every_request),
        cmocka_unit_test(test_classify_hostile),
        cmocka_unit_test(test_code_class_and_number_limits),
        cmocka_unit_test(test_backoff),
    };
    const struct CMUnitTest client[] = {
        FAKE_TEST(test_client_send_text),
        FAKE_TEST(test_client_interactive_and_read),
        FAKE_TEST(test_client_invalid_bodies),
        FAKE_TEST(test_client_wrong_token),
        FAKE_TEST(test_client_faults),
        FAKE_TEST(test_client_drop),
        FAKE_TEST(test_client_timeout),
        FAKE_TEST(test_client_status_fail),
        FAKE_TEST(test_client_connection_refused),
        FAKE_TEST(test_client_token_echoed),
        FAKE_TEST(test_client_free_in_flight),
        FAKE_TEST(test_client_bad_arguments),
    };
    int failed = cmocka_run_group_tests_name("graph", pure, NULL, NULL);

#ifdef MYNA_FAKE_GRAPH
    failed += cmocka_run_group_tests_name("graph_client", client, fake_setup, fake_teardown);
#else
    (void)client;
    (void)fake_setup;
    (void)fake_teardown;
    fprintf(stderr, "test_graph: MYNA_FAKE_GRAPH (the path of myna_fake_graph) is not defined: "
                    "the client tests did not run\n");
#endif
    return failed;
}
