/* test_conversation.c - the conversation end to end: the real master and
 * bot processes, a fake OpenAI-compatible server and a fake Graph API (which
 * posts signed status webhooks back to the ingress, like Meta). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "core/util.h"
#include "wa/format.h"

#define SECRET "conv-app-secret-0123456789"
#define PHONE_ID "481516234200915"
#define WINDOW_MS 400
#define HOLD_MS "2500"  /* --send-hold-ms */

struct fx {
    struct myna_proc p;
    struct h_fake llm, graph;
    char public_addr[64];
};

static char body_buf[1 << 20];
static int silent_graph;  /* the next fx_start: a Graph API that sends no statuses */
static int batch_max = 10;  /* the next fx_start's batch.max */
static const char *send_tries = "15";  /* the next fx_start's --send-tries */
static const char *heartbeat_timeout = "30000";  /* the next fx_start's heartbeat timeout */

static int fx_start(struct fx *f, const char *extra_fields, int with_llm)
{
    char json[8192], addr[64], hook[160];
    int port = h_free_port();
    const char *graph_args[] = { "--listen", "127.0.0.1:0", "--token", "tok-conv", "--webhook",
                                 hook, "--app-secret", SECRET, "--phone-number-id", PHONE_ID,
                                 NULL };
    const char *quiet_args[] = { "--listen", "127.0.0.1:0", "--token", "tok-conv", NULL };
    const char *llm_args[] = { "--listen", "127.0.0.1:0", NULL };
    const char *extra[] = { "--public", addr, "--bots", "1", "--send-reconcile-ms", "1500",
                            "--send-unconfirmed-ms", "1000", "--send-hold-ms", HOLD_MS,
                            "--send-tries", send_tries, "--bot-heartbeat-timeout-ms",
                            heartbeat_timeout, NULL };

    memset(f, 0, sizeof(*f));
    if (port <= 0 || h_setup(&f->p, NULL) != 0)
        return -1;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/webhook/conv", port);
    if (h_fake_start(&f->graph, f->p.dir, "graph", MYNA_FAKE_GRAPH,
                     silent_graph ? quiet_args : graph_args) != 0 ||
        h_fake_start(&f->llm, f->p.dir, "llm", MYNA_FAKE_LLM, llm_args) != 0)
        return -1;
    snprintf(json, sizeof(json),
             "[{\"id\":\"conv\",\"name\":\"Conversation\",\"provider\":\"cloud\","
             "\"phone_number_id\":\"" PHONE_ID "\",\"access_token\":\"tok-conv\","
             "\"app_secret\":\"" SECRET "\",\"verify_token\":\"v\",\"graph_url\":\"%s/v25.0\","
             "\"batch\":{\"window_ms\":%d,\"max\":%d}%s%s%s%s}]",
             f->graph.url, WINDOW_MS, batch_max, with_llm ? ",\"llm\":{\"url\":\"" : "",
             with_llm ? f->llm.url : "", with_llm ? "/v1\",\"model\":\"fake-model\"}" : "",
             extra_fields ? extra_fields : "");
    {
        char path[400];
        FILE *fp;
        snprintf(path, sizeof(path), "%s/instances.json", f->p.dir);
        if ((fp = fopen(path, "w")) == NULL)
            return -1;
        fputs(json, fp);
        fclose(fp);
    }
    return h_start(&f->p, extra);
}

/* A fixture started with the instance's extra fields (and an LLM). */
static int bot_ready(void *arg)
{
    return h_log_contains(arg, "event=bot_ready");
}

/* The bot is up before a case posts: a message that waits in the inbox
 * for a slow start is answered together with the next one, which some
 * cases must tell apart (batch.max 1). */
static int fx_setup(void **state, const char *fields, int with_llm)
{
    struct fx *f = calloc(1, sizeof(*f));

    *state = f;
    return f && fx_start(f, fields, with_llm) == 0 && h_wait(bot_ready, &f->p, 15000) ? 0 : -1;
}

static int setup_llm(void **state)
{
    return fx_setup(state, ",\"access\":{\"blocked\":[\"79037654321\"]}", 1);
}

static int setup_faq(void **state)
{
    return fx_setup(state,
                    ",\"faq\":[{\"q\":[\"Сколько стоит стрижка?\",\"цена стрижки\"],"
                    "\"a\":\"Мужская стрижка стоит 1500 ₽.\"},"
                    "{\"q\":[\"Где вы находитесь?\",\"адрес\"],\"a\":\"Тверская, 1.\"},"
                    "{\"q\":[\"Kaspi QR\",\"What is it?\"],\"a\":\"Да, Kaspi QR.\"}],"
                    "\"fallback_text\":\"Администратор скоро ответит.\"",
                    0);
}

static int setup_rate(void **state)
{
    return fx_setup(state,
                    ",\"rate_limit\":{\"count\":2,\"hours\":1,\"notice\":\"Лимит вопросов исчерпан\"}",
                    1);
}

static int setup_loop(void **state)
{
    return fx_setup(state,
                    ",\"loop_guard\":{\"repeat_limit\":3,\"replies_per_minute\":4,"
                    "\"cooldown_s\":600}",
                    1);
}

static int setup_silent(void **state)
{
    int rc;

    silent_graph = 1;
    rc = fx_setup(state, NULL, 1);
    silent_graph = 0;
    return rc;
}

static int setup_tries3(void **state)
{
    int rc;

    send_tries = "3";
    rc = fx_setup(state, NULL, 1);
    send_tries = "15";
    return rc;
}

static int setup_tries1(void **state)
{
    int rc;

    send_tries = "1";
    rc = fx_setup(state, NULL, 1);
    send_tries = "15";
    return rc;
}

static int setup_heartbeat3s(void **state)
{
    int rc;

    heartbeat_timeout = "3000";
    rc = fx_setup(state, NULL, 1);
    heartbeat_timeout = "30000";
    return rc;
}

static int setup_batch1(void **state)
{
    int rc;

    batch_max = 1;
    rc = fx_setup(state, NULL, 1);
    batch_max = 10;
    return rc;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f) {
        h_stop(&f->p, SIGTERM);
        h_fake_stop(&f->llm);
        h_fake_stop(&f->graph);
        h_cleanup(&f->p);
        free(f);
    }
    return 0;
}

/* ---- what the customer sends ------------------------------------------- */

/* The WhatsApp name the customer's webhooks carry. */
static const char *profile_name = "Алексей";

static void post_at(struct fx *f, const char *from, const char *wamid, const char *message_json,
                    long ts)
{
    int n = snprintf(body_buf, sizeof(body_buf),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                     "{\"display_phone_number\":\"79990001122\",\"phone_number_id\":\"" PHONE_ID "\"},"
                     "\"contacts\":[{\"profile\":{\"name\":\"%s\"},\"wa_id\":\"%s\"}],"
                     "\"messages\":[{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%ld\",%s}]},"
                     "\"field\":\"messages\"}]}]}",
                     profile_name, from, from, wamid, ts, message_json);
    assert_int_equal(h_post_signed(f->p.public_url, "conv", SECRET, body_buf, (size_t)n, NULL, 0),
                     200);
}

static void post(struct fx *f, const char *from, const char *wamid, const char *message_json)
{
    post_at(f, from, wamid, message_json, (long)time(NULL));
}

static void post_text(struct fx *f, const char *from, const char *wamid, const char *text)
{
    char m[2048];

    snprintf(m, sizeof(m), "\"type\":\"text\",\"text\":{\"body\":\"%s\"}", text);
    post(f, from, wamid, m);
}

/* ---- what the fakes saw ------------------------------------------------- */

static cJSON *fake_get(const struct h_fake *fk, const char *path)
{
    char url[256];
    static char resp[1 << 20];

    snprintf(url, sizeof(url), "%s%s", fk->url, path);
    if (h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)) != 200)
        return NULL;
    return cJSON_Parse(resp);
}

/* Texts Myna sent through the Graph API, in order. */
static int sent_texts(struct fx *f, char texts[][512], int max)
{
    cJSON *all = fake_get(&f->graph, "/_fake/messages"), *m;
    int n = 0;

    cJSON_ArrayForEach(m, all) {
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(m, "body");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(body ? body : m, "text");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(text, "body");
        if (cJSON_IsString(b) && n < max)
            snprintf(texts[n++], 512, "%s", b->valuestring);
    }
    cJSON_Delete(all);
    return n;
}

/* The last user message of each chat-completions request, in order. */
static int llm_user_texts(struct fx *f, char texts[][512], int max)
{
    cJSON *all = fake_get(&f->llm, "/_fake/requests"), *r;
    int n = 0;

    cJSON_ArrayForEach(r, all) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(r, "messages"), *m;
        const char *last = NULL;
        cJSON_ArrayForEach(m, msgs) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0 && cJSON_IsString(c))
                last = c->valuestring;
        }
        if (last && n < max)
            snprintf(texts[n++], 512, "%s", last);
    }
    cJSON_Delete(all);
    return n;
}

struct want {
    struct fx *f;
    int n;
};

static int has_sent(void *arg)
{
    struct want *w = arg;
    static char t[64][512];

    return sent_texts(w->f, t, 64) >= w->n;
}

static void wait_sent(struct fx *f, int n)
{
    struct want w = { f, n };

    if (!h_wait(has_sent, &w, 15000))
        fail_msg("fewer than %d replies were sent", n);
}

/* ---- the cases ----------------------------------------------------------- */

static void test_three_fragments_one_turn(void **state)
{
    struct fx *f = *state;
    char llm[8][512], sent[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 3) * 1000000L };

    post_text(f, "79161234567", "wamid.frag-1", "Хочу записаться");
    post_text(f, "79161234567", "wamid.frag-2", "на стрижку машинкой");
    post_text(f, "79161234567", "wamid.frag-3", "завтра в 15:00");
    wait_sent(f, 1);
    nanosleep(&settle, NULL);  /* nothing else may follow */
    assert_int_equal(llm_user_texts(f, llm, 8), 1);
    assert_string_equal(llm[0], "Хочу записаться на стрижку машинкой завтра в 15:00");
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: Хочу записаться на стрижку машинкой завтра в 15:00");
    /* the fake counts words as tokens: the usage is kept with the turn */
    assert_int_equal(h_db_count(&f->p, "conv", "turns",
                                "ai = 1 AND prompt_tokens > 0 AND completion_tokens > 0"), 1);
    {   /* the customer's last message was marked read with the typing indicator */
        cJSON *reads = fake_get(&f->graph, "/_fake/reads");
        char *text = cJSON_PrintUnformatted(reads);
        assert_non_null(text);
        assert_non_null(strstr(text, "wamid.frag-3"));
        assert_non_null(strstr(text, "typing_indicator"));
        cJSON_free(text);
        cJSON_Delete(reads);
    }
    /* and the call is on /metrics */
    assert_true(h_metric(&f->p, "myna_llm_requests_total{instance=\"conv\",result=\"ok\"}") == 1);
    assert_true(h_metric(&f->p, "myna_llm_requests_total{instance=\"conv\",result=\"failed\"}") == 0);
    assert_true(h_metric(&f->p, "myna_llm_latency_seconds_count{instance=\"conv\"}") == 1);
    assert_true(h_metric(&f->p, "myna_llm_latency_seconds_bucket{instance=\"conv\",le=\"+Inf\"}") == 1);
    assert_true(h_metric(&f->p, "myna_llm_tokens_total{instance=\"conv\",kind=\"prompt\"}") > 0);
    assert_true(h_metric(&f->p, "myna_llm_tokens_total{instance=\"conv\",kind=\"completion\"}") > 0);
}

static void test_old_messages_get_one_reply(void **state)
{
    struct fx *f = *state;
    char llm[8][512], sent[8][512];
    long old = (long)time(NULL) - 3 * 3600;  /* delivered after a long downtime */
    struct timespec settle = { 0, (WINDOW_MS * 4) * 1000000L };

    post_at(f, "79265550123", "wamid.old-1", "\"type\":\"text\",\"text\":{\"body\":\"Вы открыты?\"}", old);
    post_at(f, "79265550123", "wamid.old-2",
            "\"type\":\"image\",\"image\":{\"id\":\"m1\",\"mime_type\":\"image/jpeg\",\"caption\":\"вот фото\"}",
            old + 5);
    post_at(f, "79265550123", "wamid.old-3", "\"type\":\"text\",\"text\":{\"body\":\"Ау\"}", old + 9);
    wait_sent(f, 1);
    nanosleep(&settle, NULL);
    assert_int_equal(llm_user_texts(f, llm, 8), 1);
    assert_string_equal(llm[0], "Вы открыты? [image] вот фото Ау");
    assert_int_equal(sent_texts(f, sent, 8), 1);
}

