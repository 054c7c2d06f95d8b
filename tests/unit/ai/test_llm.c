/* test_llm.c - the chat-completions client against myna_fake_llm (a child
 * process on a free loopback port) on a real event loop: what the model
 * receives, retries and their limits, timeouts, the circuit breaker, free
 * with work in flight, the Bearer token, and the response parser on the
 * shapes real servers send. No fixed sleeps: every wait runs the loop until
 * an event (a callback, a count) or a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ai/llm.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "net/http_client.h"

#ifndef MYNA_FAKE_LLM
#error "compile with -DMYNA_FAKE_LLM=\"/path/to/myna_fake_llm\""
#endif

#define API_KEY "sk-test-0123456789"
#define WAIT_MS 15000

struct fake_proc {
    pid_t pid;
    char url[128];   /* http://127.0.0.1:PORT */
};

static struct fake_proc fake, fake_auth;   /* one of each for the whole run */

struct fx {
    struct event_base *base;
    struct myna_http_client *http;
    struct event *tick;   /* wakes the loop while a test waits */
    int waiting;          /* run_until nesting (a condition may run the loop) */
    struct myna_llm *llm;
};

/* What a callback saw (copied: the result is borrowed). */
struct turn {
    int calls;
    struct myna_llm_result r;
    char text[4096];
    struct myna_llm **free_me;   /* the callback frees this client */
};

/* ---- the fake as a child process ----------------------------------------- */

static int fake_start(struct fake_proc *fp, const char *api_key)
{
    const char *argv[6] = { MYNA_FAKE_LLM, "--listen", "127.0.0.1:0", NULL, NULL, NULL };
    char line[256];
    size_t n = 0;
    int pfd[2], port;
    int64_t deadline = myna_mono_ms() + 10000;

    if (api_key) {
        argv[3] = "--api-key";
        argv[4] = api_key;
    }
    if (pipe(pfd) != 0)
        return -1;
    if ((fp->pid = fork()) < 0)
        return -1;
    if (fp->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  /* never outlive a crashed test */
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    /* the ready line, byte by byte so that nothing after it is swallowed */
    while (n < sizeof(line) - 1 && myna_mono_ms() < deadline) {
        struct pollfd p = { pfd[0], POLLIN, 0 };
        char c;
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (read(pfd[0], &c, 1) != 1)
            break;
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = '\0';
    close(pfd[0]);
    if (sscanf(line, "event=ready public=127.0.0.1:%d", &port) != 1) {
        fprintf(stderr, "fake did not start: '%s'\n", line);
        kill(fp->pid, SIGKILL);
        waitpid(fp->pid, NULL, 0);
        return -1;
    }
    snprintf(fp->url, sizeof(fp->url), "http://127.0.0.1:%d", port);
    return 0;
}

/* 0 when the fake exited cleanly (under ASan: without leaks). */
static int fake_stop(struct fake_proc *fp)
{
    int status = 0;

    if (fp->pid <= 0)
        return 0;
    kill(fp->pid, SIGTERM);
    waitpid(fp->pid, &status, 0);
    fp->pid = 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (fake_start(&fake, NULL) != 0 || fake_start(&fake_auth, API_KEY) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    int rc = fake_stop(&fake) | fake_stop(&fake_auth);

    (void)state;
    curl_global_cleanup();
    if (rc != 0)
        fprintf(stderr, "a fake did not exit cleanly\n");
    return rc;
}

/* ---- the loop ---------------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until cond(arg) holds or timeout_ms pass; returns cond. */
static int run_until(struct fx *f, int (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = myna_mono_ms() + timeout_ms;
    struct timeval tv = { 0, 10 * 1000 };

    if (f->waiting++ == 0)
        evtimer_add(f->tick, &tv);
    while (!cond(arg) && myna_mono_ms() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE);
    if (--f->waiting == 0)
        event_del(f->tick);
    return cond(arg);
}

static int is_set(void *arg)
{
    return *(int *)arg != 0;
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

/* Runs the loop for ms: for checks that something does NOT happen. */
static void run_for(struct fx *f, int ms)
{
    run_until(f, never, NULL, ms);
}

/* ---- control requests to the fake ------------------------------------------ */

struct ctl_box {
    int done;
    long status;
    char *body;
};

static void on_ctl(const struct myna_http_resp *r, void *arg)
{
    struct ctl_box *b = arg;

    b->done = 1;
    b->status = r->rc == MYNA_OK ? r->status : -1;
    b->body = strdup(r->body);
}

static long ctl(struct fx *f, const struct fake_proc *fp, const char *method, const char *path,
                const char *body, char **out)
{
    struct ctl_box b = { 0, 0, NULL };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_http_req req;
    char url[256];

    snprintf(url, sizeof(url), "%s%s", fp->url, path);
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout_ms = 5000;
    req.max_response = 64u << 20;
    assert_int_equal(myna_http_request(f->http, &req, on_ctl, &b, &err), MYNA_OK);
    assert_true(run_until(f, is_set, &b.done, WAIT_MS));
    if (out)
        *out = b.body;
    else
        free(b.body);
    return b.status;
}

static void faults(struct fx *f, const char *json)
{
    assert_int_equal(ctl(f, &fake, "POST", "/_fake/faults", json, NULL), 200);
}

/* Every chat request body the fake received (cJSON_Delete it). */
static cJSON *requests(struct fx *f, const struct fake_proc *fp)
{
    char *body = NULL;
    cJSON *doc;

    assert_int_equal(ctl(f, fp, "GET", "/_fake/requests", NULL, &body), 200);
    doc = cJSON_Parse(body);
    free(body);
    assert_true(cJSON_IsArray(doc));
    return doc;
}

static int n_requests(struct fx *f, const struct fake_proc *fp)
{
    cJSON *doc = requests(f, fp);
    int n = cJSON_GetArraySize(doc);

    cJSON_Delete(doc);
    return n;
}

/* ---- fixture ----------------------------------------------------------------- */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct myna_err err = MYNA_ERR_INIT;

    if (f == NULL || (f->base = event_base_new()) == NULL ||
        (f->http = myna_http_client_new(f->base, &err)) == NULL ||
        (f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, NULL)) == NULL)
        return -1;
    *state = f;
    if (ctl(f, &fake, "POST", "/_fake/reset", "", NULL) != 200 ||
        ctl(f, &fake_auth, "POST", "/_fake/reset", "", NULL) != 200)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    /* the bot's order: the model client, then the HTTP client, at once */
    myna_llm_free(f->llm);
    myna_http_client_free(f->http);
    event_free(f->tick);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* A conf for the plain fake with fast retries. */
static struct myna_llm_conf conf_for(const struct fake_proc *fp, char *url, size_t cap)
{
    struct myna_llm_conf c;

    snprintf(url, cap, "%s/v1", fp->url);
    memset(&c, 0, sizeof(c));
    c.url = url;
    c.model = "fake-model";
    c.temperature = 0.25;
    c.top_p = 0.9;
    c.max_tokens = 64;
    c.timeout_ms = 5000;
    c.max_attempts = 3;
    c.backoff_ms = 10;
    c.breaker_failures = 100;
    c.breaker_cooldown_ms = 1000;
    return c;
}

static struct myna_llm *make(struct fx *f, const struct myna_llm_conf *c)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_llm *llm = myna_llm_new(f->base, f->http, c, &err);

    assert_non_null(llm);
    f->llm = llm;
    return llm;
}

static void on_turn(const struct myna_llm_result *r, void *arg)
{
    struct turn *t = arg;

    t->calls++;
    /* error texts are cut at a character boundary: always valid UTF-8 */
    assert_int_equal(myna_utf8_prefix(r->error, strlen(r->error)), strlen(r->error));
    t->r = *r;
    t->text[0] = '\0';
    if (r->text)
        snprintf(t->text, sizeof(t->text), "%s", r->text);
    t->r.text = r->text ? t->text : NULL;
    if (t->free_me) {
        myna_llm_free(*t->free_me);
        *t->free_me = NULL;
    }
}

static int chat_start(struct fx *f, struct myna_llm *llm, struct turn *t, const char *user)
{
    struct myna_llm_msg m[2] = { { "system", "You are Myna." }, { "user", user } };
    struct myna_err err = MYNA_ERR_INIT;

    (void)f;
    return myna_llm_chat(llm, m, 2, on_turn, t, &err);
}

/* One turn to its callback; asserts the callback ran exactly once. */
static void chat(struct fx *f, struct myna_llm *llm, struct turn *t, const char *user)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(chat_start(f, llm, t, user), MYNA_OK);
    assert_true(run_until(f, is_set, &t->calls, WAIT_MS));
    assert_int_equal(t->calls, 1);
}

static void assert_stats(struct myna_llm *llm, uint64_t requests, uint64_t failures,
                         uint64_t retries)
{
    struct myna_llm_stats st;

    myna_llm_stats(llm, &st);
    assert_int_equal(st.requests, requests);
    assert_int_equal(st.failures, failures);
    assert_int_equal(st.retries, retries);
}

/* ---- turns --------------------------------------------------------------------- */

static void test_normal_turn(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct myna_llm_msg m[4] = { { "system", "You are Myna." },
                                 { "user", "hello" },
                                 { "assistant", "Hi! How can I help?" },
                                 { "user", "book a table for two" } };
    static const char *const roles[] = { "system", "user", "assistant", "user" };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_llm_stats st;
    struct turn t;
    cJSON *reqs, *r, *msgs;
    int i = 0;

    memset(&t, 0, sizeof(t));
    assert_int_equal(myna_llm_chat(llm, m, 4, on_turn, &t, &err), MYNA_OK);
    assert_int_equal(t.calls, 0);  /* never synchronously */
    assert_true(run_until(f, is_set, &t.calls, WAIT_MS));
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: book a table for two");
    assert_int_equal(t.r.prompt_tokens, 3 + 1 + 5 + 5);  /* the fake counts words */
    assert_int_equal(t.r.completion_tokens, 6);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(t.r.last_status, 200);
    assert_string_equal(t.r.error, "");
    assert_true(t.r.latency_ms >= 0 && t.r.latency_ms < WAIT_MS);

    reqs = requests(f, &fake);
    assert_int_equal(cJSON_GetArraySize(reqs), 1);
    r = cJSON_GetArrayItem(reqs, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "model")), "fake-model");
    assert_true(cJSON_GetObjectItem(r, "temperature")->valuedouble == 0.25);
    assert_true(cJSON_GetObjectItem(r, "top_p")->valuedouble == 0.9);
    assert_int_equal(cJSON_GetObjectItem(r, "max_tokens")->valueint, 64);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(r, "stream")));
    msgs = cJSON_GetObjectItem(r, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 4);
    cJSON_ArrayForEach(r, msgs) {
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "role")), roles[i]);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "content")), m[i].content);
        i++;
    }
    cJSON_Delete(reqs);

    /* the words arrive as they were: quotes, newlines, Cyrillic, emoji */
    chat(f, llm, &t, "Она сказала \"да\"\nи ушла 🙂\\");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: Она сказала \"да\"\nи ушла 🙂\\");

    myna_llm_stats(llm, &st);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.prompt_tokens, 14 + 3 + 6);
    assert_int_equal(st.completion_tokens, 6 + 7);
    assert_int_equal(st.circuit_open, 0);
}

