/* test_sim.c - the simulator's pure parts (wa/sim.h): the page's send and
 * the bot's Graph request at every limit (in code points: Cyrillic and
 * emoji), the webhooks they become read back by the real Cloud parser, the
 * conversation log (statuses only move forward, read receipts, typing, the
 * ring) rendered and parsed back with cJSON, and the defaults of sim
 * instances in a mkdtemp directory (the key file, derived secrets, the fake
 * Graph URL).
 *
 * Every failing parse must leave its output empty, so that a release after
 * a failure is harmless; the Asan build catches leaks and reads past the
 * bodies, which are parsed from exact-size heap copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tmpdir.h"

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "store/record.h"
#include "wa/cloud.h"
#include "wa/graph.h"
#include "wa/instance.h"
#include "wa/sim.h"
#include "core/banned.h"

#define ALEX "79161234567"
#define MARINA "79037654321"
#define CYR "\xd0\xaf"            /* 'Я': 2 bytes, 1 code point */
#define EMOJI "\xf0\x9f\x98\x80"  /* U+1F600: 4 bytes, 1 code point */

/* ---- helpers ---- */

static void assert_contains(const char *hay, const char *needle)
{
    if (hay == NULL || strstr(hay, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", hay ? hay : "(null)", needle);
}

/* unit repeated n times (malloc). */
static char *rep(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

/* cJSON root printed compactly (root deleted here, result malloc). */
static char *print_take(cJSON *root)
{
    char *s;

    assert_non_null(root);
    s = cJSON_PrintUnformatted(root);
    assert_non_null(s);
    cJSON_Delete(root);
    return s;
}

static int send_parse(const char *body, size_t len, struct myna_sim_send *s,
                      struct myna_err *err)
{
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, body, len);
    memset(s, 0x5a, sizeof(*s));  /* the parser must reset *out */
    rc = myna_sim_send_parse(copy, len, s, err);
    memset(copy, 0xa5, len);
    free(copy);
    return rc;
}

/* body must parse; the caller releases s. */
static void send_ok(const char *body, struct myna_sim_send *s)
{
    struct myna_err err = MYNA_ERR_INIT;
    int rc = send_parse(body, strlen(body), s, &err);

    if (rc != MYNA_OK)
        fail_msg("send %.200s refused: %d %s", body, rc, err.msg);
    assert_int_equal(err.code, 0);  /* untouched on success */
}

static void assert_send_empty(const struct myna_sim_send *s)
{
    assert_null(s->text);
    assert_null(s->reply_id);
    assert_null(s->reply_title);
    assert_null(s->reply_description);
    assert_string_equal(s->from, "");
    assert_string_equal(s->name, "");
    assert_string_equal(s->context, "");
}

static void send_fails_len(const char *body, size_t len, int code, const char *want)
{
    struct myna_sim_send s;
    struct myna_err err = MYNA_ERR_INIT;
    int rc = send_parse(body, len, &s, &err);

    if (rc != code)
        fail_msg("send %.200s: expected %d, got %d (%s)", body, code, rc, err.msg);
    assert_int_equal(err.code, code);
    assert_contains(err.msg, want);
    assert_send_empty(&s);
    myna_sim_send_release(&s);  /* harmless after a failure */
}

static void send_fails(const char *body, int code, const char *want)
{
    send_fails_len(body, strlen(body), code, want);
}

static int graph_parse(const char *body, size_t len, struct myna_sim_graph_req *r, int *code,
                       char *msg, size_t cap)
{
    char *copy = malloc(len > 0 ? len : 1);
    int st;

    assert_non_null(copy);
    memcpy(copy, body, len);
    memset(r, 0x5a, sizeof(*r));
    *code = -7;
    msg[0] = '\0';
    st = myna_sim_graph_parse(copy, len, r, code, msg, cap);
    memset(copy, 0xa5, len);
    free(copy);
    return st;
}

static void graph_ok(const char *body, struct myna_sim_graph_req *r)
{
    char msg[256];
    int code;
    int st = graph_parse(body, strlen(body), r, &code, msg, sizeof(msg));

    if (st != 0)
        fail_msg("graph %.200s refused: %d code %d %s", body, st, code, msg);
}

static void graph_fails_len(const char *body, size_t len, int want_code, const char *want)
{
    struct myna_sim_graph_req r;
    char msg[256];
    int code;
    int st = graph_parse(body, len, &r, &code, msg, sizeof(msg));

    if (st != 400)
        fail_msg("graph %.200s: expected 400, got %d", body, st);
    if (code != want_code)
        fail_msg("graph %.200s: expected code %d, got %d (%s)", body, want_code, code, msg);
    if (want)
        assert_contains(msg, want);
    assert_true(msg[0] != '\0');
    assert_null(r.text);
    assert_null(r.extra);
    assert_null(r.opaque);
    myna_sim_graph_release(&r);
}

static void graph_fails(const char *body, int want_code, const char *want)
{
    graph_fails_len(body, strlen(body), want_code, want);
}

/* extra must be a fragment that makes a JSON object when wrapped in braces
 * (the page's event object); returns that object (caller deletes). */
static cJSON *wrap_extra(const char *extra)
{
    size_t n;
    char *s;
    cJSON *j;

    assert_non_null(extra);
    n = strlen(extra);
    s = malloc(n + 3);
    assert_non_null(s);
    s[0] = '{';
    memcpy(s + 1, extra, n);
    s[n + 1] = '}';
    s[n + 2] = '\0';
    j = cJSON_Parse(s);
    if (j == NULL || !cJSON_IsObject(j))
        fail_msg("extra '%s' is not a JSON object fragment", extra);
    free(s);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* A graph text message to ALEX with the given text body (escaped by cJSON). */
static char *graph_text(const char *text)
{
    cJSON *o = cJSON_CreateObject(), *t;

    assert_non_null(o);
    cJSON_AddStringToObject(o, "messaging_product", "whatsapp");
    cJSON_AddStringToObject(o, "to", ALEX);
    cJSON_AddStringToObject(o, "type", "text");
    t = cJSON_AddObjectToObject(o, "text");
    cJSON_AddStringToObject(t, "body", text);
    return print_take(o);
}

/* An interactive button message with n buttons: ids[i], titles[i] and
 * types[i] (NULL: no "type"). */
static char *graph_buttons_v(int n, const char *const *ids, const char *const *titles,
                             const char *const *types)
{
    cJSON *o = cJSON_CreateObject(), *ia, *body, *action, *arr;

    assert_non_null(o);
    cJSON_AddStringToObject(o, "messaging_product", "whatsapp");
    cJSON_AddStringToObject(o, "recipient_type", "individual");
    cJSON_AddStringToObject(o, "to", ALEX);
    cJSON_AddStringToObject(o, "type", "interactive");
    ia = cJSON_AddObjectToObject(o, "interactive");
    cJSON_AddStringToObject(ia, "type", "button");
    body = cJSON_AddObjectToObject(ia, "body");
    cJSON_AddStringToObject(body, "text", "Pick one");
    action = cJSON_AddObjectToObject(ia, "action");
    arr = cJSON_AddArrayToObject(action, "buttons");
    for (int i = 0; i < n; i++) {
        cJSON *b = cJSON_CreateObject(), *reply;
        if (types[i])
            cJSON_AddStringToObject(b, "type", types[i]);
        reply = cJSON_AddObjectToObject(b, "reply");
        cJSON_AddStringToObject(reply, "id", ids[i]);
        cJSON_AddStringToObject(reply, "title", titles[i]);
        cJSON_AddItemToArray(arr, b);
    }
    return print_take(o);
}

/* n reply buttons with ids b0, b1...: the first titled title, the others
 * "Other 1", "Other 2"... (titles must differ). */
static char *graph_buttons(int n, const char *title)
{
    const char *ids[8], *titles[8], *types[8];
    char idv[8][16], tv[8][24];

    assert_true(n >= 0 && n <= 8);
    for (int i = 0; i < n; i++) {
        snprintf(idv[i], sizeof(idv[i]), "b%d", i);
        snprintf(tv[i], sizeof(tv[i]), "Other %d", i);
        ids[i] = idv[i];
        titles[i] = i == 0 ? title : tv[i];
        types[i] = "reply";
    }
    return graph_buttons_v(n, ids, titles, types);
}

/* An interactive list with sections of rows[i] rows each; desc on every row
 * (NULL: none). */
static char *graph_list(const int *rows, int n_sections, const char *desc)
{
    cJSON *o = cJSON_CreateObject(), *ia, *body, *action, *secs;
    int k = 0;

    assert_non_null(o);
    cJSON_AddStringToObject(o, "messaging_product", "whatsapp");
    cJSON_AddStringToObject(o, "to", ALEX);
    cJSON_AddStringToObject(o, "type", "interactive");
    ia = cJSON_AddObjectToObject(o, "interactive");
    cJSON_AddStringToObject(ia, "type", "list");
    body = cJSON_AddObjectToObject(ia, "body");
    cJSON_AddStringToObject(body, "text", "Our services");
    action = cJSON_AddObjectToObject(ia, "action");
    cJSON_AddStringToObject(action, "button", "Choose");
    secs = cJSON_AddArrayToObject(action, "sections");
    for (int s = 0; s < n_sections; s++) {
        cJSON *sec = cJSON_CreateObject(), *arr;
        char title[32];
        snprintf(title, sizeof(title), "Section %d", s);
        cJSON_AddStringToObject(sec, "title", title);
        arr = cJSON_AddArrayToObject(sec, "rows");
        for (int r = 0; r < rows[s]; r++, k++) {
            cJSON *row = cJSON_CreateObject();
            char id[32], t[32];
            snprintf(id, sizeof(id), "row-%d", k);
            snprintf(t, sizeof(t), "Row %d", k);
            cJSON_AddStringToObject(row, "id", id);
            cJSON_AddStringToObject(row, "title", t);
            if (desc)
                cJSON_AddStringToObject(row, "description", desc);
            cJSON_AddItemToArray(arr, row);
        }
        cJSON_AddItemToArray(secs, sec);
    }
    return print_take(o);
}

/* The instances file json must parse into set (caller releases). */
static void sim_set(struct myna_instance_set *set, const char *json)
{
    struct myna_err err = MYNA_ERR_INIT;

    if (myna_instances_parse(json, strlen(json), set, &err) != MYNA_OK)
        fail_msg("instances %s refused: %s", json, err.msg);
}

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- the page's send: valid ---- */

static void test_sim_send_text(void **state)
{
    struct myna_sim_send s;

    (void)state;
    send_ok("{\"from\":\"" ALEX "\",\"name\":\"Alex\",\"text\":\"Hello there\"}", &s);
    assert_int_equal(s.kind, MYNA_SIM_TEXT);
    assert_string_equal(s.from, ALEX);
    assert_string_equal(s.name, "Alex");
    assert_string_equal(s.text, "Hello there");
    assert_null(s.reply_id);
    assert_null(s.reply_title);
    assert_null(s.reply_description);
    assert_string_equal(s.context, "");
    myna_sim_send_release(&s);
    assert_null(s.text);
    myna_sim_send_release(&s);  /* twice is fine */

    /* name may be left out; "+digits" loses its plus; context with text */
    send_ok("{\"text\":\"" CYR "\",\"from\":\"+123\",\"context\":\"wamid.ABC=\"}", &s);
    assert_string_equal(s.from, "123");
    assert_string_equal(s.name, "");
    assert_string_equal(s.text, CYR);
    assert_string_equal(s.context, "wamid.ABC=");
    myna_sim_send_release(&s);

    /* 15 digits is the longest number */
    send_ok("{\"from\":\"123456789012345\",\"text\":\"x\"}", &s);
    assert_string_equal(s.from, "123456789012345");
    myna_sim_send_release(&s);

    /* escapes are decoded */
    send_ok("{\"from\":\"1\",\"text\":\"a\\\"b\\\\c\\n\\u0416\"}", &s);
    assert_string_equal(s.text, "a\"b\\c\n\xd0\x96");
    myna_sim_send_release(&s);
}

static void test_sim_send_button(void **state)
{
    struct myna_sim_send s;

    (void)state;
    send_ok("{\"from\":\"" ALEX "\",\"name\":\"Alex\",\"button\":{\"id\":\"yes-1\",\"title\":\"Yes\"},"
            "\"context\":\"wamid.SIMAAAA\"}",
            &s);
    assert_int_equal(s.kind, MYNA_SIM_BUTTON);
    assert_null(s.text);
    assert_string_equal(s.reply_id, "yes-1");
    assert_string_equal(s.reply_title, "Yes");
    assert_null(s.reply_description);
    assert_string_equal(s.context, "wamid.SIMAAAA");
    myna_sim_send_release(&s);

    /* a button has no description even when one is sent */
    send_ok("{\"from\":\"1\",\"button\":{\"id\":\"a\",\"title\":\"b\",\"description\":\"d\"}}", &s);
    assert_int_equal(s.kind, MYNA_SIM_BUTTON);
    assert_null(s.reply_description);
    myna_sim_send_release(&s);
}

static void test_sim_send_list(void **state)
{
    struct myna_sim_send s;

    (void)state;
    send_ok("{\"from\":\"" MARINA "\",\"name\":\"Marina\",\"list\":{\"id\":\"cut\",\"title\":"
            "\"Haircut\",\"description\":\"30 min, 1500 rub\"},\"context\":\"wamid.L\"}",
            &s);
    assert_int_equal(s.kind, MYNA_SIM_LIST);
    assert_string_equal(s.from, MARINA);
    assert_string_equal(s.name, "Marina");
    assert_string_equal(s.reply_id, "cut");
    assert_string_equal(s.reply_title, "Haircut");
    assert_string_equal(s.reply_description, "30 min, 1500 rub");
    assert_string_equal(s.context, "wamid.L");
    myna_sim_send_release(&s);

    /* without description, or with an empty one: NULL */
    send_ok("{\"from\":\"1\",\"list\":{\"id\":\"a\",\"title\":\"b\"}}", &s);
    assert_int_equal(s.kind, MYNA_SIM_LIST);
    assert_null(s.reply_description);
    myna_sim_send_release(&s);
    send_ok("{\"from\":\"1\",\"list\":{\"id\":\"a\",\"title\":\"b\",\"description\":\"\"}}", &s);
    assert_null(s.reply_description);
    myna_sim_send_release(&s);
}

static void test_sim_send_limits(void **state)
{
    struct myna_sim_send s;
    char *t, *body;
    cJSON *o, *btn;

    (void)state;
    /* 4096 Cyrillic letters (8192 bytes) are 4096 characters */
    t = rep(CYR, 4096);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", ALEX);
    cJSON_AddStringToObject(o, "text", t);
    body = print_take(o);
    send_ok(body, &s);
    assert_string_equal(s.text, t);
    myna_sim_send_release(&s);
    free(body);
    free(t);

    /* 4097 are too many; so are 4097 ASCII letters */
    t = rep(CYR, 4097);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", ALEX);
    cJSON_AddStringToObject(o, "text", t);
    body = print_take(o);
    send_fails(body, MYNA_EINVAL, "'text' must be 1 to 4096 characters");
    free(body);
    free(t);
    t = rep("a", 4097);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", ALEX);
    cJSON_AddStringToObject(o, "text", t);
    body = print_take(o);
    send_fails(body, MYNA_EINVAL, "'text'");
    free(body);
    free(t);

    /* a name of 64 emoji (256 bytes) fits; 65 characters do not */
    t = rep(EMOJI, 64);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", ALEX);
    cJSON_AddStringToObject(o, "name", t);
    cJSON_AddStringToObject(o, "text", "hi");
    body = print_take(o);
    send_ok(body, &s);
    assert_string_equal(s.name, t);
    myna_sim_send_release(&s);
    free(body);
    free(t);
    t = rep("n", 65);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", ALEX);
    cJSON_AddStringToObject(o, "name", t);
    cJSON_AddStringToObject(o, "text", "hi");
    body = print_take(o);
    send_fails(body, MYNA_EINVAL, "'name' must be a string of at most 64 characters");
    free(body);
    free(t);

    /* a title of 24 Cyrillic letters fits, 25 letters do not */
    t = rep(CYR, 24);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", ALEX);
    btn = cJSON_AddObjectToObject(o, "button");
    cJSON_AddStringToObject(btn, "id", "x");
    cJSON_AddStringToObject(btn, "title", t);
    body = print_take(o);
    send_ok(body, &s);
    assert_string_equal(s.reply_title, t);
    myna_sim_send_release(&s);
    free(body);
    free(t);
    send_fails("{\"from\":\"1\",\"button\":{\"id\":\"x\",\"title\":\"abcdefghijklmnopqrstuvwxy\"}}",
               MYNA_EINVAL, "'button.title' must be 1 to 24 characters");
    send_fails("{\"from\":\"1\",\"list\":{\"id\":\"x\",\"title\":\"abcdefghijklmnopqrstuvwxy\"}}",
               MYNA_EINVAL, "'list.title' must be 1 to 24 characters");
}

static void test_sim_send_body_max(void **state)
{
    const char *head = "{\"from\":\"1\",\"text\":\"x\"}";
    char *body = malloc(MYNA_SIM_BODY_MAX + 1);
    struct myna_sim_send s;
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_non_null(body);
    /* exactly the limit (padded with white space) is fine */
    memset(body, ' ', MYNA_SIM_BODY_MAX + 1);
    memcpy(body, head, strlen(head));
    assert_int_equal(send_parse(body, MYNA_SIM_BODY_MAX, &s, &err), MYNA_OK);
    assert_string_equal(s.text, "x");
    myna_sim_send_release(&s);
    /* one byte more is not, whatever it holds */
    send_fails_len(body, MYNA_SIM_BODY_MAX + 1, MYNA_ETOOBIG, "body over 65536 bytes");
    free(body);
}

/* ---- the page's send: errors ---- */

static void test_sim_send_not_an_object(void **state)
{
    (void)state;
    send_fails("", MYNA_EPARSE, "the body must be a JSON object");
    send_fails("{", MYNA_EPARSE, "the body must be a JSON object");
    send_fails("hello", MYNA_EPARSE, "JSON object");
    send_fails("{\"from\":\"1\",\"text\":\"a\"", MYNA_EPARSE, "JSON object");
    send_fails("[]", MYNA_EPARSE, "JSON object");
    send_fails("[{\"from\":\"1\",\"text\":\"a\"}]", MYNA_EPARSE, "JSON object");
    send_fails("\"text\"", MYNA_EPARSE, "JSON object");
    send_fails("null", MYNA_EPARSE, "JSON object");
    send_fails("42", MYNA_EPARSE, "JSON object");
}

static void test_sim_send_unknown_field(void **state)
{
    (void)state;
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"txt\":\"b\"}", MYNA_EINVAL, "unknown field 'txt'");
    send_fails("{\"From\":\"1\",\"text\":\"a\"}", MYNA_EINVAL, "unknown field 'From'");
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"\":1}", MYNA_EINVAL, "unknown field ''");
}

/* The message names the field, and goes back to the page as JSON: it is
 * UTF-8 whatever the key is, and a long key is cut between characters. */
static void test_sim_send_unknown_field_utf8(void **state)
{
    struct myna_sim_send s;
    struct myna_err err = MYNA_ERR_INIT;
    char *key = rep(CYR, 40), body[256];

    (void)state;
    snprintf(body, sizeof(body), "{\"from\":\"1\",\"text\":\"a\",\"a%s\":1}", key);
    assert_int_equal(send_parse(body, strlen(body), &s, &err), MYNA_EINVAL);
    assert_contains(err.msg, "unknown field 'a" CYR);
    assert_true(myna_utf8_count(err.msg) != (size_t)-1);
    snprintf(body, sizeof(body), "{\"from\":\"1\",\"text\":\"a\",\"x\xff\xfe\":1}");
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_int_equal(send_parse(body, strlen(body), &s, &err), MYNA_EINVAL);
    assert_contains(err.msg, "unknown field");
    assert_true(myna_utf8_count(err.msg) != (size_t)-1);
    free(key);
}

static void test_sim_send_bad_from(void **state)
{
    const char *why = "'from' must be a phone number of 1 to 15 digits";

    (void)state;
    send_fails("{\"from\":\"abc\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"7916abc\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1234567890123456\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"+1234567890123456\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"+\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"++1\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"7 916\",\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":79161234567,\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":null,\"text\":\"a\"}", MYNA_EINVAL, why);
    send_fails("{\"text\":\"a\"}", MYNA_EINVAL, why);
}

static void test_sim_send_bad_name(void **state)
{
    (void)state;
    send_fails("{\"from\":\"1\",\"name\":5,\"text\":\"a\"}", MYNA_EINVAL, "'name' must be a string");
    send_fails("{\"from\":\"1\",\"name\":null,\"text\":\"a\"}", MYNA_EINVAL, "'name'");
    send_fails("{\"from\":\"1\",\"name\":[\"a\"],\"text\":\"a\"}", MYNA_EINVAL, "'name'");
    send_fails("{\"from\":\"1\",\"name\":\"\xff\",\"text\":\"a\"}", MYNA_EINVAL, "'name'");
}

static void test_sim_send_one_of(void **state)
{
    const char *why = "exactly one of 'text', 'button' or 'list' is required";

    (void)state;
    send_fails("{\"from\":\"1\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"name\":\"A\",\"context\":\"wamid.X\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"button\":{\"id\":\"a\",\"title\":\"b\"}}",
               MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"list\":{\"id\":\"a\",\"title\":\"b\"}}",
               MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"button\":{\"id\":\"a\",\"title\":\"b\"},"
               "\"list\":{\"id\":\"a\",\"title\":\"b\"}}",
               MYNA_EINVAL, why);
    /* null still counts as given */
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"list\":null}", MYNA_EINVAL, why);
}