static void test_button_cuts_the_batch(void **state)
{
    struct fx *f = *state;
    char llm[8][512];

    post_text(f, "79161234567", "wamid.cut-1", "Здравствуйте");
    post(f, "79161234567", "wamid.cut-2",
         "\"type\":\"interactive\",\"context\":{\"from\":\"79990001122\",\"id\":\"wamid.menu\"},"
         "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":"
         "{\"id\":\"slot:2026-03-14T11:00\",\"title\":\"Суббота 11:00\"}}");
    wait_sent(f, 2);
    assert_int_equal(llm_user_texts(f, llm, 8), 2);
    assert_string_equal(llm[0], "Здравствуйте");  /* the open batch first, cut at once */
    assert_string_equal(llm[1], "Суббота 11:00");
}

/* A flow's answer (nfm_reply) has no bound of its own: a form with a long
 * comment in Cyrillic reaches the model whole, valid UTF-8, never cut
 * inside a character. */
static void test_long_flow_reply_reaches_the_model_whole(void **state)
{
    struct fx *f = *state;
    static char m[32768];
    cJSON *all;
    const cJSON *r, *msg;
    const char *user = NULL;
    int n;

    /* "[flow_reply] " and {"cc":" take 20 bytes: 8,171 more end inside a Я */
    n = snprintf(m, sizeof(m), "\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
                 "\"nfm_reply\":{\"name\":\"feedback\",\"response_json\":\"{\\\"cc\\\":\\\"");
    for (int i = 0; i < 5000; i++)
        n += snprintf(m + n, sizeof(m) - (size_t)n, "%s", "Я");
    snprintf(m + n, sizeof(m) - (size_t)n, "%s", "\\\"}\"}}");
    post(f, "79161234567", "wamid.flow-1", m);
    wait_sent(f, 1);
    all = fake_get(&f->llm, "/_fake/requests");
    cJSON_ArrayForEach(r, all)
        cJSON_ArrayForEach(msg, cJSON_GetObjectItemCaseSensitive(r, "messages")) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
            if (cJSON_IsString(c) && strncmp(c->valuestring, "[flow_reply] ", 13) == 0)
                user = c->valuestring;
        }
    assert_non_null(user);
    assert_true(myna_utf8_count(user) != (size_t)-1);
    assert_int_equal(strlen(user), 13 + 7 + 5000 * 2 + 2);
    cJSON_Delete(all);
}

static void test_duplicate_gives_one_reply(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 3) * 1000000L };

    post_text(f, "79265550123", "wamid.dup-1", "Вы работаете в воскресенье?");
    post_text(f, "79265550123", "wamid.dup-1", "Вы работаете в воскресенье?");
    wait_sent(f, 1);
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 8), 1);
}

static void test_blocked_number_gets_nothing(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 4) * 1000000L };

    post_text(f, "79037654321", "wamid.blocked-1", "Это спам");
    post_text(f, "79161234567", "wamid.ok-1", "А это нет");
    wait_sent(f, 1);
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: А это нет");
    assert_int_equal(h_db_count(&f->p, "conv", "inbox", "contact='79037654321'"), 1);
}

static void test_statuses_reach_the_outbox(void **state)
{
    struct fx *f = *state;

    post_text(f, "79161234567", "wamid.st-1", "Спасибо");
    wait_sent(f, 1);
    for (int i = 0; i < 300 && h_db_count(&f->p, "conv", "outbox", "status='read'") < 1; i++)
        usleep(20000);
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "status='read' AND wamid LIKE 'wamid.%'"), 1);
}

static void test_faq_answers_without_llm(void **state)
{
    struct fx *f = *state;
    char sent[8][512];

    post_text(f, "79161234567", "wamid.faq-1", "сколько стоит стрижка машинкой?");
    wait_sent(f, 1);
    post_text(f, "79037654321", "wamid.faq-2", "какая завтра погода");
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[0], "Мужская стрижка стоит 1500 ₽.");
    assert_string_equal(sent[1], "Администратор скоро ответит.");
    {   /* both were marked read, without a typing indicator: there is no wait */
        cJSON *reads = fake_get(&f->graph, "/_fake/reads");
        char *text = cJSON_PrintUnformatted(reads);
        assert_non_null(text);
        assert_non_null(strstr(text, "wamid.faq-1"));
        assert_non_null(strstr(text, "wamid.faq-2"));
        assert_null(strstr(text, "typing_indicator"));
        cJSON_free(text);
        cJSON_Delete(reads);
    }
    /* no LLM, nothing counted for it */
    assert_true(h_metric(&f->p, "myna_llm_requests_total{instance=\"conv\",result=\"ok\"}") <= 0);
    /* a question of only stopwords loads but can never match: the operator
     * is told which one */
    assert_true(h_bot_log_contains(&f->p, "conv", "event=faq_unmatchable instance=conv "
                                                  "field=faq[2].q[1] question=\"What is it?\""));
    assert_false(h_bot_log_contains(&f->p, "conv", "field=faq[2].q[0]"));
}

static void fault(const struct h_fake *fk, const char *json)
{
    char url[256];

    snprintf(url, sizeof(url), "%s/_fake/faults", fk->url);
    assert_int_equal(h_http("POST", url, json, strlen(json), NULL, NULL, 0), 200);
}

/* Waits for the contact's batch window to pass, so the next text is a turn
 * of its own. */
static void next_turn(void)
{
    struct timespec gap = { 0, (WINDOW_MS + 200) * 1000000L };

    nanosleep(&gap, NULL);
}

/* Two questions in two messages of one burst, no LLM: one reply with both
 * FAQ answers, in the order asked, a blank line between. */
static void test_faq_answers_each_question(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 3) * 1000000L };

    post_text(f, "79161234567", "wamid.faq2-1", "Здравствуйте! Где вы находитесь?");
    post_text(f, "79161234567", "wamid.faq2-2", "И сколько стоит стрижка?");
    wait_sent(f, 1);
    nanosleep(&settle, NULL);  /* nothing else may follow */
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "Тверская, 1.\n\nМужская стрижка стоит 1500 ₽.");
    assert_true(h_bot_log_contains(&f->p, "conv", "event=faq_matched instance=conv answers=2 "));
    /* a greeting alone pulls in no answer: the fallback */
    next_turn();
    post_text(f, "79161234567", "wamid.faq2-3", "Спасибо! Хорошего дня!");
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[1], "Администратор скоро ответит.");
    assert_true(h_bot_log_contains(&f->p, "conv", "event=faq_matched instance=conv answers=0 "));
}

static void test_rate_limit_notice_then_silence(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 4) * 1000000L };

    post_text(f, "79161234567", "wamid.rl-1", "раз");
    wait_sent(f, 1);
    next_turn();
    post_text(f, "79161234567", "wamid.rl-2", "два");
    wait_sent(f, 2);
    next_turn();
    post_text(f, "79161234567", "wamid.rl-3", "три");
    wait_sent(f, 3);
    next_turn();
    post_text(f, "79161234567", "wamid.rl-4", "четыре");
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 8), 3);
    assert_string_equal(sent[0], "ECHO: раз");
    assert_string_equal(sent[1], "ECHO: два");
    assert_string_equal(sent[2], "Лимит вопросов исчерпан");
    /* another contact has its own budget */
    post_text(f, "79265550123", "wamid.rl-5", "а мне?");
    wait_sent(f, 4);
}

static void test_model_down_gives_fallback(void **state)
{
    struct fx *f = *state;
    char sent[8][512];

    fault(&f->llm, "{\"status\":500,\"count\":-1}");
    post_text(f, "79161234567", "wamid.down-1", "Есть кто?");
    wait_sent(f, 1);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "Sorry, I cannot answer right now. We will get back to you soon.");
    assert_true(h_log_contains(&f->p, "event=llm_failed"));
    assert_true(h_metric(&f->p, "myna_llm_requests_total{instance=\"conv\",result=\"failed\"}") == 1);
    assert_true(h_metric(&f->p, "myna_llm_requests_total{instance=\"conv\",result=\"ok\"}") == 0);
}

/* The model answers with fault's reply and the customer gets the fallback:
 * a failed call, said to be a blank answer. */
static void check_blank_answer(struct fx *f, const char *fault_json, const char *wamid)
{
    char sent[8][512];

    fault(&f->llm, fault_json);
    post_text(f, "79161234567", wamid, "Есть кто?");
    wait_sent(f, 1);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "Sorry, I cannot answer right now. We will get back to you soon.");
    assert_true(h_bot_log_contains(&f->p, "conv", "reason=blank_answer"));
    assert_true(h_metric(&f->p, "myna_llm_requests_total{instance=\"conv\",result=\"failed\"}") == 1);
    assert_int_equal(h_db_count(&f->p, "conv", "turns", "state = 1 AND ai = 0"), 1);
}

/* A model answer with nothing that shows once formatted ("---", blank
 * lines) is a failed call: the customer gets the fallback. */
static void test_blank_answer_gives_fallback(void **state)
{
    check_blank_answer(*state, "{\"reply\":\"---\\n\\n   \"}", "wamid.blank-1");
}

/* An empty content (a model that stopped at once, or one whose answer
 * was only thoughts) is a blank answer as well: the log says so, instead
 * of a failed call with no reason and an empty error. */
static void test_empty_answer_is_a_blank_answer(void **state)
{
    struct fx *f = *state;

    check_blank_answer(f, "{\"reply\":\"\"}", "wamid.empty-1");
    assert_false(h_bot_log_contains(&f->p, "conv", "err=\"\""));
}

/* An answer of only Unicode whitespace and characters that show no glyph
 * (NBSP, U+3000, U+2028, U+200B, a line of U+FEFF) would show as an empty
 * message: it is a blank answer too, and the customer gets the fallback. */
static void test_invisible_answer_is_a_blank_answer(void **state)
{
    check_blank_answer(*state,
                       "{\"reply\":\"\\u00a0\\u3000\\u2028\\u200b\\n\\ufeff\\ufeff\\n\"}",
                       "wamid.invisible-1");
}

/* A model answer that cannot be made into WhatsApp text (here 400,000
 * bytes that are not UTF-8: each becomes U+FFFD, three bytes, past the
 * converter's 1 MiB) is a failed call too: the customer gets the fallback
 * at once, instead of the turn staying pending and the model being asked
 * again until the loop guard gave up on the contact. */
static void test_unusable_answer_gives_fallback(void **state)
{
    struct fx *f = *state;
    const char *head = "{\"raw\":\"{\\\"choices\\\":[{\\\"message\\\":{\\\"role\\\":"
                       "\\\"assistant\\\",\\\"content\\\":\\\"";
    const char *tail = "\\\"},\\\"finish_reason\\\":\\\"stop\\\"}]}\"}";
    size_t n_bad = 400000, hl = strlen(head), tl = strlen(tail);
    char *json = malloc(hl + n_bad + tl + 1);
    char sent[8][512];

    assert_non_null(json);
    memcpy(json, head, hl);
    memset(json + hl, 0xFF, n_bad);
    memcpy(json + hl + n_bad, tail, tl + 1);
    fault(&f->llm, json);
    free(json);
    post_text(f, "79161234567", "wamid.unusable-1", "Есть кто?");
    wait_sent(f, 1);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "Sorry, I cannot answer right now. We will get back to you soon.");
    assert_true(h_bot_log_contains(&f->p, "conv", "reason=unusable_answer"));
    assert_true(h_metric(&f->p, "myna_llm_requests_total{instance=\"conv\",result=\"failed\"}") == 1);
    assert_int_equal(h_db_count(&f->p, "conv", "turns", "state = 1 AND ai = 0"), 1);
    assert_false(h_bot_log_contains(&f->p, "conv", "event=turn_commit_failed"));
}

/* A long WhatsApp name is cut for the model's prompt at a whole
 * character: cut at a byte, a name of 199 ASCII letters and an "é" left a
 * lone lead byte, and a model server that reads the request as strict
 * UTF-8 refuses it, so every turn of that customer failed. */
