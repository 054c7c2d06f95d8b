/* test_cli.c - the command line of the real binary: start-up refusals name
 * what is wrong and exit 2, help and check commands, config precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <grp.h>
#include <sqlite3.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char out[65536];

static void write_text(const char *dir, const char *name, const char *text, char *path,
                       size_t cap)
{
    FILE *f;

    snprintf(path, cap, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_help_lists_every_option(void **state)
{
    const char *args[] = { "serve", "--help", NULL, NULL };

    (void)state;
    assert_int_equal(h_run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--public ADDR:PORT"));
    assert_non_null(strstr(out, "MYNA_PUBLIC"));
    assert_non_null(strstr(out, "--admin"));
    assert_non_null(strstr(out, "--data DIR"));
    assert_non_null(strstr(out, "--instances FILE"));
    assert_non_null(strstr(out, "--config FILE"));
    assert_non_null(strstr(out, "--max-body-bytes"));

    /* a broken setting, when help is wanted most, does not hide it */
    assert_int_equal(setenv("MYNA_PUBLIC", "nonsense", 1), 0);
    assert_int_equal(h_run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--public ADDR:PORT"));
    args[1] = "--help-markdown";
    assert_int_equal(h_run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "MYNA_PUBLIC"));
    args[1] = "--check-config";
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "nonsense"));
    assert_int_equal(unsetenv("MYNA_PUBLIC"), 0);
}

static void test_unknown_command_and_flag(void **state)
{
    const char *a1[] = { "frobnicate", NULL };
    const char *a2[] = { "serve", "--no-such-flag", "1", NULL };
    const char *a3[] = { "serve", "--public", "nonsense", NULL };
    const char *a4[] = { "serve", "--max-body-bytes", "100g", NULL };
    const char *a5[] = { "version", NULL };
    const char *a6[] = { "instance", "list", "--admin", "127.0.0.1:0", NULL };
    const char *a7[] = { "chat", "demo", "--admin", "127.0.0.1:0", NULL };

    (void)state;
    assert_int_equal(h_run(a1, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
    assert_int_equal(h_run(a2, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "unknown flag '--no-such-flag'"));
    assert_int_equal(h_run(a3, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "option 'public'"));
    assert_int_equal(h_run(a4, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "option 'max_body_bytes'"));
    assert_int_equal(h_run(a5, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "myna "));
    /* each command's --help is its usage, and no usage error */
    {
        static const char *const cmds[] = { "bot", "outbox", "chat", "instance", "token" };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
            const char *h[] = { cmds[i], "--help", NULL };
            char want[32];
            assert_int_equal(h_run(h, out, sizeof(out)), 0);
            snprintf(want, sizeof(want), "usage: myna %s", cmds[i]);
            assert_non_null(strstr(out, want));
        }
    }
    /* port 0 is any free port to a server, none to call for a command */
    assert_int_equal(h_run(a6, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "'127.0.0.1:0' names no port to call"));
    assert_int_equal(h_run(a7, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "'127.0.0.1:0' names no port to call"));
}

static void test_bad_instances_file_names_the_field(void **state)
{
    struct myna_proc p;
    char path[400];
    const char *args[] = { "serve", "--instances", path, "--check-config", NULL };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    write_text(p.dir, "bad.json",
               "[{\"id\":\"ok-one\",\"name\":\"A\",\"provider\":\"cloud\",\"phone_number_id\":\"1\","
               "\"access_token\":\"t\",\"app_secret\":\"s\",\"verify_token\":\"v\"},"
               "{\"id\":\"acme\",\"name\":\"B\",\"provider\":\"cloud\",\"phone_number_id\":\"2\","
               "\"access_token\":\"t\",\"verify_token\":\"v\"}]",
               path, sizeof(path));
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "instance 2 (\"acme\"): field 'app_secret': missing"));
    assert_non_null(strstr(out, "bad.json"));

    write_text(p.dir, "typo.json",
               "[{\"id\":\"a\",\"name\":\"A\",\"provider\":\"cloud\",\"phone_number_id\":\"1\","
               "\"access_token\":\"t\",\"app_secret\":\"s\",\"verify_tokn\":\"v\"}]",
               path, sizeof(path));
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "unknown field 'verify_tokn'"));

    /* a name that would drive the terminal is shown with '?' for its
     * control characters */
    write_text(p.dir, "esc.json",
               "[{\"id\":\"a\",\"name\":\"A\",\"provider\":\"cloud\",\"phone_number_id\":\"1\","
               "\"access_token\":\"t\",\"app_secret\":\"s\",\"verify_token\":\"v\","
               "\"\\u001b]0;owned\\u0007x\":1}]",
               path, sizeof(path));
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "unknown field '?]0;owned?x'"));
    assert_null(strchr(out, '\x1b'));

    write_text(p.dir, "notjson.json", "[{", path, sizeof(path));
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "not valid JSON"));

    snprintf(path, sizeof(path), "%s/missing.json", p.dir);
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "missing.json"));

    write_text(p.dir, "good.json",
               "[{\"id\":\"a\",\"name\":\"A\",\"provider\":\"cloud\",\"phone_number_id\":\"1\","
               "\"access_token\":\"t\",\"app_secret\":\"s\",\"verify_token\":\"v\"}]",
               path, sizeof(path));
    assert_int_equal(h_run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "configuration ok: 1 instance(s)"));

    /* what `make run` starts */
    snprintf(path, sizeof(path), "%s/../../examples/demo-instances.json", MYNA_TEST_DATA);
    assert_int_equal(h_run(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "configuration ok: 1 instance(s)"));
    h_cleanup(&p);
}

static void test_flag_beats_file(void **state)
{
    struct myna_proc p;
    char conf[400];
    const char *a1[] = { "serve", "--config", conf, "--dump-config", NULL };
    const char *a2[] = { "serve", "--config", conf, "--log-level", "debug", "--dump-config", NULL };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    write_text(p.dir, "myna.conf", "# test\nlog_level = warn\nmax_body_bytes = 1m\n", conf,
               sizeof(conf));
    assert_int_equal(h_run(a1, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "log_level = warn"));
    assert_non_null(strstr(out, "max_body_bytes = 1048576"));
    assert_int_equal(h_run(a2, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "log_level = debug"));

    write_text(p.dir, "bad.conf", "log_level = loud\n", conf, sizeof(conf));
    assert_int_equal(h_run(a1, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "bad.conf':1: option 'log_level'"));

    /* a key, flag or argument that would drive the terminal is shown with
     * '?' for its control characters (C1 ones in UTF-8 too) */
    write_text(p.dir, "esc.conf", "log_level = debug\n\x1b[2Jdata\x7f = /x\n", conf,
               sizeof(conf));
    assert_int_equal(h_run(a1, out, sizeof(out)), 2);
    assert_non_null(strstr(out, ":2: unknown option '?[2Jdata?'"));
    assert_null(strpbrk(out, "\x1b\x7f"));
    {
        const char *flag[] = { "serve", "--\x1b]0;owned\x07=1", NULL };
        const char *flag_c1[] = { "serve", "--no\xc2\x9b" "2J", "1", NULL };
        const char *arg[] = { "serve", "\x1b[2J", NULL };
        assert_int_equal(h_run(flag, out, sizeof(out)), 2);
        assert_non_null(strstr(out, "unknown flag '--?]0;owned?'"));
        assert_int_equal(h_run(flag_c1, out, sizeof(out)), 2);
        assert_non_null(strstr(out, "unknown flag '--no?2J'"));
        assert_int_equal(h_run(arg, out, sizeof(out)), 2);
        assert_non_null(strstr(out, "unexpected argument '?[2J'"));
        assert_null(strpbrk(out, "\x1b\x07\xc2"));
    }
    h_cleanup(&p);
}

struct log_want {
    const struct myna_proc *p;
    const char *text;
};

static int in_log(void *arg)
{
    const struct log_want *w = arg;

    return h_log_contains(w->p, w->text);
}

/* A bad alert_webhook is named, never shown (its URL may hold a secret):
 * neither at start on stderr nor in the log line of a failed reload. */
