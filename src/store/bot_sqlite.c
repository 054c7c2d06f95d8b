/* bot_sqlite.c - bot_store.h on the instance's SQLite connection. Statements
 * are prepared on first use and kept; every failure names the operation. */
#include "store/bot_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/banned.h"

enum {
    Q_CURSOR_GET, Q_CURSOR_SET,
    Q_BATCH_GET, Q_BATCH_PUT, Q_BATCH_DEL, Q_BATCH_ALL,
    Q_TURN_ADD, Q_TURN_PENDING, Q_TURN_DONE, Q_TURN_AI_COUNT,
    Q_HIST_ADD, Q_HIST_RECENT,
    Q_OUT_ADD, Q_OUT_OPEN, Q_OUT_UPDATE, Q_OUT_GET, Q_OUT_BY_WAMID, Q_OUT_STATUS,
    Q_OUT_FAILED, Q_OUT_REPLAY, Q_OUT_DUE, Q_OUT_WAKE, Q_OUT_UNCONFIRMED, Q_COUNTS,
    Q_COUNTER_ADD, Q_COUNTER_ALL, Q_TOTALS, Q_PROFILE_GET, Q_PROFILE_NAME, Q_PROFILE_PREFS, Q_READ_BEGIN, Q_READ_END,
    Q__COUNT
};

#define BATCH_COLS "contact, text, n, first_seq, last_seq, last_ms, profile_name, last_wamid"
#define TURN_COLS "id, contact, kind, text, reply_id, last_wamid, profile_name, created_ms"
#define OUT_COLS "id, contact, turn_id, body, state, attempts, next_ms, wamid, status, " \
                 "error_code, error, created_ms, updated_ms, tries_from"
/* no earlier open record of the same contact */
#define OUT_FIRST_OPEN "NOT EXISTS (SELECT 1 FROM outbox p WHERE p.contact = o.contact " \
                       "AND p.id < o.id AND p.state IN (0, 1))"