static void test_long_name_cut_at_a_character(void **state)
{
    struct fx *f = *state;
    char name[256];
    cJSON *all;
    const char *sys = NULL;
    const cJSON *r, *m;

    memset(name, 'a', 199);
    snprintf(name + 199, sizeof(name) - 199, "%s", "é and more");
    profile_name = name;
    post_text(f, "79161234567", "wamid.longname-1", "Привет");
    profile_name = "Алексей";
    wait_sent(f, 1);
    all = fake_get(&f->llm, "/_fake/requests");
    cJSON_ArrayForEach(r, all)
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(r, "messages")) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (cJSON_IsString(c) && strstr(c->valuestring, "WhatsApp name is "))
                sys = c->valuestring;
        }
    assert_non_null(sys);
    assert_true(myna_utf8_count(sys) != (size_t)-1);
    assert_non_null(strstr(sys, "aaaa."));  /* the 199 letters, then the sentence's end */
    cJSON_Delete(all);
}

/* The whole bodies of the texts sent, a blank line between two. */
static char *sent_joined(struct fx *f)
{
    cJSON *all = fake_get(&f->graph, "/_fake/messages"), *m;
    size_t cap = 1 << 16, len = 0;
    char *s = calloc(1, cap);

    cJSON_ArrayForEach(m, all) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(m, "body"), "text");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(text, "body");
        if (s && cJSON_IsString(b))
            len += (size_t)snprintf(s + len, cap - len, "%s%s", len ? "\n\n" : "",
                                    b->valuestring);
    }
    cJSON_Delete(all);
    return s;
}

/* The first reply the history of the bot's store holds. */
static char *history_reply(struct fx *f)
{
    char path[400], *reply = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    snprintf(path, sizeof(path), "%s/var/instances/conv.bot.db", f->p.dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT text FROM history WHERE role = 'assistant' ORDER BY rowid",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        reply = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return reply;
}

/* A runaway answer (six paragraphs of 3,000 characters) goes as four
 * messages, the last cut with "…"; the history, which the model is given
 * at the next turns, holds what the customer got, not the dropped end. */
static void test_long_answer_history_holds_what_went(void **state)
{
    struct fx *f = *state;
    cJSON *fx = cJSON_CreateObject();
    char para[3100], sent[8][512], *json, *went, *seen;
    char *reply = calloc(1, 6 * sizeof(para));
    size_t at = 0;

    assert_non_null(reply);
    for (int p = 1; p <= 6; p++) {
        int n = snprintf(para, sizeof(para), "P%d", p);
        while (n < 3000)
            n += snprintf(para + n, sizeof(para) - (size_t)n, " word%d", p);
        at += (size_t)snprintf(reply + at, 6 * sizeof(para) - at, "%s%s.", at ? "\n\n" : "",
                               para);
    }
    cJSON_AddStringToObject(fx, "reply", reply);
    json = cJSON_PrintUnformatted(fx);
    fault(&f->llm, json);
    post_text(f, "79161234567", "wamid.long-1", "расскажи всё");
    wait_sent(f, MYNA_WA_REPLY_MAX_PARTS);  /* committed with the history */
    went = sent_joined(f);
    seen = history_reply(f);
    assert_int_equal(sent_texts(f, sent, 8), MYNA_WA_REPLY_MAX_PARTS);
    assert_non_null(went);
    assert_non_null(seen);
    assert_non_null(strstr(seen, "P4"));
    assert_null(strstr(seen, "P6"));
    assert_true(strlen(seen) > 4 && strcmp(seen + strlen(seen) - strlen("…"), "…") == 0);
    assert_string_equal(seen, went);  /* exactly the four messages */
    free(went);
    free(seen);
    free(json);
    free(reply);
    cJSON_Delete(fx);
}

/* batch.max 1: every text is a turn of its own, the first one too. */
static void test_batch_max_one(void **state)
{
    struct fx *f = *state;
    char llm[8][512];
    struct timespec gap = { 0, 100000000 }, settle = { 0, (WINDOW_MS * 3) * 1000000L };

    post_text(f, "79161234567", "wamid.max1-1", "первое");
    nanosleep(&gap, NULL);
    post_text(f, "79161234567", "wamid.max1-2", "второе");
    wait_sent(f, 2);
    nanosleep(&settle, NULL);
    assert_int_equal(llm_user_texts(f, llm, 8), 2);
    assert_string_equal(llm[0], "первое");
    assert_string_equal(llm[1], "второе");
}

static void test_throughput_errors_are_retried_in_order(void **state)
{
    struct fx *f = *state;
    char sent[8][512];

    fault(&f->graph, "{\"code\":130429,\"http\":400,\"count\":2}");
    post_text(f, "79161234567", "wamid.ord-1", "первый");
    next_turn();
    post_text(f, "79161234567", "wamid.ord-2", "второй");
    next_turn();
    post_text(f, "79161234567", "wamid.ord-3", "третий");
    wait_sent(f, 3);
    assert_int_equal(sent_texts(f, sent, 8), 3);
    assert_string_equal(sent[0], "ECHO: первый");
    assert_string_equal(sent[1], "ECHO: второй");
    assert_string_equal(sent[2], "ECHO: третий");
    assert_true(h_log_contains(&f->p, "event=send_retry"));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "attempts = 3"), 1);
}

static int adopted(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "state = 2 AND wamid IS NOT NULL") == 1;
}

/* Meta takes the message, but the connection breaks before its answer:
 * the bot cannot tell, so it waits for the status webhook (here 1.3 s
 * late, within send_reconcile_ms) instead of sending again at once. The
 * customer gets the reply once. */
static void test_lost_answer_is_not_sent_twice(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 3, 0 };

    fault(&f->graph, "{\"lost\":1,\"status_delay_ms\":1300}");
    post_text(f, "79161234567", "wamid.lost-1", "ответ потерялся");
    wait_sent(f, 1);
    assert_true(h_wait(adopted, &f->p, 10000));
    nanosleep(&settle, NULL);  /* past send_reconcile_ms: nothing more goes */
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: ответ потерялся");
    assert_true(h_log_contains(&f->p, "maybe_sent=1"));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "attempts = 1"), 1);
}

static int resent_after_failed(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "state = 2 AND attempts = 2") == 1;
}

/* Meta takes the reply, then reports it failed with an error worth another
 * try (131000, B4): it is sent again, not left as a dead letter. */
static void test_failed_status_worth_retrying_is_sent_again(void **state)
{
    struct fx *f = *state;
    char sent[8][512];

    fault(&f->graph, "{\"status_fail\":131000}");
    post_text(f, "79161234567", "wamid.sf-1", "ещё раз");
    wait_sent(f, 2);
    assert_true(h_wait(resent_after_failed, &f->p, 10000));
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[0], "ECHO: ещё раз");
    assert_string_equal(sent[1], "ECHO: ещё раз");
    assert_true(h_log_contains(&f->p, "status=failed"));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state = 3"), 0);
}

static int gave_up(void *arg)
{
    return h_db_count(arg, "conv", "outbox",
                      "id = 1 AND state = 3 AND attempts = 3 AND error LIKE 'gave up after 3 sends%'") == 1;
}

/* Meta refuses the first reply again and again (131000, worth another
 * try): after --send-tries 3 it is a dead letter, and the contact's next
 * reply, which waited behind it, goes. */
static void test_retries_end_at_send_tries(void **state)
{
    struct fx *f = *state;
    char sent[8][512];

    fault(&f->graph, "{\"code\":131000,\"http\":500,\"count\":3}");
    post_text(f, "79161234567", "wamid.tries-1", "первый");
    next_turn();
    post_text(f, "79161234567", "wamid.tries-2", "второй");
    assert_true(h_wait(gave_up, &f->p, 20000));
    wait_sent(f, 1);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: второй");
}

static int gave_up_unsure(void *arg)
{
    return h_db_count(arg, "conv", "outbox",
                      "id = 1 AND state = 3 AND wamid IS NULL AND "
                      "error LIKE 'gave up after 1 sends%'") == 1;
}

static int adopted_read(void *arg)
{
    return h_db_count(arg, "conv", "outbox",
                      "id = 1 AND state = 2 AND status = 'read' AND wamid IS NOT NULL") == 1;
}

/* With --send-tries 1, the one send's answer is lost and its status comes
 * only after send_reconcile_ms (1.5 s): the reply is given up. Meta did
 * take it, and its status, naming that send, takes it out of the dead
 * letters: it shows as read, and a replay has nothing to send again. */
static void test_late_status_takes_back_a_dead_letter(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    static char out[4096];
    char data[400];
    const char *replay[] = { "outbox", "replay", "--instance", "conv", "--all", "--data", data,
                             NULL };

    fault(&f->graph, "{\"lost\":1,\"status_delay_ms\":3000}");
    post_text(f, "79161234567", "wamid.late-1", "поздний статус");
    assert_true(h_wait(gave_up_unsure, &f->p, 10000));
    assert_true(h_wait(adopted_read, &f->p, 10000));
    assert_true(h_log_contains(&f->p, "dead_letter=1"));
    assert_true(h_metric(&f->p, "myna_bot_dead_letters{instance=\"conv\"}") == 0);
    /* and it no longer says it was given up */
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "error IS NULL AND error_code = 0"), 1);
    snprintf(data, sizeof(data), "%s/var", f->p.dir);
    assert_int_equal(h_run(replay, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "0 dead letter(s) queued again"));
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: поздний статус");
}

static int failed_131047(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "state = 3 AND error_code = 131047") == 1;
}

/* The first send fails after Meta took it (131000: sent again); the second
 * one's answer is lost, and its status says it failed for good (131047).
 * The status of the second send is adopted, and the "failed" of the first
 * must not outrank it: the reply is a dead letter, not "sent". */
static void test_second_send_failing_is_a_dead_letter(void **state)
{
    struct fx *f = *state;

    fault(&f->graph, "[{\"status_fail\":131000},{\"lost\":1,\"status_fail\":131047}]");
    post_text(f, "79161234567", "wamid.sf2-1", "дважды");
    assert_true(h_wait(failed_131047, &f->p, 15000));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "attempts = 2"), 1);
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state = 2"), 0);
    assert_true(h_log_contains(&f->p, "event=send_reconciled"));
}

/* A status webhook of a message the bot does not know, naming outbox:1. */
static void post_foreign_status(struct fx *f, const char *wamid, const char *to,
                                const char *opaque)
{
    int n = snprintf(body_buf, sizeof(body_buf),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                     "{\"display_phone_number\":\"79990001122\",\"phone_number_id\":\"" PHONE_ID "\"},"
                     "\"statuses\":[{\"id\":\"%s\",\"status\":\"delivered\",\"timestamp\":\"%ld\","
                     "\"recipient_id\":\"%s\",\"biz_opaque_callback_data\":\"%s\"}]},"
                     "\"field\":\"messages\"}]}]}",
                     wamid, (long)time(NULL), to, opaque);

    assert_int_equal(h_post_signed(f->p.public_url, "conv", SECRET, body_buf, (size_t)n, NULL, 0),
                     200);
}

/* The callback data and wamid of the n-th send the fake Graph API took. */
static void sent_opaque(struct fx *f, int n, char *opaque, size_t ocap, char *wamid, size_t wcap)
{
    cJSON *all = fake_get(&f->graph, "/_fake/messages");
    const cJSON *m = cJSON_GetArrayItem(all, n);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "body"), "biz_opaque_callback_data");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(m, "wamid");

    assert_true(cJSON_IsString(o) && cJSON_IsString(w));
    snprintf(opaque, ocap, "%s", o->valuestring);
    snprintf(wamid, wcap, "%s", w->valuestring);
    cJSON_Delete(all);
}

static char where_buf[256];

static int where_holds(void *arg)
{
    return h_db_count(arg, "conv", "outbox", where_buf) == 1;
}

/* With --send-tries 1: the reply's one send fails for good (131047, by its
 * status) and is replayed; the replay's send is cut short, its status late.
 * Meanwhile a status of the first send comes once more, naming its
 * callback data: the replay's send has a number of its own (2, and a fresh
 * try despite send_tries 1), so that status is not taken for it, and the
 * record gets the replay's message id. */
