/* test_ingress.c - master/ingress.c (included, to reach the stores of its
 * instance table): what a webhook's answer and the bots' doorbells say when
 * a body's records go to two instances' stores. The ingress serves an
 * evhttp listener on the test's loop, and the test's HTTP client posts to it
 * on the same loop; a store's commit is made to fail with
 * myna_store_sqlite_fail_after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "../tmpdir.h"

#include "net/http_client.h"

#include "master/ingress.c"

#define SECRET "test-app-secret-0123456789abcdef"
#define BARBER_PHONE "481516234200915"
#define BRANCH_PHONE "527364819203746"

struct fx {
    char dir[64], data[128];
    struct myna_conf conf;
    struct myna_metrics metrics;
    struct event_base *base;
    struct evhttp *http;
    char url[128];
    struct myna_ingress *ing;
    struct myna_http_client *client;
    char rung[8][16];  /* the doorbells rung, in order */
    int n_rung;
    long status;       /* of the last answer; 0 before it */
    char answer[256];
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

    assert_non_null(path);
    assert_int_equal(strncmp(path, "/webhook/", 9), 0);
    myna_ingress_handle(f->ing, req, path + 9);
}

static void on_ring(const char *id, void *arg)
{
    struct fx *f = arg;

    assert_true(f->n_rung < 8);
    snprintf(f->rung[f->n_rung++], sizeof(f->rung[0]), "%s", id);
}

static char ids[2][8] = { "barber", "branch" }, phones[2][16] = { BARBER_PHONE, BRANCH_PHONE };
static char secret[] = SECRET, token[] = "vt";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct myna_instance v[2];
    struct myna_instance_set set = { v, 2 };
    struct evhttp_bound_socket *sock;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    signal(SIGPIPE, SIG_IGN);  /* myna_http_reply_now writes at once */
    if (f == NULL || test_tmpdir(f->dir, sizeof(f->dir), "test-ingress") != 0)
        return -1;
    snprintf(f->data, sizeof(f->data), "%s/var", f->dir);
    f->conf.data_dir = f->data;
    f->conf.max_body_bytes = 1 << 20;
    f->conf.store_sync = MYNA_SYNC_NORMAL;
    f->conf.commit_max_records = 1000;
    f->conf.max_pending = 100;
    memset(v, 0, sizeof(v));
    for (int i = 0; i < 2; i++) {
        v[i].id = ids[i];
        v[i].phone_number_id = phones[i];
        v[i].app_secret = secret;  /* one Meta app */
        v[i].verify_token = token;
        v[i].enabled = 1;
    }
    if ((f->base = event_base_new()) == NULL || (f->http = evhttp_new(f->base)) == NULL ||
        (sock = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0)) == NULL ||
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) != 0 ||
        (f->ing = myna_ingress_new(f->base, &f->conf, &set, &f->metrics, NULL)) == NULL ||
        (f->client = myna_http_client_new(f->base, NULL)) == NULL)
        return -1;
    evhttp_set_gencb(f->http, on_request, f);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/webhook/barber",
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
    myna_ingress_set_notify(f->ing, on_ring, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    myna_http_client_free(f->client);
    evhttp_free(f->http);
    myna_ingress_free(f->ing);
    event_base_free(f->base);
    test_rmtree(f->dir);
    free(f);
    return 0;
}

static struct myna_store *store_of(struct fx *f, const char *id)
{
    struct ingress_instance *in = find_instance(f->ing->table, id);

    assert_non_null(in);
    assert_non_null(in->store);
    return in->store->st;
}

static int64_t inbox_count(struct fx *f, const char *id)
{
    int64_t n = -1, s = -1;

    assert_int_equal(myna_store_count(store_of(f, id), &n, &s, NULL), MYNA_OK);
    return n;
}

static void on_answer(const struct myna_http_resp *resp, void *arg)
{
    struct fx *f = arg;

    f->status = resp->rc == MYNA_OK ? resp->status : -1;
    snprintf(f->answer, sizeof(f->answer), "%s", resp->body ? resp->body : "");
    event_base_loopbreak(f->base);
}

/* POSTs body, signed, to barber's URL; the answer's status. */
static long post(struct fx *f, const char *body)
{
    struct myna_hmac_key *k = myna_hmac_key_new(SECRET, strlen(SECRET), NULL);
    char sig[72], hdr[128];
    const char *headers[] = { "Content-Type: application/json", hdr, NULL };
    struct myna_http_req req;

    assert_non_null(k);
    assert_int_equal(myna_signature_make(k, body, strlen(body), sig), MYNA_OK);
    myna_hmac_key_free(k);
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = f->url;
    req.headers = headers;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = 10000;
    f->status = 0;
    assert_int_equal(myna_http_request(f->client, &req, on_answer, f, NULL), MYNA_OK);
    event_base_dispatch(f->base);
    return f->status;
}

