/* test_alerts.c - alerts end to end, with the real binary: an access token
 * the Graph API refuses (error 190), an account it says is locked (error
 * 131031), an LLM that fails until its circuit opens, and a bot in a crash
 * loop are each logged (event=alert), shown in
 * the instance's status ("needs_attention", "crash_loop") and on /metrics,
 * and POSTed as JSON to alert_webhook, which is a small HTTP receiver in
 * this test (a thread on a loopback socket that keeps every body). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define ADMIN_TOKEN "myna_AlertsTokenForTheEndToEndTestsOnly012345678"
#define SECRET "alerts-app-secret-0123456789"
#define TOK_PNID "100200300"
#define BRAIN_PNID "400500600"
#define RECV_MAX 32

/* ---- the alert receiver --------------------------------------------------- */

struct receiver {
    int fd;
    int port;
    pthread_t th;
    atomic_int stop;
    pthread_mutex_t mu;
    char *bodies[RECV_MAX];
    char content_type[RECV_MAX][64];
    int n;
};

/* Reads one request (headers, then Content-Length bytes of body) within 5 s;
 * the body is malloc'd, NULL if the request was cut short. */
static char *read_request(int fd, char *ctype, size_t ctype_cap)
{
    char buf[16384];
    size_t len = 0, need = 0;
    const char *end = NULL;
    char *body = NULL;

    while (len < sizeof(buf) - 1) {
        struct pollfd p = { fd, POLLIN, 0 };
        ssize_t r;
        if (poll(&p, 1, 5000) <= 0 || (r = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
            return NULL;
        len += (size_t)r;
        buf[len] = '\0';
        if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            const char *ct = strcasestr(buf, "\r\nContent-Type:");
            need = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
            if (ct) {
                size_t k = 0;
                for (ct += 15; *ct == ' '; ct++)
                    ;
                while (ct[k] && ct[k] != '\r' && k + 1 < ctype_cap) {
                    ctype[k] = ct[k];
                    k++;
                }
                ctype[k] = '\0';
            }
        }
        if (end && len >= need) {
            size_t off = (size_t)(end + 4 - buf);
            if ((body = malloc(need - off + 1)) != NULL) {
                memcpy(body, buf + off, need - off);
                body[need - off] = '\0';
            }
            return body;
        }
    }
    return NULL;
}

static void *receiver_main(void *arg)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    struct receiver *rv = arg;

    while (!atomic_load(&rv->stop)) {
        struct pollfd p = { rv->fd, POLLIN, 0 };
        char ctype[64] = "";
        char *body;
        int c;
        if (poll(&p, 1, 100) <= 0 || (c = accept(rv->fd, NULL, NULL)) < 0)
            continue;
        if ((body = read_request(c, ctype, sizeof(ctype))) != NULL) {
            ssize_t w = write(c, ok, sizeof(ok) - 1);
            (void)w;
            pthread_mutex_lock(&rv->mu);
            if (rv->n < RECV_MAX) {
                snprintf(rv->content_type[rv->n], sizeof(rv->content_type[0]), "%s", ctype);
                rv->bodies[rv->n++] = body;
                body = NULL;
            }
            pthread_mutex_unlock(&rv->mu);
            free(body);
        }
        close(c);
    }
    return NULL;
}

