/* test_conversation_chaos.c - exactly once under fire: a few hundred customer
 * messages while the bot and the master are killed with SIGKILL at random
 * moments, some of them while the bot has a send in flight (seeded;
 * MYNA_CHAOS_SEED=N repeats the plan of a run). The sender behaves like
 * Meta: a webhook that did not get 200 (the master is down, or died before
 * answering) is posted again until it does. Each contact sends its next
 * message only once the previous one was answered, so every message is a
 * turn of its own and every turn must get exactly one reply: the fake LLM
 * echoes the text, which names the contact and the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SECRET "chaos-app-secret-0123456789"
#define PHONE_ID "481516234200916"
#define WINDOW_MS 150
#define RECONCILE_MS "1500"
#define CONTACTS 30
#define PER_CONTACT 10
#define N_MSGS (CONTACTS * PER_CONTACT)
#define MAX_KILLS 5
#define RUN_MS 40000      /* the traffic must be answered within this */
#define SETTLE_MS 2500    /* then late duplicates (reconciliation) would show */

struct fx {
    struct myna_proc p;
    struct h_fake llm, graph;
    char public_addr[64];
    char public_url[128];  /* fixed across master restarts: the sender's copy */
};

static int fx_start(struct fx *f)
{
    char json[4096], hook[160], path[400];
    int port = h_free_port();
    const char *graph_args[] = { "--listen", "127.0.0.1:0", "--token", "tok-chaos", "--webhook",
                                 hook, "--app-secret", SECRET, "--phone-number-id", PHONE_ID,
                                 NULL };
    const char *llm_args[] = { "--listen", "127.0.0.1:0", NULL };
    const char *extra[] = { "--public", f->public_addr, "--bots", "1", "--send-reconcile-ms",
                            RECONCILE_MS, NULL };
    FILE *fp;

    if (port <= 0 || h_setup(&f->p, NULL) != 0)
        return -1;
    snprintf(f->public_addr, sizeof(f->public_addr), "127.0.0.1:%d", port);
    snprintf(f->public_url, sizeof(f->public_url), "http://127.0.0.1:%d", port);
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/webhook/chaos", port);
    if (h_fake_start(&f->graph, f->p.dir, "graph", MYNA_FAKE_GRAPH, graph_args) != 0 ||
        h_fake_start(&f->llm, f->p.dir, "llm", MYNA_FAKE_LLM, llm_args) != 0)
        return -1;
    /* a short batch window, no pacing, loop guard or rate limit in the way of the
     * traffic: what is measured is delivery, not the limits */
    snprintf(json, sizeof(json),
             "[{\"id\":\"chaos\",\"name\":\"Chaos\",\"provider\":\"cloud\","
             "\"phone_number_id\":\"" PHONE_ID "\",\"access_token\":\"tok-chaos\","
             "\"app_secret\":\"" SECRET "\",\"verify_token\":\"v\",\"graph_url\":\"%s/v25.0\","
             "\"batch\":{\"window_ms\":%d,\"max\":10},"
             "\"pacing\":{\"messages_per_second\":500},"
             "\"loop_guard\":{\"replies_per_minute\":1000,\"repeat_limit\":1000},"
             "\"rate_limit\":{\"count\":0},"
             "\"llm\":{\"url\":\"%s/v1\",\"model\":\"fake-model\"}}]",
             f->graph.url, WINDOW_MS, f->llm.url);
    snprintf(path, sizeof(path), "%s/instances.json", f->p.dir);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    fputs(json, fp);
    fclose(fp);
    return h_start(&f->p, extra);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    *state = f;
    return f && fx_start(f) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f) {
        h_stop(&f->p, SIGTERM);
        h_fake_stop(&f->llm);
        h_fake_stop(&f->graph);
        h_cleanup(&f->p);
        free(f);
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* ---- the killer ---------------------------------------------------------- */

enum kill_kind { KILL_BOT, KILL_MASTER };

struct chaos {
    struct fx *f;
    unsigned seed;
    int n_kills;
    enum kill_kind kinds[MAX_KILLS];
    int at_msg[MAX_KILLS];        /* kill once this many messages were accepted */
    int delay_ms[MAX_KILLS];      /* ... and this long after */
    int mid_send[MAX_KILLS];      /* ... or once the bot has a send in flight */
    int down_ms[MAX_KILLS];       /* a killed master stays down this long */
    atomic_int accepted;          /* the sender's progress */
    atomic_int stop;              /* the sender gave up: stop killing */
    atomic_int finished;          /* the killer is done */
    int done[2];                  /* kills carried out, by kind */
    char error[256];              /* the killer's failure, checked by the main thread */
};

/* The pid of the newest bot in the master's log, or 0. */
static pid_t bot_pid(const struct fx *f)
{
    FILE *fp = fopen(f->p.log_path, "r");
    char *log, *p, *last = NULL;
    size_t len;
    long pid = 0;

    if (fp == NULL)
        return 0;
    if ((log = malloc(1 << 22)) == NULL) {
        fclose(fp);
        return 0;
    }
    len = fread(log, 1, (1 << 22) - 1, fp);
    fclose(fp);
    log[len] = '\0';
    for (p = log; (p = strstr(p, "event=bot_started")) != NULL; p++)
        last = p;
    if (last)
        sscanf(last, "event=bot_started instance=chaos pid=%ld", &pid);
    free(log);
    return (pid_t)pid;
}

/* The parent of a live process, or 0: a pid is only killed while it is
 * still the master's child (never a reused pid). */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *rp;
    FILE *fp;
    long ppid = 0;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* pid (comm) state ppid ...: comm may hold spaces, so after the last ')' */
    if ((rp = strrchr(buf, ')')) == NULL || sscanf(rp + 1, " %*c %ld", &ppid) != 1)
        return 0;
    return (pid_t)ppid;
}

