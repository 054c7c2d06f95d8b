/* worker.c - the slow-call thread and its hand-back to the loop.
 *
 * Nothing here is hot: a mutex guards two FIFO lists (queued, finished) and
 * a doorbell wakes the loop when a job finishes. */
#include "core/worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/doorbell.h"
#include "core/banned.h"

STAILQ_HEAD(jobs, myna_worker_job);

struct myna_worker {
    pthread_mutex_t mu;       /* guards queued, finished, stop */
    pthread_cond_t cv;        /* queued is not empty, or stop */
    struct jobs queued;
    struct jobs finished;
    int stop;
    pthread_t thread;
    struct myna_doorbell *bell;  /* worker -> loop */
    size_t max_queued;
    size_t pending;           /* loop thread only: accepted, done not run */
};

static void *worker_main(void *arg)
{
    struct myna_worker *w = arg;
    struct myna_worker_job *j;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        if ((j = STAILQ_FIRST(&w->queued)) == NULL) {
            if (w->stop)
                break;
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        STAILQ_REMOVE_HEAD(&w->queued, link);
        pthread_mutex_unlock(&w->mu);
        j->work(j);
        pthread_mutex_lock(&w->mu);
        STAILQ_INSERT_TAIL(&w->finished, j, link);
        myna_doorbell_ring(w->bell);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Loop thread: done for every finished job, in order. */
static void deliver(void *arg)
{
    struct myna_worker *w = arg;
    struct myna_worker_job *j;
    struct jobs l = STAILQ_HEAD_INITIALIZER(l);

    pthread_mutex_lock(&w->mu);
    STAILQ_CONCAT(&l, &w->finished);
    pthread_mutex_unlock(&w->mu);
    while ((j = STAILQ_FIRST(&l)) != NULL) {
        STAILQ_REMOVE_HEAD(&l, link);
        w->pending--;
        j->done(j);
    }
}

struct myna_worker *myna_worker_new(struct event_base *base, size_t max_queued,
                                    struct myna_err *err)
{
    struct myna_worker *w = calloc(1, sizeof(*w));
    int rc;

    if (w == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    w->max_queued = max_queued ? max_queued : 1;
    STAILQ_INIT(&w->queued);
    STAILQ_INIT(&w->finished);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if ((w->bell = myna_doorbell_new(base, deliver, w, err)) == NULL)
        goto fail;
    if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
        myna_err_set(err, MYNA_EIO, "cannot start the worker thread: %s", strerror(rc));
        goto fail;
    }
    return w;
fail:
    myna_doorbell_free(w->bell);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL;
}

int myna_worker_submit(struct myna_worker *w, struct myna_worker_job *job)
{
    if (w->pending >= w->max_queued)
        return MYNA_EAGAIN;
    w->pending++;
    pthread_mutex_lock(&w->mu);
    STAILQ_INSERT_TAIL(&w->queued, job, link);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return MYNA_OK;
}

size_t myna_worker_pending(const struct myna_worker *w)
{
    return w->pending;
}

void myna_worker_free(struct myna_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);  /* the thread empties the queue before it ends */
    deliver(w);
    myna_doorbell_free(w->bell);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
