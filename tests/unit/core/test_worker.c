/* test_worker.c - slow calls off the loop: work runs on another thread, done
 * on the loop in submission order; the queue is bounded; free runs what is
 * queued and answers every accepted job; the loop keeps running meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/worker.h"

struct job {
    struct myna_worker_job w;
    pthread_t work_thread;
    int work_calls, done_calls, order;
    int *next_order;
    atomic_int *gate;            /* NULL, or work waits until it is set */
    struct event_base *base;
    int *remaining;              /* done breaks the loop when it reaches 0 */
    int done_on_loop;
};

static pthread_t loop_thread;

static void work(struct myna_worker_job *w)
{
    struct job *j = (struct job *)w;

    j->work_thread = pthread_self();
    j->work_calls++;
    while (j->gate && !atomic_load(j->gate))
        usleep(1000);
}

static void done(struct myna_worker_job *w)
{
    struct job *j = (struct job *)w;

    j->done_calls++;
    j->done_on_loop = pthread_equal(pthread_self(), loop_thread);
    j->order = (*j->next_order)++;
    if (j->remaining && --*j->remaining == 0)
        event_base_loopbreak(j->base);
}

static void init(struct job *j, struct event_base *base, int *next_order, int *remaining)
{
    memset(j, 0, sizeof(*j));
    j->w.work = work;
    j->w.done = done;
    j->base = base;
    j->next_order = next_order;
    j->remaining = remaining;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until the jobs are done or 10 s pass; 1 if it timed out. */
static int run(struct event_base *base)
{
    int timed_out = 0;
    struct timeval tv = { 10, 0 };
    struct event *t = evtimer_new(base, on_timeout, &timed_out);

    evtimer_add(t, &tv);
    event_base_dispatch(base);
    event_free(t);
    return timed_out;
}

static void work_off_loop_done_on_loop_in_order(void **state)
{
    struct event_base *base = event_base_new();
    struct myna_worker *w = myna_worker_new(base, 8, NULL);
    struct job jobs[5];
    int next = 0, remaining = 5;

    (void)state;
    loop_thread = pthread_self();
    assert_non_null(w);
    for (int i = 0; i < 5; i++) {
        init(&jobs[i], base, &next, &remaining);
        assert_int_equal(myna_worker_submit(w, &jobs[i].w), MYNA_OK);
    }
    assert_int_equal(myna_worker_pending(w), 5);
    assert_int_equal(run(base), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(jobs[i].work_calls, 1);
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(jobs[i].order, i);
        assert_false(pthread_equal(jobs[i].work_thread, loop_thread));
        assert_true(jobs[i].done_on_loop);
    }
    assert_int_equal(myna_worker_pending(w), 0);
    myna_worker_free(w);
    event_base_free(base);
}

static void full_queue_refuses_until_a_job_is_done(void **state)
{
    struct event_base *base = event_base_new();
    struct myna_worker *w = myna_worker_new(base, 2, NULL);
    atomic_int gate = 0;
    struct job a, b, c, d;
    int next = 0, remaining = 2;

    (void)state;
    loop_thread = pthread_self();
    init(&a, base, &next, &remaining);
    init(&b, base, &next, &remaining);
    init(&c, base, &next, NULL);
    init(&d, base, &next, NULL);
    a.gate = &gate;  /* the worker is busy until the gate opens */
    assert_int_equal(myna_worker_submit(w, &a.w), MYNA_OK);
    assert_int_equal(myna_worker_submit(w, &b.w), MYNA_OK);
    assert_int_equal(myna_worker_submit(w, &c.w), MYNA_EAGAIN);
    assert_int_equal(c.work_calls + c.done_calls, 0);
    atomic_store(&gate, 1);
    assert_int_equal(run(base), 0);
    assert_int_equal(a.done_calls + b.done_calls, 2);
    assert_int_equal(myna_worker_submit(w, &d.w), MYNA_OK);  /* room again */
    myna_worker_free(w);
    assert_int_equal(d.done_calls, 1);
    assert_int_equal(c.done_calls, 0);
    event_base_free(base);
}

static void free_runs_and_answers_what_is_queued(void **state)
{
    struct event_base *base = event_base_new();
    struct myna_worker *w = myna_worker_new(base, 16, NULL);
    struct job jobs[10];
    int next = 0;

    (void)state;
    loop_thread = pthread_self();
    for (int i = 0; i < 10; i++) {
        init(&jobs[i], base, &next, NULL);
        assert_int_equal(myna_worker_submit(w, &jobs[i].w), MYNA_OK);
    }
    myna_worker_free(w);  /* the loop never ran */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(jobs[i].work_calls, 1);
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(jobs[i].order, i);
    }
    myna_worker_free(NULL);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(work_off_loop_done_on_loop_in_order),
        cmocka_unit_test(full_queue_refuses_until_a_job_is_done),
        cmocka_unit_test(free_runs_and_answers_what_is_queued),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