/* Waits for a running bot of the current master other than old; its pid or 0. */
static pid_t wait_bot(const struct fx *f, pid_t old, int timeout_ms)
{
    int64_t until = now_ms() + timeout_ms;

    do {
        pid_t pid = bot_pid(f);
        if (pid > 0 && pid != old && parent_of(pid) == f->p.pid)
            return pid;
        sleep_ms(20);
    } while (now_ms() < until);
    return 0;
}

/* Waits (up to 2 s) for a moment when the bot has a send in flight: the
 * outbox record is marked sending just before the request goes out. */
static void wait_mid_send(const struct fx *f)
{
    int64_t until = now_ms() + 2000;

    while (h_db_count(&f->p, "chaos", "outbox", "state = 1") <= 0 && now_ms() < until)
        sleep_ms(1);
}

static void *killer(void *arg)
{
    struct chaos *c = arg;
    struct fx *f = c->f;
    const char *extra[] = { "--public", f->public_addr, "--bots", "1", "--send-reconcile-ms",
                            RECONCILE_MS, NULL };

    for (int i = 0; i < c->n_kills; i++) {
        int64_t t0;
        pid_t pid;

        while (atomic_load(&c->accepted) < c->at_msg[i] && !atomic_load(&c->stop))
            sleep_ms(5);
        if (atomic_load(&c->stop))
            break;
        if (c->mid_send[i])
            wait_mid_send(f);
        else
            sleep_ms(c->delay_ms[i]);
        t0 = now_ms();
        if (c->kinds[i] == KILL_BOT) {
            /* the supervisor brings it back after its backoff */
            if ((pid = wait_bot(f, 0, 15000)) == 0) {
                snprintf(c->error, sizeof(c->error), "kill %d: no bot is running", i + 1);
                break;
            }
            kill(pid, SIGKILL);
            if (wait_bot(f, pid, 20000) == 0) {
                snprintf(c->error, sizeof(c->error), "kill %d: bot %ld was not restarted", i + 1,
                         (long)pid);
                break;
            }
            fprintf(stderr, "chaos: kill %d: bot pid=%ld after %d messages, back in %lld ms\n",
                    i + 1, (long)pid, atomic_load(&c->accepted), (long long)(now_ms() - t0));
        } else {
            /* the bots see the doorbell close and stop; the next master
             * listens on the same port and data directory */
            pid = f->p.pid;
            if (h_stop(&f->p, SIGKILL) != 128 + SIGKILL) {
                snprintf(c->error, sizeof(c->error), "kill %d: the master did not die", i + 1);
                break;
            }
            sleep_ms(c->down_ms[i]);  /* webhooks meanwhile are refused, and posted again */
            if (h_start(&f->p, extra) != 0 || wait_bot(f, 0, 15000) == 0) {
                snprintf(c->error, sizeof(c->error), "kill %d: the master did not come back",
                         i + 1);
                break;
            }
            fprintf(stderr, "chaos: kill %d: master pid=%ld after %d messages, down %d ms, "
                            "back in %lld ms\n", i + 1, (long)pid, atomic_load(&c->accepted),
                    c->down_ms[i], (long long)(now_ms() - t0));
        }
        c->done[c->kinds[i]]++;
    }
    atomic_store(&c->finished, 1);
    return NULL;
}

