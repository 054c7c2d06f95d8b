/* loadgen.c - Myna's own load generator for the webhook path.
 *
 * Keeps --connections keep-alive HTTP/1.1 connections to 127.0.0.1 with one
 * request in flight on each, all on one libevent loop. Every request is a
 * Cloud API webhook carrying one text message whose id was never sent before
 * (run nonce + counter), signed with X-Hub-Signature-256 when --secret is
 * given, so a server that dedupes by message id stores every request. The
 * latency of a request runs from queueing it to its last response byte.
 *
 *   myna_loadgen --url http://127.0.0.1:PORT/webhook/ID [--connections 64]
 *                [--duration 10] [--secret S] [--size 1500]
 *                [--max-requests 5000000]
 *
 * Prints one line on stdout:
 *   requests=N errors=E non200=K rps=R p50_ms=X p99_ms=Y max_ms=Z
 * requests: complete responses of any status; non200: those of them that
 * were not 200; errors: requests or connects that got no complete response
 * (failed, timed out, or still unanswered when the drain gave up);
 * rps: requests per second of the run; latencies over all requests, from a
 * log-linear histogram (at most 3% high) with the exact max. A breakdown
 * goes to stderr.
 *
 * Stopping: at --duration, --max-requests or SIGINT no new request is sent
 * and the ones in flight get up to DRAIN_S seconds to finish, so that the
 * count of 200 answers is what the server acknowledged; a second SIGINT
 * stops at once.
 *
 * Loopback only: it refuses any other address, because it measures this
 * machine and must never load someone else's. Exit 0 when at least one
 * response came back, 1 when none did or setup failed, 2 on usage errors.
 * Not library code: it prints and exits. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "core/evloop.h"

#define MAX_CONNECTIONS 1000           /* fits the 4-digit sender number */
#define MAX_DURATION_S 120
#define MAX_BODY_BYTES (4u << 20)      /* a little past the 3 MiB limit, to probe 413 */
#define MAX_REQUESTS 999999999999ULL   /* the id counter is 12 digits wide */
#define MAX_PATH_LEN 1024
#define DRAIN_S 5                      /* wait for answers in flight after the stop */
#define IO_TIMEOUT_S 10                /* no byte back for this long: the request failed */
#define READ_CHUNK 4096                /* bytes asked of each read */
#define RETRY_MS 20                    /* a dead server costs 50 connects/s per connection */
#define MAX_LINE 8192                  /* one status or header line of a response */
#define MAX_HEADER_BYTES (64u << 10)
#define MAX_RESP_BODY (64u << 20)

/* ---- latency histogram ---------------------------------------------------
 * Microseconds. 0..63 us get a bucket each; above, every power of two is cut
 * into 32 buckets, so a bucket is at most 1/32 (3.1%) wide relative to its
 * values: fine for p50/p99 at a fixed 11 KiB, where exact tracking of millions
 * of samples would not be. */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_LINEAR (2u * HIST_SUB)
#define HIST_SHIFTS 40
#define HIST_BUCKETS (HIST_LINEAR + HIST_SHIFTS * HIST_SUB)

struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n;
    uint64_t max_us;
};

static unsigned hist_index(uint64_t us)
{
    unsigned msb, shift, idx;

    if (us < HIST_LINEAR)
        return (unsigned)us;
    msb = 63u - (unsigned)__builtin_clzll(us);
    shift = msb - HIST_SUB_BITS;
    idx = HIST_LINEAR + (shift - 1u) * HIST_SUB + (unsigned)((us >> shift) - HIST_SUB);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1u;
}

/* Largest value that falls into bucket idx: percentiles err on the high side. */
static uint64_t hist_upper(unsigned idx)
{
    unsigned k, shift;
    uint64_t mant;

    if (idx < HIST_LINEAR)
        return idx;
    k = idx - HIST_LINEAR;
    shift = k / HIST_SUB + 1u;
    mant = k % HIST_SUB + HIST_SUB;
    return ((mant + 1u) << shift) - 1u;
}

static void hist_record(struct hist *h, uint64_t us)
{
    h->counts[hist_index(us)]++;
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
}

/* The value below which per10k / 10000 of the samples fall, in us. */
static uint64_t hist_percentile(const struct hist *h, unsigned per10k)
{
    uint64_t rank, seen = 0;
    unsigned i;

    if (h->n == 0)
        return 0;
    rank = (h->n * per10k + 9999u) / 10000u;
    if (rank == 0)
        rank = 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return hist_upper(i) < h->max_us ? hist_upper(i) : h->max_us;
    }
    return h->max_us;
}

/* ---- HTTP/1.x response parser --------------------------------------------
 * Just enough of RFC 9112 for a client with one request in flight: status
 * line, header fields, then a Content-Length body, no body (1xx, 204, 304)
 * or a body ending at close. Transfer-Encoding is refused: neither evhttp's
 * fixed replies nor Myna's use it, and a parser that guessed would count
 * garbage as answers. */
