/* bench_loadgen.c - the benchmark's load generator (bench/loadgen.c) against
 * the real myna binary: what it counts is what the server answered and
 * stored, so that `make bench` figures can be trusted. Built only with
 * MYNA_BENCH (tests/CMakeLists.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SECRET "bench-secret-0123456789"
#define INSTANCES                                                                         \
    "[{\"id\":\"bench\",\"name\":\"Bench\",\"provider\":\"cloud\","                       \
    "\"phone_number_id\":\"481516234200915\",\"waba_id\":\"302948571630214\","          \
    "\"access_token\":\"bench-token\",\"app_secret\":\"" SECRET "\","                   \
    "\"verify_token\":\"bench-verify\"}]"

static char out[8192];

static int setup(void **state)
{
    return (*state = h_launch(INSTANCES, NULL)) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    h_release(*state);
    return 0;
}

/* The value of key=N in out, or -1. */
static long long field(const char *key)
{
    char pat[64];
    const char *at;

    snprintf(pat, sizeof(pat), "%s=", key);
    for (at = strstr(out, pat); at != NULL; at = strstr(at + 1, pat))
        if (at == out || at[-1] == ' ' || at[-1] == '\n')
            return strtoll(at + strlen(pat), NULL, 10);
    return -1;
}

/* max requests, or until duration seconds (a bound: the runs here stop on max). */
static int loadgen(const char *url, const char *secret, const char *max, const char *size,
                   const char *duration)
{
    const char *args[] = { "--url", url, "--connections", "8", "--duration", duration,
                           "--max-requests", max, "--size", size,
                           secret ? "--secret" : NULL, secret, NULL };

    return h_exec(MYNA_LOADGEN, args, NULL, out, sizeof(out));
}

/* Every request signed and with a new message id: each is answered 200 and
 * stored once, and the loadgen counts exactly the requests it was told to. */
static void test_counts_what_was_stored(void **state)
{
    struct myna_proc *p = *state;
    char url[200];

    snprintf(url, sizeof(url), "%s/webhook/bench", p->public_url);
    assert_int_equal(loadgen(url, SECRET, "3000", "1500", "60"), 0);
    assert_int_equal(field("requests"), 3000);
    assert_int_equal(field("errors"), 0);
    assert_int_equal(field("non200"), 0);
    assert_int_equal(field("ok"), 3000);
    assert_int_equal(field("body_bytes"), 1500);
    assert_non_null(strstr(out, "stop=max_requests"));
    assert_true(field("p50_ms") >= 0 && field("p99_ms") >= 0);
    assert_int_equal(h_db_count(p, "bench", "inbox", NULL), 3000);
    assert_true(h_metric(p, "myna_webhooks_received_total") == 3000);
}

/* A wrong secret: every answer is a 401, counted as non-200, none stored. */
static void test_counts_refusals(void **state)
{
    struct myna_proc *p = *state;
    char url[200];

    snprintf(url, sizeof(url), "%s/webhook/bench", p->public_url);
    assert_int_equal(loadgen(url, "not-the-secret", "500", "800", "60"), 0);
    assert_int_equal(field("requests"), 500);
    assert_int_equal(field("non200"), 500);
    assert_int_equal(field("ok"), 0);
    assert_int_equal(field("errors"), 0);
    assert_int_equal(h_db_count(p, "bench", "inbox", NULL), 0);
    assert_true(h_metric(p, "myna_webhooks_rejected_total{reason=\"bad_signature\"}") == 500);
}

/* Nobody listening: it retries until its duration, counts every refused
 * connect, and exits 1 with no response. */
static void test_no_server(void **state)
{
    char url[200];

    (void)state;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhook/bench", h_free_port());
    assert_int_equal(loadgen(url, SECRET, "50", "1500", "1"), 1);
    assert_int_equal(field("requests"), 0);
    assert_true(field("errors") > 0);
    assert_true(field("connect_errors") == field("errors"));
    assert_non_null(strstr(out, "stop=duration"));
}

/* It measures this machine only: any other address is a usage error. */
static void test_loopback_only(void **state)
{
    (void)state;
    assert_int_equal(loadgen("http://10.0.0.1:80/webhook/bench", SECRET, "1", "1500", "1"), 2);
    assert_int_equal(field("requests"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_what_was_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_refusals, setup, teardown),
        cmocka_unit_test(test_no_server),
        cmocka_unit_test(test_loopback_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
