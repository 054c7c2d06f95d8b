/* sim.c - the simulator's defaults, parsers, webhook builders and log. */
#include "wa/sim.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "core/secret.h"
#include "core/util.h"
#include "wa/instance.h"
#include "core/banned.h"

#define KEY_HEX (2 * MYNA_KEY_FILE_LEN)
#define TEXT_MAX 4096
#define TYPING_MS 25000
#define TYPING_SLOTS 64

/* ---- defaults ------------------------------------------------------------------ */

/* The simulator's key as its 64 hex digits: a key file as secret.key is
 * (created complete or not at all, private to this user). */
static int read_key(const char *path, int create, char key[KEY_HEX + 1], struct myna_err *err)
{
    unsigned char raw[MYNA_KEY_FILE_LEN];
    int rc = myna_key_file_load(path, create, raw, err);

    if (rc == MYNA_OK)
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(key + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

/* hex(HMAC-SHA256(key, what ":" id)) truncated to 40 digits. */
static char *derive(const char *key, const char *what, const char *id)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    char msg[160], *out = malloc(41);

    if (out == NULL)
        return NULL;
    snprintf(msg, sizeof(msg), "%s:%s", what, id);
    if (HMAC(EVP_sha256(), key, KEY_HEX, (const unsigned char *)msg, strlen(msg), mac, &maclen) ==
        NULL) {
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    return out;
}

static int fill(char **slot, const char *key, const char *what, const char *id)
{
    if (**slot != '\0')
        return 0;
    free(*slot);
    *slot = derive(key, what, id);
    return *slot ? 0 : -1;
}

int myna_sim_local_url(const char *addr, const char *path, char *out, size_t cap)
{
    char host[256];
    int port;

    if (myna_split_hostport(addr, host, sizeof(host), &port) != 0 || port == 0)
        return -1;
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, sizeof(host), "::1");
    snprintf(out, cap, strchr(host, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", host, port,
             path);
    return 0;
}

int myna_sim_prepare(struct myna_instance_set *set, const char *data_dir, const char *admin_addr,
                     int create, struct myna_err *err)
{
    char key[KEY_HEX + 1], path[4200];
    int have_key = 0, rc = MYNA_OK;

    for (size_t i = 0; rc == MYNA_OK && i < set->n; i++) {
        struct myna_instance *in = &set->v[i];
        if (strcmp(in->provider, "sim") != 0)
            continue;
        if (!have_key) {
            if (create && mkdir(data_dir, 0750) != 0 && errno != EEXIST) {
                rc = myna_err_set(err, MYNA_EIO, "cannot create directory '%s': %s", data_dir,
                                  strerror(errno));
                break;
            }
            snprintf(path, sizeof(path), "%s/sim.key", data_dir);
            if ((rc = read_key(path, create, key, err)) != MYNA_OK)
                break;
            have_key = 1;
        }
        if (fill(&in->access_token, key, "access_token", in->id) != 0 ||
            fill(&in->app_secret, key, "app_secret", in->id) != 0 ||
            fill(&in->verify_token, key, "verify_token", in->id) != 0) {
            rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
        } else if (in->graph_url[0] == '\0' && admin_addr != NULL) {
            char url[400];
            if (myna_sim_local_url(admin_addr, "/sim/graph", url, sizeof(url)) != 0) {
                rc = myna_err_set(err, MYNA_EINVAL, "admin address '%s' has no port", admin_addr);
                break;
            }
            free(in->graph_url);
            if ((in->graph_url = strdup(url)) == NULL)
                rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
        }
    }
    memset(key, 0, sizeof(key));
    return rc;
}

/* ---- shared helpers ------------------------------------------------------------ */

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The digits of a phone number, after an optional leading '+', into
 * out[16]; the bytes of skip may stand among them and are dropped (Meta
 * takes "+7 916 123-45-67" as a recipient, B1). -1 unless that leaves
 * 1..15 digits and nothing else. */
static int phone_digits(const char *s, const char *skip, char out[16])
{
    size_t n = 0;

    if (s == NULL)
        return -1;
    if (*s == '+')
        s++;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9') {
            if (n >= 15)
                return -1;
            out[n++] = *s;
        } else if (strchr(skip, *s) == NULL) {
            return -1;
        }
    }
    if (n == 0)
        return -1;
    out[n] = '\0';
    return 0;
}

/* A string of 1..max code points of valid UTF-8 (min 0 allows ""). */
static int text_ok(const char *s, size_t min, size_t max)
{
    size_t n;

    return s != NULL && (n = myna_utf8_count(s)) != (size_t)-1 && n >= min && n <= max;
}

static int printable_id(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || n >= max)
            return 0;
    return n > 0;
}

/* ---- the page's send ----------------------------------------------------------- */

void myna_sim_send_release(struct myna_sim_send *s)
{
    free(s->text);
    free(s->reply_id);
    free(s->reply_title);
    free(s->reply_description);
    memset(s, 0, sizeof(*s));
}

