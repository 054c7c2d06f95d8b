/* ingress.c - verify, parse, route, hand to the committer, answer. */
#include "master/ingress.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/util.h"
#include "master/committer.h"
#include "net/http_server.h"
#include "store/store.h"
#include "wa/cloud.h"
#include "wa/signature.h"
#include "core/banned.h"

#define CHALLENGE_MAX 1024
#define VERIFY_LOG_MS 1000  /* at most one webhook_verify_refused line this often */

/* An instance's store, shared by the tables that name the instance (so an
 * update keeps its connection) and closed with the last of them. */
struct shared_store {
    int refs;
    struct myna_store *st;
};

/* A disabled instance is not served: it is known only so that a record for
 * its number is refused (it has no store, key or token). */
struct ingress_instance {
    char *id, *phone_number_id, *verify_token;
    struct shared_store *store;  /* NULL: disabled, or not opened (503 until it is) */
    struct myna_hmac_key *key;
    size_t app;            /* index of the first instance with the same app secret */
    int enabled;
};

/* The instances as the ingress sees them: immutable once built. A request
 * holds the table it started with until its answer, so the writer thread
 * routes with a table that cannot change under it; a change of instances
 * builds a new table. Reference counts are touched on the loop only. */
struct table {
    int refs;
    size_t n;
    struct ingress_instance *inst;
    char **unloaded;       /* ids stored but not loaded: 503 until replaced or deleted */
    size_t n_unloaded;
};

struct myna_ingress {
    struct table *table;
    const struct myna_conf *conf;
    struct myna_committer *committer;
    struct myna_metrics *metrics;
    size_t max_body;
    size_t max_pending;
    int draining;
    int closing;   /* being freed: requests may be gone, answer nothing */
    int64_t verify_logged_ms;       /* the last webhook_verify_refused line */
    unsigned long verify_unlogged;  /* refusals since, not logged */
    int64_t unloaded_logged_ms;     /* the last webhook_instance_not_loaded line */
    unsigned long unloaded_unlogged;
    void (*notify)(const char *id, void *arg);
    void *notify_arg;
};

/* One webhook request waiting for its commit; all of it lives in arena.
 * The loop fills it and submits it; the writer thread parses the body into
 * it (prepare); the loop answers from it. */
struct pending {
    struct myna_arena arena;
    struct myna_commit_job job;
    struct evhttp_request *req;
    struct myna_ingress *ing;
    struct table *table;           /* held until the answer */
    struct ingress_instance *in;   /* in table */
    const char *body;              /* a copy: the writer must not touch libevent */
    size_t len;
    struct myna_err err;           /* why prepare refused the body */
    size_t n_ignored, n_invalid;   /* counted by prepare, added to metrics by the loop */
    size_t n_errors;               /* value.errors[]: Meta's account or app errors */
    int error_code;                /* the first one's */
    int n_unrouted;
};

/* now: the answer follows a commit; write it on this turn (http_server.h) */
static void reply(struct evhttp_request *req, int code, const char *reason, const char *body,
                  int now)
{
    struct evbuffer *out = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    if (out) {
        evbuffer_add(out, body, strlen(body));
        evbuffer_add(out, "\n", 1);
    }
    if (now)
        myna_http_reply_now(req, code, reason, out);
    else
        myna_http_reply(req, code, reason, out);
    if (out)
        evbuffer_free(out);
}

static void reject(struct myna_ingress *ing, struct evhttp_request *req, enum myna_reject why,
                   int code, const char *reason, const char *id, const char *detail)
{
    char q[300];

    ing->metrics->rejected[why]++;
    /* DEBUG: a hostile client must not be able to flood the log */
    MYNA_LOG(MYNA_DEBUG, "webhook_rejected", "instance=%s status=%d reason=%s detail=%s",
             id ? id : "-", code, myna_reject_name(why), myna_log_q(q, sizeof(q), detail));
    reply(req, code, reason, detail, 0);
}

static struct ingress_instance *find_instance(struct table *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->inst[i].id, id) == 0)
            return &t->inst[i];
    return NULL;
}

