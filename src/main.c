/* main.c - `myna serve | bot | chat | instance | token | outbox | version | help`: parses the command line, loads the
 * configuration and hands over to the master. The only file that exits.
 * Exit codes: 0 clean stop, 1 runtime failure, 2 configuration error (a
 * supervisor must not restart on 2). */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef MYNA_MIMALLOC
#include <mimalloc.h>
#endif

#include "core/buf.h"
#include "core/conf.h"
#include "bot/bot.h"
#include "cli/api.h"
#include "cli/chat.h"
#include "cli/manage.h"
#include "core/log.h"
#include "core/util.h"
#include "store/bot_store.h"
#include "store/control.h"
#include "store/store.h"
#include "master/admin.h"
#include "master/master.h"
#include "wa/instance.h"
#include "wa/sim.h"
#include "core/banned.h"

extern char **environ;

enum { PT_HELP, PT_HELP_SHORT, PT_CHECK, PT_DUMP, PT_MARKDOWN };
static const char *const serve_passthrough[] = {
    "--help", "-h", "--check-config", "--dump-config", "--help-markdown", NULL,
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: myna <command> [options]\n\n"
            "commands:\n"
            "  serve     run the master: webhook ingress, admin listener, bots (see 'myna serve --help')\n"
            "  bot       run one instance's bot (the master starts these): bot --instance ID [serve options]\n"
            "  chat      talk to a sim instance as a customer: chat ID [--from DIGITS] [--name NAME]\n"
            "  instance  list | show ID | create FILE | start|stop|restart ID | export | import FILE\n"
            "  token     create [--role guest|user|admin] [--name NAME]\n"
            "            (instance and token create talk to the admin API: --token T or MYNA_TOKEN)\n"
            "            recover [--user NAME] [--name NAME] [--enable] [--data DIR | --config FILE]:\n"
            "            a new admin token, made on the host from the data directory, when\n"
            "            every token is lost (works while serve runs)\n"
            "  outbox    dead letters: outbox failed --instance ID | outbox replay --instance ID (--id N | --all)\n"
            "  version   print the version\n"
            "  help      print this text\n");
}

static void bot_usage(FILE *out)
{
    fprintf(out, "usage: myna bot --instance ID [serve options]\n");
}

static void outbox_usage(FILE *out)
{
    fprintf(out, "usage: myna outbox failed --instance ID [--data DIR | --config FILE]\n"
                 "       myna outbox replay --instance ID (--id N | --all) "
                 "[--data DIR | --config FILE]\n");
}

static void chat_usage(FILE *out)
{
    fprintf(out, "usage: myna chat ID [--from DIGITS] [--name NAME] [--linger MS] "
                 "[--admin ADDR:PORT | --config FILE]\n"
                 "       (exit 1 when piped input had a line that did not go, the others sent)\n");
}

/* argv with each "--flag=value" split into the two words "--flag" "value",
 * so that the commands below, which read "--flag value", take both forms as
 * serve does. NULL-terminated, *n words; one block (the words of argv it
 * splits are copied into it): free() it. NULL when out of memory. */
static char **split_flags(int argc, char **argv, int *n)
{
    size_t bytes = 0;
    char **v, *p;

    for (int i = 0; i < argc; i++)
        bytes += strlen(argv[i]) + 1;
    if ((v = malloc((2 * (size_t)argc + 1) * sizeof(char *) + bytes)) == NULL)
        return NULL;
    p = (char *)(v + 2 * (size_t)argc + 1);
    *n = 0;
    for (int i = 0; i < argc; i++) {
        const char *eq = strncmp(argv[i], "--", 2) == 0 ? strchr(argv[i], '=') : NULL;
        size_t len = strlen(argv[i]) + 1;
        if (eq == NULL) {
            v[(*n)++] = argv[i];
            continue;
        }
        memcpy(p, argv[i], len);
        if (eq - argv[i] == 7 && strncmp(argv[i], "--token", 7) == 0)
            memset(argv[i] + 8, 0, len - 9);  /* copied: not left for ps (cmd_manage) */
        p[eq - argv[i]] = '\0';
        v[(*n)++] = p;
        v[(*n)++] = p + (eq - argv[i]) + 1;
        p += len;
    }
    v[*n] = NULL;
    return v;
}

