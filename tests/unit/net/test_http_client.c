/* test_http_client.c - net/http_client.h against an evhttp server on the
 * same loop: an answer's body kept up to max_response, or dropped when only
 * the status matters; and a name lookup that takes seconds (the
 * libmyna_slow_dns.so shim, preloaded by ctest: tests/fakes/slow_dns.c)
 * never holds up the loop, whether the request times out or is cancelled;
 * a timeout says whether the request had left (not_sent); a socket that
 * cannot be watched for want of memory costs no more than its request; a
 * proxy of the environment is used for other hosts, never for this one; a
 * redirect is the answer, not followed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "net/http_client.h"

#define SLOW_HOST "slow-dns.myna.test"  /* tests/fakes/slow_dns.c: 3 s, then no answer */

struct fx {
    struct event_base *base;
    struct evhttp *http;
    struct myna_http_client *c;
    char url[64];
    size_t reply_len;          /* bytes of body in every answer */
    const char *location;      /* answer 302 to this instead, when set */
    int n_seen;
    int done;                  /* callbacks run */
    int rc, timed_out, not_sent;
    int64_t elapsed_us;
    long status;
    size_t body_len;
    char body_head[8];         /* the body's first bytes */
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    struct evbuffer *out = evbuffer_new();
    char *body = malloc(f->reply_len + 1);

    assert_non_null(out);
    assert_non_null(body);
    memset(body, 'x', f->reply_len);
    evbuffer_add(out, body, f->reply_len);
    free(body);
    f->n_seen++;
    if (f->location != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", f->location);
    evhttp_send_reply(req, f->location != NULL ? 302 : 200, "OK", out);
    evbuffer_free(out);
}

static void on_answer(const struct myna_http_resp *resp, void *arg)
{
    struct fx *f = arg;

    f->done++;
    f->rc = resp->rc;
    f->timed_out = resp->timed_out;
    f->not_sent = resp->not_sent;
    f->elapsed_us = resp->elapsed_us;
    f->status = resp->status;
    f->body_len = resp->body_len;
    snprintf(f->body_head, sizeof(f->body_head), "%s", resp->body);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct evhttp_bound_socket *sock;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    if (f == NULL || (f->base = event_base_new()) == NULL ||
        (f->http = evhttp_new(f->base)) == NULL ||
        (sock = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0)) == NULL ||
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sa, &sl) != 0 ||
        (f->c = myna_http_client_new(f->base, NULL)) == NULL)
        return -1;
    evhttp_set_gencb(f->http, on_request, f);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/hook", ntohs(sa.sin_port));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    myna_http_client_free(f->c);
    evhttp_free(f->http);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void run_until_done(struct fx *f, int timeout_ms)
{
    int64_t until = myna_mono_ms() + timeout_ms;
    struct timeval tick = { 0, 10000 };

    while (!f->done) {
        if (myna_mono_ms() > until)
            fail_msg("timed out: %d request(s) seen", f->n_seen);
        event_base_loopexit(f->base, &tick);
        event_base_dispatch(f->base);
    }
}

static void post(struct fx *f, size_t max_response, int discard_body)
{
    struct myna_http_req req = { .method = "POST", .url = f->url, .body = "{}", .body_len = 2,
                                 .timeout_ms = 5000, .max_response = max_response,
                                 .discard_body = discard_body };
    struct myna_err err = MYNA_ERR_INIT;

    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, &err), MYNA_OK);
    run_until_done(f, 5000);
    assert_int_equal(f->done, 1);
    assert_int_equal(f->n_seen, 1);
    assert_int_equal(myna_http_inflight(f->c), 0);
}

static void test_body_within_max_is_kept(void **state)
{
    struct fx *f = *state;

    f->reply_len = 5000;
    post(f, 5000, 0);
    assert_int_equal(f->rc, MYNA_OK);
    assert_int_equal(f->status, 200);
    assert_int_equal(f->body_len, 5000);
    assert_string_equal(f->body_head, "xxxxxxx");
}

static void test_body_over_max_is_too_big(void **state)
{
    struct fx *f = *state;

    f->reply_len = 5000;
    post(f, 4096, 0);
    assert_int_equal(f->rc, MYNA_ETOOBIG);
    assert_int_equal(f->status, 0);
}

static void test_discarded_body_keeps_the_status(void **state)
{
    struct fx *f = *state;

    f->reply_len = 5000;
    post(f, 16, 1);  /* max_response does not apply to a body not kept */
    assert_int_equal(f->rc, MYNA_OK);
    assert_int_equal(f->status, 200);
    assert_int_equal(f->body_len, 0);
    assert_string_equal(f->body_head, "");
}

