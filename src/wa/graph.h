/* graph.h - the WhatsApp Cloud API sender of one instance (Graph API
 * POST {graph_url}/{phone_number_id}/messages, reference B1-B6).
 *
 * Three layers, each usable alone:
 *  - body builders: pure functions from validated arguments to the JSON
 *    body Meta expects. Every limit is counted in Unicode code points, as
 *    Meta counts "characters"; bad input gives NULL and err, never a body
 *    Meta would reject with 100/131009.
 *  - myna_graph_classify: a pure function from an HTTP answer (or its
 *    absence) to what the outbox must do. Keyed on error.code, not on the
 *    HTTP status; safe on any bytes.
 *  - struct myna_graph: posts a body on the shared async HTTP client and
 *    reports the classified result once. It never retries: the outbox owns
 *    retries and uses myna_graph_backoff_ms for the delay.
 * The access token is used only in the Authorization header; it is never
 * logged and never appears in a result. */
#ifndef MYNA_WA_GRAPH_H
#define MYNA_WA_GRAPH_H

#include <stddef.h>

#include "core/err.h"

struct myna_http_client;
struct myna_graph;

/* Limits of B2, in code points (body of a list: 1024, the safe value). */
#define MYNA_GRAPH_TEXT_MAX 4096
#define MYNA_GRAPH_BUTTONS_MAX 3
#define MYNA_GRAPH_BUTTON_TITLE_MAX 20
#define MYNA_GRAPH_BUTTON_ID_MAX 256
#define MYNA_GRAPH_INTERACTIVE_BODY_MAX 1024
#define MYNA_GRAPH_LIST_ROWS_MAX 10
#define MYNA_GRAPH_ROW_TITLE_MAX 24
#define MYNA_GRAPH_ROW_DESCRIPTION_MAX 72
#define MYNA_GRAPH_ROW_ID_MAX 200
#define MYNA_GRAPH_LIST_BUTTON_MAX 20
#define MYNA_GRAPH_BIZ_OPAQUE_MAX 512
#define MYNA_GRAPH_PHONE_DIGITS_MAX 15   /* E.164 */
#define MYNA_GRAPH_WAMID_MAX 191         /* bytes of a wamid (Meta's: ~60-100) */

/* ---- body builders ----------------------------------------------------------
 * Each returns a malloc'd, NUL-terminated compact JSON body (free() it), or
 * NULL with err (MYNA_EINVAL naming the argument and the limit, or
 * MYNA_ENOMEM). Strings must be valid UTF-8.
 *   to: the recipient's digits (a wa_id), optionally with a leading '+';
 *       1..15 digits, always sent as "+digits" (B1: without '+' Meta would
 *       prepend the business number's country code).
 *   biz_opaque: NULL or "" = none; else <= 512 code points, echoed by Meta
 *       in the status webhooks as biz_opaque_callback_data.
 * Not to be called inside a myna_json_arena_begin section (the result must
 * be malloc memory). */

/* Text: text 1..4096 code points; reply_to_wamid (NULL or "" = none) adds
 * "context":{"message_id":...} so the message quotes that one. */
char *myna_graph_text_body(const char *to, const char *text, const char *reply_to_wamid,
                           const char *biz_opaque, struct myna_err *err);

/* Reply buttons: n 1..3; ids[i] 1..256 and titles[i] 1..20 code points,
 * both unique within the message; text (the body) 1..1024. */
char *myna_graph_buttons_body(const char *to, const char *text, const char *const *ids,
                              const char *const *titles, size_t n, const char *biz_opaque,
                              struct myna_err *err);

/* List with one section: text (the body) 1..1024, button (the label that
 * opens the list) 1..20; n rows 1..10, ids[i] 1..200 (unique), titles[i]
 * 1..24, descriptions (NULL, or per row NULL/"" = none) <= 72. */
char *myna_graph_list_body(const char *to, const char *text, const char *button,
                           const char *const *ids, const char *const *titles,
                           const char *const *descriptions, size_t n, const char *biz_opaque,
                           struct myna_err *err);

/* Marks the inbound wamid (and the messages before it) read; typing != 0
 * also shows the typing indicator (until our reply or 25 s). */
char *myna_graph_read_body(const char *wamid, int typing, struct myna_err *err);

/* ---- response classification -------------------------------------------- */

enum myna_send_class {
    MYNA_SEND_OK,             /* accepted: wamid is set (B4) */
    MYNA_SEND_RETRY,          /* network, timeout, bare 5xx, 429 or 408, and codes 130429,
                               * 131000, 131016, 1, 2, 133004, 131057, 4, 80007,
                               * 131048 */
    MYNA_SEND_RETRY_PAIR,     /* 131056: back off for this recipient only, 4^n s */
    MYNA_SEND_WINDOW_CLOSED,  /* 131047: only a template may go now */
    MYNA_SEND_AUTH,           /* 190, 0, 3, 10, 200-299: token or permissions; and
                               * a bare 3xx, 401, 403, 404, 405 or 407 (a proxy,
                               * a firewall or a graph_url that is not Meta's:
                               * every request would get it) */
    MYNA_SEND_LOCKED,         /* the number or the account cannot send at all, and
                               * only a person can fix it: 131031, 368 (locked or
                               * blocked for a policy violation), 133010 (the
                               * number is not registered), 131042 (a problem
                               * with the payment method) */
    MYNA_SEND_FAILED          /* any other error: keep the error, do not retry */
};