static const char *const q_sql[Q__COUNT] = {
    [Q_CURSOR_GET] = "SELECT seq FROM cursors WHERE name = ?1",
    [Q_CURSOR_SET] = "INSERT INTO cursors(name, seq) VALUES(?1, ?2) "
                     "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
    [Q_BATCH_GET] = "SELECT " BATCH_COLS " FROM batches WHERE contact = ?1",
    [Q_BATCH_PUT] = "INSERT OR REPLACE INTO batches(" BATCH_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [Q_BATCH_DEL] = "DELETE FROM batches WHERE contact = ?1",
    [Q_BATCH_ALL] = "SELECT " BATCH_COLS " FROM batches ORDER BY last_ms",
    [Q_TURN_ADD] = "INSERT INTO turns(contact, kind, text, reply_id, last_wamid, profile_name, "
                   "created_ms) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [Q_TURN_PENDING] = "SELECT " TURN_COLS " FROM turns WHERE state = 0 ORDER BY id LIMIT ?1",
    [Q_TURN_DONE] = "UPDATE turns SET state = 1, ai = ?2, prompt_tokens = ?3, "
                    "completion_tokens = ?4 WHERE id = ?1",
    [Q_TURN_AI_COUNT] = "SELECT count(*) FROM turns WHERE contact = ?1 AND ai = ?2 AND created_ms > ?3",
    [Q_HIST_ADD] = "INSERT INTO history(contact, role, text, ts_ms) VALUES(?1,?2,?3,?4)",
    /* newest first through history_contact; history_recent stops at the
     * first row not newer than its window (rows are added in time order).
     * With ts_ms > since here, a window of fewer rows than the LIMIT read
     * on through every older row of the contact, and history is kept */
    [Q_HIST_RECENT] = "SELECT role, text, ts_ms FROM history WHERE contact = ?1 "
                      "ORDER BY id DESC LIMIT 200",
    [Q_OUT_ADD] = "INSERT INTO outbox(contact, turn_id, body, created_ms, updated_ms) "
                  "VALUES(?1,?2,?3,?4,?4)",
    [Q_OUT_OPEN] = "SELECT " OUT_COLS " FROM outbox WHERE state IN (0, 1) ORDER BY id",
    [Q_OUT_UPDATE] = "UPDATE outbox SET state=?2, attempts=?3, next_ms=?4, wamid=?5, status=?6, "
                     "error_code=?7, error=?8, updated_ms=?9 WHERE id = ?1",
    [Q_OUT_GET] = "SELECT " OUT_COLS " FROM outbox WHERE id = ?1",
    [Q_OUT_BY_WAMID] = "SELECT " OUT_COLS " FROM outbox WHERE wamid = ?1",
    /* due now, and the oldest open record of its contact (strict order). One
     * arm per open state, each in id order from outbox_open, merged: with
     * state IN (0, 1) SQLite sorted the rows in a temporary b-tree on every
     * sender pass (EXPLAIN QUERY PLAN: MERGE (UNION ALL), no TEMP B-TREE) */
    [Q_OUT_DUE] = "SELECT " OUT_COLS " FROM outbox o WHERE state = 0 AND next_ms <= ?1 "
                  "AND " OUT_FIRST_OPEN " UNION ALL "
                  "SELECT " OUT_COLS " FROM outbox o WHERE state = 1 AND next_ms <= ?1 "
                  "AND " OUT_FIRST_OPEN " ORDER BY id LIMIT ?2",
    [Q_OUT_WAKE] = "SELECT min(next_ms) FROM outbox WHERE state IN (0, 1) AND next_ms > ?1",
    /* accepted by Meta, no status since: flagged once (status 'unconfirmed';
     * a real status later still moves it on). Through outbox_accepted: only
     * the sends still waiting for a status are read. At most ?3 a look, all
     * of them named: the rest wait for the next look */
    [Q_OUT_UNCONFIRMED] = "UPDATE outbox SET status = 'unconfirmed', updated_ms = ?2 "
                          "WHERE id IN (SELECT id FROM outbox WHERE state = 2 AND "
                          "status = 'accepted' AND updated_ms < ?1 ORDER BY id LIMIT ?3) "
                          "RETURNING id",
    /* every count through an index (outbox_unconfirmed for the flagged
     * sends): the master reads them for each scrape, on its loop */
    [Q_COUNTS] = "SELECT (SELECT count(*) FROM outbox WHERE state IN (0, 1)),"
                 " (SELECT count(*) FROM outbox WHERE state = 3),"
                 " (SELECT count(*) FROM outbox WHERE status = 'unconfirmed'),"
                 " (SELECT count(*) FROM turns WHERE state = 0),"
                 " (SELECT count(*) FROM batches)",
    [Q_OUT_FAILED] = "SELECT " OUT_COLS " FROM outbox WHERE state = 3 ORDER BY id",
    [Q_COUNTER_ADD] = "INSERT INTO counters(name, value) VALUES(?1, ?2) "
                      "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    [Q_COUNTER_ALL] = "SELECT name, value FROM counters ORDER BY name",
    [Q_TOTALS] = "SELECT (SELECT count(*) FROM outbox WHERE state = 2), (SELECT count(*) FROM turns)",
    [Q_PROFILE_GET] = "SELECT name, prefs FROM profiles WHERE contact = ?1",
    [Q_PROFILE_NAME] = "INSERT INTO profiles(contact, name, updated_ms) VALUES(?1, ?2, ?3) "
                       "ON CONFLICT(contact) DO UPDATE SET name = excluded.name, "
                       "updated_ms = excluded.updated_ms WHERE name IS NOT excluded.name",
    [Q_PROFILE_PREFS] = "INSERT INTO profiles(contact, prefs, updated_ms) VALUES(?1, ?2, ?3) "
                        "ON CONFLICT(contact) DO UPDATE SET prefs = excluded.prefs, "
                        "updated_ms = excluded.updated_ms",
    /* deferred: a read transaction, never waits for a writer (WAL) */
    [Q_READ_BEGIN] = "BEGIN",
    [Q_READ_END] = "COMMIT",
    /* a replayed record keeps its last error until the next attempt, and
     * its attempts: the next send has a number of its own */
    [Q_OUT_REPLAY] = "UPDATE outbox SET state = 0, tries_from = attempts, next_ms = 0, "
                     "wamid = NULL, status = NULL, updated_ms = ?2 "
                     "WHERE state = 3 AND (?1 = 0 OR id = ?1)",
    [Q_OUT_STATUS] = "UPDATE outbox SET status=?2, state=?3, error_code=?4, error=?5, "
                     "updated_ms=?6 WHERE id = ?1",
};

