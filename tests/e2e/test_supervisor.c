/* test_supervisor.c - the master's supervision of its bots end to end, with
 * the real binary: each bot's own log file, a bot killed with SIGKILL back
 * within 2 s, a bot whose configuration cannot be completed (its simulator
 * key was damaged: exit 2) in crash_loop, the memory limit (MYNA_BOT_MAX_MEMORY_MB=1) restarting
 * a bot gracefully, a frozen bot (SIGSTOP) killed for its missing
 * heartbeat (MYNA_BOT_HEARTBEAT_TIMEOUT_MS) and started again, /metrics
 * over a fleet of 120 instances, webhooks answered while a scrape of
 * those is under way, and a bot restarted after its binary was replaced on
 * disk still running its master's program. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SECRET "sup-app-secret-0123456789"

/* Two cloud instances; their Graph API is a closed port (nothing here
 * needs a reply to arrive). */
#define INSTANCE(id, pnid)                                                                   \
    "{\"id\":\"" id "\",\"name\":\"" id "\",\"provider\":\"cloud\",\"phone_number_id\":\"" pnid \
    "\",\"access_token\":\"tok-" id "\",\"app_secret\":\"" SECRET "\",\"verify_token\":\"v\","  \
    "\"graph_url\":\"http://127.0.0.1:9/v25.0\",\"batch\":{\"window_ms\":200},"               \
    "\"faq\":[{\"q\":[\"when are you open\"],\"a\":\"We are open 9-18.\"}],"                   \
    "\"fallback_text\":\"Sorry.\"}"

static const char *const both =
    "[" INSTANCE("alpha", "100200300") ",{\"id\":\"beta\",\"name\":\"beta\",\"provider\":\"sim\"}]";

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int start(struct myna_proc *p)
{
    const char *extra[] = { "--bots", "1", NULL };

    return h_setup(p, both) == 0 && h_start(p, extra) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    struct myna_proc *p = calloc(1, sizeof(*p));

    *state = p;
    return p && start(p) == 0 ? 0 : -1;
}

/* The memory and heartbeat cases set their variable for the master only. */
static int setup_env(void **state, const char *name, const char *value)
{
    struct myna_proc *p = calloc(1, sizeof(*p));
    int rc;

    *state = p;
    setenv(name, value, 1);
    rc = p && start(p) == 0 ? 0 : -1;
    unsetenv(name);
    return rc;
}

#define ADMIN_TOKEN "myna_AdminTokenForTheEndToEndTestsOnly0123456789"

static int setup_admin(void **state)
{
    return setup_env(state, "MYNA_ADMIN_TOKEN", ADMIN_TOKEN);
}

static int setup_memory(void **state)
{
    return setup_env(state, "MYNA_BOT_MAX_MEMORY_MB", "1");
}

/* A bot beats every 2 s: 6 s leaves the bots that run on (beta, alpha
 * before it is frozen) a late beat or two on a loaded machine. */
static int setup_heartbeat(void **state)
{
    return setup_env(state, "MYNA_BOT_HEARTBEAT_TIMEOUT_MS", "6000");
}

static int teardown(void **state)
{
    assert_int_equal(h_stop_release(*state), 0);
    return 0;
}

/* 1 if the master's own log (not the bots') contains needle. */
static int master_log_contains(const struct myna_proc *p, const char *needle)
{
    FILE *fp = fopen(p->log_path, "r");
    char line[4200];
    int found = 0;

    if (fp == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), fp))
        found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

/* The pid of id's newest bot from the master's log, 0 if none. */
static long bot_pid(const struct myna_proc *p, const char *id)
{
    FILE *fp = fopen(p->log_path, "r");
    char line[4200], want[96];
    long pid = 0;

    snprintf(want, sizeof(want), "event=bot_started instance=%s pid=", id);
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp)) {
        const char *at = strstr(line, want);
        if (at)
            pid = strtol(at + strlen(want), NULL, 10);
    }
    fclose(fp);
    return pid;
}

#define DAY_MS (86400 * 1000LL)

/* The time of day in ms (UTC) of the last line of the master's log that
 * contains needle, from its ts=...Z; -1 if none. */
static int64_t logged_ms(const struct myna_proc *p, const char *needle)
{
    FILE *fp = fopen(p->log_path, "r");
    char line[4200];
    int64_t ms = -1;
    int h, m, s, frac;

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp))
        if (strstr(line, needle) &&
            sscanf(line, "ts=%*d-%*d-%*dT%d:%d:%d.%dZ", &h, &m, &s, &frac) == 4)
            ms = (((int64_t)h * 60 + m) * 60 + s) * 1000 + frac;
    fclose(fp);
    return ms;
}

