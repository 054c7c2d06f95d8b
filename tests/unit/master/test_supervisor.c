/* test_supervisor.c - the supervisor of master/supervisor.c (included, to
 * reach its pure pieces): the id table, the backoff and crash-loop policy,
 * the statm parser, the heartbeat pipe's lines; then whole lifecycles with
 * real processes on short clocks. The supervisor execs /proc/self/exe,
 * which is this program: run as `<self> bot --instance ID ...` it is a fake
 * bot whose behaviour comes from its id's prefix (ok-, crash-, conf-, mute-,
 * stubborn-, attn-, lock-). It reports on its standard output and error,
 * which the supervisor points at logs/<id>.log. close_range fails on
 * demand (close_range_errno), as on old kernels and seccomp profiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/ioctl.h>

#include <errno.h>
#include <unistd.h>

#include "../tmpdir.h"

static int close_range_errno;  /* nonzero: close_range fails with it */

static int test_close_range(unsigned int first, unsigned int last, int flags)
{
    if (close_range_errno != 0) {
        errno = close_range_errno;
        return -1;
    }
    return close_range(first, last, flags);
}

#define close_range test_close_range
#include "master/supervisor.c"
#undef close_range

/* ---- the fake bot ----------------------------------------------------------- */

static volatile sig_atomic_t fake_term;

static void fake_on_term(int sig)
{
    (void)sig;
    fake_term = 1;
}

static int fake_bot(int argc, char **argv)
{
    const char *id = "?";
    int bell = -1, hb = -1, beats = 1, fds_ok = 1, attn, locked, billing;
    struct sigaction sa;

    for (int i = 2; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--instance") == 0)
            id = argv[++i];
        else if (strcmp(argv[i], "--doorbell-fd") == 0)
            bell = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--heartbeat-fd") == 0)
            hb = (int)strtol(argv[++i], NULL, 10);
    }
    for (int fd = 5; fd < 1024; fd++)  /* nothing but 0-4 is inherited */
        if (fcntl(fd, F_GETFD) != -1)
            fds_ok = 0;
    printf("fake up %s stdout\n", id);
    fflush(stdout);
    fprintf(stderr, "fake up %s stderr fds=%s bell=%d hb=%d\n", id, fds_ok ? "ok" : "leaked",
            bell, hb);
    if (strncmp(id, "crash-", 6) == 0)
        return 1;
    if (strncmp(id, "last-", 5) == 0) {  /* its last word, then gone */
        ssize_t w = write(hb, "attention account_locked on\nattention invalid_tok", 49);
        (void)w;
        return 1;
    }
    if (strncmp(id, "conf-", 5) == 0)
        return 2;
    beats = strncmp(id, "mute-", 5) != 0;
    attn = strncmp(id, "attn-", 5) == 0;
    locked = strncmp(id, "lock-", 5) == 0;
    billing = strncmp(id, "bill-", 5) == 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = strncmp(id, "stubborn-", 9) == 0 ? SIG_IGN : fake_on_term;
    sigaction(SIGTERM, &sa, NULL);
    fcntl(hb, F_SETFL, O_NONBLOCK);
    if (attn) {  /* garbage first, then both reasons on, each line in one write */
        static const char *const lines[] = { "\x01\x01 not a line we know\n",
                                             "attention crash_loop on\n",
                                             "attention invalid_token on\n",
                                             "attention llm_circuit_open on\n" };
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            ssize_t w = write(hb, lines[i], strlen(lines[i]));
            (void)w;
        }
    }
    if (locked) {  /* the provider locked the account */
        ssize_t w = write(hb, "attention account_locked on\n", 28);
        (void)w;
    }
    if (billing) {  /* the number is not registered, and the payment failed */
        ssize_t w = write(hb, "attention number_unregistered on\n", 33);
        w = write(hb, "attention payment_failed on\n", 28);
        (void)w;
    }
    while (!fake_term) {
        struct pollfd p = { bell, POLLIN, 0 };
        char buf[64];
        if (beats) {
            ssize_t w = write(hb, "\n", 1);
            (void)w;
        }
        if (poll(&p, 1, 20) > 0) {
            ssize_t r = read(bell, buf, sizeof(buf));
            if (r == 0)
                break;  /* the supervisor is gone */
            if (r > 0) {
                printf("rang %s\n", id);
                fflush(stdout);
            }
            if (r > 0 && attn) {  /* a ring: the token works again */
                ssize_t w = write(hb, "attention invalid_token off\n", 28);
                (void)w;
            }
            if (r > 0 && locked) {  /* a ring: the account is unlocked */
                ssize_t w = write(hb, "attention account_locked off\n", 29);
                (void)w;
            }
        }
    }
    fprintf(stderr, "fake down %s\n", id);
    return 0;
}

/* ---- fixture ---------------------------------------------------------------- */

struct fx {
    char dir[64];
    char master_log[128];
    struct event_base *base;
    struct event *tick;
    struct myna_supervisor *s;
    int alerts;
    char alert_id[80], alert_kind[32], alert_detail[200];
    char alert_kinds[400];   /* every kind so far, each followed by ',' */
    int done_calls;
    int64_t done_at_ms;
};

static char *fake_argv[] = { (char *)"--some", (char *)"option", NULL };

static void nop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void on_alert(const char *id, const char *kind, const char *detail, void *arg)
{
    struct fx *f = arg;

    f->alerts++;
    {
        size_t n = strlen(f->alert_kinds);
        snprintf(f->alert_kinds + n, sizeof(f->alert_kinds) - n, "%s,", kind);
    }
    snprintf(f->alert_id, sizeof(f->alert_id), "%s", id);
    snprintf(f->alert_kind, sizeof(f->alert_kind), "%s", kind);
    snprintf(f->alert_detail, sizeof(f->alert_detail), "%s", detail);
}

static void on_done(void *arg)
{
    struct fx *f = arg;

    f->done_calls++;
    f->done_at_ms = myna_mono_ms();
}

