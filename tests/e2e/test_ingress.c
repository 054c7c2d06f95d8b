/* test_ingress.c - the Cloud API ingress end to end: the real myna binary on
 * loopback ports, signed fixtures over real HTTP, the stores read back with
 * SQLite, kill -9 and SIGTERM in the middle of traffic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/util.h"
#include "harness.h"

#define SECRET "test-app-secret-0123456789abcdef"
#define OTHER_SECRET "another-app-secret-for-tests"
#define PHONE_ID "481516234200915"
#define BRANCH_PHONE_ID "527364819203746"

static const char *const instances_json =
    "[{\"id\":\"barber\",\"name\":\"Barbershop\",\"provider\":\"cloud\","
    "\"phone_number_id\":\"" PHONE_ID "\",\"waba_id\":\"302948571630214\","
    "\"access_token\":\"tok-1\",\"app_secret\":\"" SECRET "\",\"verify_token\":\"vt-barber\"},"
    "{\"id\":\"branch\",\"name\":\"Second branch\",\"provider\":\"cloud\","
    "\"phone_number_id\":\"" BRANCH_PHONE_ID "\",\"waba_id\":\"302948571630998\","
    "\"access_token\":\"tok-2\",\"app_secret\":\"" SECRET "\",\"verify_token\":\"vt-branch\"},"
    "{\"id\":\"other-app\",\"name\":\"Other app\",\"provider\":\"cloud\","
    "\"phone_number_id\":\"111222333444555\",\"access_token\":\"tok-3\","
    "\"app_secret\":\"" OTHER_SECRET "\",\"verify_token\":\"vt-other\"}]";

static int setup(void **state)
{
    return (*state = h_launch(instances_json, NULL)) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    h_release(*state);
    return 0;
}

/* The master must stop cleanly (exit 0) too. */
static int teardown_stop(void **state)
{
    assert_int_equal(h_stop_release(*state), 0);
    return 0;
}

/* A one-message text webhook with its own wamid. */
static int text_payload(char *buf, size_t cap, const char *phone_id, const char *wamid,
                        const char *body)
{
    return snprintf(buf, cap,
                    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"302948571630214\","
                    "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                    "{\"display_phone_number\":\"79990001122\",\"phone_number_id\":\"%s\"},"
                    "\"contacts\":[{\"profile\":{\"name\":\"Test\"},\"wa_id\":\"79161234567\"}],"
                    "\"messages\":[{\"from\":\"79161234567\",\"id\":\"%s\",\"timestamp\":"
                    "\"1773478800\",\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]},"
                    "\"field\":\"messages\"}]}]}",
                    phone_id, wamid, body);
}

static long post_fixture(struct myna_proc *p, const char *id, const char *name)
{
    char rel[200];
    size_t len;
    char *body;
    long code;

    snprintf(rel, sizeof(rel), "cloud/%s", name);
    body = h_read_data(rel, &len);
    assert_non_null(body);
    code = h_post_signed(p->public_url, id, SECRET, body, len, NULL, 0);
    free(body);
    return code;
}

/* ---- verification handshake ------------------------------------------- */

static void test_handshake(void **state)
{
    struct myna_proc *p = *state;
    char url[400], resp[256];

    snprintf(url, sizeof(url),
             "%s/webhook/barber?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=vt-barber",
             p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)), 200);
    assert_string_equal(resp, "1158201444");  /* byte for byte, no newline */

    snprintf(url, sizeof(url),
             "%s/webhook/barber?hub.mode=subscribe&hub.challenge=abc-XYZ_09&hub.verify_token=vt-barber",
             p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)), 200);
    assert_string_equal(resp, "abc-XYZ_09");
    {   /* a HEAD is answered as the GET, without the body, and is no
         * verification of Meta's: not counted */
        char head[1024], len[16];
        assert_int_equal(h_http_ex("HEAD", url, NULL, 0, NULL, resp, sizeof(resp), head,
                                   sizeof(head)),
                         200);
        assert_string_equal(resp, "");
        assert_true(h_header(head, "Content-Length", len, sizeof(len)));
        assert_string_equal(len, "10");
    }

    /* another instance's token, a wrong mode, missing parts: 403 */
    snprintf(url, sizeof(url),
             "%s/webhook/barber?hub.mode=subscribe&hub.challenge=1&hub.verify_token=vt-branch",
             p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 403);
    snprintf(url, sizeof(url),
             "%s/webhook/barber?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=vt-barber",
             p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 403);
    snprintf(url, sizeof(url), "%s/webhook/barber?hub.mode=subscribe&hub.verify_token=vt-barber",
             p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 403);
    snprintf(url, sizeof(url), "%s/webhook/barber", p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 403);
    snprintf(url, sizeof(url),
             "%s/webhook/nobody?hub.mode=subscribe&hub.challenge=1&hub.verify_token=vt-barber",
             p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 404);
    assert_true(h_metric(p, "myna_webhook_verifications_total") == 2);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"verify_failed\"}") == 4);
    snprintf(url, sizeof(url), "%s/webhook/barber", p->public_url);
    assert_int_equal(h_http("HEAD", url, NULL, 0, NULL, NULL, 0), 403);
}

/* Lines of the master's log that contain needle. */
static int log_lines(const struct myna_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    char line[2048];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Anyone may send refused handshakes: each is answered 403 and counted,
 * but the warning an operator looks for is logged at most once a second,
 * saying how many went unlogged. */
static void test_refused_handshakes_do_not_flood_the_log(void **state)
{
    struct myna_proc *p = *state;
    char url[400];
    int64_t t0 = myna_mono_ms(), secs;
    int lines;

    snprintf(url, sizeof(url),
             "%s/webhook/barber?hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess",
             p->public_url);
    for (int i = 0; i < 60; i++)
        assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 403);
    secs = (myna_mono_ms() - t0) / 1000;
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"verify_failed\"}") == 60);
    lines = log_lines(p, "event=webhook_verify_refused");
    assert_true(lines >= 1);
    assert_true(lines <= secs + 2);
    assert_true(h_log_contains(p, "event=webhook_verify_refused instance=barber mode_ok=1 "
                                  "token_ok=0 unlogged=0"));
    usleep(1100 * 1000);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 403);
    assert_int_equal(log_lines(p, "event=webhook_verify_refused"), lines + 1);
    assert_false(h_log_contains(p, "guess"));
}

/* ---- status codes for bad requests ---------------------------------------- */