static void test_sim_send_bad_text(void **state)
{
    const char *why = "'text' must be 1 to 4096 characters of UTF-8";

    (void)state;
    send_fails("{\"from\":\"1\",\"text\":\"\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":5}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":null}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":{\"body\":\"a\"}}", MYNA_EINVAL, why);
    /* invalid UTF-8: a stray continuation byte, an overlong '/', a surrogate,
     * a truncated sequence, a byte that never starts one */
    send_fails("{\"from\":\"1\",\"text\":\"a\x80\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"\xc0\xaf\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"\xed\xa0\x80\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"\xd0\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"\xff\"}", MYNA_EINVAL, why);
    /* a NUL, escaped or raw, would cut the text ("a\u0000b" read as "a") */
    send_fails("{\"from\":\"1\",\"text\":\"a\\u0000b\"}", MYNA_EPARSE, "NUL");
    send_fails("{\"from\":\"1\",\"name\":\"x\\u0000y\",\"text\":\"a\"}", MYNA_EPARSE, "NUL");
    {
        static const char raw[] = "{\"from\":\"1\",\"text\":\"a\0b\"}";
        send_fails_len(raw, sizeof(raw) - 1, MYNA_EPARSE, "NUL");
    }
}

static void test_sim_send_bad_reply(void **state)
{
    (void)state;
    send_fails("{\"from\":\"1\",\"button\":{\"id\":\"a\"}}", MYNA_EINVAL,
               "'button.title' must be 1 to 24 characters");
    send_fails("{\"from\":\"1\",\"button\":{\"id\":\"a\",\"title\":\"\"}}", MYNA_EINVAL,
               "'button.title'");
    send_fails("{\"from\":\"1\",\"button\":{\"title\":\"a\"}}", MYNA_EINVAL,
               "'button.id' must be 1 to 256 characters");
    send_fails("{\"from\":\"1\",\"button\":\"yes\"}", MYNA_EINVAL, "'button' must be an object");
    send_fails("{\"from\":\"1\",\"list\":[1]}", MYNA_EINVAL, "'list' must be an object");
    send_fails("{\"from\":\"1\",\"list\":{\"id\":\"a\",\"title\":\"b\",\"description\":"
               "\"0123456789012345678901234567890123456789012345678901234567890123456789012\"}}",
               MYNA_EINVAL, "'list.description' must be at most 72 characters");
}

static void test_sim_send_bad_context(void **state)
{
    const char *why = "'context' must be a message id";

    (void)state;
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"context\":\"wamid X\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"context\":\" \"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"context\":\"\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"context\":\"a\\nb\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"context\":\"" CYR "\"}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"text\":\"a\",\"context\":7}", MYNA_EINVAL, why);
    send_fails("{\"from\":\"1\",\"button\":{\"id\":\"a\",\"title\":\"b\"},\"context\":\"x y\"}",
               MYNA_EINVAL, why);
}

/* ---- the fake Graph API ---- */

