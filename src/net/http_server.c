/* http_server.c - answers written at once; open connections counted and
 * their read interest kept (see http_server.h). */
#include "net/http_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "core/log.h"
#include "core/util.h"
#include "core/banned.h"

void myna_http_reply(struct evhttp_request *req, int code, const char *reason,
                     struct evbuffer *body)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        char len[24];

        snprintf(len, sizeof(len), "%zu", body ? evbuffer_get_length(body) : (size_t)0);
        evhttp_remove_header(h, "Content-Length");
        evhttp_add_header(h, "Content-Length", len);
        if (body)
            evbuffer_drain(body, evbuffer_get_length(body));
        body = NULL;
    }
    evhttp_send_reply(req, code, reason, body);
}

int myna_http_length_ambiguous(struct evhttp_request *req)
{
    const struct evkeyval *h, *first = NULL;
    int chunked = 0;

    TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next) {
        if (strcasecmp(h->key, "Transfer-Encoding") == 0)
            chunked = 1;
        else if (strcasecmp(h->key, "Content-Length") != 0)
            continue;
        else if (first == NULL)
            first = h;
        else if (strcmp(first->value, h->value) != 0)
            return 1;
    }
    return chunked && first != NULL;
}

void myna_http_reply_now(struct evhttp_request *req, int code, const char *reason,
                         struct evbuffer *body)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct evbuffer *out;
    int n;

    myna_http_reply(req, code, reason, body);
    if (fd < 0)
        return;
    out = bufferevent_get_output(bev);
    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (n > 0)
        bufferevent_trigger(bev, EV_WRITE, 0);  /* runs it only once the buffer is empty */
}

/* ---- connections ---- */

#define WATCH_FIRINGS_MAX 2  /* without a new request; the third steps aside */

struct conn {
    struct evhttp_connection *evcon;
    struct event *watch;  /* NULL if it could not be made */
    int fired;            /* watch firings since the connection's last request */
};

/* Open addressing on the evhttp connection's address. */
struct myna_http_conns {
    struct event_base *base;
    int64_t *gauge;
    struct conn **slots;  /* NULL: empty; &gone: deleted */
    size_t cap, used;     /* used: slots not NULL, the deleted ones too */
    size_t live;          /* open connections */
};

static struct conn gone;

/* Fibonacci hashing: the top bits of the product, which depend on every
 * bit of the address (its low bits would follow the allocator's stride:
 * connections 400 bytes apart fell in a quarter of the slots). cap is a
 * power of two, at least 256. */
static size_t slot_of(const struct evhttp_connection *evcon, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)evcon * 0x9E3779B97F4A7C15ull;

    return (size_t)(x >> (64 - __builtin_ctzll((unsigned long long)cap)));
}

/* Rehashes without the deleted slots: at twice the size, or at the same
 * size when they are most of the table (connections come and go all day:
 * the table must follow the open ones, not all there ever were). */
static int grow(struct myna_http_conns *cs)
{
    size_t cap = cs->cap, used = 0;
    struct conn **slots;

    if (cap == 0)
        cap = 256;
    else if ((cs->live + 1) * 4 > cap)
        cap *= 2;
    if ((slots = calloc(cap, sizeof(*slots))) == NULL)
        return -1;
    for (size_t i = 0; i < cs->cap; i++) {
        struct conn *c = cs->slots[i];
        size_t h;
        if (c == NULL || c == &gone)
            continue;
        for (h = slot_of(c->evcon, cap); slots[h]; h = (h + 1) & (cap - 1))
            ;
        slots[h] = c;
        used++;
    }
    free(cs->slots);
    cs->slots = slots;
    cs->cap = cap;
    cs->used = used;
    return 0;
}

static struct conn **find(struct myna_http_conns *cs, const struct evhttp_connection *evcon)
{
    if (cs->cap == 0)
        return NULL;
    for (size_t h = slot_of(evcon, cs->cap); cs->slots[h]; h = (h + 1) & (cs->cap - 1))
        if (cs->slots[h] != &gone && cs->slots[h]->evcon == evcon)
            return &cs->slots[h];
    return NULL;
}

static int insert(struct myna_http_conns *cs, struct conn *c)
{
    size_t h, tomb = SIZE_MAX;

    if ((cs->used + 1) * 2 > cs->cap && grow(cs) != 0)
        return -1;
    for (h = slot_of(c->evcon, cs->cap); cs->slots[h]; h = (h + 1) & (cs->cap - 1))
        if (cs->slots[h] == &gone && tomb == SIZE_MAX)
            tomb = h;
    cs->slots[tomb != SIZE_MAX ? tomb : h] = c;
    cs->used += tomb == SIZE_MAX;
    cs->live++;
    return 0;
}

static void conn_free(struct conn *c)
{
    if (c->watch)
        event_free(c->watch);  /* deletes it, also from this turn's active events */
    free(c);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (++c->fired > WATCH_FIRINGS_MAX)
        event_del(c->watch);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct myna_http_conns *cs = arg;
    struct conn **slot = find(cs, evcon);

    if (slot == NULL)
        return;
    conn_free(*slot);
    *slot = &gone;
    cs->live--;
    (*cs->gauge)--;
}

/* A watch on the connection's socket, added; NULL if it cannot be made. */
static struct event *watch_new(struct myna_http_conns *cs, struct conn *c)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct event *ev;

    if (fd < 0 || (ev = event_new(cs->base, fd, EV_READ | EV_PERSIST, on_watch, c)) == NULL)
        return NULL;
    if (event_add(ev, NULL) != 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
}

