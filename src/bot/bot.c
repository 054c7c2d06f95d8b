/* bot.c - the bot process: inbox -> gate -> batches -> turns -> brain ->
 * outbox -> sender, and statuses back into the outbox. */
#include "bot/bot.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ai/answerer.h"
#include "ai/llm.h"
#include "bot/pace.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "net/http_client.h"
#include "store/bot_store.h"
#include "store/store.h"
#include "wa/format.h"
#include "wa/graph.h"
#include "core/banned.h"

#define INBOX_CHUNK 256
#define LANE_BUCKETS 4096
#define WA_TEXT_MAX 4096
#define SEND_TIMEOUT_MS 20000
#define SEND_BATCH 64         /* due records read per sender pass */
/* 131048 (spam rate limit): Meta says to retry much later (B5) */
#define SPAM_PAUSE_MS 60000
#define ANSWER_RETRY_FIRST_MS 200
#define ANSWER_RETRY_MAX_MS 10000
/* Turns with the brain at once. The rest wait in the store (durable) and
 * start as answers come back: a backlog (a burst, a restart, the model
 * down) costs neither memory nor requests queued in curl, whose pending
 * queue is a list scanned on every removal. */
#define MAX_ANSWERING 128
#define PENDING_READ (2 * MAX_ANSWERING)  /* pending turns read per kick */
/* Mark-read (and typing) requests in flight: past this, they wait in the
 * queue, not in curl (about 20 KB of memory each until their turn on a
 * connection). */
#define MAX_READS_IN_FLIGHT 64
/* Mark-read (and typing) requests waiting for a pace slot: Meta's
 * throughput limit (80 a second, inbound and outbound, all types) counts
 * them with the replies, so they take the slots the replies leave. Past
 * this, the oldest is dropped: a later read marks the earlier messages
 * read too. */
#define READ_QUEUE 16
#define STOP_DRAIN_MS 3000    /* at stop, how long sends in flight may take to answer */
/* How long a write to the bot's store waits for another process's write
 * lock (an operator's sqlite3 shell, `myna outbox replay`, the admin API):
 * the wait blocks the loop (sends, timers, the heartbeat), so it is short,
 * and what did not get the lock is tried again on a later turn of the loop. */
#define STORE_BUSY_MS 200
/* A batch cut that did not get the store (its lock, a failed write) is
 * tried again after this (its window is over already). */
#define BATCH_RETRY_MS 1000
/* bytes of a batch's joined texts, or of a message answered on its own */
#define TURN_TEXT_MAX (64 * 1024)

/* One per contact seen lately: its batch timer and what is in flight.
 * An idle lane is freed after LANE_IDLE_MS (lanes_sweep), so that memory
 * follows the contacts of the last minutes, not all there ever were. */
#define LANE_IDLE_MS (10 * 60 * 1000)
#define LANE_SWEEP_MS 60000
struct lane {
    struct lane *next;       /* hash chain */
    struct bot *bot;
    char *contact;
    struct event *batch_timer;
    struct lane *due_next;   /* b->due_lanes: its batch timer fired */
    int due_queued;          /* in that list */
    int flush_rc;            /* flush: how its part of the transaction went */
    int busy;                /* a turn is being answered */
    int sending;             /* an outbox send is in flight */
    /* loop guard (in memory: a restart forgives). Its times, and used_ms,
     * are monotonic (myna_mono_ms): a wall clock set back would put the
     * last replies ahead of it, all "within the minute", and keep the
     * contact silenced until it caught up. */
    int64_t *reply_ms;       /* times of the last replies, a ring */
    size_t reply_next;
    int64_t cooldown_until_ms;
    uint64_t last_text_hash;  /* the last text that drew a reply */
    uint64_t last_reply_hash; /* and that reply */
    int repeats;             /* that exchange, in a row (loop_guard_replied) */
    int64_t used_ms;         /* its last lane_get */
};

/* What stops every send until a person fixes it, as Meta's refusals tell
 * it; each is an attention reason of the supervisor (master/supervisor.h). */
enum block { BLOCK_TOKEN, BLOCK_LOCKED, BLOCK_UNREGISTERED, BLOCK_PAYMENT, BLOCK_COUNT };
/* How Meta said it: refusing a send, or taking it and then sending a
 * failed status (the same codes come either way, B4) */
enum { BLOCK_BY_ANSWER = 1, BLOCK_BY_STATUS = 2 };

static const char *const block_names[BLOCK_COUNT] = { "invalid_token", "account_locked",
                                                      "number_unregistered",
                                                      "payment_failed" };

/* A mark-read waiting in b->reads. */
struct read_req {
    char *wamid;
    char *contact;
    int typing;              /* with the typing indicator */
};

struct bot {
    struct event_base *base;
    const struct myna_instance *in;
    const struct myna_bot_opts *opts;
    struct myna_store *inbox;      /* <id>.db: the master writes, the bot reads */
    struct myna_store *st;         /* <id>.bot.db: the bot's own state */
    struct myna_bot_store *bs;
    struct myna_http_client *http;
    struct myna_llm *llm;
    struct myna_answerer *faq;
    struct myna_graph *graph;
    struct event *doorbell, *poll, *sig_term, *sig_int, *send_timer, *turn_kick, *heartbeat;
    /* Writes decided in this turn of the loop, committed together by
     * flush_ev at its end (one transaction instead of one per batch timer,
     * answer and send result): nothing is sent before the commit, and what a
     * crash loses of them is what a crash a moment earlier would have lost
     * (a turn still pending, a send still uncertain). */
    struct event *flush_ev;
    struct lane *due_lanes;       /* batch timers that fired */
    struct answering *done;       /* answers to commit */
    /* answers whose commit failed, committed again by retry_timer after
     * retry_ms (doubling from ANSWER_RETRY_FIRST_MS; 0 after a commit) */
    struct answering *retrying;
    struct event *retry_timer;
    int retry_ms;
    struct sending *results;      /* send answers to record */
    /* the inbox and statuses cursors as committed: this bot is their only
     * writer (one bot per instance), so each is read from the store once */
    int64_t cursor_seq[2];
    int cursor_known[2];
    struct lane *lanes[LANE_BUCKETS];
    int64_t swept_ms;             /* the last lanes_sweep (monotonic) */
    int64_t next_send_us;    /* pacing: the next slot (pace.h) */
    int64_t send_at_ms;      /* when send_timer is set to run */
    struct answering *answering;  /* in flight, freed at exit if still there */
    size_t n_answering;           /* in that list, at most MAX_ANSWERING */
    int n_reads;                  /* mark-read requests in flight */
    struct read_req reads[READ_QUEUE];  /* waiting for a slot, a ring */
    size_t reads_head, n_queued_reads;
    struct sending *sends;
    int stopping;
    int exit_rc;
    int lock_fd;             /* the instance's bot lock, held for life */
    /* attention states for the supervisor (tell_attention), by enum block:
     * the provider's last word, BLOCK_BY_ANSWER or BLOCK_BY_STATUS it
     * refused a send for it, 0 it took one; -1 not known */
    int blocked[BLOCK_COUNT];
    int told[BLOCK_COUNT], told_circuit;  /* what the supervisor was told last */
    /* the probe's wamid while a block is on BY_STATUS: its status tells
     * (a taken send proves nothing then), or NULL */
    char *probe_wamid;
    /* held (see held()): nothing is sent before hold_until_ms; then one
     * send, the probe, goes alone until its answer */
    int64_t hold_until_ms;
    int probing;             /* the probe is in flight */
    /* the last probe's record and send (as its callback data names them):
     * a status that reconciles that send (probe_reconciled) is the probe's */
    int64_t probe_id;
    int probe_attempt;
    /* a limit of the whole number (myna_graph_limits_number): nothing is
     * sent before pause_until_ms; each such limit in a row waits longer */
    int64_t pause_until_ms;
    int limits_in_row;
};

/* ---- lanes --------------------------------------------------------------- */

static unsigned lane_hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % LANE_BUCKETS;
}

static void on_batch_timer(evutil_socket_t fd, short what, void *arg);

static struct lane *lane_get(struct bot *b, const char *contact)
{
    unsigned h = lane_hash(contact);
    struct lane *l;

    for (l = b->lanes[h]; l; l = l->next)
        if (strcmp(l->contact, contact) == 0) {
            l->used_ms = myna_mono_ms();
            return l;
        }
    if ((l = calloc(1, sizeof(*l))) == NULL || (l->contact = strdup(contact)) == NULL ||
        (l->batch_timer = evtimer_new(b->base, on_batch_timer, l)) == NULL) {
        if (l)
            free(l->contact);
        free(l);
        return NULL;
    }
    l->bot = b;
    l->used_ms = myna_mono_ms();
    l->next = b->lanes[h];
    b->lanes[h] = l;
    return l;
}

static void lane_free(struct lane *l)
{
    free(l->reply_ms);
    event_free(l->batch_timer);
    free(l->contact);
    free(l);
}

static void lanes_free(struct bot *b)
{
    for (int i = 0; i < LANE_BUCKETS; i++) {
        struct lane *l = b->lanes[i], *next;
        for (; l; l = next) {
            next = l->next;
            lane_free(l);
        }
    }
}

/* Frees the lanes unused for LANE_IDLE_MS (so no reply within the loop
 * guard's minute either) with nothing going on: no answer, send, batch
 * timer or loop-guard cooldown. What they forget (the last text's hash) is
 * what a restart forgets. At most once a LANE_SWEEP_MS. */
static void lanes_sweep(struct bot *b, int64_t now)
{
    size_t freed = 0;

    if (now - b->swept_ms < LANE_SWEEP_MS)
        return;
    b->swept_ms = now;
    for (int i = 0; i < LANE_BUCKETS; i++) {
        struct lane **p = &b->lanes[i];
        while (*p) {
            struct lane *l = *p;
            if (now - l->used_ms < LANE_IDLE_MS || l->busy || l->sending || l->due_queued ||
                evtimer_pending(l->batch_timer, NULL) || l->cooldown_until_ms > now) {
                p = &l->next;
                continue;
            }
            *p = l->next;
            lane_free(l);
            freed++;
        }
    }
    if (freed)
        MYNA_LOG(MYNA_DEBUG, "lanes_swept", "instance=%s freed=%zu", b->in->id, freed);
}

static void log_store_error(struct bot *b, const char *event, const struct myna_err *err)
{
    char q[600];

    MYNA_LOG(MYNA_ERROR, event, "instance=%s err=%s", b->in->id,
             myna_log_q(q, sizeof(q), err->msg));
}

static void queue_flush(struct bot *b)
{
    event_active(b->flush_ev, EV_TIMEOUT, 0);  /* once, however often */
}

static void kick_turns(struct bot *b)
{
    event_active(b->turn_kick, EV_TIMEOUT, 0);
}

static void arm_sender(struct bot *b, int64_t at_ms);
static void pause_sends(struct bot *b, int code);
static int block_of(enum myna_send_class cls, int code);
static void hold_sends(struct bot *b, int k, int how, int code, long http_status,
                       const char *why, int64_t outbox_id);
static int unblock(struct bot *b, int how);
static void tell_attention(struct bot *b);
static int held(const struct bot *b);
static void probe_status(struct bot *b, const struct myna_status_row *row);
static void reads_clear(struct bot *b);
static void post_reads(struct bot *b);

static void kick_sender(struct bot *b)
{
    arm_sender(b, myna_wall_ms());
}

/* ---- the gate ------------------------------------------------------------ */

static int listed(char *const *v, size_t n, const char *contact)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], contact) == 0)
            return 1;
    return 0;
}

static uint64_t text_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Two auto-responders answering each other get banned together: a contact
 * that draws more replies in a minute than a person reads, or that is
 * stuck in a fixed point with us (the same text drawing the same reply
 * repeat_limit times in a row: its next same text is not answered), gets
 * no replies for a cooldown. 1 = silence. A person answering "yes" to
 * different questions draws different replies, and is never stuck. A
 * reply counts once it goes (loop_guard_replied): a turn that ends in
 * silence (past the rate limit) drew none. */
static int loop_guard(struct bot *b, struct lane *l, const char *text)
{
    const struct myna_instance *in = b->in;
    int64_t now = myna_mono_ms();
    size_t cap = (size_t)in->loop_replies_per_minute;
    const char *why = NULL;

    if (now < l->cooldown_until_ms)
        return 1;
    if (text_hash(text) != l->last_text_hash)
        l->repeats = 0;  /* another text: the exchanges in a row end */
    else if (l->repeats >= in->loop_repeat_limit)
        why = "repeated_text";
    if (l->reply_ms == NULL && (l->reply_ms = calloc(cap, sizeof(*l->reply_ms))) == NULL)
        return 0;
    /* the oldest of the last cap replies less than a minute ago: too many */
    if (why == NULL && l->reply_ms[l->reply_next] > 0 && now - l->reply_ms[l->reply_next] < 60000)
        why = "reply_budget";
    if (why) {
        char masked[32];
        l->cooldown_until_ms = now + (int64_t)in->loop_cooldown_s * 1000;
        l->repeats = 0;
        MYNA_LOG(MYNA_WARN, "loop_guard", "instance=%s contact=%s reason=%s cooldown_s=%d",
                 in->id, myna_phone_mask(l->contact, masked, sizeof(masked)), why,
                 in->loop_cooldown_s);
        return 1;
    }
    return 0;
}

/* The turn loop_guard let through, text, got reply (what went, all its
 * parts): it counts against replies_per_minute, and is one more exchange
 * in a row when both are the same as the last one's. */
