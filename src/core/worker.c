/* worker.c - the slow-call thread and its hand-back to the loop.
 *
 * Nothing here is hot: a mutex guards two FIFO lists (queued, finished) and
 * an eventfd rings the loop when a job finishes. */
#include "core/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/banned.h"

struct list {
    struct myna_worker_job *head, *tail;
};

struct myna_worker {
    pthread_mutex_t mu;       /* guards queued, finished, stop */
    pthread_cond_t cv;        /* queued is not empty, or stop */
    struct list queued;
    struct list finished;
    int stop;
    pthread_t thread;
    int efd;                  /* worker -> loop doorbell */
    struct event *ev;
    size_t max_queued;
    size_t pending;           /* loop thread only: accepted, done not run */
};

static void push(struct list *l, struct myna_worker_job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static struct myna_worker_job *pop(struct list *l)
{
    struct myna_worker_job *j = l->head;

    if (j && (l->head = j->next) == NULL)
        l->tail = NULL;
    return j;
}

static void *worker_main(void *arg)
{
    struct myna_worker *w = arg;
    uint64_t one = 1;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct myna_worker_job *j = pop(&w->queued);
        if (j == NULL) {
            if (w->stop)
                break;
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        j->work(j);
        pthread_mutex_lock(&w->mu);
        push(&w->finished, j);
        while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Loop thread: done for every finished job, in order. */
static void deliver(struct myna_worker *w)
{
    struct myna_worker_job *j;
    struct list l;

    pthread_mutex_lock(&w->mu);
    l = w->finished;
    memset(&w->finished, 0, sizeof(w->finished));
    pthread_mutex_unlock(&w->mu);
    while ((j = pop(&l)) != NULL) {
        w->pending--;
        j->done(j);
    }
}

static void on_doorbell(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;

    (void)what;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    deliver(arg);
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
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if ((w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        myna_err_set(err, MYNA_EIO, "cannot create eventfd: %s", strerror(errno));
        goto fail;
    }
    w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, on_doorbell, w);
    if (w->ev == NULL || event_add(w->ev, NULL) != 0) {
        myna_err_set(err, MYNA_ENOMEM, "cannot add the worker's doorbell to the loop");
        goto fail;
    }
    if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
        myna_err_set(err, MYNA_EIO, "cannot start the worker thread: %s", strerror(rc));
        goto fail;
    }
    return w;
fail:
    if (w->ev)
        event_free(w->ev);
    if (w->efd >= 0)
        close(w->efd);
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
    push(&w->queued, job);
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
    event_free(w->ev);
    close(w->efd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
