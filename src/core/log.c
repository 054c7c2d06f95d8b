/* log.c - key=value logging, one write(2) per line; size rotation and tail
 * of the bots' files. */
#include "core/log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "core/banned.h"

_Atomic int myna_log_level_cur = MYNA_INFO;

static char log_proc[32] = "myna";
static char log_path[4096];
static int log_fd = STDERR_FILENO;
/* rotation (myna_log_open_rotating): log_fd is then fd 2, and fd 1 is the
 * same file */
static size_t rot_max;         /* 0: no rotation */
static int rot_keep;
static off_t rot_at;           /* rotate once the file reaches this size */
static pthread_mutex_t rot_lock = PTHREAD_MUTEX_INITIALIZER;

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

/* libevent's own messages ("getaddrinfo: ...", a failed fcntl) as lines
 * of ours, instead of "[warn] ..." on standard error, past log_file. */
static void on_libevent_log(int severity, const char *msg)
{
    char q[600];
    int level = severity >= EVENT_LOG_ERR    ? MYNA_ERROR
                : severity == EVENT_LOG_WARN ? MYNA_WARN
                : severity == EVENT_LOG_MSG  ? MYNA_INFO
                                             : MYNA_DEBUG;

    MYNA_LOG(level, "libevent", "msg=%s", myna_log_q(q, sizeof(q), msg));
}

void myna_log_route_libevent(void)
{
    event_set_log_callback(on_libevent_log);
}

static int log_open_fd(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    return fd < 0 ? -errno : fd;
}

int myna_log_open(const char *path)
{
    int fd;

    rot_max = 0;
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
     * moment writes to the old or the new file, never to a closed fd. dup2
     * clears close-on-exec: dup3 keeps it on a private descriptor, which the
     * bots must not inherit (fds 1 and 2 of a rotating log are theirs) */
    if ((rot_max ? dup2(fd, log_fd) : dup3(fd, log_fd, O_CLOEXEC)) < 0 ||
        (rot_max && dup2(fd, STDOUT_FILENO) < 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    close(fd);
    return 0;
}

/* Makes fd the process's fds 1 and 2 (log_fd is 2) and closes it. */
static int log_onto_stdio(int fd)
{
    int e = 0;

    if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
        e = -errno;
    if (fd > STDERR_FILENO)
        close(fd);
    return e;
}

int myna_log_open_rotating(const char *path, size_t max_bytes, int keep)
{
    int fd, rc;

    if (path == NULL || path[0] == '\0' || max_bytes == 0 || keep < 0 || keep > 99)
        return -EINVAL;
    if (strlen(path) >= sizeof(log_path))
        return -ENAMETOOLONG;
    if ((fd = log_open_fd(path)) < 0)
        return fd;
    if (log_fd > STDERR_FILENO)
        close(log_fd);
    log_fd = STDERR_FILENO;  /* also if the dup2 below fails: never a closed fd */
    if ((rc = log_onto_stdio(fd)) != 0)
        return rc;
    snprintf(log_path, sizeof(log_path), "%s", path);
    rot_max = max_bytes;
    rot_keep = keep;
    rot_at = (off_t)max_bytes;
    return 0;
}

/* path.N-1 -> path.N ... path -> path.1, then a new path on fds 1 and 2. */
static int log_rotate(void)
{
    char from[sizeof(log_path) + 16], to[sizeof(log_path) + 16];
    int fd;

    for (int i = rot_keep - 1; i >= 1; i--) {
        snprintf(from, sizeof(from), "%s.%d", log_path, i);
        snprintf(to, sizeof(to), "%s.%d", log_path, i + 1);
        if (rename(from, to) != 0 && errno != ENOENT)
            return -errno;
    }
    /* no file at path (a rotation whose open failed left the lines going
     * to path.1, or it was removed by hand): a new one is all it takes */
    if (rot_keep > 0) {
        snprintf(to, sizeof(to), "%s.1", log_path);
        if (rename(log_path, to) != 0 && errno != ENOENT)
            return -errno;
    } else if (unlink(log_path) != 0 && errno != ENOENT) {
        return -errno;
    }
    if ((fd = log_open_fd(log_path)) < 0)
        return fd;  /* lines go on to the renamed file */
    return log_onto_stdio(fd);
}

/* After a line: rotates once the file (whoever wrote to it) reached rot_at.
 * One thread rotates; the others carry on writing to the old or the new
 * file. */
static void log_rotate_check(void)
{
    struct stat st;

    if (fstat(log_fd, &st) != 0 || st.st_size < rot_at)
        return;
    if (pthread_mutex_trylock(&rot_lock) != 0)
        return;
    if (fstat(log_fd, &st) == 0 && st.st_size >= rot_at) {
        if (log_rotate() == 0)
            rot_at = (off_t)rot_max;
        else  /* not on every line: after another max_bytes */
            rot_at = st.st_size + (off_t)rot_max;
    }
    pthread_mutex_unlock(&rot_lock);
}

/* Escaped form of the byte c into esc (at most 4 bytes); returns its
 * length. A byte from 0x80 up is one that is not part of a whole UTF-8
 * character (log_unit passes those as they are): written raw, it would leave
 * a broken character in the line, which a decoder may take together with
 * the escape or quote after it. */
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
    if (c < 0x20 || c >= 0x7f) {
        snprintf(esc, 5, "\\x%02x", c);
        return 4;
    }
    esc[0] = (char)c;
    return 1;
}

/* A whole character of k bytes at s that breaks a line or drives a
 * terminal all the same: a C1 control (U+0080-U+009F: NEL, CSI), or the
 * line and paragraph separators U+2028 and U+2029. */
static int log_breaks_line(const unsigned char *s, size_t k)
{
    return (k == 2 && s[0] == 0xc2 && s[1] < 0xa0) ||
           (k == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9));
}

