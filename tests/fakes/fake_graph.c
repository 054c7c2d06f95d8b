/* fake_graph.c - a fake WhatsApp Cloud API (Graph API) for tests.
 *
 *   myna_fake_graph --listen 127.0.0.1:0 [--token T]
 *                   [--webhook URL --app-secret S [--phone-number-id ID]
 *                    [--display-phone-number N] [--waba-id W]]
 *
 * Prints "event=ready public=127.0.0.1:PORT" on stderr once it listens.
 *
 * POST /{version}/{phone_number_id}/messages answers like Meta (reference
 * B1-B5): Bearer token first (401 + code 190), then the phone number id
 * (400 + code 100, subcode 33), then the body by type: text, interactive
 * (button, list), mark read / typing; other documented types are accepted
 * when their object is present. Bad bodies get code 100 (missing, wrong type
 * or over-length parameter) or 131009 (invalid value), shaped as Meta's.
 * A send gets {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
 * "messages":[{"id":"wamid.FAKE<n>"}]}; a read gets {"success":true}.
 *
 * With --webhook, every accepted send is followed by Cloud API status
 * webhooks for its wamid: sent, delivered, read (or sent, failed), a few ms
 * apart, each posted after the previous one was answered (so they arrive in
 * order), signed with X-Hub-Signature-256 over the exact bytes, which are
 * escaped like Meta's (\uXXXX for non-ASCII, \/ for '/'). A non-200 answer is
 * retried 3 times, then the chain goes on.
 *
 * Test control (not Meta):
 *   POST /_fake/faults  one object or an array of them, queued in order; each
 *       applies to the next `count` sends (default 1; reads are never
 *       faulted): {"code":131056,"http":400} a Graph error (bodies shaped
 *       like tests/data/cloud/graph-error-*.json), {"http":500} a bare 5xx
 *       with an HTML body, {"delay_ms":2000} answer late (the send is still
 *       accepted, like Meta after a client timeout), {"drop":1} close the
 *       connection without an answer (not accepted), {"lost":1} accept the
 *       send and then close the connection without an answer (the client
 *       cannot tell: a connection that broke after Meta took the message),
 *       {"status_fail":131047} accept, then a 'failed' status webhook
 *       instead of delivered/read, {"undelivered":1} accept, then only a
 *       'sent' status webhook (the customer's phone never gets it),
 *       {"status_delay_ms":N} the first status webhook of an accepted send
 *       only N ms after it (a slow webhook queue at Meta). delay_ms
 *       combines with the others.
 *   GET  /_fake/messages  [{"wamid":"wamid.FAKE1","received_us":T,"body":{...}},
 *       ...] every accepted send, in order; received_us is when its request
 *       had arrived (CLOCK_REALTIME, microseconds). ?from=N leaves out the
 *       first N (a poller fetches only what is new)
 *   GET  /_fake/reads     every accepted mark-read/typing body, in order
 *   GET  /_fake/read_times  when each of them had arrived, in the same order
 *       ([T, ...], received_us as for messages)
 *   POST /_fake/reset     forgets sends, reads and faults, cancels pending
 *       webhooks and drops answers still delayed; wamids keep counting
 *
 * Everything runs on one libevent loop; nothing blocks. SIGTERM/SIGINT stop
 * it cleanly (exit 0). Loopback listen addresses only. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "wa/signature.h"

#define BODY_MAX (1 << 20)
#define FAULTS_MAX 1000
#define STATUS_GAP_MS 5
#define WEBHOOK_TRIES 4

struct fault {
    struct fault *next;
    int count;
    int code;        /* Graph error code, 0 = none */
    int http;        /* status, 0 = default */
    int delay_ms;
    int drop;
    int lost;        /* accepted, then the connection closed without an answer */
    int status_fail; /* error code of the 'failed' status webhook, 0 = none */
    int undelivered; /* only a 'sent' status webhook */
    int status_delay_ms;
};

/* An answer held back by delay_ms. */
struct delayed {
    struct delayed *next, *prev;
    struct fake *f;
    struct evhttp_request *req;
    struct event *timer;
    cJSON *body;     /* the validated send */
    struct fault fault;
    char pnid[64];
    long long received_us;
};

/* The status webhooks of one accepted send. */
struct chain {
    struct chain *next, *prev;
    struct fake *f;
    struct event *timer;
    char wamid[40], recipient[24], pnid[64];
    char *opaque;
    const char *stages[3];
    int n_stages, stage, tries;
    int fail_code;
    int in_flight, cancelled;
};

struct fake {
    struct event_base *base;
    struct evhttp *http;
    struct evdns_base *dns;
    struct evhttp_connection *wh_conn;
    struct evhttp_uri *wh_uri;
    struct myna_hmac_key *key;
    const char *token, *pnid, *display, *waba;
    char wh_host[256];
    cJSON *messages, *reads, *read_times;
    struct fault *faults;
    struct delayed *delayed;
    struct chain *chains;
    unsigned long n_wamid, n_trace;
};

