/* conf.h - server settings: one table of options (conf_table.c), loaded from
 * a config file, then MYNA_* environment variables, then command-line flags
 * (each later source overrides the earlier). Validation covers every source;
 * the first bad value fails the load with a message naming the option and
 * where it came from. Instances are not settings: see wa/instance.h. */
#ifndef MYNA_CORE_CONF_H
#define MYNA_CORE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

enum myna_opt_type {
    MYNA_OPT_STR,   /* free string */
    MYNA_OPT_ADDR,  /* host:port, port 0 = any free port */
    MYNA_OPT_INT,   /* integer within [min, max] */
    MYNA_OPT_SIZE,  /* bytes; accepts k/m/g (KiB, MiB, GiB) suffixes */
    MYNA_OPT_ENUM,  /* one of choices[] (stored as its index) */
    MYNA_OPT_URL,   /* "" or an http:// or https:// URL (a string) */
};

enum myna_reload { MYNA_RELOAD_RESTART, MYNA_RELOAD_SIGHUP };

struct myna_conf {
    char *config;          /* the config file read, "" if none */
    char *public_addr;
    char *admin_addr;
    char *data_dir;
    char *instances;
    int64_t log_level;     /* enum myna_log_level */
    char *log_file;
    int64_t max_body_bytes;
    int64_t store_sync;    /* enum myna_store_sync */
    int64_t commit_max_records;
    int64_t max_pending;
    int64_t http_timeout_s;
    int64_t drain_timeout_ms;
    int64_t bots;          /* 1: a bot process per instance; 0: ingress only */
    int64_t send_reconcile_ms;
    int64_t send_hold_ms;
    int64_t send_tries;    /* a reply is sent at most this many times */
    int64_t bot_store_sync;  /* enum myna_store_sync of the bots' connections */
    int64_t send_unconfirmed_ms;
    int64_t bot_max_memory_mb;       /* a bot past this resident memory is restarted */
    int64_t bot_heartbeat_timeout_ms; /* a bot silent this long is killed and restarted */
    char *alert_webhook;   /* alerts are POSTed here as JSON; "" = logged only */
    int64_t login_token_ttl_s;  /* a token from POST /admin/login works this long */
    int64_t audit_keep_days;    /* audit rows older than this go; 0 = kept forever */
};

struct myna_opt {
    const char *name;      /* config-file key; the flag is --name with '-' for '_' */
    const char *env;
    enum myna_opt_type type;
    const char *def;       /* default, as text (parsed like any other value) */
    int64_t min, max;      /* INT and SIZE bounds; a STR with min 1 cannot be empty */
    const char *const *choices; /* ENUM, NULL-terminated */
    const char *metavar;   /* shown in --help, e.g. ADDR:PORT */
    enum myna_reload reload;
    size_t off;            /* offsetof(struct myna_conf, field) */
    const char *help;      /* one line */
};

/* The table, terminated by an entry with name == NULL. */
extern const struct myna_opt myna_opts[];

/* 1 if o's value is a string (char * at off: STR, ADDR, URL), 0 if an
 * int64_t. */
int myna_opt_is_text(const struct myna_opt *o);

/* Loads defaults, the file (from --config, else MYNA_CONFIG, else none),
 * the environment (envp style: NULL-terminated "K=V"), then flags (argv
 * without the program and subcommand). Flags that are not options are
 * errors, except the ones listed in passthrough (NULL-terminated, e.g.
 * "--help"), which are reported in *seen as bits (1 << index). */
int myna_conf_load(struct myna_conf *conf, int argc, char **argv, char **envp,
                   const char *const *passthrough, unsigned *seen, struct myna_err *err);

/* For `myna serve`: MYNA_ECONFIG, naming both options, when the public and
 * the admin listener would take the same port on the same address (or on
 * an address and the wildcard of its family), which no start can bind. A
 * client command takes only --admin and does not ask. */
int myna_conf_check_listeners(const struct myna_conf *conf, struct myna_err *err);

/* Parses config-file text (key = value lines, # comments). For the loader and
 * the fuzzer; origin names the file in messages. */
int myna_conf_parse_text(struct myna_conf *conf, const char *text, size_t len,
                         const char *origin, struct myna_err *err);

/* Sets one option from text; origin says where the value came from. */
int myna_conf_set(struct myna_conf *conf, const char *name, const char *value,
                  const char *origin, struct myna_err *err);

/* Frees the strings; the conf is zeroed. */
void myna_conf_release(struct myna_conf *conf);

/* o's value in conf as text, as a flag or the config file takes it. */
void myna_conf_value_text(const struct myna_conf *conf, const struct myna_opt *o, char *buf,
                          size_t cap);
/* The effective values as a config file (--dump-config). */
void myna_conf_dump(const struct myna_conf *conf, FILE *out);
/* The options with flags, env names, defaults and help (--help). */
void myna_conf_help(FILE *out);
/* The options as a Markdown table (docs/configuration.md is generated). */
void myna_conf_markdown(FILE *out);

#endif