/* The bot's prompt has a second system message (the customer's profile)
 * and, after an operator's message or a turn left unanswered, two of one
 * role in a row. The chat templates of Mistral and Gemma refuse that, and
 * vLLM answers 400 (every turn then got the fallback): consecutive
 * messages of one role go as one, a blank line between their texts. */
static void test_one_role_in_a_row_goes_as_one(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct myna_llm_msg m[7] = { { "system", "You are Myna." },
                                 { "system", "The customer's WhatsApp name is Ann." },
                                 { "user", "hello" },
                                 { "assistant", "Hi! How can I help?" },
                                 { "assistant", "From the barber: we open at 10" },
                                 { "user", "ok" },
                                 { "user", "and on Sunday?" } };
    static const char *const want[][2] = {
        { "system", "You are Myna.\n\nThe customer's WhatsApp name is Ann." },
        { "user", "hello" },
        { "assistant", "Hi! How can I help?\n\nFrom the barber: we open at 10" },
        { "user", "ok\n\nand on Sunday?" },
    };
    struct myna_err err = MYNA_ERR_INIT;
    struct turn t;
    cJSON *reqs, *msgs, *r;
    int i = 0;

    faults(f, "{\"alternate\":1}");
    memset(&t, 0, sizeof(t));
    assert_int_equal(myna_llm_chat(llm, m, 7, on_turn, &t, &err), MYNA_OK);
    assert_true(run_until(f, is_set, &t.calls, WAIT_MS));
    assert_string_equal(t.r.error, "");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: ok\n\nand on Sunday?");
    reqs = requests(f, &fake);
    msgs = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 4);
    cJSON_ArrayForEach(r, msgs) {
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "role")), want[i][0]);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "content")), want[i][1]);
        i++;
    }
    cJSON_Delete(reqs);
}

/* The history window can start with an answer (the customer's question
 * fell out of it, an operator wrote first): after the system message the
 * same templates want a user message, and every turn of that contact got
 * the 400. What was said before the customer's first message goes into
 * the system message, as context the model keeps. */
static void test_opening_answers_go_into_the_system_message(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct myna_llm_msg m[7] = { { "system", "You are Myna." },
                                 { "system", "The customer's WhatsApp name is Ann." },
                                 { "assistant", "Your order #123 is ready" },
                                 { "assistant", "We close at 8" },
                                 { "user", "thanks" },
                                 { "assistant", "You are welcome!" },
                                 { "user", "hello?" } };
    struct myna_llm_msg last = { "user", "where are you?" };
    struct myna_llm_msg only[2] = { { "assistant", "Your order #123 is ready" },
                                    { "user", "thanks" } };
    static const char *const want[][2] = {
        { "system", "You are Myna.\n\nThe customer's WhatsApp name is Ann.\n\n"
                    "Earlier in this conversation you (or a colleague) wrote:\n\n"
                    "Your order #123 is ready\n\nWe close at 8" },
        { "user", "thanks" },
        { "assistant", "You are welcome!" },
        { "user", "hello?\n\nwhere are you?" },
    };
    struct myna_llm_msg all[8];
    struct myna_err err = MYNA_ERR_INIT;
    struct turn t;
    cJSON *reqs, *msgs, *r;
    int i = 0;

    /* the history ends with a question left unanswered (a turn the rate
     * limit silenced): it goes with the turn's text, as one */
    memcpy(all, m, sizeof(m));
    all[7] = last;
    faults(f, "{\"alternate\":1,\"count\":2}");
    memset(&t, 0, sizeof(t));
    assert_int_equal(myna_llm_chat(llm, all, 8, on_turn, &t, &err), MYNA_OK);
    assert_true(run_until(f, is_set, &t.calls, WAIT_MS));
    assert_string_equal(t.r.error, "");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: hello?\n\nwhere are you?");
    reqs = requests(f, &fake);
    msgs = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 4);
    cJSON_ArrayForEach(r, msgs) {
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "role")), want[i][0]);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "content")), want[i][1]);
        i++;
    }
    cJSON_Delete(reqs);

    /* no system prompt: the answer alone makes the system message */
    memset(&t, 0, sizeof(t));
    assert_int_equal(myna_llm_chat(llm, only, 2, on_turn, &t, &err), MYNA_OK);
    assert_true(run_until(f, is_set, &t.calls, WAIT_MS));
    assert_int_equal(t.r.rc, MYNA_OK);
    reqs = requests(f, &fake);
    msgs = cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 1), "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 2);
    r = cJSON_GetArrayItem(msgs, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "role")), "system");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "content")),
                        "Earlier in this conversation you (or a colleague) wrote:\n\n"
                        "Your order #123 is ready");
    r = cJSON_GetArrayItem(msgs, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "role")), "user");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "content")), "thanks");
    cJSON_Delete(reqs);
}

static void test_base_url_trailing_slash_and_no_optional_fields(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;
    cJSON *reqs, *r;

    snprintf(url, sizeof(url), "%s/v1//", fake.url);
    c.model = NULL;
    c.temperature = -1;
    c.top_p = 0;
    c.max_tokens = 0;
    llm = make(f, &c);
    chat(f, llm, &t, "hi");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: hi");
    reqs = requests(f, &fake);
    r = cJSON_GetArrayItem(reqs, 0);
    assert_null(cJSON_GetObjectItem(r, "model"));
    assert_null(cJSON_GetObjectItem(r, "temperature"));
    assert_null(cJSON_GetObjectItem(r, "top_p"));
    assert_null(cJSON_GetObjectItem(r, "max_tokens"));
    cJSON_Delete(reqs);
}