static void test_bad_webhook_url_is_never_shown(void **state)
{
    struct myna_proc p;
    char conf[400];
    const char *check[] = { "serve", "--config", conf, "--check-config", NULL };
    const char *extra[] = { "--config", conf, NULL };
    struct log_want w = { &p, "event=reload_failed" };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    write_text(p.dir, "myna.conf", "alert_webhook = hooks.example.com/h?key=Tok3nS3cret\n", conf,
               sizeof(conf));
    assert_int_equal(h_run(check, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "myna.conf':1: option 'alert_webhook'"));
    assert_non_null(strstr(out, "not an http:// or https:// URL"));
    assert_null(strstr(out, "Tok3nS3cret"));

    write_text(p.dir, "myna.conf", "log_level = info\n", conf, sizeof(conf));
    assert_int_equal(h_start(&p, extra), 0);
    write_text(p.dir, "myna.conf", "alert_webhook = hooks.example.com/h?key=Tok3nS3cret\n", conf,
               sizeof(conf));
    assert_int_equal(kill(p.pid, SIGHUP), 0);
    assert_true(h_wait(in_log, &w, 5000));
    assert_true(h_log_contains(&p, "option 'alert_webhook'"));
    assert_false(h_log_contains(&p, "Tok3nS3cret"));
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

#define ADMIN_TOKEN "myna_AdminTokenForTheEndToEndTestsOnly0123456789"

static const char *const sim_instances =
    "[{\"id\":\"shop\",\"name\":\"Shop\",\"provider\":\"sim\","
    "\"fallback_text\":\"Sorry.\"}]";

/* A master (no bots) whose admin token is ADMIN_TOKEN, with the sim
 * instance shop; admin gets its ADDR:PORT. */
static void start_admin(struct myna_proc *p, char *admin, size_t cap)
{
    assert_int_equal(h_setup(p, sim_instances), 0);
    setenv("MYNA_ADMIN_TOKEN", ADMIN_TOKEN, 1);
    assert_int_equal(h_start(p, NULL), 0);
    unsetenv("MYNA_ADMIN_TOKEN");
    snprintf(admin, cap, "%s", p->admin_url + strlen("http://"));
}

/* The commands that talk to a server take --flag=value wherever they take
 * --flag value, as serve does, before or after their own words. */
static void test_flag_equals_value_everywhere(void **state)
{
    struct myna_proc p;
    char admin[128], admin_eq[160], data_eq[320], url[300], resp[8192];
    const char *token_eq = "--token=" ADMIN_TOKEN;
    const char *list_eq[] = { "instance", admin_eq, "list", token_eq, NULL };
    const char *list_sp[] = { "instance", "--admin", admin, "list", "--token", ADMIN_TOKEN, NULL };
    const char *show_eq[] = { "instance", "show", "shop", token_eq, admin_eq, NULL };
    const char *mk_eq[] = { "token", admin_eq, "create", "--role=guest", "--name=ci-eq", token_eq,
                            NULL };
    const char *chat_eq[] = { "chat", admin_eq, "shop", "--from=15550007777", "--name=Ann",
                              "--linger=0", NULL };
    const char *chat_sp[] = { "chat", "--admin", admin, "shop", "--from", "15550008888",
                              "--linger", "0", NULL };
    const char *outbox_eq[] = { "outbox", "failed", "--instance=shop", data_eq, NULL };

    (void)state;
    start_admin(&p, admin, sizeof(admin));
    snprintf(admin_eq, sizeof(admin_eq), "--admin=%s", admin);
    snprintf(data_eq, sizeof(data_eq), "--data=%s/var", p.dir);

    assert_int_equal(h_run(list_eq, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "shop"));
    assert_int_equal(h_run(list_sp, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "shop"));
    assert_int_equal(h_run(show_eq, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"provider\":\t\"sim\""));
    assert_int_equal(h_run(mk_eq, out, sizeof(out)), 0);
    assert_int_equal(strncmp(out, "myna_", 5), 0);
    {  /* a guest's: it reads, it cannot create */
        char auth[120];
        const char *h[] = { auth, NULL };
        snprintf(auth, sizeof(auth), "Authorization: Bearer %.48s", out);
        snprintf(url, sizeof(url), "%s/admin/whatsapp/instances", p.admin_url);
        assert_int_equal(h_http("GET", url, NULL, 0, h, resp, sizeof(resp)), 200);
        assert_int_equal(h_http("POST", url, "{}", 2, h, resp, sizeof(resp)), 403);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ADMIN_TOKEN);
        snprintf(url, sizeof(url), "%s/admin/tokens", p.admin_url);
        assert_int_equal(h_http("GET", url, NULL, 0, h, resp, sizeof(resp)), 200);
        assert_non_null(strstr(resp, "\"ci-eq\""));
    }

    assert_int_equal(h_run_input(chat_eq, "hi there\n", out, sizeof(out)), 0);
    snprintf(url, sizeof(url), "%s/sim/shop/events?contact=15550007777", p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)), 200);
    assert_non_null(strstr(resp, "hi there"));
    assert_int_equal(h_run_input(chat_sp, "hello\n", out, sizeof(out)), 0);
    snprintf(url, sizeof(url), "%s/sim/shop/events?contact=15550008888", p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)), 200);
    assert_non_null(strstr(resp, "hello"));

    /* read as --instance shop --data DIR: no bot ran, so no store yet */
    assert_int_equal(h_run(outbox_eq, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "no store for instance 'shop'"));
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* The texts of customer from's messages in the simulator of p's shop, one
 * per line, in order. */
static void sent_texts(const struct myna_proc *p, const char *from, char *texts, size_t cap)
{
    char url[300];
    static char resp[65536];
    cJSON *r;
    const cJSON *e;
    size_t n = 0;

    snprintf(url, sizeof(url), "%s/sim/shop/events?contact=%s", p->admin_url, from);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)), 200);
    assert_non_null(r = cJSON_Parse(resp));
    texts[0] = '\0';
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "events")) {
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(e, "dir"),
                    *text = cJSON_GetObjectItemCaseSensitive(e, "text");
        if (cJSON_IsString(dir) && strcmp(dir->valuestring, "in") == 0 && cJSON_IsString(text))
            n += (size_t)snprintf(texts + n, n < cap ? cap - n : 0, "%.60s\n",
                                  text->valuestring);
    }
    cJSON_Delete(r);
}

/* Piped into `myna chat`, the lines are a script's: one the simulator
 * refuses (a text over its 4096 characters) is said on stderr, the lines
 * after it are still sent, and the exit is 1; with every line sent, 0. */