static void test_replay_is_not_taken_for_its_earlier_send(void **state)
{
    struct fx *f = *state;
    static char out[4096];
    char data[400], opaque1[128], wamid1[128], opaque2[128], wamid2[128];
    const char *replay[] = { "outbox", "replay", "--instance", "conv", "--id", "1", "--data",
                             data, NULL };

    fault(&f->graph, "[{\"status_fail\":131047},{\"lost\":1,\"status_delay_ms\":1200}]");
    post_text(f, "79161234567", "wamid.rp-1", "ещё раз, но позже");
    assert_true(h_wait(failed_131047, &f->p, 15000));
    sent_opaque(f, 0, opaque1, sizeof(opaque1), wamid1, sizeof(wamid1));
    snprintf(data, sizeof(data), "%s/var", f->p.dir);
    assert_int_equal(h_run(replay, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1 dead letter(s) queued again"));
    wait_sent(f, 2);
    post_foreign_status(f, "wamid.OLD-LIFE", "79161234567", opaque1);
    sent_opaque(f, 1, opaque2, sizeof(opaque2), wamid2, sizeof(wamid2));
    assert_string_not_equal(opaque1, opaque2);
    assert_true(strlen(opaque2) > 2 && strcmp(opaque2 + strlen(opaque2) - 2, ":2") == 0);
    snprintf(where_buf, sizeof(where_buf), "id = 1 AND state = 2 AND status = 'read' AND wamid = '%s'",
             wamid2);
    assert_true(h_wait(where_holds, &f->p, 10000));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "wamid = 'wamid.OLD-LIFE'"), 0);
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "attempts = 2 AND tries_from = 1"), 1);
}

static int held_after_190(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "id = 1 AND state = 0 AND error_code = 190") == 1;
}

/* Statuses of sends the bot never made name outbox:1 too: those of this
 * number's other app, or of the instance's store before it was made anew
 * (its ids start at 1 again; Meta's statuses come for days). One for
 * another recipient, one created at another time: neither may mark the
 * held reply sent, which then goes once the hold is over. */
static void test_status_of_another_send_is_not_adopted(void **state)
{
    struct fx *f = *state;
    char sent[8][512];

    fault(&f->graph, "{\"code\":190,\"http\":401,\"count\":1}");
    post_text(f, "79161234567", "wamid.fs-1", "алло");
    assert_true(h_wait(held_after_190, &f->p, 15000));
    post_foreign_status(f, "wamid.OTHER1", "79035550000", "outbox:1");
    post_foreign_status(f, "wamid.OTHER2", "79161234567", "outbox:1:12345");
    wait_sent(f, 1);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: алло");
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "wamid LIKE 'wamid.OTHER%'"), 0);
}

/* A 'failed' status webhook with no error in it, for wamid. */
static void post_failed_without_error(struct fx *f, const char *wamid, const char *to)
{
    int n = snprintf(body_buf, sizeof(body_buf),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                     "{\"display_phone_number\":\"79990001122\",\"phone_number_id\":\"" PHONE_ID "\"},"
                     "\"statuses\":[{\"id\":\"%s\",\"status\":\"failed\",\"timestamp\":\"%ld\","
                     "\"recipient_id\":\"%s\"}]},\"field\":\"messages\"}]}]}",
                     wamid, (long)time(NULL), to);

    assert_int_equal(h_post_signed(f->p.public_url, "conv", SECRET, body_buf, (size_t)n, NULL, 0),
                     200);
}

static int read_once(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "status = 'read'") == 1;
}

static int failed_without_code(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "id = 1 AND state = 3 AND status = 'failed'") == 1;
}

/* A failed status that names no error (the ingress keeps its code as 0)
 * says nothing of the token: the reply is a dead letter, and no block
 * holds the other customers' replies. */
static void test_failed_status_without_a_code_is_final(void **state)
{
    struct fx *f = *state;
    char wamid[128] = "";
    cJSON *all, *m;
    struct timespec settle = { 0, 500000000 };

    post_text(f, "79161234567", "wamid.nocode-1", "без кода");
    wait_sent(f, 1);
    assert_true(h_wait(read_once, &f->p, 10000));
    all = fake_get(&f->graph, "/_fake/messages");
    m = cJSON_GetArrayItem(all, 0);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "wamid")));
    snprintf(wamid, sizeof(wamid), "%s", cJSON_GetObjectItemCaseSensitive(m, "wamid")->valuestring);
    cJSON_Delete(all);
    post_failed_without_error(f, wamid, "79161234567");
    assert_true(h_wait(failed_without_code, &f->p, 10000));
    nanosleep(&settle, NULL);  /* and it is not sent again */
    assert_false(h_log_contains(&f->p, "event=needs_attention"));
    post_text(f, "79160000002", "wamid.nocode-2", "другой");
    wait_sent(f, 2);
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "attempts = 1"), 2);
}

static int paused(void *arg)
{
    return h_log_contains(arg, "event=send_paused");
}

/* The wall time in ms of the first line of the bot's log that contains
 * needle (its ts=...Z), and the number that follows field= in it; -1 and
 * -1 if there is none. */
static long long bot_logged(const struct fx *f, const char *needle, const char *field,
                            long long *value)
{
    char path[400], line[4200];
    FILE *fp;
    long long ms = -1;

    *value = -1;
    snprintf(path, sizeof(path), "%s/var/logs/conv.log", f->p.dir);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    while (ms < 0 && fgets(line, sizeof(line), fp)) {
        int y, mo, d, h, mi, sec, frac;
        const char *at;
        if (strstr(line, needle) == NULL ||
            sscanf(line, "ts=%d-%d-%dT%d:%d:%d.%dZ", &y, &mo, &d, &h, &mi, &sec, &frac) != 7)
            continue;
        {   /* days since 1970-01-01 of the (proleptic Gregorian) date */
            long long yy = y - (mo <= 2), era = (yy >= 0 ? yy : yy - 399) / 400;
            long long yoe = yy - era * 400;
            long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
            long long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
            ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + frac;
        }
        if ((at = strstr(line, field)) != NULL)
            *value = strtoll(at + strlen(field), NULL, 10);
    }
    fclose(fp);
    return ms;
}

/* 130429 is the number's throughput limit (B5): after one refusal every
 * reply waits (1 s, +-20 %), not only the refused one. The second
 * customer writes once the first one's reply was refused; the window
 * (400 ms) would let theirs go well within the pause. The pause is timed
 * from the bot's send_paused line (its time and pause_ms): from the
 * test's post it would count the test's own delays, and a post slowed by
 * load would leave less of the pause to see. */
static void test_number_limit_pauses_every_send(void **state)
{
    struct fx *f = *state;
    cJSON *all, *m;
    long long paused_at, pause_ms, at_b = 0;

    fault(&f->graph, "{\"code\":130429,\"http\":400,\"count\":1}");
    post_text(f, "79160000011", "wamid.lim-1", "один");
    assert_true(h_wait(paused, &f->p, 10000));
    post_text(f, "79160000012", "wamid.lim-2", "два");
    wait_sent(f, 2);
    paused_at = bot_logged(f, "event=send_paused instance=conv code=130429 ", "pause_ms=",
                           &pause_ms);
    assert_true(paused_at > 0);
    assert_true(pause_ms >= 800 && pause_ms <= 1200);
    all = fake_get(&f->graph, "/_fake/messages");
    cJSON_ArrayForEach(m, all) {
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(m, "body");
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(body, "to");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(m, "received_us");
        if (cJSON_IsString(to) && strcmp(to->valuestring, "+79160000012") == 0 &&
            cJSON_IsNumber(at))
            at_b = (long long)at->valuedouble;
    }
    if (at_b == 0) {
        char *t = cJSON_PrintUnformatted(all);
        fail_msg("no reply to the second customer: %.600s", t ? t : "?");
    }
    cJSON_Delete(all);
    /* the pause ends pause_ms after the bot took its time, just before it
     * logged it: 50 ms for the two to be apart (a reply that did not wait
     * goes some 400 ms into the pause) */
    if (at_b / 1000 < paused_at + pause_ms - 50)
        fail_msg("the second reply went %lld ms after the pause began, within its %lld ms",
                 at_b / 1000 - paused_at, pause_ms);
}

static int has_dead_letter(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "state = 3 AND error_code = 131047") == 1;
}

static int has_accepted(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "state = 2") == 1;
}

static void bot_db_exec(struct fx *f, const char *sql);

static void test_window_closed_is_a_dead_letter(void **state)
{
    struct fx *f = *state;
    struct timespec settle = { 2, 0 };

    fault(&f->graph, "{\"code\":131047,\"http\":400,\"count\":1}");
    post_text(f, "79161234567", "wamid.dl-1", "ответьте через сутки");
    assert_true(h_wait(has_dead_letter, &f->p, 15000));
    nanosleep(&settle, NULL);  /* and it is not tried again */
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "attempts = 1 AND state = 3"), 1);
    assert_true(h_metric(&f->p, "myna_bot_dead_letters{instance=\"conv\"}") == 1);
    assert_true(h_metric(&f->p, "myna_bot_up{instance=\"conv\"}") == 1);
    {   /* the operator sees it and sends it again once the window is open */
        static char out[4096];
        char data[400];
        const char *list[] = { "outbox", "failed", "--instance", "conv", "--data", data, NULL };
        const char *replay[] = { "outbox", "replay", "--instance", "conv", "--all", "--data", data,
                                 NULL };
        snprintf(data, sizeof(data), "%s/var", f->p.dir);
        assert_int_equal(h_run(list, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "\tsends=1\tcode=131047"));
        assert_non_null(strstr(out, "1 dead letter(s)"));
        assert_null(strstr(out, "79161234567"));  /* masked */
        /* Meta's words keep to their column: a tab or line break in them
         * is shown as '?' */
        bot_db_exec(f, "UPDATE outbox SET error = 'Re-engage' || char(9) || 'the' || char(10) || "
                       "'customer' WHERE state = 3");
        assert_int_equal(h_run(list, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "code=131047\tRe-engage?the?customer\n"));
        assert_int_equal(h_run(replay, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "1 dead letter(s) queued again"));
        wait_sent(f, 1);  /* the fault was used up: this time it goes */
        assert_true(h_wait(has_accepted, &f->p, 5000));  /* and Meta's answer is recorded */
    }
}

static int needs_attention(void *arg)
{
    return h_log_contains(arg, "event=needs_attention instance=conv reason=invalid_token");
}

struct outbox_want {
    struct fx *f;
    const char *where;
};

static int outbox_has_one(void *arg)
{
    const struct outbox_want *w = arg;

    return h_db_count(&w->f->p, "conv", "outbox", w->where) == 1;
}

/* 1 once one outbox row matches where: a send's answer is logged when it
 * comes, its row written by the next flush of the bot's loop. */
static int outbox_comes_to(struct fx *f, const char *where)
{
    struct outbox_want w = { f, where };

    return h_wait(outbox_has_one, &w, 10000);
}

static void test_invalid_token_needs_attention(void **state)
{
    struct fx *f = *state;

    fault(&f->graph, "{\"code\":190,\"http\":401,\"count\":1}");
    post_text(f, "79161234567", "wamid.tok-1", "алло");
    assert_true(h_wait(needs_attention, &f->p, 15000));
    /* kept for later, not dropped */
    assert_true(outbox_comes_to(f, "state = 0 AND error_code = 190"));
}

static int locked_needs_attention(void *arg)
{
    return h_log_contains(arg, "event=needs_attention instance=conv reason=account_locked "
                               "code=368");
}

static int locked_needs_attention_131031(void *arg)
{
    return h_log_contains(arg, "event=needs_attention instance=conv reason=account_locked "
                               "code=131031");
}

static void test_account_locked_needs_attention(void **state)
{
    struct fx *f = *state;

    fault(&f->graph, "{\"code\":368,\"http\":403,\"count\":1}");
    post_text(f, "79161234567", "wamid.lock-1", "алло");
    assert_true(h_wait(locked_needs_attention, &f->p, 15000));
    /* kept for later, not a dead letter */
    assert_true(outbox_comes_to(f, "state = 0 AND error_code = 368"));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state = 3"), 0);
}

static int unregistered_needs_attention(void *arg)
{
    return h_log_contains(arg, "event=needs_attention instance=conv reason=number_unregistered "
                               "code=133010");
}

/* The number is not registered (133010): no send can go until a person
 * registers it, so the reply is kept, not a dead letter. */
