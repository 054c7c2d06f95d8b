/* simulator.c - the simulator's HTTP side: page, send, events, fake Graph. */
#include "master/simulator.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/auth.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "wa/signature.h"
#include "wa/sim.h"
#include "core/banned.h"

extern const unsigned char myna_ui_sim_html[];
extern const size_t myna_ui_sim_html_len;

#define STATUS_TRIES 6         /* a status webhook is posted at most this often */
#define DELIVER_AFTER_MS 150   /* "delivered" follows "sent" after this */
#define EVENTS_MAX (8 << 20)

struct sim_inst {
    const struct myna_instance *in;
    struct myna_hmac_key *key;
    struct myna_sim_log *log;
};

/* A webhook on its way to the public listener. */
struct post {
    struct myna_simulator *s;
    struct post *prev, *next;
    struct sim_inst *si;
    char *body;
    size_t len;
    int tries;
    struct event *timer;           /* a retry or a delayed status */
    struct evhttp_request *req;    /* a customer send: answered when the ingress did */
    int inflight;                  /* the HTTP client holds it until its callback */
    char wamid[128];
    char contact[16];
    const char *then;              /* a status to post once this one is through */
};

struct myna_simulator {
    struct event_base *base;
    struct myna_http_client *http;
    struct sim_inst **v;           /* stable objects: posts point to them */
    size_t n;
    char public_url[160];
    char graph_url[200];   /* what a sim instance's bot posts to, unless set */
    struct post *posts;
};

/* ---- small helpers --------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int code, const char *type, const char *body,
                  size_t len)
{
    struct evbuffer *out = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (out)
        evbuffer_add(out, body, len);
    myna_http_reply(req, code, NULL, out);
    if (out)
        evbuffer_free(out);
}

static void reply_json(struct evhttp_request *req, int code, const char *json)
{
    reply(req, code, "application/json", json, strlen(json));
}

/* {"error":"msg"} (msg is ours, or text checked to be UTF-8 by a parser)
 * and, with id (ours: no escaping needed), "id": the message's wamid, so
 * that a client can match it with its log event. */
static void reply_error_id(struct evhttp_request *req, int code, const char *msg, const char *id)
{
    struct myna_buf b = MYNA_BUF_INIT(4096);

    if (id != NULL)
        myna_buf_printf(&b, "{\"id\":\"%s\",", id);
    myna_buf_appends(&b, id != NULL ? "\"error\":\"" : "{\"error\":\"");
    for (const char *p = msg; *p; p++) {
        if (*p == '"' || *p == '\\')
            myna_buf_printf(&b, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            myna_buf_printf(&b, "\\u%04x", (unsigned char)*p);
        else
            myna_buf_append(&b, p, 1);
    }
    myna_buf_appends(&b, "\"}");
    reply_json(req, code, b.data ? b.data : "{}");
    myna_buf_release(&b);
}

static void reply_error(struct evhttp_request *req, int code, const char *msg)
{
    reply_error_id(req, code, msg, NULL);
}

/* 405 with the Allow header RFC 9110 asks for. */
static void reply_405(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    reply_error(req, 405, "method not allowed");
}

static void reply_graph_error(struct evhttp_request *req, int http, int code, const char *type,
                              const char *msg)
{
    char *body = myna_sim_graph_error(code, type, msg);

    reply_json(req, body ? http : 500, body ? body : "{}");
    free(body);
}

/* The request body, NUL-terminated (malloc), or NULL when over max. */
static char *request_body(struct evhttp_request *req, size_t max, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char *b;

    *len = evbuffer_get_length(in);
    if (*len > max || (b = malloc(*len + 1)) == NULL)
        return NULL;
    evbuffer_copyout(in, b, *len);
    b[*len] = '\0';
    return b;
}

/* Any web site's page may make the browser POST text/plain or a form to a
 * loopback listener without asking (a CORS "simple" request); a JSON
 * Content-Type needs a preflight, which nothing here grants. */
static int json_content(struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    size_t n = strlen("application/json");

    return ct && strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static struct sim_inst *find(struct myna_simulator *s, const char *id, size_t idlen)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]->in->id) == idlen && memcmp(s->v[i]->in->id, id, idlen) == 0)
            return s->v[i];
    return NULL;
}

