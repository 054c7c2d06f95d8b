/* store_sqlite.c - the SQLite backend of store.h: one database file per
 * instance, WAL, every statement prepared once at open.
 *
 * Layout (perf-anchors.md): rows live in seq (rowid) order and the random
 * wamid sits in a narrow unique index; a wamid primary key would scatter the
 * 1.5 KB rows over the b-tree and cost 2-3x per insert. The same unique index
 * is the dedupe: a repeated wamid is an INSERT that does nothing.
 *
 * The schema grows by appending steps to migrations[] (PRAGMA user_version
 * counts the steps applied); a shipped step is never edited. Migrations run
 * at open, before the caller's event loop starts.
 *
 * A handle is used by one thread at a time (SQLITE_OPEN_NOMUTEX) and never
 * crosses fork(); each process opens its own. Nothing here logs or exits. */
#include "store/store.h"
#include "store/walbuf.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/util.h"
#include "core/banned.h"

#define DEFAULT_BUSY_TIMEOUT_MS 2000

/* Step i brings the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 1: inbox and statuses. received_ms is the ingress's clock, ts the
     * provider's; latitude/longitude are NULL unless the message has a
     * location. The contact index serves the bot's per-contact reads. */
    "CREATE TABLE inbox("
    " seq INTEGER PRIMARY KEY, wamid TEXT NOT NULL, contact TEXT NOT NULL,"
    " contact_user_id TEXT, profile_name TEXT, ts INTEGER NOT NULL,"
    " type TEXT NOT NULL, text TEXT, reply_id TEXT, media_id TEXT,"
    " mime_type TEXT, context_id TEXT, referral_id TEXT,"
    " error_code INTEGER NOT NULL DEFAULT 0, latitude REAL, longitude REAL,"
    " phone_number_id TEXT, raw TEXT NOT NULL, received_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX inbox_wamid ON inbox(wamid);"
    "CREATE INDEX inbox_contact ON inbox(contact, seq);"
    "CREATE TABLE statuses("
    " seq INTEGER PRIMARY KEY, wamid TEXT NOT NULL, status TEXT NOT NULL,"
    " recipient TEXT, ts INTEGER NOT NULL, error_code INTEGER NOT NULL DEFAULT 0,"
    " error_title TEXT, phone_number_id TEXT, raw TEXT NOT NULL,"
    " received_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX statuses_wamid_status ON statuses(wamid, status);",
    /* 2: the bot's state (bot_store.h). cursors: how far the bot has
     * consumed inbox and statuses. batches: one open batch per contact.
     * turns: what to answer, in order per contact (state 0 pending, 1 done;
     * ai 1 = answered by the LLM, 2 = got the rate-limit notice).
     * history: the conversation. outbox: replies, in order per contact
     * (state 0 pending, 1 sending, 2 accepted by Meta, 3 failed for good). */
    "CREATE TABLE cursors(name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE batches("
    " contact TEXT PRIMARY KEY, text TEXT NOT NULL, n INTEGER NOT NULL,"
    " first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
    " profile_name TEXT, last_wamid TEXT) WITHOUT ROWID;"
    "CREATE TABLE turns("
    " id INTEGER PRIMARY KEY, contact TEXT NOT NULL, kind TEXT NOT NULL,"
    " text TEXT NOT NULL, reply_id TEXT, last_wamid TEXT, profile_name TEXT,"
    " created_ms INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
    " ai INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    " completion_tokens INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX turns_pending ON turns(state, id);"
    "CREATE INDEX turns_ai ON turns(contact, ai, created_ms);"
    "CREATE TABLE history("
    " id INTEGER PRIMARY KEY, contact TEXT NOT NULL, role TEXT NOT NULL,"
    " text TEXT NOT NULL, ts_ms INTEGER NOT NULL);"
    "CREATE INDEX history_contact ON history(contact, id);"
    "CREATE TABLE outbox("
    " id INTEGER PRIMARY KEY, contact TEXT NOT NULL, turn_id INTEGER NOT NULL,"
    " body TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL DEFAULT 0,"
    " wamid TEXT, status TEXT, error_code INTEGER NOT NULL DEFAULT 0, error TEXT,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE INDEX outbox_open ON outbox(state, id);"
    "CREATE INDEX outbox_contact ON outbox(contact, id);"
    "CREATE UNIQUE INDEX outbox_wamid ON outbox(wamid);",
    /* 3: counters the bot adds to and the master's /metrics reads (the LLM's
     * calls, latency buckets and tokens): a scrape reads a few rows, never
     * the turns. */
    "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
    /* 4: what the bot knows of each contact: the WhatsApp name and
     * preferences (a JSON object of strings), given to the model. */
    ("CREATE TABLE profiles(contact TEXT PRIMARY KEY, name TEXT, prefs TEXT NOT NULL DEFAULT '{}',"
     " updated_ms INTEGER NOT NULL) WITHOUT ROWID;"),
    /* 5: the text of a text message is no longer stored twice: inbox.text
     * is NULL when it equals raw's text.body (put_inbound checks), which
     * halves the bytes of a typical row. The view gives it back; every read
     * goes through it. */
    ("CREATE VIEW messages AS SELECT seq, received_ms, phone_number_id, wamid, contact,"
     " contact_user_id, profile_name, ts, type,"
     " CASE WHEN text IS NULL AND type = 'text' AND json_valid(raw)"
     " AND json_type(raw, '$.text.body') = 'text' THEN json_extract(raw, '$.text.body')"
     " ELSE text END AS text,"
     " reply_id, media_id, mime_type, context_id, referral_id, error_code, latitude, longitude,"
     " raw FROM inbox;"),
    /* 6: no read of the inbox goes by contact (the bot reads in seq order and
     * keeps each chat in its own store), yet inbox_contact took one more
     * index page per message in every commit: with messages from many
     * chats, one page each. */
    "DROP INDEX IF EXISTS inbox_contact;",
    /* 7: open = 1 while a writer has the file (mark_writer); a row left at
     * 1 tells the next writer that the last one did not close it. */
    "CREATE TABLE writer(id INTEGER PRIMARY KEY CHECK (id = 1), open INTEGER NOT NULL);",
    /* 8: outbox.tries_from = attempts when the record was last replayed: a
     * replay keeps counting attempts (each send's callback data names its
     * number, so a late status of a send before the replay is told apart),
     * and send_tries counts the sends after it. */
    "ALTER TABLE outbox ADD COLUMN tries_from INTEGER NOT NULL DEFAULT 0;",
    /* 9: the bot's check for unconfirmed sends (every poll) reads the sends
     * still waiting for their first status; through outbox_open it read
     * every reply Meta ever took (state 2), and the outbox is kept. */
    "CREATE INDEX outbox_accepted ON outbox(status, updated_ms) WHERE status = 'accepted';",
    /* 10: the gauge of unconfirmed sends, read for every scrape of /metrics
     * on the master's loop, counts the flagged sends alone; it read the
     * whole outbox. */
    "CREATE INDEX outbox_unconfirmed ON outbox(status) WHERE status = 'unconfirmed';",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Column order of every inbox SELECT; inbox_row_fill reads by these. */
