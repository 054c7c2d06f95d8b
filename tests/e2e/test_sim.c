/* test_sim.c - the simulator end to end: the real master and bot, a sim
 * instance with no credentials, customer messages from the chat API and
 * from `myna chat`, replies through the fake Graph API, statuses back
 * through the real ingress, and the errors of every endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CUSTOMER "15550001111"

static const char *const instances_json =
    "[{\"id\":\"shop\",\"name\":\"Shop\",\"provider\":\"sim\",\"batch\":{\"window_ms\":200},"
    "\"faq\":[{\"q\":[\"when are you open\",\"opening hours\"],\"a\":\"We are open 9-18.\"},"
    "{\"q\":[\"where are you\",\"address\"],\"a\":\"Main street 1.\"}],"
    "\"fallback_text\":\"Sorry, I do not know.\"}]";

struct ctx {
    struct myna_proc p;
    char resp[256 * 1024];
    char pnid[32], token[128];
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    const char *extra[] = { "--bots", "1", NULL };
    cJSON *info;
    char url[256];

    if (c == NULL || h_setup(&c->p, instances_json) != 0 || h_start(&c->p, extra) != 0)
        return -1;
    snprintf(url, sizeof(url), "%s/sim/shop/info", c->p.admin_url);
    if (h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)) != 200 ||
        (info = cJSON_Parse(c->resp)) == NULL)
        return -1;
    snprintf(c->pnid, sizeof(c->pnid), "%s",
             cJSON_GetObjectItem(info, "phone_number_id")->valuestring);
    snprintf(c->token, sizeof(c->token), "%s",
             cJSON_GetObjectItem(info, "access_token")->valuestring);
    cJSON_Delete(info);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(h_stop(&c->p, SIGTERM), 0);
    h_cleanup(&c->p);
    free(c);
    return 0;
}

static long sim_post(struct ctx *c, const char *path, const char *body)
{
    char url[256];
    const char *h[] = { "Content-Type: application/json", NULL };

    snprintf(url, sizeof(url), "%s/sim/%s", c->p.admin_url, path);
    return h_http("POST", url, body, strlen(body), h, c->resp, sizeof(c->resp));
}

static long graph_post(struct ctx *c, const char *token, const char *body)
{
    char url[256], auth[200];
    const char *h[] = { "Content-Type: application/json", auth, NULL };

    snprintf(url, sizeof(url), "%s/sim/graph/%s/messages", c->p.admin_url, c->pnid);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    return h_http("POST", url, body, strlen(body), h, c->resp, sizeof(c->resp));
}

/* The events of contact (a parsed array the caller deletes), or NULL. */
static cJSON *events(struct ctx *c, const char *contact)
{
    char url[256];

    snprintf(url, sizeof(url), "%s/sim/shop/events?contact=%s&after=0", c->p.admin_url, contact);
    if (h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)) != 200)
        return NULL;
    return cJSON_Parse(c->resp);
}

/* The status of the event with this dir and text, or "" if none. */
static const char *status_of(const cJSON *root, const char *dir, const char *text, char *out,
                             size_t cap)
{
    const cJSON *e;

    out[0] = '\0';
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "events")) {
        if (strcmp(cJSON_GetObjectItem(e, "dir")->valuestring, dir) == 0 &&
            strcmp(cJSON_GetObjectItem(e, "text")->valuestring, text) == 0)
            snprintf(out, cap, "%s", cJSON_GetObjectItem(e, "status")->valuestring);
    }
    return out;
}

struct want {
    struct ctx *c;
    const char *contact, *dir, *text, *status;
};

static int has_status(void *arg)
{
    struct want *w = arg;
    cJSON *r = events(w->c, w->contact);
    char st[32];
    int ok = r && strcmp(status_of(r, w->dir, w->text, st, sizeof(st)), w->status) == 0;

    cJSON_Delete(r);
    return ok;
}

struct count_want {
    struct ctx *c;
    const char *table, *where;
    long n;
};

static int has_count(void *arg)
{
    struct count_want *w = arg;

    return h_db_count(&w->c->p, "shop", w->table, w->where) == w->n;
}

