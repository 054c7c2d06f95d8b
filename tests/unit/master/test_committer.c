/* test_committer.c - group commit: jobs from the loop are written by the
 * writer thread and handed back on the loop; a failing store fails only the
 * jobs that touch it; free waits for the writer and answers everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../tmpdir.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/committer.h"
#include "store/store.h"

struct fixture {
    char dir[64];
    struct event_base *base;
    struct myna_store *a, *b;
};

struct job_box {
    struct myna_commit_job job;
    struct myna_commit_part parts[2];
    struct myna_inbound msg;
    char wamid[32];
    uint8_t msg_new[1], st_new[1];
    int done_calls;
    struct event_base *base;
    int *remaining;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct myna_store_opts opts = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 1000 };
    char path[128];

    if (test_tmpdir(f->dir, sizeof(f->dir), "committer") != 0)
        return -1;
    f->base = event_base_new();
    snprintf(path, sizeof(path), "%s/a.db", f->dir);
    f->a = myna_store_open_sqlite(path, &opts, NULL);
    snprintf(path, sizeof(path), "%s/b.db", f->dir);
    f->b = myna_store_open_sqlite(path, &opts, NULL);
    *state = f;
    return f->base && f->a && f->b ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc;

    myna_store_free(f->a);
    myna_store_free(f->b);
    event_base_free(f->base);
    rc = test_rmtree(f->dir);
    free(f);
    return rc;
}

static void on_done(struct myna_commit_job *job, void *arg)
{
    struct job_box *b = arg;

    assert_ptr_equal(job, &b->job);
    b->done_calls++;
    if (--*b->remaining == 0)
        event_base_loopbreak(b->base);
}

/* A job with one message in each listed store. */
static void box_init(struct job_box *b, struct event_base *base, int *remaining, int i,
                     struct myna_store *s1, struct myna_store *s2)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->wamid, sizeof(b->wamid), "wamid.%d", i);
    b->msg.wamid = b->wamid;
    b->msg.contact = "79161234567";
    b->msg.type = MYNA_MSG_TEXT;
    b->msg.text = "hello";
    b->msg.raw = "{}";
    b->msg.raw_len = 2;
    b->parts[0] = (struct myna_commit_part){ s1, &b->msg, 1, b->msg_new, NULL, 0, b->st_new, 0 };
    b->job.parts = b->parts;
    b->job.n_parts = 1;
    if (s2) {
        b->parts[1] = b->parts[0];
        b->parts[1].store = s2;
        b->job.n_parts = 2;
    }
    b->job.done = on_done;
    b->job.arg = b;
    b->base = base;
    b->remaining = remaining;
}

static int64_t count(struct myna_store *st)
{
    int64_t n = -1, s = -1;

    assert_int_equal(myna_store_count(st, &n, &s, NULL), MYNA_OK);
    return n;
}

static void test_many_jobs_grouped_and_answered_once(void **state)
{
    struct fixture *f = *state;
    struct myna_commit_stats stats;
    struct myna_committer *c = myna_committer_new(f->base, 16, NULL);
    enum { N = 200 };
    static struct job_box boxes[N];
    int remaining = N;

    assert_non_null(c);
    for (int i = 0; i < N; i++) {
        box_init(&boxes[i], f->base, &remaining, i % 150, f->a, NULL);  /* 50 repeats */
        myna_committer_submit(c, &boxes[i].job);
    }
    assert_int_equal(myna_committer_pending(c), N);
    event_base_dispatch(f->base);
    assert_int_equal(remaining, 0);
    assert_int_equal(myna_committer_pending(c), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(boxes[i].done_calls, 1);
        assert_int_equal(boxes[i].job.rc, MYNA_OK);
        assert_int_equal(boxes[i].msg_new[0], i < 150);
    }
    assert_int_equal(count(f->a), 150);
    myna_committer_stats(c, &stats);
    /* groups of at most 16 records: at least 13 commits, at most one per job */
    assert_true(stats.commits >= N / 16 && stats.commits <= N);
    assert_int_equal(stats.records, N);
    assert_int_equal(stats.failed, 0);
    myna_committer_free(c);
}

struct feeder {
    struct myna_committer *c;
    struct job_box *boxes;
    int n, next;
    struct event *ev;
};

/* Submits a few jobs per loop turn, so that the writer takes them in many
 * small batches while it commits. */