/* "myna: [bot ID: ]msg" on standard error. An error can quote what came
 * from a file or the command line (a field's name, a value): its control
 * characters are written as '?', so it cannot drive the terminal. */
static void say_error(const char *bot, const char *msg)
{
    fputs("myna: ", stderr);
    if (bot != NULL) {
        fputs("bot ", stderr);
        myna_api_put_text(stderr, bot, 0);
        fputs(": ", stderr);
    }
    myna_api_put_text(stderr, msg, 0);
    fputc('\n', stderr);
}

/* The settings of a command from the words of argv it did not take
 * (rest, n of them, freed here): 0, or 2 after saying why not. */
static int conf_of_rest(struct myna_conf *conf, int n, char **rest,
                        const char *const *passthrough)
{
    struct myna_err err = MYNA_ERR_INIT;
    int rc = myna_conf_load(conf, n, rest, environ, passthrough, NULL, &err);

    free(rest);
    if (rc == MYNA_OK)
        return 0;
    say_error(NULL, err.msg);
    return 2;
}

/* rc, or 1 in place of a 0 when what the command printed did not all reach
 * its standard output (a full disk, a closed descriptor): `myna instance
 * export > backup.json` must not succeed with half a file. */
static int output_written(int rc)
{
    int failed, e;

    errno = 0;
    failed = fflush(stdout) != 0;
    e = errno;
    if (!failed && !ferror(stdout))
        return rc;
    if (failed && e != 0)
        fprintf(stderr, "myna: cannot write to standard output: %s\n", strerror(e));
    else
        fprintf(stderr, "myna: cannot write to standard output\n");
    return rc == 0 ? 1 : rc;
}

/* The admin listener's URL for a command to call; -1 after saying why
 * not: an address without a port, or port 0 (a server takes any free
 * port then, which a client cannot know). */
static int admin_url(const struct myna_conf *conf, char *url, size_t cap)
{
    if (myna_sim_local_url(conf->admin_addr, "", url, cap) == 0)
        return 0;
    fputs("myna: the admin address '", stderr);
    myna_api_put_text(stderr, conf->admin_addr, 0);
    fputs("' names no port to call (give the server's with --admin ADDR:PORT)\n", stderr);
    return -1;
}

static int cmd_serve(int argc, char **argv)
{
    struct myna_master_args args = { argc, argv, environ, serve_passthrough };
    struct myna_conf conf;
    struct myna_instance_set instances = { NULL, 0 };
    struct myna_err err = MYNA_ERR_INIT;
    unsigned seen = 0;
    sigset_t hup;
    int rc;

    /* A SIGHUP during the start (a logrotate's postrotate just after a
     * restart) waits for the master's handler, which reloads, instead of
     * killing the process (its default action): myna_master_run unblocks
     * it once the handler is in place. */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_BLOCK, &hup, NULL);
    /* help needs no settings: a broken config file or MYNA_* value, which
     * is when help is wanted, must not hide it */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], serve_passthrough[PT_HELP]) == 0 ||
            strcmp(argv[i], serve_passthrough[PT_HELP_SHORT]) == 0) {
            printf("usage: myna serve [options]\n\n"
                   "Runs the master. Options come from the config file, then MYNA_* variables,\n"
                   "then these flags (each later one wins):\n\n");
            myna_conf_help(stdout);
            printf("\n  --check-config   validate the settings and the instances file, then exit\n"
                   "  --dump-config    print the effective settings as a config file, then exit\n");
            return output_written(0);
        }
        if (strcmp(argv[i], serve_passthrough[PT_MARKDOWN]) == 0) {
            myna_conf_markdown(stdout);
            return output_written(0);
        }
    }
    if (myna_conf_load(&conf, argc, argv, environ, serve_passthrough, &seen, &err) != MYNA_OK) {
        say_error(NULL, err.msg);
        return 2;
    }
    if (seen & (1u << PT_DUMP)) {
        myna_conf_dump(&conf, stdout);
        myna_conf_release(&conf);
        return output_written(0);
    }
    if (myna_conf_check_listeners(&conf, &err) != MYNA_OK) {
        say_error(NULL, err.msg);
        myna_conf_release(&conf);
        return 2;
    }
    myna_log_set_proc("master");
    myna_log_route_libevent();
    myna_log_set_level((int)conf.log_level);
    if ((rc = myna_log_open(conf.log_file)) != 0) {
        fprintf(stderr, "myna: cannot open log file '%s': %s\n", conf.log_file, strerror(-rc));
        myna_conf_release(&conf);
        return 2;
    }
    if (conf.instances[0] != '\0' &&
        myna_instances_load(conf.instances, &instances, &err) != MYNA_OK) {
        say_error(NULL, err.msg);
        myna_conf_release(&conf);
        return 2;
    }
    if (seen & (1u << PT_CHECK)) {
        printf("configuration ok: %zu instance(s)\n", instances.n);
        myna_instances_release(&instances);
        myna_conf_release(&conf);
        return output_written(0);
    }
    myna_instances_release(&instances);  /* checked; the master imports it */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = myna_master_run(&conf, &args, &err);
    curl_global_cleanup();
    if (rc != MYNA_OK) {
        char q[600];
        MYNA_LOG(MYNA_ERROR, "exit", "err=%s", myna_log_q(q, sizeof(q), err.msg));
        if (rc == MYNA_EAGAIN) {
            /* the drain timed out: leave at once, without joining the
             * stuck writer or freeing what it may still use (the log is
             * written with write(2): nothing is left to flush) */
            fflush(NULL);
            _exit(1);
        }
        if (rc == MYNA_ECONFIG || rc == MYNA_EPARSE) {
            myna_conf_release(&conf);
            return 2;  /* a bad stored or imported instance: restarting cannot help */
        }
    }
    myna_conf_release(&conf);
    return rc == MYNA_OK ? 0 : 1;
}