static void short_clocks(struct myna_supervisor *s)
{
    struct myna_supervisor_timing t;

    myna_supervisor_timing_default(&t);
    t.backoff_min_ms = 50;
    t.backoff_max_ms = 10000;
    t.healthy_ms = 100000;
    t.crash_window_ms = 60000;
    t.kill_after_ms = 300;
    t.heartbeat_timeout_ms = 1000;
    t.monitor_ms = 50;
    t.start_tick_ms = 100;
    t.start_batch = 3;
    assert_int_equal(myna_supervisor_set_timing(s, &t), MYNA_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct timeval ten = { 0, 10000 };
    struct myna_err err = MYNA_ERR_INIT;

    if (f == NULL || test_tmpdir(f->dir, sizeof(f->dir), "test-sup") != 0)
        return -1;
    snprintf(f->master_log, sizeof(f->master_log), "%s/master.log", f->dir);
    myna_log_open(f->master_log);
    f->base = event_base_new();
    f->tick = event_new(f->base, -1, EV_PERSIST, nop, NULL);  /* EVLOOP_ONCE never blocks long */
    if (f->base == NULL || f->tick == NULL || event_add(f->tick, &ten) != 0)
        return -1;
    if ((f->s = myna_supervisor_new(f->base, f->dir, 2, fake_argv, &err)) == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    short_clocks(f->s);
    myna_supervisor_set_alert(f->s, on_alert, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    myna_supervisor_free(f->s);
    event_free(f->tick);
    event_base_free(f->base);
    myna_log_open(NULL);
    if (getenv("MYNA_TEST_KEEP") == NULL)
        test_rmtree(f->dir);
    free(f);
    return 0;
}

/* Runs the loop until cond holds (1) or timeout_ms passed (0). */
static int run_until(struct fx *f, int (*cond)(struct fx *f, const void *arg), const void *arg,
                     int timeout_ms)
{
    int64_t until = myna_mono_ms() + timeout_ms;

    while (!cond(f, arg)) {
        if (myna_mono_ms() > until)
            return 0;
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    return 1;
}

static void run_for(struct fx *f, int ms)
{
    int64_t until = myna_mono_ms() + ms;

    while (myna_mono_ms() < until)
        event_base_loop(f->base, EVLOOP_ONCE);
}

static struct myna_bot_status st_of(struct fx *f, const char *id)
{
    struct myna_bot_status st;

    assert_int_equal(myna_supervisor_status(f->s, id, &st), MYNA_OK);
    return st;
}

static int is_running(struct fx *f, const void *id)
{
    struct myna_bot_status st = st_of(f, id);

    return strcmp(st.state, "running") == 0;
}

static int is_stopped(struct fx *f, const void *id)
{
    return strcmp(st_of(f, id).state, "stopped") == 0;
}

static int in_crash_loop(struct fx *f, const void *id)
{
    return strcmp(st_of(f, id).state, "crash_loop") == 0;
}

struct want_restarts {
    const char *id;
    int n;
};

/* Running again after at least n restarts. */
static int restarted(struct fx *f, const void *arg)
{
    const struct want_restarts *w = arg;
    struct myna_bot_status st = st_of(f, w->id);

    return st.restarts >= w->n && strcmp(st.state, "running") == 0;
}

static int some_done(struct fx *f, const void *arg)
{
    (void)arg;
    return f->done_calls > 0;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *s = calloc(1, 1 << 20);
    size_t n;

    assert_non_null(s);
    if (fp) {
        n = fread(s, 1, (1 << 20) - 1, fp);
        s[n] = '\0';
        fclose(fp);
    }
    return s;
}

static int file_has(const char *path, const char *needle)
{
    char *s = slurp(path);
    int found = strstr(s, needle) != NULL;

    free(s);
    return found;
}

struct want_text {
    const char *path;
    const char *needle;
};

static int has_text(struct fx *f, const void *arg)
{
    const struct want_text *w = arg;

    (void)f;
    return file_has(w->path, w->needle);
}

static void start_running(struct fx *f, const char *id, int max_memory_mb)
{
    assert_int_equal(myna_supervisor_add(f->s, id, max_memory_mb), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, id), MYNA_OK);
    if (!run_until(f, is_running, id, 5000))
        fail_msg("%s is %s, not running", id, st_of(f, id).state);
}

/* ---- pure pieces --------------------------------------------------------------- */

static void test_table_add_find_del_many(void **state)
{
    struct bot_table t = { NULL, 0, 0 };
    enum { N = 1000 };
    struct bot *v = calloc(N, sizeof(*v));
    char id[ID_MAX + 1];

    (void)state;
    assert_non_null(v);
    assert_null(table_find(&t, "none"));
    for (int i = 0; i < N; i++) {
        snprintf(v[i].id, sizeof(v[i].id), "inst-%d", i);
        assert_int_equal(table_add(&t, &v[i]), MYNA_OK);
        assert_int_equal(t.n, (size_t)i + 1);
        assert_true(t.cap >= t.n);  /* a bot per bucket at most, on average */
        assert_int_equal(t.cap & (t.cap - 1), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "inst-%d", i);
        assert_ptr_equal(table_find(&t, id), &v[i]);
    }
    for (int i = 0; i < N; i += 2)
        table_del(&t, &v[i]);
    assert_int_equal(t.n, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "inst-%d", i);
        assert_ptr_equal(table_find(&t, id), i % 2 ? &v[i] : NULL);
    }
    table_del(&t, &v[0]);  /* not there: nothing */
    assert_int_equal(t.n, N / 2);
    assert_null(table_find(&t, "inst-"));
    assert_null(table_find(&t, "inst-10000"));
    table_release(&t);
    assert_null(table_find(&t, "inst-1"));
    free(v);
}

static void test_backoff_doubles_to_its_cap(void **state)
{
    const int want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000 };
    int b = 1000;

    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(b, want[i]);
        b = backoff_next(b, 60000);
    }
    assert_int_equal(backoff_next(50, 400), 100);
    assert_int_equal(backoff_next(300, 400), 400);
}

static void test_crash_loop_is_five_crashes_in_the_window(void **state)
{
    struct crash_hist h;

    (void)state;
    crash_forget(&h);
    for (int i = 0; i < 4; i++)
        assert_false(crash_record(&h, 1000 + i * 1000, 300000, 1000, 60000));
    assert_true(crash_record(&h, 5000, 300000, 1000, 60000));  /* the 5th within 5 min */
    /* slow crashes: the oldest of the last 5 is out of the window */
    crash_forget(&h);
    for (int i = 0; i < 10; i++)
        assert_false(crash_record(&h, (int64_t)i * 80000, 300000, 1000, 60000));
    /* exactly at the window's edge still counts */
    crash_forget(&h);
    for (int i = 0; i < 4; i++)
        assert_false(crash_record(&h, (int64_t)i * 75000, 300000, 1000, 60000));
    assert_true(crash_record(&h, 300000, 300000, 1000, 60000));
    /* the backoff at its cap is a crash loop whatever the count */
    crash_forget(&h);
    assert_true(crash_record(&h, 0, 300000, 60000, 60000));
}

static void test_statm_resident_kb(void **state)
{
    (void)state;
    assert_int_equal(statm_rss_kb("1234 567 89 1 0 100 0\n", 4096), 567 * 4);
    assert_int_equal(statm_rss_kb("10 0 0 0 0 0 0", 4096), 0);
    assert_int_equal(statm_rss_kb("10 3 0", 65536), 3 * 64);
    assert_int_equal(statm_rss_kb("", 4096), -1);
    assert_int_equal(statm_rss_kb("12", 4096), -1);
    assert_int_equal(statm_rss_kb("12 x", 4096), -1);
    assert_int_equal(statm_rss_kb("x 12", 4096), -1);
    assert_int_equal(statm_rss_kb("1 99999999999999999999999", 4096), -1);
    assert_int_equal(statm_rss_kb("1 -5", 4096), -1);
}

/* ---- lifecycles ----------------------------------------------------------------- */

/* What beat_feed reported: "<reason>=on|off;" per line. */
struct seen {
    char text[512];
    int n;
};

static void on_seen(void *arg, unsigned bit, int on)
{
    struct seen *w = arg;
    size_t len = strlen(w->text);
    int i = attention_index(bit);

    assert_true(i >= 0 && (ATTN_FROM_BOT & bit));
    snprintf(w->text + len, sizeof(w->text) - len, "%s=%s;", attention_names[i],
             on ? "on" : "off");
    w->n++;
}

static void feed(struct beat_line *l, const char *bytes, size_t n, struct seen *w)
{
    beat_feed(l, bytes, n, on_seen, w);
    assert_true(l->len <= sizeof(l->buf));  /* bounded, whatever comes */
}

static void feed_s(struct beat_line *l, const char *bytes, struct seen *w)
{
    feed(l, bytes, strlen(bytes), w);
}

