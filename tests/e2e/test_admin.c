/* test_admin.c - the admin API end to end: the real master and bots,
 * instances made, chatted with through the simulator, changed, stopped and
 * deleted through the API; the role matrix; bad input; secrets at rest; the
 * CLI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/util.h"
#include "harness.h"

#define ADMIN_TOKEN "myna_AdminTokenForTheEndToEndTestsOnly0123456789"

struct ctx {
    struct myna_proc p;
    char resp[512 * 1024];
};

static struct ctx *C;

/* A master of its own, whose admin token is ADMIN_TOKEN. */
static struct myna_proc *launch(const char *const *extra)
{
    struct myna_proc *p;

    setenv("MYNA_ADMIN_TOKEN", ADMIN_TOKEN, 1);
    p = h_launch(NULL, extra);
    unsetenv("MYNA_ADMIN_TOKEN");
    assert_non_null(p);
    return p;
}

/* An admin API call to p; the answer goes to C->resp. */
static long api_at(const struct myna_proc *p, const char *token, const char *method,
                   const char *path, const char *body)
{
    char url[sizeof(p->admin_url) + 512], auth[200];
    const char *h[] = { "Content-Type: application/json", auth, NULL };

    snprintf(url, sizeof(url), "%s%s", p->admin_url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
    return h_http(method, url, body, body ? strlen(body) : 0, h, C->resp, sizeof(C->resp));
}

static long api(const char *token, const char *method, const char *path, const char *body)
{
    return api_at(&C->p, token, method, path, body);
}

/* A field of the last answer (a JSON object). */
static const char *answer_str(const char *key, char *out, size_t cap)
{
    cJSON *o = cJSON_Parse(C->resp);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    snprintf(out, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(o);
    return out;
}

static int setup(void **state)
{
    const char *extra[] = { "--bots", "1", NULL };

    C = calloc(1, sizeof(*C));
    setenv("MYNA_ADMIN_TOKEN", ADMIN_TOKEN, 1);
    if (C == NULL || h_setup(&C->p, NULL) != 0 || h_start(&C->p, extra) != 0)
        return -1;
    unsetenv("MYNA_ADMIN_TOKEN");
    *state = C;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(h_stop(&C->p, SIGTERM), 0);
    h_cleanup(&C->p);
    free(C);
    return 0;
}

/* A number field of the last answer (a JSON object), or -1. */
static double answer_num(const char *key)
{
    cJSON *o = cJSON_Parse(C->resp);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;

    cJSON_Delete(o);
    return d;
}

/* The "id" of the first object of the array answered last, or -1. */
static double first_id(void)
{
    cJSON *arr = cJSON_Parse(C->resp);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "id");
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;

    cJSON_Delete(arr);
    return d;
}

/* How many of the newest 1000 rows of p's audit log are of action on
 * target with a detail (as JSON text) that contains detail (NULL: any, "":
 * none); -1 if the log cannot be read. */
static int audit_count(const struct myna_proc *p, const char *action, const char *target,
                       const char *detail)
{
    cJSON *arr, *row;
    int found = 0;

    if (api_at(p, ADMIN_TOKEN, "GET", "/admin/audit?limit=1000", NULL) != 200)
        return -1;
    arr = cJSON_Parse(C->resp);
    cJSON_ArrayForEach(row, arr) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, "action"),
                    *t = cJSON_GetObjectItemCaseSensitive(row, "target"),
                    *d = cJSON_GetObjectItemCaseSensitive(row, "detail");
        char *text = d ? cJSON_PrintUnformatted(d) : NULL;
        if (cJSON_IsString(a) && strcmp(a->valuestring, action) == 0 && cJSON_IsString(t) &&
            strcmp(t->valuestring, target) == 0 &&
            (detail == NULL || (*detail == '\0' ? d == NULL : text && strstr(text, detail))))
            found++;
        free(text);
    }
    cJSON_Delete(arr);
    return found;
}

/* 1 if the newest 1000 rows of p's audit log hold one of action on target
 * whose detail (as JSON text) contains detail (NULL: any, "": none). */
static int audit_has(const struct myna_proc *p, const char *action, const char *target,
                     const char *detail)
{
    return audit_count(p, action, target, detail) > 0;
}

struct state_want {
    const char *id, *state;
};

static int in_state_of(const struct myna_proc *p, const struct state_want *w)
{
    char path[200], st[32];

    snprintf(path, sizeof(path), "/admin/whatsapp/instances/%s/status", w->id);
    return api_at(p, ADMIN_TOKEN, "GET", path, NULL) == 200 &&
           strcmp(answer_str("state", st, sizeof(st)), w->state) == 0;
}

static int in_state(void *arg)
{
    return in_state_of(&C->p, arg);
}

static int both_sent(void *arg)
{
    (void)arg;
    return api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/support-bot/stats", NULL) == 200 &&
           strstr(C->resp, "\"messages_out\":2") != NULL;
}

struct restarts_want {
    int at_least;
};

static int restarted(void *arg)
{
    struct restarts_want *w = arg;
    cJSON *o;
    const cJSON *r;
    int ok;

    if (api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/support-bot/status", NULL) != 200)
        return 0;
    o = cJSON_Parse(C->resp);
    r = cJSON_GetObjectItemCaseSensitive(o, "restarts");
    ok = cJSON_IsNumber(r) && r->valuedouble >= w->at_least;
    cJSON_Delete(o);
    return ok;
}

struct reply_want {
    const char *id, *contact, *text;
};

static int has_reply(void *arg)
{
    struct reply_want *w = arg;
    char path[300];

    snprintf(path, sizeof(path), "/sim/%s/events?contact=%s&after=0", w->id, w->contact);
    return api(NULL, "GET", path, NULL) == 200 && strstr(C->resp, w->text) != NULL;
}

static void say(const char *id, const char *contact, const char *text)
{
    char path[200], body[400];

    snprintf(path, sizeof(path), "/sim/%s/send", id);
    snprintf(body, sizeof(body), "{\"from\":\"%s\",\"text\":\"%s\"}", contact, text);
    assert_int_equal(api(NULL, "POST", path, body), 200);
}

/* Create, chat, update, stop (messages wait), start (answered), delete. */
static void test_lifecycle(void **state)
{
    struct state_want running = { "support-bot", "running" }, stopped = { "support-bot", "stopped" };
    struct reply_want hours = { "support-bot", "15550001111", "Open 9-18." };
    struct reply_want later = { "support-bot", "15550002222", "Sorry, we are closed." };
    char id[64];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Support Bot\",\"provider\":\"sim\",\"batch\":{\"window_ms\":150},"
                         "\"faq\":[{\"q\":[\"when are you open\"],\"a\":\"Open 9-18.\"}]}"),
                     201);
    assert_string_equal(answer_str("id", id, sizeof(id)), "support-bot");
    assert_true(h_wait(in_state, &running, 10000));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances", NULL), 200);
    assert_non_null(strstr(C->resp, "\"id\":\"support-bot\""));

    say("support-bot", "15550001111", "when are you open?");
    assert_true(h_wait(has_reply, &hours, 10000));

    /* a change reaches the running bot */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/support-bot",
                         "{\"fallback_text\":\"Sorry, we are closed.\"}"),
                     200);
    assert_non_null(strstr(C->resp, "Sorry, we are closed."));
    assert_true(h_wait(in_state, &running, 10000));

    /* stopped: the webhook is still taken, and answered after the start */
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/support-bot/stop", ""),
                     200);
    assert_true(h_wait(in_state, &stopped, 10000));
    say("support-bot", "15550002222", "is anyone there");
    {
        struct timespec t = { 0, 500 * 1000000L };
        nanosleep(&t, NULL);
    }
    assert_false(has_reply(&later));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/support-bot/start", ""),
                     200);
    assert_true(h_wait(has_reply, &later, 10000));

    assert_true(h_wait(both_sent, NULL, 5000));  /* Meta's answer is recorded just after */
    assert_non_null(strstr(C->resp, "\"inbox_consumed\":2"));
    assert_non_null(strstr(C->resp, "\"inbox_depth\":0"));
    assert_non_null(strstr(C->resp, "\"turns\":2"));
    {   /* a restart keeps auto_start and counts */
        struct restarts_want w = { 1 };
        assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/support-bot/restart",
                             ""),
                         200);
        assert_true(h_wait(restarted, &w, 10000));
        assert_true(h_wait(in_state, &running, 10000));
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/support-bot", NULL),
                         200);
        assert_non_null(strstr(C->resp, "\"auto_start\":true"));
    }
    {   /* a log holds customers' numbers (and their messages at debug): no
         * cache keeps it, as no JSON answer is kept */
        const char *h[] = { "Authorization: Bearer " ADMIN_TOKEN, NULL };
        char url[sizeof(C->p.admin_url) + 128], head[4096], cc[64] = "";
        snprintf(url, sizeof(url), "%s/admin/whatsapp/instances/support-bot/logs?lines=5",
                 C->p.admin_url);
        assert_int_equal(h_http_ex("GET", url, NULL, 0, h, C->resp, sizeof(C->resp), head,
                                   sizeof(head)),
                         200);
        assert_non_null(strstr(C->resp, "event="));
        assert_true(h_header(head, "Cache-Control", cc, sizeof(cc)));
        assert_string_equal(cc, "no-store");
    }

    /* a second instance of the same name gets its own id */
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Support Bot\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    assert_string_equal(answer_str("id", id, sizeof(id)), "support-bot-2");
    /* never started: no log yet (404); a log that cannot be read is no
     * missing log (500) */
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/support-bot-2/logs", NULL),
                     404);
    {
        char dir[400];
        snprintf(dir, sizeof(dir), "%s/var/logs/support-bot-2.log", C->p.dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/support-bot-2/logs",
                             NULL),
                         500);
        assert_non_null(strstr(C->resp, "the log cannot be read"));
        assert_int_equal(rmdir(dir), 0);
    }

    assert_int_equal(api(ADMIN_TOKEN, "DELETE", "/admin/whatsapp/instances/support-bot", NULL),
                     200);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/support-bot", NULL), 404);
    assert_int_equal(api(NULL, "POST", "/sim/support-bot/send",
                         "{\"from\":\"1555\",\"text\":\"x\"}"),
                     404);
    {   /* its data waits in the trash */
        char dir[400];
        DIR *d;
        struct dirent *e;
        int found = 0;
        snprintf(dir, sizeof(dir), "%s/var/trash", C->p.dir);
        for (int i = 0; i < 100 && !found; i++) {
            struct timespec t = { 0, 50 * 1000000L };
            if ((d = opendir(dir)) != NULL) {
                while ((e = readdir(d)) != NULL)
                    found |= strncmp(e->d_name, "support-bot-1", 13) == 0;
                closedir(d);
            }
            if (!found)
                nanosleep(&t, NULL);
        }
        assert_true(found);
    }
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit", NULL), 200);
    assert_non_null(strstr(C->resp, "instance.delete"));
    assert_non_null(strstr(C->resp, "instance.create"));
    {   /* the next page starts below the last id seen */
        char path[96];
        double newest, next;
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit?limit=1", NULL), 200);
        assert_non_null(strstr(C->resp, "instance.delete"));
        newest = first_id();
        snprintf(path, sizeof(path), "/admin/audit?limit=1&before=%.0f", newest);
        assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 200);
        next = first_id();
        assert_true(next > 0 && next < newest);
        assert_null(strstr(C->resp, "instance.delete"));
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit?before=1", NULL), 200);
        assert_string_equal(C->resp, "[]");
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit?before=0", NULL), 400);
        assert_non_null(strstr(C->resp, "'before' an id from 1"));
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit?before=x", NULL), 400);
    }
}

static void test_bad_input(void **state)
{
    static char big[2 << 20];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"X\",\"provider\":\"cloud\",\"phone_number_id\":\"1\","
                         "\"llm\":{\"url\":\"ftp://x\",\"model\":\"m\"},\"colour\":1}"),
                     400);
    assert_non_null(strstr(C->resp, "\"field\":\"llm.url\""));
    assert_non_null(strstr(C->resp, "\"field\":\"app_secret\""));
    assert_non_null(strstr(C->resp, "\"field\":\"colour\""));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances", "{nope"), 400);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances", "[1]"), 400);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":7,\"provider\":\"sim\"}"),
                     400);
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances", big), 413);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/..%2F..%2Fetc", NULL), 404);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/../control.db", NULL),
                     404);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/NOPE", NULL), 404);
    assert_int_equal(api(ADMIN_TOKEN, "PATCH", "/admin/whatsapp/instances", "{}"), 405);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/nothing", NULL), 404);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances", NULL), 200);
}

/* A PUT's fields are checked as a create's: a name in another case is a
 * field of its own, refused as unknown (not a server error); a field given
 * twice is refused; and a body of many unknown fields is refused before it
 * is merged, at once (merged, it held the loop for seconds). */
static void test_update_fields_checked(void **state)
{
    static char many[1 << 20];
    size_t len = 0;
    int64_t t0, ms;

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Patchy\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/patchy",
                         "{\"NAME\":\"x\"}"),
                     400);
    assert_non_null(strstr(C->resp, "{\"field\":\"NAME\",\"error\":\"unknown field\"}"));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/patchy", NULL), 200);
    assert_non_null(strstr(C->resp, "\"name\":\"Patchy\""));
    assert_false(h_log_contains(&C->p, "out of memory"));

    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/patchy",
                         "{\"name\":\"A\",\"fallback_text\":\"f\",\"name\":\"B\"}"),
                     400);
    assert_non_null(strstr(C->resp, "{\"field\":\"name\",\"error\":\"appears twice\"}"));
    /* a second value after the first, or a NUL that would cut a string
     * short ("x\u0000y" kept as "x"), is not taken */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/patchy",
                         "{\"fallback_text\":\"f\"}{\"name\":\"B\"}"),
                     400);
    assert_non_null(strstr(C->resp, "bytes after the JSON value"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/patchy",
                         "{\"name\":\"x\\u0000y\"}"),
                     400);
    assert_non_null(strstr(C->resp, "NUL character"));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Other\",\"provider\":\"sim\"} x"),
                     400);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/other", NULL), 404);

    many[len++] = '{';
    for (int i = 0; i < 80000; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len, "%s\"k%d\":1", i ? "," : "", i);
    many[len++] = '}';
    assert_true(len < sizeof(many) - 1);
    t0 = myna_mono_ms();
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/patchy", many), 400);
    ms = myna_mono_ms() - t0;
    assert_non_null(strstr(C->resp, "{\"field\":\"k0\",\"error\":\"unknown field\"}"));
    assert_true(ms < 3000);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/patchy", NULL), 200);
    assert_non_null(strstr(C->resp, "\"name\":\"Patchy\""));
}

