/* test_store_sqlite.c - the SQLite store against the contracts of store.h:
 * schema and WAL at open, field-exact round trips, dedupe, all-or-nothing
 * transactions (with injected faults, looping N until success), reads, two
 * handles and two processes on one file. Every test gets a fresh mkdtemp
 * directory; a second plain sqlite3 connection looks at the file from
 * outside where the store's own answers would prove nothing. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"
#include <sqlite3.h>

#include "store/store.h"
#include "store/walbuf.h"
#include "core/banned.h"

#define SCHEMA_NOW "10"  /* PRAGMA user_version of a current store */
#define SEQ_JUMP ((int64_t)1 << 32)  /* store_sqlite.c: after an unclean stop */

struct fix {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (test_tmpdir(f->dir, sizeof(f->dir), "test-store") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/acme.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    int rc = test_rmtree(f->dir);

    free(f);
    return rc;
}

/* ---- helpers ---- */

static struct myna_store *open_store(const char *path, enum myna_store_sync sync)
{
    struct myna_store_opts o = { .sync = sync };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st = myna_store_open_sqlite(path, &o, &err);

    if (st == NULL)
        fail_msg("open: %s", err.msg);
    assert_int_equal(err.code, 0);  /* untouched on success */
    return st;
}

/* A text message that points into itself: never copy it by value. */
struct sample {
    char wamid[64];
    char raw[128];
    struct myna_inbound m;
};

static void sample_init(struct sample *x, const char *who, int i)
{
    memset(x, 0, sizeof(*x));
    snprintf(x->wamid, sizeof(x->wamid), "wamid.%s-%d", who, i);
    snprintf(x->raw, sizeof(x->raw), "{\"id\":\"%.63s\",\"type\":\"text\"}", x->wamid);
    x->m.phone_number_id = "106540352242922";
    x->m.wamid = x->wamid;
    x->m.contact = "15550001111";
    x->m.ts = 1700000000 + i;
    x->m.type = MYNA_MSG_TEXT;
    x->m.text = "hello";
    x->m.raw = x->raw;
    x->m.raw_len = strlen(x->raw);
}

struct status_sample {
    char wamid[64];
    char raw[128];
    struct myna_status_rec s;
};

static void status_init(struct status_sample *x, const char *wamid, enum myna_status_kind k)
{
    memset(x, 0, sizeof(*x));
    snprintf(x->wamid, sizeof(x->wamid), "%s", wamid);
    snprintf(x->raw, sizeof(x->raw), "{\"id\":\"%s\",\"status\":\"%s\"}", wamid,
             myna_status_kind_name(k));
    x->s.phone_number_id = "106540352242922";
    x->s.wamid = x->wamid;
    x->s.status = k;
    x->s.status_name = myna_status_kind_name(k);
    x->s.recipient = "15550001111";
    x->s.ts = 1700000100;
    x->s.raw = x->raw;
    x->s.raw_len = strlen(x->raw);
}

static int put_one(struct myna_store *st, const struct myna_inbound *m)
{
    struct myna_err err = MYNA_ERR_INIT;
    int rc;

    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    rc = myna_store_put_inbound(st, m, 1700000000123, &err);
    assert_true(rc >= 0);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    return rc;
}

static void assert_counts(struct myna_store *st, int64_t want_inbox, int64_t want_status)
{
    struct myna_err err = MYNA_ERR_INIT;
    int64_t n_inbox = -1, n_status = -1;

    assert_int_equal(myna_store_count(st, &n_inbox, &n_status, &err), MYNA_OK);
    assert_int_equal(n_inbox, want_inbox);
    assert_int_equal(n_status, want_status);
}

static void assert_str(const char *want, const char *got)
{
    if (want == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(want, got);
}

static void assert_raw(const char *want, size_t want_len, const char *got, size_t got_len)
{
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    assert_int_equal(got[got_len], '\0');  /* rows hand out C strings */
}

static void assert_inbound_equal(const struct myna_inbound *want, const struct myna_inbound *got)
{
    assert_str(want->phone_number_id, got->phone_number_id);
    assert_str(want->wamid, got->wamid);
    assert_str(want->contact, got->contact);
    assert_str(want->contact_user_id, got->contact_user_id);
    assert_str(want->profile_name, got->profile_name);
    assert_int_equal(got->ts, want->ts);
    assert_int_equal(got->type, want->type);
    assert_str(want->text, got->text);
    assert_str(want->reply_id, got->reply_id);
    assert_str(want->media_id, got->media_id);
    assert_str(want->mime_type, got->mime_type);
    assert_str(want->context_id, got->context_id);
    assert_str(want->referral_id, got->referral_id);
    assert_int_equal(got->error_code, want->error_code);
    assert_int_equal(got->has_location, want->has_location);
    /* exact: a REAL is the same IEEE double, and no location reads as 0 */
    assert_true(got->latitude == (want->has_location ? want->latitude : 0.0));
    assert_true(got->longitude == (want->has_location ? want->longitude : 0.0));
    assert_raw(want->raw, want->raw_len, got->raw, got->raw_len);
}

static void assert_status_equal(const struct myna_status_rec *want, const struct myna_status_rec *got)
{
    assert_str(want->phone_number_id, got->phone_number_id);
    assert_str(want->wamid, got->wamid);
    assert_int_equal(got->status, want->status);
    assert_str(want->status_name, got->status_name);
    assert_str(want->recipient, got->recipient);
    assert_int_equal(got->ts, want->ts);
    assert_int_equal(got->error_code, want->error_code);
    assert_str(want->error_title, got->error_title);
    assert_raw(want->raw, want->raw_len, got->raw, got->raw_len);
}

/* First column of the first row of sql, through a connection of our own;
 * malloc'd, or NULL when there is no row. */
static char *sql_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char *out = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != NULL)
        out = strdup((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void assert_sql(const char *path, const char *sql, const char *want)
{
    char *got = sql_text(path, sql);

    assert_str(want, got);
    free(got);
}

/* ---- open and schema ---- */

static void test_open_creates_schema_and_wal(void **state)
{
    struct fix *f = *state;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    assert_string_equal(st->ops->name, "sqlite");
    assert_counts(st, 0, 0);
    /* from outside: WAL is a property of the file, not of our connection */
    assert_sql(f->path, "PRAGMA journal_mode", "wal");
    assert_sql(f->path, "PRAGMA user_version", SCHEMA_NOW);
    assert_sql(f->path, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
               " WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name)",
               "history_contact,inbox_wamid,outbox_accepted,outbox_contact,outbox_open,"
               "outbox_unconfirmed,outbox_wamid,statuses_wamid_status,turns_ai,turns_pending");
    assert_sql(f->path, "SELECT \"unique\" FROM pragma_index_list('inbox')"
               " WHERE name = 'inbox_wamid'", "1");
    assert_sql(f->path, "SELECT \"unique\" FROM pragma_index_list('statuses')"
               " WHERE name = 'statuses_wamid_status'", "1");
    myna_store_free(st);
}

/* Customer messages: a new store and its log are the owner's alone,
 * whatever the umask; one that is there keeps the mode its owner gave. */
static void test_open_creates_private_files(void **state)
{
    struct fix *f = *state;
    char wal[sizeof(f->path) + 8];
    mode_t old = umask(022);
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);
    struct stat sb;

    umask(old);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    myna_store_free(st);
    assert_int_equal(chmod(f->path, 0640), 0);
    st = open_store(f->path, MYNA_SYNC_FULL);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    myna_store_free(st);
}

/* A file made by the first release (schema 1) is upgraded in place at open,
 * its messages kept, and the bot's tables added. */
static void test_open_upgrades_schema_1(void **state)
{
    struct fix *f = *state;
    struct myna_store *st;
    sqlite3 *db = NULL;

    /* the file does not exist yet: create it as the old release did */
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL), SQLITE_OK);
    sqlite3_close(db);
    sql_exec(f->path,
             "CREATE TABLE inbox(seq INTEGER PRIMARY KEY, wamid TEXT NOT NULL, contact TEXT NOT NULL,"
             " contact_user_id TEXT, profile_name TEXT, ts INTEGER NOT NULL, type TEXT NOT NULL,"
             " text TEXT, reply_id TEXT, media_id TEXT, mime_type TEXT, context_id TEXT,"
             " referral_id TEXT, error_code INTEGER NOT NULL DEFAULT 0, latitude REAL,"
             " longitude REAL, phone_number_id TEXT, raw TEXT NOT NULL, received_ms INTEGER NOT NULL);"
             "CREATE UNIQUE INDEX inbox_wamid ON inbox(wamid);"
             "CREATE INDEX inbox_contact ON inbox(contact, seq);"
             "CREATE TABLE statuses(seq INTEGER PRIMARY KEY, wamid TEXT NOT NULL, status TEXT NOT NULL,"
             " recipient TEXT, ts INTEGER NOT NULL, error_code INTEGER NOT NULL DEFAULT 0,"
             " error_title TEXT, phone_number_id TEXT, raw TEXT NOT NULL, received_ms INTEGER NOT NULL);"
             "CREATE UNIQUE INDEX statuses_wamid_status ON statuses(wamid, status);"
             "INSERT INTO inbox(wamid, contact, ts, type, raw, received_ms)"
             " VALUES('wamid.old', '7916', 1, 'text', '{}', 1);"
             "PRAGMA user_version=1;");
    st = open_store(f->path, MYNA_SYNC_FULL);
    assert_counts(st, 1, 0);
    myna_store_free(st);
    assert_sql(f->path, "PRAGMA user_version", SCHEMA_NOW);
    assert_sql(f->path, "SELECT count(*) FROM outbox", "0");
    assert_sql(f->path, "SELECT wamid FROM inbox", "wamid.old");
    /* step 6 dropped the index no read used */
    assert_sql(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'inbox_contact'", "0");
}

static void test_reopen_keeps_data_without_migrating(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row row;
    struct sample x;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sample_init(&x, "keep", 1);
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);
    myna_store_free(st);