#define INBOX_COLS                                                          \
    "seq, received_ms, phone_number_id, wamid, contact, contact_user_id,"  \
    " profile_name, ts, type, text, reply_id, media_id, mime_type,"        \
    " context_id, referral_id, error_code, latitude, longitude, raw"
enum {
    IC_SEQ, IC_RECEIVED_MS, IC_PHONE_NUMBER_ID, IC_WAMID, IC_CONTACT,
    IC_CONTACT_USER_ID, IC_PROFILE_NAME, IC_TS, IC_TYPE, IC_TEXT, IC_REPLY_ID,
    IC_MEDIA_ID, IC_MIME_TYPE, IC_CONTEXT_ID, IC_REFERRAL_ID, IC_ERROR_CODE,
    IC_LATITUDE, IC_LONGITUDE, IC_RAW
};

#define STATUS_COLS                                                         \
    "seq, received_ms, phone_number_id, wamid, status, recipient, ts,"     \
    " error_code, error_title, raw"
enum {
    SC_SEQ, SC_RECEIVED_MS, SC_PHONE_NUMBER_ID, SC_WAMID, SC_STATUS,
    SC_RECIPIENT, SC_TS, SC_ERROR_CODE, SC_ERROR_TITLE, SC_RAW
};

enum stmt_id {
    STMT_BEGIN, STMT_COMMIT, STMT_ROLLBACK, STMT_PUT_INBOUND, STMT_PUT_STATUS,
    STMT_INBOX_READ, STMT_INBOX_FIND, STMT_STATUS_READ, STMT_COUNT, STMT_TOP,
    STMT__COUNT
};

/* The last parameter of each put is the row's seq: NULL (SQLite takes the
 * highest + 1) except for a row that must jump (mark_writer, jump_seq). */
#define INBOUND_SEQ_PARAM 19
#define STATUS_SEQ_PARAM 10

/* ON CONFLICT(...) DO NOTHING rather than INSERT OR IGNORE: OR IGNORE would
 * also swallow a NOT NULL violation and report a broken record as a dup. */
static const char *const stmt_sql[STMT__COUNT] = {
    /* IMMEDIATE takes the write lock now, so a commit never meets another
     * writer half way and busy_timeout covers the only wait. */
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_PUT_INBOUND] =
        "INSERT INTO inbox(wamid, contact, contact_user_id, profile_name, ts,"
        " type, text, reply_id, media_id, mime_type, context_id, referral_id,"
        " error_code, latitude, longitude, phone_number_id, raw, received_ms, seq)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
        " CASE WHEN ?6 = 'text' AND json_valid(?17) AND json_extract(?17, '$.text.body') IS ?7"
        " THEN NULL ELSE ?7 END,"
        " ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) ON CONFLICT(wamid) DO NOTHING",
    [STMT_PUT_STATUS] =
        "INSERT INTO statuses(wamid, status, recipient, ts, error_code,"
        " error_title, phone_number_id, raw, received_ms, seq)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        " ON CONFLICT(wamid, status) DO NOTHING",
    [STMT_INBOX_READ] =
        "SELECT " INBOX_COLS " FROM messages WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [STMT_INBOX_FIND] = "SELECT " INBOX_COLS " FROM messages WHERE wamid = ?1",
    [STMT_STATUS_READ] =
        "SELECT " STATUS_COLS " FROM statuses WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [STMT_COUNT] = "SELECT (SELECT count(*) FROM inbox), (SELECT count(*) FROM statuses)",
    /* column TBL_* is that table's highest seq */
    [STMT_TOP] = "SELECT (SELECT max(seq) FROM inbox), (SELECT max(seq) FROM statuses)",
};

