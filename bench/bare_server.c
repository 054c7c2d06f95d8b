/* bare_server.c - the ceiling of this machine for the webhook path.
 *
 * One libevent evhttp server on one thread that takes every POST, makes its
 * body contiguous and answers 200 "ok" (text/plain): no signature check, no
 * parse, no store. Whatever Myna does on top of HTTP shows up as the gap
 * between this server's figures and Myna's, measured by the same load
 * generator in the same run (bench/run.sh), which is the only comparison
 * that survives moving to another machine.
 *
 * It sets the limits a real Myna listener sets (3 MiB bodies, as
 * max_body_bytes defaults to, and the 30 s http_timeout_s) and serves its
 * connections as Myna's listeners do (net/http_server.h: each answer
 * written at once, each connection's read interest kept in the kernel), so
 * that both servers do the same bookkeeping and system calls per request.
 *
 *   usage: myna_bare_server [--defer] [--plain] ADDR:PORT
 *          (loopback only; port 0 = any free)
 *
 * --defer answers each request on the next turn of the loop instead of inside
 * its callback, all pending answers together: the least any server must do
 * that answers only after something else finished (Myna answers after its
 * commit). It is the fair ceiling for a durable ingress on evhttp.
 * --plain serves with evhttp alone (evhttp_send_reply, nothing of
 * net/http_server.h): what plain libevent does, for reference.
 *
 * Logs key=value lines on stderr; once listening:
 *   level=info proc=bare_server event=ready public=127.0.0.1:PORT
 * SIGTERM or SIGINT stops it; exit 0 after a clean stop, 1 on setup failure,
 * 2 on a usage error. Not library code: it prints and exits. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#include "core/evloop.h"
#include "net/http_server.h"

#define MAX_BODY_BYTES (3u << 20)     /* Myna's max_body_bytes default ("3m") */
#define MAX_HEADERS_BYTES (64u << 10)
#define HTTP_TIMEOUT_S 30             /* Myna's http_timeout_s default */

struct server {
    struct event_base *base;
    struct evhttp *http;
    struct evbuffer *reply;           /* reused: evhttp_send_reply empties it */
    struct event *ev_term, *ev_int;
    uint64_t n_requests;
    int defer, plain;
    struct myna_http_conns *conns;    /* NULL with --plain */
    int64_t n_conns;
    struct event *flush;              /* --defer: answers the held requests */
    struct evhttp_request **held;
    size_t n_held, cap_held;
};

/* Splits "A.B.C.D:PORT" into *sin. Loopback only: a benchmark server has no
 * business on a network interface. 0, or -1 with a message printed. */
static int parse_addr(const char *arg, struct sockaddr_in *sin)
{
    const char *colon = strrchr(arg, ':');
    char host[INET_ADDRSTRLEN];
    char *end;
    unsigned long port;
    size_t host_len;

    if (colon == NULL || colon == arg || colon[1] == '\0')
        goto bad;
    host_len = (size_t)(colon - arg);
    if (host_len >= sizeof host)
        goto bad;
    memcpy(host, arg, host_len);
    host[host_len] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port > 65535 || colon[1] == '-' || colon[1] == '+')
        goto bad;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        goto bad;
    if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "myna_bare_server: refusing '%s': loopback (127.x.x.x) only\n", arg);
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "myna_bare_server: bad address '%s' (want A.B.C.D:PORT)\n", arg);
    return -1;
}

static void answer(struct server *s, struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evbuffer_add(s->reply, "ok", 2);
    if (s->plain)
        evhttp_send_reply(req, HTTP_OK, "OK", s->reply);
    else
        myna_http_reply_now(req, HTTP_OK, "OK", s->reply);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < s->n_held; i++)
        answer(s, s->held[i]);
    s->n_held = 0;
}