static void loop_guard_replied(struct bot *b, struct lane *l, const char *text,
                               const char *reply)
{
    size_t cap = (size_t)b->in->loop_replies_per_minute;
    uint64_t th = text_hash(text), rh = text_hash(reply);

    l->repeats = th == l->last_text_hash && rh == l->last_reply_hash ? l->repeats + 1 : 1;
    l->last_text_hash = th;
    l->last_reply_hash = rh;
    if (l->reply_ms == NULL)
        return;  /* out of memory when loop_guard asked: not counted */
    l->reply_ms[l->reply_next] = myna_mono_ms();
    l->reply_next = (l->reply_next + 1) % cap;
}

/* 0 when the contact may be answered. A number Meta rewrites (a Brazilian
 * mobile without its ninth digit, a Mexican one with the 1 after 52) is
 * listed in either form: the wa_id is not always the number people know. */
static int gate_refuses(const struct myna_instance *in, const char *contact)
{
    char other[16];
    int alt = myna_phone_other_form(contact, other);

    if (listed(in->blocked, in->n_blocked, contact) ||
        (alt && listed(in->blocked, in->n_blocked, other)))
        return 1;
    return in->n_allowed > 0 && !listed(in->allowed, in->n_allowed, contact) &&
           !(alt && listed(in->allowed, in->n_allowed, other));
}

/* ---- batches ------------------------------------------------------------- */

static void batch_timer_set(struct lane *l, int64_t wait_ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(wait_ms / 1000);
    tv.tv_usec = (suseconds_t)(wait_ms % 1000) * 1000;
    evtimer_add(l->batch_timer, &tv);
}

static void arm_batch(struct bot *b, const char *contact, int64_t last_ms)
{
    struct lane *l = lane_get(b, contact);
    int64_t wait = last_ms + b->in->batch_window_ms - myna_wall_ms();

    if (l == NULL)
        return;
    if (wait < 0)
        wait = 0;  /* a deadline already past (restart, downtime) flushes at once */
    if (wait > b->in->batch_window_ms)
        wait = b->in->batch_window_ms;  /* a fragment ahead of the clock: it was set back */
    batch_timer_set(l, wait);
}

/* Turns the batch read back into a pending turn and deletes it (inside a
 * transaction); releases batch. */
static int batch_to_turn(struct bot *b, struct myna_batch *batch, struct myna_err *err)
{
    struct myna_turn t;
    char kind[] = "text";
    int rc;

    memset(&t, 0, sizeof(t));
    t.contact = batch->contact;
    t.kind = kind;
    t.text = batch->text;
    t.profile_name = batch->profile_name;
    t.last_wamid = batch->last_wamid;
    t.created_ms = myna_wall_ms();
    rc = myna_bot_turn_add(b->bs, &t, NULL, err);
    if (rc == MYNA_OK)
        rc = myna_bot_batch_del(b->bs, batch->contact, err);
    MYNA_LOG(MYNA_DEBUG, "batch_flushed", "instance=%s fragments=%d late_ms=%" PRId64,
             b->in->id, batch->n, myna_wall_ms() - (batch->last_ms + b->in->batch_window_ms));
    myna_batch_release(batch);
    return rc;
}

/* Turns the contact's open batch into a pending turn (inside a transaction). */
static int flush_batch(struct bot *b, const char *contact, struct myna_err *err)
{
    struct myna_batch batch;
    int rc = myna_bot_batch_get(b->bs, contact, &batch, err);

    if (rc == MYNA_ENOTFOUND)
        return MYNA_OK;
    if (rc != MYNA_OK)
        return rc;
    return batch_to_turn(b, &batch, err);
}

/* The flush's part for a lane whose batch timer fired (in its transaction):
 * the batch becomes a turn, unless a fragment came since, which set the
 * timer again (drain_inbox). The timer tells, not the wall clock: one set
 * back would keep the batch open until it caught up. */
static int flush_due_batch(struct bot *b, struct lane *l, struct myna_err *err)
{
    struct myna_batch batch;
    int rc;

    if (evtimer_pending(l->batch_timer, NULL))
        return MYNA_OK;
    if ((rc = myna_bot_batch_get(b->bs, l->contact, &batch, err)) == MYNA_ENOTFOUND)
        return MYNA_OK;
    if (rc != MYNA_OK)
        return rc;
    return batch_to_turn(b, &batch, err);
}

/* Timers that fire in the same turn of the loop flush in one transaction. */
static void on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lane *l = arg;
    struct bot *b = l->bot;

    (void)fd;
    (void)what;
    if (l->due_queued)
        return;
    l->due_queued = 1;
    l->due_next = b->due_lanes;
    b->due_lanes = l;
    queue_flush(b);
}