static int parse_reply(const cJSON *r, int list, struct myna_sim_send *out, struct myna_err *err)
{
    const char *id = get_str(r, "id"), *title = get_str(r, "title"),
               *desc = list ? get_str(r, "description") : NULL;
    const char *what = list ? "list" : "button";

    if (!cJSON_IsObject(r))
        return myna_err_set(err, MYNA_EINVAL, "'%s' must be an object {\"id\",\"title\"}", what);
    if (!text_ok(id, 1, 256))
        return myna_err_set(err, MYNA_EINVAL, "'%s.id' must be 1 to 256 characters", what);
    if (!text_ok(title, 1, 24))
        return myna_err_set(err, MYNA_EINVAL, "'%s.title' must be 1 to 24 characters", what);
    if (desc && !text_ok(desc, 0, 72))
        return myna_err_set(err, MYNA_EINVAL, "'list.description' must be at most 72 characters");
    out->kind = list ? MYNA_SIM_LIST : MYNA_SIM_BUTTON;
    if ((out->reply_id = strdup(id)) == NULL || (out->reply_title = strdup(title)) == NULL ||
        (desc && *desc && (out->reply_description = strdup(desc)) == NULL))
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    return MYNA_OK;
}

int myna_sim_send_parse(const char *body, size_t len, struct myna_sim_send *out,
                        struct myna_err *err)
{
    cJSON *root;
    const cJSON *item, *text, *button, *list;
    const char *name, *ctx, *why = "another value";
    int rc = MYNA_OK;

    memset(out, 0, sizeof(*out));
    if (len > MYNA_SIM_BODY_MAX)
        return myna_err_set(err, MYNA_ETOOBIG, "body over %d bytes", MYNA_SIM_BODY_MAX);
    if (!cJSON_IsObject(root = myna_json_parse_whole(body, len, &why))) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_EPARSE, "the body must be a JSON object (%s)", why);
    }
    cJSON_ArrayForEach(item, root) {
        static const char *const known[] = { "from", "name", "text", "button", "list", "context" };
        size_t k = 0;
        while (k < sizeof(known) / sizeof(known[0]) && strcmp(known[k], item->string) != 0)
            k++;
        if (k == sizeof(known) / sizeof(known[0])) {
            /* the message goes back as JSON: whole characters of UTF-8 only */
            size_t kn = myna_utf8_cut(item->string, 64);
            if (myna_utf8_prefix(item->string, kn) != kn)
                rc = myna_err_set(err, MYNA_EINVAL, "unknown field (its name is not UTF-8)");
            else
                rc = myna_err_set(err, MYNA_EINVAL, "unknown field '%.*s'", (int)kn, item->string);
            goto out;
        }
    }
    name = get_str(root, "name");
    ctx = get_str(root, "context");
    text = get(root, "text");
    button = get(root, "button");
    list = get(root, "list");
    if (phone_digits(get_str(root, "from"), "", out->from) != 0) {
        rc = myna_err_set(err, MYNA_EINVAL, "'from' must be a phone number of 1 to 15 digits");
    } else if (get(root, "name") && (name == NULL || !text_ok(name, 0, MYNA_SIM_NAME_MAX))) {
        rc = myna_err_set(err, MYNA_EINVAL, "'name' must be a string of at most %d characters",
                          MYNA_SIM_NAME_MAX);
    } else if (get(root, "context") && (ctx == NULL || !printable_id(ctx, sizeof(out->context) - 1))) {
        rc = myna_err_set(err, MYNA_EINVAL, "'context' must be a message id");
    } else if ((text != NULL) + (button != NULL) + (list != NULL) != 1) {
        rc = myna_err_set(err, MYNA_EINVAL, "exactly one of 'text', 'button' or 'list' is required");
    } else if (text) {
        if (!cJSON_IsString(text) || !text_ok(text->valuestring, 1, TEXT_MAX))
            rc = myna_err_set(err, MYNA_EINVAL, "'text' must be 1 to %d characters of UTF-8",
                              TEXT_MAX);
        else if ((out->text = strdup(text->valuestring)) == NULL)
            rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
        out->kind = MYNA_SIM_TEXT;
    } else {
        rc = parse_reply(button ? button : list, list != NULL, out, err);
    }
    if (rc == MYNA_OK) {
        snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
        snprintf(out->context, sizeof(out->context), "%s", ctx ? ctx : "");
    }
out:
    cJSON_Delete(root);
    if (rc != MYNA_OK)
        myna_sim_send_release(out);
    return rc;
}

/* ---- the fake Graph API ----------------------------------------------------------- */

void myna_sim_graph_release(struct myna_sim_graph_req *r)
{
    free(r->text);
    free(r->extra);
    free(r->opaque);
    memset(r, 0, sizeof(*r));
}