/* "id": null is the same as leaving the id out, as null is for every
 * field: a create makes the id from the name, a PUT keeps the id. Both
 * were refused with 400 ("must be 1-64 characters", "cannot be changed"),
 * so a client that sends its unset fields as null could not use them. */
static void test_null_id_is_left_out(void **state)
{
    char id[80];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"id\":null,\"name\":\"Null Id\",\"provider\":\"sim\","
                         "\"auto_start\":false}"),
                     201);
    assert_string_equal(answer_str("id", id, sizeof(id)), "null-id");
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/null-id",
                         "{\"id\":null,\"name\":\"Renamed\"}"),
                     200);
    assert_string_equal(answer_str("id", id, sizeof(id)), "null-id");
    assert_string_equal(answer_str("name", id, sizeof(id)), "Renamed");
    /* a string is still checked */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/null-id",
                         "{\"id\":\"other\"}"),
                     400);
    assert_non_null(strstr(C->resp, "cannot be changed"));
    assert_int_equal(api(ADMIN_TOKEN, "DELETE", "/admin/whatsapp/instances/null-id", NULL), 200);
}

/* 1 if p's data dir holds instances/<file>. */
static int instance_file_exists(const struct myna_proc *p, const char *file)
{
    char path[600];
    struct stat st;

    snprintf(path, sizeof(path), "%s/var/instances/%s", p->dir, file);
    return stat(path, &st) == 0;
}

/* Reads of an instance whose bot never ran make no store for it: its
 * status and stats have no counts, its contacts answer 503 until its bot
 * made its store, and so does a change to one, before its body is read. */
static void test_reads_make_no_bot_store(void **state)
{
    const char *contact = "/admin/whatsapp/instances/unborn/contacts/15550008888";
    char guest[80], path[200];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Unborn\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens",
                         "{\"name\":\"watch\",\"role\":\"guest\"}"),
                     201);
    answer_str("token", guest, sizeof(guest));
    assert_int_equal(api(guest, "GET", "/admin/whatsapp/instances/unborn/status", NULL), 200);
    assert_null(strstr(C->resp, "outbox_open"));
    assert_int_equal(api(guest, "GET", "/admin/whatsapp/instances/unborn/stats", NULL), 200);
    assert_null(strstr(C->resp, "outbox_open"));
    assert_false(instance_file_exists(&C->p, "unborn.bot.db"));

    assert_int_equal(api(ADMIN_TOKEN, "GET", contact, NULL), 503);
    assert_non_null(strstr(C->resp, "the instance's bot has no store yet: start it once"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", contact, "{\"nope\":1}"), 503);
    snprintf(path, sizeof(path), "%s/messages", contact);
    assert_int_equal(api(ADMIN_TOKEN, "POST", path, "{\"text\":\"hi\"}"), 503);
    assert_false(instance_file_exists(&C->p, "unborn.bot.db"));
}

/* 1 if the last answer is valid UTF-8 and JSON. */
static int answer_is_json(void)
{
    cJSON *o;

    if (myna_utf8_count(C->resp) == (size_t)-1 || (o = cJSON_Parse(C->resp)) == NULL)
        return 0;
    cJSON_Delete(o);
    return 1;
}

/* What the API stores from a body is shown again as JSON: text that is not
 * UTF-8 is refused (400), and the answers and the audit log stay UTF-8. */
static void test_stored_text_is_utf8(void **state)
{
    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"x\xff\"}"), 400);
    assert_true(answer_is_json());
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"x\",\"user\":\"b\xff\"}"),
                     400);
    assert_true(answer_is_json());
    {   /* a name too long to keep is a field's fault (400), not the body's (413) */
        char body[400];
        snprintf(body, sizeof(body), "{\"name\":\"%0257d\"}", 0);
        assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", body), 400);
        assert_non_null(strstr(C->resp, "'name' is longer than 256 bytes"));
    }
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"bo\xff" "b\"}"), 400);
    assert_true(answer_is_json());

    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Bad\xff\",\"provider\":\"sim\",\"auto_start\":false}"),
                     400);
    assert_true(answer_is_json());
    assert_non_null(strstr(C->resp, "{\"field\":\"name\",\"error\":\"must be valid UTF-8\"}"));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Utf\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/utf",
                         "{\"name\":\"Utf \xc3\"}"),
                     400);
    assert_non_null(strstr(C->resp, "{\"field\":\"name\",\"error\":\"must be valid UTF-8\"}"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/utf",
                         "{\"faq\":[{\"q\":[\"x\"],\"a\":\"\xed\xa0\x80\"}]}"),
                     400);
    assert_non_null(strstr(C->resp, "{\"field\":\"faq\",\"error\":\"must be valid UTF-8\"}"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/utf", "{\"\xfe\":1}"), 400);
    assert_true(answer_is_json());
    /* UTF-8 beyond ASCII is welcome */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/utf",
                         "{\"name\":\"Caf\xc3\xa9\"}"),
                     200);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"caf\xc3\xa9\"}"),
                     201);

    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit?limit=1000", NULL), 200);
    assert_true(answer_is_json());
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/tokens", NULL), 200);
    assert_true(answer_is_json());
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances", NULL), 200);
    assert_true(answer_is_json());
}

/* A user's name in a path is percent-decoded, as clients encode its '@':
 * the admin and the user itself reach bob@example.com as
 * bob%40example.com; a bad escape or %00 is refused. */
static void test_user_name_in_path_decoded(void **state)
{
    char bob[80];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users",
                         "{\"name\":\"bob@example.com\",\"role\":\"user\"}"),
                     201);
    answer_str("token", bob, sizeof(bob));
    assert_int_equal(api(bob, "PUT", "/admin/users/bob%40example.com",
                         "{\"password\":\"bob-secret-9\"}"),
                     200);
    assert_non_null(strstr(C->resp, "\"name\":\"bob@example.com\""));
    assert_non_null(strstr(C->resp, "\"password\":true"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/bob%40example%2ecom",
                         "{\"disabled\":true}"),
                     200);
    assert_non_null(strstr(C->resp, "\"disabled\":true"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/bob@example.com",
                         "{\"disabled\":false}"),
                     200);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/bob%4", "{\"disabled\":true}"), 400);
    assert_non_null(strstr(C->resp, "not valid percent-encoded UTF-8"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/bob%zz", "{\"disabled\":true}"), 400);
    assert_non_null(strstr(C->resp, "not valid percent-encoded UTF-8"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/bob%00x", "{\"disabled\":true}"), 400);
    assert_non_null(strstr(C->resp, "not valid percent-encoded UTF-8"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/bob%ff", "{\"disabled\":true}"), 400);
    assert_non_null(strstr(C->resp, "not valid percent-encoded UTF-8"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/nobody%40example.com",
                         "{\"disabled\":true}"),
                     404);
    assert_true(audit_has(&C->p, "user.update", "bob@example.com", "\"disabled\":true"));
}

/* A PUT that points llm.url elsewhere must give llm.api_key again: a kept
 * key would go to the new host. The same url keeps it. */
static void test_new_llm_url_needs_the_key_again(void **state)
{
    const char *path = "/admin/whatsapp/instances/keyed";

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Keyed\",\"provider\":\"sim\",\"auto_start\":false,"
                         "\"llm\":{\"url\":\"https://llm.example/v1\",\"model\":\"m\","
                         "\"api_key\":\"sk-first-1234\"}}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path,
                         "{\"llm\":{\"url\":\"https://elsewhere.example/v1\",\"model\":\"m\"}}"),
                     400);
    assert_non_null(strstr(C->resp, "\"field\":\"llm.api_key\""));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path,
                         "{\"llm\":{\"url\":\"https://elsewhere.example/v1\",\"model\":\"m\","
                         "\"api_key\":\"\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "1234\"}}"),
                     400);
    assert_non_null(strstr(C->resp, "\"field\":\"llm.api_key\""));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/keyed?secrets=1", NULL),
                     200);
    assert_non_null(strstr(C->resp, "https://llm.example/v1"));
    assert_non_null(strstr(C->resp, "sk-first-1234"));

    /* the same url keeps the key; a new url with its key is taken */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path,
                         "{\"llm\":{\"url\":\"https://llm.example/v1\",\"model\":\"m2\"}}"),
                     200);
    assert_non_null(strstr(C->resp, "1234\""));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path,
                         "{\"llm\":{\"url\":\"https://elsewhere.example/v1\",\"model\":\"m\","
                         "\"api_key\":\"sk-second-5678\"}}"),
                     200);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/keyed?secrets=1", NULL),
                     200);
    assert_non_null(strstr(C->resp, "https://elsewhere.example/v1"));
    assert_non_null(strstr(C->resp, "sk-second-5678"));
    assert_null(strstr(C->resp, "sk-first-1234"));

    /* the Meta token and graph_url the same way */
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Tok\",\"id\":\"tok\",\"provider\":\"cloud\","
                         "\"auto_start\":false,\"phone_number_id\":\"5550001\","
                         "\"access_token\":\"EAAG-first-4321\",\"app_secret\":\"s\","
                         "\"verify_token\":\"v\"}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/tok",
                         "{\"graph_url\":\"https://graph.elsewhere.example/v25.0\"}"),
                     400);
    assert_non_null(strstr(C->resp, "\"field\":\"access_token\""));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/tok",
                         "{\"name\":\"Tok 2\"}"),
                     200);   /* the token stays where it was given */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/tok",
                         "{\"graph_url\":\"https://graph.elsewhere.example/v25.0\","
                         "\"access_token\":\"EAAG-second-8765\"}"),
                     200);
    /* null is Meta's own host: another host for the token too */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/tok",
                         "{\"graph_url\":null}"),
                     400);
    assert_non_null(strstr(C->resp, "\"field\":\"access_token\""));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/tok", NULL), 200);
    assert_non_null(strstr(C->resp, "https://graph.elsewhere.example/v25.0"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/tok",
                         "{\"graph_url\":null,\"access_token\":\"EAAG-third-5432\"}"),
                     200);
    assert_null(strstr(C->resp, "graph.elsewhere.example"));
    /* a text that only looks masked is a text like any other */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/tok",
                         "{\"name\":\"\xe2\x80\xa2\xe2\x80\xa2 Tok 3\"}"),
                     200);
    assert_non_null(strstr(C->resp, "\"name\":\"\xe2\x80\xa2\xe2\x80\xa2 Tok 3\""));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/tok", NULL), 200);
    assert_non_null(strstr(C->resp, "\"name\":\"\xe2\x80\xa2\xe2\x80\xa2 Tok 3\""));
}

/* Each role against each endpoint, another user's instance included. */
static void test_role_matrix(void **state)
{
    char alice[80], bob[80], gina[80], a_id[64], b_id[64];
    const char *const no = "myna_NotARealTokenNotARealTokenNotARealToken1234";

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users",
                         "{\"name\":\"alice\",\"role\":\"user\",\"password\":\"alice-secret\"}"),
                     201);
    answer_str("token", alice, sizeof(alice));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"bob\",\"role\":\"user\"}"),
                     201);
    answer_str("token", bob, sizeof(bob));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"gina\",\"role\":\"guest\"}"),
                     201);
    answer_str("token", gina, sizeof(gina));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"alice\"}"), 409);

    assert_int_equal(api(alice, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Alice Shop\",\"provider\":\"cloud\",\"phone_number_id\":\"111\","
                         "\"access_token\":\"EAAGalice1234\",\"app_secret\":\"s1\","
                         "\"verify_token\":\"v1\",\"auto_start\":false}"),
                     201);
    answer_str("id", a_id, sizeof(a_id));
    assert_non_null(strstr(C->resp, "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "1234"));
    assert_null(strstr(C->resp, "EAAGalice1234"));
    assert_int_equal(api(bob, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Bob Shop\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    answer_str("id", b_id, sizeof(b_id));

    {
        const char *paths[][2] = {
            { "GET", "/admin/whatsapp/instances" },
            { "GET", "/admin/whatsapp/instances/alice-shop" },
            { "GET", "/admin/whatsapp/instances/alice-shop/status" },
            { "POST", "/admin/whatsapp/instances/alice-shop/start" },
            { "GET", "/admin/users" },
            { "GET", "/admin/tokens" },
            { "GET", "/admin/audit" },
        };
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            assert_int_equal(api(NULL, paths[i][0], paths[i][1], NULL), 401);
            assert_int_equal(api(no, paths[i][0], paths[i][1], NULL), 401);
        }
    }
    /* the guest reads the instances, changes nothing, sees no secrets */
    assert_int_equal(api(gina, "GET", "/admin/whatsapp/instances", NULL), 200);
    assert_non_null(strstr(C->resp, "alice-shop"));
    assert_non_null(strstr(C->resp, "bob-shop"));
    assert_int_equal(api(gina, "GET", "/admin/whatsapp/instances/alice-shop", NULL), 200);
    assert_null(strstr(C->resp, "access_token"));
    assert_null(strstr(C->resp, "app_secret"));
    assert_int_equal(api(gina, "GET", "/admin/whatsapp/instances/alice-shop/status", NULL), 200);
    /* but not the customers: their profiles and conversations */
    assert_int_equal(api(gina, "GET", "/admin/whatsapp/instances/alice-shop/contacts/15550001111",
                         NULL),
                     403);
    assert_int_equal(api(gina, "POST", "/admin/whatsapp/instances", "{\"name\":\"G\",\"provider\":\"sim\"}"),
                     403);
    assert_int_equal(api(gina, "PUT", "/admin/whatsapp/instances/alice-shop", "{\"name\":\"G\"}"), 403);
    assert_int_equal(api(gina, "DELETE", "/admin/whatsapp/instances/alice-shop", NULL), 403);
    assert_int_equal(api(gina, "POST", "/admin/whatsapp/instances/alice-shop/start", ""), 403);
    assert_int_equal(api(gina, "POST", "/admin/users", "{\"name\":\"x\"}"), 403);
    assert_int_equal(api(gina, "GET", "/admin/audit", NULL), 403);
    assert_int_equal(api(gina, "GET", "/admin/whatsapp/instances/alice-shop?secrets=1", NULL), 403);
    /* nor makes itself tokens: one it made would outlive the revocation of
     * the token it was given */
    assert_int_equal(api(gina, "POST", "/admin/tokens", "{\"name\":\"spare\"}"), 403);
    assert_int_equal(api(gina, "GET", "/admin/tokens", NULL), 200);
    {
        cJSON *arr = cJSON_Parse(C->resp);
        assert_int_equal(cJSON_GetArraySize(arr), 1);
        cJSON_Delete(arr);
    }
    assert_false(audit_has(&C->p, "token.create", "gina", NULL));

    /* a user sees and changes only its own */
    assert_int_equal(api(alice, "GET", "/admin/whatsapp/instances", NULL), 200);
    assert_non_null(strstr(C->resp, "alice-shop"));
    assert_null(strstr(C->resp, "bob-shop"));
    assert_int_equal(api(alice, "GET", "/admin/whatsapp/instances/bob-shop", NULL), 404);
    assert_int_equal(api(alice, "PUT", "/admin/whatsapp/instances/bob-shop", "{\"name\":\"x\"}"), 404);
    assert_int_equal(api(alice, "DELETE", "/admin/whatsapp/instances/bob-shop", NULL), 404);
    assert_int_equal(api(alice, "POST", "/admin/whatsapp/instances/bob-shop/start", ""), 404);
    assert_int_equal(api(alice, "GET", "/admin/whatsapp/instances/bob-shop/logs", NULL), 404);
    assert_int_equal(api(alice, "PUT", "/admin/whatsapp/instances/alice-shop",
                         "{\"name\":\"Alice's Shop\",\"access_token\":\"\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "1234\"}"),
                     200);
    assert_non_null(strstr(C->resp, "Alice's Shop"));
    assert_non_null(strstr(C->resp, "1234\""));  /* the masked value kept the secret */
    assert_int_equal(api(alice, "PUT", "/admin/whatsapp/instances/alice-shop", "{\"id\":\"other\"}"),
                     400);
    assert_int_equal(api(alice, "POST", "/admin/users", "{\"name\":\"x\"}"), 403);
    assert_int_equal(api(alice, "GET", "/admin/audit", NULL), 403);
    assert_int_equal(api(alice, "GET", "/admin/whatsapp/instances/alice-shop?secrets=1", NULL), 403);
    assert_int_equal(api(alice, "GET", "/admin/users", NULL), 200);
    assert_non_null(strstr(C->resp, "alice"));
    assert_null(strstr(C->resp, "bob"));

    /* the admin: everything, secrets on export */
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/bob-shop", NULL), 200);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/alice-shop?secrets=1", NULL),
                     200);
    assert_non_null(strstr(C->resp, "EAAGalice1234"));

    /* login with a password gives a working token; a wrong one does not */
    assert_int_equal(api(NULL, "POST", "/admin/login", "{\"name\":\"alice\",\"password\":\"nope-nope\"}"),
                     401);
    assert_int_equal(api(NULL, "POST", "/admin/login",
                         "{\"name\":\"alice\",\"password\":\"alice-secret\"}"),
                     200);
    {
        char t[80];
        answer_str("token", t, sizeof(t));
        assert_int_equal(api(t, "GET", "/admin/whatsapp/instances/alice-shop", NULL), 200);
    }
    (void)b_id;
}

