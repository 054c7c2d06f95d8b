/* llm.c - chat completions over the HTTP client: the request body built once
 * per turn with cJSON, each answer parsed in its own bounded arena, retries
 * waited for on an evtimer, and the circuit breaker.
 *
 * A turn (struct llm_call) lives on the client's list from myna_llm_chat to
 * its callback. myna_llm_free cancels a turn's HTTP request in flight: the
 * HTTP client may be freed right after, and it frees its requests without
 * calling back, so a turn left waiting for that answer would leak. */
#include "ai/llm.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "net/http_client.h"
#include "core/banned.h"

#define RESPONSE_MAX (1u << 20)
/* cJSON spends ~64 bytes a node: a 1 MiB body of tiny values (a hostile or
 * broken server) needs ~32 MiB; past this the answer fails with ENOMEM. */
#define PARSE_ARENA_MAX (40u << 20)
#define REQUEST_ARENA_MAX (64u << 20)
#define URL_MAX 2048
#define BACKOFF_CAP_MS 8000
#define SHOWN_MAX 120   /* bytes of a non-JSON error body quoted in result.error */

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_ATTEMPTS 3
#define DEFAULT_BACKOFF_MS 500
#define DEFAULT_BREAKER_FAILURES 5
#define DEFAULT_BREAKER_COOLDOWN_MS 30000

#define FIELD_BIT(f) (1u << (unsigned)(f))

/* The request fields a model may refuse, by enum myna_llm_field. */
static const char *const field_names[] = { NULL, "max_tokens", "temperature", "top_p" };

enum breaker_state {
    BREAKER_CLOSED,
    BREAKER_OPEN,       /* refusing turns until open_until_ms, then one probe */
    BREAKER_HALF_OPEN   /* the probe is in flight: refusing the others */
};

/* What a finished turn says about the endpoint's health. */
enum verdict {
    VERDICT_ALIVE,      /* it answered: success, a 4xx, a declined or too large answer */
    VERDICT_FAULT,      /* transport, timeout, 408, 429, 5xx, unusable answer */
    VERDICT_NEUTRAL     /* we gave up for our own reasons: says nothing */
};

struct llm_call {
    struct llm_call *next, *prev;
    struct myna_llm *llm;
    char *body;                /* the request, sent again on each attempt */
    size_t body_len;
    struct event *retry;       /* backoff timer */
    myna_llm_cb cb;
    void *arg;
    int attempts;
    int resent;                /* attempts sent again without a field the model refused */
    unsigned adapted;          /* FIELD_BIT of the fields the body was adapted for */
    int in_http;               /* an HTTP request of this turn is in flight */
    int probe;                 /* the half-open circuit's probe */
    int64_t started_ms;
    long last_status;
    char error[256];
};

struct myna_llm {
    struct event_base *base;
    struct myna_http_client *http;
    char *url;                 /* {base}/chat/completions{?query} */
    char *model;               /* "" = not sent */
    char *auth;                /* "Authorization: Bearer K", NULL without a key */
    const char *headers[4];
    double temperature, top_p;
    int max_tokens, timeout_ms, max_attempts, backoff_ms;
    unsigned adapted;          /* FIELD_BIT of the fields this model refused: for the
                                  client's life, each learnt once */
    int breaker_failures, breaker_cooldown_ms;
    struct llm_call *calls;    /* turns not yet answered */
    enum breaker_state state;
    int consecutive;           /* server-side failed turns in a row */
    int64_t open_until_ms;
    uint64_t rng;
    struct myna_llm_stats stats;
    int in_cb;                 /* callbacks running: free must wait for them */
    int closing;               /* myna_llm_free was called inside a callback */
};

static int start_attempt(struct llm_call *call, struct myna_err *err);

/* ---- the response parser (pure) ---------------------------------------- */

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(get(obj, key));
}

static int tokens(const cJSON *v)
{
    double d;

    if (!cJSON_IsNumber(v))
        return 0;
    d = v->valuedouble;
    if (!(d >= 0))
        return 0;
    return d >= (double)INT_MAX ? INT_MAX : (int)d;
}

/* s itself when it is valid UTF-8, else a copy in a with each bad byte
 * replaced by U+FFFD (WhatsApp and JSON printers want valid text). */
static const char *utf8_fix(struct myna_arena *a, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), i = myna_utf8_prefix(s, len), bad = 0, o = 0, k;
    char *out;

    if (i == len)
        return s;  /* the usual case: nothing to mend */
    while (i < len) {
        k = myna_utf8_seq(p + i, len - i);
        if (k == 0) {
            bad++;
            k = 1;
        }
        i += k;
    }
    if (bad == 0)
        return s;
    if ((out = myna_arena_alloc(a, len + 2 * bad + 1)) == NULL)
        return NULL;
    for (i = 0; i < len; i += k) {
        k = myna_utf8_seq(p + i, len - i);
        if (k == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            k = 1;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
        }
    }
    out[o] = '\0';
    return out;
}

/* A content part that carries text: {"type":"text","text":...}; servers
 * differ on the type's name and some leave it out. */
static const char *part_text(const cJSON *part)
{
    const char *type = get_str(part, "type");

    if (type && strcmp(type, "text") != 0 && strcmp(type, "output_text") != 0)
        return NULL;
    return get_str(part, "text");
}

/* The text parts of content, joined; NULL when there is none or a is full
 * (*nomem tells which). */
