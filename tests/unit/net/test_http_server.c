/* test_http_server.c - what net/http_server.h adds to evhttp, on a real
 * loopback server in this process: the count of open connections and the
 * table behind it, which follows the open connections however many came
 * and went, and the bytes of answers they have still to write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http_server.h"

struct srv {
    struct event_base *base;
    struct evhttp *http;
    struct myna_http_conns *cs;
    int64_t open;
    uint16_t port;
};

#define BIG_MIB 64

static void on_request(struct evhttp_request *req, void *arg)
{
    struct srv *s = arg;

    struct evbuffer *body = NULL;

    myna_http_conns_request(s->cs, req);
    if (strcmp(evhttp_request_get_uri(req), "/big") == 0) {  /* more than sockets hold */
        char *chunk = calloc(1, 1u << 20);
        body = evbuffer_new();
        assert_non_null(chunk);
        assert_non_null(body);
        for (int i = 0; i < BIG_MIB; i++)
            assert_int_equal(evbuffer_add(body, chunk, 1u << 20), 0);
        free(chunk);
    }
    myna_http_reply_now(req, 200, "OK", body);
    if (body)
        evbuffer_free(body);
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

/* An answer larger than the sockets hold waits in its connection's output
 * while its client does not read, and is counted as unsent until the
 * client has read it all. */
static void test_unsent_follows_what_is_left_to_write(void **state)
{
    struct srv *s = *state;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(s->port) };
    const char *req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t got = 0, unsent;
    char buf[1 << 16];

    assert_int_equal(myna_http_conns_unsent(s->cs), 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while (s->open == 0)
        event_base_loop(s->base, EVLOOP_ONCE);
    for (int i = 0; i < 100; i++)  /* what the sockets take, taken */
        event_base_loop(s->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    unsent = myna_http_conns_unsent(s->cs);
    assert_true(unsent > 0);
    assert_true(unsent < (size_t)BIG_MIB << 20);
    while (myna_http_conns_unsent(s->cs) > 0) {  /* the client reads, the server writes */
        ssize_t n = read(fd, buf, sizeof(buf));
        assert_true(n > 0);
        got += (size_t)n;
        event_base_loop(s->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    assert_true(got < (size_t)BIG_MIB << 20);  /* the rest is in the sockets */
    close(fd);
    assert_int_equal(myna_http_conns_unsent(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table_follows_open_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsent_follows_what_is_left_to_write, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
