/* err.h - the one table of error codes and the error context that travels
 * with them.
 *
 * Fallible functions return int: MYNA_OK (0) or a negative MYNA_E* code, and
 * fill a caller-owned struct myna_err with a complete, lower-case message.
 * On success the err is left untouched. Library code never prints or exits. */
#ifndef MYNA_CORE_ERR_H
#define MYNA_CORE_ERR_H

#include <stddef.h>

#define MYNA_ERRORS(X)                                                \
    X(NOMEM, -1, "out of memory")                                     \
    X(AGAIN, -2, "try again later")                                   \
    X(TOOBIG, -3, "input larger than configured limit")               \
    X(BADSIG, -4, "bad signature")                                    \
    X(PARSE, -5, "malformed input")                                   \
    X(SHAPE, -6, "input does not have the expected shape")            \
    X(INVAL, -7, "invalid argument")                                  \
    X(NOTFOUND, -8, "not found")                                      \
    X(IO, -9, "input/output error")                                   \
    X(STORE, -10, "store failure")                                    \
    X(EXISTS, -11, "already exists")                                  \
    X(CONFIG, -12, "invalid configuration")                           \
    X(CONFLICT, -13, "changed since it was read")

enum myna_rc {
    MYNA_OK = 0,
#define X(name, val, text) MYNA_E##name = val,
    MYNA_ERRORS(X)
#undef X
};

#define MYNA_ERR_MSG_MAX 512

struct myna_err {
    int code;                    /* a MYNA_E* code, 0 when unset */
    char msg[MYNA_ERR_MSG_MAX];  /* complete message, NUL-terminated */
};

#define MYNA_ERR_INIT { 0, { 0 } }

/* Text of a MYNA_E* code; never NULL. */
const char *myna_strerror(int code);

/* Fills err (if not NULL) with code and a printf-formatted message; returns
 * code so that callers can write `return myna_err_set(err, ...)`. */
int myna_err_set(struct myna_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with "prefix: " keeping the code; returns err->code. */
int myna_err_prefix(struct myna_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