static int receiver_start(struct receiver *rv)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    memset(rv, 0, sizeof(*rv));
    pthread_mutex_init(&rv->mu, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((rv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(rv->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(rv->fd, 16) != 0 ||
        getsockname(rv->fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    rv->port = ntohs(sa.sin_port);
    return pthread_create(&rv->th, NULL, receiver_main, rv) == 0 ? 0 : -1;
}

static void receiver_stop(struct receiver *rv)
{
    atomic_store(&rv->stop, 1);
    pthread_join(rv->th, NULL);
    close(rv->fd);
    for (int i = 0; i < rv->n; i++)
        free(rv->bodies[i]);
    pthread_mutex_destroy(&rv->mu);
}

/* ---- fixture ------------------------------------------------------------------ */

struct fx {
    struct myna_proc p;
    struct h_fake graph, llm;
    struct receiver rv;
    char resp[64 * 1024];
};

#define CLOUD(id, pnid, more)                                                                 \
    "{\"id\":\"" id "\",\"name\":\"" id "\",\"provider\":\"cloud\",\"phone_number_id\":\"" pnid \
    "\",\"access_token\":\"tok-alerts\",\"app_secret\":\"" SECRET "\",\"verify_token\":\"v\"," \
    "\"graph_url\":\"%s/v25.0\",\"batch\":{\"window_ms\":100},"                               \
    "\"faq\":[{\"q\":[\"when are you open\"],\"a\":\"We are open 9-18.\"}],"                  \
    "\"fallback_text\":\"Sorry.\"" more "}"

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *graph_args[] = { "--listen", "127.0.0.1:0", "--token", "tok-alerts", NULL };
    const char *llm_args[] = { "--listen", "127.0.0.1:0", NULL };
    char hook[128], json[4096], path[400];
    const char *extra[] = { "--bots", "1", "--alert-webhook", hook, "--send-hold-ms", "2000",
                            NULL };
    FILE *fp;
    int rc;

    *state = f;
    if (f == NULL || receiver_start(&f->rv) != 0 || h_setup(&f->p, NULL) != 0 ||
        h_fake_start(&f->graph, f->p.dir, "graph", MYNA_FAKE_GRAPH, graph_args) != 0 ||
        h_fake_start(&f->llm, f->p.dir, "llm", MYNA_FAKE_LLM, llm_args) != 0)
        return -1;
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/hooks/myna", f->rv.port);
    snprintf(json, sizeof(json),
             "[" CLOUD("tok", TOK_PNID, "") "," CLOUD("brain", BRAIN_PNID,
                                                   ",\"llm\":{\"url\":\"%s/v1\","
                                                   "\"model\":\"fake-model\"}")
             ",{\"id\":\"sim\",\"name\":\"sim\",\"provider\":\"sim\"}]",
             f->graph.url, f->graph.url, f->llm.url);
    snprintf(path, sizeof(path), "%s/instances.json", f->p.dir);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    fputs(json, fp);
    fclose(fp);
    setenv("MYNA_ADMIN_TOKEN", ADMIN_TOKEN, 1);
    setenv("MYNA_ALERT_WEBHOOK", hook, 1);  /* as well as the flag, which wins */
    rc = h_start(&f->p, extra);
    unsetenv("MYNA_ADMIN_TOKEN");
    unsetenv("MYNA_ALERT_WEBHOOK");
    return rc;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f) {
        if (f->p.pid > 0)
            assert_int_equal(h_stop(&f->p, SIGTERM), 0);
        h_fake_stop(&f->llm);
        h_fake_stop(&f->graph);
        receiver_stop(&f->rv);
        h_cleanup(&f->p);
        free(f);
    }
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static long api(struct fx *f, const char *method, const char *path)
{
    char url[512];
    const char *h[] = { "Authorization: Bearer " ADMIN_TOKEN, NULL };

    snprintf(url, sizeof(url), "%s%s", f->p.admin_url, path);
    return h_http(method, url, NULL, 0, h, f->resp, sizeof(f->resp));
}

/* id's status, parsed (the caller deletes it); NULL if not 200. */
static cJSON *status_of(struct fx *f, const char *id)
{
    char path[200];

    snprintf(path, sizeof(path), "/admin/whatsapp/instances/%s/status", id);
    return api(f, "GET", path) == 200 ? cJSON_Parse(f->resp) : NULL;
}

/* The status's needs_attention as "a,b," ("" when empty, "?" when missing). */
static void attention_of(struct fx *f, const char *id, char *out, size_t cap)
{
    cJSON *o = status_of(f, id);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "needs_attention"), *v;
    size_t n = 0;

    snprintf(out, cap, "%s", cJSON_IsArray(arr) ? "" : "?");
    cJSON_ArrayForEach(v, arr) {
        if (cJSON_IsString(v) && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s,", v->valuestring);
    }
    cJSON_Delete(o);
}

struct want {
    struct fx *f;
    const char *id;
    const char *text;
    double value;
};

static int attention_is(void *arg)
{
    struct want *w = arg;
    char now[200];

    attention_of(w->f, w->id, now, sizeof(now));
    return strcmp(now, w->text) == 0;
}

static int bot_up(void *arg)
{
    struct want *w = arg;
    char name[96];

    snprintf(name, sizeof(name), "myna_bot_up{instance=\"%s\"}", w->id);
    return h_metric(&w->f->p, name) == 1;
}

static int in_log(void *arg)
{
    struct want *w = arg;

    return h_log_contains(&w->f->p, w->text);
}

/* The alerts the receiver got for instance id of this kind. */
static int alerts_received(struct fx *f, const char *id, const char *kind)
{
    int k = 0;

    pthread_mutex_lock(&f->rv.mu);
    for (int i = 0; i < f->rv.n; i++) {
        cJSON *o = cJSON_Parse(f->rv.bodies[i]);
        const cJSON *inst = cJSON_GetObjectItemCaseSensitive(o, "instance");
        const cJSON *kd = cJSON_GetObjectItemCaseSensitive(o, "kind");
        const cJSON *detail = cJSON_GetObjectItemCaseSensitive(o, "detail");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
        if (cJSON_IsString(inst) && strcmp(inst->valuestring, id) == 0 && cJSON_IsString(kd) &&
            strcmp(kd->valuestring, kind) == 0 && cJSON_IsString(detail) &&
            detail->valuestring[0] && cJSON_IsString(ts) && strlen(ts->valuestring) == 24 &&
            ts->valuestring[23] == 'Z' && strcmp(f->rv.content_type[i], "application/json") == 0)
            k++;
        cJSON_Delete(o);
    }
    pthread_mutex_unlock(&f->rv.mu);
    return k;
}

static int alert_received(void *arg)
{
    struct want *w = arg;

    return alerts_received(w->f, w->id, w->text) > 0;
}

static void wait_up(struct fx *f, const char *id)
{
    struct want w = { f, id, NULL, 0 };

    if (!h_wait(bot_up, &w, 10000))
        fail_msg("the bot of %s did not start", id);
}

static void post_text(struct fx *f, const char *id, const char *pnid, const char *from,
                      const char *wamid, const char *text)
{
    char body[2048];
    int n = snprintf(body, sizeof(body),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                     "{\"display_phone_number\":\"15550000000\",\"phone_number_id\":\"%s\"},"
                     "\"contacts\":[{\"profile\":{\"name\":\"Ann\"},\"wa_id\":\"%s\"}],"
                     "\"messages\":[{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%ld\","
                     "\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]},\"field\":\"messages\"}]}]}",
                     pnid, from, from, wamid, (long)time(NULL), text);

    assert_int_equal(h_post_signed(f->p.public_url, id, SECRET, body, (size_t)n, NULL, 0), 200);
}

static void fault(const struct h_fake *fk, const char *json)
{
    char url[256];

    snprintf(url, sizeof(url), "%s/_fake/faults", fk->url);
    assert_int_equal(h_http("POST", url, json, strlen(json), NULL, NULL, 0), 200);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_invalid_token_is_shown_alerted_and_cleared(void **state)
{
    struct fx *f = *state;
    struct want on = { f, "tok", "invalid_token,", 0 };
    struct want off = { f, "tok", "", 0 };
    struct want got = { f, "tok", "invalid_token", 0 };
    struct want cleared = { f, "tok", "event=bot_attention_cleared instance=tok "
                                      "reason=invalid_token by=bot", 0 };
    cJSON *st;

    wait_up(f, "tok");
    assert_true(attention_is(&off));
    /* Meta refuses the token for the reply */
    fault(&f->graph, "{\"code\":190,\"http\":401,\"count\":1}");
    post_text(f, "tok", TOK_PNID, "15551230001", "wamid.alert-tok-1", "when are you open");
    if (!h_wait(attention_is, &on, 15000)) {
        attention_of(f, "tok", f->resp, 200);
        fail_msg("needs_attention of tok is [%s]", f->resp);
    }
    assert_non_null(st = status_of(f, "tok"));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(st, "crash_loop")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "state")->valuestring, "running");
    cJSON_Delete(st);
    assert_true(h_log_contains(&f->p, "event=bot_needs_attention instance=tok "
                                      "reason=invalid_token"));
    assert_true(h_log_contains(&f->p, "event=alert instance=tok kind=invalid_token detail="));
    assert_true(h_wait(alert_received, &got, 10000));
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"tok\",reason=\"invalid_token\"}") == 1);
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"tok\",reason=\"llm_circuit_open\"}") == 0);
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"brain\",reason=\"invalid_token\"}") == 0);
    /* the list shows it too */
    assert_int_equal(api(f, "GET", "/admin/whatsapp/instances"), 200);
    assert_non_null(strstr(f->resp, "\"needs_attention\":[\"invalid_token\"]"));
    /* after the hold, the token is taken again (the replies go): cleared, not alerted */
    post_text(f, "tok", TOK_PNID, "15551230002", "wamid.alert-tok-2", "when are you open");
    assert_true(h_wait(attention_is, &off, 15000));
    assert_true(h_wait(in_log, &cleared, 5000));
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"tok\",reason=\"invalid_token\"}") == 0);
    assert_int_equal(alerts_received(f, "tok", "invalid_token"), 1);
    pthread_mutex_lock(&f->rv.mu);
    assert_int_equal(f->rv.n, 1);  /* nothing else alerted */
    pthread_mutex_unlock(&f->rv.mu);
}