static void store_unref(struct shared_store *s)
{
    if (s && --s->refs == 0) {
        myna_store_free(s->st);
        free(s);
    }
}

static void table_unref(struct table *t)
{
    if (t == NULL || --t->refs > 0)
        return;
    for (size_t i = 0; i < t->n; i++) {
        struct ingress_instance *in = &t->inst[i];
        free(in->id);
        free(in->phone_number_id);
        if (in->verify_token)
            OPENSSL_cleanse(in->verify_token, strlen(in->verify_token));
        free(in->verify_token);
        myna_hmac_key_free(in->key);
        store_unref(in->store);
    }
    for (size_t i = 0; i < t->n_unloaded; i++)
        free(t->unloaded[i]);
    free(t->unloaded);
    free(t->inst);
    free(t);
}

static int is_unloaded(const struct table *t, const char *id)
{
    for (size_t i = 0; i < t->n_unloaded; i++)
        if (strcmp(t->unloaded[i], id) == 0)
            return 1;
    return 0;
}

/* ---- GET: verification handshake ---------------------------------------- */

static int token_equal(const char *a, const char *b)
{
    size_t n = strlen(a);

    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

static void handle_verify(struct myna_ingress *ing, struct evhttp_request *req,
                          struct ingress_instance *in)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq q = { 0 };  /* evhttp_parse_query_str initializes it */
    const char *mode, *token, *challenge;

    if (query == NULL || evhttp_parse_query_str(query, &q) != 0) {
        evhttp_clear_headers(&q);
        reject(ing, req, MYNA_REJ_VERIFY_FAILED, 403, "Forbidden", in->id,
               "verification refused");
        return;
    }
    mode = evhttp_find_header(&q, "hub.mode");
    token = evhttp_find_header(&q, "hub.verify_token");
    challenge = evhttp_find_header(&q, "hub.challenge");
    if (mode && token && challenge && strcmp(mode, "subscribe") == 0 &&
        token_equal(token, in->verify_token) && challenge[0] != '\0' &&
        strlen(challenge) <= CHALLENGE_MAX) {
        struct evbuffer *out = evbuffer_new();
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
        if (out)
            evbuffer_add(out, challenge, strlen(challenge));  /* echoed byte for byte */
        myna_http_reply(req, 200, "OK", out);
        if (out)
            evbuffer_free(out);
        if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {  /* Meta's, not a HEAD */
            ing->metrics->verifications++;
            MYNA_LOG(MYNA_INFO, "webhook_verified", "instance=%s", in->id);
        }
    } else {
        int64_t now = myna_mono_ms();
        reject(ing, req, MYNA_REJ_VERIFY_FAILED, 403, "Forbidden", in->id,
               "verification refused");
        /* the operator's clue to a wrong verify token, but anyone can send
         * these GETs: not more than a line a second */
        if (ing->verify_logged_ms == 0 || now - ing->verify_logged_ms >= VERIFY_LOG_MS) {
            MYNA_LOG(MYNA_WARN, "webhook_verify_refused",
                     "instance=%s mode_ok=%d token_ok=%d unlogged=%lu", in->id,
                     mode && strcmp(mode, "subscribe") == 0,
                     token && token_equal(token, in->verify_token), ing->verify_unlogged);
            ing->verify_logged_ms = now;
            ing->verify_unlogged = 0;
        } else {
            ing->verify_unlogged++;
        }
    }
    evhttp_clear_headers(&q);
}

/* ---- POST: events --------------------------------------------------------- */

/* The instance whose store keeps records for phone_number_id: the owner of
 * that number among the instances of the same Meta app (if it is disabled,
 * build_parts refuses the body), else the URL's. */
static struct ingress_instance *route(const struct table *t, struct ingress_instance *url,
                                      const char *phone_number_id, int *unrouted)
{
    if (phone_number_id == NULL || strcmp(url->phone_number_id, phone_number_id) == 0)
        return url;
    for (size_t i = 0; i < t->n; i++) {
        struct ingress_instance *in = &t->inst[i];
        if (in->app == url->app && strcmp(in->phone_number_id, phone_number_id) == 0)
            return in;
    }
    (*unrouted)++;
    return url;
}