/* A kill plan from the seed: 3 to 5 kills, both kinds, spread over the run. */
static void plan(struct chaos *c)
{
    unsigned r = c->seed;
    int gap;

    c->n_kills = 3 + (int)(rand_r(&r) % 3);
    for (int i = 0; i < c->n_kills; i++)
        c->kinds[i] = i == 0 ? KILL_BOT : i == 1 ? KILL_MASTER
                                                 : (enum kill_kind)(rand_r(&r) % 2);
    for (int i = c->n_kills - 1; i > 0; i--) {  /* random order */
        int j = (int)(rand_r(&r) % (unsigned)(i + 1));
        enum kill_kind k = c->kinds[i];
        c->kinds[i] = c->kinds[j];
        c->kinds[j] = k;
    }
    /* each in its own stretch between 10 and N_MSGS - 40 accepted messages,
     * at least 25 apart */
    gap = (N_MSGS - 40) / c->n_kills;
    for (int i = 0; i < c->n_kills; i++) {
        c->at_msg[i] = 10 + i * gap + (int)(rand_r(&r) % (unsigned)(gap - 25));
        c->delay_ms[i] = (int)(rand_r(&r) % 300);
        c->mid_send[i] = (int)(rand_r(&r) % 2);
        c->down_ms[i] = 100 + (int)(rand_r(&r) % 2400);
    }
}

/* ---- the customers --------------------------------------------------------- */

struct contact {
    char from[32];
    int next;       /* the next message to post */
    int waiting;    /* its last accepted message is not answered yet */
    int posting;    /* a message not accepted yet (refused, or no answer) */
};

static void msg_text(char *out, size_t cap, int c, int k)
{
    snprintf(out, cap, "chaos c%02d m%02d", c, k);
}

static void msg_wamid(char *out, size_t cap, int c, int k)
{
    snprintf(out, cap, "wamid.chaos-%02d-%02d", c, k);
}

static char body_buf[8192];

