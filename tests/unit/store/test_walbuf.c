/* test_walbuf.c - the "myna-walbuf" VFS: a commit's log reaches the file in
 * one write, another connection sees every commit at once, the file is a
 * sound database afterwards, runs past the buffer still arrive whole, and
 * a write that fails when the run is flushed fails the commit instead of
 * losing rows silently. Plain sqlite3 connections with the default VFS
 * check from outside. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "../child.h"
#include "../tmpdir.h"
#include <sqlite3.h>

#include "store/walbuf.h"
#include "core/banned.h"

#define ROW_BYTES 1500

static char g_dir[64], g_path[128];

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir(g_dir, sizeof(g_dir), "test-walbuf") != 0)
        return -1;
    snprintf(g_path, sizeof(g_path), "%s/w.db", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_rmtree(g_dir);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static void rolled_back(void *db)
{
    myna_walbuf_discard(db);
}

/* A connection through the VFS under test, as the store opens one. */
static sqlite3 *open_walbuf(void)
{
    sqlite3 *db = NULL;
    const char *vfs = myna_walbuf_vfs();

    assert_non_null(vfs);
    assert_int_equal(sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    sqlite3_rollback_hook(db, rolled_back, db);
    exec_ok(db, "PRAGMA journal_mode=WAL");
    exec_ok(db, "PRAGMA synchronous=FULL");
    exec_ok(db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    return db;
}

static sqlite3 *open_plain(void)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

/* BEGIN, then n rows of ROW_BYTES; SQLite's result of the last insert
 * (SQLITE_DONE when all went in). The transaction stays open. */
static int insert_uncommitted(sqlite3 *db, int n)
{
    sqlite3_stmt *st = NULL;
    char body[ROW_BYTES + 1];
    int rc = SQLITE_DONE;

    exec_ok(db, "BEGIN");
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(body) VALUES(?)", -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; rc == SQLITE_DONE && i < n; i++) {
        for (size_t k = 0; k < ROW_BYTES; k++)
            body[k] = (char)('a' + (i * 7 + (int)k) % 26);  /* no page compresses to another */
        body[ROW_BYTES] = '\0';
        sqlite3_bind_text(st, 1, body, ROW_BYTES, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* n rows of ROW_BYTES in one transaction; SQLite's result of COMMIT. */
static int insert_rows(sqlite3 *db, int n)
{
    int rc = insert_uncommitted(db, n);

    if (rc != SQLITE_DONE) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int64_t count_rows(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t n;

    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void test_registered_beside_default(void **state)
{
    const char *name = myna_walbuf_vfs();

    (void)state;
    assert_non_null(name);
    assert_string_equal(name, "myna-walbuf");
    assert_ptr_equal(myna_walbuf_vfs(), name);  /* registered once */
    assert_non_null(sqlite3_vfs_find(name));
    assert_string_not_equal(sqlite3_vfs_find(NULL)->zName, name);  /* not made the default */
}

static void test_commit_is_one_write(void **state)
{
    sqlite3 *db = open_walbuf();
    struct myna_walbuf_counts a, b;

    (void)state;
    assert_int_equal(insert_rows(db, 1), SQLITE_OK);  /* the log's header is written */
    myna_walbuf_counts(&a);
    assert_int_equal(insert_rows(db, 40), SQLITE_OK);  /* about 20 pages, 80 KB */
    myna_walbuf_counts(&b);
    assert_true(b.gathered - a.gathered >= 2 * 20);   /* a header and a page per frame */
    assert_int_equal(b.written - a.written, 1);
    sqlite3_close(db);
}

static void test_other_connection_sees_each_commit(void **state)
{
    sqlite3 *w = open_walbuf(), *r = open_plain();

    (void)state;
    for (int i = 1; i <= 20; i++) {
        assert_int_equal(insert_rows(w, i), SQLITE_OK);
        assert_int_equal(count_rows(r), (int64_t)i * (i + 1) / 2);
    }
    sqlite3_close(r);
    sqlite3_close(w);
}

static void test_sound_after_reopen(void **state)
{
    sqlite3 *db = open_walbuf(), *r;
    sqlite3_stmt *st = NULL;

    (void)state;
    for (int i = 0; i < 30; i++)
        assert_int_equal(insert_rows(db, 25), SQLITE_OK);
    exec_ok(db, "DELETE FROM t WHERE id % 3 = 0");  /* rewrites pages already in the log */
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    r = open_plain();
    assert_int_equal(count_rows(r), 750 - 250);
    assert_int_equal(sqlite3_prepare_v2(r, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(r);
}

static void test_run_past_buffer_arrives_whole(void **state)
{
    sqlite3 *db = open_walbuf(), *r;
    struct myna_walbuf_counts a, b;

    (void)state;
    myna_walbuf_counts(&a);
    assert_int_equal(insert_rows(db, 600), SQLITE_OK);  /* about 1 MB of log */
    myna_walbuf_counts(&b);
    assert_true(b.written - a.written >= 8);
    assert_true(b.written - a.written < (b.gathered - a.gathered) / 20);
    r = open_plain();
    assert_int_equal(count_rows(r), 600);
    sqlite3_close(r);
    sqlite3_close(db);
}

static void assert_sound(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* A transaction that outgrows the page cache sends frames to the log before
 * its commit (SQLite spills), and a rollback does no I/O on the log. Once
 * the write lock is gone another connection may commit at the same offsets
 * (b's commit is smaller than a's spill): the rolled-back frames must never
 * be written over it. */
static void test_rolled_back_spill_never_written(void **state)
{
    sqlite3 *a = open_walbuf(), *b, *r;
    struct myna_walbuf_counts c0, c1;

    (void)state;
    exec_ok(a, "PRAGMA wal_checkpoint(TRUNCATE)");
    exec_ok(a, "PRAGMA cache_size=5");
    myna_walbuf_counts(&c0);
    assert_int_equal(insert_uncommitted(a, 40), SQLITE_DONE);
    exec_ok(a, "ROLLBACK");
    myna_walbuf_counts(&c1);
    assert_true(c1.gathered - c0.gathered > c1.written - c0.written);  /* frames in the run */

    b = open_plain();
    myna_walbuf_discard(b);  /* not a walbuf connection: nothing happens */
    assert_int_equal(insert_rows(b, 10), SQLITE_OK);
    sqlite3_close(b);
    assert_int_equal(count_rows(a), 10);  /* a read through a: its log file is called */

    r = open_plain();
    assert_int_equal(count_rows(r), 10);
    assert_sound(r);
    sqlite3_close(r);
    sqlite3_close(a);
    r = open_plain();  /* the last close checkpointed: the database file itself */
    assert_int_equal(count_rows(r), 10);
    assert_sound(r);
    sqlite3_close(r);
}

/* In a child: the file size limit makes the flush of a big commit's run
 * fail (EFBIG). COMMIT must report it. */
static void commit_past_size_limit(void)
{
    sqlite3 *db = open_walbuf();
    struct rlimit lim;
    struct stat sb;
    char wal[160];
    int rc;

    assert_int_equal(insert_rows(db, 10), SQLITE_OK);
    snprintf(wal, sizeof(wal), "%s-wal", g_path);
    assert_int_equal(stat(wal, &sb), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim.rlim_cur = lim.rlim_max = (rlim_t)sb.st_size + 64 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc = insert_rows(db, 100);  /* about 200 KB of log: past the limit */
    if (rc == SQLITE_OK)
        fail_msg("COMMIT succeeded though its log could not be written");
    sqlite3_close(db);
}

static void test_failed_flush_fails_commit(void **state)
{
    sqlite3 *r;

    (void)state;
    assert_child_ok(commit_past_size_limit);
    r = open_plain();
    assert_int_equal(count_rows(r), 10);  /* the failed commit left nothing */
    sqlite3_close(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_registered_beside_default),
        T(test_commit_is_one_write),
        T(test_other_connection_sees_each_commit),
        T(test_sound_after_reopen),
        T(test_run_past_buffer_arrives_whole),
        T(test_failed_flush_fails_commit),
        T(test_rolled_back_spill_never_written),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