/* Splits the batch into one part per destination store, in the arena.
 * MYNA_ENOTFOUND: a record is for a disabled instance; MYNA_EAGAIN: for an
 * instance whose store cannot be opened. */
static int build_parts(const struct table *t, struct ingress_instance *url,
                       const struct myna_cloud_batch *b, struct myna_arena *a,
                       struct myna_commit_job *job, int *unrouted, struct myna_err *err)
{
    size_t n_rec = b->n_msgs + b->n_statuses;
    struct ingress_instance **dest = myna_arena_alloc(a, (n_rec ? n_rec : 1) * sizeof(*dest));
    struct myna_commit_part *parts = myna_arena_zalloc(a, (n_rec ? n_rec : 1) * sizeof(*parts));
    size_t n_parts = 0;

    if (dest == NULL || parts == NULL)
        return MYNA_ENOMEM;
    for (size_t i = 0; i < b->n_msgs; i++)
        dest[i] = route(t, url, b->msgs[i].phone_number_id, unrouted);
    for (size_t i = 0; i < b->n_statuses; i++)
        dest[b->n_msgs + i] = route(t, url, b->statuses[i].phone_number_id, unrouted);
    for (size_t i = 0; i < n_rec; i++)
        if (dest[i]->store == NULL) {
            /* its own URL gets 404: Meta keeps the body and retries until
             * the instance is enabled again */
            if (!dest[i]->enabled)
                return myna_err_set(err, MYNA_ENOTFOUND,
                                    "a record is for instance '%s', which is disabled; "
                                    "retry later",
                                    dest[i]->id);
            /* as at its own URL: 503, Meta keeps the body and retries */
            return myna_err_set(err, MYNA_EAGAIN,
                                "a record is for instance '%s', whose store cannot be "
                                "opened; retry later",
                                dest[i]->id);
        }

    /* Almost every body goes to one store: then the part points into the
     * batch's arrays directly. Otherwise records are copied per store. */
    for (size_t i = 0; i < n_rec; i++) {
        struct myna_store *st = dest[i]->store->st;
        size_t k;
        for (k = 0; k < n_parts && parts[k].store != st; k++)
            ;
        if (k == n_parts)
            parts[n_parts++].store = st;
    }
    for (size_t k = 0; k < n_parts; k++) {
        struct myna_commit_part *pt = &parts[k];
        struct myna_inbound *msgs = myna_arena_alloc(a, (b->n_msgs + 1) * sizeof(*msgs));
        struct myna_status_rec *sts = myna_arena_alloc(a, (b->n_statuses + 1) * sizeof(*sts));

        pt->msg_new = myna_arena_zalloc(a, b->n_msgs + 1);
        pt->st_new = myna_arena_zalloc(a, b->n_statuses + 1);
        if (msgs == NULL || sts == NULL || pt->msg_new == NULL || pt->st_new == NULL)
            return MYNA_ENOMEM;
        for (size_t i = 0; i < b->n_msgs; i++)
            if (dest[i]->store->st == pt->store)
                msgs[pt->n_msgs++] = b->msgs[i];
        for (size_t i = 0; i < b->n_statuses; i++)
            if (dest[b->n_msgs + i]->store->st == pt->store)
                sts[pt->n_sts++] = b->statuses[i];
        pt->msgs = msgs;
        pt->sts = sts;
    }
    job->parts = parts;
    job->n_parts = n_parts;
    return MYNA_OK;
}

static void pending_free(struct pending *p)
{
    struct myna_arena a = p->arena;  /* p itself lives in the arena */

    table_unref(p->table);
    myna_arena_free(&a);
}

/* Counts the records of the parts whose store committed them and rings
 * the doorbell of each instance that got new ones: all the parts of a job
 * that succeeded; of one that failed in another store, what was kept all
 * the same (its bot must not wait for its next poll to see it). */
