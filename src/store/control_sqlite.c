/* control_sqlite.c - control.h on its own SQLite file, var/control.db: WAL,
 * synchronous=FULL (admin writes are rare and must survive a power cut),
 * foreign keys on, every statement prepared once at open.
 *
 * The schema grows by appending steps to migrations[] (PRAGMA user_version
 * counts the steps applied); a shipped step is never edited. Migrations run
 * at open, before the master's event loop starts.
 *
 * Strings from the caller are bound SQLITE_STATIC (a 1 MB config is not
 * copied) and the bindings are cleared before each call returns, so no
 * statement keeps a pointer to the caller's memory. Nothing here logs. */
#include "store/control.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "core/banned.h"

/* A name or an id from outside, for "'%.*s'" in a message: at most 64
 * bytes, cut between characters (a message may go out as JSON). */
#define SHOWN(s) (int)myna_utf8_cut((s) ? (s) : "(null)", 64), ((s) ? (s) : "(null)")

#define BUSY_TIMEOUT_MS 2000

/* Step i brings the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 1: users, their API tokens, instances and the audit log. A token is
     * kept as the hex SHA-256 of it. Deleting a user takes its tokens and
     * leaves its instances without an owner; audit rows keep user_name and
     * have no foreign key, so that history outlives the users. */
    "CREATE TABLE users("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " role INTEGER NOT NULL CHECK(role BETWEEN 0 AND 2), password_hash TEXT,"
    " created_ms INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE tokens("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " hash TEXT NOT NULL UNIQUE, name TEXT, created_ms INTEGER NOT NULL,"
    " last_used_ms INTEGER, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tokens_user ON tokens(user_id, id);"
    "CREATE TABLE instances("
    " id TEXT PRIMARY KEY NOT NULL,"
    " owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    " config TEXT NOT NULL, enabled INTEGER NOT NULL, auto_start INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX instances_owner ON instances(owner_id, id);"
    "CREATE TABLE audit("
    " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, user_id INTEGER, user_name TEXT,"
    " action TEXT NOT NULL, target TEXT, detail TEXT, from_addr TEXT);",
    /* 2: a token may end at a time (a login's does); 0: never. */
    "ALTER TABLE tokens ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;",
    /* 3: audit ids are never given twice, even once retention has emptied
     * the log (a reader may remember the last id it saw). */
    "CREATE TABLE audit_v3("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, user_id INTEGER,"
    " user_name TEXT, action TEXT NOT NULL, target TEXT, detail TEXT, from_addr TEXT);"
    "INSERT INTO audit_v3 SELECT id, ts_ms, user_id, user_name, action, target, detail, from_addr"
    " FROM audit;"
    "DROP TABLE audit;"
    "ALTER TABLE audit_v3 RENAME TO audit;",
    /* 4: retention finds the old rows by time, not among the oldest ids: a
     * row written while the clock ran ahead is no longer the first of them. */
    "CREATE INDEX audit_ts ON audit(ts_ms);",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define USER_COLS "id, name, role, password_hash, created_ms, disabled"
#define TOKEN_COLS "id, user_id, name, created_ms, last_used_ms, revoked, expires_ms"
#define INST_COLS \
    "id, owner_id, config, enabled, auto_start, created_ms, updated_ms, version"
#define AUDIT_COLS "id, ts_ms, user_id, user_name, action, target, detail, from_addr"

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
    Q_USER_ADD, Q_USER_BY_ID, Q_USER_BY_NAME, Q_USER_LIST, Q_USER_ADMINS, Q_USER_WAYS_IN,
    Q_USER_SET_PASSWORD, Q_USER_SET_ROLE, Q_USER_SET_DISABLED,
    Q_TOKEN_ADD, Q_TOKEN_FIND, Q_TOKEN_TOUCH, Q_TOKEN_LIST, Q_TOKEN_REVOKE, Q_TOKEN_OWNED, Q_TOKEN_PRUNE,
    Q_INST_CREATE, Q_INST_GET, Q_INST_LIST, Q_INST_UPDATE, Q_INST_VERSION, Q_INST_DELETE,
    Q_INST_COUNT,
    Q_AUDIT_ADD, Q_AUDIT_LIST, Q_AUDIT_PRUNE,
    Q__COUNT
};

/* "0 for all" filters are (?1 = 0 OR col = ?1): the tables are small (tens
 * of users and instances), a scan of them costs nothing. */