enum resp_state { RESP_STATUS, RESP_HEADERS, RESP_BODY, RESP_UNTIL_CLOSE, RESP_DONE };

struct resp {
    enum resp_state state;
    int status;
    int http_minor;
    int has_length;
    uint64_t length;
    uint64_t remaining;      /* body bytes still to come in RESP_BODY */
    int close;               /* the server closes after this response */
    int keep_alive;          /* "Connection: keep-alive", which HTTP/1.0 needs */
    size_t header_bytes;
};

static void resp_begin(struct resp *r)
{
    memset(r, 0, sizeof *r);
    r->state = RESP_STATUS;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 tchar: what a header name may be made of. */
static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Moves one LF- or CRLF-terminated line from in to out (NUL-terminated,
 * terminator dropped). 1 = a line, 0 = not complete yet, -1 = longer than
 * cap or containing a NUL, with *why set. */
static int read_line(struct evbuffer *in, char *out, size_t cap, const char **why)
{
    size_t eol_len = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);

    if (p.pos < 0) {
        if (evbuffer_get_length(in) >= cap) {
            *why = "response line too long";
            return -1;
        }
        return 0;
    }
    if ((size_t)p.pos >= cap) {
        *why = "response line too long";
        return -1;
    }
    evbuffer_remove(in, out, (size_t)p.pos);
    out[p.pos] = '\0';
    evbuffer_drain(in, eol_len);
    if (memchr(out, '\0', (size_t)p.pos) != NULL) {
        *why = "NUL byte in response head";
        return -1;
    }
    return 1;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" */
static int parse_status(struct resp *r, const char *line, const char **why)
{
    if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
        (line[12] != '\0' && line[12] != ' ')) {
        *why = "malformed status line";
        return -1;
    }
    r->http_minor = line[7] - '0';
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (r->status < 100 || r->status > 599) {
        *why = "status code out of range";
        return -1;
    }
    return 0;
}

static int parse_content_length(struct resp *r, const char *v, const char **why)
{
    uint64_t n = 0;

    if (*v == '\0')
        goto bad;
    for (; *v != '\0'; v++) {
        if (!is_digit(*v))
            goto bad;
        n = n * 10u + (uint64_t)(*v - '0');
        if (n > MAX_RESP_BODY) {
            *why = "response body too large";
            return -1;
        }
    }
    /* Two different lengths mean the framing cannot be trusted. */
    if (r->has_length && r->length != n) {
        *why = "conflicting content-length headers";
        return -1;
    }
    r->has_length = 1;
    r->length = n;
    return 0;
bad:
    *why = "malformed content-length";
    return -1;
}

/* Connection is a comma-separated token list; only close and keep-alive matter. */
static void parse_connection(struct resp *r, const char *v)
{
    while (*v != '\0') {
        size_t n;

        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        n = strcspn(v, ", \t");
        if (n == 5 && strncasecmp(v, "close", 5) == 0)
            r->close = 1;
        else if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0)
            r->keep_alive = 1;
        v += n;
    }
}

static int name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* One "name: value" line; the line is modified (value trimmed in place). */
static int parse_header(struct resp *r, char *line, const char **why)
{
    char *colon = strchr(line, ':');
    char *value, *end;
    size_t name_len, i;

    if (line[0] == ' ' || line[0] == '\t') {
        *why = "obsolete line folding in response header";
        return -1;
    }
    if (colon == NULL || colon == line) {
        *why = "malformed response header";
        return -1;
    }
    name_len = (size_t)(colon - line);
    for (i = 0; i < name_len; i++) {
        if (!is_tchar(line[i])) {
            *why = "malformed response header name";
            return -1;
        }
    }
    value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';

    if (name_is(line, name_len, "content-length"))
        return parse_content_length(r, value, why);
    if (name_is(line, name_len, "transfer-encoding")) {
        *why = "transfer-encoding in a response is not supported";
        return -1;
    }
    if (name_is(line, name_len, "connection"))
        parse_connection(r, value);
    return 0;
}

/* The empty line after the headers: decide how the body is framed. */
static int headers_done(struct resp *r, const char **why)
{
    if (r->status < 200) {
        if (r->status == 101) {
            *why = "unexpected 101 switching protocols";
            return -1;
        }
        resp_begin(r);    /* interim 1xx: the final response follows */
        return 0;
    }
    if (r->http_minor == 0 && !r->keep_alive)
        r->close = 1;
    if (r->status == 204 || r->status == 304) {
        r->state = RESP_DONE;
    } else if (r->has_length) {
        r->remaining = r->length;
        r->state = r->length > 0 ? RESP_BODY : RESP_DONE;
    } else {
        r->close = 1;     /* no length: the body ends when the server closes */
        r->state = RESP_UNTIL_CLOSE;
    }
    return 0;
}

/* Consumes what in holds of the response. 1 = complete, 0 = needs more
 * bytes (or the close, in RESP_UNTIL_CLOSE), -1 = malformed, *why set. */