static void test_rejections(void **state)
{
    struct myna_proc *p = *state;
    char url[300], body[2048], sig[72], hdr[128];
    const char *headers[2] = { hdr, NULL };
    int n = text_payload(body, sizeof(body), PHONE_ID, "wamid.reject-1", "hi");

    snprintf(url, sizeof(url), "%s/webhook/barber", p->public_url);
    /* no signature, wrong signature, signature by another app, bad forms */
    assert_int_equal(h_http("POST", url, body, (size_t)n, NULL, NULL, 0), 401);
    h_sign(OTHER_SECRET, body, (size_t)n, sig);
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig);
    assert_int_equal(h_http("POST", url, body, (size_t)n, headers, NULL, 0), 401);
    h_sign(SECRET, body, (size_t)n, sig);
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig + 7);  /* no sha256= */
    assert_int_equal(h_http("POST", url, body, (size_t)n, headers, NULL, 0), 401);
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %.70s", sig);  /* cut short */
    assert_int_equal(h_http("POST", url, body, (size_t)n, headers, NULL, 0), 401);
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature: sha1=0123456789abcdef0123456789abcdef01234567");
    assert_int_equal(h_http("POST", url, body, (size_t)n, headers, NULL, 0), 401);
    /* the signature over other bytes: one changed byte of the body */
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig);
    body[10] ^= 1;
    assert_int_equal(h_http("POST", url, body, (size_t)n, headers, NULL, 0), 401);
    body[10] ^= 1;
    assert_int_equal(h_db_count(p, "barber", "inbox", NULL), 0);

    /* correct signature: uppercase hex is accepted too */
    for (char *c = sig + 7; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig);
    assert_int_equal(h_http("POST", url, body, (size_t)n, headers, NULL, 0), 200);
    assert_int_equal(h_db_count(p, "barber", "inbox", NULL), 1);

    /* unknown instance, path tricks */
    assert_int_equal(h_post_signed(p->public_url, "nobody", SECRET, body, (size_t)n, NULL, 0), 404);
    assert_int_equal(h_post_signed(p->public_url, "..%2Fbarber", SECRET, body, (size_t)n, NULL, 0), 404);
    assert_int_equal(h_post_signed(p->public_url, "BARBER", SECRET, body, (size_t)n, NULL, 0), 404);
    assert_int_equal(h_post_signed(p->public_url, "barber/x", SECRET, body, (size_t)n, NULL, 0), 404);
    assert_int_equal(h_post_signed(p->public_url, "", SECRET, body, (size_t)n, NULL, 0), 404);

    /* signed but not JSON, or JSON of another shape */
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, "{\"object\":", 10, NULL, 0), 400);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, "", 0, NULL, 0), 400);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, "[1,2]", 5, NULL, 0), 400);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET,
                                   "{\"object\":\"page\",\"entry\":[]}", 28, NULL, 0), 400);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, "\xff\xfe\x00\x01", 4, NULL, 0), 400);

    /* over 3 MiB: test_too_large_answered_before_its_body */

    /* methods and other paths */
    {
        char head[1024], allow[64];
        assert_int_equal(h_http_ex("PUT", url, body, (size_t)n, NULL, NULL, 0, head,
                                   sizeof(head)),
                         405);
        assert_true(h_header(head, "Allow", allow, sizeof(allow)));
        assert_string_equal(allow, "GET, HEAD, POST");
    }
    assert_int_equal(h_http("DELETE", url, NULL, 0, NULL, NULL, 0), 405);
    snprintf(url, sizeof(url), "%s/healthz", p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 200);
    snprintf(url, sizeof(url), "%s/healthz", p->admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 200);
    snprintf(url, sizeof(url), "%s/metrics", p->public_url);  /* admin only */
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 404);
    snprintf(url, sizeof(url), "%s/nothing", p->public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 404);

    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"bad_signature\"}") == 6);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"unknown_instance\"}") == 5);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"bad_json\"}") == 3);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"bad_shape\"}") == 2);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"bad_method\"}") == 2);
    assert_true(h_metric(p, "myna_records_stored_total{kind=\"message\"}") == 1);
    assert_true(h_metric(p, "myna_open_connections") >= 0);
    /* the store holds exactly the one accepted message */
    assert_int_equal(h_db_count(p, "barber", "inbox", NULL), 1);
}

/* ---- every fixture ------------------------------------------------------- */

static void test_every_fixture(void **state)
{
    struct myna_proc *p = *state;
    static const char *const fixtures[] = {
        "cloud-text.json", "cloud-three-messages-one-post.json", "cloud-button-reply.json",
        "cloud-list-reply.json", "cloud-template-button.json", "cloud-image-with-caption.json",
        "cloud-voice.json", "cloud-location.json", "cloud-contacts.json", "cloud-reaction.json",
        "cloud-sticker.json", "cloud-unsupported.json", "cloud-reply-context.json",
        "cloud-referral-ad.json", "cloud-system.json", "cloud-order.json",
        "cloud-status-sent.json", "cloud-status-delivered-read.json",
        "cloud-status-failed-131047.json", "cloud-text-duplicate-retry.json",
    };
    size_t len;
    char *body;

    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        long code = post_fixture(p, "barber", fixtures[i]);
        if (code != 200)
            fail_msg("%s answered %ld", fixtures[i], code);
    }
    /* the escaped wire form, signed with the vector given with the fixtures:
     * proves the MAC is over the raw bytes, never a re-serialisation */
    body = h_read_data("cloud/cloud-text-cyrillic-emoji.json", &len);
    assert_non_null(body);
    {
        char url[300];
        const char *headers[] = {
            "X-Hub-Signature-256: sha256=c220ceab5df3f29846579e029c24621cdddcfd0fb96f8ea859d369652fcb1333",
            NULL };
        snprintf(url, sizeof(url), "%s/webhook/barber", p->public_url);
        assert_int_equal(h_http("POST", url, body, len, headers, NULL, 0), 200);
    }
    free(body);

    /* 16 message fixtures with 18 messages (one duplicate) + cyrillic */
    assert_int_equal(h_db_count(p, "barber", "inbox", NULL), 19);
    assert_int_equal(h_db_count(p, "barber", "statuses", NULL), 4);
    assert_int_equal(h_db_count(p, "barber", "inbox", "type='voice' AND mime_type LIKE 'audio/ogg%'"), 1);
    assert_int_equal(h_db_count(p, "barber", "inbox", "type='button_reply' AND reply_id='slot:2026-03-14T11:00'"), 1);
    assert_int_equal(h_db_count(p, "barber", "inbox", "type='list_reply' AND reply_id='svc:beard'"), 1);
    assert_int_equal(h_db_count(p, "barber", "inbox", "type='system' AND reply_id='79169876543'"), 1);
    assert_int_equal(h_db_count(p, "barber", "inbox", "type='unsupported' AND error_code=131051"), 1);
    assert_int_equal(h_db_count(p, "barber", "inbox", "profile_name='Марина К.'"), 6);
    assert_int_equal(h_db_count(p, "barber", "messages", "text LIKE 'Здравствуйте!%Мастер Артём свободен? 🙏'"), 1);
    assert_int_equal(h_db_count(p, "barber", "statuses", "status='failed' AND error_code=131047"), 1);
    assert_int_equal(h_db_count(p, "barber", "statuses", "status IN ('delivered','read')"), 2);
    assert_int_equal(h_db_count(p, "barber", "inbox", "length(raw) > 20 AND raw LIKE '{%}'"), 19);
    /* the same statuses again are not stored twice */
    assert_int_equal(post_fixture(p, "barber", "cloud-status-delivered-read.json"), 200);
    assert_int_equal(h_db_count(p, "barber", "statuses", NULL), 4);
    assert_true(h_metric(p, "myna_duplicates_total{kind=\"message\"}") == 1);
    assert_true(h_metric(p, "myna_duplicates_total{kind=\"status\"}") == 2);
    assert_true(h_metric(p, "myna_records_stored_total{kind=\"status\"}") == 4);

    /* Meta's errors without a message: nothing to store, but counted and logged */
    assert_int_equal(post_fixture(p, "barber", "extra/value-errors.json"), 200);
    assert_true(h_metric(p, "myna_webhook_errors_total") == 2);
    assert_true(h_log_contains(p, "event=webhook_errors instance=barber errors=2 code=131000"));
}

