/* committer.h - group commit for the ingress.
 *
 * The loop thread submits jobs (one per webhook request). One writer thread
 * takes what is queued, runs each job's prepare step (the ingress parses and
 * routes there, off the loop), writes the records of the group in one
 * transaction per store, commits, and hands the jobs back; the loop then
 * answers their requests. While the writer works on one group the loop keeps
 * reading and queueing the next, so neither parsing nor an fsync stalls the
 * loop, and concurrent requests share one commit.
 *
 * Ownership: a submitted job stays the caller's memory; the committer only
 * links it and fills rc and the *_new flags. done runs on the loop thread,
 * exactly once per submitted job, after which the committer no longer
 * touches the job. Stores are used only by the writer thread while it runs. */
#ifndef MYNA_MASTER_COMMITTER_H
#define MYNA_MASTER_COMMITTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "master/metrics.h"
#include "store/store.h"

struct event_base;
struct myna_committer;

struct myna_commit_part {
    struct myna_store *store;
    const struct myna_inbound *msgs;  /* borrowed */
    size_t n_msgs;
    uint8_t *msg_new;                 /* OUT: 1 stored, 0 duplicate */
    const struct myna_status_rec *sts;
    size_t n_sts;
    uint8_t *st_new;                  /* OUT */
    int committed;                    /* OUT: 1 once its store's commit holds it, even
                                       * when another part of the job failed */
};

struct myna_commit_job {
    struct myna_commit_job *next;     /* committer's link */
    struct myna_commit_part *parts;   /* set by the submitter or by prepare */
    size_t n_parts;
    int64_t received_ms;              /* stored with each record */
    int rc;                           /* OUT: MYNA_OK, prepare's error, or the store's
                                       * (a job split over stores may fail with some
                                       * parts committed: see committed) */
    /* May be NULL. Runs on the writer thread before the job is written; it
     * may fill parts. A non-OK return becomes rc and nothing is written. It
     * must not touch the loop's objects. */
    int (*prepare)(struct myna_commit_job *job, void *arg);
    void (*done)(struct myna_commit_job *job, void *arg);
    void *arg;
};

/* max_records bounds the records of one group (at least one job is taken). */
struct myna_committer *myna_committer_new(struct event_base *base, size_t max_records,
                                          struct myna_err *err);
/* Queues job; never fails. */
void myna_committer_submit(struct myna_committer *c, struct myna_commit_job *job);
/* Jobs submitted whose done has not run yet. */
size_t myna_committer_pending(const struct myna_committer *c);
/* A copy of the commit statistics. */
void myna_committer_stats(struct myna_committer *c, struct myna_commit_stats *out);
/* Lets the writer write everything queued, stops it, answers the last jobs
 * (done runs for each) and frees the committer. NULL ok. */
void myna_committer_free(struct myna_committer *c);

#endif
