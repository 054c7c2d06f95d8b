/* test_log.c - key=value logging of log.h: myna_log_q quoting (escapes,
 * truncation within cap, NULL), lines written to a file by myna_log_open
 * (one line per event with ts, level, proc, pid, event and the fields), level
 * filtering before formatting, MYNA_LOG_ERRNO's errno= and err=, reopen after
 * the file was renamed, and whole lines from two processes at once; the
 * bots' files: rotation by size (files kept, fds 1 and 2 following, bytes
 * written by others counted) and myna_log_tail (backwards, across .1, whole
 * lines within the buffer's max). Each test gets a fresh mkdtemp directory;
 * teardown sends the log back to stderr and puts back fds 1 and 2. */
#include <errno.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "core/banned.h"

struct fix {
    char dir[64];
    char path[128];
    int saved_out, saved_err;  /* fds 1 and 2 while a rotating log has them, else -1 */
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (test_tmpdir(f->dir, sizeof(f->dir), "test-log") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/myna.log", f->dir);
    f->saved_out = f->saved_err = -1;
    myna_log_set_proc("tlog");
    myna_log_set_level(MYNA_INFO);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    int rc;

    if (f->saved_out >= 0) {  /* a rotating log took fds 1 and 2 */
        fflush(NULL);
        dup2(f->saved_out, STDOUT_FILENO);
        dup2(f->saved_err, STDERR_FILENO);
        close(f->saved_out);
        close(f->saved_err);
    }
    myna_log_open(NULL);
    myna_log_set_level(MYNA_INFO);
    myna_log_set_proc("myna");
    rc = test_rmtree(f->dir);
    free(f);
    return rc;
}

/* ---- helpers ---- */

/* The whole file as a string (caller frees); "" when it does not exist. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *s;
    long n;

    if (fp == NULL) {
        s = calloc(1, 1);
        assert_non_null(s);
        return s;
    }
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static int count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Line i (0-based) of s into out, without its '\n'. */
static void nth_line(const char *s, int i, char *out, size_t cap)
{
    const char *end;

    for (; i > 0; i--) {
        s = strchr(s, '\n');
        assert_non_null(s);
        s++;
    }
    end = strchr(s, '\n');
    assert_non_null(end);
    assert_true((size_t)(end - s) < cap);
    memcpy(out, s, (size_t)(end - s));
    out[end - s] = '\0';
}

static void assert_matches(const char *line, const char *pattern)
{
    regex_t re;

    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, line, 0, NULL, 0) != 0) {
        regfree(&re);
        fail_msg("line '%s' does not match '%s'", line, pattern);
    }
    regfree(&re);
}

#define TS_RE "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

/* myna_log_q output that stays within cap and is terminated. */
static const char *q(char *buf, size_t cap, const char *s)
{
    const char *r = myna_log_q(buf, cap, s);

    assert_ptr_equal(r, buf);
    if (cap > 0) {
        assert_non_null(memchr(buf, '\0', cap));
        assert_true(strlen(buf) < cap);
    }
    return r;
}

/* A quoted value is '"', escapes or plain bytes, optionally "...", '"'. */
static void assert_well_quoted(const char *v)
{
    size_t n = strlen(v), i;

    assert_true(n >= 2);
    assert_int_equal(v[0], '"');
    assert_int_equal(v[n - 1], '"');
    for (i = 1; i < n - 1; i++) {
        unsigned char c = (unsigned char)v[i];
        assert_true(c >= 0x20 && c != 0x7f);
        if (c == '"')
            fail_msg("unescaped quote at %zu in %s", i, v);
        if (c == '\\') {
            char e = v[i + 1];
            if (e == '"' || e == '\\' || e == 'n')
                i++;
            else if (e == 'x' && i + 3 < n - 1)
                i += 3;
            else
                fail_msg("broken escape at %zu in %s", i, v);
        }
    }
}

/* ---- myna_log_q ---- */

static void test_log_q_plain(void **state)
{
    char buf[64];

    (void)state;
    assert_string_equal(q(buf, sizeof(buf), "hello world"), "\"hello world\"");
    assert_string_equal(q(buf, sizeof(buf), ""), "\"\"");
    /* UTF-8 passes as is */
    assert_string_equal(q(buf, sizeof(buf), "\xd0\xbf\xd1\x80\xd0\xb8"),
                        "\"\xd0\xbf\xd1\x80\xd0\xb8\"");
}

static void test_log_q_escapes(void **state)
{
    char buf[64];

    (void)state;
    assert_string_equal(q(buf, sizeof(buf), "a\"b"), "\"a\\\"b\"");
    assert_string_equal(q(buf, sizeof(buf), "a\\b"), "\"a\\\\b\"");
    assert_string_equal(q(buf, sizeof(buf), "l1\nl2"), "\"l1\\nl2\"");
    assert_string_equal(q(buf, sizeof(buf), "\x01"), "\"\\x01\"");
    assert_string_equal(q(buf, sizeof(buf), "\t\r"), "\"\\x09\\x0d\"");
    assert_string_equal(q(buf, sizeof(buf), "\x1f\x7f"), "\"\\x1f\\x7f\"");
    assert_string_equal(q(buf, sizeof(buf), "k=v x=\"y\""), "\"k=v x=\\\"y\\\"\"");
    assert_well_quoted(q(buf, sizeof(buf), "\x01\"\\\n\x7f end"));
}

/* Bytes that are not part of a whole UTF-8 character (a broken or cut
 * sequence, an overlong form, a surrogate, a stray continuation byte) come
 * out as \xNN, so the value is valid UTF-8 whatever it was given: a raw one
 * leaves a broken character in the line, and a decoder that takes a lead
 * byte's continuation bytes blindly swallows the escape after it ("\xe2a\""
 * would read as a character and a closing quote). */
