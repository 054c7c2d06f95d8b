/* http_client.h - asynchronous HTTP client on the event loop: libcurl multi
 * driven by libevent (sockets and timers are loop events; nothing blocks).
 *
 * One client per loop. A request copies what it needs from its description,
 * so the caller's strings may go once myna_http_request returns. The callback
 * runs on the loop exactly once per accepted request, with the status and
 * body (borrowed for the duration of the callback), or with rc < 0 for a
 * transport failure (connect, DNS, timeout, a kept body over max_response). If
 * myna_http_request returns an error, the callback never runs.
 * myna_http_client_free cancels what is in flight WITHOUT calling callbacks;
 * it must not be called from inside a callback. myna_http_cancel does the
 * same for the requests of one owner, so that the owner can go first. Neither a timeout nor a
 * cancel waits for a name lookup under way: libcurl's resolver thread is
 * left to finish it alone (seconds with nameservers that do not answer).
 * Redirects are not followed (a 3xx is the answer: headers such as
 * Authorization never reach another host). A proxy of the environment
 * (https_proxy, http_proxy, all_proxy, no_proxy) is used for every host but
 * this one: "localhost" and loopback addresses are always reached directly. */
#ifndef MYNA_NET_HTTP_CLIENT_H
#define MYNA_NET_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct event_base;
struct myna_http_client;

struct myna_http_req {
    const char *method;          /* "GET", "POST", ... */
    const char *url;
    const char *const *headers;  /* NULL-terminated "Name: value" lines, may be NULL */
    const char *body;            /* may be NULL */
    size_t body_len;
    long timeout_ms;             /* whole request; 0 = 30 s */
    size_t max_response;         /* bytes of body kept; more = MYNA_ETOOBIG; 0 = 1 MiB */
    int discard_body;            /* only the status matters: the request ends with the
                                  * answer's headers and its body is not read (the
                                  * connection is closed), whatever its size or pace;
                                  * resp->body is "", max_response does not apply */
    int send_once;               /* the body leaves at most once: libcurl resends a request
                                  * whose REUSED connection died before any byte of the
                                  * answer; with this set that is a failure instead */
};

struct myna_http_resp {
    int rc;               /* MYNA_OK when an HTTP answer came, else MYNA_EIO, MYNA_ETOOBIG
                           * or MYNA_ENOMEM (no memory to keep the answer) */
    long status;          /* HTTP status, 0 without an answer */
    const char *body;     /* NUL-terminated, "" when empty */
    size_t body_len;
    const char *error;    /* transport error text when rc < 0, else "" */
    int timed_out;        /* rc < 0 because of timeout_ms */
    int not_sent;         /* rc < 0 before the request went out (a name, a connection,
                           * a proxy's tunnel or a TLS handshake that failed):
                           * nothing reached the server */
    int64_t retry_after_s;  /* the answer's Retry-After in seconds (a date made
                             * relative), 0 without one or when it is past */
    int64_t elapsed_us;
};

typedef void (*myna_http_cb)(const struct myna_http_resp *resp, void *arg);

struct myna_http_client *myna_http_client_new(struct event_base *base, struct myna_err *err);
void myna_http_client_free(struct myna_http_client *c);  /* NULL ok */

/* Starts a request. MYNA_OK (cb will run), or MYNA_EINVAL / MYNA_ENOMEM. */
int myna_http_request(struct myna_http_client *c, const struct myna_http_req *req,
                      myna_http_cb cb, void *arg, struct myna_err *err);

/* Cancels the requests in flight that were started with cb and arg,
 * WITHOUT calling cb; returns how many. May be called from inside a
 * callback, but not for the request whose callback is running. */
size_t myna_http_cancel(struct myna_http_client *c, myna_http_cb cb, void *arg);

/* Requests in flight. */
size_t myna_http_inflight(const struct myna_http_client *c);

#endif
