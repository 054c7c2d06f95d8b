/* control.h - the master's control data: users, API tokens, instances and
 * the audit log, in var/control.db. The admin API, the panel and the CLI
 * read and write it; bot processes never open it.
 *
 * Writes are rare (an admin changes something), so every commit is synced
 * (synchronous=FULL); reads are indexed and bounded: every list takes a
 * limit (1..MYNA_CONTROL_LIST_MAX) and an offset. A write outside a
 * transaction commits alone; myna_control_begin/commit/rollback group a
 * change with its audit row. A call that fails inside a transaction undoes
 * only itself: the caller then commits what it has or rolls back.
 *
 * What is kept is what the caller gives: the store never sees a token (only
 * the hex SHA-256 of it), a password (only its hash) or an instance secret
 * (configs arrive sealed), and never logs. Strings read back are malloc'd
 * and owned by the struct they are in, freed by its _release; a list is a
 * malloc'd array of *n structs: release each, then free the array.
 *
 * Errors: MYNA_EINVAL for an argument out of its rules, MYNA_ENOTFOUND for
 * an unknown id or name, MYNA_EEXISTS for a taken user name, token hash or
 * instance id (the API's 409), MYNA_ECONFLICT for an instance changed since
 * the version the caller read, MYNA_ETOOBIG past the size limits below,
 * MYNA_ESTORE for SQLite failures. Every failure fills err naming the
 * operation: `cannot add user 'bob': the name is taken`.
 *
 * A handle is used by one thread at a time and never crosses fork(). Two
 * handles (two processes: the master and `myna instance ...`) may share the
 * file: WAL lets readers run beside the one writer, a writer waits up to
 * 2 s for another's transaction. */
#ifndef MYNA_STORE_CONTROL_H
#define MYNA_STORE_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct myna_control;

#define MYNA_CONTROL_LIST_MAX 1000         /* rows per list call */
#define MYNA_CONTROL_NAME_MAX 64           /* user names: 1-64 of [a-z0-9._@-] */
#define MYNA_CONTROL_TEXT_MAX 256          /* password hash, token name, action,
                                            * target, from_addr (bytes) */
#define MYNA_CONTROL_CONFIG_MAX (4 << 20)  /* an instance's config (bytes) */
#define MYNA_CONTROL_DETAIL_MAX (64 << 10) /* an audit row's detail (bytes) */
/* token_find writes last_used_ms only when it is this old (or unset), so
 * that API calls do not all write. */
#define MYNA_CONTROL_TOUCH_MS 60000

struct myna_control_user {
    int64_t id;
    char *name;
    int role;              /* 0 guest, 1 user, 2 admin (enum myna_role, core/auth.h) */
    char *password_hash;   /* NULL: no password (tokens only) */
    int64_t created_ms;
    int disabled;          /* 1: cannot log in, its tokens do not work */
};

/* The token's hash is never read back: a list cannot leak it. */
struct myna_control_token {
    int64_t id;
    int64_t user_id;
    char *name;            /* what it is for: "ci deploy" */
    int64_t created_ms;
    int64_t last_used_ms;  /* 0: never used */
    int revoked;
    int64_t expires_ms;    /* wall clock at which it stops working; 0: never */
};

struct myna_control_instance {
    char *id;              /* slug (myna_is_slug): /webhook/<id> */
    int64_t owner_id;      /* user; 0: no owner */
    char *config;          /* the instance JSON as stored, secrets sealed */
    int enabled;
    int auto_start;
    int64_t created_ms, updated_ms;
    int64_t version;       /* 1 at create, +1 at every update */
};

struct myna_control_audit {
    int64_t id;            /* set by audit_add; ignored when adding */
    int64_t ts_ms;
    int64_t user_id;       /* 0: none (the system, or a failed login) */
    char *user_name;       /* kept even when the user goes; may be NULL */
    char *action;          /* "instance.create"; required */
    char *target;          /* "acme"; may be NULL */
    char *detail;          /* JSON, never secrets (the caller's job); may be NULL */
    char *from_addr;       /* "203.0.113.7"; may be NULL */
};

/* Opens path, creating it (mode 0600: it holds password hashes) and
 * migrating its schema as needed. NULL with err filled on failure:
 * `cannot open control store 'PATH': REASON`, including a file whose
 * schema is newer than this myna knows. */
