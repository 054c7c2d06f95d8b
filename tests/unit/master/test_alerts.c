/* test_alerts.c - master/alerts.c (included, so that its retry timer can
 * be made to fail): the JSON body, a delivery, retries with backoff, giving
 * up, alerts with no webhook, the bound on deliveries under way. The
 * receiver is an evhttp server on the same loop, answering with the
 * statuses the test queues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../tmpdir.h"
#include "core/log.h"
#include "core/util.h"

/* alerts.c's evtimer_add, which a test makes fail as libevent does when it
 * is out of memory */
static int fail_timer_adds;

static int test_evtimer_add(struct event *ev, const struct timeval *tv)
{
    return fail_timer_adds ? -1 : event_add(ev, tv);
}
#undef evtimer_add
#define evtimer_add(ev, tv) test_evtimer_add((ev), (tv))

#include "master/alerts.c"

#define MAX_SEEN 128

struct fx {
    char dir[64], log[128];
    struct event_base *base;
    struct evhttp *http;
    char url[128];
    int statuses[8];           /* answers for the first requests; then 204 */
    size_t reply_len;          /* bytes of body in every answer; 0 = none */
    int stall;                 /* answer 200 with a body that never ends */
    int n_seen;
    char *bodies[MAX_SEEN];
    char content_type[MAX_SEEN][64];
    int64_t at_ms[MAX_SEEN];
    struct myna_alerts *a;
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    int i = f->n_seen, status;

    if (i < MAX_SEEN) {
        f->bodies[i] = calloc(1, len + 1);
        evbuffer_copyout(in, f->bodies[i], len);
        snprintf(f->content_type[i], sizeof(f->content_type[i]), "%s", ct ? ct : "");
        f->at_ms[i] = myna_mono_ms();
        f->n_seen++;
    }
    status = i < 8 && f->statuses[i] ? f->statuses[i] : 204;
    if (f->stall) {  /* 200 and 2 bytes of the 1000 it says: the rest never comes */
        struct evbuffer *out = evbuffer_new();

        assert_non_null(out);
        evbuffer_add(out, "ok", 2);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", "1000");
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return;
    }
    if (f->reply_len) {
        struct evbuffer *out = evbuffer_new();
        char *body = malloc(f->reply_len);

        assert_non_null(out);
        assert_non_null(body);
        memset(body, 'x', f->reply_len);
        evbuffer_add(out, body, f->reply_len);
        free(body);
        evhttp_send_reply(req, status, status < 300 ? "OK" : "Nope", out);
        evbuffer_free(out);
        return;
    }
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Nope", NULL);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct evhttp_bound_socket *sock;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    fail_timer_adds = 0;
    if (f == NULL || test_tmpdir(f->dir, sizeof(f->dir), "test-alerts") != 0)
        return -1;
    snprintf(f->log, sizeof(f->log), "%s/master.log", f->dir);
    myna_log_open(f->log);
    if ((f->base = event_base_new()) == NULL || (f->http = evhttp_new(f->base)) == NULL ||
        (sock = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0)) == NULL ||
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    evhttp_set_gencb(f->http, on_request, f);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/hooks/myna?key=s3cret",
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    myna_alerts_free(f->a);
    for (int i = 0; i < f->n_seen; i++)
        free(f->bodies[i]);
    evhttp_free(f->http);
    event_base_free(f->base);
    myna_log_open(NULL);
    if (getenv("MYNA_TEST_KEEP") == NULL)
        test_rmtree(f->dir);
    free(f);
    return 0;
}

static void run_until(struct fx *f, int (*cond)(struct fx *f, int n), int n, int timeout_ms)
{
    int64_t until = myna_mono_ms() + timeout_ms;
    struct timeval tick = { 0, 10000 };

    while (!cond(f, n)) {
        if (myna_mono_ms() > until)
            fail_msg("timed out: %d request(s) seen, %zu pending", f->n_seen,
                     f->a ? myna_alerts_pending(f->a) : 0);
        event_base_loopexit(f->base, &tick);
        event_base_dispatch(f->base);
    }
}

/* Runs the loop for ms: what was to come meanwhile has come. */
static void run_for(struct fx *f, int ms)
{
    struct timeval wait = { ms / 1000, (ms % 1000) * 1000 };

    event_base_loopexit(f->base, &wait);
    event_base_dispatch(f->base);
}

static int seen_n(struct fx *f, int n)
{
    return f->n_seen >= n;
}

static int settled(struct fx *f, int n)
{
    return f->n_seen >= n && myna_alerts_pending(f->a) == 0;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *s = calloc(1, 1 << 20);
    size_t n;

    assert_non_null(s);
    if (fp) {
        n = fread(s, 1, (1 << 20) - 1, fp);
        s[n] = '\0';
        fclose(fp);
    }
    return s;
}