static void fake_log(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static long long wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void fake_log(const char *event, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = snprintf(line, sizeof(line), "proc=fake_graph event=%s ", event);

    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

/* ---- UTF-8 ---------------------------------------------------------------------- */

/* Decodes one well-formed UTF-8 character; its length, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf && n >= 2 && (s[1] & 0xc0) == 0x80) {
        *cp = (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (s[0] >= 0xe0 && s[0] <= 0xef && n >= 3 && (s[1] & 0xc0) == 0x80 &&
        (s[2] & 0xc0) == 0x80) {
        *cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return *cp >= 0x800 && (*cp < 0xd800 || *cp > 0xdfff) ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4 && n >= 4 && (s[1] & 0xc0) == 0x80 &&
        (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
        *cp = (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 |
              (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
        return *cp >= 0x10000 && *cp <= 0x10ffff ? 4 : 0;
    }
    return 0;
}

/* Code points of s, or -1 when not valid UTF-8. */
static long utf8_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    long count = 0;
    unsigned cp;

    while (i < n) {
        size_t k = utf8_decode(p + i, n - i, &cp);
        if (k == 0)
            return -1;
        i += k;
        count++;
    }
    return count;
}

/* Meta's wire style: non-ASCII as \uXXXX (lowercase hex, surrogate pairs),
 * '/' as \/. In cJSON's output both can only occur inside strings. */
static char *meta_escape(const char *json)
{
    const unsigned char *p = (const unsigned char *)json;
    size_t n = strlen(json), i = 0, o = 0;
    char *out = malloc(n * 12 + 1);   /* 4 bytes -> 12 chars at most */
    unsigned cp;

    if (out == NULL)
        return NULL;
    while (i < n) {
        size_t k = utf8_decode(p + i, n - i, &cp);
        if (k == 0) {
            cp = 0xfffd;
            k = 1;
        }
        if (cp == '/') {
            out[o++] = '\\';
            out[o++] = '/';
        } else if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x10000) {
            o += (size_t)snprintf(out + o, 7, "\\u%04x", cp);
        } else {
            cp -= 0x10000;
            o += (size_t)snprintf(out + o, 13, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
                                  0xdc00 + (cp & 0x3ff));
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}

/* ---- replies -------------------------------------------------------------------- */

static void reply_json(struct evhttp_request *req, int status, cJSON *root /* deleted */)
{
    struct evbuffer *b = evbuffer_new();
    char *s = cJSON_PrintUnformatted(root);

    cJSON_Delete(root);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=UTF-8");
    if (b != NULL && s != NULL)
        evbuffer_add(b, s, strlen(s));
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", b);
    if (b != NULL)
        evbuffer_free(b);
    free(s);
}

static void next_trace(struct fake *f, char out[32])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned long x = ++f->n_trace * 2654435761UL + 12345;

    for (int i = 0; i < 23; i++) {
        out[i] = alphabet[x % 62];
        x = x / 62 + (unsigned long)i * 7919 + f->n_trace;
    }
    out[23] = '\0';
}

/* {"error":{message,type,code[,error_data{messaging_product,details}]
 * [,error_subcode],fbtrace_id}} */
static cJSON *graph_error(struct fake *f, const char *message, const char *type, int code,
                          const char *details, int subcode)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    char trace[32];

    next_trace(f, trace);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "code", code);
    if (details != NULL) {
        cJSON *d = cJSON_AddObjectToObject(e, "error_data");
        cJSON_AddStringToObject(d, "messaging_product", "whatsapp");
        cJSON_AddStringToObject(d, "details", details);
    }
    if (subcode != 0)
        cJSON_AddNumberToObject(e, "error_subcode", subcode);
    cJSON_AddStringToObject(e, "fbtrace_id", trace);
    return root;
}

/* (#100): a parameter is missing, of the wrong type or too long. */
static void reply_100(struct fake *f, struct evhttp_request *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_100(struct fake *f, struct evhttp_request *req, const char *fmt, ...)
{
    char what[400], msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof(msg), "(#100) %s", what);
    reply_json(req, 400, graph_error(f, msg, "OAuthException", 100, NULL, 0));
}

/* (#131009) Parameter value is not valid, with details. */
static void reply_131009(struct fake *f, struct evhttp_request *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_131009(struct fake *f, struct evhttp_request *req, const char *fmt, ...)
{
    char details[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(details, sizeof(details), fmt, ap);
    va_end(ap);
    reply_json(req, 400, graph_error(f, "(#131009) Parameter value is not valid", "OAuthException",
                                     131009, details, 0));
}

static void reply_190(struct fake *f, struct evhttp_request *req, const char *why)
{
    char hdr[200];

    snprintf(hdr, sizeof(hdr), "OAuth \"Facebook Platform\" \"invalid_token\" \"%s\"", why);
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", hdr);
    reply_json(req, 401, graph_error(f, why, "OAuthException", 190, NULL, 0));
}

/* A Graph error body for an injected fault, shaped like the fixtures. */
static void reply_fault_error(struct fake *f, struct evhttp_request *req, int code, int http)
{
    static const struct {
        int code, http, subcode;
        const char *message, *details;
    } known[] = {
        { 130429, 400, 2494055, "(#130429) Rate limit hit",
          "Cloud API message throughput has been reached." },
        { 131056, 400, 0, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
          "Message failed to send because there were too many messages sent from this phone "
          "number to the same phone number in a short period of time." },
        { 131047, 400, 0, "(#131047) Re-engagement message",
          "Message failed to send because more than 24 hours have passed since the customer "
          "last replied to this number." },
        { 131000, 500, 0, "(#131000) Something went wrong", "Message failed to send due to an "
                                                            "unknown error." },
        { 131016, 503, 0, "(#131016) Service unavailable", "A service is temporarily "
                                                           "unavailable." },
        { 133004, 503, 0, "(#133004) Server temporarily unavailable",
          "Server is temporarily unavailable." },
        { 131026, 400, 0, "(#131026) Message undeliverable", "Unable to deliver message." },
        { 131048, 400, 0, "(#131048) Spam rate limit hit", "Message failed to send because "
                                                           "there are restrictions on how many "
                                                           "messages can be sent from this "
                                                           "phone number." },
    };
    char msg[128];

    if (code == 190) {
        reply_json(req, http ? http : 401,
                   graph_error(f, "Error validating access token: Session has expired on "
                                  "Saturday, 14-Mar-26 01:00:00 PDT. The current time is "
                                  "Saturday, 14-Mar-26 02:10:11 PDT.",
                               "OAuthException", 190, NULL, 463));
        return;
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].code == code) {
            reply_json(req, http ? http : known[i].http,
                       graph_error(f, known[i].message, "OAuthException", code, known[i].details,
                                   known[i].subcode));
            return;
        }
    snprintf(msg, sizeof(msg), "(#%d) Fake Graph API error %d", code, code);
    reply_json(req, http ? http : 400,
               graph_error(f, msg, "OAuthException", code, "Injected by myna_fake_graph.", 0));
}

static void reply_bare(struct evhttp_request *req, int http)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/html");
    if (b != NULL)
        evbuffer_add_printf(b, "<!DOCTYPE html><html><head><title>Error</title></head><body>"
                               "<h1>%d</h1><p>Sorry, something went wrong.</p></body></html>",
                            http);
    evhttp_send_reply(req, http, "Error", b);
    if (b != NULL)
        evbuffer_free(b);
}

