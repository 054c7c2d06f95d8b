/* graph.c - Cloud API sends: bodies, answers, the POST itself.
 *
 * Builders validate before they build: Meta answers an over-long title with
 * a 100/131009 error that no retry can fix, so the limit is checked here, in
 * code points, with an err that names the field. Classification reads the
 * answer through typed accessors only (a field of the wrong type reads as
 * absent) and copies every string bounded and sanitised, so any bytes give a
 * well-formed result. The client keeps each request in a per-thread registry
 * keyed by a number, not by a pointer the HTTP client holds: a graph freed
 * with sends in flight frees their state at once, and a late answer (or none,
 * if the HTTP client is freed first) finds nothing and is dropped. */
#include "wa/graph.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "net/http_client.h"
#include "core/util.h"
#include "core/banned.h"

#define PARSE_MAX (256 * 1024)     /* Graph answers are small; larger ones are not parsed */
#define RESPONSE_MAX PARSE_MAX
#define TOKEN_MAX 4096
#define PNID_MAX 32
#define RETRY_BASE_MS 1000
#define RETRY_CAP_MS (5 * 60 * 1000)
#define PAIR_CAP_MS (10 * 60 * 1000)

/* Appends what it can of src[0..n) to dst (cap bytes, always terminated):
 * whole characters only, control bytes as spaces, broken sequences as '?'. */
static void text_copy(char *dst, size_t cap, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t len = strlen(dst), i = 0;

    while (i < n) {
        size_t k = myna_utf8_seq(s + i, n - i);
        if (k == 0) {
            if (len + 1 >= cap)
                break;
            dst[len++] = '?';
            i++;
            continue;
        }
        if (len + k >= cap)
            break;
        if (k == 1 && (s[i] < 0x20 || s[i] == 0x7f))
            dst[len] = ' ';
        else
            memcpy(dst + len, s + i, k);
        len += k;
        i += k;
    }
    dst[len] = '\0';
}

static void text_copys(char *dst, size_t cap, const char *src)
{
    text_copy(dst, cap, src, strlen(src));
}

/* ---- builders ----------------------------------------------------------------- */

/* 0 if s has min..max code points of valid UTF-8, else MYNA_EINVAL naming it. */
static int check_text(const char *what, const char *s, size_t min, size_t max,
                      struct myna_err *err)
{
    size_t n;

    if (s == NULL)
        return myna_err_set(err, MYNA_EINVAL, "%s is missing", what);
    if ((n = myna_utf8_count(s)) == (size_t)-1)
        return myna_err_set(err, MYNA_EINVAL, "%s is not valid UTF-8", what);
    if (n < min)
        return myna_err_set(err, MYNA_EINVAL, "%s is empty", what);
    if (n > max)
        return myna_err_set(err, MYNA_EINVAL, "%s has %zu characters, at most %zu", what, n,
                            max);
    return MYNA_OK;
}

/* "+digits" into out from "digits" or "+digits". */
static int check_to(const char *to, char out[MYNA_GRAPH_PHONE_DIGITS_MAX + 2],
                    struct myna_err *err)
{
    const char *d = to;
    size_t n = 0;

    if (to == NULL || *to == '\0')
        return myna_err_set(err, MYNA_EINVAL, "recipient is missing");
    if (*d == '+')
        d++;
    for (; d[n]; n++)
        if (d[n] < '0' || d[n] > '9' || n >= MYNA_GRAPH_PHONE_DIGITS_MAX)
            return myna_err_set(err, MYNA_EINVAL,
                                "recipient must be 1 to %d digits (a wa_id), optionally after '+'",
                                MYNA_GRAPH_PHONE_DIGITS_MAX);
    if (n == 0)
        return myna_err_set(err, MYNA_EINVAL, "recipient has no digits");
    out[0] = '+';
    memcpy(out + 1, d, n + 1);
    return MYNA_OK;
}

static int check_wamid(const char *what, const char *wamid, struct myna_err *err)
{
    size_t n;

    if (wamid == NULL || *wamid == '\0')
        return myna_err_set(err, MYNA_EINVAL, "%s is missing", what);
    for (n = 0; wamid[n]; n++)
        if ((unsigned char)wamid[n] <= 0x20 || (unsigned char)wamid[n] >= 0x7f ||
            n >= MYNA_GRAPH_WAMID_MAX)
            return myna_err_set(err, MYNA_EINVAL,
                                "%s must be 1 to %d printable ASCII characters", what,
                                MYNA_GRAPH_WAMID_MAX);
    return MYNA_OK;
}

