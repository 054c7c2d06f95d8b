/* bot.h - `myna bot --instance ID`: the bot process of one instance.
 *
 * One libevent loop. It consumes the instance's inbox in arrival order,
 * merges a contact's burst of texts into one turn (batch window), answers one
 * turn at a time per contact (lane) with the LLM or the built-in answerer,
 * and sends the replies through the durable outbox, in order per contact,
 * paced and retried by error class. Everything it decides is committed with
 * the inbox cursor that caused it, so a crash at any point resumes exactly:
 * no message is lost or answered twice.
 *
 * The master rings a doorbell (a pipe, fd given at start) when new records
 * arrive; EOF on it means the master died and the bot exits. A poll timer is
 * the safety net. The bot writes a byte ("\n") to the heartbeat pipe (fd
 * given at start) once its loop runs and every MYNA_BOT_HEARTBEAT_MS from a
 * loop timer: a supervisor that hears nothing for long kills it (a hung
 * loop). On the same pipe it tells of what only an operator can fix, one
 * line per change (master/supervisor.h has the protocol): the provider
 * refusing the access token (on at a send refused for it, off at a send
 * taken), the WhatsApp account locked (on at a send refused for it, off at a
 * send taken) and the LLM's circuit breaker open (on when it opens, off when
 * a probe closes it). */
#ifndef MYNA_BOT_BOT_H
#define MYNA_BOT_BOT_H

#include "core/conf.h"
#include "core/err.h"
#include "wa/instance.h"

struct myna_bot_opts {
    int doorbell_fd;       /* read end of the master's pipe, or -1 */
    int poll_ms;           /* safety-net poll of the inbox; default 1000 */
    int history_budget;    /* bytes of history in a prompt; default 6000 */
    int history_idle_s;    /* forget history older than this; default 86400 */
    int stale_after_s;     /* messages older than this on arrival are not each answered; 3600 */
    int reconcile_ms;      /* wait for a status before resending an uncertain send; 60000 */
    int unconfirmed_ms;    /* flag accepted sends with no status after this; 600000 */
    int hold_ms;           /* no send this long after a refused token or locked account; 60000 */
    int tries_max;         /* a reply is sent at most this many times; 15 */
    int heartbeat_fd;      /* write end of the supervisor's heartbeat pipe, or -1 */
};

#define MYNA_BOT_HEARTBEAT_MS 2000
/* A bot's own log file (--log-file-rotate): rotated past this size, with
 * this many older files kept (<id>.log.1 ...). */
#define MYNA_BOT_LOG_MAX_BYTES (10 << 20)
#define MYNA_BOT_LOG_KEEP 3

/* Runs until SIGTERM/SIGINT or EOF on the doorbell, then starts nothing new
 * and waits (up to 3 s) for the answers to the sends in flight. 0, or MYNA_E*
 * with err. */
int myna_bot_run(const struct myna_conf *conf, const struct myna_instance *inst,
                 const struct myna_bot_opts *opts, struct myna_err *err);

#endif
