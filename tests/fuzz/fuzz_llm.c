/* fuzz_llm.c - libFuzzer harness for myna_llm_parse_response and
 * myna_llm_parse_refused (the body of a 400 that refuses a request field).
 *
 * Any bytes go in (an LLM server, or whatever answers in its place, is not
 * trusted); the parser must return a defined code. On success the text must
 * be a terminated, valid UTF-8 string no longer than the repair can make it
 * and the token counts non-negative; on failure the text must be cleared,
 * the token counts non-negative (0 when out of memory) and err complete.
 * The arena is bounded like the client's and freed every run, so cJSON
 * memory that escapes it shows as a LeakSanitizer report. The refusal
 * parser must name one of the fields or none.
 *
 * The same bytes are then sent as the content of a well-formed answer: with
 * finish_reason "stop" a text of valid UTF-8 without a think tag comes back
 * exactly, with its usage; with "length" what comes back is the text cut at
 * a character boundary, maybe marked with an ellipsis, never more. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai/llm.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/util.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* content (valid UTF-8, no NUL, no think tag) as the answer's text. */
static void check_content(const char *content, const char *finish)
{
    struct myna_arena a = MYNA_ARENA_INIT(40u << 20);
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *root = cJSON_CreateObject(), *choice = cJSON_CreateObject(), *msg;
    const char *text = NULL;
    char *body;
    size_t k, n = strlen(content);
    int pt = -1, ct = -1, rc;

    CHECK(root != NULL && choice != NULL);
    msg = cJSON_AddObjectToObject(choice, "message");
    CHECK(msg != NULL && cJSON_AddStringToObject(msg, "role", "assistant") != NULL);
    CHECK(cJSON_AddStringToObject(msg, "content", content) != NULL);
    CHECK(cJSON_AddStringToObject(choice, "finish_reason", finish) != NULL);
    CHECK(cJSON_AddItemToObject(root, "choices", cJSON_CreateArray()));
    CHECK(cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(root, "choices"), choice));
    CHECK(cJSON_AddItemToObject(root, "usage", cJSON_Parse("{\"prompt_tokens\":3,"
                                                           "\"completion_tokens\":4}")));
    body = cJSON_PrintUnformatted(root);
    CHECK(body != NULL);
    cJSON_Delete(root);

    rc = myna_llm_parse_response(body, strlen(body), &a, &text, &pt, &ct, &err);
    if (strcmp(finish, "stop") == 0) {
        CHECK(rc == MYNA_OK && strcmp(text, content) == 0 && pt == 3 && ct == 4);
    } else if (content[strspn(content, " \t\r\n")] == '\0') {
        CHECK(rc == MYNA_EPARSE && text == NULL && pt == 3 && ct == 4);
    } else {
        CHECK(rc == MYNA_OK && utf8_ok((const unsigned char *)text) && pt == 3 && ct == 4);
        k = strlen(text);
        if (k > n || memcmp(text, content, k) != 0) {
            /* a cut marked as such */
            CHECK(k >= 3 && memcmp(text + k - 3, MYNA_ELLIPSIS, 3) == 0);
            CHECK(k - 3 <= n && memcmp(text, content, k - 3) == 0);
        }
    }
    free(body);
    myna_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_arena a = MYNA_ARENA_INIT(40u << 20);
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = (const char *)data;   /* must be overwritten */
    int pt = -1, ct = -1;
    int rc = myna_llm_parse_response((const char *)data, size, &a, &text, &pt, &ct, &err);

    switch (rc) {
    case MYNA_OK:
        CHECK(text != NULL);
        CHECK(utf8_ok((const unsigned char *)text));
        /* each byte of the body becomes at most one U+FFFD (3 bytes) */
        CHECK(strlen(text) <= 3 * size);
        CHECK(pt >= 0 && ct >= 0);
        CHECK(err.code == 0);
        break;
    case MYNA_EPARSE:
    case MYNA_ESHAPE:
    case MYNA_EAGAIN:
        CHECK(err.code == rc && err.msg[0] != '\0' && strlen(err.msg) < sizeof(err.msg));
        CHECK(text == NULL && pt >= 0 && ct >= 0);  /* the usage of an unusable answer */
        break;
    case MYNA_ENOMEM:
        CHECK(err.code == rc && err.msg[0] != '\0' && strlen(err.msg) < sizeof(err.msg));
        CHECK(text == NULL && pt == 0 && ct == 0);
        break;
    default:
        CHECK(0);
    }
    myna_arena_free(&a);
    switch (myna_llm_parse_refused((const char *)data, size)) {
    case MYNA_LLM_FIELD_NONE:
    case MYNA_LLM_FIELD_MAX_TOKENS:
    case MYNA_LLM_FIELD_TEMPERATURE:
    case MYNA_LLM_FIELD_TOP_P:
        break;
    default:
        CHECK(0);
    }

    if (size <= 65536 && memchr(data, '\0', size) == NULL) {
        char *content = malloc(size + 1);
        CHECK(content != NULL);
        if (size > 0)
            memcpy(content, data, size);
        content[size] = '\0';
        if (utf8_ok((const unsigned char *)content) && strstr(content, "think>") == NULL) {
            check_content(content, "stop");
            check_content(content, "length");
        }
        free(content);
    }
    return 0;
}