static long login(const char *name, const char *password)
{
    char body[200];

    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    return api(NULL, "POST", "/admin/login", body);
}

/* ?secrets=1 is an admin's export: a user's change or action that asks
 * for it is refused before anything changes. */
static void test_secrets_refused_before_any_change(void **state)
{
    struct state_want up = { "hal-shop", "running" };
    const char *asks[][3] = {
        { "PUT", "/admin/whatsapp/instances/hal-shop?secrets=1", "{\"name\":\"Z\"}" },
        { "POST", "/admin/whatsapp/instances/hal-shop/stop?secrets=1", "" },
        { "POST", "/admin/whatsapp/instances/hal-shop/restart?secrets=1", "" },
        { "POST", "/admin/whatsapp/instances/hal-shop/start?secrets=1", "" },
    };
    char hal[80];
    double pid;

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users",
                         "{\"name\":\"hal\",\"role\":\"user\"}"),
                     201);
    answer_str("token", hal, sizeof(hal));
    assert_int_equal(api(hal, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Hal Shop\",\"provider\":\"sim\",\"auto_start\":true}"),
                     201);
    assert_true(h_wait(in_state, &up, 10000));
    pid = answer_num("pid");
    assert_true(pid > 0);
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        assert_int_equal(api(hal, asks[i][0], asks[i][1], asks[i][2]), 403);
        assert_null(strstr(C->resp, "\"id\""));
    }
    /* nothing changed: the name, auto_start, the running bot, the audit log */
    assert_int_equal(api(hal, "GET", "/admin/whatsapp/instances/hal-shop", NULL), 200);
    assert_non_null(strstr(C->resp, "\"name\":\"Hal Shop\""));
    assert_non_null(strstr(C->resp, "\"auto_start\":true"));
    assert_true(in_state(&up));
    assert_true(answer_num("pid") == pid);
    assert_true(answer_num("restarts") == 0);
    assert_false(audit_has(&C->p, "instance.update", "hal-shop", NULL));
    assert_false(audit_has(&C->p, "instance.stop", "hal-shop", NULL));
    assert_false(audit_has(&C->p, "instance.restart", "hal-shop", NULL));
    assert_false(audit_has(&C->p, "instance.start", "hal-shop", NULL));

    /* an admin's change with the export is made, and both are audited */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/hal-shop?secrets=1",
                         "{\"name\":\"Hal's Shop\"}"),
                     200);
    assert_non_null(strstr(C->resp, "\"name\":\"Hal's Shop\""));
    assert_true(audit_has(&C->p, "instance.update", "hal-shop", NULL));
    assert_true(audit_has(&C->p, "instance.export_secrets", "hal-shop", NULL));
}

struct pid_want {
    const char *id;
    double pid;  /* running, under another pid than this */
};

static int runs_anew(void *arg)
{
    struct pid_want *w = arg;
    char path[200], st[32];

    snprintf(path, sizeof(path), "/admin/whatsapp/instances/%s/status", w->id);
    return api(ADMIN_TOKEN, "GET", path, NULL) == 200 &&
           strcmp(answer_str("state", st, sizeof(st)), "running") == 0 &&
           answer_num("pid") > 0 && answer_num("pid") != w->pid;
}

/* A PUT whose result is what is stored (no field, the id alone, the
 * instance as exported with its secrets masked, a secret sent again as it
 * is) is answered 200 with the instance, and writes nothing: the version
 * stays, no instance.update row, the bot is not restarted. Each bumped the
 * version, wrote a row and restarted the bot, so an import of an unchanged
 * file restarted every bot it named. A new secret, auto_start or enabled
 * is a change as before. */
static void test_put_that_changes_nothing(void **state)
{
    const char *path = "/admin/whatsapp/instances/calm";
    struct state_want up = { "calm", "running" }, down = { "calm", "stopped" };
    const char *live[] = { "owner", "state", "pid", "restarts", "version", "needs_attention" };
    const char *same[] = { "{}", "{\"id\":\"calm\"}", NULL /* the export */,
                           "{\"access_token\":\"EAAGcalmtoken1\",\"name\":\"Calm\"}",
                           "{\"batch\":{\"window_ms\":150},\"enabled\":true}" };
    struct pid_want anew = { "calm", 0 };
    char exported[4096], *text;
    double version, pid;
    cJSON *o;

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Calm\",\"provider\":\"sim\",\"enabled\":true,"
                         "\"access_token\":\"EAAGcalmtoken1\",\"batch\":{\"window_ms\":150}}"),
                     201);
    assert_true(h_wait(in_state, &up, 10000));
    pid = answer_num("pid");
    assert_true(pid > 0);
    assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 200);
    version = answer_num("version");
    assert_true(version >= 1);
    assert_non_null(o = cJSON_Parse(C->resp));  /* as `myna instance export` writes it */
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, live[i]);
    assert_non_null(text = cJSON_PrintUnformatted(o));
    assert_non_null(strstr(text, "\"access_token\":\"\xe2\x80\xa2"));  /* masked */
    snprintf(exported, sizeof(exported), "%s", text);
    free(text);
    cJSON_Delete(o);
    same[2] = exported;

    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        assert_int_equal(api(ADMIN_TOKEN, "PUT", path, same[i]), 200);
        assert_non_null(strstr(C->resp, "\"id\":\"calm\""));
        assert_non_null(strstr(C->resp, "\"state\""));
        assert_true(answer_num("version") == version);
    }
    /* one that shows the secrets still writes the export's row */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/calm?secrets=1", "{}"),
                     200);
    assert_non_null(strstr(C->resp, "EAAGcalmtoken1"));
    assert_true(answer_num("version") == version);
    assert_true(audit_has(&C->p, "instance.export_secrets", "calm", NULL));
    assert_false(audit_has(&C->p, "instance.update", "calm", NULL));
    assert_false(h_log_contains(&C->p, "event=bot_restarting instance=calm "));
    assert_true(in_state(&up));
    assert_true(answer_num("pid") == pid);
    assert_true(answer_num("restarts") == 0);

    /* a new secret is a change: a new version, its row, the bot restarted */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path, "{\"access_token\":\"EAAGcalmtoken2\"}"), 200);
    assert_true(answer_num("version") == version + 1);
    assert_true(audit_has(&C->p, "instance.update", "calm", NULL));
    assert_true(h_log_contains(&C->p, "event=bot_restarting instance=calm "));
    anew.pid = pid;
    assert_true(h_wait(runs_anew, &anew, 10000));
    assert_true(answer_num("restarts") == 1);
    /* so are auto_start and enabled alone, and the same again is not */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path, "{\"auto_start\":false}"), 200);
    assert_true(answer_num("version") == version + 2);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path, "{\"auto_start\":false}"), 200);
    assert_true(answer_num("version") == version + 2);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path, "{\"enabled\":false}"), 200);
    assert_true(answer_num("version") == version + 3);
    assert_true(h_wait(in_state, &down, 10000));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", path, "{\"enabled\":false}"), 200);
    assert_true(answer_num("version") == version + 3);
    assert_true(in_state(&down));
}

/* PUT /admin/users/{name}: a user changes its own password, an admin also
 * roles and disabled; a disabled user's tokens and logins stop working;
 * the last admin stays. */
static void test_user_update(void **state)
{
    char dora[80], eve[80];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users",
                         "{\"name\":\"dora\",\"role\":\"user\",\"password\":\"dora-secret-1\"}"),
                     201);
    answer_str("token", dora, sizeof(dora));

    /* her own password, and nothing else */
    assert_int_equal(api(dora, "PUT", "/admin/users/dora", "{\"password\":\"dora-secret-2\"}"), 200);
    assert_non_null(strstr(C->resp, "\"password\":true"));
    assert_int_equal(login("dora", "dora-secret-1"), 401);
    assert_int_equal(login("dora", "dora-secret-2"), 200);
    /* a password out of bounds is refused, and nothing changes */
    assert_int_equal(api(dora, "PUT", "/admin/users/dora", "{\"password\":\"short\"}"), 400);
    assert_non_null(strstr(C->resp, "password must be 8 to"));
    assert_int_equal(login("dora", "dora-secret-2"), 200);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users",
                         "{\"name\":\"flo\",\"password\":\"short\"}"),
                     400);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/flo", "{\"disabled\":true}"), 404);
    assert_int_equal(api(dora, "PUT", "/admin/users/dora", "{\"role\":\"admin\"}"), 403);
    assert_int_equal(api(dora, "PUT", "/admin/users/dora", "{\"disabled\":false}"), 403);
    assert_int_equal(api(dora, "PUT", "/admin/users/admin", "{\"password\":\"taken-over\"}"), 403);

    /* disabled: neither her token nor her password work, until enabled */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/dora", "{\"disabled\":true}"), 200);
    assert_non_null(strstr(C->resp, "\"disabled\":true"));
    assert_int_equal(api(dora, "GET", "/admin/users", NULL), 401);
    assert_int_equal(login("dora", "dora-secret-2"), 401);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/dora", "{\"disabled\":false}"), 200);
    assert_int_equal(api(dora, "GET", "/admin/users", NULL), 200);

    /* a guest now: reads, changes nothing, not even its password */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/dora", "{\"role\":\"guest\"}"), 200);
    assert_non_null(strstr(C->resp, "\"role\":\"guest\""));
    assert_int_equal(api(dora, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"D\",\"provider\":\"sim\"}"),
                     403);
    assert_int_equal(api(dora, "PUT", "/admin/users/dora", "{\"password\":\"dora-secret-3\"}"), 403);
    /* no password: only tokens */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/dora", "{\"password\":null}"), 200);
    assert_non_null(strstr(C->resp, "\"password\":false"));
    assert_int_equal(login("dora", "dora-secret-2"), 401);

    /* the last enabled admin can be neither demoted nor disabled */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/admin", "{\"role\":\"user\"}"), 409);
    assert_non_null(strstr(C->resp, "last admin"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/admin", "{\"disabled\":true}"), 409);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"eve\",\"role\":\"admin\"}"),
                     201);
    answer_str("token", eve, sizeof(eve));
    assert_int_equal(api(eve, "PUT", "/admin/users/eve", "{\"role\":\"user\"}"), 200);
    assert_int_equal(api(eve, "GET", "/admin/audit", NULL), 403);  /* no longer an admin */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/admin", "{\"role\":\"user\"}"), 409);

    /* bad requests */
    {
        const char *bad[] = { "{}", "{\"role\":\"boss\"}", "{\"role\":2}", "{\"disabled\":\"yes\"}",
                              "{\"password\":5}", "[1]", "not json" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/dora", bad[i]), 400);
    }
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/nobody", "{\"disabled\":true}"), 404);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/users/dora", NULL), 405);
    assert_int_equal(api(ADMIN_TOKEN, "DELETE", "/admin/users/dora", NULL), 405);
    assert_int_equal(api(NULL, "PUT", "/admin/users/dora", "{\"disabled\":true}"), 401);

    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit", NULL), 200);
    assert_non_null(strstr(C->resp, "user.update"));
    assert_null(strstr(C->resp, "dora-secret"));
}

/* DELETE /admin/tokens/{id}: a user revokes only its own tokens, an admin
 * any; a revoked token stops working at once; a revocation again changes
 * nothing and is not audited again. */
