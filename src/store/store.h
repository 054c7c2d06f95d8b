/* store.h - the one storage interface of Myna.
 *
 * A struct myna_store is one instance's data (inbox, statuses; later batches,
 * history, outbox). Backends: SQLite (store_sqlite.c, the default, one file
 * per instance, WAL) and later Redis; nothing above this header knows which
 * one it runs on. All calls are synchronous and short; a store handle is used
 * by one thread at a time (the ingress commits from its writer thread).
 *
 * Writes happen in transactions: begin, any number of put_*, then commit (all
 * or nothing) or rollback. put_* dedupe: an inbound message is kept once per
 * wamid, a status once per (wamid, status); a repeat is reported, not an
 * error. Reads are for the bot process, the admin API and tests. */
#ifndef MYNA_STORE_STORE_H
#define MYNA_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/record.h"

struct myna_store;

enum myna_store_sync {
    MYNA_SYNC_FULL = 0,   /* fsync at every commit: survives power loss */
    MYNA_SYNC_NORMAL = 1, /* survives a crash of Myna, not of the machine */
};

struct myna_store_opts {
    enum myna_store_sync sync;
    int busy_timeout_ms;  /* how long to wait for another process's lock */
    /* Log pages at which a commit copies the log back into the database (a
     * checkpoint); 0: SQLite's 1000. See store_sqlite.c. */
    int checkpoint_pages;
    /* 1: the file's inbox and statuses stay empty (a bot's store), so it
     * has no message numbers to keep: skip the mark of store_sqlite.c's
     * mark_writer, and the flushed commit it costs each handle. */
    int unnumbered;
    /* 1: open only a file that exists, MYNA_ENOTFOUND otherwise: a reader
     * (the admin API, a metrics scrape) must not create a store its owner
     * never made. Such a reader may open a file it cannot write; without
     * it, that file is refused (MYNA_ESTORE). */
    int existing;
};

/* put_* results (>= 0), or a negative MYNA_E* code. */
#define MYNA_STORE_NEW 1
#define MYNA_STORE_DUP 0

/* A stored inbound message as read back. Strings are owned by the row and
 * freed by myna_store_inbox_row_release. */
struct myna_inbox_row {
    /* Arrival order within the instance, from 1; never given twice, even
     * after lost records: it jumps after an unclean stop (store_sqlite.c). */
    int64_t seq;
    int64_t received_ms;   /* wall clock when the ingress accepted it */
    struct myna_inbound m; /* every string NULL or owned by the row */
};

struct myna_status_row {
    int64_t seq;
    int64_t received_ms;
    struct myna_status_rec s;
};

struct myna_store_ops {
    const char *name;
    int (*begin)(struct myna_store *st, struct myna_err *err);
    int (*put_inbound)(struct myna_store *st, const struct myna_inbound *m,
                       int64_t received_ms, struct myna_err *err);
    int (*put_status)(struct myna_store *st, const struct myna_status_rec *s,
                      int64_t received_ms, struct myna_err *err);
    int (*commit)(struct myna_store *st, struct myna_err *err);
    void (*rollback)(struct myna_store *st);
    int (*inbox_read)(struct myna_store *st, int64_t after_seq, size_t max,
                      struct myna_inbox_row *rows, size_t *n, struct myna_err *err);
    int (*inbox_find)(struct myna_store *st, const char *wamid,
                      struct myna_inbox_row *row, struct myna_err *err);
    int (*status_read)(struct myna_store *st, int64_t after_seq, size_t max,
                       struct myna_status_row *rows, size_t *n, struct myna_err *err);
    int (*count)(struct myna_store *st, int64_t *n_inbox, int64_t *n_status,
                 struct myna_err *err);
    void (*free)(struct myna_store *st);
};

/* Every backend's handle starts with this. */
struct myna_store {
    const struct myna_store_ops *ops;
};

/* Opens (creating and migrating as needed) the SQLite store at path.
 * NULL with err filled on failure: `cannot open store 'PATH': REASON`. */
struct myna_store *myna_store_open_sqlite(const char *path,
                                          const struct myna_store_opts *opts,
                                          struct myna_err *err);

/* NULL ok, cannot fail; rolls back an open transaction. */
void myna_store_free(struct myna_store *st);

static inline int myna_store_begin(struct myna_store *st, struct myna_err *err)
{
    return st->ops->begin(st, err);
}
/* MYNA_STORE_NEW, MYNA_STORE_DUP, or < 0. Only inside a transaction.
 * MYNA_EINVAL when wamid, contact or raw is NULL (or outside a transaction).
 * Any other failure spoils the transaction: commit then keeps nothing. */
static inline int myna_store_put_inbound(struct myna_store *st, const struct myna_inbound *m,
                                         int64_t received_ms, struct myna_err *err)
{
    return st->ops->put_inbound(st, m, received_ms, err);
}
static inline int myna_store_put_status(struct myna_store *st, const struct myna_status_rec *s,
                                        int64_t received_ms, struct myna_err *err)
{
    return st->ops->put_status(st, s, received_ms, err);
}
/* On failure the transaction is rolled back: nothing of it is kept. */
static inline int myna_store_commit(struct myna_store *st, struct myna_err *err)
{
    return st->ops->commit(st, err);
}
static inline void myna_store_rollback(struct myna_store *st)
{
    st->ops->rollback(st);
}
/* Reads up to max rows with seq > after_seq in seq order into rows[];
 * *n is how many. Each row must be released with myna_store_inbox_row_release
 * (statuses: myna_store_status_row_release). seq is the rowid: prune old rows
 * only, never the newest, or numbers could be reused under a reader. */
static inline int myna_store_inbox_read(struct myna_store *st, int64_t after_seq, size_t max,
                                        struct myna_inbox_row *rows, size_t *n,
                                        struct myna_err *err)
{
    return st->ops->inbox_read(st, after_seq, max, rows, n, err);
}
/* MYNA_OK and the row, or MYNA_ENOTFOUND. */
static inline int myna_store_inbox_find(struct myna_store *st, const char *wamid,
                                        struct myna_inbox_row *row, struct myna_err *err)
{
    return st->ops->inbox_find(st, wamid, row, err);
}
static inline int myna_store_status_read(struct myna_store *st, int64_t after_seq, size_t max,
                                         struct myna_status_row *rows, size_t *n,
                                         struct myna_err *err)
{
    return st->ops->status_read(st, after_seq, max, rows, n, err);
}
static inline int myna_store_count(struct myna_store *st, int64_t *n_inbox, int64_t *n_status,
                                   struct myna_err *err)
{
    return st->ops->count(st, n_inbox, n_status, err);
}

void myna_store_inbox_row_release(struct myna_inbox_row *row);
void myna_store_status_row_release(struct myna_status_row *row);

/* Internal to src/store: the SQLite connection of a SQLite store (NULL for
 * another backend), for the bot's state kept in the same file. */
struct sqlite3;
struct sqlite3 *myna_store__sqlite_db(struct myna_store *st);

/* For tests: makes the n-th put_* or commit from now on (n >= 1) fail once
 * with MYNA_ESTORE as if SQLite had failed; its transaction keeps nothing.
 * n = -1 turns it off. No-op on a handle of another backend. */
void myna_store_sqlite_fail_after(struct myna_store *st, int n);

#endif
