/* admin.c - the admin API: authentication, roles, routes, JSON. */
#include "master/admin.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/auth.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "core/worker.h"
#include "master/fleet.h"
#include "master/supervisor.h"
#include "net/http_server.h"
#include "store/bot_store.h"
#include "store/control.h"
#include "store/store.h"
#include "wa/format.h"
#include "core/banned.h"

#define FIELD_ERRORS 32
#define LOG_LINES_MAX 10000

/* Failed logins are counted per address and in all, over a minute; past
 * either limit /admin/login answers 429 before it hashes anything. An
 * attempt counts as failed from the moment it is accepted until its check
 * succeeds, so concurrent attempts cannot slip past the limit. That bounds
 * both guessing and the CPU an attacker can make Myna spend on password
 * hashes. Behind a proxy every address is the proxy's: the limit in all
 * still holds. */
#define LOGIN_WINDOW_MS 60000
#define LOGIN_FAILS_PER_ADDR 10
#define LOGIN_FAILS_ALL 100
#define LOGIN_ADDRS 64
/* Password hashes and checks waiting for the worker thread; past this the
 * request is answered 503 (each costs tens of milliseconds). */
#define PW_QUEUE 8
/* The audit log's old rows go in steps of AUDIT_PRUNE_STEP rows (a few
 * milliseconds of the loop each), at most AUDIT_PRUNE_STEPS per turn; a
 * turn every hour, or every second while there is more. */
#define AUDIT_PRUNE_STEP 500
#define AUDIT_PRUNE_STEPS 10

struct login_fails {
    char from[64];
    int64_t since_ms;   /* start of this address's window */
    int n;
};

struct myna_admin {
    struct myna_control *control;
    struct myna_fleet *fleet;
    struct myna_supervisor *sup;
    struct myna_worker *worker;  /* password hashes and checks */
    int stopping;                /* the loop is gone: waiting jobs answer nothing */
    char data_dir[4096];
    int64_t login_ttl_ms;  /* how long a login's token works */
    int64_t audit_keep_ms; /* 0: the audit log is kept forever */
    struct event *prune_timer;
    struct login_fails fails[LOGIN_ADDRS];
    int64_t all_since_ms;
    int all_n;
};

/* One request: who asks and what for. */
struct call {
    struct myna_admin *a;
    struct evhttp_request *req;
    struct myna_control_user user;
    struct myna_actor actor;
    char from[64];
};

/* ---- answers ------------------------------------------------------------------- */

static void send_json(struct evhttp_request *req, int code, cJSON *body /* deleted */)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    struct evbuffer *out = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (out)
        evbuffer_add(out, text ? text : "{\"error\":\"out of memory\"}",
                     strlen(text ? text : "{\"error\":\"out of memory\"}"));
    myna_http_reply(req, text ? code : 500, NULL, out);
    if (out)
        evbuffer_free(out);
    free(text);
    cJSON_Delete(body);
}

static void send_error(struct evhttp_request *req, int code, const char *msg)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "error", msg);
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"myna\"");
    send_json(req, code, o);
}

/* 405 with the methods the path takes (allow), as RFC 9110 15.5.6 asks. */
static void send_405(struct evhttp_request *req, const char *allow, const char *msg)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    send_error(req, 405, msg);
}

static void send_fields(struct evhttp_request *req, const char *msg,
                        const struct myna_field_error *e, size_t n)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "fields");

    cJSON_AddStringToObject(o, "error", msg);
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "field", e[i].field);
        cJSON_AddStringToObject(f, "error", e[i].error);
        cJSON_AddItemToArray(arr, f);
    }
    send_json(req, 400, o);
}

/* The HTTP status of a failed operation. */
static int status_of(int rc)
{
    switch (rc) {
    case MYNA_ENOTFOUND: return 404;
    case MYNA_EEXISTS: return 409;
    case MYNA_ECONFLICT: return 409;
    case MYNA_EINVAL: case MYNA_ECONFIG: case MYNA_EPARSE: return 400;
    case MYNA_ETOOBIG: return 413;
    case MYNA_EAGAIN: return 503;  /* not now: the server is stopping */
    default: return 500;
    }
}

static void send_failure(struct evhttp_request *req, int rc, const struct myna_err *err)
{
    int code = status_of(rc);

    if (code == 500) {
        char q[600];
        MYNA_LOG(MYNA_ERROR, "admin_failed", "err=%s", myna_log_q(q, sizeof(q), err->msg));
        send_error(req, 500, "internal error (see the log)");
        return;
    }
    send_error(req, code, err->msg);
}

/* The body (NUL-terminated, malloc), or NULL after answering 413. */
static char *body_of(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char *b;

    *len = evbuffer_get_length(in);
    if (*len > MYNA_ADMIN_BODY_MAX) {
        send_error(req, 413, "the body is larger than 1 MiB");
        return NULL;
    }
    if ((b = malloc(*len + 1)) == NULL) {
        send_error(req, 500, "out of memory");
        return NULL;
    }
    evbuffer_copyout(in, b, *len);
    b[*len] = '\0';
    return b;
}

/* The body as a JSON object, or NULL after answering 400/413. */
static cJSON *json_body(struct evhttp_request *req)
{
    size_t len;
    char *b = body_of(req, &len);
    const char *why = "another value";
    char msg[96];
    cJSON *o;

    if (b == NULL)
        return NULL;
    o = myna_json_parse_whole(b, len, &why);
    free(b);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(msg, sizeof(msg), "the body must be a JSON object (%s)", why);
        send_error(req, 400, msg);
        return NULL;
    }
    return o;
}

/* ---- who asks -------------------------------------------------------------------- */

/* "Authorization: Bearer <token>" (myna_auth_bearer). */
static int authenticate(struct call *c)
{
    const char *h = myna_auth_bearer(
        evhttp_find_header(evhttp_request_get_input_headers(c->req), "Authorization"));
    struct myna_err err = MYNA_ERR_INIT;
    char hash[65];
    int rc;

    if (h == NULL) {
        send_error(c->req, 401, "an API token is required: Authorization: Bearer <token>");
        return -1;
    }
    if (!myna_token_looks_valid(h)) {
        send_error(c->req, 401, "not a valid API token");
        return -1;
    }
    myna_token_hash(h, hash);
    rc = myna_control_token_find(c->a->control, hash, myna_wall_ms(), &c->user, NULL, &err);
    if (rc == MYNA_ENOTFOUND) {
        send_error(c->req, 401, "unknown, revoked or expired API token");
        return -1;
    }
    if (rc != MYNA_OK) {
        send_failure(c->req, rc, &err);
        return -1;
    }
    c->actor.user_id = c->user.id;
    c->actor.name = c->user.name;
    c->actor.role = c->user.role;
    c->actor.from_addr = c->from;
    return 0;
}

/* The request's method, with HEAD read as GET: a HEAD goes where a GET
 * goes, through the same checks, and gets its answer without the body
 * (myna_http_reply). Every GET here only reads; show_instance writes no
 * audit row for a HEAD, which shows no secret. */
static enum evhttp_cmd_type method_of(const struct call *c)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(c->req);

    return cmd == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : cmd;
}

static int allowed(struct call *c, int min_role)
{
    if (c->user.role >= min_role)
        return 1;
    send_error(c->req, 403, min_role == MYNA_ROLE_ADMIN ? "only an admin may do this"
                                                        : "a guest may only read");
    return 0;
}

/* The instance id if this caller may see it (else answers 404). */
static int visible(struct call *c, const char *id)
{
    int64_t owner = myna_fleet_owner(c->a->fleet, id);

    if (owner < 0 || (c->user.role == MYNA_ROLE_USER && owner != c->user.id)) {
        send_error(c->req, 404, "no such instance");
        return 0;
    }
    return 1;
}

/* The audit row of c's request (detail: JSON or NULL). It goes in the
 * transaction of the change it records, so that a change is never made
 * without its row; what changes nothing (secrets shown) writes its row
 * alone, before answering, and answers nothing it could not record. */
static int audit(struct call *c, const char *action, const char *target, const char *detail,
                 struct myna_err *err)
{
    struct myna_control_audit a = { 0, myna_wall_ms(), c->user.id, c->user.name, (char *)action,
                                    (char *)target, (char *)detail, c->from };

    return myna_control_audit_add(c->a->control, &a, NULL, err);
}

/* audit() with detail as JSON; detail (deleted) NULL: out of memory. */
static int audit_json(struct call *c, const char *action, const char *target,
                      cJSON *detail, struct myna_err *err)
{
    char *text = detail ? cJSON_PrintUnformatted(detail) : NULL;
    int rc = text ? audit(c, action, target, text, err)
                  : myna_err_set(err, MYNA_ENOMEM, "out of memory");

    free(text);
    cJSON_Delete(detail);
    return rc;
}

/* ---- instances ----------------------------------------------------------------------- */

/* "needs_attention": the names of the reasons that are on ([] if none). */
static void add_attention(cJSON *o, unsigned attention)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "needs_attention");

    for (int i = 0; arr && i < MYNA_ATTN_COUNT; i++)
        if (attention & (1u << i))
            cJSON_AddItemToArray(arr, cJSON_CreateString(myna_attention_name(i)));
}

static void add_state(struct call *c, cJSON *o, const char *id)
{
    struct myna_bot_status st;

    if (c->a->sup && myna_supervisor_status(c->a->sup, id, &st) == MYNA_OK) {
        cJSON_AddStringToObject(o, "state", st.state);
        cJSON_AddNumberToObject(o, "pid", (double)st.pid);
        cJSON_AddNumberToObject(o, "restarts", st.restarts);
        add_attention(o, st.attention);
    } else {
        cJSON_AddStringToObject(o, "state", c->a->sup ? "stopped" : "bots_off");
        add_attention(o, 0);
    }
}

/* A new item of the list for instance id, with its id and owner, in arr;
 * NULL when the caller may not see it (or out of memory). */
static cJSON *list_item(struct call *c, cJSON *arr, const char *id)
{
    int64_t owner = myna_fleet_owner(c->a->fleet, id);
    cJSON *o;

    if ((c->user.role == MYNA_ROLE_USER && owner != c->user.id) ||
        (o = cJSON_CreateObject()) == NULL)
        return NULL;
    cJSON_AddItemToArray(arr, o);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "owner", (double)owner);
    return o;
}