/* A base URL with a query (a proxy's key, an api-version): the path goes
 * before it. "{url}/chat/completions" put it into the query, and every
 * turn got a 404. */
static void test_base_url_with_a_query(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;

    snprintf(url, sizeof(url), "%s/v1/?api-version=2024-06-01#top", fake.url);
    llm = make(f, &c);
    chat(f, llm, &t, "hi");
    assert_string_equal(t.r.error, "");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: hi");
}

static void test_retries_500_twice_then_success(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;

    faults(f, "{\"status\":500,\"count\":2}");
    chat(f, llm, &t, "third time lucky");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 3);
    assert_int_equal(t.r.last_status, 200);
    assert_string_equal(t.r.text, "ECHO: third time lucky");
    assert_int_equal(n_requests(f, &fake), 3);
    assert_stats(llm, 1, 0, 2);
}

static void test_429_then_success(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;

    faults(f, "{\"status\":429}");
    chat(f, llm, &t, "slow down");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 2);
    assert_int_equal(n_requests(f, &fake), 2);
    assert_stats(llm, 1, 0, 1);
}

/* A 429 with Retry-After: 1 is tried again no sooner than a second later
 * (the backoff here is 10 ms); one that asks for more than any backoff
 * (60 s) ends the call at once, with the wait named. */
static void test_429_retry_after(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;

    faults(f, "{\"status\":429,\"retry_after\":\"1\"}");
    chat(f, llm, &t, "slow down");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 2);
    /* a second, not the 10 ms backoff (libevent times it from the loop's
     * cached clock, which may be some ms behind) */
    assert_true(t.r.latency_ms >= 900);
    faults(f, "{\"status\":503,\"retry_after\":\"60\"}");
    chat(f, llm, &t, "later");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_non_null(strstr(t.r.error, "(retry after 60 s)"));
    assert_int_equal(n_requests(f, &fake), 3);
}

static void test_400_is_not_retried(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;

    c.breaker_failures = 1;  /* a refusal is not the endpoint being down */
    llm = make(f, &c);
    faults(f, "{\"status\":400,\"message\":\"This model's maximum context length is 8192 tokens\"}");
    chat(f, llm, &t, "too long");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(t.r.last_status, 400);
    assert_null(t.r.text);
    assert_non_null(strstr(t.r.error, "400"));
    assert_non_null(strstr(t.r.error, "This model's maximum context length is 8192 tokens"));
    assert_int_equal(n_requests(f, &fake), 1);
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    assert_stats(llm, 1, 1, 0);

    /* vLLM's error shape: {"object":"error","message":...} */
    faults(f, "{\"status\":404,\"raw\":\"{\\\"object\\\":\\\"error\\\",\\\"message\\\":"
              "\\\"The model `gpt-5` does not exist.\\\",\\\"type\\\":\\\"NotFoundError\\\","
              "\\\"param\\\":null,\\\"code\\\":404}\"}");
    chat(f, llm, &t, "which model");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(t.r.last_status, 404);
    assert_non_null(strstr(t.r.error, "The model `gpt-5` does not exist."));
}

/* OpenAI's reasoning models (o1, o3, o4-mini, gpt-5) refuse max_tokens
 * with a 400: every turn got the fallback. The turn goes again at once
 * with max_completion_tokens carrying the same limit, and the client sends
 * that from then on: one request a turn. */
static void test_model_refusing_max_tokens(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;
    cJSON *reqs, *r;

    c.breaker_failures = 1;   /* the refusal must not open the circuit */
    c.max_tokens = 3;         /* the fake cuts its answer at that many words */
    llm = make(f, &c);
    faults(f, "{\"refuse\":\"max_tokens\",\"count\":-1}");
    chat(f, llm, &t, "one two three four");
    assert_string_equal(t.r.error, "");
    assert_int_equal(t.r.rc, MYNA_OK);
    /* "ECHO: one two" stopped at 3 words (finish_reason "length"), cut
     * back to its last word end and marked */
    assert_string_equal(t.r.text, "ECHO: one" MYNA_ELLIPSIS);
    assert_int_equal(t.r.attempts, 2);
    assert_int_equal(t.r.last_status, 200);
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    assert_stats(llm, 1, 0, 0);
    reqs = requests(f, &fake);
    assert_int_equal(cJSON_GetArraySize(reqs), 2);
    r = cJSON_GetArrayItem(reqs, 0);
    assert_int_equal(cJSON_GetObjectItem(r, "max_tokens")->valueint, 3);
    assert_null(cJSON_GetObjectItem(r, "max_completion_tokens"));
    r = cJSON_GetArrayItem(reqs, 1);
    assert_null(cJSON_GetObjectItem(r, "max_tokens"));
    assert_int_equal(cJSON_GetObjectItem(r, "max_completion_tokens")->valueint, 3);
    /* the rest of the request as it was */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r, "model")), "fake-model");
    assert_true(cJSON_GetObjectItem(r, "temperature")->valuedouble == 0.25);
    assert_true(cJSON_GetObjectItem(r, "top_p")->valuedouble == 0.9);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(r, "stream")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "messages")), 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(r, "messages"), 1), "content")),
                        "one two three four");
    cJSON_Delete(reqs);

    /* the next turn sends the adapted request at once */
    chat(f, llm, &t, "hi");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: hi");
    assert_int_equal(t.r.attempts, 1);
    reqs = requests(f, &fake);
    assert_int_equal(cJSON_GetArraySize(reqs), 3);
    r = cJSON_GetArrayItem(reqs, 2);
    assert_null(cJSON_GetObjectItem(r, "max_tokens"));
    assert_int_equal(cJSON_GetObjectItem(r, "max_completion_tokens")->valueint, 3);
    cJSON_Delete(reqs);
    assert_stats(llm, 2, 0, 0);
}

/* A reasoning model takes only the default temperature and top_p: they
 * are left out, each learnt once, and the limit still goes. */
static void test_model_refusing_temperature_and_top_p(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;
    cJSON *reqs, *r;

    c.breaker_failures = 1;
    llm = make(f, &c);
    faults(f, "{\"refuse\":\"temperature\",\"count\":-1}");
    chat(f, llm, &t, "warm");
    assert_string_equal(t.r.error, "");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: warm");
    assert_int_equal(t.r.attempts, 2);
    reqs = requests(f, &fake);
    assert_int_equal(cJSON_GetArraySize(reqs), 2);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 0), "temperature")->valuedouble ==
                0.25);
    r = cJSON_GetArrayItem(reqs, 1);
    assert_null(cJSON_GetObjectItem(r, "temperature"));
    assert_true(cJSON_GetObjectItem(r, "top_p")->valuedouble == 0.9);
    assert_int_equal(cJSON_GetObjectItem(r, "max_tokens")->valueint, 64);
    cJSON_Delete(reqs);

    /* a model that refuses all three: one request for each field the
     * client has not learnt yet, then the answer on the same turn */
    assert_int_equal(ctl(f, &fake, "POST", "/_fake/reset", "", NULL), 200);
    faults(f, "{\"refuse\":[\"max_tokens\",\"temperature\",\"top_p\"],\"count\":-1}");
    chat(f, llm, &t, "cold");
    assert_string_equal(t.r.error, "");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: cold");
    assert_int_equal(t.r.attempts, 3);
    reqs = requests(f, &fake);
    assert_int_equal(cJSON_GetArraySize(reqs), 3);
    r = cJSON_GetArrayItem(reqs, 2);
    assert_null(cJSON_GetObjectItem(r, "temperature"));
    assert_null(cJSON_GetObjectItem(r, "top_p"));
    assert_null(cJSON_GetObjectItem(r, "max_tokens"));
    assert_int_equal(cJSON_GetObjectItem(r, "max_completion_tokens")->valueint, 64);
    cJSON_Delete(reqs);
    chat(f, llm, &t, "again");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(n_requests(f, &fake), 4);
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    assert_stats(llm, 3, 0, 0);
}

/* A server that answers the same refusal to the adapted request too gets
 * it once more, not a loop: the turn fails as a 400 does, one request
 * after the first, and the circuit stays closed. The retries a 5xx gets
 * are not used up by the adaptation. */