static const char *join_parts(const cJSON *content, struct myna_arena *a, int *nomem)
{
    const cJSON *part;
    size_t total = 0, n = 0, o = 0;
    char *out;

    cJSON_ArrayForEach(part, content) {
        const char *t = part_text(part);
        if (t) {
            total += strlen(t);
            n++;
        }
    }
    if (n == 0)
        return NULL;
    if ((out = myna_arena_alloc(a, total + 1)) == NULL) {
        *nomem = 1;
        return NULL;
    }
    cJSON_ArrayForEach(part, content) {
        const char *t = part_text(part);
        if (t) {
            size_t l = strlen(t);
            memcpy(out + o, t, l);
            o += l;
        }
    }
    out[o] = '\0';
    return out;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* A reasoning model served without a reasoning parser writes its thoughts
 * into the content first: they are not for the customer. The answer after
 * a leading <think>...</think>; NULL when the block never ends (the model
 * thought until max_tokens and never answered). A chat template that ends
 * the prompt with "<think>" (DeepSeek-R1, QwQ) leaves the content without
 * the opening tag: a "</think>" with no "<think>" before it ends thoughts
 * all the same. */
static const char *strip_think(const char *s)
{
    const char *p = s, *end;

    while (is_blank(*p))
        p++;
    if (strncmp(p, "<think>", 7) == 0) {
        if ((end = strstr(p + 7, "</think>")) == NULL)
            return NULL;
    } else if ((end = strstr(p, "</think>")) == NULL ||
               memmem(p, (size_t)(end - p), "<think>", 7) != NULL) {
        return s;
    }
    for (p = end + 8; is_blank(*p); p++) {
    }
    return p;
}

static int is_emphasis(char ch)
{
    return ch == '*' || ch == '_';
}

/* Whether s[0..k) ends with the number of an ordered list item ("12."
 * alone at the start of a line, maybe indented, maybe bold: "**12.**"):
 * its dot ends no sentence, and a cut there would leave the number
 * without its item. */
static int ends_list_number(const char *s, size_t k)
{
    size_t j = k, digits = 0;

    while (j > 0 && is_emphasis(s[j - 1]))
        j--;
    if (j == 0 || s[--j] != '.')
        return 0;
    while (j > 0 && s[j - 1] >= '0' && s[j - 1] <= '9') {
        j--;
        digits++;
    }
    while (j > 0 && is_emphasis(s[j - 1]))
        j--;
    while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t'))
        j--;
    return digits > 0 && (j == 0 || s[j - 1] == '\n');
}

/* Whether k, in s[0..n), follows a sentence end (myna_ends_sentence: its
 * mark and the closers that stay with it), with a blank or the end after
 * it, or, after 。！？, the next sentence right away. */
static int sentence_ends_at(const char *s, size_t k, size_t n)
{
    int e = myna_ends_sentence(s, k);
    size_t next;

    if (e == 0 || k == n || is_blank(s[k]))
        return e != 0;
    if ((next = myna_utf8_seq((const unsigned char *)s + k, n - k)) == 0)
        next = 1;
    return e == MYNA_SENTENCE_TIGHT && !myna_ends_sentence(s, k + next);
}

/* The end of the last sentence in s[0..n) (not a list item's number), or
 * before a line break; 0 for none. */
static size_t last_sentence_end(const char *s, size_t n)
{
    for (size_t k = n; k > 0; k--) {
        if (k < n && s[k] == '\n')
            return k;
        if (sentence_ends_at(s, k, n) && !ends_list_number(s, k))
            return k;
    }
    return 0;
}

/* An answer stopped by max_tokens ends mid-sentence: back to its last
 * sentence end if that keeps at least half of it, else to its last word
 * end in the second half, marked with an ellipsis. NULL when a is full. */
static const char *cut_at_sentence(struct myna_arena *a, const char *s)
{
    size_t n = strlen(s), k, j;
    int mark = 0;
    char *out;

    while (n > 0 && is_blank(s[n - 1]))
        n--;
    if (n == 0)
        return s;
    k = last_sentence_end(s, n);
    if (k < n - n / 2) {
        for (j = n; j > n / 2 && !is_blank(s[j - 1]); j--) {
        }
        k = j > n / 2 ? j : n;
        mark = 1;
    }
    while (k > 0 && is_blank(s[k - 1]))
        k--;
    if ((out = myna_arena_alloc(a, k + 4)) == NULL)
        return NULL;
    memcpy(out, s, k);
    memcpy(out + k, mark ? MYNA_ELLIPSIS : "", mark ? sizeof(MYNA_ELLIPSIS) : 1);
    return out;
}

static int extract(const cJSON *root, struct myna_arena *a, const char **text, int *prompt_tokens,
                   int *completion_tokens, struct myna_err *err)
{
    const cJSON *choices = get(root, "choices"), *first, *msg, *content, *usage;
    const char *s, *finish;
    int nomem = 0, length;

    if (!cJSON_IsObject(root))
        return myna_err_set(err, MYNA_EPARSE, "llm answer is not a JSON object");
    /* first: an answer that turns out unusable was paid for all the same */
    usage = get(root, "usage");
    *prompt_tokens = tokens(get(usage, "prompt_tokens"));
    *completion_tokens = tokens(get(usage, "completion_tokens"));
    first = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    if (!cJSON_IsObject(first)) {
        /* some servers send their error (overloaded, ...) with a 200 */
        const cJSON *e = get(root, "error");
        const char *m = cJSON_IsString(e) ? e->valuestring : get_str(e, "message");
        if (m)
            return myna_err_set(err, MYNA_EAGAIN, "llm answer is an error: %.*s",
                                (int)myna_utf8_cut(m, 200), m);
        if (cJSON_IsObject(e))
            return myna_err_set(err, MYNA_EAGAIN, "llm answer is an error without a message");
        return myna_err_set(err, MYNA_EPARSE, "llm answer has no choices");
    }
    msg = get(first, "message");
    if (!cJSON_IsObject(msg))
        return myna_err_set(err, MYNA_EPARSE, "llm answer has no choices[0].message");
    content = get(msg, "content");
    if (cJSON_IsString(content)) {
        s = content->valuestring;
    } else if (cJSON_IsArray(content)) {
        if ((s = join_parts(content, a, &nomem)) == NULL)
            return nomem ? myna_err_set(err, MYNA_ENOMEM, "llm answer too large to parse")
                         : myna_err_set(err, MYNA_EPARSE,
                                        "llm answer has no text part in choices[0].message.content");
    } else {
        /* a finish_reason other than "length" with no text: the model
         * declined this request (a content filter, a refusal, a tool call),
         * a well-formed answer of a server that works (MYNA_ESHAPE) */
        finish = get_str(first, "finish_reason");
        return myna_err_set(err,
                            finish && strcmp(finish, "length") != 0 ? MYNA_ESHAPE : MYNA_EPARSE,
                            "llm answer has %s choices[0].message.content%s%.*s%s%s",
                            content == NULL ? "no" : cJSON_IsNull(content) ? "a null" : "a non-text",
                            finish ? " (finish_reason '" : "",
                            finish ? (int)myna_utf8_cut(finish, 40) : 0, finish ? finish : "",
                            finish ? "')" : "",
                            finish && strcmp(finish, "length") == 0
                                ? ": max_tokens ran out before the answer (raise llm.max_tokens)"
                                : "");
    }
    if ((s = utf8_fix(a, s)) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "llm answer too large to parse");
    finish = get_str(first, "finish_reason");
    length = finish && strcmp(finish, "length") == 0;
    if ((s = strip_think(s)) == NULL)  /* the operator's to fix: tell how */
        return myna_err_set(err, MYNA_EPARSE, "llm answer is all thinking: its <think> never "
                            "ended%s", length ? " before max_tokens (raise llm.max_tokens)" : "");
    /* a reasoning parser moved the thoughts out of the content (vLLM's
     * reasoning_content), and they used up every token: nothing is left */
    if (length && s[strspn(s, " \t\r\n")] == '\0')
        return myna_err_set(err, MYNA_EPARSE, "llm answer is empty (finish_reason 'length'): "
                            "max_tokens ran out before the answer (raise llm.max_tokens)");
    if (length && (s = cut_at_sentence(a, s)) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "llm answer too large to parse");
    *text = s;
    return MYNA_OK;
}

int myna_llm_parse_response(const char *body, size_t len, struct myna_arena *a,
                            const char **text, int *prompt_tokens, int *completion_tokens,
                            struct myna_err *err)
{
    struct myna_json_section js;
    struct myna_err local = MYNA_ERR_INIT;
    const char *end = NULL;
    cJSON *root;
    int rc;

    *text = NULL;
    *prompt_tokens = *completion_tokens = 0;
    if (body == NULL || len == 0)
        return myna_err_set(err, MYNA_EPARSE, "llm answer is empty");
    myna_json_arena_begin(&js, a);
    root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    rc = root ? extract(root, a, text, prompt_tokens, completion_tokens, &local) : MYNA_EPARSE;
    /* a NUL (raw or \u0000) cuts the text short without a trace in the
     * tree: "Yes\u0000, but..." would read as "Yes"; bytes after the
     * value are not read */
    if (rc == MYNA_OK &&
        myna_json_has_nul(body, end > body && end <= body + len ? (size_t)(end - body) : len))
        rc = myna_err_set(&local, MYNA_EPARSE, "llm answer has a NUL character in a string");
    if (myna_json_arena_end(&js) || rc == MYNA_ENOMEM) {
        *text = NULL;
        *prompt_tokens = *completion_tokens = 0;
        return myna_err_set(err, MYNA_ENOMEM, "llm answer too large to parse");
    }
    if (root == NULL)
        return myna_err_set(err, MYNA_EPARSE, "llm answer is not JSON (at byte %zu of %zu)",
                            end && end >= body && end <= body + len ? (size_t)(end - body) : 0,
                            len);
    if (rc != MYNA_OK) {
        *text = NULL;  /* the usage stays: the tokens were spent */
        return myna_err_set(err, rc, "%s", local.msg);
    }
    return MYNA_OK;
}

/* out = prefix (short, ASCII), then as much of s as fits in cap bytes, cut
 * at a character boundary: a byte cut could end in half a character. */
static void error_text(char *out, size_t cap, const char *prefix, const char *s)
{
    size_t n = strlen(prefix);

    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, prefix, n);
    snprintf(out + n, cap - n, "%.*s", (int)myna_utf8_cut(s, cap - n - 1), s);
}