static void test_token_revoke(void **state)
{
    char fay[80], gus[80], id[32], path[64];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"fay\"}"), 201);
    answer_str("token", fay, sizeof(fay));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"gus\"}"), 201);
    answer_str("token", gus, sizeof(gus));
    {
        cJSON *o = cJSON_Parse(C->resp);
        snprintf(id, sizeof(id), "%.0f",
                 cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "token_id")));
        cJSON_Delete(o);
    }
    snprintf(path, sizeof(path), "/admin/tokens/%s", id);  /* gus's first token */
    assert_int_equal(api(fay, "DELETE", path, NULL), 404);  /* not hers */
    assert_int_equal(api(gus, "GET", "/admin/users", NULL), 200);
    assert_int_equal(api(gus, "DELETE", path, NULL), 200);
    assert_int_equal(api(gus, "GET", "/admin/users", NULL), 401);
    assert_int_equal(audit_count(&C->p, "token.revoke", id, NULL), 1);
    /* twice is fine (a script that retries), and writes no second row */
    assert_int_equal(api(ADMIN_TOKEN, "DELETE", path, NULL), 200);
    assert_int_equal(audit_count(&C->p, "token.revoke", id, NULL), 1);
    assert_int_equal(api(ADMIN_TOKEN, "DELETE", "/admin/tokens/999999", NULL), 404);
    assert_int_equal(api(ADMIN_TOKEN, "DELETE", "/admin/tokens/x1", NULL), 404);
    assert_int_equal(api(fay, "GET", "/admin/users", NULL), 200);

    /* an id with leading zeros is that id: its revocation is audited
     * under the id itself */
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"spare\"}"), 201);
    snprintf(id, sizeof(id), "%.0f", answer_num("token_id"));
    {
        char zeros[400];
        snprintf(zeros, sizeof(zeros), "/admin/tokens/%0300d%s", 0, id);
        assert_int_equal(api(ADMIN_TOKEN, "DELETE", zeros, NULL), 200);
    }
    assert_true(audit_has(&C->p, "token.revoke", id, NULL));
}

/* The token id, from the last answer's "token_id", as a path. */
static void token_path(char *path, size_t cap)
{
    snprintf(path, cap, "/admin/tokens/%.0f", answer_num("token_id"));
}

/* A change that takes away the last way into the admin API an enabled
 * admin has (a token that works, or a password to log in with) is refused
 * with 409 and changes nothing; with another way in, it is made. Only
 * editing control.db by hand brought the API back after such a change. */
static void test_last_way_in_stays(void **state)
{
    struct myna_proc *p;
    char first[64], spare[80], spare_path[64], eve[80], eve_path[64], login_tok[80],
        login_path[64];

    (void)state;
    p = launch(NULL);
    /* the first admin's only token: refused, and it still works */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/tokens", NULL), 200);
    snprintf(first, sizeof(first), "/admin/tokens/%.0f", first_id());
    assert_int_equal(api_at(p, ADMIN_TOKEN, "DELETE", first, NULL), 409);
    assert_non_null(strstr(C->resp, "last way into the admin API"));
    assert_non_null(strstr(C->resp, "POST /admin/tokens"));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/users", NULL), 200);
    assert_false(audit_has(p, "token.revoke", first + strlen("/admin/tokens/"), NULL));

    /* with a second admin token it goes */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"spare\"}"),
                     201);
    answer_str("token", spare, sizeof(spare));
    token_path(spare_path, sizeof(spare_path));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "DELETE", first, NULL), 200);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/users", NULL), 401);
    assert_int_equal(api_at(p, spare, "DELETE", spare_path, NULL), 409);

    /* a password is a way in too: then the last token may go, and the
     * password may go while a login's token works, but not both */
    assert_int_equal(api_at(p, spare, "PUT", "/admin/users/admin",
                            "{\"password\":\"admin-secret-1\"}"),
                     200);
    assert_int_equal(api_at(p, spare, "DELETE", spare_path, NULL), 200);
    assert_int_equal(api_at(p, NULL, "POST", "/admin/login",
                            "{\"name\":\"admin\",\"password\":\"admin-secret-1\"}"),
                     200);
    answer_str("token", login_tok, sizeof(login_tok));
    assert_int_equal(api_at(p, login_tok, "GET", "/admin/tokens", NULL), 200);
    {
        cJSON *arr = cJSON_Parse(C->resp), *t;
        double id = -1;
        cJSON_ArrayForEach(t, arr) {
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "revoked")))
                id = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "id"));
        }
        cJSON_Delete(arr);
        snprintf(login_path, sizeof(login_path), "/admin/tokens/%.0f", id);
    }
    assert_int_equal(api_at(p, login_tok, "PUT", "/admin/users/admin", "{\"password\":null}"),
                     200);
    assert_int_equal(api_at(p, login_tok, "DELETE", login_path, NULL), 409);
    assert_int_equal(api_at(p, login_tok, "PUT", "/admin/users/admin",
                            "{\"password\":\"admin-secret-2\"}"),
                     200);
    assert_int_equal(api_at(p, login_tok, "DELETE", login_path, NULL), 200);
    assert_int_equal(api_at(p, NULL, "POST", "/admin/login",
                            "{\"name\":\"admin\",\"password\":\"admin-secret-2\"}"),
                     200);
    answer_str("token", login_tok, sizeof(login_tok));

    /* a second admin with no way in of its own: disabling the first, who
     * has the only ones, is refused although an enabled admin stays */
    assert_int_equal(api_at(p, login_tok, "POST", "/admin/users",
                            "{\"name\":\"eve\",\"role\":\"admin\"}"),
                     201);
    answer_str("token", eve, sizeof(eve));
    token_path(eve_path, sizeof(eve_path));
    assert_int_equal(api_at(p, eve, "DELETE", eve_path, NULL), 200);
    assert_int_equal(api_at(p, login_tok, "PUT", "/admin/users/admin", "{\"disabled\":true}"),
                     409);
    assert_non_null(strstr(C->resp, "last way into the admin API"));
    assert_int_equal(api_at(p, login_tok, "PUT", "/admin/users/admin", "{\"role\":\"user\"}"),
                     409);
    assert_int_equal(api_at(p, login_tok, "GET", "/admin/audit", NULL), 200);
    /* a user's own token is no admin's way in: revoking it is fine */
    assert_int_equal(api_at(p, login_tok, "POST", "/admin/users", "{\"name\":\"una\"}"), 201);
    answer_str("token", eve, sizeof(eve));
    token_path(eve_path, sizeof(eve_path));
    assert_int_equal(api_at(p, eve, "DELETE", eve_path, NULL), 200);
    assert_int_equal(h_stop_release(p), 0);
}

/* The audit log says whose token was made and which user a token made
 * with a role created, and what a user's change changed (never the
 * password). */
static void test_token_and_user_audit_detail(void **state)
{
    char uname[80], want[160];
    double tid;

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens",
                         "{\"role\":\"guest\",\"name\":\"grafana\"}"),
                     201);
    answer_str("user", uname, sizeof(uname));
    tid = answer_num("token_id");
    assert_int_equal(strncmp(uname, "guest-", 6), 0);
    assert_true(audit_has(&C->p, "user.create", uname, "\"role\":\"guest\""));
    snprintf(want, sizeof(want), "{\"token_id\":%.0f,\"name\":\"grafana\"}", tid);
    assert_true(audit_has(&C->p, "token.create", uname, want));

    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"ike\"}"), 201);
    snprintf(want, sizeof(want), "{\"role\":\"user\",\"token_id\":%.0f}",
             answer_num("token_id"));
    assert_true(audit_has(&C->p, "user.create", "ike", want));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens",
                         "{\"user\":\"ike\",\"name\":\"deploy\"}"),
                     201);
    snprintf(want, sizeof(want), "{\"token_id\":%.0f,\"name\":\"deploy\"}",
             answer_num("token_id"));
    assert_true(audit_has(&C->p, "token.create", "ike", want));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"mine\"}"), 201);
    snprintf(want, sizeof(want), "{\"token_id\":%.0f,\"name\":\"mine\"}",
             answer_num("token_id"));
    assert_true(audit_has(&C->p, "token.create", "admin", want));

    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/ike",
                         "{\"role\":\"guest\",\"disabled\":true}"),
                     200);
    assert_true(audit_has(&C->p, "user.update", "ike", "{\"role\":\"guest\",\"disabled\":true}"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/ike", "{\"password\":\"ike-secret-1\"}"),
                     200);
    assert_true(audit_has(&C->p, "user.update", "ike", "{\"password\":\"changed\"}"));
    assert_null(strstr(C->resp, "ike-secret"));
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/users/ike", "{\"password\":null}"), 200);
    assert_true(audit_has(&C->p, "user.update", "ike", "{\"password\":\"removed\"}"));
}

/* A login's token ends after login_token_ttl_s (2 s on a master of its
 * own here); a token made with POST /admin/tokens does not. */
static void test_login_token_expires(void **state)
{
    const char *extra[] = { "--login-token-ttl-s", "2", NULL };
    struct myna_proc *p;
    char t[80], api_token[80];
    int64_t t0;
    double end;

    (void)state;
    p = launch(extra);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/users",
                            "{\"name\":\"kim\",\"password\":\"kim-secret-1\"}"),
                     201);
    answer_str("token", api_token, sizeof(api_token));
    t0 = myna_wall_ms();
    assert_int_equal(api_at(p, NULL, "POST", "/admin/login",
                            "{\"name\":\"kim\",\"password\":\"kim-secret-1\"}"),
                     200);
    answer_str("token", t, sizeof(t));
    {
        cJSON *o = cJSON_Parse(C->resp);

        end = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "expires_ms"));
        cJSON_Delete(o);
        assert_true(end >= (double)t0 + 2000 && end <= (double)myna_wall_ms() + 2000);
    }
    assert_int_equal(api_at(p, t, "GET", "/admin/users", NULL), 200);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/tokens", NULL), 200);
    assert_non_null(strstr(C->resp, "\"name\":\"login\""));
    assert_non_null(strstr(C->resp, "\"expires_ms\":0"));  /* the API tokens */

    while ((double)myna_wall_ms() < end + 100) {  /* past the end the master gave */
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(api_at(p, t, "GET", "/admin/users", NULL), 401);
    assert_int_equal(api_at(p, api_token, "GET", "/admin/users", NULL), 200);

    /* the next login takes the ended token away: kim's list holds her
     * API token and the new login's */
    assert_int_equal(api_at(p, NULL, "POST", "/admin/login",
                            "{\"name\":\"kim\",\"password\":\"kim-secret-1\"}"),
                     200);
    answer_str("token", t, sizeof(t));
    assert_int_equal(api_at(p, t, "GET", "/admin/tokens", NULL), 200);
    {
        cJSON *arr = cJSON_Parse(C->resp);
        assert_int_equal(cJSON_GetArraySize(arr), 2);
        cJSON_Delete(arr);
    }
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

/* The answer's array size, and the id of its element i (-1: none). */
static int answer_len(void)
{
    cJSON *arr = cJSON_Parse(C->resp);
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;

    cJSON_Delete(arr);
    return n;
}

static double answer_id(int i)
{
    cJSON *arr = cJSON_Parse(C->resp);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i), "id");
    double v = cJSON_IsNumber(id) ? id->valuedouble : -1;

    cJSON_Delete(arr);
    return v;
}

/* Users, tokens and the audit log come in pages (?limit, ?offset; tokens
 * also ?after, the audit log ?before); the audit log says who did what
 * from where. */
static void test_paging(void **state)
{
    const char *lists[] = { "/admin/users", "/admin/tokens", "/admin/audit" };
    const char *bad[] = { "limit=0", "limit=1001", "limit=x", "offset=-1", "offset=1e3",
                          "limit=%zz" };
    char path[200];

    (void)state;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        double second;
        assert_int_equal(api(ADMIN_TOKEN, "GET", lists[i], NULL), 200);
        assert_true(answer_len() >= 3);
        second = answer_id(1);
        snprintf(path, sizeof(path), "%s?limit=2", lists[i]);
        assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 200);
        assert_int_equal(answer_len(), 2);
        assert_true(answer_id(1) == second);
        snprintf(path, sizeof(path), "%s?offset=1&limit=1", lists[i]);
        assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 200);
        assert_int_equal(answer_len(), 1);
        assert_true(answer_id(0) == second);
        snprintf(path, sizeof(path), "%s?offset=100000", lists[i]);
        assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 200);
        assert_int_equal(answer_len(), 0);
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            snprintf(path, sizeof(path), "%s?%s", lists[i], bad[j]);
            assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 400);
        }
    }
    {   /* tokens, oldest first, page on from the last id seen */
        double first, second;
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/tokens?limit=2", NULL), 200);
        first = answer_id(0);
        second = answer_id(1);
        snprintf(path, sizeof(path), "/admin/tokens?limit=1&after=%.0f", first);
        assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 200);
        assert_int_equal(answer_len(), 1);
        assert_true(answer_id(0) == second);
        snprintf(path, sizeof(path), "/admin/tokens?after=%.0f", second);
        assert_int_equal(api(ADMIN_TOKEN, "GET", path, NULL), 200);
        assert_true(answer_id(0) > second);
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/tokens?after=0", NULL), 400);
        assert_non_null(strstr(C->resp, "'after' an id from 1"));
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/tokens?after=x", NULL), 400);
    }
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/audit?limit=1", NULL), 200);
    assert_non_null(strstr(C->resp, "\"from\":\"127.0.0.1\""));
}

/* Secrets never reach the control store in the clear. */
static void test_secrets_sealed_at_rest(void **state)
{
    char path[400];
    FILE *f;
    static char buf[4 << 20];
    size_t n;

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Sealed\",\"provider\":\"cloud\",\"phone_number_id\":\"222\","
                         "\"access_token\":\"EAAGverysecrettoken\",\"app_secret\":\"appsecretvalue\","
                         "\"verify_token\":\"verifyvalue\",\"auto_start\":false,"
                         "\"llm\":{\"url\":\"http://127.0.0.1:9/v1\",\"model\":\"m\","
                         "\"api_key\":\"sk-llmsecretkey\"}}"),
                     201);
    snprintf(path, sizeof(path), "%s/var/control.db", C->p.dir);
    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n > 0);
    assert_null(memmem(buf, n, "EAAGverysecrettoken", 19));
    assert_null(memmem(buf, n, "appsecretvalue", 14));
    assert_null(memmem(buf, n, "sk-llmsecretkey", 15));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/sealed", NULL), 200);
    assert_non_null(strstr(C->resp, "oken\""));  /* "••••oken" */
    assert_null(strstr(C->resp, "EAAGverysecrettoken"));
    assert_null(strstr(C->resp, "sk-llmsecretkey"));
}

/* Stores left by a delete cut short (the master died before the bot
 * stopped and the files moved) go to the trash when a new instance takes
 * the id: it does not open the deleted one's data. */
static void test_leftover_files_are_trashed_at_create(void **state)
{
    char path[400], trash[400];
    FILE *fp;
    DIR *d;
    struct dirent *e;
    int found = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/var/instances/ghost.db", C->p.dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs("the deleted instance's data", fp);
    fclose(fp);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"id\":\"ghost\",\"name\":\"Ghost\",\"provider\":\"sim\","
                         "\"auto_start\":false}"),
                     201);
    snprintf(trash, sizeof(trash), "%s/var/trash", C->p.dir);
    assert_non_null(d = opendir(trash));
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "ghost-", 6) == 0) {
            char moved[700];
            snprintf(moved, sizeof(moved), "%s/%s/ghost.db", trash, e->d_name);
            found = access(moved, F_OK) == 0;
        }
    closedir(d);
    assert_true(found);
    assert_int_equal(h_db_count(&C->p, "ghost", "inbox", NULL), 0);  /* a store of its own */
    assert_true(h_log_contains(&C->p, "event=instance_leftovers_trashed instance=ghost"));
}

