/* log.h - one key=value line per event.
 *
 *   ts=2026-11-22T03:10:04.120Z level=warn proc=master pid=4242 event=webhook_rejected reason=bad_signature
 *
 * The level is tested before formatting. event is a stable snake_case name;
 * the fields after it are printf-formatted by the caller. Values that come
 * from outside are quoted and escaped with myna_log_q. Never log tokens,
 * secrets or signatures; phone numbers go through myna_phone_mask. Each line
 * goes out in one write(2), so lines of threads and processes do not mix. */
#ifndef MYNA_CORE_LOG_H
#define MYNA_CORE_LOG_H

#include <stddef.h>

enum myna_log_level { MYNA_ERROR = 0, MYNA_WARN = 1, MYNA_INFO = 2, MYNA_DEBUG = 3 };

extern int myna_log_level_cur;

#define MYNA_LOG(level, event, ...)                          \
    do {                                                     \
        if ((level) <= myna_log_level_cur)                   \
            myna_log_write((level), (event), 0, __VA_ARGS__); \
    } while (0)

/* Adds errno=N err="text" after the fields. */
#define MYNA_LOG_ERRNO(level, event, errnum, ...)                   \
    do {                                                            \
        if ((level) <= myna_log_level_cur)                          \
            myna_log_write((level), (event), (errnum), __VA_ARGS__); \
    } while (0)

void myna_log_write(int level, const char *event, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Names this process in every line (proc=NAME). */
void myna_log_set_proc(const char *proc);
void myna_log_set_level(int level);
/* "error", "warn", "info", "debug" -> level, or -1. */
int myna_log_level_from_name(const char *name);
const char *myna_log_level_name(int level);

/* Sends lines to path (appending), or to stderr when path is NULL or "".
 * Returns 0 or -errno. */
int myna_log_open(const char *path);
/* Reopens the file given to myna_log_open (after rotation: SIGHUP). */
int myna_log_reopen(void);

/* Quotes and escapes s for a log value: "..." with \" \\ \n and \xNN for
 * control bytes, truncated to fit cap (with "..." marking the cut). Returns
 * buf. NULL s gives "-". */
const char *myna_log_q(char *buf, size_t cap, const char *s);

#endif