static void test_attention_lines_are_parsed(void **state)
{
    struct beat_line l;
    struct seen w;

    (void)state;
    memset(&l, 0, sizeof(l));
    memset(&w, 0, sizeof(w));
    feed_s(&l, "\n\n\n", &w);  /* heartbeats only */
    assert_int_equal(w.n, 0);
    feed_s(&l, "attention invalid_token on\n", &w);
    assert_string_equal(w.text, "invalid_token=on;");
    /* in pieces, as reads may cut it, between heartbeats */
    feed_s(&l, "\natten", &w);
    feed_s(&l, "tion llm_circuit_open o", &w);
    assert_int_equal(w.n, 1);
    feed_s(&l, "ff\n\nattention llm_circuit_open on\nattention invalid_token off\n", &w);
    assert_string_equal(w.text, "invalid_token=on;llm_circuit_open=off;llm_circuit_open=on;"
                                "invalid_token=off;");
    feed_s(&l, "attention account_locked on\nattention account_locked off\n", &w);
    assert_string_equal(w.text, "invalid_token=on;llm_circuit_open=off;llm_circuit_open=on;"
                                "invalid_token=off;account_locked=on;account_locked=off;");
    memset(&w, 0, sizeof(w));
    feed_s(&l, "attention number_unregistered on\nattention payment_failed on\n"
               "attention payment_failed off\n", &w);
    assert_string_equal(w.text, "number_unregistered=on;payment_failed=on;payment_failed=off;");
    assert_int_equal(l.len, 0);
}

static void test_attention_garbage_is_ignored(void **state)
{
    static const char *const bad[] = {
        "attention crash_loop on",        /* the supervisor's own, not a bot's */
        "attention unknown_reason on",
        "attention invalid_token maybe",
        "attention invalid_token on ",
        "attention invalid_token  on",
        "attention  invalid_token on",
        "attention invalid_token",
        "attention invalid_token ",
        "attention ",
        "attention",
        "ATTENTION invalid_token on",
        " attention invalid_token on",
        "xattention invalid_token on",
        "attention invalid_tokenx on",
        "attention invalid_toke on",
        "attention invalid_token onn",
        "attention invalid_token of",
        "attention invalid_token on\r",
        "\x01attention invalid_token on",  /* a byte of the old heartbeats glued on */
        "",
    };
    struct beat_line l;
    struct seen w;
    char big[300];
    unsigned seed = 12345;

    (void)state;
    memset(&l, 0, sizeof(l));
    memset(&w, 0, sizeof(w));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        feed_s(&l, bad[i], &w);
        feed_s(&l, "\n", &w);
        if (w.n != 0)
            fail_msg("'%s' was taken: %s", bad[i], w.text);
    }
    /* NUL bytes inside a line */
    feed(&l, "attention invalid_token\0on\n", 27, &w);
    feed(&l, "attention\0invalid_token on\n", 27, &w);
    assert_int_equal(w.n, 0);
    /* a line past the limit is dropped whole, even when its end looks right */
    memset(big, 'a', sizeof(big));
    feed(&l, big, sizeof(big), &w);
    feed_s(&l, "attention invalid_token on\n", &w);
    assert_int_equal(w.n, 0);
    assert_int_equal(l.skip, 0);
    /* and the next line is read again */
    feed_s(&l, "attention invalid_token on\n", &w);
    assert_string_equal(w.text, "invalid_token=on;");
    /* at the limit exactly: kept (and not an attention line) */
    memset(big, ' ', BEAT_LINE_MAX);
    big[BEAT_LINE_MAX] = '\n';
    feed(&l, big, BEAT_LINE_MAX + 1, &w);
    assert_int_equal(w.n, 1);
    assert_int_equal(l.len, 0);
    /* random bytes, heartbeats among them: no crash, always bounded */
    for (int i = 0; i < 20000; i++) {
        char chunk[97];
        size_t n = (size_t)(rand_r(&seed) % sizeof(chunk));
        for (size_t k = 0; k < n; k++)
            chunk[k] = (char)(rand_r(&seed) % 8 == 0 ? '\n' : rand_r(&seed) % 256);
        feed(&l, chunk, n, &w);
    }
    assert_int_equal(w.n, 1);  /* random bytes make no well-formed line */
}

/* ---- closing the master's descriptors in the child ----------------------------- */

enum { CLOSE_FROM, CLOSE_LISTED, CLOSE_EACH };

/* In a child: 3, 4 and 5 open, two descriptors above without
 * close-on-exec; closes from first the way how says, then exits 0 when
 * exactly the ones below first are left. */
static void closes_from(int first, int how, int fail_errno)
{
    pid_t pid;
    int status;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR), ok = 1;
        if (null < 0 || dup2(null, 3) != 3 || dup2(null, 4) != 4 || dup2(null, 5) != 5 ||
            dup2(null, 40) != 40 || dup2(null, 300) != 300)
            _exit(2);
        close_range_errno = fail_errno;
        if (how == CLOSE_FROM)
            close_from(first);
        else if (how == CLOSE_LISTED)
            ok = close_listed_from(first) == 0;
        else
            close_each_from(first);
        for (int fd = 0; fd < 3; fd++)  /* the test's own standard ones */
            ok &= fcntl(fd, F_GETFD) != -1;
        for (int fd = 3; fd < first; fd++)
            ok &= fcntl(fd, F_GETFD) != -1;
        for (int fd = first; fd < 1024; fd++)
            ok &= fcntl(fd, F_GETFD) == -1 && errno == EBADF;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_close_from_with_and_without_close_range(void **state)
{
    (void)state;
    closes_from(6, CLOSE_FROM, 0);
    closes_from(6, CLOSE_FROM, ENOSYS);   /* a kernel before 5.9 */
    closes_from(6, CLOSE_FROM, EPERM);    /* an older container seccomp profile */
    closes_from(5, CLOSE_FROM, ENOSYS);   /* no config memfd: 5 goes too */
    closes_from(6, CLOSE_LISTED, 0);
    closes_from(3, CLOSE_LISTED, 0);
    closes_from(6, CLOSE_EACH, 0);        /* without /proc */
}

static void test_add_validates_and_unknown_ids_fail(void **state)
{
    struct fx *f = *state;
    struct myna_bot_status st;

    assert_int_equal(myna_supervisor_add(f->s, "ok-a", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_add(f->s, "ok-a", 0), MYNA_EEXISTS);
    assert_int_equal(myna_supervisor_add(f->s, "Bad Id", 0), MYNA_EINVAL);
    assert_int_equal(myna_supervisor_add(f->s, "", 0), MYNA_EINVAL);
    assert_int_equal(myna_supervisor_count(f->s), 1);
    assert_int_equal(myna_supervisor_status(f->s, "nope", &st), MYNA_ENOTFOUND);
    assert_int_equal(myna_supervisor_start(f->s, "nope"), MYNA_ENOTFOUND);
    assert_int_equal(myna_supervisor_stop(f->s, "nope", on_done, f), MYNA_ENOTFOUND);
    assert_int_equal(myna_supervisor_restart(f->s, "nope"), MYNA_ENOTFOUND);
    assert_int_equal(myna_supervisor_remove(f->s, "nope", on_done, f), MYNA_ENOTFOUND);
    assert_int_equal(myna_supervisor_set_memory_limit(f->s, "nope", 1), MYNA_ENOTFOUND);
    assert_int_equal(f->done_calls, 0);
    myna_supervisor_ring(f->s, "nope");
    myna_supervisor_ring(f->s, "ok-a");  /* not running: nothing */
    st = st_of(f, "ok-a");
    assert_string_equal(st.state, "stopped");
    assert_int_equal(st.pid, 0);
    assert_int_equal(st.heartbeat_age_ms, -1);
    assert_int_equal(st.last_exit_code, -1);
    assert_string_equal(st.reason, "");
    /* stop of what does not run: done at once */
    assert_int_equal(myna_supervisor_stop(f->s, "ok-a", on_done, f), MYNA_OK);
    assert_int_equal(f->done_calls, 1);
}

static int has_pid(struct fx *f, const void *id)
{
    return st_of(f, id).pid > 0;
}

static void on_master_term(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (*(int *)arg)++;
}

/* A bot stopped the moment it was forked, before its exec: the SIGTERM is
 * the bot's. The child had the master's handler (libevent's, writing to the
 * master's signal socket) until exec, so the master took it for its own
 * stop, and the bot had to be killed. */
static void test_stop_right_after_fork_is_the_bots(void **state)
{
    struct fx *f = *state;
    int master_terms = 0, killed = 0;
    struct event *sig = evsignal_new(f->base, SIGTERM, on_master_term, &master_terms);

    assert_non_null(sig);
    assert_int_equal(event_add(sig, NULL), 0);
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ok-fork%d", i);
        assert_int_equal(myna_supervisor_add(f->s, id, 0), MYNA_OK);
        assert_int_equal(myna_supervisor_start(f->s, id), MYNA_OK);
        assert_true(run_until(f, has_pid, id, 5000));
        assert_int_equal(myna_supervisor_stop(f->s, id, NULL, NULL), MYNA_OK);
        assert_true(run_until(f, is_stopped, id, 10000));
        killed += st_of(f, id).last_signal == SIGKILL;
    }
    {   /* a signal the master got would be on its socket by now */
        int64_t until = myna_mono_ms() + 200;
        while (myna_mono_ms() < until)
            event_base_loop(f->base, EVLOOP_ONCE);
    }
    event_free(sig);
    assert_int_equal(master_terms, 0);
    assert_int_equal(killed, 0);
}