struct sqlite_store {
    struct myna_store base;  /* first: a myna_store * is a sqlite_store * */
    sqlite3 *db;
    char *path;              /* for error messages */
    int busy_timeout_ms;
    sqlite3_stmt *stmt[STMT__COUNT];
    int in_txn;              /* begin succeeded; no commit or rollback yet */
    int txn_failed;          /* a put failed: commit must not keep the rest */
    int fail_after;          /* tests: the n-th put/commit fails; <= 0 off */
    enum myna_store_sync sync;
    int writer;              /* this handle marked the file open (mark_writer) */
    int unnumbered;          /* opts.unnumbered: never mark */
    /* Per table (TBL_*): jump is set while the next new row must jump
     * (mark_writer); jumped when a row of the open transaction did. */
    int jump[2];
    int jumped[2];
};

enum { TBL_INBOX, TBL_STATUSES };

static const struct myna_store_ops sqlite_ops;

static struct sqlite_store *sq(struct myna_store *st)
{
    return (struct sqlite_store *)st;
}

static int rc_code(int rc)
{
    return rc == SQLITE_NOMEM ? MYNA_ENOMEM : MYNA_ESTORE;
}

/* The connection's message when it is about rc; otherwise (our own malloc
 * failed, or a bind failed) the generic text of rc. */
