/* master.c - listeners, routing, signals and the master's lifecycle. */
#include "master/master.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/evloop.h"
#include "core/log.h"
#include "core/util.h"
#include "core/secret.h"
#include "master/admin.h"
#include "master/alerts.h"
#include "master/fleet.h"
#include "master/ingress.h"
#include "master/metrics.h"
#include "master/simulator.h"
#include "master/supervisor.h"
#include "net/http_server.h"
#include "store/bot_store.h"
#include "store/control.h"
#include "core/banned.h"

#define HEADERS_MAX (16 * 1024)
#define NOFILE_MAX ((rlim_t)1 << 20)  /* Linux's default ceiling (fs.nr_open) */
/* A scrape's text: the master's own metrics, then about 30 lines per
 * instance (each up to ~140 bytes with a 64-character id): 8 KiB each
 * leaves room, and the bound grows with the fleet instead of cutting it. */
#define METRICS_BASE_MAX (256 * 1024)
#define METRICS_INSTANCE_MAX (8 * 1024)

enum master_state { MASTER_STARTING, MASTER_RUNNING, MASTER_DRAINING, MASTER_STOPPED };

struct master {
    enum master_state state;
    struct event_base *base;
    struct evhttp *pub, *adm;
    struct evhttp_bound_socket *pub_sock, *adm_sock;
    struct myna_accept_guard *pub_guard, *adm_guard;
    struct myna_ingress *ing;
    struct myna_supervisor *sup;   /* NULL with bots = 0 */
    struct myna_alerts *alerts;    /* the supervisor's alerts: logged, POSTed to alert_webhook */
    struct myna_simulator *sim;
    char **bot_argv;               /* the bots' settings as flags (bot_flags) */
    int bot_argc;
    int bot_log_level;             /* the index of --log-level in bot_argv */
    struct myna_control *control;  /* var/control.db */
    struct myna_secret_box *box;   /* var/secret.key */
    struct myna_fleet *fleet;      /* the live instances */
    struct myna_admin *admin;
    struct myna_metrics metrics;
    struct myna_http_conns *conns; /* open HTTP connections (net/http_server.h) */
    struct scrape *scrape;         /* the /metrics scrape being read, or NULL */
    struct event *sig_term, *sig_int, *sig_hup, *drain_timer, *flush_timer;
    struct event *purge_timer;     /* the trash's next purge */
    int64_t drain_deadline_ms, flush_deadline_ms;
    const struct myna_conf *conf;
    const struct myna_master_args *args;
    int lock_fd;                   /* var/myna.lock, held while running; -1: none */
};

/* ---- routes ----------------------------------------------------------- */

static void send_text(struct evhttp_request *req, int code, const char *reason,
                      const char *type, const char *body, size_t len)
{
    struct evbuffer *out = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    if (out)
        evbuffer_add(out, body, len);
    myna_http_reply(req, code, reason, out);
    if (out)
        evbuffer_free(out);
}

/* 1 for a GET or a HEAD, the methods of /healthz and /metrics; else 0
 * after answering 405 with them in Allow. */
static int read_only(struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
        return 1;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
    send_text(req, 405, "Method Not Allowed", "text/plain", "use GET or HEAD\n", 16);
    return 0;
}

/* A CONNECT is answered 501 here, not by libevent: libevent 2.1 takes the
 * connection of a CONNECT for a tunnel, so its own 501 went out with a
 * body but no Content-Length, on a connection it kept open (even with
 * "Connection: close"): the client could not tell where that answer ended.
 * This one has no body and says so. Returns 1 when it answered. */
static int refuse_connect(struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_CONNECT)
        return 0;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", "0");
    myna_http_reply(req, 501, "Not Implemented", NULL);
    return 1;
}

static const char *request_path(struct evhttp_request *req)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

    return path && *path ? path : "/";
}

/* 1 after answering a request whose length could be read two ways
 * (net/http_server.h): 400, and the connection closes after it. */
static int refuse_ambiguous(struct evhttp_request *req)
{
    static const char why[] =
        "ambiguous length: two Content-Lengths, or one beside Transfer-Encoding\n";

    if (!myna_http_length_ambiguous(req))
        return 0;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    send_text(req, 400, "Bad Request", "text/plain", why, sizeof(why) - 1);
    return 1;
}