static void test_start_log_file_fds_ring_and_stop(void **state)
{
    struct fx *f = *state;
    char log[200];
    struct want_text rang;
    struct myna_bot_status st;

    start_running(f, "ok-a", 0);
    snprintf(log, sizeof(log), "%s/logs/ok-a.log", f->dir);
    rang.path = log;
    rang.needle = "rang ok-a";
    st = st_of(f, "ok-a");
    assert_true(st.pid > 0);
    assert_true(st.started_ms > 0);
    assert_true(st.heartbeat_age_ms >= 0 && st.heartbeat_age_ms < 1000);
    assert_int_equal(st.restarts, 0);
    assert_true(file_has(log, "fake up ok-a stdout\n"));
    assert_true(file_has(log, "fake up ok-a stderr fds=ok bell=3 hb=4\n"));
    myna_supervisor_ring(f->s, "ok-a");
    assert_true(run_until(f, has_text, &rang, 3000));
    run_for(f, 120);  /* a memory check or two */
    st = st_of(f, "ok-a");
    assert_true(st.rss_kb > 0);
    assert_true(st.uptime_ms >= 100);
    assert_int_equal(myna_supervisor_stop(f->s, "ok-a", on_done, f), MYNA_OK);
    assert_string_equal(st_of(f, "ok-a").state, "stopping");
    assert_true(run_until(f, some_done, NULL, 3000));
    assert_int_equal(f->done_calls, 1);
    st = st_of(f, "ok-a");
    assert_string_equal(st.state, "stopped");
    assert_int_equal(st.pid, 0);
    assert_int_equal(st.last_exit_code, 0);
    assert_int_equal(st.last_signal, 0);
    assert_true(file_has(log, "fake down ok-a\n"));
    run_for(f, 300);  /* and it stays stopped */
    assert_string_equal(st_of(f, "ok-a").state, "stopped");
    assert_true(file_has(f->master_log, "event=bot_started instance=ok-a pid="));
    assert_true(file_has(f->master_log, "event=bot_stopped instance=ok-a code=0 signal=0"));
}

/* A bot whose log file cannot be opened runs all the same (its output
 * goes to the master's standard error), and the master says which file,
 * quoted: a data directory may hold a space. */
static void test_log_file_that_cannot_open_is_named_quoted(void **state)
{
    struct fx *f = *state;
    char log[200], want[300];

    snprintf(log, sizeof(log), "%s/logs", f->dir);
    mkdir(log, 0750);
    snprintf(log, sizeof(log), "%s/logs/ok-d.log", f->dir);
    assert_int_equal(mkdir(log, 0700), 0);  /* a directory where the file goes */
    start_running(f, "ok-d", 0);
    snprintf(want, sizeof(want), "event=bot_log_failed instance=ok-d file=\"%s\"", log);
    assert_true(file_has(f->master_log, want));
    assert_int_equal(myna_supervisor_stop(f->s, "ok-d", on_done, f), MYNA_OK);
    assert_true(run_until(f, some_done, NULL, 3000));
}

static void test_kill9_is_restarted_after_backoff(void **state)
{
    struct fx *f = *state;
    struct want_restarts w = { "ok-k", 1 };
    struct myna_bot_status st;
    long pid;

    start_running(f, "ok-k", 0);
    pid = st_of(f, "ok-k").pid;
    kill((pid_t)pid, SIGKILL);
    assert_true(run_until(f, restarted, &w, 5000));
    st = st_of(f, "ok-k");
    assert_true(st.pid > 0 && st.pid != pid);
    assert_int_equal(st.last_signal, SIGKILL);
    assert_int_equal(st.last_exit_code, -1);
    assert_string_equal(st.reason, "crashed");
    assert_int_equal(st.crash_loop, 0);
    assert_true(file_has(f->master_log, "event=bot_exited instance=ok-k code=-1 signal=9 "
                                        "reason=\"crashed\" restart_in_ms=50"));
}

static int alerted(struct fx *f, const void *arg)
{
    (void)arg;
    return f->alerts > 0;
}

static void test_crash_loop_is_alerted_once_and_retried(void **state)
{
    struct fx *f = *state;
    struct myna_bot_status st;
    int restarts;

    assert_int_equal(myna_supervisor_add(f->s, "crash-x", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, "crash-x"), MYNA_OK);
    /* backoffs 50, 100, 200, 400: the 5th crash comes within the window */
    assert_true(run_until(f, alerted, NULL, 10000));
    assert_string_equal(f->alert_id, "crash-x");
    assert_string_equal(f->alert_kind, "crash_loop");
    assert_non_null(strstr(f->alert_detail, "5 crashes"));
    st = st_of(f, "crash-x");
    assert_string_equal(st.state, "crash_loop");
    assert_int_equal(st.crash_loop, 1);
    assert_int_equal(st.attention, MYNA_ATTN_CRASH_LOOP);
    assert_string_equal(st.reason, "crashed");
    assert_int_equal(st.last_exit_code, 1);
    assert_int_equal(st.restarts, 4);
    assert_true(file_has(f->master_log, "event=bot_crash_loop instance=crash-x reason=\"crashed\" "
                                        "crashes=5 retry_in_ms=800"));
    /* still retried, at the longer backoff; alerted once */
    restarts = st.restarts;
    run_for(f, 1300);
    st = st_of(f, "crash-x");
    assert_true(st.restarts > restarts);
    assert_int_equal(st.crash_loop, 1);
    assert_int_equal(f->alerts, 1);
    /* an operator's stop forgives; a start begins afresh */
    assert_int_equal(myna_supervisor_stop(f->s, "crash-x", on_done, f), MYNA_OK);
    assert_true(run_until(f, is_stopped, "crash-x", 3000));
    assert_int_equal(st_of(f, "crash-x").crash_loop, 0);
}

/* A healthy run ends a crash loop even when the bot exits before the
 * monitor saw it healthy: its next crash is a first one, and a new crash
 * loop is alerted again. */