static int log_has(struct fx *f, const char *needle)
{
    char *s = slurp(f->log);
    int found = strstr(s, needle) != NULL;

    free(s);
    return found;
}

static const char *field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_body_is_the_documented_json(void **state)
{
    /* 2026-11-22T03:10:04.120Z */
    char *body = myna_alerts_body("acme", "invalid_token", "a \"quoted\"\nline", 1795317004120);
    cJSON *o;

    (void)state;
    assert_non_null(body);
    assert_non_null(o = cJSON_Parse(body));
    assert_int_equal(cJSON_GetArraySize(o), 4);
    assert_string_equal(field(o, "instance"), "acme");
    assert_string_equal(field(o, "kind"), "invalid_token");
    assert_string_equal(field(o, "detail"), "a \"quoted\"\nline");
    assert_string_equal(field(o, "ts"), "2026-11-22T03:10:04.120Z");
    cJSON_Delete(o);
    free(body);
}

static void test_delivered_once_on_2xx(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *o;

    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    myna_alerts_raise(f->a, "acme", "crash_loop", "5 crashes");
    assert_int_equal(myna_alerts_pending(f->a), 1);
    run_until(f, settled, 1, 5000);
    assert_int_equal(f->n_seen, 1);
    assert_string_equal(f->content_type[0], "application/json");
    assert_non_null(o = cJSON_Parse(f->bodies[0]));
    assert_string_equal(field(o, "instance"), "acme");
    assert_string_equal(field(o, "kind"), "crash_loop");
    assert_string_equal(field(o, "detail"), "5 crashes");
    assert_non_null(field(o, "ts"));
    cJSON_Delete(o);
    assert_true(log_has(f, "level=error"));
    assert_true(log_has(f, "event=alert instance=acme kind=crash_loop detail=\"5 crashes\""));
    assert_true(log_has(f, "event=alert_delivered instance=acme kind=crash_loop status=204 "
                           "attempt=1"));
    assert_false(log_has(f, "s3cret"));  /* the hook's URL is never logged */
    assert_false(log_has(f, "/hooks/myna"));
}

static void test_long_answer_body_still_delivers(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    /* a receiver that says more than a status: its body does not matter */
    for (int i = 0; i < 8; i++)
        f->statuses[i] = 200;
    f->reply_len = 5000;
    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    myna_alerts_set_timing(f->a, 50, 2000);
    myna_alerts_raise(f->a, "acme", "crash_loop", "5 crashes");
    run_until(f, seen_n, 1, 5000);
    run_until(f, settled, 1, 5000);
    assert_int_equal(myna_alerts_pending(f->a), 0);
    run_for(f, 400);  /* and no retry follows */
    assert_int_equal(f->n_seen, 1);
    assert_true(log_has(f, "event=alert_delivered instance=acme kind=crash_loop status=200 "
                           "attempt=1"));
    assert_false(log_has(f, "event=alert_webhook_failed"));
}

/* A receiver that answered 200 and then sends its body slowly, or never
 * ends it (a relay that streams, a wrong Content-Length): the status
 * delivered the alert, which is not POSTed again. */
static void test_2xx_with_a_body_that_never_ends_delivers(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    f->stall = 1;
    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    myna_alerts_set_timing(f->a, 50, 500);
    myna_alerts_raise(f->a, "acme", "crash_loop", "5 crashes");
    run_until(f, settled, 1, 5000);
    run_for(f, 700);  /* and no retry follows */
    assert_int_equal(f->n_seen, 1);
    assert_true(log_has(f, "event=alert_delivered instance=acme kind=crash_loop status=200 "
                           "attempt=1"));
    assert_false(log_has(f, "event=alert_webhook_failed"));
}

static void test_failures_are_retried_with_backoff(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    f->statuses[0] = 500;
    f->statuses[1] = 404;
    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    myna_alerts_set_timing(f->a, 100, 2000);
    myna_alerts_raise(f->a, "acme", "llm_circuit_open", "down");
    run_until(f, settled, 3, 5000);
    assert_int_equal(f->n_seen, 3);
    assert_string_equal(f->bodies[0], f->bodies[2]);  /* the same alert each time */
    assert_true(f->at_ms[1] - f->at_ms[0] >= 90);     /* backoff_ms */
    assert_true(f->at_ms[2] - f->at_ms[1] >= 390);    /* 4 x backoff_ms */
    assert_true(log_has(f, "event=alert_webhook_failed instance=acme kind=llm_circuit_open "
                           "status=500 err=- attempt=1 retry_in_ms=100"));
    assert_true(log_has(f, "status=404 err=- attempt=2 retry_in_ms=400"));
    assert_true(log_has(f, "event=alert_delivered instance=acme kind=llm_circuit_open "
                           "status=204 attempt=3"));
}