/* A log left by a delete cut short, with no store beside it (the bot had
 * logged, not yet made its store), goes to the trash too: the new
 * instance's log, which its users read, does not show the deleted one's. */
static void test_leftover_log_is_trashed_at_create(void **state)
{
    char path[400];
    FILE *fp;

    (void)state;
    snprintf(path, sizeof(path), "%s/var/logs", C->p.dir);
    mkdir(path, 0750);
    snprintf(path, sizeof(path), "%s/var/logs/phantom.log", C->p.dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs("event=turn_answered the deleted instance's line\n", fp);
    fclose(fp);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"id\":\"phantom\",\"name\":\"Phantom\",\"provider\":\"sim\","
                         "\"auto_start\":false}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/phantom/logs", NULL), 404);
    assert_null(strstr(C->resp, "deleted instance's line"));
    assert_true(h_log_contains(&C->p, "event=instance_leftovers_trashed instance=phantom"));
}

/* The trash keeps every deleted copy of an id: a folder named for this
 * second that exists already (another delete of the id in it) is not
 * written into; the files it holds stay as they were. */
static void test_trash_never_overwrites(void **state)
{
    char path[1200], trash[400], sub[500], text[64];
    long now = (long)time(NULL);
    FILE *fp;
    DIR *d;
    struct dirent *e;
    int newer = 0, older = 0;

    (void)state;
    snprintf(trash, sizeof(trash), "%s/var/trash", C->p.dir);
    mkdir(trash, 0750);
    for (long t = now - 1; t <= now + 5; t++) {
        snprintf(sub, sizeof(sub), "%s/twice-%ld", trash, t);
        assert_int_equal(mkdir(sub, 0750), 0);
        snprintf(path, sizeof(path), "%s/twice.db", sub);
        assert_non_null(fp = fopen(path, "w"));
        fputs("older", fp);
        fclose(fp);
    }
    snprintf(path, sizeof(path), "%s/var/instances/twice.db", C->p.dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs("newer", fp);
    fclose(fp);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"id\":\"twice\",\"name\":\"Twice\",\"provider\":\"sim\","
                         "\"auto_start\":false}"),
                     201);
    assert_non_null(d = opendir(trash));
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "twice-", 6) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s/twice.db", trash, e->d_name);
        assert_non_null(fp = fopen(path, "r"));
        assert_non_null(fgets(text, sizeof(text), fp));
        fclose(fp);
        newer += strcmp(text, "newer") == 0;
        older += strcmp(text, "older") == 0;
    }
    closedir(d);
    assert_int_equal(older, 7);  /* every copy there was before */
    assert_int_equal(newer, 1);
}

static int trash_gone(void *arg)
{
    return access(arg, F_OK) != 0;
}

/* The master logs a purge once its folder is gone: a moment later. */
static int purge_logged(void *arg)
{
    (void)arg;
    return h_log_contains(&C->p, "event=trash_purged dir=\"soon-");
}

/* The trash is purged while the master runs, not only at its start: a
 * folder that becomes 7 days old later (here a few seconds after the
 * start) goes then; a younger one stays. */
static void test_trash_purged_while_running(void **state)
{
    const char *extra[] = { "--bots", "1", NULL };
    char trash[400], due[500], young[500], file[600];
    long now;
    int kept;
    FILE *fp;

    (void)state;
    assert_int_equal(h_stop(&C->p, SIGTERM), 0);
    now = (long)time(NULL);  /* after the stop, which may take seconds */
    snprintf(trash, sizeof(trash), "%s/var/trash", C->p.dir);
    mkdir(trash, 0750);
    snprintf(due, sizeof(due), "%s/soon-%ld", trash, now - 7 * 86400 + 6);
    snprintf(young, sizeof(young), "%s/young-%ld", trash, now - 86400);
    assert_int_equal(mkdir(due, 0750), 0);
    assert_int_equal(mkdir(young, 0750), 0);
    snprintf(file, sizeof(file), "%s/soon.db", due);
    assert_non_null(fp = fopen(file, "w"));
    fputs("kept 7 days", fp);
    fclose(fp);
    assert_int_equal(h_start(&C->p, extra), 0);
    /* due once the master's time(NULL) reaches now + 6: if it is not due
     * yet after it was looked at, it was not due at the start, which kept it */
    kept = access(due, F_OK) == 0;
    if ((long)time(NULL) < now + 6)
        assert_true(kept);
    assert_true(h_wait(trash_gone, due, 30000));
    assert_int_equal(access(young, F_OK), 0);
    assert_true(h_wait(purge_logged, NULL, 10000));
}

/* A secret as the API shows it, masked, is not taken for the secret: an
 * export without secrets cannot make an instance whose webhooks all fail. */
static void test_masked_secret_refused(void **state)
{
    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"id\":\"masked\",\"name\":\"M\",\"provider\":\"cloud\","
                         "\"phone_number_id\":\"4815162342\",\"access_token\":\"EAAGreal\","
                         "\"app_secret\":\"\u2022\u2022\u2022\u20220f1e\",\"verify_token\":\"v\","
                         "\"llm\":{\"url\":\"http://127.0.0.1:9/v1\",\"model\":\"m\","
                         "\"api_key\":\"\u2022\u2022\u2022\u2022-key\"}}"),
                     400);
    assert_non_null(strstr(C->resp, "\"field\":\"app_secret\""));
    assert_non_null(strstr(C->resp, "\"field\":\"llm.api_key\""));
    assert_non_null(strstr(C->resp, "masked value"));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/masked", NULL), 404);
}

/* A number past the range of a double (1e999) is refused, naming its
 * field: read as infinity and checked as cJSON prints it (null), it was
 * stored as null, the field's default (rate_limit.count 5), answered 201. */
static void test_huge_number_refused(void **state)
{
    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"id\":\"huge\",\"name\":\"Huge\",\"provider\":\"sim\","
                         "\"auto_start\":false,\"rate_limit\":{\"count\":1e999}}"),
                     400);
    assert_non_null(
        strstr(C->resp, "{\"field\":\"rate_limit.count\",\"error\":\"a number too large\"}"));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/huge", NULL), 404);

    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"id\":\"huge\",\"name\":\"Huge\",\"provider\":\"sim\","
                         "\"auto_start\":false,\"batch\":{\"max\":7}}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/huge",
                         "{\"batch\":{\"max\":-1e999},\"name\":\"Changed\"}"),
                     400);
    assert_non_null(strstr(C->resp, "{\"field\":\"batch.max\",\"error\":\"a number too large\"}"));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/huge", NULL), 200);
    assert_non_null(strstr(C->resp, "\"batch\":{\"max\":7}"));
    assert_non_null(strstr(C->resp, "\"name\":\"Huge\""));
    /* a small one is a number as any other: out of its bounds */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/huge",
                         "{\"batch\":{\"max\":1e300}}"),
                     400);
    assert_non_null(strstr(C->resp, "\"field\":\"batch.max\",\"error\":\"must be a whole"));
    assert_int_equal(api(ADMIN_TOKEN, "DELETE", "/admin/whatsapp/instances/huge", NULL), 200);
}

static void test_cli(void **state)
{
    char admin[80], out[65536], token[80];
    const char *list[] = { "instance", "list", "--admin", admin, "--token", ADMIN_TOKEN, NULL };
    const char *mk[] = { "token", "create", "--role", "guest", "--name", "ci", "--admin", admin,
                         "--token", ADMIN_TOKEN, NULL };
    const char *export[] = { "instance", "export", "--admin", admin, "--token", ADMIN_TOKEN, NULL };
    const char *denied[] = { "instance", "list", "--admin", admin, "--token", "myna_bad", NULL };
    char file[300];
    const char *import[] = { "instance", "import", file, "--admin", admin, "--token", ADMIN_TOKEN,
                             NULL };
    FILE *f;

    (void)state;
    snprintf(admin, sizeof(admin), "%s", C->p.admin_url + strlen("http://"));
    assert_int_equal(h_run(list, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "support-bot-2"));
    assert_int_equal(h_run(mk, out, sizeof(out)), 0);
    assert_int_equal(strncmp(out, "myna_", 5), 0);
    snprintf(token, sizeof(token), "%.48s", out);
    assert_int_equal(api(token, "GET", "/admin/whatsapp/instances", NULL), 200);
    assert_int_equal(api(token, "POST", "/admin/whatsapp/instances", "{}"), 403);
    assert_int_equal(h_run(export, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"id\":"));
    assert_null(strstr(out, "\"state\""));
    assert_null(strstr(out, "\"needs_attention\""));
    /* and it imports back as it is (the masked secrets keep theirs), which
     * changes none of them */
    snprintf(file, sizeof(file), "%s/export.json", C->p.dir);
    assert_non_null(f = fopen(file, "w"));
    fputs(out, f);
    fclose(f);
    assert_int_equal(h_run(import, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "unchanged support-bot-2\n"));
    assert_null(strstr(out, "updated"));
    assert_false(audit_has(&C->p, "instance.update", "support-bot-2", NULL));
    /* a change is one */
    snprintf(file, sizeof(file), "%s/renamed.json", C->p.dir);
    assert_non_null(f = fopen(file, "w"));
    fputs("[{\"id\":\"support-bot-2\",\"name\":\"Support Bot Two\"}]", f);
    fclose(f);
    assert_int_equal(h_run(import, out, sizeof(out)), 0);
    assert_string_equal(out, "updated support-bot-2\n");
    assert_true(audit_has(&C->p, "instance.update", "support-bot-2", NULL));
    assert_int_equal(h_run(denied, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "401"));

    /* an import names its LLM provider as `serve --instances` allows */
    snprintf(file, sizeof(file), "%s/import.json", C->p.dir);
    assert_non_null(f = fopen(file, "w"));
    fputs("{\"llm_providers\":{\"local\":{\"url\":\"http://127.0.0.1:9/v1\",\"model\":\"tiny\"}},"
          "\"instances\":[{\"id\":\"imported\",\"name\":\"Imported\",\"provider\":\"sim\","
          "\"auto_start\":false,\"llm\":\"local\"}]}", f);
    fclose(f);
    assert_int_equal(h_run(import, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "created imported"));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/imported", NULL), 200);
    assert_non_null(strstr(C->resp, "\"model\":\"tiny\""));
}

/* Deleting an instance while its webhooks and status posts are on their
 * way (the simulator's HTTP client still holds them) is safe. */
static void test_delete_while_busy(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        char id[32], body[300], path[100];
        struct state_want up = { id, "running" };
        snprintf(id, sizeof(id), "churn-%d", round);
        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"Churn\",\"provider\":\"sim\","
                 "\"batch\":{\"window_ms\":0},\"faq\":[{\"q\":[\"hi\"],\"a\":\"Hello!\"}]}",
                 id);
        assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances", body), 201);
        assert_true(h_wait(in_state, &up, 10000));
        for (int i = 0; i < 15; i++) {
            char from[32];
            snprintf(from, sizeof(from), "1555000%04d", round * 100 + i);
            say(id, from, "hi");
        }
        snprintf(path, sizeof(path), "/admin/whatsapp/instances/%s", id);
        assert_int_equal(api(ADMIN_TOKEN, "DELETE", path, NULL), 200);
        /* its id is not free again before its files are out of the way */
        assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances", body), 409);
        {
            struct timespec t = { 0, 300 * 1000000L };
            nanosleep(&t, NULL);
        }
        assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances", NULL), 200);
    }
}

/* Failed logins are limited per address: past ten in a minute /admin/login
 * answers 429, even to the right password, without hashing anything; API
 * tokens keep working. */
static void test_login_limited(void **state)
{
    int tries = 0;
    long code;

    (void)state;
    do
        code = api(NULL, "POST", "/admin/login", "{\"name\":\"alice\",\"password\":\"guess\"}");
    while (code == 401 && ++tries < 20);
    assert_int_equal(code, 429);
    /* the role matrix failed once already, test_user_update three times */
    assert_true(tries >= 6 && tries <= 7);
    assert_non_null(strstr(C->resp, "too many failed logins"));
    assert_int_equal(api(NULL, "POST", "/admin/login",
                         "{\"name\":\"alice\",\"password\":\"alice-secret\"}"),
                     429);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances", NULL), 200);
}

/* Runs sql on p's control store (p stopped): the rows it changed, or -1. */
static int control_exec(const struct myna_proc *p, const char *sql)
{
    char path[400];
    sqlite3 *db = NULL;
    int n = -1;

    snprintf(path, sizeof(path), "%s/var/control.db", p->dir);
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
        n = sqlite3_changes(db);
    sqlite3_close(db);
    return n;
}

/* A request on a thread of its own: by default sloth's login. */
struct slow_login {
    const char *url;
    const char *method, *body, *token;  /* NULL: POST, sloth's login, no token */
    long code;
    int64_t start_ms, end_ms;
};

static void *slow_login_run(void *arg)
{
    struct slow_login *l = arg;
    const char *body = l->body ? l->body : "{\"name\":\"sloth\",\"password\":\"sloth-secret-1\"}";
    char auth[200];
    const char *h[] = { "Content-Type: application/json", l->token ? auth : NULL, NULL };
    char resp[1024];

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", l->token ? l->token : "");
    l->start_ms = myna_mono_ms();
    l->code = h_http(l->method ? l->method : "POST", l->url, body, strlen(body), h, resp,
                     sizeof(resp));
    l->end_ms = myna_mono_ms();
    return NULL;
}

/* A master whose user sloth has a costly stored hash (sixteen times the
 * default's work) that matches no password: its login keeps the worker
 * busy for a while, then answers 401. */
