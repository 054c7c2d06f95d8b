/* auth.c - API tokens (random, stored as SHA-256), scrypt password hashes
 * and role names.
 *
 * myna_password_verify reads its cost parameters from a stored string that
 * may have been tampered with, so everything is bounded before scrypt runs:
 * the string's length, each field, and scrypt's memory and work. */
#include "core/auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/secret.h"
#include "core/banned.h"

#define TOKEN_RAW 32
#define TOKEN_PREFIX_LEN (sizeof(MYNA_TOKEN_PREFIX) - 1)
#define TOKEN_BODY_LEN (MYNA_TOKEN_LEN - TOKEN_PREFIX_LEN)

#define SALT_LEN 16
#define HASH_LEN 32
#define SALT_MIN 8
#define SALT_MAX 64
#define LOG_N_MAX 20
#define R_MAX 16
#define P_MAX 4
/* 128 * r * N bytes of memory, at most 128 MiB; with p <= 4 that also caps
 * the work (r * p * N) at 2^22, 32 times the default 8 * 1 * 2^14 */
#define R_N_MAX (UINT64_C(1) << 20)
/* what OpenSSL may allocate: the memory above plus its small p * r buffers */
#define SCRYPT_MAXMEM (UINT64_C(129) << 20)
/* longest stored string that can satisfy the bounds above */
#define STORED_MAX 256

/* ---- tokens ------------------------------------------------------------------- */

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}