static void test_refusal_again_does_not_loop(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;
    cJSON *reqs;

    c.breaker_failures = 1;
    llm = make(f, &c);
    faults(f, "{\"status\":400,\"count\":-1,\"raw\":\"{\\\"error\\\": {\\\"message\\\": "
              "\\\"Unsupported parameter: 'max_tokens' is not supported with this model. Use "
              "'max_completion_tokens' instead.\\\", \\\"type\\\": \\\"invalid_request_error\\\", "
              "\\\"param\\\": \\\"max_tokens\\\", \\\"code\\\": \\\"unsupported_parameter\\\"}}\"}");
    chat(f, llm, &t, "stuck");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 2);
    assert_int_equal(t.r.last_status, 400);
    assert_non_null(strstr(t.r.error, "Unsupported parameter: 'max_tokens'"));
    reqs = requests(f, &fake);
    assert_int_equal(cJSON_GetArraySize(reqs), 2);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 1), "max_completion_tokens")->valueint, 64);
    cJSON_Delete(reqs);
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    assert_stats(llm, 1, 1, 0);
    /* learnt all the same: the next turn is one request */
    chat(f, llm, &t, "stuck again");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(n_requests(f, &fake), 3);

    /* after an adaptation, a 500 still gets its max_attempts (3) */
    assert_int_equal(ctl(f, &fake, "POST", "/_fake/reset", "", NULL), 200);
    c.breaker_failures = 100;
    myna_llm_free(llm);
    llm = make(f, &c);
    faults(f, "[{\"refuse\":\"temperature\"},{\"status\":500,\"count\":2}]");
    chat(f, llm, &t, "bumpy");
    assert_string_equal(t.r.error, "");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 4);
    assert_int_equal(n_requests(f, &fake), 4);
    assert_stats(llm, 1, 0, 2);
}

/* A 400 about another parameter or code, or about a field the request did
 * not have, stays the refusal it was: one request, no adaptation. */
static void test_other_400s_are_not_adapted(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;
    cJSON *reqs;
    static const char *const bodies[] = {
        /* too large a value is the request's fault, not the field's */
        "{\\\"error\\\":{\\\"message\\\":\\\"max_tokens is too large\\\",\\\"type\\\":"
        "\\\"invalid_request_error\\\",\\\"param\\\":\\\"max_tokens\\\",\\\"code\\\":"
        "\\\"invalid_value\\\"}}",
        /* a field the client has no other way to send */
        "{\\\"error\\\":{\\\"message\\\":\\\"Unsupported parameter: 'stream'\\\",\\\"type\\\":"
        "\\\"invalid_request_error\\\",\\\"param\\\":\\\"stream\\\",\\\"code\\\":"
        "\\\"unsupported_parameter\\\"}}",
        /* no param: vLLM's shape */
        "{\\\"object\\\":\\\"error\\\",\\\"message\\\":\\\"bad\\\",\\\"param\\\":null,"
        "\\\"code\\\":400}",
    };
    char json[1024];

    c.breaker_failures = 1;
    c.top_p = 0;   /* not sent: its refusal cannot be about this request */
    llm = make(f, &c);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        snprintf(json, sizeof(json), "{\"status\":400,\"raw\":\"%s\"}", bodies[i]);
        faults(f, json);
        chat(f, llm, &t, "no");
        assert_int_equal(t.r.rc, MYNA_EIO);
        assert_int_equal(t.r.attempts, 1);
        assert_int_equal(t.r.last_status, 400);
    }
    faults(f, "{\"status\":400,\"raw\":\"{\\\"error\\\":{\\\"message\\\":\\\"Unsupported value: "
              "'top_p'\\\",\\\"param\\\":\\\"top_p\\\",\\\"code\\\":\\\"unsupported_value\\\"}}\"}");
    chat(f, llm, &t, "no");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    /* the same refusal with a 422 or a 200 is not this either */
    faults(f, "{\"status\":422,\"raw\":\"{\\\"error\\\":{\\\"param\\\":\\\"max_tokens\\\","
              "\\\"code\\\":\\\"unsupported_parameter\\\"}}\"}");
    chat(f, llm, &t, "no");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(n_requests(f, &fake), 5);
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    assert_stats(llm, 5, 5, 0);
    /* nothing was learnt */
    chat(f, llm, &t, "yes");
    assert_int_equal(t.r.rc, MYNA_OK);
    reqs = requests(f, &fake);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, 5), "max_tokens")->valueint, 64);
    cJSON_Delete(reqs);
}

/* Which field a 400's body refuses: OpenAI's exact bodies, and what is not. */
static void test_parse_refused(void **state)
{
    static const struct {
        const char *body;
        enum myna_llm_field want;
    } cases[] = {
        { "{\"error\": {\"message\": \"Unsupported parameter: 'max_tokens' is not supported with "
          "this model. Use 'max_completion_tokens' instead.\", \"type\": \"invalid_request_error\", "
          "\"param\": \"max_tokens\", \"code\": \"unsupported_parameter\"}}",
          MYNA_LLM_FIELD_MAX_TOKENS },
        { "{\"error\": {\"message\": \"Unsupported value: 'temperature' does not support 0.7 with "
          "this model. Only the default (1) value is supported.\", \"type\": "
          "\"invalid_request_error\", \"param\": \"temperature\", \"code\": \"unsupported_value\"}}",
          MYNA_LLM_FIELD_TEMPERATURE },
        { "[{\"error\":{\"param\":\"top_p\",\"code\":\"unsupported_value\"}}]",
          MYNA_LLM_FIELD_TOP_P },
        { "{\"error\":{\"param\":\"max_tokens\",\"code\":\"invalid_value\"}}",
          MYNA_LLM_FIELD_NONE },
        { "{\"error\":{\"param\":\"max_completion_tokens\",\"code\":\"unsupported_parameter\"}}",
          MYNA_LLM_FIELD_NONE },
        { "{\"error\":{\"param\":\"max_tokens\"}}", MYNA_LLM_FIELD_NONE },
        { "{\"error\":{\"param\":null,\"code\":\"unsupported_parameter\"}}", MYNA_LLM_FIELD_NONE },
        { "{\"param\":\"max_tokens\",\"code\":\"unsupported_parameter\"}", MYNA_LLM_FIELD_NONE },
        { "{\"error\":\"max_tokens\"}", MYNA_LLM_FIELD_NONE },
        { "not json", MYNA_LLM_FIELD_NONE },
        { "", MYNA_LLM_FIELD_NONE },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(myna_llm_parse_refused(cases[i].body, strlen(cases[i].body)),
                         cases[i].want);
    assert_int_equal(myna_llm_parse_refused(NULL, 0), MYNA_LLM_FIELD_NONE);
}

/* Long error messages are cut to fit result.error, never inside a
 * character (on_turn checks every error text). */
static void test_long_errors_cut_at_characters(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;
    char json[1024], euros[301];

    for (int i = 0; i < 100; i++)
        memcpy(euros + 3 * i, "\xe2\x82\xac", 3);   /* U+20AC, 3 bytes */
    euros[300] = '\0';
    /* "llm answered HTTP 400: " is 23 bytes: 232 left, not a multiple of 3 */
    snprintf(json, sizeof(json), "{\"status\":400,\"message\":\"%s\"}", euros);
    faults(f, json);
    chat(f, llm, &t, "x");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(strlen(t.r.error), 23 + 77 * 3);
    assert_int_equal(strncmp(t.r.error, "llm answered HTTP 400: \xe2\x82\xac", 26), 0);
}

static void test_timeout_per_attempt(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;

    c.timeout_ms = 250;
    c.max_attempts = 2;
    llm = make(f, &c);
    faults(f, "{\"delay_ms\":3000}");
    chat(f, llm, &t, "are you there");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 2);
    assert_string_equal(t.r.text, "ECHO: are you there");
    assert_true(t.r.latency_ms >= 250);

    /* every attempt late: the turn fails, timed out, without a status */
    faults(f, "{\"delay_ms\":3000,\"count\":2}");
    chat(f, llm, &t, "still there");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 2);
    assert_int_equal(t.r.last_status, 0);
    assert_non_null(strstr(t.r.error, "timed out"));
    assert_true(t.r.latency_ms >= 2 * 250);
    assert_stats(llm, 2, 1, 2);
}