static void on_public(struct evhttp_request *req, void *arg)
{
    struct master *m = arg;
    const char *path = request_path(req);

    myna_http_conns_request(m->conns, req);
    if (refuse_ambiguous(req) || refuse_connect(req))
        return;
    if (strncmp(path, "/webhook/", 9) == 0) {
        myna_ingress_handle(m->ing, req, path + 9);
    } else if (strcmp(path, "/healthz") == 0) {
        if (read_only(req))
            send_text(req, 200, "OK", "text/plain", "ok\n", 3);
    } else {
        send_text(req, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

/* The LLM counters of one bot (bot_store.h). */
#define LLM_BUCKETS 9
struct llm_counts {
    int64_t ok, failed, bucket[LLM_BUCKETS], sum_ms, prompt, completion;
};

static void on_counter(const char *name, int64_t v, void *arg)
{
    static const char *const buckets[LLM_BUCKETS] = { MYNA_LLM_BUCKET_NAMES };
    struct llm_counts *c = arg;

    if (strcmp(name, "llm_requests_ok") == 0)
        c->ok = v;
    else if (strcmp(name, "llm_requests_failed") == 0)
        c->failed = v;
    else if (strcmp(name, "llm_latency_ms_sum") == 0)
        c->sum_ms = v;
    else if (strcmp(name, "llm_prompt_tokens") == 0)
        c->prompt = v;
    else if (strcmp(name, "llm_completion_tokens") == 0)
        c->completion = v;
    for (size_t i = 0; i < LLM_BUCKETS; i++)
        if (strcmp(name, buckets[i]) == 0)
            c->bucket[i] = v;
}

static int render_llm(const char *const *ids, size_t n, const struct llm_counts *c,
                      const unsigned char *ok, struct myna_buf *b)
{
    static const char *const le[LLM_BUCKETS] = { "0.1", "0.25", "0.5", "1", "2.5",
                                                 "5", "10", "30", "+Inf" };
    int rc = myna_buf_printf(b, "# HELP myna_llm_requests_total LLM calls of answered turns "
                                "(failed: the fallback text was sent).\n"
                                "# TYPE myna_llm_requests_total counter\n");

    for (size_t i = 0; rc == 0 && i < n; i++)
        if (ok[i])
            rc = myna_buf_printf(b, "myna_llm_requests_total{instance=\"%s\",result=\"ok\"} %lld\n"
                                    "myna_llm_requests_total{instance=\"%s\",result=\"failed\"} %lld\n",
                                 ids[i], (long long)c[i].ok, ids[i],
                                 (long long)c[i].failed);
    if (rc == 0)
        rc = myna_buf_printf(b, "# HELP myna_llm_latency_seconds From asking the LLM to its "
                                "answer, retries included.\n"
                                "# TYPE myna_llm_latency_seconds histogram\n");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t cum = 0;
        if (!ok[i])
            continue;
        for (size_t k = 0; rc == 0 && k < LLM_BUCKETS; k++) {
            cum += c[i].bucket[k];
            rc = myna_buf_printf(b, "myna_llm_latency_seconds_bucket{instance=\"%s\",le=\"%s\"} %lld\n",
                                 ids[i], le[k], (long long)cum);
        }
        if (rc == 0)
            rc = myna_buf_printf(b, "myna_llm_latency_seconds_sum{instance=\"%s\"} %.3f\n"
                                    "myna_llm_latency_seconds_count{instance=\"%s\"} %lld\n",
                                 ids[i], (double)c[i].sum_ms / 1000.0,
                                 ids[i], (long long)cum);
    }
    if (rc == 0)
        rc = myna_buf_printf(b, "# HELP myna_llm_tokens_total Tokens the LLM reported, by kind.\n"
                                "# TYPE myna_llm_tokens_total counter\n");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (ok[i])
            rc = myna_buf_printf(b, "myna_llm_tokens_total{instance=\"%s\",kind=\"prompt\"} %lld\n"
                                    "myna_llm_tokens_total{instance=\"%s\",kind=\"completion\"} %lld\n",
                                 ids[i], (long long)c[i].prompt,
                                 ids[i], (long long)c[i].completion);
    return rc;
}

/* The bots' processes, from the supervisor: one metric of procs[] at a time. */
static const char *const procs[][3] = {
    { "myna_bot_up", "gauge", "1 while the instance's bot process runs." },
    { "myna_bot_restarts_total", "counter",
      "Restarts after a bot exited, and those an operator or an update asked for." },
    { "myna_bot_crash_loop", "gauge",
      "1 while the bot is in a crash loop (the log says event=bot_crash_loop)." },
    { "myna_bot_resident_memory_bytes", "gauge",
      "Resident memory of the bot process at the last check (every 2 s)." },
    { "myna_bot_needs_attention", "gauge",
      "1 while the instance needs an operator, by reason (invalid_token, llm_circuit_open, "
      "crash_loop, account_locked, number_unregistered, payment_failed)." },
};
#define PROC_ATTENTION 4  /* index in procs: one line per reason */

struct proc_render {
    struct myna_buf *b;
    int which;  /* index in procs */
    int rc;
};

static void render_proc(const char *id, const struct myna_bot_status *st, void *arg)
{
    struct proc_render *r = arg;
    const long long v[] = { st->pid > 0, st->restarts, st->crash_loop,
                            st->pid > 0 ? (long long)st->rss_kb * 1024 : 0 };

    if (r->which == PROC_ATTENTION) {
        for (int i = 0; r->rc == 0 && i < MYNA_ATTN_COUNT; i++)
            r->rc = myna_buf_printf(r->b, "%s{instance=\"%s\",reason=\"%s\"} %d\n",
                                    procs[r->which][0], id, myna_attention_name(i),
                                    (st->attention & (1u << i)) != 0);
    } else if (r->rc == 0) {
        r->rc = myna_buf_printf(r->b, "%s{instance=\"%s\"} %lld\n", procs[r->which][0], id,
                                v[r->which]);
    }
}

/* A scrape of /metrics. The bots' gauges come from each bot's store, and
 * opening a SQLite file costs about a millisecond: read at once, a fleet of
 * 200 held the loop, and every webhook with it, for 160-250 ms. So the
 * stores are read a slice at a time, one slice per loop turn, and the
 * answer goes when the last one is read. Scrapes that come meanwhile wait
 * for the same answer. */
#define SCRAPE_SLICE_MS 4

struct scrape {
    struct master *m;
    struct event *tick;             /* the next slice */
    struct evhttp_request **reqs;   /* waiting for this scrape's answer */
    size_t n_reqs, cap_reqs;
    char **ids;                     /* copies: the fleet may change meanwhile */
    size_t n, next;                 /* ids[next..n) are still to read */
    struct myna_bot_counts *c;
    struct llm_counts *lc;
    unsigned char *ok;              /* store i was read */
};

static void scrape_free(struct scrape *sc)
{
    if (sc == NULL)
        return;
    for (size_t i = 0; sc->ids && i < sc->n; i++)
        free(sc->ids[i]);
    if (sc->tick)
        event_free(sc->tick);
    free(sc->ids);
    free(sc->reqs);
    free(sc->c);
    free(sc->lc);
    free(sc->ok);
    free(sc);
}

/* One bot's store, opened for this read (short reads beside the bot); a
 * store that cannot be read is left out of this scrape and logged. */
static void scrape_store(struct scrape *sc, size_t i)
{
    struct myna_store_opts so = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 100,
                                  .unnumbered = 1, .existing = 1 };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st;
    struct myna_bot_store *bs = NULL;
    char path[4200];

    snprintf(path, sizeof(path), "%s/instances/%s.bot.db", sc->m->conf->data_dir, sc->ids[i]);
    if ((st = myna_store_open_sqlite(path, &so, &err)) != NULL)
        bs = myna_bot_store_new(st, &err);
    else if (err.code == MYNA_ENOTFOUND)
        return;  /* its bot has not run yet */
    sc->ok[i] = bs && myna_bot_counts(bs, &sc->c[i], &err) == MYNA_OK &&
                myna_bot_counters(bs, on_counter, &sc->lc[i], &err) == MYNA_OK;
    if (!sc->ok[i]) {
        char q[600];
        MYNA_LOG(MYNA_WARN, "bot_metrics_failed", "instance=%s err=%s", sc->ids[i],
                 myna_log_q(q, sizeof(q), err.msg));
    }
    myna_bot_store_free(bs);
    myna_store_free(st);
}

/* The bots' gauges: process state from the supervisor, the outbox and turns
 * from the stores the scrape read. */
static int render_bots(struct master *m, const struct scrape *sc, struct myna_buf *b)
{
    static const char *const gauges[][2] = {
        { "myna_bot_outbox_open", "Replies pending or being sent." },
        { "myna_bot_dead_letters", "Replies that failed for good (myna outbox failed)." },
        { "myna_bot_sends_unconfirmed", "Sends accepted by Meta without a status in time." },
        { "myna_bot_turns_pending", "Customer turns waiting for an answer." },
        { "myna_bot_open_batches", "Contacts whose messages are being batched." },
    };
    int rc = 0;

    if (sc->n == 0)  /* no bots, or none run here (bots = 0: no supervisor) */
        return 0;
    for (size_t k = 0; rc == 0 && k < sizeof(procs) / sizeof(procs[0]); k++) {
        struct proc_render r = { b, (int)k, 0 };
        rc = myna_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", procs[k][0], procs[k][2],
                             procs[k][0], procs[k][1]);
        if (rc == 0) {
            myna_supervisor_foreach(m->sup, render_proc, &r);
            rc = r.rc;
        }
    }
    for (size_t g = 0; rc == 0 && g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        rc = myna_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g][0], gauges[g][1],
                             gauges[g][0]);
        for (size_t i = 0; rc == 0 && i < sc->n; i++) {
            const struct myna_bot_counts *c = &sc->c[i];
            const int64_t v[] = { c->outbox_open, c->dead_letters, c->unconfirmed,
                                  c->turns_pending, c->open_batches };
            if (sc->ok[i])
                rc = myna_buf_printf(b, "%s{instance=\"%s\"} %lld\n", gauges[g][0], sc->ids[i],
                                     (long long)v[g]);
        }
    }
    if (rc == 0)
        rc = render_llm((const char *const *)sc->ids, sc->n, sc->lc, sc->ok, b);
    return rc;
}

