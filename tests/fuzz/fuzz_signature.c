/* fuzz_signature.c - libFuzzer harness for myna_signature_verify.
 *
 * Input = header line, '\n', body (no newline: no header at all). The header
 * is copied into its own exact-size NUL-terminated buffer and the body into
 * an exact-size one, so ASan sees any read past either. Whatever the bytes,
 * verify must answer MYNA_OK or MYNA_EBADSIG with a message; and the header
 * that myna_signature_make writes for the body must always verify. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "wa/signature.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "test-app-secret-0123456789abcdef"

/* One key for the whole run, as an instance keeps one: reachable, no leak. */
static struct myna_hmac_key *fuzz_key(void)
{
    static struct myna_hmac_key *k;

    if (k == NULL) {
        k = myna_hmac_key_new(SECRET, strlen(SECRET), NULL);
        CHECK(k != NULL);
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_hmac_key *k = fuzz_key();
    struct myna_err err = MYNA_ERR_INIT;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl != NULL ? (size_t)(nl - data) : 0;
    size_t blen = nl != NULL ? size - hlen - 1 : size;
    char *header = NULL, *body = malloc(blen > 0 ? blen : 1);
    char made[72];
    int rc;

    CHECK(body != NULL);
    if (blen > 0)
        memcpy(body, nl != NULL ? nl + 1 : data, blen);
    if (nl != NULL) {
        header = malloc(hlen + 1);
        CHECK(header != NULL);
        memcpy(header, data, hlen);
        header[hlen] = '\0';
    }
    rc = myna_signature_verify(k, header, body, blen, &err);
    CHECK(rc == MYNA_OK || rc == MYNA_EBADSIG);
    if (rc != MYNA_OK)
        CHECK(err.code == rc && err.msg[0] != '\0');
    CHECK(myna_signature_make(k, body, blen, made) == MYNA_OK);
    CHECK(strlen(made) == 71 && memcmp(made, "sha256=", 7) == 0);
    CHECK(myna_signature_verify(k, made, body, blen, &err) == MYNA_OK);
    /* a header that verifies must be the made one, up to hex case */
    if (rc == MYNA_OK)
        CHECK(strlen(header) == 71 && strncasecmp(header, made, 71) == 0);
    free(header);
    free(body);
    return 0;
}
