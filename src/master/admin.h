/* admin.h - the admin API on the admin listener (JSON; docs/admin-api.md).
 *
 *   POST /admin/login                          {"name","password"} -> a token
 *   GET|POST /admin/whatsapp/instances         list (with live state) | create
 *   GET|PUT|DELETE /admin/whatsapp/instances/{id}
 *   POST /admin/whatsapp/instances/{id}/start|stop|restart
 *   GET  /admin/whatsapp/instances/{id}/status|logs|stats
 *   GET|PUT /admin/whatsapp/instances/{id}/contacts/{wa_id}   profile, history
 *   POST /admin/whatsapp/instances/{id}/contacts/{wa_id}/messages   an operator's message
 *   GET|POST /admin/users, GET|POST /admin/tokens, DELETE /admin/tokens/{id}
 *   GET  /admin/audit
 *
 * HEAD is taken wherever GET is, and answered as a GET without the body;
 * another method a path does not take is 405 with Allow.
 *
 * Every request but login carries "Authorization: Bearer <token>": none or
 * a bad one is 401. Roles: admin does everything; user manages the
 * instances it owns (another user's instance is 404 to it); guest reads,
 * never secrets; what a role may not do is 403. Bad bodies are 400 with
 * {"error", "fields": [{"field","error"}]}; a taken name 409. Every change
 * is in the audit log. Runs on the master's loop; password hashes and
 * checks run on a worker thread, and past 8 waiting the request is 503. */
#ifndef MYNA_MASTER_ADMIN_H
#define MYNA_MASTER_ADMIN_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

/* The largest body of an admin request (a larger one is 413). The admin
 * listener takes bodies up to this, whatever max_body_bytes (webhooks). */
#define MYNA_ADMIN_BODY_MAX (1 << 20)

struct event_base;
struct evhttp_request;
struct myna_conf;
struct myna_control;
struct myna_fleet;
struct myna_supervisor;
struct myna_admin;

/* Takes data_dir, login_token_ttl_s and audit_keep_days from conf.
 * Password hashes and checks run on a worker thread (their requests are
 * answered on base's loop when done). Audit rows older than
 * audit_keep_days are removed now and every hour, in short steps. */
struct myna_admin *myna_admin_new(struct event_base *base, struct myna_control *control,
                                  struct myna_fleet *fleet, struct myna_supervisor *sup,
                                  const struct myna_conf *conf, struct myna_err *err);
/* Requests waiting for a password hash or check (a stop waits for them). */
size_t myna_admin_pending(const struct myna_admin *a);
/* A request still waiting for its password hash gets no answer and
 * changes nothing: the loop is gone. NULL ok. */
void myna_admin_free(struct myna_admin *a);
/* Handles a request whose path starts with "/admin/". */
void myna_admin_handle(struct myna_admin *a, struct evhttp_request *req, const char *path);

/* On a control store with no admin: creates the user "admin" with a new
 * token (or env_token, when given and well-formed) and prints the token
 * once to out, flushed before the commit: when out cannot take it,
 * MYNA_EIO and no admin is stored. Does nothing when an admin exists. *id
 * gets the admin's id (the owner of imported instances). */
int myna_admin_bootstrap(struct myna_control *control, const char *env_token, FILE *out,
                         int64_t *admin_id, struct myna_err *err);

/* What myna_admin_recover did. */
struct myna_admin_recovered {
    char user[65];        /* the user the token is for (MYNA_CONTROL_NAME_MAX + 1) */
    int64_t token_id;
    int enabled;          /* 1: enable made the user an enabled admin again */
};

/* `myna token recover`, on the host: a new token for an enabled admin,
 * for an operator who has lost every way into the API. The user is user,
 * or (NULL) "admin" when it is an enabled admin, else the enabled admin
 * with the lowest id. With enable, a user that is disabled or not an admin
 * ("admin" when user is NULL and no enabled admin exists) is made an
 * enabled admin first (audited as user.update); without it, such a user is
 * MYNA_ECONFLICT and no enabled admin at all MYNA_ENOTFOUND, as is an
 * unknown user. token_name NULL: "recovered". The token (audited as
 * token.create) has no end. Both audit rows are written by "local" from
 * "local". The token is printed once to out, a line of its own, flushed
 * before the commit: when out cannot take it, MYNA_EIO and nothing is
 * stored. One transaction: the running master's next request finds it. */
int myna_admin_recover(struct myna_control *control, const char *user, const char *token_name,
                       int enable, FILE *out, struct myna_admin_recovered *got,
                       struct myna_err *err);

#endif