struct myna_control *myna_control_open(const char *path, struct myna_err *err);
/* NULL ok, cannot fail; rolls back an open transaction. */
void myna_control_free(struct myna_control *c);

/* BEGIN IMMEDIATE: the write lock is taken now. One transaction at a time
 * (MYNA_EINVAL for a second begin). Commit keeps everything or, failing,
 * nothing (the transaction is rolled back). Rollback without a transaction
 * does nothing. When SQLite rolls a transaction back on its own after an
 * error, every write fails (MYNA_ESTORE) until commit or rollback ends it,
 * so that none commits alone. */
int myna_control_begin(struct myna_control *c, struct myna_err *err);
int myna_control_commit(struct myna_control *c, struct myna_err *err);
void myna_control_rollback(struct myna_control *c);

/* ---- users ---- */

/* role 0..2 (MYNA_EINVAL otherwise); password_hash NULL: none. *id (NULL
 * ok) is the new user's id. MYNA_EEXISTS when the name is taken. */
int myna_control_user_add(struct myna_control *c, const char *name, int role,
                          const char *password_hash, int64_t now_ms, int64_t *id,
                          struct myna_err *err);
/* MYNA_OK with *u filled, or MYNA_ENOTFOUND. */
int myna_control_user_get_by_id(struct myna_control *c, int64_t id, struct myna_control_user *u,
                                struct myna_err *err);
int myna_control_user_get_by_name(struct myna_control *c, const char *name,
                                  struct myna_control_user *u, struct myna_err *err);
/* In id order. */
int myna_control_user_list(struct myna_control *c, size_t limit, size_t offset,
                           struct myna_control_user **v, size_t *n, struct myna_err *err);
/* Admins that are not disabled: the API refuses to demote or disable the
 * last one. */
int myna_control_user_count_admins(struct myna_control *c, int64_t *n, struct myna_err *err);
/* The ways into the admin API that enabled admins have: their passwords
 * (for a login) plus their tokens neither revoked nor ended at now_ms. The
 * API refuses a change that takes the last one away. */
int myna_control_user_count_admin_ways(struct myna_control *c, int64_t now_ms, int64_t *n,
                                       struct myna_err *err);
/* NULL removes the password. These three: MYNA_ENOTFOUND for an unknown id. */
int myna_control_user_set_password(struct myna_control *c, int64_t id, const char *password_hash,
                                   struct myna_err *err);
int myna_control_user_set_role(struct myna_control *c, int64_t id, int role,
                               struct myna_err *err);
/* disabled 1 disables, 0 enables again. */
int myna_control_user_set_disabled(struct myna_control *c, int64_t id, int disabled,
                                   struct myna_err *err);
void myna_control_user_release(struct myna_control_user *u);

/* ---- tokens ---- */

/* hash: the token's SHA-256 as 64 lower-case hex digits; expires_ms: the
 * wall clock at which it stops working, 0 never. MYNA_ENOTFOUND for an
 * unknown user, MYNA_EEXISTS for a hash already stored. */
int myna_control_token_add(struct myna_control *c, int64_t user_id, const char *hash,
                           const char *name, int64_t now_ms, int64_t expires_ms, int64_t *id,
                           struct myna_err *err);
/* Deletes the tokens whose end is at or before now_ms (*n, NULL ok: how
 * many): they can never work again. */
int myna_control_token_prune(struct myna_control *c, int64_t now_ms, int64_t *n,
                             struct myna_err *err);
/* The user of a live token: MYNA_OK with *u filled and *token_id (NULL ok)
 * set, or MYNA_ENOTFOUND for a hash that is unknown, revoked, expired at
 * now_ms or whose user is disabled (err says which; the hash is never in a
 * message). Sets the token's last_used_ms to now_ms when it is
 * MYNA_CONTROL_TOUCH_MS old or unset; that write is a hint: when it fails
 * (another writer holds the lock too long) the lookup still succeeds. */
int myna_control_token_find(struct myna_control *c, const char *hash, int64_t now_ms,
                            struct myna_control_user *u, int64_t *token_id,
                            struct myna_err *err);