static const char *reason(sqlite3 *db, int rc)
{
    return sqlite3_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

/* Ready for the next use. Clearing the bindings drops the SQLITE_STATIC
 * pointers to the caller's strings, which die when the put returns. */
static void stmt_done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* Fills err with "WHAT: REASON" for rc, then resets stmt so that the handle
 * stays usable. Returns MYNA_ESTORE or MYNA_ENOMEM. */
__attribute__((format(printf, 5, 6)))
static int stmt_fail(struct sqlite_store *s, sqlite3_stmt *stmt, int rc,
                     struct myna_err *err, const char *fmt, ...)
{
    char what[MYNA_ERR_MSG_MAX];
    va_list ap;
    int code = rc_code(rc);

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    myna_err_set(err, code, "%s: %s", what, reason(s->db, rc));
    if (stmt != NULL)
        stmt_done(stmt);
    return code;
}

static int open_fail(struct sqlite_store *s, int code, const char *why,
                     struct myna_err *err)
{
    return myna_err_set(err, code, "cannot open store '%s': %s", s->path, why);
}

/* True once, on the call that the test hook chose to fail. */
static int fault_fires(struct sqlite_store *s)
{
    if (s->fail_after <= 0 || --s->fail_after > 0)
        return 0;
    s->fail_after = -1;
    return 1;
}

void myna_store_sqlite_fail_after(struct myna_store *st, int n)
{
    if (st != NULL && st->ops == &sqlite_ops)
        sq(st)->fail_after = n;
}

/* ---- open: connection, pragmas, migrations, statements ---- */

static int busy_wait_1ms(void *arg, int count)
{
    const struct sqlite_store *s = arg;
    struct timespec ms = { 0, 1000 * 1000 };

    if (count >= s->busy_timeout_ms)
        return 0;  /* give up: SQLITE_BUSY */
    nanosleep(&ms, NULL);
    return 1;
}

/* sqlite3_rollback_hook: see myna_walbuf_discard. */
static void rolled_back(void *db)
{
    myna_walbuf_discard(db);
}

/* Under synchronous=FULL each commit's log goes out in one write (see
 * walbuf.h); under NORMAL with SQLite's own VFS. The rollback hook covers
 * every rollback on the connection: ours, SQLite's own after an error, and
 * those of the bot store, which shares it (bot_sqlite.c). */
static int open_db(struct sqlite_store *s, enum myna_store_sync sync, int existing,
                   struct myna_err *err)
{
    const int flags = SQLITE_OPEN_READWRITE | (existing ? 0 : SQLITE_OPEN_CREATE) |
                      SQLITE_OPEN_NOMUTEX;
    char why[MYNA_ERR_MSG_MAX];
    int rc, sys;

    /* customer messages: not for other local users (0600, as control.db);
     * a failure here shows in SQLite's own below */
    if (!existing && strcmp(s->path, ":memory:") != 0)
        (void)myna_file_create_private(s->path);
    rc = sqlite3_open_v2(s->path, &s->db, flags,
                         sync == MYNA_SYNC_FULL ? myna_walbuf_vfs() : NULL);
    if (rc == SQLITE_OK) {
        sqlite3_rollback_hook(s->db, rolled_back, s->db);
        /* SQLite opens a file it may not write for reading only, without
         * a word; every commit would then fail, and the handle would stay
         * read-only after the file is mended. A reader may go on. */
        if (!existing && sqlite3_db_readonly(s->db, "main") == 1)
            return open_fail(s, MYNA_ESTORE, "the file cannot be written "
                             "(read-only file, or its owner is another user)", err);
        return MYNA_OK;
    }
    if (s->db == NULL)
        return open_fail(s, MYNA_ENOMEM, sqlite3_errstr(rc), err);
    /* "unable to open database file" alone does not say that the directory
     * is missing or not writable; errno does. */
    sys = sqlite3_system_errno(s->db);
    if (existing && sys == ENOENT)
        return open_fail(s, MYNA_ENOTFOUND, "no such store", err);
    if (sys != 0)
        snprintf(why, sizeof(why), "%s (%s)", reason(s->db, rc), strerror(sys));
    else
        snprintf(why, sizeof(why), "%s", reason(s->db, rc));
    return open_fail(s, rc_code(rc), why, err);
}

/* One attempt at PRAGMA journal_mode=WAL: SQLITE_OK with the mode that
 * SQLite reports in mode[], or its error. */
static int try_wal(sqlite3 *db, char *mode, size_t mode_size)
{
    sqlite3_stmt *stmt = NULL;
    const char *m;
    int rc;

    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        m = (const char *)sqlite3_column_text(stmt, 0);
        snprintf(mode, mode_size, "%s", m ? m : "?");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Asks for WAL and checks the answer: SQLite keeps the old mode (and says
 * so) where WAL is impossible, e.g. on some network file systems.
 *
 * Turning a new file into WAL needs an exclusive lock, and SQLite answers
 * SQLITE_BUSY at once, without the busy handler, while another connection
 * reads the file: two processes opening a new store together. Open runs
 * before any event loop, so it may wait: retry for up to timeout_ms. */
static int set_wal(struct sqlite_store *s, int timeout_ms, struct myna_err *err)
{
    char mode[32], why[96];
    int rc, waited_ms = 0;

    while ((rc = try_wal(s->db, mode, sizeof(mode))) == SQLITE_BUSY && waited_ms < timeout_ms) {
        sqlite3_sleep(10);
        waited_ms += 10;
    }
    if (rc != SQLITE_OK)
        return open_fail(s, rc_code(rc), reason(s->db, rc), err);
    if (strcmp(mode, "wal") == 0)
        return MYNA_OK;
    snprintf(why, sizeof(why), "cannot use WAL (journal_mode is '%s')", mode);
    return open_fail(s, MYNA_ESTORE, why, err);
}

static int configure(struct sqlite_store *s, const struct myna_store_opts *o,
                     struct myna_err *err)
{
    int timeout_ms = o->busy_timeout_ms ? o->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    int rc;

    /* Before anything that locks: another process may be writing. */
    /* SQLite's own busy wait sleeps in growing steps up to 100 ms: a bot
     * waiting for the master's commit would oversleep by tens of ms on its
     * loop. Retry every millisecond instead, up to the same total. */
    s->busy_timeout_ms = timeout_ms;
    sqlite3_busy_handler(s->db, busy_wait_1ms, s);
    if ((rc = set_wal(s, timeout_ms, err)) != MYNA_OK)
        return rc;
    rc = sqlite3_exec(s->db, o->sync == MYNA_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                         : "PRAGMA synchronous=FULL",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    if (rc == SQLITE_OK && o->checkpoint_pages > 0)
        rc = sqlite3_wal_autocheckpoint(s->db, o->checkpoint_pages);
    if (rc != SQLITE_OK)
        return open_fail(s, rc_code(rc), reason(s->db, rc), err);
    return MYNA_OK;
}

static int read_user_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        *version = sqlite3_column_int(stmt, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int apply_migrations(sqlite3 *db, int from)
{
    char sql[64];
    int rc = SQLITE_OK;

    for (int v = from; rc == SQLITE_OK && v < SCHEMA_VERSION; v++)
        rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SCHEMA_VERSION);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    return rc;
}

/* Refuses a file that is not an instance store before a step runs on it:
 * every version of ours has the inbox (step 1), a control store
 * (control_sqlite.c) has users instead, and a file at version 0 is new only
 * while it holds nothing. Without this, the steps after a control store's
 * version ran on it (a first release's control.db became a "version 10"
 * file its own opener refuses), and another program's database was taken
 * over. */
static int check_kind(struct sqlite_store *s, int version, struct myna_err *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc, n_objects = 0, inbox = 0, users = 0;

    rc = sqlite3_prepare_v2(s->db, "SELECT (SELECT count(*) FROM sqlite_master),"
                            " EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND"
                            " name = 'inbox'), EXISTS(SELECT 1 FROM sqlite_master WHERE"
                            " type = 'table' AND name = 'users')", -1, &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        n_objects = sqlite3_column_int(stmt, 0);
        inbox = sqlite3_column_int(stmt, 1);
        users = sqlite3_column_int(stmt, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        return open_fail(s, rc_code(rc), reason(s->db, rc), err);
    if (inbox || (version == 0 && n_objects == 0))
        return MYNA_OK;
    return open_fail(s, MYNA_ESTORE, users ? "it is a myna control store, not an instance store"
                                           : "it is not a myna instance store (it holds "
                                             "tables of another kind)", err);
}

/* Brings the schema to SCHEMA_VERSION in one transaction: a crash half way
 * leaves the old version, and two processes opening a new file at once
 * migrate it once (the second finds the new version under the lock). */
static int migrate(struct sqlite_store *s, struct myna_err *err)
{
    int version = 0, rc, code;

    /* Most opens find the schema current: look first without the write
     * lock, so a bot restarting while the master writes need not wait. */
    rc = read_user_version(s->db, &version);
    if (rc == SQLITE_OK && version == SCHEMA_VERSION)
        return check_kind(s, version, err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = read_user_version(s->db, &version);
    if (rc == SQLITE_OK && (code = check_kind(s, version, err)) != MYNA_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return code;
    }
    if (rc == SQLITE_OK && version > SCHEMA_VERSION) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return myna_err_set(err, MYNA_ESTORE,
                            "cannot open store '%s': its schema version %d is newer "
                            "than this myna's %d", s->path, version, SCHEMA_VERSION);
    }
    if (rc == SQLITE_OK && version < 0) {  /* not a file of ours: no step comes before 0 */
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return myna_err_set(err, MYNA_ESTORE,
                            "cannot open store '%s': its schema version %d is not one of "
                            "myna's", s->path, version);
    }
    if (rc == SQLITE_OK)
        rc = apply_migrations(s->db, version);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return MYNA_OK;
    code = open_fail(s, rc_code(rc), reason(s->db, rc), err); /* before ROLLBACK resets the message */
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return code;
}

static int prepare_all(struct sqlite_store *s, struct myna_err *err)
{
    for (int i = 0; i < STMT__COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[i], NULL);
        if (rc != SQLITE_OK)
            return open_fail(s, rc_code(rc), reason(s->db, rc), err);
    }
    return MYNA_OK;
}

static void sqlite_free(struct myna_store *st);

sqlite3 *myna_store__sqlite_db(struct myna_store *st)
{
    return st != NULL && st->ops == &sqlite_ops ? ((struct sqlite_store *)st)->db : NULL;
}

struct myna_store *myna_store_open_sqlite(const char *path,
                                          const struct myna_store_opts *opts,
                                          struct myna_err *err)
{
    static const struct myna_store_opts defaults = { .sync = MYNA_SYNC_FULL };
    const struct myna_store_opts *o = opts ? opts : &defaults;
    struct sqlite_store *s;

    if (path == NULL || (o->sync != MYNA_SYNC_FULL && o->sync != MYNA_SYNC_NORMAL) ||
        o->busy_timeout_ms < 0 || o->checkpoint_pages < 0) {
        myna_err_set(err, MYNA_EINVAL, "cannot open store '%s': invalid options "
                     "(sync %d, busy_timeout_ms %d, checkpoint_pages %d)",
                     path ? path : "(null)", (int)o->sync, o->busy_timeout_ms,
                     o->checkpoint_pages);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        myna_err_set(err, MYNA_ENOMEM, "cannot open store '%s': out of memory", path);
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    s->fail_after = -1;
    s->sync = o->sync;
    s->unnumbered = o->unnumbered != 0;
    if (open_db(s, o->sync, o->existing, err) != MYNA_OK || configure(s, o, err) != MYNA_OK ||
        migrate(s, err) != MYNA_OK || prepare_all(s, err) != MYNA_OK) {
        sqlite_free(&s->base);
        return NULL;
    }
    return &s->base;
}

/* ---- transactions ---- */

/* Ends the open transaction keeping nothing. ROLLBACK fails only with
 * statements still running, and every statement here is reset after use. */
static void txn_rollback(struct sqlite_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->stmt[STMT_ROLLBACK]);
        stmt_done(s->stmt[STMT_ROLLBACK]);
    }
    s->in_txn = 0;
    s->txn_failed = 0;
    s->jumped[TBL_INBOX] = s->jumped[TBL_STATUSES] = 0;  /* the jump is still to come */
}

/* How far past the highest stored number the first new row of each table
 * jumps after a writer that did not close the file: more records than any
 * log could have held since its last flush. */
#define SEQ_JUMP ((int64_t)1 << 32)

/* A bot keeps its place in the inbox and statuses by seq. If the newest
 * records are lost (a power loss under synchronous=NORMAL), SQLite would
 * give their numbers to the next records, and a bot that had read the lost
 * ones would skip the new.
 *
 * So the first write of a handle marks the file open, in a commit that is
 * flushed to disk even under NORMAL; a clean close unmarks it. A writer that
 * finds the mark set cannot know what was lost after it: the first new row
 * of each table then takes SEQ_JUMP past the highest number stored when
 * that row is written (jump_seq). A log that survives keeps a prefix of its
 * commits, so any lost record came after the mark. Only the first write of
 * a handle pays the extra flush. */
static int mark_writer(struct sqlite_store *s, struct myna_err *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc, was_open = 0;

    rc = s->sync == MYNA_SYNC_NORMAL
             ? sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "SELECT (SELECT open FROM writer WHERE id = 1)", -1,
                                &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        was_open = sqlite3_column_int(stmt, 0) != 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "INSERT INTO writer(id, open) VALUES(1, 1)"
                          " ON CONFLICT(id) DO UPDATE SET open = 1", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        myna_err_set(err, rc_code(rc), "cannot mark store '%s' open for writing: %s",
                     s->path, reason(s->db, rc));
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (s->sync == MYNA_SYNC_NORMAL)
        sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc_code(rc);
    s->writer = 1;
    s->jump[TBL_INBOX] = s->jump[TBL_STATUSES] = was_open;
    return MYNA_OK;
}

/* The other half of mark_writer, on close. If it fails the mark stays, and
 * the next writer jumps for nothing: harmless. A table whose jump is still
 * to come (the handle wrote no new row to it) keeps the mark too: the
 * numbers lost before this handle are still unknown, so the next writer
 * must jump in its place. */
static void unmark_writer(struct sqlite_store *s)
{
    if (s->writer && !s->jump[TBL_INBOX] && !s->jump[TBL_STATUSES])
        sqlite3_exec(s->db, "UPDATE writer SET open = 0 WHERE id = 1", NULL, NULL, NULL);
}

static int sqlite_begin(struct myna_store *st, struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_BEGIN];
    int rc;

    if (s->in_txn)
        return myna_err_set(err, MYNA_EINVAL, "cannot begin a transaction on store "
                            "'%s': one is already open", s->path);
    if (!s->writer && !s->unnumbered && (rc = mark_writer(s, err)) != MYNA_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        return stmt_fail(s, stmt, rc, err, "cannot begin a transaction on store '%s'",
                         s->path);
    stmt_done(stmt);
    s->in_txn = 1;
    s->txn_failed = 0;
    return MYNA_OK;
}

static int sqlite_commit(struct myna_store *st, struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_COMMIT];
    int rc, code;

    if (!s->in_txn)
        return myna_err_set(err, MYNA_EINVAL, "cannot commit to store '%s': no "
                            "transaction is open", s->path);
    /* All or nothing: the puts that worked must not outlive one that failed,
     * even when the caller commits anyway. */
    if (s->txn_failed || fault_fires(s)) {
        code = myna_err_set(err, MYNA_ESTORE, "cannot commit to store '%s': %s", s->path,
                            s->txn_failed ? "a put of this transaction failed"
                                          : "injected fault");
        txn_rollback(s);
        return code;
    }
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        code = stmt_fail(s, stmt, rc, err, "cannot commit to store '%s'", s->path);
        txn_rollback(s);
        return code;
    }
    stmt_done(stmt);
    s->in_txn = 0;
    for (int t = TBL_INBOX; t <= TBL_STATUSES; t++)
        if (s->jumped[t])
            s->jump[t] = s->jumped[t] = 0;
    return MYNA_OK;
}

static void sqlite_rollback(struct myna_store *st)
{
    struct sqlite_store *s = sq(st);

    if (s->in_txn)
        txn_rollback(s);
}

/* ---- puts ---- */

/* Binds parameters left to right and keeps the first error, so that a put
 * checks once instead of after each of its binds. */
struct binder {
    sqlite3_stmt *stmt;
    int i;
    int rc;
};

/* SQLITE_STATIC: the caller keeps s alive until the put returns, and the
 * put clears its bindings before it returns. */
static void bind_text(struct binder *b, const char *s, size_t len)
{
    int i = ++b->i;

    if (b->rc != SQLITE_OK)
        return;
    if (s == NULL)
        b->rc = sqlite3_bind_null(b->stmt, i);
    else
        b->rc = sqlite3_bind_text64(b->stmt, i, s, len, SQLITE_STATIC, SQLITE_UTF8);
}

static void bind_str(struct binder *b, const char *s)
{
    bind_text(b, s, s ? strlen(s) : 0);
}

static void bind_int64(struct binder *b, int64_t v)
{
    int i = ++b->i;

    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->stmt, i, v);
}