static int check_opaque(const char *biz_opaque, struct myna_err *err)
{
    if (biz_opaque == NULL || *biz_opaque == '\0')
        return MYNA_OK;
    return check_text("biz_opaque_callback_data", biz_opaque, 1, MYNA_GRAPH_BIZ_OPAQUE_MAX, err);
}

/* 0 if no two of v[0..n) are equal. */
static int all_unique(const char *const *v, size_t n, size_t *dup /* OUT */)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0) {
                *dup = i;
                return 0;
            }
    return 1;
}

/* The common envelope (B1); NULL on out of memory. */
static cJSON *envelope(const char *to, const char *type, const char *biz_opaque)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;

    ok = ok && cJSON_AddStringToObject(o, "messaging_product", "whatsapp") != NULL;
    ok = ok && cJSON_AddStringToObject(o, "recipient_type", "individual") != NULL;
    ok = ok && cJSON_AddStringToObject(o, "to", to) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "type", type) != NULL;
    if (ok && biz_opaque != NULL && *biz_opaque != '\0')
        ok = cJSON_AddStringToObject(o, "biz_opaque_callback_data", biz_opaque) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Prints and deletes root; ok == 0 means a step before failed on memory. */
static char *finish(cJSON *root, int ok, struct myna_err *err)
{
    char *s = ok && root != NULL ? cJSON_PrintUnformatted(root) : NULL;

    cJSON_Delete(root);
    if (s == NULL)
        myna_err_set(err, MYNA_ENOMEM, "out of memory building a Graph API body");
    return s;
}

/* {"text":value} added to o under key; 0 on out of memory. */
static int add_text_obj(cJSON *o, const char *key, const char *value)
{
    cJSON *t = cJSON_AddObjectToObject(o, key);

    return t != NULL && cJSON_AddStringToObject(t, "text", value) != NULL;
}

char *myna_graph_text_body(const char *to, const char *text, const char *reply_to_wamid,
                           const char *biz_opaque, struct myna_err *err)
{
    char plus[MYNA_GRAPH_PHONE_DIGITS_MAX + 2];
    cJSON *root, *t, *ctx;
    int ok;

    if (check_to(to, plus, err) != MYNA_OK ||
        check_text("text", text, 1, MYNA_GRAPH_TEXT_MAX, err) != MYNA_OK ||
        check_opaque(biz_opaque, err) != MYNA_OK)
        return NULL;
    if (reply_to_wamid != NULL && *reply_to_wamid != '\0' &&
        check_wamid("reply_to wamid", reply_to_wamid, err) != MYNA_OK)
        return NULL;
    root = envelope(plus, "text", biz_opaque);
    ok = root != NULL;
    if (ok && reply_to_wamid != NULL && *reply_to_wamid != '\0') {
        ctx = cJSON_AddObjectToObject(root, "context");
        ok = ctx != NULL && cJSON_AddStringToObject(ctx, "message_id", reply_to_wamid) != NULL;
    }
    if (ok) {
        t = cJSON_AddObjectToObject(root, "text");
        ok = t != NULL && cJSON_AddFalseToObject(t, "preview_url") != NULL &&
             cJSON_AddStringToObject(t, "body", text) != NULL;
    }
    return finish(root, ok, err);
}

char *myna_graph_buttons_body(const char *to, const char *text, const char *const *ids,
                              const char *const *titles, size_t n, const char *biz_opaque,
                              struct myna_err *err)
{
    char plus[MYNA_GRAPH_PHONE_DIGITS_MAX + 2], what[48];
    cJSON *root, *in, *action, *buttons;
    size_t dup;
    int ok;