static void test_connection_drop_is_retried(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_http_client *own = myna_http_client_new(f->base, &err);
    struct myna_llm *llm;
    struct turn t;

    /* curl silently sends a request again when a reused keep-alive
     * connection dies unanswered; a client of its own (an empty pool) makes
     * the drop hit a fresh connection, which curl reports */
    assert_non_null(own);
    llm = myna_llm_new(f->base, own, &c, &err);
    assert_non_null(llm);
    faults(f, "{\"drop\":1}");
    chat(f, llm, &t, "hello?");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 2);
    assert_string_equal(t.r.text, "ECHO: hello?");
    assert_int_equal(n_requests(f, &fake), 2);
    assert_stats(llm, 1, 0, 1);
    myna_llm_free(llm);
    myna_http_client_free(own);
}

static void test_all_attempts_fail(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd;

    c.backoff_ms = 50;
    llm = make(f, &c);
    faults(f, "{\"status\":503,\"count\":-1}");
    chat(f, llm, &t, "anyone");
    assert_int_not_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 3);
    assert_int_equal(t.r.last_status, 503);
    assert_null(t.r.text);
    assert_non_null(strstr(t.r.error, "overloaded"));
    /* backoff 50 then 100 ms, each at least 80% */
    assert_true(t.r.latency_ms >= 40 + 80);
    assert_int_equal(n_requests(f, &fake), 3);
    assert_stats(llm, 1, 1, 2);

    /* nobody listening: transport errors are retried too */
    myna_llm_free(llm);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", ntohs(sin.sin_port));
    close(fd);  /* bound, never listening, closed: connections are refused */
    c.url = url;
    llm = make(f, &c);
    chat(f, llm, &t, "anyone");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 3);
    assert_int_equal(t.r.last_status, 0);
    assert_non_null(strstr(t.r.error, "llm request failed"));
}

static void test_unusable_answers(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;
    char *big, *json;
    size_t n = (1u << 20) + 100;

    /* 200 with a body that is not a chat completion: no retry */
    faults(f, "{\"raw\":\"<html>oops</html>\"}");
    chat(f, llm, &t, "x");
    assert_int_equal(t.r.rc, MYNA_EPARSE);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(t.r.last_status, 200);
    assert_non_null(strstr(t.r.error, "not JSON"));

    faults(f, "{\"raw\":\"{\\\"choices\\\":[{\\\"message\\\":{\\\"role\\\":\\\"assistant\\\","
              "\\\"content\\\":null},\\\"finish_reason\\\":\\\"tool_calls\\\"}]}\"}");
    chat(f, llm, &t, "x");
    assert_int_equal(t.r.rc, MYNA_EPARSE);
    assert_non_null(strstr(t.r.error, "null"));
    assert_non_null(strstr(t.r.error, "tool_calls"));

    /* an answer over 1 MiB is cut off and not asked for again */
    big = malloc(n + 1);
    json = malloc(n + 64);
    assert_non_null(big);
    assert_non_null(json);
    memset(big, 'a', n);
    big[n] = '\0';
    snprintf(json, n + 64, "{\"raw\":\"%s\"}", big);
    faults(f, json);
    free(big);
    free(json);
    chat(f, llm, &t, "x");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_non_null(strstr(t.r.error, "larger"));
    assert_stats(llm, 3, 3, 0);
}

/* An answer that cannot be used was paid for all the same: a reasoning
 * model that thought until max_tokens used every one of them. Its usage
 * reaches the turn and the client's totals. */
static void test_tokens_of_an_unusable_answer_count(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct myna_llm_stats st;
    struct turn t;

    faults(f, "{\"raw\":\"{\\\"choices\\\":[{\\\"message\\\":{\\\"role\\\":\\\"assistant\\\","
              "\\\"content\\\":\\\"<think>Let me see\\\"},\\\"finish_reason\\\":\\\"length\\\"}],"
              "\\\"usage\\\":{\\\"prompt_tokens\\\":12,\\\"completion_tokens\\\":64}}\"}");
    chat(f, llm, &t, "x");
    assert_int_equal(t.r.rc, MYNA_EPARSE);
    assert_null(t.r.text);
    assert_non_null(strstr(t.r.error, "all thinking"));
    assert_int_equal(t.r.prompt_tokens, 12);
    assert_int_equal(t.r.completion_tokens, 64);

    chat(f, llm, &t, "y");   /* the echo: 1 + 3 prompt words, 2 completion words */
    assert_int_equal(t.r.rc, MYNA_OK);
    myna_llm_stats(llm, &st);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.prompt_tokens, 12 + 4);
    assert_int_equal(st.completion_tokens, 64 + 2);
}

/* Some OpenAI-compatible servers answer 200 with {"error":{...}} when
 * overloaded: retried as the same error with a 5xx would be. */
static void test_error_object_with_200_is_retried(void **state)
{
#define OVERLOADED "\"raw\":\"{\\\"error\\\":{\\\"message\\\":\\\"Server is overloaded, " \
                   "try later\\\",\\\"type\\\":\\\"server_error\\\"}}\""
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;

    faults(f, "{" OVERLOADED "}");
    chat(f, llm, &t, "busy?");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_int_equal(t.r.attempts, 2);
    assert_string_equal(t.r.text, "ECHO: busy?");
    assert_int_equal(n_requests(f, &fake), 2);
    assert_stats(llm, 1, 0, 1);

    /* every attempt so: the turn fails as after 5xx answers, with the message */
    faults(f, "{" OVERLOADED ",\"count\":-1}");
    chat(f, llm, &t, "still busy?");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 3);
    assert_int_equal(t.r.last_status, 200);
    assert_null(t.r.text);
    assert_non_null(strstr(t.r.error, "llm answered HTTP 200: Server is overloaded, try later"));
    assert_stats(llm, 2, 1, 3);
#undef OVERLOADED
}

/* ---- circuit breaker ------------------------------------------------------------ */

/* Tries a turn every 10 ms until the circuit lets one through. */
static int64_t chat_when_admitted(struct fx *f, struct myna_llm *llm, struct turn *t,
                                  const char *user)
{
    int64_t deadline = myna_mono_ms() + WAIT_MS;
    int rc;

    memset(t, 0, sizeof(*t));
    while ((rc = chat_start(f, llm, t, user)) == MYNA_EAGAIN && myna_mono_ms() < deadline)
        run_for(f, 10);
    assert_int_equal(rc, MYNA_OK);
    return myna_mono_ms();
}

static void test_circuit_breaker(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct myna_llm_stats st;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_llm_msg m = { "user", "x" };
    struct turn t, refused, probe;
    int64_t opened, admitted;

    c.max_attempts = 1;
    c.breaker_failures = 2;
    c.breaker_cooldown_ms = 300;
    llm = make(f, &c);
    faults(f, "{\"status\":500,\"count\":3}");

    chat(f, llm, &t, "one");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    chat(f, llm, &t, "two");
    assert_int_equal(t.r.rc, MYNA_EIO);
    opened = myna_mono_ms();
    assert_int_equal(myna_llm_circuit_open(llm), 1);
    myna_llm_stats(llm, &st);
    assert_int_equal(st.circuit_open, 1);

    /* open: refused at once, no callback, nothing sent */
    memset(&refused, 0, sizeof(refused));
    assert_int_equal(myna_llm_chat(llm, &m, 1, on_turn, &refused, &err), MYNA_EAGAIN);
    assert_int_equal(err.code, MYNA_EAGAIN);
    assert_non_null(strstr(err.msg, "circuit open"));
    assert_int_equal(n_requests(f, &fake), 2);

    /* after the cooldown one probe goes; the others wait for its verdict */
    admitted = chat_when_admitted(f, llm, &probe, "probe one");
    assert_true(admitted - opened >= 250);  /* cooldown 300, measured from a bit later */
    assert_int_equal(chat_start(f, llm, &refused, "meanwhile"), MYNA_EAGAIN);
    assert_int_equal(myna_llm_circuit_open(llm), 1);
    assert_true(run_until(f, is_set, &probe.calls, WAIT_MS));
    assert_int_equal(probe.r.rc, MYNA_EIO);   /* the third 500 */
    opened = myna_mono_ms();
    /* a failed probe opens the circuit for another cooldown */
    assert_int_equal(myna_llm_circuit_open(llm), 1);
    assert_int_equal(chat_start(f, llm, &refused, "still closed"), MYNA_EAGAIN);

    admitted = chat_when_admitted(f, llm, &probe, "probe two");
    assert_true(admitted - opened >= 250);  /* cooldown 300, measured from a bit later */
    assert_true(run_until(f, is_set, &probe.calls, WAIT_MS));
    assert_int_equal(probe.r.rc, MYNA_OK);
    assert_string_equal(probe.r.text, "ECHO: probe two");
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    chat(f, llm, &t, "back to normal");
    assert_int_equal(t.r.rc, MYNA_OK);

    assert_int_equal(refused.calls, 0);
    assert_int_equal(n_requests(f, &fake), 5);
    myna_llm_stats(llm, &st);
    assert_int_equal(st.requests, 5);
    assert_int_equal(st.failures, 3);
    assert_int_equal(st.circuit_open, 0);
}