    /* Step 1 is a bare CREATE TABLE: had it run again, open would fail. A
     * marker table shows that nothing rebuilt the file either. */
    sql_exec(f->path, "CREATE TABLE marker(x)");
    st = open_store(f->path, MYNA_SYNC_NORMAL);
    assert_counts(st, 1, 0);
    assert_int_equal(myna_store_inbox_find(st, x.wamid, &row, &err), MYNA_OK);
    assert_inbound_equal(&x.m, &row.m);
    myna_store_inbox_row_release(&row);
    myna_store_free(st);
    assert_sql(f->path, "PRAGMA user_version", SCHEMA_NOW);
    assert_sql(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'marker'", "1");
}

static void test_open_refuses_newer_schema(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    myna_store_free(open_store(f->path, MYNA_SYNC_FULL));
    sql_exec(f->path, "PRAGMA user_version=99");
    assert_null(myna_store_open_sqlite(f->path, NULL, &err));
    assert_int_equal(err.code, MYNA_ESTORE);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "99"));

    /* no myna wrote a negative version: refused, never a step before the first */
    sql_exec(f->path, "PRAGMA user_version=-3");
    assert_null(myna_store_open_sqlite(f->path, NULL, &err));
    assert_int_equal(err.code, MYNA_ESTORE);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "-3"));
    assert_sql(f->path, "PRAGMA user_version", "-3");
}

/* The control store's first schema (control_sqlite.c, step 1), as the
 * first release wrote control.db. */
#define CONTROL_STEP_1                                                              \
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"       \
    " role INTEGER NOT NULL CHECK(role BETWEEN 0 AND 2), password_hash TEXT,"     \
    " created_ms INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"          \
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY,"                                 \
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"           \
    " hash TEXT NOT NULL UNIQUE, name TEXT, created_ms INTEGER NOT NULL,"         \
    " last_used_ms INTEGER, revoked INTEGER NOT NULL DEFAULT 0);"                  \
    "CREATE INDEX tokens_user ON tokens(user_id, id);"                             \
    "CREATE TABLE instances(id TEXT PRIMARY KEY NOT NULL,"                         \
    " owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"                   \
    " config TEXT NOT NULL, enabled INTEGER NOT NULL, auto_start INTEGER NOT NULL,"\
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"                   \
    " version INTEGER NOT NULL DEFAULT 1);"                                        \
    "CREATE INDEX instances_owner ON instances(owner_id, id);"                     \
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, user_id INTEGER,"\
    " user_name TEXT, action TEXT NOT NULL, target TEXT, detail TEXT, from_addr TEXT);"

/* A file that is not an instance store is refused as it is: a control.db
 * put where an instance store belongs (from any release), or another
 * program's database. Nothing is added to it: its owner can still use it. */
static void test_open_refuses_other_files(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    char want[300];
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL), SQLITE_OK);
    sqlite3_close(db);
    sql_exec(f->path, CONTROL_STEP_1
             "INSERT INTO users(name, role, created_ms) VALUES('admin', 2, 1);"
             "PRAGMA user_version=1;");
    assert_null(myna_store_open_sqlite(f->path, NULL, &err));
    assert_int_equal(err.code, MYNA_ESTORE);
    assert_sql(f->path, "PRAGMA user_version", "1");
    assert_sql(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", "4");
    snprintf(want, sizeof(want), "cannot open store '%s': it is a myna control store, "
             "not an instance store", f->path);
    assert_string_equal(err.msg, want);
    assert_sql(f->path, "SELECT name FROM users", "admin");

    /* the current control schema (4) too */
    sql_exec(f->path, "PRAGMA user_version=4");
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_store_open_sqlite(f->path, NULL, &err));
    assert_string_equal(err.msg, want);
    assert_sql(f->path, "PRAGMA user_version", "4");

    /* another program's database (its version 0 is not a new file) */
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL), SQLITE_OK);
    sqlite3_close(db);
    sql_exec(f->path, "CREATE TABLE notes(x); INSERT INTO notes VALUES('mine');");
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_store_open_sqlite(f->path, NULL, &err));
    assert_int_equal(err.code, MYNA_ESTORE);
    snprintf(want, sizeof(want), "cannot open store '%s': it is not a myna instance store",
             f->path);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_sql(f->path, "SELECT group_concat(name) FROM sqlite_master", "notes");
    assert_sql(f->path, "PRAGMA user_version", "0");
}

static void test_open_missing_dir(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    char path[256], want[300];

    snprintf(path, sizeof(path), "%s/no-such-dir/acme.db", f->dir);
    assert_null(myna_store_open_sqlite(path, NULL, &err));
    assert_int_equal(err.code, MYNA_ESTORE);
    snprintf(want, sizeof(want), "cannot open store '%s': ", path);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_non_null(strstr(err.msg, "No such file or directory"));
}

/* .existing: a reader opens a store that is there, and never makes one. */
static void test_open_existing_only(void **state)
{
    struct fix *f = *state;
    struct myna_store_opts o = { .sync = MYNA_SYNC_NORMAL, .existing = 1 };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st;
    struct stat sb;

    assert_null(myna_store_open_sqlite(f->path, &o, &err));
    assert_int_equal(err.code, MYNA_ENOTFOUND);
    assert_int_not_equal(stat(f->path, &sb), 0);   /* nothing was made */
    st = myna_store_open_sqlite(f->path, NULL, &err);  /* its owner makes it */
    assert_non_null(st);
    myna_store_free(st);
    st = myna_store_open_sqlite(f->path, &o, &err);
    assert_non_null(st);
    myna_store_free(st);
}