static void list_instances(struct call *c)
{
    cJSON *arr = cJSON_CreateArray(), *o;

    for (size_t i = 0; arr && i < myna_fleet_count(c->a->fleet); i++) {
        const char *id = myna_fleet_id(c->a->fleet, i);
        const struct myna_instance *in = myna_fleet_find(c->a->fleet, id);
        if ((o = list_item(c, arr, id)) == NULL)
            continue;
        cJSON_AddStringToObject(o, "name", in->name);
        cJSON_AddStringToObject(o, "provider", in->provider);
        cJSON_AddBoolToObject(o, "enabled", in->enabled);
        cJSON_AddBoolToObject(o, "auto_start", in->auto_start);
        add_state(c, o, id);
    }
    for (size_t i = 0; arr && i < myna_fleet_unloaded_count(c->a->fleet); i++) {
        const char *id = myna_fleet_unloaded_id(c->a->fleet, i);
        if ((o = list_item(c, arr, id)) == NULL)
            continue;
        cJSON_AddStringToObject(o, "state", "not_loaded");
        cJSON_AddStringToObject(o, "error", myna_fleet_unloaded(c->a->fleet, id));
    }
    send_json(c->req, 200, arr);
}

/* An instance that did not load at start can only be replaced (a PUT of
 * the whole instance) or deleted: 409 with why to anything else. Returns 1
 * when it answered. */
static int refuse_unloaded(struct call *c, const char *id, int replacing_or_deleting)
{
    const char *why = myna_fleet_unloaded(c->a->fleet, id);
    char msg[600];

    if (why == NULL || replacing_or_deleting)
        return 0;
    snprintf(msg, sizeof(msg),
             "instance '%s' did not load at start (%s): PUT the whole instance again, or "
             "delete it", id, why);
    send_error(c->req, 409, msg);
    return 1;
}

/* ?secrets=1: an admin's export, with the secrets (audited). */
static int wants_secrets(struct call *c)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req));

    return q && strcmp(q, "secrets=1") == 0;
}

/* ?limit=N&offset=M of a list: limit 1..MYNA_CONTROL_LIST_MAX (def when
 * absent), offset from 0; with key (a list by id: "before" newest first,
 * "after" oldest first), also ?<key>=ID, an id from 1 (*id 0 when absent).
 * 0, or -1 after answering 400. */
static int page_of(struct call *c, size_t def, size_t *limit, size_t *offset, const char *key,
                   int64_t *id)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req)), *v;
    int64_t l = (int64_t)def, o = 0, b = 0;
    struct evkeyvalq q;
    int bad = 0;

    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        send_error(c->req, 400, "bad query string");
        return -1;
    }
    if ((v = evhttp_find_header(&q, "limit")) != NULL &&
        myna_parse_i64(v, 1, MYNA_CONTROL_LIST_MAX, &l) != 0)
        bad = 1;
    if ((v = evhttp_find_header(&q, "offset")) != NULL &&
        myna_parse_i64(v, 0, INT32_MAX, &o) != 0)
        bad = 1;
    if (key && (v = evhttp_find_header(&q, key)) != NULL &&
        myna_parse_i64(v, 1, INT64_MAX, &b) != 0)
        bad = 1;
    evhttp_clear_headers(&q);
    if (bad) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "'limit' must be a number from 1 to 1000, 'offset' from 0%s%s%s",
                 key ? ", '" : "", key ? key : "", key ? "' an id from 1" : "");
        send_error(c->req, 400, msg);
        return -1;
    }
    *limit = (size_t)l;
    *offset = (size_t)o;
    if (key)
        *id = b;
    return 0;
}

/* 1 when the request does not ask for secrets or its caller may see them,
 * else 0 after answering 403. Checked before anything changes, so that a
 * refused request changes nothing. */
static int secrets_allowed(struct call *c)
{
    return !wants_secrets(c) || allowed(c, MYNA_ROLE_ADMIN);
}

/* ?secrets=1 on a change (an admin's): the export's audit row goes in the
 * change's transaction, so that neither is done without the other. */
static void export_with_change(struct call *c)
{
    if (wants_secrets(c) && c->user.role == MYNA_ROLE_ADMIN)
        c->actor.audit_also = "instance.export_secrets";
}

/* The instance; with ?secrets=1 and code 200 its secrets too (the caller
 * checked secrets_allowed first), once their export is in the audit log:
 * with the change (export_with_change), else now. A HEAD shows none, so
 * it writes no row and gets the masked view's headers. */
static void show_instance(struct call *c, const char *id, int code)
{
    enum myna_secrets_view view = c->user.role == MYNA_ROLE_GUEST ? MYNA_SECRETS_HIDDEN
                                                                  : MYNA_SECRETS_MASKED;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *o;
    int rc;

    if (code == 200 && wants_secrets(c) && c->user.role == MYNA_ROLE_ADMIN &&
        evhttp_request_get_command(c->req) != EVHTTP_REQ_HEAD) {
        if (c->actor.audit_also == NULL &&
            (rc = audit(c, "instance.export_secrets", id, NULL, &err)) != MYNA_OK) {
            send_failure(c->req, rc, &err);
            return;
        }
        view = MYNA_SECRETS_SHOWN;
    }
    o = myna_fleet_config_json(c->a->fleet, id, view);

    if (o == NULL) {
        send_error(c->req, 404, "no such instance");
        return;
    }
    cJSON_AddNumberToObject(o, "owner", (double)myna_fleet_owner(c->a->fleet, id));
    add_state(c, o, id);
    send_json(c->req, code, o);
}

/* After a create or an update: the bad fields, the failure, or the instance. */
static void answer_write(struct call *c, int rc, const struct myna_err *err,
                         const struct myna_field_error *errs, size_t n, const char *id, int code)
{
    if (rc == MYNA_ECONFIG && n > 0)
        send_fields(c->req, "the instance is not valid", errs, n);
    else if (rc != MYNA_OK)
        send_failure(c->req, rc, err);
    else
        show_instance(c, id, code);
}

static void create_instance(struct call *c)
{
    struct myna_field_error errs[FIELD_ERRORS];
    struct myna_err err = MYNA_ERR_INIT;
    size_t len, n = 0;
    char id[80], *body = body_of(c->req, &len);
    int rc;

    if (body == NULL)
        return;
    rc = myna_fleet_create(c->a->fleet, &c->actor, body, len, id, sizeof(id), errs, FIELD_ERRORS,
                           &n, &err);
    free(body);
    answer_write(c, rc, &err, errs, n, id, 201);
}

static void update_instance(struct call *c, const char *id)
{
    struct myna_field_error errs[FIELD_ERRORS];
    struct myna_err err = MYNA_ERR_INIT;
    size_t len, n = 0;
    char *body = body_of(c->req, &len);
    int rc;

    if (body == NULL)
        return;
    rc = myna_fleet_update(c->a->fleet, &c->actor, id, body, len, errs, FIELD_ERRORS, &n, &err);
    free(body);
    answer_write(c, rc, &err, errs, n, id, 200);
}

/* The bot's store of id, opened for this request (NULL if it has none yet:
 * a read, or a refused change, must not make one its bot never made). */
static struct myna_bot_store *bot_store(struct call *c, const char *id, struct myna_store **st)
{
    struct myna_store_opts so = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 200,
                                  .unnumbered = 1, .existing = 1 };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_bot_store *bs = NULL;
    char path[4300];

    snprintf(path, sizeof(path), "%s/instances/%s.bot.db", c->a->data_dir, id);
    if ((*st = myna_store_open_sqlite(path, &so, &err)) != NULL &&
        (bs = myna_bot_store_new(*st, &err)) == NULL) {
        myna_store_free(*st);
        *st = NULL;
    }
    return bs;
}

/* Records the ingress stored for id (its inbox rows are numbered from 1),
 * or -1. */
static int64_t inbox_count(struct call *c, const char *id)
{
    struct myna_store_opts so = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 200,
                                  .existing = 1 };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st;
    int64_t n_inbox = -1, n_status = 0;
    char path[4300];

    snprintf(path, sizeof(path), "%s/instances/%s.db", c->a->data_dir, id);
    if ((st = myna_store_open_sqlite(path, &so, &err)) == NULL)
        return -1;  /* none yet: the ingress makes it */
    if (myna_store_count(st, &n_inbox, &n_status, &err) != MYNA_OK)
        n_inbox = -1;
    myna_store_free(st);
    return n_inbox;
}

static void on_counter(const char *name, int64_t v, void *arg)
{
    cJSON_AddNumberToObject(arg, name, (double)v);
}

static void add_counts(struct call *c, cJSON *o, const char *id, int with_counters)
{
    struct myna_store *st = NULL;
    struct myna_bot_store *bs = bot_store(c, id, &st);
    struct myna_bot_counts n;
    struct myna_err err = MYNA_ERR_INIT;
    int64_t consumed = 0;

    if (bs && myna_bot_counts(bs, &n, &err) == MYNA_OK) {
        cJSON_AddNumberToObject(o, "outbox_open", (double)n.outbox_open);
        cJSON_AddNumberToObject(o, "dead_letters", (double)n.dead_letters);
        cJSON_AddNumberToObject(o, "sends_unconfirmed", (double)n.unconfirmed);
        cJSON_AddNumberToObject(o, "turns_pending", (double)n.turns_pending);
        cJSON_AddNumberToObject(o, "open_batches", (double)n.open_batches);
    }
    if (bs && myna_bot_cursor_get(bs, "inbox", &consumed, &err) == MYNA_OK) {
        int64_t in = inbox_count(c, id);
        cJSON_AddNumberToObject(o, "inbox_consumed", (double)consumed);
        if (in >= 0)  /* received and not yet taken up by the bot */
            cJSON_AddNumberToObject(o, "inbox_depth", (double)(in > consumed ? in - consumed : 0));
    }
    if (bs && with_counters) {
        int64_t sent = 0, turns = 0;
        if (myna_bot_totals(bs, &sent, &turns, &err) == MYNA_OK) {
            cJSON_AddNumberToObject(o, "messages_out", (double)sent);
            cJSON_AddNumberToObject(o, "turns", (double)turns);
        }
    }
    if (bs && with_counters) {
        cJSON *cnt = cJSON_AddObjectToObject(o, "counters");
        if (cnt)
            myna_bot_counters(bs, on_counter, cnt, &err);
    }
    myna_bot_store_free(bs);
    myna_store_free(st);
}