static void test_log_q_escapes_bytes_not_utf8(void **state)
{
    static const char *const bad[] = { "\xff", "\x80", "\xe2" "a\"", "\xc0\xaf",
                                       "\xed\xa0\x80", "\xf0\x9f\x98", "ok\xd0" };
    char buf[64];

    (void)state;
    assert_string_equal(q(buf, sizeof(buf), "\xff"), "\"\\xff\"");
    assert_string_equal(q(buf, sizeof(buf), "\xe2" "a\" level=error"),
                        "\"\\xe2a\\\" level=error\"");
    assert_string_equal(q(buf, sizeof(buf), "\xf0\x9f\x98"), "\"\\xf0\\x9f\\x98\"");
    /* a whole character next to a broken one stays as it is */
    assert_string_equal(q(buf, sizeof(buf), "\xd0\xbf\xd0"), "\"\xd0\xbf\\xd0\"");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (size_t cap = 8; cap <= sizeof(buf); cap++) {
            size_t n;
            q(buf, cap, bad[i]);
            assert_well_quoted(buf);
            n = strlen(buf);
            if (myna_utf8_prefix(buf, n) != n)
                fail_msg("cap %zu: %s is not UTF-8", cap, buf);
        }
    }
}

/* Characters that break a line or drive a terminal, though whole UTF-8:
 * the C1 controls (U+0080-U+009F, U+0085 is NEL, U+009B a CSI) and the line
 * and paragraph separators U+2028 and U+2029 (line breaks to JSON viewers
 * and editors) come out as \xNN bytes, as the C0 controls do. Their
 * neighbours stay as they are. */
static void test_log_q_escapes_c1_and_separators(void **state)
{
    char buf[64];

    (void)state;
    assert_string_equal(q(buf, sizeof(buf), "a\xc2\x85" "b"), "\"a\\xc2\\x85b\"");
    assert_string_equal(q(buf, sizeof(buf), "\xc2\x9b" "2J"), "\"\\xc2\\x9b2J\"");
    assert_string_equal(q(buf, sizeof(buf), "\xc2\x80\xc2\x9f"), "\"\\xc2\\x80\\xc2\\x9f\"");
    assert_string_equal(q(buf, sizeof(buf), "l1\xe2\x80\xa8l2\xe2\x80\xa9"),
                        "\"l1\\xe2\\x80\\xa8l2\\xe2\\x80\\xa9\"");
    /* U+00A0, U+00E9, U+2027, U+202A and the euro sign are text */
    assert_string_equal(q(buf, sizeof(buf), "\xc2\xa0\xc3\xa9\xe2\x80\xa7\xe2\x82\xac"),
                        "\"\xc2\xa0\xc3\xa9\xe2\x80\xa7\xe2\x82\xac\"");
    for (size_t cap = 8; cap <= sizeof(buf); cap++) {
        q(buf, cap, "x\xc2\x85y\xe2\x80\xa8z\xe2\x80\xa9");
        assert_well_quoted(buf);
        if (myna_utf8_prefix(buf, strlen(buf)) != strlen(buf))
            fail_msg("cap %zu: %s is not UTF-8", cap, buf);
    }
}

static void test_log_q_null(void **state)
{
    char buf[16];

    (void)state;
    assert_string_equal(q(buf, sizeof(buf), NULL), "-");
}

static void test_log_q_truncates_within_cap(void **state)
{
    char buf[32], big[1000];

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    q(buf, sizeof(buf), big);
    assert_true(strlen(buf) <= sizeof(buf) - 1);
    assert_int_equal(buf[0], '"');
    assert_non_null(strstr(buf, "...\""));
    assert_int_equal(strcmp(buf + strlen(buf) - 4, "...\""), 0);
    assert_well_quoted(buf);
}

static void test_log_q_truncation_never_splits_escapes(void **state)
{
    const char *nasty = "ab\"c\\d\ne\x01\x02\x03\"\"\\\\\n\n\x7f tail of the value";
    char buf[128];

    (void)state;
    for (size_t cap = 8; cap <= sizeof(buf); cap++) {
        q(buf, cap, nasty);
        assert_well_quoted(buf);
    }
}

/* A value cut short ends on a whole character: the cut never falls inside
 * a character of several bytes, whatever the cap (2, 3 and 4 bytes). */
static void test_log_q_truncation_never_splits_characters(void **state)
{
    const char *text = "ab\xd0\xbf\xd1\x80\xe2\x82\xac\xe2\x82\xac\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
                       "\xd0\xb8\xd0\xb8 tail";
    char buf[64];

    (void)state;
    for (size_t cap = 8; cap <= sizeof(buf); cap++) {
        size_t n;
        q(buf, cap, text);
        assert_well_quoted(buf);
        n = strlen(buf);
        if (n >= 5 && strcmp(buf + n - 4, "...\"") == 0)
            n -= 4;
        else
            n -= 1;
        /* what is between the opening quote and the mark is whole UTF-8 */
        if (myna_utf8_prefix(buf + 1, n - 1) != n - 1)
            fail_msg("cap %zu: a character is cut in %s", cap, buf);
    }
}

static void test_log_q_tiny_cap(void **state)
{
    char buf[8];

    (void)state;
    memset(buf, 'Z', sizeof(buf));
    myna_log_q(buf, 0, "abc"); /* nothing written */
    assert_int_equal(buf[0], 'Z');
    for (size_t cap = 1; cap < 8; cap++) {
        memset(buf, 'Z', sizeof(buf));
        q(buf, cap, "abcdef");
        assert_true(strlen(buf) < cap);
    }
}

