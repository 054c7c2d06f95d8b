/* turns.c - myna_turns: the conversation pipeline of one bot, measured from
 * its two ends, and the same turns made without Myna as the baseline.
 *
 *   myna_turns --mode myna --url http://127.0.0.1:PORT/webhook/ID --secret S
 *              --graph http://127.0.0.1:GPORT [--llm http://127.0.0.1:LPORT]
 *              [--turns 5000] [--first-sender 0] [--rate 0] [--connections 16]
 *              [--window-ms 100] [--log FILE] [--timeout 60]
 *   myna_turns --mode direct --llm http://127.0.0.1:LPORT
 *              --graph http://127.0.0.1:GPORT [--turns 5000] [--connections 32]
 *              [--timeout 60]
 *
 * myna: --turns signed Cloud API webhooks, each from a chat of its own
 * (7916 + 7 digits, numbered from --first-sender) with one text, over
 * --connections keep-alive connections, as fast as they are answered or
 * --rate per second. The time each 200 came back is kept, and the fake
 * Graph API (tests/fakes/fake_graph.c) is polled for the sends it received
 * (GET /_fake/messages?from=N, each with received_us). A turn's latency is
 * the reply's arrival at the fake minus its webhook's 200, minus
 * --window-ms (the batch window the bot waits on purpose). With --log (the
 * `myna serve` log, where the bot writes), the bot's `event=turn_answered`
 * lines written during the run give the rate at which turns were answered
 * (committed to the outbox), before the sender's pacing. Prints one line:
 *   turns=N acked=A non200=K errors=E sent=S missing=M sent_per_s=X
 *   answered_per_s=Y first_ms=F p50_ms=.. p99_ms=.. max_ms=..
 * sent: replies that reached the fake for this run's chats; missing: acked
 * webhooks with no reply by --timeout; first_ms: from the first webhook sent
 * to the first reply received. Rates are taken between the 10th and the
 * 90th percentile of the arrival times (the plateau, not the ramps).
 *
 * direct: the baseline. --connections lanes, each with its own keep-alive
 * connections to the fakes, do what the bot does for a turn, one turn
 * after another: the mark-read + typing request and the chat completion
 * together, then the send with the model's words. No Myna in between: this
 * is what the fakes, HTTP and this machine allow. Prints one line:
 *   turns=N errors=E turns_per_s=X p50_ms=.. p99_ms=.. max_ms=..
 * (latency: from the start of a turn to the send's answer).
 *
 * Both first POST /_fake/reset to the fakes given. Loopback only; every wait
 * is bounded by --timeout. Exit 0 when every turn was measured, 1 when some
 * were not (or setup failed), 2 on usage errors. Not library code: it
 * prints and exits. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_TURNS 1000000u
#define MAX_CONNECTIONS 256u
#define MAX_TIMEOUT_S 600u
#define MAX_PATH_LEN 512
#define IO_TIMEOUT_S 10
#define POLL_MS 100              /* how often the fake Graph is asked for new sends */
#define SENDER_BASE "7916"       /* + 7 digits: the chat's number */
#define LOG_LINE_MAX 4096

enum mode { MODE_NONE, MODE_MYNA, MODE_DIRECT };

struct endpoint {
    const char *url;
    uint16_t port;
    char path[MAX_PATH_LEN + 1];
};

struct opts {
    enum mode mode;
    struct endpoint myna, graph, llm;
    int has_myna, has_graph, has_llm;
    const char *secret;
    const char *log;
    unsigned turns, first_sender, connections, window_ms, timeout_s;
    unsigned rate;               /* webhooks per second; 0 = as fast as answered */
};

struct turn {
    int64_t start_us;            /* direct: when it started */
    int64_t ack_us;              /* myna: when its webhook's 200 came back */
    int64_t done_us;             /* myna: reply received by the fake; direct: send answered */
};

struct bench;

/* One keep-alive connection to a server, one request in flight. */
struct conn {
    struct bench *b;
    struct evhttp_connection *evcon;
    unsigned turn;               /* the turn its request belongs to */
    int busy;
};