/* A default VFS that opens every main database for reading only, as
 * SQLite's own does when the file may not be written (EACCES, EROFS): it
 * falls back to O_RDONLY and says so only through the open's out flags. */
static sqlite3_vfs *ro_real, ro_vfs;

static int ro_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    (void)vfs;
    if (flags & SQLITE_OPEN_MAIN_DB)
        flags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    return ro_real->xOpen(ro_real, name, f, flags, out_flags);
}

/* A store file this process may not write is refused at open, as the
 * ingress needs to know then (instance_store_failed, 503, reopened when
 * the instance is saved); a reader (.existing) still opens it and reads. */
static void test_open_refuses_read_only_file(void **state)
{
    struct fix *f = *state;
    struct myna_store_opts o = { .sync = MYNA_SYNC_NORMAL };
    struct myna_store_opts reader = { .sync = MYNA_SYNC_NORMAL, .existing = 1 };
    struct myna_err err = MYNA_ERR_INIT, rd_err = MYNA_ERR_INIT;
    struct myna_store *wr, *rd;
    struct sample a;
    char want[300];
    int wr_opened;

    wr = open_store(f->path, MYNA_SYNC_NORMAL);
    sample_init(&a, "ro", 1);
    assert_int_equal(put_one(wr, &a.m), MYNA_STORE_NEW);
    myna_store_free(wr);

    ro_real = sqlite3_vfs_find(NULL);
    assert_non_null(ro_real);
    ro_vfs = *ro_real;
    ro_vfs.zName = "test-read-only";
    ro_vfs.xOpen = ro_open;
    assert_int_equal(sqlite3_vfs_register(&ro_vfs, 1), SQLITE_OK);
    wr = myna_store_open_sqlite(f->path, &o, &err);
    rd = myna_store_open_sqlite(f->path, &reader, &rd_err);
    wr_opened = wr != NULL;
    myna_store_free(wr);
    assert_int_equal(sqlite3_vfs_unregister(&ro_vfs), SQLITE_OK);  /* before any failure */

    assert_false(wr_opened);
    assert_int_equal(err.code, MYNA_ESTORE);
    snprintf(want, sizeof(want), "cannot open store '%s': the file cannot be written", f->path);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_non_null(rd);
    assert_counts(rd, 1, 0);
    myna_store_free(rd);
}

static void test_open_bad_options(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store_opts o = { .sync = MYNA_SYNC_FULL, .busy_timeout_ms = -1 };
    struct myna_store_opts ckpt = { .sync = MYNA_SYNC_FULL, .checkpoint_pages = -5 };

    assert_null(myna_store_open_sqlite(f->path, &o, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_store_open_sqlite(f->path, &ckpt, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_non_null(strstr(err.msg, "checkpoint_pages -5"));
    myna_store_free(NULL);  /* a no-op */
}

/* checkpoint_pages is the connection's automatic checkpoint; 0 keeps
 * SQLite's. */
static void test_checkpoint_pages(void **state)
{
    struct fix *f = *state;
    struct myna_store_opts big = { .sync = MYNA_SYNC_FULL, .checkpoint_pages = 16000 };
    struct myna_store *st = myna_store_open_sqlite(f->path, &big, NULL);
    struct myna_store *plain = open_store(f->path, MYNA_SYNC_FULL);
    sqlite3_stmt *stmt = NULL;

    assert_non_null(st);
    assert_int_equal(sqlite3_prepare_v2(myna_store__sqlite_db(st), "PRAGMA wal_autocheckpoint",
                                        -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), 16000);
    sqlite3_finalize(stmt);
    assert_int_equal(sqlite3_prepare_v2(myna_store__sqlite_db(plain),
                                        "PRAGMA wal_autocheckpoint", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), 1000);
    sqlite3_finalize(stmt);
    myna_store_free(plain);
    myna_store_free(st);
}

/* ---- round trips ---- */

static void test_roundtrip_every_field(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    /* raw is bound by raw_len: what follows it must not be stored */
    static const char raw[] = "{\"id\":\"wamid.full\"}TRAILING";
    struct myna_inbound full = {
        .phone_number_id = "106540352242922", .wamid = "wamid.full",
        .contact = "4915112345678", .contact_user_id = "BSUID.1",
        .profile_name = "Jürgen 🐦", .ts = 1717000000, .type = MYNA_MSG_LOCATION,
        .text = "Cafe, Main St 1", .reply_id = "r1", .media_id = "m1",
        .mime_type = "image/jpeg", .context_id = "wamid.quoted", .referral_id = "ad.9",
        .error_code = 131051, .has_location = 1,
        .latitude = 52.520008123456789, .longitude = -13.404954000000001,
        .raw = raw, .raw_len = sizeof(raw) - 1 - strlen("TRAILING"),
    };
    /* only what is required; has_location = 0 must not invent a location */
    struct myna_inbound bare = {
        .wamid = "wamid.bare", .contact = "", .type = MYNA_MSG_UNSUPPORTED,
        .latitude = 1.5, .longitude = 2.5, .raw = "{}", .raw_len = 2,
    };
    struct myna_status_rec failed = {
        .phone_number_id = "106540352242922", .wamid = "wamid.out",
        .status = MYNA_STATUS_FAILED, .status_name = "failed", .recipient = "4915112345678",
        .ts = 1717000001, .error_code = 131047, .error_title = "Re-engagement message",
        .raw = "{\"status\":\"failed\"}", .raw_len = 19,
    };
    struct myna_status_rec bare_status = {
        .wamid = "wamid.out", .status = MYNA_STATUS_UNKNOWN, .status_name = "deleted",
        .raw = "{}", .raw_len = 2,
    };
    struct myna_inbox_row rows[3];
    struct myna_status_row srows[3];
    size_t n = 99;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &full, 1717000000500, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_inbound(st, &bare, 1717000000600, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_status(st, &failed, 1717000000700, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_status(st, &bare_status, 1717000000800, &err),
                     MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);

    assert_int_equal(myna_store_inbox_read(st, 0, 3, rows, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].seq, 1);
    assert_int_equal(rows[0].received_ms, 1717000000500);
    assert_inbound_equal(&full, &rows[0].m);
    assert_int_equal(rows[1].seq, 2);
    assert_int_equal(rows[1].received_ms, 1717000000600);
    bare.latitude = bare.longitude = 0.0;
    assert_inbound_equal(&bare, &rows[1].m);
    for (size_t i = 0; i < n; i++) {
        myna_store_inbox_row_release(&rows[i]);
        assert_null(rows[i].m.wamid);  /* released rows are zeroed */
    }

    assert_int_equal(myna_store_status_read(st, 0, 3, srows, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(srows[0].seq, 1);
    assert_int_equal(srows[0].received_ms, 1717000000700);
    assert_status_equal(&failed, &srows[0].s);
    assert_int_equal(srows[1].received_ms, 1717000000800);
    assert_status_equal(&bare_status, &srows[1].s);  /* unknown name kept as received */
    for (size_t i = 0; i < n; i++)
        myna_store_status_row_release(&srows[i]);
    myna_store_free(st);
}

/* A row written by a newer myna with a type this one does not know. */
static void test_unknown_type_reads_as_unsupported(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row row;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sql_exec(f->path, "INSERT INTO inbox(wamid, contact, ts, type, raw, received_ms)"
             " VALUES('wamid.poll', '1555', 1, 'poll', '{}', 2)");
    assert_int_equal(myna_store_inbox_find(st, "wamid.poll", &row, &err), MYNA_OK);
    assert_int_equal(row.m.type, MYNA_MSG_UNSUPPORTED);
    assert_int_equal(row.m.error_code, 0);
    myna_store_inbox_row_release(&row);
    myna_store_free(st);
}

static void test_big_text_roundtrip(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    const size_t len = 1 << 20;
    char *big = malloc(len + 1);
    struct myna_inbox_row row;
    struct sample x;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_NORMAL);

    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + i % 26);
    big[len] = '\0';
    sample_init(&x, "big", 1);
    x.m.text = big;
    x.m.raw = big;  /* a big raw too: it is bound by length */
    x.m.raw_len = len;
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);
    assert_int_equal(myna_store_inbox_find(st, x.wamid, &row, &err), MYNA_OK);
    assert_int_equal(strlen(row.m.text), len);
    assert_inbound_equal(&x.m, &row.m);
    myna_store_inbox_row_release(&row);
    myna_store_free(st);
    free(big);
}

/* ---- the text of a text message, kept once ---- */

/* Puts a message of type type with text and raw, reads it back both ways,
 * and says whether the inbox column held the text itself (1) or NULL. */
static int text_roundtrip(struct fix *f, int i, enum myna_msg_type type, const char *text,
                          const char *raw)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row row, rows[8];
    struct sample x;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_NORMAL);
    size_t n = 0;
    char sql[160], *col;

    sample_init(&x, "once", i);
    x.m.type = type;
    x.m.text = text;
    x.m.raw = raw;
    x.m.raw_len = strlen(raw);
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);
    assert_int_equal(myna_store_inbox_find(st, x.wamid, &row, &err), MYNA_OK);
    assert_inbound_equal(&x.m, &row.m);
    myna_store_inbox_row_release(&row);
    assert_int_equal(myna_store_inbox_read(st, 0, 8, rows, &n, &err), MYNA_OK);
    assert_true(n >= 1);
    assert_inbound_equal(&x.m, &rows[n - 1].m);
    for (size_t k = 0; k < n; k++)
        myna_store_inbox_row_release(&rows[k]);
    myna_store_free(st);
    snprintf(sql, sizeof(sql), "SELECT text IS NOT NULL FROM inbox WHERE wamid = '%s'", x.wamid);
    col = sql_text(f->path, sql);
    assert_non_null(col);
    i = strcmp(col, "1") == 0;
    free(col);
    return i;
}