struct myna_bot_store {
    sqlite3 *db;
    sqlite3_stmt *q[Q__COUNT];
};

struct myna_bot_store *myna_bot_store_new(struct myna_store *st, struct myna_err *err)
{
    struct myna_bot_store *bs;
    sqlite3 *db = myna_store__sqlite_db(st);

    if (db == NULL) {
        myna_err_set(err, MYNA_EINVAL, "the bot store needs a SQLite store");
        return NULL;
    }
    if ((bs = calloc(1, sizeof(*bs))) == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    bs->db = db;
    return bs;
}

void myna_bot_store_free(struct myna_bot_store *bs)
{
    if (bs == NULL)
        return;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(bs->q[i]);
    free(bs);
}

static int fail(struct myna_bot_store *bs, const char *what, struct myna_err *err)
{
    return myna_err_set(err, MYNA_ESTORE, "bot store: %s: %s", what, sqlite3_errmsg(bs->db));
}

/* The statement, reset and unbound, ready for binding; NULL on failure. */
static sqlite3_stmt *q(struct myna_bot_store *bs, int i, struct myna_err *err)
{
    if (bs->q[i] == NULL &&
        sqlite3_prepare_v3(bs->db, q_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &bs->q[i], NULL) !=
            SQLITE_OK) {
        fail(bs, "prepare", err);
        return NULL;
    }
    sqlite3_reset(bs->q[i]);
    sqlite3_clear_bindings(bs->q[i]);
    return bs->q[i];
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return t ? strdup((const char *)t) : NULL;
}

/* Runs a statement that returns no rows. */
static int exec(struct myna_bot_store *bs, sqlite3_stmt *s, const char *what,
                struct myna_err *err)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MYNA_OK : fail(bs, what, err);
}

/* ---- read transactions ---- */

int myna_bot_read_begin(struct myna_bot_store *bs, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_READ_BEGIN, err);

    if (s == NULL)
        return MYNA_ESTORE;
    return exec(bs, s, "begin reading", err);
}

void myna_bot_read_end(struct myna_bot_store *bs)
{
    sqlite3_stmt *s = q(bs, Q_READ_END, NULL);

    if (s == NULL || exec(bs, s, "end reading", NULL) != MYNA_OK)
        sqlite3_exec(bs->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- cursors ---- */

int myna_bot_cursor_get(struct myna_bot_store *bs, const char *name, int64_t *seq,
                        struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_CURSOR_GET, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, name);
    rc = sqlite3_step(s);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MYNA_OK : fail(bs, "read cursor", err);
}

int myna_bot_cursor_set(struct myna_bot_store *bs, const char *name, int64_t seq,
                        struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_CURSOR_SET, err);

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, name);
    sqlite3_bind_int64(s, 2, seq);
    return exec(bs, s, "write cursor", err);
}

/* ---- batches ---- */

static int batch_fill(sqlite3_stmt *s, struct myna_batch *b)
{
    memset(b, 0, sizeof(*b));
    b->contact = col_dup(s, 0);
    b->text = col_dup(s, 1);
    b->n = sqlite3_column_int(s, 2);
    b->first_seq = sqlite3_column_int64(s, 3);
    b->last_seq = sqlite3_column_int64(s, 4);
    b->last_ms = sqlite3_column_int64(s, 5);
    b->profile_name = col_dup(s, 6);
    b->last_wamid = col_dup(s, 7);
    return b->contact && b->text ? MYNA_OK : MYNA_ENOMEM;
}

