/* fake_llm.c - myna_fake_llm: a fake OpenAI-compatible chat-completions
 * server for tests (no model runs here).
 *
 *   myna_fake_llm [--listen 127.0.0.1:0] [--api-key K]
 *
 * Prints `event=ready public=HOST:PORT` on stderr once it listens, and
 * nothing else unless something fails. Loopback addresses only.
 *
 * POST /v1/chat/completions answers like OpenAI: id, object
 * "chat.completion", created, model, choices[{index, message{role
 * "assistant", content}, finish_reason "stop"}], usage{prompt_tokens,
 * completion_tokens, total_tokens}. The content is "ECHO: " + the last user
 * message, so that a test sees exactly what the model received; tokens are
 * whitespace-separated words (prompt: of every message's content); an
 * echo longer than max_completion_tokens (or max_tokens) words is cut to
 * that many, with finish_reason "length" (a fault's "reply" goes whole). Every
 * request body is recorded, faulted ones included. With --api-key K a
 * request without "Authorization: Bearer K" gets 401 in OpenAI's error shape
 * {"error":{"message","type","param","code"}}.
 *
 * Control endpoints (never behind the API key):
 *   POST /_fake/faults   one object or an array of them, queued in order; each
 *                        shapes the next `count` chat answers (default 1,
 *                        -1 = until reset):
 *                        {"status":500}   answer that status, OpenAI error body
 *                                         ("message", "type" override it)
 *                        {"delay_ms":3000} answer late
 *                        {"drop":1}       close the connection, no answer
 *                        {"reply":"text"} answer this instead of the echo
 *                        {"parts":1}      content as [{"type":"text","text"}]
 *                        {"raw":"..."}    this body verbatim (with "status")
 *                        {"retry_after":"7"} a Retry-After header (seconds or
 *                                         an HTTP date) on the answer
 *                        {"alternate":1}  refuse (400, as vLLM does when the
 *                                         chat template raises) messages
 *                                         that are not one optional system
 *                                         message, then user and assistant
 *                                         in turn from a user: the rule of
 *                                         Mistral's and Gemma's templates
 *                        {"refuse":["max_tokens","temperature","top_p"]}
 *                                         (or one name) act as OpenAI's
 *                                         reasoning models: a request with
 *                                         max_tokens, or a temperature or
 *                                         top_p other than 1, gets their 400
 *                                         with OpenAI's exact body (param,
 *                                         code unsupported_parameter or
 *                                         unsupported_value); they take
 *                                         max_completion_tokens
 *   GET  /_fake/requests JSON array of every chat request body received
 *   POST /_fake/reset    forgets requests and faults */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

#define BODY_MAX (8 << 20)
#define RECORDED_MAX 100000

struct fault {
    struct fault *next;
    int status;          /* 0: the normal 200 */
    int delay_ms;
    int drop;
    int parts;
    int alternate;       /* roles must alternate, as strict chat templates want */
    int refuse_max_tokens, refuse_temperature, refuse_top_p;  /* a reasoning model's 400s */
    char *reply;         /* instead of the echo */
    char *message, *type;
    char *raw;           /* body verbatim */
    char *retry_after;   /* Retry-After header value */
    long count;          /* answers left, -1 = until reset */
};

struct pending {
    struct pending *next, *prev;
    struct fake *f;
    struct evhttp_request *req;
    struct event *timer;
    int status;
    int drop;
    struct evbuffer *body;
};

struct fake {
    struct event_base *base;
    struct evhttp *http;
    const char *api_key;
    struct fault *faults;
    char **bodies;
    size_t n_bodies, cap_bodies;
    struct pending *pending;   /* delayed answers */
    unsigned long seq;
};

static void fault_free(struct fault *ft)
{
    free(ft->reply);
    free(ft->message);
    free(ft->type);
    free(ft->raw);
    free(ft->retry_after);
    free(ft);
}

static void reset(struct fake *f)
{
    while (f->faults) {
        struct fault *next = f->faults->next;
        fault_free(f->faults);
        f->faults = next;
    }
    for (size_t i = 0; i < f->n_bodies; i++)
        free(f->bodies[i]);
    f->n_bodies = 0;
}

/* ---- answers ------------------------------------------------------------- */

static void send_json(struct evhttp_request *req, int status, cJSON *doc)
{
    char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (s && b)
        evbuffer_add(b, s, strlen(s));
    evhttp_send_reply(req, s ? status : 500, NULL, b);
    if (b)
        evbuffer_free(b);
    cJSON_free(s);
    cJSON_Delete(doc);
}