static void instance_status(struct call *c, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    struct myna_bot_status st;

    cJSON_AddStringToObject(o, "id", id);
    if (c->a->sup && myna_supervisor_status(c->a->sup, id, &st) == MYNA_OK) {
        cJSON_AddStringToObject(o, "state", st.state);
        cJSON_AddNumberToObject(o, "pid", (double)st.pid);
        cJSON_AddNumberToObject(o, "uptime_ms", (double)st.uptime_ms);
        cJSON_AddNumberToObject(o, "restarts", st.restarts);
        cJSON_AddNumberToObject(o, "last_exit_code", st.last_exit_code);
        cJSON_AddNumberToObject(o, "last_signal", st.last_signal);
        cJSON_AddNumberToObject(o, "rss_kb", (double)st.rss_kb);
        cJSON_AddStringToObject(o, "reason", st.reason);
        cJSON_AddBoolToObject(o, "crash_loop", st.crash_loop);
        add_attention(o, st.attention);
    } else {
        cJSON_AddStringToObject(o, "state", c->a->sup ? "stopped" : "bots_off");
        cJSON_AddBoolToObject(o, "crash_loop", 0);
        add_attention(o, 0);
    }
    add_counts(c, o, id, 0);
    send_json(c->req, 200, o);
}

static void instance_stats(struct call *c, const char *id)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", id);
    add_counts(c, o, id, 1);
    send_json(c->req, 200, o);
}

static void instance_logs(struct call *c, const char *id)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req)), *lines_s;
    int64_t lines = 100;
    int rc;
    struct myna_buf b = MYNA_BUF_INIT(16 << 20);
    struct evbuffer *out;
    char path[4300];

    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        send_error(c->req, 400, "bad query string");
        return;
    }
    lines_s = evhttp_find_header(&q, "lines");
    if (lines_s && myna_parse_i64(lines_s, 1, LOG_LINES_MAX, &lines) != 0) {
        evhttp_clear_headers(&q);
        send_error(c->req, 400, "'lines' must be a number from 1 to 10000");
        return;
    }
    evhttp_clear_headers(&q);
    snprintf(path, sizeof(path), "%s/logs/%s.log", c->a->data_dir, id);
    if ((rc = myna_log_tail(path, (size_t)lines, &b)) != MYNA_OK) {
        myna_buf_release(&b);
        if (rc == MYNA_ENOTFOUND)
            send_error(c->req, 404, "no log for this instance yet");
        else  /* a line over 16 MiB, a read error, no memory: the log is there */
            send_error(c->req, 500, rc == MYNA_ETOOBIG ? "the newest log line is too long"
                                                       : "the log cannot be read");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type",
                      "text/plain; charset=utf-8");
    /* customers' numbers, masked, and at debug their messages */
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Cache-Control", "no-store");
    if ((out = evbuffer_new()) != NULL)
        evbuffer_add(out, b.data ? b.data : "", b.len);
    myna_http_reply(c->req, 200, NULL, out);
    if (out)
        evbuffer_free(out);
    myna_buf_release(&b);
}

/* ---- contacts: profile, history, an operator's message --------------------- */

#define PREFS_MAX 50

static void on_hist(const char *role, const char *text, int64_t ts_ms, void *arg)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "role", role);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddNumberToObject(o, "ts_ms", (double)ts_ms);
    cJSON_AddItemToArray(arg, o);
}

/* {"preferences": {key: "value"}}: at most 50, keys 1-64 bytes, values of
 * at most 200 bytes of UTF-8, each key once (the model would be told both
 * values of a key given twice). NULL (answered 400) when not. */
static char *prefs_body(struct call *c)
{
    cJSON *body = json_body(c->req), *p, *it;
    char *out = NULL, twice[160];
    int n = 0, ok, dup = 0;

    if (body == NULL)
        return NULL;
    p = cJSON_GetObjectItemCaseSensitive(body, "preferences");
    ok = cJSON_IsObject(p) && cJSON_GetArraySize(body) == 1;
    if (!ok)
        p = NULL;
    cJSON_ArrayForEach(it, p) {
        size_t kl = strlen(it->string);
        if (!cJSON_IsString(it) || kl == 0 || kl > 64 || strlen(it->valuestring) > 200 ||
            myna_utf8_count(it->string) == (size_t)-1 ||
            myna_utf8_count(it->valuestring) == (size_t)-1 || ++n > PREFS_MAX)
            ok = 0;
    }
    if (ok && (dup = myna_json_repeated_key(p, twice, sizeof(twice))) < 0) {
        send_error(c->req, 500, "out of memory");
    } else if (dup) {
        char msg[224];
        snprintf(msg, sizeof(msg), "preference '%s' is given twice", twice);
        send_error(c->req, 400, msg);
    } else if (ok) {
        out = cJSON_PrintUnformatted(p);
    } else {
        send_error(c->req, 400, "expected {\"preferences\": {\"key\": \"value\", ...}}: at most 50 "
                                "keys of 1-64 bytes, values of at most 200 bytes of UTF-8");
    }
    cJSON_Delete(body);
    return out;
}

/* A change of a bot's store st with its audit row, which is in the control
 * store: the control store's transaction is begun first and holds the row,
 * then st's. */
static int audited_begin(struct call *c, struct myna_store *st, const char *action,
                         const char *id, struct myna_err *err)
{
    int rc;

    if ((rc = myna_control_begin(c->a->control, err)) != MYNA_OK)
        return rc;
    if ((rc = audit(c, action, id, NULL, err)) == MYNA_OK &&
        (rc = myna_store_begin(st, err)) == MYNA_OK)
        return MYNA_OK;
    myna_control_rollback(c->a->control);
    return rc;
}

/* Ends what audited_begin began: with rc MYNA_OK commits the audit row,
 * then the change (a change is never kept without its row; should st's
 * commit fail after it, the row stays for a change not made, and the
 * answer is 500), else rolls both back. rc, or the commit's failure. */
static int audited_end(struct call *c, struct myna_store *st, int rc, struct myna_err *err)
{
    if (rc == MYNA_OK && (rc = myna_control_commit(c->a->control, err)) == MYNA_OK)
        return myna_store_commit(st, err);
    myna_control_rollback(c->a->control);
    myna_store_rollback(st);
    return rc;
}

/* An operator's message: into the outbox and the history in one
 * transaction, with its audit row; the bot sends it (its sender looks every
 * second). */
static int operator_message(struct call *c, struct myna_bot_store *bs, struct myna_store *st,
                            const char *id, const char *contact, int64_t *out_id,
                            struct myna_err *err)
{
    cJSON *body = json_body(c->req), *content;
    const cJSON *text;
    char *json = NULL;
    int rc;

    if (body == NULL)
        return 1;  /* answered */
    text = cJSON_GetObjectItemCaseSensitive(body, "text");
    /* what shows nothing (whitespace, NBSP, U+200B ...) would be an empty
     * message, if Meta took it: blank as the bot's answers are */
    if (!cJSON_IsString(text) || myna_wa_is_blank(text->valuestring) ||
        myna_utf8_count(text->valuestring) > 4096) {
        cJSON_Delete(body);
        send_error(c->req, 400,
                   "expected {\"text\"}: 1 to 4096 characters of UTF-8, not only whitespace");
        return 1;
    }
    content = cJSON_CreateObject();
    if (content && cJSON_AddStringToObject(content, "type", "text") &&
        cJSON_AddStringToObject(content, "text", text->valuestring))
        json = cJSON_PrintUnformatted(content);
    cJSON_Delete(content);
    if (json == NULL) {
        cJSON_Delete(body);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    if ((rc = audited_begin(c, st, "contact.message", id, err)) == MYNA_OK) {
        int64_t now = myna_wall_ms();
        rc = myna_bot_outbox_add(bs, contact, 0, json, now, out_id, err);
        if (rc == MYNA_OK)
            rc = myna_bot_history_add(bs, contact, "operator", text->valuestring, now, err);
        rc = audited_end(c, st, rc, err);
    }
    free(json);
    cJSON_Delete(body);
    return rc;
}

static void contact(struct call *c, const char *id, const char *rest)
{
    enum evhttp_cmd_type cmd = method_of(c);
    const char *slash = strchr(rest, '/');
    char wa[24];
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    struct myna_store *st = NULL;
    struct myna_bot_store *bs;
    struct myna_err err = MYNA_ERR_INIT;
    int rc = MYNA_OK;

    if (n == 0 || n > 15 || strspn(rest, "0123456789") != n ||
        (slash && strcmp(slash, "/messages") != 0)) {
        send_error(c->req, 404, "not found (contacts are named by their digits)");
        return;
    }
    if (slash && cmd != EVHTTP_REQ_POST) {
        send_405(c->req, "POST", "use POST");
        return;
    }
    if (!slash && cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_PUT) {
        send_405(c->req, "GET, HEAD, PUT", "use GET or PUT (POST .../messages for a message)");
        return;
    }
    memcpy(wa, rest, n);
    wa[n] = '\0';
    if (c->user.role < MYNA_ROLE_USER) {  /* customers' data: not for monitoring tokens */
        send_error(c->req, 403, "a guest may not see customers' profiles or conversations");
        return;
    }
    if ((bs = bot_store(c, id, &st)) == NULL) {
        send_error(c->req, 503, "the instance's bot has no store yet: start it once");
        return;
    }
    if (slash && cmd == EVHTTP_REQ_POST) {
        int64_t out_id = 0;
        rc = operator_message(c, bs, st, id, wa, &out_id, &err);
        if (rc == MYNA_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "queued", (double)out_id);
            if (c->a->sup)
                myna_supervisor_ring(c->a->sup, id);
            send_json(c->req, 202, o);
        }
    } else if (!slash && cmd == EVHTTP_REQ_PUT) {
        char *prefs = prefs_body(c);
        if (prefs) {
            if ((rc = audited_begin(c, st, "contact.preferences", id, &err)) == MYNA_OK) {
                rc = myna_bot_profile_set_prefs(bs, wa, prefs, myna_wall_ms(), &err);
                rc = audited_end(c, st, rc, &err);
            }
            free(prefs);
        } else {
            rc = 1;  /* answered */
        }
    }
    if (rc == MYNA_OK && !(slash && cmd == EVHTTP_REQ_POST)) {  /* the contact as it is now */
        cJSON *o = cJSON_CreateObject(), *prefs_j = NULL, *hist = cJSON_CreateArray();
        char *name = NULL, *prefs = NULL;
        if (myna_bot_profile_get(bs, wa, &name, &prefs, &err) == MYNA_OK)
            prefs_j = cJSON_Parse(prefs);
        cJSON_AddStringToObject(o, "contact", wa);
        if (name)
            cJSON_AddStringToObject(o, "name", name);
        cJSON_AddItemToObject(o, "preferences", prefs_j ? prefs_j : cJSON_CreateObject());
        myna_bot_history_recent(bs, wa, 64 * 1024, 0, on_hist, hist, &err);
        cJSON_AddItemToObject(o, "history", hist);
        free(name);
        free(prefs);
        send_json(c->req, 200, o);
    } else if (rc < 0) {
        send_failure(c->req, rc, &err);
    }
    myna_bot_store_free(bs);
    myna_store_free(st);
}