char *myna_sim_graph_error(int code, const char *type, const char *msg)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error"), *d;
    char trace[24], *out = NULL;
    unsigned char raw[8] = { 0 };

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        memset(raw, 0x41, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(trace + 2 * i, 3, "%02X", raw[i]);
    if (e && cJSON_AddStringToObject(e, "message", msg) && cJSON_AddStringToObject(e, "type", type) &&
        cJSON_AddNumberToObject(e, "code", code) &&
        (d = cJSON_AddObjectToObject(e, "error_data")) &&
        cJSON_AddStringToObject(d, "messaging_product", "whatsapp") &&
        cJSON_AddStringToObject(d, "details", msg) && cJSON_AddStringToObject(e, "fbtrace_id", trace))
        out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static int fail(int code, char *msg, size_t cap, int *codep, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(int code, char *msg, size_t cap, int *codep, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    *codep = code;
    return 400;
}

/* Meta's limits on the texts of an interactive message (B2), in
 * characters: the body of reply buttons 1024, of a list 4096; a header's
 * text and the footer 60. */
#define BUTTON_BODY_MAX 1024
#define LIST_BODY_MAX 4096
#define HEADER_TEXT_MAX 60
#define FOOTER_TEXT_MAX 60

/* A text parameter (name in Meta's notation) with Meta's codes (B5):
 * missing 131008, empty 131009, not a string or over max characters 100.
 * 0 when it is 1..max characters. */
static int text_param(const cJSON *v, const char *name, size_t max, int *code, char *msg,
                      size_t cap)
{
    size_t n;

    if (v == NULL)
        return fail(131008, msg, cap, code, "(#131008) Required parameter is missing: %s", name);
    if (!cJSON_IsString(v) || (n = myna_utf8_count(v->valuestring)) == (size_t)-1)
        return fail(100, msg, cap, code, "(#100) Param %s must be a string", name);
    if (n == 0)
        return fail(131009, msg, cap, code, "(#131009) Parameter value is not valid: %s is empty",
                    name);
    if (n > max)
        return fail(100, msg, cap, code, "(#100) Param %s must be at most %zu characters", name,
                    max);
    return 0;
}

/* A media object (a message's image, video, document, audio or sticker, a
 * reply buttons' header's image, video or document), named in Meta's
 * notation: its file is an uploaded `id` or a `link`, and with neither
 * Meta answers 131008. */
static int media_param(const cJSON *m, const char *name, int *code, char *msg, size_t cap)
{
    if (get(m, "id") == NULL && get(m, "link") == NULL)
        return fail(131008, msg, cap, code,
                    "(#131008) Required parameter is missing: %s['id'] or %s['link']", name,
                    name);
    return 0;
}

static int media_type(const char *type)
{
    static const char *const types[] = { "audio", "document", "image", "sticker", "video" };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(type, types[i]) == 0)
            return 1;
    return 0;
}

/* text_param of row[key], named <row>['key']. */
static int row_param(const cJSON *row, const char *key, const char *row_name, size_t max,
                     int *code, char *msg, size_t cap)
{
    char name[120];

    snprintf(name, sizeof(name), "%s['%s']", row_name, key);
    return text_param(get(row, key), name, max, code, msg, cap);
}

/* The optional header and footer: a list's header is text only; a reply
 * buttons' header is text or the media object its type names. */
static int header_footer(const cJSON *in, int list, int *code, char *msg, size_t cap)
{
    const cJSON *h = get(in, "header"), *f = get(in, "footer");
    const char *htype = get_str(h, "type");
    int st;

    if (h != NULL && !cJSON_IsObject(h))
        return fail(100, msg, cap, code, "(#100) Param interactive['header'] must be an object");
    if (h != NULL && get(h, "type") == NULL)
        return fail(131008, msg, cap, code,
                    "(#131008) Required parameter is missing: interactive['header']['type']");
    if (h != NULL && htype != NULL && strcmp(htype, "text") == 0) {
        if ((st = text_param(get(h, "text"), "interactive['header']['text']", HEADER_TEXT_MAX,
                             code, msg, cap)) != 0)
            return st;
    } else if (h != NULL && !list && htype != NULL &&
               (strcmp(htype, "image") == 0 || strcmp(htype, "video") == 0 ||
                strcmp(htype, "document") == 0)) {
        char name[48];
        if (!cJSON_IsObject(get(h, htype)))
            return fail(131008, msg, cap, code,
                        "(#131008) Required parameter is missing: interactive['header']['%s']",
                        htype);
        snprintf(name, sizeof(name), "interactive['header']['%s']", htype);
        if ((st = media_param(get(h, htype), name, code, msg, cap)) != 0)
            return st;
    } else if (h != NULL) {
        return fail(100, msg, cap, code, list
                    ? "(#100) Param interactive['header']['type'] must be text for a list"
                    : "(#100) Param interactive['header']['type'] must be one of {text, image, "
                      "video, document}");
    }
    if (f != NULL && !cJSON_IsObject(f))
        return fail(100, msg, cap, code, "(#100) Param interactive['footer'] must be an object");
    if (f != NULL)
        return text_param(get(f, "text"), "interactive['footer']['text']", FOOTER_TEXT_MAX, code,
                          msg, cap);
    return 0;
}

/* What the page shows for an interactive message: the body as text, and
 * "buttons":[{"id","title"}] or "list":{"button","sections"} as extra. */
static int interactive(const cJSON *in, struct myna_sim_graph_req *r, int *code, char *msg,
                       size_t cap)
{
    const char *itype = get_str(in, "type"), *body = get_str(get(in, "body"), "text");
    const cJSON *action = get(in, "action"), *it;
    cJSON *x = NULL;
    int n = 0, list = itype != NULL && strcmp(itype, "list") == 0, st;

    if (!cJSON_IsObject(in))
        return fail(131008, msg, cap, code, "(#131008) Required parameter is missing: interactive");
    if (itype == NULL || (!list && strcmp(itype, "button") != 0))
        return fail(100, msg, cap, code, "interactive.type must be button or list (here)");
    if (get(in, "body") != NULL && !cJSON_IsObject(get(in, "body")))
        return fail(100, msg, cap, code, "(#100) Param interactive['body'] must be an object");
    if ((st = text_param(get(get(in, "body"), "text"), "interactive['body']['text']",
                         list ? LIST_BODY_MAX : BUTTON_BODY_MAX, code, msg, cap)) != 0 ||
        (st = header_footer(in, list, code, msg, cap)) != 0)
        return st;
    if (!list) {
        const cJSON *bs = get(action, "buttons");
        const char *ids[3], *titles[3];
        cJSON *arr;
        if (!cJSON_IsArray(bs) || (n = cJSON_GetArraySize(bs)) < 1 || n > 3)
            return fail(131009, msg, cap, code,
                        "(#131009) Parameter value is not valid: action.buttons must have 1 to 3 "
                        "buttons");
        n = 0;
        cJSON_ArrayForEach(it, bs) {
            const cJSON *reply = get(it, "reply");
            const char *btype = get_str(it, "type");
            char id_p[64], title_p[64];
            if (btype == NULL || strcmp(btype, "reply") != 0)
                return fail(100, msg, cap, code,
                            "(#100) Param interactive['action']['buttons'][%d]['type'] must be "
                            "one of {REPLY}.",
                            n);
            snprintf(id_p, sizeof(id_p), "interactive['action']['buttons'][%d]['reply']['id']", n);
            snprintf(title_p, sizeof(title_p),
                     "interactive['action']['buttons'][%d]['reply']['title']", n);
            if ((st = text_param(get(reply, "id"), id_p, 256, code, msg, cap)) != 0 ||
                (st = text_param(get(reply, "title"), title_p, 20, code, msg, cap)) != 0)
                return st;
            ids[n] = get_str(reply, "id");
            titles[n] = get_str(reply, "title");
            for (int j = 0; j < n; j++) {
                if (strcmp(titles[j], titles[n]) == 0)
                    return fail(131009, msg, cap, code,
                                "(#131009) Parameter value is not valid: button titles must be "
                                "unique (button %d repeats button %d)",
                                n + 1, j + 1);
                if (strcmp(ids[j], ids[n]) == 0)
                    return fail(131009, msg, cap, code,
                                "(#131009) Parameter value is not valid: button ids must be "
                                "unique (button %d repeats button %d)",
                                n + 1, j + 1);
            }
            n++;
        }
        x = cJSON_CreateObject();
        arr = cJSON_AddArrayToObject(x, "buttons");
        for (int i = 0; i < n; i++) {
            cJSON *b;
            if (arr == NULL || (b = cJSON_CreateObject()) == NULL ||
                !cJSON_AddItemToArray(arr, b) || !cJSON_AddStringToObject(b, "id", ids[i]) ||
                !cJSON_AddStringToObject(b, "title", titles[i]))
                break;
        }
    } else {
        const char *button = get_str(action, "button"), *row_ids[10];
        const cJSON *secs = get(action, "sections");
        int k = 0;
        if ((st = text_param(get(action, "button"), "interactive['action']['button']", 20, code,
                             msg, cap)) != 0)
            return st;
        if (!cJSON_IsArray(secs) || cJSON_GetArraySize(secs) < 1 || cJSON_GetArraySize(secs) > 10)
            return fail(131009, msg, cap, code,
                        "(#131009) Parameter value is not valid: action.sections must have 1 to "
                        "10 sections");
        cJSON_ArrayForEach(it, secs) {
            const cJSON *rows = get(it, "rows"), *row;
            char p[80];
            int j = 0;
            if (rows == NULL)
                return fail(131008, msg, cap, code,
                            "(#131008) Required parameter is missing: "
                            "interactive['action']['sections'][%d]['rows']", k);
            if (!cJSON_IsArray(rows))
                return fail(100, msg, cap, code,
                            "(#100) Param interactive['action']['sections'][%d]['rows'] must be "
                            "an array", k);
            if (get(it, "title") == NULL && cJSON_GetArraySize(secs) > 1)
                return fail(131009, msg, cap, code,
                            "(#131009) Parameter value is not valid: a list with more than one "
                            "section needs a title on each section");
            snprintf(p, sizeof(p), "interactive['action']['sections'][%d]['title']", k);
            if (get(it, "title") != NULL && (st = text_param(get(it, "title"), p, 24, code, msg,
                                                             cap)) != 0)
                return st;
            cJSON_ArrayForEach(row, rows) {
                const cJSON *d = get(row, "description");
                snprintf(p, sizeof(p), "interactive['action']['sections'][%d]['rows'][%d]", k,
                         j++);
                if ((st = row_param(row, "id", p, 200, code, msg, cap)) != 0 ||
                    (st = row_param(row, "title", p, 24, code, msg, cap)) != 0)
                    return st;
                if (d != NULL && !text_ok(get_str(row, "description"), 0, 72))
                    return fail(100, msg, cap, code,
                                "(#100) Param %s['description'] must be a string of at most 72 "
                                "characters", p);
                if (n < 10)
                    row_ids[n] = get_str(row, "id");
                n++;
            }
            k++;
        }
        if (n < 1 || n > 10)
            return fail(131009, msg, cap, code,
                        "(#131009) Parameter value is not valid: a list has 1 to 10 rows in all");
        for (int i = 1; i < n; i++)
            for (int j = 0; j < i; j++)
                if (strcmp(row_ids[i], row_ids[j]) == 0)
                    return fail(131009, msg, cap, code,
                                "(#131009) Parameter value is not valid: row ids must be unique "
                                "across all sections (row %d repeats row %d)",
                                i + 1, j + 1);
        x = cJSON_CreateObject();
        if (x) {
            cJSON *l = cJSON_AddObjectToObject(x, "list");
            if (l) {
                cJSON_AddStringToObject(l, "button", button);
                cJSON_AddItemToObject(l, "sections", cJSON_Duplicate(secs, 1));
            }
        }
    }
    if (x == NULL || (r->text = strdup(body)) == NULL) {
        cJSON_Delete(x);
        return fail(1, msg, cap, code, "out of memory");
    }
    /* the fragment without its braces, for the page's event object */
    {
        char *s = cJSON_PrintUnformatted(x);
        size_t l = s ? strlen(s) : 0;
        cJSON_Delete(x);
        if (l < 2) {
            free(s);
            return fail(1, msg, cap, code, "out of memory");
        }
        memmove(s, s + 1, l - 2);
        s[l - 2] = '\0';
        r->extra = s;
    }
    return 0;
}

/* The types of message Meta sends (B2); any other is refused, even when
 * the body has an object of that name ("context" is one). */
#define META_TYPES \
    "audio, contacts, document, image, interactive, location, reaction, sticker, template, " \
    "text, video"

static int meta_type(const char *type)
{
    static const char *const types[] = { "audio", "contacts", "document", "image",
                                         "interactive", "location", "reaction", "sticker",
                                         "template", "text", "video" };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(type, types[i]) == 0)
            return 1;
    return 0;
}