static int resp_feed(struct resp *r, struct evbuffer *in, const char **why)
{
    char line[MAX_LINE];
    size_t avail, n;
    int rc;

    for (;;) {
        switch (r->state) {
        case RESP_STATUS:
        case RESP_HEADERS:
            rc = read_line(in, line, sizeof line, why);
            if (rc <= 0)
                return rc;
            r->header_bytes += strlen(line) + 2;
            if (r->header_bytes > MAX_HEADER_BYTES) {
                *why = "response head too large";
                return -1;
            }
            if (r->state == RESP_STATUS) {
                rc = parse_status(r, line, why);
                r->state = RESP_HEADERS;
            } else if (line[0] == '\0') {
                rc = headers_done(r, why);
            } else {
                rc = parse_header(r, line, why);
            }
            if (rc < 0)
                return -1;
            break;
        case RESP_BODY:
            avail = evbuffer_get_length(in);
            n = avail < r->remaining ? avail : (size_t)r->remaining;
            evbuffer_drain(in, n);
            r->remaining -= n;
            if (r->remaining > 0)
                return 0;
            r->state = RESP_DONE;
            break;
        case RESP_UNTIL_CLOSE:
            evbuffer_drain(in, evbuffer_get_length(in));
            return 0;
        case RESP_DONE:
            return 1;
        }
    }
}

/* ---- the generator -------------------------------------------------------- */

/* One Cloud API webhook with one text message. Every %-field has a fixed
 * width, so every body has the same length and the padding is sized once. */
#define BODY_FMT                                                                            \
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"302948571630214\","    \
    "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"             \
    "{\"display_phone_number\":\"79990001122\",\"phone_number_id\":\"481516234200915\"},"   \
    "\"contacts\":[{\"profile\":{\"name\":\"Bench User %04u\"},\"wa_id\":\"7916%07u\"}],"   \
    "\"messages\":[{\"from\":\"7916%07u\",\"id\":\"wamid.BENCH%s%012" PRIu64 "\","          \
    "\"timestamp\":\"%010lld\",\"type\":\"text\",\"text\":{\"body\":\"%.*s\"}}]},"           \
    "\"field\":\"messages\"}]}]}"

#define PAD_TEXT "Load test message from myna_loadgen, padding the body to its size. "

enum err_kind { ERR_CONNECT, ERR_IO, ERR_PROTO, ERR_TIMEOUT, ERR_KINDS };

static const char *const err_names[ERR_KINDS] = {
    "connect_errors", "io_errors", "protocol_errors", "timeouts",
};

struct opts {
    const char *url;
    uint16_t port;
    char path[MAX_PATH_LEN + 1];
    unsigned connections;
    unsigned duration_s;
    const char *secret;          /* NULL: no signature header */
    size_t size;
    uint64_t max_requests;
    int unique_senders;          /* every request from a new chat (one batch each) */
    uint64_t rate;               /* requests per second over all connections; 0 = as fast as possible */
};

struct loadgen;

struct conn {
    struct loadgen *lg;
    unsigned idx;                /* also the sender: one chat per connection */
    struct bufferevent *bev;     /* NULL while disconnected; connects and writes */
    struct event *rd;            /* reads the answers (conn_on_readable); with bev */
    struct evbuffer *in;         /* what came back and is not parsed yet */
    struct event *retry;         /* (re)connect timer */
    struct event *pace;          /* --rate: waits for this request's slot */
    struct resp resp;
    int connected;
    int in_flight;               /* a request was sent, its response is not complete */
    uint64_t sent_ns;
};

