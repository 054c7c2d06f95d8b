/* harness.h - end-to-end test support: starts the real myna binary in a temp
 * directory on free loopback ports (port 0, read back from the event=ready
 * log line: no fixed sleeps), talks to it over real HTTP (libcurl), and reads
 * its SQLite stores directly. */
#ifndef MYNA_TEST_HARNESS_H
#define MYNA_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

struct myna_proc {
    pid_t pid;
    char dir[256];        /* temp dir: instances.json, var/, myna.log */
    char public_url[128]; /* http://127.0.0.1:PORT */
    char admin_url[128];
    char log_path[300];
    int nofile;           /* > 0: h_start runs myna with this many file descriptors at most */
    int nofile_hard;      /* > nofile: the hard limit above that soft one */
    char bin[300];        /* non-empty: h_start runs this copy of myna, not the build's */
};

/* Makes a temp dir and writes instances_json (NULL: none) as instances.json. */
int h_setup(struct myna_proc *p, const char *instances_json);
/* Starts `myna serve` with the dir's files, --bots 0, and extra args
 * (NULL-terminated, may be NULL; "--bots", "1" starts bots); waits up to
 * a minute for event=ready. 0, or -1 (a master that never got ready is
 * killed). */
int h_start(struct myna_proc *p, const char *const *extra);
/* h_setup + h_start on a new myna_proc: NULL (and nothing left behind) if
 * either fails. h_release stops it, removes its dir and frees it. For
 * cmocka setups and teardowns. */
struct myna_proc *h_launch(const char *instances_json, const char *const *extra);
void h_release(struct myna_proc *p);
/* Stops p with SIGTERM if it runs, then h_release: 0 when it exited 0 (or
 * did not run), else -1. NULL ok. */
int h_stop_release(struct myna_proc *p);
/* A fake service (tests/fakes): started with args, its log in dir/name.log,
 * url = http://127.0.0.1:PORT from its event=ready line. */
struct h_fake {
    pid_t pid;
    char url[128];
    char log_path[320];
};
int h_fake_start(struct h_fake *f, const char *dir, const char *name, const char *bin,
                 const char *const *args);
void h_fake_stop(struct h_fake *f);
/* A loopback port that was free a moment ago (for a server whose address
 * another process must know before it starts), below the kernel's
 * ephemeral ports: nothing that binds port 0 or connects takes it meanwhile. */
int h_free_port(void);
/* A TCP connection to the loopback port of url (http://127.0.0.1:PORT), or
 * -1: a raw client for what libcurl does not send. */
int h_connect(const char *url);
/* Waits up to timeout_ms for cond(arg) to hold, polling every 20 ms. 1/0. */
int h_wait(int (*cond)(void *arg), void *arg, int timeout_ms);

/* Runs `myna ARGS...` to completion; returns its exit code and captures its
 * stdout+stderr into out (cap bytes, NUL-terminated). */
int h_run(const char *const *args, char *out, size_t cap);
/* The same with input (NUL-terminated, at most a pipe's worth) as stdin,
 * closed after it: the end of input. */
int h_run_input(const char *const *args, const char *input, char *out, size_t cap);
/* The same for any binary (args without argv[0]; input may be NULL). */
int h_exec(const char *bin, const char *const *args, const char *input, char *out, size_t cap);
/* Sends sig and waits; returns the exit status (WEXITSTATUS) or 128+signal. */
int h_stop(struct myna_proc *p, int sig);
/* Removes the temp dir. */
void h_cleanup(struct myna_proc *p);
/* 1 if the log contains needle: the master's, or a bot's (var/logs/). */
int h_log_contains(const struct myna_proc *p, const char *needle);
/* 1 if bot id's own log, var/logs/<id>.log, contains needle. */
int h_bot_log_contains(const struct myna_proc *p, const char *id, const char *needle);

/* HTTP; returns the status code or -1 on a transport error. body may be
 * NULL for GET. resp (may be NULL) gets up to cap bytes, NUL-terminated. */
long h_http(const char *method, const char *url, const void *body, size_t len,
            const char *const *headers, char *resp, size_t cap);
/* h_http, and the answer's status line and headers in head (up to hcap
 * bytes, NUL-terminated; may be NULL). A HEAD is sent as curl's NOBODY:
 * it waits for no body. */
long h_http_ex(const char *method, const char *url, const void *body, size_t len,
               const char *const *headers, char *resp, size_t cap, char *head, size_t hcap);
/* The value of header name (any case) in head, from h_http_ex, into out:
 * 1, or 0 (out "") when head has none. */
int h_header(const char *head, const char *name, char *out, size_t cap);
/* POSTs body to base/webhook/id signed with secret. */
long h_post_signed(const char *base, const char *id, const char *secret, const void *body,
                   size_t len, char *resp, size_t cap);

/* Reads MYNA_TEST_DATA/rel into a malloc'd buffer (NUL-terminated). */
char *h_read_data(const char *rel, size_t *len);
/* X-Hub-Signature-256 header value for body. */
void h_sign(const char *secret, const void *body, size_t len, char out[72]);

/* SELECT COUNT(*) FROM table [WHERE where] in dir/var/instances/<id>.db
 * (inbox, the messages view, statuses) or <id>.bot.db (the bot's tables). */
long h_db_count(const struct myna_proc *p, const char *id, const char *table,
                const char *where);
/* Takes the write lock of dir/var/instances/<file> ("acme.db",
 * "conv.bot.db") as another process would, waiting up to 5 s for a writer
 * at work: the open handle holding it, or NULL. */
struct sqlite3 *h_db_lock(const struct myna_proc *p, const char *file);
/* Ends that hold with end ("COMMIT" or "ROLLBACK") and closes it: 0 or -1. */
int h_db_unlock(struct sqlite3 *db, const char *end);
/* Value of a metric line "name value" (name may include labels) or -1. */
double h_metric(const struct myna_proc *p, const char *name);

#endif