void myna_http_conns_request(struct myna_http_conns *cs, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct conn **slot, *c;

    if (cs == NULL || evcon == NULL)
        return;
    if ((slot = find(cs, evcon)) != NULL) {
        c = *slot;
        c->fired = 0;
        if (c->watch && !event_pending(c->watch, EV_READ, NULL))
            event_add(c->watch, NULL);
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->evcon = evcon;
    if (insert(cs, c) != 0) {
        free(c);
        return;
    }
    (*cs->gauge)++;
    evhttp_connection_set_closecb(evcon, on_close, cs);
    c->watch = watch_new(cs, c);
}

struct myna_http_conns *myna_http_conns_new(struct event_base *base, int64_t *gauge)
{
    struct myna_http_conns *cs = calloc(1, sizeof(*cs));

    if (cs == NULL)
        return NULL;
    cs->base = base;
    cs->gauge = gauge;
    return cs;
}

size_t myna_http_conns_unsent(const struct myna_http_conns *cs)
{
    size_t n = 0;

    for (size_t i = 0; cs != NULL && i < cs->cap; i++) {
        struct bufferevent *bev;
        if (cs->slots[i] != NULL && cs->slots[i] != &gone &&
            (bev = evhttp_connection_get_bufferevent(cs->slots[i]->evcon)) != NULL)
            n += evbuffer_get_length(bufferevent_get_output(bev));
    }
    return n;
}

size_t myna_http_conns_capacity(const struct myna_http_conns *cs)
{
    return cs != NULL ? cs->cap : 0;
}

void myna_http_conns_free(struct myna_http_conns *cs)
{
    if (cs == NULL)
        return;
    for (size_t i = 0; i < cs->cap; i++)
        if (cs->slots[i] != NULL && cs->slots[i] != &gone)
            conn_free(cs->slots[i]);
    free(cs->slots);
    free(cs);
}

/* ---- bounded input ---- */

/* Input that reached the watermark is a connection evhttp cannot parse
 * on: reading stops there, and with it libevent's read timeout, so it
 * would wait for its client for ever. It fails as a read timeout would:
 * evhttp then closes it (deferred, not inside the read that filled it). */
static void on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    size_t high = 0;

    if (info->n_added > 0 && bufferevent_getwatermark(bev, EV_READ, NULL, &high) == 0 &&
        high > 0 && evbuffer_get_length(in) >= high)
        bufferevent_trigger_event(bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT,
                                  BEV_TRIG_DEFER_CALLBACKS);
}

static struct bufferevent *bounded_bev(struct event_base *base, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

    if (bev) {  /* NULL: evhttp makes its own, unbounded, as before */
        bufferevent_setwatermark(bev, EV_READ, 0, (size_t)(uintptr_t)arg);
        evbuffer_add_cb(bufferevent_get_input(bev), on_input, bev);
    }
    return bev;
}

void myna_http_bound_input(struct evhttp *http, size_t max)
{
    evhttp_set_bevcb(http, bounded_bev, (void *)(uintptr_t)max);
}

/* ---- accept errors ---- */

#define ACCEPT_PAUSE_MS 100
#define ACCEPT_LOG_MS 1000  /* at most one accept_paused line this often */

struct myna_accept_guard {
    struct myna_accept_guard *next;
    struct evconnlistener *lev;
    struct event *resume;
    char name[16];
    int64_t logged_ms;
    unsigned long pauses;      /* since the last line logged */
};

static struct myna_accept_guard *guards;

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct myna_accept_guard *g = arg;

    (void)fd;
    (void)what;
    evconnlistener_enable(g->lev);
}

static void on_accept_error(struct evconnlistener *lev, void *ptr)
{
    int e = EVUTIL_SOCKET_ERROR();
    struct timeval pause = { 0, ACCEPT_PAUSE_MS * 1000 };
    struct myna_accept_guard *g = guards;
    int64_t now = myna_mono_ms();

    (void)ptr;
    while (g && g->lev != lev)
        g = g->next;
    if (g == NULL)
        return;
    evconnlistener_disable(lev);
    evtimer_add(g->resume, &pause);
    g->pauses++;
    if (now - g->logged_ms >= ACCEPT_LOG_MS) {
        char q[128];
        MYNA_LOG(MYNA_WARN, "accept_paused", "listener=%s err=%s pauses=%lu pause_ms=%d",
                 g->name, myna_log_q(q, sizeof(q), strerror(e)), g->pauses, ACCEPT_PAUSE_MS);
        g->logged_ms = now;
        g->pauses = 0;
    }
}

struct myna_accept_guard *myna_accept_guard_new(struct evhttp_bound_socket *sock,
                                                const char *name)
{
    struct evconnlistener *lev = evhttp_bound_socket_get_listener(sock);
    struct myna_accept_guard *g = calloc(1, sizeof(*g));

    if (g == NULL || lev == NULL ||
        (g->resume = evtimer_new(evconnlistener_get_base(lev), on_resume, g)) == NULL) {
        free(g);
        return NULL;
    }
    g->lev = lev;
    snprintf(g->name, sizeof(g->name), "%s", name);
    g->logged_ms = myna_mono_ms() - ACCEPT_LOG_MS;
    g->next = guards;
    guards = g;
    evconnlistener_set_error_cb(lev, on_accept_error);
    return g;
}

void myna_accept_guard_free(struct myna_accept_guard *g)
{
    struct myna_accept_guard **p = &guards;

    if (g == NULL)
        return;
    while (*p && *p != g)
        p = &(*p)->next;
    if (*p)
        *p = g->next;
    evconnlistener_set_error_cb(g->lev, NULL);
    event_free(g->resume);
    free(g);
}