/* The instance the master handed over on fd (a JSON object), as a set of
 * one. The descriptor is closed. */
static int read_config(int fd, struct myna_instance_set *set, struct myna_err *err)
{
    struct myna_buf b = MYNA_BUF_INIT(MYNA_INSTANCES_FILE_MAX);
    struct myna_field_error fe[1];
    char chunk[8192];
    ssize_t r;
    size_t n = 0;
    int rc = MYNA_OK;

    while (rc == MYNA_OK && (r = read(fd, chunk, sizeof(chunk))) > 0)
        rc = myna_buf_append(&b, chunk, (size_t)r);
    close(fd);
    set->n = 0;
    if (rc == MYNA_OK && (set->v = calloc(1, sizeof(*set->v))) == NULL)
        rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
    if (rc == MYNA_OK &&
        (rc = myna_instance_parse_one(b.data ? b.data : "", b.len, set->v, fe, 1, &n, err)) ==
            MYNA_OK)
        set->n = 1;
    else if (rc != MYNA_ENOMEM) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        myna_err_set(err, MYNA_ECONFIG, "the configuration from the master is not valid: %s%s%.300s",
                     n ? fe[0].field : "", n ? ": " : "", n ? fe[0].error : why);
    }
    if (b.data)
        memset(b.data, 0, b.len);  /* it holds secrets */
    myna_buf_release(&b);
    return rc;
}

/* `myna bot --instance ID [--doorbell-fd N] [--heartbeat-fd N] [--log-file-rotate PATH]
 * [serve options]`: the supervisor gives the pipes and the bot's own log file,
 * which the bot rotates by size (and which is its standard output and error
 * too, for what is not a log line). */