struct myna_send_result {
    enum myna_send_class cls;
    long http_status;          /* 0 without an HTTP answer */
    int error_code;            /* Graph error.code, -1 when the answer had none */
    int transport_failed;      /* no usable HTTP answer: connect, reset, timeout, oversized */
    int timed_out;             /* transport_failed because the timeout ran out */
    int maybe_sent;            /* RETRY after the request may have reached Meta, which
                                * may have taken it (its status webhooks tell):
                                * transport_failed after it left, or a 502/504
                                * without a Graph error code (a proxy's answer) */
    char error[256];           /* "message: details" or why the answer was not
                                * usable; printable UTF-8, cut at a character
                                * boundary, "" on success; never the token */
    char fbtrace_id[64];       /* Meta's trace id for support tickets, or "" */
    char wamid[MYNA_GRAPH_WAMID_MAX + 1];  /* messages[0].id on success, else "" */
    char wa_id[64];            /* contacts[0].wa_id on success (may differ from the
                                * number sent: B4), or "" */
};

/* Fills out from an HTTP answer. transport_failed != 0 means there was no
 * usable answer (body and http_status are then ignored for the class).
 * Success needs a 2xx status, no error object, no NUL in any string (raw
 * or \u0000) and a string messages[0].id that fits wamid (or, for a
 * read/typing body, "success":true: OK with an empty wamid); any other 2xx
 * is FAILED (not Meta's answer: Meta's 200 always names the message). A
 * Graph error object with a code
 * decides by that code alone, whatever the HTTP status (a code not listed
 * above is FAILED); without one, a 5xx, 429 or 408 is RETRY (a 502 or 504 with
 * maybe_sent), a 3xx, 401, 403, 404, 405 or 407 AUTH (not Meta's answer,
 * and every request would get it) and the rest FAILED. body need not be
 * NUL-terminated; NULL with len 0 is an empty body. Never fails, never
 * allocates for long (bodies over 256 KiB are not parsed). */
void myna_graph_classify(long http_status, int transport_failed, const char *body, size_t len,
                         struct myna_send_result *out);

/* Milliseconds to wait before attempt+1, or -1 = do not retry (any class
 * other than the two below). attempt counts the retries made so far: 0
 * before the first retry (Meta's n in 4^n); a negative one counts as 0.
 *   RETRY:      1 s doubling (1, 2, 4 ... s), capped at 5 min, then
 *               jittered by rnd to within +-20 % (so at most 6 min).
 *   RETRY_PAIR: 4^attempt s (1, 4, 16, 64, 256 s), capped at 10 min, no
 *               jitter (Meta's schedule for this recipient). */
int myna_graph_backoff_ms(enum myna_send_class cls, int attempt, unsigned rnd);

/* The class of a Graph error code alone (as a failed status webhook
 * carries one: B4, the same codes as a refused send). */
enum myna_send_class myna_graph_code_class(int code);

/* 1 when an answer (a Graph error code, -1 for none, and the HTTP status;
 * or a failed status's code, with status 0) is a limit of the whole
 * number, app or account rather than of one message (130429 throughput,
 * 131048 spam rate limit, 4 and 80007 call limits, 131057 maintenance, a
 * bare 429): every send should pause, not only this one (B5). */
int myna_graph_limits_number(int error_code, long http_status);

/* ---- the client ------------------------------------------------------------ */

/* Copies its arguments. graph_url is http(s)://host[/version] without a
 * trailing '/'; phone_number_id is digits; the token is printable ASCII (no
 * spaces or line breaks: it goes into a header). http is borrowed and must
 * outlive the graph. NULL with err (MYNA_EINVAL, MYNA_ENOMEM). */
struct myna_graph *myna_graph_new(struct myna_http_client *http, const char *graph_url,
                                  const char *phone_number_id, const char *access_token,
                                  struct myna_err *err);
/* NULL ok. Requests in flight finish silently: their callbacks never run. */
void myna_graph_free(struct myna_graph *g);

/* r is borrowed for the duration of the callback. */
typedef void (*myna_graph_cb)(const struct myna_send_result *r, void *arg);

/* POSTs json_body (copied; made by a builder above) to .../messages with
 * the Bearer token; timeout_ms covers the whole request (0 = 30 s). MYNA_OK:
 * cb runs exactly once, on the loop, never from inside this call. Else
 * MYNA_EINVAL / MYNA_ENOMEM and cb never runs. Posts, callbacks and
 * myna_graph_free belong to the one loop thread.
 *
 * A post leaves at most once (libcurl's own resend on a reused connection
 * that died is turned off: http_client.h send_once). A transport failure
 * (RETRY with transport_failed) after the request may have left, or a
 * bare 502/504, (maybe_sent) is an unknown outcome: Meta may have accepted
 * the message, and its status webhooks will tell. */
int myna_graph_post(struct myna_graph *g, const char *json_body, long timeout_ms,
                    myna_graph_cb cb, void *arg, struct myna_err *err);

#endif