/* A customer question answered from the FAQ through the whole production
 * path; ticks go sent -> read for the customer's message (the bot marked
 * it read) and delivered -> read for the reply once the customer looked,
 * and those statuses reach the bot's outbox through the ingress. */
static void test_question_answered_with_ticks(void **state)
{
    struct ctx *c = *state;
    struct want in_read = { c, CUSTOMER, "in", "when are you open?", "read" };
    struct want out_read = { c, CUSTOMER, "out", "We are open 9-18.", "read" };
    struct count_want outbox_read = { c, "outbox", "status = 'read'", 1 };
    cJSON *r;

    assert_int_equal(sim_post(c, "shop/send",
                              "{\"from\":\"" CUSTOMER "\",\"name\":\"Ann\","
                              "\"text\":\"when are you open?\"}"),
                     200);
    assert_non_null(strstr(c->resp, "\"id\":\"wamid.SIM"));
    assert_true(h_wait(has_status, &in_read, 10000));
    assert_true(h_wait(has_status, &out_read, 10000));  /* polling = the customer looked */
    assert_true(h_wait(has_count, &outbox_read, 10000));
    assert_int_equal(h_db_count(&c->p, "shop", "inbox", "profile_name = 'Ann'"), 1);
    /* another customer sees none of it */
    r = events(c, "15550009999");
    assert_non_null(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "events")), 0);
    cJSON_Delete(r);
}

/* A button message from the Graph side is shown with its buttons; the
 * customer's click arrives at the ingress as a button reply quoting it. */
static void test_buttons_round_trip(void **state)
{
    struct ctx *c = *state;
    cJSON *r, *e, *sent;
    const char *wamid = NULL;
    char body[512];
    struct count_want stored = { c, "inbox", "reply_id = 'b_yes'", 1 };

    assert_int_equal(
        graph_post(c, c->token,
                   "{\"messaging_product\":\"whatsapp\",\"to\":\"+15550002222\","
                   "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\","
                   "\"body\":{\"text\":\"Pick one\"},\"action\":{\"buttons\":["
                   "{\"type\":\"reply\",\"reply\":{\"id\":\"b_yes\",\"title\":\"Yes\"}},"
                   "{\"type\":\"reply\",\"reply\":{\"id\":\"b_no\",\"title\":\"No\"}}]}}}"),
        200);
    assert_non_null(sent = cJSON_Parse(c->resp));
    wamid = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(sent, "messages"), 0),
                                "id")
                ->valuestring;
    r = events(c, "15550002222");
    assert_non_null(r);
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "events"), 0);
    assert_string_equal(cJSON_GetObjectItem(e, "text")->valuestring, "Pick one");
    assert_string_equal(cJSON_GetObjectItem(e, "id")->valuestring, wamid);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "buttons"), 1), "id")
            ->valuestring,
        "b_no");
    cJSON_Delete(r);
    snprintf(body, sizeof(body),
             "{\"from\":\"15550002222\",\"button\":{\"id\":\"b_yes\",\"title\":\"Yes\"},"
             "\"context\":\"%s\"}",
             wamid);
    assert_int_equal(sim_post(c, "shop/send", body), 200);
    assert_true(h_wait(has_count, &stored, 5000));
    snprintf(body, sizeof(body), "reply_id = 'b_yes' AND context_id = '%s'", wamid);
    assert_int_equal(h_db_count(&c->p, "shop", "inbox", body), 1);
    cJSON_Delete(sent);
}

/* `myna chat` sends what is typed and prints the answers, then stops at
 * the end of input once they came. */
