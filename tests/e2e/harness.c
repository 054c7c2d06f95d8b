/* harness.c - see harness.h. */
#include "harness.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wa/signature.h"

/* How long a start may take to its ready line. A master under ASan on a
 * loaded 2-core machine takes seconds, and one that imports a fleet of a
 * hundred instances first took 19 s there: a minute, so that only a start
 * that hangs fails. */
#define H_START_MS 60000

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

int h_setup(struct myna_proc *p, const char *instances_json)
{
    char path[400];

    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/myna-e2e.XXXXXX");
    if (mkdtemp(p->dir) == NULL)
        return -1;
    snprintf(p->log_path, sizeof(p->log_path), "%s/myna.log", p->dir);
    if (instances_json) {
        snprintf(path, sizeof(path), "%s/instances.json", p->dir);
        return write_file(path, instances_json);
    }
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, r;

    if (f == NULL)
        return NULL;
    do {
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap = cap * 2 + 8192);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static int file_contains(const char *path, const char *needle)
{
    char *log = slurp(path, NULL);
    int found = log && strstr(log, needle) != NULL;

    free(log);
    return found;
}

int h_log_contains(const struct myna_proc *p, const char *needle)
{
    char dir[320], path[600];
    struct dirent *e;
    DIR *d;
    int found = file_contains(p->log_path, needle);

    /* the bots write to files of their own: var/logs/<id>.log[.N] */
    snprintf(dir, sizeof(dir), "%s/var/logs", p->dir);
    if (found || (d = opendir(dir)) == NULL)
        return found;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        found = file_contains(path, needle);
    }
    closedir(d);
    return found;
}

int h_bot_log_contains(const struct myna_proc *p, const char *id, const char *needle)
{
    char path[400];

    snprintf(path, sizeof(path), "%s/var/logs/%s.log", p->dir, id);
    return file_contains(path, needle);
}

static int read_ready(struct myna_proc *p)
{
    char *log = slurp(p->log_path, NULL), *line;
    char pub[64], adm[64];
    int ok = 0;

    if (log && (line = strstr(log, "event=ready")) != NULL &&
        sscanf(line, "event=ready public=%63s admin=%63s", pub, adm) == 2) {
        snprintf(p->public_url, sizeof(p->public_url), "http://%s", pub);
        snprintf(p->admin_url, sizeof(p->admin_url), "http://%s", adm);
        ok = 1;
    }
    free(log);
    return ok;
}

/* 1 if a sanitizer's report is in path (a file, or every text file below
 * a directory: the master's log, the bots', the fakes'), its lines copied
 * to stderr. A memory error, a leak or undefined behaviour in any process
 * a test ran fails the test, in one it never looked at too (a bot that
 * aborted and was restarted, a leak reported as a bot exits). */
static int sanitizer_report(const char *path)
{
    char cmd[800];

    snprintf(cmd, sizeof(cmd),
             "grep -rIs -m 5 -E 'ERROR: (Address|Leak)Sanitizer|SUMMARY: UndefinedBehavior|"
             "runtime error:' '%s' >&2",
             path);
    return system(cmd) == 0;
}

int h_start(struct myna_proc *p, const char *const *extra)
{
    const char *argv[64];
    char data[320], inst[320];
    int n = 0, fd;
    struct timespec pause = { 0, 10 * 1000 * 1000 };

    snprintf(data, sizeof(data), "%s/var", p->dir);
    snprintf(inst, sizeof(inst), "%s/instances.json", p->dir);
    argv[n++] = p->bin[0] ? p->bin : MYNA_BIN;
    argv[n++] = "serve";
    argv[n++] = "--public";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--admin";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--data";
    argv[n++] = data;
    if (access(inst, R_OK) == 0) {
        argv[n++] = "--instances";
        argv[n++] = inst;
    }
    /* ingress only unless a test asks for bots ("--bots", "1" in extra: the
     * last flag wins); a bot would otherwise reply to Meta's real Graph API */
    argv[n++] = "--bots";
    argv[n++] = "0";
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    /* a fresh log per start, so the ready line read is this run's */
    if (sanitizer_report(p->log_path))
        fail_msg("a sanitizer reported an error in %s", p->log_path);
    unlink(p->log_path);
    p->public_url[0] = p->admin_url[0] = '\0';
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        if (p->nofile > 0) {
            struct rlimit rl = { (rlim_t)p->nofile, (rlim_t)p->nofile };
            if (p->nofile_hard > p->nofile)
                rl.rlim_max = (rlim_t)p->nofile_hard;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < H_START_MS / 10; i++) {
        int status;
        if (read_ready(p))
            return 0;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return -1;
        }
        nanosleep(&pause, NULL);
    }
    /* not left running behind a failed setup (it would hold its dir and
     * its CPU for the cases after it) */
    fprintf(stderr, "myna in %s was not ready after %d ms\n", p->dir, H_START_MS);
    h_stop(p, SIGKILL);
    return -1;
}