static void committed(struct myna_ingress *ing, const struct pending *p)
{
    struct myna_metrics *m = ing->metrics;

    for (size_t k = 0; k < p->job.n_parts; k++) {
        const struct myna_commit_part *pt = &p->job.parts[k];
        size_t fresh = 0;
        if (!pt->committed)
            continue;
        for (size_t i = 0; i < pt->n_msgs; i++) {
            m->stored_messages += pt->msg_new[i];
            m->duplicate_messages += !pt->msg_new[i];
            fresh += pt->msg_new[i];
        }
        for (size_t i = 0; i < pt->n_sts; i++) {
            m->stored_statuses += pt->st_new[i];
            m->duplicate_statuses += !pt->st_new[i];
            fresh += pt->st_new[i];
        }
        for (size_t i = 0; fresh && ing->notify && i < p->table->n; i++)
            if (p->table->inst[i].store && p->table->inst[i].store->st == pt->store)
                ing->notify(p->table->inst[i].id, ing->notify_arg);
    }
}

static void on_committed(struct myna_commit_job *job, void *arg)
{
    struct pending *p = arg;
    struct myna_ingress *ing = p->ing;
    struct myna_metrics *m = ing->metrics;

    (void)job;
    m->pending_requests--;
    if (ing->closing) {
        pending_free(p);
        return;
    }
    switch (p->job.rc) {
    case MYNA_OK:
        break;
    case MYNA_EPARSE:
        reject(ing, p->req, MYNA_REJ_BAD_JSON, 400, "Bad Request", p->in->id, p->err.msg);
        pending_free(p);
        return;
    case MYNA_ESHAPE:
        reject(ing, p->req, MYNA_REJ_BAD_SHAPE, 400, "Bad Request", p->in->id, p->err.msg);
        pending_free(p);
        return;
    case MYNA_ETOOBIG:
        reject(ing, p->req, MYNA_REJ_TOO_LARGE, 413, "Payload Too Large", p->in->id,
               p->err.msg);
        pending_free(p);
        return;
    case MYNA_ENOTFOUND:
        reject(ing, p->req, MYNA_REJ_INSTANCE_DISABLED, 404, "Not Found", p->in->id,
               p->err.msg);
        pending_free(p);
        return;
    case MYNA_EAGAIN:
        reject(ing, p->req, MYNA_REJ_STORE_FAILED, 503, "Service Unavailable", p->in->id,
               p->err.msg);
        pending_free(p);
        return;
    default:
        committed(ing, p);  /* the other store's part of a split body, if any */
        reject(ing, p->req, MYNA_REJ_STORE_FAILED, 500, "Internal Server Error",
               p->in->id, "records could not be stored; retry later");
        pending_free(p);
        return;
    }
    /* counted once the body is taken: Meta sends a refused one again */
    m->ignored_changes += p->n_ignored;
    m->invalid_items += p->n_invalid;
    m->unrouted_records += (uint64_t)p->n_unrouted;
    m->account_errors += p->n_errors;
    if (p->n_invalid)
        MYNA_LOG(MYNA_WARN, "webhook_items_skipped", "instance=%s invalid=%zu", p->in->id,
                 p->n_invalid);
    if (p->n_errors)  /* no message to store: the log and the metric are all there is */
        MYNA_LOG(MYNA_WARN, "webhook_errors", "instance=%s errors=%zu code=%d", p->in->id,
                 p->n_errors, p->error_code);
    committed(ing, p);
    reply(p->req, 200, "OK", "ok", 1);
    pending_free(p);
}

/* Writer thread: parse and route the body. Touches only p, its arena and
 * the ingress's read-only instance table. */