/* cJSON copies string bytes as they come; what is accepted here ends up in
 * the page's JSON (sections are passed on whole), so the body must be UTF-8
 * as Meta requires. */
static int utf8_body(const char *body, size_t len)
{
    return myna_utf8_prefix(body, len) == len;
}

int myna_sim_graph_parse(const char *body, size_t len, struct myna_sim_graph_req *r, int *code,
                         char *msg, size_t cap)
{
    cJSON *root;
    const char *type, *opaque, *end = NULL;
    int st = 0;

    memset(r, 0, sizeof(*r));
    if (len > MYNA_SIM_BODY_MAX)
        return fail(100, msg, cap, code, "request body too large");
    if (!utf8_body(body, len))
        return fail(100, msg, cap, code, "(#100) Invalid parameter: the body is not valid UTF-8");
    if ((root = cJSON_ParseWithLengthOpts(body, len, &end, 0)) == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(100, msg, cap, code, "(#100) The parameter messaging_product is required.");
    }
    /* Meta refuses a body that goes on after its JSON value; taking the
     * first value alone would send what the request did not say */
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != body + len) {
        cJSON_Delete(root);
        return fail(100, msg, cap, code,
                    "(#100) Invalid parameter: the body has bytes after its JSON value");
    }
    if (myna_json_has_nul(body, len)) {
        /* cJSON would cut the string there: "a\u0000b" read as "a" */
        cJSON_Delete(root);
        return fail(100, msg, cap, code,
                    "(#100) Invalid parameter: a string contains a NUL character");
    }
    if (!cJSON_IsString(get(root, "messaging_product")) ||
        strcmp(get_str(root, "messaging_product"), "whatsapp") != 0) {
        st = fail(100, msg, cap, code, "(#100) The parameter messaging_product is required.");
    } else if (get_str(root, "status")) {
        const char *id = get_str(root, "message_id");
        const cJSON *ti = get(root, "typing_indicator");
        if (strcmp(get_str(root, "status"), "read") != 0 || !printable_id(id, sizeof(r->read_id) - 1))
            st = fail(100, msg, cap, code, "(#100) Invalid parameter: status must be read with a message_id");
        else {
            r->kind = MYNA_SIM_GRAPH_READ;
            snprintf(r->read_id, sizeof(r->read_id), "%s", id);
            r->typing = ti && cJSON_IsString(get(ti, "type")) &&
                        strcmp(get_str(ti, "type"), "text") == 0;
        }
    } else if (phone_digits(get_str(root, "to"), " -()", r->to) != 0) {
        st = fail(100, msg, cap, code, "(#100) Invalid parameter: to must be a phone number");
    }
    if (st == 0 && r->kind == MYNA_SIM_GRAPH_MESSAGE) {
        type = get_str(root, "type") ? get_str(root, "type") : "text";  /* Meta's default */
        opaque = get_str(root, "biz_opaque_callback_data");
        snprintf(r->type, sizeof(r->type), "%s", type);
        if (*type == '\0' || strlen(type) >= sizeof(r->type)) {
            /* no type of Meta's is this long; a cut one could split a character */
            st = fail(100, msg, cap, code, "(#100) Invalid parameter: type");
        } else if (!meta_type(type)) {
            st = fail(100, msg, cap, code,
                      "(#100) Param type must be one of {" META_TYPES "}, not '%s'", r->type);
        } else if (get(root, "biz_opaque_callback_data") && !text_ok(opaque, 1, 512)) {
            st = fail(100, msg, cap, code, "(#100) biz_opaque_callback_data is at most 512 characters");
        } else if (strcmp(type, "text") == 0) {
            /* Meta's codes, as for an interactive body: missing 131008,
             * empty 131009, too long or not a string 100 */
            const cJSON *t = get(root, "text");
            if (t != NULL && !cJSON_IsObject(t))
                st = fail(100, msg, cap, code, "(#100) Param text must be an object");
            else
                st = text_param(get(t, "body"), "text['body']", TEXT_MAX, code, msg, cap);
            if (st == 0 && (r->text = strdup(get_str(t, "body"))) == NULL)
                st = fail(1, msg, cap, code, "out of memory");
        } else if (strcmp(type, "interactive") == 0) {
            st = interactive(get(root, "interactive"), r, code, msg, cap);
        } else if (cJSON_IsObject(get(root, type)) && media_type(type) &&
                   (st = media_param(get(root, type), r->type, code, msg, cap)) != 0) {
            /* a media object that names no file */
        } else if (cJSON_IsObject(get(root, type))) {
            /* media, location, contacts, template...: shown by their type */
            const char *cap_text = get_str(get(root, type), "caption");
            char line[80];
            snprintf(line, sizeof(line), "[%s]", r->type);
            if ((r->text = strdup(text_ok(cap_text, 1, TEXT_MAX) ? cap_text : line)) == NULL)
                st = fail(1, msg, cap, code, "out of memory");
        } else {
            st = fail(100, msg, cap, code, "(#100) Param %s is required for type %s", r->type,
                      r->type);
        }
        if (st == 0 && opaque && (r->opaque = strdup(opaque)) == NULL)
            st = fail(1, msg, cap, code, "out of memory");
    }
    cJSON_Delete(root);
    if (st != 0)
        myna_sim_graph_release(r);
    return st;
}