static void instances(struct call *c, const char *rest)
{
    enum evhttp_cmd_type cmd = method_of(c);
    struct myna_err err = MYNA_ERR_INIT;
    char id[80];
    const char *slash, *sub;
    int rc;

    if (*rest == '\0') {
        if (cmd == EVHTTP_REQ_GET)
            list_instances(c);
        else if (cmd == EVHTTP_REQ_POST && allowed(c, MYNA_ROLE_USER))
            create_instance(c);
        else if (cmd != EVHTTP_REQ_POST)
            send_405(c->req, "GET, HEAD, POST", "use GET or POST");
        return;
    }
    slash = strchr(rest, '/');
    snprintf(id, sizeof(id), "%.*s", (int)(slash ? (size_t)(slash - rest) : strlen(rest)), rest);
    sub = slash ? slash + 1 : "";
    if (!myna_is_slug(id) || !visible(c, id)) {
        if (!myna_is_slug(id))
            send_error(c->req, 404, "no such instance");
        return;
    }
    if (refuse_unloaded(c, id,
                        *sub == '\0' && (cmd == EVHTTP_REQ_PUT || cmd == EVHTTP_REQ_DELETE)))
        return;
    if (*sub == '\0') {
        if (cmd == EVHTTP_REQ_GET && secrets_allowed(c))
            show_instance(c, id, 200);
        else if (cmd == EVHTTP_REQ_PUT && allowed(c, MYNA_ROLE_USER) && secrets_allowed(c)) {
            export_with_change(c);
            update_instance(c, id);
        }
        else if (cmd == EVHTTP_REQ_DELETE && allowed(c, MYNA_ROLE_USER)) {
            if ((rc = myna_fleet_delete(c->a->fleet, &c->actor, id, &err)) != MYNA_OK) {
                send_failure(c->req, rc, &err);
            } else {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "deleted", id);
                send_json(c->req, 200, o);
            }
        } else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_DELETE)
            send_405(c->req, "GET, HEAD, PUT, DELETE", "use GET, PUT or DELETE");
        return;
    }
    if (strcmp(sub, "start") == 0 || strcmp(sub, "stop") == 0 || strcmp(sub, "restart") == 0) {
        if (cmd != EVHTTP_REQ_POST) {
            send_405(c->req, "POST", "use POST");
        } else if (allowed(c, MYNA_ROLE_USER) && secrets_allowed(c)) {
            export_with_change(c);
            if ((rc = myna_fleet_action(c->a->fleet, &c->actor, id, sub, &err)) != MYNA_OK)
                send_failure(c->req, rc, &err);
            else
                show_instance(c, id, 200);
        }
        return;
    }
    if (strncmp(sub, "contacts/", 9) == 0) {
        contact(c, id, sub + 9);
        return;
    }
    if (strcmp(sub, "status") != 0 && strcmp(sub, "stats") != 0 && strcmp(sub, "logs") != 0)
        send_error(c->req, 404, "not found");
    else if (cmd != EVHTTP_REQ_GET)
        send_405(c->req, "GET, HEAD", "use GET");
    else if (strcmp(sub, "status") == 0)
        instance_status(c, id);
    else if (strcmp(sub, "stats") == 0)
        instance_stats(c, id);
    else
        instance_logs(c, id);
}

/* ---- password jobs -------------------------------------------------------------------- */

/* A request waiting for a password hash or check, which runs on the
 * worker thread (core/worker.h): scrypt costs tens of milliseconds by
 * design, and the loop must keep answering webhooks meanwhile. The job owns
 * the request's call (with its user), its body and its strings. */
struct pw_job {
    struct myna_worker_job w;
    struct call c;
    cJSON *body;
    const char *password;  /* in body; NULL: nothing to hash */
    int check;             /* 1: check password against hash; 0: hash it */
    char *hash;            /* check: the stored hash (NULL: none); else the new hash */
    char *target;          /* the user the request is about */
    int64_t user_id;       /* login: the user whose hash is checked */
    int64_t counted_ms;    /* login: when the attempt was counted as failed */
    int ok;                /* check: the password matched */
    int role_needed;       /* the caller's least role, checked again after the
                            * wait; -1: no caller (a login) */
    struct myna_err err;   /* hash: why it failed */
    void (*finish)(struct pw_job *j);  /* on the loop: answers (unless the hash failed) */
};

static void pw_job_free(struct pw_job *j)
{
    if (j->password)
        memset((char *)j->password, 0, strlen(j->password));
    myna_control_user_release(&j->c.user);
    cJSON_Delete(j->body);
    free(j->hash);
    free(j->target);
    free(j);
}

static void pw_work(struct myna_worker_job *w)
{
    struct pw_job *j = (struct pw_job *)w;

    if (!j->check) {
        j->hash = myna_password_hash(j->password, &j->err);
    } else if (j->hash) {
        j->ok = myna_password_verify(j->password, j->hash);
    } else {
        /* no such user: spend what a check costs, so that the time of the
         * answer does not tell which names exist */
        free(myna_password_hash(j->password, NULL));
        j->ok = 0;
    }
}

/* The caller of a request that waited for the worker, read again: its
 * token may have been revoked, or its role lowered, meanwhile. 1, or 0
 * after answering 401/403. */
static int still_allowed(struct call *c, int role)
{
    myna_control_user_release(&c->user);
    return authenticate(c) == 0 && allowed(c, role);
}

static void pw_done(struct myna_worker_job *w)
{
    struct pw_job *j = (struct pw_job *)w;

    if (j->c.a->stopping)
        ;  /* after the drain's deadline: no answer could leave, so nothing changes */
    else if (!j->check && j->password && j->hash == NULL)
        send_failure(j->c.req, j->err.code, &j->err);  /* the hash failed */
    else if (j->password == NULL || j->role_needed < 0 || still_allowed(&j->c, j->role_needed))
        j->finish(j);
    pw_job_free(j);
}

/* A job for c's request: c's user and body become the job's (body is
 * deleted on failure). role_needed: see struct pw_job. NULL after
 * answering 500. */
static struct pw_job *pw_job_new(struct call *c, cJSON *body, const char *target, int role_needed,
                                 void (*finish)(struct pw_job *j))
{
    struct pw_job *j = calloc(1, sizeof(*j));

    if (j == NULL || (target && (j->target = strdup(target)) == NULL)) {
        free(j);
        cJSON_Delete(body);
        send_error(c->req, 500, "out of memory");
        return NULL;
    }
    j->w.work = pw_work;
    j->w.done = pw_done;
    j->c = *c;
    j->c.actor.from_addr = j->c.from;  /* c is on the caller's stack */
    memset(&c->user, 0, sizeof(c->user));
    j->body = body;
    j->role_needed = role_needed;
    j->finish = finish;
    return j;
}

/* Runs j: finish at once when there is no password to hash or check, else
 * after the worker did it. 0, or -1 after answering 503 (the worker is
 * busy) and freeing j. */
static int pw_job_run(struct pw_job *j)
{
    if (j->password == NULL) {
        pw_done(&j->w);
        return 0;
    }
    if (myna_worker_submit(j->c.a->worker, &j->w) != MYNA_OK) {
        evhttp_add_header(evhttp_request_get_output_headers(j->c.req), "Retry-After", "1");
        MYNA_LOG(MYNA_WARN, "password_busy", "from=%s", j->c.from);
        send_error(j->c.req, 503, "busy checking passwords; try again in a second");
        pw_job_free(j);
        return -1;
    }
    return 0;
}

/* ---- users and tokens ---------------------------------------------------------------- */

static cJSON *user_json(const struct myna_control_user *u)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "id", (double)u->id);
    cJSON_AddStringToObject(o, "name", u->name);
    cJSON_AddStringToObject(o, "role", myna_role_name((enum myna_role)u->role));
    cJSON_AddBoolToObject(o, "password", u->password_hash != NULL);
    cJSON_AddBoolToObject(o, "disabled", u->disabled);
    return o;
}

/* A new token for user_id, answered once in o["token"]; expires_ms (wall
 * clock) ends it, 0 never. *id (OUT) is its id. */
static int add_token(struct call *c, int64_t user_id, const char *name, int64_t expires_ms,
                     cJSON *o, int64_t *id, struct myna_err *err)
{
    char token[64], hash[65];
    int rc;

    if ((rc = myna_token_new(token, hash, err)) != MYNA_OK ||
        (rc = myna_control_token_add(c->a->control, user_id, hash, name, myna_wall_ms(),
                                     expires_ms, id, err)) != MYNA_OK)
        return rc;
    cJSON_AddStringToObject(o, "token", token);
    cJSON_AddNumberToObject(o, "token_id", (double)*id);
    if (expires_ms != 0)
        cJSON_AddNumberToObject(o, "expires_ms", (double)expires_ms);
    memset(token, 0, sizeof(token));
    return MYNA_OK;
}