static int prepare(struct myna_commit_job *job, void *arg)
{
    struct pending *p = arg;
    struct myna_cloud_batch batch;
    int rc;

    (void)job;
    rc = myna_cloud_parse(p->body, p->len, &p->arena, &batch, &p->err);
    if (rc != MYNA_OK)
        return rc;
    p->n_ignored = batch.n_ignored;
    p->n_invalid = batch.n_invalid;
    p->n_errors = batch.n_errors;
    p->error_code = batch.error_code;
    return build_parts(p->table, p->in, &batch, &p->arena, &p->job, &p->n_unrouted, &p->err);
}

static void handle_event(struct myna_ingress *ing, struct evhttp_request *req,
                         struct ingress_instance *in)
{
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    const char *sig = evhttp_find_header(evhttp_request_get_input_headers(req),
                                         "X-Hub-Signature-256");
    struct myna_arena arena = MYNA_ARENA_INIT(0);
    struct myna_err err = MYNA_ERR_INIT;
    struct pending *p;
    const char *bytes;

    ing->metrics->webhooks_received++;
    if (ing->draining) {
        reject(ing, req, MYNA_REJ_SHUTTING_DOWN, 503, "Service Unavailable", in->id,
               "shutting down; retry later");
        return;
    }
    if (len > ing->max_body) {
        reject(ing, req, MYNA_REJ_TOO_LARGE, 413, "Payload Too Large", in->id,
               "body too large");
        return;
    }
    if (myna_committer_pending(ing->committer) >= ing->max_pending) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reject(ing, req, MYNA_REJ_OVERLOADED, 503, "Service Unavailable", in->id,
               "overloaded; retry later");
        return;
    }
    bytes = (const char *)evbuffer_pullup(body, -1);
    if (bytes == NULL && len > 0) {  /* out of memory: "" would be read for len bytes */
        reject(ing, req, MYNA_REJ_OVERLOADED, 503, "Service Unavailable", in->id,
               "out of memory; retry later");
        return;
    }
    if (bytes == NULL)
        bytes = "";
    if (myna_signature_verify(in->key, sig, bytes, len, &err) != MYNA_OK) {
        reject(ing, req, MYNA_REJ_BAD_SIGNATURE, 401, "Unauthorized", in->id, err.msg);
        return;
    }
    if (in->store == NULL) {  /* nothing can be kept: Meta keeps it and retries */
        reject(ing, req, MYNA_REJ_STORE_FAILED, 503, "Service Unavailable", in->id,
               "the instance's store cannot be opened; retry later");
        return;
    }
    /* the arena's own first bytes hold the pending request */
    if ((p = myna_arena_zalloc(&arena, sizeof(*p))) == NULL ||
        (p->body = myna_arena_strndup(&arena, bytes, len)) == NULL) {
        myna_arena_free(&arena);
        reject(ing, req, MYNA_REJ_OVERLOADED, 503, "Service Unavailable", in->id,
               "out of memory; retry later");  /* as when the body cannot be pulled up */
        return;
    }
    p->len = len;
    p->req = req;
    p->ing = ing;
    p->table = ing->table;
    p->table->refs++;
    p->in = in;
    p->job.received_ms = myna_wall_ms();
    p->job.prepare = prepare;
    p->job.done = on_committed;
    p->job.arg = p;
    p->arena = arena;  /* from here the arena (holding p itself) is owned by p */
    ing->metrics->pending_requests++;
    myna_committer_submit(ing->committer, &p->job);
}

/* id is stored, but its settings did not load at start (fleet.h): it has
 * no key to check a signature with nor a store to keep a body in, so 503,
 * which Meta retries for 7 days, not 404 as if it did not exist. */
static void refuse_unloaded(struct myna_ingress *ing, struct evhttp_request *req, const char *id,
                            const char *method)
{
    int64_t now = myna_mono_ms();

    reject(ing, req, MYNA_REJ_NOT_LOADED, 503, "Service Unavailable", id,
           "the instance's settings did not load at start; retry later");
    /* the operator's clue, but anyone can send these: not more than a
     * line a second */
    if (ing->unloaded_logged_ms == 0 || now - ing->unloaded_logged_ms >= VERIFY_LOG_MS) {
        MYNA_LOG(MYNA_WARN, "webhook_instance_not_loaded", "instance=%s method=%s unlogged=%lu",
                 id, method, ing->unloaded_unlogged);
        ing->unloaded_logged_ms = now;
        ing->unloaded_unlogged = 0;
    } else {
        ing->unloaded_unlogged++;
    }
}