    if (check_to(to, plus, err) != MYNA_OK ||
        check_text("button message body", text, 1, MYNA_GRAPH_INTERACTIVE_BODY_MAX, err) !=
            MYNA_OK ||
        check_opaque(biz_opaque, err) != MYNA_OK)
        return NULL;
    if (n < 1 || n > MYNA_GRAPH_BUTTONS_MAX || ids == NULL || titles == NULL) {
        myna_err_set(err, MYNA_EINVAL, "a button message needs 1 to %d buttons, got %zu",
                     MYNA_GRAPH_BUTTONS_MAX, ids == NULL || titles == NULL ? (size_t)0 : n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "button %zu id", i + 1);
        if (check_text(what, ids[i], 1, MYNA_GRAPH_BUTTON_ID_MAX, err) != MYNA_OK)
            return NULL;
        snprintf(what, sizeof(what), "button %zu title", i + 1);
        if (check_text(what, titles[i], 1, MYNA_GRAPH_BUTTON_TITLE_MAX, err) != MYNA_OK)
            return NULL;
    }
    if (!all_unique(titles, n, &dup)) {
        myna_err_set(err, MYNA_EINVAL, "button %zu title repeats an earlier title", dup + 1);
        return NULL;
    }
    if (!all_unique(ids, n, &dup)) {
        myna_err_set(err, MYNA_EINVAL, "button %zu id repeats an earlier id", dup + 1);
        return NULL;
    }
    root = envelope(plus, "interactive", biz_opaque);
    ok = root != NULL && (in = cJSON_AddObjectToObject(root, "interactive")) != NULL &&
         cJSON_AddStringToObject(in, "type", "button") != NULL && add_text_obj(in, "body", text) &&
         (action = cJSON_AddObjectToObject(in, "action")) != NULL &&
         (buttons = cJSON_AddArrayToObject(action, "buttons")) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *b = cJSON_CreateObject(), *reply;
        if (b == NULL || !cJSON_AddItemToArray(buttons, b)) {
            cJSON_Delete(b);
            ok = 0;
            break;
        }
        ok = cJSON_AddStringToObject(b, "type", "reply") != NULL &&
             (reply = cJSON_AddObjectToObject(b, "reply")) != NULL &&
             cJSON_AddStringToObject(reply, "id", ids[i]) != NULL &&
             cJSON_AddStringToObject(reply, "title", titles[i]) != NULL;
    }
    return finish(root, ok, err);
}

char *myna_graph_list_body(const char *to, const char *text, const char *button,
                           const char *const *ids, const char *const *titles,
                           const char *const *descriptions, size_t n, const char *biz_opaque,
                           struct myna_err *err)
{
    char plus[MYNA_GRAPH_PHONE_DIGITS_MAX + 2], what[48];
    cJSON *root, *in, *action, *sections, *section, *rows;
    size_t dup;
    int ok;

    if (check_to(to, plus, err) != MYNA_OK ||
        check_text("list message body", text, 1, MYNA_GRAPH_INTERACTIVE_BODY_MAX, err) !=
            MYNA_OK ||
        check_text("list button label", button, 1, MYNA_GRAPH_LIST_BUTTON_MAX, err) != MYNA_OK ||
        check_opaque(biz_opaque, err) != MYNA_OK)
        return NULL;
    if (n < 1 || n > MYNA_GRAPH_LIST_ROWS_MAX || ids == NULL || titles == NULL) {
        myna_err_set(err, MYNA_EINVAL, "a list message needs 1 to %d rows, got %zu",
                     MYNA_GRAPH_LIST_ROWS_MAX, ids == NULL || titles == NULL ? (size_t)0 : n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "row %zu id", i + 1);
        if (check_text(what, ids[i], 1, MYNA_GRAPH_ROW_ID_MAX, err) != MYNA_OK)
            return NULL;
        snprintf(what, sizeof(what), "row %zu title", i + 1);
        if (check_text(what, titles[i], 1, MYNA_GRAPH_ROW_TITLE_MAX, err) != MYNA_OK)
            return NULL;
        snprintf(what, sizeof(what), "row %zu description", i + 1);
        if (descriptions != NULL && descriptions[i] != NULL &&
            check_text(what, descriptions[i], 0, MYNA_GRAPH_ROW_DESCRIPTION_MAX, err) != MYNA_OK)
            return NULL;
    }
    if (!all_unique(ids, n, &dup)) {
        myna_err_set(err, MYNA_EINVAL, "row %zu id repeats an earlier id", dup + 1);
        return NULL;
    }
    root = envelope(plus, "interactive", biz_opaque);
    ok = root != NULL && (in = cJSON_AddObjectToObject(root, "interactive")) != NULL &&
         cJSON_AddStringToObject(in, "type", "list") != NULL && add_text_obj(in, "body", text) &&
         (action = cJSON_AddObjectToObject(in, "action")) != NULL &&
         cJSON_AddStringToObject(action, "button", button) != NULL &&
         (sections = cJSON_AddArrayToObject(action, "sections")) != NULL &&
         (section = cJSON_CreateObject()) != NULL;
    if (ok && !cJSON_AddItemToArray(sections, section)) {
        cJSON_Delete(section);
        ok = 0;
    }
    ok = ok && (rows = cJSON_AddArrayToObject(section, "rows")) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *row = cJSON_CreateObject();
        if (row == NULL || !cJSON_AddItemToArray(rows, row)) {
            cJSON_Delete(row);
            ok = 0;
            break;
        }
        ok = cJSON_AddStringToObject(row, "id", ids[i]) != NULL &&
             cJSON_AddStringToObject(row, "title", titles[i]) != NULL;
        if (ok && descriptions != NULL && descriptions[i] != NULL && *descriptions[i] != '\0')
            ok = cJSON_AddStringToObject(row, "description", descriptions[i]) != NULL;
    }
    return finish(root, ok, err);
}