static void test_healthy_run_that_ends_ends_the_crash_loop(void **state)
{
    struct fx *f = *state;
    struct myna_supervisor_timing t;
    struct want_restarts w = { "ok-h", 0 };
    struct myna_bot_status st;

    myna_supervisor_get_timing(f->s, &t);
    t.backoff_min_ms = 50;
    t.backoff_max_ms = 100;  /* the second crash in a row waits at the cap: a crash loop */
    t.healthy_ms = 400;
    t.monitor_ms = 600000;   /* the monitor never sees it healthy */
    assert_int_equal(myna_supervisor_set_timing(f->s, &t), MYNA_OK);
    start_running(f, "ok-h", 0);
    for (int i = 0; i < 2; i++) {
        kill((pid_t)st_of(f, "ok-h").pid, SIGKILL);
        w.n++;
        assert_true(run_until(f, restarted, &w, 5000));
    }
    assert_int_equal(st_of(f, "ok-h").crash_loop, 1);
    assert_int_equal(f->alerts, 1);
    run_for(f, 500);  /* healthy */
    kill((pid_t)st_of(f, "ok-h").pid, SIGKILL);
    w.n++;
    assert_true(run_until(f, restarted, &w, 5000));
    st = st_of(f, "ok-h");
    assert_int_equal(st.crash_loop, 0);
    assert_int_equal(st.attention, 0);
    assert_true(file_has(f->master_log, "event=bot_recovered instance=ok-h"));
    /* crashing again and again: a new crash loop, alerted */
    kill((pid_t)st_of(f, "ok-h").pid, SIGKILL);
    w.n++;
    assert_true(run_until(f, restarted, &w, 5000));
    assert_int_equal(st_of(f, "ok-h").crash_loop, 1);
    assert_int_equal(f->alerts, 2);
}

static void test_exit_2_is_not_restarted(void **state)
{
    struct fx *f = *state;
    struct myna_bot_status st;

    assert_int_equal(myna_supervisor_add(f->s, "conf-x", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, "conf-x"), MYNA_OK);
    assert_true(run_until(f, in_crash_loop, "conf-x", 5000));
    run_for(f, 400);
    st = st_of(f, "conf-x");
    assert_string_equal(st.state, "crash_loop");
    assert_string_equal(st.reason, "config error");
    assert_int_equal(st.last_exit_code, 2);
    assert_int_equal(st.restarts, 0);
    assert_int_equal(st.pid, 0);
    assert_int_equal(f->alerts, 1);
    assert_true(file_has(f->master_log, "event=bot_config_error instance=conf-x"));
    assert_true(file_has(f->master_log, "event=bot_crash_loop instance=conf-x"));
    /* started again by hand (the configuration was fixed, say): tried once more */
    assert_int_equal(myna_supervisor_start(f->s, "conf-x"), MYNA_OK);
    assert_string_equal(st_of(f, "conf-x").state, "starting");
    assert_true(run_until(f, in_crash_loop, "conf-x", 5000));
    assert_int_equal(f->alerts, 2);
}

static void test_silent_bot_is_killed_and_restarted(void **state)
{
    struct fx *f = *state;
    struct want_restarts w = { "ok-s", 1 };
    struct myna_bot_status st;
    long pid;

    start_running(f, "ok-s", 0);
    pid = st_of(f, "ok-s").pid;
    kill((pid_t)pid, SIGSTOP);  /* a hung loop */
    assert_true(run_until(f, restarted, &w, 5000));
    st = st_of(f, "ok-s");
    assert_true(st.pid != pid);
    assert_string_equal(st.reason, "no heartbeat");
    assert_int_equal(st.last_signal, SIGKILL);
    assert_true(file_has(f->master_log, "event=bot_unresponsive instance=ok-s"));
}

static int bad_start(struct fx *f, const void *id)
{
    struct myna_bot_status st = st_of(f, id);

    return strcmp(st.reason, "no heartbeat") == 0;
}

static void test_bot_that_never_beats_is_killed(void **state)
{
    struct fx *f = *state;

    assert_int_equal(myna_supervisor_add(f->s, "mute-m", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, "mute-m"), MYNA_OK);
    run_for(f, 300);
    assert_string_equal(st_of(f, "mute-m").state, "starting");  /* no heartbeat yet */
    assert_true(run_until(f, bad_start, "mute-m", 5000));
    assert_int_equal(st_of(f, "mute-m").last_signal, SIGKILL);
}

/* 1 once pid is stopped (state T in /proc/<pid>/stat). */
static int is_stopped_process(long pid)
{
    char path[64], text[256], *p;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return 0;
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    return (p = strrchr(text, ')')) != NULL && p[1] == ' ' && p[2] == 'T';
}

/* The master stopped with its bots for longer than the heartbeat timeout
 * (Ctrl-Z of the terminal's job, `docker pause`): the time the master did
 * not watch is no bot's silence. The master goes on first, the bot a
 * moment later, and it is left running. */
static void test_master_frozen_with_its_bots_kills_none(void **state)
{
    struct fx *f = *state;
    struct timespec frozen = { 1, 500 * 1000 * 1000 };  /* heartbeat_timeout_ms is 1000 */
    struct myna_bot_status st;
    long pid;

    start_running(f, "ok-z", 0);
    pid = st_of(f, "ok-z").pid;
    assert_int_equal(kill((pid_t)pid, SIGSTOP), 0);
    for (int i = 0; i < 500 && !is_stopped_process(pid); i++)
        run_for(f, 2);
    assert_true(is_stopped_process(pid));
    run_for(f, 20);              /* its last beats read */
    nanosleep(&frozen, NULL);    /* the master frozen too: its loop does not turn */
    run_for(f, 300);             /* the master goes on; the bot not yet */
    assert_int_equal(kill((pid_t)pid, SIGCONT), 0);
    run_for(f, 300);
    st = st_of(f, "ok-z");
    assert_int_equal(st.pid, pid);
    assert_string_equal(st.state, "running");
    assert_int_equal(st.restarts, 0);
    assert_false(file_has(f->master_log, "event=bot_unresponsive instance=ok-z"));
    /* a bot silent while the master watches is still killed */
    assert_int_equal(kill((pid_t)pid, SIGSTOP), 0);
    assert_true(run_until(f, bad_start, "ok-z", 5000));
}

/* Over its limit soon after each start (a limit below what it needs): it
 * stops gracefully each time, but the restarts back off and end in a crash
 * loop, not a restart every monitor_ms for ever. */
static void test_memory_limit_restarts_gracefully(void **state)
{
    struct fx *f = *state;
    struct want_restarts w = { "ok-m", 0 };
    struct myna_bot_status st;

    start_running(f, "ok-m", 1);  /* 1 MB: any process is past it */
    assert_true(run_until(f, in_crash_loop, "ok-m", 10000));
    st = st_of(f, "ok-m");
    assert_string_equal(st.reason, "memory limit");
    assert_int_equal(st.last_exit_code, 0);  /* SIGTERM: it stopped on its own */
    assert_int_equal(st.last_signal, 0);
    assert_int_equal(st.crash_loop, 1);
    assert_int_equal(f->alerts, 1);
    assert_true(file_has(f->master_log, "event=bot_memory_limit instance=ok-m"));
    assert_true(file_has(f->master_log, "reason=\"memory limit\" restart_in_ms=50"));
    assert_true(file_has(f->master_log, "reason=\"memory limit\" restart_in_ms=400"));
    assert_false(file_has(f->master_log, "event=bot_killed instance=ok-m"));
    /* no limit: left alone */
    assert_int_equal(myna_supervisor_set_memory_limit(f->s, "ok-m", 0), MYNA_OK);
    assert_true(run_until(f, is_running, "ok-m", 5000));
    w.n = st_of(f, "ok-m").restarts;
    run_for(f, 300);
    st = st_of(f, "ok-m");
    assert_int_equal(st.restarts, w.n);
    assert_int_equal(st.max_memory_mb, 0);
}

/* Past its limit after a healthy run (memory that grew): stopped gracefully
 * and started again at once, a restart and not a crash. */