/* Closes the connection under the request: the client sees it end without
 * an answer. The reply we then send cannot go out; it lets libevent free
 * the request with its connection. */
static void reply_drop(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon != NULL) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
    evhttp_send_reply(req, 500, "Dropped", NULL);
}

static void reply_text(struct evhttp_request *req, int status, const char *text)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (b != NULL)
        evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", b);
    if (b != NULL)
        evbuffer_free(b);
}

/* ---- status webhooks ---------------------------------------------------------- */

static void chain_free(struct chain *c)
{
    struct fake *f = c->f;

    if (c->prev)
        c->prev->next = c->next;
    else
        f->chains = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->timer)
        event_free(c->timer);
    free(c->opaque);
    free(c);
}

static void chain_arm(struct chain *c, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    evtimer_add(c->timer, &tv);
}

static const char *error_title(int code)
{
    switch (code) {
    case 131047: return "Re-engagement message";
    case 131026: return "Message undeliverable";
    case 131049: return "This message was not delivered to maintain healthy ecosystem engagement.";
    case 131050: return "Unable to deliver the message. This recipient has chosen to stop "
                        "receiving marketing messages on WhatsApp from your business.";
    default: return "Message failed to send";
    }
}

static char *status_body(struct chain *c)
{
    struct fake *f = c->f;
    const char *status = c->stages[c->stage];
    cJSON *root = cJSON_CreateObject(), *entry, *change, *value, *meta, *st;
    char ts[24], *json, *escaped;

    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    cJSON_AddStringToObject(root, "object", "whatsapp_business_account");
    entry = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "entry"), entry);
    cJSON_AddStringToObject(entry, "id", f->waba);
    change = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(entry, "changes"), change);
    value = cJSON_AddObjectToObject(change, "value");
    cJSON_AddStringToObject(value, "messaging_product", "whatsapp");
    meta = cJSON_AddObjectToObject(value, "metadata");
    cJSON_AddStringToObject(meta, "display_phone_number", f->display);
    cJSON_AddStringToObject(meta, "phone_number_id", c->pnid);
    st = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(value, "statuses"), st);
    cJSON_AddStringToObject(st, "id", c->wamid);
    cJSON_AddStringToObject(st, "status", status);
    cJSON_AddStringToObject(st, "timestamp", ts);
    cJSON_AddStringToObject(st, "recipient_id", c->recipient);
    if (c->opaque != NULL)
        cJSON_AddStringToObject(st, "biz_opaque_callback_data", c->opaque);
    if (strcmp(status, "failed") == 0) {
        cJSON *e = cJSON_CreateObject(), *d;
        cJSON_AddItemToArray(cJSON_AddArrayToObject(st, "errors"), e);
        cJSON_AddNumberToObject(e, "code", c->fail_code);
        cJSON_AddStringToObject(e, "title", error_title(c->fail_code));
        cJSON_AddStringToObject(e, "message", error_title(c->fail_code));
        d = cJSON_AddObjectToObject(e, "error_data");
        cJSON_AddStringToObject(d, "details", c->fail_code == 131047
                                                  ? "Message failed to send because more than "
                                                    "24 hours have passed since the customer "
                                                    "last replied to this number."
                                                  : "Injected by myna_fake_graph.");
        cJSON_AddStringToObject(e, "href", "https://developers.facebook.com/docs/whatsapp/"
                                           "cloud-api/support/error-codes/");
    } else if (c->stage == 0 || strcmp(status, "read") == 0) {
        /* v24+: pricing on sent and on one of delivered/read, no conversation */
        cJSON *p = cJSON_AddObjectToObject(st, "pricing");
        cJSON_AddBoolToObject(p, "billable", 0);
        cJSON_AddStringToObject(p, "pricing_model", "PMP");
        cJSON_AddStringToObject(p, "type", "free_customer_service");
        cJSON_AddStringToObject(p, "category", "service");
    }
    cJSON_AddStringToObject(change, "field", "messages");
    json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    escaped = json != NULL ? meta_escape(json) : NULL;
    free(json);
    return escaped;
}

static void on_webhook_done(struct evhttp_request *req, void *arg)
{
    struct chain *c = arg;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

    c->in_flight = 0;
    if (c->cancelled) {
        chain_free(c);
        return;
    }
    if (code != 200) {
        fake_log("webhook_failed", "wamid=%s status=%s http=%d try=%d", c->wamid,
                 c->stages[c->stage], code, c->tries);
        if (c->tries < WEBHOOK_TRIES) {
            chain_arm(c, 20 << c->tries);
            return;
        }
    }
    c->tries = 0;
    if (++c->stage >= c->n_stages) {
        chain_free(c);
        return;
    }
    chain_arm(c, STATUS_GAP_MS);
}

static void on_chain_timer(evutil_socket_t fd, short what, void *arg)
{
    struct chain *c = arg;
    struct fake *f = c->f;
    struct evhttp_request *req;
    struct evkeyvalq *h;
    struct evbuffer *out;
    char sig[72], *body = status_body(c);
    const char *path = evhttp_uri_get_path(f->wh_uri), *query = evhttp_uri_get_query(f->wh_uri);
    char target[2048];

    (void)fd;
    (void)what;
    c->tries++;
    if (body == NULL || (req = evhttp_request_new(on_webhook_done, c)) == NULL) {
        free(body);
        fake_log("webhook_failed", "wamid=%s reason=out_of_memory", c->wamid);
        chain_free(c);
        return;
    }
    myna_signature_make(f->key, body, strlen(body), sig);
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", f->wh_host);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "User-Agent", "facebookexternalua");
    evhttp_add_header(h, "X-Hub-Signature-256", sig);
    out = evhttp_request_get_output_buffer(req);
    evbuffer_add(out, body, strlen(body));
    free(body);
    snprintf(target, sizeof(target), "%s%s%s", path != NULL && *path ? path : "/",
             query != NULL ? "?" : "", query != NULL ? query : "");
    c->in_flight = 1;
    if (evhttp_make_request(f->wh_conn, req, EVHTTP_REQ_POST, target) != 0) {
        /* evhttp_make_request frees req on failure */
        c->in_flight = 0;
        fake_log("webhook_failed", "wamid=%s reason=cannot_send", c->wamid);
        chain_free(c);
    }
}