/* The API key the client sends, or NULL without one. */
static const char *api_key(const struct myna_llm *llm)
{
    static const char bearer[] = "Authorization: Bearer ";

    return llm->auth != NULL ? llm->auth + sizeof(bearer) - 1 : NULL;
}

/* The error message of a failed answer: OpenAI, llama.cpp and Ollama send
 * {"error":{"message"}}, vLLM {"message"}, FastAPI {"detail"}, Gemini
 * [{"error":{"message"}}]; anything else is quoted, printable bytes only,
 * and without key (NULL: none), which a page that echoes the request
 * quotes: cut by the quote's bound, its start would be no whole copy for
 * the scrub of the whole error. */
static void api_error(const char *body, size_t len, long status, const char *key, char *out,
                      size_t cap)
{
    struct myna_arena a = MYNA_ARENA_INIT(PARSE_ARENA_MAX);
    struct myna_json_section js;
    const cJSON *root, *e;
    const char *m = NULL;
    char shown[SHOWN_MAX + 1];
    size_t n = 0;

    myna_json_arena_begin(&js, &a);
    root = len ? cJSON_ParseWithLength(body, len) : NULL;
    if (cJSON_IsArray(root))
        root = cJSON_GetArrayItem(root, 0);
    e = get(root, "error");
    if (cJSON_IsString(e))
        m = e->valuestring;
    else if ((m = get_str(e, "message")) == NULL && (m = get_str(root, "message")) == NULL)
        m = get_str(root, "detail");
    if (m && m[0]) {
        char head[48];
        snprintf(head, sizeof(head), "llm answered HTTP %ld: ", status);
        error_text(out, cap, head, m);
    } else {
        for (size_t i = 0; i < len && n < SHOWN_MAX; i++)
            shown[n++] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : ' ';
        shown[n] = '\0';
        if (key != NULL)
            myna_text_scrub(shown, sizeof(shown), key, "[api_key]");
        snprintf(out, cap, "llm answered HTTP %ld%s%s", status, n ? ": " : "", shown);
    }
    myna_json_arena_end(&js);
    myna_arena_free(&a);
}

