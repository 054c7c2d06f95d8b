/* chat.c - the terminal simulator client (blocking libcurl: it is a CLI). */
#include "cli/chat.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/api.h"
#include "core/buf.h"
#include "core/util.h"
#include "core/banned.h"

#define POLL_MS 400
#define QUIET_MS 1500          /* after the input ended: replies came, then this much quiet */
#define SEEN_MAX 512           /* the bot's messages already printed */
#define OPTIONS_MAX 10
#define LINE_MAX_BYTES 16384  /* a line of this much or more (without its newline) is dropped */
#define READ_CHUNK 4096

struct option_item {
    char kind;                 /* 'b' button, 'l' list row */
    char *id, *title, *description;
};

struct chat {
    const struct myna_chat_opts *o;
    FILE *out, *err;
    struct myna_api api;
    long long seq;
    char seen[SEEN_MAX][64];
    size_t n_seen;
    struct option_item opts[OPTIONS_MAX];
    size_t n_opts;
    char opts_of[128];         /* the wamid of the message the options belong to */
    int typing;
    int64_t last_reply_ms;     /* when a bot message was last printed */
    size_t n_unsent;           /* lines refused, dropped or naming no option */
};

static long request(struct chat *c, const char *path, const char *body)
{
    return myna_api_call(&c->api, body ? "POST" : "GET", path, body);
}

static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void print_failure(struct chat *c, const char *what, long status)
{
    myna_api_print_error(&c->api, what, status, c->err);
}

static void options_clear(struct chat *c)
{
    for (size_t i = 0; i < c->n_opts; i++) {
        free(c->opts[i].id);
        free(c->opts[i].title);
        free(c->opts[i].description);
    }
    c->n_opts = 0;
    c->opts_of[0] = '\0';
}

static void option_add(struct chat *c, char kind, const cJSON *o)
{
    const char *id = get_str(o, "id"), *title = get_str(o, "title"),
               *d = get_str(o, "description");
    struct option_item *it;

    if (id == NULL || title == NULL || c->n_opts == OPTIONS_MAX)
        return;
    it = &c->opts[c->n_opts];
    it->kind = kind;
    it->id = strdup(id);
    it->title = strdup(title);
    it->description = d && *d ? strdup(d) : NULL;
    if (it->id && it->title)
        c->n_opts++;
    fprintf(c->out, "     [/%zu] ", c->n_opts);
    myna_api_put_text(c->out, title, 0);
    if (d && *d) {
        fputs(" - ", c->out);
        myna_api_put_text(c->out, d, 0);
    }
    fputc('\n', c->out);
}

static int seen(struct chat *c, const char *id)
{
    for (size_t i = 0; i < c->n_seen && i < SEEN_MAX; i++)
        if (strcmp(c->seen[i], id) == 0)
            return 1;
    snprintf(c->seen[c->n_seen++ % SEEN_MAX], sizeof(c->seen[0]), "%s", id);
    return 0;
}

static void show(struct chat *c, const cJSON *ev)
{
    const char *dir = get_str(ev, "dir"), *id = get_str(ev, "id"), *text = get_str(ev, "text"),
               *status = get_str(ev, "status"), *error = get_str(ev, "error");
    const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(ev, "buttons"),
                *list = cJSON_GetObjectItemCaseSensitive(ev, "list"), *it, *sec;

    if (dir == NULL || id == NULL)
        return;
    if (strcmp(dir, "in") == 0) {  /* our own: only a failure is news */
        if (status && strcmp(status, "failed") == 0 && !seen(c, id)) {
            fputs("  ! not delivered: ", c->out);
            myna_api_put_text(c->out, error ? error : "failed", 0);
            fputc('\n', c->out);
        }
        return;
    }
    if (seen(c, id))
        return;
    fputs("bot: ", c->out);
    myna_api_put_text(c->out, text ? text : "", 1);
    fputc('\n', c->out);
    c->last_reply_ms = myna_mono_ms();
    if (cJSON_IsArray(buttons) || cJSON_IsObject(list)) {
        options_clear(c);
        snprintf(c->opts_of, sizeof(c->opts_of), "%s", id);
    }
    cJSON_ArrayForEach(it, buttons)
        option_add(c, 'b', it);
    if (cJSON_IsObject(list)) {
        const char *label = get_str(list, "button");
        if (label) {
            fputs("     (", c->out);
            myna_api_put_text(c->out, label, 0);
            fputs(")\n", c->out);
        }
        cJSON_ArrayForEach(sec, cJSON_GetObjectItemCaseSensitive(list, "sections"))
            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sec, "rows"))
                option_add(c, 'l', it);
    }
}

