/* fleet.h - the master's instances at run time: what the control store
 * holds, made live in the ingress (webhooks), the simulator and the
 * supervisor (bots), and changed through the admin API.
 *
 * The control store keeps each instance as its JSON object with the
 * secrets sealed (core/secret.h, aad "instance:<id>:<field>"); the fleet
 * opens them once when the instance goes live and hands the plain config
 * to the bot at its start. Every change is one control-store transaction
 * with its audit row, then applied to the running parts; a change that
 * fails in the store changes nothing. Runs on the master's loop. */
#ifndef MYNA_MASTER_FLEET_H
#define MYNA_MASTER_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wa/instance.h"

struct cJSON;
struct myna_control;
struct myna_secret_box;
struct myna_ingress;
struct myna_simulator;
struct myna_supervisor;
struct myna_fleet;

/* Who asks, for the audit log and ownership. */
struct myna_actor {
    int64_t user_id;       /* 0: the system (start-up import) */
    const char *name;
    int role;              /* enum myna_role (core/auth.h) */
    const char *from_addr; /* may be NULL */
    /* NULL, or the action of a second audit row on the same instance,
     * written in the transaction of the change (after the change's own
     * row): what the answer to the change does too, such as showing its
     * secrets ("instance.export_secrets"). */
    const char *audit_also;
};

/* All borrowed, must outlive the fleet; sup may be NULL (--bots 0).
 * data_dir: where instances/, logs/ and trash/ are; admin_addr: the admin
 * listener's bound address (the simulator's Graph API); default_memory_mb:
 * the memory limit of bots whose instance sets none. */
struct myna_fleet *myna_fleet_new(struct myna_control *control, struct myna_secret_box *box,
                                  struct myna_ingress *ingress, struct myna_simulator *sim,
                                  struct myna_supervisor *sup, const char *data_dir,
                                  const char *admin_addr, int default_memory_mb,
                                  struct myna_err *err);
void myna_fleet_free(struct myna_fleet *f);

/* Creates or updates in the control store, from an instances file (the
 * --instances import), the instances it names; the others are left alone,
 * and so is one the file says as it is stored (no new version, no
 * instance.import row). owner_id: the owner of those created. Call before
 * myna_fleet_load. */
int myna_fleet_import(struct myna_fleet *f, const char *path, int64_t owner_id,
                      struct myna_err *err);
/* Loads every instance of the control store and makes them live; starts
 * the bots of the enabled auto_start ones. */
int myna_fleet_load(struct myna_fleet *f, struct myna_err *err);

/* The live instance of id (borrowed until the next change), or NULL. */
const struct myna_instance *myna_fleet_find(const struct myna_fleet *f, const char *id);
/* The owner of id, live or unloaded, or -1 when unknown. */
int64_t myna_fleet_owner(const struct myna_fleet *f, const char *id);
/* Stored instances that did not load at start (their sealed secrets do not
 * open, a value a later check refuses): not live, only listed, replaced
 * whole or deleted.
 * Why id did not load (borrowed), or NULL when it is live or unknown. */
const char *myna_fleet_unloaded(const struct myna_fleet *f, const char *id);
size_t myna_fleet_unloaded_count(const struct myna_fleet *f);
/* The i-th unloaded id (0 <= i < count). */
const char *myna_fleet_unloaded_id(const struct myna_fleet *f, size_t i);
size_t myna_fleet_count(const struct myna_fleet *f);
/* The i-th live instance's id (0 <= i < count), in id order. */
const char *myna_fleet_id(const struct myna_fleet *f, size_t i);

/* The config for a bot: the stored JSON with its secrets opened (malloc;
 * wipe it with myna_secret_wipe_free), or NULL when id is unknown. */
char *myna_fleet_bot_config(struct myna_fleet *f, const char *id);

/* How a config shows its secrets to the API. */
enum myna_secrets_view { MYNA_SECRETS_MASKED, MYNA_SECRETS_HIDDEN, MYNA_SECRETS_SHOWN };

/* The stored config for the API (a new cJSON object, with "version"):
 * secrets masked to their last 4 characters (left out when there is no
 * memory for the mask), left out, or shown (an export). NULL when id is
 * unknown. */
struct cJSON *myna_fleet_config_json(struct myna_fleet *f, const char *id,
                                     enum myna_secrets_view view);

/* Creates an instance from a JSON object (the id is made from "name"
 * unless given: an import keeps its ids; a taken one is MYNA_EEXISTS):
 * MYNA_ECONFIG with errs[0..*n_errs) naming each bad field, MYNA_EPARSE,
 * or MYNA_OK with id (cap bytes) set. The bot starts when enabled and
 * auto_start. */
int myna_fleet_create(struct myna_fleet *f, const struct myna_actor *who, const char *body,
                      size_t len, char *id, size_t cap, struct myna_field_error *errs,
                      size_t max_errs, size_t *n_errs, struct myna_err *err);
/* Changes the fields body names (a JSON object; "id" may only repeat the
 * id; a secret left out or sent back masked keeps its value). A running bot
 * is restarted with the new config. A body whose result is the stored
 * config (secrets compared open) changes nothing: no new version, no
 * audit row but who->audit_also's, no restart. For an instance that did
 * not load, body is the whole instance, in place of the stored one. */
int myna_fleet_update(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                      const char *body, size_t len, struct myna_field_error *errs,
                      size_t max_errs, size_t *n_errs, struct myna_err *err);
/* Stops the bot, forgets the instance, moves its data to
 * data_dir/trash/<id>-<time>/ (kept 7 days). */
int myna_fleet_delete(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                      struct myna_err *err);
/* start: sets auto_start and starts; stop: clears it and stops; restart:
 * keeps it. */
int myna_fleet_action(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                      const char *action, struct myna_err *err);
/* Removes trash older than 7 days. The wall-clock second (myna_wall_ms() /
 * 1000) at which the oldest folder left is due, 0 when none is left. */
int64_t myna_fleet_purge_trash(struct myna_fleet *f);

#endif