/* Appends text to the contact's batch; flushes at batch_max. */
static int add_fragment(struct bot *b, const struct myna_inbox_row *row, const char *text,
                        int is_stale, struct myna_err *err)
{
    struct myna_batch batch;
    char *joined = NULL;
    int rc = myna_bot_batch_get(b->bs, row->m.contact, &batch, err);

    if (rc == MYNA_ENOTFOUND) {
        struct myna_batch fresh;
        char *contact = strdup(row->m.contact), *t = strdup(text);
        char *name = row->m.profile_name ? strdup(row->m.profile_name) : NULL;
        char *wamid = strdup(row->m.wamid);
        if (contact == NULL || t == NULL || wamid == NULL) {
            free(contact);
            free(t);
            free(name);
            free(wamid);
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        }
        fresh = (struct myna_batch){ contact, t, 1, row->seq, row->seq, row->received_ms, name,
                                     wamid };
        rc = myna_bot_batch_put(b->bs, &fresh, err);
        if (rc == MYNA_OK && fresh.n >= b->in->batch_max && !is_stale)  /* batch.max 1 */
            rc = flush_batch(b, row->m.contact, err);
        myna_batch_release(&fresh);
        return rc;
    }
    if (rc != MYNA_OK)
        return rc;
    if (strlen(batch.text) + strlen(text) + 2 > TURN_TEXT_MAX) {
        /* a runaway burst: answer what we have, start again */
        myna_batch_release(&batch);
        if ((rc = flush_batch(b, row->m.contact, err)) != MYNA_OK)
            return rc;
        return add_fragment(b, row, text, is_stale, err);
    }
    if ((joined = malloc(strlen(batch.text) + strlen(text) + 2)) == NULL) {
        myna_batch_release(&batch);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    snprintf(joined, strlen(batch.text) + strlen(text) + 2, "%s %s", batch.text, text);
    free(batch.text);
    batch.text = joined;
    batch.n++;
    batch.last_seq = row->seq;
    batch.last_ms = row->received_ms;
    free(batch.last_wamid);
    batch.last_wamid = strdup(row->m.wamid);
    rc = myna_bot_batch_put(b->bs, &batch, err);
    if (rc == MYNA_OK && batch.n >= b->in->batch_max && !is_stale)
        rc = flush_batch(b, row->m.contact, err);
    myna_batch_release(&batch);
    return rc;
}

/* A message answered on its own, at once: it first cuts the open batch. */
static int add_single_turn(struct bot *b, const struct myna_inbox_row *row, const char *kind,
                           const char *text, struct myna_err *err)
{
    struct myna_turn t;
    char *k = strdup(kind), *tx = strdup(text);
    int rc;

    if (k == NULL || tx == NULL) {
        free(k);
        free(tx);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    if ((rc = flush_batch(b, row->m.contact, err)) == MYNA_OK) {
        memset(&t, 0, sizeof(t));
        t.contact = (char *)row->m.contact;
        t.kind = k;
        t.text = tx;
        t.reply_id = (char *)row->m.reply_id;
        t.last_wamid = (char *)row->m.wamid;
        t.profile_name = (char *)row->m.profile_name;
        t.created_ms = myna_wall_ms();
        rc = myna_bot_turn_add(b->bs, &t, NULL, err);
    }
    free(k);
    free(tx);
    return rc;
}

/* What the brain reads of a message answered on its own: a button's or a
 * list row's title, else "[type] text". At most TURN_TEXT_MAX bytes, cut
 * between characters: a flow's response_json has no bound of its own, and
 * a byte cut would send the model, and keep in the history, half a
 * character. NULL when out of memory. */
static char *single_text(const struct myna_inbound *m)
{
    const char *t = m->text;
    char head[48] = "";
    size_t hn, n;
    char *out;

    if (m->type == MYNA_MSG_BUTTON_REPLY || m->type == MYNA_MSG_LIST_REPLY ||
        m->type == MYNA_MSG_TEMPLATE_BUTTON) {
        if (t == NULL)
            t = m->reply_id ? m->reply_id : "";
    } else {
        snprintf(head, sizeof(head), "[%s]%s", myna_msg_type_name(m->type), t ? " " : "");
        if (t == NULL)
            t = "";
    }
    hn = strlen(head);
    n = myna_utf8_cut(t, TURN_TEXT_MAX - hn);
    if ((out = malloc(hn + n + 1)) == NULL)
        return NULL;
    memcpy(out, head, hn);
    memcpy(out + hn, t, n);
    out[hn + n] = '\0';
    return out;
}

/* What one inbox row causes (inside the drain's transaction). *timer is set
 * when the contact's batch timer must be (re)armed. */
static int consume(struct bot *b, const struct myna_inbox_row *row, int *timer,
                   struct myna_err *err)
{
    const struct myna_inbound *m = &row->m;
    int64_t age_s = m->ts > 0 ? row->received_ms / 1000 - m->ts : 0;
    int stale = age_s > b->opts->stale_after_s;
    char *text;
    int rc;

    *timer = 0;
    if (m->contact == NULL || m->contact[0] == '\0' || gate_refuses(b->in, m->contact))
        return MYNA_OK;  /* stored by the ingress, never answered */
    if (m->phone_number_id != NULL && m->phone_number_id[0] != '\0' &&
        strcmp(m->phone_number_id, b->in->phone_number_id) != 0) {
        /* written to another number of the same Meta app, one no instance
         * owns (the ingress kept it here): an answer would come from ours */
        char q[64];
        MYNA_LOG(MYNA_INFO, "not_answered", "instance=%s seq=%" PRId64 " reason=other_number"
                 " phone_number_id=%s", b->in->id, row->seq,
                 myna_log_q(q, sizeof(q), m->phone_number_id));
        return MYNA_OK;
    }
    switch (m->type) {
    case MYNA_MSG_REACTION:
    case MYNA_MSG_SYSTEM:
    case MYNA_MSG_STICKER:
        return MYNA_OK;  /* nothing to answer */
    case MYNA_MSG_TEXT:
        *timer = 1;
        return add_fragment(b, row, m->text ? m->text : "", stale, err);
    case MYNA_MSG_UNSUPPORTED:
        /* a customer who deleted or edited a message said nothing new to
         * answer: a reply would be about "[unsupported] revoke" */
        if (m->text != NULL && (strcmp(m->text, "revoke") == 0 || strcmp(m->text, "edit") == 0)) {
            MYNA_LOG(MYNA_INFO, "not_answered", "instance=%s seq=%" PRId64 " reason=%s",
                     b->in->id, row->seq, m->text);
            return MYNA_OK;
        }
        break;
    default:
        break;
    }
    /* everything else is answered on its own */
    if ((text = single_text(m)) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    if (stale) {  /* after downtime: folded into one reply per contact */
        *timer = 1;
        rc = add_fragment(b, row, text, 1, err);
    } else {
        rc = add_single_turn(b, row, myna_msg_type_name(m->type), text, err);
    }
    free(text);
    return rc;
}

/* ---- statuses -------------------------------------------------------------- */

/* What request_body puts in biz_opaque_callback_data, which Meta echoes in
 * each status: "outbox:ID:CREATED:ATTEMPT" ("outbox:ID" from before the
 * other two were added). */
struct opaque {
    int64_t id;                /* 0: not ours */
    int64_t created_ms;        /* -1 when not given */
    int64_t attempt;           /* -1 when not given */
};

static struct opaque opaque_of(const char *raw)
{
    cJSON *root = raw ? cJSON_Parse(raw) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "biz_opaque_callback_data");
    struct opaque o = { 0, -1, -1 };
    int64_t *slot[3] = { &o.id, &o.created_ms, &o.attempt };
    const char *p;
    char num[24];

    if (cJSON_IsString(v) && strncmp(v->valuestring, "outbox:", 7) == 0) {
        p = v->valuestring + 7;
        for (size_t i = 0; i < 3 && p != NULL; i++) {
            const char *colon = strchr(p, ':');
            snprintf(num, sizeof(num), "%.*s", (int)(colon ? colon - p : 23), p);
            if (myna_parse_i64(num, i == 0 ? 1 : 0, INT64_MAX, slot[i]) != 0) {
                o.id = 0;
                break;
            }
            p = colon ? colon + 1 : NULL;
        }
        if (p != NULL)  /* more than three numbers: not ours */
            o.id = 0;
    }
    cJSON_Delete(root);
    return o;
}

/* r's sends since it was last replayed: what send_tries and the backoff
 * count (attempts goes on across a replay, so each send's callback data
 * has a number of its own). */
static int tries_used(const struct myna_outbox_rec *r)
{
    return r->attempts - r->tries_from;
}

/* Whether r went back to pending after a failed status (retry_failed):
 * nothing of the failed send may adopt it or overwrite it. */
static int queued_after_failure(const struct myna_outbox_rec *r)
{
    return r->state == MYNA_OUTBOX_PENDING && r->status != NULL &&
           strcmp(r->status, "failed") == 0;
}

/* Whether r is a dead letter whose last send may have reached Meta: given
 * up with no message id, and not after a failed status (give_up clears
 * one of an earlier send when the last send was cut short). */
static int dead_unsure(const struct myna_outbox_rec *r)
{
    return r->state == MYNA_OUTBOX_FAILED && r->wamid == NULL &&
           (r->status == NULL || strcmp(r->status, "failed") != 0);
}

/* Whether a status of a wamid we do not know is for record r's send now
 * under way: r was sent and its answer never came or was unsure (a crash,
 * a cut connection), the status names r's contact, r was created when the
 * data says, and this send is r's latest. A store made anew numbers its
 * records from 1 again, and Meta's statuses of the old one's sends still
 * come for days; an earlier send of r may have failed (and r was queued
 * again), or r was replayed since that send: none of those may mark r
 * sent. A dead letter given up while its last send waited for its status
 * is adopted too, by a status that is not 'failed' and names that send in
 * full (Meta took it: the customer has the reply, and a replay would send
 * it twice). */
static int status_is_for(const struct myna_outbox_rec *r, const struct myna_status_row *row,
                         const struct opaque *o)
{
    const char *to = row->s.recipient;

    return r->wamid == NULL && r->attempts > 0 &&
           (r->state == MYNA_OUTBOX_SENDING ||
            (r->state == MYNA_OUTBOX_PENDING && !queued_after_failure(r)) ||
            (dead_unsure(r) && row->s.status != MYNA_STATUS_FAILED && o->created_ms >= 0 &&
             o->attempt >= 0)) &&
           (to == NULL || *to == '\0' || strcmp(to, r->contact) == 0) &&
           (o->created_ms < 0 || o->created_ms == r->created_ms) &&
           (o->attempt < 0 ? r->tries_from == 0
                           : o->attempt == r->attempts && o->attempt > r->tries_from);
}

/* A failed status with an error worth another try (Meta took the message,
 * then could not deliver it: 131000, 131016, 130429 ... come either way,
 * B4), or with a block (a payment problem, a lock): the record goes back
 * to pending with the backoff or the hold a refused send gets; the sender
 * gives it up after opts->tries_max sends. 1 when it did, 0 when the
 * status is final (then recorded as usual), or a store error. */
static int retry_failed(struct bot *b, const struct myna_status_row *row, struct myna_err *err)
{
    /* a status that names no error is stored with code 0, which as a code
     * would be Meta's AuthException: it tells of no block and of nothing
     * worth another try (and a status comes of a send Meta took, token and
     * all) */
    enum myna_send_class cls = row->s.error_code == 0 ? MYNA_SEND_FAILED
                                                      : myna_graph_code_class(row->s.error_code);
    int block = block_of(cls, row->s.error_code);
    struct myna_outbox_rec r;
    int rc;

    if (row->s.status != MYNA_STATUS_FAILED ||
        (cls != MYNA_SEND_RETRY && cls != MYNA_SEND_RETRY_PAIR && block < 0))
        return 0;
    if ((rc = myna_bot_outbox_by_wamid(b->bs, row->s.wamid, &r, err)) != MYNA_OK)
        return rc == MYNA_ENOTFOUND ? 0 : rc;
    if (r.state != MYNA_OUTBOX_SENT) {
        myna_outbox_rec_release(&r);
        return 0;
    }
    free(r.wamid);
    free(r.status);
    free(r.error);
    r.wamid = NULL;             /* the next send gets an id of its own */
    r.status = strdup("failed");  /* and no status of this one adopts it (status_is_for) */
    r.error = strdup(row->s.error_title ? row->s.error_title : "failed status");
    r.error_code = row->s.error_code;
    r.state = MYNA_OUTBOX_PENDING;
    if (block >= 0) {
        hold_sends(b, block, BLOCK_BY_STATUS, row->s.error_code, 0, row->s.error_title, r.id);
        r.next_ms = b->hold_until_ms;
    } else {
        r.next_ms = myna_wall_ms() +
                    myna_graph_backoff_ms(cls, tries_used(&r) - 1, (unsigned)random());
        if (myna_graph_limits_number(row->s.error_code, 0))
            pause_sends(b, row->s.error_code);
    }
    MYNA_LOG(MYNA_WARN, "send_retry", "instance=%s outbox=%" PRId64 " code=%d status=failed"
             " attempt=%d", b->in->id, r.id, r.error_code, r.attempts);
    rc = r.status && r.error ? myna_bot_outbox_update(b->bs, &r, myna_wall_ms(), err)
                             : myna_err_set(err, MYNA_ENOMEM, "out of memory");
    myna_outbox_rec_release(&r);
    if (rc == MYNA_OK)
        kick_sender(b);
    return rc == MYNA_OK ? 1 : rc;
}

/* A status adopted record r for the send its callback data names, one
 * whose answer was lost or unsure: if that send was the probe, Meta took
 * it, as an answer with a wamid would have said. That lifts a block a
 * refusal told (as in on_sent); for one a failed status told, the probe's
 * statuses tell, this one or a later one (probe_status). */
static void probe_reconciled(struct bot *b, const struct myna_outbox_rec *r,
                             const struct myna_status_row *row)
{
    if (!held(b) || r->id != b->probe_id || r->attempts != b->probe_attempt)
        return;
    unblock(b, BLOCK_BY_ANSWER);
    tell_attention(b);
    if (!held(b)) {
        kick_sender(b);
        return;
    }
    free(b->probe_wamid);
    b->probe_wamid = strdup(r->wamid);
    probe_status(b, row);
}

/* A status for a send whose answer we never saw (crash): adopt its wamid,
 * then take the status as for any known send. */
static int reconcile(struct bot *b, const struct myna_status_row *row, struct myna_err *err)
{
    struct myna_outbox_rec r;
    struct opaque o = opaque_of(row->s.raw);
    int rc;

    if (o.id == 0)
        return MYNA_OK;
    if ((rc = myna_bot_outbox_get(b->bs, o.id, &r, err)) != MYNA_OK)  /* a store error: retried */
        return rc == MYNA_ENOTFOUND ? MYNA_OK : rc;
    if (status_is_for(&r, row, &o)) {
        int dead = r.state == MYNA_OUTBOX_FAILED;
        r.wamid = strdup(row->s.wamid);
        r.state = MYNA_OUTBOX_SENT;
        free(r.status);
        r.status = NULL;  /* an earlier send's "failed" must not outrank this one's statuses */
        if (dead) {  /* "gave up after N sends" is no longer true */
            free(r.error);
            r.error = NULL;
            r.error_code = 0;
        }
        MYNA_LOG(MYNA_INFO, "send_reconciled", "instance=%s outbox=%" PRId64 " dead_letter=%d",
                 b->in->id, o.id, dead);
        rc = r.wamid ? myna_bot_outbox_update(b->bs, &r, myna_wall_ms(), err) : MYNA_ENOMEM;
        if (rc == MYNA_OK)
            probe_reconciled(b, &r, row);
        if (rc == MYNA_OK && (rc = retry_failed(b, row, err)) == 0)
            rc = myna_bot_outbox_status(b->bs, row->s.wamid, row->s.status, row->s.error_code,
                                        row->s.error_title, myna_wall_ms(), err);
        rc = rc > 0 ? MYNA_OK : rc;
    } else {
        rc = MYNA_OK;
    }
    myna_outbox_rec_release(&r);
    return rc;
}

enum { CURSOR_INBOX, CURSOR_STATUSES };
static const char *const cursor_names[] = { "inbox", "statuses" };

static int cursor_get(struct bot *b, int which, int64_t *seq, struct myna_err *err)
{
    int rc = MYNA_OK;

    if (!b->cursor_known[which] &&
        (rc = myna_bot_cursor_get(b->bs, cursor_names[which], &b->cursor_seq[which], err)) ==
            MYNA_OK)
        b->cursor_known[which] = 1;
    *seq = b->cursor_seq[which];
    return rc;
}

/* A status of the probe sent while a block its status told was on: the
 * probe delivered (or read) lifts the block; "sent" does not, since a
 * failure may still follow it. */
static void probe_status(struct bot *b, const struct myna_status_row *row)
{
    enum myna_status_kind k = row->s.status;

    if (b->probe_wamid == NULL ||
        (k != MYNA_STATUS_DELIVERED && k != MYNA_STATUS_READ && k != MYNA_STATUS_PLAYED) ||
        strcmp(row->s.wamid, b->probe_wamid) != 0)
        return;
    free(b->probe_wamid);
    b->probe_wamid = NULL;
    if (unblock(b, BLOCK_BY_STATUS)) {
        tell_attention(b);
        /* a block a refusal told since may still be on: its hold stays */
        if (!held(b))
            b->hold_until_ms = 0;
        kick_sender(b);
    }
}

static int drain_statuses(struct bot *b, int *more, struct myna_err *err)
{
    struct myna_status_row rows[INBOX_CHUNK];
    int64_t cursor;
    size_t n = 0;
    int rc;

    *more = 0;
    if ((rc = cursor_get(b, CURSOR_STATUSES, &cursor, err)) != MYNA_OK ||
        (rc = myna_store_status_read(b->inbox, cursor, INBOX_CHUNK, rows, &n, err)) != MYNA_OK ||
        n == 0)
        return rc;
    if ((rc = myna_store_begin(b->st, err)) == MYNA_OK) {
        for (size_t i = 0; rc == MYNA_OK && i < n; i++) {
            probe_status(b, &rows[i]);
            if ((rc = retry_failed(b, &rows[i], err)) != 0) {
                rc = rc > 0 ? MYNA_OK : rc;
                continue;
            }
            rc = myna_bot_outbox_status(b->bs, rows[i].s.wamid, rows[i].s.status,
                                        rows[i].s.error_code, rows[i].s.error_title,
                                        myna_wall_ms(), err);
            if (rc == MYNA_ENOTFOUND)
                rc = reconcile(b, &rows[i], err);
            if (rows[i].s.status == MYNA_STATUS_FAILED && rc == MYNA_OK)
                MYNA_LOG(MYNA_WARN, "send_failed_status", "instance=%s code=%d", b->in->id,
                         rows[i].s.error_code);
        }
        if (rc == MYNA_OK)
            rc = myna_bot_cursor_set(b->bs, "statuses", rows[n - 1].seq, err);
        if (rc == MYNA_OK)
            rc = myna_store_commit(b->st, err);
        else
            myna_store_rollback(b->st);
        if (rc == MYNA_OK)
            b->cursor_seq[CURSOR_STATUSES] = rows[n - 1].seq;
    }
    for (size_t i = 0; i < n; i++)
        myna_store_status_row_release(&rows[i]);
    *more = rc == MYNA_OK && n == INBOX_CHUNK;
    return rc;
}

/* ---- the inbox ------------------------------------------------------------- */

static int drain_inbox(struct bot *b, int *more, struct myna_err *err)
{
    struct myna_inbox_row rows[INBOX_CHUNK];
    int timers[INBOX_CHUNK];
    int64_t cursor;
    size_t n = 0;
    int rc;

    *more = 0;
    if ((rc = cursor_get(b, CURSOR_INBOX, &cursor, err)) != MYNA_OK ||
        (rc = myna_store_inbox_read(b->inbox, cursor, INBOX_CHUNK, rows, &n, err)) != MYNA_OK ||
        n == 0)
        return rc;
    if ((rc = myna_store_begin(b->st, err)) == MYNA_OK) {
        for (size_t i = 0; rc == MYNA_OK && i < n; i++)
            rc = consume(b, &rows[i], &timers[i], err);
        if (rc == MYNA_OK)
            rc = myna_bot_cursor_set(b->bs, "inbox", rows[n - 1].seq, err);
        if (rc == MYNA_OK)
            rc = myna_store_commit(b->st, err);
        else
            myna_store_rollback(b->st);
        if (rc == MYNA_OK)
            b->cursor_seq[CURSOR_INBOX] = rows[n - 1].seq;
    }
    if (rc == MYNA_OK)
        for (size_t i = 0; i < n; i++)
            if (timers[i])
                arm_batch(b, rows[i].m.contact, rows[i].received_ms);
    for (size_t i = 0; i < n; i++)
        myna_store_inbox_row_release(&rows[i]);
    *more = rc == MYNA_OK && n == INBOX_CHUNK;
    return rc;
}

static void drain(struct bot *b)
{
    struct myna_err err = MYNA_ERR_INIT;
    int more = 1, rc = MYNA_OK;

    while (more && rc == MYNA_OK)
        rc = drain_inbox(b, &more, &err);
    if (rc != MYNA_OK)
        log_store_error(b, "inbox_drain_failed", &err);
    more = 1;
    while (more && (rc = drain_statuses(b, &more, &err)) == MYNA_OK)
        ;
    if (rc != MYNA_OK)
        log_store_error(b, "status_drain_failed", &err);
    kick_turns(b);
    kick_sender(b);
}

/* ---- turns: the brain ------------------------------------------------------ */

/* One turn being answered: the pending turns of one contact folded together. */
struct answering {
    struct answering *next, *prev;  /* b->answering */
    struct bot *b;
    struct lane *lane;
    int linked;              /* in b->answering */
    int64_t *turn_ids;
    size_t n_ids;
    int ai;                  /* how the turns are marked when done (bot_store.h) */
    int prompt_tokens, completion_tokens;
    int llm_called, llm_ok;  /* the LLM's outcome, counted with the turn */
    int64_t llm_ms;
    char *text;              /* the customer's words, folded */
    char *last_wamid;        /* marked read, shown typing */
    char *profile_name;
    /* prompt for the LLM */
    struct myna_llm_msg *msgs;
    size_t n_msgs, cap_msgs;
    char **owned;            /* strings the msgs point to */
    size_t n_owned;
    /* the reply, waiting for the flush (b->done) */
    struct answering *done_next;
    char *wa;                /* the reply in WhatsApp formatting, or NULL */
    char **bodies;           /* outbox bodies, one per part (cJSON_free) */
    size_t n_bodies;
    int flush_rc;
};

static void answering_link(struct answering *a)
{
    a->next = a->b->answering;
    if (a->next)
        a->next->prev = a;
    a->b->answering = a;
    a->linked = 1;
    a->b->n_answering++;
}

static void answering_free(struct answering *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else if (a->b && a->b->answering == a)
        a->b->answering = a->next;
    if (a->next)
        a->next->prev = a->prev;
    if (a->linked)
        a->b->n_answering--;
    for (size_t i = 0; i < a->n_owned; i++)
        free(a->owned[i]);
    free(a->owned);
    free(a->msgs);
    for (size_t i = 0; i < a->n_bodies; i++)
        cJSON_free(a->bodies[i]);
    free(a->bodies);
    free(a->wa);
    free(a->turn_ids);
    free(a->text);
    free(a->last_wamid);
    free(a->profile_name);
    free(a);
}

static int prompt_add(struct answering *a, const char *role, const char *text)
{
    char *copy;

    if (a->n_msgs == a->cap_msgs) {
        size_t cap = a->cap_msgs ? a->cap_msgs * 2 : 16;
        struct myna_llm_msg *m = realloc(a->msgs, cap * sizeof(*m));
        char **o = realloc(a->owned, cap * sizeof(*o));
        if (m)
            a->msgs = m;
        if (o)
            a->owned = o;
        if (m == NULL || o == NULL)
            return MYNA_ENOMEM;
        a->cap_msgs = cap;
    }
    if ((copy = strdup(text)) == NULL)
        return MYNA_ENOMEM;
    a->owned[a->n_owned++] = copy;
    a->msgs[a->n_msgs].role = role;
    a->msgs[a->n_msgs].content = copy;
    a->n_msgs++;
    return MYNA_OK;
}

static void on_history(const char *role, const char *text, int64_t ts_ms, void *arg)
{
    struct answering *a = arg;

    (void)ts_ms;
    /* an operator speaks for the business, as the assistant does */
    prompt_add(a, strcmp(role, "user") == 0 ? "user" : "assistant", text);
}

/* The customer's profile for the model: the WhatsApp name (this turn's,
 * else the stored one) and the preferences an operator set. */
static int profile_prompt(struct answering *a)
{
    struct myna_err err = MYNA_ERR_INIT;
    /* the name (200 bytes) and as many preferences as the admin API takes
     * (50 of "; " key (64) ": " value (200)): 13.6 KB */
    struct myna_buf b = MYNA_BUF_INIT(16384);
    char *name = NULL, *prefs = NULL;
    const char *who;
    cJSON *p = NULL, *it;
    int rc = MYNA_OK, first = 1;

    if (myna_bot_profile_get(a->b->bs, a->lane->contact, &name, &prefs, &err) == MYNA_OK)
        p = cJSON_Parse(prefs);
    who = a->profile_name && a->profile_name[0] ? a->profile_name : name;
    if (who && *who)
        myna_buf_printf(&b, "The customer's WhatsApp name is %.*s.",
                        (int)myna_utf8_cut(who, 200), who);  /* whole characters: valid UTF-8 */
    if (!cJSON_IsObject(p)) {
        cJSON_Delete(p);
        p = NULL;
    }
    cJSON_ArrayForEach(it, p) {
        if (!cJSON_IsString(it))
            continue;
        myna_buf_printf(&b, "%s%.64s: %.200s",
                        first ? (b.len ? " Known preferences: " : "Known preferences: ") : "; ",
                        it->string, it->valuestring);
        first = 0;
    }
    if (!first)
        myna_buf_appends(&b, ".");
    if (b.len)
        rc = prompt_add(a, "system", b.data);
    cJSON_Delete(p);
    free(name);
    free(prefs);
    myna_buf_release(&b);
    return rc;
}

/* The LLM call of this turn on /metrics (bot_store.h: MYNA_LLM_BUCKETS_MS). */
static int count_llm(const struct answering *a, struct myna_err *err)
{
    static const int64_t bounds[] = { MYNA_LLM_BUCKETS_MS };
    static const char *const bucket_names[] = { MYNA_LLM_BUCKET_NAMES };
    size_t k = 0;
    const char *names[5];
    int64_t deltas[5];

    while (k < sizeof(bounds) / sizeof(bounds[0]) && a->llm_ms > bounds[k])
        k++;
    names[0] = a->llm_ok ? "llm_requests_ok" : "llm_requests_failed";
    names[1] = bucket_names[k];  /* the last name is the +Inf bucket */
    names[2] = "llm_latency_ms_sum";
    names[3] = "llm_prompt_tokens";
    names[4] = "llm_completion_tokens";
    deltas[0] = deltas[1] = 1;
    deltas[2] = a->llm_ms;
    deltas[3] = a->prompt_tokens;
    deltas[4] = a->completion_tokens;
    return myna_bot_counters_add(a->b->bs, names, deltas, 5, err);
}

/* The flush's part for a finished answer (in its transaction): history,
 * outbox records, the LLM's counters, the turns done. */
static int commit_answer(struct bot *b, struct answering *a, struct myna_err *err)
{
    int64_t now = myna_wall_ms();
    int rc = myna_bot_history_add(b->bs, a->lane->contact, "user", a->text, now, err);

    if (rc == MYNA_OK && a->profile_name && a->profile_name[0])
        rc = myna_bot_profile_set_name(b->bs, a->lane->contact, a->profile_name, now, err);
    if (rc == MYNA_OK && a->wa)
        rc = myna_bot_history_add(b->bs, a->lane->contact, "assistant", a->wa, now, err);
    for (size_t i = 0; rc == MYNA_OK && i < a->n_bodies; i++)
        rc = myna_bot_outbox_add(b->bs, a->lane->contact, a->turn_ids[0], a->bodies[i], now,
                                 NULL, err);
    if (rc == MYNA_OK && a->llm_called)
        rc = count_llm(a, err);
    for (size_t i = 0; rc == MYNA_OK && i < a->n_ids; i++)
        rc = myna_bot_turn_done(b->bs, a->turn_ids[i], i == 0 ? a->ai : 0,
                                i == 0 ? a->prompt_tokens : 0, i == 0 ? a->completion_tokens : 0,
                                err);
    return rc;
}

/* After the flush committed it: the lane is free again. */
static void answer_flushed(struct answering *a)
{
    struct bot *b = a->b;

    if (a->flush_rc == MYNA_OK)
        MYNA_LOG(MYNA_INFO, "turn_answered", "instance=%s turns=%zu parts=%zu", b->in->id,
                 a->n_ids, a->n_bodies);
    a->lane->busy = 0;
    answering_free(a);
}

/* A finished answer whose commit failed (the store locked or full) is
 * committed again later as it is, its lane busy meanwhile. Answering its
 * turn again would call the model again at once, over and over while the
 * store fails, and the same words each time would trip the loop guard.
 * All that wait go again together, after retry_ms: the wait doubles once
 * per try that failed, not once per answer in it (several answers failing
 * together would make it 10 s at the second try). */
static void answer_retry(struct bot *b, struct answering *a)
{
    struct timeval tv;

    a->done_next = b->retrying;
    b->retrying = a;
    if (evtimer_pending(b->retry_timer, NULL))
        return;  /* it goes with the next try, already set */
    b->retry_ms = b->retry_ms == 0 ? ANSWER_RETRY_FIRST_MS
                  : b->retry_ms >= ANSWER_RETRY_MAX_MS / 2 ? ANSWER_RETRY_MAX_MS
                                                           : b->retry_ms * 2;
    MYNA_LOG(MYNA_WARN, "turn_commit_retry", "instance=%s retry_in_ms=%d", b->in->id,
             b->retry_ms);
    tv.tv_sec = b->retry_ms / 1000;
    tv.tv_usec = (suseconds_t)(b->retry_ms % 1000) * 1000;
    evtimer_add(b->retry_timer, &tv);
}

/* The answers waiting to be committed again join the next flush. */
static void retry_now(struct bot *b)
{
    while (b->retrying) {
        struct answering *a = b->retrying;
        b->retrying = a->done_next;
        a->done_next = b->done;
        b->done = a;
    }
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;

    (void)fd;
    (void)what;
    retry_now(b);
    queue_flush(b);
}

/* The parts of a reply as one text, a blank line between two: what the
 * customer got, for the history (a reply cut at MYNA_WA_REPLY_MAX_PARTS
 * lost its end). NULL when out of memory. */
static char *parts_joined(const char *const *parts, size_t n)
{
    size_t len = 0, at = 0;
    char *s;

    for (size_t i = 0; i < n; i++)
        len += strlen(parts[i]) + 2;
    if ((s = malloc(len + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(parts[i]);
        if (i > 0) {
            memcpy(s + at, "\n\n", 2);
            at += 2;
        }
        memcpy(s + at, parts[i], k);
        at += k;
    }
    s[at] = '\0';
    return s;
}

/* Prepares the reply and queues it for the flush, which commits history,
 * outbox records and the turns done together. reply is the model's
 * Markdown (converted to WhatsApp formatting) when from_llm, else text the
 * operator wrote in WhatsApp formatting already (FAQ, fallback). The lane
 * stays busy until the commit: its turns are still pending until then. */
static void finish_reply(struct answering *a, const char *reply, int from_llm)
{
    struct bot *b = a->b;
    struct myna_err err = MYNA_ERR_INIT;
    char **parts = NULL;
    size_t n_parts = 0;
    int rc = MYNA_OK;

    a->wa = reply == NULL ? NULL
            : from_llm    ? myna_wa_from_markdown(reply, strlen(reply), &err)
                          : strdup(reply);
    /* reply NULL: the turn is done with no answer (rate limit silence) */
    if (reply && a->wa == NULL)
        rc = err.code ? err.code : myna_err_set(&err, MYNA_ENOMEM, "out of memory");
    else if (a->wa)
        rc = myna_wa_split(a->wa, WA_TEXT_MAX, MYNA_WA_REPLY_MAX_PARTS, &parts, &n_parts, &err);
    if (from_llm && (rc == MYNA_OK ? n_parts == 0 : rc != MYNA_ENOMEM)) {
        /* the model said nothing that shows ("---", blank lines, NBSP or
         * U+200B alone: myna_wa_is_blank), or what
         * cannot be sent (past the converter's limit): the customer gets
         * the fallback, and the call counts as failed. Asking again would
         * only get the same answer. */
        char q[300];
        if (rc == MYNA_OK)
            MYNA_LOG(MYNA_WARN, "llm_failed", "instance=%s reason=blank_answer", b->in->id);
        else
            MYNA_LOG(MYNA_WARN, "llm_failed", "instance=%s reason=unusable_answer err=%s",
                     b->in->id, myna_log_q(q, sizeof(q), err.msg));
        if (parts)
            myna_wa_split_free(parts, n_parts);
        free(a->wa);
        a->wa = NULL;
        a->llm_ok = 0;
        a->ai = 0;
        finish_reply(a, b->in->fallback_text, 0);
        return;
    }
    if (rc == MYNA_OK && n_parts == 0) {  /* a blank fallback or notice: nothing went */
        free(a->wa);
        a->wa = NULL;
    }
    if (rc == MYNA_OK && n_parts > 1) {  /* the history keeps what went */
        free(a->wa);
        if ((a->wa = parts_joined((const char *const *)parts, n_parts)) == NULL)
            rc = myna_err_set(&err, MYNA_ENOMEM, "out of memory");
    }
    if (rc == MYNA_OK && n_parts && (a->bodies = calloc(n_parts, sizeof(*a->bodies))) == NULL)
        rc = myna_err_set(&err, MYNA_ENOMEM, "out of memory");
    for (size_t i = 0; rc == MYNA_OK && i < n_parts; i++) {
        cJSON *content = cJSON_CreateObject();
        char *body = NULL;
        if (content && cJSON_AddStringToObject(content, "type", "text") &&
            cJSON_AddStringToObject(content, "text", parts[i]))
            body = cJSON_PrintUnformatted(content);
        cJSON_Delete(content);
        if (body == NULL)
            rc = myna_err_set(&err, MYNA_ENOMEM, "out of memory");
        else
            a->bodies[a->n_bodies++] = body;
    }
    if (parts)
        myna_wa_split_free(parts, n_parts);
    if (rc != MYNA_OK) {
        a->flush_rc = rc;
        log_store_error(b, "turn_commit_failed", &err);  /* the turn stays pending */
        answer_flushed(a);
        kick_turns(b);
        return;
    }
    if (n_parts)
        loop_guard_replied(b, a->lane, a->text, a->wa);
    a->done_next = b->done;
    b->done = a;
    queue_flush(b);
}

static void finish_turn(struct answering *a, const char *reply)
{
    finish_reply(a, reply, 0);
}

/* One attention line on the heartbeat pipe (master/supervisor.h): written
 * whole or not at all (shorter than PIPE_BUF), never blocking. 0 if it went. */
static int tell(const struct bot *b, const char *reason, int on)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "attention %s %s\n", reason, on ? "on" : "off");

    return write(b->opts->heartbeat_fd, line, (size_t)n) == n ? 0 : -1;
}

/* Tells the supervisor what changed since it was last told: each block
 * on or off, the LLM's circuit open or closed. What a full pipe kept back
 * goes at the next call (every heartbeat). The supervisor forgets the
 * circuit when a process ends but keeps the blocks, so a new process tells
 * the first verdict on each it gets, whichever it is. */
static void tell_attention(struct bot *b)
{
    int circuit = b->llm && myna_llm_circuit_open(b->llm);

    if (b->opts->heartbeat_fd < 0)
        return;
    for (int k = 0; k < BLOCK_COUNT; k++) {
        int on = b->blocked[k] > 0;
        if (b->blocked[k] >= 0 && on != b->told[k] && tell(b, block_names[k], on) == 0)
            b->told[k] = on;
    }
    if (circuit != b->told_circuit && tell(b, "llm_circuit_open", circuit) == 0)
        b->told_circuit = circuit;
}

static void on_llm(const struct myna_llm_result *r, void *arg)
{
    struct answering *a = arg;

    tell_attention(a->b);  /* this answer may have opened or closed the circuit */
    a->prompt_tokens = r->prompt_tokens;  /* a failed call may have used some too */
    a->completion_tokens = r->completion_tokens;
    a->llm_called = 1;
    a->llm_ms = r->latency_ms;
    /* an empty text is an answer too: finish_reply finds nothing in it to
     * show and says so (reason=blank_answer), as for "---" or blank lines */
    a->llm_ok = r->rc == MYNA_OK && r->text != NULL;
    if (a->llm_ok) {
        a->ai = 1;
        MYNA_LOG(MYNA_INFO, "llm_answered", "instance=%s latency_ms=%" PRId64
                 " prompt_tokens=%d completion_tokens=%d attempts=%d",
                 a->b->in->id, r->latency_ms, r->prompt_tokens, r->completion_tokens, r->attempts);
        finish_reply(a, r->text, 1);
    } else {
        char q[300];
        MYNA_LOG(MYNA_WARN, "llm_failed", "instance=%s status=%ld attempts=%d err=%s",
                 a->b->in->id, r->last_status, r->attempts,
                 myna_log_q(q, sizeof(q), r->error));
        finish_turn(a, a->b->in->fallback_text);
    }
}

/* Meta's last word on a send was a block (a refused token, a locked
 * account ...): whatever else goes would be refused too ("stop sending",
 * the reference says of a lock), so the sender holds and marking read
 * waits. */
static int held(const struct bot *b)
{
    for (int k = 0; k < BLOCK_COUNT; k++)
        if (b->blocked[k] > 0)
            return 1;
    return 0;
}

/* Clears the blocks Meta said `how`; 1 if one was on. */
static int unblock(struct bot *b, int how)
{
    int was = 0;

    for (int k = 0; k < BLOCK_COUNT; k++)
        if (b->blocked[k] == how || b->blocked[k] < 0) {
            was |= b->blocked[k] == how;
            b->blocked[k] = 0;
        }
    return was;
}

/* The block a refusal means (a send's answer or a failed status), or -1. */
static int block_of(enum myna_send_class cls, int code)
{
    if (cls == MYNA_SEND_AUTH)
        return BLOCK_TOKEN;
    if (cls != MYNA_SEND_LOCKED)
        return -1;
    return code == 133010 ? BLOCK_UNREGISTERED : code == 131042 ? BLOCK_PAYMENT : BLOCK_LOCKED;
}

/* Block k is on (Meta refused the send of record outbox_id with code for
 * it, as `how` says; an answer's HTTP status, 0 for a failed status, and
 * why, its error text): nothing is sent for opts->hold_ms, then a probe
 * (the sender, held()). The status tells a refusal of Meta's from one
 * without a Graph error (code=-1: a proxy's 407, a graph_url's redirect),
 * which holds the sends as a refused token does. */
static void hold_sends(struct bot *b, int k, int how, int code, long http_status,
                       const char *why, int64_t outbox_id)
{
    char st[24], q[300];

    b->blocked[k] = how;
    b->hold_until_ms = myna_wall_ms() + b->opts->hold_ms;
    reads_clear(b);  /* no mark-read goes while the hold is on */
    if (how == BLOCK_BY_STATUS)
        snprintf(st, sizeof(st), "failed");
    else
        snprintf(st, sizeof(st), "%ld", http_status);
    MYNA_LOG(MYNA_ERROR, "needs_attention", "instance=%s reason=%s code=%d outbox=%" PRId64
             " status=%s err=%s", b->in->id, block_names[k], code, outbox_id, st,
             myna_log_q(q, sizeof(q), why));
    tell_attention(b);
}

static void on_read_sent(const struct myna_send_result *r, void *arg)
{
    struct bot *b = arg;

    (void)r;  /* best effort: a missed typing indicator is not worth a retry */
    if (b->n_reads-- == MAX_READS_IN_FLIGHT && b->n_queued_reads > 0)
        post_reads(b);  /* the queue waited for this one */
}

/* Takes the oldest mark-read out of the queue; the caller frees its strings. */
static struct read_req reads_pop(struct bot *b)
{
    struct read_req q = b->reads[b->reads_head];

    memset(&b->reads[b->reads_head], 0, sizeof(q));
    b->reads_head = (b->reads_head + 1) % READ_QUEUE;
    b->n_queued_reads--;
    return q;
}

/* Drops every queued mark-read (a hold: none goes while it is on). */
static void reads_clear(struct bot *b)
{
    while (b->n_queued_reads > 0) {
        struct read_req q = reads_pop(b);
        free(q.wamid);
        free(q.contact);
    }
}

/* Marks the customer's message read and, with typing, shows the typing
 * indicator while the AI thinks: queued for a pace slot (post_reads). */
static void mark_read(struct bot *b, const char *contact, const char *wamid, int typing)
{
    struct read_req *q;

    if (wamid == NULL || b->graph == NULL || held(b))
        return;
    if (b->n_queued_reads == READ_QUEUE) {  /* a burst: the oldest goes */
        struct read_req old = reads_pop(b);
        free(old.wamid);
        free(old.contact);
    }
    q = &b->reads[(b->reads_head + b->n_queued_reads) % READ_QUEUE];
    if ((q->wamid = strdup(wamid)) == NULL || (q->contact = strdup(contact)) == NULL) {
        free(q->wamid);
        memset(q, 0, sizeof(*q));
        return;
    }
    q->typing = typing;
    b->n_queued_reads++;
    post_reads(b);  /* a free slot now, else the sender's next pass */
}

/* A reply to contact went: its queued mark-reads show no typing any more
 * (the indicator would stay up to 25 s after the answer). */
static void reads_replied(struct bot *b, const char *contact)
{
    for (size_t i = 0; i < b->n_queued_reads; i++) {
        struct read_req *q = &b->reads[(b->reads_head + i) % READ_QUEUE];
        if (strcmp(q->contact, contact) == 0)
            q->typing = 0;
    }
}

/* 0 within the limit, 1 over it with no notice given yet in the window, 2
 * over it and noticed. On a store error the turn is answered (0). */
static int rate_limited(struct bot *b, const struct answering *a)
{
    int64_t since = myna_wall_ms() - (int64_t)b->in->rate_hours * 3600 * 1000, n = 0, noticed = 0;

    if (b->in->rate_count <= 0 ||
        myna_bot_turn_count(b->bs, a->lane->contact, 1, since, &n, NULL) != MYNA_OK ||
        n < b->in->rate_count)
        return 0;
    if (myna_bot_turn_count(b->bs, a->lane->contact, 2, since, &noticed, NULL) != MYNA_OK)
        return 0;
    return noticed ? 2 : 1;
}

/* The model's prompt: the system prompt, the customer's profile, the
 * recent history and the turn's text. MYNA_ESTORE when the history could
 * not be read (err says why), another code when out of memory. */
static int build_prompt(struct answering *a, struct myna_err *err)
{
    struct bot *b = a->b;
    const struct myna_instance *in = b->in;
    int rc;

    if (in->llm.system_prompt[0] && prompt_add(a, "system", in->llm.system_prompt) != MYNA_OK)
        return MYNA_ENOMEM;
    if (profile_prompt(a) != MYNA_OK)
        return MYNA_ENOMEM;
    if ((rc = myna_bot_history_recent(b->bs, a->lane->contact, (size_t)b->opts->history_budget,
                                      myna_wall_ms() - (int64_t)b->opts->history_idle_s * 1000,
                                      on_history, a, err)) != MYNA_OK)
        return MYNA_ESTORE;
    return prompt_add(a, "user", a->text);
}

/* The turn is not answered now: it stays pending, its lane free, and the
 * next kick (the poll's, within a second) starts it again. */
static void answer_later(struct answering *a)
{
    a->flush_rc = MYNA_EAGAIN;
    answer_flushed(a);
}

/* Without an LLM: the FAQ's answer to each question of the turn, one
 * paragraph each, in the order asked; the fallback when none matches. */
static void faq_answer(struct answering *a)
{
    struct bot *b = a->b;
    const char *answers[MYNA_ANSWERER_MAX_ANSWERS];
    double score = 0;
    size_t n = 0;
    char *reply = NULL;

    if (b->faq) {
        n = myna_answerer_answer_all(b->faq, a->text, answers, MYNA_ANSWERER_MAX_ANSWERS,
                                     &score);
        MYNA_LOG(MYNA_INFO, "faq_matched", "instance=%s answers=%zu score=%.2f", b->in->id, n,
                 score);
    }
    if (n > 1)
        reply = parts_joined(answers, n);
    mark_read(b, a->lane->contact, a->last_wamid, 0);
    /* out of memory for the joined reply: the first answer still goes */
    finish_turn(a, reply ? reply : n ? answers[0] : b->in->fallback_text);
    free(reply);
}

static void answer(struct answering *a)
{
    struct bot *b = a->b;
    const struct myna_instance *in = b->in;
    struct myna_err err = MYNA_ERR_INIT;
    int prompt_rc;

    /* a number blocked since its turn or batch was stored (a restart with
     * the new access lists): stored and done, never answered */
    if (gate_refuses(in, a->lane->contact)) {
        finish_turn(a, NULL);
        return;
    }
    /* first: a store that fails the history read (locked, busy, out of
     * disk for its temp files) leaves the turn to a later kick, before the
     * loop guard takes the retry for a repeated text; the fallback would
     * answer, for good, a question the model could still answer */
    prompt_rc = in->llm.enabled ? build_prompt(a, &err) : MYNA_OK;
    if (prompt_rc == MYNA_ESTORE) {
        log_store_error(b, "history_read_failed", &err);
        answer_later(a);
        return;
    }
    if (loop_guard(b, a->lane, a->text)) {
        finish_turn(a, NULL);  /* stored and done, not answered */
        return;
    }
    if (!in->llm.enabled) {
        faq_answer(a);
        return;
    }
    switch (rate_limited(b, a)) {
    case 1:  /* first turn past the limit: one polite notice */
        a->ai = 2;
        finish_turn(a, in->rate_notice);
        return;
    case 2:  /* notice given already: silence until the window frees */
        finish_turn(a, NULL);
        return;
    default:
        break;
    }
    if (prompt_rc != MYNA_OK)  /* out of memory */
        goto fallback;
    mark_read(b, a->lane->contact, a->last_wamid, 1);
    if (myna_llm_chat(b->llm, a->msgs, a->n_msgs, on_llm, a, &err) == MYNA_OK)
        return;
    MYNA_LOG(MYNA_WARN, "llm_unavailable", "instance=%s circuit_open=%d", in->id,
             myna_llm_circuit_open(b->llm));
fallback:
    finish_turn(a, in->fallback_text);
}

/* Whether turns wait, unanswered: while a block holds every send (a
 * refused token, a locked account), an answer would wait in the outbox,
 * maybe for days, and go out stale once the block lifts; the model would
 * be asked for nothing. The turns stay pending (a contact's texts fold
 * into one answer) and are answered once Meta takes a send again. Only
 * while a reply is left to try the block with: without one, the next
 * answer is that reply. A store error: they wait (the next kick, within a
 * second, looks again). */
static int turns_held(struct bot *b)
{
    struct myna_outbox_rec *v = NULL;
    size_t n = 0;
    int64_t wake = 0;

    if (!held(b))
        return 0;
    if (myna_bot_outbox_due(b->bs, INT64_MAX, 1, &v, &n, &wake, NULL) != MYNA_OK)
        return 1;
    for (size_t i = 0; i < n; i++)
        myna_outbox_rec_release(&v[i]);
    free(v);
    return n > 0;
}

/* Starts a turn on every idle lane that has pending turns. */
static void on_turn_kick(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_turn *v = NULL;
    unsigned char *taken;
    size_t n = 0;
    int reading;

    (void)fd;
    (void)what;
    if (b->stopping || b->n_answering >= MAX_ANSWERING)
        return;  /* the end of an answer kicks again */
    /* the kick and the answers it starts only read (an answer is committed
     * by the flush, later): one read transaction for all of their reads
     * (pending turns, rate limits, histories), not one each */
    reading = myna_bot_read_begin(b->bs, NULL) == MYNA_OK;
    if (turns_held(b)) {  /* the poll kicks again, and sees the block lifted */
        if (reading)
            myna_bot_read_end(b->bs);
        return;
    }
    /* the oldest pending turns only: the ones being answered are among
     * them (still pending), so a backlog costs each kick a bounded read */
    if (myna_bot_turn_pending(b->bs, PENDING_READ, &v, &n, &err) != MYNA_OK) {
        log_store_error(b, "turn_read_failed", &err);
        if (reading)
            myna_bot_read_end(b->bs);
        return;
    }
    /* a turn folded into an answer is not started again from this snapshot,
     * even when that answer finished at once (the built-in answerer) */
    taken = calloc(n ? n : 1, 1);
    for (size_t i = 0; taken && i < n && b->n_answering < MAX_ANSWERING; i++) {
        struct lane *l = taken[i] ? NULL : lane_get(b, v[i].contact);
        struct answering *a;
        size_t len = 0;

        if (l == NULL || l->busy || (a = calloc(1, sizeof(*a))) == NULL)
            continue;
        /* the contact's consecutive pending text turns are folded into this
         * one answer; a button, list or media turn is answered on its own */
        for (size_t j = i; j < n; j++)
            if (strcmp(v[j].contact, v[i].contact) == 0)
                len += strlen(v[j].text) + 1;
        int texts = strcmp(v[i].kind, "text") == 0;
        a->b = b;
        a->lane = l;
        a->turn_ids = calloc(n - i, sizeof(*a->turn_ids));
        a->text = calloc(1, len + 1);
        if (a->turn_ids == NULL || a->text == NULL) {
            answering_free(a);
            continue;
        }
        for (size_t j = i; j < n; j++) {
            if (taken[j] || strcmp(v[j].contact, v[i].contact) != 0)
                continue;
            if (j > i && (!texts || strcmp(v[j].kind, "text") != 0))
                break;  /* the rest of this contact waits for the next answer */
            taken[j] = 1;
            if (a->n_ids)
                memcpy(a->text + strlen(a->text), " ", 2);
            memcpy(a->text + strlen(a->text), v[j].text, strlen(v[j].text) + 1);
            a->turn_ids[a->n_ids++] = v[j].id;
            if (v[j].last_wamid) {
                free(a->last_wamid);
                a->last_wamid = strdup(v[j].last_wamid);
            }
            if (v[j].profile_name && a->profile_name == NULL)
                a->profile_name = strdup(v[j].profile_name);
        }
        l->busy = 1;
        answering_link(a);
        answer(a);
    }
    free(taken);
    if (reading)
        myna_bot_read_end(b->bs);
    for (size_t i = 0; i < n; i++)
        myna_turn_release(&v[i]);
    free(v);
}

/* ---- the sender ------------------------------------------------------------ */

struct sending {
    struct sending *next, *prev;    /* b->sends */
    struct bot *b;
    struct lane *lane;
    struct myna_outbox_rec rec;
    struct sending *result_next;    /* b->results, or a sender pass's picks */
    char *body;                     /* the request, until it is posted */
    int flush_rc;
    int probe;                      /* b->probing is this send, until its answer */
};

static void probe_done(struct sending *s)
{
    if (s->probe)
        s->b->probing = 0;
    s->probe = 0;
}

static void sending_free(struct sending *s)
{
    probe_done(s);
    if (s->prev)
        s->prev->next = s->next;
    else if (s->b->sends == s)
        s->b->sends = s->next;
    if (s->next)
        s->next->prev = s->prev;
    myna_outbox_rec_release(&s->rec);
    free(s->body);
    free(s);
}

static void set_error(struct myna_outbox_rec *r, const struct myna_send_result *res)
{
    free(r->error);
    r->error = strdup(res->error);
    r->error_code = res->error_code;
}

/* The flush's part for a send's answer (in its transaction). A status
 * webhook may have come first and adopted the wamid (and a later status):
 * Meta took the message, so whatever the answer says (accepted, or an
 * error after a broken connection) adds nothing, and writing it would
 * move the record backwards or send it again. */
static int record_result(struct bot *b, struct sending *s, struct myna_err *err)
{
    struct myna_outbox_rec now;
    int adopted, rc;

    memset(&now, 0, sizeof(now));  /* untouched when not found */
    rc = myna_bot_outbox_get(b->bs, s->rec.id, &now, err);
    if (rc != MYNA_OK && rc != MYNA_ENOTFOUND)
        return rc;  /* the record stays 'sending': reconciled as after a crash */
    /* adopted by a status, or queued again by a failed one (retry_failed) */
    adopted = rc == MYNA_OK && (now.wamid != NULL || queued_after_failure(&now));
    myna_outbox_rec_release(&now);
    return adopted ? MYNA_OK : myna_bot_outbox_update(b->bs, &s->rec, myna_wall_ms(), err);
}

/* r was sent opts->tries_max times (since it was last replayed), and none
 * went through: a dead letter (`myna outbox replay`). */
static void give_up(struct bot *b, struct myna_outbox_rec *r, int code, const char *why)
{
    char text[320], q[400];
    int n = snprintf(text, sizeof(text), "gave up after %d sends: ", tries_used(r));

    /* the reason (a status's title has no bound) is cut at a whole character */
    why = why ? why : "";
    snprintf(text + n, sizeof(text) - (size_t)n, "%.*s",
             (int)myna_utf8_cut(why, sizeof(text) - 1 - (size_t)n), why);
    if (r->state == MYNA_OUTBOX_SENDING) {
        /* its last send waited for a status that never came: an earlier
         * send's "failed" is not its, and a status of it, if it comes late,
         * still adopts the record (status_is_for) */
        free(r->status);
        r->status = NULL;
    }
    r->state = MYNA_OUTBOX_FAILED;
    r->error_code = code;
    free(r->error);
    r->error = strdup(text);
    MYNA_LOG(MYNA_WARN, "send_failed", "instance=%s outbox=%" PRId64 " code=%d err=%s",
             b->in->id, r->id, code, myna_log_q(q, sizeof(q), text));
}

/* A limit of the whole number (myna_graph_limits_number): every send waits,
 * longer for each such limit in a row, so that a backlog does not run into
 * it again reply by reply. */
static void pause_sends(struct bot *b, int code)
{
    int64_t wait = myna_graph_backoff_ms(MYNA_SEND_RETRY, b->limits_in_row++, (unsigned)random());
    int64_t until;

    if (code == 131048 && wait < SPAM_PAUSE_MS)
        wait = SPAM_PAUSE_MS;
    until = myna_wall_ms() + wait;
    if (until > b->pause_until_ms)
        b->pause_until_ms = until;
    MYNA_LOG(MYNA_WARN, "send_paused", "instance=%s code=%d pause_ms=%" PRId64, b->in->id, code,
             wait);
}

/* The send's answer is recorded by the flush; the send stays in b->sends
 * (a stop waits for it) until then. */
static void on_sent(const struct myna_send_result *res, void *arg)
{
    struct sending *s = arg;
    struct bot *b = s->b;
    struct myna_outbox_rec *r = &s->rec;
    /* Meta may have taken the message without our knowing its id: no
     * answer after the request left, or a "success" without a message id
     * (a proxy, not Meta) */
    int unsure = res->maybe_sent || (res->cls == MYNA_SEND_OK && res->wamid[0] == '\0');
    /* server trouble (a 5xx, 131000, a throughput code): not the block's
     * end, and maybe its doing */
    int trouble = !unsure && (res->cls == MYNA_SEND_RETRY || res->cls == MYNA_SEND_RETRY_PAIR);
    int probe = s->probe;
    int64_t wait;
    char q[300];

    s->lane->sending = 0;
    probe_done(s);
    if (res->cls == MYNA_SEND_OK) {  /* Meta took a send: no refusal blocks them */
        b->limits_in_row = 0;
        unblock(b, BLOCK_BY_ANSWER);
        tell_attention(b);
        if (held(b) && !unsure) {
            /* a block its status told: this probe's status tells again,
             * and until then, or for a hold, nothing else goes */
            free(b->probe_wamid);
            b->probe_wamid = strdup(res->wamid);
            b->hold_until_ms = myna_wall_ms() + b->opts->hold_ms;
        }
    }
    if (held(b) && (unsure || (probe && trouble)))
        /* a probe whose answer never came (Meta may have taken it), or
         * that Meta's trouble refused: the next one waits out a hold too,
         * as after a probe it took or one a block refused */
        b->hold_until_ms = myna_wall_ms() + b->opts->hold_ms;
    switch (res->cls) {
    case MYNA_SEND_OK:
        if (!unsure) {
            free(r->wamid);
            r->wamid = strdup(res->wamid);
            r->state = MYNA_OUTBOX_SENT;
            free(r->status);
            r->status = strdup("accepted");
            break;
        }
        /* fall through */
    case MYNA_SEND_RETRY:
    case MYNA_SEND_RETRY_PAIR:
        if (unsure) {
            /* as after a crash: its status webhook adopts it (by the
             * callback data), and only without one within reconcile_ms is
             * it sent again */
            wait = b->opts->reconcile_ms;
            r->state = MYNA_OUTBOX_SENDING;
        } else {
            /* attempts counts this send: Meta's schedule starts at n = 0 */
            wait = myna_graph_backoff_ms(res->cls, tries_used(r) - 1, (unsigned)random());
            r->state = MYNA_OUTBOX_PENDING;
            if (myna_graph_limits_number(res->error_code, res->http_status))
                pause_sends(b, res->error_code);
        }
        r->next_ms = myna_wall_ms() + wait;
        set_error(r, res);
        MYNA_LOG(MYNA_WARN, "send_retry", "instance=%s outbox=%" PRId64 " code=%d status=%ld"
                 " attempt=%d maybe_sent=%d retry_in_ms=%" PRId64, b->in->id, r->id,
                 res->error_code, res->http_status, r->attempts, unsure, wait);
        break;
    case MYNA_SEND_AUTH:
    case MYNA_SEND_LOCKED:
        /* nothing can be sent until a person fixes it (the token, the
         * account, a proxy or graph_url that answers for Meta): keep the
         * record and hold every send */
        hold_sends(b, block_of(res->cls, res->error_code), BLOCK_BY_ANSWER, res->error_code,
                   res->http_status, res->error, r->id);
        r->state = MYNA_OUTBOX_PENDING;
        r->next_ms = b->hold_until_ms;
        /* not this message's fault, and Meta did not take it: the probes
         * of a block that lasts a day must not use up its send_tries */
        r->attempts--;
        set_error(r, res);
        break;
    case MYNA_SEND_WINDOW_CLOSED:
    case MYNA_SEND_FAILED:
        r->state = MYNA_OUTBOX_FAILED;
        set_error(r, res);
        MYNA_LOG(MYNA_WARN, "send_failed", "instance=%s outbox=%" PRId64 " code=%d err=%s",
                 b->in->id, r->id, res->error_code, myna_log_q(q, sizeof(q), res->error));
        break;
    }
    s->result_next = b->results;
    b->results = s;
    queue_flush(b);
}

/* Builds the provider request for one outbox record. */
static char *request_body(const struct myna_outbox_rec *r, struct myna_err *err)
{
    cJSON *content = cJSON_Parse(r->body);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(content, "text");
    char opaque[64], *body = NULL;

    snprintf(opaque, sizeof(opaque), "outbox:%" PRId64 ":%" PRId64 ":%d", r->id, r->created_ms,
             r->attempts);
    if (cJSON_IsString(text))
        body = myna_graph_text_body(r->contact, text->valuestring, NULL, opaque, err);
    else
        myna_err_set(err, MYNA_EPARSE, "outbox record %" PRId64 " has no text", r->id);
    cJSON_Delete(content);
    return body;
}

/* Microseconds to the first whole millisecond at or after them. */
static int64_t ms_up(int64_t us)
{
    return (us + 999) / 1000;
}

/* The sender runs at at_ms, or earlier if it is set for earlier already. */
static void arm_sender(struct bot *b, int64_t at_ms)
{
    int64_t wait = at_ms - myna_wall_ms();
    struct timeval tv;

    if (evtimer_pending(b->send_timer, NULL) && b->send_at_ms <= at_ms)
        return;
    if (wait < 0)
        wait = 0;
    tv.tv_sec = (time_t)(wait / 1000);
    tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
    b->send_at_ms = at_ms;
    evtimer_add(b->send_timer, &tv);
}

/* A sender pass: what it marked to send and when the sender runs next. */
struct pass {
    struct sending *picked;  /* marked SENDING in the transaction, newest first */
    int64_t wake;            /* 0: nothing is waiting */
    int64_t next_send_us;    /* b->next_send_us before the pass */
};

/* Picks the sends that may go now (in the flush's transaction) and marks
 * them SENDING: the oldest open record of each contact with nothing in
 * flight, not before its next_ms, within the pacing. The store picks the
 * due records, so the cost does not grow with the backlog. They are posted
 * only after the commit. While held, nothing goes before hold_until_ms,
 * then one send alone (the probe): the rest follow once Meta takes one. */
static int sender_pick(struct bot *b, struct pass *p, struct myna_err *err)
{
    struct myna_outbox_rec *v = NULL;
    size_t n = 0;
    int64_t now = myna_wall_ms(), wake = 0;
    int64_t now_us = now * 1000, gap_us = myna_pace_gap_us(b->in->pacing_mps);
    int rc;

    b->next_send_us = myna_pace_slot_us(b->next_send_us, now_us, gap_us);
    p->next_send_us = b->next_send_us;
    if (held(b) && (b->probing || now < b->hold_until_ms)) {
        p->wake = b->probing ? 0 : b->hold_until_ms;  /* the probe's answer kicks the sender */
        return MYNA_OK;
    }
    if (b->next_send_us > now_us) {  /* pacing: nothing may go before then, no need to look */
        p->wake = ms_up(b->next_send_us);
        return MYNA_OK;
    }
    if (now < b->pause_until_ms) {  /* a limit of the whole number */
        p->wake = b->pause_until_ms;
        return MYNA_OK;
    }
    if ((rc = myna_bot_outbox_due(b->bs, now, SEND_BATCH, &v, &n, &wake, err)) != MYNA_OK)
        return rc;
    for (size_t i = 0; rc == MYNA_OK && i < n; i++) {
        struct myna_outbox_rec *r = &v[i];
        struct lane *l = lane_get(b, r->contact);
        struct sending *s;
        char *body;

        if (l == NULL || l->sending)
            continue;  /* its send's answer kicks the sender again */
        if (b->next_send_us > now_us) {
            int64_t at = ms_up(b->next_send_us);
            wake = wake == 0 || at < wake ? at : wake;
            break;  /* pacing: the rest waits for the next slot */
        }
        /* every class of retry ends here: a reply Meta keeps refusing, or
         * whose sends keep being cut short, would otherwise hold every later
         * reply to the contact (they go in order) */
        /* while a block is on, the probe is not the message's fault: it
         * goes however often it went (a block its status told lets Meta
         * take each send first, so each counted) */
        if (b->opts->tries_max > 0 && tries_used(r) >= b->opts->tries_max && !held(b)) {
            give_up(b, r, r->error_code, r->error);
            rc = myna_bot_outbox_update(b->bs, r, now, err);
            wake = now;  /* the contact's next reply may be due: the next pass sees it */
            continue;
        }
        r->attempts++;  /* this send: request_body names it in the callback data */
        if ((body = request_body(r, err)) == NULL) {
            r->state = MYNA_OUTBOX_FAILED;
            free(r->error);
            r->error = strdup(err->msg);
            rc = myna_bot_outbox_update(b->bs, r, now, err);
            wake = now;
            continue;
        }
        if ((s = calloc(1, sizeof(*s))) == NULL) {
            free(body);
            wake = now + 1000;
            continue;
        }
        r->state = MYNA_OUTBOX_SENDING;
        /* if we crash before the answer, wait this long for Meta's status */
        r->next_ms = now + b->opts->reconcile_ms;
        s->b = b;
        s->lane = l;
        s->rec = *r;
        s->body = body;
        memset(r, 0, sizeof(*r));  /* the record now belongs to the send */
        s->result_next = p->picked;
        p->picked = s;
        if ((rc = myna_bot_outbox_update(b->bs, &s->rec, now, err)) != MYNA_OK)
            break;
        b->next_send_us = myna_pace_next_us(b->next_send_us, now_us, gap_us);
        if (held(b)) {
            s->probe = b->probing = 1;
            b->probe_id = s->rec.id;
            b->probe_attempt = s->rec.attempts;
            break;
        }
    }
    if (n == SEND_BATCH && (wake == 0 || wake > now + ms_up(gap_us)))
        wake = now + ms_up(gap_us);  /* more may be due than one batch holds */
    for (size_t i = 0; i < n; i++)
        myna_outbox_rec_release(&v[i]);
    free(v);
    p->wake = wake;
    return rc;
}

/* A pass whose transaction did not commit: nothing was marked, nothing goes. */
static void pass_undo(struct bot *b, struct pass *p)
{
    while (p->picked) {
        struct sending *s = p->picked;
        p->picked = s->result_next;
        sending_free(s);
    }
    b->next_send_us = p->next_send_us;
}

/* Posts what a committed pass marked, oldest first. */
static void pass_post(struct bot *b, struct pass *p)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct sending *list = NULL;

    while (p->picked) {  /* back to id order */
        struct sending *s = p->picked;
        p->picked = s->result_next;
        s->result_next = list;
        list = s;
    }
    while (list) {
        struct sending *s = list;
        list = s->result_next;
        s->result_next = NULL;
        s->next = b->sends;
        if (s->next)
            s->next->prev = s;
        b->sends = s;
        if (myna_graph_post(b->graph, s->body, SEND_TIMEOUT_MS, on_sent, s, &err) != MYNA_OK) {
            /* nothing left: pending again in a second, as if never tried
             * (left as it was marked, it would wait out reconcile_ms) */
            probe_done(s);
            s->rec.state = MYNA_OUTBOX_PENDING;
            s->rec.attempts--;
            s->rec.next_ms = myna_wall_ms() + 1000;
            s->result_next = b->results;
            b->results = s;
            queue_flush(b);
        } else {
            s->lane->sending = 1;
            free(s->body);
            s->body = NULL;
            reads_replied(b, s->rec.contact);
        }
    }
    if (p->wake)
        arm_sender(b, p->wake);
}

/* Posts queued mark-reads in the pace slots a sender pass left free (the
 * replies due took theirs first), or in one free now when a read is queued:
 * a reply waits behind at most one read. No slot free: the sender's next
 * pass, armed for it. Not while a block holds every send or a limit of the
 * number pauses them. */
static void post_reads(struct bot *b)
{
    int64_t now = myna_wall_ms(), now_us = now * 1000;
    int64_t gap_us = myna_pace_gap_us(b->in->pacing_mps);

    while (b->n_queued_reads > 0 && !held(b) && b->n_reads < MAX_READS_IN_FLIGHT) {
        struct read_req q;
        char *body;

        if (now < b->pause_until_ms) {
            arm_sender(b, b->pause_until_ms);
            return;
        }
        b->next_send_us = myna_pace_slot_us(b->next_send_us, now_us, gap_us);
        if (b->next_send_us > now_us) {
            arm_sender(b, ms_up(b->next_send_us));
            return;
        }
        q = reads_pop(b);
        if ((body = myna_graph_read_body(q.wamid, q.typing, NULL)) != NULL &&
            myna_graph_post(b->graph, body, SEND_TIMEOUT_MS, on_read_sent, b, NULL) == MYNA_OK) {
            b->n_reads++;
            b->next_send_us = myna_pace_next_us(b->next_send_us, now_us, gap_us);
        }
        free(body);
        free(q.wamid);
        free(q.contact);
    }
}

/* ---- the flush: one transaction per turn of the loop ----------------------- */

struct flush {
    struct lane *lanes;
    struct answering *answers;
    struct sending *results;
    int send;                /* run a sender pass too */
    int had_results;
    struct pass pass;
};

static int flush_apply(struct bot *b, struct flush *f, struct myna_err *err)
{
    int rc = MYNA_OK;

    for (struct lane *l = f->lanes; rc == MYNA_OK && l; l = l->due_next)
        rc = l->flush_rc = flush_due_batch(b, l, err);
    for (struct answering *a = f->answers; rc == MYNA_OK && a; a = a->done_next)
        rc = a->flush_rc = commit_answer(b, a, err);
    for (struct sending *s = f->results; rc == MYNA_OK && s; s = s->result_next)
        rc = s->flush_rc = record_result(b, s, err);
    if (rc == MYNA_OK && f->send)
        rc = sender_pick(b, &f->pass, err);
    return rc;
}

/* Ends a transaction begun for one part of a flush: commits it if rc is
 * MYNA_OK, else rolls it back. Returns how it went. */
static int txn_end(struct bot *b, int rc, struct myna_err *err)
{
    if (rc != MYNA_OK) {
        myna_store_rollback(b->st);
        return rc;
    }
    return myna_store_commit(b->st, err);
}

/* Lists are pushed newest first: committed in the order they came. */
#define REVERSE(type, head, link)                                                         \
    do {                                                                                  \
        type *rev_ = NULL, *next_;                                                        \
        for (; (head); (head) = next_) {                                                  \
            next_ = (head)->link;                                                         \
            (head)->link = rev_;                                                          \
            rev_ = (head);                                                                \
        }                                                                                 \
        (head) = rev_;                                                                    \
    } while (0)

/* Commits what this turn of the loop decided (batches due, answers, send
 * answers) and, with send, a sender pass, in one transaction; then posts
 * the sends it marked. If that transaction fails, each part is tried in a
 * transaction of its own, so that one bad part costs only itself; if it
 * could not even begin (another process holds the write lock), no part
 * could, and each waits for a later flush as it is: batches and answers as
 * after their own failure, send answers in b->results. */
static void flush(struct bot *b, int send)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct flush f;
    int rc, kick = 0, began;

    memset(&f, 0, sizeof(f));
    f.lanes = b->due_lanes;
    f.answers = b->done;
    f.results = b->results;
    f.send = send;
    f.had_results = f.results != NULL;
    b->due_lanes = NULL;
    b->done = NULL;
    b->results = NULL;
    if (send)
        b->next_send_us = myna_pace_slot_us(b->next_send_us, myna_wall_ms() * 1000,
                                            myna_pace_gap_us(b->in->pacing_mps));
    /* what pass_undo puts back when no pass ran: a flush that failed before
     * its sender pass (or without one) leaves the pacing as it found it */
    f.pass.next_send_us = b->next_send_us;
    if (f.lanes == NULL && f.answers == NULL && f.results == NULL &&
        (!send || b->next_send_us > myna_wall_ms() * 1000)) {
        if (send)  /* pacing: nothing may go yet, no transaction needed */
            arm_sender(b, ms_up(b->next_send_us));
        return;
    }
    REVERSE(struct lane, f.lanes, due_next);
    REVERSE(struct answering, f.answers, done_next);
    REVERSE(struct sending, f.results, result_next);
    if ((began = (rc = myna_store_begin(b->st, &err)) == MYNA_OK)) {
        if ((rc = flush_apply(b, &f, &err)) == MYNA_OK)
            rc = myna_store_commit(b->st, &err);
        else
            myna_store_rollback(b->st);
    }
    if (!began) {
        log_store_error(b, "flush_failed", &err);
        pass_undo(b, &f.pass);
        for (struct lane *l = f.lanes; l; l = l->due_next)
            l->flush_rc = rc;
        for (struct answering *a = f.answers; a; a = a->done_next) {
            a->flush_rc = rc;
            log_store_error(b, "turn_commit_failed", &err);  /* the turn stays pending */
        }
        /* recorded by a later flush (the sender's next pass), newest first
         * again as b->results keeps them */
        REVERSE(struct sending, f.results, result_next);
        {
            struct sending **tail = &b->results;
            while (*tail)
                tail = &(*tail)->result_next;
            *tail = f.results;
            f.results = NULL;
        }
        if (send)
            f.pass.wake = myna_wall_ms() + 1000;
    } else if (rc != MYNA_OK) {
        char q[600];
        MYNA_LOG(MYNA_WARN, "flush_split", "instance=%s err=%s", b->in->id,
                 myna_log_q(q, sizeof(q), err.msg));
        pass_undo(b, &f.pass);
        for (struct lane *l = f.lanes; l; l = l->due_next) {
            if ((rc = myna_store_begin(b->st, &err)) == MYNA_OK)
                rc = txn_end(b, flush_due_batch(b, l, &err), &err);
            if ((l->flush_rc = rc) != MYNA_OK)
                log_store_error(b, "batch_flush_failed", &err);
        }
        for (struct answering *a = f.answers; a; a = a->done_next) {
            if ((rc = myna_store_begin(b->st, &err)) == MYNA_OK)
                rc = txn_end(b, commit_answer(b, a, &err), &err);
            if ((a->flush_rc = rc) != MYNA_OK)  /* the turn stays pending: retried */
                log_store_error(b, "turn_commit_failed", &err);
        }
        for (struct sending *s = f.results; s; s = s->result_next) {
            if ((rc = myna_store_begin(b->st, &err)) == MYNA_OK)
                rc = txn_end(b, record_result(b, s, &err), &err);
            if ((s->flush_rc = rc) != MYNA_OK)
                log_store_error(b, "outbox_update_failed", &err);
        }
        if (send && ((rc = myna_store_begin(b->st, &err)) != MYNA_OK ||
                     txn_end(b, sender_pick(b, &f.pass, &err), &err) != MYNA_OK)) {
            log_store_error(b, "outbox_read_failed", &err);
            pass_undo(b, &f.pass);
            f.pass.wake = myna_wall_ms() + 1000;
        }
    }
    while (f.lanes) {
        struct lane *l = f.lanes;
        f.lanes = l->due_next;
        l->due_next = NULL;
        l->due_queued = 0;
        if (l->flush_rc != MYNA_OK)  /* its window is over: not another one */
            batch_timer_set(l, BATCH_RETRY_MS);
        else
            kick = 1;
    }
    while (f.answers) {
        struct answering *a = f.answers;
        f.answers = a->done_next;
        if (a->flush_rc != MYNA_OK) {
            answer_retry(b, a);
            continue;
        }
        b->retry_ms = 0;
        answer_flushed(a);
        kick = 1;
    }
    if (f.results) {
        while (f.results) {
            struct sending *s = f.results;
            f.results = s->result_next;
            sending_free(s);
        }
        if (b->stopping && b->sends == NULL)
            event_base_loopexit(b->base, NULL);  /* the stop waited for these */
    }
    if (kick)
        kick_turns(b);
    if (send) {  /* the pass saw this flush's records already */
        pass_post(b, &f.pass);
        post_reads(b);
    } else if (kick || f.had_results)
        kick_sender(b);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;
    /* a sender pass due now, or one that new records and freed contacts
     * call for, goes into the same transaction */
    int send = !b->stopping && ((evtimer_pending(b->send_timer, NULL) &&
                                 b->send_at_ms <= myna_wall_ms()) ||
                                b->done || b->results);

    (void)fd;
    (void)what;
    if (send)
        evtimer_del(b->send_timer);
    flush(b, send);
}