/* direct: one lane does one turn at a time. */
struct lane {
    struct conn llm, graph;
    unsigned turn;
    int pending;                 /* requests of this turn still in flight */
};

struct bench {
    struct opts o;
    struct event_base *base;
    struct turn *t;
    struct conn *conns;          /* myna: to the ingress */
    struct lane *lanes;          /* direct */
    struct conn poller, ctl_graph, ctl_llm;
    struct call *calls;          /* in flight */
    struct event *pace, *poll, *deadline, *sigint;
    long long ts;                /* webhook timestamp (seconds) */
    char nonce[17];
    unsigned issued, acked, non200, errors, done, polled, ended;
    unsigned resets_pending;
    int started, finished;
    const char *stop_reason;
    int64_t t0_us;
    long log_offset;
};

typedef void (*done_fn)(struct conn *c, int status, struct evbuffer *body);

/* One request in flight; freed when answered, or at exit (evhttp frees the
 * requests of a connection it frees without calling back). */
struct call {
    struct call *next, *prev;
    struct conn *c;
    done_fn fn;
};

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void stop(struct bench *b, const char *why)
{
    if (b->finished)
        return;
    b->finished = 1;
    b->stop_reason = why;
    event_base_loopbreak(b->base);
}

/* ---- HTTP ------------------------------------------------------------------ */

static void call_free(struct bench *b, struct call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        b->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    free(call);
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct call *call = arg;
    struct conn *c = call->c;
    done_fn fn = call->fn;

    call_free(c->b, call);
    c->busy = 0;
    /* req is NULL when the connection failed or timed out */
    fn(c, req ? evhttp_request_get_response_code(req) : 0,
       req ? evhttp_request_get_input_buffer(req) : NULL);
}

static int conn_open(struct bench *b, struct conn *c, const struct endpoint *ep)
{
    c->b = b;
    c->evcon = evhttp_connection_base_new(b->base, NULL, "127.0.0.1", ep->port);
    if (c->evcon == NULL)
        return -1;
    evhttp_connection_set_timeout(c->evcon, IO_TIMEOUT_S);
    return 0;
}

/* Sends one request on c (idle); fn runs with its answer. 0 or -1. */
static int request(struct conn *c, enum evhttp_cmd_type cmd, const char *path, const char *body,
                   size_t len, const char *sig, done_fn fn)
{
    struct call *call = calloc(1, sizeof(*call));
    struct evhttp_request *req;
    struct evkeyvalq *h;

    if (call == NULL)
        return -1;
    call->c = c;
    call->fn = fn;
    call->next = c->b->calls;
    if (call->next)
        call->next->prev = call;
    c->b->calls = call;
    if ((req = evhttp_request_new(on_response, call)) == NULL) {
        call_free(c->b, call);
        return -1;
    }
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    if (body != NULL) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    }
    if (sig != NULL)  /* a webhook */
        evhttp_add_header(h, "X-Hub-Signature-256", sig);
    else              /* the fake Graph wants this token; the fake LLM takes any */
        evhttp_add_header(h, "Authorization", "Bearer bench-token");
    c->busy = 1;
    if (evhttp_make_request(c->evcon, req, cmd, path) != 0) {
        /* evhttp_make_request freed req */
        call_free(c->b, call);
        c->busy = 0;
        return -1;
    }
    return 0;
}

/* The body, NUL-terminated, malloc'd; NULL when there is none. */
static char *body_text(struct evbuffer *buf)
{
    size_t n = buf ? evbuffer_get_length(buf) : 0;
    char *s = malloc(n + 1);

    if (s == NULL)
        return NULL;
    if (n > 0)
        evbuffer_copyout(buf, s, n);
    s[n] = '\0';
    return s;
}

/* ---- myna: webhooks in ------------------------------------------------------ */

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "sha256=" + hex HMAC-SHA256 of body with the app secret. */
static int sign(const char *secret, const char *body, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;

    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, md,
             &md_len) == NULL || md_len != 32)
        return -1;
    memcpy(out, "sha256=", 7);
    hex(md, md_len, out + 7);
    return 0;
}

