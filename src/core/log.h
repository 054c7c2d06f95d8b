/* log.h - one key=value line per event.
 *
 *   ts=2026-11-22T03:10:04.120Z level=warn proc=master pid=4242 event=webhook_rejected reason=bad_signature
 *
 * The level is tested before formatting. event is a stable snake_case name;
 * the fields after it are printf-formatted by the caller. Values that come
 * from outside are quoted and escaped with myna_log_q. Never log tokens,
 * secrets or signatures; phone numbers go through myna_phone_mask. Each line
 * goes out in one write(2), so lines of threads and processes do not mix. A
 * line is at most 4 KiB: longer fields are cut, never inside a character or
 * an escape, a quoted value cut short is closed ("...\"" marks the cut), and
 * errno= err= stay at the end. */
#ifndef MYNA_CORE_LOG_H
#define MYNA_CORE_LOG_H

#include <stddef.h>

enum myna_log_level { MYNA_ERROR = 0, MYNA_WARN = 1, MYNA_INFO = 2, MYNA_DEBUG = 3 };

/* Atomic: a SIGHUP sets it on the loop thread while other threads (the
 * ingress writer) log. */
extern _Atomic int myna_log_level_cur;

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
/* libevent's own log lines go through MYNA_LOG (event=libevent msg=...). */
void myna_log_route_libevent(void);
/* "error", "warn", "info", "debug" -> level, or -1. */
int myna_log_level_from_name(const char *name);
const char *myna_log_level_name(int level);

/* Sends lines to path (appending), or to stderr when path is NULL or "".
 * Returns 0 or -errno. */
int myna_log_open(const char *path);
/* Reopens the file given to myna_log_open (after rotation: SIGHUP). */
int myna_log_reopen(void);

/* Sends lines to path (appending) and makes it this process's standard
 * output and error too (dup2 onto fds 1 and 2), so that what is not a log
 * line (a sanitizer report, an abort message) lands in the same file. After
 * a line leaves the file at max_bytes or more, the file is rotated: path.N-1
 * becomes path.N ... path becomes path.1 (keep files are kept, 0-99), a new
 * path is opened and dup2'd onto fds 1 and 2. A rotation that fails is tried
 * again after another max_bytes. For the bots (one thread logs); concurrent
 * writers never write to a closed descriptor. 0 or -errno (-EINVAL for an
 * empty path, max_bytes 0 or keep out of range). myna_log_open undoes it
 * (fds 1 and 2 keep pointing at the last file). */
int myna_log_open_rotating(const char *path, size_t max_bytes, int keep);

/* The last `lines` lines (at most MYNA_LOG_TAIL_MAX) of the log file path,
 * appended to out, oldest first. When path has fewer, the rest come from the
 * end of path.1. Reads backwards from the end in small blocks: memory is out
 * and a fixed block, whatever the size of the files. When the lines do not
 * all fit in out's max, the oldest are dropped (whole lines). A last line
 * without its newline counts as a line. A rotation between the opens of
 * path and path.1, or a file cut shorter while it is read, makes it start
 * again (MYNA_EIO after 5 tries). MYNA_OK; MYNA_EINVAL for too many
 * lines; MYNA_ENOTFOUND when neither file exists; MYNA_ETOOBIG when not even
 * the newest line fits (out unchanged); MYNA_EIO on a read error; MYNA_ENOMEM. */
#define MYNA_LOG_TAIL_MAX 10000
struct myna_buf;
int myna_log_tail(const char *path, size_t lines, struct myna_buf *out);

/* Quotes and escapes s for a log value: "..." with \" \\ \n and \xNN for
 * control bytes, for each byte of a C1 control or of U+2028 and U+2029 (they
 * break lines too), and for bytes that are not part of a whole UTF-8
 * character (the value is valid UTF-8 whatever s holds), truncated to fit cap (with
 * "..." marking the cut). Returns buf. NULL s gives "-". */
const char *myna_log_q(char *buf, size_t cap, const char *s);

#endif