/* MYNA_ECONFLICT if u is the last enabled admin and the change takes that
 * away (a demotion or disabling). */
static int keeps_an_admin(struct call *c, const struct myna_control_user *u, int takes_away,
                          struct myna_err *err)
{
    int64_t n = 0;
    int rc;

    if (!takes_away || u->role != MYNA_ROLE_ADMIN || u->disabled)
        return MYNA_OK;
    if ((rc = myna_control_user_count_admins(c->a->control, &n, err)) != MYNA_OK)
        return rc;
    return n > 1 ? MYNA_OK
                 : myna_err_set(err, MYNA_ECONFLICT, "'%s' is the last admin: make another "
                                "admin first", u->name);
}

/* MYNA_ECONFLICT if a change made in the open transaction took away the
 * last way into the admin API that an enabled admin had (a token, or a
 * password to log in with): before is myna_control_user_count_admin_ways
 * at now_ms, counted in the same transaction before the change. Without
 * one, only editing var/control.db by hand (or `myna token recover` on the
 * host) would let anyone manage Myna again. */
static int keeps_a_way_in(struct call *c, int64_t before, int64_t now_ms, struct myna_err *err)
{
    int64_t n = 0;
    int rc;

    if (before == 0)
        return MYNA_OK;  /* none to take away: not this change's doing */
    if ((rc = myna_control_user_count_admin_ways(c->a->control, now_ms, &n, err)) != MYNA_OK)
        return rc;
    return n > 0 ? MYNA_OK
                 : myna_err_set(err, MYNA_ECONFLICT,
                                "that is the last way into the admin API: no enabled admin "
                                "would have a token or a password left; make another admin "
                                "token (POST /admin/tokens) or set an admin's password first");
}

/* user.update's detail: the fields given, with their new values (role
 * NULL: not given); for the password only whether it was changed or
 * removed. NULL: out of memory. */
static cJSON *update_detail(const char *role, const cJSON *pw, const cJSON *dis)
{
    cJSON *d = cJSON_CreateObject();

    if (d && ((role && !cJSON_AddStringToObject(d, "role", role)) ||
              (dis && !cJSON_AddBoolToObject(d, "disabled", cJSON_IsTrue(dis))) ||
              (pw && !cJSON_AddStringToObject(d, "password",
                                              cJSON_IsNull(pw) ? "removed" : "changed")))) {
        cJSON_Delete(d);
        d = NULL;
    }
    return d;
}

/* user.create's detail: the role, and the id of the token made with the
 * user (0: none, it has a row of its own). NULL: out of memory. */
static cJSON *user_create_detail(enum myna_role r, int64_t token_id)
{
    cJSON *d = cJSON_CreateObject();

    if (d && (!cJSON_AddStringToObject(d, "role", myna_role_name(r)) ||
              (token_id && !cJSON_AddNumberToObject(d, "token_id", (double)token_id)))) {
        cJSON_Delete(d);
        d = NULL;
    }
    return d;
}

/* token.create's detail (its target is the owner's name). NULL: out of
 * memory. */
static cJSON *token_create_detail(int64_t token_id, const char *name)
{
    cJSON *d = cJSON_CreateObject();

    if (d && (!cJSON_AddNumberToObject(d, "token_id", (double)token_id) ||
              !cJSON_AddStringToObject(d, "name", name))) {
        cJSON_Delete(d);
        d = NULL;
    }
    return d;
}

/* PUT /admin/users/{name}, after the new password (if any) is hashed. */
static void user_update_finish(struct pw_job *j)
{
    struct call *c = &j->c;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(j->body, "role"),
                *pw = cJSON_GetObjectItemCaseSensitive(j->body, "password"),
                *dis = cJSON_GetObjectItemCaseSensitive(j->body, "disabled");
    enum myna_role r = MYNA_ROLE_USER;
    int64_t now = myna_wall_ms(), ways = 0;
    int rc;

    memset(&u, 0, sizeof(u));
    if (role)
        myna_role_parse(role->valuestring, &r);  /* checked by user_update */
    if ((rc = myna_control_begin(c->a->control, &err)) == MYNA_OK) {
        if ((rc = myna_control_user_get_by_name(c->a->control, j->target, &u, &err)) == MYNA_OK)
            rc = keeps_an_admin(c, &u, (role && r != MYNA_ROLE_ADMIN) || cJSON_IsTrue(dis),
                                &err);
        if (rc == MYNA_OK)
            rc = myna_control_user_count_admin_ways(c->a->control, now, &ways, &err);
        if (rc == MYNA_OK && role)
            rc = myna_control_user_set_role(c->a->control, u.id, (int)r, &err);
        if (rc == MYNA_OK && pw)
            rc = myna_control_user_set_password(c->a->control, u.id, j->hash, &err);
        if (rc == MYNA_OK && dis)
            rc = myna_control_user_set_disabled(c->a->control, u.id, cJSON_IsTrue(dis), &err);
        if (rc == MYNA_OK)
            rc = keeps_a_way_in(c, ways, now, &err);
        if (rc == MYNA_OK)
            rc = audit_json(c, "user.update", u.name,
                            update_detail(role ? myna_role_name(r) : NULL, pw, dis), &err);
        if (rc == MYNA_OK)
            rc = myna_control_commit(c->a->control, &err);
        else
            myna_control_rollback(c->a->control);
    }
    if (rc == MYNA_OK) {
        myna_control_user_release(&u);
        rc = myna_control_user_get_by_name(c->a->control, j->target, &u, &err);
    }
    if (rc != MYNA_OK)
        send_failure(c->req, rc, &err);
    else
        send_json(c->req, 200, user_json(&u));
    myna_control_user_release(&u);
}

/* PUT /admin/users/{name}: changes the fields given. An admin may change
 * anyone's role, password and disabled; a user only their own password.
 * A disabled user can neither log in nor use their tokens. */
static void user_update(struct call *c, const char *name)
{
    const cJSON *role, *pw, *dis;
    enum myna_role r = MYNA_ROLE_USER;
    int role_needed = strcmp(name, c->user.name) == 0 ? MYNA_ROLE_USER : MYNA_ROLE_ADMIN;
    struct pw_job *j;
    cJSON *body;

    if (!allowed(c, role_needed) || (body = json_body(c->req)) == NULL)
        return;
    role = cJSON_GetObjectItemCaseSensitive(body, "role");
    pw = cJSON_GetObjectItemCaseSensitive(body, "password");
    dis = cJSON_GetObjectItemCaseSensitive(body, "disabled");
    if ((!role && !pw && !dis) ||
        (role && (!cJSON_IsString(role) || myna_role_parse(role->valuestring, &r) != 0)) ||
        (pw && !cJSON_IsString(pw) && !cJSON_IsNull(pw)) || (dis && !cJSON_IsBool(dis))) {
        cJSON_Delete(body);
        send_error(c->req, 400, "expected one or more of {\"role\": guest|user|admin, "
                                "\"password\": a string or null, \"disabled\": true|false}");
        return;
    }
    if (role || dis)
        role_needed = MYNA_ROLE_ADMIN;
    if (!allowed(c, role_needed)) {
        cJSON_Delete(body);
        return;
    }
    if ((j = pw_job_new(c, body, name, role_needed, user_update_finish)) == NULL)
        return;
    j->password = cJSON_IsString(pw) ? pw->valuestring : NULL;
    pw_job_run(j);
}

/* POST /admin/users, after the password (if any) is hashed: the user and
 * a first token for them. */
static void user_create_finish(struct pw_job *j)
{
    struct call *c = &j->c;
    struct myna_err err = MYNA_ERR_INIT;
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(j->body, "role");
    enum myna_role r = MYNA_ROLE_USER;
    int64_t id = 0, token_id = 0;
    cJSON *o;
    int rc;

    if (role)
        myna_role_parse(role->valuestring, &r);  /* checked by users */
    o = cJSON_CreateObject();
    if ((rc = myna_control_begin(c->a->control, &err)) == MYNA_OK) {
        rc = myna_control_user_add(c->a->control, j->target, (int)r, j->hash, myna_wall_ms(), &id,
                                   &err);
        if (rc == MYNA_OK)
            rc = add_token(c, id, "created with the user", 0, o, &token_id, &err);
        if (rc == MYNA_OK)
            rc = audit_json(c, "user.create", j->target, user_create_detail(r, token_id), &err);
        if (rc == MYNA_OK)
            rc = myna_control_commit(c->a->control, &err);
        else
            myna_control_rollback(c->a->control);
    }
    if (rc != MYNA_OK) {
        cJSON_Delete(o);
        send_failure(c->req, rc, &err);
        return;
    }
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "name", j->target);
    cJSON_AddStringToObject(o, "role", myna_role_name(r));
    send_json(c->req, 201, o);
}

/* The path segment s percent-decoded into out (cap bytes): 0; -1 when an
 * escape is not two hex digits or is %00 (a name ends at a NUL); -2 when
 * it does not fit. */