/* One webhook with a text for barber's number, then one for branch's. */
static void split_body(char *buf, size_t cap, const char *tag)
{
    int n = snprintf(buf, cap,
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                     "\"display_phone_number\":\"1\",\"phone_number_id\":\"" BARBER_PHONE "\"},"
                     "\"messages\":[{\"from\":\"79161234567\",\"id\":\"wamid.%s-A\","
                     "\"timestamp\":\"1773478800\",\"type\":\"text\",\"text\":{\"body\":\"a\"}}]},"
                     "\"field\":\"messages\"},"
                     "{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                     "\"display_phone_number\":\"1\",\"phone_number_id\":\"" BRANCH_PHONE "\"},"
                     "\"messages\":[{\"from\":\"79161234567\",\"id\":\"wamid.%s-B\","
                     "\"timestamp\":\"1773478800\",\"type\":\"text\",\"text\":{\"body\":\"b\"}}]},"
                     "\"field\":\"messages\"}]}]}",
                     tag, tag);

    assert_true(n > 0 && (size_t)n < cap);
}

/* A body for two instances: each store gets its record, each bot its
 * doorbell, the answer is 200. */
static void test_split_body_rings_both(void **state)
{
    struct fx *f = *state;
    char body[2048];

    split_body(body, sizeof(body), "BOTH");
    assert_int_equal(post(f, body), 200);
    assert_int_equal(inbox_count(f, "barber"), 1);
    assert_int_equal(inbox_count(f, "branch"), 1);
    assert_int_equal(f->n_rung, 2);
    assert_string_equal(f->rung[0], "barber");
    assert_string_equal(f->rung[1], "branch");
    assert_int_equal(f->metrics.stored_messages, 2);
}

/* branch's commit fails after barber's went through: the answer is 500
 * (Meta sends the body again, and barber's record is then a duplicate), but
 * barber's record is kept, counted, and its bot is woken for it now rather
 * than at its next poll. */
static void test_split_body_half_committed_rings_the_kept_half(void **state)
{
    struct fx *f = *state;
    char body[2048];

    split_body(body, sizeof(body), "HALF");
    myna_store_sqlite_fail_after(store_of(f, "branch"), 1);
    assert_int_equal(post(f, body), 500);
    assert_int_equal(inbox_count(f, "barber"), 1);
    assert_int_equal(inbox_count(f, "branch"), 0);
    assert_int_equal(f->n_rung, 1);
    assert_string_equal(f->rung[0], "barber");
    assert_int_equal(f->metrics.stored_messages, 1);
    assert_int_equal(f->metrics.rejected[MYNA_REJ_STORE_FAILED], 1);
    /* Meta's retry: barber's record is a duplicate, branch's is new */
    f->n_rung = 0;
    assert_int_equal(post(f, body), 200);
    assert_int_equal(inbox_count(f, "barber"), 1);
    assert_int_equal(inbox_count(f, "branch"), 1);
    assert_int_equal(f->n_rung, 1);
    assert_string_equal(f->rung[0], "branch");
    assert_int_equal(f->metrics.stored_messages, 2);
    assert_int_equal(f->metrics.duplicate_messages, 1);
}

/* A store that cannot open keeps only its instance down, whether or not
 * the caller asked for the error: with none given, it was read from NULL. */
static void test_store_that_cannot_open_without_err(void **state)
{
    struct fx *f = *state;
    struct myna_instance one;
    const struct myna_instance *v[1] = { &one };
    char id[] = "broken", path[400];

    memset(&one, 0, sizeof(one));
    one.id = id;
    one.phone_number_id = phones[0];
    one.app_secret = secret;
    one.verify_token = token;
    one.enabled = 1;
    snprintf(path, sizeof(path), "%s/instances/broken.db", f->data);
    assert_int_equal(mkdir(path, 0700), 0);   /* a directory where the file goes */
    assert_int_equal(myna_ingress_set_instances(f->ing, v, 1, NULL, 0, NULL), MYNA_OK);
    assert_non_null(find_instance(f->ing->table, "broken"));
    assert_null(find_instance(f->ing->table, "broken")->store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_body_rings_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_that_cannot_open_without_err, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_body_half_committed_rings_the_kept_half,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