static const char *default_type(int status)
{
    switch (status) {
    case 401:
    case 400:
    case 404:
        return "invalid_request_error";
    case 429:
        return "requests";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static const char *default_message(int status)
{
    switch (status) {
    case 400:
        return "fake fault: bad request";
    case 401:
        return "Incorrect API key provided. You can find your API key at "
               "https://platform.openai.com/account/api-keys.";
    case 429:
        return "Rate limit reached for requests. Please try again in 20ms.";
    case 500:
        return "The server had an error while processing your request. Sorry about that!";
    case 503:
        return "The engine is currently overloaded, please try again later";
    default:
        return "fake fault";
    }
}

/* OpenAI's error shape; param and code NULL for null, but for 401 and 429. */
static cJSON *error_doc(int status, const char *message, const char *type, const char *param,
                        const char *code)
{
    cJSON *doc = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(doc, "error");

    cJSON_AddStringToObject(e, "message", message ? message : default_message(status));
    cJSON_AddStringToObject(e, "type", type ? type : default_type(status));
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else if (status == 401)
        cJSON_AddStringToObject(e, "code", "invalid_api_key");
    else if (status == 429)
        cJSON_AddStringToObject(e, "code", "rate_limit_exceeded");
    else
        cJSON_AddNullToObject(e, "code");
    return doc;
}

static void send_error(struct evhttp_request *req, int status, const char *message)
{
    send_json(req, status, error_doc(status, message, NULL, NULL, NULL));
}

static int count_words(const char *s)
{
    int n = 0, in = 0;

    for (; s && *s; s++) {
        int space = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
        if (!space && !in)
            n++;
        in = !space;
    }
    return n;
}

/* A message's text: content as a string or as an array of text parts. */
static char *content_text(const cJSON *content)
{
    const cJSON *parts = cJSON_IsArray(content) ? content : NULL, *part;
    size_t len = 0;
    char *out;

    if (cJSON_IsString(content))
        return strdup(content->valuestring);
    cJSON_ArrayForEach(part, parts) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(part, "text"));
        len += t ? strlen(t) : 0;
    }
    if ((out = calloc(1, len + 1)) == NULL)
        return NULL;
    cJSON_ArrayForEach(part, parts) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(part, "text"));
        if (t)
            memcpy(out + strlen(out), t, strlen(t) + 1);
    }
    return out;
}

/* A request field ft's reasoning model refuses, in OpenAI's words: msg
 * (cap bytes), *param and *code set; 0 when it takes the request. */
static int refused(const cJSON *req_doc, const struct fault *ft, char *msg, size_t cap,
                   const char **param, const char **code)
{
    static const char *const sampling[] = { "temperature", "top_p" };
    const cJSON *v;

    if (ft == NULL)
        return 0;
    if (ft->refuse_max_tokens && cJSON_GetObjectItemCaseSensitive(req_doc, "max_tokens")) {
        snprintf(msg, cap, "Unsupported parameter: 'max_tokens' is not supported with this "
                           "model. Use 'max_completion_tokens' instead.");
        *param = "max_tokens";
        *code = "unsupported_parameter";
        return 1;
    }
    for (size_t i = 0; i < 2; i++) {
        if (!(i == 0 ? ft->refuse_temperature : ft->refuse_top_p))
            continue;
        v = cJSON_GetObjectItemCaseSensitive(req_doc, sampling[i]);
        if (v && !(cJSON_IsNumber(v) && v->valuedouble == 1)) {
            char num[64];
            if (cJSON_IsNumber(v))
                snprintf(num, sizeof(num), "%g", v->valuedouble);
            else
                snprintf(num, sizeof(num), "that value");
            snprintf(msg, cap, "Unsupported value: '%s' does not support %s with this model. "
                               "Only the default (1) value is supported.", sampling[i], num);
            *param = sampling[i];
            *code = "unsupported_value";
            return 1;
        }
    }
    return 0;
}

/* The answer cut to its first max words (a model stopped by its token
 * limit); 1 when it was cut. */
static int cut_words(char *answer, long max)
{
    long n = 0;
    int in = 0;

    for (char *p = answer; *p; p++) {
        int space = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
        if (!space && !in && ++n > max) {
            while (p > answer && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' ||
                                  p[-1] == '\r'))
                p--;
            *p = '\0';
            return 1;
        }
        in = !space;
    }
    return 0;
}