static void test_memory_limit_after_a_healthy_run(void **state)
{
    struct fx *f = *state;
    struct want_restarts w = { "ok-g", 1 };
    struct myna_supervisor_timing t;
    struct myna_bot_status st;

    myna_supervisor_get_timing(f->s, &t);
    t.healthy_ms = 200;
    assert_int_equal(myna_supervisor_set_timing(f->s, &t), MYNA_OK);
    start_running(f, "ok-g", 0);
    run_for(f, 400);  /* healthy */
    assert_int_equal(myna_supervisor_set_memory_limit(f->s, "ok-g", 1), MYNA_OK);
    assert_true(run_until(f, restarted, &w, 5000));
    assert_int_equal(myna_supervisor_set_memory_limit(f->s, "ok-g", 0), MYNA_OK);
    assert_true(file_has(f->master_log, "event=bot_exited instance=ok-g code=0 signal=0 "
                                        "reason=\"memory limit\" restart_in_ms=0"));
    st = st_of(f, "ok-g");
    assert_int_equal(st.crash_loop, 0);
    assert_int_equal(f->alerts, 0);
}

static int is_stopping(struct fx *f, const void *id)
{
    return strcmp(st_of(f, id).state, "stopping") == 0;
}

/* An operator's start while a bot is being stopped for its memory limit
 * (as a PUT of the instance does): started again once it exited, as the
 * start promises, not backed off as a crash of the memory limit. */
static void test_start_during_a_memory_limit_stop_is_a_start(void **state)
{
    struct fx *f = *state;
    struct myna_bot_status st;

    start_running(f, "stubborn-m", 0);  /* ignores SIGTERM: stopping for kill_after_ms */
    assert_int_equal(myna_supervisor_set_memory_limit(f->s, "stubborn-m", 1), MYNA_OK);
    assert_true(run_until(f, is_stopping, "stubborn-m", 5000));
    assert_int_equal(myna_supervisor_set_memory_limit(f->s, "stubborn-m", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, "stubborn-m"), MYNA_OK);
    assert_true(run_until(f, is_running, "stubborn-m", 5000));
    st = st_of(f, "stubborn-m");
    assert_int_equal(st.crash_loop, 0);
    assert_true(file_has(f->master_log, "event=bot_exited instance=stubborn-m code=-1 signal=9 "
                                        "reason=\"started\" restart_in_ms=0"));
    assert_false(file_has(f->master_log, "reason=\"memory limit\" restart_in_ms="));
}

static void test_stop_escalates_to_sigkill(void **state)
{
    struct fx *f = *state;
    int64_t t0;
    struct myna_bot_status st;

    start_running(f, "stubborn-x", 0);
    t0 = myna_mono_ms();
    assert_int_equal(myna_supervisor_stop(f->s, "stubborn-x", on_done, f), MYNA_OK);
    assert_true(run_until(f, some_done, NULL, 5000));
    assert_true(f->done_at_ms - t0 >= 290);  /* kill_after_ms = 300 */
    st = st_of(f, "stubborn-x");
    assert_string_equal(st.state, "stopped");
    assert_int_equal(st.last_signal, SIGKILL);
    assert_true(file_has(f->master_log, "event=bot_killed instance=stubborn-x"));
}

static void test_restart_is_counted_not_a_crash(void **state)
{
    struct fx *f = *state;
    struct want_restarts w = { "ok-r", 1 };
    struct myna_bot_status st;
    long pid;

    start_running(f, "ok-r", 0);
    pid = st_of(f, "ok-r").pid;
    assert_int_equal(myna_supervisor_restart(f->s, "ok-r"), MYNA_OK);
    assert_true(run_until(f, restarted, &w, 5000));
    st = st_of(f, "ok-r");
    assert_true(st.pid != pid);
    assert_int_equal(st.restarts, 1);
    assert_string_equal(st.reason, "requested");
    assert_int_equal(st.last_exit_code, 0);
    assert_int_equal(st.crash_loop, 0);
    /* a stop, then a start while it stops: it comes back, not counted */
    assert_int_equal(myna_supervisor_stop(f->s, "ok-r", NULL, NULL), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, "ok-r"), MYNA_OK);
    w.n = 1;
    run_for(f, 50);
    assert_true(run_until(f, restarted, &w, 5000));
    assert_int_equal(st_of(f, "ok-r").restarts, 1);
    /* restart of a stopped bot is a start */
    assert_int_equal(myna_supervisor_stop(f->s, "ok-r", on_done, f), MYNA_OK);
    assert_true(run_until(f, some_done, NULL, 3000));
    assert_int_equal(myna_supervisor_restart(f->s, "ok-r"), MYNA_OK);
    assert_true(run_until(f, is_running, "ok-r", 5000));
    assert_int_equal(st_of(f, "ok-r").restarts, 1);
}

struct want_attention {
    const char *id;
    unsigned bits;
    int alerts;
};

/* Running with exactly these attention bits, after at least that many alerts. */
static int has_attention(struct fx *f, const void *arg)
{
    const struct want_attention *w = arg;
    struct myna_bot_status st = st_of(f, w->id);

    return st.pid > 0 && st.attention == w->bits && f->alerts >= w->alerts;
}

static void test_attention_reported_kept_cleared_and_alerted(void **state)
{
    struct fx *f = *state;
    const unsigned both = MYNA_ATTN_INVALID_TOKEN | MYNA_ATTN_LLM_CIRCUIT_OPEN;
    struct want_attention w = { "attn-a", both, 2 };
    struct want_restarts r = { "attn-a", 1 };
    long pid;

    start_running(f, "attn-a", 0);
    if (!run_until(f, has_attention, &w, 5000))
        fail_msg("attention %u, alerts %d", st_of(f, "attn-a").attention, f->alerts);
    assert_string_equal(f->alert_kinds, "invalid_token,llm_circuit_open,");
    assert_string_equal(f->alert_id, "attn-a");
    assert_non_null(strstr(f->alert_detail, "circuit breaker opened"));
    assert_true(file_has(f->master_log,
                         "event=bot_needs_attention instance=attn-a reason=invalid_token"));
    assert_true(file_has(f->master_log,
                         "event=bot_needs_attention instance=attn-a reason=llm_circuit_open"));
    assert_false(file_has(f->master_log, "reason=crash_loop"));  /* not a bot's to say */
    assert_int_equal(st_of(f, "attn-a").crash_loop, 0);
    /* a crash: the circuit went with the process, the token stays refused;
     * the new process reports both again, and only the circuit is news */
    pid = st_of(f, "attn-a").pid;
    kill((pid_t)pid, SIGKILL);
    assert_true(run_until(f, restarted, &r, 5000));
    w.alerts = 3;
    assert_true(run_until(f, has_attention, &w, 5000));
    run_for(f, 200);
    assert_int_equal(f->alerts, 3);
    assert_string_equal(f->alert_kinds, "invalid_token,llm_circuit_open,llm_circuit_open,");
    assert_true(file_has(f->master_log, "event=bot_attention_cleared instance=attn-a "
                                        "reason=llm_circuit_open by=exit"));
    assert_false(file_has(f->master_log, "reason=invalid_token by="));
    /* the bot says the token works again */
    myna_supervisor_ring(f->s, "attn-a");
    w.bits = MYNA_ATTN_LLM_CIRCUIT_OPEN;
    assert_true(run_until(f, has_attention, &w, 3000));
    assert_true(file_has(f->master_log, "event=bot_attention_cleared instance=attn-a "
                                        "reason=invalid_token by=bot"));
    /* an operator's restart forgets the token; the new bot reports it anew */
    w.bits = both;
    w.alerts = 5;
    r.n = 2;
    assert_int_equal(myna_supervisor_restart(f->s, "attn-a"), MYNA_OK);
    assert_true(run_until(f, restarted, &r, 5000));
    assert_true(run_until(f, has_attention, &w, 5000));
    /* an operator's stop forgets it too */
    assert_int_equal(myna_supervisor_stop(f->s, "attn-a", on_done, f), MYNA_OK);
    assert_true(run_until(f, some_done, NULL, 3000));
    assert_int_equal(st_of(f, "attn-a").attention, 0);
    assert_true(file_has(f->master_log, "event=bot_attention_cleared instance=attn-a "
                                        "reason=invalid_token by=operator"));
}

