/* supervisor.c - fork+exec of bots, restarts with backoff, doorbells. */
#include "master/supervisor.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/banned.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define HEALTHY_MS 60000
#define KILL_AFTER_MS 5000

enum bot_state { BOT_STOPPED, BOT_RUNNING, BOT_WAITING, BOT_CRASH_LOOP };

struct bot_proc {
    struct myna_supervisor *s;
    size_t index;
    pid_t pid;
    int bell;                  /* write end of the doorbell pipe, -1 if none */
    enum bot_state state;
    int64_t started_ms;
    int backoff_ms;
    int restarts;
    struct event *restart_timer;
};

struct myna_supervisor {
    struct event_base *base;
    const struct myna_instance_set *instances;
    struct bot_proc *bots;
    size_t n;
    char exe[4096];
    int argc;
    char **argv;
    struct event *sigchld, *kill_timer;
    int stopping;
    void (*stopped)(void *arg);
    void *stopped_arg;
};

static void bot_start(struct bot_proc *bp);

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bot_start(arg);
}

static void exec_bot(struct myna_supervisor *s, struct bot_proc *bp, int bell_read)
{
    char **argv = calloc((size_t)s->argc + 8, sizeof(char *));
    int n = 0;

    if (argv == NULL)
        _exit(127);
    /* the doorbell becomes fd 3, the only descriptor the bot inherits */
    if (bell_read != 3) {
        if (dup2(bell_read, 3) < 0)
            _exit(127);
    } else {
        fcntl(3, F_SETFD, 0);
    }
    argv[n++] = (char *)"myna";
    argv[n++] = (char *)"bot";
    argv[n++] = (char *)"--instance";
    argv[n++] = s->instances->v[bp->index].id;
    argv[n++] = (char *)"--doorbell-fd";
    argv[n++] = (char *)"3";
    for (int i = 0; i < s->argc; i++)
        argv[n++] = s->argv[i];
    argv[n] = NULL;
    signal(SIGPIPE, SIG_DFL);
    execv(s->exe, argv);
    _exit(127);
}

static void bot_start(struct bot_proc *bp)
{
    struct myna_supervisor *s = bp->s;
    int fds[2];
    pid_t pid;

    if (s->stopping)
        return;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        MYNA_LOG_ERRNO(MYNA_ERROR, "bot_start_failed", errno, "instance=%s",
                       s->instances->v[bp->index].id);
        return;
    }
    pid = fork();
    if (pid < 0) {
        MYNA_LOG_ERRNO(MYNA_ERROR, "bot_start_failed", errno, "instance=%s",
                       s->instances->v[bp->index].id);
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[1]);
        exec_bot(s, bp, fds[0]);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);  /* a full pipe already rings */
    bp->bell = fds[1];
    bp->pid = pid;
    bp->state = BOT_RUNNING;
    bp->started_ms = myna_mono_ms();
    MYNA_LOG(MYNA_INFO, "bot_started", "instance=%s pid=%ld restarts=%d",
             s->instances->v[bp->index].id, (long)pid, bp->restarts);
}

static int all_stopped(const struct myna_supervisor *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->bots[i].pid > 0)
            return 0;
    return 1;
}

static void bot_exited(struct bot_proc *bp, int status)
{
    struct myna_supervisor *s = bp->s;
    const char *id = s->instances->v[bp->index].id;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    struct timeval tv;

    close(bp->bell);
    bp->bell = -1;
    bp->pid = 0;
    if (s->stopping) {
        bp->state = BOT_STOPPED;
        MYNA_LOG(MYNA_INFO, "bot_stopped", "instance=%s code=%d signal=%d", id, code, sig);
        if (all_stopped(s) && s->stopped) {
            void (*done)(void *) = s->stopped;
            s->stopped = NULL;
            done(s->stopped_arg);
        }
        return;
    }
    if (code == 2) {  /* its configuration is wrong: restarting cannot help */
        bp->state = BOT_CRASH_LOOP;
        MYNA_LOG(MYNA_ERROR, "bot_config_error", "instance=%s state=crash_loop", id);
        return;
    }
    if (myna_mono_ms() - bp->started_ms >= HEALTHY_MS)
        bp->backoff_ms = BACKOFF_MIN_MS;
    MYNA_LOG(MYNA_WARN, "bot_exited", "instance=%s code=%d signal=%d restart_in_ms=%d", id, code,
             sig, bp->backoff_ms);
    bp->state = bp->backoff_ms >= BACKOFF_MAX_MS ? BOT_CRASH_LOOP : BOT_WAITING;
    bp->restarts++;
    tv.tv_sec = bp->backoff_ms / 1000;
    tv.tv_usec = (bp->backoff_ms % 1000) * 1000;
    evtimer_add(bp->restart_timer, &tv);
    bp->backoff_ms = bp->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : bp->backoff_ms * 2;
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct myna_supervisor *s = arg;
    pid_t pid;
    int status;

    (void)sig;
    (void)what;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < s->n; i++)
            if (s->bots[i].pid == pid) {
                bot_exited(&s->bots[i], status);
                break;
            }
}

