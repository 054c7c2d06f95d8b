/* supervisor.h - the master's bot processes, keyed by instance id: one
 * `myna bot --instance ID` per running instance, fork+exec'd with
 *   fd 3  a doorbell pipe (the master writes a byte when new records are
 *         committed for that instance; EOF tells the bot the master died),
 *   fd 4  a heartbeat pipe (`--heartbeat-fd 4`: the bot writes a byte every
 *         MYNA_BOT_HEARTBEAT_MS from its loop; see "The heartbeat pipe"),
 *   fds 1 and 2 on data_dir/logs/<id>.log (`--log-file-rotate PATH`: the bot
 *         rotates that file by size itself, core/log.h).
 * Instances come and go at run time: add, start, stop, restart, remove.
 *
 * States (myna_bot_status.state):
 *   stopped     not running and not wanted
 *   starting    queued for a start, or started and no heartbeat yet
 *   running     its first heartbeat arrived
 *   stopping    SIGTERM sent; SIGKILL after kill_after_ms (5 s)
 *   waiting     exited, restarted after a backoff of 1 s doubling to 60 s
 *               (back to 1 s after healthy_ms, a minute, of running)
 *   crash_loop  waiting after 5 crashes within crash_window_ms (5 min), or
 *               with the backoff at its cap: logged (event=bot_crash_loop)
 *               and alerted once; it is still retried, the backoff going on
 *               doubling to its 60 s cap. A bot that
 *               exits with code 2 (configuration error) is not restarted at
 *               all and stays in crash_loop until it is started again.
 * A crash is an exit the supervisor did not ask for (any code but 2, any
 * signal) or a kill for a missing heartbeat (none for heartbeat_timeout_ms,
 * 30 s: event=bot_unresponsive, SIGKILL; the time the master itself did not
 * run, frozen with its bots, does not count). A bot whose resident memory passes
 * its limit (checked every monitor_ms, 2 s) is stopped gracefully
 * (event=bot_memory_limit) and started again: at once, a restart and not a
 * crash, if it had run for healthy_ms; sooner than that it counts as a crash
 * (backoff, crash loop), so that a limit below what the bot needs to run does
 * not restart it every monitor_ms for ever. An operator's restart is a
 * restart, not a crash. Starts go through a queue: at most start_batch (20)
 * bots are started per start_tick_ms (100 ms), so that hundreds of bots do
 * not all start in the same instant.
 *
 * The heartbeat pipe carries lines. Any byte is a sign of life; a bare
 * "\n" is a heartbeat and nothing more. A bot tells of a state that only an
 * operator can fix with one line, written in one write (shorter than
 * PIPE_BUF, so never torn or mixed with a heartbeat):
 *     attention <reason> on|off\n
 * reason: invalid_token (the provider refused the access token, or an
 * answer without a Graph error refused every send: a proxy's 407 ...),
 * account_locked (the provider locked the account for a policy violation:
 * Graph error 131031 or 368), number_unregistered (the phone number is not
 * registered: 133010), payment_failed (the account's payment method:
 * 131042) or llm_circuit_open (the LLM failed until its circuit breaker
 * opened).
 * Anything else (unknown reasons, other words, lines over 64 bytes) is
 * ignored. A reason that turns on is logged (event=bot_needs_attention) and
 * alerted once (kind = the reason); off is logged (event=bot_attention_cleared).
 * When the process ends, llm_circuit_open is cleared (the breaker lived in
 * that process; the next one starts closed). The others (the blocks of
 * sending) are kept across crashes and restarts of the supervisor's own
 * (the token and the account have not changed): the next process says off
 * at its first good send, or on again, which is not alerted twice. An
 * operator's start, restart or stop clears them, as for a crash loop (a new
 * token comes with a restart): a bot whose token is still refused, or whose
 * account is still blocked, says so again at its next send, and is alerted
 * again.
 *
 * Runs on the master's loop and handles SIGCHLD there (it reaps only its
 * own children). Callbacks (done, alert) run on the loop; they may call the
 * supervisor again, but not free it. */