static struct myna_sim_log *log_of(struct sim_inst *si)
{
    if (si->log == NULL)
        si->log = myna_sim_log_new();
    return si->log;
}

/* ---- posting webhooks --------------------------------------------------------------- */

static void post_free(struct post *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->s->posts = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (p->timer)
        event_free(p->timer);
    free(p->body);
    free(p);
}

static void post_send(struct post *p);

static void on_post_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    post_send(arg);
}

static void post_later(struct post *p, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (p->timer == NULL)
        p->timer = evtimer_new(p->s->base, on_post_timer, p);
    if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
        MYNA_LOG(MYNA_ERROR, "sim_post_dropped", "instance=%s reason=no_timer", p->si->in->id);
        post_free(p);
    }
}

static struct post *post_new(struct myna_simulator *s, struct sim_inst *si, char *body)
{
    struct post *p;

    if (body == NULL || (p = calloc(1, sizeof(*p))) == NULL) {
        free(body);
        return NULL;
    }
    p->s = s;
    p->si = si;
    p->body = body;
    p->len = strlen(body);
    p->next = s->posts;
    if (s->posts)
        s->posts->prev = p;
    s->posts = p;
    return p;
}

static void post_status(struct myna_simulator *s, struct sim_inst *si,
                        const struct myna_sim_event *e, const char *status, const char *then,
                        int delay_ms)
{
    struct post *p = post_new(s, si,
                              myna_sim_status_webhook(si->in, e->id, e->contact, status, e->opaque,
                                                      myna_wall_ms() / 1000, 0, NULL));

    if (p == NULL) {
        MYNA_LOG(MYNA_ERROR, "sim_post_dropped", "instance=%s reason=out_of_memory", si->in->id);
        return;
    }
    snprintf(p->wamid, sizeof(p->wamid), "%s", e->id);
    snprintf(p->contact, sizeof(p->contact), "%s", e->contact);
    p->then = then;
    if (delay_ms > 0)
        post_later(p, delay_ms);
    else
        post_send(p);
}

static void answer_send(struct post *p, int ok, const char *why)
{
    struct myna_sim_log *l = log_of(p->si);
    struct myna_sim_event *e = l ? myna_sim_log_find(l, p->wamid) : NULL;
    char json[256];

    if (e)
        myna_sim_log_set(l, e, ok ? MYNA_SIM_SENT : MYNA_SIM_FAILED, ok ? NULL : why);
    if (ok) {
        snprintf(json, sizeof(json), "{\"id\":\"%s\",\"seq\":%" PRIu64 "}", p->wamid,
                 e ? e->seq : 0);
        reply_json(p->req, 200, json);
    } else {
        reply_error_id(p->req, 502, why, p->wamid);
    }
}

static void on_posted(const struct myna_http_resp *r, void *arg)
{
    struct post *p = arg;
    struct myna_simulator *s = p->s;
    int ok = r->rc == MYNA_OK && r->status == 200;

    p->inflight = 0;
    if (p->si == NULL) {  /* its instance was removed meanwhile */
        post_free(p);
        return;
    }

    if (p->req) {  /* a customer's message: the page hears how it went */
        char why[160];
        if (r->rc != MYNA_OK)
            snprintf(why, sizeof(why), "the ingress did not answer: %.100s", r->error);
        else
            snprintf(why, sizeof(why), "the ingress answered %ld", r->status);
        answer_send(p, ok, why);
        post_free(p);
        return;
    }
    if (!ok && ++p->tries < STATUS_TRIES) {  /* Meta retries its webhooks too */
        post_later(p, 250 << p->tries);
        return;
    }
    if (!ok) {
        MYNA_LOG(MYNA_WARN, "sim_status_dropped", "instance=%s http=%ld", p->si->in->id,
                 r->status);
    } else if (p->then) {
        struct myna_sim_log *l = log_of(p->si);
        struct myna_sim_event *e = l ? myna_sim_log_find(l, p->wamid) : NULL;
        if (e && myna_sim_log_set(l, e, MYNA_SIM_DELIVERED, NULL))
            post_status(s, p->si, e, p->then, NULL, DELIVER_AFTER_MS);
    }
    post_free(p);
}