void myna_batch_release(struct myna_batch *b)
{
    free(b->contact);
    free(b->text);
    free(b->profile_name);
    free(b->last_wamid);
    memset(b, 0, sizeof(*b));
}

int myna_bot_batch_get(struct myna_bot_store *bs, const char *contact, struct myna_batch *b,
                       struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_BATCH_GET, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        rc = batch_fill(s, b);
        sqlite3_reset(s);
        if (rc != MYNA_OK)
            myna_batch_release(b);
        return rc == MYNA_OK ? MYNA_OK : myna_err_set(err, rc, "out of memory");
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MYNA_ENOTFOUND : fail(bs, "read batch", err);
}

int myna_bot_batch_put(struct myna_bot_store *bs, const struct myna_batch *b,
                       struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_BATCH_PUT, err);

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, b->contact);
    bind_text(s, 2, b->text);
    sqlite3_bind_int(s, 3, b->n);
    sqlite3_bind_int64(s, 4, b->first_seq);
    sqlite3_bind_int64(s, 5, b->last_seq);
    sqlite3_bind_int64(s, 6, b->last_ms);
    bind_text(s, 7, b->profile_name);
    bind_text(s, 8, b->last_wamid);
    return exec(bs, s, "write batch", err);
}

int myna_bot_batch_del(struct myna_bot_store *bs, const char *contact, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_BATCH_DEL, err);

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    return exec(bs, s, "delete batch", err);
}

/* Collects every row of s into a growing array of elem-size structs. */
static int collect(struct myna_bot_store *bs, sqlite3_stmt *s, size_t elem,
                   int (*fill)(sqlite3_stmt *, void *), void (*release)(void *), void **v,
                   size_t *n, const char *what, struct myna_err *err)
{
    char *arr = NULL;
    size_t cap = 0;
    int rc;

    *v = NULL;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            char *na = realloc(arr, (cap = cap ? cap * 2 : 16) * elem);
            if (na == NULL)
                break;
            arr = na;
        }
        if (fill(s, arr + *n * elem) != MYNA_OK) {
            release(arr + *n * elem);
            break;
        }
        (*n)++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < *n; i++)
            release(arr + i * elem);
        free(arr);
        *n = 0;
        return rc == SQLITE_ROW ? myna_err_set(err, MYNA_ENOMEM, "out of memory")
                                : fail(bs, what, err);
    }
    *v = arr;
    return MYNA_OK;
}

static int batch_fill_v(sqlite3_stmt *s, void *p) { return batch_fill(s, p); }
static void batch_release_v(void *p) { myna_batch_release(p); }

int myna_bot_batch_all(struct myna_bot_store *bs, struct myna_batch **v, size_t *n,
                       struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_BATCH_ALL, err);

    if (s == NULL)
        return MYNA_ESTORE;
    return collect(bs, s, sizeof(**v), batch_fill_v, batch_release_v, (void **)v, n,
                   "read batches", err);
}

/* ---- turns ---- */

static int turn_fill(sqlite3_stmt *s, void *p)
{
    struct myna_turn *t = p;

    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(s, 0);
    t->contact = col_dup(s, 1);
    t->kind = col_dup(s, 2);
    t->text = col_dup(s, 3);
    t->reply_id = col_dup(s, 4);
    t->last_wamid = col_dup(s, 5);
    t->profile_name = col_dup(s, 6);
    t->created_ms = sqlite3_column_int64(s, 7);
    return t->contact && t->kind && t->text ? MYNA_OK : MYNA_ENOMEM;
}

void myna_turn_release(struct myna_turn *t)
{
    free(t->contact);
    free(t->kind);
    free(t->text);
    free(t->reply_id);
    free(t->last_wamid);
    free(t->profile_name);
    memset(t, 0, sizeof(*t));
}

static void turn_release_v(void *p) { myna_turn_release(p); }