static int cmd_bot(int argc, char **argv)
{
    struct myna_bot_opts opts = { .doorbell_fd = -1, .poll_ms = 1000, .history_budget = 6000,
                                  .history_idle_s = 86400, .stale_after_s = 3600,
                                  .reconcile_ms = 60000, .unconfirmed_ms = 600000,
                                  .hold_ms = 60000, .tries_max = 15, .heartbeat_fd = -1 };
    const char *rotate = NULL;
    int config_fd = -1;
    struct myna_conf conf;
    struct myna_instance_set instances = { NULL, 0 };
    const struct myna_instance *inst;
    struct myna_err err = MYNA_ERR_INIT;
    const char *id = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0, rc;

    /* the supervisor starts a bot from /proc/self/exe (its master's own
     * program), which the kernel names "exe": ps, top and pgrep show it as
     * myna, as they show its master */
    prctl(PR_SET_NAME, "myna", 0, 0, 0);
    if (rest == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        int64_t fd;
        if (strcmp(argv[i], "--instance") == 0 && i + 1 < argc) {
            id = argv[++i];
        } else if (strcmp(argv[i], "--doorbell-fd") == 0 && i + 1 < argc) {
            if (myna_parse_i64(argv[++i], 0, 1 << 20, &fd) != 0) {
                fprintf(stderr, "myna: --doorbell-fd takes a descriptor number\n");
                free(rest);
                return 2;
            }
            opts.doorbell_fd = (int)fd;
        } else if (strcmp(argv[i], "--heartbeat-fd") == 0 && i + 1 < argc) {
            if (myna_parse_i64(argv[++i], 0, 1 << 20, &fd) != 0) {
                fprintf(stderr, "myna: --heartbeat-fd takes a descriptor number\n");
                free(rest);
                return 2;
            }
            opts.heartbeat_fd = (int)fd;
        } else if (strcmp(argv[i], "--log-file-rotate") == 0 && i + 1 < argc) {
            rotate = argv[++i];
        } else if (strcmp(argv[i], "--config-fd") == 0 && i + 1 < argc) {
            if (myna_parse_i64(argv[++i], 0, 1 << 20, &fd) != 0) {
                fprintf(stderr, "myna: --config-fd takes a descriptor number\n");
                free(rest);
                return 2;
            }
            config_fd = (int)fd;
        } else {
            rest[n++] = argv[i];
        }
    }
    if (id == NULL) {
        bot_usage(stderr);
        free(rest);
        return 2;
    }
    if (conf_of_rest(&conf, n, rest, serve_passthrough) != 0)
        return 2;
    myna_log_set_proc("bot");
    myna_log_route_libevent();
    myna_log_set_level((int)conf.log_level);
    /* a supervised bot's log is the file its master opened a moment ago: a
     * failure here (out of descriptors, say) is worth the supervisor's
     * retry, so 1, not the 2 of a configuration error */
    if ((rc = rotate ? myna_log_open_rotating(rotate, MYNA_BOT_LOG_MAX_BYTES, MYNA_BOT_LOG_KEEP)
                     : myna_log_open(conf.log_file)) != 0) {
        myna_err_set(&err, MYNA_EIO, "cannot open log file '%s': %s",
                     rotate ? rotate : conf.log_file, strerror(-rc));
        say_error(id, err.msg);
        myna_conf_release(&conf);
        return 1;
    }
    /* the configuration: from the master (fd), or from the instances file */
    if ((config_fd >= 0 ? read_config(config_fd, &instances, &err)
                        : conf.instances[0] == '\0'
                              ? myna_err_set(&err, MYNA_ECONFIG, "no instances file")
                              : myna_instances_load(conf.instances, &instances, &err)) != MYNA_OK ||
        myna_sim_prepare(&instances, conf.data_dir, conf.admin_addr, 0, &err) != MYNA_OK ||
        (inst = myna_instances_find(&instances, id)) == NULL) {
        say_error(id, err.msg[0] ? err.msg : "no such instance");
        myna_instances_release(&instances);
        myna_conf_release(&conf);
        return 2;
    }
    opts.reconcile_ms = (int)conf.send_reconcile_ms;
    opts.unconfirmed_ms = (int)conf.send_unconfirmed_ms;
    opts.hold_ms = (int)conf.send_hold_ms;
    opts.tries_max = (int)conf.send_tries;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = myna_bot_run(&conf, inst, &opts, &err);
    curl_global_cleanup();
    if (rc != MYNA_OK) {
        char q[600];
        MYNA_LOG(MYNA_ERROR, "bot_exit", "instance=%s err=%s", id,
                 myna_log_q(q, sizeof(q), err.msg));
    }
    myna_instances_release(&instances);
    myna_conf_release(&conf);
    /* a value its clients refuse: restarting cannot help (supervisor.h) */
    return rc == MYNA_OK ? 0 : rc == MYNA_ECONFIG ? 2 : 1;
}

/* `myna outbox failed|replay --instance ID [--id N | --all] [serve options]`:
 * works on the instance's store directly (WAL lets it beside a running bot). */