static void test_text_stored_once(void **state)
{
    struct fix *f = *state;

    /* the usual case: the column is left empty and the text comes from raw */
    assert_int_equal(text_roundtrip(f, 1, MYNA_MSG_TEXT, "hello there",
                                    "{\"type\":\"text\",\"text\":{\"body\":\"hello there\"}}"),
                     0);
    /* escapes, quotes, backslashes and multibyte text come back exactly */
    assert_int_equal(text_roundtrip(f, 2, MYNA_MSG_TEXT,
                                    "line1\nsaid \"hi\" \\ \xc3\xa9t\xc3\xa9 \xf0\x9f\x92\x88",
                                    "{\"text\":{\"body\":\"line1\\nsaid \\\"hi\\\" \\\\ "
                                    "\\u00e9t\xc3\xa9 \xf0\x9f\x92\x88\"}}"),
                     0);
}

static void test_text_kept_when_raw_differs(void **state)
{
    struct fix *f = *state;

    /* a text that is not raw's text.body is stored as given */
    assert_int_equal(text_roundtrip(f, 1, MYNA_MSG_TEXT, "folded text",
                                    "{\"text\":{\"body\":\"something else\"}}"), 1);
    /* raw that is not JSON, or has no text.body */
    assert_int_equal(text_roundtrip(f, 2, MYNA_MSG_TEXT, "hi", "not json {"), 1);
    assert_int_equal(text_roundtrip(f, 3, MYNA_MSG_TEXT, "hi", "{\"type\":\"text\"}"), 1);
    /* another type whose raw happens to have text.body */
    assert_int_equal(text_roundtrip(f, 4, MYNA_MSG_IMAGE, "caption",
                                    "{\"text\":{\"body\":\"caption\"}}"), 1);
}

/* A text message without text stays without, whatever raw holds; a row
 * with the text in its column (as older releases wrote every row) reads
 * the column. */
static void test_text_null_and_old_rows(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row row;
    struct myna_store *st;

    assert_int_equal(text_roundtrip(f, 1, MYNA_MSG_TEXT, NULL, "{\"text\":{\"body\":5}}"), 0);
    assert_int_equal(text_roundtrip(f, 2, MYNA_MSG_TEXT, NULL, "{\"text\":{}}"), 0);
    sql_exec(f->path, "INSERT INTO inbox(wamid, contact, ts, type, text, raw, received_ms)"
                      " VALUES('wamid.older', '7916', 1, 'text', 'from the column',"
                      " '{\"text\":{\"body\":\"from raw\"}}', 1)");
    st = open_store(f->path, MYNA_SYNC_NORMAL);
    assert_int_equal(myna_store_inbox_find(st, "wamid.older", &row, &err), MYNA_OK);
    assert_string_equal(row.m.text, "from the column");
    myna_store_inbox_row_release(&row);
    myna_store_free(st);
}

/* ---- dedupe ---- */

static void test_dedupe_across_transactions(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row row;
    struct sample x;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sample_init(&x, "dup", 1);
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);
    x.m.text = "a retry with another body";  /* the first copy wins */
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_DUP);
    assert_counts(st, 1, 0);
    assert_int_equal(myna_store_inbox_find(st, x.wamid, &row, &err), MYNA_OK);
    assert_string_equal(row.m.text, "hello");
    myna_store_inbox_row_release(&row);
    myna_store_free(st);

    st = open_store(f->path, MYNA_SYNC_FULL);  /* and after a reopen */
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_DUP);
    assert_counts(st, 1, 0);
    myna_store_free(st);
}

static void test_dedupe_inside_transaction(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct sample a, b;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sample_init(&a, "same", 1);
    sample_init(&b, "same", 1);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &a.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_inbound(st, &b.m, 2, &err), MYNA_STORE_DUP);
    assert_int_equal(myna_store_put_inbound(st, &a.m, 3, &err), MYNA_STORE_DUP);
    assert_counts(st, 1, 0);  /* our own uncommitted row */
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_counts(st, 1, 0);
    myna_store_free(st);
}

static void test_status_dedupe(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct status_sample sent, sent_again, delivered, other_sent;
    struct myna_status_row rows[4];
    size_t n;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    status_init(&sent, "wamid.out1", MYNA_STATUS_SENT);
    status_init(&sent_again, "wamid.out1", MYNA_STATUS_SENT);
    status_init(&delivered, "wamid.out1", MYNA_STATUS_DELIVERED);
    status_init(&other_sent, "wamid.out2", MYNA_STATUS_SENT);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_status(st, &sent.s, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_status(st, &sent_again.s, 2, &err), MYNA_STORE_DUP);
    assert_int_equal(myna_store_put_status(st, &delivered.s, 3, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_status(st, &delivered.s, 4, &err), MYNA_STORE_DUP);
    assert_int_equal(myna_store_put_status(st, &other_sent.s, 5, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_counts(st, 0, 3);

    assert_int_equal(myna_store_status_read(st, 0, 4, rows, &n, &err), MYNA_OK);
    assert_int_equal(n, 3);
    assert_status_equal(&sent.s, &rows[0].s);
    assert_status_equal(&delivered.s, &rows[1].s);
    assert_status_equal(&other_sent.s, &rows[2].s);
    assert_int_equal(rows[1].received_ms, 3);
    for (size_t i = 0; i < n; i++)
        myna_store_status_row_release(&rows[i]);
    myna_store_free(st);
}

/* ---- transactions ---- */

static void test_rollback_keeps_nothing(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct sample x;
    struct status_sample s;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sample_init(&x, "rb", 1);
    status_init(&s, "wamid.out", MYNA_STATUS_SENT);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_STORE_NEW);
    myna_store_rollback(st);
    assert_counts(st, 0, 0);
    myna_store_rollback(st);  /* none open: a no-op */

    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);  /* not a dup of the lost one */
    assert_counts(st, 1, 0);

    /* free with a transaction open rolls it back */
    sample_init(&x, "rb", 2);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_STORE_NEW);
    myna_store_free(st);
    st = open_store(f->path, MYNA_SYNC_FULL);
    assert_counts(st, 1, 0);
    myna_store_free(st);
}