int myna_bot_turn_add(struct myna_bot_store *bs, const struct myna_turn *t, int64_t *id,
                      struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_TURN_ADD, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, t->contact);
    bind_text(s, 2, t->kind);
    bind_text(s, 3, t->text);
    bind_text(s, 4, t->reply_id);
    bind_text(s, 5, t->last_wamid);
    bind_text(s, 6, t->profile_name);
    sqlite3_bind_int64(s, 7, t->created_ms);
    if ((rc = exec(bs, s, "add turn", err)) == MYNA_OK && id)
        *id = sqlite3_last_insert_rowid(bs->db);
    return rc;
}

int myna_bot_turn_pending(struct myna_bot_store *bs, size_t max, struct myna_turn **v,
                          size_t *n, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_TURN_PENDING, err);

    if (s == NULL)
        return MYNA_ESTORE;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
    return collect(bs, s, sizeof(**v), turn_fill, turn_release_v, (void **)v, n,
                   "read turns", err);
}

int myna_bot_turn_done(struct myna_bot_store *bs, int64_t id, int ai, int prompt_tokens,
                       int completion_tokens, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_TURN_DONE, err);

    if (s == NULL)
        return MYNA_ESTORE;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, ai);
    sqlite3_bind_int(s, 3, prompt_tokens);
    sqlite3_bind_int(s, 4, completion_tokens);
    return exec(bs, s, "finish turn", err);
}

int myna_bot_turn_count(struct myna_bot_store *bs, const char *contact, int ai, int64_t since_ms,
                        int64_t *n, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_TURN_AI_COUNT, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    sqlite3_bind_int(s, 2, ai);
    sqlite3_bind_int64(s, 3, since_ms);
    rc = sqlite3_step(s);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? MYNA_OK : fail(bs, "count turns", err);
}

/* ---- history ---- */

int myna_bot_history_add(struct myna_bot_store *bs, const char *contact, const char *role,
                         const char *text, int64_t ts_ms, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_HIST_ADD, err);

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    bind_text(s, 2, role);
    bind_text(s, 3, text);
    sqlite3_bind_int64(s, 4, ts_ms);
    return exec(bs, s, "add history", err);
}

struct hist_row {
    char *role, *text;
    int64_t ts_ms;
};

#define HIST_TAIL_MIN 64  /* bytes: less of a message is not worth giving */

/* "..." and the end of text[0..len) in at most cap bytes, cut at a
 * character boundary; NULL when out of memory. */
static char *tail_of(const char *text, size_t len, size_t cap)
{
    static const char dots[] = MYNA_ELLIPSIS;
    size_t from = len - (cap - (sizeof(dots) - 1));
    char *out;

    while (from < len && ((unsigned char)text[from] & 0xC0) == 0x80)
        from++;  /* not inside a character */
    if ((out = malloc(sizeof(dots) - 1 + len - from + 1)) == NULL)
        return NULL;
    memcpy(out, dots, sizeof(dots) - 1);
    memcpy(out + sizeof(dots) - 1, text + from, len - from);
    out[sizeof(dots) - 1 + len - from] = '\0';
    return out;
}