static void test_unregistered_number_needs_attention(void **state)
{
    struct fx *f = *state;

    fault(&f->graph, "{\"code\":133010,\"http\":400,\"count\":1}");
    post_text(f, "79161234567", "wamid.unreg-1", "алло");
    assert_true(h_wait(unregistered_needs_attention, &f->p, 15000));
    assert_true(outbox_comes_to(f, "state = 0 AND error_code = 133010"));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state = 3"), 0);
}

/* How many lines of the file at path hold needle. */
static int log_count(const char *path, const char *needle)
{
    char line[4096];
    FILE *fp = fopen(path, "r");
    int n = 0;

    while (fp && fgets(line, sizeof(line), fp))
        n += strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return n;
}

/* ... of the bot's log. */
static int bot_log_count(const struct fx *f, const char *needle)
{
    char path[400];

    snprintf(path, sizeof(path), "%s/var/logs/conv.log", f->p.dir);
    return log_count(path, needle);
}

static int payment_needs_attention(void *arg)
{
    return h_log_contains(arg, "event=bot_needs_attention instance=conv reason=payment_failed");
}

static int payment_cleared(void *arg)
{
    return h_log_contains(arg, "event=bot_attention_cleared instance=conv "
                               "reason=payment_failed by=bot");
}

static int sent_three_times(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "state = 2 AND attempts = 3") == 1;
}

/* Meta takes the reply, then its status says it failed for the account's
 * payment method (131042, B4/B5), twice: the reply goes back to the outbox
 * and the operator is told, once. Meta taking the next try proves nothing
 * (the failure comes later): only its status does, so until then every
 * other reply still waits. The third try is delivered, which lifts it. */
static void test_failed_payment_status_holds_until_a_delivery(void **state)
{
    struct fx *f = *state;
    char sent[8][512];

    fault(&f->graph, "{\"status_fail\":131042,\"count\":2}");
    post_text(f, "79161234567", "wamid.pay-1", "оплата");
    assert_true(h_wait(payment_needs_attention, &f->p, 15000));
    assert_true(h_log_contains(&f->p, "event=needs_attention instance=conv "
                                      "reason=payment_failed code=131042 outbox=1"));
    /* back in the outbox, waiting out the hold, not a dead letter */
    assert_true(outbox_comes_to(f, "state = 0 AND error_code = 131042"));
    post_text(f, "79160000002", "wamid.pay-2", "другой");
    assert_true(h_wait(sent_three_times, &f->p, 20000));
    assert_true(h_wait(payment_cleared, &f->p, 5000));
    wait_sent(f, 4);
    assert_int_equal(sent_texts(f, sent, 8), 4);
    assert_string_equal(sent[0], "ECHO: оплата");
    assert_string_equal(sent[1], "ECHO: оплата");
    assert_string_equal(sent[2], "ECHO: оплата");
    assert_string_equal(sent[3], "ECHO: другой");  /* held until the delivery */
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state <> 2"), 0);
    assert_int_equal(bot_log_count(f, "reason=payment_failed code=131042 outbox=1"), 2);
    /* told once, cleared once: no alert at each try */
    assert_int_equal(log_count(f->p.log_path, "event=bot_needs_attention instance=conv"), 1);
    assert_int_equal(log_count(f->p.log_path, "event=bot_attention_cleared instance=conv"), 1);
}

/* received_us of the n-th send the fake Graph API took (from 0), or 0. */
static long long sent_at_us(struct fx *f, int n)
{
    cJSON *all = fake_get(&f->graph, "/_fake/messages");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(all, n), "received_us");
    long long us = cJSON_IsNumber(at) ? (long long)at->valuedouble : 0;

    cJSON_Delete(all);
    return us;
}

/* A payment problem told by a failed status holds every send; the probe
 * after the hold is taken, but its answer is lost (the connection broke),
 * and its status (adopted by the callback data) says only that Meta took
 * it, not that it was delivered. So the next reply waits out a hold as
 * after a probe Meta took: one more each send_hold_ms, not at once. */
static int two_replies_queued(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "1") == 2;
}

static void test_probe_without_answer_starts_the_next_hold(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    long long probe_us, next_us;

    fault(&f->graph, "[{\"status_fail\":131042},{\"lost\":1,\"undelivered\":1}]");
    post_text(f, "79161234567", "wamid.plost-1", "оплата");
    assert_true(h_wait(payment_needs_attention, &f->p, 15000));
    post_text(f, "79160000002", "wamid.plost-2", "другой");
    assert_true(h_wait(two_replies_queued, &f->p, 15000));
    wait_sent(f, 3);
    assert_int_equal(sent_texts(f, sent, 8), 3);
    assert_string_equal(sent[1], "ECHO: оплата");  /* the probe, its answer lost */
    assert_string_equal(sent[2], "ECHO: другой");
    probe_us = sent_at_us(f, 1);
    next_us = sent_at_us(f, 2);
    if (next_us - probe_us < (strtol(HOLD_MS, NULL, 10) - 300) * 1000LL)
        fail_msg("the next reply went %lld ms after the probe, within the hold",
                 (next_us - probe_us) / 1000);
}

/* The same, but the probe whose answer was lost is delivered: its
 * statuses, adopted by the callback data, are the probe's, so its delivery
 * lifts the block, and the next reply goes at once, not a hold later. */
static void test_reconciled_probe_delivered_lifts_the_block(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    long long probe_us, next_us;

    fault(&f->graph, "[{\"status_fail\":131042},{\"lost\":1}]");
    post_text(f, "79161234567", "wamid.prec-1", "оплата");
    assert_true(h_wait(payment_needs_attention, &f->p, 15000));
    post_text(f, "79160000002", "wamid.prec-2", "другой");
    assert_true(h_wait(two_replies_queued, &f->p, 15000));
    wait_sent(f, 3);
    assert_int_equal(sent_texts(f, sent, 8), 3);
    assert_string_equal(sent[1], "ECHO: оплата");  /* the probe, its answer lost */
    assert_string_equal(sent[2], "ECHO: другой");
    assert_true(h_log_contains(&f->p, "event=send_reconciled"));
    assert_true(h_wait(payment_cleared, &f->p, 5000));
    probe_us = sent_at_us(f, 1);
    next_us = sent_at_us(f, 2);
    if (next_us - probe_us > strtol(HOLD_MS, NULL, 10) / 2 * 1000LL)
        fail_msg("the next reply went %lld ms after the delivered probe, not at once",
                 (next_us - probe_us) / 1000);
}

static int token_needs_attention(void *arg)
{
    return h_log_contains(arg, "event=bot_needs_attention instance=conv reason=invalid_token");
}

/* A refused token (190) holds every send; the probe after the hold is
 * taken, but its answer is lost. Its status (adopted by the callback data;
 * only "sent", never delivered) says Meta took it, which lifts a block a
 * refusal told, as an answer would have: the next reply goes at once. */
static void test_reconciled_probe_lifts_a_refusals_block(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    long long probe_us, next_us;

    fault(&f->graph, "[{\"code\":190,\"http\":401},{\"lost\":1,\"undelivered\":1}]");
    post_text(f, "79161234567", "wamid.ptok-1", "токен");
    assert_true(h_wait(token_needs_attention, &f->p, 15000));
    post_text(f, "79160000002", "wamid.ptok-2", "другой");
    assert_true(h_wait(two_replies_queued, &f->p, 15000));
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[0], "ECHO: токен");  /* the probe, its answer lost */
    assert_string_equal(sent[1], "ECHO: другой");
    assert_true(h_log_contains(&f->p, "event=send_reconciled"));
    probe_us = sent_at_us(f, 0);
    next_us = sent_at_us(f, 1);
    if (next_us - probe_us > strtol(HOLD_MS, NULL, 10) / 2 * 1000LL)
        fail_msg("the next reply went %lld ms after the reconciled probe, not at once",
                 (next_us - probe_us) / 1000);
}

static int bare_407_needs_attention(void *arg)
{
    return h_log_contains(arg, "event=needs_attention instance=conv reason=invalid_token "
                               "code=-1 outbox=1 status=407 err=\"HTTP 407 without a Graph API "
                               "error (the body is not JSON)\"");
}

static int token_attention_cleared(void *arg)
{
    return h_log_contains(arg, "event=bot_attention_cleared instance=conv reason=invalid_token");
}

/* Meta answers every error with a Graph error body: a bare 407 comes of a
 * proxy that wants credentials (a 401, 403, a redirect of a wrong graph_url
 * alike), and every send would get it. Only a person can fix it, so it is
 * a refused token's block, named by its status: the reply is kept, the
 * master alerts, and once the hold is over the probe goes through (the
 * proxy lets it pass again). Not a dead letter, and not a try used up. */
static void test_bare_proxy_refusal_holds_and_keeps_the_reply(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec t0;
    long long posted_us;

    fault(&f->graph, "{\"http\":407,\"count\":1}");
    clock_gettime(CLOCK_REALTIME, &t0);
    posted_us = (long long)t0.tv_sec * 1000000 + t0.tv_nsec / 1000;
    post_text(f, "79161234567", "wamid.proxy-1", "алло");
    assert_true(h_wait(bare_407_needs_attention, &f->p, 15000));
    assert_true(outbox_comes_to(f, "id = 1 AND state = 0 AND error_code = -1"));
    assert_true(h_wait(token_needs_attention, &f->p, 5000));
    assert_true(h_log_contains(&f->p, "event=alert instance=conv kind=invalid_token "
                                      "detail=\"the provider refused the access token, or an "
                                      "answer without a Graph API error"));
    wait_sent(f, 1);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: алло");
    if (sent_at_us(f, 0) - posted_us < (strtol(HOLD_MS, NULL, 10) - 300) * 1000LL)
        fail_msg("the reply went %lld ms after the message, within the hold",
                 (sent_at_us(f, 0) - posted_us) / 1000);
    assert_true(outbox_comes_to(f, "id = 1 AND state = 2 AND attempts = 1"));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state = 3"), 0);
    assert_false(h_log_contains(&f->p, "event=send_failed"));
    assert_true(h_wait(token_attention_cleared, &f->p, 5000));
}

static int three_queued(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "1") == 3;
}

/* A payment problem told by a failed status holds every send; the probe
 * after the hold is taken, and its statuses come late (3 s). The next
 * probe, a hold later, is refused for the token (190): a block of its own,
 * with a hold of its own. The first probe's delivery lifts the payment
 * block within that hold, but not the token's: the next reply still waits
 * the token's hold out, a hold after the refusal. */
static void test_lifted_block_keeps_the_hold_of_another(void **state)
{
    struct fx *f = *state;
    long long probe_us, next_us;

    fault(&f->graph, "[{\"status_fail\":131042},{\"status_delay_ms\":3000},"
                     "{\"code\":190,\"http\":401}]");
    post_text(f, "79161234567", "wamid.two-1", "оплата");
    assert_true(h_wait(payment_needs_attention, &f->p, 15000));
    post_text(f, "79160000002", "wamid.two-2", "другой");
    post_text(f, "79160000003", "wamid.two-3", "третий");
    assert_true(h_wait(three_queued, &f->p, 15000));
    wait_sent(f, 3);  /* the first, the late-delivered probe, the probe after the token's hold */
    assert_true(h_log_contains(&f->p, "reason=invalid_token code=190"));
    assert_true(h_wait(payment_cleared, &f->p, 5000));
    probe_us = sent_at_us(f, 1);
    next_us = sent_at_us(f, 2);
    if (next_us - probe_us < (2 * strtol(HOLD_MS, NULL, 10) - 300) * 1000LL)
        fail_msg("the next reply went %lld ms after the late-delivered probe, within the "
                 "token's hold", (next_us - probe_us) / 1000);
}

/* A payment problem told by a failed status holds every send; the probe
 * after the hold is refused for trouble at Meta (a bare 500), and so is
 * the next one (131000). Each starts the next hold: the third probe, which
 * Meta takes, goes three holds after the first send, not at once. */
static void test_probe_refused_for_server_trouble_starts_the_next_hold(void **state)
{
    struct fx *f = *state;
    long long first_us, next_us;

    fault(&f->graph, "[{\"status_fail\":131042},{\"http\":500},"
                     "{\"code\":131000,\"http\":500}]");
    post_text(f, "79161234567", "wamid.p5xx-1", "оплата");
    assert_true(h_wait(payment_needs_attention, &f->p, 15000));
    post_text(f, "79160000002", "wamid.p5xx-2", "другой");
    assert_true(h_wait(two_replies_queued, &f->p, 15000));
    wait_sent(f, 2);
    assert_int_equal(bot_log_count(f, "event=send_retry"), 3);  /* the failed status, 500, 131000 */
    first_us = sent_at_us(f, 0);
    next_us = sent_at_us(f, 1);
    if (next_us - first_us < (3 * strtol(HOLD_MS, NULL, 10) - 300) * 1000LL)
        fail_msg("the probe Meta took went %lld ms after the first send, within three holds",
                 (next_us - first_us) / 1000);
}