/* A transaction bigger than the page cache reaches the log before its
 * commit; rolled back, none of it may be written once another handle has
 * committed at the same place in the log (synchronous=FULL buffers the
 * log's writes: walbuf.h). The log starts empty, so that the rollback
 * reads nothing from it, and b's one commit is smaller than a's spill, so
 * that it lands where a's frames went. */
static void test_rolled_back_spill_never_written(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *a = open_store(f->path, MYNA_SYNC_FULL), *b;
    sqlite3 *db = myna_store__sqlite_db(a);
    struct myna_walbuf_counts c0, c1;
    char raw[1600];
    struct myna_inbound m;
    struct sample x;

    sample_init(&x, "first", 0);
    assert_int_equal(put_one(a, &x.m), MYNA_STORE_NEW);  /* marks the file open */
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA cache_size=5",
                                  NULL, NULL, NULL), SQLITE_OK);
    myna_walbuf_counts(&c0);
    assert_int_equal(myna_store_begin(a, &err), MYNA_OK);
    for (int i = 0; i < 40; i++) {
        sample_init(&x, "spill", i);
        m = x.m;
        snprintf(raw, sizeof(raw), "{\"id\":\"%s\",\"pad\":\"%01400d\"}", x.wamid, i);
        m.raw = raw;
        m.raw_len = strlen(raw);
        assert_int_equal(myna_store_put_inbound(a, &m, 1, &err), MYNA_STORE_NEW);
    }
    myna_store_rollback(a);
    myna_walbuf_counts(&c1);
    assert_true(c1.gathered - c0.gathered > c1.written - c0.written);  /* frames in the run */

    b = open_store(f->path, MYNA_SYNC_FULL);
    assert_int_equal(myna_store_begin(b, &err), MYNA_OK);
    for (int i = 0; i < 10; i++) {
        sample_init(&x, "kept", i);
        assert_int_equal(myna_store_put_inbound(b, &x.m, 1, &err), MYNA_STORE_NEW);
    }
    assert_int_equal(myna_store_commit(b, &err), MYNA_OK);
    myna_store_free(b);
    assert_counts(a, 11, 0);  /* a read through a calls its log file */
    assert_sql(f->path, "SELECT count(*) FROM inbox", "11");
    assert_sql(f->path, "PRAGMA integrity_check", "ok");
    myna_store_free(a);
    assert_sql(f->path, "SELECT count(*) FROM inbox", "11");
    assert_sql(f->path, "PRAGMA integrity_check", "ok");
}

static void test_commit_failure_keeps_nothing(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct sample a, b;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sample_init(&a, "cf", 1);
    sample_init(&b, "cf", 2);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &a.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_inbound(st, &b.m, 1, &err), MYNA_STORE_NEW);
    myna_store_sqlite_fail_after(st, 1);
    assert_int_equal(myna_store_commit(st, &err), MYNA_ESTORE);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "cannot commit"));
    assert_counts(st, 0, 0);

    /* the handle works afterwards, and the lost rows are not dups */
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &a.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_inbound(st, &b.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_int_equal(err.code, 0);
    assert_counts(st, 2, 0);
    myna_store_free(st);
}

/* STYLE 10: fail the N-th store call, N = 1, 2, ... until the transaction
 * goes through; every failed attempt must leave nothing behind. */
static void test_fault_loop_all_or_nothing(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct sample in[3];
    struct status_sample out[2];
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);
    int n, rc, put_failed;

    for (int i = 0; i < 3; i++)
        sample_init(&in[i], "loop", i);
    status_init(&out[0], "wamid.loop-out", MYNA_STATUS_SENT);
    status_init(&out[1], "wamid.loop-out", MYNA_STATUS_DELIVERED);
    for (n = 1;; n++) {
        put_failed = 0;
        myna_store_sqlite_fail_after(st, n);
        assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
        for (int i = 0; i < 5; i++) {
            rc = i < 3 ? myna_store_put_inbound(st, &in[i].m, 1, &err)
                       : myna_store_put_status(st, &out[i - 3].s, 1, &err);
            if (i + 1 == n) {
                assert_int_equal(rc, MYNA_ESTORE);
                assert_non_null(strstr(err.msg, "injected fault"));
                put_failed = 1;
            } else {
                assert_int_equal(rc, MYNA_STORE_NEW);  /* nothing kept by earlier tries */
            }
        }
        /* commit even after a failed put: the store must still keep nothing */
        rc = myna_store_commit(st, &err);
        myna_store_sqlite_fail_after(st, -1);
        if (rc == MYNA_OK)
            break;
        assert_int_equal(rc, MYNA_ESTORE);
        assert_true(put_failed || n == 6);
        assert_counts(st, 0, 0);
    }
    assert_int_equal(n, 7);  /* 5 puts and the commit could each fail */
    assert_counts(st, 3, 2);
    myna_store_free(st);
}

static void test_misuse_is_einval(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct sample x;
    struct status_sample s;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sample_init(&x, "inval", 1);
    status_init(&s, "wamid.out", MYNA_STATUS_SENT);
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_EINVAL);
    assert_non_null(strstr(err.msg, "no transaction"));
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_EINVAL);
    assert_int_equal(myna_store_commit(st, &err), MYNA_EINVAL);
    assert_counts(st, 0, 0);

    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_begin(st, &err), MYNA_EINVAL);
    x.m.wamid = NULL;
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_EINVAL);
    x.m.wamid = x.wamid;
    s.s.status_name = NULL;
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_EINVAL);
    /* misuse does not spoil the transaction */
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_counts(st, 1, 0);
    myna_store_free(st);
}

/* Another process holds the write lock past our busy_timeout: a clear
 * error, and the handle works once the lock is gone. */
static void test_busy_gives_clear_error(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store_opts quick = { .sync = MYNA_SYNC_FULL, .busy_timeout_ms = 50 };
    struct myna_store *holder = open_store(f->path, MYNA_SYNC_FULL);
    struct myna_store *st = myna_store_open_sqlite(f->path, &quick, &err);
    struct sample x;

    assert_non_null(st);  /* opening a current schema takes no write lock */
    sample_init(&x, "busy", 1);
    assert_int_equal(myna_store_begin(holder, &err), MYNA_OK);
    assert_int_equal(myna_store_begin(st, &err), MYNA_ESTORE);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "locked"));
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_EINVAL);
    myna_store_rollback(holder);
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);
    myna_store_free(holder);
    myna_store_free(st);
}

/* ---- reads ---- */