static const char *const q_sql[Q__COUNT] = {
    /* IMMEDIATE takes the write lock now: a commit never meets another
     * writer half way, and the busy handler covers the only wait. */
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_USER_ADD] = "INSERT INTO users(name, role, password_hash, created_ms)"
                   " VALUES(?1, ?2, ?3, ?4)",
    [Q_USER_BY_ID] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [Q_USER_BY_NAME] = "SELECT " USER_COLS " FROM users WHERE name = ?1",
    [Q_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY id LIMIT ?1 OFFSET ?2",
    [Q_USER_ADMINS] = "SELECT count(*) FROM users WHERE role = 2 AND disabled = 0",
    [Q_USER_WAYS_IN] = "SELECT (SELECT count(*) FROM users WHERE role = 2 AND disabled = 0"
                       " AND password_hash IS NOT NULL)"
                       " + (SELECT count(*) FROM tokens t JOIN users u ON u.id = t.user_id"
                       " WHERE u.role = 2 AND u.disabled = 0 AND t.revoked = 0"
                       " AND (t.expires_ms = 0 OR t.expires_ms > ?1))",
    [Q_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?2 WHERE id = ?1",
    [Q_USER_SET_ROLE] = "UPDATE users SET role = ?2 WHERE id = ?1",
    [Q_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE id = ?1",
    [Q_TOKEN_ADD] = "INSERT INTO tokens(user_id, hash, name, created_ms, expires_ms)"
                    " VALUES(?1, ?2, ?3, ?4, ?5)",
    /* one row whatever the state, so that a refusal can say why */
    [Q_TOKEN_FIND] = "SELECT u.id, u.name, u.role, u.password_hash, u.created_ms, u.disabled,"
                     " t.id, t.revoked, t.last_used_ms, t.expires_ms"
                     " FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
    /* the condition again: another process may have touched it meanwhile */
    [Q_TOKEN_TOUCH] = "UPDATE tokens SET last_used_ms = ?2 WHERE id = ?1"
                      " AND (last_used_ms IS NULL OR last_used_ms <= ?2 - ?3)",
    [Q_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens WHERE (?1 = 0 OR user_id = ?1)"
                     " AND id > ?4 ORDER BY id LIMIT ?2 OFFSET ?3",
    [Q_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE id = ?1 AND (?2 = 0 OR user_id = ?2)"
                       " AND revoked = 0",
    [Q_TOKEN_OWNED] = "SELECT count(*) FROM tokens WHERE id = ?1 AND (?2 = 0 OR user_id = ?2)",
    [Q_TOKEN_PRUNE] = "DELETE FROM tokens WHERE expires_ms != 0 AND expires_ms <= ?1",
    [Q_INST_CREATE] = "INSERT INTO instances(id, owner_id, config, enabled, auto_start,"
                      " created_ms, updated_ms, version) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)",
    [Q_INST_GET] = "SELECT " INST_COLS " FROM instances WHERE id = ?1",
    [Q_INST_LIST] = "SELECT " INST_COLS " FROM instances WHERE (?1 = 0 OR owner_id = ?1)"
                    " ORDER BY id LIMIT ?2 OFFSET ?3",
    [Q_INST_UPDATE] = "UPDATE instances SET config = coalesce(?2, config),"
                      " enabled = CASE WHEN ?3 < 0 THEN enabled ELSE ?3 END,"
                      " auto_start = CASE WHEN ?4 < 0 THEN auto_start ELSE ?4 END,"
                      " updated_ms = ?5, version = version + 1"
                      " WHERE id = ?1 AND (?6 < 0 OR version = ?6) RETURNING version",
    [Q_INST_VERSION] = "SELECT version FROM instances WHERE id = ?1",
    [Q_INST_DELETE] = "DELETE FROM instances WHERE id = ?1",
    [Q_INST_COUNT] = "SELECT count(*) FROM instances WHERE (?1 = 0 OR owner_id = ?1)",
    [Q_AUDIT_ADD] = "INSERT INTO audit(ts_ms, user_id, user_name, action, target, detail,"
                    " from_addr) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_AUDIT_LIST] = "SELECT " AUDIT_COLS " FROM audit WHERE id < ?3 ORDER BY id DESC "
                     "LIMIT ?1 OFFSET ?2",
    /* the oldest by time through audit_ts: a step reads about limit rows,
     * however many newer rows (a clock that ran ahead) have lower ids */
    [Q_AUDIT_PRUNE] = "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts_ms < ?1"
                      " ORDER BY ts_ms LIMIT ?2)",
};

struct myna_control {
    sqlite3 *db;
    char *path;         /* for error messages */
    sqlite3_stmt *q[Q__COUNT];
    int in_txn;         /* begin succeeded; no commit or rollback yet */
    int fail_after;     /* tests: the n-th write fails; <= 0 off */
};

/* step_write's answer for a fault injected by a test. */
#define FAULT (-1)
/* step_write's answer inside a transaction that SQLite rolled back after
 * an error: the write would commit alone, outside it. */
#define TXN_LOST (-2)

static int code_of(int rc)
{
    return (rc & 0xff) == SQLITE_NOMEM ? MYNA_ENOMEM : MYNA_ESTORE;
}

/* The connection's message when it is about rc, else the generic text. */
static const char *reason(sqlite3 *db, int rc)
{
    if (rc == FAULT)
        return "injected fault";
    if (rc == TXN_LOST)
        return "the transaction was rolled back after an error";
    return sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

/* err = "WHAT: REASON" for the SQLite result rc; MYNA_ESTORE/ENOMEM. */
__attribute__((format(printf, 4, 5)))
static int fail(struct myna_control *c, int rc, struct myna_err *err, const char *fmt, ...)
{
    char what[MYNA_ERR_MSG_MAX];
    va_list ap;
    int code = rc == FAULT || rc == TXN_LOST ? MYNA_ESTORE : code_of(rc);

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return myna_err_set(err, code, "%s: %s", what, reason(c->db, rc));
}

/* Ready for the next use, holding no pointer to the caller's strings. */
static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* True once, on the write that the test hook chose to fail. */
static int fault_fires(struct myna_control *c)
{
    if (c->fail_after <= 0 || --c->fail_after > 0)
        return 0;
    c->fail_after = -1;
    return 1;
}

void myna_control_fail_after(struct myna_control *c, int n)
{
    if (c != NULL)
        c->fail_after = n;
}

sqlite3 *myna_control__sqlite_db(struct myna_control *c)
{
    return c != NULL ? c->db : NULL;
}

/* True when begin succeeded but SQLite has since rolled the transaction
 * back on its own (disk full, I/O, out of memory). */
static int txn_lost(struct myna_control *c)
{
    return c->in_txn && sqlite3_get_autocommit(c->db);
}

/* Runs a statement that returns no rows: SQLITE_DONE, FAULT, TXN_LOST or
 * the error. The error stays readable through reason() after the reset. */
static int step_write(struct myna_control *c, sqlite3_stmt *s)
{
    int rc = txn_lost(c) ? TXN_LOST : fault_fires(c) ? FAULT : sqlite3_step(s);

    done(s);
    return rc;
}

/* SQLITE_STATIC: the caller's string lives until the call returns, and
 * done() clears the binding before that. */
static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* 0 stands for "none" in the API and for NULL in the tables. */
static void bind_id_or_null(sqlite3_stmt *s, int i, int64_t id)
{
    if (id != 0)
        sqlite3_bind_int64(s, i, id);
    else
        sqlite3_bind_null(s, i);
}

/* A malloc'd copy of text column i, NULL for SQL NULL; *ok becomes 0 when
 * memory ran out (column_text is NULL then too). */
static char *col_dup(sqlite3_stmt *s, int i, int *ok)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n;
    char *d;

    if (t == NULL) {
        if (sqlite3_column_type(s, i) != SQLITE_NULL)
            *ok = 0;
        return NULL;
    }
    n = (size_t)sqlite3_column_bytes(s, i);
    if ((d = malloc(n + 1)) == NULL) {
        *ok = 0;
        return NULL;
    }
    memcpy(d, t, n);
    d[n] = '\0';
    return d;
}

/* ---- arguments ---- */

/* 1-64 of [a-z0-9._@-]: safe in URLs, logs and messages as it is. */
static int valid_user_name(const char *s)
{
    size_t n;

    if (s == NULL)
        return 0;
    for (n = 0; s[n]; n++) {
        char ch = s[n];
        if (n >= MYNA_CONTROL_NAME_MAX ||
            !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-' || ch == '@'))
            return 0;
    }
    return n >= 1;
}

/* 0 guest, 1 user, 2 admin: the values of enum myna_role (core/auth.h),
 * stored as they are; the table's CHECK says the same. */
static int valid_role(int role)
{
    return role >= 0 && role <= 2;
}

static int valid_hash(const char *s)
{
    size_t n;

    if (s == NULL)
        return 0;
    for (n = 0; s[n]; n++)
        if (n >= 64 || !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 64;
}

/* NULL, or at most max bytes. */
static int fits(const char *s, size_t max)
{
    return s == NULL || strnlen(s, max + 1) <= max;
}

/* limit 1..LIST_MAX, an offset SQLite can take. */
static int check_page(size_t limit, size_t offset, const char *what, struct myna_err *err)
{
    if (limit < 1 || limit > MYNA_CONTROL_LIST_MAX)
        return myna_err_set(err, MYNA_EINVAL, "cannot list %s: limit %zu is not 1 to %d", what,
                            limit, MYNA_CONTROL_LIST_MAX);
    if (offset > (size_t)INT64_MAX)
        return myna_err_set(err, MYNA_EINVAL, "cannot list %s: offset %zu is too large", what,
                            offset);
    return MYNA_OK;
}

/* ---- open ---- */

static int open_fail(struct myna_control *c, int code, const char *why, struct myna_err *err)
{
    return myna_err_set(err, code, "cannot open control store '%s': %s", c->path, why);
}

static int busy_wait_1ms(void *arg, int count)
{
    struct timespec ms = { 0, 1000 * 1000 };

    (void)arg;
    if (count >= BUSY_TIMEOUT_MS)
        return 0;  /* give up: SQLITE_BUSY */
    nanosleep(&ms, NULL);
    return 1;
}

/* The file holds password and token hashes: it is made 0600 before SQLite
 * sees it (its -wal and -shm files copy the mode). An existing file keeps
 * the mode its owner gave it. */
static int create_private(struct myna_control *c, struct myna_err *err)
{
    char why[MYNA_ERR_MSG_MAX];
    int e;

    if (strcmp(c->path, ":memory:") == 0)
        return MYNA_OK;  /* refused below: no WAL in memory */
    if ((e = myna_file_create_private(c->path)) == 0)
        return MYNA_OK;
    snprintf(why, sizeof(why), "unable to create the file (%s)", strerror(e));
    return open_fail(c, MYNA_ESTORE, why, err);
}

static int try_wal(sqlite3 *db, char *mode, size_t cap)
{
    sqlite3_stmt *s = NULL;
    const unsigned char *m;
    int rc;

    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        m = sqlite3_column_text(s, 0);
        snprintf(mode, cap, "%s", m ? (const char *)m : "?");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* A new file turns to WAL under an exclusive lock, and SQLite answers BUSY
 * at once (no busy handler) while another connection reads it: two
 * processes opening a new file together. Open runs before any loop: wait. */
static int set_wal(struct myna_control *c, struct myna_err *err)
{
    char mode[32], why[96];
    int rc, waited_ms = 0;

    while ((rc = try_wal(c->db, mode, sizeof(mode))) == SQLITE_BUSY &&
           waited_ms < BUSY_TIMEOUT_MS) {
        sqlite3_sleep(10);
        waited_ms += 10;
    }
    if (rc != SQLITE_OK)
        return open_fail(c, code_of(rc), reason(c->db, rc), err);
    if (strcmp(mode, "wal") == 0)
        return MYNA_OK;
    snprintf(why, sizeof(why), "cannot use WAL (journal_mode is '%s')", mode);
    return open_fail(c, MYNA_ESTORE, why, err);
}

static int connect_db(struct myna_control *c, struct myna_err *err)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    char why[MYNA_ERR_MSG_MAX];
    int rc, sys;

    rc = sqlite3_open_v2(c->path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (c->db == NULL)
            return open_fail(c, MYNA_ENOMEM, sqlite3_errstr(rc), err);
        sys = sqlite3_system_errno(c->db);
        if (sys != 0)
            snprintf(why, sizeof(why), "%s (%s)", sqlite3_errmsg(c->db), strerror(sys));
        else
            snprintf(why, sizeof(why), "%s", sqlite3_errmsg(c->db));
        return open_fail(c, code_of(rc), why, err);
    }
    sqlite3_extended_result_codes(c->db, 1);
    /* before anything that locks: the master may be writing */
    sqlite3_busy_handler(c->db, busy_wait_1ms, c);
    if ((rc = set_wal(c, err)) != MYNA_OK)
        return rc;
    rc = sqlite3_exec(c->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return open_fail(c, code_of(rc), reason(c->db, rc), err);
    return MYNA_OK;
}

static int read_user_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        *version = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Refuses a file that is not a control store before a step runs on it:
 * every version of ours has users (step 1), an instance store
 * (store_sqlite.c) has the inbox instead, and a file at version 0 is new
 * only while it holds nothing. Without this, an instance store was called
 * "newer than this myna" and another program's database was taken over. */
static int check_kind(struct myna_control *c, int version, struct myna_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, n_objects = 0, users = 0, inbox = 0;

    rc = sqlite3_prepare_v2(c->db, "SELECT (SELECT count(*) FROM sqlite_master),"
                            " EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND"
                            " name = 'users'), EXISTS(SELECT 1 FROM sqlite_master WHERE"
                            " type = 'table' AND name = 'inbox')", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        n_objects = sqlite3_column_int(s, 0);
        users = sqlite3_column_int(s, 1);
        inbox = sqlite3_column_int(s, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK)
        return open_fail(c, code_of(rc), reason(c->db, rc), err);
    if (users || (version == 0 && n_objects == 0))
        return MYNA_OK;
    return open_fail(c, MYNA_ESTORE, inbox ? "it is a myna instance store, not a control store"
                                           : "it is not a myna control store (it holds "
                                             "tables of another kind)", err);
}

/* Brings the schema to SCHEMA_VERSION in one transaction: a crash half way
 * leaves the old version, and of two processes opening a new file at once
 * the second finds the work done under the lock. */
static int migrate(struct myna_control *c, struct myna_err *err)
{
    char sql[64];
    int version = 0, rc, code;

    rc = read_user_version(c->db, &version);
    if (rc == SQLITE_OK && version == SCHEMA_VERSION)
        return check_kind(c, version, err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = read_user_version(c->db, &version);
    if (rc == SQLITE_OK && (code = check_kind(c, version, err)) != MYNA_OK) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return code;
    }
    if (rc == SQLITE_OK && version > SCHEMA_VERSION) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return myna_err_set(err, MYNA_ESTORE, "cannot open control store '%s': its schema "
                            "version %d is newer than this myna's %d (upgrade myna)",
                            c->path, version, SCHEMA_VERSION);
    }
    if (rc == SQLITE_OK && version < 0) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return myna_err_set(err, MYNA_ESTORE, "cannot open control store '%s': its schema "
                            "version %d is not one of myna's", c->path, version);
    }
    for (int v = version; rc == SQLITE_OK && v < SCHEMA_VERSION; v++)
        rc = sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SCHEMA_VERSION);
        rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return MYNA_OK;
    code = open_fail(c, code_of(rc), reason(c->db, rc), err);  /* before ROLLBACK resets it */
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return code;
}

static int prepare_all(struct myna_control *c, struct myna_err *err)
{
    for (int i = 0; i < Q__COUNT; i++) {
        int rc = sqlite3_prepare_v3(c->db, q_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->q[i],
                                    NULL);
        if (rc != SQLITE_OK)
            return open_fail(c, code_of(rc), reason(c->db, rc), err);
    }
    return MYNA_OK;
}

struct myna_control *myna_control_open(const char *path, struct myna_err *err)
{
    struct myna_control *c;

    if (path == NULL || path[0] == '\0') {
        myna_err_set(err, MYNA_EINVAL, "cannot open control store: no path");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        myna_err_set(err, MYNA_ENOMEM, "cannot open control store '%s': out of memory", path);
        return NULL;
    }
    c->fail_after = -1;
    if (create_private(c, err) != MYNA_OK || connect_db(c, err) != MYNA_OK ||
        migrate(c, err) != MYNA_OK || prepare_all(c, err) != MYNA_OK) {
        myna_control_free(c);
        return NULL;
    }
    return c;
}

static void txn_rollback(struct myna_control *c)
{
    if (!sqlite3_get_autocommit(c->db)) {
        sqlite3_step(c->q[Q_ROLLBACK]);
        done(c->q[Q_ROLLBACK]);
    }
    c->in_txn = 0;
}

void myna_control_free(struct myna_control *c)
{
    if (c == NULL)
        return;
    if (c->db != NULL && c->in_txn)
        txn_rollback(c);
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(c->q[i]);
    sqlite3_close(c->db);  /* NULL ok; every statement is finalized */
    free(c->path);
    free(c);
}

/* ---- transactions ---- */

int myna_control_begin(struct myna_control *c, struct myna_err *err)
{
    int rc;

    if (c->in_txn)
        return myna_err_set(err, MYNA_EINVAL, "cannot begin a transaction on control store "
                            "'%s': one is already open", c->path);
    rc = sqlite3_step(c->q[Q_BEGIN]);
    done(c->q[Q_BEGIN]);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot begin a transaction on control store '%s'", c->path);
    c->in_txn = 1;
    return MYNA_OK;
}

int myna_control_commit(struct myna_control *c, struct myna_err *err)
{
    int rc, code;

    if (!c->in_txn)
        return myna_err_set(err, MYNA_EINVAL, "cannot commit to control store '%s': no "
                            "transaction is open", c->path);
    /* Some errors (disk full, I/O) make SQLite roll the whole transaction
     * back: a COMMIT now would report success for nothing. */
    if (sqlite3_get_autocommit(c->db)) {
        c->in_txn = 0;
        return myna_err_set(err, MYNA_ESTORE, "cannot commit to control store '%s': the "
                            "transaction was rolled back after an error", c->path);
    }
    rc = step_write(c, c->q[Q_COMMIT]);
    if (rc != SQLITE_DONE) {
        code = fail(c, rc, err, "cannot commit to control store '%s'", c->path);
        txn_rollback(c);
        return code;
    }
    c->in_txn = 0;
    return MYNA_OK;
}

void myna_control_rollback(struct myna_control *c)
{
    if (c != NULL && c->in_txn)
        txn_rollback(c);
}

/* ---- lists ---- */

/* Steps s to the end, filling a malloc'd array of elem-sized rows. */
static int collect(struct myna_control *c, sqlite3_stmt *s, size_t elem,
                   int (*fill)(sqlite3_stmt *s, void *row), void (*release)(void *row),
                   void **v, size_t *n, const char *what, struct myna_err *err)
{
    char *arr = NULL;
    size_t cap = 0, got = 0;
    int rc, code = MYNA_OK;

    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (got == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char *na = realloc(arr, ncap * elem);
            if (na == NULL) {
                code = MYNA_ENOMEM;
                break;
            }
            arr = na;
            cap = ncap;
        }
        if (fill(s, arr + got * elem) != MYNA_OK) {
            release(arr + got * elem);
            code = MYNA_ENOMEM;
            break;
        }
        got++;
    }
    if (code == MYNA_OK && rc != SQLITE_DONE)
        code = fail(c, rc, err, "cannot list %s", what);
    else if (code == MYNA_ENOMEM)
        myna_err_set(err, code, "cannot list %s: out of memory", what);
    done(s);
    if (code != MYNA_OK) {
        for (size_t i = 0; i < got; i++)
            release(arr + i * elem);
        free(arr);
        return code;
    }
    *v = arr;
    *n = got;
    return MYNA_OK;
}

/* One row into *row: MYNA_OK, MYNA_ENOTFOUND (err untouched: the caller
 * names the missing thing), or a failure in err. */
static int fetch_one(struct myna_control *c, sqlite3_stmt *s,
                     int (*fill)(sqlite3_stmt *s, void *row), void (*release)(void *row),
                     void *row, const char *what, struct myna_err *err)
{
    int rc = sqlite3_step(s), code = MYNA_OK;

    if (rc == SQLITE_ROW) {
        if (fill(s, row) != MYNA_OK) {
            release(row);
            code = myna_err_set(err, MYNA_ENOMEM, "cannot read %s: out of memory", what);
        }
    } else if (rc == SQLITE_DONE) {
        code = MYNA_ENOTFOUND;
    } else {
        code = fail(c, rc, err, "cannot read %s", what);
    }
    done(s);
    return code;
}

/* A count(*) of s: MYNA_OK or a failure. */
static int count_of(struct myna_control *c, sqlite3_stmt *s, int64_t *n, const char *what,
                    struct myna_err *err)
{
    int rc = sqlite3_step(s);

    *n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc != SQLITE_ROW)
        rc = fail(c, rc, err, "cannot count %s", what);
    else
        rc = MYNA_OK;
    done(s);
    return rc;
}

/* ---- users ---- */

static int user_fill(sqlite3_stmt *s, void *row)
{
    struct myna_control_user *u = row;
    int ok = 1;

    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(s, 0);
    u->name = col_dup(s, 1, &ok);
    u->role = sqlite3_column_int(s, 2);
    u->password_hash = col_dup(s, 3, &ok);
    u->created_ms = sqlite3_column_int64(s, 4);
    u->disabled = sqlite3_column_int(s, 5);
    return ok && u->name ? MYNA_OK : MYNA_ENOMEM;
}

void myna_control_user_release(struct myna_control_user *u)
{
    if (u == NULL)
        return;
    free(u->name);
    free(u->password_hash);
    memset(u, 0, sizeof(*u));
}

static void user_release_v(void *row)
{
    myna_control_user_release(row);
}

static int check_password_hash(const char *hash, const char *op, struct myna_err *err)
{
    if (hash != NULL && hash[0] == '\0')
        return myna_err_set(err, MYNA_EINVAL, "cannot %s: the password hash is empty", op);
    if (!fits(hash, MYNA_CONTROL_TEXT_MAX))
        return myna_err_set(err, MYNA_ETOOBIG, "cannot %s: the password hash is longer than "
                            "%d bytes", op, MYNA_CONTROL_TEXT_MAX);
    return MYNA_OK;
}

int myna_control_user_add(struct myna_control *c, const char *name, int role,
                          const char *password_hash, int64_t now_ms, int64_t *id,
                          struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_USER_ADD];
    int rc;

    if (!valid_user_name(name))
        return myna_err_set(err, MYNA_EINVAL, "cannot add user '%.*s': a name is 1 to %d of "
                            "a-z 0-9 . _ - @", SHOWN(name), MYNA_CONTROL_NAME_MAX);
    if (!valid_role(role))
        return myna_err_set(err, MYNA_EINVAL, "cannot add user '%s': unknown role %d", name,
                            role);
    if ((rc = check_password_hash(password_hash, "add user", err)) != MYNA_OK)
        return rc;
    bind_text(s, 1, name);
    sqlite3_bind_int(s, 2, role);
    bind_text(s, 3, password_hash);
    sqlite3_bind_int64(s, 4, now_ms);
    rc = step_write(c, s);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return myna_err_set(err, MYNA_EEXISTS, "cannot add user '%s': the name is taken", name);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot add user '%s'", name);
    if (id != NULL)
        *id = sqlite3_last_insert_rowid(c->db);
    return MYNA_OK;
}

int myna_control_user_get_by_id(struct myna_control *c, int64_t id, struct myna_control_user *u,
                                struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_USER_BY_ID];
    int rc;

    sqlite3_bind_int64(s, 1, id);
    rc = fetch_one(c, s, user_fill, user_release_v, u, "user", err);
    if (rc == MYNA_ENOTFOUND)
        return myna_err_set(err, rc, "cannot get user %lld: not found", (long long)id);
    return rc;
}

int myna_control_user_get_by_name(struct myna_control *c, const char *name,
                                  struct myna_control_user *u, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_USER_BY_NAME];
    int rc;

    /* no user can have a name outside the rules: say not found, not invalid,
     * so that a login with a strange name reads like any unknown name */
    if (!valid_user_name(name))
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot get user '%.*s': not found",
                            SHOWN(name));
    bind_text(s, 1, name);
    rc = fetch_one(c, s, user_fill, user_release_v, u, "user", err);
    if (rc == MYNA_ENOTFOUND)
        return myna_err_set(err, rc, "cannot get user '%s': not found", name);
    return rc;
}

