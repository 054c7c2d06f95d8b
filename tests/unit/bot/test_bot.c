/* test_bot.c - the bot's flush (bot/bot.c, included for its statics) on a
 * real store: a flush that fails leaves the sender's pacing as it found it,
 * and its batches to be cut again soon; the loop guard keeps to the time
 * that passes, and takes the same exchange, not the same text, for a loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../tmpdir.h"

#include <sqlite3.h>
#include <sys/time.h>

/* The clocks bot.c reads, which a test moves: the time that passes and
 * the wall clock, which may be set back. */
static int64_t mono_offset_ms, wall_offset_ms;
#define myna_mono_ms test_mono_ms
#define myna_wall_ms test_wall_ms

#include "bot/bot.c"

#undef myna_mono_ms
#undef myna_wall_ms
int64_t myna_mono_ms(void);  /* the real ones (core/util.h, renamed above) */
int64_t myna_wall_ms(void);

int64_t test_mono_ms(void)
{
    return myna_mono_ms() + mono_offset_ms;
}

int64_t test_wall_ms(void)
{
    return myna_wall_ms() + wall_offset_ms;
}

struct fx {
    char dir[64];
    char path[128];
    char id[8];
    struct myna_instance in;
    struct myna_bot_opts opts;
    struct bot b;
    sqlite3 *other;          /* another process's connection to the bot's store */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    /* a short wait for another's lock: the tests hold it */
    struct myna_store_opts so = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 50,
                                  .unnumbered = 1 };
    struct bot *b;

    *state = f;
    mono_offset_ms = wall_offset_ms = 0;
    if (f == NULL || test_tmpdir(f->dir, sizeof(f->dir), "bot") != 0)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/t.bot.db", f->dir);
    snprintf(f->id, sizeof(f->id), "t");
    f->in.id = f->id;
    f->in.pacing_mps = 1;  /* a slot a second */
    f->opts.doorbell_fd = f->opts.heartbeat_fd = -1;
    f->opts.reconcile_ms = f->opts.hold_ms = 60000;
    f->opts.unconfirmed_ms = 600000;
    f->opts.tries_max = 15;
    b = &f->b;
    b->in = &f->in;
    b->opts = &f->opts;
    b->lock_fd = -1;
    for (int k = 0; k < BLOCK_COUNT; k++)
        b->blocked[k] = b->told[k] = -1;
    if ((b->base = event_base_new()) == NULL ||
        (b->st = myna_store_open_sqlite(f->path, &so, NULL)) == NULL ||
        (b->bs = myna_bot_store_new(b->st, NULL)) == NULL ||
        (b->send_timer = evtimer_new(b->base, on_send_timer, b)) == NULL ||
        (b->retry_timer = evtimer_new(b->base, on_retry_timer, b)) == NULL ||
        (b->turn_kick = event_new(b->base, -1, 0, on_turn_kick, b)) == NULL ||
        (b->flush_ev = event_new(b->base, -1, 0, on_flush, b)) == NULL)
        return -1;
    if (sqlite3_open(f->path, &f->other) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(f->other, 5000);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc = 0;

    if (f) {
        sqlite3_close(f->other);
        bot_release(&f->b);
        rc = f->dir[0] ? test_rmtree(f->dir) : 0;
        free(f);
    }
    return rc;
}

/* A batch timer of contact fired: the next flush has its part to commit. */
static void batch_due(struct bot *b, const char *contact)
{
    struct lane *l = lane_get(b, contact);

    assert_non_null(l);
    l->due_queued = 1;
    l->due_next = b->due_lanes;
    b->due_lanes = l;
}

/* A send took the slot now: the next is half a second away (1 a second). */
static int64_t slot_taken(struct bot *b)
{
    b->next_send_us = myna_wall_ms() * 1000 + 500000;
    return b->next_send_us;
}

/* Another process holds the write lock: the flush cannot even begin, and
 * its sender pass never runs. The slot stays where the last send left it;
 * put back as 0, the next pass sent at once, and one more in the credit
 * that a sender idle for long gets. */
