/* llm.h - OpenAI-compatible chat-completions client (vLLM, llama.cpp server,
 * Ollama, OpenAI, Gemini's OpenAI endpoint), asynchronous on the loop.
 *
 * One turn = one myna_llm_chat: POST {url}/chat/completions with the messages,
 * retried with backoff on transport errors, timeouts, 408, 429 and 5xx (and
 * a 200 whose body is an error object instead of a completion, as some
 * servers send when overloaded), and answered once through the callback. Waiting between attempts is an evtimer;
 * nothing blocks. Owns copies of its configuration strings, the request body
 * of each turn and the parsed answer until the callback returns.
 *
 * A circuit breaker protects the loop and the endpoint: after
 * breaker_failures consecutive turns that failed on the server's side
 * (transport, timeout, 408, 429, 5xx, unparseable answer) it opens and
 * myna_llm_chat refuses turns with MYNA_EAGAIN; after breaker_cooldown_ms one
 * turn is let through as a probe (half-open), whose success closes the circuit
 * and whose failure opens it for another cooldown. A 4xx answer is the
 * endpoint refusing one request, not the endpoint being down: it fails that
 * turn without a retry and counts as a sign of life for the breaker.
 *
 * A model that refuses an optional field of the request (OpenAI's reasoning
 * models refuse max_tokens, and a temperature or top_p other than 1, with a
 * 400 naming it) gets the turn again at once without it: max_tokens goes as
 * max_completion_tokens, temperature and top_p are left out. The client
 * remembers that for its life and logs it once (event=llm_adapted); the
 * resent request is neither a retry nor a failure of the endpoint. Each
 * field is adapted at most once: the same refusal again fails the turn as
 * any other 4xx does.
 *
 * Must not: log the API key or the message contents (they are customers'
 * words), or outlive its HTTP client. */
#ifndef MYNA_AI_LLM_H
#define MYNA_AI_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

struct event_base;
struct myna_http_client;
struct myna_llm;

struct myna_llm_conf {
    const char *url;          /* base, e.g. http://127.0.0.1:8000/v1 ; POST {url}/chat/completions,
                                 the path before the url's query if it has one */
    const char *model;        /* sent when non-empty */
    const char *api_key;      /* "Authorization: Bearer" when non-empty */
    double temperature;       /* sent when >= 0 */
    double top_p;             /* sent when > 0 */
    int max_tokens;           /* sent when > 0 */
    int timeout_ms;           /* per attempt, default (<= 0) 30000 */
    int max_attempts;         /* default (<= 0) 3 */
    int backoff_ms;           /* first retry delay, default (<= 0) 500, doubling, +-20% jitter,
                                 capped at 8000 */
    int breaker_failures;     /* consecutive failed turns that open the circuit, default (<= 0) 5 */
    int breaker_cooldown_ms;  /* default (<= 0) 30000, then one probe (half-open) */
};

struct myna_llm_msg {
    const char *role;         /* system|user|assistant */
    const char *content;
};

struct myna_llm_result {
    int rc;                   /* MYNA_OK, or MYNA_EIO (transport, HTTP error or an error
                                 object sent with a 200), MYNA_EAGAIN (the
                                 circuit opened while the turn waited to retry), MYNA_EPARSE
                                 (an answer without text) */
    const char *text;         /* the answer, valid UTF-8; borrowed during the callback; NULL
                                 unless rc is MYNA_OK */
    int prompt_tokens, completion_tokens;  /* from usage, 0 when absent; an answer that
                                              could not be used (MYNA_EPARSE) gives its
                                              usage too: its tokens were spent */
    int attempts;             /* HTTP requests made for this turn (a request sent again
                                 without a field the model refused counts too) */
    int64_t latency_ms;       /* from myna_llm_chat to the callback */
    long last_status;         /* HTTP status of the last attempt, 0 without an answer */
    char error[256];          /* what failed ("" on success): the API's error message for an
                                 HTTP error; cut at a character boundary */
};

typedef void (*myna_llm_cb)(const struct myna_llm_result *r, void *arg);

struct myna_llm_stats {
    uint64_t requests;           /* turns accepted */
    uint64_t failures;           /* turns answered with rc != MYNA_OK */
    uint64_t retries;            /* attempts after the first, but for those sent again
                                    without a field the model refused */
    uint64_t prompt_tokens, completion_tokens;   /* of every turn, failed ones too */
    int circuit_open;
};