int h_fake_start(struct h_fake *f, const char *dir, const char *name, const char *bin,
                 const char *const *args)
{
    const char *argv[32];
    struct timespec pause = { 0, 10 * 1000 * 1000 };
    int n = 0;

    memset(f, 0, sizeof(*f));
    snprintf(f->log_path, sizeof(f->log_path), "%s/%s.log", dir, name);
    argv[n++] = bin;
    for (int i = 0; args && args[i] && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if ((f->pid = fork()) < 0)
        return -1;
    if (f->pid == 0) {
        int fd = open(f->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < H_START_MS / 10; i++) {
        char *log = slurp(f->log_path, NULL), *line;
        int port;
        if (log && (line = strstr(log, "event=ready public=127.0.0.1:")) != NULL &&
            sscanf(line, "event=ready public=127.0.0.1:%d", &port) == 1) {
            snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", port);
            free(log);
            return 0;
        }
        free(log);
        nanosleep(&pause, NULL);
    }
    h_fake_stop(f);
    return -1;
}

void h_fake_stop(struct h_fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

/* 1 if port can be bound on loopback now. */
static int port_free(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A port below the kernel's ephemeral range (ip_local_port_range): one
 * that bind(port 0) and connect() never hand out, so that between this
 * check and the bind of the server that is told it, no other process (the
 * fakes, a test running beside this one, the source port of any client)
 * can take it by chance. Drawn at random, so that tests beside each other
 * do not pick the same. Falls back to a port the kernel picks. */
int h_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd, port = -1, lo = 0, hi = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    static unsigned seed;  /* goes on from call to call: no port twice in a row */

    if (seed == 0)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    if (f != NULL) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 0;
        fclose(f);
    }
    if (lo > 10000 + 1000) {  /* 10000 up to the range: clear of the usual services */
        for (int i = 0; i < 200; i++) {
            seed = seed * 1103515245u + 12345u;
            port = 10000 + (int)((seed >> 8) % (unsigned)(lo - 10000));
            if (port_free(port))
                return port;
        }
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    port = -1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int h_connect(const char *url)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    const char *colon = strrchr(url, ':');
    int fd;

    if (colon == NULL || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int h_wait(int (*cond)(void *arg), void *arg, int timeout_ms)
{
    struct timespec pause = { 0, 20 * 1000 * 1000 };

    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (cond(arg))
            return 1;
        nanosleep(&pause, NULL);
    }
    return cond(arg);
}

struct myna_proc *h_launch(const char *instances_json, const char *const *extra)
{
    struct myna_proc *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    if (h_setup(p, instances_json) != 0 || h_start(p, extra) != 0) {
        h_release(p);
        return NULL;
    }
    return p;
}

void h_release(struct myna_proc *p)
{
    if (p != NULL)
        h_cleanup(p);
    free(p);
}

int h_stop_release(struct myna_proc *p)
{
    int rc = p != NULL && p->pid > 0 ? h_stop(p, SIGTERM) : 0;

    h_release(p);
    return rc == 0 ? 0 : -1;
}

int h_run(const char *const *args, char *out, size_t cap)
{
    return h_exec(MYNA_BIN, args, NULL, out, cap);
}

int h_run_input(const char *const *args, const char *input, char *out, size_t cap)
{
    return h_exec(MYNA_BIN, args, input, out, cap);
}

int h_exec(const char *bin, const char *const *args, const char *input, char *out, size_t cap)
{
    int pipefd[2], infd[2] = { -1, -1 }, status;
    const char *argv[32];
    size_t n = 0, argc = 0;
    pid_t pid;
    ssize_t r;

    argv[argc++] = bin;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    if (pipe(pipefd) != 0)
        return -1;
    if (input && pipe(infd) != 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        if (input) {
            dup2(infd[0], STDIN_FILENO);
            close(infd[0]);
            close(infd[1]);
        }
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    if (input) {  /* small: fits the pipe, so this cannot block on the child */
        close(infd[0]);
        if (write(infd[1], input, strlen(input)) < 0)
            n = 0;
        close(infd[1]);
    }
    while (cap > 1 && (r = read(pipefd[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    if (cap)
        out[n] = '\0';
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int h_stop(struct myna_proc *p, int sig)
{
    int status;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    if (waitpid(p->pid, &status, 0) != p->pid)
        return -1;
    p->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void h_cleanup(struct myna_proc *p)
{
    char cmd[400];

    if (p->pid > 0)
        h_stop(p, SIGKILL);
    if (getenv("MYNA_E2E_KEEP")) {  /* for looking at a failure */
        fprintf(stderr, "kept %s\n", p->dir);
        return;
    }
    if (p->dir[0] && strncmp(p->dir, "/tmp/myna-e2e.", 14) == 0) {
        if (sanitizer_report(p->dir))  /* kept: the test fails here */
            fail_msg("a sanitizer reported an error in %s (kept)", p->dir);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", p->dir);
    }
}

struct sink {
    char *buf;
    size_t cap, len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;

    if (s->buf && s->cap > 1) {
        size_t room = s->cap - 1 - s->len;
        size_t take = n < room ? n : room;
        memcpy(s->buf + s->len, ptr, take);
        s->len += take;
        s->buf[s->len] = '\0';
    }
    return n;
}

long h_http(const char *method, const char *url, const void *body, size_t len,
            const char *const *headers, char *resp, size_t cap)
{
    return h_http_ex(method, url, body, len, headers, resp, cap, NULL, 0);
}

long h_http_ex(const char *method, const char *url, const void *body, size_t len,
               const char *const *headers, char *resp, size_t cap, char *head, size_t hcap)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    struct sink s = { resp, cap, 0 }, hs = { head, hcap, 0 };
    long code = -1;

    if (c == NULL)
        return -1;
    if (resp && cap)
        resp[0] = '\0';
    if (head && hcap)
        head[0] = '\0';
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");  /* no 100-continue round trip */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");  /* the server under test, never a proxy */
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);  /* else curl waits for Content-Length bytes */
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return code;
}

int h_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);

    for (const char *l = head; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1, *end;
            while (*v == ' ')
                v++;
            for (end = v; *end && *end != '\r' && *end != '\n'; end++)
                ;
            snprintf(out, cap, "%.*s", (int)(end - v), v);
            return 1;
        }
    }
    if (cap)
        out[0] = '\0';
    return 0;
}

void h_sign(const char *secret, const void *body, size_t len, char out[72])
{
    struct myna_hmac_key *k = myna_hmac_key_new(secret, strlen(secret), NULL);

    out[0] = '\0';
    if (k)
        myna_signature_make(k, body, len, out);
    myna_hmac_key_free(k);
}

long h_post_signed(const char *base, const char *id, const char *secret, const void *body,
                   size_t len, char *resp, size_t cap)
{
    char url[300], sig[72], hdr[128];
    const char *headers[3] = { hdr, "Content-Type: application/json", NULL };

    snprintf(url, sizeof(url), "%s/webhook/%s", base, id);
    h_sign(secret, body, len, sig);
    snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig);
    return h_http("POST", url, body, len, headers, resp, cap);
}

char *h_read_data(const char *rel, size_t *len)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/%s", MYNA_TEST_DATA, rel);
    return slurp(path, len);
}

long h_db_count(const struct myna_proc *p, const char *id, const char *table,
                const char *where)
{
    char path[400], sql[1200];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;

    /* the ingress's tables are in <id>.db, the bot's in <id>.bot.db */
    snprintf(path, sizeof(path), "%s/var/instances/%s%s.db", p->dir, id,
             strcmp(table, "inbox") == 0 || strcmp(table, "messages") == 0 ||
             strcmp(table, "statuses") == 0 ? "" : ".bot");
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s%s%s", table, where ? " WHERE " : "",
             where ? where : "");
    /* a read may meet the writer resetting its log: it waits, as the
     * writers' own readers do */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

sqlite3 *h_db_lock(const struct myna_proc *p, const char *file)
{
    char path[400];
    sqlite3 *db = NULL;

    snprintf(path, sizeof(path), "%s/var/instances/%s", p->dir, file);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int h_db_unlock(sqlite3 *db, const char *end)
{
    int rc = sqlite3_exec(db, end, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;

    return sqlite3_close(db) == SQLITE_OK ? rc : -1;
}

double h_metric(const struct myna_proc *p, const char *name)
{
    static char text[256 * 1024];
    char url[200];
    size_t nl = strlen(name);

    snprintf(url, sizeof(url), "%s/metrics", p->admin_url);
    if (h_http("GET", url, NULL, 0, NULL, text, sizeof(text)) != 200)
        return -1;
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, nl) == 0 && line[nl] == ' ')
            return strtod(line + nl + 1, NULL);
    return -1;
}
