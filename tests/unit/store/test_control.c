/* test_control.c - the control store (control.h) on SQLite: schema, WAL,
 * synced commits and a private file at open; refusing a newer schema;
 * users, tokens, instances and the audit log with every error code; paging;
 * transactions with injected faults (looping N until success); strings that
 * look like SQL kept verbatim; a 1 MB config; persistence; two handles and
 * two processes on one file. Each test gets a fresh mkdtemp directory; a
 * plain sqlite3 connection looks at the file from outside where the store's
 * own answers would prove nothing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"
#include <sqlite3.h>

#include "core/util.h"
#include "store/control.h"
#include "core/banned.h"

/* the stored role values (enum myna_role of core/auth.h) */
enum { ROLE_GUEST = 0, ROLE_USER = 1, ROLE_ADMIN = 2 };

struct fix {
    char dir[64];
    char path[128];
    struct myna_control *c;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (test_tmpdir(f->dir, sizeof(f->dir), "test-control") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/control.db", f->dir);
    *state = f;
    return 0;
}

/* setup, and the store opened on the fresh file */
static int setup_open(void **state)
{
    struct fix *f;

    if (setup(state) != 0)
        return -1;
    f = *state;
    f->c = myna_control_open(f->path, NULL);
    return f->c != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    int rc;

    myna_control_free(f->c);
    rc = test_rmtree(f->dir);
    free(f);
    return rc;
}

/* ---- helpers ---- */

static struct myna_control *open_ok(const char *path)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control *c = myna_control_open(path, &err);

    if (c == NULL)
        fail_msg("open %s: %s", path, err.msg);
    assert_int_equal(err.code, 0);
    return c;
}

/* The first column of the first row of sql on a connection of our own,
 * malloc'd ("" for no row, "NULL" for NULL). */
static char *sql_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char *out;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) != SQLITE_ROW)
        out = strdup("");
    else if (sqlite3_column_type(s, 0) == SQLITE_NULL)
        out = strdup("NULL");
    else
        out = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_non_null(out);
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

    if (strcmp(got, want) != 0) {
        fail_msg("%s: got '%s', want '%s'", sql, got, want);
    }
    free(got);
}