char *myna_graph_read_body(const char *wamid, int typing, struct myna_err *err)
{
    cJSON *root, *t;
    int ok;

    if (check_wamid("wamid to mark read", wamid, err) != MYNA_OK)
        return NULL;
    root = cJSON_CreateObject();
    ok = root != NULL && cJSON_AddStringToObject(root, "messaging_product", "whatsapp") != NULL &&
         cJSON_AddStringToObject(root, "status", "read") != NULL &&
         cJSON_AddStringToObject(root, "message_id", wamid) != NULL;
    if (ok && typing)
        ok = (t = cJSON_AddObjectToObject(root, "typing_indicator")) != NULL &&
             cJSON_AddStringToObject(t, "type", "text") != NULL;
    return finish(root, ok, err);
}

/* ---- classification ----------------------------------------------------------- */

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const cJSON *get_obj(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);

    return cJSON_IsObject(v) ? v : NULL;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(get(obj, key));
}

/* The first element of obj[key] when that is a non-empty array. */
static const cJSON *get_first(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);

    return cJSON_IsArray(v) ? v->child : NULL;
}

/* error.code as an int: a JSON integer, or a string of digits (some
 * libraries and proxies quote it). Graph codes are never negative, and -1
 * stands for "no code" in a send result: a negative number is no code.
 * 0 or -1. */
static int get_code(const cJSON *err, int *code /* OUT */)
{
    const cJSON *v = get(err, "code");

    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < 0 || d > INT_MAX)
            return -1;
        *code = (int)d;
        return 0;
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        long c = 0;
        size_t i;
        for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 9; i++)
            c = c * 10 + (s[i] - '0');
        if (i == 0 || s[i] != '\0')
            return -1;
        *code = (int)c;
        return 0;
    }
    return -1;
}

static enum myna_send_class class_of_code(int code)
{
    switch (code) {
    case 130429: case 131000: case 131016: case 1: case 2: case 133004:
    case 131057: case 4: case 80007:
    case 131048:  /* spam rate limit: "retry much later" (B5) */
        return MYNA_SEND_RETRY;
    case 131056:
        return MYNA_SEND_RETRY_PAIR;
    case 131047:
        return MYNA_SEND_WINDOW_CLOSED;
    case 190: case 0: case 3: case 10:
        return MYNA_SEND_AUTH;
    case 131031: case 368:  /* account locked: "stop sending; alert a human" (B5) */
    case 133010:            /* the number is not registered */
    case 131042:            /* the account's payment method */
        return MYNA_SEND_LOCKED;
    default:
        return code >= 200 && code <= 299 ? MYNA_SEND_AUTH : MYNA_SEND_FAILED;
    }
}

enum myna_send_class myna_graph_code_class(int code)
{
    return class_of_code(code);
}

int myna_graph_limits_number(int error_code, long http_status)
{
    switch (error_code) {
    case 130429: case 131048: case 4: case 80007: case 131057:
        return 1;
    case -1:
        return http_status == 429;
    default:
        return 0;
    }
}

/* 1 for a status that speaks of where a request went or who may make it,
 * not of what it carries: a redirect (libcurl follows none for a POST), a
 * demand for credentials (401, a proxy's 407), a refusal (403, a firewall)
 * or a URL that serves no POST (404, 405). Meta answers each of these with
 * a Graph error, so without one it comes of a proxy or a graph_url that is
 * not Meta's, and every request of the instance would get it alike. */