int myna_control_user_list(struct myna_control *c, size_t limit, size_t offset,
                           struct myna_control_user **v, size_t *n, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_USER_LIST];
    int rc;

    *v = NULL;
    *n = 0;
    if ((rc = check_page(limit, offset, "users", err)) != MYNA_OK)
        return rc;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)limit);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)offset);
    return collect(c, s, sizeof(**v), user_fill, user_release_v, (void **)v, n, "users", err);
}

int myna_control_user_count_admins(struct myna_control *c, int64_t *n, struct myna_err *err)
{
    return count_of(c, c->q[Q_USER_ADMINS], n, "admins", err);
}

int myna_control_user_count_admin_ways(struct myna_control *c, int64_t now_ms, int64_t *n,
                                       struct myna_err *err)
{
    sqlite3_bind_int64(c->q[Q_USER_WAYS_IN], 1, now_ms);
    return count_of(c, c->q[Q_USER_WAYS_IN], n, "the ways into the admin API", err);
}

/* An UPDATE of one user by id: MYNA_ENOTFOUND when no row matched. */
static int user_update(struct myna_control *c, sqlite3_stmt *s, int64_t id, const char *op,
                       struct myna_err *err)
{
    int rc = step_write(c, s);

    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot %s of user %lld", op, (long long)id);
    if (sqlite3_changes(c->db) == 0)
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot %s of user %lld: not found", op,
                            (long long)id);
    return MYNA_OK;
}