static void test_terminal_chat(void **state)
{
    struct ctx *c = *state;
    char out[16384], admin[64];
    const char *args[] = { "chat", "shop", "--admin", admin, "--from", "15550003333",
                           "--linger", "15000", NULL };
    const char *bad[] = { "chat", "nope", "--admin", admin, NULL };

    snprintf(admin, sizeof(admin), "%s", c->p.admin_url + strlen("http://"));
    assert_int_equal(h_run_input(args, "where are you?\n", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "bot: Main street 1."));
    assert_int_equal(h_run_input(bad, "", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no sim instance"));
}

/* A line longer than `myna chat` reads (16 KiB) is dropped whole, with a
 * word on stderr; the lines after it are sent, and the exit is 1: a line
 * of the piped input did not go. Two lengths, since a piece
 * of a line leaking out is only seen here when it is short enough for the
 * simulator (4096 characters). */
static void test_terminal_chat_drops_overlong_lines(void **state)
{
    struct ctx *c = *state;
    char out[16384], admin[64];
    const char *args[] = { "chat", "shop", "--admin", admin, "--from", "15550005555",
                           "--linger", "15000", NULL };
    size_t n = 0;
    char *input = malloc(30001 + 20001 + 7);
    cJSON *r;
    const cJSON *e;
    int in = 0;
    char other[80] = "";

    assert_non_null(input);
    memset(input, 'x', 30000);
    n = 30000;
    input[n++] = '\n';
    memset(input + n, 'y', 20000);
    n += 20000;
    input[n++] = '\n';
    memcpy(input + n, "hello\n", 7);  /* with its NUL */
    snprintf(admin, sizeof(admin), "%s", c->p.admin_url + strlen("http://"));
    assert_int_equal(h_run_input(args, input, out, sizeof(out)), 1);
    free(input);
    assert_non_null(r = events(c, "15550005555"));
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(r, "events")) {
        const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
        if (strcmp(cJSON_GetObjectItem(e, "dir")->valuestring, "in") != 0)
            continue;
        in++;
        if (strcmp(text, "hello") != 0 && other[0] == '\0')
            snprintf(other, sizeof(other), "'%.40s' (%zu characters)", text, strlen(text));
    }
    cJSON_Delete(r);
    if (other[0])
        fail_msg("sent: %s", other);
    assert_int_equal(in, 1);
    assert_non_null(strstr(out, "bot: Sorry, I do not know."));
    assert_non_null(strstr(out, "a line of 16 KiB or more was dropped"));
}

/* Every endpoint refuses bad input with a clear 4xx and goes on working. */
static void test_bad_input(void **state)
{
    struct ctx *c = *state;
    char url[256], big[5200];
    size_t n;

    assert_int_equal(sim_post(c, "shop/send", "not json"), 400);
    assert_non_null(strstr(c->resp, "JSON object"));
    assert_int_equal(sim_post(c, "shop/send", "{\"from\":\"abc\",\"text\":\"x\"}"), 400);
    assert_non_null(strstr(c->resp, "'from'"));
    assert_int_equal(sim_post(c, "shop/send", "{\"from\":\"1\",\"text\":\"x\",\"x\":1}"), 400);
    assert_int_equal(sim_post(c, "nope/send", "{\"from\":\"1\",\"text\":\"x\"}"), 404);
    snprintf(url, sizeof(url), "%s/sim/shop/events?contact=12ab", c->p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)), 400);
    snprintf(url, sizeof(url), "%s/sim/shop/send", c->p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)), 405);
    /* the page and the list are there too, for GET only: 405, not 404 or 200 */
    snprintf(url, sizeof(url), "%s/sim/shop", c->p.admin_url);
    assert_int_equal(h_http("POST", url, "{}", 2, NULL, c->resp, sizeof(c->resp)), 405);
    assert_non_null(strstr(c->resp, "method not allowed"));
    snprintf(url, sizeof(url), "%s/sim", c->p.admin_url);
    assert_int_equal(h_http("DELETE", url, NULL, 0, NULL, c->resp, sizeof(c->resp)), 405);
    snprintf(url, sizeof(url), "%s/sim/shop/send", c->p.admin_url);
    {   /* what another site's page may post without asking (no CORS preflight) */
        const char *plain[] = { "Content-Type: text/plain", NULL };
        const char *ok = "{\"from\":\"15550005555\",\"text\":\"hi\"}";
        assert_int_equal(h_http("POST", url, ok, strlen(ok), plain, c->resp, sizeof(c->resp)),
                         415);
        assert_int_equal(h_http("POST", url, ok, strlen(ok), NULL, c->resp, sizeof(c->resp)),
                         415);
        assert_non_null(strstr(c->resp, "application/json"));
    }
    snprintf(url, sizeof(url), "%s/sim/shop", c->p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)), 200);
    assert_true(strstr(c->resp, "<html") != NULL || strstr(c->resp, "<!doctype") != NULL);
    /* the fake Graph API answers as Meta does */
    assert_int_equal(graph_post(c, "wrong", "{}"), 401);
    assert_non_null(strstr(c->resp, "\"code\":190"));
    n = (size_t)snprintf(big, sizeof(big),
                         "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"text\":{\"body\":\"");
    memset(big + n, 'a', 4097);  /* one character over Meta's limit */
    snprintf(big + n + 4097, sizeof(big) - n - 4097, "\"}}");
    assert_int_equal(graph_post(c, c->token, big), 400);
    assert_non_null(strstr(c->resp, "\"code\":100"));
    assert_int_equal(graph_post(c, c->token, "{\"to\":\"1\",\"text\":{\"body\":\"x\"}}"), 400);
    snprintf(url, sizeof(url), "%s/sim/graph/123/messages", c->p.admin_url);
    assert_int_equal(h_http("POST", url, "{}", 2, NULL, c->resp, sizeof(c->resp)), 400);
    /* still serving */
    assert_int_equal(sim_post(c, "shop/send", "{\"from\":\"15550004444\",\"text\":\"hi\"}"), 200);
}