static int webhook_body(const struct bench *b, unsigned sender, unsigned seq, char *out,
                        size_t cap)
{
    return snprintf(out, cap,
                    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":"
                    "\"302948571630214\",\"changes\":[{\"value\":{\"messaging_product\":"
                    "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"79990001122\","
                    "\"phone_number_id\":\"481516234200915\"},\"contacts\":[{\"profile\":"
                    "{\"name\":\"Bench %u\"},\"wa_id\":\"" SENDER_BASE "%07u\"}],\"messages\":"
                    "[{\"from\":\"" SENDER_BASE "%07u\",\"id\":\"wamid.TURNS%s%010u\","
                    "\"timestamp\":\"%lld\",\"type\":\"text\",\"text\":{\"body\":"
                    "\"Good evening! Do you have a table for two at eight tonight? (%u)\"}}]},"
                    "\"field\":\"messages\"}]}]}",
                    sender, sender, sender, b->nonce, seq, b->ts, sender);
}

static void pump(struct bench *b);

static void on_acked(struct conn *c, int status, struct evbuffer *body)
{
    struct bench *b = c->b;

    (void)body;
    if (status == 200) {
        b->t[c->turn].ack_us = wall_us();
        b->acked++;
    } else if (status == 0) {
        b->errors++;
    } else {
        b->non200++;
    }
    pump(b);
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

/* Issues the webhooks that are due on the idle connections. */
static void pump(struct bench *b)
{
    char body[1024], sig[72];

    for (unsigned i = 0; i < b->o.connections && b->issued < b->o.turns; i++) {
        struct conn *c = &b->conns[i];
        unsigned n = b->issued;
        int len;

        if (c->busy)
            continue;
        if (b->o.rate > 0) {  /* webhook n goes at t0 + n / rate, not before */
            int64_t due = b->t0_us + (int64_t)n * 1000000 / b->o.rate, now = wall_us();
            if (due > now) {
                struct timeval tv = { (time_t)((due - now) / 1000000),
                                      (suseconds_t)((due - now) % 1000000) };
                evtimer_add(b->pace, &tv);
                return;
            }
        }
        len = webhook_body(b, b->o.first_sender + n, n, body, sizeof(body));
        if (len < 0 || (size_t)len >= sizeof(body) || sign(b->o.secret, body, (size_t)len, sig)) {
            stop(b, "cannot build a webhook");
            return;
        }
        c->turn = n;
        b->issued++;
        if (request(c, EVHTTP_REQ_POST, b->o.myna.path, body, (size_t)len, sig, on_acked) != 0) {
            stop(b, "cannot send a request");
            return;
        }
    }
}

/* ---- myna: sends out (the fake Graph's record) ------------------------------- */

static void on_polled(struct conn *c, int status, struct evbuffer *body)
{
    struct bench *b = c->b;
    char *text;
    cJSON *arr, *rec;
    unsigned waiting = 0;

    if (status != 200 || (text = body_text(body)) == NULL)
        return;  /* the next tick asks again */
    arr = cJSON_Parse(text);
    free(text);
    cJSON_ArrayForEach(rec, arr) {
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(rec, "body"), "to");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(rec, "received_us");
        const char *num;
        unsigned long chat;
        char *end;

        b->polled++;
        if (!cJSON_IsString(to) || !cJSON_IsNumber(at))
            continue;
        num = to->valuestring + (to->valuestring[0] == '+');  /* Myna sends +E.164 */
        if (strlen(num) != 11 || strncmp(num, SENDER_BASE, 4) != 0)
            continue;
        chat = strtoul(num + 4, &end, 10);
        if (*end != '\0' || chat < b->o.first_sender || chat - b->o.first_sender >= b->o.turns)
            continue;  /* not a chat of this run */
        chat -= b->o.first_sender;
        if (b->t[chat].done_us == 0) {  /* the first reply; a longer one may come in parts */
            b->t[chat].done_us = (int64_t)at->valuedouble;
            b->done++;
        }
    }
    cJSON_Delete(arr);
    if (b->acked + b->non200 + b->errors < b->o.turns)
        return;
    for (unsigned i = 0; i < b->o.turns; i++)
        waiting += b->t[i].ack_us != 0 && b->t[i].done_us == 0;
    if (waiting == 0)
        stop(b, "done");
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;
    char path[64];

    (void)fd;
    (void)what;
    if (b->poller.busy)
        return;
    snprintf(path, sizeof(path), "/_fake/messages?from=%u", b->polled);
    request(&b->poller, EVHTTP_REQ_GET, path, NULL, 0, NULL, on_polled);
}