static void start_chain(struct fake *f, const char *wamid, const char *recipient,
                        const char *pnid, const char *opaque, int fail_code, int undelivered,
                        int first_ms)
{
    struct chain *c;

    if (f->wh_conn == NULL)
        return;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->f = f;
    snprintf(c->wamid, sizeof(c->wamid), "%s", wamid);
    snprintf(c->recipient, sizeof(c->recipient), "%s", recipient);
    snprintf(c->pnid, sizeof(c->pnid), "%s", f->pnid != NULL ? f->pnid : pnid);
    c->opaque = opaque != NULL ? strdup(opaque) : NULL;
    c->stages[0] = "sent";
    if (fail_code != 0) {
        c->stages[1] = "failed";
        c->n_stages = 2;
        c->fail_code = fail_code;
    } else if (undelivered) {
        c->n_stages = 1;
    } else {
        c->stages[1] = "delivered";
        c->stages[2] = "read";
        c->n_stages = 3;
    }
    if ((c->timer = evtimer_new(f->base, on_chain_timer, c)) == NULL) {
        free(c->opaque);
        free(c);
        return;
    }
    c->next = f->chains;
    if (f->chains)
        f->chains->prev = c;
    f->chains = c;
    chain_arm(c, first_ms > 0 ? first_ms : STATUS_GAP_MS);
}

/* ---- body validation ------------------------------------------------------------- */

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

/* A string parameter with min..max code points: 0, or replies and -1. */
static int check_len(struct fake *f, struct evhttp_request *req, const cJSON *v,
                     const char *name, long min, long max, int required)
{
    long n;

    if (v == NULL) {
        if (!required)
            return 0;
        reply_100(f, req, "The parameter %s is required.", name);
        return -1;
    }
    if (!cJSON_IsString(v)) {
        reply_100(f, req, "Param %s must be a string.", name);
        return -1;
    }
    if ((n = utf8_len(v->valuestring)) < 0) {
        reply_100(f, req, "Param %s must be valid UTF-8.", name);
        return -1;
    }
    if (n > max) {
        reply_100(f, req, "Param %s must be at most %ld characters long.", name, max);
        return -1;
    }
    if (n < min) {
        reply_131009(f, req, "%s is empty. Min length: %ld, Max length: %ld", name, min, max);
        return -1;
    }
    return 0;
}

static int check_unique(struct fake *f, struct evhttp_request *req, const char **v, int n,
                        const char *what)
{
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0) {
                reply_131009(f, req, "%s is not unique: '%s'", what, v[i]);
                return -1;
            }
    return 0;
}

static int check_header_footer(struct fake *f, struct evhttp_request *req, const cJSON *in)
{
    const cJSON *footer = get(in, "footer"), *header = get(in, "header");

    if (footer != NULL &&
        check_len(f, req, get(footer, "text"), "interactive['footer']['text']", 1, 60, 1) != 0)
        return -1;
    if (header != NULL && cJSON_IsString(get(header, "type")) &&
        strcmp(get(header, "type")->valuestring, "text") == 0 &&
        check_len(f, req, get(header, "text"), "interactive['header']['text']", 1, 60, 1) != 0)
        return -1;
    return 0;
}

static int check_buttons(struct fake *f, struct evhttp_request *req, const cJSON *in)
{
    const cJSON *buttons = get(get(in, "action"), "buttons"), *b;
    const char *ids[3], *titles[3];
    int n = 0;

    if (check_len(f, req, get(get(in, "body"), "text"), "interactive['body']['text']", 1, 1024,
                  1) != 0)
        return -1;
    if (!cJSON_IsArray(buttons)) {
        reply_100(f, req, "The parameter interactive['action']['buttons'] is required.");
        return -1;
    }
    if (cJSON_GetArraySize(buttons) < 1 || cJSON_GetArraySize(buttons) > 3) {
        reply_131009(f, req, "Number of buttons invalid. Min: 1, Max: 3");
        return -1;
    }
    cJSON_ArrayForEach(b, buttons) {
        const cJSON *type = get(b, "type"), *reply = get(b, "reply");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "reply") != 0) {
            reply_100(f, req, "Param interactive['action']['buttons'][%d]['type'] must be one "
                              "of {REPLY}.", n);
            return -1;
        }
        if (check_len(f, req, get(reply, "id"), "button id", 1, 256, 1) != 0 ||
            check_len(f, req, get(reply, "title"), "button title", 1, 20, 1) != 0)
            return -1;
        ids[n] = get(reply, "id")->valuestring;
        titles[n] = get(reply, "title")->valuestring;
        n++;
    }
    if (check_unique(f, req, titles, n, "Button title") != 0 ||
        check_unique(f, req, ids, n, "Button id") != 0)
        return -1;
    return check_header_footer(f, req, in);
}

static int check_list(struct fake *f, struct evhttp_request *req, const cJSON *in)
{
    const cJSON *action = get(in, "action"), *sections = get(action, "sections"), *s;
    const char *ids[10];
    int n_rows = 0, n_sections;

    if (check_len(f, req, get(get(in, "body"), "text"), "interactive['body']['text']", 1, 4096,
                  1) != 0 ||
        check_len(f, req, get(action, "button"), "interactive['action']['button']", 1, 20, 1) != 0)
        return -1;
    if (!cJSON_IsArray(sections)) {
        reply_100(f, req, "The parameter interactive['action']['sections'] is required.");
        return -1;
    }
    n_sections = cJSON_GetArraySize(sections);
    if (n_sections < 1 || n_sections > 10) {
        reply_131009(f, req, "Number of sections invalid. Min: 1, Max: 10");
        return -1;
    }
    cJSON_ArrayForEach(s, sections) {
        const cJSON *rows = get(s, "rows"), *r;
        if (check_len(f, req, get(s, "title"), "section title", 1, 24, n_sections > 1) != 0)
            return -1;
        if (!cJSON_IsArray(rows)) {
            reply_100(f, req, "The parameter interactive['action']['sections']['rows'] is "
                              "required.");
            return -1;
        }
        cJSON_ArrayForEach(r, rows) {
            if (n_rows >= 10) {
                reply_131009(f, req, "Total row count exceed max allowed count: 10");
                return -1;
            }
            if (check_len(f, req, get(r, "id"), "row id", 1, 200, 1) != 0 ||
                check_len(f, req, get(r, "title"), "row title", 1, 24, 1) != 0 ||
                check_len(f, req, get(r, "description"), "row description", 0, 72, 0) != 0)
                return -1;
            ids[n_rows++] = get(r, "id")->valuestring;
        }
    }
    if (n_rows == 0) {
        reply_131009(f, req, "Total row count invalid. Min: 1, Max: 10");
        return -1;
    }
    if (check_unique(f, req, ids, n_rows, "Row id") != 0)
        return -1;
    return check_header_footer(f, req, in);
}