struct loadgen {
    struct opts o;
    struct event_base *base;
    struct sockaddr_in addr;
    struct conn *conns;
    struct event *ev_int, *ev_term, *ev_deadline, *ev_drain;
    EVP_MAC_CTX *mac;            /* keyed once; NULL without --secret */
    char *body;                  /* scratch for the body being sent */
    size_t body_len;
    char *pad;                   /* JSON-safe text that fills the body up to --size */
    size_t pad_len;
    char nonce[17];              /* per run: ids stay new across runs on one store */
    long long ts;
    uint64_t issued;
    unsigned in_flight;
    int stopping;                /* no new requests; waiting for those in flight */
    const char *stop_reason;
    uint64_t t_start_ns, t_stop_ns, t_last_ns;
    uint64_t responses, non200, reconnects, unfinished;
    uint64_t errors[ERR_KINDS];
    char last_error[160];
    struct hist hist;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- request bodies and signatures ---- */

static int body_format(const struct loadgen *lg, char *out, size_t cap, uint64_t seq,
                       unsigned sender, const char *pad, size_t pad_len)
{
    /* the name has 4 digits and the wa_id 7, whatever the sender: the body
     * length stays the same for every request */
    return snprintf(out, cap, BODY_FMT, sender % 10000u, sender % 10000000u, sender % 10000000u,
                    lg->nonce, seq, lg->ts, (int)pad_len, pad);
}

/* Sizes the padding so that bodies are --size bytes (or the bare minimum). */
static int body_init(struct loadgen *lg)
{
    static const char text[] = PAD_TEXT;
    int base_len;
    size_t i;

    base_len = body_format(lg, NULL, 0, 0, 0, "", 0);
    if (base_len < 0)
        return -1;
    lg->pad_len = 0;
    if (lg->o.size > (size_t)base_len)
        lg->pad_len = lg->o.size - (size_t)base_len;
    else if (lg->o.size < (size_t)base_len)
        fprintf(stderr, "loadgen: --size %zu is below the smallest webhook; sending %d bytes\n",
                lg->o.size, base_len);
    lg->pad = malloc(lg->pad_len + 1);
    lg->body_len = (size_t)base_len + lg->pad_len;
    lg->body = malloc(lg->body_len + 1);
    if (lg->pad == NULL || lg->body == NULL)
        return -1;
    for (i = 0; i < lg->pad_len; i++)
        lg->pad[i] = text[i % (sizeof text - 1)];
    lg->pad[lg->pad_len] = '\0';
    return 0;
}

/* Fills lg->body with request seq of sender; the length never changes. */
static void body_make(struct loadgen *lg, uint64_t seq, unsigned sender)
{
    int n = body_format(lg, lg->body, lg->body_len + 1, seq, sender, lg->pad, lg->pad_len);

    if (n < 0 || (size_t)n != lg->body_len) {
        fprintf(stderr, "loadgen: bug: body length %d, expected %zu\n", n, lg->body_len);
        abort();
    }
}

static void hex_encode(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static EVP_MAC_CTX *mac_new(const char *secret)
{
    static char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx;

    if (mac == NULL)
        return NULL;
    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);            /* the context keeps its own reference */
    if (ctx == NULL)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* out[65] = lowercase hex HMAC-SHA256 of data. 0 or -1. */
static int mac_sign(EVP_MAC_CTX *ctx, const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    size_t md_len = 0;

    /* A NULL key restarts with the key set in mac_new: no key schedule per request. */
    if (!EVP_MAC_init(ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(ctx, (const unsigned char *)data, len) ||
        !EVP_MAC_final(ctx, md, &md_len, sizeof md) || md_len != sizeof md)
        return -1;
    hex_encode(md, sizeof md, out);
    return 0;
}

/* mac_sign relies on re-initialising with a NULL key keeping the key, which
 * OpenSSL providers have got wrong before: check it against one-shot HMAC()
 * before sending a single signature that the server would reject. */
static int mac_self_check(EVP_MAC_CTX *ctx, const char *secret, const char *data, size_t len)
{
    unsigned char md[32];
    unsigned md_len = 0;
    char want[65], got[65];
    int i;

    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, len, md,
             &md_len) == NULL || md_len != sizeof md)
        return -1;
    hex_encode(md, sizeof md, want);
    for (i = 0; i < 2; i++) {
        if (mac_sign(ctx, data, len, got) != 0 || strcmp(got, want) != 0)
            return -1;
    }
    return 0;
}

/* ---- connections ---- */

static void conn_connect(struct conn *c);
static void conn_send(struct conn *c);

static void conn_on_pace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_send(arg);
}
static void lg_stop(struct loadgen *lg, const char *reason);

static void maybe_finish(struct loadgen *lg)
{
    if (lg->stopping && lg->in_flight == 0)
        event_base_loopbreak(lg->base);
}