static int refuses_every_request(long status)
{
    return (status >= 300 && status <= 399) || status == 401 || status == 403 ||
           status == 404 || status == 405 || status == 407;
}

/* A status without a Graph error code: server trouble, throttling and a
 * request that timed out on its way in (a 408, from a proxy that never
 * passed it on) are worth another try; what refuses every request
 * (refuses_every_request) only a person can fix, as a refused token;
 * anything else is this request's failure. A 502 or 504 comes from a proxy
 * or gateway that may have passed the POST on before it gave up, so Meta
 * may have taken the message, as after a timeout. */
static void class_of_status(long status, struct myna_send_result *out)
{
    if ((status >= 500 && status <= 599) || status == 429 || status == 408)
        out->cls = MYNA_SEND_RETRY;
    else if (refuses_every_request(status))
        out->cls = MYNA_SEND_AUTH;
    else
        out->cls = MYNA_SEND_FAILED;
    out->maybe_sent = status == 502 || status == 504;
}

/* 1 if s fits cap with its NUL and has no control bytes or spaces. */
static int fits_id(const char *s, size_t cap)
{
    size_t n;

    if (s == NULL || *s == '\0')
        return 0;
    for (n = 0; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] == 0x7f || n + 1 >= cap)
            return 0;
    return 1;
}

static void classify_error(long status, const cJSON *e, struct myna_send_result *out)
{
    const char *msg = get_str(e, "message"), *details, *trace = get_str(e, "fbtrace_id");
    int code;

    details = get_str(get_obj(e, "error_data"), "details");
    if (get_code(e, &code) == 0) {
        out->error_code = code;
        out->cls = class_of_code(code);
    } else if (status >= 200 && status <= 299) {
        out->cls = MYNA_SEND_FAILED;
    } else {
        class_of_status(status, out);
    }
    if (msg != NULL && *msg != '\0') {
        text_copys(out->error, sizeof(out->error), msg);
        if (details != NULL && *details != '\0' && strstr(msg, details) == NULL) {
            text_copys(out->error, sizeof(out->error), ": ");
            text_copys(out->error, sizeof(out->error), details);
        }
    } else if (details != NULL && *details != '\0') {
        text_copys(out->error, sizeof(out->error), details);
    } else {
        snprintf(out->error, sizeof(out->error), "Graph API error without a message (HTTP %ld)",
                 status);
    }
    if (trace != NULL)
        text_copys(out->fbtrace_id, sizeof(out->fbtrace_id), trace);
}

static void classify_success(const cJSON *root, struct myna_send_result *out)
{
    const cJSON *msg = get_first(root, "messages"), *contact = get_first(root, "contacts");
    const cJSON *ok = get(root, "success");
    const char *wamid = get_str(msg, "id"), *wa_id = get_str(contact, "wa_id");

    if (fits_id(wamid, sizeof(out->wamid))) {
        out->cls = MYNA_SEND_OK;
        memcpy(out->wamid, wamid, strlen(wamid) + 1);
        if (fits_id(wa_id, sizeof(out->wa_id)))
            memcpy(out->wa_id, wa_id, strlen(wa_id) + 1);
        return;
    }
    if (wamid == NULL && cJSON_IsTrue(ok)) {  /* mark read / typing */
        out->cls = MYNA_SEND_OK;
        return;
    }
    out->cls = MYNA_SEND_FAILED;
    snprintf(out->error, sizeof(out->error), "%s",
             wamid == NULL ? "HTTP 2xx without messages[0].id"
                           : "HTTP 2xx with an unusable messages[0].id (empty, too long or "
                             "not printable)");
}

void myna_graph_classify(long http_status, int transport_failed, const char *body, size_t len,
                         struct myna_send_result *out)
{
    struct myna_arena a = MYNA_ARENA_INIT(0);
    struct myna_json_section js;
    const cJSON *root = NULL, *e;