int myna_control_user_set_password(struct myna_control *c, int64_t id, const char *password_hash,
                                   struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_USER_SET_PASSWORD];
    int rc;

    if ((rc = check_password_hash(password_hash, "set the password", err)) != MYNA_OK)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, password_hash);
    return user_update(c, s, id, "set the password", err);
}

int myna_control_user_set_role(struct myna_control *c, int64_t id, int role,
                               struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_USER_SET_ROLE];

    if (!valid_role(role))
        return myna_err_set(err, MYNA_EINVAL, "cannot set the role of user %lld: unknown "
                            "role %d", (long long)id, role);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, role);
    return user_update(c, s, id, "set the role", err);
}

int myna_control_user_set_disabled(struct myna_control *c, int64_t id, int disabled,
                                   struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_USER_SET_DISABLED];

    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, disabled != 0);
    return user_update(c, s, id, disabled ? "set the disabled flag" : "clear the disabled flag",
                       err);
}

/* ---- tokens ---- */

static int token_fill(sqlite3_stmt *s, void *row)
{
    struct myna_control_token *t = row;
    int ok = 1;

    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(s, 0);
    t->user_id = sqlite3_column_int64(s, 1);
    t->name = col_dup(s, 2, &ok);
    t->created_ms = sqlite3_column_int64(s, 3);
    t->last_used_ms = sqlite3_column_int64(s, 4);  /* NULL reads as 0 */
    t->revoked = sqlite3_column_int(s, 5);
    t->expires_ms = sqlite3_column_int64(s, 6);
    return ok ? MYNA_OK : MYNA_ENOMEM;
}