static int path_decode(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    for (; *s; s++) {
        int ch = (unsigned char)*s;
        if (ch == '%') {
            int hi = myna_hex_value(s[1]), lo = hi < 0 ? -1 : myna_hex_value(s[2]);
            if (lo < 0 || hi * 16 + lo == 0)
                return -1;
            ch = hi * 16 + lo;
            s += 2;
        }
        if (n + 1 >= cap)
            return -2;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return 0;
}

/* /admin/users/{name}: clients percent-encode the '@' of an e-mail-like
 * name (bob%40example.com), so the name is decoded before it is looked up
 * and compared with the caller's. */
static void user_path(struct call *c, const char *rest)
{
    char name[MYNA_CONTROL_NAME_MAX + 2];  /* one more: a longer name is no user */
    int rc = path_decode(rest, name, sizeof(name));

    if (method_of(c) != EVHTTP_REQ_PUT)
        send_405(c->req, "PUT", "use PUT /admin/users/{name}");
    else if (rc == -1 || (rc == 0 && myna_utf8_count(name) == (size_t)-1))
        send_error(c->req, 400, "the user name in the path is not valid percent-encoded UTF-8");
    else if (rc == -2 || strlen(name) > MYNA_CONTROL_NAME_MAX)
        send_error(c->req, 404, "no such user");
    else
        user_update(c, name);
}

static void users(struct call *c, const char *rest)
{
    enum evhttp_cmd_type cmd = method_of(c);
    struct myna_err err = MYNA_ERR_INIT;

    if (*rest != '\0') {
        user_path(c, rest);
        return;
    }
    if (cmd == EVHTTP_REQ_GET) {
        cJSON *arr = cJSON_CreateArray();
        struct myna_control_user *v = NULL;
        size_t n = 0, limit, offset;
        int rc;
        if (c->user.role != MYNA_ROLE_ADMIN) {  /* the others see themselves */
            cJSON_AddItemToArray(arr, user_json(&c->user));
            send_json(c->req, 200, arr);
            return;
        }
        if (page_of(c, MYNA_CONTROL_LIST_MAX, &limit, &offset, NULL, NULL) != 0) {
            cJSON_Delete(arr);
            return;
        }
        if ((rc = myna_control_user_list(c->a->control, limit, offset, &v, &n, &err)) != MYNA_OK) {
            cJSON_Delete(arr);
            send_failure(c->req, rc, &err);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            cJSON_AddItemToArray(arr, user_json(&v[i]));
            myna_control_user_release(&v[i]);
        }
        free(v);
        send_json(c->req, 200, arr);
    } else if (cmd == EVHTTP_REQ_POST) {
        const cJSON *name, *role, *pw;
        enum myna_role r = MYNA_ROLE_USER;
        struct pw_job *j;
        cJSON *body;
        if (!allowed(c, MYNA_ROLE_ADMIN) || (body = json_body(c->req)) == NULL)
            return;
        name = cJSON_GetObjectItemCaseSensitive(body, "name");
        role = cJSON_GetObjectItemCaseSensitive(body, "role");
        pw = cJSON_GetObjectItemCaseSensitive(body, "password");
        /* a name not in UTF-8 would come back in the store's refusal,
         * which is JSON */
        if (!cJSON_IsString(name) || myna_utf8_count(name->valuestring) == (size_t)-1 ||
            (role && (!cJSON_IsString(role) || myna_role_parse(role->valuestring, &r) != 0)) ||
            (pw && !cJSON_IsString(pw))) {
            cJSON_Delete(body);
            send_error(c->req, 400, "expected {\"name\", \"role\": guest|user|admin, "
                                    "\"password\" (optional)}");
            return;
        }
        if ((j = pw_job_new(c, body, name->valuestring, MYNA_ROLE_ADMIN, user_create_finish)) ==
            NULL)
            return;
        j->password = pw ? pw->valuestring : NULL;
        pw_job_run(j);
    } else {
        send_405(c->req, "GET, HEAD, POST",
                 "use GET or POST /admin/users, PUT /admin/users/{name}");
    }
}

static void tokens(struct call *c, const char *rest)
{
    enum evhttp_cmd_type cmd = method_of(c);
    struct myna_err err = MYNA_ERR_INIT;
    int rc;

    if (*rest == '\0' && cmd == EVHTTP_REQ_GET) {
        cJSON *arr = cJSON_CreateArray();
        struct myna_control_token *v = NULL;
        size_t n = 0, limit, offset;
        int64_t after;
        if (page_of(c, MYNA_CONTROL_LIST_MAX, &limit, &offset, "after", &after) != 0) {
            cJSON_Delete(arr);
            return;
        }
        if ((rc = myna_control_token_list(c->a->control,
                                          c->user.role == MYNA_ROLE_ADMIN ? 0 : c->user.id,
                                          after, limit, offset, &v, &n, &err)) != MYNA_OK) {
            cJSON_Delete(arr);
            send_failure(c->req, rc, &err);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)v[i].id);
            cJSON_AddNumberToObject(o, "user_id", (double)v[i].user_id);
            cJSON_AddStringToObject(o, "name", v[i].name ? v[i].name : "");
            cJSON_AddNumberToObject(o, "created_ms", (double)v[i].created_ms);
            cJSON_AddNumberToObject(o, "last_used_ms", (double)v[i].last_used_ms);
            cJSON_AddNumberToObject(o, "expires_ms", (double)v[i].expires_ms);
            cJSON_AddBoolToObject(o, "revoked", v[i].revoked);
            cJSON_AddItemToArray(arr, o);
            myna_control_token_release(&v[i]);
        }
        free(v);
        send_json(c->req, 200, arr);
    } else if (*rest == '\0' && cmd == EVHTTP_REQ_POST) {
        /* {"name"} a token for oneself; an admin may add {"user": "bob"}, or
         * {"role": R} for a new user of that role, named <role>-<time>
         * (-2, -3 ... after it when that name is taken). Not for a guest:
         * it only reads, and a token it made could outlive the revocation
         * of the one it was given. */
        cJSON *body, *o;
        const cJSON *name, *user, *role;
        struct myna_control_user u = { 0 };
        enum myna_role r;
        int64_t uid = c->user.id, new_id = 0, token_id = 0;
        char uname[MYNA_CONTROL_NAME_MAX + 1];
        const char *owner = c->user.name, *tname;
        if (!allowed(c, MYNA_ROLE_USER) || (body = json_body(c->req)) == NULL)
            return;
        name = cJSON_GetObjectItemCaseSensitive(body, "name");
        user = cJSON_GetObjectItemCaseSensitive(body, "user");
        role = cJSON_GetObjectItemCaseSensitive(body, "role");
        /* the name is stored and shown again (tokens, audit log) as JSON */
        if ((name && (!cJSON_IsString(name) ||
                      myna_utf8_count(name->valuestring) == (size_t)-1)) ||
            (user && (!cJSON_IsString(user) ||
                      myna_utf8_count(user->valuestring) == (size_t)-1)) ||
            (role && (!cJSON_IsString(role) || myna_role_parse(role->valuestring, &r) != 0)) ||
            (user && role)) {
            cJSON_Delete(body);
            send_error(c->req, 400, "expected {\"name\"} (UTF-8) and at most one of \"user\" "
                                    "or \"role\"");
            return;
        }
        if (name && strlen(name->valuestring) > MYNA_CONTROL_TEXT_MAX) {
            char msg[64];
            snprintf(msg, sizeof(msg), "'name' is longer than %d bytes", MYNA_CONTROL_TEXT_MAX);
            cJSON_Delete(body);
            send_error(c->req, 400, msg);
            return;
        }
        if ((user || role) && !allowed(c, MYNA_ROLE_ADMIN)) {
            cJSON_Delete(body);
            return;
        }
        tname = name ? name->valuestring : "";
        o = cJSON_CreateObject();
        if ((rc = myna_control_begin(c->a->control, &err)) == MYNA_OK) {
            if (user && (rc = myna_control_user_get_by_name(c->a->control, user->valuestring, &u,
                                                            &err)) == MYNA_OK) {
                uid = u.id;
                owner = u.name;
            }
            if (role && rc == MYNA_OK) {
                long long t = (long long)(myna_wall_ms() % 100000000);
                for (int k = 1; k <= 100; k++) {
                    if (k == 1)
                        snprintf(uname, sizeof(uname), "%s-%lld", myna_role_name(r), t);
                    else
                        snprintf(uname, sizeof(uname), "%s-%lld-%d", myna_role_name(r), t, k);
                    rc = myna_control_user_add(c->a->control, uname, (int)r, NULL,
                                               myna_wall_ms(), &new_id, &err);
                    if (rc != MYNA_EEXISTS)
                        break;
                }
                uid = new_id;
                owner = uname;
                cJSON_AddStringToObject(o, "user", uname);
                if (rc == MYNA_OK)
                    rc = audit_json(c, "user.create", uname, user_create_detail(r, 0), &err);
            }
            if (rc == MYNA_OK)
                rc = add_token(c, uid, tname, 0, o, &token_id, &err);
            if (rc == MYNA_OK)
                rc = audit_json(c, "token.create", owner, token_create_detail(token_id, tname),
                                &err);
            if (rc == MYNA_OK)
                rc = myna_control_commit(c->a->control, &err);
            else
                myna_control_rollback(c->a->control);
        }
        myna_control_user_release(&u);
        cJSON_Delete(body);
        if (rc != MYNA_OK) {
            cJSON_Delete(o);
            send_failure(c->req, rc, &err);
            return;
        }
        cJSON_AddNumberToObject(o, "user_id", (double)uid);
        send_json(c->req, 201, o);
    } else if (*rest != '\0' && cmd == EVHTTP_REQ_DELETE) {
        /* an admin revokes any token, the others only their own */
        int64_t id, owner = c->user.role == MYNA_ROLE_ADMIN ? 0 : c->user.id;
        int64_t now = myna_wall_ms(), ways = 0;
        int changed = 0;
        char target[24];
        if (myna_parse_i64(rest, 1, INT64_MAX, &id) != 0) {
            send_error(c->req, 404, "no such token");
            return;
        }
        snprintf(target, sizeof(target), "%lld", (long long)id);  /* not the path's spelling */
        if ((rc = myna_control_begin(c->a->control, &err)) == MYNA_OK) {
            rc = myna_control_user_count_admin_ways(c->a->control, now, &ways, &err);
            if (rc == MYNA_OK)
                rc = myna_control_token_revoke(c->a->control, id, owner, &changed, &err);
            if (rc == MYNA_OK && changed)
                rc = keeps_a_way_in(c, ways, now, &err);
            /* revoked already (a script that retries): 200 again, and no
             * second row for a change that was not made */
            if (rc == MYNA_OK && changed)
                rc = audit(c, "token.revoke", target, NULL, &err);
            if (rc == MYNA_OK)
                rc = myna_control_commit(c->a->control, &err);
            else
                myna_control_rollback(c->a->control);
        }
        if (rc != MYNA_OK) {
            if (rc == MYNA_ENOTFOUND)
                send_error(c->req, 404, "no such token");
            else
                send_failure(c->req, rc, &err);
            return;
        }
        {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "revoked", (double)id);
            send_json(c->req, 200, o);
        }
    } else if (*rest == '\0') {
        send_405(c->req, "GET, HEAD, POST",
                 "use GET or POST /admin/tokens, DELETE /admin/tokens/{id}");
    } else {
        send_405(c->req, "DELETE", "use GET or POST /admin/tokens, DELETE /admin/tokens/{id}");
    }
}