void myna_token_hash(const char *token, char hash[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    hash[0] = '\0';
    if (token == NULL)
        return;
    if (EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return;
    to_hex(md, 32, hash);
}

int myna_token_new(char token[64], char hash[65], struct myna_err *err)
{
    unsigned char raw[TOKEN_RAW];

    token[0] = '\0';
    hash[0] = '\0';
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return myna_err_set(err, MYNA_EIO, "no randomness for a new API token");
    memcpy(token, MYNA_TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    myna_secret__b64url_encode(raw, sizeof(raw), token + TOKEN_PREFIX_LEN, 64 - TOKEN_PREFIX_LEN);
    OPENSSL_cleanse(raw, sizeof(raw));
    myna_token_hash(token, hash);
    if (hash[0] == '\0') {
        OPENSSL_cleanse(token, 64);
        token[0] = '\0';
        return myna_err_set(err, MYNA_EIO, "SHA-256 failed hashing a new API token");
    }
    return MYNA_OK;
}

static int is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int myna_token_looks_valid(const char *token)
{
    size_t i;

    if (token == NULL || strncmp(token, MYNA_TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return 0;
    for (i = TOKEN_PREFIX_LEN; token[i] != '\0'; i++)
        if (i >= MYNA_TOKEN_LEN || !is_b64url_char(token[i]))
            return 0;
    return i == MYNA_TOKEN_LEN;
}

const char *myna_auth_bearer(const char *header)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    for (header += 7; *header == ' '; header++)
        ;
    return header;
}

/* ---- passwords ---------------------------------------------------------------- */

/* scrypt(password, salt) into out[out_len]; 0 or -1. */
static int scrypt(const char *password, size_t pw_len, const unsigned char *salt, size_t salt_len,
                  unsigned log_n, uint32_t r, uint32_t p, unsigned char *out, size_t out_len)
{
    uint64_t n = UINT64_C(1) << log_n, maxmem = SCRYPT_MAXMEM;
    OSSL_PARAM params[7];
    EVP_KDF *kdf;
    EVP_KDF_CTX *ctx = NULL;
    int ok = 0;

    kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (kdf != NULL)
        ctx = EVP_KDF_CTX_new(kdf);
    if (ctx != NULL) {
        params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
                                                      pw_len);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                                      salt_len);
        params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
        params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
        params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
        params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
        params[6] = OSSL_PARAM_construct_end();
        ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
    }
    EVP_KDF_CTX_free(ctx);   /* cleanses the password copy it holds */
    EVP_KDF_free(kdf);
    if (!ok)
        ERR_clear_error();   /* e.g. parameters OpenSSL refuses: just "no match" */
    return ok ? 0 : -1;
}

char *myna_password_hash(const char *password, struct myna_err *err)
{
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    char salt_b64[SALT_LEN * 2], hash_b64[HASH_LEN * 2], *out;
    size_t pw_len, cap;

    if (password == NULL) {
        myna_err_set(err, MYNA_EINVAL, "no password given");
        return NULL;
    }
    pw_len = strnlen(password, MYNA_PASSWORD_MAX + 1);
    if (pw_len < MYNA_PASSWORD_MIN || pw_len > MYNA_PASSWORD_MAX) {
        myna_err_set(err, MYNA_EINVAL, "password must be %d to %d bytes long (it is %s%zu)",
                     MYNA_PASSWORD_MIN, MYNA_PASSWORD_MAX,
                     pw_len > MYNA_PASSWORD_MAX ? "more than " : "",
                     pw_len > MYNA_PASSWORD_MAX ? (size_t)MYNA_PASSWORD_MAX : pw_len);
        return NULL;
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        myna_err_set(err, MYNA_EIO, "no randomness for a password salt");
        return NULL;
    }
    if (scrypt(password, pw_len, salt, sizeof(salt), MYNA_SCRYPT_LOG_N, MYNA_SCRYPT_R,
               MYNA_SCRYPT_P, hash, sizeof(hash)) != 0) {
        myna_err_set(err, MYNA_EIO, "scrypt failed hashing a password");
        return NULL;
    }
    myna_secret__b64url_encode(salt, sizeof(salt), salt_b64, sizeof(salt_b64));
    myna_secret__b64url_encode(hash, sizeof(hash), hash_b64, sizeof(hash_b64));
    OPENSSL_cleanse(hash, sizeof(hash));
    cap = sizeof("scrypt$99$99$9$$") + strlen(salt_b64) + strlen(hash_b64);
    out = malloc(cap);
    if (out == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory hashing a password");
    } else {
        snprintf(out, cap, "scrypt$%d$%d$%d$%s$%s", MYNA_SCRYPT_LOG_N, MYNA_SCRYPT_R,
                 MYNA_SCRYPT_P, salt_b64, hash_b64);
    }
    OPENSSL_cleanse(hash_b64, sizeof(hash_b64));
    return out;
}

/* A whole decimal field of 1..2 digits without a leading zero, within
 * [1, max]; -1 otherwise. */
static long small_number(const char *s, long max)
{
    long v = 0;
    size_t i;

    if (s[0] < '1' || s[0] > '9')
        return -1;
    for (i = 0; s[i] != '\0'; i++) {
        if (i >= 2 || s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

int myna_password_verify(const char *password, const char *stored)
{
    char copy[STORED_MAX + 1], *field[6], *p;
    unsigned char salt[SALT_MAX], want[HASH_LEN + 1], got[HASH_LEN];
    size_t pw_len, len, salt_len, hash_len, nf = 0;
    long log_n, r, par;
    uint64_t n;
    int match;

    if (password == NULL || stored == NULL)
        return 0;
    pw_len = strnlen(password, MYNA_PASSWORD_MAX + 1);
    len = strnlen(stored, STORED_MAX + 1);
    if (pw_len < MYNA_PASSWORD_MIN || pw_len > MYNA_PASSWORD_MAX || len > STORED_MAX)
        return 0;
    memcpy(copy, stored, len + 1);
    /* split on '$' into exactly 6 fields */
    field[nf++] = copy;
    for (p = copy; *p != '\0'; p++) {
        if (*p != '$')
            continue;
        if (nf == 6)
            return 0;
        *p = '\0';
        field[nf++] = p + 1;
    }
    if (nf != 6 || strcmp(field[0], "scrypt") != 0)
        return 0;
    log_n = small_number(field[1], LOG_N_MAX);
    r = small_number(field[2], R_MAX);
    par = small_number(field[3], P_MAX);
    if (log_n < 1 || r < 1 || par < 1)
        return 0;
    n = UINT64_C(1) << log_n;
    if ((uint64_t)r * n > R_N_MAX)
        return 0;
    salt_len = myna_secret__b64url_decode(field[4], strlen(field[4]), salt, sizeof(salt));
    hash_len = myna_secret__b64url_decode(field[5], strlen(field[5]), want, sizeof(want));
    /* exactly 32 bytes: scrypt's output for a shorter length is a prefix of
     * the longer one, so a cut hash must not be taken as a weaker one */
    if (salt_len == (size_t)-1 || salt_len < SALT_MIN || hash_len != HASH_LEN)
        return 0;
    if (scrypt(password, pw_len, salt, salt_len, (unsigned)log_n, (uint32_t)r, (uint32_t)par, got,
               HASH_LEN) != 0)
        return 0;
    match = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));
    OPENSSL_cleanse(copy, sizeof(copy));
    return match;
}

/* ---- roles -------------------------------------------------------------------- */

static const char *const role_names[] = {
    [MYNA_ROLE_GUEST] = "guest",
    [MYNA_ROLE_USER] = "user",
    [MYNA_ROLE_ADMIN] = "admin",
};

const char *myna_role_name(enum myna_role r)
{
    if ((unsigned)r >= sizeof(role_names) / sizeof(role_names[0]))
        return "unknown";
    return role_names[r];
}

int myna_role_parse(const char *s, enum myna_role *out)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (enum myna_role)i;
            return 0;
        }
    }
    return -1;
}
