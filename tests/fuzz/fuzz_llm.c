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
 * parser must name one of the fields or none. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ai/llm.h"
#include "core/arena.h"
#include "core/err.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    return 0;
}