static void test_sim_graph_text(void **state)
{
    struct myna_sim_graph_req r;
    char *body, *t;

    (void)state;
    graph_ok("{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"" ALEX
             "\",\"type\":\"text\",\"text\":{\"preview_url\":false,\"body\":\"Hi " CYR "\"}}",
             &r);
    assert_int_equal(r.kind, MYNA_SIM_GRAPH_MESSAGE);
    assert_string_equal(r.to, ALEX);
    assert_string_equal(r.type, "text");
    assert_string_equal(r.text, "Hi " CYR);
    assert_null(r.extra);
    assert_null(r.opaque);
    myna_sim_graph_release(&r);
    assert_null(r.text);
    myna_sim_graph_release(&r);

    /* no "type": Meta's default is text; "+" in "to" is dropped */
    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"+" MARINA "\",\"text\":{\"body\":\"x\"}}",
             &r);
    assert_string_equal(r.type, "text");
    assert_string_equal(r.to, MARINA);
    assert_string_equal(r.text, "x");
    myna_sim_graph_release(&r);

    /* 4096 Cyrillic letters pass, 4097 get a 400 with code 100 */
    t = rep(CYR, 4096);
    body = graph_text(t);
    graph_ok(body, &r);
    assert_string_equal(r.text, t);
    myna_sim_graph_release(&r);
    free(body);
    free(t);
    t = rep(CYR, 4097);
    body = graph_text(t);
    graph_fails(body, 100, "text['body']");
    free(body);
    free(t);
    /* Meta's codes (B5), as for the texts of an interactive message: an
     * empty body is a value not valid (131009), a missing one 131008, a
     * text that is no object a parameter of the wrong type (100) */
    body = graph_text("");
    graph_fails(body, 131009, "(#131009) Parameter value is not valid: text['body'] is empty");
    free(body);
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"text\"}", 131008,
                "(#131008) Required parameter is missing: text['body']");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"preview_url\":false}}",
                131008, "(#131008) Required parameter is missing: text['body']");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":\"hi\"}", 100,
                "(#100) Param text must be an object");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":7}}", 100,
                "(#100) Param text['body'] must be a string");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"\xfe\"}}", 100,
                NULL);
    /* a NUL, escaped or raw, would cut the text ("a\u0000b" read as "a") */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"a\\u0000b\"}}",
                100, "NUL");
    {
        static const char raw[] =
            "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"a\0b\"}}";
        graph_fails_len(raw, sizeof(raw) - 1, 100, "NUL");
    }
    /* an escaped backslash before "u0000" is no NUL */
    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"a\\\\u0000b\"}}", &r);
    assert_string_equal(r.text, "a\\u0000b");
    myna_sim_graph_release(&r);
}

static void test_sim_graph_envelope(void **state)
{
    char *body;

    (void)state;
    graph_fails("{\"to\":\"1\",\"text\":{\"body\":\"x\"}}", 100, "messaging_product");
    graph_fails("{\"messaging_product\":\"sms\",\"to\":\"1\",\"text\":{\"body\":\"x\"}}", 100,
                "messaging_product");
    graph_fails("{\"messaging_product\":1,\"to\":\"1\",\"text\":{\"body\":\"x\"}}", 100,
                "messaging_product");
    graph_fails("", 100, NULL);
    graph_fails("not json", 100, NULL);
    graph_fails("[\"whatsapp\"]", 100, NULL);
    /* bad "to" */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"text\":{\"body\":\"x\"}}", 100, "to");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"bob\",\"text\":{\"body\":\"x\"}}", 100,
                "to must be a phone number");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1234567890123456\","
                "\"text\":{\"body\":\"x\"}}",
                100, "to must be a phone number");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":79161234567,\"text\":{\"body\":\"x\"}}",
                100, "to must be a phone number");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"\",\"text\":{\"body\":\"x\"}}", 100,
                "to must be a phone number");
    /* Meta takes spaces, hyphens and parentheses in "to" and drops them;
     * nothing else, and a '+' only first */
    {
        static const char *const good[] = { "+7 916 123-45-67", "7 (916) 123 45 67",
                                            "+1 (650) 555-1234", "+79161234567 ",
                                            "+ 7-916-1234567" };
        static const char *const want[] = { ALEX, ALEX, "16505551234", ALEX, ALEX };
        static const char *const bad[] = { "7+916", "+", " ( ) - ", "++7", "7.916", "7_916",
                                           " +7916", "1234 5678 9012 3456", "7916/1234567" };
        struct myna_sim_graph_req r;
        char b[256];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            snprintf(b, sizeof(b),
                     "{\"messaging_product\":\"whatsapp\",\"to\":\"%s\",\"text\":{\"body\":\"x\"}}",
                     good[i]);
            graph_ok(b, &r);
            assert_string_equal(r.to, want[i]);
            myna_sim_graph_release(&r);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(b, sizeof(b),
                     "{\"messaging_product\":\"whatsapp\",\"to\":\"%s\",\"text\":{\"body\":\"x\"}}",
                     bad[i]);
            graph_fails(b, 100, "(#100) Invalid parameter: to must be a phone number");
        }
    }
    /* past the body limit */
    body = malloc(MYNA_SIM_BODY_MAX + 1);
    assert_non_null(body);
    memset(body, ' ', MYNA_SIM_BODY_MAX + 1);
    graph_fails_len(body, MYNA_SIM_BODY_MAX + 1, 100, "too large");
    free(body);
}

/* Meta refuses a body that goes on after its JSON value: a second object
 * (or any byte but blanks) must not leave the first one sent alone. */
static void test_sim_graph_trailing_bytes(void **state)
{
    struct myna_sim_graph_req r;

    (void)state;
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"a\"}}"
                "{\"to\":\"2\"}",
                100, "after its JSON value");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"a\"}}x", 100,
                "after its JSON value");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"w\"}]",
                100, "after its JSON value");
    /* blanks after the value are no bytes of another */
    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"a\"}} \r\n\t",
             &r);
    assert_string_equal(r.text, "a");
    myna_sim_graph_release(&r);
}

static void test_sim_graph_buttons(void **state)
{
    struct myna_sim_graph_req r;
    cJSON *x, *arr;
    char *body, last[8];

    (void)state;
    for (int n = 1; n <= 3; n++) {
        body = graph_buttons(n, "Yes");
        graph_ok(body, &r);
        assert_string_equal(r.type, "interactive");
        assert_string_equal(r.text, "Pick one");
        x = wrap_extra(r.extra);
        arr = cJSON_GetObjectItemCaseSensitive(x, "buttons");
        assert_true(cJSON_IsArray(arr));
        assert_int_equal(cJSON_GetArraySize(arr), n);
        assert_string_equal(jstr(cJSON_GetArrayItem(arr, 0), "id"), "b0");
        assert_string_equal(jstr(cJSON_GetArrayItem(arr, 0), "title"), "Yes");
        snprintf(last, sizeof(last), "b%d", n - 1);
        assert_string_equal(jstr(cJSON_GetArrayItem(arr, n - 1), "id"), last);
        assert_int_equal(cJSON_GetArraySize(x), 1);  /* nothing else */
        cJSON_Delete(x);
        myna_sim_graph_release(&r);
        free(body);
    }
    body = graph_buttons(4, "Yes");
    graph_fails(body, 131009, "1 to 3 buttons");
    free(body);
    body = graph_buttons(0, "Yes");
    graph_fails(body, 131009, "1 to 3 buttons");
    free(body);
    /* titles: 20 characters (Cyrillic too) pass, 21 do not */
    body = graph_buttons(2, CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR
                         CYR CYR);
    graph_ok(body, &r);
    myna_sim_graph_release(&r);
    free(body);
    body = graph_buttons(2, "abcdefghijklmnopqrstu");  /* too long: 100, as Meta */
    graph_fails(body, 100, "(#100) Param interactive['action']['buttons'][0]['reply']['title'] "
                           "must be at most 20 characters");
    free(body);
    body = graph_buttons(2, "");
    graph_fails(body, 131009, "['buttons'][0]['reply']['title'] is empty");
    free(body);
    /* no body text, or an unknown interactive type */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"button\",\"action\":{\"buttons\":[{\"type\":\"reply\","
                "\"reply\":{\"id\":\"a\",\"title\":\"b\"}}]}}}",
                131008, "(#131008) Required parameter is missing: interactive['body']['text']");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"product\",\"body\":{\"text\":\"x\"}}}",
                100, "interactive.type");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\"}", 131008,
                "(#131008) Required parameter is missing: interactive");
}

/* body (a JSON request, taken) with interactive[key] set to item (taken;
 * NULL removes it); the new body (caller frees). */
static char *with_interactive(char *body, const char *key, cJSON *item)
{
    cJSON *o = cJSON_Parse(body), *ia;

    free(body);
    assert_non_null(o);
    ia = cJSON_GetObjectItemCaseSensitive(o, "interactive");
    assert_non_null(ia);
    cJSON_DeleteItemFromObjectCaseSensitive(ia, key);
    if (item != NULL)
        cJSON_AddItemToObject(ia, key, item);
    return print_take(o);
}

/* {"text": text}, with "type": type first when type is given; NULL text
 * leaves it out. */
static cJSON *text_obj(const char *type, const char *text)
{
    cJSON *o = cJSON_CreateObject();

    assert_non_null(o);
    if (type != NULL)
        cJSON_AddStringToObject(o, "type", type);
    if (text != NULL)
        cJSON_AddStringToObject(o, "text", text);
    return o;
}

static char *one_button(void)
{
    return graph_buttons(1, "Yes");
}

static char *one_list(void)
{
    static const int rows[] = { 1 };

    return graph_list(rows, 1, NULL);
}

/* Meta's limits on the texts of an interactive message (B2), with its
 * codes (B5): a missing text is 131008, an empty one 131009, one too long
 * 100. The body is 1024 characters for buttons, 4096 for a list; a
 * header's text and the footer 60, for both. */
static void test_sim_graph_interactive_texts(void **state)
{
    static const char body_p[] = "interactive['body']['text']";
    static const char header_p[] = "interactive['header']['text']";
    static const char footer_p[] = "interactive['footer']['text']";
    char *(*const kinds[2])(void) = { one_button, one_list };
    const size_t body_max[2] = { 1024, 4096 };
    struct myna_sim_graph_req r;
    char *body, *t;

    (void)state;
    for (int k = 0; k < 2; k++) {
        /* the body: up to its type's limit */
        t = rep(CYR, body_max[k]);
        body = with_interactive(kinds[k](), "body", text_obj(NULL, t));
        graph_ok(body, &r);
        assert_string_equal(r.text, t);
        myna_sim_graph_release(&r);
        free(body);
        free(t);
        t = rep(CYR, body_max[k] + 1);
        body = with_interactive(kinds[k](), "body", text_obj(NULL, t));
        graph_fails(body, 100, "(#100) Param interactive['body']['text'] must be at most");
        free(body);
        free(t);
        body = with_interactive(kinds[k](), "body", text_obj(NULL, ""));
        graph_fails(body, 131009, body_p);
        free(body);
        body = with_interactive(kinds[k](), "body", text_obj(NULL, NULL));
        graph_fails(body, 131008, body_p);
        free(body);
        body = with_interactive(kinds[k](), "body", cJSON_CreateString("x"));
        graph_fails(body, 100, "interactive['body']");
        free(body);

        /* a text header and the footer: 60 characters */
        t = rep(CYR, 60);
        body = with_interactive(with_interactive(kinds[k](), "header", text_obj("text", t)),
                                "footer", text_obj(NULL, t));
        graph_ok(body, &r);
        myna_sim_graph_release(&r);
        free(body);
        free(t);
        t = rep("h", 61);
        body = with_interactive(kinds[k](), "header", text_obj("text", t));
        graph_fails(body, 100, "(#100) Param interactive['header']['text'] must be at most 60");
        free(body);
        body = with_interactive(kinds[k](), "footer", text_obj(NULL, t));
        graph_fails(body, 100, "(#100) Param interactive['footer']['text'] must be at most 60");
        free(body);
        free(t);
        body = with_interactive(kinds[k](), "header", text_obj("text", ""));
        graph_fails(body, 131009, header_p);
        free(body);
        body = with_interactive(kinds[k](), "header", text_obj("text", NULL));
        graph_fails(body, 131008, header_p);
        free(body);
        body = with_interactive(kinds[k](), "header", text_obj(NULL, "Menu"));
        graph_fails(body, 131008, "interactive['header']['type']");
        free(body);
        body = with_interactive(kinds[k](), "header", text_obj("audio", "Menu"));
        graph_fails(body, 100, "interactive['header']['type']");
        free(body);
        body = with_interactive(kinds[k](), "header", cJSON_CreateString("Menu"));
        graph_fails(body, 100, "interactive['header']");
        free(body);
        body = with_interactive(kinds[k](), "footer", text_obj(NULL, ""));
        graph_fails(body, 131009, footer_p);
        free(body);
        body = with_interactive(kinds[k](), "footer", text_obj(NULL, NULL));
        graph_fails(body, 131008, footer_p);
        free(body);
        body = with_interactive(kinds[k](), "footer", cJSON_CreateString("Bye"));
        graph_fails(body, 100, "interactive['footer']");
        free(body);
    }
    /* a media header: reply buttons only, with the object its type names */
    body = with_interactive(one_button(), "header",
                            cJSON_Parse("{\"type\":\"image\",\"image\":{\"id\":\"1\"}}"));
    graph_ok(body, &r);
    myna_sim_graph_release(&r);
    free(body);
    body = with_interactive(one_button(), "header", cJSON_Parse("{\"type\":\"image\"}"));
    graph_fails(body, 131008, "interactive['header']['image']");
    free(body);
    body = with_interactive(one_button(), "header",
                            cJSON_Parse("{\"type\":\"video\",\"video\":{}}"));
    graph_fails(body, 131008, "interactive['header']['video']['id'] or "
                              "interactive['header']['video']['link']");
    free(body);
    body = with_interactive(one_list(), "header",
                            cJSON_Parse("{\"type\":\"image\",\"image\":{\"id\":\"1\"}}"));
    graph_fails(body, 100, "must be text for a list");
    free(body);
}

