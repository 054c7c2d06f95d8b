/* buf.h - the one growable byte buffer. Owns its bytes, never logs, and every
 * append is bounded by max: a hostile body fails with MYNA_ETOOBIG instead of
 * eating memory. data is NUL-terminated once non-empty. */
#ifndef MYNA_CORE_BUF_H
#define MYNA_CORE_BUF_H

#include <stddef.h>

struct myna_err;

struct myna_buf {
    char *data;
    size_t len, cap, max;
};

#define MYNA_BUF_INIT(max_) { NULL, 0, 0, (max_) }

/* Appends n bytes; MYNA_ETOOBIG past max (buffer unchanged), MYNA_ENOMEM. */
int myna_buf_append(struct myna_buf *b, const void *p, size_t n);
int myna_buf_appends(struct myna_buf *b, const char *s);
int myna_buf_printf(struct myna_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empties the buffer, keeping its memory. */
void myna_buf_reset(struct myna_buf *b);
/* Frees the bytes; back to the INIT state with the same max. */
void myna_buf_release(struct myna_buf *b);
/* Hands the bytes to the caller (NULL when empty); buffer back to INIT. */
char *myna_buf_detach(struct myna_buf *b, size_t *len);
/* Appends the regular file at path. Anything else is refused at once (a
 * FIFO would block the caller until a writer came, a directory reads as
 * nothing). MYNA_EIO "cannot read: <reason>", MYNA_ECONFIG "not a regular
 * file", MYNA_ETOOBIG "larger than <max> bytes", MYNA_ENOMEM; the messages
 * do not name the file: callers prefix them. */
int myna_buf_read_file(struct myna_buf *b, const char *path, struct myna_err *err);

#endif