static void bind_real(struct binder *b, int present, double v)
{
    int i = ++b->i;

    if (b->rc == SQLITE_OK)
        b->rc = present ? sqlite3_bind_double(b->stmt, i, v) : sqlite3_bind_null(b->stmt, i);
}

/* In the column order of STMT_PUT_INBOUND. */
static int bind_inbound(sqlite3_stmt *stmt, const struct myna_inbound *m, int64_t received_ms)
{
    struct binder b = { stmt, 0, SQLITE_OK };

    bind_str(&b, m->wamid);
    bind_str(&b, m->contact);
    bind_str(&b, m->contact_user_id);
    bind_str(&b, m->profile_name);
    bind_int64(&b, m->ts);
    bind_str(&b, myna_msg_type_name(m->type));
    bind_str(&b, m->text);
    bind_str(&b, m->reply_id);
    bind_str(&b, m->media_id);
    bind_str(&b, m->mime_type);
    bind_str(&b, m->context_id);
    bind_str(&b, m->referral_id);
    bind_int64(&b, m->error_code);
    bind_real(&b, m->has_location, m->latitude);
    bind_real(&b, m->has_location, m->longitude);
    bind_str(&b, m->phone_number_id);
    bind_text(&b, m->raw, m->raw_len);
    bind_int64(&b, received_ms);
    return b.rc;
}