/* Renders the whole text and answers every waiting request with it. */
static void scrape_finish(struct scrape *sc)
{
    struct master *m = sc->m;
    struct myna_buf b = MYNA_BUF_INIT(METRICS_BASE_MAX + sc->n * METRICS_INSTANCE_MAX);
    struct myna_commit_stats cs;
    int ok;

    myna_ingress_commit_stats(m->ing, &cs);
    ok = myna_metrics_render(&m->metrics, &cs, &b) == MYNA_OK &&
         render_bots(m, sc, &b) == MYNA_OK;
    if (!ok)
        MYNA_LOG(MYNA_ERROR, "metrics_failed", "bytes=%zu instances=%zu", b.len, sc->n);
    for (size_t i = 0; i < sc->n_reqs; i++) {
        if (ok)
            send_text(sc->reqs[i], 200, "OK", "text/plain; version=0.0.4", b.data ? b.data : "",
                      b.len);
        else
            send_text(sc->reqs[i], 500, "Internal Server Error", "text/plain",
                      "metrics too large\n", 18);
    }
    myna_buf_release(&b);
    m->scrape = NULL;
    scrape_free(sc);
}

static const struct timeval next_turn = { 0, 0 };  /* a timer for the loop's next turn */

static void scrape_tick(evutil_socket_t fd, short what, void *arg)
{
    struct scrape *sc = arg;
    int64_t t0 = myna_mono_ms();

    (void)fd;
    (void)what;
    while (sc->next < sc->n) {
        scrape_store(sc, sc->next++);
        if (myna_mono_ms() - t0 >= SCRAPE_SLICE_MS)
            break;
    }
    if (sc->next < sc->n && evtimer_add(sc->tick, &next_turn) == 0)
        return;
    scrape_finish(sc);  /* done, or no timer: what was read is answered */
}

