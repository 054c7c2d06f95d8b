/* supervisor.c - fork+exec of bots keyed by instance id: a start queue,
 * restarts with backoff, crash loops, heartbeats and the attention lines
 * that come with them, memory limits, per-bot log files, doorbells.
 *
 * User callbacks (done, alert) never run while the supervisor walks its
 * lists: they are queued and run at the end of the loop callback that
 * caused them (fire_pending), when every bot is in a consistent state. */
#include "master/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/banned.h"

#define CRASH_LOOP_N 5       /* crashes within crash_window_ms that make a crash loop */
#define ID_MAX 64            /* instance ids are slugs (core/util.h) */
#define TABLE_MIN 64
#define BEAT_LINE_MAX 64     /* longer lines on the heartbeat pipe are ignored */
#define BEAT_READS_MAX 16    /* reads of a heartbeat pipe per turn of the loop */
/* the reasons a bot may report; crash_loop is the supervisor's own */
#define ATTN_FROM_BOT (ATTN_BLOCKS | MYNA_ATTN_LLM_CIRCUIT_OPEN)
/* ... of which those that stop every send: kept until the bot or an
 * operator clears them */
#define ATTN_BLOCKS \
    (MYNA_ATTN_INVALID_TOKEN | MYNA_ATTN_ACCOUNT_LOCKED | MYNA_ATTN_NUMBER_UNREGISTERED | \
     MYNA_ATTN_PAYMENT_FAILED)

enum bot_state { ST_STOPPED, ST_STARTING, ST_RUNNING, ST_STOPPING, ST_WAITING, ST_CRASH_LOOP };

static const char MEMORY_LIMIT[] = "memory limit";  /* a reason, compared by address */

static const char *const state_names[] = { "stopped", "starting", "running",
                                           "stopping", "waiting", "crash_loop" };

/* by bit number of enum myna_attention */
static const char *const attention_names[MYNA_ATTN_COUNT] = { "invalid_token",
                                                              "llm_circuit_open",
                                                              "crash_loop",
                                                              "account_locked",
                                                              "number_unregistered",
                                                              "payment_failed" };

/* Alert details of the reasons a bot reports, by bit number. */
static const char *const attention_details[MYNA_ATTN_COUNT] = {
    "the provider refused the access token, or an answer without a Graph API error "
    "refused every send (a proxy, a firewall, a wrong graph_url: the bot's needs_attention "
    "line names the HTTP status): fix it; replies wait in the outbox",
    "the LLM failed again and again and its circuit breaker opened: customers get the "
    "fallback text",
    NULL,
    "the provider locked the WhatsApp account (a policy violation): resolve it with Meta; "
    "replies wait in the outbox",
    "the phone number is not registered with the WhatsApp Cloud API: register it; replies "
    "wait in the outbox",
    "the provider refused a send for the account's payment method: fix billing in Meta's "
    "Business Manager; replies wait in the outbox",
};

/* The heartbeat pipe's current line, between reads. */
struct beat_line {
    char buf[BEAT_LINE_MAX];
    size_t len;
    int skip;                /* the line is too long: ignored up to its end */
};

/* A callback to run (a done of stop/remove/stop_all, or an alert). */
struct fire {
    struct fire *next;
    void (*done)(void *arg);
    void *arg;
    char id[ID_MAX + 1];     /* an alert when done is NULL */
    char kind[32];
    char detail[160];
};

/* Times of the last crashes, a ring. */
struct crash_hist {
    int64_t at_ms[CRASH_LOOP_N];
    int n, next;
};

struct bot {
    struct bot *hnext;             /* id table chain */
    struct bot *prev, *next;       /* every bot, in the order added */
    struct bot *qprev, *qnext;     /* the start queue */
    struct myna_supervisor *s;
    char id[ID_MAX + 1];
    char *log_path;                /* data_dir/logs/<id>.log */
    enum bot_state state;
    int queued;
    pid_t pid;                     /* > 0 while a process runs (not reaped yet) */
    int bell;                      /* doorbell, write end; -1 */
    int beat;                      /* heartbeat, read end; -1 */
    struct event *beat_ev;
    struct event *timer;           /* the backoff wait, or SIGTERM -> SIGKILL */
    int64_t started_mono_ms, started_wall_ms, last_beat_ms;
    int backoff_ms;
    struct crash_hist crashes;
    int crash_loop;
    int restarts, last_code, last_signal;
    long rss_kb;
    int max_memory_mb;
    int then_start;                /* stopping: start again once it exited */
    const char *then_reason;       /* ... as a restart for this reason (counted) */
    const char *kill_reason;       /* killed by us while running: why */
    int removing;
    struct fire *waiters;          /* done callbacks waiting for the exit */
    char reason[128];
    struct beat_line line;         /* of the running process's heartbeat pipe */
    unsigned attention;            /* ATTN_FROM_BOT bits that are on */
};

struct bot_table {
    struct bot **v;
    size_t cap, n;
};

struct myna_supervisor {
    struct event_base *base;
    char *logs_dir;
    int argc;
    char **argv;
    struct myna_supervisor_timing t;
    long page_size;
    struct bot_table tab;
    struct bot *head, *tail;       /* every bot */
    struct bot *qhead, *qtail;     /* waiting for a start slot */
    size_t n_running;              /* bots with a process */
    struct event *sigchld, *start_tick, *monitor;
    int64_t last_batch_ms;
    int64_t last_monitor_ms;       /* when on_monitor last ran */
    int stopping_all;
    void (*all_done)(void *arg);
    void *all_arg;
    int all_due;                   /* all_done is to run */
    struct fire *fires, *fires_tail;
    void (*alert)(const char *id, const char *kind, const char *detail, void *arg);
    void *alert_arg;
    char *(*config_fn)(const char *id, void *arg);
    void *config_arg;
};

/* ---- the id table (pure) ---------------------------------------------- */

static size_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;

    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h;
}

static struct bot *table_find(const struct bot_table *t, const char *id)
{
    if (t->cap == 0)
        return NULL;
    for (struct bot *b = t->v[id_hash(id) & (t->cap - 1)]; b; b = b->hnext)
        if (strcmp(b->id, id) == 0)
            return b;
    return NULL;
}