/* Two buttons with the same title, or the same id, are refused as Meta does
 * (131009), whichever buttons they are; the same text as one button's id
 * and another's title is fine. */
static void test_sim_graph_buttons_unique(void **state)
{
    static const char *const reply3[] = { "reply", "reply", "reply" };
    static const char *const ids[] = { "yes", "no", "later" };
    static const char *const t_dup01[] = { "Yes", "Yes", "Later" };
    static const char *const t_dup02[] = { "Yes", "No", "Yes" };
    static const char *const t_ok[] = { "Yes", "No", "Later" };
    static const char *const i_dup12[] = { "yes", "no", "no" };
    static const char *const t_cross[] = { "no", "yes", "Later" };
    struct myna_sim_graph_req r;
    char *body;

    (void)state;
    body = graph_buttons_v(3, ids, t_dup01, reply3);
    graph_fails(body, 131009, "(#131009) Parameter value is not valid: button titles must be unique");
    free(body);
    body = graph_buttons_v(3, ids, t_dup02, reply3);
    graph_fails(body, 131009, "button 3 repeats button 1");
    free(body);
    body = graph_buttons_v(2, ids, t_dup01, reply3);
    graph_fails(body, 131009, "button titles must be unique");
    free(body);
    body = graph_buttons_v(3, i_dup12, t_ok, reply3);
    graph_fails(body, 131009, "(#131009) Parameter value is not valid: button ids must be unique");
    free(body);
    body = graph_buttons_v(3, ids, t_cross, reply3);
    graph_ok(body, &r);
    myna_sim_graph_release(&r);
    free(body);
}

/* Every button is {"type":"reply","reply":{...}}: a missing or other type
 * is Meta's 100 naming the button. */
static void test_sim_graph_button_type(void **state)
{
    static const char *const ids[] = { "yes", "no" };
    static const char *const titles[] = { "Yes", "No" };
    static const char *const no_type[] = { "reply", NULL };
    static const char *const url[] = { "url", "reply" };
    static const char *const upper[] = { "reply", "REPLY" };
    char *body;

    (void)state;
    body = graph_buttons_v(2, ids, titles, no_type);
    graph_fails(body, 100, "(#100) Param interactive['action']['buttons'][1]['type'] must be one of");
    free(body);
    body = graph_buttons_v(2, ids, titles, url);
    graph_fails(body, 100, "['buttons'][0]['type']");
    free(body);
    body = graph_buttons_v(2, ids, titles, upper);
    graph_fails(body, 100, "['buttons'][1]['type']");
    free(body);
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"button\",\"body\":{\"text\":\"x\"},\"action\":{"
                "\"buttons\":[{\"type\":7,\"reply\":{\"id\":\"a\",\"title\":\"b\"}}]}}}",
                100, "['buttons'][0]['type']");
}

#define LIST_HEAD                                                                              \
    "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\",\"interactive\":{" \
    "\"type\":\"list\",\"body\":{\"text\":\"x\"},\"action\":{\"button\":\"b\",\"sections\":"
#define LIST_TAIL "}}}"

/* Row ids are unique across all rows of all sections (Meta: 131009). */
static void test_sim_graph_list_row_ids_unique(void **state)
{
    struct myna_sim_graph_req r;

    (void)state;
    graph_fails(LIST_HEAD "[{\"rows\":[{\"id\":\"a\",\"title\":\"A\"},{\"id\":\"a\","
                          "\"title\":\"B\"}]}]" LIST_TAIL,
                131009, "(#131009) Parameter value is not valid: row ids must be unique");
    graph_fails(LIST_HEAD "[{\"title\":\"S1\",\"rows\":[{\"id\":\"a\",\"title\":\"A\"},"
                          "{\"id\":\"b\",\"title\":\"B\"}]},{\"title\":\"S2\",\"rows\":["
                          "{\"id\":\"c\",\"title\":\"C\"},{\"id\":\"b\",\"title\":\"D\"}]}]" LIST_TAIL,
                131009, "row 4 repeats row 2");
    /* the same title on two rows, or a row id equal to another's title, is fine */
    graph_ok(LIST_HEAD "[{\"title\":\"S1\",\"rows\":[{\"id\":\"a\",\"title\":\"Same\"}]},"
                       "{\"title\":\"S2\",\"rows\":[{\"id\":\"Same\",\"title\":\"Same\"}]}]" LIST_TAIL,
             &r);
    myna_sim_graph_release(&r);
}

/* With more than one section each needs a title of 1 to 24 characters; a
 * single section may go without one. */
static void test_sim_graph_list_section_titles(void **state)
{
    struct myna_sim_graph_req r;

    (void)state;
    graph_ok(LIST_HEAD "[{\"rows\":[{\"id\":\"a\",\"title\":\"A\"}]}]" LIST_TAIL, &r);
    myna_sim_graph_release(&r);
    graph_fails(LIST_HEAD "[{\"title\":\"S1\",\"rows\":[{\"id\":\"a\",\"title\":\"A\"}]},"
                          "{\"rows\":[{\"id\":\"b\",\"title\":\"B\"}]}]" LIST_TAIL,
                131009, "(#131009) Parameter value is not valid: a list with more than one section");
    graph_fails(LIST_HEAD "[{\"rows\":[{\"id\":\"a\",\"title\":\"A\"}]},"
                          "{\"rows\":[{\"id\":\"b\",\"title\":\"B\"}]}]" LIST_TAIL,
                131009, "needs a title on each section");
    /* 24 characters pass (Cyrillic too), 25 do not, nor an empty or non-string one */
    graph_ok(LIST_HEAD "[{\"title\":\"" CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR
                       CYR CYR CYR CYR CYR CYR CYR CYR CYR CYR "\",\"rows\":[{\"id\":\"a\","
                       "\"title\":\"A\"}]},{\"title\":\"S2\",\"rows\":[{\"id\":\"b\",\"title\":"
                       "\"B\"}]}]" LIST_TAIL,
             &r);
    myna_sim_graph_release(&r);
    graph_fails(LIST_HEAD "[{\"title\":\"abcdefghijklmnopqrstuvwxy\",\"rows\":[{\"id\":\"a\","
                          "\"title\":\"A\"}]}]" LIST_TAIL,
                100, "Param interactive['action']['sections'][0]['title'] must be at most 24");
    graph_fails(LIST_HEAD "[{\"title\":\"S1\",\"rows\":[{\"id\":\"a\",\"title\":\"A\"}]},"
                          "{\"title\":\"\",\"rows\":[{\"id\":\"b\",\"title\":\"B\"}]}]" LIST_TAIL,
                131009, "interactive['action']['sections'][1]['title'] is empty");
    graph_fails(LIST_HEAD "[{\"title\":5,\"rows\":[{\"id\":\"a\",\"title\":\"A\"}]}]" LIST_TAIL,
                100, "interactive['action']['sections'][0]['title'] must be a string");
}

static void test_sim_graph_list(void **state)
{
    struct myna_sim_graph_req r;
    const int one[] = { 10 }, two[] = { 6, 5 }, two_ok[] = { 5, 5 }, empty[] = { 0 };
    cJSON *x, *l, *secs;
    char *body, *d;

    (void)state;
    body = graph_list(one, 1, "Short");
    graph_ok(body, &r);
    assert_string_equal(r.type, "interactive");
    assert_string_equal(r.text, "Our services");
    x = wrap_extra(r.extra);
    l = cJSON_GetObjectItemCaseSensitive(x, "list");
    assert_true(cJSON_IsObject(l));
    assert_string_equal(jstr(l, "button"), "Choose");
    secs = cJSON_GetObjectItemCaseSensitive(l, "sections");
    assert_int_equal(cJSON_GetArraySize(secs), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetArrayItem(secs, 0), "rows")),
                     10);
    assert_string_equal(
        jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(secs, 0),
                                                                 "rows"),
                                9),
             "description"),
        "Short");
    cJSON_Delete(x);
    myna_sim_graph_release(&r);
    free(body);

    body = graph_list(two_ok, 2, NULL);
    graph_ok(body, &r);
    x = wrap_extra(r.extra);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(x, "list"), "sections")),
                     2);
    cJSON_Delete(x);
    myna_sim_graph_release(&r);
    free(body);

    /* 11 rows in all, even over two sections */
    body = graph_list(two, 2, NULL);
    graph_fails(body, 131009, "1 to 10 rows");
    free(body);
    body = graph_list(empty, 1, NULL);
    graph_fails(body, 131009, "1 to 10 rows");
    free(body);
    body = graph_list(empty, 0, NULL);
    graph_fails(body, 131009, "sections");
    free(body);
    /* description: 72 characters pass, 73 do not */
    d = rep(CYR, 72);
    body = graph_list(one, 1, d);
    graph_ok(body, &r);
    myna_sim_graph_release(&r);
    free(body);
    free(d);
    d = rep("d", 73);
    body = graph_list(one, 1, d);
    graph_fails(body, 100, "['rows'][0]['description'] must be a string of at most 72 characters");
    free(body);
    free(d);
    /* bytes that are not UTF-8 anywhere in the body, even where nothing is
     * checked (a section title is passed on to the page as it is) */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"x\"},\"action\":{"
                "\"button\":\"b\",\"sections\":[{\"title\":\"Bea\xff\",\"rows\":[{\"id\":\"a\","
                "\"title\":\"b\"}]}]}}}",
                100, "UTF-8");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"x\"},"
                "\"junk\":\"\xc0\xaf\"}",
                100, "UTF-8");
    /* the list button must be there */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"x\"},\"action\":{"
                "\"sections\":[{\"rows\":[{\"id\":\"a\",\"title\":\"b\"}]}]}}}",
                131008, "(#131008) Required parameter is missing: interactive['action']['button']");
    /* a row's id and title: missing 131008, too long 100; a section's rows */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"x\"},\"action\":{"
                "\"button\":\"b\",\"sections\":[{\"rows\":[{\"id\":\"a\",\"title\":\"b\"},"
                "{\"id\":\"c\"}]}]}}}",
                131008, "interactive['action']['sections'][0]['rows'][1]['title']");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"x\"},\"action\":{"
                "\"button\":\"b\",\"sections\":[{\"rows\":[{\"id\":\"a\","
                "\"title\":\"abcdefghijklmnopqrstuvwxy\"}]}]}}}",
                100, "['rows'][0]['title'] must be at most 24 characters");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\","
                "\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"x\"},\"action\":{"
                "\"button\":\"b\",\"sections\":[{\"title\":\"s\"}]}}}",
                131008, "interactive['action']['sections'][0]['rows']");
}

static void test_sim_graph_read(void **state)
{
    struct myna_sim_graph_req r;

    (void)state;
    graph_ok("{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"wamid.SIM01\"}",
             &r);
    assert_int_equal(r.kind, MYNA_SIM_GRAPH_READ);
    assert_string_equal(r.read_id, "wamid.SIM01");
    assert_int_equal(r.typing, 0);
    assert_null(r.text);
    myna_sim_graph_release(&r);

    graph_ok("{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"wamid.SIM02\","
             "\"typing_indicator\":{\"type\":\"text\"}}",
             &r);
    assert_int_equal(r.kind, MYNA_SIM_GRAPH_READ);
    assert_string_equal(r.read_id, "wamid.SIM02");
    assert_int_equal(r.typing, 1);
    myna_sim_graph_release(&r);

    /* another indicator type is no typing */
    graph_ok("{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"m\","
             "\"typing_indicator\":{\"type\":\"audio\"}}",
             &r);
    assert_int_equal(r.typing, 0);
    myna_sim_graph_release(&r);

    /* any wamid the Graph builder sends is taken: 150 bytes, and the
     * longest it allows; one byte more is refused by both */
    {
        struct myna_err err = MYNA_ERR_INIT;
        char id[MYNA_GRAPH_WAMID_MAX + 2], *body;
        for (size_t n = 150; n <= MYNA_GRAPH_WAMID_MAX; n += MYNA_GRAPH_WAMID_MAX - 150) {
            memcpy(id, "wamid.", 6);
            memset(id + 6, 'H', n - 6);
            id[n] = '\0';
            body = myna_graph_read_body(id, 1, &err);
            assert_non_null(body);
            graph_ok(body, &r);
            assert_int_equal(r.kind, MYNA_SIM_GRAPH_READ);
            assert_string_equal(r.read_id, id);
            assert_int_equal(r.typing, 1);
            myna_sim_graph_release(&r);
            free(body);
        }
        memset(id, 'H', MYNA_GRAPH_WAMID_MAX + 1);
        id[MYNA_GRAPH_WAMID_MAX + 1] = '\0';
        assert_null(myna_graph_read_body(id, 0, &err));
        {
            char json[300];
            snprintf(json, sizeof(json),
                     "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":"
                     "\"%s\"}", id);
            graph_fails(json, 100, "message_id");
        }
    }

    graph_fails("{\"messaging_product\":\"whatsapp\",\"status\":\"delivered\",\"message_id\":\"m\"}",
                100, "status must be read");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"status\":\"read\"}", 100, "message_id");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"a b\"}", 100,
                "message_id");
    graph_fails("{\"status\":\"read\",\"message_id\":\"m\"}", 100, "messaging_product");
}