/* ---- routing by phone_number_id ------------------------------------------ */

static void test_routing(void **state)
{
    struct myna_proc *p = *state;
    char body[2048];
    int n;

    /* one Meta app, one callback URL, two numbers: each number's records go
     * to its own instance whichever URL they arrive on */
    n = text_payload(body, sizeof(body), BRANCH_PHONE_ID, "wamid.route-1", "to the branch");
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, body, (size_t)n, NULL, 0), 200);
    assert_int_equal(h_db_count(p, "branch", "inbox", "wamid='wamid.route-1'"), 1);
    assert_int_equal(h_db_count(p, "barber", "inbox", "wamid='wamid.route-1'"), 0);
    /* a number of another app is not taken over: kept by the URL's instance */
    n = text_payload(body, sizeof(body), "111222333444555", "wamid.route-2", "elsewhere");
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, body, (size_t)n, NULL, 0), 200);
    assert_int_equal(h_db_count(p, "barber", "inbox", "wamid='wamid.route-2'"), 1);
    assert_int_equal(h_db_count(p, "other-app", "inbox", NULL), 0);
    assert_true(h_metric(p, "myna_webhook_unrouted_records_total") == 1);
    /* the other app's instance checks its own secret */
    assert_int_equal(h_post_signed(p->public_url, "other-app", SECRET, body, (size_t)n, NULL, 0), 401);
    assert_int_equal(h_post_signed(p->public_url, "other-app", OTHER_SECRET, body, (size_t)n, NULL, 0), 200);
    assert_int_equal(h_db_count(p, "other-app", "inbox", "wamid='wamid.route-2'"), 1);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * nmemb;
}

/* ---- load with a crash or a stop in the middle ----------------------------- */

struct load {
    int total, acked_n, sent;
    char (*ids)[48];
    char **bodies;
    char (*sigs)[96];
    int *code;
};

/* Posts `total` unique messages over `parallel` connections; after `stop_after`
 * 200s sends sig to the server (once), adds no more requests, and lets the
 * ones in flight finish or fail. */
static void run_load(struct myna_proc *p, struct load *ld, int parallel, int stop_after, int sig)
{
    CURLM *multi = curl_multi_init();
    struct curl_slist **hdrs = calloc((size_t)ld->total, sizeof(*hdrs));
    char url[300];
    int inflight = 0, next = 0, signalled = 0, running;

    assert_non_null(multi);
    assert_non_null(hdrs);
    snprintf(url, sizeof(url), "%s/webhook/barber", p->public_url);
    do {
        CURLMsg *msg;
        int left;

        while (!signalled && inflight < parallel && next < ld->total) {
            CURL *e = curl_easy_init();
            int i = next++;
            hdrs[i] = curl_slist_append(NULL, ld->sigs[i]);
            hdrs[i] = curl_slist_append(hdrs[i], "Expect:");
            curl_easy_setopt(e, CURLOPT_URL, url);
            curl_easy_setopt(e, CURLOPT_PROXY, "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, ld->bodies[i]);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs[i]);
            curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)(intptr_t)i);
            curl_multi_add_handle(multi, e);
            inflight++;
            ld->sent++;
        }
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            char *priv;
            long code = -1;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            ld->code[(intptr_t)priv] = (int)code;
            ld->acked_n += code == 200;
            curl_multi_remove_handle(multi, msg->easy_handle);
            curl_easy_cleanup(msg->easy_handle);
            inflight--;
        }
        if (!signalled && ld->acked_n >= stop_after) {
            kill(p->pid, sig);
            signalled = 1;
        }
        if (inflight > 0)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    } while (inflight > 0 || (!signalled && next < ld->total));
    curl_multi_cleanup(multi);
    for (int i = 0; i < ld->total; i++)
        curl_slist_free_all(hdrs[i]);
    free(hdrs);
}

static void load_init(struct load *ld, int total, const char *tag)
{
    char body[2048], sig[72];

    memset(ld, 0, sizeof(*ld));
    ld->total = total;
    ld->ids = calloc((size_t)total, sizeof(*ld->ids));
    ld->bodies = calloc((size_t)total, sizeof(*ld->bodies));
    ld->sigs = calloc((size_t)total, sizeof(*ld->sigs));
    ld->code = calloc((size_t)total, sizeof(*ld->code));
    assert_true(ld->ids && ld->bodies && ld->sigs && ld->code);
    for (int i = 0; i < total; i++) {
        int n;
        snprintf(ld->ids[i], sizeof(ld->ids[i]), "wamid.%s-%d", tag, i);
        n = text_payload(body, sizeof(body), PHONE_ID, ld->ids[i], "message under load");
        ld->bodies[i] = strdup(body);
        assert_non_null(ld->bodies[i]);
        h_sign(SECRET, body, (size_t)n, sig);
        snprintf(ld->sigs[i], sizeof(ld->sigs[i]), "X-Hub-Signature-256: %s", sig);
    }
}

static void load_free(struct load *ld)
{
    for (int i = 0; i < ld->total; i++)
        free(ld->bodies[i]);
    free(ld->ids);
    free(ld->bodies);
    free(ld->sigs);
    free(ld->code);
}

/* Every acknowledged message must be stored exactly once. */
static void assert_acked_stored(struct myna_proc *p, struct load *ld)
{
    char where[128];
    int checked = 0;

    for (int i = 0; i < ld->total; i++) {
        if (ld->code[i] != 200)
            continue;
        snprintf(where, sizeof(where), "wamid='%s'", ld->ids[i]);
        if (h_db_count(p, "barber", "inbox", where) != 1)
            fail_msg("acknowledged %s is not stored exactly once", ld->ids[i]);
        checked++;
    }
    assert_int_equal(checked, ld->acked_n);
}