static int delivered_at_fourth(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "state = 2 AND attempts = 4") == 1;
}

/* With --send-tries 3, a payment problem told by three failed statuses
 * (Meta took each send first, so each counts) does not make the reply a
 * dead letter: the fourth try goes while the block is on, and is
 * delivered. */
static void test_status_block_does_not_end_the_tries(void **state)
{
    struct fx *f = *state;

    fault(&f->graph, "{\"status_fail\":131042,\"count\":3}");
    post_text(f, "79161234567", "wamid.pay-tries-1", "оплата");
    assert_true(h_wait(delivered_at_fourth, &f->p, 30000));
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state = 3"), 0);
    assert_true(h_wait(payment_cleared, &f->p, 5000));
}

static int outbox_has(void *arg, const char *where, long n)
{
    return h_db_count(arg, "conv", "outbox", where) == n;
}

static int three_turns_cut(void *arg)
{
    struct fx *f = arg;

    return h_db_count(&f->p, "conv", "turns", "1") == 3;
}

static int probe_refused(void *arg)
{
    return bot_log_count(arg, "reason=account_locked code=131031") >= 2;
}

static int reads_seen(struct fx *f)
{
    cJSON *all = fake_get(&f->graph, "/_fake/reads");
    int n = cJSON_GetArraySize(all);

    cJSON_Delete(all);
    return n;
}

/* Meta's "stop sending" of a lock: after the first refusal the instance
 * sends nothing (no mark-read, and other customers' turns wait unanswered)
 * until the hold ends; then one reply is tried alone, and the rest are
 * answered and follow only once Meta takes one. */
static void test_locked_account_holds_every_send(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 0, 300000000 };

    fault(&f->graph, "{\"code\":131031,\"http\":403,\"count\":1000}");
    post_text(f, "79160000001", "wamid.hold-1", "первый");
    assert_true(h_wait(locked_needs_attention_131031, &f->p, 15000));
    post_text(f, "79160000002", "wamid.hold-2", "второй");
    post_text(f, "79160000003", "wamid.hold-3", "третий");
    assert_true(h_wait(three_turns_cut, f, 15000));
    nanosleep(&settle, NULL);  /* they are held, not answered nor tried */
    assert_int_equal(h_db_count(&f->p, "conv", "turns", "state = 0"), 2);
    assert_int_equal(bot_log_count(f, "code=131031 outbox=1"), 1);
    assert_int_equal(bot_log_count(f, "code=131031"), 1);
    /* the probe, once the hold is over: the first reply alone, refused again */
    assert_true(h_wait(probe_refused, f, 15000));
    assert_int_equal(bot_log_count(f, "code=131031 outbox=1"), 2);
    assert_int_equal(bot_log_count(f, "code=131031"), 2);
    assert_int_equal(reads_seen(f), 1);  /* the first turn's, before the lock was known */
    /* the lock is lifted: the next probe goes, and then the rest */
    {
        char url[256];
        snprintf(url, sizeof(url), "%s/_fake/reset", f->graph.url);
        assert_int_equal(h_http("POST", url, "", 0, NULL, NULL, 0), 200);
    }
    wait_sent(f, 3);
    assert_int_equal(sent_texts(f, sent, 8), 3);
    assert_string_equal(sent[0], "ECHO: первый");
    /* the refusals were not the messages' fault: none counts as a send */
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "attempts = 1"), 3);
}

static int second_turn_cut(void *arg)
{
    struct fx *f = arg;

    return h_db_count(&f->p, "conv", "turns", "1") == 2;
}

/* While the lock holds every send, a new customer's turn waits: the model
 * is not asked for an answer that could only wait in the outbox and go out
 * stale. Once Meta takes a send again, it is answered. */
static void test_held_sends_leave_turns_to_the_lift(void **state)
{
    struct fx *f = *state;
    char sent[8][512], llm[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 4) * 1000000L };

    fault(&f->graph, "{\"code\":131031,\"http\":403,\"count\":1000}");
    post_text(f, "79160000001", "wamid.wait-1", "первый");
    assert_true(h_wait(locked_needs_attention_131031, &f->p, 15000));
    post_text(f, "79160000002", "wamid.wait-2", "второй");
    assert_true(h_wait(second_turn_cut, f, 15000));
    nanosleep(&settle, NULL);  /* kicked, and left pending */
    assert_int_equal(llm_user_texts(f, llm, 8), 1);
    assert_int_equal(h_db_count(&f->p, "conv", "turns", "state = 0"), 1);
    {   /* the lock is lifted: the probe goes, and then the waiting turn */
        char url[256];
        snprintf(url, sizeof(url), "%s/_fake/reset", f->graph.url);
        assert_int_equal(h_http("POST", url, "", 0, NULL, NULL, 0), 200);
    }
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[0], "ECHO: первый");
    assert_string_equal(sent[1], "ECHO: второй");
    assert_int_equal(llm_user_texts(f, llm, 8), 2);
}

static int sent_after_lock(void *arg)
{
    return outbox_has(arg, "state = 2 AND attempts = 1", 1);
}

/* A lock outlasts --send-tries 3: the reply is refused three times, yet
 * it is not given up (the refusals say nothing of the message) and goes
 * once Meta takes sends again. */
static void test_lock_does_not_use_up_send_tries(void **state)
{
    struct fx *f = *state;

    fault(&f->graph, "{\"code\":131031,\"http\":403,\"count\":3}");
    post_text(f, "79160000001", "wamid.tries-lock-1", "долгая блокировка");
    assert_true(h_wait(sent_after_lock, &f->p, 30000));
    assert_int_equal(bot_log_count(f, "reason=account_locked code=131031"), 3);
    assert_int_equal(h_db_count(&f->p, "conv", "outbox", "state = 3"), 0);
}

/* A message to another number of the same Meta app, one no instance owns,
 * is kept by the instance of the URL, but never answered from its number. */
static void test_other_number_is_kept_not_answered(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 3) * 1000000L };
    int n = snprintf(body_buf, sizeof(body_buf),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                     "{\"display_phone_number\":\"79990003344\",\"phone_number_id\":\"999000111222333\"},"
                     "\"contacts\":[{\"profile\":{\"name\":\"Ann\"},\"wa_id\":\"79160000009\"}],"
                     "\"messages\":[{\"from\":\"79160000009\",\"id\":\"wamid.other-1\","
                     "\"timestamp\":\"%ld\",\"type\":\"text\",\"text\":{\"body\":\"hello\"}}]},"
                     "\"field\":\"messages\"}]}]}",
                     (long)time(NULL));

    assert_int_equal(h_post_signed(f->p.public_url, "conv", SECRET, body_buf, (size_t)n, NULL, 0),
                     200);
    post_text(f, "79161234567", "wamid.own-1", "и мне");
    wait_sent(f, 1);
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: и мне");
    assert_int_equal(h_db_count(&f->p, "conv", "inbox", "wamid = 'wamid.other-1'"), 1);
    assert_true(h_bot_log_contains(&f->p, "conv", "reason=other_number"));
}

/* A message the customer deleted or edited (Meta's "revoke" and "edit",
 * kept as unsupported) says nothing new: it is kept, not answered. */
static void test_revoke_and_edit_are_kept_not_answered(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec settle = { 0, (WINDOW_MS * 3) * 1000000L };

    post(f, "79160000010", "wamid.revoke-1", "\"type\":\"revoke\",\"revoke\":{}");
    post(f, "79160000010", "wamid.edit-1", "\"type\":\"edit\",\"edit\":{}");
    post(f, "79160000010", "wamid.poll-1", "\"type\":\"poll\",\"poll\":{}");
    wait_sent(f, 1);  /* the poll, which the bot cannot read, is answered */
    post_text(f, "79161234567", "wamid.after-revoke", "и мне");
    wait_sent(f, 2);
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[0], "ECHO: [unsupported] poll");
    assert_string_equal(sent[1], "ECHO: и мне");
    assert_int_equal(h_db_count(&f->p, "conv", "inbox", "wamid IN ('wamid.revoke-1', "
                                                        "'wamid.edit-1')"), 2);
    assert_true(h_bot_log_contains(&f->p, "conv", "reason=revoke"));
    assert_true(h_bot_log_contains(&f->p, "conv", "reason=edit"));
}

static int llm_asked(void *arg)
{
    struct fx *f = arg;
    cJSON *all = fake_get(&f->llm, "/_fake/requests");
    int n = cJSON_GetArraySize(all);

    cJSON_Delete(all);
    return n >= 1;
}

static int commit_failed(void *arg)
{
    return h_bot_log_contains(arg, "conv", "event=turn_commit_failed");
}

/* The bot store is locked while the model answers (another writer, longer
 * than the bot's busy wait): the answer is committed once the lock
 * goes, as it was; the model is not asked again, and the loop guard does
 * not take the retries for a repeated text. */
static void test_failed_commit_keeps_the_answer(void **state)
{
    struct fx *f = *state;
    char sent[8][512], llm[8][512];
    struct timespec settle = { 1, 0 };
    sqlite3 *db = NULL;

    fault(&f->llm, "{\"delay_ms\":1500}");
    post_text(f, "79160000042", "wamid.lock-commit-1", "запишите меня");
    assert_true(h_wait(llm_asked, f, 15000));
    assert_non_null(db = h_db_lock(&f->p, "conv.bot.db"));
    /* held until the answer's commit gave up */
    assert_true(h_wait(commit_failed, &f->p, 40000));
    assert_int_equal(h_db_unlock(db, "COMMIT"), 0);
    wait_sent(f, 1);
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: запишите меня");
    assert_int_equal(llm_user_texts(f, llm, 8), 1);
    assert_false(h_bot_log_contains(&f->p, "conv", "event=loop_guard"));
    assert_int_equal(h_db_count(&f->p, "conv", "turns", "state = 1 AND ai = 1"), 1);
}