static void audit_list(struct call *c)
{
    struct myna_control_audit *v = NULL;
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *arr;
    size_t n = 0, limit, offset;
    int64_t before;
    int rc;

    if (method_of(c) != EVHTTP_REQ_GET) {
        send_405(c->req, "GET, HEAD", "use GET");
        return;
    }
    if (!allowed(c, MYNA_ROLE_ADMIN) || page_of(c, 200, &limit, &offset, "before", &before) != 0)
        return;
    if ((rc = myna_control_audit_list(c->a->control, before, limit, offset, &v, &n, &err)) !=
        MYNA_OK) {
        send_failure(c->req, rc, &err);
        return;
    }
    arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)v[i].id);
        cJSON_AddNumberToObject(o, "ts_ms", (double)v[i].ts_ms);
        cJSON_AddStringToObject(o, "user", v[i].user_name ? v[i].user_name : "");
        cJSON_AddStringToObject(o, "action", v[i].action);
        cJSON_AddStringToObject(o, "target", v[i].target ? v[i].target : "");
        cJSON_AddStringToObject(o, "from", v[i].from_addr ? v[i].from_addr : "");
        if (v[i].detail)
            cJSON_AddRawToObject(o, "detail", v[i].detail);
        cJSON_AddItemToArray(arr, o);
        myna_control_audit_release(&v[i]);
    }
    free(v);
    send_json(c->req, 200, arr);
}

/* ---- login ------------------------------------------------------------------------------ */

/* The slot that counts from's failures, or NULL. */
static struct login_fails *login_find(struct myna_admin *a, const char *from)
{
    for (size_t i = 0; i < LOGIN_ADDRS; i++)
        if (a->fails[i].n > 0 && strcmp(a->fails[i].from, from) == 0)
            return &a->fails[i];
    return NULL;
}

/* The slot of from: its own, else a free one, else the oldest. */
static struct login_fails *login_slot(struct myna_admin *a, const char *from, int64_t now)
{
    struct login_fails *pick = login_find(a, from);

    if (pick != NULL)
        return pick;
    pick = &a->fails[0];
    for (size_t i = 1; i < LOGIN_ADDRS && pick->n > 0; i++)
        if (a->fails[i].n == 0 || a->fails[i].since_ms < pick->since_ms)
            pick = &a->fails[i];
    memset(pick, 0, sizeof(*pick));
    snprintf(pick->from, sizeof(pick->from), "%s", from);
    pick->since_ms = now;
    return pick;
}

/* Seconds until from may try again, or 0 when it may now. */
static int64_t login_wait_s(struct myna_admin *a, const char *from, int64_t now)
{
    const struct login_fails *f = login_find(a, from);
    int64_t until = 0;

    if (a->all_n > 0 && now - a->all_since_ms >= LOGIN_WINDOW_MS)
        a->all_n = 0;
    if (a->all_n >= LOGIN_FAILS_ALL)
        until = a->all_since_ms + LOGIN_WINDOW_MS;
    if (f != NULL && f->n >= LOGIN_FAILS_PER_ADDR && f->since_ms + LOGIN_WINDOW_MS > until)
        until = f->since_ms + LOGIN_WINDOW_MS;
    return until > now ? (until - now + 999) / 1000 : 0;
}

static void login_failed(struct myna_admin *a, const char *from, int64_t now)
{
    struct login_fails *f = login_slot(a, from, now);

    if (now - f->since_ms >= LOGIN_WINDOW_MS) {
        f->since_ms = now;
        f->n = 0;
    }
    f->n++;
    if (a->all_n == 0)
        a->all_since_ms = now;
    a->all_n++;
}

/* A new token for the caller that stops working after the login TTL, with
 * the login's audit row. The tokens that ended go at the same time, so that
 * logins do not pile up. */
static int login_token(struct call *c, cJSON *o, struct myna_err *err)
{
    int64_t now = myna_wall_ms(), token_id = 0;
    int rc;

    if ((rc = myna_control_begin(c->a->control, err)) != MYNA_OK)
        return rc;
    rc = myna_control_token_prune(c->a->control, now, NULL, err);
    if (rc == MYNA_OK)
        rc = add_token(c, c->user.id, "login", now + c->a->login_ttl_ms, o, &token_id, err);
    if (rc == MYNA_OK)
        rc = audit(c, "user.login", c->user.name, NULL, err);
    if (rc == MYNA_OK)
        rc = myna_control_commit(c->a->control, err);
    else
        myna_control_rollback(c->a->control);
    return rc;
}

/* A login counted as failed at counted_ms that succeeded after all (unless
 * its window has restarted since). */
static void login_forgive(struct myna_admin *a, const char *from, int64_t counted_ms)
{
    struct login_fails *f = login_find(a, from);

    if (f != NULL && f->since_ms <= counted_ms)
        f->n--;
    if (a->all_n > 0 && a->all_since_ms <= counted_ms)
        a->all_n--;
}

/* POST /admin/login, after the password is checked. The user may have
 * changed meanwhile: only the same user, enabled, with the hash that was
 * checked, logs in. */
static void login_finish(struct pw_job *j)
{
    struct call *c = &j->c;
    struct myna_control_user u = { 0 };
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *o;

    if (!j->ok || myna_control_user_get_by_name(c->a->control, j->target, &u, &err) != MYNA_OK ||
        u.id != j->user_id || u.disabled || u.password_hash == NULL ||
        strcmp(u.password_hash, j->hash) != 0) {
        MYNA_LOG(MYNA_WARN, "login_failed", "from=%s", c->from);
        myna_control_user_release(&u);
        send_error(c->req, 401, "wrong name or password");
        return;
    }
    login_forgive(c->a, c->from, j->counted_ms);
    c->user = u;  /* the job releases it */
    o = cJSON_CreateObject();
    if (login_token(c, o, &err) != MYNA_OK) {
        cJSON_Delete(o);
        send_failure(c->req, err.code, &err);
        return;
    }
    cJSON_AddItemToObject(o, "user", user_json(&u));
    send_json(c->req, 200, o);
}

static void login(struct call *c)
{
    struct myna_admin *a = c->a;
    struct myna_control_user u = { 0 };
    struct myna_err err = MYNA_ERR_INIT;
    int64_t now = myna_mono_ms(), wait_s = login_wait_s(a, c->from, now);
    const cJSON *name, *pw;
    struct pw_job *j;
    cJSON *body;

    if (wait_s > 0) {
        char retry[24];

        snprintf(retry, sizeof(retry), "%lld", (long long)wait_s);
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", retry);
        MYNA_LOG(MYNA_WARN, "login_limited", "from=%s retry_after_s=%lld", c->from,
                 (long long)wait_s);
        send_error(c->req, 429, "too many failed logins; try again later");
        return;
    }
    if ((body = json_body(c->req)) == NULL)
        return;
    name = cJSON_GetObjectItemCaseSensitive(body, "name");
    pw = cJSON_GetObjectItemCaseSensitive(body, "password");
    if (!cJSON_IsString(name) || !cJSON_IsString(pw)) {
        login_failed(a, c->from, now);
        MYNA_LOG(MYNA_WARN, "login_failed", "from=%s", c->from);
        cJSON_Delete(body);
        send_error(c->req, 401, "wrong name or password");
        return;
    }
    if ((j = pw_job_new(c, body, name->valuestring, -1, login_finish)) == NULL)
        return;
    j->password = pw->valuestring;
    j->check = 1;
    if (myna_control_user_get_by_name(a->control, name->valuestring, &u, &err) == MYNA_OK &&
        !u.disabled && u.password_hash) {
        j->user_id = u.id;
        j->hash = u.password_hash;  /* the job's now */
        u.password_hash = NULL;
    }
    myna_control_user_release(&u);
    j->counted_ms = now;
    if (pw_job_run(j) == 0)
        login_failed(a, c->from, now);  /* until the check succeeds */
}

/* ---- routing -------------------------------------------------------------------------------- */

void myna_admin_handle(struct myna_admin *a, struct evhttp_request *req, const char *path)
{
    struct call c;
    char *host = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);

    memset(&c, 0, sizeof(c));
    c.a = a;
    c.req = req;
    if (conn)
        evhttp_connection_get_peer(conn, &host, &port);
    snprintf(c.from, sizeof(c.from), "%s", host ? host : "-");
    if (strcmp(path, "/admin/login") == 0) {
        if (evhttp_request_get_command(req) == EVHTTP_REQ_POST)
            login(&c);
        else
            send_405(req, "POST", "use POST");
        return;
    }
    if (authenticate(&c) != 0)
        return;
    if (strncmp(path, "/admin/whatsapp/instances", 25) == 0 &&
        (path[25] == '\0' || path[25] == '/'))
        instances(&c, path[25] ? path + 26 : "");
    else if (strncmp(path, "/admin/users", 12) == 0 && (path[12] == '\0' || path[12] == '/'))
        users(&c, path[12] ? path + 13 : "");
    else if (strncmp(path, "/admin/tokens", 13) == 0 && (path[13] == '\0' || path[13] == '/'))
        tokens(&c, path[13] ? path + 14 : "");
    else if (strcmp(path, "/admin/audit") == 0)
        audit_list(&c);
    else
        send_error(req, 404, "not found");
    myna_control_user_release(&c.user);
}

/* One turn of removing the audit log's old rows; the timer is armed again
 * for the next. */