/* A pragma's value on the store's own connection. */
static int64_t conn_pragma(struct myna_control *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(myna_control__sqlite_db(c), sql, -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* A distinct valid token hash per n. */
static void hash_of(unsigned long long n, char out[65])
{
    snprintf(out, 65, "%064llx", n);
}

/* err holds code and a message that starts with prefix. */
static void assert_err(const struct myna_err *err, int code, const char *prefix)
{
    if (err->code != code)
        fail_msg("code %d (%s), want %d: %s", err->code, myna_strerror(err->code), code,
                 err->msg);
    if (strncmp(err->msg, prefix, strlen(prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", err->msg, prefix);
}

static int64_t add_user(struct myna_control *c, const char *name, int role)
{
    struct myna_err err = MYNA_ERR_INIT;
    int64_t id = 0;

    if (myna_control_user_add(c, name, role, NULL, 1000, &id, &err) != MYNA_OK)
        fail_msg("add user %s: %s", name, err.msg);
    assert_true(id > 0);
    return id;
}

static void create_inst(struct myna_control *c, const char *id, int64_t owner,
                        const char *config)
{
    struct myna_err err = MYNA_ERR_INIT;

    if (myna_control_instance_create(c, id, owner, config, 1, 0, 2000, &err) != MYNA_OK)
        fail_msg("create %s: %s", id, err.msg);
}

static int64_t inst_count(struct myna_control *c, int64_t owner)
{
    int64_t n = -1;

    assert_int_equal(myna_control_instance_count(c, owner, &n, NULL), MYNA_OK);
    return n;
}

static size_t token_count(struct myna_control *c, int64_t user_id)
{
    struct myna_control_token *v;
    size_t n;

    assert_int_equal(
        myna_control_token_list(c, user_id, 0, MYNA_CONTROL_LIST_MAX, 0, &v, &n, NULL),
                     MYNA_OK);
    for (size_t i = 0; i < n; i++)
        myna_control_token_release(&v[i]);
    free(v);
    return n;
}

static size_t audit_count(struct myna_control *c)
{
    struct myna_control_audit *v;
    size_t n;

    assert_int_equal(myna_control_audit_list(c, 0, MYNA_CONTROL_LIST_MAX, 0, &v, &n, NULL),
                     MYNA_OK);
    for (size_t i = 0; i < n; i++)
        myna_control_audit_release(&v[i]);
    free(v);
    return n;
}

static size_t user_count(struct myna_control *c)
{
    struct myna_control_user *v;
    size_t n;

    assert_int_equal(myna_control_user_list(c, MYNA_CONTROL_LIST_MAX, 0, &v, &n, NULL),
                     MYNA_OK);
    for (size_t i = 0; i < n; i++)
        myna_control_user_release(&v[i]);
    free(v);
    return n;
}

static void audit(struct myna_control *c, int64_t ts, const char *action, const char *target)
{
    struct myna_control_audit a = { 0 };
    char act[64], tgt[64];

    snprintf(act, sizeof(act), "%s", action);
    snprintf(tgt, sizeof(tgt), "%s", target);
    a.ts_ms = ts;
    a.action = act;
    a.target = tgt;
    assert_int_equal(myna_control_audit_add(c, &a, NULL, NULL), MYNA_OK);
}

/* ---- open and schema ---- */

static void test_open_creates_schema_wal_private(void **state)
{
    struct fix *f = *state;
    struct myna_control *c = open_ok(f->path);
    struct stat st;

    assert_sql(f->path, "PRAGMA journal_mode", "wal");
    assert_sql(f->path, "PRAGMA user_version", "4");
    assert_sql(f->path, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
               " WHERE type = 'table' ORDER BY name)", "audit,instances,sqlite_sequence,tokens,users");
    assert_sql(f->path, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
               " WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name)",
               "audit_ts,instances_owner,tokens_user");
    /* per connection: synced commits and enforced foreign keys */
    assert_int_equal(conn_pragma(c, "PRAGMA synchronous"), 2);  /* FULL */
    assert_int_equal(conn_pragma(c, "PRAGMA foreign_keys"), 1);
    /* password and token hashes: nobody else may read the file */
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    myna_control_free(c);
}

/* A file that exists but is empty (touched by an installer) is migrated and
 * keeps the mode its owner gave it. */
static void test_open_migrates_empty_file(void **state)
{
    struct fix *f = *state;
    struct myna_control *c;
    struct stat st;
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(chmod(f->path, 0640), 0);
    c = open_ok(f->path);
    assert_int_equal(user_count(c), 0);
    assert_int_equal(inst_count(c, 0), 0);
    myna_control_free(c);
    assert_sql(f->path, "PRAGMA user_version", "4");
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

/* Reopening does not run the migrations again (a bare CREATE TABLE would
 * fail) and does not rebuild the file (the marker stays). */
static void test_reopen_does_not_migrate(void **state)
{
    struct fix *f = *state;
    struct myna_control *c = open_ok(f->path);

    add_user(c, "root", ROLE_ADMIN);
    myna_control_free(c);
    sql_exec(f->path, "CREATE TABLE marker(x)");
    c = open_ok(f->path);
    assert_int_equal(user_count(c), 1);
    myna_control_free(c);
    assert_sql(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'marker'", "1");
    assert_sql(f->path, "PRAGMA user_version", "4");
}

static void test_open_refuses_newer_schema(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    char want[256];

    myna_control_free(open_ok(f->path));
    sql_exec(f->path, "PRAGMA user_version=5");
    assert_null(myna_control_open(f->path, &err));
    snprintf(want, sizeof(want), "cannot open control store '%s': its schema version 5 is "
             "newer than this myna's 4", f->path);
    assert_err(&err, MYNA_ESTORE, want);
    /* nothing was touched: a newer myna can still use it */
    assert_sql(f->path, "PRAGMA user_version", "5");
    assert_sql(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", "5");

    sql_exec(f->path, "PRAGMA user_version=-5");
    assert_null(myna_control_open(f->path, &err));
    assert_err(&err, MYNA_ESTORE, "cannot open control store");
    assert_non_null(strstr(err.msg, "-5"));
}

/* A file that is not a control store is refused as it is: an instance
 * store put where control.db belongs (a current one, or one of the first
 * release, built from store_sqlite.c's step 1), or another program's
 * database. Nothing is added to it. */
static void test_open_refuses_other_files(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    char want[300];
    FILE *fp;

    fp = fopen(f->path, "w");  /* an empty file: SQLite's new database */
    assert_non_null(fp);
    fclose(fp);
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
             "PRAGMA user_version=1;");
    snprintf(want, sizeof(want), "cannot open control store '%s': it is a myna instance store, "
             "not a control store", f->path);
    assert_null(myna_control_open(f->path, &err));
    assert_err(&err, MYNA_ESTORE, want);
    assert_string_equal(err.msg, want);
    assert_sql(f->path, "PRAGMA user_version", "1");
    assert_sql(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", "2");

    /* a current instance store: not "newer", and no upgrade would help */
    sql_exec(f->path, "PRAGMA user_version=10");
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_control_open(f->path, &err));
    assert_string_equal(err.msg, want);

    /* another program's database (its version 0 is not a new file) */
    assert_int_equal(unlink(f->path), 0);
    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fclose(fp);
    sql_exec(f->path, "CREATE TABLE notes(x); INSERT INTO notes VALUES('mine');");
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_control_open(f->path, &err));
    snprintf(want, sizeof(want), "cannot open control store '%s': it is not a myna control "
             "store", f->path);
    assert_err(&err, MYNA_ESTORE, want);
    assert_sql(f->path, "SELECT group_concat(name) FROM sqlite_master", "notes");
    assert_sql(f->path, "PRAGMA user_version", "0");
}

static void test_open_errors(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    char path[256], want[300];
    FILE *fp;

    assert_null(myna_control_open(NULL, &err));
    assert_err(&err, MYNA_EINVAL, "cannot open control store");
    assert_null(myna_control_open("", &err));
    assert_err(&err, MYNA_EINVAL, "cannot open control store");
    assert_null(myna_control_open(":memory:", &err));  /* no WAL in memory */
    assert_err(&err, MYNA_ESTORE, "cannot open control store ':memory:'");

    snprintf(path, sizeof(path), "%s/no-such-dir/control.db", f->dir);
    assert_null(myna_control_open(path, &err));
    snprintf(want, sizeof(want), "cannot open control store '%s': ", path);
    assert_err(&err, MYNA_ESTORE, want);
    assert_non_null(strstr(err.msg, "No such file or directory"));

    snprintf(path, sizeof(path), "%s/junk.db", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 300; i++)
        fputs("this is not a database file. ", fp);
    fclose(fp);
    assert_null(myna_control_open(path, &err));
    snprintf(want, sizeof(want), "cannot open control store '%s': ", path);
    assert_err(&err, MYNA_ESTORE, want);

    myna_control_free(NULL);  /* no-op */
}

/* ---- users ---- */

static void test_user_add_and_get(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    int64_t id1 = 0, id2 = 0;

    assert_int_equal(myna_control_user_add(f->c, "admin", ROLE_ADMIN, "$argon2id$v=19$x",
                                            1700000000000, &id1, &err), MYNA_OK);
    assert_int_equal(myna_control_user_add(f->c, "ops@example.com", ROLE_USER, NULL,
                                            1700000000001, &id2, &err), MYNA_OK);
    assert_int_equal(myna_control_user_add(f->c, "viewer", ROLE_GUEST, NULL, 5, NULL,
                                            &err), MYNA_OK);  /* id optional */
    assert_int_equal(err.code, 0);  /* untouched on success */
    assert_true(id1 > 0);
    assert_true(id2 > id1);

    assert_int_equal(myna_control_user_get_by_id(f->c, id1, &u, &err), MYNA_OK);
    assert_int_equal(u.id, id1);
    assert_string_equal(u.name, "admin");
    assert_int_equal(u.role, ROLE_ADMIN);
    assert_string_equal(u.password_hash, "$argon2id$v=19$x");
    assert_int_equal(u.created_ms, 1700000000000);
    assert_int_equal(u.disabled, 0);
    myna_control_user_release(&u);
    assert_null(u.name);  /* released: back to zeros */

    assert_int_equal(myna_control_user_get_by_name(f->c, "ops@example.com", &u, &err), MYNA_OK);
    assert_int_equal(u.id, id2);
    assert_int_equal(u.role, ROLE_USER);
    assert_null(u.password_hash);
    assert_int_equal(u.created_ms, 1700000000001);
    myna_control_user_release(&u);
    myna_control_user_release(NULL);  /* no-op */
    assert_int_equal(err.code, 0);
}

static void test_user_name_rules(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    char max[MYNA_CONTROL_NAME_MAX + 1], over[MYNA_CONTROL_NAME_MAX + 2];
    static const char *const bad[] = {
        "", "Admin", "a b", "a/b", "a'b", "a\"b", "a;b", "ü", "a\tb", "a%s", "a\nb",
    };

    memset(max, 'a', MYNA_CONTROL_NAME_MAX);
    max[MYNA_CONTROL_NAME_MAX] = '\0';
    memset(over, 'b', MYNA_CONTROL_NAME_MAX + 1);
    over[MYNA_CONTROL_NAME_MAX + 1] = '\0';
    add_user(f->c, "a", ROLE_USER);
    add_user(f->c, "j.doe_2-x@shop.example", ROLE_USER);
    add_user(f->c, max, ROLE_USER);
    add_user(f->c, "0", ROLE_USER);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(myna_control_user_add(f->c, bad[i], ROLE_USER, NULL, 1, NULL,
                                                &err), MYNA_EINVAL);
        assert_err(&err, MYNA_EINVAL, "cannot add user '");
    }
    assert_int_equal(myna_control_user_add(f->c, over, ROLE_USER, NULL, 1, NULL, &err),
                     MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot add user 'bbb");
    assert_int_equal(myna_control_user_add(f->c, NULL, ROLE_USER, NULL, 1, NULL, &err),
                     MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot add user '(null)'");
    /* a long name in a message is cut between characters: a message may go
     * out as JSON (here byte 64 falls inside the 32nd "é") */
    {
        char accents[1 + 40 * 2 + 1] = "a";
        struct myna_control_user u;
        for (int i = 0; i < 40; i++)
            memcpy(accents + 1 + 2 * i, "\xC3\xA9", 3);
        assert_int_equal(myna_control_user_add(f->c, accents, ROLE_USER, NULL, 1, NULL, &err),
                         MYNA_EINVAL);
        assert_true(myna_utf8_count(err.msg) != (size_t)-1);
        assert_int_equal(strncmp(err.msg + strlen("cannot add user 'a"), accents + 1, 62), 0);
        assert_int_equal(myna_control_user_get_by_name(f->c, accents, &u, &err),
                         MYNA_ENOTFOUND);
        assert_true(myna_utf8_count(err.msg) != (size_t)-1);
        assert_int_equal(myna_control_instance_delete(f->c, accents, &err), MYNA_ENOTFOUND);
        assert_true(myna_utf8_count(err.msg) != (size_t)-1);
    }
    assert_int_equal(user_count(f->c), 4);
}

static void test_user_duplicate_and_bad_role(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    char big[MYNA_CONTROL_TEXT_MAX + 2];
    int64_t id = add_user(f->c, "bob", ROLE_ADMIN), other = -7;

    assert_int_equal(myna_control_user_add(f->c, "bob", ROLE_GUEST, "h", 9, &other, &err),
                     MYNA_EEXISTS);
    assert_err(&err, MYNA_EEXISTS, "cannot add user 'bob': the name is taken");
    assert_int_equal(other, -7);  /* not written on failure */
    /* the first one is intact */
    assert_int_equal(myna_control_user_get_by_name(f->c, "bob", &u, NULL), MYNA_OK);
    assert_int_equal(u.id, id);
    assert_int_equal(u.role, ROLE_ADMIN);
    assert_null(u.password_hash);
    myna_control_user_release(&u);

    assert_int_equal(myna_control_user_add(f->c, "carol", 3, NULL, 1, NULL, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot add user 'carol': unknown role 3");
    assert_int_equal(myna_control_user_add(f->c, "carol", -1, NULL, 1, NULL, &err), MYNA_EINVAL);
    assert_int_equal(myna_control_user_add(f->c, "carol", 1, "", 1, NULL, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot add user: the password hash is empty");
    memset(big, 'h', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(myna_control_user_add(f->c, "carol", 1, big, 1, NULL, &err), MYNA_ETOOBIG);
    assert_int_equal(user_count(f->c), 1);
}

static void test_user_get_unknown(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;

    add_user(f->c, "alice", ROLE_USER);
    assert_int_equal(myna_control_user_get_by_id(f->c, 999, &u, &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot get user 999: not found");
    assert_int_equal(myna_control_user_get_by_name(f->c, "nobody", &u, &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot get user 'nobody': not found");
    /* a name no user can have reads like any unknown name */
    assert_int_equal(myna_control_user_get_by_name(f->c, "alice' OR '1'='1", &u, &err),
                     MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot get user 'alice' OR '1'='1': not found");
    assert_int_equal(myna_control_user_get_by_name(f->c, NULL, &u, &err), MYNA_ENOTFOUND);
}

static void test_user_updates_and_admin_count(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    int64_t a = add_user(f->c, "root", ROLE_ADMIN), b = add_user(f->c, "eve", ROLE_USER);
    int64_t n = -1;

    assert_int_equal(myna_control_user_count_admins(f->c, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(myna_control_user_set_role(f->c, b, ROLE_ADMIN, &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admins(f->c, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(myna_control_user_set_disabled(f->c, a, 1, &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admins(f->c, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);  /* a disabled admin does not count */
    assert_int_equal(myna_control_user_get_by_id(f->c, a, &u, &err), MYNA_OK);
    assert_int_equal(u.disabled, 1);
    myna_control_user_release(&u);
    assert_int_equal(myna_control_user_set_disabled(f->c, a, 0, &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admins(f->c, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(myna_control_user_set_role(f->c, b, ROLE_GUEST, &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admins(f->c, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);

    assert_int_equal(myna_control_user_set_password(f->c, b, "$2b$12$abc", &err), MYNA_OK);
    assert_int_equal(myna_control_user_get_by_id(f->c, b, &u, &err), MYNA_OK);
    assert_string_equal(u.password_hash, "$2b$12$abc");
    assert_int_equal(u.role, ROLE_GUEST);
    assert_int_equal(u.disabled, 0);
    myna_control_user_release(&u);
    assert_int_equal(myna_control_user_set_password(f->c, b, NULL, &err), MYNA_OK);
    assert_int_equal(myna_control_user_get_by_id(f->c, b, &u, &err), MYNA_OK);
    assert_null(u.password_hash);
    myna_control_user_release(&u);
    assert_int_equal(err.code, 0);

    /* unknown ids and bad values */
    assert_int_equal(myna_control_user_set_password(f->c, 999, "x", &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot set the password of user 999: not found");
    assert_int_equal(myna_control_user_set_role(f->c, 999, ROLE_USER, &err),
                     MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot set the role of user 999: not found");
    assert_int_equal(myna_control_user_set_disabled(f->c, 999, 1, &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot set the disabled flag of user 999");
    assert_int_equal(myna_control_user_set_role(f->c, a, 7, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot set the role of user");
    assert_int_equal(myna_control_user_set_password(f->c, a, "", &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot set the password");
}

/* The ways in: enabled admins' passwords and live tokens, nothing else. */
static void test_admin_ways_counted(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    int64_t a = add_user(f->c, "root", ROLE_ADMIN), b = add_user(f->c, "eve", ROLE_USER);
    int64_t n = -1, t1 = 0, t2 = 0;
    char h[65];

    assert_int_equal(myna_control_user_count_admin_ways(f->c, 1000, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);  /* an admin with neither */
    hash_of(0x91, h);
    assert_int_equal(myna_control_token_add(f->c, a, h, "a", 1, 0, &t1, &err), MYNA_OK);
    hash_of(0x92, h);
    assert_int_equal(myna_control_token_add(f->c, a, h, "ends", 1, 2000, &t2, &err), MYNA_OK);
    hash_of(0x93, h);
    assert_int_equal(myna_control_token_add(f->c, b, h, "b", 1, 0, NULL, &err), MYNA_OK);
    assert_int_equal(myna_control_user_set_password(f->c, b, "$2b$12$abc", &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admin_ways(f->c, 1000, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);  /* not a user's token or password */
    assert_int_equal(myna_control_user_count_admin_ways(f->c, 2000, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);  /* the ended token */
    assert_int_equal(myna_control_token_revoke(f->c, t1, 0, NULL, &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admin_ways(f->c, 1000, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(myna_control_user_set_password(f->c, a, "$2b$12$def", &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admin_ways(f->c, 1000, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(myna_control_user_set_disabled(f->c, a, 1, &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admin_ways(f->c, 1000, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);  /* a disabled admin's ways are none */
    assert_int_equal(myna_control_user_set_role(f->c, b, ROLE_ADMIN, &err), MYNA_OK);
    assert_int_equal(myna_control_user_count_admin_ways(f->c, 1000, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
}

static void test_user_list_paging(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user *v = (void *)1;
    char name[32];
    size_t n = 99, seen = 0;

    for (int i = 0; i < 25; i++) {
        snprintf(name, sizeof(name), "user%02d", i);
        add_user(f->c, name, ROLE_USER);
    }
    for (size_t off = 0; off < 30; off += 10) {
        assert_int_equal(myna_control_user_list(f->c, 10, off, &v, &n, &err), MYNA_OK);
        assert_int_equal(n, off < 20 ? 10 : 5);
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "user%02zu", seen++);
            assert_string_equal(v[i].name, name);  /* id order, no gap, no repeat */
            if (i > 0)
                assert_true(v[i].id > v[i - 1].id);
            myna_control_user_release(&v[i]);
        }
        free(v);
    }
    assert_int_equal(seen, 25);
    assert_int_equal(myna_control_user_list(f->c, 10, 25, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(myna_control_user_list(f->c, 1, 3, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "user03");
    myna_control_user_release(&v[0]);
    free(v);

    assert_int_equal(myna_control_user_list(f->c, 0, 0, &v, &n, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot list users: limit 0");
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(myna_control_user_list(f->c, MYNA_CONTROL_LIST_MAX + 1, 0, &v, &n, &err),
                     MYNA_EINVAL);
    assert_int_equal(myna_control_user_list(f->c, 5, (size_t)INT64_MAX + 1, &v, &n, &err),
                     MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot list users: offset");
}

/* ---- tokens ---- */

static void token_last_used(struct myna_control *c, int64_t tid, int64_t *last_used,
                            int *revoked)
{
    struct myna_control_token *v;
    size_t n;
    int found = 0;

    assert_int_equal(myna_control_token_list(c, 0, 0, MYNA_CONTROL_LIST_MAX, 0, &v, &n, NULL),
                     MYNA_OK);
    for (size_t i = 0; i < n; i++) {
        if (v[i].id == tid) {
            *last_used = v[i].last_used_ms;
            *revoked = v[i].revoked;
            found = 1;
        }
        myna_control_token_release(&v[i]);
    }
    free(v);
    assert_true(found);
}

static void test_token_find_and_touch(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    char h[65];
    int64_t uid = add_user(f->c, "deployer", ROLE_USER), tid = 0, found = 0, last = -1;
    int revoked = -1;

    hash_of(0xabc, h);
    assert_int_equal(myna_control_token_add(f->c, uid, h, "ci deploy", 10000, 0, &tid, &err),
                     MYNA_OK);
    assert_true(tid > 0);
    token_last_used(f->c, tid, &last, &revoked);
    assert_int_equal(last, 0);  /* never used */
    assert_int_equal(revoked, 0);

    assert_int_equal(myna_control_token_find(f->c, h, 100000, &u, &found, &err), MYNA_OK);
    assert_int_equal(found, tid);
    assert_int_equal(u.id, uid);
    assert_string_equal(u.name, "deployer");
    assert_int_equal(u.role, ROLE_USER);
    myna_control_user_release(&u);
    token_last_used(f->c, tid, &last, &revoked);
    assert_int_equal(last, 100000);

    /* within a minute: no write */
    assert_int_equal(myna_control_token_find(f->c, h, 100000 + MYNA_CONTROL_TOUCH_MS - 1, &u,
                                             NULL, &err), MYNA_OK);
    myna_control_user_release(&u);
    token_last_used(f->c, tid, &last, &revoked);
    assert_int_equal(last, 100000);
    /* a clock that went back: no write either */
    assert_int_equal(myna_control_token_find(f->c, h, 5, &u, NULL, &err), MYNA_OK);
    myna_control_user_release(&u);
    token_last_used(f->c, tid, &last, &revoked);
    assert_int_equal(last, 100000);
    /* a minute on: written again */
    assert_int_equal(myna_control_token_find(f->c, h, 100000 + MYNA_CONTROL_TOUCH_MS, &u, NULL,
                                             &err), MYNA_OK);
    myna_control_user_release(&u);
    token_last_used(f->c, tid, &last, &revoked);
    assert_int_equal(last, 100000 + MYNA_CONTROL_TOUCH_MS);
    assert_int_equal(err.code, 0);

    /* the hint write failing does not fail the lookup */
    myna_control_fail_after(f->c, 1);
    assert_int_equal(myna_control_token_find(f->c, h, 10000000, &u, NULL, &err), MYNA_OK);
    myna_control_user_release(&u);
    token_last_used(f->c, tid, &last, &revoked);
    assert_int_equal(last, 100000 + MYNA_CONTROL_TOUCH_MS);
    assert_int_equal(err.code, 0);
}

/* A token with an end works until it, then is refused as expired; one
 * without (0) never ends. */
static void test_token_expiry(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    struct myna_control_token *v = NULL;
    size_t n = 0;
    char h1[65], h2[65];
    int64_t uid = add_user(f->c, "ines", ROLE_USER);

    hash_of(0x51, h1);
    hash_of(0x52, h2);
    assert_int_equal(myna_control_token_add(f->c, uid, h1, "login", 1000, 50000, NULL, &err),
                     MYNA_OK);
    assert_int_equal(myna_control_token_add(f->c, uid, h2, "api", 1000, 0, NULL, &err), MYNA_OK);

    assert_int_equal(myna_control_token_find(f->c, h1, 49999, &u, NULL, &err), MYNA_OK);
    myna_control_user_release(&u);
    assert_int_equal(myna_control_token_find(f->c, h1, 50000, &u, NULL, &err), MYNA_ENOTFOUND);
    assert_non_null(strstr(err.msg, "expired"));
    assert_int_equal(myna_control_token_find(f->c, h2, INT64_MAX / 2, &u, NULL, &err), MYNA_OK);
    myna_control_user_release(&u);

    assert_int_equal(myna_control_token_list(f->c, uid, 0, 10, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].expires_ms, 50000);
    assert_int_equal(v[1].expires_ms, 0);
    for (size_t i = 0; i < n; i++)
        myna_control_token_release(&v[i]);
    free(v);

    hash_of(0x53, h1);
    assert_int_equal(myna_control_token_add(f->c, uid, h1, "bad", 1000, -1, NULL, &err),
                     MYNA_EINVAL);
    assert_int_equal(token_count(f->c, uid), 2);
}

/* Pruning deletes the tokens whose end has come, and only those. */
static void test_token_prune(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    static const int64_t ends[] = { 100, 200, 201, 0 };  /* the last: no end */
    int64_t uid = add_user(f->c, "jo", ROLE_USER), n = -1;
    char h[65];

    for (unsigned i = 0; i < 4; i++) {
        hash_of(0x70 + i, h);
        assert_int_equal(myna_control_token_add(f->c, uid, h, "t", 1, ends[i], NULL, &err),
                         MYNA_OK);
    }
    assert_int_equal(myna_control_token_prune(f->c, 200, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(token_count(f->c, uid), 2);
    assert_int_equal(myna_control_token_prune(f->c, 200, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(myna_control_token_prune(f->c, INT64_MAX, NULL, &err), MYNA_OK);
    assert_int_equal(token_count(f->c, uid), 1);  /* the one without an end */
}

/* A store made before tokens could end (schema 1) gains the column, and
 * its tokens keep working. */
static void test_schema_1_tokens_never_end(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    struct myna_control *c = open_ok(f->path);
    char h[65];
    int64_t uid = add_user(c, "old", ROLE_ADMIN);

    hash_of(0x61, h);
    assert_int_equal(myna_control_token_add(c, uid, h, "old", 1, 0, NULL, &err), MYNA_OK);
    myna_control_free(c);
    sql_exec(f->path, "ALTER TABLE tokens DROP COLUMN expires_ms");
    sql_exec(f->path, "PRAGMA user_version=1");

    c = open_ok(f->path);
    assert_sql(f->path, "PRAGMA user_version", "4");
    assert_sql(f->path, "SELECT expires_ms FROM tokens", "0");
    assert_int_equal(myna_control_token_find(c, h, INT64_MAX / 2, &u, NULL, &err), MYNA_OK);
    assert_string_equal(u.name, "old");
    myna_control_user_release(&u);
    myna_control_free(c);
}

static void test_token_refusals(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    char h1[65], h2[65], h3[65];
    int64_t alice = add_user(f->c, "alice", ROLE_ADMIN);
    int64_t bob = add_user(f->c, "bob", ROLE_USER);
    int64_t t1 = 0, t2 = 0, last = 0;
    int revoked = 0, changed = 0;

    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    assert_int_equal(myna_control_token_add(f->c, alice, h1, "laptop", 1, 0, &t1, &err), MYNA_OK);
    assert_int_equal(myna_control_token_add(f->c, bob, h2, NULL, 1, 0, &t2, &err), MYNA_OK);

    /* unknown */
    assert_int_equal(myna_control_token_find(f->c, h3, 1, &u, NULL, &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot find token: unknown token");
    assert_int_equal(myna_control_token_find(f->c, "not-a-hash", 1, &u, NULL, &err),
                     MYNA_ENOTFOUND);
    assert_int_equal(myna_control_token_find(f->c, NULL, 1, &u, NULL, &err), MYNA_ENOTFOUND);

    /* revoked by its user or anyone (0), not by another user; twice is
     * fine, and it stays listed as revoked */
    changed = -1;
    assert_int_equal(myna_control_token_revoke(f->c, t1, bob, &changed, &err), MYNA_ENOTFOUND);
    assert_int_equal(changed, 0);
    assert_int_equal(myna_control_token_revoke(f->c, t1, alice, &changed, &err), MYNA_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(myna_control_token_revoke(f->c, t1, 0, &changed, &err), MYNA_OK);
    assert_int_equal(changed, 0);  /* revoked already: nothing changed */
    assert_int_equal(myna_control_token_revoke(f->c, t1, bob, &changed, &err), MYNA_ENOTFOUND);
    assert_int_equal(myna_control_token_find(f->c, h1, 1, &u, NULL, &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot find token");
    assert_non_null(strstr(err.msg, "revoked"));
    assert_null(strstr(err.msg, h1));  /* the hash never goes into a message */
    token_last_used(f->c, t1, &last, &revoked);
    assert_int_equal(revoked, 1);
    assert_int_equal(myna_control_token_revoke(f->c, 424242, 0, NULL, &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot revoke token 424242: not found");

    /* a disabled user's token, working again once the user is enabled */
    assert_int_equal(myna_control_user_set_disabled(f->c, bob, 1, &err), MYNA_OK);
    assert_int_equal(myna_control_token_find(f->c, h2, 1, &u, NULL, &err), MYNA_ENOTFOUND);
    assert_non_null(strstr(err.msg, "disabled"));
    assert_null(strstr(err.msg, h2));
    assert_int_equal(myna_control_user_set_disabled(f->c, bob, 0, &err), MYNA_OK);
    assert_int_equal(myna_control_token_find(f->c, h2, 1, &u, NULL, &err), MYNA_OK);
    assert_int_equal(u.id, bob);
    myna_control_user_release(&u);

    /* adding: bad hashes, a hash already stored, an unknown user, a long name */
    memset(&err, 0, sizeof(err));
    {
        char upper[65], shortx[64], longx[66], nonhex[65];
        hash_of(0xabcdef, upper);
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 'a' + 'A');
        memset(shortx, 'a', 63);
        shortx[63] = '\0';
        memset(longx, 'a', 65);
        longx[65] = '\0';
        hash_of(9, nonhex);
        nonhex[10] = 'g';
        const char *bad[] = { upper, shortx, longx, nonhex, "", NULL };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            assert_int_equal(myna_control_token_add(f->c, alice, bad[i], "x", 1, 0, NULL, &err),
                             MYNA_EINVAL);
            assert_err(&err, MYNA_EINVAL, "cannot add a token for user");
        }
    }
    assert_int_equal(myna_control_token_add(f->c, bob, h1, "again", 1, 0, NULL, &err),
                     MYNA_EEXISTS);
    assert_err(&err, MYNA_EEXISTS, "cannot add a token for user");
    assert_null(strstr(err.msg, h1));
    assert_int_equal(myna_control_token_add(f->c, 777, h3, "ghost", 1, 0, NULL, &err),
                     MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot add a token for user 777: no such user");
    {
        char big[MYNA_CONTROL_TEXT_MAX + 2];
        memset(big, 'n', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(myna_control_token_add(f->c, alice, h3, big, 1, 0, NULL, &err),
                         MYNA_ETOOBIG);
    }
    assert_sql(f->path, "SELECT count(*) FROM tokens", "2");
    /* the token itself is nowhere: only hashes, and they are not read back */
    assert_sql(f->path, "SELECT group_concat(hash) FROM (SELECT hash FROM tokens ORDER BY id)",
               "0000000000000000000000000000000000000000000000000000000000000001,"
               "0000000000000000000000000000000000000000000000000000000000000002");
}

static void test_token_list_paging(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_token *v;
    char h[65], name[32];
    int64_t a = add_user(f->c, "a", ROLE_USER), b = add_user(f->c, "b", ROLE_USER);
    size_t n;

    for (int i = 0; i < 7; i++) {
        hash_of((unsigned long long)i + 100, h);
        snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(myna_control_token_add(f->c, i % 2 ? b : a, h, name, 50 + i, 0, NULL,
                                                &err), MYNA_OK);
    }
    assert_int_equal(myna_control_token_list(f->c, 0, 0, 100, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "t%zu", i);
        assert_string_equal(v[i].name, name);
        assert_int_equal(v[i].created_ms, 50 + (int64_t)i);
        assert_int_equal(v[i].user_id, i % 2 ? b : a);
        myna_control_token_release(&v[i]);
    }
    free(v);
    assert_int_equal(myna_control_token_list(f->c, a, 0, 100, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 4);  /* t0 t2 t4 t6 */
    for (size_t i = 0; i < n; i++)
        myna_control_token_release(&v[i]);
    free(v);
    assert_int_equal(myna_control_token_list(f->c, b, 0, 2, 1, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "t3");
    assert_string_equal(v[1].name, "t5");
    for (size_t i = 0; i < n; i++)
        myna_control_token_release(&v[i]);
    free(v);
    assert_int_equal(myna_control_token_list(f->c, 999, 0, 10, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(myna_control_token_list(f->c, 0, 0, 0, 0, &v, &n, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot list tokens");
}

static void tokens_free(struct myna_control_token *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        myna_control_token_release(&v[i]);
    free(v);
}

/* A login prunes the tokens that ended: paging by the last id seen
 * neither repeats nor skips a token when some of an earlier page are
 * deleted between two pages; an offset skips one for each. */
static void test_token_list_paging_across_a_prune(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_token *v;
    char h[65], name[32];
    int64_t a = add_user(f->c, "a", ROLE_USER), last, pruned = 0;
    size_t n;

    for (int i = 0; i < 6; i++) {  /* t0 and t1 end at 100, the others never */
        hash_of((unsigned long long)i + 200, h);
        snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(myna_control_token_add(f->c, a, h, name, 50, i < 2 ? 100 : 0, NULL,
                                                &err), MYNA_OK);
    }
    assert_int_equal(myna_control_token_list(f->c, 0, 0, 3, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "t0");
    assert_string_equal(v[2].name, "t2");
    last = v[2].id;
    tokens_free(v, n);
    assert_int_equal(myna_control_token_prune(f->c, 200, &pruned, &err), MYNA_OK);
    assert_int_equal(pruned, 2);

    /* by offset: the rows moved up by two, so t3 and t4 are never seen */
    assert_int_equal(myna_control_token_list(f->c, 0, 0, 3, 3, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "t5");
    tokens_free(v, n);
    /* by id: the next page is the next three */
    assert_int_equal(myna_control_token_list(f->c, 0, last, 3, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "t3");
    assert_string_equal(v[1].name, "t4");
    assert_string_equal(v[2].name, "t5");
    last = v[2].id;
    tokens_free(v, n);
    assert_int_equal(myna_control_token_list(f->c, a, last, 3, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    free(v);
}

/* ---- instances ---- */

static void test_instance_crud_and_versions(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_instance in;
    int64_t owner = add_user(f->c, "shop", ROLE_USER), v = 0;

    assert_int_equal(myna_control_instance_create(f->c, "acme", owner, "{\"provider\":\"sim\"}",
                                                  1, 1, 5000, &err), MYNA_OK);
    assert_int_equal(myna_control_instance_get(f->c, "acme", &in, &err), MYNA_OK);
    assert_string_equal(in.id, "acme");
    assert_int_equal(in.owner_id, owner);
    assert_string_equal(in.config, "{\"provider\":\"sim\"}");
    assert_int_equal(in.enabled, 1);
    assert_int_equal(in.auto_start, 1);
    assert_int_equal(in.created_ms, 5000);
    assert_int_equal(in.updated_ms, 5000);
    assert_int_equal(in.version, 1);
    myna_control_instance_release(&in);
    myna_control_instance_release(NULL);

    /* with the version read: applied, version bumped */
    assert_int_equal(myna_control_instance_update(f->c, "acme", "{\"provider\":\"cloud\"}", 0, 0,
                                                  1, 6000, &v, &err), MYNA_OK);
    assert_int_equal(v, 2);
    /* the same stale version again: refused, nothing changed */
    assert_int_equal(myna_control_instance_update(f->c, "acme", "{\"stale\":true}", 1, 1, 1,
                                                  7000, &v, &err), MYNA_ECONFLICT);
    assert_err(&err, MYNA_ECONFLICT, "cannot update instance 'acme': it is at version 2, not 1");
    assert_int_equal(v, 2);
    assert_int_equal(myna_control_instance_get(f->c, "acme", &in, &err), MYNA_OK);
    assert_string_equal(in.config, "{\"provider\":\"cloud\"}");
    assert_int_equal(in.enabled, 0);
    assert_int_equal(in.auto_start, 0);
    assert_int_equal(in.created_ms, 5000);
    assert_int_equal(in.updated_ms, 6000);
    assert_int_equal(in.version, 2);
    myna_control_instance_release(&in);

    /* -1: any version; NULL config and negative flags keep what is stored */
    assert_int_equal(myna_control_instance_update(f->c, "acme", NULL, 5, -1, -1, 8000, &v,
                                                  &err), MYNA_OK);
    assert_int_equal(v, 3);
    assert_int_equal(myna_control_instance_update(f->c, "acme", NULL, -1, 1, 3, 9000, NULL,
                                                  &err), MYNA_OK);
    assert_int_equal(myna_control_instance_get(f->c, "acme", &in, &err), MYNA_OK);
    assert_string_equal(in.config, "{\"provider\":\"cloud\"}");
    assert_int_equal(in.enabled, 1);  /* 5 is stored as 1 */
    assert_int_equal(in.auto_start, 1);
    assert_int_equal(in.updated_ms, 9000);
    assert_int_equal(in.version, 4);
    myna_control_instance_release(&in);

    /* unknown ids */
    assert_int_equal(myna_control_instance_update(f->c, "nope", "{}", 1, 1, -1, 1, NULL, &err),
                     MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot update instance 'nope': not found");
    assert_int_equal(myna_control_instance_update(f->c, "nope", "{}", 1, 1, 4, 1, NULL, &err),
                     MYNA_ENOTFOUND);
    assert_int_equal(myna_control_instance_update(f->c, "Bad Id", "{}", 1, 1, -1, 1, NULL,
                                                  &err), MYNA_ENOTFOUND);
    assert_int_equal(myna_control_instance_get(f->c, "nope", &in, &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot get instance 'nope': not found");
    assert_int_equal(myna_control_instance_get(f->c, NULL, &in, &err), MYNA_ENOTFOUND);

    /* delete */
    assert_int_equal(myna_control_instance_delete(f->c, "acme", &err), MYNA_OK);
    assert_int_equal(myna_control_instance_get(f->c, "acme", &in, &err), MYNA_ENOTFOUND);
    assert_int_equal(myna_control_instance_delete(f->c, "acme", &err), MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot delete instance 'acme': not found");
    assert_int_equal(myna_control_instance_delete(f->c, "../etc", &err), MYNA_ENOTFOUND);
    assert_int_equal(inst_count(f->c, 0), 0);
    /* the id is free again, and starts over at version 1 */
    create_inst(f->c, "acme", 0, "{}");
    assert_int_equal(myna_control_instance_get(f->c, "acme", &in, &err), MYNA_OK);
    assert_int_equal(in.version, 1);
    assert_int_equal(in.owner_id, 0);
    myna_control_instance_release(&in);
}

static void test_instance_create_errors(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_instance in;
    char *big;
    static const char *const bad[] = { "", "Acme", "-acme", "acme-", "a_b", "a.b", "a b",
                                       "../x", "acme'--" };

    create_inst(f->c, "acme", 0, "{\"first\":1}");
    assert_int_equal(myna_control_instance_create(f->c, "acme", 0, "{\"second\":2}", 0, 0, 1,
                                                  &err), MYNA_EEXISTS);
    assert_err(&err, MYNA_EEXISTS, "cannot create instance 'acme': the id is taken");
    assert_int_equal(myna_control_instance_get(f->c, "acme", &in, &err), MYNA_OK);
    assert_string_equal(in.config, "{\"first\":1}");  /* the first one is intact */
    myna_control_instance_release(&in);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(myna_control_instance_create(f->c, bad[i], 0, "{}", 1, 1, 1, &err),
                         MYNA_EINVAL);
        assert_err(&err, MYNA_EINVAL, "cannot create instance '");
    }
    assert_int_equal(myna_control_instance_create(f->c, NULL, 0, "{}", 1, 1, 1, &err),
                     MYNA_EINVAL);
    assert_int_equal(myna_control_instance_create(f->c, "beta", 0, NULL, 1, 1, 1, &err),
                     MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot create instance 'beta': no config");
    assert_int_equal(myna_control_instance_create(f->c, "beta", 4242, "{}", 1, 1, 1, &err),
                     MYNA_ENOTFOUND);
    assert_err(&err, MYNA_ENOTFOUND, "cannot create instance 'beta': no user 4242");

    big = malloc(MYNA_CONTROL_CONFIG_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', MYNA_CONTROL_CONFIG_MAX + 1);
    big[MYNA_CONTROL_CONFIG_MAX + 1] = '\0';
    assert_int_equal(myna_control_instance_create(f->c, "beta", 0, big, 1, 1, 1, &err),
                     MYNA_ETOOBIG);
    assert_err(&err, MYNA_ETOOBIG, "cannot create instance 'beta': its config is larger");
    assert_int_equal(myna_control_instance_update(f->c, "acme", big, 1, 1, -1, 1, NULL, &err),
                     MYNA_ETOOBIG);
    assert_err(&err, MYNA_ETOOBIG, "cannot update instance 'acme'");
    big[MYNA_CONTROL_CONFIG_MAX] = '\0';  /* exactly the limit: fine */
    assert_int_equal(myna_control_instance_create(f->c, "beta", 0, big, 1, 1, 1, &err), MYNA_OK);
    free(big);
    assert_int_equal(inst_count(f->c, 0), 2);
}

static void test_instance_list_owner_paging_count(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_instance *v;
    int64_t a = add_user(f->c, "a", ROLE_USER), b = add_user(f->c, "b", ROLE_USER);
    char id[32];
    size_t n;

    /* created out of id order: listed in id order */
    for (int i = 11; i >= 0; i--) {
        snprintf(id, sizeof(id), "shop-%02d", i);
        create_inst(f->c, id, i % 3 == 0 ? a : i % 3 == 1 ? b : 0, "{}");
    }
    assert_int_equal(inst_count(f->c, 0), 12);
    assert_int_equal(inst_count(f->c, a), 4);
    assert_int_equal(inst_count(f->c, b), 4);
    assert_int_equal(inst_count(f->c, 999), 0);

    assert_int_equal(myna_control_instance_list(f->c, 0, 5, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 5);
    assert_string_equal(v[0].id, "shop-00");
    assert_string_equal(v[4].id, "shop-04");
    assert_int_equal(v[2].owner_id, 0);
    assert_string_equal(v[2].config, "{}");
    for (size_t i = 0; i < n; i++)
        myna_control_instance_release(&v[i]);
    free(v);
    assert_int_equal(myna_control_instance_list(f->c, 0, 5, 10, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].id, "shop-11");
    for (size_t i = 0; i < n; i++)
        myna_control_instance_release(&v[i]);
    free(v);
    assert_int_equal(myna_control_instance_list(f->c, b, 10, 1, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].id, "shop-04");
    assert_string_equal(v[1].id, "shop-07");
    assert_string_equal(v[2].id, "shop-10");
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].owner_id, b);
        myna_control_instance_release(&v[i]);
    }
    free(v);
    assert_int_equal(myna_control_instance_list(f->c, 0, MYNA_CONTROL_LIST_MAX + 1, 0, &v, &n,
                                                &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot list instances: limit");
}

static char *big_config(size_t len, char seed)
{
    static const char utf8[] = "\"Записаться\" на стрижку ✂ ";
    char *s = malloc(len + 1);
    size_t i = 0;

    assert_non_null(s);
    /* JSON-ish, multi-byte text, and every printable byte */
    memcpy(s, "{\"flows\":\"", 10);
    i = 10;
    while (i + sizeof(utf8) < len / 2) {
        memcpy(s + i, utf8, sizeof(utf8) - 1);
        i += sizeof(utf8) - 1;
    }
    for (; i < len - 2; i++)
        s[i] = (char)(33 + (i * 7 + (size_t)seed) % 94);
    s[len - 2] = '"';
    s[len - 1] = '}';
    s[len] = '\0';
    return s;
}

static void test_config_1mb_roundtrip(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_instance in;
    struct myna_control_instance *v;
    char *one = big_config(1 << 20, 1), *two = big_config((1 << 20) + 17, 5);
    size_t n;

    assert_int_equal(myna_control_instance_create(f->c, "big", 0, one, 1, 0, 1, &err), MYNA_OK);
    assert_int_equal(myna_control_instance_get(f->c, "big", &in, &err), MYNA_OK);
    assert_int_equal(strlen(in.config), 1 << 20);
    assert_memory_equal(in.config, one, (size_t)1 << 20);
    myna_control_instance_release(&in);

    assert_int_equal(myna_control_instance_update(f->c, "big", two, -1, -1, 1, 2, NULL, &err),
                     MYNA_OK);
    myna_control_free(f->c);
    f->c = open_ok(f->path);
    assert_int_equal(myna_control_instance_list(f->c, 0, 10, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(v[0].config), (1 << 20) + 17);
    assert_string_equal(v[0].config, two);
    assert_int_equal(v[0].version, 2);
    myna_control_instance_release(&v[0]);
    free(v);
    free(one);
    free(two);
}

/* ---- audit ---- */

static void audits_free(struct myna_control_audit *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        myna_control_audit_release(&v[i]);
    free(v);
}

static void test_audit_order_fields_paging(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_audit a = { 0 }, *v;
    char name[] = "root", action[] = "instance.create", target[] = "acme";
    char detail[] = "{\"enabled\":true}", from[] = "203.0.113.7";
    char act[32];
    int64_t id1 = 0, id2 = 0;
    size_t n;

    a.id = 12345;  /* ignored */
    a.ts_ms = 1000;
    a.user_id = 7;
    a.user_name = name;
    a.action = action;
    a.target = target;
    a.detail = detail;
    a.from_addr = from;
    assert_int_equal(myna_control_audit_add(f->c, &a, &id1, &err), MYNA_OK);
    assert_true(id1 > 0);
    assert_int_not_equal(id1, 12345);
    /* the minimum: an action; everything else NULL or 0 */
    memset(&a, 0, sizeof(a));
    a.action = action;
    a.ts_ms = 1000;  /* same ms: order is by id */
    assert_int_equal(myna_control_audit_add(f->c, &a, &id2, &err), MYNA_OK);
    assert_true(id2 > id1);
    for (int i = 0; i < 10; i++) {
        snprintf(act, sizeof(act), "step.%d", i);
        audit(f->c, 2000 + i, act, "x");
    }
    assert_int_equal(err.code, 0);

    assert_int_equal(myna_control_audit_list(f->c, 0, 3, 0, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].action, "step.9");  /* newest first */
    assert_string_equal(v[1].action, "step.8");
    assert_string_equal(v[2].action, "step.7");
    assert_int_equal(v[0].ts_ms, 2009);
    audits_free(v, n);

    assert_int_equal(myna_control_audit_list(f->c, 0, 5, 10, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, id2);
    assert_int_equal(v[0].user_id, 0);
    assert_null(v[0].user_name);
    assert_string_equal(v[0].action, "instance.create");
    assert_null(v[0].target);
    assert_null(v[0].detail);
    assert_null(v[0].from_addr);
    assert_int_equal(v[1].id, id1);
    assert_int_equal(v[1].ts_ms, 1000);
    assert_int_equal(v[1].user_id, 7);
    assert_string_equal(v[1].user_name, "root");
    assert_string_equal(v[1].target, "acme");
    assert_string_equal(v[1].detail, "{\"enabled\":true}");
    assert_string_equal(v[1].from_addr, "203.0.113.7");
    audits_free(v, n);
    myna_control_audit_release(NULL);
    assert_int_equal(myna_control_audit_list(f->c, 0, 5, 12, &v, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    free(v);

    /* paging by id: a row added between two pages neither repeats nor
     * hides one (an offset of 3 would show step.7 again) */
    {
        int64_t last;
        assert_int_equal(myna_control_audit_list(f->c, 0, 3, 0, &v, &n, &err), MYNA_OK);
        assert_int_equal(n, 3);
        last = v[2].id;
        audits_free(v, n);
        audit(f->c, 3000, "step.new", "x");
        assert_int_equal(myna_control_audit_list(f->c, last, 3, 0, &v, &n, &err), MYNA_OK);
        assert_int_equal(n, 3);
        assert_string_equal(v[0].action, "step.6");
        assert_string_equal(v[2].action, "step.4");
        audits_free(v, n);
        assert_int_equal(myna_control_audit_list(f->c, id2, 5, 0, &v, &n, &err), MYNA_OK);
        assert_int_equal(n, 1);  /* the oldest alone */
        assert_int_equal(v[0].id, id1);
        audits_free(v, n);
        assert_int_equal(myna_control_audit_list(f->c, id1, 5, 0, &v, &n, &err), MYNA_OK);
        assert_int_equal(n, 0);
        free(v);
    }
    assert_int_equal(myna_control_audit_list(f->c, 0, 0, 0, &v, &n, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot list audit rows");
}

/* Old rows go in bounded steps, oldest first; newer rows stay, wherever
 * their ids are. */
static void test_audit_prune(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_audit *v;
    int64_t n = -1;
    size_t k;

    assert_int_equal(myna_control_audit_prune(f->c, 5000, 10, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);  /* empty */
    for (int i = 0; i < 25; i++)
        audit(f->c, 1000 + i, "old", "x");
    audit(f->c, 9000, "new", "x");
    audit(f->c, 1100, "old.late", "x");  /* older than its id says (a clock set back) */

    assert_int_equal(myna_control_audit_prune(f->c, 5000, 10, &n, &err), MYNA_OK);
    assert_int_equal(n, 10);
    assert_int_equal(audit_count(f->c), 17);
    assert_int_equal(myna_control_audit_prune(f->c, 5000, 10, &n, &err), MYNA_OK);
    assert_int_equal(n, 10);
    /* the old row that came after the new one goes too */
    assert_int_equal(myna_control_audit_prune(f->c, 5000, 10, &n, NULL), MYNA_OK);
    assert_int_equal(n, 6);
    assert_int_equal(myna_control_audit_list(f->c, 0, 10, 0, &v, &k, &err), MYNA_OK);
    assert_int_equal(k, 1);
    assert_string_equal(v[0].action, "new");
    myna_control_audit_release(&v[0]);
    free(v);
    assert_int_equal(myna_control_audit_prune(f->c, 9000, 10, NULL, &err), MYNA_OK);
    assert_int_equal(audit_count(f->c), 1);  /* before 9000, not at it */
    assert_int_equal(myna_control_audit_prune(f->c, 9001, 10, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(audit_count(f->c), 0);

    /* rows written while the clock ran ahead, more than a step of them, are
     * the oldest by id: the old rows after them still go */
    for (int i = 0; i < 12; i++)
        audit(f->c, 90000, "ahead", "x");
    for (int i = 0; i < 5; i++)
        audit(f->c, 1000 + i, "old", "x");
    assert_int_equal(myna_control_audit_prune(f->c, 5000, 10, &n, &err), MYNA_OK);
    assert_int_equal(n, 5);
    assert_int_equal(audit_count(f->c), 12);
    assert_int_equal(myna_control_audit_prune(f->c, 5000, 10, &n, &err), MYNA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(myna_control_audit_prune(f->c, 90001, 10, &n, &err), MYNA_OK);
    assert_int_equal(n, 10);
    assert_int_equal(audit_count(f->c), 2);

    assert_int_equal(myna_control_audit_prune(f->c, 9001, 0, &n, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot remove old audit rows: limit 0");
    assert_int_equal(myna_control_audit_prune(f->c, 9001, MYNA_CONTROL_LIST_MAX + 1, &n, &err),
                     MYNA_EINVAL);
}

/* An audit id is never given twice: not after retention emptied the log,
 * and not in a log written before ids were kept (schema 2), whose rows
 * keep their ids through the migration. */
static void test_audit_ids_never_reused(void **state)
{
    struct fix *f = *state;
    struct myna_control_audit a = { 0 };
    struct myna_control *c = open_ok(f->path);
    int64_t id = 0, n = 0;
    char act[] = "old";

    a.ts_ms = 1000;
    a.action = act;
    assert_int_equal(myna_control_audit_add(c, &a, &id, NULL), MYNA_OK);
    assert_int_equal(myna_control_audit_add(c, &a, &id, NULL), MYNA_OK);
    assert_int_equal(id, 2);
    assert_int_equal(myna_control_audit_prune(c, 5000, 10, &n, NULL), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(myna_control_audit_add(c, &a, &id, NULL), MYNA_OK);
    assert_int_equal(id, 3);
    myna_control_free(c);

    /* the same log as schema 2 wrote it */
    sql_exec(f->path, "DROP TABLE audit; DELETE FROM sqlite_sequence;"
             "CREATE TABLE audit(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
             " user_id INTEGER, user_name TEXT, action TEXT NOT NULL, target TEXT, detail TEXT,"
             " from_addr TEXT);"
             "INSERT INTO audit(id, ts_ms, action, from_addr) VALUES (5, 1000, 'a', '192.0.2.1'),"
             " (9, 2000, 'b', NULL); PRAGMA user_version=2");
    c = open_ok(f->path);
    assert_sql(f->path, "PRAGMA user_version", "4");
    assert_sql(f->path, "SELECT group_concat(id || ':' || action || ':' || ifnull(from_addr, '-'))"
               " FROM audit", "5:a:192.0.2.1,9:b:-");
    assert_int_equal(myna_control_audit_prune(c, 5000, 10, &n, NULL), MYNA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(myna_control_audit_add(c, &a, &id, NULL), MYNA_OK);
    assert_int_equal(id, 10);
    myna_control_free(c);
}

static void test_audit_errors(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_audit a = { 0 };
    char empty[] = "", action[] = "user.login";
    char *big = malloc(MYNA_CONTROL_DETAIL_MAX + 2);

    assert_non_null(big);
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot add audit row: no action");
    a.action = empty;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_EINVAL);
    a.action = action;
    memset(big, '{', MYNA_CONTROL_DETAIL_MAX + 1);
    big[MYNA_CONTROL_DETAIL_MAX + 1] = '\0';
    a.detail = big;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_ETOOBIG);
    assert_err(&err, MYNA_ETOOBIG, "cannot add audit row 'user.login': its detail is larger");
    a.detail = NULL;
    big[MYNA_CONTROL_TEXT_MAX + 1] = '\0';
    a.user_name = big;  /* e.g. what a failed login typed */
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_ETOOBIG);
    a.user_name = NULL;
    a.from_addr = big;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_ETOOBIG);
    a.from_addr = NULL;
    big[MYNA_CONTROL_TEXT_MAX] = '\0';  /* at the limit: fine */
    a.target = big;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_OK);
    free(big);
    assert_int_equal(audit_count(f->c), 1);
}

/* Users cannot be deleted through the API yet, but the schema is ready:
 * a deleted user's tokens go, its instances lose their owner, and the
 * audit keeps its name and id. */
static void test_schema_when_a_user_goes(void **state)
{
    struct fix *f = *state;
    struct myna_control_audit a = { 0 }, *v;
    struct myna_control_instance in;
    char name[] = "leaver", action[] = "instance.create";
    char h[65];
    int64_t uid = add_user(f->c, "leaver", ROLE_USER);
    size_t n;

    hash_of(77, h);
    assert_int_equal(myna_control_token_add(f->c, uid, h, "t", 1, 0, NULL, NULL), MYNA_OK);
    create_inst(f->c, "kept", uid, "{}");
    a.ts_ms = 3;
    a.user_id = uid;
    a.user_name = name;
    a.action = action;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, NULL), MYNA_OK);

    sql_exec(f->path, "PRAGMA foreign_keys=ON; DELETE FROM users WHERE name = 'leaver'");
    assert_sql(f->path, "SELECT count(*) FROM tokens", "0");
    assert_int_equal(myna_control_instance_get(f->c, "kept", &in, NULL), MYNA_OK);
    assert_int_equal(in.owner_id, 0);
    myna_control_instance_release(&in);
    assert_int_equal(myna_control_audit_list(f->c, 0, 10, 0, &v, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].user_name, "leaver");
    assert_int_equal(v[0].user_id, uid);
    myna_control_audit_release(&v[0]);
    free(v);
}

/* ---- strings that look like SQL ---- */

static void test_sql_looking_strings_verbatim(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_audit a = { 0 }, *av;
    struct myna_control_instance in;
    struct myna_control_token *tv;
    char h[65];
    char evil1[] = "x'); DROP TABLE users; --";
    char evil2[] = "\" OR 1=1; DELETE FROM instances WHERE '' = '";
    char evil3[] = "%s%n%x \\' \\\" ; -- /* */ NULL";
    char evil4[] = "{\"sql\":\"'; DROP TABLE instances; --\",\"q\":\"\\u0027\"}";
    char action[] = "user.login'--";
    int64_t uid = add_user(f->c, "robert", ROLE_USER);
    size_t n;

    hash_of(5, h);
    assert_int_equal(myna_control_token_add(f->c, uid, h, evil1, 1, 0, NULL, &err), MYNA_OK);
    create_inst(f->c, "bobby-tables", uid, evil4);
    assert_int_equal(myna_control_instance_update(f->c, "bobby-tables", evil2, -1, -1, -1, 2,
                                                  NULL, &err), MYNA_OK);
    assert_int_equal(myna_control_user_set_password(f->c, uid, evil3, &err), MYNA_OK);
    a.ts_ms = 1;
    a.user_name = evil1;
    a.action = action;
    a.target = evil2;
    a.detail = evil4;
    a.from_addr = evil3;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_OK);

    assert_int_equal(myna_control_token_list(f->c, uid, 0, 10, 0, &tv, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(tv[0].name, evil1);
    myna_control_token_release(&tv[0]);
    free(tv);
    assert_int_equal(myna_control_instance_get(f->c, "bobby-tables", &in, &err), MYNA_OK);
    assert_string_equal(in.config, evil2);
    myna_control_instance_release(&in);
    {
        struct myna_control_user u;
        assert_int_equal(myna_control_user_get_by_name(f->c, "robert", &u, &err), MYNA_OK);
        assert_string_equal(u.password_hash, evil3);
        myna_control_user_release(&u);
    }
    assert_int_equal(myna_control_audit_list(f->c, 0, 10, 0, &av, &n, &err), MYNA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(av[0].user_name, evil1);
    assert_string_equal(av[0].action, action);
    assert_string_equal(av[0].target, evil2);
    assert_string_equal(av[0].detail, evil4);
    assert_string_equal(av[0].from_addr, evil3);
    myna_control_audit_release(&av[0]);
    free(av);
    /* nothing was dropped or deleted */
    assert_sql(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", "5");
    assert_int_equal(user_count(f->c), 1);
    assert_int_equal(inst_count(f->c, 0), 1);
}

/* ---- transactions ---- */

static void test_transaction_commit_and_rollback(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;

    /* rolled back: neither the change nor its audit row */
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);
    create_inst(f->c, "acme", 0, "{}");
    audit(f->c, 1, "instance.create", "acme");
    assert_int_equal(inst_count(f->c, 0), 1);  /* seen inside */
    myna_control_rollback(f->c);
    assert_int_equal(inst_count(f->c, 0), 0);
    assert_int_equal(audit_count(f->c), 0);
    myna_control_rollback(f->c);  /* none open: nothing happens */

    /* committed: both */
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);
    create_inst(f->c, "acme", 0, "{}");
    audit(f->c, 1, "instance.create", "acme");
    assert_int_equal(myna_control_commit(f->c, &err), MYNA_OK);
    assert_int_equal(err.code, 0);
    assert_sql(f->path, "SELECT count(*) FROM instances", "1");
    assert_sql(f->path, "SELECT action FROM audit", "instance.create");

    /* misuse */
    assert_int_equal(myna_control_commit(f->c, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot commit to control store");
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_EINVAL);
    assert_err(&err, MYNA_EINVAL, "cannot begin a transaction on control store");
    assert_non_null(strstr(err.msg, "already open"));

    /* a call that fails inside undoes only itself */
    audit(f->c, 2, "instance.create", "acme");
    assert_int_equal(myna_control_instance_create(f->c, "acme", 0, "{}", 1, 1, 3, &err),
                     MYNA_EEXISTS);
    audit(f->c, 3, "instance.create.refused", "acme");
    assert_int_equal(myna_control_commit(f->c, &err), MYNA_OK);
    assert_int_equal(audit_count(f->c), 3);
    assert_int_equal(inst_count(f->c, 0), 1);

    /* free with a transaction open rolls it back */
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);
    create_inst(f->c, "lost", 0, "{}");
    myna_control_free(f->c);
    f->c = open_ok(f->path);
    assert_int_equal(inst_count(f->c, 0), 1);
}

static void test_transaction_faults(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_audit a = { 0 };
    char action[] = "instance.create";

    /* a failing audit row: the caller rolls the change back too */
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);
    create_inst(f->c, "acme", 0, "{}");
    myna_control_fail_after(f->c, 1);
    a.action = action;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_ESTORE);
    assert_err(&err, MYNA_ESTORE, "cannot add audit row 'instance.create': injected fault");
    myna_control_rollback(f->c);
    assert_int_equal(inst_count(f->c, 0), 0);
    assert_int_equal(audit_count(f->c), 0);

    /* a failing commit keeps nothing and ends the transaction */
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);
    create_inst(f->c, "acme", 0, "{}");
    myna_control_fail_after(f->c, 1);
    assert_int_equal(myna_control_commit(f->c, &err), MYNA_ESTORE);
    assert_err(&err, MYNA_ESTORE, "cannot commit to control store");
    assert_int_equal(inst_count(f->c, 0), 0);
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);  /* usable again */
    myna_control_rollback(f->c);

    /* outside a transaction a failed write changes nothing; -1 turns it off */
    myna_control_fail_after(f->c, 2);
    create_inst(f->c, "one", 0, "{}");
    assert_int_equal(myna_control_instance_update(f->c, "one", "{\"x\":1}", 1, 1, -1, 2, NULL,
                                                  &err), MYNA_ESTORE);
    assert_err(&err, MYNA_ESTORE, "cannot update instance 'one': injected fault");
    myna_control_fail_after(f->c, 5);
    myna_control_fail_after(f->c, -1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(myna_control_instance_update(f->c, "one", NULL, -1, -1, -1, 3, NULL,
                                                      &err), MYNA_OK);
    {
        struct myna_control_instance in;
        assert_int_equal(myna_control_instance_get(f->c, "one", &in, &err), MYNA_OK);
        assert_string_equal(in.config, "{}");
        assert_int_equal(in.version, 7);
        myna_control_instance_release(&in);
    }
}

/* SQLite itself may roll the whole transaction back after an error (disk
 * full, I/O, out of memory). The writes that follow must not commit alone:
 * an audit row for a change that was undone, or half of a change. */
static void test_transaction_lost_refuses_writes(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_audit a = { 0 };
    char action[] = "instance.update";

    create_inst(f->c, "acme", 0, "{}");
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);
    assert_int_equal(myna_control_instance_update(f->c, "acme", "{\"x\":1}", -1, -1, -1, 5, NULL,
                                                  &err), MYNA_OK);
    /* what SQLite does on its own after such an error */
    assert_int_equal(sqlite3_exec(myna_control__sqlite_db(f->c), "ROLLBACK", NULL, NULL, NULL),
                     SQLITE_OK);
    a.action = action;
    assert_int_equal(myna_control_audit_add(f->c, &a, NULL, &err), MYNA_ESTORE);
    assert_err(&err, MYNA_ESTORE, "cannot add audit row 'instance.update': the transaction "
               "was rolled back");
    assert_int_equal(myna_control_instance_update(f->c, "acme", NULL, 0, -1, -1, 6, NULL, &err),
                     MYNA_ESTORE);
    assert_err(&err, MYNA_ESTORE, "cannot update instance 'acme': the transaction was rolled");
    assert_int_equal(myna_control_commit(f->c, &err), MYNA_ESTORE);
    assert_sql(f->path, "SELECT count(*) FROM audit", "0");
    assert_sql(f->path, "SELECT version || ':' || enabled FROM instances", "1:1");
    assert_int_equal(myna_control_begin(f->c, &err), MYNA_OK);  /* usable again */
    myna_control_rollback(f->c);
}

/* The admin API's pattern (change + audit in one transaction) with the
 * n-th write failing, n = 1, 2, ... until it succeeds: every failed try
 * leaves nothing behind, and every call fails cleanly. */
static void test_fault_loop_all_or_nothing(void **state)
{
    struct fix *f = *state;
    struct myna_control_audit a = { 0 };
    char action[] = "user.create", name[] = "root";
    char h[65];
    int n, ok = 0;

    hash_of(42, h);
    a.action = action;
    a.user_name = name;
    for (n = 1; n < 20 && !ok; n++) {
        struct myna_err err = MYNA_ERR_INIT;
        int64_t uid = 0;
        int rc;

        myna_control_fail_after(f->c, n);
        rc = myna_control_begin(f->c, &err);
        if (rc == MYNA_OK)
            rc = myna_control_user_add(f->c, "root", ROLE_ADMIN, "hash", 1, &uid, &err);
        if (rc == MYNA_OK)
            rc = myna_control_token_add(f->c, uid, h, "boot", 1, 0, NULL, &err);
        if (rc == MYNA_OK)
            rc = myna_control_instance_create(f->c, "acme", uid, "{}", 1, 1, 1, &err);
        if (rc == MYNA_OK)
            rc = myna_control_audit_add(f->c, &a, NULL, &err);
        if (rc == MYNA_OK)
            rc = myna_control_commit(f->c, &err);
        else
            myna_control_rollback(f->c);
        if (rc == MYNA_OK) {
            ok = 1;
            break;
        }
        assert_err(&err, MYNA_ESTORE, "cannot ");
        assert_non_null(strstr(err.msg, "injected fault"));
        assert_int_equal(user_count(f->c), 0);
        assert_int_equal(inst_count(f->c, 0), 0);
        assert_int_equal(audit_count(f->c), 0);
        assert_sql(f->path, "SELECT count(*) FROM tokens", "0");
    }
    assert_true(ok);
    assert_int_equal(n, 6);  /* four writes and the commit failed in turn */
    myna_control_fail_after(f->c, -1);
    assert_int_equal(user_count(f->c), 1);
    assert_int_equal(inst_count(f->c, 0), 1);
    assert_int_equal(audit_count(f->c), 1);
}

/* ---- persistence and sharing ---- */

static void test_persistence_across_reopen(void **state)
{
    struct fix *f = *state;
    struct myna_control *c = open_ok(f->path);
    struct myna_control_user u;
    struct myna_control_instance in;
    struct myna_control_token *tv;
    struct myna_control_audit *av;
    char h[65];
    int64_t uid, tid = 0;
    size_t n;

    uid = add_user(c, "keeper", ROLE_ADMIN);
    assert_int_equal(myna_control_user_set_password(c, uid, "$argon2id$kept", NULL), MYNA_OK);
    hash_of(99, h);
    assert_int_equal(myna_control_token_add(c, uid, h, "cli", 10, 0, &tid, NULL), MYNA_OK);
    assert_int_equal(myna_control_token_find(c, h, 20, &u, NULL, NULL), MYNA_OK);
    myna_control_user_release(&u);
    create_inst(c, "acme", uid, "{\"a\":1}");
    assert_int_equal(myna_control_instance_update(c, "acme", "{\"a\":2}", 0, 1, 1, 30, NULL,
                                                  NULL), MYNA_OK);
    audit(c, 40, "instance.update", "acme");
    myna_control_free(c);

    c = open_ok(f->path);
    assert_int_equal(myna_control_user_get_by_name(c, "keeper", &u, NULL), MYNA_OK);
    assert_int_equal(u.id, uid);
    assert_int_equal(u.role, ROLE_ADMIN);
    assert_string_equal(u.password_hash, "$argon2id$kept");
    myna_control_user_release(&u);
    assert_int_equal(myna_control_token_list(c, uid, 0, 10, 0, &tv, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tv[0].id, tid);
    assert_int_equal(tv[0].last_used_ms, 20);
    assert_string_equal(tv[0].name, "cli");
    myna_control_token_release(&tv[0]);
    free(tv);
    assert_int_equal(myna_control_token_find(c, h, 25, &u, NULL, NULL), MYNA_OK);
    myna_control_user_release(&u);
    assert_int_equal(myna_control_instance_get(c, "acme", &in, NULL), MYNA_OK);
    assert_string_equal(in.config, "{\"a\":2}");
    assert_int_equal(in.version, 2);
    assert_int_equal(in.enabled, 0);
    assert_int_equal(in.auto_start, 1);
    assert_int_equal(in.updated_ms, 30);
    myna_control_instance_release(&in);
    assert_int_equal(myna_control_audit_list(c, 0, 10, 0, &av, &n, NULL), MYNA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(av[0].action, "instance.update");
    myna_control_audit_release(&av[0]);
    free(av);
    myna_control_free(c);
}

struct delayed_commit {
    struct myna_control *c;
    int rc;
};

static void *commit_later(void *arg)
{
    struct delayed_commit *d = arg;
    struct timespec ms100 = { 0, 100 * 1000 * 1000 };

    nanosleep(&ms100, NULL);
    d->rc = myna_control_commit(d->c, NULL);
    return NULL;
}

static void test_two_handles(void **state)
{
    struct fix *f = *state;
    struct myna_control *a = open_ok(f->path), *b = open_ok(f->path);
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_control_user u;
    struct myna_control_instance in;
    struct delayed_commit d = { a, -1 };
    pthread_t th;
    int64_t t0;

    /* a's uncommitted user is invisible to b; committed, it is there */
    assert_int_equal(myna_control_begin(a, &err), MYNA_OK);
    add_user(a, "first", ROLE_ADMIN);
    assert_int_equal(myna_control_user_get_by_name(b, "first", &u, &err), MYNA_ENOTFOUND);
    assert_int_equal(myna_control_commit(a, &err), MYNA_OK);
    assert_int_equal(myna_control_user_get_by_name(b, "first", &u, &err), MYNA_OK);
    myna_control_user_release(&u);

    /* and the other way round */
    create_inst(b, "from-b", 0, "{\"b\":1}");
    assert_int_equal(myna_control_instance_get(a, "from-b", &in, &err), MYNA_OK);
    assert_string_equal(in.config, "{\"b\":1}");
    myna_control_instance_release(&in);

    /* a holds the write lock: b still reads at once (WAL), and b's write
     * waits for a's commit instead of failing */
    assert_int_equal(myna_control_begin(a, &err), MYNA_OK);
    create_inst(a, "from-a", 0, "{}");
    assert_int_equal(inst_count(b, 0), 1);
    assert_int_equal(pthread_create(&th, NULL, commit_later, &d), 0);
    t0 = myna_mono_ms();
    add_user(b, "second", ROLE_USER);
    assert_true(myna_mono_ms() - t0 >= 50);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(d.rc, MYNA_OK);
    assert_int_equal(inst_count(b, 0), 2);
    assert_int_equal(user_count(a), 2);

    /* a version conflict between two handles */
    {
        struct myna_control_instance ia, ib;
        assert_int_equal(myna_control_instance_get(a, "from-a", &ia, &err), MYNA_OK);
        assert_int_equal(myna_control_instance_get(b, "from-a", &ib, &err), MYNA_OK);
        assert_int_equal(myna_control_instance_update(a, "from-a", "{\"by\":\"a\"}", -1, -1,
                                                      ia.version, 5, NULL, &err), MYNA_OK);
        assert_int_equal(myna_control_instance_update(b, "from-a", "{\"by\":\"b\"}", -1, -1,
                                                      ib.version, 6, NULL, &err),
                         MYNA_ECONFLICT);
        myna_control_instance_release(&ia);
        myna_control_instance_release(&ib);
    }

    /* a token used again within the minute does not write: it answers at
     * once even while the other handle holds the write lock */
    {
        char h[65];
        int64_t uid = add_user(a, "api", ROLE_USER);
        hash_of(1234, h);
        assert_int_equal(myna_control_token_add(a, uid, h, "panel", 1, 0, NULL, &err), MYNA_OK);
        assert_int_equal(myna_control_token_find(b, h, 1000, &u, NULL, &err), MYNA_OK);
        myna_control_user_release(&u);
        assert_int_equal(myna_control_begin(a, &err), MYNA_OK);
        t0 = myna_mono_ms();
        assert_int_equal(myna_control_token_find(b, h, 1000 + MYNA_CONTROL_TOUCH_MS - 1, &u,
                                                 NULL, &err), MYNA_OK);
        assert_true(myna_mono_ms() - t0 < 500);
        assert_int_equal(u.id, uid);
        myna_control_user_release(&u);
        myna_control_rollback(a);
    }
    myna_control_free(a);
    myna_control_free(b);
}

/* Two processes open a file that does not exist yet at the same moment and
 * write: one creates and migrates it, the other waits, both writes land. */
#define FORK_USERS 20

static int write_users(const char *path, const char *who)
{
    struct myna_control *c = myna_control_open(path, NULL);
    char name[32];
    int rc = MYNA_OK;

    if (c == NULL)
        return MYNA_ESTORE;
    for (int i = 0; rc == MYNA_OK && i < FORK_USERS; i++) {
        snprintf(name, sizeof(name), "%s%02d", who, i);
        rc = myna_control_user_add(c, name, ROLE_USER, NULL, i, NULL, NULL);
    }
    myna_control_free(c);
    return rc;
}

static void test_fork_open_together(void **state)
{
    struct fix *f = *state;
    int go[2], status;
    char byte;
    pid_t pid;
    struct myna_control *c;

    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        while (read(go[0], &byte, 1) < 0 && errno == EINTR)
            ;
        _exit(write_users(f->path, "child") == MYNA_OK ? 0 : 1);
    }
    close(go[0]);
    close(go[1]);  /* the child's start signal: EOF */
    assert_int_equal(write_users(f->path, "parent"), MYNA_OK);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    c = open_ok(f->path);
    assert_int_equal(user_count(c), 2 * FORK_USERS);
    myna_control_free(c);
    assert_sql(f->path, "PRAGMA user_version", "4");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define O(fn) cmocka_unit_test_setup_teardown(fn, setup_open, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_schema_wal_private),
        T(test_open_migrates_empty_file),
        T(test_reopen_does_not_migrate),
        T(test_open_refuses_newer_schema),
        T(test_open_refuses_other_files),
        T(test_open_errors),
        O(test_user_add_and_get),
        O(test_user_name_rules),
        O(test_user_duplicate_and_bad_role),
        O(test_user_get_unknown),
        O(test_user_updates_and_admin_count),
        O(test_admin_ways_counted),
        O(test_user_list_paging),
        O(test_token_find_and_touch),
        O(test_token_refusals),
        O(test_token_expiry),
        O(test_token_prune),
        T(test_schema_1_tokens_never_end),
        O(test_token_list_paging),
        O(test_token_list_paging_across_a_prune),
        O(test_instance_crud_and_versions),
        O(test_instance_create_errors),
        O(test_instance_list_owner_paging_count),
        O(test_config_1mb_roundtrip),
        O(test_audit_order_fields_paging),
        O(test_audit_errors),
        O(test_audit_prune),
        T(test_audit_ids_never_reused),
        O(test_schema_when_a_user_goes),
        O(test_sql_looking_strings_verbatim),
        O(test_transaction_commit_and_rollback),
        O(test_transaction_faults),
        O(test_transaction_lost_refuses_writes),
        O(test_fault_loop_all_or_nothing),
        T(test_persistence_across_reopen),
        T(test_two_handles),
        T(test_fork_open_together),
    };
#undef O
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