void myna_ingress_handle(struct myna_ingress *ing, struct evhttp_request *req, const char *id)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct ingress_instance *in = myna_is_slug(id) ? find_instance(ing->table, id) : NULL;
    int unloaded = in == NULL && myna_is_slug(id) && is_unloaded(ing->table, id);

    if (in && !in->enabled)
        in = NULL;  /* not served */
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD && cmd != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD, POST");
        reject(ing, req, MYNA_REJ_BAD_METHOD, 405, "Method Not Allowed", in ? id : NULL,
               "use GET (verification) or POST (events)");
        return;
    }
    if (unloaded) {
        refuse_unloaded(ing, req, id,
                        cmd == EVHTTP_REQ_POST ? "POST" : cmd == EVHTTP_REQ_GET ? "GET" : "HEAD");
        return;
    }
    if (in == NULL) {
        reject(ing, req, MYNA_REJ_UNKNOWN_INSTANCE, 404, "Not Found", NULL, "unknown instance");
        return;
    }
    if (cmd != EVHTTP_REQ_POST)  /* a HEAD is answered as a GET, without the body */
        handle_verify(ing, req, in);
    else
        handle_event(ing, req, in);
}

void myna_ingress_set_notify(struct myna_ingress *ing, void (*fn)(const char *id, void *arg),
                             void *arg)
{
    ing->notify = fn;
    ing->notify_arg = arg;
}

void myna_ingress_drain(struct myna_ingress *ing)
{
    ing->draining = 1;
}

size_t myna_ingress_pending(const struct myna_ingress *ing)
{
    return myna_committer_pending(ing->committer);
}

void myna_ingress_commit_stats(struct myna_ingress *ing, struct myna_commit_stats *out)
{
    myna_committer_stats(ing->committer, out);
}

static int make_dir(const char *path, struct myna_err *err)
{
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return myna_err_set(err, MYNA_EIO, "cannot create directory '%s': %s", path,
                            strerror(errno));
    return MYNA_OK;
}

/* A checkpoint runs inside the commit that crosses this many log pages
 * (4 KiB each), and the webhooks of that group wait for it. SQLite's 1000
 * means a 5-10 ms checkpoint every ~2,000 webhooks; 16000 means one of
 * 50-100 ms every ~30,000 (a few a minute at full load), with less copying
 * in all, since hot pages (the index, the last leaf) are copied once per
 * checkpoint, not once per thousand pages. Measured under bench/ (webhook):
 * p99 about 10 ms at 1000 and 6-8 ms at 16000. The log of a busy instance
 * then stays at up to 64 MiB on disk. */
#define INGRESS_CHECKPOINT_PAGES 16000

/* The shared store of id: the current table's, else opened now; NULL with
 * err set when it cannot be opened. */
static struct shared_store *store_for(struct myna_ingress *ing, const char *id,
                                      struct myna_err *err)
{
    struct ingress_instance *old = ing->table ? find_instance(ing->table, id) : NULL;
    struct myna_store_opts opts = { .sync = (enum myna_store_sync)ing->conf->store_sync,
                                    .busy_timeout_ms = 2000,
                                    .checkpoint_pages = INGRESS_CHECKPOINT_PAGES };
    struct shared_store *s;
    char path[4200];

    if (old && old->store) {
        old->store->refs++;
        return old->store;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/instances/%s.db", ing->conf->data_dir, id);
    if ((s->st = myna_store_open_sqlite(path, &opts, err)) == NULL) {
        free(s);
        return NULL;
    }
    s->refs = 1;
    return s;
}

int myna_ingress_set_instances(struct myna_ingress *ing, const struct myna_instance *const *v,
                               size_t n, const char *const *unloaded, size_t n_unloaded,
                               struct myna_err *err)
{
    struct table *t = calloc(1, sizeof(*t));
    struct myna_err none = MYNA_ERR_INIT;