static void post_send(struct post *p)
{
    char sig[72], hsig[96], url[400];
    const char *headers[] = { "Content-Type: application/json", hsig, NULL };
    struct myna_http_req hr = { .method = "POST", .url = url, .headers = headers,
                                .body = p->body, .body_len = p->len, .timeout_ms = 10000,
                                .max_response = 64 * 1024 };
    struct myna_err err = MYNA_ERR_INIT;

    snprintf(url, sizeof(url), "%s/webhook/%s", p->s->public_url, p->si->in->id);
    if (myna_signature_make(p->si->key, p->body, p->len, sig) != MYNA_OK ||
        snprintf(hsig, sizeof(hsig), "X-Hub-Signature-256: %s", sig) < 0 ||
        myna_http_request(p->s->http, &hr, on_posted, p, &err) != MYNA_OK) {
        struct myna_http_resp r = { .rc = MYNA_EIO, .body = "", .error = "cannot post",
                                    .not_sent = 1 };
        on_posted(&r, p);
        return;
    }
    p->inflight = 1;
}

/* ---- the page's side ------------------------------------------------------------------ */

static void handle_send(struct myna_simulator *s, struct sim_inst *si, struct evhttp_request *req)
{
    struct myna_sim_send m;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_sim_log *l = log_of(si);
    struct post *p;
    char wamid[128], *text = NULL;
    size_t len;
    char *body = request_body(req, MYNA_SIM_BODY_MAX, &len);
    int64_t now = myna_wall_ms() / 1000;

    if (!json_content(req)) {
        free(body);
        reply_error(req, 415, "the body must be sent as Content-Type: application/json");
        return;
    }
    if (body == NULL) {
        reply_error(req, 413, "the body is too large");
        return;
    }
    if (myna_sim_send_parse(body, len, &m, &err) != MYNA_OK) {
        free(body);
        reply_error(req, 400, err.msg);
        return;
    }
    free(body);
    myna_sim_wamid(wamid, sizeof(wamid));
    /* the log takes text and cannot fail: what can fails first */
    if (l == NULL || (text = strdup(m.kind == MYNA_SIM_TEXT ? m.text : m.reply_title)) == NULL ||
        (p = post_new(s, si, myna_sim_message_webhook(si->in, &m, wamid, now))) == NULL) {
        free(text);
        myna_sim_send_release(&m);
        reply_error(req, 500, "out of memory");
        return;
    }
    myna_sim_log_add(l, 0, wamid, m.from, m.kind == MYNA_SIM_TEXT ? "text" : "interactive", text,
                     NULL, NULL, MYNA_SIM_PENDING, now);
    myna_sim_send_release(&m);
    p->req = req;
    snprintf(p->wamid, sizeof(p->wamid), "%s", wamid);
    post_send(p);
}

struct seen_ctx {
    struct myna_simulator *s;
    struct sim_inst *si;
};

static void seen_cb(const struct myna_sim_event *e, void *arg)
{
    struct seen_ctx *c = arg;

    post_status(c->s, c->si, e, "read", NULL, 0);
}

static void handle_events(struct myna_simulator *s, struct sim_inst *si,
                          struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    const char *contact = "", *after_s;
    char digits[16] = "";
    int64_t after = 0;
    struct myna_buf b = MYNA_BUF_INIT(EVENTS_MAX);
    struct myna_sim_log *l = log_of(si);

    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        reply_error(req, 400, "bad query string");
        return;
    }
    contact = evhttp_find_header(&q, "contact");
    after_s = evhttp_find_header(&q, "after");
    if (contact && *contact) {
        size_t n = strspn(contact, "0123456789");
        if (n == 0 || n > 15 || contact[n] != '\0') {
            evhttp_clear_headers(&q);
            reply_error(req, 400, "'contact' must be 1 to 15 digits");
            return;
        }
        memcpy(digits, contact, n + 1);
    }
    if (after_s && myna_parse_i64(after_s, 0, INT64_MAX, &after) != 0) {
        evhttp_clear_headers(&q);
        reply_error(req, 400, "'after' must be a sequence number");
        return;
    }
    evhttp_clear_headers(&q);
    if (l == NULL) {
        reply_error(req, 500, "out of memory");
        return;
    }
    /* the customer is looking: what was delivered is now read (not for a
     * HEAD, which must change nothing; its headers are then those of the
     * events before this read) */
    if (digits[0] && evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
        struct seen_ctx c = { s, si };
        myna_sim_log_seen(l, digits, seen_cb, &c);
    }
    if (myna_sim_log_render(l, digits, (uint64_t)after, myna_mono_ms(), &b) != MYNA_OK)
        reply_error(req, 500, "too many events");
    else
        reply_json(req, 200, b.data);
    myna_buf_release(&b);
}