static void test_kill9_keeps_every_acknowledged_record(void **state)
{
    struct myna_proc *p = *state;

    for (int round = 0; round < 3; round++) {
        struct load ld;
        char tag[32];
        long before;

        snprintf(tag, sizeof(tag), "kill%d", round);
        load_init(&ld, 600, tag);
        before = h_db_count(p, "barber", "inbox", NULL);
        run_load(p, &ld, 32, 100 + round * 150, SIGKILL);
        assert_true(ld.acked_n >= 100 + round * 150);
        assert_true(ld.acked_n < ld.total);  /* the kill cut traffic in flight */
        {
            int status;
            assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
            assert_true(WIFSIGNALED(status));
            p->pid = 0;
        }
        /* restart on the same data: every 200 is there, once */
        assert_int_equal(h_start(p, NULL), 0);
        assert_acked_stored(p, &ld);
        assert_true(h_db_count(p, "barber", "inbox", NULL) - before >= ld.acked_n);
        /* Meta's retry of everything, acknowledged or not: no duplicates */
        for (int i = 0; i < ld.total; i += 7) {
            long code = h_post_signed(p->public_url, "barber", SECRET, ld.bodies[i],
                                      strlen(ld.bodies[i]), NULL, 0);
            assert_int_equal(code, 200);
        }
        for (int i = 0; i < ld.total; i += 7) {
            char where[128];
            snprintf(where, sizeof(where), "wamid='%s'", ld.ids[i]);
            assert_int_equal(h_db_count(p, "barber", "inbox", where), 1);
        }
        load_free(&ld);
    }
}

static void test_sigterm_drains_and_exits_0(void **state)
{
    struct myna_proc *p = *state;
    struct load ld;
    int rc, status;

    load_init(&ld, 400, "term");
    run_load(p, &ld, 32, 150, SIGTERM);
    assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
    p->pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(h_log_contains(p, "event=draining"));
    assert_true(h_log_contains(p, "event=stopped pending=0"));
    /* every answer was either 200 (stored) or a refusal Meta retries */
    for (int i = 0; i < ld.total; i++)
        assert_true(ld.code[i] == 200 || ld.code[i] == 503 || ld.code[i] == -1 ||
                    ld.code[i] == 0);
    assert_acked_stored(p, &ld);
    load_free(&ld);
    rc = h_start(p, NULL);  /* the teardown expects a running server */
    assert_int_equal(rc, 0);
}

/* The commit held up past the drain's deadline: acme's store is locked by
 * another connection (the master's write waits up to its busy timeout),
 * and the bot of side is frozen, so that stopping the bots lasts until the
 * test lets it go. Nothing else answers for acme: it has no bot. */
static const char *const drain_json =
    "[{\"id\":\"acme\",\"name\":\"Acme\",\"provider\":\"cloud\","
    "\"phone_number_id\":\"" PHONE_ID "\",\"access_token\":\"tok-1\","
    "\"app_secret\":\"" SECRET "\",\"verify_token\":\"vt-acme\","
    "\"graph_url\":\"http://127.0.0.1:9\",\"auto_start\":false},"
    "{\"id\":\"side\",\"name\":\"Side\",\"provider\":\"cloud\","
    "\"phone_number_id\":\"" BRANCH_PHONE_ID "\",\"access_token\":\"tok-2\","
    "\"app_secret\":\"" OTHER_SECRET "\",\"verify_token\":\"vt-side\","
    "\"graph_url\":\"http://127.0.0.1:9\"}]";

struct late_post {
    struct myna_proc *p;
    long code;
};

static void *late_post_main(void *arg)
{
    struct late_post *lp = arg;
    char body[2048];
    int n = text_payload(body, sizeof(body), PHONE_ID, "wamid.LATE1", "late");

    lp->code = h_post_signed(lp->p->public_url, "acme", SECRET, body, (size_t)n, NULL, 0);
    return NULL;
}

static int late_pending(void *arg)
{
    return h_metric(arg, "myna_pending_requests") == 1;
}

static int drain_timed_out(void *arg)
{
    return h_log_contains(arg, "event=drain_timeout");
}

static long bot_pid(const struct myna_proc *p, const char *id)
{
    char needle[64];
    long pid = 0;
    FILE *f = fopen(p->log_path, "r");
    char line[1024];

    snprintf(needle, sizeof(needle), "event=bot_started instance=%s pid=", id);
    while (f && fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, needle);
        if (at)
            pid = strtol(at + strlen(needle), NULL, 10);
    }
    if (f)
        fclose(f);
    return pid;
}

static int side_started(void *arg)
{
    return bot_pid(arg, "side") > 0;
}

static pid_t frozen_bot;  /* killed by the teardown if the test left it frozen */

static int setup_drain(void **state)
{
    const char *extra[] = { "--bots", "1", "--drain-timeout-ms", "100", NULL };

    frozen_bot = 0;
    return (*state = h_launch(drain_json, extra)) != NULL ? 0 : -1;
}

static int teardown_drain(void **state)
{
    if (frozen_bot > 0)
        kill(frozen_bot, SIGKILL);
    h_release(*state);
    return 0;
}

/* SIGTERM: the drain's deadline passes with a commit in flight, which then
 * lands while the bots are being stopped. Its request is answered 200 and
 * nothing is left unfinished, so the master exits 0, not 1. */
static void test_commit_done_while_bots_stop_exits_0(void **state)
{
    struct myna_proc *p = *state;
    struct late_post lp = { p, 0 };
    sqlite3 *db = NULL;
    pthread_t th;
    int status;

    assert_true(h_wait(side_started, p, 10000));
    frozen_bot = (pid_t)bot_pid(p, "side");
    assert_int_equal(kill(frozen_bot, SIGSTOP), 0);
    assert_non_null(db = h_db_lock(p, "acme.db"));
    assert_int_equal(pthread_create(&th, NULL, late_post_main, &lp), 0);
    assert_true(h_wait(late_pending, p, 10000));
    kill(p->pid, SIGTERM);
    assert_true(h_wait(drain_timed_out, p, 10000));
    /* the store is free again within the master's busy timeout (2 s) */
    assert_int_equal(h_db_unlock(db, "ROLLBACK"), 0);
    pthread_join(th, NULL);
    assert_int_equal(lp.code, 200);
    assert_int_equal(kill(frozen_bot, SIGCONT), 0);  /* it takes its SIGTERM now */
    frozen_bot = 0;
    assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
    p->pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(h_log_contains(p, "event=stopped pending=0"));
    assert_int_equal(h_db_count(p, "acme", "inbox", "wamid='wamid.LATE1'"), 1);
}

/* The same without bots, the store locked till after the end: the commit
 * is still in flight when the master stops, its request unanswered, and
 * the exit is 1. */
static void test_commit_stuck_past_the_drain_exits_1(void **state)
{
    const char *extra[] = { "--drain-timeout-ms", "100", NULL };
    struct myna_proc *p = h_launch(drain_json, extra);
    struct late_post lp = { p, 0 };
    sqlite3 *db = NULL;
    pthread_t th;

    (void)state;
    assert_non_null(p);
    assert_non_null(db = h_db_lock(p, "acme.db"));
    assert_int_equal(pthread_create(&th, NULL, late_post_main, &lp), 0);
    assert_true(h_wait(late_pending, p, 10000));
    assert_int_equal(h_stop(p, SIGTERM), 1);
    pthread_join(th, NULL);
    assert_true(lp.code <= 0);  /* no answer: Meta sends it again */
    assert_true(h_log_contains(p, "event=drain_timeout pending=1"));
    assert_true(h_log_contains(p, "event=stopped pending=1"));
    assert_int_equal(h_db_unlock(db, "ROLLBACK"), 0);
    h_release(p);
}

