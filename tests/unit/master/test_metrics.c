/* test_metrics.c - Prometheus exposition: names, labels, cumulative buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "master/metrics.h"

static void test_render(void **state)
{
    struct myna_metrics m;
    struct myna_commit_stats cs;
    struct myna_buf b = MYNA_BUF_INIT(1 << 20);

    (void)state;
    memset(&m, 0, sizeof(m));
    memset(&cs, 0, sizeof(cs));
    m.webhooks_received = 7;
    m.rejected[MYNA_REJ_BAD_SIGNATURE] = 3;
    m.stored_messages = 5;
    m.duplicate_statuses = 2;
    m.open_connections = 4;
    myna_commit_stats_observe(&cs, 50, 3, 0);        /* 0.00005 s */
    myna_commit_stats_observe(&cs, 3000, 2, 0);      /* 0.003 s */
    myna_commit_stats_observe(&cs, 5000000, 1, 1);   /* 5 s: +Inf only */
    assert_int_equal(myna_metrics_render(&m, &cs, &b), 0);
    assert_non_null(strstr(b.data, "\nmyna_webhooks_received_total 7\n"));
    assert_non_null(strstr(b.data, "myna_webhooks_rejected_total{reason=\"bad_signature\"} 3\n"));
    assert_non_null(strstr(b.data, "myna_webhooks_rejected_total{reason=\"store_failed\"} 0\n"));
    assert_non_null(strstr(b.data, "myna_records_stored_total{kind=\"message\"} 5\n"));
    assert_non_null(strstr(b.data, "myna_duplicates_total{kind=\"status\"} 2\n"));
    assert_non_null(strstr(b.data, "myna_open_connections 4\n"));
    assert_non_null(strstr(b.data, "# TYPE myna_commit_seconds histogram\n"));
    assert_non_null(strstr(b.data, "myna_commit_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(b.data, "myna_commit_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(b.data, "myna_commit_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(b.data, "myna_commit_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "myna_commit_seconds_count 3\n"));
    assert_non_null(strstr(b.data, "myna_commit_failures_total 1\n"));
    myna_buf_release(&b);
}

static void test_render_respects_buffer_limit(void **state)
{
    struct myna_metrics m;
    struct myna_commit_stats cs;
    struct myna_buf b = MYNA_BUF_INIT(100);

    (void)state;
    memset(&m, 0, sizeof(m));
    memset(&cs, 0, sizeof(cs));
    assert_int_equal(myna_metrics_render(&m, &cs, &b), MYNA_ETOOBIG);
    assert_true(b.len <= 100);
    myna_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_respects_buffer_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