void myna_control_token_release(struct myna_control_token *t)
{
    if (t == NULL)
        return;
    free(t->name);
    memset(t, 0, sizeof(*t));
}

static void token_release_v(void *row)
{
    myna_control_token_release(row);
}

int myna_control_token_add(struct myna_control *c, int64_t user_id, const char *hash,
                           const char *name, int64_t now_ms, int64_t expires_ms, int64_t *id,
                           struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_TOKEN_ADD];
    int rc;

    if (!valid_hash(hash))
        return myna_err_set(err, MYNA_EINVAL, "cannot add a token for user %lld: the hash is "
                            "not 64 lower-case hex digits", (long long)user_id);
    if (!fits(name, MYNA_CONTROL_TEXT_MAX))
        return myna_err_set(err, MYNA_ETOOBIG, "cannot add a token for user %lld: its name is "
                            "longer than %d bytes", (long long)user_id, MYNA_CONTROL_TEXT_MAX);
    if (expires_ms < 0)
        return myna_err_set(err, MYNA_EINVAL, "cannot add a token for user %lld: its end %lld "
                            "is before 1970", (long long)user_id, (long long)expires_ms);
    sqlite3_bind_int64(s, 1, user_id);
    bind_text(s, 2, hash);
    bind_text(s, 3, name);
    sqlite3_bind_int64(s, 4, now_ms);
    sqlite3_bind_int64(s, 5, expires_ms);
    rc = step_write(c, s);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot add a token for user %lld: no such "
                            "user", (long long)user_id);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return myna_err_set(err, MYNA_EEXISTS, "cannot add a token for user %lld: the same "
                            "token is already stored", (long long)user_id);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot add a token for user %lld", (long long)user_id);
    if (id != NULL)
        *id = sqlite3_last_insert_rowid(c->db);
    return MYNA_OK;
}

