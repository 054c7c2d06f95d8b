/* fuzz_graph.c - libFuzzer harness for myna_graph_classify (and, on the
 * side, the text body builder).
 *
 * The input is a Graph API answer body, classified under every HTTP status
 * that changes the rules (none, 2xx, 3xx, 4xx, 407, 408, 429, 5xx) and as a transport
 * failure, from an exact-size copy (ASan sees any read past it). Whatever the
 * bytes, each result must keep the promises of graph.h: a defined class,
 * terminated bounded fields, an error text of clean UTF-8, OK only on a 2xx
 * with a wamid or "success", and the same answer twice. The same bytes as a
 * message text either fail with EINVAL or give a body that parses back to
 * exactly that text. A broken promise traps so the fuzzer keeps the input.
 *
 * The simulator stands in for Meta with the checks of the reference: every
 * message the bot's builders make must pass them. The bytes, cut at each
 * line break into a text and then ids and titles, go through the text,
 * button and list builders; each body built must be taken by the
 * simulator's Graph parser as that message, buttons and rows in order. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "wa/graph.h"
#include "wa/sim.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Printable UTF-8: well-formed (fuzz_util.h) and no control bytes. */
static int clean_utf8(const unsigned char *s)
{
    for (const unsigned char *c = s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;
    return utf8_ok(s);
}

static int terminated(const char *field, size_t cap)
{
    return memchr(field, '\0', cap) != NULL;
}

static void check_result(const struct myna_send_result *r, long status, int transport)
{
    CHECK(r->cls >= MYNA_SEND_OK && r->cls <= MYNA_SEND_FAILED);
    CHECK(r->http_status == status);
    CHECK(terminated(r->error, sizeof(r->error)));
    CHECK(terminated(r->fbtrace_id, sizeof(r->fbtrace_id)));
    CHECK(terminated(r->wamid, sizeof(r->wamid)));
    CHECK(terminated(r->wa_id, sizeof(r->wa_id)));
    CHECK(clean_utf8((const unsigned char *)r->error));
    CHECK(clean_utf8((const unsigned char *)r->fbtrace_id));
    CHECK(r->transport_failed == (transport != 0));
    CHECK(r->timed_out == 0);   /* only myna_graph_post knows about timeouts */
    if (transport) {
        CHECK(r->cls == MYNA_SEND_RETRY && r->error_code == -1 && r->error[0] != '\0');
        return;
    }
    if (r->cls == MYNA_SEND_OK) {
        CHECK(status >= 200 && status <= 299);
        CHECK(r->error[0] == '\0' && r->error_code == -1 && r->fbtrace_id[0] == '\0');
        for (const char *p = r->wamid; *p; p++)
            CHECK((unsigned char)*p > 0x20 && (unsigned char)*p != 0x7f);
    } else {
        CHECK(r->error[0] != '\0');
        CHECK(r->wamid[0] == '\0' && r->wa_id[0] == '\0');
    }
    if (r->wa_id[0] != '\0')
        CHECK(r->wamid[0] != '\0');
    /* without a Graph error code the status decides: a 2xx fails, trouble
     * is retried, what refuses every request (a proxy's) holds as a refused
     * token, anything else fails */
    if (r->error_code == -1 && r->cls != MYNA_SEND_OK)
        CHECK(r->cls == (status >= 200 && status <= 299 ? MYNA_SEND_FAILED
                         : (status >= 500 && status <= 599) || status == 429 || status == 408
                             ? MYNA_SEND_RETRY
                         : (status >= 300 && status <= 399) || status == 401 || status == 403 ||
                                 status == 404 || status == 405 || status == 407
                             ? MYNA_SEND_AUTH
                             : MYNA_SEND_FAILED));
    /* a code decides alone: the same code under another status, same class */
    if (r->cls == MYNA_SEND_RETRY_PAIR)
        CHECK(r->error_code == 131056);
    if (r->cls == MYNA_SEND_WINDOW_CLOSED)
        CHECK(r->error_code == 131047);
    if (r->cls == MYNA_SEND_AUTH)
        CHECK(r->error_code == -1 || r->error_code == 190 || r->error_code == 0 ||
              r->error_code == 3 || r->error_code == 10 ||
              (r->error_code >= 200 && r->error_code <= 299));
    if (r->cls == MYNA_SEND_LOCKED)
        CHECK(r->error_code == 131031 || r->error_code == 368 || r->error_code == 133010 ||
              r->error_code == 131042);
}

/* The input as a message text: EINVAL, or a body that carries it exactly. */
static void check_text_body(const char *text)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *body = myna_graph_text_body("79161234567", text, NULL, NULL, &err);
    cJSON *root;
    const cJSON *t;

    if (body == NULL) {
        CHECK(err.code == MYNA_EINVAL && err.msg[0] != '\0');
        return;
    }
    root = cJSON_Parse(body);
    CHECK(root != NULL);
    t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "text"), "body");
    CHECK(cJSON_IsString(t) && strcmp(t->valuestring, text) == 0);
    cJSON_Delete(root);
    free(body);
}