static void test_flush_that_cannot_begin_keeps_the_pace(void **state)
{
    struct fx *f = *state;
    int64_t next;

    assert_int_equal(sqlite3_exec(f->other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    batch_due(&f->b, "79160000001");
    next = slot_taken(&f->b);
    flush(&f->b, 1);
    assert_int_equal(sqlite3_exec(f->other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(f->b.next_send_us, next);
}

/* The flush began, and a part of it failed before its sender pass (the
 * batch cannot be read): each part is tried alone, and the pass that
 * follows finds the slot where it was. */
static void test_flush_split_before_its_pass_keeps_the_pace(void **state)
{
    struct fx *f = *state;
    int64_t next;

    assert_int_equal(sqlite3_exec(f->other, "ALTER TABLE batches RENAME TO batches_away", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    batch_due(&f->b, "79160000002");
    next = slot_taken(&f->b);
    flush(&f->b, 1);
    assert_int_equal(f->b.next_send_us, next);
}

/* How many rows of the bot's store match, read from the other connection. */
static int count_rows(struct fx *f, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int n = -1;

    if (sqlite3_prepare_v2(f->other, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A batch whose timer fired while another process held the write lock is
 * cut within a second of that: its window is over. It waited a whole
 * window_ms more (9 s by default, up to 10 minutes) before the next try. */
static void test_batch_cut_that_cannot_begin_is_tried_within_a_second(void **state)
{
    struct fx *f = *state;
    char contact[] = "79160000003", text[] = "Здравствуйте", wamid[] = "wamid.b1";
    struct myna_batch batch = { contact, text, 1, 1, 1, 0, NULL, wamid };
    struct timeval at, now;
    struct lane *l;
    int64_t wait_ms;

    f->in.batch_window_ms = 60000;
    batch.last_ms = myna_wall_ms() - 60000;
    assert_int_equal(myna_bot_batch_put(f->b.bs, &batch, NULL), MYNA_OK);
    assert_int_equal(sqlite3_exec(f->other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    batch_due(&f->b, contact);
    flush(&f->b, 0);
    assert_int_equal(sqlite3_exec(f->other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM turns"), 0);
    l = lane_get(&f->b, contact);
    assert_true(evtimer_pending(l->batch_timer, &at));
    gettimeofday(&now, NULL);
    wait_ms = ((int64_t)at.tv_sec - now.tv_sec) * 1000 + (at.tv_usec - now.tv_usec) / 1000;
    assert_true(wait_ms <= 2000);  /* a window would be 60 s */
    /* the timer fires: the batch becomes its turn */
    evtimer_del(l->batch_timer);
    batch_due(&f->b, contact);
    flush(&f->b, 0);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM turns WHERE text = 'Здравствуйте'"), 1);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM batches"), 0);
}

/* Two minutes pass, and meanwhile the wall clock is set back an hour (an
 * NTP step, a restored VM). */
static void clock_set_back(void)
{
    mono_offset_ms += 120000;
    wall_offset_ms += 120000 - 3600000;
}

/* The loop guard counts the time that passed, whatever the wall clock
 * says: set back an hour, it made the replies of a contact's last minute
 * an hour ahead, still "within the minute", and a cooldown an hour longer.
 * A contact with its replies_per_minute replies in the ring got no reply
 * at all until the clock caught up. */
static void test_loop_guard_outlives_a_clock_set_back(void **state)
{
    struct fx *f = *state;
    struct lane *l = lane_get(&f->b, "79160000004");
    char text[32];

    f->in.loop_replies_per_minute = 3;
    f->in.loop_repeat_limit = 2;
    f->in.loop_cooldown_s = 60;
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof(text), "question %d", i);
        assert_int_equal(loop_guard(&f->b, l, text), 0);
        loop_guard_replied(&f->b, l, text, "answer");
    }
    assert_int_equal(loop_guard(&f->b, l, "one more"), 1);  /* 4 in a minute */
    clock_set_back();
    assert_int_equal(loop_guard(&f->b, l, "two minutes later"), 0);
    /* a cooldown lasts cooldown_s of time passing */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(loop_guard(&f->b, l, "again"), 0);
        loop_guard_replied(&f->b, l, "again", "the same answer");
    }
    assert_int_equal(loop_guard(&f->b, l, "again"), 1);  /* repeat_limit */
    clock_set_back();
    assert_int_equal(loop_guard(&f->b, l, "after the cooldown"), 0);
}

/* A loop is a fixed point: the same text drawing the same reply. A person
 * answering "Да" to one question after another draws a new reply each
 * time and is answered however many times it comes; the same exchange
 * repeat_limit times in a row is a loop, and the next same text is not
 * answered. Any other text or reply in between starts the count again.
 * The same text alone was taken for a loop, and the customer silenced at
 * the third "Да". */
static void test_loop_guard_counts_the_same_exchange(void **state)
{
    struct fx *f = *state;
    struct lane *l = lane_get(&f->b, "79160000008");
    char reply[32];

    f->in.loop_replies_per_minute = 1000;
    f->in.loop_repeat_limit = 3;
    f->in.loop_cooldown_s = 600;
    for (int i = 0; i < 6; i++) {
        snprintf(reply, sizeof(reply), "question %d?", i);
        assert_int_equal(loop_guard(&f->b, l, "Да"), 0);
        loop_guard_replied(&f->b, l, "Да", reply);
    }
    /* the same reply twice, then another: the count starts again */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(loop_guard(&f->b, l, "Да"), 0);
        loop_guard_replied(&f->b, l, "Да", "confirm?");
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(loop_guard(&f->b, l, "Да"), 0);
        loop_guard_replied(&f->b, l, "Да", "booked");
    }
    /* another text in between, answered the same: the count starts again */
    assert_int_equal(loop_guard(&f->b, l, "ok"), 0);
    loop_guard_replied(&f->b, l, "ok", "booked");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(loop_guard(&f->b, l, "Да"), 0);
        loop_guard_replied(&f->b, l, "Да", "booked");
    }
    assert_int_equal(l->cooldown_until_ms, 0);
    assert_int_equal(loop_guard(&f->b, l, "Да"), 1);  /* the third in a row was the last */
    assert_true(l->cooldown_until_ms > 0);
    assert_int_equal(loop_guard(&f->b, l, "something else"), 1);  /* the cooldown */
}

/* A dead letter's error holds its reason cut at a whole character: a
 * failed status's title has no bound, and half a character is no text. */
static void test_give_up_cuts_the_reason_at_a_character(void **state)
{
    struct fx *f = *state;
    struct myna_outbox_rec r = { .state = MYNA_OUTBOX_PENDING, .attempts = 15 };
    char why[801];
    size_t n;

    for (n = 0; n + 2 < sizeof(why); n += 2)
        memcpy(why + n, "\xd0\xb6", 2);  /* U+0436 */
    why[n] = '\0';
    give_up(&f->b, &r, 131000, why);
    assert_int_equal(r.state, MYNA_OUTBOX_FAILED);
    assert_non_null(r.error);
    assert_int_equal(strncmp(r.error, "gave up after 15 sends: \xd0\xb6", 26), 0);
    n = strlen(r.error);
    assert_true(n < 320);
    assert_int_equal(myna_utf8_prefix(r.error, n), n);
    myna_outbox_rec_release(&r);
}

/* Meta rewrites Brazilian and Mexican mobiles (A4): the wa_id a message
 * comes from may lack the ninth digit (55 AA NNNNNNNN) or carry the 1
 * after 52 (52 1 NNNNNNNNNN) that the number an operator lists has or has
 * not. Either form names the same customer: a blocked number is never
 * answered, an allowed one is. The gate compared the digits as listed,
 * so a blocked Mexican number was answered and an allowed Brazilian one
 * was not. */
static void test_gate_knows_both_forms_of_a_number(void **state)
{
    struct fx *f = *state;
    char mx[] = "525512345678", br[] = "5521999998888";
    char *blocked[] = { mx }, *allowed[] = { br };

    f->in.blocked = blocked;
    f->in.n_blocked = 1;
    assert_int_equal(gate_refuses(&f->in, "525512345678"), 1);
    assert_int_equal(gate_refuses(&f->in, "5215512345678"), 1);  /* its wa_id */
    assert_int_equal(gate_refuses(&f->in, "79161234567"), 0);
    f->in.blocked = NULL;
    f->in.n_blocked = 0;
    f->in.allowed = allowed;
    f->in.n_allowed = 1;
    assert_int_equal(gate_refuses(&f->in, "5521999998888"), 0);
    assert_int_equal(gate_refuses(&f->in, "552199998888"), 0);  /* without the ninth digit */
    assert_int_equal(gate_refuses(&f->in, "5521999998887"), 1);
    assert_int_equal(gate_refuses(&f->in, "79161234567"), 1);
    f->in.allowed = NULL;
    f->in.n_allowed = 0;
}

/* A number blocked since its message came (the operator blocked it, and
 * the bot restarted with the new list) is not answered either: its turn
 * was pending, or its batch open and stored, from before. The gate was
 * only asked when the inbox was read, and the turn was answered. */
static void test_turn_of_a_number_blocked_since_is_not_answered(void **state)
{
    struct fx *f = *state;
    char contact[] = "79160000005", text[] = "Купите рекламу", kind[] = "text";
    char wamid[] = "wamid.spam-1", fallback[] = "Администратор скоро ответит.";
    char *blocked[] = { contact };
    struct myna_turn t = { .contact = contact, .kind = kind, .text = text,
                           .last_wamid = wamid };

    f->in.fallback_text = fallback;
    f->in.loop_replies_per_minute = 10;
    f->in.loop_repeat_limit = 3;
    t.created_ms = myna_wall_ms();
    assert_int_equal(myna_bot_turn_add(f->b.bs, &t, NULL, NULL), MYNA_OK);
    f->in.blocked = blocked;
    f->in.n_blocked = 1;
    on_turn_kick(-1, 0, &f->b);
    flush(&f->b, 0);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM turns WHERE state = 1"), 1);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM outbox"), 0);
    f->in.blocked = NULL;
    f->in.n_blocked = 0;
}

/* A fallback_text of "" means no fallback: the turn is done and nothing
 * is sent; one of only whitespace (ASCII or not) too, instead of a message
 * that shows empty. Nothing went, so the history has no reply either: an
 * empty assistant turn went to the model with the next prompt. */
static void test_blank_fallback_sends_nothing(void **state)
{
    static const char *const texts[] = { "", " \n\t", "\xc2\xa0\xe2\x80\x8b\xe3\x80\x80" };
    struct fx *f = *state;
    char contact[] = "79160000006", text[] = "Сколько стоит?", kind[] = "text";
    char wamid[16], fallback[32];

    f->in.fallback_text = fallback;
    f->in.loop_replies_per_minute = 10;
    f->in.loop_repeat_limit = 100;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct myna_turn t = { .contact = contact, .kind = kind, .text = text,
                               .last_wamid = wamid };
        snprintf(wamid, sizeof(wamid), "wamid.fb-%zu", i);
        snprintf(fallback, sizeof(fallback), "%s", texts[i]);
        t.created_ms = myna_wall_ms();
        assert_int_equal(myna_bot_turn_add(f->b.bs, &t, NULL, NULL), MYNA_OK);
        on_turn_kick(-1, 0, &f->b);
        flush(&f->b, 0);
        assert_int_equal(count_rows(f, "SELECT count(*) FROM turns WHERE state = 1"), (int)i + 1);
    }
    assert_int_equal(count_rows(f, "SELECT count(*) FROM outbox"), 0);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM history WHERE role = 'user'"), 3);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM history WHERE role = 'assistant'"), 0);
}

/* Past the rate limit, after its notice, a contact gets silence: no
 * message goes, so it draws no reply the loop guard should count. Each
 * silent turn took a place in the reply budget all the same, and a contact
 * writing a few more questions fell into a loop-guard cooldown too (and
 * after the rate window freed, still got no answer). */
static void test_rate_limit_silence_is_no_reply_for_the_loop_guard(void **state)
{
    struct fx *f = *state;
    char contact[] = "79160000007", kind[] = "text", prompt[] = "", text[32], wamid[32];
    struct myna_turn t = { .contact = contact, .kind = kind, .text = text, .last_wamid = wamid };
    int64_t id;
    struct lane *l;

    f->in.llm.enabled = 1;
    f->in.llm.system_prompt = prompt;
    f->in.rate_count = 1;
    f->in.rate_hours = 5;
    f->in.loop_replies_per_minute = 3;
    f->in.loop_repeat_limit = 3;
    f->in.loop_cooldown_s = 600;
    /* one answer of the model, then the notice: the limit is reached */
    for (int ai = 1; ai <= 2; ai++) {
        snprintf(text, sizeof(text), "earlier %d", ai);
        snprintf(wamid, sizeof(wamid), "wamid.rl-e%d", ai);
        t.created_ms = myna_wall_ms();
        assert_int_equal(myna_bot_turn_add(f->b.bs, &t, &id, NULL), MYNA_OK);
        assert_int_equal(myna_bot_turn_done(f->b.bs, id, ai, 0, 0, NULL), MYNA_OK);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(text, sizeof(text), "question %d", i);
        snprintf(wamid, sizeof(wamid), "wamid.rl-%d", i);
        t.created_ms = myna_wall_ms();
        assert_int_equal(myna_bot_turn_add(f->b.bs, &t, NULL, NULL), MYNA_OK);
        on_turn_kick(-1, 0, &f->b);
        flush(&f->b, 0);
    }
    assert_int_equal(count_rows(f, "SELECT count(*) FROM turns WHERE state = 1"), 7);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM outbox"), 0);
    l = lane_get(&f->b, contact);
    assert_non_null(l);
    assert_int_equal(l->cooldown_until_ms, 0);
    f->in.llm.enabled = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_that_cannot_begin_keeps_the_pace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_give_up_cuts_the_reason_at_a_character, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_split_before_its_pass_keeps_the_pace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_cut_that_cannot_begin_is_tried_within_a_second,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_guard_outlives_a_clock_set_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_guard_counts_the_same_exchange, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gate_knows_both_forms_of_a_number, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_turn_of_a_number_blocked_since_is_not_answered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_blank_fallback_sends_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_silence_is_no_reply_for_the_loop_guard,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