/* The largest wait between the ticks of a 10 ms timer: how long the loop
 * was held up. */
struct ticker {
    struct event *ev;
    int64_t last_us, max_gap_us;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct ticker *t = arg;
    int64_t now = myna_mono_us();

    (void)fd;
    (void)what;
    if (now - t->last_us > t->max_gap_us)
        t->max_gap_us = now - t->last_us;
    t->last_us = now;
}

static void ticker_start(struct fx *f, struct ticker *t)
{
    struct timeval every = { 0, 10 * 1000 };

    if (dlsym(RTLD_DEFAULT, "myna_slow_dns_ms") == NULL)
        fail_msg("libmyna_slow_dns.so is not preloaded: run this test through ctest, or with "
                 "LD_PRELOAD=build/tests/libmyna_slow_dns.so "
                 "ASAN_OPTIONS=verify_asan_link_order=0");
    assert_non_null(t->ev = event_new(f->base, -1, EV_PERSIST, on_tick, t));
    assert_int_equal(event_add(t->ev, &every), 0);
    t->last_us = myna_mono_us();
    t->max_gap_us = 0;
}

static void test_slow_name_lookup_times_out_without_stalling(void **state)
{
    struct fx *f = *state;
    struct myna_http_req req = { .method = "GET", .url = "http://" SLOW_HOST "/",
                                 .timeout_ms = 200 };
    struct ticker t;

    ticker_start(f, &t);
    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
    run_until_done(f, 10000);
    on_tick(-1, 0, &t);  /* the wait since the last tick counts too */
    event_free(t.ev);
    assert_int_equal(f->done, 1);
    assert_true(f->rc < 0);
    assert_true(f->timed_out);
    assert_true(f->not_sent);  /* no connection was made: nothing reached a server */
    assert_int_equal(myna_http_inflight(f->c), 0);
    /* a lookup on the loop would hold it for the whole 3 s: the bounds are
     * half of that and more, so that a loaded machine's pauses (this
     * process not run for a few hundred ms) are not taken for it */
    if (t.max_gap_us >= 1500 * 1000 || f->elapsed_us >= 2000 * 1000)
        fail_msg("the loop stood still for %lld ms; the request took %lld ms",
                 (long long)(t.max_gap_us / 1000), (long long)(f->elapsed_us / 1000));
}

static void test_free_during_slow_name_lookup_does_not_wait(void **state)
{
    struct fx *f = *state;
    struct myna_http_req req = { .method = "GET", .url = "http://" SLOW_HOST "/",
                                 .timeout_ms = 10000 };
    struct ticker t;
    struct timeval a_while = { 0, 100 * 1000 };
    int64_t t0;

    ticker_start(f, &t);
    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
    event_base_loopexit(f->base, &a_while);
    event_base_dispatch(f->base);  /* the lookup is under way */
    event_free(t.ev);
    assert_int_equal(f->done, 0);
    t0 = myna_mono_us();
    myna_http_client_free(f->c);  /* cancelled: no callback */
    f->c = NULL;
    if (myna_mono_us() - t0 >= 500 * 1000)
        fail_msg("freeing the client took %lld ms", (long long)((myna_mono_us() - t0) / 1000));
    assert_int_equal(f->done, 0);
    assert_true(t.max_gap_us < 500 * 1000);
}

/* A server that takes the connection (the kernel's backlog does) and never
 * answers: the request left, so its timeout is not "not sent". */
static void test_timeout_after_the_request_left_may_have_been_sent(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char url[64];
    struct myna_http_req req = { .method = "POST", .url = url, .body = "{}", .body_len = 2,
                                 .timeout_ms = 300, .send_once = 1 };

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", ntohs(sa.sin_port));
    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
    run_until_done(f, 5000);
    close(fd);
    assert_true(f->rc < 0);
    assert_true(f->timed_out);
    assert_false(f->not_sent);
}

/* libevent's allocations of an event's size to fail (event_new), for the
 * out-of-memory tests: main routes libevent's allocator here. */
static int fail_event_allocs;

static void *event_alloc(size_t n)
{
    if (fail_event_allocs > 0 && n == event_get_struct_event_size()) {
        fail_event_allocs--;
        return NULL;
    }
    return malloc(n);
}

/* The socket of a request cannot be watched (out of memory): that request
 * ends by its own timeout at worst, the client is left whole, and the next
 * request goes through. */