static int http_quiet(void *arg)
{
    struct fx *f = arg;

    return myna_http_inflight(f->http) == 0;
}

/* A content filter, a refusal or a tool call is the model's answer to one
 * request: the customer gets the fallback, but the endpoint works, and one
 * customer's messages must not open the circuit for every other one. */
static void test_declined_answers_leave_the_circuit_closed(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;

    c.breaker_failures = 1;
    llm = make(f, &c);
    faults(f, "[{\"raw\":\"{\\\"choices\\\":[{\\\"message\\\":{\\\"role\\\":"
              "\\\"assistant\\\",\\\"content\\\":null},\\\"finish_reason\\\":"
              "\\\"content_filter\\\"}]}\"},"
              "{\"raw\":\"{\\\"choices\\\":[{\\\"message\\\":{\\\"role\\\":"
              "\\\"assistant\\\",\\\"content\\\":null,\\\"refusal\\\":"
              "\\\"I cannot help with that.\\\"},\\\"finish_reason\\\":\\\"stop\\\"}]}\"}]");
    chat(f, llm, &t, "filtered");
    assert_int_equal(t.r.rc, MYNA_EPARSE);
    assert_int_equal(t.r.attempts, 1);
    assert_non_null(strstr(t.r.error, "content_filter"));
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    chat(f, llm, &t, "refused");
    assert_int_equal(t.r.rc, MYNA_EPARSE);
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    /* the next customer is answered by the model */
    chat(f, llm, &t, "next");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: next");
    assert_int_equal(n_requests(f, &fake), 3);
}

/* An answer over 1 MiB is about the request that asked for it (a large
 * llm.max_tokens and a customer wanting a long text): the endpoint works,
 * and the others are still answered by the model. */
static void test_too_large_answer_leaves_the_circuit_closed(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;
    size_t n = (1u << 20) + 100;
    char *json = malloc(n + 64);

    assert_non_null(json);
    c.breaker_failures = 1;
    llm = make(f, &c);
    memcpy(json, "{\"raw\":\"", 8);
    memset(json + 8, 'a', n);
    memcpy(json + 8 + n, "\"}", 3);
    faults(f, json);
    free(json);
    chat(f, llm, &t, "write me a book");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_non_null(strstr(t.r.error, "larger"));
    assert_int_equal(myna_llm_circuit_open(llm), 0);
    /* the next customer is answered by the model */
    chat(f, llm, &t, "next");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: next");
    assert_int_equal(n_requests(f, &fake), 2);
}

static void test_circuit_opening_stops_waiting_retries(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn a, b;

    c.breaker_failures = 1;
    c.backoff_ms = 1000;
    llm = make(f, &c);
    faults(f, "[{\"status\":500},{\"raw\":\"not json\"}]");
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(chat_start(f, llm, &a, "a"), MYNA_OK);
    /* a's first attempt answered 500: a now waits ~1 s to retry */
    assert_true(run_until(f, http_quiet, f, WAIT_MS));
    assert_int_equal(a.calls, 0);
    /* b's unusable answer opens the circuit (no retry for a bad body) */
    assert_int_equal(chat_start(f, llm, &b, "b"), MYNA_OK);
    assert_true(run_until(f, is_set, &b.calls, WAIT_MS));
    assert_int_equal(b.r.rc, MYNA_EPARSE);
    assert_int_equal(myna_llm_circuit_open(llm), 1);
    /* a's retry is not sent into an open circuit */
    assert_true(run_until(f, is_set, &a.calls, WAIT_MS));
    assert_int_equal(a.r.rc, MYNA_EAGAIN);
    assert_int_equal(a.r.attempts, 1);
    assert_int_equal(a.r.last_status, 500);
    assert_non_null(strstr(a.r.error, "circuit open"));
    assert_int_equal(n_requests(f, &fake), 2);
}

/* ---- free with work in flight ----------------------------------------------------- */

static int fake_has_one(void *arg);

static void test_free_with_request_in_flight(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;

    faults(f, "{\"delay_ms\":300}");
    memset(&t, 0, sizeof(t));
    assert_int_equal(chat_start(f, llm, &t, "never mind"), MYNA_OK);
    assert_true(run_until(f, fake_has_one, f, WAIT_MS));
    assert_int_equal(myna_http_inflight(f->http), 1);
    myna_llm_free(llm);
    f->llm = NULL;
    /* the request is cancelled with the turn: no callback, nothing left */
    assert_int_equal(myna_http_inflight(f->http), 0);
    run_for(f, 400);
    assert_int_equal(t.calls, 0);
    assert_int_equal(n_requests(f, &fake), 1);
}

/* A bot that stops frees the model client, then the HTTP client, with a
 * turn waiting for an endpoint that never answers: nothing may be left
 * for the HTTP client to drop without a word (LeakSanitizer checks). */
static void test_free_then_http_client_with_request_in_flight(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    struct myna_llm_conf c;
    char url[64];
    struct turn t;
    int s = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(s >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* connections wait in the backlog, never accepted, never answered */
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 8), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", ntohs(sa.sin_port));
    memset(&c, 0, sizeof(c));
    c.url = url;
    c.temperature = -1;
    make(f, &c);
    memset(&t, 0, sizeof(t));
    assert_int_equal(chat_start(f, f->llm, &t, "hello?"), MYNA_OK);
    run_for(f, 200);
    assert_int_equal(myna_http_inflight(f->http), 1);
    myna_llm_free(f->llm);
    f->llm = NULL;
    assert_int_equal(myna_http_inflight(f->http), 0);
    myna_http_client_free(f->http);
    f->http = NULL;
    close(s);
    assert_int_equal(t.calls, 0);
}

static void test_free_while_waiting_to_retry(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;

    c.backoff_ms = 100;
    llm = make(f, &c);
    faults(f, "{\"status\":500}");
    memset(&t, 0, sizeof(t));
    assert_int_equal(chat_start(f, llm, &t, "later"), MYNA_OK);
    assert_true(run_until(f, http_quiet, f, WAIT_MS));   /* the 500 came: timer armed */
    myna_llm_free(llm);
    f->llm = NULL;
    run_for(f, 300);   /* past the longest backoff (120 ms) */
    assert_int_equal(t.calls, 0);
    assert_int_equal(n_requests(f, &fake), 1);
}

static int fake_has_one(void *arg)
{
    struct fx *f = arg;

    return n_requests(f, &fake) >= 1;
}

static void test_free_inside_the_callback(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn slow, quick;

    faults(f, "{\"delay_ms\":300}");
    memset(&slow, 0, sizeof(slow));
    memset(&quick, 0, sizeof(quick));
    assert_int_equal(chat_start(f, llm, &slow, "slow"), MYNA_OK);
    assert_true(run_until(f, fake_has_one, f, WAIT_MS));  /* slow took the delay */
    quick.free_me = &f->llm;
    assert_int_equal(chat_start(f, llm, &quick, "quick"), MYNA_OK);
    assert_true(run_until(f, is_set, &quick.calls, WAIT_MS));
    assert_int_equal(quick.r.rc, MYNA_OK);
    assert_null(f->llm);
    assert_true(run_until(f, http_quiet, f, WAIT_MS));
    run_for(f, 20);
    assert_int_equal(slow.calls, 0);
}

/* ---- auth ------------------------------------------------------------------------ */

static void test_bearer_token(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake_auth, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;

    c.api_key = API_KEY;
    llm = make(f, &c);
    chat(f, llm, &t, "with key");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "ECHO: with key");
    myna_llm_free(llm);

    c.api_key = "sk-wrong";
    llm = make(f, &c);
    chat(f, llm, &t, "wrong key");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 1);
    assert_int_equal(t.r.last_status, 401);
    assert_non_null(strstr(t.r.error, "Incorrect API key"));
    assert_null(strstr(t.r.error, "sk-wrong"));
    myna_llm_free(llm);

    c.api_key = "";
    llm = make(f, &c);
    chat(f, llm, &t, "no key");
    assert_int_equal(t.r.last_status, 401);
    assert_int_equal(n_requests(f, &fake_auth), 3);
}