enum myna_llm_field myna_llm_parse_refused(const char *body, size_t len)
{
    struct myna_arena a = MYNA_ARENA_INIT(PARSE_ARENA_MAX);
    struct myna_json_section js;
    enum myna_llm_field field = MYNA_LLM_FIELD_NONE;
    const cJSON *root, *e;
    const char *param, *code;

    if (body == NULL || len == 0)
        return MYNA_LLM_FIELD_NONE;
    myna_json_arena_begin(&js, &a);
    root = cJSON_ParseWithLength(body, len);
    if (cJSON_IsArray(root))
        root = cJSON_GetArrayItem(root, 0);
    e = get(root, "error");
    param = get_str(e, "param");
    code = get_str(e, "code");
    /* only the refusal of a field optional to the model: a value too large
     * for it (invalid_value) or a context too long is the request's fault */
    if (param && code &&
        (strcmp(code, "unsupported_parameter") == 0 || strcmp(code, "unsupported_value") == 0))
        for (size_t i = 1; i < sizeof(field_names) / sizeof(field_names[0]); i++)
            if (strcmp(param, field_names[i]) == 0)
                field = (enum myna_llm_field)i;
    /* a body the arena could not hold is not read: its tree may be partial */
    if (myna_json_arena_end(&js))
        field = MYNA_LLM_FIELD_NONE;
    myna_arena_free(&a);
    return field;
}

/* ---- requests ------------------------------------------------------------ */

/* The texts of msgs[0..n), the non-empty ones a blank line apart, in a;
 * len bounds their lengths plus 2 each. NULL when a is full. */
static const char *join_contents(struct myna_arena *a, const struct myna_llm_msg *msgs, size_t n,
                                 size_t len)
{
    char *out = myna_arena_alloc(a, len + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(msgs[i].content);
        if (l == 0)
            continue;
        if (o > 0) {
            memcpy(out + o, "\n\n", 2);
            o += 2;
        }
        memcpy(out + o, msgs[i].content, l);
        o += l;
    }
    out[o] = '\0';
    return out;
}

/* FIELD_BIT of the optional fields llm's requests carry (set in its
 * settings). */
static unsigned fields_set(const struct myna_llm *llm)
{
    return (llm->max_tokens > 0 ? FIELD_BIT(MYNA_LLM_FIELD_MAX_TOKENS) : 0) |
           (llm->temperature >= 0 ? FIELD_BIT(MYNA_LLM_FIELD_TEMPERATURE) : 0) |
           (llm->top_p > 0 ? FIELD_BIT(MYNA_LLM_FIELD_TOP_P) : 0);
}

/* The fields of a request after its model and messages, adapted to what the
 * model refused, then the printed body (malloc'd; NULL when out of memory).
 * root lives in the caller's JSON arena section. */
static char *finish_body(const struct myna_llm *llm, unsigned adapted, cJSON *root, size_t *len)
{
    /* a refused max_tokens goes as max_completion_tokens, the others not */
    unsigned send = fields_set(llm) & ~(adapted & ~FIELD_BIT(MYNA_LLM_FIELD_MAX_TOKENS));
    char *printed = NULL, *out = NULL;
    int ok = 1;

    if (send & FIELD_BIT(MYNA_LLM_FIELD_TEMPERATURE))
        ok = cJSON_AddNumberToObject(root, "temperature", llm->temperature) != NULL;
    if (ok && (send & FIELD_BIT(MYNA_LLM_FIELD_TOP_P)))
        ok = cJSON_AddNumberToObject(root, "top_p", llm->top_p) != NULL;
    if (ok && (send & FIELD_BIT(MYNA_LLM_FIELD_MAX_TOKENS)))
        ok = cJSON_AddNumberToObject(root,
                                     adapted & FIELD_BIT(MYNA_LLM_FIELD_MAX_TOKENS)
                                         ? "max_completion_tokens" : "max_tokens",
                                     llm->max_tokens) != NULL;
    if (ok)
        ok = cJSON_AddFalseToObject(root, "stream") != NULL;
    if (ok)
        printed = cJSON_PrintUnformatted(root);
    if (printed && (out = malloc(strlen(printed) + 1)) != NULL) {
        *len = strlen(printed);
        memcpy(out, printed, *len + 1);
    }
    return out;
}

/* The line before the answers a conversation starts with, in the system
 * message (fold_lead). */
#define FOLD_HEAD "Earlier in this conversation you (or a colleague) wrote:"

/* The messages before the first user one, msgs[0..n), as one system text
 * in a: the system messages' texts, then FOLD_HEAD and the others' (the
 * answers and an operator's messages a history window starts with), a
 * blank line between two. NULL when a is full. */
