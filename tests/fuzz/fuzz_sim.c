/* fuzz_sim.c - libFuzzer harness for the simulator's two parsers of outside
 * bodies (wa/sim.h): the chat page's send and the bot's Graph request.
 *
 * The same bytes go to both. Whatever they are, each parser must return a
 * defined result and leave its output empty on failure. What a parser
 * accepts must keep the promises of sim.h, and must go on through the path
 * the master gives it:
 *   - a send becomes a Cloud API message webhook that the real Cloud parser
 *     (wa/cloud.h) must read back as exactly that message;
 *   - a Graph message becomes a status webhook that must read back too, and
 *     a log event whose render the page can parse (valid JSON, extra a
 *     fragment of an object).
 * A broken promise traps so the fuzzer keeps the input; everything is
 * released every run, so a leak shows as a LeakSanitizer report. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/record.h"
#include "wa/cloud.h"
#include "wa/instance.h"
#include "wa/sim.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WAMID "wamid.SIMFUZZ0123456789ABCDEF"

static char inst_id[] = "fuzz", inst_name[] = "Fuzz", inst_provider[] = "sim",
            inst_pnid[] = "912345678901234", inst_empty[] = "";

/* The instance the webhooks are built for (only these fields are read). */
static struct myna_instance *instance(void)
{
    static struct myna_instance in;

    in.id = inst_id;
    in.name = inst_name;
    in.provider = inst_provider;
    in.phone_number_id = inst_pnid;
    in.waba_id = inst_empty;
    return &in;
}

static int digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);

    if (n < min || n > max)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int terminated(const char *field, size_t cap)
{
    return memchr(field, '\0', cap) != NULL;
}

/* body must parse with the Cloud parser into the arena. */
static void cloud(char *body, struct myna_arena *a, struct myna_cloud_batch *b)
{
    struct myna_err err = MYNA_ERR_INIT;

    CHECK(body != NULL);
    CHECK(myna_cloud_parse(body, strlen(body), a, b, &err) == MYNA_OK);
    CHECK(b->n_ignored == 0 && b->n_errors == 0 && b->n_invalid == 0);
    free(body);
}

static void check_send(const struct myna_sim_send *s)
{
    struct myna_arena a = MYNA_ARENA_INIT(16u << 20);
    struct myna_cloud_batch b;
    const struct myna_inbound *in;

    CHECK(terminated(s->from, sizeof(s->from)) && digits(s->from, 1, 15));
    CHECK(terminated(s->name, sizeof(s->name)) && utf8_ok((const unsigned char *)s->name));
    CHECK(terminated(s->context, sizeof(s->context)) && printable_ascii(s->context));
    switch (s->kind) {
    case MYNA_SIM_TEXT:
        CHECK(s->text != NULL && s->text[0] != '\0' && utf8_ok((const unsigned char *)s->text));
        CHECK(s->reply_id == NULL && s->reply_title == NULL && s->reply_description == NULL);
        break;
    case MYNA_SIM_BUTTON:
    case MYNA_SIM_LIST:
        CHECK(s->text == NULL && s->reply_id != NULL && s->reply_title != NULL);
        CHECK(s->reply_id[0] != '\0' && s->reply_title[0] != '\0');
        CHECK(utf8_ok((const unsigned char *)s->reply_id));
        CHECK(utf8_ok((const unsigned char *)s->reply_title));
        CHECK(s->reply_description == NULL ||
              (s->kind == MYNA_SIM_LIST && utf8_ok((const unsigned char *)s->reply_description)));
        break;
    default:
        CHECK(0);
    }

    /* the webhook the master posts must read back as this message */
    cloud(myna_sim_message_webhook(instance(), s, WAMID, 1773478800), &a, &b);
    CHECK(b.n_msgs == 1 && b.n_statuses == 0);
    in = &b.msgs[0];
    CHECK(same(in->phone_number_id, inst_pnid));
    CHECK(same(in->wamid, WAMID));
    CHECK(same(in->contact, s->from));
    CHECK(same(in->profile_name, s->name));
    CHECK(in->ts == 1773478800);
    if (s->context[0])
        CHECK(same(in->context_id, s->context));
    else
        CHECK(in->context_id == NULL);
    if (s->kind == MYNA_SIM_TEXT) {
        CHECK(in->type == MYNA_MSG_TEXT && same(in->text, s->text) && in->reply_id == NULL);
    } else {
        CHECK(in->type == (s->kind == MYNA_SIM_BUTTON ? MYNA_MSG_BUTTON_REPLY
                                                      : MYNA_MSG_LIST_REPLY));
        CHECK(same(in->reply_id, s->reply_id) && same(in->text, s->reply_title));
    }
    myna_arena_free(&a);
}