int myna_bot_history_recent(struct myna_bot_store *bs, const char *contact, size_t budget,
                            int64_t since_ms,
                            void (*cb)(const char *role, const char *text, int64_t ts_ms,
                                       void *arg),
                            void *arg, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_HIST_RECENT, err);
    struct hist_row rows[200];
    size_t n = 0, used = 0;
    int rc = SQLITE_DONE;

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    /* newest first until the window or the budget ends, then handed out
     * oldest first */
    while (n < 200 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        /* the text, then its length (SQLite's safe order); NULL only when
         * out of memory: the history given so far is what the model gets */
        const char *t;
        size_t len;
        char *text;
        if (sqlite3_column_int64(s, 2) <= since_ms)
            break;  /* the window's start: the older rows are before it too */
        t = (const char *)sqlite3_column_text(s, 1);
        len = (size_t)sqlite3_column_bytes(s, 1);
        if (t == NULL)
            break;
        if (used + len <= budget) {
            text = col_dup(s, 1);
            used += len;
        } else {
            /* the first that does not fit gives its end (where a long
             * answer asks its question), if a useful piece of it fits */
            text = budget - used >= HIST_TAIL_MIN
                       ? tail_of(t, len, budget - used)
                       : NULL;
            if (text == NULL)
                break;
            used = budget;
        }
        rows[n].role = col_dup(s, 0);
        rows[n].text = text;
        rows[n].ts_ms = sqlite3_column_int64(s, 2);
        n++;
        if (used == budget)
            break;
    }
    sqlite3_reset(s);
    for (size_t i = n; i-- > 0;) {
        if (rows[i].role && rows[i].text)
            cb(rows[i].role, rows[i].text, rows[i].ts_ms, arg);
        free(rows[i].role);
        free(rows[i].text);
    }
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MYNA_OK : fail(bs, "read history", err);
}

/* ---- outbox ---- */

static int out_fill(sqlite3_stmt *s, void *p)
{
    struct myna_outbox_rec *r = p;

    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    r->contact = col_dup(s, 1);
    r->turn_id = sqlite3_column_int64(s, 2);
    r->body = col_dup(s, 3);
    r->state = sqlite3_column_int(s, 4);
    r->attempts = sqlite3_column_int(s, 5);
    r->next_ms = sqlite3_column_int64(s, 6);
    r->wamid = col_dup(s, 7);
    r->status = col_dup(s, 8);
    r->error_code = sqlite3_column_int(s, 9);
    r->error = col_dup(s, 10);
    r->created_ms = sqlite3_column_int64(s, 11);
    r->updated_ms = sqlite3_column_int64(s, 12);
    r->tries_from = sqlite3_column_int(s, 13);
    return r->contact && r->body ? MYNA_OK : MYNA_ENOMEM;
}

void myna_outbox_rec_release(struct myna_outbox_rec *r)
{
    free(r->contact);
    free(r->body);
    free(r->wamid);
    free(r->status);
    free(r->error);
    memset(r, 0, sizeof(*r));
}

static void out_release_v(void *p) { myna_outbox_rec_release(p); }

int myna_bot_outbox_add(struct myna_bot_store *bs, const char *contact, int64_t turn_id,
                        const char *body, int64_t now_ms, int64_t *id, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_ADD, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    sqlite3_bind_int64(s, 2, turn_id);
    bind_text(s, 3, body);
    sqlite3_bind_int64(s, 4, now_ms);
    if ((rc = exec(bs, s, "add outbox record", err)) == MYNA_OK && id)
        *id = sqlite3_last_insert_rowid(bs->db);
    return rc;
}

int myna_bot_outbox_open(struct myna_bot_store *bs, struct myna_outbox_rec **v, size_t *n,
                         struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_OPEN, err);

    if (s == NULL)
        return MYNA_ESTORE;
    return collect(bs, s, sizeof(**v), out_fill, out_release_v, (void **)v, n, "read outbox",
                   err);
}

int myna_bot_outbox_update(struct myna_bot_store *bs, const struct myna_outbox_rec *r,
                           int64_t now_ms, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_UPDATE, err);

    if (s == NULL)
        return MYNA_ESTORE;
    sqlite3_bind_int64(s, 1, r->id);
    sqlite3_bind_int(s, 2, r->state);
    sqlite3_bind_int(s, 3, r->attempts);
    sqlite3_bind_int64(s, 4, r->next_ms);
    bind_text(s, 5, r->wamid);
    bind_text(s, 6, r->status);
    sqlite3_bind_int(s, 7, r->error_code);
    bind_text(s, 8, r->error);
    sqlite3_bind_int64(s, 9, now_ms);
    return exec(bs, s, "update outbox record", err);
}