/* Digits of a recipient ("+", spaces, hyphens, parentheses allowed: B1). */
static int recipient_digits(const char *to, char out[24])
{
    size_t n = 0;

    for (; *to; to++) {
        if (*to >= '0' && *to <= '9') {
            if (n >= 20)
                return -1;
            out[n++] = *to;
        } else if (*to != '+' && *to != ' ' && *to != '-' && *to != '(' && *to != ')') {
            return -1;
        }
    }
    out[n] = '\0';
    return n >= 5 ? 0 : -1;
}

/* Validates a send; replies and returns -1 when Meta would refuse it. */
static int check_send(struct fake *f, struct evhttp_request *req, const cJSON *body,
                      char digits[24])
{
    static const char *const other_types[] = { "image", "audio", "video", "document", "sticker",
                                               "location", "contacts", "reaction", "template",
                                               NULL };
    const cJSON *to = get(body, "to"), *type = get(body, "type"), *rt = get(body, "recipient_type");
    const cJSON *ctx = get(body, "context"), *opaque = get(body, "biz_opaque_callback_data");
    const char *t = "text";

    if (!cJSON_IsString(to)) {
        reply_100(f, req, "The parameter to is required.");
        return -1;
    }
    if (recipient_digits(to->valuestring, digits) != 0) {
        reply_131009(f, req, "Invalid recipient phone number '%.40s'", to->valuestring);
        return -1;
    }
    if (rt != NULL && (!cJSON_IsString(rt) || (strcmp(rt->valuestring, "individual") != 0 &&
                                               strcmp(rt->valuestring, "group") != 0))) {
        reply_100(f, req, "Param recipient_type must be one of {INDIVIDUAL, GROUP}.");
        return -1;
    }
    if (ctx != NULL && (!cJSON_IsObject(ctx) || !cJSON_IsString(get(ctx, "message_id")))) {
        reply_100(f, req, "Param context['message_id'] must be a string.");
        return -1;
    }
    if (check_len(f, req, opaque, "biz_opaque_callback_data", 0, 512, 0) != 0)
        return -1;
    if (type != NULL) {
        if (!cJSON_IsString(type)) {
            reply_100(f, req, "Param type must be a string.");
            return -1;
        }
        t = type->valuestring;
    }
    if (strcmp(t, "text") == 0) {
        const cJSON *text = get(body, "text"), *pu = get(text, "preview_url");
        if (!cJSON_IsObject(text)) {
            reply_100(f, req, "The parameter text['body'] is required.");
            return -1;
        }
        if (pu != NULL && !cJSON_IsBool(pu)) {
            reply_100(f, req, "Param text['preview_url'] must be a boolean.");
            return -1;
        }
        return check_len(f, req, get(text, "body"), "text['body']", 1, 4096, 1);
    }
    if (strcmp(t, "interactive") == 0) {
        const cJSON *in = get(body, "interactive"), *it = get(in, "type");
        if (!cJSON_IsObject(in) || !cJSON_IsString(it)) {
            reply_100(f, req, "The parameter interactive['type'] is required.");
            return -1;
        }
        if (strcmp(it->valuestring, "button") == 0)
            return check_buttons(f, req, in);
        if (strcmp(it->valuestring, "list") == 0)
            return check_list(f, req, in);
        reply_100(f, req, "Param interactive['type'] must be one of {BUTTON, LIST} in this fake.");
        return -1;
    }
    for (int i = 0; other_types[i]; i++)
        if (strcmp(t, other_types[i]) == 0) {
            const cJSON *o = get(body, t);
            if (!cJSON_IsObject(o) && !cJSON_IsArray(o)) {
                reply_100(f, req, "The parameter %s is required.", t);
                return -1;
            }
            return 0;
        }
    reply_100(f, req, "Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, "
                      "LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO} - got \"%.40s\".", t);
    return -1;
}

/* ---- sends ----------------------------------------------------------------------- */

static struct fault *take_fault(struct fake *f)
{
    struct fault *h = f->faults, *copy;

    if (h == NULL)
        return NULL;
    if ((copy = malloc(sizeof(*copy))) == NULL)
        return NULL;
    *copy = *h;
    copy->next = NULL;
    if (--h->count <= 0) {
        f->faults = h->next;
        free(h);
    }
    return copy;
}

/* Answers a validated send now: the fault (if any) or acceptance. Takes body. */
static void answer_send(struct fake *f, struct evhttp_request *req, cJSON *body,
                        const struct fault *fault, const char *pnid, long long received_us)
{
    const cJSON *opaque = get(body, "biz_opaque_callback_data");
    cJSON *root, *rec, *contact, *msg;
    char wamid[40], digits[24];

    if (fault != NULL && fault->drop) {
        reply_drop(req);
        cJSON_Delete(body);
        return;
    }
    if (fault != NULL && fault->code != 0) {
        reply_fault_error(f, req, fault->code, fault->http);
        cJSON_Delete(body);
        return;
    }
    if (fault != NULL && fault->http != 0) {
        reply_bare(req, fault->http);
        cJSON_Delete(body);
        return;
    }
    recipient_digits(get(body, "to")->valuestring, digits);
    snprintf(wamid, sizeof(wamid), "wamid.FAKE%lu", ++f->n_wamid);
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "messaging_product", "whatsapp");
    contact = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "contacts"), contact);
    cJSON_AddStringToObject(contact, "input", get(body, "to")->valuestring);
    cJSON_AddStringToObject(contact, "wa_id", digits);
    msg = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "messages"), msg);
    cJSON_AddStringToObject(msg, "id", wamid);
    start_chain(f, wamid, digits, pnid, cJSON_IsString(opaque) ? opaque->valuestring : NULL,
                fault != NULL ? fault->status_fail : 0, fault != NULL ? fault->undelivered : 0,
                fault != NULL ? fault->status_delay_ms : 0);
    rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "wamid", wamid);
    cJSON_AddNumberToObject(rec, "received_us", (double)received_us);  /* exact below 2^53 */
    cJSON_AddItemToObject(rec, "body", body);
    cJSON_AddItemToArray(f->messages, rec);
    if (fault != NULL && fault->lost) {
        cJSON_Delete(root);
        reply_drop(req);
        return;
    }
    reply_json(req, 200, root);
}

