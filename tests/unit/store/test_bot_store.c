/* test_bot_store.c - the bot's durable state in the instance's SQLite store:
 * cursors, batches, turns, history within a budget, and the outbox with
 * statuses that never go backwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/bot_store.h"

struct fx {
    char dir[64];
    struct myna_store *st;
    struct myna_bot_store *bs;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct myna_store_opts o = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 1000 };
    char path[128];

    if (test_tmpdir(f->dir, sizeof(f->dir), "botstore") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/i.db", f->dir);
    f->st = myna_store_open_sqlite(path, &o, NULL);
    f->bs = f->st ? myna_bot_store_new(f->st, NULL) : NULL;
    *state = f;
    return f->bs ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc;

    myna_bot_store_free(f->bs);
    myna_store_free(f->st);
    rc = test_rmtree(f->dir);
    free(f);
    return rc;
}

/* Counts the virtual machine's steps, in hundreds, from the store's own
 * connection: a read that walks a whole table shows as thousands, one
 * that an index takes to its rows as a few. Not a clock: the count is the
 * same on a loaded machine. */
static int count_steps(void *arg)
{
    ++*(int *)arg;
    return 0;
}

static void steps_start(struct fx *f, int *n)
{
    *n = 0;
    sqlite3_progress_handler(myna_store__sqlite_db(f->st), 100, count_steps, n);
}

static void steps_stop(struct fx *f)
{
    sqlite3_progress_handler(myna_store__sqlite_db(f->st), 0, NULL, NULL);
}

/* n rows of SQL straight into the store's file (a recursive CTE: k is 1..n). */
static void fill_rows(struct fx *f, const char *insert_select, int n)
{
    char sql[1024];

    snprintf(sql, sizeof(sql), "WITH RECURSIVE r(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r"
             " WHERE k < %d) %s", n, insert_select);
    assert_int_equal(sqlite3_exec(myna_store__sqlite_db(f->st), sql, NULL, NULL, NULL),
                     SQLITE_OK);
}