/* A sim instance called "graph" (its three paths are not the fake Graph
 * API's), and a message the ingress refuses (a body over max_body_bytes):
 * the 502 names the message's id, and its log event is that one message. */
static int setup_graph(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    const char *extra[] = { "--bots", "1", "--max-body-bytes", "1024", NULL };

    *state = c;
    return c && h_setup(&c->p, "[{\"id\":\"graph\",\"name\":\"G\",\"provider\":\"sim\"}]") == 0 &&
                   h_start(&c->p, extra) == 0
               ? 0
               : -1;
}

static void test_instance_named_graph_and_refused_send(void **state)
{
    struct ctx *c = *state;
    char url[256], body[1400], id[128];
    cJSON *r, *e;
    int n = 0;

    snprintf(url, sizeof(url), "%s/sim/graph/info", c->p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)), 200);
    assert_non_null(strstr(c->resp, "phone_number_id"));
    assert_int_equal(sim_post(c, "graph/send", "{\"from\":\"15550009999\",\"text\":\"hi\"}"), 200);
    snprintf(body, sizeof(body), "{\"from\":\"15550009999\",\"text\":\"%0700d\"}", 7);
    assert_int_equal(sim_post(c, "graph/send", body), 502);
    assert_non_null(r = cJSON_Parse(c->resp));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "id")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "error")));
    snprintf(id, sizeof(id), "%s", cJSON_GetObjectItem(r, "id")->valuestring);
    cJSON_Delete(r);
    snprintf(url, sizeof(url), "%s/sim/graph/events?contact=15550009999&after=0", c->p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)), 200);
    assert_non_null(r = cJSON_Parse(c->resp));
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(r, "events")) {
        if (strcmp(cJSON_GetObjectItem(e, "id")->valuestring, id) == 0) {
            n++;
            assert_string_equal(cJSON_GetObjectItem(e, "status")->valuestring, "failed");
        }
    }
    cJSON_Delete(r);
    assert_int_equal(n, 1);
}

/* The fake Graph API reads the Bearer scheme as the admin API does: its
 * name in any case, then one or more spaces. */
static void test_graph_bearer_scheme_in_any_case(void **state)
{
    struct ctx *c = *state;
    const char *body = "{\"messaging_product\":\"whatsapp\",\"to\":\"15550004444\","
                       "\"type\":\"text\",\"text\":{\"body\":\"hi\"}}";
    const char *const ok[] = { "bearer ", "BEARER ", "Bearer   " };
    const char *const bad[] = { "Bearer", "Basic " };
    char url[256], auth[200];
    const char *h[] = { "Content-Type: application/json", auth, NULL };

    snprintf(url, sizeof(url), "%s/sim/graph/%s/messages", c->p.admin_url, c->pnid);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(auth, sizeof(auth), "Authorization: %s%s", ok[i], c->token);
        if (h_http("POST", url, body, strlen(body), h, c->resp, sizeof(c->resp)) != 200)
            fail_msg("'%s<token>': %s", ok[i], c->resp);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(auth, sizeof(auth), "Authorization: %s%s", bad[i], c->token);
        assert_int_equal(h_http("POST", url, body, strlen(body), h, c->resp, sizeof(c->resp)),
                         401);
    }
}

