/* supervisor.h - the master's bot processes: one `myna bot --instance ID`
 * per instance, fork+exec'd with a doorbell pipe as fd 3 (the master writes a
 * byte when new records are committed for that instance; EOF tells the bot
 * the master died).
 *
 * A bot that dies is restarted after a backoff of 1 s doubling to 60 s (back
 * to 1 s once it ran a minute); exit code 2 (configuration error) is not
 * restarted: the bot shows as crash_loop. Stop sends SIGTERM, then SIGKILL
 * after 5 s. Runs on the master's loop; SIGCHLD is handled here. */
#ifndef MYNA_MASTER_SUPERVISOR_H
#define MYNA_MASTER_SUPERVISOR_H

#include <stddef.h>

#include "core/err.h"
#include "wa/instance.h"

struct event_base;
struct myna_supervisor;

/* argv: the arguments every bot gets after `bot --instance ID` (the
 * master's own options, so that bots read the same settings). */
struct myna_supervisor *myna_supervisor_new(struct event_base *base,
                                            const struct myna_instance_set *instances,
                                            int argc, char **argv, struct myna_err *err);
/* Starts every bot. */
void myna_supervisor_start_all(struct myna_supervisor *s);
/* Rings instance i's doorbell (new records). */
void myna_supervisor_ring(struct myna_supervisor *s, size_t i);
/* Stops every bot (TERM, KILL after 5 s); done(arg) runs once all exited. */
void myna_supervisor_stop_all(struct myna_supervisor *s, void (*done)(void *arg), void *arg);
/* pid of instance i's bot, 0 when not running; restarts so far. */
int myna_supervisor_pid(const struct myna_supervisor *s, size_t i);
int myna_supervisor_restarts(const struct myna_supervisor *s, size_t i);
/* Kills what is left without waiting. NULL ok. */
void myna_supervisor_free(struct myna_supervisor *s);

#endif
