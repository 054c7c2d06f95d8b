/* test_pace.c - the sender's slots (bot/pace.h): a sender with a backlog,
 * woken late by random amounts as a busy loop wakes it, sends no more than
 * the rate set over a long stretch, and no more than the rate plus the
 * catch-up in any one second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "bot/pace.h"

static void test_gap_rounds_up(void **state)
{
    (void)state;
    assert_int_equal(myna_pace_gap_us(80), 12500);
    assert_int_equal(myna_pace_gap_us(1000), 1000);
    assert_int_equal(myna_pace_gap_us(3), 333334);
    assert_int_equal(myna_pace_gap_us(501), 1997);
    assert_int_equal(myna_pace_gap_us(0.1), 10000000);
}

/* Sends made in [0, seconds) by a sender that always has work, runs when
 * its slot is due plus up to max_late_us, and sends every slot that is
 * due when it runs. per_second gets the busiest second's count. */
static int64_t simulate(double mps, int seconds, int64_t max_late_us, int64_t *per_second)
{
    int64_t gap = myna_pace_gap_us(mps), next = 0, now = 0, sent = 0;
    int64_t cap = (int64_t)(mps * seconds) * 2 + 64;  /* room for a sender twice too fast */
    int64_t *at = calloc((size_t)cap, sizeof(*at));
    unsigned seed = 7;

    assert_non_null(at);
    while (now < (int64_t)seconds * 1000000) {
        next = myna_pace_slot_us(next, now, gap);  /* as the sender does first */
        while (next <= now && sent < cap) {
            at[sent++] = now;
            next = myna_pace_next_us(next, now, gap);
        }
        now = next + (max_late_us > 0 ? rand_r(&seed) % max_late_us : 0);
    }
    *per_second = 0;
    for (int64_t i = 0, j = 0; i < sent; i++) {  /* sends in [at[i], at[i] + 1 s) */
        while (j < sent && at[j] < at[i] + 1000000)
            j++;
        if (j - i > *per_second)
            *per_second = j - i;
    }
    free(at);
    return sent;
}

static void test_never_faster_than_set(void **state)
{
    static const double rates[] = { 0.5, 3, 20, 80, 150, 333, 501, 999, 1000 };

    (void)state;
    for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
        double mps = rates[k];
        int64_t gap = myna_pace_gap_us(mps), burst = MYNA_PACE_CATCH_UP_US / gap + 1;
        for (int64_t late = 0; late <= 4000; late += 2000) {
            int64_t busiest, sent = simulate(mps, 20, late, &busiest);
            if ((double)sent > mps * 20 + 1)
                fail_msg("%g/s, late up to %lld us: %lld sends in 20 s", mps, (long long)late,
                         (long long)sent);
            if ((double)busiest > mps + (double)burst)
                fail_msg("%g/s, late up to %lld us: %lld sends in one second", mps,
                         (long long)late, (long long)busiest);
            /* and the catch-up keeps the rate when the loop is late */
            if ((double)sent < mps * 20 * 0.98 - 1)
                fail_msg("%g/s, late up to %lld us: only %lld sends in 20 s", mps,
                         (long long)late, (long long)sent);
        }
    }
}

/* Sends made in [from_us, from_us + 1 s) by a sender with a backlog that
 * runs whenever a slot is due, starting with the slot next. */
static int64_t one_second(int64_t gap, int64_t next, int64_t from_us)
{
    int64_t now = from_us, sent = 0;

    while (now < from_us + 1000000) {
        next = myna_pace_slot_us(next, now, gap);
        while (next <= now) {
            sent++;
            next = myna_pace_next_us(next, now, gap);
        }
        now = next;
    }
    return sent;
}

/* The wall clock set back (an hour, a second) does not hold the sends
 * until it is where it was; they go on at the rate set. */
static void test_clock_set_back_keeps_sending(void **state)
{
    static const int64_t back_us[] = { 3600000000LL, 1000000, 60000 };
    int64_t gap = myna_pace_gap_us(20), t = 7200000000LL;
    int64_t next = myna_pace_next_us(t, t, gap);  /* a send just made at t */

    (void)state;
    assert_int_equal(myna_pace_slot_us(next, t, gap), next);
    assert_int_equal(myna_pace_slot_us(next, t + 1, gap), next);
    for (size_t i = 0; i < sizeof(back_us) / sizeof(back_us[0]); i++) {
        int64_t sent = one_second(gap, next, t - back_us[i]);
        if (sent < 20 || sent > 21)
            fail_msg("clock set back %lld us: %lld sends in the next second",
                     (long long)back_us[i], (long long)sent);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gap_rounds_up),
        cmocka_unit_test(test_never_faster_than_set),
        cmocka_unit_test(test_clock_set_back_keeps_sending),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