/* The reply waits out the lock in the outbox, tried again when the hold
 * (--send-hold-ms) is over. */
static void test_account_locked_is_shown_alerted_and_cleared(void **state)
{
    struct fx *f = *state;
    struct want on = { f, "tok", "account_locked,", 0 };
    struct want off = { f, "tok", "", 0 };
    struct want got = { f, "tok", "account_locked", 0 };
    struct want cleared = { f, "tok", "event=bot_attention_cleared instance=tok "
                                      "reason=account_locked by=bot", 0 };

    wait_up(f, "tok");
    /* Meta says the account is locked when the reply goes */
    fault(&f->graph, "{\"code\":131031,\"http\":403,\"count\":1}");
    post_text(f, "tok", TOK_PNID, "15551230003", "wamid.lock-tok-1", "when are you open");
    if (!h_wait(attention_is, &on, 15000)) {
        attention_of(f, "tok", f->resp, 200);
        fail_msg("needs_attention of tok is [%s]", f->resp);
    }
    assert_true(h_log_contains(&f->p, "event=needs_attention instance=tok reason=account_locked "
                                      "code=131031"));
    assert_true(h_log_contains(&f->p, "event=bot_needs_attention instance=tok "
                                      "reason=account_locked"));
    assert_true(h_log_contains(&f->p, "event=alert instance=tok kind=account_locked detail="));
    assert_true(h_wait(alert_received, &got, 10000));
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"tok\",reason=\"account_locked\"}") == 1);
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"tok\",reason=\"invalid_token\"}") == 0);
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"brain\",reason=\"account_locked\"}") == 0);
    assert_int_equal(api(f, "GET", "/admin/whatsapp/instances"), 200);
    assert_non_null(strstr(f->resp, "\"needs_attention\":[\"account_locked\"]"));
    /* the reply is kept for later, not a dead letter */
    assert_int_equal(h_db_count(&f->p, "tok", "outbox", "state = 0 AND error_code = 131031"), 1);
    assert_int_equal(h_db_count(&f->p, "tok", "outbox", "state = 3"), 0);
    /* Meta takes sends again (the fault is used up): at its retry the reply
     * goes, which clears the attention without another alert */
    assert_true(h_wait(attention_is, &off, 15000));
    assert_true(h_wait(in_log, &cleared, 5000));
    assert_int_equal(h_db_count(&f->p, "tok", "outbox", "state = 2"), 1);
    assert_int_equal(h_db_count(&f->p, "tok", "outbox", "state <> 2"), 0);
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"tok\",reason=\"account_locked\"}") == 0);
    assert_int_equal(alerts_received(f, "tok", "account_locked"), 1);
    pthread_mutex_lock(&f->rv.mu);
    assert_int_equal(f->rv.n, 1);  /* nothing else alerted */
    pthread_mutex_unlock(&f->rv.mu);
}