static void test_sim_graph_media(void **state)
{
    struct myna_sim_graph_req r;

    (void)state;
    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"image\","
             "\"image\":{\"link\":\"https://example.test/a.jpg\",\"caption\":\"Our salon\"}}",
             &r);
    assert_string_equal(r.type, "image");
    assert_string_equal(r.text, "Our salon");
    assert_null(r.extra);
    myna_sim_graph_release(&r);

    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"image\","
             "\"image\":{\"id\":\"1234\"}}",
             &r);
    assert_string_equal(r.text, "[image]");
    myna_sim_graph_release(&r);

    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"location\","
             "\"location\":{\"latitude\":55.7,\"longitude\":37.6}}",
             &r);
    assert_string_equal(r.type, "location");
    assert_string_equal(r.text, "[location]");
    myna_sim_graph_release(&r);

    /* an empty caption is no caption */
    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"document\","
             "\"document\":{\"id\":\"9\",\"caption\":\"\"}}",
             &r);
    assert_string_equal(r.text, "[document]");
    myna_sim_graph_release(&r);

    /* a media object that names no file (neither id nor link): 131008,
     * as Meta answers; a location has neither and needs none */
    {
        static const char *const media[] = { "image", "video", "document", "audio", "sticker" };
        for (size_t i = 0; i < sizeof(media) / sizeof(media[0]); i++) {
            char body[200], want[80];
            snprintf(body, sizeof(body),
                     "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"%s\","
                     "\"%s\":{}}", media[i], media[i]);
            snprintf(want, sizeof(want), "(#131008) Required parameter is missing: %s['id']",
                     media[i]);
            graph_fails(body, 131008, want);
        }
        graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"image\","
                    "\"image\":{\"caption\":\"Our salon\"}}",
                    131008, "image['id'] or image['link']");
    }

    /* a type without its object */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"sticker\"}", 100,
                "Param sticker is required for type sticker");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"sticker\","
                "\"sticker\":\"abc\"}",
                100, "sticker");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"bogus\"}", 100,
                "bogus");

    /* a type that does not fit is refused, not cut (8 Cyrillic letters are
     * 16 bytes: a cut would split the last one); 15 bytes fit */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"" CYR CYR CYR CYR CYR
                CYR CYR CYR "\",\"" CYR CYR CYR CYR CYR CYR CYR CYR "\":{}}",
                100, "type");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"\",\"\":{}}", 100,
                "type");
    /* a type Meta does not have is refused, even with its object: "context"
     * and "typing_indicator" are objects of a send too */
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"abcdefghijklmno\","
                "\"abcdefghijklmno\":{}}",
                100, "type");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"context\","
                "\"context\":{\"message_id\":\"wamid.X\"}}",
                100, "type");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"Image\","
                "\"Image\":{\"id\":\"1\"}}",
                100, "type");
    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"reaction\","
             "\"reaction\":{\"message_id\":\"wamid.X\",\"emoji\":\"" EMOJI "\"}}",
             &r);
    assert_string_equal(r.text, "[reaction]");
    myna_sim_graph_release(&r);
}

static void test_sim_graph_opaque(void **state)
{
    struct myna_sim_graph_req r;
    cJSON *o, *t;
    char *body, *op;

    (void)state;
    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"biz_opaque_callback_data\":"
             "\"turn-42\",\"text\":{\"body\":\"x\"}}",
             &r);
    assert_string_equal(r.opaque, "turn-42");
    myna_sim_graph_release(&r);

    graph_ok("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"image\","
             "\"biz_opaque_callback_data\":\"img\",\"image\":{\"id\":\"1\"}}",
             &r);
    assert_string_equal(r.opaque, "img");
    myna_sim_graph_release(&r);

    for (int n = 512; n <= 513; n++) {
        op = rep(CYR, (size_t)n);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "messaging_product", "whatsapp");
        cJSON_AddStringToObject(o, "to", "1");
        cJSON_AddStringToObject(o, "biz_opaque_callback_data", op);
        t = cJSON_AddObjectToObject(o, "text");
        cJSON_AddStringToObject(t, "body", "x");
        body = print_take(o);
        if (n == 512) {
            graph_ok(body, &r);
            assert_string_equal(r.opaque, op);
            myna_sim_graph_release(&r);
        } else {
            graph_fails(body, 100, "biz_opaque_callback_data");
        }
        free(body);
        free(op);
    }
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"biz_opaque_callback_data\":7,"
                "\"text\":{\"body\":\"x\"}}",
                100, "biz_opaque_callback_data");
    graph_fails("{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"biz_opaque_callback_data\":\"\","
                "\"text\":{\"body\":\"x\"}}",
                100, "biz_opaque_callback_data");
}

static void test_sim_graph_error_body(void **state)
{
    char *s = myna_sim_graph_error(131009, "OAuthException", "a \"quoted\" " CYR " message");
    cJSON *j, *e, *d;
    const char *trace;

    (void)state;
    assert_non_null(s);
    j = cJSON_Parse(s);
    assert_non_null(j);
    e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    assert_string_equal(jstr(e, "message"), "a \"quoted\" " CYR " message");
    assert_string_equal(jstr(e, "type"), "OAuthException");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "code")), 131009);
    d = cJSON_GetObjectItemCaseSensitive(e, "error_data");
    assert_string_equal(jstr(d, "messaging_product"), "whatsapp");
    assert_string_equal(jstr(d, "details"), "a \"quoted\" " CYR " message");
    trace = jstr(e, "fbtrace_id");
    assert_non_null(trace);
    assert_int_equal(strlen(trace), 16);
    cJSON_Delete(j);
    free(s);
}

/* ---- webhooks through the real Cloud parser ---- */

struct parsed {
    struct myna_arena a;
    struct myna_cloud_batch b;
    struct myna_err err;
};

static void cloud_parse(struct parsed *p, char *body /* freed here */)
{
    int rc;

    assert_non_null(body);
    memset(p, 0, sizeof(*p));
    p->a = (struct myna_arena)MYNA_ARENA_INIT(8u << 20);
    rc = myna_cloud_parse(body, strlen(body), &p->a, &p->b, &p->err);
    if (rc != MYNA_OK)
        fail_msg("cloud parser refused %s: %s", body, p->err.msg);
    memset(body, 0xa5, strlen(body));  /* no record may point into it */
    free(body);
    assert_int_equal(p->b.n_ignored + p->b.n_errors + p->b.n_invalid, 0);
}

static const char *const sim_json =
    "[{\"id\":\"demo\",\"name\":\"Demo\",\"provider\":\"sim\"}]";

static void test_sim_webhook_text(void **state)
{
    struct myna_instance_set set;
    struct myna_sim_send s;
    struct parsed p;
    const struct myna_inbound *in;

    (void)state;
    sim_set(&set, sim_json);
    send_ok("{\"from\":\"+" ALEX "\",\"name\":\"Alex \\\"" CYR "\\\"\",\"text\":\"Hi \\\"there\\\" "
            EMOJI "\\n2\"}",
            &s);
    cloud_parse(&p, myna_sim_message_webhook(&set.v[0], &s, "wamid.SIMT1", 1773478800));
    assert_int_equal(p.b.n_msgs, 1);
    assert_int_equal(p.b.n_statuses, 0);
    in = &p.b.msgs[0];
    assert_string_equal(in->phone_number_id, set.v[0].phone_number_id);
    assert_string_equal(in->wamid, "wamid.SIMT1");
    assert_string_equal(in->contact, ALEX);
    assert_non_null(in->profile_name);
    assert_string_equal(in->profile_name, "Alex \"" CYR "\"");
    assert_int_equal(in->type, MYNA_MSG_TEXT);
    assert_string_equal(in->text, "Hi \"there\" " EMOJI "\n2");
    assert_int_equal(in->ts, 1773478800);
    assert_null(in->reply_id);
    assert_null(in->context_id);
    myna_arena_free(&p.a);
    myna_sim_send_release(&s);
    myna_instances_release(&set);
}

static void test_sim_webhook_button_reply(void **state)
{
    struct myna_instance_set set;
    struct myna_sim_send s;
    struct parsed p;
    const struct myna_inbound *in;

    (void)state;
    sim_set(&set, sim_json);
    send_ok("{\"from\":\"" MARINA "\",\"name\":\"Marina\",\"button\":{\"id\":\"book-yes\","
            "\"title\":\"Yes, book\"},\"context\":\"wamid.SIMBOT1\"}",
            &s);
    cloud_parse(&p, myna_sim_message_webhook(&set.v[0], &s, "wamid.SIMB1", 1773478801));
    assert_int_equal(p.b.n_msgs, 1);
    in = &p.b.msgs[0];
    assert_string_equal(in->wamid, "wamid.SIMB1");
    assert_string_equal(in->contact, MARINA);
    assert_string_equal(in->profile_name, "Marina");
    assert_int_equal(in->type, MYNA_MSG_BUTTON_REPLY);
    assert_string_equal(in->reply_id, "book-yes");
    assert_string_equal(in->text, "Yes, book");
    assert_non_null(in->context_id);
    assert_string_equal(in->context_id, "wamid.SIMBOT1");
    myna_arena_free(&p.a);
    myna_sim_send_release(&s);
    myna_instances_release(&set);
}

static void test_sim_webhook_list_reply(void **state)
{
    struct myna_instance_set set;
    struct myna_sim_send s;
    struct parsed p;
    const struct myna_inbound *in;
    cJSON *raw, *lr;

    (void)state;
    sim_set(&set, sim_json);
    send_ok("{\"from\":\"" ALEX "\",\"list\":{\"id\":\"svc-cut\",\"title\":\"" CYR " cut\","
            "\"description\":\"30 min\"},\"context\":\"wamid.SIMBOT2\"}",
            &s);
    cloud_parse(&p, myna_sim_message_webhook(&set.v[0], &s, "wamid.SIML1", 5));
    assert_int_equal(p.b.n_msgs, 1);
    in = &p.b.msgs[0];
    assert_string_equal(in->wamid, "wamid.SIML1");
    assert_string_equal(in->contact, ALEX);
    assert_int_equal(in->type, MYNA_MSG_LIST_REPLY);
    assert_string_equal(in->reply_id, "svc-cut");
    assert_string_equal(in->text, CYR " cut");
    assert_string_equal(in->context_id, "wamid.SIMBOT2");
    assert_int_equal(in->ts, 5);
    /* the description travels in the raw message */
    raw = cJSON_ParseWithLength(in->raw, in->raw_len);
    assert_non_null(raw);
    lr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(raw, "interactive"),
                                          "list_reply");
    assert_string_equal(jstr(lr, "description"), "30 min");
    assert_string_equal(jstr(lr, "id"), "svc-cut");
    cJSON_Delete(raw);
    myna_arena_free(&p.a);
    myna_sim_send_release(&s);
    myna_instances_release(&set);
}

