/* conns.h - the HTTP connections the master's listeners hold open.
 *
 * libevent 2.1 has no hook for a new evhttp connection, so a connection is
 * known from its first request on (myna_conns_request) and forgotten in
 * evhttp's close callback, which libevent runs before it closes the socket.
 * Two uses:
 *
 * - The exact count of open connections, for /metrics.
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
 *   loop never spins on a socket nobody reads. */
#ifndef MYNA_MASTER_CONNS_H
#define MYNA_MASTER_CONNS_H

#include <stdint.h>

struct event_base;
struct evhttp_request;
struct myna_conns;

/* *gauge (borrowed, outlives the set) follows the open connections. NULL
 * when out of memory. */
struct myna_conns *myna_conns_new(struct event_base *base, int64_t *gauge);
/* Call after evhttp_free of every listener (their connections are closed
 * by then); frees what is left. NULL ok. */
void myna_conns_free(struct myna_conns *cs);
/* For every request the listeners receive. Never fails: out of memory, a
 * connection is served without its watch or count. */
void myna_conns_request(struct myna_conns *cs, struct evhttp_request *req);

#endif