/* How many of the NUL-separated strings of /proc/<pid>/<file> (environ,
 * cmdline) start with prefix; -1 if it cannot be read. */
static int proc_has(long pid, const char *file, const char *prefix)
{
    static char buf[1 << 16];
    char path[64];
    size_t n, at = 0;
    int found = 0;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%ld/%s", pid, file);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    while (at < n) {
        found += strncmp(buf + at, prefix, strlen(prefix)) == 0;
        at += strlen(buf + at) + 1;
    }
    return found;
}

static int environ_has(long pid, const char *prefix)
{
    return proc_has(pid, "environ", prefix);
}

/* 1 once the forked child of pid runs the bot's program: until its execve it
 * is a copy of the master, environment and all. */
static int bot_execed(void *arg)
{
    return proc_has(*(long *)arg, "cmdline", "--heartbeat-fd") == 1;
}

/* What only the master may know does not reach a bot's environment: the
 * first admin token and the alert webhook (a bot gets its settings as
 * flags). */
static void test_bots_do_not_get_the_masters_secrets(void **state)
{
    struct fx *f = *state;
    cJSON *st;
    long pid;

    wait_up(f, "tok");
    st = status_of(f, "tok");
    assert_non_null(st);
    pid = (long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(st, "pid"));
    cJSON_Delete(st);
    assert_true(pid > 0);
    assert_true(h_wait(bot_execed, &pid, 10000));
    assert_int_equal(environ_has((long)f->p.pid, "MYNA_ADMIN_TOKEN="), 1);
    assert_int_equal(environ_has((long)f->p.pid, "MYNA_ALERT_WEBHOOK="), 1);
    assert_int_equal(environ_has(pid, "MYNA_ADMIN_TOKEN="), 0);
    assert_int_equal(environ_has(pid, "MYNA_ALERT_WEBHOOK="), 0);
    assert_true(environ_has(pid, "PATH=") >= 0);
}