static int cmd_outbox(int argc, char **argv)
{
    struct myna_conf conf;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store_opts so = { .sync = MYNA_SYNC_FULL, .busy_timeout_ms = 5000,
                                  .unnumbered = 1 };
    struct myna_store *st = NULL;
    struct myna_bot_store *bs = NULL;
    const char *verb = argc > 0 ? argv[0] : "", *id = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof(char *)), path[4200];
    int64_t which = -1;
    int n = 0, rc = 2, picks = 0;

    if (rest == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--instance") == 0 && i + 1 < argc)
            id = argv[++i];
        else if (strcmp(argv[i], "--all") == 0) {
            which = 0;
            picks++;
        } else if (strcmp(argv[i], "--id") == 0) {
            if (i + 1 >= argc || myna_parse_i64(argv[i + 1], 1, INT64_MAX, &which) != 0) {
                fprintf(stderr, "myna: --id: expected a record id (a whole number from 1)\n");
                outbox_usage(stderr);
                free(rest);
                return 2;
            }
            i++;
            picks++;
        } else
            rest[n++] = argv[i];
    }
    /* one of --id N and --all: with both (or two --id), which one meant
     * what would depend on their order */
    if (id == NULL || !myna_is_slug(id) || picks > 1 ||
        (strcmp(verb, "failed") != 0 && (strcmp(verb, "replay") != 0 || which < 0))) {
        outbox_usage(stderr);
        free(rest);
        return 2;
    }
    if (conf_of_rest(&conf, n, rest, NULL) != 0)
        return 2;
    /* a listing only reads: one who may read the file, not write it, gets it */
    so.existing = strcmp(verb, "failed") == 0;
    snprintf(path, sizeof(path), "%s/instances/%s.bot.db", conf.data_dir, id);
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "myna: no store for instance '%s' at '%s'\n", id, path);
    } else if ((st = myna_store_open_sqlite(path, &so, &err)) == NULL ||
               (bs = myna_bot_store_new(st, &err)) == NULL) {
        rc = 1;  /* said below */
    } else if (strcmp(verb, "failed") == 0) {
        struct myna_outbox_rec *v;
        size_t k;
        rc = myna_bot_outbox_failed(bs, &v, &k, &err) == MYNA_OK ? 0 : 1;
        for (size_t i = 0; rc == 0 && i < k; i++) {
            char masked[32];
            /* the sends since the last replay, as the error counts them */
            printf("%" PRId64 "\t%s\tsends=%d\tcode=%d\t", v[i].id,
                   myna_phone_mask(v[i].contact, masked, sizeof(masked)),
                   v[i].attempts - v[i].tries_from, v[i].error_code);
            /* Meta's words: a tab or line break would break the columns */
            myna_api_put_text(stdout, v[i].error ? v[i].error : "", 0);
            putchar('\n');
            myna_outbox_rec_release(&v[i]);
        }
        if (rc == 0) {
            free(v);
            printf("%zu dead letter(s)\n", k);
        }
    } else {
        size_t k = 0;
        rc = myna_bot_outbox_replay(bs, which, myna_wall_ms(), &k, &err) == MYNA_OK ? 0 : 1;
        if (rc == 0 && which > 0 && k == 0) {
            /* a mistyped id, or one sent meanwhile: nothing done */
            fprintf(stderr, "myna: record %" PRId64 " of instance '%s' is not a dead letter "
                    "(see 'myna outbox failed')\n", which, id);
            rc = 1;
        } else if (rc == 0)
            printf("%zu dead letter(s) queued again\n", k);
    }
    if (rc == 1 && err.msg[0])
        say_error(NULL, err.msg);
    myna_bot_store_free(bs);
    myna_store_free(st);
    myna_conf_release(&conf);
    return rc;
}

/* `myna chat ID [--from DIGITS] [--name NAME] [--linger MS] [serve options]`:
 * talks to the admin listener the serve options name. */
