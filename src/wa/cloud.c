/* cloud.c - Meta WhatsApp Cloud API webhook bodies into normalized records.
 *
 * The cJSON tree lives only inside myna_cloud_parse: every string that leaves
 * is copied into the caller's arena and the tree is deleted on every path.
 * Two walks over entry x changes: the first counts (to refuse oversized bodies
 * before any work and to size the output arrays exactly), the second fills.
 * No JSON type is trusted: every accessor checks it, a field of the wrong type
 * reads as absent, and an item that cannot be keyed is counted in n_invalid.
 *
 * Leniency is deliberate and narrow: numbers Meta documents as strings
 * (timestamp) or that libraries disagree on (error codes, coordinates) are
 * accepted in both forms; ids and texts must be JSON strings. */
#include "wa/cloud.h"

#include "core/json.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

#define CLOUD_OBJECT "whatsapp_business_account"
#define SHOWN_MAX 40   /* bytes of a hostile value quoted in an err message */

struct cloud_parse {
    struct myna_arena *a;
    struct myna_cloud_batch b;   /* copied to *out only on success */
    size_t cap_msgs, cap_statuses;
    int rc;                      /* sticky: the first MYNA_ENOMEM of a copy */
};

/* A contact of value.contacts[] under one key (wa_id or user_id); idx keeps
 * the body order so that a repeated key resolves to its first contact. */
struct keyed {
    const char *key;
    const cJSON *contact;
    size_t idx;
};

struct contact_index {
    struct keyed *by_wa_id, *by_user_id;
    size_t n_wa_id, n_user_id;
};

/* ---- typed accessors: NULL whenever the JSON type is not the expected one */

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const cJSON *get_obj(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);

    return cJSON_IsObject(v) ? v : NULL;
}

/* cJSON_ArrayForEach also walks an object's members: callers iterate only
 * what this returned. */
static const cJSON *get_arr(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);

    return cJSON_IsArray(v) ? v : NULL;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(get(obj, key));
}

/* An empty id or caption carries nothing; callers treat it as absent. */
static const char *nonempty(const char *s)
{
    return s != NULL && *s != '\0' ? s : NULL;
}

static size_t arr_len(const cJSON *arr)
{
    const cJSON *it;
    size_t n = 0;

    cJSON_ArrayForEach(it, arr)
        n++;
    return n;
}

static const cJSON *first_obj(const cJSON *arr)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
        if (cJSON_IsObject(it))
            return it;
    return NULL;
}

/* With its article, for err messages: "an array", "a number", "null". */
static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    return "null";
}

/* ---- numbers */

/* The whole string as a non-negative decimal integer <= max, or -1. */
static int64_t parse_digits(const char *s, int64_t max)
{
    int64_t n = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        int d = *s - '0';

        if (d < 0 || d > 9 || n > (max - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    return n;
}

/* A JSON number or a string of digits, in [0, max]; -1 otherwise. A
 * number is cut to its integer part. Casting a double that int64_t cannot
 * hold is undefined, so the cast waits for d < 2^63 (exact in a double);
 * max itself is compared as an integer: (double)max may round past it, and
 * d < (double)max refused max. */
static int64_t read_uint(const cJSON *v, int64_t max)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        int64_t n;

        if (!(d >= 0 && d < 9223372036854775808.0))
            return -1;
        n = (int64_t)d;
        return n <= max ? n : -1;
    }
    return parse_digits(cJSON_GetStringValue(v), max);
}

/* Meta documents timestamp as a string of unix seconds; 0 when unreadable. */
static int64_t read_ts(const cJSON *v)
{
    int64_t t = read_uint(v, INT64_MAX);

    return t < 0 ? 0 : t;
}

static int read_code(const cJSON *v)
{
    int64_t c = read_uint(v, INT32_MAX);

    return c < 0 ? 0 : (int)c;
}

/* A finite JSON number, or a string holding only a decimal number (strtod
 * alone would also take "inf", "0x1p3" and leading blanks; it reads '.' as
 * the decimal point in the C locale Myna runs in). */