static void delayed_free(struct delayed *d)
{
    struct fake *f = d->f;

    if (d->prev)
        d->prev->next = d->next;
    else
        f->delayed = d->next;
    if (d->next)
        d->next->prev = d->prev;
    event_free(d->timer);
    free(d);
}

static void on_delayed(evutil_socket_t fd, short what, void *arg)
{
    struct delayed *d = arg;

    (void)fd;
    (void)what;
    answer_send(d->f, d->req, d->body, &d->fault, d->pnid, d->received_us);
    delayed_free(d);
}

static void delay_send(struct fake *f, struct evhttp_request *req, cJSON *body,
                       const struct fault *fault, const char *pnid, long long received_us)
{
    struct delayed *d = calloc(1, sizeof(*d));
    struct timeval tv = { fault->delay_ms / 1000, (fault->delay_ms % 1000) * 1000 };

    if (d == NULL || (d->timer = evtimer_new(f->base, on_delayed, d)) == NULL) {
        free(d);
        answer_send(f, req, body, fault, pnid, received_us);
        return;
    }
    d->f = f;
    d->received_us = received_us;
    d->req = req;
    d->body = body;
    d->fault = *fault;
    snprintf(d->pnid, sizeof(d->pnid), "%s", pnid);
    d->next = f->delayed;
    if (f->delayed)
        f->delayed->prev = d;
    f->delayed = d;
    evtimer_add(d->timer, &tv);
}

static char *request_body(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *s = malloc(n + 1);

    if (s == NULL)
        return NULL;
    evbuffer_copyout(in, s, n);
    s[n] = '\0';
    *len = n;
    return s;
}

static int auth_ok(struct fake *f, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
        reply_190(f, req, "An active access token must be used to query information about the "
                          "current user.");
        return 0;
    }
    if (f->token != NULL && strcmp(h + 7, f->token) != 0) {
        reply_190(f, req, "Invalid OAuth access token - Cannot parse access token");
        return 0;
    }
    return 1;
}

static void handle_messages(struct fake *f, struct evhttp_request *req, const char *pnid)
{
    long long received_us = wall_us();  /* evhttp calls us once the whole request is in */
    const cJSON *mp, *status;
    struct fault *fault;
    cJSON *body;
    char *raw, digits[24], msg[300];
    size_t len;

    if (!auth_ok(f, req))
        return;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST ||
        (f->pnid != NULL && strcmp(pnid, f->pnid) != 0)) {
        snprintf(msg, sizeof(msg),
                 "Unsupported %s request. Object with ID '%.64s' does not exist, cannot be "
                 "loaded due to missing permissions, or does not support this operation.",
                 evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "post" : "get", pnid);
        reply_json(req, 400, graph_error(f, msg, "GraphMethodException", 100, NULL, 33));
        return;
    }
    if ((raw = request_body(req, &len)) == NULL) {
        reply_bare(req, 500);
        return;
    }
    body = cJSON_ParseWithLength(raw, len);
    free(raw);
    mp = get(body, "messaging_product");
    if (mp == NULL) {
        reply_100(f, req, "The parameter messaging_product is required.");
        cJSON_Delete(body);
        return;
    }
    if (!cJSON_IsString(mp) || strcmp(mp->valuestring, "whatsapp") != 0) {
        reply_100(f, req, "Param messaging_product must be one of {WHATSAPP} - got \"%.40s\".",
                  cJSON_IsString(mp) ? mp->valuestring : "?");
        cJSON_Delete(body);
        return;
    }
    if ((status = get(body, "status")) != NULL) {
        const cJSON *ti = get(body, "typing_indicator");
        if (!cJSON_IsString(status) || strcmp(status->valuestring, "read") != 0)
            reply_100(f, req, "Param status must be one of {READ}.");
        else if (!cJSON_IsString(get(body, "message_id")) ||
                 *get(body, "message_id")->valuestring == '\0')
            reply_100(f, req, "The parameter message_id is required.");
        else if (ti != NULL && (!cJSON_IsString(get(ti, "type")) ||
                                strcmp(get(ti, "type")->valuestring, "text") != 0))
            reply_100(f, req, "Param typing_indicator['type'] must be one of {TEXT}.");
        else {
            cJSON_AddItemToArray(f->reads, body);
            cJSON_AddItemToArray(f->read_times, cJSON_CreateNumber((double)received_us));
            reply_text(req, 200, "{\"success\":true}");
            return;
        }
        cJSON_Delete(body);
        return;
    }
    if (check_send(f, req, body, digits) != 0) {
        cJSON_Delete(body);
        return;
    }
    fault = take_fault(f);
    if (fault != NULL && fault->delay_ms > 0)
        delay_send(f, req, body, fault, pnid, received_us);
    else
        answer_send(f, req, body, fault, pnid, received_us);
    free(fault);
}

/* ---- test control ------------------------------------------------------------------ */