struct want {
    const struct myna_proc *p;
    const char *id;
    const char *text;
    long not_pid;
    double value;
};

static int bot_running(void *arg)
{
    struct want *w = arg;
    char name[96];

    snprintf(name, sizeof(name), "myna_bot_up{instance=\"%s\"}", w->id);
    return h_metric(w->p, name) == 1;
}

static int new_bot(void *arg)
{
    struct want *w = arg;
    long pid = bot_pid(w->p, w->id);

    return pid > 0 && pid != w->not_pid && bot_running(arg);
}

static int in_log(void *arg)
{
    struct want *w = arg;

    return h_log_contains(w->p, w->text);
}

static int in_bot_log(void *arg)
{
    struct want *w = arg;

    return h_bot_log_contains(w->p, w->id, w->text);
}

static int metric_is(void *arg)
{
    struct want *w = arg;

    return h_metric(w->p, w->text) == w->value;
}

static void post_text(const struct myna_proc *p, const char *pnid, const char *wamid,
                      const char *text)
{
    char body[2048];
    int n = snprintf(body, sizeof(body),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                     "{\"display_phone_number\":\"15550000000\",\"phone_number_id\":\"%s\"},"
                     "\"contacts\":[{\"profile\":{\"name\":\"Ann\"},\"wa_id\":\"15551234567\"}],"
                     "\"messages\":[{\"from\":\"15551234567\",\"id\":\"%s\",\"timestamp\":\"%ld\","
                     "\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]},\"field\":\"messages\"}]}]}",
                     pnid, wamid, (long)time(NULL), text);

    assert_int_equal(h_post_signed(p->public_url, "alpha", SECRET, body, (size_t)n, NULL, 0), 200);
}

/* Waits for id's bot to run and to have said so in its log. */
static void wait_up(const struct myna_proc *p, const char *id)
{
    char ready[96];
    struct want w = { p, id, ready, 0, 0 };

    snprintf(ready, sizeof(ready), "event=bot_ready instance=%s", id);
    if (!h_wait(bot_running, &w, 10000) || !h_wait(in_bot_log, &w, 10000))
        fail_msg("the bot of %s did not start", id);
}

static void test_each_bot_logs_to_its_own_file(void **state)
{
    struct myna_proc *p = *state;
    struct want w = { p, "alpha", "event=turn_answered instance=alpha", 0, 0 };
    char path[400];

    wait_up(p, "alpha");
    wait_up(p, "beta");
    snprintf(path, sizeof(path), "%s/var/logs/alpha.log", p->dir);
    assert_int_equal(access(path, R_OK), 0);
    assert_true(h_bot_log_contains(p, "alpha", "proc=bot"));
    assert_true(h_bot_log_contains(p, "alpha", "event=bot_ready instance=alpha"));
    assert_true(h_bot_log_contains(p, "beta", "event=bot_ready instance=beta"));
    assert_false(h_bot_log_contains(p, "beta", "instance=alpha"));
    /* a customer's message rings alpha's bot, which answers and says so there */
    post_text(p, "100200300", "wamid.sup-1", "when are you open");
    assert_true(h_wait(in_bot_log, &w, 15000));
    /* the master's log keeps the master's lines only */
    assert_true(h_log_contains(p, "event=bot_started instance=alpha"));
    assert_false(master_log_contains(p, "proc=bot"));
    /* SIGTERM: the bots stop gracefully, then the master */
    assert_int_equal(h_stop(p, SIGTERM), 0);
    assert_true(h_log_contains(p, "event=bot_stopped instance=alpha code=0 signal=0"));
    assert_true(h_log_contains(p, "event=bot_stopped instance=beta code=0 signal=0"));
    assert_true(h_bot_log_contains(p, "alpha", "event=stopping instance=alpha signal=15"));
}