/* In the column order of STMT_PUT_STATUS. The status is kept as received,
 * so that a name this myna does not know yet is not lost. */
static int bind_status(sqlite3_stmt *stmt, const struct myna_status_rec *r, int64_t received_ms)
{
    struct binder b = { stmt, 0, SQLITE_OK };

    bind_str(&b, r->wamid);
    bind_str(&b, r->status_name);
    bind_str(&b, r->recipient);
    bind_int64(&b, r->ts);
    bind_int64(&b, r->error_code);
    bind_str(&b, r->error_title);
    bind_str(&b, r->phone_number_id);
    bind_text(&b, r->raw, r->raw_len);
    bind_int64(&b, received_ms);
    return b.rc;
}

/* What every put checks before it writes. what/wamid name the record. */
static int put_check(struct sqlite_store *s, const char *what, const char *wamid,
                     struct myna_err *err)
{
    const char *why;

    if (!s->in_txn)
        return myna_err_set(err, MYNA_EINVAL, "cannot store %s '%s' in store '%s': "
                            "no transaction is open", what, wamid, s->path);
    if (sqlite3_get_autocommit(s->db))
        /* SQLite rolled back by itself after an error (disk full, I/O):
         * a put now would commit on its own, outside the transaction. */
        why = "the transaction was rolled back after an earlier error";
    else if (fault_fires(s))
        why = "injected fault";
    else
        return MYNA_OK;
    s->txn_failed = 1;
    return myna_err_set(err, MYNA_ESTORE, "cannot store %s '%s' in store '%s': %s",
                        what, wamid, s->path, why);
}

/* The seq of a row of table tbl that must jump: SEQ_JUMP past the highest
 * stored, read in the transaction that writes the row. A number taken when
 * the mark was read would be the same for every handle that read it then,
 * and the second handle's row would meet the first's. *seq is 0 when the
 * jump would overflow: the row then takes the next number. */
static int jump_seq(struct sqlite_store *s, int tbl, int64_t *seq)
{
    sqlite3_stmt *stmt = s->stmt[STMT_TOP];
    int rc = sqlite3_step(stmt);
    int64_t top;

    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc;
    }
    top = sqlite3_column_int64(stmt, tbl);  /* 0 for an empty table */
    sqlite3_reset(stmt);
    *seq = top >= 0 && top <= INT64_MAX - SEQ_JUMP ? top + SEQ_JUMP : 0;
    return SQLITE_OK;
}