static void test_llm_circuit_open_is_shown_and_alerted(void **state)
{
    struct fx *f = *state;
    struct want on = { f, "brain", "llm_circuit_open,", 0 };
    struct want got = { f, "brain", "llm_circuit_open", 0 };

    wait_up(f, "brain");
    /* the model is down: five customers' turns fail (after their retries)
     * and the fifth failure opens the circuit */
    fault(&f->llm, "{\"status\":500,\"count\":-1}");
    for (int i = 0; i < 5; i++) {
        char from[32], wamid[48];
        snprintf(from, sizeof(from), "1555123100%d", i);
        snprintf(wamid, sizeof(wamid), "wamid.alert-brain-%d", i);
        post_text(f, "brain", BRAIN_PNID, from, wamid, "is anyone there");
    }
    if (!h_wait(attention_is, &on, 30000)) {
        attention_of(f, "brain", f->resp, 200);
        fail_msg("needs_attention of brain is [%s]", f->resp);
    }
    assert_true(h_bot_log_contains(&f->p, "brain", "event=llm_circuit_open"));
    assert_true(h_log_contains(&f->p, "event=alert instance=brain kind=llm_circuit_open"));
    assert_true(h_wait(alert_received, &got, 10000));
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"brain\",reason=\"llm_circuit_open\"}") == 1);
    /* the bot stays up: customers get the fallback text meanwhile */
    assert_true(h_metric(&f->p, "myna_bot_up{instance=\"brain\"}") == 1);
    assert_int_equal(alerts_received(f, "brain", "llm_circuit_open"), 1);
    /* a crash takes the circuit with it: the new bot starts closed */
    {
        struct want cleared = { f, "brain", "event=bot_attention_cleared instance=brain "
                                            "reason=llm_circuit_open by=exit", 0 };
        struct want none = { f, "brain", "", 0 };
        struct want again = { f, "brain", NULL, 0 };
        cJSON *st = status_of(f, "brain");
        long pid;
        assert_non_null(st);
        pid = (long)cJSON_GetObjectItemCaseSensitive(st, "pid")->valuedouble;
        cJSON_Delete(st);
        assert_true(pid > 0);
        assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
        assert_true(h_wait(in_log, &cleared, 10000));
        assert_true(h_wait(attention_is, &none, 5000));
        assert_true(h_wait(bot_up, &again, 10000));
    }
}