/* Tokens of user_id (0: of everyone), revoked ones included, oldest first
 * (in id order), from the first whose id is above after_id (0: from the
 * first of all). Paging by after_id, the last id of the previous page,
 * neither repeats nor skips a token when one is deleted meanwhile (a login
 * prunes the ended ones); an offset would skip one for each deleted before
 * it. */
int myna_control_token_list(struct myna_control *c, int64_t user_id, int64_t after_id,
                            size_t limit, size_t offset, struct myna_control_token **v,
                            size_t *n, struct myna_err *err);
/* Revokes token id if it belongs to user_id (0: to anyone). MYNA_ENOTFOUND
 * for an unknown id or another user's; revoking twice is fine. *changed
 * (may be NULL) is 1 when this call revoked it, 0 when it was already. */
int myna_control_token_revoke(struct myna_control *c, int64_t id, int64_t user_id,
                              int *changed, struct myna_err *err);
void myna_control_token_release(struct myna_control_token *t);

/* ---- instances ---- */

/* owner_id 0: no owner; otherwise a user (MYNA_ENOTFOUND if unknown).
 * MYNA_EEXISTS when the id is taken. version starts at 1. */
int myna_control_instance_create(struct myna_control *c, const char *id, int64_t owner_id,
                                 const char *config, int enabled, int auto_start,
                                 int64_t now_ms, struct myna_err *err);
/* MYNA_OK with *inst filled, or MYNA_ENOTFOUND. */
int myna_control_instance_get(struct myna_control *c, const char *id,
                              struct myna_control_instance *inst, struct myna_err *err);
/* Instances of owner_id (0: all), in id order, configs included. */
int myna_control_instance_list(struct myna_control *c, int64_t owner_id, size_t limit,
                               size_t offset, struct myna_control_instance **v, size_t *n,
                               struct myna_err *err);
/* Replaces what is given and bumps the version: config NULL, enabled < 0,
 * auto_start < 0 keep the stored value. expect_version >= 0 makes the
 * update happen only on that version (MYNA_ECONFLICT otherwise: someone
 * changed it since it was read); -1 updates any. *version (NULL ok) is the
 * new version. MYNA_ENOTFOUND for an unknown id. */
int myna_control_instance_update(struct myna_control *c, const char *id, const char *config,
                                 int enabled, int auto_start, int64_t expect_version,
                                 int64_t now_ms, int64_t *version, struct myna_err *err);
/* MYNA_ENOTFOUND for an unknown id. */
int myna_control_instance_delete(struct myna_control *c, const char *id, struct myna_err *err);
/* Instances of owner_id (0: all). */
int myna_control_instance_count(struct myna_control *c, int64_t owner_id, int64_t *n,
                                struct myna_err *err);
void myna_control_instance_release(struct myna_control_instance *inst);

/* ---- audit ---- */

/* Appends a (its id is ignored); *id (NULL ok) is the new row's. */
int myna_control_audit_add(struct myna_control *c, const struct myna_control_audit *a,
                           int64_t *id, struct myna_err *err);
/* Newest first (by id: rows with the same ts_ms keep their order), from
 * the newest row whose id is below before_id (0: from the newest of all).
 * Paging by before_id, the last id of the previous page, neither repeats
 * nor skips rows when new ones are added meanwhile; an offset would. */
int myna_control_audit_list(struct myna_control *c, int64_t before_id, size_t limit,
                            size_t offset, struct myna_control_audit **v, size_t *n,
                            struct myna_err *err);
void myna_control_audit_release(struct myna_control_audit *a);
/* Removes the rows older than before_ms, at most limit of them, the oldest
 * by time first, so that one call stays short however large the log: call
 * again while *n (NULL ok) comes back above 0. */
int myna_control_audit_prune(struct myna_control *c, int64_t before_ms, size_t limit, int64_t *n,
                             struct myna_err *err);

/* Internal to src/store and its tests: the connection (pragmas, schema). */
struct sqlite3;
struct sqlite3 *myna_control__sqlite_db(struct myna_control *c);

/* For tests: the n-th write from now on (n >= 1; any call that changes
 * rows, or a commit) fails once with MYNA_ESTORE, changing nothing;
 * n = -1 turns it off. */
void myna_control_fail_after(struct myna_control *c, int n);

#endif