/* The chat-completion object answering req_doc; NULL and *status, *msg set
 * for a request OpenAI would refuse (*param and *code too when it names
 * them; msg may be written in refusal, of refusal_cap bytes). */
static cJSON *completion(struct fake *f, const cJSON *req_doc, const struct fault *ft,
                         int *status, const char **msg, char *refusal, size_t refusal_cap,
                         const char **param, const char **code)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req_doc, "messages"), *m;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req_doc, "model");
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(req_doc, "stream");
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(req_doc, "max_completion_tokens");
    cJSON *doc, *choices, *choice, *message, *usage, *parts, *part;
    char *last = NULL, *answer, id[64];
    int prompt_tokens = 0, completion_tokens, alternate_next = 0, cut = 0;
    size_t alen;

    *status = 400;
    if (!cJSON_IsObject(req_doc)) {
        *msg = "We could not parse the JSON body of your request.";
        return NULL;
    }
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        *msg = "'messages' is a required property";
        return NULL;
    }
    if (cJSON_IsTrue(stream)) {
        *msg = "this fake does not stream";
        return NULL;
    }
    if (refused(req_doc, ft, refusal, refusal_cap, param, code)) {
        *msg = refusal;
        return NULL;
    }
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        char *text = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
        if (!cJSON_IsString(role) || text == NULL) {
            free(text);
            free(last);
            *msg = "each message needs a role and a content";
            return NULL;
        }
        if (ft && ft->alternate) {
            /* Mistral's template: messages[0] may be the system message,
             * the rest goes user, assistant, user, ... */
            int first = m == msgs->child, system = strcmp(role->valuestring, "system") == 0;
            if (!(first && system) &&
                (strcmp(role->valuestring, alternate_next ? "assistant" : "user") != 0)) {
                free(text);
                free(last);
                *msg = "After the optional system message, conversation roles must alternate "
                       "user/assistant/user/assistant/...";
                return NULL;
            }
            if (!(first && system))
                alternate_next = !alternate_next;
        }
        prompt_tokens += count_words(text);
        if (strcmp(role->valuestring, "user") == 0) {
            free(last);
            last = text;
        } else {
            free(text);
        }
    }
    if (ft && ft->reply) {
        answer = strdup(ft->reply);
    } else {
        alen = strlen("ECHO: ") + (last ? strlen(last) : 0) + 1;
        if ((answer = malloc(alen)) != NULL)
            snprintf(answer, alen, "ECHO: %s", last ? last : "");
    }
    free(last);
    if (answer == NULL) {
        *status = 500;
        *msg = "out of memory";
        return NULL;
    }
    if (limit == NULL)
        limit = cJSON_GetObjectItemCaseSensitive(req_doc, "max_tokens");
    if (!(ft && ft->reply) && cJSON_IsNumber(limit) && limit->valuedouble >= 1)
        cut = cut_words(answer, (long)limit->valuedouble);
    completion_tokens = count_words(answer);
    snprintf(id, sizeof(id), "chatcmpl-fake%lu", ++f->seq);
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddStringToObject(doc, "object", "chat.completion");
    cJSON_AddNumberToObject(doc, "created", (double)time(NULL));
    cJSON_AddStringToObject(doc, "model", cJSON_IsString(model) ? model->valuestring : "fake-model");
    choices = cJSON_AddArrayToObject(doc, "choices");
    choice = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, choice);
    cJSON_AddNumberToObject(choice, "index", 0);
    message = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(message, "role", "assistant");
    if (ft && ft->parts) {
        parts = cJSON_AddArrayToObject(message, "content");
        part = cJSON_CreateObject();
        cJSON_AddItemToArray(parts, part);
        cJSON_AddStringToObject(part, "type", "text");
        cJSON_AddStringToObject(part, "text", answer);
    } else {
        cJSON_AddStringToObject(message, "content", answer);
    }
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", cut ? "length" : "stop");
    usage = cJSON_AddObjectToObject(doc, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", completion_tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", prompt_tokens + completion_tokens);
    cJSON_AddStringToObject(doc, "system_fingerprint", "fp_fake");
    free(answer);
    return doc;
}

/* Closes the connection without an answer: the peer sees EOF. The reply sent
 * after the shutdown fails to write, which frees the request and connection. */
