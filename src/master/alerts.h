/* alerts.h - the master's alerts: what only an operator can fix (a bot in a
 * crash loop, an access token the provider refuses, an account the provider
 * locked, a number not registered, a payment method refused, an LLM whose
 * circuit breaker opened; master/supervisor.h tells when). Each is logged (event=alert) and, when alert_webhook is set, POSTed
 * there as JSON:
 *
 *   {"instance":"acme","kind":"invalid_token","detail":"...",
 *    "ts":"2026-11-22T03:10:04.120Z"}
 *
 * A 2xx answer delivers it. Anything else (no connection, a timeout, another
 * status) is tried again after backoff_ms and 4 x backoff_ms (1 s, 4 s), then
 * given up; every failure is logged (event=alert_webhook_failed). At most
 * MYNA_ALERTS_MAX deliveries are under way at once; an alert past that is
 * logged only (event=alert_dropped).
 *
 * Runs on the master's loop with its own asynchronous HTTP client: nothing
 * blocks. Must not log the webhook's URL (a chat service's hook URL is its
 * secret) or wait for a delivery at shutdown. */
#ifndef MYNA_MASTER_ALERTS_H
#define MYNA_MASTER_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct event_base;
struct myna_alerts;

#define MYNA_ALERTS_MAX 64
#define MYNA_ALERTS_ATTEMPTS 3
#define MYNA_ALERTS_BACKOFF_MS 1000
#define MYNA_ALERTS_TIMEOUT_MS 10000

/* url: where alerts are POSTed; NULL or "" logs them only. base is borrowed
 * and must outlive the alerts. NULL with err on failure (MYNA_ENOMEM, or
 * MYNA_EINVAL when libcurl cannot resolve names asynchronously). */
struct myna_alerts *myna_alerts_new(struct event_base *base, const char *url,
                                    struct myna_err *err);
/* Drops the deliveries under way without retrying them (logged as
 * event=alerts_unsent when there were some). NULL ok. */
void myna_alerts_free(struct myna_alerts *a);
/* Tests shorten the waits: first retry after backoff_ms (> 0), the next
 * after 4 x backoff_ms; each attempt may take timeout_ms (> 0). */
void myna_alerts_set_timing(struct myna_alerts *a, int backoff_ms, int timeout_ms);

/* Logs the alert and starts its delivery. The strings are copied. */
void myna_alerts_raise(struct myna_alerts *a, const char *instance, const char *kind,
                       const char *detail);
/* Deliveries under way: being sent or waiting for their next attempt. */
size_t myna_alerts_pending(const struct myna_alerts *a);

/* The JSON body of one alert (pure, for tests): malloc'd, NULL on OOM.
 * wall_ms is the time it happened (ms since the epoch, UTC). */
char *myna_alerts_body(const char *instance, const char *kind, const char *detail,
                       int64_t wall_ms);

#endif