static int cmd_chat(int argc, char **argv)
{
    struct myna_chat_opts o = { NULL, NULL, NULL, "Terminal", 20000 };
    struct myna_conf conf;
    char **rest = calloc((size_t)argc + 1, sizeof(char *)), url[300], from[16];
    int n = 0, rc;

    if (rest == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        int64_t v;
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            o.from = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            o.name = argv[++i];
        else if (strcmp(argv[i], "--linger") == 0 && i + 1 < argc) {
            if (myna_parse_i64(argv[++i], 0, 3600000, &v) != 0) {
                fprintf(stderr, "myna: --linger: '%s' is not a number of ms from 0 to 3600000\n",
                        argv[i]);
                free(rest);
                return 2;
            }
            o.linger_ms = (int)v;
        } else if (strncmp(argv[i], "--", 2) == 0 && i + 1 < argc) {
            rest[n++] = argv[i];  /* a serve option: its value is not the instance */
            rest[n++] = argv[++i];
        } else if (o.instance == NULL && argv[i][0] != '-')
            o.instance = argv[i];
        else
            rest[n++] = argv[i];
    }
    /* the simulator refuses every message of a longer name: said once, here */
    if (o.name && (myna_utf8_count(o.name) == (size_t)-1 ||
                   myna_utf8_count(o.name) > MYNA_SIM_NAME_MAX)) {
        fprintf(stderr, "myna: --name: at most %d characters of UTF-8\n", MYNA_SIM_NAME_MAX);
        free(rest);
        return 2;
    }
    if (o.instance == NULL || !myna_is_slug(o.instance) ||
        (o.from && (strspn(o.from, "0123456789") != strlen(o.from) || strlen(o.from) < 1 ||
                    strlen(o.from) > 15))) {
        chat_usage(stderr);
        free(rest);
        return 2;
    }
    if (conf_of_rest(&conf, n, rest, NULL) != 0)
        return 2;
    if (admin_url(&conf, url, sizeof(url)) != 0) {
        myna_conf_release(&conf);
        return 2;
    }
    if (o.from == NULL) {  /* a number of its own for each terminal */
        snprintf(from, sizeof(from), "1555%07lld", (long long)(myna_wall_ms() % 10000000));
        o.from = from;
    }
    o.admin_url = url;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = myna_chat_run(&o, stdin, stdout, stderr);
    curl_global_cleanup();
    myna_conf_release(&conf);
    return rc;
}

/* Why token cannot go into the Authorization header as it is, or NULL: a
 * line break (a token file saved with CRLF) or a space made the request
 * one the server answers with a bare 400, or added a header line, and a
 * long one was cut to fit. Whether it is a token is the server's to say. */
static const char *token_problem(const char *token)
{
    if (strlen(token) > 256)
        return "is longer than 256 bytes";
    for (const char *c = token; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return "holds a space, a line break, a control character or a non-ASCII byte "
                   "(pasted with one?)";
    return NULL;
}

/* `myna instance|token ... [--token T] [--admin ADDR:PORT | serve options]`. */
static int cmd_manage(int is_instance, int argc, char **argv)
{
    struct myna_conf conf;
    char **rest = calloc((size_t)argc + 1, sizeof(char *)), **args = calloc((size_t)argc + 1,
                                                                           sizeof(char *));
    const char *token = getenv("MYNA_TOKEN");
    char url[300], *given = NULL;
    int n = 0, k = 0, rc;

    if (rest == NULL || args == NULL) {
        free(rest);
        free(args);
        return 1;
    }
    /* the command's own words stay; --token and the serve options go */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
            /* kept, and wiped from the command line, which any local user
             * can read (ps) while the command waits for the server */
            free(given);
            token = given = strdup(argv[++i]);
            memset(argv[i], 0, strlen(argv[i]));
        }
        else if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--with-secrets") != 0 &&
                 strcmp(argv[i], "--role") != 0 && strcmp(argv[i], "--name") != 0 && i + 1 < argc) {
            rest[n++] = argv[i];
            rest[n++] = argv[++i];
        } else {
            args[k++] = argv[i];
            if ((strcmp(argv[i], "--role") == 0 || strcmp(argv[i], "--name") == 0) && i + 1 < argc)
                args[k++] = argv[++i];
        }
    }
    if (token && token_problem(token)) {
        fprintf(stderr, "myna: the token from %s %s\n", given ? "--token" : "MYNA_TOKEN",
                token_problem(token));
        free(rest);
        free(args);
        free(given);
        return 2;
    }
    rc = conf_of_rest(&conf, n, rest, NULL);
    if (rc != 0 || admin_url(&conf, url, sizeof(url)) != 0) {
        free(args);
        free(given);
        if (rc == MYNA_OK)
            myna_conf_release(&conf);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = is_instance ? myna_cli_instance(k, args, url, token, stdout, stderr)
                     : myna_cli_token(k, args, url, token, stdout, stderr);
    curl_global_cleanup();
    free(args);
    free(given);
    myna_conf_release(&conf);
    return rc;
}