/* Steps a bound insert into table tbl: MYNA_STORE_NEW, MYNA_STORE_DUP (the
 * unique index already holds the key, committed or earlier in this
 * transaction), or < 0. Binds the seq parameter when the table must jump. */
static int put_run(struct sqlite_store *s, sqlite3_stmt *stmt, int rc, int tbl, int seq_param,
                   const char *what, const char *wamid, struct myna_err *err)
{
    int changed, jump = s->jump[tbl] && !s->jumped[tbl];
    int64_t seq = 0;

    if (rc == SQLITE_OK && jump)
        rc = jump_seq(s, tbl, &seq);
    if (rc == SQLITE_OK && seq != 0)
        rc = sqlite3_bind_int64(stmt, seq_param, seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        s->txn_failed = 1;
        return stmt_fail(s, stmt, rc, err, "cannot store %s '%s' in store '%s'", what,
                         wamid, s->path);
    }
    changed = sqlite3_changes(s->db);
    stmt_done(stmt);
    if (changed == 1 && jump)
        s->jumped[tbl] = 1;  /* the rows after it follow on from its number */
    return changed == 1 ? MYNA_STORE_NEW : MYNA_STORE_DUP;
}

static int sqlite_put_inbound(struct myna_store *st, const struct myna_inbound *m,
                              int64_t received_ms, struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_PUT_INBOUND];
    int rc;

    if (m == NULL || m->wamid == NULL || m->contact == NULL || m->raw == NULL)
        return myna_err_set(err, MYNA_EINVAL, "cannot store a message in store '%s': "
                            "wamid, contact and raw are required", s->path);
    if ((rc = put_check(s, "message", m->wamid, err)) != MYNA_OK)
        return rc;
    return put_run(s, stmt, bind_inbound(stmt, m, received_ms), TBL_INBOX, INBOUND_SEQ_PARAM,
                   "message", m->wamid, err);
}

static int sqlite_put_status(struct myna_store *st, const struct myna_status_rec *r,
                             int64_t received_ms, struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_PUT_STATUS];
    int rc;

    if (r == NULL || r->wamid == NULL || r->status_name == NULL || r->raw == NULL)
        return myna_err_set(err, MYNA_EINVAL, "cannot store a status in store '%s': "
                            "wamid, status_name and raw are required", s->path);
    if ((rc = put_check(s, "status of message", r->wamid, err)) != MYNA_OK)
        return rc;
    return put_run(s, stmt, bind_status(stmt, r, received_ms), TBL_STATUSES, STATUS_SEQ_PARAM,
                   "status of message", r->wamid, err);
}

/* ---- reads ---- */

/* Copies column i into *out (NULL for SQL NULL), malloc'd and NUL-terminated;
 * *len (if not NULL) is its length. Nonzero when out of memory. */
static int col_dup(sqlite3_stmt *stmt, int i, const char **out, size_t *len)
{
    const unsigned char *p;
    size_t n;
    char *copy;

    *out = NULL;
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
        return 0;
    p = sqlite3_column_text(stmt, i);
    n = (size_t)sqlite3_column_bytes(stmt, i); /* after _text: its byte length */
    if (p == NULL || (copy = malloc(n + 1)) == NULL)
        return 1;
    memcpy(copy, p, n);
    copy[n] = '\0';
    *out = copy;
    if (len != NULL)
        *len = n;
    return 0;
}