/* Copies conf's strings. NULL and err filled on failure: MYNA_EINVAL (no
 * base, http or url), MYNA_ECONFIG (a url that is not http(s), an api_key
 * with a line break), MYNA_ENOMEM. base and http are borrowed and must
 * outlive the client. */
struct myna_llm *myna_llm_new(struct event_base *base, struct myna_http_client *http,
                              const struct myna_llm_conf *conf, struct myna_err *err);

/* Cancels waiting retries and in-flight requests WITHOUT callbacks. NULL ok.
 * May be called from inside a callback of this client (the free then happens
 * when the callback returns). Free it before its HTTP client: its HTTP
 * requests in flight are cancelled there, and the HTTP client may go right
 * after. */
void myna_llm_free(struct myna_llm *llm);

/* Starts a turn with the n messages (copied: the caller's may go on return).
 * Consecutive messages of one role go as one, their non-empty texts a blank
 * line apart: the chat templates of Mistral, Gemma and others refuse a
 * second system message, or two user (or assistant) messages in a row.
 * They want a user message first after the system one too: assistant
 * messages before the first user message go at the end of the system
 * message, after the line "Earlier in this conversation you (or a
 * colleague) wrote:".
 * MYNA_OK: cb runs exactly once, later, on the loop. MYNA_EAGAIN: the circuit
 * is open (or half-open with its probe in flight). MYNA_EINVAL: no messages, a
 * message without role or content. MYNA_ENOMEM. On an error cb never runs. */
int myna_llm_chat(struct myna_llm *llm, const struct myna_llm_msg *msgs, size_t n,
                  myna_llm_cb cb, void *arg, struct myna_err *err);

/* 1 from the moment the circuit opens until a probe succeeds, else 0. */
int myna_llm_circuit_open(const struct myna_llm *llm);

void myna_llm_stats(const struct myna_llm *llm, struct myna_llm_stats *out);

/* Parses a chat-completions response body (pure: no I/O, fuzzed).
 * *text = choices[0].message.content, a string or an array of
 * {"type":"text","text":...} parts joined; invalid UTF-8 is replaced by
 * U+FFFD. A leading <think>...</think> block (a reasoning model served
 * without a reasoning parser) is dropped, and one that never ends fails
 * with MYNA_EPARSE (the model never answered); so is the text up to a
 * "</think>" with no "<think>" before it (a chat template that opened the
 * block in the prompt). With finish_reason "length"
 * the text was stopped mid-sentence by max_tokens: it is cut back to its last
 * sentence end (. ! ? … or a line break; not the dot after a list item's
 * number, "3." at the start of a line) if that keeps at least half of it,
 * else to its last word end, followed by "…". *prompt_tokens and
 * *completion_tokens from usage (0 when absent).
 * Everything lives in a. MYNA_OK, MYNA_EPARSE (not JSON, no choices, content
 * null or missing, a NUL in a string, all thinking; err names what),
 * MYNA_ESHAPE (content null, missing or not text with a finish_reason other
 * than "length": the model declined this request, as a content filter, a
 * refusal or a tool call does; the client counts it as an answer of an
 * endpoint that works, as a 4xx, not toward its circuit), MYNA_EAGAIN (no
 * choices but an "error": the server's error sent with a 2xx status, which
 * the client retries as if it came with a 5xx), MYNA_ENOMEM (a is full).
 * On failure *text is NULL, and the token counts are the body's usage
 * when it is a JSON object (an answer that is all thinking spent its
 * tokens), else 0; 0 after MYNA_ENOMEM. */
int myna_llm_parse_response(const char *body, size_t len, struct myna_arena *a,
                            const char **text, int *prompt_tokens, int *completion_tokens,
                            struct myna_err *err);

/* The optional request fields a model may refuse. */
enum myna_llm_field {
    MYNA_LLM_FIELD_NONE = 0,
    MYNA_LLM_FIELD_MAX_TOKENS,   /* sent instead as max_completion_tokens */
    MYNA_LLM_FIELD_TEMPERATURE,  /* left out */
    MYNA_LLM_FIELD_TOP_P         /* left out */
};

/* Which optional field the body of a 400 answer refuses (pure: no I/O,
 * fuzzed): OpenAI's {"error":{"param":"max_tokens"|"temperature"|"top_p",
 * "code":"unsupported_parameter"|"unsupported_value"}}, or such an object
 * first in an array. MYNA_LLM_FIELD_NONE for anything else: another param
 * or code, not JSON, or a body too large to parse. */
enum myna_llm_field myna_llm_parse_refused(const char *body, size_t len);

#endif