/* ---- webhooks ----------------------------------------------------------------------- */

/* {"object":..,"entry":[{"id":waba,"changes":[{"value":{..},"field":"messages"}]}]};
 * *value gets the value object to fill. */
static cJSON *envelope(const struct myna_instance *in, cJSON **value)
{
    cJSON *root = cJSON_CreateObject(), *entry, *change, *meta, *arr;

    *value = NULL;
    if (root == NULL || !cJSON_AddStringToObject(root, "object", "whatsapp_business_account") ||
        (arr = cJSON_AddArrayToObject(root, "entry")) == NULL ||
        (entry = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, entry) ||
        !cJSON_AddStringToObject(entry, "id", in->waba_id[0] ? in->waba_id : "0") ||
        (arr = cJSON_AddArrayToObject(entry, "changes")) == NULL ||
        (change = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(arr, change) ||
        (*value = cJSON_AddObjectToObject(change, "value")) == NULL ||
        !cJSON_AddStringToObject(change, "field", "messages") ||
        !cJSON_AddStringToObject(*value, "messaging_product", "whatsapp") ||
        (meta = cJSON_AddObjectToObject(*value, "metadata")) == NULL ||
        !cJSON_AddStringToObject(meta, "display_phone_number", "15550100000") ||
        !cJSON_AddStringToObject(meta, "phone_number_id", in->phone_number_id)) {
        cJSON_Delete(root);
        *value = NULL;
        return NULL;
    }
    return root;
}

static char *finish(cJSON *root, int ok)
{
    char *out = ok ? cJSON_PrintUnformatted(root) : NULL;

    cJSON_Delete(root);
    return out;
}

char *myna_sim_message_webhook(const struct myna_instance *in, const struct myna_sim_send *s,
                               const char *wamid, int64_t ts)
{
    cJSON *value, *root = envelope(in, &value), *arr, *c, *m, *o;
    char tsbuf[24];
    int ok;

    if (root == NULL)
        return NULL;
    snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
    ok = (arr = cJSON_AddArrayToObject(value, "contacts")) && (c = cJSON_CreateObject()) &&
         cJSON_AddItemToArray(arr, c) && (o = cJSON_AddObjectToObject(c, "profile")) &&
         cJSON_AddStringToObject(o, "name", s->name) && cJSON_AddStringToObject(c, "wa_id", s->from) &&
         (arr = cJSON_AddArrayToObject(value, "messages")) && (m = cJSON_CreateObject()) &&
         cJSON_AddItemToArray(arr, m) && cJSON_AddStringToObject(m, "from", s->from) &&
         cJSON_AddStringToObject(m, "id", wamid) && cJSON_AddStringToObject(m, "timestamp", tsbuf);
    if (ok && s->context[0])
        ok = (o = cJSON_AddObjectToObject(m, "context")) &&
             cJSON_AddStringToObject(o, "from", "15550100000") &&
             cJSON_AddStringToObject(o, "id", s->context);
    if (ok && s->kind == MYNA_SIM_TEXT) {
        ok = cJSON_AddStringToObject(m, "type", "text") && (o = cJSON_AddObjectToObject(m, "text")) &&
             cJSON_AddStringToObject(o, "body", s->text);
    } else if (ok) {
        const char *k = s->kind == MYNA_SIM_BUTTON ? "button_reply" : "list_reply";
        cJSON *r;
        ok = cJSON_AddStringToObject(m, "type", "interactive") &&
             (o = cJSON_AddObjectToObject(m, "interactive")) &&
             cJSON_AddStringToObject(o, "type", k) && (r = cJSON_AddObjectToObject(o, k)) &&
             cJSON_AddStringToObject(r, "id", s->reply_id) &&
             cJSON_AddStringToObject(r, "title", s->reply_title) &&
             (s->reply_description == NULL ||
              cJSON_AddStringToObject(r, "description", s->reply_description));
    }
    return finish(root, ok);
}

char *myna_sim_status_webhook(const struct myna_instance *in, const char *wamid,
                              const char *recipient, const char *status, const char *opaque,
                              int64_t ts, int code, const char *title)
{
    cJSON *value, *root = envelope(in, &value), *arr, *st, *e;
    char tsbuf[24];
    int ok;

    if (root == NULL)
        return NULL;
    snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
    ok = (arr = cJSON_AddArrayToObject(value, "statuses")) && (st = cJSON_CreateObject()) &&
         cJSON_AddItemToArray(arr, st) && cJSON_AddStringToObject(st, "id", wamid) &&
         cJSON_AddStringToObject(st, "status", status) &&
         cJSON_AddStringToObject(st, "timestamp", tsbuf) &&
         cJSON_AddStringToObject(st, "recipient_id", recipient);
    if (ok && opaque && *opaque)
        ok = cJSON_AddStringToObject(st, "biz_opaque_callback_data", opaque) != NULL;
    if (ok && code != 0)
        ok = (arr = cJSON_AddArrayToObject(st, "errors")) && (e = cJSON_CreateObject()) &&
             cJSON_AddItemToArray(arr, e) && cJSON_AddNumberToObject(e, "code", code) &&
             cJSON_AddStringToObject(e, "title", title ? title : "error");
    return finish(root, ok);
}

void myna_sim_wamid(char *out, size_t cap)
{
    static uint64_t counter;
    unsigned char raw[16];
    char hex[33];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {  /* unique still, if not secret */
        uint64_t v[2] = { (uint64_t)myna_wall_ms(), ++counter };
        memcpy(raw, v, sizeof(raw));
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02X", raw[i]);
    snprintf(out, cap, "wamid.SIM%s", hex);
}

/* ---- the log ------------------------------------------------------------------------ */

struct typing {
    char contact[16];
    int64_t until_ms;
};

struct myna_sim_log {
    struct myna_sim_event *ev;  /* ring of MYNA_SIM_EVENTS_MAX */
    size_t head, n;             /* oldest at head */
    uint64_t seq;
    struct typing typing[TYPING_SLOTS];
};

static void event_clear(struct myna_sim_event *e)
{
    free(e->text);
    free(e->extra);
    free(e->opaque);
    free(e->error);
    memset(e, 0, sizeof(*e));
}

struct myna_sim_log *myna_sim_log_new(void)
{
    struct myna_sim_log *l = calloc(1, sizeof(*l));

    if (l && (l->ev = calloc(MYNA_SIM_EVENTS_MAX, sizeof(*l->ev))) == NULL) {
        free(l);
        return NULL;
    }
    return l;
}

void myna_sim_log_free(struct myna_sim_log *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < MYNA_SIM_EVENTS_MAX; i++)
        event_clear(&l->ev[i]);
    free(l->ev);
    free(l);
}

static struct myna_sim_event *at(const struct myna_sim_log *l, size_t i)
{
    return &l->ev[(l->head + i) % MYNA_SIM_EVENTS_MAX];
}

struct myna_sim_event *myna_sim_log_add(struct myna_sim_log *l, int out, const char *id,
                                        const char *contact, const char *type, char *text,
                                        char *extra, char *opaque,
                                        enum myna_sim_status status, int64_t ts)
{
    struct myna_sim_event *e;

    if (l->n == MYNA_SIM_EVENTS_MAX) {
        event_clear(at(l, 0));
        l->head = (l->head + 1) % MYNA_SIM_EVENTS_MAX;
        l->n--;
    }
    e = at(l, l->n++);
    e->seq = ++l->seq;
    e->out = out;
    e->status = status;
    e->ts = ts;
    snprintf(e->id, sizeof(e->id), "%s", id);
    snprintf(e->contact, sizeof(e->contact), "%s", contact);
    snprintf(e->type, sizeof(e->type), "%s", type);
    e->text = text;
    e->extra = extra;
    e->opaque = opaque;
    if (out)  /* a reply ends the typing indicator */
        myna_sim_log_typing(l, contact, 0, 0);
    return e;
}

struct myna_sim_event *myna_sim_log_find(struct myna_sim_log *l, const char *id)
{
    for (size_t i = l->n; i-- > 0;)
        if (strcmp(at(l, i)->id, id) == 0)
            return at(l, i);
    return NULL;
}

int myna_sim_log_set(struct myna_sim_log *l, struct myna_sim_event *e,
                     enum myna_sim_status status, const char *error)
{
    if (e->status == MYNA_SIM_FAILED || status <= e->status)
        return 0;
    e->status = status;
    e->seq = ++l->seq;
    if (error && e->error == NULL)
        e->error = strdup(error);
    return 1;
}

void myna_sim_log_read_upto(struct myna_sim_log *l, const char *id)
{
    struct myna_sim_event *last = myna_sim_log_find(l, id);

    if (last == NULL || last->out)
        return;
    for (size_t i = 0; i < l->n; i++) {
        struct myna_sim_event *e = at(l, i);
        if (!e->out && strcmp(e->contact, last->contact) == 0)
            myna_sim_log_set(l, e, MYNA_SIM_READ, NULL);
        if (e == last)
            break;
    }
}

void myna_sim_log_seen(struct myna_sim_log *l, const char *contact,
                       void (*fn)(const struct myna_sim_event *e, void *arg), void *arg)
{
    for (size_t i = 0; i < l->n; i++) {
        struct myna_sim_event *e = at(l, i);
        if (e->out && e->status == MYNA_SIM_DELIVERED && strcmp(e->contact, contact) == 0 &&
            myna_sim_log_set(l, e, MYNA_SIM_READ, NULL))
            fn(e, arg);
    }
}

void myna_sim_log_typing(struct myna_sim_log *l, const char *contact, int on, int64_t now_ms)
{
    struct typing *slot = NULL;

    for (size_t i = 0; i < TYPING_SLOTS; i++) {
        struct typing *t = &l->typing[i];
        if (strcmp(t->contact, contact) == 0) {
            slot = t;
            break;
        }
        if (slot == NULL || t->until_ms < slot->until_ms)
            slot = t;  /* the free or oldest slot, if contact has none */
    }
    if (!on) {
        if (strcmp(slot->contact, contact) == 0)
            slot->until_ms = 0;
        return;
    }
    snprintf(slot->contact, sizeof(slot->contact), "%s", contact);
    slot->until_ms = now_ms + TYPING_MS;
    l->seq++;  /* so that a poll sees a change */
}

static const char *status_name(enum myna_sim_status s)
{
    static const char *const names[] = { "pending", "sent", "delivered", "read", "failed" };

    return names[s];
}

/* JSON string literal of s (valid UTF-8 assumed: everything stored was
 * checked or made here). */
static int put_str(struct myna_buf *b, const char *s)
{
    char *q;
    cJSON *v = cJSON_CreateString(s ? s : "");
    int rc;

    if (v == NULL || (q = cJSON_PrintUnformatted(v)) == NULL) {
        cJSON_Delete(v);
        return MYNA_ENOMEM;
    }
    rc = myna_buf_appends(b, q);
    free(q);
    cJSON_Delete(v);
    return rc;
}

/* One event as JSON, after a comma unless first. */
static int render_event(const struct myna_sim_event *e, int first, struct myna_buf *out)
{
    int rc = myna_buf_printf(out, "%s{\"seq\":%" PRIu64 ",\"dir\":\"%s\",\"id\":",
                             first ? "" : ",", e->seq, e->out ? "out" : "in");

    if (rc == MYNA_OK)
        rc = put_str(out, e->id);
    if (rc == MYNA_OK)
        rc = myna_buf_printf(out, ",\"contact\":\"%s\",\"ts\":%" PRId64 ",\"type\":", e->contact,
                             e->ts);
    if (rc == MYNA_OK)
        rc = put_str(out, e->type);
    if (rc == MYNA_OK)
        rc = myna_buf_appends(out, ",\"text\":");
    if (rc == MYNA_OK)
        rc = put_str(out, e->text);
    if (rc == MYNA_OK && e->extra)
        rc = myna_buf_printf(out, ",%s", e->extra);
    if (rc == MYNA_OK)
        rc = myna_buf_printf(out, ",\"status\":\"%s\"", status_name(e->status));
    if (rc == MYNA_OK && e->error) {
        rc = myna_buf_appends(out, ",\"error\":");
        if (rc == MYNA_OK)
            rc = put_str(out, e->error);
    }
    return rc == MYNA_OK ? myna_buf_appends(out, "}") : rc;
}

/* Room kept at the end of out for what follows the events. */
#define RENDER_TAIL 128

/* The events of v[0..n) whose seq is at most upto, in that order, while
 * they fit; *more when one did not (MYNA_ETOOBIG if it was the first),
 * *last the seq of the last one given. */
static int render_upto(const struct myna_sim_event *const *v, size_t n, uint64_t upto,
                       struct myna_buf *out, uint64_t *last, int *more)
{
    int rc = MYNA_OK, first = 1;

    *last = 0;
    *more = 0;
    for (size_t i = 0; rc == MYNA_OK && i < n; i++) {
        size_t mark = out->len;
        if (v[i]->seq > upto)
            continue;
        rc = render_event(v[i], first, out);
        if ((rc == MYNA_OK && out->len + RENDER_TAIL > out->max) || rc == MYNA_ETOOBIG) {
            /* full: this page ends before it, and "seq" says where to go on */
            out->len = mark;
            out->data[mark] = '\0';
            *more = 1;
            return first ? MYNA_ETOOBIG : MYNA_OK;  /* not even one event fits */
        }
        *last = v[i]->seq;
        first = 0;
    }
    return rc;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = (*(const struct myna_sim_event *const *)a)->seq,
             y = (*(const struct myna_sim_event *const *)b)->seq;

    return x < y ? -1 : x > y;
}

int myna_sim_log_render(const struct myna_sim_log *l, const char *contact, uint64_t after,
                        int64_t now_ms, struct myna_buf *out)
{
    const struct myna_sim_event *v[MYNA_SIM_EVENTS_MAX];
    int typing = 0, rc, more = 0;
    uint64_t last = 0;  /* the seq of the last event given */
    size_t n = 0, start;

    for (size_t i = 0; *contact && i < TYPING_SLOTS; i++)
        if (strcmp(l->typing[i].contact, contact) == 0 && l->typing[i].until_ms > now_ms)
            typing = 1;
    for (size_t i = 0; i < l->n; i++) {
        const struct myna_sim_event *e = at(l, i);
        if (e->seq > after && (!*contact || strcmp(e->contact, contact) == 0))
            v[n++] = e;
    }
    rc = myna_buf_appends(out, "{\"events\":[");
    start = out->len;
    if (rc == MYNA_OK)
        rc = render_upto(v, n, UINT64_MAX, out, &last, &more);
    if (more) {
        /* a status update gives an old event a new seq: the ring's order is
         * not the seq order, and after=N must miss nothing, so a page is
         * the events of the lowest seqs that fit, shown in the ring's order */
        const struct myna_sim_event *by[MYNA_SIM_EVENTS_MAX];
        uint64_t upto, ring_last;
        int more_too;
        memcpy(by, v, n * sizeof(*v));
        qsort(by, n, sizeof(*by), by_seq);
        out->len = start;
        out->data[start] = '\0';
        rc = render_upto(by, n, UINT64_MAX, out, &upto, &more_too);
        out->len = start;
        out->data[start] = '\0';
        if (rc == MYNA_OK)  /* the same events: they fit again */
            rc = render_upto(v, n, upto, out, &ring_last, &more_too);
        last = upto;
    }
    return rc == MYNA_OK ? myna_buf_printf(out, "],\"seq\":%" PRIu64 ",\"typing\":%s%s}",
                                           more ? last : l->seq,
                                           typing ? "true" : "false",
                                           more ? ",\"more\":true" : "")
                         : rc;
}