static void prune_audit(evutil_socket_t fd, short what, void *arg)
{
    struct myna_admin *a = arg;
    struct myna_err err = MYNA_ERR_INIT;
    struct timeval hour = { 3600, 0 }, second = { 1, 0 };
    int64_t before = myna_wall_ms() - a->audit_keep_ms, n = AUDIT_PRUNE_STEP, all = 0;
    int steps = 0;

    (void)fd;
    (void)what;
    /* on while a step removes anything: each removes at most
     * AUDIT_PRUNE_STEP rows, the oldest by time */
    while (n > 0 && steps++ < AUDIT_PRUNE_STEPS) {
        if (myna_control_audit_prune(a->control, before, AUDIT_PRUNE_STEP, &n, &err) != MYNA_OK) {
            char q[600];
            MYNA_LOG(MYNA_ERROR, "audit_prune_failed", "err=%s",
                     myna_log_q(q, sizeof(q), err.msg));
            n = 0;
        }
        all += n;
    }
    if (all > 0)
        MYNA_LOG(MYNA_INFO, "audit_pruned", "rows=%lld", (long long)all);
    evtimer_add(a->prune_timer, n > 0 ? &second : &hour);
}

struct myna_admin *myna_admin_new(struct event_base *base, struct myna_control *control,
                                  struct myna_fleet *fleet, struct myna_supervisor *sup,
                                  const struct myna_conf *conf, struct myna_err *err)
{
    struct myna_admin *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    a->control = control;
    a->fleet = fleet;
    a->sup = sup;
    snprintf(a->data_dir, sizeof(a->data_dir), "%s", conf->data_dir);
    a->login_ttl_ms = conf->login_token_ttl_s * 1000;
    a->audit_keep_ms = conf->audit_keep_days * 86400 * 1000;
    if ((a->worker = myna_worker_new(base, PW_QUEUE, err)) == NULL)
        goto fail;
    if (a->audit_keep_ms > 0) {
        if ((a->prune_timer = evtimer_new(base, prune_audit, a)) == NULL) {
            myna_err_set(err, MYNA_ENOMEM, "out of memory");
            goto fail;
        }
        prune_audit(-1, 0, a);
    }
    return a;
fail:
    myna_admin_free(a);
    return NULL;
}

size_t myna_admin_pending(const struct myna_admin *a)
{
    return a ? myna_worker_pending(a->worker) : 0;
}

void myna_admin_free(struct myna_admin *a)
{
    if (a == NULL)
        return;
    if (a->prune_timer)
        event_free(a->prune_timer);
    a->stopping = 1;
    myna_worker_free(a->worker);  /* runs what waits; nothing of it is answered or changed */
    free(a);
}

int myna_admin_bootstrap(struct myna_control *control, const char *env_token, FILE *out,
                         int64_t *admin_id, struct myna_err *err)
{
    char token[64], hash[65];
    int64_t n = 0;
    int rc;

    if ((rc = myna_control_user_count_admins(control, &n, err)) != MYNA_OK)
        return rc;
    if (n > 0) {
        struct myna_control_user *v = NULL;
        size_t k = 0;
        *admin_id = 0;
        if ((rc = myna_control_user_list(control, MYNA_CONTROL_LIST_MAX, 0, &v, &k, err)) != MYNA_OK)
            return rc;
        for (size_t i = 0; i < k; i++) {
            if (*admin_id == 0 && v[i].role == MYNA_ROLE_ADMIN && !v[i].disabled)
                *admin_id = v[i].id;
            myna_control_user_release(&v[i]);
        }
        free(v);
        return MYNA_OK;
    }
    if (env_token && *env_token) {
        if (!myna_token_looks_valid(env_token))
            return myna_err_set(err, MYNA_ECONFIG,
                                "MYNA_ADMIN_TOKEN must be \"myna_\" and 43 characters of "
                                "base64url; leave it unset and Myna makes one");
        snprintf(token, sizeof(token), "%s", env_token);
        myna_token_hash(token, hash);
    } else if ((rc = myna_token_new(token, hash, err)) != MYNA_OK) {
        return rc;
    }
    if ((rc = myna_control_begin(control, err)) == MYNA_OK) {
        rc = myna_control_user_add(control, "admin", MYNA_ROLE_ADMIN, NULL, myna_wall_ms(),
                                   admin_id, err);
        if (rc == MYNA_OK)
            rc = myna_control_token_add(control, *admin_id, hash, "first admin", myna_wall_ms(), 0,
                                        NULL, err);
        /* shown before the commit: a token nobody saw (out closed, or on a
         * full disk) would lock the admin API for good */
        if (rc == MYNA_OK && !(env_token && *env_token) &&
            (fprintf(out, "\nThe admin API's first token (shown once; keep it):\n\n    %s\n\n",
                     token) < 0 ||
             fflush(out) != 0))
            rc = myna_err_set(err, MYNA_EIO,
                              "cannot show the first admin token on standard output: %s "
                              "(or set MYNA_ADMIN_TOKEN to choose it)",
                              strerror(errno));
        if (rc == MYNA_OK)
            rc = myna_control_commit(control, err);
        else
            myna_control_rollback(control);
    }
    memset(token, 0, sizeof(token));
    return rc;
}

/* The recovery's audit rows: no API user acts, the host's operator does. */
#define LOCAL_ACTOR "local"

/* *u (OUT, filled on MYNA_OK) is the admin a recovery picks: "admin"
 * when it is an enabled admin, else the enabled admin with the lowest id.
 * MYNA_ENOTFOUND when there is none. */
static int pick_admin(struct myna_control *control, struct myna_control_user *u,
                      struct myna_err *err)
{
    struct myna_control_user *v = NULL;
    size_t n = 0, offset = 0;
    int rc = myna_control_user_get_by_name(control, "admin", u, err);

    if (rc == MYNA_OK && u->role == MYNA_ROLE_ADMIN && !u->disabled)
        return MYNA_OK;
    if (rc == MYNA_OK)
        myna_control_user_release(u);
    else if (rc != MYNA_ENOTFOUND)
        return rc;
    rc = MYNA_ENOTFOUND;
    do {
        int listed = myna_control_user_list(control, MYNA_CONTROL_LIST_MAX, offset, &v, &n, err);
        if (listed != MYNA_OK)
            return listed;
        for (size_t i = 0; i < n; i++) {
            if (rc != MYNA_OK && v[i].role == MYNA_ROLE_ADMIN && !v[i].disabled) {
                *u = v[i];  /* taken whole: not released here */
                rc = MYNA_OK;
            } else {
                myna_control_user_release(&v[i]);
            }
        }
        free(v);
        offset += n;
    } while (rc != MYNA_OK && n == MYNA_CONTROL_LIST_MAX);
    if (rc != MYNA_OK)
        myna_err_set(err, MYNA_ENOTFOUND,
                     "no user is an enabled admin (all were disabled or demoted): give "
                     "--enable to make the user 'admin' (or --user NAME) an enabled admin again");
    return rc;
}

/* An audit row of the host's operator (the recovery): detail is taken
 * (NULL: out of memory). */
static int local_audit(struct myna_control *control, int64_t now, const char *action,
                       const char *target, cJSON *detail, struct myna_err *err)
{
    struct myna_control_audit row = { 0, now, 0, (char *)LOCAL_ACTOR, (char *)action,
                                      (char *)target, NULL, (char *)LOCAL_ACTOR };
    int rc;

    if (detail == NULL || (row.detail = cJSON_PrintUnformatted(detail)) == NULL)
        rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
    else
        rc = myna_control_audit_add(control, &row, NULL, err);
    free(row.detail);
    cJSON_Delete(detail);
    return rc;
}

int myna_admin_recover(struct myna_control *control, const char *user, const char *token_name,
                       int enable, FILE *out, struct myna_admin_recovered *got,
                       struct myna_err *err)
{
    struct myna_control_user u;
    char token[64], hash[65];
    int64_t now = myna_wall_ms();
    int rc;

    memset(&u, 0, sizeof(u));
    memset(got, 0, sizeof(*got));
    if (token_name == NULL)
        token_name = "recovered";
    if ((rc = myna_token_new(token, hash, err)) != MYNA_OK ||
        (rc = myna_control_begin(control, err)) != MYNA_OK)
        return rc;
    if (user == NULL) {
        rc = pick_admin(control, &u, err);
        if (rc == MYNA_ENOTFOUND && enable &&
            (rc = myna_control_user_get_by_name(control, "admin", &u, err)) == MYNA_ENOTFOUND)
            myna_err_set(err, rc, "no user is an enabled admin, and no user is named 'admin': "
                         "name the one to enable with --user NAME");
    } else if ((rc = myna_control_user_get_by_name(control, user, &u, err)) == MYNA_ENOTFOUND) {
        myna_err_set(err, rc, "no user '%s'", user);
    }
    if (rc == MYNA_OK && (u.role != MYNA_ROLE_ADMIN || u.disabled)) {
        if (!enable) {
            rc = myna_err_set(err, MYNA_ECONFLICT,
                              "user '%s' is %s: give --enable to make it an enabled admin, "
                              "or name another admin with --user NAME",
                              u.name, u.disabled ? "disabled" : "not an admin");
        } else {
            cJSON *enabled = cJSON_CreateFalse();  /* "disabled": false */
            rc = myna_control_user_set_role(control, u.id, MYNA_ROLE_ADMIN, err);
            if (rc == MYNA_OK)
                rc = myna_control_user_set_disabled(control, u.id, 0, err);
            if (rc == MYNA_OK)
                rc = local_audit(control, now, "user.update", u.name,
                                 enabled ? update_detail("admin", NULL, enabled) : NULL, err);
            cJSON_Delete(enabled);
            got->enabled = 1;
        }
    }
    if (rc == MYNA_OK)
        rc = myna_control_token_add(control, u.id, hash, token_name, now, 0, &got->token_id, err);
    if (rc == MYNA_OK)
        rc = local_audit(control, now, "token.create", u.name,
                         token_create_detail(got->token_id, token_name), err);
    /* shown before the commit, as the first token is: a token nobody saw
     * is no way back */
    if (rc == MYNA_OK && (fprintf(out, "%s\n", token) < 0 || fflush(out) != 0))
        rc = myna_err_set(err, MYNA_EIO, "cannot show the new token on standard output: %s",
                          strerror(errno));
    if (rc == MYNA_OK)
        rc = myna_control_commit(control, err);
    else
        myna_control_rollback(control);
    if (rc == MYNA_OK)
        snprintf(got->user, sizeof(got->user), "%s", u.name);
    else
        got->enabled = 0;
    myna_control_user_release(&u);
    memset(token, 0, sizeof(token));
    return rc;
}