static void test_kill9_bot_is_back_within_2s(void **state)
{
    struct myna_proc *p = *state;
    struct want w = { p, "alpha", NULL, 0, 0 };
    char started[96];
    int64_t exited_at, started_at, took;

    wait_up(p, "alpha");
    w.not_pid = bot_pid(p, "alpha");
    assert_true(w.not_pid > 0);
    assert_int_equal(kill((pid_t)w.not_pid, SIGKILL), 0);
    assert_true(h_wait(new_bot, &w, 10000));
    /* measured on the master's clock, from the exit it saw to the new
     * start: the backoff (1 s) and the start's tick. The test's polling
     * (a scrape every 20 ms) and its own delays on a loaded machine are
     * not the master's. */
    snprintf(started, sizeof(started), "event=bot_started instance=alpha pid=%ld ",
             bot_pid(p, "alpha"));
    exited_at = logged_ms(p, "event=bot_exited instance=alpha code=-1 signal=9 ");
    started_at = logged_ms(p, started);
    assert_true(exited_at >= 0 && started_at >= 0);
    took = (started_at - exited_at + DAY_MS) % DAY_MS;  /* across midnight too */
    if (took < 990 || took > 2000)
        fail_msg("the bot was started again %lld ms after its exit", (long long)took);
    assert_true(h_log_contains(p, "event=bot_exited instance=alpha code=-1 signal=9 "
                                  "reason=\"crashed\" restart_in_ms=1000"));
    assert_true(h_metric(p, "myna_bot_restarts_total{instance=\"alpha\"}") == 1);
    assert_true(h_metric(p, "myna_bot_crash_loop{instance=\"alpha\"}") == 0);
    assert_true(h_metric(p, "myna_bot_up{instance=\"beta\"}") == 1);  /* untouched */
    assert_true(h_metric(p, "myna_bot_restarts_total{instance=\"beta\"}") == 0);
    {   /* and the new one logs to the same file */
        char ready[96];
        w.text = ready;
        snprintf(ready, sizeof(ready), "pid=%ld event=bot_ready instance=alpha",
                 bot_pid(p, "alpha"));
        assert_true(h_wait(in_bot_log, &w, 10000));
    }
}