/* Runs sql on the bot's store from outside, as another process would. */
static void bot_db_exec(struct fx *f, const char *sql)
{
    char path[400];
    sqlite3 *db = NULL;

    snprintf(path, sizeof(path), "%s/var/instances/conv.bot.db", f->p.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int llm_asked_twice(void *arg)
{
    struct fx *f = arg;
    cJSON *all = fake_get(&f->llm, "/_fake/requests");
    int n = cJSON_GetArraySize(all);

    cJSON_Delete(all);
    return n >= 2;
}

static int third_commit_retry(void *arg)
{
    return h_bot_log_contains(arg, "conv", "event=turn_commit_retry instance=conv "
                                           "retry_in_ms=800");
}

/* Two answers cannot be committed (the store is locked): they are tried
 * again together, 0.2 s later, then 0.4 s, 0.8 s: the wait doubles once
 * per try, not once per answer that failed. */
static void test_commit_retry_doubles_per_try(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    sqlite3 *db = NULL;

    fault(&f->llm, "{\"delay_ms\":1500,\"count\":2}");
    post_text(f, "79160000046", "wamid.retry-1", "первый");
    post_text(f, "79160000047", "wamid.retry-2", "второй");
    assert_true(h_wait(llm_asked_twice, f, 15000));
    assert_non_null(db = h_db_lock(&f->p, "conv.bot.db"));
    assert_true(h_wait(third_commit_retry, &f->p, 15000));
    assert_int_equal(h_db_unlock(db, "COMMIT"), 0);
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_int_equal(bot_log_count(f, "event=turn_commit_retry instance=conv retry_in_ms=200"),
                     1);
    assert_int_equal(bot_log_count(f, "event=turn_commit_retry instance=conv retry_in_ms=400"),
                     1);
}

/* The history cannot be read for a while (the store fails the read): the
 * turn waits and is answered by the model once it can be, not with the
 * fallback, which would close it for good. */
static void test_history_read_error_retries_the_turn(void **state)
{
    struct fx *f = *state;
    char sent[8][512], llm[8][512];
    struct timespec settle = { 2, 0 };

    bot_db_exec(f, "ALTER TABLE history RENAME TO history_away");
    post_text(f, "79160000043", "wamid.hist-err-1", "есть окно завтра?");
    nanosleep(&settle, NULL);  /* the batch is cut, the turn tried and failed */
    assert_int_equal(sent_texts(f, sent, 8), 0);
    bot_db_exec(f, "ALTER TABLE history_away RENAME TO history");
    wait_sent(f, 1);
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: есть окно завтра?");
    assert_int_equal(llm_user_texts(f, llm, 8), 1);
    assert_int_equal(h_db_count(&f->p, "conv", "turns", "state = 1 AND ai = 1"), 1);
    assert_true(h_bot_log_contains(&f->p, "conv", "event=history_read_failed"));
}

/* Another process holds the bot store's write lock for 8 s (an operator's
 * sqlite3 shell, a replay): the bot's loop goes on turning (its heartbeat
 * keeps coming, so the master does not take it for hung and kill it), and
 * what waited for the lock goes once it is free. */
static void test_locked_store_does_not_stall_the_loop(void **state)
{
    struct fx *f = *state;
    char sent[8][512];
    struct timespec lock_for = { 8, 0 };
    sqlite3 *db = NULL;

    post_text(f, "79160000044", "wamid.stall-1", "первый");
    wait_sent(f, 1);
    assert_non_null(db = h_db_lock(&f->p, "conv.bot.db"));
    post_text(f, "79160000045", "wamid.stall-2", "второй");
    nanosleep(&lock_for, NULL);
    assert_int_equal(h_db_unlock(db, "COMMIT"), 0);
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[1], "ECHO: второй");
    assert_false(h_log_contains(&f->p, "event=bot_unresponsive"));
    assert_int_equal(bot_log_count(f, "event=bot_ready"), 1);
}

static void test_kill9_of_the_master_answers_each_once(void **state)
{
    struct fx *f = *state;
    enum { N = 30 };
    static char sent[2 * N][512];
    const char *extra[] = { "--public", f->public_addr, "--bots", "1", "--send-reconcile-ms",
                            "1500", NULL };
    char want[64];
    int n, status;

    snprintf(f->public_addr, sizeof(f->public_addr), "%s",
             f->p.public_url + strlen("http://"));
    for (int i = 0; i < N; i++) {
        char from[64], wamid[64], text[64];
        snprintf(from, sizeof(from), "7911000%04d", i);
        snprintf(wamid, sizeof(wamid), "wamid.m9-%d", i);
        snprintf(text, sizeof(text), "мастер %d", i);
        post_text(f, from, wamid, text);
        if (i == N / 2) {
            /* the master dies; its bots see the doorbell close and stop */
            kill(f->p.pid, SIGKILL);
            assert_int_equal(waitpid(f->p.pid, &status, 0), f->p.pid);
            f->p.pid = 0;
            assert_int_equal(h_start(&f->p, extra), 0);
        }
    }
    wait_sent(f, N);
    {
        struct timespec settle = { 2, 500000000 };
        nanosleep(&settle, NULL);
    }
    n = sent_texts(f, sent, 2 * N);
    for (int i = 0; i < N; i++) {
        int count = 0;
        snprintf(want, sizeof(want), "ECHO: мастер %d", i);
        for (int j = 0; j < n; j++)
            count += strcmp(sent[j], want) == 0;
        if (count != 1)
            fail_msg("'%s' was sent %d times", want, count);
    }
    assert_int_equal(n, N);
}

static int turns_done(void *arg)
{
    struct want *w = arg;

    return h_db_count(&w->f->p, "conv", "turns", "state = 1") >= w->n;
}

/* Waits until n turns are done, answered or not: a text posted after it
 * is a turn of its own, not folded into one still pending. */
static void wait_turns_done(struct fx *f, int n)
{
    struct want w = { f, n };

    if (!h_wait(turns_done, &w, 15000))
        fail_msg("fewer than %d turns were done", n);
}

/* Another bot answering ours with the same text every time draws the same
 * reply every time (the model echoes it): three such exchanges in a row
 * (repeat_limit) are a loop, and the fourth same text starts the cooldown,
 * not answered, as nothing else the contact sends in it. A person drawing
 * three replies a minute (replies_per_minute 4) gets the fourth, not the
 * fifth. */
static void test_loop_guard_silences_an_auto_responder(void **state)
{
    struct fx *f = *state;
    char sent[16][512];
    struct timespec settle = { 0, (WINDOW_MS * 4) * 1000000L };

    for (int i = 0; i < 4; i++) {
        char wamid[64];
        snprintf(wamid, sizeof(wamid), "wamid.loop-%d", i);
        post_text(f, "79990009999", wamid, "Спасибо за сообщение! Мы ответим позже.");
        if (i < 3)
            wait_sent(f, i + 1);
        wait_turns_done(f, i + 1);
        next_turn();
    }
    post_text(f, "79990009999", "wamid.loop-4", "Ваше обращение зарегистрировано.");
    wait_turns_done(f, 5);
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 16), 3);  /* the fourth started a cooldown */
    for (int i = 0; i < 3; i++)
        assert_string_equal(sent[i], "ECHO: Спасибо за сообщение! Мы ответим позже.");
    assert_true(h_log_contains(&f->p, "reason=repeated_text"));
    assert_false(h_log_contains(&f->p, "reason=reply_budget"));
    /* a person at another number: four replies a minute, then a cooldown */
    for (int i = 0; i < 5; i++) {
        char wamid[64], text[64];
        snprintf(wamid, sizeof(wamid), "wamid.burst-%d", i);
        snprintf(text, sizeof(text), "вопрос номер %d", i);
        post_text(f, "79161234567", wamid, text);
        if (i < 4)
            wait_sent(f, 4 + i);
        wait_turns_done(f, 6 + i);
        next_turn();
    }
    nanosleep(&settle, NULL);
    assert_int_equal(sent_texts(f, sent, 16), 7);
    assert_true(h_log_contains(&f->p, "reason=reply_budget"));
    assert_false(h_log_contains(&f->p, "79161234567"));  /* masked in the log */
}

/* A customer booking answers "Да" to one question after another: the same
 * text, past repeat_limit, but each time it draws a new reply (the model's
 * next question), so it is a conversation, not a loop, and every "Да" is
 * answered. The same text alone was counted: the third "Да" started a
 * cooldown of ten minutes in the middle of the booking. */
static void test_loop_guard_answers_the_same_text_to_new_questions(void **state)
{
    static const char *const asked[] = { "На 10:00?", "К мастеру Ивану?", "Подтверждаете запись?",
                                         "Записали! Напомнить за час?" };
    struct fx *f = *state;
    char sent[16][512], json[128];

    for (int i = 0; i < 4; i++) {
        char wamid[64];
        snprintf(json, sizeof(json), "{\"reply\":\"%s\"}", asked[i]);
        fault(&f->llm, json);
        snprintf(wamid, sizeof(wamid), "wamid.yes-%d", i);
        post_text(f, "79161112233", wamid, "Да");
        wait_sent(f, i + 1);
        wait_turns_done(f, i + 1);
        next_turn();
    }
    assert_int_equal(sent_texts(f, sent, 16), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(sent[i], asked[i]);
    assert_false(h_log_contains(&f->p, "event=loop_guard"));
}

static int flagged(void *arg)
{
    return h_db_count(arg, "conv", "outbox", "status = 'unconfirmed'") == 1;
}

static void test_send_without_status_is_flagged(void **state)
{
    struct fx *f = *state;

    post_text(f, "79161234567", "wamid.unc-1", "есть связь?");
    wait_sent(f, 1);
    assert_true(h_wait(flagged, &f->p, 10000));
    assert_true(h_log_contains(&f->p, "event=send_unconfirmed instance=conv"));
}

/* The pid of the newest bot from the master's log. */
static pid_t bot_pid(struct fx *f)
{
    char *log = NULL, *p, *last = NULL;
    size_t len;
    FILE *fp = fopen(f->p.log_path, "r");
    long pid = 0;

    if (fp == NULL)
        return 0;
    log = malloc(1 << 22);
    len = fread(log, 1, (1 << 22) - 1, fp);
    fclose(fp);
    log[len] = '\0';
    for (p = log; (p = strstr(p, "event=bot_started")) != NULL; p++)
        last = p;
    if (last)
        sscanf(last, "event=bot_started instance=conv pid=%ld", &pid);
    free(log);
    return (pid_t)pid;
}

static void test_kill9_of_the_bot_answers_each_once(void **state)
{
    struct fx *f = *state;
    enum { N = 40 };
    static char sent[2 * N][512];
    char want[64], wamid[64], text[64];
    int n;

    for (int i = 0; i < N; i++) {
        char from[32];
        snprintf(from, sizeof(from), "7900000%04d", i);  /* one contact each: one turn each */
        snprintf(wamid, sizeof(wamid), "wamid.k9-%d", i);
        snprintf(text, sizeof(text), "вопрос %d", i);
        post_text(f, from, wamid, text);
        if (i == N / 3 || i == 2 * N / 3) {
            pid_t pid = bot_pid(f);
            assert_true(pid > 0);
            kill(pid, SIGKILL);  /* the supervisor brings it back */
        }
    }
    wait_sent(f, N);
    {
        struct timespec settle = { 2, 0 };
        nanosleep(&settle, NULL);  /* resends after reconciliation would show now */
    }
    n = sent_texts(f, sent, 2 * N);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        int count = 0;
        snprintf(want, sizeof(want), "ECHO: вопрос %d", i);
        for (int j = 0; j < n; j++)
            count += strcmp(sent[j], want) == 0;
        if (count != 1)
            fail_msg("'%s' was sent %d times", want, count);
    }
    assert_true(h_log_contains(&f->p, "event=bot_exited"));
    assert_true(h_metric(&f->p, "myna_bot_restarts_total{instance=\"conv\"}") >= 1);
    assert_true(h_metric(&f->p, "myna_bot_outbox_open{instance=\"conv\"}") == 0);
}

/* The wall clock was set back an hour after a text came (NTP fixing a clock
 * that ran ahead): its open batch is cut window_ms later as always, not
 * when the clock catches up with the time the text was stamped with. */
static void test_batch_ahead_of_the_clock_is_cut_in_time(void **state)
{
    struct fx *f = *state;
    char sql[512], sent[8][512];
    struct timeval tv;
    pid_t pid = bot_pid(f);

    assert_true(pid > 0);
    gettimeofday(&tv, NULL);
    snprintf(sql, sizeof(sql),
             "INSERT INTO batches(contact, text, n, first_seq, last_seq, last_ms, profile_name,"
             " last_wamid) VALUES('79160000077', 'часы ушли назад', 1, 1, 1, %lld, NULL,"
             " 'wamid.clock-1')",
             (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000 + 3600 * 1000);
    bot_db_exec(f, sql);
    /* the batch is the store's: the next bot sets its timer */
    kill(pid, SIGKILL);
    wait_sent(f, 1);
    assert_true(h_bot_log_contains(&f->p, "conv", "event=batches_restored instance=conv open=1"));
    assert_int_equal(sent_texts(f, sent, 8), 1);
    assert_string_equal(sent[0], "ECHO: часы ушли назад");
    assert_int_equal(h_db_count(&f->p, "conv", "batches", NULL), 0);
}

#define ADMIN_TOKEN "myna_ConversationTestsAdminToken0123456789abcdef"

static long admin(struct fx *f, const char *method, const char *path, const char *body,
                  char *resp, size_t cap)
{
    char url[300];
    const char *h[] = { "Content-Type: application/json",
                        "Authorization: Bearer " ADMIN_TOKEN, NULL };

    snprintf(url, sizeof(url), "%s%s", f->p.admin_url, path);
    return h_http(method, url, body, body ? strlen(body) : 0, h, resp, cap);
}

static int prompt_has_prefs(void *arg)
{
    struct fx *f = arg;
    cJSON *all = fake_get(&f->llm, "/_fake/requests");
    char *text = all ? cJSON_PrintUnformatted(all) : NULL;
    int ok = text && strstr(text, "Known preferences: haircut: short; language: ru.") &&
             strstr(text, "From the barber: we open at 10 tomorrow");

    cJSON_free(text);
    cJSON_Delete(all);
    return ok;
}

/* An operator sets a contact's preferences and writes to it: the message
 * goes out through the outbox, and the model sees both in the next turn. */
static void test_profile_and_operator_message(void **state)
{
    struct fx *f = *state;
    static char resp[65536];
    char sent[8][512];

    post_text(f, "79161234567", "wamid.prof-1", "Привет");
    wait_sent(f, 1);
    assert_int_equal(admin(f, "PUT", "/admin/whatsapp/instances/conv/contacts/79161234567",
                           "{\"preferences\":{\"haircut\":\"short\",\"language\":\"ru\"}}",
                           resp, sizeof(resp)),
                     200);
    assert_non_null(strstr(resp, "\"haircut\":\"short\""));
    assert_int_equal(admin(f, "PUT", "/admin/whatsapp/instances/conv/contacts/79161234567",
                           "{\"preferences\":[1]}", resp, sizeof(resp)),
                     400);
    /* a text of nothing but whitespace would reach the customer as an
     * empty bubble, or be refused by Meta as a dead letter */
    assert_int_equal(admin(f, "POST",
                           "/admin/whatsapp/instances/conv/contacts/79161234567/messages",
                           "{\"text\":\" \\n\\t\\r\\n \"}", resp, sizeof(resp)),
                     400);
    assert_int_equal(admin(f, "POST",
                           "/admin/whatsapp/instances/conv/contacts/79161234567/messages",
                           "{\"text\":\"From the barber: we open at 10 tomorrow\"}", resp,
                           sizeof(resp)),
                     202);
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[1], "From the barber: we open at 10 tomorrow");
    next_turn();
    post_text(f, "79161234567", "wamid.prof-2", "А во сколько?");
    wait_sent(f, 3);
    assert_true(h_wait(prompt_has_prefs, f, 5000));
    assert_int_equal(admin(f, "GET", "/admin/whatsapp/instances/conv/contacts/79161234567", NULL,
                           resp, sizeof(resp)),
                     200);
    assert_non_null(strstr(resp, "\"role\":\"operator\""));
    assert_int_equal(admin(f, "GET", "/admin/whatsapp/instances/conv/contacts/7916abc", NULL,
                           resp, sizeof(resp)),
                     404);
}

