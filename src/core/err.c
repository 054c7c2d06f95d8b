/* err.c - error texts and the error context. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/banned.h"

const char *myna_strerror(int code)
{
    switch (code) {
    case MYNA_OK:
        return "success";
#define X(name, val, text) \
    case val:              \
        return text;
        MYNA_ERRORS(X)
#undef X
    default:
        return "unknown error";
    }
}

int myna_err_set(struct myna_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

int myna_err_prefix(struct myna_err *err, const char *fmt, ...)
{
    char prefix[MYNA_ERR_MSG_MAX];
    char old[MYNA_ERR_MSG_MAX];
    va_list ap;

    if (err == NULL)
        return MYNA_EINVAL;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* a message cut short is still better than none */
    if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old) < 0)
        err->msg[0] = '\0';
    return err->code;
}
