/* worker.h - one thread for the slow calls that must not stall the loop.
 *
 * A password hash costs tens of milliseconds by design; on the loop that
 * would be tens of milliseconds in which no webhook is answered. The loop
 * submits a job instead: work runs on the worker thread, then done runs on
 * the loop thread, which may answer a request and use the loop's objects.
 *
 * The queue is bounded: a full queue refuses the job (MYNA_EAGAIN), so a
 * burst of slow requests is answered "busy" rather than piling up memory
 * and latency. Jobs run one at a time in submission order.
 *
 * Ownership: a submitted job stays the caller's memory. work must touch
 * only the job; done runs exactly once per accepted job, after which the
 * worker no longer touches it (done may free it). */
#ifndef MYNA_CORE_WORKER_H
#define MYNA_CORE_WORKER_H

#include <stddef.h>
#include <sys/queue.h>

#include "core/err.h"

struct event_base;
struct myna_worker;

struct myna_worker_job {
    STAILQ_ENTRY(myna_worker_job) link;         /* the worker's */
    void (*work)(struct myna_worker_job *job);  /* on the worker thread */
    void (*done)(struct myna_worker_job *job);  /* on the loop thread */
};

/* max_queued (at least 1) bounds the jobs accepted and not yet done. */
struct myna_worker *myna_worker_new(struct event_base *base, size_t max_queued,
                                    struct myna_err *err);
/* Queues job: MYNA_OK, or MYNA_EAGAIN when max_queued jobs are waiting
 * (job is then untouched and done will not run). */
int myna_worker_submit(struct myna_worker *w, struct myna_worker_job *job);
/* Jobs accepted whose done has not run yet. */
size_t myna_worker_pending(const struct myna_worker *w);
/* Runs the work queued, runs done for every accepted job, stops the thread
 * and frees the worker. NULL ok. */
void myna_worker_free(struct myna_worker *w);

#endif