/* A value whose quoted form fits in cap is written whole: keeping room for
 * '...' even for the last byte would give "ab..." for "abc" in 8 bytes,
 * cut and longer than the whole value. */
static void test_log_q_fits_not_truncated(void **state)
{
    char buf[16];

    (void)state;
    assert_string_equal(q(buf, 8, "abc"), "\"abc\"");       /* needs 6 bytes */
    assert_string_equal(q(buf, 8, "abcde"), "\"abcde\"");   /* needs exactly 8 */
    assert_string_equal(q(buf, 16, "0123456789abc"), "\"0123456789abc\"");
}

/* ---- lines in a file ---- */

static void test_log_line_format(void **state)
{
    struct fix *f = *state;
    char line[4200], pat[512];
    char *s;

    assert_int_equal(myna_log_open(f->path), 0);
    MYNA_LOG(MYNA_WARN, "send_failed", "status=%d attempt=%d retry_in_ms=%d", 503, 3, 8000);
    MYNA_LOG(MYNA_INFO, "ready", "public=%s", "127.0.0.1:8080");
    MYNA_LOG(MYNA_ERROR, "boom", "%s", "");
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 3);
    assert_int_equal(s[strlen(s) - 1], '\n');
    nth_line(s, 0, line, sizeof(line));
    snprintf(pat, sizeof(pat),
             TS_RE "level=warn proc=tlog pid=%ld event=send_failed status=503 attempt=3 "
                   "retry_in_ms=8000$",
             (long)getpid());
    assert_matches(line, pat);
    nth_line(s, 1, line, sizeof(line));
    snprintf(pat, sizeof(pat),
             TS_RE "level=info proc=tlog pid=%ld event=ready public=127\\.0\\.0\\.1:8080$",
             (long)getpid());
    assert_matches(line, pat);
    nth_line(s, 2, line, sizeof(line));
    /* no fields: no trailing space */
    snprintf(pat, sizeof(pat), TS_RE "level=error proc=tlog pid=%ld event=boom$",
             (long)getpid());
    assert_matches(line, pat);
    free(s);
}

/* libevent's warnings become lines of ours: a failed fcntl on fd -1 is one
 * libevent always reports. */
static void test_log_routes_libevent(void **state)
{
    struct fix *f = *state;
    char *s;

    assert_int_equal(myna_log_open(f->path), 0);
    myna_log_route_libevent();
    assert_int_equal(evutil_make_socket_nonblocking(-1), -1);
    event_set_log_callback(NULL);
    s = slurp(f->path);
    assert_non_null(strstr(s, "level=warn proc=tlog"));
    assert_non_null(strstr(s, " event=libevent msg=\"fcntl(-1, F_GETFL)"));
    assert_int_equal(count_lines(s), 1);
    free(s);
}

static void test_log_quoted_field(void **state)
{
    struct fix *f = *state;
    char qv[64], line[4200];
    char *s;

    assert_int_equal(myna_log_open(f->path), 0);
    MYNA_LOG(MYNA_INFO, "msg_in", "text=%s", myna_log_q(qv, sizeof(qv), "hi \"you\"\nbye"));
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 1); /* the newline in the value stays escaped */
    nth_line(s, 0, line, sizeof(line));
    assert_non_null(strstr(line, " event=msg_in text=\"hi \\\"you\\\"\\nbye\""));
    free(s);
}

static int side_effects;

static const char *counted(const char *s)
{
    side_effects++;
    return s;
}

static void test_log_level_filtering(void **state)
{
    struct fix *f = *state;
    char *s;

    assert_int_equal(myna_log_open(f->path), 0);
    myna_log_set_level(MYNA_INFO);
    side_effects = 0;
    MYNA_LOG(MYNA_DEBUG, "dbg_hidden", "x=%s", counted("1"));
    assert_int_equal(side_effects, 0); /* level tested before the arguments run */
    MYNA_LOG(MYNA_INFO, "info_shown", "x=%s", counted("2"));
    MYNA_LOG(MYNA_WARN, "warn_shown", "x=%d", 3);
    MYNA_LOG(MYNA_ERROR, "error_shown", "x=%d", 4);
    assert_int_equal(side_effects, 1);
    myna_log_set_level(MYNA_ERROR);
    MYNA_LOG(MYNA_WARN, "warn_hidden", "x=%d", 5);
    MYNA_LOG(MYNA_INFO, "info_hidden", "x=%d", 6);
    MYNA_LOG(MYNA_ERROR, "error_shown2", "x=%d", 7);
    myna_log_set_level(MYNA_DEBUG);
    MYNA_LOG(MYNA_DEBUG, "dbg_shown", "x=%d", 8);
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 5);
    assert_null(strstr(s, "hidden"));
    assert_non_null(strstr(s, "level=info proc=tlog"));
    assert_non_null(strstr(s, "event=info_shown x=2\n"));
    assert_non_null(strstr(s, "event=warn_shown x=3\n"));
    assert_non_null(strstr(s, "event=error_shown x=4\n"));
    assert_non_null(strstr(s, "event=error_shown2 x=7\n"));
    assert_non_null(strstr(s, "level=debug proc=tlog"));
    assert_non_null(strstr(s, "event=dbg_shown x=8\n"));
    free(s);
}

