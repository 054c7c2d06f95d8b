/* signature.c - HMAC-SHA256 of webhook bodies with OpenSSL 3 EVP_MAC.
 *
 * The key is set once into an EVP_MAC_CTX; each MAC initialises it again
 * without a key, which keeps the prepared key, so the secret is expanded once
 * per instance, not once per request, and no MAC allocates. */
#include "wa/signature.h"

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/banned.h"

#define SIG_PREFIX "sha256="
#define SIG_PREFIX_LEN (sizeof(SIG_PREFIX) - 1)
#define SIG_MAC_LEN 32
#define SIG_HEX_LEN (2 * SIG_MAC_LEN)

struct myna_hmac_key {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;   /* keyed, never finalized: the template for each MAC */
};

/* The OpenSSL reason for err messages; also empties OpenSSL's thread-local
 * error queue so that a later, unrelated check does not see our failure. */
static const char *openssl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());

    ERR_clear_error();
    return r != NULL ? r : "unknown OpenSSL error";
}

struct myna_hmac_key *myna_hmac_key_new(const void *secret, size_t len, struct myna_err *err)
{
    OSSL_PARAM params[2];
    struct myna_hmac_key *k;

    /* an empty key would "verify" anything signed with an empty secret:
     * a missing app secret is a configuration error, not a key */
    if (secret == NULL || len == 0) {
        myna_err_set(err, MYNA_EINVAL, "empty app secret for HMAC-SHA256");
        return NULL;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "cannot allocate HMAC-SHA256 key");
        return NULL;
    }
    k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (k->mac == NULL) {
        myna_err_set(err, MYNA_ECONFIG, "OpenSSL has no HMAC: %s", openssl_reason());
        goto fail;
    }
    k->ctx = EVP_MAC_CTX_new(k->mac);
    if (k->ctx == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "cannot create HMAC context: %s", openssl_reason());
        goto fail;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(k->ctx, secret, len, params)) {
        myna_err_set(err, MYNA_ECONFIG, "cannot key HMAC-SHA256: %s", openssl_reason());
        goto fail;
    }
    return k;
fail:
    myna_hmac_key_free(k);
    return NULL;
}

void myna_hmac_key_free(struct myna_hmac_key *k)
{
    if (k == NULL)
        return;
    EVP_MAC_CTX_free(k->ctx);   /* cleanses the key copy it holds */
    EVP_MAC_free(k->mac);
    free(k);
}

int myna_hmac_sha256(struct myna_hmac_key *k, const void *data, size_t len, uint8_t out[32])
{
    size_t n = 0;
    int ok;

    if (k == NULL || (data == NULL && len > 0))
        return MYNA_EINVAL;
    /* re-initialising with a NULL key keeps the prepared key schedule: no
     * allocation per MAC, unlike duplicating the context (one thread at a
     * time per key, as the header says) */
    ok = EVP_MAC_init(k->ctx, NULL, 0, NULL) && (len == 0 || EVP_MAC_update(k->ctx, data, len))
         && EVP_MAC_final(k->ctx, out, &n, SIG_MAC_LEN) && n == SIG_MAC_LEN;
    if (!ok) {
        ERR_clear_error();
        return MYNA_ENOMEM;
    }
    return MYNA_OK;
}

/* Decodes the 64 hex digits after the prefix. The header is public input,
 * so branching on it leaks nothing; only the MAC comparison is secret. */
static int parse_header(const char *header, uint8_t mac[SIG_MAC_LEN], struct myna_err *err)
{
    const char *hex;
    size_t n, i;

    if (header == NULL)
        return myna_err_set(err, MYNA_EBADSIG, "missing X-Hub-Signature-256 header");
    if (*header == '\0')
        return myna_err_set(err, MYNA_EBADSIG, "empty X-Hub-Signature-256 header");
    if (strncmp(header, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
        return myna_err_set(err, MYNA_EBADSIG,
                            "X-Hub-Signature-256 does not start with \"" SIG_PREFIX "\"");
    hex = header + SIG_PREFIX_LEN;
    n = strlen(hex);
    if (n != SIG_HEX_LEN)
        return myna_err_set(err, MYNA_EBADSIG,
                            "X-Hub-Signature-256 has %zu hex digits, expected %d", n, SIG_HEX_LEN);
    for (i = 0; i < SIG_HEX_LEN; i += 2) {
        int hi = myna_hex_value(hex[i]), lo = myna_hex_value(hex[i + 1]);

        if (hi < 0 || lo < 0)
            return myna_err_set(err, MYNA_EBADSIG,
                                "X-Hub-Signature-256 has a non-hex character at digit %zu",
                                hi < 0 ? i : i + 1);
        mac[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return MYNA_OK;
}

int myna_signature_verify(struct myna_hmac_key *k, const char *header,
                          const void *body, size_t len, struct myna_err *err)
{
    uint8_t want[SIG_MAC_LEN], got[SIG_MAC_LEN];
    int rc = parse_header(header, want, err);

    if (rc != MYNA_OK)
        return rc;
    rc = myna_hmac_sha256(k, body, len, got);
    if (rc != MYNA_OK)
        return myna_err_set(err, rc, "cannot compute HMAC-SHA256 of the body");
    /* constant time: a timing oracle would let an attacker forge byte by byte */
    if (CRYPTO_memcmp(want, got, SIG_MAC_LEN) != 0)
        return myna_err_set(err, MYNA_EBADSIG,
                            "X-Hub-Signature-256 does not match the body (wrong app secret, "
                            "or the body was altered)");
    return MYNA_OK;
}

int myna_signature_make(struct myna_hmac_key *k, const void *body, size_t len, char out[72])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t mac[SIG_MAC_LEN];
    size_t i;
    int rc = myna_hmac_sha256(k, body, len, mac);

    if (rc != MYNA_OK)
        return rc;
    memcpy(out, SIG_PREFIX, SIG_PREFIX_LEN);
    for (i = 0; i < SIG_MAC_LEN; i++) {
        out[SIG_PREFIX_LEN + 2 * i] = digits[mac[i] >> 4];
        out[SIG_PREFIX_LEN + 2 * i + 1] = digits[mac[i] & 0x0f];
    }
    out[SIG_PREFIX_LEN + SIG_HEX_LEN] = '\0';
    return MYNA_OK;
}