static void test_given_up_after_three_attempts(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    f->statuses[0] = f->statuses[1] = f->statuses[2] = f->statuses[3] = 503;
    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    myna_alerts_set_timing(f->a, 50, 2000);
    myna_alerts_raise(f->a, "acme", "invalid_token", "refused");
    run_until(f, settled, 3, 5000);
    run_for(f, 400);  /* and nothing more comes */
    assert_int_equal(f->n_seen, 3);
    assert_true(log_has(f, "status=503 err=- attempt=3 retry=no"));
    assert_false(log_has(f, "event=alert_delivered"));
}

static void test_no_receiver_is_a_transport_failure(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    char url[64];

    /* a closed port: connection refused at every attempt */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", 9);
    assert_non_null(f->a = myna_alerts_new(f->base, url, &err));
    myna_alerts_set_timing(f->a, 20, 2000);
    myna_alerts_raise(f->a, "acme", "crash_loop", "x");
    run_until(f, settled, 0, 5000);
    assert_true(log_has(f, "event=alert_webhook_failed instance=acme kind=crash_loop status=0"));
    assert_true(log_has(f, "attempt=3 retry=no"));
}

static void test_without_webhook_alerts_are_logged_only(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    assert_non_null(f->a = myna_alerts_new(f->base, "", &err));
    myna_alerts_raise(f->a, "acme", "invalid_token", "refused");
    assert_int_equal(myna_alerts_pending(f->a), 0);
    assert_true(log_has(f, "event=alert instance=acme kind=invalid_token detail=\"refused\""));
    myna_alerts_free(f->a);
    assert_non_null(f->a = myna_alerts_new(f->base, NULL, &err));
    myna_alerts_raise(f->a, "acme", "crash_loop", NULL);
    assert_true(log_has(f, "event=alert instance=acme kind=crash_loop detail=-"));
}

static void test_deliveries_under_way_are_bounded(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    for (int i = 0; i < MYNA_ALERTS_MAX + 5; i++)
        myna_alerts_raise(f->a, "acme", "crash_loop", "again");
    assert_int_equal(myna_alerts_pending(f->a), MYNA_ALERTS_MAX);
    assert_true(log_has(f, "event=alert_dropped instance=acme kind=crash_loop pending=64"));
    run_until(f, settled, MYNA_ALERTS_MAX, 10000);
    assert_int_equal(f->n_seen, MYNA_ALERTS_MAX);
}

static void test_free_drops_what_is_under_way(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    f->statuses[0] = 500;
    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    myna_alerts_raise(f->a, "acme", "crash_loop", "x");
    run_until(f, seen_n, 1, 5000);
    myna_alerts_free(f->a);  /* waiting for its retry: dropped, said so */
    f->a = NULL;
    assert_true(log_has(f, "event=alerts_unsent n=1"));
}

/* A retry whose timer cannot be armed (libevent out of memory) gives the
 * delivery up: it is no longer counted as under way, where it would have
 * stayed for good, one of the MYNA_ALERTS_MAX places taken. */
static void test_retry_without_timer_is_given_up(void **state)
{
    struct fx *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    f->statuses[0] = 500;
    assert_non_null(f->a = myna_alerts_new(f->base, f->url, &err));
    myna_alerts_set_timing(f->a, 50, 2000);
    fail_timer_adds = 1;
    myna_alerts_raise(f->a, "acme", "crash_loop", "x");
    run_until(f, settled, 1, 3000);
    assert_int_equal(myna_alerts_pending(f->a), 0);
    assert_int_equal(f->n_seen, 1);
    assert_true(log_has(f, "event=alert_webhook_failed instance=acme kind=crash_loop "
                           "status=500 err=- attempt=1 retry=no"));
    assert_false(log_has(f, "retry_in_ms="));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_is_the_documented_json),
        T(test_delivered_once_on_2xx),
        T(test_long_answer_body_still_delivers),
        T(test_2xx_with_a_body_that_never_ends_delivers),
        T(test_failures_are_retried_with_backoff),
        T(test_given_up_after_three_attempts),
        T(test_no_receiver_is_a_transport_failure),
        T(test_without_webhook_alerts_are_logged_only),
        T(test_deliveries_under_way_are_bounded),
        T(test_free_drops_what_is_under_way),
        T(test_retry_without_timer_is_given_up),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