#ifndef MYNA_MASTER_SUPERVISOR_H
#define MYNA_MASTER_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct event_base;
struct myna_supervisor;

#define MYNA_BOT_MAX_MEMORY_MB_DEFAULT 500

/* The supervisor's clocks and limits; the defaults are in the comment above
 * (myna_supervisor_timing_default). Tests shorten them. */
struct myna_supervisor_timing {
    int backoff_min_ms;        /* 1000 */
    int backoff_max_ms;        /* 60000 */
    int healthy_ms;            /* 60000: a bot up this long is healthy again */
    int crash_window_ms;       /* 300000: 5 crashes within it are a crash loop */
    int kill_after_ms;         /* 5000: SIGTERM becomes SIGKILL */
    int heartbeat_timeout_ms;  /* 30000 */
    int monitor_ms;            /* 2000: memory and heartbeat checks */
    int start_tick_ms;         /* 100 */
    int start_batch;           /* 20 starts per tick */
};

void myna_supervisor_timing_default(struct myna_supervisor_timing *t);

/* data_dir: where logs/<id>.log go (logs/ is created). argv: the arguments
 * every bot gets after its own (the master's options, so that bots read the
 * same settings); borrowed, must outlive the supervisor. NULL with err on
 * failure. */
struct myna_supervisor *myna_supervisor_new(struct event_base *base, const char *data_dir,
                                            int argc, char **argv, struct myna_err *err);
/* MYNA_EINVAL when a value is out of range (all positive, min <= max). */
int myna_supervisor_set_timing(struct myna_supervisor *s, const struct myna_supervisor_timing *t);
void myna_supervisor_get_timing(const struct myna_supervisor *s,
                                struct myna_supervisor_timing *out);

/* A known instance, stopped. max_memory_mb <= 0: no memory limit.
 * MYNA_EINVAL if id is not a slug, MYNA_EEXISTS if it is known (until a
 * removal finished), MYNA_ENOMEM. */
int myna_supervisor_add(struct myna_supervisor *s, const char *id, int max_memory_mb);
/* Queues a start (a no-op when starting or running; after the stop when
 * stopping). Clears a crash loop and its backoff. MYNA_ENOTFOUND;
 * MYNA_EAGAIN once myna_supervisor_stop_all was called. */
int myna_supervisor_start(struct myna_supervisor *s, const char *id);
/* SIGTERM, SIGKILL after kill_after_ms; no restart. done(arg) (may be NULL)
 * runs once the process exited, at once (before the return) when none runs.
 * MYNA_ENOTFOUND, MYNA_ENOMEM (done never runs then). */
int myna_supervisor_stop(struct myna_supervisor *s, const char *id, void (*done)(void *arg),
                         void *arg);
/* Graceful stop, then a start; counted in restarts, not a crash. A bot that
 * is not running is started. MYNA_ENOTFOUND, MYNA_EAGAIN as for start. */
int myna_supervisor_restart(struct myna_supervisor *s, const char *id);
/* Stop, then forget the id; done(arg) runs after it is forgotten (at once
 * when not running). MYNA_ENOTFOUND, MYNA_ENOMEM (nothing changes then). */
int myna_supervisor_remove(struct myna_supervisor *s, const char *id, void (*done)(void *arg),
                           void *arg);
/* Applies from the next check. MYNA_ENOTFOUND. */
int myna_supervisor_set_memory_limit(struct myna_supervisor *s, const char *id,
                                     int max_memory_mb);
/* Rings id's doorbell (new records); unknown or not running: nothing. The
 * hot path: one hash lookup and one non-blocking write. */
void myna_supervisor_ring(struct myna_supervisor *s, const char *id);

