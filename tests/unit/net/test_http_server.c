/* test_http_server.c - what net/http_server.h adds to evhttp, on a real
 * loopback server in this process: the count of open connections and the
 * table behind it, which follows the open connections however many came
 * and went. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "net/http_server.h"

struct srv {
    struct event_base *base;
    struct evhttp *http;
    struct myna_http_conns *cs;
    int64_t open;
    uint16_t port;
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct srv *s = arg;

    myna_http_conns_request(s->cs, req);
    myna_http_reply_now(req, 200, "OK", NULL);
}

static void on_answer(struct evhttp_request *req, void *arg)
{
    int *status = arg;

    *status = req ? evhttp_request_get_response_code(req) : -1;
}

static int setup(void **state)
{
    struct srv *s = calloc(1, sizeof(*s));
    struct evhttp_bound_socket *sock;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    if (s == NULL || (s->base = event_base_new()) == NULL || (s->http = evhttp_new(s->base)) == NULL ||
        (s->cs = myna_http_conns_new(s->base, &s->open)) == NULL ||
        (sock = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0)) == NULL ||
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sa, &len) != 0)
        return -1;
    s->port = ntohs(sa.sin_port);
    evhttp_set_gencb(s->http, on_request, s);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct srv *s = *state;

    evhttp_free(s->http);
    myna_http_conns_free(s->cs);
    event_base_free(s->base);
    free(s);
    return 0;
}

/* One request on a connection of its own, then the connection closed and
 * the server's side of it gone. */
static void one_connection(struct srv *s)
{
    struct evhttp_connection *conn = evhttp_connection_base_new(s->base, NULL, "127.0.0.1", s->port);
    struct evhttp_request *req;
    int status = 0;

    assert_non_null(conn);
    assert_non_null(req = evhttp_request_new(on_answer, &status));
    assert_int_equal(evhttp_make_request(conn, req, EVHTTP_REQ_GET, "/"), 0);
    while (status == 0)
        event_base_loop(s->base, EVLOOP_ONCE);
    assert_int_equal(status, 200);
    assert_int_equal(s->open, 1);
    evhttp_connection_free(conn);
    for (int i = 0; i < 1000 && s->open > 0; i++)
        event_base_loop(s->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(s->open, 0);
}

static void test_table_follows_open_connections(void **state)
{
    struct srv *s = *state;

    one_connection(s);
    assert_int_equal(myna_http_conns_capacity(s->cs), 256);
    for (int i = 0; i < 2000; i++)  /* several tables' worth, one at a time */
        one_connection(s);
    assert_int_equal(myna_http_conns_capacity(s->cs), 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table_follows_open_connections, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