static int read_double(const cJSON *v, double *out)
{
    const char *s = cJSON_GetStringValue(v);
    double d;

    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (s != NULL && *s != '\0' && s[strspn(s, "0123456789.eE+-")] == '\0') {
        char *end;

        d = strtod(s, &end);
        if (*end != '\0')
            return 0;
    } else {
        return 0;
    }
    if (!isfinite(d))
        return 0;
    *out = d;
    return 1;
}

/* ---- arena copies: a failed copy makes the whole parse MYNA_ENOMEM */

static const char *copy(struct cloud_parse *p, const char *s)
{
    char *c;

    if (s == NULL || p->rc != MYNA_OK)
        return NULL;
    c = myna_arena_strdup(p->a, s);
    if (c == NULL)
        p->rc = MYNA_ENOMEM;
    return c;
}

static const char *copy_str(struct cloud_parse *p, const cJSON *obj, const char *key)
{
    return copy(p, get_str(obj, key));
}

static void *alloc_array(struct cloud_parse *p, size_t n, size_t size)
{
    void *mem;

    if (n == 0 || p->rc != MYNA_OK)
        return NULL;
    mem = n <= SIZE_MAX / size ? myna_arena_zalloc(p->a, n * size) : NULL;
    if (mem == NULL)
        p->rc = MYNA_ENOMEM;
    return mem;
}

/* raw is re-serialized from the tree (compact, \u escapes decoded), so it is
 * for storage and debugging, never for signature checks. */
static void set_raw(struct cloud_parse *p, const cJSON *item, const char **raw, size_t *len)
{
    char *s;

    if (p->rc != MYNA_OK)
        return;
    /* printed straight into the arena (json.h): no copy, no free */
    s = cJSON_PrintUnformatted(item);
    if (s == NULL) {
        p->rc = MYNA_ENOMEM;
        return;
    }
    *len = strlen(s);
    *raw = s;
}

/* ---- sender lookup: value.contacts[] matched by key, never by position */