int myna_control_token_find(struct myna_control *c, const char *hash, int64_t now_ms,
                            struct myna_control_user *u, int64_t *token_id,
                            struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_TOKEN_FIND];
    int64_t tid, last_used, expires;
    int revoked, never_used, rc;

    if (!valid_hash(hash))
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot find token: unknown token");
    bind_text(s, 1, hash);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE
                 ? myna_err_set(err, MYNA_ENOTFOUND, "cannot find token: unknown token")
                 : fail(c, rc, err, "cannot find token");
        done(s);
        return rc;
    }
    tid = sqlite3_column_int64(s, 6);
    revoked = sqlite3_column_int(s, 7);
    never_used = sqlite3_column_type(s, 8) == SQLITE_NULL;
    last_used = sqlite3_column_int64(s, 8);
    expires = sqlite3_column_int64(s, 9);
    rc = MYNA_OK;
    if (revoked)
        rc = myna_err_set(err, MYNA_ENOTFOUND, "cannot find token %lld: it is revoked",
                          (long long)tid);
    else if (sqlite3_column_int(s, 5))
        rc = myna_err_set(err, MYNA_ENOTFOUND, "cannot find token %lld: user %lld is disabled",
                          (long long)tid, (long long)sqlite3_column_int64(s, 0));
    else if (expires != 0 && now_ms >= expires)
        rc = myna_err_set(err, MYNA_ENOTFOUND, "cannot find token %lld: it expired",
                          (long long)tid);
    if (rc != MYNA_OK) {
        done(s);
        return rc;
    }
    rc = user_fill(s, u);
    done(s);
    if (rc != MYNA_OK) {
        myna_control_user_release(u);
        return myna_err_set(err, rc, "cannot find token %lld: out of memory", (long long)tid);
    }
    if (token_id != NULL)
        *token_id = tid;
    if (never_used || now_ms - last_used >= MYNA_CONTROL_TOUCH_MS) {
        s = c->q[Q_TOKEN_TOUCH];
        sqlite3_bind_int64(s, 1, tid);
        sqlite3_bind_int64(s, 2, now_ms);
        sqlite3_bind_int64(s, 3, MYNA_CONTROL_TOUCH_MS);
        (void)step_write(c, s);  /* a hint: see control.h */
    }
    return MYNA_OK;
}

int myna_control_token_list(struct myna_control *c, int64_t user_id, int64_t after_id,
                            size_t limit, size_t offset, struct myna_control_token **v,
                            size_t *n, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_TOKEN_LIST];
    int rc;

    *v = NULL;
    *n = 0;
    if ((rc = check_page(limit, offset, "tokens", err)) != MYNA_OK)
        return rc;
    sqlite3_bind_int64(s, 1, user_id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)offset);
    sqlite3_bind_int64(s, 4, after_id > 0 ? after_id : 0);
    return collect(c, s, sizeof(**v), token_fill, token_release_v, (void **)v, n, "tokens", err);
}