static struct myna_proc *launch_with_sloth(const char *const *extra)
{
    struct myna_proc *p = launch(extra);
    char sql[400], *hash;

    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/users",
                            "{\"name\":\"sloth\",\"password\":\"sloth-secret-1\"}"),
                     201);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    /* a well-formed hash with logN 16 and p 4: 16 times the default's work */
    assert_int_equal(MYNA_SCRYPT_LOG_N * 100 + MYNA_SCRYPT_R * 10 + MYNA_SCRYPT_P, 1481);
    hash = myna_password_hash("something else", NULL);
    assert_non_null(hash);
    assert_int_equal(strncmp(hash, "scrypt$14$8$1$", 14), 0);
    snprintf(sql, sizeof(sql), "UPDATE users SET password_hash = 'scrypt$16$8$4$%s' "
             "WHERE name = 'sloth'", hash + 14);
    free(hash);
    assert_int_equal(control_exec(p, sql), 1);
    assert_int_equal(h_start(p, extra), 0);
    return p;
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* The CPU time p's master has used, in clock ticks (1/100 s). */
static long cpu_ticks(const struct myna_proc *p)
{
    char path[64], buf[1024], *q;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
    assert_non_null(f = fopen(path, "r"));
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_non_null(q = strrchr(buf, ')'));
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    assert_int_equal(sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
    return (long)(ut + st);
}

/* Waits until p's master used 100 ms of CPU more than since (cpu_ticks
 * before the request): a costly check is running on its worker, as an idle
 * master uses next to none. A fixed pause does not tell it on a loaded
 * machine, where the request may not even have been sent yet. */
static void wait_checking(const struct myna_proc *p, long since)
{
    for (int i = 0; i < 1500 && cpu_ticks(p) < since + 10; i++)  /* 30 s */
        pause_ms(20);
    if (cpu_ticks(p) < since + 10)
        fail_msg("the master never started the costly check");
}

/* Password checks run off the master's loop: while a login waits for a
 * costly stored hash, the master keeps answering everything else; the
 * login then answers. A burst past the worker's queue is answered 503; a
 * stop while a check runs waits for it and answers it. */
static void test_login_off_the_loop(void **state)
{
    /* a drain deadline past any check's time on a loaded machine (sloth's
     * takes seconds there): the stop below waits for the check */
    const char *patient[] = { "--drain-timeout-ms", "120000", NULL };
    struct slow_login l = { 0 };
    struct myna_proc *p;
    char url[200], resp[256];
    int64_t t0, t1;
    pthread_t th;

    (void)state;
    p = launch_with_sloth(patient);
    snprintf(url, sizeof(url), "%s/admin/login", p->admin_url);
    l.url = url;
    t0 = cpu_ticks(p);
    assert_int_equal(pthread_create(&th, NULL, slow_login_run, &l), 0);
    wait_checking(p, t0);  /* the login is being checked */
    snprintf(url, sizeof(url), "%s/healthz", p->public_url);
    t0 = myna_mono_ms();
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, resp, sizeof(resp)), 200);
    t1 = myna_mono_ms();
    pthread_join(th, NULL);
    assert_int_equal(l.code, 401);
    /* answered long before the login, not after it */
    assert_true(t1 < l.end_ms);
    assert_true(t1 - t0 < (l.end_ms - l.start_ms) / 2);

    /* a burst: sloth's costly check holds the worker while 16 more logins
     * (an unknown name costs a default check) arrive. Past 8 accepted, the
     * rest are told to come back (503). */
    {
        struct slow_login burst[17];
        pthread_t bt[17];
        int n401 = 0, n503 = 0;

        snprintf(url, sizeof(url), "%s/admin/login", p->admin_url);
        for (int i = 0; i < 17; i++) {
            memset(&burst[i], 0, sizeof(burst[i]));
            burst[i].url = url;
            if (i > 0)
                burst[i].body = "{\"name\":\"nobody\",\"password\":\"nobody-secret\"}";
            if (i == 0)
                t0 = cpu_ticks(p);
            assert_int_equal(pthread_create(&bt[i], NULL, slow_login_run, &burst[i]), 0);
            if (i == 0)
                wait_checking(p, t0);  /* sloth's check holds the worker */
        }
        for (int i = 0; i < 17; i++) {
            pthread_join(bt[i], NULL);
            n401 += burst[i].code == 401;
            n503 += burst[i].code == 503;
        }
        assert_int_equal(burst[0].code, 401);
        assert_true(n503 >= 1);
        assert_true(n401 <= 8);
        assert_int_equal(n401 + n503, 17);
        assert_true(h_log_contains(p, "event=password_busy"));
    }

    /* a stop while a login is being checked: the drain waits for it, so
     * its answer leaves before the master exits */
    memset(&l, 0, sizeof(l));
    l.url = url;
    t0 = cpu_ticks(p);
    assert_int_equal(pthread_create(&th, NULL, slow_login_run, &l), 0);
    wait_checking(p, t0);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    pthread_join(th, NULL);
    assert_int_equal(l.code, 401);
    h_release(p);
}

/* bob (password bob-secret-1) and a change of it to bob-secret-2 by
 * token, queued on the worker behind sloth's costly login: both requests on
 * threads of their own. */
struct queued {
    struct slow_login slow, put;
    char login[200], bob[200];
    pthread_t t1, t2;
};

static void queue_password_change(struct myna_proc *p, const char *token, struct queued *q)
{
    long since;

    memset(q, 0, sizeof(*q));
    snprintf(q->login, sizeof(q->login), "%s/admin/login", p->admin_url);
    snprintf(q->bob, sizeof(q->bob), "%s/admin/users/bob", p->admin_url);
    q->slow.url = q->login;
    since = cpu_ticks(p);
    assert_int_equal(pthread_create(&q->t1, NULL, slow_login_run, &q->slow), 0);
    wait_checking(p, since);  /* sloth's check holds the worker */
    q->put.url = q->bob;
    q->put.method = "PUT";
    q->put.body = "{\"password\":\"bob-secret-2\"}";
    q->put.token = token;
    assert_int_equal(pthread_create(&q->t2, NULL, slow_login_run, &q->put), 0);
    pause_ms(100);  /* the change waits behind it */
}

/* After both answered: bob's password is still the first one. */
static void password_unchanged(struct myna_proc *p, struct queued *q)
{
    pthread_join(q->t1, NULL);
    pthread_join(q->t2, NULL);
    assert_int_equal(api_at(p, NULL, "POST", "/admin/login",
                            "{\"name\":\"bob\",\"password\":\"bob-secret-2\"}"),
                     401);
    assert_int_equal(api_at(p, NULL, "POST", "/admin/login",
                            "{\"name\":\"bob\",\"password\":\"bob-secret-1\"}"),
                     200);
}

static void add_bob(struct myna_proc *p)
{
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/users",
                            "{\"name\":\"bob\",\"password\":\"bob-secret-1\"}"),
                     201);
}

/* A request that waited for the worker is allowed again when its turn
 * comes: an admin demoted meanwhile no longer changes a password. */
static void test_permission_checked_after_the_wait(void **state)
{
    struct myna_proc *p;
    struct queued q;
    char ivy[80];

    (void)state;
    p = launch_with_sloth(NULL);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/users",
                            "{\"name\":\"ivy\",\"role\":\"admin\"}"),
                     201);
    answer_str("token", ivy, sizeof(ivy));
    add_bob(p);
    queue_password_change(p, ivy, &q);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", "/admin/users/ivy", "{\"role\":\"user\"}"),
                     200);
    password_unchanged(p, &q);
    assert_int_equal(q.slow.code, 401);
    assert_int_equal(q.put.code, 403);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

/* A stop whose drain ends before a waiting request's turn: that request
 * gets no answer, so it must change nothing either (its client will try
 * again and must not find it half done). */
static void test_stop_past_the_deadline_changes_nothing(void **state)
{
    const char *quick[] = { "--drain-timeout-ms", "50", NULL };
    struct myna_proc *p;
    struct queued q;

    (void)state;
    p = launch_with_sloth(quick);
    add_bob(p);
    queue_password_change(p, ADMIN_TOKEN, &q);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    assert_int_equal(h_start(p, NULL), 0);
    password_unchanged(p, &q);
    assert_int_not_equal(q.put.code, 200);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

/* Audit rows older than audit_keep_days go at start (and hourly); 0 keeps
 * them all. */
static void test_audit_pruned(void **state)
{
    const char *keep_all[] = { "--audit-keep-days", "0", NULL };
    int64_t day = 86400000, now = myna_wall_ms();
    struct myna_proc *p;
    char sql[400];

    (void)state;
    p = launch(NULL);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    /* 'ahead' was written while the clock ran a day fast: among the oldest
     * rows, it must not hold back the old ones behind it */
    snprintf(sql, sizeof(sql), "INSERT INTO audit(ts_ms, action, target) VALUES"
             "(%lld, 'ahead', 'd'), (1000, 'ancient', 'a'), (%lld, 'last.year', 'b'),"
             " (%lld, 'yesterday', 'c')",
             (long long)(now + day), (long long)(now - 366 * day), (long long)(now - day));
    assert_int_equal(control_exec(p, sql), 4);
    /* more than one step of old rows (500) */
    assert_int_equal(control_exec(p, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                                     " FROM k WHERE i < 1200) INSERT INTO audit(ts_ms, action)"
                                     " SELECT 2000, 'bulk' FROM k"),
                     1200);
    assert_int_equal(h_start(p, keep_all), 0);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/audit?limit=1000&offset=1000", NULL),
                     200);  /* the oldest rows */
    assert_non_null(strstr(C->resp, "\"ancient\""));
    assert_false(h_log_contains(p, "event=audit_pruned"));
    assert_int_equal(h_stop(p, SIGTERM), 0);

    assert_int_equal(h_start(p, NULL), 0);  /* 365 days by default */
    assert_true(h_log_contains(p, "event=audit_pruned rows=1202"));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/audit", NULL), 200);
    assert_null(strstr(C->resp, "\"ancient\""));
    assert_null(strstr(C->resp, "\"last.year\""));
    assert_null(strstr(C->resp, "\"bulk\""));
    assert_non_null(strstr(C->resp, "\"yesterday\""));
    assert_non_null(strstr(C->resp, "\"ahead\""));
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

/* in_state on a master of its own. */
struct state_at {
    const struct myna_proc *p;
    struct state_want w;
};

static int in_state_at(void *arg)
{
    struct state_at *s = arg;

    return in_state_of(s->p, &s->w);
}

/* The size of the array p answers to GET path (-1: not an array). */
static int count_at(const struct myna_proc *p, const char *path)
{
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", path, NULL), 200);
    return answer_len();
}

/* A change whose audit row cannot be written is not made (500), and
 * secrets whose export cannot be audited are not shown. The control store
 * here refuses every audit row but instance.update's and instance.start's. */
static void test_no_change_without_its_audit_row(void **state)
{
    const char *bots[] = { "--bots", "1", NULL };
    struct state_at up = { NULL, { "aud", "running" } }, idle = { NULL, { "vault", "stopped" } };
    const char *contact = "/admin/whatsapp/instances/aud/contacts/15550007777";
    char ann[80], ann_token_id[32], path[200];
    int n_users, n_tokens;
    double version;
    struct myna_proc *p;

    (void)state;
    p = launch(bots);
    up.p = idle.p = p;
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/users",
                            "{\"name\":\"ann\",\"password\":\"ann-secret-1\"}"),
                     201);
    answer_str("token", ann, sizeof(ann));
    snprintf(ann_token_id, sizeof(ann_token_id), "%.0f", answer_num("token_id"));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                            "{\"name\":\"Aud\",\"provider\":\"sim\"}"),
                     201);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                            "{\"name\":\"Vault\",\"provider\":\"cloud\",\"phone_number_id\":\"1\","
                            "\"access_token\":\"EAAGvaultsecret\",\"app_secret\":\"s\","
                            "\"verify_token\":\"v\",\"auto_start\":false}"),
                     201);
    assert_true(h_wait(in_state_at, &up, 10000));  /* the bot made its store */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", contact,
                            "{\"preferences\":{\"tone\":\"brief\"}}"),
                     200);
    snprintf(path, sizeof(path), "%s/messages", contact);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", path, "{\"text\":\"first words\"}"), 202);
    assert_true(audit_has(p, "contact.preferences", "aud", NULL));
    assert_true(audit_has(p, "contact.message", "aud", NULL));
    assert_int_equal(h_stop(p, SIGTERM), 0);
    assert_int_equal(control_exec(p, "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit"
                                     " WHEN NEW.action NOT IN ('instance.update', 'instance.start')"
                                     " BEGIN SELECT RAISE(ABORT, 'audit refused'); END"),
                     0);
    assert_int_equal(h_start(p, bots), 0);
    assert_true(h_wait(in_state_at, &up, 10000));
    n_users = count_at(p, "/admin/users");
    n_tokens = count_at(p, "/admin/tokens");

    /* users and tokens */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/users", "{\"name\":\"zed\"}"), 500);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", "/admin/users/ann", "{\"disabled\":true}"),
                     500);
    assert_int_equal(api_at(p, ann, "GET", "/admin/users", NULL), 200);  /* still enabled */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"more\"}"), 500);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/tokens", "{\"role\":\"guest\"}"), 500);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/tokens", "{\"user\":\"ann\"}"), 500);
    snprintf(path, sizeof(path), "/admin/tokens/%s", ann_token_id);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "DELETE", path, NULL), 500);
    assert_int_equal(api_at(p, ann, "GET", "/admin/users", NULL), 200);  /* not revoked */
    assert_int_equal(api_at(p, NULL, "POST", "/admin/login",
                            "{\"name\":\"ann\",\"password\":\"ann-secret-1\"}"),
                     500);
    assert_null(strstr(C->resp, "myna_"));
    assert_int_equal(count_at(p, "/admin/users"), n_users);
    assert_int_equal(count_at(p, "/admin/tokens"), n_tokens);

    /* a contact's preferences and an operator's message */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", contact, "{\"preferences\":{\"lang\":\"fr\"}}"),
                     500);
    snprintf(path, sizeof(path), "%s/messages", contact);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", path, "{\"text\":\"hello there\"}"), 500);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", contact, NULL), 200);
    assert_non_null(strstr(C->resp, "\"tone\":\"brief\""));
    assert_null(strstr(C->resp, "lang"));
    assert_non_null(strstr(C->resp, "first words"));
    assert_null(strstr(C->resp, "hello there"));
    assert_int_equal(h_db_count(p, "aud", "outbox", NULL), 1);

    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/vault", NULL), 200);
    version = answer_num("version");
    assert_true(version >= 1);

    /* secrets: not shown, and no change that would show them is made */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/vault?secrets=1",
                            NULL),
                     500);
    assert_null(strstr(C->resp, "EAAGvaultsecret"));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/vault?secrets=1",
                            "{\"name\":\"Vault 2\"}"),
                     500);
    assert_null(strstr(C->resp, "EAAGvaultsecret"));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST",
                            "/admin/whatsapp/instances/vault/start?secrets=1", ""),
                     500);
    assert_null(strstr(C->resp, "EAAGvaultsecret"));
    assert_true(in_state_at(&idle));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/vault", NULL), 200);
    assert_non_null(strstr(C->resp, "\"name\":\"Vault\""));
    assert_non_null(strstr(C->resp, "\"auto_start\":false"));
    /* a start or stop that is not made leaves the version as it is stored */
    assert_true(answer_num("version") == version);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/vault/stop", ""),
                     500);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/vault", NULL), 200);
    assert_true(answer_num("version") == version);
    /* the same change without the export is made */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/vault",
                            "{\"name\":\"Vault 2\"}"),
                     200);
    assert_non_null(strstr(C->resp, "\"name\":\"Vault 2\""));
    assert_true(answer_num("version") == version + 1);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