static void test_inbox_read_paging(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row rows[4];
    struct status_sample s;
    struct myna_status_row srows[2];
    struct sample x;
    int64_t after = 0;
    size_t n, total = 0;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_NORMAL);

    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    for (int i = 1; i <= 10; i++) {
        sample_init(&x, "page", i);
        assert_int_equal(myna_store_put_inbound(st, &x.m, i, &err), MYNA_STORE_NEW);
    }
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);

    /* pages of 4, 4, 2, then nothing: seq order, no gap, no repeat */
    for (int page = 0; page < 4; page++) {
        assert_int_equal(myna_store_inbox_read(st, after, 4, rows, &n, &err), MYNA_OK);
        assert_int_equal(n, page < 2 ? 4 : page == 2 ? 2 : 0);
        for (size_t i = 0; i < n; i++) {
            char want[64];
            assert_int_equal(rows[i].seq, after + 1);
            snprintf(want, sizeof(want), "wamid.page-%d", (int)rows[i].seq);
            assert_string_equal(rows[i].m.wamid, want);
            assert_int_equal(rows[i].received_ms, rows[i].seq);
            after = rows[i].seq;
            myna_store_inbox_row_release(&rows[i]);
        }
        total += n;
    }
    assert_int_equal(total, 10);
    assert_int_equal(myna_store_inbox_read(st, 3, 0, rows, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(myna_store_inbox_read(st, 9, 4, rows, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].seq, 10);
    myna_store_inbox_row_release(&rows[0]);

    assert_int_equal(myna_store_status_read(st, 0, 2, srows, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    status_init(&s, "wamid.page-out", MYNA_STATUS_READ);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_int_equal(myna_store_status_read(st, 0, 2, srows, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(srows[0].s.status, MYNA_STATUS_READ);
    myna_store_status_row_release(&srows[0]);
    assert_int_equal(myna_store_status_read(st, 1, 2, srows, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    myna_store_free(st);
}

static void test_inbox_find(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row row;
    struct sample a, b;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    sample_init(&a, "find", 1);
    sample_init(&b, "find", 2);
    assert_int_equal(put_one(st, &a.m), MYNA_STORE_NEW);
    assert_int_equal(put_one(st, &b.m), MYNA_STORE_NEW);

    assert_int_equal(myna_store_inbox_find(st, b.wamid, &row, &err), MYNA_OK);
    assert_int_equal(row.seq, 2);
    assert_inbound_equal(&b.m, &row.m);
    myna_store_inbox_row_release(&row);

    assert_int_equal(myna_store_inbox_find(st, "wamid.nope", &row, &err), MYNA_ENOTFOUND);
    assert_non_null(strstr(err.msg, "wamid.nope"));
    assert_null(row.m.wamid);
    myna_store_inbox_row_release(&row);  /* harmless on a miss */
    myna_store_free(st);
}

static void test_count(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct sample x;
    struct status_sample s;
    int64_t n_inbox = -1;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);

    assert_counts(st, 0, 0);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    for (int i = 0; i < 7; i++) {
        sample_init(&x, "count", i);
        assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_STORE_NEW);
    }
    status_init(&s, "wamid.count-0", MYNA_STATUS_SENT);
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_counts(st, 7, 1);
    assert_int_equal(myna_store_count(st, &n_inbox, NULL, &err), MYNA_OK);
    assert_int_equal(n_inbox, 7);
    myna_store_free(st);
}

/* ---- two handles, two processes ---- */

/* The master writes, the bot reads: a reader sees a commit, never the
 * writer's open transaction. */
static void test_two_handles(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *writer = open_store(f->path, MYNA_SYNC_NORMAL);
    struct myna_store *reader = open_store(f->path, MYNA_SYNC_NORMAL);
    struct myna_inbox_row rows[4], row;
    struct sample a, b;
    size_t n;

    sample_init(&a, "two", 1);
    sample_init(&b, "two", 2);
    assert_int_equal(put_one(writer, &a.m), MYNA_STORE_NEW);
    assert_int_equal(myna_store_inbox_read(reader, 0, 4, rows, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_inbound_equal(&a.m, &rows[0].m);
    myna_store_inbox_row_release(&rows[0]);

    assert_int_equal(myna_store_begin(writer, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(writer, &b.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_inbox_read(reader, 1, 4, rows, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(myna_store_inbox_find(reader, b.wamid, &row, &err), MYNA_ENOTFOUND);
    assert_counts(reader, 1, 0);
    assert_int_equal(myna_store_commit(writer, &err), MYNA_OK);

    assert_int_equal(myna_store_inbox_read(reader, 1, 4, rows, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].seq, 2);
    myna_store_inbox_row_release(&rows[0]);
    assert_int_equal(myna_store_inbox_find(reader, b.wamid, &row, &err), MYNA_OK);
    myna_store_inbox_row_release(&row);
    /* the reader's view of dedupe is the same file's */
    assert_int_equal(put_one(reader, &b.m), MYNA_STORE_DUP);
    myna_store_free(writer);
    myna_store_free(reader);
}

/* ---- numbers after an unclean stop ---- */

static int64_t seq_of(struct myna_store *st, const char *wamid)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_inbox_row row;
    int64_t seq;

    assert_int_equal(myna_store_inbox_find(st, wamid, &row, &err), MYNA_OK);
    seq = row.seq;
    myna_store_inbox_row_release(&row);
    return seq;
}

static int64_t status_seq_top(struct myna_store *st)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_status_row rows[8];
    size_t n;
    int64_t top;

    assert_int_equal(myna_store_status_read(st, 0, 8, rows, &n, &err), MYNA_OK);
    assert_true(n > 0 && n < 8);
    top = rows[n - 1].seq;
    for (size_t i = 0; i < n; i++)
        myna_store_status_row_release(&rows[i]);
    return top;
}

/* 0 when src was copied to dst; no cmocka calls, it runs in a child. */
static int copy_file(const char *src, const char *dst)
{
    char buf[8192];
    size_t n;
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    int rc = out != NULL ? 0 : -1;

    while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in != NULL && ferror(in))
        rc = -1;
    if (out != NULL && fclose(out) != 0)
        rc = -1;
    if (in != NULL)
        fclose(in);
    return rc;
}

/* Writes messages "name"-0 .. n-1 in a child that exits without closing
 * its store, as a crash or kill -9 would leave it. With snapshot, the
 * child first commits message 0, then copies the files aside (to
 * path.snap and path-wal.snap) before it writes the rest. */
static void crash_after_writing(const char *path, enum myna_store_sync sync, const char *name,
                                int n, int snapshot)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct myna_store_opts o = { .sync = sync };
        struct myna_err err = MYNA_ERR_INIT;
        struct myna_store *st = myna_store_open_sqlite(path, &o, &err);
        struct sample x;
        char src[160], dst[160];
        int ok = st != NULL;

        for (int i = 0; ok && i < n; i++) {
            sample_init(&x, name, i);
            ok = myna_store_begin(st, &err) == MYNA_OK &&
                 myna_store_put_inbound(st, &x.m, 1, &err) == MYNA_STORE_NEW &&
                 myna_store_commit(st, &err) == MYNA_OK;
            if (ok && i == 0 && snapshot) {
                snprintf(dst, sizeof(dst), "%s.snap", path);
                ok = copy_file(path, dst) == 0;
                snprintf(src, sizeof(src), "%s-wal", path);
                snprintf(dst, sizeof(dst), "%s-wal.snap", path);
                ok = ok && copy_file(src, dst) == 0;
            }
        }
        _exit(ok ? 0 : 1);  /* no myna_store_free: the mark stays set */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A default VFS that counts the syncs of every file it opens: SQLite's own
 * VFS with xOpen swapped; each file's methods (the database's differ from
 * the logs') are swapped for a copy whose xSync counts, then syncs as the
 * original does. */
#define IO_KINDS 4
static sqlite3_vfs *real_vfs, counting_vfs;
static const sqlite3_io_methods *real_io[IO_KINDS];
static sqlite3_io_methods counting_io[IO_KINDS];
static int syncs;

static int counting_sync(sqlite3_file *f, int flags)
{
    size_t k = (size_t)(f->pMethods - counting_io);

    syncs++;
    return real_io[k]->xSync(f, flags);
}

static int counting_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                         int *out_flags)
{
    int rc = real_vfs->xOpen(real_vfs, name, f, flags, out_flags);
    size_t k;

    (void)vfs;
    if (rc != SQLITE_OK || f->pMethods == NULL)
        return rc;
    for (k = 0; k < IO_KINDS && real_io[k] != NULL && real_io[k] != f->pMethods; k++)
        ;
    if (k == IO_KINDS)
        return rc;  /* not counted; the test's assertions then fail */
    if (real_io[k] == NULL) {
        real_io[k] = f->pMethods;
        counting_io[k] = *f->pMethods;
        counting_io[k].xSync = counting_sync;
    }
    f->pMethods = &counting_io[k];
    return rc;
}

/* Makes the counting VFS the default, and SQLite's own again. */
static void counting_vfs_on(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    assert_non_null(real_vfs);
    counting_vfs = *real_vfs;
    counting_vfs.zName = "test-counting";
    counting_vfs.xOpen = counting_open;
    assert_int_equal(sqlite3_vfs_register(&counting_vfs, 1), SQLITE_OK);
}

static void counting_vfs_off(void)
{
    assert_int_equal(sqlite3_vfs_unregister(&counting_vfs), SQLITE_OK);
    assert_ptr_equal(sqlite3_vfs_find(NULL), real_vfs);
}

/* Under synchronous=NORMAL a commit does not sync, except the one that
 * marks the file open: the mark must be on disk before any record after it
 * can be read, or a power loss could take both. */
static void test_mark_is_flushed_under_normal(void **state)
{
    struct fix *f = *state;
    struct myna_store *st;
    struct sample a, b;

    counting_vfs_on();
    st = open_store(f->path, MYNA_SYNC_NORMAL);
    sample_init(&a, "sync", 1);
    sample_init(&b, "sync", 2);
    syncs = 0;
    assert_int_equal(put_one(st, &a.m), MYNA_STORE_NEW);   /* marks, then writes */
    assert_true(syncs >= 1);
    syncs = 0;
    assert_int_equal(put_one(st, &b.m), MYNA_STORE_NEW);
    assert_int_equal(syncs, 0);                             /* NORMAL again */
    myna_store_free(st);
    counting_vfs_off();
}

/* A store opened unnumbered (a bot's) has no numbers to keep: its first
 * write marks nothing and, under NORMAL, flushes nothing. */
static void test_unnumbered_store_marks_nothing(void **state)
{
    struct fix *f = *state;
    struct myna_store_opts o = { .sync = MYNA_SYNC_NORMAL, .unnumbered = 1 };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st;
    struct sample a;

    counting_vfs_on();
    st = myna_store_open_sqlite(f->path, &o, &err);
    assert_non_null(st);
    sample_init(&a, "unnumbered", 1);
    syncs = 0;
    assert_int_equal(put_one(st, &a.m), MYNA_STORE_NEW);
    assert_int_equal(syncs, 0);
    assert_sql(f->path, "SELECT count(*) FROM writer", "0");
    myna_store_free(st);
    assert_sql(f->path, "SELECT count(*) FROM writer", "0");
    counting_vfs_off();
}

/* Closed cleanly, the next writer goes on from the highest number. */
static void test_clean_close_keeps_numbers(void **state)
{
    struct fix *f = *state;
    struct myna_store *st = open_store(f->path, MYNA_SYNC_FULL);
    struct sample a, b;

    assert_sql(f->path, "SELECT count(*) FROM writer", "0");  /* a reader marks nothing */
    sample_init(&a, "clean", 1);
    sample_init(&b, "clean", 2);
    assert_int_equal(put_one(st, &a.m), MYNA_STORE_NEW);
    assert_sql(f->path, "SELECT open FROM writer", "1");
    myna_store_free(st);
    assert_sql(f->path, "SELECT open FROM writer", "0");

    st = open_store(f->path, MYNA_SYNC_FULL);
    assert_int_equal(put_one(st, &b.m), MYNA_STORE_NEW);
    assert_int_equal(seq_of(st, b.wamid), 2);
    myna_store_free(st);
}

/* After a writer that did not close, the first new row of each table jumps;
 * a duplicate or a rolled-back row does not use the jump up, and the rows
 * after it follow on. */
static void test_unclean_stop_jumps_numbers(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st;
    struct sample dup, c, d, e;
    struct status_sample s;

    crash_after_writing(f->path, MYNA_SYNC_FULL, "crash", 2, 0);
    assert_sql(f->path, "SELECT open FROM writer", "1");
    st = open_store(f->path, MYNA_SYNC_FULL);
    sample_init(&dup, "crash", 0);
    sample_init(&c, "after", 1);
    sample_init(&d, "after", 2);
    sample_init(&e, "after", 3);

    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &c.m, 1, &err), MYNA_STORE_NEW);
    myna_store_rollback(st);

    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &dup.m, 1, &err), MYNA_STORE_DUP);
    assert_int_equal(myna_store_put_inbound(st, &c.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_inbound(st, &d.m, 1, &err), MYNA_STORE_NEW);
    status_init(&s, c.wamid, MYNA_STATUS_SENT);
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_int_equal(seq_of(st, c.wamid), 2 + SEQ_JUMP);
    assert_int_equal(seq_of(st, d.wamid), 3 + SEQ_JUMP);
    assert_int_equal(status_seq_top(st), SEQ_JUMP);  /* statuses were empty */

    /* the jump is spent: the next row follows on */
    assert_int_equal(put_one(st, &e.m), MYNA_STORE_NEW);
    assert_int_equal(seq_of(st, e.wamid), 4 + SEQ_JUMP);
    myna_store_free(st);
    assert_sql(f->path, "SELECT open FROM writer", "0");
}

/* After an unclean stop, two handles that both marked the file before
 * either wrote: each one's first new row jumps past what is stored when it
 * is written, so the second never takes the first one's number, and a
 * failed try does not doom the next. */
static void test_two_handles_jump_apart(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *h1, *h2;
    struct sample a, b, c;
    int64_t seq_a;

    crash_after_writing(f->path, MYNA_SYNC_FULL, "crash", 2, 0);
    h1 = open_store(f->path, MYNA_SYNC_FULL);
    h2 = open_store(f->path, MYNA_SYNC_FULL);
    sample_init(&a, "h1", 1);
    sample_init(&b, "h2", 1);
    sample_init(&c, "h2", 2);
    assert_int_equal(myna_store_begin(h1, &err), MYNA_OK);  /* marks */
    myna_store_rollback(h1);
    assert_int_equal(myna_store_begin(h2, &err), MYNA_OK);  /* marks */
    myna_store_rollback(h2);

    assert_int_equal(put_one(h1, &a.m), MYNA_STORE_NEW);
    seq_a = seq_of(h1, a.wamid);
    assert_true(seq_a >= 2 + SEQ_JUMP);
    for (int attempt = 0; attempt < 2; attempt++) {  /* the second: a retry */
        assert_int_equal(myna_store_begin(h2, &err), MYNA_OK);
        assert_int_equal(myna_store_put_inbound(h2, &b.m, 1, &err), MYNA_STORE_NEW);
        if (attempt == 0)
            myna_store_rollback(h2);
        else
            assert_int_equal(myna_store_commit(h2, &err), MYNA_OK);
    }
    assert_true(seq_of(h2, b.wamid) > seq_a);
    assert_int_equal(put_one(h2, &c.m), MYNA_STORE_NEW);
    assert_int_equal(seq_of(h2, c.wamid), seq_of(h2, b.wamid) + 1);  /* the jump is spent */
    assert_counts(h1, 5, 0);
    myna_store_free(h1);
    myna_store_free(h2);
}

/* Puts the files back as they were after the first commit of
 * crash_after_writing(..., snapshot 1): a power loss under NORMAL. */
static void lose_tail(const struct fix *f)
{
    char from[160], to[160];

    snprintf(from, sizeof(from), "%s.snap", f->path);
    assert_int_equal(rename(from, f->path), 0);
    snprintf(from, sizeof(from), "%s-wal.snap", f->path);
    snprintf(to, sizeof(to), "%s-wal", f->path);
    assert_int_equal(rename(from, to), 0);
    snprintf(to, sizeof(to), "%s-shm", f->path);
    assert_int_equal(unlink(to), 0);  /* rebuilt from the log at open */
}

/* A power loss under synchronous=NORMAL: the mark reached the disk, the
 * records after it did not. Simulated by putting back the files as they
 * were after the first commit. A number a reader may have seen (up to 3)
 * must never be given to another message. */
static void test_lost_tail_never_reuses_numbers(void **state)
{
    struct fix *f = *state;
    struct myna_store *st;
    struct sample x;

    crash_after_writing(f->path, MYNA_SYNC_NORMAL, "lost", 3, 1);
    lose_tail(f);

    st = open_store(f->path, MYNA_SYNC_NORMAL);
    assert_counts(st, 1, 0);  /* lost-1 and lost-2 are gone */
    sample_init(&x, "next", 0);
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);
    assert_true(seq_of(st, x.wamid) > 3);
    assert_int_equal(seq_of(st, x.wamid), 1 + SEQ_JUMP);
    myna_store_free(st);
}

/* After the lost tail, a writer that stores only a status (its messages'
 * jump still to come) and then closes cleanly: the next writer must still
 * jump the messages past every number a reader may have seen (up to 3). */
static void test_clean_close_before_jump_keeps_mark(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st;
    struct status_sample s;
    struct sample x;

    crash_after_writing(f->path, MYNA_SYNC_NORMAL, "lost", 3, 1);
    lose_tail(f);

    st = open_store(f->path, MYNA_SYNC_NORMAL);
    status_init(&s, "wamid.out-1", MYNA_STATUS_SENT);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_int_equal(status_seq_top(st), SEQ_JUMP);
    myna_store_free(st);

    st = open_store(f->path, MYNA_SYNC_NORMAL);
    sample_init(&x, "next", 0);
    assert_int_equal(put_one(st, &x.m), MYNA_STORE_NEW);
    assert_true(seq_of(st, x.wamid) > 3);
    assert_int_equal(seq_of(st, x.wamid), 1 + SEQ_JUMP);
    myna_store_free(st);
    assert_sql(f->path, "SELECT open FROM writer", "1");  /* its statuses did not jump */

    st = open_store(f->path, MYNA_SYNC_NORMAL);
    status_init(&s, "wamid.out-2", MYNA_STATUS_SENT);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_STORE_DUP);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    assert_int_equal(status_seq_top(st), 2 * SEQ_JUMP);
    myna_store_free(st);
    assert_sql(f->path, "SELECT open FROM writer", "1");  /* a duplicate is no jump */

    st = open_store(f->path, MYNA_SYNC_NORMAL);
    sample_init(&x, "next", 1);
    status_init(&s, "wamid.out-3", MYNA_STATUS_SENT);
    assert_int_equal(myna_store_begin(st, &err), MYNA_OK);
    assert_int_equal(myna_store_put_inbound(st, &x.m, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_put_status(st, &s.s, 1, &err), MYNA_STORE_NEW);
    assert_int_equal(myna_store_commit(st, &err), MYNA_OK);
    myna_store_free(st);
    assert_sql(f->path, "SELECT open FROM writer", "0");  /* both jumped: a clean close */
}

#define FORK_TXNS 40
#define FORK_OWN_PER_TXN 10

/* One process's share of test_fork_concurrent_writers: opens its own handle
 * (none crosses fork) on a file that may not exist yet, then writes
 * FORK_TXNS transactions of its own messages plus one message that the
 * other process writes too. 0 on success; no cmocka calls, it may run in a
 * child. */
static int write_share(const char *path, const char *who)
{
    struct myna_store_opts o = { .sync = MYNA_SYNC_NORMAL, .busy_timeout_ms = 10000 };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st = myna_store_open_sqlite(path, &o, &err);
    struct sample x;
    int rc = st != NULL ? MYNA_OK : -1;

    for (int t = 0; rc == MYNA_OK && t < FORK_TXNS; t++) {
        rc = myna_store_begin(st, &err);
        for (int i = 0; rc == MYNA_OK && i < FORK_OWN_PER_TXN; i++) {
            sample_init(&x, who, t * FORK_OWN_PER_TXN + i);
            rc = myna_store_put_inbound(st, &x.m, 1, &err) == MYNA_STORE_NEW ? MYNA_OK : -1;
        }
        sample_init(&x, "shared", t);
        if (rc == MYNA_OK && myna_store_put_inbound(st, &x.m, 1, &err) < 0)
            rc = -1;
        if (rc == MYNA_OK)
            rc = myna_store_commit(st, &err);
    }
    if (rc != MYNA_OK)
        fprintf(stderr, "%s: %s\n", who, err.msg);
    myna_store_free(st);
    return rc;
}

static void test_fork_concurrent_writers(void **state)
{
    struct fix *f = *state;
    int go[2], status;
    char byte;
    pid_t pid;
    struct myna_store *st;

    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        /* start together with the parent: EOF when it closes its end */
        while (read(go[0], &byte, 1) < 0 && errno == EINTR)
            ;
        _exit(write_share(f->path, "child") == MYNA_OK ? 0 : 1);
    }
    close(go[0]);
    close(go[1]);
    assert_int_equal(write_share(f->path, "parent"), MYNA_OK);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    st = open_store(f->path, MYNA_SYNC_FULL);
    /* both shares, and each shared message once */
    assert_counts(st, 2 * FORK_TXNS * FORK_OWN_PER_TXN + FORK_TXNS, 0);
    myna_store_free(st);
    assert_sql(f->path, "PRAGMA user_version", SCHEMA_NOW);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_schema_and_wal),
        T(test_open_creates_private_files),
        T(test_reopen_keeps_data_without_migrating),
        T(test_open_refuses_newer_schema),
        T(test_open_upgrades_schema_1),
        T(test_open_refuses_other_files),
        T(test_open_missing_dir),
        T(test_open_existing_only),
        T(test_open_bad_options),
        T(test_open_refuses_read_only_file),
        T(test_checkpoint_pages),
        T(test_roundtrip_every_field),
        T(test_unknown_type_reads_as_unsupported),
        T(test_big_text_roundtrip),
        T(test_text_stored_once),
        T(test_text_kept_when_raw_differs),
        T(test_text_null_and_old_rows),
        T(test_dedupe_across_transactions),
        T(test_dedupe_inside_transaction),
        T(test_status_dedupe),
        T(test_rollback_keeps_nothing),
        T(test_rolled_back_spill_never_written),
        T(test_commit_failure_keeps_nothing),
        T(test_fault_loop_all_or_nothing),
        T(test_misuse_is_einval),
        T(test_busy_gives_clear_error),
        T(test_inbox_read_paging),
        T(test_inbox_find),
        T(test_count),
        T(test_two_handles),
        T(test_fork_concurrent_writers),
        T(test_clean_close_keeps_numbers),
        T(test_unclean_stop_jumps_numbers),
        T(test_two_handles_jump_apart),
        T(test_lost_tail_never_reuses_numbers),
        T(test_clean_close_before_jump_keeps_mark),
        T(test_mark_is_flushed_under_normal),
        T(test_unnumbered_store_marks_nothing),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