/* The next unit of s: a whole character of several bytes, as it is (its
 * length in both), or one byte escaped into esc (the bytes of a character
 * that breaks a line, one at a time). *in: the bytes of s it takes.
 * Returns the length it has in the value. */
static size_t log_unit(const char *s, char esc[5], size_t *in)
{
    size_t k = myna_utf8_seq((const unsigned char *)s, strnlen(s, 4));

    if (k > 1 && !log_breaks_line((const unsigned char *)s, k)) {
        *in = k;
        return k;
    }
    *in = 1;
    return log_escape((unsigned char)*s, esc);
}

const char *myna_log_q(char *buf, size_t cap, const char *s)
{
    char esc[5];
    size_t o = 0, full = 2, limit, in;

    if (cap < 8) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    if (s == NULL) {
        snprintf(buf, cap, "-");
        return buf;
    }
    for (const char *p = s; *p; p += in)
        full += log_unit(p, esc, &in);
    /* everything fits with its quotes and NUL, or it is cut with room for
     * the '..."' that marks the cut */
    limit = full + 1 <= cap ? cap - 2 : cap - 5;
    buf[o++] = '"';
    while (*s) {
        /* a character of several bytes goes whole or not at all: a cut
         * inside it would leave the line with a broken character */
        size_t k = log_unit(s, esc, &in);
        if (o + k > limit)
            break;
        memcpy(buf + o, in > 1 ? s : esc, k);
        o += k;
        s += in;
    }
    if (*s) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* The length of the len bytes of line cut short to fit in len: never
 * inside a character or an escape, and a quoted value the cut falls in is
 * closed, with "..." marking the cut, so that the line still parses as
 * fields. */
static size_t log_cut(char *line, size_t len)
{
    size_t i = 0, k, max = len - 4;  /* room for '..."' */
    int quoted = 0;

    for (;; i += k) {
        if (quoted && line[i] == '\\')
            k = line[i + 1] == 'x' ? 4 : 2;
        else if ((k = myna_utf8_seq((const unsigned char *)line + i, len - i)) == 0)
            k = 1;
        if (i + k > max)
            break;
        if (line[i] == '"')
            quoted = !quoted;
    }
    if (quoted) {
        memcpy(line + i, "...\"", 4);
        i += 4;
    }
    return i;
}

void myna_log_write(int level, const char *event, int errnum, const char *fmt, ...)
{
    char line[4096], tail[300] = "";
    struct timeval tv;
    struct tm tm;
    size_t o, max, tlen = 0;
    int n;
    va_list ap;

    /* the errno fields first: a line cut short keeps them after the cut */
    if (errnum != 0) {
        char q[256];
        n = snprintf(tail, sizeof(tail), " errno=%d err=%s", errnum,
                     myna_log_q(q, sizeof(q), strerror(errnum)));
        tlen = n > 0 && (size_t)n < sizeof(tail) ? (size_t)n : 0;
    }
    max = sizeof(line) - 1 - tlen;  /* the fields' room: the newline follows */
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, max + 1,
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s pid=%ld event=%s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (long)(tv.tv_usec / 1000), myna_log_level_name(level), log_proc,
                 (long)getpid(), event);
    o = n > 0 && (size_t)n <= max ? (size_t)n : 0;
    va_start(ap, fmt);
    n = vsnprintf(line + o, max + 1 - o, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n <= max - o)
        o += (size_t)n;
    else if (n > 0)  /* cut to fit */
        o = log_cut(line, max);
    while (o > 0 && line[o - 1] == ' ')
        o--;
    memcpy(line + o, tail, tlen);
    o += tlen;
    line[o++] = '\n';
    /* a short write to a log is not worth failing for; EINTR is retried */
    while (write(log_fd, line, o) < 0 && errno == EINTR)
        ;
    if (rot_max)
        log_rotate_check();
}