static void test_log_errno_fields(void **state)
{
    struct fix *f = *state;
    char want[256], qerr[128], line[4200];
    char *s;

    assert_int_equal(myna_log_open(f->path), 0);
    MYNA_LOG_ERRNO(MYNA_ERROR, "accept_failed", EMFILE, "fd=%d", 3);
    MYNA_LOG_ERRNO(MYNA_WARN, "open_failed", ENOENT, "%s", "");
    MYNA_LOG_ERRNO(MYNA_DEBUG, "hidden", EIO, "fd=%d", 4);
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 2);
    nth_line(s, 0, line, sizeof(line));
    snprintf(want, sizeof(want), " event=accept_failed fd=3 errno=%d err=%s", EMFILE,
             myna_log_q(qerr, sizeof(qerr), strerror(EMFILE)));
    assert_non_null(strstr(line, want));
    assert_int_equal(strcmp(line + strlen(line) - strlen(want), want), 0); /* at the end */
    assert_non_null(strstr(line, "errno=24 err=\"Too many open files\""));
    nth_line(s, 1, line, sizeof(line));
    snprintf(want, sizeof(want), " event=open_failed errno=%d err=%s", ENOENT,
             myna_log_q(qerr, sizeof(qerr), strerror(ENOENT)));
    assert_non_null(strstr(line, want));
    free(s);
}

static void test_log_long_line_stays_one_line(void **state)
{
    struct fix *f = *state;
    char *big = malloc(10000), *s;

    (void)state;
    assert_non_null(big);
    memset(big, 'v', 9999);
    big[9999] = '\0';
    assert_int_equal(myna_log_open(f->path), 0);
    MYNA_LOG(MYNA_INFO, "big", "body=%s", big);
    MYNA_LOG_ERRNO(MYNA_INFO, "big_errno", EIO, "body=%s", big);
    MYNA_LOG(MYNA_INFO, "after", "x=%d", 1);
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 3);
    for (char *p = s, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
        assert_true((size_t)(nl - p) + 1 <= 4096); /* a line fits one 4 KiB write */
    assert_non_null(strstr(s, "event=after x=1\n"));
    free(s);
    free(big);
}

/* A line cut to its 4 KiB ends on a whole character, at every offset of
 * the cut within a character of 2, 3 or 4 bytes. */
static void test_log_long_line_never_splits_characters(void **state)
{
    static const char *const chars[] = { "\xd0\xbf", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
    struct fix *f = *state;
    char big[6000], *s;

    assert_int_equal(myna_log_open(f->path), 0);
    for (size_t c = 0; c < 3; c++) {
        size_t k = strlen(chars[c]);
        for (size_t shift = 0; shift < k; shift++) {
            size_t o = shift;
            memset(big, 'a', shift);
            while (o + k < sizeof(big)) {
                memcpy(big + o, chars[c], k);
                o += k;
            }
            big[o] = '\0';
            MYNA_LOG(MYNA_INFO, "big", "body=%s", big);
        }
    }
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 9);
    for (char *p = s, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
        if (myna_utf8_prefix(p, (size_t)(nl - p)) != (size_t)(nl - p))
            fail_msg("a line ends inside a character: ...%.12s", nl - 12);
    free(s);
}

/* Checks that line (without its newline) still parses as key=value
 * fields: every quoted value is closed, and no escape is cut short. */
static void assert_line_parses(const char *line, size_t n)
{
    int quoted = 0;

    for (size_t i = 0; i < n; i++) {
        if (!quoted) {
            if (line[i] == '"') {
                if (i == 0 || line[i - 1] != '=')
                    fail_msg("a quote outside a value at %zu: ...%.40s", i, line + i);
                quoted = 1;
            }
            continue;
        }
        if (line[i] == '"') {
            quoted = 0;
        } else if (line[i] == '\\') {
            if (i + 1 < n && (line[i + 1] == '"' || line[i + 1] == '\\' || line[i + 1] == 'n'))
                i++;
            else if (i + 3 < n && line[i + 1] == 'x')
                i += 3;
            else
                fail_msg("an escape cut short at %zu: ...%s", i, line + (i > 20 ? i - 20 : 0));
        }
    }
    if (quoted)
        fail_msg("the line ends inside a quoted value: ...%.40s", line + (n > 40 ? n - 40 : 0));
}

/* A line cut to its 4 KiB inside a quoted value closes it (with "..."
 * marking the cut), and never ends inside an escape: at every offset of the
 * cut within \" and \xNN, with and without errno= err= after it. The next
 * line is a line of its own. */
static void test_log_long_line_closes_its_quote(void **state)
{
    static const char *const units[] = { "\"", "\x01", "ab", "\xc2\x85" };
    struct fix *f = *state;
    char *raw = malloc(3000), *qv = malloc(12000), *s;
    int lines = 0;

    assert_non_null(raw);
    assert_non_null(qv);
    assert_int_equal(myna_log_open(f->path), 0);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        for (size_t shift = 0; shift < 4; shift++) {
            size_t o = shift, k = strlen(units[u]);
            memset(raw, 'a', shift);
            while (o + k < 3000) {
                memcpy(raw + o, units[u], k);
                o += k;
            }
            raw[o] = '\0';
            myna_log_q(qv, 12000, raw);
            MYNA_LOG(MYNA_INFO, "big", "text=%s n=%d", qv, 1);
            MYNA_LOG_ERRNO(MYNA_INFO, "big", EIO, "text=%s", qv);
            lines += 2;
        }
    }
    MYNA_LOG(MYNA_INFO, "after", "x=%d", 1);
    s = slurp(f->path);
    assert_int_equal(count_lines(s), lines + 1);
    for (char *p = s, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        assert_true((size_t)(nl - p) + 1 <= 4096);
        assert_line_parses(p, (size_t)(nl - p));
        if (strncmp(nl - 4, "...\"", 4) != 0 && strstr(p, "event=after") == NULL &&
            (size_t)(nl - p) > 4000)
            fail_msg("a cut value without its mark: ...%.20s", nl - 20);
    }
    /* the errno fields are kept, after the cut value */
    assert_non_null(strstr(s, "...\" errno=5 err=\"Input/output error\"\n"));
    assert_non_null(strstr(s, "event=after x=1\n"));
    free(s);
    free(raw);
    free(qv);
}