static int poll_events(struct chat *c)
{
    char path[256];
    long st;
    cJSON *r;
    const cJSON *ev, *seq, *typing;

    snprintf(path, sizeof(path), "/sim/%s/events?contact=%s&after=%lld", c->o->instance,
             c->o->from, c->seq);
    if ((st = request(c, path, NULL)) != 200) {
        print_failure(c, "events", st);
        return -1;
    }
    if (!cJSON_IsObject(r = cJSON_Parse(c->api.resp.data))) {
        myna_api_print_bad_answer(&c->api, "events", c->err);
        cJSON_Delete(r);
        return -1;
    }
    seq = cJSON_GetObjectItemCaseSensitive(r, "seq");
    typing = cJSON_GetObjectItemCaseSensitive(r, "typing");
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(r, "events"))
        show(c, ev);
    if (cJSON_IsTrue(typing) && !c->typing && isatty(fileno(c->out)))
        fprintf(c->out, "     (typing...)\n");
    c->typing = cJSON_IsTrue(typing);
    /* below 2^53: a double holds it exactly, and the cast is defined */
    if (cJSON_IsNumber(seq) && seq->valuedouble > (double)c->seq &&
        seq->valuedouble < 9007199254740992.0)
        c->seq = (long long)seq->valuedouble;
    cJSON_Delete(r);
    fflush(c->out);
    return 0;
}

static int send_line(struct chat *c, const char *line)
{
    cJSON *o = cJSON_CreateObject(), *r;
    char *body, path[160];
    long st;
    int rc = 0;

    cJSON_AddStringToObject(o, "from", c->o->from);
    cJSON_AddStringToObject(o, "name", c->o->name);
    /* a pick is the whole line: "/2 people" is a message like any other */
    if (line[0] == '/' && line[1] >= '1' && line[1] <= '9' &&
        line[1 + strspn(line + 1, "0123456789")] == '\0') {
        int64_t n;
        size_t k = myna_parse_i64(line + 1, 1, OPTIONS_MAX, &n) == 0 ? (size_t)n : 0;
        if (k == 0 || k > c->n_opts) {
            fprintf(c->out, "  ! no option %s (the last message has %zu)\n", line, c->n_opts);
            c->n_unsent++;
            cJSON_Delete(o);
            return 0;
        }
        r = cJSON_AddObjectToObject(o, c->opts[k - 1].kind == 'b' ? "button" : "list");
        cJSON_AddStringToObject(r, "id", c->opts[k - 1].id);
        cJSON_AddStringToObject(r, "title", c->opts[k - 1].title);
        if (c->opts[k - 1].description)
            cJSON_AddStringToObject(r, "description", c->opts[k - 1].description);
        cJSON_AddStringToObject(o, "context", c->opts_of);
        fputs("you: ", c->out);  /* the title came from the server */
        myna_api_put_text(c->out, c->opts[k - 1].title, 0);
        fputc('\n', c->out);
    } else {
        cJSON_AddStringToObject(o, "text", line);
    }
    body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (body == NULL)
        return -1;
    snprintf(path, sizeof(path), "/sim/%s/send", c->o->instance);
    if ((st = request(c, path, body)) != 200) {
        cJSON *answer = st > 0 ? cJSON_Parse(c->api.resp.data) : NULL;
        const char *id = get_str(answer, "id");
        if (id)
            seen(c, id);  /* its failed event, polled later, is this same failure */
        cJSON_Delete(answer);
        print_failure(c, "send", st);
        c->n_unsent++;
        rc = st < 0 ? -1 : 0;  /* a refused message is shown, the chat goes on */
    }
    free(body);
    return rc;
}

/* Appends what input there is to acc, which holds whole lines, then the
 * start of the next. A line of LINE_MAX_BYTES or more is dropped whole, with
 * a word on err and counted in *n_dropped, and the lines after it are kept:
 * *dropping says that the end of a dropped line has not come yet. -1 at the
 * end of input. */