/* An endpoint that quotes the key it refused (OpenAI does with a short
 * one), or a proxy page that echoes the request: the key is not in the
 * turn's error, which is logged and kept. */
static void test_api_key_never_in_the_error(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct turn t;

    c.api_key = "sk-wrong-key-4242";
    llm = make(f, &c);
    faults(f, "{\"status\":401,\"message\":\"Incorrect API key provided: sk-wrong-key-4242. "
              "You can find your API key at https://platform.openai.com/account/api-keys.\"}");
    chat(f, llm, &t, "x");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.last_status, 401);
    assert_null(strstr(t.r.error, "sk-wrong-key-4242"));
    assert_non_null(strstr(t.r.error, "Incorrect API key provided: [api_key]. You can find"));

    /* retried (502), not JSON: the echo of the header goes too */
    faults(f, "{\"status\":502,\"count\":3,\"raw\":\"<pre>Authorization: Bearer "
              "sk-wrong-key-4242</pre>\"}");
    chat(f, llm, &t, "y");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.attempts, 3);
    assert_null(strstr(t.r.error, "sk-wrong-key-4242"));
    assert_non_null(strstr(t.r.error, "Bearer [api_key]"));

    /* a page quoted only to its first 120 bytes, the key across that
     * bound: the start of it that is quoted goes too */
    faults(f, "{\"status\":400,\"raw\":\"<html><body><h1>400 Bad Request</h1><p>The proxy "
              "could not pass this request on. Headers: Authorization: Bearer "
              "sk-wrong-key-4242</p></body></html>\"}");
    chat(f, llm, &t, "z");
    assert_int_equal(t.r.rc, MYNA_EIO);
    assert_int_equal(t.r.last_status, 400);
    assert_null(strstr(t.r.error, "sk-wrong"));
    assert_non_null(strstr(t.r.error, "Authorization: Bearer[api_key]"));
}

/* ---- content as parts, and the parser ------------------------------------------- */

static void test_content_as_parts_over_http(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm = make(f, &c);
    struct turn t;

    faults(f, "{\"parts\":1,\"reply\":\"from parts\"}");
    chat(f, llm, &t, "x");
    assert_int_equal(t.r.rc, MYNA_OK);
    assert_string_equal(t.r.text, "from parts");
    assert_int_equal(t.r.completion_tokens, 2);
}

static int parse(const char *body, const char **text, int *pt, int *ct, struct myna_arena *a,
                 struct myna_err *err)
{
    return myna_llm_parse_response(body, strlen(body), a, text, pt, ct, err);
}

static void test_parse_response(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(1u << 20);
    struct myna_err err = MYNA_ERR_INIT;
    const char *text;
    int pt, ct;

    (void)state;
    /* OpenAI */
    assert_int_equal(parse("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
                           "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                           "\"assistant\",\"content\":\"Hi \\u00e9\\ud83d\\ude00\",\"refusal\":null},"
                           "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,"
                           "\"completion_tokens\":3,\"total_tokens\":12}}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Hi \xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(pt, 9);
    assert_int_equal(ct, 3);

    /* parts: text ones joined, others skipped; usage absent */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
                           "\"Hello, \"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},"
                           "{\"type\":\"text\",\"text\":\"world\"},{\"text\":\"!\"}]}}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Hello, world!");
    assert_int_equal(pt, 0);
    assert_int_equal(ct, 0);

    /* the empty answer is an answer */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"\"}}],\"usage\":"
                           "{\"prompt_tokens\":-4,\"completion_tokens\":1e30}}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "");
    assert_int_equal(pt, 0);
    assert_int_equal(ct, 2147483647);

    /* invalid UTF-8 (a server cutting a character) is replaced */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"ok\xd0\"}}]}", &text, &pt,
                           &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "ok\xef\xbf\xbd");

    /* a NUL, escaped or raw, would cut the text: a bad answer */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Yes\\u0000, but no\"}}],"
                           "\"usage\":{\"prompt_tokens\":5}}", &text, &pt, &ct, &a, &err),
                     MYNA_EPARSE);
    assert_null(text);
    assert_int_equal(pt, 5);  /* spent all the same */
    assert_non_null(strstr(err.msg, "NUL"));
    {
        static const char raw[] = "{\"choices\":[{\"message\":{\"content\":\"Yes\0, but no\"}}]}";
        assert_int_equal(myna_llm_parse_response(raw, sizeof(raw) - 1, &a, &text, &pt, &ct, &err),
                         MYNA_EPARSE);
        assert_null(text);
    }
    /* an escaped backslash before "u0000" is no NUL */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"C:\\\\u0000\"}}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "C:\\u0000");

    /* a reasoning model's thoughts in the content are not the answer */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"<think>\\nThe user wants "
                           "a haircut.\\n</think>\\n\\nHello!\"}}]}", &text, &pt, &ct, &a, &err),
                     MYNA_OK);
    assert_string_equal(text, "Hello!");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\" \\n<think>x</think>Hi\"}}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Hi");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Say <think>x</think> y\"}}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Say <think>x</think> y");
    /* the template opened the block in the prompt: only its end is in
     * the content */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Okay, the user "
                           "wants a haircut.\\n</think>\\n\\nHello!\"}}]}", &text, &pt, &ct,
                           &a, &err), MYNA_OK);
    assert_string_equal(text, "Hello!");
    /* thinking until max_tokens: no answer at all, and the error says
     * what to change */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"<think>\\nThe client "
                           "asks about prices, I should\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_EPARSE);
    assert_null(text);
    assert_non_null(strstr(err.msg, "raise llm.max_tokens"));
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"<think>x\"}}]}",
                           &text, &pt, &ct, &a, &err), MYNA_EPARSE);
    assert_non_null(strstr(err.msg, "its <think> never ended"));
    assert_null(strstr(err.msg, "max_tokens"));
    /* a reasoning parser took the thoughts out of the content, and they
     * used up max_tokens: a null or empty content says the same */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":null,"
                           "\"reasoning_content\":\"The client asks\"},"
                           "\"finish_reason\":\"length\"}]}", &text, &pt, &ct, &a, &err),
                     MYNA_EPARSE);
    assert_null(text);
    assert_non_null(strstr(err.msg, "null"));
    assert_non_null(strstr(err.msg, "raise llm.max_tokens"));
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"\","
                           "\"reasoning_content\":\"The client asks\"},"
                           "\"finish_reason\":\"length\"}]}", &text, &pt, &ct, &a, &err),
                     MYNA_EPARSE);
    assert_null(text);
    assert_non_null(strstr(err.msg, "raise llm.max_tokens"));
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"<think>a</think>\\n \"},"
                           "\"finish_reason\":\"length\"}]}", &text, &pt, &ct, &a, &err),
                     MYNA_EPARSE);
    assert_non_null(strstr(err.msg, "raise llm.max_tokens"));
    /* an empty content that was not cut is not a max_tokens matter */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"\"},"
                           "\"finish_reason\":\"stop\"}]}", &text, &pt, &ct, &a, &err),
                     MYNA_OK);
    assert_string_equal(text, "");

    /* stopped by max_tokens: back to the last sentence end when that keeps
     * half of the text, else to a word end with an ellipsis */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"One. Two three four "
                           "five. Six seven\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "One. Two three four five.");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Готово! Стрижка "
                           "стоит 500\\nЗапишитесь на\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Готово! Стрижка стоит 500");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Ok. The price of a "
                           "haircut is 50\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Ok. The price of a haircut is\xe2\x80\xa6");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Wait\xe2\x80\xa6 "
                           "ok!\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Wait\xe2\x80\xa6 ok!");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"<think>a</think>"
                           "Supercalifragilistic\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Supercalifragilistic\xe2\x80\xa6");
    /* a finished answer is left alone */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Ok. The price is "
                           "50\"},\"finish_reason\":\"stop\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Ok. The price is 50");

    /* the failures: no text, the usage kept (the tokens were spent), err
     * says what */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
                           "\"tool_calls\":[]},\"finish_reason\":\"tool_calls\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_ESHAPE);
    assert_null(text);
    assert_non_null(strstr(err.msg, "null"));
    assert_non_null(strstr(err.msg, "tool_calls"));
    assert_null(strstr(err.msg, "max_tokens"));
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"role\":\"assistant\"}}],"
                           "\"usage\":{\"prompt_tokens\":5}}", &text, &pt, &ct, &a, &err),
                     MYNA_EPARSE);
    assert_int_equal(pt, 5);
    assert_int_equal(ct, 0);
    assert_int_equal(parse("{\"choices\":[]}", &text, &pt, &ct, &a, &err), MYNA_EPARSE);
    assert_int_equal(pt, 0);  /* no usage: none of the last answer's */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":[{\"type\":\"image_url\"}]}}]}",
                           &text, &pt, &ct, &a, &err), MYNA_EPARSE);
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":42}}]}", &text, &pt, &ct, &a,
                           &err), MYNA_EPARSE);
    /* an error object instead of choices: the server's error, to try again */
    assert_int_equal(parse("{\"error\":{\"message\":\"model overloaded\"}}", &text, &pt, &ct, &a,
                           &err), MYNA_EAGAIN);
    assert_null(text);
    assert_non_null(strstr(err.msg, "model overloaded"));
    assert_int_equal(parse("{\"error\":\"busy\"}", &text, &pt, &ct, &a, &err), MYNA_EAGAIN);
    /* a long message is cut at a character boundary: 66 of these 100
     * three-byte characters fit the 200 bytes shown */
    {
        char body[512];
        size_t o = (size_t)snprintf(body, sizeof(body), "{\"error\":{\"message\":\"");
        for (int i = 0; i < 100; i++, o += 3)
            memcpy(body + o, "\xe2\x82\xac", 3);
        snprintf(body + o, sizeof(body) - o, "\"}}");
        assert_int_equal(parse(body, &text, &pt, &ct, &a, &err), MYNA_EAGAIN);
        assert_int_equal(strlen(err.msg), strlen("llm answer is an error: ") + 66 * 3);
        assert_int_equal(myna_utf8_prefix(err.msg, strlen(err.msg)), strlen(err.msg));
    }
    assert_int_equal(parse("{\"error\":{\"code\":503}}", &text, &pt, &ct, &a, &err),
                     MYNA_EAGAIN);
    assert_int_equal(parse("{\"error\":null}", &text, &pt, &ct, &a, &err), MYNA_EPARSE);
    assert_int_equal(parse("[1,2]", &text, &pt, &ct, &a, &err), MYNA_EPARSE);
    assert_int_equal(parse("{\"choices\":", &text, &pt, &ct, &a, &err), MYNA_EPARSE);
    assert_non_null(strstr(err.msg, "not JSON"));
    assert_int_equal(myna_llm_parse_response("", 0, &a, &text, &pt, &ct, &err), MYNA_EPARSE);
    assert_int_equal(err.code, MYNA_EPARSE);
    myna_arena_free(&a);

    /* an arena too small for the tree: ENOMEM, not EPARSE */
    a = (struct myna_arena)MYNA_ARENA_INIT(64);
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"a long enough answer to "
                           "need more than sixty-four bytes of arena\"}}]}",
                           &text, &pt, &ct, &a, &err), MYNA_ENOMEM);
    assert_null(text);
    myna_arena_free(&a);
}

