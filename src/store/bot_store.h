/* bot_store.h - the bot process's durable state, beside the inbox in the
 * instance's store: how far it has consumed the inbox and statuses, open
 * batches, turns to answer, conversation history, and the outbox.
 *
 * Writes go inside the store's transactions (myna_store_begin/commit on the
 * store the bot store was opened on), so that consuming an inbox row and
 * recording what it caused commit together: after a crash the bot resumes
 * exactly where its last commit left off. Strings in the structs read back
 * are malloc'd and freed by the matching _release. SQLite only for now: the
 * Redis backend will make this a table of operations like store.h. */
#ifndef MYNA_STORE_BOT_STORE_H
#define MYNA_STORE_BOT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

struct myna_bot_store;

enum myna_outbox_state {
    MYNA_OUTBOX_PENDING = 0,  /* not sent yet (or to retry at next_ms) */
    MYNA_OUTBOX_SENDING = 1,  /* a send was started: may have reached Meta */
    MYNA_OUTBOX_SENT = 2,     /* accepted by Meta (wamid known); status follows */
    MYNA_OUTBOX_FAILED = 3,   /* failed for good: a dead letter, error kept */
};

struct myna_batch {
    char *contact;
    char *text;           /* fragments joined by a space, in arrival order */
    int n;                /* fragments */
    int64_t first_seq, last_seq;
    int64_t last_ms;      /* when the last fragment arrived (ingress clock) */
    char *profile_name;
    char *last_wamid;     /* the last fragment's message: marked read */
};

struct myna_turn {
    int64_t id;
    char *contact;
    char *kind;           /* "text", "button_reply", "media", ... */
    char *text;
    char *reply_id;       /* button/list id, or NULL */
    char *last_wamid;     /* the customer's last message: marked read, quoted */
    char *profile_name;
    int64_t created_ms;
};

struct myna_outbox_rec {
    int64_t id;
    char *contact;
    int64_t turn_id;
    char *body;           /* the Graph API request body */
    int state;            /* enum myna_outbox_state */
    int attempts;         /* sends made, replays or not: each send's number */
    int tries_from;       /* attempts when last replayed (0: never): send_tries
                           * counts the sends after it; written by replay only */
    int64_t next_ms;      /* not before: retry backoff; for SENDING, when to stop
                           * waiting for the status of a send cut short */
    char *wamid;          /* Meta's id once accepted */
    char *status;         /* last status: sent, delivered, read, failed */
    int error_code;
    char *error;
    int64_t created_ms, updated_ms;
};

/* Borrows st (a SQLite store) for its whole life. */
struct myna_bot_store *myna_bot_store_new(struct myna_store *st, struct myna_err *err);
void myna_bot_store_free(struct myna_bot_store *bs);

/* A read transaction around several reads: one snapshot and one lock
 * instead of one per statement. Until myna_bot_read_end, no writes and no
 * myna_store_begin on the store. read_end cannot fail (it ends the
 * transaction either way). */
int myna_bot_read_begin(struct myna_bot_store *bs, struct myna_err *err);
void myna_bot_read_end(struct myna_bot_store *bs);

/* Named cursors ("inbox", "statuses"): 0 when never set. */
int myna_bot_cursor_get(struct myna_bot_store *bs, const char *name, int64_t *seq,
                        struct myna_err *err);
int myna_bot_cursor_set(struct myna_bot_store *bs, const char *name, int64_t seq,
                        struct myna_err *err);

/* MYNA_OK with *b filled, or MYNA_ENOTFOUND. */
int myna_bot_batch_get(struct myna_bot_store *bs, const char *contact, struct myna_batch *b,
                       struct myna_err *err);
int myna_bot_batch_put(struct myna_bot_store *bs, const struct myna_batch *b,
                       struct myna_err *err);