static int fault_int(const cJSON *o, const char *k, int min, int max, int def, int *out)
{
    const cJSON *v = get(o, k);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max ||
        v->valuedouble != (double)(int)v->valuedouble)
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int add_fault(struct fake *f, const cJSON *o, char *why, size_t cap)
{
    static const char *const keys[] = { "code", "http", "count", "delay_ms", "drop", "lost",
                                        "status_fail", "undelivered", "status_delay_ms",
                                        NULL };
    struct fault fl, *n, **tail;
    const cJSON *it;
    int queued = 0;

    if (!cJSON_IsObject(o)) {
        snprintf(why, cap, "a fault is a JSON object");
        return -1;
    }
    cJSON_ArrayForEach(it, o) {
        int known = 0;
        for (int i = 0; keys[i]; i++)
            known |= strcmp(it->string, keys[i]) == 0;
        if (!known) {
            snprintf(why, cap, "unknown fault field '%.40s'", it->string);
            return -1;
        }
    }
    memset(&fl, 0, sizeof(fl));
    if (fault_int(o, "code", 0, 9999999, 0, &fl.code) || fault_int(o, "http", 0, 599, 0, &fl.http) ||
        fault_int(o, "count", 1, 100000, 1, &fl.count) ||
        fault_int(o, "delay_ms", 0, 600000, 0, &fl.delay_ms) ||
        fault_int(o, "drop", 0, 1, 0, &fl.drop) || fault_int(o, "lost", 0, 1, 0, &fl.lost) ||
        fault_int(o, "status_fail", 0, 9999999, 0, &fl.status_fail) ||
        fault_int(o, "undelivered", 0, 1, 0, &fl.undelivered) ||
        fault_int(o, "status_delay_ms", 0, 600000, 0, &fl.status_delay_ms)) {
        snprintf(why, cap, "a fault field is out of range or not an integer");
        return -1;
    }
    if (fl.http != 0 && fl.http < 100) {
        snprintf(why, cap, "http must be 100..599");
        return -1;
    }
    if (!fl.code && !fl.http && !fl.delay_ms && !fl.drop && !fl.lost && !fl.status_fail &&
        !fl.undelivered && !fl.status_delay_ms) {
        snprintf(why, cap, "a fault needs code, http, delay_ms, drop, lost, status_fail, "
                           "undelivered or status_delay_ms");
        return -1;
    }
    for (n = f->faults; n; n = n->next)
        queued++;
    if (queued >= FAULTS_MAX || (n = malloc(sizeof(*n))) == NULL) {
        snprintf(why, cap, "too many faults queued");
        return -1;
    }
    *n = fl;
    for (tail = &f->faults; *tail; tail = &(*tail)->next)
        ;
    *tail = n;
    return 0;
}

static void clear_faults(struct fake *f)
{
    while (f->faults) {
        struct fault *n = f->faults->next;
        free(f->faults);
        f->faults = n;
    }
}

static void reset(struct fake *f)
{
    clear_faults(f);
    cJSON_Delete(f->messages);
    cJSON_Delete(f->reads);
    cJSON_Delete(f->read_times);
    f->messages = cJSON_CreateArray();
    f->reads = cJSON_CreateArray();
    f->read_times = cJSON_CreateArray();
    for (struct chain *c = f->chains, *next; c; c = next) {
        next = c->next;
        if (c->in_flight)
            c->cancelled = 1;  /* freed when its webhook is answered */
        else
            chain_free(c);
    }
    while (f->delayed) {
        struct delayed *d = f->delayed;
        reply_drop(d->req);
        cJSON_Delete(d->body);
        delayed_free(d);
    }
}

static void handle_faults(struct fake *f, struct evhttp_request *req)
{
    char *raw, why[200];
    size_t len;
    cJSON *root;
    int rc = 0;

    if ((raw = request_body(req, &len)) == NULL) {
        reply_bare(req, 500);
        return;
    }
    root = cJSON_ParseWithLength(raw, len);
    free(raw);
    snprintf(why, sizeof(why), "the body must be a fault object or an array of them");
    if (cJSON_IsArray(root)) {
        const cJSON *it;
        rc = cJSON_GetArraySize(root) > 0 ? 0 : -1;
        cJSON_ArrayForEach(it, root) {
            if (rc == 0)
                rc = add_fault(f, it, why, sizeof(why));
        }
    } else {
        rc = add_fault(f, root, why, sizeof(why));
    }
    cJSON_Delete(root);
    if (rc != 0) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", why);
        reply_json(req, 400, e);
        return;
    }
    reply_text(req, 200, "{\"ok\":true}");
}

static void reply_array(struct evhttp_request *req, const cJSON *arr)
{
    reply_json(req, 200, cJSON_Duplicate(arr, 1));
}

/* The records after the first `from` (a query parameter, default 0). */
static void reply_messages(struct fake *f, struct evhttp_request *req)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq params = { 0 };  /* evhttp_parse_query_str initializes it */
    const char *v;
    char *end = NULL;
    long from = 0, i = 0;
    cJSON *out, *it;

    if (query != NULL && evhttp_parse_query_str(query, &params) == 0 &&
        (v = evhttp_find_header(&params, "from")) != NULL) {
        from = strtol(v, &end, 10);
        if (end == v || *end != '\0' || from < 0)
            from = -1;
    }
    evhttp_clear_headers(&params);
    if (from < 0) {
        reply_json(req, 400, graph_error(f, "(#100) from must be a count", "OAuthException", 100,
                                         NULL, 0));
        return;
    }
    if ((out = cJSON_CreateArray()) == NULL) {
        reply_bare(req, 500);
        return;
    }
    cJSON_ArrayForEach(it, f->messages) {
        if (i++ >= from)
            cJSON_AddItemToArray(out, cJSON_Duplicate(it, 1));
    }
    reply_json(req, 200, out);
}

