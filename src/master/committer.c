/* committer.c - the ingress writer thread and its hand-off to the loop. */
#include "master/committer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/doorbell.h"
#include "core/log.h"
#include "core/util.h"
#include "core/banned.h"

/* The two hand-offs are lock-free stacks, so that neither thread ever
 * waits for the other on the hot path (on a small machine a thread holding
 * a shared lock is often preempted, and the other then sleeps on it):
 * - in: the loop pushes each submitted job; the writer takes them all at
 *   once and reverses them into arrival order;
 * - out: the writer pushes each committed group; the loop takes them all on
 *   the doorbell.
 * mu and cv only put an idle writer to sleep: the loop signals when it
 * finds `sleeping` set, and clears it. The writer's store of `sleeping`
 * before its last look at `in`, and the loop's push before its look at
 * `sleeping`, are both sequentially consistent, so one of the two sees the
 * other: no lost wake-up. */
struct myna_committer {
    _Atomic(struct myna_commit_job *) in;    /* submitted, newest first */
    _Atomic(struct myna_commit_job *) out;   /* committed, not answered */
    atomic_int sleeping;              /* the writer waits on cv */
    pthread_mutex_t mu;               /* with cv: the writer's sleep, stop */
    pthread_cond_t cv;
    int stop;                         /* under mu */
    pthread_t thread;
    struct myna_doorbell *bell;       /* writer -> loop */
    size_t max_records;
    size_t pending;                   /* loop thread only */
    pthread_mutex_t stats_mu;
    struct myna_commit_stats stats;   /* under stats_mu */
};

static size_t job_records(const struct myna_commit_job *job)
{
    size_t n = 0;

    for (size_t i = 0; i < job->n_parts; i++)
        n += job->parts[i].n_msgs + job->parts[i].n_sts;
    return n;
}

static int write_part(const struct myna_commit_part *p, int64_t received_ms,
                      struct myna_err *err)
{
    int rc;

    for (size_t i = 0; i < p->n_msgs; i++) {
        if ((rc = myna_store_put_inbound(p->store, &p->msgs[i], received_ms, err)) < 0)
            return rc;
        p->msg_new[i] = rc == MYNA_STORE_NEW;
    }
    for (size_t i = 0; i < p->n_sts; i++) {
        if ((rc = myna_store_put_status(p->store, &p->sts[i], received_ms, err)) < 0)
            return rc;
        p->st_new[i] = rc == MYNA_STORE_NEW;
    }
    return MYNA_OK;
}

/* One transaction for every part of the group that goes to store. */
static int commit_store(struct myna_store *store, struct myna_commit_job *group,
                        struct myna_err *err)
{
    int rc = myna_store_begin(store, err);

    for (struct myna_commit_job *j = group; rc == MYNA_OK && j; j = j->next)
        for (size_t i = 0; j->rc == MYNA_OK && rc == MYNA_OK && i < j->n_parts; i++)
            if (j->parts[i].store == store)
                rc = write_part(&j->parts[i], j->received_ms, err);
    if (rc == MYNA_OK)
        return myna_store_commit(store, err);
    myna_store_rollback(store);
    return rc;
}

/* After store's commit: its parts of the jobs it wrote are kept, whatever
 * becomes of their jobs' other parts. */
static void mark_committed(struct myna_commit_job *group, struct myna_store *store)
{
    for (struct myna_commit_job *j = group; j; j = j->next)
        for (size_t i = 0; j->rc == MYNA_OK && i < j->n_parts; i++)
            if (j->parts[i].store == store)
                j->parts[i].committed = 1;
}

static void mark_failed(struct myna_commit_job *group, struct myna_store *store, int rc)
{
    for (struct myna_commit_job *j = group; j; j = j->next)
        for (size_t i = 0; j->rc == MYNA_OK && i < j->n_parts; i++)
            if (j->parts[i].store == store)
                j->rc = rc;
}

/* The distinct stores of a group, in order of first appearance (*n of
 * them; NULL when none), or NULL with *n = SIZE_MAX when out of memory. A
 * group touches few stores (usually one), so a linear check is enough. */
static struct myna_store **group_stores(struct myna_commit_job *group, size_t *n)
{
    struct myna_store **v = NULL;
    size_t cap = 0;

    *n = 0;
    for (struct myna_commit_job *j = group; j; j = j->next)
        for (size_t i = 0; j->rc == MYNA_OK && i < j->n_parts; i++) {
            struct myna_store *st = j->parts[i].store;
            size_t k;
            for (k = 0; k < *n && v[k] != st; k++)
                ;
            if (k < *n)
                continue;
            if (*n == cap) {
                struct myna_store **nv;
                cap = cap ? cap * 2 : 4;
                if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
                    free(v);
                    *n = SIZE_MAX;
                    return NULL;
                }
                v = nv;
            }
            v[(*n)++] = st;
        }
    return v;
}

static void commit_group(struct myna_committer *c, struct myna_commit_job *group,
                         size_t n_records)
{
    int64_t t0 = myna_mono_us();
    size_t n_stores = 0;
    struct myna_store **stores = group_stores(group, &n_stores);
    int failed = 0;

    if (n_stores == SIZE_MAX) {  /* nothing is written, so no 200 may go */
        failed = 1;
        for (struct myna_commit_job *j = group; j; j = j->next)
            if (j->rc == MYNA_OK)
                j->rc = MYNA_ENOMEM;
    }
    for (size_t i = 0; stores != NULL && i < n_stores; i++) {
        struct myna_err err = MYNA_ERR_INIT;
        int rc = commit_store(stores[i], group, &err);

        if (rc == MYNA_OK) {
            mark_committed(group, stores[i]);
        } else {
            char q[600];
            failed = 1;
            mark_failed(group, stores[i], rc);
            MYNA_LOG(MYNA_ERROR, "commit_failed", "records=%zu err=%s", n_records,
                     myna_log_q(q, sizeof(q), err.msg));
        }
    }
    free(stores);
    if (n_stores > 0) {  /* a group of refused bodies wrote nothing; SIZE_MAX: a failure */
        pthread_mutex_lock(&c->stats_mu);
        myna_commit_stats_observe(&c->stats, myna_mono_us() - t0, n_records, failed);
        pthread_mutex_unlock(&c->stats_mu);
    }
}