int myna_bot_batch_del(struct myna_bot_store *bs, const char *contact, struct myna_err *err);
/* Every open batch; *v malloc'd array of *n (release each, then free). */
int myna_bot_batch_all(struct myna_bot_store *bs, struct myna_batch **v, size_t *n,
                       struct myna_err *err);
void myna_batch_release(struct myna_batch *b);

int myna_bot_turn_add(struct myna_bot_store *bs, const struct myna_turn *t, int64_t *id,
                      struct myna_err *err);
/* The first max pending turns in order (all contacts); *v as above. */
int myna_bot_turn_pending(struct myna_bot_store *bs, size_t max, struct myna_turn **v,
                          size_t *n, struct myna_err *err);
/* ai: 0 not answered by the LLM, 1 answered by it (counts against the rate
 * limit), 2 answered with the rate-limit notice. The token counts are the
 * LLM call's usage (0 when none). */
int myna_bot_turn_done(struct myna_bot_store *bs, int64_t id, int ai, int prompt_tokens,
                       int completion_tokens, struct myna_err *err);
/* Turns of contact with that ai mark created after since_ms. */
int myna_bot_turn_count(struct myna_bot_store *bs, const char *contact, int ai, int64_t since_ms,
                        int64_t *n, struct myna_err *err);
void myna_turn_release(struct myna_turn *t);

int myna_bot_history_add(struct myna_bot_store *bs, const char *contact, const char *role,
                         const char *text, int64_t ts_ms, struct myna_err *err);
/* The most recent turns of contact newer than since_ms whose texts fit in
 * budget bytes, oldest first: cb(role, text, ts_ms, arg) for each. Turns
 * are read newest first, up to the first one not newer than since_ms. The
 * newest one that does not fit whole gives its end ("\u2026" and its last
 * bytes, cut at a character) when at least 64 bytes of the budget are left,
 * so that one long answer does not leave the model with no history. */
int myna_bot_history_recent(struct myna_bot_store *bs, const char *contact, size_t budget,
                            int64_t since_ms,
                            void (*cb)(const char *role, const char *text, int64_t ts_ms,
                                       void *arg),
                            void *arg, struct myna_err *err);

/* What the bot knows of a contact: its WhatsApp name (NULL if none) and
 * preferences, a JSON object of strings ("{}" when none) set by an
 * operator; malloc'd. MYNA_ENOTFOUND when the contact has no profile. */
int myna_bot_profile_get(struct myna_bot_store *bs, const char *contact, char **name,
                         char **prefs, struct myna_err *err);
int myna_bot_profile_set_name(struct myna_bot_store *bs, const char *contact, const char *name,
                              int64_t now_ms, struct myna_err *err);
/* prefs_json: checked by the caller (an object of short strings). */
int myna_bot_profile_set_prefs(struct myna_bot_store *bs, const char *contact,
                               const char *prefs_json, int64_t now_ms, struct myna_err *err);

int myna_bot_outbox_add(struct myna_bot_store *bs, const char *contact, int64_t turn_id,
                        const char *body, int64_t now_ms, int64_t *id, struct myna_err *err);
/* Records not done yet (PENDING or SENDING), in id order; *v as above. */
int myna_bot_outbox_open(struct myna_bot_store *bs, struct myna_outbox_rec **v, size_t *n,
                         struct myna_err *err);
/* What the sender may start now: open records with next_ms <= now_ms that
 * are the oldest open record of their contact, at most max, in id order.
 * *wake_ms: the earliest later next_ms of an open record, 0 if none. */
int myna_bot_outbox_due(struct myna_bot_store *bs, int64_t now_ms, size_t max,
                        struct myna_outbox_rec **v, size_t *n, int64_t *wake_ms,
                        struct myna_err *err);
/* Writes state, attempts, next_ms, wamid, status, error_code, error (not
 * tries_from). */
int myna_bot_outbox_update(struct myna_bot_store *bs, const struct myna_outbox_rec *r,
                           int64_t now_ms, struct myna_err *err);
