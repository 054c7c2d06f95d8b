/* metrics.c - Prometheus text exposition of the master's counters. */
#include "master/metrics.h"

#include "core/err.h"
#include "core/banned.h"

const double myna_commit_bucket_le[MYNA_COMMIT_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
};

static const char *const reject_names[] = {
#define X(id, name) name,
    MYNA_REJECTS(X)
#undef X
};

const char *myna_reject_name(enum myna_reject r)
{
    return (unsigned)r < MYNA_REJ__COUNT ? reject_names[r] : "other";
}

void myna_commit_stats_observe(struct myna_commit_stats *s, int64_t us, uint64_t records,
                               int failed)
{
    double sec = (double)us / 1e6;
    int i;

    for (i = 0; i < MYNA_COMMIT_BUCKETS; i++)
        if (sec <= myna_commit_bucket_le[i])
            break;
    s->buckets[i]++;
    s->commits++;
    s->failed += failed != 0;
    s->sum_s += sec;
    s->records += records;
}

#define P(...)                                               \
    do {                                                     \
        if ((rc = myna_buf_printf(out, __VA_ARGS__)) != 0)   \
            return rc;                                       \
    } while (0)

static int render_counter(struct myna_buf *out, const char *name, const char *help,
                          const char *type, unsigned long long v)
{
    int rc;

    P("# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
    return 0;
}

int myna_metrics_render(const struct myna_metrics *m, const struct myna_commit_stats *cs,
                        struct myna_buf *out)
{
    uint64_t cum = 0;
    int rc;

    if ((rc = render_counter(out, "myna_webhooks_received_total",
                             "Webhook POST requests received.", "counter",
                             m->webhooks_received)) != 0 ||
        (rc = render_counter(out, "myna_webhook_verifications_total",
                             "Verification handshakes answered 200.", "counter",
                             m->verifications)) != 0)
        return rc;
    P("# HELP myna_webhooks_rejected_total Webhook requests refused, by reason.\n"
      "# TYPE myna_webhooks_rejected_total counter\n");
    for (int r = 0; r < MYNA_REJ__COUNT; r++)
        P("myna_webhooks_rejected_total{reason=\"%s\"} %llu\n", reject_names[r],
          (unsigned long long)m->rejected[r]);
    P("# HELP myna_records_stored_total Records committed to the store, by kind.\n"
      "# TYPE myna_records_stored_total counter\n"
      "myna_records_stored_total{kind=\"message\"} %llu\n"
      "myna_records_stored_total{kind=\"status\"} %llu\n",
      (unsigned long long)m->stored_messages, (unsigned long long)m->stored_statuses);
    P("# HELP myna_duplicates_total Records received again and not stored twice.\n"
      "# TYPE myna_duplicates_total counter\n"
      "myna_duplicates_total{kind=\"message\"} %llu\n"
      "myna_duplicates_total{kind=\"status\"} %llu\n",
      (unsigned long long)m->duplicate_messages, (unsigned long long)m->duplicate_statuses);
    if ((rc = render_counter(out, "myna_webhook_ignored_changes_total",
                             "Webhook changes of fields other than messages.", "counter",
                             m->ignored_changes)) != 0 ||
        (rc = render_counter(out, "myna_webhook_errors_total",
                             "Errors Meta reported in webhooks without a message (value.errors[]).",
                             "counter", m->account_errors)) != 0 ||
        (rc = render_counter(out, "myna_webhook_invalid_items_total",
                             "Messages or statuses skipped for a missing id or status.",
                             "counter", m->invalid_items)) != 0 ||
        (rc = render_counter(out, "myna_webhook_unrouted_records_total",
                             "Records whose phone_number_id matched no instance of the app.",
                             "counter", m->unrouted_records)) != 0 ||
        (rc = render_counter(out, "myna_open_connections",
                             "HTTP connections open on both listeners.", "gauge",
                             (unsigned long long)(m->open_connections > 0 ? m->open_connections
                                                                          : 0))) != 0 ||
        (rc = render_counter(out, "myna_pending_requests",
                             "Webhook requests waiting for their commit.", "gauge",
                             (unsigned long long)(m->pending_requests > 0 ? m->pending_requests
                                                                          : 0))) != 0 ||
        (rc = render_counter(out, "myna_commit_failures_total",
                             "Group commits that failed (their requests got 500).", "counter",
                             cs->failed)) != 0)
        return rc;
    P("# HELP myna_commit_seconds Duration of one group commit.\n"
      "# TYPE myna_commit_seconds histogram\n");
    for (int i = 0; i < MYNA_COMMIT_BUCKETS; i++) {
        cum += cs->buckets[i];
        P("myna_commit_seconds_bucket{le=\"%g\"} %llu\n", myna_commit_bucket_le[i],
          (unsigned long long)cum);
    }
    cum += cs->buckets[MYNA_COMMIT_BUCKETS];
    P("myna_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
      "myna_commit_seconds_sum %.6f\n"
      "myna_commit_seconds_count %llu\n",
      (unsigned long long)cum, cs->sum_s, (unsigned long long)cs->commits);
    return 0;
}