static int keyed_cmp(const void *x, const void *y)
{
    const struct keyed *a = x, *b = y;
    int c = strcmp(a->key, b->key);

    if (c != 0)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sorted so that a body with thousands of messages and contacts costs
 * n log n, not messages x contacts. */
static struct keyed *index_contacts(struct cloud_parse *p, const cJSON *contacts,
                                    const char *field, size_t *n /* OUT */)
{
    struct keyed *ix = alloc_array(p, arr_len(contacts), sizeof(*ix));
    const cJSON *c;
    size_t i = 0, pos = 0;

    *n = 0;
    if (ix == NULL)
        return NULL;
    cJSON_ArrayForEach(c, contacts) {
        const char *key = nonempty(get_str(c, field));

        if (key != NULL) {
            ix[i].key = key;
            ix[i].contact = c;
            ix[i].idx = pos;
            i++;
        }
        pos++;
    }
    qsort(ix, i, sizeof(*ix), keyed_cmp);
    *n = i;
    return ix;
}

/* First contact (in body order) whose key equals key: a lower bound. */
static const cJSON *lookup(const struct keyed *ix, size_t n, const char *key)
{
    size_t lo = 0, hi = n;

    if (key == NULL)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(ix[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(ix[lo].key, key) == 0 ? ix[lo].contact : NULL;
}

static void index_value_contacts(struct cloud_parse *p, const cJSON *value,
                                 struct contact_index *ci /* OUT */)
{
    const cJSON *contacts = get_arr(value, "contacts");

    ci->by_wa_id = index_contacts(p, contacts, "wa_id", &ci->n_wa_id);
    ci->by_user_id = index_contacts(p, contacts, "user_id", &ci->n_user_id);
}

/* The sender's contact: the one whose wa_id is from (A4), or from without
 * a leading '+'; else whose user_id is from_user_id (2026 usernames, A9);
 * else whose wa_id is from in the other form Meta rewrites it to
 * (myna_phone_other_form).
 * Nothing else is a match: a from that matches no contact has none, even
 * in a value that lists one contact only, since that contact may well be
 * another message's sender. The key is the contact's wa_id when there is
 * one (the form to send to, and that of the sender's other messages), else
 * from without a leading '+'; "" when the number is withheld, so that it
 * is never NULL. */
static void read_sender(struct cloud_parse *p, const struct contact_index *ci,
                        const cJSON *m, struct myna_inbound *in)
{
    const char *from = nonempty(get_str(m, "from"));
    const char *from_uid = nonempty(get_str(m, "from_user_id"));
    const cJSON *c = lookup(ci->by_wa_id, ci->n_wa_id, from);
    const char *wa_id, *digits = from;
    char alt[16];

    if (from != NULL && from[0] == '+')
        digits = nonempty(from + 1);
    if (c == NULL && digits != from)
        c = lookup(ci->by_wa_id, ci->n_wa_id, digits);
    if (c == NULL)
        c = lookup(ci->by_user_id, ci->n_user_id, from_uid);
    if (c == NULL && myna_phone_other_form(digits, alt))
        c = lookup(ci->by_wa_id, ci->n_wa_id, alt);
    wa_id = nonempty(get_str(c, "wa_id"));
    in->contact = wa_id != NULL ? copy(p, wa_id) : digits != NULL ? copy(p, digits) : "";
    in->contact_user_id = copy(p, from_uid != NULL ? from_uid : get_str(c, "user_id"));
    in->profile_name = copy_str(p, get_obj(c, "profile"), "name");
}

/* ---- one reader per message type; each sets in->type and its fields */

static void read_text(struct cloud_parse *p, const cJSON *m, const char *type,
                      struct myna_inbound *in)
{
    (void)type;
    in->type = MYNA_MSG_TEXT;
    in->text = copy_str(p, get_obj(m, "text"), "body");
}

/* image, video, document, sticker and audio share one shape (A6). */
static void read_media(struct cloud_parse *p, const cJSON *m, const char *type,
                       struct myna_inbound *in)
{
    const cJSON *media = get_obj(m, type);
    const char *text = nonempty(get_str(media, "caption"));

    in->type = myna_msg_type_from_name(type);
    if (in->type == MYNA_MSG_AUDIO && cJSON_IsTrue(get(media, "voice")))
        in->type = MYNA_MSG_VOICE;
    if (text == NULL && in->type == MYNA_MSG_DOCUMENT)
        text = nonempty(get_str(media, "filename"));
    in->text = copy(p, text);
    in->media_id = copy(p, nonempty(get_str(media, "id")));
    in->mime_type = copy_str(p, media, "mime_type");
}

/* The parts that are present joined by sep (each part NULL or non-empty);
 * NULL when none is. */
static const char *join(struct cloud_parse *p, const char *const *parts, size_t n,
                        const char *sep)
{
    size_t len = 0, seplen = strlen(sep), i;
    char *s, *at;

    for (i = 0; i < n; i++)
        if (parts[i] != NULL)
            len += seplen + strlen(parts[i]);
    if (len == 0 || p->rc != MYNA_OK)
        return NULL;
    s = myna_arena_alloc(p->a, len + 1);  /* one sep to spare */
    if (s == NULL) {
        p->rc = MYNA_ENOMEM;
        return NULL;
    }
    for (i = 0, at = s; i < n; i++) {
        if (parts[i] == NULL)
            continue;
        if (at != s) {
            memcpy(at, sep, seplen);
            at += seplen;
        }
        memcpy(at, parts[i], strlen(parts[i]));
        at += strlen(parts[i]);
    }
    *at = '\0';
    return s;
}

static void read_location(struct cloud_parse *p, const cJSON *m, const char *type,
                          struct myna_inbound *in)
{
    const cJSON *loc = get_obj(m, type);
    /* "name, address" with whichever parts are present */
    const char *place[] = { nonempty(get_str(loc, "name")), nonempty(get_str(loc, "address")) };
    double lat, lon;

    in->type = MYNA_MSG_LOCATION;
    /* a pin off the globe is garbage, not a place */
    if (read_double(get(loc, "latitude"), &lat) && read_double(get(loc, "longitude"), &lon)
        && fabs(lat) <= 90.0 && fabs(lon) <= 180.0) {
        in->has_location = 1;
        in->latitude = lat;
        in->longitude = lon;
    }
    in->text = join(p, place, 2, ", ");
}

/* messages[].contacts are shared cards, not value.contacts (the sender).
 * The text names the first card: its formatted_name; without one, its
 * first, middle and last names (what formatted_name is made of); without
 * those, its first phone number. A later card never stands in for it:
 * "[contacts] B" for a share of an unnamed card and B would say that B
 * alone was shared. */
static void read_cards(struct cloud_parse *p, const cJSON *m, const char *type,
                       struct myna_inbound *in)
{
    const cJSON *card = first_obj(get_arr(m, type));
    const cJSON *name = get_obj(card, "name");
    const char *parts[] = { nonempty(get_str(name, "first_name")),
                            nonempty(get_str(name, "middle_name")),
                            nonempty(get_str(name, "last_name")) };
    const char *text = nonempty(get_str(name, "formatted_name"));

    in->type = MYNA_MSG_CONTACTS;
    if (text != NULL)
        in->text = copy(p, text);
    else if (parts[0] != NULL || parts[1] != NULL || parts[2] != NULL)
        in->text = join(p, parts, 3, " ");
    else
        in->text = copy(p, nonempty(get_str(first_obj(get_arr(card, "phones")), "phone")));
}

static void read_interactive(struct cloud_parse *p, const cJSON *m, const char *type,
                             struct myna_inbound *in)
{
    const cJSON *ia = get_obj(m, type);
    const char *sub = get_str(ia, "type");
    const cJSON *reply = sub != NULL ? get_obj(ia, sub) : NULL;

    if (sub != NULL && strcmp(sub, "button_reply") == 0) {
        in->type = MYNA_MSG_BUTTON_REPLY;
    } else if (sub != NULL && strcmp(sub, "list_reply") == 0) {
        in->type = MYNA_MSG_LIST_REPLY;
    } else if (sub != NULL && strcmp(sub, "nfm_reply") == 0) {
        /* Flows: the answer is response_json (a JSON string), keyed by name */
        in->type = MYNA_MSG_FLOW_REPLY;
        in->reply_id = copy_str(p, reply, "name");
        in->text = copy_str(p, reply, "response_json");
        return;
    } else {
        in->type = MYNA_MSG_UNSUPPORTED;
        in->text = copy(p, type);
        return;
    }
    in->reply_id = copy_str(p, reply, "id");
    in->text = copy_str(p, reply, "title");
}

/* A template's quick-reply button: payload is the machine value. */
static void read_button(struct cloud_parse *p, const cJSON *m, const char *type,
                        struct myna_inbound *in)
{
    const cJSON *btn = get_obj(m, type);

    in->type = MYNA_MSG_TEMPLATE_BUTTON;
    in->reply_id = copy_str(p, btn, "payload");
    in->text = copy_str(p, btn, "text");
}

static void read_reaction(struct cloud_parse *p, const cJSON *m, const char *type,
                          struct myna_inbound *in)
{
    const cJSON *r = get_obj(m, type);

    in->type = MYNA_MSG_REACTION;
    in->reply_id = copy_str(p, r, "message_id");
    /* no emoji (or "" in older docs) means the reaction was removed */
    in->text = copy(p, nonempty(get_str(r, "emoji")));
}

static void read_order(struct cloud_parse *p, const cJSON *m, const char *type,
                       struct myna_inbound *in)
{
    const cJSON *o = get_obj(m, type);

    in->type = MYNA_MSG_ORDER;
    in->reply_id = copy_str(p, o, "catalog_id");
    in->text = copy_str(p, o, "text");
}

/* Cloud API: user_changed_number + wa_id; On-Prem and older docs:
 * customer_changed_number + new_wa_id. Both carry the new number. */
static void read_system(struct cloud_parse *p, const cJSON *m, const char *type,
                        struct myna_inbound *in)
{
    const cJSON *sys = get_obj(m, type);
    const char *new_id = nonempty(get_str(sys, "wa_id"));

    in->type = MYNA_MSG_SYSTEM;
    in->reply_id = copy(p, new_id != NULL ? new_id : nonempty(get_str(sys, "new_wa_id")));
    in->text = copy_str(p, sys, "body");
}

/* "unsupported" names the real type in unsupported.type; the legacy
 * "unknown" has no sub-object. */
static void read_unsupported(struct cloud_parse *p, const cJSON *m, const char *type,
                             struct myna_inbound *in)
{
    const char *real = nonempty(get_str(get_obj(m, type), "type"));

    in->type = MYNA_MSG_UNSUPPORTED;
    in->text = copy(p, real != NULL ? real : type);
}

typedef void (*read_fn)(struct cloud_parse *p, const cJSON *m, const char *type,
                        struct myna_inbound *in);

static const struct {
    const char *type;
    read_fn read;
} readers[] = {
    { "text", read_text },
    { "image", read_media },
    { "video", read_media },
    { "document", read_media },
    { "sticker", read_media },
    { "audio", read_media },
    { "location", read_location },
    { "contacts", read_cards },
    { "interactive", read_interactive },
    { "button", read_button },
    { "reaction", read_reaction },
    { "order", read_order },
    { "system", read_system },
    { "unsupported", read_unsupported },
    { "unknown", read_unsupported },
};

/* New types (request_welcome, edit, revoke, ...) keep flowing as
 * unsupported with their name, so that nothing is dropped silently. */
static void read_content(struct cloud_parse *p, const cJSON *m, struct myna_inbound *in)
{
    const char *type = get_str(m, "type");
    size_t i;

    for (i = 0; type != NULL && i < sizeof(readers) / sizeof(readers[0]); i++) {
        if (strcmp(type, readers[i].type) == 0) {
            readers[i].read(p, m, type, in);
            return;
        }
    }
    in->type = MYNA_MSG_UNSUPPORTED;
    in->text = copy(p, type);
}

/* ---- items */

static void fill_message(struct cloud_parse *p, const char *pnid,
                         const struct contact_index *ci, const cJSON *m)
{
    const char *wamid = nonempty(get_str(m, "id"));
    struct myna_inbound *in;

    /* the guard on cap cannot trip (both walks see one tree); it keeps a
     * future change of the walks from writing past the array */
    if (wamid == NULL || p->b.n_msgs >= p->cap_msgs) {
        p->b.n_invalid++;
        return;
    }
    in = &p->b.msgs[p->b.n_msgs++];
    in->phone_number_id = pnid;
    in->wamid = copy(p, wamid);
    in->ts = read_ts(get(m, "timestamp"));
    read_sender(p, ci, m, in);
    read_content(p, m, in);
    in->context_id = copy_str(p, get_obj(m, "context"), "id");
    in->referral_id = copy_str(p, get_obj(m, "referral"), "source_id");
    in->error_code = read_code(get(first_obj(get_arr(m, "errors")), "code"));
    set_raw(p, m, &in->raw, &in->raw_len);
}

static void fill_status(struct cloud_parse *p, const char *pnid, const cJSON *s)
{
    const char *wamid = nonempty(get_str(s, "id"));
    const char *name = nonempty(get_str(s, "status"));
    const cJSON *e = first_obj(get_arr(s, "errors"));
    const char *title = get_str(e, "title");
    struct myna_status_rec *st;

    if (wamid == NULL || name == NULL || p->b.n_statuses >= p->cap_statuses) {
        p->b.n_invalid++;
        return;
    }
    st = &p->b.statuses[p->b.n_statuses++];
    st->phone_number_id = pnid;
    st->wamid = copy(p, wamid);
    st->status_name = copy(p, name);
    st->status = myna_status_kind_from_name(name);
    st->recipient = copy_str(p, s, "recipient_id");
    st->ts = read_ts(get(s, "timestamp"));
    /* Meta: "message" equals "title"; titles are being deprecated */
    st->error_code = read_code(get(e, "code"));
    st->error_title = copy(p, title != NULL ? title : get_str(e, "message"));
    set_raw(p, s, &st->raw, &st->raw_len);
}

/* A list of the wrong type is one item that could not be read. */
static const cJSON *item_list(struct cloud_parse *p, const cJSON *value, const char *key)
{
    const cJSON *v = get(value, key);

    if (v != NULL && !cJSON_IsArray(v) && !cJSON_IsNull(v))
        p->b.n_invalid++;
    return cJSON_IsArray(v) ? v : NULL;
}

/* ---- the two walks over entry x changes */

static int is_messages_change(const cJSON *change)
{
    const char *field = get_str(change, "field");

    return field != NULL && strcmp(field, "messages") == 0;
}

static void count_change(struct cloud_parse *p, const cJSON *change)
{
    const cJSON *value = get_obj(change, "value");

    if (!is_messages_change(change)) {
        p->b.n_ignored++;
        return;
    }
    p->cap_msgs += arr_len(get_arr(value, "messages"));
    p->cap_statuses += arr_len(get_arr(value, "statuses"));
    if (p->b.n_errors == 0)
        p->b.error_code = read_code(get(first_obj(get_arr(value, "errors")), "code"));
    p->b.n_errors += arr_len(get_arr(value, "errors"));
}

static void fill_change(struct cloud_parse *p, const cJSON *change)
{
    const cJSON *value = get_obj(change, "value");
    const cJSON *msgs, *stats, *it;
    struct contact_index ci;
    const char *pnid;

    memset(&ci, 0, sizeof(ci));
    if (!is_messages_change(change) || p->rc != MYNA_OK)
        return;
    /* one copy shared by every record of this value */
    pnid = copy_str(p, get_obj(value, "metadata"), "phone_number_id");
    msgs = item_list(p, value, "messages");
    stats = item_list(p, value, "statuses");
    if (msgs != NULL && msgs->child != NULL)
        index_value_contacts(p, value, &ci);
    cJSON_ArrayForEach(it, msgs)
        fill_message(p, pnid, &ci, it);
    cJSON_ArrayForEach(it, stats)
        fill_status(p, pnid, it);
}

static void walk(struct cloud_parse *p, const cJSON *entries,
                 void (*fn)(struct cloud_parse *p, const cJSON *change))
{
    const cJSON *entry, *change;

    cJSON_ArrayForEach(entry, entries) {
        const cJSON *changes = get_arr(entry, "changes");

        cJSON_ArrayForEach(change, changes)
            fn(p, change);
    }
}

/* ---- the body */

/* The body must be well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF). cJSON passes raw bytes through;
 * checking here keeps record.h's promise that every string is UTF-8
 * (cJSON's own \u decoding already yields valid UTF-8). */
static int parse_json(struct cloud_parse *p, const char *body, size_t len,
                      cJSON **root /* OUT */, struct myna_err *err)
{
    const char *end = NULL, *nul;
    size_t off;

    *root = NULL;
    if (len == 0)
        return myna_err_set(err, MYNA_EPARSE, "empty webhook body");
    off = myna_utf8_prefix(body, len);
    if (off < len)
        return myna_err_set(err, MYNA_EPARSE,
                            "webhook body is not valid UTF-8 at byte %zu", off);
    /* no JSON text holds a NUL byte; cJSON would end a string there */
    if ((nul = memchr(body, '\0', len)) != NULL)
        return myna_err_set(err, MYNA_EPARSE, "webhook body holds a NUL byte at byte %zu",
                            (size_t)(nul - body));
    /* \u0000 is valid JSON, but cJSON would end the string there: a wamid
     * "wamid.A\u0000B" would read as "wamid.A", one with the next such
     * message's. Half a surrogate pair alone is valid JSON too, for which
     * cJSON refuses the whole body: every record of it would get a 400.
     * A copy with \uFFFD in their place cuts nothing and parses. */
    if (memmem(body, len, "u0000", 5) != NULL || memmem(body, len, "\\ud", 3) != NULL ||
        memmem(body, len, "\\uD", 3) != NULL) {
        char *copy = myna_arena_alloc(p->a, len);
        if (copy == NULL)
            return myna_err_set(err, MYNA_ENOMEM, "out of memory copying the webhook body");
        memcpy(copy, body, len);
        myna_json_mend_escapes(copy, len);
        body = copy;
    }
    /* require_null_terminated would read body[len]: check the tail here */
    *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (*root == NULL)
        return myna_err_set(err, MYNA_EPARSE, "webhook body is not valid JSON near byte %zu",
                            end != NULL ? (size_t)(end - body) : (size_t)0);
    for (off = (size_t)(end - body); off < len; off++)
        if (body[off] != ' ' && body[off] != '\t' && body[off] != '\r' && body[off] != '\n')
            break;
    if (off < len) {
        *root = NULL;  /* the tree is arena memory */
        return myna_err_set(err, MYNA_EPARSE,
                            "webhook body has bytes after the JSON value at byte %zu", off);
    }
    /* cJSON takes a \u escape that is not four hex digits for a NUL and
     * ends the string there (json.h); the \u0000s are mended above, so
     * what is left is not JSON */
    if (myna_json_has_nul(body, len)) {
        *root = NULL;
        return myna_err_set(err, MYNA_EPARSE,
                            "webhook body has a \\u escape that is not four hex digits");
    }
    return MYNA_OK;
}

/* Printable ASCII excerpt of a hostile value, for err messages and logs. */
static const char *shown(const char *s, char buf[SHOWN_MAX + 4])
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < SHOWN_MAX; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
    if (s[i] != '\0') {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static int check_envelope(const cJSON *root, const cJSON **entries /* OUT */,
                          struct myna_err *err)
{
    const cJSON *object = get(root, "object");
    const cJSON *entry = get(root, "entry");
    char buf[SHOWN_MAX + 4];

    if (!cJSON_IsObject(root))
        return myna_err_set(err, MYNA_ESHAPE, "webhook body is %s, not a JSON object",
                            json_kind(root));
    if (object == NULL)
        return myna_err_set(err, MYNA_ESHAPE, "missing \"object\" field");
    if (!cJSON_IsString(object))
        return myna_err_set(err, MYNA_ESHAPE, "\"object\" is %s, expected '%s'",
                            json_kind(object), CLOUD_OBJECT);
    if (strcmp(object->valuestring, CLOUD_OBJECT) != 0)
        return myna_err_set(err, MYNA_ESHAPE, "\"object\" is '%s', expected '%s'",
                            shown(object->valuestring, buf), CLOUD_OBJECT);
    if (entry == NULL)
        return myna_err_set(err, MYNA_ESHAPE, "missing \"entry\" array");
    if (!cJSON_IsArray(entry))
        return myna_err_set(err, MYNA_ESHAPE, "\"entry\" is %s, expected an array",
                            json_kind(entry));
    *entries = entry;
    return MYNA_OK;
}

static int collect(struct cloud_parse *p, const cJSON *entries, struct myna_err *err)
{
    walk(p, entries, count_change);
    if (p->cap_msgs + p->cap_statuses > MYNA_CLOUD_MAX_ITEMS)
        return myna_err_set(err, MYNA_ETOOBIG,
                            "webhook carries %zu messages and statuses, more than %d",
                            p->cap_msgs + p->cap_statuses, MYNA_CLOUD_MAX_ITEMS);
    p->b.msgs = alloc_array(p, p->cap_msgs, sizeof(*p->b.msgs));
    p->b.statuses = alloc_array(p, p->cap_statuses, sizeof(*p->b.statuses));
    walk(p, entries, fill_change);
    if (p->rc != MYNA_OK)
        return myna_err_set(err, p->rc, "cannot copy webhook fields: arena exhausted");
    if (p->b.n_msgs == 0)
        p->b.msgs = NULL;
    if (p->b.n_statuses == 0)
        p->b.statuses = NULL;
    return MYNA_OK;
}

int myna_cloud_parse(const char *body, size_t len, struct myna_arena *a,
                     struct myna_cloud_batch *out, struct myna_err *err)
{
    struct cloud_parse p;
    struct myna_json_section js;
    const cJSON *entries = NULL;
    cJSON *root = NULL;
    int rc;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (a == NULL || out == NULL || (body == NULL && len > 0))
        return myna_err_set(err, MYNA_EINVAL, "myna_cloud_parse: NULL argument");
    memset(&p, 0, sizeof(p));
    p.a = a;
    /* the tree and the printed raw objects live in the caller's arena */
    myna_json_arena_begin(&js, a);
    rc = parse_json(&p, body, len, &root, err);
    if (rc == MYNA_OK)
        rc = check_envelope(root, &entries, err);
    if (rc == MYNA_OK)
        rc = collect(&p, entries, err);
    if (myna_json_arena_end(&js) && rc != MYNA_OK) {
        memset(&p.b, 0, sizeof(p.b));
        return myna_err_set(err, MYNA_ENOMEM, "out of memory parsing the webhook (arena exhausted)");
    }
    if (rc == MYNA_OK)
        *out = p.b;
    return rc;
}