/* The lines a bot wrote just before it exited count, though its exit is
 * seen before its pipe is read; a line cut short by the exit does not. */
static void test_last_lines_before_an_exit_count(void **state)
{
    struct fx *f = *state;
    siginfo_t si;
    long pid;

    assert_int_equal(myna_supervisor_add(f->s, "last-a", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, "last-a"), MYNA_OK);
    assert_true(run_until(f, has_pid, "last-a", 5000));
    pid = st_of(f, "last-a").pid;
    /* exited, not reaped: the SIGCHLD comes first */
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    on_sigchld(SIGCHLD, 0, f->s);
    assert_int_equal(st_of(f, "last-a").pid, 0);
    assert_int_equal(st_of(f, "last-a").attention, MYNA_ATTN_ACCOUNT_LOCKED);
    assert_string_equal(f->alert_kinds, "account_locked,");
}

/* A bot that writes to its heartbeat pipe without pause does not hold the
 * master's loop: a turn reads a few blocks of a full pipe, not all of it
 * (the event is level-triggered: the rest wakes the next turn, after the
 * other events, every other bot and every webhook, had theirs). */
static void test_a_full_heartbeat_pipe_is_read_a_little_per_turn(void **state)
{
    struct fx *f = *state;
    static char lines[60000];
    struct bot b;
    int p[2], left = -1;

    memset(&b, 0, sizeof(b));
    b.s = f->s;
    b.state = ST_RUNNING;
    memset(lines, '\n', sizeof(lines));
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(write(p[1], lines, sizeof(lines)), (ssize_t)sizeof(lines));
    on_beat(p[0], EV_READ, &b);
    assert_int_equal(ioctl(p[0], FIONREAD, &left), 0);
    assert_int_equal(left, (int)sizeof(lines) - BEAT_READS_MAX * 256);
    close(p[0]);
    close(p[1]);
}

/* A locked account is kept, cleared and alerted as a refused token is. */
static void test_account_locked_reported_kept_cleared_and_alerted(void **state)
{
    struct fx *f = *state;
    struct want_attention w = { "lock-a", MYNA_ATTN_ACCOUNT_LOCKED, 1 };
    struct want_restarts r = { "lock-a", 1 };
    long pid;

    start_running(f, "lock-a", 0);
    if (!run_until(f, has_attention, &w, 5000))
        fail_msg("attention %u, alerts %d", st_of(f, "lock-a").attention, f->alerts);
    assert_string_equal(f->alert_kinds, "account_locked,");
    assert_string_equal(f->alert_id, "lock-a");
    assert_non_null(strstr(f->alert_detail, "locked the WhatsApp account"));
    assert_true(file_has(f->master_log,
                         "event=bot_needs_attention instance=lock-a reason=account_locked"));
    /* a crash: the account stays locked, and the new process saying so
     * again is not news */
    pid = st_of(f, "lock-a").pid;
    kill((pid_t)pid, SIGKILL);
    assert_true(run_until(f, restarted, &r, 5000));
    assert_true(run_until(f, has_attention, &w, 5000));
    run_for(f, 200);
    assert_int_equal(f->alerts, 1);
    assert_false(file_has(f->master_log, "reason=account_locked by="));
    /* the bot says a send went through */
    myna_supervisor_ring(f->s, "lock-a");
    w.bits = 0;
    assert_true(run_until(f, has_attention, &w, 3000));
    assert_true(file_has(f->master_log, "event=bot_attention_cleared instance=lock-a "
                                        "reason=account_locked by=bot"));
    /* an operator's restart: the new bot reports it anew, and it is alerted */
    w.bits = MYNA_ATTN_ACCOUNT_LOCKED;
    w.alerts = 2;
    r.n = 2;
    assert_int_equal(myna_supervisor_restart(f->s, "lock-a"), MYNA_OK);
    assert_true(run_until(f, restarted, &r, 5000));
    assert_true(run_until(f, has_attention, &w, 5000));
    assert_string_equal(f->alert_kinds, "account_locked,account_locked,");
    /* an operator's stop forgets it */
    assert_int_equal(myna_supervisor_stop(f->s, "lock-a", on_done, f), MYNA_OK);
    assert_true(run_until(f, some_done, NULL, 3000));
    assert_int_equal(st_of(f, "lock-a").attention, 0);
    assert_true(file_has(f->master_log, "event=bot_attention_cleared instance=lock-a "
                                        "reason=account_locked by=operator"));
}

/* An unregistered number and a failed payment are alerted each with its
 * own words, kept across a crash, and forgotten by an operator's stop. */
static void test_number_and_payment_blocks_reported(void **state)
{
    struct fx *f = *state;
    struct want_attention w = { "bill-a",
                                MYNA_ATTN_NUMBER_UNREGISTERED | MYNA_ATTN_PAYMENT_FAILED, 2 };
    struct want_restarts r = { "bill-a", 1 };

    start_running(f, "bill-a", 0);
    if (!run_until(f, has_attention, &w, 5000))
        fail_msg("attention %u, alerts %d", st_of(f, "bill-a").attention, f->alerts);
    assert_string_equal(f->alert_kinds, "number_unregistered,payment_failed,");
    assert_non_null(strstr(f->alert_detail, "payment method"));
    kill((pid_t)st_of(f, "bill-a").pid, SIGKILL);
    assert_true(run_until(f, restarted, &r, 5000));
    assert_true(run_until(f, has_attention, &w, 5000));
    run_for(f, 200);
    assert_int_equal(f->alerts, 2);  /* the same news again is not alerted */
    assert_int_equal(myna_supervisor_stop(f->s, "bill-a", on_done, f), MYNA_OK);
    assert_true(run_until(f, some_done, NULL, 3000));
    assert_int_equal(st_of(f, "bill-a").attention, 0);
    assert_true(file_has(f->master_log, "event=bot_attention_cleared instance=bill-a "
                                        "reason=payment_failed by=operator"));
    assert_true(file_has(f->master_log, "event=bot_attention_cleared instance=bill-a "
                                        "reason=number_unregistered by=operator"));
}

static void test_attention_names(void **state)
{
    (void)state;
    assert_string_equal(myna_attention_name(0), "invalid_token");
    assert_string_equal(myna_attention_name(1), "llm_circuit_open");
    assert_string_equal(myna_attention_name(2), "crash_loop");
    assert_string_equal(myna_attention_name(3), "account_locked");
    assert_string_equal(myna_attention_name(4), "number_unregistered");
    assert_string_equal(myna_attention_name(5), "payment_failed");
    assert_int_equal(1u << 4, MYNA_ATTN_NUMBER_UNREGISTERED);
    assert_int_equal(1u << 5, MYNA_ATTN_PAYMENT_FAILED);
    assert_null(myna_attention_name(MYNA_ATTN_COUNT));
    assert_null(myna_attention_name(-1));
    assert_int_equal(1u << 2, MYNA_ATTN_CRASH_LOOP);
    assert_int_equal(1u << 3, MYNA_ATTN_ACCOUNT_LOCKED);
}

