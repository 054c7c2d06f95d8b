/* auth.h - credentials of the control plane: API tokens, password hashes
 * and roles. Pure functions over strings; nothing here logs, stores or
 * compares against a database.
 *
 * API tokens are 256 random bits, shown to the user once; only their
 * SHA-256 is stored, and a presented token is looked up by that hash (a
 * fast hash is enough: the token cannot be guessed, unlike a password).
 *
 * Passwords are hashed with scrypt (OpenSSL's EVP_KDF "SCRYPT"):
 *
 *     "scrypt$<logN>$<r>$<p>$<salt base64url>$<hash base64url>"
 *
 * with N = 2^14, r = 8, p = 1 (16 MiB of memory), a 16-byte random salt and
 * a 32-byte hash. N was picked by measuring: one hash took 65-80 ms on the
 * 2-core build machine (busy), and 2^15 took 135-215 ms, past the 30-100 ms
 * target. The parameters travel in the stored string, so they can be
 * raised later without breaking the hashes already stored; verification
 * bounds them (see myna_password_verify). */
#ifndef MYNA_CORE_AUTH_H
#define MYNA_CORE_AUTH_H

#include <stddef.h>

#include "core/err.h"

#define MYNA_TOKEN_PREFIX "myna_"
/* "myna_" + 43 base64url characters */
#define MYNA_TOKEN_LEN 48

#define MYNA_PASSWORD_MIN 8
#define MYNA_PASSWORD_MAX 1024

/* Parameters of new password hashes. */
#define MYNA_SCRYPT_LOG_N 14
#define MYNA_SCRYPT_R 8
#define MYNA_SCRYPT_P 1

/* A new API token into token ("myna_" + 43 base64url characters from 32
 * bytes of RAND_bytes, terminated) and the hash to store into hash (64
 * lowercase hex digits of SHA-256 of the whole token, terminated).
 * MYNA_OK, or MYNA_EIO (no randomness, or SHA-256 failed) with err set and
 * both outputs "". */
int myna_token_new(char token[64], char hash[65], struct myna_err *err);

/* hash = 64 lowercase hex digits of SHA-256(token), terminated. On NULL
 * token or a (practically impossible) OpenSSL failure, hash is "", which
 * matches no stored hash. */
void myna_token_hash(const char *token, char hash[65]);

/* 1 when token has the shape of ours ("myna_" + exactly 43 base64url
 * characters), else 0; NULL gives 0. A cheap filter before any lookup. */
int myna_token_looks_valid(const char *token);

/* The credentials of an Authorization header of the Bearer scheme: the
 * scheme's name in any case, then one or more spaces (RFC 9110 11.1 and
 * 11.4), as every listener of Myna reads it. A pointer into header past
 * them (borrowed), or NULL for a NULL header or another scheme. */
const char *myna_auth_bearer(const char *header);

/* The stored form of password (8..1024 bytes), malloc'd; NULL with err:
 * MYNA_EINVAL (NULL, too short or too long; the message gives the bounds,
 * never the password), MYNA_EIO (no randomness, scrypt failed),
 * MYNA_ENOMEM. Takes tens of milliseconds: keep it off the event loop or
 * rate-limit the callers. */
char *myna_password_hash(const char *password, struct myna_err *err);

/* 1 when password matches stored, else 0. The hashes are compared in
 * constant time. 0, without hashing, for a password outside 8..1024 bytes
 * or any stored string that is not exactly the form above with logN 1..20,
 * r 1..16, p 1..4, a salt of 8..64 bytes and a hash of exactly 32 bytes (a
 * cut hash is refused, not taken as a weaker one). On top of those bounds
 * scrypt's memory, 128 * r * 2^logN bytes, must stay within 128 MiB; with
 * p <= 4 its work is then at most 32 times the default's, so the worst
 * stored string costs a few seconds and never gigabytes. */
int myna_password_verify(const char *password, const char *stored);

enum myna_role { MYNA_ROLE_GUEST, MYNA_ROLE_USER, MYNA_ROLE_ADMIN };

/* "guest", "user", "admin"; "unknown" for any other value (which
 * myna_role_parse refuses, so a bad value never round-trips into a role). */
const char *myna_role_name(enum myna_role r);

/* Exact, lower-case names only. 0 and *out set, or -1 (*out untouched). */
int myna_role_parse(const char *s, enum myna_role *out);

#endif