static void test_sim_webhook_status(void **state)
{
    struct myna_instance_set set;
    struct parsed p;
    const struct myna_status_rec *st;
    cJSON *raw;

    (void)state;
    sim_set(&set, sim_json);
    cloud_parse(&p, myna_sim_status_webhook(&set.v[0], "wamid.SIMOUT1", ALEX, "sent", NULL,
                                            1773478900, 0, NULL));
    assert_int_equal(p.b.n_msgs, 0);
    assert_int_equal(p.b.n_statuses, 1);
    st = &p.b.statuses[0];
    assert_string_equal(st->phone_number_id, set.v[0].phone_number_id);
    assert_string_equal(st->wamid, "wamid.SIMOUT1");
    assert_int_equal(st->status, MYNA_STATUS_SENT);
    assert_string_equal(st->status_name, "sent");
    assert_string_equal(st->recipient, ALEX);
    assert_int_equal(st->ts, 1773478900);
    assert_int_equal(st->error_code, 0);
    assert_null(st->error_title);
    raw = cJSON_ParseWithLength(st->raw, st->raw_len);
    assert_null(cJSON_GetObjectItemCaseSensitive(raw, "biz_opaque_callback_data"));
    assert_null(cJSON_GetObjectItemCaseSensitive(raw, "errors"));
    cJSON_Delete(raw);
    myna_arena_free(&p.a);

    cloud_parse(&p, myna_sim_status_webhook(&set.v[0], "wamid.SIMOUT2", MARINA, "failed",
                                            "turn-7", 1773478901, 131047,
                                            "Re-engagement message"));
    assert_int_equal(p.b.n_statuses, 1);
    st = &p.b.statuses[0];
    assert_string_equal(st->wamid, "wamid.SIMOUT2");
    assert_int_equal(st->status, MYNA_STATUS_FAILED);
    assert_string_equal(st->recipient, MARINA);
    assert_int_equal(st->error_code, 131047);
    assert_string_equal(st->error_title, "Re-engagement message");
    raw = cJSON_ParseWithLength(st->raw, st->raw_len);
    assert_string_equal(jstr(raw, "biz_opaque_callback_data"), "turn-7");
    cJSON_Delete(raw);
    myna_arena_free(&p.a);

    /* delivered and read; an empty opaque is left out */
    cloud_parse(&p, myna_sim_status_webhook(&set.v[0], "wamid.SIMOUT3", ALEX, "read", "", 9, 0,
                                            NULL));
    assert_int_equal(p.b.statuses[0].status, MYNA_STATUS_READ);
    raw = cJSON_ParseWithLength(p.b.statuses[0].raw, p.b.statuses[0].raw_len);
    assert_null(cJSON_GetObjectItemCaseSensitive(raw, "biz_opaque_callback_data"));
    cJSON_Delete(raw);
    myna_arena_free(&p.a);
    myna_instances_release(&set);
}

static void test_sim_wamid(void **state)
{
    char a[64], b[64];

    (void)state;
    myna_sim_wamid(a, sizeof(a));
    myna_sim_wamid(b, sizeof(b));
    assert_int_equal(strlen(a), 9 + 32);
    assert_memory_equal(a, "wamid.SIM", 9);
    for (size_t i = 9; i < strlen(a); i++)
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'A' && a[i] <= 'F'));
    assert_string_not_equal(a, b);
}

/* ---- the log ---- */

static struct myna_sim_event *add(struct myna_sim_log *l, int out, const char *id,
                                  const char *contact, const char *text,
                                  enum myna_sim_status st)
{
    struct myna_sim_event *e =
        myna_sim_log_add(l, out, id, contact, "text", text ? strdup(text) : NULL, NULL, NULL, st,
                         1773478800);

    assert_non_null(e);
    return e;
}

/* Renders into a parsed cJSON object (caller deletes). */
static cJSON *render(const struct myna_sim_log *l, const char *contact, uint64_t after,
                     int64_t now_ms)
{
    struct myna_buf b = MYNA_BUF_INIT(16u << 20);
    cJSON *j;

    assert_int_equal(myna_sim_log_render(l, contact, after, now_ms, &b), MYNA_OK);
    assert_non_null(b.data);
    j = cJSON_ParseWithLength(b.data, b.len);
    if (j == NULL || !cJSON_IsObject(j))
        fail_msg("render is not a JSON object: %.300s", b.data);
    myna_buf_release(&b);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "events")));
    assert_true(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "typing")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "seq")));
    return j;
}

static const cJSON *events(const cJSON *j)
{
    return cJSON_GetObjectItemCaseSensitive(j, "events");
}

static int typing(const cJSON *j)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "typing"));
}

static uint64_t top_seq(const cJSON *j)
{
    return (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "seq"));
}

/* More events than a reply may hold come in pages: "more", and "seq" the
 * last one given, so that after=seq goes on where the page ended. */
static void test_sim_log_render_pages(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_buf b = MYNA_BUF_INIT(4096);
    char text[1001], id[32];
    cJSON *j;
    uint64_t seq;
    int total = 0, pages = 0;

    (void)state;
    memset(text, 'x', 1000);
    text[1000] = '\0';
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "wamid.P%d", i);
        add(l, 0, id, ALEX, text, MYNA_SIM_DELIVERED);
    }
    for (seq = 0;; pages++) {
        b.len = 0;
        assert_int_equal(myna_sim_log_render(l, ALEX, seq, 0, &b), MYNA_OK);
        assert_non_null(j = cJSON_ParseWithLength(b.data, b.len));
        total += cJSON_GetArraySize(events(j));
        assert_true(top_seq(j) > seq);
        seq = top_seq(j);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "more"))) {
            cJSON_Delete(j);
            break;
        }
        assert_true(cJSON_GetArraySize(events(j)) >= 1);
        cJSON_Delete(j);
    }
    assert_int_equal(total, 10);
    assert_true(pages >= 2);
    /* one event larger than the whole reply: refused, not cut */
    myna_buf_release(&b);
    {
        struct myna_buf tiny = MYNA_BUF_INIT(512);
        assert_int_equal(myna_sim_log_render(l, ALEX, 0, 0, &tiny), MYNA_ETOOBIG);
        myna_buf_release(&tiny);
    }
    myna_sim_log_free(l);
}

/* A status update gives an older event a newer seq, so the ring's order is
 * not the seq order: a page still ends at a seq below which everything was
 * given, and after=seq misses none of the events that did not fit. */
static void test_sim_log_render_pages_by_seq(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_buf b = MYNA_BUF_INIT(1800);
    char text[1001];
    const cJSON *e;
    cJSON *j;
    uint64_t seq = 0;
    int seen_a = 0, seen_b = 0, pages = 0;

    (void)state;
    memset(text, 'x', 1000);
    text[1000] = '\0';
    add(l, 0, "wamid.A", ALEX, text, MYNA_SIM_SENT);
    add(l, 0, "wamid.B", ALEX, text, MYNA_SIM_SENT);
    /* A is read: now A has seq 3 and B seq 2, A still first in the ring */
    assert_int_equal(myna_sim_log_set(l, myna_sim_log_find(l, "wamid.A"), MYNA_SIM_READ, NULL), 1);
    for (;; pages++) {
        assert_true(pages < 5);
        b.len = 0;
        assert_int_equal(myna_sim_log_render(l, ALEX, seq, 0, &b), MYNA_OK);
        assert_non_null(j = cJSON_ParseWithLength(b.data, b.len));
        cJSON_ArrayForEach(e, events(j)) {
            const char *id = cJSON_GetObjectItemCaseSensitive(e, "id")->valuestring;
            seen_a += strcmp(id, "wamid.A") == 0;
            seen_b += strcmp(id, "wamid.B") == 0;
        }
        seq = top_seq(j);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "more"))) {
            cJSON_Delete(j);
            break;
        }
        cJSON_Delete(j);
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_b, 1);
    assert_int_equal(seq, 3);
    myna_buf_release(&b);
    myna_sim_log_free(l);
}

static void test_sim_log_add_find(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_sim_event *a, *b, *c;

    (void)state;
    assert_non_null(l);
    assert_null(myna_sim_log_find(l, "wamid.X"));
    a = add(l, 0, "wamid.IN1", ALEX, "hello", MYNA_SIM_PENDING);
    b = myna_sim_log_add(l, 1, "wamid.OUT1", ALEX, "interactive", strdup("Pick"),
                         strdup("\"buttons\":[{\"id\":\"a\",\"title\":\"A\"}]"), strdup("turn-1"),
                         MYNA_SIM_SENT, 1773478801);
    assert_non_null(b);
    c = add(l, 0, "wamid.IN2", MARINA, "hi", MYNA_SIM_DELIVERED);
    assert_ptr_equal(myna_sim_log_find(l, "wamid.IN1"), a);
    assert_ptr_equal(myna_sim_log_find(l, "wamid.OUT1"), b);
    assert_ptr_equal(myna_sim_log_find(l, "wamid.IN2"), c);
    assert_null(myna_sim_log_find(l, "wamid.IN"));
    assert_null(myna_sim_log_find(l, ""));
    assert_int_equal(a->out, 0);
    assert_int_equal(b->out, 1);
    assert_string_equal(a->contact, ALEX);
    assert_string_equal(a->text, "hello");
    assert_string_equal(b->type, "interactive");
    assert_string_equal(b->opaque, "turn-1");
    assert_int_equal(b->ts, 1773478801);
    assert_int_equal(b->status, MYNA_SIM_SENT);
    assert_null(b->error);
    assert_true(a->seq < b->seq && b->seq < c->seq);
    myna_sim_log_free(l);
    myna_sim_log_free(NULL);
}

static void test_sim_log_set_forward_only(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_sim_event *e, *f;
    uint64_t seq;

    (void)state;
    assert_non_null(l);
    e = add(l, 1, "wamid.O1", ALEX, "x", MYNA_SIM_SENT);
    f = add(l, 1, "wamid.O2", ALEX, "y", MYNA_SIM_SENT);
    seq = f->seq;
    assert_int_equal(myna_sim_log_set(l, e, MYNA_SIM_READ, NULL), 1);
    assert_int_equal(e->status, MYNA_SIM_READ);
    assert_true(e->seq > seq);  /* the page sees it again */
    seq = e->seq;
    assert_int_equal(myna_sim_log_set(l, e, MYNA_SIM_DELIVERED, NULL), 0);
    assert_int_equal(e->status, MYNA_SIM_READ);
    assert_int_equal(e->seq, seq);
    assert_int_equal(myna_sim_log_set(l, e, MYNA_SIM_READ, NULL), 0);
    assert_int_equal(e->seq, seq);
    assert_int_equal(myna_sim_log_set(l, e, MYNA_SIM_SENT, NULL), 0);

    /* failed is final and keeps its first error */
    assert_int_equal(myna_sim_log_set(l, f, MYNA_SIM_FAILED, "(#131047) Re-engagement"), 1);
    assert_int_equal(f->status, MYNA_SIM_FAILED);
    assert_string_equal(f->error, "(#131047) Re-engagement");
    seq = f->seq;
    assert_true(seq > e->seq);
    assert_int_equal(myna_sim_log_set(l, f, MYNA_SIM_READ, NULL), 0);
    assert_int_equal(myna_sim_log_set(l, f, MYNA_SIM_FAILED, "again"), 0);
    assert_int_equal(f->status, MYNA_SIM_FAILED);
    assert_string_equal(f->error, "(#131047) Re-engagement");
    assert_int_equal(f->seq, seq);
    myna_sim_log_free(l);
}

static void test_sim_log_read_upto(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_sim_event *a1, *a2, *b1, *o1, *a3;

    (void)state;
    assert_non_null(l);
    a1 = add(l, 0, "in-a1", ALEX, "1", MYNA_SIM_DELIVERED);
    b1 = add(l, 0, "in-b1", MARINA, "2", MYNA_SIM_DELIVERED);
    a2 = add(l, 0, "in-a2", ALEX, "3", MYNA_SIM_DELIVERED);
    o1 = add(l, 1, "out-a1", ALEX, "4", MYNA_SIM_DELIVERED);
    a3 = add(l, 0, "in-a3", ALEX, "5", MYNA_SIM_DELIVERED);

    /* an unknown id or the bot's own message changes nothing */
    myna_sim_log_read_upto(l, "nope");
    myna_sim_log_read_upto(l, "out-a1");
    assert_int_equal(a1->status, MYNA_SIM_DELIVERED);
    assert_int_equal(o1->status, MYNA_SIM_DELIVERED);

    myna_sim_log_read_upto(l, "in-a2");
    assert_int_equal(a1->status, MYNA_SIM_READ);
    assert_int_equal(a2->status, MYNA_SIM_READ);
    assert_int_equal(b1->status, MYNA_SIM_DELIVERED);  /* another contact */
    assert_int_equal(o1->status, MYNA_SIM_DELIVERED);  /* the bot's */
    assert_int_equal(a3->status, MYNA_SIM_DELIVERED);  /* later */

    myna_sim_log_read_upto(l, "in-b1");
    assert_int_equal(b1->status, MYNA_SIM_READ);
    assert_int_equal(a3->status, MYNA_SIM_DELIVERED);
    myna_sim_log_read_upto(l, "in-a3");
    assert_int_equal(a3->status, MYNA_SIM_READ);
    assert_int_equal(o1->status, MYNA_SIM_DELIVERED);
    myna_sim_log_free(l);
}

struct seen_calls {
    int n;
    char ids[8][128];
};