    if (err == NULL)  /* a store that fails to open is read from it */
        err = &none;
    if (t == NULL || (t->inst = calloc(n ? n : 1, sizeof(*t->inst))) == NULL ||
        (t->unloaded = calloc(n_unloaded ? n_unloaded : 1, sizeof(*t->unloaded))) == NULL) {
        if (t)
            free(t->inst);
        free(t);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    t->refs = 1;
    for (size_t i = 0; i < n_unloaded; i++, t->n_unloaded++)
        if ((t->unloaded[i] = strdup(unloaded[i])) == NULL) {
            myna_err_set(err, MYNA_ENOMEM, "out of memory");
            goto fail;
        }
    for (size_t i = 0; i < n; i++) {
        struct ingress_instance *in = &t->inst[i];
        t->n = i + 1;  /* what table_unref frees on failure */
        in->enabled = v[i]->enabled;
        in->app = i;
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[j]->app_secret, v[i]->app_secret) == 0) {
                in->app = t->inst[j].app;
                break;
            }
        if ((in->id = strdup(v[i]->id)) == NULL ||
            (in->phone_number_id = strdup(v[i]->phone_number_id)) == NULL ||
            (in->enabled && (in->verify_token = strdup(v[i]->verify_token)) == NULL)) {
            myna_err_set(err, MYNA_ENOMEM, "out of memory");
            goto fail;
        }
        if (!in->enabled)
            continue;
        if ((in->key = myna_hmac_key_new(v[i]->app_secret, strlen(v[i]->app_secret), err)) ==
            NULL)
            goto fail;
        if ((in->store = store_for(ing, in->id, err)) == NULL) {
            char q[600];
            if (err->code == MYNA_ENOMEM)
                goto fail;
            /* one broken file must not keep the other instances down */
            MYNA_LOG(MYNA_ERROR, "instance_store_failed", "instance=%s err=%s", in->id,
                     myna_log_q(q, sizeof(q), err->msg));
            err->code = MYNA_OK;
            err->msg[0] = '\0';
        }
    }
    table_unref(ing->table);  /* requests in flight keep theirs */
    ing->table = t;
    return MYNA_OK;
fail:
    table_unref(t);
    return err->code ? err->code : MYNA_ENOMEM;
}

struct myna_ingress *myna_ingress_new(struct event_base *base, const struct myna_conf *conf,
                                      const struct myna_instance_set *instances,
                                      struct myna_metrics *metrics, struct myna_err *err)
{
    struct myna_ingress *ing = calloc(1, sizeof(*ing));
    const struct myna_instance **v = NULL;
    char dir[4200];

    if (ing == NULL || (v = calloc(instances->n ? instances->n : 1, sizeof(*v))) == NULL) {
        free(ing);
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    ing->conf = conf;
    ing->metrics = metrics;
    ing->max_body = (size_t)conf->max_body_bytes;
    ing->max_pending = (size_t)conf->max_pending;
    for (size_t i = 0; i < instances->n; i++)
        v[i] = &instances->v[i];
    snprintf(dir, sizeof(dir), "%s/instances", conf->data_dir);
    if (make_dir(conf->data_dir, err) != MYNA_OK || make_dir(dir, err) != MYNA_OK ||
        myna_ingress_set_instances(ing, v, instances->n, NULL, 0, err) != MYNA_OK)
        goto fail;
    free(v);
    v = NULL;
    ing->committer = myna_committer_new(base, (size_t)conf->commit_max_records, err);
    if (ing->committer == NULL)
        goto fail;
    return ing;
fail:
    free(v);
    myna_ingress_free(ing);
    return NULL;
}

void myna_ingress_free(struct myna_ingress *ing)
{
    if (ing == NULL)
        return;
    ing->closing = 1;
    myna_committer_free(ing->committer);  /* answers the last jobs: their tables go */
    table_unref(ing->table);
    free(ing);
}