static void test_socket_watch_out_of_memory_spares_the_client(void **state)
{
    struct fx *f = *state;
    struct myna_http_req req = { .method = "POST", .url = f->url, .body = "{}", .body_len = 2,
                                 .timeout_ms = 1000 };

    fail_event_allocs = 1;
    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
    run_until_done(f, 5000);
    assert_int_equal(fail_event_allocs, 0);
    assert_int_equal(f->done, 1);
    assert_true(f->rc == MYNA_OK || f->timed_out);
    assert_int_equal(myna_http_inflight(f->c), 0);
    f->done = 0;
    f->n_seen = 0;
    f->reply_len = 10;
    post(f, 0, 0);
    assert_int_equal(f->rc, MYNA_OK);
    assert_int_equal(f->status, 200);
}

/* A proxy of the environment (http_proxy, as on a host whose way out is a
 * proxy) carries the calls to other hosts, but never one to this host: the
 * simulator's webhooks, its Graph API and a model on 127.0.0.1 are
 * reached directly, whatever the proxy says or wherever it is. */
static void test_loopback_is_never_proxied(void **state)
{
    struct fx *f = *state;
    long port = strtol(strrchr(f->url, ':') + 1, NULL, 10);
    char proxy[64], url[2][64];
    struct myna_http_req req = { .method = "GET", .timeout_ms = 5000 };

    snprintf(url[0], sizeof(url[0]), "http://127.0.0.1:%ld/hook", port);
    snprintf(url[1], sizeof(url[1]), "http://localhost:%ld/hook", port);
    /* a proxy that refuses every connection */
    assert_int_equal(setenv("http_proxy", "http://127.0.0.1:1", 1), 0);
    f->reply_len = 3;
    for (int i = 0; i < 2; i++) {
        req.url = url[i];
        f->done = 0;
        assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
        run_until_done(f, 5000);
        if (f->rc != MYNA_OK)
            fail_msg("%s went to the proxy", url[i]);
        assert_int_equal(f->status, 200);
    }
    /* another host goes through the proxy: here the test's server */
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%ld", port);
    assert_int_equal(setenv("http_proxy", proxy, 1), 0);
    req.url = "http://graph.myna.invalid/v1/hook";
    f->done = 0;
    f->n_seen = 0;
    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
    run_until_done(f, 5000);
    unsetenv("http_proxy");
    assert_int_equal(f->rc, MYNA_OK);
    assert_int_equal(f->status, 200);
    assert_int_equal(f->n_seen, 1);
}

/* A proxy that refuses the tunnel (CONNECT) to the server: the request
 * itself never left, though the proxy got a request of its own, so it is
 * "not sent" (safe to send again) rather than "may have been sent". */
static void test_refused_tunnel_is_not_sent(void **state)
{
    struct fx *f = *state;
    long port = strtol(strrchr(f->url, ':') + 1, NULL, 10);
    char proxy[64];
    struct myna_http_req req = { .method = "POST", .url = "https://graph.myna.invalid/v1/hook",
                                 .body = "{}", .body_len = 2, .timeout_ms = 5000,
                                 .send_once = 1 };

    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%ld", port);
    assert_int_equal(setenv("https_proxy", proxy, 1), 0);
    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
    run_until_done(f, 5000);
    unsetenv("https_proxy");
    assert_true(f->rc < 0);
    assert_false(f->timed_out);
    assert_true(f->not_sent);
}

/* A redirect is the answer, never followed: the Authorization header of a
 * request (a token) must not go to the host a server names. */
static void test_redirect_is_not_followed(void **state)
{
    struct fx *f = *state;
    const char *const headers[] = { "Authorization: Bearer secret", NULL };
    struct myna_http_req req = { .method = "POST", .url = f->url, .headers = headers,
                                 .body = "{}", .body_len = 2, .timeout_ms = 5000 };

    f->location = "http://127.0.0.1:1/elsewhere";
    assert_int_equal(myna_http_request(f->c, &req, on_answer, f, NULL), MYNA_OK);
    run_until_done(f, 5000);
    assert_int_equal(f->rc, MYNA_OK);
    assert_int_equal(f->status, 302);
    assert_int_equal(f->n_seen, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_body_within_max_is_kept),
        T(test_body_over_max_is_too_big),
        T(test_discarded_body_keeps_the_status),
        T(test_slow_name_lookup_times_out_without_stalling),
        T(test_free_during_slow_name_lookup_does_not_wait),
        T(test_timeout_after_the_request_left_may_have_been_sent),
        T(test_socket_watch_out_of_memory_spares_the_client),
        T(test_loopback_is_never_proxied),
        T(test_redirect_is_not_followed),
        T(test_refused_tunnel_is_not_sent),
    };
    int rc;

    event_set_mem_functions(event_alloc, realloc, free);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
