/* master.h - `myna serve`: the master process.
 *
 * One libevent loop owns the public listener (webhooks, /healthz) and the
 * admin listener (/metrics, /healthz), the ingress and its committer. States:
 * STARTING -> RUNNING -> DRAINING (SIGTERM/SIGINT: stop accepting, finish the
 * commits in flight, answer them) -> STOPPED. SIGHUP reopens the log file and
 * reloads the options marked reloadable. */
#ifndef MYNA_MASTER_MASTER_H
#define MYNA_MASTER_MASTER_H

#include "core/conf.h"
#include "core/err.h"
#include "wa/instance.h"

/* Arguments kept to reload the configuration on SIGHUP. */
struct myna_master_args {
    int argc;
    char **argv;
    char **envp;
    const char *const *passthrough;
};

/* Runs until SIGTERM/SIGINT. Returns 0 on a clean stop, MYNA_E* on a start
 * failure (err filled), MYNA_EAGAIN when requests were still waiting for
 * their commit at the end (the drain timed out and they did not land while
 * the bots stopped either): then the writer is left as it is, not joined.
 * conf is borrowed. The instances are those of the control store
 * (data_dir/control.db), after importing conf->instances. The caller may
 * block SIGHUP before it (main does, from its start): it is unblocked once
 * the master's handler is in place, so a SIGHUP sent meanwhile reloads. */
int myna_master_run(const struct myna_conf *conf, const struct myna_master_args *args,
                    struct myna_err *err);

#endif
