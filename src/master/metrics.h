/* metrics.h - the master's counters, rendered in Prometheus text format on
 * the admin listener's /metrics. Updated on the loop thread only (the commit
 * histogram lives in the committer, which guards it with its own lock). */
#ifndef MYNA_MASTER_METRICS_H
#define MYNA_MASTER_METRICS_H

#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define MYNA_REJECTS(X)                                                        \
    X(BAD_SIGNATURE, "bad_signature")       /* 401: missing or wrong MAC */    \
    X(UNKNOWN_INSTANCE, "unknown_instance") /* 404: none or disabled */        \
    X(INSTANCE_DISABLED, "instance_disabled") /* 404: record for a disabled one */ \
    X(NOT_LOADED, "not_loaded")             /* 503: settings did not load */   \
    X(TOO_LARGE, "too_large")               /* 413 */                          \
    X(BAD_JSON, "bad_json")                 /* 400: not JSON */                \
    X(BAD_SHAPE, "bad_shape")               /* 400: not a webhook */           \
    X(BAD_METHOD, "bad_method")             /* 405 */                          \
    X(OVERLOADED, "overloaded")             /* 503: too many pending */        \
    X(SHUTTING_DOWN, "shutting_down")       /* 503: draining */                \
    X(STORE_FAILED, "store_failed")         /* 500/503: commit failed, no store */ \
    X(VERIFY_FAILED, "verify_failed")       /* 403: GET handshake refused */

enum myna_reject {
#define X(id, name) MYNA_REJ_##id,
    MYNA_REJECTS(X)
#undef X
    MYNA_REJ__COUNT
};

/* Upper bounds (seconds) of the commit-latency histogram buckets. */
#define MYNA_COMMIT_BUCKETS 12
extern const double myna_commit_bucket_le[MYNA_COMMIT_BUCKETS];

struct myna_commit_stats {
    uint64_t commits;                         /* group commits done */
    uint64_t failed;                          /* group commits that failed */
    uint64_t buckets[MYNA_COMMIT_BUCKETS + 1];/* last one is +Inf, not cumulative */
    double sum_s;
    uint64_t records;                         /* records written by the commits */
};

struct myna_metrics {
    uint64_t webhooks_received;   /* POST /webhook/<id> requests */
    uint64_t verifications;       /* GET handshakes answered 200 */
    uint64_t rejected[MYNA_REJ__COUNT];
    uint64_t stored_messages, stored_statuses;
    uint64_t duplicate_messages, duplicate_statuses;
    uint64_t ignored_changes, invalid_items, unrouted_records;
    uint64_t account_errors;  /* value.errors[] entries */
    int64_t open_connections;
    int64_t pending_requests;
};

const char *myna_reject_name(enum myna_reject r);
/* Adds one observation of a commit that took us microseconds. */
void myna_commit_stats_observe(struct myna_commit_stats *s, int64_t us, uint64_t records,
                               int failed);
/* Appends the exposition text; MYNA_ETOOBIG past the buffer's max. */
int myna_metrics_render(const struct myna_metrics *m, const struct myna_commit_stats *cs,
                        struct myna_buf *out);

#endif