static int get_one(struct myna_bot_store *bs, sqlite3_stmt *s, struct myna_outbox_rec *r,
                   struct myna_err *err)
{
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        rc = out_fill(s, r);
        sqlite3_reset(s);
        if (rc != MYNA_OK) {
            myna_outbox_rec_release(r);
            return myna_err_set(err, rc, "out of memory");
        }
        return MYNA_OK;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MYNA_ENOTFOUND : fail(bs, "read outbox record", err);
}

int myna_bot_outbox_due(struct myna_bot_store *bs, int64_t now_ms, size_t max,
                        struct myna_outbox_rec **v, size_t *n, int64_t *wake_ms,
                        struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_DUE, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
    rc = collect(bs, s, sizeof(**v), out_fill, out_release_v, (void **)v, n, "read due outbox",
                 err);
    if (rc != MYNA_OK)
        return rc;
    *wake_ms = 0;
    if ((s = q(bs, Q_OUT_WAKE, err)) == NULL) {
        rc = MYNA_ESTORE;
    } else {
        sqlite3_bind_int64(s, 1, now_ms);
        if ((rc = sqlite3_step(s)) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
            *wake_ms = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? MYNA_OK : fail(bs, "read outbox wake", err);
    }
    if (rc != MYNA_OK) {  /* on an error the caller has no records to release */
        for (size_t i = 0; i < *n; i++)
            myna_outbox_rec_release(&(*v)[i]);
        free(*v);
        *v = NULL;
        *n = 0;
    }
    return rc;
}

int myna_bot_outbox_flag_unconfirmed(struct myna_bot_store *bs, int64_t before_ms,
                                     int64_t now_ms, int64_t *ids, size_t max, size_t *n,
                                     struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_UNCONFIRMED, err);
    int rc;

    *n = 0;
    if (s == NULL)
        return MYNA_ESTORE;
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int64(s, 2, now_ms);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)max);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (*n < max)
            ids[(*n)++] = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MYNA_OK : fail(bs, "flag unconfirmed sends", err);
}

int myna_bot_counts(struct myna_bot_store *bs, struct myna_bot_counts *c, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_COUNTS, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        c->outbox_open = sqlite3_column_int64(s, 0);
        c->dead_letters = sqlite3_column_int64(s, 1);
        c->unconfirmed = sqlite3_column_int64(s, 2);
        c->turns_pending = sqlite3_column_int64(s, 3);
        c->open_batches = sqlite3_column_int64(s, 4);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? MYNA_OK : fail(bs, "count", err);
}

int myna_bot_outbox_failed(struct myna_bot_store *bs, struct myna_outbox_rec **v, size_t *n,
                           struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_FAILED, err);

    if (s == NULL)
        return MYNA_ESTORE;
    return collect(bs, s, sizeof(**v), out_fill, out_release_v, (void **)v, n, "read dead letters",
                   err);
}

int myna_bot_outbox_replay(struct myna_bot_store *bs, int64_t id, int64_t now_ms, size_t *n,
                           struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_REPLAY, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now_ms);
    rc = exec(bs, s, "replay dead letters", err);
    *n = rc == MYNA_OK ? (size_t)sqlite3_changes(bs->db) : 0;
    return rc;
}

int myna_bot_outbox_get(struct myna_bot_store *bs, int64_t id, struct myna_outbox_rec *r,
                        struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_GET, err);

    if (s == NULL)
        return MYNA_ESTORE;
    sqlite3_bind_int64(s, 1, id);
    return get_one(bs, s, r, err);
}

int myna_bot_outbox_by_wamid(struct myna_bot_store *bs, const char *wamid,
                             struct myna_outbox_rec *r, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_BY_WAMID, err);

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, wamid);
    return get_one(bs, s, r, err);
}

static int status_rank(const char *name)
{
    static const char *const order[] = { "sent", "delivered", "read", "played" };

    if (name == NULL)
        return -1;
    if (strcmp(name, "failed") == 0)
        return 100;
    for (int i = 0; i < 4; i++)
        if (strcmp(name, order[i]) == 0)
            return i;
    return -1;
}