static void on_send_timer(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;

    (void)fd;
    (void)what;
    flush(b, !b->stopping);
}

/* ---- process ---------------------------------------------------------------- */

/* Stops taking new work (turns, sends, the inbox) and exits once the sends
 * in flight have their answers, or after STOP_DRAIN_MS. A send cut short is
 * uncertain, and when the master is gone (or stopping) so is the way back
 * for its status webhooks: such a send would be made again after
 * send_reconcile_ms, and the customer would get the reply twice. What is
 * still thinking (the LLM) is not waited for: its turn stays pending and is
 * answered by the next bot. */
static void stop_after_sends(struct bot *b)
{
    struct timeval tv = { STOP_DRAIN_MS / 1000, (STOP_DRAIN_MS % 1000) * 1000 };

    if (b->stopping)
        return;
    b->stopping = 1;
    if (b->doorbell)
        event_del(b->doorbell);  /* at EOF it stays readable */
    event_del(b->poll);
    event_base_loopexit(b->base, b->sends ? &tv : NULL);
}

static void on_doorbell(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;
    char buf[256];
    ssize_t r;

    (void)what;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        ;
    if (r < 0 && errno != EAGAIN && errno != EINTR)
        r = 0;  /* a broken doorbell: treat like a gone master */
    if (r == 0) {  /* the master is gone: stop (what is durable resumes later) */
        MYNA_LOG(MYNA_WARN, "master_gone", "instance=%s", b->in->id);
        stop_after_sends(b);
        return;
    }
    drain(b);
}