static const char *fold_lead(struct myna_arena *a, const struct myna_llm_msg *msgs, size_t n)
{
    struct myna_llm_msg *all = myna_arena_alloc(a, (n + 1) * sizeof(*all));
    size_t k = 0, total = sizeof(FOLD_HEAD) + 2;

    if (all == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(msgs[i].role, "system") == 0)
            all[k++] = msgs[i];
    all[k].role = "system";
    all[k++].content = FOLD_HEAD;
    for (size_t i = 0; i < n; i++) {
        total += strlen(msgs[i].content) + 2;
        if (strcmp(msgs[i].role, "system") != 0)
            all[k++] = msgs[i];
    }
    return join_contents(a, all, k, total);
}

static char *build_body(const struct myna_llm *llm, unsigned adapted,
                        const struct myna_llm_msg *msgs, size_t n, size_t *len)
{
    struct myna_arena a = MYNA_ARENA_INIT(REQUEST_ARENA_MAX);
    struct myna_json_section js;
    cJSON *root, *arr = NULL;
    char *out;
    size_t lead = 0, start = 0;
    int ok, fold = 0;

    myna_json_arena_begin(&js, &a);
    root = cJSON_CreateObject();
    ok = root != NULL && (llm->model[0] == '\0' ||
                          cJSON_AddStringToObject(root, "model", llm->model) != NULL) &&
         (arr = cJSON_AddArrayToObject(root, "messages")) != NULL;
    /* the chat templates below want a user message right after the
     * system one: answers before the customer's first message of the
     * history window (its question fell out of the window, an operator
     * wrote first) go into the system message, as what was said before */
    while (lead < n && strcmp(msgs[lead].role, "user") != 0)
        fold |= strcmp(msgs[lead++].role, "system") != 0;
    if (ok && fold && lead < n) {
        cJSON *m = cJSON_CreateObject();
        const char *content = fold_lead(&a, msgs, lead);
        ok = content != NULL && m != NULL && cJSON_AddItemToArray(arr, m) &&
             cJSON_AddStringToObject(m, "role", "system") != NULL &&
             cJSON_AddStringToObject(m, "content", content) != NULL;
        start = lead;
    }
    /* consecutive messages of one role go as one, a blank line between
     * their texts: the chat templates of Mistral, Gemma and others refuse
     * anything but one system message, then user and assistant in turn */
    for (size_t i = start, j; ok && i < n; i = j) {
        cJSON *m = cJSON_CreateObject();
        const char *content = msgs[i].content;
        size_t total = 0;
        for (j = i; j < n && strcmp(msgs[j].role, msgs[i].role) == 0; j++)
            total += strlen(msgs[j].content) + 2;
        if (j - i > 1 && (content = join_contents(&a, msgs + i, j - i, total)) == NULL)
            ok = 0;
        ok = ok && m != NULL && cJSON_AddItemToArray(arr, m) &&
             cJSON_AddStringToObject(m, "role", msgs[i].role) != NULL &&
             cJSON_AddStringToObject(m, "content", content) != NULL;
    }
    out = ok ? finish_body(llm, adapted, root, len) : NULL;
    myna_json_arena_end(&js);
    myna_arena_free(&a);
    return out;
}

/* The request in body again, its optional fields sent as adapted says the
 * model wants them (malloc'd); NULL when out of memory. */
static char *adapt_body(const struct myna_llm *llm, unsigned adapted, const char *body,
                        size_t *len)
{
    static const char *const options[] = { "temperature", "top_p", "max_tokens",
                                           "max_completion_tokens", "stream" };
    struct myna_arena a = MYNA_ARENA_INIT(REQUEST_ARENA_MAX);
    struct myna_json_section js;
    cJSON *root;
    char *out = NULL;

    myna_json_arena_begin(&js, &a);
    if ((root = cJSON_Parse(body)) != NULL) {
        for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
            cJSON_DeleteItemFromObjectCaseSensitive(root, options[i]);
        out = finish_body(llm, adapted, root, len);
    }
    myna_json_arena_end(&js);
    myna_arena_free(&a);
    return out;
}

static uint64_t next_rand(struct myna_llm *llm)
{
    uint64_t x = llm->rng;  /* xorshift64*: jitter only, not secrets */

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    llm->rng = x;
    return x * 2685821657736338717ULL;
}

/* Delay before the attempt after `done` attempts: backoff_ms doubling, capped,
 * times a factor in [0.8, 1.2] so that clients do not retry in step. */