/* The allocator malloc really is: "mimalloc" when the build links it and a
 * block from calloc lies in its heap, else "libc". */
static const char *allocator(void)
{
#ifdef MYNA_MIMALLOC
    void *p = calloc(1, 1);  /* not malloc: GCC warns of unset bytes passed as const */
    int mi = p != NULL && mi_is_in_heap_region(p);

    free(p);
    if (mi)
        return "mimalloc";
#endif
    return "libc";
}

static int cmd_instance(int argc, char **argv)
{
    return cmd_manage(1, argc, argv);
}

/* `myna token recover [--user NAME] [--name NAME] [--enable] [serve options]`:
 * a new admin token made in var/control.db directly, for the operator of
 * the host who has no way into the admin API left. WAL and the store's
 * busy wait let it run beside a master, which reads tokens from the file
 * at every request: the token works at once. */
static int cmd_token_recover(int argc, char **argv)
{
    struct myna_conf conf;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_admin_recovered got;
    struct myna_control *control = NULL;
    const char *user = NULL, *name = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof(char *)), path[4200];
    int n = 0, enable = 0, rc = 1;

    if (rest == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--enable") == 0)
            enable = 1;
        else
            rest[n++] = argv[i];
    }
    /* the name is shown again as JSON (GET /admin/tokens, the audit log) */
    if (name && (myna_utf8_count(name) == (size_t)-1 || strlen(name) > MYNA_CONTROL_TEXT_MAX)) {
        fprintf(stderr, "myna: --name: at most %d bytes of UTF-8\n", MYNA_CONTROL_TEXT_MAX);
        free(rest);
        return 2;
    }
    if (conf_of_rest(&conf, n, rest, NULL) != 0)
        return 2;
    snprintf(path, sizeof(path), "%s/control.db", conf.data_dir);
    /* opening would create an empty store: a mistyped --data must not */
    if (access(path, F_OK) != 0) {
        fputs("myna: no control store at '", stderr);
        myna_api_put_text(stderr, path, 0);
        fputs("': give the server's --data DIR or --config FILE\n", stderr);
    } else if ((control = myna_control_open(path, &err)) == NULL ||
               myna_admin_recover(control, user, name, enable, stdout, &got, &err) != MYNA_OK) {
        say_error(NULL, err.msg);
    } else {
        rc = 0;
        if (got.enabled)
            fprintf(stderr, "myna: user '%s' is an enabled admin again\n", got.user);
        fprintf(stderr, "myna: the token above (id %" PRId64 ") is for admin '%s'; it is shown "
                "once and works at once\n", got.token_id, got.user);
    }
    myna_control_free(control);
    myna_conf_release(&conf);
    return rc;
}

static int cmd_token(int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "recover") == 0)
        return cmd_token_recover(argc - 1, argv + 1);
    return cmd_manage(0, argc, argv);
}

/* The commands that take "--flag=value" as "--flag value", and their usage
 * (on standard output for `myna <command> --help`). */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *out);
} commands[] = {
    { "bot", cmd_bot, bot_usage },
    { "outbox", cmd_outbox, outbox_usage },
    { "chat", cmd_chat, chat_usage },
    { "instance", cmd_instance, myna_cli_instance_usage },
    { "token", cmd_token, myna_cli_token_usage },
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
        int n, rc;
        char **v;
        if (strcmp(argv[1], commands[c].name) != 0)
            continue;
        /* asking for help is no usage error */
        for (int i = 2; i < argc; i++)
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                commands[c].usage(stdout);
                return output_written(0);
            }
        v = split_flags(argc - 2, argv + 2, &n);
        if (v == NULL) {
            fprintf(stderr, "myna: out of memory\n");
            return 1;
        }
        rc = commands[c].run(n, v);
        free(v);
        /* a bot's standard output is its log file: its exit code is the supervisor's */
        return commands[c].run == cmd_bot ? rc : output_written(rc);
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("myna %s allocator=%s\n", MYNA_VERSION, allocator());
        return output_written(0);
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return output_written(0);
    }
    fprintf(stderr, "myna: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