/* ---- direct: the same turns without Myna ------------------------------------- */

static void lane_start(struct lane *l);

/* One request of the lane's turn is over; the turn ends with its last. */
static void lane_step(struct lane *l)
{
    if (--l->pending > 0)
        return;
    l->llm.b->ended++;
    lane_start(l);
}

static void on_sent(struct conn *c, int status, struct evbuffer *body)
{
    struct bench *b = c->b;
    struct lane *l = (struct lane *)((char *)c - offsetof(struct lane, graph));

    (void)body;
    if (status == 200) {
        b->t[l->turn].done_us = wall_us();
        b->done++;
    } else {
        b->errors++;
    }
    lane_step(l);
}

static void on_typing(struct conn *c, int status, struct evbuffer *body)
{
    struct lane *l = (struct lane *)((char *)c - offsetof(struct lane, graph));

    (void)body;
    if (status != 200)
        c->b->errors++;
    lane_step(l);
}

/* The model's answer: the send goes out with its words (like the bot's). */
static void on_completion(struct conn *c, int status, struct evbuffer *body)
{
    struct bench *b = c->b;
    struct lane *l = (struct lane *)((char *)c - offsetof(struct lane, llm));
    char *text = status == 200 ? body_text(body) : NULL, to[16], opaque[32];
    cJSON *doc = text ? cJSON_Parse(text) : NULL, *send = NULL, *t;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "choices"), 0), "message"),
        "content");
    char *out = NULL;

    free(text);
    snprintf(to, sizeof(to), SENDER_BASE "%07u", l->turn);
    snprintf(opaque, sizeof(opaque), "outbox:%u", l->turn + 1);
    if (cJSON_IsString(content) && (send = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(send, "messaging_product", "whatsapp");
        cJSON_AddStringToObject(send, "recipient_type", "individual");
        cJSON_AddStringToObject(send, "to", to);
        cJSON_AddStringToObject(send, "type", "text");
        t = cJSON_AddObjectToObject(send, "text");
        cJSON_AddFalseToObject(t, "preview_url");
        cJSON_AddStringToObject(t, "body", content->valuestring);
        cJSON_AddStringToObject(send, "biz_opaque_callback_data", opaque);
        out = cJSON_PrintUnformatted(send);
    }
    cJSON_Delete(doc);
    cJSON_Delete(send);
    /* the send waits behind the typing request on the lane's Graph connection */
    if (out == NULL) {
        b->errors++;
        l->pending--;  /* no send: this turn is lost */
    } else if (request(&l->graph, EVHTTP_REQ_POST, b->o.graph.path, out, strlen(out), NULL,
                       on_sent) != 0) {
        free(out);
        stop(b, "cannot send a request");
        return;
    }
    free(out);
    lane_step(l);
}

static void lane_start(struct lane *l)
{
    struct bench *b = l->llm.b;
    char chat[512], typing[256];
    int n, m;

    if (b->issued >= b->o.turns) {
        if (b->ended == b->o.turns)
            stop(b, "done");
        return;
    }
    l->turn = b->issued++;
    b->t[l->turn].start_us = wall_us();
    n = snprintf(chat, sizeof(chat),
                 "{\"model\":\"fake-model\",\"messages\":[{\"role\":\"system\",\"content\":"
                 "\"The customer's WhatsApp name is Bench %u.\"},{\"role\":\"user\",\"content\":"
                 "\"Good evening! Do you have a table for two at eight tonight? (%u)\"}],"
                 "\"temperature\":0.7}",
                 l->turn, l->turn);
    m = snprintf(typing, sizeof(typing),
                 "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":"
                 "\"wamid.DIRECT%s%010u\",\"typing_indicator\":{\"type\":\"text\"}}",
                 b->nonce, l->turn);
    l->pending = 3;  /* typing, completion, send */
    if (request(&l->graph, EVHTTP_REQ_POST, b->o.graph.path, typing, (size_t)m, NULL,
                on_typing) != 0 ||
        request(&l->llm, EVHTTP_REQ_POST, "/v1/chat/completions", chat, (size_t)n, NULL,
                on_completion) != 0)
        stop(b, "cannot send a request");
}

