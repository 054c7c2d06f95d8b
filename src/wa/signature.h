/* signature.h - X-Hub-Signature-256 verification for Cloud API webhooks.
 *
 * The MAC is HMAC-SHA256 of the raw body bytes, keyed with the Meta app
 * secret; the header is "sha256=" followed by 64 hex digits (Meta sends
 * lowercase; uppercase is accepted). The comparison is constant time. A key
 * is prepared once per instance (OpenSSL EVP_MAC keyed once) and may be used
 * from one thread at a time. */
#ifndef MYNA_WA_SIGNATURE_H
#define MYNA_WA_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct myna_hmac_key;

/* A SHA-256 HMAC key; NULL with err on failure. */
struct myna_hmac_key *myna_hmac_key_new(const void *secret, size_t len, struct myna_err *err);
void myna_hmac_key_free(struct myna_hmac_key *k);   /* NULL ok */

/* out[32] = HMAC-SHA256(key, data). MYNA_OK, MYNA_EINVAL (k NULL, or data
 * NULL with len > 0) or MYNA_ENOMEM. */
int myna_hmac_sha256(struct myna_hmac_key *k, const void *data, size_t len, uint8_t out[32]);

/* Checks header (may be NULL: missing) against body. MYNA_OK, or
 * MYNA_EBADSIG with err saying why: missing header, no "sha256=" prefix,
 * wrong length, not hex, or mismatch; MYNA_EINVAL or MYNA_ENOMEM when the
 * HMAC cannot be computed (as myna_hmac_sha256). */
int myna_signature_verify(struct myna_hmac_key *k, const char *header,
                          const void *body, size_t len, struct myna_err *err);

/* Writes "sha256=<64 lowercase hex>" and a NUL into out[72]. For the
 * simulator, the load generator and tests. */
int myna_signature_make(struct myna_hmac_key *k, const void *body, size_t len, char out[72]);

#endif