/* Writer: puts a committed group (linked by next) on the out stack. */
static void hand_back(struct myna_committer *c, struct myna_commit_job *group)
{
    struct myna_commit_job *last = group, *top = atomic_load(&c->out);

    while (last->next)
        last = last->next;
    do
        last->next = top;
    while (!atomic_compare_exchange_weak(&c->out, &top, group));
}

/* Writer: everything submitted so far, oldest first, after *todo (jobs
 * taken before but left out of the last group). */
static void take_submitted(struct myna_committer *c, struct myna_commit_job **todo)
{
    struct myna_commit_job *j = atomic_exchange(&c->in, NULL), *fifo = NULL, **end;

    while (j) {
        struct myna_commit_job *next = j->next;
        j->next = fifo;
        fifo = j;
        j = next;
    }
    for (end = todo; *end; end = &(*end)->next)
        ;
    *end = fifo;
}

/* Writer: prepares jobs off the front of *todo until the group holds
 * max_records records or *todo is empty. */
static struct myna_commit_job *take_group(struct myna_committer *c,
                                          struct myna_commit_job **todo, size_t *n_records)
{
    struct myna_commit_job *group = NULL, **tail = &group;

    *n_records = 0;
    while (*todo != NULL && *n_records < c->max_records) {
        struct myna_commit_job *j = *todo;

        *todo = j->next;
        j->next = NULL;
        j->rc = j->prepare ? j->prepare(j, j->arg) : MYNA_OK;
        for (size_t i = 0; j->rc == MYNA_OK && i < j->n_parts; i++)
            j->parts[i].committed = 0;
        if (j->rc == MYNA_OK)
            *n_records += job_records(j);
        *tail = j;
        tail = &j->next;
    }
    return group;
}

/* Writer: sleeps until a job is submitted; 0 when stopped with none. */
static int wait_for_jobs(struct myna_committer *c)
{
    int more;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        atomic_store(&c->sleeping, 1);  /* before the look at in: see the top */
        if (atomic_load(&c->in) != NULL || c->stop)
            break;
        pthread_cond_wait(&c->cv, &c->mu);
    }
    atomic_store(&c->sleeping, 0);
    more = atomic_load(&c->in) != NULL;
    pthread_mutex_unlock(&c->mu);
    return more;
}

static void *writer_main(void *arg)
{
    struct myna_committer *c = arg;
    struct myna_commit_job *todo = NULL;

    for (;;) {
        struct myna_commit_job *group;
        size_t n;

        take_submitted(c, &todo);
        if (todo == NULL) {
            if (!wait_for_jobs(c))
                break;  /* stop requested and nothing left to write */
            continue;
        }
        group = take_group(c, &todo, &n);
        commit_group(c, group, n);
        hand_back(c, group);
        myna_doorbell_ring(c->bell);
    }
    myna_arena_cache_release();
    return NULL;
}

/* Loop thread: answer every job the writer handed back. */
static void deliver(void *arg)
{
    struct myna_committer *c = arg;
    struct myna_commit_job *j, *next;

    for (j = atomic_exchange(&c->out, NULL); j; j = next) {
        next = j->next;
        c->pending--;
        j->done(j, j->arg);
    }
}

struct myna_committer *myna_committer_new(struct event_base *base, size_t max_records,
                                          struct myna_err *err)
{
    struct myna_committer *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    c->max_records = max_records ? max_records : 1;
    atomic_init(&c->in, NULL);
    atomic_init(&c->out, NULL);
    atomic_init(&c->sleeping, 0);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_mutex_init(&c->stats_mu, NULL);
    if ((c->bell = myna_doorbell_new(base, deliver, c, err)) == NULL)
        goto fail;
    if ((rc = pthread_create(&c->thread, NULL, writer_main, c)) != 0) {
        myna_err_set(err, MYNA_EIO, "cannot start the writer thread: %s", strerror(rc));
        goto fail;
    }
    return c;
fail:
    myna_doorbell_free(c->bell);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->stats_mu);
    free(c);
    return NULL;
}

void myna_committer_submit(struct myna_committer *c, struct myna_commit_job *job)
{
    struct myna_commit_job *top = atomic_load(&c->in);

    job->rc = MYNA_EAGAIN;
    do
        job->next = top;
    while (!atomic_compare_exchange_weak(&c->in, &top, job));
    c->pending++;
    /* One wake-up per sleep. Taking mu waits until the writer is inside
     * cond_wait; signalling after unlocking lets it take mu at once. */
    if (atomic_exchange(&c->sleeping, 0)) {
        pthread_mutex_lock(&c->mu);
        pthread_mutex_unlock(&c->mu);
        pthread_cond_signal(&c->cv);
    }
}

size_t myna_committer_pending(const struct myna_committer *c)
{
    return c->pending;
}

void myna_committer_stats(struct myna_committer *c, struct myna_commit_stats *out)
{
    pthread_mutex_lock(&c->stats_mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->stats_mu);
}

void myna_committer_free(struct myna_committer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);  /* the writer empties the queue before it ends */
    deliver(c);
    myna_doorbell_free(c->bell);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->stats_mu);
    free(c);
}