/* has_status, asking without a contact: nobody looks, nothing turns read. */
static int has_status_unlooked(void *arg)
{
    struct want *w = arg;
    char url[256], st[32];
    cJSON *r;
    int ok;

    snprintf(url, sizeof(url), "%s/sim/shop/events?after=0", w->c->p.admin_url);
    if (h_http("GET", url, NULL, 0, NULL, w->c->resp, sizeof(w->c->resp)) != 200)
        return 0;
    r = cJSON_Parse(w->c->resp);
    ok = r && strcmp(status_of(r, w->dir, w->text, st, sizeof(st)), w->status) == 0;
    cJSON_Delete(r);
    return ok;
}

/* HEAD is taken where GET is (RFC 9110 9.3.2), with the Content-Length a
 * GET would get and no body; a HEAD of the events is no customer looking:
 * the delivered reply stays delivered until a GET. */
static void test_head_answered_as_get(void **state)
{
    struct ctx *c = *state;
    struct want delivered = { c, "15550003333", "out", "Main street 1.", "delivered" };
    struct want read = { c, "15550003333", "out", "Main street 1.", "read" };
    char url[256], head[4096], len[32], want[32];

    assert_int_equal(sim_post(c, "shop/send", "{\"from\":\"15550003333\",\"text\":\"address\"}"),
                     200);
    assert_true(h_wait(has_status_unlooked, &delivered, 10000));
    snprintf(url, sizeof(url), "%s/sim/shop/events?contact=15550003333&after=0",
             c->p.admin_url);
    assert_int_equal(h_http_ex("HEAD", url, NULL, 0, NULL, c->resp, sizeof(c->resp), head,
                               sizeof(head)),
                     200);
    assert_string_equal(c->resp, "");
    assert_true(h_header(head, "Content-Length", len, sizeof(len)));
    assert_true(atol(len) > 0);
    assert_true(has_status_unlooked(&delivered));
    assert_true(h_wait(has_status, &read, 10000));  /* a GET with the contact: read */

    snprintf(url, sizeof(url), "%s/sim/shop/info", c->p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, c->resp, sizeof(c->resp)), 200);
    snprintf(want, sizeof(want), "%zu", strlen(c->resp));
    assert_int_equal(h_http_ex("HEAD", url, NULL, 0, NULL, NULL, 0, head, sizeof(head)), 200);
    assert_true(h_header(head, "Content-Length", len, sizeof(len)));
    assert_string_equal(len, want);
    assert_int_equal(h_http_ex("POST", url, "{}", 2, NULL, NULL, 0, head, sizeof(head)), 405);
    assert_true(h_header(head, "Allow", len, sizeof(len)));
    assert_string_equal(len, "GET, HEAD");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_question_answered_with_ticks),
        cmocka_unit_test(test_buttons_round_trip),
        cmocka_unit_test(test_terminal_chat),
        cmocka_unit_test(test_terminal_chat_drops_overlong_lines),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_head_answered_as_get),
        cmocka_unit_test(test_graph_bearer_scheme_in_any_case),
    };
    const struct CMUnitTest graph[] = {
        cmocka_unit_test(test_instance_named_graph_and_refused_send),
    };
    int rc;

    if (getenv("MYNA_TEST_FILTER"))  /* one case: MYNA_TEST_FILTER=test_name (globs) */
        cmocka_set_test_filter(getenv("MYNA_TEST_FILTER"));
    rc = cmocka_run_group_tests(tests, setup, teardown);

    return rc | cmocka_run_group_tests_name("sim_graph", graph, setup_graph, teardown);
}