static void handle_info(struct myna_simulator *s, struct sim_inst *si,
                        struct evhttp_request *req)
{
    const struct myna_instance *in = si->in;
    cJSON *o = cJSON_CreateObject();
    char *json = NULL;

    if (o && cJSON_AddStringToObject(o, "id", in->id) &&
        cJSON_AddStringToObject(o, "name", in->name) &&
        cJSON_AddStringToObject(o, "phone_number_id", in->phone_number_id) &&
        cJSON_AddStringToObject(o, "access_token", in->access_token) &&
        cJSON_AddStringToObject(o, "graph_url", in->graph_url[0] ? in->graph_url : s->graph_url))
        json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (json)
        reply_json(req, 200, json);
    else
        reply_error(req, 500, "out of memory");
    free(json);
}

static void handle_index(struct myna_simulator *s, struct evhttp_request *req)
{
    struct myna_buf b = MYNA_BUF_INIT(1 << 20);

    myna_buf_appends(&b, "<!doctype html><meta charset=utf-8><title>Myna simulator</title>"
                         "<h1>Simulator</h1><ul>");
    for (size_t i = 0; i < s->n; i++)  /* ids are slugs: nothing to escape */
        myna_buf_printf(&b, "<li><a href=\"/sim/%s\">%s</a>", s->v[i]->in->id, s->v[i]->in->id);
    if (s->n == 0)
        myna_buf_appends(&b, "<li>no instance has \"provider\": \"sim\"");
    myna_buf_appends(&b, "</ul>\n");
    reply(req, 200, "text/html; charset=utf-8", b.data ? b.data : "", b.len);
    myna_buf_release(&b);
}

/* ---- the fake Graph API ------------------------------------------------------------------ */

static struct sim_inst *find_pnid(struct myna_simulator *s, const char *pnid, size_t n)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]->in->phone_number_id) == n &&
            memcmp(s->v[i]->in->phone_number_id, pnid, n) == 0)
            return s->v[i];
    return NULL;
}

/* The scheme is read as the admin API reads it (myna_auth_bearer), the
 * token compared in constant time. */