/* The log event of r renders as JSON the page can read. */
static void check_log(struct myna_sim_graph_req *r)
{
    struct myna_sim_log *l = myna_sim_log_new();
    struct myna_buf out = MYNA_BUF_INIT(1u << 20);
    const cJSON *ev;
    cJSON *j;

    if (l == NULL)
        return;
    CHECK(myna_sim_log_add(l, 1, WAMID, r->to, r->type, r->text, r->extra, r->opaque,
                           MYNA_SIM_SENT, 1) != NULL);
    r->text = r->extra = r->opaque = NULL;  /* the log has them now */
    myna_sim_log_set(l, myna_sim_log_find(l, WAMID), MYNA_SIM_FAILED, "x");
    CHECK(myna_sim_log_render(l, r->to, 0, 0, &out) == MYNA_OK);
    j = cJSON_ParseWithLength(out.data, out.len);
    CHECK(j != NULL);
    ev = cJSON_GetObjectItemCaseSensitive(j, "events");
    CHECK(cJSON_GetArraySize(ev) == 1);
    CHECK(same(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev->child, "type")),
               r->type));
    CHECK(utf8_ok((const unsigned char *)out.data));
    cJSON_Delete(j);
    myna_buf_release(&out);
    myna_sim_log_free(l);
}

static void check_graph(struct myna_sim_graph_req *r)
{
    struct myna_arena a = MYNA_ARENA_INIT(16u << 20);
    struct myna_cloud_batch b;
    const struct myna_status_rec *st;
    cJSON *raw;

    if (r->kind == MYNA_SIM_GRAPH_READ) {
        CHECK(terminated(r->read_id, sizeof(r->read_id)));
        CHECK(r->read_id[0] != '\0' && printable_ascii(r->read_id));
        CHECK(r->typing == 0 || r->typing == 1);
        CHECK(r->text == NULL && r->extra == NULL && r->opaque == NULL);
        return;
    }
    CHECK(r->kind == MYNA_SIM_GRAPH_MESSAGE);
    CHECK(terminated(r->to, sizeof(r->to)) && digits(r->to, 1, 15));
    CHECK(terminated(r->type, sizeof(r->type)) && r->type[0] != '\0');
    CHECK(utf8_ok((const unsigned char *)r->type));
    CHECK(r->text != NULL && r->text[0] != '\0' && utf8_ok((const unsigned char *)r->text));
    if (r->opaque != NULL)
        CHECK(r->opaque[0] != '\0' && utf8_ok((const unsigned char *)r->opaque));
    if (r->extra != NULL) {
        /* a fragment of the page's event object */
        size_t n = strlen(r->extra);
        char *w = malloc(n + 3);
        cJSON *j;
        CHECK(w != NULL);
        w[0] = '{';
        memcpy(w + 1, r->extra, n);
        w[n + 1] = '}';
        w[n + 2] = '\0';
        j = cJSON_Parse(w);
        CHECK(j != NULL && cJSON_IsObject(j) && j->child != NULL);
        CHECK(utf8_ok((const unsigned char *)r->extra));
        cJSON_Delete(j);
        free(w);
    }

    /* the status webhooks of that message read back, opaque data included */
    cloud(myna_sim_status_webhook(instance(), WAMID, r->to, "failed", r->opaque, 7, 131047,
                                  r->text),
          &a, &b);
    CHECK(b.n_msgs == 0 && b.n_statuses == 1);
    st = &b.statuses[0];
    CHECK(same(st->wamid, WAMID) && same(st->recipient, r->to));
    CHECK(st->status == MYNA_STATUS_FAILED && st->error_code == 131047);
    CHECK(same(st->error_title, r->text));
    raw = cJSON_ParseWithLength(st->raw, st->raw_len);
    CHECK(raw != NULL);
    if (r->opaque != NULL)
        CHECK(same(cJSON_GetStringValue(
                       cJSON_GetObjectItemCaseSensitive(raw, "biz_opaque_callback_data")),
                   r->opaque));
    cJSON_Delete(raw);
    myna_arena_free(&a);

    check_log(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_sim_send s;
    struct myna_sim_graph_req r;
    struct myna_err err = MYNA_ERR_INIT;
    char msg[256];
    int rc, st, code = -1;

    rc = myna_sim_send_parse((const char *)data, size, &s, &err);
    switch (rc) {
    case MYNA_OK:
        CHECK(err.code == 0);
        check_send(&s);
        break;
    case MYNA_EPARSE:
    case MYNA_EINVAL:
    case MYNA_ETOOBIG:
    case MYNA_ENOMEM:
        CHECK(err.code == rc && err.msg[0] != '\0' && strlen(err.msg) < sizeof(err.msg));
        CHECK(s.text == NULL && s.reply_id == NULL && s.reply_title == NULL &&
              s.reply_description == NULL && s.from[0] == '\0');
        break;
    default:
        CHECK(0);
    }
    myna_sim_send_release(&s);

    st = myna_sim_graph_parse((const char *)data, size, &r, &code, msg, sizeof(msg));
    if (st == 0) {
        check_graph(&r);
    } else {
        CHECK(st == 400);
        CHECK(code == 100 || code == 131008 || code == 131009 || code == 1);
        CHECK(msg[0] != '\0' && terminated(msg, sizeof(msg)));
        CHECK(r.text == NULL && r.extra == NULL && r.opaque == NULL);
    }
    myna_sim_graph_release(&r);
    return 0;
}