/* SQLITE_OK, or SQLITE_NOMEM with the row released. */
static int inbox_row_fill(sqlite3_stmt *stmt, struct myna_inbox_row *row)
{
    struct myna_inbound *m = &row->m;
    const char *type;

    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, IC_SEQ);
    row->received_ms = sqlite3_column_int64(stmt, IC_RECEIVED_MS);
    m->ts = sqlite3_column_int64(stmt, IC_TS);
    m->error_code = sqlite3_column_int(stmt, IC_ERROR_CODE);
    if (sqlite3_column_type(stmt, IC_LATITUDE) != SQLITE_NULL) {
        m->has_location = 1;
        m->latitude = sqlite3_column_double(stmt, IC_LATITUDE);
        m->longitude = sqlite3_column_double(stmt, IC_LONGITUDE);
    }
    type = (const char *)sqlite3_column_text(stmt, IC_TYPE);
    if (type == NULL)
        return SQLITE_NOMEM;  /* the column is NOT NULL */
    m->type = myna_msg_type_from_name(type);
    if (m->type == MYNA_MSG__COUNT)  /* written by a newer myna */
        m->type = MYNA_MSG_UNSUPPORTED;
    if (col_dup(stmt, IC_PHONE_NUMBER_ID, &m->phone_number_id, NULL) ||
        col_dup(stmt, IC_WAMID, &m->wamid, NULL) ||
        col_dup(stmt, IC_CONTACT, &m->contact, NULL) ||
        col_dup(stmt, IC_CONTACT_USER_ID, &m->contact_user_id, NULL) ||
        col_dup(stmt, IC_PROFILE_NAME, &m->profile_name, NULL) ||
        col_dup(stmt, IC_TEXT, &m->text, NULL) ||
        col_dup(stmt, IC_REPLY_ID, &m->reply_id, NULL) ||
        col_dup(stmt, IC_MEDIA_ID, &m->media_id, NULL) ||
        col_dup(stmt, IC_MIME_TYPE, &m->mime_type, NULL) ||
        col_dup(stmt, IC_CONTEXT_ID, &m->context_id, NULL) ||
        col_dup(stmt, IC_REFERRAL_ID, &m->referral_id, NULL) ||
        col_dup(stmt, IC_RAW, &m->raw, &m->raw_len)) {
        myna_store_inbox_row_release(row);
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static int status_row_fill(sqlite3_stmt *stmt, struct myna_status_row *row)
{
    struct myna_status_rec *r = &row->s;

    memset(row, 0, sizeof(*row));
    row->seq = sqlite3_column_int64(stmt, SC_SEQ);
    row->received_ms = sqlite3_column_int64(stmt, SC_RECEIVED_MS);
    r->ts = sqlite3_column_int64(stmt, SC_TS);
    r->error_code = sqlite3_column_int(stmt, SC_ERROR_CODE);
    if (col_dup(stmt, SC_PHONE_NUMBER_ID, &r->phone_number_id, NULL) ||
        col_dup(stmt, SC_WAMID, &r->wamid, NULL) ||
        col_dup(stmt, SC_STATUS, &r->status_name, NULL) ||
        col_dup(stmt, SC_RECIPIENT, &r->recipient, NULL) ||
        col_dup(stmt, SC_ERROR_TITLE, &r->error_title, NULL) ||
        col_dup(stmt, SC_RAW, &r->raw, &r->raw_len) ||
        r->status_name == NULL) {  /* NOT NULL column: only a corrupt file */
        myna_store_status_row_release(row);
        return SQLITE_NOMEM;
    }
    r->status = myna_status_kind_from_name(r->status_name);
    return SQLITE_OK;
}

static int bind_page(sqlite3_stmt *stmt, int64_t after_seq, size_t max)
{
    int rc = sqlite3_bind_int64(stmt, 1, after_seq);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return rc;
}

static int sqlite_inbox_read(struct myna_store *st, int64_t after_seq, size_t max,
                             struct myna_inbox_row *rows, size_t *n, struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_INBOX_READ];
    int rc;

    *n = 0;
    if (max == 0)
        return MYNA_OK;
    rc = bind_page(stmt, after_seq, max);
    while (rc == SQLITE_OK && *n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if ((rc = inbox_row_fill(stmt, &rows[*n])) == SQLITE_OK)
            (*n)++;
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        while (*n > 0)
            myna_store_inbox_row_release(&rows[--*n]);
        return stmt_fail(s, stmt, rc, err, "cannot read the inbox of store '%s'", s->path);
    }
    /* Also ends the read transaction, so the next read sees new commits. */
    stmt_done(stmt);
    return MYNA_OK;
}

static int sqlite_status_read(struct myna_store *st, int64_t after_seq, size_t max,
                              struct myna_status_row *rows, size_t *n, struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_STATUS_READ];
    int rc;

    *n = 0;
    if (max == 0)
        return MYNA_OK;
    rc = bind_page(stmt, after_seq, max);
    while (rc == SQLITE_OK && *n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if ((rc = status_row_fill(stmt, &rows[*n])) == SQLITE_OK)
            (*n)++;
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        while (*n > 0)
            myna_store_status_row_release(&rows[--*n]);
        return stmt_fail(s, stmt, rc, err, "cannot read the statuses of store '%s'",
                         s->path);
    }
    stmt_done(stmt);
    return MYNA_OK;
}

static int sqlite_inbox_find(struct myna_store *st, const char *wamid,
                             struct myna_inbox_row *row, struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_INBOX_FIND];
    int rc;

    memset(row, 0, sizeof(*row));
    if (wamid == NULL)
        return myna_err_set(err, MYNA_EINVAL, "cannot find a message in store '%s': "
                            "no wamid", s->path);
    rc = sqlite3_bind_text(stmt, 1, wamid, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
        rc = inbox_row_fill(stmt, row);
    if (rc == SQLITE_DONE) {
        stmt_done(stmt);
        return myna_err_set(err, MYNA_ENOTFOUND, "message '%s' not found in store '%s'",
                            wamid, s->path);
    }
    if (rc != SQLITE_OK)
        return stmt_fail(s, stmt, rc, err, "cannot find message '%s' in store '%s'", wamid,
                         s->path);
    stmt_done(stmt);
    return MYNA_OK;
}

static int sqlite_count(struct myna_store *st, int64_t *n_inbox, int64_t *n_status,
                        struct myna_err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = s->stmt[STMT_COUNT];
    int rc = sqlite3_step(stmt);

    if (rc != SQLITE_ROW)
        return stmt_fail(s, stmt, rc, err, "cannot count the rows of store '%s'", s->path);
    if (n_inbox != NULL)
        *n_inbox = sqlite3_column_int64(stmt, 0);
    if (n_status != NULL)
        *n_status = sqlite3_column_int64(stmt, 1);
    stmt_done(stmt);
    return MYNA_OK;
}

/* ---- close ---- */

/* Also frees a handle that open left half built. */
static void sqlite_free(struct myna_store *st)
{
    struct sqlite_store *s = sq(st);

    if (s->db != NULL && s->in_txn)
        txn_rollback(s);
    if (s->db != NULL)
        unmark_writer(s);
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);  /* NULL is a no-op */
    sqlite3_close(s->db);              /* every statement is finalized: cannot be busy */
    free(s->path);
    free(s);
}

static const struct myna_store_ops sqlite_ops = {
    .name = "sqlite",
    .begin = sqlite_begin,
    .put_inbound = sqlite_put_inbound,
    .put_status = sqlite_put_status,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .inbox_read = sqlite_inbox_read,
    .inbox_find = sqlite_inbox_find,
    .status_read = sqlite_status_read,
    .count = sqlite_count,
    .free = sqlite_free,
};