/* The version of instance id on p, or -1. */
static double version_at(const struct myna_proc *p, const char *id)
{
    char path[200];

    snprintf(path, sizeof(path), "/admin/whatsapp/instances/%s", id);
    return api_at(p, ADMIN_TOKEN, "GET", path, NULL) == 200 ? answer_num("version") : -1;
}

/* p's instances.json: two instances, shop's name and desk's enabled as
 * given; shop has every kind of secret, its key from a named provider. */
static void write_instances(const struct myna_proc *p, const char *shop_name, int desk_enabled)
{
    char path[400];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/instances.json", p->dir);
    assert_non_null(fp = fopen(path, "w"));
    fprintf(fp,
            "{\"llm_providers\": {\"cloud:fake\": {\"url\": \"http://127.0.0.1:9/v1\","
            " \"model\": \"m\", \"api_key\": \"sk-from-the-file\"}},\n"
            " \"instances\": [{\"id\": \"shop\", \"name\": \"%s\", \"provider\": \"cloud\","
            " \"phone_number_id\": \"700100\", \"access_token\": \"EAAGshoptoken\","
            " \"app_secret\": \"shop-secret\", \"verify_token\": \"verify-shop\","
            " \"auto_start\": false, \"llm\": \"cloud:fake\"},\n"
            "  {\"id\": \"desk\", \"name\": \"Desk\", \"provider\": \"sim\", \"enabled\": %s}]}\n",
            shop_name, desk_enabled ? "true" : "false");
    assert_int_equal(fclose(fp), 0);
}

/* --instances at every start: an instance the file says as it is stored is
 * left as it is (its version, no instance.import row); each start wrote it
 * again, so the audit log showed a change at every restart. One the file
 * changed, by one field, is written with its row; and the file still wins
 * over what the API changed since. */
static void test_instances_file_unchanged_at_restart(void **state)
{
    struct myna_proc *p;

    (void)state;
    setenv("MYNA_ADMIN_TOKEN", ADMIN_TOKEN, 1);
    p = h_launch(NULL, NULL);
    unsetenv("MYNA_ADMIN_TOKEN");
    assert_non_null(p);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    write_instances(p, "Shop", 0);
    assert_int_equal(h_start(p, NULL), 0);
    assert_true(version_at(p, "shop") == 1);
    assert_true(version_at(p, "desk") == 1);
    assert_int_equal(audit_count(p, "instance.import", "shop", NULL), 1);
    assert_int_equal(audit_count(p, "instance.import", "desk", NULL), 1);

    /* the same file again, twice: nothing written */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(h_stop(p, SIGTERM), 0);
        assert_int_equal(h_start(p, NULL), 0);
        assert_true(version_at(p, "shop") == 1);
        assert_true(version_at(p, "desk") == 1);
        assert_int_equal(audit_count(p, "instance.import", "shop", NULL), 1);
        assert_int_equal(audit_count(p, "instance.import", "desk", NULL), 1);
    }

    /* one field changed, the name or enabled: that instance only */
    assert_int_equal(h_stop(p, SIGTERM), 0);
    write_instances(p, "Shop 2", 0);
    assert_int_equal(h_start(p, NULL), 0);
    assert_true(version_at(p, "shop") == 2);
    assert_non_null(strstr(C->resp, "\"name\":\"Shop 2\""));
    assert_int_equal(audit_count(p, "instance.import", "shop", NULL), 2);
    assert_true(version_at(p, "desk") == 1);
    assert_int_equal(audit_count(p, "instance.import", "desk", NULL), 1);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    write_instances(p, "Shop 2", 1);
    assert_int_equal(h_start(p, NULL), 0);
    assert_true(version_at(p, "desk") == 2);
    assert_non_null(strstr(C->resp, "\"enabled\":true"));
    assert_int_equal(audit_count(p, "instance.import", "desk", "\"enabled\":true"), 1);
    assert_true(version_at(p, "shop") == 2);
    assert_int_equal(audit_count(p, "instance.import", "shop", NULL), 2);

    /* changed through the API since: the file's settings are back at the
     * next start, as a change */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/desk",
                            "{\"name\":\"Front desk\"}"),
                     200);
    assert_true(answer_num("version") == 3);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    assert_int_equal(h_start(p, NULL), 0);
    assert_true(version_at(p, "desk") == 4);
    assert_non_null(strstr(C->resp, "\"name\":\"Desk\""));
    assert_int_equal(audit_count(p, "instance.import", "desk", NULL), 3);
    assert_true(version_at(p, "shop") == 2);
    assert_int_equal(audit_count(p, "instance.import", "shop", NULL), 2);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

/* What the API changed is what the next start of the master does: a
 * stopped instance stays stopped, a created one is back. */
static void test_changes_survive_a_restart(void **state)
{
    const char *extra[] = { "--bots", "1", NULL };
    struct state_want quiet = { "quiet", "stopped" }, loud = { "loud", "running" };

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Quiet\",\"provider\":\"sim\"}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Loud\",\"provider\":\"sim\"}"),
                     201);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/quiet/stop", ""), 200);
    assert_true(h_wait(in_state, &quiet, 10000));
    assert_int_equal(h_stop(&C->p, SIGTERM), 0);
    assert_int_equal(h_start(&C->p, extra), 0);
    assert_true(h_wait(in_state, &loud, 10000));
    assert_true(in_state(&quiet));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/quiet", NULL), 200);
    assert_non_null(strstr(C->resp, "\"auto_start\":false"));
}

/* A cloud instance named name (id: its slug) with app secret secret and
 * the access token token; auto_start false. */
static long create_cloud(const char *name, const char *secret, const char *token)
{
    char body[600];

    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"provider\":\"cloud\",\"phone_number_id\":\"900100\","
             "\"waba_id\":\"900200\",\"access_token\":\"%s\",\"app_secret\":\"%s\","
             "\"verify_token\":\"verify-me\",\"auto_start\":false}",
             name, token, secret);
    return api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances", body);
}

/* An instance whose store cannot be opened (its file is a directory here) is
 * created and listed, and its webhooks are answered 503 (Meta keeps them and
 * retries); the others go on, through changes and a restart of the master.
 * Once the file is mended, the next save of the instance opens it. */
static void test_a_broken_store_keeps_the_others_up(void **state)
{
    const char *extra[] = { "--bots", "1", NULL };
    struct state_want steady = { "steady", "running" };
    struct reply_want first = { "steady", "15550003333", "Open 9-18." },
                      second = { "steady", "15550004444", "Open 9-18." };
    size_t len;
    char *body = h_read_data("cloud/cloud-text.json", &len), path[600], resp[512];

    (void)state;
    assert_non_null(body);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Steady\",\"provider\":\"sim\",\"batch\":{\"window_ms\":150},"
                         "\"faq\":[{\"q\":[\"when are you open\"],\"a\":\"Open 9-18.\"}]}"),
                     201);
    assert_int_equal(create_cloud("Broken", "broken-secret", "token-1"), 201);
    /* its store file becomes a directory while the master is down (a
     * create would trash such a leftover) */
    assert_int_equal(h_stop(&C->p, SIGTERM), 0);
    snprintf(path, sizeof(path), "%s/var/instances/broken.db", C->p.dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(h_start(&C->p, extra), 0);
    assert_true(h_log_contains(&C->p, "event=instance_store_failed instance=broken"));
    assert_int_equal(h_post_signed(C->p.public_url, "broken", "broken-secret", body, len, resp,
                                   sizeof(resp)),
                     503);
    /* a change of another instance: the simulator works with the new one */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/steady",
                         "{\"fallback_text\":\"Ask again later.\"}"),
                     200);
    assert_true(h_wait(in_state, &steady, 10000));
    say("steady", "15550003333", "when are you open?");
    assert_true(h_wait(has_reply, &first, 10000));

    /* the master starts with it as it is */
    assert_int_equal(h_stop(&C->p, SIGTERM), 0);
    assert_int_equal(h_start(&C->p, extra), 0);
    assert_true(h_wait(in_state, &steady, 10000));
    say("steady", "15550004444", "when are you open?");
    assert_true(h_wait(has_reply, &second, 10000));
    assert_int_equal(h_post_signed(C->p.public_url, "broken", "broken-secret", body, len, resp,
                                   sizeof(resp)),
                     503);
    assert_int_equal(h_db_count(&C->p, "steady", "inbox", NULL), 2);

    /* mended, a save opens it, even one that changes nothing */
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/broken", "{}"), 200);
    assert_int_equal(h_post_signed(C->p.public_url, "broken", "broken-secret", body, len, resp,
                                   sizeof(resp)),
                     200);
    assert_int_equal(h_db_count(&C->p, "broken", "inbox", NULL), 1);
    free(body);
}

/* A value that looks sealed but does not open with this server's key is
 * refused (400, nothing stored), not stored unusable; and a restart starts
 * a bot that was never started (auto_start false). */
static void test_refused_before_stored_and_restart_starts(void **state)
{
    struct state_want idle = { "idle", "stopped" }, up = { "idle", "running" };
    char token[80];

    (void)state;
    snprintf(token, sizeof(token), "enc:v1:%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(create_cloud("Pasted", "pasted-secret", token), 400);
    assert_non_null(strstr(C->resp, "access_token"));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/pasted", NULL), 404);
    assert_int_equal(create_cloud("Pasted", "pasted-secret", "plain-token"), 201);
    assert_string_equal(answer_str("id", token, sizeof(token)), "pasted");

    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Idle\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    assert_true(in_state(&idle));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/idle/restart", ""), 200);
    assert_true(h_wait(in_state, &up, 10000));
}

/* An instance whose stored settings no longer load (a value a later check
 * refuses, a secret the key does not open) is left out at start, but the
 * API lists it with why and answers 409 naming it to anything but a PUT of
 * the whole instance (an import) or a delete; the others go on. */
static void test_an_unloaded_instance_is_replaced_or_deleted(void **state)
{
    const char *extra[] = { "--bots", "1", NULL };
    struct state_want fine = { "fine", "running" };
    char admin[80], out[65536], file[300], resp[512], url[400];
    const char *list[] = { "instance", "list", "--admin", admin, "--token", ADMIN_TOKEN, NULL };
    const char *export[] = { "instance", "export", "--admin", admin, "--token", ADMIN_TOKEN, NULL };
    const char *import[] = { "instance", "import", file, "--admin", admin, "--token", ADMIN_TOKEN,
                             NULL };
    const char *whole = "{\"id\":\"mended\",\"name\":\"Mended\",\"provider\":\"cloud\","
                        "\"phone_number_id\":\"900100\",\"waba_id\":\"900200\","
                        "\"access_token\":\"token-9\",\"app_secret\":\"mended-secret\","
                        "\"verify_token\":\"verify-me\",\"auto_start\":false}";
    size_t len;
    char *hook = h_read_data("cloud/cloud-text.json", &len);
    cJSON *arr, *it;
    int listed = 0;
    FILE *f;

    (void)state;
    assert_non_null(hook);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Fine\",\"provider\":\"sim\"}"),
                     201);
    assert_int_equal(create_cloud("Stale", "stale-secret", "token-1"), 201);
    assert_int_equal(create_cloud("Mended", "mended-secret", "token-1"), 201);
    assert_int_equal(h_stop(&C->p, SIGTERM), 0);
    assert_int_equal(control_exec(&C->p, "UPDATE instances SET config = "
                                          "json_set(config, '$.max_memory_mb', 0.5) "
                                          "WHERE id IN ('stale', 'mended')"),
                     2);
    assert_int_equal(h_start(&C->p, extra), 0);
    assert_true(h_log_contains(&C->p, "event=instance_not_loaded instance=stale"));
    assert_true(h_wait(in_state, &fine, 10000));

    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances", NULL), 200);
    arr = cJSON_Parse(C->resp);
    cJSON_ArrayForEach(it, arr) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id"),
                    *st = cJSON_GetObjectItemCaseSensitive(it, "state"),
                    *why = cJSON_GetObjectItemCaseSensitive(it, "error");
        if (cJSON_IsString(id) && strcmp(id->valuestring, "stale") == 0) {
            listed = 1;
            assert_string_equal(st->valuestring, "not_loaded");
            assert_non_null(strstr(why->valuestring, "max_memory_mb"));
        }
    }
    cJSON_Delete(arr);
    assert_true(listed);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/stale", NULL), 409);
    assert_non_null(strstr(C->resp, "did not load at start"));
    assert_non_null(strstr(C->resp, "max_memory_mb"));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/stale/start", ""), 409);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/stale/status", NULL),
                     409);
    /* its webhooks are 503 (Meta retries them), counted and logged as not
     * loaded, not as an unknown instance */
    assert_int_equal(h_post_signed(C->p.public_url, "stale", "stale-secret", hook, len, resp,
                                   sizeof(resp)),
                     503);
    assert_non_null(strstr(resp, "did not load"));
    snprintf(url, sizeof(url),
             "%s/webhook/stale?hub.mode=subscribe&hub.challenge=1&hub.verify_token=v",
             C->p.public_url);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 503);
    assert_true(h_metric(&C->p, "myna_webhooks_rejected_total{reason=\"not_loaded\"}") == 2);
    assert_true(h_metric(&C->p, "myna_webhooks_rejected_total{reason=\"unknown_instance\"}") ==
                0);
    assert_true(h_log_contains(&C->p, "event=webhook_instance_not_loaded instance=stale"));
    /* a PUT is the whole instance: nothing stored is kept */
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/stale",
                         "{\"access_token\":\"token-2\"}"),
                     400);
    assert_int_equal(api(ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/mended",
                         "{\"id\":\"mended\",\"name\":\"Mended\",\"provider\":\"cloud\","
                         "\"phone_number_id\":\"900100\",\"waba_id\":\"900200\","
                         "\"access_token\":\"\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "en-9\","
                         "\"app_secret\":\"mended-secret\",\"verify_token\":\"verify-me\"}"),
                     400);
    assert_non_null(strstr(C->resp, "access_token"));
    assert_non_null(strstr(C->resp, "must be given itself"));

    /* the CLI lists them with why, an export leaves them out saying so
     * (exit 1: not a whole backup), and an import of the whole instance
     * mends it */
    snprintf(admin, sizeof(admin), "%s", C->p.admin_url + strlen("http://"));
    assert_int_equal(h_run(list, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "not_loaded"));
    assert_non_null(strstr(out, "max_memory_mb"));
    assert_int_equal(h_run(export, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "instance 'stale' left out, it did not load at start"));
    assert_non_null(strstr(out, "\"fine\""));
    snprintf(file, sizeof(file), "%s/mended.json", C->p.dir);
    assert_non_null(f = fopen(file, "w"));
    fprintf(f, "[%s]", whole);
    fclose(f);
    assert_int_equal(h_run(import, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "updated mended"));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/mended", NULL), 200);
    assert_true(audit_has(&C->p, "instance.update", "mended", NULL));
    assert_int_equal(h_post_signed(C->p.public_url, "mended", "mended-secret", hook, len, resp,
                                   sizeof(resp)),
                     200);

    assert_int_equal(api(ADMIN_TOKEN, "DELETE", "/admin/whatsapp/instances/stale", NULL), 200);
    assert_true(audit_has(&C->p, "instance.delete", "stale", NULL));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/stale", NULL), 404);
    assert_int_equal(h_post_signed(C->p.public_url, "stale", "stale-secret", hook, len, resp,
                                   sizeof(resp)),
                     404);
    assert_int_equal(h_http("GET", url, NULL, 0, NULL, NULL, 0), 404);
    assert_true(h_metric(&C->p, "myna_webhooks_rejected_total{reason=\"not_loaded\"}") == 2);
    assert_true(h_metric(&C->p, "myna_webhooks_rejected_total{reason=\"unknown_instance\"}") ==
                2);
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances", NULL), 200);
    assert_null(strstr(C->resp, "not_loaded"));
    assert_int_equal(create_cloud("Stale", "stale-secret", "token-3"), 201);
    assert_string_equal(answer_str("id", (char[80]){ 0 }, 80), "stale");
    assert_true(in_state(&fine));
    free(hook);
}