static void test_log_appends_to_existing(void **state)
{
    struct fix *f = *state;
    FILE *fp = fopen(f->path, "w");
    char *s;

    assert_non_null(fp);
    fputs("old line\n", fp);
    fclose(fp);
    assert_int_equal(myna_log_open(f->path), 0);
    MYNA_LOG(MYNA_INFO, "new_line", "n=%d", 1);
    s = slurp(f->path);
    assert_int_equal(strncmp(s, "old line\n", 9), 0);
    assert_int_equal(count_lines(s), 2);
    assert_non_null(strstr(s, "event=new_line n=1\n"));
    free(s);
}

static void test_log_reopen_after_rename(void **state)
{
    struct fix *f = *state;
    char rotated[160];
    char *s, *r;

    snprintf(rotated, sizeof(rotated), "%s.1", f->path);
    assert_int_equal(myna_log_open(f->path), 0);
    MYNA_LOG(MYNA_INFO, "before_rotate", "n=%d", 1);
    assert_int_equal(rename(f->path, rotated), 0);
    MYNA_LOG(MYNA_INFO, "still_old_file", "n=%d", 2); /* fd still points at the renamed file */
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(myna_log_reopen(), 0);
    assert_int_equal(access(f->path, F_OK), 0); /* a new file at the same path */
    MYNA_LOG(MYNA_INFO, "after_rotate", "n=%d", 3);
    s = slurp(f->path);
    r = slurp(rotated);
    assert_int_equal(count_lines(s), 1);
    assert_non_null(strstr(s, "event=after_rotate n=3\n"));
    assert_int_equal(count_lines(r), 2);
    assert_non_null(strstr(r, "event=before_rotate n=1\n"));
    assert_non_null(strstr(r, "event=still_old_file n=2\n"));
    assert_null(strstr(r, "after_rotate"));
    free(s);
    free(r);
    /* a second rotation works the same */
    assert_int_equal(rename(f->path, rotated), 0);
    assert_int_equal(myna_log_reopen(), 0);
    MYNA_LOG(MYNA_INFO, "second", "n=%d", 4);
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 1);
    assert_non_null(strstr(s, "event=second n=4\n"));
    free(s);
}

/* The log's descriptor stays close-on-exec after a reopen: dup2 cleared it,
 * so every process the master started after a SIGHUP inherited its log file
 * (and kept a rotated one on disk) where close_range is missing. */
static void test_log_reopen_keeps_cloexec(void **state)
{
    struct fix *f = *state;
    struct stat want, got;
    int fd = dup(STDIN_FILENO);  /* the lowest free descriptor: the log's next */

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(myna_log_open(f->path), 0);
    assert_int_equal(stat(f->path, &want), 0);
    assert_int_equal(fstat(fd, &got), 0);
    assert_true(got.st_ino == want.st_ino);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(myna_log_reopen(), 0);
    assert_int_equal(stat(f->path, &want), 0);
    assert_int_equal(fstat(fd, &got), 0);
    assert_true(got.st_ino == want.st_ino);  /* the same number, the new file */
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(myna_log_open(NULL), 0);
}

static void test_log_reopen_without_file(void **state)
{
    (void)state;
    assert_int_equal(myna_log_open(NULL), 0);
    assert_int_equal(myna_log_reopen(), 0); /* stderr: nothing to reopen */
    assert_int_equal(myna_log_open(""), 0);
    assert_int_equal(myna_log_reopen(), 0);
}

static void test_log_open_failure_keeps_target(void **state)
{
    struct fix *f = *state;
    char bad[200];
    char *s;

    snprintf(bad, sizeof(bad), "%s/no/such/dir/x.log", f->dir);
    assert_int_equal(myna_log_open(f->path), 0);
    assert_int_equal(myna_log_open(bad), -ENOENT);
    MYNA_LOG(MYNA_INFO, "kept", "n=%d", 1);
    s = slurp(f->path);
    assert_non_null(strstr(s, "event=kept n=1\n"));
    free(s);
    /* reopen still names the good file */
    assert_int_equal(myna_log_reopen(), 0);
    MYNA_LOG(MYNA_INFO, "kept2", "n=%d", 2);
    s = slurp(f->path);
    assert_int_equal(count_lines(s), 2);
    free(s);
}

static void test_log_open_too_long_path(void **state)
{
    char path[5000];

    (void)state;
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(myna_log_open(path), -ENAMETOOLONG);
}

static void test_log_back_to_stderr(void **state)
{
    struct fix *f = *state;
    char errpath[160];
    char *s, *e;
    int saved, fd;

    snprintf(errpath, sizeof(errpath), "%s/stderr.txt", f->dir);
    assert_int_equal(myna_log_open(f->path), 0);
    MYNA_LOG(MYNA_INFO, "to_file", "n=%d", 1);
    assert_int_equal(myna_log_open(NULL), 0);
    /* capture fd 2 for one line */
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    MYNA_LOG(MYNA_INFO, "to_stderr", "n=%d", 2);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    s = slurp(f->path);
    e = slurp(errpath);
    assert_int_equal(count_lines(s), 1);
    assert_null(strstr(s, "to_stderr"));
    assert_int_equal(count_lines(e), 1);
    assert_non_null(strstr(e, "event=to_stderr n=2\n"));
    free(s);
    free(e);
}

