/* http_server.h - what Myna adds to evhttp to serve with fewer system calls:
 * answers written at once, and connections whose read interest stays put.
 * The master's listeners use both; so does the benchmark's bare server, so
 * that its ceiling stays a ceiling.
 *
 * myna_http_reply_now: evhttp_send_reply only queues an answer, and
 * libevent writes it on a later turn of the loop, when the socket reports
 * writable: for an answer given after other work (the ingress answers after
 * its commit), that is one more turn and two more epoll_ctl calls. This
 * writes the queued answer at once, the way the bufferevent's own write
 * callback does (the output buffer's front is frozen outside that
 * callback), then runs evhttp's write callback through bufferevent_trigger,
 * which ends the request and starts reading the next one as it would have
 * after libevent's write. A write that cannot finish (full socket buffer,
 * error) is left to libevent, as before.
 *
 * myna_http_conns: libevent 2.1 has no hook for a new evhttp connection,
 * so a connection is known from its first request on
 * (myna_http_conns_request) and forgotten in evhttp's close callback, which
 * libevent runs before it closes the socket. Three uses:
 *
 * - The exact count of open connections, for /metrics.
 *
 * - What they have still to write, so that a master that stops sends its
 *   last answers whole.
 *
 * - The read watch. evhttp stops reading a connection while its request
 *   waits for an answer and reads again after the answer, and each switch
 *   is an epoll_ctl call: two system calls per request, since the two
 *   switches happen on different turns of the loop. Each connection gets a
 *   second read event on its socket that does nothing, so the socket's
 *   interest in the kernel never changes and neither call is made. The
 *   event fires beside evhttp's when bytes come. It fires on its own only
 *   when bytes or a hang-up come while evhttp is not reading (a pipelined
 *   request, a body in many pieces, a client gone); on its third firing
 *   without a new request it steps aside until the next request, so the
 *   loop never spins on a socket nobody reads.
 *
 * myna_http_bound_input: libevent 2.1 bounds the request line, the headers
 * and the body, but not a chunked body's chunk-size line: a client that
 * sends "Transfer-Encoding: chunked" and then digits without a line end is
 * read for ever, into memory, and every read scans all it holds again for
 * the end of the line. A read high-watermark on each connection's
 * bufferevent stops reading past max bytes not yet parsed: a body chunk of
 * up to the body limit still fits, and such a client holds at most max
 * bytes instead of everything it sends. A connection whose input reaches
 * max is failed as by a read timeout, and evhttp closes it: with reading
 * stopped, libevent's read timeout would never fire.
 *
 * myna_accept_guard: when accept fails for want of file descriptors
 * (EMFILE, ENFILE) or memory, libevent's listener stays on and tries again
 * on the next turn, so the loop spins at full CPU and starves the open
 * connections, the very ones whose end would free descriptors. A guarded
 * listener pauses for 100 ms instead (the kernel queues new connections
 * meanwhile, up to the backlog) and logs event=accept_paused at most once
 * a second. libevent hands the error callback only the listener (its other
 * argument is evhttp's), so the guards are found in a list kept by this
 * file: loop thread only. */
#ifndef MYNA_NET_HTTP_SERVER_H
#define MYNA_NET_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct myna_accept_guard;
struct myna_http_conns;

/* evhttp_send_reply for every answer of Myna's listeners: the answer to a
 * HEAD request gets the headers a GET would, Content-Length included, and
 * no body (RFC 9110 9.3.2). libevent 2.1 writes the body after a HEAD
 * answer's headers as well, without a Content-Length, so a client that
 * keeps the connection read it as the start of its next answer. body
 * (NULL ok) stays the caller's; it is emptied, as evhttp_send_reply does. */
void myna_http_reply(struct evhttp_request *req, int code, const char *reason,
                     struct evbuffer *body);

/* 1 if req's body length could be read two ways: two Content-Length
 * headers that differ, or a Content-Length beside a Transfer-Encoding.
 * libevent takes the first length, or the chunks; a proxy in front that
 * took the other would see what follows as part of this request, and
 * Myna as a request of its own (request smuggling). Such a request is
 * answered 400 and its connection closed (RFC 9112 6.3). Else 0. */
int myna_http_length_ambiguous(struct evhttp_request *req);

/* myna_http_reply(req, code, reason, body), then the first write now.
 * The write is a plain writev: the process must ignore SIGPIPE (the master
 * does), or a client gone before its answer would end it. */
void myna_http_reply_now(struct evhttp_request *req, int code, const char *reason,
                         struct evbuffer *body);

/* *gauge (borrowed, outlives the set) follows the open connections. NULL
 * when out of memory. */
struct myna_http_conns *myna_http_conns_new(struct event_base *base, int64_t *gauge);
/* Call after evhttp_free of every listener (their connections are closed
 * by then); frees what is left. NULL ok. */
void myna_http_conns_free(struct myna_http_conns *cs);
/* For every request the listeners receive (cs NULL: nothing). Never fails:
 * out of memory, a connection is served without its watch or count. It
 * takes the connection's close callback: nothing else may set it. */
void myna_http_conns_request(struct myna_http_conns *cs, struct evhttp_request *req);
/* Bytes of answers its open connections hold not yet written to their
 * sockets (0 for NULL): a process that stops waits for these, or a large
 * answer (a /metrics scrape) would be cut off with the connection. */
size_t myna_http_conns_unsent(const struct myna_http_conns *cs);
/* The slots of its table (for tests: it follows the open connections). */
size_t myna_http_conns_capacity(const struct myna_http_conns *cs);

/* Connections of http read at most max bytes ahead of evhttp's parser
 * (see above): give the body limit plus room for the chunk lines. */
void myna_http_bound_input(struct evhttp *http, size_t max);

/* Guards sock's listener; name ("public", "admin") is for the log. NULL
 * when out of memory. */
struct myna_accept_guard *myna_accept_guard_new(struct evhttp_bound_socket *sock,
                                                const char *name);
/* Before the socket is deleted (evhttp_del_accept_socket, evhttp_free). NULL ok. */
void myna_accept_guard_free(struct myna_accept_guard *g);

#endif