struct myna_supervisor *myna_supervisor_new(struct event_base *base,
                                            const struct myna_instance_set *instances,
                                            int argc, char **argv, struct myna_err *err)
{
    struct myna_supervisor *s = calloc(1, sizeof(*s));
    ssize_t len;

    if (s == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    s->base = base;
    s->instances = instances;
    s->n = instances->n;
    s->argc = argc;
    s->argv = argv;
    if ((len = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1)) <= 0) {
        myna_err_set(err, MYNA_EIO, "cannot find the myna executable: %s", strerror(errno));
        free(s);
        return NULL;
    }
    s->exe[len] = '\0';
    s->bots = calloc(s->n ? s->n : 1, sizeof(*s->bots));
    s->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, s);
    if (s->bots == NULL || s->sigchld == NULL || event_add(s->sigchld, NULL) != 0) {
        myna_err_set(err, MYNA_ENOMEM, "cannot set up the supervisor");
        myna_supervisor_free(s);
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        struct bot_proc *bp = &s->bots[i];
        bp->s = s;
        bp->index = i;
        bp->bell = -1;
        bp->backoff_ms = BACKOFF_MIN_MS;
        if ((bp->restart_timer = evtimer_new(base, on_restart, bp)) == NULL) {
            myna_err_set(err, MYNA_ENOMEM, "cannot set up the supervisor");
            myna_supervisor_free(s);
            return NULL;
        }
    }
    return s;
}

void myna_supervisor_start_all(struct myna_supervisor *s)
{
    for (size_t i = 0; i < s->n; i++)
        bot_start(&s->bots[i]);
}

void myna_supervisor_ring(struct myna_supervisor *s, size_t i)
{
    if (i < s->n && s->bots[i].bell >= 0) {
        char one = 1;
        ssize_t r = write(s->bots[i].bell, &one, 1);
        (void)r;  /* EAGAIN: the pipe is full, the bell is ringing already */
    }
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
    struct myna_supervisor *s = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < s->n; i++)
        if (s->bots[i].pid > 0) {
            MYNA_LOG(MYNA_WARN, "bot_killed", "instance=%s pid=%ld",
                     s->instances->v[i].id, (long)s->bots[i].pid);
            kill(s->bots[i].pid, SIGKILL);
        }
}

void myna_supervisor_stop_all(struct myna_supervisor *s, void (*done)(void *arg), void *arg)
{
    struct timeval tv = { KILL_AFTER_MS / 1000, 0 };

    s->stopping = 1;
    s->stopped = done;
    s->stopped_arg = arg;
    for (size_t i = 0; i < s->n; i++) {
        evtimer_del(s->bots[i].restart_timer);
        if (s->bots[i].pid > 0)
            kill(s->bots[i].pid, SIGTERM);
    }
    if (all_stopped(s)) {
        s->stopped = NULL;
        done(arg);
        return;
    }
    if ((s->kill_timer = evtimer_new(s->base, on_kill_timer, s)) != NULL)
        evtimer_add(s->kill_timer, &tv);
}

int myna_supervisor_pid(const struct myna_supervisor *s, size_t i)
{
    return i < s->n ? (int)s->bots[i].pid : 0;
}

int myna_supervisor_restarts(const struct myna_supervisor *s, size_t i)
{
    return i < s->n ? s->bots[i].restarts : 0;
}

void myna_supervisor_free(struct myna_supervisor *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; s->bots && i < s->n; i++) {
        struct bot_proc *bp = &s->bots[i];
        if (bp->pid > 0) {
            kill(bp->pid, SIGKILL);
            waitpid(bp->pid, NULL, 0);
        }
        if (bp->bell >= 0)
            close(bp->bell);
        if (bp->restart_timer)
            event_free(bp->restart_timer);
    }
    if (s->sigchld)
        event_free(s->sigchld);
    if (s->kill_timer)
        event_free(s->kill_timer);
    free(s->bots);
    free(s);
}