/* An operator writes to a customer first: the history the model is given
 * starts with that message, an answer, and a model whose chat template
 * wants a user message right after the system one (Mistral, Gemma; vLLM
 * answers 400) refused every turn of the contact, which got the fallback
 * until the message left the history a day later. The operator's text
 * goes into the system message, and the customer's question is answered. */
static void test_operator_writes_first_to_a_strict_model(void **state)
{
    struct fx *f = *state;
    static char resp[4096];
    char sent[8][512];
    cJSON *all, *msgs;
    const char *sys;

    fault(&f->llm, "{\"alternate\":1,\"count\":-1}");
    assert_int_equal(admin(f, "POST",
                           "/admin/whatsapp/instances/conv/contacts/79161234567/messages",
                           "{\"text\":\"Your order #123 is ready\"}", resp, sizeof(resp)),
                     202);
    wait_sent(f, 1);
    post_text(f, "79161234567", "wamid.opfirst-1", "Спасибо! До скольки вы работаете?");
    wait_sent(f, 2);
    assert_int_equal(sent_texts(f, sent, 8), 2);
    assert_string_equal(sent[0], "Your order #123 is ready");
    assert_string_equal(sent[1], "ECHO: Спасибо! До скольки вы работаете?");
    all = fake_get(&f->llm, "/_fake/requests");
    assert_int_equal(cJSON_GetArraySize(all), 1);
    msgs = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(all, 0), "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetArrayItem(msgs, 0), "role")),
                        "system");
    sys = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 0), "content"));
    assert_non_null(sys);
    assert_non_null(strstr(sys, "Earlier in this conversation you (or a colleague) wrote:\n\n"
                                "Your order #123 is ready"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetArrayItem(msgs, 1), "role")),
                        "user");
    cJSON_Delete(all);
    assert_false(h_bot_log_contains(&f->p, "conv", "event=llm_failed"));
}

/* As many preferences as the API takes (50, values of 200 bytes) all reach
 * the model; the prompt's buffer held 8 KiB and left the last ones out
 * without a word. */
static void test_every_preference_reaches_the_model(void **state)
{
    struct fx *f = *state;
    static char body[16384], resp[65536];
    char value[201];
    size_t n = 0;
    cJSON *all;
    char *text;

    memset(value, 'v', 200);
    value[200] = '\0';
    n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"preferences\":{");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"key%02d\":\"%s\"", i ? "," : "",
                              i, value);
    snprintf(body + n, sizeof(body) - n, "}}");
    post_text(f, "79161234567", "wamid.prefs-1", "Привет");
    wait_sent(f, 1);
    assert_int_equal(admin(f, "PUT", "/admin/whatsapp/instances/conv/contacts/79161234567", body,
                           resp, sizeof(resp)),
                     200);
    next_turn();
    post_text(f, "79161234567", "wamid.prefs-2", "Ещё вопрос");
    wait_sent(f, 2);
    all = fake_get(&f->llm, "/_fake/requests");
    text = all ? cJSON_PrintUnformatted(all) : NULL;
    assert_non_null(text);
    assert_non_null(strstr(text, "key00: vvvv"));
    assert_non_null(strstr(text, "key49: vvvv"));
    cJSON_free(text);
    cJSON_Delete(all);
}

/* ---- pacing: replies and mark-reads share the slots ---------------------- */

#define PACE_CONTACTS 12

static int setup_pace5(void **state)
{
    return fx_setup(state, ",\"pacing\":{\"messages_per_second\":5}", 1);
}

static int pace_all_in(void *arg)
{
    struct fx *f = arg;
    cJSON *msgs = fake_get(&f->graph, "/_fake/messages");
    cJSON *reads = fake_get(&f->graph, "/_fake/read_times");
    int done = cJSON_GetArraySize(msgs) >= PACE_CONTACTS &&
               cJSON_GetArraySize(reads) >= PACE_CONTACTS;

    cJSON_Delete(msgs);
    cJSON_Delete(reads);
    return done;
}

struct req_at {
    long long us;
    int is_read;
};

static int req_at_cmp(const void *x, const void *y)
{
    const struct req_at *a = x, *b = y;

    return a->us < b->us ? -1 : a->us > b->us;
}

/* A burst of turns at 5 sends a second: the Graph API gets replies and
 * mark-reads (Meta's throughput limit counts both) together no faster than
 * that, and the replies go first, the reads in the slots they leave. */
static void test_reads_share_the_pace_with_replies(void **state)
{
    struct fx *f = *state;
    struct req_at v[4 * PACE_CONTACTS];
    cJSON *msgs, *reads, *it;
    int n = 0, most = 0, reads_before_last_reply = 0, last_reply = -1;

    for (int i = 0; i < PACE_CONTACTS; i++) {
        char from[32], wamid[32];
        snprintf(from, sizeof(from), "791600001%02d", i);
        snprintf(wamid, sizeof(wamid), "wamid.pace-%d", i);
        post_text(f, from, wamid, "когда вы открыты?");
    }
    assert_true(h_wait(pace_all_in, f, 30000));
    msgs = fake_get(&f->graph, "/_fake/messages");
    reads = fake_get(&f->graph, "/_fake/read_times");
    cJSON_ArrayForEach(it, msgs) {
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(it, "received_us");
        if (cJSON_IsNumber(at) && n < 4 * PACE_CONTACTS)
            v[n++] = (struct req_at){ (long long)at->valuedouble, 0 };
    }
    cJSON_ArrayForEach(it, reads) {
        if (cJSON_IsNumber(it) && n < 4 * PACE_CONTACTS)
            v[n++] = (struct req_at){ (long long)it->valuedouble, 1 };
    }
    cJSON_Delete(msgs);
    cJSON_Delete(reads);
    assert_int_equal(n, 2 * PACE_CONTACTS);
    qsort(v, (size_t)n, sizeof(v[0]), req_at_cmp);
    /* any second holds at most 5 slots, 6 with its ends, and one caught up:
     * 7 (without the pacing of reads, the burst's 12 reads come at once) */
    for (int i = 0; i < n; i++) {
        int in_window = 0;
        for (int j = i; j < n && v[j].us - v[i].us < 1000000; j++)
            in_window++;
        most = in_window > most ? in_window : most;
    }
    if (most > 7)
        fail_msg("%d Graph requests within one second at 5 a second", most);
    /* replies first: the reads wait for the slots the replies leave, so few
     * go before the last reply (one when a slot comes before its reply) */
    for (int i = 0; i < n; i++)
        if (!v[i].is_read)
            last_reply = i;
    for (int i = 0; i < last_reply; i++)
        reads_before_last_reply += v[i].is_read;
    if (reads_before_last_reply > 4)
        fail_msg("%d mark-reads went before the last reply", reads_before_last_reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profile_and_operator_message, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_operator_writes_first_to_a_strict_model, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_every_preference_reaches_the_model, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_three_fragments_one_turn, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_button_cuts_the_batch, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_long_flow_reply_reaches_the_model_whole, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_old_messages_get_one_reply, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_gives_one_reply, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_blocked_number_gets_nothing, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_statuses_reach_the_outbox, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_send_without_status_is_flagged, setup_silent, teardown),
        cmocka_unit_test_setup_teardown(test_faq_answers_without_llm, setup_faq, teardown),
        cmocka_unit_test_setup_teardown(test_faq_answers_each_question, setup_faq, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_of_the_bot_answers_each_once, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_of_the_master_answers_each_once, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_notice_then_silence, setup_rate, teardown),
        cmocka_unit_test_setup_teardown(test_loop_guard_silences_an_auto_responder, setup_loop, teardown),
        cmocka_unit_test_setup_teardown(test_loop_guard_answers_the_same_text_to_new_questions,
                                        setup_loop, teardown),
        cmocka_unit_test_setup_teardown(test_model_down_gives_fallback, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_blank_answer_gives_fallback, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_long_name_cut_at_a_character, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_answer_is_a_blank_answer, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_invisible_answer_is_a_blank_answer, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unusable_answer_gives_fallback, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_max_one, setup_batch1, teardown),
        cmocka_unit_test_setup_teardown(test_batch_ahead_of_the_clock_is_cut_in_time, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_throughput_errors_are_retried_in_order, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_lost_answer_is_not_sent_twice, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_failed_status_worth_retrying_is_sent_again, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_of_another_send_is_not_adopted, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_send_failing_is_a_dead_letter, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retries_end_at_send_tries, setup_tries3, teardown),
        cmocka_unit_test_setup_teardown(test_late_status_takes_back_a_dead_letter, setup_tries1,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_is_not_taken_for_its_earlier_send,
                                        setup_tries1, teardown),
        cmocka_unit_test_setup_teardown(test_lock_does_not_use_up_send_tries, setup_tries3,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_block_does_not_end_the_tries, setup_tries3,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_number_limit_pauses_every_send, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_failed_status_without_a_code_is_final, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_window_closed_is_a_dead_letter, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_token_needs_attention, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_account_locked_needs_attention, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_bare_proxy_refusal_holds_and_keeps_the_reply,
                                        setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_number_needs_attention, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_answer_history_holds_what_went, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_payment_status_holds_until_a_delivery,
                                        setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_held_sends_leave_turns_to_the_lift, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_locked_account_holds_every_send, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probe_without_answer_starts_the_next_hold, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reconciled_probe_delivered_lifts_the_block,
                                        setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_reconciled_probe_lifts_a_refusals_block, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lifted_block_keeps_the_hold_of_another, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probe_refused_for_server_trouble_starts_the_next_hold,
                                        setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_and_edit_are_kept_not_answered, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_number_is_kept_not_answered, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_history_read_error_retries_the_turn, setup_llm,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_locked_store_does_not_stall_the_loop,
                                        setup_heartbeat3s, teardown),
        cmocka_unit_test_setup_teardown(test_commit_retry_doubles_per_try, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_keeps_the_answer, setup_llm, teardown),
        cmocka_unit_test_setup_teardown(test_reads_share_the_pace_with_replies, setup_pace5,
                                        teardown),
    };
    int rc;

    setenv("MYNA_ADMIN_TOKEN", ADMIN_TOKEN, 1);  /* the contacts API in one case */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("MYNA_TEST_FILTER"))  /* one case: MYNA_TEST_FILTER=test_name (globs) */
        cmocka_set_test_filter(getenv("MYNA_TEST_FILTER"));
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