    memset(out, 0, sizeof(*out));
    out->http_status = http_status;
    out->error_code = -1;
    if (transport_failed) {
        out->cls = MYNA_SEND_RETRY;
        out->transport_failed = 1;
        snprintf(out->error, sizeof(out->error), "no answer from the Graph API");
        return;
    }
    /* the tree is arena memory, gone in one free whatever path we take */
    myna_json_arena_begin(&js, &a);
    /* a NUL is never valid JSON, but cJSON would keep it inside a string,
     * where it cuts the C string short (a wamid "wa\0mid" read as "wa") */
    if (body != NULL && len > 0 && len <= PARSE_MAX && memchr(body, '\0', len) == NULL)
        root = cJSON_ParseWithLength(body, len);
    if ((e = get_obj(root, "error")) != NULL) {
        classify_error(http_status, e, out);
    } else if (http_status >= 200 && http_status <= 299) {
        if (root != NULL && myna_json_has_nul(body, len)) {
            /* a \u0000 cuts a string short just the same (a wamid
             * "wamid.AB\u0000CD" would read as "wamid.AB") */
            out->cls = MYNA_SEND_FAILED;
            snprintf(out->error, sizeof(out->error),
                     "HTTP 2xx with a NUL character (\\u0000) in a string");
        } else {
            classify_success(root, out);
        }
    } else {
        class_of_status(http_status, out);
        snprintf(out->error, sizeof(out->error), "HTTP %ld without a Graph API error%s",
                 http_status, root == NULL && len > 0 ? " (the body is not JSON)" : "");
    }
    myna_json_arena_end(&js);
    myna_arena_free(&a);
}

int myna_graph_backoff_ms(enum myna_send_class cls, int attempt, unsigned rnd)
{
    long ms = RETRY_BASE_MS, span;

    if (attempt < 0)
        attempt = 0;
    switch (cls) {
    case MYNA_SEND_RETRY:
        for (int i = 0; i < attempt && ms < RETRY_CAP_MS; i++)
            ms *= 2;
        if (ms > RETRY_CAP_MS)
            ms = RETRY_CAP_MS;
        /* +-20 %: senders that failed together do not retry together */
        span = ms * 2 / 5;
        return (int)(ms - span / 2 + (long)(rnd % (unsigned long)(span + 1)));
    case MYNA_SEND_RETRY_PAIR:
        for (int i = 0; i < attempt && ms < PAIR_CAP_MS; i++)
            ms *= 4;
        return (int)(ms > PAIR_CAP_MS ? PAIR_CAP_MS : ms);
    default:
        return -1;
    }
}

/* ---- the client ----------------------------------------------------------------- */

struct myna_graph {
    struct myna_http_client *http;
    char *url;      /* {graph_url}/{phone_number_id}/messages */
    char *auth;     /* "Authorization: Bearer <token>" */
    const char *token;  /* inside auth, to keep it out of results */
};

/* A send in flight. The HTTP client holds only its id. */
struct graph_call {
    struct graph_call *next;
    uintptr_t id;
    struct myna_graph *g;
    myna_graph_cb cb;
    void *arg;
    long timeout_ms;
};

/* Callbacks run on the loop thread that started the request. */
static _Thread_local struct graph_call *live_calls;
static _Thread_local uintptr_t last_call_id;

/* Unlinks and returns the live call with this id, or NULL. */
static struct graph_call *call_take(uintptr_t id)
{
    for (struct graph_call **pp = &live_calls; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct graph_call *c = *pp;
            *pp = c->next;
            return c;
        }
    return NULL;
}