static void drop(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    evhttp_send_reply(req, 500, NULL, NULL);
}

static void pending_unlink(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->f->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void pending_free(struct pending *p)
{
    if (p->timer)
        event_free(p->timer);
    if (p->body)
        evbuffer_free(p->body);
    free(p);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;

    (void)fd;
    (void)what;
    pending_unlink(p);
    /* if the client gave up meanwhile, libevent detached the request from
     * its connection and evhttp_send_reply only frees it */
    if (p->drop) {
        drop(p->req);
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(p->req), "Content-Type",
                          "application/json");
        evhttp_send_reply(p->req, p->status, NULL, p->body);
    }
    pending_free(p);
}

/* Sends now or after ft->delay_ms. doc is consumed; raw overrides it. */
static void respond(struct fake *f, struct evhttp_request *req, const struct fault *ft, int status,
                    cJSON *doc)
{
    struct pending *p;
    char *s = NULL;
    struct timeval tv;

    if (ft && ft->retry_after)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
                          ft->retry_after);
    if (ft && ft->delay_ms > 0 && (p = calloc(1, sizeof(*p))) != NULL) {
        p->f = f;
        p->req = req;
        p->status = status;
        p->drop = ft->drop;
        p->body = evbuffer_new();
        p->timer = evtimer_new(f->base, on_delay, p);
        if (ft->raw)
            evbuffer_add(p->body, ft->raw, strlen(ft->raw));
        else if (doc && (s = cJSON_PrintUnformatted(doc)) != NULL)
            evbuffer_add(p->body, s, strlen(s));
        cJSON_free(s);
        cJSON_Delete(doc);
        tv.tv_sec = ft->delay_ms / 1000;
        tv.tv_usec = (ft->delay_ms % 1000) * 1000;
        if (p->body == NULL || p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
            pending_free(p);
            send_error(req, 500, "fake: cannot delay");
            return;
        }
        p->next = f->pending;
        if (f->pending)
            f->pending->prev = p;
        f->pending = p;
        return;
    }
    if (ft && ft->drop) {
        cJSON_Delete(doc);
        drop(req);
        return;
    }
    if (ft && ft->raw) {
        struct evbuffer *b = evbuffer_new();
        cJSON_Delete(doc);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        if (b)
            evbuffer_add(b, ft->raw, strlen(ft->raw));
        evhttp_send_reply(req, status, NULL, b);
        if (b)
            evbuffer_free(b);
        return;
    }
    send_json(req, status, doc);
}

/* ---- handlers ------------------------------------------------------------ */

/* The request body, NUL-terminated (malloc'd). */
static char *body_of(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *s = malloc(n + 1);

    if (s == NULL)
        return NULL;
    evbuffer_copyout(in, s, n);
    s[n] = '\0';
    *len = n;
    return s;
}

static int record(struct fake *f, char *body)
{
    if (f->n_bodies == RECORDED_MAX)
        return -1;
    if (f->n_bodies == f->cap_bodies) {
        size_t cap = f->cap_bodies ? f->cap_bodies * 2 : 64;
        char **b = realloc(f->bodies, cap * sizeof(*b));
        if (b == NULL)
            return -1;
        f->bodies = b;
        f->cap_bodies = cap;
    }
    f->bodies[f->n_bodies++] = body;
    return 0;
}

static int authorized(struct fake *f, struct evhttp_request *req)
{
    const char *h;
    char want[512];

    if (f->api_key == NULL)
        return 1;
    h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    snprintf(want, sizeof(want), "Bearer %s", f->api_key);
    return h != NULL && strcmp(h, want) == 0;
}

/* The fault for this answer (a copy: the queue may drop its entry). */
static struct fault *take_fault(struct fake *f)
{
    struct fault *ft = f->faults, *copy;

    if (ft == NULL || (copy = calloc(1, sizeof(*copy))) == NULL)
        return NULL;
    *copy = *ft;
    copy->next = NULL;
    copy->reply = ft->reply ? strdup(ft->reply) : NULL;
    copy->message = ft->message ? strdup(ft->message) : NULL;
    copy->type = ft->type ? strdup(ft->type) : NULL;
    copy->raw = ft->raw ? strdup(ft->raw) : NULL;
    copy->retry_after = ft->retry_after ? strdup(ft->retry_after) : NULL;
    if (ft->count > 0 && --ft->count == 0) {
        f->faults = ft->next;
        fault_free(ft);
    }
    return copy;
}