static void conn_close(struct conn *c)
{
    if (c->rd != NULL) {
        event_free(c->rd);
        c->rd = NULL;
    }
    if (c->in != NULL)
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
    if (c->bev != NULL) {
        /* Safe inside this bufferevent's own callbacks: libevent holds a
         * reference while it runs them and frees only after they return. */
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    c->connected = 0;
}

static void conn_retry_after(struct conn *c, unsigned ms)
{
    struct timeval tv = { (time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000 };

    evtimer_add(c->retry, &tv);
}

/* Drops the connection and counts the error; the request in flight, if any,
 * is lost (never resent: its id must stay unique). Reconnects after RETRY_MS
 * so that a dead server is probed, not hammered. */
static void conn_fail(struct conn *c, enum err_kind kind, const char *why)
{
    struct loadgen *lg = c->lg;

    lg->errors[kind]++;
    snprintf(lg->last_error, sizeof lg->last_error, "%s", why);
    if (c->in_flight) {
        c->in_flight = 0;
        lg->in_flight--;
    }
    conn_close(c);
    if (lg->stopping)
        maybe_finish(lg);
    else
        conn_retry_after(c, RETRY_MS);
}

/* The server closed (or asked to close) a healthy connection: not an error. */
static void conn_restart(struct conn *c)
{
    conn_close(c);
    c->lg->reconnects++;
    if (c->lg->stopping)
        maybe_finish(c->lg);
    else
        conn_retry_after(c, 0);   /* from the loop, not inside the old one's callback */
}

static void response_done(struct conn *c)
{
    struct loadgen *lg = c->lg;
    uint64_t now = now_ns();

    hist_record(&lg->hist, (now - c->sent_ns) / 1000u);
    lg->responses++;
    if (c->resp.status != 200)
        lg->non200++;
    lg->t_last_ns = now;
    c->in_flight = 0;
    lg->in_flight--;

    if (c->resp.close) {
        conn_restart(c);
    } else if (evbuffer_get_length(c->in) > 0) {
        /* Nothing was asked: bytes now mean the framing went wrong. */
        conn_fail(c, ERR_PROTO, "bytes after the response");
    } else if (lg->stopping) {
        conn_close(c);
        maybe_finish(lg);
    } else {
        conn_send(c);
    }
}

/* The server closed the connection. */
static void conn_on_eof(struct conn *c)
{
    if (c->in_flight && c->resp.state == RESP_UNTIL_CLOSE) {
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
        response_done(c);      /* resp.close is set: it restarts */
    } else if (!c->in_flight) {
        conn_restart(c);       /* an idle keep-alive connection timed out */
    } else {
        conn_fail(c, ERR_IO, "connection closed mid-response");
    }
}

/* Reads what the socket holds straight into c->in. The bufferevent's own
 * reading would first ask the kernel how much there is (an ioctl per
 * read), a system call the loadgen's closed loop pays in the server's
 * latency. */
static void conn_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    const char *why = "malformed response";
    struct evbuffer_iovec vec;
    ssize_t n;
    int rc;

    if (what & EV_TIMEOUT) {
        if (c->in_flight)
            conn_fail(c, ERR_TIMEOUT, "no answer within the i/o timeout");
        return;
    }
    if (evbuffer_reserve_space(c->in, READ_CHUNK, &vec, 1) < 1) {
        conn_fail(c, ERR_IO, "out of memory");
        return;
    }
    do
        n = read(fd, vec.iov_base, vec.iov_len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_fail(c, ERR_IO, strerror(errno));
        return;
    }
    if (n == 0) {
        conn_on_eof(c);
        return;
    }
    vec.iov_len = (size_t)n;
    evbuffer_commit_space(c->in, &vec, 1);
    if (!c->in_flight) {
        conn_fail(c, ERR_PROTO, "bytes received with no request in flight");
        return;
    }
    rc = resp_feed(&c->resp, c->in, &why);
    if (rc < 0)
        conn_fail(c, ERR_PROTO, why);
    else if (rc > 0)
        response_done(c);
}

/* Connect, write timeout and write errors: reading is conn_on_readable's. */
static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    struct timeval tv = { IO_TIMEOUT_S, 0 };
    int err = EVUTIL_SOCKET_ERROR();

    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        c->rd = event_new(c->lg->base, bufferevent_getfd(bev), EV_READ | EV_PERSIST,
                          conn_on_readable, c);
        if (c->rd == NULL || event_add(c->rd, &tv) != 0)
            conn_fail(c, ERR_CONNECT, "cannot watch the connection");
        else
            conn_send(c);
    } else if (what & BEV_EVENT_TIMEOUT) {
        conn_fail(c, ERR_TIMEOUT, c->connected ? "request not written within the i/o timeout"
                                               : "connect timed out");
    } else if (what & BEV_EVENT_EOF) {
        conn_on_eof(c);
    } else {
        conn_fail(c, c->connected ? ERR_IO : ERR_CONNECT, evutil_socket_error_to_string(err));
    }
}

static void conn_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (!c->lg->stopping && c->bev == NULL)
        conn_connect(c);
}

static void conn_connect(struct conn *c)
{
    struct loadgen *lg = c->lg;
    struct timeval tv = { IO_TIMEOUT_S, 0 };
    int one = 1;
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        conn_fail(c, ERR_CONNECT, strerror(errno));
        return;
    }
    /* Each request is written whole, then answered: Nagle would only add delay. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->bev = bufferevent_socket_new(lg->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        conn_fail(c, ERR_CONNECT, "cannot create bufferevent");
        return;
    }
    bufferevent_setcb(c->bev, NULL, NULL, conn_on_event, c);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    bufferevent_enable(c->bev, EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&lg->addr, sizeof lg->addr) != 0)
        conn_fail(c, ERR_CONNECT, strerror(errno));
}

/* Writes head + body at once; what the socket does not take (rarely: its
 * buffer is empty between requests of a closed loop) goes to the
 * bufferevent, which sends it when the socket is writable. Writing through
 * the bufferevent alone would wait for a loop turn and switch the write
 * interest on and off, two epoll_ctl per request: the loadgen's own cost,
 * which in a closed loop delays the server's next request. */