/* An answer stopped by max_tokens inside a numbered list: the number of
 * the item it was writing ends no sentence, so the cut goes before that
 * line instead of leaving a bare "3." */
static void test_parse_length_cut_in_a_list(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(1u << 20);
    struct myna_err err = MYNA_ERR_INIT;
    const char *text;
    int pt, ct;

    (void)state;
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Our services:\\n1. "
                           "Haircut - 500\\n2. Coloring - 1500\\n3. Styl\"},\"finish_reason\":"
                           "\"length\"}]}", &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Our services:\n1. Haircut - 500\n2. Coloring - 1500");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Prices:\\n\\n  10. "
                           "Haircut costs 500 rubles.\\n  11. Coloring costs\"},"
                           "\"finish_reason\":\"length\"}]}", &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Prices:\n\n  10. Haircut costs 500 rubles.");
    /* a number that ends a sentence inside a line still does */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"We open at 9. Then "
                           "the mas\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "We open at 9.");
    /* a bold number is a list item's number all the same */
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Steps:\\n**1.** Come "
                           "in\\n**2.** Sit\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Steps:\n**1.** Come in");
    myna_arena_free(&a);
}

/* An answer stopped by max_tokens is cut after its last sentence with the
 * closers that stay with it (a span, a quote), at the marks of other
 * scripts, and right after a Chinese or Japanese one, which no space
 * follows. */
static void test_parse_length_cut_after_closers(void **state)
{
    struct myna_arena a = MYNA_ARENA_INIT(1u << 20);
    struct myna_err err = MYNA_ERR_INIT;
    const char *text;
    int pt, ct;

    (void)state;
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"**Итого: 1500 ₽.** "
                           "Записать вас\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "**Итого: 1500 ₽.**");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"Он сказал: «Да.» "
                           "Потом\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "Он сказал: «Да.»");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"هل تريد الحجز؟ "
                           "نعم\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "هل تريد الحجز؟");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"好的，我们明天见。"
                           "请准时\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "好的，我们明天见。");
    assert_int_equal(parse("{\"choices\":[{\"message\":{\"content\":\"はい、「了解です。」"
                           "次は\"},\"finish_reason\":\"length\"}]}",
                           &text, &pt, &ct, &a, &err), MYNA_OK);
    assert_string_equal(text, "はい、「了解です。」");
    myna_arena_free(&a);
}

/* ---- arguments -------------------------------------------------------------------- */

static void test_bad_arguments(void **state)
{
    struct fx *f = *state;
    char url[160];
    struct myna_llm_conf c = conf_for(&fake, url, sizeof(url));
    struct myna_llm *llm;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_llm_msg bad[2] = { { "user", "x" }, { "user", NULL } };
    struct myna_llm_msg norole = { NULL, "x" };
    struct turn t;

    myna_llm_free(NULL);
    c.url = "ftp://example.com/v1";
    assert_null(myna_llm_new(f->base, f->http, &c, &err));
    assert_int_equal(err.code, MYNA_ECONFIG);  /* a bot exits 2 for it: not restarted */
    c.url = NULL;
    assert_null(myna_llm_new(f->base, f->http, &c, &err));
    c = conf_for(&fake, url, sizeof(url));
    c.api_key = "sk-abc\r\nX-Evil: 1";
    err = (struct myna_err)MYNA_ERR_INIT;
    assert_null(myna_llm_new(f->base, f->http, &c, &err));
    assert_int_equal(err.code, MYNA_ECONFIG);
    assert_null(strstr(err.msg, "sk-abc"));

    c = conf_for(&fake, url, sizeof(url));
    llm = make(f, &c);
    memset(&t, 0, sizeof(t));
    assert_int_equal(myna_llm_chat(llm, bad, 0, on_turn, &t, &err), MYNA_EINVAL);
    assert_int_equal(myna_llm_chat(llm, bad, 2, on_turn, &t, &err), MYNA_EINVAL);
    assert_int_equal(myna_llm_chat(llm, &norole, 1, on_turn, &t, &err), MYNA_EINVAL);
    assert_int_equal(myna_llm_chat(llm, bad, 1, NULL, &t, &err), MYNA_EINVAL);
    run_for(f, 20);
    assert_int_equal(t.calls, 0);
    assert_int_equal(myna_http_inflight(f->http), 0);
    assert_stats(llm, 0, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normal_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opening_answers_go_into_the_system_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_role_in_a_row_goes_as_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_url_trailing_slash_and_no_optional_fields,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_url_with_a_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_500_twice_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_refusing_max_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_refusing_temperature_and_top_p, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refusal_again_does_not_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_400s_are_not_adapted, setup, teardown),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test_setup_teardown(test_long_errors_cut_at_characters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_per_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_drop_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_attempts_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_of_an_unusable_answer_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_object_with_200_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_circuit_breaker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declined_answers_leave_the_circuit_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_too_large_answer_leaves_the_circuit_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_circuit_opening_stops_waiting_retries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_with_request_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_then_http_client_with_request_in_flight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_while_waiting_to_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_the_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_key_never_in_the_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_as_parts_over_http, setup, teardown),
        cmocka_unit_test(test_parse_response),
        cmocka_unit_test(test_parse_length_cut_in_a_list),
        cmocka_unit_test(test_parse_length_cut_after_closers),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