static void test_chat_piped_refusal_fails_the_exit(void **state)
{
    struct myna_proc p;
    char admin[128], texts[512], *input = malloc(6000);
    const char *refused[] = { "chat", "shop", "--admin", admin, "--from", "15550001111",
                              "--linger", "0", NULL };
    const char *fine[] = { "chat", "shop", "--admin", admin, "--from", "15550002222",
                           "--linger", "0", NULL };

    (void)state;
    assert_non_null(input);
    start_admin(&p, admin, sizeof(admin));
    memcpy(input, "first\n", 6);
    memset(input + 6, 'z', 5000);
    memcpy(input + 5006, "\nlast\n", 7);  /* with its NUL */

    assert_int_equal(h_run_input(refused, input, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "myna: send: HTTP 400"));
    sent_texts(&p, "15550001111", texts, sizeof(texts));
    assert_string_equal(texts, "first\nlast\n");

    assert_int_equal(h_run_input(fine, "one\ntwo\n", out, sizeof(out)), 0);
    assert_null(strstr(out, "myna:"));
    sent_texts(&p, "15550002222", texts, sizeof(texts));
    assert_string_equal(texts, "one\ntwo\n");
    free(input);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* dir/var/instances/shop.bot.db as a bot leaves it: record 1 a dead
 * letter, record 2 sent. The schema is made by `myna outbox failed` on an
 * empty file. */
static void make_outbox_store(const struct myna_proc *p, char *data, size_t cap)
{
    char path[400];
    const char *list[] = { "outbox", "failed", "--instance", "shop", "--data", data, NULL };
    sqlite3 *db;

    snprintf(data, cap, "%s/var", p->dir);
    assert_int_equal(mkdir(data, 0755), 0);
    snprintf(path, sizeof(path), "%s/var/instances", p->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/var/instances/shop.bot.db", p->dir);
    write_text(p->dir, "var/instances/shop.bot.db", "", path, sizeof(path));
    assert_int_equal(h_run(list, out, sizeof(out)), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO outbox(contact, turn_id, body, state, attempts,"
                                  " error_code, error, created_ms, updated_ms) VALUES"
                                  " ('79161234567', 1, 'x', 3, 3, 131047, 'window', 1, 1),"
                                  " ('79161234568', 2, 'y', 2, 1, 0, NULL, 1, 1)",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* `myna outbox replay --id N` of a record that is no dead letter (sent,
 * or no such record: a mistyped id) fails and says so, instead of
 * reporting "0 queued again" with the exit code of a success. */
static void test_outbox_replay_unknown_id_fails(void **state)
{
    struct myna_proc p;
    char data[320];
    const char *sent[] = { "outbox", "replay", "--instance", "shop", "--id", "2", "--data", data,
                           NULL };
    const char *missing[] = { "outbox", "replay", "--instance", "shop", "--id", "99", "--data",
                              data, NULL };
    const char *dead[] = { "outbox", "replay", "--instance", "shop", "--id", "1", "--data", data,
                           NULL };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    make_outbox_store(&p, data, sizeof(data));
    assert_int_equal(h_run(sent, out, sizeof(out)), 1);
    assert_string_equal(out, "myna: record 2 of instance 'shop' is not a dead letter "
                             "(see 'myna outbox failed')\n");
    assert_int_equal(h_run(missing, out, sizeof(out)), 1);
    assert_string_equal(out, "myna: record 99 of instance 'shop' is not a dead letter "
                             "(see 'myna outbox failed')\n");
    assert_int_equal(h_run(dead, out, sizeof(out)), 0);
    assert_string_equal(out, "1 dead letter(s) queued again\n");
    h_cleanup(&p);
}

/* --id and --all together, or two --id, is a usage error whatever their
 * order, not the last one winning: `--id 2 --all` would queue every dead
 * letter again. */
static void test_outbox_replay_one_selector(void **state)
{
    struct myna_proc p;
    char data[320];
    const char *id_all[] = { "outbox", "replay", "--instance", "shop", "--id", "2", "--all",
                             "--data", data, NULL };
    const char *all_id[] = { "outbox", "replay", "--instance", "shop", "--all", "--id", "2",
                             "--data", data, NULL };
    const char *id_id[] = { "outbox", "replay", "--instance", "shop", "--id", "2", "--id", "1",
                            "--data", data, NULL };
    const char *list[] = { "outbox", "failed", "--instance", "shop", "--data", data, NULL };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    make_outbox_store(&p, data, sizeof(data));
    assert_int_equal(h_run(id_all, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "usage: myna outbox"));
    assert_int_equal(h_run(all_id, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "usage: myna outbox"));
    assert_int_equal(h_run(id_id, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "usage: myna outbox"));
    /* nothing was queued again */
    assert_int_equal(h_run(list, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1 dead letter(s)\n"));
    h_cleanup(&p);
}

/* A record id that is not one says that --id was the trouble, before
 * the usage, not the usage alone. */
static void test_outbox_replay_bad_id_said(void **state)
{
    struct myna_proc p;
    char data[320];
    const char *word[] = { "outbox", "replay", "--instance", "shop", "--id", "abc", "--data",
                           data, NULL };
    const char *zero[] = { "outbox", "replay", "--instance", "shop", "--id", "0", "--data", data,
                           NULL };
    const char *none[] = { "outbox", "replay", "--instance", "shop", "--data", data, "--id",
                           NULL };
    const char *const *runs[] = { word, zero, none };
    const char *list[] = { "outbox", "failed", "--instance", "shop", "--data", data, NULL };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    make_outbox_store(&p, data, sizeof(data));
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        assert_int_equal(h_run(runs[i], out, sizeof(out)), 2);
        assert_ptr_equal(strstr(out, "myna: --id: expected a record id"), out);
        assert_non_null(strstr(out, "usage: myna outbox"));
    }
    /* nothing was queued again */
    assert_int_equal(h_run(list, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1 dead letter(s)\n"));
    h_cleanup(&p);
}

/* Runs myna as a user who may read the store but not write it: nobody
 * (65534) when the tests run as root (the file stays root's, its
 * directory is nobody's, as SQLite needs to read a WAL file), else the
 * caller with the file made read-only. */
static int run_as_reader(const struct myna_proc *p, const char *const *args, char *buf,
                         size_t cap)
{
    char path[400];
    int pipefd[2], status;
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/var/instances/shop.bot.db", p->dir);
        assert_int_equal(chmod(path, 0444), 0);
        return h_run(args, buf, cap);
    }
    assert_int_equal(chmod(p->dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/var/instances", p->dir);
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(pipe(pipefd), 0);
    if ((pid = fork()) == 0) {
        int rc;
        close(pipefd[0]);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(126);
        rc = h_run(args, buf, cap);
        if (write(pipefd[1], buf, strlen(buf)) < 0)
            _exit(125);
        _exit(rc);
    }
    assert_true(pid > 0);
    close(pipefd[1]);
    while (cap > 1 && (r = read(pipefd[0], buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(pipefd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `myna outbox failed` only reads: a user who may read the store and not
 * write it gets the listing. A replay, which writes, is refused, and the
 * reason is said once. */
static void test_outbox_failed_reads_a_read_only_store(void **state)
{
    struct myna_proc p;
    char data[320];
    const char *list[] = { "outbox", "failed", "--instance", "shop", "--data", data, NULL };
    const char *replay[] = { "outbox", "replay", "--instance", "shop", "--all", "--data", data,
                             NULL };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    make_outbox_store(&p, data, sizeof(data));
    assert_int_equal(run_as_reader(&p, list, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1\t*******4567\tsends=3\tcode=131047\twindow\n"));
    assert_non_null(strstr(out, "1 dead letter(s)\n"));
    assert_int_equal(run_as_reader(&p, replay, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "cannot be written"));
    assert_null(strchr(out, '\n') == NULL ? NULL : strstr(strchr(out, '\n') + 1, "myna:"));
    h_cleanup(&p);
}

/* A store that cannot be opened is named once, with the reason, and the
 * command fails with 1. */
static void test_outbox_store_error_said_once(void **state)
{
    struct myna_proc p;
    char data[320], path[400], want[600];
    const char *list[] = { "outbox", "failed", "--instance", "shop", "--data", data, NULL };

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    snprintf(data, sizeof(data), "%s/var", p.dir);
    assert_int_equal(mkdir(data, 0755), 0);
    snprintf(path, sizeof(path), "%s/var/instances", p.dir);
    assert_int_equal(mkdir(path, 0755), 0);
    write_text(p.dir, "var/instances/shop.bot.db", "not a database, but long enough to be read "
               "as one by SQLite, which looks at the first hundred bytes of a file for its header",
               path, sizeof(path));
    assert_int_equal(h_run(list, out, sizeof(out)), 1);
    snprintf(want, sizeof(want), "myna: cannot open store '%s': ", path);
    assert_int_equal(strncmp(out, want, strlen(want)), 0);
    assert_null(strstr(out + 1, "myna:"));
    h_cleanup(&p);
}

/* An ID that no instance can have is a usage error (exit 2) for every
 * verb that takes one, said before any call, as `start` treated it:
 * `show` and `export` took it for a failure (1). */
static void test_instance_bad_id_is_a_usage_error(void **state)
{
    static const char *const verbs[] = { "show", "start", "stop", "restart", "export" };

    (void)state;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        const char *args[] = { "instance", verbs[i], "Bad Id", "--admin", "127.0.0.1:1", NULL };
        assert_int_equal(h_run(args, out, sizeof(out)), 2);
        assert_string_equal(out, "myna: 'Bad Id' is not an instance id\n");
    }
}

/* `instance create|import FILE` that cannot read FILE says so once, with
 * the reason, and exits 1 without calling the server: against a live one
 * (an empty body would have been refused with 400) and against an address
 * where nothing listens (a call would have failed to connect). */
/* A bad --linger is named as such, not taken for an unknown flag. */
static void test_chat_bad_linger_is_named(void **state)
{
    const char *args[] = { "chat", "shop", "--admin", "127.0.0.1:1", "--linger", "abc", NULL };

    (void)state;
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_string_equal(out, "myna: --linger: 'abc' is not a number of ms from 0 to 3600000\n");
}

/* A name the simulator refuses (over 64 characters, or not UTF-8) failed
 * every message of the chat, one "HTTP 400" at a time; it is a usage
 * error before any call. */
static void test_chat_bad_name_is_named(void **state)
{
    char name[160];
    const char *args[] = { "chat", "shop", "--admin", "127.0.0.1:1", "--name", name, NULL };

    (void)state;
    memset(name, 'a', 65);
    name[65] = '\0';
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_string_equal(out, "myna: --name: at most 64 characters of UTF-8\n");
    snprintf(name, sizeof(name), "Ann\xff");
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_string_equal(out, "myna: --name: at most 64 characters of UTF-8\n");
    /* 64 characters of two bytes each are a name it takes: the call is made */
    for (int i = 0; i < 64; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[128] = '\0';
    assert_int_equal(h_run(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "cannot reach"));
}

static void test_unreadable_file_is_named_before_any_call(void **state)
{
    struct myna_proc p;
    char live[128], dead[64], missing[320], want[512];
    const char *verbs[] = { "create", "import" };
    const char *token_eq = "--token=" ADMIN_TOKEN;

    (void)state;
    start_admin(&p, live, sizeof(live));
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", h_free_port());
    snprintf(missing, sizeof(missing), "%s/missing.json", p.dir);
    for (int v = 0; v < 2; v++) {
        for (int a = 0; a < 2; a++) {
            const char *admin = a ? dead : live;
            const char *dir_args[] = { "instance", verbs[v], p.dir, "--admin", admin, token_eq,
                                       NULL };
            const char *missing_args[] = { "instance", verbs[v], missing, "--admin", admin,
                                           token_eq, NULL };
            assert_int_equal(h_run(dir_args, out, sizeof(out)), 1);
            snprintf(want, sizeof(want), "myna: cannot read '%s': %s\n", p.dir, strerror(EISDIR));
            assert_string_equal(out, want);
            assert_int_equal(h_run(missing_args, out, sizeof(out)), 1);
            snprintf(want, sizeof(want), "myna: cannot read '%s': %s\n", missing,
                     strerror(ENOENT));
            assert_string_equal(out, want);
        }
    }
    {   /* a NUL byte would end the request there: refused before any call */
        char nul[320];
        const char *nul_args[] = { "instance", "create", nul, "--admin", dead, token_eq, NULL };
        FILE *f;
        snprintf(nul, sizeof(nul), "%s/nul.json", p.dir);
        assert_non_null(f = fopen(nul, "wb"));
        fwrite("{\"name\":\"Nul\",\"provider\":\"sim\"}\0{}", 1, 34, f);
        fclose(f);
        assert_int_equal(h_run(nul_args, out, sizeof(out)), 1);
        snprintf(want, sizeof(want), "myna: '%s' holds a NUL byte: it is not a JSON instance\n",
                 nul);
        assert_string_equal(out, want);
    }
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* --token's value is not left on the command line, which any local user
 * can read (ps, /proc/PID/cmdline) while the command waits: here for an
 * admin listener that takes the connection and never answers. Both forms,
 * "--token T" and "--token=T". */
static void test_token_is_wiped_from_the_command_line(void **state)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char admin[64], path[64], cmdline[4096];

    (void)state;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", ntohs(sa.sin_port));
    for (int form = 0; form < 2; form++) {
        int gone = 0;
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            if (form == 0)
                execl(MYNA_BIN, MYNA_BIN, "instance", "list", "--token", "myna_secret_0123456789",
                      "--admin", admin, (char *)NULL);
            else
                execl(MYNA_BIN, MYNA_BIN, "instance", "list", "--token=myna_secret_0123456789",
                      "--admin", admin, (char *)NULL);
            _exit(127);
        }
        assert_true(pid > 0);
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        for (int i = 0; i < 500 && !gone; i++) {  /* 5 s */
            struct timespec ms10 = { 0, 10000000 };
            FILE *fp = fopen(path, "r");
            size_t n = fp ? fread(cmdline, 1, sizeof(cmdline) - 1, fp) : 0;
            if (fp)
                fclose(fp);
            for (size_t k = 0; k < n; k++)
                if (cmdline[k] == '\0')
                    cmdline[k] = ' ';
            cmdline[n] = '\0';
            /* myna's own command line (not the test's, before exec), without the token */
            gone = strstr(cmdline, "instance list --token") != NULL &&
                   strstr(cmdline, "myna_secret_0123456789") == NULL;
            if (!gone)
                nanosleep(&ms10, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (!gone)
            fail_msg("form %d: the token is still on the command line: %s", form, cmdline);
    }
    close(fd);
}

/* A canned HTTP server, for answers a real myna never gives: a child
 * process that answers each request whose "METHOD /path" starts with a
 * route's prefix with that route's status and body (404 without one), one
 * request per connection. addr gets its 127.0.0.1:PORT. */
struct canned_route {
    const char *prefix;
    int status;
    const char *body;
};

static pid_t canned_start(const struct canned_route *routes, char *addr, size_t cap)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    pid_t pid;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(addr, cap, "127.0.0.1:%d", ntohs(sa.sin_port));
    if ((pid = fork()) != 0) {
        assert_true(pid > 0);
        close(fd);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);  /* a failed assert skips canned_stop */
    alarm(120);
    for (;;) {
        const struct canned_route *rt = routes;
        char req[65536], head[256];
        const char *end, *cl, *body;
        size_t n = 0;
        ssize_t r;
        int c = accept(fd, NULL, NULL);

        if (c < 0)
            continue;
        req[0] = '\0';
        while (n < sizeof(req) - 1 && (r = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
            req[n += (size_t)r] = '\0';
            if ((end = strstr(req, "\r\n\r\n")) != NULL) {  /* the body read too */
                cl = strcasestr(req, "\r\ncontent-length:");
                if (n >= (size_t)(end + 4 - req) +
                             (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0))
                    break;
            }
        }
        while (rt->prefix && strncmp(req, rt->prefix, strlen(rt->prefix)) != 0)
            rt++;
        body = rt->prefix ? rt->body : "{\"error\":\"not found\"}";
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 rt->prefix ? rt->status : 404, strlen(body));
        if (write(c, head, strlen(head)) < 0 || write(c, body, strlen(body)) < 0)
            (void)0;  /* the client went away: its test says so */
        close(c);
    }
}

static void canned_stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Names and texts from the server reach the terminal without their control
 * characters (an escape sequence would drive the operator's terminal):
 * each, and each byte of no valid UTF-8 sequence, is shown as '?'. */
static void test_server_text_cannot_drive_the_terminal(void **state)
{
    static const struct canned_route routes[] = {
        { "GET /admin/whatsapp/instances ", 200,
          "[{\"id\":\"a\\u001b[2J\",\"provider\":\"sim\",\"state\":\"running\","
          "\"enabled\":true,\"name\":\"Evil\\u001b]0;owned\\u0007 \\u009b31m\\r\\nname\xff\"}]" },
        { "POST /admin/whatsapp/instances ", 201, "not json \x1b[2J\x9b" },
        { "POST /admin/tokens ", 400,
          "{\"error\":\"no \\u001b[5m\",\"fields\":[{\"field\":\"na\\u001bme\","
          "\"error\":\"b\\u001b[0mad\"}]}" },
        { "GET /sim/shop/info ", 200, "{}" },
        { "GET /sim/shop/events", 200,
          "{\"seq\":3,\"events\":[{\"dir\":\"out\",\"id\":\"w1\",\"text\":\"hi\\u001b[31m\\n"
          "there\\tnow\",\"buttons\":[{\"id\":\"b1\",\"title\":\"\\u001b[8mYes\"}]},"
          "{\"dir\":\"out\",\"id\":\"w2\",\"text\":\"l\",\"list\":{\"button\":\"M\\u001b[1menu\","
          "\"sections\":[{\"rows\":[{\"id\":\"r\",\"title\":\"t\\u001b[7m\",\"description\":"
          "\"d\\u001b[1m\"}]}]}},{\"dir\":\"in\",\"id\":\"w3\",\"status\":\"failed\","
          "\"error\":\"e\\u001b[1m\"}]}" },
        { "POST /sim/shop/send ", 200, "{}" },
        { NULL, 0, NULL },
    };
    char admin[64];
    const char *list[] = { "instance", "list", "--admin", admin, NULL };
    const char *create[] = { "instance", "create", "-", "--admin", admin, NULL };
    const char *token[] = { "token", "create", "--admin", admin, NULL };
    const char *chat[] = { "chat", "shop", "--admin", admin, "--linger", "0", NULL };
    pid_t pid = canned_start(routes, admin, sizeof(admin));

    (void)state;
    assert_int_equal(h_run(list, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\na?[2J                    sim      running     yes     "
                                "Evil?]0;owned? ?31m??name?\n"));
    assert_null(strpbrk(out, "\x1b\x07\r\x9b\xff"));

    assert_int_equal(h_run_input(create, "{}", out, sizeof(out)), 0);
    assert_string_equal(out, "not json ?[2J?\n");

    assert_int_equal(h_run(token, out, sizeof(out)), 1);
    assert_string_equal(out, "myna: token create: HTTP 400: no ?[5m\n  na?me: b?[0mad\n");

    assert_int_equal(h_run_input(chat, "", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "bot: hi?[31m\nthere\tnow\n     [/1] ?[8mYes\n"));
    assert_non_null(strstr(out, "     (M?[1menu)\n     [/1] t?[7m - d?[1m\n"));
    assert_non_null(strstr(out, "  ! not delivered: e?[1m\n"));
    assert_null(strchr(out, '\x1b'));
    /* the option picked is echoed with its title, cleaned too */
    assert_int_equal(h_run_input(chat, "/1\n", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "you: t?[7m\n"));
    assert_null(strchr(out, '\x1b'));
    canned_stop(pid);
}

/* In myna chat, /N picks the last message's option N only as a whole
 * line: "/1 please" is a message (it was sent as a press of option 1), and
 * a number past the options is refused, however long. Piped, each line
 * that did not go (here the server refuses every send) makes the exit 1. */
static void test_chat_pick_is_the_whole_line(void **state)
{
    static const struct canned_route routes[] = {
        { "GET /sim/shop/info ", 200, "{}" },
        { "GET /sim/shop/events", 200,
          "{\"seq\":1,\"events\":[{\"dir\":\"out\",\"id\":\"w1\",\"text\":\"hi\","
          "\"buttons\":[{\"id\":\"b1\",\"title\":\"Yes\"}]}]}" },
        { "POST /sim/shop/send ", 400, "{\"error\":\"sent\"}" },
        { NULL, 0, NULL },
    };
    char admin[64];
    const char *chat[] = { "chat", "shop", "--admin", admin, "--linger", "0", NULL };
    pid_t pid = canned_start(routes, admin, sizeof(admin));

    (void)state;
    assert_int_equal(h_run_input(chat, "/1\n", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "you: Yes\n"));
    assert_non_null(strstr(out, "myna: send: HTTP 400: sent\n"));
    assert_int_equal(h_run_input(chat, "/1 please\n", out, sizeof(out)), 1);
    assert_null(strstr(out, "you: "));
    assert_non_null(strstr(out, "myna: send: HTTP 400: sent\n"));
    assert_int_equal(h_run_input(chat, "/2x\n", out, sizeof(out)), 1);
    assert_null(strstr(out, "no option"));
    assert_non_null(strstr(out, "myna: send: HTTP 400: sent\n"));
    assert_int_equal(h_run_input(chat, "/18446744073709551617\n", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "  ! no option /18446744073709551617 (the last message has 1)\n"));
    assert_null(strstr(out, "myna: send:"));
    canned_stop(pid);
}

/* A token that cannot go into a header as it is (a CRLF token file, a
 * space, a long paste) is refused before any call, naming where it came
 * from: the server answered a bare 400, or took an extra header line. */
static void test_token_unsendable_is_refused(void **state)
{
    static const struct canned_route routes[] = {
        { "GET /admin/whatsapp/instances ", 200, "[]" },
        { NULL, 0, NULL },
    };
    char admin[64], long_token[300];
    const char *cr[] = { "instance", "list", "--admin", admin, "--token", "myna_abc\r", NULL };
    const char *hdr[] = { "instance", "list", "--admin", admin, "--token=myna_abc\r\nX-A: b",
                          NULL };
    const char *lng[] = { "token", "create", "--admin", admin, "--token", long_token, NULL };
    const char *env[] = { "instance", "list", "--admin", admin, NULL };
    pid_t pid = canned_start(routes, admin, sizeof(admin));

    (void)state;
    memset(long_token, 'a', sizeof(long_token) - 1);
    long_token[sizeof(long_token) - 1] = '\0';
    assert_int_equal(h_run(cr, out, sizeof(out)), 2);
    assert_string_equal(out, "myna: the token from --token holds a space, a line break, a "
                             "control character or a non-ASCII byte (pasted with one?)\n");
    assert_int_equal(h_run(hdr, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "myna: the token from --token holds a space"));
    assert_int_equal(h_run(lng, out, sizeof(out)), 2);
    assert_string_equal(out, "myna: the token from --token is longer than 256 bytes\n");
    assert_int_equal(setenv("MYNA_TOKEN", "myna_abc ", 1), 0);
    assert_int_equal(h_run(env, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "myna: the token from MYNA_TOKEN holds a space"));
    assert_int_equal(setenv("MYNA_TOKEN", "myna_abc", 1), 0);
    assert_int_equal(h_run(env, out, sizeof(out)), 0);  /* the server judges the rest */
    assert_int_equal(unsetenv("MYNA_TOKEN"), 0);
    canned_stop(pid);
}

/* A new token from the server is printed cleaned for the terminal too. */
static void test_token_printed_terminal_safe(void **state)
{
    static const struct canned_route routes[] = {
        { "POST /admin/tokens ", 201, "{\"token\":\"myna_\\u001b]0;x\\u0007ab\"}" },
        { NULL, 0, NULL },
    };
    char admin[64];
    const char *token[] = { "token", "create", "--admin", admin, NULL };
    pid_t pid = canned_start(routes, admin, sizeof(admin));

    (void)state;
    assert_int_equal(h_run(token, out, sizeof(out)), 0);
    assert_string_equal(out, "myna_?]0;x?ab\n");
    canned_stop(pid);
}

/* myna instance import reads the whole file, as serve --instances does: a
 * second value after the array, or a secret cut at a \u0000, fails the
 * command before any request instead of importing a part of it. So does
 * what serve --instances refuses in the file itself: a key written twice,
 * which it read as the first value (the first "instances" array, the first
 * provider of a name: the server never sees the second), and a top-level
 * field it does not know (a typo of llm_providers). It imported them and
 * said "updated". */
static void test_import_takes_the_whole_file_or_nothing(void **state)
{
    static const struct canned_route routes[] = {
        { "PUT /admin/whatsapp/instances/", 200, "{}" },
        { "POST /admin/whatsapp/instances ", 201, "{}" },
        { NULL, 0, NULL },
    };
    static const struct {
        const char *text, *why;
    } files[] = {
        { "[{\"id\":\"a\",\"provider\":\"sim\"}], {\"id\":\"b\",\"provider\":\"sim\"}]",
          " is not an instances file: bytes after the JSON value" },
        { "[{\"id\":\"a\",\"provider\":\"sim\",\"access_token\":\"tok\\u0000en\"}]",
          " is not an instances file: a string holds a NUL character" },
        { "[{\"id\":\"a\"", " is not an instances file: not valid JSON" },
        { "{\"instances\":[{\"id\":\"a\",\"provider\":\"sim\"}],"
          "\"instances\":[{\"id\":\"b\",\"provider\":\"sim\"}]}",
          " is not an instances file: field 'instances': appears twice" },
        { "{\"llm_providers\":{\"p\":{\"url\":\"http://127.0.0.1:9\",\"model\":\"old\"},"
          "\"p\":{\"url\":\"http://127.0.0.1:9\",\"model\":\"new\"}},"
          "\"instances\":[{\"id\":\"a\",\"provider\":\"sim\",\"llm\":\"p\"}]}",
          " is not an instances file: field 'llm_providers.p': appears twice" },
        { "{\"instances\":[{\"id\":\"a\",\"provider\":\"sim\"}],\"llm_provider\":{}}",
          " is not an instances file: unknown top-level field 'llm_provider' (expected "
          "\"instances\" and \"llm_providers\")" },
        { "[{\"id\":\"a\",\"provider\":\"sim\"},"
          "{\"id\":\"b\",\"provider\":\"sim\",\"name\":\"B\",\"name\":\"C\"}]",
          ": instance 2: field 'name': appears twice" },
    };
    char admin[64], dir[] = "/tmp/myna-import-XXXXXX", path[128], want[400];
    const char *import[] = { "instance", "import", path, "--admin", admin, NULL };
    pid_t pid = canned_start(routes, admin, sizeof(admin));

    (void)state;
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        write_text(dir, "instances.json", files[i].text, path, sizeof(path));
        assert_int_equal(h_run(import, out, sizeof(out)), 1);
        snprintf(want, sizeof(want), "myna: '%s'%s\n", path, files[i].why);
        assert_string_equal(out, want);
    }
    unlink(path);
    rmdir(dir);
    canned_stop(pid);
}

/* An import whose file holds a number past the range of a double (1e999)
 * is refused whole, naming the instance and the field, before any call:
 * printed again to be sent, the number went as null, the field's default,
 * and the import said "updated". */
static void test_import_huge_number_refused(void **state)
{
    struct myna_proc p;
    char admin[128], path[300], url[300], resp[8192], want[400];
    const char *import[] = { "instance", "import", path, "--admin", admin, "--token",
                             ADMIN_TOKEN, NULL };
    const char *h[] = { "Authorization: Bearer " ADMIN_TOKEN, NULL };

    (void)state;
    start_admin(&p, admin, sizeof(admin));
    write_text(p.dir, "huge.json",
               "[{\"id\":\"new\",\"name\":\"New\",\"provider\":\"sim\"},"
               "{\"id\":\"shop\",\"name\":\"Shop\",\"provider\":\"sim\","
               "\"rate_limit\":{\"count\":1e999}}]",
               path, sizeof(path));
    assert_int_equal(h_run(import, out, sizeof(out)), 1);
    snprintf(want, sizeof(want),
             "myna: '%s': instance 2: field 'rate_limit.count': a number too large\n", path);
    assert_string_equal(out, want);
    snprintf(url, sizeof(url), "%s/admin/whatsapp/instances/shop", p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, h, resp, sizeof(resp)), 200);
    assert_null(strstr(resp, "rate_limit"));
    snprintf(url, sizeof(url), "%s/admin/whatsapp/instances/new", p.admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, h, resp, sizeof(resp)), 404);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* An import of instances the file gives no id says the ids the server
 * made from their names: it said "created " and nothing more, so the new
 * instances could only be found in the list. */
static void test_import_names_the_ids_it_made(void **state)
{
    struct myna_proc p;
    char admin[128], path[300];
    const char *import[] = { "instance", "import", path, "--admin", admin, "--token",
                             ADMIN_TOKEN, NULL };

    (void)state;
    start_admin(&p, admin, sizeof(admin));
    write_text(p.dir, "noid.json",
               "[{\"name\":\"Corner Shop\",\"provider\":\"sim\",\"auto_start\":false},"
               "{\"name\":\"Corner Shop\",\"provider\":\"sim\",\"auto_start\":false},"
               "{\"id\":\"shop\",\"name\":\"Shop\",\"provider\":\"sim\"}]",
               path, sizeof(path));
    assert_int_equal(h_run(import, out, sizeof(out)), 0);
    /* shop is given as the server has it: nothing to change */
    assert_string_equal(out, "created corner-shop\ncreated corner-shop-2\nunchanged shop\n");
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* An answer larger than the 64 MiB a command reads is named as such, not
 * taken for a server that cannot be reached. */
static void test_huge_answer_is_named(void **state)
{
    size_t n = (64u << 20) + 4096;
    char *body = malloc(n + 1), admin[64], want[256];
    struct canned_route routes[] = {
        { "GET /admin/whatsapp/instances ", 200, body },
        { NULL, 0, NULL },
    };
    const char *list[] = { "instance", "list", "--admin", admin, NULL };
    pid_t pid;

    (void)state;
    assert_non_null(body);
    memset(body, ' ', n);
    body[0] = '[';
    body[n - 1] = ']';
    body[n] = '\0';
    pid = canned_start(routes, admin, sizeof(admin));
    assert_int_equal(h_run(list, out, sizeof(out)), 1);
    snprintf(want, sizeof(want), "myna: instance list: the answer of http://%s is larger than "
             "64 MiB\n", admin);
    assert_string_equal(out, want);
    canned_stop(pid);
    free(body);
}

/* An answer that is not the JSON myna gives (another server on the admin
 * address, a proxy's page) fails the command with exit code 1 and says so. */
static void test_answer_not_json_fails_and_says_so(void **state)
{
    static const struct canned_route routes[] = {
        { "GET /admin/whatsapp/instances/a ", 200, "<html>proxy</html>" },
        { "GET /admin/whatsapp/instances ", 200, "<html>proxy</html>" },
        { "POST /admin/tokens ", 201, "{\"token\":5}" },
        { "GET /sim/shop/info ", 200, "{}" },
        { "GET /sim/shop/events", 200, "<html>proxy</html>" },
        { NULL, 0, NULL },
    };
    static const struct canned_route no_id[] = {
        { "GET /admin/whatsapp/instances ", 200, "[{\"name\":\"A\"}]" },
        { NULL, 0, NULL },
    };
    char admin[64], want[256];
    const char *list[] = { "instance", "list", "--admin", admin, NULL };
    const char *export[] = { "instance", "export", "--admin", admin, NULL };
    const char *show[] = { "instance", "show", "a", "--admin", admin, NULL };
    const char *token[] = { "token", "create", "--admin", admin, NULL };
    const char *chat[] = { "chat", "shop", "--admin", admin, "--linger", "0", NULL };
    const struct {
        const char *const *args;
        const char *what;
    } runs[] = { { list, "instance list" }, { export, "instance export" }, { show, "a" },
                 { token, "token create" }, { chat, "events" } };
    pid_t pid = canned_start(routes, admin, sizeof(admin));

    (void)state;
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        snprintf(want, sizeof(want),
                 "myna: %s: the answer of http://%s is not what myna answers (is it the admin "
                 "listener?)\n",
                 runs[i].what, admin);
        assert_int_equal(h_run_input(runs[i].args, "", out, sizeof(out)), 1);
        assert_string_equal(out, want);
    }
    canned_stop(pid);

    pid = canned_start(no_id, admin, sizeof(admin));
    snprintf(want, sizeof(want),
             "myna: instance export: the answer of http://%s is not what myna answers (is it "
             "the admin listener?)\n",
             admin);
    assert_int_equal(h_run(export, out, sizeof(out)), 1);
    assert_string_equal(out, want);
    canned_stop(pid);
}

/* The public and the admin listener on one address and port: no start can
 * bind both, so --check-config and the start refuse it as a setting (exit
 * 2, which a supervisor does not restart) naming both options; it passed
 * the check, then every start failed with exit 1. */
static void test_listeners_on_one_port_refused(void **state)
{
    const char *check[] = { "serve", "--public", "127.0.0.1:18099", "--admin", "127.0.0.1:18099",
                            "--check-config", NULL };
    const char *start[] = { "serve", "--public", "0.0.0.0:18099", "--admin", "127.0.0.1:18099",
                            "--data", "/nonexistent/myna-never-created", NULL };

    (void)state;
    assert_int_equal(h_run(check, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "options 'public' ('127.0.0.1:18099') and 'admin'"));
    assert_int_equal(h_run(start, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "give the two listeners different ports"));
}

static void test_port_in_use_fails_cleanly(void **state)
{
    struct myna_proc a, b;
    char pub[128], want[256];
    const char *extra[] = { "--public", pub, NULL };
    int rc;

    (void)state;
    assert_int_equal(h_setup(&a, NULL), 0);
    assert_int_equal(h_start(&a, NULL), 0);
    if (snprintf(pub, sizeof(pub), "%s", a.public_url + strlen("http://")) >= (int)sizeof(pub))
        fail_msg("address too long");
    assert_int_equal(h_setup(&b, NULL), 0);
    rc = h_start(&b, extra);
    assert_int_equal(rc, -1);
    /* which listener, and why: the operator must not have to guess */
    snprintf(want, sizeof(want), "cannot listen on '%s' (public): Address already in use", pub);
    assert_true(h_log_contains(&b, want));
    h_cleanup(&b);
    assert_int_equal(h_stop(&a, 15), 0);
    h_cleanup(&a);
}

/* A bot whose log file cannot be opened says so and exits 1, a failure
 * the supervisor retries; it said "no such instance" and exited 2, which
 * the supervisor takes for a configuration error and never restarts. */
static void test_bot_log_that_cannot_open(void **state)
{
    struct myna_proc p;
    char instances[400], data[400];
    const char *args[] = { "bot", "--instance", "shop", "--instances", instances, "--data", data,
                           "--log-file-rotate", "/nonexistent-dir/shop.log", NULL };

    (void)state;
    assert_int_equal(h_setup(&p, "[{\"id\":\"shop\",\"name\":\"Shop\",\"provider\":\"sim\"}]"),
                     0);
    snprintf(instances, sizeof(instances), "%s/instances.json", p.dir);
    snprintf(data, sizeof(data), "%s/var", p.dir);
    assert_int_equal(h_run(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "cannot open log file '/nonexistent-dir/shop.log'"));
    assert_null(strstr(out, "no such instance"));
    h_cleanup(&p);
}

/* One master per data directory: a second one is refused at start and
 * names the holder; a master killed with -9 leaves no lock behind. */
static void test_second_master_on_one_data_dir(void **state)
{
    struct myna_proc a, b;
    char data[320], want[512];
    const char *extra[] = { "--data", data, NULL };

    (void)state;
    assert_int_equal(h_setup(&a, NULL), 0);
    assert_int_equal(h_start(&a, NULL), 0);
    snprintf(data, sizeof(data), "%s/var", a.dir);
    assert_int_equal(h_setup(&b, NULL), 0);
    assert_int_equal(h_start(&b, extra), -1);
    snprintf(want, sizeof(want), "data directory '%s' is in use by another myna serve (pid %ld)",
             data, (long)a.pid);
    assert_true(h_log_contains(&b, want));
    /* the first one goes on serving */
    snprintf(want, sizeof(want), "%s/healthz", a.public_url);
    assert_int_equal(h_http("GET", want, NULL, 0, NULL, NULL, 0), 200);
    assert_int_equal(h_stop(&a, 9), 128 + 9);
    assert_int_equal(h_start(&b, extra), 0);
    assert_int_equal(h_stop(&b, 15), 0);
    h_cleanup(&b);
    h_cleanup(&a);
}

/* The commands call the admin listener itself, never through a proxy of
 * the environment (http_proxy, as a shell behind a company proxy has it):
 * the call would fail, or the admin token would go to the proxy. */
static void test_admin_calls_take_no_proxy(void **state)
{
    struct myna_proc p;
    char admin[128], proxy[64];
    const char *list[] = { "instance", "--admin", admin, "list", "--token", ADMIN_TOKEN, NULL };

    (void)state;
    start_admin(&p, admin, sizeof(admin));
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", h_free_port());  /* nothing there */
    setenv("http_proxy", proxy, 1);
    setenv("all_proxy", proxy, 1);
    assert_int_equal(h_run(list, out, sizeof(out)), 0);
    unsetenv("http_proxy");
    unsetenv("all_proxy");
    assert_non_null(strstr(out, "shop"));
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* 1 when the main thread of pid sleeps in a write to a pipe, 0 when it
 * sleeps elsewhere, -1 when it runs or the kernel does not say (wchan is
 * "0" then). */
static int in_pipe_write(pid_t pid)
{
    char path[64], wchan[64] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/wchan", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(wchan, sizeof(wchan), f) == NULL)
        wchan[0] = '\0';
    fclose(f);
    if (strstr(wchan, "pipe_write") != NULL)  /* pipe_write, anon_pipe_write */
        return 1;
    return strcmp(wchan, "0") == 0 || wchan[0] == '\0' ? -1 : 0;
}

static int ready_or_gone(void *arg)
{
    struct myna_proc *p = arg;
    int status;

    if (h_log_contains(p, "event=reloaded"))
        return 1;
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
        p->pid = 0;
        return 1;
    }
    return 0;
}

/* A SIGHUP that comes while the master starts (a logrotate's postrotate
 * right after a restart) must not kill it, SIGHUP's default action: it is
 * taken once the handler is in place, as a reload. The master is held at a
 * known point of its start: the first admin token it prints goes to a full
 * pipe, so it waits there until the test reads. */
static void test_sighup_during_startup(void **state)
{
    struct myna_proc p;
    char data[320], junk[4096];
    const char *argv[] = { MYNA_BIN, "serve", "--public", "127.0.0.1:0", "--admin",
                           "127.0.0.1:0", "--data", data, "--bots", "0", NULL };
    int pipefd[2], fd, held = -1, shown = 0, status;

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    snprintf(data, sizeof(data), "%s/var", p.dir);
    assert_int_equal(pipe(pipefd), 0);
    fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
    memset(junk, 'j', sizeof(junk));
    while (write(pipefd[1], junk, sizeof(junk)) > 0 || errno == EINTR)
        ;
    while (write(pipefd[1], junk, 1) > 0)
        ;
    fcntl(pipefd[1], F_SETFL, 0);  /* the master's writes wait */
    unsetenv("MYNA_ADMIN_TOKEN");  /* a first token is made and printed */
    p.pid = fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        fd = open(p.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDERR_FILENO);
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        execv(MYNA_BIN, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    for (int i = 0; i < 1000 && held != 1; i++) {  /* 10 s */
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        shown |= (held = in_pipe_write(p.pid)) == 0;
        nanosleep(&pause, NULL);
    }
    if (held != 1) {
        close(pipefd[0]);
        h_cleanup(&p);
        if (!shown)
            skip();  /* the kernel does not show where a process waits */
        fail_msg("the master never waited on its standard output");
    }
    assert_int_equal(kill(p.pid, SIGHUP), 0);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 1000 && !ready_or_gone(&p); i++) {
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        while (read(pipefd[0], junk, sizeof(junk)) > 0)
            ;
        nanosleep(&pause, NULL);
    }
    close(pipefd[0]);
    if (p.pid == 0) {
        h_cleanup(&p);
        fail_msg("the master did not survive a SIGHUP during its start");
    }
    assert_true(h_log_contains(&p, "event=ready"));
    assert_true(h_log_contains(&p, "event=reloaded"));
    assert_int_equal(kill(p.pid, SIGTERM), 0);
    assert_int_equal(waitpid(p.pid, &status, 0), p.pid);
    p.pid = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    h_cleanup(&p);
}

/* The first admin token is shown once: a start whose standard output
 * cannot take it (closed, a full disk; /dev/full here) fails and stores no
 * admin, so that the next start shows one, instead of starting with a
 * token nobody saw and locking the admin API for good. */
static void test_first_token_unshown_is_not_kept(void **state)
{
    struct myna_proc p;
    char data[320];
    const char *argv[] = { MYNA_BIN, "serve", "--public", "127.0.0.1:0", "--admin",
                           "127.0.0.1:0", "--data", data, "--bots", "0", NULL };
    int status, fd;

    (void)state;
    assert_int_equal(h_setup(&p, NULL), 0);
    snprintf(data, sizeof(data), "%s/var", p.dir);
    unsetenv("MYNA_ADMIN_TOKEN");
    p.pid = fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        fd = open(p.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDERR_FILENO);
        fd = open("/dev/full", O_WRONLY);
        dup2(fd, STDOUT_FILENO);
        execv(MYNA_BIN, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {  /* 10 s */
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        if (waitpid(p.pid, &status, WNOHANG) == p.pid) {
            p.pid = 0;
            break;
        }
        if (h_log_contains(&p, "event=ready"))
            break;
        nanosleep(&pause, NULL);
    }
    if (p.pid > 0) {
        h_cleanup(&p);
        fail_msg("the master started with a first token it could not show");
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    assert_true(h_log_contains(&p, "cannot show the first admin token"));
    assert_int_equal(h_start(&p, NULL), 0);  /* the next start shows one */
    assert_true(h_log_contains(&p, "The admin API's first token"));
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* An admin API call to p with token; the answer in out. */
static long admin_call(const struct myna_proc *p, const char *token, const char *method,
                       const char *path, const char *body)
{
    char url[sizeof(p->admin_url) + 128], auth[200];
    const char *h[] = { "Content-Type: application/json", auth, NULL };

    snprintf(url, sizeof(url), "%s%s", p->admin_url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    return h_http(method, url, body, body ? strlen(body) : 0, h, out, sizeof(out));
}

/* The token `myna token recover` printed: the line of out that starts
 * with "myna_" (its stdout comes first: flushed before the commit). */
static void printed_token(char *token, size_t cap)
{
    const char *t = strstr(out, "myna_");

    assert_non_null(t);
    assert_true(t == out || t[-1] == '\n');
    snprintf(token, cap, "%.*s", (int)strcspn(t, "\n"), t);
    assert_int_equal(strlen(token), 48);
}

/* The number of rows of the audit log (newest 1000) of action whose user
 * and from are "local" and whose detail holds detail. */
static int local_rows(const struct myna_proc *p, const char *token, const char *action,
                      const char *target, const char *detail)
{
    cJSON *arr, *row;
    int n = 0;

    assert_int_equal(admin_call(p, token, "GET", "/admin/audit?limit=1000", NULL), 200);
    arr = cJSON_Parse(out);
    cJSON_ArrayForEach(row, arr) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(row, "detail");
        char *text = d ? cJSON_PrintUnformatted(d) : NULL;
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "action")),
                   action) == 0 &&
            strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "target")),
                   target) == 0 &&
            strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "user")),
                   "local") == 0 &&
            strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "from")),
                   "local") == 0 &&
            text && strstr(text, detail))
            n++;
        free(text);
    }
    cJSON_Delete(arr);
    return n;
}

/* The tokens the admin API lists. */
static int token_count(const struct myna_proc *p, const char *token)
{
    cJSON *arr;
    int n;

    assert_int_equal(admin_call(p, token, "GET", "/admin/tokens", NULL), 200);
    arr = cJSON_Parse(out);
    n = cJSON_GetArraySize(arr);
    cJSON_Delete(arr);
    return n;
}

/* `myna token recover`: an operator who lost the first token (nobody else
 * has one) gets a new admin token from the data directory, beside the
 * running master, which takes it at once; audited as made on the host.
 * Without it, only editing control.db by hand brought the API back. */
static void test_token_recover_beside_the_master(void **state)
{
    struct myna_proc p;
    char data[320], other[320], db[400], token[64], second[64];
    const char *recover[] = { "token", "recover", "--data", data, NULL };
    const char *named[] = { "token", "recover", "--name=laptop", "--user", "admin", "--data", data,
                            NULL };
    const char *nobody[] = { "token", "recover", "--user", "nobody", "--data", data, NULL };
    const char *bob[] = { "token", "recover", "--user", "bob", "--data", data, NULL };
    const char *elsewhere[] = { "token", "recover", "--data", other, NULL };
    const char *bad_name[] = { "token", "recover", "--name", "\xff", "--data", data, NULL };
    int tokens;

    (void)state;
    unsetenv("MYNA_ADMIN_TOKEN");
    assert_int_equal(h_setup(&p, NULL), 0);
    snprintf(data, sizeof(data), "%s/var", p.dir);
    assert_int_equal(h_start(&p, NULL), 0);  /* its first token is in its log: "lost" */

    assert_int_equal(h_run(recover, out, sizeof(out)), 0);
    printed_token(token, sizeof(token));
    assert_non_null(strstr(out, "is for admin 'admin'"));
    assert_int_equal(admin_call(&p, token, "GET", "/admin/users", NULL), 200);
    assert_non_null(strstr(out, "\"name\":\"admin\""));
    assert_int_equal(local_rows(&p, token, "token.create", "admin", "\"name\":\"recovered\""), 1);
    tokens = token_count(&p, token);
    assert_int_equal(tokens, 2);

    assert_int_equal(h_run(named, out, sizeof(out)), 0);
    printed_token(second, sizeof(second));
    assert_string_not_equal(second, token);
    assert_int_equal(admin_call(&p, second, "GET", "/admin/audit", NULL), 200);
    assert_int_equal(local_rows(&p, token, "token.create", "admin", "\"name\":\"laptop\""), 1);
    assert_int_equal(token_count(&p, token), tokens + 1);
    tokens++;

    /* a user that is not there, or no admin: said, and nothing made */
    assert_int_equal(h_run(nobody, out, sizeof(out)), 1);
    assert_string_equal(out, "myna: no user 'nobody'\n");
    assert_int_equal(admin_call(&p, token, "POST", "/admin/users", "{\"name\":\"bob\"}"), 201);
    tokens++;  /* bob's first */
    assert_int_equal(h_run(bob, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "user 'bob' is not an admin: give --enable"));
    assert_null(strstr(out, "myna_"));
    assert_int_equal(token_count(&p, token), tokens);
    assert_int_equal(h_run(bad_name, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--name: at most 256 bytes of UTF-8"));

    /* a directory with no control store: said, and none is made there */
    snprintf(other, sizeof(other), "%s/elsewhere", p.dir);
    assert_int_equal(h_run(elsewhere, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no control store at '"));
    assert_non_null(strstr(out, "elsewhere/control.db'"));
    assert_int_equal(mkdir(other, 0700), 0);
    assert_int_equal(h_run(elsewhere, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no control store at '"));
    snprintf(db, sizeof(db), "%s/control.db", other);
    assert_int_equal(access(db, F_OK), -1);
    assert_int_equal(token_count(&p, token), tokens);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* sqlite3_exec's callback: counts the rows in *arg. */
static int count_rows(void *arg, int n, char **values, char **names)
{
    (void)n;
    (void)values;
    (void)names;
    ++*(int *)arg;
    return 0;
}

/* With no enabled admin left (all disabled by hand), recover says so and
 * makes nothing unless --enable, which makes 'admin' an enabled admin
 * again (audited); it works on a stopped master's data as well, and keeps
 * nothing when the token cannot be shown. */
static void test_token_recover_enable(void **state)
{
    struct myna_proc p;
    char data[320], db[400], token[64];
    const char *recover[] = { "token", "recover", "--data", data, NULL };
    const char *enable[] = { "token", "recover", "--enable", "--data", data, NULL };
    sqlite3 *h;
    int rows = 0;

    (void)state;
    unsetenv("MYNA_ADMIN_TOKEN");
    assert_int_equal(h_setup(&p, NULL), 0);
    snprintf(data, sizeof(data), "%s/var", p.dir);
    assert_int_equal(h_start(&p, NULL), 0);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    snprintf(db, sizeof(db), "%s/control.db", data);
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "UPDATE users SET disabled = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);

    assert_int_equal(h_run(recover, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no user is an enabled admin"));
    assert_non_null(strstr(out, "--enable"));
    assert_null(strstr(out, "myna_"));
    /* a token that cannot be shown (stdout on a full disk) is not kept,
     * nor is the admin enabled */
    {
        const char *argv[] = { MYNA_BIN, "token", "recover", "--enable", "--data", data, NULL };
        char errlog[400];
        int status, fd;
        pid_t pid;
        snprintf(errlog, sizeof(errlog), "%s/recover.err", p.dir);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, STDERR_FILENO);
            fd = open("/dev/full", O_WRONLY);
            dup2(fd, STDOUT_FILENO);
            execv(MYNA_BIN, (char *const *)argv);
            _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, "SELECT 1 FROM tokens WHERE id > 1 UNION ALL "
                                         "SELECT 1 FROM users WHERE disabled = 0",
                                      count_rows, &rows, NULL),
                         SQLITE_OK);
        sqlite3_close(h);
        assert_int_equal(rows, 0);
    }
    assert_int_equal(h_run(enable, out, sizeof(out)), 0);
    printed_token(token, sizeof(token));
    assert_non_null(strstr(out, "user 'admin' is an enabled admin again"));
    assert_int_equal(h_start(&p, NULL), 0);
    assert_int_equal(admin_call(&p, token, "GET", "/admin/users", NULL), 200);
    assert_non_null(strstr(out, "\"disabled\":false"));
    assert_int_equal(local_rows(&p, token, "user.update", "admin", "\"disabled\":false"), 1);
    assert_int_equal(local_rows(&p, token, "token.create", "admin", "\"name\":\"recovered\""), 1);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* `myna ARGS...` with the redirection redir (a shell's, as "2>FILE"): buf
 * gets what is left of its standard output and error. The exit code. */
static int run_redirected(const char *const *args, const char *redir, char *buf, size_t cap)
{
    char script[400];
    const char *argv[32] = { "-c", script, MYNA_BIN };
    size_t n = 3;

    snprintf(script, sizeof(script), "exec \"$0\" \"$@\" %s", redir);
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return h_exec("/bin/sh", argv, NULL, buf, cap);
}

/* `myna ARGS...` with its standard error in the file err_path: buf gets
 * its standard output alone. The exit code. */
static int run_apart(const char *const *args, const char *err_path, char *buf, size_t cap)
{
    char redir[340];

    snprintf(redir, sizeof(redir), "2>'%s'", err_path);
    return run_redirected(args, redir, buf, cap);
}

/* An export (a backup: `myna instance export > backup.json`) with an
 * instance that did not load at start still prints the others as valid
 * JSON, names the one left out and why on stderr, and exits 1: a backup
 * missing an instance is not taken for a whole one. An import with one
 * instance refused tries the others and exits 1 too. */
static void test_export_with_an_unloaded_instance_fails(void **state)
{
    struct myna_proc p;
    char admin[128], err_path[320], file[320], stderr_text[4096] = "";
    const char *export[] = { "instance", "export", "--admin", admin, "--token", ADMIN_TOKEN,
                             NULL };
    const char *import[] = { "instance", "import", file, "--admin", admin, "--token",
                             ADMIN_TOKEN, NULL };
    cJSON *arr;
    const cJSON *it;
    int shop = 0, n = 0;
    char sql[200], db[320];
    sqlite3 *h;
    FILE *f;

    (void)state;
    start_admin(&p, admin, sizeof(admin));
    assert_int_equal(admin_call(&p, ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                                "{\"id\":\"stale\",\"name\":\"Stale\",\"provider\":\"sim\"}"),
                     201);
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    /* a value a later check refuses: stored, but it does not load */
    snprintf(db, sizeof(db), "%s/var/control.db", p.dir);
    snprintf(sql, sizeof(sql), "UPDATE instances SET config = json_set(config, "
                               "'$.max_memory_mb', 0.5) WHERE id = 'stale'");
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(h), 1);
    sqlite3_close(h);
    assert_int_equal(h_start(&p, NULL), 0);
    snprintf(admin, sizeof(admin), "%.120s", p.admin_url + strlen("http://"));

    snprintf(err_path, sizeof(err_path), "%s/export.err", p.dir);
    assert_int_equal(run_apart(export, err_path, out, sizeof(out)), 1);
    assert_non_null(arr = cJSON_Parse(out));
    assert_true(cJSON_IsArray(arr));
    cJSON_ArrayForEach(it, arr) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        assert_true(cJSON_IsString(id));
        assert_string_not_equal(id->valuestring, "stale");
        shop += strcmp(id->valuestring, "shop") == 0;
        n++;
    }
    cJSON_Delete(arr);
    assert_int_equal(shop, 1);
    assert_int_equal(n, 1);
    assert_non_null(f = fopen(err_path, "r"));
    stderr_text[fread(stderr_text, 1, sizeof(stderr_text) - 1, f)] = '\0';
    fclose(f);
    assert_non_null(strstr(stderr_text, "instance 'stale' left out, it did not load at start: "));
    assert_non_null(strstr(stderr_text, "max_memory_mb"));
    assert_non_null(strstr(stderr_text, "the export is not complete"));
    /* named, shop alone is a whole export */
    {
        const char *named[] = { "instance", "export", "shop", "--admin", admin, "--token",
                                ADMIN_TOKEN, NULL };
        assert_int_equal(h_run(named, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "\"shop\""));
    }

    /* the second of three refused (no such provider): the third still goes */
    snprintf(file, sizeof(file), "%s/some-bad.json", p.dir);
    assert_non_null(f = fopen(file, "w"));
    fprintf(f, "[{\"id\":\"one\",\"name\":\"One\",\"provider\":\"sim\"},"
               "{\"id\":\"two\",\"name\":\"Two\",\"provider\":\"nope\"},"
               "{\"id\":\"three\",\"name\":\"Three\",\"provider\":\"sim\"}]");
    fclose(f);
    assert_int_equal(h_run(import, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "created one\n"));
    assert_non_null(strstr(out, "myna: two: HTTP 400"));
    assert_non_null(strstr(out, "created three\n"));
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

/* What a command prints must reach its standard output: an export to a
 * full disk (/dev/full) said nothing and exited 0, leaving an empty backup. */
static void test_output_that_cannot_be_written_fails(void **state)
{
    struct myna_proc p;
    char admin[128];
    const char *export[] = { "instance", "export", "--admin", admin, "--token", ADMIN_TOKEN,
                             NULL };
    const char *version[] = { "version", NULL };
    const char *dump[] = { "serve", "--dump-config", NULL };

    (void)state;
    start_admin(&p, admin, sizeof(admin));
    assert_int_equal(run_redirected(export, ">/dev/full", out, sizeof(out)), 1);
    assert_string_equal(out, "myna: cannot write to standard output: No space left on device\n");
    assert_int_equal(run_redirected(export, ">/dev/null", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(run_redirected(version, ">/dev/full", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "cannot write to standard output"));
    assert_int_equal(run_redirected(dump, ">/dev/full", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "cannot write to standard output"));
    assert_int_equal(run_redirected(dump, ">&-", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "cannot write to standard output"));
    assert_int_equal(h_stop(&p, SIGTERM), 0);
    h_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_every_option),
        cmocka_unit_test(test_unknown_command_and_flag),
        cmocka_unit_test(test_bad_instances_file_names_the_field),
        cmocka_unit_test(test_flag_beats_file),
        cmocka_unit_test(test_port_in_use_fails_cleanly),
        cmocka_unit_test(test_listeners_on_one_port_refused),
        cmocka_unit_test(test_second_master_on_one_data_dir),
        cmocka_unit_test(test_bot_log_that_cannot_open),
        cmocka_unit_test(test_sighup_during_startup),
        cmocka_unit_test(test_first_token_unshown_is_not_kept),
        cmocka_unit_test(test_bad_webhook_url_is_never_shown),
        cmocka_unit_test(test_flag_equals_value_everywhere),
        cmocka_unit_test(test_unreadable_file_is_named_before_any_call),
        cmocka_unit_test(test_chat_bad_linger_is_named),
        cmocka_unit_test(test_chat_bad_name_is_named),
        cmocka_unit_test(test_server_text_cannot_drive_the_terminal),
        cmocka_unit_test(test_token_printed_terminal_safe),
        cmocka_unit_test(test_chat_pick_is_the_whole_line),
        cmocka_unit_test(test_chat_piped_refusal_fails_the_exit),
        cmocka_unit_test(test_export_with_an_unloaded_instance_fails),
        cmocka_unit_test(test_output_that_cannot_be_written_fails),
        cmocka_unit_test(test_token_unsendable_is_refused),
        cmocka_unit_test(test_import_takes_the_whole_file_or_nothing),
        cmocka_unit_test(test_import_huge_number_refused),
        cmocka_unit_test(test_import_names_the_ids_it_made),
        cmocka_unit_test(test_huge_answer_is_named),
        cmocka_unit_test(test_answer_not_json_fails_and_says_so),
        cmocka_unit_test(test_token_is_wiped_from_the_command_line),
        cmocka_unit_test(test_admin_calls_take_no_proxy),
        cmocka_unit_test(test_outbox_replay_unknown_id_fails),
        cmocka_unit_test(test_outbox_replay_one_selector),
        cmocka_unit_test(test_outbox_replay_bad_id_said),
        cmocka_unit_test(test_outbox_failed_reads_a_read_only_store),
        cmocka_unit_test(test_outbox_store_error_said_once),
        cmocka_unit_test(test_instance_bad_id_is_a_usage_error),
        cmocka_unit_test(test_token_recover_beside_the_master),
        cmocka_unit_test(test_token_recover_enable),
    };
    if (getenv("MYNA_TEST_FILTER"))  /* one case: MYNA_TEST_FILTER=test_name (globs) */
        cmocka_set_test_filter(getenv("MYNA_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