static int conn_write(struct conn *c, const char *head, size_t head_len)
{
    struct loadgen *lg = c->lg;
    struct iovec iov[2] = { { (void *)head, head_len }, { lg->body, lg->body_len } };
    size_t done = 0;
    ssize_t n;

    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        do
            n = writev(bufferevent_getfd(c->bev), iov, 2);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        done = n > 0 ? (size_t)n : 0;
    }
    if (done < head_len &&
        bufferevent_write(c->bev, head + done, head_len - done) != 0)
        return -1;
    done = done > head_len ? done - head_len : 0;
    if (done < lg->body_len &&
        bufferevent_write(c->bev, lg->body + done, lg->body_len - done) != 0)
        return -1;
    return 0;
}

/* Queues the next request: a new id, its signature, one write. */
static void conn_send(struct conn *c)
{
    struct loadgen *lg = c->lg;
    char head[512], sig[65];
    int n;

    if (lg->stopping) {
        conn_close(c);
        maybe_finish(lg);
        return;
    }
    if (lg->issued >= lg->o.max_requests) {
        lg_stop(lg, "max_requests");    /* closes c too: it is idle */
        return;
    }
    if (lg->o.rate > 0) {  /* request n goes at t_start + n / rate, not before */
        uint64_t due = lg->t_start_ns + lg->issued * 1000000000ull / lg->o.rate, now = now_ns();
        if (due > now) {
            struct timeval tv = { (time_t)((due - now) / 1000000000ull),
                                  (suseconds_t)((due - now) % 1000000000ull / 1000) };
            evtimer_add(c->pace, &tv);
            return;
        }
    }
    body_make(lg, lg->issued, lg->o.unique_senders ? (unsigned)(lg->issued % 10000000u) : c->idx);
    lg->issued++;
    if (lg->mac != NULL && mac_sign(lg->mac, lg->body, lg->body_len, sig) != 0) {
        fprintf(stderr, "loadgen: HMAC failed\n");
        abort();
    }
    n = snprintf(head, sizeof head,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: myna-loadgen\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n%s%s%s\r\n",
                 lg->o.path, (unsigned)lg->o.port, lg->body_len,
                 lg->mac != NULL ? "X-Hub-Signature-256: sha256=" : "",
                 lg->mac != NULL ? sig : "", lg->mac != NULL ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head) {
        fprintf(stderr, "loadgen: bug: request head does not fit\n");
        abort();
    }
    resp_begin(&c->resp);
    c->sent_ns = now_ns();
    if (conn_write(c, head, (size_t)n) != 0) {
        conn_fail(c, ERR_IO, "cannot send the request");
        return;
    }
    c->in_flight = 1;
    lg->in_flight++;
}

/* ---- run control ---- */

/* No new requests from here; idle connections go now, busy ones when their
 * answer is in (or at the drain deadline). */