int myna_bot_outbox_status(struct myna_bot_store *bs, const char *wamid,
                           enum myna_status_kind kind, int error_code, const char *error,
                           int64_t now_ms, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_OUT_BY_WAMID, err);
    struct myna_outbox_rec r;
    const char *name = myna_status_kind_name(kind);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, wamid);
    if ((rc = get_one(bs, s, &r, err)) != MYNA_OK)
        return rc;
    /* statuses arrive out of order: never go backwards, failed is final */
    if (kind != MYNA_STATUS_UNKNOWN && status_rank(name) > status_rank(r.status)) {
        if ((s = q(bs, Q_OUT_STATUS, err)) == NULL) {
            myna_outbox_rec_release(&r);
            return MYNA_ESTORE;
        }
        sqlite3_bind_int64(s, 1, r.id);
        bind_text(s, 2, name);
        sqlite3_bind_int(s, 3, kind == MYNA_STATUS_FAILED ? MYNA_OUTBOX_FAILED : MYNA_OUTBOX_SENT);
        sqlite3_bind_int(s, 4, kind == MYNA_STATUS_FAILED ? error_code : r.error_code);
        bind_text(s, 5, kind == MYNA_STATUS_FAILED ? error : r.error);
        sqlite3_bind_int64(s, 6, now_ms);
        rc = exec(bs, s, "apply status", err);
    }
    myna_outbox_rec_release(&r);
    return rc;
}

int myna_bot_counters_add(struct myna_bot_store *bs, const char *const *names,
                          const int64_t *deltas, size_t n, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_COUNTER_ADD, err);
    int rc = MYNA_OK;

    if (s == NULL)
        return MYNA_ESTORE;
    for (size_t i = 0; rc == MYNA_OK && i < n; i++) {
        sqlite3_bind_text(s, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, deltas[i]);
        rc = exec(bs, s, "add counters", err);
    }
    return rc;
}

int myna_bot_counters(struct myna_bot_store *bs, void (*fn)(const char *name, int64_t v, void *arg),
                      void *arg, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_COUNTER_ALL, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), arg);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? MYNA_OK : fail(bs, "read counters", err);
}

int myna_bot_profile_get(struct myna_bot_store *bs, const char *contact, char **name,
                         char **prefs, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_PROFILE_GET, err);
    int rc;

    *name = *prefs = NULL;
    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(s, 0),
                   *p = (const char *)sqlite3_column_text(s, 1);
        if ((n && (*name = strdup(n)) == NULL) || (*prefs = strdup(p ? p : "{}")) == NULL) {
            sqlite3_reset(s);
            free(*name);
            *name = NULL;
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        }
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return MYNA_OK;
    return rc == SQLITE_DONE ? myna_err_set(err, MYNA_ENOTFOUND, "no profile") : fail(bs, "read profile", err);
}

int myna_bot_profile_set_name(struct myna_bot_store *bs, const char *contact, const char *name,
                              int64_t now_ms, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_PROFILE_NAME, err);

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    bind_text(s, 2, name);
    sqlite3_bind_int64(s, 3, now_ms);
    return exec(bs, s, "set profile name", err);
}

int myna_bot_profile_set_prefs(struct myna_bot_store *bs, const char *contact,
                               const char *prefs_json, int64_t now_ms, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_PROFILE_PREFS, err);

    if (s == NULL)
        return MYNA_ESTORE;
    bind_text(s, 1, contact);
    bind_text(s, 2, prefs_json);
    sqlite3_bind_int64(s, 3, now_ms);
    return exec(bs, s, "set profile preferences", err);
}

int myna_bot_totals(struct myna_bot_store *bs, int64_t *sent, int64_t *turns, struct myna_err *err)
{
    sqlite3_stmt *s = q(bs, Q_TOTALS, err);
    int rc;

    if (s == NULL)
        return MYNA_ESTORE;
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        *sent = sqlite3_column_int64(s, 0);
        *turns = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? MYNA_OK : fail(bs, "count totals", err);
}
