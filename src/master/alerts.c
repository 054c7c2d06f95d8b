/* alerts.c - alerts logged and POSTed to the alert webhook, with retries on
 * evtimers. Each delivery owns its body; the HTTP client's callback and the
 * retry timer are its only ways back in. */
#include "master/alerts.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "net/http_client.h"
#include "core/banned.h"

struct delivery {
    struct delivery *prev, *next;
    struct myna_alerts *a;
    struct event *timer;     /* the wait before the next attempt */
    char *body;
    size_t len;
    char instance[80], kind[40];
    int attempts;            /* made so far */
};

struct myna_alerts {
    struct event_base *base;
    struct myna_http_client *http;  /* NULL without a URL */
    char *url;
    struct delivery *head;
    size_t n;
    int backoff_ms, timeout_ms;
};

char *myna_alerts_body(const char *instance, const char *kind, const char *detail,
                       int64_t wall_ms)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    char ts[40], day[32];
    cJSON *o = cJSON_CreateObject();
    char *body = NULL;

    gmtime_r(&secs, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, sizeof(ts), "%s.%03dZ", day, (int)(wall_ms % 1000));
    if (o && cJSON_AddStringToObject(o, "instance", instance) &&
        cJSON_AddStringToObject(o, "kind", kind) &&
        cJSON_AddStringToObject(o, "detail", detail ? detail : "") &&
        cJSON_AddStringToObject(o, "ts", ts))
        body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return body;
}

static void delivery_free(struct delivery *d)
{
    struct myna_alerts *a = d->a;

    if (d->prev)
        d->prev->next = d->next;
    else
        a->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    a->n--;
    if (d->timer)
        event_free(d->timer);
    free(d->body);
    free(d);
}

static void on_answer(const struct myna_http_resp *resp, void *arg);

/* The next attempt; a request the client refuses counts as a failed one. */
static void attempt(struct delivery *d)
{
    static const char *const headers[] = { "Content-Type: application/json",
                                           "User-Agent: myna/" MYNA_VERSION, NULL };
    struct myna_alerts *a = d->a;
    struct myna_http_req req;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_http_resp failed;

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = a->url;
    req.headers = headers;
    req.body = d->body;
    req.body_len = d->len;
    req.timeout_ms = a->timeout_ms;
    req.discard_body = 1;  /* the receiver's status decides; what it says is not read */
    d->attempts++;
    if (myna_http_request(a->http, &req, on_answer, d, &err) == MYNA_OK)
        return;
    memset(&failed, 0, sizeof(failed));
    failed.rc = err.code ? err.code : MYNA_EIO;
    failed.body = "";
    failed.error = err.msg;
    on_answer(&failed, d);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt(arg);
}

static void on_answer(const struct myna_http_resp *resp, void *arg)
{
    struct delivery *d = arg;
    struct myna_alerts *a = d->a;
    char q[300];
    int wait_ms;

    if (resp->rc == MYNA_OK && resp->status >= 200 && resp->status < 300) {
        MYNA_LOG(MYNA_INFO, "alert_delivered", "instance=%s kind=%s status=%ld attempt=%d",
                 d->instance, d->kind, resp->status, d->attempts);
        delivery_free(d);
        return;
    }
    myna_log_q(q, sizeof(q), resp->rc == MYNA_OK ? NULL : resp->error);
    if (d->attempts >= MYNA_ALERTS_ATTEMPTS) {
        MYNA_LOG(MYNA_ERROR, "alert_webhook_failed",
                 "instance=%s kind=%s status=%ld err=%s attempt=%d retry=no", d->instance,
                 d->kind, resp->status, q, d->attempts);
        delivery_free(d);
        return;
    }
    wait_ms = d->attempts == 1 ? a->backoff_ms : 4 * a->backoff_ms;
    {
        struct timeval tv = { wait_ms / 1000, (wait_ms % 1000) * 1000 };
        if (evtimer_add(d->timer, &tv) != 0) {
            /* out of memory: no retry can come, so it is not under way */
            MYNA_LOG(MYNA_ERROR, "alert_webhook_failed",
                     "instance=%s kind=%s status=%ld err=%s attempt=%d retry=no "
                     "retry_err=\"cannot arm the retry timer\"",
                     d->instance, d->kind, resp->status, q, d->attempts);
            delivery_free(d);
            return;
        }
    }
    MYNA_LOG(MYNA_WARN, "alert_webhook_failed",
             "instance=%s kind=%s status=%ld err=%s attempt=%d retry_in_ms=%d", d->instance,
             d->kind, resp->status, q, d->attempts, wait_ms);
}

struct myna_alerts *myna_alerts_new(struct event_base *base, const char *url,
                                    struct myna_err *err)
{
    struct myna_alerts *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    a->base = base;
    a->backoff_ms = MYNA_ALERTS_BACKOFF_MS;
    a->timeout_ms = MYNA_ALERTS_TIMEOUT_MS;
    if (url == NULL || url[0] == '\0')
        return a;
    if ((a->url = strdup(url)) == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        free(a);
        return NULL;
    }
    if ((a->http = myna_http_client_new(base, err)) == NULL) {
        free(a->url);
        free(a);
        return NULL;
    }
    return a;
}

void myna_alerts_free(struct myna_alerts *a)
{
    if (a == NULL)
        return;
    if (a->n)
        MYNA_LOG(MYNA_WARN, "alerts_unsent", "n=%zu", a->n);
    /* the client first: it cancels what is in flight without callbacks */
    myna_http_client_free(a->http);
    while (a->head)
        delivery_free(a->head);
    free(a->url);
    free(a);
}

void myna_alerts_set_timing(struct myna_alerts *a, int backoff_ms, int timeout_ms)
{
    if (backoff_ms > 0)
        a->backoff_ms = backoff_ms;
    if (timeout_ms > 0)
        a->timeout_ms = timeout_ms;
}

void myna_alerts_raise(struct myna_alerts *a, const char *instance, const char *kind,
                       const char *detail)
{
    struct delivery *d;
    char q[300];

    MYNA_LOG(MYNA_ERROR, "alert", "instance=%s kind=%s detail=%s", instance, kind,
             myna_log_q(q, sizeof(q), detail));
    if (a->http == NULL)
        return;
    if (a->n >= MYNA_ALERTS_MAX) {
        MYNA_LOG(MYNA_ERROR, "alert_dropped", "instance=%s kind=%s pending=%zu", instance, kind,
                 a->n);
        return;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL ||
        (d->body = myna_alerts_body(instance, kind, detail, myna_wall_ms())) == NULL ||
        (d->timer = evtimer_new(a->base, on_retry, d)) == NULL) {
        if (d) {
            free(d->body);
            free(d);
        }
        MYNA_LOG(MYNA_ERROR, "alert_dropped", "instance=%s kind=%s err=\"out of memory\"",
                 instance, kind);
        return;
    }
    d->a = a;
    d->len = strlen(d->body);
    snprintf(d->instance, sizeof(d->instance), "%s", instance);
    snprintf(d->kind, sizeof(d->kind), "%s", kind);
    d->next = a->head;
    if (a->head)
        a->head->prev = d;
    a->head = d;
    a->n++;
    attempt(d);
}

size_t myna_alerts_pending(const struct myna_alerts *a)
{
    return a->n;
}
