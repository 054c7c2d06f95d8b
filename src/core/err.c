/* err.c - error texts and the error context. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
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
    int n;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(err->msg))
        err->msg[myna_utf8_uncut(err->msg, strlen(err->msg))] = '\0';  /* no half character */
    return code;
}

int myna_err_prefix(struct myna_err *err, const char *fmt, ...)
{
    char prefix[MYNA_ERR_MSG_MAX];
    char old[MYNA_ERR_MSG_MAX];
    va_list ap;
    int n;

    if (err == NULL)
        return MYNA_EINVAL;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* a message cut short is still better than none */
    n = snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
    if (n < 0)
        err->msg[0] = '\0';
    else if (n >= (int)sizeof(err->msg))
        err->msg[myna_utf8_uncut(err->msg, strlen(err->msg))] = '\0';  /* no half character */
    return err->code;
}