/* Adds b (its id not in t yet); grows at one bot per bucket. */
static int table_add(struct bot_table *t, struct bot *b)
{
    size_t h;

    if (t->n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : TABLE_MIN;
        struct bot **v = calloc(cap, sizeof(*v));
        if (v == NULL)
            return MYNA_ENOMEM;
        for (size_t i = 0; i < t->cap; i++)
            for (struct bot *e = t->v[i], *next; e; e = next) {
                next = e->hnext;
                h = id_hash(e->id) & (cap - 1);
                e->hnext = v[h];
                v[h] = e;
            }
        free(t->v);
        t->v = v;
        t->cap = cap;
    }
    h = id_hash(b->id) & (t->cap - 1);
    b->hnext = t->v[h];
    t->v[h] = b;
    t->n++;
    return MYNA_OK;
}

static void table_del(struct bot_table *t, struct bot *b)
{
    if (t->cap == 0)
        return;
    for (struct bot **pp = &t->v[id_hash(b->id) & (t->cap - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == b) {
            *pp = b->hnext;
            b->hnext = NULL;
            t->n--;
            return;
        }
}

static void table_release(struct bot_table *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

/* ---- the heartbeat pipe's lines (pure) ------------------------------------ */

/* Index of bit in attention_names, -1 if it is not one bit. */
static int attention_index(unsigned bit)
{
    for (int i = 0; i < MYNA_ATTN_COUNT; i++)
        if (bit == 1u << i)
            return i;
    return -1;
}

/* One line without its '\n': "attention <reason> on|off" with a reason a
 * bot may report. 0 with *bit and *on set, else -1. */
static int attention_parse(const char *line, size_t len, unsigned *bit, int *on)
{
    static const char word[] = "attention ";
    const size_t wlen = sizeof(word) - 1;
    const char *reason = line + wlen, *sp, *value;
    size_t rlen, vlen;

    if (len <= wlen || memcmp(line, word, wlen) != 0 ||
        (sp = memchr(reason, ' ', len - wlen)) == NULL)
        return -1;
    rlen = (size_t)(sp - reason);
    value = sp + 1;
    vlen = (size_t)(line + len - value);
    if (vlen == 2 && memcmp(value, "on", 2) == 0)
        *on = 1;
    else if (vlen == 3 && memcmp(value, "off", 3) == 0)
        *on = 0;
    else
        return -1;
    for (int i = 0; i < MYNA_ATTN_COUNT; i++)
        if ((ATTN_FROM_BOT & (1u << i)) && strlen(attention_names[i]) == rlen &&
            memcmp(attention_names[i], reason, rlen) == 0) {
            *bit = 1u << i;
            return 0;
        }
    return -1;
}

/* Feeds n bytes as read from the pipe (lines may come in pieces): fn(arg,
 * bit, on) for each attention line, in order. Heartbeats ("\n") and
 * anything else pass without a call. */
static void beat_feed(struct beat_line *l, const char *p, size_t n,
                      void (*fn)(void *arg, unsigned bit, int on), void *arg)
{
    for (size_t i = 0; i < n; i++) {
        unsigned bit;
        int on;

        if (p[i] != '\n') {
            if (l->len < sizeof(l->buf))
                l->buf[l->len++] = p[i];
            else
                l->skip = 1;
            continue;
        }
        if (!l->skip && attention_parse(l->buf, l->len, &bit, &on) == 0)
            fn(arg, bit, on);
        l->len = 0;
        l->skip = 0;
    }
}

/* ---- restart policy (pure) ---------------------------------------------- */

static int backoff_next(int cur_ms, int max_ms)
{
    return cur_ms >= max_ms / 2 ? max_ms : cur_ms * 2;
}

/* Records a crash at now_ms. 1 when it makes a crash loop: CRASH_LOOP_N
 * crashes within window_ms, or the backoff about to be waited at its cap. */
static int crash_record(struct crash_hist *h, int64_t now_ms, int window_ms, int backoff_ms,
                        int backoff_max_ms)
{
    h->at_ms[h->next] = now_ms;
    h->next = (h->next + 1) % CRASH_LOOP_N;
    if (h->n < CRASH_LOOP_N)
        h->n++;
    if (backoff_ms >= backoff_max_ms)
        return 1;
    /* full ring: next is the oldest of the last CRASH_LOOP_N */
    return h->n == CRASH_LOOP_N && now_ms - h->at_ms[h->next] <= window_ms;
}

static void crash_forget(struct crash_hist *h)
{
    memset(h, 0, sizeof(*h));
}

/* Resident memory in kB from the text of /proc/<pid>/statm ("size
 * resident shared ..." in pages), or -1. */
static long statm_rss_kb(const char *text, long page_size)
{
    char *end;
    long long size, resident;

    errno = 0;
    size = strtoll(text, &end, 10);
    if (end == text || errno || size < 0 || *end != ' ')
        return -1;
    text = end;
    resident = strtoll(text, &end, 10);
    if (end == text || errno || resident < 0 || page_size <= 0 ||
        resident > LONG_MAX / page_size)
        return -1;
    return (long)(resident * page_size / 1024);
}

/* ---- callbacks ------------------------------------------------------------ */

static void fire_push(struct myna_supervisor *s, struct fire *f)
{
    f->next = NULL;
    if (s->fires_tail)
        s->fires_tail->next = f;
    else
        s->fires = f;
    s->fires_tail = f;
}

/* Hands b's done callbacks to the queue. */
static void fire_waiters(struct bot *b)
{
    while (b->waiters) {
        struct fire *f = b->waiters;
        b->waiters = f->next;
        fire_push(b->s, f);
    }
}

static void alert(struct bot *b, const char *kind, const char *detail)
{
    struct fire *f;

    if (b->s->alert == NULL || (f = calloc(1, sizeof(*f))) == NULL)
        return;  /* the log line is the alert of last resort */
    snprintf(f->id, sizeof(f->id), "%s", b->id);
    snprintf(f->kind, sizeof(f->kind), "%s", kind);
    snprintf(f->detail, sizeof(f->detail), "%s", detail);
    fire_push(b->s, f);
}

/* A reason on or off for b: logged, and alerted when it turns on. how says
 * who cleared it. */
static void set_attention(struct bot *b, unsigned bit, int on, const char *how)
{
    int i = attention_index(bit);

    if (i < 0 || on == ((b->attention & bit) != 0))
        return;
    if (on) {
        b->attention |= bit;
        MYNA_LOG(MYNA_ERROR, "bot_needs_attention", "instance=%s reason=%s", b->id,
                 attention_names[i]);
        alert(b, attention_names[i], attention_details[i] ? attention_details[i] : "");
    } else {
        b->attention &= ~bit;
        MYNA_LOG(MYNA_INFO, "bot_attention_cleared", "instance=%s reason=%s by=%s", b->id,
                 attention_names[i], how);
    }
}

static void on_attention_line(void *arg, unsigned bit, int on)
{
    set_attention(arg, bit, on, "bot");
}

/* Runs the queued callbacks; they may call the supervisor again (and queue
 * more). */
static void fire_pending(struct myna_supervisor *s)
{
    for (;;) {
        struct fire *f = s->fires;
        if (f == NULL)
            break;
        if ((s->fires = f->next) == NULL)
            s->fires_tail = NULL;
        if (f->done)
            f->done(f->arg);
        else if (s->alert)
            s->alert(f->id, f->kind, f->detail, s->alert_arg);
        free(f);
    }
    if (s->all_due) {
        void (*done)(void *) = s->all_done;
        s->all_due = 0;
        s->all_done = NULL;
        if (done)
            done(s->all_arg);
    }
}

static void check_all_done(struct myna_supervisor *s)
{
    if (s->stopping_all && s->n_running == 0 && s->all_done)
        s->all_due = 1;
}

/* ---- processes ------------------------------------------------------------ */

static void arm_ms(struct event *ev, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    evtimer_add(ev, &tv);
}

static void set_reason(struct bot *b, const char *reason)
{
    snprintf(b->reason, sizeof(b->reason), "%s", reason);
}

static void arm_start_tick(struct myna_supervisor *s)
{
    int64_t wait;

    if (s->qhead == NULL || evtimer_pending(s->start_tick, NULL))
        return;
    /* timers count from the loop's cached time, which forks just made old */
    event_base_update_cache_time(s->base);
    wait = s->last_batch_ms + s->t.start_tick_ms - myna_mono_ms();
    arm_ms(s->start_tick, wait > 0 ? (int)wait : 0);
}

static void enqueue(struct bot *b)
{
    struct myna_supervisor *s = b->s;

    b->state = ST_STARTING;
    if (b->queued)
        return;
    b->queued = 1;
    b->qnext = NULL;
    b->qprev = s->qtail;
    if (s->qtail)
        s->qtail->qnext = b;
    else
        s->qhead = b;
    s->qtail = b;
    arm_start_tick(s);
}

static void dequeue(struct bot *b)
{
    struct myna_supervisor *s = b->s;

    if (!b->queued)
        return;
    if (b->qprev)
        b->qprev->qnext = b->qnext;
    else
        s->qhead = b->qnext;
    if (b->qnext)
        b->qnext->qprev = b->qprev;
    else
        s->qtail = b->qprev;
    b->qprev = b->qnext = NULL;
    b->queued = 0;
}

/* Closes what ties the supervisor to b's process once it was reaped. */
static void bot_detach(struct bot *b)
{
    if (b->beat_ev) {
        event_free(b->beat_ev);
        b->beat_ev = NULL;
    }
    if (b->beat >= 0)
        close(b->beat);
    if (b->bell >= 0)
        close(b->bell);
    b->beat = b->bell = -1;
    if (b->pid > 0)
        b->s->n_running--;
    b->pid = 0;
    b->rss_kb = 0;
    evtimer_del(b->timer);
}

/* An exit (or a failed start) the supervisor did not ask for: restart
 * after the backoff, noticing a crash loop. */
static void bot_crashed(struct bot *b, const char *why, int code, int sig)
{
    struct myna_supervisor *s = b->s;
    int delay = b->backoff_ms;
    int loop = crash_record(&b->crashes, myna_mono_ms(), s->t.crash_window_ms, delay,
                            s->t.backoff_max_ms);
    char q[160];

    b->backoff_ms = backoff_next(delay, s->t.backoff_max_ms);
    set_reason(b, why);
    b->state = loop ? ST_CRASH_LOOP : ST_WAITING;
    MYNA_LOG(MYNA_WARN, "bot_exited", "instance=%s code=%d signal=%d reason=%s restart_in_ms=%d",
             b->id, code, sig, myna_log_q(q, sizeof(q), why), delay);
    if (loop && !b->crash_loop) {
        char detail[160];
        b->crash_loop = 1;
        snprintf(detail, sizeof(detail),
                 "%d crashes (last: %s, code %d, signal %d); still retried, backoff up to %d s",
                 b->crashes.n, why, code, sig, s->t.backoff_max_ms / 1000);
        MYNA_LOG(MYNA_ERROR, "bot_crash_loop", "instance=%s reason=%s crashes=%d retry_in_ms=%d",
                 b->id, myna_log_q(q, sizeof(q), why), b->crashes.n, delay);
        alert(b, "crash_loop", detail);
    }
    arm_ms(b->timer, delay);
}

static void bot_free(struct bot *b)
{
    struct myna_supervisor *s = b->s;

    dequeue(b);
    bot_detach(b);
    table_del(&s->tab, b);
    if (b->prev)
        b->prev->next = b->next;
    else
        s->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        s->tail = b->prev;
    while (b->waiters) {  /* left only at myna_supervisor_free: they never run */
        struct fire *f = b->waiters;
        b->waiters = f->next;
        free(f);
    }
    if (b->timer)
        event_free(b->timer);
    free(b->log_path);
    free(b);
}

/* b's process ran for healthy_ms (ran_ms): its past crashes, its backoff
 * and its crash loop are over, whether it still runs or just exited (the
 * monitor may not have seen it at healthy_ms). */
static void healthy_again(struct bot *b, int64_t ran_ms)
{
    if (b->crash_loop)
        MYNA_LOG(MYNA_INFO, "bot_recovered", "instance=%s uptime_ms=%lld", b->id,
                 (long long)ran_ms);
    b->crash_loop = 0;
    b->backoff_ms = b->s->t.backoff_min_ms;
    crash_forget(&b->crashes);
}

/* Reads what b's exited process left in its heartbeat pipe: the exit may
 * be seen before the pipe is read, and its last attention lines count. A
 * line the exit cut short stays unread (the next process starts afresh).
 * Bounded: the pipe holds what its capacity let the process write. */
static void beat_drain(struct bot *b)
{
    char buf[256];
    ssize_t r;

    for (int i = 0; i < 1024 && (r = read(b->beat, buf, sizeof(buf))) > 0; i++)
        beat_feed(&b->line, buf, (size_t)r, on_attention_line, b);
}

static void bot_exited(struct bot *b, int status)
{
    struct myna_supervisor *s = b->s;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    int64_t ran_ms = myna_mono_ms() - b->started_mono_ms;
    const char *why = b->kill_reason ? b->kill_reason : "crashed";
    char q[160];

    if (b->beat >= 0)
        beat_drain(b);
    bot_detach(b);
    /* the breaker died with the process; the next one starts closed */
    set_attention(b, MYNA_ATTN_LLM_CIRCUIT_OPEN, 0, "exit");
    b->last_code = code;
    b->last_signal = sig;
    b->kill_reason = NULL;
    if (b->removing) {
        MYNA_LOG(MYNA_INFO, "bot_stopped", "instance=%s code=%d signal=%d removed=1", b->id, code,
                 sig);
        fire_waiters(b);
        bot_free(b);
        check_all_done(s);
        return;
    }
    if (ran_ms >= s->t.healthy_ms)  /* it was well for a while: a fresh start */
        healthy_again(b, ran_ms);
    if (b->state == ST_STOPPING || s->stopping_all) {
        fire_waiters(b);
        if (b->then_start && !s->stopping_all && b->then_reason == MEMORY_LIMIT &&
            ran_ms < s->t.healthy_ms) {
            /* over its limit again soon after a start (a limit below what
             * it needs to run): a crash, backing off to a crash loop,
             * rather than a restart every monitor_ms for ever */
            b->then_start = 0;
            b->then_reason = NULL;
            bot_crashed(b, MEMORY_LIMIT, code, sig);
            check_all_done(s);
            return;
        }
        if (b->then_start && !s->stopping_all) {
            const char *why_now = b->then_reason ? b->then_reason : "started";
            MYNA_LOG(MYNA_INFO, "bot_exited",
                     "instance=%s code=%d signal=%d reason=%s restart_in_ms=0", b->id, code, sig,
                     myna_log_q(q, sizeof(q), why_now));
            if (b->then_reason) {
                b->restarts++;
                set_reason(b, b->then_reason);
            }
            enqueue(b);
        } else {
            b->state = ST_STOPPED;
            MYNA_LOG(MYNA_INFO, "bot_stopped", "instance=%s code=%d signal=%d", b->id, code, sig);
        }
        b->then_start = 0;
        b->then_reason = NULL;
        check_all_done(s);
        return;
    }
    if (code == 2) {  /* its configuration is wrong: restarting cannot help */
        b->state = ST_CRASH_LOOP;
        set_reason(b, "config error");
        MYNA_LOG(MYNA_ERROR, "bot_config_error", "instance=%s state=crash_loop", b->id);
        if (!b->crash_loop) {
            b->crash_loop = 1;
            MYNA_LOG(MYNA_ERROR, "bot_crash_loop",
                     "instance=%s reason=\"config error\" code=2 retry=no", b->id);
            alert(b, "crash_loop", "exited with code 2 (configuration error); not restarted");
        }
        return;
    }
    bot_crashed(b, why, code, sig);
}

/* Closes every descriptor from first up listed in /proc/self/fd; -1 when
 * /proc cannot be read (some may be closed by then). Only system calls:
 * it runs in the forked child of a threaded master. */
static int close_listed_from(int first)
{
    _Alignas(struct dirent64) char buf[2048];
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ssize_t n, off;

    if (dfd < 0)
        return -1;
    /* the listing goes by descriptor number: closing the ones already
     * listed skips none of the rest */
    while ((n = getdents64(dfd, buf, sizeof(buf))) > 0) {
        for (off = 0; off < n; off += ((struct dirent64 *)(void *)(buf + off))->d_reclen) {
            const char *name = ((struct dirent64 *)(void *)(buf + off))->d_name;
            long fd = 0;
            int i;
            for (i = 0; name[i] >= '0' && name[i] <= '9' && fd <= INT_MAX / 10; i++)
                fd = fd * 10 + (name[i] - '0');
            if (i > 0 && name[i] == '\0' && fd >= first && fd <= INT_MAX && fd != dfd)
                close((int)fd);
        }
    }
    close(dfd);
    return n < 0 ? -1 : 0;
}

/* Closes every descriptor from first up to the descriptor limit (at most
 * 2^20 of them): the last resort, without /proc. */
static void close_each_from(int first)
{
    struct rlimit rl;
    long max = 1L << 20;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)max)
        max = (long)rl.rlim_cur;
    for (long fd = first; fd < max; fd++)
        close((int)fd);
}

/* Closes every descriptor from first up, in the forked child: close_range,
 * or, where the kernel lacks it (ENOSYS, before 5.9) or a seccomp profile
 * refuses it (EPERM, older container runtimes), each one open. */
static void close_from(int first)
{
    if (close_range((unsigned)first, ~0u, 0) == 0)
        return;
    if (close_listed_from(first) != 0)
        close_each_from(first);
}

/* What a bot runs: the master's own program. After the fork this names
 * the file the master was started from even when that path now holds
 * another program (an upgrade copied over it) or nothing: a bot speaks the
 * protocol and takes the flags of its master, whatever is on the disk. */
#define SELF_EXE "/proc/self/exe"

/* The child: pipes onto fds 3 and 4, the log onto 1 and 2, nothing else
 * open, then exec. Only async-signal-safe calls (the master has threads). */
static void exec_bot(char **argv, char **envp, int bell_r, int beat_w, int log_fd,
                     int config_fd)
{
    struct sigaction dfl;
    sigset_t none;
    int a = fcntl(bell_r, F_DUPFD_CLOEXEC, 10), h = fcntl(beat_w, F_DUPFD_CLOEXEC, 10);
    int l = log_fd >= 0 ? fcntl(log_fd, F_DUPFD_CLOEXEC, 10) : -1;
    int c = config_fd >= 0 ? fcntl(config_fd, F_DUPFD_CLOEXEC, 10) : -1;

    /* first out of the way (a pipe may be on 3 or 4 already), then placed;
     * dup2 clears close-on-exec on the copies */
    if (a < 0 || h < 0 || (log_fd >= 0 && l < 0) || (config_fd >= 0 && c < 0) ||
        dup2(a, 3) < 0 || dup2(h, 4) < 0 || (c >= 0 && dup2(c, 5) < 0))
        _exit(127);
    if (l >= 0 && (dup2(l, STDOUT_FILENO) < 0 || dup2(l, STDERR_FILENO) < 0))
        _exit(127);
    close_from(c >= 0 ? 6 : 5);  /* anything not close-on-exec */
    /* The master's handlers (libevent's: they write to the master's signal
     * socket, which this child shares until exec) go first: a SIGTERM for
     * the bot, held since before the fork, must stop the bot, not the
     * master. SIGPIPE, which the master ignores, is for the bot to decide.
     * SIGHUP and SIGINT are ignored from the start: they come for the whole
     * process group (a terminal that closes, Ctrl-C, a `killall -HUP` after
     * logrotate), and the master acts on them for its bots. */
    memset(&dfl, 0, sizeof(dfl));
    for (int sig = 1; sig < NSIG; sig++) {
        dfl.sa_handler = sig == SIGHUP || sig == SIGINT ? SIG_IGN : SIG_DFL;
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(SELF_EXE, argv, envp);
    _exit(127);
}

/* The master's environment without what only the master may know: the
 * first admin token and the alert webhook (a bot gets its settings as
 * flags; /proc/PID/environ of a bot is one more place to read them). A
 * new array of the same strings (free the array only); NULL when out of
 * memory. */
static char **bot_environ(void)
{
    static const char *const kept_out[] = { "MYNA_ADMIN_TOKEN=", "MYNA_ALERT_WEBHOOK=" };
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    if ((env = calloc(n + 1, sizeof(char *))) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < sizeof(kept_out) / sizeof(kept_out[0]) &&
               strncmp(environ[i], kept_out[j], strlen(kept_out[j])) != 0)
            j++;
        if (j == sizeof(kept_out) / sizeof(kept_out[0]))
            env[k++] = environ[i];
    }
    return env;
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;
    char buf[256];
    ssize_t r = -1;
    int got = 0;

    (void)what;
    /* A few reads, not until the pipe is empty: a bot that writes without
     * pause would hold the loop for as long as it goes on. What is left
     * wakes the next turn (the event is level-triggered). */
    for (int i = 0; i < BEAT_READS_MAX && (r = read(fd, buf, sizeof(buf))) > 0; i++) {
        got = 1;
        beat_feed(&b->line, buf, (size_t)r, on_attention_line, b);
    }
    if (got) {
        b->last_beat_ms = myna_mono_ms();
        if (b->state == ST_STARTING)
            b->state = ST_RUNNING;
    }
    if (r == 0)  /* the bot closed it (it is exiting): SIGCHLD follows */
        event_del(b->beat_ev);
    fire_pending(b->s);
}

/* Forks and execs b's bot. 0, or -1 (logged) when nothing was started. */
/* b's configuration in a memory file (fd 5 of the bot): secrets never
 * touch the disk. -1 when there is no source; -2 on failure (logged). */
static int config_file(struct bot *b)
{
    struct myna_supervisor *s = b->s;
    char *cfg;
    size_t len, off = 0;
    int fd;

    if (s->config_fn == NULL)
        return -1;
    if ((cfg = s->config_fn(b->id, s->config_arg)) == NULL) {
        MYNA_LOG(MYNA_ERROR, "bot_start_failed", "instance=%s reason=no_config", b->id);
        return -2;
    }
    len = strlen(cfg);
    if ((fd = memfd_create("myna-bot-config", MFD_CLOEXEC)) < 0) {
        MYNA_LOG_ERRNO(MYNA_ERROR, "bot_start_failed", errno, "instance=%s", b->id);
    } else {
        while (off < len) {
            ssize_t w = write(fd, cfg + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (off < len || lseek(fd, 0, SEEK_SET) != 0) {
            MYNA_LOG_ERRNO(MYNA_ERROR, "bot_start_failed", errno, "instance=%s", b->id);
            close(fd);
            fd = -2;
        }
    }
    memset(cfg, 0, len);
    free(cfg);
    return fd < 0 ? -2 : fd;
}

static int bot_spawn(struct bot *b)
{
    struct myna_supervisor *s = b->s;
    int bell[2] = { -1, -1 }, beat[2] = { -1, -1 }, log_fd = -1, cfg_fd = -1, n = 0;
    char **argv = calloc((size_t)s->argc + 16, sizeof(char *)), **envp = bot_environ();
    pid_t pid = -1;
    sigset_t all, old_mask;

    if (argv == NULL || envp == NULL || pipe2(bell, O_CLOEXEC) != 0 ||
        pipe2(beat, O_CLOEXEC) != 0) {
        MYNA_LOG_ERRNO(MYNA_ERROR, "bot_start_failed", argv && envp ? errno : ENOMEM,
                       "instance=%s", b->id);
        goto fail;
    }
    /* a missing log file is no reason to leave customers unanswered: the
     * bot then writes to the master's standard error */
    if ((log_fd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0) {
        int e = errno;
        char q[600];
        MYNA_LOG_ERRNO(MYNA_ERROR, "bot_log_failed", e, "instance=%s file=%s", b->id,
                       myna_log_q(q, sizeof(q), b->log_path));
    }
    if ((cfg_fd = config_file(b)) == -2)
        goto fail;
    argv[n++] = (char *)"myna";
    argv[n++] = (char *)"bot";
    argv[n++] = (char *)"--instance";
    argv[n++] = b->id;
    if (cfg_fd >= 0) {
        argv[n++] = (char *)"--config-fd";
        argv[n++] = (char *)"5";
    }
    argv[n++] = (char *)"--doorbell-fd";
    argv[n++] = (char *)"3";
    argv[n++] = (char *)"--heartbeat-fd";
    argv[n++] = (char *)"4";
    if (log_fd >= 0) {
        argv[n++] = (char *)"--log-file-rotate";
        argv[n++] = b->log_path;
    }
    for (int i = 0; i < s->argc; i++)
        argv[n++] = s->argv[i];
    argv[n] = NULL;
    /* every signal held across the fork: the child takes them only once it
     * has dropped the master's handlers (exec_bot) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_mask);
    pid = fork();
    if (pid == 0)
        exec_bot(argv, envp, bell[0], beat[1], log_fd, cfg_fd);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (pid < 0)
        MYNA_LOG_ERRNO(MYNA_ERROR, "bot_start_failed", errno, "instance=%s", b->id);
    if (log_fd >= 0)
        close(log_fd);
    if (cfg_fd >= 0)
        close(cfg_fd);
    log_fd = cfg_fd = -1;
    if (pid < 0)
        goto fail;
    free(argv);
    free(envp);
    close(bell[0]);
    close(beat[1]);
    fcntl(bell[1], F_SETFL, O_NONBLOCK);  /* a full pipe already rings */
    fcntl(beat[0], F_SETFL, O_NONBLOCK);
    b->bell = bell[1];
    b->beat = beat[0];
    memset(&b->line, 0, sizeof(b->line));
    b->pid = pid;
    s->n_running++;
    b->state = ST_STARTING;  /* running at its first heartbeat */
    b->started_mono_ms = b->last_beat_ms = myna_mono_ms();
    b->started_wall_ms = myna_wall_ms();
    if ((b->beat_ev = event_new(s->base, b->beat, EV_READ | EV_PERSIST, on_beat, b)) == NULL ||
        event_add(b->beat_ev, NULL) != 0)
        MYNA_LOG(MYNA_ERROR, "bot_heartbeat_failed", "instance=%s pid=%ld", b->id, (long)pid);
    MYNA_LOG(MYNA_INFO, "bot_started", "instance=%s pid=%ld restarts=%d", b->id, (long)pid,
             b->restarts);
    return 0;
fail:
    free(argv);
    free(envp);
    if (log_fd >= 0)
        close(log_fd);
    if (cfg_fd >= 0)
        close(cfg_fd);
    for (int i = 0; i < 2; i++) {
        if (bell[i] >= 0)
            close(bell[i]);
        if (beat[i] >= 0)
            close(beat[i]);
    }
    return -1;
}

static void on_start_tick(evutil_socket_t fd, short what, void *arg)
{
    struct myna_supervisor *s = arg;
    int64_t now = myna_mono_ms();

    (void)fd;
    (void)what;
    /* libevent's clock is coarser than ours and may fire a few ms early */
    if (now < s->last_batch_ms + s->t.start_tick_ms) {
        arm_start_tick(s);  /* for the rest of the interval */
        return;
    }
    s->last_batch_ms = now;
    for (int i = 0; i < s->t.start_batch && s->qhead; i++) {
        struct bot *b = s->qhead;
        dequeue(b);
        if (bot_spawn(b) != 0)
            bot_crashed(b, "start failed", -1, 0);
    }
    arm_start_tick(s);
    fire_pending(s);
}

/* SIGTERM now, SIGKILL after kill_after_ms. */
static void bot_term(struct bot *b)
{
    if (b->pid <= 0 || b->state == ST_STOPPING)
        return;
    b->state = ST_STOPPING;
    kill(b->pid, SIGTERM);
    evtimer_del(b->timer);
    arm_ms(b->timer, b->s->t.kill_after_ms);
}

static void on_bot_timer(evutil_socket_t fd, short what, void *arg)
{
    struct bot *b = arg;

    (void)fd;
    (void)what;
    if (b->state == ST_STOPPING && b->pid > 0) {
        MYNA_LOG(MYNA_WARN, "bot_killed", "instance=%s pid=%ld after_ms=%d", b->id, (long)b->pid,
                 b->s->t.kill_after_ms);
        kill(b->pid, SIGKILL);
    } else if ((b->state == ST_WAITING || b->state == ST_CRASH_LOOP) && !b->s->stopping_all) {
        b->restarts++;
        enqueue(b);
    }
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    struct myna_supervisor *s = arg;
    struct bot *b, *next;

    (void)sig;
    (void)what;
    /* our children only: another part of the process may have its own */
    for (b = s->head; b; b = next) {
        int status;
        next = b->next;  /* bot_exited may free b, never another bot */
        if (b->pid > 0 && waitpid(b->pid, &status, WNOHANG) == b->pid)
            bot_exited(b, status);
    }
    fire_pending(s);
}

static long read_rss_kb(const struct myna_supervisor *s, pid_t pid)
{
    char path[64], text[256];
    ssize_t r;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    r = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (r <= 0)
        return -1;
    text[r] = '\0';
    return statm_rss_kb(text, s->page_size);
}

/* Every monitor_ms: heartbeats, memory, health. */
static void on_monitor(evutil_socket_t fd, short what, void *arg)
{
    struct myna_supervisor *s = arg;
    int64_t now = myna_mono_ms(), away;

    (void)fd;
    (void)what;
    /* Late by more than a period: the master was not running (stopped or
     * frozen: Ctrl-Z of its terminal's job, `docker pause`, `systemctl
     * freeze`), and its bots most likely with it. The time it did not
     * watch is no bot's silence: counted, it got every bot killed the
     * moment they all resumed. */
    away = now - s->last_monitor_ms - s->t.monitor_ms;
    s->last_monitor_ms = now;
    for (struct bot *b = s->head; b && away > s->t.monitor_ms; b = b->next)
        if (b->pid > 0)
            b->last_beat_ms = b->last_beat_ms + away < now ? b->last_beat_ms + away : now;
    for (struct bot *b = s->head; b; b = b->next) {
        long rss;
        if (b->pid <= 0 || b->state == ST_STOPPING || b->kill_reason)
            continue;
        if (now - b->last_beat_ms > s->t.heartbeat_timeout_ms) {
            MYNA_LOG(MYNA_WARN, "bot_unresponsive", "instance=%s pid=%ld heartbeat_age_ms=%lld",
                     b->id, (long)b->pid, (long long)(now - b->last_beat_ms));
            b->kill_reason = "no heartbeat";
            kill(b->pid, SIGKILL);
            continue;
        }
        if ((rss = read_rss_kb(s, b->pid)) >= 0)
            b->rss_kb = rss;
        if (b->state == ST_RUNNING && b->max_memory_mb > 0 &&
            b->rss_kb > (long)b->max_memory_mb * 1024) {
            MYNA_LOG(MYNA_WARN, "bot_memory_limit",
                     "instance=%s pid=%ld rss_kb=%ld max_memory_mb=%d", b->id, (long)b->pid,
                     b->rss_kb, b->max_memory_mb);
            b->then_start = 1;
            b->then_reason = MEMORY_LIMIT;
            bot_term(b);
            continue;
        }
        if (b->state == ST_RUNNING && now - b->started_mono_ms >= s->t.healthy_ms)
            healthy_again(b, now - b->started_mono_ms);
    }
    fire_pending(s);
}

/* ---- the API -------------------------------------------------------------- */

void myna_supervisor_timing_default(struct myna_supervisor_timing *t)
{
    t->backoff_min_ms = 1000;
    t->backoff_max_ms = 60000;
    t->healthy_ms = 60000;
    t->crash_window_ms = 300000;
    t->kill_after_ms = 5000;
    t->heartbeat_timeout_ms = 30000;
    t->monitor_ms = 2000;
    t->start_tick_ms = 100;
    t->start_batch = 20;
}

/* mkdir that is fine with what exists. */
static int make_dir(const char *path)
{
    return mkdir(path, 0750) == 0 || errno == EEXIST ? 0 : -errno;
}

struct myna_supervisor *myna_supervisor_new(struct event_base *base, const char *data_dir,
                                            int argc, char **argv, struct myna_err *err)
{
    struct myna_supervisor *s = calloc(1, sizeof(*s));
    size_t dlen = strlen(data_dir);
    int rc;

    if (s == NULL || (s->logs_dir = malloc(dlen + 8)) == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        free(s);
        return NULL;
    }
    s->base = base;
    s->argc = argc;
    s->argv = argv;
    s->page_size = sysconf(_SC_PAGESIZE);
    myna_supervisor_timing_default(&s->t);
    snprintf(s->logs_dir, dlen + 8, "%s/logs", data_dir);
    if ((rc = make_dir(data_dir)) != 0 || (rc = make_dir(s->logs_dir)) != 0) {
        myna_err_set(err, MYNA_EIO, "cannot create '%s': %s", s->logs_dir, strerror(-rc));
        myna_supervisor_free(s);
        return NULL;
    }
    /* a bot is started from it (exec_bot): without /proc no bot could run */
    if (access(SELF_EXE, X_OK) != 0) {
        myna_err_set(err, MYNA_EIO, "cannot find the myna executable '%s': %s", SELF_EXE,
                     strerror(errno));
        myna_supervisor_free(s);
        return NULL;
    }
    s->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, s);
    s->start_tick = evtimer_new(base, on_start_tick, s);
    s->monitor = event_new(base, -1, EV_PERSIST, on_monitor, s);
    s->last_batch_ms = myna_mono_ms() - s->t.start_tick_ms;
    if (s->sigchld == NULL || s->start_tick == NULL || s->monitor == NULL ||
        event_add(s->sigchld, NULL) != 0) {
        myna_err_set(err, MYNA_ENOMEM, "cannot set up the supervisor");
        myna_supervisor_free(s);
        return NULL;
    }
    arm_ms(s->monitor, s->t.monitor_ms);
    s->last_monitor_ms = myna_mono_ms();
    return s;
}

int myna_supervisor_set_timing(struct myna_supervisor *s, const struct myna_supervisor_timing *t)
{
    if (t->backoff_min_ms <= 0 || t->backoff_max_ms < t->backoff_min_ms || t->healthy_ms <= 0 ||
        t->crash_window_ms <= 0 || t->kill_after_ms <= 0 || t->heartbeat_timeout_ms <= 0 ||
        t->monitor_ms <= 0 || t->start_tick_ms <= 0 || t->start_batch <= 0)
        return MYNA_EINVAL;
    if (t->monitor_ms != s->t.monitor_ms) {
        event_del(s->monitor);
        arm_ms(s->monitor, t->monitor_ms);
        s->last_monitor_ms = myna_mono_ms();
    }
    for (struct bot *b = s->head; b; b = b->next)
        if (b->backoff_ms == s->t.backoff_min_ms || b->backoff_ms > t->backoff_max_ms)
            b->backoff_ms = t->backoff_min_ms;
    s->t = *t;
    return MYNA_OK;
}

void myna_supervisor_get_timing(const struct myna_supervisor *s,
                                struct myna_supervisor_timing *out)
{
    *out = s->t;
}

int myna_supervisor_add(struct myna_supervisor *s, const char *id, int max_memory_mb)
{
    size_t plen = strlen(s->logs_dir) + strlen(id) + 8;
    struct bot *b;

    if (!myna_is_slug(id))
        return MYNA_EINVAL;
    if (table_find(&s->tab, id))
        return MYNA_EEXISTS;
    if ((b = calloc(1, sizeof(*b))) == NULL || (b->log_path = malloc(plen)) == NULL) {
        free(b);
        return MYNA_ENOMEM;
    }
    b->s = s;
    snprintf(b->id, sizeof(b->id), "%s", id);
    snprintf(b->log_path, plen, "%s/%s.log", s->logs_dir, id);
    b->bell = b->beat = -1;
    b->backoff_ms = s->t.backoff_min_ms;
    b->last_code = -1;
    b->max_memory_mb = max_memory_mb;
    if ((b->timer = evtimer_new(s->base, on_bot_timer, b)) == NULL ||
        table_add(&s->tab, b) != MYNA_OK) {
        if (b->timer)
            event_free(b->timer);
        free(b->log_path);
        free(b);
        return MYNA_ENOMEM;
    }
    b->prev = s->tail;
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    return MYNA_OK;
}

/* An operator's start, restart or stop forgives the past. */
static void forgive(struct bot *b)
{
    b->crash_loop = 0;
    b->backoff_ms = b->s->t.backoff_min_ms;
    crash_forget(&b->crashes);
}

/* ... and, when a new process is to come (or none), what the old one
 * reported: a new token comes with a restart, and a token still refused or
 * an account still blocked is reported again by the next process. */
static void forgive_attention(struct bot *b)
{
    for (int i = 0; i < MYNA_ATTN_COUNT; i++)
        if (ATTN_BLOCKS & (1u << i))
            set_attention(b, 1u << i, 0, "operator");
}

int myna_supervisor_start(struct myna_supervisor *s, const char *id)
{
    struct bot *b = table_find(&s->tab, id);

    if (b == NULL)
        return MYNA_ENOTFOUND;
    if (s->stopping_all || b->removing)
        return MYNA_EAGAIN;
    forgive(b);
    if (b->pid <= 0 || b->state == ST_STOPPING)
        forgive_attention(b);
    switch (b->state) {
    case ST_STOPPED:
    case ST_WAITING:
    case ST_CRASH_LOOP:
        evtimer_del(b->timer);
        enqueue(b);
        break;
    case ST_STOPPING:
        b->then_start = 1;
        /* the operator's start, once it exited: not the memory limit's
         * restart, which backs off as a crash when it comes soon */
        if (b->then_reason == MEMORY_LIMIT)
            b->then_reason = NULL;
        break;
    case ST_STARTING:
    case ST_RUNNING:
        break;
    }
    return MYNA_OK;
}

/* A done callback to run at b's exit; NULL done needs none. */
static int add_waiter(struct bot *b, void (*done)(void *arg), void *arg)
{
    struct fire *f;

    if (done == NULL)
        return MYNA_OK;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return MYNA_ENOMEM;
    f->done = done;
    f->arg = arg;
    f->next = b->waiters;
    b->waiters = f;
    return MYNA_OK;
}

int myna_supervisor_stop(struct myna_supervisor *s, const char *id, void (*done)(void *arg),
                         void *arg)
{
    struct bot *b = table_find(&s->tab, id);

    if (b == NULL)
        return MYNA_ENOTFOUND;
    if (b->pid > 0) {
        if (add_waiter(b, done, arg) != MYNA_OK)
            return MYNA_ENOMEM;
        forgive(b);
        forgive_attention(b);
        b->then_start = 0;
        b->then_reason = NULL;
        bot_term(b);
        return MYNA_OK;
    }
    forgive(b);
    forgive_attention(b);
    dequeue(b);
    evtimer_del(b->timer);
    b->state = ST_STOPPED;
    if (done)
        done(arg);
    return MYNA_OK;
}

int myna_supervisor_restart(struct myna_supervisor *s, const char *id)
{
    struct bot *b = table_find(&s->tab, id);

    if (b == NULL)
        return MYNA_ENOTFOUND;
    if (s->stopping_all || b->removing)
        return MYNA_EAGAIN;
    if (b->pid <= 0)
        return myna_supervisor_start(s, id);
    forgive(b);
    forgive_attention(b);
    b->then_start = 1;
    b->then_reason = "requested";
    MYNA_LOG(MYNA_INFO, "bot_restarting", "instance=%s pid=%ld reason=requested", b->id,
             (long)b->pid);
    bot_term(b);
    return MYNA_OK;
}

int myna_supervisor_remove(struct myna_supervisor *s, const char *id, void (*done)(void *arg),
                           void *arg)
{
    struct bot *b = table_find(&s->tab, id);

    if (b == NULL)
        return MYNA_ENOTFOUND;
    if (b->pid > 0) {
        if (add_waiter(b, done, arg) != MYNA_OK)
            return MYNA_ENOMEM;
        b->removing = 1;
        b->then_start = 0;
        b->then_reason = NULL;
        bot_term(b);
        return MYNA_OK;
    }
    bot_free(b);
    if (done)
        done(arg);
    return MYNA_OK;
}

int myna_supervisor_set_memory_limit(struct myna_supervisor *s, const char *id,
                                     int max_memory_mb)
{
    struct bot *b = table_find(&s->tab, id);

    if (b == NULL)
        return MYNA_ENOTFOUND;
    b->max_memory_mb = max_memory_mb;
    return MYNA_OK;
}

void myna_supervisor_ring(struct myna_supervisor *s, const char *id)
{
    struct bot *b = table_find(&s->tab, id);

    if (b && b->bell >= 0) {
        char one = 1;
        ssize_t r = write(b->bell, &one, 1);
        (void)r;  /* EAGAIN: the pipe is full, the bell is ringing already */
    }
}

static void fill_status(const struct bot *b, int64_t now, struct myna_bot_status *out)
{
    memset(out, 0, sizeof(*out));
    out->state = state_names[b->state];
    out->pid = (long)b->pid;
    out->started_ms = b->started_wall_ms;
    out->uptime_ms = b->pid > 0 ? now - b->started_mono_ms : 0;
    out->restarts = b->restarts;
    out->last_exit_code = b->last_code;
    out->last_signal = b->last_signal;
    out->rss_kb = b->rss_kb;
    out->heartbeat_age_ms = b->pid > 0 ? (now - b->last_beat_ms > INT_MAX
                                              ? INT_MAX
                                              : (int)(now - b->last_beat_ms))
                                       : -1;
    snprintf(out->reason, sizeof(out->reason), "%s", b->reason);
    out->crash_loop = b->crash_loop;
    out->max_memory_mb = b->max_memory_mb;
    out->attention = b->attention | (b->crash_loop ? MYNA_ATTN_CRASH_LOOP : 0u);
}

int myna_supervisor_status(const struct myna_supervisor *s, const char *id,
                           struct myna_bot_status *out)
{
    const struct bot *b = table_find(&s->tab, id);

    if (b == NULL)
        return MYNA_ENOTFOUND;
    fill_status(b, myna_mono_ms(), out);
    return MYNA_OK;
}

size_t myna_supervisor_count(const struct myna_supervisor *s)
{
    return s->tab.n;
}

void myna_supervisor_foreach(const struct myna_supervisor *s,
                             void (*fn)(const char *id, const struct myna_bot_status *st,
                                        void *arg),
                             void *arg)
{
    int64_t now = myna_mono_ms();
    struct myna_bot_status st;

    for (const struct bot *b = s->head; b; b = b->next) {
        fill_status(b, now, &st);
        fn(b->id, &st, arg);
    }
}

const char *myna_attention_name(int i)
{
    return i >= 0 && i < MYNA_ATTN_COUNT ? attention_names[i] : NULL;
}

void myna_supervisor_set_alert(struct myna_supervisor *s,
                               void (*fn)(const char *id, const char *kind, const char *detail,
                                          void *arg),
                               void *arg)
{
    s->alert = fn;
    s->alert_arg = arg;
}

void myna_supervisor_stop_all(struct myna_supervisor *s, void (*done)(void *arg), void *arg)
{
    s->stopping_all = 1;
    s->all_done = done;
    s->all_arg = arg;
    evtimer_del(s->start_tick);
    for (struct bot *b = s->head; b; b = b->next) {
        dequeue(b);
        b->then_start = 0;
        b->then_reason = NULL;
        if (b->pid > 0) {
            bot_term(b);
        } else {
            evtimer_del(b->timer);
            b->state = ST_STOPPED;
        }
    }
    if (s->n_running == 0) {
        s->all_done = NULL;
        if (done)
            done(arg);
    }
}

void myna_supervisor_free(struct myna_supervisor *s)
{
    if (s == NULL)
        return;
    while (s->head) {
        struct bot *b = s->head;
        if (b->pid > 0) {
            kill(b->pid, SIGKILL);
            waitpid(b->pid, NULL, 0);
        }
        bot_free(b);
    }
    while (s->fires) {
        struct fire *f = s->fires;
        s->fires = f->next;
        free(f);
    }
    if (s->sigchld)
        event_free(s->sigchld);
    if (s->start_tick)
        event_free(s->start_tick);
    if (s->monitor)
        event_free(s->monitor);
    table_release(&s->tab);
    free(s->logs_dir);
    free(s);
}

void myna_supervisor_set_config(struct myna_supervisor *s,
                                char *(*fn)(const char *id, void *arg), void *arg)
{
    s->config_fn = fn;
    s->config_arg = arg;
}