/* Sends Meta accepted but never confirmed: flagged once, for the operator,
 * each with its log line (64 a poll; more wait for the next one). */
static void flag_unconfirmed(struct bot *b)
{
    struct myna_err err = MYNA_ERR_INIT;
    int64_t ids[64], now = myna_wall_ms();
    size_t n = 0;
    int rc = myna_store_begin(b->st, &err);

    if (rc == MYNA_OK &&
        (rc = myna_bot_outbox_flag_unconfirmed(b->bs, now - b->opts->unconfirmed_ms, now, ids, 64,
                                               &n, &err)) == MYNA_OK)
        rc = myna_store_commit(b->st, &err);
    else if (rc == MYNA_OK)
        myna_store_rollback(b->st);
    if (rc != MYNA_OK) {
        log_store_error(b, "outbox_check_failed", &err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        MYNA_LOG(MYNA_WARN, "send_unconfirmed", "instance=%s outbox=%" PRId64 " after_ms=%d",
                 b->in->id, ids[i], b->opts->unconfirmed_ms);
}

/* An empty line to the supervisor: this loop still turns. Never blocks (a
 * full pipe already says so; a gone master shows on the doorbell). */
static void beat(const struct bot *b)
{
    ssize_t r = write(b->opts->heartbeat_fd, "\n", 1);

    (void)r;
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    beat(arg);
    tell_attention(arg);  /* what a full pipe kept back, or a change seen nowhere else */
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;

    (void)fd;
    (void)what;
    drain(b);
    flag_unconfirmed(b);
    kick_sender(b);  /* an operator's message may have been added from outside */
    lanes_sweep(b, myna_mono_ms());
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct bot *b = arg;

    (void)what;
    MYNA_LOG(MYNA_INFO, "stopping", "instance=%s signal=%d", b->in->id, (int)sig);
    stop_after_sends(b);
}

/* Open batches survive restarts: their timers are set again (a deadline
 * already past flushes at once). */
static int restore_batches(struct bot *b, struct myna_err *err)
{
    struct myna_batch *v;
    size_t n;
    int rc = myna_bot_batch_all(b->bs, &v, &n, err);

    if (rc != MYNA_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        arm_batch(b, v[i].contact, v[i].last_ms);
        myna_batch_release(&v[i]);
    }
    free(v);
    if (n)
        MYNA_LOG(MYNA_INFO, "batches_restored", "instance=%s open=%zu", b->in->id, n);
    return MYNA_OK;
}

/* A question of only stopwords ("What is it?") loads, as it always has,
 * but no message can ever reach it: the operator hears of each one. */
static void faq_warn_unmatchable(const struct bot *b)
{
    const struct myna_instance *in = b->in;
    char q[256];

    for (size_t e = 0; e < in->n_faq; e++)
        for (size_t i = 0; i < in->faq[e].n_questions; i++)
            if (!myna_answerer_can_match(b->faq, e, i))
                MYNA_LOG(MYNA_WARN, "faq_unmatchable",
                         "instance=%s field=faq[%zu].q[%zu] question=%s", in->id, e, i,
                         myna_log_q(q, sizeof(q), in->faq[e].questions[i]));
}

static int setup_brain(struct bot *b, struct myna_err *err)
{
    const struct myna_instance *in = b->in;

    if (in->llm.enabled) {
        struct myna_llm_conf lc;
        memset(&lc, 0, sizeof(lc));
        lc.url = in->llm.url;
        lc.model = in->llm.model;
        lc.api_key = in->llm.api_key;
        lc.temperature = in->llm.temperature;
        lc.top_p = in->llm.top_p;
        lc.max_tokens = in->llm.max_tokens;
        lc.timeout_ms = in->llm.timeout_ms;
        if ((b->llm = myna_llm_new(b->base, b->http, &lc, err)) == NULL)
            return err->code;
    }
    if (in->n_faq > 0) {
        struct myna_faq_entry *e = calloc(in->n_faq, sizeof(*e));
        if (e == NULL)
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        for (size_t i = 0; i < in->n_faq; i++) {
            e[i].questions = (const char *const *)in->faq[i].questions;
            e[i].n_questions = in->faq[i].n_questions;
            e[i].answer = in->faq[i].answer;
        }
        b->faq = myna_answerer_new(e, in->n_faq, MYNA_ANSWERER_THRESHOLD, err);
        free(e);
        if (b->faq == NULL)
            return err->code;
        faq_warn_unmatchable(b);
    }
    return MYNA_OK;
}

static void bot_release(struct bot *b)
{
    struct event *evs[] = { b->doorbell, b->poll, b->sig_term, b->sig_int, b->send_timer,
                            b->retry_timer, b->turn_kick, b->flush_ev, b->heartbeat };

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    myna_llm_free(b->llm);
    myna_graph_free(b->graph);
    myna_http_client_free(b->http);  /* after its users: cancels without callbacks */
    /* what was in flight stays durable (pending turn, sending record) */
    while (b->answering)
        answering_free(b->answering);
    while (b->sends)
        sending_free(b->sends);
    myna_answerer_free(b->faq);
    free(b->probe_wamid);
    reads_clear(b);
    lanes_free(b);
    myna_bot_store_free(b->bs);
    myna_store_free(b->st);
    myna_store_free(b->inbox);
    if (b->base)
        event_base_free(b->base);
    if (b->lock_fd >= 0)
        close(b->lock_fd);
}

/* One bot per instance, ever: a bot whose master died may still be finishing
 * when the next master starts a new one, and two bots would both consume the
 * inbox. The kernel drops the lock when its holder dies. Blocks (before the
 * loop starts) for at most 10 s. Returns the held descriptor or -1. */
static int take_instance_lock(const char *data_dir, const char *id, struct myna_err *err)
{
    char path[4200];
    struct timespec pause = { 0, 50 * 1000 * 1000 };
    int fd;

    snprintf(path, sizeof(path), "%s/instances/%s.bot.lock", data_dir, id);
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        myna_err_set(err, MYNA_EIO, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < 200; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK && errno != EINTR)
            break;
        nanosleep(&pause, NULL);
    }
    myna_err_set(err, MYNA_EAGAIN, "another bot of instance '%s' is still running", id);
    close(fd);
    return -1;
}

int myna_bot_run(const struct myna_conf *conf, const struct myna_instance *inst,
                 const struct myna_bot_opts *opts, struct myna_err *err)
{
    /* what a bot writes follows from what the ingress already made durable:
     * bot_store_sync (normal by default) keeps it across any process kill */
    struct myna_store_opts so = { .sync = (enum myna_store_sync)conf->bot_store_sync,
                                  .busy_timeout_ms = 5000 };
    /* its own store holds no messages: no numbers to keep (store.h) */
    struct myna_store_opts bso = { .sync = so.sync, .busy_timeout_ms = STORE_BUSY_MS,
                                   .unnumbered = 1 };
    struct timeval poll = { opts->poll_ms / 1000, (opts->poll_ms % 1000) * 1000 };
    struct timeval beat_tv = { MYNA_BOT_HEARTBEAT_MS / 1000,
                               (MYNA_BOT_HEARTBEAT_MS % 1000) * 1000 };
    struct bot b;
    char path[4200], bot_path[4200];
    int rc = MYNA_OK;

    memset(&b, 0, sizeof(b));
    b.in = inst;
    b.opts = opts;
    for (int k = 0; k < BLOCK_COUNT; k++)
        b.blocked[k] = b.told[k] = -1;
    b.lock_fd = take_instance_lock(conf->data_dir, inst->id, err);
    if (b.lock_fd < 0)
        return err->code;
    srandom((unsigned)(myna_mono_us() ^ getpid()));
    snprintf(path, sizeof(path), "%s/instances/%s.db", conf->data_dir, inst->id);
    snprintf(bot_path, sizeof(bot_path), "%s/instances/%s.bot.db", conf->data_dir, inst->id);
    if ((b.base = event_base_new()) == NULL) {
        rc = myna_err_set(err, MYNA_ENOMEM, "cannot create the event loop");
        goto out;
    }
    /* two files, so that the bot and the master never wait for each other's
     * write lock: the bot only reads the master's, and the inbox cursor
     * lives in the bot's own, beside what the inbox caused */
    if ((b.inbox = myna_store_open_sqlite(path, &so, err)) == NULL ||
        (b.st = myna_store_open_sqlite(bot_path, &bso, err)) == NULL ||
        (b.bs = myna_bot_store_new(b.st, err)) == NULL ||
        (b.http = myna_http_client_new(b.base, err)) == NULL ||
        (b.graph = myna_graph_new(b.http, inst->graph_url, inst->phone_number_id,
                                  inst->access_token, err)) == NULL ||
        setup_brain(&b, err) != MYNA_OK) {
        rc = err->code ? err->code : MYNA_EIO;
        goto out;
    }
    b.poll = event_new(b.base, -1, EV_PERSIST, on_poll, &b);
    b.send_timer = evtimer_new(b.base, on_send_timer, &b);
    b.retry_timer = evtimer_new(b.base, on_retry_timer, &b);
    b.turn_kick = event_new(b.base, -1, 0, on_turn_kick, &b);
    b.flush_ev = event_new(b.base, -1, 0, on_flush, &b);
    b.sig_term = evsignal_new(b.base, SIGTERM, on_stop, &b);
    b.sig_int = evsignal_new(b.base, SIGINT, on_stop, &b);
    /* the doorbell is drained in a loop: it must never block */
    if (opts->doorbell_fd >= 0 &&
        fcntl(opts->doorbell_fd, F_SETFL, fcntl(opts->doorbell_fd, F_GETFL) | O_NONBLOCK) != 0) {
        rc = myna_err_set(err, MYNA_EIO, "doorbell fd %d: %s", opts->doorbell_fd, strerror(errno));
        goto out;
    }
    if (opts->doorbell_fd >= 0)
        b.doorbell = event_new(b.base, opts->doorbell_fd, EV_READ | EV_PERSIST, on_doorbell, &b);
    /* the heartbeat: a full pipe must not stop the loop either */
    if (opts->heartbeat_fd >= 0 &&
        fcntl(opts->heartbeat_fd, F_SETFL, fcntl(opts->heartbeat_fd, F_GETFL) | O_NONBLOCK) != 0) {
        rc = myna_err_set(err, MYNA_EIO, "heartbeat fd %d: %s", opts->heartbeat_fd,
                          strerror(errno));
        goto out;
    }
    if (opts->heartbeat_fd >= 0)
        b.heartbeat = event_new(b.base, -1, EV_PERSIST, on_heartbeat, &b);
    if (!b.poll || !b.send_timer || !b.retry_timer || !b.turn_kick || !b.flush_ev ||
        !b.sig_term || !b.sig_int ||
        (opts->doorbell_fd >= 0 && !b.doorbell) || event_add(b.poll, &poll) != 0 ||
        event_add(b.sig_term, NULL) != 0 || event_add(b.sig_int, NULL) != 0 ||
        (b.doorbell && event_add(b.doorbell, NULL) != 0) ||
        (opts->heartbeat_fd >= 0 && (!b.heartbeat || event_add(b.heartbeat, &beat_tv) != 0))) {
        rc = myna_err_set(err, MYNA_ENOMEM, "cannot set up the bot's events");
        goto out;
    }
    if (opts->doorbell_fd >= 0) {
        /* a supervised bot is stopped by its master: Ctrl-C reaches the
         * whole process group, and the master stops its bots itself */
        event_del(b.sig_int);
        signal(SIGINT, SIG_IGN);
    }
    signal(SIGPIPE, SIG_IGN);
    if ((rc = restore_batches(&b, err)) != MYNA_OK)
        goto out;
    MYNA_LOG(MYNA_INFO, "bot_ready", "instance=%s brain=%s faq=%zu window_ms=%d", inst->id,
             inst->llm.enabled ? "llm" : "answerer", inst->n_faq, inst->batch_window_ms);
    if (b.heartbeat)  /* the first at once: the supervisor sees it running */
        beat(&b);
    drain(&b);
    event_base_dispatch(b.base);
    /* what the last turn of the loop decided, and the answers whose commit
     * failed: one more try, rather than asking the model again at the
     * next start */
    retry_now(&b);
    flush(&b, 0);
    rc = b.exit_rc;
out:
    bot_release(&b);
    return rc;
}
