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
#define MYNA_FAQ_MAX 500
#define MYNA_INSTANCES_MAX 10000
#define MYNA_INSTANCES_FILE_MAX (16 << 20)

/* An OpenAI-compatible chat-completions endpoint and how to call it. */
struct myna_llm_settings {
    int enabled;           /* 0: no "llm": the built-in answerer replies */
    char *url;             /* base URL, e.g. http://127.0.0.1:8000/v1 */
    char *model;
    char *api_key;         /* secret, may be "" */
    char *system_prompt;   /* may be "" */
    double temperature;    /* default 0.7 */
    double top_p;          /* default 1 */
    int max_tokens;        /* default 512 */
    int timeout_ms;        /* default 30000 */
};

struct myna_faq_item {
    char **questions;      /* question variants */
    size_t n_questions;
    char *answer;
};

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
    /* the conversation (docs/instances.md) */
    struct myna_llm_settings llm;
    int batch_window_ms;   /* merge texts arriving within this of each other; 9000 */
    int batch_max;         /* cut a batch at this many fragments; 10 */
    char **allowed;        /* wa_ids allowed (none = everyone) */
    size_t n_allowed;
    char **blocked;        /* wa_ids never answered */
    size_t n_blocked;
    int rate_count;        /* AI turns allowed per contact in rate_hours; 5 */
    int rate_hours;        /* 5 */
    char *rate_notice;     /* sent once when the limit is reached */
    struct myna_faq_item *faq;
    size_t n_faq;
    char *fallback_text;   /* when the model is down or nothing matches */
    double pacing_mps;     /* sends per second for this number; 20 */
    int loop_replies_per_minute; /* more replies to one contact in a minute: cooldown; 10 */
    int loop_cooldown_s;   /* how long a contact gets no replies after that; 600 */
    int loop_repeat_limit; /* the same text drew the same reply this many times in a row,
                            * and comes again: cooldown; 3 */
    /* how the master runs it (docs/instances.md) */
    int enabled;           /* 0: not served, no bot; 1 */
    int auto_start;        /* the bot starts with the master; 1 */
    int max_memory_mb;     /* a bot past this RSS is restarted; 0: the server's
                            * bot_max_memory_mb (500) */
};

struct myna_instance_set {
    struct myna_instance *v;
    size_t n;
};

/* Parses and validates json[0..len): an array of instances, or an object
 * {"llm_providers": {"name": {llm settings}}, "instances": [...]} whose
 * instances may say "llm": "name". On failure *set is empty and err says
 * which instance and field, e.g.
 *   instance 2 ("acme"): field 'app_secret': a non-empty string is required */
int myna_instances_parse(const char *json, size_t len, struct myna_instance_set *set,
                         struct myna_err *err);
/* Reads path and parses it; messages are prefixed with the file name. */
int myna_instances_load(const char *path, struct myna_instance_set *set, struct myna_err *err);
void myna_instances_release(struct myna_instance_set *set);

struct cJSON;
/* The instances of an instances file's JSON tree (the array, or the
 * object's "instances"; NULL if neither), each "llm" that names a
 * provider replaced by a copy of that provider's settings: what the admin
 * API stores. A name with no provider is left for the API to refuse.
 * *oom is set to 1 if a copy could not be made. */
struct cJSON *myna_instances_inline_providers(struct cJSON *root, int *oom);
/* Reads path once, checks it as myna_instances_load does, and returns
 * its instances as the admin API stores them (the array, providers
 * inlined); *root is the tree to delete. NULL with err. */
struct cJSON *myna_instances_load_json(const char *path, struct cJSON **root,
                                       struct myna_err *err);

/* One bad field of an instance, for the admin API's 400 answers. */
struct myna_field_error {
    char field[96];   /* "app_secret", "llm.url", "faq[2].q"; "" when not one field */
    char error[256];  /* why, e.g. "must start with https:// or http://" */
};

/* Parses one instance object checking every field: on MYNA_ECONFIG
 * errs[0..*n_errs) name each bad one (at most max; each section such as
 * "llm" reports its first). MYNA_EPARSE when not JSON. "llm" must be an
 * object here (named providers belong to the instances file). On success
 * release with myna_instance_release. */
int myna_instance_parse_one(const char *json, size_t len, struct myna_instance *in,
                            struct myna_field_error *errs, size_t max, size_t *n_errs,
                            struct myna_err *err);
void myna_instance_release(struct myna_instance *in);
/* 1 if name is a top-level field of an instance object, else 0. */
int myna_instance_field_known(const char *name);
/* Borrowed pointer or NULL. */
const struct myna_instance *myna_instances_find(const struct myna_instance_set *set,
                                                const char *id);

#endif