/* ---- tail ---------------------------------------------------------------- */

#define TAIL_BLOCK 8192

struct tail_file {
    int fd;          /* -1: the file does not exist */
    off_t size;
    off_t start;     /* where the lines taken begin */
    size_t found;    /* how many lines start there */
    dev_t dev;
    ino_t ino;
};

/* Reads len bytes at pos of f. A short read is a file cut shorter since
 * it was opened (truncated by hand, or by a logrotate with copytruncate):
 * MYNA_EAGAIN, and the tail starts again. */
static int tail_read(const struct tail_file *f, char *block, size_t len, off_t pos)
{
    struct stat st;
    ssize_t n = pread(f->fd, block, len, pos);

    if (n == (ssize_t)len)
        return MYNA_OK;
    if (n >= 0 && fstat(f->fd, &st) == 0 && st.st_size < f->size)
        return MYNA_EAGAIN;
    return MYNA_EIO;
}

/* Finds where the last `want` lines of f begin, reading backwards. A
 * newline ends a line; the file's last newline starts none. */
static int tail_scan(struct tail_file *f, size_t want, char *block)
{
    off_t pos = f->size;
    size_t n = 0;

    f->start = f->size;
    f->found = 0;
    if (f->fd < 0 || f->size == 0 || want == 0)
        return MYNA_OK;
    while (pos > 0) {
        size_t len = pos > TAIL_BLOCK ? TAIL_BLOCK : (size_t)pos;
        off_t base = pos - (off_t)len;
        int rc = tail_read(f, block, len, base);
        if (rc != MYNA_OK)
            return rc;
        for (size_t i = len; i-- > 0;) {
            if (block[i] != '\n' || base + (off_t)i == f->size - 1)
                continue;
            if (++n == want) {
                f->start = base + (off_t)i + 1;
                f->found = n;
                return MYNA_OK;
            }
        }
        pos = base;
    }
    f->start = 0;
    f->found = n + 1;  /* the first line has no newline before it */
    return MYNA_OK;
}

/* The first line start at or after at (a line starts at 0 or after a
 * newline), or f->size when none. */
static int tail_next_line(const struct tail_file *f, off_t at, char *block, off_t *out)
{
    off_t pos = at > 0 ? at - 1 : 0;

    if (at <= 0) {
        *out = 0;
        return MYNA_OK;
    }
    while (pos < f->size) {
        off_t left = f->size - pos;
        size_t len = left > TAIL_BLOCK ? TAIL_BLOCK : (size_t)left;
        const char *nl;
        int rc = tail_read(f, block, len, pos);
        if (rc != MYNA_OK)
            return rc;
        if ((nl = memchr(block, '\n', len)) != NULL) {
            *out = pos + (nl - block) + 1;
            return MYNA_OK;
        }
        pos += (off_t)len;
    }
    *out = f->size;
    return MYNA_OK;
}