static int bearer_ok(const struct sim_inst *si, struct evhttp_request *req)
{
    const char *h = myna_auth_bearer(
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"));
    size_t n = strlen(si->in->access_token);

    return h && strlen(h) == n && CRYPTO_memcmp(h, si->in->access_token, n) == 0;
}

static void handle_graph(struct myna_simulator *s, struct evhttp_request *req, const char *rest)
{
    const char *slash = strchr(rest, '/');
    struct sim_inst *si;
    struct myna_sim_graph_req g;
    struct myna_sim_log *l;
    char msg[256], *body, json[400];
    size_t len;
    int code = 0, http;

    if (slash == NULL || strcmp(slash, "/messages") != 0 ||
        (si = find_pnid(s, rest, (size_t)(slash - rest))) == NULL) {
        reply_graph_error(req, 400, 100, "GraphMethodException",
                          "Unsupported post request. Object does not exist, cannot be loaded "
                          "due to missing permissions, or does not support this operation.");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply_graph_error(req, 400, 100, "GraphMethodException", "Unsupported get request.");
        return;
    }
    if (!bearer_ok(si, req)) {
        reply_graph_error(req, 401, 190, "OAuthException",
                          "Invalid OAuth access token - Cannot parse access token");
        return;
    }
    if ((body = request_body(req, MYNA_SIM_BODY_MAX, &len)) == NULL) {
        reply_graph_error(req, 413, 100, "OAuthException", "(#100) Request body too large");
        return;
    }
    http = myna_sim_graph_parse(body, len, &g, &code, msg, sizeof(msg));
    free(body);
    if (http != 0) {
        reply_graph_error(req, code == 1 ? 500 : http, code, "OAuthException", msg);
        return;
    }
    if ((l = log_of(si)) == NULL) {
        myna_sim_graph_release(&g);
        reply_graph_error(req, 500, 1, "OAuthException", "An unknown error occurred");
        return;
    }
    if (g.kind == MYNA_SIM_GRAPH_READ) {
        struct myna_sim_event *e = myna_sim_log_find(l, g.read_id);
        myna_sim_log_read_upto(l, g.read_id);
        if (e && g.typing)
            myna_sim_log_typing(l, e->contact, 1, myna_mono_ms());
        reply_json(req, 200, "{\"success\":true}");
    } else {
        char wamid[128];
        struct myna_sim_event *e;
        myna_sim_wamid(wamid, sizeof(wamid));
        e = myna_sim_log_add(l, 1, wamid, g.to, g.type, g.text, g.extra, g.opaque, MYNA_SIM_SENT,
                             myna_wall_ms() / 1000);
        if (e == NULL) {
            myna_sim_graph_release(&g);
            reply_graph_error(req, 500, 1, "OAuthException", "An unknown error occurred");
            return;
        }
        g.text = g.extra = g.opaque = NULL;  /* the log has them */
        snprintf(json, sizeof(json),
                 "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"+%s\","
                 "\"wa_id\":\"%s\"}],\"messages\":[{\"id\":\"%s\"}]}",
                 g.to, g.to, wamid);
        reply_json(req, 200, json);
        post_status(s, si, e, "sent", "delivered", 0);
    }
    myna_sim_graph_release(&g);
}

/* ---- routing ----------------------------------------------------------------------------- */

void myna_simulator_handle(struct myna_simulator *s, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;  /* a HEAD as a GET */
    const char *rest, *slash;
    struct sim_inst *si;

    if (strcmp(path, "/sim") == 0 || strcmp(path, "/sim/") == 0) {
        if (get)
            handle_index(s, req);
        else
            reply_405(req, "GET, HEAD");
        return;
    }
    /* the fake Graph API's paths have a version and a number id; an
     * instance may be called "graph" too, and keeps its own three */
    if (strncmp(path, "/sim/graph/", 11) == 0 &&
        !(find(s, "graph", 5) != NULL &&
          (strcmp(path + 11, "send") == 0 || strcmp(path + 11, "events") == 0 ||
           strcmp(path + 11, "info") == 0))) {
        handle_graph(s, req, path + 11);
        return;
    }
    rest = path + 5;  /* after "/sim/" */
    slash = strchr(rest, '/');
    if ((si = find(s, rest, slash ? (size_t)(slash - rest) : strlen(rest))) == NULL) {
        reply_error(req, 404, "no sim instance of that id");
        return;
    }
    if (slash == NULL && get)
        reply(req, 200, "text/html; charset=utf-8", (const char *)myna_ui_sim_html,
              myna_ui_sim_html_len);
    else if (slash == NULL)  /* the page is there: 405, not 404 */
        reply_405(req, "GET, HEAD");
    else if (strcmp(slash, "/send") == 0 && cmd == EVHTTP_REQ_POST)
        handle_send(s, si, req);
    else if (strcmp(slash, "/events") == 0 && get)
        handle_events(s, si, req);
    else if (strcmp(slash, "/info") == 0 && get)
        handle_info(s, si, req);
    else if (strcmp(slash, "/send") == 0)
        reply_405(req, "POST");
    else if (strcmp(slash, "/events") == 0 || strcmp(slash, "/info") == 0)
        reply_405(req, "GET, HEAD");
    else
        reply_error(req, 404, "not found");
}

static void inst_free(struct myna_simulator *s, struct sim_inst *si)
{
    struct post *p = s->posts, *next;

    for (; p; p = next) {  /* what was on its way for it goes too */
        next = p->next;
        if (p->si != si)
            continue;
        if (p->req)
            reply_error(p->req, 503, "the instance is gone");
        p->req = NULL;
        if (p->inflight)
            p->si = NULL;  /* the HTTP client still holds it: on_posted frees it */
        else
            post_free(p);
    }
    myna_hmac_key_free(si->key);
    myna_sim_log_free(si->log);
    free(si);
}

static struct sim_inst *find_inst(struct myna_simulator *s, const char *id)
{
    return find(s, id, strlen(id));
}

int myna_simulator_set_instances(struct myna_simulator *s, const struct myna_instance *const *v,
                                 size_t n, struct myna_err *err)
{
    struct sim_inst **nv = calloc(n ? n : 1, sizeof(*nv));
    struct myna_hmac_key **keys = calloc(n ? n : 1, sizeof(*keys));
    const struct myna_instance **ins = calloc(n ? n : 1, sizeof(*ins));
    size_t k = 0;

    if (nv == NULL || keys == NULL || ins == NULL)
        goto oom;
    /* first what can fail: keys, and the new instances' objects */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i]->provider, "sim") != 0)
            continue;
        if ((keys[k] = myna_hmac_key_new(v[i]->app_secret, strlen(v[i]->app_secret), err)) ==
            NULL)
            goto fail;
        if ((nv[k] = find_inst(s, v[i]->id)) == NULL && (nv[k] = calloc(1, sizeof(**nv))) == NULL) {
            myna_hmac_key_free(keys[k]);
            goto oom;
        }
        ins[k++] = v[i];
    }
    /* then what cannot: the removed ones go, the others keep their logs */
    for (size_t j = 0; j < s->n; j++) {
        size_t i = 0;
        while (i < k && nv[i] != s->v[j])
            i++;
        if (i == k)
            inst_free(s, s->v[j]);
    }
    for (size_t i = 0; i < k; i++) {  /* a kept one stays itself: only settings move */
        myna_hmac_key_free(nv[i]->key);
        nv[i]->key = keys[i];
        nv[i]->in = ins[i];
    }
    free(keys);
    free(ins);
    free(s->v);
    s->v = nv;
    s->n = k;
    return MYNA_OK;