static void seen_fn(const struct myna_sim_event *e, void *arg)
{
    struct seen_calls *c = arg;

    assert_true(c->n < 8);
    assert_int_equal(e->out, 1);
    assert_int_equal(e->status, MYNA_SIM_READ);  /* moved before the call */
    snprintf(c->ids[c->n++], sizeof(c->ids[0]), "%s", e->id);
}

static void test_sim_log_seen(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_sim_event *o1, *o2, *o3, *i4, *o5, *o6;
    struct seen_calls c = { 0 };

    (void)state;
    assert_non_null(l);
    o1 = add(l, 1, "o1", ALEX, "a", MYNA_SIM_DELIVERED);
    o2 = add(l, 1, "o2", ALEX, "b", MYNA_SIM_SENT);
    o3 = add(l, 1, "o3", MARINA, "c", MYNA_SIM_DELIVERED);
    i4 = add(l, 0, "i4", ALEX, "d", MYNA_SIM_DELIVERED);
    o5 = add(l, 1, "o5", ALEX, "e", MYNA_SIM_DELIVERED);
    o6 = add(l, 1, "o6", ALEX, "f", MYNA_SIM_FAILED);

    myna_sim_log_seen(l, ALEX, seen_fn, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "o1");
    assert_string_equal(c.ids[1], "o5");
    assert_int_equal(o1->status, MYNA_SIM_READ);
    assert_int_equal(o2->status, MYNA_SIM_SENT);
    assert_int_equal(o3->status, MYNA_SIM_DELIVERED);
    assert_int_equal(i4->status, MYNA_SIM_DELIVERED);
    assert_int_equal(o5->status, MYNA_SIM_READ);
    assert_int_equal(o6->status, MYNA_SIM_FAILED);

    /* nothing new: no calls */
    c.n = 0;
    myna_sim_log_seen(l, ALEX, seen_fn, &c);
    assert_int_equal(c.n, 0);
    myna_sim_log_seen(l, "1", seen_fn, &c);
    assert_int_equal(c.n, 0);
    myna_sim_log_seen(l, MARINA, seen_fn, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "o3");
    myna_sim_log_free(l);
}

static void test_sim_log_typing(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    cJSON *j;
    uint64_t seq;

    (void)state;
    assert_non_null(l);
    add(l, 0, "in1", ALEX, "hi", MYNA_SIM_DELIVERED);
    j = render(l, ALEX, 0, 1000);
    assert_false(typing(j));
    seq = top_seq(j);
    cJSON_Delete(j);

    myna_sim_log_typing(l, ALEX, 1, 1000);
    j = render(l, ALEX, 0, 1000);
    assert_true(typing(j));
    assert_true(top_seq(j) > seq);  /* a poll sees the change */
    cJSON_Delete(j);
    j = render(l, MARINA, 0, 1000);
    assert_false(typing(j));
    cJSON_Delete(j);
    j = render(l, "", 0, 1000);  /* the all-contacts view has no indicator */
    assert_false(typing(j));
    cJSON_Delete(j);
    /* on for 25 s */
    j = render(l, ALEX, 0, 1000 + 24999);
    assert_true(typing(j));
    cJSON_Delete(j);
    j = render(l, ALEX, 0, 1000 + 25000);
    assert_false(typing(j));
    cJSON_Delete(j);

    /* off by hand */
    myna_sim_log_typing(l, ALEX, 1, 5000);
    myna_sim_log_typing(l, ALEX, 0, 5001);
    j = render(l, ALEX, 0, 5002);
    assert_false(typing(j));
    cJSON_Delete(j);

    /* a reply to that contact ends it; one to another contact does not */
    myna_sim_log_typing(l, ALEX, 1, 6000);
    myna_sim_log_typing(l, MARINA, 1, 6000);
    add(l, 1, "out1", MARINA, "hello", MYNA_SIM_SENT);
    j = render(l, ALEX, 0, 6001);
    assert_true(typing(j));
    cJSON_Delete(j);
    j = render(l, MARINA, 0, 6001);
    assert_false(typing(j));
    cJSON_Delete(j);
    add(l, 1, "out2", ALEX, "hello", MYNA_SIM_SENT);
    j = render(l, ALEX, 0, 6001);
    assert_false(typing(j));
    cJSON_Delete(j);

    /* an inbound message does not end it */
    myna_sim_log_typing(l, ALEX, 1, 7000);
    add(l, 0, "in2", ALEX, "more", MYNA_SIM_DELIVERED);
    j = render(l, ALEX, 0, 7001);
    assert_true(typing(j));
    cJSON_Delete(j);

    /* more contacts typing than slots: the newest still shows */
    for (int i = 0; i < 100; i++) {
        char who[16];
        snprintf(who, sizeof(who), "5550%03d", i);
        myna_sim_log_typing(l, who, 1, 8000 + i);
        j = render(l, who, 0, 8000 + i);
        assert_true(typing(j));
        cJSON_Delete(j);
    }
    myna_sim_log_free(l);
}

static void test_sim_log_render_filters(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_sim_event *e2, *o;
    const cJSON *ev, *x;
    cJSON *j;

    (void)state;
    assert_non_null(l);
    add(l, 0, "a1", ALEX, "one", MYNA_SIM_PENDING);
    e2 = add(l, 0, "m1", MARINA, "two", MYNA_SIM_PENDING);
    o = myna_sim_log_add(l, 1, "a2", ALEX, "interactive", strdup("Pick"),
                         strdup("\"buttons\":[{\"id\":\"y\",\"title\":\"Yes\"}]"), NULL,
                         MYNA_SIM_SENT, 1773478805);
    assert_non_null(o);
    add(l, 1, "a3", ALEX, NULL, MYNA_SIM_SENT);  /* no text: "" */

    j = render(l, ALEX, 0, 0);
    ev = events(j);
    assert_int_equal(cJSON_GetArraySize(ev), 3);
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 0), "id"), "a1");
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 0), "dir"), "in");
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 0), "status"), "pending");
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 0), "contact"), ALEX);
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 0), "type"), "text");
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 0), "text"), "one");
    x = cJSON_GetArrayItem(ev, 1);
    assert_string_equal(jstr(x, "id"), "a2");
    assert_string_equal(jstr(x, "dir"), "out");
    assert_string_equal(jstr(x, "type"), "interactive");
    assert_string_equal(jstr(x, "status"), "sent");
    assert_int_equal((int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "ts")),
                     1773478805);
    assert_int_equal((uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "seq")),
                     o->seq);
    assert_string_equal(jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(x, "buttons"), 0),
                             "title"),
                        "Yes");
    assert_null(cJSON_GetObjectItemCaseSensitive(x, "error"));
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 2), "text"), "");
    assert_int_equal(top_seq(j), 4);
    cJSON_Delete(j);

    /* all contacts */
    j = render(l, "", 0, 0);
    assert_int_equal(cJSON_GetArraySize(events(j)), 4);
    assert_string_equal(jstr(cJSON_GetArrayItem(events(j), 1), "contact"), MARINA);
    cJSON_Delete(j);

    /* after: only what changed since */
    j = render(l, ALEX, e2->seq, 0);
    assert_int_equal(cJSON_GetArraySize(events(j)), 2);
    assert_string_equal(jstr(cJSON_GetArrayItem(events(j), 0), "id"), "a2");
    cJSON_Delete(j);
    j = render(l, "", 4, 0);
    assert_int_equal(cJSON_GetArraySize(events(j)), 0);
    assert_int_equal(top_seq(j), 4);
    cJSON_Delete(j);

    /* an update brings an old event back, with its error */
    assert_int_equal(myna_sim_log_set(l, myna_sim_log_find(l, "a1"), MYNA_SIM_FAILED,
                                      "bad \"thing\"\n"),
                     1);
    j = render(l, ALEX, 4, 0);
    assert_int_equal(cJSON_GetArraySize(events(j)), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(events(j), 0), "id"), "a1");
    assert_string_equal(jstr(cJSON_GetArrayItem(events(j), 0), "status"), "failed");
    assert_string_equal(jstr(cJSON_GetArrayItem(events(j), 0), "error"), "bad \"thing\"\n");
    cJSON_Delete(j);
    j = render(l, "1", 0, 0);
    assert_int_equal(cJSON_GetArraySize(events(j)), 0);
    cJSON_Delete(j);
    myna_sim_log_free(l);
}

static void test_sim_log_render_escapes(void **state)
{
    static const char *const texts[] = {
        "say \"hi\"",
        "back\\slash \\\" \\n",
        "ctl \x01\x02\x1f\t\r\n\b\f end",
        "\x7f del",
        CYR "\xd0\xbb\xd0\xbb\xd0\xbe " EMOJI " \xe2\x80\xa8 \xe2\x80\xa9",
        "</script><script>alert(1)</script>",
        "{\"events\":[]}",
    };
    struct myna_sim_log *l = myna_sim_log_new();
    const cJSON *ev;
    cJSON *j;
    size_t n = sizeof(texts) / sizeof(texts[0]);

    (void)state;
    assert_non_null(l);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "wamid.\"%zu\\", i);  /* odd ids too */
        add(l, (int)(i % 2), id, ALEX, texts[i], MYNA_SIM_SENT);
    }
    myna_sim_log_set(l, myna_sim_log_find(l, "wamid.\"0\\"), MYNA_SIM_FAILED, "\x01\"\\" CYR);
    j = render(l, ALEX, 0, 0);
    ev = events(j);
    assert_int_equal(cJSON_GetArraySize(ev), (int)n);
    for (size_t i = 0; i < n; i++) {
        const cJSON *e = NULL, *it;
        char id[32];
        snprintf(id, sizeof(id), "wamid.\"%zu\\", i);
        cJSON_ArrayForEach(it, ev)
            if (jstr(it, "id") && strcmp(jstr(it, "id"), id) == 0)
                e = it;
        assert_non_null(e);
        assert_string_equal(jstr(e, "text"), texts[i]);
        if (i == 0)
            assert_string_equal(jstr(e, "error"), "\x01\"\\" CYR);
    }
    cJSON_Delete(j);
    myna_sim_log_free(l);
}

static void test_sim_log_ring(void **state)
{
    struct myna_sim_log *l = myna_sim_log_new();
    const cJSON *ev;
    cJSON *j;
    char id[32];

    (void)state;
    assert_non_null(l);
    for (int i = 0; i < MYNA_SIM_EVENTS_MAX + 5; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        add(l, i % 2, id, i % 3 ? ALEX : MARINA, id, MYNA_SIM_SENT);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        assert_null(myna_sim_log_find(l, id));
    }
    for (int i = 5; i < MYNA_SIM_EVENTS_MAX + 5; i++) {
        struct myna_sim_event *e;
        snprintf(id, sizeof(id), "m%d", i);
        e = myna_sim_log_find(l, id);
        if (e == NULL)
            fail_msg("%s was dropped", id);
        assert_string_equal(e->text, id);
        assert_int_equal(e->seq, (uint64_t)i + 1);
    }
    j = render(l, "", 0, 0);
    ev = events(j);
    assert_int_equal(cJSON_GetArraySize(ev), MYNA_SIM_EVENTS_MAX);
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, 0), "id"), "m5");
    snprintf(id, sizeof(id), "m%d", MYNA_SIM_EVENTS_MAX + 4);
    assert_string_equal(jstr(cJSON_GetArrayItem(ev, MYNA_SIM_EVENTS_MAX - 1), "id"), id);
    assert_int_equal(top_seq(j), MYNA_SIM_EVENTS_MAX + 5);
    cJSON_Delete(j);
    /* the statuses of the survivors still move */
    assert_int_equal(myna_sim_log_set(l, myna_sim_log_find(l, "m5"), MYNA_SIM_READ, NULL), 1);
    myna_sim_log_free(l);
}

/* ---- defaults of sim instances ---- */