static struct scrape *scrape_start(struct master *m)
{
    struct scrape *sc = calloc(1, sizeof(*sc));
    size_t n = m->sup ? myna_fleet_count(m->fleet) : 0;

    if (sc == NULL)
        return NULL;
    sc->m = m;
    sc->n = n;
    sc->ids = calloc(n ? n : 1, sizeof(*sc->ids));
    sc->c = calloc(n ? n : 1, sizeof(*sc->c));
    sc->lc = calloc(n ? n : 1, sizeof(*sc->lc));
    sc->ok = calloc(n ? n : 1, 1);
    sc->tick = evtimer_new(m->base, scrape_tick, sc);
    if (sc->ids == NULL || sc->c == NULL || sc->lc == NULL || sc->ok == NULL || sc->tick == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((sc->ids[i] = strdup(myna_fleet_id(m->fleet, i))) == NULL)
            goto fail;
    if (evtimer_add(sc->tick, &next_turn) != 0)
        goto fail;
    return sc;
fail:
    scrape_free(sc);
    return NULL;
}

static void serve_metrics(struct master *m, struct evhttp_request *req)
{
    struct scrape *sc = m->scrape;

    if (sc == NULL && (sc = m->scrape = scrape_start(m)) == NULL) {
        send_text(req, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
        return;
    }
    if (sc->n_reqs == sc->cap_reqs) {
        size_t cap = sc->cap_reqs ? 2 * sc->cap_reqs : 4;
        struct evhttp_request **r = realloc(sc->reqs, cap * sizeof(*r));
        if (r == NULL) {
            send_text(req, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
            return;
        }
        sc->reqs = r;
        sc->cap_reqs = cap;
    }
    sc->reqs[sc->n_reqs++] = req;
}

static void on_admin(struct evhttp_request *req, void *arg)
{
    struct master *m = arg;
    const char *path = request_path(req);

    myna_http_conns_request(m->conns, req);
    if (refuse_ambiguous(req) || refuse_connect(req))
        return;
    if (strcmp(path, "/healthz") == 0) {
        if (read_only(req))
            send_text(req, 200, "OK", "text/plain", "ok\n", 3);
    } else if (strcmp(path, "/metrics") == 0) {
        if (read_only(req))
            serve_metrics(m, req);
    } else if (strncmp(path, "/sim", 4) == 0 && (path[4] == '\0' || path[4] == '/')) {
        myna_simulator_handle(m->sim, req, path);
    } else if (strncmp(path, "/admin/", 7) == 0) {
        myna_admin_handle(m->admin, req, path);
    } else {
        send_text(req, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

/* ---- listeners --------------------------------------------------------- */

/* Why host could not be bound: a name that does not resolve, else the
 * errno the bind or listen left (e). */
static const char *listen_problem(const char *host, int e)
{
    struct addrinfo hints, *ai = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = getaddrinfo(host, NULL, &hints, &ai)) != 0)
        return rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
    freeaddrinfo(ai);
    return e ? strerror(e) : "unknown error";
}

/* The listener of option name ("public", "admin") on addr, taking bodies
 * of at most max_body bytes; the address bound goes to bound. NULL with
 * err saying which and why. */
static struct evhttp *listener(struct master *m, const char *name, const char *addr,
                               size_t max_body, void (*cb)(struct evhttp_request *, void *),
                               struct evhttp_bound_socket **sock, char *bound, size_t cap,
                               struct myna_err *err)
{
    struct evhttp *http = evhttp_new(m->base);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[256], ip[INET6_ADDRSTRLEN];
    int port;

    if (http == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    if (myna_split_hostport(addr, host, sizeof(host), &port) != 0) {
        myna_err_set(err, MYNA_EIO, "cannot listen on '%s' (%s): not HOST:PORT", addr, name);
        evhttp_free(http);
        return NULL;
    }
    errno = 0;
    if ((*sock = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port)) == NULL) {
        int e = errno;
        myna_err_set(err, MYNA_EIO, "cannot listen on '%s' (%s): %s", addr, name,
                     listen_problem(host, e));
        evhttp_free(http);
        return NULL;
    }
    /* the body limit is checked here too: libevent refuses larger bodies with
     * 413 before they are read, the ingress counts them when it can */
    evhttp_set_max_body_size(http, (ev_ssize_t)max_body);
    evhttp_set_max_headers_size(http, HEADERS_MAX);
    myna_http_bound_input(http, max_body + HEADERS_MAX);
    evhttp_set_timeout(http, (int)m->conf->http_timeout_s);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
                                         EVHTTP_REQ_CONNECT);  /* for refuse_connect */
    evhttp_set_gencb(http, cb, m);
    if (getsockname(evhttp_bound_socket_get_fd(*sock), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
            snprintf(bound, cap, "[%s]:%u", ip, ntohs(s6->sin6_port));
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
            snprintf(bound, cap, "%s:%u", ip, ntohs(s4->sin_port));
        }
    } else {
        snprintf(bound, cap, "%s", addr);
    }
    return http;
}

/* ---- signals and draining ----------------------------------------------- */

#define FLUSH_MIN_MS 50

static void flush_check(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;

    (void)fd;
    (void)what;
    if (myna_http_conns_unsent(m->conns) > 0 && myna_mono_ms() < m->flush_deadline_ms)
        return;
    event_base_loopexit(m->base, NULL);
}

/* The loop ends once the last answers have left for their sockets: a large
 * one (a scrape's) goes out as fast as its client reads, and the loop's end
 * closes the connections. The wait ends at the drain's deadline, or
 * FLUSH_MIN_MS from now if that has passed. */
static void end_loop(struct master *m)
{
    struct timeval tick = { 0, 10 * 1000 }, flush = { 0, FLUSH_MIN_MS * 1000 };
    int64_t now = myna_mono_ms();

    m->flush_deadline_ms = m->drain_deadline_ms > now + FLUSH_MIN_MS ? m->drain_deadline_ms
                                                                     : now + FLUSH_MIN_MS;
    m->flush_timer = event_new(m->base, -1, EV_PERSIST, flush_check, m);
    if (m->flush_timer == NULL || event_add(m->flush_timer, &tick) != 0)
        event_base_loopexit(m->base, &flush);
}

static void bots_stopped(void *arg)
{
    end_loop(arg);
}

static void ring_bot(const char *id, void *arg)
{
    struct master *m = arg;

    if (m->sup)
        myna_supervisor_ring(m->sup, id);
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    size_t pending = myna_ingress_pending(m->ing);

    (void)fd;
    (void)what;
    /* a scrape under way and the admin requests waiting for a password
     * hash are answered too, within the same deadline */
    if ((pending > 0 || m->scrape != NULL || myna_admin_pending(m->admin) > 0) &&
        myna_mono_ms() < m->drain_deadline_ms)
        return;
    /* the exit code waits for the end: a commit that lands while the bots
     * stop is answered, and then nothing is left unfinished */
    if (pending > 0)
        MYNA_LOG(MYNA_ERROR, "drain_timeout", "pending=%zu", pending);
    m->state = MASTER_STOPPED;
    event_del(m->drain_timer);
    if (m->sup) {  /* bots next; the loop ends when the last one is gone */
        myna_supervisor_stop_all(m->sup, bots_stopped, m);
        return;
    }
    end_loop(m);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct master *m = arg;
    struct timeval tick = { 0, 10 * 1000 };

    (void)what;
    if (m->state != MASTER_RUNNING)
        return;
    m->state = MASTER_DRAINING;
    MYNA_LOG(MYNA_INFO, "draining", "signal=%d pending=%zu", (int)sig,
             myna_ingress_pending(m->ing));
    /* stop accepting: new connections are refused by the kernel from here */
    myna_accept_guard_free(m->pub_guard);
    myna_accept_guard_free(m->adm_guard);
    m->pub_guard = m->adm_guard = NULL;
    evhttp_del_accept_socket(m->pub, m->pub_sock);
    evhttp_del_accept_socket(m->adm, m->adm_sock);
    m->pub_sock = m->adm_sock = NULL;
    myna_ingress_drain(m->ing);
    m->drain_deadline_ms = myna_mono_ms() + m->conf->drain_timeout_ms;
    m->drain_timer = event_new(m->base, -1, EV_PERSIST, drain_check, m);
    if (m->drain_timer == NULL || event_add(m->drain_timer, &tick) != 0)
        event_base_loopexit(m->base, NULL);
}

static const struct myna_opt *opt_named(const char *name)
{
    const struct myna_opt *o = myna_opts;

    while (o->name && strcmp(o->name, name) != 0)
        o++;
    return o;
}

/* "--name=value" for option o (value, else conf's), malloc'd; NULL when
 * out of memory. */
static char *option_flag(const struct myna_opt *o, const struct myna_conf *conf,
                         const char *value)
{
    char v[4200], *flag;
    size_t n;

    if (value == NULL) {
        myna_conf_value_text(conf, o, v, sizeof(v));
        value = v;
    }
    n = strlen(o->name) + strlen(value) + 4;
    if ((flag = malloc(n)) == NULL)
        return NULL;
    snprintf(flag, n, "--%s=%s", o->name, value);
    for (char *c = flag + 2; *c != '='; c++)
        if (*c == '_')
            *c = '-';
    return flag;
}

/* The bots get the master's settings as flags, not its arguments: a config
 * file edited while the master runs must not reach a bot that restarts (a
 * typo in it would stop that bot for good, a new data directory would split
 * it from the master); changes wait for the master's restart, as the docs
 * say ("--config=" reads no file; the environment is the master's, already
 * checked, and flags win over it). The admin address is the one bound (a
 * port 0 resolved): sim instances send their replies there. alert_webhook
 * stays out: only the master posts alerts, and a command line can be read
 * by any local user. */
static int bot_flags(struct master *m, const struct myna_conf *conf, const char *admin)
{
    size_t n = 0;

    for (const struct myna_opt *o = myna_opts; o->name; o++)
        n++;
    if ((m->bot_argv = calloc(n + 1, sizeof(char *))) == NULL)
        return -1;
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        const char *value = NULL;
        char *flag;
        if (strcmp(o->name, "alert_webhook") == 0)
            continue;
        if (strcmp(o->name, "config") == 0)
            value = "";
        else if (strcmp(o->name, "admin") == 0)
            value = admin;
        else if (strcmp(o->name, "log_level") == 0)
            m->bot_log_level = m->bot_argc;
        if ((flag = option_flag(o, conf, value)) == NULL)
            return -1;
        m->bot_argv[m->bot_argc++] = flag;
    }
    return 0;
}

/* Logs each option whose new value waits for a restart (the value is not
 * logged: it may hold a secret). */
static void warn_restart_only(const struct myna_conf *cur, const struct myna_conf *fresh)
{
    char a[4200], b[4200];

    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        if (o->reload != MYNA_RELOAD_RESTART)
            continue;
        myna_conf_value_text(cur, o, a, sizeof(a));
        myna_conf_value_text(fresh, o, b, sizeof(b));
        if (strcmp(a, b) != 0)
            MYNA_LOG(MYNA_WARN, "reload_needs_restart", "option=%s", o->name);
    }
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct master *m = arg;
    struct myna_conf fresh;
    struct myna_err err = MYNA_ERR_INIT;
    int rc = myna_log_reopen();

    (void)sig;
    (void)what;
    if (rc != 0) {
        char q[600];
        MYNA_LOG_ERRNO(MYNA_ERROR, "log_reopen_failed", -rc, "file=%s",
                       myna_log_q(q, sizeof(q), m->conf->log_file));
    }
    if (myna_conf_load(&fresh, m->args->argc, m->args->argv, m->args->envp,
                       m->args->passthrough, NULL, &err) != MYNA_OK) {
        char q[600];
        MYNA_LOG(MYNA_ERROR, "reload_failed", "err=%s keeping=current",
                 myna_log_q(q, sizeof(q), err.msg));
        return;
    }
    warn_restart_only(m->conf, &fresh);
    myna_log_set_level((int)fresh.log_level);
    if (m->bot_argv) {  /* the bots started from now on log at it too */
        char *flag = option_flag(opt_named("log_level"), &fresh, NULL);
        if (flag) {
            free(m->bot_argv[m->bot_log_level]);
            m->bot_argv[m->bot_log_level] = flag;
        }
    }
    MYNA_LOG(MYNA_INFO, "reloaded", "log_level=%s", myna_log_level_name((int)fresh.log_level));
    myna_conf_release(&fresh);
}

/* A deleted instance's files are kept 7 days: a master that runs for
 * months must remove them too, not only at its start. The trash is read
 * again when its oldest folder is due, and at least every hour, for the
 * folders deletes made meanwhile. */
#define PURGE_EVERY_S 3600

static void purge_tick(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    int64_t due = myna_fleet_purge_trash(m->fleet), wait = PURGE_EVERY_S;
    struct timeval tv = { 0, 0 };

    (void)fd;
    (void)what;
    /* +1: a folder is due once the whole second it is due in is over */
    if (due > 0 && due - myna_wall_ms() / 1000 + 1 < wait)
        wait = due - myna_wall_ms() / 1000 + 1;
    tv.tv_sec = (time_t)(wait < 1 ? 1 : wait);
    evtimer_add(m->purge_timer, &tv);
}

static int add_signal(struct master *m, struct event **ev, int sig, event_callback_fn cb)
{
    *ev = evsignal_new(m->base, sig, cb, m);
    return *ev && event_add(*ev, NULL) == 0 ? 0 : -1;
}

static void master_release(struct master *m)
{
    struct event **evs[] = { &m->sig_term, &m->sig_int, &m->sig_hup, &m->drain_timer,
                             &m->flush_timer, &m->purge_timer };

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (*evs[i])
            event_free(*evs[i]);
    /* a scrape the drain's deadline cut short answers with what it read,
     * while the supervisor it renders still exists (the answer is lost with
     * its connection) */
    if (m->scrape)
        scrape_finish(m->scrape);
    /* connections close before the ingress goes, so no reply can reach a
     * freed request; the committer answers nothing after this */
    myna_supervisor_free(m->sup);
    myna_alerts_free(m->alerts);
    myna_simulator_free(m->sim);
    for (int i = 0; i < m->bot_argc; i++)
        free(m->bot_argv[i]);
    free(m->bot_argv);
    myna_admin_free(m->admin);
    myna_fleet_free(m->fleet);
    myna_control_free(m->control);
    myna_secret_box_free(m->box);
    myna_accept_guard_free(m->pub_guard);
    myna_accept_guard_free(m->adm_guard);
    if (m->pub)
        evhttp_free(m->pub);
    if (m->adm)
        evhttp_free(m->adm);
    myna_ingress_free(m->ing);
    myna_http_conns_free(m->conns);
    if (m->base)
        event_base_free(m->base);
    myna_arena_cache_release();
    if (m->lock_fd >= 0)
        close(m->lock_fd);  /* last: everything of this master is closed */
}

/* The supervisor's alerts (a crash loop, a bot's attention reason). */
static void on_alert(const char *id, const char *kind, const char *detail, void *arg)
{
    struct master *m = arg;

    myna_alerts_raise(m->alerts, id, kind, detail);
}

/* A bot's configuration, from the fleet (supervisor.h). */
static char *bot_config(const char *id, void *arg)
{
    struct master *m = arg;

    return m->fleet ? myna_fleet_bot_config(m->fleet, id) : NULL;
}

/* Every connection and store takes a file descriptor, and the soft limit
 * is often 1024 where the hard one is far higher (systemd's default for
 * services): the soft limit goes up to the hard one, as servers do. The
 * limit in force. */
static long raise_nofile(void)
{
    struct rlimit rl;
    rlim_t want;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    want = rl.rlim_max < NOFILE_MAX ? rl.rlim_max : NOFILE_MAX;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
}

/* One master per data directory: a second one (another terminal, a
 * service and a manual start) would supervise a second set of bots on the
 * same stores. The kernel drops the lock when its holder dies, and the
 * bots do not inherit it (close-on-exec), so a master killed with -9 never
 * leaves it behind. The file holds the holder's pid, for the message. */
static int lock_data(struct master *m, struct myna_err *err)
{
    char path[4200], pid[32] = "";
    ssize_t n;
    int len;

    snprintf(path, sizeof(path), "%s/myna.lock", m->conf->data_dir);
    if ((m->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return myna_err_set(err, MYNA_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (flock(m->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e != EWOULDBLOCK)
            return myna_err_set(err, MYNA_EIO, "cannot lock '%s': %s", path, strerror(e));
        n = pread(m->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? strspn(pid, "0123456789") : 0] = '\0';
        return myna_err_set(err, MYNA_EIO, "data directory '%s' is in use by another myna serve"
                            "%s%s%s; each one needs a data directory of its own",
                            m->conf->data_dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
    }
    len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(m->lock_fd, 0) != 0 || pwrite(m->lock_fd, pid, (size_t)len, 0) != len) {
        char q[600];
        MYNA_LOG_ERRNO(MYNA_WARN, "lock_file_write_failed", errno, "file=%s",
                       myna_log_q(q, sizeof(q), path));
    }
    return MYNA_OK;
}

/* The control store, the secrets' key, the first admin. */
static int open_control(struct master *m, int64_t *admin_id, struct myna_err *err)
{
    char path[4200];
    int rc;

    snprintf(path, sizeof(path), "%s/control.db", m->conf->data_dir);
    if ((m->control = myna_control_open(path, err)) == NULL)
        return err->code;
    snprintf(path, sizeof(path), "%s/secret.key", m->conf->data_dir);
    if ((m->box = myna_secret_box_open(path, 1, err)) == NULL)
        return err->code;
    if ((rc = myna_admin_bootstrap(m->control, getenv("MYNA_ADMIN_TOKEN"), stdout, admin_id,
                                   err)) != MYNA_OK)
        return rc;
    fflush(stdout);
    return MYNA_OK;
}

int myna_master_run(const struct myna_conf *conf, const struct myna_master_args *args,
                    struct myna_err *err)
{
    struct master m;
    struct myna_instance_set none = { NULL, 0 };
    char pub[128], adm[128];
    int64_t admin_id = 0;
    size_t pending;
    long nofile;
    sigset_t hup;
    int rc = MYNA_OK;

    memset(&m, 0, sizeof(m));
    m.lock_fd = -1;
    m.conf = conf;
    m.args = args;
    m.state = MASTER_STARTING;
    signal(SIGPIPE, SIG_IGN);
    nofile = raise_nofile();
    if ((m.base = myna_event_base_new()) == NULL ||
        (m.conns = myna_http_conns_new(m.base, &m.metrics.open_connections)) == NULL) {
        rc = myna_err_set(err, MYNA_ENOMEM, "cannot create the event loop");
        goto out;
    }
    if ((m.ing = myna_ingress_new(m.base, conf, &none, &m.metrics, err)) == NULL) {
        rc = err->code ? err->code : MYNA_EIO;
        goto out;
    }
    if ((rc = lock_data(&m, err)) != MYNA_OK || (rc = open_control(&m, &admin_id, err)) != MYNA_OK)
        goto out;
    /* webhooks up to max_body_bytes; the admin API (and the simulator's
     * smaller bodies) at least up to its own limit, whatever the webhooks':
     * a body past it is read, when it is within max_body_bytes, to be
     * refused with the API's own 413 */
    if ((m.pub = listener(&m, "public", conf->public_addr, (size_t)conf->max_body_bytes,
                          on_public, &m.pub_sock, pub, sizeof(pub), err)) == NULL ||
        (m.adm = listener(&m, "admin", conf->admin_addr,
                          conf->max_body_bytes > MYNA_ADMIN_BODY_MAX
                              ? (size_t)conf->max_body_bytes
                              : (size_t)MYNA_ADMIN_BODY_MAX,
                          on_admin, &m.adm_sock, adm, sizeof(adm), err)) == NULL) {
        rc = err->code;
        goto out;
    }
    if ((m.pub_guard = myna_accept_guard_new(m.pub_sock, "public")) == NULL ||
        (m.adm_guard = myna_accept_guard_new(m.adm_sock, "admin")) == NULL) {
        rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
        goto out;
    }
    if (add_signal(&m, &m.sig_term, SIGTERM, on_stop_signal) != 0 ||
        add_signal(&m, &m.sig_int, SIGINT, on_stop_signal) != 0 ||
        add_signal(&m, &m.sig_hup, SIGHUP, on_hup) != 0) {
        rc = myna_err_set(err, MYNA_EIO, "cannot install signal handlers");
        goto out;
    }
    /* a SIGHUP held while the master started is taken now (master.h) */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &hup, NULL);
    if ((m.sim = myna_simulator_new(m.base, &none, pub, adm, err)) == NULL) {
        rc = err->code;
        goto out;
    }
    if (conf->bots) {
        struct myna_supervisor_timing t;
        if (bot_flags(&m, conf, adm) != 0) {
            rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
            goto out;
        }
        if ((m.alerts = myna_alerts_new(m.base, conf->alert_webhook, err)) == NULL ||
            (m.sup = myna_supervisor_new(m.base, conf->data_dir, m.bot_argc, m.bot_argv,
                                         err)) == NULL) {
            rc = err->code;
            goto out;
        }
        myna_supervisor_get_timing(m.sup, &t);
        t.heartbeat_timeout_ms = (int)conf->bot_heartbeat_timeout_ms;
        myna_supervisor_set_timing(m.sup, &t);
        myna_supervisor_set_config(m.sup, bot_config, &m);
        myna_supervisor_set_alert(m.sup, on_alert, &m);
        myna_ingress_set_notify(m.ing, ring_bot, &m);
    }
    if ((m.fleet = myna_fleet_new(m.control, m.box, m.ing, m.sim, m.sup, conf->data_dir, adm,
                                  (int)conf->bot_max_memory_mb, err)) == NULL ||
        (m.admin = myna_admin_new(m.base, m.control, m.fleet, m.sup, conf, err)) == NULL) {
        rc = err->code;
        goto out;
    }
    /* the instances file, if any, is imported; then everything stored goes live */
    if ((conf->instances[0] && (rc = myna_fleet_import(m.fleet, conf->instances, admin_id,
                                                       err)) != MYNA_OK) ||
        (rc = myna_fleet_load(m.fleet, err)) != MYNA_OK)
        goto out;
    if ((m.purge_timer = evtimer_new(m.base, purge_tick, &m)) == NULL) {
        rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
        goto out;
    }
    purge_tick(-1, 0, &m);
    m.state = MASTER_RUNNING;
    {
        char q[600];  /* a path may hold spaces: quoted, the fields after it stay fields */
        MYNA_LOG(MYNA_INFO, "ready",
                 "public=%s admin=%s instances=%zu data=%s nofile=%ld version=%s", pub, adm,
                 myna_fleet_count(m.fleet), myna_log_q(q, sizeof(q), conf->data_dir), nofile,
                 MYNA_VERSION);
    }
    event_base_dispatch(m.base);
    pending = myna_ingress_pending(m.ing);
    MYNA_LOG(MYNA_INFO, "stopped", "pending=%zu", pending);
    if (pending > 0) {
        /* the writer is stuck on the store: joining it could hang forever.
         * Unanswered requests were never acknowledged, so Meta retries them. */
        return myna_err_set(err, MYNA_EAGAIN, "drain timed out with %zu commit%s in flight",
                            pending, pending == 1 ? "" : "s");
    }
out:
    master_release(&m);
    return rc;
}