static void on_chat(struct fake *f, struct evhttp_request *req)
{
    size_t len = 0;
    char *body = body_of(req, &len);
    struct fault *ft;
    cJSON *req_doc, *doc;
    const char *msg = NULL, *param = NULL, *code = NULL;
    char refusal[512];
    int status;

    if (body == NULL) {
        send_error(req, 500, "out of memory");
        return;
    }
    if (record(f, body) != 0) {
        free(body);
        send_error(req, 500, "fake: too many requests recorded");
        return;
    }
    if (!authorized(f, req)) {
        send_error(req, 401, NULL);
        return;
    }
    ft = take_fault(f);
    if (ft && ft->status && ft->status != 200) {
        respond(f, req, ft, ft->status, error_doc(ft->status, ft->message, ft->type, NULL, NULL));
    } else if (ft && ft->raw) {
        respond(f, req, ft, 200, NULL);
    } else {
        req_doc = cJSON_ParseWithLength(body, len);
        doc = completion(f, req_doc, ft, &status, &msg, refusal, sizeof(refusal), &param, &code);
        cJSON_Delete(req_doc);
        if (doc)
            respond(f, req, ft, 200, doc);
        else
            respond(f, req, ft, status, error_doc(status, msg, NULL, param, code));
    }
    if (ft)
        fault_free(ft);
}

static int int_field(const cJSON *o, const char *key, long min, long max, long def, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (v == NULL || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return *out >= min && *out <= max ? 0 : -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > (double)max)
        return -1;
    *out = (long)v->valuedouble;
    return 0;
}

static int str_field(const cJSON *o, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || (*out = strdup(v->valuestring)) == NULL)
        return -1;
    return 0;
}

/* "refuse": one field name or an array of them. */
static int refuse_field(const cJSON *o, struct fault *ft)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "refuse"), *item;

    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) && !cJSON_IsArray(v))
        return -1;
    for (item = cJSON_IsArray(v) ? v->child : v; item; item = cJSON_IsArray(v) ? item->next : NULL) {
        const char *name = cJSON_GetStringValue(item);
        if (name && strcmp(name, "max_tokens") == 0)
            ft->refuse_max_tokens = 1;
        else if (name && strcmp(name, "temperature") == 0)
            ft->refuse_temperature = 1;
        else if (name && strcmp(name, "top_p") == 0)
            ft->refuse_top_p = 1;
        else
            return -1;
    }
    return 0;
}

static struct fault *fault_parse(const cJSON *o)
{
    struct fault *ft = calloc(1, sizeof(*ft));
    long status, delay, dropv, parts, alternate, count;

    if (ft == NULL || !cJSON_IsObject(o) ||
        int_field(o, "status", 0, 599, 0, &status) != 0 ||
        int_field(o, "delay_ms", 0, 600000, 0, &delay) != 0 ||
        int_field(o, "drop", 0, 1, 0, &dropv) != 0 ||
        int_field(o, "parts", 0, 1, 0, &parts) != 0 ||
        int_field(o, "alternate", 0, 1, 0, &alternate) != 0 ||
        int_field(o, "count", -1, 1000000, 1, &count) != 0 || count == 0 ||
        (status != 0 && status < 100) ||
        str_field(o, "reply", &ft->reply) != 0 || str_field(o, "message", &ft->message) != 0 ||
        str_field(o, "type", &ft->type) != 0 || str_field(o, "raw", &ft->raw) != 0 ||
        str_field(o, "retry_after", &ft->retry_after) != 0 || refuse_field(o, ft) != 0) {
        if (ft)
            fault_free(ft);
        return NULL;
    }
    ft->status = (int)status;
    ft->delay_ms = (int)delay;
    ft->drop = (int)dropv;
    ft->parts = (int)parts;
    ft->alternate = (int)alternate;
    ft->count = count;
    return ft;
}