/* /{version}/{pnid}/messages: version "v" + digits[.digits]. */
static int parse_messages_path(const char *path, char *pnid, size_t cap)
{
    const char *p = path, *slash;
    size_t n;

    if (*p++ != '/' || *p++ != 'v' || *p < '0' || *p > '9')
        return -1;
    while ((*p >= '0' && *p <= '9') || *p == '.')
        p++;
    if (*p++ != '/')
        return -1;
    if ((slash = strchr(p, '/')) == NULL || strcmp(slash, "/messages") != 0)
        return -1;
    n = (size_t)(slash - p);
    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return -1;
    memcpy(pnid, p, n);
    pnid[n] = '\0';
    return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fake *f = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    char pnid[64], msg[300];

    if (path == NULL)
        path = "/";
    if (strcmp(path, "/_fake/faults") == 0 && cmd == EVHTTP_REQ_POST) {
        handle_faults(f, req);
    } else if (strcmp(path, "/_fake/messages") == 0 && cmd == EVHTTP_REQ_GET) {
        reply_messages(f, req);
    } else if (strcmp(path, "/_fake/reads") == 0 && cmd == EVHTTP_REQ_GET) {
        reply_array(req, f->reads);
    } else if (strcmp(path, "/_fake/read_times") == 0 && cmd == EVHTTP_REQ_GET) {
        reply_array(req, f->read_times);
    } else if (strcmp(path, "/_fake/reset") == 0 && cmd == EVHTTP_REQ_POST) {
        reset(f);
        reply_text(req, 200, "{\"ok\":true}");
    } else if (parse_messages_path(path, pnid, sizeof(pnid)) == 0) {
        handle_messages(f, req, pnid);
    } else {
        snprintf(msg, sizeof(msg), "Unknown path components: %.200s", path);
        reply_json(req, 400, graph_error(f, msg, "OAuthException", 2500, NULL, 0));
    }
}

/* ---- process ----------------------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int setup_webhook(struct fake *f, const char *url)
{
    const char *scheme, *host;
    int port;

    if ((f->wh_uri = evhttp_uri_parse(url)) == NULL ||
        (scheme = evhttp_uri_get_scheme(f->wh_uri)) == NULL || strcmp(scheme, "http") != 0 ||
        (host = evhttp_uri_get_host(f->wh_uri)) == NULL) {
        fprintf(stderr, "fake_graph: --webhook must be an http:// URL\n");
        return -1;
    }
    port = evhttp_uri_get_port(f->wh_uri);
    if (port < 0)
        port = 80;
    snprintf(f->wh_host, sizeof(f->wh_host), "%s:%d", host, port);
    if ((f->dns = evdns_base_new(f->base, 0)) == NULL)
        return -1;
    evdns_base_load_hosts(f->dns, NULL);
    f->wh_conn = evhttp_connection_base_new(f->base, f->dns, host, (unsigned short)port);
    if (f->wh_conn == NULL)
        return -1;
    evhttp_connection_set_timeout(f->wh_conn, 10);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: myna_fake_graph --listen 127.0.0.1:PORT [--token T]\n"
                    "       [--webhook URL --app-secret S [--phone-number-id ID]\n"
                    "        [--display-phone-number N] [--waba-id W]]\n");
}

int main(int argc, char **argv)
{
    struct fake f;
    const char *listen = NULL, *webhook = NULL, *secret = NULL;
    char host[128];
    int port, rc = 1;
    struct evhttp_bound_socket *bound;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct event *sigterm = NULL, *sigint = NULL;
    struct myna_err err = MYNA_ERR_INIT;

    memset(&f, 0, sizeof(f));
    f.display = "15550001234";
    f.waba = "102290129340398";
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        if (strcmp(a, "--listen") == 0)
            listen = v;
        else if (strcmp(a, "--token") == 0)
            f.token = v;
        else if (strcmp(a, "--webhook") == 0)
            webhook = v;
        else if (strcmp(a, "--app-secret") == 0)
            secret = v;
        else if (strcmp(a, "--phone-number-id") == 0)
            f.pnid = v;
        else if (strcmp(a, "--display-phone-number") == 0)
            f.display = v;
        else if (strcmp(a, "--waba-id") == 0)
            f.waba = v;
        else {
            usage();
            return 2;
        }
    }
    if (listen == NULL || myna_split_hostport(listen, host, sizeof(host), &port) != 0 ||
        !is_loopback(host) || (webhook != NULL && secret == NULL)) {
        fprintf(stderr, "fake_graph: --listen needs a loopback host:port; --webhook needs "
                        "--app-secret\n");
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    f.base = event_base_new();
    f.http = f.base ? evhttp_new(f.base) : NULL;
    f.messages = cJSON_CreateArray();
    f.reads = cJSON_CreateArray();
    f.read_times = cJSON_CreateArray();
    if (f.http == NULL || f.messages == NULL || f.reads == NULL || f.read_times == NULL)
        goto out;
    evhttp_set_max_body_size(f.http, BODY_MAX);
    evhttp_set_max_headers_size(f.http, 64 * 1024);
    evhttp_set_allowed_methods(f.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                           EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(f.http, on_request, &f);
    if (secret != NULL && (f.key = myna_hmac_key_new(secret, strlen(secret), &err)) == NULL) {
        fprintf(stderr, "fake_graph: %s\n", err.msg);
        goto out;
    }
    if (webhook != NULL && setup_webhook(&f, webhook) != 0)
        goto out;
    if ((bound = evhttp_bind_socket_with_handle(f.http, host, (unsigned short)port)) == NULL) {
        fprintf(stderr, "fake_graph: cannot listen on %s\n", listen);
        goto out;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) != 0)
        goto out;
    port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    sigterm = evsignal_new(f.base, SIGTERM, on_signal, f.base);
    sigint = evsignal_new(f.base, SIGINT, on_signal, f.base);
    if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) != 0 ||
        event_add(sigint, NULL) != 0)
        goto out;
    if (strchr(host, ':') != NULL)
        fprintf(stderr, "event=ready public=[%s]:%d\n", host, port);
    else
        fprintf(stderr, "event=ready public=%s:%d\n", host, port);
    fflush(stderr);
    event_base_dispatch(f.base);
    rc = 0;
out:
    clear_faults(&f);
    while (f.delayed) {   /* answer what is still held back: frees the requests */
        struct delayed *d = f.delayed;
        answer_send(&f, d->req, d->body, &d->fault, d->pnid, d->received_us);
        delayed_free(d);
    }
    if (f.wh_conn)
        evhttp_connection_free(f.wh_conn);  /* no callbacks for requests in flight */
    while (f.chains)
        chain_free(f.chains);
    if (f.http)
        evhttp_free(f.http);
    if (f.dns)
        evdns_base_free(f.dns, 0);
    if (f.wh_uri)
        evhttp_uri_free(f.wh_uri);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (f.base)
        event_base_free(f.base);
    cJSON_Delete(f.messages);
    cJSON_Delete(f.reads);
    cJSON_Delete(f.read_times);
    myna_hmac_key_free(f.key);
    return rc;
}