/* Applies a status of Meta to the record with that wamid, never going
 * backwards (sent < delivered < read < played; failed is final). MYNA_OK,
 * or MYNA_ENOTFOUND when no record has that wamid. */
int myna_bot_outbox_status(struct myna_bot_store *bs, const char *wamid,
                           enum myna_status_kind kind, int error_code, const char *error,
                           int64_t now_ms, struct myna_err *err);
int myna_bot_outbox_get(struct myna_bot_store *bs, int64_t id, struct myna_outbox_rec *r,
                        struct myna_err *err);
/* The record Meta knows as wamid; MYNA_ENOTFOUND when none is. */
int myna_bot_outbox_by_wamid(struct myna_bot_store *bs, const char *wamid,
                             struct myna_outbox_rec *r, struct myna_err *err);
/* Marks records accepted by Meta but without any status since before_ms as
 * 'unconfirmed' (once): at most max of them, the oldest, whose ids go to
 * ids[], *n of them; the others are left for the next call. */
int myna_bot_outbox_flag_unconfirmed(struct myna_bot_store *bs, int64_t before_ms,
                                     int64_t now_ms, int64_t *ids, size_t max, size_t *n,
                                     struct myna_err *err);
/* Gauges for operators (the master's /metrics). */
struct myna_bot_counts {
    int64_t outbox_open;     /* pending or sending */
    int64_t dead_letters;    /* failed for good */
    int64_t unconfirmed;     /* accepted, no status in time */
    int64_t turns_pending;
    int64_t open_batches;
};
int myna_bot_counts(struct myna_bot_store *bs, struct myna_bot_counts *c, struct myna_err *err);
/* Replies Meta accepted, and turns, since the store began (full counts:
 * for the stats endpoint, not for a hot path). */
int myna_bot_totals(struct myna_bot_store *bs, int64_t *sent, int64_t *turns, struct myna_err *err);
/* Named counters (monotonic totals the bot keeps for /metrics): adds
 * deltas[i] to names[i] (inside the caller's transaction, like every write). */
int myna_bot_counters_add(struct myna_bot_store *bs, const char *const *names,
                          const int64_t *deltas, size_t n, struct myna_err *err);
/* The LLM latency histogram's bucket bounds in ms and the counter of each
 * bucket (not cumulative; the last is the +Inf bucket). Other counters:
 * llm_requests_ok, llm_requests_failed, llm_latency_ms_sum,
 * llm_prompt_tokens, llm_completion_tokens. */
#define MYNA_LLM_BUCKETS_MS 100, 250, 500, 1000, 2500, 5000, 10000, 30000
#define MYNA_LLM_BUCKET_NAMES                                                              \
    "llm_latency_le_100", "llm_latency_le_250", "llm_latency_le_500", "llm_latency_le_1000", \
        "llm_latency_le_2500", "llm_latency_le_5000", "llm_latency_le_10000",                \
        "llm_latency_le_30000", "llm_latency_le_inf"
/* fn(name, value) for every counter, in name order. */
int myna_bot_counters(struct myna_bot_store *bs, void (*fn)(const char *name, int64_t v, void *arg),
                      void *arg, struct myna_err *err);
/* Dead letters (FAILED), in id order; *v as above. */
int myna_bot_outbox_failed(struct myna_bot_store *bs, struct myna_outbox_rec **v, size_t *n,
                           struct myna_err *err);
/* Puts dead letter id (0: every one) back to PENDING for a fresh try; *n is
 * how many. attempts goes on counting (the next send is attempts + 1) and
 * tries_from becomes attempts. The bot sends them on its next poll. */
int myna_bot_outbox_replay(struct myna_bot_store *bs, int64_t id, int64_t now_ms, size_t *n,
                           struct myna_err *err);
void myna_outbox_rec_release(struct myna_outbox_rec *r);

#endif