/* ---- start, stop ------------------------------------------------------------- */

static void begin(struct bench *b)
{
    struct timeval poll = { 0, POLL_MS * 1000 };

    b->started = 1;
    b->t0_us = wall_us();
    if (b->o.mode == MODE_DIRECT) {
        for (unsigned i = 0; i < b->o.connections; i++)
            lane_start(&b->lanes[i]);
        return;
    }
    event_add(b->poll, &poll);
    pump(b);
}

static void on_reset(struct conn *c, int status, struct evbuffer *body)
{
    struct bench *b = c->b;

    (void)body;
    if (status != 200) {
        stop(b, "a fake did not answer POST /_fake/reset");
        return;
    }
    if (--b->resets_pending == 0)
        begin(b);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop(arg, "timeout");
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop(arg, "interrupted");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values. */
static int64_t pct(const int64_t *v, size_t n, unsigned per100)
{
    size_t rank = (n * per100 + 99) / 100;

    return n == 0 ? 0 : v[rank > 0 ? rank - 1 : 0];
}

/* Events per second on the plateau: between the 10th and 90th percentile
 * of the sorted times (us), or first to last when there are few. */
static double plateau_rate(const int64_t *t, size_t n)
{
    size_t lo = n >= 20 ? n / 10 : 0, hi = n >= 20 ? n * 9 / 10 - 1 : n - 1;

    if (n < 2 || t[hi] <= t[lo])
        return 0;
    return (double)(hi - lo) * 1e6 / (double)(t[hi] - t[lo]);
}

/* Times (us) of the bot's event=turn_answered lines after log_offset. */
static size_t answered_times(const struct bench *b, int64_t **out)
{
    FILE *fp = fopen(b->o.log, "r");
    char line[LOG_LINE_MAX];
    int64_t *v = NULL;
    size_t n = 0, cap = 0;

    *out = NULL;
    if (fp == NULL || fseek(fp, b->log_offset, SEEK_SET) != 0) {
        if (fp)
            fclose(fp);
        return 0;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        struct tm tm;
        int ms;
        const char *ts = strstr(line, "ts=");

        if (strstr(line, " event=turn_answered ") == NULL || ts == NULL)
            continue;
        memset(&tm, 0, sizeof(tm));
        if (sscanf(ts, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
            continue;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        if (n == cap) {
            int64_t *nv = realloc(v, (cap = cap ? cap * 2 : 1024) * sizeof(*v));
            if (nv == NULL)
                break;
            v = nv;
        }
        v[n++] = (int64_t)timegm(&tm) * 1000000 + (int64_t)ms * 1000;
    }
    fclose(fp);
    *out = v;
    return n;
}

static int report(struct bench *b)
{
    int64_t *lat = calloc(b->o.turns ? b->o.turns : 1, sizeof(*lat));
    int64_t *at = calloc(b->o.turns ? b->o.turns : 1, sizeof(*at));
    size_t n = 0;
    int rc;

    if (lat == NULL || at == NULL) {
        free(lat);
        free(at);
        return 1;
    }
    for (unsigned i = 0; i < b->o.turns; i++) {
        const struct turn *t = &b->t[i];
        int64_t from = b->o.mode == MODE_MYNA ? t->ack_us : t->start_us;
        if (from == 0 || t->done_us == 0)
            continue;
        lat[n] = t->done_us - from - (b->o.mode == MODE_MYNA ? (int64_t)b->o.window_ms * 1000 : 0);
        at[n++] = t->done_us;
    }
    qsort(lat, n, sizeof(*lat), cmp_i64);
    qsort(at, n, sizeof(*at), cmp_i64);
    if (b->o.mode == MODE_MYNA) {
        int64_t *ans = NULL;
        size_t n_ans = b->o.log ? answered_times(b, &ans) : 0;
        char answered[32] = "?";
        unsigned missing = b->acked - (unsigned)n;
        if (n_ans > 0) {
            qsort(ans, n_ans, sizeof(*ans), cmp_i64);
            snprintf(answered, sizeof(answered), "%.0f", plateau_rate(ans, n_ans));
        }
        free(ans);
        printf("turns=%u acked=%u non200=%u errors=%u sent=%zu missing=%u sent_per_s=%.0f "
               "answered_per_s=%s first_ms=%.1f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
               b->o.turns, b->acked, b->non200, b->errors, n, missing, plateau_rate(at, n),
               answered, n ? (double)(at[0] - b->t0_us) / 1000 : 0.0,
               (double)pct(lat, n, 50) / 1000, (double)pct(lat, n, 99) / 1000,
               n ? (double)lat[n - 1] / 1000 : 0.0);
        rc = missing == 0 && b->acked > 0 ? 0 : 1;
    } else {
        int64_t first = 0, last = 0;
        for (unsigned i = 0; i < b->o.turns; i++)
            if (b->t[i].start_us && (first == 0 || b->t[i].start_us < first))
                first = b->t[i].start_us;
        last = n ? at[n - 1] : first;
        printf("turns=%zu errors=%u turns_per_s=%.0f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n", n,
               b->errors, last > first ? (double)n * 1e6 / (double)(last - first) : 0.0,
               (double)pct(lat, n, 50) / 1000, (double)pct(lat, n, 99) / 1000,
               n ? (double)lat[n - 1] / 1000 : 0.0);
        rc = n == b->o.turns ? 0 : 1;
    }
    if (rc != 0)
        fprintf(stderr, "turns: stopped (%s) with %zu of %u turns measured\n",
                b->stop_reason ? b->stop_reason : "?", n, b->o.turns);
    free(lat);
    free(at);
    return rc;
}

static int setup(struct bench *b)
{
    struct timeval dl = { (time_t)b->o.timeout_s, 0 };
    unsigned char r[8];
    FILE *fp;

    if ((b->base = event_base_new()) == NULL ||
        (b->t = calloc(b->o.turns, sizeof(*b->t))) == NULL ||
        (b->pace = evtimer_new(b->base, on_pace, b)) == NULL ||
        (b->poll = event_new(b->base, -1, EV_PERSIST, on_poll, b)) == NULL ||
        (b->deadline = evtimer_new(b->base, on_deadline, b)) == NULL ||
        (b->sigint = evsignal_new(b->base, SIGINT, on_sigint, b)) == NULL)
        return -1;
    /* ids stay new across runs on one store: a nonce per run */
    fp = fopen("/dev/urandom", "rb");
    if (fp == NULL || fread(r, 1, sizeof(r), fp) != sizeof(r)) {
        if (fp)
            fclose(fp);
        return -1;
    }
    fclose(fp);
    hex(r, sizeof(r), b->nonce);
    b->ts = (long long)time(NULL);
    if (b->o.mode == MODE_MYNA) {
        if ((b->conns = calloc(b->o.connections, sizeof(*b->conns))) == NULL)
            return -1;
        for (unsigned i = 0; i < b->o.connections; i++)
            if (conn_open(b, &b->conns[i], &b->o.myna) != 0)
                return -1;
        if (conn_open(b, &b->poller, &b->o.graph) != 0)
            return -1;
        if (b->o.log != NULL) {  /* only lines written from now on count */
            if ((fp = fopen(b->o.log, "r")) == NULL || fseek(fp, 0, SEEK_END) != 0) {
                fprintf(stderr, "turns: cannot read --log %s: %s\n", b->o.log, strerror(errno));
                if (fp)
                    fclose(fp);
                return -1;
            }
            b->log_offset = ftell(fp);
            fclose(fp);
        }
    } else {
        if ((b->lanes = calloc(b->o.connections, sizeof(*b->lanes))) == NULL)
            return -1;
        for (unsigned i = 0; i < b->o.connections; i++)
            if (conn_open(b, &b->lanes[i].llm, &b->o.llm) != 0 ||
                conn_open(b, &b->lanes[i].graph, &b->o.graph) != 0)
                return -1;
    }
    if (conn_open(b, &b->ctl_graph, &b->o.graph) != 0 ||
        (b->o.has_llm && conn_open(b, &b->ctl_llm, &b->o.llm) != 0))
        return -1;
    if (evtimer_add(b->deadline, &dl) != 0 || evsignal_add(b->sigint, NULL) != 0)
        return -1;
    b->resets_pending = 1 + (unsigned)b->o.has_llm;
    if (request(&b->ctl_graph, EVHTTP_REQ_POST, "/_fake/reset", "{}", 2, NULL, on_reset) != 0 ||
        (b->o.has_llm &&
         request(&b->ctl_llm, EVHTTP_REQ_POST, "/_fake/reset", "{}", 2, NULL, on_reset) != 0))
        return -1;
    return 0;
}

static void release(struct bench *b)
{
    struct event *evs[] = { b->pace, b->poll, b->deadline, b->sigint };
    struct conn *ctl[] = { &b->poller, &b->ctl_graph, &b->ctl_llm };

    /* connections first: freeing one fails its requests without callbacks */
    for (unsigned i = 0; b->conns && i < b->o.connections; i++)
        if (b->conns[i].evcon)
            evhttp_connection_free(b->conns[i].evcon);
    for (unsigned i = 0; b->lanes && i < b->o.connections; i++) {
        if (b->lanes[i].llm.evcon)
            evhttp_connection_free(b->lanes[i].llm.evcon);
        if (b->lanes[i].graph.evcon)
            evhttp_connection_free(b->lanes[i].graph.evcon);
    }
    for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++)
        if (ctl[i]->evcon)
            evhttp_connection_free(ctl[i]->evcon);
    while (b->calls)
        call_free(b, b->calls);
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    if (b->base)
        event_base_free(b->base);
    free(b->conns);
    free(b->lanes);
    free(b->t);
}

/* ---- arguments ----------------------------------------------------------------- */

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* http://127.0.0.1:PORT[/PATH]: loopback only, by design. */
static int parse_endpoint(const char *url, const char *def_path, struct endpoint *ep)
{
    static const char prefix[] = "http://127.0.0.1:";
    const char *p = url, *slash;
    char port[8];
    unsigned v;

    if (strncmp(p, prefix, sizeof(prefix) - 1) != 0)
        goto bad;
    p += sizeof(prefix) - 1;
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    if (slash == p || (size_t)(slash - p) >= sizeof(port))
        goto bad;
    memcpy(port, p, (size_t)(slash - p));
    port[slash - p] = '\0';
    if (parse_uint(port, 1, 65535, &v) != 0)
        goto bad;
    if (*slash == '\0')
        slash = def_path;
    if (strlen(slash) > MAX_PATH_LEN || strcspn(slash, " \t\r\n") != strlen(slash))
        goto bad;
    ep->url = url;
    ep->port = (uint16_t)v;
    memcpy(ep->path, slash, strlen(slash) + 1);
    return 0;
bad:
    fprintf(stderr, "turns: bad URL '%s' (want http://127.0.0.1:PORT[/PATH])\n", url);
    return -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: myna_turns --mode myna --url http://127.0.0.1:PORT/webhook/ID --secret S\n"
            "                  --graph http://127.0.0.1:PORT [--llm http://127.0.0.1:PORT]\n"
            "                  [--turns N] [--first-sender N] [--rate N] [--connections N]\n"
            "                  [--window-ms MS] [--log FILE] [--timeout S]\n"
            "       myna_turns --mode direct --llm URL --graph URL [--turns N]\n"
            "                  [--connections N] [--timeout S]\n"
            "  --turns        turns, one chat each (5000, at most %u)\n"
            "  --first-sender number of the first chat, so that runs use new chats (0)\n"
            "  --rate         webhooks per second (default: as fast as they are answered)\n"
            "  --connections  connections to the ingress, or lanes in direct mode\n"
            "                 (16 / 32, at most %u)\n"
            "  --window-ms    the instance's batch window, taken off each latency (100)\n"
            "  --log          the myna serve log: the bot's turn_answered lines give answered_per_s\n"
            "  --timeout      seconds for the whole run (60, at most %u)\n",
            MAX_TURNS, MAX_CONNECTIONS, MAX_TIMEOUT_S);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "mode", required_argument, NULL, 'm' },
        { "url", required_argument, NULL, 'u' },
        { "graph", required_argument, NULL, 'g' },
        { "llm", required_argument, NULL, 'l' },
        { "secret", required_argument, NULL, 's' },
        { "turns", required_argument, NULL, 'n' },
        { "first-sender", required_argument, NULL, 'f' },
        { "rate", required_argument, NULL, 'r' },
        { "connections", required_argument, NULL, 'c' },
        { "window-ms", required_argument, NULL, 'w' },
        { "log", required_argument, NULL, 'L' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch, idx = 0;

    o->turns = 5000;
    o->window_ms = 100;
    o->timeout_s = 60;
    while ((ch = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        switch (ch) {
        case 'm':
            o->mode = strcmp(optarg, "myna") == 0     ? MODE_MYNA
                      : strcmp(optarg, "direct") == 0 ? MODE_DIRECT
                                                      : MODE_NONE;
            if (o->mode == MODE_NONE)
                goto bad;
            break;
        case 'u':
            if (parse_endpoint(optarg, "/", &o->myna) != 0)
                return 2;
            o->has_myna = 1;
            break;
        case 'g':
            if (parse_endpoint(optarg, "/v25.0/481516234200915/messages", &o->graph) != 0)
                return 2;
            o->has_graph = 1;
            break;
        case 'l':
            if (parse_endpoint(optarg, "/", &o->llm) != 0)
                return 2;
            o->has_llm = 1;
            break;
        case 's':
            if (optarg[0] == '\0')
                goto bad;
            o->secret = optarg;
            break;
        case 'n':
            if (parse_uint(optarg, 1, MAX_TURNS, &o->turns) != 0)
                goto bad;
            break;
        case 'f':
            if (parse_uint(optarg, 0, 9999999, &o->first_sender) != 0)
                goto bad;
            break;
        case 'r':
            if (parse_uint(optarg, 1, 1000000, &o->rate) != 0)
                goto bad;
            break;
        case 'c':
            if (parse_uint(optarg, 1, MAX_CONNECTIONS, &o->connections) != 0)
                goto bad;
            break;
        case 'w':
            if (parse_uint(optarg, 0, 600000, &o->window_ms) != 0)
                goto bad;
            break;
        case 'L':
            o->log = optarg;
            break;
        case 't':
            if (parse_uint(optarg, 1, MAX_TIMEOUT_S, &o->timeout_s) != 0)
                goto bad;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (o->connections == 0)
        o->connections = o->mode == MODE_DIRECT ? 32 : 16;
    if (optind != argc || !o->has_graph ||
        (o->mode == MODE_MYNA && (!o->has_myna || o->secret == NULL)) ||
        (o->mode == MODE_DIRECT && !o->has_llm) || o->mode == MODE_NONE ||
        o->first_sender + o->turns > 10000000u) {
        usage();
        return 2;
    }
    return 0;
bad:
    fprintf(stderr, "turns: bad value '%s' for --%s\n", optarg, longopts[idx].name);
    usage();
    return 2;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int rc = parse_args(argc, argv, &b.o);

    if (rc != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    if (setup(&b) != 0) {
        fprintf(stderr, "turns: setup failed\n");
        release(&b);
        return 1;
    }
    event_base_dispatch(b.base);
    rc = b.started ? report(&b) : 1;
    if (!b.started)
        fprintf(stderr, "turns: never started (%s)\n", b.stop_reason ? b.stop_reason : "?");
    release(&b);
    libevent_global_shutdown();
    return rc;
}