oom:
    myna_err_set(err, MYNA_ENOMEM, "out of memory");
fail:
    for (size_t i = 0; i < k; i++) {
        myna_hmac_key_free(keys[i]);
        if (nv[i]->key == NULL)  /* a fresh one; the kept ones still have theirs */
            free(nv[i]);
    }
    free(keys);
    free(ins);
    free(nv);
    return err->code;
}

struct myna_simulator *myna_simulator_new(struct event_base *base,
                                          const struct myna_instance_set *instances,
                                          const char *public_addr, const char *admin_addr,
                                          struct myna_err *err)
{
    struct myna_simulator *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    s->base = base;
    if (myna_sim_local_url(public_addr, "", s->public_url, sizeof(s->public_url)) != 0 ||
        myna_sim_local_url(admin_addr, "/sim/graph", s->graph_url, sizeof(s->graph_url)) != 0) {
        myna_err_set(err, MYNA_EINVAL, "bad listener address '%s' or '%s'", public_addr,
                     admin_addr);
        goto fail;
    }
    if ((s->http = myna_http_client_new(base, err)) == NULL)
        goto fail;
    {
        const struct myna_instance **v = calloc(instances->n ? instances->n : 1, sizeof(*v));
        int rc;
        if (v == NULL) {
            myna_err_set(err, MYNA_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < instances->n; i++)
            v[i] = &instances->v[i];
        rc = myna_simulator_set_instances(s, v, instances->n, err);
        free(v);
        if (rc != MYNA_OK)
            goto fail;
    }
    return s;
fail:
    myna_simulator_free(s);
    return NULL;
}

void myna_simulator_free(struct myna_simulator *s)
{
    if (s == NULL)
        return;
    myna_http_client_free(s->http);  /* callbacks never run after this */
    while (s->posts) {
        if (s->posts->req)
            reply_error(s->posts->req, 503, "shutting down");
        post_free(s->posts);
    }
    for (size_t i = 0; i < s->n; i++)
        inst_free(s, s->v[i]);
    free(s->v);
    free(s);
}
