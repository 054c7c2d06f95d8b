/* test_log_tail.c - myna_log_tail while the files change under it: a bot
 * that rotates its log between the moment the tail opens <id>.log and the
 * moment it opens <id>.log.1, and a log cut shorter while it is read. The
 * moments are made exact by including log.c with open and pread routed
 * through the hooks below (each test arms one, which fires once). */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"

static char hook_path[128];  /* the log the hooks act on */
static int rotate_armed;     /* rotate hook_path when hook_path.1 is opened */
static int truncate_armed;   /* cut hook_path to nothing before a read */

static void rotate_now(void)
{
    char to[160];
    int fd;

    snprintf(to, sizeof(to), "%s.1", hook_path);
    assert_int_equal(rename(hook_path, to), 0);
    fd = open(hook_path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "new 1\n", 6), 6);
    close(fd);
}

static int test_open(const char *path, int flags, ...)
{
    char old[160];
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if (flags & O_CREAT)
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    snprintf(old, sizeof(old), "%s.1", hook_path);
    if (rotate_armed && strcmp(path, old) == 0) {
        rotate_armed = 0;
        rotate_now();
    }
    return open(path, flags, mode);
}

static ssize_t test_pread(int fd, void *buf, size_t n, off_t at)
{
    if (truncate_armed) {
        truncate_armed = 0;
        assert_int_equal(truncate(hook_path, 0), 0);
    }
    return pread(fd, buf, n, at);
}

#define open test_open
#define pread test_pread
#include "core/log.c"
#undef open
#undef pread

struct fix {
    char dir[64];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL || test_tmpdir(f->dir, sizeof(f->dir), "test-log-tail") != 0) {
        free(f);
        return -1;
    }
    snprintf(hook_path, sizeof(hook_path), "%s/bot.log", f->dir);
    rotate_armed = truncate_armed = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;

    test_rmtree(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* The tail of hook_path as a string (static); *rc gets the result. */
static const char *tail(size_t lines, int *rc)
{
    static char text[4096];
    struct myna_buf b = MYNA_BUF_INIT(1 << 20);

    *rc = myna_log_tail(hook_path, lines, &b);
    snprintf(text, sizeof(text), "%s", b.data ? b.data : "");
    myna_buf_release(&b);
    return text;
}

/* The bot rotates after the tail opened bot.log and before it opens
 * bot.log.1: the tail gives each line once, as the files are now. */
static void test_tail_rotated_between_the_opens(void **state)
{
    char old[160];
    int rc;

    (void)state;
    snprintf(old, sizeof(old), "%s.1", hook_path);
    write_file(old, "older 1\nolder 2\n");
    write_file(hook_path, "line 1\nline 2\nline 3\n");
    rotate_armed = 1;
    assert_string_equal(tail(10, &rc), "line 1\nline 2\nline 3\nnew 1\n");
    assert_int_equal(rc, MYNA_OK);
    assert_int_equal(rotate_armed, 0);  /* it did rotate in between */
}

/* The log is cut to nothing while the tail reads it (a logrotate with
 * copytruncate, or ": > bot.log"): the tail reads the files as they are
 * now instead of failing as unreadable. */
static void test_tail_truncated_while_read(void **state)
{
    char old[160];
    int rc;

    (void)state;
    snprintf(old, sizeof(old), "%s.1", hook_path);
    write_file(old, "older 1\nolder 2\n");
    write_file(hook_path, "line 1\nline 2\nline 3\n");
    truncate_armed = 1;
    assert_string_equal(tail(2, &rc), "older 1\nolder 2\n");
    assert_int_equal(rc, MYNA_OK);
    assert_int_equal(truncate_armed, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_tail_rotated_between_the_opens),
        T(test_tail_truncated_while_read),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