static void test_cursor_and_batches(void **state)
{
    struct fx *f = *state;
    char contact[] = "79161234567", t1[] = "Хочу записаться", t2[] = "Хочу записаться на стрижку";
    char name[] = "Алексей";
    char wamid[] = "wamid.b1";
    struct myna_batch b = { contact, t1, 1, 10, 10, 1000, name, wamid }, got;
    struct myna_batch *all;
    size_t n;
    int64_t seq;

    assert_int_equal(myna_bot_cursor_get(f->bs, "inbox", &seq, NULL), MYNA_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(myna_store_begin(f->st, NULL), MYNA_OK);
    assert_int_equal(myna_bot_cursor_set(f->bs, "inbox", 42, NULL), MYNA_OK);
    assert_int_equal(myna_bot_batch_put(f->bs, &b, NULL), MYNA_OK);
    b.text = t2;
    b.n = 2;
    b.last_seq = 11;
    assert_int_equal(myna_bot_batch_put(f->bs, &b, NULL), MYNA_OK);  /* replaces */
    assert_int_equal(myna_store_commit(f->st, NULL), MYNA_OK);
    assert_int_equal(myna_bot_cursor_get(f->bs, "inbox", &seq, NULL), MYNA_OK);
    assert_int_equal(seq, 42);
    assert_int_equal(myna_bot_batch_get(f->bs, "79161234567", &got, NULL), MYNA_OK);
    assert_string_equal(got.text, "Хочу записаться на стрижку");
    assert_int_equal(got.n, 2);
    assert_int_equal(got.first_seq, 10);
    assert_int_equal(got.last_seq, 11);
    assert_string_equal(got.profile_name, "Алексей");
    assert_string_equal(got.last_wamid, "wamid.b1");
    myna_batch_release(&got);
    assert_int_equal(myna_bot_batch_get(f->bs, "000", &got, NULL), MYNA_ENOTFOUND);
    assert_int_equal(myna_bot_batch_all(f->bs, &all, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    myna_batch_release(&all[0]);
    free(all);
    assert_int_equal(myna_bot_batch_del(f->bs, "79161234567", NULL), MYNA_OK);
    assert_int_equal(myna_bot_batch_all(f->bs, &all, &n, NULL), MYNA_OK);
    assert_int_equal(n, 0);
    free(all);
}

/* A read transaction is one snapshot (another connection's commit shows
 * only after it), and ending it leaves the store ready for writes. */
static void test_read_transaction(void **state)
{
    struct fx *f = *state;
    struct myna_store_opts o = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 1000 };
    struct myna_store *other;
    struct myna_bot_store *obs;
    char path[128];
    int64_t seq = -1;

    snprintf(path, sizeof(path), "%s/i.db", f->dir);
    other = myna_store_open_sqlite(path, &o, NULL);
    assert_non_null(other);
    obs = myna_bot_store_new(other, NULL);
    assert_non_null(obs);
    assert_int_equal(myna_bot_read_begin(f->bs, NULL), MYNA_OK);
    assert_int_equal(myna_bot_cursor_get(f->bs, "inbox", &seq, NULL), MYNA_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(myna_store_begin(other, NULL), MYNA_OK);
    assert_int_equal(myna_bot_cursor_set(obs, "inbox", 42, NULL), MYNA_OK);
    assert_int_equal(myna_store_commit(other, NULL), MYNA_OK);
    assert_int_equal(myna_bot_cursor_get(f->bs, "inbox", &seq, NULL), MYNA_OK);
    assert_int_equal(seq, 0);  /* still the snapshot */
    myna_bot_read_end(f->bs);
    assert_int_equal(myna_bot_cursor_get(f->bs, "inbox", &seq, NULL), MYNA_OK);
    assert_int_equal(seq, 42);
    assert_int_equal(myna_store_begin(f->st, NULL), MYNA_OK);
    assert_int_equal(myna_bot_cursor_set(f->bs, "inbox", 43, NULL), MYNA_OK);
    assert_int_equal(myna_store_commit(f->st, NULL), MYNA_OK);
    assert_int_equal(myna_bot_cursor_get(obs, "inbox", &seq, NULL), MYNA_OK);
    assert_int_equal(seq, 43);
    myna_bot_store_free(obs);
    myna_store_free(other);
}

static void test_turns_in_order(void **state)
{
    struct fx *f = *state;
    char c[] = "7916", k1[] = "text", k2[] = "button_reply", a[] = "a", b[] = "b";
    char w[] = "wamid.1", slot[] = "slot:1";
    struct myna_turn t = { 0, c, k1, a, NULL, w, NULL, 5 }, *v;
    int64_t id1, id2;
    size_t n;

    assert_int_equal(myna_bot_turn_add(f->bs, &t, &id1, NULL), MYNA_OK);
    t.text = b;
    t.kind = k2;
    t.reply_id = slot;
    assert_int_equal(myna_bot_turn_add(f->bs, &t, &id2, NULL), MYNA_OK);
    assert_true(id2 > id1);
    assert_int_equal(myna_bot_turn_pending(f->bs, 1, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);  /* the oldest first, no more than asked */
    assert_int_equal(v[0].id, id1);
    myna_turn_release(&v[0]);
    free(v);
    assert_int_equal(myna_bot_turn_pending(f->bs, 100, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].text, "a");
    assert_null(v[0].reply_id);
    assert_string_equal(v[1].reply_id, "slot:1");
    for (size_t i = 0; i < n; i++)
        myna_turn_release(&v[i]);
    free(v);
    assert_int_equal(myna_bot_turn_done(f->bs, id1, 1, 120, 35, NULL), MYNA_OK);
    {
        int64_t ai = -1;
        assert_int_equal(myna_bot_turn_count(f->bs, "7916", 1, 0, &ai, NULL), MYNA_OK);
        assert_int_equal(ai, 1);
        assert_int_equal(myna_bot_turn_count(f->bs, "7916", 1, 5, &ai, NULL), MYNA_OK);
        assert_int_equal(ai, 0);  /* created at 5: not after 5 */
    }
    assert_int_equal(myna_bot_turn_pending(f->bs, 100, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].id, id2);
    myna_turn_release(&v[0]);
    free(v);
}

struct seen {
    char text[512];
    int n;
};

static void on_hist(const char *role, const char *text, int64_t ts, void *arg)
{
    struct seen *s = arg;
    size_t l = strlen(s->text);

    (void)ts;
    snprintf(s->text + l, sizeof(s->text) - l, "%s:%s|", role, text);
    s->n++;
}

static void test_history_budget_and_age(void **state)
{
    struct fx *f = *state;
    struct seen s;

    assert_int_equal(myna_bot_history_add(f->bs, "c", "user", "old", 100, NULL), MYNA_OK);
    assert_int_equal(myna_bot_history_add(f->bs, "c", "user", "hello", 1000, NULL), MYNA_OK);
    assert_int_equal(myna_bot_history_add(f->bs, "c", "assistant", "hi there", 1001, NULL), MYNA_OK);
    assert_int_equal(myna_bot_history_add(f->bs, "other", "user", "x", 1002, NULL), MYNA_OK);
    memset(&s, 0, sizeof(s));
    assert_int_equal(myna_bot_history_recent(f->bs, "c", 1000, 500, on_hist, &s, NULL), MYNA_OK);
    assert_string_equal(s.text, "user:hello|assistant:hi there|");  /* oldest first, not "old" */
    memset(&s, 0, sizeof(s));
    assert_int_equal(myna_bot_history_recent(f->bs, "c", 10, 0, on_hist, &s, NULL), MYNA_OK);
    assert_string_equal(s.text, "assistant:hi there|");  /* the budget keeps the newest */
    {   /* a long answer: its end, cut at a character, "..." before it */
        char longer[301], want[200];
        for (int i = 0; i < 150; i++)
            memcpy(longer + 2 * i, "\xd1\x8f", 2);  /* U+044F, two bytes */
        longer[300] = '\0';
        assert_int_equal(myna_bot_history_add(f->bs, "c", "assistant", longer, 1003, NULL),
                         MYNA_OK);
        memset(&s, 0, sizeof(s));
        assert_int_equal(myna_bot_history_recent(f->bs, "c", 100, 0, on_hist, &s, NULL),
                         MYNA_OK);
        snprintf(want, sizeof(want), "assistant:\xe2\x80\xa6%s|", longer + 300 - 96);
        assert_string_equal(s.text, want);  /* 3 + 96 bytes: 48 whole characters */
        memset(&s, 0, sizeof(s));
        assert_int_equal(myna_bot_history_recent(f->bs, "c", 63, 0, on_hist, &s, NULL),
                         MYNA_OK);
        assert_int_equal(s.n, 0);  /* under 64 bytes: no piece at all */
    }
}

static void test_outbox_and_statuses(void **state)
{
    struct fx *f = *state;
    struct myna_outbox_rec *v, r;
    int64_t id;
    size_t n;

    assert_int_equal(myna_bot_outbox_add(f->bs, "7916", 1, "{\"x\":1}", 10, &id, NULL), MYNA_OK);
    assert_int_equal(myna_bot_outbox_open(f->bs, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].state, MYNA_OUTBOX_PENDING);
    v[0].state = MYNA_OUTBOX_SENT;
    v[0].attempts = 1;
    v[0].wamid = strdup("wamid.OUT1");
    assert_int_equal(myna_bot_outbox_update(f->bs, &v[0], 20, NULL), MYNA_OK);
    myna_outbox_rec_release(&v[0]);
    free(v);
    assert_int_equal(myna_bot_outbox_open(f->bs, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 0);
    free(v);
    /* read before delivered: delivered later must not go backwards */
    assert_int_equal(myna_bot_outbox_status(f->bs, "wamid.OUT1", MYNA_STATUS_READ, 0, NULL, 30, NULL), MYNA_OK);
    assert_int_equal(myna_bot_outbox_status(f->bs, "wamid.OUT1", MYNA_STATUS_DELIVERED, 0, NULL, 31, NULL), MYNA_OK);
    assert_int_equal(myna_bot_outbox_get(f->bs, id, &r, NULL), MYNA_OK);
    assert_string_equal(r.status, "read");
    assert_int_equal(r.state, MYNA_OUTBOX_SENT);
    myna_outbox_rec_release(&r);
    assert_int_equal(myna_bot_outbox_status(f->bs, "wamid.OUT1", MYNA_STATUS_FAILED, 131047, "window", 32, NULL), MYNA_OK);
    assert_int_equal(myna_bot_outbox_get(f->bs, id, &r, NULL), MYNA_OK);
    assert_string_equal(r.status, "failed");
    assert_int_equal(r.state, MYNA_OUTBOX_FAILED);
    assert_int_equal(r.error_code, 131047);
    myna_outbox_rec_release(&r);
    assert_int_equal(myna_bot_outbox_status(f->bs, "wamid.NONE", MYNA_STATUS_READ, 0, NULL, 33, NULL), MYNA_ENOTFOUND);
    /* the failed record is a dead letter until replayed */
    assert_int_equal(myna_bot_outbox_failed(f->bs, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].error_code, 131047);
    myna_outbox_rec_release(&v[0]);
    free(v);
    assert_int_equal(myna_bot_outbox_replay(f->bs, 0, 40, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(myna_bot_outbox_open(f->bs, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].state, MYNA_OUTBOX_PENDING);
    /* attempts goes on (the next send is number 2: a late status of send 1
     * is not its), and send_tries counts from here */
    assert_int_equal(v[0].attempts, 1);
    assert_int_equal(v[0].tries_from, 1);
    assert_null(v[0].wamid);
    /* two more sends, refused: the record dies again, and a second replay
     * counts from 3 */
    v[0].attempts = 3;
    v[0].state = MYNA_OUTBOX_FAILED;
    assert_int_equal(myna_bot_outbox_update(f->bs, &v[0], 41, NULL), MYNA_OK);
    myna_outbox_rec_release(&v[0]);
    free(v);
    assert_int_equal(myna_bot_outbox_get(f->bs, id, &r, NULL), MYNA_OK);
    assert_int_equal(r.tries_from, 1);  /* update leaves it */
    myna_outbox_rec_release(&r);
    assert_int_equal(myna_bot_outbox_replay(f->bs, id, 42, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(myna_bot_outbox_get(f->bs, id, &r, NULL), MYNA_OK);
    assert_int_equal(r.state, MYNA_OUTBOX_PENDING);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.tries_from, 3);
    myna_outbox_rec_release(&r);
    assert_int_equal(myna_bot_outbox_replay(f->bs, 0, 43, &n, NULL), MYNA_OK);
    assert_int_equal(n, 0);
}

/* refuses min(), which only the outbox's wake query calls */
static int deny_min(void *arg, int action, const char *a1, const char *a2, const char *db,
                    const char *trigger)
{
    (void)arg;
    (void)a1;
    (void)db;
    (void)trigger;
    return action == SQLITE_FUNCTION && a2 && strcmp(a2, "min") == 0 ? SQLITE_DENY : SQLITE_OK;
}

static void test_outbox_due_fails_whole(void **state)
{
    struct fx *f = *state;
    struct myna_outbox_rec *v = NULL;
    int64_t wake = -1;
    size_t n = 99;

    assert_int_equal(myna_bot_outbox_add(f->bs, "7916", 1, "{}", 10, NULL, NULL), MYNA_OK);
    sqlite3_set_authorizer(myna_store__sqlite_db(f->st), deny_min, NULL);
    assert_int_equal(myna_bot_outbox_due(f->bs, 100, 10, &v, &n, &wake, NULL), MYNA_ESTORE);
    assert_null(v);  /* the due records are not left to a caller that sees only the error */
    assert_int_equal(n, 0);
    sqlite3_set_authorizer(myna_store__sqlite_db(f->st), NULL, NULL);
    assert_int_equal(myna_bot_outbox_due(f->bs, 100, 10, &v, &n, &wake, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(wake, 0);
    myna_outbox_rec_release(&v[0]);
    free(v);
}

/* The bot looks for unconfirmed sends every second: the look goes to the
 * sends still waiting for their first status, not through every reply
 * Meta ever took (the outbox is kept for good). */
static void test_unconfirmed_check_reads_only_waiting_sends(void **state)
{
    struct fx *f = *state;
    int64_t ids[4];
    size_t n = 9;
    int steps;

    fill_rows(f, "INSERT INTO outbox(contact, turn_id, body, state, attempts, wamid, status,"
              " created_ms, updated_ms) SELECT '7916', k, '{}', 2, 1, 'wamid.' || k,"
              " 'read', 10, 20 FROM r", 20000);
    assert_int_equal(myna_bot_outbox_add(f->bs, "7916", 1, "{}", 30, NULL, NULL), MYNA_OK);
    assert_int_equal(sqlite3_exec(myna_store__sqlite_db(f->st),
                                  "UPDATE outbox SET state = 2, attempts = 1, wamid = 'wamid.w',"
                                  " status = 'accepted' WHERE body = '{}' AND turn_id = 1"
                                  " AND wamid IS NULL", NULL, NULL, NULL), SQLITE_OK);
    steps_start(f, &steps);
    assert_int_equal(myna_bot_outbox_flag_unconfirmed(f->bs, 1000, 1001, ids, 4, &n, NULL),
                     MYNA_OK);
    steps_stop(f);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 20001);
    assert_true(steps < 20);  /* not one per sent reply */
    /* flagged once */
    assert_int_equal(myna_bot_outbox_flag_unconfirmed(f->bs, 2000, 2001, ids, 4, &n, NULL),
                     MYNA_OK);
    assert_int_equal(n, 0);
}

/* More sends go unconfirmed at once than one look takes: each look flags
 * (and names, for the log) at most max of them, and the rest are left for
 * the next look; none is flagged without its id being given. */
static void test_unconfirmed_check_names_every_send_it_flags(void **state)
{
    struct fx *f = *state;
    int64_t ids[4];
    size_t n = 9, total = 0;

    for (int i = 0; i < 6; i++)
        assert_int_equal(myna_bot_outbox_add(f->bs, "7916", i + 1, "{}", 30, NULL, NULL),
                         MYNA_OK);
    assert_int_equal(sqlite3_exec(myna_store__sqlite_db(f->st),
                                  "UPDATE outbox SET state = 2, attempts = 1, wamid = 'wamid.' || id,"
                                  " status = 'accepted'", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(myna_bot_outbox_flag_unconfirmed(f->bs, 1000, 1001, ids, 4, &n, NULL),
                     MYNA_OK);
    assert_int_equal(n, 4);
    total += n;
    assert_int_equal(myna_bot_outbox_flag_unconfirmed(f->bs, 1000, 1002, ids, 4, &n, NULL),
                     MYNA_OK);
    assert_int_equal(n, 2);
    total += n;
    assert_int_equal(myna_bot_outbox_flag_unconfirmed(f->bs, 1000, 1003, ids, 4, &n, NULL),
                     MYNA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(total, 6);
}

/* The master reads the unconfirmed gauge of every bot for each scrape of
 * /metrics, on its loop: the count goes to the flagged sends alone. */
static void test_counts_read_only_flagged_sends(void **state)
{
    struct fx *f = *state;
    struct myna_bot_counts c;
    int steps;

    fill_rows(f, "INSERT INTO outbox(contact, turn_id, body, state, attempts, wamid, status,"
              " created_ms, updated_ms) SELECT '7916', k, '{}', 2, 1, 'wamid.' || k,"
              " CASE WHEN k % 1000 = 0 THEN 'unconfirmed' ELSE 'read' END, 10, 20 FROM r",
              20000);
    steps_start(f, &steps);
    assert_int_equal(myna_bot_counts(f->bs, &c, NULL), MYNA_OK);
    steps_stop(f);
    assert_int_equal(c.unconfirmed, 20);
    assert_int_equal(c.outbox_open, 0);
    assert_int_equal(c.dead_letters, 0);
    assert_true(steps < 20);  /* not one per sent reply */
}

/* A turn's history is read back to the first turn older than the window
 * (a day), not through everything the contact ever said. */
static void test_history_read_stops_at_window(void **state)
{
    struct fx *f = *state;
    struct seen s;
    int steps;

    fill_rows(f, "INSERT INTO history(contact, role, text, ts_ms) SELECT 'c', 'user',"
              " 'old ' || k, k FROM r", 20000);
    assert_int_equal(myna_bot_history_add(f->bs, "c", "user", "hello", 100000, NULL), MYNA_OK);
    assert_int_equal(myna_bot_history_add(f->bs, "c", "assistant", "hi", 100001, NULL), MYNA_OK);
    memset(&s, 0, sizeof(s));
    steps_start(f, &steps);
    assert_int_equal(myna_bot_history_recent(f->bs, "c", 6000, 50000, on_hist, &s, NULL),
                     MYNA_OK);
    steps_stop(f);
    assert_string_equal(s.text, "user:hello|assistant:hi|");
    assert_true(steps < 20);  /* not one per turn of the contact */
    /* no window: the newest that fit, as ever */
    memset(&s, 0, sizeof(s));
    assert_int_equal(myna_bot_history_recent(f->bs, "c", 20, 0, on_hist, &s, NULL), MYNA_OK);
    assert_string_equal(s.text, "user:old 20000|user:hello|assistant:hi|");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cursor_and_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_turns_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_budget_and_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_and_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_due_fails_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unconfirmed_check_reads_only_waiting_sends, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unconfirmed_check_names_every_send_it_flags,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_read_only_flagged_sends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_read_stops_at_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