static void lg_stop(struct loadgen *lg, const char *reason)
{
    struct timeval drain = { DRAIN_S, 0 };
    unsigned i;

    if (lg->stopping)
        return;
    lg->stopping = 1;
    lg->stop_reason = reason;
    lg->t_stop_ns = now_ns();
    for (i = 0; i < lg->o.connections; i++) {
        struct conn *c = &lg->conns[i];

        evtimer_del(c->retry);
        evtimer_del(c->pace);
        if (!c->in_flight)
            conn_close(c);
    }
    evtimer_add(lg->ev_drain, &drain);
    maybe_finish(lg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_stop(arg, "duration");
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *lg = arg;

    (void)fd;
    (void)what;
    lg->unfinished = lg->in_flight;
    event_base_loopbreak(lg->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct loadgen *lg = arg;

    (void)sig;
    (void)what;
    if (lg->stopping) {           /* a second signal: do not wait for the drain */
        lg->unfinished = lg->in_flight;
        event_base_loopbreak(lg->base);
    } else {
        lg_stop(lg, "signal");
    }
}

static int lg_init(struct loadgen *lg)
{
    unsigned char rnd[8];
    unsigned i;

    lg->addr.sin_family = AF_INET;
    lg->addr.sin_port = htons(lg->o.port);
    lg->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lg->ts = (long long)time(NULL);
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    for (i = 0; i < sizeof rnd; i++)
        snprintf(lg->nonce + 2 * i, 3, "%02X", rnd[i]);
    if (body_init(lg) != 0)
        return -1;
    if (lg->o.secret != NULL) {
        body_make(lg, 0, 0);
        lg->mac = mac_new(lg->o.secret);
        if (lg->mac == NULL || mac_self_check(lg->mac, lg->o.secret, lg->body, lg->body_len) != 0) {
            fprintf(stderr, "loadgen: HMAC-SHA256 setup failed\n");
            return -1;
        }
    }
    lg->base = myna_event_base_new();
    if (lg->base == NULL)
        return -1;
    lg->ev_int = evsignal_new(lg->base, SIGINT, on_signal, lg);
    lg->ev_term = evsignal_new(lg->base, SIGTERM, on_signal, lg);
    lg->ev_deadline = evtimer_new(lg->base, on_deadline, lg);
    lg->ev_drain = evtimer_new(lg->base, on_drain_timeout, lg);
    lg->conns = calloc(lg->o.connections, sizeof *lg->conns);
    if (lg->ev_int == NULL || lg->ev_term == NULL || lg->ev_deadline == NULL ||
        lg->ev_drain == NULL || lg->conns == NULL)
        return -1;
    if (evsignal_add(lg->ev_int, NULL) != 0 || evsignal_add(lg->ev_term, NULL) != 0)
        return -1;
    for (i = 0; i < lg->o.connections; i++) {
        lg->conns[i].lg = lg;
        lg->conns[i].idx = i;
        lg->conns[i].retry = evtimer_new(lg->base, conn_on_retry, &lg->conns[i]);
        lg->conns[i].pace = evtimer_new(lg->base, conn_on_pace, &lg->conns[i]);
        lg->conns[i].in = evbuffer_new();
        if (lg->conns[i].retry == NULL || lg->conns[i].pace == NULL || lg->conns[i].in == NULL)
            return -1;
    }
    return 0;
}

static void lg_release(struct loadgen *lg)
{
    unsigned i;

    if (lg->conns != NULL) {
        for (i = 0; i < lg->o.connections; i++) {
            conn_close(&lg->conns[i]);
            if (lg->conns[i].retry != NULL)
                event_free(lg->conns[i].retry);
            if (lg->conns[i].pace != NULL)
                event_free(lg->conns[i].pace);
            if (lg->conns[i].in != NULL)
                evbuffer_free(lg->conns[i].in);
        }
        free(lg->conns);
    }
    if (lg->ev_int != NULL)
        event_free(lg->ev_int);
    if (lg->ev_term != NULL)
        event_free(lg->ev_term);
    if (lg->ev_deadline != NULL)
        event_free(lg->ev_deadline);
    if (lg->ev_drain != NULL)
        event_free(lg->ev_drain);
    if (lg->base != NULL)
        event_base_free(lg->base);
    EVP_MAC_CTX_free(lg->mac);
    free(lg->body);
    free(lg->pad);
}

static void lg_run(struct loadgen *lg)
{
    struct timeval dur = { (time_t)lg->o.duration_s, 0 };
    unsigned i;

    lg->t_start_ns = now_ns();
    evtimer_add(lg->ev_deadline, &dur);
    for (i = 0; i < lg->o.connections; i++)
        conn_connect(&lg->conns[i]);
    event_base_dispatch(lg->base);
    if (!lg->stopping) {
        lg->stop_reason = "loop ended";
        lg->t_stop_ns = now_ns();
    }
}

/* Share of one core this process used since it started, in percent. Near 100
 * the loadgen, not the server, set the pace: the figures are its ceiling. */
static double self_cpu_pct(double elapsed_s)
{
    struct rusage ru;
    double cpu_s;

    if (elapsed_s <= 0 || getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return 100.0 * cpu_s / elapsed_s;
}

static void lg_report(const struct loadgen *lg)
{
    /* The run lasts until the stop or the last answer drained after it,
     * whichever is later; a drain that times out adds nothing. */
    uint64_t end = lg->t_last_ns > lg->t_stop_ns ? lg->t_last_ns : lg->t_stop_ns;
    double elapsed_s = (double)(end - lg->t_start_ns) / 1e9;
    uint64_t n_err;
    unsigned k;

    /* Requests still unanswered when the drain gave up failed too. */
    n_err = lg->unfinished;
    for (k = 0; k < ERR_KINDS; k++)
        n_err += lg->errors[k];
    printf("requests=%" PRIu64 " errors=%" PRIu64 " non200=%" PRIu64 " rps=%.0f"
           " p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
           lg->responses, n_err, lg->non200, elapsed_s > 0 ? (double)lg->responses / elapsed_s : 0.0,
           (double)hist_percentile(&lg->hist, 5000) / 1000.0,
           (double)hist_percentile(&lg->hist, 9900) / 1000.0, (double)lg->hist.max_us / 1000.0);
    fflush(stdout);
    fprintf(stderr, "loadgen: elapsed_s=%.3f cpu_pct=%.0f sent=%" PRIu64 " ok=%" PRIu64
            " body_bytes=%zu connections=%u stop=%s reconnects=%" PRIu64 " unfinished=%" PRIu64,
            elapsed_s, self_cpu_pct(elapsed_s), lg->issued, lg->responses - lg->non200,
            lg->body_len, lg->o.connections,
            lg->stop_reason != NULL ? lg->stop_reason : "none", lg->reconnects, lg->unfinished);
    for (k = 0; k < ERR_KINDS; k++)
        fprintf(stderr, " %s=%" PRIu64, err_names[k], lg->errors[k]);
    if (lg->last_error[0] != '\0')
        fprintf(stderr, " last_error=\"%s\"", lg->last_error);
    fprintf(stderr, "\n");
}

/* ---- command line ---- */

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!is_digit(s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Accepts only http://127.0.0.1:PORT/PATH. */
static int parse_url(struct opts *o, const char *url)
{
    static const char prefix[] = "http://127.0.0.1:";
    const char *p, *slash;
    char port[8];
    uint64_t v;
    size_t i;

    if (strncmp(url, prefix, sizeof prefix - 1) != 0) {
        fprintf(stderr, "loadgen: refusing '%s': only http://127.0.0.1:PORT/PATH is allowed\n", url);
        return -1;
    }
    p = url + sizeof prefix - 1;
    slash = strchr(p, '/');
    if (slash == NULL || slash == p || (size_t)(slash - p) >= sizeof port)
        goto bad;
    memcpy(port, p, (size_t)(slash - p));
    port[slash - p] = '\0';
    if (parse_u64(port, 1, 65535, &v) != 0)
        goto bad;
    if (strlen(slash) > MAX_PATH_LEN)
        goto bad;
    /* The path goes into the request line verbatim: no spaces or controls. */
    for (i = 0; slash[i] != '\0'; i++) {
        if ((unsigned char)slash[i] <= ' ' || slash[i] == 0x7f)
            goto bad;
    }
    o->port = (uint16_t)v;
    memcpy(o->path, slash, strlen(slash) + 1);
    o->url = url;
    return 0;
bad:
    fprintf(stderr, "loadgen: bad --url '%s' (want http://127.0.0.1:PORT/PATH)\n", url);
    return -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: myna_loadgen --url http://127.0.0.1:PORT/webhook/ID [--connections N]\n"
            "                    [--duration S] [--secret APP_SECRET] [--size BYTES]\n"
            "                    [--max-requests N] [--unique-senders] [--rate N]\n"
            "  --connections  keep-alive connections, one request in flight each (64, 1..%u)\n"
            "  --duration     seconds of load (10, at most %u)\n"
            "  --secret       sign each body with X-Hub-Signature-256 (none by default)\n"
            "  --size         body size in bytes (1500, at most %u)\n"
            "  --max-requests stop after this many requests (5000000)\n"
            "  --unique-senders every request from a new chat (default: one chat per connection)\n"
            "  --rate         at most N requests per second, evenly spread (default: closed loop)\n",
            MAX_CONNECTIONS, MAX_DURATION_S, MAX_BODY_BYTES);
}

/* 0, or 2 (the exit code) after a message. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "url", required_argument, NULL, 'u' },
        { "connections", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'd' },
        { "secret", required_argument, NULL, 's' },
        { "size", required_argument, NULL, 'b' },
        { "max-requests", required_argument, NULL, 'm' },
        { "unique-senders", no_argument, NULL, 'U' },
        { "rate", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t v;
    int ch, idx = 0;

    o->connections = 64;
    o->duration_s = 10;
    o->size = 1500;
    o->max_requests = 5000000;
    while ((ch = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        switch (ch) {
        case 'u':
            if (parse_url(o, optarg) != 0)
                return 2;
            break;
        case 'c':
            if (parse_u64(optarg, 1, MAX_CONNECTIONS, &v) != 0)
                goto bad;
            o->connections = (unsigned)v;
            break;
        case 'd':
            if (parse_u64(optarg, 1, UINT32_MAX, &v) != 0)
                goto bad;
            if (v > MAX_DURATION_S) {
                fprintf(stderr, "loadgen: --duration capped at %u s\n", MAX_DURATION_S);
                v = MAX_DURATION_S;
            }
            o->duration_s = (unsigned)v;
            break;
        case 's':
            if (optarg[0] == '\0')
                goto bad;
            o->secret = optarg;
            break;
        case 'b':
            if (parse_u64(optarg, 1, MAX_BODY_BYTES, &v) != 0)
                goto bad;
            o->size = (size_t)v;
            break;
        case 'm':
            if (parse_u64(optarg, 1, MAX_REQUESTS, &v) != 0)
                goto bad;
            o->max_requests = v;
            break;
        case 'U':
            o->unique_senders = 1;
            break;
        case 'r':
            if (parse_u64(optarg, 1, 1000000, &v) != 0)
                goto bad;
            o->rate = v;
            break;
        default:    /* --help too */
            usage();
            return 2;
        }
    }
    if (optind != argc || o->url == NULL) {
        usage();
        return 2;
    }
    return 0;
bad:
    fprintf(stderr, "loadgen: bad value '%s' for --%s\n", optarg, longopts[idx].name);
    usage();
    return 2;
}

int main(int argc, char **argv)
{
    static struct loadgen lg;    /* static: the histogram is 11 KiB */
    int rc;

    rc = parse_args(argc, argv, &lg.o);
    if (rc != 0)
        return rc;
    /* A server that hangs up mid-request must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    if (lg_init(&lg) != 0) {
        fprintf(stderr, "loadgen: setup failed\n");
        lg_release(&lg);
        return 1;
    }
    lg_run(&lg);
    lg_report(&lg);
    rc = lg.responses > 0 ? 0 : 1;
    lg_release(&lg);
    libevent_global_shutdown();
    return rc;
}