int myna_control_token_prune(struct myna_control *c, int64_t now_ms, int64_t *n,
                             struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_TOKEN_PRUNE];
    int rc;

    sqlite3_bind_int64(s, 1, now_ms);
    rc = step_write(c, s);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot remove the tokens that ended");
    if (n != NULL)
        *n = sqlite3_changes(c->db);
    return MYNA_OK;
}

int myna_control_token_revoke(struct myna_control *c, int64_t id, int64_t user_id,
                              int *changed, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_TOKEN_REVOKE];
    int64_t n = 0;
    int rc;

    if (changed != NULL)
        *changed = 0;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, user_id);
    rc = step_write(c, s);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot revoke token %lld", (long long)id);
    if (sqlite3_changes(c->db) > 0) {
        if (changed != NULL)
            *changed = 1;
        return MYNA_OK;
    }
    /* revoked already, or not there (or another user's) */
    s = c->q[Q_TOKEN_OWNED];
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, user_id);
    if ((rc = count_of(c, s, &n, "tokens", err)) != MYNA_OK)
        return rc;
    if (n == 0)
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot revoke token %lld: not found",
                            (long long)id);
    return MYNA_OK;
}

/* ---- instances ---- */

static int inst_fill(sqlite3_stmt *s, void *row)
{
    struct myna_control_instance *i = row;
    int ok = 1;

    memset(i, 0, sizeof(*i));
    i->id = col_dup(s, 0, &ok);
    i->owner_id = sqlite3_column_int64(s, 1);  /* NULL reads as 0 */
    i->config = col_dup(s, 2, &ok);
    i->enabled = sqlite3_column_int(s, 3);
    i->auto_start = sqlite3_column_int(s, 4);
    i->created_ms = sqlite3_column_int64(s, 5);
    i->updated_ms = sqlite3_column_int64(s, 6);
    i->version = sqlite3_column_int64(s, 7);
    return ok && i->id && i->config ? MYNA_OK : MYNA_ENOMEM;
}

void myna_control_instance_release(struct myna_control_instance *inst)
{
    if (inst == NULL)
        return;
    free(inst->id);
    free(inst->config);
    memset(inst, 0, sizeof(*inst));
}

static void inst_release_v(void *row)
{
    myna_control_instance_release(row);
}

static int check_config(const char *config, const char *op, const char *id,
                        struct myna_err *err)
{
    if (!fits(config, MYNA_CONTROL_CONFIG_MAX))
        return myna_err_set(err, MYNA_ETOOBIG, "cannot %s instance '%s': its config is larger "
                            "than %d bytes", op, id, MYNA_CONTROL_CONFIG_MAX);
    return MYNA_OK;
}

static int check_slug(const char *id, const char *op, struct myna_err *err)
{
    if (!myna_is_slug(id))
        return myna_err_set(err, MYNA_EINVAL, "cannot %s instance '%.*s': an id is 1 to 64 "
                            "of a-z 0-9 -, not starting or ending with -", op, SHOWN(id));
    return MYNA_OK;
}

int myna_control_instance_create(struct myna_control *c, const char *id, int64_t owner_id,
                                 const char *config, int enabled, int auto_start,
                                 int64_t now_ms, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_INST_CREATE];
    int rc;

    if ((rc = check_slug(id, "create", err)) != MYNA_OK)
        return rc;
    if (config == NULL)
        return myna_err_set(err, MYNA_EINVAL, "cannot create instance '%s': no config", id);
    if ((rc = check_config(config, "create", id, err)) != MYNA_OK)
        return rc;
    bind_text(s, 1, id);
    bind_id_or_null(s, 2, owner_id);
    bind_text(s, 3, config);
    sqlite3_bind_int(s, 4, enabled != 0);
    sqlite3_bind_int(s, 5, auto_start != 0);
    sqlite3_bind_int64(s, 6, now_ms);
    rc = step_write(c, s);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return myna_err_set(err, MYNA_EEXISTS, "cannot create instance '%s': the id is taken",
                            id);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot create instance '%s': no user %lld "
                            "to own it", id, (long long)owner_id);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot create instance '%s'", id);
    return MYNA_OK;
}

int myna_control_instance_get(struct myna_control *c, const char *id,
                              struct myna_control_instance *inst, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_INST_GET];
    int rc;

    if (!myna_is_slug(id))
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot get instance '%.*s': not found",
                            SHOWN(id));
    bind_text(s, 1, id);
    rc = fetch_one(c, s, inst_fill, inst_release_v, inst, "instance", err);
    if (rc == MYNA_ENOTFOUND)
        return myna_err_set(err, rc, "cannot get instance '%s': not found", id);
    return rc;
}

int myna_control_instance_list(struct myna_control *c, int64_t owner_id, size_t limit,
                               size_t offset, struct myna_control_instance **v, size_t *n,
                               struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_INST_LIST];
    int rc;

    *v = NULL;
    *n = 0;
    if ((rc = check_page(limit, offset, "instances", err)) != MYNA_OK)
        return rc;
    sqlite3_bind_int64(s, 1, owner_id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)offset);
    return collect(c, s, sizeof(**v), inst_fill, inst_release_v, (void **)v, n, "instances",
                   err);
}

/* Why an update matched no row: the id is unknown, or its version moved. */
static int update_missed(struct myna_control *c, const char *id, int64_t expect_version,
                         struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_INST_VERSION];
    int64_t now_version;
    int rc;

    bind_text(s, 1, id);
    rc = sqlite3_step(s);
    now_version = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = myna_err_set(err, MYNA_ECONFLICT, "cannot update instance '%s': it is at version "
                          "%lld, not %lld: changed since it was read", id,
                          (long long)now_version, (long long)expect_version);
    else if (rc == SQLITE_DONE)
        rc = myna_err_set(err, MYNA_ENOTFOUND, "cannot update instance '%s': not found", id);
    else
        rc = fail(c, rc, err, "cannot update instance '%s'", id);
    done(s);
    return rc;
}