static void feed(evutil_socket_t fd, short what, void *arg)
{
    struct feeder *fe = arg;
    struct timeval now = { 0, 0 };

    (void)fd;
    (void)what;
    for (int k = 0; k < 3 && fe->next < fe->n; k++)
        myna_committer_submit(fe->c, &fe->boxes[fe->next++].job);
    if (fe->next < fe->n)
        evtimer_add(fe->ev, &now);
}

/* Whatever the batches, records are stored in the order of submission:
 * the inbox's seq is the order the bot answers in. */
static void test_order_of_submission_kept(void **state)
{
    struct fixture *f = *state;
    struct myna_committer *c = myna_committer_new(f->base, 7, NULL);
    enum { N = 300 };
    static struct job_box boxes[N];
    struct feeder fe = { c, boxes, N, 0, NULL };
    struct myna_inbox_row rows[N];
    struct timeval now = { 0, 0 };
    size_t n = 0;
    int remaining = N;

    assert_non_null(c);
    for (int i = 0; i < N; i++)
        box_init(&boxes[i], f->base, &remaining, i, f->a, NULL);
    fe.ev = evtimer_new(f->base, feed, &fe);
    evtimer_add(fe.ev, &now);
    event_base_dispatch(f->base);
    assert_int_equal(remaining, 0);
    assert_int_equal(myna_store_inbox_read(f->a, 0, N, rows, &n, NULL), MYNA_OK);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(boxes[i].done_calls, 1);
        assert_string_equal(rows[i].m.wamid, boxes[i].wamid);
        myna_store_inbox_row_release(&rows[i]);
    }
    event_free(fe.ev);
    myna_committer_free(c);
}

static void test_store_failure_fails_only_its_jobs(void **state)
{
    struct fixture *f = *state;
    struct myna_committer *c = myna_committer_new(f->base, 1000, NULL);
    struct job_box ja, jb, jab;
    int remaining = 3;

    assert_non_null(c);
    box_init(&ja, f->base, &remaining, 1, f->a, NULL);
    box_init(&jb, f->base, &remaining, 2, f->b, NULL);
    box_init(&jab, f->base, &remaining, 3, f->a, f->b);
    myna_store_sqlite_fail_after(f->b, 1);  /* b's next write fails */
    myna_committer_submit(c, &ja.job);
    myna_committer_submit(c, &jb.job);
    myna_committer_submit(c, &jab.job);
    event_base_dispatch(f->base);
    assert_int_equal(ja.job.rc, MYNA_OK);
    assert_int_not_equal(jb.job.rc, MYNA_OK);
    assert_int_not_equal(jab.job.rc, MYNA_OK);  /* part of it could not be kept */
    assert_int_equal(count(f->b), 0);           /* nothing of b's transaction */
    /* what a's commit kept is told, also of the job that failed in b */
    assert_int_equal(ja.parts[0].committed, 1);
    assert_int_equal(jb.parts[0].committed, 0);
    assert_int_equal(jab.parts[0].committed, 1);
    assert_int_equal(jab.parts[1].committed, 0);
    assert_int_equal(count(f->a), 2);
    /* a retry of the failed jobs succeeds and does not duplicate a's part */
    myna_store_sqlite_fail_after(f->b, -1);
    remaining = 2;
    box_init(&jb, f->base, &remaining, 2, f->b, NULL);
    box_init(&jab, f->base, &remaining, 3, f->a, f->b);
    myna_committer_submit(c, &jb.job);
    myna_committer_submit(c, &jab.job);
    event_base_dispatch(f->base);
    assert_int_equal(jb.job.rc, MYNA_OK);
    assert_int_equal(jab.job.rc, MYNA_OK);
    assert_int_equal(count(f->a), 2);
    assert_int_equal(count(f->b), 2);
    myna_committer_free(c);
}

static void test_free_answers_everything_queued(void **state)
{
    struct fixture *f = *state;
    struct myna_committer *c = myna_committer_new(f->base, 4, NULL);
    static struct job_box boxes[50];
    int remaining = 50;

    assert_non_null(c);
    for (int i = 0; i < 50; i++) {
        box_init(&boxes[i], f->base, &remaining, 1000 + i, f->a, NULL);
        myna_committer_submit(c, &boxes[i].job);
    }
    myna_committer_free(c);  /* no loop run: free must still answer each once */
    for (int i = 0; i < 50; i++) {
        assert_int_equal(boxes[i].done_calls, 1);
        assert_int_equal(boxes[i].job.rc, MYNA_OK);
    }
    assert_int_equal(count(f->a), 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_jobs_grouped_and_answered_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_of_submission_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_fails_only_its_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_answers_everything_queued, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