static int backoff_delay(struct myna_llm *llm, int done)
{
    int64_t d = llm->backoff_ms;

    for (int i = 1; i < done && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    d = d * (int64_t)(80 + next_rand(llm) % 41) / 100;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    return d < 1 ? 1 : (int)d;
}

static void call_unlink(struct llm_call *call)
{
    struct myna_llm *llm = call->llm;

    if (call->prev)
        call->prev->next = call->next;
    else
        llm->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
}

static void call_free(struct llm_call *call)
{
    if (call->retry)
        event_free(call->retry);
    free(call->body);
    free(call);
}

static void llm_destroy(struct myna_llm *llm)
{
    free(llm->url);
    free(llm->model);
    free(llm->auth);
    free(llm);
}

static void breaker_open(struct myna_llm *llm, const char *why)
{
    llm->state = BREAKER_OPEN;
    llm->open_until_ms = myna_mono_ms() + llm->breaker_cooldown_ms;
    MYNA_LOG(MYNA_WARN, "llm_circuit_open", "reason=%s failures=%d cooldown_ms=%d", why,
             llm->consecutive, llm->breaker_cooldown_ms);
}

static void breaker_note(struct myna_llm *llm, int probe, enum verdict v)
{
    if (probe && llm->state == BREAKER_HALF_OPEN) {
        if (v == VERDICT_FAULT) {
            llm->consecutive++;
            breaker_open(llm, "probe_failed");
            return;
        }
        if (v == VERDICT_NEUTRAL) {   /* no verdict: the next turn probes again */
            llm->state = BREAKER_OPEN;
            return;
        }
    }
    if (v == VERDICT_ALIVE) {
        llm->consecutive = 0;
        if (llm->state != BREAKER_CLOSED) {
            llm->state = BREAKER_CLOSED;
            MYNA_LOG(MYNA_INFO, "llm_circuit_closed", "probe=%d", probe);
        }
    } else if (v == VERDICT_FAULT) {
        llm->consecutive++;
        if (llm->state == BREAKER_CLOSED && llm->consecutive >= llm->breaker_failures)
            breaker_open(llm, "failures");
    }
}

/* Takes the API key out of call's error text: an endpoint may quote the
 * key it refused ("Incorrect API key provided: K"), and a proxy's page
 * may echo the request; the text is logged and kept with the turn. */
static void scrub_error(struct llm_call *call)
{
    if (api_key(call->llm) != NULL)
        myna_text_scrub(call->error, sizeof(call->error), api_key(call->llm), "[api_key]");
}

/* Answers the turn and frees it. The client may be gone on return (freed
 * from inside the callback). */
static void finish(struct llm_call *call, int rc, enum verdict v, const char *text,
                   int prompt_tokens, int completion_tokens)
{
    struct myna_llm *llm = call->llm;
    struct myna_llm_result r;

    call_unlink(call);
    breaker_note(llm, call->probe, v);
    memset(&r, 0, sizeof(r));
    r.rc = rc;
    r.attempts = call->attempts;
    r.latency_ms = myna_mono_ms() - call->started_ms;
    r.last_status = call->last_status;
    r.prompt_tokens = prompt_tokens;
    r.completion_tokens = completion_tokens;
    llm->stats.prompt_tokens += (uint64_t)prompt_tokens;
    llm->stats.completion_tokens += (uint64_t)completion_tokens;
    if (rc == MYNA_OK) {
        r.text = text;
    } else {
        llm->stats.failures++;
        scrub_error(call);
        snprintf(r.error, sizeof(r.error), "%s", call->error[0] ? call->error : myna_strerror(rc));
    }
    llm->in_cb++;
    call->cb(&r, call->arg);
    llm->in_cb--;
    call_free(call);
    if (llm->closing && llm->in_cb == 0)
        llm_destroy(llm);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct llm_call *call = arg;
    struct myna_llm *llm = call->llm;
    struct myna_err err = MYNA_ERR_INIT;
    char prev[sizeof(call->error)];

    (void)fd;
    (void)what;
    if (llm->state != BREAKER_CLOSED && !call->probe) {
        /* other turns opened the circuit meanwhile: do not add to the load */
        snprintf(prev, sizeof(prev), "%s", call->error);
        error_text(call->error, sizeof(call->error), "circuit open, not retried: ", prev);
        finish(call, MYNA_EAGAIN, VERDICT_NEUTRAL, NULL, 0, 0);
        return;
    }
    if (start_attempt(call, &err) != MYNA_OK) {
        error_text(call->error, sizeof(call->error), "", err.msg);
        finish(call, MYNA_EIO, VERDICT_NEUTRAL, NULL, 0, 0);
    }
}

/* After a failed attempt that may succeed if repeated. retry_after_s is
 * the endpoint's Retry-After (0: none): the next attempt waits at least
 * that long, and when it is longer than any backoff (BACKOFF_CAP_MS) the
 * call ends now: the customer is not kept waiting for it, and the
 * endpoint is not asked early. */
static void retry_or_finish(struct llm_call *call, int64_t retry_after_s)
{
    struct myna_llm *llm = call->llm;
    char q[300];

    scrub_error(call);
    if (retry_after_s > BACKOFF_CAP_MS / 1000) {
        size_t n = strlen(call->error);
        snprintf(call->error + n, sizeof(call->error) - n, " (retry after %" PRId64 " s)",
                 retry_after_s);
    } else if (call->attempts - call->resent < llm->max_attempts) {
        int delay = backoff_delay(llm, call->attempts - call->resent);
        struct timeval tv;
        if (delay < retry_after_s * 1000)
            delay = (int)retry_after_s * 1000;
        tv.tv_sec = delay / 1000;
        tv.tv_usec = (delay % 1000) * 1000;
        if (evtimer_add(call->retry, &tv) == 0) {
            MYNA_LOG(MYNA_WARN, "llm_retry", "attempt=%d status=%ld retry_in_ms=%d err=%s",
                     call->attempts, call->last_status, delay,
                     myna_log_q(q, sizeof(q), call->error));
            return;
        }
    }
    finish(call, MYNA_EIO, VERDICT_FAULT, NULL, 0, 0);
}

/* A 400 that refuses an optional field of the request (OpenAI's reasoning
 * models: max_tokens, a temperature or top_p other than 1): the turn goes
 * again at once with the field as the model wants it, and the client
 * keeps it so for its life. The endpoint answered, and the next request
 * is this one's, not a retry: neither counts toward the circuit or the
 * attempts. Each field once per turn: a server that refuses the adapted
 * request again gets no loop, and its 400 stays a refusal. 1 when the
 * turn was sent again (or answered, when that failed). */
static int resend_adapted(struct llm_call *call, const char *body, size_t len)
{
    struct myna_llm *llm = call->llm;
    struct myna_err err = MYNA_ERR_INIT;
    enum myna_llm_field field = myna_llm_parse_refused(body, len);
    unsigned bit = FIELD_BIT(field);
    size_t nlen = 0;
    char *nbody;

    if (field == MYNA_LLM_FIELD_NONE || !(fields_set(llm) & bit) || (call->adapted & bit))
        return 0;
    if (!(llm->adapted & bit)) {
        llm->adapted |= bit;
        MYNA_LOG(MYNA_INFO, "llm_adapted", "param=%s now=%s", field_names[field],
                 field == MYNA_LLM_FIELD_MAX_TOKENS ? "max_completion_tokens" : "omitted");
    }
    /* a turn that started before another learnt a field takes that too */
    call->adapted |= llm->adapted | bit;
    if ((nbody = adapt_body(llm, call->adapted, call->body, &nlen)) == NULL) {
        error_text(call->error, sizeof(call->error), "", "cannot adapt the llm request");
        finish(call, MYNA_EIO, VERDICT_NEUTRAL, NULL, 0, 0);
        return 1;
    }
    free(call->body);
    call->body = nbody;
    call->body_len = nlen;
    call->resent++;
    if (start_attempt(call, &err) != MYNA_OK) {
        error_text(call->error, sizeof(call->error), "", err.msg);
        finish(call, MYNA_EIO, VERDICT_NEUTRAL, NULL, 0, 0);
    }
    return 1;
}

static void on_http(const struct myna_http_resp *resp, void *arg)
{
    struct llm_call *call = arg;
    struct myna_llm *llm = call->llm;
    struct myna_arena a = MYNA_ARENA_INIT(PARSE_ARENA_MAX);
    struct myna_err err = MYNA_ERR_INIT;
    const char *text;
    int pt, ct, rc;

    call->in_http = 0;
    call->last_status = resp->status;
    if (resp->rc != MYNA_OK) {
        if (resp->timed_out)
            snprintf(call->error, sizeof(call->error), "llm request timed out after %d ms",
                     llm->timeout_ms);
        else
            error_text(call->error, sizeof(call->error), "llm request failed: ", resp->error);
        /* an answer over the limit would not fit again either; it is
         * about this request (one customer asking for a long text with a
         * large llm.max_tokens), from an endpoint that works: it must not
         * open the circuit for all, as an answer declined does not */
        if (resp->rc == MYNA_ETOOBIG)
            finish(call, MYNA_EIO, VERDICT_ALIVE, NULL, 0, 0);
        else
            retry_or_finish(call, 0);
        return;
    }
    if (resp->status >= 200 && resp->status < 300) {
        rc = myna_llm_parse_response(resp->body, resp->body_len, &a, &text, &pt, &ct, &err);
        if (rc == MYNA_OK) {
            finish(call, MYNA_OK, VERDICT_ALIVE, text, pt, ct);
        } else if (rc == MYNA_EAGAIN) {
            /* an error instead of a completion: as the same error with a 5xx */
            api_error(resp->body, resp->body_len, resp->status, api_key(llm), call->error,
                      sizeof(call->error));
            retry_or_finish(call, resp->retry_after_s);
        } else {
            /* an answer declined (ESHAPE) is about this request, as a 4xx
             * is: the endpoint works, and one customer's messages that a
             * content filter stops must not open the circuit for all */
            error_text(call->error, sizeof(call->error), "", err.msg);
            finish(call, rc == MYNA_EPARSE || rc == MYNA_ESHAPE ? MYNA_EPARSE : MYNA_EIO,
                   rc == MYNA_ESHAPE ? VERDICT_ALIVE : VERDICT_FAULT, NULL, pt, ct);
        }
        myna_arena_free(&a);
        return;
    }
    api_error(resp->body, resp->body_len, resp->status, api_key(llm), call->error,
                  sizeof(call->error));
    if (resp->status == 400 && resend_adapted(call, resp->body, resp->body_len))
        return;
    if (resp->status == 408 || resp->status == 429 || resp->status >= 500)
        retry_or_finish(call, resp->retry_after_s);
    else  /* the endpoint refused this request: repeating it would not help */
        finish(call, MYNA_EIO, VERDICT_ALIVE, NULL, 0, 0);
}

static int start_attempt(struct llm_call *call, struct myna_err *err)
{
    struct myna_llm *llm = call->llm;
    struct myna_http_req req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = llm->url;
    req.headers = llm->headers;
    req.body = call->body;
    req.body_len = call->body_len;
    req.timeout_ms = llm->timeout_ms;
    req.max_response = RESPONSE_MAX;
    if ((rc = myna_http_request(llm->http, &req, on_http, call, err)) != MYNA_OK)
        return rc;
    call->in_http = 1;
    if (++call->attempts > 1 + call->resent)
        llm->stats.retries++;
    return MYNA_OK;
}

/* ---- the client ------------------------------------------------------------ */

struct myna_llm *myna_llm_new(struct event_base *base, struct myna_http_client *http,
                              const struct myna_llm_conf *conf, struct myna_err *err)
{
    static const char path[] = "/chat/completions";
    struct myna_llm *llm;
    size_t ulen, qlen;
    const char *query;

    if (base == NULL || http == NULL || conf == NULL || conf->url == NULL) {
        myna_err_set(err, MYNA_EINVAL, "llm client needs a loop, an HTTP client and a url");
        return NULL;
    }
    /* the path goes before a query (a proxy's key, an api-version); a
     * fragment is never sent */
    ulen = strcspn(conf->url, "?#");
    query = conf->url + ulen;
    qlen = query[0] == '?' ? strcspn(query, "#") : 0;
    while (ulen > 0 && conf->url[ulen - 1] == '/')
        ulen--;
    if ((strncasecmp(conf->url, "http://", 7) != 0 && strncasecmp(conf->url, "https://", 8) != 0) ||
        ulen + qlen > URL_MAX || strcspn(conf->url, " \t\r\n") != strlen(conf->url)) {
        myna_err_set(err, MYNA_ECONFIG, "llm url '%.*s' is not an http(s) URL",
                     (int)myna_utf8_cut(conf->url, 200), conf->url);
        return NULL;
    }
    if (conf->api_key && strcspn(conf->api_key, "\r\n") != strlen(conf->api_key)) {
        myna_err_set(err, MYNA_ECONFIG, "llm api_key contains a line break");
        return NULL;
    }
    if ((llm = calloc(1, sizeof(*llm))) == NULL)
        goto nomem;
    llm->base = base;
    llm->http = http;
    if ((llm->url = malloc(ulen + sizeof(path) + qlen)) == NULL ||
        (llm->model = strdup(conf->model ? conf->model : "")) == NULL)
        goto nomem;
    memcpy(llm->url, conf->url, ulen);
    memcpy(llm->url + ulen, path, sizeof(path) - 1);
    memcpy(llm->url + ulen + sizeof(path) - 1, query, qlen);
    llm->url[ulen + sizeof(path) - 1 + qlen] = '\0';
    if (conf->api_key && conf->api_key[0]) {
        size_t n = strlen("Authorization: Bearer ") + strlen(conf->api_key) + 1;
        if ((llm->auth = malloc(n)) == NULL)
            goto nomem;
        snprintf(llm->auth, n, "Authorization: Bearer %s", conf->api_key);
    }
    llm->headers[0] = "Content-Type: application/json";
    llm->headers[1] = "Accept: application/json";
    llm->headers[2] = llm->auth;   /* NULL ends the list without a key */
    llm->headers[3] = NULL;
    llm->temperature = conf->temperature;
    llm->top_p = conf->top_p;
    llm->max_tokens = conf->max_tokens;
    llm->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : DEFAULT_TIMEOUT_MS;
    llm->max_attempts = conf->max_attempts > 0 ? conf->max_attempts : DEFAULT_ATTEMPTS;
    llm->backoff_ms = conf->backoff_ms > 0 ? conf->backoff_ms : DEFAULT_BACKOFF_MS;
    llm->breaker_failures = conf->breaker_failures > 0 ? conf->breaker_failures
                                                       : DEFAULT_BREAKER_FAILURES;
    llm->breaker_cooldown_ms = conf->breaker_cooldown_ms > 0 ? conf->breaker_cooldown_ms
                                                             : DEFAULT_BREAKER_COOLDOWN_MS;
    llm->rng = (uint64_t)myna_mono_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)llm;
    if (llm->rng == 0)
        llm->rng = 0x9E3779B97F4A7C15ULL;
    llm->state = BREAKER_CLOSED;
    return llm;
nomem:
    if (llm)
        llm_destroy(llm);
    myna_err_set(err, MYNA_ENOMEM, "out of memory");
    return NULL;
}