/* 1 when the master answered 200 (stored, or a duplicate of a stored one). */
static int post_msg(const struct fx *f, const struct contact *ct, int c, int k)
{
    char text[64], wamid[64];
    int n;

    msg_text(text, sizeof(text), c, k);
    msg_wamid(wamid, sizeof(wamid), c, k);
    n = snprintf(body_buf, sizeof(body_buf),
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                 "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                 "{\"display_phone_number\":\"79990001122\",\"phone_number_id\":\"" PHONE_ID "\"},"
                 "\"contacts\":[{\"profile\":{\"name\":\"Chaos %d\"},\"wa_id\":\"%s\"}],"
                 "\"messages\":[{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%ld\","
                 "\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]},"
                 "\"field\":\"messages\"}]}]}",
                 c, ct->from, ct->from, wamid, (long)time(NULL), text);
    return h_post_signed(f->public_url, "chaos", SECRET, body_buf, (size_t)n, NULL, 0) == 200;
}

static char resp_buf[4 << 20];

/* How often each message's echo was sent: counts[c][k]; other replies in
 * *stray. The total number of sends, or -1 when the fake did not answer. */
static int count_replies(const struct fx *f, int counts[CONTACTS][PER_CONTACT], int *stray)
{
    char url[256];
    cJSON *all, *m;
    int total = 0;

    memset(counts, 0, sizeof(int) * CONTACTS * PER_CONTACT);
    *stray = 0;
    snprintf(url, sizeof(url), "%s/_fake/messages", f->graph.url);
    if (h_http("GET", url, NULL, 0, NULL, resp_buf, sizeof(resp_buf)) != 200 ||
        (all = cJSON_Parse(resp_buf)) == NULL)
        return -1;
    cJSON_ArrayForEach(m, all) {
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(m, "body");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(body, "text");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(text, "body");
        int c, k, end = 0;
        total++;
        if (cJSON_IsString(b) &&
            sscanf(b->valuestring, "ECHO: chaos c%2d m%2d%n", &c, &k, &end) == 2 &&
            b->valuestring[end] == '\0' && c >= 0 && c < CONTACTS && k >= 0 && k < PER_CONTACT)
            counts[c][k]++;
        else
            (*stray)++;
    }
    cJSON_Delete(all);
    return total;
}

/* Each wamid of the inbox and how often it is there: counts[c][k]; rows not
 * of this traffic in *stray. The number of rows, or -1. */
static long inbox_counts(const struct fx *f, int counts[CONTACTS][PER_CONTACT], int *stray)
{
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long rows = -1;

    memset(counts, 0, sizeof(int) * CONTACTS * PER_CONTACT);
    *stray = 0;
    snprintf(path, sizeof(path), "%s/var/instances/chaos.db", f->p.dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT wamid FROM inbox", -1, &st, NULL) == SQLITE_OK) {
        rows = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *w = (const char *)sqlite3_column_text(st, 0);
            int c, k, end = 0;
            rows++;
            if (w && sscanf(w, "wamid.chaos-%2d-%2d%n", &c, &k, &end) == 2 && w[end] == '\0' &&
                c >= 0 && c < CONTACTS && k >= 0 && k < PER_CONTACT)
                counts[c][k]++;
            else
                (*stray)++;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
}

static void test_kill9_at_random_moments_answers_each_once(void **state)
{
    struct fx *f = *state;
    static struct contact ct[CONTACTS];
    static int replies[CONTACTS][PER_CONTACT], stored[CONTACTS][PER_CONTACT];
    struct chaos c;
    pthread_t th;
    const char *env = getenv("MYNA_CHAOS_SEED");
    int64_t start = now_ms(), deadline = start + RUN_MS;
    int accepted = 0, answered = 0, refused = 0, total, stray, inbox_stray;
    long rows;
    char problems[2048];
    size_t plen = 0;

    memset(&c, 0, sizeof(c));
    atomic_init(&c.accepted, 0);
    atomic_init(&c.stop, 0);
    atomic_init(&c.finished, 0);
    c.f = f;
    c.seed = env ? (unsigned)strtoul(env, NULL, 10)
                 : (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    plan(&c);
    fprintf(stderr, "chaos: seed=%u (MYNA_CHAOS_SEED=%u repeats it) dir=%s kills=%d:", c.seed,
            c.seed, f->p.dir, c.n_kills);
    for (int i = 0; i < c.n_kills; i++)
        if (c.mid_send[i])
            fprintf(stderr, " %s@%d+mid-send", c.kinds[i] == KILL_BOT ? "bot" : "master",
                    c.at_msg[i]);
        else
            fprintf(stderr, " %s@%d+%dms", c.kinds[i] == KILL_BOT ? "bot" : "master",
                    c.at_msg[i], c.delay_ms[i]);
    fprintf(stderr, "\n");
    for (int i = 0; i < CONTACTS; i++) {
        memset(&ct[i], 0, sizeof(ct[i]));
        snprintf(ct[i].from, sizeof(ct[i].from), "7922000%04d", i);
    }
    assert_int_equal(pthread_create(&th, NULL, killer, &c), 0);

    /* the customers: each posts its next message once the last is answered
     * (and the replies are watched until the last kill is over) */
    while ((answered < N_MSGS || !atomic_load(&c.finished)) && now_ms() < deadline) {
        int done = 0;
        if (count_replies(f, replies, &stray) >= 0) {
            for (int i = 0; i < CONTACTS; i++)
                if (ct[i].waiting && replies[i][ct[i].next - 1] > 0) {
                    ct[i].waiting = 0;
                    answered++;
                }
        }
        for (int i = 0; i < CONTACTS; i++) {
            if (!ct[i].waiting && !ct[i].posting && ct[i].next < PER_CONTACT)
                ct[i].posting = 1;
            if (!ct[i].posting)
                continue;
            if (post_msg(f, &ct[i], i, ct[i].next)) {
                ct[i].posting = 0;
                ct[i].waiting = 1;
                ct[i].next++;
                atomic_store(&c.accepted, ++accepted);
                done++;
            } else {
                refused++;  /* Meta posts it again later */
            }
        }
        if (done == 0)
            sleep_ms(20);
    }
    atomic_store(&c.stop, 1);
    pthread_join(th, NULL);
    fprintf(stderr, "chaos: seed=%u accepted=%d answered=%d refused_posts=%d in %lld ms; "
                    "kills: bot=%d master=%d\n", c.seed, accepted, answered, refused,
            (long long)(now_ms() - start), c.done[KILL_BOT], c.done[KILL_MASTER]);
    if (c.error[0])
        fail_msg("seed %u: %s", c.seed, c.error);

    /* late duplicates (a send resent after reconciliation) would come now */
    sleep_ms(SETTLE_MS);
    total = count_replies(f, replies, &stray);
    rows = inbox_counts(f, stored, &inbox_stray);
    problems[0] = '\0';
    for (int i = 0; i < CONTACTS; i++)
        for (int k = 0; k < PER_CONTACT; k++) {
            int was_accepted = k < ct[i].next;
            if (was_accepted && (stored[i][k] != 1 || replies[i][k] != 1) &&
                plen < sizeof(problems) - 80)
                plen += (size_t)snprintf(problems + plen, sizeof(problems) - plen,
                                         " c%02d m%02d: stored %d, replied %d;", i, k,
                                         stored[i][k], replies[i][k]);
        }
    if (problems[0] || accepted != N_MSGS || total != N_MSGS || stray != 0 || rows != N_MSGS ||
        inbox_stray != 0)
        fail_msg("seed %u: accepted %d of %d, inbox %ld rows (%d not ours), %d replies "
                 "(%d not ours):%s", c.seed, accepted, N_MSGS, rows, inbox_stray, total, stray,
                 problems);
    /* the plan was carried out: both kinds, during the traffic */
    assert_int_equal(c.done[KILL_BOT] + c.done[KILL_MASTER], c.n_kills);
    assert_true(c.done[KILL_BOT] >= 1 && c.done[KILL_MASTER] >= 1);
    /* the bot's own books agree: every turn done, every reply sent once */
    assert_int_equal(h_db_count(&f->p, "chaos", "turns", NULL), N_MSGS);
    assert_int_equal(h_db_count(&f->p, "chaos", "turns", "state = 0"), 0);
    assert_int_equal(h_db_count(&f->p, "chaos", "outbox", NULL), N_MSGS);
    assert_int_equal(h_db_count(&f->p, "chaos", "outbox", "state = 2 AND wamid IS NOT NULL"),
                     N_MSGS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_at_random_moments_answers_each_once, setup,
                                        teardown),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
