/* fleet_baseline.c - the floor for starting a fleet of bots: N processes
 * fork+exec'd the way the supervisor starts `myna bot`, each linked against
 * the same shared libraries as myna (libevent, SQLite, libcrypto, libcurl,
 * cJSON), timed from the first fork until every child said it is ready, and
 * their resident memory summed once all are up. No Myna code runs: the
 * children are this program again (`--child`).
 *
 *   usage: myna_fleet_baseline [--procs N] [--init] [--batch B --tick-ms T]
 *                              [--timeout S]
 *
 * --init   each child starts its libraries as a bot does before it has any
 *          work (curl_global_init, a curl multi handle, an event loop
 *          waiting on a descriptor, an SQLite connection that ran one
 *          statement, one cJSON parse); without it the child only exists
 *          (the dynamic loader's work and nothing more).
 * --batch B --tick-ms T   start B children, then wait for the next tick of
 *          T ms, like the supervisor's start queue; default: all at once.
 *
 * Prints one line:
 *   procs=N init=0|1 start_ms=X rss_sum_mb=R pss_sum_mb=P rss_per_proc_mb=r pss_per_proc_mb=p
 * Exit 0, or 1 when not every child was ready within --timeout (default 30 s,
 * alarm(2) bounds the whole run). Each child holds the read end of a pipe
 * as its standard input and exits at its EOF, so no child outlives this
 * process, however it ends. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_FD 3

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_eof(evutil_socket_t fd, short what, void *arg)
{
    char buf[64];

    (void)what;
    if (read(fd, buf, sizeof(buf)) <= 0)
        event_base_loopbreak(arg);
}

/* The child: ready on READY_FD, then wait for EOF on standard input. */
static int child(int init)
{
    char buf[64];

    if (init) {
        struct event_base *base;
        struct event *ev;
        sqlite3 *db = NULL;
        cJSON *j;
        CURLM *multi;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
            (multi = curl_multi_init()) == NULL || (base = event_base_new()) == NULL ||
            (ev = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_eof, base)) == NULL ||
            sqlite3_open(":memory:", &db) != SQLITE_OK ||
            sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); "
                             "INSERT INTO t(v) VALUES ('x');",
                         NULL, NULL, NULL) != SQLITE_OK ||
            (j = cJSON_Parse("{\"a\":[1,2,3],\"b\":\"c\"}")) == NULL)
            return 1;
        if (event_add(ev, NULL) != 0 || write(READY_FD, "r", 1) != 1)
            return 1;
        event_base_dispatch(base);
        cJSON_Delete(j);
        sqlite3_close(db);
        event_free(ev);
        event_base_free(base);
        curl_multi_cleanup(multi);
        curl_global_cleanup();
        return 0;
    }
    if (write(READY_FD, "r", 1) != 1)
        return 1;
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
        ;
    return 0;
}

/* The "Key:   N kB" field of a /proc file, in kB; 0 if absent. */
static long proc_kb(long pid, const char *file, const char *key)
{
    char path[64], line[256];
    size_t kl = strlen(key);
    long kb = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/%s", pid, file);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            kb = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static void usage(void)
{
    fprintf(stderr, "usage: myna_fleet_baseline [--procs N] [--init] [--batch B --tick-ms T] "
                    "[--timeout S]\n");
    exit(2);
}

static long arg_num(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    long procs = 200, batch = 0, tick_ms = 100, timeout_s = 30, ready = 0;
    int init = 0, is_child = 0, hold[2], rdy[2], rc = 0;
    double t0, t_ready = 0, deadline;
    long rss = 0, pss = 0;
    pid_t *pids;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--child") == 0)
            is_child = 1;
        else if (strcmp(argv[i], "--init") == 0)
            init = 1;
        else if (strcmp(argv[i], "--procs") == 0 && i + 1 < argc)
            procs = arg_num(argv[++i], 1, 5000);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = arg_num(argv[++i], 1, 5000);
        else if (strcmp(argv[i], "--tick-ms") == 0 && i + 1 < argc)
            tick_ms = arg_num(argv[++i], 1, 10000);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = arg_num(argv[++i], 1, 600);
        else
            usage();
    }
    if (is_child)
        return child(init);
    if (batch == 0)
        batch = procs;
    if ((pids = calloc((size_t)procs, sizeof(*pids))) == NULL || pipe2(hold, O_CLOEXEC) != 0 ||
        pipe2(rdy, O_CLOEXEC) != 0) {
        perror("myna_fleet_baseline");
        return 1;
    }
    alarm((unsigned)timeout_s + 10);  /* the whole run, the children's exit included */
    t0 = now_ms();
    for (long i = 0; i < procs; i++) {
        char *cargv[] = { argv[0], (char *)"--child", init ? (char *)"--init" : NULL, NULL };
        if (i > 0 && i % batch == 0) {  /* the next tick, counted from the first fork */
            long us = (long)((t0 + (double)(i / batch) * (double)tick_ms - now_ms()) * 1e3);
            if (us > 0) {
                struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
                while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                    ;
            }
        }
        if ((pids[i] = fork()) < 0) {
            perror("myna_fleet_baseline: fork");
            procs = i;
            rc = 1;
            break;
        }
        if (pids[i] == 0) {  /* dup2 clears close-on-exec on the copies */
            if (dup2(hold[0], STDIN_FILENO) < 0 || dup2(rdy[1], READY_FD) < 0)
                _exit(127);
            execv("/proc/self/exe", cargv);
            _exit(127);
        }
    }
    close(rdy[1]);
    close(hold[0]);
    deadline = t0 + (double)timeout_s * 1e3;
    while (rc == 0 && ready < procs) {
        struct pollfd p = { rdy[0], POLLIN, 0 };
        char buf[512];
        double left = deadline - now_ms();
        ssize_t r;
        if (left <= 0 || (poll(&p, 1, (int)left + 1) < 0 && errno != EINTR))
            break;
        if ((r = read(rdy[0], buf, sizeof(buf))) <= 0)
            break;  /* every child gone */
        ready += r;
    }
    t_ready = now_ms();
    if (ready < procs) {
        fprintf(stderr, "myna_fleet_baseline: %ld of %ld children ready\n", ready, procs);
        rc = 1;
    }
    for (long i = 0; i < procs; i++) {
        rss += proc_kb((long)pids[i], "status", "VmRSS");
        pss += proc_kb((long)pids[i], "smaps_rollup", "Pss");
    }
    close(hold[1]);  /* EOF: every child exits */
    for (long i = 0; i < procs; i++)
        waitpid(pids[i], NULL, 0);
    free(pids);
    if (rc == 0)
        printf("procs=%ld init=%d start_ms=%.0f rss_sum_mb=%.1f pss_sum_mb=%.1f "
               "rss_per_proc_mb=%.2f pss_per_proc_mb=%.2f\n",
               procs, init, t_ready - t0, (double)rss / 1024, (double)pss / 1024,
               (double)rss / 1024 / (double)procs, (double)pss / 1024 / (double)procs);
    return rc;
}