void myna_llm_free(struct myna_llm *llm)
{
    if (llm == NULL)
        return;
    while (llm->calls) {
        struct llm_call *call = llm->calls;
        call_unlink(call);
        if (call->in_http)
            myna_http_cancel(llm->http, on_http, call);
        call_free(call);
    }
    if (llm->in_cb > 0) {
        llm->closing = 1;  /* finish() frees it when the callback returns */
        return;
    }
    llm_destroy(llm);
}

/* Whether a turn may start now; *probe when it is the half-open probe. */
static int admit(struct myna_llm *llm, int *probe, struct myna_err *err)
{
    int64_t now = myna_mono_ms();

    *probe = 0;
    switch (llm->state) {
    case BREAKER_CLOSED:
        return 1;
    case BREAKER_OPEN:
        if (now >= llm->open_until_ms) {
            *probe = 1;
            return 1;
        }
        myna_err_set(err, MYNA_EAGAIN,
                     "llm circuit open after %d failed turns: next try in %" PRId64 " ms",
                     llm->consecutive, llm->open_until_ms - now);
        return 0;
    case BREAKER_HALF_OPEN:
    default:
        myna_err_set(err, MYNA_EAGAIN, "llm circuit half-open: waiting for the probe");
        return 0;
    }
}

int myna_llm_chat(struct myna_llm *llm, const struct myna_llm_msg *msgs, size_t n,
                  myna_llm_cb cb, void *arg, struct myna_err *err)
{
    struct llm_call *call;
    int probe, rc;

    if (llm == NULL || llm->closing || cb == NULL || msgs == NULL || n == 0)
        return myna_err_set(err, MYNA_EINVAL, "llm chat needs a client, messages and a callback");
    for (size_t i = 0; i < n; i++)
        if (msgs[i].role == NULL || msgs[i].role[0] == '\0' || msgs[i].content == NULL)
            return myna_err_set(err, MYNA_EINVAL, "llm message %zu has no %s", i,
                                msgs[i].content == NULL ? "content" : "role");
    if (!admit(llm, &probe, err))
        return MYNA_EAGAIN;
    if ((call = calloc(1, sizeof(*call))) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    call->llm = llm;
    call->cb = cb;
    call->arg = arg;
    call->probe = probe;
    call->started_ms = myna_mono_ms();
    call->adapted = llm->adapted;
    if ((call->body = build_body(llm, call->adapted, msgs, n, &call->body_len)) == NULL ||
        (call->retry = evtimer_new(llm->base, on_retry, call)) == NULL) {
        call_free(call);
        return myna_err_set(err, MYNA_ENOMEM, "cannot build the llm request");
    }
    if ((rc = start_attempt(call, err)) != MYNA_OK) {
        call_free(call);
        return rc;
    }
    call->next = llm->calls;
    if (llm->calls)
        llm->calls->prev = call;
    llm->calls = call;
    llm->stats.requests++;
    if (probe) {
        llm->state = BREAKER_HALF_OPEN;
        MYNA_LOG(MYNA_INFO, "llm_circuit_probe", "failures=%d", llm->consecutive);
    }
    return MYNA_OK;
}

int myna_llm_circuit_open(const struct myna_llm *llm)
{
    return llm->state != BREAKER_CLOSED;
}

void myna_llm_stats(const struct myna_llm *llm, struct myna_llm_stats *out)
{
    *out = llm->stats;
    out->circuit_open = llm->state != BREAKER_CLOSED;
}