#define PIECES 21

/* body must be taken by the simulator as an interactive (or, with no
 * rows, text) message of text to 79161234567 whose ids and titles are
 * ids[0..n) and titles[0..n), in order. */
static void check_sim(char *body, const char *type, const char *text, const char *const *ids,
                      const char *const *titles, size_t n)
{
    struct myna_sim_graph_req r;
    char msg[256];
    int code = 0;
    cJSON *extra;
    const cJSON *items, *it;
    size_t i = 0;

    if (body == NULL)
        return;
    CHECK(myna_sim_graph_parse(body, strlen(body), &r, &code, msg, sizeof(msg)) == 0);
    CHECK(r.kind == MYNA_SIM_GRAPH_MESSAGE && strcmp(r.to, "79161234567") == 0);
    CHECK(strcmp(r.type, type) == 0 && strcmp(r.text, text) == 0);
    if (n > 0) {
        size_t len = strlen(r.extra);
        char *w = malloc(len + 3);
        CHECK(w != NULL);
        w[0] = '{';
        memcpy(w + 1, r.extra, len);
        memcpy(w + 1 + len, "}", 2);
        extra = cJSON_Parse(w);
        free(w);
        CHECK(extra != NULL);
        items = cJSON_GetObjectItemCaseSensitive(extra, "buttons");
        if (items == NULL)
            items = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                       cJSON_GetObjectItemCaseSensitive(extra, "list"),
                                       "sections"),
                                   0),
                "rows");
        cJSON_ArrayForEach(it, items) {
            CHECK(i < n);
            CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id")),
                         ids[i]) == 0);
            CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "title")),
                         titles[i]) == 0);
            i++;
        }
        CHECK(i == n);
        cJSON_Delete(extra);
    }
    myna_sim_graph_release(&r);
    free(body);
}

/* text: the first line; then ids and titles, a line each. */
static void check_builders(char *text)
{
    struct myna_err err = MYNA_ERR_INIT;
    const char *piece[PIECES], *ids[10], *titles[10];
    size_t n = 0, pairs;
    char *p = text;

    while (n < PIECES) {
        piece[n++] = p;
        if ((p = strchr(p, '\n')) == NULL)
            break;
        *p++ = '\0';
    }
    pairs = (n - 1) / 2;
    for (size_t i = 0; i < pairs; i++) {
        ids[i] = piece[1 + 2 * i];
        titles[i] = piece[2 + 2 * i];
    }
    check_sim(myna_graph_text_body("+79161234567", piece[0], NULL, "op", &err), "text",
              piece[0], NULL, NULL, 0);
    if (pairs > 0) {
        size_t b = pairs < MYNA_GRAPH_BUTTONS_MAX ? pairs : MYNA_GRAPH_BUTTONS_MAX;
        check_sim(myna_graph_buttons_body("79161234567", piece[0], ids, titles, b, NULL, &err),
                  "interactive", piece[0], ids, titles, b);
        check_sim(myna_graph_list_body("79161234567", piece[0], "Menu", ids, titles, titles,
                                       pairs, NULL, &err),
                  "interactive", piece[0], ids, titles, pairs);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = { 0, 200, 201, 302, 400, 401, 404, 407, 408, 429, 500, 503 };
    struct myna_send_result r, again;
    char *body = malloc(size > 0 ? size : 1);
    int code = -2;
    enum myna_send_class code_cls = MYNA_SEND_OK;

    CHECK(body != NULL);
    if (size > 0)
        memcpy(body, data, size);
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        myna_graph_classify(statuses[i], 0, body, size, &r);
        check_result(&r, statuses[i], 0);
        myna_graph_classify(statuses[i], 0, body, size, &again);
        CHECK(memcmp(&r, &again, sizeof(r)) == 0);
        if (r.error_code != -1) {   /* the same code gives the same class everywhere */
            if (code == -2) {
                code = r.error_code;
                code_cls = r.cls;
            }
            CHECK(r.error_code == code && r.cls == code_cls);
        }
    }
    myna_graph_classify(0, 1, body, size, &r);
    check_result(&r, 0, 1);
    if (size <= 16384 && memchr(body, '\0', size) == NULL) {
        char *text = malloc(size + 1);
        CHECK(text != NULL);
        memcpy(text, body, size);
        text[size] = '\0';
        check_text_body(text);
        check_builders(text);
        free(text);
    }
    free(body);
    return 0;
}