static void test_log_two_processes_whole_lines(void **state)
{
    struct fix *f = *state;
    char *s, line[4200];
    int n;

    assert_int_equal(myna_log_open(f->path), 0);
    fflush(NULL);
    for (int c = 0; c < 2; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char pad[2000];
            memset(pad, c ? 'B' : 'A', sizeof(pad) - 1);
            pad[sizeof(pad) - 1] = '\0';
            for (int i = 0; i < 300; i++)
                MYNA_LOG(MYNA_INFO, "child", "c=%d i=%d pad=%s", c, i, pad);
            _exit(0);
        }
    }
    for (int c = 0; c < 2; c++) {
        int status;
        assert_true(wait(&status) > 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    s = slurp(f->path);
    n = count_lines(s);
    assert_int_equal(n, 600);
    for (int i = 0; i < n; i++) {
        nth_line(s, i, line, sizeof(line));
        assert_matches(line, TS_RE "level=info proc=tlog pid=[0-9]+ event=child c=[01] "
                                   "i=[0-9]+ pad=(A{1999}|B{1999})$");
    }
    free(s);
}

/* ---- names and levels ---- */

static void test_log_level_names(void **state)
{
    (void)state;
    assert_int_equal(myna_log_level_from_name("error"), MYNA_ERROR);
    assert_int_equal(myna_log_level_from_name("warn"), MYNA_WARN);
    assert_int_equal(myna_log_level_from_name("info"), MYNA_INFO);
    assert_int_equal(myna_log_level_from_name("debug"), MYNA_DEBUG);
    assert_int_equal(myna_log_level_from_name("INFO"), -1);
    assert_int_equal(myna_log_level_from_name("warning"), -1);
    assert_int_equal(myna_log_level_from_name(""), -1);
    for (int l = MYNA_ERROR; l <= MYNA_DEBUG; l++)
        assert_int_equal(myna_log_level_from_name(myna_log_level_name(l)), l);
    assert_string_equal(myna_log_level_name(-1), "info");
    assert_string_equal(myna_log_level_name(4), "info");
}

static void test_log_set_level_ignores_invalid(void **state)
{
    (void)state;
    myna_log_set_level(MYNA_WARN);
    assert_int_equal(myna_log_level_cur, MYNA_WARN);
    myna_log_set_level(-1);
    assert_int_equal(myna_log_level_cur, MYNA_WARN);
    myna_log_set_level(4);
    assert_int_equal(myna_log_level_cur, MYNA_WARN);
    myna_log_set_level(MYNA_DEBUG);
    assert_int_equal(myna_log_level_cur, MYNA_DEBUG);
}

static void test_log_proc_name_truncated(void **state)
{
    struct fix *f = *state;
    char *s;

    assert_int_equal(myna_log_open(f->path), 0);
    myna_log_set_proc("a-very-long-process-name-that-does-not-fit-at-all");
    MYNA_LOG(MYNA_INFO, "p", "n=%d", 1);
    myna_log_set_proc("bot");
    MYNA_LOG(MYNA_INFO, "p", "n=%d", 2);
    s = slurp(f->path);
    /* 31 bytes kept */
    assert_non_null(strstr(s, " proc=a-very-long-process-name-that-d pid="));
    assert_non_null(strstr(s, " proc=bot pid="));
    free(s);
}

/* ---- rotation ---- */

/* Keeps fds 1 and 2 for teardown: a rotating log dup2s onto them. */
static void save_stdio(struct fix *f)
{
    fflush(NULL);
    f->saved_out = dup(STDOUT_FILENO);
    f->saved_err = dup(STDERR_FILENO);
    assert_true(f->saved_out >= 0 && f->saved_err >= 0);
}

static int exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static long file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The numbers n=... of the lines of s, in order, into v; returns how many. */
static int seqs(const char *s, int *v, int max)
{
    int k = 0;

    for (const char *p = s; (p = strstr(p, " n=")) != NULL && k < max; p += 3)
        v[k++] = (int)strtol(p + 3, NULL, 10);
    return k;
}

/* .3 .2 .1 and the current file of f's rotating log, written with lines
 * n=0..39: each rotated file of a size in [min, max), the newest lines kept
 * (at least min_lines), in order, none lost between. */
static void check_rotated(const struct fix *f, long min, long max, int min_lines)
{
    char name[160];
    int v[400], n = 0;

    for (int k = 3; k >= 0; k--) {
        char *s;
        if (k)
            snprintf(name, sizeof(name), "%s.%d", f->path, k);
        else
            snprintf(name, sizeof(name), "%s", f->path);
        if (k)
            assert_true(file_size(name) >= min && file_size(name) < max);
        s = slurp(name);
        n += seqs(s, v + n, 400 - n);
        free(s);
    }
    assert_true(n >= min_lines);
    assert_int_equal(v[n - 1], 39);
    for (int i = 1; i < n; i++)
        assert_int_equal(v[i], v[i - 1] + 1);
}

static void test_log_rotate_keeps_files_in_order(void **state)
{
    struct fix *f = *state;
    char pad[201], name[160];

    save_stdio(f);
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    assert_int_equal(myna_log_open_rotating(f->path, 1000, 3), 0);
    for (int i = 0; i < 40; i++)  /* about 330 bytes each: a rotation every 4 lines */
        MYNA_LOG(MYNA_INFO, "rot", "n=%d pad=%s", i, pad);
    snprintf(name, sizeof(name), "%s.4", f->path);
    assert_false(exists(name));  /* keep = 3 */
    /* each rotated file went just past the limit, not far */
    check_rotated(f, 1000, 1000 + 400, 12);
}

static void test_log_rotate_moves_stdout_and_stderr(void **state)
{
    struct fix *f = *state;
    char old[160], *s, *o;
    char big[1500];

    save_stdio(f);
    assert_int_equal(myna_log_open_rotating(f->path, 1024, 2), 0);
    fprintf(stderr, "raw stderr before\n");  /* unbuffered */
    /* bytes written by others count: these alone pass the limit */
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\n';
    assert_int_equal(write(STDERR_FILENO, big, sizeof(big)), (ssize_t)sizeof(big));
    MYNA_LOG(MYNA_INFO, "last_before", "n=%d", 1);
    MYNA_LOG(MYNA_INFO, "first_after", "n=%d", 2);
    fprintf(stderr, "raw stderr after\n");
    printf("raw stdout after\n");
    fflush(stdout);
    snprintf(old, sizeof(old), "%s.1", f->path);
    s = slurp(f->path);
    o = slurp(old);
    assert_non_null(strstr(o, "raw stderr before\n"));
    assert_non_null(strstr(o, "event=last_before"));
    assert_non_null(strstr(s, "event=first_after"));
    assert_non_null(strstr(s, "raw stderr after\n"));
    assert_non_null(strstr(s, "raw stdout after\n"));
    assert_null(strstr(s, "before"));
    free(s);
    free(o);
}

static void test_log_rotate_keep_zero_and_bad_args(void **state)
{
    struct fix *f = *state;
    char name[160];

    save_stdio(f);
    assert_int_equal(myna_log_open_rotating("", 100, 1), -EINVAL);
    assert_int_equal(myna_log_open_rotating(f->path, 0, 1), -EINVAL);
    assert_int_equal(myna_log_open_rotating(f->path, 100, -1), -EINVAL);
    assert_int_equal(myna_log_open_rotating(f->path, 100, 100), -EINVAL);
    assert_int_equal(myna_log_open_rotating(f->path, 100, 0), 0);
    for (int i = 0; i < 5; i++)
        MYNA_LOG(MYNA_INFO, "k0", "n=%d", i);
    snprintf(name, sizeof(name), "%s.1", f->path);
    assert_false(exists(name));
    assert_true(file_size(f->path) < 200);  /* only the newest line or two */
}

static void test_log_rotate_failure_is_not_retried_every_line(void **state)
{
    struct fix *f = *state;
    char name[160], *s;

    save_stdio(f);
    assert_int_equal(myna_log_open_rotating(f->path, 200, 1), 0);
    /* path.1 is a non-empty directory: renaming onto it fails */
    snprintf(name, sizeof(name), "%s.1", f->path);
    assert_int_equal(mkdir(name, 0700), 0);
    snprintf(name, sizeof(name), "%s.1/keep", f->path);
    assert_int_equal(mkdir(name, 0700), 0);
    for (int i = 0; i < 6; i++)
        MYNA_LOG(MYNA_INFO, "nofail", "n=%d", i);
    s = slurp(f->path);  /* everything stayed in the one file */
    assert_int_equal(count_lines(s), 6);
    free(s);
    assert_int_equal(rmdir(name), 0);
    snprintf(name, sizeof(name), "%s.1", f->path);
    assert_int_equal(rmdir(name), 0);
    for (int i = 0; i < 6; i++)  /* and the next try, a limit later, works */
        MYNA_LOG(MYNA_INFO, "again", "n=%d", i);
    assert_true(exists(name));
}

/* A rotation whose new file cannot be opened (out of descriptors) after
 * the old one was renamed away: the lines go on to the renamed file, and
 * the next try, a limit later, opens the file again instead of failing for
 * ever on a file that is no longer there (the bot then wrote to <id>.log.N
 * without end, and <id>.log was gone). No line is lost. */
static void test_log_rotate_recovers_from_a_failed_open(void **state)
{
    struct fix *f = *state;
    char pad[201], name[160];
    struct rlimit saved, rl;
    int fd;

    save_stdio(f);
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    assert_int_equal(myna_log_open_rotating(f->path, 1000, 3), 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_true((fd = dup(0)) >= 0);  /* the lowest free descriptor */
    close(fd);
    rl = saved;
    rl.rlim_cur = (rlim_t)fd;  /* no open can succeed */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    for (int i = 0; i < 5; i++)  /* about 330 bytes each: a rotation at the 4th */
        MYNA_LOG(MYNA_INFO, "rot", "n=%d pad=%s", i, pad);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    for (int i = 5; i < 40; i++)
        MYNA_LOG(MYNA_INFO, "rot", "n=%d pad=%s", i, pad);
    assert_true(exists(f->path));
    assert_true(file_size(f->path) < 1000 + 400);
    snprintf(name, sizeof(name), "%s.4", f->path);
    assert_false(exists(name));
    check_rotated(f, 0, 2 * 1000 + 400, 8);  /* no file grew far past the limit */
}

/* ---- tail ---- */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* myna_log_tail into a buffer of max bytes, as a string (static). */
static const char *tail(const char *path, size_t lines, size_t max, int *rc)
{
    static char out[1 << 16];
    struct myna_buf b = MYNA_BUF_INIT(max);

    *rc = myna_log_tail(path, lines, &b);
    snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
    myna_buf_release(&b);
    return out;
}

static void test_log_tail_last_lines(void **state)
{
    struct fix *f = *state;
    int rc;

    write_file(f->path, "one\ntwo\nthree\nfour\n");
    assert_string_equal(tail(f->path, 2, 1000, &rc), "three\nfour\n");
    assert_int_equal(rc, MYNA_OK);
    assert_string_equal(tail(f->path, 4, 1000, &rc), "one\ntwo\nthree\nfour\n");
    assert_string_equal(tail(f->path, 0, 1000, &rc), "");
    assert_int_equal(rc, MYNA_OK);
    /* a last line still being written is a line */
    write_file(f->path, "a\n\n\nb\npartial");
    assert_string_equal(tail(f->path, 2, 1000, &rc), "b\npartial");
    assert_string_equal(tail(f->path, 3, 1000, &rc), "\nb\npartial");
    write_file(f->path, "");
    assert_string_equal(tail(f->path, 5, 1000, &rc), "");
    assert_int_equal(rc, MYNA_OK);
}

static void test_log_tail_reads_the_rotated_file(void **state)
{
    struct fix *f = *state;
    char old[160];
    int rc;

    snprintf(old, sizeof(old), "%s.1", f->path);
    write_file(old, "o1\no2\no3\n");
    write_file(f->path, "c1\nc2\n");
    assert_string_equal(tail(f->path, 3, 1000, &rc), "o3\nc1\nc2\n");
    assert_string_equal(tail(f->path, 10, 1000, &rc), "o1\no2\no3\nc1\nc2\n");
    assert_int_equal(rc, MYNA_OK);
    /* a rotated file whose last line lacks its newline stays a line apart */
    write_file(old, "o1\ncut");
    assert_string_equal(tail(f->path, 3, 1000, &rc), "cut\nc1\nc2\n");
    /* just rotated: no current file yet */
    assert_int_equal(unlink(f->path), 0);
    assert_string_equal(tail(f->path, 1, 1000, &rc), "cut");
    assert_int_equal(rc, MYNA_OK);
    assert_int_equal(unlink(old), 0);
    tail(f->path, 1, 1000, &rc);
    assert_int_equal(rc, MYNA_ENOTFOUND);
    tail(f->path, MYNA_LOG_TAIL_MAX + 1, 1000, &rc);
    assert_int_equal(rc, MYNA_EINVAL);
}

static void test_log_tail_whole_lines_within_max(void **state)
{
    struct fix *f = *state;
    char old[160];
    struct myna_buf b = MYNA_BUF_INIT(8);
    int rc;

    snprintf(old, sizeof(old), "%s.1", f->path);
    write_file(old, "old-1\nold-2\n");
    write_file(f->path, "aaaa\nbbbb\ncccc\n");
    /* 15 bytes of the current file: the oldest lines go, whole */
    assert_string_equal(tail(f->path, 3, 12, &rc), "bbbb\ncccc\n");
    assert_string_equal(tail(f->path, 3, 14, &rc), "bbbb\ncccc\n");
    assert_string_equal(tail(f->path, 3, 15, &rc), "aaaa\nbbbb\ncccc\n");
    assert_string_equal(tail(f->path, 5, 21, &rc), "old-2\naaaa\nbbbb\ncccc\n");
    assert_string_equal(tail(f->path, 5, 20, &rc), "aaaa\nbbbb\ncccc\n");
    assert_string_equal(tail(f->path, 5, 100, &rc), "old-1\nold-2\naaaa\nbbbb\ncccc\n");
    assert_int_equal(rc, MYNA_OK);
    /* not even the newest line fits: nothing, and out is as it was */
    assert_int_equal(myna_buf_append(&b, "keep", 4), MYNA_OK);
    assert_int_equal(myna_log_tail(f->path, 1, &b), MYNA_ETOOBIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    myna_buf_release(&b);
}

static void test_log_tail_big_file_backwards(void **state)
{
    struct fix *f = *state;
    struct myna_buf b = MYNA_BUF_INIT(4 << 20);
    FILE *fp = fopen(f->path, "wb");
    const char *p;
    int i;

    assert_non_null(fp);
    for (i = 0; i < 100000; i++)  /* lines of varied lengths across block edges */
        fprintf(fp, "line %d %.*s\n", i, i % 97,
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(myna_log_tail(f->path, MYNA_LOG_TAIL_MAX, &b), MYNA_OK);
    assert_int_equal(count_lines(b.data), MYNA_LOG_TAIL_MAX);
    assert_int_equal(strncmp(b.data, "line 90000 ", 11), 0);
    for (p = b.data, i = 90000; *p; i++) {
        char want[32];
        snprintf(want, sizeof(want), "line %d ", i);
        assert_int_equal(strncmp(p, want, strlen(want)), 0);
        p = strchr(p, '\n') + 1;
    }
    assert_int_equal(i, 100000);
    myna_buf_release(&b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_log_q_plain),
        T(test_log_q_escapes),
        T(test_log_q_escapes_bytes_not_utf8),
        T(test_log_q_escapes_c1_and_separators),
        T(test_log_q_null),
        T(test_log_q_truncates_within_cap),
        T(test_log_q_truncation_never_splits_escapes),
        T(test_log_q_truncation_never_splits_characters),
        T(test_log_q_tiny_cap),
        T(test_log_q_fits_not_truncated),
        T(test_log_line_format),
        T(test_log_routes_libevent),
        T(test_log_quoted_field),
        T(test_log_level_filtering),
        T(test_log_errno_fields),
        T(test_log_long_line_stays_one_line),
        T(test_log_long_line_never_splits_characters),
        T(test_log_long_line_closes_its_quote),
        T(test_log_appends_to_existing),
        T(test_log_reopen_after_rename),
        T(test_log_reopen_keeps_cloexec),
        T(test_log_reopen_without_file),
        T(test_log_open_failure_keeps_target),
        T(test_log_open_too_long_path),
        T(test_log_back_to_stderr),
        T(test_log_two_processes_whole_lines),
        T(test_log_level_names),
        T(test_log_set_level_ignores_invalid),
        T(test_log_proc_name_truncated),
        T(test_log_rotate_keeps_files_in_order),
        T(test_log_rotate_moves_stdout_and_stderr),
        T(test_log_rotate_keep_zero_and_bad_args),
        T(test_log_rotate_failure_is_not_retried_every_line),
        T(test_log_rotate_recovers_from_a_failed_open),
        T(test_log_tail_last_lines),
        T(test_log_tail_reads_the_rotated_file),
        T(test_log_tail_whole_lines_within_max),
        T(test_log_tail_big_file_backwards),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