static int tail_copy(const struct tail_file *f, char *block, struct myna_buf *out)
{
    for (off_t pos = f->start; pos < f->size;) {
        off_t left = f->size - pos;
        size_t len = left > TAIL_BLOCK ? TAIL_BLOCK : (size_t)left;
        int rc;
        if ((rc = tail_read(f, block, len, pos)) != MYNA_OK ||
            (rc = myna_buf_append(out, block, len)) != MYNA_OK)
            return rc;
        pos += (off_t)len;
    }
    return MYNA_OK;
}

static void tail_open(struct tail_file *f, const char *path)
{
    struct stat st;

    memset(f, 0, sizeof(*f));
    if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0 && fstat(f->fd, &st) == 0) {
        f->size = st.st_size;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
    }
}

/* One try of myna_log_tail; MYNA_EAGAIN when the files changed under it
 * (out unchanged then). */
static int tail_once(const char *path, size_t lines, struct myna_buf *out, char *block)
{
    struct tail_file cur, old = { -1, 0, 0, 0, 0, 0 };
    char old_path[4096 + 16];
    size_t len0 = out->len, room = out->max > out->len ? out->max - out->len : 0;
    off_t total, from_old, skip;
    int rc, glue = 0;  /* glue: the old file's last line lacks its newline */

    tail_open(&cur, path);
    if ((rc = tail_scan(&cur, lines, block)) != MYNA_OK)
        goto out;
    if (cur.found < lines) {
        snprintf(old_path, sizeof(old_path), "%s.1", path);
        tail_open(&old, old_path);
        /* the bot rotated its log after path was opened: path.1 is the
         * file read as path (its lines would come twice), and the one
         * before it is path.2 now */
        if (cur.fd >= 0 && old.fd >= 0 && old.dev == cur.dev && old.ino == cur.ino) {
            rc = MYNA_EAGAIN;
            goto out;
        }
        if ((rc = tail_scan(&old, lines - cur.found, block)) != MYNA_OK)
            goto out;
        if (old.found > 0 && cur.start < cur.size) {
            char last;
            if ((rc = tail_read(&old, &last, 1, old.size - 1)) != MYNA_OK)
                goto out;
            glue = last != '\n';
        }
    }
    if (cur.fd < 0 && old.fd < 0) {
        rc = MYNA_ENOTFOUND;
        goto out;
    }
    /* drop the oldest lines until the rest fits */
    from_old = old.size - old.start + glue;
    total = from_old + (cur.size - cur.start);
    if (total > (off_t)room) {
        skip = total - (off_t)room;
        if (skip < from_old) {
            if ((rc = tail_next_line(&old, old.start + skip, block, &old.start)) != MYNA_OK)
                goto out;
            if (old.start >= old.size)
                glue = 0;
        } else {
            old.start = old.size;
            glue = 0;
            if ((rc = tail_next_line(&cur, cur.start + (skip - from_old), block, &cur.start)) !=
                MYNA_OK)
                goto out;
        }
        if (old.start >= old.size && cur.start >= cur.size) {
            rc = MYNA_ETOOBIG;
            goto out;
        }
    }
    if ((old.fd >= 0 && (rc = tail_copy(&old, block, out)) != MYNA_OK) ||
        (glue && (rc = myna_buf_append(out, "\n", 1)) != MYNA_OK) ||
        (cur.fd >= 0 && (rc = tail_copy(&cur, block, out)) != MYNA_OK))
        goto out;
    rc = MYNA_OK;
out:
    if (rc != MYNA_OK && out->len > len0) {  /* all or nothing */
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    if (cur.fd >= 0)
        close(cur.fd);
    if (old.fd >= 0)
        close(old.fd);
    return rc;
}

int myna_log_tail(const char *path, size_t lines, struct myna_buf *out)
{
    char block[TAIL_BLOCK];
    int rc;

    if (lines > MYNA_LOG_TAIL_MAX || strlen(path) >= 4096)
        return MYNA_EINVAL;
    /* a rotation every 10 MB: a second try finds the files still */
    for (int tries = 0; (rc = tail_once(path, lines, out, block)) == MYNA_EAGAIN; tries++)
        if (tries == 4)
            return MYNA_EIO;
    return rc;
}