/* A token made with {"role": R} names its new user <role>-<time>; a name
 * already taken (a user named so by hand, or two tokens in one
 * millisecond) gets -2 after it, not 409. */
static void test_token_for_a_role_finds_a_free_name(void **state)
{
    const char *extra[] = { "--bots", "1", NULL };
    char sql[600], user[80];
    long long now = (long long)(myna_wall_ms() % 100000000);

    (void)state;
    assert_int_equal(h_stop(&C->p, SIGTERM), 0);
    /* every name the next two minutes would give is taken */
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE t(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM t WHERE k < 120000) "
             "INSERT INTO users(name, role, created_ms) "
             "SELECT 'guest-' || ((%lld + k) %% 100000000), 0, 1 FROM t",
             now);
    assert_true(control_exec(&C->p, sql) > 120000);
    assert_int_equal(h_start(&C->p, extra), 0);
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"ci\",\"role\":\"guest\"}"),
                     201);
    answer_str("user", user, sizeof(user));
    assert_int_equal(strncmp(user, "guest-", 6), 0);
    assert_int_equal(strcmp(user + strlen(user) - 2, "-2"), 0);
    assert_true(audit_has(&C->p, "user.create", user, NULL));
}

/* The admin API takes bodies up to 1 MiB whatever max_body_bytes, which
 * bounds webhooks: a server that takes small webhooks still takes an
 * instance with a long FAQ. */
static void test_admin_body_limit_is_its_own(void **state)
{
    const char *small[] = { "--max-body-bytes", "4k", NULL };
    static char body[64 * 1024];
    struct myna_proc *p;
    size_t n;

    (void)state;
    p = launch(small);
    n = (size_t)snprintf(body, sizeof(body), "{\"name\":\"Faq\",\"provider\":\"sim\",\"faq\":[");
    for (int i = 0; i < 40; i++)  /* 40 answers of 400 bytes */
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "%s{\"q\":[\"question %d\"],\"a\":\"%0400d\"}", i ? "," : "", i, i);
    snprintf(body + n, sizeof(body) - n, "]}");
    assert_true(strlen(body) > 16 * 1024);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/whatsapp/instances", body), 201);
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", "/admin/whatsapp/instances/faq", body), 200);
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

/* The authentication scheme is a case-insensitive token, and one or more
 * spaces part it from the credentials (RFC 9110, 11.1 and 11.4): "bearer"
 * as some clients send it is the same scheme. */
static void test_bearer_scheme_in_any_case(void **state)
{
    const char *const forms[] = { "Authorization: bearer " ADMIN_TOKEN,
                                  "Authorization: BEARER " ADMIN_TOKEN,
                                  "Authorization: Bearer   " ADMIN_TOKEN };
    char url[sizeof(C->p.admin_url) + 64];
    const char *h[2] = { NULL, NULL };

    (void)state;
    snprintf(url, sizeof(url), "%s/admin/users", C->p.admin_url);
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        h[0] = forms[i];
        assert_int_equal(h_http("GET", url, NULL, 0, h, C->resp, sizeof(C->resp)), 200);
    }
    h[0] = "Authorization: Bearer" ADMIN_TOKEN;  /* no space: another scheme */
    assert_int_equal(h_http("GET", url, NULL, 0, h, C->resp, sizeof(C->resp)), 401);
    h[0] = "Authorization: Basic " ADMIN_TOKEN;
    assert_int_equal(h_http("GET", url, NULL, 0, h, C->resp, sizeof(C->resp)), 401);
}

/* Every 405 names the methods its path takes (RFC 9110 15.5.6); a path
 * that takes no such method answers 405, not as if it were another. */
static void test_405_names_the_methods_allowed(void **state)
{
    static const struct { const char *method, *path, *allow; } cases[] = {
        { "GET", "/admin/login", "POST" },
        { "PATCH", "/admin/whatsapp/instances", "GET, HEAD, POST" },
        { "POST", "/admin/whatsapp/instances/allow", "GET, HEAD, PUT, DELETE" },
        { "GET", "/admin/whatsapp/instances/allow/start", "POST" },
        { "POST", "/admin/whatsapp/instances/allow/status", "GET, HEAD" },
        { "DELETE", "/admin/whatsapp/instances/allow/contacts/15550001111", "GET, HEAD, PUT" },
        { "GET", "/admin/whatsapp/instances/allow/contacts/15550001111/messages", "POST" },
        { "DELETE", "/admin/users", "GET, HEAD, POST" },
        { "GET", "/admin/users/admin", "PUT" },
        { "PUT", "/admin/tokens", "GET, HEAD, POST" },
        { "GET", "/admin/tokens/1", "DELETE" },
        { "POST", "/admin/audit", "GET, HEAD" },
        { "POST", "/healthz", "GET, HEAD" },
        { "DELETE", "/metrics", "GET, HEAD" },
    };
    const char *h[] = { "Content-Type: application/json", "Authorization: Bearer " ADMIN_TOKEN,
                        NULL };
    char url[sizeof(C->p.admin_url) + 128], head[4096], allow[64];

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Allow\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(url, sizeof(url), "%s%s", C->p.admin_url, cases[i].path);
        if (h_http_ex(cases[i].method, url, "{}", 2, h, C->resp, sizeof(C->resp), head,
                      sizeof(head)) != 405 ||
            !h_header(head, "Allow", allow, sizeof(allow)) || strcmp(allow, cases[i].allow) != 0)
            fail_msg("%s %s: '%.40s' with Allow '%s', not 405 with '%s'", cases[i].method,
                     cases[i].path, head, allow, cases[i].allow);
    }
    /* no such resource: 404 whatever the method */
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances/allow/nothing", "{}"),
                     404);
}

/* A HEAD is answered wherever a GET is (RFC 9110 9.3.2): the same status
 * and Content-Length, no body, the same checks of who asks, and nothing
 * changed by it (an export of secrets asked by a HEAD shows none and
 * writes no audit row). */
static void test_head_answered_as_get(void **state)
{
    static const char *const paths[] = {
        "/admin/whatsapp/instances",
        "/admin/whatsapp/instances/headed",
        "/admin/whatsapp/instances/headed/status",
        "/admin/whatsapp/instances/headed/stats",
        "/admin/whatsapp/instances/headed/logs",
        "/admin/whatsapp/instances/headed/contacts/15550002222",
        "/admin/users",
        "/admin/audit",
        "/admin/nothing",
    };
    const char *h[] = { "Authorization: Bearer " ADMIN_TOKEN, NULL };
    char url[sizeof(C->p.admin_url) + 128], head[4096], len[32], want[32];
    long code;

    (void)state;
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                         "{\"name\":\"Headed\",\"provider\":\"sim\",\"auto_start\":false}"),
                     201);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        snprintf(url, sizeof(url), "%s%s", C->p.admin_url, paths[i]);
        code = h_http("GET", url, NULL, 0, h, C->resp, sizeof(C->resp));
        snprintf(want, sizeof(want), "%zu", strlen(C->resp));
        if (h_http_ex("HEAD", url, NULL, 0, h, C->resp, sizeof(C->resp), head, sizeof(head)) !=
                code ||
            !h_header(head, "Content-Length", len, sizeof(len)) || strcmp(len, want) != 0)
            fail_msg("HEAD %s: '%.40s' Content-Length '%s'; GET: %ld, %s bytes", paths[i], head,
                     len, code, want);
        assert_string_equal(C->resp, "");
    }
    /* the same checks as a GET */
    snprintf(url, sizeof(url), "%s/admin/users", C->p.admin_url);
    assert_int_equal(h_http_ex("HEAD", url, NULL, 0, NULL, NULL, 0, head, sizeof(head)), 401);
    assert_true(h_header(head, "WWW-Authenticate", len, sizeof(len)));
    assert_int_equal(api(ADMIN_TOKEN, "POST", "/admin/tokens", "{\"name\":\"g\",\"role\":\"guest\"}"),
                     201);
    {
        char guest[80], auth[120];
        const char *gh[] = { auth, NULL };
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                 answer_str("token", guest, sizeof(guest)));
        snprintf(url, sizeof(url), "%s/admin/whatsapp/instances/headed?secrets=1",
                 C->p.admin_url);
        assert_int_equal(h_http("HEAD", url, NULL, 0, gh, NULL, 0), 403);
    }
    /* nothing changed: no export of secrets on record */
    assert_int_equal(h_http("HEAD", url, NULL, 0, h, NULL, 0), 200);
    assert_false(audit_has(&C->p, "instance.export_secrets", "headed", NULL));
    assert_int_equal(api(ADMIN_TOKEN, "GET", "/admin/whatsapp/instances/headed?secrets=1", NULL),
                     200);
    assert_true(audit_has(&C->p, "instance.export_secrets", "headed", NULL));
}

/* A contact's preference given twice is refused: stored, both values went
 * to the model ("lang: en; lang: fr") and to whoever read them back. */
static void test_preference_given_twice_refused(void **state)
{
    const char *bots[] = { "--bots", "1", NULL };
    const char *contact = "/admin/whatsapp/instances/twice/contacts/15550003333";
    struct state_at up = { NULL, { "twice", "running" } };
    struct myna_proc *p;

    (void)state;
    p = launch(bots);
    up.p = p;
    assert_int_equal(api_at(p, ADMIN_TOKEN, "POST", "/admin/whatsapp/instances",
                            "{\"name\":\"Twice\",\"provider\":\"sim\"}"),
                     201);
    assert_true(h_wait(in_state_at, &up, 10000));  /* the bot made its store */
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", contact,
                            "{\"preferences\":{\"lang\":\"en\",\"tone\":\"brief\","
                            "\"lang\":\"fr\"}}"),
                     400);
    assert_non_null(strstr(C->resp, "'lang' is given twice"));
    assert_false(audit_has(p, "contact.preferences", "twice", NULL));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "GET", contact, NULL), 200);
    assert_null(strstr(C->resp, "lang"));
    assert_int_equal(api_at(p, ADMIN_TOKEN, "PUT", contact,
                            "{\"preferences\":{\"lang\":\"fr\",\"tone\":\"brief\"}}"),
                     200);
    assert_non_null(strstr(C->resp, "\"preferences\":{\"lang\":\"fr\",\"tone\":\"brief\"}"));
    assert_int_equal(h_stop(p, SIGTERM), 0);
    h_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_huge_number_refused),
        cmocka_unit_test(test_update_fields_checked),
        cmocka_unit_test(test_null_id_is_left_out),
        cmocka_unit_test(test_reads_make_no_bot_store),
        cmocka_unit_test(test_stored_text_is_utf8),
        cmocka_unit_test(test_user_name_in_path_decoded),
        cmocka_unit_test(test_new_llm_url_needs_the_key_again),
        cmocka_unit_test(test_role_matrix),
        cmocka_unit_test(test_secrets_refused_before_any_change),
        cmocka_unit_test(test_put_that_changes_nothing),
        cmocka_unit_test(test_user_update),
        cmocka_unit_test(test_login_token_expires),
        cmocka_unit_test(test_token_revoke),
        cmocka_unit_test(test_last_way_in_stays),
        cmocka_unit_test(test_token_and_user_audit_detail),
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_secrets_sealed_at_rest),
        cmocka_unit_test(test_masked_secret_refused),
        cmocka_unit_test(test_leftover_files_are_trashed_at_create),
        cmocka_unit_test(test_leftover_log_is_trashed_at_create),
        cmocka_unit_test(test_trash_never_overwrites),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_delete_while_busy),
        cmocka_unit_test(test_login_limited),
        cmocka_unit_test(test_login_off_the_loop),
        cmocka_unit_test(test_permission_checked_after_the_wait),
        cmocka_unit_test(test_stop_past_the_deadline_changes_nothing),
        cmocka_unit_test(test_audit_pruned),
        cmocka_unit_test(test_no_change_without_its_audit_row),
        cmocka_unit_test(test_changes_survive_a_restart),
        cmocka_unit_test(test_instances_file_unchanged_at_restart),
        cmocka_unit_test(test_a_broken_store_keeps_the_others_up),
        cmocka_unit_test(test_refused_before_stored_and_restart_starts),
        cmocka_unit_test(test_an_unloaded_instance_is_replaced_or_deleted),
        cmocka_unit_test(test_token_for_a_role_finds_a_free_name),
        cmocka_unit_test(test_admin_body_limit_is_its_own),
        cmocka_unit_test(test_bearer_scheme_in_any_case),
        cmocka_unit_test(test_405_names_the_methods_allowed),
        cmocka_unit_test(test_head_answered_as_get),
        cmocka_unit_test(test_preference_given_twice_refused),
        cmocka_unit_test(test_trash_purged_while_running),  /* restarts the master */
    };

    if (getenv("MYNA_TEST_FILTER"))  /* one case: MYNA_TEST_FILTER=test_name (globs) */
        cmocka_set_test_filter(getenv("MYNA_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