static int read_input(int fd, struct myna_buf *acc, int *dropping, size_t *n_dropped, FILE *err)
{
    char chunk[READ_CHUNK];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    const char *p = chunk, *end;

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0)
        return -1;
    for (end = chunk + n; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
        const char *last = acc->len ? memrchr(acc->data, '\n', acc->len) : NULL;
        size_t start = last ? (size_t)(last + 1 - acc->data) : 0; /* of the line being read */

        if (!*dropping && (acc->len - start + k - (nl != NULL) >= LINE_MAX_BYTES ||
                           myna_buf_append(acc, p, k) != 0)) {
            acc->len = start;  /* what came of it before goes too */
            if (acc->data)
                acc->data[start] = '\0';
            *dropping = 1;
            (*n_dropped)++;
            fprintf(err, "myna chat: a line of %d KiB or more was dropped, not sent\n",
                    LINE_MAX_BYTES / 1024);
        }
        if (nl)
            *dropping = 0;
        p += k;
    }
    return 0;
}

/* Takes the next whole line out of acc into line; 1 if there was one. */
static int next_line(struct myna_buf *acc, char *line, size_t cap)
{
    char *nl = acc->len ? memchr(acc->data, '\n', acc->len) : NULL;
    size_t k;

    if (nl == NULL)
        return 0;
    k = (size_t)(nl - acc->data);
    snprintf(line, cap, "%.*s", (int)k, acc->data);
    if (k > 0 && k < cap && line[k - 1] == '\r')
        line[k - 1] = '\0';
    memmove(acc->data, nl + 1, acc->len - k - 1);
    acc->len -= k + 1;
    return 1;
}

int myna_chat_run(const struct myna_chat_opts *o, FILE *in, FILE *out, FILE *err)
{
    struct chat c;
    /* a line being read and what one read() may add after it */
    struct myna_buf acc = MYNA_BUF_INIT(LINE_MAX_BYTES + READ_CHUNK);
    char path[160], line[LINE_MAX_BYTES];
    int64_t eof_ms = 0, sent_ms = 0;
    int rc = 0, fd = fileno(in), dropping = 0;
    long st;

    memset(&c, 0, sizeof(c));
    c.o = o;
    c.out = out;
    c.err = err;
    if (myna_api_init(&c.api, o->admin_url, NULL) != 0) {
        fprintf(err, "myna chat: cannot start libcurl\n");
        return 1;
    }
    snprintf(path, sizeof(path), "/sim/%s/info", o->instance);
    if ((st = request(&c, path, NULL)) != 200) {
        print_failure(&c, o->instance, st);
        rc = 1;
        goto out;
    }
    if (isatty(fd))
        fprintf(out, "Chatting with '%s' as +%s. Type a message; /1, /2 ... picks an option; "
                     "/quit ends.\n", o->instance, o->from);
    if (poll_events(&c) != 0) {
        rc = 1;
        goto out;
    }
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        int64_t now;
        if (!eof_ms && poll(&p, 1, POLL_MS) > 0) {
            if (read_input(fd, &acc, &dropping, &c.n_unsent, err) < 0) {
                eof_ms = myna_mono_ms();
                if (acc.len > 0)  /* a last line without its newline */
                    myna_buf_append(&acc, "\n", 1);
            }
            while (next_line(&acc, line, sizeof(line))) {
                if (strcmp(line, "/quit") == 0) {
                    eof_ms = -1;
                    break;
                }
                if (line[0] == '\0')
                    continue;
                if (send_line(&c, line) != 0) {
                    rc = 1;
                    goto out;
                }
                sent_ms = myna_mono_ms();
            }
            if (eof_ms == -1)
                break;
        } else if (eof_ms) {
            usleep(POLL_MS * 1000);
        }
        if (poll_events(&c) != 0) {
            rc = 1;
            goto out;
        }
        now = myna_mono_ms();
        /* the input is over: wait for the answers to what was sent */
        if (eof_ms && (sent_ms == 0 || now - eof_ms >= o->linger_ms ||
                       (c.last_reply_ms > sent_ms && now - c.last_reply_ms >= QUIET_MS)))
            break;
    }
    /* piped input is a script's: it learns that a line did not go, which a
     * person at a terminal saw and could type again */
    if (c.n_unsent > 0 && !isatty(fd))
        rc = 1;
out:
    options_clear(&c);
    myna_buf_release(&acc);
    myna_api_release(&c.api);
    return rc;
}