static int check_url(const char *url, struct myna_err *err)
{
    size_t n;

    if (url == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return myna_err_set(err, MYNA_ECONFIG, "graph_url must start with https:// or http://");
    n = strlen(url);
    if (url[n - 1] == '/')
        return myna_err_set(err, MYNA_ECONFIG, "graph_url must not end with '/'");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return myna_err_set(err, MYNA_ECONFIG,
                                "graph_url has a space or a non-ASCII byte at %zu", i);
    return MYNA_OK;
}

struct myna_graph *myna_graph_new(struct myna_http_client *http, const char *graph_url,
                                  const char *phone_number_id, const char *access_token,
                                  struct myna_err *err)
{
    struct myna_graph *g;
    size_t n, ul, al;

    if (http == NULL) {
        myna_err_set(err, MYNA_EINVAL, "no HTTP client for the Graph API");
        return NULL;
    }
    if (check_url(graph_url, err) != MYNA_OK)
        return NULL;
    for (n = 0; phone_number_id != NULL && phone_number_id[n]; n++)
        if (phone_number_id[n] < '0' || phone_number_id[n] > '9')
            break;
    if (phone_number_id == NULL || n == 0 || phone_number_id[n] != '\0' || n > PNID_MAX) {
        myna_err_set(err, MYNA_ECONFIG, "phone_number_id must be 1 to %d digits", PNID_MAX);
        return NULL;
    }
    /* the token goes into a header: no line breaks, no spaces; and its value
     * is never repeated in an err message */
    for (n = 0; access_token != NULL && access_token[n]; n++)
        if ((unsigned char)access_token[n] <= 0x20 || (unsigned char)access_token[n] >= 0x7f)
            break;
    if (access_token == NULL || n == 0 || access_token[n] != '\0' || n > TOKEN_MAX) {
        myna_err_set(err, MYNA_ECONFIG,
                     "access_token must be 1 to %d printable ASCII characters without spaces",
                     TOKEN_MAX);
        return NULL;
    }
    if ((g = calloc(1, sizeof(*g))) == NULL)
        goto nomem;
    g->http = http;
    ul = strlen(graph_url) + 1 + strlen(phone_number_id) + sizeof("/messages");
    al = sizeof("Authorization: Bearer ") + n;
    if ((g->url = malloc(ul)) == NULL || (g->auth = malloc(al)) == NULL)
        goto nomem;
    snprintf(g->url, ul, "%s/%s/messages", graph_url, phone_number_id);
    snprintf(g->auth, al, "Authorization: Bearer %s", access_token);
    g->token = g->auth + sizeof("Authorization: Bearer ") - 1;
    return g;
nomem:
    myna_graph_free(g);
    myna_err_set(err, MYNA_ENOMEM, "out of memory creating the Graph API client");
    return NULL;
}

void myna_graph_free(struct myna_graph *g)
{
    struct graph_call **pp = &live_calls;

    if (g == NULL)
        return;
    /* sends in flight: their answers will find no call and be dropped */
    while (*pp) {
        struct graph_call *c = *pp;
        if (c->g == g) {
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
    free(g->url);
    if (g->auth != NULL) {
        OPENSSL_cleanse(g->auth, strlen(g->auth));  /* a memset before free may be dropped */
        free(g->auth);
    }
    free(g);
}

static void on_http(const struct myna_http_resp *resp, void *arg)
{
    struct graph_call *c = call_take((uintptr_t)arg);
    struct myna_send_result r;

    if (c == NULL)
        return;  /* the graph was freed */
    myna_graph_classify(resp->status, resp->rc != MYNA_OK, resp->body, resp->body_len, &r);
    if (r.transport_failed) {
        r.timed_out = resp->timed_out;
        r.maybe_sent = !resp->not_sent;
        if (resp->timed_out)
            snprintf(r.error, sizeof(r.error), "no answer from the Graph API within %ld ms",
                     c->timeout_ms);
        else if (resp->rc == MYNA_ETOOBIG)
            snprintf(r.error, sizeof(r.error), "Graph API answer larger than %d bytes",
                     RESPONSE_MAX);
        else {
            r.error[0] = '\0';
            text_copys(r.error, sizeof(r.error), "transport failure: ");
            text_copys(r.error, sizeof(r.error), resp->error);
        }
    }
    myna_text_scrub(r.error, sizeof(r.error), c->g->token, "[token]");
    myna_text_scrub(r.fbtrace_id, sizeof(r.fbtrace_id), c->g->token, "[token]");
    c->cb(&r, c->arg);
    free(c);
}

int myna_graph_post(struct myna_graph *g, const char *json_body, long timeout_ms,
                    myna_graph_cb cb, void *arg, struct myna_err *err)
{
    const char *headers[] = { g != NULL ? g->auth : NULL, "Content-Type: application/json",
                              "Accept: application/json", NULL };
    struct myna_http_req req;
    struct graph_call *c;
    int rc;

    if (g == NULL || json_body == NULL || *json_body == '\0' || cb == NULL)
        return myna_err_set(err, MYNA_EINVAL, "a Graph API send needs a client, a body and a callback");
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory starting a Graph API send");
    c->id = ++last_call_id;
    c->g = g;
    c->cb = cb;
    c->arg = arg;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = g->url;
    req.headers = headers;
    req.body = json_body;
    req.body_len = strlen(json_body);
    req.timeout_ms = c->timeout_ms;
    req.max_response = RESPONSE_MAX;
    req.send_once = 1;  /* a message sent twice reaches the customer twice */
    rc = myna_http_request(g->http, &req, on_http, (void *)c->id, err);
    if (rc != MYNA_OK) {
        free(c);
        return rc;
    }
    c->next = live_calls;
    live_calls = c;
    return MYNA_OK;
}