/* ---- logs -------------------------------------------------------------- */

/* ---- one raw connection: keep-alive, pipelining, close ------------------ */

static int raw_connect(const struct myna_proc *p)
{
    int fd = h_connect(p->public_url);

    assert_true(fd >= 0);
    return fd;
}

/* Appends a signed POST of a one-text webhook with wamid to buf. */
static size_t raw_request(char *buf, size_t cap, size_t at, const char *wamid,
                          const char *version, const char *connection)
{
    char body[1024], sig[72];
    int blen = text_payload(body, sizeof(body), PHONE_ID, wamid, "raw");
    int n;

    h_sign(SECRET, body, (size_t)blen, sig);
    n = snprintf(buf + at, cap - at,
                 "POST /webhook/barber %s\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\nX-Hub-Signature-256: %s\r\n"
                 "%s%s%sContent-Length: %d\r\n\r\n%s",
                 version, sig, connection ? "Connection: " : "", connection ? connection : "",
                 connection ? "\r\n" : "", blen, body);
    assert_true(n > 0 && (size_t)n < cap - at);
    return at + (size_t)n;
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        buf += n;
        len -= (size_t)n;
    }
}

/* Reads until want answers ("HTTP/1.x 200") have come and, if closed is
 * set, until the server closes; returns the answers counted. 15 s of
 * silence at most. */
static int read_answers(int fd, int want, int closed)
{
    char buf[16384];
    size_t len = 0;
    int got = 0;

    for (int waited = 0; waited < 15000;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t n;

        got = 0;
        for (const char *q = buf; (q = memmem(q, len - (size_t)(q - buf), " 200 OK", 7)); q += 7)
            got++;
        if (got >= want && !closed)
            return got;
        if (poll(&pfd, 1, 100) == 0) {
            waited += 100;
            continue;
        }
        n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return closed ? got : -1;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return -1;
}

static long stored(const struct myna_proc *p, const char *wamid)
{
    char where[128];

    snprintf(where, sizeof(where), "wamid='%s'", wamid);
    return h_db_count(p, "barber", "inbox", where);
}

static int gone_stored(void *arg)
{
    return stored(arg, "wamid.RAWGONE") == 1;
}

/* Only the scrape's own connection is open. */
static int raw_connections_closed(void *arg)
{
    return h_metric(arg, "myna_open_connections") == 1;
}

/* All the server sends on fd until it closes (5 s of silence at most),
 * into buf; its length, or -1 if the connection stayed open. */
static long read_to_close(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (int waited = 0; waited < 5000;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t n;

        if (poll(&pfd, 1, 100) == 0) {
            waited += 100;
            continue;
        }
        if ((n = recv(fd, buf + len, cap - 1 - len, 0)) <= 0) {
            buf[len] = '\0';
            return (long)len;
        }
        len += (size_t)n;
    }
    return -1;
}

/* A request whose length could be read two ways (two Content-Lengths that
 * differ; Content-Length beside chunked) is 400 and ends its connection
 * (RFC 9112 6.3): a proxy in front that read it the other way would
 * otherwise have what follows taken for a request of its own, one the
 * proxy never saw (request smuggling). */
static void test_ambiguous_length_ends_the_connection(void **state)
{
    struct myna_proc *p = *state;
    static const char *const reqs[] = {
        "POST /webhook/barber HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        "Content-Length: 34\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /webhook/barber HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 34\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    char buf[8192];

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        int fd = raw_connect(p), answers = 0;
        send_all(fd, reqs[i], strlen(reqs[i]));
        assert_true(read_to_close(fd, buf, sizeof(buf)) > 0);
        close(fd);
        for (const char *q = buf; (q = strstr(q, "HTTP/1.1 ")) != NULL; q++)
            answers++;
        assert_int_equal(answers, 1);
        assert_non_null(strstr(buf, "HTTP/1.1 400 "));
    }
    /* one Content-Length, said twice alike, is one length */
    {
        int fd = raw_connect(p);
        const char *same = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                           "Content-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(fd, same, strlen(same));
        assert_true(read_to_close(fd, buf, sizeof(buf)) > 0);
        close(fd);
        assert_non_null(strstr(buf, "HTTP/1.1 200 "));
    }
}

static void test_one_connection_many_ways(void **state)
{
    struct myna_proc *p = *state;
    static char buf[65536];
    size_t len = 0;
    char id[64];
    int fd;

    /* keep-alive: 40 requests one after another, then 3 in one write */
    fd = raw_connect(p);
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "wamid.RAWSEQ%02d", i);
        len = raw_request(buf, sizeof(buf), 0, id, "HTTP/1.1", NULL);
        send_all(fd, buf, len);
        assert_int_equal(read_answers(fd, 1, 0), 1);
    }
    len = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "wamid.RAWPIPE%d", i);
        len = raw_request(buf, sizeof(buf), len, id, "HTTP/1.1", NULL);
    }
    send_all(fd, buf, len);
    assert_int_equal(read_answers(fd, 3, 0), 3);
    /* counted: this connection and the scrape's own */
    assert_true(h_metric(p, "myna_open_connections") >= 2);
    close(fd);

    /* Connection: close and HTTP/1.0: the answer, then the server closes */
    fd = raw_connect(p);
    len = raw_request(buf, sizeof(buf), 0, "wamid.RAWCLOSE", "HTTP/1.1", "close");
    send_all(fd, buf, len);
    assert_int_equal(read_answers(fd, 1, 1), 1);
    close(fd);
    fd = raw_connect(p);
    len = raw_request(buf, sizeof(buf), 0, "wamid.RAW10", "HTTP/1.0", NULL);
    send_all(fd, buf, len);
    assert_int_equal(read_answers(fd, 1, 1), 1);
    close(fd);

    /* the client hangs up before its answer: the record is still stored */
    fd = raw_connect(p);
    len = raw_request(buf, sizeof(buf), 0, "wamid.RAWGONE", "HTTP/1.1", NULL);
    send_all(fd, buf, len);
    shutdown(fd, SHUT_WR);
    close(fd);

    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "wamid.RAWSEQ%02d", i);
        assert_int_equal(stored(p, id), 1);
    }
    assert_int_equal(stored(p, "wamid.RAWPIPE0") + stored(p, "wamid.RAWPIPE1") +
                     stored(p, "wamid.RAWPIPE2"), 3);
    assert_int_equal(stored(p, "wamid.RAWCLOSE"), 1);
    assert_int_equal(stored(p, "wamid.RAW10"), 1);
    assert_true(h_wait(gone_stored, p, 10000));
    /* every raw connection is gone from the gauge: only the scrape's is left */
    assert_true(h_wait(raw_connections_closed, p, 10000));
    {
        char url[200];
        snprintf(url, sizeof(url), "%s/healthz", p->public_url);
        assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 200);
    }
}

