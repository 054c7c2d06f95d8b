/* buf.c - bounded growable byte buffer. */
#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/banned.h"

static int buf_grow(struct myna_buf *b, size_t need)
{
    size_t cap;
    char *p;

    /* room for need bytes and the NUL; SIZE_MAX - 1 keeps need + 1 exact */
    if (need > b->max || need >= SIZE_MAX - 1)
        return MYNA_ETOOBIG;
    if (need + 1 <= b->cap)
        return MYNA_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    if (b->max < SIZE_MAX - 1 && cap > b->max + 1)
        cap = b->max + 1;
    if (cap < need + 1)
        cap = need + 1;
    p = realloc(b->data, cap);
    if (p == NULL)
        return MYNA_ENOMEM;
    b->data = p;
    b->cap = cap;
    return MYNA_OK;
}

int myna_buf_append(struct myna_buf *b, const void *p, size_t n)
{
    int rc;

    if (n > b->max - b->len || b->len > b->max)
        return MYNA_ETOOBIG;
    if ((rc = buf_grow(b, b->len + n)) != MYNA_OK)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return MYNA_OK;
}

int myna_buf_appends(struct myna_buf *b, const char *s)
{
    return myna_buf_append(b, s, strlen(s));
}

int myna_buf_printf(struct myna_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MYNA_EINVAL;
    if ((size_t)n > b->max - b->len)
        return MYNA_ETOOBIG;
    if ((rc = buf_grow(b, b->len + (size_t)n)) != MYNA_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MYNA_OK;
}

void myna_buf_reset(struct myna_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void myna_buf_release(struct myna_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *myna_buf_detach(struct myna_buf *b, size_t *len)
{
    char *p = b->data;

    if (len)
        *len = b->len;
    if (b->len == 0) {
        free(p);
        p = NULL;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int myna_buf_read_file(struct myna_buf *b, const char *path, struct myna_err *err)
{
    char chunk[8192];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = MYNA_OK;

    if (fd < 0)
        return myna_err_set(err, MYNA_EIO, "cannot read: %s", strerror(errno));
    if (fstat(fd, &st) != 0)
        rc = myna_err_set(err, MYNA_EIO, "cannot read: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = myna_err_set(err, MYNA_ECONFIG, "not a regular file");
    while (rc == MYNA_OK && (n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno != EINTR)
            rc = myna_err_set(err, MYNA_EIO, "cannot read: %s", strerror(errno));
        else if (n > 0 && (rc = myna_buf_append(b, chunk, (size_t)n)) == MYNA_ETOOBIG)
            myna_err_set(err, rc, "larger than %zu bytes", b->max);
        else if (rc == MYNA_ENOMEM)
            myna_err_set(err, rc, "out of memory");
    }
    close(fd);
    return rc;
}