static void test_crash_loop_is_shown_and_alerted(void **state)
{
    struct fx *f = *state;
    struct want on = { f, "sim", "crash_loop,", 0 };
    struct want got = { f, "sim", "crash_loop", 0 };
    char path[400];
    cJSON *st;
    long pid;
    FILE *fp;

    wait_up(f, "sim");
    assert_non_null(st = status_of(f, "sim"));
    pid = (long)cJSON_GetObjectItemCaseSensitive(st, "pid")->valuedouble;
    cJSON_Delete(st);
    /* the simulator's key is damaged: its next bot cannot start (exit 2) */
    snprintf(path, sizeof(path), "%s/var/sim.key", f->p.dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs("damaged", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
    assert_true(h_wait(attention_is, &on, 15000));
    assert_non_null(st = status_of(f, "sim"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "crash_loop")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "state")->valuestring, "crash_loop");
    cJSON_Delete(st);
    assert_true(h_log_contains(&f->p, "event=alert instance=sim kind=crash_loop detail="));
    assert_true(h_wait(alert_received, &got, 10000));
    {   /* the master logs it once it has read the receiver's answer, which
         * goes before the receiver keeps the alert: wait for it */
        struct want delivered = { f, "sim", "event=alert_delivered instance=sim "
                                            "kind=crash_loop status=200 attempt=1", 0 };
        assert_true(h_wait(in_log, &delivered, 10000));
    }
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"sim\",reason=\"crash_loop\"}") == 1);
    assert_true(h_metric(&f->p, "myna_bot_crash_loop{instance=\"sim\"}") == 1);
    assert_int_equal(alerts_received(f, "sim", "crash_loop"), 1);
    /* the others are fine */
    assert_true(h_metric(&f->p, "myna_bot_needs_attention{instance=\"tok\",reason=\"crash_loop\"}") == 0);
}

static void test_bad_webhook_url_is_a_config_error(void **state)
{
    char out[4096];
    const char *args[] = { "serve", "--check-config", "--alert-webhook", "hooks.example.com/x",
                           NULL };

    (void)state;
    assert_int_equal(h_run(args, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "option 'alert_webhook': the value is not an http:// or "
                                "https:// URL"));
    assert_null(strstr(out, "hooks.example.com"));  /* it may hold a secret */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_invalid_token_is_shown_alerted_and_cleared),
        T(test_account_locked_is_shown_alerted_and_cleared),
        T(test_bots_do_not_get_the_masters_secrets),
        T(test_llm_circuit_open_is_shown_and_alerted),
        T(test_crash_loop_is_shown_and_alerted),
        cmocka_unit_test(test_bad_webhook_url_is_a_config_error),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