int myna_control_instance_update(struct myna_control *c, const char *id, const char *config,
                                 int enabled, int auto_start, int64_t expect_version,
                                 int64_t now_ms, int64_t *version, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_INST_UPDATE];
    int64_t v = 0;
    int rc;

    if (!myna_is_slug(id))
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot update instance '%.*s': not found",
                            SHOWN(id));
    if ((rc = check_config(config, "update", id, err)) != MYNA_OK)
        return rc;
    bind_text(s, 1, id);
    bind_text(s, 2, config);
    sqlite3_bind_int(s, 3, enabled < 0 ? -1 : enabled != 0);
    sqlite3_bind_int(s, 4, auto_start < 0 ? -1 : auto_start != 0);
    sqlite3_bind_int64(s, 5, now_ms);
    sqlite3_bind_int64(s, 6, expect_version < 0 ? -1 : expect_version);
    if (txn_lost(c) || fault_fires(c)) {
        done(s);
        return fail(c, txn_lost(c) ? TXN_LOST : FAULT, err, "cannot update instance '%s'", id);
    }
    /* RETURNING: the change is made by the first step; the second ends it */
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
        rc = sqlite3_step(s);
    }
    if (rc != SQLITE_DONE) {
        rc = fail(c, rc, err, "cannot update instance '%s'", id);
        done(s);
        return rc;
    }
    done(s);
    if (v == 0)
        return update_missed(c, id, expect_version, err);
    if (version != NULL)
        *version = v;
    return MYNA_OK;
}

int myna_control_instance_delete(struct myna_control *c, const char *id, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_INST_DELETE];
    int rc;

    if (!myna_is_slug(id))
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot delete instance '%.*s': not found",
                            SHOWN(id));
    bind_text(s, 1, id);
    rc = step_write(c, s);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot delete instance '%s'", id);
    if (sqlite3_changes(c->db) == 0)
        return myna_err_set(err, MYNA_ENOTFOUND, "cannot delete instance '%s': not found", id);
    return MYNA_OK;
}

int myna_control_instance_count(struct myna_control *c, int64_t owner_id, int64_t *n,
                                struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_INST_COUNT];

    sqlite3_bind_int64(s, 1, owner_id);
    return count_of(c, s, n, "instances", err);
}

/* ---- audit ---- */

static int audit_fill(sqlite3_stmt *s, void *row)
{
    struct myna_control_audit *a = row;
    int ok = 1;

    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(s, 0);
    a->ts_ms = sqlite3_column_int64(s, 1);
    a->user_id = sqlite3_column_int64(s, 2);  /* NULL reads as 0 */
    a->user_name = col_dup(s, 3, &ok);
    a->action = col_dup(s, 4, &ok);
    a->target = col_dup(s, 5, &ok);
    a->detail = col_dup(s, 6, &ok);
    a->from_addr = col_dup(s, 7, &ok);
    return ok && a->action ? MYNA_OK : MYNA_ENOMEM;
}

void myna_control_audit_release(struct myna_control_audit *a)
{
    if (a == NULL)
        return;
    free(a->user_name);
    free(a->action);
    free(a->target);
    free(a->detail);
    free(a->from_addr);
    memset(a, 0, sizeof(*a));
}

static void audit_release_v(void *row)
{
    myna_control_audit_release(row);
}

int myna_control_audit_add(struct myna_control *c, const struct myna_control_audit *a,
                           int64_t *id, struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_AUDIT_ADD];
    int rc;

    if (a->action == NULL || a->action[0] == '\0')
        return myna_err_set(err, MYNA_EINVAL, "cannot add audit row: no action");
    if (!fits(a->action, MYNA_CONTROL_TEXT_MAX) || !fits(a->user_name, MYNA_CONTROL_TEXT_MAX) ||
        !fits(a->target, MYNA_CONTROL_TEXT_MAX) || !fits(a->from_addr, MYNA_CONTROL_TEXT_MAX))
        return myna_err_set(err, MYNA_ETOOBIG, "cannot add audit row: action, user name, "
                            "target and address are at most %d bytes each",
                            MYNA_CONTROL_TEXT_MAX);
    if (!fits(a->detail, MYNA_CONTROL_DETAIL_MAX))
        return myna_err_set(err, MYNA_ETOOBIG, "cannot add audit row '%s': its detail is "
                            "larger than %d bytes", a->action, MYNA_CONTROL_DETAIL_MAX);
    sqlite3_bind_int64(s, 1, a->ts_ms);
    bind_id_or_null(s, 2, a->user_id);
    bind_text(s, 3, a->user_name);
    bind_text(s, 4, a->action);
    bind_text(s, 5, a->target);
    bind_text(s, 6, a->detail);
    bind_text(s, 7, a->from_addr);
    rc = step_write(c, s);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot add audit row '%s'", a->action);
    if (id != NULL)
        *id = sqlite3_last_insert_rowid(c->db);
    return MYNA_OK;
}

int myna_control_audit_list(struct myna_control *c, int64_t before_id, size_t limit,
                            size_t offset, struct myna_control_audit **v, size_t *n,
                            struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_AUDIT_LIST];
    int rc;

    *v = NULL;
    *n = 0;
    if ((rc = check_page(limit, offset, "audit rows", err)) != MYNA_OK)
        return rc;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)limit);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)offset);
    sqlite3_bind_int64(s, 3, before_id > 0 ? before_id : INT64_MAX);
    return collect(c, s, sizeof(**v), audit_fill, audit_release_v, (void **)v, n, "audit rows",
                   err);
}

int myna_control_audit_prune(struct myna_control *c, int64_t before_ms, size_t limit, int64_t *n,
                             struct myna_err *err)
{
    sqlite3_stmt *s = c->q[Q_AUDIT_PRUNE];
    int rc;

    if (n != NULL)
        *n = 0;
    if (limit < 1 || limit > MYNA_CONTROL_LIST_MAX)
        return myna_err_set(err, MYNA_EINVAL, "cannot remove old audit rows: limit %zu is not "
                            "1 to %d", limit, MYNA_CONTROL_LIST_MAX);
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
    rc = step_write(c, s);
    if (rc != SQLITE_DONE)
        return fail(c, rc, err, "cannot remove old audit rows");
    if (n != NULL)
        *n = sqlite3_changes(c->db);
    return MYNA_OK;
}