struct fix {
    char dir[64];
    char key[128];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (test_tmpdir(f->dir, sizeof(f->dir), "test-sim") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->key, sizeof(f->key), "%s/sim.key", f->dir);
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

static const char *const mixed_json =
    "[{\"id\":\"acme\",\"name\":\"Acme\",\"provider\":\"sim\"},"
    "{\"id\":\"beta\",\"name\":\"Beta\",\"provider\":\"sim\",\"access_token\":\"given-token\","
    "\"graph_url\":\"http://127.0.0.1:9999/v1\"},"
    "{\"id\":\"real\",\"name\":\"Real\",\"provider\":\"cloud\",\"phone_number_id\":\"1001\","
    "\"access_token\":\"EAAreal\",\"app_secret\":\"s3cret\",\"verify_token\":\"vt\"}]";

static void read_file(const char *path, char *out, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    size_t n;

    if (fp == NULL)
        fail_msg("cannot open '%s'", path);
    n = fread(out, 1, cap - 1, fp);
    out[n] = '\0';
    fclose(fp);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

static void test_sim_prepare_creates_key(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    struct stat st;
    char key[256];
    const struct myna_instance *acme, *beta, *real;

    sim_set(&set, mixed_json);
    acme = &set.v[0];
    beta = &set.v[1];
    real = &set.v[2];
    assert_string_equal(acme->access_token, "");
    assert_int_equal(myna_sim_prepare(&set, f->dir, "0.0.0.0:8081", 1, &err), MYNA_OK);
    assert_int_equal(err.code, 0);

    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 64);
    read_file(f->key, key, sizeof(key));
    assert_true(is_hex(key, 64));

    assert_true(is_hex(acme->access_token, 40));
    assert_true(is_hex(acme->app_secret, 40));
    assert_true(is_hex(acme->verify_token, 40));
    assert_string_not_equal(acme->access_token, acme->app_secret);
    assert_string_not_equal(acme->app_secret, acme->verify_token);
    assert_string_not_equal(acme->access_token, acme->verify_token);
    assert_string_equal(acme->graph_url, "http://127.0.0.1:8081/sim/graph");
    assert_true(strlen(acme->phone_number_id) == 15);

    /* what the operator gave stays; the rest differs from acme's */
    assert_string_equal(beta->access_token, "given-token");
    assert_string_equal(beta->graph_url, "http://127.0.0.1:9999/v1");
    assert_true(is_hex(beta->app_secret, 40));
    assert_string_not_equal(beta->app_secret, acme->app_secret);
    assert_string_not_equal(beta->verify_token, acme->verify_token);

    /* the cloud instance is left alone */
    assert_string_equal(real->access_token, "EAAreal");
    assert_string_equal(real->app_secret, "s3cret");
    assert_string_equal(real->verify_token, "vt");
    assert_string_equal(real->graph_url, MYNA_GRAPH_URL_DEFAULT);
    assert_string_equal(real->phone_number_id, "1001");
    myna_instances_release(&set);
}

static void test_sim_prepare_stable(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set a, b;
    struct myna_err err = MYNA_ERR_INIT;
    char key1[256], key2[256], tok[48], sec[48], ver[48];

    sim_set(&a, mixed_json);
    assert_int_equal(myna_sim_prepare(&a, f->dir, NULL, 1, &err), MYNA_OK);
    read_file(f->key, key1, sizeof(key1));
    /* no admin address: graph_url stays empty */
    assert_string_equal(a.v[0].graph_url, "");
    snprintf(tok, sizeof(tok), "%s", a.v[0].access_token);
    snprintf(sec, sizeof(sec), "%s", a.v[0].app_secret);
    snprintf(ver, sizeof(ver), "%s", a.v[0].verify_token);

    /* a second call on the same set changes nothing */
    assert_int_equal(myna_sim_prepare(&a, f->dir, NULL, 1, &err), MYNA_OK);
    assert_string_equal(a.v[0].access_token, tok);
    assert_string_equal(a.v[0].app_secret, sec);
    read_file(f->key, key2, sizeof(key2));
    assert_string_equal(key1, key2);

    /* another process (a bot) parses the same file and gets the same values,
     * without creating anything */
    sim_set(&b, mixed_json);
    assert_int_equal(myna_sim_prepare(&b, f->dir, "127.0.0.1:8081", 0, &err), MYNA_OK);
    assert_string_equal(b.v[0].access_token, tok);
    assert_string_equal(b.v[0].app_secret, sec);
    assert_string_equal(b.v[0].verify_token, ver);
    assert_string_equal(b.v[1].app_secret, a.v[1].app_secret);
    assert_string_equal(b.v[0].graph_url, "http://127.0.0.1:8081/sim/graph");
    read_file(f->key, key2, sizeof(key2));
    assert_string_equal(key1, key2);
    myna_instances_release(&a);
    myna_instances_release(&b);
}

static void test_sim_prepare_ipv6_and_new_dir(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    char dir[128], key[160];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/data", f->dir);
    snprintf(key, sizeof(key), "%s/sim.key", dir);
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, dir, "[::]:9", 1, &err), MYNA_OK);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(stat(key, &st), 0);
    assert_string_equal(set.v[0].graph_url, "http://[::1]:9/sim/graph");
    myna_instances_release(&set);

    /* an admin address without a port is an error */
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, dir, "localhost", 1, &err), MYNA_EINVAL);
    assert_contains(err.msg, "'localhost'");
    myna_instances_release(&set);
}

static void test_sim_prepare_no_sim_no_key(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    struct stat st;

    sim_set(&set, "[{\"id\":\"real\",\"name\":\"Real\",\"provider\":\"cloud\",\"phone_number_id\":"
                  "\"1001\",\"access_token\":\"t\",\"app_secret\":\"s\",\"verify_token\":\"v\"}]");
    assert_int_equal(myna_sim_prepare(&set, f->dir, "0.0.0.0:1", 1, &err), MYNA_OK);
    assert_int_equal(stat(f->key, &st), -1);
    assert_string_equal(set.v[0].access_token, "t");
    assert_string_equal(set.v[0].graph_url, MYNA_GRAPH_URL_DEFAULT);
    myna_instances_release(&set);
}

static void test_sim_prepare_key_errors(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    struct stat st;
    char *bad, *line, *token;

    /* a bot (create = 0) before the master made the key */
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, f->dir, NULL, 0, &err), MYNA_ENOTFOUND);
    assert_int_equal(err.code, MYNA_ENOTFOUND);
    assert_contains(err.msg, f->key);
    assert_int_equal(stat(f->key, &st), -1);
    assert_string_equal(set.v[0].access_token, "");
    myna_instances_release(&set);

    /* a truncated key */
    write_file(f->key, "0123abcd");
    assert_int_equal(chmod(f->key, 0600), 0);
    sim_set(&set, sim_json);
    memset(&err, 0, sizeof(err));
    assert_int_equal(myna_sim_prepare(&set, f->dir, NULL, 1, &err), MYNA_ECONFIG);
    assert_contains(err.msg, f->key);
    assert_contains(err.msg, "must hold exactly 64 hex digits");
    myna_instances_release(&set);

    /* an empty one */
    write_file(f->key, "");
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, f->dir, NULL, 0, &err), MYNA_ECONFIG);
    assert_contains(err.msg, f->key);
    myna_instances_release(&set);

    /* 64 bytes that are not hex digits */
    bad = rep("z", 64);
    write_file(f->key, bad);
    free(bad);
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, f->dir, NULL, 1, &err), MYNA_ECONFIG);
    assert_contains(err.msg, f->key);
    assert_string_equal(set.v[0].access_token, "");
    myna_instances_release(&set);

    /* a key others may read signs nothing: the sim instances' secrets
     * would be theirs too */
    bad = rep("ab", 32);
    write_file(f->key, bad);
    free(bad);
    assert_int_equal(chmod(f->key, 0644), 0);
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, f->dir, NULL, 1, &err), MYNA_ECONFIG);
    assert_contains(err.msg, "chmod 600");
    assert_string_equal(set.v[0].access_token, "");
    myna_instances_release(&set);

    /* the key file left as found */
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_size, 64);

    /* made private, it is the key, a line break after it or not */
    assert_int_equal(chmod(f->key, 0600), 0);
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, f->dir, NULL, 0, &err), MYNA_OK);
    assert_non_null(token = strdup(set.v[0].access_token));
    myna_instances_release(&set);
    bad = rep("ab", 32);
    line = malloc(strlen(bad) + 2);
    assert_non_null(line);
    snprintf(line, strlen(bad) + 2, "%s\n", bad);
    write_file(f->key, line);
    free(line);
    free(bad);
    sim_set(&set, sim_json);
    assert_int_equal(myna_sim_prepare(&set, f->dir, NULL, 0, &err), MYNA_OK);
    assert_string_equal(set.v[0].access_token, token);
    free(token);
    myna_instances_release(&set);
}

static void test_sim_prepare_ids_differ(void **state)
{
    struct fix *f = *state;
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;

    sim_set(&set, "[{\"id\":\"one\",\"name\":\"1\",\"provider\":\"sim\"},"
                  "{\"id\":\"two\",\"name\":\"2\",\"provider\":\"sim\"}]");
    assert_int_equal(myna_sim_prepare(&set, f->dir, "127.0.0.1:80", 1, &err), MYNA_OK);
    assert_string_not_equal(set.v[0].access_token, set.v[1].access_token);
    assert_string_not_equal(set.v[0].app_secret, set.v[1].app_secret);
    assert_string_not_equal(set.v[0].verify_token, set.v[1].verify_token);
    assert_string_not_equal(set.v[0].phone_number_id, set.v[1].phone_number_id);
    assert_string_equal(set.v[1].graph_url, "http://127.0.0.1:80/sim/graph");
    myna_instances_release(&set);
}

static void test_sim_local_url(void **state)
{
    char out[128];

    (void)state;
    assert_int_equal(myna_sim_local_url("127.0.0.1:8080", "/sim/graph", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8080/sim/graph");
    assert_int_equal(myna_sim_local_url("0.0.0.0:8081", "", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8081");
    assert_int_equal(myna_sim_local_url("[::]:9", "/x", out, sizeof(out)), 0);
    assert_string_equal(out, "http://[::1]:9/x");
    assert_int_equal(myna_sim_local_url("[::1]:8443", "/sim", out, sizeof(out)), 0);
    assert_string_equal(out, "http://[::1]:8443/sim");
    assert_int_equal(myna_sim_local_url("[2001:db8::5]:65535", "", out, sizeof(out)), 0);
    assert_string_equal(out, "http://[2001:db8::5]:65535");
    assert_int_equal(myna_sim_local_url("localhost:3000", "/p", out, sizeof(out)), 0);
    assert_string_equal(out, "http://localhost:3000/p");
    assert_int_equal(myna_sim_local_url("10.1.2.3:1", "/", out, sizeof(out)), 0);
    assert_string_equal(out, "http://10.1.2.3:1/");

    assert_int_equal(myna_sim_local_url("localhost", "/", out, sizeof(out)), -1);
    assert_int_equal(myna_sim_local_url("localhost:", "/", out, sizeof(out)), -1);
    assert_int_equal(myna_sim_local_url("localhost:0", "/", out, sizeof(out)), -1);
    assert_int_equal(myna_sim_local_url("localhost:65536", "/", out, sizeof(out)), -1);
    assert_int_equal(myna_sim_local_url("localhost:80x", "/", out, sizeof(out)), -1);
    assert_int_equal(myna_sim_local_url("[::1]", "/", out, sizeof(out)), -1);
    assert_int_equal(myna_sim_local_url("", "/", out, sizeof(out)), -1);
}

#define T(fn) cmocka_unit_test(fn)
#define TD(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sim_send_text),
        T(test_sim_send_button),
        T(test_sim_send_list),
        T(test_sim_send_limits),
        T(test_sim_send_body_max),
        T(test_sim_send_not_an_object),
        T(test_sim_send_unknown_field),
        T(test_sim_send_unknown_field_utf8),
        T(test_sim_send_bad_from),
        T(test_sim_send_bad_name),
        T(test_sim_send_one_of),
        T(test_sim_send_bad_text),
        T(test_sim_send_bad_reply),
        T(test_sim_send_bad_context),
        T(test_sim_graph_text),
        T(test_sim_graph_envelope),
        T(test_sim_graph_trailing_bytes),
        T(test_sim_graph_buttons),
        T(test_sim_graph_interactive_texts),
        T(test_sim_graph_buttons_unique),
        T(test_sim_graph_button_type),
        T(test_sim_graph_list_row_ids_unique),
        T(test_sim_graph_list_section_titles),
        T(test_sim_graph_list),
        T(test_sim_graph_read),
        T(test_sim_graph_media),
        T(test_sim_graph_opaque),
        T(test_sim_graph_error_body),
        T(test_sim_webhook_text),
        T(test_sim_webhook_button_reply),
        T(test_sim_webhook_list_reply),
        T(test_sim_webhook_status),
        T(test_sim_wamid),
        T(test_sim_log_add_find),
        T(test_sim_log_render_pages),
        T(test_sim_log_render_pages_by_seq),
        T(test_sim_log_set_forward_only),
        T(test_sim_log_read_upto),
        T(test_sim_log_seen),
        T(test_sim_log_typing),
        T(test_sim_log_render_filters),
        T(test_sim_log_render_escapes),
        T(test_sim_log_ring),
        TD(test_sim_prepare_creates_key),
        TD(test_sim_prepare_stable),
        TD(test_sim_prepare_ipv6_and_new_dir),
        TD(test_sim_prepare_no_sim_no_key),
        TD(test_sim_prepare_key_errors),
        TD(test_sim_prepare_ids_differ),
        T(test_sim_local_url),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