static int healthy(void *arg);

/* branch's store cannot be opened (its file is a directory). */
static int setup_broken_branch(void **state)
{
    struct myna_proc *p = calloc(1, sizeof(*p));
    char path[400];

    *state = p;
    if (p == NULL || h_setup(p, instances_json) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/var", p->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/var/instances", p->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/var/instances/branch.db", p->dir);
    return mkdir(path, 0700) == 0 && h_start(p, NULL) == 0 ? 0 : -1;
}

/* An instance whose store cannot be opened: the master starts, its own
 * webhooks and a sibling's body with a record for it are answered 503,
 * both counted as store_failed (nothing is taken, so the body's other
 * counts wait for Meta's retry); the others are served. */
static void test_broken_store_refuses_only_its_records(void **state)
{
    struct myna_proc *p = *state;
    char body[2048], resp[512];
    int n = text_payload(body, sizeof(body), BRANCH_PHONE_ID, "wamid.BROKEN1", "hi");

    assert_true(h_log_contains(p, "event=instance_store_failed instance=branch"));
    assert_int_equal(h_post_signed(p->public_url, "branch", SECRET, body, (size_t)n, NULL, 0), 503);
    /* through barber's URL, with an account error beside it */
    n = snprintf(body, sizeof(body),
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":["
                 "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                 "\"display_phone_number\":\"1\",\"phone_number_id\":\"%s\"},"
                 "\"messages\":[{\"from\":\"79161234567\",\"id\":\"wamid.BROKEN2\","
                 "\"timestamp\":\"1773478800\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]},"
                 "\"field\":\"messages\"},"
                 "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                 "\"display_phone_number\":\"1\",\"phone_number_id\":\"%s\"},"
                 "\"errors\":[{\"code\":131000,\"title\":\"Something went wrong\"}]},"
                 "\"field\":\"messages\"}]}]}",
                 BRANCH_PHONE_ID, PHONE_ID);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, body, (size_t)n, resp,
                                   sizeof(resp)), 503);
    assert_non_null(strstr(resp, "instance 'branch', whose store cannot be opened"));
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"store_failed\"}") == 2);
    assert_true(h_metric(p, "myna_commit_failures_total") == 0);
    assert_true(h_metric(p, "myna_webhook_errors_total") == 0);
    assert_false(h_log_contains(p, "event=webhook_errors"));
    n = text_payload(body, sizeof(body), PHONE_ID, "wamid.BROKEN3", "hi");
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, body, (size_t)n, NULL, 0), 200);
    assert_int_equal(stored(p, "wamid.BROKEN3"), 1);
}


#define ADMIN_TOKEN "myna_IngressTestsAdminToken0123456789abcdefABCDE"

/* branch is disabled (it stays in barber's app). */
static int setup_disabled_branch(void **state)
{
    static char json[4096];
    const char *at = strstr(instances_json, "\"verify_token\":\"vt-branch\"");
    int head = (int)(at - instances_json);

    snprintf(json, sizeof(json), "%.*s\"enabled\":false,%s", head, instances_json, at);
    setenv("MYNA_ADMIN_TOKEN", ADMIN_TOKEN, 1);  /* to enable it again */
    *state = h_launch(json, NULL);
    unsetenv("MYNA_ADMIN_TOKEN");
    return *state != NULL ? 0 : -1;
}

/* A disabled instance's records are refused through a sibling's URL as at
 * its own (404, nothing stored: Meta keeps the body and retries), and the
 * retry is taken once it is enabled again. */
static void test_disabled_sibling_refuses_its_records(void **state)
{
    struct myna_proc *p = *state;
    char body[2048], resp[512], url[300];
    const char *h[] = { "Content-Type: application/json",
                        "Authorization: Bearer " ADMIN_TOKEN, NULL };
    const char *on = "{\"enabled\":true}";
    int n = text_payload(body, sizeof(body), BRANCH_PHONE_ID, "wamid.OFF1", "hi");

    assert_int_equal(h_post_signed(p->public_url, "branch", SECRET, body, (size_t)n, NULL, 0), 404);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, body, (size_t)n, resp,
                                   sizeof(resp)), 404);
    assert_non_null(strstr(resp, "instance 'branch', which is disabled"));
    assert_true(h_db_count(p, "barber", "inbox", NULL) < 1);
    assert_true(h_db_count(p, "branch", "inbox", NULL) < 1);
    /* beside a record of barber's: the whole body is refused */
    n = snprintf(body, sizeof(body),
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":["
                 "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                 "\"display_phone_number\":\"1\",\"phone_number_id\":\"%s\"},"
                 "\"messages\":[{\"from\":\"79161234567\",\"id\":\"wamid.OFF2\","
                 "\"timestamp\":\"1773478800\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]},"
                 "\"field\":\"messages\"},"
                 "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                 "\"display_phone_number\":\"1\",\"phone_number_id\":\"%s\"},"
                 "\"messages\":[{\"from\":\"79161234567\",\"id\":\"wamid.OFF3\","
                 "\"timestamp\":\"1773478800\",\"type\":\"text\",\"text\":{\"body\":\"y\"}}]},"
                 "\"field\":\"messages\"}]}]}",
                 PHONE_ID, BRANCH_PHONE_ID);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, body, (size_t)n, NULL, 0), 404);
    assert_true(h_db_count(p, "barber", "inbox", NULL) < 1);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"instance_disabled\"}") == 2);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"unknown_instance\"}") == 1);
    assert_true(h_metric(p, "myna_webhook_unrouted_records_total") == 0);
    /* barber's own records are served */
    {
        char own[2048];
        int k = text_payload(own, sizeof(own), PHONE_ID, "wamid.OFF4", "hi");
        assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, own, (size_t)k, NULL, 0),
                         200);
        assert_int_equal(stored(p, "wamid.OFF4"), 1);
    }
    /* enabled again: Meta's retry is taken, each record by its owner */
    snprintf(url, sizeof(url), "%s/admin/whatsapp/instances/branch", p->admin_url);
    assert_int_equal(h_http("PUT", url, on, strlen(on), h, NULL, 0), 200);
    assert_int_equal(h_post_signed(p->public_url, "barber", SECRET, body, (size_t)n, NULL, 0), 200);
    assert_int_equal(stored(p, "wamid.OFF2"), 1);
    assert_int_equal(h_db_count(p, "branch", "inbox", "wamid='wamid.OFF3'"), 1);
    assert_int_equal(h_db_count(p, "barber", "inbox", "wamid='wamid.OFF3'"), 0);
}

