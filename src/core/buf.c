/* buf.c - bounded growable byte buffer. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
