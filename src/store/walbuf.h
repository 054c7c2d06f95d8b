/* walbuf.h - a SQLite VFS that writes a commit's log in one system call.
 *
 * SQLite appends each frame of its write-ahead log with two write calls
 * (the frame's 24-byte header, then the page), so a commit of 40 pages
 * costs 80 pwrite calls before its fsync. Where a system call is dear (a
 * virtual machine), that is most of the commit's CPU.
 *
 * "myna-walbuf" is the default VFS with one change: for a WAL file, a run
 * of writes to consecutive offsets stays in memory and reaches the file as
 * one write before any other call on that file (xSync, xRead, xTruncate,
 * xFileSize, xFileControl, xLock, xUnlock, xClose) or when the run would
 * pass 127 KiB. Every other file (the database, its shared memory) is the
 * default VFS's own, untouched.
 *
 * The one exception is a rollback, which must drop the run unwritten (see
 * myna_walbuf_discard): every connection on this VFS calls that from its
 * rollback hook.
 *
 * Only for connections with PRAGMA synchronous=FULL. There, each commit
 * syncs the log before SQLite publishes the new frames in the WAL index,
 * so the run is on disk before another connection may look for it. Under
 * NORMAL, a commit publishes frames without syncing, and another process
 * would read bytes still in this one's memory. A write that fails when the
 * run is flushed fails the call that flushed it (the commit's xSync), so
 * the commit fails as it would have without the buffer. */
#ifndef MYNA_STORE_WALBUF_H
#define MYNA_STORE_WALBUF_H

#include <stdint.h>

struct sqlite3;

/* The VFS name for sqlite3_open_v2, registered on first use; NULL if it
 * cannot be (then open with the default VFS). Thread-safe. */
const char *myna_walbuf_vfs(void);

/* Drops the run of db's main log without writing it, when that log is a
 * "myna-walbuf" file; otherwise does nothing. Call it from the connection's
 * rollback hook (sqlite3_rollback_hook), which SQLite calls after every
 * rollback of a transaction: an explicit ROLLBACK, or its own after an
 * error.
 *
 * Why: a transaction that outgrows the page cache writes frames to the log
 * before its commit, and a rollback does no I/O on the log, so those frames
 * can still be in the run once the write lock is gone. Another connection
 * may then commit at the same offsets, and the next call on the file would
 * write the dead frames over that commit. Nothing committed is lost: under
 * synchronous=FULL a commit's xSync has written its frames already. */
void myna_walbuf_discard(struct sqlite3 *db);

/* Process-wide counts since start: xWrite calls taken into a run, and
 * writes that reached the default VFS. For tests and benchmarks. */
struct myna_walbuf_counts {
    uint64_t gathered;
    uint64_t written;
};
void myna_walbuf_counts(struct myna_walbuf_counts *out);

#endif