static void on_faults(struct fake *f, struct evhttp_request *req)
{
    size_t len = 0;
    char *body = body_of(req, &len);
    cJSON *doc = body ? cJSON_ParseWithLength(body, len) : NULL, *item, *ok;
    struct fault *list = NULL, **tail = &list, **end;

    free(body);
    if (cJSON_IsObject(doc)) {
        list = fault_parse(doc);
    } else if (cJSON_IsArray(doc)) {
        cJSON_ArrayForEach(item, doc) {
            if ((*tail = fault_parse(item)) == NULL)
                break;
            tail = &(*tail)->next;
        }
        if (item != NULL) {  /* one was bad: queue none */
            while (list) {
                struct fault *next = list->next;
                fault_free(list);
                list = next;
            }
            list = NULL;
        }
    }
    cJSON_Delete(doc);
    if (list == NULL) {
        send_error(req, 400, "faults: a JSON object (or array of them) with status, delay_ms, "
                             "drop, reply, parts, alternate, refuse, raw, message, type, count");
        return;
    }
    for (end = &f->faults; *end; end = &(*end)->next)
        ;
    *end = list;
    ok = cJSON_CreateObject();
    cJSON_AddTrueToObject(ok, "ok");
    send_json(req, 200, ok);
}

static void on_requests(struct fake *f, struct evhttp_request *req)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr && i < f->n_bodies; i++) {
        cJSON *item = cJSON_Parse(f->bodies[i]);
        if (item == NULL)
            item = cJSON_CreateString(f->bodies[i]);
        cJSON_AddItemToArray(arr, item);
    }
    send_json(req, 200, arr);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fake *f = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    cJSON *ok;

    if (path == NULL)
        path = "";
    if (strcmp(path, "/v1/chat/completions") == 0) {
        if (cmd != EVHTTP_REQ_POST)
            send_error(req, 405, "use POST");
        else
            on_chat(f, req);
    } else if (strcmp(path, "/_fake/faults") == 0 && cmd == EVHTTP_REQ_POST) {
        on_faults(f, req);
    } else if (strcmp(path, "/_fake/requests") == 0 && cmd == EVHTTP_REQ_GET) {
        on_requests(f, req);
    } else if (strcmp(path, "/_fake/reset") == 0 && cmd == EVHTTP_REQ_POST) {
        reset(f);
        ok = cJSON_CreateObject();
        cJSON_AddTrueToObject(ok, "ok");
        send_json(req, 200, ok);
    } else {
        send_error(req, 404, "Invalid URL");
    }
}

/* ---- main ---------------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static int loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: myna_fake_llm [--listen 127.0.0.1:PORT] [--api-key KEY]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    struct fake f;
    struct evhttp_bound_socket *bound;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    struct event *sigterm, *sigint;
    char host[256];
    int port, rc = 0;

    memset(&f, 0, sizeof(f));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--api-key") == 0 && i + 1 < argc)
            f.api_key = argv[++i];
        else
            return usage();
    }
    if (myna_split_hostport(listen, host, sizeof(host), &port) != 0)
        return usage();
    if (!loopback(host)) {
        fprintf(stderr, "event=refused reason=not_loopback listen=%s\n", listen);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);  /* a client that went away is not our death */
    f.base = event_base_new();
    f.http = f.base ? evhttp_new(f.base) : NULL;
    if (f.http == NULL) {
        fprintf(stderr, "event=fatal reason=no_event_base\n");
        return 1;
    }
    evhttp_set_max_body_size(f.http, BODY_MAX);
    evhttp_set_allowed_methods(f.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(f.http, on_request, &f);
    bound = evhttp_bind_socket_with_handle(f.http, host, (ev_uint16_t)port);
    if (bound == NULL ||
        getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen) != 0) {
        fprintf(stderr, "event=fatal reason=bind_failed listen=%s errno=%d\n", listen, errno);
        evhttp_free(f.http);
        event_base_free(f.base);
        return 1;
    }
    port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    sigterm = evsignal_new(f.base, SIGTERM, on_signal, f.base);
    sigint = evsignal_new(f.base, SIGINT, on_signal, f.base);
    if (sigterm)
        evsignal_add(sigterm, NULL);
    if (sigint)
        evsignal_add(sigint, NULL);
    fprintf(stderr, strchr(host, ':') ? "event=ready public=[%s]:%d\n" : "event=ready public=%s:%d\n",
            host, port);
    fflush(stderr);
    if (event_base_dispatch(f.base) < 0)
        rc = 1;
    /* delayed answers first: evhttp_free frees the requests still on a
     * connection, a request whose client went away is ours to free */
    while (f.pending) {
        struct pending *p = f.pending;
        pending_unlink(p);
        if (evhttp_request_get_connection(p->req) == NULL)
            evhttp_request_free(p->req);
        pending_free(p);
    }
    evhttp_free(f.http);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    event_base_free(f.base);
    reset(&f);
    free(f.bodies);
    return rc;
}