/* Resident memory of pid in KiB. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    assert_non_null(f = fopen(path, "r"));
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* A signed chunked POST of body in chunks of at most chunk bytes. */
static void send_chunked(int fd, const char *body, size_t len, size_t chunk)
{
    char head[512], sig[72];
    int n;

    h_sign(SECRET, body, len, sig);
    n = snprintf(head, sizeof(head),
                 "POST /webhook/barber HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\nX-Hub-Signature-256: %s\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 sig);
    send_all(fd, head, (size_t)n);
    for (size_t at = 0; at < len; at += chunk) {
        size_t k = len - at < chunk ? len - at : chunk;
        n = snprintf(head, sizeof(head), "%zx\r\n", k);
        send_all(fd, head, (size_t)n);
        send_all(fd, body + at, k);
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
}

/* A body declared over 3 MiB is answered 413 from its headers, before a
 * byte of it is read, and the connection closed. (Sent whole, the answer
 * would race the client's writes: a close with the body unread resets the
 * connection, and the reset may discard the 413 before the client reads it.) */
static void test_too_large_answered_before_its_body(void **state)
{
    struct myna_proc *p = *state;
    char head[512], buf[1024];
    size_t len = 0;
    int fd = raw_connect(p), n;

    n = snprintf(head, sizeof(head),
                 "POST /webhook/barber HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\nX-Hub-Signature-256: sha256=%064d\r\n"
                 "Content-Length: %d\r\n\r\n", 0, 3 * 1024 * 1024 + 10);
    send_all(fd, head, (size_t)n);
    for (int waited = 0; waited < 15000 && len < sizeof(buf) - 1;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t k;
        if (poll(&pfd, 1, 100) == 0) {
            waited += 100;
            continue;
        }
        if ((k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) <= 0)
            break;  /* closed by the server: the whole answer is in */
        len += (size_t)k;
    }
    buf[len] = '\0';
    close(fd);
    assert_true(strncmp(buf, "HTTP/1.1 413 ", 13) == 0);
    assert_int_equal(h_db_count(p, "barber", "inbox", NULL), 0);
}

/* Chunked bodies are read as any other, up to a chunk of nearly the whole
 * body limit; a chunk-size line that never ends is not: the master stops
 * reading it (http_server.h) instead of holding all it is sent. */
static void test_chunked_bodies(void **state)
{
    struct myna_proc *p = *state;
    static char body[3 * 1024 * 1024];
    int blen = text_payload(body, sizeof(body), PHONE_ID, "wamid.CHUNKED1", "in pieces");
    long before, grown;
    int fd;

    fd = raw_connect(p);
    send_chunked(fd, body, (size_t)blen, 100);
    assert_int_equal(read_answers(fd, 1, 0), 1);
    /* one chunk of 3 MiB - 4 KiB: the payload, then spaces (valid JSON) */
    blen = text_payload(body, sizeof(body), PHONE_ID, "wamid.CHUNKED2", "in one piece");
    memset(body + blen, ' ', sizeof(body) - 4096 - (size_t)blen);
    send_chunked(fd, body, sizeof(body) - 4096, sizeof(body));
    assert_int_equal(read_answers(fd, 1, 0), 1);
    close(fd);
    assert_int_equal(stored(p, "wamid.CHUNKED1"), 1);
    assert_int_equal(stored(p, "wamid.CHUNKED2"), 1);

    /* digits without a line end, for 4 s or 64 MiB */
    before = rss_kib(p->pid);
    fd = raw_connect(p);
    {
        const char *head = "POST /webhook/barber HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n";
        int64_t end = myna_mono_ms() + 4000;
        size_t sent = 0;

        send_all(fd, head, strlen(head));
        memset(body, '0', 65536);
        while (sent < 64u << 20 && myna_mono_ms() < end) {
            struct pollfd pfd = { fd, POLLOUT, 0 };
            ssize_t n;
            if (poll(&pfd, 1, 100) <= 0)
                continue;
            n = send(fd, body, 65536, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                break;
        }
    }
    grown = rss_kib(p->pid) - before;
    if (grown > 12 * 1024)
        fail_msg("the master grew by %ld KiB reading one unended chunk line", grown);
    assert_true(healthy(p));
    {   /* and the master closed that connection: it holds nothing for it */
        struct pollfd pfd = { fd, POLLIN, 0 };
        char c;
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        assert_true(recv(fd, &c, 1, MSG_DONTWAIT) <= 0);
    }
    close(fd);
}

/* Reads what the server sends until it closes (15 s of silence at most). */
static size_t read_until_closed(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (int waited = 0; waited < 15000 && len < cap - 1;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t n;

        if (poll(&pfd, 1, 100) == 0) {
            waited += 100;
            continue;
        }
        if ((n = recv(fd, buf + len, cap - 1 - len, 0)) <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

/* An answer to HEAD is its headers alone (RFC 9110 9.3.2), with the
 * Content-Length a GET would get: bytes after them would be read by a
 * client keeping the connection as the start of its next answer. */
static void test_head_answers_carry_no_body(void **state)
{
    struct myna_proc *p = *state;
    static char buf[16384], in[16384];
    const char *head = "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                       "HEAD /webhook/barber HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const char *at;
    size_t len = strlen(head);
    int fd = raw_connect(p);

    memcpy(buf, head, len);
    len = raw_request(buf, sizeof(buf), len, "wamid.AFTERHEAD", "HTTP/1.1", "close");
    send_all(fd, buf, len);
    read_until_closed(fd, in, sizeof(in));
    close(fd);

    assert_true(strncmp(in, "HTTP/1.1 200 ", 13) == 0);
    assert_non_null(at = strstr(in, "\r\n\r\n"));
    at += 4;
    if (strncmp(at, "HTTP/1.1 403 ", 13) != 0)  /* a verification without its query */
        fail_msg("the HEAD /healthz answer is followed by '%.20s'", at);
    assert_non_null(at = strstr(at, "\r\n\r\n"));
    at += 4;
    if (strncmp(at, "HTTP/1.1 200 ", 13) != 0)
        fail_msg("the HEAD /webhook answer is followed by '%.20s'", at);
    assert_int_equal(stored(p, "wamid.AFTERHEAD"), 1);
    /* the length of the body a GET gets ("ok\n") */
    assert_non_null(memmem(in, (size_t)(strstr(in, "\r\n\r\n") - in), "Content-Length: 3\r\n", 19));
}

/* A method the listeners do not take is 501 Not Implemented (RFC 9110
 * 15.6.2); the answer to a CONNECT is framed like any other (libevent's
 * own had a body without a length, on a connection it kept), so the next
 * request on the connection is answered as usual. */
static void test_unknown_methods_are_501(void **state)
{
    struct myna_proc *p = *state;
    static char in[16384];
    const char *const other[] = { "TRACE", "PROPFIND", "get" };
    const char *req = "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    const char *at, *end;
    char url[300];
    int fd;

    snprintf(url, sizeof(url), "%s/webhook/barber", p->public_url);
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(h_http(other[i], url, NULL, 0, NULL, NULL, 0), 501);
    snprintf(url, sizeof(url), "%s/healthz", p->admin_url);
    assert_int_equal(h_http("TRACE", url, NULL, 0, NULL, NULL, 0), 501);

    fd = raw_connect(p);
    send_all(fd, req, strlen(req));
    read_until_closed(fd, in, sizeof(in));
    close(fd);
    assert_true(strncmp(in, "HTTP/1.1 501 ", 13) == 0);
    assert_non_null(end = strstr(in, "\r\n\r\n"));
    if (memmem(in, (size_t)(end - in), "Content-Length: 0\r\n", 19) == NULL)
        fail_msg("the CONNECT answer has no Content-Length: '%s'", in);
    at = end + 4;
    if (strncmp(at, "HTTP/1.1 200 ", 13) != 0)
        fail_msg("the CONNECT answer is followed by '%.20s'", at);
}

/* user + system CPU of pid, in clock ticks */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *q;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    assert_non_null(f = fopen(path, "r"));
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_non_null(q = strrchr(buf, ')'));
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    assert_int_equal(sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
    return (long)(ut + st);
}

/* While a request waits for its commit, evhttp does not read its
 * connection. Bytes and a hang-up arriving then must not make the loop
 * spin on the socket (conns.h), and both requests are still answered. */
static void test_waiting_connection_does_not_spin(void **state)
{
    struct myna_proc *p = *state;
    static char buf[8192];
    sqlite3 *db = NULL;
    size_t len;
    long t0, used;
    int fd;

    /* hold the store's write lock: the commit waits (busy timeout 2 s) */
    assert_non_null(db = h_db_lock(p, "barber.db"));

    fd = raw_connect(p);
    len = raw_request(buf, sizeof(buf), 0, "wamid.RAWWAIT1", "HTTP/1.1", NULL);
    send_all(fd, buf, len);
    usleep(100 * 1000);  /* read, waiting for the commit */
    len = raw_request(buf, sizeof(buf), 0, "wamid.RAWWAIT2", "HTTP/1.1", NULL);
    send_all(fd, buf, len);
    shutdown(fd, SHUT_WR);
    usleep(100 * 1000);
    t0 = cpu_ticks(p->pid);
    usleep(600 * 1000);
    used = cpu_ticks(p->pid) - t0;
    assert_int_equal(h_db_unlock(db, "ROLLBACK"), 0);
    /* a spinning loop would have used the whole 600 ms (60 ticks) */
    if (used > 20)
        fail_msg("the master used %ld ticks of CPU in 600 ms while one request waited", used);

    assert_int_equal(read_answers(fd, 2, 1), 2);
    close(fd);
    assert_int_equal(stored(p, "wamid.RAWWAIT1"), 1);
    assert_int_equal(stored(p, "wamid.RAWWAIT2"), 1);
}

static int accept_paused(void *arg)
{
    return h_log_contains(arg, "event=accept_paused listener=public");
}

static int healthy(void *arg)
{
    const struct myna_proc *p = arg;
    char url[200], resp[256];

    snprintf(url, sizeof(url), "%s/healthz", p->public_url);
    return h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)) == 200;
}

/* A soft descriptor limit below the hard one (systemd's 1024 for
 * services): the master raises it and says so in its ready line. */
static void test_raises_soft_nofile(void **state)
{
    struct myna_proc p;

    (void)state;
    assert_int_equal(h_setup(&p, instances_json), 0);
    p.nofile = 64;
    p.nofile_hard = 300;
    assert_int_equal(h_start(&p, NULL), 0);
    assert_true(h_log_contains(&p, "nofile=300"));
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* The ready line quotes the data directory: with a space in its path, the
 * fields after it were read as a bare key and fields of their own. */
static void test_ready_line_quotes_the_data_dir(void **state)
{
    struct myna_proc p;
    char data[400], want[480];
    const char *extra[] = { "--data", data, NULL };

    (void)state;
    assert_int_equal(h_setup(&p, instances_json), 0);
    snprintf(data, sizeof(data), "%s/my data", p.dir);
    assert_int_equal(h_start(&p, extra), 0);
    snprintf(want, sizeof(want), " data=\"%s\" nofile=", data);
    if (!h_log_contains(&p, want))
        fail_msg("no '%s' in the ready line", want);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* Out of file descriptors, accept fails: the listener pauses instead of
 * spinning (http_server.h), a connection already open is still served,
 * and once descriptors are free again new connections are too. */
static void test_out_of_descriptors(void **state)
{
    struct myna_proc p;
    static char buf[8192];
    int fds[80], first;
    size_t len;
    long t0, used;

    (void)state;
    assert_int_equal(h_setup(&p, instances_json), 0);
    p.nofile = 48;
    assert_int_equal(h_start(&p, NULL), 0);
    assert_true(h_log_contains(&p, "nofile=48"));
    first = raw_connect(&p);
    for (int i = 0; i < 80; i++)
        fds[i] = raw_connect(&p);  /* the kernel's backlog takes what accept cannot */
    assert_true(h_wait(accept_paused, &p, 10000));
    t0 = cpu_ticks(p.pid);
    usleep(600 * 1000);
    used = cpu_ticks(p.pid) - t0;
    /* a spinning loop would have used the whole 600 ms (60 ticks) */
    if (used > 20)
        fail_msg("the master used %ld ticks of CPU in 600 ms out of descriptors", used);

    len = raw_request(buf, sizeof(buf), 0, "wamid.NOFD1", "HTTP/1.1", NULL);
    send_all(first, buf, len);
    assert_int_equal(read_answers(first, 1, 0), 1);
    assert_int_equal(stored(&p, "wamid.NOFD1"), 1);

    for (int i = 0; i < 80; i++)
        close(fds[i]);
    assert_true(h_wait(healthy, &p, 10000));
    close(first);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

static void test_logs_hide_secrets(void **state)
{
    struct myna_proc *p = *state;

    assert_int_equal(post_fixture(p, "barber", "cloud-text.json"), 200);
    assert_false(h_log_contains(p, SECRET));
    assert_false(h_log_contains(p, "tok-1"));
    assert_false(h_log_contains(p, "vt-barber"));
    assert_false(h_log_contains(p, "79161234567"));
    assert_true(h_log_contains(p, "event=ready"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_handshakes_do_not_flood_the_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_keeps_every_acknowledged_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_drains_and_exits_0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_done_while_bots_stop_exits_0, setup_drain,
                                        teardown_drain),
        cmocka_unit_test(test_commit_stuck_past_the_drain_exits_1),
        cmocka_unit_test_setup_teardown(test_logs_hide_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_connection_many_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_length_ends_the_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_waiting_connection_does_not_spin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_answered_before_its_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_answers_carry_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_methods_are_501, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_store_refuses_only_its_records,
                                        setup_broken_branch, teardown_stop),
        cmocka_unit_test_setup_teardown(test_disabled_sibling_refuses_its_records,
                                        setup_disabled_branch, teardown),
        cmocka_unit_test(test_raises_soft_nofile),
        cmocka_unit_test(test_ready_line_quotes_the_data_dir),
        cmocka_unit_test(test_out_of_descriptors),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("MYNA_TEST_FILTER"))  /* one case: MYNA_TEST_FILTER=test_name (globs) */
        cmocka_set_test_filter(getenv("MYNA_TEST_FILTER"));
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
