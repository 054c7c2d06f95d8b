/* log.c - key=value logging, one write(2) per line. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/banned.h"

int myna_log_level_cur = MYNA_INFO;

static char log_proc[32] = "myna";
static char log_path[4096];
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void myna_log_set_proc(const char *proc)
{
    snprintf(log_proc, sizeof(log_proc), "%s", proc);
}

void myna_log_set_level(int level)
{
    if (level >= MYNA_ERROR && level <= MYNA_DEBUG)
        myna_log_level_cur = level;
}

int myna_log_level_from_name(const char *name)
{
    for (int i = 0; i <= MYNA_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *myna_log_level_name(int level)
{
    if (level < MYNA_ERROR || level > MYNA_DEBUG)
        return "info";
    return level_names[level];
}

static int log_open_fd(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    return fd < 0 ? -errno : fd;
}

int myna_log_open(const char *path)
{
    int fd;

    if (path == NULL || path[0] == '\0') {
        log_path[0] = '\0';
        if (log_fd != STDERR_FILENO)
            close(log_fd);
        log_fd = STDERR_FILENO;
        return 0;
    }
    if (strlen(path) >= sizeof(log_path))
        return -ENAMETOOLONG;
    if ((fd = log_open_fd(path)) < 0)
        return fd;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    snprintf(log_path, sizeof(log_path), "%s", path);
    return 0;
}

int myna_log_reopen(void)
{
    int fd;

    if (log_path[0] == '\0')
        return 0;
    if ((fd = log_open_fd(log_path)) < 0)
        return fd;
    /* dup2 swaps the file under the same descriptor: a thread writing at this
     * moment writes to the old or the new file, never to a closed fd */
    if (dup2(fd, log_fd) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    close(fd);
    return 0;
}

/* Escaped form of c into esc (at most 4 bytes); returns its length. */
static size_t log_escape(unsigned char c, char esc[5])
{
    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        return 2;
    }
    if (c == '\n') {
        memcpy(esc, "\\n", 2);
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        snprintf(esc, 5, "\\x%02x", c);
        return 4;
    }
    esc[0] = (char)c;
    return 1;
}

const char *myna_log_q(char *buf, size_t cap, const char *s)
{
    char esc[5];
    size_t o = 0, full = 2, limit;

    if (cap < 8) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    if (s == NULL) {
        snprintf(buf, cap, "-");
        return buf;
    }
    for (const char *p = s; *p; p++)
        full += log_escape((unsigned char)*p, esc);
    /* everything fits with its quotes and NUL, or it is cut with room for
     * the '..."' that marks the cut */
    limit = full + 1 <= cap ? cap - 2 : cap - 5;
    buf[o++] = '"';
    for (; *s; s++) {
        size_t n = log_escape((unsigned char)*s, esc);
        if (o + n > limit)
            break;
        memcpy(buf + o, esc, n);
        o += n;
    }
    if (*s) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void myna_log_write(int level, const char *event, int errnum, const char *fmt, ...)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    size_t o;
    int n;
    va_list ap;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s pid=%ld event=%s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (long)(tv.tv_usec / 1000), myna_log_level_name(level), log_proc,
                 (long)getpid(), event);
    o = n > 0 && (size_t)n < sizeof(line) ? (size_t)n : 0;
    va_start(ap, fmt);
    n = vsnprintf(line + o, sizeof(line) - o, fmt, ap);
    va_end(ap);
    if (n > 0)
        o += (size_t)n < sizeof(line) - o ? (size_t)n : sizeof(line) - o - 1;
    while (o > 0 && line[o - 1] == ' ')
        o--;
    if (errnum != 0 && o < sizeof(line)) {
        char q[256];
        n = snprintf(line + o, sizeof(line) - o, " errno=%d err=%s", errnum,
                     myna_log_q(q, sizeof(q), strerror(errnum)));
        if (n > 0)
            o += (size_t)n < sizeof(line) - o ? (size_t)n : sizeof(line) - o - 1;
    }
    if (o >= sizeof(line) - 1)
        o = sizeof(line) - 2;
    line[o++] = '\n';
    /* a short write to a log is not worth failing for; EINTR is retried */
    while (write(log_fd, line, o) < 0 && errno == EINTR)
        ;
}