static void test_remove_stops_then_forgets(void **state)
{
    struct fx *f = *state;
    struct myna_bot_status st;

    start_running(f, "ok-d", 0);
    assert_int_equal(myna_supervisor_add(f->s, "ok-e", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_count(f->s), 2);
    assert_int_equal(myna_supervisor_remove(f->s, "ok-d", on_done, f), MYNA_OK);
    assert_int_equal(myna_supervisor_add(f->s, "ok-d", 0), MYNA_EEXISTS);  /* not yet */
    assert_int_equal(myna_supervisor_start(f->s, "ok-d"), MYNA_EAGAIN);
    assert_int_equal(f->done_calls, 0);
    assert_true(run_until(f, some_done, NULL, 3000));
    assert_int_equal(myna_supervisor_status(f->s, "ok-d", &st), MYNA_ENOTFOUND);
    assert_int_equal(myna_supervisor_count(f->s), 1);
    assert_int_equal(myna_supervisor_add(f->s, "ok-d", 0), MYNA_OK);  /* a new one */
    assert_int_equal(st_of(f, "ok-d").restarts, 0);
    /* not running: forgotten at once */
    assert_int_equal(myna_supervisor_remove(f->s, "ok-e", on_done, f), MYNA_OK);
    assert_int_equal(f->done_calls, 2);
    assert_int_equal(myna_supervisor_count(f->s), 1);
}

static int n_with_pid(struct fx *f, const char *const *ids, int n)
{
    int k = 0;

    for (int i = 0; i < n; i++)
        k += st_of(f, ids[i]).pid > 0;
    return k;
}

static const char *const queue_ids[] = { "ok-q0", "ok-q1", "ok-q2", "ok-q3",
                                         "ok-q4", "ok-q5", "ok-q6", "ok-q7" };

static int more_started(struct fx *f, const void *arg)
{
    return n_with_pid(f, queue_ids, 8) > *(const int *)arg;
}

static void test_starts_are_paced_by_batches(void **state)
{
    struct fx *f = *state;
    int64_t batch_at[3];
    int n = 0;

    for (int i = 0; i < 8; i++) {
        assert_int_equal(myna_supervisor_add(f->s, queue_ids[i], 0), MYNA_OK);
        assert_int_equal(myna_supervisor_start(f->s, queue_ids[i]), MYNA_OK);
        assert_string_equal(st_of(f, queue_ids[i]).state, "starting");
    }
    /* start_batch = 3 per start_tick_ms = 100, in the order asked: 3, 3, 2 */
    for (int k = 0; k < 3; k++) {
        assert_true(run_until(f, more_started, &n, 5000));
        assert_int_equal(n_with_pid(f, queue_ids, 8), n + (k < 2 ? 3 : 2));
        n = n_with_pid(f, queue_ids, 8);
        for (int i = 0; i < 8; i++)
            assert_int_equal(st_of(f, queue_ids[i]).pid > 0, i < n);
        batch_at[k] = f->s->last_batch_ms;
    }
    assert_true(batch_at[1] - batch_at[0] >= 99);
    assert_true(batch_at[2] - batch_at[1] >= 99);
}

static void count_visit(const char *id, const struct myna_bot_status *st, void *arg)
{
    int *n = arg;

    assert_non_null(id);
    assert_non_null(st->state);
    (*n)++;
}

static void test_stop_all_waits_for_every_bot(void **state)
{
    struct fx *f = *state;
    int visited = 0;

    start_running(f, "ok-1", 0);
    start_running(f, "stubborn-2", 0);
    assert_int_equal(myna_supervisor_add(f->s, "crash-3", 0), MYNA_OK);
    assert_int_equal(myna_supervisor_start(f->s, "crash-3"), MYNA_OK);
    assert_int_equal(myna_supervisor_add(f->s, "ok-4", 0), MYNA_OK);  /* never started */
    run_for(f, 200);
    myna_supervisor_foreach(f->s, count_visit, &visited);
    assert_int_equal(visited, 4);
    myna_supervisor_stop_all(f->s, on_done, f);
    assert_int_equal(f->done_calls, 0);
    assert_true(run_until(f, some_done, NULL, 5000));
    assert_int_equal(f->done_calls, 1);
    run_for(f, 300);  /* no restarts from now on */
    for (int i = 0; i < 4; i++) {
        const char *id = (const char *[]){ "ok-1", "stubborn-2", "crash-3", "ok-4" }[i];
        assert_string_equal(st_of(f, id).state, "stopped");
        assert_int_equal(st_of(f, id).pid, 0);
    }
    assert_int_equal(myna_supervisor_start(f->s, "ok-1"), MYNA_EAGAIN);
    assert_int_equal(myna_supervisor_restart(f->s, "ok-1"), MYNA_EAGAIN);
    assert_int_equal(f->done_calls, 1);
}

static void test_stop_all_with_nothing_running_is_done_at_once(void **state)
{
    struct fx *f = *state;

    assert_int_equal(myna_supervisor_add(f->s, "ok-z", 0), MYNA_OK);
    myna_supervisor_stop_all(f->s, on_done, f);
    assert_int_equal(f->done_calls, 1);
}

static void test_timing_is_validated(void **state)
{
    struct fx *f = *state;
    struct myna_supervisor_timing t, got;

    myna_supervisor_timing_default(&t);
    assert_int_equal(t.backoff_min_ms, 1000);
    assert_int_equal(t.backoff_max_ms, 60000);
    assert_int_equal(t.kill_after_ms, 5000);
    assert_int_equal(t.heartbeat_timeout_ms, 30000);
    assert_int_equal(t.start_batch, 20);
    t.backoff_max_ms = 10;
    assert_int_equal(myna_supervisor_set_timing(f->s, &t), MYNA_EINVAL);
    myna_supervisor_timing_default(&t);
    t.start_batch = 0;
    assert_int_equal(myna_supervisor_set_timing(f->s, &t), MYNA_EINVAL);
    myna_supervisor_get_timing(f->s, &got);
    assert_int_equal(got.start_batch, 3);  /* unchanged */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_add_find_del_many),
        cmocka_unit_test(test_backoff_doubles_to_its_cap),
        cmocka_unit_test(test_crash_loop_is_five_crashes_in_the_window),
        cmocka_unit_test(test_statm_resident_kb),
        cmocka_unit_test(test_attention_lines_are_parsed),
        cmocka_unit_test(test_attention_garbage_is_ignored),
        cmocka_unit_test(test_attention_names),
        cmocka_unit_test(test_close_from_with_and_without_close_range),
        T(test_add_validates_and_unknown_ids_fail),
        T(test_start_log_file_fds_ring_and_stop),
        T(test_log_file_that_cannot_open_is_named_quoted),
        T(test_stop_right_after_fork_is_the_bots),
        T(test_kill9_is_restarted_after_backoff),
        T(test_crash_loop_is_alerted_once_and_retried),
        T(test_healthy_run_that_ends_ends_the_crash_loop),
        T(test_exit_2_is_not_restarted),
        T(test_silent_bot_is_killed_and_restarted),
        T(test_bot_that_never_beats_is_killed),
        T(test_master_frozen_with_its_bots_kills_none),
        T(test_memory_limit_restarts_gracefully),
        T(test_memory_limit_after_a_healthy_run),
        T(test_start_during_a_memory_limit_stop_is_a_start),
        T(test_stop_escalates_to_sigkill),
        T(test_restart_is_counted_not_a_crash),
        T(test_attention_reported_kept_cleared_and_alerted),
        T(test_account_locked_reported_kept_cleared_and_alerted),
        T(test_number_and_payment_blocks_reported),
        T(test_a_full_heartbeat_pipe_is_read_a_little_per_turn),
        T(test_last_lines_before_an_exit_count),
        T(test_remove_stops_then_forgets),
        T(test_starts_are_paced_by_batches),
        T(test_stop_all_waits_for_every_bot),
        T(test_stop_all_with_nothing_running_is_done_at_once),
        T(test_timing_is_validated),
    };

    if (argc > 1 && strcmp(argv[1], "bot") == 0)
        return fake_bot(argc, argv);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