static void test_config_error_is_a_crash_loop(void **state)
{
    struct myna_proc *p = *state;
    struct want loop = { p, "beta", "event=bot_crash_loop instance=beta", 0, 0 };
    struct want gauge = { p, "beta", "myna_bot_crash_loop{instance=\"beta\"}", 0, 1 };
    char path[400];
    FILE *fp;

    wait_up(p, "beta");
    /* the simulator's key is damaged under the running master: the next
     * start of beta's bot cannot derive its secrets and exits with 2 */
    snprintf(path, sizeof(path), "%s/var/sim.key", p->dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs("damaged", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(kill((pid_t)bot_pid(p, "beta"), SIGKILL), 0);
    assert_true(h_wait(in_log, &loop, 10000));
    assert_true(h_log_contains(p, "event=bot_config_error instance=beta state=crash_loop"));
    assert_true(h_bot_log_contains(p, "beta", "must hold exactly 64 hex digits"));
    assert_true(h_wait(metric_is, &gauge, 10000));
    assert_true(h_metric(p, "myna_bot_up{instance=\"beta\"}") == 0);
    {   /* not restarted: code 2 means a configuration error */
        struct timespec pause = { 1, 500000000 };
        long pid = bot_pid(p, "beta");
        nanosleep(&pause, NULL);
        assert_int_equal(bot_pid(p, "beta"), pid);
    }
    assert_true(h_metric(p, "myna_bot_up{instance=\"alpha\"}") == 1);
    assert_true(h_metric(p, "myna_bot_crash_loop{instance=\"alpha\"}") == 0);
}

static void test_memory_limit_restarts_gracefully(void **state)
{
    struct myna_proc *p = *state;
    struct want limit = { p, "alpha", "event=bot_memory_limit instance=alpha", 0, 0 };
    struct want back = { p, "alpha", NULL, 0, 0 };

    wait_up(p, "alpha");
    back.not_pid = bot_pid(p, "alpha");
    /* every process is past 1 MB: restarted at the first check (2 s) */
    assert_true(h_wait(in_log, &limit, 10000));
    assert_true(h_wait(new_bot, &back, 10000));
    /* over its limit within a minute of its start: restarted after the
     * first backoff, as a crash is (a limit it cannot run under ends in a
     * crash loop, not a restart every 2 s) */
    assert_true(h_log_contains(p, "event=bot_exited instance=alpha code=0 signal=0 "
                                  "reason=\"memory limit\" restart_in_ms=1000"));
    /* stopped with SIGTERM, on its own: no kill */
    assert_true(h_bot_log_contains(p, "alpha", "event=stopping instance=alpha signal=15"));
    assert_false(h_log_contains(p, "event=bot_killed instance=alpha"));
    assert_true(h_metric(p, "myna_bot_restarts_total{instance=\"alpha\"}") >= 1);
    assert_true(h_metric(p, "myna_bot_crash_loop{instance=\"alpha\"}") == 0);
    assert_true(h_metric(p, "myna_bot_resident_memory_bytes{instance=\"alpha\"}") >= 0);
}

static void test_frozen_bot_is_killed_and_restarted(void **state)
{
    struct myna_proc *p = *state;
    struct want silent = { p, "alpha", "event=bot_unresponsive instance=alpha", 0, 0 };
    struct want back = { p, "alpha", NULL, 0, 0 };
    int64_t t0;

    wait_up(p, "alpha");
    back.not_pid = bot_pid(p, "alpha");
    t0 = now_ms();
    assert_int_equal(kill((pid_t)back.not_pid, SIGSTOP), 0);  /* a loop that hangs */
    /* a master whose checks run late on a loaded machine takes them for
     * time it did not run, and waits that much longer before the kill */
    assert_true(h_wait(in_log, &silent, 60000));
    assert_true(now_ms() - t0 >= 1000);  /* not before its heartbeats stopped for long */
    assert_true(h_wait(new_bot, &back, 10000));
    assert_true(h_log_contains(p, "event=bot_exited instance=alpha code=-1 signal=9 "
                                  "reason=\"no heartbeat\""));
    assert_true(h_metric(p, "myna_bot_restarts_total{instance=\"alpha\"}") == 1);
    assert_true(h_metric(p, "myna_bot_up{instance=\"beta\"}") == 1);  /* beta beats on */
    assert_false(h_log_contains(p, "event=bot_unresponsive instance=beta"));
}

/* n sim instances ("a-fleet-member-...-%04d", 64 characters, none
 * started), each with a bot store as a bot that ran before would have left
 * it (an empty file: the master's scrape gives it the schema), and first
 * (a JSON object, may be NULL) before them; started with bots on. */
#define FLEET_ID "a-fleet-member-with-a-long-name-to-fill-up-the-metrics-text-%04d"

static int start_fleet(struct myna_proc *p, int n, const char *first)
{
    const char *extra[] = { "--bots", "1", NULL };
    size_t cap = (size_t)n * 160 + (first ? strlen(first) : 0) + 16, len = 0;
    char *json = malloc(cap), path[600], id[80];
    int rc = -1;

    if (json == NULL)
        return -1;
    len += (size_t)snprintf(json, cap, "[%s", first ? first : "");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(json + len, cap - len,
                                "%s{\"id\":\"" FLEET_ID "\",\"name\":\"m%d\",\"provider\":\"sim\","
                                "\"auto_start\":false}", i || first ? "," : "", i, i);
    snprintf(json + len, cap - len, "]");
    if (h_setup(p, json) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/var", p->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/var/instances", p->dir);
    mkdir(path, 0700);
    for (int i = 0; i < n; i++) {
        FILE *f;
        snprintf(id, sizeof(id), FLEET_ID, i);
        snprintf(path, sizeof(path), "%s/var/instances/%s.bot.db", p->dir, id);
        if ((f = fopen(path, "w")) == NULL)
            goto out;
        fclose(f);
    }
    rc = h_start(p, extra) == 0 ? 0 : -1;
out:
    free(json);
    return rc;
}

/* A fleet whose /metrics text (about 3 KB an instance with the longest
 * ids) is larger than a fixed bound of a few hundred KiB: the scrape must
 * answer for all of them, not 500. */
#define BIG_FLEET 120

static int setup_big_fleet(void **state)
{
    struct myna_proc *p = calloc(1, sizeof(*p));

    *state = p;
    return p && start_fleet(p, BIG_FLEET, NULL) == 0 ? 0 : -1;
}

static void test_metrics_cover_a_big_fleet(void **state)
{
    struct myna_proc *p = *state;
    size_t cap = 4u << 20;
    char *text = malloc(cap), url[200], want[200];

    assert_non_null(text);
    snprintf(url, sizeof(url), "%s/metrics", p->admin_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, text, cap), 200);
    assert_true(strlen(text) > 256 * 1024);  /* past the bound it once had */
    for (int i = 0; i < BIG_FLEET; i += BIG_FLEET - 1) {
        snprintf(want, sizeof(want), "myna_bot_turns_pending{instance=\"" FLEET_ID "\"} 0\n", i);
        assert_non_null(strstr(text, want));
    }
    free(text);
}

/* A scrape reads the bots' stores a slice per loop turn. The first scrape
 * of 120 new stores (each gets its schema) takes most of a second here; a
 * webhook posted meanwhile is answered before the scrape is, not behind it. */
static int setup_fleet_and_alpha(void **state)
{
    struct myna_proc *p = calloc(1, sizeof(*p));

    *state = p;
    return p && start_fleet(p, BIG_FLEET, INSTANCE("alpha", "100200300")) == 0 ? 0 : -1;
}

/* 1 once the scrape has given the first store its schema. */
static int first_store_read(void *arg)
{
    const struct myna_proc *p = arg;
    char path[600], id[80];
    struct stat st;

    snprintf(id, sizeof(id), FLEET_ID, 0);
    snprintf(path, sizeof(path), "%s/var/instances/%s.bot.db", p->dir, id);
    return stat(path, &st) == 0 && st.st_size > 0;
}

static void test_webhooks_answered_during_a_scrape(void **state)
{
    struct myna_proc *p = *state;
    char url[200];
    int64_t hook_ms, scrape_ms = 0;
    int done[2], status;
    pid_t scraper;

    snprintf(url, sizeof(url), "%s/metrics", p->admin_url);
    assert_int_equal(pipe(done), 0);
    scraper = fork();
    assert_true(scraper >= 0);
    if (scraper == 0) {  /* answered 200: exit 0, and when it was answered */
        int ok = h_http("GET", url, NULL, 0, NULL, NULL, 0) == 200;
        int64_t at = now_ms();
        _exit(write(done[1], &at, sizeof(at)) == (ssize_t)sizeof(at) && ok ? 0 : 1);
    }
    close(done[1]);
    assert_true(h_wait(first_store_read, p, 10000));  /* the scrape is under way */
    post_text(p, "100200300", "wamid.SLICE1", "hi");  /* answered 200 */
    hook_ms = now_ms();
    assert_int_equal(read(done[0], &scrape_ms, sizeof(scrape_ms)), (ssize_t)sizeof(scrape_ms));
    close(done[0]);
    assert_int_equal(waitpid(scraper, &status, 0), scraper);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(hook_ms < scrape_ms);  /* the webhook did not wait for the scrape */
    assert_int_equal(h_db_count(p, "alpha", "inbox", NULL), 1);
}

/* SIGTERM while a scrape is under way: the drain waits for it, and the
 * scraper gets its whole answer before the master exits 0. The drain's
 * deadline is raised past what the scrape can take on a loaded machine
 * (the first scrape gives 120 stores their schema: tens of seconds there,
 * so the scraper has no deadline of its own). */
static int setup_big_fleet_long_drain(void **state)
{
    int rc;

    setenv("MYNA_DRAIN_TIMEOUT_MS", "120000", 1);
    rc = setup_big_fleet(state);
    unsetenv("MYNA_DRAIN_TIMEOUT_MS");
    return rc;
}

/* GET /metrics, read to the connection's end: 0 when the whole answer came
 * (its Content-Length) with want in it. */
static int scrape_whole(const struct myna_proc *p, const char *want)
{
    const char *req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    size_t cap = 4u << 20, len = 0;
    char *text = malloc(cap), *body, *cl;
    int fd = h_connect(p->admin_url);
    ssize_t n = 1;

    if (text == NULL || fd < 0 || write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return 1;
    while (n > 0 && len < cap - 1)
        if ((n = read(fd, text + len, cap - 1 - len)) > 0)
            len += (size_t)n;
    text[len] = '\0';
    if ((body = strstr(text, "\r\n\r\n")) == NULL ||
        (cl = strstr(text, "Content-Length: ")) == NULL || cl > body)
        return 1;
    body += 4;
    return strtoul(cl + 16, NULL, 10) == (unsigned long)(len - (size_t)(body - text)) &&
           strstr(body, want) ? 0 : 1;
}

static void test_stop_answers_the_scrape_under_way(void **state)
{
    struct myna_proc *p = *state;
    char want[200];
    int status;
    pid_t scraper;

    snprintf(want, sizeof(want), "myna_bot_turns_pending{instance=\"" FLEET_ID "\"} 0\n",
             BIG_FLEET - 1);
    scraper = fork();
    assert_true(scraper >= 0);
    if (scraper == 0)
        _exit(scrape_whole(p, want));
    assert_true(h_wait(first_store_read, p, 10000));
    assert_int_equal(h_stop(p, SIGTERM), 0);
    assert_int_equal(waitpid(scraper, &status, 0), scraper);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* 1 if the running bot of id has arg among its arguments. */
static int bot_has_arg(const struct myna_proc *p, const char *id, const char *arg)
{
    char path[400], args[8192];
    FILE *fp;
    size_t n;
    int found = 0;

    snprintf(path, sizeof(path), "/proc/%ld/cmdline", bot_pid(p, id));
    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    n = fread(args, 1, sizeof(args) - 1, fp);
    fclose(fp);
    args[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(args + i) + 1)  /* NUL-separated */
        found |= strcmp(args + i, arg) == 0;
    return found;
}

/* Writes text as dir/myna.conf; 0 or -1. */
static int write_conf(const struct myna_proc *p, const char *text)
{
    char path[400];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/myna.conf", p->dir);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    fputs(text, fp);
    return fclose(fp) == 0 ? 0 : -1;
}

/* A master started with a config file. */
static int setup_config(void **state)
{
    struct myna_proc *p = calloc(1, sizeof(*p));
    char path[400];
    const char *extra[] = { "--bots", "1", "--config", path, NULL };

    *state = p;
    if (p == NULL || h_setup(p, both) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/myna.conf", p->dir);
    return write_conf(p, "log_level = info\nbot_store_sync = full\n") == 0 &&
                   h_start(p, extra) == 0
               ? 0
               : -1;
}

/* A bot that restarts takes the master's settings, not the config file as
 * it is now: an edit (here a typo, and a data directory elsewhere) waits
 * for the master's restart and cannot stop the bot. SIGHUP's new log level
 * reaches the bots started after it; another option it changed is logged
 * as waiting for a restart. */
static void test_bot_takes_the_masters_settings(void **state)
{
    struct myna_proc *p = *state;
    struct want w = { p, "alpha", NULL, 0, 0 };
    char ready[96];

    wait_up(p, "alpha");
    assert_true(bot_has_arg(p, "alpha", "--bot-store-sync=full"));  /* from the file */
    assert_true(bot_has_arg(p, "alpha", "--config="));
    assert_int_equal(write_conf(p, "log_levle = debug\ndata = /nonexistent/elsewhere\n"
                                   "bot_store_sync = normal\n"),
                     0);
    w.not_pid = bot_pid(p, "alpha");
    assert_int_equal(kill((pid_t)w.not_pid, SIGKILL), 0);
    assert_true(h_wait(new_bot, &w, 10000));
    w.text = ready;
    snprintf(ready, sizeof(ready), "pid=%ld event=bot_ready instance=alpha", bot_pid(p, "alpha"));
    assert_true(h_wait(in_bot_log, &w, 10000));
    assert_false(h_log_contains(p, "event=bot_config_error"));
    assert_true(bot_has_arg(p, "alpha", "--bot-store-sync=full"));
    post_text(p, "100200300", "wamid.sup-conf-1", "when are you open");
    w.text = "event=turn_answered instance=alpha";
    assert_true(h_wait(in_bot_log, &w, 15000));

    /* a reload that fails keeps everything; one that works gives the next
     * bots its log level */
    assert_int_equal(kill(p->pid, SIGHUP), 0);
    w.text = "event=reload_failed";
    assert_true(h_wait(in_log, &w, 10000));
    assert_int_equal(write_conf(p, "log_level = debug\n"), 0);
    assert_int_equal(kill(p->pid, SIGHUP), 0);
    w.text = "event=reloaded log_level=debug";
    assert_true(h_wait(in_log, &w, 10000));
    /* bot_store_sync left the file: back to its default, which waits for
     * a restart, and says so; log_level does not */
    assert_true(h_log_contains(p, "event=reload_needs_restart option=bot_store_sync"));
    assert_false(h_log_contains(p, "event=reload_needs_restart option=log_level"));
    assert_false(h_log_contains(p, "event=reload_needs_restart option=data"));
    w.not_pid = bot_pid(p, "beta");
    w.id = "beta";
    assert_int_equal(kill((pid_t)w.not_pid, SIGKILL), 0);
    assert_true(h_wait(new_bot, &w, 10000));
    /* its arguments are the bot's once it has exec'd: till then the child
     * is a copy of the master, command line and all (myna_bot_up is 1 from
     * the fork) */
    w.text = ready;
    snprintf(ready, sizeof(ready), "pid=%ld event=bot_ready instance=beta", bot_pid(p, "beta"));
    assert_true(h_wait(in_bot_log, &w, 10000));
    assert_true(bot_has_arg(p, "beta", "--log-level=debug"));
    assert_true(bot_has_arg(p, "beta", "--bot-store-sync=full"));
}

/* A SIGHUP for the bots too (a terminal that closes sends it to the whole
 * process group, as Ctrl-C sends SIGINT; `killall -HUP myna` after a
 * logrotate) is the master's to act on: the bot runs on, and its master
 * stops it as usual. */
static void test_bot_outlives_sighup(void **state)
{
    struct myna_proc *p = *state;
    char want[128];
    long pid;

    wait_up(p, "alpha");
    pid = bot_pid(p, "alpha");
    assert_true(pid > 0);
    assert_int_equal(kill((pid_t)pid, SIGHUP), 0);
    assert_int_equal(kill((pid_t)pid, SIGINT), 0);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    assert_false(master_log_contains(p, "instance=alpha code=-1 signal=1 "));
    assert_false(master_log_contains(p, "instance=alpha code=-1 signal=2 "));
    snprintf(want, sizeof(want), "pid=%ld event=stopping instance=alpha signal=15", pid);
    assert_true(h_bot_log_contains(p, "alpha", want));
}

/* One raw connection to the admin listener, kept open across the master's
 * SIGTERM (it stops accepting new ones, not serving those open). */
static int admin_connect(const struct myna_proc *p)
{
    int fd = h_connect(p->admin_url);

    assert_true(fd >= 0);
    return fd;
}

/* Sends one request without a body on fd and returns its answer's status
 * (the answer is read in full: its Content-Length), -1 on failure. */
static int admin_raw(int fd, const char *method, const char *path)
{
    char req[512], resp[8192];
    size_t got = 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Length: 0\r\n\r\n", method, path, ADMIN_TOKEN);
    const char *end, *cl;
    int status;

    if (write(fd, req, (size_t)n) != n)
        return -1;
    for (;;) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        resp[got] = '\0';
        if ((end = strstr(resp, "\r\n\r\n")) != NULL &&
            ((cl = strcasestr(resp, "Content-Length:")) == NULL || cl > end ||
             got >= (size_t)(end + 4 - resp) + strtoul(cl + 15, NULL, 10)))
            break;
        if (got >= sizeof(resp) - 1)
            return -1;
    }
    return sscanf(resp, "HTTP/1.1 %d", &status) == 1 ? status : -1;
}

/* A restart asked for while the master stops its bots (on a connection
 * that was open before the SIGTERM) cannot be done: the server is going
 * away, which is 503, not an internal error. */
static void test_restart_while_the_master_stops_is_503(void **state)
{
    struct myna_proc *p = *state;
    struct want stopped = { p, "beta", "event=bot_stopped instance=beta", 0, 0 };
    long alpha;
    int fd;

    wait_up(p, "alpha");
    wait_up(p, "beta");
    fd = admin_connect(p);
    assert_int_equal(admin_raw(fd, "GET", "/admin/whatsapp/instances/alpha/status"), 200);
    /* alpha is frozen: it takes the whole 5 s before its SIGKILL to stop */
    alpha = bot_pid(p, "alpha");
    assert_int_equal(kill((pid_t)alpha, SIGSTOP), 0);
    assert_int_equal(kill(p->pid, SIGTERM), 0);
    assert_true(h_wait(in_log, &stopped, 10000));  /* the bots are being stopped */
    assert_int_equal(admin_raw(fd, "POST", "/admin/whatsapp/instances/alpha/restart"), 503);
    assert_false(h_log_contains(p, "event=admin_failed"));
    close(fd);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    assert_true(h_log_contains(p, "event=bot_killed instance=alpha"));
}

/* Copies the file from to to (mode 0755): 0 or -1. */
static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    ssize_t r = -1;

    if (in >= 0 && (out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755)) >= 0)
        while ((r = read(in, buf, sizeof(buf))) > 0)
            if (write(out, buf, (size_t)r) != r) {
                r = -1;
                break;
            }
    if (in >= 0 && out >= 0 && r == 0)
        rc = 0;
    if (out >= 0 && close(out) != 0)
        rc = -1;
    if (in >= 0)
        close(in);
    return rc;
}

/* The master runs from its own copy of myna, dir/bin/myna, which the case
 * replaces on disk. */
static int setup_copy(void **state)
{
    const char *extra[] = { "--bots", "1", NULL };
    struct myna_proc *p = calloc(1, sizeof(*p));
    char bin[300];

    *state = p;
    if (p == NULL || h_setup(p, both) != 0)
        return -1;
    snprintf(bin, sizeof(bin), "%s/bin", p->dir);
    snprintf(p->bin, sizeof(p->bin), "%s/bin/myna", p->dir);
    return mkdir(bin, 0700) == 0 && copy_file(MYNA_BIN, p->bin) == 0 && h_start(p, extra) == 0
               ? 0
               : -1;
}

/* 1 if pid runs the same program file as the master (the inode behind
 * /proc/PID/exe, whatever its path says now). */
static int same_program(const struct myna_proc *p, long pid)
{
    char path[64];
    struct stat bot, master;

    snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
    if (stat(path, &bot) != 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/exe", (long)p->pid);
    return stat(path, &master) == 0 && bot.st_dev == master.st_dev &&
           bot.st_ino == master.st_ino;
}

/* An upgrade copies a new binary over the old one before the service is
 * restarted; until it is, a bot the master starts again (here after a
 * SIGKILL) runs the master's own program, not what is on the disk now:
 * first another program in its place, then nothing at all. */
static void test_restarted_bot_runs_its_masters_program(void **state)
{
    struct myna_proc *p = *state;
    struct want back = { p, "alpha", NULL, 0, 0 };
    struct want answered = { p, "alpha", NULL, 0, 0 };
    char script[1200], fresh[320], marker[300], comm[32] = "", path[64], ready[96];
    FILE *fp;

    wait_up(p, "alpha");
    back.not_pid = bot_pid(p, "alpha");
    assert_true(same_program(p, back.not_pid));
    /* the path now holds a program that would say it ran, and fail as a
     * bot of another version can (2: a flag it does not know) */
    snprintf(marker, sizeof(marker), "%s/marker", p->dir);
    snprintf(fresh, sizeof(fresh), "%s/bin/myna.new", p->dir);
    snprintf(script, sizeof(script), "#!/bin/sh\necho \"$@\" >> '%s'\nexit 2\n", marker);
    assert_non_null(fp = fopen(fresh, "w"));
    fputs(script, fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(fresh, 0755), 0);
    assert_int_equal(rename(fresh, p->bin), 0);

    assert_int_equal(kill((pid_t)back.not_pid, SIGKILL), 0);
    if (!h_wait(new_bot, &back, 10000))
        fail_msg("the bot of alpha did not come back after its binary was replaced");
    assert_true(same_program(p, bot_pid(p, "alpha")));
    assert_int_equal(access(marker, F_OK), -1);
    assert_false(h_log_contains(p, "event=bot_config_error instance=alpha"));
    /* it is a bot of this master: ready, named as its master is, and it
     * answers a customer */
    snprintf(ready, sizeof(ready), "pid=%ld event=bot_ready instance=alpha",
             bot_pid(p, "alpha"));
    answered.text = ready;
    assert_true(h_wait(in_bot_log, &answered, 10000));
    snprintf(path, sizeof(path), "/proc/%ld/comm", bot_pid(p, "alpha"));
    assert_non_null(fp = fopen(path, "r"));
    assert_non_null(fgets(comm, sizeof(comm), fp));
    fclose(fp);
    assert_string_equal(comm, "myna\n");
    post_text(p, "100200300", "wamid.sup-upgrade-1", "when are you open");
    answered.text = "event=turn_answered instance=alpha";
    assert_true(h_wait(in_bot_log, &answered, 15000));

    /* nothing at the path (a copy half done, a package removed) */
    assert_int_equal(unlink(p->bin), 0);
    back.not_pid = bot_pid(p, "alpha");
    assert_int_equal(kill((pid_t)back.not_pid, SIGKILL), 0);
    if (!h_wait(new_bot, &back, 10000))
        fail_msg("the bot of alpha did not come back after its binary was removed");
    assert_true(same_program(p, bot_pid(p, "alpha")));
    assert_int_equal(access(marker, F_OK), -1);
    assert_true(h_metric(p, "myna_bot_up{instance=\"beta\"}") == 1);  /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_bot_logs_to_its_own_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_bot_is_back_within_2s, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_error_is_a_crash_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bot_outlives_sighup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_while_the_master_stops_is_503, setup_admin,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bot_takes_the_masters_settings, setup_config,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_memory_limit_restarts_gracefully, setup_memory,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_frozen_bot_is_killed_and_restarted, setup_heartbeat,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metrics_cover_a_big_fleet, setup_big_fleet, teardown),
        cmocka_unit_test_setup_teardown(test_webhooks_answered_during_a_scrape,
                                        setup_fleet_and_alpha, teardown),
        cmocka_unit_test_setup_teardown(test_stop_answers_the_scrape_under_way,
                                        setup_big_fleet_long_drain, teardown),
        cmocka_unit_test_setup_teardown(test_restarted_bot_runs_its_masters_program, setup_copy,
                                        teardown),
    };

    if (getenv("MYNA_TEST_FILTER"))  /* one case: MYNA_TEST_FILTER=test_name (globs) */
        cmocka_set_test_filter(getenv("MYNA_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