/* --defer: keeps req for on_flush, which runs on the next turn of the loop. */
static int hold(struct server *s, struct evhttp_request *req)
{
    if (s->n_held == s->cap_held) {
        size_t cap = s->cap_held ? s->cap_held * 2 : 256;
        struct evhttp_request **v = realloc(s->held, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        s->held = v;
        s->cap_held = cap;
    }
    s->held[s->n_held++] = req;
    event_active(s->flush, EV_TIMEOUT, 0);
    return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);

    /* A real handler needs the body in one piece (HMAC, JSON parse), and
     * evbuffer_pullup is what pays for that: keep that cost in the ceiling. */
    if (len > 0 && evbuffer_pullup(in, -1) == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_drain(in, len);
    s->n_requests++;
    myna_http_conns_request(s->conns, req);  /* NULL ok */
    if (!s->defer)
        answer(s, req);
    else if (hold(s, req) != 0)
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;

    (void)sig;
    (void)what;
    event_base_loopbreak(s->base);
}

/* The port the kernel picked when asked for port 0. */
static unsigned bound_port(struct evhttp_bound_socket *bs)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;

    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl) != 0)
        return 0;
    return ntohs(sin.sin_port);
}

static int server_start(struct server *s, const struct sockaddr_in *sin)
{
    char host[INET_ADDRSTRLEN];
    struct evhttp_bound_socket *bs;
    unsigned port;

    s->base = myna_event_base_new();
    if (s->base == NULL)
        return -1;
    s->http = evhttp_new(s->base);
    s->reply = evbuffer_new();
    s->ev_term = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->ev_int = evsignal_new(s->base, SIGINT, on_signal, s);
    s->flush = event_new(s->base, -1, 0, on_flush, s);
    if (!s->plain && (s->conns = myna_http_conns_new(s->base, &s->n_conns)) == NULL)
        return -1;
    if (s->http == NULL || s->reply == NULL || s->ev_term == NULL || s->ev_int == NULL ||
        s->flush == NULL)
        return -1;
    if (evsignal_add(s->ev_term, NULL) != 0 || evsignal_add(s->ev_int, NULL) != 0)
        return -1;
    evhttp_set_max_body_size(s->http, MAX_BODY_BYTES);
    evhttp_set_max_headers_size(s->http, MAX_HEADERS_BYTES);
    evhttp_set_timeout(s->http, HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_POST);
    evhttp_set_gencb(s->http, on_request, s);

    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    bs = evhttp_bind_socket_with_handle(s->http, host, ntohs(sin->sin_port));
    if (bs == NULL) {
        fprintf(stderr, "level=error proc=bare_server event=bind_failed public=%s:%u errno=%d err=\"%s\"\n",
                host, (unsigned)ntohs(sin->sin_port), errno, strerror(errno));
        return -1;
    }
    port = bound_port(bs);
    if (port == 0)
        return -1;
    fprintf(stderr, "level=info proc=bare_server event=ready public=%s:%u\n", host, port);
    return 0;
}

static void server_release(struct server *s)
{
    if (s->http != NULL)
        evhttp_free(s->http);   /* closes the listener and live connections */
    myna_http_conns_free(s->conns);
    if (s->flush != NULL)
        event_free(s->flush);
    free(s->held);
    if (s->reply != NULL)
        evbuffer_free(s->reply);
    if (s->ev_term != NULL)
        event_free(s->ev_term);
    if (s->ev_int != NULL)
        event_free(s->ev_int);
    if (s->base != NULL)
        event_base_free(s->base);
    memset(s, 0, sizeof *s);
}

int main(int argc, char **argv)
{
    struct server s;
    struct sockaddr_in sin;
    int rc = 0;

    memset(&s, 0, sizeof s);
    for (; argc > 2 && argv[1][0] == '-'; argv++, argc--) {
        if (strcmp(argv[1], "--defer") == 0)
            s.defer = 1;
        else if (strcmp(argv[1], "--plain") == 0)
            s.plain = 1;
        else
            break;
    }
    if (argc != 2) {
        fprintf(stderr,
                "usage: myna_bare_server [--defer] [--plain] ADDR:PORT   (e.g. 127.0.0.1:0)\n");
        return 2;
    }
    if (parse_addr(argv[1], &sin) != 0)
        return 2;
    /* A client that hangs up mid-reply must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);

    if (server_start(&s, &sin) != 0) {
        fprintf(stderr, "level=error proc=bare_server event=start_failed\n");
        rc = 1;
    } else if (event_base_dispatch(s.base) < 0) {
        rc = 1;
    } else {
        fprintf(stderr, "level=info proc=bare_server event=stopped requests=%" PRIu64 "\n",
                s.n_requests);
    }
    server_release(&s);
    libevent_global_shutdown();
    return rc;
}
