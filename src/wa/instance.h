/* instance.h - the instance model: one WhatsApp number and its bot.
 *
 * Until the control plane exists, instances are declared in a JSON file
 * (--instances FILE): an array of objects with exactly the fields the admin
 * API will show, so the file doubles as import/export format:
 *   {"id","name","provider":"cloud","phone_number_id","waba_id",
 *    "access_token","app_secret","verify_token","graph_url"}
 * Parsing validates every field and names the first bad one; unknown fields
 * are errors (a typo must not silently drop a setting). Pure: no I/O in
 * myna_instances_parse, so it can be fuzzed. */
#ifndef MYNA_WA_INSTANCE_H
#define MYNA_WA_INSTANCE_H

#include <stddef.h>

#include "core/err.h"

#define MYNA_GRAPH_URL_DEFAULT "https://graph.facebook.com/v25.0"
#define MYNA_INSTANCES_MAX 10000
#define MYNA_INSTANCES_FILE_MAX (16 << 20)

struct myna_instance {
    char *id;              /* slug, unique, immutable: /webhook/<id> */
    char *name;            /* shown to operators */
    char *provider;        /* "cloud" */
    char *phone_number_id; /* Meta's id of the business number (digits) */
    char *waba_id;         /* WhatsApp Business Account id (digits), may be "" */
    char *access_token;    /* secret: Graph API bearer token */
    char *app_secret;      /* secret: key of X-Hub-Signature-256 */
    char *verify_token;    /* secret: answer to Meta's GET handshake */
    char *graph_url;       /* Graph API base, default MYNA_GRAPH_URL_DEFAULT */
};

struct myna_instance_set {
    struct myna_instance *v;
    size_t n;
};

/* Parses and validates json[0..len). On failure *set is empty and err says
 * which instance and field, e.g.
 *   instance 2 ("acme"): field 'app_secret': a non-empty string is required */
int myna_instances_parse(const char *json, size_t len, struct myna_instance_set *set,
                         struct myna_err *err);
/* Reads path and parses it; messages are prefixed with the file name. */
int myna_instances_load(const char *path, struct myna_instance_set *set, struct myna_err *err);
void myna_instances_release(struct myna_instance_set *set);
/* Borrowed pointer or NULL. */
const struct myna_instance *myna_instances_find(const struct myna_instance_set *set,
                                                const char *id);

#endif