struct myna_bot_status {
    const char *state;         /* see above; a static string */
    long pid;                  /* 0 when no process runs */
    int64_t started_ms;        /* wall clock of the last start, 0 if never */
    int64_t uptime_ms;         /* of the running process, else 0 */
    int restarts;              /* processes started to replace one that exited */
    int last_exit_code;        /* of the last exit, -1 if none or by a signal */
    int last_signal;           /* that ended the last process, 0 if none */
    long rss_kb;               /* resident memory at the last check, 0 if none */
    int heartbeat_age_ms;      /* since the last heartbeat (or the start), -1 if none */
    char reason[128];          /* why it is in crash_loop, else the last restart's
                                  reason: "crashed", "no heartbeat", "memory limit",
                                  "config error", "requested", "start failed";
                                  "" if none */
    int crash_loop;            /* 1 from the crash loop until a healthy run or an
                                  operator's start, restart or stop */
    int max_memory_mb;         /* <= 0: none */
    unsigned attention;        /* MYNA_ATTN_* bits; crash_loop included */
};

/* What needs an operator (myna_bot_status.attention, the status's
 * "needs_attention", the alert kinds). */
enum myna_attention {
    MYNA_ATTN_INVALID_TOKEN = 1u << 0,     /* the bot says so (heartbeat pipe) */
    MYNA_ATTN_LLM_CIRCUIT_OPEN = 1u << 1,  /* the bot says so (heartbeat pipe) */
    MYNA_ATTN_CRASH_LOOP = 1u << 2,        /* myna_bot_status.crash_loop */
    MYNA_ATTN_ACCOUNT_LOCKED = 1u << 3,    /* the bot says so (heartbeat pipe) */
    MYNA_ATTN_NUMBER_UNREGISTERED = 1u << 4,  /* the bot says so (heartbeat pipe) */
    MYNA_ATTN_PAYMENT_FAILED = 1u << 5,    /* the bot says so (heartbeat pipe) */
};
#define MYNA_ATTN_COUNT 6

/* The name of bit i (0 <= i < MYNA_ATTN_COUNT): "invalid_token",
 * "llm_circuit_open", "crash_loop", "account_locked", "number_unregistered",
 * "payment_failed"; NULL past the end. */
const char *myna_attention_name(int i);

/* MYNA_ENOTFOUND if id is unknown. */
int myna_supervisor_status(const struct myna_supervisor *s, const char *id,
                           struct myna_bot_status *out);
/* Known ids (removals in progress included). */
size_t myna_supervisor_count(const struct myna_supervisor *s);
/* fn(id, status, arg) for every known id, in the order they were added; fn
 * must not add or remove. */
void myna_supervisor_foreach(const struct myna_supervisor *s,
                             void (*fn)(const char *id, const struct myna_bot_status *st,
                                        void *arg),
                             void *arg);
/* fn(id, kind, detail, arg) when a bot enters a crash loop (kind
 * "crash_loop") or one of its attention reasons turns on (kind = the
 * reason's name); detail is a short text for a person. */
void myna_supervisor_set_alert(struct myna_supervisor *s,
                               void (*fn)(const char *id, const char *kind, const char *detail,
                                          void *arg),
                               void *arg);
/* Where a bot's configuration comes from: fn(id) returns the instance's
 * JSON (malloc; the supervisor wipes and frees it), handed to the bot in a
 * memory file as fd 5 (`--config-fd 5`) so that its secrets never touch
 * the disk. NULL from fn fails that start. Without fn, bots read the
 * instances file. */
void myna_supervisor_set_config(struct myna_supervisor *s,
                                char *(*fn)(const char *id, void *arg), void *arg);
/* Stops every bot (TERM, KILL after kill_after_ms), restarts none from now
 * on; done(arg) runs once all exited (at once when none runs). */
void myna_supervisor_stop_all(struct myna_supervisor *s, void (*done)(void *arg), void *arg);
/* Kills what is left (SIGKILL, reaped) without callbacks. NULL ok. */
void myna_supervisor_free(struct myna_supervisor *s);

#endif
